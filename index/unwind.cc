// SPDX-License-Identifier: MIT
// The allocation-stack unwinder (see unwind.h): _dl_find_object for the object and its .eh_frame_hdr, a
// binary search for the FDE, a minimal call-frame interpreter, and a global cache of packed rules.
// Formats: the LSB's "Exception Frame" chapter (CIE/FDE, augmentations, pointer encodings) and DWARF 4
// section 6.4 (call frame instructions).  The interpreter is the one of libmallochooks'
// one_frame_unwind.cc (which reads only its own output's table), generalised to any loaded object.
//
// This file is compiled with frame pointers (index/meson.build): capture() starts from its own frame
// record (saved rbp, return address), the one frame whose layout is known without tables; its callers in
// this library have unwind tables (-fasynchronous-unwind-tables on heapindex.cc).
#include "index/unwind.h"

#include "libmallochooks/call_frame.h"

#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <string.h>

#include <atomic>

namespace mallochooks::heapindex::unwind {

namespace {

using namespace ::mallochooks::call_frame;

// The FDE covering pc, through the object's .eh_frame_hdr binary-search table.
const uint8_t *find_fde(uintptr_t pc) {
    dl_find_object found;
    if (_dl_find_object(reinterpret_cast<void *>(pc), &found) != 0 || found.dlfo_eh_frame == nullptr) return nullptr;
    const uint8_t *hdr = static_cast<const uint8_t *>(found.dlfo_eh_frame);
    reader r{hdr, hdr + 4};
    if (r.byte() != 1) return nullptr;
    const uint8_t frame_enc = r.byte(), count_enc = r.byte(), table_enc = r.byte();
    const uintptr_t data = reinterpret_cast<uintptr_t>(hdr);
    r.end = hdr + 4 + 16;  // the two encoded pointers (at most 8 bytes each)
    r.pointer(frame_enc, data);
    const uintptr_t count = r.pointer(count_enc, data);
    // Only the usual table (datarel sdata4 pairs) allows the binary search.
    if (!r.ok || table_enc != (pe_datarel | pe_sdata4) || count == 0 || count > (uintptr_t{1} << 28)) return nullptr;
    const auto *table = reinterpret_cast<const int32_t *>(r.p);
    size_t first = 0, last = count;  // the entry to use is the last with initial_loc <= pc
    while (last - first > 1) {
        const size_t mid = first + (last - first) / 2;
        if (data + static_cast<intptr_t>(table[2 * mid]) <= pc) first = mid;
        else last = mid;
    }
    if (data + static_cast<intptr_t>(table[2 * first]) > pc) return nullptr;
    return reinterpret_cast<const uint8_t *>(data + static_cast<intptr_t>(table[2 * first + 1]));
}


// The rules at a return address, interpreted from the tables.
bool interpret(uintptr_t return_address, rules *out) {
    // A return address points after the call; the call itself is what the row must cover.
    const uintptr_t pc = return_address - 1;
    const uint8_t *fde = find_fde(pc);
    if (fde == nullptr) return false;
    row state;
    bool signal_frame;
    if (!row_at(fde, pc, state, &signal_frame) || signal_frame) return false;
    // What the cache can hold (and what x86-64 code has): CFA = rsp or rbp + a positive multiple of 8
    // below 128 KiB, the return address right below the CFA, rbp (if saved) at most 1 KiB below it.
    if ((state.cfa_register != 7 && state.cfa_register != 6) || state.cfa_offset <= 0 || (state.cfa_offset & 7) != 0 ||
        state.cfa_offset >= (intptr_t{1} << 17) || state.ra_offset != -8)
        return false;
    if (state.bp_saved && (state.bp_offset >= 0 || (state.bp_offset & 7) != 0 || state.bp_offset < -1016)) return false;
    *out = {state.cfa_register == 6, uint32_t(state.cfa_offset), state.bp_saved,
            state.bp_saved ? uint32_t(-state.bp_offset) : 0u};
    return true;
}

// The cache: 16384 words, direct-mapped by the pc's low bits.  A word packs the rest of the pc (the tag,
// bits 63..31), then rbp-based CFA (30), CFA offset / 8 (29..16), rbp saved (15), its distance below the
// CFA / 8 (14..8), "cannot unwind" (1) and "valid" (0).  One 64-bit store publishes an entry, one load reads it: racing
// writers of one slot leave one whole entry or the other.
constexpr unsigned cache_bits = 14;
std::atomic<uint64_t> cache[1u << cache_bits];

uint64_t pack(uintptr_t pc, const rules &r) {
    return (uint64_t(pc >> cache_bits) << 31) | (uint64_t(r.cfa_is_rbp) << 30) | (uint64_t(r.cfa_offset >> 3) << 16) |
           (uint64_t(r.bp_saved) << 15) | (uint64_t(r.bp_below >> 3) << 8) | 1;
}

constexpr uint64_t valid = 1, cannot_unwind = 2;

// A cache miss: interpret the tables and store the packed answer ("cannot unwind" included: every stack
// ends at such a frame, the outermost one).
__attribute__((noinline)) uint64_t miss(uintptr_t pc) {
    rules r;
    const uint64_t w = interpret(pc, &r) ? pack(pc, r) : (uint64_t(pc >> cache_bits) << 31) | cannot_unwind | valid;
    cache[pc & ((1u << cache_bits) - 1)].store(w, std::memory_order_relaxed);
    return w;
}

inline uint64_t rules_word(uintptr_t pc) {
    const uint64_t w = cache[pc & ((1u << cache_bits) - 1)].load(std::memory_order_relaxed);
    return __builtin_expect((w >> 31) == (pc >> cache_bits) && (w & valid), 1) ? w : miss(pc);
}

// What a remembered walk's padding reads (capture).
constexpr uintptr_t no_change = 0x6e6f2063686e6765;

// This library's own mapping: frames in it are the hooks', not the program's.
uintptr_t own_start, own_end;

void find_own() {
    dl_find_object found;
    if (_dl_find_object(reinterpret_cast<void *>(&find_own), &found) == 0) {
        own_end = reinterpret_cast<uintptr_t>(found.dlfo_map_end);
        __atomic_store_n(&own_start, reinterpret_cast<uintptr_t>(found.dlfo_map_start), __ATOMIC_RELEASE);
    }
}

}  // namespace

bool rules_for(uintptr_t pc, rules *out) {
    const uint64_t w = rules_word(pc);
    if (w & cannot_unwind) return false;
    *out = {bool((w >> 30) & 1), uint32_t(((w >> 16) & 0x3fff) << 3), bool((w >> 15) & 1), uint32_t(((w >> 8) & 0x7f) << 3)};
    return true;
}

namespace {

// The walk itself, from the frame whose return address is pc, stack pointer sp and rbp bp (capture's
// caller's), remembered in m when not null from the step whose CFA is `from` on (the frames below it are
// this library's: same_walk checks from that frame's CFA).
__attribute__((noinline)) unsigned walk(uintptr_t bp, uintptr_t pc, uintptr_t sp, uintptr_t *out, unsigned max,
                                        const void *caller, memo *m, uintptr_t from) {
    // A few frames more than asked for, so that the stack can start at `caller` when it is among them.
    constexpr unsigned lookahead = 8;
    uintptr_t frames[max_frames + lookahead];
    const unsigned limit = (max < max_frames ? max : max_frames) + lookahead;
    unsigned n = 0, steps = 0;
    memo::slot_read first{0, 0};
    bool rsp_only = true;
    const uintptr_t lo = own_start, hi = own_end;
    while (pc != 0 && n < limit) {
        if (pc - lo >= hi - lo) frames[n++] = pc;  // outside this library
        // The packed rules, decoded in registers (see pack): CFA = (rbp or rsp) + offset, the return
        // address right below it, rbp saved bp_below below it.
        const uint64_t w = rules_word(pc);
        if (w & cannot_unwind) break;
        const bool from_bp = (w >> 30) & 1;
        const uintptr_t cfa = (from_bp ? bp : sp) + ((w >> 13) & (uint64_t{0x3fff} << 3));
        if (cfa - sp - 1 >= (uintptr_t{16} << 20)) break;  // the stack pointer grows, by at most 16 MiB
        pc = *reinterpret_cast<const uintptr_t *>(cfa - 8);
        if (w & (uint64_t{1} << 15)) bp = *reinterpret_cast<const uintptr_t *>(cfa - ((w >> 5) & (uint64_t{0x7f} << 3)));
        sp = cfa;
        if (cfa < from) continue;  // a frame of this library's below the one the check starts from
        rsp_only &= !from_bp;
        if (steps == 0) first = {cfa - 8, pc};  // written last (below)
        else if (m != nullptr && steps < memo::max_steps) m->reads[steps] = {cfa - 8, pc};
        ++steps;
    }
    unsigned start = 0;
    for (unsigned i = 0; i < n && i < lookahead; ++i)
        if (frames[i] == reinterpret_cast<uintptr_t>(caller)) {
            start = i;
            break;
        }
    const unsigned kept = n - start < max ? n - start : max;
    memcpy(out, frames + start, kept * sizeof *out);
    // A walk worth remembering (no rbp-based frame, at least the caller's own step, not too deep) is
    // padded to a multiple of 4 steps with reads of a word that never changes, for same_walk; its first
    // read is written last (a signal handler's walk into the same way in between leaves it invalid or
    // whole: capture made it invalid first).
    if (m != nullptr && rsp_only && steps != 0 && steps <= memo::max_steps) {
        for (; steps % 4 != 0; ++steps) m->reads[steps] = {reinterpret_cast<uintptr_t>(&no_change), no_change};
        m->caller = caller;
        m->steps = steps;
        m->kept = kept;
        m->reads[0].pc = first.pc;
        __atomic_signal_fence(__ATOMIC_SEQ_CST);
        m->reads[0].slot = first.slot;
    }
    return kept;
}

}  // namespace

int remembered_other(memo_set *s, uintptr_t cfa, const void *caller) {
    const unsigned predicted = s->next[s->last];
    for (unsigned k = 1; k < memo_set::ways; ++k) {
        const unsigned j = (predicted + k) & (memo_set::ways - 1);
        if (!same_walk(s->way[j], cfa, caller)) continue;
        s->next[s->last] = uint8_t(j);
        s->last = uint8_t(j);
        return int(j);
    }
    return -1;
}

__attribute__((noinline)) unsigned capture(uintptr_t *out, unsigned max, const void *caller, memo_set *s, unsigned *way,
                                           uintptr_t from) {
    if (__builtin_expect(__atomic_load_n(&own_start, __ATOMIC_ACQUIRE) == 0, 0)) find_own();
    // This function's frame record (frame pointers: index/meson.build): the caller's rbp, the return
    // address, and the caller's stack pointer after the return.
    const uintptr_t *fp = static_cast<const uintptr_t *>(__builtin_frame_address(0));
    const uintptr_t bp = fp[0], pc = fp[1], sp = reinterpret_cast<uintptr_t>(fp + 2);
    if (s == nullptr) return walk(bp, pc, sp, out, max, caller, nullptr, 0);
    // The walk replaces the oldest way, and is the one expected after the last one.
    const unsigned j = s->oldest;
    s->oldest = uint8_t((j + 1) & (memo_set::ways - 1));
    s->next[s->last] = uint8_t(j);
    s->last = uint8_t(j);
    *way = j;
    s->way[j].reads[0].slot = 0;  // invalid while it is written
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    return walk(bp, pc, sp, out, max, caller, &s->way[j], from);
}

}  // namespace mallochooks::heapindex::unwind
