// SPDX-License-Identifier: MIT
// allocscc's settings: the ALLOCSCC_* environment variables (README "allocscc", section "Settings") and
// allocscc's own command-line options, read and checked in one place.  An unknown ALLOCSCC_* variable, a
// malformed value or a malformed descriptor is an error that names it: a typo must never give a build
// that silently hooks less than the user asked for.
#ifndef MALLOCHOOKS_COMPILERWRAPPER_SETTINGS_H
#define MALLOCHOOKS_COMPILERWRAPPER_SETTINGS_H

#include <stdexcept>
#include <string>
#include <vector>

#include "stubgen/descriptor.h"

namespace mallochooks::allocscc {

struct settings_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// One setting: its variable, its default, and what the README says about it.
struct setting_info {
    const char *variable;
    const char *default_value;
    const char *meaning;
};
extern const std::vector<setting_info> known_settings;

enum class language { c, cxx };

struct settings {
    language lang = language::c;
    std::vector<std::string> compiler;  // the underlying driver and any fixed arguments ("ccache gcc")
    std::string compiler_variable;      // ALLOCSCC_CC or ALLOCSCC_CXX: named in messages
    std::vector<stubgen::descriptor> functions;
    std::string cache_dir;  // compiled shims are kept here ("" = no cache)
    std::string runtime_override;  // ALLOCSCC_RUNTIME_DIR: where libmallochooks.a is ("" = search, runtime_dir.h)
    bool keep_temps = false;
    bool verbose = false;
};

// Reads the settings from `environ`-style `env` and the descriptor files named by allocscc's own option
// `--alloc-fns=FILE` (`fns_files`, in command-line order: read_command_args in command_args.h finds
// them).  `lang` comes from the name allocscc was called by.  Throws settings_error (or
// stubgen::parse_error for a descriptor).
settings read_settings(char **env, language lang, const std::vector<std::string> &fns_files);

// The language allocscc is run as: C++ when its name (argv[0]'s last component) contains "++".
language language_from_name(const std::string &argv0);

}  // namespace mallochooks::allocscc

#endif
