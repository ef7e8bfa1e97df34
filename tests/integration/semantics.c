/* SPDX-License-Identifier: MIT */
/* Prints what a program can observe of every malloc-family function: NULL or not, errno, return codes,
 * alignment, zeroing, contents kept by realloc, usable size >= request, failures under an address-space
 * limit.  Run with and without hooks: the outputs must be identical (semantics.sh).  With --exact it
 * also prints usable sizes, which hooks that add nothing to chunks (the noop and tracing libraries)
 * must leave exactly as glibc reports them. */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "check.h"

static int exact;

static void show(const char *what, void *p, size_t req, size_t align, int err) {
    printf("%-40s %s errno=%d", what, p ? "ptr " : "NULL", err);
    if (p) {
        printf(" aligned=%d usable>=req=%d", align ? (uintptr_t)p % align == 0 : 1, malloc_usable_size(p) >= req);
        if (exact) printf(" usable=%zu", malloc_usable_size(p));
    }
    printf("\n");
}

static int all_zero(const void *p, size_t n) {
    const unsigned char *c = p;
    for (size_t i = 0; i < n; ++i)
        if (c[i]) return 0;
    return 1;
}

#define TRY(label, expr, req, align)             \
    do {                                         \
        errno = 0;                               \
        void *p_ = (expr);                       \
        int e_ = errno;                          \
        show(label, p_, req, align, e_);         \
        free(p_);                                \
    } while (0)

static void section_malloc(void) {
    size_t sizes[] = {0, 1, 24, 25, 100, 4096, 1u << 20, 64u << 20, (size_t)PTRDIFF_MAX + 1, SIZE_MAX};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; ++i) {
        char label[64];
        snprintf(label, sizeof label, "malloc(%zu)", sizes[i]);
        TRY(label, malloc_v(sizes[i]), sizes[i], 16);
    }
}

static void section_calloc(void) {
    TRY("calloc(0,0)", calloc_v(0, 0), 0, 16);
    TRY("calloc(SIZE_MAX/2,3) overflow", calloc_v(SIZE_MAX / 2, 3), 0, 16);
    TRY("calloc(3,SIZE_MAX/2) overflow", calloc_v(3, SIZE_MAX / 2), 0, 16);
    TRY("calloc(1,SIZE_MAX)", calloc_v(1, SIZE_MAX), 0, 16);
    /* Reused memory must come back zeroed. */
    for (size_t n = 16; n <= (8u << 20); n *= 4) {
        char *dirty = malloc_v(n);
        memset(dirty, 0xff, n);
        free(dirty);
        errno = 0;
        char *z = calloc_v(1, n);
        printf("calloc(1,%zu) after a dirty free: %s zeroed=%d errno=%d\n", n, z ? "ptr" : "NULL",
               z ? all_zero(z, n) : -1, errno);
        free(z);
    }
}

static void section_realloc(void) {
    TRY("realloc(NULL,10)", realloc_v(NULL, 10), 10, 16);
    TRY("realloc(NULL,0)", realloc_v(NULL, 0), 0, 16);
    errno = 0;
    void *p = malloc_v(10);
    void *q = realloc_v(p, 0);
    printf("realloc(p,0): %s errno=%d\n", q ? "ptr" : "NULL", errno);
    char *s = malloc_v(10);
    memcpy(s, "abcdefghi", 10);
    for (size_t n = 100; n <= (16u << 20); n *= 8) {
        s = realloc_v(s, n);
        printf("realloc grow to %zu: kept=%d usable>=req=%d\n", n, s && memcmp(s, "abcdefghi", 10) == 0,
               s && malloc_usable_size(s) >= n);
    }
    s = realloc_v(s, 5);
    printf("realloc shrink to 5: kept=%d\n", s && memcmp(s, "abcde", 5) == 0);
    errno = 0;
    q = realloc_v(s, SIZE_MAX - 4096);
    printf("realloc(p,huge): %s errno=%d old intact=%d\n", q ? "ptr" : "NULL", errno, memcmp(s, "abcde", 5) == 0);
    free(s);
}

static void section_free(void) {
    errno = 1234;
    free(NULL);
    printf("free(NULL) errno=%d\n", errno);
    void *p = malloc_v(100);
    errno = 4321;
    free(p);
    printf("free(p) errno=%d\n", errno);
    p = malloc_v(10u << 20);
    errno = 99;
    free(p);
    printf("free(mmapped) errno=%d\n", errno);
    printf("malloc_usable_size(NULL)=%zu\n", malloc_usable_size(NULL));
}

static void section_aligned(void) {
    size_t aligns[] = {0, 1, 3, 8, 16, 24, 32, 48, 64, 4096, 65536, 1u << 21, SIZE_MAX / 2 + 1, SIZE_MAX / 2 + 2};
    for (size_t i = 0; i < sizeof aligns / sizeof *aligns; ++i) {
        size_t a = aligns[i], check = 1;
        while (check < a && check < (1u << 21)) check <<= 1; /* glibc rounds up to a power of two */
        char label[64];
        snprintf(label, sizeof label, "memalign(%zu,100)", a);
        TRY(label, memalign_v(a, 100), 100, check);
        snprintf(label, sizeof label, "aligned_alloc(%zu,100)", a);
        TRY(label, aligned_alloc_v(a, 100), 100, check);
        void *out = &out;
        errno = 0;
        int r = posix_memalign_v(&out, a, 100);
        int e = errno;
        printf("posix_memalign(%zu,100) = %d errno=%d memptr %s", a, r, e,
               out == &out ? "untouched" : (r == 0 ? "set" : "CLOBBERED"));
        if (r == 0) {
            printf(" aligned=%d", (uintptr_t)out % a == 0);
            free(out);
        }
        printf("\n");
    }
    void *out = &out;
    errno = 0;
    int r = posix_memalign_v(&out, 64, SIZE_MAX - 100);
    printf("posix_memalign(64,huge) = %d errno=%d memptr %s\n", r, errno, out == &out ? "untouched" : "CLOBBERED");
    out = &out;
    errno = 0;
    r = posix_memalign_v(&out, 64, 0);
    printf("posix_memalign(64,0) = %d errno=%d memptr %s\n", r, errno, out == &out ? "untouched" : "set");
    if (r == 0) free(out);
    long ps = sysconf(_SC_PAGESIZE);
    TRY("valloc(1)", valloc_v(1), 1, (size_t)ps);
    TRY("valloc(SIZE_MAX)", valloc_v(SIZE_MAX), 0, 1);
    size_t pv[] = {0, 1, 4096, 4097, SIZE_MAX - 100, SIZE_MAX - 2 * 4096 + 2};
    for (size_t i = 0; i < sizeof pv / sizeof *pv; ++i) {
        char label[64];
        snprintf(label, sizeof label, "pvalloc(%zu)", pv[i]);
        errno = 0;
        void *p = pvalloc_v(pv[i]);
        int e = errno;
        show(label, p, pv[i], (size_t)ps, e);
        if (p) printf("  usable>=page-rounded=%d\n", malloc_usable_size(p) >= ((pv[i] + ps - 1) & ~(size_t)(ps - 1)));
        free(p);
    }
}

static void section_reallocarray(void) {
    TRY("reallocarray(NULL,3,4)", reallocarray_v(NULL, 3, 4), 12, 16);
    TRY("reallocarray(NULL,SIZE_MAX/2,3)", reallocarray_v(NULL, SIZE_MAX / 2, 3), 0, 16);
    void *p = malloc_v(8);
    errno = 0;
    void *q = reallocarray_v(p, SIZE_MAX / 2, 3);
    printf("reallocarray(p,overflow): %s errno=%d\n", q ? "ptr" : "NULL", errno);
    errno = 0;
    q = reallocarray_v(p, 0, 5);
    printf("reallocarray(p,0,5): %s errno=%d\n", q ? "ptr" : "NULL", errno);
    free(q);
}

static void section_address_space_limit(void) {
    /* Leave about 96 MiB of room above what the process uses now. */
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long pages = 0;
    if (!f || fscanf(f, "%lu", &pages) != 1) return;
    fclose(f);
    struct rlimit rl = {pages * 4096ul + (96ul << 20), pages * 4096ul + (96ul << 20)};
    if (setrlimit(RLIMIT_AS, &rl) != 0) {
        printf("setrlimit failed\n");
        return;
    }
    TRY("limited: malloc(256 MiB)", malloc_v(256u << 20), 0, 16);
    TRY("limited: calloc(1, 256 MiB)", calloc_v(1, 256u << 20), 0, 16);
    TRY("limited: memalign(4096, 256 MiB)", memalign_v(4096, 256u << 20), 0, 16);
    void *out = &out;
    errno = 0;
    int r = posix_memalign_v(&out, 4096, 256u << 20);
    printf("limited: posix_memalign(4096, 256 MiB) = %d errno=%d memptr %s\n", r, errno,
           out == &out ? "untouched" : "CLOBBERED");
    /* Exhaust the room with 1 MiB chunks: the last one fails cleanly, and everything can be freed. */
    static void *chunks[4096];
    int n = 0, failed = 0, err = 0;
    for (; n < 4096; ++n) {
        errno = 0;
        chunks[n] = malloc_v(1u << 20);
        if (!chunks[n]) {
            failed = 1;
            err = errno;
            break;
        }
        memset(chunks[n], 1, 64);
    }
    printf("limited: 1 MiB chunks until failure: failed=%d errno=%d\n", failed, err);
    for (int i = 0; i < n; ++i) free(chunks[i]);
    TRY("limited: malloc(100) after freeing", malloc_v(100), 100, 16);
}

int main(int argc, char **argv) {
    exact = argc > 1 && strcmp(argv[1], "--exact") == 0;
    setvbuf(stdout, NULL, _IOLBF, 0);
    section_malloc();
    section_calloc();
    section_realloc();
    section_free();
    section_aligned();
    section_reallocarray();
    section_address_space_limit();
    return 0;
}
