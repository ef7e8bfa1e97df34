// SPDX-License-Identifier: MIT
// The floor index: the least that any index answering heapindex_lookup's interior-pointer queries (base,
// requested size, site, sequence number, thread: include/mallochooks/heapindex.h) must do per malloc and
// free, as a real structure that answers lookups.  bench/'s `floorindex` and `floorkill` configurations
// (floor_layer.h) put it behind checked16's trailer; issue 13's cost targets are read against them
// (bench/README.md, "The floor of issue 13's cost targets").
//
// What it keeps, and why nothing less will do:
//   - a record per chunk, 32 bytes out of line (base, requested size, site, sequence number and thread),
//     in memory mapped once and never unmapped, named by a 27-bit id: the fields the API returns can live
//     nowhere else (not in the chunk, which a lookup may not read: it can be unmapped under it);
//   - the id in a slot per 32-byte granule (every chunk is at least 32 bytes, trailer.h), with the
//     requested size and the base's low 5 bits (8 bytes: free finds the trailer and tells a chunk's start
//     from an interior pointer without reading the record), and a start bit per granule, set with
//     `lock bts` at malloc and cleared with `lock btr` at free: the bit decides liveness, and which of two
//     racing frees of a chunk wins, in one atomic instruction;
//   - records recycled per thread in FIFO order behind a quarantine of 256 frees: what reporting a double
//     free with the first free's site needs (a tombstone must survive that long).
// What it leaves out, each cheaper than the index's way (so the floor stays a floor):
//   - the directory: the slots and bits are flat arrays over the address space, reserved MAP_NORESERVE and
//     touched lazily, at index granule = address >> 5 (the index's two-level directory costs a load or
//     two per call).  Where the whole 47-bit space cannot be reserved (under valgrind, whose client space is
//     a few tens of GiB) the arrays cover the low 2^k bytes, the largest that maps; every call tests the
//     granule against the arrays' bound (2 instructions; the index's directory has its own), chunks beyond
//     it are counted, not indexed;
//   - page and region continuations: the lookup scans the bitmap backwards (at most 128 MiB of the address
//     space), where the index answers in constant time because its malloc writes a continuation for every
//     chunk crossing a 4 KiB page; the floor's malloc writes none;
//   - free never reads the record (the point of `floorindex`: `floorkill` adds the record's CAS as the
//     index's kill does), so a record is not marked dead at free; malloc instead zeroes its head before
//     refilling it (one store more, to a line it writes anyway) so that a reader never trusts a half-written
//     copy (seqlock: the head carries the sequence number's low 15 bits as a generation);
//   - the signal-safety of the index's thread state is a busy flag here (a handler interrupting the
//     thread's own use takes the global paths); the thread id cached on first use is not refreshed after
//     fork, and a thread's ids are not handed back at its exit (its ring's records stay unused: up to 128
//     KiB of address space per exited thread; no fast-path cost in the index either).
// Nothing here takes a lock or allocates; the global paths are lock-free.
#ifndef MALLOCHOOKS_BENCH_FLOOR_INDEX_H
#define MALLOCHOOKS_BENCH_FLOOR_INDEX_H

#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>

#include "mallochooks/heapindex.h"

namespace mallochooks::bench_floor {

// A record: the head (base << 17 | generation << 2 | state; 0 while being refilled), then the fields.
struct alignas(32) floor_record {
    static constexpr uint64_t live = 2, dead = 3;
    std::atomic<uint64_t> head;
    std::atomic<uint64_t> size, site, seq_tid;  // seq_tid: seq << 22 | tid

    static constexpr uint64_t head_of(uintptr_t base, uint64_t seq, uint64_t state) {
        return uint64_t(base) << 17 | (seq & 0x7fff) << 2 | state;
    }
    static constexpr uintptr_t base_of(uint64_t head) { return uintptr_t(head >> 17); }
};
static_assert(sizeof(floor_record) == 32);

// Per-thread state in the library's static TLS (initial-exec: no call on access, no allocation).
struct floor_thread {
    static constexpr unsigned ring_size = 4096;  // a power of two
    static constexpr unsigned batch = 64;        // ids moved to and from the global pool at once
    static constexpr unsigned quarantine = 256;
    static constexpr unsigned seq_block = 1024;
    uint32_t head, tail;  // the ring of freed ids, oldest first: ring[head % ring_size .. tail % ring_size)
    uint32_t busy;        // set while the thread's own code uses the state (a signal handler then keeps off)
    uint32_t spare_count;
    uint32_t tid;
    uint64_t seq_next, seq_end;
    uint32_t spare[batch];  // fresh ids, for when the ring is no fuller than the quarantine
    uint32_t ring[ring_size];
};

class floor_index {
public:
    static constexpr unsigned granule_shift = 5;
    // A granule's slot, 8 bytes: size << 32 | id << 5 | base & 31.  The base's low bits let free tell a
    // chunk's start from another pointer into its first granule without the record (an interior free:
    // the index's CAS expects the base), so ids have 27 bits: 134M records, live and in quarantine (the
    // index's have 32).  The requested size (saturated at 2^32 - 1: then the record's) lets free find the
    // trailer right after the request without the record, and without the allocator's usable size.
    static constexpr unsigned max_id_bits = 27;
    static constexpr uint64_t size_saturated = 0xffffffffu;

    // Reserve the arrays (once; later calls return what the first found).  False when nothing could be
    // reserved: then nothing is indexed.  Called from the layer's init, before any chunk is indexed.
    bool init() {
        if (ready_.load(std::memory_order_acquire)) return span_ != 0;
        // The address space: 2^47 bytes when it can be reserved, less under valgrind.
        for (unsigned bits = 47; bits >= 32 && span_ == 0; --bits) {
            const uint64_t granules = uint64_t{1} << (bits - granule_shift);
            void *slots = reserve(granules * sizeof(uint64_t));
            if (slots == nullptr) continue;
            void *starts = reserve(granules / 8);
            if (starts == nullptr) {
                munmap(slots, granules * sizeof(uint64_t));
                continue;
            }
            slots_ = static_cast<uint64_t *>(slots);
            starts_ = static_cast<uint64_t *>(starts);
            span_ = granules;
        }
        for (unsigned bits = max_id_bits; bits >= 20 && span_ != 0; --bits) {
            void *r = reserve((uint64_t{1} << bits) * sizeof(floor_record));
            if (r == nullptr) continue;
            records_ = static_cast<floor_record *>(r);
            capacity_ = uint64_t{1} << bits;
            break;
        }
        if (records_ == nullptr) span_ = 0;
        ready_.store(true, std::memory_order_release);
        return span_ != 0;
    }

    // Unmap everything (the tests' indexes: each reserves a quarter of the address space, 32 TiB of
    // slots; a library's index lives as long as the process and is never released).
    void release() {
        if (span_ != 0) {
            munmap(slots_, span_ * sizeof(uint64_t));
            munmap(starts_, span_ / 8);
        }
        if (records_ != nullptr) munmap(records_, capacity_ * sizeof(floor_record));
        slots_ = nullptr, starts_ = nullptr, records_ = nullptr, span_ = 0, capacity_ = 0;
    }

    // malloc: index the chunk at `base` (requested `size`, allocated at `site`) for thread state `t`; the
    // chunk's sequence number, for its trailer.
    __attribute__((always_inline)) uint64_t insert(floor_thread &t, uintptr_t base, size_t size, const void *site) {
        if (__builtin_expect(t.busy, 0)) return insert_interrupting(base, size, site);
        // The thread state is this thread's, but a signal handler may allocate at any instruction: it
        // finds `busy` and keeps to the global structures (two stores, as the index's thread-state swap).
        t.busy = 1;
        std::atomic_signal_fence(std::memory_order_seq_cst);
        const uint64_t seq = __builtin_expect(t.seq_next < t.seq_end, 1) ? t.seq_next++ : refill_seq(t);
        const uint32_t id = __builtin_expect(t.tail - t.head > floor_thread::quarantine, 1)
                                ? t.ring[t.head++ % floor_thread::ring_size]
                                : take_slow(t);
        std::atomic_signal_fence(std::memory_order_seq_cst);
        t.busy = 0;
        publish(id, base, size, site, seq << 22 | t.tid);
        return seq;
    }

    // malloc's fast path, in two halves so that it makes no call (its caller then keeps no register
    // across one): a sequence number and an id from the thread's block and ring, or false when either
    // is empty or a signal handler interrupted the thread's own use (then insert(), which does all).
    __attribute__((always_inline)) bool take_fast(floor_thread &t, uint64_t *seq, uint32_t *id) {
        if (__builtin_expect(t.busy, 0)) return false;
        t.busy = 1;
        std::atomic_signal_fence(std::memory_order_seq_cst);
        const bool ok = t.seq_next < t.seq_end && t.tail - t.head > floor_thread::quarantine;
        if (__builtin_expect(ok, 1)) {
            *seq = t.seq_next++;
            *id = t.ring[t.head++ % floor_thread::ring_size];
        }
        std::atomic_signal_fence(std::memory_order_seq_cst);
        t.busy = 0;
        return ok;
    }
    // ... and what follows it: the record, the slot, the start bit; false, having done nothing, when the
    // chunk cannot be indexed (then publish(), which counts it).
    __attribute__((always_inline)) bool publish_fast(floor_thread &t, uint32_t id, uintptr_t base, size_t size,
                                                     const void *site, uint64_t seq) {
        if (__builtin_expect(id == 0 || (base >> granule_shift) >= span_, 0)) return false;
        publish(id, base, size, site, seq << 22 | t.tid);
        return true;
    }
    // publish_fast's refusal: the chunk counted as unindexed, its id handed back.
    __attribute__((noinline, cold)) void publish_refused(floor_thread &t, uint32_t id, uintptr_t base, size_t size,
                                                         const void *site, uint64_t seq) {
        publish(id, base, size, site, seq << 22 | t.tid);
    }
    // free's fast path likewise: the id queued, or false when the ring is full or the thread busy (then
    // give(), which may call).
    __attribute__((always_inline)) bool give_fast(floor_thread &t, uint32_t id) {
        if (__builtin_expect(t.busy, 0)) return false;
        t.busy = 1;
        std::atomic_signal_fence(std::memory_order_seq_cst);
        const bool ok = t.tail - t.head < floor_thread::ring_size;
        if (__builtin_expect(ok, 1)) t.ring[t.tail++ % floor_thread::ring_size] = id;
        std::atomic_signal_fence(std::memory_order_seq_cst);
        t.busy = 0;
        return ok;
    }

    // free: unindex the chunk at `base`; its requested size in *size.  False when no live chunk starts
    // there (double or invalid free: the caller's business).  With Kill, also turn the record dead with a
    // CAS on its head, as the index's kill does: the access "free never reads the record" would save.
    template <bool Kill> __attribute__((always_inline)) bool remove(floor_thread &t, uintptr_t base, size_t *size) {
        uint32_t id;
        if (!clear_start(base, &id, size)) return false;
        if constexpr (Kill) kill(id, base);
        give(t, id);
        return true;
    }

    // floorkill's access to the record at free: its head read and turned dead by a CAS that expects it
    // live with this base (the index's kill, record.h).  unkill: a failed realloc's undo.
    __attribute__((always_inline)) void kill(uint32_t id, uintptr_t base) {
        // As record::claim: the expected head is "live with this base" in the generation read, so that the
        // one compare of the CAS decides all three.
        floor_record *r = records_ + id;
        uint64_t live = (r->head.load(std::memory_order_relaxed) & 0x1fffc) | floor_record::head_of(base, 0, floor_record::live);
        if (__builtin_expect(!r->head.compare_exchange_strong(live, live | floor_record::dead, std::memory_order_acq_rel), 0))
            lost_kill();
    }
    void unkill(uint32_t id) { records_[id].head.fetch_and(~uint64_t{1}, std::memory_order_release); }

    // The start bit cleared (which decides liveness, and the winner of racing frees) and the granule's id
    // read; false when no live chunk started at base.  realloc clears first and gives the id back (give)
    // only once the allocator succeeded; on failure it sets the bit again (revive).
    __attribute__((always_inline)) bool clear_start(uintptr_t base, uint32_t *id, size_t *size) {
        const uint64_t g = base >> granule_shift;
        if (__builtin_expect(g >= span_, 0)) return false;
        const uint64_t slot = slots_[g];
        if (__builtin_expect((slot ^ base) & 31, 0)) return false;  // not where the granule's chunk starts
        bool was;
        __asm__ __volatile__("lock btrq %2, %0" : "+m"(*starts_), "=@ccc"(was) : "r"(g) : "memory");
        if (__builtin_expect(!was, 0)) return false;
        *id = uint32_t(slot) >> granule_shift;
        *size = slot >> 32;
        if (__builtin_expect(*size == size_saturated, 0)) *size = records_[*id].size.load(std::memory_order_relaxed);
        return true;
    }
    // The requested size of the live chunk that starts at base (malloc_usable_size), or false.
    bool size_at(uintptr_t base, size_t *size) const {
        const uint64_t g = base >> granule_shift;
        if (g >= span_) return false;
        const uint64_t slot = __atomic_load_n(&slots_[g], __ATOMIC_ACQUIRE);
        if (((slot ^ base) & 31) != 0 || !(__atomic_load_n(&starts_[g >> 6], __ATOMIC_ACQUIRE) >> (g & 63) & 1)) return false;
        *size = slot >> 32;
        if (*size == size_saturated) *size = records_[uint32_t(slot) >> granule_shift].size.load(std::memory_order_relaxed);
        return true;
    }
    void revive(uintptr_t base) {
        const uint64_t g = base >> granule_shift;
        if (g < span_) __asm__ __volatile__("lock btsq %1, %0" : "+m"(*starts_) : "r"(g) : "memory");
    }

    __attribute__((always_inline)) void give(floor_thread &t, uint32_t id) {
        if (__builtin_expect(t.busy, 0)) return chain_and_push(&id, 1);
        t.busy = 1;
        std::atomic_signal_fence(std::memory_order_seq_cst);
        if (__builtin_expect(t.tail - t.head < floor_thread::ring_size, 1))
            t.ring[t.tail++ % floor_thread::ring_size] = id;
        else
            give_slow(t, id);
        std::atomic_signal_fence(std::memory_order_seq_cst);
        t.busy = 0;
    }

    // Which live chunk holds addr: 1 and *out filled, or 0.  Never blocks, never reads chunk memory.
    int lookup(const void *addr, heapindex_chunk *out) const {
        const uint64_t g = uintptr_t(addr) >> granule_shift;
        if (g >= span_) return 0;
        for (int attempt = 0; attempt < 8; ++attempt) {
            // The nearest start bit at or before g, at most max_scan_words words back.
            uint64_t w = g >> 6;
            uint64_t bits = __atomic_load_n(&starts_[w], __ATOMIC_ACQUIRE) & (~uint64_t{0} >> (63 - (g & 63)));
            for (uint64_t scanned = 0; bits == 0; ++scanned) {
                if (w == 0 || scanned == max_scan_words) return 0;
                bits = __atomic_load_n(&starts_[--w], __ATOMIC_ACQUIRE);
            }
            const uint64_t s = w << 6 | (63 - __builtin_clzll(bits));
            const uint64_t slot = __atomic_load_n(&slots_[s], __ATOMIC_ACQUIRE);
            const uint32_t id = uint32_t(slot) >> granule_shift;
            if (id == 0 || id >= capacity_) return 0;
            const floor_record *r = records_ + id;
            const uint64_t h = r->head.load(std::memory_order_acquire);
            const uint64_t size = r->size.load(std::memory_order_relaxed);
            const uint64_t site = r->site.load(std::memory_order_relaxed);
            const uint64_t seq_tid = r->seq_tid.load(std::memory_order_relaxed);
            std::atomic_thread_fence(std::memory_order_acquire);
            // Trusted only if nothing changed meanwhile: the head (generation), the id and the start bit.
            if (r->head.load(std::memory_order_relaxed) != h || (h & 3) != floor_record::live ||
                floor_record::base_of(h) >> granule_shift != s || __atomic_load_n(&slots_[s], __ATOMIC_ACQUIRE) != slot ||
                !(__atomic_load_n(&starts_[s >> 6], __ATOMIC_ACQUIRE) >> (s & 63) & 1))
                continue;
            const uintptr_t base = floor_record::base_of(h);
            if (uintptr_t(addr) < base || uintptr_t(addr) - base >= size) return 0;
            out->base = reinterpret_cast<void *>(base);
            out->size = size;
            out->usable_size = size;
            out->alloc_site = reinterpret_cast<const void *>(uintptr_t(site));
            out->seq = seq_tid >> 22;
            out->tid = uint32_t(seq_tid & ((1u << 22) - 1));
            out->flags = HEAPINDEX_FLAG_TRAILER;
            return 1;
        }
        return 0;
    }

    // The id in base's granule (the tests' window on the quarantine; 0 when none or beyond the arrays).
    uint32_t id_at(uintptr_t base) const {
        const uint64_t g = base >> granule_shift;
        return g < span_ ? uint32_t(__atomic_load_n(&slots_[g], __ATOMIC_ACQUIRE)) >> granule_shift : 0;
    }
    uint64_t unindexed_chunks() const { return unindexed_.load(std::memory_order_relaxed); }
    uint64_t lost_kills() const { return lost_kills_.load(std::memory_order_relaxed); }
    uint64_t span_bytes() const { return span_ << granule_shift; }

private:
    static constexpr uint64_t max_scan_words = (uint64_t{128} << 20) >> granule_shift >> 6;  // 128 MiB

    static void *reserve(size_t bytes) {
        void *p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        return p == MAP_FAILED ? nullptr : p;
    }


    // The record filled and published, then its id in the granule's slot, then the start bit.  id 0: the
    // records are exhausted (or the granule beyond the arrays): the chunk is counted, not indexed.
    __attribute__((always_inline)) void publish(uint32_t id, uintptr_t base, size_t size, const void *site,
                                                uint64_t seq_tid) {
        const uint64_t g = base >> granule_shift;
        if (__builtin_expect(id == 0 || g >= span_, 0)) return unindexed(id);
        floor_record *r = records_ + id;
        r->head.store(0, std::memory_order_relaxed);  // in flux: a reader's copy taken across the refill fails
        std::atomic_thread_fence(std::memory_order_release);
        r->size.store(size, std::memory_order_relaxed);
        r->site.store(uintptr_t(site), std::memory_order_relaxed);
        r->seq_tid.store(seq_tid, std::memory_order_relaxed);
        r->head.store(floor_record::head_of(base, seq_tid >> 22, floor_record::live), std::memory_order_release);
        const uint64_t size_field = size < size_saturated ? size : size_saturated;
        __atomic_store_n(&slots_[g], size_field << 32 | id << granule_shift | uint32_t(base & 31), __ATOMIC_RELEASE);
        __asm__ __volatile__("lock btsq %1, %0" : "+m"(*starts_) : "r"(g) : "memory");
    }

    // A chunk not indexed: counted, and its id (if any) handed to the global stack.
    __attribute__((noinline, cold)) void unindexed(uint32_t id) {
        unindexed_.fetch_add(1, std::memory_order_relaxed);
        if (id != 0) chain_and_push(&id, 1);
    }
    __attribute__((noinline, cold)) void lost_kill() { lost_kills_.fetch_add(1, std::memory_order_relaxed); }

    // malloc in a signal handler that interrupted this thread's use of its state: global id and number.
    __attribute__((noinline, cold)) uint64_t insert_interrupting(uintptr_t base, size_t size, const void *site) {
        const uint64_t seq = seq_.fetch_add(1, std::memory_order_relaxed);
        uint32_t id = pop_batch();  // a batch's first id; the rest of the batch goes back
        if (id != 0) {
            const uint32_t rest = uint32_t(records_[id].size.load(std::memory_order_relaxed));
            if (rest != 0) push_chain(rest);
        } else {
            const uint64_t f = fresh_.fetch_add(1, std::memory_order_relaxed);
            id = f < capacity_ ? uint32_t(f) : 0;
        }
        publish(id, base, size, site, seq << 22 | uint32_t(syscall(SYS_gettid)));
        return seq;
    }

    // An id when the ring holds no more than the quarantine (t busy): the spare, a batch from the global
    // stack, or 64 fresh ones; 0 when the records are exhausted.
    __attribute__((noinline)) uint32_t take_slow(floor_thread &t) {
        if (t.spare_count == 0) {
            uint32_t k = 0;
            // A batch's ids are chained through their records' size words.
            for (uint32_t i = pop_batch(); i != 0 && k < floor_thread::batch;
                 i = uint32_t(records_[i].size.load(std::memory_order_relaxed)))
                t.spare[k++] = i;
            if (k == 0) {
                const uint64_t first = fresh_.fetch_add(floor_thread::batch, std::memory_order_relaxed);
                if (first + floor_thread::batch <= capacity_)
                    for (; k < floor_thread::batch; ++k) t.spare[k] = uint32_t(first + k);
            }
            t.spare_count = k;
        }
        return t.spare_count != 0 ? t.spare[--t.spare_count] : 0;
    }

    // The ring is full (t busy): move its oldest batch to the global stack, then queue id.
    __attribute__((noinline)) void give_slow(floor_thread &t, uint32_t id) {
        uint32_t out[floor_thread::batch];
        for (unsigned k = 0; k < floor_thread::batch; ++k) out[k] = t.ring[t.head++ % floor_thread::ring_size];
        t.ring[t.tail++ % floor_thread::ring_size] = id;
        chain_and_push(out, floor_thread::batch);
    }

    // Chain ids through their records' size words (head 0 first: no reader trusts them after) and push
    // them as one batch.  The stack: tag << 32 | first id; the next batch's first id in the first record's
    // site word.
    void chain_and_push(const uint32_t *ids, unsigned n) {
        for (unsigned k = 0; k < n; ++k) {
            records_[ids[k]].head.store(0, std::memory_order_relaxed);
            std::atomic_thread_fence(std::memory_order_release);
            records_[ids[k]].size.store(k + 1 < n ? ids[k + 1] : 0, std::memory_order_relaxed);
        }
        push_chain(ids[0]);
    }
    void push_chain(uint32_t first) {
        uint64_t top = batches_.load(std::memory_order_acquire);
        do {
            records_[first].site.store(uint32_t(top), std::memory_order_relaxed);
        } while (!batches_.compare_exchange_weak(top, ((top >> 32) + 1) << 32 | first, std::memory_order_acq_rel));
    }
    uint32_t pop_batch() {
        uint64_t top = batches_.load(std::memory_order_acquire);
        while (uint32_t(top) != 0) {
            // A stale read of the next link is harmless: the tag makes the CAS fail.
            const uint64_t next = uint32_t(records_[uint32_t(top)].site.load(std::memory_order_relaxed));
            if (batches_.compare_exchange_weak(top, ((top >> 32) + 1) << 32 | next, std::memory_order_acq_rel))
                return uint32_t(top);
        }
        return 0;
    }

    // A new block of sequence numbers (t busy); the thread id cached on the thread's first.
    __attribute__((noinline)) uint64_t refill_seq(floor_thread &t) {
        if (t.tid == 0) t.tid = uint32_t(syscall(SYS_gettid)) & ((1u << 22) - 1);
        t.seq_next = seq_.fetch_add(floor_thread::seq_block, std::memory_order_relaxed);
        t.seq_end = t.seq_next + floor_thread::seq_block;
        return t.seq_next++;
    }

    uint64_t *slots_ = nullptr;    // per granule: size, id and base bits of the chunk that starts there (or last did)
    uint64_t *starts_ = nullptr;   // per granule: 1 while a live chunk starts there
    floor_record *records_ = nullptr;
    uint64_t span_ = 0;            // granules covered by slots_ and starts_
    uint64_t capacity_ = 0;        // records reserved
    std::atomic<bool> ready_{false};
    std::atomic<uint64_t> fresh_{floor_thread::batch};  // ids below the first batch are never used: 0 = none
    std::atomic<uint64_t> batches_{0};
    std::atomic<uint64_t> seq_{1};
    std::atomic<uint64_t> unindexed_{0}, lost_kills_{0};
};

}  // namespace mallochooks::bench_floor

#endif
