// SPDX-License-Identifier: MIT
// c_event_client: the C++ event client that forwards every event to the C event API
// (mallochooks_event_<name>, declared in mallochooks/events.h).  Functions a C client leaves undefined
// fall back to weak defaults that do nothing (c_event_defaults.cc).  Each event costs a direct call even
// when the C client does not handle it; C++ clients that derive from mallochooks::event_client pay nothing
// for events they do not handle.
#ifndef MALLOCHOOKS_EVENT_HOOKS_C_EVENT_CLIENT_H
#define MALLOCHOOKS_EVENT_HOOKS_C_EVENT_CLIENT_H

#include "mallochooks/events.h"

namespace mallochooks {

struct c_event_client : event_client {
    static inline const int &wants_usable_size = mallochooks_event_wants_usable_size;
#define MALLOCHOOKS_FORWARD_C_EVENT_(r, data, e)                                                        \
    static MALLOCHOOKS_RET(e) MALLOCHOOKS_NAME(e)(MALLOCHOOKS_DECLS(e)) {                               \
        return BOOST_PP_CAT(mallochooks_event_, MALLOCHOOKS_NAME(e))(MALLOCHOOKS_ARGS(e));              \
    }
    MALLOCHOOKS_FOR_EACH(MALLOCHOOKS_FORWARD_C_EVENT_, ~, MALLOCHOOKS_EVENTS)
#undef MALLOCHOOKS_FORWARD_C_EVENT_
};

}  // namespace mallochooks

#endif
