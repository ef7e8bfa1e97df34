// SPDX-License-Identifier: MIT
// Running the underlying compiler: replacing allocscc by it (every invocation that does not link), running
// it and waiting (the steps of a link), capturing its output (-print-search-dirs).  While allocscc waits,
// SIGINT/SIGTERM/SIGHUP are forwarded to the child and remembered, so that the private temporary directory
// is removed before allocscc dies of the same signal (make -j interrupted keeps no litter).
#ifndef MALLOCHOOKS_COMPILERWRAPPER_PROCESS_H
#define MALLOCHOOKS_COMPILERWRAPPER_PROCESS_H

#include <stdexcept>
#include <string>
#include <vector>

namespace mallochooks::allocscc {

// The underlying compiler could not be started at all (not found, not executable).
struct spawn_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Replaces this process by argv (searched in PATH).  Returns only by throwing spawn_error.
[[noreturn]] void exec_replacing(const std::vector<std::string> &argv);

// Runs argv and returns its exit status as a shell would report it (128 + signal when killed).
int run(const std::vector<std::string> &argv);

// Runs argv with stdout captured; stderr passes through.  Returns its exit status; `out` gets stdout.
int capture(const std::vector<std::string> &argv, std::string &out);

// The signal that arrived while a child ran (0 if none).  The caller cleans up and then calls
// die_of_pending_signal().
int pending_signal();
void die_of_pending_signal();

// Where `program` would be found in PATH ("" when it is not), as execvp would search.
std::string find_in_path(const std::string &program);

}  // namespace mallochooks::allocscc

#endif
