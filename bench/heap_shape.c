// SPDX-License-Identifier: MIT
// A heap of N live chunks for bench/gdb_heap.py (the gdb `heap` commands, memcheck's monitor commands,
// HEAPINDEX_LEAKS=exit and LeakSanitizer on the same heap): N chunks of 16-512 bytes (about 260 bytes
// on average: 1e6 chunks make a heap of a few hundred MB with the allocator's overhead), held by an
// array of pointers from a global; each chunk's first word points to the next chunk, so the scan
// follows N pointers; one in 100 is dropped from the array and from the chain (definitely lost).  Then
// stop_here() (gdb's breakpoint) and exit.  Usage: heap_shape N
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

void **chunks;
size_t count;

__attribute__((noinline)) void stop_here(void) { __asm__ volatile("" ::: "memory"); }

int main(int argc, char **argv) {
    count = argc > 1 ? strtoul(argv[1], NULL, 10) : 100000;
    chunks = malloc(count * sizeof *chunks);
    uint64_t x = 88172645463325252ull;
    void *prev = NULL;
    for (size_t i = 0; i < count; ++i) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        void **c = malloc(16 + x % 497);
        c[0] = prev;
        c[1] = NULL;
        if (i % 100 == 99) {
            chunks[i] = NULL;  // lost: nothing points to it
        } else {
            chunks[i] = c;
            prev = c;
        }
    }
    stop_here();
    printf("%zu chunks\n", count);
    return 0;
}
