/* SPDX-License-Identifier: MIT */
/*
 * The dynamic hook ABI: how hooks linked into one object (a program or library built by allocscc, on
 * the wrap or wrapdl backend) and a tool preloaded into the process (libheapindex.so, libmalloctrace.so)
 * cooperate, so that every allocation is seen once, by the tool, with its real caller.
 *
 *   struct mallochooks_hooks    a table of the hook API; every entry gets the table itself first, so a
 *                               table can carry context.  Generated from MALLOCHOOKS_ALL_HOOKS.
 *   struct mallochooks_layer    what a preloaded tool exports under the name MALLOCHOOKS_LAYER_SYMBOL:
 *                               - its layer, to be put in front of *another* object's allocator: each entry
 *                                 takes that allocator's table as `next` (used by wrapdl: an executable or
 *                                 library with its own malloc);
 *                               - its whole chain, ending in its own terminal: for link-time hooks whose
 *                                 allocator is the one the preload reaches anyway (wrap: malloc in libc), so
 *                                 that events are raised once, by the tool, with the caller the link-time
 *                                 hooks saw.
 * A layer must accept calls from several chains at once and its init may be called once per chain.
 */
#ifndef MALLOCHOOKS_DYNAMIC_H
#define MALLOCHOOKS_DYNAMIC_H

#include <stddef.h>
#include <stdint.h>

#include "mallochooks/family.h"

/* ABI 2 added the C++ hooks (cxx_new, cxx_delete) to both tables: hooks adopt only a layer of their own
 * ABI (backends/linktime/adopted_layer.cc), so a tool and hooks of different ABIs do not see each other
 * rather than call through a table of another shape.  The symbol keeps its name. */
#define MALLOCHOOKS_LAYER_SYMBOL "mallochooks_layer_v1"
#define MALLOCHOOKS_LAYER_ABI 2u

#ifdef __cplusplus
extern "C" {
#endif

struct mallochooks_hooks {
#define MALLOCHOOKS_TABLE_ENTRY_(r, data, e)                                                          \
    MALLOCHOOKS_RET(e) (*MALLOCHOOKS_NAME(e))(const struct mallochooks_hooks *self,                   \
                                              MALLOCHOOKS_TYPES(e), const void *caller);
    MALLOCHOOKS_FOR_EACH(MALLOCHOOKS_TABLE_ENTRY_, ~, MALLOCHOOKS_ALL_HOOKS)
#undef MALLOCHOOKS_TABLE_ENTRY_
};

struct mallochooks_layer {
    uint32_t abi;  /* MALLOCHOOKS_LAYER_ABI */
    uint32_t size; /* sizeof(struct mallochooks_layer) of the exporter */
    const char *name;
    /* Called by each chain that adopts the layer, before its first hook call; idempotent. */
    void (*init)(const struct mallochooks_hooks *next);
#define MALLOCHOOKS_LAYER_ENTRY_(r, data, e)                                                          \
    MALLOCHOOKS_RET(e) (*MALLOCHOOKS_NAME(e))(const struct mallochooks_hooks *next,                   \
                                              MALLOCHOOKS_TYPES(e), const void *caller);
    MALLOCHOOKS_FOR_EACH(MALLOCHOOKS_LAYER_ENTRY_, ~, MALLOCHOOKS_ALL_HOOKS)
#undef MALLOCHOOKS_LAYER_ENTRY_
    /* The exporter's own chain, ending in its own terminal (never NULL). */
    const struct mallochooks_hooks *chain;
};

#ifdef __cplusplus
}

#include "mallochooks/hooks.h"

namespace mallochooks {

/* A `Next` (see hooks.h) that calls through a table: how a layer written once runs in front of an
 * allocator it only knows at run time. */
struct table_next {
    const mallochooks_hooks *table;
#define MALLOCHOOKS_TABLE_NEXT_(r, data, e)                                                           \
    MALLOCHOOKS_RET(e) MALLOCHOOKS_NAME(e)(MALLOCHOOKS_DECLS(e), const void *caller) const {          \
        return table->MALLOCHOOKS_NAME(e)(table, MALLOCHOOKS_ARGS(e), caller);                        \
    }
    MALLOCHOOKS_FOR_EACH(MALLOCHOOKS_TABLE_NEXT_, ~, MALLOCHOOKS_ALL_HOOKS)
#undef MALLOCHOOKS_TABLE_NEXT_
};

/* table_of<Hooks>: a table whose entries call Hooks' static hook functions (a chain, a front, or a
 * terminal, whose C++ hooks are optional: through full_terminal, hooks.h).  constinit-able: no code runs to build it. */
template <class Hooks> struct table_of {
#define MALLOCHOOKS_TABLE_OF_FN_(r, data, e)                                                          \
    static MALLOCHOOKS_RET(e) MALLOCHOOKS_NAME(e)(const mallochooks_hooks *,                          \
                                                  MALLOCHOOKS_DECLS(e), const void *caller) {         \
        return full_terminal<Hooks>::MALLOCHOOKS_NAME(e)(MALLOCHOOKS_ARGS(e), caller);                \
    }
    MALLOCHOOKS_FOR_EACH(MALLOCHOOKS_TABLE_OF_FN_, ~, MALLOCHOOKS_ALL_HOOKS)
#undef MALLOCHOOKS_TABLE_OF_FN_
#define MALLOCHOOKS_TABLE_OF_INIT_(r, data, e) &MALLOCHOOKS_NAME(e),
    static constexpr mallochooks_hooks value = {MALLOCHOOKS_FOR_EACH(MALLOCHOOKS_TABLE_OF_INIT_, ~, MALLOCHOOKS_ALL_HOOKS)};
#undef MALLOCHOOKS_TABLE_OF_INIT_
};

/* layer_of<Layer, Scope>::value(name, chain): the exported description of a layer (see hooks.h for what a
 * layer is), its entries instantiating Layer over a table_next.  Scope (nothing by default) lets a runtime
 * library mark its exported layer's calls (libmallochooks/foreign_calls.h): Scope::adopt(table) once per
 * adopting chain, from init; each entry then runs inside a Scope object while Scope::active(), and as a
 * plain tail call otherwise (the same instance of the layer either way). */
struct no_scope {};
template <class Layer, class Scope = no_scope> struct layer_of {
    static void init(const mallochooks_hooks *next) {
        if constexpr (requires { Scope::adopt(next); }) Scope::adopt(next);
        Layer::init(table_next{next});
    }
#define MALLOCHOOKS_LAYER_OF_FN_(r, data, e)                                                          \
    __attribute__((noinline, cold)) static MALLOCHOOKS_RET(e) BOOST_PP_CAT(marked_, MALLOCHOOKS_NAME(e))( \
        const mallochooks_hooks *next, MALLOCHOOKS_DECLS(e), const void *caller) {                    \
        const Scope scope{};                                                                          \
        return Layer::MALLOCHOOKS_NAME(e)(table_next{next}, MALLOCHOOKS_ARGS(e), caller);             \
    }                                                                                                 \
    static MALLOCHOOKS_RET(e) MALLOCHOOKS_NAME(e)(const mallochooks_hooks *next,                      \
                                                  MALLOCHOOKS_DECLS(e), const void *caller) {         \
        if constexpr (requires { Scope::active(); }) {                                                \
            if (__builtin_expect(Scope::active(), 0))                                                 \
                return BOOST_PP_CAT(marked_, MALLOCHOOKS_NAME(e))(next, MALLOCHOOKS_ARGS(e), caller); \
        }                                                                                             \
        return Layer::MALLOCHOOKS_NAME(e)(table_next{next}, MALLOCHOOKS_ARGS(e), caller);             \
    }
    MALLOCHOOKS_FOR_EACH(MALLOCHOOKS_LAYER_OF_FN_, ~, MALLOCHOOKS_ALL_HOOKS)
#undef MALLOCHOOKS_LAYER_OF_FN_
#define MALLOCHOOKS_LAYER_OF_INIT_(r, data, e) &MALLOCHOOKS_NAME(e),
    static constexpr mallochooks_layer value(const char *name, const mallochooks_hooks *chain) {
        return {MALLOCHOOKS_LAYER_ABI, sizeof(mallochooks_layer), name, &init,
                MALLOCHOOKS_FOR_EACH(MALLOCHOOKS_LAYER_OF_INIT_, ~, MALLOCHOOKS_ALL_HOOKS) chain};
    }
#undef MALLOCHOOKS_LAYER_OF_INIT_
};

}  /* namespace mallochooks */
#endif

#endif /* MALLOCHOOKS_DYNAMIC_H */
