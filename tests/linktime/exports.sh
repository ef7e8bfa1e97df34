#!/bin/bash
# SPDX-License-Identifier: MIT
# The dynamic symbols of outputs linked with the link-time backends are what their users expect: each
# hooked output exports exactly the symbols of its twin, the same objects linked without hooks, and
# neither exports nor refers to any name of the hooks' own (__wrap_, __real_, __mallochooks_).  Exported:
# a global or weak, default or protected dynamic symbol; gold also writes local entries for the TLS
# relocations of a library's initial-exec variables (the hooks' reentrancy depth), which bind nothing.
# Usage: exports.sh PRINT_FAMILY TWIN:HOOKED[:entries]...
#   :entries  the hooked output is a wrapdl library linked without a version script: it also exports
#             __mallochooks_wrapdl_X for each family function (backends/wrapdl/entry.cc says why).
set -u
family=$("$1") || exit 1; shift
status=0
# Non-local dynamic symbols: NAME for definitions, "UND NAME" for references.
dynamic() {
  readelf -W --dyn-syms "$1" | awk '$1 ~ /^[0-9]+:$/ && $5 != "LOCAL" && ($6 == "DEFAULT" || $6 == "PROTECTED") && $8 != "" {
    print ($7 == "UND" ? "UND " : "") $8 }' | sed 's/@.*//' | sort -u
}
defined() { dynamic "$1" | grep -v '^UND '; }
for spec in "$@"; do
  IFS=: read -r twin hooked entries <<<"$spec"
  expected=$(defined "$twin")
  hooks='__wrap_|__real_|__mallochooks_'
  if [ -n "$entries" ]; then
    expected=$(printf '%s\n%s\n' "$expected" "$(echo "$family" | sed 's/^/__mallochooks_wrapdl_/')" | sort)
    hooks='__wrap_|__real_|__mallochooks_(real|fallback)'
  fi
  actual=$(defined "$hooked")
  name=$(basename "$hooked")
  if [ "$expected" != "$actual" ]; then
    echo "exports: $name exports differ from $(basename "$twin")'s (< expected, > actual):"
    diff <(echo "$expected") <(echo "$actual"); status=1
  elif dynamic "$hooked" | grep -E "^(UND )?($hooks)"; then
    echo "exports: $name shows names of the hooks' own in its dynamic symbols"; status=1
  else
    echo "exports: $name: $(echo "$actual" | wc -l) dynamic symbols, as without hooks${entries:+ plus the wrapdl entry points}"
  fi
done
exit $status
