/* SPDX-License-Identifier: MIT */
/* A calloc during dlsym: an event client calls dlsym (which fails) and dlerror (which allocates its
 * message) from inside pre_alloc.  The nested allocations go straight to the terminal: the program's own
 * malloc raises exactly its two events, nothing deadlocks, and dlerror's message is intact. */
#define _GNU_SOURCE
#include <string.h>

#include "recorder_client.h"

int main(void) {
    struct recorder_api rec;
    recorder_find(&rec, 1);
    void (*arm)(void) = (void (*)(void))dlsym(RTLD_DEFAULT, "mhtest_arm_dlsym");
    const char *(*outcome)(void **) = (const char *(*)(void **))dlsym(RTLD_DEFAULT, "mhtest_dlsym_outcome");
    CHECK(arm && outcome);
    struct mhtest_event ev[32];
    rec.log_begin();
    arm();
    char *p = malloc(123);
    size_t n = rec.log_end(ev, 32);
    CHECK(p != NULL);
    CHECK(n == 2);
    CHECK(ev[0].kind == MHTEST_PRE_ALLOC && ev[0].size == 123);
    CHECK(ev[1].kind == MHTEST_POST_SUCCESSFUL_ALLOC && ev[1].ptr == p);
    void *result = (void *)1;
    const char *message = outcome(&result);
    CHECK(result == NULL);
    CHECK(message != NULL && strstr(message, "mhtest_no_such_symbol_anywhere") != NULL);
    free(p);
    printf("dlsym in an event: nested allocations unhooked, message \"%s\"\n", message);
    return 0;
}
