// SPDX-License-Identifier: MIT
// The allocation-free output helpers (see output.h).
#include "libmallochooks/output.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

namespace mallochooks {

void write_all(int fd, const char *s, size_t n) {
    while (n > 0) {
        const ssize_t w = write(fd, s, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return;
        s += w;
        n -= size_t(w);
    }
}

void print(int fd, const char *fmt, ...) {
    if (fd < 0) return;
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    const int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n > 0) write_all(fd, buf, size_t(n) < sizeof buf ? size_t(n) : sizeof buf - 1);
}

}  // namespace mallochooks
