/* SPDX-License-Identifier: MIT */
/* Attribution through the program's own allocation functions: the site xmalloc sees is in the function
 * that called the outermost declared wrapper (found with dladdr; the program is linked -rdynamic), and
 * no site is left set once the wrapper has returned.  Prints one line per check; exits non-zero if any
 * failed. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "util.h"

static int failures;

static void expect_site(const char *what, const char *function) {
    Dl_info info;
    const char *found = last_site != NULL && dladdr(last_site, &info) != 0 && info.dli_sname != NULL ? info.dli_sname : "(none)";
    int ok = strcmp(found, function) == 0 && current_site() == NULL;
    failures += !ok;
    printf("%s: %s: site in %s (want %s), site after return %p\n", ok ? "ok" : "FAILED", what, found, function, current_site());
}

/* The callers store what they got in a volatile: a call in tail position would be a jump, and its return
 * address (the site) would be in main. */
static void *volatile sink;
__attribute__((noinline)) void *make_in_a(void) { sink = xmalloc(10); return sink; }
__attribute__((noinline)) void *make_in_b(void) { sink = xcalloc(2, 8); return sink; }
__attribute__((noinline)) char *make_in_c(void) { sink = xstrdup("c"); return sink; }
__attribute__((noinline)) void free_in_d(void *p) { xfree(p); sink = p; }
__attribute__((noinline)) char *make_in_e(void) { sink = xstrdup_local("e"); return sink; }

int main(void) {
    void *a = make_in_a();
    expect_site("xmalloc", "make_in_a");
    void *b = make_in_b();
    expect_site("xcalloc -> xmalloc (outermost wins)", "make_in_b");
    char *c = make_in_c();
    expect_site("xstrdup -> xmalloc (outermost wins)", "make_in_c");
    free_in_d(a);
    expect_site("xfree", "free_in_d");
    char *e = make_in_e();
    /* xstrdup_local is not declared, and calls xmalloc inside util.o: --defsym sends that call to the shim
     * too (site in xstrdup_local), on every linker; unless the compiler inlined xmalloc into it (without
     * -fPIC it may), and then no shim runs (no site; the hooks see the malloc call in xstrdup_local). */
    Dl_info info;
    int ok = last_site == NULL ||
             (dladdr(last_site, &info) != 0 && info.dli_sname != NULL && strcmp(info.dli_sname, "xstrdup_local") == 0);
    failures += !ok;
    printf("%s: undeclared wrapper calling xmalloc in its own object: site in the wrapper, or none if inlined (%p)\n",
           ok ? "ok" : "FAILED", last_site);
    xfree(b);
    xfree(c);
    xfree(e);
    return failures != 0;
}
