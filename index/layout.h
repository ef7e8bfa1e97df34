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
// 2: the two-level directory (issue 15); 3: the 16-byte trailer (issue 13); 4: the 32-byte packed record
// (issue 13), its fields described as bit ranges, the trailer as an image of the record's last 16 bytes;
// 5: that image is the trailer's bit for bit for a chunk with a recorded stack too (4 kept that chunk's
// check word with its lowest bit flipped: a reader of one would misread the other's stacked chunks).
#define HEAPINDEX_ROOT_VERSION 5u

// Where a packed field lies: `bits` bits from bit `shift` of the little-endian 64-bit word at byte
// `offset` of the record.
struct heapindex_bits {
    uint8_t offset, shift, bits, reserved;
};

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

    // Records: record_pool_instance's range of `record_bytes` records, ids < ids_made in use.  A record
    // is packed (index/record.h): every field is a bit range.  The head word (rec_head, 64 bits) is the
    // seqlock's: read it before and after the other words, and trust them only if it did not change.
    // State (rec_state): 0 free, 1 in flux, 2 live, 3 dead (a tombstone).  The sequence number is the
    // concatenation of rec_seq's pieces, lowest bits first.  aux (rec_aux) is a trailered chunk's check
    // word, an early chunk's usable size less its size, a client block's holder sequence number's low 32
    // bits.  The usable size: for a chunk whose flags have a bit of flags_trailered,
    // max(round_up(size, usable_round), usable_min) (the trailer's offset; under memcheck, flags_guarded,
    // the program is told the size); for a client block (HEAPINDEX_FLAG_CLIENT) its size; else size + aux.
    // A tombstone has no thread id and no aux: rec_free_site overlays them.
    uint64_t pool_address;
    uint32_t pool_base_offset, pool_capacity_offset, pool_fresh_offset;
    uint32_t record_bytes;
    uint32_t rec_head;
    struct heapindex_bits rec_state, rec_base, rec_site, rec_size, rec_flags, rec_tid, rec_aux, rec_free_site;
    struct heapindex_bits rec_seq[4];
    uint32_t flags_trailered, flags_guarded, usable_round, usable_min;

    // Thread states: a list through next_all, its head at thread_list_address.
    uint64_t thread_list_address;
    uint32_t ts_bytes, ts_next_all, ts_tid, ts_allocations, ts_frees, ts_bytes_allocated, ts_bytes_freed;
    uint32_t quarantine;

    // Global counters (8 bytes each).
    uint64_t counters_address;
    uint32_t gc_peak, gc_orphan_allocations, gc_orphan_frees, gc_orphan_bytes_allocated, gc_orphan_bytes_freed;
    uint32_t gc_invalid_frees, gc_double_frees, gc_corrupt_trailers, gc_client_blocks;

    // Trailers: `trailer_bytes` at base + usable of a trailered chunk, a copy of the live record's bytes
    // [trailer_image, trailer_image + trailer_bytes) (check word, thread id, sequence number and size,
    // packed as there; the check word's first byte has its top bit set).  The check word is a ChaCha8
    // keystream word under a key no reader is given (trailer.cc, issue 16).
    uint32_t trailer_bytes, trailer_image;

    struct heapindex_index_layout heap, client;
};

#endif
