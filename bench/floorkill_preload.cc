// SPDX-License-Identifier: MIT
// libfloorkill.so (bench/run's `floorkill` configuration): floorindex (floorindex_preload.cc) plus what
// free pays when it must read the record: a CAS on the record's head, live to dead, as the index's kill
// does (index/record.h).  floorkill - floorindex bounds what a free that never reads the record (the
// design docs/heapindex.md, Cost, discusses) could gain.
// Chain: floor_layer<true> -> preload terminal.
#include "backends/preload/terminal.h"
#include "bench/floor_layer.h"
#include "libmallochooks/entry_points.h"

namespace {
using floorkill_hooks = mallochooks::chain<mallochooks::bench_floor::floor_layer<true>, mallochooks::preload::terminal>;
}  // namespace

MALLOCHOOKS_DEFINE_ENTRY_POINTS(, floorkill_hooks)
MALLOCHOOKS_BENCH_FLOOR_EXPORTS()
