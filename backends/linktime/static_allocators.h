// SPDX-License-Identifier: MIT
// Static (file-local) allocation functions, the hooks' side (docs/allocscc.md, "Static allocation
// functions").  No linker can send calls of a `static void *xalloc(size_t)` through a shim, so allocscc
// gives each declared one a hidden global alias in the copy of its object, and the output's shim object
// lists their code as begin/end pairs in __mallochooks_static_ranges (mallochooks/alloc_site.h).  When a
// malloc-family call arrives with no allocation site set and its return address lies in one of those
// ranges, the allocation site is found by unwinding: one frame with the output's own .eh_frame
// (one_frame_unwind.h), and on while the caller is itself inside a declared static function, so that the
// outermost one wins as it does for the shims.
//
// On the hooks' path: no allocation, no lock, no call into the loader.  The hot path, a call with no site
// set, checks its return address against the bounds of all ranges: two loads and a compare.  The bounds
// are computed from the table on the first call that falls inside them; until then they cover everything
// (a superset is always safe: the slow path checks the ranges themselves), so no constructor is needed.
#ifndef MALLOCHOOKS_STATIC_ALLOCATORS_H
#define MALLOCHOOKS_STATIC_ALLOCATORS_H

#include <stdint.h>

#include <atomic>

extern "C" {
// Lowest begin and highest end of the ranges, [0, UINTPTR_MAX) until computed.  Plain C names: the shim
// trampolines (shim_trampolines.S) read them too.
extern std::atomic<uintptr_t> __mallochooks_static_lo __attribute__((visibility("hidden")));
extern std::atomic<uintptr_t> __mallochooks_static_hi __attribute__((visibility("hidden")));

// The allocation site of a call made at `pc` with the stack pointer `sp` (the CFA of the callee: sp after
// the call returns) and frame pointer `bp` it had then: `pc` itself unless it lies in a declared static
// function, else the return address of the outermost such function found by unwinding (or the last one
// that could be unwound).  For the trampolines.
const void *__mallochooks_static_site(const void *pc, uintptr_t sp, uintptr_t bp) noexcept
    __attribute__((visibility("hidden")));
}

namespace mallochooks::static_allocators {

// Might `pc` lie in a declared static function?  The hot path's whole cost.
inline bool may_contain(const void *pc) {
    const uintptr_t lo = __mallochooks_static_lo.load(std::memory_order_relaxed);
    const uintptr_t hi = __mallochooks_static_hi.load(std::memory_order_relaxed);
    return reinterpret_cast<uintptr_t>(pc) - lo < hi - lo;
}

// The allocation site for a hook entry point whose caller returns to `return_address`, called by the
// entry point as a tail call (so that its frame is the entry point's): `own_return_address` and
// `frame_address` are the caller's __builtin_return_address(0) and __builtin_frame_address(0).  When they
// show that the call was not a tail call (a build without sibling-call optimisation), the registers at
// the call are unknown: the answer is `return_address`, the immediate caller, as without this.
const void *site_of(const void *return_address, const void *own_return_address, const void *frame_address) noexcept;

}  // namespace mallochooks::static_allocators

#endif
