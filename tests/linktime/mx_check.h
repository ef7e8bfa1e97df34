/* SPDX-License-Identifier: MIT */
/* Checking a recorded event log, for the link-time test programs (mx_driver.c, self_call.c, dl_open.c):
 * each runs in one of three modes (matrix.sh), logs the events of one call at a time through the
 * recorder (tests/integration/recorder.h) and compares them with the sequence docs/events.md gives,
 * including the route by which they reached the recorder and the object the caller lies in.  Include it
 * once per program. */
#ifndef MX_CHECK_H
#define MX_CHECK_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recorder_client.h"

/* none: nothing preloaded; recorder: librecorder.so (interposes malloc, exports its layer); layer:
 * librecorder_layer.so (its layer only: every event proves that a link-time hook handed the call over). */
static enum mode { M_NONE, M_RECORDER, M_LAYER } mode;
enum { NO_EVENTS = -1, UNCHECKED = -2 };

static struct recorder_api rec;
static struct mhtest_event ev[512];
static size_t nev;

#define FAIL(...)                                                                                      \
    do {                                                                                               \
        fprintf(stderr, __VA_ARGS__);                                                                  \
        fprintf(stderr, "\n");                                                                         \
        dump_log();                                                                                    \
        exit(1);                                                                                       \
    } while (0)

static const char *kind_name(uint32_t k) {
    static const char *const names[] = {"?", "pre_alloc", "post_successful_alloc", "pre_nonnull_free",
                                        "post_nonnull_free", "pre_nonnull_nonzero_realloc",
                                        "post_nonnull_nonzero_realloc"};
    return k < sizeof names / sizeof *names ? names[k] : "?";
}

static void dump_log(void) {
    for (size_t i = 0; i < nev && i < 512; ++i)
        fprintf(stderr, "  event %zu: %s route=%u ptr=%p new=%p size=%zu alignment=%zu caller=%p\n", i,
                kind_name(ev[i].kind), ev[i].route, ev[i].ptr, ev[i].new_ptr, ev[i].size, ev[i].alignment,
                ev[i].caller);
}

static void begin(void) {
    nev = 0;
    if (mode != M_NONE) rec.log_begin();
}
static void end(void) {
    if (mode != M_NONE) nev = rec.log_end(ev, 512);
    if (nev > 512) FAIL("more than 512 events");
}

/* Whether `addr` lies in the object that contains `anchor` (dladdr: the driver is not inside malloc). */
static int same_object(const void *addr, const void *anchor) {
    Dl_info a, b;
    return addr && anchor && dladdr(addr, &a) && dladdr(anchor, &b) && a.dli_fbase == b.dli_fbase;
}

static const char *object_name(const void *addr) {
    Dl_info a;
    return addr && dladdr(addr, &a) && a.dli_fname && *a.dli_fname ? a.dli_fname : "(the executable)";
}

/* An address inside a library already loaded: its own definition of `symbol`, looked up in it (a default
 * lookup can answer with the executable's PLT stub instead). */
__attribute__((unused)) static const void *address_in(const char *library, const char *symbol) {
    void *handle = dlopen(library, RTLD_NOLOAD | RTLD_LAZY);
    const void *address = handle ? dlsym(handle, symbol) : NULL;
    if (!address) FAIL("cannot find %s in %s", symbol, library);
    return address;
}

/* The mode named by a program's argument; the recorder must be there exactly when the mode says so. */
static void mx_start(const char *name) {
    mode = !strcmp(name, "recorder") ? M_RECORDER : !strcmp(name, "layer") ? M_LAYER : M_NONE;
    if (strcmp(name, "none") && mode == M_NONE) FAIL("unknown mode %s", name);
    if (recorder_find(&rec, mode != M_NONE) != (mode != M_NONE)) FAIL("a recorder is loaded in mode none");
}

/* ---- expected event sequences (docs/events.md) ------------------------------------------------------ */

struct want {
    uint32_t kind;
    const void *ptr, *new_ptr; /* NULL: not checked */
    size_t size, alignment;    /* checked for the kinds that log them */
};
static struct want wants[8];
static size_t nwant;

static void want_alloc(size_t size, size_t alignment, const void *p) {
    wants[nwant++] = (struct want){MHTEST_PRE_ALLOC, NULL, NULL, size, alignment};
    wants[nwant++] = (struct want){MHTEST_POST_SUCCESSFUL_ALLOC, p, NULL, size, alignment};
}
static void want_free(const void *p) {
    wants[nwant++] = (struct want){MHTEST_PRE_NONNULL_FREE, p, NULL, 0, 0};
    wants[nwant++] = (struct want){MHTEST_POST_NONNULL_FREE, p, NULL, 0, 0};
}
static void want_realloc(const void *p, size_t size, const void *q) {
    wants[nwant++] = (struct want){MHTEST_PRE_NONNULL_NONZERO_REALLOC, p, NULL, size, 0};
    wants[nwant++] = (struct want){MHTEST_PRE_ALLOC, NULL, NULL, size, 16};
    wants[nwant++] = (struct want){MHTEST_POST_NONNULL_NONZERO_REALLOC, p, q, size, 0};
}

/* Every logged event must be the wanted one, by the expected route, from the calling object. */
static void check_events(const char *cell, int route, const void *object) {
    if (route == UNCHECKED) return;
    if (route == NO_EVENTS) {
        if (nev != 0) FAIL("%s: %zu events, but no hook can see this call here", cell, nev);
        return;
    }
    if (nev != nwant) FAIL("%s: %zu events, wanted %zu", cell, nev, nwant);
    for (size_t i = 0; i < nev; ++i) {
        const struct mhtest_event *e = &ev[i];
        const struct want *w = &wants[i];
        if (e->kind != w->kind) FAIL("%s: event %zu is %s, wanted %s", cell, i, kind_name(e->kind), kind_name(w->kind));
        if (w->ptr && e->ptr != w->ptr) FAIL("%s: event %zu is about %p, wanted %p", cell, i, e->ptr, w->ptr);
        if (w->new_ptr && e->new_ptr != w->new_ptr) FAIL("%s: event %zu has new %p, wanted %p", cell, i, e->new_ptr, w->new_ptr);
        if (e->kind != MHTEST_PRE_NONNULL_FREE && e->kind != MHTEST_POST_NONNULL_FREE && e->size != w->size)
            FAIL("%s: event %zu has size %zu, wanted %zu", cell, i, e->size, w->size);
        if ((e->kind == MHTEST_PRE_ALLOC || e->kind == MHTEST_POST_SUCCESSFUL_ALLOC) && e->alignment != w->alignment)
            FAIL("%s: event %zu has alignment %zu, wanted %zu", cell, i, e->alignment, w->alignment);
        if ((int)e->route != route) FAIL("%s: event %zu came by route %u, wanted %d", cell, i, e->route, route);
        if (e->kind != MHTEST_POST_NONNULL_FREE && !same_object(e->caller, object))
            FAIL("%s: event %zu names caller %p in %s, wanted %s", cell, i, e->caller, object_name(e->caller),
                 object_name(object));
    }
}

#endif
