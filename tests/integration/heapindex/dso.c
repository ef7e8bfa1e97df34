/* SPDX-License-Identifier: MIT */
/* A library that allocates (for index_dlopen.c): its chunks' allocation sites lie inside it. */
#include <stdlib.h>
#include <string.h>

__attribute__((visibility("default"))) char *dso_make(size_t n) {
    char *p = malloc(n);
    if (p) memset(p, 'd', n);
    return p;
}

__attribute__((visibility("default"))) void dso_release(char *p) { free(p); }
