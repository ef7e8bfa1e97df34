// SPDX-License-Identifier: MIT
// Chunk records, the pool they come from, and the per-thread state that makes both cheap.
//
// A record is the index's own copy of what it knows about one chunk (base, sizes, site, sequence number,
// thread, flags), in memory the index maps and never unmaps or moves, so that a lookup can read it while
// the chunk itself is being freed (an mmapped chunk can be unmapped under a reader).  Records are named by
// 32-bit ids (id 0 is "none"): the index stores ids, not pointers, to halve its per-granule table.
//
// Concurrency: a record has one writer at a time (the thread that owns the chunk), and any number of
// readers (lookups, for_each, check) that hold a possibly stale id.  The writer publishes with a seqlock:
// `word` packs a generation and a state; a reader copies the fields between two reads of `word` and
// trusts the copy only when both reads agree and say live.  free turns live into dead with one CAS,
// which also decides the winner of two racing frees of the same chunk.
//
// Freed records are tombstones: they keep the chunk's fields plus the free site, so that a second free of
// the same base can be reported with both sites.  Each thread queues its freed records in a ring (FIFO)
// and reuses the oldest only while more than `quarantine` wait, so a tombstone survives at least that
// many later frees of its thread; fresh ids and surplus move between threads through a global lock-free
// stack of batches.  Sequence numbers are handed out in per-thread blocks.  Nothing here takes a lock;
// per-thread state is found through initial-exec TLS and handed back at thread exit by a pthread key
// destructor (records.cc).
#ifndef MALLOCHOOKS_INDEX_RECORDS_H
#define MALLOCHOOKS_INDEX_RECORDS_H

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
    const void *free_site;  // tombstones only
    uint32_t tid;
    uint32_t flags;  // HEAPINDEX_FLAG_*
};

struct alignas(64) record {
    std::atomic<uint32_t> word;  // generation << 2 | record_state
    racy<uint32_t> flags;
    racy<uintptr_t> base;
    racy<size_t> usable;
    racy<const void *> free_site;
    // The second half is what the chunk's trailer holds, in the trailer's order (trailer.h): free
    // compares the two as two 16-byte blocks.
    racy<const void *> site;
    racy<size_t> size;
    racy<uint64_t> seq;
    racy<uint32_t> tid;
    std::atomic<uint32_t> link;  // live: the trailer's check word; free: next id in a batch

    // Owner: fill a record it holds exclusively (free or dead) and make it live with a new generation.
    // No "writing" state is needed: the record is already not live (killed, or never used), and the
    // release fence orders that state before the new field values, so a reader that sees any of them
    // also sees the word changed and drops its copy (seqlock; the fence costs nothing on x86-64).
    void publish(const record_fields &f) {
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

// Per-thread state: record caches, a block of sequence numbers, the thread id, statistics.
struct thread_state {
    static constexpr unsigned ring_size = 512;   // freed records, oldest first (a power of two)
    static constexpr unsigned quarantine = 256;  // ... of which the newest are kept as tombstones
    static constexpr unsigned batch = 64;        // ids moved to and from the global pool at once
    static constexpr unsigned seq_block = 1024;

    uint32_t ring[ring_size];  // ring[head % ring_size .. tail % ring_size): freed ids in age order
    uint32_t head, tail;       // free-running
    uint32_t spare[batch];     // fresh ids from the global pool, for when the ring is no fuller than the quarantine
    uint32_t spare_count;
    uint32_t tid;
    uint64_t seq_next, seq_end;
    // The check words (trailer.h) of this thread's block of sequence numbers, word seq % seq_block:
    // filled when the block is taken, so allocation reads its check word with one load.
    uint32_t checks[seq_block];
    // Written by the owner only (load + store, no read-modify-write), summed by heapindex_stats.
    std::atomic<uint64_t> allocations, frees, bytes_allocated, bytes_freed;
    thread_state *next_all;   // every state ever made, for statistics
    thread_state *next_free;  // states of exited threads, for reuse
};

class record_pool {
public:
    // Records live in one range of address space, reserved (not committed) when the first one is made
    // and never moved, so an id's record is a shift and an add away; the range is committed a segment at
    // a time as ids are handed out.  Room for every 32-bit id is 256 GiB of address space; where less can
    // be reserved (a limit on address space, valgrind), fewer ids exist.
    static constexpr unsigned segment_shift = 16;  // 65536 records (4 MiB) per segment
    static constexpr unsigned max_segments = 1u << 16;

    record *get(uint32_t id) const { return base_.load(std::memory_order_acquire) + id; }

    // A record id for a new chunk (0 when the pool cannot grow), and its release once it is dead.  A freed
    // record stays a tombstone until `quarantine` later frees of its thread, then is reused: the ring is
    // a FIFO that take() pops only while it holds more than the quarantine.
    uint32_t take(thread_state *t) {
        if (__builtin_expect(t != nullptr && t->tail - t->head > thread_state::quarantine, 1))
            return t->ring[t->head++ % thread_state::ring_size];
        return take_slow(t);
    }
    void give(thread_state *t, uint32_t id) {
        if (__builtin_expect(t != nullptr && t->tail - t->head < thread_state::ring_size, 1)) {
            t->ring[t->tail++ % thread_state::ring_size] = id;
            return;
        }
        give_slow(t, id);
    }

    // Hand back everything a thread state holds (thread exit).
    void drain(thread_state *t);

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
    bool reserve();                    // the address range for every record, once
    bool commit(unsigned segment);
    uint32_t pop_batch();              // a batch's first id (its ids chained through record::link), or 0
    void push_batch(uint32_t first);

    std::atomic<record *> base_{nullptr};
    std::atomic<uint64_t> capacity_{0};  // records the reserved range holds
    std::atomic<bool> committed_[max_segments] = {};
    std::atomic<uint64_t> fresh_{thread_state::batch};  // ids below the first batch are never used: 0 = none
    std::atomic<uint64_t> batches_{0};                  // tag << 32 | first id of the top batch
    std::atomic<uint64_t> seq_{1};
    std::atomic<size_t> mapped_{0};
};

// The process's record pool (one for every index and chain of this library).
extern record_pool record_pool_instance __attribute__((visibility("hidden")));
inline record_pool &records() { return record_pool_instance; }

// This thread's state as the fast paths see it, never null: a thread without one (yet, or any more)
// points at the constant sentinel `no_thread_state`, whose ring reads full and whose block of sequence
// numbers reads empty, so every fast path leaves for its general path without a test of its own (as
// mimalloc's threads start on a constant empty heap).  initial-exec TLS: see libmallochooks/guard.h.
extern const thread_state no_thread_state __attribute__((visibility("hidden")));
extern __thread thread_state *my_thread_state __attribute__((visibility("hidden"), tls_model("initial-exec")));

// This thread's state for the general paths: made on first use; nullptr on a thread that has already run
// its exit destructor (then the pool works on its global structures directly).
thread_state *make_thread_state() __attribute__((visibility("hidden")));
inline thread_state *this_thread() {
    thread_state *t = my_thread_state;
    return __builtin_expect(t != &no_thread_state, 1) ? t : make_thread_state();
}

// How many freed records each thread keeps as tombstones (double frees are recognised that far back).
inline unsigned quarantine_size() { return thread_state::quarantine; }

// Every thread state ever made (for statistics), newest first; and the memory they take.
thread_state *all_thread_states();
size_t thread_state_bytes();

// Refresh the cached thread id after fork (the child's only thread is the one that forked).
void thread_state_after_fork();

// Current thread's kernel thread id, cached.
uint32_t uncached_tid() __attribute__((visibility("hidden")));
inline uint32_t current_tid(thread_state *t) { return __builtin_expect(t != nullptr, 1) ? t->tid : uncached_tid(); }

// Global statistics that are not per thread.
struct global_counters {
    std::atomic<uint64_t> peak_live_bytes{0};
    std::atomic<uint64_t> orphan_allocations{0}, orphan_frees{0}, orphan_bytes_allocated{0}, orphan_bytes_freed{0};
    std::atomic<uint64_t> invalid_frees{0}, double_frees{0}, corrupt_trailers{0}, client_blocks{0};
    std::atomic<uint64_t> unindexed{0};  // chunks the index could not take (out of index memory)
};
global_counters &counters();

// Account an allocation or a free of `bytes` requested bytes to thread state t (nullptr: global).
// Counters are per thread (owner-only load + store, no lock prefix, no shared cache line: the 2-thread
// scaling).  The peak is sampled: each time a thread's allocated bytes cross a megabyte boundary, the
// live bytes of all threads are summed and the peak raised if need be (peak_resolution in docs).
constexpr unsigned peak_sample_shift = 20;
void sample_peak() __attribute__((visibility("hidden")));
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
// With a thread state: count, and say false when the peak is due for a sample.
inline bool count_allocation_fast(thread_state *t, size_t bytes) {
    bump(t->allocations, uint64_t{1});
    const uint64_t before = t->bytes_allocated.load(std::memory_order_relaxed);
    t->bytes_allocated.store(before + bytes, std::memory_order_relaxed);
    return ((before ^ (before + bytes)) >> peak_sample_shift) == 0;
}
inline void count_allocation(thread_state *t, size_t bytes) {
    if (__builtin_expect(t == nullptr, 0)) return count_orphan(int64_t(bytes));
    if (!count_allocation_fast(t, bytes)) sample_peak();
}
inline void count_free(thread_state *t, size_t bytes) {
    if (__builtin_expect(t == nullptr, 0)) return count_orphan(-int64_t(bytes));
    bump(t->frees, uint64_t{1});
    bump(t->bytes_freed, uint64_t(bytes));
}
// mmap'd zeroed memory for the index (nullptr on failure), accounted in `mapped`.
void *map_index_memory(size_t bytes, std::atomic<size_t> &mapped);
void *map_huge_index_memory(size_t bytes, std::atomic<size_t> &mapped);
// Zeroed memory carved from shared blocks backed by transparent huge pages (nullptr on failure), for
// index structures that fill up and that lookups read at random (the leaves of dense regions): many
// share each huge page, so a lookup's TLB entry covers several of them.  Never given back.  Lock-free.
// Accounted by blocks (4 MiB each) in dense_index_bytes().
void *carve_dense_index_memory(size_t bytes);
size_t dense_index_bytes();
void unmap_index_memory(void *p, size_t bytes, std::atomic<size_t> &mapped);

// Where installed() takes an object's memory from: pages of its own (accounted in `mapped`), or carved
// from the shared huge-page blocks.
enum class index_memory { own_pages, dense };

// The object in `slot`, installing a zeroed one first if there is none (and `create`).  A thread that
// loses the race to install unmaps its own pages; a dense piece cannot be given back and stays unused
// (zero pages never touched: only when two threads make the same object at once).  nullptr when there is
// none and none could be had.
template <class T>
T *installed(std::atomic<T *> &slot, bool create, std::atomic<size_t> &mapped, index_memory from = index_memory::own_pages) {
    T *have = slot.load(std::memory_order_acquire);
    if (have != nullptr || !create) return have;
    const bool dense = from == index_memory::dense;
    void *fresh = dense ? carve_dense_index_memory(sizeof(T)) : map_index_memory(sizeof(T), mapped);
    if (fresh == nullptr) return nullptr;
    if (slot.compare_exchange_strong(have, static_cast<T *>(fresh), std::memory_order_acq_rel)) return static_cast<T *>(fresh);
    if (!dense) unmap_index_memory(fresh, sizeof(T), mapped);
    return have;
}

}  // namespace mallochooks::heapindex

#endif
