#!/bin/bash
# SPDX-License-Identifier: MIT
# Multi-file C and C++ programs built with allocscc/allocsc++ and declared allocation functions: the
# allocation site the link-time hooks will read is in the caller of the outermost declared wrapper, for
# every linker (bfd, gold, lld), PIE or not; the programs also build and run with -static, as shared
# libraries, and through -l archives; no temporary file is left.
. "$(dirname "$0")/common.sh"
P=$SRC/programs
mkdir tmp && export TMPDIR=$WORK/tmp
export ALLOCSCC_ALLOC_FNS='xmalloc(Z)p xcalloc(zZ)p xstrdup(a)p pool::alloc(Z)p' ALLOCSCC_FREE_FNS='xfree(P)'

# Separate compile steps (as make does), then links in every configuration.
for f in util alloc2 main; do "$ALLOCSCC" -O2 -fPIC -c "$P/c/$f.c" -o "$f.o" || fail "compile $f.c"; done
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
# It runs; its checks cannot pass yet: the library's xmalloc reads the library's own site, which only the
# library's own stub (--defsym, with the link-time backends) will set (docs/allocscc.md).
check "program linked with that library runs" bash -c "'$ALLOCSCC' main.o -L. -lxutil -Wl,-rpath,'$WORK' -o prog4 && ./prog4 >/dev/null; test \$? -le 1"

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
# The shims of the links above were compiled once per compiler and language setting, then reused.
ALLOCSCC_VERBOSE=1 "$ALLOCSCC" -rdynamic main.o util.o alloc2.o -o prog5 2>log
check "a later link takes the compiled shims from the cache" grep -q "shims compiled by an earlier link" log
rm -rf nocache && ALLOCSCC_CACHE_DIR= ALLOCSCC_VERBOSE=1 "$ALLOCSCC" -rdynamic main.o util.o alloc2.o -o prog6 2>log
check "ALLOCSCC_CACHE_DIR= compiles the shims every time" bash -c "! grep -q 'earlier link' log && grep -q 'shims.c' log && ./prog6 >/dev/null"
check "no temporary file is left behind" [ -z "$(ls -A tmp)" ]
finish
