// SPDX-License-Identifier: MIT
// The compiler driver's command line, read the way gcc and clang read it: does this invocation link, and
// if it does, what goes into the link (inputs in order, library search options, linker options that
// change how `-l` is searched, the output kind).  `@file` response files are expanded here for the
// analysis only; a non-linking invocation always runs with the original arguments.
#ifndef MALLOCHOOKS_COMPILERWRAPPER_DRIVER_ARGS_H
#define MALLOCHOOKS_COMPILERWRAPPER_DRIVER_ARGS_H

#include <optional>
#include <string>
#include <vector>

namespace mallochooks::allocscc {

// Expands `@file` arguments as libiberty's expandargv does (gcc and clang follow it): the file's contents
// split at blanks, with '...' and "..." quoting and backslash escapes, recursively; an `@file` that
// cannot be read stays as it is.  Throws std::runtime_error on a response-file cycle.
std::vector<std::string> expand_response_files(const std::vector<std::string> &args);

// One link input, in command-line order.
struct link_input {
    enum class kind {
        source,   // compiled by the driver first (`-x` language or file extension)
        file,     // given to the linker as is: object, archive, shared library, linker script
        library,  // -lNAME or -l:FILE, searched for
    };
    kind what;
    std::string value;       // path, or NAME / ":FILE" for a library
    std::string language;    // for sources: the -x language in force ("" = from the extension)
    bool static_only = false;  // -static or -Wl,-Bstatic in force: only lib*.a is searched
    bool whole_archive = false;
};

struct driver_command {
    bool links = false;
    std::string reason;  // why it does not link (for --verbose), or "" when it links
    bool shared = false, static_link = false, relocatable = false;
    bool lto = false;   // -flto on the link command line
    std::optional<std::string> fuse_ld;
    std::optional<std::string> output;  // -o
    std::vector<std::string> library_dirs;  // -L, in order (they apply to every -l)
    std::vector<std::string> undefined;     // -u SYMBOL / -Wl,-u,SYMBOL / --undefined
    std::vector<link_input> inputs;
    std::vector<std::string> target_flags;  // -m32, --target=..., -march=...: what the shims need too
};

// Reads an (expanded) argument list, without argv[0].
driver_command parse_driver_args(const std::vector<std::string> &args);

// How a link that names source files is done in two steps: each source compiled to an object in
// allocscc's temporary directory (with every option but the inputs, -o, -x and link-only options), then
// the link with the objects in the sources' places (and without -x, which would apply to them).
struct link_split {
    std::vector<std::string> compile_args;  // add "-c [-x LANG] SOURCE -o OBJECT"
    std::vector<std::string> link_args;     // sources' places hold their names until replaced
    std::vector<std::size_t> source_slots;  // indexes into link_args, one per source in order
    std::vector<std::string> source_languages;  // the -x language of each ("" from the extension)
};
link_split split_link_args(const std::vector<std::string> &args);

// Whether the argument at args[i] is an option that takes the next argument as its value ("-o out").
bool takes_separate_value(const std::string &arg);

// A file name's language for the driver, "" for a link input ("o", "a", "so", anything unknown).
std::string language_of(const std::string &path);

}  // namespace mallochooks::allocscc

#endif
