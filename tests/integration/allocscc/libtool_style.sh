#!/bin/bash
# SPDX-License-Identifier: MIT
# A shared library built the way libtool builds one (jq's libjq, sqlite's libsqlite3): its interface is a
# version script, which libtool passes as `-Wl,-version-script -Wl,FILE`, and it defines declared
# allocation functions.  For every spelling the linkers accept (one dash or two, `=`, a comma, a separate
# -Wl, or -Xlinker argument, a driver or a linker response file) and each linker: the link works (allocscc
# sees the user's script and adds none of its own, which ld.bfd could not combine), the library exports
# exactly what its script says, its soname is kept, and a program using it runs under libheapindex.so with
# every chunk's site at the caller of jv_mem_alloc.
# Usage: libtool_style.sh ALLOCSCC ALLOCSCXX CC CXX SOURCE_DIR RUNTIME_DIR LIBHEAPINDEX_SO
. "$(dirname "$0")/common.sh"
HEAPINDEX=$7
P=$SRC/programs/shapes
mkdir tmp .libs && export TMPDIR=$WORK/tmp
export ALLOCSCC_ALLOC_FNS='jv_mem_alloc(Z)p' ALLOCSCC_FREE_FNS='jv_mem_free(P)'
"$ALLOCSCC" -O2 -fPIC -c "$P/libtool_lib.c" -o .libs/libtool_lib.o
"$ALLOCSCC" -O2 -I"$SRC/../../../include" -c "$P/libtool_main.c" -o main.o
cp "$P/libtool_lib.ver" .libs/libjv.ver
echo '-Wl,-version-script -Wl,.libs/libjv.ver' > link.rsp
printf -- '-version-script\n.libs/libjv.ver\n' > ld.rsp
spellings=("-Wl,-version-script -Wl,.libs/libjv.ver" "-Wl,-version-script=.libs/libjv.ver"
           "-Wl,--version-script=.libs/libjv.ver" "-Wl,--version-script,.libs/libjv.ver"
           "-Wl,-version-script,.libs/libjv.ver" "-Xlinker --version-script -Xlinker .libs/libjv.ver"
           "-Xlinker -version-script=.libs/libjv.ver" "@link.rsp" "-Wl,@ld.rsp")
for ld in bfd gold lld; do
  for spelling in "${spellings[@]}"; do
    what="ld.$ld, $spelling"
    rm -f .libs/libjv.so* prog
    # shellcheck disable=SC2086
    if ! "$ALLOCSCC" -shared -fPIC -fuse-ld="$ld" .libs/libtool_lib.o -Wl,-soname -Wl,libjv.so.1 $spelling \
        -o .libs/libjv.so.1.0.0 2>log; then
      fail "$what: the library links"; cat log; continue
    fi
    ln -s libjv.so.1.0.0 .libs/libjv.so.1 && ln -s libjv.so.1.0.0 .libs/libjv.so
    exports=$(nm -D --defined-only --extern-only .libs/libjv.so.1.0.0 | awk '{print $3}' | sort | tr '\n' ' ')
    check "$what: exports exactly its version script's names ($exports)" [ "$exports" = "jv_make jv_mem_alloc jv_mem_free " ]
    check "$what: soname kept" bash -c "readelf -d .libs/libjv.so.1.0.0 | grep -q 'SONAME.*\[libjv.so.1\]'"
    if ! "$ALLOCSCC" -fuse-ld="$ld" -rdynamic main.o -L.libs -ljv -Wl,-rpath,"$WORK/.libs" -o prog 2>log; then
      fail "$what: the program links"; cat log; continue
    fi
    check "$what: runs without the index" bash -c "./prog | grep -q 'ran without the index'"
    if HEAPINDEX_LOG=/dev/null LD_PRELOAD=$HEAPINDEX ./prog >out 2>&1; then
      pass "$what: sites at the callers of jv_mem_alloc"
    else
      fail "$what: under the index"; cat out
    fi
  done
done
check "no temporary file is left behind" [ -z "$(ls -A tmp)" ]
finish
