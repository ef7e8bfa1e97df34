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

#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <string.h>

#include <atomic>

namespace mallochooks::heapindex::unwind {

namespace {

// Pointer encodings (DW_EH_PE_*).
constexpr uint8_t pe_omit = 0xff, pe_absptr = 0x00, pe_uleb128 = 0x01, pe_udata2 = 0x02, pe_udata4 = 0x03,
                  pe_udata8 = 0x04, pe_sleb128 = 0x09, pe_sdata2 = 0x0a, pe_sdata4 = 0x0b, pe_sdata8 = 0x0c,
                  pe_pcrel = 0x10, pe_datarel = 0x30, pe_indirect = 0x80;

// A bounds-checked reader: a malformed table ends the lookup instead of reading wild memory.
struct reader {
    const uint8_t *p, *end;
    bool ok = true;

    bool has(size_t n) {
        if (!ok || static_cast<size_t>(end - p) < n) ok = false;
        return ok;
    }
    template <class T> T fixed() {
        T v{};
        if (has(sizeof v)) {
            memcpy(&v, p, sizeof v);
            p += sizeof v;
        }
        return v;
    }
    uint8_t byte() { return fixed<uint8_t>(); }
    uint64_t uleb() {
        uint64_t v = 0;
        for (unsigned shift = 0; has(1); shift += 7) {
            uint8_t b = *p++;
            if (shift < 64) v |= static_cast<uint64_t>(b & 0x7f) << shift;
            if ((b & 0x80) == 0) return v;
        }
        return 0;
    }
    int64_t sleb() {
        int64_t v = 0;
        unsigned shift = 0;
        for (uint8_t b = 0x80; (b & 0x80) != 0 && has(1); shift += 7) {
            b = *p++;
            if (shift < 64) v |= static_cast<int64_t>(b & 0x7f) << shift;
            if ((b & 0x80) == 0 && shift + 7 < 64 && (b & 0x40) != 0) v |= -(static_cast<int64_t>(1) << (shift + 7));
        }
        return v;
    }
    uintptr_t pointer(uint8_t enc, uintptr_t data = 0) {
        if (enc == pe_omit) return 0;
        const uintptr_t here = reinterpret_cast<uintptr_t>(p);
        uintptr_t v;
        switch (enc & 0x0f) {
        case pe_absptr: v = fixed<uintptr_t>(); break;
        case pe_uleb128: v = uleb(); break;
        case pe_udata2: v = fixed<uint16_t>(); break;
        case pe_udata4: v = fixed<uint32_t>(); break;
        case pe_udata8: v = fixed<uint64_t>(); break;
        case pe_sleb128: v = static_cast<uintptr_t>(sleb()); break;
        case pe_sdata2: v = static_cast<uintptr_t>(static_cast<intptr_t>(fixed<int16_t>())); break;
        case pe_sdata4: v = static_cast<uintptr_t>(static_cast<intptr_t>(fixed<int32_t>())); break;
        case pe_sdata8: v = static_cast<uintptr_t>(fixed<int64_t>()); break;
        default: ok = false; return 0;
        }
        switch (enc & 0x70) {
        case 0: break;
        case pe_pcrel: v += here; break;
        case pe_datarel: v += data; break;
        default: ok = false; return 0;
        }
        if ((enc & pe_indirect) != 0 && v != 0) v = *reinterpret_cast<const uintptr_t *>(v);
        return v;
    }
};

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

struct cie_info {
    uint64_t code_align = 1;
    int64_t data_align = 1;
    uint64_t ra_register = 16;
    uint8_t fde_enc = pe_absptr;
    bool has_augmentation_data = false;
    bool signal_frame = false;
    const uint8_t *instructions = nullptr, *end = nullptr;
};

struct row {
    unsigned cfa_register = 0;
    intptr_t cfa_offset = 0;
    bool cfa_ok = false;
    bool ra_saved = false;
    intptr_t ra_offset = 0;
    bool bp_saved = false;
    intptr_t bp_offset = 0;
};

constexpr uint64_t dwarf_rbp = 6;

void saved_at(row &state, const cie_info &cie, uint64_t reg, int64_t offset) {
    if (reg == cie.ra_register) state.ra_saved = true, state.ra_offset = offset;
    if (reg == dwarf_rbp) state.bp_saved = true, state.bp_offset = offset;
}

void restored(row &state, const row &initial, const cie_info &cie, uint64_t reg) {
    if (reg == cie.ra_register) state.ra_saved = initial.ra_saved, state.ra_offset = initial.ra_offset;
    if (reg == dwarf_rbp) state.bp_saved = initial.bp_saved, state.bp_offset = initial.bp_offset;
}

bool parse_cie(const uint8_t *cie, cie_info &out) {
    reader r{cie, cie + 4};
    const uint64_t length = r.fixed<uint32_t>();
    if (length == 0 || length == 0xffffffff) return false;
    r.end = r.p + length;
    if (r.fixed<uint32_t>() != 0) return false;  // CIE id
    const uint8_t version = r.byte();
    const char *aug = reinterpret_cast<const char *>(r.p);
    while (r.has(1) && *r.p != 0) ++r.p;
    r.byte();
    if (aug[0] == 'e' && aug[1] == 'h') r.fixed<uintptr_t>();
    out.code_align = r.uleb();
    out.data_align = r.sleb();
    out.ra_register = version == 1 ? r.byte() : r.uleb();
    const uint8_t *aug_end = nullptr;
    bool rest_skipped = false;
    for (const char *a = aug; *a != '\0' && r.ok && !rest_skipped; ++a) {
        switch (*a) {
        case 'z': {
            const uint64_t n = r.uleb();
            aug_end = r.p + n;
            out.has_augmentation_data = true;
            break;
        }
        case 'R': out.fde_enc = r.byte(); break;
        case 'L': r.byte(); break;
        case 'P': r.pointer(r.byte()); break;
        case 'S': out.signal_frame = true; break;
        case 'B': case 'e': case 'h': break;
        default:
            if (aug_end == nullptr) return false;
            rest_skipped = true;
            break;
        }
    }
    if (aug_end != nullptr) r.p = aug_end;
    out.instructions = r.p;
    out.end = r.end;
    return r.ok;
}

bool run(reader r, const cie_info &cie, uintptr_t loc, uintptr_t pc, row &state, const row &initial) {
    row stack[8];
    unsigned depth = 0;
    while (r.ok && r.p < r.end) {
        const uint8_t op = r.byte();
        const uint8_t high = op & 0xc0, low = op & 0x3f;
        if (high == 0x40) {  // advance_loc
            loc += low * cie.code_align;
            if (loc > pc) return true;
            continue;
        }
        if (high == 0x80) {  // offset
            saved_at(state, cie, low, static_cast<int64_t>(r.uleb()) * cie.data_align);
            continue;
        }
        if (high == 0xc0) {  // restore
            restored(state, initial, cie, low);
            continue;
        }
        switch (op) {
        case 0x00: break;
        case 0x01: loc = r.pointer(cie.fde_enc); if (loc > pc) return true; break;
        case 0x02: loc += r.byte() * cie.code_align; if (loc > pc) return true; break;
        case 0x03: loc += r.fixed<uint16_t>() * cie.code_align; if (loc > pc) return true; break;
        case 0x04: loc += r.fixed<uint32_t>() * cie.code_align; if (loc > pc) return true; break;
        case 0x05: {
            const uint64_t reg = r.uleb();
            saved_at(state, cie, reg, static_cast<int64_t>(r.uleb()) * cie.data_align);
            break;
        }
        case 0x06: case 0x07: case 0x08: {  // restore_extended, undefined, same_value
            const uint64_t reg = r.uleb();
            if (op == 0x06) restored(state, initial, cie, reg);
            else if (reg == cie.ra_register) return false;  // the outermost frame (_start)
            else if (reg == dwarf_rbp) state.bp_saved = false;
            break;
        }
        case 0x09: {
            const uint64_t reg = r.uleb();
            r.uleb();
            if (reg == cie.ra_register || reg == dwarf_rbp) return false;
            break;
        }
        case 0x0a: if (depth == 8) return false; stack[depth++] = state; break;
        case 0x0b: if (depth == 0) return false; state = stack[--depth]; break;
        case 0x0c: state.cfa_register = static_cast<unsigned>(r.uleb()); state.cfa_offset = static_cast<intptr_t>(r.uleb()); state.cfa_ok = true; break;
        case 0x0d: state.cfa_register = static_cast<unsigned>(r.uleb()); break;
        case 0x0e: state.cfa_offset = static_cast<intptr_t>(r.uleb()); break;
        case 0x0f: state.cfa_ok = false; { const uint64_t n = r.uleb(); if (r.has(n)) r.p += n; } break;
        case 0x10: case 0x16: {
            const uint64_t reg = r.uleb();
            const uint64_t n = r.uleb();
            if (r.has(n)) r.p += n;
            if (reg == cie.ra_register || reg == dwarf_rbp) return false;
            break;
        }
        case 0x11: {
            const uint64_t reg = r.uleb();
            saved_at(state, cie, reg, r.sleb() * cie.data_align);
            break;
        }
        case 0x12: state.cfa_register = static_cast<unsigned>(r.uleb()); state.cfa_offset = static_cast<intptr_t>(r.sleb() * cie.data_align); state.cfa_ok = true; break;
        case 0x13: state.cfa_offset = static_cast<intptr_t>(r.sleb() * cie.data_align); break;
        case 0x14: case 0x15: {
            const uint64_t reg = r.uleb();
            if (op == 0x14) r.uleb(); else r.sleb();
            if (reg == cie.ra_register || reg == dwarf_rbp) return false;
            break;
        }
        case 0x2e: r.uleb(); break;
        case 0x2f: {
            const uint64_t reg = r.uleb();
            saved_at(state, cie, reg, -static_cast<int64_t>(r.uleb()) * cie.data_align);
            break;
        }
        default: return false;
        }
    }
    return r.ok;
}

// The rules at a return address, interpreted from the tables.
bool interpret(uintptr_t return_address, rules *out) {
    // A return address points after the call; the call itself is what the row must cover.
    const uintptr_t pc = return_address - 1;
    const uint8_t *fde = find_fde(pc);
    if (fde == nullptr) return false;
    reader r{fde, fde + 8};
    const uint32_t length = r.fixed<uint32_t>();
    if (length == 0 || length == 0xffffffff) return false;
    r.end = r.p + length;
    const uint8_t *cie_id_at = r.p;
    const uint32_t cie_offset = r.fixed<uint32_t>();
    cie_info cie;
    if (!r.ok || !parse_cie(cie_id_at - cie_offset, cie) || cie.signal_frame) return false;
    const uintptr_t begin = r.pointer(cie.fde_enc);
    const uintptr_t range = r.pointer(cie.fde_enc & 0x0f);
    if (!r.ok || pc < begin || pc >= begin + range) return false;
    if (cie.has_augmentation_data) {
        const uint64_t n = r.uleb();
        if (!r.has(n)) return false;
        r.p += n;
    }
    row initial;
    if (!run(reader{cie.instructions, cie.end}, cie, begin, pc, initial, initial)) return false;
    row state = initial;
    if (!run(r, cie, begin, pc, state, initial) || !state.cfa_ok || !state.ra_saved) return false;
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

__attribute__((noinline)) unsigned capture(uintptr_t *out, unsigned max, const void *caller, memo *m, bool *unchanged) {
    if (__builtin_expect(__atomic_load_n(&own_start, __ATOMIC_ACQUIRE) == 0, 0)) find_own();
    // This function's frame record (frame pointers: index/meson.build): the caller's rbp, the return
    // address, and the caller's stack pointer after the return.
    const uintptr_t *fp = static_cast<const uintptr_t *>(__builtin_frame_address(0));
    uintptr_t bp = fp[0], pc = fp[1], sp = reinterpret_cast<uintptr_t>(fp + 2);
    *unchanged = false;
    if (m != nullptr && m->valid && m->pc0 == pc && m->sp0 == sp && m->caller == caller && m->max == max) {
        unsigned i = 0;
        while (i < m->steps && *reinterpret_cast<const uintptr_t *>(m->cfa[i] - 8) == m->next_pc[i]) ++i;
        if (i == m->steps) {
            *unchanged = true;
            return m->kept;
        }
    }
    if (m != nullptr) m->pc0 = pc, m->sp0 = sp, m->caller = caller, m->max = max;
    // A few frames more than asked for, so that the stack can start at `caller` when it is among them.
    constexpr unsigned lookahead = 8;
    uintptr_t frames[max_frames + lookahead];
    const unsigned limit = (max < max_frames ? max : max_frames) + lookahead;
    unsigned n = 0, steps = 0;
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
        rsp_only &= !from_bp;
        if (m != nullptr && steps < memo::max_steps) m->cfa[steps] = cfa, m->next_pc[steps] = pc;
        ++steps;
    }
    unsigned first = 0;
    for (unsigned i = 0; i < n && i < lookahead; ++i)
        if (frames[i] == reinterpret_cast<uintptr_t>(caller)) {
            first = i;
            break;
        }
    const unsigned kept = n - first < max ? n - first : max;
    memcpy(out, frames + first, kept * sizeof *out);
    if (m != nullptr) {
        m->steps = steps;
        m->kept = kept;
        m->valid = rsp_only && steps <= memo::max_steps;
    }
    return kept;
}

}  // namespace mallochooks::heapindex::unwind
