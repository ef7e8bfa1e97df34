#!/bin/bash
# SPDX-License-Identifier: MIT
# Bad input gives a clear message naming the problem and a non-zero exit, and builds nothing: an unknown
# ALLOCSCC_* setting, a malformed value, a malformed descriptor (with its position), a descriptor file
# that cannot be read, a missing underlying compiler, allocscc as its own underlying compiler, LTO input
# to a link that must inspect it.
. "$(dirname "$0")/common.sh"

echo 'int main(void) { return 0; }' > m.c
mkdir tmp && export TMPDIR=$WORK/tmp
# expect_error DESCRIPTION EXPECTED_STATUS MESSAGE_PATTERN ENV... -- ARGS...
expect_error() {
  local what=$1 want=$2 pattern=$3; shift 3
  local envs=()
  while [ "$1" != -- ]; do envs+=("$1"); shift; done; shift
  rm -f m.o a.out
  env "${envs[@]}" "$ALLOCSCC" "$@" >out 2>err; local status=$?
  if [ "$status" -eq "$want" ] && grep -qE -- "$pattern" err && [ ! -e m.o ] && [ ! -e a.out ]; then
    pass "$what: status $status, '$(head -1 err)'"
  else
    fail "$what: status $status (want $want), stderr: $(cat err)"
  fi
}
expect_error "unknown setting" 1 '^allocscc: error: unknown setting ALLOCSCC_ALLOCFNS \(known: ALLOCSCC_CC' \
  ALLOCSCC_ALLOCFNS='xmalloc(Z)p' -- -c m.c
expect_error "unknown setting, even empty" 1 'unknown setting ALLOCSCC_VERBOS ' ALLOCSCC_VERBOS= -- m.c
expect_error "malformed flag" 1 "ALLOCSCC_VERBOSE='yes': expected 0 or 1" ALLOCSCC_VERBOSE=yes -- -c m.c
expect_error "malformed descriptor" 1 "ALLOCSCC_ALLOC_FNS:1:21: unknown argument code 'q'" \
  ALLOCSCC_ALLOC_FNS='xmalloc(Z)p xcalloc(qZ)p' -- -c m.c
expect_error "descriptor of the wrong kind" 1 "ALLOCSCC_FREE_FNS:1:1: 'xfree\(Z\)': a free function needs a 'P' argument" \
  ALLOCSCC_FREE_FNS='xfree(Z)' -- m.c
expect_error "family function declared" 1 "'malloc' is a malloc-family function" ALLOCSCC_ALLOC_FNS='malloc(Z)p' -- m.c
printf 'alloc xmalloc(Z)p\nfree  xfree(P) xfree(P)\n' > fns.txt
expect_error "descriptor file: name declared twice" 1 "fns.txt:2:16: 'xfree' is declared twice \(first at fns.txt:2:7\)" \
  -- --alloc-fns=fns.txt -c m.c
echo '--alloc-fns=fns.txt -c' > fns.rsp
expect_error "descriptor file named in a response file: name declared twice" 1 "fns.txt:2:16: 'xfree' is declared twice" \
  -- @fns.rsp m.c
printf 'alloc xmalloc(Z)p\n' > good_fns.txt && echo '--alloc-fns=good_fns.txt -c' > good.rsp
check "a response file with --alloc-fns: the compiler gets the rest" bash -c "'$ALLOCSCC' @good.rsp m.c -o m_rsp.o && [ -f m_rsp.o ]"
expect_error "descriptor file missing" 1 "ALLOCSCC_FNS_FILE: cannot read 'nofile.txt': No such file or directory" \
  ALLOCSCC_FNS_FILE=nofile.txt -- -c m.c
expect_error "missing compiler" 127 "the C compiler 'no-such-cc' \(ALLOCSCC_CC\) was not found" ALLOCSCC_CC=no-such-cc -- -c m.c
expect_error "missing compiler at link" 127 "the C compiler '/nonexistent/gcc' \(ALLOCSCC_CC\) was not found" \
  ALLOCSCC_CC=/nonexistent/gcc ALLOCSCC_ALLOC_FNS='xmalloc(Z)p' -- m.c
expect_error "empty compiler" 1 "ALLOCSCC_CC is empty" ALLOCSCC_CC= -- -c m.c
expect_error "allocscc as its own compiler" 127 "is allocscc itself" ALLOCSCC_CC="$ALLOCSCC" -- -c m.c
# allocsc++ names its own variable.
out=$(ALLOCSCC_CXX=no-such-cxx "$ALLOCSCXX" -c m.c 2>&1); status=$?
check "allocsc++ names ALLOCSCC_CXX ($out)" [ $status -eq 127 -a -n "$(echo "$out" | grep "C++ compiler 'no-such-cxx' (ALLOCSCC_CXX)")" ]

# LTO: refused with a message that says why, when the link has to be inspected.
"$CC_UNDER" -flto -c m.c -o lto.o
expect_error "LTO input" 1 "link-time optimisation is not supported: lto.o \(.* LTO object|LLVM bitcode\) is compiler IR" ALLOCSCC_ALLOC_FNS='xmalloc(Z)p' -- lto.o
check "no temporary file is left behind" [ -z "$(ls -A tmp)" ]
finish
