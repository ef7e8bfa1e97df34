// SPDX-License-Identifier: MIT
// Lookup latency of the heap index (heapindex_lookup) against a naive ordered-map index of the same
// chunks (std::map from base to size: upper_bound, step back, bounds check), for 1e3 to 1e7 live chunks.
// Run under LD_PRELOAD=libheapindex.so: `ninja -C BUILD bench-lookup`, or by hand with an optional
// largest count (bench/lookup [MAX_CHUNKS]).
//
// Chunks are malloc'd with sizes drawn from 16 to 256 bytes (most programs' chunks are small), grown in
// steps, so each row adds to the live chunks of the row before.  Queries are random interior pointers of
// random live chunks, the same for both indexes.  Each lookup is timed on its own with the TSC, fenced
// (lfence; rdtsc ... rdtscp), minus the cost of timing nothing; medians and 99th percentiles over 200000
// lookups.  "batch" is the mean over a loop of independent lookups (what a tool scanning memory sees:
// the CPU overlaps their cache misses).  Every answer is checked; a wrong one fails the run.  The map's
// nodes come from a private mmap'd arena, so neither index adds chunks to the other.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <x86intrin.h>

#include <algorithm>
#include <map>
#include <random>
#include <vector>

#include "mallochooks/heapindex.h"

namespace {

// Bump allocator over mmap for the map's nodes (never freed during the run).
template <class T> struct arena_allocator {
    using value_type = T;
    static inline char *next = nullptr, *end = nullptr;
    arena_allocator() = default;
    template <class U> arena_allocator(const arena_allocator<U> &) {}
    T *allocate(size_t n) {
        const size_t bytes = (n * sizeof(T) + 15) & ~size_t{15};
        if (next == nullptr || size_t(end - next) < bytes) {
            const size_t block = size_t{256} << 20;
            void *m = mmap(nullptr, block, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
            if (m == MAP_FAILED) abort();
            next = static_cast<char *>(m);
            end = next + block;
        }
        T *p = reinterpret_cast<T *>(next);
        next += bytes;
        return p;
    }
    void deallocate(T *, size_t) {}
    template <class U> bool operator==(const arena_allocator<U> &) const { return true; }
};

using naive_index = std::map<uintptr_t, size_t, std::less<uintptr_t>, arena_allocator<std::pair<const uintptr_t, size_t>>>;

uintptr_t naive_lookup(const naive_index &m, uintptr_t a) {
    auto it = m.upper_bound(a);
    if (it == m.begin()) return 0;
    --it;
    return a - it->first < it->second ? it->first : 0;
}

uintptr_t index_lookup(uintptr_t a) {
    heapindex_chunk c;
    return heapindex_lookup(reinterpret_cast<const void *>(a), &c) ? reinterpret_cast<uintptr_t>(c.base) : 0;
}

inline uint64_t start_tsc() {
    _mm_lfence();
    return __rdtsc();
}
inline uint64_t stop_tsc() {
    unsigned aux;
    const uint64_t t = __rdtscp(&aux);
    _mm_lfence();
    return t;
}

double ns_per_tick() {
    timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    const uint64_t t0 = __rdtsc();
    do clock_gettime(CLOCK_MONOTONIC, &b);
    while ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec) < 100e6);
    const uint64_t t1 = __rdtsc();
    return ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / double(t1 - t0);
}

struct stats {
    double median, p99, batch;
};

template <class F> stats measure(const std::vector<uintptr_t> &queries, const std::vector<uintptr_t> &expected, F f,
                                 double tick_ns, uint64_t overhead) {
    std::vector<uint64_t> t(queries.size());
    for (size_t i = 0; i < queries.size(); ++i) {
        const uint64_t t0 = start_tsc();
        const uintptr_t r = f(queries[i]);
        const uint64_t t1 = stop_tsc();
        if (r != expected[i]) {
            fprintf(stderr, "lookup: wrong answer for %#lx: %#lx, expected %#lx\n", (unsigned long)queries[i],
                    (unsigned long)r, (unsigned long)expected[i]);
            exit(1);
        }
        t[i] = t1 - t0 > overhead ? t1 - t0 - overhead : 0;
    }
    std::sort(t.begin(), t.end());
    uintptr_t sink = 0;
    const uint64_t b0 = start_tsc();
    for (uintptr_t q : queries) sink += f(q);
    const uint64_t b1 = stop_tsc();
    if (sink == 1) puts("");
    return {t[t.size() / 2] * tick_ns, t[t.size() * 99 / 100] * tick_ns, double(b1 - b0) * tick_ns / queries.size()};
}

}  // namespace

int main(int argc, char **argv) {
    const size_t max_chunks = argc > 1 ? strtoull(argv[1], nullptr, 10) : 10000000;
    const bool indexed = heapindex_present();
    if (!indexed) puts("lookup: libheapindex.so is not loaded: only the naive index is measured");
    const double tick_ns = ns_per_tick();
    // The cost of timing nothing, to subtract.
    std::vector<uint64_t> empty(100000);
    for (auto &e : empty) {
        const uint64_t t0 = start_tsc();
        e = stop_tsc() - t0;
    }
    std::sort(empty.begin(), empty.end());
    const uint64_t overhead = empty[empty.size() / 2];

    std::mt19937_64 rng(2024);
    std::vector<std::pair<char *, size_t>> chunks;
    chunks.reserve(max_chunks);
    naive_index naive;
    constexpr size_t queries_per_row = 200000;
    printf("lookup latency, ns: per lookup (median, p99; timing cost of %.1f ns subtracted) and batch mean\n",
           overhead * tick_ns);
    printf("%12s | %-28s | %-28s\n", "live chunks", "heapindex_lookup", "std::map (naive)");
    printf("%12s | %8s %8s %10s | %8s %8s %10s\n", "", "median", "p99", "batch", "median", "p99", "batch");
    for (size_t n = 1000; n <= max_chunks; n *= 10) {
        while (chunks.size() < n) {
            const size_t size = 16 + rng() % 241;
            char *p = static_cast<char *>(malloc(size));
            if (p == nullptr) abort();
            p[0] = 1;
            chunks.push_back({p, size});
            naive.emplace_hint(naive.end(), reinterpret_cast<uintptr_t>(p), size);  // addresses mostly ascend
        }
        std::vector<uintptr_t> queries(queries_per_row), expected(queries_per_row);
        for (size_t i = 0; i < queries_per_row; ++i) {
            const auto &c = chunks[rng() % chunks.size()];
            expected[i] = reinterpret_cast<uintptr_t>(c.first);
            queries[i] = expected[i] + rng() % c.second;
        }
        printf("%12zu |", n);
        if (indexed) {
            const stats s = measure(queries, expected, index_lookup, tick_ns, overhead);
            printf(" %8.1f %8.1f %10.1f |", s.median, s.p99, s.batch);
        } else {
            printf(" %8s %8s %10s |", "-", "-", "-");
        }
        const stats m = measure(queries, expected, [&](uintptr_t a) { return naive_lookup(naive, a); }, tick_ns, overhead);
        printf(" %8.1f %8.1f %10.1f\n", m.median, m.p99, m.batch);
        fflush(stdout);
    }
    if (indexed) {
        struct heapindex_stats s;
        heapindex_stats(&s);
        printf("index memory mapped: %.1f MiB for %llu live chunks\n", s.index_bytes / 1048576.0,
               (unsigned long long)s.live_chunks);
    }
    return 0;
}
