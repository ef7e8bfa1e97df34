// SPDX-License-Identifier: MIT
// libheapindex.so's layer, exported for link-time hooks elsewhere in the process to adopt
// (mallochooks/dynamic.h): programs and libraries with link-time hooks route their allocations through
// it, in front of their own allocator (wrapdl), or through the library's whole chain (wrap).  In a file of
// its own, as the __libc_ entry points are (libc_entry_points.cc): gcc's inlining budget is per
// translation unit, and the layer's instances here, over a table, must not take it from heapindex.cc's
// entry points nor the reverse (callgrind: with both in heapindex.cc, marking the exported layer's calls
// un-inlined record::publish from it, 29 instructions more per malloc/free pair through it).
#include "index/index_hooks.h"
#include "libmallochooks/entry_points.h"

using mallochooks::heapindex::index_hooks;
MALLOCHOOKS_EXPORT_LAYER(mallochooks::heapindex::heapindex_layer, index_hooks, "heapindex")
