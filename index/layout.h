// SPDX-License-Identifier: MIT
// The self-describing index: one exported, versioned root object (`heapindex_v1_root`, in
// libheapindex.so's dynamic symbol table) whose layout descriptor gives a reader outside the process
// (heapindex-inspect, driven by the gdb extension, on a live process or a core file) everything it
// needs to walk the index with memory reads alone: where the index objects are, and the size and offset
// of every field it reads in the directory, leaves, records, thread states, counters and trailers.  No
// function of the process is ever called (a core cannot run code; a stopped process may be inside
// malloc).  A reader checks `magic` and `version` first: a version it does not know is named, never
// guessed at.  Everything is a fixed-width integer, so the struct means the same to a reader built
// elsewhere; the offsets (not this struct's own layout beyond the first fields) are the contract.
#ifndef MALLOCHOOKS_INDEX_LAYOUT_H
#define MALLOCHOOKS_INDEX_LAYOUT_H

#include <stdint.h>

#define HEAPINDEX_ROOT_SYMBOL "heapindex_v1_root"
#define HEAPINDEX_ROOT_MAGIC "mallochooks-hix"  // 15 characters and the NUL: 16 bytes
#define HEAPINDEX_ROOT_VERSION 3u  // 2: the two-level directory (issue 15); 3: the 16-byte trailer (issue 13)
// A trailer field the trailer does not have (tr_site, tr_size since version 3).
#define HEAPINDEX_FIELD_ABSENT 0xffffffffu

// One chunk_index<G> (the heap's, the client blocks').
struct heapindex_index_layout {
    uint64_t address;         // of the chunk_index object
    uint32_t granule_shift, page_shift, region_shift, address_bits;
    // The directory: a top table (chunk_index::top_, `top_entries` uint64 in the object) names blocks of
    // 1 << block_shift regions; entry t holds block t's address less (t << block_shift) * 8, and a block
    // that does not exist is the read-only zero block (chunk_index::zero_).  limit_: top entries usable
    // (0: none yet).
    uint32_t top_offset;
    uint32_t limit_offset;
    uint32_t zero_offset;
    uint32_t top_entries, block_shift;
    uint32_t dir_leaves_offset, dir_region_cont_offset;  // in a block: leaf *[1 << block_shift], uint32 [...]
    uint64_t dir_bytes;                                  // a block's size
    uint32_t leaf_ids_offset, leaf_starts_offset, leaf_page_cont_offset, leaf_bytes;  // uint32, uint64, uint32 arrays
};

struct heapindex_root {
    char magic[16];
    uint32_t version;
    uint32_t root_bytes;  // sizeof(heapindex_root) as the library was built
    uint32_t pointer_bytes, layout_complete;  // layout_complete: runtime addresses below are filled in

    // Records: record_pool_instance's reserved range of `record_bytes` records, ids < ids_made in use.
    uint64_t pool_address;
    uint32_t pool_base_offset, pool_capacity_offset, pool_fresh_offset;
    uint32_t record_bytes;
    uint32_t rec_word, rec_flags, rec_base, rec_usable, rec_free_site, rec_site, rec_size, rec_seq, rec_tid, rec_link;
    uint32_t state_shift_mask;  // word & 3 is the state: 0 free, 1 writing, 2 live, 3 dead

    // Thread states: a list through next_all, its head at thread_list_address.
    uint64_t thread_list_address;
    uint32_t ts_bytes, ts_next_all, ts_tid, ts_allocations, ts_frees, ts_bytes_allocated, ts_bytes_freed;
    uint32_t quarantine;

    // Global counters (8 bytes each).
    uint64_t counters_address;
    uint32_t gc_peak, gc_orphan_allocations, gc_orphan_frees, gc_orphan_bytes_allocated, gc_orphan_bytes_freed;
    uint32_t gc_invalid_frees, gc_double_frees, gc_corrupt_trailers, gc_client_blocks;

    // Trailers: `trailer_bytes` at base + usable (flag HEAPINDEX_FLAG_TRAILER).  The check word is a
    // ChaCha8 keystream word under a key no reader is given (trailer.cc, issue 16): a reader compares it
    // with the record's link word (rec_link; its lowest bit flipped while HEAPINDEX_FLAG_STACK is set,
    // profile.h).  trailer_secret_address and check_multiplier, which described the old keyed multiply,
    // are kept for the layout's sake and are 0.  A field the trailer does not hold is
    // HEAPINDEX_FIELD_ABSENT: since version 3 (issue 13) the trailer is sequence number, thread id and
    // check word, 16 bytes; site and size are only in the record.
    uint64_t trailer_secret_address;
    uint32_t trailer_bytes, tr_site, tr_size, tr_seq, tr_tid, tr_check;
    uint64_t check_multiplier;

    struct heapindex_index_layout heap, client;
};

#endif
