// SPDX-License-Identifier: MIT
// Heap profiles (see profile.h): stacks for sampled or all allocations, their counters in the stack
// depot, the series of memory in use, the stack set at the peak, and the dump and its conversion.
//
// Everything on the allocation path (on_countdown, released, on_sample) is lock-free and allocation-
// free: the unwinder and the depot (unwind.h, stack_depot.h) are, the stack of each record is kept in a
// side array indexed by record id (the 64-byte record has no room left, and a side array costs nothing
// when profiles are off), and the peak snapshot and series compaction take a try-flag that nobody ever
// waits for.  At exit (or on demand) the dump is written with write(2), and heapindex-report, a separate
// program (C++ with the standard library, libdw for symbols: nothing this runtime library may load), is
// started with posix_spawn to write the outputs.  The runtime thus never needs libstdc++, and the
// formats live in tools-side code.
#include "index/profile.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "index/counters.h"
#include "index/profile_format.h"
#include "index/record_pool.h"
#include "index/settings.h"
#include "index/stack_depot.h"
#include "index/stats.h"
#include "index/unwind.h"
#include "libmallochooks/guard.h"
#include "libmallochooks/output.h"
#include "libmallochooks/output_path.h"
#include "mallochooks/heapindex.h"

extern "C" char **environ;

namespace mallochooks::heapindex::profile {

namespace pf = profile_format;

// profile_thread.h's globals.
constinit bool every_fast = false;
std::atomic<uint32_t> *stack_of = nullptr;
constinit uint64_t stack_of_capacity = 0;
std::atomic<uint32_t> *freed_by = nullptr;
__thread delta_block *my_deltas;

namespace {

// ---- settings -------------------------------------------------------------------------------------------

enum output_kind : uint8_t { out_html, out_folded_live, out_folded_peak, out_folded_allocs, out_folded_leaks, out_heaptrack, out_dump };
struct output {
    output_kind kind;
    char path[512];
};
constexpr unsigned max_outputs = 8;

struct settings_t {
    unsigned depth = 0;         // HEAPINDEX_STACKS
    bool depth_given = false;
    uint64_t sample_bytes = 0;  // HEAPINDEX_STACKS_SAMPLE
    unsigned series_ms = 10;    // HEAPINDEX_SERIES_MS
    output outputs[max_outputs] = {};
    unsigned n_outputs = 0;
};
constinit settings_t cfg;

constinit bool on = false;  // stacks are recorded (set once by start, before any thread but the first runs)
constinit uint64_t start_ns = 0;
constinit int start_pid = 0;

uint64_t now_ns() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return uint64_t(ts.tv_sec) * 1000000000u + uint64_t(ts.tv_nsec);
}

bool ends_with(const char *s, size_t n, const char *suffix) {
    const size_t k = strlen(suffix);
    return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

// The kind of a profile output by its name, or false for a text report path.
bool kind_of(const char *s, size_t n, output_kind *kind) {
    const char *slash = static_cast<const char *>(memrchr(s, '/', n));
    const char *base = slash ? slash + 1 : s;
    const size_t bn = n - size_t(base - s);
    if (ends_with(s, n, ".html") || ends_with(s, n, ".htm")) *kind = out_html;
    else if (ends_with(s, n, ".peak.folded")) *kind = out_folded_peak;
    else if (ends_with(s, n, ".allocs.folded")) *kind = out_folded_allocs;
    else if (ends_with(s, n, ".leaks.folded")) *kind = out_folded_leaks;
    else if (ends_with(s, n, ".folded")) *kind = out_folded_live;
    else if (ends_with(s, n, ".hiprof")) *kind = out_dump;
    else if ((bn >= 10 && memcmp(base, "heaptrack.", 10) == 0) || ends_with(s, n, ".heaptrack") ||
             ends_with(s, n, ".heaptrack.gz") || ends_with(s, n, ".heaptrack.zst"))
        *kind = out_heaptrack;
    else return false;
    return true;
}

bool parse_unsigned(const char *name, const char *v, uint64_t max, uint64_t *out, const char *what) {
    char *end;
    errno = 0;
    const unsigned long long n = strtoull(v, &end, 10);
    if (*v < '0' || *v > '9' || *end != '\0' || errno != 0 || n > max) {
        print(program_stderr, "heapindex: %s='%s' is not %s from 0 to %llu; using the default, %llu\n", name, v, what,
              (unsigned long long)max, (unsigned long long)*out);
        return false;
    }
    *out = n;
    return true;
}

// ---- sampling ---------------------------------------------------------------------------------------------

// A per-thread xorshift generator for the sampler (initial-exec TLS: see libmallochooks/guard.h).
__thread uint64_t rng_state __attribute__((tls_model("initial-exec")));

uint64_t next_random() {
    uint64_t x = rng_state;
    if (x == 0) x = now_ns() ^ (uint64_t(uintptr_t(&rng_state)) << 16) ^ 0x9e3779b97f4a7c15ull;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    rng_state = x;
    return x;
}

// ln(x) for x in (0, 1], and e^-x for x >= 0: small polynomials (relative error < 1e-6), because the
// runtime does not link libm.
double ln(double x) {
    uint64_t bits;
    memcpy(&bits, &x, 8);
    const int e = int((bits >> 52) & 0x7ff) - 1023;
    bits = (bits & ((uint64_t{1} << 52) - 1)) | (uint64_t{1023} << 52);
    double m;
    memcpy(&m, &bits, 8);  // [1, 2)
    const double t = (m - 1) / (m + 1), t2 = t * t;  // ln(m) = 2 atanh(t)
    const double l = 2 * t * (1 + t2 * (1.0 / 3 + t2 * (1.0 / 5 + t2 * (1.0 / 7 + t2 * (1.0 / 9 + t2 / 11)))));
    return l + e * 0.6931471805599453;
}

double exp_neg(double x) {
    if (x > 700) return 0;
    const double y = x * 1.4426950408889634;  // e^-x = 2^-y
    const int k = int(y);
    const double f = (y - k) * 0.6931471805599453;  // e^-f, f in [0, ln 2)
    double s = 1, term = 1;
    for (int i = 1; i < 14; ++i) term *= -f / i, s += term;
    uint64_t bits = uint64_t(1023 - k) << 52;
    double p;
    memcpy(&p, &bits, 8);
    return s * p;
}

// The next countdown: every allocation (negative), an exponential draw of mean K bytes, or never.
int64_t next_countdown() {
    if (!on) return INT64_MAX / 2;
    if (cfg.sample_bytes == 0) return -1;
    const double u = double((next_random() >> 11) + 1) * (1.0 / 9007199254740992.0);  // (0, 1]
    const double d = -ln(u) * double(cfg.sample_bytes);
    return d >= 9e18 ? INT64_MAX / 2 : int64_t(d);
}

// What one sampled allocation of `size` bytes stands for: 1 / P(sampled) allocations and size / P bytes,
// P = 1 - e^(-size / K) (the countdown crosses zero within it), as tcmalloc and jemalloc scale.
struct weight {
    uint64_t count;  // 1/1024ths
    uint64_t bytes;
};
__attribute__((noinline)) weight sampled_weight(size_t size);
inline weight weight_of(size_t size) {
    if (__builtin_expect(cfg.sample_bytes == 0, 1)) return {count_unit, size};
    return sampled_weight(size);
}
weight sampled_weight(size_t size) {
    const double p = 1 - exp_neg(double(size) / double(cfg.sample_bytes));
    if (p <= 0) return {count_unit, size};
    return {uint64_t(double(count_unit) / p + 0.5), uint64_t(double(size) / p + 0.5)};
}

// ---- the stack of each record: a side array indexed by record id ----------------------------------------


// The stacks that are not allocation stacks, for heap-error reports (HEAPINDEX_STACKS > 1): the stack that
// freed each chunk with an allocation stack (freed_by[record id], read while the record is a tombstone),
// and the stack of the call a heap error was found in.  A depot of their own, so that the profile's
// stacks stay allocation stacks.
constinit stack_depot other_depot;

bool reserve_ids(std::atomic<uint32_t> **to, uint64_t *capacity) {
    size_t bytes = sizeof(uint32_t) << 32;
    const int saved = errno;
    void *m = MAP_FAILED;
    for (; bytes >= (size_t{64} << 20); bytes /= 2) {
        m = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (m != MAP_FAILED) break;
    }
    errno = saved;
    if (m == MAP_FAILED) return false;
    *to = static_cast<std::atomic<uint32_t> *>(m);
    *capacity = bytes / sizeof(uint32_t);
    return true;
}
bool reserve_stack_of() { return reserve_ids(&stack_of, &stack_of_capacity); }

// ---- per-thread pending counter deltas -------------------------------------------------------------------

// A locked add to a stack's shared counters costs more than the rest of recording a stack (four at
// allocation, two at free, on cache lines other threads write too).  So each thread adds to a small
// direct-mapped table of pending deltas instead, 256 stacks, and adds a slot to the depot entry (locked
// adds) only when another stack takes the slot or the thread exits.  Readers (the peak snapshot, the dump)
// add the pending deltas of every thread to what they read: each slot's values are single 8-byte words
// its owner writes, read whole.
enum counter { c_allocations, c_bytes, c_temporaries, c_live_bytes, c_live_chunks, n_counters };
static_assert(int(n_deltas) == int(n_counters));  // (the deltas: profile_thread.h)

inline void to_counters(const int64_t *d, int64_t *v) {
    v[c_allocations] = d[d_allocations];
    v[c_bytes] = d[d_bytes];
    v[c_temporaries] = d[d_temporaries];
    v[c_live_bytes] = d[d_bytes] - d[d_freed_bytes];
    v[c_live_chunks] = d[d_allocations] - d[d_freed_chunks];
}
__thread bool deltas_exited __attribute__((tls_model("initial-exec")));
std::atomic<delta_block *> all_blocks{nullptr};
std::atomic<uint64_t> free_blocks{0};  // tag << 48 | block
constexpr uint64_t ptr_mask = (uint64_t{1} << 48) - 1;
pthread_key_t deltas_key;
bool deltas_key_made = false;

void add_to_entry(uint32_t sid, const int64_t *v) {
    stack_entry *e = depot().get(sid);
    if (v[c_allocations]) e->allocations.fetch_add(uint64_t(v[c_allocations]), std::memory_order_relaxed);
    if (v[c_bytes]) e->bytes.fetch_add(uint64_t(v[c_bytes]), std::memory_order_relaxed);
    if (v[c_temporaries]) e->temporaries.fetch_add(uint64_t(v[c_temporaries]), std::memory_order_relaxed);
    if (v[c_live_bytes]) e->live_bytes.fetch_add(v[c_live_bytes], std::memory_order_relaxed);
    if (v[c_live_chunks]) e->live_chunks.fetch_add(v[c_live_chunks], std::memory_order_relaxed);
}

void flush(pending &p) {
    const uint32_t sid = p.stack.load(std::memory_order_relaxed);
    if (sid == 0) return;
    int64_t d[n_deltas], v[n_counters];
    for (unsigned k = 0; k < n_deltas; ++k) d[k] = p.v[k].load(std::memory_order_relaxed);
    to_counters(d, v);
    add_to_entry(sid, v);
    for (unsigned k = 0; k < n_deltas; ++k) p.v[k].store(0, std::memory_order_relaxed);
    p.stack.store(0, std::memory_order_relaxed);
}

void deltas_at_thread_exit(void *arg) {
    delta_block *b = static_cast<delta_block *>(arg);
    if (b == nullptr) return;
    for (pending &p : b->slot) flush(p);
    // The next thread to take this block has another stack: these walks say nothing about it (and their
    // slots may lie beyond its stack's end).
    for (unwind::memo_set &m : b->walk) m.invalidate();
    for (unwind::memo_set &m : b->free_walk) m.invalidate();
    b->last_stacked_id = 0;
    my_deltas = nullptr;
    deltas_exited = true;
    uint64_t head = free_blocks.load(std::memory_order_acquire);
    do {
        b->next_free = reinterpret_cast<delta_block *>(head & ptr_mask);
    } while (!free_blocks.compare_exchange_weak(head, ((head >> 48) + 1) << 48 | reinterpret_cast<uint64_t>(b),
                                                std::memory_order_acq_rel));
}

delta_block *make_block() {
    if (deltas_exited) return nullptr;
    delta_block *b = nullptr;
    uint64_t head = free_blocks.load(std::memory_order_acquire);
    while ((head & ptr_mask) != 0) {
        delta_block *top = reinterpret_cast<delta_block *>(head & ptr_mask);
        delta_block *next = top->next_free;  // may be stale: the tagged CAS then fails
        if (free_blocks.compare_exchange_weak(head, ((head >> 48) + 1) << 48 | reinterpret_cast<uint64_t>(next),
                                              std::memory_order_acq_rel)) {
            b = top;
            break;
        }
    }
    if (b == nullptr) {
        const int saved = errno;
        void *m = mmap(nullptr, sizeof(delta_block), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        errno = saved;
        if (m == MAP_FAILED) return nullptr;
        b = static_cast<delta_block *>(m);
        delta_block *first = all_blocks.load(std::memory_order_relaxed);
        do {
            b->next_all = first;
        } while (!all_blocks.compare_exchange_weak(first, b, std::memory_order_acq_rel));
    }
    my_deltas = b;
    if (deltas_key_made) {
        reentrancy_guard guard;  // pthread_setspecific may allocate its second-level table
        pthread_setspecific(deltas_key, b);
    }
    return b;
}

// This thread's pending slot of stack `sid` (taken over from another stack if need be), or null when the
// thread has no table (then the deltas go to the entry directly).
inline pending *pending_slot(uint32_t sid) {
    delta_block *b = my_deltas;
    if (__builtin_expect(b == nullptr, 0)) b = make_block();
    if (b == nullptr) return nullptr;
    pending &p = b->slot[(sid ^ (sid >> 8)) & (delta_block::slots - 1)];
    if (p.stack.load(std::memory_order_relaxed) != sid) {
        flush(p);
        p.stack.store(sid, std::memory_order_relaxed);
    }
    return &p;
}

// An allocation, and a free, counted on a stack through this thread's pending table.  Owner-only words:
// plain adds (bump, counters.h).
inline void count_allocation(uint32_t sid, int64_t count, int64_t bytes) {
    pending *p = pending_slot(sid);
    if (__builtin_expect(p == nullptr, 0)) {
        const int64_t v[n_counters] = {count, bytes, 0, bytes, count};
        return add_to_entry(sid, v);
    }
    bump(p->v[d_allocations], count);
    bump(p->v[d_bytes], bytes);
}
inline void count_free(uint32_t sid, int64_t count, int64_t bytes, bool temporary) {
    pending *p = pending_slot(sid);
    if (__builtin_expect(p == nullptr, 0)) {
        const int64_t v[n_counters] = {0, 0, temporary ? count : 0, -bytes, -count};
        return add_to_entry(sid, v);
    }
    bump(p->v[d_freed_bytes], bytes);
    bump(p->v[d_freed_chunks], count);
    if (temporary) bump(p->v[d_temporaries], count);
}

// For readers holding report_busy: every entry's view = its counters + all pending deltas.
std::atomic<bool> report_busy{false};

void gather_views() {
    depot().for_each([](uint32_t, stack_entry &e) {
        e.view[c_allocations].store(int64_t(e.allocations.load(std::memory_order_relaxed)), std::memory_order_relaxed);
        e.view[c_bytes].store(int64_t(e.bytes.load(std::memory_order_relaxed)), std::memory_order_relaxed);
        e.view[c_temporaries].store(int64_t(e.temporaries.load(std::memory_order_relaxed)), std::memory_order_relaxed);
        e.view[c_live_bytes].store(e.live_bytes.load(std::memory_order_relaxed), std::memory_order_relaxed);
        e.view[c_live_chunks].store(e.live_chunks.load(std::memory_order_relaxed), std::memory_order_relaxed);
    });
    for (delta_block *b = all_blocks.load(std::memory_order_acquire); b != nullptr; b = b->next_all)
        for (pending &p : b->slot) {
            const uint32_t sid = p.stack.load(std::memory_order_relaxed);
            if (sid == 0) continue;
            stack_entry *e = depot().get(sid);
            int64_t d[n_deltas], v[n_counters];
            for (unsigned k = 0; k < n_deltas; ++k) d[k] = p.v[k].load(std::memory_order_relaxed);
            to_counters(d, v);
            for (unsigned k = 0; k < n_counters; ++k)
                e->view[k].store(e->view[k].load(std::memory_order_relaxed) + v[k],
                                 std::memory_order_relaxed);
        }
}

// ---- series and peak snapshot -----------------------------------------------------------------------------

constexpr size_t series_capacity = size_t{1} << 16;
pf::series_point *series = nullptr;
std::atomic<uint64_t> series_count{0};
std::atomic<uint64_t> series_last_ns{0}, series_last_bytes{0};
std::atomic<uint64_t> series_interval_ns{0};
std::atomic<bool> series_busy{false};

std::atomic<uint64_t> snapshot_bytes{0}, snapshot_ns{0};

uint64_t live_chunks_now() {
    const global_counters &g = counters();
    uint64_t in = g.orphan_allocations.load(std::memory_order_relaxed), out = g.orphan_frees.load(std::memory_order_relaxed);
    for (thread_state *t = all_thread_states(); t != nullptr; t = t->next_all) {
        in += t->allocations.load(std::memory_order_relaxed);
        out += t->frees.load(std::memory_order_relaxed);
    }
    return in > out ? in - out : 0;
}

void append_point(uint64_t t, uint64_t bytes) {
    uint64_t i = series_count.load(std::memory_order_relaxed);
    if (i >= series_capacity) {
        // Full: keep every other point and sample half as often, one thread at a time (others skip).
        if (series_busy.exchange(true, std::memory_order_acquire)) return;
        i = series_count.load(std::memory_order_relaxed);
        if (i >= series_capacity) {
            for (size_t k = 0; k < series_capacity / 2; ++k) series[k] = series[2 * k + 1];
            series_interval_ns.store(series_interval_ns.load(std::memory_order_relaxed) * 2 + 1000000, std::memory_order_relaxed);
            series_count.store(series_capacity / 2, std::memory_order_release);
        }
        series_busy.store(false, std::memory_order_release);
        return;
    }
    i = series_count.fetch_add(1, std::memory_order_acq_rel);
    if (i >= series_capacity) return;  // lost a race with the compaction: this point is dropped
    series[i] = {t, bytes, live_chunks_now()};
}

// Copy every stack's live counters to its peak columns.
void snapshot(uint64_t bytes, uint64_t t) {
    if (report_busy.exchange(true, std::memory_order_acquire)) return;
    gather_views();
    depot().for_each([](uint32_t, stack_entry &e) {
        e.peak_bytes.store(e.view[c_live_bytes].load(std::memory_order_relaxed), std::memory_order_relaxed);
        e.peak_chunks.store(e.view[c_live_chunks].load(std::memory_order_relaxed), std::memory_order_relaxed);
    });
    snapshot_bytes.store(bytes, std::memory_order_relaxed);
    snapshot_ns.store(t, std::memory_order_relaxed);
    report_busy.store(false, std::memory_order_release);
}

// ---- leaks found by the reachability scan (HEAPINDEX_LEAKS=exit) -------------------------------------------

// Per (stack, kind): an open-addressing table in mapped memory, filled by the destructor's thread alone
// (leak_found), and the exact totals per kind.  A table past 3/4 full counts the rest in stack 0.
constexpr size_t leak_capacity = size_t{1} << 16;
pf::leak_record *leak_table = nullptr;
size_t leak_used = 0;
pf::leak_record leak_totals[3] = {};
bool leaks_scanned = false;

void add_leak(uint32_t stack, uint32_t kind, uint64_t bytes, uint64_t chunks) {
    if (leak_table == nullptr) {
        void *m = mmap(nullptr, leak_capacity * sizeof(pf::leak_record), PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (m == MAP_FAILED) return;
        leak_table = static_cast<pf::leak_record *>(m);
    }
    if (leak_used >= leak_capacity / 4 * 3) stack = 0;
    for (size_t i = (stack * 0x9e3779b1u ^ kind) & (leak_capacity - 1);; i = (i + 1) & (leak_capacity - 1)) {
        pf::leak_record &r = leak_table[i];
        if (r.kind == 0) {
            r = {stack, kind, 0, 0};
            ++leak_used;
        }
        if (r.stack_id == stack && r.kind == kind) {
            r.bytes += bytes;
            r.chunks += chunks;
            return;
        }
    }
}

// ---- the dump ----------------------------------------------------------------------------------------------

struct writer {
    int fd;
    bool ok = true;
    void bytes(const void *p, size_t n) {
        const char *s = static_cast<const char *>(p);
        while (ok && n > 0) {
            const ssize_t w = write(fd, s, n);
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) {
                ok = false;
                return;
            }
            s += w;
            n -= size_t(w);
        }
    }
    void section(uint32_t tag, uint64_t length) {
        const pf::section s{tag, 0, length};
        bytes(&s, sizeof s);
    }
};

struct module_walk {
    char *buf;
    size_t used;
    char *unused;
    size_t cap;
};

int each_module(dl_phdr_info *info, size_t, void *arg) {
    module_walk *m = static_cast<module_walk *>(arg);
    char exe[512];
    const char *path = info->dlpi_name;
    if (path == nullptr || path[0] == '\0') {
        const ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
        if (n <= 0) return 0;
        exe[n] = '\0';
        path = exe;
    }
    if (path[0] != '/') return 0;  // the vDSO: no file to read symbols from
    pf::module_record r{info->dlpi_addr, UINT64_MAX, 0, uint32_t(strlen(path)), 0};
    for (unsigned i = 0; i < info->dlpi_phnum; ++i) {
        const ElfW(Phdr) &ph = info->dlpi_phdr[i];
        if (ph.p_type != PT_LOAD) continue;
        if (info->dlpi_addr + ph.p_vaddr < r.start) r.start = info->dlpi_addr + ph.p_vaddr;
        if (info->dlpi_addr + ph.p_vaddr + ph.p_memsz > r.end) r.end = info->dlpi_addr + ph.p_vaddr + ph.p_memsz;
    }
    if (m->used + sizeof r + r.path_length > m->cap) return 1;
    memcpy(m->buf + m->used, &r, sizeof r);
    memcpy(m->buf + m->used + sizeof r, path, r.path_length);
    m->used += sizeof r + r.path_length;
    return 0;
}

bool write_dump(int fd, bool at_exit) {
    writer w{fd};
    w.bytes(pf::magic, sizeof pf::magic);
    struct heapindex_stats st;
    collect_stats(&st);
    pf::header h{};
    h.version = 1;
    h.stack_depth = cfg.depth;
    h.sample_bytes = cfg.sample_bytes;
    h.pid = uint64_t(getpid());
    h.start_ns = start_ns;
    h.end_ns = now_ns();
    h.peak_ns = snapshot_ns.load();
    h.total_allocations = st.total_allocations;
    h.total_frees = st.total_frees;
    h.total_bytes = st.total_bytes;
    h.live_chunks = st.live_chunks;
    h.live_bytes = st.live_bytes;
    h.peak_live_bytes = st.peak_live_bytes;
    h.peak_snapshot_bytes = snapshot_bytes.load();
    h.stacks_dropped = depot().dropped();
    h.page_size = uint64_t(sysconf(_SC_PAGESIZE));
    h.phys_pages = uint64_t(sysconf(_SC_PHYS_PAGES));
    h.at_exit = at_exit;
    h.leaks_kind = leaks_scanned ? 1 : 0;
    w.section(pf::tag_header, sizeof h);
    w.bytes(&h, sizeof h);

    char cmd[4096];
    ssize_t cn = 0;
    const int cfd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
    if (cfd >= 0) {
        cn = read(cfd, cmd, sizeof cmd);
        close(cfd);
    }
    if (cn < 0) cn = 0;
    w.section(pf::tag_cmdline, uint64_t(cn));
    w.bytes(cmd, size_t(cn));

    // The objects, gathered in one walk into a buffer (a dlopen between two walks would change them).
    module_walk m{nullptr, 0, nullptr, 0};
    m.cap = size_t{1} << 20;
    void *buf = mmap(nullptr, m.cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (buf != MAP_FAILED) {
        m.buf = static_cast<char *>(buf);
        dl_iterate_phdr(each_module, &m);
    }
    w.section(pf::tag_modules, m.used);
    w.bytes(m.buf, m.used);
    if (buf != MAP_FAILED) munmap(buf, m.cap);

    // Wait for a peak snapshot in flight (it takes microseconds; only readers take this flag), but not
    // forever: a fork while another thread held it leaves it set in the child for good.
    bool held = false;
    for (unsigned tries = 0; !held && tries < 1000; ++tries) {
        held = !report_busy.exchange(true, std::memory_order_acquire);
        if (!held) sched_yield();
    }
    gather_views();
    uint64_t stack_bytes = 0;
    depot().for_each([&](uint32_t, stack_entry &e) { stack_bytes += sizeof(pf::stack_record) + e.depth * 8u; });
    w.section(pf::tag_stacks, stack_bytes);
    uint64_t written = 0;
    depot().for_each([&](uint32_t id, stack_entry &e) {
        if (written + sizeof(pf::stack_record) + e.depth * 8u > stack_bytes) return;  // appeared meanwhile
        const pf::stack_record r{id, e.depth, uint64_t(e.view[c_allocations].load()), uint64_t(e.view[c_bytes].load()),
                                 uint64_t(e.view[c_temporaries].load()), e.view[c_live_bytes].load(),
                                 e.view[c_live_chunks].load(), e.peak_bytes.load(), e.peak_chunks.load()};
        w.bytes(&r, sizeof r);
        w.bytes(e.frames, e.depth * 8u);
        written += sizeof r + e.depth * 8u;
    });
    while (written < stack_bytes) {  // pad with empty records so the section length holds
        const pf::stack_record r{};
        w.bytes(&r, sizeof r);
        written += sizeof r;
    }
    if (held) report_busy.store(false, std::memory_order_release);

    uint64_t n = series_count.load();
    if (n > series_capacity) n = series_capacity;
    w.section(pf::tag_series, n * sizeof(pf::series_point));
    if (n != 0) w.bytes(series, n * sizeof(pf::series_point));

    if (leaks_scanned) {
        w.section(pf::tag_leaks, (leak_used + 3) * sizeof(pf::leak_record));
        w.bytes(leak_totals, sizeof leak_totals);
        for (size_t i = 0; leak_table != nullptr && i < leak_capacity; ++i)
            if (leak_table[i].kind != 0) w.bytes(&leak_table[i], sizeof(pf::leak_record));
    }
    return w.ok;
}

// ---- the converter ---------------------------------------------------------------------------------------

// heapindex-report: installed in libexecdir, or in the build tree (meson defines both paths).
const char *converter() {
#ifdef HEAPINDEX_REPORT_TOOL_INSTALLED
    if (access(HEAPINDEX_REPORT_TOOL_INSTALLED, X_OK) == 0) return HEAPINDEX_REPORT_TOOL_INSTALLED;
#endif
#ifdef HEAPINDEX_REPORT_TOOL_BUILD
    if (access(HEAPINDEX_REPORT_TOOL_BUILD, X_OK) == 0) return HEAPINDEX_REPORT_TOOL_BUILD;
#endif
    return nullptr;
}

const char *option_of(output_kind k) {
    switch (k) {
    case out_html: return "--html";
    case out_folded_live: return "--folded";
    case out_folded_peak: return "--folded-peak";
    case out_folded_allocs: return "--folded-allocs";
    case out_folded_leaks: return "--folded-leaks";
    case out_heaptrack: return "--heaptrack";
    case out_dump: return nullptr;
    }
    return nullptr;
}

// Write `outs` (expanded paths already in `paths`).  Returns how many were written.
int write_outputs(const output *outs, unsigned n, bool at_exit) {
    char paths[max_outputs][600];
    bool wanted[max_outputs] = {};
    const bool child = getpid() != start_pid;
    unsigned converted = 0;
    int written = 0;
    for (unsigned i = 0; i < n; ++i) {
        // A forked child exiting would overwrite its parent's file: it writes only where %p makes the
        // name its own.
        if (at_exit && child && strstr(outs[i].path, "%p") == nullptr) continue;
        expand_output_path(outs[i].path, paths[i], sizeof paths[i]);
        wanted[i] = true;
        if (outs[i].kind == out_dump) {
            const int fd = open(paths[i], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
            if (fd < 0) {
                const char *why = strerrorname_np(errno);
                print(program_stderr, "heapindex: cannot write the profile dump '%s' (%s)\n", paths[i], why ? why : "?");
                continue;
            }
            written += write_dump(fd, at_exit);
            close(fd);
        } else {
            ++converted;
        }
    }
    if (converted == 0) return written;
    const char *tool = converter();
    char dump[96];
    const char *tmp = getenv("TMPDIR");
    snprintf(dump, sizeof dump, "%s/heapindex-%d-XXXXXX.hiprof", tmp && strlen(tmp) < 60 ? tmp : "/tmp", int(getpid()));
    const int fd = mkstemps(dump, 7);
    if (fd < 0) {
        print(program_stderr, "heapindex: cannot create a temporary profile dump in %s (%s); no profile written\n",
              tmp ? tmp : "/tmp", strerrorname_np(errno));
        return written;
    }
    const bool ok = write_dump(fd, at_exit);
    close(fd);
    if (!ok || tool == nullptr) {
        print(program_stderr, "heapindex: %s; the profile dump is kept at %s (convert it with heapindex-report)\n",
              ok ? "heapindex-report is not installed" : "the profile dump could not be written whole", dump);
        return written;
    }
    // argv: tool --from DUMP (--kind PATH)*; envp: ours without LD_PRELOAD and HEAPINDEX_*, so that the
    // converter is neither indexed nor reporting.
    // The symbolizer settings of the index's own reports (HEAPINDEX_SYMBOLIZE, HEAPINDEX_SYMBOLIZE_TIMEOUT):
    // the converter's environment has no HEAPINDEX_* variables.
    const char *argv[8 + 2 * max_outputs];
    char timeout[32];
    snprintf(timeout, sizeof timeout, "%u.%03u", settings().symbolize_ms / 1000, settings().symbolize_ms % 1000);
    unsigned a = 0;
    argv[a++] = tool;
    argv[a++] = "--from";
    argv[a++] = dump;
    argv[a++] = "--symbolize";
    argv[a++] = settings().symbolizer == heapindex::settings_t::libdw ? "dwarf" : settings().symbolizer == heapindex::settings_t::dladdr_only ? "symtab" : "off";
    argv[a++] = "--symbolize-timeout";
    argv[a++] = timeout;
    for (unsigned i = 0; i < n; ++i)
        if (wanted[i] && option_of(outs[i].kind) != nullptr) argv[a++] = option_of(outs[i].kind), argv[a++] = paths[i];
    argv[a] = nullptr;
    const char *envp[512];
    unsigned e = 0;
    for (char **v = environ; v != nullptr && *v != nullptr && e + 1 < 512; ++v)
        if (strncmp(*v, "LD_PRELOAD=", 11) != 0 && strncmp(*v, "HEAPINDEX_", 10) != 0) envp[e++] = *v;
    envp[e] = nullptr;
    pid_t pid;
    const int err = posix_spawn(&pid, tool, nullptr, nullptr, const_cast<char *const *>(argv), const_cast<char *const *>(envp));
    if (err != 0) {
        print(program_stderr, "heapindex: cannot start %s (%s); the profile dump is kept at %s\n", tool, strerrorname_np(err), dump);
        return written;
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        unlink(dump);
        return written + int(converted);
    }
    print(program_stderr, "heapindex: %s failed; the profile dump is kept at %s\n", tool, dump);
    return written;
}

// Parse a comma-separated list of profile outputs into `outs`; non-profile items go to `text`.
int parse_list(const char *value, output *outs, unsigned *n, char *text, size_t text_size, const char *name) {
    int problems = 0;
    if (text != nullptr && text_size > 0) text[0] = '\0';
    bool text_taken = false;
    for (const char *s = value; *s != '\0';) {
        const char *comma = strchr(s, ',');
        const size_t len = comma ? size_t(comma - s) : strlen(s);
        output_kind k;
        if (len == 0) {
        } else if (kind_of(s, len, &k)) {
            if (*n >= max_outputs || len >= sizeof outs[0].path) {
                print(program_stderr, "heapindex: %s: '%.*s' ignored (at most %u profile outputs of at most %zu bytes)\n", name,
                      int(len), s, max_outputs, sizeof outs[0].path - 1);
                ++problems;
            } else {
                outs[*n].kind = k;
                memcpy(outs[*n].path, s, len);
                outs[*n].path[len] = '\0';
                ++*n;
            }
        } else if (text != nullptr && !text_taken && len < text_size) {
            memcpy(text, s, len);
            text[len] = '\0';
            text_taken = true;
        } else {
            print(program_stderr, "heapindex: %s: '%.*s' ignored (one text report at most; profile outputs end in .html, "
                     ".folded, .peak.folded, .allocs.folded, .leaks.folded, .hiprof, or are named heaptrack.*)\n", name, int(len), s);
            ++problems;
        }
        s += len + (comma ? 1 : 0);
    }
    return problems;
}

}  // namespace

bool enabled() { return on; }

const char *setting_names() { return "HEAPINDEX_STACKS, HEAPINDEX_STACKS_SAMPLE, HEAPINDEX_SERIES_MS"; }

bool is_setting(const char *name, size_t len) {
    for (const char *k : {"HEAPINDEX_STACKS", "HEAPINDEX_STACKS_SAMPLE", "HEAPINDEX_SERIES_MS"})
        if (strlen(k) == len && strncmp(name, k, len) == 0) return true;
    return false;
}

int load_settings() {
    int problems = 0;
    uint64_t v;
    if (const char *s = getenv("HEAPINDEX_STACKS")) {
        v = cfg.depth;
        if (parse_unsigned("HEAPINDEX_STACKS", s, unwind::max_frames, &v, "a number of frames")) {
            cfg.depth = unsigned(v);
            cfg.depth_given = true;
        } else {
            ++problems;
        }
    }
    if (const char *s = getenv("HEAPINDEX_STACKS_SAMPLE")) {
        v = cfg.sample_bytes;
        if (parse_unsigned("HEAPINDEX_STACKS_SAMPLE", s, uint64_t{1} << 40, &v, "a mean number of bytes between samples (0: every allocation)"))
            cfg.sample_bytes = v;
        else ++problems;
    }
    if (const char *s = getenv("HEAPINDEX_SERIES_MS")) {
        v = cfg.series_ms;
        if (parse_unsigned("HEAPINDEX_SERIES_MS", s, 3600000, &v, "a number of milliseconds")) cfg.series_ms = unsigned(v);
        else ++problems;
    }
    return problems;
}

int take_report_outputs(const char *value, char *text, size_t text_size) {
    return parse_list(value, cfg.outputs, &cfg.n_outputs, text, text_size, "HEAPINDEX_REPORT");
}

void start() {
    start_ns = now_ns();
    start_pid = int(getpid());
    // A profile output without HEAPINDEX_STACKS: the allocation site alone (one frame, no unwinding).
    unsigned depth = cfg.depth;
    if (!cfg.depth_given && cfg.n_outputs != 0) depth = 1;
    if (depth == 0 && cfg.n_outputs != 0)
        print(program_stderr, "heapindex: HEAPINDEX_REPORT names heap-profile outputs but HEAPINDEX_STACKS=0: none is "
                              "written\n");
    if (depth == 0) return;
    if (!depot().init() || !reserve_stack_of()) {
        print(program_stderr, "heapindex: cannot map memory for allocation stacks; HEAPINDEX_STACKS is off\n");
        return;
    }
    series = static_cast<pf::series_point *>(
        mmap(nullptr, series_capacity * sizeof(pf::series_point), PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0));
    if (series == MAP_FAILED) series = nullptr;
    series_interval_ns.store(uint64_t(cfg.series_ms) * 1000000u);
    deltas_key_made = pthread_key_create(&deltas_key, deltas_at_thread_exit) == 0;
    cfg.depth = depth;
    // This thread may have allocated before (a C++ program's runtime does, before this constructor): its
    // countdown was then set for no profile, far away.  Its next allocation draws a new one.
    {
        const owned_thread_state owned;
        if (thread_state *t = owned.get()) t->stack_countdown = -1, events_due_now(t);
    }
    // Free stacks for heap-error reports, with real stacks only (depth 1: the record's free site says it).
    uint64_t capacity = 0;
    if (depth > 1 && (!other_depot.init() || !reserve_ids(&freed_by, &capacity) || capacity < stack_of_capacity))
        freed_by = nullptr;
    on = true;
    every_fast = depth > 1 && cfg.sample_bytes == 0 && freed_by != nullptr && stack_of_capacity > UINT32_MAX;
}

uint32_t capture_stack(const void *caller) {
    if (!on || cfg.depth == 1 || freed_by == nullptr) return 0;
    uintptr_t frames[unwind::max_frames];
    unsigned n = unwind::capture(frames, cfg.depth, caller);
    if (n == 0) frames[0] = reinterpret_cast<uintptr_t>(caller), n = 1;
    return other_depot.intern(frames, n);
}

namespace {

// The freeing stack of record `id` (released_by's slow path), from the frame of this library whose CFA
// is `cfa` out: a stack this thread freed from at this site and depth lately (its remembered walks,
// unwind.h), or a walk.
void keep_freeing_stack(uint32_t id, const void *caller, uintptr_t cfa) {
    if (freed_by == nullptr || id >= stack_of_capacity) return;
    delta_block *b = my_deltas;
    if (__builtin_expect(b == nullptr, 0)) b = make_block();
    unwind::memo_set *set = b != nullptr ? &b->free_walk[delta_block::free_walk_slot(caller, cfa)] : nullptr;
    const int way = set != nullptr ? unwind::remembered(set, cfa, caller) : -1;
    uint32_t sid;
    if (way >= 0) {
        sid = set->stack[way];
    } else {
        uintptr_t frames[unwind::max_frames];
        unsigned w;
        unsigned n = unwind::capture(frames, cfg.depth, caller, set, &w, cfa);
        if (n == 0) frames[0] = reinterpret_cast<uintptr_t>(caller), n = 1;
        sid = other_depot.intern(frames, n);
        if (set != nullptr) set->stack[w] = sid;
    }
    freed_by[id].store(sid, std::memory_order_relaxed);
}

// A chunk with a stack is no longer live: off its stack's counters (released, released_by's slow path).
void count_release(thread_state *t, uint32_t id, record *r) {
    if (id >= stack_of_capacity || stack_of == nullptr) return;
    const uint32_t sid = stack_of[id].load(std::memory_order_relaxed);
    if (sid == 0) return;
    const weight w = weight_of(r->size());
    delta_block *b = my_deltas;
    const bool temporary = t != nullptr && b != nullptr && temporary_release(b, t, id);
    count_free(sid, int64_t(w.count), int64_t(w.bytes), temporary);
}

}  // namespace

void released_by_slow(thread_state *t, uint32_t id, record *r, const void *caller, uintptr_t cfa) {
    count_release(t, id, r);
    keep_freeing_stack(id, caller, cfa);
}

namespace {

// Everything else: sampled stacks, one-frame stacks, a walk not remembered or not the predicted one, a
// pending slot another stack holds, a thread without its block.
__attribute__((noinline)) void stacked_slow(thread_state *t, uint32_t id, record *r, size_t size, const void *caller, uintptr_t cfa) {
    t->stack_countdown = next_countdown();
    if (!on || id >= stack_of_capacity) return;
    uintptr_t frames[unwind::max_frames];
    unsigned n = 1;
    if (cfg.depth == 1) {
        frames[0] = reinterpret_cast<uintptr_t>(caller);
    }
    delta_block *b = my_deltas;
    if (__builtin_expect(b == nullptr, 0)) b = make_block();
    uint32_t sid = 0;
    unwind::memo_set *set = nullptr;
    unsigned way = 0;
    if (cfg.depth != 1) {
        // A stack this thread allocated from at this site and depth lately (its remembered walks,
        // unwind.h, checked from the CFA its caller gave), or a walk.
        if (b != nullptr) set = &b->walk[delta_block::walk_slot(caller, cfa)];
        const int hit = set != nullptr ? unwind::remembered(set, cfa, caller) : -1;
        if (hit >= 0) {
            sid = set->stack[hit];
            if (sid == 0) return;  // which the depot could not take
        } else {
            n = unwind::capture(frames, cfg.depth, caller, set, &way, cfa);
            if (n == 0) frames[0] = reinterpret_cast<uintptr_t>(caller), n = 1;
        }
    }
    if (sid == 0) {
        // This thread's recent stacks, by innermost frame and depth: a hit costs one comparison of the
        // frames, no hash and no access to the depot's shared table.
        const unsigned slot = unsigned((frames[0] >> 2) ^ n) & (delta_block::recent - 1);
        if (b != nullptr && b->recent_id[slot] != 0 && depot().holds(b->recent_id[slot], frames, n)) {
            sid = b->recent_id[slot];
        } else {
            sid = depot().intern(frames, n);
            if (b != nullptr) b->recent_id[slot] = sid;
        }
        if (set != nullptr) set->stack[way] = sid;
    }
    if (sid == 0) return;
    const weight w = weight_of(size);
    count_allocation(sid, int64_t(w.count), int64_t(w.bytes));
    stack_of[id].store(sid, std::memory_order_relaxed);
    if (b != nullptr) b->last_stacked_id = id, b->last_stacked_next = t->seq_next;
    r->add_flags(HEAPINDEX_FLAG_STACK);  // see stacked_fast
}

}  // namespace

void released_by(thread_state *t, uint32_t id, record *r, const void *caller, uintptr_t cfa) {
    if (__builtin_expect(released_fast(t, id, r, caller, cfa), 1)) return;
    released_by_slow(t, id, r, caller, cfa);
}

uint32_t freed_by_of_chunk(uint32_t id) {
    if (freed_by == nullptr || id >= stack_of_capacity) return 0;
    return freed_by[id].load(std::memory_order_relaxed);
}

const stack_entry *stack(uint32_t sid, bool allocation) {
    if (sid == 0 || !on || cfg.depth == 1) return nullptr;  // one frame: the report's site says it
    if (allocation) return depot().get(sid);
    return freed_by != nullptr ? other_depot.get(sid) : nullptr;
}

void on_countdown(thread_state *t, uint32_t id, record *r, size_t size, const void *caller, uintptr_t cfa) {
    if (__builtin_expect(stacked_fast(t, id, r, size, caller, cfa), 1)) return;
    stacked_slow(t, id, r, size, caller, cfa);
}

void *on_countdown_then(void *p, thread_state *t, uint32_t id, size_t size, const void *caller, uintptr_t cfa) {
    stacked_slow(t, id, records().get(id), size, caller, cfa);  // (stacked_fast did not apply: events_then)
    arm_events(t);
    put_thread_state_reloading(t);
    return p;
}

void leak_found(uint32_t stack, uint32_t kind, size_t size) {
    if (!on || kind < pf::leak_definite || kind > pf::leak_interior) return;
    leak_totals[kind - 1].stack_id = pf::all_stacks;
    leak_totals[kind - 1].kind = kind;
    leak_totals[kind - 1].bytes += size;
    leak_totals[kind - 1].chunks += count_unit;
    // Sampled: an unsampled chunk is in no stack record (the sampled ones, scaled, stand for it).
    if (stack == 0 && cfg.sample_bytes != 0) return;
    const weight w = stack != 0 ? weight_of(size) : weight{count_unit, size};
    add_leak(stack, kind, w.bytes, w.count);
}

void leak_scan_done() {
    if (!on) return;
    for (uint32_t k = 0; k < 3; ++k) leak_totals[k].stack_id = pf::all_stacks, leak_totals[k].kind = k + 1;
    leaks_scanned = true;
}

uint32_t stack_of_chunk(uint32_t id) {
    if (stack_of == nullptr || id >= stack_of_capacity) return 0;
    return stack_of[id].load(std::memory_order_relaxed);
}

void released(thread_state *t, uint32_t id, record *r) { count_release(t, id, r); }

void on_sample(uint64_t live) {
    if (!on) return;
    const uint64_t t = now_ns();
    const uint64_t last_t = series_last_ns.load(std::memory_order_relaxed);
    const uint64_t last_b = series_last_bytes.load(std::memory_order_relaxed);
    const uint64_t diff = live > last_b ? live - last_b : last_b - live;
    if (series != nullptr && (t - last_t >= series_interval_ns.load(std::memory_order_relaxed) || diff >= (uint64_t{1} << 20))) {
        series_last_ns.store(t, std::memory_order_relaxed);
        series_last_bytes.store(live, std::memory_order_relaxed);
        append_point(t, live);
    }
    const uint64_t snap = snapshot_bytes.load(std::memory_order_relaxed);
    if (live > snap + snap / 32) snapshot(live, t);
}

void at_exit() {
    if (!on || cfg.n_outputs == 0) return;
    reentrancy_guard guard;
    const int saved = errno;
    struct heapindex_stats st;
    collect_stats(&st);
    const uint64_t t = now_ns();
    if (series != nullptr) append_point(t, st.live_bytes);
    if (st.live_bytes >= snapshot_bytes.load()) snapshot(st.live_bytes, t);
    write_outputs(cfg.outputs, cfg.n_outputs, true);
    errno = saved;
}

int write_now(const char *list) {
    if (!on) return -1;
    reentrancy_guard guard;
    const int saved = errno;
    int n;
    if (list == nullptr) {
        n = write_outputs(cfg.outputs, cfg.n_outputs, false);
    } else {
        output outs[max_outputs];
        unsigned count = 0;
        parse_list(list, outs, &count, nullptr, 0, "heapindex_profile_write");
        n = write_outputs(outs, count, false);
    }
    errno = saved;
    return n;
}

}  // namespace mallochooks::heapindex::profile
