/* SPDX-License-Identifier: MIT */
/* Programs for as_limit.sh, run under `ulimit -v` with and without libheapindex.so.
 *   as_limit large MIB    malloc MIB MiB at once, touch both ends, free: exit 0, or 3 if malloc failed
 *   as_limit threads N    N rounds of 8 threads that each malloc and free 100 chunks (pthread_create
 *                         needs a stack and glibc a new arena's 64 MiB): exit 0, or 3 if a thread could
 *                         not be made
 *   as_limit fill         64-byte chunks until malloc fails, then: the index's count of unindexed chunks
 *                         ("unindexed N"), heapindex_check on stderr (must be sound), every chunk freed */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../check.h"
#include "mallochooks/heapindex.h"

static void *worker(void *arg) {
    uintptr_t x = (uintptr_t)arg * 2654435761u + 1;
    for (int i = 0; i < 100; ++i) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        char *p = malloc_v(16 + (x >> 40) % 4000);
        if (p == NULL) return (void *)1;
        p[0] = 1;
        free_v(p);
    }
    return NULL;
}

int main(int argc, char **argv) {
    CHECK(argc >= 2);
    if (strcmp(argv[1], "large") == 0 && argc == 3) {
        const size_t bytes = strtoull(argv[2], NULL, 10) << 20;
        char *p = malloc_v(bytes);
        if (p == NULL) {
            printf("malloc(%zu MiB) failed: %s\n", bytes >> 20, strerror(errno));
            return 3;
        }
        p[0] = 1, p[bytes - 1] = 1;
        free_v(p);
        printf("malloc(%zu MiB) ok\n", bytes >> 20);
        return 0;
    }
    if (strcmp(argv[1], "threads") == 0 && argc == 3) {
        const long rounds = strtol(argv[2], NULL, 10);
        for (long r = 0; r < rounds; ++r) {
            pthread_t t[8];
            for (int i = 0; i < 8; ++i) {
                const int e = pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)(r * 8 + i));
                if (e != 0) {
                    printf("pthread_create failed in round %ld: %s\n", r, strerror(e));
                    return 3;
                }
            }
            for (int i = 0; i < 8; ++i) {
                void *result;
                CHECK(pthread_join(t[i], &result) == 0 && result == NULL);
            }
        }
        printf("%ld rounds of 8 threads ok\n", rounds);
        return 0;
    }
    if (strcmp(argv[1], "fill") == 0) {
        /* The chunks are chained through their first word: no array to grow. */
        void *head = NULL;
        size_t n = 0;
        for (void **p; (p = malloc_v(64)) != NULL; ++n) {
            *p = head;
            head = p;
        }
        struct heapindex_stats st;
        heapindex_stats(&st);
        printf("%zu chunks, unindexed %llu\n", n, (unsigned long long)st.unindexed_chunks);
        fflush(stdout);
        const int problems = heapindex_check(stderr);
        while (head != NULL) {
            void *next = *(void **)head;
            free_v(head);
            head = next;
        }
        heapindex_stats(&st);
        printf("check: %d problems; live chunks after freeing %llu\n", problems, (unsigned long long)st.live_chunks);
        return problems == 0 ? 0 : 1;
    }
    fprintf(stderr, "usage: as_limit large MIB | threads N | fill\n");
    return 2;
}
