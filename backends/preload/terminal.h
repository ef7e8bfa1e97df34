// SPDX-License-Identifier: MIT
// The preload backend's terminal: each hook calls the next definition of its allocator function after
// this object in the link map (RTLD_NEXT, found by fake_dlsym, which does not allocate), through a table
// of pointers.  The table starts out pointing at resolver stubs, so the first call through any entry
// looks all of them up; until that has succeeded (or while this thread is in the middle of it),
// allocations come from the bootstrap arena, whose chunks free, realloc and usable_size recognise forever
// after.  No static constructor is involved and nothing here takes a lock.
#ifndef MALLOCHOOKS_BACKENDS_PRELOAD_TERMINAL_H
#define MALLOCHOOKS_BACKENDS_PRELOAD_TERMINAL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <atomic>

#include "backends/terminal.h"
#include "mallochooks/dynamic.h"
#include "libmallochooks/bootstrap_arena.h"
#include "libmallochooks/foreign_calls.h"
#include "mallochooks/family.h"

namespace mallochooks::preload {

// One pointer per hook, to the underlying allocator function (malloc_usable_size for usable_size).
struct next_functions {
#define MALLOCHOOKS_NEXT_FIELD_(r, data, e) \
    MALLOCHOOKS_RET(e) (*MALLOCHOOKS_NAME(e))(MALLOCHOOKS_TYPES(e));
    MALLOCHOOKS_FOR_EACH(MALLOCHOOKS_NEXT_FIELD_, ~, MALLOCHOOKS_HOOK_API)
#undef MALLOCHOOKS_NEXT_FIELD_
};

extern next_functions next_fns __attribute__((visibility("hidden")));
// The same for glibc's __libc_ names (libc_terminal below): the next definition of __libc_<underlying>
// (malloc_usable_size, which has no such name, and any glibc lacks: the plain one's, next_fns').
extern next_functions libc_fns __attribute__((visibility("hidden")));

// Whether this thread is inside the terminal's call of an allocator built on glibc's __libc_ names (a
// replacement whose malloc calls __libc_malloc, like the tests' libifuncmalloc.so; terminal.cc, resolve):
// its __libc_ calls are then that allocator reaching glibc's, under the chain's own call, and the
// __libc_ entry points send them straight on, unhooked.
bool inside_next_allocator() __attribute__((visibility("hidden")));

// Look the next definitions up now if that has not been done; true once they are known.
bool resolve() __attribute__((visibility("hidden")));

// The out-of-line halves of free, realloc and usable_size for pointers the bootstrap arena may own: the
// exact ownership test, then the arena or the real function.  realloc of a bootstrap chunk moves it to
// the real allocator (or a new bootstrap chunk).
void free_maybe_arena(void *ptr) __attribute__((visibility("hidden"), cold));
void *realloc_maybe_arena(void *ptr, size_t size) __attribute__((visibility("hidden"), cold));
size_t usable_size_maybe_arena(void *ptr) __attribute__((visibility("hidden"), cold));

// An allocator behind us that defines the C++ allocation functions itself (tcmalloc does; libstdc++'s
// call malloc): its operator new and delete do not go through malloc, and its malloc_usable_size may
// call operator new (tcmalloc's does), so the preloaded library hands every C++ call straight to it,
// unhooked, as if it were not interposed (the chunks are that allocator's business, as they were
// before the C++ functions joined the family).  The same when the process's malloc is not this
// library's (an executable with its own, another preload first): libstdc++'s operator new then reaches
// that malloc, as the program expects.  The next definition of `name` when that is the case,
// else nullptr (then the call goes through the hooks).  `cache`: one per function, zero at first.
void *cxx_delegate(const char *name, void **cache) __attribute__((visibility("hidden")));
// What cxx_delegate found: 0 not known yet; 1 the C++ functions go through the hooks; 2 they go to the
// allocator behind us.  terminal::cxx_next reads it inline (a call on every operator new and delete cost
// 10 instructions).
extern std::atomic<int> cxx_mode __attribute__((visibility("hidden")));

// The allocator's malloc for a caller that must know the chunk is not the bootstrap arena's (a layer that
// would otherwise ask arena_owns: hooks.h's exit 7): until the next definitions are resolved, a stub that
// resolves them and then calls the real malloc, or answers `not_served` when it cannot (this thread is
// resolving, or the process has no malloc to find), where terminal::malloc would have served the call
// from the arena.  So a chunk it returns is never the arena's, with no test after the call: the caller
// tests the result for null anyway, and tests `<= not_served` instead (then it asks malloc, whose answer
// may be the arena's).  One pointer per table, replaced whole once resolved, as the tables' entries are.
//
// Its chunks also start at least `unowned_spacing` (32) bytes apart, whatever the request (the heap
// index's granules need it): glibc's malloc, whose smallest chunk is 32 bytes, is called directly; any
// other allocator (jemalloc and mimalloc have 8- and 16-byte classes) through a function that raises a
// smaller request to 32.  So the caller need not raise it itself (a compare and a conditional move on
// every allocation, for the allocator nearly every program has).
constexpr size_t unowned_spacing = 32;
using unowned_malloc_fn = void *(*)(size_t);
constexpr uintptr_t not_served = 1;
extern unowned_malloc_fn unowned_malloc __attribute__((visibility("hidden")));
extern unowned_malloc_fn libc_unowned_malloc __attribute__((visibility("hidden")));

// Read a table entry: the stubs are replaced at most once, by a whole-pointer store.
template <class F> inline F next(F *slot) { return __atomic_load_n(slot, __ATOMIC_RELAXED); }

// The terminal of the __libc_ entry points (MALLOCHOOKS_LIBC_USER_API): a program's __libc_malloc goes
// through the same layers as its malloc, then to the next definition of __libc_malloc, which is where the
// call went without this library: glibc's, or that of an allocator behind this library that replaces
// glibc's __libc_ names too (tcmalloc and mimalloc do: their chunks must stay theirs, since free reaches
// them).  Not the next `malloc`: an allocator built on glibc's (its malloc calls __libc_malloc) would then
// be entered again from its own call, forever.  That allocator's own calls of __libc_malloc, made under
// the chain's call to it, are no program's: they skip the hooks (inside_next_allocator).
struct libc_terminal {
    static void init() { resolve(); }

    static void *malloc(size_t size, const void *) { return next(&libc_fns.malloc)(size); }
    static void *calloc(size_t nmemb, size_t size, const void *) { return next(&libc_fns.calloc)(nmemb, size); }
    static void *memalign(size_t alignment, size_t size, const void *) {
        return next(&libc_fns.memalign)(alignment, size);
    }
    static void free(void *ptr, const void *) {
        if (__builtin_expect(bootstrap_arena().may_own(ptr), 0)) return free_maybe_arena(ptr);
        next(&libc_fns.free)(ptr);
    }
    static void *realloc(void *ptr, size_t size, const void *) {
        if (__builtin_expect(bootstrap_arena().may_own(ptr), 0)) return realloc_maybe_arena(ptr, size);
        return next(&libc_fns.realloc)(ptr, size);
    }
    static size_t usable_size(void *ptr, const void *) {
        if (__builtin_expect(bootstrap_arena().may_own(ptr), 0)) return usable_size_maybe_arena(ptr);
        return next(&libc_fns.usable_size)(ptr);
    }
    static bool arena_owns(const void *ptr) {
        return __builtin_expect(bootstrap_arena().may_own(ptr), 0) && bootstrap_arena().owns(ptr);
    }
    static constexpr uintptr_t not_served = preload::not_served;
    static constexpr size_t unowned_spacing = preload::unowned_spacing;
    static void *malloc_unowned(size_t size, const void *) { return next(&libc_unowned_malloc)(size); }
    static void free_unowned(void *ptr, const void *) { next(&libc_fns.free)(ptr); }
    static size_t usable_size_unowned(void *ptr, const void *) { return next(&libc_fns.usable_size)(ptr); }
    // Also inside a call of this library's exported layer into a link-time output's own allocator
    // (libmallochooks/foreign_calls.h): the same situation, reached through the dynamic ABI.
    static bool unhooked() { return inside_next_allocator() || in_foreign_call(); }
};
static_assert(is_terminal<libc_terminal>);

// How this library's exported layer marks its calls (include/mallochooks/dynamic.h, layer_of's Scope):
// from the first adopting chain whose allocator (the objects of its table's malloc or free) imports one
// of glibc's __libc_ names, every call of the layer is marked (libmallochooks/foreign_calls.h).
void adopt_table(const mallochooks_hooks *table) __attribute__((visibility("hidden")));
extern bool adopted_allocator_on_libc __attribute__((visibility("hidden")));
struct adopted_scope : foreign_call_scope {
    static void adopt(const mallochooks_hooks *table) { adopt_table(table); }
    static bool active() { return __atomic_load_n(&adopted_allocator_on_libc, __ATOMIC_RELAXED); }
};

struct terminal {
    // Where the __libc_ entry points end (libmallochooks/entry_points.h); how the exported layer marks
    // its calls.
    using libc_side = libc_terminal;
    using adopted_scope = preload::adopted_scope;
    static void init() { resolve(); }

    static void *malloc(size_t size, const void *) { return next(&next_fns.malloc)(size); }
    static void *calloc(size_t nmemb, size_t size, const void *) { return next(&next_fns.calloc)(nmemb, size); }
    static void *memalign(size_t alignment, size_t size, const void *) {
        return next(&next_fns.memalign)(alignment, size);
    }
    static void free(void *ptr, const void *) {
        if (__builtin_expect(bootstrap_arena().may_own(ptr), 0)) return free_maybe_arena(ptr);
        next(&next_fns.free)(ptr);
    }
    static void *realloc(void *ptr, size_t size, const void *) {
        if (__builtin_expect(bootstrap_arena().may_own(ptr), 0)) return realloc_maybe_arena(ptr, size);
        return next(&next_fns.realloc)(ptr, size);
    }
    static size_t usable_size(void *ptr, const void *) {
        if (__builtin_expect(bootstrap_arena().may_own(ptr), 0)) return usable_size_maybe_arena(ptr);
        return next(&next_fns.usable_size)(ptr);
    }

    // For a layer that asked, when the chunk was handed out, whether the bootstrap arena owns it, and was
    // told no (so for the chunk's whole life: the arena never maps over a live chunk of the allocator):
    // free and usable_size without the arena test.
    static bool arena_owns(const void *ptr) {
        return __builtin_expect(bootstrap_arena().may_own(ptr), 0) && bootstrap_arena().owns(ptr);
    }
    // malloc's allocator call, for such a layer: a chunk that is never the arena's, or nullptr (failed),
    // or not_served (ask malloc: see unowned_malloc).
    static constexpr uintptr_t not_served = preload::not_served;
    static constexpr size_t unowned_spacing = preload::unowned_spacing;
    static void *malloc_unowned(size_t size, const void *) { return next(&unowned_malloc)(size); }
    static void free_unowned(void *ptr, const void *) { next(&next_fns.free)(ptr); }
    static void *cxx_next(const char *name, void **cache) {
        if (__builtin_expect(cxx_mode.load(std::memory_order_acquire) == 1, 1)) return nullptr;
        return cxx_delegate(name, cache);
    }
    static size_t usable_size_unowned(void *ptr, const void *) { return next(&next_fns.usable_size)(ptr); }
};
static_assert(is_terminal<terminal>);

}  // namespace mallochooks::preload

#endif
