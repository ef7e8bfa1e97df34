// SPDX-License-Identifier: MIT
// Test DSO "a" for the fake_dlsym unit tests.  It is linked with a version script (liba.map) and a GNU
// hash table, and is loaded before libb, so it exercises: symbol versions (a default `@@` version next
// to a hidden `@` one, and a name that only has a hidden version), an IFUNC, an absolute symbol, a TLS
// variable, and the RTLD_NEXT reference answer (dlsym called from inside this object).
#define _GNU_SOURCE
#include <dlfcn.h>

// Exported whatever visibility the build defaults to (a project-wide -fvisibility=hidden would otherwise
// hide everything the tests look up).
#pragma GCC visibility push(default)

// Also defined by libb: a lookup that starts after this object must find libb's.
int fdl_common(void) { return 'a'; }
int fdl_a_only(void) { return 'a' + 1; }
int fdl_a_data = 42;

// Two versions of one name: fdl_versioned@FDL_1.0 (hidden) and fdl_versioned@@FDL_2.0 (default).
// dlsym must return the default one, dlvsym either.
int fdl_versioned_v1(void) { return 1; }
int fdl_versioned_v2(void) { return 2; }
__asm__(".symver fdl_versioned_v1, fdl_versioned@FDL_1.0");
__asm__(".symver fdl_versioned_v2, fdl_versioned@@FDL_2.0");

// Only a hidden version: invisible to dlsym, visible to dlvsym(..., "FDL_1.0").
int fdl_hidden_only_v1(void) { return 3; }
__asm__(".symver fdl_hidden_only_v1, fdl_hidden_only@FDL_1.0");

// An IFUNC whose resolver picks fdl_ifunc_impl: lookups must return the implementation, not the
// resolver.  (`used`: clang 14 does not count the ifunc attribute as a use of the resolver.)
static int fdl_ifunc_impl(void) { return 5; }
__attribute__((used)) static int (*fdl_ifunc_resolver(void))(void) { return fdl_ifunc_impl; }
int fdl_ifunc(void) __attribute__((ifunc("fdl_ifunc_resolver")));

// An absolute symbol: its value is an address as is, the load bias must not be added.
__asm__(".globl fdl_absolute\n\t.type fdl_absolute, @object\n\t.set fdl_absolute, 0x1234");

// A thread-local variable: only the loader can compute its address.
__thread int fdl_a_tls = 7;

// The address of something inside this object, for object_containing tests that must not depend on
// how the test executable takes the address of a DSO function (a non-PIE one would get a PLT stub).
static int fdl_a_anchor_object;
void *fdl_a_anchor(void) { return &fdl_a_anchor_object; }

// The reference RTLD_NEXT answers, computed by the real loader from inside this object.  dlsym finds
// "this object" from its return address, so the calls must not be tail calls (a `jmp dlsym` would make
// the caller of these functions, the test executable, the object RTLD_NEXT starts after): storing the
// result through a volatile prevents that with every compiler.
void *fdl_a_next_common(void) {
    void *volatile next = dlsym(RTLD_NEXT, "fdl_common");
    return next;
}
void *fdl_a_next_common_version(const char *version) {
    void *volatile next = dlvsym(RTLD_NEXT, "fdl_common", version);
    return next;
}

#pragma GCC visibility pop
