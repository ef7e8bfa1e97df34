// SPDX-License-Identifier: MIT
// The environment for tools' settings, before and after libc sets `environ` (see initial_environment.h).
#include "libmallochooks/initial_environment.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

extern "C" char **environ;

namespace mallochooks {

namespace {

// Builds the store one byte at a time: an entry is kept while it still matches the prefix and fits.
struct collector {
    const char *prefix;
    size_t prefix_len;
    char *store;
    size_t n;
    size_t w = 0, start = 0, pos = 0;  // write position, start of the current entry, its length so far
    bool keep = true;
    int count = 0;

    void byte(char c) {
        if (c == '\0') {
            if (keep && pos >= prefix_len && w < n) {
                store[w++] = '\0';
                ++count;
            } else {
                w = start;
            }
            start = w;
            pos = 0;
            keep = true;
            return;
        }
        if (keep && pos < prefix_len && c != prefix[pos]) keep = false;
        if (keep && w + 1 >= n) keep = false;  // does not fit (room for its NUL kept)
        if (keep) store[w++] = c;
        else w = start;
        ++pos;
    }
};

}  // namespace

int environment_entries(const char *prefix, char *store, size_t n) {
    collector c{prefix, strlen(prefix), store, n};
    if (environ != nullptr) {
        for (char **e = environ; *e != nullptr; ++e) {
            for (const char *p = *e; *p != '\0'; ++p) c.byte(*p);
            c.byte('\0');
        }
        return c.count;
    }
    const int saved = errno;
    const int fd = open("/proc/self/environ", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        errno = saved;
        return -1;
    }
    char buf[4096];
    for (;;) {
        const ssize_t r = read(fd, buf, sizeof buf);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        for (ssize_t i = 0; i < r; ++i) c.byte(buf[i]);
    }
    close(fd);
    errno = saved;
    return c.count;
}

const char *entry_value(const char *store, int count, const char *name) {
    const size_t len = strlen(name);
    for (const char *e = store; count-- > 0; e = next_entry(e))
        if (strncmp(e, name, len) == 0 && e[len] == '=') return e + len + 1;
    return nullptr;
}

}  // namespace mallochooks
