// SPDX-License-Identifier: MIT
// The C++ caller of the placement matrix: operator new and delete in their variants.  libstdc++ turns
// each into one malloc-family call (malloc, aligned_alloc, free), made from inside libstdc++.so: that is
// the object the events name as the caller, and it reaches whichever malloc the process binds it to.
#include <new>

#include "mx_callers.h"

namespace {
struct alignas(128) wide {
    char bytes[300];
};
}  // namespace

extern "C" __attribute__((visibility("default"))) void mx_cxx_run(mx_call *c) {
    c->where = reinterpret_cast<const void *>(&mx_cxx_run);
    switch (c->op) {
    case MX_NEW: c->result = new int(7); break;
    case MX_DELETE: delete static_cast<int *>(c->ptr); break;
    case MX_NEW_ARRAY: c->result = new long[100]; break;
    case MX_DELETE_ARRAY: delete[] static_cast<long *>(c->ptr); break;
    case MX_NEW_ALIGNED: c->result = new wide; break;
    case MX_DELETE_ALIGNED: delete static_cast<wide *>(c->ptr); break;
    case MX_NEW_NOTHROW: c->result = new (std::nothrow) char[33]; break;
    case MX_DELETE_NOTHROW: ::operator delete[](c->ptr, std::nothrow); break;
    case MX_DELETE_SIZED: ::operator delete(c->ptr, sizeof(int)); break;  // a chunk of MX_NEW
    default: break;
    }
    __asm__ volatile("" ::: "memory");  // no tail calls (mx_callers.h)
}

// The request sizes and alignments libstdc++ passes on for each allocating operation.
extern "C" __attribute__((visibility("default"))) void mx_cxx_expected(int op, size_t *size, size_t *alignment) {
    *alignment = 16;
    switch (op) {
    case MX_NEW: *size = sizeof(int); break;
    case MX_NEW_ARRAY: *size = 100 * sizeof(long); break;
    case MX_NEW_ALIGNED: *size = sizeof(wide), *alignment = alignof(wide); break;
    case MX_NEW_NOTHROW: *size = 33; break;
    default: *size = 0; break;
    }
}
