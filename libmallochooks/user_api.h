// SPDX-License-Identifier: MIT
// The user API, translated into the hook API with glibc 2.36's semantics.
//
// front<Chain> is the chain as the user API enters it: it initialises the chain on first use (post_init
// is raised before any other event, with no static constructor involved) and sends nested calls (made
// while an event client runs, see guard.h) straight to the terminal.
//
// user_api<Front> implements every function of MALLOCHOOKS_USER_API on top of the hooks: argument checks
// and errno exactly as glibc 2.36 does them, C++'s rules for
// operator new and delete (cxx_new and cxx_delete, then the new_handler loop and std::bad_alloc as
// [new.delete] requires, cxx_runtime.h), and the degenerate cases mapped so that each user call raises
// each event at most once (realloc(NULL, n) is a malloc, realloc(p, 0) a free; calloc's and reallocarray's
// overflow and posix_memalign's EINVAL raise no event at all).  docs/events.md lists the sequences;
// tests/integration/semantics compares a program's observable behaviour with and without hooks.
#ifndef MALLOCHOOKS_USER_API_H
#define MALLOCHOOKS_USER_API_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/auxv.h>

#include <atomic>
#include <new>
#include <type_traits>

#include "libmallochooks/cxx_runtime.h"
#include "libmallochooks/guard.h"
#include "mallochooks/hooks.h"

namespace mallochooks {

//
// front<Chain, Owner>: a second route into the layers of the chain Owner (Chain is Owner over another
// terminal: chain::over), ready when Owner's front is and initialised by it, so that no layer's init runs
// twice (an event layer's raises post_init).  Its terminal must need no init of its own beyond what
// Owner's init does (preload::libc_terminal is resolved with preload::terminal).
template <class Chain, class Owner = Chain> struct front {
    using terminal = typename Chain::terminal;

    // 0: not initialised; 1: some thread is initialising; 2: ready.  Constant-initialised.  (Owner's is
    // the one read when Owner is another chain.)
    inline static std::atomic<int> state{0};

    // Initialise the chain if nobody has; true when events may be raised.  Threads that arrive while
    // another initialises do not wait (a wait is a lock a fork could leave held): they use the terminal.
    static bool try_init() {
        if constexpr (!std::is_same_v<Owner, Chain>) return front<Owner>::try_init();
        int s = state.load(std::memory_order_acquire);
        if (s == 2) return true;
        if (s == 1 || !state.compare_exchange_strong(s, 1, std::memory_order_acq_rel)) {
            return state.load(std::memory_order_acquire) == 2;
        }
        {
            reentrancy_guard guard;
            Chain::init();
        }
        state.store(2, std::memory_order_release);
        return true;
    }

    static bool usable() { return !in_hooks() && front<Owner>::state.load(std::memory_order_acquire) == 2; }

    // The hot path is one TLS load and one load of `state`, then a tail call into the chain; anything
    // else (first call, nested call) is out of line, so the hot path needs no stack frame.
#define MALLOCHOOKS_FRONT_HOOK_(r, data, e)                                                          \
    __attribute__((noinline, cold)) static MALLOCHOOKS_RET(e) BOOST_PP_CAT(slow_, MALLOCHOOKS_NAME(e))( \
        MALLOCHOOKS_DECLS(e), const void *caller) {                                                  \
        if (!in_hooks() && try_init())                                                               \
            return Chain::MALLOCHOOKS_NAME(e)(MALLOCHOOKS_ARGS(e), caller);                          \
        return full_terminal<terminal>::MALLOCHOOKS_NAME(e)(MALLOCHOOKS_ARGS(e), caller);            \
    }                                                                                                \
    static MALLOCHOOKS_RET(e) MALLOCHOOKS_NAME(e)(MALLOCHOOKS_DECLS(e),                              \
                                                  const void *caller) {                              \
        if (__builtin_expect(usable(), 1))                                                           \
            return Chain::MALLOCHOOKS_NAME(e)(MALLOCHOOKS_ARGS(e), caller);                          \
        return BOOST_PP_CAT(slow_, MALLOCHOOKS_NAME(e))(MALLOCHOOKS_ARGS(e), caller);                \
    }
    MALLOCHOOKS_FOR_EACH(MALLOCHOOKS_FRONT_HOOK_, ~, MALLOCHOOKS_ALL_HOOKS)
#undef MALLOCHOOKS_FRONT_HOOK_
};

inline size_t page_size() {
    static size_t cached;  // zero-initialised: no guard variable, no constructor
    size_t ps = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (__builtin_expect(ps == 0, 0)) {
        ps = getauxval(AT_PAGESZ);
        if (ps == 0) ps = 4096;
        __atomic_store_n(&cached, ps, __ATOMIC_RELAXED);
    }
    return ps;
}

template <class H> struct user_api {
    static void *malloc(size_t size, const void *caller) { return H::malloc(size, caller); }

    static void *calloc(size_t nmemb, size_t size, const void *caller) {
        size_t total;
        if (__builtin_mul_overflow(nmemb, size, &total)) {
            errno = ENOMEM;
            return nullptr;
        }
        return H::calloc(nmemb, size, caller);
    }

    static void *realloc(void *ptr, size_t size, const void *caller) {
        if (ptr == nullptr) return H::malloc(size, caller);
        if (size == 0) {  // glibc frees and returns NULL (REALLOC_ZERO_BYTES_FREES)
            H::free(ptr, caller);
            return nullptr;
        }
        return H::realloc(ptr, size, caller);
    }

    static void free(void *ptr, const void *caller) {
        if (ptr != nullptr) H::free(ptr, caller);
    }

    // glibc 2.36 rounds a non-power-of-two alignment up and fails alignments above SIZE_MAX / 2 + 1 with
    // EINVAL; the terminal's memalign does both, so the alignment passes through as requested.
    static void *memalign(size_t alignment, size_t size, const void *caller) {
        return H::memalign(alignment, size, caller);
    }

    static int posix_memalign(void **memptr, size_t alignment, size_t size, const void *caller) {
        if (alignment == 0 || alignment % sizeof(void *) != 0 ||
            ((alignment / sizeof(void *)) & (alignment / sizeof(void *) - 1)) != 0) {
            return EINVAL;  // *memptr and errno untouched
        }
        void *p = H::memalign(alignment, size, caller);
        if (p == nullptr) {
            errno = ENOMEM;  // *memptr untouched
            return ENOMEM;
        }
        *memptr = p;
        return 0;
    }

    // In glibc 2.36 aligned_alloc is memalign (the C11 power-of-two check came in 2.38).
    static void *aligned_alloc(size_t alignment, size_t size, const void *caller) {
        return H::memalign(alignment, size, caller);
    }

    static void *valloc(size_t size, const void *caller) { return H::memalign(page_size(), size, caller); }

    static void *pvalloc(size_t size, const void *caller) {
        const size_t ps = page_size();
        size_t rounded;
        if (__builtin_add_overflow(size, 2 * ps - 1, &rounded)) {  // glibc's own overflow test
            errno = ENOMEM;
            return nullptr;
        }
        return H::memalign(ps, (size + ps - 1) & ~(ps - 1), caller);
    }

    static void *reallocarray(void *ptr, size_t nmemb, size_t size, const void *caller) {
        size_t total;
        if (__builtin_mul_overflow(nmemb, size, &total)) {
            errno = ENOMEM;
            return nullptr;
        }
        return realloc(ptr, total, caller);
    }

    static size_t malloc_usable_size(void *ptr, const void *caller) {
        return ptr == nullptr ? 0 : H::usable_size(ptr, caller);
    }

    // operator new: one cxx_new; when it fails, [new.delete.single]'s loop: call the new_handler and try
    // again while there is one, then throw std::bad_alloc (a nothrow new returns null instead).  Each try
    // is a cxx_new of its own (events: one pre_alloc per try).  Size 0 is passed on: malloc(0) and
    // memalign(a, 0) return a unique chunk, as operator new(0) must.  The failure path is out of line.
    __attribute__((noinline, cold)) static void *cxx_new_failed(size_t size, size_t alignment, unsigned kind,
                                                                bool nothrow, const void *caller, const char *function) {
        // function: the operator's name for a message (throwing), its mangled name (nothrow).
        for (;;) {
            const cxx_runtime::new_handler handler = cxx_runtime::current_new_handler();
            if (handler == nullptr) break;
            if (nothrow) {  // the handler may throw: only the C++ runtime can catch it (cxx_runtime.h)
                using nothrow_new = void *(*)(size_t, const std::nothrow_t &);
                using nothrow_aligned_new = void *(*)(size_t, std::align_val_t, const std::nothrow_t &);
                if (void *f = cxx_runtime::runtime_definition(function)) {
                    const std::nothrow_t tag{};  // not std::nothrow: that object lives in libstdc++
                    if (alignment == 0) return reinterpret_cast<nothrow_new>(f)(size, tag);
                    return reinterpret_cast<nothrow_aligned_new>(f)(size, std::align_val_t(alignment), tag);
                }
            }
            handler();  // may throw (std::bad_alloc, say): nothing of ours to undo
            if (void *p = H::cxx_new(size, alignment, kind, caller)) return p;
        }
        if (nothrow) return nullptr;
        cxx_runtime::throw_bad_alloc(function);
    }
    static void *cxx_new(size_t size, size_t alignment, unsigned kind, bool nothrow, const void *caller,
                         const char *function) {
        void *p = H::cxx_new(size, alignment, kind, caller);
        // A terminal that calls the allocator's own operator (wrapdl over an output that defines them)
        // gets C++'s behaviour from it: its null is a nothrow new's answer (a throwing one threw).
        // A throwing one that failed threw, and the terminal kept the exception out of the chain: it is
        // thrown again here, where nothing of ours is held.
        if constexpr (requires { H::terminal::cxx_final; }) {
            if (p == nullptr && !nothrow) H::terminal::cxx_rethrow();
            return p;
        }
        if (__builtin_expect(p != nullptr, 1)) return p;
        return cxx_new_failed(size, alignment, kind, nothrow, caller, function);
    }
    static void cxx_delete(void *ptr, size_t size, size_t alignment, unsigned kind, const void *caller) {
        if (ptr != nullptr) H::cxx_delete(ptr, size, alignment, kind, caller);
    }
    static constexpr unsigned cxx_one = MALLOCHOOKS_KIND_NEW, cxx_array = MALLOCHOOKS_KIND_NEW_ARRAY;
    static size_t cxx_align(std::align_val_t a) { return static_cast<size_t>(a); }

    static void *_Znwm(size_t size, const void *caller) {
        return cxx_new(size, 0, cxx_one, false, caller, "operator new(unsigned long)");
    }
    static void *_Znam(size_t size, const void *caller) {
        return cxx_new(size, 0, cxx_array, false, caller, "operator new[](unsigned long)");
    }
    static void *_ZnwmRKSt9nothrow_t(size_t size, const std::nothrow_t &, const void *caller) {
        return cxx_new(size, 0, cxx_one, true, caller, "_ZnwmRKSt9nothrow_t");
    }
    static void *_ZnamRKSt9nothrow_t(size_t size, const std::nothrow_t &, const void *caller) {
        return cxx_new(size, 0, cxx_array, true, caller, "_ZnamRKSt9nothrow_t");
    }
    static void *_ZnwmSt11align_val_t(size_t size, std::align_val_t al, const void *caller) {
        return cxx_new(size, cxx_align(al), cxx_one, false, caller, "operator new(unsigned long, std::align_val_t)");
    }
    static void *_ZnamSt11align_val_t(size_t size, std::align_val_t al, const void *caller) {
        return cxx_new(size, cxx_align(al), cxx_array, false, caller, "operator new[](unsigned long, std::align_val_t)");
    }
    static void *_ZnwmSt11align_val_tRKSt9nothrow_t(size_t size, std::align_val_t al, const std::nothrow_t &,
                                                    const void *caller) {
        return cxx_new(size, cxx_align(al), cxx_one, true, caller, "_ZnwmSt11align_val_tRKSt9nothrow_t");
    }
    static void *_ZnamSt11align_val_tRKSt9nothrow_t(size_t size, std::align_val_t al, const std::nothrow_t &,
                                                    const void *caller) {
        return cxx_new(size, cxx_align(al), cxx_array, true, caller, "_ZnamSt11align_val_tRKSt9nothrow_t");
    }

    static void _ZdlPv(void *ptr, const void *caller) { cxx_delete(ptr, 0, 0, cxx_one, caller); }
    static void _ZdaPv(void *ptr, const void *caller) { cxx_delete(ptr, 0, 0, cxx_array, caller); }
    static void _ZdlPvm(void *ptr, size_t size, const void *caller) { cxx_delete(ptr, size, 0, cxx_one, caller); }
    static void _ZdaPvm(void *ptr, size_t size, const void *caller) { cxx_delete(ptr, size, 0, cxx_array, caller); }
    static void _ZdlPvRKSt9nothrow_t(void *ptr, const std::nothrow_t &, const void *caller) {
        cxx_delete(ptr, 0, 0, cxx_one, caller);
    }
    static void _ZdaPvRKSt9nothrow_t(void *ptr, const std::nothrow_t &, const void *caller) {
        cxx_delete(ptr, 0, 0, cxx_array, caller);
    }
    static void _ZdlPvSt11align_val_t(void *ptr, std::align_val_t al, const void *caller) {
        cxx_delete(ptr, 0, cxx_align(al), cxx_one, caller);
    }
    static void _ZdaPvSt11align_val_t(void *ptr, std::align_val_t al, const void *caller) {
        cxx_delete(ptr, 0, cxx_align(al), cxx_array, caller);
    }
    static void _ZdlPvmSt11align_val_t(void *ptr, size_t size, std::align_val_t al, const void *caller) {
        cxx_delete(ptr, size, cxx_align(al), cxx_one, caller);
    }
    static void _ZdaPvmSt11align_val_t(void *ptr, size_t size, std::align_val_t al, const void *caller) {
        cxx_delete(ptr, size, cxx_align(al), cxx_array, caller);
    }
    static void _ZdlPvSt11align_val_tRKSt9nothrow_t(void *ptr, std::align_val_t al, const std::nothrow_t &,
                                                   const void *caller) {
        cxx_delete(ptr, 0, cxx_align(al), cxx_one, caller);
    }
    static void _ZdaPvSt11align_val_tRKSt9nothrow_t(void *ptr, std::align_val_t al, const std::nothrow_t &,
                                                   const void *caller) {
        cxx_delete(ptr, 0, cxx_align(al), cxx_array, caller);
    }
};

}  // namespace mallochooks

#endif
