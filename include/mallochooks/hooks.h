// SPDX-License-Identifier: MIT
// The hook API in C++, and how hook layers compose into a chain.
//
// A *terminal* reaches a real allocator.  It is a class with static functions, one per hook of
// MALLOCHOOKS_HOOK_API, each taking the allocator function's parameters plus `const void *caller`, and
// `static void init()` which makes the terminal ready (it may be called more than once).
//
// A *layer* sits above a terminal or another layer.  It is a class with static function templates taking
// the next stage first:
//
//     struct my_layer {
//         template <class Next> static void init(Next next);                  // once, innermost first
//         template <class Next> static void *malloc(Next next, size_t size, const void *caller);
//         template <class Next> static void free(Next next, void *ptr, const void *caller);
//         ... one per hook ...
//     };
//
// and calls `next.malloc(size, caller)` and so on.  `Next` is an empty type when the chain is composed at
// compile time (mallochooks::chain below: every call inlines) and a type carrying a table of function
// pointers when a layer is plugged into a chain built elsewhere (mallochooks/dynamic.h), so one layer
// description serves both.  mallochooks::layer_defaults provides pass-through hooks to derive from.
//
//     using hooks = mallochooks::chain<tracing_layer, indexing_layer, mallochooks::preload::terminal>;
//
// composes hook 1 -> hook 2 -> terminal; init runs terminal, then indexing, then tracing.
#ifndef MALLOCHOOKS_HOOKS_H
#define MALLOCHOOKS_HOOKS_H

#include <stddef.h>

#include "mallochooks/family.h"

namespace mallochooks {

// Pass-through layer: derive from it and redefine only the hooks you need.
struct layer_defaults {
    template <class Next> static void init(Next) {}
#define MALLOCHOOKS_DEFAULT_HOOK_(r, data, e)                                                       \
    template <class Next>                                                                           \
    static MALLOCHOOKS_RET(e) MALLOCHOOKS_NAME(e)(Next next, MALLOCHOOKS_DECLS(e),                  \
                                                  const void *caller) {                             \
        return next.MALLOCHOOKS_NAME(e)(MALLOCHOOKS_ARGS(e), caller);                               \
    }
    MALLOCHOOKS_FOR_EACH(MALLOCHOOKS_DEFAULT_HOOK_, ~, MALLOCHOOKS_HOOK_API)
#undef MALLOCHOOKS_DEFAULT_HOOK_
};

template <class... Stages> struct chain;

// The last stage is the terminal.
template <class Terminal> struct chain<Terminal> {
    using terminal = Terminal;
    static void init() { Terminal::init(); }
#define MALLOCHOOKS_TERMINAL_HOOK_(r, data, e)                                                      \
    static MALLOCHOOKS_RET(e) MALLOCHOOKS_NAME(e)(MALLOCHOOKS_DECLS(e),                             \
                                                  const void *caller) {                             \
        return Terminal::MALLOCHOOKS_NAME(e)(MALLOCHOOKS_ARGS(e), caller);                          \
    }
    MALLOCHOOKS_FOR_EACH(MALLOCHOOKS_TERMINAL_HOOK_, ~, MALLOCHOOKS_HOOK_API)
#undef MALLOCHOOKS_TERMINAL_HOOK_
};

template <class Layer, class... Rest> struct chain<Layer, Rest...> {
    using next = chain<Rest...>;
    using terminal = typename next::terminal;
    // Innermost first: a layer's post_init may allocate, and then everything below it must be ready.
    static void init() {
        next::init();
        Layer::init(next{});
    }
#define MALLOCHOOKS_LAYER_HOOK_(r, data, e)                                                         \
    static MALLOCHOOKS_RET(e) MALLOCHOOKS_NAME(e)(MALLOCHOOKS_DECLS(e),                             \
                                                  const void *caller) {                             \
        return Layer::MALLOCHOOKS_NAME(e)(next{}, MALLOCHOOKS_ARGS(e), caller);                     \
    }
    MALLOCHOOKS_FOR_EACH(MALLOCHOOKS_LAYER_HOOK_, ~, MALLOCHOOKS_HOOK_API)
#undef MALLOCHOOKS_LAYER_HOOK_
};

// Whether a call into the chain Hooks may go straight to its terminal, past the front and every layer,
// because none of them has anything to do (adopted_layer once it found no tool).  Only ever true once the
// terminal is initialised.  Link-time entry points (libmallochooks/entry_points.h) check it first, before
// any work on the allocation site, which nobody would see.
template <class Hooks> struct straight_through {
    static bool get() noexcept { return false; }
};

}  // namespace mallochooks

#endif
