// SPDX-License-Identifier: MIT
// Prints the user API's function names, one per line, from the family list: the expected export list
// that tests/integration/exports.sh compares each runtime library's dynamic symbols with.  With the
// argument `preload`, glibc's __libc_ names too, which preloaded libraries also define.
#include <cstdio>
#include <cstring>

#include "mallochooks/family.h"

int main(int argc, char **argv) {
#define PRINT_NAME_(r, data, e) std::puts(BOOST_PP_STRINGIZE(MALLOCHOOKS_NAME(e)));
    MALLOCHOOKS_FOR_EACH(PRINT_NAME_, ~, MALLOCHOOKS_USER_API)
    if (argc > 1 && std::strcmp(argv[1], "preload") == 0) {
        MALLOCHOOKS_FOR_EACH(PRINT_NAME_, ~, MALLOCHOOKS_LIBC_USER_API)
    }
    return 0;
}
