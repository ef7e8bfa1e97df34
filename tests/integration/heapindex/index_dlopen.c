/* SPDX-License-Identifier: MIT */
/* dlopen and dlclose of a library that allocates, under libheapindex.so: its chunks are indexed with sites
 * inside it; after dlclose they are still live, still found, and freeing them is fine; loading it again
 * (possibly elsewhere) works the same.  The loader's own allocations for dlopen and dlclose are indexed
 * too and leave the index sound. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "../check.h"
#include "mallochooks/heapindex.h"

int main(int argc, char **argv) {
    CHECK(argc == 2 && heapindex_present());
    char *kept[3] = {0};
    for (int round = 0; round < 3; ++round) {
        void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
        CHECK(h != NULL);
        char *(*make)(size_t) = (char *(*)(size_t))dlsym(h, "dso_make");
        void (*release)(char *) = (void (*)(char *))dlsym(h, "dso_release");
        CHECK(make && release);
        char *a = make(1000), *b = make(100000);
        struct heapindex_chunk c;
        CHECK(heapindex_lookup(a + 999, &c) && c.base == a && c.size == 1000);
        Dl_info site, fn;
        CHECK(dladdr(c.alloc_site, &site) && dladdr((void *)make, &fn));
        CHECK(site.dli_fbase == fn.dli_fbase); /* the site lies inside the library */
        release(a);
        CHECK(!heapindex_lookup(a, &c) || c.base != a);
        kept[round] = b;
        CHECK(dlclose(h) == 0);
        CHECK(heapindex_lookup(b + 50000, &c) && c.base == b && c.size == 100000);
        CHECK(heapindex_check(stderr) == 0);
    }
    for (int i = 0; i < 3; ++i) free(kept[i]);
    CHECK(heapindex_check(stderr) == 0);
    printf("dlopen: three load/unload rounds, chunks outlive their library, index sound\n");
    return 0;
}
