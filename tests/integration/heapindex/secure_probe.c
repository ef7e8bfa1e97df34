/* SPDX-License-Identifier: MIT */
/* Linked against libheapindex.so or libmalloctrace.so (DT_NEEDED, not LD_PRELOAD), for secure_mode.sh:
 * run set-uid, the library must read no setting and write no file, and (the index) still report a heap
 * error on stderr.  Prints whether the process runs in secure mode; with "error", makes one heap error
 * (a byte past malloc_usable_size: the index's trailer, so only under the index); keeps one chunk live
 * for the exit report. */
#define _GNU_SOURCE
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/auxv.h>

#include <string.h>

int main(int argc, char **argv) {
    char *p = malloc(24);
    char *kept = malloc(1000);
    if (p == NULL || kept == NULL) return 2;
    if (argc > 1 && strcmp(argv[1], "error") == 0) p[malloc_usable_size(p)] = 'X';
    free(p);
    printf("secure=%lu\n", getauxval(AT_SECURE));
    return 0;
}
