// SPDX-License-Identifier: MIT
// The global counters and the sampled peak of live bytes (see counters.h).
#include "index/counters.h"

namespace mallochooks::heapindex {

namespace {
constinit global_counters globals;
}  // namespace

global_counters &counters() { return globals; }

void count_orphan(int64_t bytes) {  // a thread past its exit destructor: straight to the global counters
    if (bytes >= 0) {
        globals.orphan_allocations.fetch_add(1, std::memory_order_relaxed);
        globals.orphan_bytes_allocated.fetch_add(uint64_t(bytes), std::memory_order_relaxed);
    } else {
        globals.orphan_frees.fetch_add(1, std::memory_order_relaxed);
        globals.orphan_bytes_freed.fetch_add(uint64_t(-bytes), std::memory_order_relaxed);
    }
}

uint64_t live_bytes_now() {
    uint64_t in = globals.orphan_bytes_allocated.load(std::memory_order_relaxed);
    uint64_t out = globals.orphan_bytes_freed.load(std::memory_order_relaxed);
    for (thread_state *t = all_thread_states(); t != nullptr; t = t->next_all) {
        in += t->bytes_allocated.load(std::memory_order_relaxed);
        out += t->bytes_freed.load(std::memory_order_relaxed);
    }
    return in > out ? in - out : 0;  // threads' counters are read at slightly different times
}

void (*on_peak_sample)(uint64_t) = nullptr;

void sample_peak() {
    const uint64_t now = live_bytes_now();
    uint64_t peak = globals.peak_live_bytes.load(std::memory_order_relaxed);
    while (now > peak && !globals.peak_live_bytes.compare_exchange_weak(peak, now, std::memory_order_relaxed)) {
    }
    if (void (*hook)(uint64_t) = on_peak_sample) hook(now);
}

void events_due_now(thread_state *t) {
    t->event_armed -= t->event_countdown + 1;  // what the countdown covered so far still counts
    t->event_countdown = -1;                   // the next allocation settles, even of 0 bytes
}
}  // namespace mallochooks::heapindex
