// SPDX-License-Identifier: MIT
// Finding the runtime relative to allocscc's executable (runtime_dir.h), over a made-up layout: an
// install where it was made and moved, a build tree, the override, and the message when it is nowhere.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include "compilerwrapper/runtime_dir.h"

namespace ac = mallochooks::allocscc;
namespace fs = std::filesystem;

TEST_CASE("the runtime is found relative to allocscc, installed, moved or in its build tree", "[allocscc][runtime]") {
    const fs::path root = fs::path(TEST_BUILD_DIR) / "runtime_layout";
    fs::remove_all(root);
    const ac::runtime_layout layout{"/opt/mh/bin", "/opt/mh/lib/x86_64-linux-gnu", "/src/build/compilerwrapper",
                                    "/src/build/backends/linktime"};
    auto make = [&](const fs::path &dir) {
        fs::create_directories(dir);
        std::ofstream(dir / "libmallochooks.a") << "!<arch>\n";
    };
    // An install moved to root/moved: bin/../lib/x86_64-linux-gnu.
    make(root / "moved/lib/x86_64-linux-gnu");
    auto moved = ac::find_runtime_dir("", (root / "moved/bin/allocscc").string(), layout);
    CHECK(moved.dir == (root / "moved/lib/x86_64-linux-gnu").string());
    CHECK(moved.how == "next to allocscc, as installed");
    // A build tree moved to root/tree: compilerwrapper/../backends/linktime.
    make(root / "tree/backends/linktime");
    auto tree = ac::find_runtime_dir("", (root / "tree/compilerwrapper/allocscc").string(), layout);
    CHECK(tree.dir == (root / "tree/backends/linktime").string());
    CHECK(tree.how == "in allocscc's build tree");
    // The override wins, and must hold the runtime.
    CHECK(ac::find_runtime_dir((root / "tree/backends/linktime").string(), (root / "moved/bin/allocscc").string(), layout).how ==
          "ALLOCSCC_RUNTIME_DIR");
    CHECK_THROWS_WITH(ac::find_runtime_dir((root / "moved").string(), "/x/allocscc", layout),
                      "ALLOCSCC_RUNTIME_DIR='" + (root / "moved").string() +
                          "' holds no libmallochooks.a (unset it to use the runtime installed or built with allocscc)");
    // Nowhere: every place looked in, and the variable.
    CHECK_THROWS_WITH(ac::find_runtime_dir("", (root / "lonely/bin/allocscc").string(), layout),
                      "the runtime libmallochooks.a was not found; looked in " + (root / "lonely/lib/x86_64-linux-gnu").string() +
                          " (next to allocscc, as installed), " + (root / "lonely/backends/linktime").string() +
                          " (in allocscc's build tree), /opt/mh/lib/x86_64-linux-gnu (the configured install directory). "
                          "Set ALLOCSCC_RUNTIME_DIR to the directory that holds it");
}
