// SPDX-License-Identifier: MIT
// Guaranteed tail calls, for the few places where a call must leave no frame of ours behind because
// someone further down reads return addresses.  The one user: a preloaded library's C++ entry point
// that hands the call to the next definition (entry_points.h, MALLOCHOOKS_CXX_DELEGATE_).  libstdc++'s
// operator delete ends in a tail call to free, so free's return address is whatever called that
// operator delete: with our entry point's frame still there it is the tool, and link-time hooks in the
// program (adopted_layer.h) take a call from inside the tool for the tool forwarding a call it has
// already raised events for, and raise none (the placement matrix's exe cells failed that way in a
// -O0 build); without link-time hooks the free would be attributed to the tool.  The entry point must
// be as if it were not interposed at all, which only a jump gives.
//
//   MALLOCHOOKS_TAIL_CALL_FUNCTION  on the function making the call;
//   MALLOCHOOKS_TAIL_CALL           in front of `return f(args);` (same parameter and return types).
//
// clang (and gcc 15) guarantee the jump with musttail, also at -O0 (it needs -fno-exceptions in a
// noexcept function: the runtime libraries' flags).  gcc 12 has no such attribute: its sibling-call
// pass runs from -O1 with -foptimize-sibling-calls (on at -O2, -O3 and -Os), so an unoptimised build
// gets those two for the entry point alone (optimize attribute; an optimised build gets nothing, so as
// not to change how the chain inlines into it; meson.build adds -foptimize-sibling-calls to the runtime
// flags for -O1).  gcc's -Og runs no sibling-call pass at all: not supported.  The placement matrix runs
// a recorder compiled at -O0 in every build type (matrix-exe-recorder-O0, tests/linktime/meson.build).
#ifndef MALLOCHOOKS_TAIL_CALL_H
#define MALLOCHOOKS_TAIL_CALL_H

#if defined(__clang__)
#define MALLOCHOOKS_TAIL_CALL [[clang::musttail]]
#define MALLOCHOOKS_TAIL_CALL_FUNCTION
#elif defined(__GNUC__) && __GNUC__ >= 15
#define MALLOCHOOKS_TAIL_CALL __attribute__((musttail))
#define MALLOCHOOKS_TAIL_CALL_FUNCTION
#elif defined(__GNUC__)
#define MALLOCHOOKS_TAIL_CALL
#if defined(__OPTIMIZE__)
#define MALLOCHOOKS_TAIL_CALL_FUNCTION
#else
#define MALLOCHOOKS_TAIL_CALL_FUNCTION __attribute__((optimize("O1", "optimize-sibling-calls")))
#endif
#endif

#endif
