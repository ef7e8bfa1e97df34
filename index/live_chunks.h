// SPDX-License-Identifier: MIT
// Walks over the live chunks of the layer's two indexes (heap chunks, then client blocks), in address
// order, each as one consistent copy of its record.  Lock-free: safe while other threads allocate and
// free.  Used by heapindex_for_each and the exit report.
#ifndef MALLOCHOOKS_INDEX_LIVE_CHUNKS_H
#define MALLOCHOOKS_INDEX_LIVE_CHUNKS_H

#include <stdint.h>

#include "index/heapindex_layer.h"
#include "index/record_pool.h"

namespace mallochooks::heapindex {

// f(const record_fields &) for every live record of `index` whose start mark is set, in address order,
// until f returns false; false if stopped.  Safe while other threads allocate and free.
template <class Index, class F> bool for_each_live_in(const Index &index, F &&f) {
    return index.for_each_start([&](uintptr_t granule, uint32_t id) {
        record_fields r;
        if (id == 0 || !records().get(id)->read_live(&r)) return true;
        if ((r.base >> Index::granule_shift) != (granule >> Index::granule_shift)) return true;
        return bool(f(r));
    });
}

// Heap chunks, then client blocks.
template <class F> bool for_each_live(F &&f) {
    return for_each_live_in(heap_chunks, f) && for_each_live_in(client_chunks, f);
}

}  // namespace mallochooks::heapindex

#endif
