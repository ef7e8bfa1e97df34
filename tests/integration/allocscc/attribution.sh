#!/bin/bash
# SPDX-License-Identifier: MIT
# Multi-file C and C++ programs built with allocscc/allocsc++ and declared allocation functions: the
# allocation site the link-time hooks read is in the caller of the outermost declared wrapper, for every
# linker (bfd, gold, lld), PIE or not; the programs also build and run with -static, through -l archives,
# and with the allocation functions in a shared library built by allocscc (whose own shims set the
# library's site); a function with stack arguments gets a compiled C shim, cached; no temporary file is
# left.
. "$(dirname "$0")/common.sh"
P=$SRC/programs
mkdir tmp && export TMPDIR=$WORK/tmp
export ALLOCSCC_ALLOC_FNS='xmalloc(Z)p xcalloc(zZ)p xstrdup(a)p pool::alloc(Z)p' ALLOCSCC_FREE_FNS='xfree(P)'

# Separate compile steps (as make does), then links in every configuration.  -fPIC (and clang's
# -fsemantic-interposition) keep util.c's own call of xmalloc a call (docs/link-time.md).
pic="-fPIC"; [ "$CC_UNDER" = clang ] && pic="-fPIC -fsemantic-interposition"
for f in util alloc2 main; do "$ALLOCSCC" -O2 $pic -c "$P/c/$f.c" -o "$f.o" || fail "compile $f.c"; done
for ld in bfd gold lld; do
  for pie in -pie -no-pie; do
    rm -f prog
    if "$ALLOCSCC" -fuse-ld=$ld $pie -rdynamic main.o util.o alloc2.o -o prog && ./prog >out; then
      pass "C program, ld.$ld $pie: $(grep -c '^ok' out) checks in the program"
    else
      fail "C program, ld.$ld $pie"; cat out
    fi
  done
done
# One command compiling and linking the sources (the driver's own two steps, as configure does).
check "C program from sources in one command" bash -c "'$ALLOCSCC' -O2 -rdynamic '$P/c/main.c' '$P/c/util.c' '$P/c/alloc2.c' -o prog1 && ./prog1 >/dev/null"
# Through an archive found with -l.
ar rcs libutil.a util.o alloc2.o
check "C program with its allocators in a -l archive" bash -c "'$ALLOCSCC' -rdynamic main.o -L. -lutil -o prog2 && ./prog2 >/dev/null"
# -static: builds and runs (dladdr cannot name functions in a static program: only the exit status of a
# program without the checks is compared).
echo 'void *xmalloc(unsigned long); int main(void) { return xmalloc(3) == 0; }' > s.c
check "-static program" bash -c "'$ALLOCSCC' -static s.c util.o -o prog3 && ./prog3"
# A shared library built by allocscc, and a program linked with it.
check "-shared library with the allocators" "$ALLOCSCC" -shared util.o alloc2.o -o libxutil.so
check "  ... exports xmalloc and no shim" bash -c "nm -D --defined-only libxutil.so | grep -qw xmalloc && ! nm -D --defined-only libxutil.so | grep -q __mallochooks"
# The library's xmalloc reads the library's own site, which the library's own shims set (--defsym): the
# program calling into it gets every check right.
for ld in bfd gold lld; do
  rm -f prog4
  if "$ALLOCSCC" -fuse-ld=$ld -rdynamic main.o -L. -lxutil -Wl,-rpath,"$WORK" -o prog4 && ./prog4 >out; then
    pass "program calling the library's allocation functions, ld.$ld: $(grep -c '^ok' out) checks in the program"
  else
    fail "program calling the library's allocation functions, ld.$ld"; cat out
  fi
done

# C++: a qualified name, an exception through the shim.
for f in pool main; do "$ALLOCSCXX" -O2 -c "$P/cxx/$f.cc" -o "cxx_$f.o" || fail "compile $f.cc"; done
for ld in bfd gold lld; do
  rm -f cxxprog
  if "$ALLOCSCXX" -fuse-ld=$ld -rdynamic cxx_main.o cxx_pool.o -o cxxprog && ./cxxprog >out; then
    pass "C++ program, ld.$ld: $(grep -c '^ok' out) checks in the program"
  else
    fail "C++ program, ld.$ld"; cat out
  fi
done
# The links above compiled nothing: their shims were written as an object of thunks.
check "shims of register-argument functions are written, not compiled" bash -c "[ ! -d shim-cache ] || [ -z \"\$(ls -A shim-cache)\" ]"
# A function with an argument on the stack gets a C shim, compiled once, then taken from the cache.
ALLOCSCC_ALLOC_FNS="$ALLOCSCC_ALLOC_FNS xbig(iiiiiiZ)p" "$ALLOCSCC" -O2 $pic -I"$P/c" -c "$P/c/stack_args.c" -o stack_args.o
stack_link() { ALLOCSCC_ALLOC_FNS="$ALLOCSCC_ALLOC_FNS xbig(iiiiiiZ)p" ALLOCSCC_VERBOSE=1 "$ALLOCSCC" -rdynamic stack_args.o util.o -o "$1"; }
stack_link prog5 2>log
check "a function with stack arguments gets a compiled C shim" bash -c "grep -q 'shims.c' log && ./prog5"
stack_link prog6 2>log
check "a later link takes the compiled shims from the cache" bash -c "grep -q 'shims compiled by an earlier link' log && ./prog6 >/dev/null"
ALLOCSCC_CACHE_DIR= stack_link prog7 2>log
check "ALLOCSCC_CACHE_DIR= compiles the shims every time" bash -c "! grep -q 'earlier link' log && grep -q 'shims.c' log && ./prog7 >/dev/null"
check "no temporary file is left behind" [ -z "$(ls -A tmp)" ]
finish
