// SPDX-License-Identifier: MIT
// A tool's settings from the environment, even when the first allocation comes before libc has set
// `environ`: a function in the executable's .preinit_array runs before libc.so's own initialiser, so a
// malloc there reaches the hooks with `environ` still null.  Then the entries are read from
// /proc/self/environ, which shows the environment the process was started with (exactly what libc is
// about to install), with raw system calls into the caller's buffer: no allocation.
#ifndef MALLOCHOOKS_INITIAL_ENVIRONMENT_H
#define MALLOCHOOKS_INITIAL_ENVIRONMENT_H

#include <stddef.h>

namespace mallochooks {

// Copies every "NAME=value" entry that starts with `prefix` into `store` (n bytes), one after the other,
// each NUL-terminated; entries that do not fit are left out.  Returns how many were copied, or -1 when
// the environment cannot be read (environ unset and /proc not mounted).  errno is kept.
int environment_entries(const char *prefix, char *store, size_t n) __attribute__((visibility("hidden")));

// The value of `name` among the `count` entries in `store`, or nullptr.
const char *entry_value(const char *store, int count, const char *name) __attribute__((visibility("hidden")));

// The next entry after `entry` in a store (entries are consecutive NUL-terminated strings).
inline const char *next_entry(const char *entry) {
    while (*entry != '\0') ++entry;
    return entry + 1;
}

}  // namespace mallochooks

#endif
