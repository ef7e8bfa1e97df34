/* SPDX-License-Identifier: MIT */
/* Allocation from .preinit_array, before any library constructor has run: the chunks must be usable,
 * reallocatable and freeable later, and (under the recorder) their events raised after post_init. */
#define _GNU_SOURCE
#include <malloc.h>
#include <string.h>

#include "recorder_client.h"

static char *early_calloc, *early_malloc, *early_strdup;

static void preinit(int argc, char **argv, char **envp) {
    (void)argc, (void)argv, (void)envp;
    early_calloc = calloc(10, 10);
    early_malloc = malloc(100);
    if (early_malloc) memset(early_malloc, 'x', 100);
    early_strdup = strdup("allocated before main");
}
__attribute__((section(".preinit_array"), used)) static void (*const preinit_entry)(int, char **, char **) = preinit;

int main(void) {
    struct recorder_api rec;
    int have = recorder_find(&rec, 0);
    CHECK(early_calloc && early_malloc && early_strdup);
    for (int i = 0; i < 100; ++i) CHECK(early_calloc[i] == 0);
    CHECK(strcmp(early_strdup, "allocated before main") == 0);
    CHECK(malloc_usable_size(early_malloc) >= 100);
    early_malloc = realloc(early_malloc, 100000);
    CHECK(early_malloc && early_malloc[0] == 'x' && early_malloc[99] == 'x');
    if (have) {
        struct mhtest_counts c;
        rec.get_counts(&c);
        CHECK(c.post_init == 1);
        CHECK(c.post_successful_alloc >= 3);
        struct mhtest_event ev[16];
        rec.log_begin();
        free(early_calloc);
        size_t n = rec.log_end(ev, 16);
        CHECK(n == 2 && ev[0].kind == MHTEST_PRE_NONNULL_FREE && ev[0].ptr == early_calloc);
    } else {
        free(early_calloc);
    }
    free(early_malloc);
    free(early_strdup);
    printf("preinit: chunks allocated from .preinit_array work after main starts\n");
    return 0;
}
