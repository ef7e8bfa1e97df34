/* SPDX-License-Identifier: MIT */
/* The callers of the placement matrix.  Every object that is to call the malloc family in a test (the
 * allocator's own file, another file of the same output, a plain library, a library linked with the
 * wrap backend, the C++ file) includes this header and defines its caller with MX_DEFINE_CALLER(name):
 * one exported function that performs one user-API call described by a struct mx_call, from inside that
 * object, and says where that object is (an address the driver gives to dladdr). */
#ifndef MX_CALLERS_H
#define MX_CALLERS_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <malloc.h>
#include <stddef.h>
#include <stdlib.h>

#ifdef __cplusplus
extern "C" {
#endif

enum mx_op {
    /* C: the user API, with the cases docs/events.md treats apart */
    MX_MALLOC, MX_CALLOC, MX_REALLOC, MX_REALLOC_NULL, MX_REALLOC_ZERO, MX_FREE, MX_FREE_NULL,
    MX_MEMALIGN, MX_POSIX_MEMALIGN, MX_POSIX_MEMALIGN_EINVAL, MX_ALIGNED_ALLOC, MX_VALLOC, MX_PVALLOC,
    MX_REALLOCARRAY, MX_USABLE_SIZE,
    MX_C_OPS,
    /* C++ (mx_cxx_caller.cc): each raises the events of the malloc-family call libstdc++ makes */
    MX_NEW = MX_C_OPS, MX_DELETE, MX_NEW_ARRAY, MX_DELETE_ARRAY, MX_NEW_ALIGNED, MX_DELETE_ALIGNED,
    MX_NEW_NOTHROW, MX_DELETE_NOTHROW, MX_DELETE_SIZED,
    MX_OPS
};

struct mx_call {
    int op;            /* enum mx_op */
    void *ptr;         /* the chunk the call works on (realloc, free, usable size, delete) */
    size_t a, b;       /* size, or alignment and size, or count and size, as the function takes them */
    void *result;      /* the chunk returned */
    int ret;           /* posix_memalign's return value */
    size_t usable;     /* malloc_usable_size's */
    const void *where; /* an address inside the object that made the call */
};

typedef void mx_caller(struct mx_call *);

#ifdef __cplusplus
}
#endif

#ifndef __cplusplus
__attribute__((unused)) static void mx_run(struct mx_call *c) {
    c->where = (const void *)&mx_run;
    switch (c->op) {
    case MX_MALLOC: c->result = malloc(c->a); break;
    case MX_CALLOC: c->result = calloc(c->a, c->b); break;
    case MX_REALLOC: case MX_REALLOC_NULL: case MX_REALLOC_ZERO: c->result = realloc(c->ptr, c->a); break;
    case MX_FREE: case MX_FREE_NULL: free(c->ptr); break;
    case MX_MEMALIGN: c->result = memalign(c->a, c->b); break;
    case MX_POSIX_MEMALIGN: case MX_POSIX_MEMALIGN_EINVAL:
        c->result = NULL;
        c->ret = posix_memalign(&c->result, c->a, c->b);
        break;
    case MX_ALIGNED_ALLOC: c->result = aligned_alloc(c->a, c->b); break;
    case MX_VALLOC: c->result = valloc(c->a); break;
    case MX_PVALLOC: c->result = pvalloc(c->a); break;
    case MX_REALLOCARRAY: c->result = reallocarray(c->ptr, c->a, c->b); break;
    case MX_USABLE_SIZE: c->usable = malloc_usable_size(c->ptr); break;
    default: abort();
    }
    /* Keeps every call above out of tail position: a call compiled as a jump returns straight to our own
     * caller, and the hooks would then (rightly) name that object as the caller. */
    __asm__ volatile("" ::: "memory");
}

#define MX_DEFINE_CALLER(name) \
    __attribute__((visibility("default"))) void name(struct mx_call *c) { mx_run(c); }
#endif

#endif
