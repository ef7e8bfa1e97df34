#!/bin/bash
# SPDX-License-Identifier: MIT
# Real programs run unchanged under libheapindex.so, and every process they start ends with a sound
# index (HEAPINDEX_CHECK=exit) and no heap error reported: python3, perl, sqlite3, gcc and git through
# ../real_programs.sh (same output, same exit status as without the index), then a few of Python's own
# regression tests (Debian's libpython3.11-testsuite).  Usage: real.sh REAL_PROGRAMS_SH LIBHEAPINDEX
set -u
real_programs=$1 lib=$2
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
status=0
export HEAPINDEX_CHECK=exit HEAPINDEX_LOG="$tmp/log.%p"

"$real_programs" "$lib" || status=1

if /usr/bin/python3 -c 'import test.test_json' 2>/dev/null; then
  LD_PRELOAD=$lib /usr/bin/python3 -m test -q test_json test_re test_dict test_collections >"$tmp/pytest.out" 2>&1
  rc=$?
  if [ $rc -ne 0 ] || ! grep -q "Tests result: SUCCESS" "$tmp/pytest.out"; then
    echo "real programs: Python's regression tests failed under the index (exit $rc):"; tail -20 "$tmp/pytest.out"; status=1
  else
    echo "real programs: Python's test_json, test_re, test_dict and test_collections pass under the index"
  fi
else
  echo "real programs: Python's test suite is missing (apt install libpython3.11-testsuite)"; status=1
fi

logs=("$tmp"/log.*)
sound=$(cat "${logs[@]}" 2>/dev/null | grep -c "check: sound")
if [ "$sound" -lt 10 ]; then echo "real programs: only $sound processes reported a sound index"; status=1; fi
if cat "${logs[@]}" 2>/dev/null | grep -v "check: sound" | grep -q .; then
  echo "real programs: the index reported problems:"; cat "${logs[@]}" | grep -v "check: sound" | head -30; status=1
fi
echo "real programs: $sound processes ended with a sound index and no heap error reported"
exit $status
