#!/bin/bash
# SPDX-License-Identifier: MIT
# The weak-reference API in a PIE and a non-PIE program, with and without the index loaded.
# Usage: weak_api.sh PIE_PROGRAM NON_PIE_PROGRAM LIBHEAPINDEX
set -u
pie=$1 nopie=$2 lib=$3
status=0
[ "$(readelf -h "$pie" | awk '/Type:/ {print $2}')" = DYN ] || { echo "weak api: $pie is not PIE"; status=1; }
[ "$(readelf -h "$nopie" | awk '/Type:/ {print $2}')" = EXEC ] || { echo "weak api: $nopie is PIE"; status=1; }
for prog in "$pie" "$nopie"; do
  if out=$(env -u LD_PRELOAD "$prog" absent); then echo "weak api: $(basename "$prog") without the index: $out"
  else echo "weak api: $(basename "$prog") without the index failed: $out"; status=1; fi
  if out=$(LD_PRELOAD=$lib "$prog" present); then echo "weak api: $(basename "$prog") under the index: $out"
  else echo "weak api: $(basename "$prog") under the index failed: $out"; status=1; fi
done
exit $status
