// SPDX-License-Identifier: MIT
// libheapindex.so's settings, from HEAPINDEX_* environment variables (README.md lists them).  They are
// read once, by the library's constructor (after libc is initialised, so the environment is there); none
// of them changes what the hooks do on the allocation path, only what is reported and where.  An unknown
// HEAPINDEX_* variable or a malformed value is reported on stderr and that one setting keeps its default;
// the index itself always runs.  In secure mode (AT_SECURE: a set-uid program, say) no setting is read:
// heap errors go to stderr, nothing else is written.
#ifndef MALLOCHOOKS_INDEX_SETTINGS_H
#define MALLOCHOOKS_INDEX_SETTINGS_H

#include <stddef.h>

#include "libmallochooks/output.h"

namespace mallochooks::heapindex {

struct settings_t {
    output_spec report;  // HEAPINDEX_REPORT: live chunks by site at exit (default off)
    unsigned report_top; // HEAPINDEX_REPORT_TOP: sites listed, 0 = all (default 25)
    output_spec log;     // HEAPINDEX_LOG: heap errors, refused client requests, the exit check (default stderr)
    bool check_at_exit;  // HEAPINDEX_CHECK=exit (default off)
    enum symbolizer_t { libdw, dladdr_only, none } symbolizer;  // HEAPINDEX_SYMBOLIZE (default libdw)
    unsigned symbolize_ms;  // HEAPINDEX_SYMBOLIZE_TIMEOUT, in ms: then dladdr for the remaining sites (default 10 s)
    bool secure;            // secure mode: no setting was read
    bool leaks_at_exit;   // HEAPINDEX_LEAKS=exit: the reachability scan at exit, on the log (default off)
    int leaks_exitcode;   // HEAPINDEX_LEAKS_EXITCODE: exit status of a leaky program, 0 = unchanged (default 0)
};

// The settings in force (defaults until load_settings ran).
const settings_t &settings();

// Read the environment; report problems on stderr.  Returns the number of problems.
int load_settings();

// Open an output for appending: a descriptor for print and close_output, program_stderr for stderr
// (also when a path cannot be opened: that is reported, and stderr used instead), -1 when off.
// `what` names the output in the pointer line printed on a terminal for a per-process file.
int open_output(const output_spec &o, const char *what);

}  // namespace mallochooks::heapindex

#endif
