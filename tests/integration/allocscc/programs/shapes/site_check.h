/* SPDX-License-Identifier: MIT */
/* For the small fixture programs of allocscc's failing shapes, run under LD_PRELOAD=libheapindex.so: the
 * chunk at p must be in the heap index, of the size asked, with its allocation site in the named
 * function (found with dladdr: the sites are global functions of a program linked with -rdynamic, or
 * exported functions of a shared library).  Each check prints one line; main returns site_failures. */
#ifndef ALLOCSCC_TEST_SITE_CHECK_H
#define ALLOCSCC_TEST_SITE_CHECK_H
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "mallochooks/heapindex.h"

static int site_failures;

static const char *site_function(const void *addr) {
    Dl_info info;
    return addr != NULL && dladdr(addr, &info) != 0 && info.dli_sname != NULL ? info.dli_sname : "(none)";
}

static void expect_site(const char *what, const void *p, size_t size, const char *function) {
    struct heapindex_chunk c;
    const int found = heapindex_lookup(p, &c);
    const char *got = found ? site_function(c.alloc_site) : "-";
    const int ok = found && c.base == p && c.size == size && strcmp(got, function) == 0;
    printf("%s %s: %p %s, size %zu (want %zu), site in %s (want %s)\n", ok ? "ok" : "FAILED", what, p,
           found ? "indexed" : "NOT INDEXED", found ? c.size : 0, size, got, function);
    site_failures += !ok;
}

#endif
