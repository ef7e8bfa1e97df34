// SPDX-License-Identifier: MIT
// Calls of a runtime library's exported layer (layer_of, mallochooks/dynamic.h), which link-time hooks
// make to put the layer in front of their output's own allocator (wrapdl), are marked on the thread
// while they run: a depth in initial-exec TLS (see guard.h for why that model), saved and restored, so
// signal handlers and nesting leave it as they found it.  While it is raised, a call of glibc's __libc_
// names reaching this library's entry points comes from inside that allocator (one built on them, its
// malloc calling __libc_malloc), under an allocation the layer is already handling: the entry points
// send it straight on, unhooked (include/mallochooks/hooks.h, exit 9).  The whole layer call is marked,
// not each of its calls into the table: the layer's own code makes no __libc_ call, and the layer is
// instantiated over the plain table_next, as before (marking each call into the table changed gcc's
// inlining of the layer: 32 to 40 instructions more per malloc/free pair, callgrind).  And only once an
// adopting allocator is found to import one of those names (backends/preload/terminal.h,
// adopted_scope): marking every call cost 24 instructions per pair (the entries lose their tail calls);
// the test costs a load and a branch per call.
#ifndef MALLOCHOOKS_FOREIGN_CALLS_H
#define MALLOCHOOKS_FOREIGN_CALLS_H

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

}  // namespace mallochooks

#endif
