#!/bin/bash
# SPDX-License-Identifier: MIT
# glibc's __libc_ names as members of the family (issue 16, item 4; libc_names.c): mixed with the plain
# family, every chunk indexed and released without a report, with the index alone, in front of
# libifuncmalloc.so (an allocator built on __libc_malloc: its own calls must not enter the index again),
# tcmalloc and mimalloc (which replace the __libc_ names too), and with a program that defines malloc and
# free itself on top of __libc_malloc and __libc_free.  A double free through __libc_free is reported.
# With link-time hooks too: the own-malloc program built by allocscc (wrapdl: the index's exported layer
# goes in front of the program's allocator, whose own __libc_ calls must then skip the hooks).
# Usage: libc_names.sh PROGRAM OWN_MALLOC_PROGRAM LIBHEAPINDEX LIBIFUNCMALLOC [ALLOCSCC CC RUNTIME_DIR SOURCE INCLUDE_DIR]
set -u
prog=$1 own=$2 lib=$3 ifunc=$4 allocscc=${5:-} cc=${6:-} runtime=${7:-} source=${8:-} include=${9:-}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
status=0

# run NAME PRELOAD PROGRAM: the mixed case, exit 0, nothing on the index's log, the check sound at exit.
run() {
  local name=$1 preload=$2 program=$3
  out=$(env LD_PRELOAD="$preload" HEAPINDEX_LOG="$tmp/$name.log" HEAPINDEX_CHECK=exit "$program" mixed 2>"$tmp/$name.err")
  rc=$?
  if [ $rc -ne 0 ] || ! grep -q "every chunk indexed" <<<"$out" || grep -v '^heapindex.*check: sound' "$tmp/$name.log" | grep -q . \
     || ! grep -q 'check: sound' "$tmp/$name.log" || [ -s "$tmp/$name.err" ]; then
    echo "libc-names: $name fails (exit $rc): $out"; cat "$tmp/$name.err" "$tmp/$name.log" | head -20; status=1
  else
    echo "libc-names: $name: $out"
  fi
}

# Without the index: the program itself is sound.
out=$("$prog" mixed) || { echo "libc-names: the program fails without the index: $out"; status=1; }
run alone "$lib" "$prog"
run ifuncmalloc "$lib $ifunc" "$prog"
# (Not jemalloc: Debian's defines no __libc_ names, so __libc_malloc then free hands jemalloc a chunk of
# glibc's, and the program crashes with or without the index in front.)
for a in libtcmalloc.so.4 libmimalloc.so.2; do
  path=/usr/lib/x86_64-linux-gnu/$a
  [ -e "$path" ] || { echo "libc-names: $a is not installed"; status=1; continue; }
  run "$a" "$lib $path" "$prog"
done
run own-malloc "$lib" "$own"
grep -q "own malloc ran" <<<"$out" || { echo "libc-names: own-malloc: the program's malloc did not run"; status=1; }
if [ -n "$allocscc" ]; then
  if ALLOCSCC_CC=$cc ALLOCSCC_RUNTIME_DIR=$runtime ALLOCSCC_CACHE_DIR=$tmp/cache ALLOCSCC_VERBOSE=1 \
       "$allocscc" -g -fno-builtin -DOWN_MALLOC -I"$include" -I"$(dirname "$source")/.." "$source" -o "$tmp/own_wrapdl" 2>"$tmp/allocscc.log" &&
     grep -q "backend wrapdl" "$tmp/allocscc.log"; then
    run own-malloc-wrapdl "$lib" "$tmp/own_wrapdl"
    grep -q "own malloc ran" <<<"$out" || { echo "libc-names: own-malloc-wrapdl: the program's malloc did not run"; status=1; }
  else
    echo "libc-names: allocscc did not link the own-malloc program with the wrapdl backend:"; cat "$tmp/allocscc.log"; status=1
  fi
fi

# (Under libifuncmalloc.so, a chunk its own __libc_malloc call indexed a second time would make its free's
# __libc_free call a "double free" on the log, and the live count would differ: run checks both.)

# A double free through __libc_free, reported with its sites.
(env LD_PRELOAD="$lib" HEAPINDEX_LOG="$tmp/df.log" "$prog" double-free >/dev/null 2>&1; exit $?) 2>/dev/null
for pattern in "double free: free\(0x[0-9a-f]+\) of a chunk already freed" "allocated at +0x[0-9a-f]+ site_libc_malloc\+" \
               "first freed at +0x[0-9a-f]+ site_libc_free\+" "freed again at +0x[0-9a-f]+ site_libc_free\+"; do
  grep -Eq -- "$pattern" "$tmp/df.log" || { echo "libc-names: double-free: no line matches '$pattern'"; cat "$tmp/df.log"; status=1; }
done
[ $status -eq 0 ] && echo "libc-names: a double free through __libc_free is reported with its sites"
exit $status
