/* SPDX-License-Identifier: MIT */
/* The program's own allocation functions (declared to allocscc).  xmalloc records the allocation site in
 * force when it calls malloc: what the link-time hooks will take as the caller. */
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* Defined by the shims allocscc links in.  Not weak: the address of an undefined weak TLS variable
 * cannot be tested reliably (the linker relaxes the GOT load that the test needs into a `lea`). */
extern __thread const void *__mallochooks_alloc_site __attribute__((visibility("hidden"), tls_model("initial-exec")));

const void *last_site;

const void *current_site(void) { return __mallochooks_alloc_site; }

void *xmalloc(size_t n) {
    last_site = current_site();
    void *p = malloc(n);
    if (p == NULL) abort();
    return p;
}

void xfree(void *p) {
    last_site = current_site();
    free(p);
}

/* Defined here and called from here: the call does not go through the linker. */
char *xstrdup_local(const char *s) {
    char *p = xmalloc(strlen(s) + 1);
    return strcpy(p, s);
}
