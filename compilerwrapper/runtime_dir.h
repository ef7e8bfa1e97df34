// SPDX-License-Identifier: MIT
// Where allocscc's runtime (libmallochooks.a) is, found as compiler drivers find their resource
// directories: relative to allocscc's own executable, so that an installed allocscc, one in a build tree
// and one in an installed tree that was moved (`meson install --destdir`, then the tree copied elsewhere)
// all link with the runtime built with them, with no setting.  ALLOCSCC_RUNTIME_DIR overrides the search.
// When the runtime is nowhere, the error names every place looked in and the variable.
#ifndef MALLOCHOOKS_COMPILERWRAPPER_RUNTIME_DIR_H
#define MALLOCHOOKS_COMPILERWRAPPER_RUNTIME_DIR_H

#include <stdexcept>
#include <string>

namespace mallochooks::allocscc {

struct runtime_not_found : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Where the build put things: the install's bindir and libdir (absolute), and in the build tree the
// directories of allocscc and of libmallochooks.a.
struct runtime_layout {
    std::string installed_bindir, installed_libdir;
    std::string build_bindir, build_runtime_dir;
};

// The layout this allocscc was built with.
runtime_layout built_layout();

// The directory that holds libmallochooks.a, with a word on how it was found.  `override_dir` is
// ALLOCSCC_RUNTIME_DIR ("" when unset); `exe` is allocscc's executable with symlinks resolved.  In
// order: the override (which must hold the runtime); exe's directory plus the install's bindir->libdir
// path (an install, where it was made or moved to); exe's directory plus the build tree's path from
// allocscc to the runtime; the install's libdir as configured.  Throws runtime_not_found.
struct runtime_found {
    std::string dir;
    std::string how;
};
runtime_found find_runtime_dir(const std::string &override_dir, const std::string &exe, const runtime_layout &layout);

}  // namespace mallochooks::allocscc

#endif
