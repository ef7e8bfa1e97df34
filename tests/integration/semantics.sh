#!/bin/bash
# SPDX-License-Identifier: MIT
# Runs the semantics program without hooks and under each given preload library; every run must print
# exactly what glibc alone prints.  Usage: semantics.sh SEMANTICS [--exact] LIBRARY...
set -u
exe=$1; shift
mode=
if [ "${1:-}" = --exact ]; then mode=--exact; shift; fi
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

"$exe" $mode >"$tmp/expected" || { echo "semantics: baseline run failed"; exit 1; }
lines=$(wc -l <"$tmp/expected")
[ "$lines" -gt 100 ] || { echo "semantics: baseline printed only $lines lines"; exit 1; }
status=0
for lib in "$@"; do
  MALLOCTRACE_OUTPUT="$tmp/trace" LD_PRELOAD="$lib" "$exe" $mode >"$tmp/got" 2>"$tmp/err"
  rc=$?
  if [ $rc -ne 0 ] || ! cmp -s "$tmp/expected" "$tmp/got"; then
    echo "semantics: under $(basename "$lib") (exit $rc) the program sees something glibc alone does not:"
    diff "$tmp/expected" "$tmp/got" | head -40
    cat "$tmp/err" | head -20
    status=1
  else
    echo "semantics: $(basename "$lib"): $lines observations identical"
  fi
done
exit $status
