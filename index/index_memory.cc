// SPDX-License-Identifier: MIT
// Index memory (see index_memory.h): pages of its own from mmap, huge-page-backed ranges, and the shared
// dense blocks carved lock-free.  errno is kept: a successful allocation must leave it as the allocator
// left it.
#include "index/index_memory.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

namespace mallochooks::heapindex {

// ---- the limits the index's memory stays within ----------------------------------------------------------

namespace {

// The process's address space and data (both in bytes) from /proc/self/statm: its first field is the
// size, its sixth data + stack (what RLIMIT_DATA counts, and the stack).  open/read/close only: no
// allocation, safe in a signal handler.
bool process_usage(size_t *address_space, size_t *data) {
    const int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    char buf[160];
    const ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return false;
    buf[n] = '\0';
    size_t fields[6] = {};
    unsigned field = 0;
    for (const char *c = buf; *c != '\0' && field < 6; ++c) {
        if (*c >= '0' && *c <= '9') fields[field] = fields[field] * 10 + size_t(*c - '0');
        else if (*c == ' ') ++field;
    }
    if (field < 5) return false;
    const size_t page = size_t(sysconf(_SC_PAGESIZE));
    *address_space = fields[0] * page;
    *data = fields[5] * page;
    return true;
}

// What the index leaves to the program below a finite limit: glibc's malloc needs room too, in large
// pieces (a thread's arena reserves 64 MiB at once, a thread's stack 8 MiB, an mmap'd chunk its size).
size_t headroom(size_t limit) {
    const size_t eighth = limit / 8, least = size_t{16} << 20, most = size_t{256} << 20;
    return eighth < least ? least : eighth > most ? most : eighth;
}

bool within(int resource, size_t used, size_t bytes) {
    rlimit l;
    if (getrlimit(resource, &l) != 0 || l.rlim_cur == RLIM_INFINITY) return true;
    const size_t limit = size_t(l.rlim_cur);
    return used <= limit && bytes + headroom(limit) <= limit - used;
}

}  // namespace

// Once refused, the next 1023 requests are refused without asking (a program at its limit that keeps
// allocating would otherwise pay two getrlimit calls and a read of /proc per allocation).
bool index_memory_fits(size_t bytes) {
    static std::atomic<int> refuse_without_asking{0};
    rlimit as, data;
    const bool as_limited = getrlimit(RLIMIT_AS, &as) == 0 && as.rlim_cur != RLIM_INFINITY;
    const bool data_limited = getrlimit(RLIMIT_DATA, &data) == 0 && data.rlim_cur != RLIM_INFINITY;
    if (!as_limited && !data_limited) return true;
    if (refuse_without_asking.load(std::memory_order_relaxed) > 0) {
        refuse_without_asking.fetch_sub(1, std::memory_order_relaxed);
        return false;
    }
    size_t address_space, data_bytes;
    if (!process_usage(&address_space, &data_bytes)) return true;  // cannot tell: mmap decides
    const bool fits = within(RLIMIT_AS, address_space, bytes) && within(RLIMIT_DATA, data_bytes, bytes);
    if (!fits) refuse_without_asking.store(1023, std::memory_order_relaxed);
    return fits;
}

// ---- mappings -------------------------------------------------------------------------------------------

void *map_index_memory(size_t bytes, std::atomic<size_t> &mapped) {
    const int saved = errno;  // a successful allocation must leave errno as the allocator left it
    if (!index_memory_fits(bytes)) {
        errno = saved;
        return nullptr;
    }
    void *m = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    errno = saved;
    if (m == MAP_FAILED) return nullptr;
    mapped.fetch_add(bytes, std::memory_order_relaxed);
    return m;
}

// Records are used densely (ids are handed out in order), and a lookup reads one at random: back them
// with transparent huge pages where the system allows it (THP "madvise" mode), which saves lookups a TLB
// miss.  `bytes` must be a multiple of 2 MiB; the mapping is trimmed to 2 MiB alignment.
void *map_huge_index_memory(size_t bytes, std::atomic<size_t> &mapped, size_t huge_from) {
    constexpr size_t huge = size_t{2} << 20;
    const int saved = errno;
    void *m = index_memory_fits(bytes + huge)
                  ? mmap(nullptr, bytes + huge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
                  : MAP_FAILED;
    if (m == MAP_FAILED) {
        errno = saved;
        return nullptr;
    }
    const uintptr_t start = reinterpret_cast<uintptr_t>(m), aligned = (start + huge - 1) & ~(huge - 1);
    if (aligned != start) munmap(m, aligned - start);
    if (aligned + bytes != start + bytes + huge) munmap(reinterpret_cast<void *>(aligned + bytes), start + huge - aligned);
    if (huge_from < bytes) madvise(reinterpret_cast<void *>(aligned + huge_from), bytes - huge_from, MADV_HUGEPAGE);
    // The head on small pages also under THP "always" (promote_index_heads undoes it).
    if (huge_from != 0) madvise(reinterpret_cast<void *>(aligned), huge_from, MADV_NOHUGEPAGE);
    errno = saved;
    mapped.fetch_add(bytes, std::memory_order_relaxed);
    return reinterpret_cast<void *>(aligned);
}

namespace {
std::atomic<void *> index_heads[2];
std::atomic<bool> heads_promoted{false};
#ifndef MADV_COLLAPSE
constexpr int MADV_COLLAPSE = 25;  // Linux 6.1; older kernels answer EINVAL, and khugepaged does it later
#endif
void promote(void *head) {
    madvise(head, index_head_bytes, MADV_HUGEPAGE);
    madvise(head, index_head_bytes, MADV_COLLAPSE);
}
}  // namespace

void register_index_head(void *head) {
    const int saved = errno;
    for (std::atomic<void *> &slot : index_heads) {
        void *none = nullptr;
        if (slot.compare_exchange_strong(none, head, std::memory_order_acq_rel)) {
            // Registered after the promotion (a first dense block made late): promote it now.
            if (heads_promoted.load(std::memory_order_acquire)) promote(head);
            break;
        }
    }
    errno = saved;
}

void promote_index_heads() {
    if (heads_promoted.exchange(true, std::memory_order_acq_rel)) return;
    const int saved = errno;
    for (std::atomic<void *> &slot : index_heads)
        if (void *head = slot.load(std::memory_order_acquire)) promote(head);
    errno = saved;
}

namespace {
// A block of dense index memory: this header, then carved pieces.  `current` only ever moves to a newer
// block; a thread whose piece does not fit any more maps a new block and tries to install it (the loser
// of that race unmaps its own, unused, block).
struct dense_block {
    std::atomic<size_t> used;
    size_t size;
};
constexpr size_t dense_block_bytes = size_t{4} << 20;
std::atomic<dense_block *> dense_current{nullptr};
std::atomic<size_t> dense_blocks_mapped{0};
}  // namespace

size_t dense_index_bytes() { return dense_blocks_mapped.load(std::memory_order_relaxed); }

void *carve_dense_index_memory(size_t bytes) {
    bytes = (bytes + 63) & ~size_t{63};
    if (bytes > dense_block_bytes / 2)
        return map_huge_index_memory((bytes + (size_t{2} << 20) - 1) & ~((size_t{2} << 20) - 1), dense_blocks_mapped);
    for (;;) {
        dense_block *b = dense_current.load(std::memory_order_acquire);
        if (b != nullptr) {
            const size_t at = b->used.fetch_add(bytes, std::memory_order_relaxed);
            if (at + bytes <= b->size) return reinterpret_cast<char *>(b) + at;
        }
        // The first block's head stays on small pages until the process is big (index_memory.h).
        const bool first = b == nullptr;
        void *m = map_huge_index_memory(dense_block_bytes, dense_blocks_mapped, first ? index_head_bytes : 0);
        if (m == nullptr) return nullptr;
        dense_block *fresh = static_cast<dense_block *>(m);
        fresh->used.store(64, std::memory_order_relaxed);
        fresh->size = dense_block_bytes;
        if (!dense_current.compare_exchange_strong(b, fresh, std::memory_order_acq_rel))
            unmap_index_memory(m, dense_block_bytes, dense_blocks_mapped);
        else if (first)
            register_index_head(m);
    }
}

void unmap_index_memory(void *p, size_t bytes, std::atomic<size_t> &mapped) {
    const int saved = errno;
    munmap(p, bytes);
    errno = saved;
    mapped.fetch_sub(bytes, std::memory_order_relaxed);
}
}  // namespace mallochooks::heapindex
