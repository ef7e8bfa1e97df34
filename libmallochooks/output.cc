// SPDX-License-Identifier: MIT
// The tools' output (see output.h): the original stderr, writes that never raise SIGPIPE nor block for
// long, and files opened safely.  Everything here is a system call on stack buffers: no allocation.
#include "libmallochooks/output.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <atomic>

#include "libmallochooks/output_path.h"

extern "C" char *program_invocation_short_name;

namespace mallochooks {

namespace {

// The duplicate of the original stderr: written once by the thread that moves `capture` from 0 to 1,
// read by others after they see 2.
std::atomic<int> capture{0};  // 0 not yet, 1 being made, 2 made
int saved_fd = -1;
dev_t saved_dev;
ino_t saved_ino;
bool saved_tty;

// The tools' own descriptors go high, out of the way of a program that expects open() to return the
// lowest free number (and of select()'s 1024 limit): 32 below min(RLIMIT_NOFILE, 1024).
int high_fd_floor() {
    rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 3;
    const rlim_t top = rl.rlim_cur < 1024 ? rl.rlim_cur : 1024;
    return top > 64 ? int(top) - 32 : 3;
}

int move_high(int fd) {
    const int high = fcntl(fd, F_DUPFD_CLOEXEC, high_fd_floor());
    if (high < 0) return fd;
    close(fd);
    return high;
}

bool same_file(int fd, dev_t dev, ino_t ino) {
    struct stat st;
    return fstat(fd, &st) == 0 && st.st_dev == dev && st.st_ino == ino;
}

// The descriptor that reaches the original stderr now, or -1.
int resolve_stderr() {
    capture_stderr();
    if (capture.load(std::memory_order_acquire) != 2) return 2;  // another thread is making it right now
    if (saved_fd < 0) return -1;                                  // the process started without a stderr
    if (same_file(saved_fd, saved_dev, saved_ino)) return saved_fd;
    if (same_file(2, saved_dev, saved_ino)) return 2;  // the program closed our duplicate, not fd 2
    return -1;
}

// A regular file, a terminal or /dev/null (the only character devices allowed).
bool acceptable_open(int fd, const struct stat &st) {
    if (S_ISREG(st.st_mode)) return true;
    if (!S_ISCHR(st.st_mode)) return false;
    return st.st_rdev == makedev(1, 3) || isatty(fd);
}

const char *refusal(mode_t mode) {
    if (S_ISLNK(mode)) return "a symbolic link (refused: outputs are opened without following links)";
    if (S_ISFIFO(mode)) return "a FIFO (only a regular file or a terminal is written to)";
    if (S_ISSOCK(mode)) return "a socket (only a regular file or a terminal is written to)";
    if (S_ISDIR(mode)) return "a directory";
    return "not a regular file or a terminal";
}

// PROGRAM in a per-process file name: the program's short name, else the executable's base name, made
// of safe characters only.
void program_name(char *out, size_t n) {
    char exe[256];
    const char *name = program_invocation_short_name;
    if (name == nullptr || *name == '\0') {
        const ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
        exe[len > 0 ? len : 0] = '\0';
        const char *slash = strrchr(exe, '/');
        name = slash ? slash + 1 : exe;
    }
    size_t i = 0;
    for (; name[i] != '\0' && i + 1 < n && i < 64; ++i) {
        const char c = name[i];
        const bool safe = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                          c == '_' || c == '-' || c == '+';
        out[i] = safe ? c : '_';
    }
    if (i == 0 && n > 1) out[i++] = '_';
    out[i] = '\0';
}

}  // namespace

void capture_stderr() {
    int expected = 0;
    if (capture.load(std::memory_order_acquire) != 0 ||
        !capture.compare_exchange_strong(expected, 1, std::memory_order_acq_rel))
        return;
    const int saved = errno;
    struct stat st;
    if (fstat(2, &st) == 0) {
        int fd = fcntl(2, F_DUPFD_CLOEXEC, high_fd_floor());
        if (fd < 0) fd = fcntl(2, F_DUPFD_CLOEXEC, 3);
        if (fd >= 0) {
            saved_fd = fd;
            saved_dev = st.st_dev;
            saved_ino = st.st_ino;
            saved_tty = isatty(fd);
        }
    }
    capture.store(2, std::memory_order_release);
    errno = saved;
}

bool stderr_is_terminal() {
    capture_stderr();
    return capture.load(std::memory_order_acquire) == 2 && saved_fd >= 0 && saved_tty;
}

bool secure_mode() { return getauxval(AT_SECURE) != 0; }

void write_all(int fd, const char *s, size_t n) {
    const int saved = errno;
    if (fd == program_stderr) fd = resolve_stderr();
    if (fd < 0) {
        errno = saved;
        return;
    }
    struct stat st;
    const bool known = fstat(fd, &st) == 0;
    const bool pipe = known && S_ISFIFO(st.st_mode), socket = known && S_ISSOCK(st.st_mode);
    // A write to a pipe without a reader raises SIGPIPE in the writing thread: block it around the write,
    // and take back the one our write raised, unless one was pending already (that one is the program's).
    sigset_t sigpipe, old;
    bool was_pending = false;
    if (pipe) {
        sigemptyset(&sigpipe);
        sigaddset(&sigpipe, SIGPIPE);
        pthread_sigmask(SIG_BLOCK, &sigpipe, &old);
        sigset_t pending;
        was_pending = sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE);
    }
    bool broken = false;
    int waited_ms = 0;
    while (n > 0) {
        const ssize_t w = socket ? send(fd, s, n, MSG_NOSIGNAL) : write(fd, s, n);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && waited_ms < 1000) {  // a non-blocking output
            pollfd p{fd, POLLOUT, 0};
            poll(&p, 1, 100);
            waited_ms += 100;
            continue;
        }
        if (w < 0 && errno == EPIPE) broken = true;
        if (w <= 0) break;
        s += w;
        n -= size_t(w);
    }
    if (pipe) {
        if (broken && !was_pending) {
            const timespec now{0, 0};
            sigtimedwait(&sigpipe, nullptr, &now);
        }
        pthread_sigmask(SIG_SETMASK, &old, nullptr);
    }
    errno = saved;
}

void print(int fd, const char *fmt, ...) {
    if (fd == -1) return;
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    const int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n > 0) write_all(fd, buf, size_t(n) < sizeof buf ? size_t(n) : sizeof buf - 1);
}

bool parse_output(const char *value, output_spec *out) {
    if (strcmp(value, "off") == 0) {
        out->kind = output_spec::off;
    } else if (strcmp(value, "stderr") == 0) {
        out->kind = output_spec::to_stderr;
    } else if (strcmp(value, "file") == 0) {
        out->kind = output_spec::per_process;
    } else if (*value == '\0' || strlen(value) >= sizeof out->path) {
        return false;
    } else {
        out->kind = output_spec::to_path;
        strcpy(out->path, value);
    }
    return true;
}

void default_output_dir(const char *tmp, char *out, size_t n) {
    snprintf(out, n, "%s", tmp != nullptr && tmp[0] == '/' && strlen(tmp) + 1 < n ? tmp : "/tmp");
}

int open_output(const output_spec &spec, const char *tool, char *path, size_t n, const char **why) {
    *why = nullptr;
    path[0] = '\0';
    if (spec.kind == output_spec::off) return -1;
    if (spec.kind == output_spec::to_stderr) return program_stderr;
    if (secure_mode()) {
        *why = "secure mode (set-uid or similar): no files are written";
        return -1;
    }
    const int saved = errno;
    if (spec.kind == output_spec::to_path) {
        expand_output_path(spec.path, path, n);
    } else {
        char prog[72];
        program_name(prog, sizeof prog);
        snprintf(path, n, "%s/%s.%s.%d.txt", spec.path, tool, prog, int(getpid()));
    }
    struct stat st{};
    // Refuse what is not a regular file or a character device before opening it: opening a FIFO for
    // writing would wait for a reader (O_NONBLOCK below covers the race with a path that changes).
    if (lstat(path, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISCHR(st.st_mode)) {
        *why = refusal(st.st_mode);
        errno = saved;
        return -1;
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY, 0600);
    if (fd < 0) {
        *why = errno == ELOOP ? refusal(S_IFLNK) : errno == ENXIO ? refusal(S_IFIFO) : strerrorname_np(errno);
        if (*why == nullptr) *why = "cannot open";
        errno = saved;
        return -1;
    }
    if (fstat(fd, &st) != 0 || !acceptable_open(fd, st)) {
        *why = refusal(st.st_mode);
        close(fd);
        errno = saved;
        return -1;
    }
    // In a shared directory (/tmp), a file someone else made for us to append to is not ours.
    if (spec.kind == output_spec::per_process && S_ISREG(st.st_mode) && st.st_uid != geteuid()) {
        *why = "owned by another user";
        close(fd);
        errno = saved;
        return -1;
    }
    // Opened: blocking writes from now on (a regular file or a terminal).
    const int flags = fcntl(fd, F_GETFL);
    if (flags >= 0) fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    fd = move_high(fd);
    errno = saved;
    return fd;
}

void close_output(int fd) {
    if (fd >= 0) {
        const int saved = errno;
        close(fd);
        errno = saved;
    }
}

kept_output keep_output(int fd) {
    kept_output k;
    k.fd = fd;
    struct stat st;
    const int saved = errno;
    if (fd >= 0 && fstat(fd, &st) == 0) k.dev = st.st_dev, k.ino = st.st_ino;
    errno = saved;
    return k;
}

int kept_fd(const kept_output &k) {
    if (k.fd < 0) return k.fd;
    const int saved = errno;
    const bool same = same_file(k.fd, dev_t(k.dev), ino_t(k.ino));
    errno = saved;
    return same ? k.fd : -1;
}

}  // namespace mallochooks
