/* SPDX-License-Identifier: MIT */
/*
 * A program with a known heap profile, for profiles.sh: every figure a profile shows is fixed here.
 * Built without frame pointers and without sibling calls (so that each function keeps its frame, as the
 * stacks below say), the allocations made through three levels of functions:
 *
 *   keep:   10 chunks of 1000 bytes, live at exit (leaked: 10000 bytes)      keep_outer -> keep_middle -> leaf_alloc
 *   temp:   100 chunks of 64 bytes, each freed right away (100 temporaries)  temp_outer -> leaf_alloc
 *   peak:   48 chunks of 65536 bytes (3 MiB), all live at once, then freed   peak_outer -> leaf_alloc
 *   other:  50 chunks of 200 bytes, allocated together, freed together       other_outer -> leaf_alloc
 *
 * With the argument "leak" it also loses one chunk (lose_outer -> leaf_alloc: 4000 bytes no pointer reaches,
 * definitely lost), while keep's chunks stay reachable through `kept` (the HEAPINDEX_LEAKS=exit test).
 * With the argument "turns" it also allocates, through leaf_alloc, from five functions of one frame size that take
 * turns (turns_outer -> turn_a .. turn_e: 20, 10, 10, 5 and 5 chunks of 48 to 52 bytes, all live until the
 * last, then freed): one allocation site at one depth, more stacks in turn than a thread remembers walks
 * for one such key (docs/heap-profiles.md), each of which must still get its own count.
 * With the argument "slow", peak_outer sleeps 1 ms after each of its allocations: memory in use rises over
 * about 50 ms, so that the sampled series has points at distinct milliseconds (the memory-over-time test).
 * With the argument "fork", it forks first and the child does the same (the %p test) and exits.
 * It calls heapindex_profile_write(argv[2]) when given a second argument (the on-demand API).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mallochooks/heapindex.h"

__attribute__((noinline)) static void *leaf_alloc(size_t n) {
    void *p = malloc(n);
    if (p == NULL) abort();
    memset(p, 1, n);
    return p;
}

void *kept[10]; /* not static: stores to a static nobody reads may be dropped, and keep's chunks must stay reachable */
__attribute__((noinline)) static void keep_middle(int i) { kept[i] = leaf_alloc(1000); }
__attribute__((noinline)) static void keep_outer(void) {
    for (int i = 0; i < 10; i++) keep_middle(i);
}

__attribute__((noinline)) static void temp_outer(void) {
    for (int i = 0; i < 100; i++) free(leaf_alloc(64));
}

static int slow;
__attribute__((noinline)) static void peak_outer(void) {
    void *p[48];
    for (int i = 0; i < 48; i++) {
        p[i] = leaf_alloc(65536);
        if (slow) usleep(1000);
    }
    for (int i = 0; i < 48; i++) free(p[i]);
}

__attribute__((noinline)) static void other_outer(void) {
    void *p[50];
    for (int i = 0; i < 50; i++) p[i] = leaf_alloc(200);
    for (int i = 0; i < 50; i++) free(p[i]);
}

/* Five functions of one frame size (different sizes asked for, so that no two are folded into one). */
__attribute__((noinline)) static void turn_a(void **p) { *p = leaf_alloc(48); }
__attribute__((noinline)) static void turn_b(void **p) { *p = leaf_alloc(49); }
__attribute__((noinline)) static void turn_c(void **p) { *p = leaf_alloc(50); }
__attribute__((noinline)) static void turn_d(void **p) { *p = leaf_alloc(51); }
__attribute__((noinline)) static void turn_e(void **p) { *p = leaf_alloc(52); }
__attribute__((noinline)) static void turns_outer(void) {
    void *p[50];
    int n = 0;
    for (int r = 0; r < 10; r++) {
        turn_a(&p[n++]);
        turn_b(&p[n++]);
        turn_a(&p[n++]);
        turn_c(&p[n++]);
        if (r % 2 == 0) turn_d(&p[n++]);
        else turn_e(&p[n++]);
    }
    for (int i = 0; i < n; i++) free(p[i]);
}

__attribute__((noinline)) static void lose_outer(void) {
    void *volatile lost = leaf_alloc(4000);
    lost = NULL;
    (void)lost;
}
// Overwrite the stack the helpers used, so that no stale copy of the lost pointer stays there.
__attribute__((noinline)) static void scrub(void) {
    volatile char junk[64 * 1024];
    for (size_t i = 0; i < sizeof junk; ++i) junk[i] = 0;
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "fork") == 0) {
        pid_t pid = fork();
        if (pid < 0) return 1;
        if (pid > 0) {
            int status;
            waitpid(pid, &status, 0);
        }
    }
    slow = argc > 1 && strcmp(argv[1], "slow") == 0;
    keep_outer();
    temp_outer();
    peak_outer();
    other_outer();
    if (argc > 1 && strcmp(argv[1], "turns") == 0) turns_outer();
    if (argc > 1 && strcmp(argv[1], "leak") == 0) {
        lose_outer();
        scrub();
    }
    if (argc > 2) {
        int n = heapindex_profile_write(argv[2]);
        printf("written %d\n", n);
    }
    return 0;
}
