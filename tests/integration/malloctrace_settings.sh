#!/bin/bash
# SPDX-License-Identifier: MIT
# libmalloctrace.so's settings: the summary and the stream reach stderr or the file asked for and never
# stdout; %p becomes the pid; an unknown MALLOCTRACE_* variable or a malformed value is reported, tracing
# stays off, and the program runs unchanged.  (The default, a file per process, is tested in
# output/output.sh.)  Usage: malloctrace_settings.sh LIBMALLOCTRACE PROGRAM
set -u
lib=$1 prog=$2
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "malloctrace settings: $*"; exit 1; }

expected=$("$prog")
out=$(MALLOCTRACE_OUTPUT=stderr LD_PRELOAD=$lib "$prog" 2>"$tmp/err")
[ "$out" = "$expected" ] || fail "stdout changed under the tracer"
grep -q 'post_successful_alloc' "$tmp/err" || fail "no summary on stderr with MALLOCTRACE_OUTPUT=stderr"

out=$(MALLOCTRACE_OUTPUT="$tmp/trace.%p" LD_PRELOAD=$lib "$prog" 2>"$tmp/err")
[ "$out" = "$expected" ] || fail "stdout changed with MALLOCTRACE_OUTPUT"
[ ! -s "$tmp/err" ] || fail "stderr used although MALLOCTRACE_OUTPUT names a file: $(cat "$tmp/err")"
ls "$tmp"/trace.[0-9]* >/dev/null 2>&1 || fail "%p was not replaced by the pid"
grep -q 'summary for' "$tmp"/trace.[0-9]* || fail "no summary in the output file"

MALLOCTRACE_MODE=stream MALLOCTRACE_OUTPUT="$tmp/stream" LD_PRELOAD=$lib "$prog" >/dev/null 2>&1
grep -q 'pre_alloc size=' "$tmp/stream" || fail "stream mode wrote no event lines"
grep -q 'summary for' "$tmp/stream" && fail "stream mode also wrote a summary"

for bad in MALLOCTRACE_MODE=loud MALLOCTRACE_OUTPUT= MALLOCTRACE_COLOUR=1 MALLOCTRACE_DIR= \
           "MALLOCTRACE_MODE=stream MALLOCTRACE_OUTPUT=/nonexistent/dir/x"; do
  # shellcheck disable=SC2086  # $bad may hold two settings
  out=$(env MALLOCTRACE_OUTPUT=stderr $bad LD_PRELOAD=$lib "$prog" 2>"$tmp/err"); rc=$?
  [ $rc -eq 0 ] && [ "$out" = "$expected" ] || fail "$bad changed the program's behaviour (exit $rc)"
  grep -q "malloctrace: .*tracing is off" "$tmp/err" || fail "$bad was not reported: $(cat "$tmp/err")"
  grep -q 'post_successful_alloc' "$tmp/err" && fail "$bad: tracing went on anyway"
done
# A summary file that cannot be opened at exit: said on stderr, the program unchanged.
out=$(MALLOCTRACE_OUTPUT=/nonexistent/dir/x LD_PRELOAD=$lib "$prog" 2>"$tmp/err"); rc=$?
[ $rc -eq 0 ] && [ "$out" = "$expected" ] || fail "an unopenable summary file changed the program (exit $rc)"
grep -q "malloctrace: cannot open MALLOCTRACE_OUTPUT '/nonexistent/dir/x': ENOENT; no summary" "$tmp/err" ||
  fail "an unopenable summary file was not reported: $(cat "$tmp/err")"
echo "malloctrace settings: summary, file output with %p, stream mode, and 5 malformed settings reported"
