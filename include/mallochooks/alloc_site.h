/* SPDX-License-Identifier: MIT */
/*
 * The allocation site: how a program's own allocation functions (xmalloc and friends, declared to
 * allocscc or stubgen) pass their caller to the link-time hooks.
 *
 * stubgen's caller-side shim of a declared function sets the thread's site to its own return address (the
 * call site in the caller of xmalloc) unless a site is set already (the outermost declared wrapper wins, so
 * nested wrappers do not move it), and restores the previous value when the function returns or unwinds.
 * The link-time hooks of the same output take the site, when set, as the caller of every malloc-family
 * call made meanwhile on that thread, instead of their own return address (backends/linktime/entry_points.h).
 *
 * The variable lives in each output (executable or shared library) built with shims, hidden, and both the
 * shims and the hooks define it weak: either alone links, and together they share one definition.  It is
 * initial-exec TLS for the same reason as the reentrancy guard (libmallochooks/guard.h): the
 * global-dynamic model can call malloc on first access.
 */
#ifndef MALLOCHOOKS_ALLOC_SITE_H
#define MALLOCHOOKS_ALLOC_SITE_H

#define MALLOCHOOKS_ALLOC_SITE_SYMBOL "__mallochooks_alloc_site"

#ifdef __cplusplus
extern "C" {
#endif

/* Readers define it too (MALLOCHOOKS_DEFINE_ALLOC_SITE, once per output): never test the address of an
 * undefined weak TLS variable -- linkers relax the GOT load such a test needs into a `lea` that sets no
 * flags, and the test reads garbage. */
extern __thread const void *__mallochooks_alloc_site __attribute__((visibility("hidden"), tls_model("initial-exec")));
#define MALLOCHOOKS_DEFINE_ALLOC_SITE                                                                 \
    __attribute__((weak, visibility("hidden"), tls_model("initial-exec"))) __thread const void *__mallochooks_alloc_site;

/* Static (file-local) allocation functions, which no linker can route through a shim: allocscc gives each
 * declared one a hidden global alias in the copy of its object, and the output's shim object defines this
 * table of their code, begin/end pairs ending with a null pair.  The link-time hooks attribute a call made
 * from inside one of them, with no site set, to its caller, found by unwinding (docs/allocscc.md).
 * libmallochooks.a has a weak default without any range. */
#define MALLOCHOOKS_STATIC_RANGES_SYMBOL "__mallochooks_static_ranges"
extern const void *const __mallochooks_static_ranges[] __attribute__((visibility("hidden")));

#ifdef __cplusplus
}
#endif

#endif /* MALLOCHOOKS_ALLOC_SITE_H */
