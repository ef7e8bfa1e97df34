// SPDX-License-Identifier: MIT
// The bootstrap arena (see bootstrap_arena.h): lock-free bump allocation over a static region and then
// mmap'd regions, chunks never reused, failure reported as ENOMEM rather than an abort.
#include "libmallochooks/bootstrap_arena.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

namespace mallochooks {

namespace {
constexpr size_t header_size = 16;
constexpr size_t live = 0x6d686c697665ul;   // "mhlive"
constexpr size_t freed = 0x6d6866726565ul;  // "mhfree"

alignas(4096) unsigned char static_region[256 * 1024];
}  // namespace

constinit bump_arena bootstrap_arena_instance{static_region, sizeof static_region, 1u << 20};

void *bump_arena::carve(unsigned char *base, std::atomic<size_t> &used, size_t capacity, size_t alignment,
                        size_t size) {
    // Reserve enough for the header and the worst-case alignment padding, then place the chunk.
    size_t need;
    if (__builtin_add_overflow(size, header_size + alignment - 1, &need)) return nullptr;
    need = (need + 15) & ~size_t{15};
    size_t offset = used.load(std::memory_order_relaxed);
    do {
        if (offset > capacity || need > capacity - offset) return nullptr;
    } while (!used.compare_exchange_weak(offset, offset + need, std::memory_order_relaxed));
    uintptr_t start = reinterpret_cast<uintptr_t>(base) + offset + header_size;
    uintptr_t user = (start + alignment - 1) & ~(uintptr_t)(alignment - 1);
    header *h = reinterpret_cast<header *>(user - header_size);
    h->size = size;
    h->state = live;
    return reinterpret_cast<void *>(user);
}

bool bump_arena::grow(unsigned index, size_t at_least) {
    constexpr size_t largest = size_t{1} << 46;  // no mmap of more than this succeeds anyway
    if (at_least > largest) return false;
    size_t size = first_mmap_ << (index - 1);
    while (size < at_least) size *= 2;
    void *m = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return false;
    // Before any chunk of a mapped region can be handed out, make may_own() say "maybe" for everything.
    maybe_span_.store(UINTPTR_MAX, std::memory_order_seq_cst);
    region *r = static_cast<region *>(m);
    r->capacity = size - sizeof(region);
    r->used.store(0, std::memory_order_relaxed);
    region *expected = nullptr;
    if (!regions_[index - 1].compare_exchange_strong(expected, r, std::memory_order_acq_rel)) {
        munmap(m, size);  // another thread installed this slot first: use theirs
    }
    // Slots fill in order (slot i is only grown after slot i - 1 was seen), so publishing the maximum
    // index seen is enough for owns() to cover every region.
    unsigned published = extra_.load(std::memory_order_acquire);
    while (published < index && !extra_.compare_exchange_weak(published, index, std::memory_order_acq_rel)) {
    }
    return true;
}

void *bump_arena::allocate(size_t alignment, size_t size) {
    if (alignment < 16) alignment = 16;
    if (void *p = carve(first_, first_used_, first_size_, alignment, size)) return p;
    for (unsigned i = 1; i < max_regions; ++i) {
        region *r = regions_[i - 1].load(std::memory_order_acquire);
        if (r == nullptr) {
            size_t worst;
            if (__builtin_add_overflow(size, alignment + header_size + sizeof(region) + 15, &worst) ||
                !grow(i, worst)) {
                break;
            }
            r = regions_[i - 1].load(std::memory_order_acquire);
        }
        if (void *p = carve(reinterpret_cast<unsigned char *>(r + 1), r->used, r->capacity, alignment, size))
            return p;
    }
    errno = ENOMEM;
    return nullptr;
}

bool bump_arena::owns_mapped(const void *p) const {
    const unsigned n = extra_.load(std::memory_order_acquire);
    const uintptr_t a = reinterpret_cast<uintptr_t>(p);
    for (unsigned i = 0; i < n; ++i) {
        const region *r = regions_[i].load(std::memory_order_acquire);
        if (r == nullptr) continue;
        const uintptr_t base = reinterpret_cast<uintptr_t>(r + 1);
        if (a - base < r->capacity) return true;
    }
    return false;
}

void *bump_arena::calloc(size_t nmemb, size_t size) {
    size_t total;
    if (__builtin_mul_overflow(nmemb, size, &total)) {
        errno = ENOMEM;
        return nullptr;
    }
    return allocate(16, total);  // never-reused memory from .bss or mmap is already zero
}

void *bump_arena::memalign(size_t alignment, size_t size) {
    if (alignment & (alignment - 1)) {  // round up to a power of two, as glibc does
        size_t a = 16;
        while (a < alignment && a != 0) a <<= 1;
        alignment = a;
    }
    if (alignment == 0 || alignment > (size_t{1} << 32)) {
        errno = EINVAL;
        return nullptr;
    }
    return allocate(alignment, size);
}

size_t bump_arena::usable_size(void *ptr) const {
    return reinterpret_cast<const header *>(static_cast<unsigned char *>(ptr) - header_size)->size;
}

void bump_arena::free(void *ptr) {
    reinterpret_cast<header *>(static_cast<unsigned char *>(ptr) - header_size)->state = freed;
}

void *bump_arena::realloc(void *ptr, size_t size) {
    void *q = malloc(size);
    if (q == nullptr) return nullptr;
    const size_t old = usable_size(ptr);
    memcpy(q, ptr, old < size ? old : size);
    free(ptr);
    return q;
}

}  // namespace mallochooks
