// SPDX-License-Identifier: MIT
// MALLOCHOOKS_DEFINE_ENTRY_POINTS(prefix, Hooks): the user-API entry points, one extern "C" function per
// entry of MALLOCHOOKS_USER_API, named prefix##name: no prefix for a preloaded library, __wrap_ for the
// wrap backend, and so on.  Each takes its caller's return address and hands over to
// mallochooks::user_api<mallochooks::front<Hooks>>.  `Hooks` must be a single identifier (a type alias of
// a mallochooks::chain).  Each entry point's type is checked against glibc's declaration.
//
// MALLOCHOOKS_DEFINE_ENTRY_POINTS_VISIBILITY(prefix, Hooks, "hidden") does the same with another symbol
// visibility: the link-time backends' entry points are bound inside one output and must not be exported
// (wrap), or must have default visibility for a reason of the linker's (wrapdl, see docs/link-time.md).
//
// Use it once per runtime library, at global scope, in a file compiled with the runtime flags.
#ifndef MALLOCHOOKS_ENTRY_POINTS_H
#define MALLOCHOOKS_ENTRY_POINTS_H

#include <malloc.h>
#include <stdlib.h>

#include "libmallochooks/static_allocators.h"
#include "libmallochooks/user_api.h"
#include "mallochooks/alloc_site.h"
#include "mallochooks/dynamic.h"
#include "mallochooks/family.h"

#define MALLOCHOOKS_ENTRY_POINT_(r, data, e)                                                          \
    extern "C" __attribute__((visibility(BOOST_PP_TUPLE_ELEM(2, data)), noinline))                    \
    MALLOCHOOKS_RET(e) BOOST_PP_CAT(BOOST_PP_TUPLE_ELEM(0, data), MALLOCHOOKS_NAME(e))(               \
        MALLOCHOOKS_PARAM_DECLS(MALLOCHOOKS_PARAMS(e))) noexcept {                                    \
        return ::mallochooks::user_api<::mallochooks::front<BOOST_PP_TUPLE_ELEM(1, data)>>::MALLOCHOOKS_NAME(e)( \
            MALLOCHOOKS_PARAM_NAMES(MALLOCHOOKS_PARAMS(e)), __builtin_return_address(0));             \
    }                                                                                                 \
    MALLOCHOOKS_ENTRY_POINT_SIGNATURE_CHECK_(BOOST_PP_TUPLE_ELEM(0, data), e)

/* Initialising a pointer of glibc's type checks the signature (noexcept included) without instantiating a
 * template on glibc's attributed function type. */
#define MALLOCHOOKS_ENTRY_POINT_SIGNATURE_CHECK_(prefix, e)                                           \
    [[maybe_unused]] static constexpr decltype(&::MALLOCHOOKS_NAME(e)) BOOST_PP_CAT(                   \
        mallochooks_signature_check_, BOOST_PP_CAT(prefix, MALLOCHOOKS_NAME(e))) =                     \
        &BOOST_PP_CAT(prefix, MALLOCHOOKS_NAME(e));

#define MALLOCHOOKS_DEFINE_ENTRY_POINTS_VISIBILITY(prefix, Hooks, visibility) \
    MALLOCHOOKS_FOR_EACH(MALLOCHOOKS_ENTRY_POINT_, (prefix, Hooks, visibility), MALLOCHOOKS_USER_API)

// MALLOCHOOKS_DEFINE_LINKTIME_ENTRY_POINTS(prefix, Hooks, visibility): the same for hooks linked into an
// output, which define the output's allocation site (mallochooks/alloc_site.h, docs/allocscc.md) and
// report it as the caller when one of the output's declared allocation functions has set it.  With no
// site set, a return address inside one of the output's declared *static* allocation functions (which
// no shim can set a site for) sends the call, as a tail call with one more argument, to a second
// function that unwinds to the allocation site (libmallochooks/static_allocators.h): a tail call leaves
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
#define MALLOCHOOKS_DEFINE_ENTRY_POINTS(prefix, Hooks) \
    MALLOCHOOKS_DEFINE_ENTRY_POINTS_VISIBILITY(prefix, Hooks, "default")

// MALLOCHOOKS_READY_AT_LOAD(Hooks): initialise front<Hooks> from a constructor, one thread at a time (a
// program's constructors run before main, a dlopened library's under the loader's lock), if no allocation
// has done it before (it costs one load then).  For chains whose first call may otherwise come from
// several threads at once: front<> makes none of them wait, so all but the one initialising would pass
// unseen.  That is the case of link-time hooks (their first call may come from a program's threads) and
// of a tool's exported chain (link-time hooks may be the first to call it).  `Hooks`: one identifier.
#define MALLOCHOOKS_READY_AT_LOAD(Hooks) \
    __attribute__((constructor)) static void BOOST_PP_CAT(mallochooks_ready_, Hooks)() { ::mallochooks::front<Hooks>::try_init(); }

// MALLOCHOOKS_EXPORT_LAYER(Layer, Hooks, "name"): export, under MALLOCHOOKS_LAYER_SYMBOL, the layer and
// the library's whole chain (front<Hooks>: initialised, guarded) for link-time hooks elsewhere in the
// process to adopt (mallochooks/dynamic.h), and make that chain ready at load.  Put the symbol in the
// library's export list.
#define MALLOCHOOKS_EXPORT_LAYER(Layer, Hooks, name)                                                   \
    extern "C" __attribute__((visibility("default"))) constinit const mallochooks_layer mallochooks_layer_v1 = \
        ::mallochooks::layer_of<Layer>::value(name, &::mallochooks::table_of<::mallochooks::front<Hooks>>::value); \
    MALLOCHOOKS_READY_AT_LOAD(Hooks)

#endif
