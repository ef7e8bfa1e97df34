/* SPDX-License-Identifier: MIT */
/* A bump allocator: a malloc family of the program's own (malloc, free, calloc, realloc), linked into the
 * executable as an object, from a static archive, or as a shared library built by allocscc. */
#include <stddef.h>
#include <string.h>

static char arena[1 << 22];
static size_t used;

void *malloc(size_t n) {
    n = (n + 15) & ~(size_t)15;
    if (used + n > sizeof arena) return NULL;
    used += n;
    return arena + used - n;
}
void free(void *p) { (void)p; }
void *calloc(size_t a, size_t b) {
    void *p = malloc(a * b);
    return p ? memset(p, 0, a * b) : p;
}
void *realloc(void *p, size_t n) {
    void *q = malloc(n);
    if (q && p) memcpy(q, p, n);
    return q;
}
int bump_in_arena(const void *p) { return (const char *)p >= arena && (const char *)p < arena + sizeof arena; }
