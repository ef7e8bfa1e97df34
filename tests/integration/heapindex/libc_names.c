/* SPDX-License-Identifier: MIT */
/* glibc's __libc_malloc family under libheapindex.so (issue 16, item 4): a chunk from one name is
 * released through the other (the false "invalid free" of __libc_malloc then free), every chunk is
 * indexed whichever name made it, and a heap error made through a __libc_ name is reported as one.
 * libc_names.sh runs each case in its own process, with the index alone and in front of allocators that
 * replace glibc's (libifuncmalloc.so, built on __libc_malloc; tcmalloc; mimalloc), and checks the report.
 * Built with -DOWN_MALLOC, the executable defines malloc and free itself, forwarding to __libc_malloc and
 * __libc_free (a replacement linked into the program). */
#define _GNU_SOURCE
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../check.h"
#include "mallochooks/heapindex.h"

#include "../libc_names.h"

#ifdef OWN_MALLOC
/* The program's own malloc and free, built on glibc's: each allocation passes the index once, through
 * __libc_malloc (and the program's calloc, realloc, ... the preloaded ones). */
static unsigned own_mallocs, own_frees;
void *malloc(size_t n) {
    ++own_mallocs;
    return __libc_malloc(n);
}
void free(void *p) {
    ++own_frees;
    __libc_free(p);
}
#endif

/* Through volatile pointers, so that the compiler neither folds nor drops the calls. */
static void *(*volatile libc_malloc_v)(size_t) = __libc_malloc;
static void *(*volatile libc_calloc_v)(size_t, size_t) = __libc_calloc;
static void *(*volatile libc_realloc_v)(void *, size_t) = __libc_realloc;
static void (*volatile libc_free_v)(void *) = __libc_free;
static void *(*volatile libc_memalign_v)(size_t, size_t) = __libc_memalign;
static void *(*volatile libc_valloc_v)(size_t) = __libc_valloc;
static void *(*volatile libc_pvalloc_v)(size_t) = __libc_pvalloc;

#define NOINLINE __attribute__((noinline, visibility("default")))
#define NOT_TAIL() __asm__ volatile("" ::: "memory")
NOINLINE void *site_libc_malloc(size_t n) {
    void *p = libc_malloc_v(n);
    NOT_TAIL();
    return p;
}
NOINLINE void site_libc_free(void *p) {
    libc_free_v(p);
    NOT_TAIL();
}

/* The chunk at p is indexed, starts at p, holds n bytes, was allocated here (its site lies in this
 * program, not in the index nor in glibc), and its usable size is what the index says. */
static void indexed(const void *p, size_t n, const char *what) {
    struct heapindex_chunk c;
    if (!heapindex_lookup((const char *)p + n / 2, &c) || c.base != p || c.size != n) {
        fprintf(stderr, "libc-names: %s: %p not indexed as a chunk of %zu bytes\n", what, p, n);
        exit(1);
    }
    extern char __executable_start[], etext[];
    if ((const char *)c.alloc_site < __executable_start || (const char *)c.alloc_site >= etext) {
        fprintf(stderr, "libc-names: %s: site %p is not in the program\n", what, c.alloc_site);
        exit(1);
    }
    CHECK(malloc_usable_size((void *)p) == c.usable_size);
}

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    const char *c = argv[1];
    const int present = heapindex_present();
    if (strcmp(c, "mixed") == 0) {
        /* Every pairing of a __libc_ name with the plain family, each chunk indexed when the index is
         * there, filled and released without a report. */
        struct heapindex_stats before, after;
        if (present) heapindex_stats(&before);
        char *a = libc_malloc_v(100);
        if (present) indexed(a, 100, "__libc_malloc");
        memset(a, 'a', 100);
        free_v(a); /* __libc_malloc then free */
        char *b = malloc_v(200);
        if (present) indexed(b, 200, "malloc");
        libc_free_v(b); /* malloc then __libc_free */
        char *d = malloc_v(40);
        memset(d, 'd', 40);
        d = libc_realloc_v(d, 5000); /* __libc_realloc of a malloc'd chunk */
        if (present) indexed(d, 5000, "__libc_realloc");
        for (int i = 0; i < 40; ++i) CHECK(d[i] == 'd');
        d = realloc_v(d, 60); /* and realloc of that */
        if (present) indexed(d, 60, "realloc");
        free_v(d);
        char *e = libc_memalign_v(256, 300);
        CHECK(((uintptr_t)e & 255) == 0);
        if (present) indexed(e, 300, "__libc_memalign");
        free_v(e);
        char *f = libc_calloc_v(10, 30);
        for (int i = 0; i < 300; ++i) CHECK(f[i] == 0);
        if (present) indexed(f, 300, "__libc_calloc");
        libc_free_v(f);
        const size_t page = (size_t)sysconf(_SC_PAGESIZE);
        char *g = libc_valloc_v(100);
        CHECK(((uintptr_t)g & (page - 1)) == 0);
        if (present) indexed(g, 100, "__libc_valloc");
        free_v(g);
        char *h = libc_pvalloc_v(100);
        CHECK(((uintptr_t)h & (page - 1)) == 0);
        if (present) indexed(h, page, "__libc_pvalloc");
        libc_free_v(h);
        libc_free_v(NULL);
        CHECK(libc_calloc_v(SIZE_MAX / 2, 3) == NULL);
        if (present) {
            heapindex_stats(&after);
            CHECK(after.invalid_frees == before.invalid_frees && after.corrupt_trailers == before.corrupt_trailers);
            CHECK(after.live_chunks == before.live_chunks);
            CHECK(heapindex_check(stderr) == 0);
        }
        printf("libc-names: mixed: every pairing released cleanly%s\n", present ? ", every chunk indexed" : "");
#ifdef OWN_MALLOC
        printf("libc-names: the program's own malloc ran %u times, its free %u times\n", own_mallocs, own_frees);
        CHECK(own_mallocs >= 2 && own_frees >= 4);
#endif
        return 0;
    }
    if (strcmp(c, "double-free") == 0) {
        /* A heap error made through the __libc_ names is reported as the one it is. */
        void *p = site_libc_malloc(24);
        site_libc_free(p);
        site_libc_free(p);
        puts("survived");
        return 0;
    }
    return 2;
}
