/* SPDX-License-Identifier: MIT */
/* The heap index as link-time hooks see it (mallochooks/dynamic.h): libheapindex.so's exported layer
 * put in front of an allocator it knows only through a table (here the test's own allocator, whose usable
 * sizes are not glibc's), while the library's own chain keeps serving glibc.  Chunks of both chains are
 * in one index; the trailer is placed from the foreign allocator's usable size; a double free through
 * the adopted layer is reported and passed on; a pointer unknown to the index is passed on silently (the
 * adopting front may have sent calls straight to its allocator). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include "../check.h"
#include "mallochooks/dynamic.h"
#include "mallochooks/heapindex.h"

/* A bump allocator with a 16-byte header and 64-byte size classes; free only counts. */
static unsigned char *arena, *arena_start, *arena_end;
static int frees;
static void *toy_alloc(size_t align, size_t n) {
    if (n > (1u << 20)) return NULL;
    const size_t usable = (n + 63) & ~(size_t)63;
    uintptr_t p = ((uintptr_t)arena + 16 + align - 1) & ~(uintptr_t)(align - 1);
    if (p + usable > (uintptr_t)arena_end) return NULL;
    ((size_t *)p)[-1] = usable;
    arena = (unsigned char *)(p + usable);
    return (void *)p;
}
static void *t_malloc(const struct mallochooks_hooks *h, size_t n, const void *c) { (void)h, (void)c; return toy_alloc(16, n); }
static void *t_calloc(const struct mallochooks_hooks *h, size_t k, size_t n, const void *c) {
    (void)h, (void)c;
    return toy_alloc(16, k * n); /* fresh mmap'd memory is zero */
}
static void t_free(const struct mallochooks_hooks *h, void *p, const void *c) { (void)h, (void)p, (void)c; frees++; }
static void *t_realloc(const struct mallochooks_hooks *h, void *p, size_t n, const void *c) {
    (void)h, (void)c;
    void *q = toy_alloc(16, n);
    if (q) memcpy(q, p, ((size_t *)p)[-1] < n ? ((size_t *)p)[-1] : n);
    return q;
}
static void *t_memalign(const struct mallochooks_hooks *h, size_t a, size_t n, const void *c) { (void)h, (void)c; return toy_alloc(a < 16 ? 16 : a, n); }
static size_t t_usable(const struct mallochooks_hooks *h, void *p, const void *c) { (void)h, (void)c; return ((size_t *)p)[-1]; }

static const struct mallochooks_hooks toy = {t_malloc, t_calloc, t_free, t_realloc, t_memalign, t_usable};
/* The same allocator, unable to tell usable sizes: 0, as wrapdl's fallback malloc_usable_size answers for
 * an own allocator that has none. */
static size_t t_no_usable(const struct mallochooks_hooks *h, void *p, const void *c) { (void)h, (void)p, (void)c; return 0; }
static const struct mallochooks_hooks blind = {t_malloc, t_calloc, t_free, t_realloc, t_memalign, t_no_usable};

int main(void) {
    CHECK(heapindex_present());
    arena = mmap(NULL, 8u << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(arena != MAP_FAILED);
    arena_start = arena;
    arena_end = arena + (8u << 20);
    const struct mallochooks_layer *layer = dlsym(RTLD_DEFAULT, MALLOCHOOKS_LAYER_SYMBOL);
    CHECK(layer && layer->abi == MALLOCHOOKS_LAYER_ABI && strcmp(layer->name, "heapindex") == 0 && layer->chain);
    layer->init(&toy);
    layer->init(&toy); /* once per chain, idempotent */
    const void *site = (const void *)main;
    struct heapindex_stats before, after;
    heapindex_stats(&before);

    char *p = layer->malloc(&toy, 100, site);
    CHECK(p && (unsigned char *)p >= arena_start && (unsigned char *)p < arena_end); /* the toy's chunk */
    struct heapindex_chunk c;
    CHECK(heapindex_lookup(p + 99, &c) && c.base == p && c.size == 100 && c.alloc_site == site);
    /* The toy allocator gave 192 usable bytes for 104 + 16: the trailer sits right after the request,
     * rounded up to 8, whatever the allocator's usable size (index/trailer.h). */
    CHECK(layer->usable_size(&toy, p, site) == 104 && c.usable_size == 104);
    memset(p, 1, 104);
    char *z = layer->calloc(&toy, 10, 10, site);
    char *a = layer->memalign(&toy, 256, 50, site);
    CHECK(z && a && (uintptr_t)a % 256 == 0);
    CHECK(heapindex_lookup(z + 50, &c) && c.base == z && (c.flags & HEAPINDEX_FLAG_CALLOC));
    CHECK(heapindex_lookup(a, &c) && c.base == a && (c.flags & HEAPINDEX_FLAG_ALIGNED));
    char *q = layer->realloc(&toy, p, 1000, site);
    CHECK(q && q != p && q[0] == 1 && q[99] == 1);
    CHECK(heapindex_lookup(q + 999, &c) && c.base == q && c.size == 1000 && (c.flags & HEAPINDEX_FLAG_REALLOC));
    CHECK(!heapindex_lookup(p, &c) || c.base != p);

    /* The library's own chain, at the same time: glibc chunks in the same index. */
    char *g = layer->chain->malloc(layer->chain, 77, site);
    CHECK(g && heapindex_lookup(g + 76, &c) && c.base == g && c.size == 77);
    layer->chain->free(layer->chain, g, site);
    CHECK(heapindex_check(stderr) == 0);

    const int frees_before = frees;
    layer->free(&toy, q, site);
    layer->free(&toy, z, site);
    layer->free(&toy, a, site);
    CHECK(frees == frees_before + 3);
    layer->free(&toy, q, site); /* double free: reported, then passed on */
    CHECK(frees == frees_before + 4);
    char unknown[64] __attribute__((aligned(16)));
    layer->free(&toy, unknown + 16, site); /* unknown to the index: passed on, not reported */
    CHECK(frees == frees_before + 5);

    /* Without usable sizes the trailer goes right after the requested bytes (rounded up to 8), where the
     * padded request guarantees room: the program is told 104, never 0 and never less than 100. */
    layer->init(&blind);
    char *b = layer->malloc(&blind, 100, site);
    CHECK(b && heapindex_lookup(b + 99, &c) && c.base == b && c.size == 100 && (c.flags & HEAPINDEX_FLAG_TRAILER));
    CHECK(c.usable_size == 104 && layer->usable_size(&blind, b, site) == 104);
    CHECK(!heapindex_lookup(b + 100, &c) || c.base != b);
    memset(b, 2, 104);
    CHECK(heapindex_check(stderr) == 0);
    char *b2 = layer->realloc(&blind, b, 20, site);
    CHECK(b2 && b2[19] == 2 && heapindex_lookup(b2, &c) && c.size == 20 && c.usable_size == 24);
    b2[24] ^= 0x5a; /* one byte past the usable size: the trailer, clobbered */
    struct heapindex_stats mid;
    heapindex_stats(&mid);
    layer->free(&blind, b2, site);
    heapindex_stats(&after);
    CHECK(after.corrupt_trailers == mid.corrupt_trailers + 1);
    CHECK(!heapindex_lookup(b2, &c) || c.base != b2);
    CHECK(after.double_frees == before.double_frees + 1);
    CHECK(after.invalid_frees == before.invalid_frees + 1);
    CHECK(heapindex_check(stderr) == 0);
    printf("adopted layer: the index in front of a foreign allocator and of glibc at once, sound\n");
    return 0;
}
