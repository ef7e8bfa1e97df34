// SPDX-License-Identifier: MIT
// Finds allocscc's runtime (see runtime_dir.h).
#include "compilerwrapper/runtime_dir.h"

#include <filesystem>
#include <vector>

namespace mallochooks::allocscc {

namespace fs = std::filesystem;

namespace {

constexpr char runtime_file[] = "libmallochooks.a";

bool holds_runtime(const fs::path &dir) {
    std::error_code ec;
    return !dir.empty() && fs::is_regular_file(dir / runtime_file, ec);
}

// `to` seen from `from`, both absolute: "../lib/x86_64-linux-gnu".
fs::path relative(const std::string &to, const std::string &from) {
    return fs::path(to).lexically_normal().lexically_relative(fs::path(from).lexically_normal());
}

}  // namespace

runtime_layout built_layout() {
    return {MALLOCHOOKS_INSTALLED_BINDIR, MALLOCHOOKS_INSTALLED_LIBDIR, MALLOCHOOKS_BUILD_BINDIR,
            MALLOCHOOKS_BUILD_RUNTIME_DIR};
}

runtime_found find_runtime_dir(const std::string &override_dir, const std::string &exe, const runtime_layout &layout) {
    if (!override_dir.empty()) {
        if (holds_runtime(override_dir)) return {override_dir, "ALLOCSCC_RUNTIME_DIR"};
        throw runtime_not_found("ALLOCSCC_RUNTIME_DIR='" + override_dir + "' holds no " + runtime_file +
                                " (unset it to use the runtime installed or built with allocscc)");
    }
    const fs::path exe_dir = fs::path(exe).parent_path();
    const std::vector<std::pair<fs::path, std::string>> candidates = {
        {exe_dir / relative(layout.installed_libdir, layout.installed_bindir), "next to allocscc, as installed"},
        {exe_dir / relative(layout.build_runtime_dir, layout.build_bindir), "in allocscc's build tree"},
        {fs::path(layout.installed_libdir), "the configured install directory"},
    };
    std::string looked;
    for (const auto &[dir, how] : candidates) {
        const fs::path d = dir.lexically_normal();
        if (holds_runtime(d)) return {d.string(), how};
        looked += (looked.empty() ? "" : ", ") + d.string() + " (" + how + ")";
    }
    throw runtime_not_found(std::string("the runtime ") + runtime_file + " was not found; looked in " + looked +
                            ". Set ALLOCSCC_RUNTIME_DIR to the directory that holds it");
}

}  // namespace mallochooks::allocscc
