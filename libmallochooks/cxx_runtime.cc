// SPDX-License-Identifier: MIT
// The program's C++ runtime, found when a C++ allocation has failed (see cxx_runtime.h).
#include "libmallochooks/cxx_runtime.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "libmallochooks/elf/fake_dlsym.h"

namespace mallochooks::cxx_runtime {

namespace {

template <class F> F find(const char *name) noexcept { return reinterpret_cast<F>(elf::lookup(name)); }

}  // namespace

new_handler current_new_handler() noexcept {
    auto get = find<new_handler (*)()>("_ZSt15get_new_handlerv");
    return get != nullptr ? get() : nullptr;
}

void *runtime_definition(const char *mangled) noexcept {
    const link_map *runtime = nullptr;
    elf::lookup("_ZSt15get_new_handlerv", nullptr, nullptr, &runtime);
    return runtime != nullptr ? elf::lookup_in(runtime, mangled) : nullptr;
}

void throw_bad_alloc(const char *function) {
    using thrower = void (*)();
    if (auto t = find<thrower>("_ZSt17__throw_bad_allocv")) t();
    static const char text[] = "mallochooks: no C++ runtime in the process to throw std::bad_alloc from ";
    [[maybe_unused]] ssize_t n = write(2, text, sizeof text - 1);
    n = write(2, function, strlen(function));
    n = write(2, "\n", 1);
    abort();
}

}  // namespace mallochooks::cxx_runtime
