/* SPDX-License-Identifier: MIT */
/* 8 threads x 100,000 mixed operations (malloc, calloc, realloc, posix_memalign, aligned_alloc, free,
 * realloc to zero) under the recording client: afterwards the event counts must balance exactly with
 * what the threads did, and no chunk may be left live.  Barriers keep thread creation and exit (which
 * allocate inside glibc) outside the measured window. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "recorder_client.h"

enum { THREADS = 8, OPS = 100000, SLOTS = 256 };

struct tally {
    uint64_t allocs, frees, reallocs;
};
static struct tally tallies[THREADS];
/* ready/go frame the start, done/leave the end: main takes its snapshots while every worker waits. */
static pthread_barrier_t ready, go, done, leave;

static void *worker(void *arg) {
    struct tally *t = &tallies[(intptr_t)arg];
    void *slot[SLOTS] = {0};
    size_t size[SLOTS] = {0};
    uint64_t x = 0x9e3779b97f4a7c15ull * (uint64_t)((intptr_t)arg + 1);
    pthread_barrier_wait(&ready);
    pthread_barrier_wait(&go);
    for (int op = 0; op < OPS; ++op) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        unsigned i = x % SLOTS;
        size_t n = 1 + (x >> 20) % ((x >> 40) % 8 == 0 ? 65536 : 256);
        if (slot[i]) {
            /* Check the chunk still holds what we wrote. */
            if (((unsigned char *)slot[i])[0] != (unsigned char)i || ((unsigned char *)slot[i])[size[i] - 1] != (unsigned char)i) {
                fprintf(stderr, "chunk corrupted\n");
                exit(1);
            }
            switch ((x >> 8) % 3) {
            case 0: free(slot[i]); t->frees++; slot[i] = NULL; continue;
            case 1: {
                void *q = realloc(slot[i], n);
                if (!q) exit(3);
                t->reallocs++;
                slot[i] = q;
                break;
            }
            case 2: slot[i] = realloc(slot[i], 0); t->frees++; continue; /* frees, returns NULL */
            }
        } else {
            switch ((x >> 8) % 4) {
            case 0: slot[i] = malloc(n); break;
            case 1: slot[i] = calloc(1, n); break;
            case 2: if (posix_memalign(&slot[i], 64, n)) slot[i] = NULL; break;
            case 3: slot[i] = aligned_alloc(32, n); break;
            }
            if (!slot[i]) exit(3);
            t->allocs++;
        }
        size[i] = n;
        memset(slot[i], (int)i, n);
    }
    for (unsigned i = 0; i < SLOTS; ++i)
        if (slot[i]) {
            free(slot[i]);
            t->frees++;
        }
    pthread_barrier_wait(&done);
    pthread_barrier_wait(&leave);
    return NULL;
}

int main(void) {
    struct recorder_api rec;
    int have = recorder_find(&rec, 0);
    pthread_t th[THREADS];
    pthread_barrier_init(&ready, NULL, THREADS + 1);
    pthread_barrier_init(&go, NULL, THREADS + 1);
    pthread_barrier_init(&done, NULL, THREADS + 1);
    pthread_barrier_init(&leave, NULL, THREADS + 1);
    for (intptr_t i = 0; i < THREADS; ++i) CHECK(pthread_create(&th[i], NULL, worker, (void *)i) == 0);
    struct mhtest_counts before, after;
    pthread_barrier_wait(&ready);
    if (have) rec.get_counts(&before);
    pthread_barrier_wait(&go);
    pthread_barrier_wait(&done);
    if (have) rec.get_counts(&after);
    pthread_barrier_wait(&leave);
    for (int i = 0; i < THREADS; ++i) pthread_join(th[i], NULL);
    struct tally sum = {0, 0, 0};
    for (int i = 0; i < THREADS; ++i) {
        sum.allocs += tallies[i].allocs;
        sum.frees += tallies[i].frees;
        sum.reallocs += tallies[i].reallocs;
    }
    CHECK(sum.allocs == sum.frees);
    CHECK(sum.allocs + sum.frees + sum.reallocs > (uint64_t)THREADS * OPS / 2);
    if (have) {
        if (after.post_successful_alloc - before.post_successful_alloc != sum.allocs ||
            after.post_nonnull_free - before.post_nonnull_free != sum.frees)
            fprintf(stderr, "events: %llu allocations, %llu frees, %llu reallocations; threads did %llu, %llu, %llu\n",
                    (unsigned long long)(after.post_successful_alloc - before.post_successful_alloc),
                    (unsigned long long)(after.post_nonnull_free - before.post_nonnull_free),
                    (unsigned long long)(after.pre_nonnull_nonzero_realloc - before.pre_nonnull_nonzero_realloc),
                    (unsigned long long)sum.allocs, (unsigned long long)sum.frees, (unsigned long long)sum.reallocs);
        CHECK(after.post_successful_alloc - before.post_successful_alloc == sum.allocs);
        CHECK(after.pre_alloc - before.pre_alloc == sum.allocs + sum.reallocs);
        CHECK(after.post_nonnull_free - before.post_nonnull_free == sum.frees);
        CHECK(after.pre_nonnull_free - before.pre_nonnull_free == sum.frees);
        CHECK(after.pre_nonnull_nonzero_realloc - before.pre_nonnull_nonzero_realloc == sum.reallocs);
        CHECK(after.post_nonnull_nonzero_realloc - before.post_nonnull_nonzero_realloc == sum.reallocs);
        CHECK(after.live == before.live);
    }
    printf("threads: %llu allocations, %llu reallocations, %llu frees%s\n", (unsigned long long)sum.allocs,
           (unsigned long long)sum.reallocs, (unsigned long long)sum.frees, have ? ", events balance" : "");
    return 0;
}
