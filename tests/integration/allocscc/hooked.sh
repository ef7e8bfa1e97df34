#!/bin/bash
# SPDX-License-Identifier: MIT
# Programs built by allocscc carry the link-time hooks: they run without any preload, and under a
# preloaded tool (librecorder.so, standing in for libheapindex.so) every chunk is seen once, with the
# caller of xmalloc as the caller of a chunk xmalloc made -- over glibc's malloc (wrap backend), over an
# allocator the executable defines in an object or through a static archive (wrapdl backend), and over one
# in a shared library built by allocscc (wrapdl there, wrap in the program), with each linker.
# Usage: hooked.sh ALLOCSCC ALLOCSCXX CC CXX SOURCE_DIR RUNTIME_DIR RECORDER_SO
. "$(dirname "$0")/common.sh"
RECORDER=$7
P=$SRC/programs
mkdir tmp && export TMPDIR=$WORK/tmp
export ALLOCSCC_ALLOC_FNS='xmalloc(Z)p xcalloc(zZ)p xstrdup(a)p' ALLOCSCC_FREE_FNS='xfree(P)'
inc="-I$SRC/.. -I$P/c"
# -fPIC (and clang's -fsemantic-interposition) keep an allocator's own calls to malloc as calls the linker
# can divert (docs/link-time.md, "What the compiler must leave alone").
pic="-fPIC"; [ "$CC_UNDER" = clang ] && pic="-fPIC -fsemantic-interposition"
"$ALLOCSCC" -O2 $pic -c "$P/c/util.c" -o util.o && "$ALLOCSCC" -O2 $pic -c "$P/c/alloc2.c" -o alloc2.o
"$ALLOCSCC" -O2 $pic -c "$P/hooked/bump.c" -o bump.o && ar rcs libbumpa.a bump.o
"$ALLOCSCC" -O2 $pic $inc -c "$P/hooked/events.c" -o events.o
"$ALLOCSCC" -O2 $pic -DOWN_ALLOCATOR $inc -c "$P/hooked/events.c" -o events_own.o
# A shared library with the allocator, built by allocscc (wrapdl); -Bsymbolic binds its internal calls.
ALLOCSCC_VERBOSE=1 "$ALLOCSCC" -shared -Wl,-Bsymbolic bump.o -o libbump.so 2>log || fail "allocscc -shared libbump.so"
check "the shared library with its own allocator is linked on the wrapdl backend" grep -q "backend wrapdl" log
check "  ... and exports what it exported before: malloc, not the entry points" \
  bash -c "nm -D --defined-only libbump.so | grep -qw malloc && ! nm -D --defined-only libbump.so | grep -q __mallochooks"
# name, backend, link inputs
configs=("glibc's malloc|wrap|events.o"
         "allocator in an object|wrapdl|events_own.o bump.o"
         "allocator in a static archive|wrapdl|events_own.o -L. -lbumpa"
         "allocator in a shared library|wrap|events_own.o -L. -lbump -Wl,-rpath,$WORK")
for config in "${configs[@]}"; do
  IFS='|' read -r what backend inputs <<<"$config"
  for ld in bfd gold lld; do
    # shellcheck disable=SC2086
    link_as "$what" "$backend" "$ld" $inputs util.o alloc2.o || continue
    check "$what, ld.$ld: runs without a preload" bash -c "./prog | grep -q 'ran without a tool'"
    if LD_PRELOAD=$RECORDER ./prog --recorder >out 2>&1; then
      pass "$what, ld.$ld: under the recorder, one event per chunk, callers right: $(tr '\n' ';' <out)"
    else
      fail "$what, ld.$ld: under the recorder"; cat out
    fi
  done
done
check "no temporary file is left behind" [ -z "$(ls -A tmp)" ]
finish
