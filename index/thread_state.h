// SPDX-License-Identifier: MIT
// Per-thread state of the index: a thread's caches of record ids (the ring of its freed records, in age
// order, and a few fresh ids), its block of sequence numbers, its cached thread id and its counters
// (counters.h).  Found through initial-exec TLS, starting as a constant sentinel so that no code must
// run first; made on a thread's first general-path call from mmap'd memory, handed back at thread exit
// by a pthread key destructor (thread_state.cc) and reused by later threads.  Nothing here takes a lock.
#ifndef MALLOCHOOKS_INDEX_THREAD_STATE_H
#define MALLOCHOOKS_INDEX_THREAD_STATE_H

#include <stddef.h>
#include <stdint.h>

#include <atomic>

namespace mallochooks::heapindex {

// Per-thread state: record caches, a block of sequence numbers, the thread id, statistics.
struct thread_state {
    static constexpr unsigned ring_size = 512;   // freed records, oldest first (a power of two)
    static constexpr unsigned quarantine = 256;  // ... of which the newest are kept as tombstones
    static constexpr unsigned batch = 64;        // ids moved to and from the global pool at once
    static constexpr uint64_t seq_block = 1024;

    uint32_t ring[ring_size];  // ring[head % ring_size .. tail % ring_size): freed ids in age order
    uint32_t head, tail;       // free-running
    uint32_t spare[batch];     // fresh ids from the global pool, for when the ring is no fuller than the quarantine
    uint32_t spare_count;
    uint32_t tid;
    uint64_t seq_next, seq_end;
    // Bytes until the heap profile wants this thread's next allocation (profile.h): malloc's fast path
    // subtracts each size and leaves it when the result is negative.  0 in a new state.
    int64_t stack_countdown;
    // Written by the owner only (load + store, no read-modify-write), summed by heapindex_stats.
    std::atomic<uint64_t> allocations, frees, bytes_allocated, bytes_freed;
    thread_state *next_all;   // every state ever made, for statistics
    thread_state *next_free;  // states of exited threads, for reuse
};

// This thread's state as the fast paths see it, never null: a thread without one (yet, or any more)
// points at the constant sentinel `no_thread_state`, whose ring reads full and whose block of sequence
// numbers reads empty, so every fast path leaves for its general path without a test of its own (as
// mimalloc's threads start on a constant empty heap).  initial-exec TLS: see libmallochooks/guard.h.
extern const thread_state no_thread_state __attribute__((visibility("hidden")));
extern __thread thread_state *my_thread_state __attribute__((visibility("hidden"), tls_model("initial-exec")));

// This thread's state for the general paths: made on first use; nullptr on a thread that has already run
// its exit destructor (then the pool works on its global structures directly).
thread_state *make_thread_state() __attribute__((visibility("hidden")));
inline thread_state *this_thread() {
    thread_state *t = my_thread_state;
    return __builtin_expect(t != &no_thread_state, 1) ? t : make_thread_state();
}

// Every thread state ever made (for statistics), newest first; and the memory they take.
thread_state *all_thread_states();
std::atomic<thread_state *> *thread_state_list();  // the list's head itself (layout.cc)
size_t thread_state_bytes();

// Refresh the cached thread id after fork (the child's only thread is the one that forked).
void thread_state_after_fork();

// Current thread's kernel thread id, cached.
uint32_t uncached_tid() __attribute__((visibility("hidden")));
inline uint32_t current_tid(thread_state *t) { return __builtin_expect(t != nullptr, 1) ? t->tid : uncached_tid(); }

}  // namespace mallochooks::heapindex

#endif
