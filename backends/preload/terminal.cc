// SPDX-License-Identifier: MIT
// Resolution of the preload terminal's next definitions (see terminal.h).
#include "backends/preload/terminal.h"

#include <elf.h>
#include <link.h>

#include <atomic>
#include <type_traits>

#include "libmallochooks/elf/fake_dlsym.h"

// The linker defines _DYNAMIC in every object (declared by <link.h>): it identifies this object in the
// link map without any address-range search.  Hidden, so the reference binds to this object's own.
extern ElfW(Dyn) _DYNAMIC[] __attribute__((visibility("hidden")));

namespace mallochooks::preload {

namespace {

// Set while this thread resolves, so that an allocation made meanwhile (by an IFUNC resolver, say)
// goes to the bootstrap arena instead of recursing.  initial-exec: see libmallochooks/guard.h.
__thread bool resolving __attribute__((tls_model("initial-exec")));
std::atomic<bool> resolved{false};

// Fallbacks used until resolution succeeds.  Only bootstrap chunks can exist before then, but a pointer
// the arena does not own is left alone rather than trusted.
void *fallback_malloc(size_t size) { return bootstrap_arena().malloc(size); }
void *fallback_calloc(size_t nmemb, size_t size) { return bootstrap_arena().calloc(nmemb, size); }
void *fallback_memalign(size_t alignment, size_t size) { return bootstrap_arena().memalign(alignment, size); }
void fallback_free(void *ptr) {
    if (bootstrap_arena().owns(ptr)) bootstrap_arena().free(ptr);
}
void *fallback_realloc(void *ptr, size_t size) {
    return bootstrap_arena().owns(ptr) ? bootstrap_arena().realloc(ptr, size) : nullptr;
}
size_t fallback_usable_size(void *ptr) {
    return bootstrap_arena().owns(ptr) ? bootstrap_arena().usable_size(ptr) : 0;
}

// The stubs the tables start with: resolve, then call the real function or the fallback.
#define MALLOCHOOKS_STUB_(r, table, e)                                                                \
    MALLOCHOOKS_RET(e) BOOST_PP_CAT(table, BOOST_PP_CAT(_stub_, MALLOCHOOKS_NAME(e)))(MALLOCHOOKS_DECLS(e)) { \
        if (resolve()) return table.MALLOCHOOKS_NAME(e)(MALLOCHOOKS_ARGS(e));                         \
        return BOOST_PP_CAT(fallback_, MALLOCHOOKS_NAME(e))(MALLOCHOOKS_ARGS(e));                     \
    }
MALLOCHOOKS_FOR_EACH(MALLOCHOOKS_STUB_, next_fns, MALLOCHOOKS_HOOK_API)
MALLOCHOOKS_FOR_EACH(MALLOCHOOKS_STUB_, libc_fns, MALLOCHOOKS_HOOK_API)
#undef MALLOCHOOKS_STUB_

// Set while the terminal's call into an allocator built on glibc's __libc_ names is in flight (see
// resolve): that allocator's own __libc_ calls then skip the hooks.  A depth saved and restored, so
// that a signal handler's allocation inside the call leaves it as it found it.  initial-exec: see
// libmallochooks/guard.h.
__thread unsigned in_next_allocator __attribute__((tls_model("initial-exec")));

struct next_allocator_scope {
    unsigned saved = in_next_allocator;
    next_allocator_scope() { in_next_allocator = saved + 1; }
    ~next_allocator_scope() { in_next_allocator = saved; }
};

// Such an allocator's functions, which the table then reaches through the marking functions below.
constinit next_functions allocator_fns{};
#define MALLOCHOOKS_MARKED_(r, data, e)                                                               \
    MALLOCHOOKS_RET(e) BOOST_PP_CAT(marked_, MALLOCHOOKS_NAME(e))(MALLOCHOOKS_DECLS(e)) {             \
        next_allocator_scope scope;                                                                   \
        return allocator_fns.MALLOCHOOKS_NAME(e)(MALLOCHOOKS_ARGS(e));                                \
    }
MALLOCHOOKS_FOR_EACH(MALLOCHOOKS_MARKED_, ~, MALLOCHOOKS_HOOK_API)
#undef MALLOCHOOKS_MARKED_

// glibc's __libc_ names (family.h), for the question whether an allocator imports one.
constexpr const char *libc_names[] = {
#define MALLOCHOOKS_LIBC_NAME_(r, data, e) BOOST_PP_STRINGIZE(MALLOCHOOKS_NAME(e)),
    MALLOCHOOKS_FOR_EACH(MALLOCHOOKS_LIBC_NAME_, ~, MALLOCHOOKS_LIBC_USER_API)
#undef MALLOCHOOKS_LIBC_NAME_
};
constexpr size_t n_libc_names = sizeof libc_names / sizeof libc_names[0];

// The next definition of `name`: after this object in link-map order (RTLD_NEXT); if this object was
// dlopened and nothing follows it, anywhere else but here.  *where: the object it is in.
void *find_next(const link_map *self, const char *name, const link_map **where = nullptr) {
    if (self != nullptr) {
        if (void *f = elf::lookup(name, nullptr, self, where)) return f;
    }
    for (const link_map *m = elf::first_object(); m != nullptr; m = m->l_next) {
        if (m == self) continue;
        if (void *f = elf::lookup_in(m, name)) {
            if (where != nullptr) *where = m;
            return f;
        }
    }
    return nullptr;
}

// The allocator behind us, when it is not libc's, is called through these rather than jumped to: a
// library with link-time hooks of its own (wrapdl: it defines malloc, and its malloc's entry point adopts
// this tool) tells the calls the tool's terminal forwards, for which the tool has raised its events
// already, from the program's own calls by their return address lying inside the tool
// (backends/linktime/adopted_layer.h).  A jump would leave the return address of whoever called the
// tool, and every call would cross the tool twice (a free: a false double free in the heap index).
// libc's malloc reads no return address: it is jumped to, as before (the cost of every program over glibc).
next_functions behind{};
template <class R, class... A> inline R call_through(R (*f)(A...), A... a) {
    if constexpr (std::is_void_v<R>) {
        f(a...);
        __asm__ volatile("" ::: "memory");  // something after the call: no tail call
    } else {
        R result = f(a...);
        __asm__ volatile("" : "+r"(result));
        return result;
    }
}
#define MALLOCHOOKS_CALL_THROUGH_(r, data, e)                                                          \
    __attribute__((noinline)) MALLOCHOOKS_RET(e) BOOST_PP_CAT(call_, MALLOCHOOKS_NAME(e))(MALLOCHOOKS_DECLS(e)) { \
        return call_through(behind.MALLOCHOOKS_NAME(e), MALLOCHOOKS_ARGS(e));                          \
    }
MALLOCHOOKS_FOR_EACH(MALLOCHOOKS_CALL_THROUGH_, ~, MALLOCHOOKS_HOOK_API)
#undef MALLOCHOOKS_CALL_THROUGH_

// The stubs of malloc_unowned (terminal.h): resolve, then the real malloc; never the arena's chunk.
void *unowned_stub_malloc(size_t size) { return resolve() ? next_fns.malloc(size) : reinterpret_cast<void *>(not_served); }
void *libc_unowned_stub_malloc(size_t size) {
    return resolve() ? libc_fns.malloc(size) : reinterpret_cast<void *>(not_served);
}
// And, once resolved, for an allocator that is not glibc's: its requests raised to unowned_spacing.
void *spaced_malloc(size_t size) { return next_fns.malloc(size < unowned_spacing ? unowned_spacing : size); }
void *libc_spaced_malloc(size_t size) { return libc_fns.malloc(size < unowned_spacing ? unowned_spacing : size); }
// Is f glibc's own function (in the object that defines __libc_start_main)?
bool in_libc(const void *f) {
    const link_map *m = elf::object_containing(f);
    return m != nullptr && elf::lookup_in(m, "__libc_start_main") != nullptr;
}

}  // namespace

constinit unowned_malloc_fn unowned_malloc = unowned_stub_malloc;
constinit unowned_malloc_fn libc_unowned_malloc = libc_unowned_stub_malloc;

#define MALLOCHOOKS_STUB_INIT_(r, table, e) BOOST_PP_CAT(table, BOOST_PP_CAT(_stub_, MALLOCHOOKS_NAME(e))),
constinit next_functions next_fns = {MALLOCHOOKS_FOR_EACH(MALLOCHOOKS_STUB_INIT_, next_fns, MALLOCHOOKS_HOOK_API)};
constinit next_functions libc_fns = {MALLOCHOOKS_FOR_EACH(MALLOCHOOKS_STUB_INIT_, libc_fns, MALLOCHOOKS_HOOK_API)};
#undef MALLOCHOOKS_STUB_INIT_

bool inside_next_allocator() { return in_next_allocator != 0; }

constinit bool adopted_allocator_on_libc = false;

void adopt_table(const mallochooks_hooks *table) {
    if (table == nullptr) return;
    const link_map *allocator = elf::object_containing(reinterpret_cast<const void *>(table->malloc));
    const link_map *releaser = elf::object_containing(reinterpret_cast<const void *>(table->free));
    if (elf::imports_any(allocator, libc_names, n_libc_names) || elf::imports_any(releaser, libc_names, n_libc_names))
        __atomic_store_n(&adopted_allocator_on_libc, true, __ATOMIC_RELAXED);
}


bool resolve() {
    if (resolved.load(std::memory_order_acquire)) return true;
    if (resolving) return false;
    resolving = true;
    const link_map *self = elf::object_with_dynamic(_DYNAMIC);
    next_functions found{};
    bool ok = true;
    const link_map *allocator = nullptr;
#define MALLOCHOOKS_FIND_(r, data, e)                                                                 \
    found.MALLOCHOOKS_NAME(e) = reinterpret_cast<decltype(found.MALLOCHOOKS_NAME(e))>(                \
        find_next(self, BOOST_PP_STRINGIZE(MALLOCHOOKS_UNDERLYING(e)), &allocator));                  \
    ok = ok && found.MALLOCHOOKS_NAME(e) != nullptr;
    MALLOCHOOKS_FOR_EACH(MALLOCHOOKS_FIND_, ~, MALLOCHOOKS_HOOK_API)
#undef MALLOCHOOKS_FIND_
    // libc is the object that defines __libc_start_main; any other allocator is called through.  (The
    // last function found decides: usable size, which such an allocator defines with the rest.)
    if (ok && allocator != nullptr && elf::lookup_in(allocator, "__libc_start_main") == nullptr) {
        behind = found;
#define MALLOCHOOKS_THROUGH_(r, data, e) found.MALLOCHOOKS_NAME(e) = &BOOST_PP_CAT(call_, MALLOCHOOKS_NAME(e));
        MALLOCHOOKS_FOR_EACH(MALLOCHOOKS_THROUGH_, ~, MALLOCHOOKS_HOOK_API)
#undef MALLOCHOOKS_THROUGH_
    }
    if (ok) {
        // glibc's __libc_ names, each the next definition of __libc_<underlying>, else the plain one's.
        next_functions found_libc{};
#define MALLOCHOOKS_FIND_LIBC_(r, data, e)                                                            \
    found_libc.MALLOCHOOKS_NAME(e) = reinterpret_cast<decltype(found_libc.MALLOCHOOKS_NAME(e))>(      \
        find_next(self, "__libc_" BOOST_PP_STRINGIZE(MALLOCHOOKS_UNDERLYING(e))));                    \
    if (found_libc.MALLOCHOOKS_NAME(e) == nullptr) found_libc.MALLOCHOOKS_NAME(e) = found.MALLOCHOOKS_NAME(e);
        MALLOCHOOKS_FOR_EACH(MALLOCHOOKS_FIND_LIBC_, ~, MALLOCHOOKS_HOOK_API)
#undef MALLOCHOOKS_FIND_LIBC_
        // An allocator behind this library that is built on glibc's __libc_ names (libifuncmalloc.so: its
        // malloc in its object calls __libc_malloc, which glibc defines) is reached through the marking
        // functions, so that its own __libc_ calls, made under ours, go straight to glibc's.  Built on
        // them: it is not the object that defines the __libc_ names we reach (glibc, tcmalloc and mimalloc
        // define both), and it imports one of them (jemalloc does not: the marking would cost it 13
        // instructions per call, 39 per malloc/free pair, callgrind).  Tested by the objects, not by
        // return addresses: the allocator's `free(p) { __libc_free(p); }` is a tail call, as is the
        // terminal's call of it, so the return address is the program's.
        const link_map *allocator = elf::object_containing(reinterpret_cast<const void *>(found.malloc));
        const link_map *releaser = elf::object_containing(reinterpret_cast<const void *>(found.free));
        if (allocator != elf::object_containing(reinterpret_cast<const void *>(found_libc.malloc)) &&
            (elf::imports_any(allocator, libc_names, n_libc_names) ||
             elf::imports_any(releaser, libc_names, n_libc_names))) {
            allocator_fns = found;
#define MALLOCHOOKS_MARK_(r, data, e) found.MALLOCHOOKS_NAME(e) = BOOST_PP_CAT(marked_, MALLOCHOOKS_NAME(e));
            MALLOCHOOKS_FOR_EACH(MALLOCHOOKS_MARK_, ~, MALLOCHOOKS_HOOK_API)
#undef MALLOCHOOKS_MARK_
        }
        // Each pointer is replaced whole; a racing thread sees either its stub (which resolves again,
        // harmlessly) or the real function.
#define MALLOCHOOKS_PUBLISH_(r, data, e)                                                              \
    __atomic_store_n(&next_fns.MALLOCHOOKS_NAME(e), found.MALLOCHOOKS_NAME(e), __ATOMIC_RELEASE);     \
    __atomic_store_n(&libc_fns.MALLOCHOOKS_NAME(e), found_libc.MALLOCHOOKS_NAME(e), __ATOMIC_RELEASE);
        MALLOCHOOKS_FOR_EACH(MALLOCHOOKS_PUBLISH_, ~, MALLOCHOOKS_HOOK_API)
#undef MALLOCHOOKS_PUBLISH_
        // glibc's malloc (its chunks are at least 32 bytes: see unowned_malloc), or any other through the
        // function that raises its requests.
        __atomic_store_n(&unowned_malloc, in_libc(reinterpret_cast<const void *>(found.malloc)) ? found.malloc : spaced_malloc,
                         __ATOMIC_RELEASE);
        __atomic_store_n(&libc_unowned_malloc,
                         in_libc(reinterpret_cast<const void *>(found_libc.malloc)) ? found_libc.malloc : libc_spaced_malloc,
                         __ATOMIC_RELEASE);
        resolved.store(true, std::memory_order_release);
    }
    resolving = false;
    return ok;
}

constinit std::atomic<int> cxx_mode{0};

void *cxx_delegate(const char *name, void **cache) {
    std::atomic<int> &mode = cxx_mode;
    int m = mode.load(std::memory_order_acquire);
    if (m == 0) {
        // Also when the process's malloc is not ours (an executable defining its own, another preload
        // first): then libstdc++'s operator new, which calls that malloc, is what the program gets.
        const link_map *self = elf::object_with_dynamic(_DYNAMIC), *runtime = nullptr, *where = nullptr,
                       *malloc_where = nullptr;
        elf::lookup("_ZSt15get_new_handlerv", nullptr, nullptr, &runtime);
        const bool own = elf::lookup("_Znwm", nullptr, self, &where) != nullptr && where != runtime;
        const bool ours = elf::lookup("malloc", nullptr, nullptr, &malloc_where) != nullptr && malloc_where == self;
        m = own || !ours ? 2 : 1;
        mode.store(m, std::memory_order_release);
    }
    if (m == 1) return nullptr;
    void *f = __atomic_load_n(cache, __ATOMIC_ACQUIRE);
    if (f == nullptr) {
        f = find_next(elf::object_with_dynamic(_DYNAMIC), name);
        __atomic_store_n(cache, f, __ATOMIC_RELEASE);
    }
    return f;
}

void free_maybe_arena(void *ptr) {
    if (bootstrap_arena().owns(ptr)) return bootstrap_arena().free(ptr);
    next(&next_fns.free)(ptr);
}

size_t usable_size_maybe_arena(void *ptr) {
    if (bootstrap_arena().owns(ptr)) return bootstrap_arena().usable_size(ptr);
    return next(&next_fns.usable_size)(ptr);
}

void *realloc_maybe_arena(void *ptr, size_t size) {
    if (!bootstrap_arena().owns(ptr)) return next(&next_fns.realloc)(ptr, size);
    void *q = resolve() ? next_fns.malloc(size) : bootstrap_arena().malloc(size);
    if (q == nullptr) return nullptr;
    const size_t old = bootstrap_arena().usable_size(ptr);
    memcpy(q, ptr, old < size ? old : size);
    bootstrap_arena().free(ptr);
    return q;
}

}  // namespace mallochooks::preload
