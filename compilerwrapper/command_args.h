// SPDX-License-Identifier: MIT
// allocscc's command line, read once: `@file` response files expanded (libiberty's rules, which gcc, clang
// and the linkers follow) and allocscc's own option `--alloc-fns=FILE` taken out, since the compiler would
// reject it.  Two views come out of the one pass: the arguments the compiler gets when allocscc does not
// link (response files untouched, except one holding allocscc's option, which is expanded in place without
// it), and the fully expanded arguments that the link-line model (link_line.h) reads.
#ifndef MALLOCHOOKS_COMPILERWRAPPER_COMMAND_ARGS_H
#define MALLOCHOOKS_COMPILERWRAPPER_COMMAND_ARGS_H

#include <string>
#include <vector>

namespace mallochooks::allocscc {

// Expands `@file` arguments as libiberty's expandargv does: the file's contents split at blanks, with
// '...' and "..." quoting and backslash escapes, recursively; an `@file` that cannot be read stays as it
// is.  Throws std::runtime_error on a response-file cycle.
std::vector<std::string> expand_response_files(const std::vector<std::string> &args);

struct command_args {
    std::vector<std::string> for_compiler;  // argv without allocscc's options (response files as given)
    std::vector<std::string> expanded;      // every response file expanded, allocscc's options removed
    std::vector<std::string> fns_files;     // the values of --alloc-fns=FILE, in order
};

// Reads argv without argv[0].  Throws std::runtime_error on a response-file cycle.
command_args read_command_args(const std::vector<std::string> &args);

}  // namespace mallochooks::allocscc

#endif
