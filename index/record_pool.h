// SPDX-License-Identifier: MIT
// The record pool: where every record (record.h) lives and how ids move between threads.
//
// Each thread queues its freed records in a ring (FIFO, in its thread_state) and reuses the oldest only
// while more than `quarantine` wait, so a tombstone survives at least that many later frees of its
// thread; fresh ids and surplus move between threads through a global lock-free stack of batches.
// Sequence numbers are handed out in per-thread blocks.  Nothing here takes a lock.
#ifndef MALLOCHOOKS_INDEX_RECORD_POOL_H
#define MALLOCHOOKS_INDEX_RECORD_POOL_H

#include <stddef.h>
#include <stdint.h>

#include <atomic>

#include "index/record.h"
#include "index/thread_state.h"

namespace mallochooks::heapindex {

class record_pool {
    friend struct root_builder;  // layout.cc describes the fields for readers outside the process

public:
    // Records live in one contiguous range that grows a segment (131072 records, 4 MiB) at a time as ids
    // are handed out, never moved or unmapped, so an id's record is a shift and an add away from one
    // base.  Nothing is reserved ahead: the range takes address space in proportion to the ids in use (a
    // process under `ulimit -v` must not lose 256 GiB to the index).  It grows in place: it starts at a
    // random address in a part of the address space that nothing else uses (16-32 TiB, far below the
    // mmap area and above the heap of a non-PIE program; lower where that part is not available, as under
    // valgrind), and each segment is mapped right after the last with MAP_FIXED_NOREPLACE.  If something
    // else was mapped there, the pool stops growing (new chunks go unindexed, counted).
    static constexpr unsigned segment_shift = 17;  // 131072 records of 32 bytes (4 MiB) per segment
    static constexpr unsigned max_segments = 1u << 15;  // 2^32 ids

    record *get(uint32_t id) const { return base_.load(std::memory_order_acquire) + id; }

    // A record id for a new chunk (0 when the pool cannot grow), and its release once it is dead.  A freed
    // record stays a tombstone until `quarantine` later frees of its thread, then is reused: the ring is
    // a FIFO that take() pops only while it holds more than the quarantine.
    uint32_t take(thread_state *t) {
        if (__builtin_expect(t != nullptr && t->tail - t->head > quarantine_size(), 1))
            return t->ring()[t->head++ % thread_state::ring_size];
        return take_slow(t);
    }
    __attribute__((always_inline)) void give(thread_state *t, uint32_t id) {
        if (__builtin_expect(t != nullptr && t->tail - t->head < thread_state::ring_size, 1)) {
            t->ring()[t->tail++ % thread_state::ring_size] = id;
            return;
        }
        give_slow(t, id);
    }

    // Hand back everything a thread state holds (thread exit).
    void drain(thread_state *t);

    // In a forked child: a segment that a thread of the parent was mapping at the fork is mapped or not,
    // and nobody will finish the job: settle it (called from the pthread_atfork child handler).
    void after_fork_in_child();

    uint64_t next_seq(thread_state *t) {
        if (__builtin_expect(t != nullptr && t->seq_next < t->seq_end, 1)) return t->seq_next++;
        return refill_seq(t);
    }

    size_t mapped_bytes() const { return mapped_.load(std::memory_order_relaxed); }

    // For heapindex_check: how many ids exist (upper bound of live + dead records).
    uint64_t ids_made() const { return fresh_.load(std::memory_order_relaxed); }

private:
    uint32_t take_slow(thread_state *t);
    void give_slow(thread_state *t, uint32_t id);
    uint64_t refill_seq(thread_state *t);
    bool fill_spare(thread_state *t);
    void push_ids(const uint32_t *ids, unsigned n);
    bool grab_fresh(uint32_t *first);  // 64 never-used ids, first..first+63
    bool map_segment(unsigned segment);
    uint32_t pop_batch();              // a batch's first id (its ids chained through record::tail), or 0
    void push_batch(uint32_t first);

    std::atomic<record *> base_{nullptr};
    std::atomic<uint64_t> capacity_{uint64_t{max_segments} << segment_shift};  // lowered when the range cannot grow
    // Per segment: 0 not mapped, 1 being mapped (by the thread that claimed it), 2 mapped, 3 cannot be.
    std::atomic<uint8_t> segment_state_[max_segments] = {};
    std::atomic<unsigned> mapping_now_{0};  // segments in state 1
    std::atomic<uint64_t> fresh_{thread_state::batch};  // ids below the first batch are never used: 0 = none
    std::atomic<uint64_t> batches_{0};                  // tag << 32 | first id of the top batch
    std::atomic<uint64_t> seq_{1};
    std::atomic<size_t> mapped_{0};
};

// The process's record pool (one for every index and chain of this library).
extern record_pool record_pool_instance __attribute__((visibility("hidden")));
inline record_pool &records() { return record_pool_instance; }

}  // namespace mallochooks::heapindex

#endif
