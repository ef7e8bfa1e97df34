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
// Each call into the allocator runs under the reentrancy guard: once --defsym has taken the names, the
// allocator's own internal calls (a calloc that calls malloc, a realloc that calls free) reach our entry
// points too, and they are part of the call the hooks already handle, not new ones.
#ifndef MALLOCHOOKS_BACKENDS_WRAPDL_TERMINAL_H
#define MALLOCHOOKS_BACKENDS_WRAPDL_TERMINAL_H

#include "backends/terminal.h"
#include "backends/wrapdl/names.h"
#include "libmallochooks/guard.h"

MALLOCHOOKS_DECLARE_UNDERLYING(MALLOCHOOKS_WRAPDL_REAL, __attribute__((visibility("hidden"))))

namespace mallochooks::wrapdl {

struct terminal {
    static void init() {}
    MALLOCHOOKS_DIRECT_TERMINAL_HOOKS(MALLOCHOOKS_WRAPDL_REAL, ::mallochooks::reentrancy_guard guard;)
};
static_assert(is_terminal<terminal>);

}  // namespace mallochooks::wrapdl

#endif
