/* SPDX-License-Identifier: MIT */
/* An input for the alias writer's requests beyond the family (tests/linktime/unit/test_real_alias.cc): a declared
 * allocation function defined globally, and a static one. */
#include <stdlib.h>

__attribute__((noinline)) static void *local_alloc(size_t n) { return malloc(n + 1); }

void *xalloc(size_t n) { return local_alloc(n); }
