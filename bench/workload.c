/* SPDX-License-Identifier: MIT */
/*
 * The benchmark workload (bench/run runs it under every configuration).  Two modes:
 *
 *   workload pair SIZE ITERS     ITERS x { p = malloc(SIZE); touch one byte; free(p) }: the per-call cost.
 *   workload churn THREADS OPS [SEED]
 *                                THREADS threads, each doing OPS operations of a mixed-size churn:
 *                                malloc / calloc / realloc (grow and shrink) / posix_memalign / free on a
 *                                slot array of live chunks, sizes 16 B to 1 MiB, mostly small.  SEED (default
 *                                0) picks one of many such sequences.  One sequence is one sample of a chaotic
 *                                process: how often glibc trims and re-faults its heap top depends on exactly
 *                                which sizes meet, so page faults vary 2x between seeds and a few bytes more
 *                                per chunk can move a run from a lucky to an unlucky one; bench/run therefore
 *                                gives each repetition its own seed (the same seeds for every configuration).
 *
 * It prints the wall time of the measured part only, in nanoseconds, as one number on stdout (nothing else
 * goes to stdout).  The measured part follows a warm-up of a FIXED size (it does not depend on ITERS or
 * OPS), so that bench/run's callgrind difference Ir(2N) - Ir(N) contains exactly N measured iterations.
 *
 * Build with -O2 -fno-builtin: without -fno-builtin the compiler may delete a malloc/free pair whose memory
 * is never read, or turn malloc + memset into calloc.  The PRNG is deterministic (a fixed seed per thread),
 * so every configuration runs exactly the same sequence of calls.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static _Noreturn void usage(void) {
    fprintf(stderr,
            "usage: workload pair SIZE ITERS\n"
            "       workload churn THREADS OPS [SEED]\n"
            "prints the measured wall time in nanoseconds on stdout\n");
    exit(2);
}

static unsigned long parse(const char *s) {
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v == 0) usage();
    return v;
}

static _Noreturn void fail(const char *what) {
    fprintf(stderr, "workload: %s failed\n", what);
    exit(1);
}

/* ---- pair ------------------------------------------------------------------------------------------ */

enum { PAIR_WARMUP = 100000 };

static void pair_loop(size_t size, unsigned long iters) {
    for (unsigned long i = 0; i < iters; i++) {
        volatile char *p = malloc(size);
        if (p == NULL) fail("malloc");
        p[0] = (char)i;  /* touch one byte */
        free((void *)p);
    }
}

static uint64_t run_pair(size_t size, unsigned long iters) {
    pair_loop(size, PAIR_WARMUP);
    uint64_t t0 = now_ns();
    pair_loop(size, iters);
    return now_ns() - t0;
}

/* ---- churn ----------------------------------------------------------------------------------------- */

enum {
    SLOTS = 4096,          /* live chunks per thread, at most */
    CHURN_WARMUP = 50000,  /* operations per thread before the clock starts */
    MIN_SIZE = 16,
    MAX_SIZE = 1 << 20,
};

struct rng { uint64_t s; };

static uint64_t next_rand(struct rng *r) {  /* xorshift64* */
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return r->s * 0x2545F4914F6CDD1DULL;
}

static size_t uniform(struct rng *r, size_t lo, size_t hi) {  /* in [lo, hi] */
    return lo + (size_t)(next_rand(r) % (hi - lo + 1));
}

/* A size in [2^lo, 2^hi) with every power of two equally likely (log-uniform). */
static size_t log_uniform(struct rng *r, unsigned lo, unsigned hi) {
    unsigned e = (unsigned)uniform(r, lo, hi - 1);
    return uniform(r, (size_t)1 << e, ((size_t)2 << e) - 1);
}

/* Skewed sizes, as programs allocate: 80% 16-128 B, 16% 129 B-2 KiB, 3.5% 2-64 KiB and 0.5% 64 KiB-1 MiB
 * (log-uniform within the last two, so that most large chunks are nearer 64 KiB than 1 MiB). */
static size_t random_size(struct rng *r) {
    unsigned c = (unsigned)(next_rand(r) % 1000);
    if (c < 800) return uniform(r, MIN_SIZE, 128);
    if (c < 960) return uniform(r, 129, 2048);
    if (c < 995) return log_uniform(r, 11, 16);
    return log_uniform(r, 16, 20);
}

struct slot { char *p; size_t size; };

struct churn_thread {
    pthread_t tid;
    unsigned index;
    unsigned long ops;
    uint64_t seed;
    pthread_barrier_t *start, *stop;
    struct slot slots[SLOTS];
};

/* Touch the first and the last byte (and, for small chunks, the whole chunk); write the size's low byte
 * so that a chunk's content can be checked after realloc. */
static void touch(char *p, size_t size) {
    if (size <= 256) {
        memset(p, (int)(size & 0xff), size);
    } else {
        p[0] = (char)size;
        p[size - 1] = (char)size;
    }
}

static void check(const struct slot *s) {
    if ((unsigned char)s->p[0] != (unsigned char)s->size) fail("content check");
}

static void churn_ops(struct churn_thread *t, struct rng *r, unsigned long ops) {
    for (unsigned long i = 0; i < ops; i++) {
        struct slot *s = &t->slots[next_rand(r) % SLOTS];
        unsigned op = (unsigned)(next_rand(r) % 100);
        if (s->p == NULL) {
            size_t size = random_size(r);
            char *p;
            if (op < 75) {
                p = malloc(size);
            } else if (op < 90) {
                p = calloc(1, size);
                if (p != NULL && (p[0] != 0 || p[size - 1] != 0)) fail("calloc zeroing");
            } else {
                void *q = NULL;
                size_t align = (size_t)64 << (next_rand(r) % 4);  /* 64 to 512 */
                if (posix_memalign(&q, align, size) != 0) fail("posix_memalign");
                p = q;
            }
            if (p == NULL) fail("allocation");
            touch(p, size);
            s->p = p;
            s->size = size;
        } else if (op < 70) {
            check(s);
            free(s->p);
            s->p = NULL;
        } else {
            /* realloc: grow (up to 2x, or to a fresh random size) or shrink (to a half or a quarter). */
            size_t size;
            if (op < 80) size = s->size * 2;
            else if (op < 85) size = random_size(r);
            else if (op < 95) size = s->size / 2;
            else size = s->size / 4;
            if (size < MIN_SIZE) size = MIN_SIZE;
            if (size > MAX_SIZE) size = MAX_SIZE;
            check(s);
            char *p = realloc(s->p, size);
            if (p == NULL) fail("realloc");
            touch(p, size);
            s->p = p;
            s->size = size;
        }
    }
}

static void *churn_main(void *arg) {
    struct churn_thread *t = arg;
    struct rng r = {0x9E3779B97F4A7C15ULL * (t->index + 1) + t->seed * 0xD1B54A32D192ED03ULL};
    if (r.s == 0) r.s = 1;  /* xorshift's one forbidden state */
    churn_ops(t, &r, CHURN_WARMUP);
    pthread_barrier_wait(t->start);  /* the main thread starts the clock */
    churn_ops(t, &r, t->ops);
    pthread_barrier_wait(t->stop);   /* ... and stops it; cleaning up is not measured */
    for (unsigned i = 0; i < SLOTS; i++) free(t->slots[i].p);
    return NULL;
}

static uint64_t run_churn(unsigned threads, unsigned long ops, uint64_t seed) {
    pthread_barrier_t start, stop;
    if (pthread_barrier_init(&start, NULL, threads + 1) != 0 || pthread_barrier_init(&stop, NULL, threads + 1) != 0)
        fail("pthread_barrier_init");
    struct churn_thread *ts = calloc(threads, sizeof *ts);
    if (ts == NULL) fail("calloc");
    for (unsigned i = 0; i < threads; i++) {
        ts[i].index = i;
        ts[i].ops = ops;
        ts[i].seed = seed;
        ts[i].start = &start;
        ts[i].stop = &stop;
        if (pthread_create(&ts[i].tid, NULL, churn_main, &ts[i]) != 0) fail("pthread_create");
    }
    pthread_barrier_wait(&start);
    uint64_t t0 = now_ns();
    pthread_barrier_wait(&stop);
    uint64_t elapsed = now_ns() - t0;
    for (unsigned i = 0; i < threads; i++) pthread_join(ts[i].tid, NULL);
    free(ts);
    pthread_barrier_destroy(&start);
    pthread_barrier_destroy(&stop);
    return elapsed;
}

int main(int argc, char **argv) {
    if (argc < 4) usage();
    uint64_t ns;
    if (strcmp(argv[1], "pair") == 0) {
        if (argc != 4) usage();
        ns = run_pair(parse(argv[2]), parse(argv[3]));
    } else if (strcmp(argv[1], "churn") == 0) {
        unsigned long threads = parse(argv[2]);
        if (threads > 1024 || argc > 5) usage();
        uint64_t seed = 0;
        if (argc == 5) {
            char *end;
            errno = 0;
            seed = strtoull(argv[4], &end, 10);
            if (errno != 0 || end == argv[4] || *end != '\0') usage();
        }
        ns = run_churn((unsigned)threads, parse(argv[3]), seed);
    } else {
        usage();
    }
    printf("%llu\n", (unsigned long long)ns);
    return 0;
}
