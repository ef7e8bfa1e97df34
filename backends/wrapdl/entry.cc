// SPDX-License-Identifier: MIT
// The wrapdl backend's entry points, __mallochooks_wrapdl_malloc ...: the member of libmallochooks.a that
// the wrapdl link flags pull in (-u) and point the family's names at (--defsym X=__mallochooks_wrapdl_X).
//
// Default visibility, although nothing should bind to these names: ld.bfd and gold give a symbol defined
// by `--defsym X=Y` the visibility of Y, so a hidden Y would leave X hidden, and then other objects (libc's
// strdup, every library of the program) would no longer reach this output's malloc.  An executable does
// not export them (nothing references them dynamically); a shared library does unless its version script
// makes them local (the link flags add one for libraries without their own; docs/link-time.md).
//
// Chain: adopted_layer (a preloaded tool's layer in front of our allocator, if there is one) ->
// wrapdl::terminal.
#include "backends/linktime/adopted_layer.h"
#include "backends/linktime/entry_points.h"
#include "backends/wrapdl/terminal.h"

namespace {
using wrapdl_hooks = mallochooks::chain<mallochooks::adopted_layer<mallochooks::adopt::tool_layer>,
                                        mallochooks::wrapdl::terminal>;
}  // namespace

// Find the tool before the program's threads can race their first calls.
MALLOCHOOKS_READY_AT_LOAD(wrapdl_hooks)

MALLOCHOOKS_DEFINE_LINKTIME_ENTRY_POINTS(MALLOCHOOKS_WRAPDL_ENTRY, wrapdl_hooks, "default")

// The C++ operator the current call came in by (terminal.h).  Constant-initialised to none.
__thread mallochooks::cxx_function mallochooks::wrapdl::current_cxx = mallochooks::cxx_function::none;
