/* SPDX-License-Identifier: MIT */
/* A shared library that calls the malloc family and defines none of it: linked plainly (libmxcaller.so,
 * MX_CALLER_NAME=mx_caller_run) it is "another object" whose calls go wherever the process binds malloc;
 * linked with the wrap backend (libmxwrapcaller-LD.so, MX_CALLER_NAME=mx_wrapcaller_run) its calls reach
 * its own link-time hooks first. */
#include "mx_callers.h"

MX_DEFINE_CALLER(MX_CALLER_NAME)
