/* SPDX-License-Identifier: MIT */
/* Run under LD_PRELOAD="librecorder.so libifuncmalloc.so": the chunk calloc'd by libifuncmalloc's IFUNC
 * resolver while the recorder's terminal was resolving malloc came from the bootstrap arena (its usable
 * size is exactly what was asked, where glibc would round up), and it works as any chunk does. */
#define _GNU_SOURCE
#include <malloc.h>
#include <string.h>

#include "../recorder_client.h"

int main(void) {
    struct recorder_api rec;
    recorder_find(&rec, 1);
    free(malloc(1)); /* make sure the terminal has resolved */
    char *(*early_chunk)(void) = (char *(*)(void))dlsym(RTLD_DEFAULT, "ifm_early_chunk");
    int (*runs)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "ifm_resolver_runs");
    CHECK(early_chunk && runs);
    CHECK(runs() >= 1);
    char *p = early_chunk();
    CHECK(p != NULL);
    CHECK(strcmp(p, "allocated inside an IFUNC resolver") == 0);
    CHECK(malloc_usable_size(p) == 64); /* bootstrap arena: glibc would say 72 */
    p = realloc(p, 5000);               /* moves it out of the arena */
    CHECK(p && strcmp(p, "allocated inside an IFUNC resolver") == 0);
    CHECK(malloc_usable_size(p) >= 5000);
    free(p);
    printf("bootstrap: a calloc made during the lookup of malloc was served and stays usable\n");
    return 0;
}
