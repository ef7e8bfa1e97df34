// SPDX-License-Identifier: MIT
// mallochooks-alias: the command line of the alias writer (real_alias.h).
//
//   mallochooks-alias INPUT OUTPUT   copy INPUT (an object or an archive) to OUTPUT with a hidden
//                                    __mallochooks_real_X added for each family function X it defines;
//                                    prints those functions, one per line
//   mallochooks-alias --list INPUT   print the family functions INPUT defines, one per line
//
// Then link OUTPUT in place of INPUT, with the flags `mallochooks-link-flags wrapdl --defined-by=OUTPUT`
// prints, and -lmallochooks.
#include <stdio.h>
#include <string.h>

#include "backends/wrapdl/real_alias.h"

int main(int argc, char **argv) {
    mallochooks::wrapdl::alias_result result;
    if (argc == 3 && strcmp(argv[1], "--list") == 0) {
        result = mallochooks::wrapdl::defined_family_functions(argv[2]);
    } else if (argc == 3 && argv[1][0] != '-') {
        result = mallochooks::wrapdl::write_real_aliases(argv[1], argv[2]);
    } else {
        fprintf(stderr, "usage: mallochooks-alias INPUT OUTPUT | mallochooks-alias --list INPUT\n");
        return 2;
    }
    if (!result.error.empty()) {
        fprintf(stderr, "mallochooks-alias: %s\n", result.error.c_str());
        return 1;
    }
    for (const std::string &name : result.defined) printf("%s\n", name.c_str());
    return 0;
}
