// SPDX-License-Identifier: MIT
// A chunk record and its seqlock.
//
// A record is the index's own copy of what it knows about one chunk (base, requested size, site,
// sequence number, thread, flags, the trailer's check word), in memory the index maps and never unmaps
// or moves (record_pool.h), so that a lookup can read it while the chunk itself is being freed (an
// mmapped chunk can be unmapped under a reader).  Records are named by 32-bit ids (id 0 is "none"): the
// index stores ids, not pointers, to halve its per-granule table.
//
// A record is 32 bytes, four 64-bit words, two to a cache line and never straddling one (issue 13: it
// was 64 bytes, the largest part of the index's memory per chunk).  Addresses and sizes take 47 bits
// (the index covers the 47-bit address space: no chunk lies beyond it, nor is larger), the thread id 22
// (Linux's PID_MAX_LIMIT is 2^22), the flags 13, the check word 32, the sequence number 46, spread over
// the words' spare bits:
//
//   word 0  head   state (2) | seq bits 0-14 (15) | base (47)        the seqlock word, the CAS's target
//   word 1         flags (13) | seq bits 15-18 (4) | site (47)
//   word 2   tail  aux (32) | tid (22) | seq bits 36-45 (10)        } the trailer's image: a trailered
//   word 3         seq bits 19-35 (17) | size (47)                  } chunk's trailer is these 16 bytes
//
// The tail comes first so that the trailer's first bytes are the check word's (trailer.h): the byte an
// off-by-one writes (a NUL just past a chunk whose size is a multiple of 8, which has no slack) meets
// a byte that is never 0 nor ASCII.  (With the size word first, that byte was the sequence number's bits
// 19-26, 0 for a process's first 524,288 allocations: the off-by-one NUL went unseen there.)
//
// `aux` is the trailer's check word for a chunk with a trailer; for a chunk without one (early), how
// many bytes its allocator's usable size exceeds the request by; for a client block inside a heap
// chunk, the low 32 bits of that chunk's sequence number.  The usable size is not stored: a trailered
// chunk's is its trailer's offset, trailered_usable(size); an early one's size + aux; a client
// block's, its size.  A tombstone (a dead record) keeps everything but the thread id and aux, which its
// free site (48 bits, at bits 0-47 of the tail) overlays: a double-free report names the chunk, its
// size, sequence number and both sites, not the allocating thread.
//
// Concurrency: a record has one writer at a time (the thread that owns the chunk), and any number of
// readers (lookups, for_each, check) that hold a possibly stale id.  The writer publishes with a seqlock
// whose generation is the sequence number's low 15 bits, in the head word with the state and the base:
// a reader copies the words between two reads of the head and trusts the copy only when both reads agree
// and say live.  free turns live into dead with one CAS on the head, which expects this very base, so
// it also decides the winner of two racing frees of the same chunk.  Freed records are tombstones: they
// keep the chunk's fields plus the free site, so that a second free of the same base can be reported
// with both sites.
#ifndef MALLOCHOOKS_INDEX_RECORD_H
#define MALLOCHOOKS_INDEX_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include <atomic>

#include "mallochooks/heapindex.h"

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

// rs_dying: claimed by a realloc (or a client block's release) still under way: neither live nor a
// finished tombstone (its free site is not written yet).  A reader treats it as in flux.
enum record_state : uint32_t { rs_free = 0, rs_dying = 1, rs_live = 2, rs_dead = 3 };
constexpr uint32_t rs_writing = rs_dying;  // what read_any answers for a record in flux

// The bit layout (see the top).
namespace rec {
constexpr unsigned value_shift = 17;  // base, site and size: bits 17-63 of their words
constexpr uint64_t low_bits = (uint64_t{1} << value_shift) - 1;
constexpr unsigned flag_bits = 13;
constexpr uint64_t flag_mask = (uint64_t{1} << flag_bits) - 1;
constexpr unsigned seq_bits = 46;
constexpr uint64_t seq_mask = (uint64_t{1} << seq_bits) - 1;
constexpr unsigned tid_shift = 32, tid_bits = 22, seq3_shift = 54;
constexpr uint64_t tid_mask = (uint64_t{1} << tid_bits) - 1;
constexpr uint64_t free_site_mask = (uint64_t{1} << 48) - 1;

constexpr uint32_t state_of(uint64_t head) { return uint32_t(head) & 3; }
constexpr uintptr_t base_of(uint64_t head) { return uintptr_t(head >> value_shift); }
constexpr uint64_t head_of(uintptr_t base, uint64_t seq, uint32_t state) {
    return uint64_t(base) << value_shift | ((seq * 4 + state) & low_bits);  // one lea (seq << 2 | state took two)
}
// The parts of words 1 to 3 that depend only on the sequence number's bits 15 and up (and the
// thread): constant over a thread's block of 1024 numbers, so malloc's fast path takes them from its
// thread state (thread_state::block_words).
constexpr uint64_t site_seq_bits(uint64_t seq) { return ((seq >> 15) & 0xf) << flag_bits; }
constexpr uint64_t size_seq_bits(uint64_t seq) { return (seq >> 19) & low_bits; }
constexpr uint64_t tail_seq_bits(uint64_t seq, uint32_t tid) {
    return (uint64_t(tid) & tid_mask) << tid_shift | ((seq >> 36) & 0x3ff) << seq3_shift;
}
constexpr uint64_t site_word(uintptr_t site, uint64_t seq, uint32_t flags) {
    return uint64_t(site) << value_shift | site_seq_bits(seq) | (flags & flag_mask);
}
constexpr uint64_t size_word(size_t size, uint64_t seq) { return uint64_t(size) << value_shift | size_seq_bits(seq); }
constexpr uint64_t tail_word(uint32_t aux, uint32_t tid, uint64_t seq) { return aux | tail_seq_bits(seq, tid); }
// From the head, the site word, the size word and the tail (in this order: not the words' order).
constexpr uint64_t seq_of(uint64_t w0, uint64_t w1, uint64_t size_w, uint64_t tail_w) {
    return ((w0 >> 2) & 0x7fff) | ((w1 >> flag_bits) & 0xf) << 15 | (size_w & low_bits) << 19 | (tail_w >> seq3_shift) << 36;
}
static_assert(seq_of(head_of(0, 0x2a5a5a5a5a5a, 2), site_word(0, 0x2a5a5a5a5a5a, 0), size_word(0, 0x2a5a5a5a5a5a),
                     tail_word(0, 0, 0x2a5a5a5a5a5a)) == 0x2a5a5a5a5a5a);
}  // namespace rec

// The usable size of a chunk with a trailer: the trailer's offset (trailer.h's trailer_at): the request
// rounded up to 8.  (Two instructions: free and malloc compute it, the record does not keep it.)
constexpr size_t trailered_usable(size_t size) { return (size + 7) & ~size_t{7}; }

// Flags that say a chunk has a trailer (memcheck.h's has_trailer: HEAPINDEX_FLAG_TRAILER, or the
// internal flag of a trailer guarded under memcheck).
constexpr uint32_t record_flag_guarded_trailer = 0x800u, record_flag_memcheck_block = 0x1000u;
constexpr bool has_trailer(uint32_t flags) { return (flags & (HEAPINDEX_FLAG_TRAILER | record_flag_guarded_trailer)) != 0; }

// What a record says, as one consistent copy.
struct record_fields {
    uintptr_t base;
    size_t size;    // requested
    size_t usable;  // what malloc_usable_size reports: the trailer's offset for trailered chunks
    const void *site;
    uint64_t seq;   // 46 bits in the record
    // A tombstone's free site; a live client block in a heap chunk: that chunk's seq's low 32 bits
    // (holder_seq).  Given to publish for a client block.
    const void *free_site;
    uint32_t tid;    // 0 in a tombstone (unknown: the free site overlays it)
    uint32_t flags;  // HEAPINDEX_FLAG_*
    uint32_t check = 0;  // a trailered chunk's check word
};

struct alignas(32) record {
    std::atomic<uint64_t> head;  // word 0: state | seq bits 0-14 | base
    racy<uint64_t> w_site;       // word 1: flags | seq bits 15-18 | site
    // The last 16 bytes are what the chunk's trailer holds (trailer.h): free compares the two as one
    // 16-byte block.  The tail first: the trailer starts with the check word.
    racy<uint64_t> tail;    // word 2: aux | tid | seq bits 36-45; a tombstone: the free site.  A free record: the next id of its batch
    racy<uint64_t> w_size;  // word 3: seq bits 19-35 | size.  A free record: the next batch on the global stack

    uintptr_t base() const { return rec::base_of(head.load(std::memory_order_relaxed)); }
    size_t size() const { return size_t(w_size.get() >> rec::value_shift); }
    uint32_t flags() const { return uint32_t(w_site.get() & rec::flag_mask); }
    uint32_t tid() const { return uint32_t((tail.get() >> rec::tid_shift) & rec::tid_mask); }
    uint32_t aux() const { return uint32_t(tail.get()); }
    uint64_t seq() const { return rec::seq_of(head.load(std::memory_order_relaxed), w_site.get(), w_size.get(), tail.get()); }
    // Owner of a live (or claimed) record.
    void set_flags(uint32_t f) { w_site.set((w_site.get() & ~rec::flag_mask) | (f & rec::flag_mask)); }
    void add_flags(uint32_t f) { w_site.set(w_site.get() | (f & rec::flag_mask)); }

    // Owner: fill a record it holds exclusively (free or dead) and make it live.  No "writing" state is
    // needed: the record is already not live (killed, or never used), and the release fence orders that
    // state before the new field values, so a reader that sees any of them also sees the head changed
    // (new sequence number) and drops its copy (seqlock; the fence costs nothing on x86-64).
    // `f.check` is the check word of a trailered chunk; an early chunk's aux is computed from its usable
    // size, a client block's from f.free_site (holder_seq).
    __attribute__((always_inline)) void publish(const record_fields &f) {
        uint32_t aux = f.check;
        if (!has_trailer(f.flags)) {
            if (f.flags & HEAPINDEX_FLAG_CLIENT) aux = uint32_t(uintptr_t(f.free_site));
            else aux = f.usable - f.size > 0xffffffffu ? 0xffffffffu : uint32_t(f.usable - f.size);
        }
        publish_words(rec::head_of(f.base, f.seq, rs_live), rec::site_word(uintptr_t(f.site), f.seq, f.flags),
                      rec::size_word(f.size, f.seq), rec::tail_word(aux, f.tid, f.seq));
    }
    // The same with the words made (malloc's fast path, which writes the tail and the size word to the
    // trailer too).  Arguments: head, site word, size word, tail (the tail is word 2, the size word 3).
    __attribute__((always_inline)) void publish_words(uint64_t w0, uint64_t w1, uint64_t size_w, uint64_t tail_w) {
        fill_words(w1, size_w, tail_w);
        go_live(w0);
    }
    // The two halves of publish_words, for a caller with stores of its own between (the trailer).
    __attribute__((always_inline)) void fill_words(uint64_t w1, uint64_t size_w, uint64_t tail_w) {
        std::atomic_thread_fence(std::memory_order_release);
        w_site.set(w1);
        tail.set(tail_w);
        w_size.set(size_w);
    }
    __attribute__((always_inline)) void go_live(uint64_t w0) { head.store(w0, std::memory_order_release); }

    // Reader: a consistent copy of a live record, or false.
    bool read_live(record_fields *out) const {
        const uint64_t w1 = head.load(std::memory_order_acquire);
        if (rec::state_of(w1) != rs_live) return false;
        copy(w1, out);
        std::atomic_thread_fence(std::memory_order_acquire);
        return head.load(std::memory_order_relaxed) == w1;
    }

    // Reader: a consistent copy whatever the state; returns the state (rs_writing when in flux: being
    // claimed or refilled, or caught changing).
    uint32_t read_any(record_fields *out) const {
        const uint64_t w1 = head.load(std::memory_order_acquire);
        if (rec::state_of(w1) == rs_dying) return rs_writing;
        copy(w1, out);
        std::atomic_thread_fence(std::memory_order_acquire);
        return head.load(std::memory_order_relaxed) == w1 ? rec::state_of(w1) : uint32_t(rs_writing);
    }

    // Owner of a claimed record (it killed it and has not buried it yet): its fields as they were live.
    void read_owned(record_fields *out) const { copy((head.load(std::memory_order_relaxed) & ~uint64_t{3}) | rs_live, out); }

    // Owner of a live chunk: live -> dead (or rs_dying, for a realloc that may undo it).  False when
    // the record was not live with this base (a racing free of the same chunk won, or no chunk).  The
    // CAS expects the head as it was if it was live with this base: one compare decides all three.
    // After a claim the record's fields are the caller's; bury() makes it a tombstone.
    __attribute__((always_inline)) bool claim(uintptr_t expected_base, uint32_t to = rs_dead) {
        const uint64_t w = head.load(std::memory_order_acquire);
        uint64_t live = (w & (rec::low_bits & ~uint64_t{3})) + (uint64_t(expected_base) << rec::value_shift) + rs_live;
        __asm__("" : "+r"(live));  // made whole first: then one lea each (gcc otherwise makes both from a partial sum)
        const uint64_t next = live + (uint64_t{to} - rs_live);
        return head.compare_exchange_strong(live, next, std::memory_order_acq_rel);
    }
    // The free site over the tail (bits 0-47: a 4-byte and a 2-byte store, the sequence number's bits in
    // the top 10 stay): after the trailer was checked and the profile told (they read aux and tid).
    __attribute__((always_inline)) void bury(const void *freed_at) {
        const uint64_t s = uint64_t(uintptr_t(freed_at));
        struct __attribute__((may_alias)) u32 {
            uint32_t v;
        };
        struct __attribute__((may_alias)) u16 {
            uint16_t v;
        };
        char *t = reinterpret_cast<char *>(&tail);
#if defined(__x86_64__)
        // The site shifted in place (gcc shifts a copy: one move more on free's fast path, where the site
        // is dead after this).
        uint64_t v = s;
        __asm__ __volatile__("movl %k2, %0\n\tshrq $32, %2\n\tmovw %w2, %1"
                             : "=m"(reinterpret_cast<u32 *>(t)->v), "=m"(reinterpret_cast<u16 *>(t + 4)->v), "+r"(v));
#else
        __atomic_store_n(&reinterpret_cast<u32 *>(t)->v, uint32_t(s), __ATOMIC_RELAXED);
        __atomic_store_n(&reinterpret_cast<u16 *>(t + 4)->v, uint16_t(s >> 32), __ATOMIC_RELAXED);
#endif
    }
    // claim + bury, where nothing is checked between.
    bool kill(uintptr_t expected_base, const void *freed_at) {
        if (!claim(expected_base)) return false;
        bury(freed_at);
        return true;
    }
    // A claim made with rs_dying, finished: a tombstone.
    void finish_dying(const void *freed_at) {
        bury(freed_at);
        head.store(head.load(std::memory_order_relaxed) | rs_dead, std::memory_order_release);
    }
    // Undo a claim made with rs_dying (a realloc that failed): live again, same generation, fields
    // unchanged.
    void revive() { head.store((head.load(std::memory_order_relaxed) & ~uint64_t{3}) | rs_live, std::memory_order_release); }

private:
    void copy(uint64_t w0, record_fields *out) const {
        const uint64_t w1 = w_site.get(), w2 = w_size.get(), w3 = tail.get();
        const uint32_t flags = uint32_t(w1 & rec::flag_mask);
        const size_t size = size_t(w2 >> rec::value_shift);
        out->base = rec::base_of(w0);
        out->size = size;
        out->site = reinterpret_cast<const void *>(uintptr_t(w1 >> rec::value_shift));
        out->seq = rec::seq_of(w0, w1, w2, w3);
        out->flags = flags;
        out->check = uint32_t(w3);
        const bool dead = rec::state_of(w0) == rs_dead;
        out->tid = dead ? 0 : uint32_t((w3 >> rec::tid_shift) & rec::tid_mask);
        out->usable = has_trailer(flags) ? trailered_usable(size) : (flags & HEAPINDEX_FLAG_CLIENT) ? size : size + uint32_t(w3);
        out->free_site = dead ? reinterpret_cast<const void *>(uintptr_t(w3 & rec::free_site_mask))
                         : (flags & HEAPINDEX_FLAG_CLIENT) ? reinterpret_cast<const void *>(uintptr_t(uint32_t(w3)))
                                                           : nullptr;
    }
};
static_assert(sizeof(record) == 32);
static_assert(offsetof(record, tail) == 16 && offsetof(record, w_size) == 24);
}  // namespace mallochooks::heapindex

#endif
