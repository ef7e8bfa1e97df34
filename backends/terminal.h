// SPDX-License-Identifier: MIT
// The one interface every backend's terminal implements, and a compile-time check of it.
//
// A terminal is the last stage of a chain (mallochooks/hooks.h): a class with
//     static void init();                                   // make ready; idempotent, may be called early
//     static <hook>(<allocator parameters>, const void *caller);   // one per MALLOCHOOKS_HOOK_API entry
// that hands each hook to a real allocator:
//     backends/preload/terminal.h  the next definition after this object (LD_PRELOAD), found by fake_dlsym
//     backends/wrap/terminal.h     __real_X, bound by ld --wrap
//     backends/wrapdl/terminal.h   the output's own allocator, reached through link-time aliases
//                                  (__mallochooks_real_X, written by mallochooks-alias)
// Terminals never raise events and never allocate through the hooked path.
#ifndef MALLOCHOOKS_BACKENDS_TERMINAL_H
#define MALLOCHOOKS_BACKENDS_TERMINAL_H

#include <malloc.h>
#include <stdlib.h>

#include <type_traits>

#include "mallochooks/family.h"

namespace mallochooks {

// static_assert(is_terminal<T>) checks that T has every hook with exactly the hook API's signature.
template <class T> struct terminal_check {
#define MALLOCHOOKS_TERMINAL_CHECK_(r, data, e)                                                     \
    static_assert(std::is_same_v<decltype(&T::MALLOCHOOKS_NAME(e)),                                 \
                                 MALLOCHOOKS_RET(e) (*)(MALLOCHOOKS_TYPES(e), const void *)>,       \
                  "terminal hook " BOOST_PP_STRINGIZE(MALLOCHOOKS_NAME(e)) " has the wrong signature");
    MALLOCHOOKS_FOR_EACH(MALLOCHOOKS_TERMINAL_CHECK_, ~, MALLOCHOOKS_HOOK_API)
#undef MALLOCHOOKS_TERMINAL_CHECK_
    static_assert(std::is_same_v<decltype(&T::init), void (*)()>, "terminal needs static void init()");
    static constexpr bool value = true;
};

template <class T> inline constexpr bool is_terminal = terminal_check<T>::value;

}  // namespace mallochooks

// MALLOCHOOKS_DIRECT_TERMINAL_HOOKS(prefix, prologue): inside a terminal's class body, one static hook per
// entry of MALLOCHOOKS_HOOK_API that runs `prologue` (a statement, or nothing) and calls
// prefix##<underlying allocator function> (the list's fourth element: malloc, calloc, free, realloc,
// memalign, malloc_usable_size) with the hook's arguments.  The link-time terminals are exactly this, over
// names the linker binds: __real_malloc, __mallochooks_real_malloc...
// Both generators below receive (prefix, X); prefix##<underlying> names the allocator function reached.
#define MALLOCHOOKS_TERMINAL_PREFIX_(data)        BOOST_PP_TUPLE_ELEM(0, data)
#define MALLOCHOOKS_TERMINAL_UNDERLYING_(data, e) BOOST_PP_CAT(MALLOCHOOKS_TERMINAL_PREFIX_(data), MALLOCHOOKS_UNDERLYING(e))
#define MALLOCHOOKS_TERMINAL_PROLOGUE_(data)      BOOST_PP_TUPLE_ELEM(1, data)
#define MALLOCHOOKS_TERMINAL_ATTRIBUTES_(data)    BOOST_PP_TUPLE_ELEM(1, data)

#define MALLOCHOOKS_DIRECT_TERMINAL_HOOK_(r, data, e)                                               \
    static MALLOCHOOKS_RET(e) MALLOCHOOKS_NAME(e)(MALLOCHOOKS_DECLS(e), const void *) {             \
        MALLOCHOOKS_TERMINAL_PROLOGUE_(data)                                                        \
        return MALLOCHOOKS_TERMINAL_UNDERLYING_(data, e)(MALLOCHOOKS_ARGS(e));                      \
    }
#define MALLOCHOOKS_DIRECT_TERMINAL_HOOKS(prefix, prologue) \
    MALLOCHOOKS_FOR_EACH(MALLOCHOOKS_DIRECT_TERMINAL_HOOK_, (prefix, prologue), MALLOCHOOKS_HOOK_API)

// MALLOCHOOKS_DECLARE_UNDERLYING(prefix, attributes): extern "C" declarations of prefix##<underlying> for
// every hook, each with exactly the type glibc gives the underlying function (decltype), so a mismatch
// cannot compile.  `attributes` go in front (e.g. a visibility), or leave it empty.
#define MALLOCHOOKS_DECLARE_UNDERLYING_(r, data, e)                                                 \
    extern "C" MALLOCHOOKS_TERMINAL_ATTRIBUTES_(data) decltype(::MALLOCHOOKS_UNDERLYING(e))         \
        MALLOCHOOKS_TERMINAL_UNDERLYING_(data, e);
#define MALLOCHOOKS_DECLARE_UNDERLYING(prefix, attributes) \
    MALLOCHOOKS_FOR_EACH(MALLOCHOOKS_DECLARE_UNDERLYING_, (prefix, attributes), MALLOCHOOKS_HOOK_API)

#endif
