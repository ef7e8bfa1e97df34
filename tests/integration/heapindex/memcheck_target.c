/* SPDX-License-Identifier: MIT */
/* A program for valgrind's memcheck, run with and without libheapindex.so (memcheck.sh): it leaks in
 * every way memcheck classifies (definitely, indirectly, possibly lost, still reachable), grows and
 * shrinks chunks with realloc and reads back what it wrote (memcheck must find it defined: the trailer's
 * no-access bytes must not travel with realloc's copy), writes up to malloc_usable_size, and overflows
 * one chunk by a byte and then into where the index keeps its trailer, on the lines marked OVERFLOW.
 * memcheck must say the same about it with the index as without. */
#define _GNU_SOURCE
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../check.h"

struct node {
    struct node *next;
    char payload[40];
};

static void *reachable;      /* still reachable */
static char *possibly;       /* an interior pointer only: possibly lost */

static void leak(void) {
    for (int i = 0; i < 10; ++i) memset(malloc_v(100), 1, 100); /* definitely lost */
    struct node *head = malloc_v(sizeof *head);                  /* definitely lost ... */
    head->next = malloc_v(sizeof *head->next);                   /* ... and this indirectly */
    head->next->next = NULL;
    reachable = calloc_v(3, 77);
    possibly = (char *)malloc_v(64) + 16;
}

static void resize(void) {
    char *p = malloc_v(10);
    memset(p, 'a', 10);
    p = realloc_v(p, 1000);  /* moves: the first 10 bytes are copied, nothing else is defined */
    memset(p + 10, 'b', 990);
    for (int i = 0; i < 1000; ++i) CHECK(p[i] == (i < 10 ? 'a' : 'b'));
    p = realloc_v(p, 24);
    for (int i = 0; i < 24; ++i) CHECK(p[i] == (i < 10 ? 'a' : 'b'));
    const size_t usable = malloc_usable_size(p);
    CHECK(usable >= 24);
    memset(p, 'c', usable);  /* all of it the program's */
    free_v(p);
    void *q;
    CHECK(posix_memalign(&q, 64, 200) == 0);
    memset(q, 0, 200);
    free_v(q);
}

static void overflow(void) {
    char *p = malloc_v(20);
    memset(p, 0, 20);
    p[20] = 1; /* OVERFLOW 1 */
    p[28] = 1; /* OVERFLOW 2 */
    free_v(p);
}

int main(void) {
    leak();
    resize();
    overflow();
    printf("done\n");
    return 0;
}
