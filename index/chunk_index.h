// SPDX-License-Identifier: MIT
// chunk_index<G>: from any address to the live chunk that contains it, in constant time, lock-free.
//
// The address space (47 bits) is covered by a sparse three-level radix: a top table per GiB ("mid"),
// per 2 MiB region a "leaf", per 4 KiB page inside a leaf:
//   - a bitmap with one bit per granule of 2^G bytes: set where a live chunk starts;
//   - the record id of each granule's chunk (ids[page][granule]);
//   - a continuation: the record of a chunk that started in an earlier page of the same region and
//     covered this page's first byte.
// Coarser continuations serve chunks that started earlier: per region (in the mid) for a chunk that
// started in an earlier region of the same GiB, per mid for a chunk that started in an earlier GiB.  So
// inserting a chunk writes at most 511 + 511 + (GiBs it spans) continuation words, and a lookup is:
// highest start bit <= the address in its page (at most 4 bitmap words), else the page, region and mid
// continuations in turn.  Every candidate is checked against its record (live, and the address inside
// [base, base + requested size)), so gaps, trailers, padding and stale continuations are never
// attributed, and a lookup reads no chunk memory.  No level is ever moved or unmapped.
//
// Granules: two chunk starts must fall in different granules.  The heap index uses 32-byte granules
// (every heap chunk it indexes is at least 32 bytes long, so starts are at least 32 bytes apart); the
// client-block index uses 16-byte granules.  Per 4 KiB page with chunk starts the index costs 4 KiB /
// 2^G * 4 bytes of ids (512 bytes with G = 5) plus the bitmap and continuation.
//
// Writers own their chunk: insert is called after the allocator returned the chunk and remove before it
// is given back, so two writers never race on one granule's id (the start bits of one bitmap word are
// shared, hence atomic or/and).  Readers hold no lock and may see a start bit whose record is being
// freed or recycled: the record's seqlock (records.h) rejects those.
#ifndef MALLOCHOOKS_INDEX_CHUNK_INDEX_H
#define MALLOCHOOKS_INDEX_CHUNK_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include <atomic>

#include "index/records.h"

namespace mallochooks::heapindex {

enum class insert_result { ok, no_memory, unindexable };

template <unsigned G> class chunk_index {
public:
    static constexpr unsigned granule_shift = G;
    static constexpr unsigned page_shift = 12, region_shift = 21, mid_shift = 30;
    static constexpr unsigned granules_per_page = 1u << (page_shift - G);
    static constexpr unsigned words_per_page = granules_per_page / 64;
    static constexpr unsigned pages_per_region = 1u << (region_shift - page_shift);
    static constexpr unsigned regions_per_mid = 1u << (mid_shift - region_shift);
    static constexpr unsigned address_bits = 47;
    static constexpr unsigned mids = 1u << (address_bits - mid_shift);
    static constexpr uintptr_t address_limit = uintptr_t{1} << address_bits;

    // Flat arrays: the start word of an address is (a >> 6 + G) % words_per_region and its id slot
    // (a >> G) % granules_per_region, a shift and a mask each.
    static constexpr unsigned granules_per_region = granules_per_page * pages_per_region;
    static constexpr unsigned words_per_region = granules_per_region / 64;
    struct leaf {
        std::atomic<uint64_t> starts[words_per_region];
        std::atomic<uint32_t> page_cont[pages_per_region];
        std::atomic<uint32_t> ids[granules_per_region];
    };
    struct mid {
        std::atomic<leaf *> leaves[regions_per_mid];
        std::atomic<uint32_t> region_cont[regions_per_mid];
        std::atomic<uint32_t> mid_cont;
    };

    // Mark a chunk [base, base + size) whose record `id` is already published live.  `*was_marked`
    // (optional) receives the id that already had a start mark at base's granule, or 0: only possible
    // when a chunk was freed behind the index's back (an allocator's own free function).
    insert_result insert(uintptr_t base, size_t size, uint32_t id, uint32_t *was_marked = nullptr) {
        leaf *l = find_leaf(base);
        if (__builtin_expect(l == nullptr || size > address_limit - base, 0)) return insert_slow(base, size, id, was_marked);
        std::atomic<uint64_t> &word = l->starts[word_of(base)];
        std::atomic<uint32_t> &slot_id = l->ids[slot_of(base)];
        const uint64_t bit = bit_of(base);
        if (was_marked) *was_marked = (word.load(std::memory_order_relaxed) & bit) ? slot_id.load(std::memory_order_relaxed) : 0;
        // Continuations first, the start mark last: a chunk whose insert never finished (its thread
        // vanished in a fork) then has no start mark, and heapindex_check in the child does not see a
        // half-indexed chunk.
        if (__builtin_expect(size > 0 && ((base ^ (base + size - 1)) >> page_shift) != 0, 0) &&
            !spread(base, base + size - 1, id))
            return insert_result::no_memory;
        slot_id.store(id, std::memory_order_relaxed);
        word.fetch_or(bit, std::memory_order_release);  // result unused: a plain `lock or`
        return insert_result::ok;
    }

    // What the index holds at a base address's granule: for free, a set start bit with a live record of
    // this base is the chunk; a clear bit whose record is a dead record of this base is a tombstone
    // (double free).  The slot remembers where it is, so removing or re-marking costs no second walk.
    struct slot {
        uint32_t id;
        bool marked;
        std::atomic<uint64_t> *word;
        std::atomic<uint32_t> *slot_id;
        uint64_t bit;
        // Clear the start mark of a chunk being freed (its record already killed).  Continuations stay:
        // they are checked against records, so a stale one costs a lookup one extra record read.
        void remove() const { word->fetch_and(~bit, std::memory_order_release); }
        // Set it again (a realloc that failed).
        void mark() const {
            slot_id->store(id, std::memory_order_relaxed);
            word->fetch_or(bit, std::memory_order_release);
        }
    };
    slot at(uintptr_t base) const {
        leaf *l = find_leaf(base);
        if (__builtin_expect(l == nullptr, 0)) return {0, false, nullptr, nullptr, 0};
        std::atomic<uint64_t> *word = &l->starts[word_of(base)];
        std::atomic<uint32_t> *slot_id = &l->ids[slot_of(base)];
        const uint64_t bit = bit_of(base);
        return {slot_id->load(std::memory_order_relaxed), (word->load(std::memory_order_acquire) & bit) != 0, word,
                slot_id, bit};
    }

    // The live chunk containing addr: true and *out (and *id_out) filled, or false.
    bool lookup(uintptr_t addr, record_fields *out, uint32_t *id_out = nullptr) const {
        if (addr >= address_limit) return false;
        const mid *m = top_[addr >> mid_shift].load(std::memory_order_acquire);
        if (m == nullptr) return false;
        const uintptr_t page_start = addr & ~((uintptr_t{1} << page_shift) - 1);
        if (const leaf *l = m->leaves[region_of(addr)].load(std::memory_order_acquire)) {
            const unsigned p = page_of(addr);
            // The start of a small chunk is usually among the ids of addr's own cache line of ids: fetch
            // that line while the bitmap word is on its way (two misses at once instead of one after
            // the other).
            __builtin_prefetch(&l->ids[slot_of(addr)]);
            const std::atomic<uint64_t> *words = &l->starts[p * words_per_page];
            // In-page candidates, highest start first.  A live chunk that starts at or before addr and
            // does not contain it settles the question (chunks do not overlap); a start after addr in
            // addr's own granule, or a record in flux, sends us to the next lower start.
            int s = highest_start(words, int(granule_of(addr)));
            for (int tries = 0; s >= 0 && tries < 3; ++tries) {
                const uint32_t id = l->ids[p * granules_per_page + unsigned(s)].load(std::memory_order_acquire);
                const int v = check(id, addr, page_start + (uintptr_t(s) << G), out);
                if (v > 0) return found(id, id_out);
                if (v == 0) return false;
                s = s > 0 ? highest_start(words, s - 1) : -1;
            }
            // No start at or before addr in this page holds a live chunk: one that started earlier in
            // the region and covers the page's first byte.
            const uint32_t id = l->page_cont[p].load(std::memory_order_acquire);
            const int v = covers(id, addr, page_start, out);
            if (v > 0) return found(id, id_out);
            if (v == 0) return false;
        }
        const uintptr_t region_start = addr & ~((uintptr_t{1} << region_shift) - 1);
        uint32_t id = m->region_cont[region_of(addr)].load(std::memory_order_acquire);
        int v = covers(id, addr, region_start, out);
        if (v >= 0) return v > 0 && found(id, id_out);
        id = m->mid_cont.load(std::memory_order_acquire);
        v = covers(id, addr, addr & ~((uintptr_t{1} << mid_shift) - 1), out);
        return v > 0 && found(id, id_out);
    }

    // Calls f(granule address, id) for every start mark, in address order, until f returns false.
    template <class F> bool for_each_start(F &&f) const {
        for (unsigned t = 0; t < mids; ++t) {
            const mid *m = top_[t].load(std::memory_order_acquire);
            if (m == nullptr) continue;
            for (unsigned r = 0; r < regions_per_mid; ++r) {
                const leaf *l = m->leaves[r].load(std::memory_order_acquire);
                if (l == nullptr) continue;
                const uintptr_t region = (uintptr_t(t) << mid_shift) | (uintptr_t(r) << region_shift);
                for (unsigned w = 0; w < words_per_region; ++w) {
                    uint64_t bits = l->starts[w].load(std::memory_order_acquire);
                    while (bits != 0) {
                        const unsigned g = w * 64 + unsigned(__builtin_ctzll(bits));
                        bits &= bits - 1;
                        if (!f(region | (uintptr_t(g) << G), l->ids[g].load(std::memory_order_acquire))) return false;
                    }
                }
            }
        }
        return true;
    }

    size_t mapped_bytes() const { return mapped_.load(std::memory_order_relaxed); }

    // For an inlined insert on the allocation fast path (heapindex_layer.h): the leaf of base's region if
    // it exists, and where base's start bit and id live in it.  The caller handles only the plain case
    // (leaf present, start bit clear, chunk within one page) and calls insert() for everything else.
    leaf *find_leaf(uintptr_t base) const {
        if (__builtin_expect(base >= address_limit, 0)) return nullptr;
        const mid *m = top_[base >> mid_shift].load(std::memory_order_acquire);
        return m ? m->leaves[region_of(base)].load(std::memory_order_acquire) : nullptr;
    }
    static unsigned word_of(uintptr_t a) { return unsigned(a >> (G + 6)) & (words_per_region - 1); }
    static unsigned slot_of(uintptr_t a) { return unsigned(a >> G) & (granules_per_region - 1); }
    static uint64_t bit_of(uintptr_t a) { return uint64_t{1} << ((a >> G) & 63); }
    static bool within_one_page(uintptr_t base, size_t size) {
        return (base & ((uintptr_t{1} << page_shift) - 1)) + size <= (uintptr_t{1} << page_shift);
    }

private:
    static unsigned page_of(uintptr_t a) { return unsigned(a >> page_shift) & (pages_per_region - 1); }
    static unsigned granule_of(uintptr_t a) { return unsigned(a >> G) & (granules_per_page - 1); }
    static unsigned region_of(uintptr_t a) { return unsigned(a >> region_shift) & (regions_per_mid - 1); }

    static bool found(uint32_t id, uint32_t *id_out) {
        if (id_out) *id_out = id;
        return true;
    }

    // Highest set bit <= g in a page's bitmap, or -1.
    static int highest_start(const std::atomic<uint64_t> *words, int g) {
        for (int w = g >> 6; w >= 0; --w) {
            uint64_t bits = words[w].load(std::memory_order_acquire);
            if (w == (g >> 6)) bits &= ~uint64_t{0} >> (63 - (g & 63));
            if (bits != 0) return w * 64 + 63 - __builtin_clzll(bits);
        }
        return -1;
    }

    // An in-page candidate at granule address `start`: 1 contains addr, 0 settles "nothing contains
    // addr", -1 look further.
    static int check(uint32_t id, uintptr_t addr, uintptr_t start, record_fields *out) {
        if (id == 0 || !records().get(id)->read_live(out)) return -1;
        if ((out->base >> G) != (start >> G)) return -1;  // a recycled record: the mark is stale
        if (out->base > addr) return -1;                  // starts after addr in addr's own granule
        return addr - out->base < out->size ? 1 : 0;
    }

    // A continuation candidate: it counts only if it covers `level_start` (which addr's true chunk, if
    // it started before level_start, must also cover): 1 contains addr, 0 nothing does, -1 stale.
    static int covers(uint32_t id, uintptr_t addr, uintptr_t level_start, record_fields *out) {
        if (id == 0 || !records().get(id)->read_live(out)) return -1;
        if (out->base >= level_start || level_start - out->base >= out->size) return -1;
        return addr - out->base < out->size ? 1 : 0;
    }

    mid *mid_for(uintptr_t a, bool create) { return installed(top_[a >> mid_shift], create, mapped_); }
    leaf *leaf_for(mid *m, uintptr_t a, bool create) { return installed(m->leaves[region_of(a)], create, mapped_); }

    // The first chunk in a GiB or region: make the levels, then insert.
    __attribute__((noinline)) insert_result insert_slow(uintptr_t base, size_t size, uint32_t id, uint32_t *was_marked) {
        if (base >= address_limit || size > address_limit - base) return insert_result::unindexable;
        mid *m = mid_for(base, true);
        if (m == nullptr || leaf_for(m, base, true) == nullptr) return insert_result::no_memory;
        return insert(base, size, id, was_marked);
    }

    // Continuations for the pages, regions and GiBs after the start page that [base, last] covers.
    __attribute__((noinline)) bool spread(uintptr_t base, uintptr_t last, uint32_t id) {
        mid *m = top_[base >> mid_shift].load(std::memory_order_acquire);
        leaf *l = m->leaves[region_of(base)].load(std::memory_order_acquire);
        const uintptr_t last_page_here = (base | ((uintptr_t{1} << region_shift) - 1)) >> page_shift;
        const uintptr_t end_page = (last >> page_shift) < last_page_here ? (last >> page_shift) : last_page_here;
        for (uintptr_t pg = (base >> page_shift) + 1; pg <= end_page; ++pg)
            l->page_cont[pg & (pages_per_region - 1)].store(id, std::memory_order_release);
        if ((last >> region_shift) == (base >> region_shift)) return true;
        const uintptr_t last_region_here = (base | ((uintptr_t{1} << mid_shift) - 1)) >> region_shift;
        const uintptr_t end_region = (last >> region_shift) < last_region_here ? (last >> region_shift) : last_region_here;
        for (uintptr_t r = (base >> region_shift) + 1; r <= end_region; ++r)
            m->region_cont[r & (regions_per_mid - 1)].store(id, std::memory_order_release);
        for (uintptr_t t = (base >> mid_shift) + 1; t <= (last >> mid_shift); ++t) {
            mid *later = mid_for(t << mid_shift, true);
            if (later == nullptr) return false;
            later->mid_cont.store(id, std::memory_order_release);
        }
        return true;
    }

    std::atomic<mid *> top_[mids] = {};
    std::atomic<size_t> mapped_{0};
};

}  // namespace mallochooks::heapindex

#endif
