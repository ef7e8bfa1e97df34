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
    // The ring of freed records, oldest first, of which the newest quarantine_limit are kept as
    // tombstones.  It lies right after the state in the same mapping (ring()): the constant sentinel
    // below has none, and a state's fields stay in their first cache lines.  16 KiB per thread: the
    // ring's index wraps over all of it whatever the quarantine (so a thread that frees much touches it).
    static constexpr unsigned ring_size = 4096;  // a power of two
    static constexpr unsigned batch = 64;        // ids moved to and from the global pool at once
    static constexpr unsigned default_quarantine = 256;
    static constexpr unsigned max_quarantine = ring_size - 2 * batch;  // room for a batch to move either way
    static constexpr unsigned seq_block = 1024;

    uint32_t *ring() { return reinterpret_cast<uint32_t *>(this + 1); }  // ring()[head % ring_size .. tail % ring_size)
    uint32_t head, tail;       // free-running
    uint32_t spare[batch];     // fresh ids from the global pool, for when the ring is no fuller than the quarantine
    uint32_t spare_count;
    uint32_t tid;
    uint64_t seq_next, seq_end;
    // The parts of a record's words 1, 2 and 3 that the block's numbers share (record.h: rec::
    // site_seq_bits, size_seq_bits, tail_seq_bits with the thread id): set with the block (and the thread
    // id after fork), so malloc's fast path ORs them in.  A block never crosses a multiple of 1024.
    // block_site_bits also has HEAPINDEX_FLAG_TRAILER, which every chunk of the fast path has (one OR
    // fewer in malloc's).
    uint64_t block_site_bits, block_size_bits, block_tail_bits;
    // The check words (trailer.h) of this thread's block of sequence numbers, word seq % seq_block:
    // filled when the block is taken, so allocation reads its check word with one load.
    uint32_t checks[seq_block];
    // Bytes until the heap profile wants this thread's next allocation (profile.h), counted down by
    // settle_events (counters.h), not by malloc's fast path.  0 in a new state.
    int64_t stack_countdown;
    // Bytes until the next event of either kind (the profile's countdown, or bytes_allocated crossing a
    // peak sample's boundary): the one countdown malloc's fast path subtracts each size from, leaving
    // when the result is negative; `event_armed` is what it was armed with (counters.h).  0 in a new
    // state: its first allocation settles and arms them.
    int64_t event_countdown, event_armed;
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
// (A plain assembler name: put_thread_state names it in assembler.)
extern __thread thread_state *my_thread_state __asm__("heapindex_my_thread_state")
    __attribute__((visibility("hidden"), tls_model("initial-exec")));

// A signal handler may allocate and free, and so run the index's code, at any instruction of the thread
// it interrupts, the index's own code included.  So a thread's state has one user at a time: a user
// takes it out of `my_thread_state`, which meanwhile points at a second constant sentinel,
// `busy_thread_state`, and puts it back when done (two stores: no atomic instruction, no lock, no
// test).  A handler that interrupts a use finds the sentinel: the fast paths leave for the general
// paths (it reads like no_thread_state), and the general paths work on the global structures, which are
// lock-free and so safe in a handler, as they do for a thread past its exit destructor.  Handlers nest,
// so uses nest: each puts back what it took.
extern const thread_state busy_thread_state __attribute__((visibility("hidden")));

inline thread_state *take_thread_state() {
    thread_state *t = my_thread_state;
    my_thread_state = const_cast<thread_state *>(&busy_thread_state);
    // Only a handler on this thread can look: a compiler barrier keeps every use of *t after the store.
    std::atomic_signal_fence(std::memory_order_seq_cst);
    return t;
}
inline void put_thread_state(thread_state *t) {
    std::atomic_signal_fence(std::memory_order_seq_cst);  // every use of *t before the store
    my_thread_state = t;
}
// The same, with the variable's TLS offset loaded again from the GOT rather than kept in a register
// since take_thread_state(): in malloc's fast path that register costs a callee-saved push and pop and a
// stack adjustment, 4 instructions against this one load (callgrind); free's fast path has it to spare.
inline void put_thread_state_reloading(thread_state *t) {
#if defined(__x86_64__)
    __asm__ __volatile__("movq heapindex_my_thread_state@gottpoff(%%rip), %%rax\n\tmovq %0, %%fs:(%%rax)"
                         :
                         : "r"(t)
                         : "rax", "memory");
#else
    put_thread_state(t);
#endif
}

// `x++` on a field of a state the caller has taken (a ring index, the next sequence number): the old
// value, and the field incremented by one add to memory (gcc keeps the loaded value, makes the new one
// with a lea and stores it: 3 instructions where this is 2; issue 13, third pass).
template <class T> inline T take_next(T &x) {
    const T old = x;
#if defined(__x86_64__)
    static_assert(sizeof(T) == 4 || sizeof(T) == 8);
    if constexpr (sizeof(T) == 4) __asm__ __volatile__("addl $1, %0" : "+m"(x));
    else __asm__ __volatile__("addq $1, %0" : "+m"(x));
#else
    x = old + 1;
#endif
    return old;
}

// This thread's state for the general paths, taken for the scope's duration (see above): made on first
// use; nullptr (use the global structures) while the thread's state is in use by the code a signal
// handler interrupted, on a thread that has already run its exit destructor, or when no memory could be
// had for it.
thread_state *make_thread_state() __attribute__((visibility("hidden")));
class owned_thread_state {
public:
    owned_thread_state() : put_back_(take_thread_state()), use_(put_back_) {
        if (__builtin_expect(use_ == &busy_thread_state, 0)) {
            use_ = nullptr;
        } else if (__builtin_expect(use_ == &no_thread_state, 0)) {
            use_ = make_thread_state();
            if (use_ != nullptr) put_back_ = use_;
        }
    }
    ~owned_thread_state() { put_thread_state(put_back_); }
    owned_thread_state(const owned_thread_state &) = delete;
    owned_thread_state &operator=(const owned_thread_state &) = delete;
    thread_state *get() const { return use_; }

private:
    thread_state *put_back_, *use_;
};

// How many freed records each thread keeps as tombstones (double frees are recognised that far back):
// HEAPINDEX_QUARANTINE, set once by the settings (states made before keep working: the ring's capacity
// is fixed, only how much of it waits changes).  Read on the allocation fast path: a compare with memory.
extern std::atomic<unsigned> quarantine_limit __attribute__((visibility("hidden")));
inline unsigned quarantine_size() { return quarantine_limit.load(std::memory_order_relaxed); }

// Every thread state ever made (for statistics), newest first; and the memory they take.

thread_state *all_thread_states();
std::atomic<thread_state *> *thread_state_list();  // the list's head itself (layout.cc)
size_t thread_state_bytes();

// Refresh the cached thread id after fork (the child's only thread is the one that forked).  Hand back
// this thread's state at its exit (the key destructor; also called directly by tests).
void thread_state_after_fork();
// Set t's block_*_bits for its block of sequence numbers and thread id.
void set_block_bits(thread_state *t) __attribute__((visibility("hidden")));

// Current thread's kernel thread id, cached.
uint32_t uncached_tid() __attribute__((visibility("hidden")));
inline uint32_t current_tid(thread_state *t) { return __builtin_expect(t != nullptr, 1) ? t->tid : uncached_tid(); }

}  // namespace mallochooks::heapindex

#endif
