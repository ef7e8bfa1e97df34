// SPDX-License-Identifier: MIT
// The wrapdl backend's terminal: for an output (executable or shared library) that defines its own
// allocator.  The output is linked with a copy of the allocator's object in which each family function X
// it defines has a second, hidden name __mallochooks_real_X (mallochooks-alias), and with
// `--defsym X=__mallochooks_wrapdl_X` (backends/link_flags.h): every reference to X, from this output or,
// at run time, from other objects, reaches our entry points, and the terminal reaches the allocator's
// code through the hidden names, bound by the linker inside this output.  Nothing is looked up at run
// time, so nothing can land in the wrong object (the original libmallochooks looked the allocator up with
// RTLD_NEXT from a library, and so ended a library's hooks in glibc's malloc instead of its own).
// Functions the allocator lacks are bound to fallbacks (backends/wrapdl/fallbacks.cc).
//
// Once --defsym has taken the names, the allocator's own internal calls (a calloc that calls malloc, a
// realloc that calls free) reach our entry points too.  They are part of a call the hooks already handle:
// when a tool is adopted, adopted_layer runs the whole call under the reentrancy guard, so they come
// straight back here; without one, they pass through a chain that raises nothing.  The terminal itself
// sets no guard, which would cost every call a TLS write and its tail call: a chain that puts an event
// layer of its own in front of this terminal must guard around it (docs/link-time.md).
#ifndef MALLOCHOOKS_BACKENDS_WRAPDL_TERMINAL_H
#define MALLOCHOOKS_BACKENDS_WRAPDL_TERMINAL_H

//
// C++'s allocation functions.  An output that defines its own operator new and delete (an allocator such as
// tcmalloc, linked in) has them diverted like its malloc (--defsym to our entry points, a hidden
// __mallochooks_real_X alias for each), and the terminal must then call exactly the operator the program
// called: the hooks say only size, alignment and kind, so the entry point records which operator it is
// (cxx_enter/cxx_leave, hooks.h's cxx_entry_scope; a thread-local, put back on the way out so that a signal
// handler's new leaves the interrupted call's record intact).  The allocator's own operators do what C++
// requires themselves (new_handler loop, bad_alloc, or null for nothrow), so the user API passes their
// result on as it is (cxx_final).  Every __mallochooks_real_X of C++ is referred to, so the ones the output
// does not define are bound to fallbacks (fallbacks.cc), never reached: an entry point exists only for
// an operator the output defines.  A sized delete goes to the output's unsized operator of the same form
// when it defines one: a layer may have asked for more than the program's size (the heap index's
// trailer), so the program's size need not be the chunk's.  docs/cxx.md ("Link-time hooks").
#include <new>

#include "backends/terminal.h"
#include "backends/wrapdl/names.h"
#include "mallochooks/hooks.h"

MALLOCHOOKS_DECLARE_UNDERLYING(MALLOCHOOKS_WRAPDL_REAL, __attribute__((visibility("hidden"))))

// The output's own C++ operators (or their fallbacks) under their hidden names.  Not noexcept: a throwing
// operator new throws.
#define MALLOCHOOKS_WRAPDL_DECLARE_CXX_(r, prefix, e)                                                  \
    extern "C" __attribute__((visibility("hidden"))) MALLOCHOOKS_RET(e)                               \
        BOOST_PP_CAT(prefix, MALLOCHOOKS_NAME(e))(MALLOCHOOKS_TYPES(e));
// Calls call(context) so that an exception it throws stays out of the chain (cxx_catch.cc): null then,
// and __mallochooks_real_cxx_rethrow() throws it again once the chain has returned.  Bound by the link
// flags to cxx_catch.cc's for an output that defines C++ operators, else to fallbacks.cc's plain call.
extern "C" __attribute__((visibility("hidden"))) void *__mallochooks_real_cxx_try(void *(*call)(void *), void *context) noexcept;
extern "C" __attribute__((visibility("hidden"))) void __mallochooks_real_cxx_rethrow();
MALLOCHOOKS_FOR_EACH(MALLOCHOOKS_WRAPDL_DECLARE_CXX_, MALLOCHOOKS_WRAPDL_REAL, MALLOCHOOKS_CXX_USER_API)
MALLOCHOOKS_FOR_EACH(MALLOCHOOKS_WRAPDL_DECLARE_CXX_, MALLOCHOOKS_WRAPDL_FALLBACK, MALLOCHOOKS_CXX_USER_API)
#undef MALLOCHOOKS_WRAPDL_DECLARE_CXX_

namespace mallochooks::wrapdl {

// The operator this thread's current C++ call came in by (entry.cc).  initial-exec: see guard.h.
extern __thread cxx_function current_cxx __attribute__((visibility("hidden"), tls_model("initial-exec")));

// Does the output define X itself (rather than the link binding its alias to the fallback)?
template <class F> inline bool defines(F *real, F *fallback) {
    const void *r = reinterpret_cast<const void *>(real), *f = reinterpret_cast<const void *>(fallback);
    __asm__("" : "+r"(r));  // the linker decides: no folding of the comparison
    return r != f;
}

#define MALLOCHOOKS_WRAPDL_IS_NEW_cxx_new    1
#define MALLOCHOOKS_WRAPDL_IS_NEW_cxx_delete 0
#define MALLOCHOOKS_WRAPDL_IS_NEW_(e)        BOOST_PP_CAT(MALLOCHOOKS_WRAPDL_IS_NEW_, MALLOCHOOKS_UNDERLYING(e))
#define MALLOCHOOKS_WRAPDL_IS_DELETE_cxx_new    0
#define MALLOCHOOKS_WRAPDL_IS_DELETE_cxx_delete 1
#define MALLOCHOOKS_WRAPDL_IS_DELETE_(e)     BOOST_PP_CAT(MALLOCHOOKS_WRAPDL_IS_DELETE_, MALLOCHOOKS_UNDERLYING(e))
#define MALLOCHOOKS_WRAPDL_REAL_(e)          BOOST_PP_CAT(MALLOCHOOKS_WRAPDL_REAL, MALLOCHOOKS_NAME(e))
#define MALLOCHOOKS_WRAPDL_NEW_CASE_(r, data, e)                                                       \
    BOOST_PP_EXPR_IIF(MALLOCHOOKS_WRAPDL_IS_NEW_(e),                                                   \
                      case cxx_function::MALLOCHOOKS_NAME(e) : return MALLOCHOOKS_WRAPDL_REAL_(e)(MALLOCHOOKS_ARGS(e));)
// The throwing forms, through cxx_try: their exception stays out of the chain.
#define MALLOCHOOKS_WRAPDL_THROWING_CASE_(name, ...)                                                   \
    case cxx_function::name: {                                                                         \
        new_call c{size, alignment};                                                                   \
        return __mallochooks_real_cxx_try(                                                             \
            [](void *context) -> void * {                                                              \
                [[maybe_unused]] const new_call &a = *static_cast<new_call *>(context);                 \
                return BOOST_PP_CAT(MALLOCHOOKS_WRAPDL_REAL, name)(__VA_ARGS__);                       \
            },                                                                                         \
            &c);                                                                                       \
    }
#define MALLOCHOOKS_WRAPDL_DELETE_CASE_(r, data, e)                                                    \
    BOOST_PP_EXPR_IIF(MALLOCHOOKS_WRAPDL_IS_DELETE_(e),                                                \
                      case cxx_function::MALLOCHOOKS_NAME(e) : return MALLOCHOOKS_WRAPDL_REAL_(e)(MALLOCHOOKS_ARGS(e));)
// A sized delete: the output's unsized operator of the same form if it has one.
#define MALLOCHOOKS_WRAPDL_UNSIZED_(sized, unsized, ...)                                               \
    case cxx_function::sized:                                                                          \
        if (defines(&BOOST_PP_CAT(MALLOCHOOKS_WRAPDL_REAL, unsized), &BOOST_PP_CAT(MALLOCHOOKS_WRAPDL_FALLBACK, unsized))) \
            return BOOST_PP_CAT(MALLOCHOOKS_WRAPDL_REAL, unsized)(__VA_ARGS__);                        \
        break;

struct terminal {
    static void init() {}
    MALLOCHOOKS_DIRECT_TERMINAL_HOOKS(MALLOCHOOKS_WRAPDL_REAL, )

    static cxx_function cxx_enter(cxx_function f) {
        const cxx_function saved = current_cxx;
        current_cxx = f;
        return saved;
    }
    static void cxx_leave(cxx_function saved) { current_cxx = saved; }
    // The operators' own results are final: no new_handler loop of ours on top (user_api.h).
    static constexpr bool cxx_final = true;

    // A throwing new that failed: its exception, kept by cxx_try, is thrown again (by the entry point,
    // once the chain has returned: user_api.h).
    static void cxx_rethrow() { __mallochooks_real_cxx_rethrow(); }

    struct new_call {
        size_t size;
        std::align_val_t alignment;
    };
    static void *cxx_new(size_t size, size_t align, unsigned, const void *) {
        [[maybe_unused]] const std::align_val_t alignment{align};
        [[maybe_unused]] const std::nothrow_t tag{};  // not std::nothrow: that object lives in libstdc++
        switch (current_cxx) {
            MALLOCHOOKS_WRAPDL_THROWING_CASE_(_Znwm, a.size)
            MALLOCHOOKS_WRAPDL_THROWING_CASE_(_Znam, a.size)
            MALLOCHOOKS_WRAPDL_THROWING_CASE_(_ZnwmSt11align_val_t, a.size, a.alignment)
            MALLOCHOOKS_WRAPDL_THROWING_CASE_(_ZnamSt11align_val_t, a.size, a.alignment)
        default: break;
        }
        switch (current_cxx) {
            MALLOCHOOKS_FOR_EACH(MALLOCHOOKS_WRAPDL_NEW_CASE_, ~, MALLOCHOOKS_CXX_USER_API)
        default: break;
        }
        // Not reached from an entry point of ours (each records its operator): the malloc family's.
        return align > 16 ? BOOST_PP_CAT(MALLOCHOOKS_WRAPDL_REAL, memalign)(align, size)
                           : BOOST_PP_CAT(MALLOCHOOKS_WRAPDL_REAL, malloc)(size);
    }
    static void cxx_delete(void *ptr, size_t size, size_t align, unsigned, const void *) {
        [[maybe_unused]] const std::align_val_t alignment{align};
        [[maybe_unused]] const std::nothrow_t tag{};
        switch (current_cxx) {
            MALLOCHOOKS_WRAPDL_UNSIZED_(_ZdlPvm, _ZdlPv, ptr)
            MALLOCHOOKS_WRAPDL_UNSIZED_(_ZdaPvm, _ZdaPv, ptr)
            MALLOCHOOKS_WRAPDL_UNSIZED_(_ZdlPvmSt11align_val_t, _ZdlPvSt11align_val_t, ptr, alignment)
            MALLOCHOOKS_WRAPDL_UNSIZED_(_ZdaPvmSt11align_val_t, _ZdaPvSt11align_val_t, ptr, alignment)
        default: break;
        }
        switch (current_cxx) {
            MALLOCHOOKS_FOR_EACH(MALLOCHOOKS_WRAPDL_DELETE_CASE_, ~, MALLOCHOOKS_CXX_USER_API)
        default: break;
        }
        BOOST_PP_CAT(MALLOCHOOKS_WRAPDL_REAL, free)(ptr);
    }
};
static_assert(is_terminal<terminal>);

}  // namespace mallochooks::wrapdl

#endif
