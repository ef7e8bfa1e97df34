// SPDX-License-Identifier: MIT
// The names of the malloc family as tools see them: a constexpr table expanded from MALLOCHOOKS_USER_API
// (mallochooks/family.h), so stubgen's checks and allocscc's link flags never carry a list of their own.
// Adding a function to the family list adds it here.
#ifndef MALLOCHOOKS_STUBGEN_FAMILY_NAMES_H
#define MALLOCHOOKS_STUBGEN_FAMILY_NAMES_H

#include <algorithm>
#include <array>
#include <string_view>

#include "mallochooks/family.h"

namespace mallochooks::stubgen {

#define MALLOCHOOKS_FAMILY_NAME_(r, data, e) std::string_view{BOOST_PP_STRINGIZE(MALLOCHOOKS_NAME(e))},
inline constexpr std::array family_names = {MALLOCHOOKS_FOR_EACH(MALLOCHOOKS_FAMILY_NAME_, ~, MALLOCHOOKS_USER_API)};
#undef MALLOCHOOKS_FAMILY_NAME_

inline constexpr bool is_family_function(std::string_view name) {
    return std::find(family_names.begin(), family_names.end(), name) != family_names.end();
}

}  // namespace mallochooks::stubgen

#endif
