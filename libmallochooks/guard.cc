// SPDX-License-Identifier: MIT
// Storage for the reentrancy guard (see guard.h) and the depth of foreign calls (foreign_calls.h);
// zero-initialised, so no constructor runs for them.
#include "libmallochooks/foreign_calls.h"
#include "libmallochooks/guard.h"

namespace mallochooks {
__thread unsigned guard_depth = 0;
__thread unsigned foreign_call_depth = 0;
}
