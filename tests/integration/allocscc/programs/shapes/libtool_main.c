/* SPDX-License-Identifier: MIT */
/* Calls the libtool-style library (libtool_lib.c) and checks, under libheapindex.so, that each chunk's
 * allocation site is the caller of jv_mem_alloc: this program's function, or jv_make in the library. */
#include "site_check.h" /* first: it defines _GNU_SOURCE */

#include <stdlib.h>

void *jv_mem_alloc(size_t n);
void jv_mem_free(void *p);
void *jv_make(size_t n);

__attribute__((noinline)) void *site_program(void) {
    void *p = jv_mem_alloc(24);
    __asm__ volatile("" ::: "memory");
    return p;
}

int main(void) {
    void *a = site_program(), *b = jv_make(40);
    if (!heapindex_present()) {
        puts("ran without the index");
        return 0;
    }
    expect_site("the program's call of jv_mem_alloc", a, 24, "site_program");
    expect_site("the library's own call of jv_mem_alloc", b, 40, "jv_make");
    jv_mem_free(a);
    jv_mem_free(b);
    return site_failures != 0;
}
