/* SPDX-License-Identifier: MIT */
/* A C event client: a shared library made of this file and libmallochooks_preload.a.  It handles two
 * events and wants usable sizes; every other event keeps its weak do-nothing default. */
#include <stdatomic.h>
#include <stddef.h>

#include "mallochooks/events.h"

static atomic_ulong allocs, frees, usable_seen;

const int mallochooks_event_wants_usable_size = 1;

void mallochooks_event_post_successful_alloc(void *ptr, size_t modified_size, size_t modified_alignment,
                                             size_t requested_size, size_t requested_alignment, const void *caller) {
    (void)ptr, (void)modified_size, (void)modified_alignment, (void)requested_size, (void)requested_alignment, (void)caller;
    atomic_fetch_add(&allocs, 1);
}

int mallochooks_event_pre_nonnull_free(void *ptr, size_t usable_size, const void *caller) {
    (void)ptr, (void)caller;
    atomic_fetch_add(&frees, 1);
    if (usable_size > 0) atomic_fetch_add(&usable_seen, 1);
    return 0;
}

__attribute__((visibility("default"))) void cclient_counts(unsigned long out[3]) {
    out[0] = atomic_load(&allocs);
    out[1] = atomic_load(&frees);
    out[2] = atomic_load(&usable_seen);
}
