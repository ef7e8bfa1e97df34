// SPDX-License-Identifier: MIT
// The heap-profile dump: what libheapindex.so writes at exit (or through heapindex_profile_write) and
// heapindex-report reads to write heaptrack's format, folded stacks and the HTML page.  Binary, native
// byte order (written and read on one machine), versioned, made of tagged sections so that a reader
// skips what it does not know and a writer can add sections (the leak scan's, say) without a new version.
//
//   file    := magic[8] = "HIPROF\0\1", section*
//   section := tag (u32), reserved (u32), length (u64: bytes of payload), payload
//
// All counts of allocations and chunks are in 1/1024ths (count_unit): sampled stacks scale each sampled
// allocation by the inverse of its probability of being sampled.
#ifndef MALLOCHOOKS_INDEX_PROFILE_FORMAT_H
#define MALLOCHOOKS_INDEX_PROFILE_FORMAT_H

#include <stdint.h>

namespace mallochooks::heapindex::profile_format {

constexpr char magic[8] = {'H', 'I', 'P', 'R', 'O', 'F', 0, 1};

constexpr uint32_t tag(char a, char b, char c, char d) {
    return uint32_t(uint8_t(a)) | uint32_t(uint8_t(b)) << 8 | uint32_t(uint8_t(c)) << 16 | uint32_t(uint8_t(d)) << 24;
}
constexpr uint32_t tag_header = tag('H', 'E', 'A', 'D');   // header
constexpr uint32_t tag_cmdline = tag('C', 'M', 'D', 'L');  // the command line, arguments separated by NUL
constexpr uint32_t tag_modules = tag('M', 'O', 'D', 'S');  // module records
constexpr uint32_t tag_stacks = tag('S', 'T', 'K', 'S');   // stack records
constexpr uint32_t tag_series = tag('S', 'E', 'R', 'I');   // series_point[]
constexpr uint32_t tag_leaks = tag('L', 'E', 'A', 'K');    // leak_record[] (the reachability scan's)

struct section {
    uint32_t tag;
    uint32_t reserved;
    uint64_t length;
};

struct header {
    uint32_t version;        // 1
    uint32_t stack_depth;    // HEAPINDEX_STACKS
    uint64_t sample_bytes;   // HEAPINDEX_STACKS_SAMPLE, 0: every allocation has a stack
    uint64_t pid;
    uint64_t start_ns, end_ns, peak_ns;  // CLOCK_MONOTONIC: library start, this dump, the peak snapshot
    uint64_t total_allocations, total_frees, total_bytes;  // exact, every allocation (heapindex_stats)
    uint64_t live_chunks, live_bytes;                      // at the dump, exact
    uint64_t peak_live_bytes;                               // heapindex_stats' peak (sampled, 1 MiB per thread)
    uint64_t peak_snapshot_bytes;                           // live bytes when the stacks' peak columns were copied
    uint64_t stacks_dropped;                                // allocations counted in the "depot full" stack
    uint64_t page_size, phys_pages;
    uint32_t at_exit;                                       // 1: written at exit; 0: on demand
    uint32_t leaks_kind;                                    // 0: no leak section (live at exit only); 1: reachability
                                                            // scan's section follows (tag_leaks)
};

// A loaded object, for symbolization out of process: followed by path_length bytes (no NUL).
struct module_record {
    uint64_t load_bias;  // dlpi_addr
    uint64_t start, end; // lowest and highest address of its PT_LOAD segments
    uint32_t path_length;
    uint32_t reserved;
};

// A stack and its counters: followed by depth return addresses (u64), innermost first.
struct stack_record {
    uint32_t id;
    uint32_t depth;
    uint64_t allocations, bytes, temporaries;  // allocations and temporaries in 1/1024ths
    int64_t live_bytes, live_chunks;           // at the dump (chunks in 1/1024ths)
    int64_t peak_bytes, peak_chunks;           // at the peak snapshot
};

struct series_point {
    uint64_t t_ns;  // CLOCK_MONOTONIC
    uint64_t live_bytes;
    uint64_t live_chunks;
};

// What the reachability scan of HEAPINDEX_LEAKS=exit found (leaks_at_exit.cc, written when it ran before
// the dump): per stack and kind, the chunks no pointer chain from a root reaches.  With every allocation
// stacked, a record per stack holds exact figures (stack 0: chunks allocated before stacks were recorded);
// with sampled stacks, a sampled lost chunk stands for 1/P of a chunk, as in the stack records, and
// unsampled ones are in no stack record.  The records of stack `all_stacks` hold the exact totals per
// kind, every chunk counted once whatever was sampled.
struct leak_record {
    uint32_t stack_id;
    uint32_t kind;  // leak_definite, leak_indirect, leak_interior
    uint64_t bytes;
    uint64_t chunks;  // 1/1024ths
};
constexpr uint32_t leak_definite = 1, leak_indirect = 2, leak_interior = 3;
constexpr uint32_t all_stacks = 0xffffffffu;

}  // namespace mallochooks::heapindex::profile_format

#endif
