// SPDX-License-Identifier: MIT
// The link: compile the sources a link command names (if any) into the private temporary directory, find
// what the output will define (link_inputs.h), choose the link-time backend (wrap, or wrapdl with alias
// copies of the inputs that define the malloc family), generate and compile the shims of the declared
// allocation functions (stubgen), and run the link once with -lmallochooks and the flags of both.
// docs/allocscc.md explains the design.
#ifndef MALLOCHOOKS_COMPILERWRAPPER_LINK_STEP_H
#define MALLOCHOOKS_COMPILERWRAPPER_LINK_STEP_H

#include <string>
#include <vector>

#include "compilerwrapper/link_line.h"
#include "compilerwrapper/settings.h"

namespace mallochooks::allocscc {

// Links as `line` says, with hooks.  Returns the exit status allocscc should end with.
int link(const settings &config, const link_line &line);

}  // namespace mallochooks::allocscc

#endif
