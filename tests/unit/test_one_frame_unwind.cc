// SPDX-License-Identifier: MIT
// The one-frame unwinder against frames the compiler really made: a function whose CFA is rsp-based (no
// frame pointer) and one whose CFA is rbp-based (alloca forces a frame pointer), each calling a probe that
// plays the hook: from its own CFA and its caller's rbp it finds the caller's return address, which the
// function itself recorded with __builtin_return_address(0).
#include <catch2/catch.hpp>

#include <alloca.h>
#include <stdint.h>
#include <stdio.h>

#include "backends/linktime/one_frame_unwind.h"

namespace uw = mallochooks::unwind;

namespace {

const void *volatile unwound;
const void *volatile probe_return;  // the pc in the frame being unwound
const void *volatile expected;
volatile int sink;
volatile int dynamic_size = 32;  // read at run time: a constant alloca size becomes a plain stack slot

// The probe keeps a frame pointer (alloca), so the word at its frame address is the caller's rbp.
__attribute__((noinline)) void probe(int n) {
    volatile char *pad = static_cast<volatile char *>(alloca(static_cast<size_t>(n + dynamic_size)));
    pad[0] = 1;
    const uintptr_t cfa = reinterpret_cast<uintptr_t>(__builtin_dwarf_cfa());
    const uintptr_t caller_bp = *static_cast<const uintptr_t *>(__builtin_frame_address(0));
    probe_return = __builtin_return_address(0);
    unwound = uw::caller_of(probe_return, {cfa, caller_bp});
}

// No alloca: the CFA is rsp + N at the call.  It pushes something (a live value across the call) so N
// is not the trivial 8.
__attribute__((noinline)) int without_frame_pointer(int n) {
    expected = __builtin_return_address(0);
    int keep = sink + n;
    probe(16);
    return keep + sink;
}

__attribute__((noinline)) int with_frame_pointer(int n) {
    expected = __builtin_return_address(0);
    volatile char *buf = static_cast<volatile char *>(alloca(static_cast<size_t>(n + dynamic_size)));
    buf[0] = 2;
    probe(16);
    return buf[0] + sink;
}

}  // namespace

TEST_CASE("one frame up from a frame without a frame pointer", "[unwind]") {
    unwound = nullptr;
    sink = without_frame_pointer(3);
    REQUIRE(expected != nullptr);
    CHECK(unwound == expected);
    uw::frame_rules rules{};
    REQUIRE(uw::rules_at(probe_return, rules));
    CHECK(rules.cfa_register == 7);  // rsp
    CHECK(rules.cfa_offset > 8);
    CHECK(rules.ra_offset == -8);
}

TEST_CASE("one frame up from a frame with a frame pointer", "[unwind]") {
    unwound = nullptr;
    sink = with_frame_pointer(32);
    CHECK(unwound == expected);
    uw::frame_rules rules{};
    REQUIRE(uw::rules_at(probe_return, rules));
    CHECK(rules.cfa_register == 6);  // rbp
    CHECK(rules.cfa_offset == 16);
}

TEST_CASE("addresses outside this output's code are not unwound", "[unwind]") {
    int on_stack = 0;
    CHECK(uw::caller_of(&on_stack, {0, 0}) == nullptr);
    CHECK(uw::caller_of(reinterpret_cast<const void *>(&printf), {0, 0}) == nullptr);  // libc, another object
}
