// SPDX-License-Identifier: MIT
// How the linkers (GNU ld, gold, lld) read the words they are given, for allocscc's link-line model
// (link_line.h): which word is an option and which its value, which is an input file.  ld parses with
// getopt_long_only, so a long option may have one dash or two (`-version-script`, `--version-script`),
// takes its value after `=` or as the next word, and a single-letter option takes its value joined or as
// the next word (`-lm`, `-l m`).  Every option of the three linkers is listed, with or without a value,
// so that a value is never taken for an input and `-hash-style=gnu` is never read as `-h ash-style=gnu`.
// Abbreviated long options (getopt accepts unambiguous prefixes) are not recognised.
#ifndef MALLOCHOOKS_COMPILERWRAPPER_LINKER_OPTIONS_H
#define MALLOCHOOKS_COMPILERWRAPPER_LINKER_OPTIONS_H

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace mallochooks::allocscc {

struct linker_word_reading {
    bool positional = false;           // an input file, not an option
    std::string name;                  // the option without dashes and value: "l", "version-script", "Bstatic"
    std::optional<std::string> value;  // joined, after '=', or the next word
    bool incomplete = false;           // takes a value, and no word follows (yet)
    std::size_t used = 1;              // words read: 1, or 2 with a separate value
};

// Reads the option (or input) at words[i].
linker_word_reading read_linker_word(const std::vector<std::string> &words, std::size_t i);

}  // namespace mallochooks::allocscc

#endif
