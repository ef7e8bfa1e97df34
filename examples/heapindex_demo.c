/* SPDX-License-Identifier: MIT */
/* The heap index's demo (README.md): run it under LD_PRELOAD=libheapindex.so.  It builds a small symbol
 * table (nodes and strings on the heap, and a pool whose blocks it registers with client requests), then
 * asks the index about pointers into the middle of things: which chunk, how big, allocated where, when
 * and by which thread.  Without the index it still runs, and says the index is absent.  Link it with
 * -rdynamic so that dladdr can name its functions. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mallochooks/heapindex.h"

struct node {
    struct node *next;
    char *name;
    double value;
};

__attribute__((noinline)) struct node *make_node(struct node *next, const char *name, double value) {
    struct node *n = malloc(sizeof *n);
    n->next = next;
    n->name = strdup(name);
    n->value = value;
    return n;
}

__attribute__((noinline)) char *make_pool(size_t bytes) {
    char *p = malloc(bytes);
    __asm__ volatile("" ::: "memory"); /* not a tail call: the site stays in make_pool */
    return p;
}

static void explain(const char *what, const void *p) {
    struct heapindex_chunk c;
    if (!heapindex_lookup(p, &c)) {
        printf("%-28s %p: not inside any live chunk\n", what, p);
        return;
    }
    Dl_info info;
    const char *fn = dladdr(c.alloc_site, &info) && info.dli_sname ? info.dli_sname : "?";
    printf("%-28s %p: %zu bytes into a %zu-byte %s (usable %zu) at %p, allocated by %s (%p), seq %llu, "
           "thread %u\n", what, p, (size_t)((const char *)p - (const char *)c.base), c.size,
           (c.flags & HEAPINDEX_FLAG_CLIENT) ? "pool block" : "chunk", c.usable_size, c.base, fn, c.alloc_site,
           (unsigned long long)c.seq, c.tid);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0); /* our lines before the index's exit report, even into a pipe */
    if (!heapindex_present()) {
        puts("heapindex_demo: libheapindex.so is not loaded (run with LD_PRELOAD=.../libheapindex.so)");
        return 0;
    }
    struct node *list = NULL;
    const char *names[] = {"alpha", "beta", "gamma", "a rather longer name for a symbol"};
    for (int i = 0; i < 4; ++i) list = make_node(list, names[i], i * 1.5);
    char *pool = make_pool(4096);
    heapindex_notify_alloc(pool + 128, 256, NULL); /* a pool block, as a custom allocator would */

    explain("&list->value", &list->value);
    explain("list->name + 7", list->name + 7);
    explain("&list->next->next->next", &list->next->next->next);
    explain("pool + 200 (inside a block)", pool + 200);
    explain("pool + 1000 (between blocks)", pool + 1000);
    explain("list->name + strlen + 1", list->name + strlen(list->name) + 1);
    const void *volatile freed = list->next->name; /* only the address is used after the free */
    free(list->next->name);
    list->next->name = NULL;
    explain("a freed string", freed);
    explain("a stack variable", &list);

    struct heapindex_stats s;
    heapindex_stats(&s);
    printf("index: %llu live chunks holding %llu bytes, %llu allocations so far, %llu bytes of index\n",
           (unsigned long long)s.live_chunks, (unsigned long long)s.live_bytes,
           (unsigned long long)s.total_allocations, (unsigned long long)s.index_bytes);
    printf("heapindex_check: %s\n", heapindex_check(stderr) == 0 ? "sound" : "PROBLEMS");
    return 0; /* the nodes stay live: HEAPINDEX_REPORT=stderr lists them by site at exit */
}
