// SPDX-License-Identifier: MIT
// The record pool (see record_pool.h).  Records live in one reserved range committed a segment at a
// time; nothing takes a lock, so a fork at any moment leaves the child a usable pool (a thread that was
// half-way through an operation in the parent simply does not exist in the child: at worst a batch of ids
// is lost).
//
// Global batches: a batch is a chain of free records linked through record::link; its first record's
// `seq` field holds the first id of the next batch on the stack.  Records enter the global pool as free
// (no longer tombstones), so borrowing a field for the stack link misleads no reader.  The stack's head
// carries a tag bumped by every change, so a pop that read a stale link fails its CAS (no ABA).
#include "index/record_pool.h"

#include <errno.h>
#include <sys/mman.h>

namespace mallochooks::heapindex {

constinit record_pool record_pool_instance;

bool record_pool::reserve() {
    if (base_.load(std::memory_order_acquire) != nullptr) return true;
    const int saved = errno;
    // PROT_NONE and MAP_NORESERVE: address space only, no memory and no commit charge until commit().
    // Aligned to 2 MiB, so that each segment can be backed by transparent huge pages.
    constexpr size_t huge = size_t{2} << 20;
    void *m = MAP_FAILED;
    size_t bytes = sizeof(record) << 32;
    for (; bytes >= sizeof(record) << (segment_shift + 4); bytes /= 2) {
        m = mmap(nullptr, bytes + huge, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (m != MAP_FAILED) break;
    }
    errno = saved;
    if (m == MAP_FAILED) return false;
    // Out of core files until committed (docs/heapindex.md, Core files): gcore would write the whole range.
    madvise(m, bytes + huge, MADV_DONTDUMP);
    const uintptr_t start = reinterpret_cast<uintptr_t>(m), aligned = (start + huge - 1) & ~(huge - 1);
    record *expected = nullptr;
    if (!base_.compare_exchange_strong(expected, reinterpret_cast<record *>(aligned), std::memory_order_acq_rel)) {
        munmap(m, bytes + huge);  // another thread reserved first
        errno = saved;
        return true;
    }
    capacity_.store(bytes / sizeof(record), std::memory_order_release);
    return true;
}

// Make a segment's records usable.  mprotect is idempotent: two threads that both find the segment
// uncommitted both commit it, and neither waits for the other (no lock a fork could leave held).
bool record_pool::commit(unsigned segment) {
    if (committed_[segment].load(std::memory_order_acquire)) return true;
    constexpr size_t bytes = sizeof(record) << segment_shift;
    void *at = base_.load(std::memory_order_acquire) + (size_t{segment} << segment_shift);
    const int saved = errno;
    const bool ok = mprotect(at, bytes, PROT_READ | PROT_WRITE) == 0;
    // Records are used densely (ids are handed out in order) and a lookup reads one at random: huge
    // pages, where the system allows them (THP "madvise" mode), save lookups a TLB miss.
    if (ok) madvise(at, bytes, MADV_HUGEPAGE);
    if (ok) madvise(at, bytes, MADV_DODUMP);  // in use now: in core files again
    errno = saved;
    if (ok && !committed_[segment].exchange(true, std::memory_order_acq_rel)) mapped_.fetch_add(bytes, std::memory_order_relaxed);
    return ok;
}

bool record_pool::grab_fresh(uint32_t *first) {
    if (!reserve()) return false;
    const uint64_t id = fresh_.fetch_add(thread_state::batch, std::memory_order_relaxed);
    if (id + thread_state::batch > capacity_.load(std::memory_order_acquire)) return false;  // the range is full
    // Batches are 64-aligned and segments hold a multiple of 64 records: a batch never straddles two.
    if (!commit(unsigned(id >> segment_shift))) return false;
    *first = uint32_t(id);
    return true;
}

uint32_t record_pool::pop_batch() {
    uint64_t head = batches_.load(std::memory_order_acquire);
    while (uint32_t(head) != 0) {
        // If another thread popped this batch meanwhile, the link read here may be anything; the tag
        // makes the CAS fail then.
        const uint32_t next = uint32_t(get(uint32_t(head))->seq.get());
        if (batches_.compare_exchange_weak(head, ((head >> 32) + 1) << 32 | next, std::memory_order_acq_rel))
            return uint32_t(head);
    }
    return 0;
}

void record_pool::push_batch(uint32_t first) {
    uint64_t head = batches_.load(std::memory_order_relaxed);
    do {
        get(first)->seq.set(uint32_t(head));
    } while (!batches_.compare_exchange_weak(head, ((head >> 32) + 1) << 32 | first, std::memory_order_acq_rel));
}

bool record_pool::fill_spare(thread_state *t) {
    uint32_t id = pop_batch();
    if (id != 0) {
        while (id != 0 && t->spare_count < thread_state::batch) {
            t->spare[t->spare_count++] = id;
            id = get(id)->link.load(std::memory_order_relaxed);
        }
        return true;
    }
    uint32_t first;
    if (!grab_fresh(&first)) return false;
    for (uint32_t i = thread_state::batch; i-- > 0;) t->spare[t->spare_count++] = first + i;
    return true;
}

// Chain ids into a batch and push it: each becomes free (a new generation, so no reader takes it for a
// tombstone any more) and links to the next.
void record_pool::push_ids(const uint32_t *ids, unsigned n) {
    if (n == 0) return;
    for (unsigned i = 0; i < n; ++i) {
        record *r = get(ids[i]);
        r->word.store(next_generation(r->word.load(std::memory_order_relaxed)) | rs_free, std::memory_order_release);
        r->link.store(i + 1 < n ? ids[i + 1] : 0, std::memory_order_relaxed);
    }
    push_batch(ids[0]);
}

uint32_t record_pool::take_slow(thread_state *t) {
    if (t != nullptr) {
        if (t->spare_count == 0 && !fill_spare(t)) return 0;
        return t->spare[--t->spare_count];
    }
    // No thread state (a thread past its exit destructor): one id from a global batch, the rest back.
    uint32_t id = pop_batch();
    if (id != 0) {
        const uint32_t rest = get(id)->link.load(std::memory_order_relaxed);
        if (rest != 0) push_batch(rest);
        return id;
    }
    uint32_t first;
    if (!grab_fresh(&first)) return 0;
    uint32_t ids[thread_state::batch - 1];
    for (unsigned i = 0; i + 1 < thread_state::batch; ++i) ids[i] = first + 1 + i;
    push_ids(ids, thread_state::batch - 1);
    return first;
}

void record_pool::give_slow(thread_state *t, uint32_t id) {
    if (t == nullptr) return push_ids(&id, 1);
    // The ring is full (the thread frees more than it allocates): its oldest batch goes to the global pool.
    uint32_t ids[thread_state::batch];
    for (unsigned i = 0; i < thread_state::batch; ++i) ids[i] = t->ring[t->head++ % thread_state::ring_size];
    push_ids(ids, thread_state::batch);
    give(t, id);
}

void record_pool::drain(thread_state *t) {
    uint32_t ids[thread_state::batch];
    unsigned n = 0;
    while (t->head != t->tail) {
        ids[n++] = t->ring[t->head++ % thread_state::ring_size];
        if (n == thread_state::batch) push_ids(ids, n), n = 0;
    }
    push_ids(ids, n);
    push_ids(t->spare, t->spare_count);
    t->head = t->tail = t->spare_count = 0;
}

uint64_t record_pool::refill_seq(thread_state *t) {
    if (t == nullptr) return seq_.fetch_add(1, std::memory_order_relaxed);
    t->seq_next = seq_.fetch_add(thread_state::seq_block, std::memory_order_relaxed);
    t->seq_end = t->seq_next + thread_state::seq_block;
    return t->seq_next++;
}

}  // namespace mallochooks::heapindex
