/* SPDX-License-Identifier: MIT */
/* What the C test programs share: CHECK (exit 1 with the failed condition), the malloc family through
 * volatile pointers (the compiler may neither fold, nor drop, nor fuse the calls, nor warn about the
 * impossible sizes a test passes on purpose), and a thread that churns the heap until told to stop. */
#ifndef MALLOCHOOKS_TESTS_CHECK_H
#define MALLOCHOOKS_TESTS_CHECK_H
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond)                                                                       \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);      \
            exit(1);                                                                      \
        }                                                                                 \
    } while (0)

#define MHTEST_UNUSED __attribute__((unused))
static void *(*volatile malloc_v)(size_t) MHTEST_UNUSED = malloc;
static void *(*volatile calloc_v)(size_t, size_t) MHTEST_UNUSED = calloc;
static void *(*volatile realloc_v)(void *, size_t) MHTEST_UNUSED = realloc;
static void (*volatile free_v)(void *) MHTEST_UNUSED = free;
static void *(*volatile memalign_v)(size_t, size_t) MHTEST_UNUSED = memalign;
static void *(*volatile aligned_alloc_v)(size_t, size_t) MHTEST_UNUSED = aligned_alloc;
static void *(*volatile valloc_v)(size_t) MHTEST_UNUSED = valloc;
static void *(*volatile pvalloc_v)(size_t) MHTEST_UNUSED = pvalloc;
static void *(*volatile reallocarray_v)(void *, size_t, size_t) MHTEST_UNUSED = reallocarray;
static int (*volatile posix_memalign_v)(void **, size_t, size_t) MHTEST_UNUSED = posix_memalign;

#ifndef __cplusplus /* C11 atomics; the C++ tests do not churn */
#include <stdatomic.h>

/* pthread_create(&t, NULL, churn_thread, NULL) ... atomic_store(&churn_stopping, 1): mixed malloc, calloc,
 * realloc and free on 64 slots, until told to stop; frees everything before it returns. */
static atomic_int churn_stopping MHTEST_UNUSED;
static MHTEST_UNUSED void *churn_thread(void *arg) {
    (void)arg;
    void *keep[64] = {0};
    unsigned x = 12345;
    while (!atomic_load(&churn_stopping)) {
        x = x * 1103515245u + 12345u;
        unsigned i = (x >> 8) % 64;
        free(keep[i]);
        keep[i] = (x & 1) ? malloc(1 + x % 5000) : calloc(1, 1 + x % 300);
        if (x % 7 == 0) keep[i] = realloc(keep[i], 1 + x % 70000);
    }
    for (int i = 0; i < 64; ++i) free(keep[i]);
    return NULL;
}
#endif

#endif
