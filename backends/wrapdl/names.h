/* SPDX-License-Identifier: MIT */
/*
 * The symbol names of the wrapdl backend, in one place: the runtime (entry points, terminal, fallbacks),
 * mallochooks-alias and the link flags are all written in terms of these.
 *
 * For each family function X that the output's own allocator defines:
 *   __mallochooks_real_X      a second, hidden name for the allocator's X, added by mallochooks-alias to
 *                             a copy of the object that defines X: the only way the original code stays
 *                             reachable once `--defsym X=...` has taken the name X (docs/link-time.md);
 *   __mallochooks_wrapdl_X    our entry point for X; `--defsym X=__mallochooks_wrapdl_X` makes every
 *                             reference to X, in this output or from other objects at run time, reach it.
 * For each X the terminal calls (MALLOCHOOKS_WRAPDL_CALLED) that the allocator does not define:
 *   __mallochooks_fallback_X  what `--defsym __mallochooks_real_X=__mallochooks_fallback_X` substitutes
 *                             (calloc = malloc + memset, memalign through posix_memalign or aligned_alloc,
 *                             usable size 0...: backends/wrapdl/fallbacks.cc).
 *
 * Plain preprocessor (like mallochooks/family.h), so host tools can include it too.
 */
#ifndef MALLOCHOOKS_BACKENDS_WRAPDL_NAMES_H
#define MALLOCHOOKS_BACKENDS_WRAPDL_NAMES_H

#include <boost/preprocessor/seq/transform.hpp>

#include "mallochooks/family.h"

#define MALLOCHOOKS_WRAPDL_REAL __mallochooks_real_
#define MALLOCHOOKS_WRAPDL_ENTRY __mallochooks_wrapdl_
#define MALLOCHOOKS_WRAPDL_FALLBACK __mallochooks_fallback_

/* The other two ways an allocator may offer aligned allocation, tried in this order by the memalign
 * fallback when the allocator has no memalign of its own. */
#define MALLOCHOOKS_WRAPDL_ALIGNED_ALTERNATIVES (posix_memalign)(aligned_alloc)

/* Every family function whose __mallochooks_real_ name the runtime refers to, so that each must be defined
 * by the allocator's alias or by a fallback: the underlying function of every hook (MALLOCHOOKS_HOOK_API's
 * fourth element), then the aligned alternatives.  A Boost.PP sequence of names. */
#define MALLOCHOOKS_WRAPDL_UNDERLYING_(s, data, e) MALLOCHOOKS_UNDERLYING(e)
#define MALLOCHOOKS_WRAPDL_CALLED \
    BOOST_PP_SEQ_TRANSFORM(MALLOCHOOKS_WRAPDL_UNDERLYING_, ~, MALLOCHOOKS_HOOK_API) MALLOCHOOKS_WRAPDL_ALIGNED_ALTERNATIVES

/* ... and C++'s operators, which the terminal calls when the output defines them (terminal.h): every name
 * of MALLOCHOOKS_CXX_USER_API, as a sequence of names. */
#define MALLOCHOOKS_WRAPDL_NAME_(s, data, e) MALLOCHOOKS_NAME(e)
#define MALLOCHOOKS_WRAPDL_CXX_CALLED BOOST_PP_SEQ_TRANSFORM(MALLOCHOOKS_WRAPDL_NAME_, ~, MALLOCHOOKS_CXX_USER_API)

#endif /* MALLOCHOOKS_BACKENDS_WRAPDL_NAMES_H */
