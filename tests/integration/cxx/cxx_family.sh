#!/bin/bash
# SPDX-License-Identifier: MIT
# C++'s allocation functions under libheapindex.so (cxx_family.cc): every variant indexed with its kind;
# sites in the caller's file and line (the exit report), not in libstdc++; mismatched releases reported
# with both sites; std::bad_alloc after the new_handler loop; nothrow new returning null.
# Usage: cxx_family.sh PROGRAM SOURCE LIBHEAPINDEX
set -u
prog=$1 src=$2 lib=$3
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
status=0
fail() { echo "cxx-family: $*"; status=1; }
run() {  # run CASE [VAR=value...]: output in $tmp/CASE.{out,err,log}
  local case=$1; shift
  (env "$@" LD_PRELOAD="$lib" HEAPINDEX_LOG="$tmp/$case.log" "$prog" "$case" >"$tmp/$case.out" 2>"$tmp/$case.err"; exit $?) 2>/dev/null
}

run variants; rc=$?
[ $rc -eq 0 ] && grep -q "every new/delete variant indexed" "$tmp/variants.out" ||
  fail "variants (exit $rc): $(cat "$tmp/variants.out" "$tmp/variants.err")"
[ -s "$tmp/variants.log" ] && fail "variants: heap errors reported: $(cat "$tmp/variants.log")"

run bad-alloc; rc=$?
grep -q "std::bad_alloc caught after 2 new_handler calls" "$tmp/bad-alloc.out" && grep -q "nothrow: null" "$tmp/bad-alloc.out" &&
  [ $rc -eq 0 ] || fail "bad-alloc (exit $rc): $(cat "$tmp/bad-alloc.out" "$tmp/bad-alloc.err")"

# The exit report: each leaked chunk at its line of the source (SITE:leak), 1000 bytes each.
run leaks HEAPINDEX_REPORT="$tmp/report"; rc=$?
[ $rc -eq 0 ] || fail "leaks exited $rc: $(cat "$tmp/leaks.err")"
base=$(basename "$src")
for line in $(grep -n "SITE:leak" "$src" | cut -d: -f1); do
  grep -Eq "^heapindex\[[0-9]+\]: +1000 +1  .*\($base:$line\) in .*$(basename "$prog")\$" "$tmp/report" || fail "report has no 1000-byte chunk at $base:$line: $(cat "$tmp/report")"
done
grep -E " 1000 +1  " "$tmp/report" | grep -q "libstdc++" && fail "report names libstdc++ as a site: $(cat "$tmp/report")"

site='0x[0-9a-f]+ '
mismatch() {  # mismatch CASE RELEASE ALLOCATOR
  local case=$1 release=$2 allocator=$3
  run "$case"
  local text; text=$(cat "$tmp/$case.log" 2>/dev/null)
  echo "$text" | grep -Eq "alloc-dealloc mismatch: $release\(0x[0-9a-f]+\) of a chunk allocated by $allocator\$" &&
    echo "$text" | grep -Eq "chunk 0x[0-9a-f]+, 32 bytes, seq [0-9]+, thread [0-9]+" &&
    echo "$text" | grep -Eq "allocated at +${site}cxx_mismatch\+" &&
    echo "$text" | grep -Eq "released at +${site}cxx_mismatch\+" &&
    grep -q "mismatch: $case done" "$tmp/$case.out" ||
    fail "$case: expected report of $release of a $allocator chunk, got: $text $(cat "$tmp/$case.out" "$tmp/$case.err")"
}
mismatch "newarray-delete" "operator delete" "operator new\[\]"
mismatch "malloc-delete" "operator delete" "malloc"
mismatch "new-free" "free" "operator new"
mismatch "new-deletearray" "operator delete\[\]" "operator new"
mismatch "aligned-delete" "operator delete" "operator new\(std::align_val_t\)"
mismatch "new-realloc" "realloc" "operator new"
# Sized delete with another size than the chunk's (issue 16, item 3): both sites, both sizes.
sized() {  # sized CASE RELEASE GIVEN SIZE
  local case=$1 release=$2 given=$3 size=$4
  run "$case"
  local text; text=$(cat "$tmp/$case.log" 2>/dev/null)
  echo "$text" | grep -Eq "new-delete size mismatch: $release\(0x[0-9a-f]+, $given\) of a chunk of $size bytes allocated by operator new\$" &&
    echo "$text" | grep -Eq "allocated at +${site}cxx_mismatch\+" &&
    echo "$text" | grep -Eq "released at +${site}cxx_mismatch\+" &&
    echo "$text" | grep -Eq "^heapindex\[[0-9]+\]: +released at +cxx_mismatch \(cxx_family\.cc:[0-9]+\)" &&
    grep -q "mismatch: $case done" "$tmp/$case.out" ||
    fail "$case: expected a size mismatch of $release($given) on a $size-byte chunk, got: $text $(cat "$tmp/$case.out" "$tmp/$case.err")"
}
sized sized-delete "operator delete" 48 32
sized base-delete "operator delete" 8 32

# With HEAPINDEX_STACKS, the full stacks: allocation and release, each from cxx_mismatch out to main.
run newarray-delete HEAPINDEX_STACKS=16
for label in "allocation stack:" "released by:"; do
  grep -A2 -F "$label" "$tmp/newarray-delete.log" | grep -Eq "#1 +0x[0-9a-f]+ main\+" &&
    grep -A1 -F "$label" "$tmp/newarray-delete.log" | grep -Eq "#0 +0x[0-9a-f]+ cxx_mismatch\+" ||
    fail "newarray-delete with stacks: no '$label' from cxx_mismatch to main: $(cat "$tmp/newarray-delete.log")"
done
[ $status -eq 0 ] && echo "cxx-family: variants, sites, bad_alloc, nothrow, 6 mismatches and 2 sized-delete mismatches as expected"
exit $status
