// SPDX-License-Identifier: MIT
// fake_dlsym (see fake_dlsym.h): dlsym/dlvsym re-implemented over the loader's public link map, for use
// inside malloc before the real allocator is known.  The real dlsym may allocate (dlerror state, the
// unique-symbol table, scope growth on RTLD_DEFAULT) and takes the loader's locks, so calling it from
// malloc can recurse or deadlock; this walks the same data read-only instead.
//
// The matching rules are glibc 2.36's (elf/dl-lookup.c check_match and do_lookup_x, elf/dl-sym.c), so
// that for the objects we search the answer is dlsym's or, where we cannot reproduce the loader's
// answer (thread-local variables), nullptr rather than a different address.
#include "libmallochooks/elf/fake_dlsym.h"

#include <elf.h>
#include <link.h>
#include <stdint.h>
#include <string.h>
#include <sys/auxv.h>

#include "libmallochooks/elf/elf_view.h"

// Weak: in a -static link there is no dynamic loader to define it, and libc.a's definition sits in a
// member (dl-debug.o) that only static dlopen pulls in; a strong reference would drag that in or fail.
// Absent, there is no link map to walk and every lookup finds nothing, which is the truth.
extern struct r_debug _r_debug __attribute__((weak));

namespace mallochooks::elf {

namespace {

// A name being looked up, with its hashes computed once for the whole link-map walk.
struct lookup_request {
    const char *name;
    const char *version;  // nullptr: dlsym rules; otherwise dlvsym rules
    uint32_t gnu;
    uint32_t sysv;
    uint32_t version_hash;

    static lookup_request make(const char *name, const char *version) noexcept {
        return lookup_request{name, version, gnu_hash(name), sysv_hash(name),
                       version != nullptr ? sysv_hash(version) : 0};
    }
};

// What one object says about a request.
enum class Outcome {
    absent,    // not defined here: the search goes on with the next object
    found,     // defined here, address computed
    unusable,  // defined here, but only the loader can compute the address (TLS): the search stops
};

struct lookup_result {
    Outcome outcome;
    void *address;
};

// The .dynsym entry `request` selects in one object, following check_match: the entry must be a
// definition with a value, of a code or data type, with the right name; then versions decide.
const ElfW(Sym) *find_definition(const dynamic_section &dynamic, const lookup_request &request) noexcept {
    // A versioned request against a versioned object can only match one version index; look the
    // version name up once instead of once per candidate.  No such version: nothing can match.
    ElfW(Half) wanted_version = 0;
    if (request.version != nullptr && dynamic.has_versions()) {
        wanted_version = dynamic.verdefs.index_of(request.version, request.version_hash, dynamic.strtab);
        if (wanted_version == 0) return nullptr;
    }

    const ElfW(Sym) *match = nullptr;
    // Unversioned requests may settle for the default `@@` version, but only if there is exactly one
    // (glibc's num_versions == 1): two would be ambiguous.
    const ElfW(Sym) *default_version = nullptr;
    unsigned default_versions = 0;

    auto consider = [&](uint32_t index) noexcept -> bool {
        const dynsym_entry symbol = dynamic.symbol(index);
        // Undefined entries are skipped even when they carry a value (a non-PIE executable's canonical
        // PLT stub): dlsym would return the stub, but a stub of malloc in the executable would lead
        // right back to the interposed malloc, so the definition further down is what callers want.
        if (!symbol.is_defined() || !symbol.has_value() || !symbol.is_code_or_data()) return false;
        if (strcmp(symbol.name(dynamic.strtab), request.name) != 0) return false;

        // An object without version information accepts any request, versioned or not.
        if (!dynamic.has_versions()) {
            match = &dynamic.symtab[index];
            return true;
        }
        const versym_entry version = dynamic.version_index(index);
        if (request.version != nullptr) {
            // dlvsym: exactly the requested version, hidden (`@`) or default (`@@`) alike.
            if (version.index() != wanted_version) return false;
            match = &dynamic.symtab[index];
            return true;
        }
        // dlsym (DL_LOOKUP_RETURN_NEWEST): an unversioned entry wins at once; otherwise remember the
        // default version and never take a hidden one.
        if (version.is_unversioned()) {
            match = &dynamic.symtab[index];
            return true;
        }
        if (version.is_default_version() && default_versions++ == 0) default_version = &dynamic.symtab[index];
        return false;
    };

    // The GNU table is the one glibc uses when an object has both.
    if (dynamic.gnu_hash.present())
        dynamic.gnu_hash.for_each_candidate(request.gnu, consider);
    else
        dynamic.sysv_hash.for_each_candidate(request.sysv, consider);

    if (match != nullptr) return match;
    return default_versions == 1 ? default_version : nullptr;
}

// Calls an STT_GNU_IFUNC resolver.  glibc 2.36 calls x86-64 resolvers with no arguments
// (sysdeps/x86_64/dl-irel.h); passing AT_HWCAP first, as glibc does on other architectures, costs
// nothing under the x86-64 calling convention and serves resolvers written for those conventions.
ElfW(Addr) run_ifunc_resolver(ElfW(Addr) resolver) noexcept {
    using Resolver = ElfW(Addr) (*)(unsigned long hwcap);
    return reinterpret_cast<Resolver>(resolver)(getauxval(AT_HWCAP));
}

lookup_result resolve(const dynamic_section &dynamic, const lookup_request &request) noexcept {
    if (!dynamic.has_symbols()) return {Outcome::absent, nullptr};
    const ElfW(Sym) *raw = find_definition(dynamic, request);
    if (raw == nullptr) return {Outcome::absent, nullptr};

    const dynsym_entry symbol(raw);
    // do_lookup_x ignores the selected entry if it binds locally (hidden/internal visibility, or a
    // local binding) and goes on with the next object, as if this one did not define the name.
    if (symbol.binds_locally() || !symbol.is_exported_binding()) return {Outcome::absent, nullptr};
    // A TLS symbol's address depends on the calling thread's TLS block, which only the loader can
    // find (and may have to allocate).  The object does define the name, so dlsym would stop here:
    // report "cannot" instead of letting a later object's definition shadow it.
    if (symbol.is_tls()) return {Outcome::unusable, nullptr};

    // STB_GNU_UNIQUE needs no special case here: dlsym returns the first definition the loader
    // registered for the name, which is this object's unless another object defines it too.
    ElfW(Addr) address = (symbol.is_absolute() ? 0 : dynamic.load_bias) + symbol.value();
    if (symbol.is_ifunc()) address = run_ifunc_resolver(address);
    return {Outcome::found, reinterpret_cast<void *>(address)};
}

// l_next is written by the loader (under its lock) when objects come and go; an acquire load pairs with
// that publication as well as a lock-free reader can.
const link_map *next_object(const link_map *object) noexcept {
    return __atomic_load_n(&object->l_next, __ATOMIC_ACQUIRE);
}

// The program headers of a loaded object.  Neither the public link_map nor the dynamic section records
// where they are, so each known source is tried and kept only if its PT_DYNAMIC is the object's l_ld:
//  - the executable: the kernel passes its headers as AT_PHDR/AT_PHNUM (rtld rewrites these when it is
//    run as a command, so they describe the program either way);
//  - the vDSO: its ELF header is at AT_SYSINFO_EHDR;
//  - everything else was mapped by the loader with its first PT_LOAD, which starts at p_vaddr 0 and
//    file offset 0 and therefore holds the ELF header, at l_addr.
program_headers program_headers_of(const link_map *object) noexcept {
    if (object->l_ld == nullptr) return {};

    const program_headers executable = program_headers::from_auxv_phdr(
        reinterpret_cast<const ElfW(Phdr) *>(getauxval(AT_PHDR)), getauxval(AT_PHNUM));
    if (executable.describes(object->l_ld)) return executable;

    const program_headers vdso =
        program_headers::from_elf_header(reinterpret_cast<const void *>(getauxval(AT_SYSINFO_EHDR)));
    if (vdso.describes(object->l_ld)) return vdso;

    // l_addr 0 means the object runs at its link address (a non-PIE executable), so nothing need be
    // mapped at address 0: do not read there.
    if (object->l_addr != 0) {
        const program_headers mapped = program_headers::from_elf_header(reinterpret_cast<const void *>(object->l_addr));
        if (mapped.describes(object->l_ld)) return mapped;
    }
    return {};
}

}  // namespace

namespace detail {

void *lookup_in_dynamic(const dynamic_section &dynamic, const char *name, const char *version) noexcept {
    if (name == nullptr) return nullptr;
    const lookup_result resolution = resolve(dynamic, lookup_request::make(name, version));
    return resolution.outcome == Outcome::found ? resolution.address : nullptr;
}

}  // namespace detail

const link_map *first_object() noexcept {
    // The head of the base namespace never changes once the program runs, so even a copy of _r_debug
    // made by a copy relocation in a non-PIC executable (taken after rtld set r_map) is correct.
    if (&_r_debug == nullptr) return nullptr;
    return __atomic_load_n(&_r_debug.r_map, __ATOMIC_ACQUIRE);
}

const link_map *object_with_dynamic(const void *dynamic) noexcept {
    if (dynamic == nullptr) return nullptr;
    for (const link_map *object = first_object(); object != nullptr; object = next_object(object))
        if (object->l_ld == dynamic) return object;
    return nullptr;
}

const link_map *object_containing(const void *addr) noexcept {
    for (const link_map *object = first_object(); object != nullptr; object = next_object(object))
        if (program_headers_of(object).load_segment_contains(addr)) return object;
    return nullptr;
}

address_range extent_of(const link_map *object) noexcept {
    address_range range;
    if (object == nullptr) return range;
    const program_headers headers = program_headers_of(object);
    bool first = true;
    for (size_t i = 0; i < headers.count; ++i) {
        const ElfW(Phdr) &ph = headers.table[i];
        if (ph.p_type != PT_LOAD) continue;
        const uintptr_t begin = headers.bias + ph.p_vaddr, end = begin + ph.p_memsz;
        if (first || begin < range.begin) range.begin = begin;
        if (first || end > range.end) range.end = end;
        first = false;
    }
    return range;
}

bool imports_any(const link_map *object, const char *const *names, size_t n) noexcept {
    if (object == nullptr) return false;
    const dynamic_section dynamic = dynamic_section::of(object);
    if (!dynamic.has_symbols()) return false;
    const size_t count = dynamic.symbol_count();
    for (size_t i = 1; i < count; ++i) {  // entry 0 is the null symbol
        const dynsym_entry symbol = dynamic.symbol(i);
        if (symbol.is_defined()) continue;
        const char *name = symbol.name(dynamic.strtab);
        for (size_t k = 0; k < n; ++k)
            if (strcmp(name, names[k]) == 0) return true;
    }
    return false;
}

void *lookup_in(const link_map *object, const char *name, const char *version) noexcept {
    if (object == nullptr) return nullptr;
    return detail::lookup_in_dynamic(dynamic_section::of(object), name, version);
}

void *lookup(const char *name, const char *version, const link_map *after, const link_map **where) noexcept {
    if (where != nullptr) *where = nullptr;
    if (name == nullptr) return nullptr;
    const lookup_request request = lookup_request::make(name, version);
    const link_map *object = after != nullptr ? next_object(after) : first_object();
    for (; object != nullptr; object = next_object(object)) {
        const lookup_result resolution = resolve(dynamic_section::of(object), request);
        if (resolution.outcome == Outcome::absent) continue;
        if (resolution.outcome == Outcome::found && where != nullptr) *where = object;
        return resolution.address;
    }
    return nullptr;
}

}  // namespace mallochooks::elf
