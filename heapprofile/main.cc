// SPDX-License-Identifier: MIT
// heapindex-report: turns a heap-profile dump (HEAPINDEX_STACKS, docs/heap-profiles.md) into the formats
// people read: heaptrack's data file, folded stacks, the HTML page.  libheapindex.so starts it at exit
// with the dump it just wrote; it can also be run by hand on a dump kept with HEAPINDEX_REPORT=x.hiprof.
//
//   heapindex-report --from DUMP [--html FILE] [--folded FILE] [--folded-peak FILE] [--folded-allocs FILE]
//                    [--folded-leaks FILE] [--heaptrack FILE]
//                    [--symbolize dwarf|symtab|off] [--symbolize-timeout SECONDS] [--debuginfod]
//
// Symbols come from the objects and the local debug directories only, DWARF (file, line, inlined calls)
// for at most --symbolize-timeout seconds (10 by default; then symbol tables only), so that the program
// whose exit started this converter never waits on the network or on a huge object's DWARF.
// --debuginfod also asks the debuginfod servers of DEBUGINFOD_URLS (for a run by hand).
//
// A FILE that cannot be written is reported and the output goes to stderr instead (the library's rule for
// every report).  Exit status 0 when everything was written, 1 otherwise, 2 on bad usage.
#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>

#include "heapprofile/profile_data.h"
#include "heapprofile/writers.h"

namespace {

// The library's rule for its outputs (docs/output.md): a path that is a symbolic link or anything but a
// regular file (or /dev/null) is refused: a FIFO with no reader would block, a link may point anywhere.
const char *refused(const std::string &path) {
    struct stat st;
    if (lstat(path.c_str(), &st) != 0) return nullptr;  // a new file
    if (S_ISLNK(st.st_mode)) return "a symbolic link";
    if (!S_ISREG(st.st_mode) && path != "/dev/null") return "not a regular file";
    return nullptr;
}

int usage() {
    std::cerr << "usage: heapindex-report --from DUMP [--html FILE] [--folded FILE] [--folded-peak FILE]\n"
                 "                        [--folded-allocs FILE] [--folded-leaks FILE] [--heaptrack FILE]\n"
                 "                        [--symbolize dwarf|symtab|off] [--symbolize-timeout SECONDS] [--debuginfod]\n";
    return 2;
}

}  // namespace

int main(int argc, char **argv) {
    std::string from;
    std::vector<std::pair<std::string, std::string>> outputs;
    heapprofile::symbolize_options options;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--debuginfod") {
            options.debuginfod = true;
            continue;
        }
        if (i + 1 >= argc) return usage();
        if (a == "--from") from = argv[++i];
        else if (a == "--symbolize") {
            const std::string v = argv[++i];
            if (v == "dwarf") options.level = heapprofile::symbolize_options::dwarf;
            else if (v == "symtab") options.level = heapprofile::symbolize_options::symtab;
            else if (v == "off") options.level = heapprofile::symbolize_options::none;
            else return usage();
        } else if (a == "--symbolize-timeout") {
            char *end;
            options.timeout_s = std::strtod(argv[++i], &end);
            if (*end != '\0' || !(options.timeout_s >= 0)) return usage();
        }
        else if (a == "--html" || a == "--folded" || a == "--folded-peak" || a == "--folded-allocs" || a == "--folded-leaks" ||
                 a == "--heaptrack")
            outputs.emplace_back(a, argv[++i]);
        else return usage();
    }
    if (from.empty() || outputs.empty()) return usage();
    int status = 0;
    try {
        const heapprofile::profile p = heapprofile::read_profile(from);
        heapprofile::symbolizer sym(p.modules, options);
        for (const auto &[kind, path] : outputs) {
            const char *why = refused(path);
            std::ofstream file;
            if (why == nullptr) {
                file.open(path, std::ios::trunc);
                if (!file) why = std::strerror(errno);
            }
            std::ostream *out = &file;
            if (why != nullptr) {
                std::cerr << "heapindex-report: cannot write " << path << " (" << why << "); writing to stderr\n";
                out = &std::cerr;
                status = 1;
            }
            if (kind == "--html") heapprofile::write_html(*out, p, sym);
            else if (kind == "--heaptrack") heapprofile::write_heaptrack(*out, p, sym);
            else heapprofile::write_folded(*out, p, sym, kind == "--folded" ? heapprofile::folded_value::live_bytes
                                                       : kind == "--folded-peak" ? heapprofile::folded_value::peak_bytes
                                                       : kind == "--folded-leaks" ? heapprofile::folded_value::leaked
                                                                                 : heapprofile::folded_value::allocations);
            out->flush();
            if (!*out) {
                std::cerr << "heapindex-report: writing " << path << " failed\n";
                status = 1;
            }
        }
    } catch (const std::exception &e) {
        std::cerr << "heapindex-report: " << e.what() << '\n';
        return 1;
    }
    return status;
}
