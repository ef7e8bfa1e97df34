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
//
// "floor" is what no index of this shape can beat: the median time of 2 dependent loads at random cache
// lines of a buffer as large as what lookups of that row read (a random cyclic pointer chain, timed the
// same way as a lookup): one 64-byte record per live chunk, plus the leaves' ids and bitmap for the
// heap's span (4 + 1/8 bytes per 32 bytes).  "1 load" is what no index at all can beat: a lookup
// answers with fields of its own chunk (site, sequence number, thread), so it reads at least one datum
// that is different for every live chunk; this column times ONE load at a random line of a buffer of
// only 8 bytes per live chunk (an oracle index that needed no search and 8 bytes per chunk).  Past the
// caches that one load is a cache miss, and its cost is a property of the machine, not of any index.  A lookup reads the directory entry (a few hot lines),
// then the leaf's bitmap word and id line (fetched together), then the record: two dependent accesses
// that miss once the index outgrows the caches.  The buffer is on transparent huge pages where the
// system allows it (as the records are), so the floor counts cache misses, and as few TLB misses as
// can be had: a lower bound.
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

// The floor: `loads` dependent loads at random lines of a `bytes`-sized buffer (median per group, ns).
double pointer_chase_floor(int loads, size_t bytes, size_t samples, std::mt19937_64 &rng, double tick_ns, uint64_t overhead) {
    const size_t lines = std::max<size_t>(bytes / 64, 1024), huge = size_t{2} << 20;
    const size_t mapped = lines * 64 + huge;
    void *m = mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) return -1;
    struct alignas(64) line {
        line *next;
    };
    line *buf = reinterpret_cast<line *>((reinterpret_cast<uintptr_t>(m) + huge - 1) & ~(huge - 1));
    madvise(buf, lines * 64, MADV_HUGEPAGE);
    // Sattolo's algorithm: one random cycle through every line.
    std::vector<uint32_t> order(lines);
    for (size_t i = 0; i < lines; ++i) order[i] = uint32_t(i);
    for (size_t i = lines - 1; i > 0; --i) std::swap(order[i], order[rng() % i]);
    for (size_t i = 0; i < lines; ++i) buf[order[i]].next = &buf[order[(i + 1) % lines]];
    std::vector<uint32_t>().swap(order);  // freed before timing
    std::vector<uint64_t> t(samples);
    const line *p = &buf[0];
    for (size_t i = 0; i < samples; ++i) {
        const uint64_t t0 = start_tsc();
        for (int k = 0; k < loads; ++k) p = p->next;
        const uint64_t t1 = stop_tsc();
        t[i] = t1 - t0 > overhead ? t1 - t0 - overhead : 0;
    }
    if (p == nullptr) puts("");
    std::sort(t.begin(), t.end());
    munmap(m, mapped);
    return t[t.size() / 2] * tick_ns;
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
    printf("%12s | %-28s | %-28s | %-19s | %s\n", "live chunks", "heapindex_lookup", "std::map (naive)",
           "floor: 2 loads", "1 load, 8 B/chunk");
    printf("%12s | %8s %8s %10s | %8s %8s %10s | %8s %10s | %8s %10s\n", "", "median", "p99", "batch", "median", "p99",
           "batch", "median", "over MiB", "median", "over MiB");
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
        printf(" %8.1f %8.1f %10.1f |", m.median, m.p99, m.batch);
        uintptr_t lo = UINTPTR_MAX, hi = 0;
        for (const auto &c : chunks) {
            lo = std::min(lo, reinterpret_cast<uintptr_t>(c.first));
            hi = std::max(hi, reinterpret_cast<uintptr_t>(c.first) + c.second);
        }
        const size_t floor_bytes = n * 64 + (hi - lo) / 8 + (hi - lo) / 256;
        printf(" %8.1f %10.1f |", pointer_chase_floor(2, floor_bytes, queries_per_row, rng, tick_ns, overhead),
               floor_bytes / 1048576.0);
        const size_t oracle_bytes = n * 8;
        printf(" %8.1f %10.1f\n", pointer_chase_floor(1, oracle_bytes, queries_per_row, rng, tick_ns, overhead),
               oracle_bytes / 1048576.0);
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
