// SPDX-License-Identifier: MIT
// The link flags of the link-time backends, written from the family list: what a compiler driver needs
// to link an output with libmallochooks.a (which the caller adds, as -lmallochooks, after its objects).
// The meson tests, `mallochooks-link-flags` and allocscc all get their flags from here.
//
//   wrap    --wrap=X for every family function X, and --undefined=__wrap_X: the entry points must be in the
//           link before the libraries the driver adds after the user's (libc.a under -static, libgcc_eh.a),
//           whose calls --wrap diverts to them too, even when the output's own files call no family function.
//   wrapdl  for every X the output's allocator defines (its object having been copied by mallochooks-alias):
//             --defsym=X=__mallochooks_wrapdl_X   every reference to X reaches our entry point
//             --undefined=__mallochooks_wrapdl_X  pull the entry points from the archive (see below)
//             --undefined=__mallochooks_real_X    pull the allocator's member, even if its archive comes
//                                                 first and the defsym has already given X a value
//           for every X the runtime calls that the allocator does not define:
//             --defsym=__mallochooks_real_X=__mallochooks_fallback_X  and  --undefined=<the fallback>
//           and, for a shared library without its own version script, --version-script=<a script that
//           keeps __mallochooks_wrapdl_X local> (the entry points need default visibility; wrapdl/entry.cc).
// bfd 2.40, gold and lld 14 all pull an archive member for a --defsym operand; the --undefined flags make
// that independent of the linker.  See docs/link-time.md for why each flag is there.
#ifndef MALLOCHOOKS_BACKENDS_LINK_FLAGS_H
#define MALLOCHOOKS_BACKENDS_LINK_FLAGS_H

#include <string>
#include <vector>

namespace mallochooks {

enum class link_backend { wrap, wrapdl };

struct link_request {
    link_backend backend = link_backend::wrap;
    // wrapdl: the family functions the output's allocator defines (names of MALLOCHOOKS_USER_API).
    std::vector<std::string> defined;
    // wrapdl, shared library without a version script of its own: the path of wrapdl-shared.map (installed
    // in <datadir>/mallochooks).  Empty: none (an executable, or a library with its own script, which then
    // decides what is exported; ld.bfd cannot combine two anonymous version scripts).
    std::string version_script;
};

struct link_flags_result {
    std::vector<std::string> flags;  // one compiler-driver argument each (-Wl,...)
    std::string error;               // empty on success
};

link_flags_result link_flags(const link_request &request);

}  // namespace mallochooks

#endif
