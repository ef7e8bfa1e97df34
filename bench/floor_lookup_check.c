/* SPDX-License-Identifier: MIT */
/* Run under LD_PRELOAD=libfloorindex.so or libfloorkill.so (meson tests floor-lookup-*): proves that the
 * floor index of bench/ is a real index, not a cost model.  Chunks of 16 B to 4 MiB from malloc, calloc,
 * realloc and posix_memalign, in the main thread and in 4 threads at once, must each be found by
 * floorindex_v1_lookup from random interior pointers, with the right base, requested size, allocating
 * site (inside this program's text), thread id and a sequence number increasing within the thread; a
 * pointer just past the request (the slack and trailer) and a freed chunk must not be found; the library
 * must count no unindexed chunk, no trailer mismatch and no bad free.  Exit status 0 when all holds. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "mallochooks/heapindex.h"

typedef int lookup_fn(const void *, struct heapindex_chunk *);
typedef void counts_fn(uint64_t out[4]);
static lookup_fn *lookup;
static int failures;
static pthread_mutex_t report_lock = PTHREAD_MUTEX_INITIALIZER;

#define CHECK(cond, ...)                                     \
    do {                                                     \
        if (!(cond)) {                                       \
            pthread_mutex_lock(&report_lock);                \
            if (++failures <= 20) {                          \
                fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
                fprintf(stderr, __VA_ARGS__);                \
                fputc('\n', stderr);                         \
            }                                                \
            pthread_mutex_unlock(&report_lock);              \
        }                                                    \
    } while (0)

static uint64_t rng(uint64_t *s) {
    *s ^= *s << 13, *s ^= *s >> 7, *s ^= *s << 17;
    return *s;
}

struct chunk {
    char *p;
    size_t size;
};

/* A chunk of `size` bytes by method m; its allocation site is a return address in this function. */
static __attribute__((noinline)) char *allocate(unsigned m, size_t size) {
    void *p = NULL;
    switch (m % 4) {
    case 0: p = malloc(size); break;
    case 1: p = calloc(1, size); break;
    case 2: p = realloc(malloc(size / 2 + 1), size); break;
    case 3: if (posix_memalign(&p, 64 << (m % 3), size) != 0) p = NULL; break;
    }
    /* No tail call (clang makes `p = malloc(size); return p` one): the site must be in this function. */
    __asm__ volatile("" : "+r"(p));
    return p;
}

static void expect_found(const struct chunk *c, uint64_t *s, uint32_t tid, uint64_t *last_seq) {
    struct heapindex_chunk out;
    const size_t off = c->size > 0 ? rng(s) % c->size : 0;
    CHECK(lookup(c->p + off, &out) == 1, "%p (+%zu of %zu) not found", (void *)c->p, off, c->size);
    CHECK(lookup(c->p, &out) == 1 && out.base == c->p && out.size == c->size,
          "%p of %zu bytes found as %p of %zu", (void *)c->p, c->size, out.base, out.size);
    CHECK(lookup(c->p + c->size - 1, &out) == 1 && out.base == c->p, "last byte of %p not found", (void *)c->p);
    CHECK((uintptr_t)out.alloc_site >= (uintptr_t)&allocate && (uintptr_t)out.alloc_site < (uintptr_t)&allocate + 4096,
          "site %p is not in allocate (%p)", out.alloc_site, (void *)&allocate);
    CHECK(out.tid == tid, "tid %u, expected %u", out.tid, tid);
    CHECK(out.seq > *last_seq, "sequence number %llu after %llu", (unsigned long long)out.seq, (unsigned long long)*last_seq);
    *last_seq = out.seq;
    /* Past the request: the slack and the trailer belong to no chunk (the next chunk starts later). */
    CHECK(lookup(c->p + c->size, &out) == 0 || out.base != c->p, "%p + %zu (past the request) found", (void *)c->p, c->size);
}

static void *exercise(void *arg) {
    uint64_t s = 0x9e3779b97f4a7c15ull * ((uintptr_t)arg + 1);
    const uint32_t tid = (uint32_t)syscall(SYS_gettid);
    enum { n = 3000 };
    static __thread struct chunk live[n];
    uint64_t last_seq = 0;
    for (unsigned i = 0; i < n; ++i) {
        const unsigned shift = 4 + rng(&s) % (i % 50 == 0 ? 19 : 9); /* mostly 16 B - 8 KiB, some to 4 MiB */
        live[i].size = (size_t)(rng(&s) % (1u << shift)) + 1;
        live[i].p = allocate((unsigned)rng(&s), live[i].size);
        CHECK(live[i].p != NULL, "allocation of %zu failed", live[i].size);
        memset(live[i].p, 0xab, live[i].size);
        expect_found(&live[i], &s, tid, &last_seq);
    }
    /* Free every other chunk: those are gone, the others still found (in allocation order, so the
     * sequence numbers keep increasing). */
    for (unsigned i = 0; i < n; i += 2) {
        char *p = live[i].p;
        free(p);
        struct heapindex_chunk out;
        CHECK(lookup(p, &out) == 0 || out.base != p || out.seq > last_seq, "freed %p still found", (void *)p);
    }
    last_seq = 0;
    for (unsigned i = 1; i < n; i += 2) expect_found(&live[i], &s, tid, &last_seq);
    for (unsigned i = 1; i < n; i += 2) free(live[i].p);
    return NULL;
}

int main(void) {
    lookup = (lookup_fn *)dlsym(RTLD_DEFAULT, "floorindex_v1_lookup");
    counts_fn *counts = (counts_fn *)dlsym(RTLD_DEFAULT, "floorindex_v1_counts");
    if (lookup == NULL || counts == NULL) {
        fprintf(stderr, "floorindex_v1_lookup not found: run under LD_PRELOAD=libfloorindex.so or libfloorkill.so\n");
        return 1;
    }
    struct heapindex_chunk out;
    int on_stack;
    CHECK(lookup(&on_stack, &out) == 0, "a stack address found");
    CHECK(lookup((void *)&main, &out) == 0, "a text address found");
    exercise((void *)0);
    pthread_t t[4];
    for (uintptr_t i = 0; i < 4; ++i) pthread_create(&t[i], NULL, exercise, (void *)(i + 1));
    for (int i = 0; i < 4; ++i) pthread_join(t[i], NULL);
    uint64_t c[4];
    counts(c);
    CHECK(c[0] == 0 && c[1] == 0 && c[2] == 0 && c[3] == 0,
          "unindexed %llu, bad frees %llu, trailer mismatches %llu, lost kills %llu", (unsigned long long)c[0],
          (unsigned long long)c[1], (unsigned long long)c[2], (unsigned long long)c[3]);
    printf("floor index: %d failures\n", failures);
    return failures != 0;
}
