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
echo "install: headers, libraries and mallochooks.pc installed; a C client builds against them and works"
