// SPDX-License-Identifier: MIT
// What the wrapdl terminal calls in place of an allocator function the output's allocator does not define.
// The link flags bind __mallochooks_real_X to __mallochooks_fallback_X for each such X (with --defsym, so
// the choice is made at link time from what mallochooks-alias found, in every linker the same way; weak
// references would have done it at run time, but gold resolves an undefined weak *hidden* reference in a
// PIE to the load address instead of 0).  Each fallback uses only the allocator's own functions, so a chunk
// always comes from, and goes back to, the allocator that owns it:
//
//   calloc              malloc + memset
//   memalign            malloc up to the default alignment; above it the allocator's posix_memalign, else
//                       its aligned_alloc, else fail with ENOMEM (only a layer that raises the alignment of
//                       a plain malloc, such as a trailer-adding index, ever needs this)
//   realloc             malloc + copy + free, given the allocator's malloc_usable_size; without it the old
//                       size is unknown and realloc fails with ENOMEM
//   malloc_usable_size  0.  The cost: a tool that asks for usable sizes (wants_usable_size) sees 0 for
//                       every chunk, and event_layer's realloc to a raised alignment copies nothing
//   malloc              fails with ENOMEM;  free: does nothing (an allocator without them is not one)
//   posix_memalign, aligned_alloc  fail with ENOMEM (never called: memalign checks for them first)
//   C++'s operator new and delete (each variant)  the allocator's malloc or memalign, and its free.  Never
//                       called: the terminal calls the operator the program called, and an entry point
//                       exists only for an operator the output defines (terminal.h); the link still needs
//                       every name the terminal refers to
//
// Hidden, in their own member of libmallochooks.a, pulled in by the -u the link flags add.
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include <boost/preprocessor/seq/for_each.hpp>

#include "backends/wrapdl/terminal.h"
#include "mallochooks/events.h"

#define MALLOCHOOKS_DECLARE_(r, prefix, name) \
    extern "C" __attribute__((visibility("hidden"))) decltype(::name) BOOST_PP_CAT(prefix, name);
BOOST_PP_SEQ_FOR_EACH(MALLOCHOOKS_DECLARE_, MALLOCHOOKS_WRAPDL_REAL, MALLOCHOOKS_WRAPDL_ALIGNED_ALTERNATIVES)
BOOST_PP_SEQ_FOR_EACH(MALLOCHOOKS_DECLARE_, MALLOCHOOKS_WRAPDL_FALLBACK, MALLOCHOOKS_WRAPDL_CALLED)
#undef MALLOCHOOKS_DECLARE_

namespace {

// Whether __mallochooks_real_X is the allocator's own X rather than our fallback for it (the link flags
// made them the same symbol).  The addresses go through an empty asm: two distinct declarations, the
// compiler would otherwise assume, can never have equal addresses, and fold the test to true.
template <class F> bool is_own(F *real, F *fallback) {
    const void *r = reinterpret_cast<const void *>(real), *f = reinterpret_cast<const void *>(fallback);
    __asm__("" : "+r"(r));
    return r != f;
}

// glibc's memalign: alignments up to the default one are plain mallocs; larger ones are rounded up to a
// power of two; above SIZE_MAX / 2 + 1 none exists (EINVAL).
constexpr size_t round_up_to_power_of_two(size_t alignment) {
    size_t a = MALLOCHOOKS_DEFAULT_ALIGNMENT;
    while (a < alignment) a <<= 1;
    return a;
}

}  // namespace

extern "C" {

void *__mallochooks_fallback_malloc(size_t) noexcept {
    errno = ENOMEM;
    return nullptr;
}

void __mallochooks_fallback_free(void *) noexcept {}

void *__mallochooks_fallback_calloc(size_t nmemb, size_t size) noexcept {
    const size_t total = nmemb * size;  // the user API has checked that it does not overflow
    void *p = __mallochooks_real_malloc(total);
    if (p != nullptr) memset(p, 0, total);
    return p;
}

size_t __mallochooks_fallback_malloc_usable_size(void *) noexcept { return 0; }

void *__mallochooks_fallback_realloc(void *ptr, size_t size) noexcept {
    if (!is_own(&__mallochooks_real_malloc_usable_size, &__mallochooks_fallback_malloc_usable_size)) {
        errno = ENOMEM;  // how much of the old chunk to keep is unknown
        return nullptr;
    }
    void *q = __mallochooks_real_malloc(size);
    if (q == nullptr) return nullptr;
    const size_t old = __mallochooks_real_malloc_usable_size(ptr);
    memcpy(q, ptr, old < size ? old : size);
    __mallochooks_real_free(ptr);
    return q;
}

int __mallochooks_fallback_posix_memalign(void **, size_t, size_t) noexcept { return ENOMEM; }

void *__mallochooks_fallback_aligned_alloc(size_t, size_t) noexcept {
    errno = ENOMEM;
    return nullptr;
}

void *__mallochooks_fallback_memalign(size_t alignment, size_t size) noexcept {
    if (alignment <= MALLOCHOOKS_DEFAULT_ALIGNMENT) return __mallochooks_real_malloc(size);
    if (alignment > SIZE_MAX / 2 + 1) {
        errno = EINVAL;
        return nullptr;
    }
    const size_t a = round_up_to_power_of_two(alignment);
    if (is_own(&__mallochooks_real_posix_memalign, &__mallochooks_fallback_posix_memalign)) {
        void *p = nullptr;
        const int error = __mallochooks_real_posix_memalign(&p, a, size);
        if (error != 0) {
            errno = error;
            return nullptr;
        }
        return p;
    }
    if (is_own(&__mallochooks_real_aligned_alloc, &__mallochooks_fallback_aligned_alloc)) {
        // C11 asks for a size that is a multiple of the alignment; some allocators insist.
        size_t rounded;
        if (__builtin_add_overflow(size, a - 1, &rounded)) {
            errno = ENOMEM;
            return nullptr;
        }
        return __mallochooks_real_aligned_alloc(a, rounded & ~(a - 1));
    }
    errno = ENOMEM;
    return nullptr;
}

}  // extern "C"

namespace {
// The C++ operators' fallbacks, by their parameters.
void *cxx_fallback(size_t size) { return __mallochooks_real_malloc(size); }
void *cxx_fallback(size_t size, const std::nothrow_t &) { return __mallochooks_real_malloc(size); }
void *cxx_fallback(size_t size, std::align_val_t a) { return __mallochooks_real_memalign(size_t(a), size); }
void *cxx_fallback(size_t size, std::align_val_t a, const std::nothrow_t &) {
    return __mallochooks_real_memalign(size_t(a), size);
}
void cxx_fallback(void *ptr) { __mallochooks_real_free(ptr); }
void cxx_fallback(void *ptr, size_t) { __mallochooks_real_free(ptr); }
void cxx_fallback(void *ptr, const std::nothrow_t &) { __mallochooks_real_free(ptr); }
void cxx_fallback(void *ptr, std::align_val_t) { __mallochooks_real_free(ptr); }
void cxx_fallback(void *ptr, size_t, std::align_val_t) { __mallochooks_real_free(ptr); }
void cxx_fallback(void *ptr, std::align_val_t, const std::nothrow_t &) { __mallochooks_real_free(ptr); }
}  // namespace

// An output without C++ operators of its own never calls these (terminal.h): a plain call, nothing kept.
extern "C" void *__mallochooks_fallback_cxx_try(void *(*call)(void *), void *context) noexcept { return call(context); }
extern "C" void __mallochooks_fallback_cxx_rethrow() {}

#define MALLOCHOOKS_CXX_FALLBACK_(r, data, e)                                                          \
    extern "C" MALLOCHOOKS_RET(e) BOOST_PP_CAT(MALLOCHOOKS_WRAPDL_FALLBACK, MALLOCHOOKS_NAME(e))(MALLOCHOOKS_DECLS(e)) { \
        return cxx_fallback(MALLOCHOOKS_ARGS(e));                                                      \
    }
MALLOCHOOKS_FOR_EACH(MALLOCHOOKS_CXX_FALLBACK_, ~, MALLOCHOOKS_CXX_USER_API)
#undef MALLOCHOOKS_CXX_FALLBACK_
