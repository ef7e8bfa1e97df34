// SPDX-License-Identifier: MIT
// The trailer's per-process secret (see trailer.h): AT_RANDOM's first 8 bytes, taken once.
#include "index/trailer.h"

#include <sys/auxv.h>

namespace mallochooks::heapindex {

constinit uint64_t trailer_secret = 0;

void init_trailer_secret() {
    if (__atomic_load_n(&trailer_secret, __ATOMIC_RELAXED) != 0) return;
    uint64_t s = 0x6865617069646578ull;  // "heapidex", if the kernel gave no AT_RANDOM
    if (const void *r = reinterpret_cast<const void *>(getauxval(AT_RANDOM))) memcpy(&s, r, sizeof s);
    __atomic_store_n(&trailer_secret, s | 1, __ATOMIC_RELAXED);
}

}  // namespace mallochooks::heapindex
