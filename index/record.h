// SPDX-License-Identifier: MIT
// A chunk record and its seqlock.
//
// A record is the index's own copy of what it knows about one chunk (base, sizes, site, sequence number,
// thread, flags), in memory the index maps and never unmaps or moves (record_pool.h), so that a lookup can
// read it while the chunk itself is being freed (an mmapped chunk can be unmapped under a reader).
// Records are named by 32-bit ids (id 0 is "none"): the index stores ids, not pointers, to halve its
// per-granule table.
//
// Concurrency: a record has one writer at a time (the thread that owns the chunk), and any number of
// readers (lookups, for_each, check) that hold a possibly stale id.  The writer publishes with a seqlock:
// `word` packs a generation and a state; a reader copies the fields between two reads of `word` and
// trusts the copy only when both reads agree and say live.  free turns live into dead with one CAS,
// which also decides the winner of two racing frees of the same chunk.  Freed records are tombstones:
// they keep the chunk's fields plus the free site, so that a second free of the same base can be
// reported with both sites.
#ifndef MALLOCHOOKS_INDEX_RECORD_H
#define MALLOCHOOKS_INDEX_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include <atomic>

namespace mallochooks::heapindex {

// A field read by lock-free readers while its owner may write it: relaxed atomic accesses, which compile
// to plain moves on x86-64, and make the seqlock protocol well defined.
template <class T> class racy {
public:
    T get() const { return v_.load(std::memory_order_relaxed); }
    void set(T x) { v_.store(x, std::memory_order_relaxed); }

private:
    std::atomic<T> v_;
};

enum record_state : uint32_t { rs_free = 0, rs_writing = 1, rs_live = 2, rs_dead = 3 };

constexpr uint32_t state_of(uint32_t word) { return word & 3; }
constexpr uint32_t next_generation(uint32_t word) { return (word & ~3u) + 4; }
// The word of a record made live again: the next generation, rs_live.  (word | 3) + 3 carries into the
// generation from any state and leaves 2 in the low bits: two instructions instead of three.
constexpr uint32_t next_live(uint32_t word) { return (word | 3) + 3; }
static_assert(next_live(7 << 2 | rs_free) == (8 << 2 | rs_live) && next_live(7 << 2 | rs_dead) == (8 << 2 | rs_live));

// What a record says, as one consistent copy.
struct record_fields {
    uintptr_t base;
    size_t size;    // requested
    size_t usable;  // what malloc_usable_size reports: the trailer's offset for trailered chunks
    const void *site;
    uint64_t seq;
    const void *free_site;  // tombstones; a live client block in a heap chunk: that chunk's seq (holder_seq)
    uint32_t tid;
    uint32_t flags;  // HEAPINDEX_FLAG_*
};

struct alignas(64) record {
    std::atomic<uint32_t> word;  // generation << 2 | record_state
    racy<uint32_t> flags;
    racy<uintptr_t> base;
    racy<size_t> usable;
    racy<const void *> free_site;
    // The last 16 bytes are what the chunk's trailer holds, in the trailer's order (trailer.h): free
    // compares the two as one 16-byte block.
    racy<const void *> site;
    racy<size_t> size;
    racy<uint64_t> seq;
    racy<uint32_t> tid;
    std::atomic<uint32_t> link;  // live: the trailer's check word; free: next id in a batch

    // Owner: fill a record it holds exclusively (free or dead) and make it live with a new generation.
    // No "writing" state is needed: the record is already not live (killed, or never used), and the
    // release fence orders that state before the new field values, so a reader that sees any of them
    // also sees the word changed and drops its copy (seqlock; the fence costs nothing on x86-64).
    // Always inlined: malloc's fast path would otherwise spill the fields to the stack for the call
    // (and save six callee-saved registers around it): 30 instructions per allocation (callgrind).
    __attribute__((always_inline)) void publish(const record_fields &f) {
        const uint32_t w = word.load(std::memory_order_relaxed);
        std::atomic_thread_fence(std::memory_order_release);
        base.set(f.base);
        size.set(f.size);
        usable.set(f.usable);
        site.set(f.site);
        seq.set(f.seq);
        tid.set(f.tid);
        flags.set(f.flags);
        word.store(next_live(w), std::memory_order_release);
    }

    // publish for malloc's fast path, its thread id and check word (link) as the trailer's second word,
    // tid | check << 32, in one 8-byte store (the two fields are adjacent: trailer_intact compares them).
    __attribute__((always_inline)) void publish_trailered(uintptr_t b, size_t sz, size_t us, const void *s, uint64_t sq,
                                                          uint64_t tid_check, uint32_t fl) {
        static_assert(offsetof(record, link) == offsetof(record, tid) + 4);
        const uint32_t w = word.load(std::memory_order_relaxed);
        std::atomic_thread_fence(std::memory_order_release);
        base.set(b);
        size.set(sz);
        usable.set(us);
        site.set(s);
        seq.set(sq);
        __atomic_store_n(reinterpret_cast<uint64_t *>(&tid), tid_check, __ATOMIC_RELAXED);
        flags.set(fl);
        word.store(next_live(w), std::memory_order_release);
    }

    // Reader: a consistent copy of a live record, or false.
    bool read_live(record_fields *out) const {
        const uint32_t w1 = word.load(std::memory_order_acquire);
        if (state_of(w1) != rs_live) return false;
        copy(out);
        std::atomic_thread_fence(std::memory_order_acquire);
        return word.load(std::memory_order_relaxed) == w1;
    }

    // Reader: a consistent copy whatever the state; returns the state (rs_writing when in flux).
    uint32_t read_any(record_fields *out) const {
        const uint32_t w1 = word.load(std::memory_order_acquire);
        if (state_of(w1) == rs_writing) return rs_writing;
        copy(out);
        std::atomic_thread_fence(std::memory_order_acquire);
        return word.load(std::memory_order_relaxed) == w1 ? state_of(w1) : uint32_t(rs_writing);
    }

    // Owner of a live chunk: live -> dead.  False when the record was not live with this base any more
    // (a racing free of the same chunk won).
    bool kill(uintptr_t expected_base, const void *freed_at) {
        // The CAS expects the word as it was *if it was live*, so it also fails when the record was not
        // live at all (no test of the state first); a base read meanwhile only counts if the word did
        // not change.
        const uint32_t dead = word.load(std::memory_order_acquire) | rs_dead;
        uint32_t live = dead - (rs_dead - rs_live);
        if (base.get() != expected_base) return false;
        if (!word.compare_exchange_strong(live, dead, std::memory_order_acq_rel)) return false;
        free_site.set(freed_at);
        return true;
    }

    // Undo kill (a realloc that failed): dead -> live, same generation, fields unchanged.
    void revive() {
        const uint32_t w = word.load(std::memory_order_relaxed);
        free_site.set(nullptr);
        word.store((w & ~3u) | rs_live, std::memory_order_release);
    }

private:
    void copy(record_fields *out) const {
        out->base = base.get();
        out->size = size.get();
        out->usable = usable.get();
        out->site = site.get();
        out->seq = seq.get();
        out->free_site = free_site.get();
        out->tid = tid.get();
        out->flags = flags.get();
    }
};
static_assert(sizeof(record) == 64);
}  // namespace mallochooks::heapindex

#endif
