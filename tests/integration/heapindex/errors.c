/* SPDX-License-Identifier: MIT */
/* Heap errors under libheapindex.so, one per run (errors.sh runs each in its own process and checks what
 * the index reported, not whether the process survived: after reporting, the index passes the call on
 * and glibc aborts on most of these).  Each allocation, free and realloc happens in its own named,
 * exported function (the program is linked with -rdynamic), so a report's sites can be checked by name. */
#define _GNU_SOURCE
#include <malloc.h>
#include <sys/auxv.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../check.h"
#include "mallochooks/heapindex.h"

#define NOINLINE __attribute__((noinline, visibility("default")))
/* After the call, so that it is not a tail call: the return address must lie in the named function. */
#define NOT_TAIL() __asm__ volatile("" ::: "memory")

NOINLINE void *site_alloc(size_t n) {
    void *p = malloc_v(n);
    NOT_TAIL();
    return p;
}
NOINLINE void site_first_free(void *p) {
    free_v(p);
    NOT_TAIL();
}
NOINLINE void site_second_free(void *p) {
    free_v(p);
    NOT_TAIL();
}
NOINLINE void *site_realloc(void *p, size_t n) {
    void *q = realloc_v(p, n);
    NOT_TAIL();
    return q;
}
NOINLINE void *site_alloc_next(size_t n) {
    void *p = malloc_v(n);
    NOT_TAIL();
    return p;
}
NOINLINE int site_notify_alloc(void *p, size_t n) {
    int r = heapindex_notify_alloc(p, n, NULL);
    NOT_TAIL();
    return r;
}
NOINLINE void site_notify_free(void *p) {
    heapindex_notify_free(p);
    NOT_TAIL();
}

int main(int argc, char **argv) {
    if (argc != 2 || !heapindex_present()) return 2;
    const char *c = argv[1];
    if (strncmp(c, "off-by-one-nul-", 15) == 0 && strcmp(c + 15, "many") != 0) {
        /* The classic off-by-one: a NUL written just past a chunk whose size is a multiple of 8, which has
         * no slack, so the byte lands on the trailer's first byte.  First thing in the process: the
         * sequence number is small (with the trailer's size word first, that byte was the sequence
         * number's bits 19-26, 0 for a process's first 524,288 allocations, and the NUL went unseen). */
        const size_t n = (size_t)atoi(c + 15);
        char *p = site_alloc(n);
        p[n] = 0;
        site_first_free(p);
        struct heapindex_stats s;
        heapindex_stats(&s);
        printf("off-by-one-nul: %zu bytes, %llu corrupt trailers counted\n", n, (unsigned long long)s.corrupt_trailers);
        return s.corrupt_trailers == 1 ? 0 : 1;
    }
    if (strcmp(c, "off-by-one-nul-many") == 0) {
        /* The same on 512 chunks of 8 to 128 bytes, all live at once, each with a NUL on its trailer's
         * first byte: every one is reported (the check word's first byte is never 0, trailer.h), where a
         * uniformly random first byte would let about 2 of 512 through (all caught 13% of the time). */
        enum { count = 512 };
        static char *chunks[count];
        static size_t sizes[count];
        for (int i = 0; i < count; ++i) {
            sizes[i] = 8 * (size_t)(1 + i % 16);
            chunks[i] = malloc_v(sizes[i]);
        }
        for (int i = 0; i < count; ++i) chunks[i][sizes[i]] = 0;
        const int problems = heapindex_check(NULL);
        for (int i = 0; i < count; ++i) free_v(chunks[i]);
        struct heapindex_stats s;
        heapindex_stats(&s);
        printf("off-by-one-nul-many: check found %d of %d, free %llu\n", problems, count,
               (unsigned long long)s.corrupt_trailers - (unsigned long long)problems);
        return problems == count && s.corrupt_trailers == 2 * count ? 0 : 1;
    }
    if (strcmp(c, "overflow") == 0) {
        /* One byte past what malloc_usable_size allows lands in the trailer: heapindex_check sees it,
         * and free reports it (glibc's own metadata is untouched, so the program goes on). */
        char *p = site_alloc(40);
        p[malloc_usable_size(p)] ^= 0x5a;
        const int problems = heapindex_check(stderr);
        site_first_free(p);
        struct heapindex_stats s;
        heapindex_stats(&s);
        printf("overflow: check found %d problems, %llu corrupt trailers counted\n", problems,
               (unsigned long long)s.corrupt_trailers);
        return problems >= 1 && s.corrupt_trailers >= 2 ? 0 : 1;
    }
    if (strcmp(c, "double-free") == 0) {
        void *p = site_alloc(24);
        site_first_free(p);
        site_second_free(p);
    } else if (strcmp(c, "double-free-later") == 0) {
        /* Other allocations in between (of another size, so p is not handed out again). */
        void *p = site_alloc(100);
        site_first_free(p);
        for (int i = 0; i < 50; ++i) free(malloc_v(5000 + (size_t)i));
        site_second_free(p);
    } else if (strcmp(c, "realloc-after-free") == 0) {
        void *p = site_alloc(50);
        site_first_free(p);
        site_realloc(p, 100);
    } else if (strcmp(c, "interior") == 0) {
        char *p = site_alloc(100);
        site_second_free(p + 16);
    } else if (strcmp(c, "wild") == 0) {
        static char not_heap[64] __attribute__((aligned(16)));
        site_second_free(not_heap + 16);
    } else if (strcmp(c, "client-double-free") == 0) {
        char *pool = site_alloc(1000);
        if (!heapindex_notify_alloc(pool + 32, 64, NULL)) return 1;
        site_notify_free(pool + 32);
        site_notify_free(pool + 32);
        struct heapindex_stats s;
        heapindex_stats(&s);
        printf("client: %llu double frees counted\n", (unsigned long long)s.double_frees);
        return s.double_frees == 1 ? 0 : 1;
    } else if (strcmp(c, "slack") == 0) {
        /* One byte past the 20 requested bytes, short of the trailer (glibc gives 4 bytes of slack there):
         * the check finds it, and free reports it; a chunk whose usable size the program asked for may
         * be written up to that size, unreported. */
        char *p = site_alloc(20);
        char *q = site_alloc(20);
        const size_t usable = malloc_usable_size(q);
        memset(q, 'q', usable);
        p[20] = 'x';
        const int problems = heapindex_check(stderr);
        site_first_free(q);
        site_first_free(p);
        printf("slack: usable %zu, check found %d problems\n", usable, problems);
        return problems == 1 ? 0 : 1;
    } else if (strcmp(c, "slack-sizes") == 0) {
        /* One byte past the request of chunks of 100, 4093 and 199,999 bytes: in the slack before the
         * trailer (the request rounded up to 8), whatever allocator is behind the index (allocators.sh
         * runs this under jemalloc, tcmalloc, mimalloc). */
        const size_t sizes[] = {100, 4093, 199999};
        char *chunks[3];
        for (int i = 0; i < 3; ++i) {
            chunks[i] = site_alloc(sizes[i]);
            if (malloc_usable_size(chunks[i]) == sizes[i]) return 3; /* no slack at all: nothing to test */
        }
        /* malloc_usable_size makes the slack the program's: fresh chunks for the test itself. */
        for (int i = 0; i < 3; ++i) chunks[i] = site_alloc(sizes[i]);
        for (int i = 0; i < 3; ++i) chunks[i][sizes[i]] = 'x';
        const int problems = heapindex_check(stderr);
        printf("slack-sizes: the check found %d of 3 one-byte overflows\n", problems);
        return problems == 3 ? 0 : 1;
    } else if (strcmp(c, "key") == 0) {
        /* The trailer's check word (its first 4 bytes, at malloc_usable_size) no longer follows from
         * the stack canary's bytes: the old word was ((base ^ (AT_RANDOM[0..7] | 1) ^ seq) + size) *
         * 0xffffffff9e3779b1 >> 32.  Prints the words, so that errors.sh sees two runs differ. */
        uint64_t at_random;
        memcpy(&at_random, (const void *)getauxval(AT_RANDOM), sizeof at_random);
        int old_formula = 0;
        printf("key: words");
        for (int i = 0; i < 8; ++i) {
            char *p = site_alloc(40);
            struct heapindex_chunk ch;
            if (!heapindex_lookup(p, &ch)) return 1;
            uint32_t word;
            memcpy(&word, p + malloc_usable_size(p), sizeof word);
            if (!(word & 0x80)) return 1; /* its first byte's top bit is always set (trailer.h) */
            const uint64_t odd = 0xffffffff9e3779b1ull;
            const uint32_t old = (uint32_t)((((uint64_t)(uintptr_t)p ^ (at_random | 1) ^ ch.seq) + ch.size) * odd >> 32);
            old_formula += word == old;
            printf(" %08x", word);
        }
        printf("\nkey: %d of 8 check words follow the canary-derived formula\n", old_formula);
        return old_formula == 0 ? 0 : 1;
    } else if (strcmp(c, "trailer-transplant") == 0) {
        /* Another live chunk's intact trailer (its sequence number, thread id and keyed check word: valid
         * bytes, but not this chunk's) copied over this chunk's trailer, as an attacker who can read one
         * chunk and overflow another might: free must report it and leave the other chunk alone. */
        char *a = site_alloc(40), *b = site_alloc(40);
        memcpy(a + malloc_usable_size(a), b + malloc_usable_size(b), 16);
        const int problems = heapindex_check(stderr);
        site_first_free(a);
        struct heapindex_chunk cb;
        const int b_live = heapindex_lookup(b + 39, &cb) && cb.base == b && cb.size == 40;
        struct heapindex_stats st;
        heapindex_stats(&st);
        printf("trailer-transplant: check found %d problems, %llu corrupt trailers, b %s\n", problems,
               (unsigned long long)st.corrupt_trailers, b_live ? "live" : "LOST");
        free(b); /* b's own trailer is intact: freed without a report */
        heapindex_stats(&st);
        printf("trailer-transplant: %llu corrupt trailers after b's free\n", (unsigned long long)st.corrupt_trailers);
        return problems == 1 && b_live && st.corrupt_trailers == 2 ? 0 : 1;
    } else if (strcmp(c, "underflow") == 0) {
        /* a = malloc(24); p = malloc(24); p[-24] = 'U'; free(a): the byte is in a's trailer, which lies
         * just before p.  Either a overflowed or p underflowed: both are named.  (glibc hands out two
         * adjacent 48-byte chunks for these; a few tries make sure of it.) */
        char *a = NULL, *p = NULL;
        for (int i = 0; i < 16; ++i) {
            a = site_alloc(24);
            p = site_alloc_next(24);
            if (p == a + 48) break;
        }
        if (p != a + 48) return 3;
        p[-24] = 'U';
        site_first_free(a);
        return 0;
    } else if (strcmp(c, "overflow-unfreed") == 0) {
        /* Never freed: only HEAPINDEX_CHECK=exit finds it, and names its site. */
        char *p = site_alloc(40);
        p[malloc_usable_size(p)] ^= 0x5a;
        return 0;
    } else if (strcmp(c, "quarantine") == 0) {
        /* A double free after more than the quarantine's worth of other frees: no longer recognisable as
         * one, and the message says why. */
        void *p = site_alloc(100);
        site_first_free(p);
        for (int i = 0; i < 600; ++i) free(malloc_v(5000));
        site_second_free(p);
    } else if (strcmp(c, "realloc-freed") == 0) {
        /* p = malloc(24); free(p); q = realloc(p, 32); r = malloc(24): glibc returns p for both q and r.
         * The index reports the realloc of a freed chunk, then follows the allocator: r is indexed, and the
         * report says q was lost.  No record contradicts the allocator: the check finds the index sound. */
        char *p = site_alloc(24);
        site_first_free(p);
        char *q = site_realloc(p, 32);
        char *r = site_alloc_next(24);
        struct heapindex_chunk c_r;
        const int found = heapindex_lookup(r, &c_r);
        const int problems = heapindex_check(stderr);
        printf("realloc-freed: q %s p, r %s p, r found %d (%zu bytes), check found %d problems\n", q == p ? "==" : "!=",
               r == p ? "==" : "!=", found, found ? c_r.size : (size_t)0, problems);
        return found && c_r.size == 24 && c_r.base == r && problems == 0 ? 0 : 1;
    } else if (strcmp(c, "client-requests") == 0) {
        /* Client blocks that contradict the index are refused, each with a report; good ones still pass,
         * and lookups of later chunks are not answered with a refused block. */
        char *pool = site_alloc(4096);
        int ok = 1;
        ok &= !site_notify_alloc(pool + 200, (size_t)1 << 40);          /* runs past its chunk */
        ok &= !site_notify_alloc((char *)(~(uintptr_t)0 - 100), 200);   /* wraps */
        ok &= !site_notify_alloc((char *)(uintptr_t)0x100000, 4096);    /* not mapped (the first MiB) */
        ok &= site_notify_alloc(pool + 256, 64);
        ok &= !site_notify_alloc(pool + 128, 512);                      /* holds the block at 256 */
        ok &= !site_notify_alloc(pool + 300, 8);                        /* inside the block at 256 */
        ok &= !site_notify_alloc(pool + 4000, 200);                     /* past the chunk's 4096 bytes */
        static char outside[8192] __attribute__((aligned(64)));
        ok &= site_notify_alloc(outside + 64, 128);                     /* mapped, in no heap chunk: fine */
        char *later = site_alloc(64);
        struct heapindex_chunk c_l;
        ok &= heapindex_lookup(later + 10, &c_l) && c_l.base == later && !(c_l.flags & HEAPINDEX_FLAG_CLIENT);
        int problems = heapindex_check(stderr);
        ok &= problems == 0;
        /* The pool freed with its block still registered: the check notices the block. */
        site_first_free(pool);
        problems = heapindex_check(stderr);
        printf("client-requests: %s, check after freeing the pool found %d problems\n", ok ? "as expected" : "WRONG",
               problems);
        return ok && problems == 1 ? 0 : 1;
    } else {
        return 2;
    }
    puts("survived");  /* not expected with glibc, and not required */
    return 0;
}
