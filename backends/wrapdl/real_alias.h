// SPDX-License-Identifier: MIT
// The alias writer of the wrapdl backend (library; `mallochooks-alias` is its command line, allocscc will
// call it directly).  It copies the object that defines an output's allocator, or the archive that holds
// it, and adds to every object defining a family function X one symbol:
//
//     __mallochooks_real_X   same section, value, size, type and binding as X; visibility hidden
//
// and changes nothing else: no section, relocation or existing symbol is touched, and the new symbols go
// at the end of the symbol table so every existing index stays valid.  Linked with
// `--defsym X=__mallochooks_wrapdl_X`, the name X then belongs to the hooks while the allocator's code
// stays reachable, by the hooks only, under its hidden second name.  Why a copy of an input has to carry
// that name, and nothing less invasive works, is in docs/link-time.md.
//
// Inputs: ELF relocatable objects (any class and byte order libelf reads) and GNU/SysV ar archives of
// them, thin ones included (the copy of a thin archive is a normal one, holding its members).  Members
// that are not ELF, such as LTO bitcode, are copied unchanged and keep their entries of the archive's
// symbol index.  BSD archives and 64-bit archive indexes are refused.
#ifndef MALLOCHOOKS_BACKENDS_WRAPDL_REAL_ALIAS_H
#define MALLOCHOOKS_BACKENDS_WRAPDL_REAL_ALIAS_H

#include <string>
#include <vector>

namespace mallochooks::wrapdl {

struct alias_result {
    std::string error;                 // empty on success
    std::vector<std::string> defined;  // the family functions found (and aliased), in the family's order
};

// Which family functions `path` defines (global or weak function definitions, in any member).
alias_result defined_family_functions(const std::string &path);

// Writes to `output` a copy of `input` with the aliases added.  Fails, writing nothing, when `input` cannot
// be read, defines no family function, or already has the aliases (an output of this function).
alias_result write_real_aliases(const std::string &input, const std::string &output);

}  // namespace mallochooks::wrapdl

#endif
