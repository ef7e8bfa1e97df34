#!/bin/bash
# SPDX-License-Identifier: MIT
# Each preloaded runtime library exports exactly the user API and the __libc_ names (from the family list) plus its own extra symbols,
# and needs neither libstdc++ nor libgcc_s at run time.
# Usage: exports.sh PRINT_FAMILY LIBRARY[:extra,extra...]...
# An extras list that starts with "-," means the library exports only the extras, not the user API.
set -u
family=$("$1" preload) || exit 1; shift
status=0
for spec in "$@"; do
  lib=${spec%%:*}; extras=; api=$family
  if [ "$spec" != "$lib" ]; then
    rest=${spec#*:}
    case $rest in -,*) api=; rest=${rest#-,} ;; esac
    extras=$(echo "$rest" | tr ',' '\n')
  fi
  expected=$(printf '%s\n%s\n' "$api" "$extras" | sed '/^$/d' | sort)
  actual=$(nm -D --defined-only "$lib" | awk '{print $3}' | sed 's/@.*//' | sort)
  if [ "$expected" != "$actual" ]; then
    echo "exports: $(basename "$lib") exports differ from the list (< expected, > actual):"
    diff <(echo "$expected") <(echo "$actual"); status=1
  fi
  if readelf -d "$lib" | grep -E 'NEEDED.*(libstdc\+\+|libgcc_s)'; then
    echo "exports: $(basename "$lib") needs the C++ runtime"; status=1
  fi
  if nm -D --undefined-only "$lib" | grep -E ' _Z|@(GLIBCXX|CXXABI|GCC)_'; then
    echo "exports: $(basename "$lib") refers to C++ runtime symbols"; status=1
  fi
  [ $status -eq 0 ] && echo "exports: $(basename "$lib"): $(echo "$actual" | wc -l) symbols as listed, no C++ runtime"
done
exit $status
