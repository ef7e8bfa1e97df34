/* SPDX-License-Identifier: MIT */
/* A preloadable allocator whose malloc is an IFUNC, and whose IFUNC resolver itself calls calloc.
 * When a mallochooks preload library in front of it looks malloc up, the resolver runs inside that
 * lookup, so its calloc arrives before the real allocator is reachable: it must be served from the
 * bootstrap arena, and the chunk must stay usable (free, realloc, malloc_usable_size) afterwards.
 * Everything else forwards to glibc's __libc_* entry points. */
#define _GNU_SOURCE
#include <stddef.h>
#include <string.h>

#include "../libc_names.h"
extern void *calloc(size_t, size_t);

static char *early;
static int resolver_runs;

static void *ifm_malloc(size_t n) { return __libc_malloc(n); }

/* Through a pointer taken from the GOT, so the call binds to the first calloc in the global scope (the
 * preloaded hooks), whatever the compiler assumes about interposition of our own calloc. */
static void *(*volatile global_calloc)(size_t, size_t) = calloc;

static void *(*resolve_malloc(void))(size_t) {
    resolver_runs++;
    if (early == NULL) {
        early = global_calloc(1, 64);
        if (early) strcpy(early, "allocated inside an IFUNC resolver");
    }
    return ifm_malloc;
}

void *malloc(size_t) __attribute__((ifunc("resolve_malloc")));
void *calloc(size_t a, size_t b) { return __libc_calloc(a, b); }
void *realloc(void *p, size_t n) { return __libc_realloc(p, n); }
void free(void *p) { __libc_free(p); }
void *memalign(size_t a, size_t n) { return __libc_memalign(a, n); }

char *ifm_early_chunk(void) { return early; }
int ifm_resolver_runs(void) { return resolver_runs; }
