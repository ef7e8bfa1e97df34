// SPDX-License-Identifier: MIT
// Prints the user API's function names, one per line, from the family list: the expected export list
// that tests/integration/exports.sh compares each runtime library's dynamic symbols with.
#include <cstdio>

#include "mallochooks/family.h"

int main() {
#define PRINT_NAME_(r, data, e) std::puts(BOOST_PP_STRINGIZE(MALLOCHOOKS_NAME(e)));
    MALLOCHOOKS_FOR_EACH(PRINT_NAME_, ~, MALLOCHOOKS_USER_API)
    return 0;
}
