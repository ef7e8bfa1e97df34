#!/bin/bash
# SPDX-License-Identifier: MIT
# A limit on address space (ulimit -v, RLIMIT_AS) at which a program runs without the index, it runs at
# with the index too, allowing 4 MiB for the library itself (docs/heapindex.md, "Memory"): /bin/ls,
# python3, one large malloc, rounds of short threads; the output must be the same.  Past what the limit
# leaves the index, it goes on unindexed: one warning, the count in heapindex_stats, heapindex_check
# says so and stays sound.  Usage: as_limit.sh AS_LIMIT_PROGRAM LIBHEAPINDEX
set -u
prog=$1 lib=$2
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
status=0
allowance=4096  # KiB: the library's own mapping (code, data, its tables)

# run NAME LIMIT_KIB PRELOAD COMMAND...: exit status, stdout in $tmp/NAME.out, stderr in $tmp/NAME.err
run() {
  local name=$1 limit=$2 preload=$3; shift 3
  (ulimit -v "$limit" && LD_PRELOAD=$preload "$@") >"$tmp/$name.out" 2>"$tmp/$name.err"
}

# same LEVEL_KIB NAME COMMAND...: where it runs alone, it runs under the index with the same output.
same() {
  local level=$1 name=$2; shift 2
  if ! run "$name.plain" "$level" "" "$@"; then
    echo "as_limit: $name at ${level} KiB: fails without the index too (not a case)"; return
  fi
  if ! run "$name.index" $((level + allowance)) "$lib" "$@"; then
    echo "as_limit: $name at ${level} KiB (+${allowance}): fails under the index:"; head -5 "$tmp/$name.index.out" "$tmp/$name.index.err"
    status=1; return
  fi
  if ! cmp -s "$tmp/$name.plain.out" "$tmp/$name.index.out"; then
    echo "as_limit: $name at ${level} KiB: output differs under the index:"; diff "$tmp/$name.plain.out" "$tmp/$name.index.out" | head -5
    status=1; return
  fi
  echo "as_limit: $name at ${level} KiB: runs under the index too$(grep -q 'cannot map more memory' "$tmp/$name.index.err" && echo ' (partly unindexed)')"
}

cases=0
for level in 12000 16000 24000 64000 512000 1800000 8000000; do
  same $level "ls-$level" /bin/ls -l /usr/include/valgrind
done
for level in 512000 1000000; do
  same $level "python-$level" /usr/bin/python3 -c 'import json; print(len(json.dumps([str(i) for i in range(200000)])))'
done
same 8000000 large-3000 "$prog" large 3000
same 4000000 large-3000-4g "$prog" large 3000
same 1000000 threads "$prog" threads 50
same 400000 threads-400m "$prog" threads 30

# Past the index's share: a program that fills the address space with small chunks until malloc fails.
if run fill 200000 "$lib" "$prog" fill; then
  warnings=$(grep -c 'cannot map more memory' "$tmp/fill.err")
  if [ "$warnings" -ne 1 ]; then
    echo "as_limit: fill: $warnings warnings about the index's memory, not one"; status=1
  elif ! grep -Eq 'unindexed [1-9]' "$tmp/fill.out"; then
    echo "as_limit: fill: no chunk counted as unindexed:"; cat "$tmp/fill.out"; status=1
  elif ! grep -q 'were not indexed' "$tmp/fill.err"; then
    echo "as_limit: fill: heapindex_check does not say chunks were not indexed"; status=1
  elif ! grep -q 'check: 0 problems; live chunks after freeing' "$tmp/fill.out"; then
    echo "as_limit: fill: the check found problems:"; cat "$tmp/fill.out" "$tmp/fill.err" | head; status=1
  else
    echo "as_limit: fill at 200000 KiB: went on unindexed ($(head -1 "$tmp/fill.out")), one warning, check sound"
  fi
else
  echo "as_limit: fill: the program failed under the index:"; cat "$tmp/fill.out"; head -5 "$tmp/fill.err"; status=1
fi
exit $status
