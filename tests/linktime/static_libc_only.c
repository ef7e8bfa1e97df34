/* SPDX-License-Identifier: MIT */
/* A -static program whose own code calls no malloc-family function: only libc.a's members do (strdup).
 * --wrap sends their calls to the entry points, which the wrap flags must therefore pull into the link
 * themselves (--undefined=__wrap_X): the program's files never refer to them. */
#include <string.h>

int main(void) {
    char *s = strdup("libc allocates");
    return s == 0 || strcmp(s, "libc allocates") != 0;
}
