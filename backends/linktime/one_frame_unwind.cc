// SPDX-License-Identifier: MIT
// The one-frame unwinder (see one_frame_unwind.h): .eh_frame_hdr lookup and a minimal CFA interpreter.
// Formats: the LSB's "Exception Frame" chapter (CIE/FDE, augmentation "zR"/"zPLR", pointer encodings)
// and DWARF 4 section 6.4 (call frame instructions).
#include "backends/linktime/one_frame_unwind.h"

#include "libmallochooks/call_frame.h"

#include <elf.h>
#include <link.h>
#include <string.h>

extern "C" const ElfW(Ehdr) __ehdr_start __attribute__((visibility("hidden")));

namespace mallochooks::unwind {

namespace {

using namespace ::mallochooks::call_frame;

// The .eh_frame_hdr of the output this file is linked into, found through its own program headers.
const uint8_t *own_eh_frame_hdr(size_t &size, uintptr_t &text_lo, uintptr_t &text_hi) noexcept {
    const auto *ehdr = &__ehdr_start;
    const auto *phdr = reinterpret_cast<const ElfW(Phdr) *>(reinterpret_cast<const char *>(ehdr) + ehdr->e_phoff);
    // The load bias: __ehdr_start is the first byte of the first PT_LOAD (offset 0).
    uintptr_t bias = 0;
    for (unsigned i = 0; i < ehdr->e_phnum; ++i)
        if (phdr[i].p_type == PT_LOAD && phdr[i].p_offset == 0) {
            bias = reinterpret_cast<uintptr_t>(ehdr) - phdr[i].p_vaddr;
            break;
        }
    const uint8_t *hdr = nullptr;
    text_lo = UINTPTR_MAX;
    text_hi = 0;
    for (unsigned i = 0; i < ehdr->e_phnum; ++i) {
        if (phdr[i].p_type == PT_GNU_EH_FRAME) {
            hdr = reinterpret_cast<const uint8_t *>(bias + phdr[i].p_vaddr);
            size = phdr[i].p_memsz;
        }
        if (phdr[i].p_type == PT_LOAD && (phdr[i].p_flags & PF_X) != 0) {
            if (bias + phdr[i].p_vaddr < text_lo) text_lo = bias + phdr[i].p_vaddr;
            if (bias + phdr[i].p_vaddr + phdr[i].p_memsz > text_hi) text_hi = bias + phdr[i].p_vaddr + phdr[i].p_memsz;
        }
    }
    return hdr;
}

// The FDE covering `pc`, from the binary-search table of .eh_frame_hdr.
const uint8_t *find_fde(uintptr_t pc) noexcept {
    uintptr_t lo, hi;
    size_t size = 0;
    const uint8_t *hdr = own_eh_frame_hdr(size, lo, hi);
    if (hdr == nullptr || pc < lo || pc >= hi) return nullptr;
    reader r{hdr, hdr + size};
    if (r.byte() != 1) return nullptr;
    const uint8_t frame_enc = r.byte(), count_enc = r.byte(), table_enc = r.byte();
    const uintptr_t data = reinterpret_cast<uintptr_t>(hdr);
    r.pointer(frame_enc, data);
    const uintptr_t count = r.pointer(count_enc, data);
    // Only the usual table (datarel sdata4 pairs) allows the binary search.
    if (!r.ok || table_enc != (pe_datarel | pe_sdata4) || count == 0 || !r.has(count * 8)) return nullptr;
    const auto *table = reinterpret_cast<const int32_t *>(r.p);
    size_t first = 0, last = count;  // the entry to use is the last with initial_loc <= pc
    while (last - first > 1) {
        size_t mid = first + (last - first) / 2;
        if (data + static_cast<intptr_t>(table[2 * mid]) <= pc) first = mid;
        else last = mid;
    }
    if (data + static_cast<intptr_t>(table[2 * first]) > pc) return nullptr;
    return reinterpret_cast<const uint8_t *>(data + static_cast<intptr_t>(table[2 * first + 1]));
}


}  // namespace

bool rules_at(const void *pc_ptr, frame_rules &out) noexcept {
#if defined(__x86_64__)
    // A return address points after the call; the call itself is what the row must cover.
    const uintptr_t pc = reinterpret_cast<uintptr_t>(pc_ptr) - 1;
    const uint8_t *fde = find_fde(pc);
    if (fde == nullptr) return false;
    row state;
    if (!row_at(fde, pc, state, nullptr)) return false;
    out = {state.cfa_register, state.cfa_offset, state.ra_offset, state.bp_saved, state.bp_offset};
    return true;
#else
    (void)pc_ptr;
    (void)out;
    return false;
#endif
}

const void *step(const void *pc, frame_registers &regs) noexcept {
    frame_rules rules;
    if (!rules_at(pc, rules)) return nullptr;
    uintptr_t base;
    if (rules.cfa_register == 7) base = regs.sp;       // rsp
    else if (rules.cfa_register == 6) base = regs.bp;  // rbp
    else return nullptr;
    const uintptr_t cfa = base + static_cast<uintptr_t>(rules.cfa_offset);
    const void *caller = *reinterpret_cast<const void *const *>(cfa + static_cast<uintptr_t>(rules.ra_offset));
    // The caller's registers: its stack pointer after the call returns is this frame's CFA; its rbp was
    // saved in this frame, or is still in the register.
    if (rules.bp_saved) regs.bp = *reinterpret_cast<const uintptr_t *>(cfa + static_cast<uintptr_t>(rules.bp_offset));
    regs.sp = cfa;
    return caller;
}

const void *caller_of(const void *pc, frame_registers regs) noexcept { return step(pc, regs); }

}  // namespace mallochooks::unwind
