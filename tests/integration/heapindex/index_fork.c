/* SPDX-License-Identifier: MIT */
/* fork under libheapindex.so while other threads allocate and free: each child finds the chunks the
 * forking thread made before the fork (with the right thread id: the parent's), indexes what it allocates
 * itself under its own thread id, frees both, and its index is sound.  The parent's index is sound too. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../check.h"
#include "mallochooks/heapindex.h"

#define MINE 100
static char *mine[MINE];

static int child(uint32_t parent_tid) {
    struct heapindex_chunk c;
    for (int i = 0; i < MINE; ++i) {
        if (!heapindex_lookup(mine[i] + i, &c) || c.base != mine[i] || c.size != (size_t)(i + 1) * 10) return 10;
        if (c.tid != parent_tid) return 11;
    }
    char *fresh[50];
    for (int i = 0; i < 50; ++i) {
        fresh[i] = malloc(100 + (size_t)i);
        if (!fresh[i] || !heapindex_lookup(fresh[i] + 50, &c) || c.base != fresh[i]) return 12;
        if (c.tid != (uint32_t)gettid()) return 13;
    }
    for (int i = 0; i < 50; ++i) free(fresh[i]);
    for (int i = 0; i < MINE; ++i) free(mine[i]);
    for (int i = 0; i < MINE; ++i)
        if (heapindex_lookup(mine[i], &c) && c.base == mine[i]) return 14;
    return heapindex_check(stderr) == 0 ? 0 : 15;
}

int main(void) {
    CHECK(heapindex_present());
    alarm(120);  /* a child that deadlocks fails the test */
    for (int i = 0; i < MINE; ++i) CHECK((mine[i] = malloc((size_t)(i + 1) * 10)) != NULL);
    pthread_t th[3];
    for (int i = 0; i < 3; ++i) CHECK(pthread_create(&th[i], NULL, churn_thread, NULL) == 0);
    const uint32_t me = (uint32_t)gettid();
    int failures = 0;
    for (int round = 0; round < 100; ++round) {
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) _exit(child(me));
        int st;
        CHECK(waitpid(pid, &st, 0) == pid);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            fprintf(stderr, "fork: child %d ended with status %d\n", round, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
            failures++;
        }
    }
    atomic_store(&churn_stopping, 1);
    for (int i = 0; i < 3; ++i) pthread_join(th[i], NULL);
    CHECK(failures == 0);
    for (int i = 0; i < MINE; ++i) free(mine[i]);
    CHECK(heapindex_check(stderr) == 0);
    printf("fork: 100 children under 3 allocating threads kept a sound index and kept indexing\n");
    return 0;
}
