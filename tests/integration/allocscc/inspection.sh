#!/bin/bash
# SPDX-License-Identifier: MIT
# What allocscc finds in a link's inputs, through the real command (ALLOCSCC_VERBOSE=1 prints it): an
# executable with its own allocator, a -shared library with its own allocator and a program linked with
# it, a static archive that defines malloc (only the members the link pulls), -l libraries through -L and
# through the compiler's own search path, and a static allocation function.  Every program runs.
. "$(dirname "$0")/common.sh"
export ALLOCSCC_VERBOSE=1

cat > myalloc.c <<'C'
#include <stddef.h>
#include <string.h>
/* A bump allocator: the program's own malloc. */
static char arena[1 << 20];
static size_t used;
void *malloc(size_t n) { n = (n + 15) & ~(size_t)15; if (used + n > sizeof arena) return NULL; used += n; return arena + used - n; }
void free(void *p) { (void)p; }
void *realloc(void *p, size_t n) { void *q = malloc(n); if (q && p) memcpy(q, p, n); return q; }
C
cat > mycalloc.c <<'C'
#include <stdlib.h>
#include <string.h>
void *calloc(size_t a, size_t b) { void *p = malloc(a * b); return p ? memset(p, 0, a * b) : p; }
C
cat > main.c <<'C'
#include <stdlib.h>
static void *local_alloc(size_t n) { return malloc(n); }
void *(*volatile use)(size_t) = local_alloc;
int main(void) { char *p = use(10); p[0] = 1; free(p); return 0; }
C
for f in myalloc mycalloc main; do "$CC_UNDER" -O2 -fPIC -c $f.c; done

# expect_found DESCRIPTION PATTERN: the last link's verbose output has a line matching PATTERN.
expect_found() { if grep -qE -- "$2" log; then pass "$1"; else fail "$1 (no '$2' in:)"; cat log; fi; }
expect_absent() { if grep -qE -- "$2" log; then fail "$1 ('$2' found in:)"; cat log; else pass "$1"; fi; }

export ALLOCSCC_ALLOC_FNS='local_alloc(Z)p'
check "executable with its own allocator links and runs" bash -c "'$ALLOCSCC' main.o myalloc.o -o exe_own 2>log && ./exe_own"
expect_found "  ... malloc is defined in myalloc.o" "defines malloc-family function malloc in myalloc.o$"
expect_found "  ... realloc too" "defines malloc-family function realloc in myalloc.o$"
expect_found "  ... the static allocation function is seen" "defines static allocation function local_alloc in main.o$"

check "-shared library with its own allocator" bash -c "'$ALLOCSCC' -shared myalloc.o -o libmyalloc.so 2>log"
expect_found "  ... malloc is defined in the library" "defines malloc-family function malloc in myalloc.o$"
check "program linked with that library runs" bash -c "'$ALLOCSCC' main.o -L. -lmyalloc -Wl,-rpath,'$WORK' -o exe_dso 2>log && ./exe_dso"
expect_found "  ... -lmyalloc is the shared library" "link inputs: main.o \./libmyalloc.so$"
expect_absent "  ... and the program does not define malloc" "malloc-family function malloc"

ar rcs libmymalloc.a myalloc.o mycalloc.o
check "program linked with a static archive that defines malloc" bash -c "'$ALLOCSCC' main.o -L. -lmymalloc -o exe_ar 2>log && ./exe_ar"
expect_found "  ... malloc comes from the archive member" "defines malloc-family function malloc in \./libmymalloc.a\(myalloc.o\)$"
expect_absent "  ... calloc's member is not pulled" "function calloc"
cat > m.c <<'C'
#include <math.h>
double (*volatile f)(double) = cos;
int main(void) { return f(0.0) != 1.0; }
C
"$CC_UNDER" -c m.c
check "-static: -lm found through the compiler's search path" bash -c "'$ALLOCSCC' -static m.o -lm -o exe_static 2>log && ./exe_static"
expect_found "  ... as its static archive (a linker script naming libm-2.xx.a), whose member defining cos (s_sin.o) is pulled" \
  "link inputs: m.o /[^ ]*/libm[^ ]*\.a\(s_sin\.o\) "
finish
