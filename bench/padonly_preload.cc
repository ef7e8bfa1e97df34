// SPDX-License-Identifier: MIT
// libpadonly.so (bench/run's `padonly` configuration): the preload backend with one hook layer that does
// to request sizes exactly what libheapindex.so does, and nothing else: every allocating call asks the
// allocator for round_up(n, 8) + 32 bytes (index/trailer.h padded_request; a request that overflows asks
// for SIZE_MAX, so it fails with ENOMEM as glibc fails any impossible request), and malloc_usable_size
// answers the offset where the index would put its trailer, round_down(usable - 32, 8), which is never
// below the request.  No trailer is written and nothing is indexed.  Measured next to glibc and
// heapindex, it shows how much of the index's cost is the allocator's reaction to the padding alone
// (bigger chunks: other tcache bins, fewer chunks per page, more of them past the tcache).
// Chain: padonly_layer -> preload terminal.
#include <stdint.h>

#include "backends/preload/terminal.h"
#include "index/trailer.h"
#include "libmallochooks/entry_points.h"
#include "mallochooks/hooks.h"

namespace {

using mallochooks::heapindex::trailer_offset;
using mallochooks::heapindex::trailer_size;

inline size_t request(size_t size) { return mallochooks::heapindex::padded_request_or_max(size); }

struct padonly_layer : mallochooks::layer_defaults {
    template <class Next> static void *malloc(Next next, size_t size, const void *caller) {
        return next.malloc(request(size), caller);
    }
    // As the index does: one element of the padded total (the user API checked nmemb * size).
    template <class Next> static void *calloc(Next next, size_t nmemb, size_t size, const void *caller) {
        return next.calloc(1, request(nmemb * size), caller);
    }
    template <class Next> static void *realloc(Next next, void *ptr, size_t size, const void *caller) {
        return next.realloc(ptr, request(size), caller);
    }
    template <class Next> static void *memalign(Next next, size_t alignment, size_t size, const void *caller) {
        return next.memalign(alignment, request(size), caller);
    }
    // Every chunk handed out here was padded, so usable >= round_up(n, 8) + 32 and the answer is >= n.
    // (The test only guards against a chunk this library never padded.)
    template <class Next> static size_t usable_size(Next next, void *ptr, const void *caller) {
        const size_t usable = next.usable_size(ptr, caller);
        return usable >= trailer_size ? trailer_offset(usable) : 0;
    }
};

using padonly_hooks = mallochooks::chain<padonly_layer, mallochooks::preload::terminal>;

}  // namespace

MALLOCHOOKS_DEFINE_ENTRY_POINTS(, padonly_hooks)
