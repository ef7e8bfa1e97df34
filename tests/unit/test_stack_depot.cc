// SPDX-License-Identifier: MIT
// The heap profile's stack depot (index/stack_depot.h), in-process: one id per distinct stack, the same
// id for the same stack from any thread, the frames kept, every entry visited, counters starting at zero.
#include <stdint.h>

#include <catch2/catch.hpp>
#include <set>
#include <thread>
#include <vector>

#include "index/stack_depot.h"

using namespace mallochooks::heapindex;

namespace {

// A test's own depot (each reserves its arena on init).
stack_depot &fresh_depot() {
    static stack_depot depots[4];
    static unsigned next = 0;
    stack_depot &d = depots[next++ % 4];
    REQUIRE(d.init());
    return d;
}

std::vector<uintptr_t> stack_of(unsigned i, unsigned depth) {
    std::vector<uintptr_t> s;
    for (unsigned k = 0; k < depth; ++k) s.push_back(0x400000 + i * 0x1000 + k * 8);
    return s;
}

}  // namespace

TEST_CASE("stack depot: one id per distinct stack, frames kept") {
    stack_depot &d = fresh_depot();
    const auto a = stack_of(1, 5), b = stack_of(2, 5), prefix = stack_of(1, 4);
    const uint32_t ia = d.intern(a.data(), 5), ib = d.intern(b.data(), 5), ip = d.intern(prefix.data(), 4);
    REQUIRE(ia != 0);
    CHECK(ia != ib);
    CHECK(ia != ip);  // a prefix is another stack
    CHECK(ia != d.full_id());
    CHECK(d.intern(a.data(), 5) == ia);
    CHECK(d.holds(ia, a.data(), 5));
    CHECK_FALSE(d.holds(ia, b.data(), 5));
    CHECK_FALSE(d.holds(ia, a.data(), 4));
    const stack_entry *e = d.get(ia);
    REQUIRE(e->depth == 5);
    for (unsigned k = 0; k < 5; ++k) CHECK(e->frames[k] == a[k]);
    CHECK(e->allocations.load() == 0);
    CHECK(e->live_bytes.load() == 0);
    CHECK(d.distinct() == 3);
}

TEST_CASE("stack depot: every entry visited in order, the depot-full entry first") {
    stack_depot &d = fresh_depot();
    std::vector<uint32_t> ids;
    for (unsigned i = 0; i < 1000; ++i) ids.push_back(d.intern(stack_of(i, 1 + i % 40).data(), 1 + i % 40));
    std::vector<uint32_t> seen;
    d.for_each([&](uint32_t id, stack_entry &e) {
        if (id != d.full_id()) {
            seen.push_back(id);
            CHECK(e.depth >= 1);
        }
    });
    CHECK(seen == ids);
}

TEST_CASE("stack depot: threads interning the same stacks agree on their ids") {
    stack_depot &d = fresh_depot();
    constexpr unsigned threads = 4, stacks = 2000;
    std::vector<std::vector<uint32_t>> got(threads);
    std::vector<std::thread> pool;
    for (unsigned t = 0; t < threads; ++t)
        pool.emplace_back([&, t] {
            for (unsigned i = 0; i < stacks; ++i) {
                const unsigned s = (i * 7 + t * 13) % stacks;  // each thread in another order
                got[t].push_back(d.intern(stack_of(s, 8).data(), 8));
            }
        });
    for (auto &th : pool) th.join();
    std::vector<uint32_t> by_stack(stacks);
    for (unsigned i = 0; i < stacks; ++i) by_stack[(i * 7) % stacks] = got[0][i];
    for (unsigned t = 1; t < threads; ++t)
        for (unsigned i = 0; i < stacks; ++i) CHECK(got[t][i] == by_stack[(i * 7 + t * 13) % stacks]);
    CHECK(std::set<uint32_t>(by_stack.begin(), by_stack.end()).size() == stacks);
    CHECK(d.distinct() == stacks);
}
