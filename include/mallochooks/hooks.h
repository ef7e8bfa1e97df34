// SPDX-License-Identifier: MIT
// The hook API in C++, and how hook layers compose into a chain.
//
// A *terminal* reaches a real allocator.  It is a class with static functions, one per hook of
// MALLOCHOOKS_HOOK_API (the C++ hooks, MALLOCHOOKS_CXX_HOOKS, are optional: full_terminal below), each taking the allocator function's parameters plus `const void *caller`, and
// `static void init()` which makes the terminal ready (it may be called more than once).
//
// A *layer* sits above a terminal or another layer.  It is a class with static function templates taking
// the next stage first:
//
//     struct my_layer {
//         template <class Next> static void init(Next next);                  // once, innermost first
//         template <class Next> static void *malloc(Next next, size_t size, const void *caller);
//         template <class Next> static void free(Next next, void *ptr, const void *caller);
//         ... one per hook of MALLOCHOOKS_ALL_HOOKS (the C++ ones, cxx_new and cxx_delete, included) ...
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
//
// How a call may leave a layer.  The contract is `next`: a layer hands each call it does not answer
// itself to the next stage, and never reaches past it.  Every exception in the tree is listed here; each
// exists because the call through `next` cost instructions on a malloc/free pair that bench/ measured.
// A new one is added to this list, with the condition that makes it safe, or it is a bug.
//
//   1. next.<hook>(...): the one ordinary way.  `Next` may be a compile-time chain or a table
//      (dynamic.h); the layer cannot tell.
//   2. Answering the call itself, without calling next: a layer may fail a call, or cancel it (the event
//      layer's pre_nonnull_free returning non-zero cancels a free, event_hooks/event_layer.h).
//   3. Into another chain: a layer may hand the call to a whole chain built elsewhere instead of `next`.
//      adopted_layer<adopt::tool_chain> (backends/linktime/adopted_layer.h) does, for link-time hooks
//      whose allocator is the one a preloaded tool's chain reaches anyway.
//   4. Around the chain, before any layer: front<Hooks> (libmallochooks/user_api.h) sends a call straight
//      to Hooks::terminal when the chain is not ready (a call made by the chain's own init, or one
//      arriving while another thread initialises it) or when the call is nested inside a hook on the same
//      thread (the reentrancy guard, libmallochooks/guard.h).  So no layer sees what a layer of its own
//      chain allocates.
//      `Hooks::terminal` is chain<...>::terminal unless the Hooks type says otherwise:
//   5. A Hooks type that redefines `terminal`: derive from the chain and declare `using terminal = X;`
//      to choose where the calls of 4 go, while the chain's layers still reach the chain's own terminal
//      through `next`.  index_hooks in index/heapindex.cc does, so that calls the heap index's layer
//      cannot see are indexed anyway (heapindex::early_terminal, index/heapindex_layer.h).  X must be a
//      terminal (backends/terminal.h) over the same allocator as the chain's terminal.
//   6. straight_through<Hooks> (below): a specialisation may declare that the whole chain has nothing to
//      do; link-time entry points (backends/linktime/entry_points.h) then call Hooks::terminal directly,
//      past front<> and every layer.  adopted_layer specialises it for chain<adopted_layer, Terminal>
//      once it found no tool.  Safe only when every layer would forward every call unchanged and the
//      terminal is initialised; it is read on every call, so it must be one load.
//   7. Next::terminal from inside a layer: when `Next` is exactly chain<Terminal> (nothing between the
//      layer and the terminal that it could skip), a layer may call the terminal's own extra functions
//      that skip a test the layer has already answered.  heapindex's basic_layer does (and bench/'s floor
//      layer), through direct_terminal<Next> (below): preload::terminal's free_unowned and
//      usable_size_unowned skip the bootstrap-arena test for chunks the layer knows are not the arena's
//      (it asked arena_owns when it handed them out), and its malloc_unowned never hands out the arena's
//      (it answers not_served where malloc would have: the layer then calls next.malloc).  The layer
//      tests for those functions with a requires-clause and falls back to `next` for any other Next.
//   8. Past the whole chain, for C++'s allocation functions only: a preload entry point of operator new or
//      delete calls the next definition of that operator directly when its terminal's cxx_next says so
//      (libmallochooks/entry_points.h; backends/preload/terminal.h, cxx_delegate): when the allocator
//      behind the preload defines those operators itself, or the process's malloc is not the preload's.
//      Safe because then no layer could see those calls before either (they never reached malloc through
//      the chain), and indexing them would call that allocator's usable size, which may call operator
//      new (tcmalloc's does).  docs/cxx.md.
//   9. Past the whole chain, for glibc's __libc_ names only: a preload entry point of __libc_malloc and
//      friends calls its terminal's libc_side directly (user_api over full_terminal<libc_side>) while the
//      terminal's call into the allocator behind it is in flight on this thread, or the exported layer's
//      call into a link-time output's own allocator (libc_side::unhooked; backends/preload/terminal.h,
//      libmallochooks/foreign_calls.h): that allocator is built on glibc's names, and the call is its
//      own, made inside an allocation the chain is already handling.  Hooked, the chain would index or trace
//      it twice (and with the next `malloc` as its terminal, recurse).  docs/heapindex.md, "glibc's
//      __libc_ names".  (The __libc_ entry points' ordinary route is no exit: the same layers, through
//      `next`, over another terminal: chain::over, front<Chain, Owner> in libmallochooks/user_api.h.)
#ifndef MALLOCHOOKS_HOOKS_H
#define MALLOCHOOKS_HOOKS_H

#include <stddef.h>
#include <stdint.h>

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
    MALLOCHOOKS_FOR_EACH(MALLOCHOOKS_DEFAULT_HOOK_, ~, MALLOCHOOKS_ALL_HOOKS)
#undef MALLOCHOOKS_DEFAULT_HOOK_
};

// full_terminal<T>: every hook of MALLOCHOOKS_ALL_HOOKS over a terminal T, which must implement the hook
// API and may implement the C++ hooks: when it does not, cxx_new is its malloc (memalign for an alignment
// above malloc's) and cxx_delete its free.  What calls a terminal calls it through this.
template <class T> struct full_terminal {
#define MALLOCHOOKS_TERMINAL_HOOK_(r, data, e)                                                      \
    static MALLOCHOOKS_RET(e) MALLOCHOOKS_NAME(e)(MALLOCHOOKS_DECLS(e),                             \
                                                  const void *caller) {                             \
        return T::MALLOCHOOKS_NAME(e)(MALLOCHOOKS_ARGS(e), caller);                                 \
    }
    MALLOCHOOKS_FOR_EACH(MALLOCHOOKS_TERMINAL_HOOK_, ~, MALLOCHOOKS_HOOK_API)
#undef MALLOCHOOKS_TERMINAL_HOOK_
    static void *cxx_new(size_t size, size_t alignment, unsigned kind, const void *caller) {
        if constexpr (requires { T::cxx_new(size, alignment, kind, caller); }) {
            return T::cxx_new(size, alignment, kind, caller);
        } else {
            return alignment > 16 ? T::memalign(alignment, size, caller) : T::malloc(size, caller);
        }
    }
    static void cxx_delete(void *ptr, size_t size, size_t alignment, unsigned kind, const void *caller) {
        if constexpr (requires { T::cxx_delete(ptr, size, alignment, kind, caller); }) {
            T::cxx_delete(ptr, size, alignment, kind, caller);
        } else {
            T::free(ptr, caller);
        }
    }
};

// Which C++ allocation function a call came in by: one value per entry of MALLOCHOOKS_CXX_USER_API, in
// its order, then none.  The hooks themselves (cxx_new, cxx_delete) say only size, alignment and kind,
// which is all a layer needs; a terminal that reaches an allocator's *own* operator new and delete (the
// wrapdl terminal, for an output that defines them: backends/wrapdl/terminal.h) must call exactly the
// function the program called, and learns it from the entry point through cxx_entry_scope.
enum class cxx_function : unsigned char {
#define MALLOCHOOKS_CXX_FUNCTION_(r, data, e) MALLOCHOOKS_NAME(e),
    MALLOCHOOKS_FOR_EACH(MALLOCHOOKS_CXX_FUNCTION_, ~, MALLOCHOOKS_CXX_USER_API)
#undef MALLOCHOOKS_CXX_FUNCTION_
    none
};

// Around a C++ entry point's call into a chain whose terminal is T: T::cxx_enter(f) records f and
// returns what was recorded before, T::cxx_leave puts that back (so a signal handler's new in between
// leaves the interrupted call's record as it was).  Nothing at all for a terminal without them.
template <class T> class cxx_entry_scope {
    static constexpr bool used = requires { T::cxx_leave(T::cxx_enter(cxx_function::none)); };

public:
    explicit cxx_entry_scope(cxx_function f) {
        if constexpr (used) saved_ = T::cxx_enter(f);
    }
    ~cxx_entry_scope() {
        if constexpr (used) T::cxx_leave(saved_);
    }
    cxx_entry_scope(const cxx_entry_scope &) = delete;
    cxx_entry_scope &operator=(const cxx_entry_scope &) = delete;

private:
    [[maybe_unused]] cxx_function saved_ = cxx_function::none;
};

template <class... Stages> struct chain;

template <class Layer, class Chain> struct prepend_stage;
template <class Layer, class... Stages> struct prepend_stage<Layer, chain<Stages...>> {
    using type = chain<Layer, Stages...>;
};

// Every chain also says, for code that builds a second route through the same layers (the preload
// entry points of glibc's __libc_ names, libmallochooks/entry_points.h):
//   chain_terminal   its last stage (`terminal` may be redefined: exit 5 below; this is not);
//   over<T>          the same layers over another terminal T.  A Hooks type that redefines `terminal`
//                    redefines `over` too, so that the new route keeps its choice (index/heapindex.cc).

// The last stage is the terminal.
template <class Terminal> struct chain<Terminal> {
    using terminal = Terminal;
    using chain_terminal = Terminal;
    template <class T> using over = chain<T>;
    static void init() { Terminal::init(); }
#define MALLOCHOOKS_TERMINAL_HOOK_(r, data, e)                                                      \
    static MALLOCHOOKS_RET(e) MALLOCHOOKS_NAME(e)(MALLOCHOOKS_DECLS(e),                             \
                                                  const void *caller) {                             \
        return full_terminal<Terminal>::MALLOCHOOKS_NAME(e)(MALLOCHOOKS_ARGS(e), caller);           \
    }
    MALLOCHOOKS_FOR_EACH(MALLOCHOOKS_TERMINAL_HOOK_, ~, MALLOCHOOKS_ALL_HOOKS)
#undef MALLOCHOOKS_TERMINAL_HOOK_
};

template <class Layer, class... Rest> struct chain<Layer, Rest...> {
    using next = chain<Rest...>;
    using terminal = typename next::terminal;
    using chain_terminal = typename next::chain_terminal;
    template <class T> using over = typename prepend_stage<Layer, typename next::template over<T>>::type;
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
    MALLOCHOOKS_FOR_EACH(MALLOCHOOKS_LAYER_HOOK_, ~, MALLOCHOOKS_ALL_HOOKS)
#undef MALLOCHOOKS_LAYER_HOOK_
};

// Whether a call into the chain Hooks may go straight to its terminal, past the front and every layer,
// because none of them has anything to do (adopted_layer once it found no tool): exit 6 at the top.  Only
// ever true once the terminal is initialised.  Link-time entry points (backends/linktime/entry_points.h)
// check it first, before any work on the allocation site, which nobody would see.
template <class Hooks> struct straight_through {
    static bool get() noexcept { return false; }
};

// Exit 7 (above): `Next` straight onto a terminal whose own calls skip its bootstrap-arena test for
// chunks known not to be the arena's (preload::terminal: backends/preload/terminal.h), so that a layer
// which asked arena_owns when it handed a chunk out reaches the allocator without the test again.  True
// only when nothing stands between the layer and such a terminal.
template <class Next> struct direct_terminal {
    static constexpr bool value = false;
};
template <class T>
    requires requires(void *p) {
        T::arena_owns(p);
        T::malloc_unowned(size_t{0}, nullptr);
        uintptr_t{T::not_served};
        size_t{T::unowned_spacing};
        T::free_unowned(p, nullptr);
        T::usable_size_unowned(p, nullptr);
    }
struct direct_terminal<chain<T>> {
    static constexpr bool value = true;
};

}  // namespace mallochooks

#endif
