/* SPDX-License-Identifier: MIT */
/* A program built by allocscc, run under librecorder.so: every allocation is seen once, by the tool, with
 * the real caller -- the caller of xmalloc for a chunk xmalloc made (the allocation site), the caller of
 * malloc otherwise.  With OWN_ALLOCATOR the program has an allocator of its own (bump.c: as an object,
 * from an archive, or as a shared library), and the chunks must come from its arena.  Without the tool (no argument) it just runs. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <string.h>

#include "../c/util.h"
#include "recorder_client.h"

#ifdef OWN_ALLOCATOR
int bump_in_arena(const void *p); /* bump.c: the program's own allocator, linked in some way */
static int in_arena(const void *p) { return bump_in_arena(p); }
#else
static int in_arena(const void *p) { (void)p; return 1; }
#endif

static void *volatile sink;
__attribute__((noinline)) void *site_xmalloc(void) { sink = xmalloc(24); return sink; }
__attribute__((noinline)) void *site_malloc(void) { sink = malloc(40); return sink; }

static const char *function_of(const void *addr) {
    Dl_info info;
    return addr != NULL && dladdr(addr, &info) != 0 && info.dli_sname != NULL ? info.dli_sname : "(none)";
}

/* The one post_successful_alloc event of chunk p, which must name `function` as its caller. */
static void expect_alloc(const struct mhtest_event *ev, size_t n, const void *p, const char *function) {
    size_t seen = 0;
    const void *caller = NULL;
    for (size_t i = 0; i < n; ++i)
        if (ev[i].kind == MHTEST_POST_SUCCESSFUL_ALLOC && ev[i].ptr == p) ++seen, caller = ev[i].caller;
    printf("chunk %p: %zu event(s), caller in %s (want 1 in %s)\n", p, seen, function_of(caller), function);
    CHECK(seen == 1);
    CHECK(strcmp(function_of(caller), function) == 0);
    CHECK(in_arena(p));
}

int main(int argc, char **argv) {
    struct recorder_api api;
    if (!recorder_find(&api, argc > 1)) {
        xfree(site_xmalloc());
        puts("ran without a tool");
        return 0;
    }
    struct mhtest_event ev[64];
    api.log_begin();
    void *a = site_xmalloc();
    void *b = site_malloc();
    size_t n = api.log_end(ev, 64);
    expect_alloc(ev, n, a, "site_xmalloc");
    expect_alloc(ev, n, b, "site_malloc");
    xfree(a);
    free(b);
    puts("ok");
    return 0;
}
