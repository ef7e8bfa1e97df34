/* SPDX-License-Identifier: MIT */
/* dlopen and dlclose of libraries with link-time hooks, with and without RTLD_DEEPBIND.  This executable
 * has no hooks; it opens
 *   WRAP   a library that allocates, linked with the wrap backend (malloc is libc's);
 *   PLAIN  the same library linked without hooks;
 *   OWN    a library that defines its own allocator, linked with wrapdl (not -Bsymbolic: its own calls to
 *          malloc bind wherever the loader says, which is what RTLD_DEEPBIND changes).
 * and checks, for each way of opening, which events each of their calls raises and which allocator
 * served it.  RTLD_DEEPBIND puts a library's own dependencies (libc) in front of the global scope, where
 * a preloaded tool sits: a preload then never sees the library's calls (PLAIN shows it), which is how
 * preload-based tools lose or mismatch chunks; link-time hooks are bound inside the library and do not
 * care (WRAP), and a library with its own allocator reaches its own allocator and only it (OWN: the
 * original libmallochooks sent such a library's hooks on to glibc's malloc, RTLD_NEXT past it).  Each
 * library is closed and opened again: its hooks start afresh and find the tool again.
 *
 *   dl_open WRAP,PLAIN,OWN MODE     (matrix.sh's calling convention; MODE: none, recorder, layer) */
#define _GNU_SOURCE
#include <dlfcn.h>

#include "mx_callers.h"
#include "mx_check.h"

static const char *wrap_path, *plain_path, *own_path;
int main(int argc, char **argv);

struct library {
    void *handle;
    mx_caller *run;
    int (*owns)(const void *); /* OWN's allocator, or NULL */
};

static struct library open_library(const char *path, int flags, const char *caller_name) {
    struct library lib = {dlopen(path, RTLD_NOW | flags), NULL, NULL};
    if (!lib.handle) FAIL("dlopen %s: %s", path, dlerror());
    lib.run = (mx_caller *)dlsym(lib.handle, caller_name);
    lib.owns = (int (*)(const void *))dlsym(lib.handle, "mx_alloc_owns");
    if (!lib.run) FAIL("%s has no %s", path, caller_name);
    return lib;
}

static void close_library(struct library *lib) {
    if (dlclose(lib->handle)) FAIL("dlclose: %s", dlerror());
}

/* One call through `run`, its events checked; `owned`: whether OWN's allocator must (1) or must not (0)
 * have served the chunk, or -1 when OWN is not loaded. */
static void *call(const char *cell, mx_caller *run, struct mx_call c, int route, int (*owns)(const void *), int owned) {
    begin();
    run(&c);
    end();
    nwant = 0;
    if (c.op == MX_MALLOC) want_alloc(c.a, 16, c.result);
    if (c.op == MX_POSIX_MEMALIGN) want_alloc(c.b, c.a, c.result);
    if (c.op == MX_REALLOC) want_realloc(c.ptr, c.a, c.result);
    if (c.op == MX_FREE) want_free(c.ptr);
    check_events(cell, route, c.where);
    if (c.op != MX_FREE) {
        if (!c.result) FAIL("%s: no chunk", cell);
        if (owns && owned >= 0 && !!owns(c.result) != owned)
            FAIL("%s: chunk %p %s by the library's own allocator", cell, c.result, owned ? "not served" : "served");
    }
    return c.result;
}

/* malloc, realloc, posix_memalign and free through one caller.  Returns a chunk left allocated. */
static void *exercise(const char *what, mx_caller *run, int route, int (*owns)(const void *), int owned) {
    char cell[128];
    snprintf(cell, sizeof cell, "%s: malloc", what);
    void *p = call(cell, run, (struct mx_call){MX_MALLOC, NULL, 24, 0, NULL, 0, 0, NULL}, route, owns, owned);
    snprintf(cell, sizeof cell, "%s: realloc", what);
    p = call(cell, run, (struct mx_call){MX_REALLOC, p, 200, 0, NULL, 0, 0, NULL}, route, owns, owned);
    snprintf(cell, sizeof cell, "%s: posix_memalign", what);
    void *a = call(cell, run, (struct mx_call){MX_POSIX_MEMALIGN, NULL, 64, 80, NULL, 0, 0, NULL}, route, owns, owned);
    snprintf(cell, sizeof cell, "%s: free", what);
    call(cell, run, (struct mx_call){MX_FREE, a, 0, 0, NULL, 0, 0, NULL}, route, owns, owned);
    printf("%s: ok\n", what);
    return p;
}

/* This executable's own free (no hooks of its own): events only from an interposing preload. */
static void free_here(const char *what, void *p) {
    begin();
    free(p);
    end();
    nwant = 0;
    want_free(p);
    check_events(what, mode == M_NONE ? UNCHECKED : mode == M_RECORDER ? MHTEST_ROUTE_PRELOAD : NO_EVENTS,
                 (const void *)&main);
}

static int route_if(int route) { return mode == M_NONE ? UNCHECKED : route; }

int main(int argc, char **argv) {
    if (argc != 3) return 2;
    mx_start(argv[2]);
    static char paths[4096];
    snprintf(paths, sizeof paths, "%s", argv[1]);
    wrap_path = strtok(paths, ",");
    plain_path = strtok(NULL, ",");
    own_path = strtok(NULL, ",");
    if (!own_path) return 2;

    /* WRAP: its calls reach its own hooks, which hand them to the tool's chain; twice, with RTLD_LOCAL
     * and with RTLD_DEEPBIND, each time freshly loaded.  A chunk it made outlives it. */
    static const int flags[] = {RTLD_LOCAL, RTLD_DEEPBIND};
    static const char *const flag_names[] = {"RTLD_LOCAL", "RTLD_DEEPBIND"};
    for (int i = 0; i < 2; ++i) {
        char what[128];
        snprintf(what, sizeof what, "wrap library, %s", flag_names[i]);
        struct library wrap = open_library(wrap_path, flags[i], "dl_run");
        void *kept = exercise(what, wrap.run, route_if(MHTEST_ROUTE_CHAIN), NULL, -1);
        close_library(&wrap);
        free_here(what, kept);
    }

    /* PLAIN: an interposing preload sees its calls only without RTLD_DEEPBIND. */
    struct library plain = open_library(plain_path, RTLD_LOCAL, "dl_run");
    free_here("plain library", exercise("plain library, RTLD_LOCAL", plain.run,
                                        route_if(mode == M_RECORDER ? MHTEST_ROUTE_PRELOAD : NO_EVENTS), NULL, -1));
    close_library(&plain);
    plain = open_library(plain_path, RTLD_DEEPBIND, "dl_run");
    free(exercise("plain library, RTLD_DEEPBIND (the preload is bypassed)", plain.run, route_if(NO_EVENTS), NULL, -1));
    close_library(&plain);

    /* OWN, RTLD_LOCAL: its own calls bind to the process's malloc, not to its own; the malloc it exports,
     * called from here, is hooked and served by its allocator. */
    struct library own = open_library(own_path, RTLD_LOCAL, "mx_alloc_run");
    if (!own.owns) FAIL("the allocator library has no mx_alloc_owns");
    free_here("own-allocator library", exercise("own-allocator library, RTLD_LOCAL, its own calls", own.run,
                                                route_if(mode == M_RECORDER ? MHTEST_ROUTE_PRELOAD : NO_EVENTS),
                                                own.owns, 0));
    void *(*own_malloc)(size_t) = (void *(*)(size_t))dlsym(own.handle, "malloc");
    void (*own_free)(void *) = (void (*)(void *))dlsym(own.handle, "free");
    if (!own_malloc || !own_free) FAIL("the allocator library exports no malloc or free");
    begin();
    void *p = own_malloc(48);
    end();
    nwant = 0;
    want_alloc(48, 16, p);
    check_events("own-allocator library: its malloc, called from here", route_if(MHTEST_ROUTE_LAYER), (const void *)&main);
    if (!p || !own.owns(p)) FAIL("its malloc: not served by its allocator");
    begin();
    own_free(p);
    end();
    nwant = 0;
    want_free(p);
    check_events("own-allocator library: its free, called from here", route_if(MHTEST_ROUTE_LAYER), (const void *)&main);
    printf("own-allocator library, RTLD_LOCAL, its exported malloc and free: ok\n");
    close_library(&own);

    /* OWN, RTLD_DEEPBIND, twice: its own calls reach its own hooks and its own allocator. */
    for (int i = 0; i < 2; ++i) {
        own = open_library(own_path, RTLD_DEEPBIND, "mx_alloc_run");
        void *kept = exercise("own-allocator library, RTLD_DEEPBIND, its own calls", own.run,
                              route_if(MHTEST_ROUTE_LAYER), own.owns, 1);
        own.run(&(struct mx_call){MX_FREE, kept, 0, 0, NULL, 0, 0, NULL});
        close_library(&own);
    }
    return 0;
}
