// SPDX-License-Identifier: MIT
// The wrapdl terminal over an allocator that lacks part of the family (backends/wrapdl/fallbacks.cc),
// built twice with the link flags mallochooks-link-flags writes for each allocator:
//   WITH_POSIX_MEMALIGN   malloc, free, posix_memalign
//   otherwise             malloc, free, aligned_alloc, malloc_usable_size
// The "allocator" below defines the hidden __mallochooks_real_ names mallochooks-alias would have added,
// over glibc's functions, and counts its calls, so each fallback can be seen using only its functions.
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <catch2/catch.hpp>

#include "backends/wrapdl/terminal.h"

namespace {
struct {
    int malloc, free, posix_memalign, aligned_alloc, usable_size;
} calls;
using T = mallochooks::wrapdl::terminal;
}  // namespace

#define REAL_(name) extern "C" __attribute__((visibility("hidden"))) decltype(::name) __mallochooks_real_##name;
REAL_(posix_memalign)
REAL_(aligned_alloc)

extern "C" {
void *__mallochooks_real_malloc(size_t n) noexcept { return ++calls.malloc, malloc(n); }
void __mallochooks_real_free(void *p) noexcept { ++calls.free, free(p); }
#ifdef WITH_POSIX_MEMALIGN
int __mallochooks_real_posix_memalign(void **p, size_t a, size_t n) noexcept { return ++calls.posix_memalign, posix_memalign(p, a, n); }
#else
void *__mallochooks_real_aligned_alloc(size_t a, size_t n) noexcept { return ++calls.aligned_alloc, aligned_alloc(a, n); }
size_t __mallochooks_real_malloc_usable_size(void *p) noexcept { return ++calls.usable_size, malloc_usable_size(p); }
#endif
}

TEST_CASE("wrapdl fallbacks: calloc is the allocator's malloc, zeroed") {
    calls = {};
    char *p = static_cast<char *>(T::calloc(10, 13, nullptr));
    REQUIRE(p != nullptr);
    for (int i = 0; i < 130; ++i) REQUIRE(p[i] == 0);
    REQUIRE(calls.malloc == 1);
    T::free(p, nullptr);
    REQUIRE(calls.free == 1);
}

TEST_CASE("wrapdl fallbacks: memalign through what the allocator has") {
    calls = {};
    void *small = T::memalign(8, 40, nullptr);  // not above the default alignment: a plain malloc
    REQUIRE(calls.malloc == 1);
    void *odd = T::memalign(48, 40, nullptr);  // rounded up to 64, as glibc does
    REQUIRE(odd != nullptr);
    REQUIRE(reinterpret_cast<uintptr_t>(odd) % 64 == 0);
#ifdef WITH_POSIX_MEMALIGN
    REQUIRE(calls.posix_memalign == 1);
#else
    REQUIRE(calls.aligned_alloc == 1);
#endif
    errno = 0;
    REQUIRE(T::memalign(SIZE_MAX / 2 + 2, 1, nullptr) == nullptr);
    REQUIRE(errno == EINVAL);
    T::free(small, nullptr);
    T::free(odd, nullptr);
}

TEST_CASE("wrapdl fallbacks: realloc and usable size need the allocator's malloc_usable_size") {
    calls = {};
    char *p = static_cast<char *>(T::malloc(20, nullptr));
    memset(p, 'x', 20);
#ifdef WITH_POSIX_MEMALIGN
    REQUIRE(T::usable_size(p, nullptr) == 0);  // unknown: documented cost
    errno = 0;
    REQUIRE(T::realloc(p, 100, nullptr) == nullptr);  // the old size is unknown: fails, p stays valid
    REQUIRE(errno == ENOMEM);
    T::free(p, nullptr);
#else
    REQUIRE(T::usable_size(p, nullptr) >= 20);
    char *q = static_cast<char *>(T::realloc(p, 1000, nullptr));
    REQUIRE(q != nullptr);
    for (int i = 0; i < 20; ++i) REQUIRE(q[i] == 'x');
    REQUIRE(calls.malloc == 2);
    REQUIRE(calls.free == 1);  // the old chunk, given back to the allocator
    T::free(q, nullptr);
#endif
}
