// SPDX-License-Identifier: MIT
// chunk_index<G>: from any address to the live chunk that contains it, in constant time, lock-free.
//
// The address space (47 bits) is cut into 2 MiB regions.  A *directory* has, per region, the region's
// *leaf* (if any chunk ever started there) and a region continuation; per 4 KiB page, a leaf holds:
//   - a bitmap with one bit per granule of 2^G bytes: set where a live chunk starts;
//   - the record id of each granule's chunk (ids[page][granule]);
//   - a continuation: the record of a chunk that started in an earlier page of the same region and
//     covered this page's first byte.
// The region continuation serves chunks that started in an earlier region.  So inserting a chunk writes
// at most 511 page continuations plus one per later 2 MiB region it covers, and a lookup is: highest
// start bit <= the address in its page (at most 4 bitmap words), else the page and region continuations.
// Every candidate is checked against its record (live, and the address inside [base, base + requested
// size)), so gaps, trailers, padding and stale continuations are never attributed, and a lookup reads
// no chunk memory.  Nothing is ever moved or unmapped.
//
// The directory is two levels, so that its address space follows use (a flat one over 2^26 regions took
// 768 MiB of address space, which a process under `ulimit -v` cannot spare): a top table in the
// library's data (4096 entries, one per 32 GiB of address space) names *blocks* of 16384 regions'
// entries (192 KiB each), mapped when the first chunk starts in their 32 GiB.  A top entry holds its
// block's address less the block's first region's offset, so a region's leaf is one load of the top
// entry and one of the leaf (the flat directory's one load and its base's, the same dependent depth);
// an entry whose block does not exist points, the same way, at one read-only zero block: no null test.
// Before the first insert, `limit_` (0) turns every lookup away; after, it is also the bounds test
// (addresses at or above 2^47).
//
// Granules: two chunk starts must fall in different granules.  The heap index uses 32-byte granules
// (every heap chunk it indexes is at least 32 bytes long, so starts are at least 32 bytes apart); the
// client-block index uses 16-byte granules.  Per 4 KiB page with chunk starts the index costs 4 KiB /
// 2^G * 4 bytes of ids (512 bytes with G = 5) plus the bitmap and continuation.
//
// Writers own their chunk: insert is called after the allocator returned the chunk and remove before it
// is given back, so two writers never race on one granule's id (the start bits of one bitmap word are
// shared, hence atomic or/and).  Readers hold no lock and may see a start bit whose record is being
// freed or recycled: the record's seqlock (record.h) rejects those.
#ifndef MALLOCHOOKS_INDEX_CHUNK_INDEX_H
#define MALLOCHOOKS_INDEX_CHUNK_INDEX_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>

#include <atomic>

#include "index/index_memory.h"
#include "index/record_pool.h"

namespace mallochooks::heapindex {

enum class insert_result { ok, no_memory, unindexable };

template <unsigned G> class chunk_index {
    friend struct root_builder;  // layout.cc describes the fields for readers outside the process

public:
    static constexpr unsigned granule_shift = G;
    static constexpr unsigned page_shift = 12, region_shift = 21;
    static constexpr unsigned granules_per_page = 1u << (page_shift - G);
    static constexpr unsigned words_per_page = granules_per_page / 64;
    static constexpr unsigned pages_per_region = 1u << (region_shift - page_shift);
    static constexpr unsigned address_bits = 47;
    static constexpr unsigned regions = 1u << (address_bits - region_shift);
    static constexpr uintptr_t address_limit = uintptr_t{1} << address_bits;
    // The first chunk of a region decides its leaf's memory (leaf_for): dense below this size.
    static constexpr size_t dense_limit = size_t{128} << 10;

    // Flat arrays: the start word of an address is (a >> 6 + G) % words_per_region and its id slot
    // (a >> G) % granules_per_region, a shift and a mask each.
    static constexpr unsigned granules_per_region = granules_per_page * pages_per_region;
    static constexpr unsigned words_per_region = granules_per_region / 64;
    struct leaf {
        std::atomic<uint32_t> ids[granules_per_region];  // first: free reads an id with no offset to add
        std::atomic<uint64_t> starts[words_per_region];
        std::atomic<uint32_t> page_cont[pages_per_region];
    };
    static constexpr unsigned block_shift = 14;  // regions per directory block: 16384 (32 GiB)
    static constexpr unsigned regions_per_block = 1u << block_shift;
    static constexpr unsigned blocks = regions >> block_shift;
    struct directory_block {
        std::atomic<leaf *> leaves[regions_per_block];
        std::atomic<uint32_t> region_cont[regions_per_block];
    };

    // Mark a chunk [base, base + size) whose record `id` is already published live.  `*was_marked`
    // (optional) receives the id that already had a start mark at base's granule, or 0: only possible
    // when a chunk was freed behind the index's back (an allocator's own free function).
    insert_result insert(uintptr_t base, size_t size, uint32_t id, uint32_t *was_marked = nullptr) {
        leaf *l = find_leaf(base);
        if (__builtin_expect(l == nullptr || size > address_limit - base, 0)) return insert_slow(base, size, id, was_marked);
        const unsigned g = slot_of(base);
        // Continuations first, the start mark last: a chunk whose insert never finished (its thread
        // vanished in a fork) then has no start mark, and heapindex_check in the child does not see a
        // half-indexed chunk.
        if (__builtin_expect(size > 0 && ((base ^ (base + size - 1)) >> page_shift) != 0, 0) &&
            !spread(base, base + size - 1, id))
            return insert_result::no_memory;
        const uint32_t old = l->ids[g].load(std::memory_order_relaxed);
        l->ids[g].store(id, std::memory_order_relaxed);
        const bool stale = set_start(l, g);
        if (was_marked) *was_marked = stale ? old : 0;
        return insert_result::ok;
    }

    // What the index holds at a base address's granule: the id last recorded there (0: none), which may
    // be stale (a freed chunk's tombstone, or a record since reused elsewhere): the record decides, with
    // its base and state.  The slot remembers where it is, so removing or re-marking costs no second walk.
    struct slot {
        leaf *l;  // nullptr: no leaf, nothing ever started in this region
        unsigned index;
        uint32_t id;
        // Is the start bit set?  (free does not ask: killing the record decides.)
        bool marked() const { return l != nullptr && has_start(l, index); }
        // Clear the start mark of a chunk being freed (its record already killed).  Continuations stay:
        // they are checked against records, so a stale one costs a lookup one extra record read.
        void remove() const { clear_start(l, index); }
        // Set it again (a realloc that failed).
        void mark() const {
            l->ids[index].store(id, std::memory_order_relaxed);
            set_start(l, index);
        }
    };
    __attribute__((always_inline)) slot at(uintptr_t base) const {
        leaf *l = find_leaf(base);
        if (__builtin_expect(l == nullptr, 0)) return {nullptr, 0, 0};
        const unsigned g = slot_of(base);
        return {l, g, l->ids[g].load(std::memory_order_relaxed)};
    }

    // The live chunk containing addr: true and *out (and *id_out) filled, or false.
    //
    // The common case first, inline (the API's heapindex_lookup is this plus one call): the highest start
    // bit at or before addr in addr's own bitmap word (64 granules, 2 KiB of heap), its id, its record.
    // While the bitmap word loads, addr's own line of ids is fetched, where a small chunk's start usually
    // is: two misses at once instead of one after the other, then the record.  Any other case (no start
    // in the word, a record in flux or stale, a chunk starting after addr in addr's own granule) takes the
    // general path, which walks the page's words and the continuations.
    [[gnu::always_inline]] inline bool lookup(uintptr_t addr, record_fields *out, uint32_t *id_out = nullptr) const {
        uintptr_t top;
        const leaf *l;
        const int v = lookup_common(addr, out, id_out, &top, &l);
        return v >= 0 ? v > 0 : lookup_general(addr, top, l, out, id_out);
    }

    // The common case alone: 1 found (*out, *id_out), 0 nothing contains addr, -1 undecided: then
    // lookup_general(addr, *top, *l, ...) decides.  For a caller that keeps *out out of memory (the API's
    // heapindex_lookup: its copy of the record then goes from registers to the caller's answer).
    [[gnu::always_inline]] inline int lookup_common(uintptr_t addr, record_fields *out, uint32_t *id_out, uintptr_t *top_out,
                                                    const leaf **l_out) const {
        const uintptr_t r = addr >> region_shift;
        *l_out = nullptr;
        *top_out = 0;
        if (__builtin_expect((r >> block_shift) >= limit_.load(std::memory_order_acquire), 0)) return 0;
        // In the hot block (that of the first block made: usually the whole heap), its top entry comes
        // from a field loaded alongside the address's shifts, not from the top table: one dependent load
        // fewer on the way to the leaf.
        uintptr_t top;
        if (__builtin_expect((r >> block_shift) == hot_t_.load(std::memory_order_acquire), 1))
            top = hot_top_.load(std::memory_order_relaxed);
        else
            top = top_[r >> block_shift].load(std::memory_order_acquire);
        *top_out = top;
        const leaf *l = leaf_entry(top, r).load(std::memory_order_acquire);
        *l_out = l;
        if (__builtin_expect(l == nullptr, 0)) return -1;
        const unsigned g = slot_of(addr);
        __builtin_prefetch(&l->ids[g]);
        const uint64_t bits = l->starts[g / 64].load(std::memory_order_acquire) & (~uint64_t{0} >> (63 - g % 64));
        if (__builtin_expect(bits != 0, 1)) {
            const unsigned s = (g & ~63u) + 63 - unsigned(__builtin_clzll(bits));
            // While addr's line of ids is still on its way (the first miss once the index outgrows the
            // caches), guess the start's record and fetch it: the chunk covering the page's first byte
            // (its page continuation, in a small hot array) plus the starts in the page up to s.  When
            // chunks got their ids in address order (a heap built up by one thread, which hands out
            // fresh ids in order) the guess is the record, and its miss overlaps the ids' instead of
            // following it; otherwise it is one line fetched for nothing.  A prefetch never faults, and
            // the id read below decides: the guess changes no answer.
            {
                unsigned rank;
                if constexpr (words_per_page == 2) {
                    // The page's other word counts when addr is in its second: a mask, not a branch (which
                    // would be mispredicted half the time).
                    const uint64_t before = l->starts[g / 64 & ~1u].load(std::memory_order_relaxed) & (uint64_t{0} - (g / 64 & 1));
                    rank = popcount64_sum(bits, before);
                } else {
                    rank = popcount64_sum(bits, 0);
                    for (unsigned w = g / 64 & ~(words_per_page - 1); w < g / 64; ++w)
                        rank += popcount64_sum(l->starts[w].load(std::memory_order_relaxed), 0);
                }
                __builtin_prefetch(records().get(l->page_cont[g >> (page_shift - G)].load(std::memory_order_relaxed) + rank));
            }
            const uint32_t id = l->ids[s].load(std::memory_order_acquire);
            const int v = check(id, addr, (addr & ~((uintptr_t{1} << region_shift) - 1)) | (uintptr_t(s) << G), out);
            if (v > 0) return found(id, id_out);
            if (v == 0) return 0;
        }
        return -1;
    }

    // The exact path: the start bitmap, then the page and region continuations.  `l` is addr's leaf
    // (nullptr: none), `top` its top entry.
    __attribute__((noinline)) bool lookup_general(uintptr_t addr, uintptr_t top, const leaf *l, record_fields *out,
                                                  uint32_t *id_out) const {
        const uintptr_t r = addr >> region_shift;
        const uintptr_t page_start = addr & ~((uintptr_t{1} << page_shift) - 1);
        if (l != nullptr) {
            const unsigned p = page_of(addr);
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
        // ... or one that started in an earlier region and covers this region's first byte.
        const uint32_t id = block_of(top, r >> block_shift)->region_cont[r & (regions_per_block - 1)].load(std::memory_order_acquire);
        return covers(id, addr, addr & ~((uintptr_t{1} << region_shift) - 1), out) > 0 && found(id, id_out);
    }

    // Calls f(granule address, id) for every start mark, in address order, until f returns false.  Only
    // blocks that exist can name a leaf.
    template <class F> bool for_each_start(F &&f) const {
        const uintptr_t tops = limit_.load(std::memory_order_acquire);
        const directory_block *zero = zero_.load(std::memory_order_acquire);
        for (uintptr_t t = 0; t < tops; ++t) {
            const directory_block *blk = block_of(top_[t].load(std::memory_order_acquire), t);
            if (blk == zero) continue;
            for (unsigned i = 0; i < regions_per_block; ++i) {
                const leaf *l = blk->leaves[i].load(std::memory_order_acquire);
                if (l == nullptr) continue;
                const uintptr_t region = ((t << block_shift) | i) << region_shift;
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

    // The same for the start marks of [lo, hi) only (lo < hi <= address_limit): one directory load per
    // 2 MiB region, the bitmap words of the range where there is a leaf.
    template <class F> bool for_each_start_in(uintptr_t lo, uintptr_t hi, F &&f) const {
        if (lo >= hi) return true;
        const uintptr_t last_region = (hi - 1) >> region_shift;
        const uintptr_t limit = limit_.load(std::memory_order_acquire);  // in directory blocks; 0 before set-up
        for (uintptr_t r = lo >> region_shift; r <= last_region && (r >> block_shift) < limit; ++r) {
            const leaf *l = leaf_entry(top_[r >> block_shift].load(std::memory_order_acquire), r).load(std::memory_order_acquire);
            if (l == nullptr) continue;
            const uintptr_t region = r << region_shift;
            const unsigned first = region < lo ? slot_of(lo) : 0;
            const unsigned end = r < last_region ? granules_per_region : slot_of(hi - 1) + 1;
            for (unsigned w = first / 64; w * 64 < end; ++w) {
                uint64_t bits = l->starts[w].load(std::memory_order_acquire);
                if (w == first / 64) bits &= ~uint64_t{0} << (first % 64);
                if ((w + 1) * 64 > end) bits &= ~uint64_t{0} >> (64 - end % 64);
                while (bits != 0) {
                    const unsigned g = w * 64 + unsigned(__builtin_ctzll(bits));
                    bits &= bits - 1;
                    if (!f(region | (uintptr_t(g) << G), l->ids[g].load(std::memory_order_acquire))) return false;
                }
            }
        }
        return true;
    }

    size_t mapped_bytes() const { return mapped_.load(std::memory_order_relaxed); }

    // For an inlined insert on the allocation fast path (heapindex_layer.h): the leaf of base's region if
    // it exists (nullptr also for addresses the index does not cover, and before the first insert).
    // In the hot block (lookup_common), the region's offset from the block's first region is its entry's
    // index, and one unsigned compare of it is the whole test (an address below the block wraps to a huge
    // offset; before there is a hot block, the first region is 2^63 and every offset is huge): 7
    // instructions to the leaf where the block's number, compared, then its top entry took 9 (issue 13,
    // third pass: 2 fewer on malloc's and on free's fast path).
    leaf *find_leaf(uintptr_t base) const {
        uintptr_t d = base >> region_shift;
#if defined(__x86_64__)
        // The subtraction from memory (gcc loads an atomic into a register first): one instruction fewer.
        // An acquire load as x86-64 has it (a plain mov); volatile, so the compiler keeps it before the
        // block's load below, as the acquire would.
        __asm__ __volatile__("subq %1, %0" : "+r"(d) : "m"(hot_first_));
#else
        d -= hot_first_.load(std::memory_order_acquire);
#endif
        if (__builtin_expect(d < regions_per_block, 1)) return hot_block_.load(std::memory_order_relaxed)->leaves[d].load(std::memory_order_acquire);
        // Elsewhere, from an opaque copy of base: with the region number kept from above, the fast paths
        // spend a register (and a move) on it.
        uintptr_t b = base;
        __asm__("" : "+r"(b));
        const uintptr_t t = b >> (region_shift + block_shift);
        if (__builtin_expect(t >= limit_.load(std::memory_order_acquire), 0)) return nullptr;
        return leaf_entry(top_[t].load(std::memory_order_acquire), b >> region_shift).load(std::memory_order_acquire);
    }
    static unsigned slot_of(uintptr_t a) { return unsigned(a >> G) & (granules_per_region - 1); }

    // The start bits, addressed by slot (granule within the region).  set_start and clear_start are the
    // index's publication points (release: a reader that sees the bit sees the id and record before it);
    // set_start says whether the bit was already set (a chunk freed behind the index's back).
    static bool has_start(const leaf *l, unsigned g) {
        return (l->starts[g / 64].load(std::memory_order_acquire) >> (g % 64)) & 1;
    }
#if defined(__x86_64__)
    // One instruction each: `lock bts/btr` with the slot as a bit offset from the bitmap's start picks the
    // word and the bit itself (fetch_or/fetch_and would compute both first, and test the old value after).
    static bool set_start(leaf *l, unsigned g) {
        bool was;
        __asm__ __volatile__("lock btsq %q2, %0" : "+m"(l->starts), "=@ccc"(was) : "r"(uint64_t{g}) : "memory");
        return was;
    }
    static void clear_start(leaf *l, unsigned g) {
        __asm__ __volatile__("lock btrq %q1, %0" : "+m"(l->starts) : "r"(uint64_t{g}) : "memory");
    }
    // The id at slot g replaced by id, the old one returned (a relaxed load and store, by the slot's
    // writer: the chunk's owner): both addressed from the leaf and the slot (gcc made the slot's address
    // first, for the atomics: one instruction more on malloc's fast path).
    static uint32_t replace_id(leaf *l, unsigned g, uint32_t id) {
        uint32_t old;
        __asm__ __volatile__("movl %1, %0\n\tmovl %2, %1" : "=&r"(old), "+m"(l->ids[g]) : "r"(id));
        return old;
    }
#else
    static uint32_t replace_id(leaf *l, unsigned g, uint32_t id) {
        const uint32_t old = l->ids[g].load(std::memory_order_relaxed);
        l->ids[g].store(id, std::memory_order_relaxed);
        return old;
    }
    static bool set_start(leaf *l, unsigned g) {
        const uint64_t bit = uint64_t{1} << (g % 64);
        return (l->starts[g / 64].fetch_or(bit, std::memory_order_release) & bit) != 0;
    }
    static void clear_start(leaf *l, unsigned g) {
        l->starts[g / 64].fetch_and(~(uint64_t{1} << (g % 64)), std::memory_order_release);
    }
#endif
    // The bits in which a chunk's first and last byte differ: `& crosses_page` is non-zero when it leaves
    // its first page, `& crosses_region` when it leaves its region (each a single `test` with a
    // sign-extended immediate).
    static uintptr_t ends_differ(uintptr_t base, size_t size) { return base ^ (base + size - 1); }
    static constexpr uintptr_t crosses_page = ~((uintptr_t{1} << page_shift) - 1);
    static constexpr uintptr_t crosses_region = ~((uintptr_t{1} << region_shift) - 1);
    // The page continuations of a chunk [base, last] in one region (none when it fits in its first page).
    static void continue_pages(leaf *l, uintptr_t base, uintptr_t last, uint32_t id) {
        for (uintptr_t pg = (base >> page_shift) + 1; pg <= (last >> page_shift); ++pg)
            l->page_cont[pg & (pages_per_region - 1)].store(id, std::memory_order_release);
    }
    // The same for a chunk known to leave its first page (no test before the first store).
    static void continue_pages_after_first(leaf *l, uintptr_t base, uintptr_t last, uint32_t id) {
        uintptr_t pg = (base >> page_shift) + 1;
        do l->page_cont[pg & (pages_per_region - 1)].store(id, std::memory_order_release);
        while (++pg <= (last >> page_shift));
    }

private:
    static unsigned page_of(uintptr_t a) { return unsigned(a >> page_shift) & (pages_per_region - 1); }
    static unsigned granule_of(uintptr_t a) { return unsigned(a >> G) & (granules_per_page - 1); }

    // Set bits of a and b together, without the popcnt instruction (not in the x86-64 baseline the
    // library is built for): the two words' byte counts (at most 8 each) are added before one multiply.
    static unsigned popcount64_sum(uint64_t a, uint64_t b) {
        a -= (a >> 1) & 0x5555555555555555ull;
        b -= (b >> 1) & 0x5555555555555555ull;
        a = (a & 0x3333333333333333ull) + ((a >> 2) & 0x3333333333333333ull);
        b = (b & 0x3333333333333333ull) + ((b >> 2) & 0x3333333333333333ull);
        const uint64_t bytes = ((a + (a >> 4)) & 0x0f0f0f0f0f0f0f0full) + ((b + (b >> 4)) & 0x0f0f0f0f0f0f0f0full);
        return unsigned((bytes * 0x0101010101010101ull) >> 56);
    }
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

    // A top entry (`top`, for block t) as the leaf entry of region r, and as its block.
    static const std::atomic<leaf *> &leaf_entry(uintptr_t top, uintptr_t r) {
        return *reinterpret_cast<const std::atomic<leaf *> *>(top + r * sizeof(std::atomic<leaf *>));
    }
    static directory_block *block_of(uintptr_t top, uintptr_t t) {
        return reinterpret_cast<directory_block *>(top + (t << block_shift) * sizeof(std::atomic<leaf *>));
    }
    static uintptr_t top_entry(const directory_block *b, uintptr_t t) {
        return reinterpret_cast<uintptr_t>(b) - (t << block_shift) * sizeof(std::atomic<leaf *>);
    }

    // The top table, set up at the first insert: the zero block mapped read-only, every entry pointed at
    // it, then `limit_` published.  Threads that race here do the same work and agree (the first zero
    // block installed wins, each entry is set once by CAS): none waits.
    bool set_up() {
        if (limit_.load(std::memory_order_acquire) != 0) return true;
        directory_block *zero = zero_.load(std::memory_order_acquire);
        if (zero == nullptr) {
            const int saved = errno;
            void *m = index_memory_fits(sizeof(directory_block))
                          ? mmap(nullptr, sizeof(directory_block), PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
                          : MAP_FAILED;
            errno = saved;
            if (m == MAP_FAILED) return false;
            if (zero_.compare_exchange_strong(zero, static_cast<directory_block *>(m), std::memory_order_acq_rel)) {
                zero = static_cast<directory_block *>(m);
                madvise(m, sizeof(directory_block), MADV_DONTDUMP);  // zeros: nothing for a core file
                mapped_.fetch_add(sizeof(directory_block), std::memory_order_relaxed);
            } else {
                munmap(m, sizeof(directory_block));  // another thread was first
                errno = saved;
            }
        }
        for (uintptr_t t = 0; t < blocks; ++t) {
            uintptr_t none = 0;
            top_[t].compare_exchange_strong(none, top_entry(zero, t), std::memory_order_acq_rel);
        }
        limit_.store(blocks, std::memory_order_release);
        return true;
    }

    // Block t, made if it does not exist (and `create`), or nullptr.
    directory_block *block(uintptr_t t, bool create) {
        if (!set_up()) return nullptr;
        const directory_block *zero = zero_.load(std::memory_order_acquire);
        uintptr_t top = top_[t].load(std::memory_order_acquire);
        if (block_of(top, t) != zero) return block_of(top, t);
        if (!create) return nullptr;
        void *m = map_index_memory(sizeof(directory_block), mapped_);
        if (m == nullptr) return nullptr;
        if (top_[t].compare_exchange_strong(top, top_entry(static_cast<directory_block *>(m), t), std::memory_order_acq_rel)) {
            // The first block made is the hot one (lookup_common): its entry, then its number, once.
            if (!hot_claimed_.load(std::memory_order_relaxed) && !hot_claimed_.exchange(true, std::memory_order_acq_rel)) {
                hot_top_.store(top_entry(static_cast<directory_block *>(m), t), std::memory_order_relaxed);
                hot_t_.store(t, std::memory_order_release);
                hot_block_.store(static_cast<directory_block *>(m), std::memory_order_relaxed);
                hot_first_.store(t << block_shift, std::memory_order_release);
            }
            return static_cast<directory_block *>(m);
        }
        unmap_index_memory(m, sizeof(directory_block), mapped_);  // another thread made it first
        return block_of(top, t);
    }

    // The leaf of a's region, made if there is none.  A region whose first chunk is small is a heap
    // region that fills up: its leaf comes from shared huge pages (a lookup then costs no TLB miss for
    // it: 190 -> 60 ns median at 1e5 live chunks, bench/lookup).  A region whose first chunk is large
    // (>= dense_limit: an mmap'd chunk, alone in its region) gets a leaf of its own on small pages, of
    // which it touches a few: a huge page there would cost memory for nothing.
    leaf *leaf_for(uintptr_t a, size_t size) {
        directory_block *blk = block(a >> (region_shift + block_shift), true);
        if (blk == nullptr) return nullptr;
        std::atomic<leaf *> &entry = blk->leaves[(a >> region_shift) & (regions_per_block - 1)];
        return installed(entry, true, mapped_, size >= dense_limit ? index_memory::own_pages : index_memory::dense);
    }

    // The first chunk in a region: make its leaf (and the directory), then insert.
    __attribute__((noinline)) insert_result insert_slow(uintptr_t base, size_t size, uint32_t id, uint32_t *was_marked) {
        if (base >= address_limit || size > address_limit - base) return insert_result::unindexable;
        if (leaf_for(base, size) == nullptr) return insert_result::no_memory;
        return insert(base, size, id, was_marked);
    }

    // Continuations for the pages and regions after the start page that [base, last] covers.
    __attribute__((noinline)) bool spread(uintptr_t base, uintptr_t last, uint32_t id) {
        const uintptr_t last_here = base | ((uintptr_t{1} << region_shift) - 1);
        continue_pages(find_leaf(base), base, last < last_here ? last : last_here, id);
        for (uintptr_t r = (base >> region_shift) + 1; r <= (last >> region_shift); ++r) {
            directory_block *blk = block(r >> block_shift, true);
            if (blk == nullptr) return false;
            blk->region_cont[r & (regions_per_block - 1)].store(id, std::memory_order_release);
        }
        return true;
    }

    std::atomic<uintptr_t> top_[blocks] = {};  // per block: its address less its first region's offset
    std::atomic<uintptr_t> limit_{0};          // top entries usable: 0 until set up, then `blocks`
    std::atomic<directory_block *> zero_{nullptr};
    std::atomic<size_t> mapped_{0};
    // The hot block: the first one made, its number and top entry, set once (blocks are never unmapped).
    std::atomic<uintptr_t> hot_t_{~uintptr_t{0}};
    std::atomic<uintptr_t> hot_top_{0};
    std::atomic<bool> hot_claimed_{false};
    // The same block for find_leaf: its first region (2^63 until it exists: no region is that far above
    // it) and its address.
    std::atomic<uintptr_t> hot_first_{uintptr_t{1} << 63};
    std::atomic<directory_block *> hot_block_{nullptr};
};

}  // namespace mallochooks::heapindex

#endif
