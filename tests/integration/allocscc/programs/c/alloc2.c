/* SPDX-License-Identifier: MIT */
/* Wrappers over xmalloc in another file: declared too, so the site is set by the outermost one. */
#include <string.h>

#include "util.h"

void *xcalloc(size_t n, size_t size) {
    void *p = xmalloc(n * size);
    return memset(p, 0, n * size);
}

char *xstrdup(const char *s) { return strcpy(xmalloc(strlen(s) + 1), s); }
