/* SPDX-License-Identifier: MIT */
/* The calls-into-itself case (docs/link-time.md).  This file defines malloc, free, calloc and realloc (a
 * small allocator without memalign or malloc_usable_size, so the wrapdl fallbacks are linked too) and calls
 * them itself, from main.  Those calls are not undefined references, so `ld --wrap=malloc` leaves them
 * alone on bfd and gold (lld does rename them), and libc's own calls into this malloc reach it through the
 * dynamic symbol table, which --wrap never touches.  Linked with wrapdl (through an object file, not an
 * archive), every call must raise its events once, through the recorder's layer, with a caller in this
 * executable, and be served by this allocator; calloc, which calls malloc itself, once and not twice.
 * Compiled -fPIC (and -fsemantic-interposition for clang), or the compiler would inline the calls.
 *
 *   self_call ANY MODE     (matrix.sh's calling convention; MODE: none, recorder, layer) */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "mx_check.h"

/* A bump allocator: one thread calls it (this program starts none). */
#define HEAP_SIZE (16u << 20)
static _Alignas(16) unsigned char heap[HEAP_SIZE];
static size_t top;

static int owns(const void *p) { return (const unsigned char *)p >= heap && (const unsigned char *)p < heap + HEAP_SIZE; }

static size_t *size_of(void *p) {
    if (!owns(p)) {
        fprintf(stderr, "self_call: a chunk this allocator does not own reached it\n");
        abort();
    }
    return (size_t *)p - 2;
}

void *malloc(size_t n) {
    size_t need = ((n + 15) & ~(size_t)15) + 16;
    if (n > HEAP_SIZE || top + need > HEAP_SIZE) {
        errno = ENOMEM;
        return NULL;
    }
    unsigned char *p = heap + top + 16;
    top += need;
    ((size_t *)p)[-2] = n;
    return p;
}

void free(void *p) {
    if (p) *size_of(p) = 0; /* checks ownership; a bump allocator reuses nothing */
}

void *calloc(size_t k, size_t n) {
    size_t total;
    if (__builtin_mul_overflow(k, n, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    void *p = malloc(total); /* through the symbol: must not raise a second set of events */
    if (p) memset(p, 0, total);
    return p;
}

void *realloc(void *p, size_t n) {
    if (!p) return malloc(n);
    if (!n) {
        free(p);
        return NULL;
    }
    size_t old = *size_of(p);
    void *q = malloc(n);
    if (q) {
        memcpy(q, p, old < n ? old : n);
        free(p);
    }
    return q;
}

int main(int argc, char **argv) {
    if (argc != 3) return 2;
    mx_start(argv[2]);
    const int route = mode == M_NONE ? UNCHECKED : MHTEST_ROUTE_LAYER;
    const void *self = (const void *)&main, *libc = address_in("libc.so.6", "strdup");

    begin();
    char *p = malloc(40);
    end();
    nwant = 0;
    want_alloc(40, 16, p);
    check_events("malloc", route, self);
    if (!owns(p)) FAIL("malloc: served by another allocator");
    memset(p, 'x', 40);

    begin();
    char *z = calloc(4, 10);
    end();
    nwant = 0;
    want_alloc(40, 16, z);
    check_events("calloc", route, self);
    for (int i = 0; i < 40; ++i)
        if (!owns(z) || z[i]) FAIL("calloc: not this allocator's zeroed chunk");

    begin();
    char *q = realloc(p, 100);
    end();
    nwant = 0;
    want_realloc(p, 100, q);
    check_events("realloc", route, self);
    if (!owns(q) || q[0] != 'x' || q[39] != 'x') FAIL("realloc: the contents did not move");

    begin();
    free(q);
    free(z);
    end();
    nwant = 0;
    want_free(q);
    want_free(z);
    check_events("free", route, self);

    /* And libc's own call, which reaches this malloc through the dynamic symbol table. */
    begin();
    char *s = strdup("itself");
    end();
    nwant = 0;
    want_alloc(7, 16, s);
    check_events("strdup", route, libc);
    if (!owns(s)) FAIL("strdup: served by another allocator");
    free(s);

    printf("malloc, calloc, realloc, free and libc's strdup: each once, served by this executable's allocator\n");
    return 0;
}
