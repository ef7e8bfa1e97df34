// SPDX-License-Identifier: MIT
// The hook layer of bench/'s `floorindex` and `floorkill` configurations (floorindex_preload.cc,
// floorkill_preload.cc): checked16's trailer (checked16_preload.cc: padding as the index's, a 16-byte
// trailer of sequence number and keyed check word, checked at free) plus the floor index (floor_index.h):
// at malloc a record, the granule's slot and its start bit; at free the start bit cleared and the id
// queued, and, with Kill (`floorkill`), the record's head turned dead by a CAS, as the index's kill does.
//
// The trailer goes where the index puts it, right after the request (index/trailer.h, trailer_at), not
// where checked16 puts it (the allocator's usable size, asked at malloc and again at free: a forwarder
// knows no size).  The floor knows the size without the record, from the granule's slot, so it pays no
// usable-size call: measured with checked16's placement, the floor took 369 instructions per 32-byte pair,
// more than the index's 360, which reads its size from the record; a floor must be the cheapest way.
//
// A double or invalid free (no live chunk starts at the pointer) is only counted and goes to the
// allocator unchanged, as the index does with a pointer it cannot report; so does a chunk left unindexed
// (its trailer is not checked).  Lookups: floorindex_v1_lookup, exported, with heapindex_lookup's
// signature (floor_lookup_check.c).
#ifndef MALLOCHOOKS_BENCH_FLOOR_LAYER_H
#define MALLOCHOOKS_BENCH_FLOOR_LAYER_H

#include <stdint.h>
#include <sys/auxv.h>

#include <atomic>
#include <type_traits>

#include "bench/floor_index.h"
#include "index/trailer.h"
#include "mallochooks/hooks.h"

namespace mallochooks::bench_floor {

// The process's floor index, and this thread's state (initial-exec TLS: the default model can call
// malloc on a thread's first access).  Both constant-initialised: nothing runs before main.
inline constinit floor_index the_index;
inline __thread floor_thread my_thread __attribute__((tls_model("initial-exec")));

inline std::atomic<uint64_t> trailer_mismatches{0}, bad_frees{0};

// checked16's trailer, as checked16_preload.cc writes and checks it (its comments there).
namespace trailer {
using mallochooks::heapindex::trailer_at;
using mallochooks::heapindex::trailer_offset;
using mallochooks::heapindex::trailer_size;

inline size_t request(size_t size) { return mallochooks::heapindex::padded_request_or_max(size); }
// The key: AT_RANDOM's second 8 bytes, set by the layer's init (before any chunk gets a trailer: the
// chains's front sends every call before it to the terminal), so no test on the fast paths.
inline std::atomic<uint64_t> key{0};
inline void make_key() {
    const unsigned char *r = reinterpret_cast<const unsigned char *>(getauxval(AT_RANDOM));
    uint64_t k = 0x9e3779b97f4a7c15ull;
    if (r != nullptr) __builtin_memcpy(&k, r + 8, sizeof k);
    key.store(k | 1, std::memory_order_relaxed);
}
inline uint64_t the_key() { return key.load(std::memory_order_relaxed); }
inline uint32_t check_of(uintptr_t p, uint64_t seq) { return uint32_t(((p ^ the_key()) + seq) * 0xff51afd7ed558ccdull >> 32); }
struct __attribute__((may_alias)) words {
    uint64_t seq, check;
};
}  // namespace trailer

// The preload terminal's calls that skip its bootstrap-arena test (hooks.h's exit 7, direct_terminal):
// the floor takes the cheapest way to the allocator that the index takes.
using mallochooks::direct_terminal;

template <bool Kill> struct floor_layer : mallochooks::layer_defaults {
    template <class Next> static void init(Next) {
        trailer::make_key();
        the_index.init();
    }

    // A new chunk (not null): indexed (its sequence number from the index's thread block), then its
    // trailer right after the request (the request was padded for it: padded_request).
    // The fast path makes no call (admit_slow, tail-called, does the rest): no register kept across one.
    static void *admit(void *p, size_t size, const void *caller) {
        uint64_t seq;
        uint32_t id;
        if (__builtin_expect(!the_index.take_fast(my_thread, &seq, &id), 0)) return admit_slow(p, size, caller);
        const uintptr_t base = reinterpret_cast<uintptr_t>(p);
        if (__builtin_expect(!the_index.publish_fast(my_thread, id, base, size, caller, seq), 0))
            return admit_unindexed(p, size, caller, seq, id);
        write_trailer(base, size, seq);
        return p;
    }
    __attribute__((noinline, cold)) static void *admit_unindexed(void *p, size_t size, const void *caller, uint64_t seq, uint32_t id) {
        const uintptr_t base = reinterpret_cast<uintptr_t>(p);
        the_index.publish_refused(my_thread, id, base, size, caller, seq);  // counts it, and gives the id back
        write_trailer(base, size, seq);
        return p;
    }
    __attribute__((noinline)) static void *admit_slow(void *p, size_t size, const void *caller) {
        const uintptr_t base = reinterpret_cast<uintptr_t>(p);
        write_trailer(base, size, the_index.insert(my_thread, base, size, caller));
        return p;
    }
    static void write_trailer(uintptr_t base, size_t size, uint64_t seq) {
        trailer::words *t = reinterpret_cast<trailer::words *>(base + trailer::trailer_at(size));
        t->seq = seq;
        t->check = trailer::check_of(base, seq);
    }
    static void verify(void *p, size_t size) {
        const uintptr_t base = reinterpret_cast<uintptr_t>(p);
        const trailer::words *t = reinterpret_cast<const trailer::words *>(base + trailer::trailer_at(size));
        if (__builtin_expect(t->check != trailer::check_of(base, t->seq), 0))
            trailer_mismatches.fetch_add(1, std::memory_order_relaxed);
    }

    // A chunk from a call that may have been served by the bootstrap arena (before the allocator is found):
    // indexed unless it is the arena's, so that every indexed chunk goes back through free_unowned.
    template <class Next> static void *admit_any(void *p, size_t size, const void *caller) {
        if constexpr (direct_terminal<Next>::value) {
            if (__builtin_expect(p != nullptr && Next::terminal::arena_owns(p), 0)) return p;
        }
        return p != nullptr ? admit(p, size, caller) : p;
    }
    template <class Next> static void *malloc(Next next, size_t size, const void *caller) {
        if constexpr (direct_terminal<Next>::value) {
            // Never the arena's chunk (malloc_unowned, backends/preload/terminal.h), as the index's malloc.
            void *p = Next::terminal::malloc_unowned(trailer::request(size), caller);
            if (__builtin_expect(reinterpret_cast<uintptr_t>(p) > Next::terminal::not_served, 1)) return admit(p, size, caller);
            if (p == nullptr) return p;
            return malloc_served(next, size, caller);
        }
        return admit_any<Next>(next.malloc(trailer::request(size), caller), size, caller);
    }
    // malloc_unowned could not serve (the allocator not found yet): the ordinary call, which may be.
    template <class Next> __attribute__((noinline, cold)) static void *malloc_served(Next next, size_t size, const void *caller) {
        return admit_any<Next>(next.malloc(trailer::request(size), caller), size, caller);
    }
    template <class Next> static void *calloc(Next next, size_t nmemb, size_t size, const void *caller) {
        return admit_any<Next>(next.calloc(1, trailer::request(nmemb * size), caller), nmemb * size, caller);
    }
    template <class Next> static void *memalign(Next next, size_t alignment, size_t size, const void *caller) {
        return admit_any<Next>(next.memalign(alignment, trailer::request(size), caller), size, caller);
    }
    template <class Next> static void free(Next next, void *ptr, const void *caller) {
        if (ptr == nullptr) return next.free(ptr, caller);
        const uintptr_t base = reinterpret_cast<uintptr_t>(ptr);
        size_t size;
        uint32_t id;
        if (__builtin_expect(the_index.clear_start(base, &id, &size), 1)) {
            if constexpr (Kill) the_index.kill(id, base);
            verify(ptr, size);
            // The id queued without a call (a full ring or a busy thread: free_slow, tail-called).
            if (__builtin_expect(!the_index.give_fast(my_thread, id), 0)) return free_slow(next, ptr, id, caller);
            if constexpr (direct_terminal<Next>::value) return Next::terminal::free_unowned(ptr, caller);  // not the arena's
            return next.free(ptr, caller);
        }
        not_indexed<Next>(ptr);
        next.free(ptr, caller);
    }
    template <class Next> __attribute__((noinline)) static void free_slow(Next next, void *ptr, uint32_t id, const void *caller) {
        the_index.give(my_thread, id);
        next.free(ptr, caller);
    }
    // A pointer at which no indexed chunk starts: the arena's, or a double or invalid free (counted).
    template <class Next> __attribute__((noinline, cold)) static void not_indexed(void *ptr) {
        if constexpr (direct_terminal<Next>::value) {
            if (Next::terminal::arena_owns(ptr)) return;
        }
        bad_frees.fetch_add(1, std::memory_order_relaxed);
    }
    // The old chunk's start bit cleared first (a racing free of it loses), its id given back only once
    // the allocator succeeded; on failure the old chunk lives on, bit set again.
    template <class Next> static void *realloc(Next next, void *ptr, size_t size, const void *caller) {
        if (ptr == nullptr) return malloc(next, size, caller);
        const uintptr_t old = reinterpret_cast<uintptr_t>(ptr);
        uint32_t id = 0;
        size_t old_size = 0;
        const bool indexed = the_index.clear_start(old, &id, &old_size);
        if (indexed) {
            if constexpr (Kill) the_index.kill(id, old);  // as free's (undone below if the realloc fails)
            verify(ptr, old_size);
        } else {
            not_indexed<Next>(ptr);
        }
        void *q = next.realloc(ptr, trailer::request(size), caller);
        if (q == nullptr) {
            if (indexed) {
                if constexpr (Kill) the_index.unkill(id);
                the_index.revive(old);
            }
            return q;
        }
        if (indexed) the_index.give(my_thread, id);
        return admit_any<Next>(q, size, caller);
    }
    // The trailer's offset, as the index answers; for a chunk the floor does not know, what checked16 and
    // padonly answer (never below the request).
    template <class Next> static size_t usable_size(Next next, void *ptr, const void *caller) {
        size_t size;
        if (__builtin_expect(the_index.size_at(reinterpret_cast<uintptr_t>(ptr), &size), 1)) return trailer::trailer_at(size);
        const size_t usable = next.usable_size(ptr, caller);
        return usable >= trailer::trailer_size ? trailer::trailer_offset(usable) : 0;
    }
};

}  // namespace mallochooks::bench_floor

// The lookup API of the floor index, heapindex_lookup's signature (exported by both libraries).
#define MALLOCHOOKS_BENCH_FLOOR_EXPORTS()                                                                        \
    extern "C" __attribute__((visibility("default"))) int floorindex_v1_lookup(const void *addr,                 \
                                                                               struct heapindex_chunk *out) {    \
        return mallochooks::bench_floor::the_index.lookup(addr, out);                                            \
    }                                                                                                            \
    extern "C" __attribute__((visibility("default"))) void floorindex_v1_counts(uint64_t out[4]) {              \
        out[0] = mallochooks::bench_floor::the_index.unindexed_chunks();                                         \
        out[1] = mallochooks::bench_floor::bad_frees.load(std::memory_order_relaxed);                            \
        out[2] = mallochooks::bench_floor::trailer_mismatches.load(std::memory_order_relaxed);                   \
        out[3] = mallochooks::bench_floor::the_index.lost_kills();                                               \
    }

#endif
