// SPDX-License-Identifier: MIT
// What a link will put into its output, found the way the linker finds it: `-l` libraries searched
// through -L and then the compiler's own search path (lib*.so before lib*.a unless -static/-Bstatic,
// `-l:FILE` by exact name), linker scripts followed (libc.so is one), archive members pulled when they
// define a symbol that is still undefined (rescanning the archive until nothing more is pulled, as GNU ld
// does), shared libraries resolving symbols without adding code.  The answer: which malloc-family
// functions and which declared allocation functions the output defines, and in which input.
#ifndef MALLOCHOOKS_COMPILERWRAPPER_LINK_INPUTS_H
#define MALLOCHOOKS_COMPILERWRAPPER_LINK_INPUTS_H

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "compilerwrapper/link_line.h"
#include "compilerwrapper/elf_file.h"
#include "stubgen/descriptor.h"

namespace mallochooks::allocscc {

// The library directories a compiler driver gives its linker (`-print-search-dirs`, "libraries: =...").
std::vector<std::string> parse_search_dirs(const std::string &print_search_dirs_output);

// Finds -lNAME (or -l:FILE when name starts with ':') in `dirs`, as ld does.
std::optional<std::string> find_library(const std::string &name, bool static_only, const std::vector<std::string> &dirs);

// The file names and -l libraries a linker script pulls in (INPUT, GROUP, AS_NEEDED).
std::vector<std::string> linker_script_inputs(const std::string &script);

// Where a symbol is defined.
struct definition {
    std::string symbol;  // the link symbol (mangled for C++)
    std::string unit;    // "path" or "archive(member)"
    std::string path;    // the file: the object, or the archive
    std::string member;  // the archive member, or ""
    bool local = false;  // a static (file-local) function, or a compiler's local clone of one of either kind
    bool weak = false;
    std::uint64_t size = 0;  // of its code (st_size)
};

struct link_analysis {
    std::vector<definition> family;    // malloc-family functions the output defines
    std::vector<definition> declared;  // declared allocation functions the output defines (global or static)
    std::map<std::string, const stubgen::descriptor *> declared_symbols;  // link symbol -> its descriptor
    std::set<std::string> referenced;  // declared functions' symbols some linked unit refers to
    std::vector<std::string> lto_units;  // LTO IR on the link line: the analysis cannot see into it
    std::vector<std::string> linked_units;  // everything that goes into the output, for --verbose
    // The file each input of the link line is (index as in link_line::inputs): the path, the -l's library
    // as found, the object a source was compiled to; "" when not found.  An input found through a linker
    // script is not on the line: a file that no entry names cannot be replaced by a copy.
    std::vector<std::string> input_paths;
};

// Resolves and reads the link inputs of `line`.  `compiler_dirs` is called at most once, when a library is
// not found in the -L directories.  Throws elf_error or std::runtime_error for an unreadable input.
struct link_model_input {
    const link_line *line;
    std::function<std::vector<std::string>()> compiler_dirs;
    const std::vector<stubgen::descriptor> *declared;
    // Replacements for source inputs: the objects allocscc compiled them to, in order.
    std::vector<std::string> compiled_sources;
};
link_analysis analyse_link(const link_model_input &in);

// Does link symbol `symbol` name the function a descriptor calls `name` (a C name, a mangled name, or a
// qualified C++ name matched against the demangled symbol without its parameters)?  The compilers'
// clones and local aliases of a function (gcc's `xalloc.constprop.0`, `xalloc.part.0`, `xalloc.cold`,
// `xmalloc.localalias`) count as the function: they are its code.
bool symbol_matches(const std::string &name, const std::string &symbol);

// `symbol` without a clone suffix of gcc's (".constprop.0", ".isra.0", ".part.0", ".cold", ".localalias",
// ".lto_priv.0", in any combination), or as it is.
std::string without_clone_suffix(const std::string &symbol);

}  // namespace mallochooks::allocscc

#endif
