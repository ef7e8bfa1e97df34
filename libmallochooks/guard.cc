// SPDX-License-Identifier: MIT
// Storage for the reentrancy guard (see guard.h); zero-initialised, so no constructor runs for it.
#include "libmallochooks/guard.h"

namespace mallochooks {
__thread unsigned guard_depth = 0;
}
