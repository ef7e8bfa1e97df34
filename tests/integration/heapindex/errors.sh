#!/bin/bash
# SPDX-License-Identifier: MIT
# Heap errors are reported with the sites the index knows, each scenario in its own process (errors.c);
# what the process does next is the allocator's business (glibc aborts on most), so only the report is
# checked.  Usage: errors.sh ERRORS_PROGRAM LIBHEAPINDEX
set -u
prog=$1 lib=$2
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
status=0

# expect CASE PATTERN...: every extended regular expression must match a line of the report.
expect() {
  local case=$1; shift
  # In a subshell, so that the shell's "Aborted" notice goes with it.
  (LD_PRELOAD=$lib HEAPINDEX_LOG="$tmp/$case.log" "$prog" "$case" >"$tmp/$case.out" 2>"$tmp/$case.err"; exit $?) 2>/dev/null
  local rc=$? missing=0
  for pattern in "$@"; do
    if ! cat "$tmp/$case.log" "$tmp/$case.err" "$tmp/$case.out" 2>/dev/null | grep -Eq -- "$pattern"; then
      echo "errors: $case: no line matches '$pattern'"; missing=1
    fi
  done
  if [ $missing -ne 0 ]; then
    echo "--- report ($case, exit $rc):"; cat "$tmp/$case.log" "$tmp/$case.err" "$tmp/$case.out" 2>/dev/null | head -20; status=1
  else
    echo "errors: $case reported as expected (exit $rc)"
  fi
}

site='0x[0-9a-f]+ '
expect overflow \
  "check: trailer of chunk 0x[0-9a-f]+ \(40 bytes, seq [0-9]+\) overwritten" \
  "heap overflow: the trailer after chunk 0x[0-9a-f]+ \(at offset [0-9]+\) was overwritten; found at free" \
  "allocated at +${site}site_alloc\+" \
  "detected at +${site}site_first_free\+" \
  "overflow: check found [1-9][0-9]* problems"
expect double-free \
  "double free: free\(0x[0-9a-f]+\) of a chunk already freed" \
  "chunk 0x[0-9a-f]+, 24 bytes, seq [0-9]+, thread [0-9]+" \
  "allocated at +${site}site_alloc\+" \
  "first freed at +${site}site_first_free\+" \
  "freed again at +${site}site_second_free\+"
expect double-free-later \
  "double free: free\(0x[0-9a-f]+\)" "allocated at +${site}site_alloc\+" \
  "first freed at +${site}site_first_free\+" "freed again at +${site}site_second_free\+"
expect realloc-after-free \
  "double free: realloc\(0x[0-9a-f]+\)" "first freed at +${site}site_first_free\+" \
  "freed again at +${site}site_realloc\+"
expect interior \
  "invalid free\(0x[0-9a-f]+\): 16 bytes inside a live chunk, not its start" \
  "chunk 0x[0-9a-f]+, 100 bytes" "allocated at +${site}site_alloc\+" "called at +${site}site_second_free\+"
expect wild \
  "invalid free\(0x[0-9a-f]+\): not a chunk this process allocated" "called at +${site}site_second_free\+"
expect client-double-free \
  "double free: heapindex_notify_free\(0x[0-9a-f]+\)" "first freed at +${site}site_notify_free\+" \
  "client: 1 double frees counted"

# A correct program gets no report at all.
LD_PRELOAD=$lib HEAPINDEX_LOG="$tmp/clean.log" "$prog" none >/dev/null 2>&1
if [ -s "$tmp/clean.log" ]; then echo "errors: a run without heap errors reported:"; cat "$tmp/clean.log"; status=1; fi
exit $status
