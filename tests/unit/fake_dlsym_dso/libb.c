// SPDX-License-Identifier: MIT
// Test DSO "b" for the fake_dlsym unit tests.  It is linked without a version script, without the C
// library (-nostdlib, so it has no DT_VERSYM at all) and with only a SysV hash table
// (--hash-style=sysv), and is loaded after liba, so it exercises: the DT_HASH fallback, lookups in an
// object without version information (dlvsym accepts any version there), and RTLD_NEXT from liba.

// Exported whatever visibility the build defaults to (a project-wide -fvisibility=hidden would otherwise
// hide everything the tests look up).
#pragma GCC visibility push(default)

int fdl_common(void) { return 'b'; }
int fdl_b_only(void) { return 'b' + 1; }
int fdl_b_data = 43;

static int fdl_b_anchor_object;
void *fdl_b_anchor(void) { return &fdl_b_anchor_object; }

#pragma GCC visibility pop
