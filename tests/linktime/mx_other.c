/* SPDX-License-Identifier: MIT */
/* A second file of the shared library that defines its own allocator: a caller in the same output but
 * not the same object file as the allocator. */
#include "mx_callers.h"

MX_DEFINE_CALLER(mx_other_run)
