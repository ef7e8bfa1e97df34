// SPDX-License-Identifier: MIT
// mallochooks-link-flags: the link flags of a link-time backend (link_flags.h), one per line, to paste
// into a link command (`$(mallochooks-link-flags wrap)`) or to use as a compiler response file (@FILE).
//
//   mallochooks-link-flags wrap
//   mallochooks-link-flags wrapdl [--version-script=MAP] FUNCTION...
//   mallochooks-link-flags wrapdl [--version-script=MAP] --defined-by=FILE...
//
// FUNCTION: a family function the output's allocator defines.  --defined-by: take them from the objects
// or archives that define the allocator (mallochooks-alias's outputs).  --version-script: for a shared
// library without a version script of its own, the installed wrapdl-shared.map.
#include <stdio.h>
#include <string.h>

#include "backends/link_flags.h"
#include "backends/wrapdl/real_alias.h"

namespace {
int usage() {
    fprintf(stderr, "usage: mallochooks-link-flags wrap\n"
                    "       mallochooks-link-flags wrapdl [--version-script=MAP] (FUNCTION... | --defined-by=FILE...)\n");
    return 2;
}
}  // namespace

int main(int argc, char **argv) {
    if (argc < 2) return usage();
    mallochooks::link_request request;
    if (strcmp(argv[1], "wrap") == 0) {
        if (argc != 2) return usage();
        request.backend = mallochooks::link_backend::wrap;
    } else if (strcmp(argv[1], "wrapdl") == 0) {
        request.backend = mallochooks::link_backend::wrapdl;
        for (int i = 2; i < argc; ++i) {
            const char *arg = argv[i];
            if (strncmp(arg, "--version-script=", 17) == 0) {
                request.version_script = arg + 17;
            } else if (strncmp(arg, "--defined-by=", 13) == 0) {
                const mallochooks::wrapdl::alias_result found = mallochooks::wrapdl::defined_family_functions(arg + 13);
                if (!found.error.empty()) {
                    fprintf(stderr, "mallochooks-link-flags: %s\n", found.error.c_str());
                    return 1;
                }
                request.defined.insert(request.defined.end(), found.defined.begin(), found.defined.end());
            } else if (arg[0] == '-') {
                return usage();
            } else {
                request.defined.emplace_back(arg);
            }
        }
    } else {
        return usage();
    }
    const mallochooks::link_flags_result result = mallochooks::link_flags(request);
    if (!result.error.empty()) {
        fprintf(stderr, "mallochooks-link-flags: %s\n", result.error.c_str());
        return 1;
    }
    for (const std::string &flag : result.flags) printf("%s\n", flag.c_str());
    return 0;
}
