// SPDX-License-Identifier: MIT
// HEAPINDEX_LEAKS=exit: the reachability scan (reachability.h, the same code gdb's `heap leaks` runs
// through heapindex-inspect) over this process's own index, from the library's destructor, in the
// manner of LeakSanitizer's detect_leaks.  Leaks are reported by allocation site and class (definitely
// lost, indirectly lost, reachable only through interior pointers) with chunks and bytes on the log
// (HEAPINDEX_LOG), each with its allocation stack when HEAPINDEX_STACKS records them;
// HEAPINDEX_LEAKS_EXITCODE then makes a program with chunks definitely or indirectly
// lost exit with that status (for CI).  The scan and the report are two steps: the scan hands every
// chunk it did not reach to the heap profile (profile::leak_found), whose outputs are written before the
// report, whose symbolizer allocates (docs/heap-profiles.md, "Leaks by reachability").
//
// Roots: the writable segments of every loaded object (dl_iterate_phdr), this thread's static TLS blocks
// and its stack from the current frame up (callee-saved registers spilled there first), the stacks of
// the other threads still running, from the stack pointer /proc/self/task/TID/syscall gives for a
// thread blocked in a system call (a thread running user code at exit has no stack pointer we can read
// without stopping it: its stack is then not a root, and this is said in the report), and the
// client blocks.  Everything here allocates with mmap only; chunk memory is read through
// process_vm_readv for chunks large enough to be mmapped, and for every chunk while another thread runs
// user code (it could free and unmap one under the scan), directly otherwise.
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
#include "index/profile.h"
#include "index/profile_format.h"
#include "index/stack_depot.h"
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
    uint32_t stack;  // its allocation stack in the depot (HEAPINDEX_STACKS), 0 when none
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
            chunks_[n_] = {f.base, f.size, f.site, f.flags, id,
                           (f.flags & HEAPINDEX_FLAG_STACK) ? profile::stack_of_chunk(id) : 0};
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
        if (direct_ && bytes < big) {
            for (; a + 8 <= end; a += 8) f(*reinterpret_cast<const uintptr_t *>(a));
            return;
        }
        // Possibly mmapped by the allocator, or another thread runs: copy it piecewise, so that a chunk
        // freed (and unmapped) by another thread meanwhile is an error code, not a fault.
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
    // Whether small chunks may be read in place (no other thread runs user code), or only copied.
    void read_directly(bool yes) { direct_ = yes; }
    void *memory(size_t bytes) { return scratch(bytes); }
    void release(void *p, size_t bytes) { unscratch(p, bytes); }

private:
    static constexpr size_t big = size_t{64} << 10;
    bool direct_ = true;
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
// Not libheapindex.so's own: the tool's memory is not the program's (its statics can hold stale addresses of
// chunks, such as the last one a profile sampled), as the index's own memory is never a root.
template <class Scan> void scan_objects(Scan &s) {
    dl_iterate_phdr(
        [](dl_phdr_info *info, size_t, void *arg) {
            Scan &s = *static_cast<Scan *>(arg);
            const uintptr_t self = reinterpret_cast<uintptr_t>(&scan_leaks_at_exit);
            for (int i = 0; i < info->dlpi_phnum; ++i) {
                const ElfW(Phdr) &p = info->dlpi_phdr[i];
                if (p.p_type == PT_LOAD && self - (info->dlpi_addr + p.p_vaddr) < p.p_memsz) return 0;
            }
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

// Other threads' stacks, for those blocked in a system call: [sp, end of its mapping) each, at most
// `cap`.  Returns how many threads could not be read (running user code, or past `cap`).
struct stack_range {
    uintptr_t from, to;
};
unsigned other_thread_stacks(stack_range *out, unsigned cap, unsigned *n) {
    unsigned unscanned = 0;
    *n = 0;
    // getdents64 into a stack buffer rather than opendir, whose buffer would be an allocation the heap
    // profile written after the scan would count.
    const int dfd = open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) return 0;
    const long self = long(gettid());
    alignas(8) char dents[4096];
    long got_dents;
    while ((got_dents = long(getdents64(dfd, dents, sizeof dents))) > 0) {
        for (long off = 0; off < got_dents;) {
            const dirent64 *e = reinterpret_cast<const dirent64 *>(dents + off);
            off += e->d_reclen;
            if (e->d_name[0] < '0' || e->d_name[0] > '9' || atol(e->d_name) == self) continue;
            char path[sizeof e->d_name + 32], text[256];
            snprintf(path, sizeof path, "/proc/self/task/%s/syscall", e->d_name);
            const int fd = open(path, O_RDONLY | O_CLOEXEC);
            ssize_t got = fd >= 0 ? read(fd, text, sizeof text - 1) : -1;
            if (fd >= 0) close(fd);
            if (got <= 0) {
                ++unscanned;
                continue;
            }
            text[got] = '\0';
            // "nr a1 a2 a3 a4 a5 a6 sp pc" while blocked; "running" (or "-1 sp pc") otherwise.
            unsigned long v[9];
            uintptr_t lo, hi;
            if (*n < cap &&
                sscanf(text, "%lx %lx %lx %lx %lx %lx %lx %lx %lx", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7],
                       &v[8]) == 9 &&
                mapping_containing(v[7], &lo, &hi))
                out[(*n)++] = {v[7], hi};
            else
                ++unscanned;
        }
    }
    close(dfd);
    return unscanned;
}

// A report line: chunks of one class from one allocation stack (HEAPINDEX_STACKS) or, without one, site.
struct site_class_total {
    const void *site;
    uint32_t stack;
    uint8_t cls;
    uint64_t bytes, chunks;
};


}  // namespace

namespace {

// What the scan found, kept in mapped memory from the scan to the report (print_leaks_found): between
// the two the heap profile writes its outputs, before the report's symbolizer allocates anything.
struct findings_t {
    bool scanned, no_memory;
    site_class_total *groups_table;
    size_t groups, table_bytes;
    uint64_t chunks[4], total[4];
    uint64_t root_bytes, scanned_bytes;
    double ms;
    unsigned unscanned;
};
constinit findings_t findings{};

// The scan, below scan_leaks_at_exit's frame: its own frames (large buffers, spills, stale values of
// earlier calls at this depth) are no root; the stack is scanned from `stack_from` up.  Allocates only
// with mmap (nothing shows in the index's counters).
__attribute__((noinline)) int scan(uintptr_t stack_from) {
    timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    findings = {};
    findings.scanned = true;
    own_heap heap;
    if (!heap.load()) {
        findings.no_memory = true;
        return 0;
    }
    reach::scan<own_heap> s(heap);
    if (!s.start()) {
        findings.no_memory = true;
        return 0;
    }
    // Other threads first: while one runs user code it may free (and unmap) chunks under the scan, so
    // chunk memory is then read through process_vm_readv only.
    stack_range stacks[512];
    unsigned nstacks;
    const unsigned unscanned = other_thread_stacks(stacks, sizeof stacks / sizeof *stacks, &nstacks);
    findings.unscanned = unscanned;
    heap.read_directly(unscanned == 0);
    uintptr_t lo, hi;
    if (mapping_containing(stack_from, &lo, &hi)) s.root(stack_from, hi - stack_from);
    scan_objects(s);
    for (unsigned i = 0; i < nstacks; ++i) s.root(stacks[i].from, stacks[i].to - stacks[i].from);
    for_each_live_in(client_chunks, [&](const record_fields &f) {
        s.root(f.base, f.size);
        return true;
    });
    s.finish();
    clock_gettime(CLOCK_MONOTONIC, &t1);

    // The heap profile's outputs (HEAPINDEX_STACKS with HEAPINDEX_REPORT) show these chunks as the leaks.
    const size_t n = s.count();
    if (profile::enabled()) {
        for (size_t i = 0; i < n; ++i) {
            const uint8_t c = s.class_of(i);
            if (c == reach::reachable) continue;
            profile::leak_found(heap.entry(i).stack, c == reach::lost ? profile_format::leak_definite
                                                     : c == reach::indirect ? profile_format::leak_indirect
                                                                            : profile_format::leak_interior,
                                heap.size(i));
        }
        profile::leak_scan_done();
    }

    // Group by (class, site): sort the chunks' keys, then most bytes first within each class.
    const size_t bytes = (n ? n : 1) * sizeof(site_class_total);
    site_class_total *t = static_cast<site_class_total *>(scratch(bytes));
    uint64_t *chunks = findings.chunks, *total = findings.total;
    size_t groups = 0;
    if (t != nullptr) {
        for (size_t i = 0; i < n; ++i) {
            const uint8_t c = s.class_of(i);
            ++chunks[c];
            total[c] += heap.size(i);
            if (c != reach::reachable) t[groups++] = {heap.entry(i).site, heap.entry(i).stack, c, heap.size(i), 1};
        }
        std::sort(t, t + groups, [](const site_class_total &a, const site_class_total &b) {
            return a.cls != b.cls ? a.cls < b.cls : a.stack != b.stack ? a.stack < b.stack : a.site < b.site;
        });
        size_t m = 0;
        for (size_t i = 0; i < groups; ++i) {
            if (m > 0 && t[m - 1].cls == t[i].cls && t[m - 1].stack == t[i].stack && t[m - 1].site == t[i].site) {
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
    findings.ms = double(t1.tv_sec - t0.tv_sec) * 1e3 + double(t1.tv_nsec - t0.tv_nsec) / 1e6;
    findings.root_bytes = s.root_bytes();
    findings.scanned_bytes = s.scanned_bytes();
    findings.groups_table = t;
    findings.groups = groups;
    findings.table_bytes = bytes;
    return int(chunks[reach::lost] + chunks[reach::indirect] > 0);
}

}  // namespace

int scan_leaks_at_exit() {
    // Callee-saved registers of every caller onto the stack (this frame), then the stack from this frame up.
    __builtin_unwind_init();
    volatile uintptr_t here = 0;
    const int leaky = scan(reinterpret_cast<uintptr_t>(&here) & ~uintptr_t{7});
    __asm__ volatile("" ::: "memory");  // no tail call: this frame stays while the scan runs
    return leaky;
}

void print_leaks_found() {
    if (!findings.scanned) return;
    const int fd = open_output(settings().log, "leaks at exit");
    const int pid = int(getpid());
    if (findings.no_memory) {
        print(fd, "heapindex[%d]: leaks at exit: no memory for the scan\n", pid);
        close_output(fd);
        findings.scanned = false;
        return;
    }
    const uint64_t *chunks = findings.chunks, *total = findings.total;
    site_class_total *t = findings.groups_table;
    const size_t groups = findings.groups;
    print(fd, "heapindex[%d]: leaks at exit: %llu bytes in %llu chunks definitely lost, %llu bytes in %llu indirectly "
              "lost, %llu bytes in %llu reachable only through interior pointers, %llu bytes in %llu still reachable\n",
          pid, (unsigned long long)total[reach::lost], (unsigned long long)chunks[reach::lost],
          (unsigned long long)total[reach::indirect], (unsigned long long)chunks[reach::indirect],
          (unsigned long long)total[reach::interior_only], (unsigned long long)chunks[reach::interior_only],
          (unsigned long long)total[reach::reachable], (unsigned long long)chunks[reach::reachable]);
    print(fd, "heapindex[%d]: leaks at exit: scanned %llu bytes of roots and %llu bytes of chunks in %.1f ms%s\n", pid,
          (unsigned long long)findings.root_bytes, (unsigned long long)findings.scanned_bytes, findings.ms,
          findings.unscanned ? " (some threads were running: their stacks are not roots)" : "");
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
            // The allocation stack, innermost first, when HEAPINDEX_STACKS recorded one.
            const stack_entry *e = t[i].stack != 0 ? depot().get(t[i].stack) : nullptr;
            for (unsigned k = 0; e != nullptr && k < e->depth; ++k) {
                sym.describe(reinterpret_cast<const void *>(e->frames[k]), where, sizeof where);
                print(fd, "heapindex[%d]: %46s#%-2u %s\n", pid, "", k, where);
            }
        }
    }
    unscratch(t, findings.table_bytes);
    close_output(fd);
    findings.scanned = false;
}

}  // namespace mallochooks::heapindex
