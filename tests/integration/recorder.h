/* SPDX-License-Identifier: MIT */
/* The recording event client used by the integration tests (librecorder.so, preloaded).  A test program
 * finds these functions with dlsym(RTLD_DEFAULT, ...) so that it can also run without the preload.
 * librecorder_layer.so is the same client exporting only its layer and chain for link-time hooks to adopt,
 * not malloc: preloaded, it sees exactly what link-time hooks hand it, and nothing else. */
#ifndef MALLOCHOOKS_TESTS_RECORDER_H
#define MALLOCHOOKS_TESTS_RECORDER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct mhtest_counts {
    uint64_t post_init, pre_alloc, post_successful_alloc, pre_nonnull_free, post_nonnull_free;
    uint64_t pre_nonnull_nonzero_realloc, post_nonnull_nonzero_realloc, failed_realloc;
    int64_t live; /* chunks allocated and not yet freed, as the events tell */
    /* post_init raised through the exported layer (once per chain of link-time hooks that adopted it);
     * post_init above counts only the recorder's own chain. */
    uint64_t layer_post_init;
};

enum mhtest_kind {
    MHTEST_PRE_ALLOC = 1, MHTEST_POST_SUCCESSFUL_ALLOC, MHTEST_PRE_NONNULL_FREE, MHTEST_POST_NONNULL_FREE,
    MHTEST_PRE_NONNULL_NONZERO_REALLOC, MHTEST_POST_NONNULL_NONZERO_REALLOC
};

/* How an event reached the recorder: through its own malloc entry points (it is preloaded and interposes
 * malloc), through its exported chain (link-time hooks of an output whose allocator is libc's: wrap), or
 * through its exported layer put in front of another allocator (link-time hooks of an output with its own
 * allocator: wrapdl).  mallochooks/dynamic.h describes the last two. */
enum mhtest_route { MHTEST_ROUTE_PRELOAD = 0, MHTEST_ROUTE_CHAIN, MHTEST_ROUTE_LAYER };

struct mhtest_event {
    uint32_t kind;
    uint32_t route;    /* enum mhtest_route */
    void *ptr;         /* the chunk (old chunk for realloc) */
    void *new_ptr;     /* realloc's result */
    size_t size;       /* requested size (modified size for post_nonnull_nonzero_realloc) */
    size_t alignment;  /* requested alignment */
    const void *caller;
};

/* Process-wide counts. */
void mhtest_get_counts(struct mhtest_counts *out);
/* Log this thread's events from now on (at most 4096). */
void mhtest_log_begin(void);
/* Stop logging; copy up to max events; return how many were logged. */
size_t mhtest_log_end(struct mhtest_event *out, size_t max);

/* Make this thread's next pre_alloc call dlsym (of a missing name) and dlerror from inside the event. */
void mhtest_arm_dlsym(void);
/* What that dlsym returned (*result) and what dlerror said. */
const char *mhtest_dlsym_outcome(void **result);

#ifdef __cplusplus
}
#endif
#endif
