# SPDX-License-Identifier: MIT
# Shared by the allocscc integration scripts: arguments, a private work directory removed at exit, and
# check helpers that count and print every assertion (a script fails when any check failed).
# Usage of a script: SCRIPT ALLOCSCC ALLOCSCXX CC CXX SOURCE_DIR RUNTIME_DIR (libmallochooks.a's directory)
set -u
ALLOCSCC=$1 ALLOCSCXX=$2 CC_UNDER=$3 CXX_UNDER=$4 SRC=${5:-} RUNTIME=${6:-}
export ALLOCSCC_CC=$CC_UNDER ALLOCSCC_CXX=$CXX_UNDER ALLOCSCC_RUNTIME_DIR=$RUNTIME
# Nothing of the caller's environment may change what allocscc does.
for v in $(env | sed -n 's/^\(ALLOCSCC_[A-Z_]*\)=.*/\1/p'); do
  case $v in ALLOCSCC_CC|ALLOCSCC_CXX|ALLOCSCC_RUNTIME_DIR) ;; *) unset "$v" ;; esac
done
WORK=$(mktemp -d "${TMPDIR:-/tmp}/allocscc-test-XXXXXX")
trap 'rm -rf "$WORK"' EXIT
cd "$WORK" || exit 1
# Compiled shims are cached per test, never in the user's cache.
export ALLOCSCC_CACHE_DIR=$WORK/shim-cache
checks=0 failures=0
pass() { checks=$((checks + 1)); echo "ok: $*"; }
fail() { checks=$((checks + 1)); failures=$((failures + 1)); echo "FAILED: $*"; }
# check DESCRIPTION COMMAND...: the command must succeed.
check() { local what=$1; shift; if "$@"; then pass "$what"; else fail "$what"; fi; }
# link_as WHAT BACKEND LD INPUTS...: link ./prog from INPUTS with allocscc and -fuse-ld=LD, and check that
# allocscc chose BACKEND; fails (after reporting) when the link does.
link_as() {
  local what=$1 backend=$2 ld=$3; shift 3
  rm -f prog
  if ! ALLOCSCC_VERBOSE=1 "$ALLOCSCC" -fuse-ld="$ld" -rdynamic "$@" -o prog 2>log; then
    fail "$what, ld.$ld: link"; cat log; return 1
  fi
  check "$what, ld.$ld: allocscc chose the $backend backend" grep -q "backend $backend" log
}
finish() { echo "$((checks - failures)) of $checks checks passed"; [ "$failures" -eq 0 ]; }
