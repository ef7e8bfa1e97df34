/* SPDX-License-Identifier: MIT */
/* glibc's __libc_ allocation entry points, which its headers do not declare: used by the test programs
 * and test allocators that call them (replacements built on them, and the tests of their interposition). */
#ifndef MALLOCHOOKS_TESTS_LIBC_NAMES_H
#define MALLOCHOOKS_TESTS_LIBC_NAMES_H
#include <stddef.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);
extern void *__libc_memalign(size_t, size_t);
extern void *__libc_valloc(size_t);
extern void *__libc_pvalloc(size_t);

#endif
