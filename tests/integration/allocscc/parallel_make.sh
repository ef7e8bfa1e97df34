#!/bin/bash
# SPDX-License-Identifier: MIT
# make -j with many concurrent allocscc invocations: 24 programs, each compiled and linked through
# allocscc with declared allocation functions (so every link makes its own temporary directory), built
# with -j8 twice over; every program runs, and the temporary directory is empty afterwards.  A link killed
# by SIGTERM in the middle also leaves nothing behind.
. "$(dirname "$0")/common.sh"
mkdir tmp && export TMPDIR=$WORK/tmp
export ALLOCSCC_ALLOC_FNS='xmalloc(Z)p' ALLOCSCC_FREE_FNS='xfree(P)'

cat > lib.c <<'C'
#include <stdlib.h>
void *xmalloc(size_t n) { void *p = malloc(n); if (!p) abort(); return p; }
void xfree(void *p) { free(p); }
C
progs=
for i in $(seq 1 24); do
  cat > "p$i.c" <<C
#include <stdlib.h>
void *xmalloc(size_t); void xfree(void *);
int main(void) { char *p = xmalloc($i); p[0] = 1; xfree(p); return 0; }
C
  progs="$progs p$i"
done
cat > Makefile <<M
CC = $ALLOCSCC
all:$progs
p%: p%.o lib.o
	\$(CC) -o \$@ \$^
%.o: %.c
	\$(CC) -O2 -c \$< -o \$@
clean:
	rm -f *.o$progs
M
for round in 1 2; do
  if make -s -j8 >make.log 2>&1; then pass "make -j8, round $round"; else fail "make -j8, round $round"; cat make.log; fi
  ran=0; for p in $progs; do ./"$p" && ran=$((ran + 1)); done
  check "round $round: all 24 programs run ($ran)" [ "$ran" -eq 24 ]
  check "round $round: every program went through the shims" [ "$(nm p7 | grep -c " __mallochooks_stub_xmalloc$")" -eq 1 ]
  check "round $round: the temporary directory is empty" [ -z "$(ls -A tmp)" ]
  make -s clean
done

# A link interrupted while the linker runs: the compiler is a script that waits at link time (its sleep
# keeps no pipe of the test open).
cat > slowcc <<S
#!/bin/sh
case " \$* " in *" -c "*) ;; *) touch "$WORK/linking"; sleep 30 </dev/null >/dev/null 2>/dev/null ;; esac
exec $CC_UNDER "\$@"
S
chmod +x slowcc
"$CC_UNDER" -c lib.c -o lib.o && "$CC_UNDER" -c p1.c -o p1.o
ALLOCSCC_CC=$WORK/slowcc "$ALLOCSCC" p1.o lib.o -o interrupted &
pid=$!
for _ in $(seq 1 100); do [ -e linking ] && break; sleep 0.1; done
check "the interrupted link had made its temporary directory" [ -n "$(ls -A tmp)" ]
kill -TERM $pid; wait $pid; status=$?
check "SIGTERM during the link: allocscc dies of it (status $status)" [ $status -eq 143 ]
check "SIGTERM during the link: the temporary directory is gone" [ -z "$(ls -A tmp)" ]
finish
