// SPDX-License-Identifier: MIT
// The heap profile's per-thread block (pending counter deltas, remembered walks, the temporary test's
// state) and the common cases of recording a chunk's stack and of its release with every allocation
// stacked (HEAPINDEX_STACKS=N without sampling), inline: stacked_fast in profile.cc's on_countdown_then,
// released_fast in the layer's free_checked (heapindex_layer.h), where a call to the profile, with the
// registers it saves on both sides, cost about as much as the release's own work.  Anything these do not
// cover goes to the out-of-line paths of profile.h (released_by_slow, on_countdown).  Internal to the
// library: profile.cc owns these structures; docs/heap-profiles.md says why they are so.
#ifndef MALLOCHOOKS_INDEX_PROFILE_THREAD_H
#define MALLOCHOOKS_INDEX_PROFILE_THREAD_H

#include <stddef.h>
#include <stdint.h>

#include <atomic>

#include "index/counters.h"
#include "index/record.h"
#include "index/stack_depot.h"
#include "index/thread_state.h"
#include "index/unwind.h"
#include "mallochooks/heapindex.h"

namespace mallochooks::heapindex::profile {

// ---- per-thread pending counter deltas (profile.cc) ------------------------------------------------------

// A pending slot keeps what was allocated and what was freed, not the live figures: an allocation adds
// to two words (allocations, bytes), a free to two or three (freed chunks and bytes, temporaries), where
// live counters would take five each; live = allocated - freed when the slot is read (to_counters).
enum delta { d_allocations, d_bytes, d_temporaries, d_freed_bytes, d_freed_chunks, n_deltas };

struct pending {
    std::atomic<uint32_t> stack;
    std::atomic<int64_t> v[n_deltas];
};

struct delta_block {
    static constexpr unsigned slots = 256;
    pending slot[slots];
    // The stacks this thread interned last (direct-mapped by innermost frame): a loop allocating from one place
    // finds its stack here, without the depot's shared table.
    static constexpr unsigned recent = 64;
    uint32_t recent_id[recent];
    // The last walks (unwind.h) and the stacks they gave, in sets of 4 (memo_set) chosen by the allocation
    // site (the hooks' caller) and the stack's depth (on_countdown's CFA): a program allocating
    // from a few places in turn, or through one wrapper from a few depths, finds each one's stack again;
    // so does one allocating through a wrapper from a few places at the same depth (perl: most of its
    // allocations are Perl_safesysmalloc's, 9 to 12 frames deep), which one walk per key did not.
    static constexpr unsigned walks = 16;
    unwind::memo_set walk[walks];
    // (Fibonacci hashing of the two's low 32 bits: the product's top bits mix them all.)
    static unsigned walk_slot(const void *caller, uintptr_t cfa) {
        static_assert(walks == 16);
        return uint32_t(uint32_t(reinterpret_cast<uintptr_t>(caller) ^ cfa) * 0x9e3779b1u) >> 28;
    }
    static unsigned free_walk_slot(const void *caller, uintptr_t cfa) {
        static_assert(free_walks == 8);
        return uint32_t(uint32_t(reinterpret_cast<uintptr_t>(caller) ^ cfa) * 0x9e3779b1u) >> 29;
    }
    // The same for the stacks this thread freed from (on_stacked_release), by the same key: a program
    // freeing from a few places in turn (churn frees from four) finds each one's stack again.  With one
    // remembered walk, every allocation stacked cost about 1040 instructions per churn operation, 850
    // without the freeing stacks.
    static constexpr unsigned free_walks = 8;
    unwind::memo_set free_walk[free_walks];
    // For the temporary test (count_release): the last chunk this thread gave a stack (its record id) and
    // the thread's next sequence number then, and that number at the thread's last release of a chunk
    // with a stack.  Reset when the block passes to another thread.
    uint32_t last_stacked_id;
    uint64_t last_stacked_next, last_release_at;
    delta_block *next_all;
    delta_block *next_free;
};

// This thread's block (made on its first stacked allocation, profile.cc), null before and after.
extern __thread delta_block *my_deltas __attribute__((visibility("hidden"), tls_model("initial-exec")));

// Set once by profile::start, before any thread but the first runs:
//   every_fast         every allocation stacked, with whole stacks and freeing stacks, and both side arrays
//                      cover every record id (2^32): the fast paths apply, with no test of the id;
//   stack_of           the allocation stack of each record (a side array indexed by record id; its capacity);
//   freed_by           the stack that freed each chunk with an allocation stack, for heap-error reports.
extern bool every_fast __attribute__((visibility("hidden")));
extern std::atomic<uint32_t> *stack_of __attribute__((visibility("hidden")));
extern uint64_t stack_of_capacity __attribute__((visibility("hidden")));
extern std::atomic<uint32_t> *freed_by __attribute__((visibility("hidden")));

// released_by when released_fast did not apply (profile.cc).
void released_by_slow(thread_state *t, uint32_t id, record *r, const void *caller, uintptr_t cfa)
    __attribute__((visibility("hidden"), noinline));

// Temporary, as heaptrack counts them: freed before its thread allocated or freed anything else.  No
// allocation since: the chunk is the last one this thread gave a stack, and the thread's next sequence
// number is still what it was then.  No free since: the last release on this thread happened before that
// (last_release_at, the thread's next sequence number then).  Frees of chunks without a stack are not
// seen (sampling): with sampled stacks a chunk freed right after one of those still counts as temporary.
// A thread without its state or its block counts none.
__attribute__((always_inline)) inline bool temporary_release(delta_block *b, thread_state *t, uint32_t id) {
    const uint64_t next = t->seq_next;
    const bool temporary = b->last_stacked_id == id && b->last_stacked_next == next && b->last_release_at != next;
    b->last_release_at = next;
    return temporary;
}

// This thread's pending slot for stack `sid` in its block `b`, whoever holds it.
inline pending &pending_in(delta_block *b, uint32_t sid) { return b->slot[(sid ^ (sid >> 8)) & (delta_block::slots - 1)]; }

// released_by with every allocation stacked, in the common case: the freeing stack is the one of the walk
// the set predicts, and the chunk's stack holds its pending slot.  No call, no frame of its own worth
// speaking of (the slow path, on anything else, is a tail call): the freeing stack's check is about five
// instructions a frame and the rest about forty.  False, with nothing done, when it does not apply.
__attribute__((always_inline)) inline bool released_fast(thread_state *t, uint32_t id, record *r, const void *caller,
                                                         uintptr_t cfa) {
    delta_block *b = my_deltas;
    if (__builtin_expect(!every_fast || b == nullptr || t == nullptr, 0)) return false;
    unwind::memo_set *set = &b->free_walk[delta_block::free_walk_slot(caller, cfa)];
    const unsigned j = set->next[set->last];
    if (__builtin_expect(!unwind::same_walk(set->way[j], cfa, caller), 0)) return false;
    const uint32_t sid = stack_of[id].load(std::memory_order_relaxed);
    pending &p = pending_in(b, sid);
    if (__builtin_expect(sid == 0 || p.stack.load(std::memory_order_relaxed) != sid, 0)) return false;
    set->last = uint8_t(j);
    const bool temporary = temporary_release(b, t, id);
    bump(p.v[d_freed_bytes], int64_t(r->size()));
    bump(p.v[d_freed_chunks], int64_t(count_unit));
    if (temporary) bump(p.v[d_temporaries], int64_t(count_unit));
    freed_by[id].store(set->stack[j], std::memory_order_relaxed);
    return true;
}

// on_countdown with every allocation stacked, in the common case: the stack is the one of the walk the
// set predicts, and holds its pending slot.  As released_fast: false, with nothing done, otherwise.
__attribute__((always_inline)) inline bool stacked_fast(thread_state *t, uint32_t id, record *r, size_t size, const void *caller,
                                                        uintptr_t cfa) {
    delta_block *b = my_deltas;
    if (__builtin_expect(!every_fast || b == nullptr, 0)) return false;
    unwind::memo_set *set = &b->walk[delta_block::walk_slot(caller, cfa)];
    const unsigned j = set->next[set->last];
    if (__builtin_expect(!unwind::same_walk(set->way[j], cfa, caller), 0)) return false;
    const uint32_t sid = set->stack[j];
    pending &p = pending_in(b, sid);
    if (__builtin_expect(sid == 0 || p.stack.load(std::memory_order_relaxed) != sid, 0)) return false;
    set->last = uint8_t(j);
    t->stack_countdown = -1;  // every allocation (next_countdown)
    bump(p.v[d_allocations], int64_t(count_unit));
    bump(p.v[d_bytes], int64_t(size));
    stack_of[id].store(sid, std::memory_order_relaxed);
    b->last_stacked_id = id;
    b->last_stacked_next = t->seq_next;
    // Off free's fast path: HEAPINDEX_FLAG_STACK is in the flags its test masks (heapindex_layer.h's
    // by_free, by_delete), so a stacked chunk's free goes to free_checked, which calls released_fast.
    r->add_flags(HEAPINDEX_FLAG_STACK);
    return true;
}

}  // namespace mallochooks::heapindex::profile

#endif
