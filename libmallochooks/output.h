// SPDX-License-Identifier: MIT
// Output for code that runs inside the program, possibly inside malloc: the tools' messages and reports
// (libheapindex, libmalloctrace) go through these.  They format into a stack buffer and write with
// write(2): no allocation, no stdio lock, no locale, safe from a signal handler or a forked child.
#ifndef MALLOCHOOKS_OUTPUT_H
#define MALLOCHOOKS_OUTPUT_H

#include <stddef.h>

namespace mallochooks {

// Append all n bytes to fd, retrying short writes and EINTR; gives up silently on any other error (a
// tool's output never changes what the program does).
void write_all(int fd, const char *s, size_t n) __attribute__((visibility("hidden")));

// printf-style into a 2 KiB stack buffer (longer messages are truncated), then write_all.  fd < 0: nothing.
void print(int fd, const char *fmt, ...) __attribute__((visibility("hidden"), format(printf, 2, 3)));

}  // namespace mallochooks

#endif
