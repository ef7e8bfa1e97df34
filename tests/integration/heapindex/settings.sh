#!/bin/bash
# SPDX-License-Identifier: MIT
# HEAPINDEX_* settings (README.md): the exit report (to a file with %p, symbolized with libdw, sites by
# bytes), the exit check, and a clear message for every unknown or malformed setting, after which the
# program still runs with the index.  Uses the demo program.  Usage: settings.sh DEMO LIBHEAPINDEX
set -u
demo=$1 lib=$2
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
status=0
fail() { echo "settings: $*"; status=1; }
run() { env -u HEAPINDEX_REPORT -u HEAPINDEX_LOG -u HEAPINDEX_CHECK -u HEAPINDEX_DIR -u HEAPINDEX_SYMBOLIZE_TIMEOUT "$@" LD_PRELOAD="$lib" "$demo" >"$tmp/out" 2>"$tmp/err"; }

# The report: a file per process, every site line "bytes chunks site", largest first; the demo's nodes
# are listed at make_node in heapindex_demo.c with a line number.
run HEAPINDEX_REPORT="$tmp/report.%p" HEAPINDEX_CHECK=exit || fail "the demo failed under the index"
grep -q "heapindex_check: sound" "$tmp/out" || fail "the demo's own check is not sound: $(cat "$tmp/out")"
grep -q "check: sound" "$tmp/err" || fail "HEAPINDEX_CHECK=exit printed no sound verdict: $(cat "$tmp/err")"
reports=("$tmp"/report.*)
if [ ${#reports[@]} -ne 1 ] || [ ! -s "${reports[0]}" ]; then
  fail "no report file report.<pid>"
else
  r=${reports[0]}
  grep -Eq "at exit: [0-9]+ live chunks, [0-9]+ bytes, from [0-9]+ sites" "$r" || fail "report has no summary line"
  grep -Eq " 96 +4  make_node \(heapindex_demo\.c:[0-9]+\) in .*heapindex_demo" "$r" ||
    fail "report does not list the 4 nodes at make_node (file:line): $(cat "$r")"
  grep -Eq "\[client block\] main \(heapindex_demo\.c:[0-9]+\)" "$r" || fail "report does not list the client block"
  # Sorted by bytes, largest first.
  awk '/allocation site/ {on = 1; next} on && $3 ~ /^[0-9]+$/ {print $2}' "$r" | sort -c -r -n 2>/dev/null ||
    fail "report sites are not sorted by bytes: $(cat "$r")"
fi

# dladdr only: names without file:line.  Off: addresses.
run HEAPINDEX_REPORT=stderr HEAPINDEX_SYMBOLIZE=dladdr
grep -Eq " 96 +4  0x[0-9a-f]+ make_node\+0x[0-9a-f]+ " "$tmp/err" || fail "dladdr report: $(cat "$tmp/err")"
run HEAPINDEX_REPORT=stderr HEAPINDEX_SYMBOLIZE=off HEAPINDEX_REPORT_TOP=1
grep -Eq "^heapindex\[[0-9]+\]: +[0-9]+ +[0-9]+  0x[0-9a-f]+$" "$tmp/err" || fail "unsymbolized report: $(cat "$tmp/err")"
grep -Eq "\([0-9]+ more sites\)" "$tmp/err" || fail "HEAPINDEX_REPORT_TOP=1 did not fold the other sites"

# A symbolizer deadline of 0 s: every site by dladdr, and a line that says why.
run HEAPINDEX_REPORT=stderr HEAPINDEX_SYMBOLIZE_TIMEOUT=0
grep -Eq " 96 +4  0x[0-9a-f]+ make_node\+0x[0-9a-f]+ " "$tmp/err" || fail "deadline 0: sites not by dladdr: $(cat "$tmp/err")"
grep -q "symbolizing took longer than HEAPINDEX_SYMBOLIZE_TIMEOUT=0 s: later sites named by dladdr" "$tmp/err" ||
  fail "deadline 0: no line saying so: $(cat "$tmp/err")"

# Bad settings: one clear line each, naming the variable and what happens; the index still works.
check_message() {  # VAR=VALUE PATTERN
  run "$1"
  grep -Eq -- "$2" "$tmp/err" || fail "$1: no message matching '$2' (got: $(cat "$tmp/err"))"
  grep -q "heapindex_check: sound" "$tmp/out" || fail "$1: the index did not keep running"
}
check_message HEAPINDEX_FROBNICATE=1 "unknown setting HEAPINDEX_FROBNICATE \(known: .*\); ignored"
check_message HEAPINDEX_REPORT_TOP=many "HEAPINDEX_REPORT_TOP='many' is not a number .*using the default, 25"
check_message HEAPINDEX_REPORT_TOP=-3 "HEAPINDEX_REPORT_TOP='-3' is not a number"
check_message HEAPINDEX_CHECK=always "HEAPINDEX_CHECK='always' is not off or exit; using the default, off"
check_message HEAPINDEX_SYMBOLIZE=gdb "HEAPINDEX_SYMBOLIZE='gdb' is not libdw, dladdr or off; using the default, libdw"
check_message HEAPINDEX_REPORT= "HEAPINDEX_REPORT='' is not off, stderr, file or a file path"
check_message HEAPINDEX_LOG= "HEAPINDEX_LOG='' is not off, stderr, file or a file path"
check_message HEAPINDEX_DIR= "HEAPINDEX_DIR='' is not a directory path .*using the default, /"
check_message HEAPINDEX_SYMBOLIZE_TIMEOUT=soon "HEAPINDEX_SYMBOLIZE_TIMEOUT='soon' is not a number of seconds from 0 to 3600; using the default, 10"
run HEAPINDEX_REPORT="$tmp/no/such/dir/report"
grep -q "cannot open '$tmp/no/such/dir/report' (ENOENT); writing to stderr instead" "$tmp/err" ||
  fail "an unopenable report path is not reported: $(cat "$tmp/err")"
grep -q "at exit:" "$tmp/err" || fail "the report did not fall back to stderr"
# No setting, no output at all.
run
[ -s "$tmp/err" ] && fail "with no settings the index printed: $(cat "$tmp/err")"
[ $status -eq 0 ] && echo "settings: report, check, symbolizers and every malformed setting behave as documented"
exit $status
