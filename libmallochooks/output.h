// SPDX-License-Identifier: MIT
// Output for code that runs inside the program, possibly inside malloc: every message and report of the
// tools (libheapindex, libmalloctrace) goes through these.  A tool's output must never change what the
// program does or prints (docs/output.md):
//   - "stderr" means the stderr the process started with, duplicated when the tool first runs (to a high,
//     close-on-exec descriptor), not whatever fd 2 is later: a program that closes fd 2 and opens a data
//     file there does not get reports appended to its data.  Before each use the duplicate is checked to
//     still be the same file (a program may close every descriptor it does not know).
//   - a write never raises SIGPIPE in the program (SIGPIPE blocked around writes to a pipe, and one raised
//     by our write consumed; MSG_NOSIGNAL on sockets), and never blocks for long (O_NONBLOCK outputs wait
//     at most about a second in all).
//   - files are opened O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC, mode 0600, and refused unless they are a
//     regular file, a terminal or /dev/null (a FIFO with no reader would block the program forever);
//   - in secure mode (AT_SECURE: set-uid and the like) no file is written: only stderr.
// Messages are formatted into a stack buffer and written with write(2): no allocation, no stdio lock, no
// locale, safe in a signal handler or a forked child.
#ifndef MALLOCHOOKS_OUTPUT_H
#define MALLOCHOOKS_OUTPUT_H

#include <stddef.h>

namespace mallochooks {

// The descriptor value that stands for the process's original stderr in write_all and print.
inline constexpr int program_stderr = -2;

// Duplicate the process's stderr, once (idempotent, lock-free).  Call it as early as possible: the
// tool's first hook call and its constructor.  errno is kept.
void capture_stderr() __attribute__((visibility("hidden")));
// Whether the original stderr is a terminal (false when there is none).
bool stderr_is_terminal() __attribute__((visibility("hidden")));

// Secure mode (getauxval(AT_SECURE)): read no settings, write no files.
bool secure_mode() __attribute__((visibility("hidden")));

// Append all n bytes to fd (or program_stderr), retrying short writes and EINTR; gives up silently on
// any other error.  No SIGPIPE, bounded waiting (see the top).  errno is kept.
void write_all(int fd, const char *s, size_t n) __attribute__((visibility("hidden")));

// printf-style into a 2 KiB stack buffer (longer messages are truncated), then write_all.  fd -1: nothing.
void print(int fd, const char *fmt, ...) __attribute__((visibility("hidden"), format(printf, 2, 3)));

// Where a tool's output goes, as its setting says: off, "stderr" (the original stderr), "file" (a file
// per process in a directory: TOOL.PROGRAM.PID.txt), or a path ("%p" becomes the process id).
struct output_spec {
    enum kind_t : unsigned char { off, to_stderr, per_process, to_path } kind;
    char path[512];  // to_path: the path as given; per_process: the directory
};

// Parse a setting's value: "off", "stderr", "file" (the directory is filled in by the caller), or a
// path (non-empty, shorter than output_spec::path).  False when malformed.
bool parse_output(const char *value, output_spec *out) __attribute__((visibility("hidden")));

// The default directory of per-process files: `tmpdir` (the value of TMPDIR, or nullptr) when it is an
// absolute path, else /tmp.  Copied into out (n bytes).
void default_output_dir(const char *tmpdir, char *out, size_t n) __attribute__((visibility("hidden")));

// Open an output for appending.  Returns a descriptor for write_all and close_output: program_stderr for
// "stderr", -1 for off or when it cannot be opened (then *why says why, as a short phrase, and path_out
// holds the path tried).  path_out (n bytes) receives the file's path when one is opened.  `tool` names
// the per-process file.  Allocation-free; errno is kept.
int open_output(const output_spec &spec, const char *tool, char *path_out, size_t n, const char **why)
    __attribute__((visibility("hidden")));
void close_output(int fd) __attribute__((visibility("hidden")));

// An output kept open across writes (a stream of events): before each use, checked to still be the file
// it was (a program may close descriptors it does not know of and reuse the numbers).
struct kept_output {
    int fd = -1;
    unsigned long long dev = 0, ino = 0;
};
kept_output keep_output(int fd) __attribute__((visibility("hidden")));
// The descriptor to write to (program_stderr passes through), or -1 when it is not that file any more.
int kept_fd(const kept_output &k) __attribute__((visibility("hidden")));

}  // namespace mallochooks

#endif
