// SPDX-License-Identifier: MIT
// The state heapindex_layer (heapindex_layer.h) shares between every chain of this library: the two
// indexes, built constant-initialised (no constructor runs before main), and the layer's one-time set-up.
#include "index/heapindex_layer.h"

#include "libmallochooks/output.h"

namespace mallochooks::heapindex {

constinit heap_index_t heap_chunks;
constinit client_index_t client_chunks;

// The first allocation of the process comes here, before any constructor: the moment to keep the stderr
// the process started with (libmallochooks/output.h).
void layer_init() {
    capture_stderr();
    init_trailer_secret();
    publish_root();
}

}  // namespace mallochooks::heapindex
