#!/bin/bash
# SPDX-License-Identifier: MIT
# Real programs from the machine (python3, perl, sqlite3, gcc, git) run unchanged under each given preload
# library: same standard output, same exit status as without it.  For libmalloctrace.so the summary must
# also show that allocations were seen.  Usage: real_programs.sh LIBRARY...
set -u
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
# Absolute library paths: the git case changes directory, and a relative LD_PRELOAD would then load
# nothing (ld.so's complaint goes to the discarded stderr, and git would pass without hooks).
libs=()
for lib in "$@"; do libs+=("$(realpath "$lib")"); done
set -- "${libs[@]}"

cat >"$tmp/hello.c" <<'C'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
int main(void) { char *s = strdup("compiled under hooks"); printf("%s %zu\n", s, strlen(s)); free(s); return 0; }
C
cat >"$tmp/prog.py" <<'PY'
import collections, json, re, sqlite3, hashlib
d = {str(i): [i] * (i % 7) for i in range(20000)}
s = json.dumps(d)
print(len(s), sum(len(v) for v in json.loads(s).values()))
print(collections.Counter(re.findall(r"\d", s)).most_common(3))
db = sqlite3.connect(":memory:")
db.execute("create table t(a, b)")
db.executemany("insert into t values (?, ?)", ((i, "x" * (i % 50)) for i in range(5000)))
print(db.execute("select count(*), sum(a), sum(length(b)) from t").fetchone())
print(hashlib.sha256(s.encode()).hexdigest())
PY

case_python()  { /usr/bin/python3 "$tmp/prog.py"; }
case_perl()    { perl -e 'my %h; $h{$_} = "v" x ($_ % 40) for 1..100000; my $t = 0; $t += length($h{$_}) for keys %h; print scalar(keys %h), " $t\n"; my @s = sort { $a <=> $b } map { $_ * 7 % 1000 } 1..50000; print "@s[0..5]\n";'; }
case_sqlite()  { sqlite3 :memory: "create table t(a,b); with recursive c(x) as (select 1 union all select x+1 from c where x<20000) insert into t select x, 'r' || x from c; create index i on t(b); select count(*), sum(a), max(length(b)) from t; select count(*) from t where b like 'r1%';"; }
case_gcc()     { gcc -O2 -o "$tmp/hello" "$tmp/hello.c" && "$tmp/hello"; }
case_git() {
  rm -rf "$tmp/repo" && mkdir "$tmp/repo" && cd "$tmp/repo" || return 1
  export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.com GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@example.com
  export GIT_AUTHOR_DATE='2026-01-01T00:00:00Z' GIT_COMMITTER_DATE='2026-01-01T00:00:00Z' GIT_CONFIG_NOSYSTEM=1 HOME="$tmp"
  git init -q -b main . && for i in 1 2 3; do seq 1 $((i * 1000)) >"f$i"; git add "f$i"; git commit -q -m "commit $i"; done
  git log --format='%H %s' && git status --porcelain && git gc -q && git count-objects
  cd "$tmp" || return 1
}
cases="python perl sqlite gcc git"

status=0
for c in $cases; do
  (case_$c) >"$tmp/$c.expected" 2>/dev/null; echo "exit $?" >>"$tmp/$c.expected"
  [ "$(wc -l <"$tmp/$c.expected")" -gt 1 ] || { echo "real programs: $c printed nothing without hooks"; status=1; }
done
for lib in "$@"; do
  name=$(basename "$lib")
  for c in $cases; do
    rm -f "$tmp"/trace.*
    (export MALLOCTRACE_OUTPUT="$tmp/trace.%p" LD_PRELOAD="$lib"; case_$c) >"$tmp/$c.got" 2>"$tmp/$c.err"
    echo "exit $?" >>"$tmp/$c.got"
    if ! cmp -s "$tmp/$c.expected" "$tmp/$c.got"; then
      echo "real programs: $c behaves differently under $name:"; diff "$tmp/$c.expected" "$tmp/$c.got" | head -20
      head -20 "$tmp/$c.err"; status=1; continue
    fi
    if [ "$name" = libmalloctrace.so ]; then
      allocs=$(cat "$tmp"/trace.* 2>/dev/null | awk '$2 == "post_successful_alloc" { s += $3 } END { print s + 0 }')
      if [ "$allocs" -lt 100 ]; then echo "real programs: $c under $name: the trace shows only $allocs allocations"; status=1; continue; fi
      echo "real programs: $c unchanged under $name ($allocs allocations traced)"
    else
      echo "real programs: $c unchanged under $name"
    fi
  done
done
exit $status
