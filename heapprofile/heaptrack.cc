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
// the peak's time and at the end, and the sampled series of memory in use as one "level" chunk at a
// time, resized at each point's 'c' timestamp (each an allocation lent by a stack), so that the reader's
// memory over time (heaptrack_gui's consumption chart, heaptrack_print's massif snapshots) follows it.
// Sizes of the individual events are each stack's average, and the level's size; the size histogram is
// not the program's.
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
    // Memory over time: the sampled series (time, live bytes) becomes a "level" chunk whose size makes the
    // running total follow it: before the peak, level = the series' value; between the peak and the end,
    // level = value - the bytes live at both (the chunks standing for those are live then).  One level
    // chunk is live at a time, freed before the next is allocated, before the peak's chunks and before the
    // end's, so that each stack's peak and leaked figures stay exact; every value stays below the peak, so
    // the reader's peak is still the peak snapshot.  Each level chunk is one allocation taken from a stack's
    // non-temporary allocations (the stacks largest at the peak first): allocation counts stay exact, and
    // a stack with few allocations lends few points (the series is thinned to what the stacks can lend).
    uint64_t peak_total = 0, shared_total = 0, lendable = 0;
    for (const plan &pl : plans) peak_total += pl.shared + pl.extra_peak, shared_total += pl.shared, lendable += pl.others;
    const uint64_t start = p.header.start_ns;
    auto ms = [&](uint64_t t) { return t > start ? (t - start) / 1000000 : 0; };
    const uint64_t peak_ms = std::max<uint64_t>(ms(p.header.peak_ns), 1), end_ms = std::max<uint64_t>(ms(p.header.end_ns), peak_ms + 2);
    struct level {
        uint64_t ms, bytes;
        bool after_peak;
        uint64_t info = 0;
    };
    std::vector<level> levels;
    for (const pf::series_point &pt : p.series) {
        if (peak_total == 0) break;
        const bool after = pt.t_ns > p.header.peak_ns;
        // Before the peak's millisecond, or between it and the end's (the peak and the end have their own).
        const uint64_t t = ms(pt.t_ns);
        if (after ? t <= peak_ms || t >= end_ms : t >= peak_ms) continue;
        const uint64_t cap = peak_total - 1, base = after ? shared_total : 0;
        const uint64_t b = std::min(std::max<uint64_t>(pt.live_bytes, base), cap) - std::min(base, cap);
        if (!levels.empty() && levels.back().ms == t && levels.back().after_peak == after) {
            levels.back().bytes = std::max(levels.back().bytes, b);  // one point per millisecond: its highest
            continue;
        }
        levels.push_back({t, b, after});
    }
    if (levels.size() > lendable) {  // thin evenly to what the stacks can lend
        std::vector<level> kept;
        for (size_t k = 0; k < lendable; ++k) kept.push_back(levels[k * levels.size() / lendable]);
        levels.swap(kept);
    }
    std::vector<size_t> lenders(plans.size());
    for (size_t i = 0; i < lenders.size(); ++i) lenders[i] = i;
    std::stable_sort(lenders.begin(), lenders.end(), [&](size_t a, size_t b) {
        return p.stacks[a].peak_bytes != p.stacks[b].peak_bytes ? p.stacks[a].peak_bytes > p.stacks[b].peak_bytes
                                                                : p.stacks[a].live_bytes > p.stacks[b].live_bytes;
    });

    // Info 0 is never used (a free after a free reads as the temporary of info 0); info 1 is the
    // zero-size reset line.
    const uint64_t first_trace = plans.empty() ? 0 : plans[0].trace;
    st.info(0, first_trace);
    const uint64_t reset = st.info(0, first_trace);
    size_t lender = 0;
    auto lend = [&](uint64_t bytes) -> uint64_t {  // an info of `bytes` on the next stack that can lend an allocation
        while (lender < lenders.size() && plans[lenders[lender]].others == 0) ++lender;
        if (lender == lenders.size()) return 0;
        --plans[lenders[lender]].others;
        return st.info(bytes, plans[lenders[lender]].trace);
    };
    for (level &l : levels)
        if (l.bytes != 0) l.info = lend(l.bytes);  // 0 bytes: no chunk, the level is just freed

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
    out << "c 0\n";
    for (const plan &pl : plans)
        for (uint64_t k = 0; k < pl.temporaries; ++k) out << "+ " << pl.tmp_info << "\n- " << pl.tmp_info << '\n';
    for (const plan &pl : plans)
        for (uint64_t k = 0; k < pl.others; ++k) out << "+ " << pl.other_info << "\n- " << reset << "\n- " << pl.other_info << '\n';
    // heaptrack's readers take the total in use at each 'c' line (heaptrack_print's massif snapshots,
    // heaptrack_gui's chart): a moment's events come first, then its timestamp.
    uint64_t now = 0, live_level = 0;  // the level chunk live now (its info), 0: none
    auto at = [&](uint64_t t) {
        if (t > now) out << "c " << t << '\n', now = t;
    };
    auto drop_level = [&] {
        if (live_level != 0) out << "- " << reset << "\n- " << live_level << '\n';
        live_level = 0;
    };
    auto set_level = [&](const level &l) {
        drop_level();
        if (l.info != 0) out << "+ " << l.info << '\n', live_level = l.info;
        at(l.ms);
    };
    for (const level &l : levels)
        if (!l.after_peak) set_level(l);
    drop_level();
    for (const plan &pl : plans) {
        if (pl.shared) out << "+ " << pl.shared_info << '\n';
        if (pl.extra_peak) out << "+ " << pl.peak_info << '\n';
    }
    at(peak_ms);
    out << "- " << reset << '\n';
    for (const plan &pl : plans)
        if (pl.extra_peak) out << "- " << pl.peak_info << '\n';
    at(peak_ms + 1);
    for (const level &l : levels)
        if (l.after_peak) set_level(l);
    drop_level();
    for (const plan &pl : plans)
        if (pl.extra_leak) out << "+ " << pl.leak_info << '\n';
    at(end_ms);
    out << "c " << end_ms + 1 << '\n';
    out << std::dec;
}

}  // namespace heapprofile
