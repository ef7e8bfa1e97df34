// SPDX-License-Identifier: MIT
// event_layer<Client>: the hook layer that turns hook calls into events (mallochooks/events.h) for one
// client.  Events the client does not redefine cost nothing: they are detected at compile time and neither
// called nor guarded, and the usable size is fetched only for a client that sets wants_usable_size.  Every
// event the client does handle runs under the reentrancy guard with errno saved and restored, so a client
// may allocate, print or dlopen, and the program still sees glibc's errno behaviour (free preserves errno,
// a successful allocation leaves it alone).
//
// The sequence of events for every hook is written out in docs/events.md and tested in
// tests/unit/test_event_sequences.cc.
#ifndef MALLOCHOOKS_EVENT_HOOKS_EVENT_LAYER_H
#define MALLOCHOOKS_EVENT_HOOKS_EVENT_LAYER_H

#include <errno.h>
#include <string.h>

#include <type_traits>

#include "libmallochooks/guard.h"
#include "mallochooks/events.h"
#include "mallochooks/hooks.h"

namespace mallochooks {

template <class Client> struct event_layer {
    static_assert(std::is_base_of_v<event_client, Client>, "event clients derive from mallochooks::event_client");
    static constexpr size_t default_alignment = MALLOCHOOKS_DEFAULT_ALIGNMENT;

    // has_<event>: does the client redefine it?  raise_<event>(...): call it guarded, errno preserved, or
    // do nothing (returning 0) when it is not redefined.
#define MALLOCHOOKS_RAISE_EVENT_(r, data, e)                                                          \
    static constexpr bool BOOST_PP_CAT(has_, MALLOCHOOKS_NAME(e)) =                                   \
        &Client::MALLOCHOOKS_NAME(e) != &event_client::MALLOCHOOKS_NAME(e);                           \
    static MALLOCHOOKS_RET(e) BOOST_PP_CAT(raise_, MALLOCHOOKS_NAME(e))(MALLOCHOOKS_DECLS(e)) {       \
        if constexpr (BOOST_PP_CAT(has_, MALLOCHOOKS_NAME(e))) {                                      \
            reentrancy_guard guard;                                                                   \
            errno_saver saved;                                                                        \
            return Client::MALLOCHOOKS_NAME(e)(MALLOCHOOKS_ARGS(e));                                  \
        } else {                                                                                      \
            return event_client::MALLOCHOOKS_NAME(e)(MALLOCHOOKS_ARGS(e));                            \
        }                                                                                             \
    }
    MALLOCHOOKS_FOR_EACH(MALLOCHOOKS_RAISE_EVENT_, ~, MALLOCHOOKS_EVENTS)
#undef MALLOCHOOKS_RAISE_EVENT_

    template <class Next> static void init(Next) { raise_post_init(); }

    template <class Next> static void *malloc(Next next, size_t size, const void *caller) {
        size_t msize = size, malign = default_alignment;
        raise_pre_alloc(&msize, &malign, caller);
        void *p = malign > default_alignment ? next.memalign(malign, msize, caller) : next.malloc(msize, caller);
        if (p) raise_post_successful_alloc(p, msize, malign, size, default_alignment, caller);
        return p;
    }

    template <class Next> static void *calloc(Next next, size_t nmemb, size_t size, const void *caller) {
        const size_t total = nmemb * size;  // the user API has checked it does not overflow
        size_t msize = total, malign = default_alignment;
        raise_pre_alloc(&msize, &malign, caller);
        void *p;
        if (malign > default_alignment) {
            p = next.memalign(malign, msize, caller);
            if (p) memset(p, 0, msize);
        } else if (msize == total) {
            p = next.calloc(nmemb, size, caller);
        } else {
            p = next.calloc(1, msize, caller);
        }
        if (p) raise_post_successful_alloc(p, msize, malign, total, default_alignment, caller);
        return p;
    }

    template <class Next> static void *memalign(Next next, size_t alignment, size_t size, const void *caller) {
        size_t msize = size, malign = alignment;
        raise_pre_alloc(&msize, &malign, caller);
        void *p = next.memalign(malign, msize, caller);
        if (p) raise_post_successful_alloc(p, msize, malign, size, alignment, caller);
        return p;
    }

    template <class Next> static void free(Next next, void *ptr, const void *caller) {
        size_t usable = 0;
        if (Client::wants_usable_size) usable = next.usable_size(ptr, caller);
        if (raise_pre_nonnull_free(ptr, usable, caller)) return;  // cancelled
        next.free(ptr, caller);
        raise_post_nonnull_free(ptr);
    }

    // operator new: the events of malloc (memalign for an aligned new), with the kind passed on.  An
    // alignment raised by pre_alloc makes the allocation an aligned one.
    template <class Next>
    static void *cxx_new(Next next, size_t size, size_t alignment, unsigned kind, const void *caller) {
        const size_t requested_alignment = alignment > default_alignment ? alignment : default_alignment;
        size_t msize = size, malign = requested_alignment;
        raise_pre_alloc(&msize, &malign, caller);
        void *p = next.cxx_new(msize, malign > default_alignment ? malign : alignment, kind, caller);
        if (p) raise_post_successful_alloc(p, msize, malign, size, requested_alignment, caller);
        return p;
    }

    // operator delete: the events of free.
    template <class Next>
    static void cxx_delete(Next next, void *ptr, size_t size, size_t alignment, unsigned kind, const void *caller) {
        size_t usable = 0;
        if (Client::wants_usable_size) usable = next.usable_size(ptr, caller);
        if (raise_pre_nonnull_free(ptr, usable, caller)) return;  // cancelled
        next.cxx_delete(ptr, size, alignment, kind, caller);
        raise_post_nonnull_free(ptr);
    }

    template <class Next> static void *realloc(Next next, void *ptr, size_t size, const void *caller) {
        raise_pre_nonnull_nonzero_realloc(ptr, size, caller);
        size_t old_usable = 0;
        if (Client::wants_usable_size) old_usable = next.usable_size(ptr, caller);
        size_t msize = size, malign = default_alignment;
        raise_pre_alloc(&msize, &malign, caller);
        void *q;
        if (malign > default_alignment) {
            // No realloc takes an alignment: allocate aligned, copy what the old chunk holds, free it.
            q = next.memalign(malign, msize, caller);
            if (q) {
                size_t old = next.usable_size(ptr, caller);
                memcpy(q, ptr, old < msize ? old : msize);
                next.free(ptr, caller);
            }
        } else {
            q = next.realloc(ptr, msize, caller);
        }
        raise_post_nonnull_nonzero_realloc(ptr, msize, old_usable, caller, q);
        return q;
    }

    template <class Next> static size_t usable_size(Next next, void *ptr, const void *caller) {
        return next.usable_size(ptr, caller);
    }

private:
    struct errno_saver {
        int saved = errno;
        ~errno_saver() { errno = saved; }
    };
};

}  // namespace mallochooks

#endif
