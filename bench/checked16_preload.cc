// SPDX-License-Identifier: MIT
// libchecked16.so (bench/run's `checked16` configuration): the floor any checked-trailer design pays,
// without an index.  One hook layer over the preload terminal pads every request as libheapindex.so does
// (index/trailer.h padded_request: max(round_up(n, 8), 16) + 16) and writes a 16-byte trailer, a
// sequence number and a keyed check word, at the end of what the allocator says it gave; free (and
// realloc, for the old chunk) reads the allocator's usable size again, finds the trailer, and compares
// its check word with the one the chunk's address and sequence number give.  Nothing is indexed, nothing
// reported (a mismatch is only counted), so what it costs over `padonly` is what writing and checking a
// trailer costs when the trailer itself must say where it is: two usable-size calls per pair, the stores,
// the loads and a keyed mix.  Issue 13 measures the index's malloc/free pair against it (at most 1.25x).
// Chain: checked16_layer -> preload terminal.
#include <stdint.h>
#include <sys/auxv.h>

#include <atomic>

#include "backends/preload/terminal.h"
#include "index/trailer.h"
#include "libmallochooks/entry_points.h"
#include "mallochooks/hooks.h"

namespace {

using mallochooks::heapindex::trailer_offset;
using mallochooks::heapindex::trailer_size;

inline size_t request(size_t size) { return mallochooks::heapindex::padded_request_or_max(size); }

// The key: AT_RANDOM's second 8 bytes (no allocation, no system call); a bench needs no more.
std::atomic<uint64_t> key{0};
inline uint64_t the_key() {
    uint64_t k = key.load(std::memory_order_relaxed);
    if (__builtin_expect(k == 0, 0)) {
        const unsigned char *r = reinterpret_cast<const unsigned char *>(getauxval(AT_RANDOM));
        k = 0x9e3779b97f4a7c15ull;
        if (r != nullptr) __builtin_memcpy(&k, r + 8, sizeof k);
        k |= 1;
        key.store(k, std::memory_order_relaxed);
    }
    return k;
}
inline uint32_t check_of(uintptr_t p, uint64_t seq) { return uint32_t(((p ^ the_key()) + seq) * 0xff51afd7ed558ccdull >> 32); }

__thread uint64_t next_seq __attribute__((tls_model("initial-exec")));
std::atomic<uint64_t> mismatches{0};

struct __attribute__((may_alias)) words {
    uint64_t seq, check;
};

template <class Next> inline void *stamp(Next next, void *p, const void *caller) {
    if (p == nullptr) return p;
    const size_t usable = next.usable_size(p, caller);
    if (usable < trailer_size) return p;
    const uintptr_t base = reinterpret_cast<uintptr_t>(p);
    words *t = reinterpret_cast<words *>(base + trailer_offset(usable));
    const uint64_t seq = ++next_seq;
    t->seq = seq;
    t->check = check_of(base, seq);
    return p;
}

template <class Next> inline void verify(Next next, void *p, const void *caller) {
    const size_t usable = next.usable_size(p, caller);
    if (usable < trailer_size) return;
    const uintptr_t base = reinterpret_cast<uintptr_t>(p);
    const words *t = reinterpret_cast<const words *>(base + trailer_offset(usable));
    if (__builtin_expect(t->check != check_of(base, t->seq), 0)) mismatches.fetch_add(1, std::memory_order_relaxed);
}

struct checked16_layer : mallochooks::layer_defaults {
    template <class Next> static void *malloc(Next next, size_t size, const void *caller) {
        return stamp(next, next.malloc(request(size), caller), caller);
    }
    template <class Next> static void *calloc(Next next, size_t nmemb, size_t size, const void *caller) {
        return stamp(next, next.calloc(1, request(nmemb * size), caller), caller);
    }
    template <class Next> static void *realloc(Next next, void *ptr, size_t size, const void *caller) {
        verify(next, ptr, caller);
        return stamp(next, next.realloc(ptr, request(size), caller), caller);
    }
    template <class Next> static void *memalign(Next next, size_t alignment, size_t size, const void *caller) {
        return stamp(next, next.memalign(alignment, request(size), caller), caller);
    }
    template <class Next> static void free(Next next, void *ptr, const void *caller) {
        verify(next, ptr, caller);
        next.free(ptr, caller);
    }
    // The trailer's offset, as padonly answers: never below the request.
    template <class Next> static size_t usable_size(Next next, void *ptr, const void *caller) {
        const size_t usable = next.usable_size(ptr, caller);
        return usable >= trailer_size ? trailer_offset(usable) : 0;
    }
};

using checked16_hooks = mallochooks::chain<checked16_layer, mallochooks::preload::terminal>;

}  // namespace

MALLOCHOOKS_DEFINE_ENTRY_POINTS(, checked16_hooks)
