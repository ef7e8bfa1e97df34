// SPDX-License-Identifier: MIT
// The link-time backends' entry points (wrap: __wrap_malloc ...; wrapdl: the names --defsym sends the
// output's own calls to), generated from MALLOCHOOKS_USER_API like the preload entry points of
// libmallochooks/entry_points.h, plus what only hooks linked into an output do: define the output's
// allocation site and find the site of a call made from a declared static allocation function
// (static_allocators.h).  Included by backends/wrap/entry.cc and backends/wrapdl/entry.cc only, so that no
// preloaded tool compiles or links any of it.
#ifndef MALLOCHOOKS_LINKTIME_ENTRY_POINTS_H
#define MALLOCHOOKS_LINKTIME_ENTRY_POINTS_H

#include "backends/linktime/static_allocators.h"
#include "libmallochooks/entry_points.h"
#include "mallochooks/alloc_site.h"
#include "mallochooks/family.h"
#include "mallochooks/hooks.h"

// MALLOCHOOKS_DEFINE_LINKTIME_ENTRY_POINTS(prefix, Hooks, visibility): the user-API entry points as
// MALLOCHOOKS_DEFINE_ENTRY_POINTS_VISIBILITY makes them, for hooks linked into an output, which define the output's allocation site (mallochooks/alloc_site.h, docs/allocscc.md) and
// report it as the caller when one of the output's declared allocation functions has set it.  With no
// site set, a return address inside one of the output's declared *static* allocation functions (which
// no shim can set a site for) sends the call, as a tail call with one more argument, to a second
// function that unwinds to the allocation site (backends/linktime/static_allocators.h): a tail call leaves
// it the entry point's frame, so its own frame pointer and return address describe the caller's frame.
// This costs a thread-local load, and two loads and a compare, and is skipped when no layer has anything
// to do (straight_through: the adopted layer found no tool): then the call goes straight to the
// terminal, one load and a test in front of the real allocator.
//
// Per function, from the data (prefix, Hooks, visibility) of libmallochooks/entry_points.h:
//   prefix##name                 the entry point;
//   prefix##name##_from_static_  its slow path for calls from declared static allocation functions.
#define MALLOCHOOKS_LINKTIME_FROM_STATIC_(data, e) BOOST_PP_CAT(MALLOCHOOKS_EP_SYMBOL_(data, e), _from_static_)
// The user-API function of the chain's terminal alone (straight_through: no front, no layer).
#define MALLOCHOOKS_LINKTIME_TERMINAL_USER_API_(data, e) \
    ::mallochooks::user_api<::mallochooks::chain<typename MALLOCHOOKS_EP_HOOKS_(data)::terminal>>::MALLOCHOOKS_NAME(e)

#define MALLOCHOOKS_LINKTIME_ENTRY_POINT_(r, data, e)                                                 \
    static __attribute__((noinline)) MALLOCHOOKS_RET(e) MALLOCHOOKS_LINKTIME_FROM_STATIC_(data, e)(   \
        MALLOCHOOKS_DECLS(e), const void *return_address) noexcept {                                  \
        return MALLOCHOOKS_EP_USER_API_(data, e)(                                                     \
            MALLOCHOOKS_ARGS(e),                                                                      \
            ::mallochooks::static_allocators::site_of(return_address, __builtin_return_address(0),    \
                                                      __builtin_frame_address(0)));                   \
    }                                                                                                 \
    extern "C" __attribute__((visibility(MALLOCHOOKS_EP_VISIBILITY_(data)), noinline))                \
    MALLOCHOOKS_RET(e) MALLOCHOOKS_EP_SYMBOL_(data, e)(MALLOCHOOKS_DECLS(e)) noexcept {               \
        const void *const return_address = __builtin_return_address(0);                               \
        BOOST_PP_EXPR_IIF(MALLOCHOOKS_HAS_DECLARED_AS(e), MALLOCHOOKS_LINKTIME_CXX_SCOPE_(data, e))      \
        if (__builtin_expect(::mallochooks::straight_through<MALLOCHOOKS_EP_HOOKS_(data)>::get(), 1)) \
            return MALLOCHOOKS_LINKTIME_TERMINAL_USER_API_(data, e)(MALLOCHOOKS_ARGS(e), return_address); \
        const void *const site = __mallochooks_alloc_site;                                            \
        if (__builtin_expect(site == nullptr && ::mallochooks::static_allocators::may_contain(return_address), 0)) \
            return MALLOCHOOKS_LINKTIME_FROM_STATIC_(data, e)(MALLOCHOOKS_ARGS(e), return_address);   \
        return MALLOCHOOKS_EP_USER_API_(data, e)(MALLOCHOOKS_ARGS(e), site != nullptr ? site : return_address); \
    }                                                                                                 \
    MALLOCHOOKS_ENTRY_POINT_SIGNATURE_CHECK_(MALLOCHOOKS_EP_PREFIX_(data), e)

// A C++ entry point tells a terminal that wants to know which operator the program called (the wrapdl
// terminal reaches the output's own; hooks.h, cxx_entry_scope).  For any other terminal it is nothing,
// and the entry point's calls stay tail calls.
#define MALLOCHOOKS_LINKTIME_CXX_SCOPE_(data, e)                                                      \
    const ::mallochooks::cxx_entry_scope<MALLOCHOOKS_EP_HOOKS_(data)::terminal> cxx_scope(            \
        ::mallochooks::cxx_function::MALLOCHOOKS_NAME(e));

#define MALLOCHOOKS_DEFINE_LINKTIME_ENTRY_POINTS(prefix, Hooks, visibility)                              \
    MALLOCHOOKS_DEFINE_ALLOC_SITE                                                                        \
    MALLOCHOOKS_FOR_EACH(MALLOCHOOKS_LINKTIME_ENTRY_POINT_, (prefix, Hooks, visibility), MALLOCHOOKS_USER_API)

#endif
