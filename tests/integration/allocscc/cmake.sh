#!/bin/bash
# SPDX-License-Identifier: MIT
# A CMake project with CC=allocscc CXX=allocsc++: configure (compiler identification and checks), build
# with make -j2, and run the C and C++ attribution programs and a program against a shared library.
. "$(dirname "$0")/common.sh"
mkdir tmp && export TMPDIR=$WORK/tmp
export ALLOCSCC_ALLOC_FNS='xmalloc(Z)p xcalloc(zZ)p xstrdup(a)p pool::alloc(Z)p' ALLOCSCC_FREE_FNS='xfree(P)'
if CC=$ALLOCSCC CXX=$ALLOCSCXX cmake -S "$SRC/projects/cmake" -B build -G "Unix Makefiles" >cmake.log 2>&1; then
  pass "cmake configures with allocscc and allocsc++"
else
  fail "cmake configure"; cat cmake.log
fi
check "cmake identified the underlying C compiler" grep -qiE "The C compiler identification is $(case $CC_UNDER in gcc) echo GNU ;; clang) echo Clang ;; esac)" cmake.log
if make -C build -j2 >make.log 2>&1; then pass "make -j2"; else fail "make -j2"; cat make.log; fi
for p in attribution_c attribution_cxx; do
  if build/$p >out; then pass "$p: $(grep -c '^ok' out) checks ok"; else fail "$p"; cat out; fi
done
build/with_library >/dev/null; status=$?
check "the program linked with the shared library runs (status $status)" [ $status -le 1 ]
check "no temporary file is left behind" [ -z "$(ls -A tmp)" ]
finish
