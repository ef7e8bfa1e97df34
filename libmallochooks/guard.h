// SPDX-License-Identifier: MIT
// The reentrancy guard: while an event client (or a layer that may allocate) runs, malloc and friends
// called on the same thread go straight to the terminal instead of raising events again.  The guard is a
// depth counter that each scope saves and restores, so a signal handler that allocates inside a guarded
// region, or nested guards, leave it as they found it.
#ifndef MALLOCHOOKS_GUARD_H
#define MALLOCHOOKS_GUARD_H

namespace mallochooks {

// initial-exec, not the default global-dynamic model: a global-dynamic variable is reached through
// __tls_get_addr, which can allocate the thread's DTV slot with malloc on first access (in an object that
// was dlopened, or under LD_AUDIT) and so recurse into the hooks.  initial-exec places the variable in the
// static TLS block at a fixed offset from the thread pointer: one load, never a call.  It is hidden, so
// every runtime library (every chain) has its own depth.
extern __thread unsigned guard_depth __attribute__((visibility("hidden"), tls_model("initial-exec")));

inline bool in_hooks() { return __builtin_expect(guard_depth != 0, 0); }

class reentrancy_guard {
public:
    reentrancy_guard() : saved_(guard_depth) { guard_depth = saved_ + 1; }
    ~reentrancy_guard() { guard_depth = saved_; }
    reentrancy_guard(const reentrancy_guard &) = delete;
    reentrancy_guard &operator=(const reentrancy_guard &) = delete;

private:
    unsigned saved_;
};

}  // namespace mallochooks

#endif
