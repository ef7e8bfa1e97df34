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

// MALLOCHOOKS_DEFINE_LINKTIME_ENTRY_POINTS(prefix, Hooks, visibility): the same for hooks linked into an
// output, which define the output's allocation site (mallochooks/alloc_site.h, docs/allocscc.md) and
// report it as the caller when one of the output's declared allocation functions has set it.  With no
// site set, a return address inside one of the output's declared *static* allocation functions (which
// no shim can set a site for) sends the call, as a tail call with one more argument, to a second
// function that unwinds to the allocation site (backends/linktime/static_allocators.h): a tail call leaves
// it the entry point's frame, so its own frame pointer and return address describe the caller's frame.
// This costs a thread-local load, and two loads and a compare, and is skipped when no layer has anything
// to do (straight_through: the adopted layer found no tool): then the call goes straight to the
// terminal, one load and a test in front of the real allocator.
#define MALLOCHOOKS_LINKTIME_ENTRY_POINT_(r, data, e)                                                 \
    static __attribute__((noinline)) MALLOCHOOKS_RET(e) BOOST_PP_CAT(                                 \
        BOOST_PP_CAT(BOOST_PP_TUPLE_ELEM(0, data), MALLOCHOOKS_NAME(e)), _from_static_)(              \
        MALLOCHOOKS_PARAM_DECLS(MALLOCHOOKS_PARAMS(e)), const void *return_address) noexcept {        \
        return ::mallochooks::user_api<::mallochooks::front<BOOST_PP_TUPLE_ELEM(1, data)>>::MALLOCHOOKS_NAME(e)( \
            MALLOCHOOKS_PARAM_NAMES(MALLOCHOOKS_PARAMS(e)),                                           \
            ::mallochooks::static_allocators::site_of(return_address, __builtin_return_address(0),    \
                                                      __builtin_frame_address(0)));                   \
    }                                                                                                 \
    extern "C" __attribute__((visibility(BOOST_PP_TUPLE_ELEM(2, data)), noinline))                    \
    MALLOCHOOKS_RET(e) BOOST_PP_CAT(BOOST_PP_TUPLE_ELEM(0, data), MALLOCHOOKS_NAME(e))(               \
        MALLOCHOOKS_PARAM_DECLS(MALLOCHOOKS_PARAMS(e))) noexcept {                                    \
        const void *const return_address = __builtin_return_address(0);                               \
        if (__builtin_expect(::mallochooks::straight_through<BOOST_PP_TUPLE_ELEM(1, data)>::get(), 1)) \
            return ::mallochooks::user_api<::mallochooks::chain<                                      \
                typename BOOST_PP_TUPLE_ELEM(1, data)::terminal>>::MALLOCHOOKS_NAME(e)(              \
                MALLOCHOOKS_PARAM_NAMES(MALLOCHOOKS_PARAMS(e)), return_address);                      \
        const void *const site = __mallochooks_alloc_site;                                            \
        if (__builtin_expect(site == nullptr && ::mallochooks::static_allocators::may_contain(return_address), 0)) \
            return BOOST_PP_CAT(BOOST_PP_CAT(BOOST_PP_TUPLE_ELEM(0, data), MALLOCHOOKS_NAME(e)), _from_static_)( \
                MALLOCHOOKS_PARAM_NAMES(MALLOCHOOKS_PARAMS(e)), return_address);                      \
        return ::mallochooks::user_api<::mallochooks::front<BOOST_PP_TUPLE_ELEM(1, data)>>::MALLOCHOOKS_NAME(e)( \
            MALLOCHOOKS_PARAM_NAMES(MALLOCHOOKS_PARAMS(e)), site != nullptr ? site : return_address); \
    }                                                                                                 \
    MALLOCHOOKS_ENTRY_POINT_SIGNATURE_CHECK_(BOOST_PP_TUPLE_ELEM(0, data), e)

#define MALLOCHOOKS_DEFINE_LINKTIME_ENTRY_POINTS(prefix, Hooks, visibility)                              \
    MALLOCHOOKS_DEFINE_ALLOC_SITE                                                                       \
    MALLOCHOOKS_FOR_EACH(MALLOCHOOKS_LINKTIME_ENTRY_POINT_, (prefix, Hooks, visibility), MALLOCHOOKS_USER_API)

#endif
