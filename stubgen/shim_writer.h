// SPDX-License-Identifier: MIT
// The C shim generator: turns descriptors into caller-side stubs, one per declared function, in one C
// file that any C compiler builds.  Each stub takes the declared function's place for its callers (by the
// linker's --wrap, or by --defsym once the defining object has an alias of the original), sets the
// allocation site (mallochooks/alloc_site.h) when it is the outermost declared wrapper on the thread, and
// for suballocators reports chunks to the heap index through weak references.
#ifndef MALLOCHOOKS_STUBGEN_SHIM_WRITER_H
#define MALLOCHOOKS_STUBGEN_SHIM_WRITER_H

#include <string>
#include <vector>

#include "stubgen/descriptor.h"

namespace mallochooks::stubgen {

// How callers reach a stub, and how the stub reaches the original.
//   wrap:   ld --wrap=S: undefined references to S go to __wrap_S, and __real_S is the original.  Catches
//           calls from other objects (and from shared libraries' callers in other outputs).
//   defsym: --defsym S=__mallochooks_stub_S: every reference to S in the output, the defining object's
//           own included, goes to the stub; the original is reached through __mallochooks_real_S, a hidden
//           alias that allocscc adds to a copy of the defining object (the link-time backends' alias
//           writer).
enum class linkage { wrap, defsym };

struct shim_function {
    descriptor desc;
    std::string symbol;  // the linker symbol the program uses: the name, or its mangled form
};

std::string stub_symbol(const std::string &symbol, linkage how);
std::string real_symbol(const std::string &symbol, linkage how);

// The C source of the shims for `functions`.
std::string write_shims(const std::vector<shim_function> &functions, linkage how);

// The linker flags (as compiler-driver arguments, `-Wl,...`) that route callers to the stubs.
std::vector<std::string> link_flags(const std::vector<shim_function> &functions, linkage how);

// shim_functions for descriptors whose names are link symbols already (C functions, or mangled C++
// names); throws parse_error for a qualified C++ name, whose symbol only allocscc can find.
std::vector<shim_function> with_plain_symbols(const std::vector<descriptor> &descriptors);

}  // namespace mallochooks::stubgen

#endif
