// SPDX-License-Identifier: MIT
// Folded stacks: one line per distinct call path, root first, frames separated by ';', then a space and
// the value (flamegraph.pl's and speedscope's input).  Inlined calls are frames of their own; paths that
// symbolize alike are merged; a ';' inside a name (rare: some C++ templates) becomes ':'.
#include <cmath>
#include <map>

#include "heapprofile/writers.h"

namespace heapprofile {

void write_folded(std::ostream &out, const profile &p, symbolizer &sym, folded_value what) {
    std::map<std::string, double> lines;
    for (const stack &s : p.stacks) {
        const double v = what == folded_value::live_bytes   ? double(s.live_bytes)
                         : what == folded_value::peak_bytes ? double(s.peak_bytes)
                         : what == folded_value::leaked     ? leaked_bytes(p, s)
                                                            : s.allocations;
        if (v <= 0) continue;
        std::string path;
        for (auto pc = s.pcs.rbegin(); pc != s.pcs.rend(); ++pc) {
            const auto &frames = sym.frames_of(*pc);
            for (auto f = frames.rbegin(); f != frames.rend(); ++f) {
                std::string name = f->function;
                for (char &c : name)
                    if (c == ';') c = ':';
                if (!path.empty()) path += ';';
                path += name;
            }
        }
        if (path.empty()) path = "[unknown]";
        lines[path] += v;
    }
    for (const auto &[path, v] : lines) out << path << ' ' << static_cast<unsigned long long>(std::llround(v)) << '\n';
}

}  // namespace heapprofile
