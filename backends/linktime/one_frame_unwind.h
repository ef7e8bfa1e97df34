// SPDX-License-Identifier: MIT
// One-frame unwinding over the output's own .eh_frame: the return address of a frame that is executing
// at `pc`, given the stack and frame pointers it had there.  This is how the link-time hooks attribute
// an allocation made inside a declared *static* allocation function (docs/allocscc.md, "Static
// (file-local) allocation functions"): when the hooks' return address lies in such a function, the
// allocation site is that function's own return address, one frame up.
//
// It runs inside malloc: it never allocates, never locks, never calls the dynamic loader (no
// dl_iterate_phdr, no _Unwind_Find_FDE).  It finds .eh_frame_hdr through the program headers of the
// output it is linked into (__ehdr_start), binary-searches its table, and interprets only what a CFA at a
// call site needs: the CFA rule (register + offset, rsp or rbp) and the return address rule (saved at
// CFA + offset).  Anything else (DWARF expressions, another architecture, a pc outside this output)
// answers nullptr, and the caller keeps the return address it had.  It also tracks where a frame saved
// rbp, so that frames can be unwound one after the other (nested static allocation functions).
#ifndef MALLOCHOOKS_ONE_FRAME_UNWIND_H
#define MALLOCHOOKS_ONE_FRAME_UNWIND_H

#include <stddef.h>
#include <stdint.h>

namespace mallochooks::unwind {

// Register values of the frame executing at `pc` (x86-64): `sp` as it was after the call at pc returned
// (the CFA of the frame that was called: __builtin_dwarf_cfa() in the callee), `bp` as it was then.
struct frame_registers {
    uintptr_t sp;
    uintptr_t bp;
};

// The return address of the frame executing at `pc` (itself a return address into that frame), or nullptr
// when the frame cannot be unwound with the rules above.
const void *caller_of(const void *pc, frame_registers regs) noexcept;

// The same, and `regs` becomes the caller's (its sp after the call at the returned address returns, its
// rbp, restored when this frame saved it): so that the caller's frame can be unwound in turn.  `regs` is
// unchanged when the answer is nullptr.
const void *step(const void *pc, frame_registers &regs) noexcept;

// The CFA and return-address rules at `pc`, for tests and diagnostics: cfa = reg[cfa_register] +
// cfa_offset, return address at cfa + ra_offset.  False when they are not of that form.
struct frame_rules {
    unsigned cfa_register;  // DWARF number: 7 rsp, 6 rbp
    intptr_t cfa_offset;
    intptr_t ra_offset;
    bool bp_saved;          // rbp saved at cfa + bp_offset (else unchanged in this frame)
    intptr_t bp_offset;
};
bool rules_at(const void *pc, frame_rules &out) noexcept;

}  // namespace mallochooks::unwind

#endif
