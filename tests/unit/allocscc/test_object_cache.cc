// SPDX-License-Identifier: MIT
// The shim object cache: keys change with everything the object depends on, entries round-trip, and an
// empty directory means no cache.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include "compilerwrapper/object_cache.h"

namespace ac = mallochooks::allocscc;

TEST_CASE("object cache keys, lookups and stores", "[allocscc][cache]") {
    const std::string k = ac::object_cache::key("int x;", {"cc", "-c"}, "/bin/sh");
    CHECK(k.size() == 32);
    CHECK(k == ac::object_cache::key("int x;", {"cc", "-c"}, "/bin/sh"));
    CHECK(k != ac::object_cache::key("int y;", {"cc", "-c"}, "/bin/sh"));
    CHECK(k != ac::object_cache::key("int x;", {"cc", "-c", "-m32"}, "/bin/sh"));
    CHECK(k != ac::object_cache::key("int x;", {"cc", "-c"}, "/bin/true"));
    CHECK(ac::object_cache::key("ab", {"c"}, "") != ac::object_cache::key("a", {"bc"}, ""));

    const std::string dir = std::string(TEST_BUILD_DIR) + "/cache_test";
    std::filesystem::remove_all(dir);
    const std::string object = std::string(TEST_BUILD_DIR) + "/cache_test_object.o";
    std::ofstream(object) << "payload";
    ac::object_cache cache(dir);
    CHECK_FALSE(cache.find(k).has_value());
    cache.store(k, object);
    REQUIRE(cache.find(k).has_value());
    std::ifstream in(*cache.find(k));
    std::string text;
    in >> text;
    CHECK(text == "payload");

    ac::object_cache none("");
    none.store(k, object);
    CHECK_FALSE(none.find(k).has_value());
}
