// SPDX-License-Identifier: MIT
// libheapindex.so's settings, from HEAPINDEX_* environment variables (README.md lists them).  They are
// read once, by the library's constructor (after libc is initialised, so the environment is there); none
// of them changes what the hooks do on the allocation path, only what is reported and where.  An unknown
// HEAPINDEX_* variable or a malformed value is reported on stderr and that one setting keeps its default;
// the index itself always runs.
#ifndef MALLOCHOOKS_INDEX_SETTINGS_H
#define MALLOCHOOKS_INDEX_SETTINGS_H

#include <stddef.h>

namespace mallochooks::heapindex {

struct settings_t {
    // An output: nowhere, stderr, or a path ("%p" in it becomes the process id when it is opened).
    struct output {
        enum kind_t { off, to_stderr, to_path } kind;
        char path[512];
    };
    output report;       // HEAPINDEX_REPORT: live chunks by site at exit (default off)
    unsigned report_top; // HEAPINDEX_REPORT_TOP: sites listed, 0 = all (default 25)
    output log;          // HEAPINDEX_LOG: heap errors, refused client requests, the exit check (default stderr)
    bool check_at_exit;  // HEAPINDEX_CHECK=exit (default off)
    enum symbolizer_t { libdw, dladdr_only, none } symbolizer;  // HEAPINDEX_SYMBOLIZE (default libdw)
};

// The settings in force (defaults until load_settings ran).
const settings_t &settings();

// Read the environment; report problems on stderr.  Returns the number of problems.
int load_settings();

// Open an output for appending: a descriptor to write to and close_output, 2 for stderr (also when the
// path cannot be opened: that is reported, and stderr used instead), -1 when off.
int open_output(const settings_t::output &o);
void close_output(int fd);

}  // namespace mallochooks::heapindex

#endif
