// SPDX-License-Identifier: MIT
// Heap error reports (see heap_errors.h).
#include "index/heap_errors.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>

#include "index/memcheck.h"
#include "index/profile.h"
#include "index/settings.h"
#include "index/symbolizer.h"
#include "index/heapindex_layer.h"
#include "index/thread_state.h"
#include "index/trailer.h"
#include "libmallochooks/guard.h"
#include "libmallochooks/output.h"
#include "mallochooks/heapindex.h"

namespace mallochooks::heapindex {

namespace {

// True once per process (a forked child again): the first report says where the log file is.
bool first_in_process() {
    static std::atomic<int> told{0};
    const int pid = int(getpid());
    return told.exchange(pid, std::memory_order_relaxed) != pid;
}

// Scoped: guard the library's own calls, keep the program's errno, open the diagnostics output.
struct diagnostic {
    reentrancy_guard guard;
    int saved_errno = errno;
    int fd = open_output(settings().log, first_in_process() ? "heap errors" : nullptr);
    int pid = int(getpid());
    ~diagnostic() {
        close_output(fd);
        errno = saved_errno;
    }
};

// One heap error as it is reported: lines of text and named sites, in order.  Printed at once (sites by
// dladdr: this runs inside free or realloc) and kept, raw, for the exit summary, which names the same
// sites with the full symbolizer (function, file:line).
struct error_report {
    struct item {
        const char *label;  // nullptr: a line of text
        const void *site;
        uint32_t stack;     // with a label and no site: a stack's id (profile::stack)
        bool allocation;    // ... in the allocation stacks' depot, or the other one
        char text[320];
    };
    static constexpr unsigned max_items = 12;
    item items[max_items];
    unsigned n = 0;

    __attribute__((format(printf, 2, 3))) void line(const char *fmt, ...) {
        if (n == max_items) return;
        item &i = items[n++];
        i.label = nullptr;
        i.site = nullptr;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(i.text, sizeof i.text, fmt, ap);
        va_end(ap);
    }
    // A tombstone's thread id is 0: its free site overlays it (record.h).
    void chunk(const record_fields &f) {
        char thread[32] = "";
        if (f.tid != 0) snprintf(thread, sizeof thread, ", thread %u", f.tid);
        line("  chunk %p, %zu bytes, seq %llu%s%s", (void *)f.base, f.size, (unsigned long long)f.seq, thread,
             (f.flags & HEAPINDEX_FLAG_CLIENT) ? ", client block" : "");
    }
    void site(const char *label, const void *at) {
        if (n == max_items) return;
        item &i = items[n++];
        i.label = label;
        i.site = at;
        i.stack = 0;
        i.text[0] = '\0';
    }
    void stack(const char *label, uint32_t sid, bool allocation) {
        if (n == max_items || profile::stack(sid, allocation) == nullptr) return;
        item &i = items[n++];
        i.label = label;
        i.site = nullptr;
        i.stack = sid;
        i.allocation = allocation;
        i.text[0] = '\0';
    }
    // The full stacks of record `id`'s chunk (f, its fields): allocation and, for a tombstone, free.
    void stacks_of(uint32_t id, const record_fields &f, bool freed) {
        if (id == 0 || !(f.flags & HEAPINDEX_FLAG_STACK)) return;
        stack(f.flags & HEAPINDEX_FLAG_REALLOC ? "reallocation stack:" : "allocation stack:", profile::stack_of_chunk(id), true);
        if (freed) stack("free stack:", profile::freed_by_of_chunk(id), false);
    }
    // The stack of the call the error was found in.
    void stack_here(const char *label, const void *caller) { stack(label, profile::capture_stack(caller), false); }
};

// Print a stack item's frames, each named by `name` (dladdr now, the symbolizer at exit).
template <class Name> void print_stack(int fd, int pid, const error_report::item &it, const char *indent, Name &&name) {
    const stack_entry *e = profile::stack(it.stack, it.allocation);
    if (e == nullptr) return;
    print(fd, "heapindex[%d]: %s%s\n", pid, indent, it.label);
    char where[1024];
    for (unsigned f = 0; f < e->depth; ++f) {
        name(reinterpret_cast<const void *>(e->frames[f]), where, sizeof where);
        print(fd, "heapindex[%d]: %s  #%-2u %s\n", pid, indent, f, where);
    }
}

// The errors kept for the exit summary: the first max_kept of the run (a slot is claimed with one
// fetch_add, filled, then published; nothing blocks).  Zero pages until an error happens.
constexpr unsigned max_kept = 64;
struct kept_error {
    std::atomic<bool> ready;
    error_report report;
};
constinit kept_error kept[max_kept] = {};
std::atomic<uint32_t> errors_seen{0};

void emit(const error_report &r) {
    {
        diagnostic d;
        for (unsigned i = 0; i < r.n; ++i) {
            const error_report::item &it = r.items[i];
            if (it.label == nullptr) {
                print(d.fd, "heapindex[%d]: %s\n", d.pid, it.text);
            } else if (it.site == nullptr && it.stack != 0) {
                print_stack(d.fd, d.pid, it, "  ", [](const void *a, char *b, size_t n) { describe_site_dladdr(a, b, n); });
            } else {
                char where[512];
                describe_site_dladdr(it.site, where, sizeof where);
                print(d.fd, "heapindex[%d]:   %-16s %s\n", d.pid, it.label, where);
            }
        }
    }
    const uint32_t slot = errors_seen.fetch_add(1, std::memory_order_relaxed);
    if (slot < max_kept) {
        memcpy(&kept[slot].report, &r, sizeof r);
        kept[slot].ready.store(true, std::memory_order_release);
    }
}

// The live chunk that starts right after a chunk's trailer (within the allocator's header room: glibc puts
// 8 bytes between, jemalloc and mimalloc none), if there is one.
bool chunk_after(uintptr_t end, record_fields *out, uint32_t *id) {
    for (uintptr_t a = (end + 7) & ~uintptr_t{7}; a <= end + 64; a += 8)
        if (heap_chunks.lookup(a, out, id) && out->base >= end) return true;
    return false;
}

}  // namespace

void describe_site_now(const void *site, char *buf, size_t n) { describe_site_dladdr(site, buf, n); }

void report_double_free(const record_fields &f, const void *again_at, const char *what, uint32_t id) {
    error_report r;
    r.line("double free: %s(%p) of a chunk already freed", what, (void *)f.base);
    r.chunk(f);
    r.site((f.flags & HEAPINDEX_FLAG_REALLOC) ? "reallocated at" : "allocated at", f.site);
    r.site("first freed at", f.free_site);
    r.site("freed again at", again_at);
    r.stacks_of(id, f, true);
    r.stack_here("freed again by:", again_at);
    emit(r);
}

void report_invalid_free(const void *ptr, const void *at, const record_fields *containing, const char *what,
                         bool started_here, uint32_t containing_id) {
    error_report r;
    if (containing != nullptr) {
        r.line("invalid %s(%p): %zu bytes inside a live chunk, not its start", what, ptr,
               size_t(uintptr_t(ptr) - containing->base));
        r.chunk(*containing);
        r.site("allocated at", containing->site);
    } else if (started_here) {
        r.line("invalid %s(%p): not a live chunk; a chunk started here (or within %u bytes) earlier and was freed "
               "longer ago than the quarantine reaches (the last %u frees of its thread: HEAPINDEX_QUARANTINE), so "
               "a double free cannot be recognised", what, ptr, 1u << heap_index_t::granule_shift, quarantine_size());
    } else {
        r.line("invalid %s(%p): not a chunk this process allocated (no chunk ever started at this address)", what, ptr);
    }
    r.site("called at", at);
    if (containing != nullptr) r.stacks_of(containing_id, *containing, false);
    r.stack_here("called by:", at);
    emit(r);
}

// The function that allocated a chunk, from its flags.
static const char *allocated_by(uint32_t flags) {
    if (flags & (HEAPINDEX_FLAG_NEW | HEAPINDEX_FLAG_NEW_ARRAY)) {
        const bool array = flags & HEAPINDEX_FLAG_NEW_ARRAY, aligned = flags & HEAPINDEX_FLAG_ALIGNED;
        return array ? (aligned ? "operator new[](std::align_val_t)" : "operator new[]")
                     : (aligned ? "operator new(std::align_val_t)" : "operator new");
    }
    if (flags & HEAPINDEX_FLAG_REALLOC) return "realloc";
    if (flags & HEAPINDEX_FLAG_CALLOC) return "calloc";
    if (flags & HEAPINDEX_FLAG_ALIGNED) return "memalign";
    return "malloc";
}

// What both mismatch reports give after their first line: the chunk, where it was allocated and
// released, and the stacks of both.
static void finish_mismatch(error_report &r, const record_fields &f, const void *at, uint32_t id) {
    r.chunk(f);
    r.site((f.flags & HEAPINDEX_FLAG_REALLOC) ? "reallocated at" : "allocated at", f.site);
    r.site("released at", at);
    r.stacks_of(id, f, false);
    r.stack_here("released by:", at);
    emit(r);
}

void report_mismatch(const record_fields &f, const void *at, const char *what, uint32_t id) {
    error_report r;
    r.line("alloc-dealloc mismatch: %s(%p) of a chunk allocated by %s", what, (void *)f.base, allocated_by(f.flags));
    finish_mismatch(r, f, at, id);
}

void report_size_mismatch(const record_fields &f, const void *at, const char *what, size_t size, uint32_t id) {
    error_report r;
    r.line("new-delete size mismatch: %s(%p, %zu) of a chunk of %zu bytes allocated by %s", what, (void *)f.base, size,
           f.size, allocated_by(f.flags));
    finish_mismatch(r, f, at, id);
}

void report_overflow(const record_fields &f, const void *at, const char *what, bool trailer_bad, size_t slack_bad,
                     uint32_t id) {
    error_report r;
    record_fields next;
    uint32_t next_id = 0;
    const bool neighbour = trailer_bad && chunk_after(f.base + f.usable + trailer_size, &next, &next_id);
    if (trailer_bad && neighbour) {
        r.line("heap overflow or underflow: the trailer after chunk %p (at offset %zu) was overwritten; found at %s",
               (void *)f.base, f.usable, what);
        r.line("  either chunk %p overflowed%s:", (void *)f.base,
               slack_bad ? "" : " (its slack before the trailer is intact: the write skipped it, or came from below)");
    } else if (trailer_bad) {
        r.line("heap overflow: the trailer after chunk %p (at offset %zu) was overwritten; found at %s", (void *)f.base,
               f.usable, what);
    } else {
        r.line("heap overflow: chunk %p was written past its %zu requested bytes, at offset %zu (the allocator's "
               "slack before the trailer); found at %s", (void *)f.base, f.size, slack_bad, what);
    }
    r.chunk(f);
    r.site(f.flags & HEAPINDEX_FLAG_REALLOC ? "reallocated at" : "allocated at", f.site);
    if (trailer_bad && slack_bad) r.line("  the slack before the trailer was overwritten too, from offset %zu", slack_bad);
    if (neighbour) {
        r.line("  or chunk %p, which starts %zu bytes after that trailer, underflowed (was written below its start):",
               (void *)next.base, size_t(next.base - (f.base + f.usable + trailer_size)));
        r.chunk(next);
        r.site(next.flags & HEAPINDEX_FLAG_REALLOC ? "reallocated at" : "allocated at", next.site);
    }
    r.site("detected at", at);
    if (trailer_bad) {
        unsigned char bytes[trailer_size];
        const void *trailer_at = reinterpret_cast<const void *>(f.base + f.usable);
        // Under memcheck: opened to be read, guarded again where the chunk is memcheck's block (memcheck.h).
        if (f.flags & record_flag_guarded_trailer) memcheck::open(trailer_at, trailer_size);
        memcpy(bytes, trailer_at, sizeof bytes);
        if (f.flags & record_flag_memcheck_block) memcheck::guard(trailer_at, trailer_size);
        char hex[3 * trailer_size + 1];
        for (size_t i = 0; i < trailer_size; ++i) snprintf(hex + 3 * i, 4, "%02x ", bytes[i]);
        hex[3 * trailer_size - 1] = '\0';
        r.line("  trailer bytes    %s", hex);
    }
    r.stacks_of(id, f, false);
    if (neighbour) r.stacks_of(next_id, next, false);
    r.stack_here("detected by:", at);
    emit(r);
}

void report_lost_chunk(const record_fields &lost, const record_fields &now, uint32_t lost_id) {
    error_report r;
    r.line("the allocator handed out %p again while chunk %p was live to the index (after the heap error reported "
           "before): the index follows the allocator; the older chunk is no longer indexed",
           (void *)now.base, (void *)lost.base);
    r.line("  lost:");
    r.chunk(lost);
    r.site(lost.flags & HEAPINDEX_FLAG_REALLOC ? "reallocated at" : "allocated at", lost.site);
    r.stacks_of(lost_id, lost, false);
    r.line("  indexed now:");
    r.chunk(now);
    r.site(now.flags & HEAPINDEX_FLAG_REALLOC ? "reallocated at" : "allocated at", now.site);
    emit(r);
}

void report_index_memory_exhausted() {
    diagnostic d;
    rlimit as, data;
    const char *why = getrlimit(RLIMIT_AS, &as) == 0 && as.rlim_cur != RLIM_INFINITY
                          ? "near the address-space limit, ulimit -v"
                      : getrlimit(RLIMIT_DATA, &data) == 0 && data.rlim_cur != RLIM_INFINITY ? "near the data limit, ulimit -d"
                                                                                             : "out of memory";
    print(d.fd, "heapindex[%d]: warning: the index cannot map more memory for itself (%s): chunks allocated from now "
                "on are not indexed (the program goes on as usual; heapindex_stats counts them, heapindex_check and the "
                "exit report say so)\n", d.pid, why);
}

void report_client_error(const char *message, const void *base, const record_fields *other, const void *at) {
    error_report r;
    r.line("%s (%p)", message, base);
    if (other != nullptr) {
        r.chunk(*other);
        r.site((other->flags & HEAPINDEX_FLAG_CLIENT) ? "registered at" : "allocated at", other->site);
    }
    r.site("called at", at);
    emit(r);
}

void report_check_problem(const char *text, const record_fields *f, uint32_t id) {
    error_report r;
    r.line("%s", text);
    if (f != nullptr) {
        r.chunk(*f);
        r.site((f->flags & HEAPINDEX_FLAG_CLIENT) ? "registered at" : "allocated at", f->site);
        r.stacks_of(id, *f, false);
    }
    const uint32_t slot = errors_seen.fetch_add(1, std::memory_order_relaxed);  // kept, not printed: the check
    if (slot < max_kept) {                                                       // prints its own lines
        memcpy(&kept[slot].report, &r, sizeof r);
        kept[slot].ready.store(true, std::memory_order_release);
    }
}

void forget_errors_after_fork() {
    const uint32_t seen = errors_seen.exchange(0, std::memory_order_relaxed);
    for (uint32_t i = 0; i < seen && i < max_kept; ++i) kept[i].ready.store(false, std::memory_order_relaxed);
}

void print_error_summary() {
    const uint32_t seen = errors_seen.load(std::memory_order_acquire);
    if (seen == 0 || settings().log.kind == output_spec::off) return;  // nobody to tell: no symbolizer either
    diagnostic d;
    print(d.fd, "heapindex[%d]: at exit: %u heap error%s reported in this run%s; their sites, symbolized:\n", d.pid, seen,
          seen == 1 ? "" : "s", seen > max_kept ? " (the first 64 kept)" : "");
    symbolizer sym;
    char where[1024];
    const uint32_t n = seen < max_kept ? seen : max_kept;
    for (uint32_t e = 0; e < n; ++e) {
        if (!kept[e].ready.load(std::memory_order_acquire)) continue;  // being written by another thread
        const error_report &r = kept[e].report;
        for (unsigned i = 0; i < r.n; ++i) {
            const error_report::item &it = r.items[i];
            if (it.label == nullptr) {
                if (i == 0) print(d.fd, "heapindex[%d]: #%u %s\n", d.pid, e + 1, it.text);
                else print(d.fd, "heapindex[%d]:   %s\n", d.pid, it.text);
            } else if (it.site == nullptr && it.stack != 0) {
                print_stack(d.fd, d.pid, it, "    ", [&](const void *a, char *b, size_t n) { sym.describe(a, b, n); });
            } else {
                sym.describe(it.site, where, sizeof where);
                print(d.fd, "heapindex[%d]:     %-16s %s\n", d.pid, it.label, where);
            }
        }
    }
}

}  // namespace mallochooks::heapindex
