#!/bin/bash
# SPDX-License-Identifier: MIT
# Programs built by allocscc carry the link-time hooks: they run without any preload, and under a
# preloaded tool (librecorder.so, standing in for libheapindex.so) every chunk is seen once, with the
# caller of xmalloc as the caller of a chunk xmalloc made -- over glibc's malloc (wrap backend) and over an
# allocator the executable defines (wrapdl backend), with each linker.
# Usage: hooked.sh ALLOCSCC ALLOCSCXX CC CXX SOURCE_DIR RUNTIME_DIR RECORDER_SO
. "$(dirname "$0")/common.sh"
RECORDER=$7
P=$SRC/programs
mkdir tmp && export TMPDIR=$WORK/tmp
export ALLOCSCC_ALLOC_FNS='xmalloc(Z)p xcalloc(zZ)p xstrdup(a)p' ALLOCSCC_FREE_FNS='xfree(P)'
inc="-I$SRC/.. -I$P/c"
for own in "" -DOWN_ALLOCATOR; do
  backend=wrap; [ -n "$own" ] && backend=wrapdl
  # -fPIC (and clang's -fsemantic-interposition) keep the allocator's own calls to malloc as calls the
  # linker can divert (docs/link-time.md, "What the compiler must leave alone").
  extra=; [ "$CC_UNDER" = clang ] && extra=-fsemantic-interposition
  "$ALLOCSCC" -O2 -fPIC $extra $own $inc -c "$P/hooked/events.c" -o events.o || fail "compile ($backend)"
  "$ALLOCSCC" -O2 -fPIC -c "$P/c/util.c" -o util.o && "$ALLOCSCC" -O2 -fPIC -c "$P/c/alloc2.c" -o alloc2.o
  for ld in bfd gold lld; do
    rm -f prog
    if ! ALLOCSCC_VERBOSE=1 "$ALLOCSCC" -fuse-ld=$ld -rdynamic events.o util.o alloc2.o -o prog 2>log; then
      fail "$backend, ld.$ld: link"; cat log; continue
    fi
    check "$backend, ld.$ld: allocscc chose the $backend backend" grep -q "backend $backend" log
    check "$backend, ld.$ld: runs without a preload" bash -c "./prog | grep -q 'ran without a tool'"
    if LD_PRELOAD=$RECORDER ./prog --recorder >out 2>&1; then
      pass "$backend, ld.$ld: under the recorder, one event per chunk, callers right: $(tr '\n' ';' <out)"
    else
      fail "$backend, ld.$ld: under the recorder"; cat out
    fi
  done
done
check "no temporary file is left behind" [ -z "$(ls -A tmp)" ]
finish
