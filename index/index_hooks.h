// SPDX-License-Identifier: MIT
// libheapindex.so's chain: heapindex_layer over the preload terminal, with early_terminal for the calls
// that bypass the layer (the front sends them to `terminal`: there they are indexed too, without
// trailers; redefining `terminal` is exit 5 of the list in include/mallochooks/hooks.h).  `over` keeps
// that choice for the route of glibc's __libc_ names (libc_entry_points.cc), which is the same chain over
// preload::libc_terminal.  Shared by the two files that define entry points over it.
#ifndef MALLOCHOOKS_INDEX_INDEX_HOOKS_H
#define MALLOCHOOKS_INDEX_INDEX_HOOKS_H

#include "backends/preload/terminal.h"
#include "index/heapindex_layer.h"
#include "mallochooks/hooks.h"

namespace mallochooks::heapindex {

template <class Terminal> struct index_hooks_over : chain<heapindex_layer, Terminal> {
    using terminal = early_terminal<Terminal>;
    template <class T> using over = index_hooks_over<T>;
};
using index_hooks = index_hooks_over<preload::terminal>;

}  // namespace mallochooks::heapindex

#endif
