// SPDX-License-Identifier: MIT
// The shims as an object file written directly, without a compiler: an x86-64 ELF relocatable object
// holding one thunk per declared function, and the table of declared static functions' code.  Each thunk
// is two or three instructions that load the declared function's address and jump to a trampoline of the
// link-time runtime (backends/linktime/shim_trampolines.h), which does what stubgen's C stub does.  Writing
// it takes well under a millisecond, where compiling the C shims is a compiler run (tens of
// milliseconds): it is what keeps the first link of a build with declared functions close to the cost of
// the others (docs/allocscc.md, "Cost").
//
// A thunk leaves the stack as the caller made it, so only functions whose arguments all travel in
// registers can have one (`fits_thunk`); the others get C shims, compiled.
#ifndef MALLOCHOOKS_STUBGEN_SHIM_OBJECT_H
#define MALLOCHOOKS_STUBGEN_SHIM_OBJECT_H

#include <string>
#include <vector>

#include "stubgen/shim_writer.h"

namespace mallochooks::stubgen {

// Does every argument of `d` travel in a register under the x86-64 System V convention (at most 6 of the
// integer class, 8 of the floating-point class)?
bool fits_thunk(const descriptor &d);

// The plan a suballocator's thunk hands its trampoline (MALLOCHOOKS_PLAN_*): the register slots of its
// size, count, resized and freed chunk arguments, and whether it returns a chunk.
unsigned suballoc_plan(const descriptor &d);

// Writes the object to `path`: a thunk for each of `functions` (all must fit_thunk), named and linked as
// the C stub would be, and the table of `ranges` when there are any.  Returns "" or what went wrong.
std::string write_shim_object(const std::vector<shim_function> &functions, const std::vector<code_range> &ranges,
                              const std::string &path);

}  // namespace mallochooks::stubgen

#endif
