// SPDX-License-Identifier: MIT
// Who calls whom inside one relocatable object, and which functions have their address taken, read from
// its relocations and (for calls between local functions of one section, which the assembler resolves
// without a relocation) from the call instructions themselves.  x86-64 only.
//
// allocscc reads this for the objects that define a declared static function, to tell when declaring it
// attributes nothing: a static function counts only for the allocation calls in its own code (the hooks
// recognise its code by address and unwind from it), so one that reaches malloc through a function
// pointer (sqlite's static sqlite3Malloc -> sqlite3GlobalConfig.m.xMalloc -> sqlite3MemMalloc) or through
// an undeclared helper is attributed to the function that calls malloc.  link_step.cc then warns, naming
// the functions to declare with it.
#ifndef MALLOCHOOKS_COMPILERWRAPPER_CODE_REFS_H
#define MALLOCHOOKS_COMPILERWRAPPER_CODE_REFS_H

#include <cstdint>
#include <set>
#include <string>
#include <vector>

namespace mallochooks::allocscc {

struct code_function {
    std::string name;
    bool local = false;
    std::set<std::string> calls;  // what its code calls or jumps to: symbols, and local functions by name
    bool address_taken = false;   // referenced other than by a call or jump (a function pointer)
};

// The functions of relocatable object `path` (or member `member` of archive `path`).  Throws elf_error
// when it cannot be read; an object of another machine gives no functions.
std::vector<code_function> read_code_refs(const std::string &path, const std::string &member);

}  // namespace mallochooks::allocscc

#endif
