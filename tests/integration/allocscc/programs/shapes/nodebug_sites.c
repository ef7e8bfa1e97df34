/* SPDX-License-Identifier: MIT */
/* A program built without -g that leaves two chunks live at exit, allocated at two call sites of one
 * function (zlib's deflateInit_ has four): the heap index's exit report has no line to tell them apart,
 * so it names each by the function and the return address's offset in it (two_sites+0x1c). */
#include <stdlib.h>

void *volatile keep[2];

__attribute__((noinline)) void two_sites(void) {
    keep[0] = malloc(100);
    __asm__ volatile("" ::: "memory");
    keep[1] = malloc(200);
    __asm__ volatile("" ::: "memory");
}

int main(void) {
    two_sites();
    return 0;
}
