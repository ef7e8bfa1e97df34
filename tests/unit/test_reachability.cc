// SPDX-License-Identifier: MIT
// The reachability scan (index/reachability.h) over a made-up heap: chunks are local arrays of words,
// found by a sorted search, so every class and memcheck's clique rule can be set up exactly.
#include <stdint.h>
#include <stdlib.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <vector>

#include "index/reachability.h"

using namespace mallochooks::heapindex::reach;

namespace {

// N chunks of `words` words each, laid out in one array (chunk i at words * i): a word is a pointer
// when it holds an address of that array.
struct toy_heap {
    std::vector<uintptr_t> mem;
    size_t per_chunk, n;
    toy_heap(size_t n_, size_t w) : mem(n_ * w + 1), per_chunk(w), n(n_) {}
    uintptr_t addr(size_t chunk, size_t word = 0) const { return reinterpret_cast<uintptr_t>(&mem[chunk * per_chunk + word]); }
    void point(size_t from, size_t slot, size_t to, size_t offset = 0) { mem[from * per_chunk + slot] = addr(to, offset); }

    size_t count() const { return n; }
    uintptr_t base(size_t i) const { return addr(i); }
    size_t size(size_t) const { return per_chunk * sizeof(uintptr_t); }
    bool find(uintptr_t w, uint32_t *i) const {
        if (w < addr(0) || w >= addr(n)) return false;
        *i = uint32_t((w - addr(0)) / (per_chunk * sizeof(uintptr_t)));
        return true;
    }
    template <class F> void words(uintptr_t from, size_t bytes, F &&f) const {
        for (uintptr_t a = from; a + 8 <= from + bytes; a += 8) f(*reinterpret_cast<const uintptr_t *>(a));
    }
    void *memory(size_t bytes) { return calloc(bytes, 1); }
    void release(void *p, size_t) { free(p); }
};

std::vector<uint8_t> classes(toy_heap &h, const std::vector<uintptr_t> &roots) {
    scan<toy_heap> s(h);
    REQUIRE(s.start());
    s.root(reinterpret_cast<uintptr_t>(roots.data()), roots.size() * sizeof(uintptr_t));
    s.finish();
    std::vector<uint8_t> c;
    for (size_t i = 0; i < h.count(); ++i) c.push_back(s.class_of(i));
    return c;
}

}  // namespace

TEST_CASE("reachability: start pointers from a root reach a chain; nothing else is reached") {
    toy_heap h(4, 4);
    h.point(0, 1, 1);  // 0 -> 1 -> 2
    h.point(1, 3, 2);
    auto c = classes(h, {h.addr(0)});
    CHECK(c == std::vector<uint8_t>{reachable, reachable, reachable, lost});
}

TEST_CASE("reachability: an interior pointer makes interior_only, and so does everything after it") {
    toy_heap h(4, 4);
    h.point(0, 0, 1);  // 0 -> 1 (start), 1 -> 2 (start), but 0 is reached through its middle
    h.point(1, 0, 2);
    auto c = classes(h, {h.addr(0, 2)});
    CHECK(c == std::vector<uint8_t>{interior_only, interior_only, interior_only, lost});
    // A start pointer from a root upgrades a chunk first seen through an interior pointer, and its chain.
    c = classes(h, {h.addr(0, 2), h.addr(1)});
    CHECK(c == std::vector<uint8_t>{interior_only, reachable, reachable, lost});
}

TEST_CASE("reachability: cliques of lost chunks: the first in address order is definitely lost, the rest indirect") {
    toy_heap h(6, 2);
    h.point(0, 0, 1);  // clique {0, 1, 2}: 0 -> 1 -> 2 -> 0 (a cycle)
    h.point(1, 0, 2);
    h.point(2, 0, 0);
    h.point(4, 1, 3, 1);  // 4 -> into 3: 3 is indirect (interior pointers count in cliques, as in memcheck)
    h.point(5, 0, 5);     // 5 points only at itself: definitely lost
    auto c = classes(h, {});
    CHECK(c == std::vector<uint8_t>{lost, indirect, indirect, indirect, lost, lost});
}

TEST_CASE("reachability: a leader found later from another leader becomes indirect") {
    toy_heap h(3, 2);
    h.point(2, 0, 0);  // 2 -> 0: 0 leads first (lower address), then 2 finds it
    auto c = classes(h, {});
    CHECK(c == std::vector<uint8_t>{indirect, lost, lost});
}

TEST_CASE("reachability: words that are not pointers and pointers past the heap are ignored") {
    toy_heap h(2, 2);
    h.mem[1] = 12345;
    h.mem[2] = h.addr(2);  // one past the last chunk
    auto c = classes(h, {0, 7, h.addr(2), ~uintptr_t{0}});
    CHECK(c == std::vector<uint8_t>{lost, lost});
}

TEST_CASE("reachability: an empty heap needs no memory and reports nothing") {
    toy_heap h(0, 1);
    scan<toy_heap> s(h);
    CHECK(s.start());
    s.root_word(42);
    s.finish();
    CHECK(s.count() == 0);
}
