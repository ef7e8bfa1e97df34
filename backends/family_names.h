// SPDX-License-Identifier: MIT
// The malloc family's names as strings, for the host tools that write link flags and aliases
// (link_flags.h, wrapdl/real_alias.h, allocscc's link step and link inputs), expanded from the one list (mallochooks/family.h)
// and the wrapdl backend's naming scheme (wrapdl/names.h), so no tool spells a family name itself.
#ifndef MALLOCHOOKS_BACKENDS_FAMILY_NAMES_H
#define MALLOCHOOKS_BACKENDS_FAMILY_NAMES_H

#include <boost/preprocessor/seq/for_each.hpp>

#include "backends/wrapdl/names.h"
#include "mallochooks/family.h"

namespace mallochooks::names {

// Every function of the user API, in the list's order.
#define MALLOCHOOKS_NAME_STRING_(r, data, e) BOOST_PP_STRINGIZE(MALLOCHOOKS_NAME(e)),
inline constexpr const char *user_api[] = {MALLOCHOOKS_FOR_EACH(MALLOCHOOKS_NAME_STRING_, ~, MALLOCHOOKS_USER_API)};
// The C functions of the user API only (glibc's malloc family), in the list's order.
inline constexpr const char *c_user_api[] = {MALLOCHOOKS_FOR_EACH(MALLOCHOOKS_NAME_STRING_, ~, MALLOCHOOKS_C_USER_API)};
#undef MALLOCHOOKS_NAME_STRING_

// The functions whose __mallochooks_real_ name the wrapdl runtime refers to (MALLOCHOOKS_WRAPDL_CALLED, then
// MALLOCHOOKS_WRAPDL_CXX_CALLED).
#define MALLOCHOOKS_STRING_(r, data, name) BOOST_PP_STRINGIZE(name),
inline constexpr const char *wrapdl_called[] = {BOOST_PP_SEQ_FOR_EACH(MALLOCHOOKS_STRING_, ~, MALLOCHOOKS_WRAPDL_CALLED)
                                                    BOOST_PP_SEQ_FOR_EACH(MALLOCHOOKS_STRING_, ~, MALLOCHOOKS_WRAPDL_CXX_CALLED)};
#undef MALLOCHOOKS_STRING_

inline constexpr const char wrapdl_real_prefix[] = BOOST_PP_STRINGIZE(MALLOCHOOKS_WRAPDL_REAL);
inline constexpr const char wrapdl_entry_prefix[] = BOOST_PP_STRINGIZE(MALLOCHOOKS_WRAPDL_ENTRY);
inline constexpr const char wrapdl_fallback_prefix[] = BOOST_PP_STRINGIZE(MALLOCHOOKS_WRAPDL_FALLBACK);
// wrapdl/cxx_catch.cc's functions (cxx_try, cxx_rethrow), for outputs with C++ operators of their own.
inline constexpr const char wrapdl_catching_prefix[] = "__mallochooks_wrapdl_catching_";

// Index of `name` in user_api, or -1.
inline int user_api_index(const char *name) {
    for (int i = 0; i < int(sizeof user_api / sizeof *user_api); ++i) {
        const char *a = user_api[i], *b = name;
        while (*a != '\0' && *a == *b) ++a, ++b;
        if (*a == '\0' && *b == '\0') return i;
    }
    return -1;
}

// Is `name` one of glibc's C functions of the family (not a C++ operator)?
inline bool is_c_user_api(const char *name) {
    const int i = user_api_index(name);
    return i >= 0 && i < int(sizeof c_user_api / sizeof *c_user_api);
}

}  // namespace mallochooks::names

#endif
