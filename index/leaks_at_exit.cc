// SPDX-License-Identifier: MIT
// HEAPINDEX_LEAKS=exit: the reachability scan (reachability.h, the same code gdb's `heap leaks` runs
// through heapindex-inspect) over this process's own index, from the library's destructor, in the
// manner of LeakSanitizer's detect_leaks.  Leaks are reported by allocation site and class (definitely
// lost, indirectly lost, reachable only through interior pointers) with chunks and bytes on the log
// (HEAPINDEX_LOG); HEAPINDEX_LEAKS_EXITCODE then makes a program with chunks definitely or indirectly
// lost exit with that status (for CI).
//
// Roots: the writable segments of every loaded object (dl_iterate_phdr), this thread's static TLS blocks
// and its stack from the current frame up (callee-saved registers spilled there first), the stacks of
// the other threads still running, from the stack pointer /proc/self/task/TID/syscall gives for a
// thread blocked in a system call (a thread running user code at exit has no stack pointer we can read
// without stopping it: its stack is then not a root, and this is said in the report), and the
// client blocks.  Everything here allocates with mmap only; chunk memory is read through
// process_vm_readv for chunks large enough to be mmapped (another thread could free and unmap one under
// the scan) and directly otherwise.
#include <dirent.h>
#include <fcntl.h>
#include <link.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>

#include "index/heapindex_layer.h"
#include "index/leaks_at_exit.h"
#include "index/reachability.h"
#include "index/live_chunks.h"
#include "index/symbolizer.h"
#include "libmallochooks/output.h"
#include "index/settings.h"

namespace mallochooks::heapindex {

namespace {

void *scratch(size_t bytes) {
    void *m = mmap(nullptr, bytes ? bytes : 1, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    return m == MAP_FAILED ? nullptr : m;
}
void unscratch(void *p, size_t bytes) {
    if (p != nullptr) munmap(p, bytes ? bytes : 1);
}

struct chunk_entry {
    uintptr_t base;
    size_t size;
    const void *site;
    uint32_t flags;
    uint32_t id;
};

// The Heap of reachability.h over this process's index.
class own_heap {
public:
    bool load() {
        ids_ = records().ids_made();
        capacity_ = ids_;  // live chunks <= ids ever handed out
        chunks_ = static_cast<chunk_entry *>(scratch(capacity_ * sizeof(chunk_entry)));
        slot_ = static_cast<uint32_t *>(scratch(ids_ * sizeof(uint32_t)));
        if (chunks_ == nullptr || slot_ == nullptr) return false;
        heap_chunks.for_each_start([&](uintptr_t granule, uint32_t id) {
            record_fields f;
            if (id == 0 || id >= ids_ || !records().get(id)->read_live(&f)) return true;
            if ((f.base >> heap_index_t::granule_shift) != (granule >> heap_index_t::granule_shift)) return true;
            if (n_ == capacity_) return false;
            chunks_[n_] = {f.base, f.size, f.site, f.flags, id};
            slot_[id] = uint32_t(n_ + 1);
            ++n_;
            return true;
        });
        return true;
    }
    ~own_heap() {
        unscratch(chunks_, capacity_ * sizeof(chunk_entry));
        unscratch(slot_, ids_ * sizeof(uint32_t));
    }

    size_t count() const { return n_; }
    uintptr_t base(size_t i) const { return chunks_[i].base; }
    size_t size(size_t i) const { return chunks_[i].size; }
    const chunk_entry &entry(size_t i) const { return chunks_[i]; }
    bool find(uintptr_t w, uint32_t *i) const {
        record_fields f;
        uint32_t id;
        if (!heap_chunks.lookup(w, &f, &id) || id >= ids_ || slot_[id] == 0) return false;
        *i = slot_[id] - 1;
        return chunks_[*i].base == f.base;
    }
    template <class F> void words(uintptr_t from, size_t bytes, F &&f) const {
        uintptr_t a = (from + 7) & ~uintptr_t{7};
        const uintptr_t end = from + bytes;
        if (bytes < big) {
            for (; a + 8 <= end; a += 8) f(*reinterpret_cast<const uintptr_t *>(a));
            return;
        }
        // Possibly mmapped by the allocator: copy it piecewise, so that a chunk freed (and unmapped) by
        // another thread meanwhile is an error code, not a fault.
        uintptr_t buf[2048];
        while (a + 8 <= end) {
            const size_t n = std::min<size_t>(sizeof buf, (end - a) & ~size_t{7});
            iovec local{buf, n}, remote{reinterpret_cast<void *>(a), n};
            const ssize_t got = process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
            if (got <= 0) return;
            for (size_t k = 0; k < size_t(got) / 8; ++k) f(buf[k]);
            a += size_t(got) & ~size_t{7};
        }
    }
    void *memory(size_t bytes) { return scratch(bytes); }
    void release(void *p, size_t bytes) { unscratch(p, bytes); }

private:
    static constexpr size_t big = size_t{64} << 10;
    chunk_entry *chunks_ = nullptr;
    uint32_t *slot_ = nullptr;
    size_t n_ = 0, capacity_ = 0, ids_ = 0;
};

// The mapping of /proc/self/maps that contains `addr` (read with read(2) into a stack buffer).
bool mapping_containing(uintptr_t addr, uintptr_t *lo, uintptr_t *hi) {
    const int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    char buf[8192];
    size_t have = 0;
    bool found = false;
    for (;;) {
        const ssize_t got = read(fd, buf + have, sizeof buf - 1 - have);
        if (got <= 0) break;
        have += size_t(got);
        buf[have] = '\0';
        char *line = buf, *nl;
        while ((nl = strchr(line, '\n')) != nullptr) {
            unsigned long a, b;
            if (sscanf(line, "%lx-%lx", &a, &b) == 2 && a <= addr && addr < b) {
                *lo = a;
                *hi = b;
                found = true;
                break;
            }
            line = nl + 1;
        }
        if (found) break;
        have = size_t(buf + have - line);
        memmove(buf, line, have);
    }
    close(fd);
    return found;
}

// Roots from the loaded objects: writable PT_LOAD segments, and this thread's static TLS blocks.
template <class Scan> void scan_objects(Scan &s) {
    dl_iterate_phdr(
        [](dl_phdr_info *info, size_t, void *arg) {
            Scan &s = *static_cast<Scan *>(arg);
            for (int i = 0; i < info->dlpi_phnum; ++i) {
                const ElfW(Phdr) &p = info->dlpi_phdr[i];
                if (p.p_type == PT_LOAD && (p.p_flags & PF_W)) s.root(info->dlpi_addr + p.p_vaddr, p.p_memsz);
                if (p.p_type == PT_TLS && info->dlpi_tls_data != nullptr) {
                    s.root(reinterpret_cast<uintptr_t>(info->dlpi_tls_data), p.p_memsz);
                    s.root_word(reinterpret_cast<uintptr_t>(info->dlpi_tls_data));  // a dynamic TLS block is a chunk
                }
            }
            return 0;
        },
        &s);
}

// Other threads' stacks, for those blocked in a system call; returns how many threads could not be
// scanned (running user code).
template <class Scan> unsigned scan_other_threads(Scan &s) {
    unsigned unscanned = 0;
    DIR *d = opendir("/proc/self/task");  // under the reentrancy guard: its buffer goes straight to the allocator
    if (d == nullptr) return 0;
    const long self = long(gettid());
    while (dirent *e = readdir(d)) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9' || atol(e->d_name) == self) continue;
        char path[sizeof e->d_name + 32], text[256];
        snprintf(path, sizeof path, "/proc/self/task/%s/syscall", e->d_name);
        const int fd = open(path, O_RDONLY | O_CLOEXEC);
        ssize_t n = fd >= 0 ? read(fd, text, sizeof text - 1) : -1;
        if (fd >= 0) close(fd);
        if (n <= 0) {
            ++unscanned;
            continue;
        }
        text[n] = '\0';
        // "nr a1 a2 a3 a4 a5 a6 sp pc" while blocked; "running" (or "-1 sp pc") otherwise.
        unsigned long v[9];
        uintptr_t lo, hi;
        if (sscanf(text, "%lx %lx %lx %lx %lx %lx %lx %lx %lx", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7],
                   &v[8]) == 9 &&
            mapping_containing(v[7], &lo, &hi))
            s.root(v[7], hi - v[7]);
        else
            ++unscanned;
    }
    closedir(d);
    return unscanned;
}

struct site_class_total {
    const void *site;
    uint8_t cls;
    uint64_t bytes, chunks;
};

__attribute__((noinline)) uintptr_t current_sp() { return reinterpret_cast<uintptr_t>(__builtin_frame_address(0)); }

}  // namespace

int report_leaks_at_exit() {
    timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    const int fd = open_output(settings().log, "leaks at exit");
    const int pid = int(getpid());
    own_heap heap;
    if (!heap.load()) {
        print(fd, "heapindex[%d]: leaks at exit: no memory for the scan\n", pid);
        close_output(fd);
        return 0;
    }
    reach::scan<own_heap> s(heap);
    if (!s.start()) {
        print(fd, "heapindex[%d]: leaks at exit: no memory for the scan\n", pid);
        close_output(fd);
        return 0;
    }
    // Callee-saved registers of every caller onto the stack, then the stack from here up.
    __builtin_unwind_init();
    const uintptr_t sp = current_sp();
    uintptr_t lo, hi;
    if (mapping_containing(sp, &lo, &hi)) s.root(sp, hi - sp);
    scan_objects(s);
    const unsigned unscanned = scan_other_threads(s);
    for_each_live_in(client_chunks, [&](const record_fields &f) {
        s.root(f.base, f.size);
        return true;
    });
    s.finish();
    clock_gettime(CLOCK_MONOTONIC, &t1);

    // Group by (class, site): sort the chunks' keys, then most bytes first within each class.
    const size_t n = s.count();
    const size_t bytes = (n ? n : 1) * sizeof(site_class_total);
    site_class_total *t = static_cast<site_class_total *>(scratch(bytes));
    uint64_t chunks[4] = {}, total[4] = {};
    size_t groups = 0;
    if (t != nullptr) {
        for (size_t i = 0; i < n; ++i) {
            const uint8_t c = s.class_of(i);
            ++chunks[c];
            total[c] += heap.size(i);
            if (c != reach::reachable) t[groups++] = {heap.entry(i).site, c, heap.size(i), 1};
        }
        std::sort(t, t + groups, [](const site_class_total &a, const site_class_total &b) {
            return a.cls != b.cls ? a.cls < b.cls : a.site < b.site;
        });
        size_t m = 0;
        for (size_t i = 0; i < groups; ++i) {
            if (m > 0 && t[m - 1].cls == t[i].cls && t[m - 1].site == t[i].site) {
                t[m - 1].bytes += t[i].bytes;
                ++t[m - 1].chunks;
            } else {
                t[m++] = t[i];
            }
        }
        groups = m;
        // definitely lost (0), interior only (2), indirectly lost (3): that order, then bytes.
        auto rank = [](uint8_t c) { return c == reach::lost ? 0 : c == reach::indirect ? 1 : 2; };
        std::sort(t, t + groups, [&](const site_class_total &a, const site_class_total &b) {
            return rank(a.cls) != rank(b.cls) ? rank(a.cls) < rank(b.cls) : a.bytes > b.bytes;
        });
    }
    const double ms = double(t1.tv_sec - t0.tv_sec) * 1e3 + double(t1.tv_nsec - t0.tv_nsec) / 1e6;
    print(fd, "heapindex[%d]: leaks at exit: %llu bytes in %llu chunks definitely lost, %llu bytes in %llu indirectly "
              "lost, %llu bytes in %llu reachable only through interior pointers, %llu bytes in %llu still reachable\n",
          pid, (unsigned long long)total[reach::lost], (unsigned long long)chunks[reach::lost],
          (unsigned long long)total[reach::indirect], (unsigned long long)chunks[reach::indirect],
          (unsigned long long)total[reach::interior_only], (unsigned long long)chunks[reach::interior_only],
          (unsigned long long)total[reach::reachable], (unsigned long long)chunks[reach::reachable]);
    print(fd, "heapindex[%d]: leaks at exit: scanned %llu bytes of roots and %llu bytes of chunks in %.1f ms%s\n", pid,
          (unsigned long long)s.root_bytes(), (unsigned long long)s.scanned_bytes(), ms,
          unscanned ? " (some threads were running: their stacks are not roots)" : "");
    if (groups != 0) {
        print(fd, "heapindex[%d]: %14s %10s  %-17s %s\n", pid, "bytes", "chunks", "class", "allocation site");
        symbolizer sym;
        char where[1024];
        for (size_t i = 0; i < groups; ++i) {
            sym.describe(t[i].site, where, sizeof where);
            print(fd, "heapindex[%d]: %14llu %10llu  %-17s %s\n", pid, (unsigned long long)t[i].bytes,
                  (unsigned long long)t[i].chunks,
                  t[i].cls == reach::lost ? "definitely lost" : t[i].cls == reach::indirect ? "indirectly lost" : "interior only",
                  where);
        }
    }
    unscratch(t, bytes);
    close_output(fd);
    return int(chunks[reach::lost] + chunks[reach::indirect] > 0);
}

}  // namespace mallochooks::heapindex
