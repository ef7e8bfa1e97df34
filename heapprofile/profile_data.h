// SPDX-License-Identifier: MIT
// heapindex-report's view of a heap-profile dump (index/profile_format.h): read whole, checked, and with
// every frame symbolized, ready for the writers (heaptrack's format, folded stacks, the HTML page).
// Tools-side code: the standard library and exceptions are fine here.
#ifndef MALLOCHOOKS_HEAPPROFILE_PROFILE_DATA_H
#define MALLOCHOOKS_HEAPPROFILE_PROFILE_DATA_H

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "index/profile_format.h"

namespace heapprofile {

namespace pf = mallochooks::heapindex::profile_format;

// One source-level frame: a return address can stand for several when calls were inlined.
struct frame {
    std::string function;  // demangled; "0x..." when unknown
    std::string file;      // empty when unknown
    int line = 0;
    std::string module;    // the object's path
};

struct stack {
    uint32_t id;
    std::vector<uint64_t> pcs;  // innermost first
    double allocations, temporaries;  // allocations (scaled back from sampling)
    uint64_t bytes;
    int64_t live_bytes, peak_bytes;
    double live_chunks, peak_chunks;
    // What the reachability scan found lost, by kind - 1 (definitely, indirectly, interior pointers only).
    uint64_t lost_bytes[3] = {};
    double lost_chunks[3] = {};
};

struct module {
    uint64_t load_bias, start, end;
    std::string path;
};

struct profile {
    pf::header header{};
    std::vector<std::string> command;
    std::vector<module> modules;
    std::vector<stack> stacks;
    std::vector<pf::series_point> series;
    // The reachability scan's section (HEAPINDEX_LEAKS=exit): per stack in stacks' lost_* (a stack without
    // a record, id 0: chunks allocated before stacks were recorded, made up with no frames), exact totals here.
    bool has_leak_section = false;
    uint64_t lost_bytes[3] = {};
    double lost_chunks[3] = {};
};

// What the outputs call leaked: definitely and indirectly lost when the scan ran (memcheck's and
// LeakSanitizer's leaks; chunks reached only through interior pointers are "possibly lost", not counted),
// what was live at exit otherwise (heaptrack's definition).
inline double leaked_bytes(const profile &p, const stack &s) {
    return p.has_leak_section ? double(s.lost_bytes[0] + s.lost_bytes[1]) : double(std::max<int64_t>(s.live_bytes, 0));
}
inline double leaked_chunks(const profile &p, const stack &s) {
    return p.has_leak_section ? s.lost_chunks[0] + s.lost_chunks[1] : std::max(s.live_chunks, 0.0);
}

// Reads a dump; throws std::runtime_error saying what is wrong with it.
profile read_profile(const std::string &path);

// How frames are named: DWARF (functions, inlined calls, file and line) while the time budget lasts, then
// symbol tables only; symbol tables only; or not at all (addresses).  Debug information is looked for
// in the objects themselves and the local debug directories (/usr/lib/debug/.build-id, .gnu_debuglink);
// never through debuginfod (the network: a server that does not answer would hang the program's exit
// that started the converter) unless `debuginfod` is set.
struct symbolize_options {
    enum level_t { dwarf, symtab, none } level = dwarf;
    double timeout_s = 10;  // DWARF for this long from the first lookup, then symbol tables only
    bool debuginfod = false;
};

// Symbolizes return addresses with libdwfl over the dump's module list (offline: the process is gone).
class symbolizer {
public:
    explicit symbolizer(const std::vector<module> &modules, const symbolize_options &options = {});
    // True when the time budget ran out and later frames were named from symbol tables only.
    bool timed_out() const;
    ~symbolizer();
    symbolizer(const symbolizer &) = delete;
    symbolizer &operator=(const symbolizer &) = delete;
    // The source frames of a return address, innermost first (inlined calls expanded).
    const std::vector<frame> &frames_of(uint64_t return_address);

private:
    struct impl;
    impl *impl_;
};

// Human-readable bytes: "1.50 MiB".
std::string format_bytes(double bytes);

}  // namespace heapprofile

#endif
