#!/bin/bash
# SPDX-License-Identifier: MIT
# The index in front of jemalloc, tcmalloc and mimalloc (Debian's packages): the lookups program passes
# under each (usable sizes cover requests and never reach the trailer, every chunk found, check sound).
# With the allocator listed first instead, the index warns that it sees nothing and says to reorder.
# A one-byte overflow into each allocator's slack (chunks of 100, 4096 and 200,000 bytes) is found.
# Usage: allocators.sh LOOKUPS LIBHEAPINDEX ERRORS_PROGRAM
set -u
lookups=$1 lib=$2 errprog=$3
status=0
tmp=$(mktemp); trap 'rm -f "$tmp" "$tmp.err"' EXIT
for a in libjemalloc.so.2 libtcmalloc.so.4 libmimalloc.so.2; do
  path=/usr/lib/x86_64-linux-gnu/$a
  [ -e "$path" ] || { echo "allocators: $a is not installed"; status=1; continue; }
  # (The program's refused client requests are reported on stderr by design: only other lines count.)
  out=$(LD_PRELOAD="$lib $path" "$lookups" other 2>"$tmp.err")
  rc=$?
  errors=$(grep -v '^heapindex\[' "$tmp.err")
  if [ $rc -eq 0 ] && [ -z "$errors" ] && echo "$out" | grep -q "index sound"; then
    echo "allocators: libheapindex.so in front of $a: $out"
  else
    echo "allocators: libheapindex.so in front of $a fails (exit $rc):"; echo "$errors" | head -10; status=1
  fi
  out=$(LD_PRELOAD="$lib $path" HEAPINDEX_LOG=off "$errprog" slack-sizes 2>/dev/null)
  if [ $? -eq 0 ]; then echo "allocators: $a: $out"; else echo "allocators: $a: slack overflows missed: $out"; status=1; fi
  msg=$(LD_PRELOAD="$path $lib" "$lookups" other 2>&1 >/dev/null | head -1)
  if ! echo "$msg" | grep -q "heapindex: warning: malloc in this process is $path's, not libheapindex.so's.*put libheapindex.so first in LD_PRELOAD"; then
    echo "allocators: with $a first, no warning to reorder LD_PRELOAD (got: $msg)"; status=1
  fi
done
exit $status
