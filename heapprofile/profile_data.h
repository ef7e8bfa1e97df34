// SPDX-License-Identifier: MIT
// heapindex-report's view of a heap-profile dump (index/profile_format.h): read whole, checked, and with
// every frame symbolized, ready for the writers (heaptrack's format, folded stacks, the HTML page).
// Tools-side code: the standard library and exceptions are fine here.
#ifndef MALLOCHOOKS_HEAPPROFILE_PROFILE_DATA_H
#define MALLOCHOOKS_HEAPPROFILE_PROFILE_DATA_H

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
    std::vector<pf::leak_record> leaks;  // empty until the reachability scan fills its section
    bool has_leak_section = false;
};

// Reads a dump; throws std::runtime_error saying what is wrong with it.
profile read_profile(const std::string &path);

// Symbolizes return addresses with libdwfl over the dump's module list (offline: the process is gone).
class symbolizer {
public:
    explicit symbolizer(const std::vector<module> &modules);
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
