// SPDX-License-Identifier: MIT
// Heap errors as they happen: double and invalid frees, mismatched releases, clobbered trailers, refused
// client requests.
// They are found inside free or realloc, wherever the program calls them (possibly inside glibc with a
// lock held), so each report is formatted into stack buffers, written with write(2) to the diagnostics
// output (HEAPINDEX_LOG), with sites named by dladdr only (no allocation, no message translation); under
// the reentrancy guard, errno preserved.  `what` names the call ("free", "realloc",
// "heapindex_notify_free").
//
// With HEAPINDEX_STACKS > 1 a report also gives full stacks: the chunk's allocation stack (`id`, its
// record, when it has one: HEAPINDEX_FLAG_STACK), the stack that freed it (a tombstone's: recorded when
// a chunk with an allocation stack is released) and the stack of the call the error was found in; named
// by dladdr at once, symbolized in the exit summary.
#ifndef MALLOCHOOKS_INDEX_HEAP_ERRORS_H
#define MALLOCHOOKS_INDEX_HEAP_ERRORS_H

#include "index/record.h"

namespace mallochooks::heapindex {

void report_double_free(const record_fields &f, const void *again_at, const char *what, uint32_t id = 0) __attribute__((visibility("hidden")));
// `started_here`: a chunk once started at ptr's granule (its record has since been reused: freed longer
// ago than the quarantine reaches back).
void report_invalid_free(const void *ptr, const void *at, const record_fields *containing, const char *what,
                         bool started_here = false, uint32_t containing_id = 0) __attribute__((visibility("hidden")));
// A chunk whose trailer (trailer_bad) or slack (slack_bad: the first damaged byte's offset, or 0) was
// overwritten; the report also names a live chunk that starts right after a clobbered trailer (its
// underflow is the other explanation).
void report_overflow(const record_fields &f, const void *at, const char *what, bool trailer_bad, size_t slack_bad,
                     uint32_t id = 0)
    __attribute__((visibility("hidden")));
// The allocator handed out `now`'s address while the index held `lost` there as live (after a heap
// error): the index now follows the allocator, and `lost` is no longer indexed.
void report_lost_chunk(const record_fields &lost, const record_fields &now, uint32_t lost_id = 0)
    __attribute__((visibility("hidden")));
// A problem heapindex_check found (text, and the chunk concerned if any): kept for the exit summary (the
// check prints its own lines).
void report_check_problem(const char *text, const record_fields *f, uint32_t id = 0) __attribute__((visibility("hidden")));
// A site as dladdr names it (object+offset, and the symbol if exported): safe anywhere, even in malloc.
void describe_site_now(const void *site, char *buf, size_t n) __attribute__((visibility("hidden")));
// In a forked child: the errors kept so far are the parent's (it summarises them).
void forget_errors_after_fork() __attribute__((visibility("hidden")));
// At exit, on the diagnostics output: every heap error reported during the run again, with the same
// sites symbolized (function, file:line).
void print_error_summary() __attribute__((visibility("hidden")));
// The index's own memory cannot grow (index_memory.h): chunks from now on go unindexed.  Once.
void report_index_memory_exhausted() __attribute__((visibility("hidden")));
// A chunk released another way than it was allocated (`what`: the releasing call, "operator delete[]").
void report_mismatch(const record_fields &f, const void *at, const char *what, uint32_t id = 0) __attribute__((visibility("hidden")));
// A sized operator delete whose size is not the chunk's requested size (`size`: the one it was given).
void report_size_mismatch(const record_fields &f, const void *at, const char *what, size_t size, uint32_t id = 0)
    __attribute__((visibility("hidden")));
// A client request that was refused (`other`: the block in the way, if any).
void report_client_error(const char *message, const void *base, const record_fields *other, const void *at)
    __attribute__((visibility("hidden")));

}  // namespace mallochooks::heapindex

#endif
