// SPDX-License-Identifier: MIT
// heapindex_stats: the index's counters (counters.h) summed over every thread, and the memory the index
// itself takes.  Used by the API (heapindex_stats) and the exit report.
#ifndef MALLOCHOOKS_INDEX_STATS_H
#define MALLOCHOOKS_INDEX_STATS_H

#include "mallochooks/heapindex.h"

namespace mallochooks::heapindex {

void collect_stats(struct heapindex_stats *out) __attribute__((visibility("hidden")));

}  // namespace mallochooks::heapindex

#endif
