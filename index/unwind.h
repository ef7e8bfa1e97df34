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

// A thread's remembered walk, to recognise the same stack again without unwinding it.  The unwinder is
// a function of the starting pc and stack pointer and of the return-address slots it reads (and of rbp,
// but only through rbp-based frames): when the walk started at the same pc and stack pointer, had no
// rbp-based frame, and every return-address slot it read still holds what it read, the walk would
// give the same stack.  Checking that is one load and one compare per frame, instead of a rules lookup.
// A walk's depth (`max`) is not part of it: a thread's walks are all of one depth (HEAPINDEX_STACKS).
struct memo {
    static constexpr unsigned max_steps = max_frames + 8 + 32;  // + lookahead + this library's own frames
    const void *caller;
    unsigned steps, kept;  // steps: at least 1, padded to a multiple of 4 (reads of a word that never changes)
    struct slot_read {
        uintptr_t slot;  // step i read the return address at this address (its CFA - 8) ...
        uintptr_t pc;    // ... and found this
    } reads[max_steps];  // reads[0].slot == 0: nothing remembered (no CFA is 8), written last
    bool valid() const { return reads[0].slot != 0; }
};

// A few remembered walks that share a key (the caller's choice: allocation site and depth), so that
// stacks taking turns at one key (a program that allocates through one wrapper, perl's
// Perl_safesysmalloc, from a few places at the same depth) are each found again.  The way that matched
// after the last match's way the last time is checked first (a cycle of stacks is then found at the
// first try), each way until its first group of slots that differs; a new walk replaces the oldest.
// `stack` is the caller's: what it made of each way's walk (a stack id).
struct memo_set {
    static constexpr unsigned ways = 4;
    memo way[ways];
    uint32_t stack[ways];
    uint8_t next[ways];  // next[w]: the way that matched (or was filled) right after way w, last time
    uint8_t last, oldest;
    void invalidate() {  // (a way never used stays untouched: its page of the thread's block stays unmapped)
        for (memo &m : way)
            if (m.valid()) m.reads[0].slot = 0;
    }
};

// Up to `max` frames of the current stack into `out` (see above), from capture's caller out.  With a
// memo set (the thread's own, never shared), the walk is remembered in its oldest way, *way, from the
// frame of this library whose CFA is `from` out (same_walk's check starts there; 0: capture's caller).
// The frames of this library between capture and that one (a slow path's own) are walked, not remembered.
unsigned capture(uintptr_t *out, unsigned max, const void *caller, memo_set *s, unsigned *way, uintptr_t from = 0)
    __attribute__((visibility("hidden")));
inline unsigned capture(uintptr_t *out, unsigned max, const void *caller) {
    unsigned way;
    return capture(out, max, caller, nullptr, &way);
}

// Does way `c` give the stack of the function whose CFA is `cfa` (__builtin_dwarf_cfa()), a function of
// this library whose CFA was capture's `from` (or that called capture itself)?  The walk's first read is
// the return-address slot of that frame (its CFA - 8), and everything after it depends only on that CFA
// and the slots read (the frame is this library's, so its own pc is not part of the stack): the same
// first slot means the same frame to walk from, whichever of this library's functions did the walk.
// Then every slot, four at a time (steps are padded), stopping at the first group that differs.
inline bool same_walk(const memo &c, uintptr_t cfa, const void *caller) {
    if (((c.reads[0].slot != cfa - 8) | (c.caller != caller)) != 0) return false;  // (an invalid way's slot is 0)
    const memo::slot_read *st = c.reads, *end = st + c.steps;
    do {  // (a valid way has at least 4 steps)
        if (((*reinterpret_cast<const uintptr_t *>(st[0].slot) ^ st[0].pc) | (*reinterpret_cast<const uintptr_t *>(st[1].slot) ^ st[1].pc) |
             (*reinterpret_cast<const uintptr_t *>(st[2].slot) ^ st[2].pc) | (*reinterpret_cast<const uintptr_t *>(st[3].slot) ^ st[3].pc)) != 0)
            return false;
        st += 4;
    } while (st != end);
    return true;
}

// The way of `s` whose walk gives the current stack (see same_walk), or -1: first the way that matched
// after the last match's way last time (stacks that take turns at one key usually come in a cycle), then
// the others.  A way that parts from this stack early (ways that share a key usually part a few frames
// out, past this library's frames and the allocation wrapper's) costs a few compares, a matching one
// about five instructions a frame.  Inline in the function that calls capture, with its CFA: no call, no
// frame of capture's to walk through.
int remembered_other(memo_set *s, uintptr_t cfa, const void *caller) __attribute__((visibility("hidden")));
inline int remembered(memo_set *s, uintptr_t cfa, const void *caller) {
    const unsigned j = s->next[s->last];
    if (__builtin_expect(!same_walk(s->way[j], cfa, caller), 0)) return remembered_other(s, cfa, caller);
    s->last = uint8_t(j);
    return int(j);
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
