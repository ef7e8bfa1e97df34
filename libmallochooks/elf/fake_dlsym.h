// SPDX-License-Identifier: MIT
// fake_dlsym: symbol lookup over the dynamic loader's link map that never allocates, never takes a lock
// and never calls back into the dynamic loader, so it can run inside malloc before the real allocator is
// known.  It walks _r_debug's link map and each object's .dynsym through its GNU hash table (SysV hash as
// a fallback), honours symbol versions the way glibc's dlsym/dlvsym do (an unversioned lookup takes the
// default `@@` version and never a hidden one) and calls IFUNC resolvers.
//
// Thread-safety: lookups read the link map without the loader's lock, like every lock-free walker of
// r_debug; a concurrent dlopen may or may not be seen, and a concurrent dlclose of the object being
// searched is the caller's problem (the backends only look up objects that cannot go away: libc, the
// object that defines the allocator, the executable).
#ifndef MALLOCHOOKS_ELF_FAKE_DLSYM_H
#define MALLOCHOOKS_ELF_FAKE_DLSYM_H

#include <link.h>
#include <stddef.h>
#include <stdint.h>

namespace mallochooks::elf {

// The link_map entry of the object whose dynamic section is `dynamic` (pass `_DYNAMIC` to find the
// calling object itself), or nullptr.
const link_map *object_with_dynamic(const void *dynamic) noexcept;

// The link_map entry of the object whose loaded segments (PT_LOAD) contain `addr`, or nullptr.
const link_map *object_containing(const void *addr) noexcept;

// The first object of the link map (the executable), or nullptr in a process without one (a -static
// executable that never dlopened anything: its _r_debug, if linked at all, is empty).
const link_map *first_object() noexcept;

// The addresses an object's loaded segments (PT_LOAD) span: [begin, end).  Empty (begin == end) when
// its program headers cannot be found.  The loader reserves the whole span when it maps an object, so
// nothing else is mapped between its segments and a range test is as good as a per-segment one.
struct address_range {
    uintptr_t begin = 0, end = 0;
    bool contains(const void *address) const noexcept {
        return reinterpret_cast<uintptr_t>(address) - begin < end - begin;
    }
};
address_range extent_of(const link_map *object) noexcept;

// Whether `object` imports one of `names` (n of them): an undefined entry of that name in its .dynsym.
// Reads every entry: for a decision made once, not per call.
bool imports_any(const link_map *object, const char *const *names, size_t n) noexcept;

// Look `name` up in one object only.  version == nullptr: unversioned lookup (dlsym rules); otherwise the
// symbol with exactly that version name (dlvsym rules).  Returns the symbol's run-time address (the
// IFUNC resolver's result for STT_GNU_IFUNC), or nullptr when the object does not define it.
void *lookup_in(const link_map *object, const char *name, const char *version = nullptr) noexcept;

// Search every object of the link map in order, starting after `after` (RTLD_NEXT semantics when `after`
// is the caller's object), or from the first object when `after` is nullptr (RTLD_DEFAULT semantics).
// If `where` is non-null it receives the object the symbol was found in.
void *lookup(const char *name, const char *version = nullptr, const link_map *after = nullptr,
             const link_map **where = nullptr) noexcept;

}  // namespace mallochooks::elf

#endif
