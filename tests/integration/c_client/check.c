/* SPDX-License-Identifier: MIT */
/* Run under LD_PRELOAD=libcclient.so: the C client's events fire for our allocations, with usable sizes. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

int main(void) {
    void (*counts)(unsigned long *) = (void (*)(unsigned long *))dlsym(RTLD_DEFAULT, "cclient_counts");
    if (!counts) {
        fprintf(stderr, "libcclient.so is not preloaded\n");
        return 2;
    }
    unsigned long before[3], after[3];
    counts(before);
    for (int i = 0; i < 1000; ++i) free(malloc(10 + i));
    counts(after);
    if (after[0] - before[0] < 1000 || after[1] - before[1] < 1000 || after[2] - before[2] < 1000) {
        fprintf(stderr, "C client saw %lu allocs, %lu frees, %lu usable sizes\n", after[0] - before[0],
                after[1] - before[1], after[2] - before[2]);
        return 1;
    }
    printf("c client: events and usable sizes delivered\n");
    return 0;
}
