// SPDX-License-Identifier: MIT
// Heap error reports (see heap_errors.h).
#include "index/heap_errors.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <atomic>

#include "index/settings.h"
#include "index/symbolizer.h"
#include "index/trailer.h"
#include "libmallochooks/guard.h"
#include "libmallochooks/output.h"
#include "mallochooks/heapindex.h"

namespace mallochooks::heapindex {

namespace {

// True once per process (a forked child again): the first report says where the log file is.
bool first_in_process() {
    static std::atomic<int> told{0};
    const int pid = int(getpid());
    return told.exchange(pid, std::memory_order_relaxed) != pid;
}

// Scoped: guard the library's own calls, keep the program's errno, open the diagnostics output.
struct diagnostic {
    reentrancy_guard guard;
    int saved_errno = errno;
    int fd = open_output(settings().log, first_in_process() ? "heap errors" : nullptr);
    int pid = int(getpid());
    ~diagnostic() {
        close_output(fd);
        errno = saved_errno;
    }
};

void print_chunk_line(const diagnostic &d, const record_fields &f) {
    print(d.fd, "heapindex[%d]:   chunk %p, %zu bytes, seq %llu, thread %u%s\n", d.pid, (void *)f.base, f.size,
          (unsigned long long)f.seq, f.tid, (f.flags & HEAPINDEX_FLAG_CLIENT) ? ", client block" : "");
}

void print_site_line(const diagnostic &d, const char *label, const void *site) {
    char where[512];
    describe_site_dladdr(site, where, sizeof where);
    print(d.fd, "heapindex[%d]:   %-16s %s\n", d.pid, label, where);
}

}  // namespace

void report_double_free(const record_fields &f, const void *again_at, const char *what) {
    diagnostic d;
    print(d.fd, "heapindex[%d]: double free: %s(%p) of a chunk already freed\n", d.pid, what, (void *)f.base);
    print_chunk_line(d, f);
    print_site_line(d, (f.flags & HEAPINDEX_FLAG_REALLOC) ? "reallocated at" : "allocated at", f.site);
    print_site_line(d, "first freed at", f.free_site);
    print_site_line(d, "freed again at", again_at);
}

void report_invalid_free(const void *ptr, const void *at, const record_fields *containing, const char *what) {
    diagnostic d;
    if (containing != nullptr) {
        print(d.fd, "heapindex[%d]: invalid %s(%p): %zu bytes inside a live chunk, not its start\n", d.pid, what, ptr,
              size_t(uintptr_t(ptr) - containing->base));
        print_chunk_line(d, *containing);
        print_site_line(d, "allocated at", containing->site);
    } else {
        print(d.fd, "heapindex[%d]: invalid %s(%p): not a chunk this process allocated (or one freed long ago)\n",
              d.pid, what, ptr);
    }
    print_site_line(d, "called at", at);
}

// The function that allocated a chunk, from its flags.
static const char *allocated_by(uint32_t flags) {
    if (flags & (HEAPINDEX_FLAG_NEW | HEAPINDEX_FLAG_NEW_ARRAY)) {
        const bool array = flags & HEAPINDEX_FLAG_NEW_ARRAY, aligned = flags & HEAPINDEX_FLAG_ALIGNED;
        return array ? (aligned ? "operator new[](std::align_val_t)" : "operator new[]")
                     : (aligned ? "operator new(std::align_val_t)" : "operator new");
    }
    if (flags & HEAPINDEX_FLAG_REALLOC) return "realloc";
    if (flags & HEAPINDEX_FLAG_CALLOC) return "calloc";
    if (flags & HEAPINDEX_FLAG_ALIGNED) return "memalign";
    return "malloc";
}

void report_mismatch(const record_fields &f, const void *at, const char *what) {
    diagnostic d;
    print(d.fd, "heapindex[%d]: alloc-dealloc mismatch: %s(%p) of a chunk allocated by %s\n", d.pid, what,
          (void *)f.base, allocated_by(f.flags));
    print_chunk_line(d, f);
    print_site_line(d, (f.flags & HEAPINDEX_FLAG_REALLOC) ? "reallocated at" : "allocated at", f.site);
    print_site_line(d, "released at", at);
}

void report_corrupt_trailer(const record_fields &f, const void *at, const char *what) {
    diagnostic d;
    unsigned char bytes[trailer_size];
    memcpy(bytes, reinterpret_cast<const void *>(f.base + f.usable), sizeof bytes);
    char hex[3 * trailer_size + 1];
    for (size_t i = 0; i < trailer_size; ++i) snprintf(hex + 3 * i, 4, "%02x ", bytes[i]);
    hex[3 * trailer_size - 1] = '\0';
    print(d.fd, "heapindex[%d]: heap overflow: the trailer after chunk %p (at offset %zu) was overwritten; found "
                "at %s\n", d.pid, (void *)f.base, f.usable, what);
    print_chunk_line(d, f);
    print_site_line(d, "allocated at", f.site);
    print_site_line(d, "detected at", at);
    print(d.fd, "heapindex[%d]:   trailer bytes    %s\n", d.pid, hex);
}

void report_client_error(const char *message, const void *base, const record_fields *other, const void *at) {
    diagnostic d;
    print(d.fd, "heapindex[%d]: %s (%p)\n", d.pid, message, base);
    if (other != nullptr) {
        print_chunk_line(d, *other);
        print_site_line(d, "registered at", other->site);
    }
    print_site_line(d, "called at", at);
}

}  // namespace mallochooks::heapindex
