// SPDX-License-Identifier: MIT
// The record pool and per-thread state (see records.h).  Everything comes from mmap; nothing takes a
// lock, so a fork at any moment leaves the child a usable pool (a thread that was half-way through an
// operation in the parent simply does not exist in the child: at worst a batch of ids is lost).
//
// Global batches: a batch is a chain of free records linked through record::link; its first record's
// `seq` field holds the first id of the next batch on the stack.  Records enter the global pool as free
// (no longer tombstones), so borrowing a field for the stack link misleads no reader.  The stack's head
// carries a tag bumped by every change, so a pop that read a stale link fails its CAS (no ABA).
#include "index/records.h"

#include "index/trailer.h"

#include <errno.h>
#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>

#include "libmallochooks/guard.h"

namespace mallochooks::heapindex {

// Every field zero but `tail`: the ring reads full (free's fast path leaves), the sequence block reads
// empty (admit's fast path leaves).  const: a write through it would fault, not corrupt.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"  // the others are zero, on purpose
constinit const thread_state no_thread_state = {.tail = thread_state::ring_size};
#pragma GCC diagnostic pop
__thread thread_state *my_thread_state = const_cast<thread_state *>(&no_thread_state);
constinit record_pool record_pool_instance;

namespace {

constinit global_counters globals;

// initial-exec: see libmallochooks/guard.h (a global-dynamic access may call malloc).  `exited` marks a
// thread whose state was handed back at thread exit: later frees on it (glibc frees thread-local buffers
// after the key destructors ran) use the global structures rather than making a state nobody releases.
__thread bool exited __attribute__((tls_model("initial-exec")));

std::atomic<thread_state *> all_states{nullptr};
std::atomic<uint64_t> free_states{0};  // tag << 48 | thread_state pointer (user addresses fit in 48 bits)
std::atomic<size_t> state_mapped{0};
constexpr uint64_t ptr_mask = (uint64_t{1} << 48) - 1;
constexpr size_t state_bytes = (sizeof(thread_state) + 4095) & ~size_t{4095};

std::atomic<int> key_state{0};  // 0 none, 1 being created, 2 created, 3 failed
pthread_key_t exit_key;

void on_thread_exit(void *arg) {
    thread_state *t = static_cast<thread_state *>(arg);
    if (t == nullptr) return;
    reentrancy_guard guard;
    record_pool_instance.drain(t);
    // Its counters stay: statistics sum every state ever made.
    my_thread_state = const_cast<thread_state *>(&no_thread_state);
    exited = true;
    uint64_t head = free_states.load(std::memory_order_acquire);
    do {
        t->next_free = reinterpret_cast<thread_state *>(head & ptr_mask);
    } while (!free_states.compare_exchange_weak(
        head, ((head >> 48) + 1) << 48 | reinterpret_cast<uint64_t>(t), std::memory_order_acq_rel));
}

void register_exit(thread_state *t) {
    int s = key_state.load(std::memory_order_acquire);
    if (s == 0 && key_state.compare_exchange_strong(s, 1, std::memory_order_acq_rel)) {
        // pthread_key_create neither allocates nor locks; run it once, by whoever gets here first.
        s = pthread_key_create(&exit_key, on_thread_exit) == 0 ? 2 : 3;
        key_state.store(s, std::memory_order_release);
    }
    // Not created yet (another thread is at it right now) or failed: this state is never handed back,
    // a few KiB for a thread racing the process's very first allocations.
    if (s != 2) return;
    // pthread_setspecific allocates a second-level table for keys beyond the first 32: guarded, that
    // allocation goes straight to the allocator.
    reentrancy_guard guard;
    pthread_setspecific(exit_key, t);
}

}  // namespace

thread_state *make_thread_state() {
    if (exited) return nullptr;
    thread_state *t = nullptr;
    uint64_t head = free_states.load(std::memory_order_acquire);
    while ((head & ptr_mask) != 0) {
        thread_state *top = reinterpret_cast<thread_state *>(head & ptr_mask);
        thread_state *next = top->next_free;  // may be stale: the tagged CAS then fails
        if (free_states.compare_exchange_weak(head, ((head >> 48) + 1) << 48 | reinterpret_cast<uint64_t>(next),
                                              std::memory_order_acq_rel)) {
            t = top;
            break;
        }
    }
    if (t == nullptr) {
        t = static_cast<thread_state *>(map_index_memory(state_bytes, state_mapped));
        if (t == nullptr) return nullptr;
        thread_state *first = all_states.load(std::memory_order_relaxed);
        do {
            t->next_all = first;
        } while (!all_states.compare_exchange_weak(first, t, std::memory_order_acq_rel));
    }
    t->tid = uint32_t(gettid());
    t->seq_next = t->seq_end = 0;
    t->head = t->tail = t->spare_count = 0;
    my_thread_state = t;
    register_exit(t);
    return t;
}

global_counters &counters() { return globals; }
thread_state *all_thread_states() { return all_states.load(std::memory_order_acquire); }
size_t thread_state_bytes() { return state_mapped.load(std::memory_order_relaxed); }

void thread_state_after_fork() {
    if (my_thread_state != &no_thread_state) my_thread_state->tid = uint32_t(gettid());
}

uint32_t uncached_tid() { return uint32_t(gettid()); }

void *map_index_memory(size_t bytes, std::atomic<size_t> &mapped) {
    const int saved = errno;  // a successful allocation must leave errno as the allocator left it
    void *m = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    errno = saved;
    if (m == MAP_FAILED) return nullptr;
    mapped.fetch_add(bytes, std::memory_order_relaxed);
    return m;
}

// Records are used densely (ids are handed out in order), and a lookup reads one at random: back them
// with transparent huge pages where the system allows it (THP "madvise" mode), which saves lookups a TLB
// miss.  `bytes` must be a multiple of 2 MiB; the mapping is trimmed to 2 MiB alignment.
void *map_huge_index_memory(size_t bytes, std::atomic<size_t> &mapped) {
    constexpr size_t huge = size_t{2} << 20;
    const int saved = errno;
    void *m = mmap(nullptr, bytes + huge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) {
        errno = saved;
        return nullptr;
    }
    const uintptr_t start = reinterpret_cast<uintptr_t>(m), aligned = (start + huge - 1) & ~(huge - 1);
    if (aligned != start) munmap(m, aligned - start);
    if (aligned + bytes != start + bytes + huge) munmap(reinterpret_cast<void *>(aligned + bytes), start + huge - aligned);
    madvise(reinterpret_cast<void *>(aligned), bytes, MADV_HUGEPAGE);
    errno = saved;
    mapped.fetch_add(bytes, std::memory_order_relaxed);
    return reinterpret_cast<void *>(aligned);
}

namespace {
// A block of dense index memory: this header, then carved pieces.  `current` only ever moves to a newer
// block; a thread whose piece does not fit any more maps a new block and tries to install it (the loser
// of that race unmaps its own, unused, block).
struct dense_block {
    std::atomic<size_t> used;
    size_t size;
};
constexpr size_t dense_block_bytes = size_t{4} << 20;
std::atomic<dense_block *> dense_current{nullptr};
std::atomic<size_t> dense_blocks_mapped{0};
}  // namespace

size_t dense_index_bytes() { return dense_blocks_mapped.load(std::memory_order_relaxed); }

void *carve_dense_index_memory(size_t bytes) {
    bytes = (bytes + 63) & ~size_t{63};
    if (bytes > dense_block_bytes / 2)
        return map_huge_index_memory((bytes + (size_t{2} << 20) - 1) & ~((size_t{2} << 20) - 1), dense_blocks_mapped);
    for (;;) {
        dense_block *b = dense_current.load(std::memory_order_acquire);
        if (b != nullptr) {
            const size_t at = b->used.fetch_add(bytes, std::memory_order_relaxed);
            if (at + bytes <= b->size) return reinterpret_cast<char *>(b) + at;
        }
        void *m = map_huge_index_memory(dense_block_bytes, dense_blocks_mapped);
        if (m == nullptr) return nullptr;
        dense_block *fresh = static_cast<dense_block *>(m);
        fresh->used.store(64, std::memory_order_relaxed);
        fresh->size = dense_block_bytes;
        if (!dense_current.compare_exchange_strong(b, fresh, std::memory_order_acq_rel))
            unmap_index_memory(m, dense_block_bytes, dense_blocks_mapped);
    }
}

void unmap_index_memory(void *p, size_t bytes, std::atomic<size_t> &mapped) {
    const int saved = errno;
    munmap(p, bytes);
    errno = saved;
    mapped.fetch_sub(bytes, std::memory_order_relaxed);
}

// ---- statistics ----------------------------------------------------------------------------------------

void count_orphan(int64_t bytes) {  // a thread past its exit destructor: straight to the global counters
    if (bytes >= 0) {
        globals.orphan_allocations.fetch_add(1, std::memory_order_relaxed);
        globals.orphan_bytes_allocated.fetch_add(uint64_t(bytes), std::memory_order_relaxed);
    } else {
        globals.orphan_frees.fetch_add(1, std::memory_order_relaxed);
        globals.orphan_bytes_freed.fetch_add(uint64_t(-bytes), std::memory_order_relaxed);
    }
}

uint64_t live_bytes_now() {
    uint64_t in = globals.orphan_bytes_allocated.load(std::memory_order_relaxed);
    uint64_t out = globals.orphan_bytes_freed.load(std::memory_order_relaxed);
    for (thread_state *t = all_states.load(std::memory_order_acquire); t != nullptr; t = t->next_all) {
        in += t->bytes_allocated.load(std::memory_order_relaxed);
        out += t->bytes_freed.load(std::memory_order_relaxed);
    }
    return in > out ? in - out : 0;  // threads' counters are read at slightly different times
}

void sample_peak() {
    const uint64_t now = live_bytes_now();
    uint64_t peak = globals.peak_live_bytes.load(std::memory_order_relaxed);
    while (now > peak && !globals.peak_live_bytes.compare_exchange_weak(peak, now, std::memory_order_relaxed)) {
    }
}

// ---- record pool ---------------------------------------------------------------------------------------

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
    fill_check_words(t->checks, t->seq_next, t->seq_end);
    return t->seq_next++;
}

}  // namespace mallochooks::heapindex
