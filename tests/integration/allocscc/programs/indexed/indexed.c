/* SPDX-License-Identifier: MIT */
/* A program built by allocscc, run under LD_PRELOAD=libheapindex.so: every chunk is in the index with the
 * right allocation site, read back through heapindex_lookup -- the caller of xmalloc (the outermost
 * declared wrapper) for a chunk xmalloc made, the caller of malloc otherwise, the caller of a
 * suballocator for a block it carved out of a malloc'd pool.  The usable size the index reports is what
 * the program sees (malloc_usable_size), which excludes the index's trailer: the program may write all of
 * it, and heapindex_check then still finds the heap sound.  With OWN_ALLOCATOR the chunks must come from
 * the program's own allocator (bump.c, linked as an object, from an archive, or as a shared library).
 * Prints one line per chunk; exits non-zero when a check fails. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mallochooks/heapindex.h"
#include "util.h"

#ifdef OWN_ALLOCATOR
int bump_in_arena(const void *p);
static int in_arena(const void *p) { return bump_in_arena(p); }
#else
static int in_arena(const void *p) { (void)p; return 1; }
#endif

/* A suballocator (declared with ALLOCSCC_SUBALLOC_FNS): 64-byte blocks out of one malloc'd pool. */
static char *pool;
static size_t pool_used = 64; /* the first 64 bytes are no block: a lookup there finds the pool itself */
__attribute__((noinline)) void *pool_alloc(size_t n) {
    if (pool == NULL) pool = malloc(4096);
    if (n > 64 || pool_used + 64 > 4096) return NULL;
    pool_used += 64;
    return pool + pool_used - 64;
}
__attribute__((noinline)) void pool_free(void *p) { (void)p; }

/* A static (file-local) allocation function, declared too (local_xmalloc(Z)p): no linker can send its
 * callers through a shim, so the hooks find its caller by unwinding one frame. */
static __attribute__((noinline)) void *local_xmalloc(size_t n) {
    void *p = malloc(n);
    if (p == NULL) abort();
    __asm__ volatile("" ::: "memory"); /* no tail call: malloc's return address stays in here */
    return p;
}

static int failures;
#define EXPECT(cond)                                                                  \
    do {                                                                              \
        if (!(cond)) {                                                                \
            printf("FAILED: %s (line %d)\n", #cond, __LINE__);                        \
            ++failures;                                                               \
        }                                                                             \
    } while (0)

static const char *function_of(const void *addr) {
    Dl_info info;
    return addr != NULL && dladdr(addr, &info) != 0 && info.dli_sname != NULL ? info.dli_sname : "(none)";
}

static void *volatile sink;
__attribute__((noinline)) void *site_xmalloc(void) { sink = xmalloc(24); return sink; }
__attribute__((noinline)) void *site_xcalloc(void) { sink = xcalloc(3, 8); return sink; }
__attribute__((noinline)) void *site_xstrdup(void) { sink = xstrdup("indexed"); return sink; }
__attribute__((noinline)) void *site_malloc(void) { sink = malloc(40); return sink; }
__attribute__((noinline)) void *site_pool(void) { sink = pool_alloc(48); return sink; }
__attribute__((noinline)) void *site_local(size_t n) { sink = local_xmalloc(n); return sink; }

/* The chunk at p: indexed, starting at p, of `size` bytes, allocated in `function`. */
static void expect_chunk(const char *what, const void *p, size_t size, const char *function, int client) {
    struct heapindex_chunk c;
    const int found = heapindex_lookup(p, &c);
    printf("%s: %p %s, size %zu, usable %zu, site in %s (want %s)\n", what, p, found ? "indexed" : "NOT INDEXED",
           found ? c.size : 0, found ? c.usable_size : 0, found ? function_of(c.alloc_site) : "-", function);
    EXPECT(found);
    if (!found) return;
    EXPECT(c.base == p && c.size == size);
    EXPECT(strcmp(function_of(c.alloc_site), function) == 0);
    EXPECT(!!(c.flags & HEAPINDEX_FLAG_CLIENT) == client);
    if (client) return;
    EXPECT(in_arena(p));
    EXPECT(c.flags & HEAPINDEX_FLAG_TRAILER);
    /* The usable size excludes the trailer: all of it is the program's to write. */
    EXPECT(c.usable_size >= size && c.usable_size == malloc_usable_size((void *)p));
    memset((void *)p, 0xab, c.usable_size);
    /* A byte past the end of the chunk is not in it. */
    struct heapindex_chunk after;
    EXPECT(!heapindex_lookup((const char *)p + c.usable_size, &after) || after.base != p);
}

int main(void) {
    if (!heapindex_present()) {
        xfree(site_xmalloc());
        puts("ran without the index");
        return 0;
    }
    void *a = site_xmalloc(), *b = site_xcalloc(), *c = site_xstrdup(), *d = site_malloc(), *e = site_pool();
    void *f = site_local(56);
    expect_chunk("xmalloc", a, 24, "site_xmalloc", 0);
    expect_chunk("xcalloc -> xmalloc", b, 24, "site_xcalloc", 0);
    expect_chunk("xstrdup -> xmalloc", c, 8, "site_xstrdup", 0);
    expect_chunk("malloc", d, 40, "site_malloc", 0);
    expect_chunk("suballocator block", e, 48, "site_pool", 1);
    expect_chunk("static allocation function", f, 56, "site_local", 0);
    /* The pool that holds the block is a heap chunk of its own, allocated in the suballocator. */
    struct heapindex_chunk pc;
    EXPECT(heapindex_lookup(pool, &pc) && pc.base == pool && pc.size == 4096);
    EXPECT(heapindex_check(stdout) == 0);
    pool_free(e);
    struct heapindex_chunk gone;
    EXPECT(!heapindex_lookup(e, &gone) || gone.base != e);
    xfree(a);
    xfree(b);
    xfree(c);
    free(d);
    free(f);
    EXPECT(!heapindex_lookup(a, &gone) || gone.base != a);
    EXPECT(heapindex_check(stdout) == 0);
    puts(failures ? "FAILED" : "ok");
    return failures != 0;
}
