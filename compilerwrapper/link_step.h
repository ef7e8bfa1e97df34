// SPDX-License-Identifier: MIT
// The link: compile the sources a link command names (if any) into the private temporary directory, find
// what the output will define (link_inputs.h), generate and compile the shims of the declared allocation
// functions (stubgen), and run the link once with the flags that route callers to them.
// docs/allocscc.md explains the design.
#ifndef MALLOCHOOKS_COMPILERWRAPPER_LINK_STEP_H
#define MALLOCHOOKS_COMPILERWRAPPER_LINK_STEP_H

#include <string>
#include <vector>

#include "compilerwrapper/driver_args.h"
#include "compilerwrapper/settings.h"

namespace mallochooks::allocscc {

// Links.  `original` is the argument list as given (run unchanged when there is nothing to add),
// `expanded` the same with response files expanded.  Returns the exit status allocscc should end with.
int link(const settings &config, const driver_command &cmd, const std::vector<std::string> &original,
         const std::vector<std::string> &expanded);

}  // namespace mallochooks::allocscc

#endif
