// SPDX-License-Identifier: MIT
// The root object readers outside the process start from (layout.h): `heapindex_v1_root`, exported in
// the dynamic symbol table, so a reader finds it without debug information for the library or the
// program.  Everything in it but two addresses is a link-time constant; those two (the thread-state list
// and the global counters, which live in records.cc's private namespace) are written by
// publish_root(), called from layer_init() before the first chunk is indexed.
//
// The library also names its gdb script in a `.debug_gdb_scripts` section, so gdb loads the `heap`
// commands by itself when it sees libheapindex.so in a process or a core (docs/gdb.md has the details).
#include "index/layout.h"

#include <stddef.h>
#include <string.h>

#include "index/heapindex_layer.h"
#include "index/counters.h"
#include "index/thread_state.h"
#include "index/trailer.h"

namespace mallochooks::heapindex {

// Friend of chunk_index and record_pool: offsets of their private fields.
struct root_builder {
    template <class Index> static constexpr heapindex_index_layout index() {
        using leaf = typename Index::leaf;
        using directory = typename Index::directory_block;
        return {
            .address = 0,  // filled below: a pointer cannot become an integer in a constant expression
            .granule_shift = Index::granule_shift,
            .page_shift = Index::page_shift,
            .region_shift = Index::region_shift,
            .address_bits = Index::address_bits,
            .top_offset = offsetof(Index, top_),
            .limit_offset = offsetof(Index, limit_),
            .zero_offset = offsetof(Index, zero_),
            .top_entries = Index::blocks,
            .block_shift = Index::block_shift,
            .dir_leaves_offset = offsetof(directory, leaves),
            .dir_region_cont_offset = offsetof(directory, region_cont),
            .dir_bytes = sizeof(directory),
            .leaf_ids_offset = offsetof(leaf, ids),
            .leaf_starts_offset = offsetof(leaf, starts),
            .leaf_page_cont_offset = offsetof(leaf, page_cont),
            .leaf_bytes = sizeof(leaf),
        };
    }
    static constexpr uint32_t pool_base = offsetof(record_pool, base_);
    static constexpr uint32_t pool_capacity = offsetof(record_pool, capacity_);
    static constexpr uint32_t pool_fresh = offsetof(record_pool, fresh_);
};

}  // namespace mallochooks::heapindex

using namespace mallochooks::heapindex;

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Winvalid-offsetof"  // record and thread_state hold atomics: standard layout in practice
extern "C" {
__attribute__((visibility("default"), used)) constinit heapindex_root heapindex_v1_root = {
    .magic = HEAPINDEX_ROOT_MAGIC,
    .version = HEAPINDEX_ROOT_VERSION,
    .root_bytes = sizeof(heapindex_root),
    .pointer_bytes = sizeof(void *),
    .layout_complete = 0,
    .pool_address = 0,
    .pool_base_offset = root_builder::pool_base,
    .pool_capacity_offset = root_builder::pool_capacity,
    .pool_fresh_offset = root_builder::pool_fresh,
    .record_bytes = sizeof(record),
    .rec_head = offsetof(record, head),
    .rec_state = {offsetof(record, head), 0, 2, 0},
    .rec_base = {offsetof(record, head), rec::value_shift, 47, 0},
    .rec_site = {offsetof(record, w_site), rec::value_shift, 47, 0},
    .rec_size = {offsetof(record, w_size), rec::value_shift, 47, 0},
    .rec_flags = {offsetof(record, w_site), 0, rec::flag_bits, 0},
    .rec_tid = {offsetof(record, tail), rec::tid_shift, rec::tid_bits, 0},
    .rec_aux = {offsetof(record, tail), 0, 32, 0},
    .rec_free_site = {offsetof(record, tail), 0, 48, 0},
    .rec_seq = {{offsetof(record, head), 2, 15, 0},
                {offsetof(record, w_site), rec::flag_bits, 4, 0},
                {offsetof(record, w_size), 0, 17, 0},
                {offsetof(record, tail), rec::seq3_shift, 10, 0}},
    .flags_trailered = HEAPINDEX_FLAG_TRAILER | record_flag_guarded_trailer,
    .flags_guarded = record_flag_guarded_trailer,
    .usable_round = 8,
    .usable_min = 0,
    .thread_list_address = 0,
    .ts_bytes = sizeof(thread_state),
    .ts_next_all = offsetof(thread_state, next_all),
    .ts_tid = offsetof(thread_state, tid),
    .ts_allocations = offsetof(thread_state, allocations),
    .ts_frees = offsetof(thread_state, frees),
    .ts_bytes_allocated = offsetof(thread_state, bytes_allocated),
    .ts_bytes_freed = offsetof(thread_state, bytes_freed),
    .quarantine = thread_state::default_quarantine,  // HEAPINDEX_QUARANTINE may change it at start
    .counters_address = 0,
    .gc_peak = offsetof(global_counters, peak_live_bytes),
    .gc_orphan_allocations = offsetof(global_counters, orphan_allocations),
    .gc_orphan_frees = offsetof(global_counters, orphan_frees),
    .gc_orphan_bytes_allocated = offsetof(global_counters, orphan_bytes_allocated),
    .gc_orphan_bytes_freed = offsetof(global_counters, orphan_bytes_freed),
    .gc_invalid_frees = offsetof(global_counters, invalid_frees),
    .gc_double_frees = offsetof(global_counters, double_frees),
    .gc_corrupt_trailers = offsetof(global_counters, corrupt_trailers),
    .gc_client_blocks = offsetof(global_counters, client_blocks),
    .trailer_bytes = sizeof(trailer),
    .trailer_image = offsetof(record, w_size),
    .heap = root_builder::index<heap_index_t>(),
    .client = root_builder::index<client_index_t>(),
};
}
#pragma GCC diagnostic pop

// gdb loads the script this names (an absolute path in gdb's own auto-load directory, where `meson
// install` puts it and which gdb's default safe-path allows: docs/gdb.md).
__asm__(".pushsection \".debug_gdb_scripts\", \"MS\", @progbits, 1\n"
        ".byte 1\n"  // a Python file
        ".asciz \"" HEAPINDEX_GDB_SCRIPT "\"\n"
        ".popsection\n");

namespace mallochooks::heapindex {

void publish_root() {
    heapindex_root &r = heapindex_v1_root;
    if (__atomic_load_n(&r.layout_complete, __ATOMIC_ACQUIRE)) return;
    r.pool_address = reinterpret_cast<uintptr_t>(&records());
    r.thread_list_address = reinterpret_cast<uintptr_t>(thread_state_list());
    r.counters_address = reinterpret_cast<uintptr_t>(&counters());
    r.heap.address = reinterpret_cast<uintptr_t>(&heap_chunks);
    r.client.address = reinterpret_cast<uintptr_t>(&client_chunks);
    __atomic_store_n(&r.layout_complete, 1, __ATOMIC_RELEASE);
}

}  // namespace mallochooks::heapindex
