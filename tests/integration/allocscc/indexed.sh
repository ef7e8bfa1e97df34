#!/bin/bash
# SPDX-License-Identifier: MIT
# Programs built by allocscc under LD_PRELOAD=libheapindex.so: every chunk is indexed, with the caller of
# xmalloc as the allocation site of a chunk xmalloc made (read back through heapindex_lookup), the caller
# of a declared static function for its chunks (one frame unwound), a
# suballocator's blocks indexed as client blocks, usable sizes without the index's trailer, and
# heapindex_check sound -- over glibc's malloc, over an allocator the executable defines (in an object or
# through a static archive that defines malloc), over one in a shared library built by allocscc, and with
# xmalloc itself in a shared library built by allocscc; with each linker.  The static archive is also
# named through linker words and a linker response file: its alias copy takes the place of those words.
# With gdb's heap commands (GDB_SCRIPT): the program with its own allocator, stopped in its first
# heapindex_check, answers `heap sites` with the same sites (the pool's: the suballocator's real body,
# renamed by allocscc) and `heap check` sound.
# Usage: indexed.sh ALLOCSCC ALLOCSCXX CC CXX SOURCE_DIR RUNTIME_DIR LIBHEAPINDEX_SO [GDB_SCRIPT]
. "$(dirname "$0")/common.sh"
HEAPINDEX=$7 GDB_SCRIPT=${8:-}
P=$SRC/programs
mkdir tmp && export TMPDIR=$WORK/tmp
export ALLOCSCC_ALLOC_FNS='xmalloc(Z)p xcalloc(zZ)p xstrdup(a)p local_xmalloc(Z)p' ALLOCSCC_FREE_FNS='xfree(P)'
export ALLOCSCC_SUBALLOC_FNS='pool_alloc(Z)p pool_free(P)'
inc="-I$SRC/../../../include -I$P/c"
pic="-fPIC"; [ "$CC_UNDER" = clang ] && pic="-fPIC -fsemantic-interposition"
"$ALLOCSCC" -O2 $pic -c "$P/c/util.c" -o util.o && "$ALLOCSCC" -O2 $pic -c "$P/c/alloc2.c" -o alloc2.o
"$ALLOCSCC" -O2 $pic -c "$P/hooked/bump.c" -o bump.o && ar rcs libbumpa.a bump.o
"$ALLOCSCC" -O2 $pic $inc -c "$P/indexed/indexed.c" -o indexed.o
"$ALLOCSCC" -O2 $pic -DOWN_ALLOCATOR $inc -c "$P/indexed/indexed.c" -o indexed_own.o
printf -- '-L.\n-lbumpa\n' > bumpa.rsp
check "a shared library with its own allocator" "$ALLOCSCC" -shared -Wl,-Bsymbolic bump.o -o libbump.so
check "a shared library with xmalloc" "$ALLOCSCC" -shared util.o alloc2.o -o libxutil.so
# name, backend, link inputs
configs=("glibc's malloc|wrap|indexed.o util.o alloc2.o"
         "the executable's own allocator|wrapdl|indexed_own.o bump.o util.o alloc2.o"
         "a static archive that defines malloc|wrapdl|indexed_own.o util.o alloc2.o -L. -lbumpa"
         "that archive named by linker words|wrapdl|indexed_own.o util.o alloc2.o -Wl,-L. -Xlinker -l -Xlinker bumpa"
         "that archive named in a linker response file|wrapdl|indexed_own.o util.o alloc2.o -Wl,@bumpa.rsp"
         "allocator in a shared library built by allocscc|wrap|indexed_own.o util.o alloc2.o -L. -lbump -Wl,-rpath,$WORK"
         "xmalloc in a shared library built by allocscc|wrap|indexed.o -L. -lxutil -Wl,-rpath,$WORK")
for config in "${configs[@]}"; do
  IFS='|' read -r what backend inputs <<<"$config"
  for ld in bfd gold lld; do
    # shellcheck disable=SC2086
    link_as "$what" "$backend" "$ld" $inputs || continue
    check "$what, ld.$ld: runs without the index" bash -c "./prog | grep -q 'ran without the index'"
    # With the exit report (its symbolizer dlopens libdw, whose allocations reach the program's allocator)
    # and a log of heap errors, which must stay empty: with the allocator in an allocscc-built library,
    # every free used to cross the index twice (false double frees: the tool's terminal jumped to the
    # library's free, whose hooks then took the call for the program's own), and libbump.so's calloc,
    # compiled into a call to itself, recursed without end from that dlopen.
    rm -f hi.log hi.report
    if HEAPINDEX_LOG=$WORK/hi.log HEAPINDEX_REPORT=$WORK/hi.report LD_PRELOAD=$HEAPINDEX ./prog >out 2>&1; then
      pass "$what, ld.$ld: every chunk indexed, sites right, heap sound"
    else
      fail "$what, ld.$ld: under the index"; cat out
    fi
    if [ -s hi.log ]; then fail "$what, ld.$ld: heap errors reported"; head -20 hi.log; else pass "$what, ld.$ld: no heap error reported"; fi
    check "$what, ld.$ld: the exit report is written" grep -q "at exit: " hi.report
    if [ -n "$GDB_SCRIPT" ] && command -v gdb >/dev/null && [ "$backend" = wrapdl ] && [ "$ld" = bfd ] && [ "$what" = "the executable's own allocator" ]; then
      gdb -nx -batch -x "$GDB_SCRIPT" -ex "set environment LD_PRELOAD=$HEAPINDEX" -ex 'set environment HEAPINDEX_LOG=/dev/null' \
        -ex 'set breakpoint pending on' -ex 'break heapindex_v1_check' -ex run -ex 'heap sites' -ex 'heap check' ./prog >gdb.out 2>&1
      missing=
      for site in site_xmalloc site_xcalloc site_xstrdup site_malloc site_local '\[client block\] site_pool' '(__mallochooks_real_)?pool_alloc'; do
        grep -Eq "^ +[0-9]+ +1  $site " gdb.out || missing="$missing $site"
      done
      if [ -z "$missing" ] && grep -q '^check: sound (7 chunks, 1 client blocks' gdb.out; then
        pass "$what, ld.$ld: gdb's heap sites and heap check see the same chunks"
      else
        fail "$what, ld.$ld: gdb's heap commands (missing:$missing)"; cat gdb.out
      fi
    fi
  done
done
check "no temporary file is left behind" [ -z "$(ls -A tmp)" ]
finish
