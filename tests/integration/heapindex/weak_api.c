/* SPDX-License-Identifier: MIT */
/* The heapindex API through its weak references (mallochooks/heapindex.h), built as PIE and as non-PIE:
 * "absent" (run without the index) every call is harmless and answers nothing; "present" (under
 * LD_PRELOAD=libheapindex.so) the same calls reach the index. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mallochooks/heapindex.h"

static int count(const struct heapindex_chunk *c, void *arg) {
    (void)c;
    ++*(int *)arg;
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    const int want = strcmp(argv[1], "present") == 0;
    char *p = malloc(100);
    struct heapindex_chunk c = {0};
    struct heapindex_stats s;
    int visited = 0;
    const int present = heapindex_present();
    const int found = heapindex_lookup(p + 10, &c);
    const size_t walked = heapindex_for_each(count, &visited);
    const int problems = heapindex_check(stderr);
    heapindex_stats(&s);
    const int noted = heapindex_notify_alloc(p + 32, 16, NULL);
    const int unnoted = heapindex_notify_free(p + 32);
    free(p);
    printf("present=%d found=%d walked=%zu problems=%d live=%llu notify=%d/%d\n", present, found, walked, problems,
           (unsigned long long)s.live_chunks, noted, unnoted);
    if (want)
        return present && found && c.base == p && c.size == 100 && walked > 0 && visited > 0 && problems == 0 &&
                       s.live_chunks > 0 && noted && unnoted ? 0 : 1;
    return !present && !found && walked == 0 && visited == 0 && problems == 0 && s.live_chunks == 0 && !noted &&
                   !unnoted ? 0 : 1;
}
