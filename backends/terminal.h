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
// Terminals never raise events and never allocate through the hooked path.
#ifndef MALLOCHOOKS_BACKENDS_TERMINAL_H
#define MALLOCHOOKS_BACKENDS_TERMINAL_H

#include <type_traits>

#include "mallochooks/family.h"

namespace mallochooks {

// static_assert(is_terminal<T>) checks that T has every hook with exactly the hook API's signature.
template <class T> struct terminal_check {
#define MALLOCHOOKS_TERMINAL_CHECK_(r, data, e)                                                     \
    static_assert(std::is_same_v<decltype(&T::MALLOCHOOKS_NAME(e)),                                \
                                 MALLOCHOOKS_RET(e) (*)(MALLOCHOOKS_PARAM_TYPES(MALLOCHOOKS_PARAMS(e)), const void *)>, \
                  "terminal hook " BOOST_PP_STRINGIZE(MALLOCHOOKS_NAME(e)) " has the wrong signature");
    MALLOCHOOKS_FOR_EACH(MALLOCHOOKS_TERMINAL_CHECK_, ~, MALLOCHOOKS_HOOK_API)
#undef MALLOCHOOKS_TERMINAL_CHECK_
    static_assert(std::is_same_v<decltype(&T::init), void (*)()>, "terminal needs static void init()");
    static constexpr bool value = true;
};

template <class T> inline constexpr bool is_terminal = terminal_check<T>::value;

}  // namespace mallochooks

#endif
