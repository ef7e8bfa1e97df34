/* SPDX-License-Identifier: MIT */
/*
 * The one list of everything mallochooks hooks, and the macros that generate code from it.
 *
 * The lists live here and nowhere else:
 *   MALLOCHOOKS_USER_API   the malloc family as programs call it (user API): glibc's C functions
 *                          (MALLOCHOOKS_C_USER_API) and C++'s operator new and delete (..._CXX_USER_API);
 *   MALLOCHOOKS_LIBC_USER_API  glibc's __libc_malloc family, which preloaded libraries define too;
 *   MALLOCHOOKS_HOOK_API   the narrower API hook layers implement, each call carrying the caller's address,
 *                          plus MALLOCHOOKS_CXX_HOOKS (cxx_new, cxx_delete: what C++ calls become, with
 *                          their kind); MALLOCHOOKS_ALL_HOOKS is both;
 *   MALLOCHOOKS_EVENTS     the events an event client may handle.
 * Entry points (with any symbol prefix), hook prototypes, the terminals of every backend, the C event API,
 * export lists and the tools' tables are all expanded from these lists with Boost.Preprocessor, so adding a
 * function to the family is one line here plus its translation into hook calls (libmallochooks/user_api.h).
 *
 * Format: each list is a Boost.PP sequence of tuples (name, return type, parameters[, extra]).  Parameters are
 * a sequence of (type, name) pairs; a function without parameters is written ((void, )).
 *
 * This header is plain C99/C++ preprocessor; it declares nothing by itself and is safe to include from the
 * C preprocessor run that generates linker version scripts.
 */
#ifndef MALLOCHOOKS_FAMILY_H
#define MALLOCHOOKS_FAMILY_H

#include <boost/preprocessor/cat.hpp>
#include <boost/preprocessor/comparison/equal.hpp>
#include <boost/preprocessor/control/iif.hpp>
#include <boost/preprocessor/punctuation/comma_if.hpp>
#include <boost/preprocessor/seq/for_each.hpp>
#include <boost/preprocessor/seq/for_each_i.hpp>
#include <boost/preprocessor/seq/size.hpp>
#include <boost/preprocessor/stringize.hpp>
#include <boost/preprocessor/tuple/elem.hpp>
#include <boost/preprocessor/tuple/size.hpp>

/* The user API: glibc 2.36's malloc family and the C++ allocation functions.  The fourth element says which hook the call mainly becomes (documentation for readers and
 * the stubgen table; the exact translation is in libmallochooks/user_api.h).  A fifth element, on the
 * C++ entries, is the function whose declaration the entry must match (an overloaded operator): entry_points.h checks the parameter types against it (the
 * mangled names themselves are checked by the export test, which finds each name in libstdc++). */
#define MALLOCHOOKS_USER_API MALLOCHOOKS_C_USER_API MALLOCHOOKS_CXX_USER_API

#define MALLOCHOOKS_C_USER_API                                                                     \
    ((malloc,             void *, ((size_t, size)),                                 malloc))       \
    ((calloc,             void *, ((size_t, nmemb))((size_t, size)),                calloc))       \
    ((realloc,            void *, ((void *, ptr))((size_t, size)),                  realloc))      \
    ((free,               void,   ((void *, ptr)),                                  free))         \
    ((memalign,           void *, ((size_t, alignment))((size_t, size)),            memalign))     \
    ((posix_memalign,     int,    ((void **, memptr))((size_t, alignment))((size_t, size)), memalign)) \
    ((aligned_alloc,      void *, ((size_t, alignment))((size_t, size)),            memalign))     \
    ((valloc,             void *, ((size_t, size)),                                 memalign))     \
    ((pvalloc,            void *, ((size_t, size)),                                 memalign))     \
    ((reallocarray,       void *, ((void *, ptr))((size_t, nmemb))((size_t, size)), realloc))      \
    ((malloc_usable_size, size_t, ((void *, ptr)),                                  usable_size))

/* glibc's own names for its allocator (glibc 2.36 exports these; __libc_reallocarray as GLIBC_PRIVATE),
 * which a program or an allocator calls to reach glibc's malloc whatever interposes `malloc`.  Allocators
 * that replace glibc's define them too (tcmalloc, mimalloc; valgrind's memcheck replaces them), so a
 * chunk from __libc_malloc may be given to free and the reverse.  A preloaded library defines them as
 * members of the family: each behaves as the C function named fourth (argument checks, errno, hooks),
 * but its chain ends at the next definition of the same __libc_ name, not at the next `malloc`
 * (backends/preload/terminal.h says why, and what a call from the allocator behind the library does).
 * Only the preload backend defines them: an output with link-time hooks that calls them reaches the
 * preloaded tool's (docs/heapindex.md, "glibc's __libc_ names").  Not members: __libc_mallinfo and
 * __libc_mallopt (no allocation, as mallinfo and mallopt are not), __libc_cfree (gone since glibc 2.26;
 * tcmalloc and mimalloc still define it).  Same format as the C list; the fourth element is the user-API
 * function the entry behaves as. */
#define MALLOCHOOKS_LIBC_USER_API                                                                  \
    ((__libc_malloc,       void *, ((size_t, size)),                                 malloc))      \
    ((__libc_calloc,       void *, ((size_t, nmemb))((size_t, size)),                calloc))      \
    ((__libc_realloc,      void *, ((void *, ptr))((size_t, size)),                  realloc))     \
    ((__libc_free,         void,   ((void *, ptr)),                                  free))        \
    ((__libc_memalign,     void *, ((size_t, alignment))((size_t, size)),            memalign))    \
    ((__libc_valloc,       void *, ((size_t, size)),                                 valloc))      \
    ((__libc_pvalloc,      void *, ((size_t, size)),                                 pvalloc))     \
    ((__libc_reallocarray, void *, ((void *, ptr))((size_t, nmemb))((size_t, size)), reallocarray))

/* The C++ allocation functions ([new.delete] of C++17: the replaceable ones), by their Itanium-ABI names
 * on LP64 (size_t is `m`).  Each throwing new that fails runs the new_handler loop and throws
 * std::bad_alloc, each nothrow new returns null instead (libmallochooks/cxx_runtime.h says how a runtime
 * library does that without needing libstdc++.so).  Parameter types are spelt as in <new>; code expanding
 * them includes <new>. */
#define MALLOCHOOKS_CXX_ALIGN_   std::align_val_t
#define MALLOCHOOKS_CXX_NOTHROW_ const std::nothrow_t &
#define MALLOCHOOKS_CXX_USER_API                                                                   \
    ((_Znwm, void *, ((size_t, size)), cxx_new, operator new))                                     \
    ((_Znam, void *, ((size_t, size)), cxx_new, operator new[]))                                   \
    ((_ZnwmRKSt9nothrow_t, void *, ((size_t, size))((MALLOCHOOKS_CXX_NOTHROW_, tag)), cxx_new, operator new)) \
    ((_ZnamRKSt9nothrow_t, void *, ((size_t, size))((MALLOCHOOKS_CXX_NOTHROW_, tag)), cxx_new, operator new[])) \
    ((_ZnwmSt11align_val_t, void *, ((size_t, size))((MALLOCHOOKS_CXX_ALIGN_, alignment)), cxx_new, operator new)) \
    ((_ZnamSt11align_val_t, void *, ((size_t, size))((MALLOCHOOKS_CXX_ALIGN_, alignment)), cxx_new, operator new[])) \
    ((_ZnwmSt11align_val_tRKSt9nothrow_t, void *,                                                  \
      ((size_t, size))((MALLOCHOOKS_CXX_ALIGN_, alignment))((MALLOCHOOKS_CXX_NOTHROW_, tag)), cxx_new, operator new)) \
    ((_ZnamSt11align_val_tRKSt9nothrow_t, void *,                                                  \
      ((size_t, size))((MALLOCHOOKS_CXX_ALIGN_, alignment))((MALLOCHOOKS_CXX_NOTHROW_, tag)), cxx_new, operator new[])) \
    ((_ZdlPv, void, ((void *, ptr)), cxx_delete, operator delete))                                 \
    ((_ZdaPv, void, ((void *, ptr)), cxx_delete, operator delete[]))                               \
    ((_ZdlPvm, void, ((void *, ptr))((size_t, size)), cxx_delete, operator delete))                \
    ((_ZdaPvm, void, ((void *, ptr))((size_t, size)), cxx_delete, operator delete[]))              \
    ((_ZdlPvRKSt9nothrow_t, void, ((void *, ptr))((MALLOCHOOKS_CXX_NOTHROW_, tag)), cxx_delete, operator delete)) \
    ((_ZdaPvRKSt9nothrow_t, void, ((void *, ptr))((MALLOCHOOKS_CXX_NOTHROW_, tag)), cxx_delete, operator delete[])) \
    ((_ZdlPvSt11align_val_t, void, ((void *, ptr))((MALLOCHOOKS_CXX_ALIGN_, alignment)), cxx_delete, operator delete)) \
    ((_ZdaPvSt11align_val_t, void, ((void *, ptr))((MALLOCHOOKS_CXX_ALIGN_, alignment)), cxx_delete, operator delete[])) \
    ((_ZdlPvmSt11align_val_t, void, ((void *, ptr))((size_t, size))((MALLOCHOOKS_CXX_ALIGN_, alignment)), cxx_delete, operator delete)) \
    ((_ZdaPvmSt11align_val_t, void, ((void *, ptr))((size_t, size))((MALLOCHOOKS_CXX_ALIGN_, alignment)), cxx_delete, operator delete[])) \
    ((_ZdlPvSt11align_val_tRKSt9nothrow_t, void,                                                   \
      ((void *, ptr))((MALLOCHOOKS_CXX_ALIGN_, alignment))((MALLOCHOOKS_CXX_NOTHROW_, tag)), cxx_delete, operator delete)) \
    ((_ZdaPvSt11align_val_tRKSt9nothrow_t, void,                                                   \
      ((void *, ptr))((MALLOCHOOKS_CXX_ALIGN_, alignment))((MALLOCHOOKS_CXX_NOTHROW_, tag)), cxx_delete, operator delete[]))

/* The hook API.  Every hook takes the same parameters as the underlying allocator function named in the
 * fourth element, plus `const void *caller` (the return address of the user-API call).  Contract, so that
 * no layer has to test for the degenerate cases: free's ptr is non-null; realloc's ptr is non-null and its
 * size non-zero (realloc(NULL, n) arrives as malloc, realloc(p, 0) as free); calloc's nmemb * size does
 * not overflow; usable_size's ptr is non-null.  calloc is a hook of its own (rather than malloc + memset)
 * so that a large calloc keeps the allocator's fresh-pages-are-zero shortcut and does not touch memory. */
#define MALLOCHOOKS_HOOK_API                                                                        \
    ((malloc,      void *, ((size_t, size)),                             malloc))                   \
    ((calloc,      void *, ((size_t, nmemb))((size_t, size)),            calloc))                   \
    ((free,        void,   ((void *, ptr)),                              free))                     \
    ((realloc,     void *, ((void *, ptr))((size_t, size)),              realloc))                  \
    ((memalign,    void *, ((size_t, alignment))((size_t, size)),        memalign))                 \
    ((usable_size, size_t, ((void *, ptr)),                              malloc_usable_size))

/* The C++ hooks: the hook API's calls for operator new and delete, which say what kind of allocation the
 * chunk is (so a layer can record it and check that it is released the same way, as memcheck and ASan
 * do).  Same contract as the hooks above (cxx_delete's ptr is non-null; cxx_new fails with null, the user
 * API then does what C++ requires).  alignment is 0 for the unaligned forms; cxx_delete's size is 0 for
 * the unsized ones.  kind is MALLOCHOOKS_KIND_NEW or MALLOCHOOKS_KIND_NEW_ARRAY.  A terminal need not
 * implement them: mallochooks::full_terminal (hooks.h) makes them its malloc or memalign, and its free.
 * No fourth element: no allocator function underlies them. */
#define MALLOCHOOKS_CXX_HOOKS                                                                       \
    ((cxx_new,    void *, ((size_t, size))((size_t, alignment))((unsigned, kind))))                 \
    ((cxx_delete, void,   ((void *, ptr))((size_t, size))((size_t, alignment))((unsigned, kind))))

/* Every hook a layer implements (the ones a terminal reaches through an allocator function, then the C++
 * ones). */
#define MALLOCHOOKS_ALL_HOOKS MALLOCHOOKS_HOOK_API MALLOCHOOKS_CXX_HOOKS

/* The kinds of allocation, as the C++ hooks pass them (0 is the malloc family's). */
#define MALLOCHOOKS_KIND_MALLOC    0u
#define MALLOCHOOKS_KIND_NEW       1u
#define MALLOCHOOKS_KIND_NEW_ARRAY 2u

/* The events.  C clients define mallochooks_event_<name>; C++ clients derive from
 * mallochooks::event_client and define static member functions <name>.  pre_nonnull_free returns non-zero
 * to cancel the free.  Sequences for every user call: docs/events.md. */
#define MALLOCHOOKS_EVENTS                                                                          \
    ((post_init,                    void, ((void, ))))                                              \
    ((pre_alloc,                    void, ((size_t *, size))((size_t *, alignment))((const void *, caller)))) \
    ((post_successful_alloc,        void, ((void *, ptr))((size_t, modified_size))                  \
                                          ((size_t, modified_alignment))((size_t, requested_size))  \
                                          ((size_t, requested_alignment))((const void *, caller)))) \
    ((pre_nonnull_free,             int,  ((void *, ptr))((size_t, usable_size))((const void *, caller)))) \
    ((post_nonnull_free,            void, ((void *, ptr))))                                         \
    ((pre_nonnull_nonzero_realloc,  void, ((void *, ptr))((size_t, size))((const void *, caller)))) \
    ((post_nonnull_nonzero_realloc, void, ((void *, old_ptr))((size_t, modified_size))              \
                                          ((size_t, old_usable_size))((const void *, caller))       \
                                          ((void *, new_ptr))))

/* ---- Accessors for one list entry ---------------------------------------------------------------- */
#define MALLOCHOOKS_NAME(e)       BOOST_PP_TUPLE_ELEM(0, e)
#define MALLOCHOOKS_RET(e)        BOOST_PP_TUPLE_ELEM(1, e)
#define MALLOCHOOKS_PARAMS(e)     BOOST_PP_TUPLE_ELEM(2, e)
#define MALLOCHOOKS_UNDERLYING(e) BOOST_PP_TUPLE_ELEM(3, e)
/* 1 when a user-API entry names, fifth, the function whose declaration it must match (a C++ operator);
 * 0 when the declaration has the entry's own name. */
#define MALLOCHOOKS_HAS_DECLARED_AS(e) BOOST_PP_EQUAL(BOOST_PP_TUPLE_SIZE(e), 5)
#define MALLOCHOOKS_DECLARED_AS(e)     BOOST_PP_TUPLE_ELEM(4, e)

/* `size_t size, void *ptr` from a parameter sequence. */
#define MALLOCHOOKS_PARAM_DECL_(r, data, i, p) \
    BOOST_PP_COMMA_IF(i) BOOST_PP_TUPLE_ELEM(0, p) BOOST_PP_TUPLE_ELEM(1, p)
#define MALLOCHOOKS_PARAM_DECLS(params) BOOST_PP_SEQ_FOR_EACH_I(MALLOCHOOKS_PARAM_DECL_, ~, params)

/* `size, ptr` from a parameter sequence (empty for ((void, ))). */
#define MALLOCHOOKS_PARAM_NAME_(r, data, i, p) BOOST_PP_COMMA_IF(i) BOOST_PP_TUPLE_ELEM(1, p)
#define MALLOCHOOKS_PARAM_NAMES(params) BOOST_PP_SEQ_FOR_EACH_I(MALLOCHOOKS_PARAM_NAME_, ~, params)

/* `size_t, void *` from a parameter sequence. */
#define MALLOCHOOKS_PARAM_TYPE_(r, data, i, p) BOOST_PP_COMMA_IF(i) BOOST_PP_TUPLE_ELEM(0, p)
#define MALLOCHOOKS_PARAM_TYPES(params) BOOST_PP_SEQ_FOR_EACH_I(MALLOCHOOKS_PARAM_TYPE_, ~, params)

/* The same, for a whole list entry: what every generator writes for a function's parameter list.
 *   MALLOCHOOKS_DECLS(e)  `size_t nmemb, size_t size`   (a declaration's parameters)
 *   MALLOCHOOKS_ARGS(e)   `nmemb, size`                 (a call's arguments; empty for ((void, )))
 *   MALLOCHOOKS_TYPES(e)  `size_t, size_t`              (a function type's parameters) */
#define MALLOCHOOKS_DECLS(e) MALLOCHOOKS_PARAM_DECLS(MALLOCHOOKS_PARAMS(e))
#define MALLOCHOOKS_ARGS(e)  MALLOCHOOKS_PARAM_NAMES(MALLOCHOOKS_PARAMS(e))
#define MALLOCHOOKS_TYPES(e) MALLOCHOOKS_PARAM_TYPES(MALLOCHOOKS_PARAMS(e))

/* Apply M(r, data, entry) to every entry of a list. */
#define MALLOCHOOKS_FOR_EACH(M, data, list) BOOST_PP_SEQ_FOR_EACH(M, data, list)

/* ---- Names, for export lists and tables ------------------------------------------------------------ */
/* `prefix##name;` for each user-API function (linker version scripts). */
#define MALLOCHOOKS_VERSION_SCRIPT_LINE_(r, prefix, e) BOOST_PP_CAT(prefix, MALLOCHOOKS_NAME(e));
#define MALLOCHOOKS_USER_API_EXPORTS(prefix) \
    MALLOCHOOKS_FOR_EACH(MALLOCHOOKS_VERSION_SCRIPT_LINE_, prefix, MALLOCHOOKS_USER_API)
/* A preloaded library's exports: the user API and glibc's __libc_ names. */
#define MALLOCHOOKS_PRELOAD_EXPORTS() \
    MALLOCHOOKS_USER_API_EXPORTS() MALLOCHOOKS_FOR_EACH(MALLOCHOOKS_VERSION_SCRIPT_LINE_, , MALLOCHOOKS_LIBC_USER_API)

#endif /* MALLOCHOOKS_FAMILY_H */
