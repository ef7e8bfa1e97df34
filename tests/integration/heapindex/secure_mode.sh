#!/bin/bash
# SPDX-License-Identifier: MIT
# Secure mode (issue 16.8): a set-uid program that loads libheapindex.so through DT_NEEDED reads no
# HEAPINDEX_* setting and writes no file, while its heap errors still reach stderr; one that loads
# libmalloctrace.so so reads no MALLOCTRACE_* setting and writes nothing.  Run as root, each probe is made
# set-uid to nobody (AT_SECURE); the same probe without the set-uid bit writes the files, so the test can
# tell the two apart.  Usage: secure_mode.sh PROBE_WITH_INDEX PROBE_WITH_TRACER
set -u
probe=$1 trace_probe=$2
[ "$(id -u)" = 0 ] || { echo "secure mode: needs root to make a set-uid program, skipped"; exit 77; }
id nobody >/dev/null 2>&1 || { echo "secure mode: no user nobody, skipped"; exit 77; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "secure mode: $*"; exit 1; }
chmod 755 "$tmp"
mkdir -m 1777 "$tmp/out"
cp "$probe" "$tmp/probe"
cp "$trace_probe" "$tmp/trace_probe"
# debuginfod's settings point into the same directory (issue 16.8: libdebuginfod once made its cache there).
run() { env HEAPINDEX_REPORT="$tmp/out/report" HEAPINDEX_LOG="$tmp/out/log" DEBUGINFOD_URLS=http://127.0.0.1:9 \
  DEBUGINFOD_CACHE_PATH="$tmp/out/debuginfod" XDG_CACHE_HOME="$tmp/out/cache" HOME="$tmp/out" \
  "$tmp/probe" error >"$tmp/stdout" 2>"$tmp/stderr"; }
run_trace() { env MALLOCTRACE_OUTPUT="$tmp/out/trace" "$tmp/trace_probe" >"$tmp/stdout" 2>"$tmp/stderr"; }

run_trace || fail "the tracer's probe failed: $(cat "$tmp/stderr")"
[ -s "$tmp/out/trace" ] || fail "control run: MALLOCTRACE_OUTPUT not written"
rm -f "$tmp/out/trace"
chown nobody "$tmp/trace_probe" && chmod 4755 "$tmp/trace_probe" || fail "cannot make the probe set-uid"
run_trace || fail "the tracer's set-uid probe failed: $(cat "$tmp/stderr")"
grep -q "secure=1" "$tmp/stdout" || { echo "secure mode: the kernel did not start the probe in secure mode (nosuid mount?), skipped"; exit 77; }
[ -e "$tmp/out/trace" ] && fail "secure mode: MALLOCTRACE_OUTPUT was read and written"
[ -s "$tmp/stderr" ] && fail "secure mode: the tracer wrote to stderr: $(cat "$tmp/stderr")"

# Not set-uid: the settings are honoured (files written), as a control.
run || fail "the probe failed: $(cat "$tmp/stderr")"
grep -q "secure=0" "$tmp/stdout" || fail "control run: $(cat "$tmp/stdout")"
[ -s "$tmp/out/report" ] && [ -s "$tmp/out/log" ] || fail "control run: HEAPINDEX_REPORT/LOG files not written"
rm -f "$tmp/out/report" "$tmp/out/log"

chown nobody "$tmp/probe" && chmod 4755 "$tmp/probe" || fail "cannot make the probe set-uid"
run || fail "the set-uid probe failed: $(cat "$tmp/stderr")"
grep -q "secure=1" "$tmp/stdout" || { echo "secure mode: the kernel did not start the probe in secure mode (nosuid mount?), skipped"; exit 77; }
[ -e "$tmp/out/report" ] && fail "secure mode: HEAPINDEX_REPORT was read and the report written"
[ -e "$tmp/out/log" ] && fail "secure mode: HEAPINDEX_LOG was read and the log written"
ls "$tmp/out" | grep -q . && fail "secure mode: files written: $(ls "$tmp/out")"
grep -q "heapindex\[[0-9]*\]: heap overflow" "$tmp/stderr" || fail "secure mode: the heap error did not reach stderr: $(cat "$tmp/stderr")"
echo "secure mode: no setting read, no file written, heap error on stderr (index); nothing written (tracer)"
