// SPDX-License-Identifier: MIT
// The allocation-stack unwinder of HEAPINDEX_STACKS: the return addresses of the frames that led to an
// allocation, from .eh_frame call-frame information, so that it works on code built without frame
// pointers (Debian's own libraries).
//
// It runs inside malloc, so it never allocates, never takes a lock and never calls into the dynamic
// loader's locked paths: the object holding a pc and its .eh_frame_hdr come from glibc's
// _dl_find_object (2.35+), which is lock-free and async-signal-safe (made for unwinders: libgcc uses it
// too); the FDE is found by the binary-search table of .eh_frame_hdr and its CFA rules interpreted here
// (the subset that a call site needs: CFA = rsp or rbp + offset, return address and rbp saved at CFA +
// offset).  Rules are cached per pc in a global direct-mapped table of packed 64-bit words (written and
// read whole, so racing threads never see a torn entry), so a stack of known frames costs a load, an add
// and a load per frame.  Why not libunwind or glibc's backtrace(): docs/heap-profiles.md.
//
// The walk stops at the outermost frame (_start says its return address is undefined), at a pc no
// loaded object holds (JIT code), at a frame whose rules are not of that form (a signal frame, DWARF
// expressions), or when the stack pointer would not grow or jumps by more than 16 MiB (a corrupt frame).
#ifndef MALLOCHOOKS_INDEX_UNWIND_H
#define MALLOCHOOKS_INDEX_UNWIND_H

#include <stddef.h>
#include <stdint.h>

namespace mallochooks::heapindex::unwind {

// Up to `max` return addresses of the frames outside this library, innermost first, starting at the
// first frame whose pc is not in libheapindex.so (the program's call to malloc).  When `caller` (the
// allocation site the hooks were given) is among the first few of them, the stack starts there: a chain
// adopted through link-time hooks has hook frames of its own between the program and this library.
constexpr unsigned max_frames = 128;

// A thread's last walk, to recognise the same stack again without unwinding it.  The unwinder is a
// function of the starting pc and stack pointer and of the return-address slots it reads (and of rbp,
// but only through rbp-based frames): when the walk started at the same pc and stack pointer, had no
// rbp-based frame, and every return-address slot it read still holds what it read, the walk would
// give the same stack.  Checking that is one load and one compare per frame, instead of a rules lookup.
struct memo {
    static constexpr unsigned max_steps = max_frames + 8 + 32;  // + lookahead + this library's own frames
    uintptr_t pc0, sp0;
    const void *caller;
    unsigned steps, kept, max;
    bool valid;
    struct slot_read {
        uintptr_t slot;  // step i read the return address at this address (its CFA - 8) ...
        uintptr_t pc;    // ... and found this
    } reads[max_steps];
};

// capture with a memo (the thread's own, never shared): *unchanged is true when the stack is the one
// the memo's walk gave (then `out` is not written: the caller still has those frames' stack).
unsigned capture(uintptr_t *out, unsigned max, const void *caller, memo *m, bool *unchanged)
    __attribute__((visibility("hidden")));
inline unsigned capture(uintptr_t *out, unsigned max, const void *caller) {
    bool unchanged;
    return capture(out, max, caller, nullptr, &unchanged);
}

// For tests: the CFA rules at a return address `pc` as the unwinder uses them (false: cannot unwind it).
struct rules {
    bool cfa_is_rbp;     // CFA = rbp + cfa_offset, else rsp + cfa_offset
    uint32_t cfa_offset;
    bool bp_saved;       // rbp saved at CFA - bp_below
    uint32_t bp_below;
};
bool rules_for(uintptr_t pc, rules *out) __attribute__((visibility("hidden")));

}  // namespace mallochooks::heapindex::unwind

#endif
