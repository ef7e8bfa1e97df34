/* SPDX-License-Identifier: MIT */
/* A declared allocation function with an argument passed on the stack (a seventh integer): its shim cannot
 * be a thunk and is C, compiled at the link (and cached).  The site must still be in its caller. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "util.h"

__attribute__((noinline)) void *xbig(int a, int b, int c, int d, int e, int f, size_t n) {
    return xmalloc(n + (size_t)(a + b + c + d + e + f));
}

static void *volatile sink;
__attribute__((noinline)) void *make_big(void) { sink = xbig(1, 2, 3, 4, 5, 6, 10); return sink; }

int main(void) {
    void *p = make_big();
    Dl_info info;
    const char *site = last_site != NULL && dladdr(last_site, &info) != 0 && info.dli_sname ? info.dli_sname : "(none)";
    const int ok = strcmp(site, "make_big") == 0 && current_site() == NULL;
    printf("%s: xbig (7 arguments) -> xmalloc: site in %s (want make_big)\n", ok ? "ok" : "FAILED", site);
    xfree(p);
    return !ok;
}
