/* SPDX-License-Identifier: MIT */
/* Under LD_PRELOAD=libheapindex.so (alone or in front of another allocator): every kind of chunk the
 * malloc family makes is found from every interior address, with its base, requested size, usable size,
 * site and flags; nothing is found in its padding or trailer, after it is freed, or between neighbours;
 * usable sizes cover the request and filling a chunk up to malloc_usable_size (as SQLite does) never
 * touches a trailer; requests whose size plus trailer would overflow fail as glibc fails them; client
 * blocks; heapindex_for_each, heapindex_stats and heapindex_check agree.  Exits non-zero on the first
 * failed check. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../check.h"
#include "mallochooks/heapindex.h"

static unsigned checked_addresses;
/* jemalloc and mimalloc leave errno alone when realloc fails: with them (argument "other"), only glibc's
 * behaviour is held against them. */
static int glibc_errno = 1;
#define ENOMEM_SET (errno == ENOMEM || !glibc_errno)

/* p is a live chunk of `size` requested bytes carrying `flag`: every interior address (every byte up to
 * 8 KiB, then a sample and the last byte) finds exactly it; the byte after its request does not. */
static void expect_chunk(const void *p, size_t size, unsigned flag) {
    struct heapindex_chunk c;
    const char *b = p;
    const size_t step = size <= 8192 ? 1 : 4093;
    for (size_t off = 0; off < size; off += step) {
        CHECK(heapindex_lookup(b + off, &c) == 1);
        CHECK(c.base == p && c.size == size);
        checked_addresses++;
    }
    if (size > 0) {
        CHECK(heapindex_lookup(b + size - 1, &c) == 1 && c.base == p);
    }
    CHECK(heapindex_lookup(b, &c) == (size > 0));
    if (size > 0) {
        CHECK(c.usable_size >= size && c.usable_size == malloc_usable_size((void *)p));
        CHECK((c.flags & flag) == flag);
        CHECK(c.flags & HEAPINDEX_FLAG_TRAILER);
        CHECK(c.alloc_site != NULL && c.seq != 0 && c.tid == (uint32_t)gettid());
    }
    /* Padding and trailer are not inside; the byte before belongs to another chunk if to any. */
    CHECK(heapindex_lookup(b + size, &c) == 0 || c.base == b + size);
    if (heapindex_lookup(b - 1, &c)) CHECK((const char *)c.base + c.size <= b);
}

static void expect_gone(const void *p) {
    struct heapindex_chunk c;
    CHECK(heapindex_lookup(p, &c) == 0 || c.base != p);
}

/* SQLite's way: use the whole usable size.  The trailer must not be in it. */
static void fill_usable(void *p, int byte) { memset(p, byte, malloc_usable_size(p)); }

static void test_plain_family(void) {
    size_t sizes[] = {0, 1, 8, 15, 16, 24, 25, 31, 32, 33, 100, 1000, 4095, 4096, 4097, 65536, 200000};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; ++i) {
        const size_t n = sizes[i];
        char *m = malloc_v(n), *c = calloc_v(1, n), *r = realloc_v(NULL, n);
        CHECK(m && c && r);
        for (size_t k = 0; k < n; ++k) CHECK(c[k] == 0);
        expect_chunk(m, n, 0);
        expect_chunk(c, n, HEAPINDEX_FLAG_CALLOC);
        expect_chunk(r, n, 0);
        fill_usable(m, 0xab), fill_usable(c, 0xcd), fill_usable(r, 0xef);
        CHECK(heapindex_check(stderr) == 0);
        free(m), free(c), free(r);
        expect_gone(m), expect_gone(c), expect_gone(r);
    }
    /* calloc with nmemb * size, not just 1 * n. */
    int *arr = calloc_v(1000, sizeof(int));
    CHECK(arr != NULL);
    expect_chunk(arr, 1000 * sizeof(int), HEAPINDEX_FLAG_CALLOC);
    free(arr);
}

static void test_aligned_family(void) {
    size_t aligns[] = {16, 32, 64, 128, 4096, 65536, 1u << 21};
    for (size_t i = 0; i < sizeof aligns / sizeof *aligns; ++i) {
        const size_t a = aligns[i];
        void *m = memalign_v(a, 100), *al = aligned_alloc_v(a, 3 * a), *pm = NULL;
        CHECK(posix_memalign_v(&pm, a, 777) == 0);
        CHECK(m && al && pm);
        CHECK((uintptr_t)m % a == 0 && (uintptr_t)al % a == 0 && (uintptr_t)pm % a == 0);
        expect_chunk(m, 100, HEAPINDEX_FLAG_ALIGNED);
        expect_chunk(al, 3 * a, HEAPINDEX_FLAG_ALIGNED);
        expect_chunk(pm, 777, HEAPINDEX_FLAG_ALIGNED);
        fill_usable(m, 1), fill_usable(al, 2), fill_usable(pm, 3);
        CHECK(heapindex_check(stderr) == 0);
        free(m), free(al), free(pm);
        expect_gone(m), expect_gone(al), expect_gone(pm);
    }
    const long ps = sysconf(_SC_PAGESIZE);
    void *v = valloc_v(10), *pv = pvalloc_v(10);
    CHECK(v && pv && (uintptr_t)v % ps == 0 && (uintptr_t)pv % ps == 0);
    expect_chunk(v, 10, HEAPINDEX_FLAG_ALIGNED);
    expect_chunk(pv, (size_t)ps, HEAPINDEX_FLAG_ALIGNED); /* pvalloc asks for whole pages */
    free(v), free(pv);
}

/* Chunks above the mmap threshold (their own mappings, unmapped at free). */
static void test_mmap_sized(void) {
    const size_t big = 8u << 20;
    char *m = malloc_v(big), *c = calloc_v(1, 2 * big);
    void *a = memalign_v(1u << 20, 3 * big / 2);
    CHECK(m && c && a);
    CHECK(c[0] == 0 && c[2 * big - 1] == 0);
    expect_chunk(m, big, 0);
    expect_chunk(c, 2 * big, HEAPINDEX_FLAG_CALLOC);
    expect_chunk(a, 3 * big / 2, HEAPINDEX_FLAG_ALIGNED);
    fill_usable(m, 7);
    CHECK(heapindex_check(stderr) == 0);
    m = realloc_v(m, 4 * big); /* glibc moves mmapped chunks with mremap */
    CHECK(m && m[0] == 7 && m[big - 1] == 7);
    expect_chunk(m, 4 * big, HEAPINDEX_FLAG_REALLOC);
    free(m), free(c), free(a);
    expect_gone(m), expect_gone(c), expect_gone(a);
}

static void test_realloc(void) {
    /* Moved: a neighbour right behind p stops it from growing in place. */
    char *p = malloc_v(100);
    void *blocker = malloc_v(100);
    memset(p, 'p', 100);
    char *q = realloc_v(p, 5000);
    CHECK(q && q[0] == 'p' && q[99] == 'p');
    expect_chunk(q, 5000, HEAPINDEX_FLAG_REALLOC);
    if (q != p) expect_gone(p);
    expect_chunk(blocker, 100, 0);
    /* In place: shrinking keeps the address in glibc. */
    char *r = realloc_v(q, 2000);
    CHECK(r && r[0] == 'p');
    expect_chunk(r, 2000, HEAPINDEX_FLAG_REALLOC);
    if (r == q) CHECK(malloc_usable_size(r) >= 2000);
    /* Growing into free space behind it (glibc grows in place when the next chunk is free). */
    char *g = malloc_v(64);
    void *spacer = malloc_v(3000);
    void *fence = malloc_v(64);
    free(spacer);
    char *g2 = realloc_v(g, 2000);
    CHECK(g2 != NULL);
    expect_chunk(g2, 2000, HEAPINDEX_FLAG_REALLOC);
    /* A failing realloc leaves the chunk live and indexed as it was. */
    errno = 0;
    CHECK(realloc_v(r, SIZE_MAX - 8) == NULL && ENOMEM_SET);
    expect_chunk(r, 2000, HEAPINDEX_FLAG_REALLOC);
    /* realloc(p, 0) frees. */
    void *z = malloc_v(10);
    CHECK(realloc_v(z, 0) == NULL);
    expect_gone(z);
    free(r), free(blocker), free(g2), free(fence);
    CHECK(heapindex_check(stderr) == 0);
}

/* Requested size + trailer must never wrap: such requests fail with ENOMEM, as glibc's own do. */
static void test_overflow(void) {
    size_t huge[] = {SIZE_MAX, SIZE_MAX - 1, SIZE_MAX - 16, SIZE_MAX - 31, SIZE_MAX - 32, SIZE_MAX - 40,
                     (size_t)PTRDIFF_MAX, (size_t)PTRDIFF_MAX - 20};
    for (size_t i = 0; i < sizeof huge / sizeof *huge; ++i) {
        errno = 0;
        CHECK(malloc_v(huge[i]) == NULL && ENOMEM_SET);
        errno = 0;
        CHECK(calloc_v(1, huge[i]) == NULL && ENOMEM_SET);
        errno = 0;
        CHECK(memalign_v(64, huge[i]) == NULL && ENOMEM_SET);
        void *out = &out;
        const int r = posix_memalign_v(&out, 64, huge[i]);
        CHECK(out == &out && (r == ENOMEM || (!glibc_errno && r != 0)));
        void *p = malloc_v(10);
        errno = 0;
        CHECK(realloc_v(p, huge[i]) == NULL && ENOMEM_SET);
        expect_chunk(p, 10, 0);
        free(p);
    }
}

static void test_neighbours(void) {
    enum { N = 2000 };
    static char *chunks[N];
    static size_t sizes[N];
    unsigned x = 1;
    for (int i = 0; i < N; ++i) {
        x = x * 1103515245u + 12345u;
        sizes[i] = 1 + (x >> 8) % (i % 100 == 0 ? 70000 : 200);
        chunks[i] = malloc_v(sizes[i]);
        CHECK(chunks[i]);
        memset(chunks[i], i & 0xff, sizes[i]);
    }
    for (int i = 0; i < N; ++i) expect_chunk(chunks[i], sizes[i], 0);
    for (int i = 0; i < N; i += 2) free(chunks[i]);
    for (int i = 0; i < N; ++i) {
        if (i % 2 == 0) expect_gone(chunks[i]);
        else expect_chunk(chunks[i], sizes[i], 0);
    }
    for (int i = 1; i < N; i += 2) free(chunks[i]);
}

/* Chunks of 1 to 8 bytes, many in a row: an allocator with 8- and 16-byte size classes (jemalloc,
 * mimalloc; allocators.sh) would pack them closer than the index's 32-byte granules if the index did not
 * raise their requests to 32 bytes (malloc's call raises them only where the allocator is not glibc's,
 * whose chunks are 32 bytes apart anyway: backends/preload/terminal.h, unowned_malloc).  Every one is
 * found, with its size; none is lost when its neighbours go. */
static void test_tiny_neighbours(void) {
    enum { N = 4096 };
    static char *chunks[N];
    for (int i = 0; i < N; ++i) {
        chunks[i] = malloc_v((size_t)(i % 8 + 1));
        CHECK(chunks[i]);
        memset(chunks[i], i & 0xff, (size_t)(i % 8 + 1));
    }
    for (int i = 0; i < N; ++i) {
        for (int j = i + 1; j < N && j < i + 8; ++j) {
            const uintptr_t a = (uintptr_t)chunks[i], b = (uintptr_t)chunks[j];
            CHECK((a > b ? a - b : b - a) >= 32);
        }
        expect_chunk(chunks[i], (size_t)(i % 8 + 1), 0);
    }
    for (int i = 0; i < N; i += 2) free(chunks[i]);
    for (int i = 1; i < N; i += 2) expect_chunk(chunks[i], (size_t)(i % 8 + 1), 0);
    for (int i = 1; i < N; i += 2) free(chunks[i]);
}

struct visit { size_t chunks, ours, early; const void *want[3]; int seen[3]; };

static int visitor(const struct heapindex_chunk *c, void *arg) {
    struct visit *v = arg;
    v->chunks++;
    if (c->flags & HEAPINDEX_FLAG_EARLY) v->early++;
    for (int i = 0; i < 3; ++i)
        if (c->base == v->want[i]) v->seen[i]++;
    return 0;
}

static int stop_at_first(const struct heapindex_chunk *c, void *arg) {
    (void)c;
    ++*(int *)arg;
    return 1;
}

static void test_for_each_and_stats(void) {
    struct heapindex_stats before, after;
    heapindex_stats(&before);
    void *a = malloc_v(111), *b = malloc_v(2222), *c = calloc_v(3, 1111);
    struct visit v = {0, 0, 0, {a, b, c}, {0, 0, 0}};
    const size_t n = heapindex_for_each(visitor, &v);
    CHECK(n == v.chunks && n >= 3);
    CHECK(v.seen[0] == 1 && v.seen[1] == 1 && v.seen[2] == 1);
    int calls = 0;
    CHECK(heapindex_for_each(stop_at_first, &calls) == 1 && calls == 1);
    heapindex_stats(&after);
    CHECK(after.total_allocations >= before.total_allocations + 3);
    CHECK(after.live_chunks >= 3);
    CHECK(after.live_bytes >= 111 + 2222 + 3333);
    CHECK(after.peak_live_bytes >= after.live_bytes);
    CHECK(after.index_bytes > 0);
    CHECK(after.corrupt_trailers == 0 && after.invalid_frees == 0);
    free(a), free(b), free(c);
    struct heapindex_stats end;
    heapindex_stats(&end);
    CHECK(end.total_frees >= after.total_frees + 3);
}

/* A pool allocator's blocks, registered with client requests, inside one malloc'd chunk. */
static void test_client_blocks(void) {
    char *pool = malloc_v(4096);
    CHECK(pool);
    CHECK(heapindex_notify_alloc(pool + 64, 100, NULL) == 1);
    CHECK(heapindex_notify_alloc(pool + 256, 16, (const void *)0x1234) == 1);
    struct heapindex_chunk c;
    CHECK(heapindex_lookup(pool + 64 + 99, &c) == 1 && c.base == pool + 64 && c.size == 100);
    CHECK(c.flags & HEAPINDEX_FLAG_CLIENT);
    CHECK(heapindex_lookup(pool + 256, &c) == 1 && c.alloc_site == (const void *)0x1234);
    /* Between blocks: the pool chunk itself. */
    CHECK(heapindex_lookup(pool + 200, &c) == 1 && c.base == pool && !(c.flags & HEAPINDEX_FLAG_CLIENT));
    /* Refused: overlapping, or within 16 bytes of a registered block (reported on the log). */
    CHECK(heapindex_notify_alloc(pool + 100, 8, NULL) == 0);
    CHECK(heapindex_notify_alloc(pool + 260, 8, NULL) == 0);
    struct heapindex_stats s;
    heapindex_stats(&s);
    CHECK(s.client_blocks == 2);
    CHECK(heapindex_notify_free(pool + 64) == 1);
    CHECK(heapindex_lookup(pool + 70, &c) == 1 && c.base == pool);
    CHECK(heapindex_notify_free(pool + 256) == 1);
    CHECK(heapindex_check(stderr) == 0);
    free(pool);
}

/* With libifuncmalloc.so preloaded after the index: the chunk its IFUNC resolver calloc'd while the index's
 * terminal was looking malloc up came from the bootstrap arena; it is indexed, without a trailer. */
static void test_early_chunk(void) {
    char *(*early_chunk)(void) = (char *(*)(void))dlsym(RTLD_DEFAULT, "ifm_early_chunk");
    if (early_chunk == NULL) return;
    char *p = early_chunk();
    CHECK(p != NULL);
    struct heapindex_chunk c;
    CHECK(heapindex_lookup(p + 10, &c) == 1 && c.base == p && c.size == 64);
    CHECK(c.flags & HEAPINDEX_FLAG_EARLY);
    CHECK(!(c.flags & HEAPINDEX_FLAG_TRAILER));
    CHECK(malloc_usable_size(p) == 64);
    p = realloc_v(p, 5000);
    CHECK(p && strcmp(p, "allocated inside an IFUNC resolver") == 0);
    expect_chunk(p, 5000, HEAPINDEX_FLAG_REALLOC);
    free(p);
    printf("lookups: the bootstrap chunk made inside the IFUNC resolver is indexed as early\n");
}

int main(int argc, char **argv) {
    glibc_errno = !(argc > 1 && strcmp(argv[1], "other") == 0);
    CHECK(heapindex_present());
    test_plain_family();
    test_aligned_family();
    test_mmap_sized();
    test_realloc();
    test_overflow();
    test_neighbours();
    test_tiny_neighbours();
    test_for_each_and_stats();
    test_client_blocks();
    test_early_chunk();
    CHECK(heapindex_check(stderr) == 0);
    struct heapindex_stats s;
    heapindex_stats(&s);
    CHECK(s.corrupt_trailers == 0 && s.invalid_frees == 0);
    printf("lookups: %u interior addresses checked, %llu allocations, index sound\n", checked_addresses,
           (unsigned long long)s.total_allocations);
    return 0;
}
