// SPDX-License-Identifier: MIT
// Naming allocation sites.  describe_site_dladdr: "func+0x1c (/path/to/object)" from dladdr, allocation-free,
// for heap errors found inside malloc and free.  symbolizer: function, file:line and object from elfutils'
// libdwfl, dlopened only when constructed (so that no process pays for libdw at start-up), for the exit
// report; dladdr where libdw cannot say.  Chosen by HEAPINDEX_SYMBOLIZE (settings.h).
#ifndef MALLOCHOOKS_INDEX_SYMBOLIZER_H
#define MALLOCHOOKS_INDEX_SYMBOLIZER_H

#include <stddef.h>

namespace mallochooks::heapindex {

// No allocation, no lock beyond the loader's.
void describe_site_dladdr(const void *site, char *buf, size_t n) __attribute__((visibility("hidden")));

// libdwfl when HEAPINDEX_SYMBOLIZE=libdw and libdw.so.1 loads, else dladdr.  Construct it under the
// reentrancy guard: it dlopens and allocates.  Bounded: it never asks a debuginfod server (only local
// files), and once HEAPINDEX_SYMBOLIZE_TIMEOUT has passed since it was made, every further site is named
// by dladdr (the address, and a symbol where the loader knows one).
class symbolizer {
public:
    symbolizer();
    ~symbolizer();
    symbolizer(const symbolizer &) = delete;
    symbolizer &operator=(const symbolizer &) = delete;
    void describe(const void *site, char *buf, size_t n);
    // Whether the deadline cut symbolization short.
    bool expired() const { return expired_; }

private:
    void *dw_ = nullptr;
    unsigned long long deadline_ms_;
    bool expired_ = false;
};

}  // namespace mallochooks::heapindex

#endif
