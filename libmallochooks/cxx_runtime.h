// SPDX-License-Identifier: MIT
// What a failed C++ allocation needs from the program's C++ runtime: its new_handler and a way to throw
// std::bad_alloc, for runtime libraries that are built without exceptions and must not need libstdc++.so.
//
// A program that calls operator new has a C++ runtime, so both are asked of that runtime, by name, only
// when an allocation has failed: std::get_new_handler() and std::__throw_bad_alloc() (which throws a
// std::bad_alloc), found with fake_dlsym over the whole link map (no allocation, no lock, no reference
// to the C++ runtime in our objects: tests/integration/exports.sh and tests/linktime/runtime_archive.sh
// check).  So a program whose C++ runtime is linked into it statically and does not export them (g++
// -static-libstdc++ without -rdynamic) gets no new_handler call, and a failed throwing new there ends with
// a message and abort() instead of an exception.  The runtime libraries keep unwind tables (meson.build)
// so that the exception, or one a new_handler throws, passes through their frames: no frame of ours holds
// anything to undo when it does (the user API calls both outside the hook chain, after it returned).
#ifndef MALLOCHOOKS_CXX_RUNTIME_H
#define MALLOCHOOKS_CXX_RUNTIME_H

namespace mallochooks::cxx_runtime {

using new_handler = void (*)();

// The program's new_handler (std::get_new_handler()), or null when it has none or has no C++ runtime.
new_handler current_new_handler() noexcept __attribute__((visibility("hidden")));

// The C++ runtime's own definition of a C++ allocation function, by mangled name (from the object that
// defines std::get_new_handler), or null.  A nothrow new that fails while a new_handler is installed is
// handed to it: the handler may throw, and only the runtime can catch that and return null as
// [new.delete.single] requires of a nothrow new.  It calls the throwing operator new through the
// program's binding, so through us again.
void *runtime_definition(const char *mangled) noexcept __attribute__((visibility("hidden")));

// Throw std::bad_alloc through the program's C++ runtime.  Without one (no C++ runtime found, which a
// program calling operator new cannot be), print why on stderr and abort, as an uncaught bad_alloc would.
[[noreturn]] void throw_bad_alloc(const char *function) __attribute__((visibility("hidden")));

}  // namespace mallochooks::cxx_runtime

#endif
