// SPDX-License-Identifier: MIT
// What libheapindex.so tells the user: heap errors as they happen (double and invalid frees, clobbered
// trailers), and at exit the live chunks grouped by allocation site, largest first, symbolized.
//
// Heap errors are found inside free or realloc, wherever the program calls them (possibly inside glibc
// with a lock held), so their messages are formatted into stack buffers and written with write(2), and
// sites are named with dladdr only (no allocation, no message translation).  The exit report runs from the
// library's destructor: there the full symbolizer is affordable, elfutils' libdwfl, loaded with dlopen
// only then (so that no process pays for libdw at start-up), with dladdr as the fallback.  Everything runs
// under the reentrancy guard: what libdw and dlopen allocate goes straight to the allocator (indexed as
// early chunks).
#include <dlfcn.h>
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>

#include "index/heapindex_layer.h"
#include "index/report.h"
#include "index/settings.h"
#include "libmallochooks/guard.h"

namespace mallochooks::heapindex {

namespace {

// A site as "func+0x1c (/path/to/object)" from dladdr: no allocation, no lock beyond the loader's.
void describe_site_dladdr(const void *site, char *buf, size_t n) {
    if (site == nullptr) {
        snprintf(buf, n, "(unknown)");
        return;
    }
    Dl_info info;
    if (dladdr(site, &info) == 0 || info.dli_fname == nullptr) {
        snprintf(buf, n, "%p (no object)", site);
        return;
    }
    const char *obj = info.dli_fname[0] != '\0' ? info.dli_fname : "the executable";
    if (info.dli_sname != nullptr && info.dli_saddr != nullptr)
        snprintf(buf, n, "%p %s+0x%lx (%s)", site, info.dli_sname,
                 (unsigned long)(uintptr_t(site) - uintptr_t(info.dli_saddr)), obj);
    else
        snprintf(buf, n, "%p %s+0x%lx", site, obj, (unsigned long)(uintptr_t(site) - uintptr_t(info.dli_fbase)));
}

// Scoped: guard the library's own calls, keep the program's errno, open the diagnostics output.
struct diagnostic {
    reentrancy_guard guard;
    int saved_errno = errno;
    int fd = open_output(settings().log);
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
        char text[232];
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
    void chunk(const record_fields &f) {
        line("  chunk %p, %zu bytes, seq %llu, thread %u%s", (void *)f.base, f.size, (unsigned long long)f.seq, f.tid,
             (f.flags & HEAPINDEX_FLAG_CLIENT) ? ", client block" : "");
    }
    void site(const char *label, const void *at) {
        if (n == max_items) return;
        item &i = items[n++];
        i.label = label;
        i.site = at;
        i.text[0] = '\0';
    }
};

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
bool chunk_after(uintptr_t end, record_fields *out) {
    for (uintptr_t a = (end + 7) & ~uintptr_t{7}; a <= end + 64; a += 8)
        if (heap_chunks.lookup(a, out) && out->base >= end) return true;
    return false;
}

}  // namespace

void describe_site_now(const void *site, char *buf, size_t n) { describe_site_dladdr(site, buf, n); }

void report_double_free(const record_fields &f, const void *again_at, const char *what) {
    error_report r;
    r.line("double free: %s(%p) of a chunk already freed", what, (void *)f.base);
    r.chunk(f);
    r.site((f.flags & HEAPINDEX_FLAG_REALLOC) ? "reallocated at" : "allocated at", f.site);
    r.site("first freed at", f.free_site);
    r.site("freed again at", again_at);
    emit(r);
}

void report_invalid_free(const void *ptr, const void *at, const record_fields *containing, const char *what,
                         bool started_here) {
    error_report r;
    if (containing != nullptr) {
        r.line("invalid %s(%p): %zu bytes inside a live chunk, not its start", what, ptr,
               size_t(uintptr_t(ptr) - containing->base));
        r.chunk(*containing);
        r.site("allocated at", containing->site);
    } else if (started_here) {
        r.line("invalid %s(%p): not a live chunk; a chunk did start at this address (or within %u bytes of it) "
               "earlier, and its record has left the quarantine (each thread keeps its last %u freed chunks: "
               "HEAPINDEX_QUARANTINE), so this may be a double free that can no longer be recognised",
               what, ptr, 1u << heap_index_t::granule_shift, quarantine_size());
    } else {
        r.line("invalid %s(%p): not a chunk this process allocated (no chunk ever started at this address)", what, ptr);
    }
    r.site("called at", at);
    emit(r);
}

void report_overflow(const record_fields &f, const void *at, const char *what, bool trailer_bad, size_t slack_bad) {
    error_report r;
    record_fields next;
    const bool neighbour = trailer_bad && chunk_after(f.base + f.usable + trailer_size, &next);
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
        memcpy(bytes, reinterpret_cast<const void *>(f.base + f.usable), sizeof bytes);
        char hex[3 * trailer_size + 1];
        for (size_t i = 0; i < trailer_size; ++i) snprintf(hex + 3 * i, 4, "%02x ", bytes[i]);
        hex[3 * trailer_size - 1] = '\0';
        r.line("  trailer bytes    %s", hex);
    }
    emit(r);
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

void report_check_problem(const char *text, const record_fields *f) {
    error_report r;
    r.line("%s", text);
    if (f != nullptr) {
        r.chunk(*f);
        r.site((f->flags & HEAPINDEX_FLAG_CLIENT) ? "registered at" : "allocated at", f->site);
    }
    const uint32_t slot = errors_seen.fetch_add(1, std::memory_order_relaxed);  // kept, not printed: the check
    if (slot < max_kept) {                                                       // prints its own lines
        memcpy(&kept[slot].report, &r, sizeof r);
        kept[slot].ready.store(true, std::memory_order_release);
    }
}

void report_line(const char *fmt, ...) {
    diagnostic d;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    print(d.fd, "heapindex[%d]: %s\n", d.pid, buf);
}

// ---- symbolization with libdwfl, loaded on demand ---------------------------------------------------

namespace {

struct libdw_api {
    void *handle;
    decltype(&dwfl_begin) begin;
    decltype(&dwfl_end) end;
    decltype(&dwfl_linux_proc_report) proc_report;
    decltype(&dwfl_report_end) report_end;
    decltype(&dwfl_addrmodule) addrmodule;
    decltype(&dwfl_module_addrname) addrname;
    decltype(&dwfl_module_info) module_info;
    decltype(&dwfl_module_addrdie) addrdie;
    decltype(&dwfl_module_getdwarf) getdwarf;
    decltype(&dwarf_nextcu) nextcu;
    decltype(&dwarf_offdie) offdie;
    decltype(&dwarf_haspc) haspc;
    decltype(&dwarf_getsrc_die) getsrc_die;
    decltype(&dwarf_linesrc) linesrc;
    decltype(&dwarf_lineno) lineno;
    decltype(&dwarf_getscopes) getscopes;
    decltype(&dwarf_tag) tag;
    decltype(&dwarf_attr) attr;
    decltype(&dwarf_formudata) formudata;
    decltype(&dwarf_getsrcfiles) getsrcfiles;
    decltype(&dwarf_filesrc) filesrc;
    Dwfl_Callbacks callbacks;
    Dwfl *dwfl;
};

bool load_libdw(libdw_api *api) {
    api->handle = dlopen("libdw.so.1", RTLD_NOW | RTLD_LOCAL);
    if (api->handle == nullptr) return false;
    bool ok = true;
    auto get = [&](auto &slot, const char *name) {
        slot = reinterpret_cast<std::remove_reference_t<decltype(slot)>>(dlsym(api->handle, name));
        ok = ok && slot != nullptr;
    };
    get(api->begin, "dwfl_begin");
    get(api->end, "dwfl_end");
    get(api->proc_report, "dwfl_linux_proc_report");
    get(api->report_end, "dwfl_report_end");
    get(api->addrmodule, "dwfl_addrmodule");
    get(api->addrname, "dwfl_module_addrname");
    get(api->module_info, "dwfl_module_info");
    get(api->addrdie, "dwfl_module_addrdie");
    get(api->getdwarf, "dwfl_module_getdwarf");
    get(api->nextcu, "dwarf_nextcu");
    get(api->offdie, "dwarf_offdie");
    get(api->haspc, "dwarf_haspc");
    get(api->getsrc_die, "dwarf_getsrc_die");
    get(api->linesrc, "dwarf_linesrc");
    get(api->lineno, "dwarf_lineno");
    get(api->getscopes, "dwarf_getscopes");
    get(api->tag, "dwarf_tag");
    get(api->attr, "dwarf_attr");
    get(api->formudata, "dwarf_formudata");
    get(api->getsrcfiles, "dwarf_getsrcfiles");
    get(api->filesrc, "dwarf_filesrc");
    get(api->callbacks.find_elf, "dwfl_linux_proc_find_elf");
    get(api->callbacks.find_debuginfo, "dwfl_standard_find_debuginfo");
    api->callbacks.section_address = nullptr;
    api->callbacks.debuginfo_path = nullptr;
    if (ok) api->dwfl = api->begin(&api->callbacks);
    if (!ok || api->dwfl == nullptr || api->proc_report(api->dwfl, getpid()) != 0 ||
        api->report_end(api->dwfl, nullptr, nullptr) != 0) {
        if (ok && api->dwfl) api->end(api->dwfl);
        dlclose(api->handle);
        return false;
    }
    return true;
}

// C++ names read better demangled; __cxa_demangle is only used if the program already has libstdc++.
const char *demangle(const char *name, char **owned) {
    using demangler = char *(*)(const char *, char *, size_t *, int *);
    static demangler fn = reinterpret_cast<demangler>(dlsym(RTLD_DEFAULT, "__cxa_demangle"));
    *owned = nullptr;
    if (fn == nullptr || name == nullptr || name[0] != '_' || name[1] != 'Z') return name;
    int status = 0;
    *owned = fn(name, nullptr, nullptr, &status);
    return status == 0 && *owned ? *owned : name;
}

// The compile unit holding pc (*bias: the module's load bias).  libdw 0.188 finds it only through
// .debug_aranges, which clang does not emit unless told (-gdwarf-aranges): then scan the units.
bool unit_of(libdw_api *dw, Dwfl_Module *mod, Dwarf_Addr pc, Dwarf_Die *cu, Dwarf_Addr *bias) {
    if (Dwarf_Die *found = dw->addrdie(mod, pc, bias)) {
        *cu = *found;
        return true;
    }
    Dwarf *dbg = dw->getdwarf(mod, bias);
    if (dbg == nullptr) return false;
    Dwarf_Off offset = 0, next = 0;
    size_t header = 0;
    while (dw->nextcu(dbg, offset, &next, &header, nullptr, nullptr, nullptr) == 0) {
        if (dw->offdie(dbg, offset + header, cu) != nullptr && dw->haspc(cu, pc - *bias) > 0) return true;
        offset = next;
    }
    return false;
}

// The file and line of pc.  When the call was inlined (an allocation wrapper such as glibc's
// rtld-malloc.h, or xmalloc), the line that matters is where the outermost inlined function was called,
// in the function the symbol names.
bool source_line(libdw_api *dw, Dwfl_Module *mod, Dwarf_Addr pc, const char **file, int *line) {
    Dwarf_Die cu;
    Dwarf_Addr bias = 0;
    if (!unit_of(dw, mod, pc, &cu, &bias)) return false;
    Dwarf_Die *scopes = nullptr;
    const int n = dw->getscopes(&cu, pc - bias, &scopes);
    bool found = false;
    for (int i = n - 1; i >= 0 && !found; --i) {  // outermost first
        if (dw->tag(&scopes[i]) != DW_TAG_inlined_subroutine) continue;
        Dwarf_Attribute a;
        Dwarf_Word file_index = 0, call_line = 0;
        Dwarf_Files *files = nullptr;
        size_t nfiles = 0;
        if (dw->formudata(dw->attr(&scopes[i], DW_AT_call_file, &a), &file_index) != 0 ||
            dw->formudata(dw->attr(&scopes[i], DW_AT_call_line, &a), &call_line) != 0 ||
            dw->getsrcfiles(&cu, &files, &nfiles) != 0 || file_index >= nfiles)
            break;
        *file = dw->filesrc(files, file_index, nullptr, nullptr);
        *line = int(call_line);
        found = *file != nullptr;
    }
    ::free(scopes);
    if (found) return true;
    Dwarf_Line *l = dw->getsrc_die(&cu, pc - bias);
    if (l == nullptr || (*file = dw->linesrc(l, nullptr, nullptr)) == nullptr) return false;
    return dw->lineno(l, line) == 0;
}

// A return address names the instruction after the call: look up the call itself for its line.
void describe_site(libdw_api *dw, const void *site, char *buf, size_t n) {
    if (dw == nullptr || site == nullptr) return describe_site_dladdr(site, buf, n);
    const Dwarf_Addr pc = reinterpret_cast<uintptr_t>(site) - 1;
    Dwfl_Module *mod = dw->addrmodule(dw->dwfl, pc);
    if (mod == nullptr) return describe_site_dladdr(site, buf, n);
    const char *object = dw->module_info(mod, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr);
    char *owned;
    const char *fn = demangle(dw->addrname(mod, pc), &owned);
    const char *file = nullptr;
    int line = 0;
    if (!source_line(dw, mod, pc, &file, &line)) file = nullptr;
    const char *base = file ? strrchr(file, '/') : nullptr;
    if (fn && file)
        snprintf(buf, n, "%s (%s:%d) in %s", fn, base ? base + 1 : file, line, object ? object : "?");
    else if (fn)
        snprintf(buf, n, "%s in %s", fn, object ? object : "?");
    else
        describe_site_dladdr(site, buf, n);
    if (owned) ::free(owned);
}

struct site_total {
    const void *site;
    uint64_t bytes, chunks;
    bool client;
};

}  // namespace

symbolizer::symbolizer() {
    if (settings().symbolizer == settings_t::libdw) {
        static libdw_api api;
        if (load_libdw(&api)) dw_ = &api;
    }
}

symbolizer::~symbolizer() {
    if (dw_ != nullptr) {
        libdw_api *api = static_cast<libdw_api *>(dw_);
        api->end(api->dwfl);
        dlclose(api->handle);
    }
}

void symbolizer::describe(const void *site, char *buf, size_t n) {
    if (settings().symbolizer == settings_t::none) {
        snprintf(buf, n, "%p", site);
        return;
    }
    describe_site(static_cast<libdw_api *>(dw_), site, buf, n);
}

void print_error_summary() {
    const uint32_t seen = errors_seen.load(std::memory_order_acquire);
    if (seen == 0) return;
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
            } else {
                sym.describe(it.site, where, sizeof where);
                print(d.fd, "heapindex[%d]:     %-16s %s\n", d.pid, it.label, where);
            }
        }
    }
}

void print_exit_report() {
    const settings_t &s = settings();
    if (s.report.kind == settings_t::output::off) return;
    reentrancy_guard guard;
    const int saved = errno;
    const int fd = open_output(s.report);
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
