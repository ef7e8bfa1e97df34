// SPDX-License-Identifier: MIT
// Reading x86-64 call-frame information (.eh_frame, .eh_frame_hdr) without allocating: the pointer
// encodings, a bounds-checked reader, CIE parsing and a minimal call-frame interpreter that tracks the
// CFA, the return address and rbp.  Shared by the link-time hooks' one-frame unwinder
// (backends/linktime/one_frame_unwind.cc, which reads only its own output's table) and the heap index's
// allocation-stack unwinder (index/unwind.cc, any loaded object).  Formats: the LSB's "Exception Frame"
// chapter (CIE/FDE, augmentations, pointer encodings) and DWARF 4 section 6.4 (call frame instructions).
// Header-only: every function is inline, in each user's own (hidden) copy.
#ifndef MALLOCHOOKS_CALL_FRAME_H
#define MALLOCHOOKS_CALL_FRAME_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

namespace mallochooks::call_frame {

// Pointer encodings (DW_EH_PE_*).
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
    // An encoded pointer; `data` is the base of datarel encodings (the .eh_frame_hdr).
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

struct cie_info {
    uint64_t code_align = 1;
    int64_t data_align = 1;
    uint64_t ra_register = 16;
    uint8_t fde_enc = pe_absptr;
    bool has_augmentation_data = false;
    bool signal_frame = false;  // 'S': the frame of a signal handler's caller (the unwinder stops there)
    const uint8_t *instructions = nullptr, *end = nullptr;
};

struct row {
    unsigned cfa_register = 0;
    intptr_t cfa_offset = 0;
    bool cfa_ok = false;
    bool ra_saved = false;
    intptr_t ra_offset = 0;
    bool bp_saved = false;  // rbp saved at CFA + bp_offset (else it keeps its value)
    intptr_t bp_offset = 0;
};

constexpr uint64_t dwarf_rbp = 6;

// A register saved at CFA + offset: the return address or rbp.
inline void saved_at(row &state, const cie_info &cie, uint64_t reg, int64_t offset) {
    if (reg == cie.ra_register) state.ra_saved = true, state.ra_offset = offset;
    if (reg == dwarf_rbp) state.bp_saved = true, state.bp_offset = offset;
}

// A register back to its rule in the CIE's initial row.
inline void restored(row &state, const row &initial, const cie_info &cie, uint64_t reg) {
    if (reg == cie.ra_register) state.ra_saved = initial.ra_saved, state.ra_offset = initial.ra_offset;
    if (reg == dwarf_rbp) state.bp_saved = initial.bp_saved, state.bp_offset = initial.bp_offset;
}

inline bool parse_cie(const uint8_t *cie, cie_info &out) noexcept {
    reader r{cie, cie + 4};
    uint64_t length = r.fixed<uint32_t>();
    if (length == 0 || length == 0xffffffff) return false;  // 64-bit .eh_frame does not occur on x86-64 ELF
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
    bool rest_skipped = false;  // an unknown letter: the rest of the data is skipped by its length
    for (const char *a = aug; *a != '\0' && r.ok && !rest_skipped; ++a) {
        switch (*a) {
        case 'z': {
            uint64_t n = r.uleb();
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
            if (aug_end == nullptr) return false;  // unknown, and no length to skip it by
            rest_skipped = true;
            break;
        }
    }
    if (aug_end != nullptr) r.p = aug_end;
    out.instructions = r.p;
    out.end = r.end;
    return r.ok;
}

// Runs CFA instructions from `p` to `end` while the location stays <= pc.  The initial row of the CIE is
// `initial` (restore refers to it).
inline bool run(reader r, const cie_info &cie, uintptr_t loc, uintptr_t pc, row &state, const row &initial) noexcept {
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
        case 0x00: break;  // nop
        case 0x01: loc = r.pointer(cie.fde_enc); if (loc > pc) return true; break;
        case 0x02: loc += r.byte() * cie.code_align; if (loc > pc) return true; break;
        case 0x03: loc += r.fixed<uint16_t>() * cie.code_align; if (loc > pc) return true; break;
        case 0x04: loc += r.fixed<uint32_t>() * cie.code_align; if (loc > pc) return true; break;
        case 0x05: {  // offset_extended
            uint64_t reg = r.uleb();
            saved_at(state, cie, reg, static_cast<int64_t>(r.uleb()) * cie.data_align);
            break;
        }
        case 0x06: case 0x07: case 0x08: {  // restore_extended, undefined, same_value
            uint64_t reg = r.uleb();
            if (op == 0x06) restored(state, initial, cie, reg);
            else if (reg == cie.ra_register) return false;  // the return address is not on the stack
            else if (reg == dwarf_rbp) state.bp_saved = false;
            break;
        }
        case 0x09: {  // register
            uint64_t reg = r.uleb();
            r.uleb();
            if (reg == cie.ra_register || reg == dwarf_rbp) return false;
            break;
        }
        case 0x0a: if (depth == 8) return false; stack[depth++] = state; break;  // remember_state
        case 0x0b: if (depth == 0) return false; state = stack[--depth]; break;  // restore_state
        case 0x0c: state.cfa_register = static_cast<unsigned>(r.uleb()); state.cfa_offset = static_cast<intptr_t>(r.uleb()); state.cfa_ok = true; break;
        case 0x0d: state.cfa_register = static_cast<unsigned>(r.uleb()); break;
        case 0x0e: state.cfa_offset = static_cast<intptr_t>(r.uleb()); break;
        case 0x0f: state.cfa_ok = false; { uint64_t n = r.uleb(); if (r.has(n)) r.p += n; } break;  // def_cfa_expression
        case 0x10: case 0x16: {  // expression, val_expression: fine unless it is the return address or rbp
            uint64_t reg = r.uleb();
            uint64_t n = r.uleb();
            if (r.has(n)) r.p += n;
            if (reg == cie.ra_register || reg == dwarf_rbp) return false;
            break;
        }
        case 0x11: {  // offset_extended_sf
            uint64_t reg = r.uleb();
            saved_at(state, cie, reg, r.sleb() * cie.data_align);
            break;
        }
        case 0x12: state.cfa_register = static_cast<unsigned>(r.uleb()); state.cfa_offset = static_cast<intptr_t>(r.sleb() * cie.data_align); state.cfa_ok = true; break;
        case 0x13: state.cfa_offset = static_cast<intptr_t>(r.sleb() * cie.data_align); break;
        case 0x14: case 0x15: {  // val_offset(_sf)
            uint64_t reg = r.uleb();
            if (op == 0x14) r.uleb(); else r.sleb();
            if (reg == cie.ra_register || reg == dwarf_rbp) return false;
            break;
        }
        case 0x2e: r.uleb(); break;  // GNU_args_size
        case 0x2f: {  // GNU_negative_offset_extended
            uint64_t reg = r.uleb();
            saved_at(state, cie, reg, -static_cast<int64_t>(r.uleb()) * cie.data_align);
            break;
        }
        default: return false;
        }
    }
    return r.ok;
}

// The row of the FDE at `fde` for pc (inside the FDE's range): its CIE's initial instructions, then its own,
// up to pc.  False if the FDE or its CIE is malformed, pc is outside it, or the CFA or the return address
// has no rule the row can hold.  *signal_frame (if asked) says whether the CIE marks a signal frame.
inline bool row_at(const uint8_t *fde, uintptr_t pc, row &state, bool *signal_frame) noexcept {
    reader r{fde, fde + 8};
    const uint32_t length = r.fixed<uint32_t>();
    if (length == 0 || length == 0xffffffff) return false;
    r.end = r.p + length;
    const uint8_t *cie_id_at = r.p;
    const uint32_t cie_offset = r.fixed<uint32_t>();
    cie_info cie;
    if (!r.ok || !parse_cie(cie_id_at - cie_offset, cie)) return false;
    const uintptr_t begin = r.pointer(cie.fde_enc);
    const uintptr_t range = r.pointer(cie.fde_enc & 0x0f);
    if (!r.ok || pc < begin || pc >= begin + range) return false;
    if (cie.has_augmentation_data) {
        uint64_t n = r.uleb();
        if (!r.has(n)) return false;
        r.p += n;
    }
    row initial;
    if (!run(reader{cie.instructions, cie.end}, cie, begin, pc, initial, initial)) return false;
    state = initial;
    if (!run(r, cie, begin, pc, state, initial) || !state.cfa_ok || !state.ra_saved) return false;
    if (signal_frame != nullptr) *signal_frame = cie.signal_frame;
    return true;
}

}  // namespace mallochooks::call_frame

#endif
