// SPDX-License-Identifier: MIT
// librecorder.so: an event client for tests.  It counts events process-wide and logs the events of a
// thread that asks for it, so a test program can check exactly which events its own calls raised.  Its
// mhtest_arm_dlsym makes the next pre_alloc on this thread call dlsym and dlerror, which allocate inside
// glibc: those nested allocations must reach the terminal without events and without deadlock (a calloc
// during dlsym).  It is armed from a test's main, not done in post_init: post_init runs at the first
// allocation wherever that is, e.g. inside setlocale with glibc's locale lock held for writing, where
// dlerror's message translation would take that lock again (glibc's rwlock then returns EDEADLK and the
// translation code unlocks a lock it never got, wedging the next setlocale).  Event clients must not call
// into glibc's gettext, strerror or dlerror from events for that reason; docs/events.md says so.
//
// Every logged event records its route (recorder.h): the exported chain and layer set a thread-local
// route for the duration of the call they serve, so a test can tell events that link-time hooks handed
// over from events the preloaded entry points raised themselves.  Built twice: librecorder.so exports
// malloc and friends, librecorder_layer.so only the layer (its version script leaves malloc local).
#include "recorder.h"

#include <dlfcn.h>
#include <string.h>

#include <atomic>

#include "backends/preload/terminal.h"
#include "event_hooks/event_layer.h"
#include "libmallochooks/entry_points.h"

namespace {

struct {
    std::atomic<uint64_t> post_init, pre_alloc, post_successful_alloc, pre_nonnull_free, post_nonnull_free;
    std::atomic<uint64_t> pre_nonnull_nonzero_realloc, post_nonnull_nonzero_realloc, failed_realloc;
    std::atomic<int64_t> live;
    std::atomic<uint64_t> layer_post_init;
} counts;

// One log, written by whichever thread called mhtest_log_begin (one at a time, by contract).
constexpr size_t log_capacity = 4096;
__thread bool logging __attribute__((tls_model("initial-exec")));
size_t logged;
__thread bool dlsym_armed __attribute__((tls_model("initial-exec")));
__thread uint32_t route __attribute__((tls_model("initial-exec")));  // MHTEST_ROUTE_PRELOAD unless set
void *dlsym_result;
const char *dlerror_result;
mhtest_event the_log[log_capacity];

void log_event(uint32_t kind, void *ptr, void *new_ptr, size_t size, size_t alignment, const void *caller) {
    if (!logging) return;
    if (logged < log_capacity) the_log[logged] = mhtest_event{kind, route, ptr, new_ptr, size, alignment, caller};
    ++logged;
}

struct recorder : mallochooks::event_client {
    static void post_init() { (route == MHTEST_ROUTE_LAYER ? counts.layer_post_init : counts.post_init)++; }
    static void pre_alloc(size_t *size, size_t *alignment, const void *caller) {
        counts.pre_alloc++;
        if (dlsym_armed) {
            dlsym_armed = false;
            // A lookup that fails makes glibc allocate its error state: nested allocations, unhooked.
            dlsym_result = dlsym(RTLD_DEFAULT, "mhtest_no_such_symbol_anywhere");
            dlerror_result = dlerror();
        }
        log_event(MHTEST_PRE_ALLOC, nullptr, nullptr, *size, *alignment, caller);
    }
    static void post_successful_alloc(void *ptr, size_t, size_t, size_t rsize, size_t ralign, const void *caller) {
        counts.post_successful_alloc++;
        counts.live++;
        log_event(MHTEST_POST_SUCCESSFUL_ALLOC, ptr, nullptr, rsize, ralign, caller);
    }
    static int pre_nonnull_free(void *ptr, size_t, const void *caller) {
        counts.pre_nonnull_free++;
        log_event(MHTEST_PRE_NONNULL_FREE, ptr, nullptr, 0, 0, caller);
        return 0;
    }
    static void post_nonnull_free(void *ptr) {
        counts.post_nonnull_free++;
        counts.live--;
        log_event(MHTEST_POST_NONNULL_FREE, ptr, nullptr, 0, 0, nullptr);
    }
    static void pre_nonnull_nonzero_realloc(void *ptr, size_t size, const void *caller) {
        counts.pre_nonnull_nonzero_realloc++;
        log_event(MHTEST_PRE_NONNULL_NONZERO_REALLOC, ptr, nullptr, size, 0, caller);
    }
    static void post_nonnull_nonzero_realloc(void *old_ptr, size_t msize, size_t, const void *caller, void *new_ptr) {
        counts.post_nonnull_nonzero_realloc++;
        if (new_ptr == nullptr) counts.failed_realloc++;
        log_event(MHTEST_POST_NONNULL_NONZERO_REALLOC, old_ptr, new_ptr, msize, 0, caller);
    }
};

using recorder_layer = mallochooks::event_layer<recorder>;
using recorder_hooks = mallochooks::chain<recorder_layer, mallochooks::preload::terminal>;

// Sets this thread's route for one call, and puts back what was there.
class route_scope {
public:
    explicit route_scope(uint32_t r) : saved_(route) { route = r; }
    ~route_scope() { route = saved_; }

private:
    uint32_t saved_;
};

// The exported chain: the same initialised, guarded chain as the entry points, entered with the route set.
struct chain_route {
#define RECORDER_CHAIN_HOOK_(r, data, e)                                                                  \
    static MALLOCHOOKS_RET(e) MALLOCHOOKS_NAME(e)(MALLOCHOOKS_DECLS(e), const void *caller) {             \
        route_scope scope(MHTEST_ROUTE_CHAIN);                                                            \
        return mallochooks::front<recorder_hooks>::MALLOCHOOKS_NAME(e)(MALLOCHOOKS_ARGS(e), caller);      \
    }
    MALLOCHOOKS_FOR_EACH(RECORDER_CHAIN_HOOK_, ~, MALLOCHOOKS_ALL_HOOKS)
#undef RECORDER_CHAIN_HOOK_
};

// The exported layer: the event layer, entered with the route set.
struct layer_route {
    template <class Next> static void init(Next next) {
        route_scope scope(MHTEST_ROUTE_LAYER);
        recorder_layer::init(next);
    }
#define RECORDER_LAYER_HOOK_(r, data, e)                                                                  \
    template <class Next>                                                                                 \
    static MALLOCHOOKS_RET(e) MALLOCHOOKS_NAME(e)(Next next, MALLOCHOOKS_DECLS(e),                        \
                                                  const void *caller) {                                   \
        route_scope scope(MHTEST_ROUTE_LAYER);                                                            \
        return recorder_layer::MALLOCHOOKS_NAME(e)(next, MALLOCHOOKS_ARGS(e), caller);                    \
    }
    MALLOCHOOKS_FOR_EACH(RECORDER_LAYER_HOOK_, ~, MALLOCHOOKS_ALL_HOOKS)
#undef RECORDER_LAYER_HOOK_
};

}  // namespace

MALLOCHOOKS_DEFINE_ENTRY_POINTS(, recorder_hooks)
// As MALLOCHOOKS_EXPORT_LAYER does, with the route-setting wrappers around the layer and the chain.
extern "C" __attribute__((visibility("default"))) constinit const mallochooks_layer mallochooks_layer_v1 =
    mallochooks::layer_of<layer_route>::value("recorder", &mallochooks::table_of<chain_route>::value);
MALLOCHOOKS_READY_AT_LOAD(recorder_hooks)

extern "C" __attribute__((visibility("default"))) void mhtest_get_counts(mhtest_counts *out) {
    out->post_init = counts.post_init;
    out->pre_alloc = counts.pre_alloc;
    out->post_successful_alloc = counts.post_successful_alloc;
    out->pre_nonnull_free = counts.pre_nonnull_free;
    out->post_nonnull_free = counts.post_nonnull_free;
    out->pre_nonnull_nonzero_realloc = counts.pre_nonnull_nonzero_realloc;
    out->post_nonnull_nonzero_realloc = counts.post_nonnull_nonzero_realloc;
    out->failed_realloc = counts.failed_realloc;
    out->live = counts.live;
    out->layer_post_init = counts.layer_post_init;
}

extern "C" __attribute__((visibility("default"))) void mhtest_log_begin(void) {
    logged = 0;
    logging = true;
}

extern "C" __attribute__((visibility("default"))) size_t mhtest_log_end(mhtest_event *out, size_t max) {
    logging = false;
    size_t n = logged < log_capacity ? logged : log_capacity;
    memcpy(out, the_log, (n < max ? n : max) * sizeof *out);
    return logged;
}

// Arm the dlsym-inside-an-event check; mhtest_dlsym_outcome tells what dlsym and dlerror returned.
extern "C" __attribute__((visibility("default"))) void mhtest_arm_dlsym(void) { dlsym_armed = true; }
extern "C" __attribute__((visibility("default"))) const char *mhtest_dlsym_outcome(void **result) {
    *result = dlsym_result;
    return dlerror_result;
}
