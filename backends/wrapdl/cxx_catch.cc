// SPDX-License-Identifier: MIT
// The wrapdl terminal's way of calling an output's own *throwing* operator new (terminal.h).  That
// operator throws std::bad_alloc (or what its new_handler throws) when it fails, and the exception must
// not unwind through the hook chain: our frames and a preloaded tool's are built without exceptions, so
// nothing of theirs would be undone (the reentrancy guard left set, a tool's per-thread state left taken:
// the thread's later allocations would pass unseen).  So the call is made here, under catch (...): the
// exception is kept in this thread's slot, the chain sees a failed allocation and returns, and the entry
// point, outside the chain, throws it again (rethrow_pending), as the same exception object.
//
// The one member of libmallochooks.a built with exceptions and referring to the C++ runtime: only an
// output that defines C++ operators of its own links it (the link flags bind __mallochooks_real_cxx_try
// and _rethrow here then, and to fallbacks.cc's plain call otherwise), and such an output is a C++
// program with its C++ runtime linked (tests/linktime/runtime_archive.sh knows this member).
#include <exception>
#include <new>

#include "backends/wrapdl/terminal.h"

namespace {
// The exception in flight between the catch and the entry point's rethrow; constant-initialised, no
// destructor at thread exit (it is empty whenever no call is between those two points).
// initial-exec: see libmallochooks/guard.h.
alignas(std::exception_ptr) __thread unsigned char pending_storage[sizeof(std::exception_ptr)]
    __attribute__((tls_model("initial-exec")));
__thread bool pending __attribute__((tls_model("initial-exec")));
std::exception_ptr *slot() { return reinterpret_cast<std::exception_ptr *>(pending_storage); }
}  // namespace

extern "C" {

void *__mallochooks_wrapdl_catching_cxx_try(void *(*call)(void *), void *context) noexcept {
    try {
        return call(context);
    } catch (...) {
        if (pending) {  // one left over (cannot happen: each is rethrown before the next call returns)
            slot()->~exception_ptr();
            pending = false;
        }
        new (slot()) std::exception_ptr(std::current_exception());
        pending = true;
        return nullptr;
    }
}

void __mallochooks_wrapdl_catching_cxx_rethrow() {
    if (!pending) return;
    std::exception_ptr e = std::move(*slot());
    slot()->~exception_ptr();
    pending = false;
    std::rethrow_exception(e);
}

}  // extern "C"
