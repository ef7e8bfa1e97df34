// SPDX-License-Identifier: MIT
// The bootstrap arena: alignment, usable sizes, zeroed memory, realloc, ownership of every chunk it ever
// handed out (including those in mmap'd overflow regions), and failure as ENOMEM instead of an abort.
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include <catch2/catch.hpp>
#include <set>

#include "libmallochooks/bootstrap_arena.h"

namespace {
alignas(16) unsigned char small_region[4096];
}

TEST_CASE("bootstrap arena: chunks are aligned, sized, zeroed and owned") {
    static mallochooks::bump_arena arena{small_region, sizeof small_region, 8192};
    char *a = static_cast<char *>(arena.malloc(10));
    REQUIRE(a != nullptr);
    REQUIRE(reinterpret_cast<uintptr_t>(a) % 16 == 0);
    REQUIRE(arena.usable_size(a) == 10);
    REQUIRE(arena.owns(a));
    REQUIRE(!arena.owns(&arena));
    char *z = static_cast<char *>(arena.calloc(7, 9));
    for (int i = 0; i < 63; ++i) REQUIRE(z[i] == 0);
    void *al = arena.memalign(256, 3);
    REQUIRE(reinterpret_cast<uintptr_t>(al) % 256 == 0);
    void *odd = arena.memalign(48, 3);  // rounded up to 64, like glibc
    REQUIRE(reinterpret_cast<uintptr_t>(odd) % 64 == 0);
    memcpy(a, "0123456789", 10);
    char *b = static_cast<char *>(arena.realloc(a, 100));
    REQUIRE(memcmp(b, "0123456789", 10) == 0);
    REQUIRE(arena.usable_size(b) == 100);
}

TEST_CASE("bootstrap arena: overflow into mmap'd regions, every chunk still owned and distinct") {
    static mallochooks::bump_arena arena{small_region, sizeof small_region, 8192};
    std::set<char *> chunks;
    int local = 0;
    REQUIRE(!arena.may_own(&local));  // exact while only the first region exists
    REQUIRE(arena.may_own(small_region + 100));
    for (int i = 0; i < 200; ++i) {
        char *p = static_cast<char *>(arena.malloc(1000));
        REQUIRE(p != nullptr);
        memset(p, i, 1000);
        REQUIRE(chunks.insert(p).second);
    }
    REQUIRE(arena.mapped_regions() >= 3);
    REQUIRE(arena.may_own(&local));  // with mapped regions every pointer is a "maybe"...
    REQUIRE(!arena.owns(&local));    // ...and owns() gives the exact answer
    for (char *p : chunks) {
        REQUIRE(arena.owns(p));
        REQUIRE(arena.owns(p + 999));
    }
    // A request larger than any region so far gets a region of its own.
    char *big = static_cast<char *>(arena.malloc(5u << 20));
    REQUIRE(big != nullptr);
    REQUIRE(arena.owns(big + (5u << 20) - 1));
}

TEST_CASE("bootstrap arena: an impossible request fails with ENOMEM, and the arena keeps working") {
    static mallochooks::bump_arena arena{small_region, sizeof small_region, 8192};
    errno = 0;
    REQUIRE(arena.malloc(SIZE_MAX - 64) == nullptr);
    REQUIRE(errno == ENOMEM);
    errno = 0;
    REQUIRE(arena.malloc(size_t{1} << 50) == nullptr);  // mmap refuses
    REQUIRE(errno == ENOMEM);
    errno = 0;
    REQUIRE(arena.calloc(SIZE_MAX / 4, 8) == nullptr);
    REQUIRE(errno == ENOMEM);
    REQUIRE(arena.malloc(32) != nullptr);
}
