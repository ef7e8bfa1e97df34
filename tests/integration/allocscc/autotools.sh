#!/bin/bash
# SPDX-License-Identifier: MIT
# An autotools project end to end with CC=allocscc: autoreconf, ./configure (its compiler checks must
# pass, and every check must find what it finds with the underlying compiler: config.h is identical),
# make -j2, and the built program's attribution checks.
. "$(dirname "$0")/common.sh"
mkdir tmp && export TMPDIR=$WORK/tmp
for kind in cc allocscc; do
  mkdir $kind && cp "$SRC"/projects/autotools/* "$SRC"/programs/c/*.[ch] $kind/
  (cd $kind && autoreconf -i >autoreconf.log 2>&1) || { fail "autoreconf ($kind)"; cat $kind/autoreconf.log; }
done
(cd cc && ./configure CC="$CC_UNDER" >configure.log 2>&1) || fail "configure with $CC_UNDER"
export ALLOCSCC_ALLOC_FNS='xmalloc(Z)p xcalloc(zZ)p xstrdup(a)p' ALLOCSCC_FREE_FNS='xfree(P)'
if (cd allocscc && ./configure CC="$ALLOCSCC" >configure.log 2>&1); then
  pass "./configure CC=allocscc passes its compiler checks"
else
  fail "./configure CC=allocscc"; tail -30 allocscc/config.log
fi
check "config.h is the same as with $CC_UNDER" diff cc/config.h allocscc/config.h
check "configure found the same things (cache variables)" diff <(grep -v -E '^ac_cv_(env|prog)_|^ac_cv_c_compiler|CC' cc/config.log | grep '^ac_cv_' ) \
  <(grep -v -E '^ac_cv_(env|prog)_|^ac_cv_c_compiler|CC' allocscc/config.log | grep '^ac_cv_')
if (cd allocscc && make -j2 >make.log 2>&1); then pass "make -j2"; else fail "make -j2"; cat allocscc/make.log; fi
if allocscc/attribution >out; then pass "the program's attribution checks: $(grep -c '^ok' out) ok"; else fail "attribution"; cat out; fi
check "the program went through the shims" [ "$(nm allocscc/attribution | grep -c ' __mallochooks_stub_xmalloc$')" -eq 1 ]
check "no temporary file is left behind" [ -z "$(ls -A tmp)" ]
finish
