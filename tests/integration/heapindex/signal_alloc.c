/* SPDX-License-Identifier: MIT */
/* malloc and free in a signal handler (issue 15, item 2).  The main thread churns 1000-byte chunks; a
 * second thread sends it a signal every 2 us; the handler frees one of its own 24-byte chunks and
 * allocates a new one.  So the handler interrupts the main thread anywhere, inside the hooks and the
 * index included, and allocates there.  glibc alone survives this (the two sizes live in different
 * tcache bins, and the handler frees before it allocates, so its bin is never empty); a tool must not
 * make it worse.  At the end, with everything freed, the index must count exactly the chunks that were
 * live before, must have seen no invalid or double free, and heapindex_check must be sound; without the
 * index the program just runs (the same checks, on the allocator alone).
 *
 * argv[1]: stop once the handler ran this many times (default 200000), or after argv[2] seconds (default
 * 3), whichever comes first: the machine may be too busy to deliver many signals. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../check.h"
#include "mallochooks/heapindex.h"

enum { MAIN_SLOTS = 64, HANDLER_SLOTS = 16, MAIN_SIZE = 1000, HANDLER_SIZE = 24 };

static char *handler_chunks[HANDLER_SLOTS];
static volatile sig_atomic_t handler_bad;
static atomic_ulong handled;
static atomic_int stop_sending;
static pthread_t main_thread;

static void on_signal(int sig) {
    (void)sig;
    const int saved = errno;
    const unsigned long n = atomic_fetch_add_explicit(&handled, 1, memory_order_relaxed);
    const unsigned i = (unsigned)(n % HANDLER_SLOTS);
    /* Free first: the handler's tcache bin then never runs dry, so glibc alone never takes a lock here. */
    free_v(handler_chunks[i]);
    char *p = malloc_v(HANDLER_SIZE);
    if (p == NULL) {
        handler_bad = 1;
    } else {
        memset(p, (int)(n & 0xff), HANDLER_SIZE);  /* every byte it may use, none beyond */
    }
    handler_chunks[i] = p;
    errno = saved;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void *sender_warm_up(void *arg) { return arg; }

/* Spins rather than sleeps between signals: a sleeping thread on a loaded machine is woken far less
 * often than every 2 us. */
static void *sender(void *arg) {
    (void)arg;
    while (!atomic_load(&stop_sending)) {
        pthread_kill(main_thread, SIGUSR1);
        const double until = now() + 2e-6;
        while (now() < until) {
        }
    }
    return NULL;
}

int main(int argc, char **argv) {
    const unsigned long want = argc > 1 ? strtoul(argv[1], NULL, 10) : 200000;
    const double seconds = argc > 2 ? strtod(argv[2], NULL) : 3;
    const int indexed = heapindex_present();
    main_thread = pthread_self();

    for (unsigned i = 0; i < HANDLER_SLOTS; ++i) CHECK((handler_chunks[i] = malloc_v(HANDLER_SIZE)) != NULL);
    char *slots[MAIN_SLOTS] = {0};

    /* glibc keeps a joined thread's stack, with its TLS vector (calloc'd), for the next thread: start
     * and join one first, so that the sender's thread costs no chunk counted below. */
    pthread_t warm;
    CHECK(pthread_create(&warm, NULL, sender_warm_up, NULL) == 0);
    CHECK(pthread_join(warm, NULL) == 0);

    struct heapindex_stats before;
    heapindex_stats(&before);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    CHECK(sigaction(SIGUSR1, &sa, NULL) == 0);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, sender, NULL) == 0);

    /* Churn until the handler ran `want` times or the time is up. */
    uint64_t x = 0x2545f4914f6cdd1dull;
    unsigned long ops = 0;
    const double start = now();
    while (atomic_load(&handled) < want && (ops % 4096 != 0 || now() - start < seconds)) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        const unsigned i = (unsigned)(x % MAIN_SLOTS);
        if (slots[i] != NULL) {
            CHECK(slots[i][0] == (char)i && slots[i][MAIN_SIZE - 1] == (char)i);
            free_v(slots[i]);
            slots[i] = NULL;
        } else {
            CHECK((slots[i] = malloc_v(MAIN_SIZE)) != NULL);
            memset(slots[i], (int)i, MAIN_SIZE);
        }
        ++ops;
    }
    atomic_store(&stop_sending, 1);
    CHECK(pthread_join(t, NULL) == 0);
    /* No more signals can arrive: the sender has exited. */
    CHECK(handler_bad == 0);
    CHECK(atomic_load(&handled) > 0);

    if (indexed) {
        /* Every chunk the handler holds is exactly what the index says it is. */
        for (unsigned i = 0; i < HANDLER_SLOTS; ++i) {
            struct heapindex_chunk c;
            CHECK(heapindex_lookup(handler_chunks[i] + HANDLER_SIZE - 1, &c) == 1);
            CHECK(c.base == handler_chunks[i] && c.size == HANDLER_SIZE);
        }
        for (unsigned i = 0; i < MAIN_SLOTS; ++i) {
            struct heapindex_chunk c;
            if (slots[i] == NULL) continue;
            CHECK(heapindex_lookup(slots[i] + 500, &c) == 1);
            CHECK(c.base == slots[i] && c.size == MAIN_SIZE);
        }
        CHECK(heapindex_check(stderr) == 0);
    }
    for (unsigned i = 0; i < MAIN_SLOTS; ++i) free_v(slots[i]);

    struct heapindex_stats after;
    heapindex_stats(&after);
    if (indexed) {
        /* The handler's chunks are the same number as before the churn, the main thread's are gone. */
        if (after.live_chunks != before.live_chunks || after.invalid_frees != 0 || after.double_frees != 0 ||
            after.corrupt_trailers != 0) {
            fprintf(stderr, "live chunks %llu before, %llu after; invalid frees %llu, double frees %llu, "
                            "corrupt trailers %llu\n",
                    (unsigned long long)before.live_chunks, (unsigned long long)after.live_chunks,
                    (unsigned long long)after.invalid_frees, (unsigned long long)after.double_frees,
                    (unsigned long long)after.corrupt_trailers);
            return 1;
        }
        CHECK(heapindex_check(stderr) == 0);
    }
    for (unsigned i = 0; i < HANDLER_SLOTS; ++i) free_v(handler_chunks[i]);
    printf("%lu signals handled during %lu operations%s\n", atomic_load(&handled), ops,
           indexed ? ", index sound and exact" : "");
    return 0;
}
