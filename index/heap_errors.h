// SPDX-License-Identifier: MIT
// Heap errors as they happen: double and invalid frees, mismatched releases, clobbered trailers, refused
// client requests.
// They are found inside free or realloc, wherever the program calls them (possibly inside glibc with a
// lock held), so each report is formatted into stack buffers, written with write(2) to the diagnostics
// output (HEAPINDEX_LOG), with sites named by dladdr only (no allocation, no message translation); under
// the reentrancy guard, errno preserved.  `what` names the call ("free", "realloc",
// "heapindex_notify_free").
#ifndef MALLOCHOOKS_INDEX_HEAP_ERRORS_H
#define MALLOCHOOKS_INDEX_HEAP_ERRORS_H

#include "index/record.h"

namespace mallochooks::heapindex {

void report_double_free(const record_fields &f, const void *again_at, const char *what) __attribute__((visibility("hidden")));
void report_invalid_free(const void *ptr, const void *at, const record_fields *containing, const char *what)
    __attribute__((visibility("hidden")));
// A chunk released another way than it was allocated (`what`: the releasing call, "operator delete[]").
void report_mismatch(const record_fields &f, const void *at, const char *what) __attribute__((visibility("hidden")));
void report_corrupt_trailer(const record_fields &f, const void *at, const char *what) __attribute__((visibility("hidden")));
// A client request that was refused (`other`: the block in the way, if any).
void report_client_error(const char *message, const void *base, const record_fields *other, const void *at)
    __attribute__((visibility("hidden")));

}  // namespace mallochooks::heapindex

#endif
