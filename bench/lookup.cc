// SPDX-License-Identifier: MIT
// Lookup latency of the heap index (heapindex_lookup) against the other ways to answer "which live chunk
// contains this address", over the same chunks and the same queries, for 1e3 to 1e7 live chunks, and
// against the floors no index can beat.  Run under LD_PRELOAD=libheapindex.so: `ninja -C BUILD
// bench-lookup`, or by hand (bench/lookup [MAX_CHUNKS [ROUNDS]]).  bench/README.md ("Lookups") explains
// every column.
//
// Chunks: sizes drawn from 16 to 256 bytes (most programs' chunks are small) by a PRNG of fixed seed,
// grown in steps, so each row adds to the live chunks of the row before.  Queries: per row, 200000
// random (chunk number, offset inside its requested size) pairs from a second PRNG of fixed seed.  Every
// structure holds the same chunks (the same sizes, allocated in the same order) and answers the same
// (chunk, offset) queries:
//   heapindex_lookup   the chunks malloc'd under libheapindex.so (the API call, filling heapindex_chunk);
//   sorted array       the same chunks' (base, size), sorted by base: a branchless binary search;
//   std::map           the same in an ordered map of base to size (nodes from a private mmap'd arena);
//   GC_base            Boehm GC: objects of the same sizes from GC_malloc (collection disabled);
//                      built when libgc-dev is found;
//   ASan               AddressSanitizer's own answer, __asan_locate_address, in bench/lookup_asan: this
//                      file built with -fsanitize=address, a child process that allocates the same sizes
//                      with ASan's malloc and answers the same queries from the same seeds, row by row,
//                      in lockstep with this process (a pipe: never both at once);
//   floor 32 B/chunk   the floor of issue 13: an oracle that needs no search (it is handed the chunk's
//                      number) and reads one 32-byte record per live chunk, on transparent huge pages,
//                      through a call of the API's shape that fills a heapindex_chunk.  Any index that
//                      answers this API's per-chunk fields (site, sequence number, thread) reads at
//                      least one datum that differs for every live chunk, so it pays at least this;
//   2 loads            the shape of the index's own lookup: 2 dependent loads at random cache lines of a
//                      buffer as large as what the index reads (a 32-byte record per chunk, plus 4 + 1/8
//                      bytes per 32 bytes of the heap's span), a pointer chase timed per pair;
//   id+record          2 dependent loads: a 4-byte id at a random slot of 4 bytes per live chunk, then a
//                      record of the index's size per chunk: the floor of any index that stores a dense
//                      per-chunk id and then reads a per-chunk record (the index's ids are per granule);
//   1 load, 8 B/chunk  one load at a random line of a buffer of 8 bytes per live chunk (the earlier
//                      issue's oracle: no index can answer faster).
// Each lookup is timed on its own with the TSC, fenced (lfence; rdtsc ... rdtscp; lfence), minus the cost
// of timing nothing: medians and 99th percentiles.  "batch" is the mean over a loop of the same queries
// run back to back, independent of each other (a tool scanning memory: the CPU overlaps their misses).
// Every answer is checked; a wrong one fails the run.  Each row measures every column ROUNDS times
// (default 3), interleaved and rotated, and prints the median of the rounds' figures: the machine is
// shared, and one round of one column can land on a busy moment.
#include <dlfcn.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <x86intrin.h>

#include <algorithm>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "mallochooks/heapindex.h"
#include "index/layout.h"

#if defined(LOOKUP_ASAN)
#include <sanitizer/asan_interface.h>
#endif
#if defined(LOOKUP_BOEHM_GC)
#include <gc.h>
#endif

extern char **environ;

namespace {

constexpr uint64_t sizes_seed = 2024, queries_seed = 13;
constexpr size_t queries_per_row = 200000;
// The index's record size (index/record.h), for the `2 loads` floor's buffer: what a lookup's second
// access reads from, one record per live chunk.  Change it with the record.
constexpr size_t index_record_bytes = 32;

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

[[maybe_unused]] uintptr_t naive_lookup(const naive_index &m, uintptr_t a) {
    auto it = m.upper_bound(a);
    if (it == m.begin()) return 0;
    --it;
    return a - it->first < it->second ? it->first : 0;
}

// A sorted array of bases (and, in a parallel array, sizes): the last base <= a by a branchless binary
// search (the halving step is a conditional move, so no mispredicted branch per level; the one load per
// level is the cost), then the size check.
struct sorted_array {
    std::vector<uintptr_t> bases;
    std::vector<size_t> sizes;
    void build(std::vector<std::pair<uintptr_t, size_t>> chunks) {
        std::sort(chunks.begin(), chunks.end());
        bases.resize(chunks.size());
        sizes.resize(chunks.size());
        for (size_t i = 0; i < chunks.size(); ++i) bases[i] = chunks[i].first, sizes[i] = chunks[i].second;
    }
    uintptr_t lookup(uintptr_t a) const {
        const uintptr_t *b = bases.data();
        size_t n = bases.size();
        if (n == 0 || a < b[0]) return 0;
        while (n > 1) {
            const size_t half = n / 2;
            b = b[half] <= a ? b + half : b;
            n -= half;
        }
        const size_t i = size_t(b - bases.data());
        return a - *b < sizes[i] ? *b : 0;
    }
};

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
    double median = -1, p99 = -1, batch = -1;
};

struct timing {
    double tick_ns;
    uint64_t overhead;  // ticks of timing nothing
};

timing calibrate() {
    timing t{ns_per_tick(), 0};
    std::vector<uint64_t> empty(100000);
    for (auto &e : empty) {
        const uint64_t t0 = start_tsc();
        e = stop_tsc() - t0;
    }
    std::sort(empty.begin(), empty.end());
    t.overhead = empty[empty.size() / 2];
    return t;
}

// Times f over the queries, one at a time and in a batch; every answer must equal `expected`.
template <class Q, class F> stats measure(const char *what, const std::vector<Q> &queries, const std::vector<uintptr_t> &expected,
                                          F f, const timing &tm) {
    std::vector<uint64_t> t(queries.size());
    for (size_t i = 0; i < queries.size(); ++i) {
        const uint64_t t0 = start_tsc();
        const uintptr_t r = f(queries[i]);
        const uint64_t t1 = stop_tsc();
        if (r != expected[i]) {
            fprintf(stderr, "lookup: %s: wrong answer for query %zu: %#lx, expected %#lx\n", what, i, (unsigned long)r,
                    (unsigned long)expected[i]);
            exit(1);
        }
        t[i] = t1 - t0 > tm.overhead ? t1 - t0 - tm.overhead : 0;
    }
    std::sort(t.begin(), t.end());
    uintptr_t sink = 0;
    const uint64_t b0 = start_tsc();
    for (const Q &q : queries) sink += f(q);
    const uint64_t b1 = stop_tsc();
    if (sink == 1) puts("");
    return {t[t.size() / 2] * tm.tick_ns, t[t.size() * 99 / 100] * tm.tick_ns, double(b1 - b0) * tm.tick_ns / queries.size()};
}

// Memory on transparent huge pages where the system allows it (2 MiB aligned), as the index's records
// and dense leaves are.  An inaccessible page at each end keeps the mapping from merging with a neighbour
// of the same flags (the index's own huge-page blocks): /proc/self/smaps then tells the two apart.
struct huge_buffer {
    void *map = nullptr;
    size_t mapped = 0;
    char *data = nullptr;
    explicit huge_buffer(size_t bytes) {
        const size_t huge = size_t{2} << 20, page = 4096;
        mapped = bytes + huge + 2 * page;
        map = mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (map == MAP_FAILED) abort();
        const uintptr_t m = reinterpret_cast<uintptr_t>(map);
        data = reinterpret_cast<char *>((m + page + huge - 1) & ~(huge - 1));
        mprotect(map, page, PROT_NONE);
        mprotect(reinterpret_cast<void *>(m + mapped - page), page, PROT_NONE);
        madvise(data, bytes, MADV_HUGEPAGE);
    }
    ~huge_buffer() { munmap(map, mapped); }
    huge_buffer(const huge_buffer &) = delete;
    huge_buffer &operator=(const huge_buffer &) = delete;
};

// How much of the memory a column reads is on transparent huge pages, printed per row so that a floor and
// the index are seen to be compared like with like (THP "madvise" mode: every buffer here asks with
// MADV_HUGEPAGE, as the index's records and dense leaves do; a refused or split huge page shows).  Exact
// where /proc/self/pagemap gives frame numbers and /proc/kpageflags is readable (root): resident 4 KiB
// pages of the ranges, and of those the ones in a transparent huge page (KPF_THP, one test per 2 MiB
// block: a huge page maps its whole aligned block).  Otherwise an approximation from /proc/self/smaps:
// the mappings holding the ranges, whole (a neighbour of the same flags merged into one shows too).
struct huge_share {
    double resident_mib = -1, huge_mib = -1;
    bool exact = false;
};
struct byte_range {
    uintptr_t lo, hi;
};
[[maybe_unused]] huge_share huge_pages_of(const std::vector<byte_range> &ranges) {
    huge_share h;
    if (ranges.empty()) return h;
    constexpr uintptr_t page = 4096, block = uintptr_t{2} << 20;
    const int pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC), flags = open("/proc/kpageflags", O_RDONLY | O_CLOEXEC);
    if (pagemap >= 0 && flags >= 0) {
        size_t resident = 0, huge = 0;
        bool frames = false;
        std::vector<uint64_t> e(block / page);
        for (const byte_range &r : ranges)
            for (uintptr_t b = r.lo & ~(block - 1); b < r.hi; b += block) {
                const uintptr_t lo = std::max(b, r.lo & ~(page - 1)), hi = std::min(b + block, r.hi);
                const size_t pages = (hi - lo + page - 1) / page;
                if (pread(pagemap, e.data(), pages * 8, off_t(lo / page * 8)) != ssize_t(pages * 8)) continue;
                size_t here = 0;
                uint64_t pfn = 0;
                for (size_t i = 0; i < pages; ++i)
                    if (e[i] >> 63) {
                        ++here;
                        if (pfn == 0) pfn = e[i] & ((uint64_t{1} << 55) - 1);
                    }
                uint64_t f = 0;
                if (pfn != 0) frames = true;
                if (pfn != 0 && pread(flags, &f, 8, off_t(pfn * 8)) == 8 && (f >> 22 & 1)) huge += here;  // KPF_THP
                resident += here;
            }
        close(pagemap);
        close(flags);
        if (frames || resident == 0) return {resident * 4096 / 1048576.0, huge * 4096 / 1048576.0, true};
    } else {
        if (pagemap >= 0) close(pagemap);
        if (flags >= 0) close(flags);
    }
    FILE *f = fopen("/proc/self/smaps", "r");
    if (f == nullptr) return h;
    h = {0, 0, false};
    char line[512];
    bool counted = false;
    while (fgets(line, sizeof line, f) != nullptr) {
        unsigned long lo, hi, kb;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, ':') > strchr(line, ' ')) {
            counted = false;
            for (const byte_range &r : ranges) counted = counted || (r.lo < hi && r.hi > lo);
        } else if (counted && sscanf(line, "Rss: %lu kB", &kb) == 1) {
            h.resident_mib += kb / 1024.0;
        } else if (counted && sscanf(line, "AnonHugePages: %lu kB", &kb) == 1) {
            h.huge_mib += kb / 1024.0;
        }
    }
    fclose(f);
    return h;
}

// The floor: `loads` dependent loads at random lines of a `bytes`-sized buffer (median per group, ns).
[[maybe_unused]] double pointer_chase_floor(int loads, size_t bytes, size_t samples, std::mt19937_64 &rng, const timing &tm,
                                            huge_share *huge = nullptr) {
    const size_t lines = std::max<size_t>(bytes / 64, 1024);
    huge_buffer hb(lines * 64);
    struct alignas(64) line {
        line *next;
    };
    line *buf = reinterpret_cast<line *>(hb.data);
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
        t[i] = t1 - t0 > tm.overhead ? t1 - t0 - tm.overhead : 0;
    }
    if (p == nullptr) puts("");
    if (huge != nullptr) {
        const uintptr_t d = reinterpret_cast<uintptr_t>(hb.data);
        *huge = huge_pages_of({{d, d + lines * 64}});
    }
    std::sort(t.begin(), t.end());
    return t[t.size() / 2] * tm.tick_ns;
}

// The floor of an index that stores a 4-byte record id per live chunk, densely, and then reads the record:
// 2 dependent loads, the first at a random 4-byte slot of a buffer of 4 bytes per chunk, the second at a
// random line of a buffer of `record_bytes` per chunk (median per pair, ns).  The index's own ids are
// per 32-byte granule of the heap (1/8 of its span), so its first access has a larger footprint than this.
[[maybe_unused]] double id_record_floor(size_t n, size_t record_bytes, size_t samples, std::mt19937_64 &rng, const timing &tm,
                                        huge_share *huge = nullptr) {
    n = std::max<size_t>(n, 1024);
    huge_buffer ids_buf(n * 4), records_buf(n * record_bytes);
    uint32_t *ids = reinterpret_cast<uint32_t *>(ids_buf.data);
    char *records = records_buf.data;
    // One random cycle through the chunks (Sattolo): chunk order[k]'s id slot names record perm[k], whose
    // line names the id slot of chunk order[k + 1].
    std::vector<uint32_t> order(n), perm(n);
    for (size_t i = 0; i < n; ++i) order[i] = perm[i] = uint32_t(i);
    for (size_t i = n - 1; i > 0; --i) std::swap(order[i], order[rng() % i]);
    for (size_t i = n - 1; i > 0; --i) std::swap(perm[i], perm[rng() % (i + 1)]);
    for (size_t k = 0; k < n; ++k) {
        ids[order[k]] = perm[k];
        *reinterpret_cast<uint32_t *>(records + size_t(perm[k]) * record_bytes) = order[(k + 1) % n];
    }
    std::vector<uint32_t>().swap(order);
    std::vector<uint32_t>().swap(perm);
    std::vector<uint64_t> t(samples);
    uint32_t slot = 0;
    for (size_t i = 0; i < samples; ++i) {
        const uint64_t t0 = start_tsc();
        __asm__ volatile("" : "+r"(slot) : : "memory");  // no load of the pair hoisted above the first read of the clock
        slot = *reinterpret_cast<const uint32_t *>(records + size_t(ids[slot]) * record_bytes);
        __asm__ volatile("" : "+r"(slot) : : "memory");
        const uint64_t t1 = stop_tsc();
        t[i] = t1 - t0 > tm.overhead ? t1 - t0 - tm.overhead : 0;
    }
    if (slot == ~0u) puts("");
    if (huge != nullptr) {
        const uintptr_t i = reinterpret_cast<uintptr_t>(ids), r = reinterpret_cast<uintptr_t>(records);
        *huge = huge_pages_of({{i, i + n * 4}, {r, r + n * record_bytes}});
    }
    std::sort(t.begin(), t.end());
    return t[t.size() / 2] * tm.tick_ns;
}

// The oracle of the 32-byte floor: one record per chunk, in chunk order, with what the API returns.
struct oracle_record {
    uintptr_t base;
    uint32_t size, usable_extra;
    const void *site;
    uint64_t seq_tid_flags;
};
static_assert(sizeof(oracle_record) == 32);
oracle_record *oracle;

// Called through a pointer like the API's function; reads the chunk's record and fills the answer.
__attribute__((noinline)) int oracle_lookup(size_t chunk, heapindex_chunk *out) {
    const oracle_record &r = oracle[chunk];
    out->base = reinterpret_cast<void *>(r.base);
    out->size = r.size;
    out->usable_size = r.size + r.usable_extra;
    out->alloc_site = r.site;
    out->seq = r.seq_tid_flags >> 24;
    out->tid = uint32_t(r.seq_tid_flags >> 8) & 0xffff;
    out->flags = uint32_t(r.seq_tid_flags) & 0xff;
    return r.base != 0;
}
int (*volatile oracle_fn)(size_t, heapindex_chunk *) = oracle_lookup;

// The plan both processes follow: chunk sizes in allocation order, and per row the (chunk, offset) queries.
struct query {
    uint32_t chunk, offset;
};
struct plan {
    std::mt19937_64 sizes{sizes_seed};
    std::vector<uint32_t> size_of;
    void grow(size_t n) {
        while (size_of.size() < n) size_of.push_back(uint32_t(16 + sizes() % 241));
    }
    std::vector<query> queries(size_t n) const {
        std::mt19937_64 q(queries_seed ^ n);
        std::vector<query> out(queries_per_row);
        for (auto &e : out) {
            e.chunk = uint32_t(q() % n);
            e.offset = uint32_t(q() % size_of[e.chunk]);
        }
        return out;
    }
};

// Chunks from an allocator, in plan order: bases[i] has plan.size_of[i] bytes.
template <class Alloc> void allocate_to(std::vector<uintptr_t> &bases, const plan &pl, size_t n, Alloc alloc) {
    bases.reserve(n);
    while (bases.size() < n) {
        char *p = static_cast<char *>(alloc(pl.size_of[bases.size()]));
        if (p == nullptr) abort();
        p[0] = 1;
        bases.push_back(reinterpret_cast<uintptr_t>(p));
    }
}

void addresses(const std::vector<query> &qs, const std::vector<uintptr_t> &bases, std::vector<uintptr_t> &q,
               std::vector<uintptr_t> &expected) {
    q.resize(qs.size());
    expected.resize(qs.size());
    for (size_t i = 0; i < qs.size(); ++i) {
        expected[i] = bases[qs[i].chunk];
        q[i] = expected[i] + qs[i].offset;
    }
}

[[maybe_unused]] double median_of(std::vector<double> v) {
    v.erase(std::remove(v.begin(), v.end(), -1.0), v.end());
    if (v.empty()) return -1;
    std::sort(v.begin(), v.end());
    return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

#if defined(LOOKUP_ASAN)
// ---- bench/lookup_asan: the child of bench/lookup ------------------------------------------------------
// Reads commands on stdin, one a line: "grow N" (allocate up to N chunks with ASan's malloc, build the
// row's queries; answers "ok"), "measure" (one round of __asan_locate_address over the row's queries;
// answers "MEDIAN P99 BATCH" in ns).  Stops at end of input.
uintptr_t asan_lookup(uintptr_t a) {
    void *region = nullptr;
    size_t size = 0;
    const char *kind = __asan_locate_address(reinterpret_cast<void *>(a), nullptr, 0, &region, &size);
    return kind != nullptr && strcmp(kind, "heap") == 0 && a - reinterpret_cast<uintptr_t>(region) < size
               ? reinterpret_cast<uintptr_t>(region)
               : 0;
}

int run_asan_child() {
    const timing tm = calibrate();
    plan pl;
    std::vector<uintptr_t> bases, q, expected;
    char line[64];
    while (fgets(line, sizeof line, stdin) != nullptr) {
        if (strncmp(line, "grow ", 5) == 0) {
            const size_t n = strtoull(line + 5, nullptr, 10);
            pl.grow(n);
            allocate_to(bases, pl, n, malloc);
            addresses(pl.queries(n), bases, q, expected);
            printf("ok\n");
        } else if (strcmp(line, "measure\n") == 0) {
            const stats s = measure("__asan_locate_address", q, expected, asan_lookup, tm);
            printf("%.3f %.3f %.3f\n", s.median, s.p99, s.batch);
        } else {
            fprintf(stderr, "lookup_asan: unknown command %s", line);
            return 2;
        }
        fflush(stdout);
    }
    return 0;
}
#else
// ---- the parent's side of the ASan child ----------------------------------------------------------------
struct asan_child {
    pid_t pid = -1;
    FILE *to = nullptr, *from = nullptr;

    // bench/lookup_asan next to this executable, started without LD_PRELOAD (ASan must come first in
    // the library list) and without leak detection at exit (nothing is freed on purpose).
    bool start() {
        char self[4096];
        const ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
        if (len <= 0) return false;
        self[len] = 0;
        std::string path = self;
        path = path.substr(0, path.rfind('/') + 1) + "lookup_asan";
        if (access(path.c_str(), X_OK) != 0) return false;
        std::vector<std::string> env_strings;
        for (char **e = environ; *e != nullptr; ++e)
            if (strncmp(*e, "LD_PRELOAD=", 11) != 0 && strncmp(*e, "ASAN_OPTIONS=", 13) != 0) env_strings.push_back(*e);
        env_strings.push_back("ASAN_OPTIONS=detect_leaks=0:malloc_context_size=0");
        std::vector<char *> env;
        for (auto &s : env_strings) env.push_back(s.data());
        env.push_back(nullptr);
        int down[2], up[2];
        if (pipe2(down, O_CLOEXEC) != 0 || pipe2(up, O_CLOEXEC) != 0) return false;
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, down[0], 0);
        posix_spawn_file_actions_adddup2(&fa, up[1], 1);
        char *argv[] = {path.data(), nullptr};
        const int rc = posix_spawn(&pid, path.c_str(), &fa, nullptr, argv, env.data());
        posix_spawn_file_actions_destroy(&fa);
        close(down[0]);
        close(up[1]);
        if (rc != 0) {
            close(down[1]);
            close(up[0]);
            pid = -1;
            return false;
        }
        to = fdopen(down[1], "w");
        from = fdopen(up[0], "r");
        return true;
    }
    bool ask(const char *command, char *answer, size_t size) {
        if (pid < 0) return false;
        fprintf(to, "%s\n", command);
        fflush(to);
        if (fgets(answer, int(size), from) != nullptr) return true;
        fprintf(stderr, "lookup: lookup_asan stopped\n");
        finish();
        return false;
    }
    bool grow(size_t n) {
        char cmd[64], answer[64];
        snprintf(cmd, sizeof cmd, "grow %zu", n);
        return ask(cmd, answer, sizeof answer) && strcmp(answer, "ok\n") == 0;
    }
    stats round() {
        char answer[128];
        stats s;
        if (ask("measure", answer, sizeof answer) && sscanf(answer, "%lf %lf %lf", &s.median, &s.p99, &s.batch) != 3) s = stats{};
        return s;
    }
    void finish() {
        if (pid < 0) return;
        fclose(to);
        fclose(from);
        int status;
        waitpid(pid, &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "lookup: lookup_asan failed (status %#x)\n", status);
            exit(1);
        }
        pid = -1;
    }
};

// The index's memory that lookups over [lo, hi) read, through its self-describing root (index/layout.h,
// as gdb's reader finds it): the leaves of the regions the chunks span and the records handed out so
// far.  Empty without the index.
std::vector<byte_range> index_memory_ranges(uintptr_t lo, uintptr_t hi) {
    std::vector<byte_range> out;
    const auto *root = static_cast<const heapindex_root *>(dlsym(RTLD_DEFAULT, HEAPINDEX_ROOT_SYMBOL));
    if (root == nullptr || !__atomic_load_n(&root->layout_complete, __ATOMIC_ACQUIRE)) return out;
    const heapindex_index_layout &h = root->heap;
    const auto *top = reinterpret_cast<const uint64_t *>(h.address + h.top_offset);
    const uint64_t limit = *reinterpret_cast<const uint64_t *>(h.address + h.limit_offset);
    for (uintptr_t r = lo >> h.region_shift; r <= (hi - 1) >> h.region_shift; ++r) {
        if ((r >> h.block_shift) >= limit) break;
        const uintptr_t leaf = *reinterpret_cast<const uintptr_t *>(top[r >> h.block_shift] + r * sizeof(uintptr_t));
        if (leaf != 0) out.push_back({leaf, leaf + h.leaf_bytes});
    }
    const uintptr_t base = *reinterpret_cast<const uintptr_t *>(root->pool_address + root->pool_base_offset);
    const uint64_t ids = *reinterpret_cast<const uint64_t *>(root->pool_address + root->pool_fresh_offset);
    if (base != 0) out.push_back({base, base + ids * root->record_bytes});
    return out;
}

// The share of queries whose record a lookup guesses right before its id arrives (chunk_index.h: the
// page's continuation plus the starts in the page up to the chunk's start, prefetched while the ids'
// line is missing), read through the root as above: where chunks got their record ids in address order,
// as here (one thread allocating, nothing freed), most; in a heap where ids were reused out of address
// order, few, and the lookup pays its two misses one after the other.  -1 without the index.
double index_guess_share(const std::vector<uintptr_t> &queries) {
    const auto *root = static_cast<const heapindex_root *>(dlsym(RTLD_DEFAULT, HEAPINDEX_ROOT_SYMBOL));
    if (root == nullptr || !__atomic_load_n(&root->layout_complete, __ATOMIC_ACQUIRE) || queries.empty()) return -1;
    const heapindex_index_layout &h = root->heap;
    const auto *top = reinterpret_cast<const uint64_t *>(h.address + h.top_offset);
    const uint64_t limit = *reinterpret_cast<const uint64_t *>(h.address + h.limit_offset);
    const unsigned per_region = 1u << (h.region_shift - h.granule_shift), per_page = 1u << (h.page_shift - h.granule_shift);
    size_t right = 0;
    for (uintptr_t a : queries) {
        const uintptr_t r = a >> h.region_shift;
        if ((r >> h.block_shift) >= limit) continue;
        const uintptr_t leaf = *reinterpret_cast<const uintptr_t *>(top[r >> h.block_shift] + r * sizeof(uintptr_t));
        if (leaf == 0) continue;
        const auto *starts = reinterpret_cast<const uint64_t *>(leaf + h.leaf_starts_offset);
        const auto *ids = reinterpret_cast<const uint32_t *>(leaf + h.leaf_ids_offset);
        const auto *cont = reinterpret_cast<const uint32_t *>(leaf + h.leaf_page_cont_offset);
        const unsigned g = unsigned(a >> h.granule_shift) & (per_region - 1);
        const uint64_t bits = starts[g / 64] & (~uint64_t{0} >> (63 - g % 64));
        if (bits == 0) continue;
        const unsigned s = (g & ~63u) + 63 - unsigned(__builtin_clzll(bits));
        unsigned rank = unsigned(__builtin_popcountll(bits));
        for (unsigned w = (g & ~(per_page - 1)) / 64; w < g / 64; ++w) rank += unsigned(__builtin_popcountll(starts[w]));
        right += cont[g / per_page] + rank == ids[s];
    }
    return 100.0 * double(right) / double(queries.size());
}

uintptr_t index_lookup(uintptr_t a) {
    heapindex_chunk c;
    return heapindex_lookup(reinterpret_cast<const void *>(a), &c) ? reinterpret_cast<uintptr_t>(c.base) : 0;
}

struct column {
    const char *title;
    bool present;
    std::vector<stats> rounds;
};

void print_cell(double v) {
    if (v < 0) printf(" %9s", "-");
    else printf(" %9.1f", v);
}
#endif

}  // namespace

int main(int argc, char **argv) {
#if defined(LOOKUP_ASAN)
    (void)argc;
    (void)argv;
    return run_asan_child();
#else
    const size_t max_chunks = argc > 1 ? strtoull(argv[1], nullptr, 10) : 10000000;
    const int rounds = argc > 2 ? std::max(1, atoi(argv[2])) : 3;
    const bool indexed = heapindex_present();
    if (!indexed) puts("lookup: libheapindex.so is not loaded: heapindex_lookup is not measured");
#if defined(LOOKUP_BOEHM_GC)
    GC_INIT();
    GC_disable();  // the objects are referenced from malloc'd memory, which the collector does not scan
#else
    puts("lookup: built without Boehm GC (libgc-dev): GC_base is not measured");
#endif
    asan_child asan;
    if (!asan.start()) puts("lookup: no bench/lookup_asan (a -fsanitize=address build): ASan is not measured");
    const timing tm = calibrate();
    std::mt19937_64 floor_rng(7);

    plan pl;
    std::vector<uintptr_t> heap, gc;
    naive_index naive;
    enum { c_index, c_sorted, c_map, c_gc, c_asan, c_floor32, c_chase2, c_idrec, c_load8, n_columns };
    const char *titles[n_columns] = {"heapindex", "sorted arr", "std::map", "GC_base", "ASan", "32B floor", "2 loads", "id+record", "1 load 8B"};
    struct row {
        size_t n;
        stats s[n_columns];
        double chase_mib, oracle_mib;
        huge_share huge[n_columns];  // the memory each column reads: resident MiB, of which on huge pages
        double guessed = -1;         // % of queries whose record the index guesses before its id
    };
    std::vector<row> table;
    printf("lookup latency over the same chunks and queries, ns; %d rounds per row, median of the rounds; timing cost of "
           "%.1f ns subtracted\n",
           rounds, tm.overhead * tm.tick_ns);
    fflush(stdout);
    for (size_t n = 1000; n <= max_chunks; n *= 10) {
        pl.grow(n);
        allocate_to(heap, pl, n, malloc);
        for (size_t i = naive.size(); i < n; ++i) naive.emplace_hint(naive.end(), heap[i], pl.size_of[i]);
#if defined(LOOKUP_BOEHM_GC)
        allocate_to(gc, pl, n, GC_malloc);
#endif
        const bool have_asan = asan.grow(n);
        sorted_array sorted;
        {
            std::vector<std::pair<uintptr_t, size_t>> v(n);
            for (size_t i = 0; i < n; ++i) v[i] = {heap[i], pl.size_of[i]};
            sorted.build(std::move(v));
        }
        const std::vector<query> qs = pl.queries(n);
        std::vector<uintptr_t> q, expected, gq, gexpected;
        addresses(qs, heap, q, expected);
        if (!gc.empty()) addresses(qs, gc, gq, gexpected);
        std::vector<size_t> oq(qs.size());
        for (size_t i = 0; i < qs.size(); ++i) oq[i] = qs[i].chunk;
        // The oracle's records: 32 bytes per live chunk, filled with the chunks' own fields.
        huge_buffer ob(n * sizeof(oracle_record));
        oracle = reinterpret_cast<oracle_record *>(ob.data);
        for (size_t i = 0; i < n; ++i) oracle[i] = {heap[i], pl.size_of[i], 8, reinterpret_cast<const void *>(main), uint64_t(i) << 24};

        uintptr_t lo = UINTPTR_MAX, hi = 0;
        for (size_t i = 0; i < n; ++i) lo = std::min(lo, heap[i]), hi = std::max(hi, heap[i] + pl.size_of[i]);
        row r{};
        r.n = n;
        r.chase_mib = (n * index_record_bytes + (hi - lo) / 8 + (hi - lo) / 256) / 1048576.0;
        r.oracle_mib = n * 32 / 1048576.0;
        std::vector<stats> got[n_columns];
        if (indexed) r.huge[c_index] = huge_pages_of(index_memory_ranges(lo, hi));
        if (indexed) r.guessed = index_guess_share(q);
        {
            const uintptr_t o = reinterpret_cast<uintptr_t>(ob.data);
            r.huge[c_floor32] = huge_pages_of({{o, o + n * sizeof(oracle_record)}});
        }
        for (int round = 0; round < rounds; ++round) {
            for (int k = 0; k < n_columns; ++k) {
                const int c = (k + round) % n_columns;  // rotated: no column always runs first
                stats s;
                switch (c) {
                case c_index:
                    if (indexed) s = measure("heapindex_lookup", q, expected, index_lookup, tm);
                    break;
                case c_sorted: s = measure("sorted array", q, expected, [&](uintptr_t a) { return sorted.lookup(a); }, tm); break;
                case c_map: s = measure("std::map", q, expected, [&](uintptr_t a) { return naive_lookup(naive, a); }, tm); break;
                case c_gc:
#if defined(LOOKUP_BOEHM_GC)
                    s = measure("GC_base", gq, gexpected, [](uintptr_t a) { return reinterpret_cast<uintptr_t>(GC_base(reinterpret_cast<void *>(a))); }, tm);
#endif
                    break;
                case c_asan:
                    if (have_asan) s = asan.round();
                    break;
                case c_floor32:
                    s = measure("32-byte oracle", oq, expected, [](size_t i) {
                        heapindex_chunk c;
                        return oracle_fn(i, &c) ? reinterpret_cast<uintptr_t>(c.base) : 0;
                    }, tm);
                    break;
                case c_chase2:
                    s.median = pointer_chase_floor(2, size_t(r.chase_mib * 1048576), queries_per_row, floor_rng, tm, &r.huge[c_chase2]);
                    break;
                case c_idrec:
                    s.median = id_record_floor(n, index_record_bytes, queries_per_row, floor_rng, tm, &r.huge[c_idrec]);
                    break;
                case c_load8:
                    s.median = pointer_chase_floor(1, n * 8, queries_per_row, floor_rng, tm, &r.huge[c_load8]);
                    break;
                }
                got[c].push_back(s);
            }
        }
        for (int c = 0; c < n_columns; ++c) {
            std::vector<double> m, p, b;
            for (const stats &s : got[c]) m.push_back(s.median), p.push_back(s.p99), b.push_back(s.batch);
            r.s[c] = {median_of(m), median_of(p), median_of(b)};
        }
        table.push_back(r);
        // One line per row as it is measured (the full tables follow at the end).
        printf("%9zu live chunks:", n);
        for (int c = 0; c < n_columns; ++c) printf(" %s %.1f", titles[c], r.s[c].median);
        printf("\n");
        fflush(stdout);
    }
    asan.finish();

    const char *what[3] = {"median per lookup", "batch: mean per lookup, independent lookups back to back",
                           "99th percentile per lookup"};
    for (int k = 0; k < 3; ++k) {
        printf("\n%s, ns\n%12s", what[k], "live chunks");
        for (int c = 0; c < n_columns; ++c)
            if (k == 0 || c < c_chase2) printf(" %10s", titles[c]);
        printf("\n");
        for (const row &r : table) {
            printf("%12zu", r.n);
            for (int c = 0; c < n_columns; ++c) {
                if (k != 0 && c >= c_chase2) continue;
                printf(" ");
                print_cell(k == 0 ? r.s[c].median : k == 1 ? r.s[c].batch : r.s[c].p99);
            }
            printf("\n");
        }
    }
    printf("\nheapindex_lookup against the others and the 32-byte floor (median; batch), x: below 1.00 the index is faster\n");
    printf("%12s %19s %19s %19s %19s %17s %10s %10s\n", "live chunks", "/ sorted array", "/ std::map", "/ GC_base", "/ ASan",
           "/ 32B floor", "floor MiB", "2-load MiB");
    for (const row &r : table) {
        printf("%12zu", r.n);
        for (int c : {c_sorted, c_map, c_gc, c_asan, c_floor32}) {
            const stats &i = r.s[c_index], &o = r.s[c];
            if (i.median < 0 || o.median <= 0) printf(" %19s", "-");
            else printf(" %8.2f; %8.2f", i.median / o.median, o.batch > 0 ? i.batch / o.batch : -1.0);
        }
        printf(" %10.1f %10.1f\n", r.oracle_mib, r.chase_mib);
    }
    // Like with like: how much of what each column reads sits on transparent huge pages (a TLB miss per
    // lookup otherwise, most of the cost once the structures outgrow the caches).
    printf("\nresident MiB of what each column reads, and the part on transparent huge pages (%s); the share of\n"
           "queries whose record heapindex_lookup guessed and prefetched right before its id arrived\n",
           !table.empty() && table.back().huge[c_floor32].exact ? "pagemap and kpageflags: exact"
                                                                 : "smaps, whole mappings: approximate; run as root for exact figures");
    printf("%12s %21s %21s %21s %21s %21s %16s\n", "live chunks", "heapindex", "32B floor", "2 loads", "id+record", "1 load 8B",
           "record guessed");
    for (const row &r : table) {
        printf("%12zu", r.n);
        for (int c : {c_index, c_floor32, c_chase2, c_idrec, c_load8}) {
            const huge_share &h = r.huge[c];
            if (h.resident_mib < 0) printf(" %21s", "-");
            else printf(" %9.1f (%5.1f%% THP)", h.resident_mib, h.resident_mib > 0 ? 100 * h.huge_mib / h.resident_mib : 0.0);
        }
        if (r.guessed >= 0) printf(" %15.1f%%", r.guessed);
        printf("\n");
    }
    // Issue 13's lookup targets, row by row: faster than the sorted array, GC_base and ASan, within 2x of
    // the 32-byte floor (medians of this run).  A GC_base below the floor is out of reach for the index:
    // GC_base reads per-page block headers (one object size per page, the base by division) and no datum
    // of its own per object, while any index answering this API's per-chunk fields (site, sequence number,
    // thread) reads at least one per-chunk datum, which is what the floor times.
    if (indexed) {
        printf("\nissue 13's lookup targets (median per lookup): yes / NO\n");
        printf("%12s %12s %12s %12s %16s %s\n", "live chunks", "< sorted", "< GC_base", "< ASan", "<= 2x 32B floor", "");
        for (const row &r : table) {
            auto cell = [&](int c, double factor) {
                const double o = r.s[c].median;
                if (o <= 0) printf(" %12s", "-");
                else printf(" %12s", r.s[c_index].median < factor * o || (factor == 2 && r.s[c_index].median == 2 * o) ? "yes" : "NO");
            };
            printf("%12zu", r.n);
            cell(c_sorted, 1);
            cell(c_gc, 1);
            cell(c_asan, 1);
            printf("    ");
            cell(c_floor32, 2);
            const double g = r.s[c_gc].median, f = r.s[c_floor32].median;
            if (g > 0 && f > 0 && g < f)
                printf("  GC_base %.1f ns is below the 32B floor %.1f ns: no index returning per-chunk fields gets there", g, f);
            printf("\n");
        }
    }
    if (indexed) {
        struct heapindex_stats s;
        heapindex_stats(&s);
        printf("index memory mapped: %.1f MiB for %llu live chunks\n", s.index_bytes / 1048576.0,
               (unsigned long long)s.live_chunks);
    }
    return 0;
#endif
}
