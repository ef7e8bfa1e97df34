// SPDX-License-Identifier: MIT
// The stack depot of HEAPINDEX_STACKS: every distinct allocation stack stored once (hash-consed), named
// by a 32-bit id, with the heap-profile counters of the allocations made from it.
//
// Lock-free and allocation-free, as everything the hooks call: stacks are appended to an arena of
// address space reserved once (mmap, MAP_NORESERVE: memory only where entries are written) by an atomic
// bump, and found through an open-addressing table of ids whose empty slots are claimed with one CAS.
// Two threads interning the same new stack at once both append it; the loser's copy stays unused (a few
// hundred bytes, counted).  Nothing is ever removed or moved, so an id stays valid and readers never
// wait.  When the table is 3/4 full (about 786k distinct stacks) new stacks go to one "depot full" entry,
// counted and reported (docs/heap-profiles.md).
//
// Counters are in units of 1/1024 allocation (sampled stacks scale each sampled allocation up by the
// inverse of its probability of being sampled, a fraction) and bytes; live counters go up at allocation
// and down at free, by the same amounts.  The peak columns are a copy of the live ones taken when the
// process's live bytes reached a new high (profile.cc).
#ifndef MALLOCHOOKS_INDEX_STACK_DEPOT_H
#define MALLOCHOOKS_INDEX_STACK_DEPOT_H

#include <stddef.h>
#include <stdint.h>

#include <atomic>

namespace mallochooks::heapindex {

constexpr uint64_t count_unit = 1024;  // counters count allocations in 1/1024ths

struct alignas(64) stack_entry {
    std::atomic<uint64_t> allocations;  // count_unit per allocation
    std::atomic<uint64_t> bytes;        // bytes allocated in all
    std::atomic<uint64_t> temporaries;  // count_unit per allocation freed before its thread allocated again
    std::atomic<int64_t> live_bytes;
    std::atomic<int64_t> live_chunks;   // count_unit per chunk
    std::atomic<int64_t> peak_bytes;    // live_bytes and live_chunks at the last peak snapshot
    std::atomic<int64_t> peak_chunks;
    uint32_t hash;
    uint16_t depth;
    uint16_t reserved;
    // Written only by the one reader that holds profile.cc's report flag: the counters as a dump or
    // snapshot sees them, threads' pending deltas included.
    std::atomic<int64_t> view[5];
    uint64_t padding[3];
    uintptr_t frames[];  // innermost first
};
static_assert(sizeof(stack_entry) == 128);

class stack_depot {
public:
    // The id of this stack (interned on first sight), or the "depot full" entry's; 0 only when the depot's
    // memory cannot be mapped.  depth <= 0xffff.
    uint32_t intern(const uintptr_t *frames, unsigned depth) { return intern(frames, depth, hash(frames, depth)); }
    uint32_t intern(const uintptr_t *frames, unsigned depth, uint32_t hash);
    static uint32_t hash(const uintptr_t *frames, unsigned depth);  // never 0
    // Whether entry `id` is this stack.
    bool holds(uint32_t id, const uintptr_t *frames, unsigned depth) const;

    stack_entry *get(uint32_t id) const { return reinterpret_cast<stack_entry *>(arena_ + (uintptr_t(id) << 3)); }

    // f(uint32_t id, stack_entry &) for every entry, in the order they were made.
    template <class F> void for_each(F &&f) const {
        if (arena_ == nullptr) return;
        const uint64_t end = top_.load(std::memory_order_acquire);
        for (uint64_t at = first_offset; at < end;) {
            stack_entry *e = reinterpret_cast<stack_entry *>(arena_ + at);
            // Each entry's size word (the 8 bytes before it) is stored last: an entry still being
            // written ends the walk.
            const uint64_t size = reinterpret_cast<const std::atomic<uint64_t> *>(arena_ + at - 8)->load(std::memory_order_acquire);
            if (size == 0) break;
            f(uint32_t(at >> 3), *e);
            at += size;
        }
    }

    uint32_t full_id() const { return full_id_; }
    uint64_t distinct() const { return distinct_.load(std::memory_order_relaxed); }
    uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }
    size_t mapped_bytes() const { return arena_ ? arena_bytes_ + table_bytes_ : 0; }

    bool init();  // reserve the memory (once, from the constructor when stacks are asked for)

private:
    static constexpr uint64_t first_offset = 64;
    uint64_t append(const uintptr_t *frames, unsigned depth, uint32_t hash);

    char *arena_ = nullptr;
    size_t arena_bytes_ = 0;
    std::atomic<uint32_t> *table_ = nullptr;
    size_t table_bytes_ = 0;
    uint32_t mask_ = 0;
    uint32_t full_id_ = 0;
    std::atomic<uint64_t> top_{first_offset};
    std::atomic<uint64_t> distinct_{0}, dropped_{0}, wasted_{0};
};

stack_depot &depot() __attribute__((visibility("hidden")));

}  // namespace mallochooks::heapindex

#endif
