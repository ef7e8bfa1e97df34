// SPDX-License-Identifier: MIT
// libfloorindex.so (bench/run's `floorindex` configuration): checked16's trailer plus the floor index
// (floor_index.h), whose free clears the start bit and queues the id and reads nothing else, the record
// least of all.  The least any index answering heapindex_lookup's queries pays per malloc and free on
// top of a checked trailer: issue 13's cost targets are read against it (bench/README.md).
// Chain: floor_layer<false> -> preload terminal.
#include "backends/preload/terminal.h"
#include "bench/floor_layer.h"
#include "libmallochooks/entry_points.h"

namespace {
using floorindex_hooks = mallochooks::chain<mallochooks::bench_floor::floor_layer<false>, mallochooks::preload::terminal>;
}  // namespace

MALLOCHOOKS_DEFINE_ENTRY_POINTS(, floorindex_hooks)
MALLOCHOOKS_BENCH_FLOOR_EXPORTS()
