// SPDX-License-Identifier: MIT
// libheapindex.so's definitions of glibc's __libc_ names (__libc_malloc, __libc_free, ...): the same
// layer over preload::libc_terminal (docs/heapindex.md, "glibc's __libc_ names").  In a file of their own
// so that the layer's instances for them do not take heapindex.cc's inlining budget, which its hot paths
// need (measured: with them in heapindex.cc, gcc 12 stopped inlining the index's lookups into realloc).
#include "index/index_hooks.h"
#include "libmallochooks/entry_points.h"

using mallochooks::heapindex::index_hooks;
MALLOCHOOKS_DEFINE_LIBC_ENTRY_POINTS(, index_hooks)
