// SPDX-License-Identifier: MIT
// The C shim generator: turns descriptors into caller-side stubs, one per declared function, in one C
// file that any C compiler builds.  Each stub takes the declared function's place for its callers (by the
// linker's --wrap, or by --defsym once the defining object has an alias of the original), sets the
// allocation site (mallochooks/alloc_site.h) when it is the outermost declared wrapper on the thread, and
// for suballocators reports chunks to the heap index through weak references.  The same file may carry
// the table of declared static functions' code (mallochooks/alloc_site.h).  allocscc writes the same
// shims as an object of its own, without a compiler, when their arguments allow (shim_object.h); these C
// shims are for the others, and for builds with stubgen alone.
#ifndef MALLOCHOOKS_STUBGEN_SHIM_WRITER_H
#define MALLOCHOOKS_STUBGEN_SHIM_WRITER_H

#include <cstdint>
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
    linkage how = linkage::wrap;

    std::string stub() const;  // the stub's symbol
    std::string real() const;  // the original's symbol, as the stub calls it
};

std::string stub_symbol(const std::string &symbol, linkage how);
std::string real_symbol(const std::string &symbol, linkage how);

// The code of a declared static function, for the table of the hooks: the hidden global alias allocscc
// gave it (in the copy of its object) and its size.
struct code_range {
    std::string alias;
    std::uint64_t size;
};

// The C source of the shims for `functions`, and of the table of `ranges` when there are any.
std::string write_shims(const std::vector<shim_function> &functions, const std::vector<code_range> &ranges = {});

// The linker flags (as compiler-driver arguments, `-Wl,...`) that route callers to the stubs.  defsym also
// names the original's alias as undefined, so that an archive member that defines it is pulled although
// --defsym has already given its name a value.
std::vector<std::string> link_flags(const std::vector<shim_function> &functions);

// shim_functions for descriptors whose names are link symbols already (C functions, or mangled C++
// names); throws parse_error for a qualified C++ name, whose symbol only allocscc can find.
std::vector<shim_function> with_plain_symbols(const std::vector<descriptor> &descriptors, linkage how);

}  // namespace mallochooks::stubgen

#endif
