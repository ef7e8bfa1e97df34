// SPDX-License-Identifier: MIT
// The exit report (see exit_report.h).  It runs from the library's destructor under the reentrancy guard:
// the walk over the index is lock-free, the table that groups sites comes from mmap, and the symbolizer
// may allocate (straight to the allocator, indexed as early chunks).
#include "index/exit_report.h"

#include <errno.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>

#include "index/live_chunks.h"
#include "index/settings.h"
#include "index/stats.h"
#include "index/symbolizer.h"
#include "libmallochooks/guard.h"
#include "libmallochooks/output.h"
#include "mallochooks/heapindex.h"

namespace mallochooks::heapindex {

namespace {

struct site_total {
    const void *site;
    uint64_t bytes, chunks;
    bool client;
};

}  // namespace

void print_exit_report() {
    const settings_t &s = settings();
    if (s.report.kind == output_spec::off) return;
    reentrancy_guard guard;
    const int saved = errno;
    const int fd = open_output(s.report, "the exit report");
    const int pid = int(getpid());

    // Group by site in an open-addressing table from mmap; what does not fit goes to one "other" line.
    constexpr size_t capacity = size_t{1} << 16;
    const size_t bytes = capacity * sizeof(site_total);
    void *m = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) {
        close_output(fd);
        errno = saved;
        return;
    }
    site_total *table = static_cast<site_total *>(m);
    size_t used = 0;
    site_total other{nullptr, 0, 0, false};
    uint64_t live_chunks = 0, live_bytes = 0;
    auto add = [&](const record_fields &f) {
        const bool client = f.flags & HEAPINDEX_FLAG_CLIENT;
        if (!client) {
            ++live_chunks;
            live_bytes += f.size;
        }
        size_t i = ((reinterpret_cast<uintptr_t>(f.site) ^ client) * 0x9e3779b97f4a7c15ull) >> 48;
        for (size_t probe = 0; probe < 64; ++probe, i = (i + 1) & (capacity - 1)) {
            site_total &e = table[i];
            if (e.chunks == 0 && used + 1 < capacity * 3 / 4) {
                e = {f.site, f.size, 1, client};
                ++used;
                return true;
            }
            if (e.chunks != 0 && e.site == f.site && e.client == client) {
                e.bytes += f.size;
                ++e.chunks;
                return true;
            }
        }
        other.bytes += f.size;
        ++other.chunks;
        return true;
    };
    for_each_live(add);
    // Compact and sort: most bytes first.
    size_t n = 0;
    for (size_t i = 0; i < capacity; ++i)
        if (table[i].chunks != 0) table[n++] = table[i];
    std::sort(table, table + n, [](const site_total &a, const site_total &b) {
        return a.bytes != b.bytes ? a.bytes > b.bytes : a.chunks > b.chunks;
    });
    struct heapindex_stats st;
    collect_stats(&st);
    print(fd, "heapindex[%d]: at exit: %llu live chunks, %llu bytes, from %zu sites (peak %llu bytes live; %llu "
              "allocations in all)\n", pid, (unsigned long long)live_chunks, (unsigned long long)live_bytes, n,
          (unsigned long long)st.peak_live_bytes, (unsigned long long)st.total_allocations);
    if (st.unindexed_chunks != 0)
        print(fd, "heapindex[%d]: %llu chunks were not indexed (the index's memory could not grow): this report "
                  "misses those still live\n", pid, (unsigned long long)st.unindexed_chunks);
    if (n != 0) print(fd, "heapindex[%d]: %14s %10s  %s\n", pid, "bytes", "chunks", "allocation site");
    const size_t shown = s.report_top == 0 || s.report_top > n ? n : s.report_top;
    {
        symbolizer sym;
        char where[1024];
        for (size_t i = 0; i < shown; ++i) {
            sym.describe(table[i].site, where, sizeof where);
            print(fd, "heapindex[%d]: %14llu %10llu  %s%s\n", pid, (unsigned long long)table[i].bytes,
                  (unsigned long long)table[i].chunks, table[i].client ? "[client block] " : "", where);
        }
        if (sym.expired())
            print(fd, "heapindex[%d]: (symbolizing took longer than HEAPINDEX_SYMBOLIZE_TIMEOUT=%g s: later sites "
                      "named by dladdr)\n", pid, s.symbolize_ms / 1000.0);
    }
    uint64_t rest_bytes = other.bytes, rest_chunks = other.chunks;
    for (size_t i = shown; i < n; ++i) rest_bytes += table[i].bytes, rest_chunks += table[i].chunks;
    if (rest_chunks != 0)
        print(fd, "heapindex[%d]: %14llu %10llu  (%zu more sites)\n", pid, (unsigned long long)rest_bytes,
              (unsigned long long)rest_chunks, n - shown + (other.chunks != 0));
    munmap(m, bytes);
    close_output(fd);
    errno = saved;
}

}  // namespace mallochooks::heapindex
