// SPDX-License-Identifier: MIT
// The alias writer of the wrapdl backend (library; `mallochooks-alias` is its command line, allocscc
// calls it directly).  It copies the object that defines an output's allocator, or the archive that holds
// it, and adds to every object defining a family function X one symbol:
//
//     __mallochooks_real_X   same section, value, size, type and binding as X; visibility hidden
//
// allocscc asks for other names as well (write_aliases): __mallochooks_real_S for a declared allocation
// function S that the output defines (the same scheme, for its shim: docs/allocscc.md), and a hidden
// global alias of a declared *static* function, which lets the output's shim object list its code.
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

// One alias to add: to the function `symbol` (a global or weak definition, or with `local` a static
// function) defined in `member` of an archive ("": in the object itself, or in any member), the name
// `alias`, global (weak when the original is weak) and hidden.  Each request is met at most once, by the
// first definition that matches.
struct alias_spec {
    std::string symbol;
    std::string alias;
    bool local = false;
    std::string member;
};

struct alias_result {
    std::string error;                 // empty on success
    std::vector<std::string> defined;  // the family functions found, in the family's order
    std::vector<alias_spec> missing;   // write_aliases: requests no definition matched (nothing added)
};

// Which family functions `path` defines (global or weak function definitions, in any member).
alias_result defined_family_functions(const std::string &path);

// The requests for the family functions `defined`: __mallochooks_real_X for each.
std::vector<alias_spec> family_aliases(const std::vector<std::string> &defined);

// Writes to `output` a copy of `input` with the aliases `aliases` asks for.  Fails, writing nothing, when
// `input` cannot be read, or already has a symbol of an alias's name (an output of this tool).
alias_result write_aliases(const std::string &input, const std::string &output, const std::vector<alias_spec> &aliases);

// write_aliases for every family function `input` defines.  Fails, writing nothing, when it defines none.
alias_result write_real_aliases(const std::string &input, const std::string &output);

}  // namespace mallochooks::wrapdl

#endif
