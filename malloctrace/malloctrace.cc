// SPDX-License-Identifier: MIT
// libmalloctrace.so: the first tool on the hooks, and the demo.  Preloaded into a program, it counts every
// event, per event and per caller object (the executable or shared library that made the call), and
// prints a summary when the program exits; or it streams one line per event.  It writes to stderr or a
// file, never to the program's stdout, and it never allocates through the hooked path: its tables come
// from mmap and it formats into stack buffers.
//
// Settings (environment; README.md):
//   MALLOCTRACE_MODE=summary|stream|both     default summary
//   MALLOCTRACE_OUTPUT=file|stderr|off|PATH  default file: malloctrace.PROGRAM.PID.txt in MALLOCTRACE_DIR
//                                            (default $TMPDIR, else /tmp), with a one-line pointer on
//                                            stderr only when stderr is a terminal; "%p" in PATH becomes
//                                            the process id
// The default writes nothing the program or its tests can see (a program's stderr is often compared by
// its tests).  Any other MALLOCTRACE_* variable, or a malformed value, is reported and tracing stays off;
// the program itself runs unchanged.  Settings are read at the first allocation, from the initial
// environment if libc has not set `environ` yet (.preinit_array).  In secure mode (AT_SECURE) nothing is
// read and nothing written: tracing is off.
#include <dlfcn.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <atomic>

#include "backends/preload/terminal.h"
#include "event_hooks/event_layer.h"
#include "libmallochooks/entry_points.h"
#include "libmallochooks/initial_environment.h"
#include "libmallochooks/output.h"

namespace {

using mallochooks::print;
using counter = std::atomic<uint64_t>;

enum event_kind : unsigned {
#define MALLOCTRACE_EVENT_ENUM_(r, data, e) BOOST_PP_CAT(ev_, MALLOCHOOKS_NAME(e)),
    MALLOCHOOKS_FOR_EACH(MALLOCTRACE_EVENT_ENUM_, ~, MALLOCHOOKS_EVENTS)
#undef MALLOCTRACE_EVENT_ENUM_
    n_events
};

const char *const event_names[n_events] = {
#define MALLOCTRACE_EVENT_NAME_(r, data, e) BOOST_PP_STRINGIZE(MALLOCHOOKS_NAME(e)),
    MALLOCHOOKS_FOR_EACH(MALLOCTRACE_EVENT_NAME_, ~, MALLOCHOOKS_EVENTS)
#undef MALLOCTRACE_EVENT_NAME_
};

// Counts are sharded: each thread adds to its own shard (picked round-robin at its first event), so
// threads allocating at the same time do not bounce one cache line between CPUs (one shared counter made
// two threads twice as slow as one); the summary adds the shards up.
constexpr unsigned n_shards = 8;
struct alignas(64) shard_t {
    counter events[n_events];
    counter requested_bytes;
    counter unattributed;  // events from callers that did not fit in the caller table
};

// Per-caller counts: the callers' return addresses in one open-addressing table (each key written once,
// lock-free), the counts per shard at the same index.
struct caller_counts {
    counter allocs, frees, reallocs, bytes;
};
constexpr size_t caller_slots = 1u << 15;
constexpr size_t no_slot = ~size_t{0};

struct state_t {
    bool enabled;
    bool summary;
    bool stream;
    bool settings_pending;       // the environment could not be read at the first allocation
    mallochooks::output_spec output;
    mallochooks::kept_output stream_out;  // the stream's output, opened at start
    pid_t pid;
    timespec start;
    std::atomic<unsigned> next_shard;
    shard_t shards[n_shards];
    std::atomic<uintptr_t> *caller_keys;  // mmap'd, caller_slots entries
    caller_counts *callers;               // mmap'd, n_shards * caller_slots entries
};
constinit state_t state{};

// ---- settings ----------------------------------------------------------------------------------------
// Settings of this process, as "NAME=value" strings (initial_environment.h): read before libc has set
// `environ` too.
char env_store[4096];
char tmpdir_store[1024];

// 1: configured, 0: tracing off (reported), -1: the environment cannot be read yet.
int configure() {
    if (mallochooks::secure_mode()) return 0;  // no setting read, no file written: see the top
    const int count = mallochooks::environment_entries("MALLOCTRACE_", env_store, sizeof env_store);
    if (count < 0) return -1;
    static const char *const known[] = {"MALLOCTRACE_MODE=", "MALLOCTRACE_OUTPUT=", "MALLOCTRACE_DIR="};
    const char *e = env_store;
    for (int i = 0; i < count; ++i, e = mallochooks::next_entry(e)) {
        bool ok = false;
        for (const char *k : known) ok = ok || strncmp(e, k, strlen(k)) == 0;
        if (!ok) {
            print(mallochooks::program_stderr, "malloctrace: unknown setting '%s' (known: MALLOCTRACE_MODE, "
                                               "MALLOCTRACE_OUTPUT, MALLOCTRACE_DIR); tracing is off\n", e);
            return 0;
        }
    }
    const char *mode = mallochooks::entry_value(env_store, count, "MALLOCTRACE_MODE");
    state.summary = state.stream = false;
    if (mode == nullptr || strcmp(mode, "summary") == 0) {
        state.summary = true;
    } else if (strcmp(mode, "stream") == 0) {
        state.stream = true;
    } else if (strcmp(mode, "both") == 0) {
        state.summary = state.stream = true;
    } else {
        print(mallochooks::program_stderr,
              "malloctrace: MALLOCTRACE_MODE='%s' is not one of summary, stream, both; tracing is off\n", mode);
        return 0;
    }
    const char *output = mallochooks::entry_value(env_store, count, "MALLOCTRACE_OUTPUT");
    if (!mallochooks::parse_output(output ? output : "file", &state.output)) {
        print(mallochooks::program_stderr, "malloctrace: MALLOCTRACE_OUTPUT='%s' is not file, stderr, off or a path "
                                           "(at most %zu bytes); tracing is off\n", output, sizeof state.output.path - 1);
        return 0;
    }
    const char *dir = mallochooks::entry_value(env_store, count, "MALLOCTRACE_DIR");
    if (dir != nullptr && (*dir == '\0' || strlen(dir) >= sizeof state.output.path)) {
        print(mallochooks::program_stderr, "malloctrace: MALLOCTRACE_DIR='%s' is not a directory path; tracing is "
                                           "off\n", dir);
        return 0;
    }
    if (state.output.kind == mallochooks::output_spec::per_process) {
        if (dir == nullptr) {
            const int n = mallochooks::environment_entries("TMPDIR=", tmpdir_store, sizeof tmpdir_store);
            mallochooks::default_output_dir(n > 0 ? tmpdir_store + 7 : nullptr, state.output.path,
                                            sizeof state.output.path);
        } else {
            strcpy(state.output.path, dir);
        }
    }
    if (state.stream) {  // opened now, kept; the summary's output is opened at exit (this process's pid)
        char path[sizeof state.output.path + 128];
        const char *why;
        const int fd = mallochooks::open_output(state.output, "malloctrace", path, sizeof path, &why);
        if (fd == -1 && why != nullptr) {
            print(mallochooks::program_stderr, "malloctrace: cannot open MALLOCTRACE_OUTPUT '%s': %s; tracing is off\n",
                  path, why);
            return 0;
        }
        state.stream_out = mallochooks::keep_output(fd);
    }
    return 1;
}

// The stream's descriptor for one event line (-1: the program closed it; nothing is written then).
int stream_fd() { return mallochooks::kept_fd(state.stream_out); }

// ---- counting ----------------------------------------------------------------------------------------
// initial-exec: see libmallochooks/guard.h.
__thread int my_shard __attribute__((tls_model("initial-exec"))) = -1;

unsigned shard_index() {
    if (__builtin_expect(my_shard < 0, 0))
        my_shard = int(state.next_shard.fetch_add(1, std::memory_order_relaxed) % n_shards);
    return unsigned(my_shard);
}

shard_t &shard() { return state.shards[shard_index()]; }

size_t slot_for(const void *caller) {
    if (state.caller_keys == nullptr) return no_slot;
    const uintptr_t key = reinterpret_cast<uintptr_t>(caller) | 1;  // never 0, the empty marker
    size_t i = (key * 0x9e3779b97f4a7c15ull) >> (64 - 15);
    for (size_t probe = 0; probe < 64; ++probe, i = (i + 1) & (caller_slots - 1)) {
        std::atomic<uintptr_t> &k = state.caller_keys[i];
        uintptr_t seen = k.load(std::memory_order_relaxed);
        if (seen == key) return i;
        if (seen == 0 && k.compare_exchange_strong(seen, key, std::memory_order_relaxed)) return i;
        if (seen == key) return i;
    }
    shard().unattributed.fetch_add(1, std::memory_order_relaxed);
    return no_slot;
}

caller_counts *counts_for(const void *caller) {
    const size_t i = slot_for(caller);
    return i == no_slot ? nullptr : &state.callers[shard_index() * caller_slots + i];
}

void count(event_kind k) { shard().events[k].fetch_add(1, std::memory_order_relaxed); }

void *map_zeroed(size_t bytes) {
    void *m = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    return m == MAP_FAILED ? nullptr : m;
}

struct trace_client : mallochooks::event_client {
    static void post_init() {
        mallochooks::capture_stderr();  // the stderr the process started with, before the program runs
        state.pid = getpid();
        clock_gettime(CLOCK_MONOTONIC, &state.start);
        const int configured = configure();
        if (configured == 0) return;
        // No environment yet and no /proc: trace with the defaults, and read the settings in the
        // constructor (the stream, if asked for, starts there).
        state.settings_pending = configured < 0;
        if (state.settings_pending) state.summary = true, state.stream = false;
        // Untouched pages of these tables cost no memory.
        state.callers = static_cast<caller_counts *>(map_zeroed(n_shards * caller_slots * sizeof(caller_counts)));
        if (state.callers != nullptr)
            state.caller_keys = static_cast<std::atomic<uintptr_t> *>(map_zeroed(caller_slots * sizeof(uintptr_t)));
        state.enabled = true;
        count(ev_post_init);
        if (state.stream) print(stream_fd(), "malloctrace[%d]: post_init\n", int(state.pid));
    }
    static void pre_alloc(size_t *size, size_t *alignment, const void *caller) {
        if (!state.enabled) return;
        count(ev_pre_alloc);
        if (state.stream)
            print(stream_fd(), "malloctrace[%d]: pre_alloc size=%zu alignment=%zu caller=%p\n", int(state.pid), *size,
                *alignment, caller);
    }
    static void post_successful_alloc(void *ptr, size_t msize, size_t malign, size_t rsize, size_t ralign,
                                      const void *caller) {
        if (!state.enabled) return;
        count(ev_post_successful_alloc);
        shard().requested_bytes.fetch_add(rsize, std::memory_order_relaxed);
        if (caller_counts *s = counts_for(caller)) {
            s->allocs.fetch_add(1, std::memory_order_relaxed);
            s->bytes.fetch_add(rsize, std::memory_order_relaxed);
        }
        if (state.stream)
            print(stream_fd(),
                "malloctrace[%d]: post_successful_alloc ptr=%p size=%zu alignment=%zu requested_size=%zu "
                "requested_alignment=%zu caller=%p\n",
                int(state.pid), ptr, msize, malign, rsize, ralign, caller);
    }
    static int pre_nonnull_free(void *ptr, size_t, const void *caller) {
        if (!state.enabled) return 0;
        count(ev_pre_nonnull_free);
        if (caller_counts *s = counts_for(caller)) s->frees.fetch_add(1, std::memory_order_relaxed);
        if (state.stream) print(stream_fd(), "malloctrace[%d]: pre_nonnull_free ptr=%p caller=%p\n", int(state.pid), ptr, caller);
        return 0;
    }
    static void post_nonnull_free(void *ptr) {
        if (!state.enabled) return;
        count(ev_post_nonnull_free);
        if (state.stream) print(stream_fd(), "malloctrace[%d]: post_nonnull_free ptr=%p\n", int(state.pid), ptr);
    }
    static void pre_nonnull_nonzero_realloc(void *ptr, size_t size, const void *caller) {
        if (!state.enabled) return;
        count(ev_pre_nonnull_nonzero_realloc);
        if (caller_counts *s = counts_for(caller)) s->reallocs.fetch_add(1, std::memory_order_relaxed);
        if (state.stream)
            print(stream_fd(), "malloctrace[%d]: pre_nonnull_nonzero_realloc ptr=%p size=%zu caller=%p\n", int(state.pid),
                ptr, size, caller);
    }
    static void post_nonnull_nonzero_realloc(void *old_ptr, size_t msize, size_t, const void *caller,
                                             void *new_ptr) {
        if (!state.enabled) return;
        count(ev_post_nonnull_nonzero_realloc);
        if (state.stream)
            print(stream_fd(),
                "malloctrace[%d]: post_nonnull_nonzero_realloc old_ptr=%p size=%zu caller=%p new_ptr=%p\n",
                int(state.pid), old_ptr, msize, caller, new_ptr);
    }
};

using trace_hooks = mallochooks::chain<mallochooks::event_layer<trace_client>, mallochooks::preload::terminal>;

// ---- the summary -------------------------------------------------------------------------------------
struct object_total {
    const char *name;
    uint64_t allocs, frees, reallocs, bytes;
};

void print_summary(int fd) {
    timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    const double secs = double(now.tv_sec - state.start.tv_sec) + double(now.tv_nsec - state.start.tv_nsec) / 1e9;
    char exe[512];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = '\0';
    print(fd, "malloctrace[%d]: summary for %s after %.3f s\n", int(getpid()), exe, secs);
    print(fd, "malloctrace[%d]:   %-30s %14s\n", int(getpid()), "event", "count");
    uint64_t requested = 0, unattributed = 0;
    for (const shard_t &sh : state.shards) {
        requested += sh.requested_bytes.load();
        unattributed += sh.unattributed.load();
    }
    for (unsigned k = 0; k < n_events; ++k) {
        uint64_t n = 0;
        for (const shard_t &sh : state.shards) n += sh.events[k].load();
        print(fd, "malloctrace[%d]:   %-30s %14llu\n", int(getpid()), event_names[k], (unsigned long long)n);
    }
    print(fd, "malloctrace[%d]:   %-30s %14llu\n", int(getpid()), "bytes requested", (unsigned long long)requested);
    if (state.caller_keys == nullptr) return;

    // Group callers by object, in a scratch table from mmap (at most 256 objects; the rest are "other").
    constexpr size_t max_objects = 256;
    void *m = mmap(nullptr, max_objects * sizeof(object_total), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return;
    object_total *objs = static_cast<object_total *>(m);
    size_t nobjs = 0;
    for (size_t i = 0; i < caller_slots; ++i) {
        const uintptr_t key = state.caller_keys[i].load();
        if (key == 0) continue;
        Dl_info info{};
        const char *name = "?";
        if (dladdr(reinterpret_cast<void *>(key & ~uintptr_t{1}), &info) && info.dli_fname && *info.dli_fname)
            name = info.dli_fname;
        size_t j = 0;
        while (j < nobjs && strcmp(objs[j].name, name) != 0) ++j;
        if (j == nobjs) {
            if (nobjs == max_objects) j = nobjs - 1, name = "(other objects)";
            else objs[nobjs++].name = name;
        }
        for (unsigned sh = 0; sh < n_shards; ++sh) {
            const caller_counts &c = state.callers[sh * caller_slots + i];
            objs[j].allocs += c.allocs.load();
            objs[j].frees += c.frees.load();
            objs[j].reallocs += c.reallocs.load();
            objs[j].bytes += c.bytes.load();
        }
    }
    // Most allocations first (insertion sort: a handful of objects).
    for (size_t i = 1; i < nobjs; ++i)
        for (size_t j = i; j > 0 && objs[j].allocs > objs[j - 1].allocs; --j) {
            object_total t = objs[j];
            objs[j] = objs[j - 1];
            objs[j - 1] = t;
        }
    print(fd, "malloctrace[%d]:   %-52s %12s %12s %12s %14s\n", int(getpid()), "caller object", "allocs", "frees",
        "reallocs", "bytes");
    for (size_t i = 0; i < nobjs; ++i)
        print(fd, "malloctrace[%d]:   %-52s %12llu %12llu %12llu %14llu\n", int(getpid()), objs[i].name,
            (unsigned long long)objs[i].allocs, (unsigned long long)objs[i].frees,
            (unsigned long long)objs[i].reallocs, (unsigned long long)objs[i].bytes);
    if (uint64_t u = unattributed)
        print(fd, "malloctrace[%d]:   (%llu events from callers beyond the table's capacity)\n", int(getpid()),
            (unsigned long long)u);
    munmap(m, max_objects * sizeof(object_total));
}

// Runs at exit (a destructor, not a constructor: nothing needs to run before main).
// The settings, when the first allocation could not read them (see post_init).
__attribute__((constructor)) void at_start() {
    mallochooks::capture_stderr();
    if (!state.enabled || !state.settings_pending) return;
    mallochooks::reentrancy_guard guard;
    state.settings_pending = false;
    if (configure() != 1) state.enabled = false;
}

__attribute__((destructor)) void at_exit() {
    if (!state.enabled || !state.summary) return;
    mallochooks::reentrancy_guard guard;  // dladdr and stdio may allocate: straight to the terminal
    int saved = errno;
    char path[sizeof state.output.path + 128];
    const char *why;
    const int fd = mallochooks::open_output(state.output, "malloctrace", path, sizeof path, &why);
    if (fd == -1 && why != nullptr) {
        print(mallochooks::program_stderr, "malloctrace: cannot open MALLOCTRACE_OUTPUT '%s': %s; no summary\n", path, why);
    } else if (fd != -1) {
        print_summary(fd);
        mallochooks::close_output(fd);
        // The default file is named by the tool: say where it is, but only to a person at a terminal.
        if (state.output.kind == mallochooks::output_spec::per_process && mallochooks::stderr_is_terminal())
            print(mallochooks::program_stderr, "malloctrace: summary of pid %d in %s\n", int(getpid()), path);
    }
    errno = saved;
}

}  // namespace

MALLOCHOOKS_DEFINE_ENTRY_POINTS(, trace_hooks)
// Programs and libraries with link-time hooks (built by allocscc) route their allocations through this.
MALLOCHOOKS_EXPORT_LAYER(mallochooks::event_layer<trace_client>, trace_hooks, "malloctrace")
