#!/bin/bash
# SPDX-License-Identifier: MIT
# Heap profiles (HEAPINDEX_STACKS, profile outputs in HEAPINDEX_REPORT; docs/heap-profiles.md) of
# profile_prog.c, whose every figure is known: whole stacks through code without frame pointers, folded
# stacks (live at exit, at the peak, allocation counts), heaptrack's file read back by the installed
# heaptrack_print with the same figures, sampled stacks, the on-demand API, %p with fork, and bad
# settings reported with the program unchanged.
# Usage: profiles.sh PROFILE_PROG LIBHEAPINDEX
set -u
prog=$(realpath "$1") lib=$(realpath "$2")
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
status=0
fail() { echo "profiles: $*"; status=1; }
clean_env=(-u HEAPINDEX_REPORT -u HEAPINDEX_STACKS -u HEAPINDEX_STACKS_SAMPLE -u HEAPINDEX_SERIES_MS -u HEAPINDEX_LOG
  -u HEAPINDEX_LEAKS -u HEAPINDEX_LEAKS_EXITCODE)
args=()
run() { (cd "$tmp" && env "${clean_env[@]}" "$@" LD_PRELOAD="$lib" "$prog" "${args[@]}" >"$tmp/out" 2>"$tmp/err"); }
# value FILE PATH-SUFFIX: the value of the folded line whose path ends with PATH-SUFFIX (0 if none).
value() { awk -v s="$2" '{ v = $NF; p = $0; sub(/ [0-9]+$/, "", p); if (substr(p, length(p) - length(s) + 1) == s) t += v } END { print t + 0 }' "$1"; }
keep="main;keep_outer;keep_middle;leaf_alloc" temp="main;temp_outer;leaf_alloc"
peak="main;peak_outer;leaf_alloc" other="main;other_outer;leaf_alloc"

# ---- every allocation stacked -----------------------------------------------------------------------
run HEAPINDEX_STACKS=32 HEAPINDEX_REPORT=live.folded,p.peak.folded,a.allocs.folded,heaptrack.prog,d.hiprof ||
  fail "the program failed under HEAPINDEX_STACKS=32: $(cat "$tmp/err")"
[ -s "$tmp/err" ] && fail "unexpected stderr: $(cat "$tmp/err")"
for f in live.folded p.peak.folded a.allocs.folded heaptrack.prog d.hiprof; do
  [ -s "$tmp/$f" ] || fail "no $f written"
done
# The stacks are whole (main and _start included: unwound through libc without frame pointers).
grep -q "^_start;.*;$keep 10000$" "$tmp/live.folded" || fail "live at exit: no 10000 bytes at $keep: $(cat "$tmp/live.folded")"
[ "$(value "$tmp/live.folded" "$temp")$(value "$tmp/live.folded" "$peak")$(value "$tmp/live.folded" "$other")" = 000 ] ||
  fail "live at exit lists freed chunks: $(cat "$tmp/live.folded")"
for pair in "$keep 10" "$temp 100" "$peak 48" "$other 50"; do
  set -- $pair
  [ "$(value "$tmp/a.allocs.folded" "$1")" = "$2" ] || fail "allocations at $1: $(value "$tmp/a.allocs.folded" "$1"), expected $2"
done
# The peak: 3 MiB of peak_outer's chunks, seen to within the 1 MiB the peak is sampled at.
p=$(value "$tmp/p.peak.folded" "$peak")
{ [ "$p" -ge $((2 << 20)) ] && [ "$p" -le $((3 << 20)) ]; } || fail "peak of $peak: $p bytes, expected 2-3 MiB"
[ "$(value "$tmp/p.peak.folded" "$keep")" = 10000 ] || fail "the kept chunks are not in the peak's stack set"

# heaptrack_print reads our heaptrack file and arrives at the same figures, stack by stack.
if command -v heaptrack_print >/dev/null; then
  heaptrack_print "$tmp/heaptrack.prog" >"$tmp/ht.txt" 2>&1 || fail "heaptrack_print failed: $(tail -5 "$tmp/ht.txt")"
  grep -q "calls to allocation functions: 208 " "$tmp/ht.txt" || fail "heaptrack_print: not 208 calls: $(tail -6 "$tmp/ht.txt")"
  grep -q "temporary memory allocations: 100 " "$tmp/ht.txt" || fail "heaptrack_print: not 100 temporaries"
  grep -q "total memory leaked: 10.00K" "$tmp/ht.txt" || fail "heaptrack_print: not 10.00K leaked"
  for c in leaked:live.folded peak:p.peak.folded allocations:a.allocs.folded temporary:; do
    type=${c%%:*} ours=${c#*:}
    heaptrack_print "$tmp/heaptrack.prog" --flamegraph-cost-type "$type" -F "$tmp/ht.$type" >/dev/null 2>&1
    # heaptrack's folded lines: "main (??);keep_outer (??);...;leaf_alloc (??); 10000"
    sed -e 's/ ([^)]*)//g' -e 's/; \([0-9]*\)$/ \1/' "$tmp/ht.$type" >"$tmp/ht.$type.plain"
    for path in "$keep" "$temp" "$peak" "$other"; do
      theirs=$(value "$tmp/ht.$type.plain" "$path")
      if [ -n "$ours" ]; then expected=$(value "$tmp/$ours" "$path"); elif [ "$path" = "$temp" ]; then expected=100; else expected=0; fi
      [ "$theirs" = "$expected" ] || fail "heaptrack_print $type at $path: $theirs, ours $expected"
    done
  done
else
  echo "profiles: heaptrack_print not installed: heaptrack file not checked"
fi

# ---- memory over time in heaptrack's file ------------------------------------------------------------
# "slow": peak_outer's 3 MiB rise over ~50 ms, sampled at each MiB.  heaptrack_print's massif snapshots
# (the total in use at each timestamp, as heaptrack_gui's chart) rise through about 1 and 2 MiB to the
# peak, in time order, the peak being heaptrack_print's peak; every per-stack figure stays as before.
if command -v heaptrack_print >/dev/null; then
  args=(slow)
  run HEAPINDEX_STACKS=32 HEAPINDEX_REPORT=heaptrack.slow,slow.peak.folded || fail "the program failed (slow)"
  args=()
  heaptrack_print "$tmp/heaptrack.slow" -M "$tmp/slow.massif" >"$tmp/hts.txt" 2>&1 || fail "heaptrack_print -M failed"
  grep -q "calls to allocation functions: 208 " "$tmp/hts.txt" || fail "slow: not 208 calls: $(tail -6 "$tmp/hts.txt")"
  grep -q "temporary memory allocations: 100 " "$tmp/hts.txt" || fail "slow: not 100 temporaries"
  grep -q "total memory leaked: 10.00K" "$tmp/hts.txt" || fail "slow: not 10.00K leaked"
  heaptrack_print "$tmp/heaptrack.slow" --flamegraph-cost-type peak -F "$tmp/hts.peak" >/dev/null 2>&1
  sed -e 's/ ([^)]*)//g' -e 's/; \([0-9]*\)$/ \1/' "$tmp/hts.peak" >"$tmp/hts.peak.plain"
  for path in "$keep" "$peak"; do
    [ "$(value "$tmp/hts.peak.plain" "$path")" = "$(value "$tmp/slow.peak.folded" "$path")" ] ||
      fail "slow: heaptrack_print's peak at $path is not ours"
  done
  # "time mem" per snapshot, in file order.
  awk -F= '/^time=/ {t = $2} /^mem_heap_B=/ {print t, $2}' "$tmp/slow.massif" >"$tmp/slow.snapshots"
  peak_b=$(sort -k2 -n "$tmp/slow.snapshots" | tail -1 | cut -d' ' -f2)
  { [ "$peak_b" -ge $((2 << 20)) ] && [ "$peak_b" -le $(( (3 << 20) + 20000 )) ]; } || fail "slow: the massif peak is $peak_b bytes"
  awk -v p="$peak_b" '$2 == p {exit} {print}' "$tmp/slow.snapshots" >"$tmp/slow.rising"
  awk '$2 >= 700000 && $2 < 1500000' "$tmp/slow.rising" | grep -q . ||
    fail "slow: no snapshot near 1 MiB before the peak: $(cat "$tmp/slow.snapshots")"
  awk '$2 >= 1500000 && $2 < 2500000' "$tmp/slow.rising" | grep -q . ||
    fail "slow: no snapshot near 2 MiB before the peak: $(cat "$tmp/slow.snapshots")"
  sort -c -k2 -n "$tmp/slow.rising" 2>/dev/null || fail "slow: memory before the peak does not rise: $(cat "$tmp/slow.snapshots")"
  sort -c -s -k1 -g "$tmp/slow.snapshots" 2>/dev/null || fail "slow: snapshots out of time order"
  grep -q "peak heap memory consumption: $(awk -v b="$peak_b" 'BEGIN { printf "%.2fM", b / 1e6 }')" "$tmp/hts.txt" ||
    fail "slow: heaptrack_print's peak is not the massif peak ($peak_b): $(grep peak "$tmp/hts.txt")"
fi

# ---- stacks that take turns at one allocation site and depth (the remembered walks' sets) -----------------
# Five stacks in a cycle through one leaf_alloc at one depth, more than the 4 walks a thread remembers for
# that key: each keeps its own count, allocations and freeing stacks alike (a check of a remembered walk
# that accepted another stack would move counts between them).
args=(turns)
run HEAPINDEX_STACKS=32 HEAPINDEX_REPORT=t.allocs.folded,t.folded || fail "the program failed with turns: $(cat "$tmp/err")"
args=()
for pair in "turn_a 20" "turn_b 10" "turn_c 10" "turn_d 5" "turn_e 5"; do
  set -- $pair
  [ "$(value "$tmp/t.allocs.folded" "main;turns_outer;$1;leaf_alloc")" = "$2" ] ||
    fail "turns: allocations at $1: $(value "$tmp/t.allocs.folded" "main;turns_outer;$1;leaf_alloc"), expected $2: $(grep turn "$tmp/t.allocs.folded")"
done
[ "$(grep -c turn "$tmp/t.folded")" = 0 ] || fail "turns: chunks of turns_outer live at exit: $(grep turn "$tmp/t.folded")"
[ "$(value "$tmp/t.allocs.folded" "$keep")" = 10 ] || fail "turns: keep's 10 allocations: $(cat "$tmp/t.allocs.folded")"

# ---- leaks by reachability (HEAPINDEX_LEAKS=exit) in the profile's outputs --------------------------
# keep's 10000 bytes are live at exit but reachable (through `kept`); lose_outer's 4000 bytes are not: only
# they are leaked, in the folded leaks, in heaptrack's file (as heaptrack_print reads it) and in the exit status.
lose="main;lose_outer;leaf_alloc"
args=(leak)
run HEAPINDEX_STACKS=32 HEAPINDEX_LEAKS=exit HEAPINDEX_LEAKS_EXITCODE=23 HEAPINDEX_LOG="$tmp/leaks.log" \
  HEAPINDEX_REPORT=l.leaks.folded,l.folded,heaptrack.leak
rc=$?
args=()
[ $rc = 23 ] || fail "a leaky program under HEAPINDEX_LEAKS_EXITCODE=23 exited $rc: $(cat "$tmp/err")"
grep -q "4000 bytes in 1 chunks definitely lost" "$tmp/leaks.log" || fail "the scan's report: $(cat "$tmp/leaks.log")"
[ "$(value "$tmp/l.leaks.folded" "$lose")" = 4000 ] || fail "folded leaks: no 4000 bytes at $lose: $(cat "$tmp/l.leaks.folded")"
[ "$(value "$tmp/l.leaks.folded" "$keep")" = 0 ] || fail "folded leaks list keep's reachable chunks: $(cat "$tmp/l.leaks.folded")"
grep -q "^_start;.*;$lose 4000$" "$tmp/l.leaks.folded" || fail "folded leaks: the leak's stack is not whole"
[ "$(value "$tmp/l.folded" "$keep")" = 10000 ] || fail "live at exit no longer shows keep's 10000 bytes"
if command -v heaptrack_print >/dev/null; then
  heaptrack_print "$tmp/heaptrack.leak" >"$tmp/htl.txt" 2>&1 || fail "heaptrack_print failed on the leak file"
  grep -q "total memory leaked: 4.00K" "$tmp/htl.txt" || fail "heaptrack_print: not 4.00K leaked: $(grep leaked "$tmp/htl.txt")"
  heaptrack_print "$tmp/heaptrack.leak" --flamegraph-cost-type leaked -F "$tmp/htl.leaked" >/dev/null 2>&1
  sed -e 's/ ([^)]*)//g' -e 's/; \([0-9]*\)$/ \1/' "$tmp/htl.leaked" >"$tmp/htl.plain"
  [ "$(value "$tmp/htl.plain" "$lose")" = 4000 ] || fail "heaptrack_print leaked at $lose: $(cat "$tmp/htl.plain")"
  [ "$(value "$tmp/htl.plain" "$keep")" = 0 ] || fail "heaptrack_print counts keep's reachable chunks as leaked"
fi
# Without the scan, the folded leaks are what was live at exit (heaptrack's definition).
run HEAPINDEX_STACKS=32 HEAPINDEX_REPORT=n.leaks.folded || fail "the program failed"
[ "$(value "$tmp/n.leaks.folded" "$keep")" = 10000 ] || fail "leaks without the scan: $(cat "$tmp/n.leaks.folded")"

# ---- sampled stacks: chunks far larger than the mean interval are always sampled, weight ~1 ------------
run HEAPINDEX_STACKS=32 HEAPINDEX_STACKS_SAMPLE=4096 HEAPINDEX_REPORT=s.allocs.folded,s.peak.folded ||
  fail "the program failed with sampled stacks"
[ "$(value "$tmp/s.allocs.folded" "$peak")" = 48 ] || fail "sampled: peak_outer's 48 chunks of 64 KiB: $(cat "$tmp/s.allocs.folded")"
p=$(value "$tmp/s.peak.folded" "$peak")
{ [ "$p" -ge $((2 << 20)) ] && [ "$p" -le $((3 << 20)) ]; } || fail "sampled peak of $peak: $p bytes"
# 100 chunks of 64 bytes at 1/4096 per byte: an estimate, scaled up; 0 or a multiple of about 65.
t=$(value "$tmp/s.allocs.folded" "$temp")
[ "$t" -le 2000 ] || fail "sampled estimate of temp_outer's 100 allocations is $t"

# ---- the on-demand API, and %p with fork ---------------------------------------------------------
(cd "$tmp" && env "${clean_env[@]}" HEAPINDEX_STACKS=8 LD_PRELOAD="$lib" "$prog" nofork mid.folded >"$tmp/out" 2>"$tmp/err")
grep -q "^written 1$" "$tmp/out" || fail "heapindex_profile_write: $(cat "$tmp/out" "$tmp/err")"
grep -q "keep_middle;leaf_alloc 10000$" "$tmp/mid.folded" || fail "on-demand folded stacks: $(cat "$tmp/mid.folded")"
(cd "$tmp" && env "${clean_env[@]}" LD_PRELOAD="$lib" "$prog" nofork x.folded >"$tmp/out" 2>"$tmp/err")
grep -q "^written -1$" "$tmp/out" || fail "heapindex_profile_write without stacks: $(cat "$tmp/out")"
(cd "$tmp" && rm -f f.*.folded && env "${clean_env[@]}" HEAPINDEX_STACKS=4 HEAPINDEX_REPORT="f.%p.folded" LD_PRELOAD="$lib" "$prog" fork >/dev/null 2>&1)
n=$(ls "$tmp"/f.*.folded 2>/dev/null | wc -l)
[ "$n" = 2 ] || fail "fork with %p: $n files, expected one per process"

# ---- bad settings: reported, default kept, the program unchanged ------------------------------------
check() {  # VAR=VALUE PATTERN
  run "$1" || fail "$1: the program failed"
  grep -q -- "$2" "$tmp/err" || fail "$1: no message matching '$2': $(cat "$tmp/err")"
}
check HEAPINDEX_STACKS=lots "HEAPINDEX_STACKS='lots' is not a number of frames from 0 to 128; using the default, 0"
check HEAPINDEX_STACKS=129 "HEAPINDEX_STACKS='129' is not"
check HEAPINDEX_STACKS_SAMPLE=-5 "HEAPINDEX_STACKS_SAMPLE='-5' is not a mean number of bytes"
check HEAPINDEX_SERIES_MS=1s "HEAPINDEX_SERIES_MS='1s' is not a number of milliseconds"
check HEAPINDEX_STACKS_FRAMES=3 "unknown setting HEAPINDEX_STACKS_FRAMES"
run HEAPINDEX_STACKS=0 HEAPINDEX_REPORT=z.folded || fail "the program failed with HEAPINDEX_STACKS=0"
grep -q "names heap-profile outputs but HEAPINDEX_STACKS=0: none is written" "$tmp/err" ||
  fail "profile outputs with HEAPINDEX_STACKS=0 not reported: $(cat "$tmp/err")"
[ -e "$tmp/z.folded" ] && fail "a profile output written with HEAPINDEX_STACKS=0"
# A profile output that cannot be written: reported, the output goes to stderr.
run HEAPINDEX_STACKS=8 HEAPINDEX_REPORT=/nonexistent/dir/x.folded
grep -q "cannot write /nonexistent/dir/x.folded" "$tmp/err" || fail "unwritable output not reported: $(cat "$tmp/err")"
grep -q "keep_middle;leaf_alloc 10000$" "$tmp/err" || fail "unwritable output not sent to stderr"
# Two text reports in one list: the second is reported and ignored; the profile item still works.
check "HEAPINDEX_REPORT=stderr,b.txt,l.folded" "'b.txt' ignored (one text report at most"
[ -s "$tmp/l.folded" ] || fail "the profile item of a list with a bad item was not written"

exit $status
