// SPDX-License-Identifier: MIT
// The exit report (HEAPINDEX_REPORT): the live chunks grouped by allocation site, most bytes first,
// symbolized (symbolizer.h).  Called from the library's destructor.
#ifndef MALLOCHOOKS_INDEX_EXIT_REPORT_H
#define MALLOCHOOKS_INDEX_EXIT_REPORT_H

namespace mallochooks::heapindex {

void print_exit_report() __attribute__((visibility("hidden")));

}  // namespace mallochooks::heapindex

#endif
