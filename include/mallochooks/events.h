/* SPDX-License-Identifier: MIT */
/*
 * The event API: what an event client sees of every allocation.  Generated from MALLOCHOOKS_EVENTS.
 *
 * C clients define any subset of the functions declared below (mallochooks_event_<name>) in the same
 * shared object as the hooks (e.g. linked with -lmallochooks_preload); the others default to nothing.
 * C++ clients derive from mallochooks::event_client and define static member functions of the same short
 * names; mallochooks::event_layer<Client> (event_hooks/event_layer.h) turns hook calls into these events,
 * inlined.
 *
 * Event sequences for every user call are in docs/events.md.  In short:
 *   post_init()                          once, before any other event;
 *   pre_alloc(&size, &alignment, caller) before every allocation (malloc, calloc, realloc, memalign...):
 *                                        may grow *size and raise *alignment; *alignment is
 *                                        MALLOCHOOKS_DEFAULT_ALIGNMENT for the unaligned calls;
 *   post_successful_alloc(ptr, modified size, modified alignment, requested size, requested alignment,
 *                         caller)         after a successful malloc, calloc or aligned allocation;
 *   pre_nonnull_free(ptr, usable size, caller)   before free(ptr), ptr != NULL: return non-zero to cancel;
 *                                        usable size is 0 unless the client asks for it
 *                                        (wants_usable_size), so free costs no extra call otherwise;
 *   post_nonnull_free(ptr)               after the free happened;
 *   pre_nonnull_nonzero_realloc(ptr, size, caller)  before realloc(ptr, size), ptr != NULL, size != 0;
 *   post_nonnull_nonzero_realloc(old ptr, modified size, old usable size, caller, new ptr)
 *                                        after it; new ptr == NULL means it failed and old ptr is live.
 * Events run under the reentrancy guard: malloc and friends called from an event go straight to the
 * terminal, unhooked.  errno is preserved across every event.
 */
#ifndef MALLOCHOOKS_EVENTS_H
#define MALLOCHOOKS_EVENTS_H

#include <stddef.h>

#include "mallochooks/family.h"

/* The alignment every malloc result has (glibc's MALLOC_ALIGNMENT on x86-64); pre_alloc sees it for
 * malloc, calloc and realloc, and raising *alignment above it makes the allocation an aligned one. */
#define MALLOCHOOKS_DEFAULT_ALIGNMENT 16

#ifdef __cplusplus
extern "C" {
#endif

#define MALLOCHOOKS_DECLARE_C_EVENT_(r, data, e) \
    MALLOCHOOKS_RET(e) BOOST_PP_CAT(mallochooks_event_, MALLOCHOOKS_NAME(e))(MALLOCHOOKS_DECLS(e));
MALLOCHOOKS_FOR_EACH(MALLOCHOOKS_DECLARE_C_EVENT_, ~, MALLOCHOOKS_EVENTS)
#undef MALLOCHOOKS_DECLARE_C_EVENT_

/* A C client that wants usable sizes (pre_nonnull_free's usable_size, post_nonnull_nonzero_realloc's
 * old_usable_size) defines this as non-zero; otherwise they are 0 and free pays no usable-size call. */
extern const int mallochooks_event_wants_usable_size;

#ifdef __cplusplus
}

namespace mallochooks {

/* Base class of C++ event clients: every event does nothing.  A client redefines the events it handles
 * (as static member functions with the same signature) and may set wants_usable_size. */
struct event_client {
    static constexpr bool wants_usable_size = false;
#define MALLOCHOOKS_DEFAULT_EVENT_(r, data, e) \
    static MALLOCHOOKS_RET(e) MALLOCHOOKS_NAME(e)(MALLOCHOOKS_TYPES(e)) { \
        return MALLOCHOOKS_RET(e)();           \
    }
    MALLOCHOOKS_FOR_EACH(MALLOCHOOKS_DEFAULT_EVENT_, ~, MALLOCHOOKS_EVENTS)
#undef MALLOCHOOKS_DEFAULT_EVENT_
};

}  // namespace mallochooks
#endif

#endif /* MALLOCHOOKS_EVENTS_H */
