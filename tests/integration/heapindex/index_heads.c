/* SPDX-License-Identifier: MIT
 * The index's heads (index/index_memory.h, issue 13): the first 2 MiB of the records' range stay on small
 * pages while the process is small (a handful of chunks must not cost it a huge page), and become
 * eligible for huge pages once it has 16384 records.  Run under LD_PRELOAD=libheapindex.so: finds the
 * records' range through the exported root (index/layout.h) and reads /proc/self/smaps for the mappings
 * that cover its first 2 MiB: Rss, AnonHugePages and THPeligible. */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "index/layout.h"

struct head_state {
    long rss_kb, huge_kb;
    int eligible; /* every mapping over the head THP-eligible */
    int found;
};

static struct head_state head_of(uintptr_t lo, uintptr_t hi) {
    struct head_state st = {0, 0, 1, 0};
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f) return st;
    char line[512];
    int in = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long a, b;
        /* A mapping's first line: "lo-hi perms ..."; its first word has a '-' and no ':'. */
        const size_t word = strcspn(line, " ");
        if (sscanf(line, "%lx-%lx ", &a, &b) == 2 && memchr(line, '-', word) && !memchr(line, ':', word)) {
            in = a < hi && b > lo;
            if (in) st.found = 1;
            continue;
        }
        if (!in) continue;
        long v;
        if (sscanf(line, "Rss: %ld kB", &v) == 1) st.rss_kb += v;
        else if (sscanf(line, "AnonHugePages: %ld kB", &v) == 1) st.huge_kb += v;
        else if (sscanf(line, "THPeligible: %ld", &v) == 1 && v == 0) st.eligible = 0;
    }
    fclose(f);
    return st;
}

static int thp_enabled(void) {
    FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
    char s[128] = "";
    if (f) {
        if (!fgets(s, sizeof s, f)) s[0] = '\0';
        fclose(f);
    }
    return strstr(s, "[never]") == NULL && s[0] != '\0';
}

int main(void) {
    const struct heapindex_root *root = dlsym(RTLD_DEFAULT, HEAPINDEX_ROOT_SYMBOL);
    if (!root) {
        fprintf(stderr, "index_heads: no %s: run under LD_PRELOAD=libheapindex.so\n", HEAPINDEX_ROOT_SYMBOL);
        return 1;
    }
    void *few[8];
    for (int i = 0; i < 8; ++i) few[i] = malloc(100);
    if (!root->layout_complete) return 1;
    uintptr_t base;
    memcpy(&base, (const char *)(uintptr_t)root->pool_address + root->pool_base_offset, sizeof base);
    const uintptr_t lo = base, hi = base + (2u << 20);
    int failed = 0;
    struct head_state small = head_of(lo, hi);
    printf("index_heads: 8 chunks: records' head Rss %ld kB, AnonHugePages %ld kB, THP-eligible %d\n", small.rss_kb,
           small.huge_kb, small.eligible);
    if (!small.found || small.huge_kb != 0 || small.rss_kb > 512 || small.eligible) {
        printf("index_heads: FAIL: a small process's record head must be small pages, not THP-eligible\n");
        failed = 1;
    }
    for (int i = 0; i < 8; ++i) free(few[i]);
    enum { many = 40000 };
    static void *chunks[many];
    for (int i = 0; i < many; ++i) chunks[i] = malloc(32);
    struct head_state big = head_of(lo, hi);
    printf("index_heads: %d chunks: records' head Rss %ld kB, AnonHugePages %ld kB, THP-eligible %d\n", many, big.rss_kb,
           big.huge_kb, big.eligible);
    if (thp_enabled() && !big.eligible) {
        printf("index_heads: FAIL: past 16384 records the head must be eligible for huge pages\n");
        failed = 1;
    }
    for (int i = 0; i < many; ++i) free(chunks[i]);
    return failed;
}
