// SPDX-License-Identifier: MIT
// The stack depot (see stack_depot.h).  Layout of the arena: entries one after the other, each preceded
// by an 8-byte size word (so that a reader walking the arena can step over an entry still being written);
// an entry's id is its offset / 8.
#include "index/stack_depot.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

namespace mallochooks::heapindex {

namespace {
constinit stack_depot the_depot;

constexpr unsigned table_bits = 20;  // 1 Mi slots, 4 MiB of address space

void *reserve(size_t *bytes, size_t least) {
    const int saved = errno;
    void *m = MAP_FAILED;
    for (; *bytes >= least; *bytes /= 2) {
        m = mmap(nullptr, *bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (m != MAP_FAILED) break;
    }
    errno = saved;
    return m == MAP_FAILED ? nullptr : m;
}

}  // namespace

uint32_t stack_depot::hash(const uintptr_t *frames, unsigned depth) {
    uint64_t h = 0x9e3779b97f4a7c15ull ^ depth;
    for (unsigned i = 0; i < depth; ++i) {
        h ^= frames[i];
        h *= 0xbf58476d1ce4e5b9ull;
        h ^= h >> 31;
    }
    const uint32_t r = uint32_t(h ^ (h >> 32));
    return r != 0 ? r : 1;  // 0 marks an entry not yet written
}

namespace {
bool same(const uintptr_t *a, const uintptr_t *b, unsigned n) {
    for (unsigned i = 0; i < n; ++i)
        if (a[i] != b[i]) return false;
    return true;
}
}  // namespace

stack_depot &depot() { return the_depot; }

bool stack_depot::init() {
    if (arena_ != nullptr) return true;
    size_t arena_bytes = size_t{1} << 30, table_bytes = sizeof(uint32_t) << table_bits;
    void *a = reserve(&arena_bytes, size_t{16} << 20);
    if (a == nullptr) return false;
    void *t = reserve(&table_bytes, table_bytes);
    if (t == nullptr) {
        munmap(a, arena_bytes);
        return false;
    }
    table_ = static_cast<std::atomic<uint32_t> *>(t);
    table_bytes_ = table_bytes;
    mask_ = (1u << table_bits) - 1;
    arena_bytes_ = arena_bytes;
    arena_ = static_cast<char *>(a);
    // The "depot full" entry: depth 0, first in the arena.
    const uint64_t at = append(nullptr, 0, 0);
    full_id_ = uint32_t(at >> 3);
    return true;
}

// Room for an entry of `depth` frames, written, its size word published last.  0 when the arena is full.
uint64_t stack_depot::append(const uintptr_t *frames, unsigned depth, uint32_t hash) {
    const uint64_t size = (sizeof(stack_entry) + depth * sizeof(uintptr_t) + 8 + 63) & ~uint64_t{63};
    static_assert(sizeof(stack_entry) % 64 == 0);
    // Entries are 64-aligned; each one's size word is the last 8 bytes of the block before it, which
    // that block's entry never reaches (its size counts 8 bytes more than it needs).
    const uint64_t at = top_.fetch_add(size, std::memory_order_relaxed);
    if (at + size > arena_bytes_) return 0;
    stack_entry *e = reinterpret_cast<stack_entry *>(arena_ + at);
    if (depth != 0) memcpy(e->frames, frames, depth * sizeof(uintptr_t));
    e->depth = uint16_t(depth);
    e->hash = hash;
    reinterpret_cast<std::atomic<uint64_t> *>(arena_ + at - 8)->store(size, std::memory_order_release);
    return at;
}

bool stack_depot::holds(uint32_t id, const uintptr_t *frames, unsigned depth) const {
    const stack_entry *e = get(id);
    return e->depth == depth && same(e->frames, frames, depth);
}

uint32_t stack_depot::intern(const uintptr_t *frames, unsigned depth, uint32_t hash) {
    if (arena_ == nullptr) return 0;
    uint64_t mine = 0;  // our copy, once appended
    for (uint32_t probe = 0, i = hash & mask_; probe < 128; ++probe, i = (i + 1) & mask_) {
        uint32_t id = table_[i].load(std::memory_order_acquire);
        if (id == 0) {
            if (distinct_.load(std::memory_order_relaxed) >= (uint64_t(mask_) + 1) * 3 / 4) break;
            if (mine == 0 && (mine = append(frames, depth, hash)) == 0) break;
            uint32_t expected = 0;
            if (table_[i].compare_exchange_strong(expected, uint32_t(mine >> 3), std::memory_order_acq_rel)) {
                distinct_.fetch_add(1, std::memory_order_relaxed);
                return uint32_t(mine >> 3);
            }
            id = expected;  // another thread claimed the slot: is it our stack?
        }
        const stack_entry *e = get(id);
        if (e->hash == hash && e->depth == depth && same(e->frames, frames, depth)) {
            if (mine != 0) wasted_.fetch_add(1, std::memory_order_relaxed);
            return id;
        }
    }
    dropped_.fetch_add(1, std::memory_order_relaxed);
    return full_id_;
}

}  // namespace mallochooks::heapindex
