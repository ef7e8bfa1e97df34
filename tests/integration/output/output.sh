#!/bin/bash
# SPDX-License-Identifier: MIT
# Where the tools' output goes, as real processes (docs/output.md): the tracer's default writes nothing a
# program or its tests can see (a file per process, a pointer on stderr only at a terminal); messages go
# to the stderr the process started with, not to a data file the program opened on fd 2; a tool's write
# to a broken pipe never raises SIGPIPE in the program (nor eats one of its own); FIFOs, directories and
# symbolic links are refused as outputs without blocking; files are made mode 0600; the tracer's settings
# are read when the first malloc comes from .preinit_array.
# Usage: output.sh TOOL_OUTPUT PREINIT_ALLOC LIBMALLOCTRACE LIBHEAPINDEX
set -u
prog=$1 preinit=$2 trace=$3 index=$4
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
status=0
fail() { echo "output: $*"; status=1; }
clean_env=(env -u MALLOCTRACE_MODE -u MALLOCTRACE_OUTPUT -u MALLOCTRACE_DIR -u HEAPINDEX_REPORT -u HEAPINDEX_LOG
           -u HEAPINDEX_DIR -u HEAPINDEX_CHECK TMPDIR="$tmp")

# ---- the tracer's default: nothing on stdout or stderr, a file per process named for tool, program, pid
out=$(echo go | "${clean_env[@]}" LD_PRELOAD="$trace" "$prog" wait 2>"$tmp/err")
[ "$out" = alive ] || fail "tracer default: stdout changed: $out"
[ -s "$tmp/err" ] && fail "tracer default wrote to stderr: $(cat "$tmp/err")"
files=("$tmp"/malloctrace.tool_output.*.txt)
if [ ${#files[@]} -ne 1 ] || [ ! -f "${files[0]}" ]; then
  fail "tracer default: no file malloctrace.tool_output.PID.txt in TMPDIR: $(ls "$tmp")"
else
  grep -q 'summary for .*tool_output' "${files[0]}" || fail "tracer default: no summary in ${files[0]}"
  [ "$(stat -c %a "${files[0]}")" = 600 ] || fail "tracer default: file mode $(stat -c %a "${files[0]}"), not 600"
fi
mkdir "$tmp/dir"
echo go | "${clean_env[@]}" MALLOCTRACE_DIR="$tmp/dir" LD_PRELOAD="$trace" "$prog" wait >/dev/null 2>&1
ls "$tmp/dir"/malloctrace.tool_output.*.txt >/dev/null 2>&1 || fail "MALLOCTRACE_DIR: no file in it"
# At a terminal, one line says where the summary is.
script -qec "${clean_env[*]} MALLOCTRACE_DIR=$tmp/dir LD_PRELOAD=$trace $prog wait < /dev/null" /dev/null \
  >"$tmp/tty" 2>&1 </dev/null
grep -q "malloctrace: summary of pid [0-9]* in $tmp/dir/malloctrace.tool_output.[0-9]*.txt" "$tmp/tty" ||
  fail "at a terminal: no pointer line: $(cat "$tmp/tty")"

# ---- the original stderr, not whatever fd 2 is later
"${clean_env[@]}" MALLOCTRACE_OUTPUT=stderr LD_PRELOAD="$trace" "$prog" close-stderr "$tmp/data1" >/dev/null 2>"$tmp/err"
[ "$(cat "$tmp/data1")" = "program data" ] || fail "tracer: the summary went into the program's data file: $(cat "$tmp/data1")"
grep -q 'summary for' "$tmp/err" || fail "tracer: the summary did not reach the original stderr"
"${clean_env[@]}" HEAPINDEX_REPORT=stderr LD_PRELOAD="$index" "$prog" close-stderr "$tmp/data2" index >/dev/null 2>"$tmp/err"
[ "$(cat "$tmp/data2")" = "program data" ] || fail "index: reports went into the program's data file: $(cat "$tmp/data2")"
grep -q 'heap overflow' "$tmp/err" || fail "index: the heap error did not reach the original stderr: $(cat "$tmp/err")"
grep -q 'at exit:' "$tmp/err" || fail "index: the exit report did not reach the original stderr"

# ---- no SIGPIPE from a tool's write: our stderr is a pipe whose reader is gone before the tool writes
broken_pipe() {  # ENV... -- ARGS: runs the program, prints its exit status and stdout
  python3 - "$@" <<'PY'
import os, subprocess, sys
args = sys.argv[1:]
cut = args.index('--')
env = dict(os.environ)
for kv in args[:cut]:
    k, v = kv.split('=', 1)
    env[k] = v
p = subprocess.Popen(args[cut + 1:], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
p.stderr.close()  # the reader of the program's stderr goes away
p.stdin.write(b"go\n")
p.stdin.close()
out = p.stdout.read().decode().strip()
print(p.wait(), out)
PY
}
got=$(broken_pipe MALLOCTRACE_OUTPUT=stderr LD_PRELOAD="$trace" -- "$prog" wait)
[ "$got" = "0 alive" ] || fail "tracer: writing the summary to a broken pipe: exit status and output '$got' (141: SIGPIPE)"
got=$(broken_pipe HEAPINDEX_REPORT=stderr LD_PRELOAD="$index" -- "$prog" wait index)
[ "$got" = "0 alive" ] || fail "index: reporting to a broken pipe: '$got' (141: SIGPIPE)"
got=$(broken_pipe LD_PRELOAD="$index" -- "$prog" pending-kept index)
[ "$got" = "0 alive" ] || fail "index: the program's own pending SIGPIPE: '$got'"
got=$(broken_pipe LD_PRELOAD="$index" -- "$prog" none-pending index)
[ "$got" = "0 alive" ] || fail "index: a SIGPIPE left pending by the tool's write: '$got'"

# ---- outputs that are not a regular file or a terminal are refused, without blocking
mkfifo "$tmp/fifo"
start=$SECONDS
out=$(echo go | "${clean_env[@]}" MALLOCTRACE_OUTPUT="$tmp/fifo" LD_PRELOAD="$trace" timeout 20 "$prog" wait 2>"$tmp/err"); rc=$?
[ $rc -eq 0 ] && [ "$out" = alive ] || fail "tracer, FIFO output: exit $rc (124: blocked)"
grep -q "malloctrace: cannot open MALLOCTRACE_OUTPUT '$tmp/fifo': a FIFO" "$tmp/err" || fail "tracer, FIFO: no message: $(cat "$tmp/err")"
out=$(echo go | "${clean_env[@]}" MALLOCTRACE_MODE=stream MALLOCTRACE_OUTPUT="$tmp/fifo" LD_PRELOAD="$trace" timeout 20 "$prog" wait 2>"$tmp/err"); rc=$?
[ $rc -eq 0 ] && [ "$out" = alive ] || fail "tracer, stream to a FIFO: exit $rc (124: blocked)"
grep -q "a FIFO.*tracing is off" "$tmp/err" || fail "tracer, stream to a FIFO: no message: $(cat "$tmp/err")"
for var in HEAPINDEX_REPORT HEAPINDEX_LOG; do
  out=$(echo go | "${clean_env[@]}" "$var=$tmp/fifo" LD_PRELOAD="$index" timeout 20 "$prog" wait index 2>"$tmp/err"); rc=$?
  [ $rc -eq 0 ] && [ "$out" = alive ] || fail "$var=FIFO: exit $rc (124: blocked)"
  grep -q "heapindex: cannot open '$tmp/fifo' (a FIFO .*); writing to stderr instead" "$tmp/err" ||
    fail "$var=FIFO: no message: $(cat "$tmp/err")"
done
[ $((SECONDS - start)) -lt 60 ] || fail "FIFO outputs took $((SECONDS - start)) s"
echo go | "${clean_env[@]}" HEAPINDEX_REPORT="$tmp/dir" LD_PRELOAD="$index" "$prog" wait >/dev/null 2>"$tmp/err"
grep -q "cannot open '$tmp/dir' (a directory)" "$tmp/err" || fail "a directory as output: $(cat "$tmp/err")"

# ---- symbolic links refused (nothing created through them), files made 0600
ln -s "$tmp/target" "$tmp/link"
echo go | "${clean_env[@]}" HEAPINDEX_REPORT="$tmp/link" LD_PRELOAD="$index" "$prog" wait >/dev/null 2>"$tmp/err"
grep -q "cannot open '$tmp/link' (a symbolic link" "$tmp/err" || fail "a symbolic link as output: $(cat "$tmp/err")"
[ -e "$tmp/target" ] && fail "a file was created through a symbolic link"
echo go | "${clean_env[@]}" HEAPINDEX_REPORT="$tmp/report.%p" LD_PRELOAD="$index" "$prog" wait >/dev/null 2>&1
r=("$tmp"/report.*)
[ -f "${r[0]}" ] && [ "$(stat -c %a "${r[0]}")" = 600 ] || fail "report file missing or not mode 600: $(ls -l "$tmp")"
# HEAPINDEX_REPORT=file: a file per process in HEAPINDEX_DIR, the program's stderr untouched.
echo go | "${clean_env[@]}" HEAPINDEX_REPORT=file HEAPINDEX_DIR="$tmp/dir" LD_PRELOAD="$index" "$prog" wait >/dev/null 2>"$tmp/err"
[ -s "$tmp/err" ] && fail "HEAPINDEX_REPORT=file wrote to stderr: $(cat "$tmp/err")"
grep -q "at exit:" "$tmp/dir"/heapindex.tool_output.*.txt 2>/dev/null || fail "HEAPINDEX_REPORT=file: no report in HEAPINDEX_DIR"

# ---- the tracer's settings when the first malloc comes from .preinit_array (environ not set yet)
"${clean_env[@]}" MALLOCTRACE_MODE=stream MALLOCTRACE_OUTPUT="$tmp/pre" LD_PRELOAD="$trace" "$preinit" >/dev/null 2>"$tmp/err" ||
  fail "preinit program failed under the tracer: $(cat "$tmp/err")"
grep -q "pre_alloc size=100 " "$tmp/pre" 2>/dev/null || fail "settings ignored with a malloc from .preinit_array: $(head -3 "$tmp/pre" 2>&1)"
[ -s "$tmp/err" ] && fail "preinit: stderr written: $(cat "$tmp/err")"

[ $status -eq 0 ] && echo "output: default files, original stderr, no SIGPIPE, FIFOs/links refused, preinit settings"
exit $status
