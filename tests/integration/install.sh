#!/bin/bash
# SPDX-License-Identifier: MIT
# `meson install` puts headers, libraries and the pkg-config file in the usual places, and what it
# installs is enough to build a C event client against: pkg-config finds the headers, the client links
# with the installed libmallochooks_preload.a, and the result works preloaded.
# Usage: install.sh BUILD_DIR SOURCE_DIR CHECK_PROGRAM
set -u
build=$1 src=$2 check=$3
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "install: $*"; exit 1; }

meson install -C "$build" --no-rebuild --destdir "$tmp/root" >"$tmp/log" 2>&1 || { cat "$tmp/log"; fail "meson install failed"; }
prefix=$(meson introspect "$build" --buildoptions | sed -n 's/.*"name": "prefix", "value": "\([^"]*\)".*/\1/p')
[ -n "$prefix" ] || prefix=/usr/local
root=$tmp/root$prefix
for h in family.h hooks.h events.h dynamic.h; do
  [ -f "$root/include/mallochooks/$h" ] || fail "header mallochooks/$h not installed"
done
pc=$(find "$root" -name mallochooks.pc | head -1)
[ -n "$pc" ] || fail "mallochooks.pc not installed"
for lib in libmalloctrace.so libmallochooks_noop.so libmallochooks_preload.a; do
  [ -n "$(find "$root" -name "$lib")" ] || fail "$lib not installed"
done
cflags=$(PKG_CONFIG_PATH=$(dirname "$pc") PKG_CONFIG_SYSROOT_DIR=$tmp/root pkg-config --cflags mallochooks) || fail "pkg-config does not know mallochooks"
case "$cflags" in *"$root/include"*) ;; *) fail "pkg-config --cflags gives '$cflags', not $root/include" ;; esac
libdir=$(dirname "$(find "$root" -name libmallochooks_preload.a | head -1)")
cc -shared -fPIC $cflags -fvisibility=hidden "$src/tests/integration/c_client/client.c" -o "$tmp/libclient.so" \
  -L"$libdir" -Wl,--whole-archive -lmallochooks_preload -Wl,--no-whole-archive -Wl,--no-undefined \
  >"$tmp/cc.log" 2>&1 || { cat "$tmp/cc.log"; fail "a C client does not build against the installed files"; }
readelf -d "$tmp/libclient.so" | grep -q 'NEEDED.*libstdc++' && fail "the client needs libstdc++"
LD_PRELOAD=$tmp/libclient.so "$check" || fail "the client built from installed files does not work"
# The gdb commands: the script is where libheapindex.so's .debug_gdb_scripts says (gdb's auto-load
# directory), and it runs the installed heapindex-inspect.
hlib=$(find "$tmp/root" -name libheapindex.so | head -1)
[ -n "$hlib" ] || fail "libheapindex.so not installed"
script=$(readelf -p .debug_gdb_scripts "$hlib" | sed -n 's/^ *\[ *[0-9a-f]*\] *\(\/.*\.py\)$/\1/p')
[ -n "$script" ] && [ -f "$tmp/root$script" ] || fail "libheapindex.so names '$script' for gdb, which is not installed"
helper=$(find "$tmp/root" -name heapindex-inspect -perm -u+x | head -1)
[ -n "$helper" ] || fail "heapindex-inspect not installed"
grep -q "${helper#$tmp/root}" "$tmp/root$script" || fail "the gdb script does not run the installed heapindex-inspect"
echo "install: headers, libraries and mallochooks.pc installed; a C client builds against them and works;" \
  "the gdb script is at $script and runs ${helper#$tmp/root}"
