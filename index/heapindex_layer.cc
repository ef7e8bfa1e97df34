// SPDX-License-Identifier: MIT
// The state heapindex_layer (heapindex_layer.h) shares between every chain of this library: the two
// indexes, built constant-initialised (no constructor runs before main), and the layer's one-time set-up.
#include "index/heapindex_layer.h"

namespace mallochooks::heapindex {

constinit heap_index_t heap_chunks;
constinit client_index_t client_chunks;

void layer_init() { init_trailer_key(); }

}  // namespace mallochooks::heapindex
