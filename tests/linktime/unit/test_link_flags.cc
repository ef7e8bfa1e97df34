// SPDX-License-Identifier: MIT
// The link flags (backends/link_flags.h): wrap diverts every family function; wrapdl gives every function
// the allocator defines to the hooks, pulls in what it needs, and binds each function the terminal calls
// but the allocator lacks to its fallback; bad requests are refused.
#include <algorithm>
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "backends/family_names.h"
#include "backends/link_flags.h"

namespace {
bool has(const std::vector<std::string> &flags, const std::string &flag) {
    return std::find(flags.begin(), flags.end(), flag) != flags.end();
}
size_t count_prefix(const std::vector<std::string> &flags, const std::string &prefix) {
    return size_t(std::count_if(flags.begin(), flags.end(), [&](const std::string &f) { return f.rfind(prefix, 0) == 0; }));
}
}  // namespace

TEST_CASE("link flags: wrap diverts each family function and pulls in its entry point, nothing else") {
    const auto result = mallochooks::link_flags({mallochooks::link_backend::wrap, {}, {}});
    REQUIRE(result.error.empty());
    REQUIRE(result.flags.size() == 2 * std::size(mallochooks::names::user_api));
    for (const char *name : mallochooks::names::user_api) {
        REQUIRE(has(result.flags, std::string("-Wl,--wrap=") + name));
        REQUIRE(has(result.flags, std::string("-Wl,--undefined=__wrap_") + name));
    }
}

TEST_CASE("link flags: wrapdl hooks what the allocator defines and falls back for the rest") {
    mallochooks::link_request request{mallochooks::link_backend::wrapdl, {"realloc", "free", "malloc", "calloc"}, {}};
    const auto result = mallochooks::link_flags(request);
    REQUIRE(result.error.empty());
    for (const char *name : {"malloc", "calloc", "realloc", "free"}) {
        REQUIRE(has(result.flags, std::string("-Wl,--defsym=") + name + "=__mallochooks_wrapdl_" + name));
        REQUIRE(has(result.flags, std::string("-Wl,--undefined=__mallochooks_wrapdl_") + name));
        REQUIRE(has(result.flags, std::string("-Wl,--undefined=__mallochooks_real_") + name));
        REQUIRE(!has(result.flags, std::string("-Wl,--defsym=__mallochooks_real_") + name + "=__mallochooks_fallback_" + name));
    }
    // What the terminal calls and the allocator lacks: each hook's underlying function and the aligned
    // alternatives the memalign fallback tries.
    for (const char *name : {"memalign", "malloc_usable_size", "posix_memalign", "aligned_alloc"}) {
        REQUIRE(has(result.flags, std::string("-Wl,--defsym=__mallochooks_real_") + name + "=__mallochooks_fallback_" + name));
        REQUIRE(has(result.flags, std::string("-Wl,--undefined=__mallochooks_fallback_") + name));
    }
    // Functions the allocator lacks and the terminal never calls get nothing: calls to them keep going
    // wherever they went without hooks.
    REQUIRE(count_prefix(result.flags, "-Wl,--defsym=valloc") == 0);
    // C++'s operators: the terminal refers to each (it calls the one the program called when the output
    // defines them), so the ones not defined get their never-reached fallbacks.
    for (const char *name : mallochooks::names::user_api) {
        if (mallochooks::names::is_c_user_api(name)) continue;
        REQUIRE(has(result.flags, std::string("-Wl,--defsym=__mallochooks_real_") + name + "=__mallochooks_fallback_" + name));
    }
    const std::size_t cxx = std::size(mallochooks::names::user_api) - std::size(mallochooks::names::c_user_api);
    // and the throwing operators' catch, a plain call here (no operators of the output's own)
    REQUIRE(has(result.flags, "-Wl,--defsym=__mallochooks_real_cxx_try=__mallochooks_fallback_cxx_try"));
    REQUIRE(has(result.flags, "-Wl,--defsym=__mallochooks_real_cxx_rethrow=__mallochooks_fallback_cxx_rethrow"));
    REQUIRE(count_prefix(result.flags, "-Wl,--defsym=") == 4 + 4 + cxx + 2);
    REQUIRE(count_prefix(result.flags, "-Wl,--version-script") == 0);
    // The order of the request does not matter: the family list's order is used.
    std::reverse(request.defined.begin(), request.defined.end());
    REQUIRE(mallochooks::link_flags(request).flags == result.flags);
}

TEST_CASE("link flags: wrapdl diverts the output's own C++ operators with its malloc") {
    const auto result = mallochooks::link_flags(
        {mallochooks::link_backend::wrapdl, {"malloc", "free", "_Znwm", "_ZdlPv"}, {}});
    REQUIRE(result.error.empty());
    for (const char *name : {"_Znwm", "_ZdlPv"}) {
        REQUIRE(has(result.flags, std::string("-Wl,--defsym=") + name + "=__mallochooks_wrapdl_" + name));
        REQUIRE(has(result.flags, std::string("-Wl,--undefined=__mallochooks_real_") + name));
        REQUIRE(!has(result.flags, std::string("-Wl,--defsym=__mallochooks_real_") + name + "=__mallochooks_fallback_" + name));
    }
    REQUIRE(has(result.flags, "-Wl,--defsym=__mallochooks_real__Znam=__mallochooks_fallback__Znam"));
    REQUIRE(has(result.flags, "-Wl,--defsym=__mallochooks_real_cxx_try=__mallochooks_wrapdl_catching_cxx_try"));
    REQUIRE(has(result.flags, "-Wl,--undefined=__mallochooks_wrapdl_catching_cxx_rethrow"));
    REQUIRE(count_prefix(result.flags, "-Wl,--defsym=_Znam") == 0);
}

TEST_CASE("link flags: wrap leaves an output's own C++ operators and libstdc++'s others alone") {
    const auto result = mallochooks::link_flags({mallochooks::link_backend::wrap, {"_Znwm", "_ZdlPv"}, {}});
    REQUIRE(result.error.empty());
    for (const char *name : mallochooks::names::c_user_api) REQUIRE(has(result.flags, std::string("-Wl,--wrap=") + name));
    REQUIRE(result.flags.size() == 2 * std::size(mallochooks::names::c_user_api));
    // a C function is not the wrap backend's to leave alone
    REQUIRE(!mallochooks::link_flags({mallochooks::link_backend::wrap, {"malloc"}, {}}).error.empty());
    // nor is wrapdl for an output without a C function of its own
    REQUIRE(!mallochooks::link_flags({mallochooks::link_backend::wrapdl, {"_Znwm"}, {}}).error.empty());
}

TEST_CASE("link flags: a library without its own version script gets ours") {
    const auto result = mallochooks::link_flags({mallochooks::link_backend::wrapdl, {"malloc", "free"}, "/x/wrapdl-shared.map"});
    REQUIRE(result.error.empty());
    REQUIRE(result.flags.back() == "-Wl,--version-script=/x/wrapdl-shared.map");
}

TEST_CASE("link flags: wrapdl refuses names outside the family and an empty set") {
    auto result = mallochooks::link_flags({mallochooks::link_backend::wrapdl, {"malloc", "strdup"}, {}});
    REQUIRE(result.error.find("strdup") != std::string::npos);
    REQUIRE(result.flags.empty());
    result = mallochooks::link_flags({mallochooks::link_backend::wrapdl, {}, {}});
    REQUIRE(!result.error.empty());
}
