// SPDX-License-Identifier: MIT
// The wrap backend's terminal: for an output whose allocator lives in another object (libc, or a shared
// library).  The output is linked with `ld --wrap=X` for every family function X (backends/link_flags.h),
// so its undefined references to X become references to __wrap_X (our entry points, backends/wrap/entry.cc)
// and our references to __real_X become references to X: the allocator, bound like any other call.
// No lookup, no bootstrap arena: the linker did the resolving.
//
// The declarations below carry no visibility: __real_X must stay an ordinary (default-visibility)
// undefined reference, so that after --wrap renames it to X the dynamic loader binds it to libc's X.
#ifndef MALLOCHOOKS_BACKENDS_WRAP_TERMINAL_H
#define MALLOCHOOKS_BACKENDS_WRAP_TERMINAL_H

#include "backends/terminal.h"

MALLOCHOOKS_DECLARE_UNDERLYING(__real_, )

namespace mallochooks::wrap {

struct terminal {
    static void init() {}
    MALLOCHOOKS_DIRECT_TERMINAL_HOOKS(__real_, )
};
static_assert(is_terminal<terminal>);

}  // namespace mallochooks::wrap

#endif
