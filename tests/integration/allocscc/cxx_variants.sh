#!/bin/bash
# SPDX-License-Identifier: MIT
# Every C++ new/delete variant (programs/cxx/variants.cc) under the preloaded tools and built with
# allocsc++ (issue 14's fixture), with the operators libstdc++'s, the program's own over libc's malloc,
# and the program's own over its own allocator (which also defines malloc: wrapdl), and with
# -static-libstdc++ and no -g:
#   - the program prints the same with and without a tool (its own operators are each called once per
#     call: a tool never changes what a program does);
#   - under libheapindex.so: no heap error; each leaked chunk's site is its line in variants.cc, in the
#     program, never libstdc++; names demangled (cxxv::leak_all(), never _ZN...);
#   - under libmalloctrace.so: the 17 allocations and 17 frees of `pairs` all counted on the program
#     (frees on the same object as their allocations: libstdc++'s operator delete used to name the
#     program, its operator new libstdc++);
#   - std::bad_alloc from a throwing new of 2^62 bytes is caught, the nothrow forms return null, and the
#     hooks still see this thread's allocations afterwards (the exit report indexes stdio's buffer,
#     allocated after the exception).
# Usage: cxx_variants.sh ALLOCSCC ALLOCSCXX CC CXX SOURCE_DIR RUNTIME_DIR LIBHEAPINDEX LIBMALLOCTRACE
. "$(dirname "$0")/common.sh"
HEAPINDEX=$7 MALLOCTRACE=$8
SRC_FILE=$SRC/programs/cxx/variants.cc
# name | how it is built (C++17 for align_val_t, and sized deallocation, which clang 14 leaves off)
std="-std=c++17 -fsized-deallocation"
builds=("plain|$CXX_UNDER $std -O0 -g"
        "allocsc++|$ALLOCSCXX $std -O0 -g"
        "own operators|$ALLOCSCXX $std -O0 -g -DOWN_OPERATORS"
        "own allocator|$ALLOCSCXX $std -O0 -g -DOWN_ALLOCATOR"
        "static libstdc++, no -g|$ALLOCSCXX $std -O0 -static-libstdc++")
n=0
for b in "${builds[@]}"; do
  IFS='|' read -r what cmd <<<"$b"
  n=$((n + 1)); prog=./v$n
  # shellcheck disable=SC2086
  if ! $cmd "$SRC_FILE" -o $prog 2>build.log; then fail "$what: build"; cat build.log; continue; fi
  for c in pairs leaks bad-alloc; do
    $prog $c >ref.$c 2>&1 || fail "$what: $c exits $? without a tool: $(cat ref.$c)"
  done
  check "$what: pairs runs" grep -q "pairs: 17 allocations released" ref.pairs
  check "$what: bad-alloc: both std::bad_alloc caught, nothrow null" grep -q "bad-alloc: 2 std::bad_alloc caught, nothrow: null" ref.bad-alloc

  # The heap index.
  for c in pairs leaks bad-alloc; do
    rm -f log.$c report.$c
    LD_PRELOAD=$HEAPINDEX HEAPINDEX_LOG=$WORK/log.$c HEAPINDEX_REPORT=$WORK/report.$c $prog $c >out.$c 2>err.$c
    check "$what: $c under the index prints what it prints without" cmp -s ref.$c out.$c
    if [ -s log.$c ]; then fail "$what: $c: heap errors under the index"; cat log.$c; else pass "$what: $c: no heap error"; fi
  done
  missing=
  while IFS=: read -r line _; do
    if [ "$what" = "static libstdc++, no -g" ]; then site='cxxv::leak_all\(\)\+0x[0-9a-f]+'; else site="cxxv::leak_all\\(\\) \\(variants.cc:$line\\)"; fi
    # each leak is 1000 + N bytes (the own operators over aligned_alloc round the aligned ones up)
    grep -Eq "^heapindex\[[0-9]+\]: +10[0-9][0-9] +1  $site in .*/v$n\$" report.leaks || missing="$missing $line"
  done < <(grep -n "// LEAK:" "$SRC_FILE")
  if [ -z "$missing" ] && [ "$(grep -Ec ' 10[0-9][0-9] +1  cxxv::leak_all' report.leaks)" = 8 ]; then
    pass "$what: the 8 leaks' sites are their lines in the caller"
  else
    fail "$what: leak sites (missing lines:$missing)"; cat report.leaks
  fi
  check "$what: names demangled in the report" bash -c "! grep -q '_ZN' report.leaks"
  check "$what: after std::bad_alloc the thread's allocations are still indexed (stdio's buffer)" \
    grep -q "_IO_file_doallocate" report.bad-alloc

  # The tracer: allocations and frees of pairs on the program.
  rm -f trace
  LD_PRELOAD=$MALLOCTRACE MALLOCTRACE_OUTPUT=$WORK/trace $prog pairs >out.trace 2>&1
  check "$what: pairs under the tracer prints what it prints without" cmp -s ref.pairs out.trace
  row=$(grep -E "^malloctrace\[[0-9]+\]: +\./v$n +" trace)
  read -r allocs frees <<<"$(awk '{print $3, $4}' <<<"$row")"
  # With libstdc++ linked in, its emergency pool (allocated at start-up) is the program's too.
  extra=0; [ "$what" = "static libstdc++, no -g" ] && extra=1
  if [ "$allocs" = $((17 + extra)) ] && [ "$frees" = 17 ]; then
    pass "$what: the tracer counts 17 allocations and 17 frees on the program"
  else
    fail "$what: tracer's row for the program: '$row'"; cat trace
  fi
  check "$what: no C++ allocation or free counted on libstdc++" \
    bash -c "! grep -E 'libstdc\+\+\.so[^ ]* +[0-9]+ +[1-9]' '$WORK/trace'"
done
finish
