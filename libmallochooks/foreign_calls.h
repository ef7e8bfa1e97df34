// SPDX-License-Identifier: MIT
// Calls of an exported layer (layer_of, mallochooks/dynamic.h) into the allocator it was put in front of
// by link-time hooks (a wrapdl output's own allocator, known only by its table) are marked on the thread
// while they run: a depth in initial-exec TLS (see guard.h for why that model), saved and restored, so
// signal handlers and nesting leave it as they found it.  While it is raised, a call of glibc's __libc_
// names reaching this library's entry points comes from inside that allocator (one built on them, its
// malloc calling __libc_malloc), under an allocation the layer is already handling: the entry points
// send it straight on, unhooked (include/mallochooks/hooks.h, exit 9).  Only the adopted layer's calls
// pay for it (a few instructions); a preloaded library's own chain never does.
#ifndef MALLOCHOOKS_FOREIGN_CALLS_H
#define MALLOCHOOKS_FOREIGN_CALLS_H

#include "mallochooks/dynamic.h"

namespace mallochooks {

extern __thread unsigned foreign_call_depth __attribute__((visibility("hidden"), tls_model("initial-exec")));

inline bool in_foreign_call() { return __builtin_expect(foreign_call_depth != 0, 0); }

class foreign_call_scope {
public:
    foreign_call_scope() : saved_(foreign_call_depth) { foreign_call_depth = saved_ + 1; }
    ~foreign_call_scope() { foreign_call_depth = saved_; }
    foreign_call_scope(const foreign_call_scope &) = delete;
    foreign_call_scope &operator=(const foreign_call_scope &) = delete;

private:
    unsigned saved_;
};

// The `Next` of a layer exported by a runtime library: table_next, each call marked.
struct marked_table_next : table_next {
#define MALLOCHOOKS_MARKED_NEXT_(r, data, e)                                                          \
    MALLOCHOOKS_RET(e) MALLOCHOOKS_NAME(e)(MALLOCHOOKS_DECLS(e), const void *caller) const {          \
        foreign_call_scope scope;                                                                     \
        return table_next::MALLOCHOOKS_NAME(e)(MALLOCHOOKS_ARGS(e), caller);                          \
    }
    MALLOCHOOKS_FOR_EACH(MALLOCHOOKS_MARKED_NEXT_, ~, MALLOCHOOKS_ALL_HOOKS)
#undef MALLOCHOOKS_MARKED_NEXT_
};

}  // namespace mallochooks

#endif
