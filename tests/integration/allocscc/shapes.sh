#!/bin/bash
# SPDX-License-Identifier: MIT
# Small fixtures of the shapes that misled users on real projects, each checked under libheapindex.so:
#  - sqlite's: a declared static wrapper that reaches malloc through a function pointer, or through an
#    undeclared static helper.  Declared alone it attributes nothing, and the link says so in a warning
#    that names the function to declare with it; declared with it, the sites are the wrapper's callers
#    (the hooks unwind through every declared static function).  At -O0 and -O2, with each linker.
#  - zlib's: allocation functions with 32-bit sizes (zcalloc(opaque, uInt items, uInt size), declared
#    `zcalloc(anN)p`) called through the stream's pointers, and a suballocator with 32-bit sizes, whose
#    blocks reach the index with their size n * N (a C shim: stubgen's thunks read whole registers); PIE
#    and not, with each linker.
#  - a program built without -g: the heap index's exit report names two sites of one function by their
#    offsets (two_sites+0xe, two_sites+0x1f), where it printed the same label twice.
# Usage: shapes.sh ALLOCSCC ALLOCSCXX CC CXX SOURCE_DIR RUNTIME_DIR LIBHEAPINDEX_SO
. "$(dirname "$0")/common.sh"
HEAPINDEX=$7
P=$SRC/programs/shapes
inc=-I$SRC/../../../include
mkdir tmp && export TMPDIR=$WORK/tmp

# under_index WHAT: runs ./prog under the index; every expect_site line must be ok.
under_index() {
  check "$1: runs without the index" bash -c "./prog | grep -q 'ran without the index'"
  if HEAPINDEX_LOG=/dev/null LD_PRELOAD=$HEAPINDEX ./prog >out 2>&1; then
    pass "$1: sites at the callers ($(grep -c '^ok' out) chunks)"
  else
    fail "$1: under the index"; cat out
  fi
}

for opt in -O0 -O2; do
  "$ALLOCSCC" $opt $inc -c "$P/static_pointer.c" -o static_pointer.o
  for ld in bfd gold lld; do
    what="static wrappers, $opt, ld.$ld"
    rm -f prog
    if ! ALLOCSCC_ALLOC_FNS='wrapper_malloc(Z)p wrapper_helped(Z)p' "$ALLOCSCC" -fuse-ld=$ld -rdynamic static_pointer.o \
        -o prog 2>log; then
      fail "$what, wrappers alone: link"; cat log; continue
    fi
    check "$what, wrappers alone: the link warns that wrapper_malloc should be declared with mem_malloc" \
      grep -q "warning: wrapper_malloc (ALLOCSCC_ALLOC_FNS:1:1) is a static function of static_pointer.o that makes no allocation call of its own.*declare as well: mem_malloc (its address is taken: called through a pointer)" log
    check "$what, wrappers alone: ... and wrapper_helped with helper_malloc" \
      grep -q "warning: wrapper_helped .*declare as well: helper_malloc (which it calls)" log
    check "$what, wrappers alone: mem_free is no advice for an allocation function" bash -c "! grep -q mem_free log"
    rm -f prog
    if ! ALLOCSCC_ALLOC_FNS='wrapper_malloc(Z)p wrapper_helped(Z)p mem_malloc(i)p helper_malloc(Z)p' \
        "$ALLOCSCC" -fuse-ld=$ld -rdynamic static_pointer.o -o prog 2>log; then
      fail "$what, as advised: link"; cat log; continue
    fi
    check "$what, as advised: no warning" bash -c "! grep -q warning log"
    under_index "$what, as advised"
  done
done

"$ALLOCSCC" -O2 -fPIE $inc -c "$P/narrow_sizes.c" -o narrow_pie.o
"$ALLOCSCC" -O2 -fno-pie $inc -c "$P/narrow_sizes.c" -o narrow_nopie.o
export ALLOCSCC_ALLOC_FNS='zcalloc(anN)p' ALLOCSCC_FREE_FNS='zcfree(aP)' ALLOCSCC_SUBALLOC_FNS='pool32_alloc(nN)p pool32_free(P)'
for ld in bfd gold lld; do
  for pie in pie no-pie; do
    what="32-bit sizes, $pie, ld.$ld"
    obj=narrow_nopie.o; [ $pie = pie ] && obj=narrow_pie.o
    rm -f prog
    if ! "$ALLOCSCC" -fuse-ld=$ld -$pie -rdynamic $obj -o prog 2>log; then fail "$what: link"; cat log; continue; fi
    under_index "$what"
  done
done

# A program built without -g: the exit report tells two sites of one function apart by their offsets.
unset ALLOCSCC_ALLOC_FNS ALLOCSCC_FREE_FNS ALLOCSCC_SUBALLOC_FNS
if "$ALLOCSCC" -O2 -g0 "$P/nodebug_sites.c" -o prog 2>log; then
  HEAPINDEX_REPORT=stderr HEAPINDEX_SYMBOLIZE=libdw LD_PRELOAD=$HEAPINDEX ./prog 2>report
  offsets=$(sed -n 's/.*  two_sites+\(0x[0-9a-f]*\) in .*/\1/p' report | sort -u | wc -l)
  check "no -g: the exit report names each site by its offset in the function ($(grep two_sites report | tr -s ' ' | tr '\n' ';'))" \
    [ "$offsets" -eq 2 ]
else
  fail "no -g: link"; cat log
fi
# An allocator whose calloc is malloc + memset: gcc -O2 makes it a call to calloc, itself (the tests'
# bump allocator did that); the link says so.  Whether the compiler did it is read from the object.
cat >selfcall.c <<'EOF'
#include <stddef.h>
#include <string.h>
static char arena[1 << 16];
static size_t used;
void *malloc(size_t n) { void *p = arena + used; used += (n + 15) & ~(size_t)15; return p; }
void free(void *p) { (void)p; }
void *calloc(size_t a, size_t b) { void *p = malloc(a * b); return p ? memset(p, 0, a * b) : p; }
EOF
if "$ALLOCSCC" -O2 -fPIC -c selfcall.c -o selfcall.o && "$ALLOCSCC" -shared selfcall.o -o libselfcall.so 2>log; then
  if objdump -dr selfcall.o | sed -n '/<calloc>:/,/^$/p' | grep -q 'R_X86_64_PLT32[[:space:]]*calloc'; then
    check "a calloc compiled into a call to itself: warned" grep -q "warning: calloc in selfcall.o calls calloc itself.*-fno-builtin-malloc" log
  else
    check "a calloc that does not call itself: no warning" bash -c "! grep -q 'calls calloc itself' log"
  fi
else
  fail "self-calling calloc: link"; cat log
fi
check "no temporary file is left behind" [ -z "$(ls -A tmp)" ]
finish
