// SPDX-License-Identifier: MIT
// The wrapdl backend's terminal: for an output (executable or shared library) that defines its own
// allocator.  The output is linked with a copy of the allocator's object in which each family function X
// it defines has a second, hidden name __mallochooks_real_X (mallochooks-alias), and with
// `--defsym X=__mallochooks_wrapdl_X` (backends/link_flags.h): every reference to X, from this output or,
// at run time, from other objects, reaches our entry points, and the terminal reaches the allocator's
// code through the hidden names, bound by the linker inside this output.  Nothing is looked up at run
// time, so nothing can land in the wrong object (the original libmallochooks looked the allocator up with
// RTLD_NEXT from a library, and so ended a library's hooks in glibc's malloc instead of its own).
// Functions the allocator lacks are bound to fallbacks (backends/wrapdl/fallbacks.cc).
//
// Once --defsym has taken the names, the allocator's own internal calls (a calloc that calls malloc, a
// realloc that calls free) reach our entry points too.  They are part of a call the hooks already handle:
// when a tool is adopted, adopted_layer runs the whole call under the reentrancy guard, so they come
// straight back here; without one, they pass through a chain that raises nothing.  The terminal itself
// sets no guard, which would cost every call a TLS write and its tail call: a chain that puts an event
// layer of its own in front of this terminal must guard around it (docs/link-time.md).
#ifndef MALLOCHOOKS_BACKENDS_WRAPDL_TERMINAL_H
#define MALLOCHOOKS_BACKENDS_WRAPDL_TERMINAL_H

#include "backends/terminal.h"
#include "backends/wrapdl/names.h"

MALLOCHOOKS_DECLARE_UNDERLYING(MALLOCHOOKS_WRAPDL_REAL, __attribute__((visibility("hidden"))))

namespace mallochooks::wrapdl {

struct terminal {
    static void init() {}
    MALLOCHOOKS_DIRECT_TERMINAL_HOOKS(MALLOCHOOKS_WRAPDL_REAL, )
};
static_assert(is_terminal<terminal>);

}  // namespace mallochooks::wrapdl

#endif
