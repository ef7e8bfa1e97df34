/* SPDX-License-Identifier: MIT */
/* The allocator of the link-time tests: what an executable or a shared library "with its own malloc"
 * defines, the whole family.  It answers mx_alloc_owns(p), so a test can tell which allocator served a
 * chunk, and it aborts on a free or realloc of a chunk it does not own: a call that reached the wrong
 * allocator fails the test at once instead of corrupting a heap.
 *
 * Size classes of 16 << k bytes carved from one reserved region (mmap'd on first use, MAP_NORESERVE),
 * freed chunks kept on per-thread lists: no lock anywhere, so a fork from any thread or from a signal
 * handler leaves nothing held.  Every chunk has a 16-byte header right before it: its class, a magic
 * word and the start of the block it lives in (aligned chunks sit inside a larger block).
 *
 * It also contains a caller, mx_alloc_run (mx_callers.h): calls to malloc from the very object that
 * defines it, the case `ld --wrap` misses.  This file must be compiled so that those stay calls through
 * the symbol: -fPIC, and -fsemantic-interposition for clang (docs/link-time.md). */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "mx_callers.h"

#define REGION_SIZE ((size_t)16 << 30) /* reserved, not committed */
#define CLASSES 27                     /* 16 bytes .. 1 GiB */
#define MAGIC 0x6d78616cu              /* "mxal" */

struct header {
    uint32_t cls;
    uint32_t magic;
    char *block; /* the payload of the block this chunk lives in (== the chunk unless aligned) */
};

static _Atomic(char *) region;
static atomic_size_t used;
/* initial-exec: the default model may call malloc (ours) to make room for the variable. */
static __thread void *free_lists[CLASSES] __attribute__((tls_model("initial-exec")));

static void die(const char *what) {
    static const char prefix[] = "test allocator: ";
    if (write(2, prefix, sizeof prefix - 1) < 0 || write(2, what, strlen(what)) < 0 || write(2, "\n", 1) < 0) {}
    abort();
}

static char *get_region(void) {
    char *r = atomic_load(&region);
    if (r) return r;
    char *fresh = mmap(NULL, REGION_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (fresh == MAP_FAILED) return NULL;
    if (!atomic_compare_exchange_strong(&region, &r, fresh)) {
        munmap(fresh, REGION_SIZE);
        return r;
    }
    return fresh;
}

__attribute__((visibility("default"))) int mx_alloc_owns(const void *p) {
    char *r = atomic_load(&region);
    return r && (const char *)p >= r && (const char *)p < r + REGION_SIZE;
}

static struct header *header_of(void *p) {
    if (!mx_alloc_owns(p)) die("free/realloc/usable size of a chunk this allocator does not own");
    struct header *h = (struct header *)p - 1;
    if (h->magic != MAGIC || h->cls >= CLASSES) die("corrupt chunk header");
    return h;
}

static unsigned class_of(size_t n) {
    unsigned k = 0;
    while (k < CLASSES && ((size_t)16 << k) < n) ++k;
    return k;
}

static void *allocate(size_t n) {
    unsigned k = class_of(n ? n : 1);
    if (k >= CLASSES) return NULL;
    char *payload = free_lists[k];
    if (payload) {
        free_lists[k] = *(void **)payload;
    } else {
        char *r = get_region();
        size_t need = sizeof(struct header) + ((size_t)16 << k);
        size_t at = atomic_fetch_add(&used, need);
        if (!r || at + need > REGION_SIZE) return NULL;
        payload = r + at + sizeof(struct header);
    }
    struct header *h = (struct header *)payload - 1;
    h->cls = k;
    h->magic = MAGIC;
    h->block = payload;
    return payload;
}

static size_t usable(void *p) {
    struct header *h = header_of(p);
    return ((size_t)16 << h->cls) - (size_t)((char *)p - h->block);
}

void *malloc(size_t n) {
    void *p = allocate(n);
    if (!p) errno = ENOMEM;
    return p;
}

void free(void *p) {
    if (!p) return;
    struct header *h = header_of(p);
    char *block = h->block;
    struct header *bh = (struct header *)block - 1;
    *(void **)block = free_lists[bh->cls];
    free_lists[bh->cls] = block;
}

void *calloc(size_t k, size_t n) {
    size_t total;
    if (__builtin_mul_overflow(k, n, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    void *p = malloc(total); /* through the symbol: an allocator calling itself, as small ones do */
    if (p) memset(p, 0, total);
    return p;
}

void *realloc(void *p, size_t n) {
    if (!p) return malloc(n);
    if (n == 0) {
        free(p);
        return NULL;
    }
    size_t old = usable(p);
    if (n <= old) return p;
    void *q = malloc(n);
    if (!q) return NULL;
    memcpy(q, p, old);
    free(p);
    return q;
}

void *memalign(size_t alignment, size_t n) {
    if (alignment <= 16) return malloc(n);
    if (alignment > SIZE_MAX / 2 + 1) {
        errno = EINVAL;
        return NULL;
    }
    size_t a = 32;
    while (a < alignment) a <<= 1;
    size_t need;
    if (__builtin_add_overflow(n, a + sizeof(struct header), &need)) {
        errno = ENOMEM;
        return NULL;
    }
    char *block = allocate(need);
    if (!block) {
        errno = ENOMEM;
        return NULL;
    }
    char *p = (char *)(((uintptr_t)block + sizeof(struct header) + a - 1) & ~(uintptr_t)(a - 1));
    struct header *h = (struct header *)p - 1;
    h->cls = ((struct header *)block - 1)->cls;
    h->magic = MAGIC;
    h->block = block;
    return p;
}

int posix_memalign(void **out, size_t alignment, size_t n) {
    if (alignment == 0 || alignment % sizeof(void *) || (alignment & (alignment - 1))) return EINVAL;
    void *p = memalign(alignment, n);
    if (!p) return ENOMEM;
    *out = p;
    return 0;
}

void *aligned_alloc(size_t alignment, size_t n) { return memalign(alignment, n); }

void *valloc(size_t n) { return memalign((size_t)sysconf(_SC_PAGESIZE), n); }

void *pvalloc(size_t n) {
    size_t ps = (size_t)sysconf(_SC_PAGESIZE), rounded;
    if (__builtin_add_overflow(n, ps - 1, &rounded)) {
        errno = ENOMEM;
        return NULL;
    }
    return memalign(ps, rounded & ~(ps - 1));
}

void *reallocarray(void *p, size_t k, size_t n) {
    size_t total;
    if (__builtin_mul_overflow(k, n, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    return realloc(p, total);
}

size_t malloc_usable_size(void *p) { return p ? usable(p) : 0; }

MX_DEFINE_CALLER(mx_alloc_run)
