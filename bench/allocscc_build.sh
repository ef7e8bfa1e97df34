#!/bin/bash
# SPDX-License-Identifier: MIT
# allocscc's cost, side by side with the underlying compiler: build time of a generated multi-file C project
# (each compile step, and the link: plain, and with declared allocation functions so that shims are made:
# the first link of a build, with an empty shim cache, and the next ones; xmalloc/xfree take their
# arguments in registers, so both write the shims as an object of thunks and compile nothing -- only a
# function with stack arguments gets a compiled C shim, cached),
# and the run time of the same program built both ways (no event client loaded): with the hooks only, and
# with the hooks and the shims of its declared xmalloc/xfree.  Targets from the issue:
# compile steps ~1.0x, links <= 1.5x.  Run on demand (`meson test --benchmark`, or directly):
#   allocscc_build.sh ALLOCSCC CC RUNTIME_DIR [FILES] [ROUNDS]
set -eu
ALLOCSCC=$1 CC_UNDER=$2 FILES=${4:-40} ROUNDS=${5:-3}
export ALLOCSCC_CC=$CC_UNDER ALLOCSCC_RUNTIME_DIR=$3
WORK=$(mktemp -d "${TMPDIR:-/tmp}/allocscc-bench-XXXXXX")
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"

# The project: FILES translation units of ordinary code that allocate through xmalloc, and a main that
# calls them all in a loop.
cat > util.c <<'C'
#include <stdlib.h>
void *xmalloc(size_t n) { void *p = malloc(n); if (!p) abort(); return p; }
void xfree(void *p) { free(p); }
C
{
  echo '#include <stdio.h>'
  for i in $(seq 1 "$FILES"); do echo "long unit$i(long);"; done
  echo 'int main(void) { long s = 0; for (long r = 0; r < 2000; ++r) {'
  for i in $(seq 1 "$FILES"); do echo "  s += unit$i(r);"; done
  echo '} printf("%ld\n", s); return 0; }'
} > main.c
for i in $(seq 1 "$FILES"); do
  cat > "unit$i.c" <<C
#include <string.h>
void *xmalloc(unsigned long); void xfree(void *);
struct node$i { struct node$i *next; long v[$((i % 7 + 1))]; };
long unit$i(long r) {
  struct node$i *head = 0;
  for (long k = 0; k < 20; ++k) { struct node$i *n = xmalloc(sizeof *n); memset(n, 0, sizeof *n); n->v[0] = k * r + $i; n->next = head; head = n; }
  long s = 0;
  while (head) { struct node$i *n = head->next; s += head->v[0]; xfree(head); head = n; }
  return s;
}
C
done
sources="main.c util.c $(seq -f 'unit%g.c' 1 "$FILES")"

now() { date +%s%N; }
# timed VAR COMMAND...: adds the command's wall time (ns) to VAR.
timed() { local var=$1; shift; local t0; t0=$(now); "$@" >/dev/null; eval "$var=\$(( $var + $(now) - t0 ))"; }

compile_cc=0 compile_acc=0 link_cc=0 link_acc=0 link_cold=0 link_warm=0 run_cc=0 run_plain=0 run_acc=0
declared() { env ALLOCSCC_ALLOC_FNS='xmalloc(Z)p' ALLOCSCC_FREE_FNS='xfree(P)' ALLOCSCC_CACHE_DIR="$1" "${@:2}"; }
for round in $(seq 1 "$ROUNDS"); do
  for s in $sources; do  # interleaved, so that both see the same machine load
    timed compile_cc "$CC_UNDER" -O2 -c "$s" -o "cc_${s%.c}.o"
    timed compile_acc "$ALLOCSCC" -O2 -c "$s" -o "acc_${s%.c}.o"
  done
  timed link_cc "$CC_UNDER" cc_*.o -o prog_cc
  timed link_acc "$ALLOCSCC" acc_*.o -o prog_acc_plain
  # The first link of a build (empty cache: cold), and a later one (warm).
  timed link_cold declared "$WORK/cache-$round" "$ALLOCSCC" acc_*.o -o prog_acc
  timed link_warm declared "$WORK/cache-$round" "$ALLOCSCC" acc_*.o -o prog_acc
  timed run_cc ./prog_cc
  timed run_plain ./prog_acc_plain
  timed run_acc ./prog_acc
done
cmp <(./prog_cc) <(./prog_acc) >/dev/null || { echo "the two programs disagree"; exit 1; }

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", b / a }'; }
ms() { awk -v n="$1" -v r="$ROUNDS" 'BEGIN { printf "%.1f ms", n / r / 1e6 }'; }
printf '%-44s %12s %12s %8s\n' "$FILES-file project, $ROUNDS rounds (mean)" "$CC_UNDER" allocscc ratio
printf '%-44s %12s %12s %8s\n' "compile steps (all $(echo $sources | wc -w))" "$(ms $compile_cc)" "$(ms $compile_acc)" "$(ratio $compile_cc $compile_acc)"
printf '%-44s %12s %12s %8s\n' "link, nothing declared" "$(ms $link_cc)" "$(ms $link_acc)" "$(ratio $link_cc $link_acc)"
printf '%-44s %12s %12s %8s\n' "link, xmalloc/xfree declared, first (cold)" "$(ms $link_cc)" "$(ms $link_cold)" "$(ratio $link_cc $link_cold)"
printf '%-44s %12s %12s %8s\n' "link, xmalloc/xfree declared, next (warm)" "$(ms $link_cc)" "$(ms $link_warm)" "$(ratio $link_cc $link_warm)"
printf '%-44s %12s %12s %8s\n' "run, hooks, no event client loaded" "$(ms $run_cc)" "$(ms $run_plain)" "$(ratio $run_cc $run_plain)"
printf '%-44s %12s %12s %8s\n' "run, hooks + xmalloc/xfree shims" "$(ms $run_cc)" "$(ms $run_acc)" "$(ratio $run_cc $run_acc)"
