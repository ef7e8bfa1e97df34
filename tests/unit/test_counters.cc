// SPDX-License-Identifier: MIT
// The thread's one countdown of events (index/counters.h): the peak's sample at every MiB boundary of the
// thread's allocated bytes and the heap profile's byte countdown share it.  Held against a model of the
// two separate tests it replaced (the boundary test of each allocation, the profile's own countdown): the
// same allocations must reach the profile, and every allocation that crosses a boundary must leave
// malloc's fast path, whatever the sizes (0 and above a MiB included) and however the profile re-arms
// (far away, every allocation, a random distance).
#include <stdint.h>
#include <stdlib.h>

#include <catch2/catch.hpp>
#include <memory>
#include <random>

#include "index/counters.h"

using namespace mallochooks::heapindex;

namespace {

struct free_deleter {
    void operator()(void *p) const { ::free(p); }
};

// A thread state of the test's own, zero as make_thread_state leaves its counters in a new one.
std::unique_ptr<thread_state, free_deleter> zeroed_state() {
    return std::unique_ptr<thread_state, free_deleter>(static_cast<thread_state *>(calloc(1, sizeof(thread_state))));
}

}  // namespace

TEST_CASE("counters: one countdown gives the profile and the peak's sample the allocations two tests gave") {
    for (int policy = 0; policy < 4; ++policy) {
        std::mt19937_64 rng(1234 + policy);
        auto state = zeroed_state();
        thread_state *t = state.get();
        // The profile's re-arming, as on_countdown draws it: far away (profiles off), -1 (every allocation
        // stacked), or a random distance.
        auto next_countdown = [&]() -> int64_t {
            if (policy == 0) return INT64_MAX / 2;
            if (policy == 1) return -1;
            return int64_t(rng() % (policy == 2 ? 4096 : (3u << 20)));
        };
        uint64_t model_bytes = 0;
        int64_t model_countdown = 0;  // a new state's
        unsigned profile_calls = 0, boundary_crossings = 0;
        for (int i = 0; i < 200000; ++i) {
            const unsigned pick = unsigned(rng() % 100);
            const size_t size = pick == 0 ? 0 : pick == 1 ? size_t(rng() % (3u << 20)) : size_t(rng() % 600);
            // The model: the peak's boundary test and the profile's countdown, each on its own.
            const bool crosses = ((model_bytes ^ (model_bytes + size)) >> peak_sample_shift) != 0;
            model_bytes += size;
            const bool model_profile = (model_countdown -= int64_t(size)) < 0;
            if (model_profile) model_countdown = next_countdown();
            // The implementation, as admit_fast and events_then run it.
            bool profile = false;
            if (!count_allocation_fast(t, size)) {
                profile = settle_events(t);
                if (profile) t->stack_countdown = model_profile ? model_countdown : next_countdown();
                arm_events(t);
            } else {
                REQUIRE_FALSE(crosses);  // a boundary crossed without leaving the fast path: no sample
            }
            REQUIRE(profile == model_profile);
            REQUIRE(t->bytes_allocated.load() == model_bytes);
            REQUIRE(t->allocations.load() == uint64_t(i + 1));
            profile_calls += profile;
            boundary_crossings += crosses;
        }
        INFO("policy " << policy);
        CHECK(boundary_crossings > 10);  // the sizes did cross boundaries, with and without the profile
        if (policy == 1) CHECK(profile_calls == 200000u);
        if (policy == 0) CHECK(profile_calls == 1u);  // the first allocation's, which draws "far away"
    }
}

TEST_CASE("counters: events_due_now makes the very next allocation settle, even one of 0 bytes") {
    auto state = zeroed_state();
    thread_state *t = state.get();
    t->stack_countdown = INT64_MAX / 2;
    arm_events(t);
    for (int i = 0; i < 100; ++i) REQUIRE(count_allocation_fast(t, 100));
    t->stack_countdown = -1;  // what the profile's constructor does when it turns stacks on
    events_due_now(t);
    REQUIRE_FALSE(count_allocation_fast(t, 0));
    REQUIRE(settle_events(t));
    // The countdown covered every byte since it was armed: the profile's countdown went down by them too.
    t->stack_countdown = 50;
    arm_events(t);
    REQUIRE(count_allocation_fast(t, 50));
    REQUIRE_FALSE(count_allocation_fast(t, 1));
    REQUIRE(settle_events(t));
}

TEST_CASE("counters: the allocation that reaches a MiB boundary exactly leaves the fast path") {
    auto state = zeroed_state();
    thread_state *t = state.get();
    t->stack_countdown = INT64_MAX / 2;
    arm_events(t);
    constexpr size_t mib = size_t{1} << peak_sample_shift;
    REQUIRE(count_allocation_fast(t, mib - 100));
    REQUIRE(count_allocation_fast(t, 99));
    REQUIRE_FALSE(count_allocation_fast(t, 1));  // bytes_allocated is now exactly 1 MiB: the peak's sample
    REQUIRE_FALSE(settle_events(t));             // the profile's countdown is far away
    arm_events(t);
    REQUIRE(count_allocation_fast(t, mib - 1));
    REQUIRE_FALSE(count_allocation_fast(t, 1));  // 2 MiB
}
