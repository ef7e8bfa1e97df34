// SPDX-License-Identifier: MIT
// The index under valgrind's memcheck.  memcheck knows the blocks its replacement of libc's allocator
// hands out (behind the index, when valgrind runs with --soname-synonyms=somalloc=nouserintercepts), but
// not where in them the index keeps its trailer, nor that the index's records name every block.  It is
// told with its client requests (valgrind/memcheck.h, Debian's valgrind package):
//   - each block is resized (VALGRIND_RESIZEINPLACE_BLOCK) to what the program asked for, so memcheck
//     sees the blocks it would see without the index: the padding and the trailer after them are
//     no-access (the trailer is opened only while the index reads it), a write into them (an overflow)
//     is reported at the writing instruction as "N bytes after a block of size <requested>", realloc
//     copies the requested bytes only (never a trailer's no-access bytes), and the leak summary counts
//     the requested bytes;
//   - malloc_usable_size answers the requested size, as memcheck's own does;
//   - the records, which name every chunk's base, are left out of memcheck's leak scan (record_protection),
//     so its leak summary is the program's own.
// Outside valgrind a client request is a few instructions that do nothing; the index reaches them only
// after one test of running(), on general paths: under memcheck no thread ever gets a block of sequence
// numbers, so every allocation takes admit's general path, and guarded trailers carry
// record_flag_guarded_trailer instead of HEAPINDEX_FLAG_TRAILER, so every free takes free's slow path.
// The fast paths are unchanged.  docs/heapindex.md, "Under valgrind", says how to run it.
#ifndef MALLOCHOOKS_INDEX_MEMCHECK_H
#define MALLOCHOOKS_INDEX_MEMCHECK_H

#include <stddef.h>
#include <stdint.h>

#include <atomic>

#include "index/record.h"
#include "mallochooks/heapindex.h"

namespace mallochooks::heapindex {

// Internal record flags (outside the public HEAPINDEX_FLAG_* bits).  guarded_trailer: the chunk has a
// trailer, and memcheck guards it (no-access); the public view (heapindex_chunk.flags) says
// HEAPINDEX_FLAG_TRAILER.  memcheck_block: memcheck's own block, resized to the request, so the trailer
// lies beyond the block as memcheck knows it (else it lies inside a block of another allocator's).
// (record_flag_guarded_trailer, record_flag_memcheck_block and has_trailer are in record.h: the record
// packs its flags in 13 bits.)
constexpr uint32_t public_flags(uint32_t flags) {
    constexpr uint32_t internal = record_flag_guarded_trailer | record_flag_memcheck_block;
    return (flags & record_flag_guarded_trailer) ? (flags & ~internal) | HEAPINDEX_FLAG_TRAILER : flags;
}
// The usable size the program is told (malloc_usable_size, heapindex_chunk): the trailer's offset, or,
// under memcheck, the requested size, as memcheck itself answers.
template <class Fields> constexpr size_t public_usable(const Fields &f) {
    return (f.flags & record_flag_guarded_trailer) ? f.size : f.usable;
}

namespace memcheck {

// Is this process running under memcheck?  Found out on the first call (a client request that only
// memcheck answers), then one load.
bool running_slow() __attribute__((visibility("hidden")));
extern std::atomic<int> state __attribute__((visibility("hidden")));  // 0 unknown, 1 no, 2 yes
inline bool running() {
    const int s = state.load(std::memory_order_relaxed);
    return __builtin_expect(s == 1, 1) ? false : s == 2 || running_slow();
}

// Client requests, for the index's own code to call only when running().
void guard(const void *p, size_t n) __attribute__((visibility("hidden")));  // no-access
void open(const void *p, size_t n) __attribute__((visibility("hidden")));   // readable, defined
void make_undefined(const void *p, size_t n) __attribute__((visibility("hidden")));  // addressable, undefined
// A chunk of `size` requested bytes whose trailer was just written at `trailer_at`: memcheck's block
// (`block` bytes, as memcheck's malloc_usable_size said) shrinks to `size`, which also makes the padding
// and the trailer no-access.  A zero-sized chunk (memcheck refuses an empty block) or a block that is not
// memcheck's (another allocator behind the index, or `blind`: its allocator could not tell its size)
// gets only its trailer guarded.  Returns the record flags to add.
uint32_t guard_new_trailer(const void *base, size_t size, size_t block, uintptr_t trailer_at, bool blind)
    __attribute__((visibility("hidden")));
// Give the records' memory its protection.  memcheck scans for pointers to blocks in every mapping that is
// readable and writable, and would find each chunk's base in its record: every leak would look
// reachable.  So under memcheck the records are mapped PROT_WRITE alone, which x86-64 hardware (as any
// architecture valgrind runs on) still lets the index read, but which valgrind's leak scan skips.  (Its
// other documented means, an "address error disablement" range, ends every run with a warning that it
// is still in force.)
void protect_records(void *p, size_t n) __attribute__((visibility("hidden")));

}  // namespace memcheck
}  // namespace mallochooks::heapindex

#endif
