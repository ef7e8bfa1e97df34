// SPDX-License-Identifier: MIT
// Output paths of the tools' settings (MALLOCTRACE_OUTPUT, HEAPINDEX_REPORT, HEAPINDEX_LOG): "%p" in a
// path becomes the process id, so that every process of a program that forks or execs writes its own
// file.  Expanded when the file is opened (after a fork, the child's own id).  No allocation.
#ifndef MALLOCHOOKS_OUTPUT_PATH_H
#define MALLOCHOOKS_OUTPUT_PATH_H

#include <stddef.h>
#include <stdio.h>
#include <unistd.h>

namespace mallochooks {

// Writes the expanded path, truncated to `size` - 1 bytes and NUL-terminated, into `out`.
inline void expand_output_path(const char *path, char *out, size_t size) {
    size_t n = 0;
    for (const char *p = path; *p != '\0' && n + 24 < size; ++p) {
        if (p[0] == '%' && p[1] == 'p') {
            n += size_t(snprintf(out + n, size - n, "%d", int(getpid())));
            ++p;
        } else {
            out[n++] = *p;
        }
    }
    out[n] = '\0';
}

}  // namespace mallochooks

#endif
