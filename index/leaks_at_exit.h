// SPDX-License-Identifier: MIT
// HEAPINDEX_LEAKS=exit (leaks_at_exit.cc): the reachability scan over this process's index, reported by
// site on the log.  Returns 1 when chunks are definitely or indirectly lost, 0 otherwise.  Run from the
// library's destructor, under the reentrancy guard.
#ifndef MALLOCHOOKS_INDEX_LEAKS_AT_EXIT_H
#define MALLOCHOOKS_INDEX_LEAKS_AT_EXIT_H

namespace mallochooks::heapindex {
int report_leaks_at_exit() __attribute__((visibility("hidden")));
}

#endif
