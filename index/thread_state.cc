// SPDX-License-Identifier: MIT
// Per-thread state (see thread_state.h): the sentinel, making a state on a thread's first general-path
// call, and handing it back at thread exit (its record ids to the pool, the state itself to a lock-free
// stack that later threads reuse).  Everything comes from mmap; nothing takes a lock, so a fork at any
// moment leaves the child usable state.
#include "index/thread_state.h"

#include <errno.h>
#include <pthread.h>
#include <unistd.h>

#include "index/index_memory.h"
#include "index/record_pool.h"
#include "libmallochooks/guard.h"

namespace mallochooks::heapindex {

// Every field zero but `tail`: the ring reads full (free's fast path leaves), the sequence block reads
// empty (admit's fast path leaves).  const: a write through it would fault, not corrupt.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"  // the others are zero, on purpose
constinit const thread_state no_thread_state = {.tail = thread_state::ring_size};
constinit const thread_state busy_thread_state = {.tail = thread_state::ring_size};
#pragma GCC diagnostic pop
constinit std::atomic<unsigned> quarantine_limit{thread_state::default_quarantine};
__thread thread_state *my_thread_state = const_cast<thread_state *>(&no_thread_state);

namespace {

// initial-exec: see libmallochooks/guard.h (a global-dynamic access may call malloc).  `exited` marks a
// thread whose state was handed back at thread exit: later frees on it (glibc frees thread-local buffers
// after the key destructors ran) use the global structures rather than making a state nobody releases.
__thread bool exited __attribute__((tls_model("initial-exec")));

std::atomic<thread_state *> all_states{nullptr};
std::atomic<uint64_t> free_states{0};  // tag << 48 | thread_state pointer (user addresses fit in 48 bits)
std::atomic<size_t> state_mapped{0};
constexpr uint64_t ptr_mask = (uint64_t{1} << 48) - 1;
constexpr size_t state_bytes = (sizeof(thread_state) + thread_state::ring_size * sizeof(uint32_t) + 4095) & ~size_t{4095};
static_assert(sizeof(thread_state) % alignof(uint32_t) == 0);

std::atomic<int> key_state{0};  // 0 none, 1 being created, 2 created, 3 failed
pthread_key_t exit_key;

void on_thread_exit(void *arg) {
    thread_state *t = static_cast<thread_state *>(arg);
    if (t == nullptr) return;
    reentrancy_guard guard;
    // Taken for good: a signal handler that allocates from here on works on the global structures.
    take_thread_state();
    record_pool_instance.drain(t);
    // Its counters stay: statistics sum every state ever made.  `exited` before the sentinel: a handler
    // that finds no_thread_state must not make a new state.
    exited = true;
    std::atomic_signal_fence(std::memory_order_seq_cst);
    my_thread_state = const_cast<thread_state *>(&no_thread_state);
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

// Called with this thread's state taken (owned_thread_state): a signal handler meanwhile uses the global
// structures, so this runs once per thread.  (The one exception: a handler that arrived between the
// load and the store of take_thread_state and made the state first; its state, registered with the
// key, is found again here.)
thread_state *make_thread_state() {
    if (exited) return nullptr;
    if (key_state.load(std::memory_order_acquire) == 2)
        if (thread_state *mine = static_cast<thread_state *>(pthread_getspecific(exit_key))) return mine;
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
    register_exit(t);
    return t;  // the caller puts it in my_thread_state
}

thread_state *all_thread_states() { return all_states.load(std::memory_order_acquire); }
std::atomic<thread_state *> *thread_state_list() { return &all_states; }
size_t thread_state_bytes() { return state_mapped.load(std::memory_order_relaxed); }

void thread_state_after_fork() {
    thread_state *t = my_thread_state;
    if (t != &no_thread_state && t != &busy_thread_state) t->tid = uint32_t(gettid()), set_block_bits(t);
}

void set_block_bits(thread_state *t) {
    t->block_site_bits = rec::site_seq_bits(t->seq_next) | HEAPINDEX_FLAG_TRAILER;  // see thread_state.h
    t->block_size_bits = rec::size_seq_bits(t->seq_next);
    t->block_tail_bits = rec::tail_seq_bits(t->seq_next, t->tid);
}

uint32_t uncached_tid() { return uint32_t(gettid()); }

}  // namespace mallochooks::heapindex
