#!/bin/bash
# SPDX-License-Identifier: MIT
# Heap errors are reported with the sites the index knows, each scenario in its own process (errors.c);
# what the process does next is the allocator's business (glibc aborts on most), so only the report is
# checked.  Usage: errors.sh ERRORS_PROGRAM LIBHEAPINDEX [ERRORS_PROGRAM_WITHOUT_DYNAMIC_SYMBOLS]
set -u
prog=$1 lib=$2 local_prog=${3:-}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
status=0

# expect CASE PATTERN...: every extended regular expression must match a line of the report.
expect() {
  local case=$1; shift
  # In a subshell, so that the shell's "Aborted" notice goes with it.
  # $extra_env: more settings for this case (words of NAME=VALUE).
  rm -f "$tmp/$case.log"
  (env LD_PRELOAD="$lib" HEAPINDEX_LOG="$tmp/$case.log" ${extra_env:-} "$prog" "$case" >"$tmp/$case.out" 2>"$tmp/$case.err"; exit $?) 2>/dev/null
  local rc=$? missing=0
  for pattern in "$@"; do
    if ! cat "$tmp/$case.log" "$tmp/$case.err" "$tmp/$case.out" 2>/dev/null | grep -Eq -- "$pattern"; then
      echo "errors: $case: no line matches '$pattern'"; missing=1
    fi
  done
  if [ $missing -ne 0 ]; then
    echo "--- report ($case, exit $rc):"; cat "$tmp/$case.log" "$tmp/$case.err" "$tmp/$case.out" 2>/dev/null | head -20; status=1
  else
    echo "errors: $case reported as expected (exit $rc)"
  fi
}

site='0x[0-9a-f]+ '
expect overflow \
  "check: trailer of chunk 0x[0-9a-f]+ \(40 bytes, seq [0-9]+\) overwritten" \
  "heap overflow( or underflow)?: the trailer after chunk 0x[0-9a-f]+ \(at offset [0-9]+\) was overwritten; found at free" \
  "allocated at +${site}site_alloc\+" \
  "detected at +${site}site_first_free\+" \
  "overflow: check found [1-9][0-9]* problems"
expect double-free \
  "double free: free\(0x[0-9a-f]+\) of a chunk already freed" \
  "chunk 0x[0-9a-f]+, 24 bytes, seq [0-9]+$" \
  "allocated at +${site}site_alloc\+" \
  "first freed at +${site}site_first_free\+" \
  "freed again at +${site}site_second_free\+"
expect double-free-later \
  "double free: free\(0x[0-9a-f]+\)" "allocated at +${site}site_alloc\+" \
  "first freed at +${site}site_first_free\+" "freed again at +${site}site_second_free\+"
expect realloc-after-free \
  "double free: realloc\(0x[0-9a-f]+\)" "first freed at +${site}site_first_free\+" \
  "freed again at +${site}site_realloc\+"
expect interior \
  "invalid free\(0x[0-9a-f]+\): 16 bytes inside a live chunk, not its start" \
  "chunk 0x[0-9a-f]+, 100 bytes" "allocated at +${site}site_alloc\+" "called at +${site}site_second_free\+"
expect wild \
  "invalid free\(0x[0-9a-f]+\): not a chunk this process allocated" "called at +${site}site_second_free\+"
expect client-double-free \
  "double free: heapindex_notify_free\(0x[0-9a-f]+\)" "first freed at +${site}site_notify_free\+" \
  "client: 1 double frees counted"

# Every error reported is reported again at exit with its sites symbolized (function, file:line).
here='\(errors\.c:[0-9]+\) in '
expect overflow \
  "at exit: 2 heap errors reported in this run; their sites, symbolized:" \
  "#1 check: trailer of chunk 0x[0-9a-f]+ \(40 bytes, seq [0-9]+\) overwritten" \
  "#2 heap overflow( or underflow)?: the trailer after chunk" \
  "allocated at +site_alloc ${here}" "detected at +site_first_free ${here}"
# Overflows into the slack between the requested size and the trailer (issue 16, 1); a chunk whose
# usable size the program asked for may be written up to it.
expect slack \
  "check: chunk 0x[0-9a-f]+ \(20 bytes, seq [0-9]+\) overwritten past its end, at offset 20 \(the slack before the trailer\); allocated at +${site}site_alloc\+" \
  "heap overflow: chunk 0x[0-9a-f]+ was written past its 20 requested bytes, at offset 20 \(the allocator's slack before the trailer\); found at free" \
  "allocated at +${site}site_alloc\+" "detected at +${site}site_first_free\+" \
  "slack: usable 24, check found 1 problems"
n=$(grep -Ec '^heapindex\[[0-9]+\]: heap overflow' "$tmp/slack.log")
if [ "$n" != 1 ]; then echo "errors: slack: $n overflows reported at free, expected 1 (not the chunk whose usable size was asked for)"; status=1; fi
expect slack-sizes "slack-sizes: the check found 3 of 3 one-byte overflows" \
  "check: chunk 0x[0-9a-f]+ \(199999 bytes, seq [0-9]+\) overwritten past its end, at offset 199999"
# The trailer key comes from getrandom (issue 16, 7): check words do not follow from the canary's bytes, and
# two runs of the same program get different ones.
expect key "key: 0 of 8 check words follow the canary-derived formula"
first=$(grep '^key: words' "$tmp/key.out")
expect key "key: 0 of 8 check words follow the canary-derived formula"
if [ -z "$first" ] || [ "$first" = "$(grep '^key: words' "$tmp/key.out")" ]; then
  echo "errors: key: two runs wrote the same check words: $first"; status=1
fi
# Another live chunk's valid trailer copied over a chunk's own (issue 13: the 16-byte trailer holds only
# sequence number, thread id and check word): reported at the check and at free, the other chunk intact.
expect trailer-transplant \
  "check: trailer of chunk 0x[0-9a-f]+ \(40 bytes, seq [0-9]+\) overwritten" \
  "heap overflow( or underflow)?: the trailer after chunk 0x[0-9a-f]+ \(at offset 40\) was overwritten; found at free" \
  "trailer-transplant: check found 1 problems, 2 corrupt trailers, b live" \
  "trailer-transplant: 2 corrupt trailers after b's free"
[ "$(grep -Ec '^heapindex\[[0-9]+\]: heap overflow' "$tmp/trailer-transplant.log")" = 1 ] ||
  { echo "errors: trailer-transplant: b's free was reported too"; status=1; }
# a=malloc(24); p=malloc(24); p[-24]='U'; free(a): both candidates named (issue 16, 2).
expect underflow \
  "heap overflow or underflow: the trailer after chunk 0x[0-9a-f]+ \(at offset 24\) was overwritten; found at free" \
  "either chunk 0x[0-9a-f]+ overflowed" "allocated at +${site}site_alloc\+" \
  "or chunk 0x[0-9a-f]+, which starts 8 bytes after that trailer, underflowed \(was written below its start\):" \
  "allocated at +${site}site_alloc_next\+" "detected at +${site}site_first_free\+"
# An overflowed chunk never freed: the exit check names its site, symbolized in the summary.
extra_env=HEAPINDEX_CHECK=exit expect overflow-unfreed \
  "check: trailer of chunk 0x[0-9a-f]+ \(40 bytes, seq [0-9]+\) overwritten; allocated at +${site}site_alloc\+" \
  "check: 1 problems \(1 chunks, 0 client blocks\)" \
  "#1 check: trailer of chunk" "allocated at +site_alloc ${here}"
# A double free past the quarantine: the message says the quarantine is why it is not recognised.
expect quarantine \
  "invalid free\(0x[0-9a-f]+\): not a live chunk; a chunk started here \(or within 32 bytes\) earlier and was freed longer ago than the quarantine reaches \(the last 256 frees of its thread: HEAPINDEX_QUARANTINE\)" \
  "called at +${site}site_second_free\+"
# ... and with a quarantine larger than those frees (HEAPINDEX_QUARANTINE), it is one.
extra_env=HEAPINDEX_QUARANTINE=1000 expect quarantine \
  "double free: free\(0x[0-9a-f]+\) of a chunk already freed" "first freed at +${site}site_first_free\+" \
  "freed again at +${site}site_second_free\+"
# p=malloc(24); free(p); q=realloc(p,32); r=malloc(24): reported, then the index follows the allocator
# and says which chunk it lost (issue 16, 5).
extra_env=HEAPINDEX_CHECK=exit expect realloc-freed \
  "double free: realloc\(0x[0-9a-f]+\) of a chunk already freed" "freed again at +${site}site_realloc\+" \
  "the allocator handed out 0x[0-9a-f]+ again while chunk 0x[0-9a-f]+ was live to the index \(after the heap error reported before\): the index follows the allocator; the older chunk is no longer indexed" \
  "chunk 0x[0-9a-f]+, 32 bytes, seq [0-9]+" "reallocated at +${site}site_realloc\+" \
  "chunk 0x[0-9a-f]+, 24 bytes, seq [0-9]+" "allocated at +${site}site_alloc_next\+" \
  "realloc-freed: q == p, r == p, r found 1 \(24 bytes\), check found 0 problems" \
  "check: sound \(2 chunks"
# Client requests validated (issue 16, 6).
expect client-requests \
  "heapindex_notify_alloc: block runs past the end of the heap chunk that holds it, refused" \
  "heapindex_notify_alloc: block's range wraps around or runs past the indexed address space, refused \(0xffffffffffffff9b\)" \
  "heapindex_notify_alloc: block's range is not \(entirely\) mapped memory, refused \(0x100000\)" \
  "heapindex_notify_alloc: block overlaps a registered block, refused" \
  "check: client block 0x[0-9a-f]+ \(64 bytes, seq [0-9]+\) lies in no live heap chunk: the heap chunk it was registered in has been freed; registered at +${site}site_notify_alloc\+" \
  "client-requests: as expected, check after freeing the pool found 1 problems"
n=$(grep -Ec '^heapindex\[[0-9]+\]: heapindex_notify_alloc: .*refused' "$tmp/client-requests.log")
if [ "$n" != 6 ]; then echo "errors: client-requests: $n refusals reported, expected 6"; status=1; fi

# With HEAPINDEX_STACKS, every report gives the full stacks it knows (issue 16, item 2): the chunk's
# allocation stack, the stack that first freed it, the stack of the erring call; symbolized at exit.
frame() { echo "#$1 +0x[0-9a-f]+ $2\\+"; }
extra_env=HEAPINDEX_STACKS=16 expect double-free \
  "double free: free\(0x[0-9a-f]+\) of a chunk already freed" "^heapindex\[[0-9]+\]:   allocation stack:\$" \
  "$(frame 0 site_alloc)" "^heapindex\[[0-9]+\]:   free stack:\$" "$(frame 0 site_first_free)" \
  "^heapindex\[[0-9]+\]:   freed again by:\$" "$(frame 0 site_second_free)" "$(frame 1 main)"
for f in site_alloc site_first_free site_second_free; do
  n=$(grep -Ec "#0 +0x[0-9a-f]+ $f\+" "$tmp/double-free.log")
  [ "$n" = 1 ] || { echo "errors: double-free with stacks: $n stacks start in $f, expected 1"; status=1; }
done
extra_env=HEAPINDEX_STACKS=16 expect interior \
  "invalid free\(0x[0-9a-f]+\): 16 bytes inside a live chunk" "allocation stack:" "$(frame 0 site_alloc)" \
  "called by:" "$(frame 0 site_second_free)"
extra_env=HEAPINDEX_STACKS=16 expect overflow \
  "heap overflow( or underflow)?: the trailer after chunk" "allocation stack:" "$(frame 0 site_alloc)" \
  "detected by:" "$(frame 0 site_first_free)" \
  "#2 heap overflow" "#0 +site_alloc ${here}" "#1 +main ${here}" "#0 +site_first_free ${here}"
# Without HEAPINDEX_STACKS there are none, nor with one-frame stacks (a profile output alone).  Not when
# the whole script runs with HEAPINDEX_STACKS set (heapindex-errors-stacked: every chunk stacked).
if [ -z "${HEAPINDEX_STACKS:-}" ]; then
expect interior "invalid free"
grep -q "allocation stack:" "$tmp/interior.log" && { echo "errors: interior: a stack without HEAPINDEX_STACKS"; status=1; }
extra_env="HEAPINDEX_REPORT=$tmp/interior.folded" expect interior "invalid free"
grep -q "stack:\|by:" "$tmp/interior.log" && { echo "errors: interior: a one-frame stack printed"; status=1; }
fi

# Functions the dynamic symbol table does not list (a program linked without -rdynamic): the report made
# inside free has only object+offset (dladdr), the exit summary names the function and its line.
if [ -n "$local_prog" ]; then
  prog_saved=$prog prog=$local_prog
  expect overflow \
    "detected at +0x[0-9a-f]+ [^ ]*hi_errors_local\+0x[0-9a-f]+( |\$)" \
    "#2 heap overflow" "allocated at +site_alloc ${here}" "detected at +site_first_free ${here}"
  prog=$prog_saved
fi

# A correct program gets no report at all.
LD_PRELOAD=$lib HEAPINDEX_LOG="$tmp/clean.log" "$prog" none >/dev/null 2>&1
if [ -s "$tmp/clean.log" ]; then echo "errors: a run without heap errors reported:"; cat "$tmp/clean.log"; status=1; fi
exit $status
