/* SPDX-License-Identifier: MIT */
/* A shared library as libtool builds one with -export-symbols-regex (jq's libjq, sqlite's libsqlite3):
 * its interface is a version script given as `-Wl,-version-script -Wl,FILE`, and it defines the
 * allocation functions the user declares (jq's jv_mem_alloc).  Its own calls and a program's calls of
 * jv_mem_alloc are attributed to their callers. */
#include <stdlib.h>

void *jv_mem_alloc(size_t n) {
    void *p = malloc(n);
    if (p == NULL) abort();
    return p;
}

void jv_mem_free(void *p) { free(p); }

void *jv_make(size_t n) {
    void *p = jv_mem_alloc(n);
    __asm__ volatile("" ::: "memory"); /* no tail call: the call's return address stays in jv_make */
    return p;
}

/* Not in the version script: local to the library. */
void *jv_internal(void) { return jv_make(1); }
