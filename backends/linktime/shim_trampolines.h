// SPDX-License-Identifier: MIT
// The shim trampolines (shim_trampolines.S, x86-64): what the caller-side shims of declared allocation
// functions share at run time, so that a link's shim object can be a row of two-instruction thunks that
// allocscc writes itself, with no compiler run (stubgen/shim_object.h):
//
//     __wrap_xmalloc:  movq __real_xmalloc@GOTPCREL(%rip), %r11     the declared function
//                      [movl $PLAN, %r10d]                           suballocators: where their arguments are
//                      jmp  TRAMPOLINE
//
// The thunk leaves the arguments, the stack and the return address (the call site in the caller of
// xmalloc) as the caller made them, so one trampoline serves every signature whose arguments all travel
// in registers (at most 6 of the integer class and 8 of the floating-point class; others get C shims).
//
//   __mallochooks_site_trampoline      allocation and free functions: sets the allocation site to the
//                                      return address unless one is set (the outermost wins), calls the
//                                      function, restores the site -- also when an exception leaves it
//                                      (a cleanup landing pad, as the C shims' cleanup variable).
//   __mallochooks_suballoc_trampoline  suballocators: saves the argument registers in a suballoc_call
//                                      record, lets __mallochooks_suballoc_enter/leave report the chunks
//                                      to the heap index around the call.
//
// Both see a return address inside a declared static function as such (static_allocators.h) and then
// take the site from its caller.
#ifndef MALLOCHOOKS_SHIM_TRAMPOLINES_H
#define MALLOCHOOKS_SHIM_TRAMPOLINES_H

#include <stddef.h>
#include <stdint.h>

#define MALLOCHOOKS_SITE_TRAMPOLINE "__mallochooks_site_trampoline"
#define MALLOCHOOKS_SUBALLOC_TRAMPOLINE "__mallochooks_suballoc_trampoline"

// A suballocator's plan, in %r10d: the integer-register slot (0 = rdi ... 5 = r9) of each argument that
// matters, 7 when it has none, and whether the function returns a new chunk.
#define MALLOCHOOKS_PLAN_NONE 7u
#define MALLOCHOOKS_PLAN_SIZE_SHIFT 0   /* Z */
#define MALLOCHOOKS_PLAN_COUNT_SHIFT 3  /* z */
#define MALLOCHOOKS_PLAN_OLD_SHIFT 6    /* p: the chunk resized */
#define MALLOCHOOKS_PLAN_FREED_SHIFT 9  /* P: the chunk given back */
#define MALLOCHOOKS_PLAN_RETURNS_CHUNK (1u << 12)

#ifdef __cplusplus
extern "C" {
#endif

// What the suballocator trampoline saves (its layout is written out in shim_trampolines.S).
struct mallochooks_suballoc_call {
    uint64_t ints[6];               // rdi, rsi, rdx, rcx, r8, r9
    unsigned char vectors[8][16];   // xmm0..xmm7 (then the floating-point result)
    const void *target;             // the declared function
    uint64_t plan;
    const void *site;               // set by enter
    void *result;                   // set by the trampoline after the call
};

#ifdef __cplusplus
}
#endif

#endif
