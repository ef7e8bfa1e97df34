/* SPDX-License-Identifier: MIT */
/* glibc's __libc_ names raise exactly the events of their plain counterparts (docs/events.md), with the
 * program as the caller, under librecorder.so (preloaded); and under librecorder.so with libifuncmalloc.so
 * behind it (an allocator built on __libc_malloc), a program's malloc raises its events once: the
 * allocator's own __libc_malloc call inside it raises none. */
#define _GNU_SOURCE
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "recorder_client.h"

#include "libc_names.h"

static void *(*volatile libc_malloc_v)(size_t) = __libc_malloc;
static void *(*volatile libc_calloc_v)(size_t, size_t) = __libc_calloc;
static void *(*volatile libc_realloc_v)(void *, size_t) = __libc_realloc;
static void (*volatile libc_free_v)(void *) = __libc_free;
static void *(*volatile libc_memalign_v)(size_t, size_t) = __libc_memalign;

static int in_main(const void *caller) {
    extern char __executable_start[], etext[];
    return (const char *)caller >= __executable_start && (const char *)caller < etext;
}

int main(void) {
    struct recorder_api api;
    recorder_find(&api, 1);
    struct mhtest_event ev[64];

    api.log_begin();
    void *p = libc_malloc_v(100);
    p = libc_realloc_v(p, 300);
    void *q = libc_calloc_v(3, 40);
    void *r = libc_memalign_v(64, 50);
    libc_free_v(p);
    libc_free_v(q);
    free_v(r);
    size_t n = api.log_end(ev, 64);
    static const uint32_t expected[] = {
        MHTEST_PRE_ALLOC, MHTEST_POST_SUCCESSFUL_ALLOC,                                 /* __libc_malloc */
        MHTEST_PRE_NONNULL_NONZERO_REALLOC, MHTEST_PRE_ALLOC,                           /* __libc_realloc */
        MHTEST_POST_NONNULL_NONZERO_REALLOC,
        MHTEST_PRE_ALLOC, MHTEST_POST_SUCCESSFUL_ALLOC,                                 /* __libc_calloc */
        MHTEST_PRE_ALLOC, MHTEST_POST_SUCCESSFUL_ALLOC,                                 /* __libc_memalign */
        MHTEST_PRE_NONNULL_FREE, MHTEST_POST_NONNULL_FREE,                               /* __libc_free */
        MHTEST_PRE_NONNULL_FREE, MHTEST_POST_NONNULL_FREE,                               /* __libc_free */
        MHTEST_PRE_NONNULL_FREE, MHTEST_POST_NONNULL_FREE};                              /* free */
    const size_t want = sizeof expected / sizeof expected[0];
    if (n != want) {
        fprintf(stderr, "libc-names-events: %zu events, expected %zu\n", n, want);
        return 1;
    }
    for (size_t i = 0; i < n; ++i) {
        CHECK(ev[i].kind == expected[i]);
        if (ev[i].kind == MHTEST_PRE_ALLOC || ev[i].kind == MHTEST_PRE_NONNULL_FREE ||
            ev[i].kind == MHTEST_PRE_NONNULL_NONZERO_REALLOC)
            CHECK(in_main(ev[i].caller));
    }
    CHECK(ev[0].size == 100 && ev[2].size == 300 && ev[5].size == 120 && ev[7].size == 50 && ev[7].alignment == 64);

    /* A plain malloc and free: one event pair each, whatever allocator is behind. */
    api.log_begin();
    free_v(malloc_v(70));
    n = api.log_end(ev, 64);
    CHECK(n == 4 && ev[0].kind == MHTEST_PRE_ALLOC && ev[3].kind == MHTEST_POST_NONNULL_FREE);
    printf("libc-names-events: the __libc_ names raise their counterparts' events, once each\n");
    return 0;
}
