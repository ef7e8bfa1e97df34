// SPDX-License-Identifier: MIT
// Reports and walks over the index, shared by the API (heapindex.cc) and the exit report (report.cc).
#ifndef MALLOCHOOKS_INDEX_REPORT_H
#define MALLOCHOOKS_INDEX_REPORT_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "index/heapindex_layer.h"
#include "mallochooks/heapindex.h"

namespace mallochooks::heapindex {

// Names allocation sites: libdwfl (function, file:line, object) when HEAPINDEX_SYMBOLIZE=libdw and
// libdw.so.1 loads, else dladdr.  Construct it under the reentrancy guard: it dlopens and allocates.
class symbolizer {
public:
    symbolizer();
    ~symbolizer();
    symbolizer(const symbolizer &) = delete;
    symbolizer &operator=(const symbolizer &) = delete;
    void describe(const void *site, char *buf, size_t n);

private:
    void *dw_ = nullptr;
};

// The exit report (HEAPINDEX_REPORT).
void print_exit_report() __attribute__((visibility("hidden")));
// At exit, on the diagnostics output: every heap error reported during the run again, sites symbolized.
void print_error_summary() __attribute__((visibility("hidden")));
// A site as dladdr names it (object+offset, and the symbol if exported): safe anywhere, even in malloc.
void describe_site_now(const void *site, char *buf, size_t n) __attribute__((visibility("hidden")));
// A problem heapindex_check found (text, and the chunk concerned if any): kept for the exit summary.
void report_check_problem(const char *text, const record_fields *f) __attribute__((visibility("hidden")));

// Statistics summed over every thread.
void collect_stats(struct heapindex_stats *out) __attribute__((visibility("hidden")));

// A client request that was refused, or one line of text, on the diagnostics output.
void report_client_error(const char *message, const void *base, const record_fields *other, const void *at)
    __attribute__((visibility("hidden")));
void report_line(const char *fmt, ...) __attribute__((visibility("hidden"), format(printf, 1, 2)));

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
