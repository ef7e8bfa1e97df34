// SPDX-License-Identifier: MIT
// The wrap backend's entry points, __wrap_malloc ... __wrap_malloc_usable_size: the member of
// libmallochooks.a that `ld --wrap` pulls in.  Hidden: each output binds its own references to its own
// entry points, and exports nothing it did not export before (tests/linktime/exports.sh checks).
//
// Chain: adopted_layer (hand everything to a preloaded tool's chain, if there is one) -> wrap::terminal.
#include "backends/wrap/terminal.h"
#include "libmallochooks/adopted_layer.h"
#include "libmallochooks/entry_points.h"

namespace {
using wrap_hooks = mallochooks::chain<mallochooks::adopted_layer<mallochooks::adopt::tool_chain>,
                                      mallochooks::wrap::terminal>;

// The one constructor: initialise the chain (find the tool) while this output's constructors run, one
// thread at a time (a program's before main, a dlopened library's under the loader's lock).  Left to the
// first allocation, that could come from several threads at once, and front<> makes none of them wait:
// all but the one initialising would pass unseen.  It is usually done already (a wrapdl output's malloc is
// called by libc long before); then this costs one load.
__attribute__((constructor)) void initialise_early() { mallochooks::front<wrap_hooks>::try_init(); }
}  // namespace

MALLOCHOOKS_DEFINE_ENTRY_POINTS_VISIBILITY(__wrap_, wrap_hooks, "hidden")
