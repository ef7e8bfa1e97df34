// SPDX-License-Identifier: MIT
// A program with a known heap, for the gdb `heap` commands, HEAPINDEX_LEAKS=exit and valgrind's
// leak check (tests/integration/gdb/*.sh):
//   - a list of 3 nodes (16 bytes each) with strdup'd names "alpha", "beta", "gamma" (6, 5, 6 bytes),
//     from the global `list`: still reachable;
//   - a pool (4096 bytes, from the global `pool`) carved into 3 client blocks of 64 bytes;
//   - definitely lost: 100 bytes (make_definite), and a 16-byte pair (make_indirect) whose
//   - indirectly lost child is 48 bytes (make_indirect);
//   - reachable only through an interior pointer: 200 bytes held by `interior` + 40 (make_interior);
//   - a freed chunk of 72 bytes that `dangling` still points to (make_dangling): a tombstone.
// Usage: known_heap exit | break | crash | threads | inside-malloc
// `break` calls stop_here() (a breakpoint for gdb) and exits; `crash` aborts (a kernel core);
// `threads` starts 3 threads, each holding a 64-byte chunk only on its own stack, then stop_here();
// `inside-malloc` calls stop_here(), then malloc once more (gdb stops it inside the index).
// Lines marked `site:NAME` are where the tests expect each chunk's allocation site.
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mallochooks/heapindex.h"

struct node {
    struct node *volatile next;
    char *volatile name;
};
struct pair {
    void *volatile child;
    void *volatile spare;
};

struct node *list;
char *pool;
char *interior;
char *dangling;  // freed: `heap info dangling` finds the tombstone
static pthread_barrier_t ready;

__attribute__((noinline)) void stop_here(void) { __asm__ volatile("" ::: "memory"); }

__attribute__((noinline)) static void make_list(void) {
    static const char *names[] = {"gamma", "beta", "alpha"};
    for (int i = 0; i < 3; ++i) {
        struct node *n = malloc(sizeof *n);  // site:node
        n->name = strdup(names[i]);
        n->next = list;
        list = n;
    }
}
__attribute__((noinline)) static void make_pool(void) {
    pool = malloc(4096);  // site:pool
    for (int i = 0; i < 3; ++i) heapindex_notify_alloc(pool + 128 * i, 64, NULL);
}
__attribute__((noinline)) static void make_definite(void) {
    volatile char *p = malloc(100);  // site:definite
    p[0] = 1;
}
__attribute__((noinline)) static void make_indirect(void) {
    struct pair *volatile p = malloc(sizeof *p);  // site:pair
    p->child = malloc(48);  // site:child
    p->spare = NULL;
}
__attribute__((noinline)) static void make_interior(void) {
    interior = (char *)malloc(200) + 40;  // site:interior
}
__attribute__((noinline)) static void make_dangling(void) {
    dangling = malloc(72);  // site:dangling
    free(dangling);         // site:dangling_free
}
// Overwrite the stack the helpers used, so that no stale copy of a dropped pointer stays there.
__attribute__((noinline)) static void scrub(void) {
    volatile char junk[8192];
    for (size_t i = 0; i < sizeof junk; ++i) junk[i] = 0;
}

static void *holder(void *arg) {
    void *volatile mine = malloc(64);  // site:holder
    (void)arg;
    pthread_barrier_wait(&ready);
    pthread_barrier_wait(&ready);  // held until the main thread exits
    free(mine);
    return NULL;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "exit";
    make_list();
    make_pool();
    make_definite();
    make_indirect();
    make_interior();
    make_dangling();
    scrub();
    if (strcmp(mode, "break") == 0) {
        stop_here();
    } else if (strcmp(mode, "crash") == 0) {
        abort();
    } else if (strcmp(mode, "inside-malloc") == 0) {
        stop_here();
        void *volatile p = malloc(24);
        free(p);
    } else if (strcmp(mode, "threads") == 0) {
        pthread_t t[3];
        pthread_barrier_init(&ready, NULL, 4);
        for (int i = 0; i < 3; ++i) pthread_create(&t[i], NULL, holder, NULL);
        pthread_barrier_wait(&ready);
        stop_here();
        pthread_barrier_wait(&ready);
        for (int i = 0; i < 3; ++i) pthread_join(t[i], NULL);
    }
    return 0;
}
