#!/bin/bash
# SPDX-License-Identifier: MIT
# Runs one program of the placement matrix three times: with nothing preloaded, under librecorder.so
# (interposes malloc, exports its layer) and under librecorder_layer.so (exports its layer only).  Each run
# checks its own event log (mx_driver.c); then the three transcripts of results must be identical: the
# hooks change nothing a program can observe.
# Usage: matrix.sh PROGRAM PLACEMENT LIBRECORDER LIBRECORDER_LAYER
set -u
prog=$1 placement=$2 recorder=$3 layer=$4
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0
run() {  # run MODE [preload]
  if ! env ${2:+LD_PRELOAD=$2} "$prog" "$placement" "$1" >"$tmp/$1" 2>"$tmp/$1.err"; then
    echo "== $(basename "$prog") $placement, $1: FAILED"; cat "$tmp/$1.err"; status=1
  else
    cat "$tmp/$1.err"
  fi
}
run none
run recorder "$recorder"
run layer "$layer"
[ $status -eq 0 ] || exit 1
for mode in recorder layer; do
  if ! diff -u "$tmp/none" "$tmp/$mode"; then
    echo "results under $mode differ from the run without preload"; status=1
  fi
done
[ $status -eq 0 ] && echo "$(wc -l <"$tmp/none") cells with the same results in all three runs"
exit $status
