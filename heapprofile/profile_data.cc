// SPDX-License-Identifier: MIT
// Reading the dump (index/profile_format.h) and symbolizing it with elfutils' libdwfl, offline: the
// process that wrote the dump may be gone, so the modules are reported to libdwfl from the dump's list
// (path and load bias), as a debugger does for a core file.  Inlined calls are expanded (DWARF scopes),
// so that a frame of an inlined allocation wrapper shows where it was called.
#include "heapprofile/profile_data.h"

#include <cxxabi.h>
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <stdexcept>

namespace heapprofile {

namespace {

template <class T> T take(const std::string &d, size_t &at, size_t end, const char *what) {
    if (at + sizeof(T) > end) throw std::runtime_error(std::string("truncated ") + what);
    T v;
    std::memcpy(&v, d.data() + at, sizeof v);
    at += sizeof v;
    return v;
}

std::string demangle(const char *versioned) {
    if (versioned == nullptr) return {};
    // Symbol versions ("__libc_start_main@@GLIBC_2.34") say nothing a reader of a profile needs.
    const std::string unversioned(versioned, versioned[0] == '\0' ? 0 : std::strcspn(versioned + 1, "@") + 1);
    const char *name = unversioned.c_str();
    if (name[0] == '_' && name[1] == 'Z') {
        int status = 0;
        char *d = abi::__cxa_demangle(name, nullptr, nullptr, &status);
        if (status == 0 && d != nullptr) {
            std::string s = d;
            std::free(d);
            return s;
        }
    }
    return name;
}

std::string hex(uint64_t v) {
    char b[32];
    std::snprintf(b, sizeof b, "0x%llx", static_cast<unsigned long long>(v));
    return b;
}

}  // namespace

profile read_profile(const std::string &path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot open " + path);
    const std::string d((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (d.size() < sizeof pf::magic || std::memcmp(d.data(), pf::magic, sizeof pf::magic) != 0)
        throw std::runtime_error(path + " is not a heap-profile dump (no HIPROF magic)");
    profile p;
    std::vector<pf::leak_record> leaks;
    bool header = false;
    size_t at = sizeof pf::magic;
    while (at < d.size()) {
        const auto s = take<pf::section>(d, at, d.size(), "section header");
        if (s.length > d.size() - at) throw std::runtime_error("truncated section");
        const size_t end = at + s.length;
        if (s.tag == pf::tag_header) {
            p.header = take<pf::header>(d, at, end, "header");
            if (p.header.version != 1) throw std::runtime_error("unknown dump version " + std::to_string(p.header.version));
            header = true;
        } else if (s.tag == pf::tag_cmdline) {
            std::string arg;
            for (size_t i = at; i < end; ++i) {
                if (d[i] == '\0') p.command.push_back(arg), arg.clear();
                else arg += d[i];
            }
            if (!arg.empty()) p.command.push_back(arg);
        } else if (s.tag == pf::tag_modules) {
            while (at < end) {
                const auto m = take<pf::module_record>(d, at, end, "module");
                if (m.path_length > end - at) throw std::runtime_error("truncated module path");
                p.modules.push_back({m.load_bias, m.start, m.end, d.substr(at, m.path_length)});
                at += m.path_length;
            }
        } else if (s.tag == pf::tag_stacks) {
            while (at < end) {
                const auto r = take<pf::stack_record>(d, at, end, "stack");
                if (uint64_t(r.depth) * 8 > end - at) throw std::runtime_error("truncated stack");
                stack st{r.id, {}, double(r.allocations) / 1024, double(r.temporaries) / 1024, r.bytes,
                         r.live_bytes, r.peak_bytes, double(r.live_chunks) / 1024, double(r.peak_chunks) / 1024};
                st.pcs.resize(r.depth);
                if (r.depth) std::memcpy(st.pcs.data(), d.data() + at, r.depth * 8);
                at += r.depth * 8u;
                if (r.id != 0 && (r.allocations != 0 || r.live_bytes != 0)) p.stacks.push_back(std::move(st));
            }
        } else if (s.tag == pf::tag_series) {
            while (at + sizeof(pf::series_point) <= end) p.series.push_back(take<pf::series_point>(d, at, end, "series"));
        } else if (s.tag == pf::tag_leaks) {
            p.has_leak_section = true;
            while (at + sizeof(pf::leak_record) <= end) leaks.push_back(take<pf::leak_record>(d, at, end, "leak"));
        }
        at = end;  // unknown sections are skipped
    }
    if (!header) throw std::runtime_error(path + " has no header section");
    std::map<uint32_t, size_t> by_id;
    for (size_t i = 0; i < p.stacks.size(); ++i) by_id[p.stacks[i].id] = i;
    for (const pf::leak_record &l : leaks) {
        if (l.kind < pf::leak_definite || l.kind > pf::leak_interior) continue;  // a kind this reader does not know
        const unsigned k = l.kind - 1;
        if (l.stack_id == pf::all_stacks) {
            p.lost_bytes[k] += l.bytes;
            p.lost_chunks[k] += double(l.chunks) / 1024;
            continue;
        }
        auto it = by_id.find(l.stack_id);
        if (it == by_id.end()) {  // no frames recorded for these chunks
            it = by_id.find(0);
            if (it == by_id.end()) {
                stack none{0, {}, 0, 0, 0, 0, 0, 0, 0};
                p.stacks.push_back(none);
                it = by_id.emplace(0, p.stacks.size() - 1).first;
            }
        }
        p.stacks[it->second].lost_bytes[k] += l.bytes;
        p.stacks[it->second].lost_chunks[k] += double(l.chunks) / 1024;
    }
    return p;
}

struct symbolizer::impl {
    Dwfl_Callbacks callbacks{};
    Dwfl *dwfl = nullptr;
    std::map<uint64_t, std::vector<frame>> cache;
    symbolize_options options;
    bool started = false, timed_out = false;
    std::chrono::steady_clock::time_point deadline;

    // Whether DWARF may still be read: the budget counts from the first lookup.
    bool dwarf_allowed() {
        if (options.level != symbolize_options::dwarf || timed_out) return false;
        const auto now = std::chrono::steady_clock::now();
        if (!started) {
            started = true;
            deadline = now + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                 std::chrono::duration<double>(options.timeout_s));
        }
        if (now < deadline) return true;
        timed_out = true;
        return false;
    }

    // The compile unit holding pc; libdw finds it only through .debug_aranges, which clang does not emit
    // by default: then scan the units.
    static bool unit_of(Dwfl_Module *mod, Dwarf_Addr pc, Dwarf_Die *cu, Dwarf_Addr *bias) {
        if (Dwarf_Die *found = dwfl_module_addrdie(mod, pc, bias)) {
            *cu = *found;
            return true;
        }
        Dwarf *dbg = dwfl_module_getdwarf(mod, bias);
        if (dbg == nullptr) return false;
        Dwarf_Off offset = 0, next = 0;
        size_t header = 0;
        while (dwarf_nextcu(dbg, offset, &next, &header, nullptr, nullptr, nullptr) == 0) {
            if (dwarf_offdie(dbg, offset + header, cu) != nullptr && dwarf_haspc(cu, pc - *bias) > 0) return true;
            offset = next;
        }
        return false;
    }

    static std::string name_of(Dwarf_Die *die) {
        Dwarf_Attribute a;
        if (dwarf_attr_integrate(die, DW_AT_linkage_name, &a) || dwarf_attr_integrate(die, DW_AT_MIPS_linkage_name, &a))
            if (const char *s = dwarf_formstring(&a)) return demangle(s);
        if (dwarf_attr_integrate(die, DW_AT_name, &a))
            if (const char *s = dwarf_formstring(&a)) return s;
        return "??";
    }

    std::vector<frame> lookup(uint64_t ra) {
        const Dwarf_Addr pc = ra - 1;  // the call, not the instruction after it
        std::vector<frame> out;
        Dwfl_Module *mod = dwfl ? dwfl_addrmodule(dwfl, pc) : nullptr;
        if (mod == nullptr) return {frame{hex(ra), {}, 0, {}}};
        const bool dwarf = dwarf_allowed();
        const char *mname = dwfl_module_info(mod, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr);
        const std::string module = mname ? mname : "";
        const char *sym = options.level == symbolize_options::none ? nullptr : dwfl_module_addrname(mod, pc);
        std::string outer = sym ? demangle(sym) : hex(ra);
        std::string file;
        int line = 0;
        Dwarf_Die cu;
        Dwarf_Addr bias = 0;
        if (dwarf && unit_of(mod, pc, &cu, &bias)) {
            if (Dwarf_Line *l = dwarf_getsrc_die(&cu, pc - bias)) {
                if (const char *f = dwarf_linesrc(l, nullptr, nullptr)) file = f;
                dwarf_lineno(l, &line);
            }
            Dwarf_Die *scopes = nullptr;
            const int n = dwarf_getscopes(&cu, pc - bias, &scopes);
            Dwarf_Files *files = nullptr;
            size_t nfiles = 0;
            dwarf_getsrcfiles(&cu, &files, &nfiles);
            for (int i = 0; i < n; ++i) {  // innermost first
                if (dwarf_tag(&scopes[i]) != DW_TAG_inlined_subroutine) continue;
                out.push_back({name_of(&scopes[i]), file, line, module});
                Dwarf_Attribute a;
                Dwarf_Word fi = 0, cl = 0;
                if (dwarf_formudata(dwarf_attr(&scopes[i], DW_AT_call_file, &a), &fi) == 0 && files && fi < nfiles) {
                    const char *f = dwarf_filesrc(files, fi, nullptr, nullptr);
                    file = f ? f : "";
                }
                if (dwarf_formudata(dwarf_attr(&scopes[i], DW_AT_call_line, &a), &cl) == 0) line = int(cl);
            }
            std::free(scopes);
        }
        out.push_back({outer, file, line, module});
        return out;
    }
};

symbolizer::symbolizer(const std::vector<module> &modules, const symbolize_options &options) : impl_(new impl) {
    static char *debuginfo_path = nullptr;
    impl_->options = options;
    // The modules are reported with their paths (dwfl_report_elf), so find_elf is not needed; without
    // debuginfod it is one that finds nothing (dwfl_build_id_find_elf would also ask debuginfod).
    if (options.debuginfod)
        impl_->callbacks.find_elf = dwfl_build_id_find_elf;
    else
        impl_->callbacks.find_elf = [](Dwfl_Module *, void **, const char *, Dwarf_Addr, char **, Elf **) { return -1; };
    // dwfl_standard_find_debuginfo ends with a debuginfod query when DEBUGINFOD_URLS is set; the build-id
    // lookup in the local debug directories is what it does before that (besides .gnu_debuglink names),
    // and a module whose own file has DWARF needs neither.
    impl_->callbacks.find_debuginfo = options.debuginfod ? dwfl_standard_find_debuginfo : dwfl_build_id_find_debuginfo;
    impl_->callbacks.section_address = dwfl_offline_section_address;
    impl_->callbacks.debuginfo_path = &debuginfo_path;
    impl_->dwfl = dwfl_begin(&impl_->callbacks);
    if (impl_->dwfl == nullptr) return;
    dwfl_report_begin(impl_->dwfl);
    for (const module &m : modules)
        dwfl_report_elf(impl_->dwfl, m.path.c_str(), m.path.c_str(), -1, m.load_bias, false);
    dwfl_report_end(impl_->dwfl, nullptr, nullptr);
}

bool symbolizer::timed_out() const { return impl_->timed_out; }

symbolizer::~symbolizer() {
    if (impl_->dwfl) dwfl_end(impl_->dwfl);
    delete impl_;
}

const std::vector<frame> &symbolizer::frames_of(uint64_t ra) {
    auto it = impl_->cache.find(ra);
    if (it == impl_->cache.end()) it = impl_->cache.emplace(ra, impl_->lookup(ra)).first;
    return it->second;
}

std::string format_bytes(double b) {
    const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (b >= 1024 && u < 4) b /= 1024, ++u;
    char buf[32];
    std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.2f %s", b, units[u]);
    return buf;
}

}  // namespace heapprofile
