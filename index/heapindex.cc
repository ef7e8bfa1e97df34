// SPDX-License-Identifier: MIT
// libheapindex.so: the heap index, preloaded.  This file puts the pieces together: the chain
// (heapindex_layer over the preload terminal, with early_terminal for the calls that bypass the layer),
// the user-API entry points, the layer exported for link-time hooks, the heapindex_* API
// (include/mallochooks/heapindex.h), heapindex_check, and the constructor and destructor that read the
// settings and write the exit report.  Design: docs/heapindex.md.
#include <elf.h>
#include <errno.h>
#include <link.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/uio.h>
#include <unistd.h>

#include "libmallochooks/elf/fake_dlsym.h"
#include "backends/preload/terminal.h"
#include "index/heapindex_layer.h"
#include "index/exit_report.h"
#include "index/heap_errors.h"
#include "index/leaks_at_exit.h"
#include "index/live_chunks.h"
#include "index/profile.h"
#include "index/stats.h"
#include "index/settings.h"
#include "libmallochooks/entry_points.h"
#include "libmallochooks/guard.h"
#include "libmallochooks/output.h"

// The linker defines _DYNAMIC in every object: it identifies this library in the link map.
extern ElfW(Dyn) _DYNAMIC[] __attribute__((visibility("hidden")));

namespace mallochooks::heapindex {

namespace {
std::atomic<bool> client_used{false};  // lookups skip the client index until a block was registered
}

// ---- heapindex_check -------------------------------------------------------------------------------------

namespace {

// Where check messages go: the caller's FILE, or a descriptor (the exit check).
struct sink {
    FILE *file;
    int fd;
    int pid = int(getpid());
    __attribute__((format(printf, 2, 3))) void line(const char *fmt, ...) {
        char buf[1024];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(buf, sizeof buf, fmt, ap);
        va_end(ap);
        if (file != nullptr) fprintf(file, "heapindex[%d]: %s\n", pid, buf);
        else print(fd, "heapindex[%d]: %s\n", pid, buf);
    }
};

// Read a chunk's trailer without trusting that the chunk is still mapped: another thread may free (and
// the allocator unmap) it while the check runs.  process_vm_readv on ourselves fails with EFAULT instead
// of faulting.
bool read_trailer(uintptr_t at, trailer *t) {
    iovec local{t, sizeof *t}, remote{reinterpret_cast<void *>(at), sizeof *t};
    const ssize_t n = process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
    if (n == ssize_t(sizeof *t)) return true;
    if (n < 0 && (errno == ENOSYS || errno == EPERM)) {  // not allowed here: read directly
        memcpy(t, reinterpret_cast<const void *>(at), sizeof *t);
        return true;
    }
    return false;
}

// How far the allocator's chunk reaches, as far as the index knows.
size_t extent(const record_fields &f) {
    if (f.flags & HEAPINDEX_FLAG_TRAILER) return f.usable + trailer_size;
    return f.usable > f.size ? f.usable : f.size;
}

template <class Index> int check_index(const Index &index, const char *kind, sink &out, size_t *chunks) {
    int problems = 0;
    record_fields prev{};
    uint32_t prev_id = 0, prev_word = 0;
    index.for_each_start([&](uintptr_t granule, uint32_t id) {
        if (id == 0) return true;
        record *r = records().get(id);
        const uint32_t word = r->word.load(std::memory_order_acquire);
        record_fields f;
        if (r->read_any(&f) != rs_live) return true;  // being freed or in flux: not this check's business
        // A problem counts only if the record did not change while we looked (else it is a race with
        // the program's own frees, which is fine).
        auto stable = [&] { return r->word.load(std::memory_order_acquire) == word; };
        ++*chunks;
        if ((f.base >> Index::granule_shift) != (granule >> Index::granule_shift)) {
            if (stable() && index.at(granule).id == id && index.at(granule).marked()) {
                out.line("check: %s start mark at %p names the record of %p", kind, (void *)granule, (void *)f.base);
                ++problems;
            }
            return true;
        }
        if (prev_id != 0 && prev.base + extent(prev) > f.base && records().get(prev_id)->word.load() == prev_word &&
            stable()) {
            out.line("check: %s %p (%zu bytes, %zu usable) overlaps %p", kind, (void *)prev.base, prev.size, prev.usable,
                     (void *)f.base);
            ++problems;
        }
        if (f.flags & HEAPINDEX_FLAG_TRAILER) {
            trailer t;
            const bool readable = read_trailer(f.base + f.usable, &t);
            if ((!readable || !trailer_matches(t, f.base, f)) && stable()) {
                counters().corrupt_trailers.fetch_add(1, std::memory_order_relaxed);
                out.line("check: trailer of %s %p (%zu bytes, seq %llu) %s", kind, (void *)f.base, f.size,
                         (unsigned long long)f.seq, readable ? "overwritten" : "unreadable");
                ++problems;
            }
        }
        // The index against itself: the chunk's first and last byte and every page start in between
        // must lead back to this record.
        if (f.size > 0) {
            auto leads_back = [&](uintptr_t a) {
                record_fields g;
                uint32_t got = 0;
                if ((index.lookup(a, &g, &got) && got == id) || !stable()) return true;
                out.line("check: %s lookup of %p does not find chunk %p (%zu bytes)", kind, (void *)a, (void *)f.base,
                         f.size);
                ++problems;
                return false;
            };
            bool ok = leads_back(f.base) && leads_back(f.base + f.size - 1);
            for (uintptr_t a = (f.base | 4095) + 1; ok && a < f.base + f.size; a += 4096) ok = leads_back(a);
        }
        prev = f;
        prev_id = id;
        prev_word = word;
        return true;
    });
    return problems;
}

int run_check(sink &out, bool verdict) {
    size_t heap = 0, client = 0;
    const int problems = check_index(heap_chunks, "chunk", out, &heap) + check_index(client_chunks, "client block", out, &client);
    if (verdict) {
        if (problems == 0)
            out.line("check: sound (%zu chunks, %zu client blocks, every trailer intact)", heap, client);
        else
            out.line("check: %d problems (%zu chunks, %zu client blocks)", problems, heap, client);
    }
    return problems;
}

void fill(const record_fields &f, heapindex_chunk *out) {
    out->base = reinterpret_cast<void *>(f.base);
    out->size = f.size;
    out->usable_size = f.usable;
    out->alloc_site = f.site;
    out->seq = f.seq;
    out->tid = f.tid;
    out->flags = f.flags;
}

// ---- start and exit ------------------------------------------------------------------------------------

extern "C" void after_fork_in_child() { thread_state_after_fork(); }

// A preloaded allocator listed before this library owns `malloc`: the program's calls never reach the
// index.  An executable that defines malloc itself is not warned about (it may adopt the index through
// link-time hooks).
void warn_if_not_in_front() {
    const link_map *self = elf::object_with_dynamic(_DYNAMIC);
    const link_map *where = nullptr;
    if (elf::lookup("malloc", nullptr, nullptr, &where) == nullptr || where == nullptr) return;
    if (where == self || where == elf::first_object()) return;
    print(program_stderr, "heapindex: warning: malloc in this process is %s's, not libheapindex.so's, so the program's "
             "allocations are not indexed; put libheapindex.so first in LD_PRELOAD (before any allocator)\n",
          where->l_name && *where->l_name ? where->l_name : "another object");
}

__attribute__((constructor)) void at_start() {
    reentrancy_guard guard;
    capture_stderr();  // if no allocation came first
    load_settings();
    profile::start();
    if (profile::enabled()) on_peak_sample = profile::on_sample;
    pthread_atfork(nullptr, nullptr, after_fork_in_child);
    warn_if_not_in_front();
}

__attribute__((destructor)) void at_exit() {
    reentrancy_guard guard;
    const int saved = errno;
    if (settings().check_at_exit) {
        sink out{nullptr, open_output(settings().log, nullptr)};
        run_check(out, true);
        close_output(out.fd);
    }
    profile::at_exit();
    print_exit_report();
    // Leaks last, so that a leaky program's exit status can change (LeakSanitizer's exitcode).
    if (settings().leaks_at_exit && report_leaks_at_exit() && settings().leaks_exitcode != 0) _exit(settings().leaks_exitcode);
    errno = saved;
}

}  // namespace

}  // namespace mallochooks::heapindex

// ---- the chain, its entry points and its exported layer ---------------------------------------------------

namespace {
using index_chain = mallochooks::chain<mallochooks::heapindex::heapindex_layer, mallochooks::preload::terminal>;
// The front sends calls that bypass the layer to `terminal`: there they are indexed too, without trailers.
// (Redefining `terminal` is exit 5 of the list in include/mallochooks/hooks.h.)
struct index_hooks : index_chain {
    using terminal = mallochooks::heapindex::early_terminal<mallochooks::preload::terminal>;
};
}  // namespace

MALLOCHOOKS_DEFINE_ENTRY_POINTS(, index_hooks)
// Programs and libraries with link-time hooks route their allocations through this.
MALLOCHOOKS_EXPORT_LAYER(mallochooks::heapindex::heapindex_layer, index_hooks, "heapindex")

// ---- the API (include/mallochooks/heapindex.h) ----------------------------------------------------------

using namespace mallochooks::heapindex;

extern "C" __attribute__((visibility("default"))) int heapindex_v1_lookup(const void *addr, heapindex_chunk *out) {
    const uintptr_t a = reinterpret_cast<uintptr_t>(addr);
    record_fields f;
    if ((client_used.load(std::memory_order_relaxed) && client_chunks.lookup(a, &f)) || heap_chunks.lookup(a, &f)) {
        if (out != nullptr) fill(f, out);
        return 1;
    }
    return 0;
}

extern "C" __attribute__((visibility("default"))) size_t heapindex_v1_for_each(
    int (*fn)(const heapindex_chunk *, void *), void *arg) {
    size_t visited = 0;
    if (fn == nullptr) return 0;
    for_each_live([&](const record_fields &f) {
        heapindex_chunk c;
        fill(f, &c);
        ++visited;
        return fn(&c, arg) == 0;
    });
    return visited;
}

extern "C" __attribute__((visibility("default"))) int heapindex_v1_check(FILE *report) {
    mallochooks::reentrancy_guard guard;
    const int saved = errno;
    sink out{report, -1};
    const int problems = run_check(out, false);
    errno = saved;
    return problems;
}

extern "C" __attribute__((visibility("default"))) void heapindex_v1_stats(struct heapindex_stats *out) {
    if (out != nullptr) collect_stats(out);
}

extern "C" __attribute__((visibility("default"), noinline)) int heapindex_v1_notify_alloc(void *base, size_t size,
                                                                                          const void *site) {
    const void *caller = __builtin_return_address(0);
    if (site == nullptr) site = caller;
    const uintptr_t b = reinterpret_cast<uintptr_t>(base);
    if (base == nullptr) {
        report_client_error("heapindex_notify_alloc: NULL block refused", base, nullptr, caller);
        return 0;
    }
    client_used.store(true, std::memory_order_relaxed);
    record_fields other;
    const client_index_t::slot s = client_chunks.at(b);
    if (s.marked() && records().get(s.id)->read_live(&other)) {
        report_client_error(other.base == b ? "heapindex_notify_alloc: block already registered, refused"
                                            : "heapindex_notify_alloc: block starts within 16 bytes of another, refused",
                            base, &other, caller);
        return 0;
    }
    if (client_chunks.lookup(b, &other) || (size > 0 && client_chunks.lookup(b + size - 1, &other))) {
        report_client_error("heapindex_notify_alloc: block overlaps a registered block, refused", base, &other, caller);
        return 0;
    }
    thread_state *t = this_thread();
    const uint32_t id = records().take(t);
    if (id == 0) return 0;
    record *r = records().get(id);
    r->publish({b, size, size, site, records().next_seq(t), nullptr, current_tid(t), HEAPINDEX_FLAG_CLIENT});
    if (client_chunks.insert(b, size, id) != insert_result::ok) {
        r->kill(b, nullptr);
        records().give(t, id);
        report_client_error("heapindex_notify_alloc: block cannot be indexed (address or index memory), refused", base,
                            nullptr, caller);
        return 0;
    }
    counters().client_blocks.fetch_add(1, std::memory_order_relaxed);
    return 1;
}

extern "C" __attribute__((visibility("default"), noinline)) int heapindex_v1_notify_free(void *base) {
    const void *caller = __builtin_return_address(0);
    const uintptr_t b = reinterpret_cast<uintptr_t>(base);
    const client_index_t::slot s = client_chunks.at(b);
    if (s.marked() && s.id != 0 && records().get(s.id)->kill(b, caller)) {
        s.remove();
        records().give(this_thread(), s.id);
        counters().client_blocks.fetch_sub(1, std::memory_order_relaxed);
        return 1;
    }
    record_fields f;
    if (s.id != 0 && records().get(s.id)->read_any(&f) == rs_dead && f.base == b) {
        counters().double_frees.fetch_add(1, std::memory_order_relaxed);
        counters().invalid_frees.fetch_add(1, std::memory_order_relaxed);
        report_double_free(f, caller, "heapindex_notify_free");
    } else {
        counters().invalid_frees.fetch_add(1, std::memory_order_relaxed);
        report_client_error("heapindex_notify_free: not a registered block", base, nullptr, caller);
    }
    return 0;
}

extern "C" __attribute__((visibility("default"))) int heapindex_v1_profile_write(const char *outputs) {
    return mallochooks::heapindex::profile::write_now(outputs);
}
