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
#include <stddef.h>
#include <stdio.h>
#include <sys/mman.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "libmallochooks/elf/fake_dlsym.h"
#include "backends/preload/terminal.h"
#include "index/heapindex_layer.h"
#include "index/index_hooks.h"
#include "index/exit_report.h"
#include "index/heap_errors.h"
#include "index/leaks_at_exit.h"
#include "index/live_chunks.h"
#include "index/memcheck.h"
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
bool read_bytes(uintptr_t at, void *to, size_t n) {
    if (n == 0) return true;
    iovec local{to, n}, remote{reinterpret_cast<void *>(at), n};
    const ssize_t got = process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
    if (got == ssize_t(n)) return true;
    if (got < 0 && (errno == ENOSYS || errno == EPERM)) {  // not allowed here: read directly
        memcpy(to, reinterpret_cast<const void *>(at), n);
        return true;
    }
    return false;
}
bool read_trailer(uintptr_t at, trailer *t) { return read_bytes(at, t, sizeof *t); }

// How far the allocator's chunk reaches, as far as the index knows.
size_t extent(const record_fields &f) {
    if (has_trailer(f.flags)) return f.usable + trailer_size;
    return f.usable > f.size ? f.usable : f.size;
}

// How a live client block's record keeps the sequence number of the heap chunk that holds it: its low 32
// bits (the record's aux word, record.h); a later chunk at the same address has another one unless 2^32
// allocations came between.
const void *holder_seq(uint64_t seq) { return reinterpret_cast<const void *>(uintptr_t(uint32_t(seq))); }

template <class Index> int check_index(const Index &index, const char *kind, sink &out, size_t *chunks) {
    int problems = 0;
    record_fields prev{};
    uint32_t prev_id = 0;
    uint64_t prev_word = 0;
    index.for_each_start([&](uintptr_t granule, uint32_t id) {
        if (id == 0) return true;
        record *r = records().get(id);
        const uint64_t word = r->head.load(std::memory_order_acquire);
        record_fields f;
        if (r->read_any(&f) != rs_live) return true;  // being freed or in flux: not this check's business
        // A problem counts only if the record did not change while we looked (else it is a race with
        // the program's own frees, which is fine).
        auto stable = [&] { return r->head.load(std::memory_order_acquire) == word; };
        ++*chunks;
        if ((f.base >> Index::granule_shift) != (granule >> Index::granule_shift)) {
            if (stable() && index.at(granule).id == id && index.at(granule).marked()) {
                out.line("check: %s start mark at %p names the record of %p", kind, (void *)granule, (void *)f.base);
                ++problems;
            }
            return true;
        }
        if (prev_id != 0 && prev.base + extent(prev) > f.base && records().get(prev_id)->head.load() == prev_word &&
            stable()) {
            out.line("check: %s %p (%zu bytes, %zu usable) overlaps %p", kind, (void *)prev.base, prev.size, prev.usable,
                     (void *)f.base);
            ++problems;
        }
        if (has_trailer(f.flags)) {
            trailer t;  // a guarded trailer too: memcheck does not watch process_vm_readv's remote side
            const bool readable = read_trailer(f.base + f.usable, &t);
            unsigned char slack[slack_bound];
            const size_t slack_n = (f.flags & HEAPINDEX_FLAG_USABLE_ASKED) ? 0 : slack_length(f.size, f.usable);
            const bool slack_readable = read_bytes(f.base + f.size, slack, slack_n);
            const size_t slack_bad = slack_readable ? slack_damage(slack, f.size, slack_n) : 0;
            if ((!readable || !trailer_matches(t, f) || slack_bad != 0) && stable()) {
                counters().corrupt_trailers.fetch_add(1, std::memory_order_relaxed);
                char text[256], where[512];
                if (!readable || !trailer_matches(t, f))
                    snprintf(text, sizeof text, "check: trailer of %s %p (%zu bytes, seq %llu) %s", kind, (void *)f.base,
                             f.size, (unsigned long long)f.seq, readable ? "overwritten" : "unreadable");
                else
                    snprintf(text, sizeof text, "check: %s %p (%zu bytes, seq %llu) overwritten past its end, at offset %zu "
                             "(the slack before the trailer)", kind, (void *)f.base, f.size, (unsigned long long)f.seq,
                             slack_bad);
                describe_site_now(f.site, where, sizeof where);
                out.line("%s; allocated at %s", text, where);
                report_check_problem(text, &f, id);
                ++problems;
            }
        }
        // A client block against the heap index: inside one live heap chunk, or outside all of them, as it
        // was registered (a pool chunk freed with its blocks still registered contradicts the index).
        if (f.flags & HEAPINDEX_FLAG_CLIENT) {
            record_fields first, last;
            const bool starts_in = heap_chunks.lookup(f.base, &first);
            const bool ends_in = f.size > 0 ? heap_chunks.lookup(f.base + f.size - 1, &last) : starts_in;
            const char *wrong = nullptr;
            if ((f.flags & HEAPINDEX_FLAG_IN_CHUNK) && !starts_in)
                wrong = "lies in no live heap chunk: the heap chunk it was registered in has been freed";
            else if ((f.flags & HEAPINDEX_FLAG_IN_CHUNK) && holder_seq(first.seq) != f.free_site)
                wrong = "lies in another heap chunk than the one it was registered in, which has been freed";
            else if (starts_in && (!ends_in || last.base != first.base))
                wrong = "runs past the end of the heap chunk that holds it";
            else if (!starts_in && ends_in)
                wrong = "ends inside a heap chunk it does not start in";
            else if (starts_in && !(f.flags & HEAPINDEX_FLAG_IN_CHUNK))
                wrong = "lies inside a heap chunk allocated after the block was registered (its memory was reused)";
            if (wrong != nullptr && stable()) {
                char text[256], where[512];
                snprintf(text, sizeof text, "check: client block %p (%zu bytes, seq %llu) %s", (void *)f.base, f.size,
                         (unsigned long long)f.seq, wrong);
                describe_site_now(f.site, where, sizeof where);
                out.line("%s; registered at %s", text, where);
                report_check_problem(text, &f);
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

// Chunks left unindexed (index memory exhausted) are no problem of the index's, but the check cannot
// see them: it says so, every time.
int run_check(sink &out, bool verdict) {
    size_t heap = 0, client = 0;
    const int problems = check_index(heap_chunks, "chunk", out, &heap) + check_index(client_chunks, "client block", out, &client);
    const unsigned long long unindexed = counters().unindexed.load(std::memory_order_relaxed);
    if (unindexed != 0)
        out.line("check: %llu chunks were not indexed (the index's memory could not grow), so not checked", unindexed);
    if (verdict) {
        if (problems == 0)
            out.line("check: sound (%zu chunks, %zu client blocks, every trailer intact%s)", heap, client,
                     unindexed != 0 ? "; some chunks not indexed, see above" : "");
        else
            out.line("check: %d problems (%zu chunks, %zu client blocks)", problems, heap, client);
    }
    return problems;
}

void fill(const record_fields &f, heapindex_chunk *out) {
    out->base = reinterpret_cast<void *>(f.base);
    out->size = f.size;
    out->usable_size = public_usable(f);
    out->alloc_site = f.site;
    out->seq = f.seq;
    out->tid = f.tid;
    out->flags = public_flags(f.flags);
}

// ---- start and exit ------------------------------------------------------------------------------------

// The child's exit summary lists its own heap errors, not its parent's again.
extern "C" void after_fork_in_child() {
    thread_state_after_fork();
    forget_errors_after_fork();
    records().after_fork_in_child();
}

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

// Under valgrind's memcheck run without --soname-synonyms=somalloc=nouserintercepts, valgrind replaces
// this library's malloc with its own, so the program's allocations never reach the index: ask for one
// chunk and see whether the index has it (under the guard it goes to the early terminal, indexed too).
void warn_if_replaced_by_valgrind() {
    if (!memcheck::running()) return;
    void *p = malloc(1);
    record_fields f;
    const bool seen = p == nullptr || heap_chunks.lookup(reinterpret_cast<uintptr_t>(p), &f);
    free(p);
    if (!seen)
        print(2, "heapindex: warning: valgrind replaced libheapindex.so's malloc with its own, so nothing is "
                 "indexed; run valgrind with --soname-synonyms=somalloc=nouserintercepts (docs/heapindex.md, "
                 "\"Under valgrind\")\n");
}

__attribute__((constructor)) void at_start() {
    reentrancy_guard guard;
    capture_stderr();  // if no allocation came first
    load_settings();
    profile::start();
    if (profile::enabled()) on_peak_sample = profile::on_sample;
    pthread_atfork(nullptr, nullptr, after_fork_in_child);
    warn_if_not_in_front();
    warn_if_replaced_by_valgrind();
}

__attribute__((destructor)) void at_exit() {
    reentrancy_guard guard;
    const int saved = errno;
    if (settings().check_at_exit) {
        sink out{nullptr, open_output(settings().log, nullptr)};
        run_check(out, true);
        close_output(out.fd);
    }
    print_error_summary();
    // The leak scan before the heap profile's outputs, which then show its leaks (what no pointer reaches)
    // rather than everything live at exit; its report after them (its symbolizer allocates).
    const bool leaky = settings().leaks_at_exit && scan_leaks_at_exit();
    profile::at_exit();
    print_exit_report();
    print_leaks_found();
    // The exit status last (LeakSanitizer's exitcode), once every report is written.
    if (leaky && settings().leaks_exitcode != 0) _exit(settings().leaks_exitcode);
    errno = saved;
}

}  // namespace

}  // namespace mallochooks::heapindex

// ---- the chain, its entry points and its exported layer ---------------------------------------------------

// The chain, index_hooks, is in index/index_hooks.h; glibc's __libc_ names' entry points in
// libc_entry_points.cc, the layer exported for link-time hooks in exported_layer.cc.
using mallochooks::heapindex::index_hooks;
MALLOCHOOKS_DEFINE_USER_ENTRY_POINTS(, index_hooks)

// ---- the API (include/mallochooks/heapindex.h) ----------------------------------------------------------

using namespace mallochooks::heapindex;

namespace {
// A lookup once client blocks exist: the client index first (a client block wins over the heap chunk
// that holds it).
__attribute__((noinline)) int lookup_with_clients(uintptr_t a, heapindex_chunk *out) {
    record_fields f;
    if (client_chunks.lookup(a, &f) || heap_chunks.lookup(a, &f)) {
        if (out != nullptr) fill(f, out);
        return 1;
    }
    return 0;
}
}  // namespace

// The common case (no client block ever registered) inline, down to the record's seqlock read: a lookup
// is one call (docs/heapindex.md, "The index structure").
namespace {
__attribute__((noinline)) int lookup_general(uintptr_t a, uintptr_t top, const heap_index_t::leaf *l, heapindex_chunk *out) {
    record_fields f;
    if (!heap_chunks.lookup_general(a, top, l, &f, nullptr)) return 0;
    if (out != nullptr) fill(f, out);
    return 1;
}
}  // namespace

extern "C" __attribute__((visibility("default"), flatten)) int heapindex_v1_lookup(const void *addr, heapindex_chunk *out) {
    const uintptr_t a = reinterpret_cast<uintptr_t>(addr);
    if (__builtin_expect(client_used.load(std::memory_order_relaxed), 0)) return lookup_with_clients(a, out);
    // The record's copy stays local (the general path has its own), so it can go from registers to *out.
    record_fields f;
    uintptr_t top;
    const heap_index_t::leaf *l;
    const int v = heap_chunks.lookup_common(a, &f, nullptr, &top, &l);
    if (__builtin_expect(v < 0, 0)) return lookup_general(a, top, l, out);
    if (v == 0) return 0;
    if (out != nullptr) fill(f, out);
    return 1;
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

// Callers built against an older header pass a smaller struct: fill what fits.  heapindex_v1_stats is
// the first header's call, 11 fields.
extern "C" __attribute__((visibility("default"))) void heapindex_v1_stats_sized(struct heapindex_stats *out, size_t size) {
    if (out == nullptr) return;
    struct heapindex_stats all;
    collect_stats(&all);
    memcpy(out, &all, size < sizeof all ? size : sizeof all);
}

extern "C" __attribute__((visibility("default"))) void heapindex_v1_stats(struct heapindex_stats *out) {
    heapindex_v1_stats_sized(out, offsetof(struct heapindex_stats, unindexed_chunks));
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
    // The range: it must not wrap, must lie where the index can hold it, and must be mapped.
    if (size > client_index_t::address_limit || b >= client_index_t::address_limit - size) {
        report_client_error("heapindex_notify_alloc: block's range wraps around or runs past the indexed address "
                            "space, refused", base, nullptr, caller);
        return 0;
    }
    // A block that starts in a heap chunk must end in it; one that starts outside every heap chunk must
    // not end inside one.
    record_fields holder, other;
    const bool in_chunk = heap_chunks.lookup(b, &holder);
    if (in_chunk && size > holder.base + holder.size - b) {
        report_client_error("heapindex_notify_alloc: block runs past the end of the heap chunk that holds it, refused",
                            base, &holder, caller);
        return 0;
    }
    if (!in_chunk && size > 0 && heap_chunks.lookup(b + size - 1, &other)) {
        report_client_error("heapindex_notify_alloc: block ends inside a heap chunk it does not start in, refused", base,
                            &other, caller);
        return 0;
    }
    // Outside the heap's chunks, every page of the range must be mapped: msync says ENOMEM otherwise,
    // in one system call whatever the size (MS_ASYNC writes nothing back).
    if (!in_chunk && size > 0) {
        const uintptr_t first = b & ~uintptr_t{4095}, end = (b + size + 4095) & ~uintptr_t{4095};
        const int saved = errno;
        const bool unmapped = msync(reinterpret_cast<void *>(first), end - first, MS_ASYNC) != 0 && errno == ENOMEM;
        errno = saved;
        if (unmapped) {
            report_client_error("heapindex_notify_alloc: block's range is not (entirely) mapped memory, refused", base,
                                nullptr, caller);
            return 0;
        }
    }
    client_used.store(true, std::memory_order_relaxed);
    const client_index_t::slot s = client_chunks.at(b);
    if (s.marked() && records().get(s.id)->read_live(&other)) {
        report_client_error(other.base == b ? "heapindex_notify_alloc: block already registered, refused"
                                            : "heapindex_notify_alloc: block starts within 16 bytes of another, refused",
                            base, &other, caller);
        return 0;
    }
    // Overlap: a block that holds b or the last byte, or one that starts inside the range.
    bool overlaps = client_chunks.lookup(b, &other) || (size > 0 && client_chunks.lookup(b + size - 1, &other));
    if (!overlaps && size > 0)
        client_chunks.for_each_start_in(b, b + size, [&](uintptr_t, uint32_t id) {
            record_fields f;
            if (id != 0 && records().get(id)->read_live(&f) && f.base >= b && f.base < b + size) {
                other = f;
                overlaps = true;
            }
            return !overlaps;
        });
    if (overlaps) {
        report_client_error("heapindex_notify_alloc: block overlaps a registered block, refused", base, &other, caller);
        return 0;
    }
    const owned_thread_state owned;
    thread_state *t = owned.get();
    const uint32_t id = records().take(t);
    if (id == 0) return 0;
    record *r = records().get(id);
    // A live client block's free_site names the heap chunk that held it when it was registered (by
    // sequence number: the check tells that chunk from a later one at the same address); publish keeps
    // it in the record's aux word.
    r->publish({b, size, size, site, records().next_seq(t), in_chunk ? holder_seq(holder.seq) : nullptr, current_tid(t),
                HEAPINDEX_FLAG_CLIENT | (in_chunk ? HEAPINDEX_FLAG_IN_CHUNK : 0u)});
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
        const owned_thread_state t;
        records().give(t.get(), s.id);
        counters().client_blocks.fetch_sub(1, std::memory_order_relaxed);
        return 1;
    }
    record_fields f;
    if (s.id != 0 && records().get(s.id)->read_any(&f) == rs_dead && f.base == b) {
        counters().double_frees.fetch_add(1, std::memory_order_relaxed);
        counters().invalid_frees.fetch_add(1, std::memory_order_relaxed);
        report_double_free(f, caller, "heapindex_notify_free", s.id);
    } else {
        counters().invalid_frees.fetch_add(1, std::memory_order_relaxed);
        report_client_error("heapindex_notify_free: not a registered block", base, nullptr, caller);
    }
    return 0;
}

extern "C" __attribute__((visibility("default"))) int heapindex_v1_profile_write(const char *outputs) {
    return mallochooks::heapindex::profile::write_now(outputs);
}
