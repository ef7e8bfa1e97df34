// SPDX-License-Identifier: MIT
// What a tool adds to a process's resident memory (RSS), for bench/run's `memory` part (bench/README.md,
// "Memory"): run the same command with and without the tool preloaded and compare.
//
//   memory chunks SIZE N   per live chunk: RSS after N more live chunks of SIZE bytes (each written whole,
//                          as a program writes what it allocates), minus RSS before them, over N.  "Before"
//                          is taken after 1000 chunks of the same size, so the tool's fixed part (first
//                          record segment, first leaf block, per-thread state) is already there and only
//                          what grows with the chunks is counted.
//   memory few K           the whole process: RSS and address space (VmRSS, VmSize, in bytes) after K small
//                          chunks (16 to 256 bytes) are live: what a tool costs a small program.
// Prints one line: `chunks SIZE N BYTES_PER_CHUNK` or `few K RSS_BYTES VM_BYTES`.  Under libheapindex.so it
// adds the index's own mapped bytes (heapindex_stats.index_bytes) to the line.  RSS is read from
// /proc/self/statm (resident pages times the page size), which counts every mapping, the tool's included.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mallochooks/heapindex.h"

static void read_statm(unsigned long long *rss, unsigned long long *vm) {
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long long size = 0, resident = 0;
    if (f == NULL || fscanf(f, "%llu %llu", &size, &resident) != 2) {
        fprintf(stderr, "memory: cannot read /proc/self/statm\n");
        exit(1);
    }
    fclose(f);
    const unsigned long long page = (unsigned long long)sysconf(_SC_PAGESIZE);
    *rss = resident * page;
    *vm = size * page;
}

// The index's mapped bytes, or 0 without it.
static unsigned long long index_bytes(void) {
    if (!heapindex_present()) return 0;
    struct heapindex_stats s;
    heapindex_stats(&s);
    return (unsigned long long)s.index_bytes;
}

// The program's own array of n pointers, written once (so that it is resident before anything is measured).
static char **pointers(size_t n) {
    char **p = malloc(n * sizeof *p);
    if (p == NULL) {
        fprintf(stderr, "memory: out of memory\n");
        exit(1);
    }
    memset(p, 0, n * sizeof *p);
    return p;
}

static void allocate(char **p, size_t n, size_t size, unsigned seed) {
    for (size_t i = 0; i < n; ++i) {
        size_t sz = size;
        if (sz == 0) {  // few: 16 to 256 bytes
            seed = seed * 1103515245u + 12345u;
            sz = 16 + (seed >> 16) % 241;
        }
        p[i] = malloc(sz);
        if (p[i] == NULL) {
            fprintf(stderr, "memory: malloc(%zu) failed after %zu chunks\n", sz, i);
            exit(1);
        }
        memset(p[i], (int)(i & 0xff) | 1, sz);
    }
}

int main(int argc, char **argv) {
    if (argc == 4 && strcmp(argv[1], "chunks") == 0) {
        const size_t size = strtoull(argv[2], NULL, 10), n = strtoull(argv[3], NULL, 10);
        if (size == 0 || n == 0) goto usage;
        char **warm = pointers(1000), **p = pointers(n);
        allocate(warm, 1000, size, 1);
        unsigned long long rss0, rss1, vm;
        read_statm(&rss0, &vm);
        allocate(p, n, size, 1);
        read_statm(&rss1, &vm);
        printf("chunks %zu %zu %.1f", size, n, (double)(rss1 - rss0) / (double)n);
        if (heapindex_present()) printf(" index_bytes %llu", index_bytes());
        printf("\n");
        // The chunks stay live until exit.
        (void)warm;
        (void)p;
        return 0;
    }
    if (argc == 3 && strcmp(argv[1], "few") == 0) {
        const size_t k = strtoull(argv[2], NULL, 10);
        char **p = pointers(k);
        allocate(p, k, 0, 7);
        unsigned long long rss, vm;
        read_statm(&rss, &vm);
        printf("few %zu %llu %llu", k, rss, vm);
        if (heapindex_present()) printf(" index_bytes %llu", index_bytes());
        printf("\n");
        (void)p;
        return 0;
    }
usage:
    fprintf(stderr, "usage: memory chunks SIZE N | memory few K\n");
    return 2;
}
