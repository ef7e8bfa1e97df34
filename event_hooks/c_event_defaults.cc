// SPDX-License-Identifier: MIT
// Weak, do-nothing definitions of the C event API, so that a C client defines only the events it
// handles.  In a file of their own so that no caller is compiled seeing the weak definition (a compiler
// may not fold a weak symbol's value, but keeping them apart makes that obvious).
#include "mallochooks/events.h"

extern "C" {
#define MALLOCHOOKS_WEAK_C_EVENT_(r, data, e)                                                           \
    __attribute__((weak)) MALLOCHOOKS_RET(e)                                                            \
        BOOST_PP_CAT(mallochooks_event_, MALLOCHOOKS_NAME(e))(MALLOCHOOKS_TYPES(e)) {                   \
        return MALLOCHOOKS_RET(e)();                                                                    \
    }
MALLOCHOOKS_FOR_EACH(MALLOCHOOKS_WEAK_C_EVENT_, ~, MALLOCHOOKS_EVENTS)
#undef MALLOCHOOKS_WEAK_C_EVENT_

__attribute__((weak)) extern const int mallochooks_event_wants_usable_size = 0;
}
