// SPDX-License-Identifier: MIT
// Attribution through a C++ allocation function named by its qualified name, and a site that is
// restored when the allocation function throws through the shim.
#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

#include "pool.h"

static int failures;

static void expect(bool ok, const char *what) {
    failures += !ok;
    std::printf("%s: %s\n", ok ? "ok" : "FAILED", what);
}

static const char *function_of(const void *addr) {
    Dl_info info;
    return addr != nullptr && dladdr(addr, &info) != 0 && info.dli_sname != nullptr ? info.dli_sname : "(none)";
}

static void *volatile sink;  // keeps the calls out of tail position (see ../c/main.c)
extern "C" __attribute__((noinline)) void *cxx_make_a() {
    sink = pool::alloc(16);
    return sink;
}
extern "C" __attribute__((noinline)) void cxx_throw_b() {
    try {
        sink = pool::alloc(0);
    } catch (const std::bad_alloc &) {
        expect(pool::site_now() == nullptr, "site restored when the allocation function threw");
    }
}

int main() {
    void *a = cxx_make_a();
    std::printf("site in %s\n", function_of(pool::site_seen()));
    expect(std::strcmp(function_of(pool::site_seen()), "cxx_make_a") == 0, "pool::alloc: site in its caller");
    expect(pool::site_now() == nullptr, "no site after return");
    cxx_throw_b();
    expect(std::strcmp(function_of(pool::site_seen()), "cxx_throw_b") == 0, "throwing pool::alloc: site in its caller");
    std::free(a);
    return failures != 0;
}
