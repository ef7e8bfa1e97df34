// SPDX-License-Identifier: MIT
// heapindex_stats (see stats.h).
#include "index/stats.h"

#include <string.h>

#include "index/counters.h"
#include "index/heapindex_layer.h"
#include "index/index_memory.h"
#include "index/record_pool.h"

namespace mallochooks::heapindex {

void collect_stats(struct heapindex_stats *out) {
    global_counters &g = counters();
    uint64_t allocs = g.orphan_allocations.load(), frees = g.orphan_frees.load();
    uint64_t in = g.orphan_bytes_allocated.load(), outb = g.orphan_bytes_freed.load();
    for (thread_state *t = all_thread_states(); t != nullptr; t = t->next_all) {
        allocs += t->allocations.load(std::memory_order_relaxed);
        frees += t->frees.load(std::memory_order_relaxed);
        in += t->bytes_allocated.load(std::memory_order_relaxed);
        outb += t->bytes_freed.load(std::memory_order_relaxed);
    }
    memset(out, 0, sizeof *out);
    out->total_allocations = allocs;
    out->total_frees = frees;
    out->total_bytes = in;
    // Counters of different threads are read at slightly different moments: never report a negative.
    out->live_chunks = allocs > frees ? allocs - frees : 0;
    out->live_bytes = in > outb ? in - outb : 0;
    const uint64_t peak = g.peak_live_bytes.load(std::memory_order_relaxed);
    out->peak_live_bytes = peak > out->live_bytes ? peak : out->live_bytes;
    out->client_blocks = g.client_blocks.load();
    out->invalid_frees = g.invalid_frees.load();
    out->double_frees = g.double_frees.load();
    out->corrupt_trailers = g.corrupt_trailers.load();
    out->unindexed_chunks = g.unindexed.load(std::memory_order_relaxed);
    out->index_bytes = heap_chunks.mapped_bytes() + client_chunks.mapped_bytes() + dense_index_bytes() +
                       records().mapped_bytes() + thread_state_bytes();
}

}  // namespace mallochooks::heapindex
