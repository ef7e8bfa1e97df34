// SPDX-License-Identifier: MIT
// The one policy for allocations made before the real allocator is reachable (compiler-rt calls its
// equivalent DlSymAllocator): a terminal that cannot yet reach the next malloc, for instance because this
// very thread is in the middle of looking it up, serves the call from the bootstrap arena instead.  That
// terminal is the preload one (backends/preload/terminal.h), the only one that finds its allocator at run
// time: it asks `owns(p)` on free, realloc and usable_size, so chunks handed out here stay valid for the
// whole life of the process and are never passed to the real allocator.  The link-time terminals (wrap,
// wrapdl) reach an allocator the linker bound, never use the arena and so never ask.
//
// The arena is a lock-free bump allocator (no lock a fork or a signal could leave held): a static region
// in .bss first (costs nothing until touched), then regions from mmap, each twice the last.  It never
// aborts: when the region table is full or mmap fails, the allocation fails with ENOMEM.  Chunks are not
// reused (the arena only sees start-up and lookup-time allocations); free only marks them.  Fresh memory
// is zero, so calloc is malloc.
#ifndef MALLOCHOOKS_BOOTSTRAP_ARENA_H
#define MALLOCHOOKS_BOOTSTRAP_ARENA_H

#include <stddef.h>
#include <stdint.h>

#include <atomic>

namespace mallochooks {

class bump_arena {
public:
    // `initial` must be 16-aligned and stay valid forever; `first_mmap` is the size of the first
    // overflow region; at most `max_regions` - 1 overflow regions are mapped.
    constexpr bump_arena(unsigned char *initial, size_t initial_size, size_t first_mmap)
        : first_(initial), first_size_(initial_size), first_mmap_(first_mmap), maybe_span_(initial_size) {}

    static constexpr unsigned max_regions = 32;

    bool owns(const void *p) const {
        if (reinterpret_cast<uintptr_t>(p) - reinterpret_cast<uintptr_t>(first_) < first_size_) return true;
        return __builtin_expect(extra_.load(std::memory_order_acquire) != 0, 0) && owns_mapped(p);
    }

    // One compare for the hot path of free: false means certainly not ours; true means ask owns().
    // Exact while only the static region exists; once a region has been mapped, every pointer is a
    // "maybe" (mapped regions are rare, and this keeps the test a single range compare).
    bool may_own(const void *p) const {
        return reinterpret_cast<uintptr_t>(p) - reinterpret_cast<uintptr_t>(first_) <
               maybe_span_.load(std::memory_order_relaxed);
    }

    void *malloc(size_t size) { return allocate(16, size); }
    void *calloc(size_t nmemb, size_t size);
    void *memalign(size_t alignment, size_t size);
    void *realloc(void *ptr, size_t size);
    void free(void *ptr);
    size_t usable_size(void *ptr) const;

    // How many overflow regions have been mapped (for tests and diagnostics).
    unsigned mapped_regions() const { return extra_.load(std::memory_order_acquire); }

private:
    struct region {  // lives at the start of each mapped region
        size_t capacity;
        std::atomic<size_t> used;
    };
    struct header {  // just before every chunk
        size_t size;
        size_t state;
    };

    void *allocate(size_t alignment, size_t size);
    void *carve(unsigned char *base, std::atomic<size_t> &used, size_t capacity, size_t alignment, size_t size);
    bool owns_mapped(const void *p) const;
    bool grow(unsigned index, size_t at_least);

    unsigned char *first_;
    size_t first_size_;
    size_t first_mmap_;
    std::atomic<uintptr_t> maybe_span_;  // see may_own
    std::atomic<size_t> first_used_{0};
    std::atomic<unsigned> extra_{0};                       // mapped regions published so far
    std::atomic<region *> regions_[max_regions - 1] = {};  // slot i: mapped region i + 1
};

// The process-wide arena of this runtime library (hidden: each library has its own).  Constant-initialised.
extern bump_arena bootstrap_arena_instance __attribute__((visibility("hidden")));
inline bump_arena &bootstrap_arena() { return bootstrap_arena_instance; }

}  // namespace mallochooks

#endif
