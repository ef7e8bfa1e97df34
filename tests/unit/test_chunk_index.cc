// SPDX-License-Identifier: MIT
// The heap index's structure (index/chunk_index.h) and record pool (index/record_pool.h), in-process and
// without any hooks.  The index never reads chunk memory, so the chunks here are plain address ranges,
// anywhere in the 47-bit space: chunks spanning pages, 2 MiB regions and GiBs cost nothing to make up.
#include <stdint.h>
#include <string.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <map>
#include <random>
#include <thread>
#include <vector>

#include "index/chunk_index.h"
#include "index/counters.h"
#include "index/index_memory.h"
#include "index/record_pool.h"
#include "index/thread_state.h"
#include "index/trailer.h"

using namespace mallochooks::heapindex;

namespace {

using heap_index = chunk_index<5>;

// A test's own index (32 KiB of top table each: static, zero pages until touched).
heap_index &fresh_index() {
    static heap_index indexes[16];
    static unsigned next = 0;
    REQUIRE(next < 16);
    return indexes[next++];
}

// Index [base, base + size) as a live chunk, as the layer does; returns its record id.  An untrailered
// (early) chunk, whose record keeps any usable size (a trailered one's is its trailer's offset).
uint32_t add(heap_index &index, uintptr_t base, size_t size, const void *site = nullptr, size_t usable = 0) {
    const owned_thread_state owned;
    thread_state *t = owned.get();
    const uint32_t id = records().take(t);
    REQUIRE(id != 0);
    records().get(id)->publish({base, size, usable ? usable : size, site, records().next_seq(t), nullptr, 7, HEAPINDEX_FLAG_EARLY});
    REQUIRE(index.insert(base, size, id) == insert_result::ok);
    return id;
}

// Free it, as the layer does: kill the record, clear the mark, give the record back.
void drop(heap_index &index, uintptr_t base) {
    const heap_index::slot s = index.at(base);
    REQUIRE(s.marked());
    REQUIRE(records().get(s.id)->kill(base, reinterpret_cast<const void *>(0xf4ee)));
    s.remove();
    const owned_thread_state t;
    records().give(t.get(), s.id);
}

// The base of the chunk containing addr, or 0.
uintptr_t owner(const heap_index &index, uintptr_t addr) {
    record_fields f;
    return index.lookup(addr, &f) ? f.base : 0;
}

constexpr uintptr_t GiB = uintptr_t{1} << 30, MiB = uintptr_t{1} << 20;

}  // namespace

TEST_CASE("a chunk is found from every interior address, and from nowhere else") {
    heap_index &index = fresh_index();
    const uintptr_t base = 0x100000000040;  // 64 bytes into a page
    add(index, base, 100, nullptr, 136);
    for (uintptr_t a = base; a < base + 100; ++a) REQUIRE(owner(index, a) == base);
    CHECK(owner(index, base - 1) == 0);
    CHECK(owner(index, base + 100) == 0);  // padding and trailer: not inside
    CHECK(owner(index, base + 135) == 0);
    CHECK(owner(index, base - 4096) == 0);
    record_fields f;
    uint32_t id = 0;
    REQUIRE(index.lookup(base + 50, &f, &id));
    CHECK(f.size == 100);
    CHECK(f.usable == 136);
    CHECK(f.tid == 7);
    CHECK(id == index.at(base).id);
}

TEST_CASE("neighbours are never confused, and gaps belong to nobody") {
    heap_index &index = fresh_index();
    // Chunks of varied sizes, 32-byte aligned starts, each followed by a gap of 0 to 64 bytes.
    std::mt19937_64 rng(42);
    std::vector<std::pair<uintptr_t, size_t>> chunks;
    uintptr_t a = 0x200000000000;
    for (int i = 0; i < 3000; ++i) {
        const size_t size = 32 + rng() % (i % 50 == 0 ? 20000 : 300);
        chunks.push_back({a, size});
        add(index, a, size);
        a = (a + size + (rng() % 3) * 32 + 31) & ~uintptr_t{31};
    }
    for (size_t i = 0; i < chunks.size(); ++i) {
        const auto [base, size] = chunks[i];
        CHECK(owner(index, base) == base);
        CHECK(owner(index, base + size - 1) == base);
        CHECK(owner(index, base + size / 2) == base);
        const uintptr_t next = i + 1 < chunks.size() ? chunks[i + 1].first : base + size + 1;
        if (next > base + size) CHECK(owner(index, base + size) == 0);  // the gap
    }
}

TEST_CASE("zero-sized chunks contain nothing but are found by base") {
    heap_index &index = fresh_index();
    const uintptr_t base = 0x300000001000;
    add(index, base, 0, nullptr, 24);
    CHECK(owner(index, base) == 0);
    CHECK(index.at(base).marked());
}

TEST_CASE("chunks spanning pages, 2 MiB regions and GiBs are found from every page") {
    heap_index &index = fresh_index();
    struct span { uintptr_t base; size_t size; };
    const span spans[] = {
        {0x400000000ff0, 5000},                  // two pages
        {0x4000001ff000 + 0x20, 3 * MiB},        // crosses into later regions
        {0x41003ff000a0, 3 * GiB},              // starts near a GiB's end, covers three more
    };
    for (const span &s : spans) add(index, s.base, s.size);
    for (const span &s : spans) {
        for (uintptr_t a = s.base; a < s.base + s.size; a += 4093) REQUIRE(owner(index, a) == s.base);
        CHECK(owner(index, s.base + s.size - 1) == s.base);
        CHECK(owner(index, s.base + s.size) == 0);
    }
    // A small chunk right after the big one: both stay distinct.
    const uintptr_t after = (spans[2].base + spans[2].size + 31) & ~uintptr_t{31};
    add(index, after, 64);
    CHECK(owner(index, after) == after);
    CHECK(owner(index, after - 1) == spans[2].base);
}

TEST_CASE("a freed chunk is never returned, and stale continuations are ignored") {
    heap_index &index = fresh_index();
    const uintptr_t big = 0x500000000000;
    add(index, big, 8 * MiB);
    CHECK(owner(index, big + 5 * MiB) == big);
    drop(index, big);
    CHECK(owner(index, big) == 0);
    CHECK(owner(index, big + 5 * MiB) == 0);  // continuations still name the dead record
    // A new small chunk in the big one's place: its pages' continuations are stale, never misused.
    add(index, big + 3 * MiB + 64, 100);
    CHECK(owner(index, big + 3 * MiB + 64 + 10) == big + 3 * MiB + 64);
    CHECK(owner(index, big + 3 * MiB + 4096) == 0);
    CHECK(owner(index, big + 6 * MiB) == 0);
    // And a new big chunk over the old start takes over the continuations.
    add(index, big, 2 * MiB);
    CHECK(owner(index, big + MiB) == big);
    CHECK(owner(index, big + 3 * MiB + 64 + 10) == big + 3 * MiB + 64);
}

TEST_CASE("a start granule shared with the address before the start resolves to the earlier chunk") {
    heap_index &index = fresh_index();
    // 8-aligned starts (mimalloc gives such chunks): granule 0x...40 holds the start of B at +0x48,
    // while +0x40..+0x47 still belongs to A.
    const uintptr_t a = 0x600000000008, b = 0x600000000048;
    add(index, a, 0x40);
    add(index, b, 0x40);
    CHECK(owner(index, 0x600000000044) == a);
    CHECK(owner(index, 0x600000000048) == b);
    CHECK(owner(index, 0x600000000087) == b);
    CHECK(owner(index, 0x600000000088) == 0);
}

// The lookup's inline common case (addr's own bitmap word, then its record) and its general path (the
// page's other words, page and region continuations) must agree with a plain model of the live chunks
// wherever a chunk's start lies relative to the address: same granule (8-aligned starts), same bitmap
// word, an earlier word of the page, an earlier page, an earlier region; after frees, reuse of the same
// starts with other sizes, and a start bit still set on a record already killed (a free in progress).
TEST_CASE("lookups agree with a model of the live chunks wherever the start lies") {
    heap_index &index = fresh_index();
    constexpr uintptr_t arena = 0x0b0000000000;
    constexpr size_t span = 3 * MiB;  // crosses a region boundary (arena is 2 MiB aligned)
    std::mt19937_64 rng(13);
    std::map<uintptr_t, size_t> live;  // base -> size
    // A new chunk keeps 32 bytes from its neighbours, as a trailer would (starts a granule apart).
    auto overlaps = [&](uintptr_t b, size_t n) {
        auto it = live.lower_bound(b);
        if (it != live.end() && it->first < b + n + 32) return true;
        return it != live.begin() && std::prev(it)->first + std::prev(it)->second + 32 > b;
    };
    auto model = [&](uintptr_t a) -> uintptr_t {
        auto it = live.upper_bound(a);
        if (it == live.begin()) return 0;
        --it;
        return a - it->first < it->second ? it->first : 0;
    };
    auto check_all = [&](int probes) {
        for (int i = 0; i < probes; ++i) {
            const uintptr_t a = arena + rng() % span;
            const uintptr_t want = model(a);
            record_fields f;
            uint32_t id = 0;
            const bool got = index.lookup(a, &f, &id);
            INFO("address " << std::hex << a << " model " << want);
            REQUIRE(got == (want != 0));
            if (got) {
                REQUIRE(f.base == want);
                REQUIRE(id == index.at(want).id);
            }
        }
        // Every chunk from its first and last byte and the byte after.
        for (const auto &[b, n] : live) {
            REQUIRE(owner(index, b) == b);
            REQUIRE(owner(index, b + n - 1) == b);
            REQUIRE(owner(index, b + n) == model(b + n));
        }
    };
    for (int round = 0; round < 6; ++round) {
        for (int i = 0; i < 1500; ++i) {
            // Sizes from a few bytes (several starts per bitmap word) to 5 KiB (starts a word or a page
            // before the address) and, rarely, 600 KiB (pages and a region before it); 8-aligned starts.
            const size_t n = rng() % 16 == 0 ? 4096 + rng() % 1024 : rng() % 500 == 0 ? 600 * 1024 : 24 + rng() % 400;
            const uintptr_t b = arena + ((rng() % (span - n)) & ~uintptr_t{7});
            if (overlaps(b, n) || index.at(b).marked()) continue;  // one start per granule
            add(index, b, n);
            live[b] = n;
        }
        check_all(20000);
        // Free half of them; kill a few more without clearing their start bit (a free in progress).
        std::vector<uintptr_t> bases;
        for (const auto &e : live) bases.push_back(e.first);
        std::vector<std::pair<uintptr_t, uint32_t>> in_flux;
        for (uintptr_t b : bases) {
            const unsigned r = rng() % 16;
            if (r < 8) {
                drop(index, b);
                live.erase(b);
            } else if (r == 8) {
                const heap_index::slot s = index.at(b);
                REQUIRE(records().get(s.id)->kill(b, nullptr));
                in_flux.push_back({b, s.id});
                live.erase(b);
            }
        }
        check_all(20000);
        // Finish those frees.
        for (const auto &[b, id] : in_flux) {
            index.at(b).remove();
            const owned_thread_state t;
            records().give(t.get(), id);
        }
        check_all(5000);
    }
}

TEST_CASE("lookups in the hot directory block (the first made) and in others agree") {
    heap_index &index = fresh_index();
    constexpr uintptr_t block = uintptr_t{32} << 30;  // a directory block's span
    const uintptr_t hot = 0x0c0000000040, other = hot + 3 * block, below = hot - block;
    add(index, hot, 100);    // the first block made: the hot one
    add(index, other, 200);  // later blocks: through the top table
    add(index, below, 300);
    const uintptr_t spans_blocks = hot + block - 4096;  // starts in the hot block, ends in the next
    add(index, spans_blocks, 8192);
    CHECK(owner(index, hot + 99) == hot);
    CHECK(owner(index, other + 199) == other);
    CHECK(owner(index, below + 299) == below);
    CHECK(owner(index, hot + 100) == 0);
    CHECK(owner(index, other + 200) == 0);
    CHECK(owner(index, spans_blocks + 100) == spans_blocks);
    CHECK(owner(index, hot + block + 100) == spans_blocks);  // its continuation, in the next block
    CHECK(owner(index, hot + block + 4096) == 0);
    CHECK(owner(index, hot + 2 * block) == 0);  // a block that was never made
}

TEST_CASE("for_each_start visits every mark in address order") {
    heap_index &index = fresh_index();
    std::vector<uintptr_t> bases = {0x700000000000, 0x700000000020, 0x700000001000, 0x700000200000, 0x700040000000};
    for (uintptr_t b : bases) add(index, b, 32);
    std::vector<uintptr_t> seen;
    index.for_each_start([&](uintptr_t g, uint32_t) {
        seen.push_back(g);
        return true;
    });
    CHECK(seen == bases);
    size_t visited = 0;
    index.for_each_start([&](uintptr_t, uint32_t) { return ++visited < 2; });
    CHECK(visited == 2);
}

TEST_CASE("addresses beyond 47 bits are not indexable") {
    heap_index &index = fresh_index();
    const uint32_t id = records().take(owned_thread_state().get());
    CHECK(index.insert(uintptr_t{1} << 47, 64, id) == insert_result::unindexable);
    CHECK(index.insert((uintptr_t{1} << 47) - 64, 128, id) == insert_result::unindexable);
    CHECK(owner(index, uintptr_t{1} << 48) == 0);
}

TEST_CASE("records: a thread's block of sequence numbers never crosses a multiple of 1024, its words' bits match") {
    const owned_thread_state owned;
    thread_state *t = owned.get();
    REQUIRE(t != nullptr);
    // Single numbers taken past the thread's block (a thread without state takes them so) leave the
    // global counter unaligned: the next block must still end at a multiple of 1024.
    for (int round = 0; round < 3; ++round) {
        records().next_seq(nullptr);
        t->seq_next = t->seq_end;  // the block used up
        const uint64_t first = records().next_seq(t);
        CHECK(t->seq_end % thread_state::seq_block == 0);
        CHECK(t->seq_end - first <= thread_state::seq_block);
        CHECK((first >> 10) == ((t->seq_end - 1) >> 10));
        CHECK(t->block_site_bits == (rec::site_seq_bits(first) | HEAPINDEX_FLAG_TRAILER));
        CHECK(t->block_size_bits == rec::size_seq_bits(first));
        CHECK(t->block_tail_bits == rec::tail_seq_bits(first, t->tid));
        CHECK(rec::tail_seq_bits(t->seq_end - 1, t->tid) == t->block_tail_bits);
    }
}

TEST_CASE("records: a freed record stays a tombstone for the whole quarantine, then is reused") {
    // The default quarantine, then a larger one (HEAPINDEX_QUARANTINE), then none: each on its own thread
    // (a fresh thread state), in its own part of the address space.
    unsigned part = 0;
    for (unsigned quarantine : {thread_state::default_quarantine, 3000u, 0u}) {
        quarantine_limit.store(quarantine);
        std::thread([&] {
            heap_index &index = fresh_index();
            const uintptr_t area = 0x080000000000 + (uintptr_t(part) << 36);
            const uintptr_t base = area;
            const uint32_t id = add(index, base, 64, reinterpret_cast<const void *>(0xa110c));
            drop(index, base);
            record_fields f;
            CHECK(records().get(id)->read_any(&f) == rs_dead);
            CHECK(f.base == base);
            CHECK(f.site == reinterpret_cast<const void *>(0xa110c));
            CHECK(f.free_site == reinterpret_cast<const void *>(0xf4ee));
            CHECK_FALSE(records().get(id)->read_live(&f));
            // quarantine - 1 more frees (allocations in between): still a tombstone.
            for (unsigned i = 0; i + 1 < quarantine; ++i) {
                const uintptr_t b = area + 0x1000000000 + 64 * i;
                add(index, b, 64);
                drop(index, b);
            }
            CHECK(records().get(id)->read_any(&f) == rs_dead);
            CHECK(f.base == base);
            // Enough churn recycles it.
            bool reused = false;
            for (unsigned i = 0; i < 4 * quarantine + 200 && !reused; ++i) {
                const uintptr_t b = area + 0x2000000000 + 64 * i;
                reused = add(index, b, 64) == id;
                drop(index, b);
            }
            CHECK(reused);
        }).join();
        ++part;
    }
    quarantine_limit.store(thread_state::default_quarantine);
}

TEST_CASE("records: sequence numbers are unique across threads and increase within one") {
    constexpr int threads = 4, per_thread = 5000;
    std::vector<std::vector<uint64_t>> seqs(threads);
    std::vector<std::thread> th;
    for (int i = 0; i < threads; ++i)
        th.emplace_back([&, i] {
            for (int k = 0; k < per_thread; ++k) seqs[i].push_back(records().next_seq(owned_thread_state().get()));
        });
    for (auto &t : th) t.join();
    std::map<uint64_t, int> all;
    for (auto &v : seqs) {
        for (size_t k = 1; k < v.size(); ++k) REQUIRE(v[k] > v[k - 1]);
        for (uint64_t s : v) all[s]++;
    }
    CHECK(all.size() == size_t(threads) * per_thread);
}

TEST_CASE("trailer: request padding, placement and check word") {
    init_trailer_key();
    size_t r = 0;
    REQUIRE(padded_request(0, &r));
    CHECK(r == 32);
    REQUIRE(padded_request(13, &r));
    CHECK(r == 32);
    REQUIRE(padded_request(17, &r));
    CHECK(r == 40);
    CHECK_FALSE(padded_request(SIZE_MAX - 10, &r));
    // The trailer goes right after the requested bytes, 8-aligned, within the padded request (in its last
    // 16 bytes from 16 requested bytes on), at most 7 bytes of slack before it, and the chunk is at least
    // min_chunk bytes long.
    for (size_t n = 0; n < 300; ++n) {
        REQUIRE(padded_request(n, &r));
        const size_t off = trailer_at(n);
        CHECK(off >= n);
        CHECK(off - n <= 7);
        CHECK(off % 8 == 0);
        CHECK(off + trailer_size <= r);
        if (n >= 16) CHECK(off + trailer_size == r);
        CHECK(r >= min_chunk);
        // bench/padonly's answer from an allocator's usable size: after the request, before the trailer.
        for (size_t usable = r; usable < r + 40; usable += 8) {
            CHECK(trailer_offset(usable) >= n);
            CHECK(trailer_offset(usable) + trailer_size <= usable);
        }
    }
    alignas(16) unsigned char chunk[128] = {};
    const uintptr_t base = reinterpret_cast<uintptr_t>(chunk);
    record_fields f{base, 50, trailer_at(50), reinterpret_cast<const void *>(0x1234), 99, nullptr, 5, 1};
    REQUIRE(f.usable == 56);
    const uint32_t check = check_word(f.seq);
    write_trailer(base, f, check);
    static record rec;  // as the layer keeps it: the record's last 16 bytes are the trailer's image
    f.check = check;
    rec.publish(f);
    CHECK(trailer_intact(base + 56, rec));
    trailer t;
    memcpy(&t, chunk + 56, sizeof t);
    CHECK(trailer_matches(t, f));
    // The record as a reader copies it says what was published, the usable size derived.
    record_fields back;
    REQUIRE(rec.read_live(&back));
    CHECK(back.base == base);
    CHECK(back.size == 50);
    CHECK(back.usable == 56);
    CHECK(back.site == f.site);
    CHECK(back.seq == 99);
    CHECK(back.tid == 5);
    CHECK(back.flags == 1);
    CHECK(back.check == check);
    // The same bytes at another chunk's end do not pass: that chunk has another sequence number, so
    // another check word (the trailer holds only the sequence number's high bits: the check word names
    // the chunk).
    record_fields other = f;
    other.base += 16, other.seq += 1, other.check = check_word(other.seq);
    CHECK_FALSE(trailer_matches(t, other));
    // The trailer's bytes: check word (0-3), thread id (4-6), size word (8-15).
    uint32_t first_word;
    memcpy(&first_word, chunk + 56, sizeof first_word);
    CHECK(first_word == check);
    chunk[56 + 4] ^= 1;  // one bit of the thread id
    CHECK_FALSE(trailer_intact(base + 56, rec));
    chunk[56 + 4] ^= 1;
    CHECK(trailer_intact(base + 56, rec));
    chunk[56 + 3] ^= 0x40;  // one bit of the check word
    CHECK_FALSE(trailer_intact(base + 56, rec));
    chunk[56 + 3] ^= 0x40;
    chunk[56 + 13] ^= 0x10;  // one bit of the size
    CHECK_FALSE(trailer_intact(base + 56, rec));
    chunk[56 + 13] ^= 0x10;
    REQUIRE(trailer_intact(base + 56, rec));
    // The off-by-one: the trailer's first byte (the check word's first, its top bit always set) is
    // never what a NUL or an ASCII byte leaves there.
    CHECK((chunk[56] & check_forced_bits) != 0);
    const unsigned char was = chunk[56];
    for (unsigned b = 0; b < 0x80; ++b) {
        chunk[56] = static_cast<unsigned char>(b);
        CHECK_FALSE(trailer_intact(base + 56, rec));
    }
    chunk[56] = was;
    CHECK(trailer_intact(base + 56, rec));
}

TEST_CASE("records: 32 bytes, every field at its widest, a tombstone keeps all but the thread") {
    static_assert(sizeof(record) == 32 && alignof(record) == 32);
    static record rec;
    const uintptr_t top = (uintptr_t{1} << 47) - 1;
    record_fields f{top - 40, (size_t{1} << 47) - 1, 0, reinterpret_cast<const void *>(top), (uint64_t{1} << 46) - 1,
                    nullptr, (1u << 22) - 1, HEAPINDEX_FLAG_EARLY | HEAPINDEX_FLAG_NEW_ARRAY | HEAPINDEX_FLAG_CALLOC};
    f.usable = f.size + 0xfffffffeu;
    rec.publish(f);
    record_fields back;
    REQUIRE(rec.read_live(&back));
    CHECK(back.base == f.base);
    CHECK(back.size == f.size);
    CHECK(back.usable == f.usable);
    CHECK(back.site == f.site);
    CHECK(back.seq == f.seq);
    CHECK(back.tid == f.tid);
    CHECK(back.flags == f.flags);
    // Every sequence number's bits land where they come back from (a walking bit).
    for (unsigned b = 0; b < 46; ++b) {
        f.seq = uint64_t{1} << b;
        rec.head.store(rec.head.load() & ~uint64_t{3});  // owned again (free)
        rec.publish(f);
        REQUIRE(rec.read_live(&back));
        CHECK(back.seq == f.seq);
        CHECK(back.base == f.base);
        CHECK(back.size == f.size);
    }
    // Another base, and the claim fails; this one, and it wins once.
    CHECK_FALSE(rec.claim(f.base - 32));
    REQUIRE(rec.claim(f.base));
    CHECK_FALSE(rec.claim(f.base));
    CHECK_FALSE(rec.read_live(&back));
    rec.bury(reinterpret_cast<const void *>(top - 5));
    REQUIRE(rec.read_any(&back) == rs_dead);
    CHECK(back.base == f.base);
    CHECK(back.size == f.size);
    CHECK(back.site == f.site);
    CHECK(back.seq == f.seq);
    CHECK(back.flags == f.flags);
    CHECK(back.free_site == reinterpret_cast<const void *>(top - 5));
    CHECK(back.tid == 0);
    // A claim for a realloc: in flux to readers, then live again as it was, or a tombstone.
    rec.head.store(rec.head.load() & ~uint64_t{3});
    rec.publish(f);
    REQUIRE(rec.claim(f.base, rs_dying));
    CHECK(rec.read_any(&back) == rs_writing);
    rec.revive();
    REQUIRE(rec.read_live(&back));
    CHECK(back.tid == f.tid);
    REQUIRE(rec.claim(f.base, rs_dying));
    rec.finish_dying(reinterpret_cast<const void *>(0x4321));
    REQUIRE(rec.read_any(&back) == rs_dead);
    CHECK(back.free_site == reinterpret_cast<const void *>(0x4321));
    CHECK(back.seq == f.seq);
}

TEST_CASE("check words: ChaCha as RFC 8439 specifies it, the keystream per sequence number, a random key") {
    // RFC 8439 2.3.2: key 00..1f, counter 1, nonce 00 00 00 09 00 00 00 4a 00 00 00 00.  Our counter is
    // 64 bits (words 12, 13) and the nonce 64 (words 14, 15): word 13 takes the nonce's first 4 bytes.
    uint32_t key[8];
    for (unsigned i = 0; i < 8; ++i)
        key[i] = uint32_t(4 * i) | uint32_t(4 * i + 1) << 8 | uint32_t(4 * i + 2) << 16 | uint32_t(4 * i + 3) << 24;
    uint32_t out[64];
    chacha_blocks<20>(key, 1 | uint64_t{0x09000000} << 32, 0x4a000000, out);
    const uint32_t expected[16] = {0xe4e7f110, 0x15593bd1, 0x1fdd0f50, 0xc47120a3, 0xc7f4d1c7, 0x0368c033,
                                   0x9aaa2204, 0x4e6cd4c3, 0x466482d2, 0x09aa9f07, 0x05d7c214, 0xa2028bd9,
                                   0xd19c12b5, 0xb94e16de, 0xe883d0cb, 0x4e3c50a2};
    for (unsigned i = 0; i < 16; ++i) CHECK(out[4 * i] == expected[i]);  // word i of block 0
    // The next three blocks are counters 2, 3, 4: block b + 1 of this call is block b of a call from 2.
    uint32_t again[64];
    chacha_blocks<20>(key, 2 | uint64_t{0x09000000} << 32, 0x4a000000, again);
    for (unsigned i = 0; i < 16; ++i)
        for (unsigned b = 0; b < 3; ++b) CHECK(again[4 * i + b] == out[4 * i + b + 1]);

    init_trailer_key();
    uint32_t zero[8] = {};
    CHECK(memcmp(trailer_key.words, zero, sizeof zero) != 0);
    // A table filled from an unaligned block of sequence numbers holds each number's own word.
    static uint32_t table[check_table_size];
    fill_check_words(table, 1 + 3 * check_table_size, 1 + 4 * check_table_size);
    for (uint64_t s = 1 + 3 * check_table_size; s < 1 + 4 * check_table_size; ++s)
        REQUIRE(table[s & (check_table_size - 1)] == check_word(s));
    // Every check word has check_forced_bits (the trailer's first byte is never 0 nor ASCII), and is the
    // keystream's word otherwise; the first byte's other 7 bits take every value (4096 words: each of
    // the 128 values is expected 32 times).
    {
        uint32_t group[64];
        chacha_blocks<check_rounds>(trailer_key.words, 0, check_nonce, group);
        for (uint64_t s = 0; s < 64; ++s) REQUIRE(check_word(s) == (group[s] | check_forced_bits));
        static uint32_t big[4 * check_table_size];
        bool seen[128] = {};
        for (unsigned k = 0; k < 4; ++k) fill_check_words(big + k * check_table_size, k * check_table_size, (k + 1) * check_table_size);
        for (uint32_t w : big) {
            REQUIRE((w & check_forced_bits) != 0);
            seen[w & 0x7f] = true;
        }
        CHECK(std::count(seen, seen + 128, true) == 128);
    }
    // The AVX2 path (8 blocks at once, used by fill_check_words where the CPU has it) gives exactly the
    // words of two SSE2 calls.
    if (wide_chacha_available()) {
        for (uint64_t counter : {uint64_t{0}, uint64_t{8}, uint64_t{0xfffffffcull}, uint64_t{1} << 40}) {
            uint32_t wide[128], narrow[128];
            chacha8_blocks_wide(trailer_key.words, counter, check_nonce, wide);
            chacha_blocks<8>(trailer_key.words, counter, check_nonce, narrow);
            chacha_blocks<8>(trailer_key.words, counter + 4, check_nonce, narrow + 64);
            CHECK(memcmp(wide, narrow, sizeof wide) == 0);
            // ... and the same with check_forced_bits set as they are stored.
            uint32_t wide_set[128];
            chacha8_blocks_wide(trailer_key.words, counter, check_nonce, wide_set, check_forced_bits);
            for (unsigned i = 0; i < 128; ++i) REQUIRE(wide_set[i] == (narrow[i] | check_forced_bits));
        }
    } else {
        WARN("no AVX2 here: the 8-block ChaCha path is not tested");
    }
    // Distinct words for consecutive numbers (a collision among 1024 32-bit words is ~1e-4 likely: the
    // test allows two).
    std::vector<uint32_t> words(table, table + check_table_size);
    std::sort(words.begin(), words.end());
    CHECK(std::unique(words.begin(), words.end()) - words.begin() >= long(check_table_size) - 2);
}

TEST_CASE("concurrent inserts, removes and lookups: a lookup only ever answers with a live chunk that contains the address") {
    heap_index &index = fresh_index();
    constexpr int writers = 3;
    constexpr uintptr_t arena = 0x0a0000000000;
    constexpr size_t slot_bytes = 4096, slots = 512;
    std::atomic<int> writing{writers};
    std::atomic<bool> checked{false};
    std::atomic<uint64_t> bad{0}, hits{0};
    // Writer w owns the 4 KiB slots s with s % writers == w; a chunk in slot s starts in the slot's first
    // 256 bytes and ends inside the slot, so no two live chunks overlap, yet neighbouring chunks of
    // different writers share bitmap words, pages and regions.
    std::vector<std::thread> th;
    for (int w = 0; w < writers; ++w)
        th.emplace_back([&, w] {
            std::mt19937_64 rng(w);
            std::vector<uintptr_t> live(slots, 0);
            for (int op = 0; op < 60000; ++op) {
                const size_t s = (rng() % (slots / writers)) * writers + w;
                if (live[s]) {
                    drop(index, live[s]);
                    live[s] = 0;
                } else {
                    const uintptr_t base = arena + s * slot_bytes + 32 * (rng() % 8);
                    const size_t size = 32 + rng() % (slot_bytes - 256 - 32);
                    add(index, base, size);
                    live[s] = base;
                }
            }
            // Keep the last chunks until the reader has looked at them (on a loaded machine the reader may
            // not have run at all while the writers did).
            writing--;
            while (!checked.load()) std::this_thread::yield();
            for (uintptr_t b : live)
                if (b) drop(index, b);
        });
    std::thread reader([&] {
        std::mt19937_64 rng(99);
        auto probe = [&](uintptr_t a) {
            record_fields f;
            if (index.lookup(a, &f)) {
                hits++;
                const bool ok = a >= f.base && a < f.base + f.size && (f.base - arena) % slot_bytes < 256 &&
                                (f.base - arena) / slot_bytes == (a - arena) / slot_bytes;
                if (!ok) bad++;
            }
        };
        while (writing.load() != 0) probe(arena + rng() % (slots * slot_bytes));
        for (uintptr_t a = arena; a < arena + slots * slot_bytes; a += 64) probe(a);  // writers quiet now
        checked = true;
    });
    for (auto &t : th) t.join();
    reader.join();
    CHECK(bad.load() == 0);
    CHECK(hits.load() > 0);
    // Everything was freed: nothing is found any more.
    size_t marks = 0;
    index.for_each_start([&](uintptr_t, uint32_t) {
        ++marks;
        return true;
    });
    CHECK(marks == 0);
}

TEST_CASE("dense index memory: zeroed, aligned, disjoint pieces, also when threads carve at once") {
    constexpr size_t piece = 272384 + 8;  // a leaf's size, not a multiple of 64: rounded up by the carver
    constexpr int threads = 4, per_thread = 40;  // 160 pieces: about 11 blocks of 4 MiB
    const size_t before = dense_index_bytes();
    std::vector<std::vector<unsigned char *>> got(threads);
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; ++t)
        ts.emplace_back([&, t] {
            for (int i = 0; i < per_thread; ++i) {
                auto *p = static_cast<unsigned char *>(carve_dense_index_memory(piece));
                if (p == nullptr) break;
                got[t].push_back(p);
            }
        });
    for (auto &t : ts) t.join();
    std::map<uintptr_t, size_t> all;
    for (int t = 0; t < threads; ++t) {
        REQUIRE(got[t].size() == per_thread);
        for (unsigned char *p : got[t]) {
            CHECK(reinterpret_cast<uintptr_t>(p) % 64 == 0);
            CHECK(p[0] == 0);
            CHECK(p[piece / 2] == 0);
            CHECK(p[piece - 1] == 0);
            all[reinterpret_cast<uintptr_t>(p)] = piece;
        }
    }
    REQUIRE(all.size() == size_t(threads * per_thread));
    uintptr_t end = 0;
    for (const auto &[at, n] : all) {  // sorted by address: each piece ends before the next begins
        CHECK(at >= end);
        end = at + n;
    }
    // Mark every piece whole: an overlap would show as a wrong tag.
    for (const auto &[at, n] : all) memset(reinterpret_cast<void *>(at), int(at >> 6 & 0xff), n);
    for (const auto &[at, n] : all) {
        CHECK(reinterpret_cast<unsigned char *>(at)[0] == (at >> 6 & 0xff));
        CHECK(reinterpret_cast<unsigned char *>(at)[n - 1] == (at >> 6 & 0xff));
    }
    CHECK(dense_index_bytes() - before >= 10 * (size_t{4} << 20));
}

TEST_CASE("a region whose first chunk is small gets a dense leaf; one whose first chunk is large, its own") {
    heap_index &index = fresh_index();
    const uintptr_t small_region = 0x500000000000, large_region = 0x500000400000;
    add(index, small_region + 0x40, 48);  // the directory page becomes writable here
    const size_t mapped_before = index.mapped_bytes();
    add(index, small_region + 2 * MiB + 0x40, 100);  // a neighbouring region, same directory page
    CHECK(index.mapped_bytes() == mapped_before);     // its leaf is dense memory, accounted apart
    add(index, large_region, heap_index::dense_limit);
    CHECK(index.mapped_bytes() == mapped_before + sizeof(heap_index::leaf));
    // Both work alike.
    CHECK(owner(index, small_region + 2 * MiB + 0x40 + 99) == small_region + 2 * MiB + 0x40);
    CHECK(owner(index, large_region + heap_index::dense_limit - 1) == large_region);
    CHECK(owner(index, large_region + heap_index::dense_limit) == 0);
}
