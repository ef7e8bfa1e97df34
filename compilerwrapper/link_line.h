// SPDX-License-Identifier: MIT
// The one model of a compiler-driver command line that allocscc keeps: every argument as written, what
// each one is for (compile steps, link, an input, words for the linker), the inputs in link order with
// the search state in force for each, and the facts a link decision needs (does it link, -shared, -o,
// -L, -u, version scripts, ...).  The commands allocscc runs are rendered from it: the compile steps of
// the sources a link names, and the final link with the plan's edits (inputs replaced by files of
// allocscc's, objects put first, flags added).  Nothing is written back onto raw strings.
//
// Linker words (from -Wl,, -Xlinker, --for-linker and linker response files -Wl,@FILE) are read as one
// stream, as the linker reads them: an option's value may come from the next -Wl, argument
// (`-Wl,-version-script -Wl,F`, libtool's spelling).  Every spelling GNU ld, gold and lld accept for the
// options allocscc reads is understood (linker_options.cc has the table): one or two dashes for long
// options, `=VALUE`, a separate value, a joined value for short options.  `@file` response files on the
// driver's line are expanded before (command_args.h).
#ifndef MALLOCHOOKS_COMPILERWRAPPER_LINK_LINE_H
#define MALLOCHOOKS_COMPILERWRAPPER_LINK_LINE_H

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace mallochooks::allocscc {

// One driver argument as written, with the separate value of an option that takes one ("-o", "prog").
struct line_arg {
    enum class role {
        compile,   // reaches the compile steps of the sources and the link: -O2, -I, -D, -m32, -L
        link,      // the link only: -shared, -static, -fuse-ld=, -u, -T, -z, ...
        output,    // -o: the link only
        language,  // -x: neither (the sources are compiled apart, each with its own -x)
        input,     // a source, file or -l library: an entry of link_line::inputs
        linker,    // -Wl,... / -Xlinker W: its words are in link_line::linker_words
    };
    role what;
    std::vector<std::string> words;
};

// A word the linker gets, and the driver argument that carries it.
struct linker_word {
    std::string text;
    std::size_t arg;
};

// One link input, in command-line order.
struct link_input {
    enum class kind {
        source,   // compiled by the driver first (`-x` language or file extension)
        file,     // given to the linker as is: object, archive, shared library, linker script
        library,  // -lNAME or -l:FILE, searched for
    };
    kind what = kind::file;
    std::string value;         // path, or NAME / ":FILE" for a library
    std::string language;      // for sources: the -x language in force ("" = from the extension)
    bool static_only = false;  // -static or -Bstatic in force: only lib*.a is searched
    bool whole_archive = false;
    bool script = false;       // a linker script given with -T: read for its INPUT/GROUP, never replaced
    // Where it is written: driver argument `arg`, or (for an input that linker words name) linker words
    // [first_word, end_word).
    std::size_t arg = 0;
    std::optional<std::size_t> first_word, end_word;
};

struct link_line {
    bool links = false;
    std::string reason;  // why it does not link (for --verbose), or "" when it links
    bool shared = false, static_link = false, relocatable = false;
    bool static_libstdcxx = false;  // -static-libstdc++
    bool lto = false;  // -flto on the link command line
    std::optional<std::string> fuse_ld;
    std::optional<std::string> output;           // -o (the driver's, or the linker's own -o)
    std::optional<std::string> soname;           // -soname / -h
    std::vector<std::string> version_scripts;    // --version-script in any spelling
    std::vector<std::string> library_dirs;       // -L, in order (they apply to every -l)
    std::vector<std::string> undefined;          // -u SYMBOL, --undefined, --require-defined
    std::vector<std::string> target_flags;       // -m32, --target=..., -march=...: what the shims need too
    std::vector<link_input> inputs;
    std::vector<line_arg> args;
    std::vector<linker_word> linker_words;
};

// Reads an (expanded) argument list, without argv[0].  Linker response files (-Wl,@FILE) are expanded
// into linker words; one that cannot be read (or includes itself) stays a word, for the linker to report.
// Never throws for any argument list.
link_line read_link_line(const std::vector<std::string> &args);

// What a link changes in the user's command.
struct link_edits {
    std::vector<std::string> first;              // before every argument: the shim objects
    std::map<std::size_t, std::string> inputs;   // input index -> the file the link names in its place
    std::vector<std::string> last;               // after every argument: flags and the runtime
};

// The link command's arguments (without the compiler): the line with the edits made.  -x is left out
// (every source is replaced by the object compiled from it).  A driver argument whose linker words
// include a replaced input is written as one -Xlinker per word, the replacement in the input's place.
std::vector<std::string> render_link(const link_line &line, const link_edits &edits);

// The options of the compile steps of a link's sources: every argument but the inputs, -o, -x and the
// link-only options; add "-c [-x LANG] SOURCE -o OBJECT".
std::vector<std::string> compile_options(const link_line &line);

// Whether `arg` is a driver option that takes the next argument as its value ("-o out").
bool takes_separate_value(const std::string &arg);

// A file name's language for the driver, "" for a link input ("o", "a", "so", anything unknown).
std::string language_of(const std::string &path);

}  // namespace mallochooks::allocscc

#endif
