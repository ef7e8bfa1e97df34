// SPDX-License-Identifier: MIT
// The record pool (see record_pool.h).  Records live in segments mapped as ids are handed out; nothing
// takes a lock, so a fork at any moment leaves the child a usable pool (a thread that was
// half-way through an operation in the parent simply does not exist in the child: at worst a batch of ids
// is lost).
//
// Global batches: a batch is a chain of free records linked through their tail words; its first record's
// word 2 holds the first id of the next batch on the stack.  Records enter the global pool as free
// (no longer tombstones), so borrowing a field for the stack link misleads no reader.  The stack's head
// carries a tag bumped by every change, so a pop that read a stale link fails its CAS (no ABA).
#include "index/record_pool.h"

#include "index/trailer.h"

#include <errno.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "index/index_memory.h"
#include "index/memcheck.h"
#include "index/trailer.h"

namespace mallochooks::heapindex {

constinit record_pool record_pool_instance;

namespace {

constexpr size_t segment_bytes = sizeof(record) << record_pool::segment_shift;

// A mapping of `bytes` exactly at `at`, or nullptr: MAP_FIXED_NOREPLACE where the kernel knows it, else
// (an older kernel, or valgrind, takes it for a hint) the address checked and a misplaced mapping undone.
void *map_exactly_at(uintptr_t at, size_t bytes) {
    void *want = reinterpret_cast<void *>(at);
    void *m = mmap(want, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
    if (m == want) return m;
    if (m != MAP_FAILED) munmap(m, bytes);
    if (m == MAP_FAILED && errno == EEXIST) return nullptr;
    m = mmap(want, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == want) return m;
    if (m != MAP_FAILED) munmap(m, bytes);
    return nullptr;
}

// Where the range may start: a random 2 MiB-aligned address in [lo, 2 lo) for each lo, highest first.
constexpr uintptr_t start_areas[] = {uintptr_t{1} << 44, uintptr_t{1} << 40, uintptr_t{1} << 37, uintptr_t{1} << 34};

}  // namespace

// Map a segment, unless it is.  The thread that claims it maps it; a thread that finds it being mapped
// does not wait (no lock a signal handler or a fork could leave held) and gets no fresh ids this time;
// grab_fresh maps one segment ahead, so that this only happens at the very first segment or once a
// mapping ahead was refused.  Segment 0 chooses the range's place; each later one goes right after the
// one before.  Transparent huge pages where the system allows them (THP "madvise" mode): records are used
// densely and a lookup reads one at random, and a huge page saves it a TLB miss.
bool record_pool::map_segment(unsigned segment) {
    std::atomic<uint8_t> &state = segment_state_[segment];
    uint8_t s = state.load(std::memory_order_acquire);
    if (s != 0 || !state.compare_exchange_strong(s, 1, std::memory_order_acq_rel)) return s == 2;
    mapping_now_.fetch_add(1, std::memory_order_relaxed);
    const int saved = errno;
    void *m = nullptr;
    bool collided = false;
    if (!index_memory_fits(segment_bytes)) {
        // refused: the range stays as it is, and a later call asks again
    } else if (segment == 0) {
        // The random part of the place: its own bytes, not the trailer key's (the place is visible in
        // /proc/self/maps, the key must not be).  getrandom allocates nothing; the clock if it fails.
        uint64_t random = 0;
        if (syscall(SYS_getrandom, &random, sizeof random, GRND_NONBLOCK) != long(sizeof random))
            random = uint64_t(__builtin_ia32_rdtsc()) * 0x9e3779b97f4a7c15ull;
        for (uintptr_t lo : start_areas) {
            const uintptr_t at = lo + ((random >> 20) & (lo - 1) & ~((uintptr_t{2} << 20) - 1));
            random = random * 6364136223846793005ull + 1442695040888963407ull;
            if ((m = map_exactly_at(at, segment_bytes)) != nullptr) break;
        }
        if (m == nullptr) m = mmap(nullptr, segment_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (m == MAP_FAILED) m = nullptr;
        if (m != nullptr) base_.store(static_cast<record *>(m), std::memory_order_release);
    } else {
        const uintptr_t at = reinterpret_cast<uintptr_t>(base_.load(std::memory_order_acquire)) + segment * segment_bytes;
        m = map_exactly_at(at, segment_bytes);
        collided = m == nullptr && errno == EEXIST;  // something else lives there: the range is full
    }
    if (m != nullptr) {
        // Segment 0's head stays on small pages until the process is big (index_memory.h).
        if (segment == 0) {
            madvise(static_cast<char *>(m) + index_head_bytes, segment_bytes - index_head_bytes, MADV_HUGEPAGE);
            madvise(m, index_head_bytes, MADV_NOHUGEPAGE);  // also under THP "always"
            register_index_head(m);
        } else {
            madvise(m, segment_bytes, MADV_HUGEPAGE);
        }
        memcheck::protect_records(m, segment_bytes);
        mapped_.fetch_add(segment_bytes, std::memory_order_relaxed);
    } else if (collided) {
        uint64_t cap = capacity_.load(std::memory_order_relaxed);
        const uint64_t here = uint64_t{segment} << segment_shift;
        while (here < cap && !capacity_.compare_exchange_weak(cap, here, std::memory_order_relaxed)) {
        }
    }
    errno = saved;
    state.store(m != nullptr ? 2 : collided ? 3 : 0, std::memory_order_release);
    mapping_now_.fetch_sub(1, std::memory_order_relaxed);
    return m != nullptr;
}

// The child's only thread runs this before anything else: no race.  Segment 0 was placed if base_ is set.
// A later segment found mapped at its place may be the vanished thread's work, or something else's that
// it had just found there: not knowing which, the range stops growing there (mincore fails with ENOMEM
// on an address that is not mapped); not mapped, it is claimable again.
void record_pool::after_fork_in_child() {
    if (mapping_now_.load(std::memory_order_relaxed) == 0) return;
    const int saved = errno;
    record *base = base_.load(std::memory_order_relaxed);
    for (unsigned segment = 0; segment < max_segments; ++segment) {
        if (segment_state_[segment].load(std::memory_order_relaxed) != 1) continue;
        uint8_t now = 0;
        if (segment == 0) {
            now = base != nullptr ? 2 : 0;
            if (now == 2) mapped_.fetch_add(segment_bytes, std::memory_order_relaxed);
        } else if (unsigned char in_core; base != nullptr &&
                   mincore(reinterpret_cast<char *>(base) + segment * segment_bytes, 4096, &in_core) == 0) {
            now = 3;
            const uint64_t here = uint64_t{segment} << segment_shift;
            if (here < capacity_.load(std::memory_order_relaxed)) capacity_.store(here, std::memory_order_relaxed);
        }
        segment_state_[segment].store(now, std::memory_order_relaxed);
    }
    mapping_now_.store(0, std::memory_order_relaxed);
    errno = saved;
}

bool record_pool::grab_fresh(uint32_t *first) {
    // The next batch's segment must be mapped before any of its ids is handed out; batches are 64-aligned
    // and segments hold a multiple of 64 records, so a batch never straddles two.  Once a segment is half
    // used, the next one is mapped ahead, so that threads crossing into it never find it being mapped.
    const uint64_t next = fresh_.load(std::memory_order_relaxed);
    if (next + thread_state::batch > capacity_.load(std::memory_order_relaxed)) return false;
    const unsigned segment = unsigned(next >> segment_shift);
    if (!map_segment(segment)) return false;
    if ((next & ((uint64_t{1} << segment_shift) - 1)) >= (uint64_t{1} << (segment_shift - 1)) && segment + 1 < max_segments &&
        segment_state_[segment + 1].load(std::memory_order_relaxed) == 0)
        map_segment(segment + 1);
    const uint64_t id = fresh_.fetch_add(thread_state::batch, std::memory_order_relaxed);
    if (id + thread_state::batch > capacity_.load(std::memory_order_relaxed)) return false;
    if (id < promote_after_records && id + thread_state::batch >= promote_after_records) promote_index_heads();
    if ((id >> segment_shift) != segment && !map_segment(unsigned(id >> segment_shift))) return false;
    *first = uint32_t(id);
    return true;
}

uint32_t record_pool::pop_batch() {
    uint64_t head = batches_.load(std::memory_order_acquire);
    while (uint32_t(head) != 0) {
        // If another thread popped this batch meanwhile, the link read here may be anything; the tag
        // makes the CAS fail then.
        const uint32_t next = uint32_t(get(uint32_t(head))->w_size.get());
        if (batches_.compare_exchange_weak(head, ((head >> 32) + 1) << 32 | next, std::memory_order_acq_rel))
            return uint32_t(head);
    }
    return 0;
}

void record_pool::push_batch(uint32_t first) {
    uint64_t head = batches_.load(std::memory_order_relaxed);
    do {
        get(first)->w_size.set(uint32_t(head));
    } while (!batches_.compare_exchange_weak(head, ((head >> 32) + 1) << 32 | first, std::memory_order_acq_rel));
}

bool record_pool::fill_spare(thread_state *t) {
    uint32_t id = pop_batch();
    if (id != 0) {
        while (id != 0 && t->spare_count < thread_state::batch) {
            t->spare[t->spare_count++] = id;
            id = uint32_t(get(id)->tail.get());
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
        r->head.store(r->head.load(std::memory_order_relaxed) & ~uint64_t{3}, std::memory_order_release);  // rs_free
        r->tail.set(i + 1 < n ? ids[i + 1] : 0);
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
        const uint32_t rest = uint32_t(get(id)->tail.get());
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
    for (unsigned i = 0; i < thread_state::batch; ++i) ids[i] = t->ring()[t->head++ % thread_state::ring_size];
    push_ids(ids, thread_state::batch);
    give(t, id);
}

void record_pool::drain(thread_state *t) {
    uint32_t ids[thread_state::batch];
    unsigned n = 0;
    while (t->head != t->tail) {
        ids[n++] = t->ring()[t->head++ % thread_state::ring_size];
        if (n == thread_state::batch) push_ids(ids, n), n = 0;
    }
    push_ids(ids, n);
    push_ids(t->spare, t->spare_count);
    t->head = t->tail = t->spare_count = 0;
}

// Under memcheck a thread gets no block: its block stays empty, so that every allocation takes admit's
// general path, which guards the trailer (memcheck.h).
uint64_t record_pool::refill_seq(thread_state *t) {
    if (t == nullptr || memcheck::running()) return seq_.fetch_add(1, std::memory_order_relaxed);
    t->seq_next = seq_.fetch_add(thread_state::seq_block, std::memory_order_relaxed);
    // A block ends at a multiple of seq_block (the record's words share the bits above: set_block_bits);
    // a block taken after single numbers (a thread without state, memcheck) is cut short there.
    t->seq_end = (t->seq_next | (thread_state::seq_block - 1)) + 1;
    fill_check_words(t->checks, t->seq_next, t->seq_end);
    set_block_bits(t);
    return t->seq_next++;
}

}  // namespace mallochooks::heapindex
