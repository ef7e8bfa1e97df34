// SPDX-License-Identifier: MIT
// The wrap backend's entry points, __wrap_malloc ... __wrap_malloc_usable_size: the member of
// libmallochooks.a that `ld --wrap` pulls in.  Hidden: each output binds its own references to its own
// entry points, and exports nothing it did not export before (tests/linktime/exports.sh checks).
//
// Chain: adopted_layer (hand everything to a preloaded tool's chain, if there is one) -> wrap::terminal.
#include "backends/linktime/adopted_layer.h"
#include "backends/linktime/entry_points.h"
#include "backends/wrap/terminal.h"

namespace {
using wrap_hooks = mallochooks::chain<mallochooks::adopted_layer<mallochooks::adopt::tool_chain>,
                                      mallochooks::wrap::terminal>;
}  // namespace

// Find the tool before the program's threads can race their first calls.
MALLOCHOOKS_READY_AT_LOAD(wrap_hooks)

MALLOCHOOKS_DEFINE_LINKTIME_ENTRY_POINTS(__wrap_, wrap_hooks, "hidden")
