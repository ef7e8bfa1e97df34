// SPDX-License-Identifier: MIT
// adopted_layer: the hook layer through which link-time hooks hand their calls to a tool preloaded into
// the same process (libmalloctrace.so, libheapindex.so, the test recorder), so that every allocation
// is seen once, by the tool, with the caller the link-time hooks saw.  The tool exports its layer and its
// whole chain as MALLOCHOOKS_LAYER_SYMBOL (mallochooks/dynamic.h); this layer looks for it once, when the
// chain is initialised (the first allocation through these hooks), with fake_dlsym, in every loaded
// object but our own.  Then, by the chain's mode:
//
//   adopt::tool_chain  (wrap: the allocator is the one the tool's own terminal reaches anyway, libc's)
//       every hook goes to the tool's chain.  Calling our own terminal (__real_malloc) instead would run
//       into the tool's preloaded malloc and raise the events a second time, with the wrong caller.
//   adopt::tool_layer  (wrapdl: the allocator is in this output)
//       every hook goes to the tool's layer with OUR next stage as its `next` table, under our reentrancy
//       guard: what the tool's event code allocates (through malloc, which this output interposes) comes
//       straight back to our terminal instead of round again, and so do the allocator's own calls to the
//       family (a calloc that calls malloc), which --defsym sends to our entry points too.  A call whose
//       caller lies inside the tool's own object is the tool's terminal forwarding a call it has already
//       raised events for (a tool preloaded in front of a library that defines malloc: the tool's malloc
//       runs first, and its next malloc is ours), or the tool's own code: it goes straight to our next
//       stage, under the guard as well.
//   no tool found: straight to the next stage.  This is the cost of link-time hooks when no tool is loaded
//       (bench/): one predictable branch on a pointer that was set once.
//
// The tool is looked up once and kept: a tool dlopened later is not seen, and a tool must not be unloaded
// while link-time hooks use it (preloaded libraries never are).
#ifndef MALLOCHOOKS_ADOPTED_LAYER_H
#define MALLOCHOOKS_ADOPTED_LAYER_H

#include <stdint.h>

#include "libmallochooks/elf/fake_dlsym.h"
#include "libmallochooks/guard.h"
#include "mallochooks/dynamic.h"
#include "mallochooks/hooks.h"

namespace mallochooks {

// A tool found in the process: its exported layer and the addresses its object spans.
struct adopted_tool {
    const mallochooks_layer *layer = nullptr;
    elf::address_range object;
};

// The first object in link-map order, other than the one containing `self`, that exports a layer of our
// ABI (MALLOCHOOKS_LAYER_ABI, at least our struct's size); an empty result when there is none, or no link
// map at all (-static).  Never allocates, never locks (fake_dlsym).
adopted_tool find_tool(const void *self) noexcept __attribute__((visibility("hidden")));

enum class adopt { tool_chain, tool_layer };

template <adopt How> struct adopted_layer {
    // Written once, by init, before front<> publishes the chain as ready (release/acquire on its state):
    // hooks only run after that, so a plain read is enough.  Constant-initialised: no constructor.
    inline static constinit adopted_tool tool{};
    // No tool, and the next stage (the terminal: chains initialise innermost first) is ready: calls may
    // bypass the front and this layer (straight_through).  Set once, by init.
    inline static constinit bool no_tool = false;

    template <class Next> static void init(Next) {
        // Any address inside this object identifies it.
        tool = find_tool(&tool);
        if (How == adopt::tool_layer && tool.layer != nullptr) tool.layer->init(&table_of<Next>::value);
        if (tool.layer == nullptr) __atomic_store_n(&no_tool, true, __ATOMIC_RELEASE);
    }

    // The hot path without a tool: one load and a tail call into the next stage.  With a tool, the rest
    // is out of line (a call more is nothing next to the tool's events), so this needs no stack frame.
    // wrapdl runs both ways of the tool path under our guard: what the tool's events allocate, and what
    // the allocator itself calls through the family's names (a calloc calling malloc), comes straight
    // back to our terminal.
#define MALLOCHOOKS_ADOPTED_HOOK_(r, data, e)                                                          \
    template <class Next>                                                                              \
    static MALLOCHOOKS_RET(e) MALLOCHOOKS_NAME(e)(Next next, MALLOCHOOKS_DECLS(e),                     \
                                                  const void *caller) {                                \
        if (__builtin_expect(tool.layer == nullptr, 1))                                                \
            return next.MALLOCHOOKS_NAME(e)(MALLOCHOOKS_ARGS(e), caller);                              \
        return BOOST_PP_CAT(adopted_, MALLOCHOOKS_NAME(e))(next, MALLOCHOOKS_ARGS(e), caller);         \
    }                                                                                                  \
    template <class Next>                                                                              \
    __attribute__((noinline)) static MALLOCHOOKS_RET(e) BOOST_PP_CAT(adopted_, MALLOCHOOKS_NAME(e))(   \
        Next next, MALLOCHOOKS_DECLS(e), const void *caller) {                                         \
        const mallochooks_layer *const layer = tool.layer;                                             \
        if constexpr (How == adopt::tool_chain) {                                                      \
            return layer->chain->MALLOCHOOKS_NAME(e)(layer->chain, MALLOCHOOKS_ARGS(e), caller);       \
        } else {                                                                                       \
            reentrancy_guard guard;                                                                    \
            if (tool.object.contains(caller))                                                          \
                return next.MALLOCHOOKS_NAME(e)(MALLOCHOOKS_ARGS(e), caller);                          \
            return layer->MALLOCHOOKS_NAME(e)(&table_of<Next>::value, MALLOCHOOKS_ARGS(e), caller);    \
        }                                                                                              \
    }
    MALLOCHOOKS_FOR_EACH(MALLOCHOOKS_ADOPTED_HOOK_, ~, MALLOCHOOKS_ALL_HOOKS)
#undef MALLOCHOOKS_ADOPTED_HOOK_
};

// With no tool the layer forwards everything to the next stage, and nothing in front of it (the
// reentrancy guard, the init check) changes where a call goes: a call may go straight to the terminal
// (exit 6 of the list in include/mallochooks/hooks.h; the tool_chain mode above is exit 3).
// Read before front<> has checked that init is done, hence atomically (a plain load on x86).
template <adopt How, class Terminal> struct straight_through<chain<adopted_layer<How>, Terminal>> {
    static bool get() noexcept { return __atomic_load_n(&adopted_layer<How>::no_tool, __ATOMIC_ACQUIRE); }
};

}  // namespace mallochooks

#endif
