// SPDX-License-Identifier: MIT
// heaptrack's data file, as heaptrack_interpret writes it (format version 3; learned from heaptrack's
// reader, src/analyze/accumulatedtracedata.cpp, and from files the installed heaptrack writes): text
// lines, numbers in hex, strings with their length, 1-based string, instruction-pointer and trace
// indices, 0-based allocation-info indices.
//
//   v VERSION FILEVERSION   X command line   I page_size pages
//   s LEN STRING            i IP MODULE [FUNCTION FILE LINE]...   (frames innermost first, inlined ones after)
//   t IP PARENT_TRACE       a SIZE TRACE      + INFO   - INFO    c MILLISECONDS
//
// heaptrack's file is an event stream: its reader counts an allocation per '+' line, a temporary
// allocation when a '-' follows the '+' of the same info directly, the leak as what is still allocated at
// the end, and each stack's peak as its share when the running total was highest.  The profile has
// per-stack totals, not events, so this writes a stream that makes the reader arrive at exactly those
// figures (docs/heap-profiles.md): each stack's temporaries as +/- pairs, its other allocations as
// allocations freed after a zero-size reset line, its peak and leaked bytes as chunks that are live at
// the peak's time and at the end.  Sizes of the individual events are each stack's average; the series
// of memory over time is not reproduced (the profile's own page has it).
#include <cmath>
#include <map>

#include "heapprofile/writers.h"

namespace heapprofile {

namespace {

struct stream {
    std::ostream &out;
    std::map<std::string, uint64_t> strings;
    std::map<uint64_t, uint64_t> ips;
    std::map<std::pair<uint64_t, uint64_t>, uint64_t> traces;
    uint64_t n_info = 0;

    uint64_t str(const std::string &s) {
        auto it = strings.find(s);
        if (it != strings.end()) return it->second;
        const uint64_t i = strings.size() + 1;
        strings.emplace(s, i);
        out << "s " << std::hex << s.size() << ' ' << s << '\n';
        return i;
    }
    uint64_t ip(uint64_t pc, symbolizer &sym) {
        auto it = ips.find(pc);
        if (it != ips.end()) return it->second;
        const auto &frames = sym.frames_of(pc);
        std::vector<uint64_t> fields;
        const uint64_t module = str(frames.empty() || frames[0].module.empty() ? std::string("??") : frames[0].module);
        for (const frame &f : frames) {
            if (f.function.rfind("0x", 0) == 0) continue;  // unknown: heaptrack prints the address itself
            fields.push_back(str(f.function));
            fields.push_back(str(f.file.empty() ? std::string("??") : f.file));
            fields.push_back(uint64_t(f.line));
        }
        const uint64_t i = ips.size() + 1;
        ips.emplace(pc, i);
        out << "i " << std::hex << pc << ' ' << module;
        for (uint64_t v : fields) out << ' ' << v;
        out << '\n';
        return i;
    }
    uint64_t trace(const stack &s, symbolizer &sym) {
        uint64_t parent = 0;
        for (auto pc = s.pcs.rbegin(); pc != s.pcs.rend(); ++pc) {
            const uint64_t i = ip(*pc, sym);
            auto it = traces.find({parent, i});
            if (it == traces.end()) {
                it = traces.emplace(std::make_pair(parent, i), traces.size() + 1).first;
                out << "t " << std::hex << i << ' ' << parent << '\n';
            }
            parent = it->second;
        }
        return parent;
    }
    uint64_t info(uint64_t size, uint64_t trace) {
        out << "a " << std::hex << size << ' ' << trace << '\n';
        return n_info++;
    }
};

struct plan {
    uint64_t trace;
    uint64_t temporaries, others;
    uint64_t tmp_info = 0, other_info = 0;
    uint64_t shared = 0, extra_peak = 0, extra_leak = 0;
    uint64_t shared_info = 0, peak_info = 0, leak_info = 0;
};

}  // namespace

void write_heaptrack(std::ostream &out, const profile &p, symbolizer &sym) {
    stream st{out, {}, {}, {}, 0};
    out << "v 10400 3\n" << std::hex;
    out << "X";
    for (const std::string &a : p.command) out << ' ' << a;
    out << '\n';
    out << "I " << std::hex << p.header.page_size << ' ' << p.header.phys_pages << '\n';
    std::vector<plan> plans;
    for (const stack &s : p.stacks) {
        plan pl{};
        pl.trace = st.trace(s, sym);
        const uint64_t a = uint64_t(std::llround(s.allocations));
        uint64_t t = uint64_t(std::llround(s.temporaries));
        // Leaked: the reachability scan's definitely and indirectly lost bytes when it ran, else live at exit.
        const uint64_t peak = s.peak_bytes > 0 ? uint64_t(s.peak_bytes) : 0, leak = uint64_t(std::llround(leaked_bytes(p, s)));
        pl.shared = std::min(peak, leak);
        pl.extra_peak = peak - pl.shared;
        pl.extra_leak = leak - pl.shared;
        const uint64_t structural = (pl.shared > 0) + (pl.extra_peak > 0) + (pl.extra_leak > 0);
        if (t + structural > a) t = a > structural ? a - structural : 0;
        pl.temporaries = t;
        pl.others = a > t + structural ? a - t - structural : 0;
        plans.push_back(pl);
    }
    // Info 0 is never used (a free after a free reads as the temporary of info 0); info 1 is the
    // zero-size reset line.
    const uint64_t first_trace = plans.empty() ? 0 : plans[0].trace;
    st.info(0, first_trace);
    const uint64_t reset = st.info(0, first_trace);
    for (size_t i = 0; i < plans.size(); ++i) {
        plan &pl = plans[i];
        const stack &s = p.stacks[i];
        const uint64_t avg = s.allocations >= 1 ? uint64_t(double(s.bytes) / s.allocations + 0.5) : s.bytes;
        if (pl.temporaries) pl.tmp_info = st.info(avg, pl.trace);
        if (pl.others) pl.other_info = st.info(avg, pl.trace);
        if (pl.shared) pl.shared_info = st.info(pl.shared, pl.trace);
        if (pl.extra_peak) pl.peak_info = st.info(pl.extra_peak, pl.trace);
        if (pl.extra_leak) pl.leak_info = st.info(pl.extra_leak, pl.trace);
    }
    const uint64_t start = p.header.start_ns;
    auto ms = [&](uint64_t t) { return t > start ? (t - start) / 1000000 : 0; };
    out << "c 0\n";
    for (const plan &pl : plans)
        for (uint64_t k = 0; k < pl.temporaries; ++k) out << "+ " << pl.tmp_info << "\n- " << pl.tmp_info << '\n';
    for (const plan &pl : plans)
        for (uint64_t k = 0; k < pl.others; ++k) out << "+ " << pl.other_info << "\n- " << reset << "\n- " << pl.other_info << '\n';
    const uint64_t peak_ms = std::max<uint64_t>(ms(p.header.peak_ns), 1), end_ms = std::max<uint64_t>(ms(p.header.end_ns), peak_ms + 1);
    out << "c " << peak_ms << '\n';
    for (const plan &pl : plans) {
        if (pl.shared) out << "+ " << pl.shared_info << '\n';
        if (pl.extra_peak) out << "+ " << pl.peak_info << '\n';
    }
    out << "- " << reset << '\n';
    for (const plan &pl : plans)
        if (pl.extra_peak) out << "- " << pl.peak_info << '\n';
    out << "c " << end_ms << '\n';
    for (const plan &pl : plans)
        if (pl.extra_leak) out << "+ " << pl.leak_info << '\n';
    out << "c " << end_ms + 1 << '\n';
    out << std::dec;
}

}  // namespace heapprofile
