// SPDX-License-Identifier: MIT
// The trailer: 32 bytes at the end of every chunk allocated through the index, holding the allocation
// site, the requested size, the sequence number, the allocating thread and a check word.
//
// Placement uses only the allocator's usable-size call, never its chunk layout: the index asks for
// round_up(requested + 32, 16) bytes, asks the allocator how many it got (u), and puts the trailer at
// round_down(u - 32, 8).  The program is told u' = that offset as its usable size, which is at least what
// it asked for, so code that fills a chunk up to malloc_usable_size (SQLite does) stops at the trailer.
// Asking for a multiple of 16 also makes every allocator (mimalloc has 24- and 40-byte bins) return
// 16-aligned chunks of at least 32 bytes, which the heap index's 32-byte granules rely on.
//
// The check word mixes the chunk's base address, the other fields and a per-process secret (AT_RANDOM),
// so a trailer clobbered by an overflow, or one copied to another address (realloc moves bytes), never
// passes.  The index's record is the authority; the trailer is the in-chunk copy verified at free,
// realloc and by heapindex_check.
#ifndef MALLOCHOOKS_INDEX_TRAILER_H
#define MALLOCHOOKS_INDEX_TRAILER_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "index/records.h"

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

inline uint32_t trailer_check(uintptr_t base, const void *site, uint64_t size, uint64_t seq, uint32_t tid) {
    uint64_t h = (base ^ trailer_secret) * 0x9e3779b97f4a7c15ull;
    h = (h ^ reinterpret_cast<uintptr_t>(site)) * 0xbf58476d1ce4e5b9ull;
    h = (h ^ size ^ (seq << 20) ^ (uint64_t(tid) << 44)) * 0x94d049bb133111ebull;
    return uint32_t(h >> 32);
}

// The request that makes room for a trailer; false when it overflows (the caller then asks for
// SIZE_MAX, which fails with ENOMEM as glibc fails any impossible request).
inline bool padded_request(size_t size, size_t *out) {
    size_t n;
    if (__builtin_add_overflow(size, trailer_size + 15, &n)) return false;
    *out = n & ~size_t{15};
    return true;
}

// Where the trailer goes in a chunk the allocator says has `usable` bytes; also the usable size the
// program sees.  Only valid when usable >= size + trailer_size.
inline size_t trailer_offset(size_t usable) { return (usable - trailer_size) & ~size_t{7}; }

inline void write_trailer(uintptr_t base, const record_fields &f) {
    trailer t = {f.site, f.size, f.seq, f.tid, trailer_check(base, f.site, f.size, f.seq, f.tid)};
    memcpy(reinterpret_cast<void *>(base + f.usable), &t, sizeof t);
}

// Does this copy of a trailer say exactly what the record says?
inline bool trailer_matches(const trailer &t, uintptr_t base, const record_fields &f) {
    return t.site == f.site && t.size == f.size && t.seq == f.seq && t.tid == f.tid &&
           t.check == trailer_check(base, f.site, f.size, f.seq, f.tid);
}

inline bool trailer_intact(uintptr_t base, const record_fields &f) {
    trailer t;
    memcpy(&t, reinterpret_cast<const void *>(base + f.usable), sizeof t);
    return trailer_matches(t, base, f);
}

}  // namespace mallochooks::heapindex

#endif
