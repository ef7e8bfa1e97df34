/* SPDX-License-Identifier: MIT */
/* The placement matrix (README, docs/link-time.md): one program, linked once per placement of malloc and
 * per linker, that makes every call of the malloc family from every caller of its placement and checks,
 * from the recorder's event log, that each call raised exactly the events docs/events.md lists, once,
 * with a caller inside the object that made the call, reaching the recorder by the expected route, and
 * that the chunk came from the allocator that owns malloc in this placement.
 *
 *   mx_driver PLACEMENT MODE
 *   PLACEMENT  exe   malloc defined in this executable (wrapdl); callers: the allocator's own file, this
 *                    file, a plain library, libc, libstdc++
 *              dso   malloc defined in a library this executable needs (wrapdl); callers: the allocator's
 *                    file, another file of that library, this file, a plain library, libc, libstdc++
 *              libc  malloc is libc's; this executable and one library are linked with the wrap backend;
 *                    callers: this file, that library, a plain library, libc itself, libstdc++
 *   MODE       none      nothing preloaded: only results and allocators are checked
 *              recorder  librecorder.so preloaded: it interposes malloc and exports its layer
 *              layer     librecorder_layer.so preloaded: its layer only, so every event proves a hook
 *                        handed the call over, and a call no link-time hook sees raises nothing
 * stdout is a transcript of results that must not depend on MODE (matrix.sh compares them). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <regex.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mx_callers.h"
#include "mx_check.h"

/* The callers other objects may provide; which exist depends on the placement. */
extern void mx_alloc_run(struct mx_call *) __attribute__((weak));
extern void mx_other_run(struct mx_call *) __attribute__((weak));
extern void mx_caller_run(struct mx_call *); /* the plain library: in every placement */
extern void mx_wrapcaller_run(struct mx_call *) __attribute__((weak));
extern void mx_cxx_run(struct mx_call *);
extern void mx_cxx_expected(int op, size_t *size, size_t *alignment);
extern int mx_alloc_owns(const void *) __attribute__((weak));

MX_DEFINE_CALLER(mx_exe_run)

enum placement { P_EXE, P_DSO, P_LIBC } placement;
static size_t page;
static unsigned cells;
static const void *libc_anchor, *libstdcxx_anchor;

/* Which allocator must have served a chunk in this placement. */
static int served_right(const void *p) {
    int ours = mx_alloc_owns && mx_alloc_owns(p);
    return placement == P_LIBC ? !ours : ours;
}

/* The route the events of a caller must come by, NO_EVENTS if none may be raised, UNCHECKED without a
 * recorder.  `linked`: the caller's calls reach link-time hooks before anything else (it is linked with
 * them, or, in the dso placement, it is inside the allocator's library, which binds its own calls to its
 * own malloc). */
static int expected_route(int linked) {
    if (mode == M_NONE) return UNCHECKED;
    switch (placement) {
    case P_EXE: return MHTEST_ROUTE_LAYER; /* every object binds malloc to this executable's */
    case P_DSO:
        /* Others bind malloc to the first definition in the process: the interposing recorder's, which
         * raises the events itself and whose next malloc is the library's (our hooks then stand aside). */
        return linked || mode == M_LAYER ? MHTEST_ROUTE_LAYER : MHTEST_ROUTE_PRELOAD;
    case P_LIBC:
        if (linked) return MHTEST_ROUTE_CHAIN;
        /* libc's malloc, called without any link-time hook in between: only an interposing preload sees it */
        return mode == M_RECORDER ? MHTEST_ROUTE_PRELOAD : NO_EVENTS;
    }
    return UNCHECKED;
}

/* ---- C callers ---------------------------------------------------------------------------------------- */

struct op_spec {
    enum mx_op op;
    const char *name;
    size_t a, b;
    int needs_chunk; /* works on a 32-byte chunk the same caller allocated first */
};

static const struct op_spec c_ops[] = {
    {MX_MALLOC, "malloc", 24, 0, 0},
    {MX_CALLOC, "calloc", 3, 8, 0},
    {MX_REALLOC, "realloc", 100, 0, 1},
    {MX_REALLOC_NULL, "realloc(NULL)", 40, 0, 0},
    {MX_REALLOC_ZERO, "realloc(p, 0)", 0, 0, 1},
    {MX_FREE, "free", 0, 0, 1},
    {MX_FREE_NULL, "free(NULL)", 0, 0, 0},
    {MX_MEMALIGN, "memalign", 64, 100, 0},
    {MX_POSIX_MEMALIGN, "posix_memalign", 64, 100, 0},
    {MX_POSIX_MEMALIGN_EINVAL, "posix_memalign(EINVAL)", 24, 100, 0},
    {MX_ALIGNED_ALLOC, "aligned_alloc", 32, 64, 0},
    {MX_VALLOC, "valloc", 100, 0, 0},
    {MX_PVALLOC, "pvalloc", 100, 0, 0},
    {MX_REALLOCARRAY, "reallocarray", 10, 10, 1},
    {MX_USABLE_SIZE, "malloc_usable_size", 0, 0, 1},
};

static void run_c_op(const char *caller_name, mx_caller *run, int linked, const struct op_spec *op) {
    char cell[160];
    snprintf(cell, sizeof cell, "%s: %s", caller_name, op->name);
    struct mx_call c = {op->op, NULL, op->a, op->b, NULL, 0, 0, NULL};
    if (op->needs_chunk) {
        struct mx_call m = {MX_MALLOC, NULL, 32, 0, NULL, 0, 0, NULL};
        run(&m);
        if (!m.result || !served_right(m.result)) FAIL("%s: the 32-byte chunk came from the wrong allocator", cell);
        memset(m.result, 0x5a, 32);
        c.ptr = m.result;
    }
    begin();
    run(&c);
    end();
    const int route = expected_route(linked);
    nwant = 0;
    const char *outcome = "ok";
    switch (op->op) {
    case MX_MALLOC: case MX_REALLOC_NULL: want_alloc(op->a, 16, c.result); break;
    case MX_CALLOC:
        want_alloc(op->a * op->b, 16, c.result);
        for (size_t i = 0; c.result && i < op->a * op->b; ++i)
            if (((unsigned char *)c.result)[i]) FAIL("%s: the chunk is not zeroed", cell);
        break;
    case MX_REALLOC: case MX_REALLOCARRAY:
        want_realloc(c.ptr, 100, c.result);
        for (size_t i = 0; c.result && i < 32; ++i)
            if (((unsigned char *)c.result)[i] != 0x5a) FAIL("%s: the contents did not move with the chunk", cell);
        break;
    case MX_REALLOC_ZERO:
        want_free(c.ptr);
        if (c.result) FAIL("%s: realloc(p, 0) returned %p, not NULL", cell, c.result);
        outcome = "ok, NULL";
        break;
    case MX_FREE: want_free(c.ptr); break;
    case MX_FREE_NULL: break;
    case MX_MEMALIGN: case MX_POSIX_MEMALIGN: case MX_ALIGNED_ALLOC: want_alloc(op->b, op->a, c.result); break;
    case MX_POSIX_MEMALIGN_EINVAL:
        if (c.ret != EINVAL || c.result) FAIL("%s: returned %d, wanted EINVAL and no chunk", cell, c.ret);
        outcome = "ok, EINVAL";
        break;
    case MX_VALLOC: want_alloc(op->a, page, c.result); break;
    case MX_PVALLOC: want_alloc(page, page, c.result); break;
    case MX_USABLE_SIZE:
        if (c.usable < 32) FAIL("%s: usable size %zu < 32", cell, c.usable);
        outcome = "ok, >= 32";
        break;
    default: abort();
    }
    const int allocates = nwant != 0 && wants[nwant - 1].kind != MHTEST_POST_NONNULL_FREE;
    if (allocates) {
        if (!c.result) FAIL("%s: no chunk", cell);
        if (!served_right(c.result)) FAIL("%s: chunk %p came from the wrong allocator", cell, c.result);
        const size_t alignment = wants[0].kind == MHTEST_PRE_ALLOC ? wants[0].alignment : 16;
        if ((uintptr_t)c.result % alignment) FAIL("%s: chunk %p is not %zu-aligned", cell, c.result, alignment);
    }
    check_events(cell, route, c.where);
    /* Give back whatever the call left allocated, through the same caller, outside the log. */
    void *left = allocates ? c.result : (op->op == MX_USABLE_SIZE ? c.ptr : NULL);
    if (left) {
        struct mx_call f = {MX_FREE, left, 0, 0, NULL, 0, 0, NULL};
        run(&f);
    }
    printf("%s: %s\n", cell, outcome);
    ++cells;
}

static void run_c_caller(const char *name, mx_caller *run, int linked) {
    if (!run) FAIL("caller %s is missing from this program", name);
    for (size_t i = 0; i < sizeof c_ops / sizeof *c_ops; ++i) run_c_op(name, run, linked, &c_ops[i]);
}

/* ---- C++: libstdc++ makes the call ------------------------------------------------------------------ */

/* operator new calls malloc from inside libstdc++ (in a loop, for the new-handler): the caller is there.
 * Every operator delete of libstdc++ 12 ends in a tail call (delete[] -> delete -> free), so free returns
 * straight to whoever called delete, and that is the caller the hooks see.  Either is "the object making
 * the call"; the check accepts both for delete, so the test does not depend on how libstdc++ is compiled. */
static void check_delete_events(const char *cell, int route, const void *cxx_caller) {
    if (route >= 0 && nev > 0 && same_object(ev[0].caller, cxx_caller)) {
        check_events(cell, route, cxx_caller);
        return;
    }
    check_events(cell, route, libstdcxx_anchor);
}

static void run_cxx(void) {
    static const struct { enum mx_op make, unmake; const char *name; } pairs[] = {
        {MX_NEW, MX_DELETE, "new/delete"},
        {MX_NEW_ARRAY, MX_DELETE_ARRAY, "new[]/delete[]"},
        {MX_NEW_ALIGNED, MX_DELETE_ALIGNED, "aligned new/delete"},
        {MX_NEW_NOTHROW, MX_DELETE_NOTHROW, "nothrow new[]/delete[]"},
        {MX_NEW, MX_DELETE_SIZED, "new/sized delete"},
    };
    /* The C++ allocation functions are members of the family.  libc placement: the executable's wrap
     * hooks see them, with the program as the caller.  dso placement: the executable has no link-time
     * hooks; an interposing preload (the recorder) sees them itself, with the program as the caller; a
     * layer-only tool does not interpose them, and libstdc++ calls malloc.  exe placement (the
     * executable's own malloc, no operator new of its own): the preload hands them to libstdc++
     * (backends/preload/terminal.h, cxx_delegate), which calls that malloc.  So libstdc++ is the caller
     * wherever the C++ call is not hooked itself. */
    const int hooked = placement == P_LIBC || (placement == P_DSO && mode == M_RECORDER);
    const int route = placement == P_DSO && hooked ? MHTEST_ROUTE_PRELOAD : expected_route(hooked);
    for (size_t i = 0; i < sizeof pairs / sizeof *pairs; ++i) {
        char cell[160];
        snprintf(cell, sizeof cell, "C++: %s", pairs[i].name);  /* the same text in every mode (matrix.sh) */
        struct mx_call c = {pairs[i].make, NULL, 0, 0, NULL, 0, 0, NULL};
        begin();
        mx_cxx_run(&c);
        end();
        size_t size, alignment;
        mx_cxx_expected(pairs[i].make, &size, &alignment);
        nwant = 0;
        want_alloc(size, alignment, c.result);
        if (!c.result || !served_right(c.result)) FAIL("%s: chunk %p came from the wrong allocator", cell, c.result);
        check_events(cell, route, hooked ? c.where : libstdcxx_anchor);
        struct mx_call d = {pairs[i].unmake, c.result, 0, 0, NULL, 0, 0, NULL};
        begin();
        mx_cxx_run(&d);
        end();
        nwant = 0;
        want_free(c.result);
        if (hooked)
            check_events(cell, route, d.where);
        else
            check_delete_events(cell, route, d.where);
        printf("%s: ok\n", cell);
        ++cells;
    }
}

/* ---- libc's own allocations -------------------------------------------------------------------------- */

/* A log of calls made inside libc, whose exact sequence is glibc's business: it must parse as whole
 * calls (an allocation is pre_alloc + post_successful_alloc, a free pre + post, a realloc its three events
 * in order), so that a call hooked twice, nested inside itself, cannot pass; every event by the expected
 * route, from inside libc, about chunks of the right allocator.  Returns allocations - frees. */
static long check_libc_log(const char *cell, int route, unsigned *allocations) {
    *allocations = 0;
    if (route == UNCHECKED) return 0;
    if (route == NO_EVENTS) {
        if (nev) FAIL("%s: %zu events, but no hook can see libc's own calls here", cell, nev);
        return 0;
    }
    long live = 0;
    for (size_t i = 0; i < nev; ++i) {
        const struct mhtest_event *e = &ev[i];
        if ((int)e->route != route) FAIL("%s: event %zu came by route %u, wanted %d", cell, i, e->route, route);
        if (e->kind != MHTEST_POST_NONNULL_FREE && !same_object(e->caller, libc_anchor))
            FAIL("%s: event %zu names caller %p in %s, not libc", cell, i, e->caller, object_name(e->caller));
    }
    for (size_t i = 0; i < nev;) {
        const struct mhtest_event *e = &ev[i];
        if (e->kind == MHTEST_PRE_ALLOC && i + 1 < nev && ev[i + 1].kind == MHTEST_POST_SUCCESSFUL_ALLOC) {
            if (!served_right(ev[i + 1].ptr)) FAIL("%s: chunk %p from the wrong allocator", cell, ev[i + 1].ptr);
            ++live, ++*allocations, i += 2;
        } else if (e->kind == MHTEST_PRE_NONNULL_FREE && i + 1 < nev && ev[i + 1].kind == MHTEST_POST_NONNULL_FREE &&
                   ev[i + 1].ptr == e->ptr) {
            --live, i += 2;
        } else if (e->kind == MHTEST_PRE_NONNULL_NONZERO_REALLOC && i + 2 < nev && ev[i + 1].kind == MHTEST_PRE_ALLOC &&
                   ev[i + 2].kind == MHTEST_POST_NONNULL_NONZERO_REALLOC && ev[i + 2].ptr == e->ptr) {
            if (!served_right(ev[i + 2].new_ptr)) FAIL("%s: chunk %p from the wrong allocator", cell, ev[i + 2].new_ptr);
            i += 3;
        } else {
            FAIL("%s: event %zu (%s) does not start a whole call", cell, i, kind_name(e->kind));
        }
    }
    return live;
}

static int compare_ints(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }

static void libc_cell(const char *name, const char *outcome) {
    printf("libc: %s: %s\n", name, outcome);
    ++cells;
}

static void run_libc(void) {
    const int route = expected_route(0);
    unsigned allocations;
    char cell[64];

    /* strdup: exactly one malloc of the string's size */
    snprintf(cell, sizeof cell, "libc: strdup");
    begin();
    char *s = strdup("mallochooks");
    end();
    if (!s || !served_right(s)) FAIL("%s: wrong allocator", cell);
    nwant = 0;
    want_alloc(12, 16, s);
    check_events(cell, route, libc_anchor);
    free(s);
    libc_cell("strdup", "ok");

    /* qsort of more than 1 KiB: one temporary buffer, malloc'd and freed inside */
    static int numbers[4096];
    for (int i = 0; i < 4096; ++i) numbers[i] = (i * 7919) % 4096;
    begin();
    qsort(numbers, 4096, sizeof *numbers, compare_ints);
    end();
    for (int i = 0; i < 4096; ++i)
        if (numbers[i] != i) FAIL("libc: qsort did not sort");
    long live = check_libc_log("libc: qsort", route, &allocations);
    if (route >= 0 && (live != 0 || allocations != 1)) FAIL("libc: qsort made %u allocations, wanted its one buffer", allocations);
    libc_cell("qsort", "ok");

    /* fopen allocates its FILE, fclose frees it */
    begin();
    FILE *f = fopen("/dev/null", "r");
    end();
    if (!f) FAIL("libc: fopen failed");
    live = check_libc_log("libc: fopen", route, &allocations);
    if (route >= 0 && (live != 1 || allocations != 1)) FAIL("libc: fopen should allocate one FILE");
    begin();
    fclose(f);
    end();
    live = check_libc_log("libc: fclose", route, &allocations);
    if (route >= 0 && live != -1) FAIL("libc: fclose should free the FILE");
    libc_cell("fopen/fclose", "ok");

    /* getline allocates and grows the line buffer the caller frees */
    char text[400];
    memset(text, 'x', 300);
    strcpy(text + 300, "\nend\n");
    FILE *in = fmemopen(text, strlen(text), "r");
    ungetc(fgetc(in), in); /* the stream's own buffer is allocated on the first read: not in the log */
    char *line = NULL;
    size_t cap = 0;
    begin();
    ssize_t got = getline(&line, &cap, in);
    end();
    if (got != 301 || !line || !served_right(line)) FAIL("libc: getline read %zd", got);
    live = check_libc_log("libc: getline", route, &allocations);
    if (route >= 0 && live != 1) FAIL("libc: getline should leave one buffer allocated");
    free(line);
    fclose(in);
    libc_cell("getline", "ok, 301 bytes");

    /* asprintf: the result is the caller's to free */
    char *formatted = NULL;
    begin();
    int n = asprintf(&formatted, "%s-%d", "link", 42);
    end();
    if (n != 7 || !formatted || strcmp(formatted, "link-42") || !served_right(formatted)) FAIL("libc: asprintf");
    live = check_libc_log("libc: asprintf", route, &allocations);
    if (route >= 0 && live != 1) FAIL("libc: asprintf should leave one chunk");
    free(formatted);
    libc_cell("asprintf", "ok");

    /* regcomp/regfree: libc's own calloc and malloc calls, all given back */
    regex_t re;
    begin();
    int rc = regcomp(&re, "^[a-z]+-[0-9]+$", REG_EXTENDED);
    if (rc == 0) {
        rc = regexec(&re, "link-42", 0, NULL, 0);
        regfree(&re);
    }
    end();
    if (rc != 0) FAIL("libc: regcomp/regexec failed");
    live = check_libc_log("libc: regcomp", route, &allocations);
    if (route >= 0 && (live != 0 || allocations < 2))
        FAIL("libc: regcomp/regfree should allocate and give everything back");
    libc_cell("regcomp/regfree", "ok");
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: mx_driver exe|dso|libc none|recorder|layer\n");
        return 2;
    }
    placement = !strcmp(argv[1], "exe") ? P_EXE : !strcmp(argv[1], "dso") ? P_DSO : P_LIBC;
    mx_start(argv[2]);
    page = (size_t)sysconf(_SC_PAGESIZE);
    libc_anchor = address_in("libc.so.6", "strdup");
    libstdcxx_anchor = address_in("libstdc++.so.6", "_Znwm");
    if ((placement == P_LIBC) != (mx_alloc_owns == NULL)) FAIL("placement %s does not match the program", argv[1]);

    /* The C callers of each placement; `linked`: see expected_route. */
    static const struct {
        enum placement placement;
        const char *name;
        mx_caller *run;
        int linked;
    } callers[] = {
        {P_EXE, "allocator's own file", mx_alloc_run, 1},
        {P_EXE, "executable", mx_exe_run, 1},
        {P_EXE, "plain library", mx_caller_run, 1},
        {P_DSO, "allocator's own file", mx_alloc_run, 1},
        {P_DSO, "allocator's library", mx_other_run, 1},
        {P_DSO, "executable", mx_exe_run, 0},
        {P_DSO, "plain library", mx_caller_run, 0},
        {P_LIBC, "executable (wrap)", mx_exe_run, 1},
        {P_LIBC, "library (wrap)", mx_wrapcaller_run, 1},
        {P_LIBC, "plain library", mx_caller_run, 0},
    };
    for (size_t i = 0; i < sizeof callers / sizeof *callers; ++i)
        if (callers[i].placement == placement) run_c_caller(callers[i].name, callers[i].run, callers[i].linked);
    run_libc();
    run_cxx();
    fprintf(stderr, "matrix %s, %s: %u cells passed\n", argv[1], argv[2], cells);
    return 0;
}
