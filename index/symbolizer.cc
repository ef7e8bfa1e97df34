// SPDX-License-Identifier: MIT
// Naming allocation sites (see symbolizer.h): dladdr, and elfutils' libdwfl loaded with dlopen on demand.
// The symbolizer runs from the library's destructor under the reentrancy guard: what libdw and dlopen
// allocate goes straight to the allocator (indexed as early chunks).
#include "index/symbolizer.h"

#include <dlfcn.h>
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <type_traits>

// libiberty's; its libiberty.h would declare basename(), which <string.h> has declared for C++ already.
#define HAVE_DECL_BASENAME 1
#include <demangle.h>

#include "index/memcheck.h"
#include "index/settings.h"

namespace mallochooks::heapindex {

// C++ names read better demangled (`app::make(int)`, not `_ZN3app4makeEi`).  libiberty's demangler
// writes through a callback into `buf`: no allocation and no libstdc++, so it serves the reports made
// inside the hooks (dladdr's names) as well as the exit report, whatever C++ runtime the program has
// (a static one exports no __cxa_demangle).  `name` itself when it is not a mangled name, or when the
// demangled one does not fit.
const char *demangle(const char *name, char *buf, size_t n) {
    if (name == nullptr || name[0] != '_' || name[1] != 'Z' || n == 0) return name;
    struct sink {
        char *buf;
        size_t n, used;
        bool overflow;
    } out{buf, n, 0, false};
    auto append = [](const char *piece, size_t len, void *opaque) {
        sink *s = static_cast<sink *>(opaque);
        if (s->overflow || len >= s->n - s->used) {
            s->overflow = true;
            return;
        }
        memcpy(s->buf + s->used, piece, len);
        s->used += len;
        s->buf[s->used] = '\0';
    };
    buf[0] = '\0';
    if (cplus_demangle_v3_callback(name, DMGL_PARAMS | DMGL_ANSI, append, &out) == 0 || out.overflow) return name;
    return buf;
}

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
    char name[512];
    if (info.dli_sname != nullptr && info.dli_saddr != nullptr)
        snprintf(buf, n, "%p %s+0x%lx (%s)", site, demangle(info.dli_sname, name, sizeof name),
                 (unsigned long)(uintptr_t(site) - uintptr_t(info.dli_saddr)), obj);
    else
        snprintf(buf, n, "%p %s+0x%lx", site, obj, (unsigned long)(uintptr_t(site) - uintptr_t(info.dli_fbase)));
}

namespace {

struct libdw_api {
    void *handle;
    decltype(&dwfl_begin) begin;
    decltype(&dwfl_end) end;
    decltype(&dwfl_linux_proc_report) proc_report;
    decltype(&dwfl_report_end) report_end;
    decltype(&dwfl_addrmodule) addrmodule;
    decltype(&dwfl_module_addrname) addrname;
    decltype(&dwfl_module_addrinfo) addrinfo;
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
    get(api->addrinfo, "dwfl_module_addrinfo");
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
    // Never the network: dwfl_standard_find_debuginfo ends with a debuginfod query when DEBUGINFOD_URLS
    // is set (a server that accepts and never answers hangs the program's exit).  The build-id lookup in
    // the local debug directories (/usr/lib/debug/.build-id) is all it does before that, apart from a
    // search by .gnu_debuglink name; a module whose own file carries DWARF needs neither.
    get(api->callbacks.find_debuginfo, "dwfl_build_id_find_debuginfo");
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
    char name[512];
    const char *fn = demangle(dw->addrname(mod, pc), name, sizeof name);
    const char *file = nullptr;
    int line = 0;
    if (!source_line(dw, mod, pc, &file, &line)) file = nullptr;
    const char *base = file ? strrchr(file, '/') : nullptr;
    if (fn && file)
        snprintf(buf, n, "%s (%s:%d) in %s", fn, base ? base + 1 : file, line, object ? object : "?");
    else if (fn) {
        // No line (a build without -g): the return address's offset in the function tells the sites of
        // one function apart, as dladdr's names do.
        GElf_Off offset = 0;
        GElf_Sym sym;
        if (dw->addrinfo(mod, pc, &offset, &sym, nullptr, nullptr, nullptr) != nullptr)
            snprintf(buf, n, "%s+0x%lx in %s", fn, (unsigned long)(offset + 1), object ? object : "?");
        else
            snprintf(buf, n, "%s in %s", fn, object ? object : "?");
    }
    else
        describe_site_dladdr(site, buf, n);
}

}  // namespace

namespace {
uint64_t now_ms() {
    timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return uint64_t(t.tv_sec) * 1000 + uint64_t(t.tv_nsec) / 1000000;
}
}  // namespace

symbolizer::symbolizer() : deadline_ms_(now_ms() + settings().symbolize_ms) {
    if (settings().symbolizer != settings_t::libdw) return;
    // Under valgrind's memcheck, libdw's own allocations (its thread-local storage, dlopen's) would show
    // in memcheck's leak summary as the program's; memcheck names the sites of its own reports anyway.
    if (memcheck::running()) return;
    if (settings().symbolize_ms == 0) {  // no time at all for libdw
        expired_ = true;
        return;
    }
    static libdw_api api;
    if (load_libdw(&api)) dw_ = &api;
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
    // Past the deadline, dladdr only: bounded by the loader's tables, and it reads no file.
    if (dw_ != nullptr && !expired_ && now_ms() >= deadline_ms_) expired_ = true;  // cut short from here on
    describe_site(expired_ ? nullptr : static_cast<libdw_api *>(dw_), site, buf, n);
}

}  // namespace mallochooks::heapindex
