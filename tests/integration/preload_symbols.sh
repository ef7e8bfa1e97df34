#!/bin/bash
# SPDX-License-Identifier: MIT
# A preloaded tool carries none of the link-time-only code (backends/linktime/): no one-frame unwinder,
# no static-allocator lookup, no shim trampolines, no adopted layer.  Those are for hooks linked into an
# output (libmallochooks.a); a preloaded library that links them pays their size and start-up relocations
# for nothing.  Checked on the full symbol table (nm, not nm -D: the pieces are hidden), defined or not.
# The link-time runtime itself must hold every pattern, so that a renamed namespace makes this fail
# instead of passing on nothing.
# Usage: preload_symbols.sh LIBMALLOCHOOKS.A PRELOADED_LIBRARY_OR_ARCHIVE...
set -u
patterns=(
  'mallochooks::unwind::'             # one_frame_unwind.cc
  'mallochooks::static_allocators::'  # static_allocators.cc
  '__mallochooks_static_'             # static_allocators.cc, shim_trampolines.S
  '__mallochooks_site_trampoline'     # shim_trampolines.S
  '__mallochooks_suballoc_'           # shim_trampolines.S, suballoc_notify.cc
  'mallochooks::find_tool'            # adopted_layer.cc
)
status=0
archive=$1; shift
archive_symbols=$(nm -C "$archive" 2>/dev/null) || { echo "preload-symbols: cannot read $archive"; exit 1; }
for p in "${patterns[@]}"; do
  if ! grep -qF -- "$p" <<<"$archive_symbols"; then
    echo "preload-symbols: $(basename "$archive") has no symbol matching '$p': the pattern is stale"; status=1
  fi
done
for lib in "$@"; do
  symbols=$(nm -C "$lib" 2>/dev/null)
  # Without a symbol table (a stripped library) the check below would pass on nothing.
  if ! grep -qF 'mallochooks::' <<<"$symbols"; then
    echo "preload-symbols: $(basename "$lib") has no mallochooks symbols in its symbol table (stripped?)"; status=1
    continue
  fi
  found=0
  for p in "${patterns[@]}"; do
    if hits=$(grep -F -- "$p" <<<"$symbols"); then
      echo "preload-symbols: $(basename "$lib") carries link-time-only code ('$p'):"; echo "$hits" | head -5
      found=1; status=1
    fi
  done
  [ $found -eq 0 ] && echo "preload-symbols: $(basename "$lib"): no link-time-only symbols"
done
exit $status
