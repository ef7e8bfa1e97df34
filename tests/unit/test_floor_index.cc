// SPDX-License-Identifier: MIT
// bench/'s floor index (bench/floor_index.h), in-process and without hooks: the structure that bench's
// floorindex and floorkill configurations measure must be a real index, so these check what issue 13's
// guarantees ask of any index: lookups of interior pointers, nothing found past a chunk's request or after
// its free, a freed record kept for 256 later frees of its thread, exactly one winner of racing frees,
// and lookups racing malloc and free never trusting a half-written record.  The index reads no chunk
// memory, so the chunks here are address ranges inside one buffer of this test.
#include <stdint.h>
#include <stdlib.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <thread>
#include <vector>

#include "bench/floor_index.h"

using namespace mallochooks::bench_floor;

namespace {

// A private index per test (the structure has no global state), released at the test's end: each
// reserves 32 TiB of address space for its slots, so only a few fit at once.
struct test_index {
    floor_index ix;
    test_index() { REQUIRE(ix.init()); }
    ~test_index() { ix.release(); }
};
// A thread state of its own for each test's main thread (the ids it caches belong to one index); the
// threads a test starts get theirs zeroed with them.
floor_thread &fresh_thread() {
    static floor_thread states[8];
    static unsigned next = 0;
    REQUIRE(next < 8);
    return states[next++];
}
thread_local floor_thread racing_thread;

// An address range to put chunks in: 8 MiB, 64-byte aligned.
uintptr_t arena() {
    static char *buffer = static_cast<char *>(aligned_alloc(64, 8 << 20));
    return reinterpret_cast<uintptr_t>(buffer);
}

}  // namespace

TEST_CASE("floor index: interior pointers find their chunk, with its fields", "[floor]") {
    test_index owned;
    floor_index &ix = owned.ix;
    floor_thread &test_thread = fresh_thread();
    const uintptr_t a = arena();
    const uintptr_t bases[] = {a + 64, a + 192, a + 4096 - 32, a + 10000 * 16, a + (1 << 20)};
    const size_t sizes[] = {40, 32, 5000, 100, 3 << 20};  // one crosses pages, one crosses 2 MiB
    for (unsigned k = 0; k < 5; ++k) {
        const uint64_t seq = ix.insert(test_thread, bases[k], sizes[k], reinterpret_cast<const void *>(0x1000 + k));
        heapindex_chunk out;
        for (size_t off : {size_t{0}, sizes[k] / 2, sizes[k] - 1}) {
            INFO("chunk " << k << " offset " << off);
            REQUIRE(ix.lookup(reinterpret_cast<void *>(bases[k] + off), &out) == 1);
            CHECK(out.base == reinterpret_cast<void *>(bases[k]));
            CHECK(out.size == sizes[k]);
            CHECK(out.alloc_site == reinterpret_cast<const void *>(0x1000 + k));
            CHECK(out.seq == seq);
            CHECK(out.tid == test_thread.tid);
            CHECK(out.tid != 0);
        }
        // Past the request (the trailer's bytes) and before the chunk: not this chunk.
        CHECK((ix.lookup(reinterpret_cast<void *>(bases[k] + sizes[k]), &out) == 0 || out.base != reinterpret_cast<void *>(bases[k])));
    }
    heapindex_chunk out;
    CHECK(ix.lookup(reinterpret_cast<void *>(a + 64 - 1), &out) == 0);
    // Freed: gone, its size told from the slot; the others stay.
    size_t size = 0;
    REQUIRE(ix.remove<false>(test_thread, bases[1], &size));
    CHECK(size == sizes[1]);
    CHECK(ix.lookup(reinterpret_cast<void *>(bases[1] + 8), &out) == 0);
    CHECK(ix.lookup(reinterpret_cast<void *>(bases[0] + 8), &out) == 1);
    // A second free of it is refused (double free), and so is a pointer where no chunk starts.
    CHECK_FALSE(ix.remove<false>(test_thread, bases[1], &size));
    CHECK_FALSE(ix.remove<true>(test_thread, bases[0] + 16, &size));
    REQUIRE(ix.remove<true>(test_thread, bases[4], &size));
    CHECK(size == sizes[4]);
    // A size past the slot's 32 bits comes from the record.
    const uintptr_t huge = a + (6 << 20);
    ix.insert(test_thread, huge, size_t{5} << 30, nullptr);
    REQUIRE(ix.lookup(reinterpret_cast<void *>(huge + 100), &out) == 1);
    CHECK(out.size == size_t{5} << 30);
    REQUIRE(ix.remove<false>(test_thread, huge, &size));
    CHECK(size == size_t{5} << 30);
    CHECK(ix.lookup(reinterpret_cast<void *>(bases[4] + (2 << 20)), &out) == 0);
    CHECK(ix.lost_kills() == 0);
    CHECK(ix.unindexed_chunks() == 0);
}

TEST_CASE("floor index: a freed record is not reused before 256 later frees of its thread", "[floor]") {
    test_index owned;
    floor_index &ix = owned.ix;
    floor_thread &test_thread = fresh_thread();
    const uintptr_t a = arena();
    // A thread that frees all it allocates: first chunk's id, then 256 more chunks made and freed.
    ix.insert(test_thread, a, 32, nullptr);
    const uint32_t first = ix.id_at(a);
    REQUIRE(first != 0);
    size_t size;
    REQUIRE(ix.remove<false>(test_thread, a, &size));
    std::vector<uint32_t> seen;
    for (unsigned k = 1; k <= 300; ++k) {
        const uintptr_t b = a + 64 * k;
        ix.insert(test_thread, b, 32, nullptr);
        seen.push_back(ix.id_at(b));
        REQUIRE(ix.remove<false>(test_thread, b, &size));
    }
    // The ring held the first id behind 256 frees: no chunk of the first 256 got it; a later one did.
    for (unsigned k = 0; k < 256; ++k) CHECK(seen[k] != first);
    bool reused = false;
    for (unsigned k = 256; k < seen.size(); ++k) reused |= seen[k] == first;
    CHECK(reused);
}

TEST_CASE("floor index: racing frees of a chunk have exactly one winner", "[floor]") {
    test_index owned;
    floor_index &ix = owned.ix;
    floor_thread &test_thread = fresh_thread();
    const uintptr_t a = arena();
    constexpr unsigned n = 20000;
    for (unsigned k = 0; k < n; ++k) ix.insert(test_thread, a + 64 * k, 48, nullptr);
    std::atomic<unsigned> wins{0};
    auto race = [&](bool kill) {
        unsigned w = 0;
        size_t size;
        for (unsigned k = 0; k < n; ++k)
            w += kill ? ix.remove<true>(racing_thread, a + 64 * k, &size) : ix.remove<false>(racing_thread, a + 64 * k, &size);
        wins += w;
    };
    std::thread t1(race, false), t2(race, true), t3(race, false);
    t1.join(), t2.join(), t3.join();
    CHECK(wins == n);
    heapindex_chunk out;
    for (unsigned k = 0; k < n; k += 97) CHECK(ix.lookup(reinterpret_cast<void *>(a + 64 * k + 8), &out) == 0);
}

TEST_CASE("floor index: lookups racing malloc and free never answer a half-written record", "[floor]") {
    test_index owned;
    floor_index &ix = owned.ix;
    const uintptr_t a = arena();
    // 256 bases per writer: in the steady state its ring holds 256 tombstones and the 256 ids it just freed,
    // so each base gets back the record it had two rounds before (the same base, another generation: the
    // case a reader must not mistake for the record it began to copy).
    constexpr unsigned slots = 512;
    // Every chunk at base b has size and site functions of b and of its generation g: an answer whose
    // fields do not fit one (b, g) was torn.
    auto size_of = [](uintptr_t b, unsigned g) { return size_t(32 + (b / 64 + g) % 31); };
    std::atomic<bool> stop{false};
    std::atomic<unsigned long> found{0}, torn{0};
    auto writer = [&](unsigned part) {
        unsigned g = 0;
        size_t size;
        while (!stop.load(std::memory_order_relaxed)) {
            ++g;
            for (unsigned k = part; k < slots; k += 2) {
                const uintptr_t b = a + 128 * k;
                ix.insert(racing_thread, b, size_of(b, g), reinterpret_cast<const void *>(uintptr_t(g) << 20 | k));
            }
            for (unsigned k = part; k < slots; k += 2) ix.remove<false>(racing_thread, a + 128 * k, &size);
        }
    };
    auto reader = [&] {
        uint64_t s = 88172645463325252ull;
        for (unsigned long q = 0; q < 10000000; ++q) {
            s ^= s << 13, s ^= s >> 7, s ^= s << 17;
            const unsigned k = unsigned(s % slots);
            const uintptr_t b = a + 128 * k;
            heapindex_chunk out;
            if (ix.lookup(reinterpret_cast<void *>(b + 20), &out) == 0) continue;
            ++found;
            const unsigned g = unsigned(reinterpret_cast<uintptr_t>(out.alloc_site) >> 20);
            if (out.base != reinterpret_cast<void *>(b) || (reinterpret_cast<uintptr_t>(out.alloc_site) & 0xfffff) != k ||
                out.size != size_of(b, g))
                ++torn;
        }
        stop = true;
    };
    std::thread w1(writer, 0), w2(writer, 1), r(reader);
    r.join(), w1.join(), w2.join();
    CHECK(torn == 0);
    CHECK(found > 0);
}
