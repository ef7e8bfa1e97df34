// SPDX-License-Identifier: MIT
// HEAPINDEX_LEAKS=exit (leaks_at_exit.cc): the reachability scan over this process's index, reported by
// site on the log.  Run from the library's destructor, under the reentrancy guard, in two steps:
// scan_leaks_at_exit() scans (allocating with mmap only) and hands what it found to the heap profile;
// print_leaks_found() writes the report (its symbolizer allocates).  The heap profile's outputs are
// written between the two, so that they show the leaks and not the report's own allocations.
// scan_leaks_at_exit returns 1 when chunks are definitely or indirectly lost, 0 otherwise.
#ifndef MALLOCHOOKS_INDEX_LEAKS_AT_EXIT_H
#define MALLOCHOOKS_INDEX_LEAKS_AT_EXIT_H

namespace mallochooks::heapindex {
int scan_leaks_at_exit() __attribute__((visibility("hidden")));
void print_leaks_found() __attribute__((visibility("hidden")));
}

#endif
