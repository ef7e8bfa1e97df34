// SPDX-License-Identifier: MIT
// Child processes for allocscc (see process.h): posix_spawnp, which reports a failed exec as an error
// code, so a missing compiler is told apart from a compiler that ran and failed.
#include "compilerwrapper/process.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

extern char **environ;

namespace mallochooks::allocscc {

namespace {

volatile sig_atomic_t received_signal = 0;
volatile pid_t running_child = 0;

void on_signal(int sig) {
    received_signal = sig;
    if (running_child > 0) kill(running_child, sig);
}

std::vector<char *> c_argv(const std::vector<std::string> &argv) {
    std::vector<char *> out;
    for (const std::string &a : argv) out.push_back(const_cast<char *>(a.c_str()));
    out.push_back(nullptr);
    return out;
}

int spawn_and_wait(const std::vector<std::string> &argv, posix_spawn_file_actions_t *actions) {
    static const int forwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    struct sigaction old[4];
    for (int i = 0; i < 4; ++i) sigaction(forwarded[i], &sa, &old[i]);

    pid_t pid;
    std::vector<char *> args = c_argv(argv);
    int err = posix_spawnp(&pid, args[0], actions, nullptr, args.data(), environ);
    if (err != 0) {
        for (int i = 0; i < 4; ++i) sigaction(forwarded[i], &old[i], nullptr);
        throw spawn_error("cannot run '" + argv[0] + "': " + std::strerror(err));
    }
    running_child = pid;
    if (received_signal != 0) kill(pid, received_signal);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    running_child = 0;
    for (int i = 0; i < 4; ++i) sigaction(forwarded[i], &old[i], nullptr);
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return 1;
}

}  // namespace

void exec_replacing(const std::vector<std::string> &argv) {
    std::vector<char *> args = c_argv(argv);
    execvp(args[0], args.data());
    throw spawn_error("cannot run '" + argv[0] + "': " + std::strerror(errno));
}

int run(const std::vector<std::string> &argv) { return spawn_and_wait(argv, nullptr); }

int capture(const std::vector<std::string> &argv, std::string &out) {
    char path[] = "/tmp/allocscc-capture-XXXXXX";
    const char *tmpdir = std::getenv("TMPDIR");
    std::string templ = std::string(tmpdir != nullptr && *tmpdir != '\0' ? tmpdir : "/tmp") + "/allocscc-capture-XXXXXX";
    std::vector<char> name(templ.begin(), templ.end());
    name.push_back('\0');
    int fd = mkstemp(name.data());
    if (fd < 0) {
        fd = mkstemp(path);
        if (fd < 0) throw std::runtime_error(std::string("cannot create a temporary file: ") + std::strerror(errno));
        name.assign(path, path + sizeof path);
    }
    unlink(name.data());  // nothing is left behind, whatever happens next
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fd, STDOUT_FILENO);
    int status;
    try {
        status = spawn_and_wait(argv, &actions);
    } catch (...) {
        posix_spawn_file_actions_destroy(&actions);
        close(fd);
        throw;
    }
    posix_spawn_file_actions_destroy(&actions);
    out.clear();
    lseek(fd, 0, SEEK_SET);
    char buf[4096];
    for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;) out.append(buf, static_cast<std::size_t>(n));
    close(fd);
    return status;
}

int pending_signal() { return received_signal; }

void die_of_pending_signal() {
    int sig = received_signal;
    if (sig == 0) return;
    signal(sig, SIG_DFL);
    raise(sig);
}

std::string find_in_path(const std::string &program) {
    auto executable = [](const std::string &p) {
        struct stat st;
        return stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && access(p.c_str(), X_OK) == 0;
    };
    if (program.find('/') != std::string::npos) return executable(program) ? program : "";
    const char *path = std::getenv("PATH");
    std::string list = path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin";
    std::size_t from = 0;
    for (std::size_t colon;; from = colon + 1) {
        colon = list.find(':', from);
        std::string dir = list.substr(from, colon == std::string::npos ? std::string::npos : colon - from);
        std::string candidate = (dir.empty() ? "." : dir) + "/" + program;
        if (executable(candidate)) return candidate;
        if (colon == std::string::npos) return "";
    }
}

}  // namespace mallochooks::allocscc
