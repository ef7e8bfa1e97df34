/* SPDX-License-Identifier: MIT */
/* sqlite's shape: a static allocation wrapper (sqlite3Malloc, static in the amalgamation) that reaches
 * malloc through a function pointer (sqlite3GlobalConfig.m.xMalloc = sqlite3MemMalloc, static too), and
 * one that reaches it through an undeclared static helper.  Declaring only the wrappers attributes
 * nothing, and allocscc says so at link time, naming mem_malloc and helper_malloc; declared with them, the
 * chunks' sites are the wrappers' callers.  Checked under libheapindex.so. */
#include "site_check.h" /* first: it defines _GNU_SOURCE */

#include <stdlib.h>

struct mem_methods {
    void *(*xMalloc)(int);
    void (*xFree)(void *);
};

static void *mem_malloc(int n) {
    void *p = malloc((size_t)n);
    __asm__ volatile("" ::: "memory"); /* no tail call: malloc returns into mem_malloc */
    return p;
}
static void mem_free(void *p) { free(p); }

/* Not static and not const, as sqlite3GlobalConfig: the compiler cannot call mem_malloc directly. */
struct mem_methods mem_config = {mem_malloc, mem_free};

static __attribute__((noinline)) void *wrapper_malloc(unsigned long n) {
    void *p = mem_config.xMalloc((int)n);
    __asm__ volatile("" ::: "memory");
    return p;
}

static __attribute__((noinline)) void *helper_malloc(unsigned long n) {
    void *p = malloc(n);
    __asm__ volatile("" ::: "memory");
    return p;
}

static __attribute__((noinline)) void *wrapper_helped(unsigned long n) {
    void *p = helper_malloc(n);
    __asm__ volatile("" ::: "memory");
    return p;
}

__attribute__((noinline)) void *site_pointer(void) {
    void *p = wrapper_malloc(48);
    __asm__ volatile("" ::: "memory");
    return p;
}

__attribute__((noinline)) void *site_helped(void) {
    void *p = wrapper_helped(56);
    __asm__ volatile("" ::: "memory");
    return p;
}

int main(void) {
    void *a = site_pointer(), *b = site_helped();
    if (!heapindex_present()) {
        puts("ran without the index");
        return 0;
    }
    expect_site("a static wrapper reaching malloc through a function pointer", a, 48, "site_pointer");
    expect_site("a static wrapper reaching malloc through an undeclared helper", b, 56, "site_helped");
    mem_config.xFree(a);
    free(b);
    return site_failures != 0;
}
