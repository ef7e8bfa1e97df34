#!/bin/bash
# SPDX-License-Identifier: MIT
# heapindex-report, which a program under the index starts at exit to write its heap profile, never
# reaches the network and is bounded in time: with DEBUGINFOD_URLS pointing at a local server that
# accepts connections and never answers, `git --version` with HEAPINDEX_STACKS and a profile output exits
# promptly with its folded stacks, and the server sees no connection.  (libdw's standard lookup asks
# debuginfod for every module without local debug information: git has none here.)  The same dump
# converted by hand with --debuginfod does connect: the server would have seen a lookup.  And
# --symbolize-timeout 0 names frames from symbol tables only, saying so on the page.
# Usage: profile_offline.sh HEAPINDEX_REPORT_TOOL LIBHEAPINDEX
set -u
tool=$(realpath "$1") lib=$(realpath "$2")
tmp=$(mktemp -d)
server=
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$tmp"' EXIT
fail() { echo "profile offline: $*"; exit 1; }
command -v git >/dev/null || { echo "profile offline: git not installed, skipped"; exit 77; }

python3 "$(dirname "$0")/silent_server.py" "$tmp" &
server=$!
for _ in $(seq 100); do [ -f "$tmp/port" ] && break; sleep 0.1; done
[ -f "$tmp/port" ] || fail "the local server did not start"
port=$(cat "$tmp/port")
net=(DEBUGINFOD_URLS="http://127.0.0.1:$port" DEBUGINFOD_TIMEOUT=300 XDG_CACHE_HOME="$tmp/cache")
connections() { cat "$tmp/connections" 2>/dev/null || echo 0; }

start=$(date +%s)
out=$(cd "$tmp" && env -u HEAPINDEX_STACKS_SAMPLE -u HEAPINDEX_LEAKS "${net[@]}" HEAPINDEX_STACKS=16 \
      HEAPINDEX_REPORT=g.folded,g.hiprof LD_PRELOAD="$lib" timeout 100 git --version 2>"$tmp/err"); rc=$?
elapsed=$(($(date +%s) - start))
[ $rc -eq 0 ] || fail "git --version under the index exited $rc after $elapsed s (124: killed by timeout): $(head -5 "$tmp/err")"
[ "$elapsed" -lt 30 ] || fail "git --version with a heap profile took $elapsed s"
case $out in "git version"*) ;; *) fail "git printed '$out'" ;; esac
[ -s "$tmp/err" ] && fail "unexpected stderr: $(head -5 "$tmp/err")"
grep -q "__libc_start_main;" "$tmp/g.folded" || fail "the folded stacks do not name __libc_start_main: $(head -3 "$tmp/g.folded")"
[ "$(connections)" = 0 ] || fail "heapindex-report connected to the debuginfod server $(connections) times"
[ -e "$tmp/cache/debuginfod_client" ] && fail "a debuginfod cache directory was created"

# Symbol tables only: no file:line on the page, and the page says why.
"$tool" --from "$tmp/g.hiprof" --html "$tmp/t.html" --symbolize-timeout 0 || fail "--symbolize-timeout 0 failed"
grep -q 'id="symbolize-timeout"' "$tmp/t.html" || fail "the page does not say that symbolizing ran out of time"
grep -q '"__libc_start_main"' "$tmp/t.html" || fail "symbol-table names missing with --symbolize-timeout 0"

# The check has teeth: asked to, the converter does query the server (each query given up after 1 s).
env "${net[@]}" DEBUGINFOD_TIMEOUT=1 timeout 60 "$tool" --from "$tmp/g.hiprof" --folded "$tmp/d.folded" --debuginfod ||
  fail "heapindex-report --debuginfod failed"
[ "$(connections)" -gt 0 ] || fail "with --debuginfod the server saw no connection: the check above proves nothing"
echo "profile offline: profile written in $elapsed s, no connection to DEBUGINFOD_URLS unless --debuginfod"
