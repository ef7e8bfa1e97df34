// SPDX-License-Identifier: MIT
// The shim object cache: keys change with everything the object depends on, entries round-trip, and an
// empty directory means no cache; a hit gets its own link; eviction keeps the most recently used.
#include <catch2/catch.hpp>

#include <chrono>
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

TEST_CASE("object cache: fetch hands out a link of its own; the cache keeps the most recently used entries", "[allocscc][cache]") {
    const std::string dir = std::string(TEST_BUILD_DIR) + "/cache_evict_test";
    std::filesystem::remove_all(dir);
    const std::string object = std::string(TEST_BUILD_DIR) + "/cache_evict_object.o";
    std::ofstream(object) << "payload";
    ac::object_cache cache(dir, 3);
    const std::string dest = std::string(TEST_BUILD_DIR) + "/cache_evict_fetched.o";
    std::filesystem::remove(dest);
    CHECK_FALSE(cache.fetch("k0", dest));
    // Entries k0..k2, with distinct and increasing times.
    auto age = [&](const std::string &key, int seconds_ago) {
        std::filesystem::last_write_time(dir + "/" + key + ".o",
                                         std::filesystem::file_time_type::clock::now() - std::chrono::seconds(seconds_ago));
    };
    for (int i = 0; i < 3; ++i) {
        cache.store("k" + std::to_string(i), object);
        age("k" + std::to_string(i), 100 - i);
    }
    // Using k0 makes it the most recent: the fourth entry evicts k1, the oldest.
    REQUIRE(cache.fetch("k0", dest));
    std::ifstream in(dest);
    std::string text;
    in >> text;
    CHECK(text == "payload");
    cache.store("k3", object);
    CHECK(cache.find("k0").has_value());
    CHECK_FALSE(cache.find("k1").has_value());
    CHECK(cache.find("k2").has_value());
    CHECK(cache.find("k3").has_value());
    // The fetched object survives the eviction of its entry.
    age("k2", 50);
    age("k3", 40);
    age("k0", 200);
    cache.store("k4", object);
    CHECK_FALSE(cache.find("k0").has_value());
    CHECK(std::filesystem::exists(dest));
    std::size_t entries = 0;
    for (const auto &e : std::filesystem::directory_iterator(dir)) entries += e.path().extension() == ".o";
    CHECK(entries == 3);
}
