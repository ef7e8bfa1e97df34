// SPDX-License-Identifier: MIT
// Parsing and validation of the HEAPINDEX_* settings (see settings.h), and opening the outputs they name.  Messages name the variable, the value and what
// happens instead; errno values are printed by name (strerrorname_np translates nothing and takes no
// lock, unlike strerror: see docs/events.md).
#include "index/settings.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "libmallochooks/output.h"
#include "libmallochooks/output_path.h"

extern "C" char **environ;

namespace mallochooks::heapindex {

namespace {

constinit settings_t current = {
    {settings_t::output::off, {}}, 25, {settings_t::output::to_stderr, {}}, false, settings_t::libdw,
};

const char *const known[] = {"HEAPINDEX_REPORT", "HEAPINDEX_REPORT_TOP", "HEAPINDEX_LOG", "HEAPINDEX_CHECK",
                             "HEAPINDEX_SYMBOLIZE"};

bool parse_output(const char *name, const char *value, settings_t::output *out) {
    if (strcmp(value, "off") == 0) {
        out->kind = settings_t::output::off;
    } else if (strcmp(value, "stderr") == 0) {
        out->kind = settings_t::output::to_stderr;
    } else if (*value == '\0' || strlen(value) >= sizeof out->path) {
        print(2, "heapindex: %s='%s' is not off, stderr or a file path (at most %zu bytes); using the default\n", name,
              value, sizeof out->path - 1);
        return false;
    } else {
        out->kind = settings_t::output::to_path;
        strcpy(out->path, value);
    }
    return true;
}

}  // namespace

const settings_t &settings() { return current; }

int load_settings() {
    const int saved = errno;
    int problems = 0;
    for (char **e = environ; e != nullptr && *e != nullptr; ++e) {
        if (strncmp(*e, "HEAPINDEX_", 10) != 0) continue;
        const char *eq = strchr(*e, '=');
        const size_t len = eq ? size_t(eq - *e) : strlen(*e);
        bool ok = false;
        for (const char *k : known) ok = ok || (strlen(k) == len && strncmp(*e, k, len) == 0);
        if (!ok) {
            print(2, "heapindex: unknown setting %.*s (known: HEAPINDEX_REPORT, HEAPINDEX_REPORT_TOP, HEAPINDEX_LOG, "
                     "HEAPINDEX_CHECK, HEAPINDEX_SYMBOLIZE); ignored\n", int(len), *e);
            ++problems;
        }
    }
    if (const char *v = getenv("HEAPINDEX_REPORT")) problems += !parse_output("HEAPINDEX_REPORT", v, &current.report);
    if (const char *v = getenv("HEAPINDEX_LOG")) problems += !parse_output("HEAPINDEX_LOG", v, &current.log);
    if (const char *v = getenv("HEAPINDEX_REPORT_TOP")) {
        char *end;
        errno = 0;
        const unsigned long n = strtoul(v, &end, 10);
        if (*v < '0' || *v > '9' || *end != '\0' || errno != 0 || n > 1000000) {
            print(2, "heapindex: HEAPINDEX_REPORT_TOP='%s' is not a number of sites from 0 (all) to 1000000; "
                     "using the default, %u\n", v, current.report_top);
            ++problems;
        } else {
            current.report_top = unsigned(n);
        }
    }
    if (const char *v = getenv("HEAPINDEX_CHECK")) {
        if (strcmp(v, "exit") == 0) {
            current.check_at_exit = true;
        } else if (strcmp(v, "off") != 0) {
            print(2, "heapindex: HEAPINDEX_CHECK='%s' is not off or exit; using the default, off\n", v);
            ++problems;
        }
    }
    if (const char *v = getenv("HEAPINDEX_SYMBOLIZE")) {
        if (strcmp(v, "libdw") == 0) {
            current.symbolizer = settings_t::libdw;
        } else if (strcmp(v, "dladdr") == 0) {
            current.symbolizer = settings_t::dladdr_only;
        } else if (strcmp(v, "off") == 0) {
            current.symbolizer = settings_t::none;
        } else {
            print(2, "heapindex: HEAPINDEX_SYMBOLIZE='%s' is not libdw, dladdr or off; using the default, libdw\n", v);
            ++problems;
        }
    }
    errno = saved;
    return problems;
}

int open_output(const settings_t::output &o) {
    if (o.kind == settings_t::output::off) return -1;
    if (o.kind == settings_t::output::to_stderr) return 2;
    char path[sizeof o.path + 32];
    expand_output_path(o.path, path, sizeof path);
    const int saved = errno;
    const int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
        const char *why = strerrorname_np(errno);
        print(2, "heapindex: cannot open '%s' (%s); writing to stderr instead\n", path, why ? why : "?");
        errno = saved;
        return 2;
    }
    errno = saved;
    return fd;
}

void close_output(int fd) {
    if (fd > 2) {
        const int saved = errno;
        close(fd);
        errno = saved;
    }
}

}  // namespace mallochooks::heapindex
