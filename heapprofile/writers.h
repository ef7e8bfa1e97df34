// SPDX-License-Identifier: MIT
// The outputs heapindex-report writes from a heap-profile dump.  Each throws std::runtime_error when it
// cannot write its file.
#ifndef MALLOCHOOKS_HEAPPROFILE_WRITERS_H
#define MALLOCHOOKS_HEAPPROFILE_WRITERS_H

#include <ostream>
#include <string>

#include "heapprofile/profile_data.h"

namespace heapprofile {

// Folded stacks ("outer;...;inner value" per line) for flamegraph.pl and speedscope: bytes live at exit,
// at the peak, allocation counts, or leaked bytes (leaked_bytes: the reachability scan's definitely and
// indirectly lost when it ran, live at exit otherwise).
enum class folded_value { live_bytes, peak_bytes, allocations, leaked };
void write_folded(std::ostream &out, const profile &p, symbolizer &sym, folded_value what);

// heaptrack's data file (what heaptrack_interpret writes), which heaptrack_print and heaptrack_gui open.
void write_heaptrack(std::ostream &out, const profile &p, symbolizer &sym);

// The self-contained HTML page: flame graph, memory over time, largest sites, leaks.
void write_html(std::ostream &out, const profile &p, symbolizer &sym);

}  // namespace heapprofile

#endif
