/* SPDX-License-Identifier: MIT */
/* zlib's shape: allocation functions whose sizes are 32-bit unsigned (`zcalloc(voidpf opaque, uInt items,
 * uInt size)`), reached through the stream's function pointers, declared with the 32-bit letters
 * (`zcalloc(anN)p zcfree(aP)`); and a suballocator with 32-bit sizes (`pool32_alloc(nN)p`), whose blocks
 * the heap index gets with their size n * N.  Checked under libheapindex.so. */
#include "site_check.h" /* first: it defines _GNU_SOURCE */

#include <stdlib.h>

typedef void *(*alloc_func)(void *opaque, unsigned items, unsigned size);
typedef void (*free_func)(void *opaque, void *address);

void *zcalloc(void *opaque, unsigned items, unsigned size) {
    (void)opaque;
    void *p = malloc((size_t)items * size);
    __asm__ volatile("" ::: "memory");
    return p;
}

void zcfree(void *opaque, void *ptr) {
    (void)opaque;
    free(ptr);
}

/* Like z_stream: the allocation functions are the stream's, set by the library (deflateInit_ stores
 * zcalloc in strm->zalloc when the caller left it 0). */
struct stream {
    alloc_func zalloc;
    free_func zfree;
    void *opaque;
};
struct stream strm;

__attribute__((noinline)) void stream_init(struct stream *s) {
    if (s->zalloc == NULL) s->zalloc = zcalloc;
    if (s->zfree == NULL) s->zfree = zcfree;
}

static char *pool;
static size_t pool_used = 64;
__attribute__((noinline)) void *pool32_alloc(unsigned items, unsigned size) {
    if (pool == NULL) pool = malloc(4096);
    const size_t n = (size_t)items * size;
    if (pool_used + n > 4096) return NULL;
    pool_used += (n + 15) & ~(size_t)15;
    return pool + pool_used - ((n + 15) & ~(size_t)15);
}
__attribute__((noinline)) void pool32_free(void *p) { (void)p; }

__attribute__((noinline)) void *site_deflate(void) {
    void *p = strm.zalloc(strm.opaque, 3, 16);
    __asm__ volatile("" ::: "memory");
    return p;
}

__attribute__((noinline)) void *site_pool32(void) {
    void *p = pool32_alloc(5, 8);
    __asm__ volatile("" ::: "memory");
    return p;
}

int main(void) {
    stream_init(&strm);
    void *a = site_deflate(), *b = site_pool32();
    if (!heapindex_present()) {
        puts("ran without the index");
        return 0;
    }
    expect_site("zcalloc(opaque, 3, 16) through the stream's pointer", a, 48, "site_deflate");
    expect_site("a 32-bit suballocator's block of 5 * 8 bytes", b, 40, "site_pool32");
    strm.zfree(strm.opaque, a);
    pool32_free(b);
    return site_failures != 0;
}
