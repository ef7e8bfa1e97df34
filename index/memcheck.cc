// SPDX-License-Identifier: MIT
// The index's client requests to valgrind's memcheck (see memcheck.h).
#include "index/memcheck.h"

#include <errno.h>
#include <sys/mman.h>
#include <valgrind/memcheck.h>

#include "index/trailer.h"

namespace mallochooks::heapindex::memcheck {

constinit std::atomic<int> state{0};

// memcheck answers -1 to its own requests; natively, and under any other valgrind tool (callgrind
// included, so the instruction counts of bench/run are those of the fast paths), the answer is the
// default, 0.  A zero-length request changes nothing.
bool running_slow() {
    char probe;
    const bool yes = long(VALGRIND_MAKE_MEM_DEFINED(&probe, 0)) == -1;
    state.store(yes ? 2 : 1, std::memory_order_relaxed);
    return yes;
}

void guard(const void *p, size_t n) { VALGRIND_MAKE_MEM_NOACCESS(p, n); }
void open(const void *p, size_t n) { VALGRIND_MAKE_MEM_DEFINED(p, n); }
void make_undefined(const void *p, size_t n) { VALGRIND_MAKE_MEM_UNDEFINED(p, n); }
// Only memcheck's own blocks can be resized (for any other, memcheck reports an invalid free): those are
// followed by a redzone, which GET_VBITS finds unaddressable (3) without reporting anything.
uint32_t guard_new_trailer(const void *base, size_t size, size_t block, uintptr_t trailer_at, bool blind) {
    unsigned char after[8];
    if (size > 0 && !blind && block > size && VALGRIND_GET_VBITS(static_cast<const char *>(base) + block, after, 8) == 3) {
        VALGRIND_RESIZEINPLACE_BLOCK(base, block, size, 0);
        return record_flag_guarded_trailer | record_flag_memcheck_block;
    }
    guard(reinterpret_cast<const void *>(trailer_at), trailer_size);
    return record_flag_guarded_trailer;
}

void protect_records(void *p, size_t n) {
    if (!running()) return;
    const int saved = errno;
    mprotect(p, n, PROT_WRITE);
    errno = saved;
}

}  // namespace mallochooks::heapindex::memcheck
