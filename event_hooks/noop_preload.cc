// SPDX-License-Identifier: MIT
// libmallochooks_noop.so: the preload backend with an event client that handles nothing.  It is the
// baseline of what hooking costs (bench/) and a check that the hooks alone change no program's behaviour
// (tests/integration).  Chain: event_layer<event_client> -> preload terminal; every event compiles away.
#include "backends/preload/terminal.h"
#include "event_hooks/event_layer.h"
#include "libmallochooks/entry_points.h"

namespace {
using noop_hooks = mallochooks::chain<mallochooks::event_layer<mallochooks::event_client>,
                                      mallochooks::preload::terminal>;
}

MALLOCHOOKS_DEFINE_ENTRY_POINTS(, noop_hooks)
