// SPDX-License-Identifier: MIT
// Index memory: where the index's own structures (thread states, the chunk index's directories and
// leaves) get their memory, straight from mmap, zeroed, accounted, never through the hooked allocator;
// and installed(), the lock-free "make it once" of a structure in a slot that chunk_index.h builds on.
#ifndef MALLOCHOOKS_INDEX_INDEX_MEMORY_H
#define MALLOCHOOKS_INDEX_INDEX_MEMORY_H

#include <stddef.h>

#include <atomic>

namespace mallochooks::heapindex {

// Within the process's limits, may the index map `bytes` more?  Below a finite RLIMIT_AS or RLIMIT_DATA
// the index leaves the program a headroom (an eighth of the limit, 16 to 256 MiB): its own memory never
// takes the last of what the program's allocator needs.  Asked before every mapping (reads
// /proc/self/statm only when a limit is set).  Refused, the index leaves new chunks unindexed.
bool index_memory_fits(size_t bytes) __attribute__((visibility("hidden")));

// mmap'd zeroed memory for the index (nullptr on failure or refusal), accounted in `mapped`.
void *map_index_memory(size_t bytes, std::atomic<size_t> &mapped);
// On transparent huge pages from offset `huge_from` on (a multiple of 2 MiB; the head before it on small
// pages until promote_index_heads).
void *map_huge_index_memory(size_t bytes, std::atomic<size_t> &mapped, size_t huge_from = 0);

// The first 2 MiB of the records' range and of the first block of dense leaves are the index's *heads*:
// a small process touches a few of their pages and nothing else, and on huge pages they would cost it 4
// MiB of RSS (two huge pages) for a handful of chunks.  So the heads start on small pages, registered
// here (MADV_NOHUGEPAGE, so THP "always" does not defeat it), and are promoted to huge pages
// (MADV_HUGEPAGE, then MADV_COLLAPSE where the kernel has it, 6.1
// on; otherwise khugepaged collapses them in its own time) once the process has promote_after_records
// records: from then on the heads are used densely and lookups save the TLB misses.
constexpr size_t index_head_bytes = size_t{2} << 20;
constexpr unsigned long promote_after_records = 16384;
void register_index_head(void *head) __attribute__((visibility("hidden")));
void promote_index_heads() __attribute__((visibility("hidden")));
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
