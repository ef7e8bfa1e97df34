/* SPDX-License-Identifier: MIT */
/*
 * The heap index's API, for programs run under LD_PRELOAD=libheapindex.so (C, usable from C++).
 *
 * libheapindex.so indexes every live heap chunk: for any address it answers whether the address lies
 * inside a live chunk, and which one (base, requested size, usable size, allocation site, sequence number,
 * allocating thread).  It also takes client requests from custom allocators, so that a pool's blocks are
 * indexed too (in the spirit of Valgrind's MALLOCLIKE_BLOCK / FREELIKE_BLOCK).
 *
 * Every function here is an inline wrapper around a weak reference to the library's implementation, so a
 * program can ship with the calls in place: without the index loaded they cost one load and a branch and
 * answer "nothing" (heapindex_present() says which case holds).  On x86-64 the weak reference is read
 * through the GOT explicitly: a non-PIE executable otherwise resolves an undefined weak function to 0 at
 * link time, and would never see the preloaded library.
 *
 * Design and guarantees: docs/heapindex.md.  Settings (HEAPINDEX_*): README.md.
 */
#ifndef MALLOCHOOKS_HEAPINDEX_H
#define MALLOCHOOKS_HEAPINDEX_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A live chunk as the index knows it.  `size` is what the program asked for; addresses in
 * [base, base + size) are inside the chunk, anything after (padding, the index's trailer) is not, so a
 * zero-sized chunk contains no address.  `usable_size` is what malloc_usable_size reports (never less than
 * `size`).  `alloc_site` is the return address of the allocating call (malloc, realloc, ...), `seq` a
 * process-wide unique allocation number (increasing within each thread; the index keeps it modulo 2^46,
 * about 7e13 allocations), `tid` the allocating thread's kernel thread id. */
struct heapindex_chunk {
    void *base;
    size_t size;
    size_t usable_size;
    const void *alloc_site;
    uint64_t seq;
    uint32_t tid;
    uint32_t flags; /* HEAPINDEX_FLAG_* */
};

#define HEAPINDEX_FLAG_TRAILER 0x1u   /* allocated through the index: carries a checked trailer */
#define HEAPINDEX_FLAG_EARLY 0x2u     /* allocated before the index was ready, or by its own machinery
                                         (dlopen of the symbolizer...): no trailer */
#define HEAPINDEX_FLAG_CLIENT 0x4u    /* a block registered with heapindex_notify_alloc */
#define HEAPINDEX_FLAG_REALLOC 0x8u   /* the chunk comes from realloc (alloc_site is the realloc's) */
#define HEAPINDEX_FLAG_ALIGNED 0x10u  /* memalign, posix_memalign, aligned_alloc, valloc, pvalloc */
#define HEAPINDEX_FLAG_CALLOC 0x20u   /* calloc */
#define HEAPINDEX_FLAG_STACK 0x40u    /* its allocation stack was recorded (HEAPINDEX_STACKS, profiles) */
#define HEAPINDEX_FLAG_USABLE_ASKED 0x80u /* the program asked malloc_usable_size: the bytes past `size`, up to
                                             `usable_size`, are its own (their overflow check is off) */
#define HEAPINDEX_FLAG_IN_CHUNK 0x100u /* a client block registered inside a live heap chunk */
#define HEAPINDEX_FLAG_NEW 0x200u      /* operator new (with HEAPINDEX_FLAG_ALIGNED: an align_val_t form) */
#define HEAPINDEX_FLAG_NEW_ARRAY 0x400u /* operator new[] (idem) */
/* Neither NEW flag: a function of the malloc family.  A chunk released another way than its kind's
 * (delete of a malloc chunk, free or realloc of a new one, delete of a new[] one, an aligned form for an
 * unaligned chunk or the reverse) is reported as a mismatch. */

struct heapindex_stats {
    uint64_t live_chunks;      /* heap chunks live now (client blocks excluded) */
    uint64_t live_bytes;       /* their requested bytes */
    uint64_t peak_live_bytes;  /* highest live_bytes seen (sampled: see docs/heapindex.md) */
    uint64_t total_allocations; /* every successful allocation, realloc included */
    uint64_t total_frees;       /* every free, realloc's release of the old chunk included */
    uint64_t total_bytes;       /* requested bytes of all allocations */
    uint64_t client_blocks;     /* client blocks live now */
    uint64_t invalid_frees;     /* frees of a pointer that is no live chunk, double frees included */
    uint64_t double_frees;
    uint64_t corrupt_trailers;  /* trailers found clobbered at free, realloc or by heapindex_check */
    uint64_t index_bytes;       /* memory mapped for the index itself */
    uint64_t unindexed_chunks;  /* chunks left out because the index's own memory could not grow (near a
                                 * limit on address space or data, or out of memory): they work as usual,
                                 * but lookups do not find them */
};

/* ---- The implementation, exported by libheapindex.so (do not call these directly) ----------------- */
#ifdef HEAPINDEX_IMPLEMENTATION /* the library itself defines them */
#define HEAPINDEX_WEAK_
#else
#define HEAPINDEX_WEAK_ __attribute__((weak))
#endif
int heapindex_v1_lookup(const void *addr, struct heapindex_chunk *out) HEAPINDEX_WEAK_;
size_t heapindex_v1_for_each(int (*fn)(const struct heapindex_chunk *, void *), void *arg) HEAPINDEX_WEAK_;
int heapindex_v1_check(FILE *report) HEAPINDEX_WEAK_;
void heapindex_v1_stats(struct heapindex_stats *out) HEAPINDEX_WEAK_;  /* the first 11 fields */
void heapindex_v1_stats_sized(struct heapindex_stats *out, size_t size) HEAPINDEX_WEAK_;
int heapindex_v1_notify_alloc(void *base, size_t size, const void *site) HEAPINDEX_WEAK_;
int heapindex_v1_notify_free(void *base) HEAPINDEX_WEAK_;
int heapindex_v1_profile_write(const char *outputs) HEAPINDEX_WEAK_;

#if defined(__x86_64__)
/* Read a weak function's address through the GOT, so that the dynamic loader fills it in even in a
 * non-PIE executable (see the comment at the top). */
#define HEAPINDEX_WEAK_ADDRESS_(name)                                                                   \
    __extension__({                                                                                     \
        __typeof__(&name) f_;                                                                           \
        __asm__(".weak " #name "\n\tmovq " #name "@GOTPCREL(%%rip), %0" : "=r"(f_));                     \
        f_;                                                                                             \
    })
#else
#define HEAPINDEX_WEAK_ADDRESS_(name) (&name)
#endif

/* ---- The API ------------------------------------------------------------------------------------- */

/* Non-zero when libheapindex.so is loaded in this process. */
static inline int heapindex_present(void) { return HEAPINDEX_WEAK_ADDRESS_(heapindex_v1_lookup) != 0; }

/* 1 and *out filled if `addr` lies inside a live chunk (or a live client block, which wins over the heap
 * chunk that holds it), else 0.  Constant time; never blocks, never touches chunk memory. */
static inline int heapindex_lookup(const void *addr, struct heapindex_chunk *out) {
    int (*f)(const void *, struct heapindex_chunk *) = HEAPINDEX_WEAK_ADDRESS_(heapindex_v1_lookup);
#if defined(__GNUC__)
    /* Only the address is used, never what it points to: say so, or GCC warns about looking up a
     * chunk whose bytes are not initialised yet. */
    __asm__("" : "+r"(addr));
#endif
    return f ? f(addr, out) : 0;
}

/* Calls fn for every live chunk and client block until fn returns non-zero; returns how many it visited.
 * Safe while other threads allocate and free (a chunk allocated or freed meanwhile may or may not be
 * visited).  fn may allocate. */
static inline size_t heapindex_for_each(int (*fn)(const struct heapindex_chunk *, void *), void *arg) {
    size_t (*f)(int (*)(const struct heapindex_chunk *, void *), void *) = HEAPINDEX_WEAK_ADDRESS_(heapindex_v1_for_each);
    return f ? f(fn, arg) : 0;
}

/* Verifies the index against itself and every live chunk's trailer; describes each problem on `report`
 * (may be NULL).  Returns the number of problems: 0 when sound (and when the index is not loaded). */
static inline int heapindex_check(FILE *report) {
    int (*f)(FILE *) = HEAPINDEX_WEAK_ADDRESS_(heapindex_v1_check);
    return f ? f(report) : 0;
}

/* Live and total counts; all zero when the index is not loaded.  (A library older than this header
 * fills the fields it knows, and the others stay zero.) */
static inline void heapindex_stats(struct heapindex_stats *out) {
    void (*sized)(struct heapindex_stats *, size_t) = HEAPINDEX_WEAK_ADDRESS_(heapindex_v1_stats_sized);
    void (*f)(struct heapindex_stats *) = HEAPINDEX_WEAK_ADDRESS_(heapindex_v1_stats);
    struct heapindex_stats zero = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    *out = zero;
    if (sized) {
        sized(out, sizeof *out);
    } else if (f) {
        f(out);
    }
}

/* Client requests: a custom allocator announces a block it hands out (site NULL: the caller) and its
 * release.  Blocks must not overlap each other and must start at least 16 bytes apart; they may lie
 * inside heap chunks (a pool carved from malloc).  Return 1 when done, 0 when refused (reported).
 * Always inlined, also at -O0: the library names the sites by its caller's return address, which must be
 * in the program's own function, not in a copy of this wrapper. */
#if defined(__GNUC__)
#define HEAPINDEX_CALLER_INLINE_ static inline __attribute__((always_inline))
#else
#define HEAPINDEX_CALLER_INLINE_ static inline
#endif
HEAPINDEX_CALLER_INLINE_ int heapindex_notify_alloc(void *base, size_t size, const void *site) {
    int (*f)(void *, size_t, const void *) = HEAPINDEX_WEAK_ADDRESS_(heapindex_v1_notify_alloc);
    return f ? f(base, size, site) : 0;
}

HEAPINDEX_CALLER_INLINE_ int heapindex_notify_free(void *base) {
    int (*f)(void *) = HEAPINDEX_WEAK_ADDRESS_(heapindex_v1_notify_free);
    return f ? f(base) : 0;
}

/* Writes heap-profile outputs now (HEAPINDEX_STACKS, docs/heap-profiles.md): `outputs` is a comma-separated
 * list as HEAPINDEX_REPORT's profile items (report.html, live.folded, x.peak.folded, x.allocs.folded,
 * heaptrack.NAME, dump.hiprof; "%p" becomes the process id), or NULL for those of HEAPINDEX_REPORT.
 * Returns how many were written; -1 when no stacks are recorded (or the index is not loaded). */
static inline int heapindex_profile_write(const char *outputs) {
    int (*f)(const char *) = HEAPINDEX_WEAK_ADDRESS_(heapindex_v1_profile_write);
    return f ? f(outputs) : -1;
}

#ifdef __cplusplus
}
#endif

#endif /* MALLOCHOOKS_HEAPINDEX_H */
