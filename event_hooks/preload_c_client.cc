// SPDX-License-Identifier: MIT
// The user-API entry points of a preloaded library whose events are handled by a C client: link a C file
// defining some mallochooks_event_* functions with -lmallochooks_preload (whole archive) into a shared
// library and LD_PRELOAD it.  Chain: event_layer<c_event_client> -> preload terminal.
#include "backends/preload/terminal.h"
#include "event_hooks/c_event_client.h"
#include "event_hooks/event_layer.h"
#include "libmallochooks/entry_points.h"

namespace {
using c_client_hooks = mallochooks::chain<mallochooks::event_layer<mallochooks::c_event_client>,
                                          mallochooks::preload::terminal>;
}

MALLOCHOOKS_DEFINE_ENTRY_POINTS(, c_client_hooks)
