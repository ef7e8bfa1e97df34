/* SPDX-License-Identifier: MIT */
/* Allocation and lookups at the same time, under libheapindex.so: 4 threads allocate, reallocate and free
 * (malloc, calloc, realloc, posix_memalign) and look their own chunks up after every operation, which
 * must answer exactly (base, size, thread); 2 more threads look up addresses inside the chunks the others
 * publish, while those are being freed and replaced: any answer must be a chunk that contains the
 * address.  Afterwards the index must be sound, and its live count must match a walk of it. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../check.h"
#include "mallochooks/heapindex.h"

enum { WORKERS = 4, READERS = 2, OPS = 60000, SLOTS = 512 };

static _Atomic(char *) published[WORKERS][SLOTS];
static atomic_int workers_done, readers_done;
static atomic_ullong reader_lookups, reader_hits;

static void *worker(void *arg) {
    const int w = (int)(intptr_t)arg;
    char *slot[SLOTS] = {0};
    const uint32_t tid = (uint32_t)gettid();
    uint64_t x = 0x9e3779b97f4a7c15ull * (uint64_t)(w + 1);
    for (int op = 0; op < OPS; ++op) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        const unsigned i = x % SLOTS;
        const size_t n = 1 + (x >> 20) % ((x >> 40) % 16 == 0 ? 100000 : 300);
        if (slot[i]) {
            atomic_store(&published[w][i], NULL);
            if ((x >> 8) % 2) {
                free(slot[i]);
                slot[i] = NULL;
                continue;
            }
            slot[i] = realloc(slot[i], n);
        } else {
            switch ((x >> 8) % 3) {
            case 0: slot[i] = malloc(n); break;
            case 1: slot[i] = calloc(1, n); break;
            case 2: if (posix_memalign((void **)&slot[i], 64, n)) slot[i] = NULL; break;
            }
        }
        CHECK(slot[i] != NULL);
        slot[i][n - 1] = 1;
        struct heapindex_chunk c;
        const char *probe = slot[i] + (x >> 33) % n;
        CHECK(heapindex_lookup(probe, &c) == 1);
        CHECK(c.base == slot[i] && c.size == n && c.tid == tid);
        atomic_store(&published[w][i], slot[i]);
    }
    /* Keep the last chunks until the readers have looked at them: on a loaded machine a reader may not
     * have run at all while the workers did. */
    atomic_fetch_add(&workers_done, 1);
    while (atomic_load(&readers_done) < READERS) sched_yield();
    for (unsigned i = 0; i < SLOTS; ++i) {
        atomic_store(&published[w][i], NULL);
        free(slot[i]);
    }
    return NULL;
}

static void probe(char *p, uint64_t x) {
    if (p == NULL) return;
    const char *a = p + (x >> 40) % 64;
    struct heapindex_chunk c;
    atomic_fetch_add(&reader_lookups, 1);
    if (heapindex_lookup(a, &c)) {
        atomic_fetch_add(&reader_hits, 1);
        CHECK((const char *)c.base <= a && a < (const char *)c.base + c.size);
    }
}

static void *reader(void *arg) {
    uint64_t x = 12345 + (uint64_t)(intptr_t)arg;
    while (atomic_load(&workers_done) < WORKERS) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        probe(atomic_load(&published[x % WORKERS][(x >> 8) % SLOTS]), x);
    }
    /* The workers wait with their last chunks published: every one is found. */
    for (int w = 0; w < WORKERS; ++w)
        for (int i = 0; i < SLOTS; ++i) probe(atomic_load(&published[w][i]), 0);
    atomic_fetch_add(&readers_done, 1);
    return NULL;
}

static int count(const struct heapindex_chunk *c, void *arg) {
    if (!(c->flags & HEAPINDEX_FLAG_CLIENT)) ++*(size_t *)arg;
    return 0;
}

int main(void) {
    CHECK(heapindex_present());
    pthread_t w[WORKERS], r[READERS];
    for (intptr_t i = 0; i < READERS; ++i) CHECK(pthread_create(&r[i], NULL, reader, (void *)i) == 0);
    for (intptr_t i = 0; i < WORKERS; ++i) CHECK(pthread_create(&w[i], NULL, worker, (void *)i) == 0);
    for (int i = 0; i < WORKERS; ++i) pthread_join(w[i], NULL);
    for (int i = 0; i < READERS; ++i) pthread_join(r[i], NULL);
    CHECK(heapindex_check(stderr) == 0);
    size_t walked = 0;
    heapindex_for_each(count, &walked);
    struct heapindex_stats s;
    heapindex_stats(&s);
    CHECK(s.live_chunks == walked);
    CHECK(s.total_allocations >= (uint64_t)WORKERS * OPS / 2);
    CHECK(atomic_load(&reader_hits) > 0);
    printf("threads: %d workers x %d operations with own lookups, %llu concurrent lookups (%llu found), "
           "%zu chunks live after, index sound\n", WORKERS, OPS, (unsigned long long)atomic_load(&reader_lookups),
           (unsigned long long)atomic_load(&reader_hits), walked);
    return 0;
}
