// SPDX-License-Identifier: MIT
// The index's statistics as it counts them: per-thread counters of allocations, frees and bytes (in each
// thread_state, written by their owner only), global counters for what is not per thread (heap errors,
// client blocks, unindexed chunks, threads past their exit destructor), and the sampled peak.
// heapindex_stats sums them (stats.h).
#ifndef MALLOCHOOKS_INDEX_COUNTERS_H
#define MALLOCHOOKS_INDEX_COUNTERS_H

#include <stddef.h>
#include <stdint.h>

#include <atomic>

#include "index/thread_state.h"

namespace mallochooks::heapindex {

// Global statistics that are not per thread.
struct global_counters {
    std::atomic<uint64_t> peak_live_bytes{0};
    std::atomic<uint64_t> orphan_allocations{0}, orphan_frees{0}, orphan_bytes_allocated{0}, orphan_bytes_freed{0};
    std::atomic<uint64_t> invalid_frees{0}, double_frees{0}, corrupt_trailers{0}, client_blocks{0};
    std::atomic<uint64_t> mismatched_frees{0};  // released another way than allocated (new/free, new[]/delete...)
    std::atomic<uint64_t> unindexed{0};  // chunks the index could not take (out of index memory)
};
global_counters &counters();

// Account an allocation or a free of `bytes` requested bytes to thread state t (nullptr: global).
// Counters are per thread (owner-only load + store, no lock prefix, no shared cache line: the 2-thread
// scaling).  The peak is sampled: each time a thread's allocated bytes cross a megabyte boundary, the
// live bytes of all threads are summed and the peak raised if need be (peak_resolution in docs).
constexpr unsigned peak_sample_shift = 20;
void sample_peak() __attribute__((visibility("hidden")));
// Called by sample_peak with the live bytes it summed, when set (the heap profile's series and peak
// snapshot, profile.cc).
extern void (*on_peak_sample)(uint64_t live_bytes) __attribute__((visibility("hidden")));
uint64_t live_bytes_now() __attribute__((visibility("hidden")));
void count_orphan(int64_t bytes) __attribute__((visibility("hidden")));
// A counter only its owner thread writes and other threads read: add without a read-modify-write
// (no `lock`).  On x86-64 one `add` to memory: the owner's own store, which a reader sees whole (an
// aligned 8-byte access), like the relaxed load and store it replaces (three instructions).
template <class T> inline void bump(std::atomic<T> &c, T by) {
#if defined(__x86_64__)
    static_assert(sizeof(T) == 8 && sizeof(std::atomic<T>) == 8);
    __asm__ __volatile__("addq %1, %0" : "+m"(c) : "er"(by));
#else
    c.store(c.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
#endif
}
// With a thread state: count, and say false when an event is due (settle_events, then the profile if
// it says so, then arm_events).  One countdown for both kinds of event (the peak's sample at every MiB
// of bytes_allocated, the heap profile's countdown): an add per counter and one subtract-and-branch,
// where the peak's boundary test and the profile's countdown took two tests (5 instructions more per
// allocation, callgrind).
inline bool count_allocation_fast(thread_state *t, size_t bytes) {
    bump(t->allocations, uint64_t{1});
    bump(t->bytes_allocated, uint64_t(bytes));
    t->event_countdown -= int64_t(bytes);
    return t->event_countdown >= 0;
}
// The countdown ran out: sample the peak if bytes_allocated crossed a boundary since it was armed, and
// count the profile's own countdown down by what it covered; true when that ran out (the caller then
// calls profile::on_countdown, which draws the next one).  Then arm_events.  Both are inline: with every
// allocation stacked the countdown runs out at each allocation, and two calls from malloc's exit cost
// about 28 instructions per allocation (callgrind).
inline bool settle_events(thread_state *t) {
    const int64_t covered = t->event_armed - t->event_countdown;  // bytes allocated since arm_events
    const uint64_t now = t->bytes_allocated.load(std::memory_order_relaxed);
    if ((((now - uint64_t(covered)) ^ now) >> peak_sample_shift) != 0) sample_peak();
    t->stack_countdown -= covered;
    return t->stack_countdown < 0;
}

// Arm the countdown for the nearer event: the next peak boundary or the profile's countdown (at once
// when that is negative: every allocation is stacked).
inline void arm_events(thread_state *t) {
    constexpr uint64_t step = uint64_t{1} << peak_sample_shift;
    const uint64_t now = t->bytes_allocated.load(std::memory_order_relaxed);
    int64_t n = int64_t(step - (now & (step - 1)) - 1);  // the allocation that reaches the boundary settles
    if (t->stack_countdown < n) n = t->stack_countdown < 0 ? -1 : t->stack_countdown;  // -1: the next one, even of 0 bytes
    t->event_armed = t->event_countdown = n;
}
// Make the next allocation of t's thread settle its events (the profile was just turned on).
void events_due_now(thread_state *t) __attribute__((visibility("hidden")));
// Count an allocation and settle its peak sample (a general path's, whose caller handles the profile
// with settle_events' answer); t may be null (orphan).  True when the profile is due.
inline bool count_allocation(thread_state *t, size_t bytes) {
    if (__builtin_expect(t == nullptr, 0)) return count_orphan(int64_t(bytes)), false;
    if (count_allocation_fast(t, bytes)) return false;
    const bool profile_due = settle_events(t);
    arm_events(t);
    return profile_due;
}
inline void count_free(thread_state *t, size_t bytes) {
    if (__builtin_expect(t == nullptr, 0)) return count_orphan(-int64_t(bytes));
    bump(t->frees, uint64_t{1});
    bump(t->bytes_freed, uint64_t(bytes));
}

}  // namespace mallochooks::heapindex

#endif
