/* SPDX-License-Identifier: MIT */
/* A bump allocator: a malloc family of the program's own (malloc, free, calloc, realloc,
 * malloc_usable_size), linked into the executable as an object, from a static archive, or as a shared
 * library built by allocscc.  Each chunk has a 16-byte header that holds its usable size. */
#include <stddef.h>
#include <string.h>

/* 32 MiB (untouched pages cost nothing): under the heap index, the exit report's symbolizer (libdw,
 * loaded at exit) allocates from the process's malloc, which may be this one, and nothing is freed. */
static _Alignas(16) char arena[1 << 25];
static size_t used;

/* Every function allocates through bump(), not through malloc: gcc -O2 turns `p = malloc(n); memset(p, 0,
 * n)` into `calloc(n, 1)`, and a calloc written that way calls itself without end (as ld.so's calloc did
 * here, from a dlopen at exit, until this was found). */
static void *bump(size_t n) {
    n = (n + 15) & ~(size_t)15;
    if (n > sizeof arena || used + 16 + n > sizeof arena) return NULL;
    char *p = arena + used + 16;
    used += 16 + n;
    ((size_t *)p)[-1] = n;
    return p;
}
void *malloc(size_t n) { return bump(n); }
size_t malloc_usable_size(void *p) { return p ? ((size_t *)p)[-1] : 0; }
void free(void *p) { (void)p; }
void *calloc(size_t a, size_t b) {
    if (b != 0 && a > (size_t)-1 / b) return NULL;
    void *p = bump(a * b);
    return p ? memset(p, 0, a * b) : p;
}
void *realloc(void *p, size_t n) {
    void *q = bump(n);
    if (q && p) memcpy(q, p, malloc_usable_size(p) < n ? malloc_usable_size(p) : n);
    return q;
}
int bump_in_arena(const void *p) { return (const char *)p >= arena && (const char *)p < arena + sizeof arena; }
