// SPDX-License-Identifier: MIT
// Static allocation functions: the range table's default, its bounds, and the unwinding (see
// static_allocators.h).
#include "backends/linktime/static_allocators.h"

#include "backends/linktime/one_frame_unwind.h"
#include "mallochooks/alloc_site.h"

// The table's default for outputs without declared static functions: no range.  Weak, so that the shim
// object's table wins; defined in assembly, so that no compiler can fold the default's contents into the
// reads below (a weak definition may be replaced at link time).
asm(R"(
    .weak __mallochooks_static_ranges
    .hidden __mallochooks_static_ranges
    .pushsection .rodata.__mallochooks_static_ranges,"a",@progbits
    .balign 8
    .type __mallochooks_static_ranges, @object
    .size __mallochooks_static_ranges, 16
__mallochooks_static_ranges:
    .quad 0, 0
    .popsection
)");

constinit std::atomic<uintptr_t> __mallochooks_static_lo{0};
constinit std::atomic<uintptr_t> __mallochooks_static_hi{UINTPTR_MAX};

namespace mallochooks::static_allocators {

namespace {

constinit std::atomic<bool> bounds_known{false};

// Nested declared static functions unwound at most (a recursive one would otherwise loop).
constexpr int max_frames = 16;

bool in_ranges(const void *pc) {
    const uintptr_t a = reinterpret_cast<uintptr_t>(pc);
    for (const void *const *r = __mallochooks_static_ranges; r[0] != nullptr; r += 2)
        if (a - reinterpret_cast<uintptr_t>(r[0]) < reinterpret_cast<uintptr_t>(r[1]) - reinterpret_cast<uintptr_t>(r[0]))
            return true;
    return false;
}

// Narrows the bounds from "everything" to the table's.  Threads may race here: each stores the same
// values, and every mixture of old and new values still covers the table.
void compute_bounds() {
    uintptr_t lo = UINTPTR_MAX, hi = 0;
    for (const void *const *r = __mallochooks_static_ranges; r[0] != nullptr; r += 2) {
        if (reinterpret_cast<uintptr_t>(r[0]) < lo) lo = reinterpret_cast<uintptr_t>(r[0]);
        if (reinterpret_cast<uintptr_t>(r[1]) > hi) hi = reinterpret_cast<uintptr_t>(r[1]);
    }
    if (lo > hi) lo = hi = 0;  // no range: nothing is inside
    __mallochooks_static_lo.store(lo, std::memory_order_relaxed);
    __mallochooks_static_hi.store(hi, std::memory_order_relaxed);
    bounds_known.store(true, std::memory_order_relaxed);
}

}  // namespace

const void *site_of(const void *return_address, const void *own_return_address, const void *frame_address) noexcept {
    if (own_return_address != return_address) return return_address;
    // The frame pointer of the tail-called function: its rbp slot holds the rbp of the code that called
    // the entry point, and its CFA (the entry point's) is 16 bytes above.
    const auto *frame = static_cast<const uintptr_t *>(frame_address);
    return __mallochooks_static_site(return_address, reinterpret_cast<uintptr_t>(frame) + 16, frame[0]);
}

}  // namespace mallochooks::static_allocators

const void *__mallochooks_static_site(const void *pc, uintptr_t sp, uintptr_t bp) noexcept {
    namespace sa = mallochooks::static_allocators;
    if (!sa::bounds_known.load(std::memory_order_relaxed)) sa::compute_bounds();
    mallochooks::unwind::frame_registers regs{sp, bp};
    const void *site = pc;
    for (int frames = 0; frames < sa::max_frames && sa::may_contain(site) && sa::in_ranges(site); ++frames) {
        const void *up = mallochooks::unwind::step(site, regs);
        if (up == nullptr) break;  // a frame the unwinder cannot read: the last site found stands
        site = up;
    }
    return site;
}
