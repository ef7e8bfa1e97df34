// SPDX-License-Identifier: MIT
// allocscc and allocsc++: a compiler driver that behaves exactly like the underlying one (ALLOCSCC_CC,
// ALLOCSCC_CXX) for everything that does not link -- it replaces itself by the compiler with the
// original arguments -- and links with hooks (link_step.h).  Which of the two it is comes from the name
// it is called by.  Settings and their errors: settings.h.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "compilerwrapper/command_args.h"
#include "compilerwrapper/link_line.h"
#include "compilerwrapper/link_step.h"
#include "compilerwrapper/process.h"
#include "compilerwrapper/settings.h"

extern char **environ;

namespace ac = mallochooks::allocscc;

namespace {

int fail(const std::string &message, int status = 1) {
    std::cerr << "allocscc: error: " << message << "\n";
    return status;
}

// The underlying compiler must exist and must not be allocscc itself (a loop that would never end).
std::string check_compiler(const ac::settings &config) {
    const std::string &name = config.compiler[0];
    std::string path = ac::find_in_path(name);
    const std::string what = std::string(config.lang == ac::language::cxx ? "C++" : "C") + " compiler '" + name +
                             "' (" + config.compiler_variable + ")";
    if (path.empty()) return "the " + what + " was not found; set " + config.compiler_variable + " to a compiler driver";
    std::error_code ec;
    if (std::filesystem::equivalent(path, "/proc/self/exe", ec) && !ec)
        return "the " + what + " is allocscc itself; set " + config.compiler_variable + " to the real compiler";
    return "";
}

}  // namespace

int main(int argc, char **argv) {
    ac::command_args args;
    ac::settings config;
    try {
        args = ac::read_command_args(std::vector<std::string>(argv + 1, argv + argc));
        config = ac::read_settings(environ, ac::language_from_name(argv[0]), args.fns_files);
    } catch (const std::exception &e) {
        return fail(e.what());
    }
    if (std::string problem = check_compiler(config); !problem.empty()) return fail(problem, 127);

    const ac::link_line line = ac::read_link_line(args.expanded);
    if (!line.links) {
        std::vector<std::string> argv2 = config.compiler;
        argv2.insert(argv2.end(), args.for_compiler.begin(), args.for_compiler.end());
        if (config.verbose) std::cerr << "allocscc: not a link (" << line.reason << "): running the compiler as it is\n";
        try {
            ac::exec_replacing(argv2);
        } catch (const std::exception &e) {
            return fail(e.what(), 127);
        }
    }
    try {
        return ac::link(config, line);
    } catch (const ac::spawn_error &e) {
        return fail(e.what(), 127);
    } catch (const std::exception &e) {
        return fail(e.what());
    }
}
