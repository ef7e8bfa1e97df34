// SPDX-License-Identifier: MIT
// The browser libraries the HTML report embeds (heapprofile/vendor/, from npm: d3 7.9.2 and
// d3-flame-graph 5.0.0), compiled in by embed.py so that heapindex-report needs no data files.
#ifndef MALLOCHOOKS_HEAPPROFILE_VENDOR_FILES_H
#define MALLOCHOOKS_HEAPPROFILE_VENDOR_FILES_H

namespace heapprofile::vendor {
extern const char d3_js[];
extern const char d3_license[];
extern const char d3_flamegraph_js[];
extern const char d3_flamegraph_css[];
}  // namespace heapprofile::vendor

#endif
