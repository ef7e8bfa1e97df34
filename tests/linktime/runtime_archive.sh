#!/bin/bash
# SPDX-License-Identifier: MIT
# libmallochooks.a is a C library as far as its users can tell: its members refer to no C++ runtime
# symbol, C programs linked with it (by the C compiler driver, with either backend) need neither
# libstdc++ nor libgcc_s, and a program linked with it but without any backend's flags gets none of it.
# One exception: the shim trampolines' member restores the allocation site when a C++ exception passes
# through a shim, with libgcc's unwinder (_Unwind_Resume), as the C shims compiled with -fexceptions do;
# only links with shims of declared functions pull it in.  And the member that calls an output's own
# throwing operator new under catch (wrapdl/cxx_catch.cc) refers to the C++ runtime: only outputs that
# define C++ operators of their own (C++ programs, their runtime linked) pull it in; the C programs
# below must not get it.
# Usage: runtime_archive.sh ARCHIVE UNFLAGGED_PROGRAM C_PROGRAM...
set -u
archive=$1 unflagged=$2; shift 2
status=0
# (its own members refer to each other's C++ names: those are defined inside it)
if nm -u -A "$archive" | grep -E ' (_Z|__cxa_|__gxx_|_Unwind_)' | grep -v ' _ZN11mallochooks' |
     grep -v 'shim_trampolines.S.o: *U _Unwind_Resume$' | grep -v '_wrapdl_cxx_catch.cc.o: '; then
  echo "runtime archive: $(basename "$archive") refers to the C++ runtime"; status=1
fi
if nm "$unflagged" | grep -E ' (__wrap_|__mallochooks_|_ZN11mallochooks)'; then
  echo "runtime archive: $(basename "$unflagged"), linked without flags, got members of the archive"; status=1
fi
for program in "$@"; do
  if readelf -d "$program" | grep -E 'NEEDED.*(libstdc\+\+|libgcc_s)'; then
    echo "runtime archive: $(basename "$program") needs the C++ runtime"; status=1
  fi
  if nm "$program" | grep -q '__mallochooks_wrapdl_catching_'; then
    echo "runtime archive: $(basename "$program"), a C program, got the C++ operators' catching member"; status=1
  fi
  if ! nm "$program" | grep -qE ' (__wrap_malloc|__mallochooks_wrapdl_malloc)$'; then
    echo "runtime archive: $(basename "$program") has no hooks in it"; status=1
  fi
done
[ $status -eq 0 ] && echo "runtime archive: no C++ runtime; $# C programs linked with it; nothing pulled in without flags"
exit $status
