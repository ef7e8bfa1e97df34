// SPDX-License-Identifier: MIT
// What the suballocator trampoline (shim_trampolines.h) does around a declared suballocator function: the
// same as stubgen's C shim of it.  A chunk handed out is reported to the heap index with its size (z * Z,
// not reported when that overflows) and the allocation site (the site in force, else the caller's call
// site); a chunk given back is reported before the call, a resized one after it (when the call succeeded,
// or freed it with size 0).  The heap index calls are weak references (mallochooks/heapindex.h): without
// the index they cost a load and a branch.
#include "backends/linktime/shim_trampolines.h"

#include <stddef.h>

#include "backends/linktime/static_allocators.h"
#include "mallochooks/alloc_site.h"
#include "mallochooks/heapindex.h"

static_assert(offsetof(mallochooks_suballoc_call, vectors) == 48 && offsetof(mallochooks_suballoc_call, target) == 176 &&
                  offsetof(mallochooks_suballoc_call, plan) == 184 && offsetof(mallochooks_suballoc_call, site) == 192 &&
                  offsetof(mallochooks_suballoc_call, result) == 200 && sizeof(mallochooks_suballoc_call) == 208,
              "shim_trampolines.S writes this layout");

namespace {

// The integer argument at `shift` in the plan, or nothing.
bool argument(const mallochooks_suballoc_call *call, unsigned shift, uint64_t &out) {
    const unsigned slot = (call->plan >> shift) & 7u;
    if (slot == MALLOCHOOKS_PLAN_NONE || slot > 5) return false;
    out = call->ints[slot];
    return true;
}

}  // namespace

extern "C" __attribute__((visibility("hidden"))) void __mallochooks_suballoc_enter(mallochooks_suballoc_call *call,
                                                                                  const void *return_address, uintptr_t sp,
                                                                                  uintptr_t bp) noexcept {
    const void *site = __mallochooks_alloc_site;
    call->site = site != nullptr ? site : __mallochooks_static_site(return_address, sp, bp);
    uint64_t freed;
    if (argument(call, MALLOCHOOKS_PLAN_FREED_SHIFT, freed) && freed != 0)
        heapindex_notify_free(reinterpret_cast<void *>(freed));
}

extern "C" __attribute__((visibility("hidden"))) void __mallochooks_suballoc_leave(mallochooks_suballoc_call *call) noexcept {
    if ((call->plan & MALLOCHOOKS_PLAN_RETURNS_CHUNK) == 0) return;
    uint64_t size = 0, count, old;
    argument(call, MALLOCHOOKS_PLAN_SIZE_SHIFT, size);
    if (argument(call, MALLOCHOOKS_PLAN_OLD_SHIFT, old) && old != 0 && (call->result != nullptr || size == 0))
        heapindex_notify_free(reinterpret_cast<void *>(old));
    if (call->result == nullptr) return;
    if (argument(call, MALLOCHOOKS_PLAN_COUNT_SHIFT, count) && __builtin_mul_overflow(count, size, &size)) return;
    heapindex_notify_alloc(call->result, size, call->site);
}
