/* SPDX-License-Identifier: MIT */
/* Declarations of the test program's allocation functions (util.c, alloc2.c). */
#include <stddef.h>
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void xfree(void *p);
char *xstrdup(const char *s);
char *xstrdup_local(const char *s);
const void *current_site(void);
extern const void *last_site;
