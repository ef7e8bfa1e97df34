// SPDX-License-Identifier: MIT
// Parsing and validation of the HEAPINDEX_* settings (see settings.h), and opening the outputs they name
// (libmallochooks/output.h does the opening).  Messages name the variable, the value and what happens
// instead; errno values are printed by name (strerrorname_np translates nothing and takes no lock, unlike
// strerror: see docs/events.md).
#include "index/settings.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "index/profile.h"
#include "libmallochooks/output.h"

extern "C" char **environ;

namespace mallochooks::heapindex {

namespace {

// The per-process files' directory is filled in by load_settings (HEAPINDEX_DIR, else TMPDIR or /tmp).
constinit settings_t current = {
    {output_spec::off, {}}, 25, {output_spec::to_stderr, {}}, false, settings_t::libdw, 10000, false, false, 0,
};

const char *const known[] = {"HEAPINDEX_REPORT", "HEAPINDEX_REPORT_TOP", "HEAPINDEX_LOG", "HEAPINDEX_CHECK",
                             "HEAPINDEX_SYMBOLIZE", "HEAPINDEX_SYMBOLIZE_TIMEOUT", "HEAPINDEX_DIR",
                             "HEAPINDEX_LEAKS", "HEAPINDEX_LEAKS_EXITCODE"};

bool parse_output(const char *name, const char *value, output_spec *out) {
    if (mallochooks::parse_output(value, out)) return true;
    print(program_stderr, "heapindex: %s='%s' is not off, stderr, file or a file path (at most %zu bytes); using the "
                          "default\n", name, value, sizeof out->path - 1);
    return false;
}

}  // namespace

const settings_t &settings() { return current; }

int load_settings() {
    const int saved = errno;
    int problems = 0;
    if (secure_mode()) {  // no setting is read: heap errors to stderr, nothing else written (see settings.h)
        current.secure = true;
        return 0;
    }
    char dir[sizeof current.report.path];
    default_output_dir(getenv("TMPDIR"), dir, sizeof dir);
    for (char **e = environ; e != nullptr && *e != nullptr; ++e) {
        if (strncmp(*e, "HEAPINDEX_", 10) != 0) continue;
        const char *eq = strchr(*e, '=');
        const size_t len = eq ? size_t(eq - *e) : strlen(*e);
        bool ok = false;
        for (const char *k : known) ok = ok || (strlen(k) == len && strncmp(*e, k, len) == 0);
        ok = ok || profile::is_setting(*e, len);
        if (!ok) {
            print(program_stderr, "heapindex: unknown setting %.*s (known: HEAPINDEX_REPORT, HEAPINDEX_REPORT_TOP, "
                                  "HEAPINDEX_LOG, HEAPINDEX_DIR, HEAPINDEX_CHECK, HEAPINDEX_SYMBOLIZE, "
                                  "HEAPINDEX_SYMBOLIZE_TIMEOUT, HEAPINDEX_LEAKS, HEAPINDEX_LEAKS_EXITCODE, %s); ignored\n", int(len), *e, profile::setting_names());
            ++problems;
        }
    }
    if (const char *v = getenv("HEAPINDEX_REPORT")) {
        // A list: profile outputs (by suffix, profile.h) and at most one text report.
        char text[sizeof current.report.path];
        problems += profile::take_report_outputs(v, text, sizeof text);
        if (text[0] != '\0' || *v == '\0') problems += !parse_output("HEAPINDEX_REPORT", text, &current.report);
    }
    problems += profile::load_settings();
    if (const char *v = getenv("HEAPINDEX_LOG")) problems += !parse_output("HEAPINDEX_LOG", v, &current.log);
    if (const char *v = getenv("HEAPINDEX_REPORT_TOP")) {
        char *end;
        errno = 0;
        const unsigned long n = strtoul(v, &end, 10);
        if (*v < '0' || *v > '9' || *end != '\0' || errno != 0 || n > 1000000) {
            print(program_stderr, "heapindex: HEAPINDEX_REPORT_TOP='%s' is not a number of sites from 0 (all) to 1000000; "
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
            print(program_stderr, "heapindex: HEAPINDEX_CHECK='%s' is not off or exit; using the default, off\n", v);
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
            print(program_stderr, "heapindex: HEAPINDEX_SYMBOLIZE='%s' is not libdw, dladdr or off; using the default, libdw\n", v);
            ++problems;
        }
    }
    if (const char *v = getenv("HEAPINDEX_SYMBOLIZE_TIMEOUT")) {
        char *end;
        errno = 0;
        const double secs = strtod(v, &end);
        if (*v < '0' || *v > '9' || *end != '\0' || errno != 0 || !(secs <= 3600)) {
            print(program_stderr, "heapindex: HEAPINDEX_SYMBOLIZE_TIMEOUT='%s' is not a number of seconds from 0 to 3600; "
                                  "using the default, %g\n", v, current.symbolize_ms / 1000.0);
            ++problems;
        } else {
            current.symbolize_ms = unsigned(secs * 1000 + 0.5);
        }
    }
    if (const char *v = getenv("HEAPINDEX_DIR")) {
        if (*v == '\0' || strlen(v) >= sizeof dir) {
            print(program_stderr, "heapindex: HEAPINDEX_DIR='%s' is not a directory path (at most %zu bytes); using "
                                  "the default, %s\n", v, sizeof dir - 1, dir);
            ++problems;
        } else {
            strcpy(dir, v);
        }
    }
    if (current.report.kind == output_spec::per_process) strcpy(current.report.path, dir);
    if (current.log.kind == output_spec::per_process) strcpy(current.log.path, dir);
    if (const char *v = getenv("HEAPINDEX_LEAKS")) {
        if (strcmp(v, "exit") == 0) {
            current.leaks_at_exit = true;
        } else if (strcmp(v, "off") != 0) {
            print(program_stderr, "heapindex: HEAPINDEX_LEAKS='%s' is not off or exit; using the default, off\n", v);
            ++problems;
        }
    }
    if (const char *v = getenv("HEAPINDEX_LEAKS_EXITCODE")) {
        char *end;
        errno = 0;
        const long n = strtol(v, &end, 10);
        if (*v < '0' || *v > '9' || *end != '\0' || errno != 0 || n > 255) {
            print(program_stderr, "heapindex: HEAPINDEX_LEAKS_EXITCODE='%s' is not an exit status from 0 (unchanged) to 255; "
                     "using the default, 0\n", v);
            ++problems;
        } else {
            current.leaks_exitcode = int(n);
        }
    }
    errno = saved;
    return problems;
}

int open_output(const output_spec &o, const char *what) {
    char path[sizeof o.path + 128];
    const char *why;
    const int fd = mallochooks::open_output(o, "heapindex", path, sizeof path, &why);
    if (fd == -1 && why != nullptr) {
        print(program_stderr, "heapindex: cannot open '%s' (%s); writing to stderr instead\n", path, why);
        return program_stderr;
    }
    // A file per process, named by the library: say where it is, but only to a person at a terminal.
    if (fd >= 0 && o.kind == output_spec::per_process && what != nullptr && stderr_is_terminal())
        print(program_stderr, "heapindex: %s of %d in %s\n", what, int(getpid()), path);
    return fd;
}

}  // namespace mallochooks::heapindex
