#!/bin/bash
# SPDX-License-Identifier: MIT
# allocscc and allocsc++ behave exactly like the underlying compiler for every invocation that does not
# link: same output files byte for byte, same stdout, same stderr, same exit status -- for -c, -S, -E, -M,
# --version, -print-*, -###, failing compiles, unknown options and response files.
. "$(dirname "$0")/common.sh"

cat > a.c <<'C'
#include <stdio.h>
#include "a.h"
int f(int x) { return x * A_FACTOR; }
C
echo '#define A_FACTOR 3' > a.h
cat > b.cc <<'C'
#include <vector>
int g() { std::vector<int> v{1, 2}; return v[1]; }
C
printf 'int broken( {\n' > bad.c
printf -- '-O2 -DFROM_RSP=1\n"a.c"\n' > args.rsp

# same WRAPPER UNDER -- ARGS...: run both in a fresh directory of the same name (debug information records
# it), compare exit status, stdout, stderr and every file they made.  Only the driver's own random
# temporary names (-### prints them) are made equal.
n=0
run_in() {
  local out=$1; shift
  mkdir run; cp a.c a.h b.cc bad.c args.rsp run
  (cd run && "$@" >stdout 2>stderr; echo $? >status)
  sed -i -E 's#/tmp/cc[A-Za-z0-9]{6}#/tmp/ccXXXXXX#g' run/stderr
  mv run "$out"
}
same() {
  local wrapper=$1 under=$2; shift 3
  n=$((n + 1))
  local d1=w$n d2=u$n
  run_in "$d1" "$wrapper" "$@"
  run_in "$d2" "$under" "$@"
  if diff -r "$d1" "$d2" >/dev/null; then
    pass "$(basename "$wrapper") $* == $under (status $(cat "$d1/status"))"
  else
    fail "$(basename "$wrapper") $* differs from $under:"; diff -r "$d1" "$d2" | head -20
  fi
}

for args in "-c a.c" "-c a.c -o x.o" "-O2 -g -c a.c" "-S a.c" "-S -o - a.c" "-E a.c" "-E -dM a.c" "-M a.c" "-MM a.c" \
            "-MD -MF deps.d -c a.c" "-c bad.c" "-c missing.c" "--version" "-dumpmachine" "-print-search-dirs" \
            "-print-file-name=libc.so" "-print-prog-name=ld" "-### -c a.c" "-c @args.rsp" "-Wall -Wextra -fno-common -c a.c" \
            "-Wno-unknown-warning-option -Wfrobnicate -c a.c" "--frobnicate -c a.c" "-fsyntax-only a.c" "-c -x c - -o stdin.o" \
            "-v" ""; do
  # shellcheck disable=SC2086
  same "$ALLOCSCC" "$CC_UNDER" -- $args </dev/null
done
for args in "-c b.cc" "-O2 -S b.cc" "-E b.cc" "-std=c++20 -c b.cc -o b.o" "-c a.c -x c++ b.cc"; do
  # shellcheck disable=SC2086
  same "$ALLOCSCXX" "$CXX_UNDER" -- $args
done
# Arguments with blanks and quotes pass through untouched, in order.
same "$ALLOCSCC" "$CC_UNDER" -- -c '-DMSG="two words"' -D'Q=a b' a.c
# Declared allocation functions change nothing for compile steps.
export ALLOCSCC_ALLOC_FNS='xmalloc(Z)p' ALLOCSCC_FREE_FNS='xfree(P)'
same "$ALLOCSCC" "$CC_UNDER" -- -O2 -c a.c
same "$ALLOCSCC" "$CC_UNDER" -- -S a.c
finish
