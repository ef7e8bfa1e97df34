// SPDX-License-Identifier: MIT
// The trailer: 16 bytes at the end of every chunk allocated through the index, holding the chunk's
// requested size, sequence number, allocating thread and a check word: the last 16 bytes of its record
// (record.h), bit for bit.
//
// Placement follows from the request alone: the index asks the allocator for
// max(round_up(requested, 8) + 16, 32) bytes and writes the trailer right after the requested bytes and
// at most 7 bytes of slack (trailer_at), in the last 16 of them from 16 requested bytes on.  The program is told that offset as
// its usable size, at least what it asked for, so code that fills a chunk up to malloc_usable_size
// (SQLite does) stops at the trailer.  No allocator's chunk layout is read, and no usable-size call is
// needed: whatever the allocator rounds up lies after the trailer, unused.  (Until issue 13 the trailer
// was 32 bytes at round_down(usable - 32, 8), which cost malloc a usable-size call, about 17
// instructions, and glibc a 64-byte chunk for a 16-byte request.)  Every indexed chunk is thus at least
// 32 bytes long, so two chunk starts are at least 32 bytes apart: the heap index's 32-byte granules rely
// on it.  (malloc's call over the preload terminal skips the raise to 32 where the allocator is glibc's,
// whose chunks start 32 bytes apart anyway: unraised_request, backends/preload/terminal.h's
// unowned_malloc.)
//
// The trailer is compared with the record, and the check word is the chunk's word of a keystream under a
// per-process random key (trailer.cc), so a trailer clobbered by an overflow, or one copied to another
// address (realloc moves bytes), never passes, and trailers an attacker can read do not tell another's.
// The index's record is the authority; the trailer is the in-chunk copy verified at free, realloc and by
// heapindex_check.  Since the 32-byte record (issue 13) the trailer is the record's last two words as
// they are packed there (check word, thread id and the sequence number's top bits; size and sequence
// number): no code address (the site) lies in chunk memory, where a program's bug could leak it.
//
// The check word comes first, and its first byte always has its top bit set (check_forced_bits): the
// trailer's first byte is where an off-by-one lands (a chunk whose size is a multiple of 8 has no slack),
// and a NUL, or any ASCII byte, written there never matches; another byte matches one chunk in 128.
// (The 32-byte record first put the size word there, whose first byte is the sequence number's bits
// 19-26: 0 for a process's first 524,288 allocations, so `p = malloc(24); p[24] = 0; free(p)` went
// unreported.  A check word's first byte left uniform would miss any given byte one chunk in 256, the NUL
// included.)
#ifndef MALLOCHOOKS_INDEX_TRAILER_H
#define MALLOCHOOKS_INDEX_TRAILER_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "index/record.h"
#include "index/thread_state.h"

namespace mallochooks::heapindex {

struct trailer {
    uint64_t tail;       // record word 2: check | tid << 32 | sequence number bits 36-45 << 54
    uint64_t size_word;  // record word 3: size << 17 | sequence number bits 19-35
};
constexpr size_t trailer_size = sizeof(trailer);
static_assert(trailer_size == 16);

// Smallest chunk the index lets the allocator hand out: granules of the heap index are this large.
constexpr size_t min_chunk = 32;

// The key of the check words: 256 bits from getrandom, taken once by init_trailer_key (the chains'
// init), before any trailer is written; the same in every chain of the process.  trailer.cc says why.
struct trailer_key_t {
    uint32_t words[8];
    bool claimed, ready;
};
extern trailer_key_t trailer_key __attribute__((visibility("hidden")));
void init_trailer_key() __attribute__((visibility("hidden")));

// A chunk's check word is the word of a ChaCha8 keystream its sequence number picks (trailer.cc; the
// nonce is a constant that keeps this stream apart from any other use of the key), with
// check_forced_bits set.  The other trailer fields
// are compared with the record one by one, so the check word needs to be unpredictable, not a digest of
// everything; the sequence number is unique in the process, so it names the chunk.  The word is kept in
// the record too (record::link), so free compares instead of recomputing.
constexpr unsigned check_rounds = 8;
// Set in every check word: bit 7, the top bit of the trailer's first byte (see the top).  31 random bits
// remain.  Set when a table is filled (fill_check_words, check_word): nothing on malloc's path.
constexpr uint32_t check_forced_bits = 0x80;
constexpr uint64_t check_nonce = 0x6b63656878646968ull;  // "hidxchek"
// A thread's table of the check words of its block of sequence numbers (records.h): word seq % size.
constexpr unsigned check_table_size = thread_state::seq_block;
static_assert((check_table_size & (check_table_size - 1)) == 0);

// 4 ChaCha blocks (64 words) of `Rounds` rounds, counters counter..counter+3 (64 bits: words 12 and 13),
// nonce in words 14 and 15; word i of block b goes to out[4 * i + b], ORed with `set_bits` (check words
// pass check_forced_bits: one vector OR per 4 words as they are stored, where a pass over the table
// after cost 4 instructions per allocation).  Instantiated for 8 (check words) and 20 (the unit test's
// RFC 8439 vector).
template <unsigned Rounds>
void chacha_blocks(const uint32_t key[8], uint64_t counter, uint64_t nonce, uint32_t out[64], uint32_t set_bits = 0)
    __attribute__((visibility("hidden")));

// The same for 8 blocks of ChaCha8 (counters counter..counter+7), in AVX2 where wide_chacha_available():
// out[0..63] as chacha_blocks<8> for counter, out[64..127] as for counter + 4.  fill_check_words uses it.
bool wide_chacha_available() __attribute__((visibility("hidden")));
void chacha8_blocks_wide(const uint32_t key[8], uint64_t counter, uint64_t nonce, uint32_t out[128],
                         uint32_t set_bits = 0) __attribute__((visibility("hidden")));

// One check word, computed (a whole group of 64, about 700 instructions: for the rare paths).
uint32_t check_word(uint64_t seq) __attribute__((visibility("hidden")));
// The check words of sequence numbers [first, end) into table[seq % check_table_size].
void fill_check_words(uint32_t *table, uint64_t first, uint64_t end) __attribute__((visibility("hidden")));

// Where the trailer of a chunk of `size` requested bytes goes: right after them, rounded up to 8.  Also
// the usable size the program sees.  The slack before it, trailer_at(size) - size, is at most 7 bytes.
// A request below 16 bytes still makes a min_chunk-byte chunk (padded_request): its trailer is followed
// by unused bytes up to min_chunk.  (Until the 32-byte record the trailer of such a chunk went at offset
// 16, a cmp and a cmov more on malloc's and free's fast paths, now that the record keeps no usable size.)
inline size_t trailer_at(size_t size) { return trailered_usable(size); }
static_assert(trailered_usable(0) == 0 && trailered_usable(1) == 8 && trailered_usable(17) == 24);

// The request that makes room for a trailer; false when it overflows (the caller then asks for
// SIZE_MAX, which fails with ENOMEM as glibc fails any impossible request).
inline bool padded_request(size_t size, size_t *out) {
    size_t n;
    if (__builtin_add_overflow(size, trailer_size + 7, &n)) return false;
    n &= ~size_t{7};
    *out = n < min_chunk ? min_chunk : n;
    return true;
}
// trailer_at(size) + trailer_size <= the padded request, equal from 16 bytes on.
// What to ask the allocator for: the padded request, or SIZE_MAX (which fails) when it overflows.
inline size_t padded_request_or_max(size_t size) {
    size_t r;
    return padded_request(size, &r) ? r : SIZE_MAX;
}

// The same without the raise to min_chunk (16 or 24 bytes for requests of 0 to 8), for an allocator call
// whose chunks start at least min_chunk bytes apart anyway (preload::terminal::malloc_unowned's).
inline size_t unraised_request(size_t size) {
    size_t n;
    return __builtin_add_overflow(size, trailer_size + 7, &n) ? SIZE_MAX : n & ~size_t{7};
}

// Where a trailer would go in a chunk the allocator says has `usable` bytes, when only that is known
// (bench/padonly's usable-size answer).  Only valid when usable >= trailer_size.
inline size_t trailer_offset(size_t usable) { return (usable - trailer_size) & ~size_t{7}; }

// 8-aligned (trailer_at is a multiple of 8); may_alias: the bytes belong to the program's chunk.  Two
// 8-byte stores: the record's words 2 (the tail, check word first) and 3 (the size word).
inline void write_trailer(uintptr_t at, uint64_t size_word, uint64_t tail) {
    struct __attribute__((may_alias)) u64 {
        uint64_t v;
    };
    u64 *t = reinterpret_cast<u64 *>(at);
    t[0].v = tail;
    t[1].v = size_word;
}
inline void write_trailer(uintptr_t base, const record_fields &f, uint32_t check) {
    write_trailer(base + f.usable, rec::size_word(f.size, f.seq), rec::tail_word(check, f.tid, f.seq));
}

// The slack: bytes between the requested size and the trailer (the allocator's rounding and our rounding
// to 8: up to 15 bytes for glibc's small chunks, up to a quarter of the chunk for jemalloc's size
// classes, up to a page for mmapped chunks).  A pattern is written there at allocation and verified at
// free, realloc and by heapindex_check, so an overflow that stops short of the trailer is caught too.
// Only the first slack_bound bytes are patterned: every overflow that writes on from the end passes
// through them, and a large slack (a page) costs no more than this to write and read.  A program that
// asks malloc_usable_size owns its slack (it may write up to that size): the layer then marks the chunk
// HEAPINDEX_FLAG_USABLE_ASKED and its slack is no longer checked.
constexpr unsigned char slack_byte = 0xfd;
constexpr uint64_t slack_word = 0xfdfdfdfdfdfdfdfdull;
constexpr size_t slack_bound = 128;

// How many slack bytes of a chunk are patterned.
inline size_t slack_length(size_t size, size_t usable) {
    const size_t n = usable - size;
    return n < slack_bound ? n : slack_bound;
}

// Write the pattern over [base + size, base + usable), before the trailer is written: the first 16
// bytes are stored whole, and may run into the trailer's place (the trailer overwrites them).  A
// trailered chunk's slack is at most 7 bytes (trailer_at); a longer one (a chunk whose program asked
// malloc_usable_size and a record whose usable size came from elsewhere) takes the loop.
inline void write_slack(uintptr_t base, size_t size, size_t usable) {
    struct __attribute__((may_alias, aligned(1))) u64 {
        uint64_t v;
    };
    u64 *p = reinterpret_cast<u64 *>(base + size);
    p[0].v = slack_word;
    p[1].v = slack_word;
    const size_t n = slack_length(size, usable);
    if (__builtin_expect(n > 16, 0))
        for (size_t i = 16; i < n; i += 8) reinterpret_cast<u64 *>(base + size + (i + 8 <= n ? i : n - 8))->v = slack_word;
}

// The same for a trailered chunk, whose slack is at most 7 bytes (trailer_at): one 16-byte store (two
// 8-byte ones without SSE2), no test.
inline void write_short_slack(uintptr_t base, size_t size) {
#if defined(__SSE2__)
    // One 16-byte store of a constant vector (two instructions; two 8-byte stores take three).
    _mm_storeu_si128(reinterpret_cast<__m128i *>(base + size), _mm_set1_epi8(char(slack_byte)));
#else
    struct __attribute__((may_alias, aligned(1))) u64 {
        uint64_t v;
    };
    u64 *p = reinterpret_cast<u64 *>(base + size);
    p[0].v = slack_word;
    p[1].v = slack_word;
#endif
}

// The first slack byte that lost its pattern, as an offset from the chunk's base, or 0 when the slack is
// intact (offset 0 is never slack: slack starts at the requested size).
inline size_t slack_damage(const unsigned char *slack, size_t size, size_t n) {
    for (size_t i = 0; i < n; ++i)
        if (slack[i] != slack_byte) return size + i;
    return 0;
}

// The slack test for a chunk with HEAPINDEX_FLAG_TRAILER, whose slack is at most 7 bytes by
// construction (trailer_at): free's fast path, with no length test.  One 16-byte load and compare; bytes
// past the slack are masked.
inline bool trailered_slack_intact(uintptr_t base, size_t size, size_t usable) {
    const size_t n = usable - size;
#if defined(__SSE2__)
    const __m128i got = _mm_loadu_si128(reinterpret_cast<const __m128i *>(base + size));
    const unsigned same = unsigned(_mm_movemask_epi8(_mm_cmpeq_epi8(got, _mm_set1_epi8(char(slack_byte)))));
    // The first n bytes intact: at least n trailing ones (~same is never 0: bits 16-31 are set).
    return unsigned(__builtin_ctz(~same)) >= unsigned(n);  // n <= 16
#else
    return slack_damage(reinterpret_cast<const unsigned char *>(base + size), size, n) == 0;
#endif
}

// The same for any chunk: true when the slack is intact and at most 16 bytes long (longer ones go to the
// general path, which checks them all).
inline bool short_slack_intact(uintptr_t base, size_t size, size_t usable) {
    return usable - size <= 16 && trailered_slack_intact(base, size, usable);
}

// Does this copy of a trailer say exactly what the record (a live copy) says?
inline bool trailer_matches(const trailer &t, const record_fields &f) {
    return t.size_word == rec::size_word(f.size, f.seq) && t.tail == rec::tail_word(f.check, f.tid, f.seq);
}

// The same, in place, against the record of the chunk (live, or claimed by the caller: nobody writes
// it meanwhile), whose last 16 bytes are the trailer's image, check word included: one 16-byte
// comparison.  The trailer is at `at` (base + trailer_at(size)).
inline bool trailer_intact(uintptr_t at, const record &r) {
    static_assert(offsetof(record, tail) == 16 && offsetof(record, w_size) == 24 && sizeof(trailer) == 16);
    const void *t = reinterpret_cast<const void *>(at);
#if defined(__SSE2__)
    // One 16-byte compare and one mask test (the image is 16-aligned in the 32-aligned record, the
    // trailer only 8-aligned).  Reading the record's atomic fields as bytes is no race: nobody writes it.
    const __m128i same = _mm_cmpeq_epi8(_mm_loadu_si128(static_cast<const __m128i *>(t)),
                                        _mm_load_si128(reinterpret_cast<const __m128i *>(&r.tail)));
    return _mm_movemask_epi8(same) == 0xffff;
#else
    return memcmp(t, &r.tail, trailer_size) == 0;
#endif
}

}  // namespace mallochooks::heapindex

#endif
