/* SPDX-License-Identifier: MIT */
/* Linked into the libc-placement programs only: a strong reference to the wrap-linked caller library.
 * The driver refers to it weakly (other placements have no such library), and a weak reference does not
 * make a library "needed" under --as-needed, which Debian's compilers pass by default. */
#include "mx_callers.h"

extern void mx_wrapcaller_run(struct mx_call *);
mx_caller *const mx_wrapcaller_anchor = mx_wrapcaller_run;
