#!/bin/bash
# SPDX-License-Identifier: MIT
# The exit report's symbolizer never reaches the network and is bounded in time: with DEBUGINFOD_URLS
# pointing at a local server that accepts connections and never answers, a program under the index with
# the report on exits promptly, with its report, and the server sees no connection at all.  (libdw's
# standard lookup asks debuginfod for every module without local debug information: git has none here.)
# Usage: symbolizer_offline.sh LIBHEAPINDEX
set -u
lib=$1
tmp=$(mktemp -d)
server=
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$tmp"' EXIT
fail() { echo "symbolizer offline: $*"; exit 1; }
command -v git >/dev/null || { echo "symbolizer offline: git not installed, skipped"; exit 77; }

python3 "$(dirname "$0")/silent_server.py" "$tmp" &
server=$!
for _ in $(seq 100); do [ -f "$tmp/port" ] && break; sleep 0.1; done
[ -f "$tmp/port" ] || fail "the local server did not start"
port=$(cat "$tmp/port")

start=$(date +%s)
out=$(env DEBUGINFOD_URLS="http://127.0.0.1:$port" DEBUGINFOD_TIMEOUT=300 XDG_CACHE_HOME="$tmp/cache" \
      HEAPINDEX_REPORT=stderr LD_PRELOAD="$lib" timeout 100 git --version 2>"$tmp/err"); rc=$?
elapsed=$(($(date +%s) - start))
[ $rc -eq 0 ] || fail "git --version under the index exited $rc after $elapsed s (124: killed by timeout)"
[ "$elapsed" -lt 30 ] || fail "git --version took $elapsed s"
case $out in "git version"*) ;; *) fail "git printed '$out'" ;; esac
grep -q "at exit:" "$tmp/err" || fail "no exit report: $(head -5 "$tmp/err")"
kill "$server"; wait "$server" 2>/dev/null; server=
[ "$(cat "$tmp/connections" 2>/dev/null || echo 0)" = 0 ] ||
  fail "the symbolizer connected to the debuginfod server $(cat "$tmp/connections") times"
[ -e "$tmp/cache/debuginfod_client" ] && fail "a debuginfod cache directory was created"
echo "symbolizer offline: exit report in $elapsed s, no connection to DEBUGINFOD_URLS"
