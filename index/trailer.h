// SPDX-License-Identifier: MIT
// The trailer: 32 bytes at the end of every chunk allocated through the index, holding the allocation
// site, the requested size, the sequence number, the allocating thread and a check word.
//
// Placement uses only the allocator's usable-size call, never its chunk layout: the index asks for
// round_up(requested, 8) + 32 bytes, asks the allocator how many it got (u >= that), and puts the trailer
// at round_down(u - 32, 8) >= round_up(requested, 8).  The program is told that offset as its usable
// size, at least what it asked for, so code that fills a chunk up to malloc_usable_size (SQLite does)
// stops at the trailer.  Every indexed chunk is thus at least 32 bytes long, so two chunk starts are at
// least 32 bytes apart: the heap index's 32-byte granules rely on it.  (Rounding the request to 16 would
// also be correct, but costs glibc 16 more bytes for most sizes.)
//
// Every field is compared with the record, and the check word is a keyed hash of the chunk's base
// address, size and sequence number with a per-process secret (AT_RANDOM), so a trailer clobbered by an
// overflow, or one copied to another address (realloc moves bytes), never passes.  The index's record is
// the authority; the trailer is the in-chunk copy verified at free, realloc and by heapindex_check.
#ifndef MALLOCHOOKS_INDEX_TRAILER_H
#define MALLOCHOOKS_INDEX_TRAILER_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "index/record.h"

namespace mallochooks::heapindex {

struct trailer {
    const void *site;
    uint64_t size;
    uint64_t seq;
    uint32_t tid;
    uint32_t check;
};
constexpr size_t trailer_size = sizeof(trailer);
static_assert(trailer_size == 32);

// Smallest chunk the index lets the allocator hand out: granules of the heap index are this large.
constexpr size_t min_chunk = 32;

// Set once at initialisation (and identical in every chain: AT_RANDOM is per process).
extern uint64_t trailer_secret __attribute__((visibility("hidden")));
void init_trailer_secret() __attribute__((visibility("hidden")));

// The check word: a keyed hash of the chunk's base, size and sequence number.  The other trailer fields
// are compared with the record one by one, so the check word needs to be unforgeable, not a digest of
// everything.  It is kept in the record too (record::link), so free compares instead of rehashing.
inline uint32_t trailer_check(uintptr_t base, uint64_t size, uint64_t seq) {
    // The high half of a product with an odd multiplier that is a sign-extended 32-bit immediate
    // (0xffffffff9e3779b1: one imul, no constant to load) depends on every bit of the key.
    constexpr uint64_t odd = uint64_t(int64_t(int32_t(0x9e3779b1u)));
    return uint32_t(((base ^ trailer_secret ^ seq) + size) * odd >> 32);
}

// The request that makes room for a trailer; false when it overflows (the caller then asks for
// SIZE_MAX, which fails with ENOMEM as glibc fails any impossible request).
inline bool padded_request(size_t size, size_t *out) {
    size_t n;
    if (__builtin_add_overflow(size, trailer_size + 7, &n)) return false;
    *out = n & ~size_t{7};
    return true;
}

// Where the trailer goes in a chunk the allocator says has `usable` bytes; also the usable size the
// program sees.  Only valid when usable >= size + trailer_size.
inline size_t trailer_offset(size_t usable) { return (usable - trailer_size) & ~size_t{7}; }

// 8-aligned (usable sizes are multiples of 8, the offset is rounded down to 8); may_alias: the bytes
// belong to the program's chunk.
inline void write_trailer(uintptr_t base, const record_fields &f, uint32_t check) {
    struct __attribute__((may_alias)) trailer_view : trailer {};
    trailer_view *t = reinterpret_cast<trailer_view *>(base + f.usable);
    t->site = f.site;
    t->size = f.size;
    t->seq = f.seq;
    t->tid = f.tid;
    t->check = check;
}

// Does this copy of a trailer say exactly what the record says?
inline bool trailer_matches(const trailer &t, uintptr_t base, const record_fields &f) {
    return t.site == f.site && t.size == f.size && t.seq == f.seq && t.tid == f.tid &&
           t.check == trailer_check(base, f.size, f.seq);
}

// The same, in place, against the record of the chunk (live, or killed by the caller: nobody writes it
// meanwhile), whose second half is the trailer's image, check word included: one 32-byte comparison.
// The trailer is where the record's usable size (the trailer's offset) says.
inline bool trailer_intact(uintptr_t base, const record &r) {
    static_assert(offsetof(record, site) == 32 && offsetof(record, size) == 40 && offsetof(record, seq) == 48 &&
                  offsetof(record, tid) == 56 && offsetof(record, link) == 60);
    static_assert(offsetof(trailer, site) == 0 && offsetof(trailer, size) == 8 && offsetof(trailer, seq) == 16 &&
                  offsetof(trailer, tid) == 24 && offsetof(trailer, check) == 28);
    const void *t = reinterpret_cast<const void *>(base + r.usable.get());
#if defined(__SSE2__)
    // Two 16-byte compares and one mask test (the image is 16-aligned in the 64-aligned record, the
    // trailer only 8-aligned).  Reading the record's atomic fields as bytes is no race: nobody writes it.
    const __m128i *in_chunk = static_cast<const __m128i *>(t), *image = reinterpret_cast<const __m128i *>(&r.site);
    const __m128i same = _mm_and_si128(_mm_cmpeq_epi8(_mm_loadu_si128(in_chunk), _mm_load_si128(image)),
                                       _mm_cmpeq_epi8(_mm_loadu_si128(in_chunk + 1), _mm_load_si128(image + 1)));
    return _mm_movemask_epi8(same) == 0xffff;
#else
    return memcmp(t, &r.site, trailer_size) == 0;
#endif
}

}  // namespace mallochooks::heapindex

#endif
