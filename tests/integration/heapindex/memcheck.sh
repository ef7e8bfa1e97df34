#!/bin/bash
# SPDX-License-Identifier: MIT
# valgrind's memcheck over libheapindex.so (docs/heapindex.md, "Under valgrind"): memcheck_target run
# under memcheck without the index and with it (LD_PRELOAD, --soname-synonyms=somalloc=nouserintercepts)
# must give the same leak summary and the same errors, the overflows reported at their lines, and the
# index must still report the clobbered trailer itself.  Without the soname option valgrind replaces the
# index's malloc: the index must say so.  Usage: memcheck.sh MEMCHECK_TARGET TARGET_SOURCE LIBHEAPINDEX
set -u
prog=$1 source=$2 lib=$3
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
status=0
fail() { echo "memcheck: $*"; status=1; }

vg=(valgrind --tool=memcheck --leak-check=full --soname-synonyms=somalloc=nouserintercepts)
"${vg[@]}" "$prog" >"$tmp/plain.out" 2>"$tmp/plain.err" || fail "the program failed under memcheck alone"
LD_PRELOAD=$lib HEAPINDEX_CHECK=exit "${vg[@]}" "$prog" >"$tmp/index.out" 2>"$tmp/index.err" ||
  fail "the program failed under memcheck with the index"

# The summary lines, without valgrind's pid prefix.
summary() { sed -n 's/^==[0-9]*== *//p' "$1" | grep -E '^(in use at exit|definitely lost|indirectly lost|possibly lost|still reachable|suppressed|ERROR SUMMARY):'; }
summary "$tmp/plain.err" >"$tmp/plain.sum"
summary "$tmp/index.err" >"$tmp/index.sum"
if [ "$(grep -c . "$tmp/plain.sum")" -ne 7 ]; then
  fail "memcheck alone printed no full summary"; cat "$tmp/plain.err"
elif ! cmp -s "$tmp/plain.sum" "$tmp/index.sum"; then
  fail "memcheck says different things with the index:"; diff "$tmp/plain.sum" "$tmp/index.sum"
else
  echo "memcheck: same heap and leak summary and error count with the index:"; sed 's/^/  /' "$tmp/index.sum"
fi
grep -q 'definitely lost: [1-9]' "$tmp/index.sum" || fail "no definite leak found (the index's records were scanned?)"

# Each overflow: an invalid write, at its line of the source, "N bytes after a block of size 20".
for n in 1 2; do
  line=$(grep -n "OVERFLOW $n" "$source" | cut -d: -f1)
  if grep -A1 'Invalid write of size 1' "$tmp/index.err" | grep -q "(memcheck_target.c:$line)"; then
    echo "memcheck: overflow $n reported at memcheck_target.c:$line"
  else
    fail "overflow $n (memcheck_target.c:$line) not reported as an invalid write there"
  fi
done
grep -q 'bytes after a block of size 20 alloc' "$tmp/index.err" || fail "the overflowed block is not described as 20 bytes"
grep -q 'heap overflow: the trailer after chunk' "$tmp/index.err" || fail "the index did not report the trailer itself"
grep -q 'check: sound' "$tmp/index.err" || fail "heapindex_check at exit is not sound"
grep -q '^done$' "$tmp/index.out" || fail "the program's output changed"

# Without the soname option valgrind replaces the index's malloc; the index says so.
LD_PRELOAD=$lib valgrind --tool=memcheck "$prog" >/dev/null 2>"$tmp/replaced.err"
if grep -q 'soname-synonyms=somalloc=nouserintercepts' "$tmp/replaced.err"; then
  echo "memcheck: without the soname option the index points to it"
else
  fail "no hint when valgrind replaced the index's malloc"; head -20 "$tmp/replaced.err"
fi
[ $status -eq 0 ] || { echo "--- with the index:"; cat "$tmp/index.err"; }
exit $status
