/* SPDX-License-Identifier: MIT */
/* Heap errors under libheapindex.so, one per run (errors.sh runs each in its own process and checks what
 * the index reported, not whether the process survived: after reporting, the index passes the call on
 * and glibc aborts on most of these).  Each allocation, free and realloc happens in its own named,
 * exported function (the program is linked with -rdynamic), so a report's sites can be checked by name. */
#define _GNU_SOURCE
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../check.h"
#include "mallochooks/heapindex.h"

#define NOINLINE __attribute__((noinline, visibility("default")))
/* After the call, so that it is not a tail call: the return address must lie in the named function. */
#define NOT_TAIL() __asm__ volatile("" ::: "memory")

NOINLINE void *site_alloc(size_t n) {
    void *p = malloc_v(n);
    NOT_TAIL();
    return p;
}
NOINLINE void site_first_free(void *p) {
    free_v(p);
    NOT_TAIL();
}
NOINLINE void site_second_free(void *p) {
    free_v(p);
    NOT_TAIL();
}
NOINLINE void *site_realloc(void *p, size_t n) {
    void *q = realloc_v(p, n);
    NOT_TAIL();
    return q;
}
NOINLINE void site_notify_free(void *p) {
    heapindex_notify_free(p);
    NOT_TAIL();
}

int main(int argc, char **argv) {
    if (argc != 2 || !heapindex_present()) return 2;
    const char *c = argv[1];
    if (strcmp(c, "overflow") == 0) {
        /* One byte past what malloc_usable_size allows lands in the trailer: heapindex_check sees it,
         * and free reports it (glibc's own metadata is untouched, so the program goes on). */
        char *p = site_alloc(40);
        p[malloc_usable_size(p)] ^= 0x5a;
        const int problems = heapindex_check(stderr);
        site_first_free(p);
        struct heapindex_stats s;
        heapindex_stats(&s);
        printf("overflow: check found %d problems, %llu corrupt trailers counted\n", problems,
               (unsigned long long)s.corrupt_trailers);
        return problems >= 1 && s.corrupt_trailers >= 2 ? 0 : 1;
    }
    if (strcmp(c, "double-free") == 0) {
        void *p = site_alloc(24);
        site_first_free(p);
        site_second_free(p);
    } else if (strcmp(c, "double-free-later") == 0) {
        /* Other allocations in between (of another size, so p is not handed out again). */
        void *p = site_alloc(100);
        site_first_free(p);
        for (int i = 0; i < 50; ++i) free(malloc_v(5000 + (size_t)i));
        site_second_free(p);
    } else if (strcmp(c, "realloc-after-free") == 0) {
        void *p = site_alloc(50);
        site_first_free(p);
        site_realloc(p, 100);
    } else if (strcmp(c, "interior") == 0) {
        char *p = site_alloc(100);
        site_second_free(p + 16);
    } else if (strcmp(c, "wild") == 0) {
        static char not_heap[64] __attribute__((aligned(16)));
        site_second_free(not_heap + 16);
    } else if (strcmp(c, "client-double-free") == 0) {
        char *pool = site_alloc(1000);
        if (!heapindex_notify_alloc(pool + 32, 64, NULL)) return 1;
        site_notify_free(pool + 32);
        site_notify_free(pool + 32);
        struct heapindex_stats s;
        heapindex_stats(&s);
        printf("client: %llu double frees counted\n", (unsigned long long)s.double_frees);
        return s.double_frees == 1 ? 0 : 1;
    } else {
        return 2;
    }
    puts("survived");  /* not expected with glibc, and not required */
    return 0;
}
