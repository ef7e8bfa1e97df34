// SPDX-License-Identifier: MIT
// Typed, read-only views over the run-time ELF structures that fake_dlsym walks: an object's dynamic
// section (with glibc's partial in-place relocation undone), its .dynsym entries and version indexes, its
// version definitions, its GNU and SysV hash tables and its program headers.  They exist so that the
// lookup code can say "is this the default version" instead of doing index arithmetic inline.
//
// Everything here is inline, never allocates, never locks and never calls into the dynamic loader: it
// runs inside malloc before the real allocator is known.  The views trust the object's tables the way
// the loader does (a loaded object's tables were already used to relocate it); only the SysV chain walk,
// the one structure a corrupt table could turn into a cycle, is bounded.
#ifndef MALLOCHOOKS_ELF_ELF_VIEW_H
#define MALLOCHOOKS_ELF_ELF_VIEW_H

#include <elf.h>
#include <link.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

namespace mallochooks::elf {

// The two hash functions of the ELF world.  sysv_hash is also the hash stored in Verdef::vd_hash.
constexpr uint32_t gnu_hash(const char *name) noexcept {
    uint32_t h = 5381;
    for (; *name != '\0'; ++name) h = h * 33 + static_cast<unsigned char>(*name);
    return h;
}

constexpr uint32_t sysv_hash(const char *name) noexcept {
    uint32_t h = 0;
    for (; *name != '\0'; ++name) {
        h = (h << 4) + static_cast<unsigned char>(*name);
        const uint32_t high = h & 0xf0000000u;
        h ^= high >> 24;
        h &= ~high;
    }
    return h;
}

// One .dynsym entry.  The st_info/st_other bit layout is the same for ELF32 and ELF64, so the ELF64
// accessor macros are correct for ElfW(Sym) of either class.
class dynsym_entry {
public:
    explicit dynsym_entry(const ElfW(Sym) *raw) noexcept : raw_(raw) {}

    unsigned type() const noexcept { return ELF64_ST_TYPE(raw_->st_info); }
    unsigned binding() const noexcept { return ELF64_ST_BIND(raw_->st_info); }
    unsigned visibility() const noexcept { return ELF64_ST_VISIBILITY(raw_->st_other); }
    ElfW(Addr) value() const noexcept { return raw_->st_value; }
    const char *name(const char *strtab) const noexcept { return strtab + raw_->st_name; }

    // Undefined entries are references to other objects (even when a non-PIC executable gives them a
    // value: that is a canonical PLT stub, not the definition).
    bool is_defined() const noexcept { return raw_->st_shndx != SHN_UNDEF; }
    // Absolute symbols are not relocated by the load bias (glibc's SYMBOL_ADDRESS, since 2.28).
    bool is_absolute() const noexcept { return raw_->st_shndx == SHN_ABS; }
    bool is_tls() const noexcept { return type() == STT_TLS; }
    bool is_ifunc() const noexcept { return type() == STT_GNU_IFUNC; }

    // glibc's check_match: a value of 0 means "no definition here" unless the symbol is absolute or
    // TLS (whose value is an offset into the TLS block, and 0 is a fine offset).
    bool has_value() const noexcept { return value() != 0 || is_absolute() || is_tls(); }

    // Only code and data definitions take part in lookups (no sections, files, ...).
    bool is_code_or_data() const noexcept {
        switch (type()) {
        case STT_NOTYPE: case STT_OBJECT: case STT_FUNC: case STT_COMMON: case STT_TLS: case STT_GNU_IFUNC:
            return true;
        default:
            return false;
        }
    }

    // Hidden and internal symbols bind inside their object: the loader never returns them.
    bool binds_locally() const noexcept { return visibility() == STV_HIDDEN || visibility() == STV_INTERNAL; }

    // Bindings other objects can see.
    bool is_exported_binding() const noexcept {
        return binding() == STB_GLOBAL || binding() == STB_WEAK || binding() == STB_GNU_UNIQUE;
    }

private:
    const ElfW(Sym) *raw_;
};

// One DT_VERSYM entry: the index of the symbol's version (into DT_VERDEF for definitions) plus the
// "hidden" bit that marks a non-default `name@VERSION` definition.
class versym_entry {
public:
    explicit versym_entry(ElfW(Half) raw) noexcept : raw_(raw) {}

    static constexpr ElfW(Half) hidden_bit = 0x8000;

    ElfW(Half) index() const noexcept { return raw_ & static_cast<ElfW(Half)>(~hidden_bit); }
    bool is_hidden() const noexcept { return (raw_ & hidden_bit) != 0; }
    // VER_NDX_LOCAL or VER_NDX_GLOBAL: the symbol carries no version name.
    bool is_unversioned() const noexcept { return index() <= VER_NDX_GLOBAL; }
    // `name@@VERSION`: a named version that an unversioned lookup may pick.
    bool is_default_version() const noexcept { return !is_unversioned() && !is_hidden(); }

private:
    ElfW(Half) raw_;
};

// DT_VERDEF: the chain of version definitions of one object.
class version_definitions {
public:
    version_definitions() noexcept = default;
    version_definitions(const ElfW(Verdef) *first, size_t count) noexcept : first_(first), count_(count) {}

    bool empty() const noexcept { return first_ == nullptr || count_ == 0; }

    // The version index defined under `name`, or 0 (VER_NDX_LOCAL, which no definition uses) when the
    // object does not define that version.  The base definition (VER_FLG_BASE, named after the file's
    // soname) is skipped, exactly like glibc's _dl_check_map_versions: it is not a version a symbol can
    // be looked up by.  `hash` must be sysv_hash(name); comparing it first is what glibc does too.
    ElfW(Half) index_of(const char *name, uint32_t hash, const char *strtab) const noexcept {
        const ElfW(Verdef) *def = first_;
        for (size_t i = 0; def != nullptr && i < count_; ++i) {
            if ((def->vd_flags & VER_FLG_BASE) == 0 && def->vd_hash == hash &&
                strcmp(name_of(def, strtab), name) == 0)
                return static_cast<ElfW(Half)>(def->vd_ndx & ~versym_entry::hidden_bit);
            def = next(def);
        }
        return 0;
    }

    // The name of version `index`, or nullptr (used by the tests to enumerate versioned symbols).
    const char *name_of_index(ElfW(Half) index, const char *strtab) const noexcept {
        const ElfW(Verdef) *def = first_;
        for (size_t i = 0; def != nullptr && i < count_; ++i) {
            if ((def->vd_flags & VER_FLG_BASE) == 0 && (def->vd_ndx & ~versym_entry::hidden_bit) == index)
                return name_of(def, strtab);
            def = next(def);
        }
        return nullptr;
    }

private:
    // A definition's name is its first Verdaux entry; the others name the versions it inherits from.
    static const char *name_of(const ElfW(Verdef) *def, const char *strtab) noexcept {
        const auto *aux = reinterpret_cast<const ElfW(Verdaux) *>(reinterpret_cast<const char *>(def) + def->vd_aux);
        return strtab + aux->vda_name;
    }
    static const ElfW(Verdef) *next(const ElfW(Verdef) *def) noexcept {
        if (def->vd_next == 0) return nullptr;
        return reinterpret_cast<const ElfW(Verdef) *>(reinterpret_cast<const char *>(def) + def->vd_next);
    }

    const ElfW(Verdef) *first_ = nullptr;
    size_t count_ = 0;
};

// DT_GNU_HASH: [nbuckets, symoffset, bloom_size, bloom_shift], bloom words (ElfW(Addr) each), buckets,
// then one hash value per symbol from symoffset on, whose low bit marks the end of a bucket's chain.
class gnu_hash_table {
public:
    gnu_hash_table() noexcept = default;
    explicit gnu_hash_table(const uint32_t *table) noexcept {
        if (table == nullptr) return;
        nbuckets_ = table[0];
        symoffset_ = table[1];
        bloom_size_ = table[2];
        bloom_shift_ = table[3];
        bloom_ = reinterpret_cast<const ElfW(Addr) *>(table + 4);
        buckets_ = reinterpret_cast<const uint32_t *>(bloom_ + bloom_size_);
        chain_ = buckets_ + nbuckets_;
    }

    bool present() const noexcept { return nbuckets_ != 0 && bloom_size_ != 0; }

    // The bloom filter: two bits per name, a clear one proves the name is not in the table.
    bool may_contain(uint32_t hash) const noexcept {
        constexpr uint32_t word_bits = sizeof(ElfW(Addr)) * 8;
        const ElfW(Addr) word = bloom_[(hash / word_bits) % bloom_size_];
        const ElfW(Addr) mask = (ElfW(Addr){1} << (hash % word_bits)) |
                                (ElfW(Addr){1} << ((hash >> bloom_shift_) % word_bits));
        return (word & mask) == mask;
    }

    // Calls visit(symbol_index) for each symbol of `hash`'s chain whose stored hash equals `hash` (the
    // low bit aside) until visit returns true; returns whether it did.
    template <class Visit>
    bool for_each_candidate(uint32_t hash, Visit &&visit) const noexcept {
        if (!present() || !may_contain(hash)) return false;
        uint32_t index = buckets_[hash % nbuckets_];
        if (index < symoffset_) return false;  // empty bucket (0)
        for (;; ++index) {
            const uint32_t stored = chain_[index - symoffset_];
            if (((stored ^ hash) >> 1) == 0 && visit(index)) return true;
            if ((stored & 1) != 0) return false;
        }
    }

    // Number of .dynsym entries: the end of the chain that starts at the highest bucket.  (GNU hash
    // has no explicit count; the tests use this to enumerate every symbol.)
    size_t symbol_count() const noexcept {
        if (!present()) return 0;
        uint32_t last = 0;
        for (uint32_t b = 0; b < nbuckets_; ++b)
            if (buckets_[b] > last) last = buckets_[b];
        if (last < symoffset_) return symoffset_;
        while ((chain_[last - symoffset_] & 1) == 0) ++last;
        return size_t{last} + 1;
    }

private:
    uint32_t nbuckets_ = 0, symoffset_ = 0, bloom_size_ = 0, bloom_shift_ = 0;
    const ElfW(Addr) *bloom_ = nullptr;
    const uint32_t *buckets_ = nullptr;
    const uint32_t *chain_ = nullptr;  // indexed by symbol index - symoffset
};

// DT_HASH (SysV): [nbucket, nchain], buckets, chain; nchain is the number of .dynsym entries.
class sysv_hash_table {
public:
    sysv_hash_table() noexcept = default;
    explicit sysv_hash_table(const uint32_t *table) noexcept {
        if (table == nullptr) return;
        nbucket_ = table[0];
        nchain_ = table[1];
        buckets_ = table + 2;
        chain_ = buckets_ + nbucket_;
    }

    bool present() const noexcept { return nbucket_ != 0; }

    // Calls visit(symbol_index) along `hash`'s chain (every entry: SysV chains store no hash) until
    // visit returns true; returns whether it did.  At most nchain steps, so a cycle cannot hang us.
    template <class Visit>
    bool for_each_candidate(uint32_t hash, Visit &&visit) const noexcept {
        if (!present()) return false;
        uint32_t index = buckets_[hash % nbucket_];
        for (uint32_t steps = 0; index != STN_UNDEF && index < nchain_ && steps < nchain_; ++steps) {
            if (visit(index)) return true;
            index = chain_[index];
        }
        return false;
    }

    size_t symbol_count() const noexcept { return nchain_; }

private:
    uint32_t nbucket_ = 0, nchain_ = 0;
    const uint32_t *buckets_ = nullptr;
    const uint32_t *chain_ = nullptr;
};

// The parts of an object's dynamic section a symbol lookup needs, as run-time pointers.
struct dynamic_section {
    ElfW(Addr) load_bias = 0;  // link_map::l_addr
    const ElfW(Sym) *symtab = nullptr;
    const char *strtab = nullptr;
    gnu_hash_table gnu_hash;
    sysv_hash_table sysv_hash;
    const ElfW(Half) *versym = nullptr;  // DT_VERSYM, one entry per .dynsym entry
    version_definitions verdefs;

    bool has_symbols() const noexcept {
        return symtab != nullptr && strtab != nullptr && (gnu_hash.present() || sysv_hash.present());
    }
    bool has_versions() const noexcept { return versym != nullptr; }

    dynsym_entry symbol(size_t index) const noexcept { return dynsym_entry(&symtab[index]); }
    versym_entry version_index(size_t index) const noexcept { return versym_entry(versym[index]); }
    size_t symbol_count() const noexcept {
        return gnu_hash.present() ? gnu_hash.symbol_count() : sysv_hash.symbol_count();
    }

    // The run-time address of a d_ptr value.  glibc adds l_addr to some d_ptr entries of l_ld in place
    // (DT_HASH, DT_STRTAB, DT_SYMTAB, DT_VERSYM, DT_GNU_HASH, ...) but only when the dynamic section is
    // writable (not the vDSO's), and never DT_VERDEF.  Rather than copy that version-dependent list, the
    // value decides: a relocated pointer is l_addr + vaddr >= l_addr, while an unrelocated one is a
    // link-time vaddr, which for an object linked at 0 (DSOs, PIEs, the vDSO) is smaller than the size of
    // its image and so smaller than l_addr.  When l_addr is 0 (non-PIE executables) both readings agree.
    static ElfW(Addr) runtime_address(ElfW(Addr) d_ptr, ElfW(Addr) load_bias) noexcept {
        return d_ptr < load_bias ? d_ptr + load_bias : d_ptr;
    }

    static dynamic_section of(const link_map *object) noexcept {
        dynamic_section view;
        if (object == nullptr || object->l_ld == nullptr) return view;
        view.load_bias = object->l_addr;
        const ElfW(Verdef) *verdef = nullptr;
        size_t verdefnum = 0;
        for (const ElfW(Dyn) *dyn = object->l_ld; dyn->d_tag != DT_NULL; ++dyn) {
            const auto at = [&] { return runtime_address(dyn->d_un.d_ptr, view.load_bias); };
            switch (dyn->d_tag) {
            case DT_SYMTAB: view.symtab = reinterpret_cast<const ElfW(Sym) *>(at()); break;
            case DT_STRTAB: view.strtab = reinterpret_cast<const char *>(at()); break;
            case DT_GNU_HASH: view.gnu_hash = gnu_hash_table(reinterpret_cast<const uint32_t *>(at())); break;
            case DT_HASH: view.sysv_hash = sysv_hash_table(reinterpret_cast<const uint32_t *>(at())); break;
            case DT_VERSYM: view.versym = reinterpret_cast<const ElfW(Half) *>(at()); break;
            case DT_VERDEF: verdef = reinterpret_cast<const ElfW(Verdef) *>(at()); break;
            case DT_VERDEFNUM: verdefnum = dyn->d_un.d_val; break;
            default: break;
            }
        }
        view.verdefs = version_definitions(verdef, verdefnum);
        return view;
    }
};

// An object's program headers and the bias that turns their p_vaddr into run-time addresses.
struct program_headers {
    const ElfW(Phdr) *table = nullptr;
    size_t count = 0;
    ElfW(Addr) bias = 0;

    bool present() const noexcept { return table != nullptr && count != 0; }

    const ElfW(Phdr) *find(ElfW(Word) type) const noexcept {
        for (size_t i = 0; i < count; ++i)
            if (table[i].p_type == type) return &table[i];
        return nullptr;
    }

    // Whether these headers describe the object whose dynamic section is at `dynamic`: the check that
    // lets us try several sources of program headers and keep only the one that really matches.
    bool describes(const void *dynamic) const noexcept {
        const ElfW(Phdr) *pt_dynamic = present() ? find(PT_DYNAMIC) : nullptr;
        return pt_dynamic != nullptr && dynamic != nullptr &&
               bias + pt_dynamic->p_vaddr == reinterpret_cast<ElfW(Addr)>(dynamic);
    }

    bool load_segment_contains(const void *address) const noexcept {
        const auto addr = reinterpret_cast<ElfW(Addr)>(address);
        for (size_t i = 0; i < count; ++i) {
            const ElfW(Phdr) &ph = table[i];
            if (ph.p_type == PT_LOAD && addr - (bias + ph.p_vaddr) < ph.p_memsz) return true;
        }
        return false;
    }

    // The headers of the ELF image whose file header is mapped at `ehdr`, after checking that it looks
    // like one of ours.  The header is file offset 0, so its link-time address is the first PT_LOAD's
    // p_vaddr - p_offset; the bias is the difference from where it actually is.
    static program_headers from_elf_header(const void *ehdr_address) noexcept {
        program_headers headers;
        const auto *ehdr = static_cast<const ElfW(Ehdr) *>(ehdr_address);
        if (ehdr == nullptr || memcmp(ehdr->e_ident, ELFMAG, SELFMAG) != 0 ||
            ehdr->e_ident[EI_CLASS] != (sizeof(ElfW(Addr)) == 8 ? ELFCLASS64 : ELFCLASS32) ||
            ehdr->e_phentsize != sizeof(ElfW(Phdr)) || ehdr->e_phnum == 0 || ehdr->e_phnum == PN_XNUM)
            return headers;
        headers.table = reinterpret_cast<const ElfW(Phdr) *>(static_cast<const char *>(ehdr_address) + ehdr->e_phoff);
        headers.count = ehdr->e_phnum;
        for (size_t i = 0; i < headers.count; ++i) {
            const ElfW(Phdr) &ph = headers.table[i];
            if (ph.p_type == PT_LOAD) {
                headers.bias = reinterpret_cast<ElfW(Addr)>(ehdr_address) - (ph.p_vaddr - ph.p_offset);
                return headers;
            }
        }
        return program_headers{};
    }

    // The headers the kernel passed in the auxiliary vector for the executable (AT_PHDR): the bias is
    // where PT_PHDR ended up minus where it was linked, or 0 without PT_PHDR (as glibc's rtld does).
    static program_headers from_auxv_phdr(const ElfW(Phdr) *phdr, size_t phnum) noexcept {
        program_headers headers{phdr, phnum, 0};
        if (!headers.present()) return program_headers{};
        if (const ElfW(Phdr) *self = headers.find(PT_PHDR))
            headers.bias = reinterpret_cast<ElfW(Addr)>(phdr) - self->p_vaddr;
        return headers;
    }
};

namespace detail {

// The lookup core behind lookup_in, over an already-read dynamic section.  Declared here (hidden, like
// everything in this library) so the unit tests can run it with one hash table removed and check that
// the GNU and SysV paths agree on objects that carry both.
void *lookup_in_dynamic(const dynamic_section &dynamic, const char *name, const char *version) noexcept;

}  // namespace detail

}  // namespace mallochooks::elf

#endif
