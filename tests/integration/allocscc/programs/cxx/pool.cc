// SPDX-License-Identifier: MIT
// pool::alloc records the allocation site in force, then allocates or throws.
#include "pool.h"

#include <cstdlib>
#include <new>

// Defined by the shims allocsc++ links in (see ../c/util.c for why it is not weak here).
extern "C" __thread const void *__mallochooks_alloc_site __attribute__((visibility("hidden"), tls_model("initial-exec")));

namespace pool {
static const void *seen;
const void *site_now() { return __mallochooks_alloc_site; }
const void *site_seen() { return seen; }
void *alloc(std::size_t n) {
    seen = site_now();
    if (n == 0) throw std::bad_alloc();
    return std::malloc(n);
}
}  // namespace pool
