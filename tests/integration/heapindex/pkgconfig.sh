#!/bin/bash
# SPDX-License-Identifier: MIT
# `pkg-config --cflags mallochooks` finds mallochooks/heapindex.h: install the build into a temporary
# prefix, ask pkg-config there, and compile a program that includes the header with those flags only.
# Usage: pkgconfig.sh BUILD_DIR SOURCE_FILE C_COMPILER
set -u
build=$1 source=$2 cc=$3
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
meson install -C "$build" --no-rebuild --destdir "$tmp/root" >"$tmp/install.log" 2>&1 ||
  { echo "pkgconfig: meson install failed:"; tail -20 "$tmp/install.log"; exit 1; }
pc=$(find "$tmp/root" -name mallochooks.pc | head -1)
[ -n "$pc" ] || { echo "pkgconfig: no mallochooks.pc installed"; exit 1; }
prefix=$(PKG_CONFIG_PATH=$(dirname "$pc") pkg-config --variable=prefix mallochooks)
flags=$(PKG_CONFIG_PATH=$(dirname "$pc") pkg-config --define-variable=prefix="$tmp/root$prefix" --cflags mallochooks) ||
  { echo "pkgconfig: pkg-config does not know mallochooks"; exit 1; }
# shellcheck disable=SC2086
$cc $flags -o "$tmp/prog" "$source" || { echo "pkgconfig: compiling with '$flags' failed"; exit 1; }
"$tmp/prog" absent >/dev/null || { echo "pkgconfig: the program built with '$flags' does not run"; exit 1; }
echo "pkgconfig: pkg-config --cflags mallochooks gives '$flags', enough to build against mallochooks/heapindex.h"
