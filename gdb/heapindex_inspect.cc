// SPDX-License-Identifier: MIT
// heapindex-inspect: reads the heap index of a process that is not ours (a core file, or a live process
// stopped by gdb) with memory reads alone, and answers the gdb `heap` commands (gdb/heapindex.py) in
// JSON.  It starts from the exported root (index/layout.h: magic, version and the offset of every field
// it reads) and never calls a function of the process.  The leak scan is index/reachability.h, the code
// HEAPINDEX_LEAKS=exit runs in the process.
//
// Memory sources:
//   --core FILE   an ELF core (the kernel's or gcore's): PT_LOAD segments, NT_FILE (mapped files),
//                 NT_PRSTATUS (threads' registers).  The file is mmapped: reads are pointer arithmetic.
//   --pid PID     a live process (stopped by gdb): /proc/PID/maps, and /proc/PID/mem read in bulk (1 MiB
//                 blocks, cached); registers come from gdb (--regs FILE: "tid r0 r1 ..." per line, in
//                 user_regs_struct order), since only the tracer can read them.
// Records are read as the in-process readers read them (records.h): word, fields, word again; a record
// whose start mark is set but which is not live, or live without its start mark, is a chunk in the
// middle of being freed or allocated, and is reported as such.
#include <elf.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/user.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

#include "index/layout.h"
#include "index/reachability.h"
#include "mallochooks/heapindex.h"

namespace {

using u64 = uint64_t;

[[noreturn]] void fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "heapindex-inspect: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

// ---- memory sources ---------------------------------------------------------------------------------

struct mapping {
    u64 start, end;
    u64 offset;  // in the file, for file mappings
    bool readable, writable;
    std::string file;  // "" for anonymous memory
};

struct thread_regs {
    u64 tid;
    user_regs_struct regs;
};

class memory {
public:
    virtual ~memory() = default;
    // Copy [addr, addr + n): false if any byte is not available.
    virtual bool read(u64 addr, void *dst, size_t n) = 0;
    // A pointer to [addr, addr + n) if it is available in one piece (no copy), else nullptr.
    virtual const uint8_t *view(u64 addr, size_t n) = 0;
    // A pointer to a local image of [addr, addr + n), read in one go and kept (index structures that
    // are read at random: records, leaves), or nullptr if not all of it is available.
    virtual const uint8_t *bulk(u64 addr, size_t n) {
        if (const uint8_t *p = view(addr, n)) return p;
        auto it = bulk_.find(addr);
        if (it != bulk_.end() && it->second.size() >= n) return it->second.data();
        std::vector<uint8_t> b(n);
        if (!read(addr, b.data(), n)) return nullptr;
        return (bulk_[addr] = std::move(b)).data();
    }
    std::vector<mapping> maps;
    std::vector<thread_regs> threads;
    std::vector<std::string> problems;  // e.g. a truncated core

private:
    std::unordered_map<u64, std::vector<uint8_t>> bulk_;

public:

    // Streaming: ranges are about to be read once, in address order (who-points-at): a live source
    // then reuses one block buffer instead of keeping every block.
    virtual void streaming(bool) {}
    template <class T> bool get(u64 addr, T *out) { return read(addr, out, sizeof *out); }
    const mapping *mapping_of(u64 addr) const {
        auto it = std::upper_bound(maps.begin(), maps.end(), addr, [](u64 a, const mapping &m) { return a < m.start; });
        if (it == maps.begin()) return nullptr;
        --it;
        return addr < it->end ? &*it : nullptr;
    }
};

class core_memory : public memory {
public:
    explicit core_memory(const char *path) {
        const int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) fail("cannot open core file %s: %s", path, strerror(errno));
        struct stat st;
        fstat(fd, &st);
        size_ = size_t(st.st_size);
        if (size_ < sizeof(Elf64_Ehdr)) fail("%s: not an ELF core file (too short)", path);
        void *m = mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
        close(fd);
        if (m == MAP_FAILED) fail("cannot map %s: %s", path, strerror(errno));
        data_ = static_cast<const uint8_t *>(m);
        const auto *eh = reinterpret_cast<const Elf64_Ehdr *>(data_);
        if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_type != ET_CORE)
            fail("%s: not a 64-bit ELF core file", path);
        if (eh->e_phoff + u64(eh->e_phnum) * sizeof(Elf64_Phdr) > size_) fail("%s: truncated core file (no program headers)", path);
        const auto *ph = reinterpret_cast<const Elf64_Phdr *>(data_ + eh->e_phoff);
        for (unsigned i = 0; i < eh->e_phnum; ++i) {
            if (ph[i].p_type == PT_LOAD) {
                segment s{ph[i].p_vaddr, ph[i].p_vaddr + ph[i].p_memsz, ph[i].p_offset, ph[i].p_filesz, ph[i].p_flags};
                if (s.filesz > 0 && s.offset + s.filesz > size_) {
                    truncated_ = true;
                    s.filesz = s.offset < size_ ? size_ - s.offset : 0;
                }
                segs_.push_back(s);
            } else if (ph[i].p_type == PT_NOTE && ph[i].p_offset + ph[i].p_filesz <= size_) {
                notes(data_ + ph[i].p_offset, ph[i].p_filesz);
            }
        }
        if (truncated_)
            problems.push_back("the core file is truncated (" + std::to_string(size_) +
                               " bytes): memory past its end reads as unavailable");
        std::sort(segs_.begin(), segs_.end(), [](const segment &a, const segment &b) { return a.start < b.start; });
        // Mappings: the PT_LOAD segments, named by NT_FILE.
        for (const segment &s : segs_) {
            mapping m{s.start, s.end, 0, (s.flags & PF_R) != 0, (s.flags & PF_W) != 0, ""};
            for (const mapping &f : files_)
                if (f.start <= s.start && s.start < f.end) {
                    m.file = f.file;
                    m.offset = f.offset + (s.start - f.start);
                }
            maps.push_back(m);
        }
    }
    bool read(u64 addr, void *dst, size_t n) override {
        const uint8_t *p = view(addr, n);
        if (p == nullptr) {
            // Across segments: piecewise.
            uint8_t *out = static_cast<uint8_t *>(dst);
            while (n > 0) {
                const segment *s = seg(addr);
                if (s == nullptr) return false;
                const size_t k = std::min<u64>(n, s->end - addr);
                const uint8_t *q = view(addr, k);
                if (q == nullptr) return false;
                memcpy(out, q, k);
                out += k, addr += k, n -= k;
            }
            return true;
        }
        memcpy(dst, p, n);
        return true;
    }
    const uint8_t *view(u64 addr, size_t n) override {
        const segment *s = seg(addr);
        if (s == nullptr || addr + n > s->end || addr + n < addr) return nullptr;
        // Bytes beyond filesz were not written (not dumped, or the file is truncated).
        if (addr - s->start + n > s->filesz) return nullptr;
        return data_ + s->offset + (addr - s->start);
    }

private:
    struct segment {
        u64 start, end, offset, filesz;
        uint32_t flags;
    };
    const segment *seg(u64 addr) {
        if (last_ != nullptr && last_->start <= addr && addr < last_->end) return last_;
        auto it = std::upper_bound(segs_.begin(), segs_.end(), addr, [](u64 a, const segment &s) { return a < s.start; });
        if (it == segs_.begin()) return nullptr;
        --it;
        if (addr >= it->end) return nullptr;
        last_ = &*it;
        return last_;
    }
    void notes(const uint8_t *p, size_t n) {
        size_t at = 0;
        while (at + sizeof(Elf64_Nhdr) <= n) {
            const auto *nh = reinterpret_cast<const Elf64_Nhdr *>(p + at);
            const size_t name_at = at + sizeof *nh, desc_at = name_at + ((nh->n_namesz + 3) & ~3u);
            if (desc_at + nh->n_descsz > n) break;
            const uint8_t *desc = p + desc_at;
            if (nh->n_type == NT_PRSTATUS && nh->n_descsz >= 112 + sizeof(user_regs_struct)) {
                thread_regs t;
                int32_t pid;
                memcpy(&pid, desc + 32, 4);
                t.tid = u64(pid);
                memcpy(&t.regs, desc + 112, sizeof t.regs);
                threads.push_back(t);
            } else if (nh->n_type == NT_FILE && nh->n_descsz >= 16) {
                u64 count, page;
                memcpy(&count, desc, 8);
                memcpy(&page, desc + 8, 8);
                const uint8_t *names = desc + 16 + count * 24;
                const uint8_t *end = desc + nh->n_descsz;
                for (u64 i = 0; i < count && names < end; ++i) {
                    u64 v[3];
                    memcpy(v, desc + 16 + i * 24, 24);
                    const char *name = reinterpret_cast<const char *>(names);
                    const size_t len = strnlen(name, size_t(end - names));
                    files_.push_back({v[0], v[1], v[2] * page, true, false, std::string(name, len)});
                    names += len + 1;
                }
            }
            at = desc_at + ((nh->n_descsz + 3) & ~3u);
        }
    }
    const uint8_t *data_ = nullptr;
    size_t size_ = 0;
    bool truncated_ = false;
    std::vector<segment> segs_;
    std::vector<mapping> files_;
    const segment *last_ = nullptr;
};

class live_memory : public memory {
public:
    live_memory(int pid, const char *regs_file) {
        const std::string base = "/proc/" + std::to_string(pid);
        std::ifstream in(base + "/maps");
        if (!in) fail("cannot read %s/maps: no such process?", base.c_str());
        std::string line;
        while (std::getline(in, line)) {
            mapping m{};
            char perms[8] = {};
            unsigned long long a, b, off;
            int name_at = 0;
            if (sscanf(line.c_str(), "%llx-%llx %7s %llx %*s %*s %n", &a, &b, perms, &off, &name_at) < 4) continue;
            m.start = a, m.end = b, m.offset = off;
            m.readable = perms[0] == 'r';
            m.writable = perms[1] == 'w';
            if (name_at > 0 && size_t(name_at) < line.size()) m.file = line.substr(size_t(name_at));
            if (!m.file.empty() && m.file[0] == '[') m.file.clear();  // [heap], [stack], [vdso]: not files
            maps.push_back(m);
        }
        fd_ = open((base + "/mem").c_str(), O_RDONLY | O_CLOEXEC);
        if (fd_ < 0) fail("cannot open %s/mem: %s", base.c_str(), strerror(errno));
        if (regs_file != nullptr) {
            std::ifstream r(regs_file);
            while (std::getline(r, line)) {
                std::istringstream fields(line);
                thread_regs t{};
                fields >> t.tid;
                u64 *regs = reinterpret_cast<u64 *>(&t.regs);
                for (size_t i = 0; i < sizeof t.regs / 8 && (fields >> regs[i]); ++i) {
                }
                threads.push_back(t);
            }
        }
    }
    bool read(u64 addr, void *dst, size_t n) override {
        uint8_t *out = static_cast<uint8_t *>(dst);
        while (n > 0) {
            const u64 blk = addr >> block_shift;
            const uint8_t *b = block(blk);
            if (b == nullptr) return pread_exact(addr, out, n);
            const size_t off = size_t(addr & (block_size - 1)), k = std::min(n, block_size - off);
            memcpy(out, b + off, k);
            out += k, addr += k, n -= k;
        }
        return true;
    }
    void streaming(bool on) override { streaming_ = on; }
    // Always a copy of its own (a view may be the streaming buffer, which the next block replaces).
    const uint8_t *bulk(u64 addr, size_t n) override {
        auto it = own_.find(addr);
        if (it != own_.end() && it->second.size() >= n) return it->second.data();
        std::vector<uint8_t> b(n);
        if (!read(addr, b.data(), n)) return nullptr;
        return (own_[addr] = std::move(b)).data();
    }
    const uint8_t *view(u64 addr, size_t n) override {
        const size_t off = size_t(addr & (block_size - 1));
        if (off + n > block_size) return nullptr;
        const uint8_t *b = block(addr >> block_shift);
        return b ? b + off : nullptr;
    }

private:
    static constexpr unsigned block_shift = 20;
    static constexpr size_t block_size = size_t{1} << block_shift;
    bool pread_exact(u64 addr, uint8_t *out, size_t n) {
        while (n > 0) {
            const ssize_t got = pread(fd_, out, n, off_t(addr));
            if (got <= 0) return false;
            out += got, addr += u64(got), n -= size_t(got);
        }
        return true;
    }
    // A whole 1 MiB block, if every byte of it is readable.
    const uint8_t *block(u64 blk) {
        auto it = cache_.find(blk);
        if (it != cache_.end()) return it->second.get();
        if (streaming_) {
            if (blk != stream_blk_) {
                if (!stream_) stream_.reset(new uint8_t[block_size]);
                stream_blk_ = blk;
                stream_ok_ = pread_exact(blk << block_shift, stream_.get(), block_size);
            }
            return stream_ok_ ? stream_.get() : nullptr;
        }
        std::unique_ptr<uint8_t[]> b(new uint8_t[block_size]);
        const bool ok = pread_exact(blk << block_shift, b.get(), block_size);
        const uint8_t *p = ok ? b.get() : nullptr;
        cache_.emplace(blk, ok ? std::move(b) : nullptr);
        return p;
    }
    int fd_ = -1;
    std::unordered_map<u64, std::unique_ptr<uint8_t[]>> cache_;
    std::unordered_map<u64, std::vector<uint8_t>> own_;
    bool streaming_ = false, stream_ok_ = false;
    u64 stream_blk_ = ~u64{0};
    std::unique_ptr<uint8_t[]> stream_;
};

// ---- the index, read through a memory source ---------------------------------------------------------

struct record {
    uint32_t id = 0;
    u64 word = 0;
    uint32_t state = 0;  // state: 0 free, 1 in flux, 2 live, 3 dead
    u64 base = 0, size = 0, usable = 0, site = 0, seq = 0, free_site = 0;
    uint32_t tid = 0, flags = 0, link = 0;  // link: aux (the check word of a trailered chunk)
    u64 address = 0;  // of the record itself
    uint8_t image[16] = {};  // the bytes a trailer copies (layout.h: trailer_image)
};

class index_reader {
public:
    index_reader(memory &mem, u64 root_address) : mem_(mem), root_address_(root_address) {
        char magic[16];
        if (!mem.read(root_address, magic, sizeof magic))
            fail("the index root at 0x%" PRIx64 " is not in the memory available (a truncated core?)", root_address);
        if (memcmp(magic, HEAPINDEX_ROOT_MAGIC, sizeof magic) != 0)
            fail("no heap index root at 0x%" PRIx64 " (magic does not match: another library?)", root_address);
        uint32_t head[2];
        mem.read(root_address + 16, head, sizeof head);
        if (head[0] != HEAPINDEX_ROOT_VERSION)
            fail("version mismatch: the index in this process has layout version %u, this reader knows version %u "
                 "(a core from another build of libheapindex.so?)", head[0], HEAPINDEX_ROOT_VERSION);
        if (head[1] < sizeof root_) fail("version mismatch: the index root is %u bytes, expected %zu", head[1], sizeof root_);
        if (!mem.read(root_address, &root_, sizeof root_)) fail("the index root is not in the memory available");
        if (!root_.layout_complete) fail("the heap index has not indexed any chunk yet (its root is not filled in)");
        mem.get(root_.pool_address + root_.pool_base_offset, &records_);
        mem.get(root_.pool_address + root_.pool_capacity_offset, &capacity_);
        mem.get(root_.pool_address + root_.pool_fresh_offset, &ids_made_);
        heap_.load(mem, root_.heap);
        client_.load(mem, root_.client);
        // Every record ever handed out, in one read (64 bytes per id; a truncated core may lack them:
        // then record by record).
        if (ids_made_ <= capacity_) records_image_ = mem.bulk(records_, ids_made_ * root_.record_bytes);
    }
    const heapindex_root &root() const { return root_; }
    u64 root_address() const { return root_address_; }
    u64 ids_made() const { return ids_made_; }
    u64 records_base() const { return records_; }
    u64 records_capacity() const { return capacity_; }

    // A record as the seqlock reader sees it; state 1 when it changed under us or cannot be read.
    bool read_record(uint32_t id, record *r) {
        r->id = id;
        if (id == 0 || id >= capacity_) return false;
        const u64 at = records_ + u64(id) * root_.record_bytes;
        r->address = at;
        uint8_t copy[256];
        const uint8_t *buf = id < ids_made_ && records_image_ ? records_image_ + u64(id) * root_.record_bytes : nullptr;
        if (buf == nullptr) {
            if (root_.record_bytes > sizeof copy || !mem_.read(at, copy, root_.record_bytes)) return false;
            buf = copy;
        }
        // The record is packed (index/record.h): each field a bit range of a 64-bit word (layout.h).
        auto bits = [&](const heapindex_bits &b) -> u64 {
            if (b.offset + 8u > root_.record_bytes || b.shift + b.bits > 64u) return 0;
            u64 w;
            memcpy(&w, buf + b.offset, 8);
            w >>= b.shift;
            return b.bits >= 64 ? w : w & ((u64{1} << b.bits) - 1);
        };
        memcpy(&r->word, buf + root_.rec_head, 8);
        const uint32_t state = uint32_t(bits(root_.rec_state));
        r->base = bits(root_.rec_base);
        r->site = bits(root_.rec_site);
        r->size = bits(root_.rec_size);
        r->flags = uint32_t(bits(root_.rec_flags));
        r->link = uint32_t(bits(root_.rec_aux));
        r->seq = 0;
        unsigned piece_at = 0;
        for (const heapindex_bits &p : root_.rec_seq) r->seq |= bits(p) << piece_at, piece_at += p.bits;
        const bool dead = state == 3, client = r->flags & HEAPINDEX_FLAG_CLIENT;
        r->tid = dead ? 0 : uint32_t(bits(root_.rec_tid));
        r->free_site = dead ? bits(root_.rec_free_site) : client ? r->link : 0;
        if (r->flags & root_.flags_trailered) {
            const u64 round = root_.usable_round ? root_.usable_round : 1;
            r->usable = std::max<u64>((r->size + round - 1) / round * round, root_.usable_min);
        } else {
            r->usable = client ? r->size : r->size + r->link;
        }
        if (root_.trailer_image + sizeof r->image <= root_.record_bytes) memcpy(r->image, buf + root_.trailer_image, sizeof r->image);
        // The second read of the head: the same as the first in a stopped process or a core, but a
        // reader of a running process would see a change here.
        u64 w2;
        memcpy(&w2, buf + root_.rec_head, sizeof w2);
        r->state = w2 != r->word ? 1 : state;
        return true;
    }

    struct index_view {
        heapindex_index_layout l{};
        u64 limit = 0, zero = 0;
        std::vector<u64> tops;  // the top table: per block, its address less its first region's offset
        void load(memory &mem, const heapindex_index_layout &layout) {
            l = layout;
            mem.get(l.address + l.limit_offset, &limit);
            mem.get(l.address + l.zero_offset, &zero);
            if (limit > l.top_entries) limit = 0;  // not a value the library writes: read nothing
            tops.assign(limit, 0);
            if (limit != 0 && !mem.read(l.address + l.top_offset, tops.data(), limit * 8)) tops.assign(limit, zero);
        }
        // Block t's address, or 0 when it does not exist (the zero block).
        u64 block(u64 t) const {
            if (t >= limit) return 0;
            const u64 b = tops[t] + (t << l.block_shift) * 8;
            return b == zero ? 0 : b;
        }
        unsigned granules_per_page() const { return 1u << (l.page_shift - l.granule_shift); }
        unsigned pages_per_region() const { return 1u << (l.region_shift - l.page_shift); }
        unsigned granules_per_region() const { return granules_per_page() * pages_per_region(); }
    };
    index_view &heap() { return heap_; }
    index_view &client() { return client_; }

    u64 leaf_of(index_view &v, u64 region) {
        u64 leaf = 0;
        const u64 block = v.block(region >> v.l.block_shift);
        if (block == 0) return 0;
        // The directory page holding the entry, read once (4 KiB: 512 regions).
        const u64 at = block + v.l.dir_leaves_offset + (region & ((u64{1} << v.l.block_shift) - 1)) * 8;
        if (const uint8_t *p = dir_page(at & ~u64{4095})) memcpy(&leaf, p + (at & 4095), 8);
        return leaf;
    }
    const uint8_t *dir_page(u64 page) {
        if (page == last_dir_page_) return last_dir_image_;
        auto it = dir_pages_.find(page);
        const uint8_t *p = it != dir_pages_.end() ? it->second : (dir_pages_[page] = mem_.bulk(page, 4096));
        last_dir_page_ = page, last_dir_image_ = p;
        return p;
    }
    uint32_t region_cont(index_view &v, u64 region) {
        uint32_t id = 0;
        if (const u64 block = v.block(region >> v.l.block_shift))
            mem_.get(block + v.l.dir_region_cont_offset + (region & ((u64{1} << v.l.block_shift) - 1)) * 4, &id);
        return id;
    }
    // A leaf's local image (read whole, once), or nullptr.
    const uint8_t *leaf_image(index_view &v, u64 leaf) {
        if (leaf == last_leaf_) return last_image_;
        auto it = leaves_.find(leaf);
        const uint8_t *p = it != leaves_.end() ? it->second : (leaves_[leaf] = mem_.bulk(leaf, v.l.leaf_bytes));
        last_leaf_ = leaf, last_image_ = p;
        return p;
    }
    template <class T> T leaf_field(index_view &v, u64 leaf, u64 offset) {
        T x{};
        if (const uint8_t *p = leaf_image(v, leaf)) memcpy(&x, p + offset, sizeof x);
        else mem_.get(leaf + offset, &x);
        return x;
    }
    uint32_t leaf_id(index_view &v, u64 leaf, unsigned slot) {
        return leaf_field<uint32_t>(v, leaf, v.l.leaf_ids_offset + u64(slot) * 4);
    }
    bool start_bit(index_view &v, u64 leaf, unsigned slot) {
        return (leaf_field<u64>(v, leaf, v.l.leaf_starts_offset + u64(slot / 64) * 8) >> (slot % 64)) & 1;
    }
    uint32_t page_cont(index_view &v, u64 leaf, unsigned page) {
        return leaf_field<uint32_t>(v, leaf, v.l.leaf_page_cont_offset + u64(page) * 4);
    }

    // chunk_index::lookup, through memory reads: the live chunk containing addr.
    bool lookup(index_view &v, u64 addr, record *out) {
        const u64 r = addr >> v.l.region_shift;
        if ((r >> v.l.block_shift) >= v.limit) return false;
        const u64 page_start = addr & ~((u64{1} << v.l.page_shift) - 1);
        if (const u64 leaf = leaf_of(v, r)) {
            const unsigned page = unsigned(addr >> v.l.page_shift) & (v.pages_per_region() - 1);
            const unsigned gpp = v.granules_per_page();
            const unsigned words = gpp / 64;
            u64 bits[8] = {};
            for (unsigned w = 0; w < words && w < 8; ++w)
                bits[w] = leaf_field<u64>(v, leaf, v.l.leaf_starts_offset + (u64(page) * words + w) * 8);
            int s = highest(bits, int((addr >> v.l.granule_shift) & (gpp - 1)));
            for (int tries = 0; s >= 0 && tries < 3; ++tries) {
                const uint32_t id = leaf_id(v, leaf, page * gpp + unsigned(s));
                const u64 start = page_start + (u64(s) << v.l.granule_shift);
                record f;
                if (id != 0 && read_record(id, &f) && f.state == 2 && (f.base >> v.l.granule_shift) == (start >> v.l.granule_shift) &&
                    f.base <= addr) {
                    if (addr - f.base < f.size) return *out = f, true;
                    return false;
                }
                s = s > 0 ? highest(bits, s - 1) : -1;
            }
            const int c = covers(page_cont(v, leaf, page), addr, page_start, out);
            if (c >= 0) return c > 0;
        }
        return covers(region_cont(v, r), addr, addr & ~((u64{1} << v.l.region_shift) - 1), out) > 0;
    }

    // f(granule address, id, start bit set) for every granule with a start bit, in address order.
    template <class F> void for_each_start(index_view &v, F &&f) {
        const unsigned gpr = v.granules_per_region();
        std::vector<u64> starts(gpr / 64);
        std::vector<uint32_t> ids(gpr);
        for (u64 t = 0; t < v.limit; ++t) {
            if (v.block(t) == 0) continue;
            for (u64 r = t << v.l.block_shift; r < (t + 1) << v.l.block_shift; ++r) {
                const u64 leaf = leaf_of(v, r);
                if (leaf == 0) continue;
                if (!mem_.read(leaf + v.l.leaf_starts_offset, starts.data(), starts.size() * 8)) {
                    leaf_problems.push_back(leaf);
                    continue;
                }
                bool ids_read = false;
                const u64 region = r << v.l.region_shift;
                for (unsigned w = 0; w < starts.size(); ++w) {
                    u64 bits = starts[w];
                    while (bits != 0) {
                        if (!ids_read) {
                            if (!mem_.read(leaf + v.l.leaf_ids_offset, ids.data(), ids.size() * 4)) break;
                            ids_read = true;
                        }
                        const unsigned g = w * 64 + unsigned(__builtin_ctzll(bits));
                        bits &= bits - 1;
                        f(region | (u64(g) << v.l.granule_shift), ids[g]);
                    }
                }
            }
        }
    }

    // The trailer a record expects: the image of its last bytes (layout.h).  (The check word in it is
    // keyed: no reader can compute it.)
    void expected_trailer(const record &r, uint8_t out[16]) const { memcpy(out, r.image, 16); }
    std::vector<u64> leaf_problems;

private:
    static int highest(const u64 *bits, int g) {
        for (int w = g >> 6; w >= 0; --w) {
            u64 b = bits[w];
            if (w == (g >> 6)) b &= ~u64{0} >> (63 - (g & 63));
            if (b != 0) return w * 64 + 63 - __builtin_clzll(b);
        }
        return -1;
    }
    int covers(uint32_t id, u64 addr, u64 level_start, record *out) {
        record f;
        if (id == 0 || !read_record(id, &f) || f.state != 2) return -1;
        if (f.base >= level_start || level_start - f.base >= f.size) return -1;
        if (addr - f.base < f.size) return *out = f, 1;
        return 0;
    }

    memory &mem_;
    u64 root_address_;
    const uint8_t *records_image_ = nullptr;
    std::unordered_map<u64, const uint8_t *> leaves_, dir_pages_;
    u64 last_leaf_ = 0, last_dir_page_ = ~u64{0};
    const uint8_t *last_image_ = nullptr, *last_dir_image_ = nullptr;
    heapindex_root root_{};
    u64 records_ = 0, capacity_ = 0, ids_made_ = 0;
    index_view heap_, client_;
};

// ---- JSON output ----------------------------------------------------------------------------------------

std::string esc(const std::string &s) {
    std::string o;
    for (char c : s) {
        if (c == '"' || c == '\\') o += '\\', o += c;
        else if (uint8_t(c) < 0x20) {
            char b[8];
            snprintf(b, sizeof b, "\\u%04x", c);
            o += b;
        } else o += c;
    }
    return o;
}

std::string chunk_json(const record &r) {
    char b[512];
    snprintf(b, sizeof b,
             "{\"base\": %" PRIu64 ", \"size\": %" PRIu64 ", \"usable\": %" PRIu64 ", \"site\": %" PRIu64
             ", \"seq\": %" PRIu64 ", \"tid\": %u, \"flags\": %u, \"id\": %u, \"free_site\": %" PRIu64
             ", \"record\": %" PRIu64 "}",
             r.base, r.size, r.usable, r.site, r.seq, r.tid, r.flags, r.id, r.free_site, r.address);
    return b;
}

// ---- the process's live chunks, and what they are made of ----------------------------------------------

struct chunk {
    u64 base, size, usable, site, seq;
    uint32_t tid, flags, id, link;  // link: the record's aux word
    uint8_t image[16];              // the record's trailer image, for the trailer's check
};

struct inventory {
    std::vector<chunk> chunks;    // heap chunks, by address
    std::vector<chunk> clients;   // client blocks
    std::vector<std::string> in_flux;  // records caught mid-update
    std::vector<uint32_t> slot;   // record id -> chunks index + 1
};

inventory take_inventory(index_reader &ix) {
    inventory inv;
    auto collect = [&](index_reader::index_view &v, std::vector<chunk> &out, const char *kind) {
        ix.for_each_start(v, [&](u64 granule, uint32_t id) {
            record r;
            if (id == 0 || !ix.read_record(id, &r)) return;
            if (r.state != 2) {
                char b[200];
                snprintf(b, sizeof b, "%s start mark at 0x%" PRIx64 ": record %u is %s (a chunk %s)", kind, granule, id,
                         r.state == 3 ? "dead" : r.state == 1 ? "changing" : "free",
                         r.state == 3 ? "being freed" : "mid-update");
                inv.in_flux.push_back(b);
                return;
            }
            if ((r.base >> v.l.granule_shift) != (granule >> v.l.granule_shift)) return;  // a stale mark
            chunk c{r.base, r.size, r.usable, r.site, r.seq, r.tid, r.flags, id, r.link, {}};
            memcpy(c.image, r.image, sizeof c.image);
            out.push_back(c);
        });
    };
    collect(ix.heap(), inv.chunks, "chunk");
    collect(ix.client(), inv.clients, "client block");
    inv.slot.assign(ix.ids_made() + 1, 0);
    for (size_t i = 0; i < inv.chunks.size(); ++i)
        if (inv.chunks[i].id < inv.slot.size()) inv.slot[inv.chunks[i].id] = uint32_t(i + 1);
    return inv;
}

// The Heap of reachability.h over a reader.
struct foreign_heap {
    index_reader &ix;
    ::memory &mem;
    inventory &inv;
    size_t count() const { return inv.chunks.size(); }
    uintptr_t base(size_t i) const { return inv.chunks[i].base; }
    size_t size(size_t i) const { return inv.chunks[i].size; }
    bool find(uintptr_t w, uint32_t *i) const {
        record r;
        if (!ix.lookup(ix.heap(), w, &r) || r.id >= inv.slot.size() || inv.slot[r.id] == 0) return false;
        *i = inv.slot[r.id] - 1;
        return true;
    }
    template <class F> void words(uintptr_t from, size_t bytes, F &&f) const {
        u64 a = (from + 7) & ~u64{7};
        const u64 end = from + bytes;
        while (a + 8 <= end) {
            // At most to the next 64 KiB boundary per view (a live source caches 1 MiB blocks).
            const u64 next = std::min<u64>(end & ~u64{7}, (a | 0xffff) + 1);
            const size_t n = size_t(next - a);
            if (const uint8_t *p = mem.view(a, n)) {
                for (size_t k = 0; k < n; k += 8) {
                    u64 w;
                    memcpy(&w, p + k, 8);
                    f(uintptr_t(w));
                }
            } else {
                for (u64 x = a; x < next; x += 8) {
                    u64 w;
                    if (mem.get(x, &w)) f(uintptr_t(w));
                }
            }
            a = next;
        }
    }
    void *memory(size_t bytes) { return calloc(bytes ? bytes : 1, 1); }
    void release(void *p, size_t) { free(p); }
};

// ---- roots ---------------------------------------------------------------------------------------------

struct root_range {
    u64 start, end;
    std::string kind;  // "stack", "segment", "tls", "client"
    std::string what;  // object file, or "thread TID"
    u64 tid = 0;
};

// The writable PT_LOAD segments of an ELF object mapped at `m` (offset 0): from its headers in memory,
// else from the file on disk.
void object_segments(memory &mem, const mapping &m, std::vector<root_range> &out) {
    Elf64_Ehdr eh;
    std::vector<Elf64_Phdr> ph;
    bool ok = mem.get(m.start, &eh) && memcmp(eh.e_ident, ELFMAG, SELFMAG) == 0;
    if (ok) {
        ph.resize(eh.e_phnum);
        ok = mem.read(m.start + eh.e_phoff, ph.data(), ph.size() * sizeof(Elf64_Phdr));
    }
    if (!ok) {
        std::ifstream f(m.file, std::ios::binary);
        if (!f.read(reinterpret_cast<char *>(&eh), sizeof eh) || memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0) return;
        ph.resize(eh.e_phnum);
        f.seekg(std::streamoff(eh.e_phoff));
        if (!f.read(reinterpret_cast<char *>(ph.data()), std::streamsize(ph.size() * sizeof(Elf64_Phdr)))) return;
    }
    u64 first = ~u64{0};
    for (auto &p : ph)
        if (p.p_type == PT_LOAD) first = std::min(first, p.p_vaddr & ~u64{4095});
    if (first == ~u64{0}) return;
    const u64 bias = m.start - first;
    for (auto &p : ph)
        if (p.p_type == PT_LOAD && (p.p_flags & PF_W)) out.push_back({bias + p.p_vaddr, bias + p.p_vaddr + p.p_memsz, "segment", m.file});
}

// Index memory is never a root (records hold every chunk's base): cut it out of root ranges.
std::vector<std::pair<u64, u64>> index_ranges(index_reader &ix, memory &mem) {
    std::vector<std::pair<u64, u64>> r;
    r.push_back({ix.records_base(), ix.records_base() + ix.records_capacity() * ix.root().record_bytes});
    for (auto *v : {&ix.heap(), &ix.client()}) {
        if (v->zero != 0) r.push_back({v->zero, v->zero + v->l.dir_bytes});
        for (u64 t = 0; t < v->limit; ++t) {
            const u64 block = v->block(t);
            if (block == 0) continue;
            r.push_back({block, block + v->l.dir_bytes});
            for (u64 k = t << v->l.block_shift; k < (t + 1) << v->l.block_shift; ++k)
                if (const u64 leaf = ix.leaf_of(*v, k)) r.push_back({leaf, leaf + v->l.leaf_bytes});
        }
    }
    u64 ts = 0;
    mem.get(ix.root().thread_list_address, &ts);
    for (int guard = 0; ts != 0 && guard < 1000000; ++guard) {
        r.push_back({ts, ts + ix.root().ts_bytes});
        if (!mem.get(ts + ix.root().ts_next_all, &ts)) break;
    }
    std::sort(r.begin(), r.end());
    return r;
}

std::vector<root_range> find_roots(memory &mem, index_reader &ix, inventory &inv) {
    std::vector<root_range> roots;
    for (const thread_regs &t : mem.threads) {
        const u64 sp = t.regs.rsp - 128;  // the red zone below the stack pointer is live too
        if (const mapping *m = mem.mapping_of(t.regs.rsp)) roots.push_back({sp < m->start ? m->start : sp, m->end, "stack", "", t.tid});
        if (const mapping *m = mem.mapping_of(t.regs.fs_base))
            if (!(t.regs.rsp >= m->start && t.regs.rsp < m->end)) roots.push_back({m->start, m->end, "tls", "", t.tid});
    }
    // Every loaded object's writable segments, but libheapindex.so's (the one holding the root): the
    // tool's own statics are not the program's memory.
    const mapping *lib = mem.mapping_of(ix.root_address());
    for (const mapping &m : mem.maps)
        if (!m.file.empty() && m.offset == 0 && !(lib != nullptr && m.file == lib->file)) object_segments(mem, m, roots);
    for (const chunk &c : inv.clients) roots.push_back({c.base, c.base + c.size, "client", "", 0});
    // Subtract the index's own memory.
    const auto excluded = index_ranges(ix, mem);
    std::vector<root_range> out;
    for (const root_range &r : roots) {
        u64 at = r.start;
        for (const auto &[a, b] : excluded) {
            if (b <= at || a >= r.end) continue;
            if (a > at) out.push_back({at, a, r.kind, r.what, r.tid});
            at = std::max(at, b);
        }
        if (at < r.end) out.push_back({at, r.end, r.kind, r.what, r.tid});
    }
    return out;
}

// ---- commands ------------------------------------------------------------------------------------------

std::string mapping_json(memory &mem, u64 addr) {
    const mapping *m = mem.mapping_of(addr);
    if (m == nullptr) return "null";
    char b[160];
    snprintf(b, sizeof b, "{\"start\": %" PRIu64 ", \"end\": %" PRIu64 ", \"writable\": %s, \"file\": ", m->start, m->end,
             m->writable ? "true" : "false");
    std::string s = b;
    s += "\"" + esc(m->file) + "\"";
    for (const thread_regs &t : mem.threads) {
        const mapping *sm = mem.mapping_of(t.regs.rsp);
        if (sm == m) s += ", \"stack_of\": " + std::to_string(t.tid) + ", \"below_sp\": " + (addr < t.regs.rsp ? "true" : "false");
    }
    return s + "}";
}

std::string trailer_state(memory &mem, index_reader &ix, const record &r) {
    if (!(r.flags & HEAPINDEX_FLAG_TRAILER)) return "none";
    const heapindex_root &root = ix.root();
    uint8_t t[16], want[16];
    if (root.trailer_bytes > sizeof t || !mem.read(r.base + r.usable, t, root.trailer_bytes)) return "unreadable";
    ix.expected_trailer(r, want);
    return memcmp(t, want, root.trailer_bytes) == 0 ? "intact" : "clobbered";
}

void cmd_info(memory &mem, index_reader &ix, u64 addr) {
    record r;
    std::string kind;
    if (ix.lookup(ix.client(), addr, &r)) kind = "client block";
    else if (ix.lookup(ix.heap(), addr, &r)) kind = "chunk";
    printf("{\"address\": %" PRIu64, addr);
    if (!kind.empty()) {
        printf(", \"found\": \"%s\", \"offset\": %" PRIu64 ", \"chunk\": %s, \"trailer\": \"%s\"", kind.c_str(), addr - r.base,
               chunk_json(r).c_str(), trailer_state(mem, ix, r).c_str());
        if (kind == "client block") {
            record h;
            if (ix.lookup(ix.heap(), addr, &h)) printf(", \"in_chunk\": %s", chunk_json(h).c_str());
        }
        printf(", \"mapping\": %s}\n", mapping_json(mem, addr).c_str());
        return;
    }
    printf(", \"found\": null");
    // A freed chunk still held as a tombstone: the ids left at granules at or before addr in its page,
    // then the page's and the region's continuations.
    auto &v = ix.heap();
    const u64 region = addr >> v.l.region_shift;
    std::optional<record> tomb;
    if (const u64 leaf = ix.leaf_of(v, region)) {
        const unsigned gpp = v.granules_per_page();
        const unsigned page = unsigned(addr >> v.l.page_shift) & (v.pages_per_region() - 1);
        const unsigned g = unsigned(addr >> v.l.granule_shift) & (gpp - 1);
        for (int s = int(g); s >= 0 && !tomb; --s) {
            record t;
            const uint32_t id = ix.leaf_id(v, leaf, page * gpp + unsigned(s));
            if (id != 0 && ix.read_record(id, &t) && t.state == 3 && t.base <= addr && addr < t.base + t.size) tomb = t;
        }
        record t;
        const uint32_t pc = ix.page_cont(v, leaf, page);
        if (!tomb && pc != 0 && ix.read_record(pc, &t) && t.state == 3 && t.base <= addr && addr < t.base + t.size) tomb = t;
    }
    record t;
    const uint32_t rc = ix.region_cont(v, region);
    if (!tomb && rc != 0 && ix.read_record(rc, &t) && t.state == 3 && t.base <= addr && addr < t.base + t.size) tomb = t;
    if (tomb) printf(", \"freed\": %s", chunk_json(*tomb).c_str());
    // The nearest live chunks before and after, walking start bits outwards from addr's region.
    std::optional<record> before, after;
    for (u64 r2 = region + 1; r2-- > 0 && r2 + 64 > region && !before;) {
        const u64 leaf = ix.leaf_of(v, r2);
        if (!leaf) continue;
        const unsigned gpr = v.granules_per_region();
        int g = r2 == region ? int((addr >> v.l.granule_shift) & (gpr - 1)) : int(gpr - 1);
        for (; g >= 0 && !before; --g) {
            if (!ix.start_bit(v, leaf, unsigned(g))) continue;
            record c;
            if (ix.read_record(ix.leaf_id(v, leaf, unsigned(g)), &c) && c.state == 2 && c.base <= addr) before = c;
        }
    }
    for (u64 r2 = region; r2 < region + 64 && r2 < v.limit && !after; ++r2) {
        const u64 leaf = ix.leaf_of(v, r2);
        if (!leaf) continue;
        const unsigned gpr = v.granules_per_region();
        unsigned g = r2 == region ? unsigned((addr >> v.l.granule_shift) & (gpr - 1)) : 0;
        for (; g < gpr && !after; ++g) {
            if (!ix.start_bit(v, leaf, g)) continue;
            record c;
            if (ix.read_record(ix.leaf_id(v, leaf, g), &c) && c.state == 2 && c.base > addr) after = c;
        }
    }
    if (before) printf(", \"before\": %s", chunk_json(*before).c_str());
    if (after) printf(", \"after\": %s", chunk_json(*after).c_str());
    printf(", \"mapping\": %s}\n", mapping_json(mem, addr).c_str());
}

struct list_filter {
    std::optional<u64> site, tid, min_size, after_seq, largest;
};

void cmd_list(index_reader &, inventory &inv, const list_filter &f) {
    std::vector<const chunk *> sel;
    for (const auto *v : {&inv.chunks, &inv.clients})
        for (const chunk &c : *v) {
            if (f.site && c.site != *f.site) continue;
            if (f.tid && c.tid != *f.tid) continue;
            if (f.min_size && c.size < *f.min_size) continue;
            if (f.after_seq && c.seq <= *f.after_seq) continue;
            sel.push_back(&c);
        }
    if (f.largest) {
        std::stable_sort(sel.begin(), sel.end(), [](const chunk *a, const chunk *b) { return a->size > b->size; });
        if (sel.size() > *f.largest) sel.resize(*f.largest);
    }
    printf("{\"chunks\": [");
    for (size_t i = 0; i < sel.size(); ++i) {
        const chunk &c = *sel[i];
        printf("%s\n{\"base\": %" PRIu64 ", \"size\": %" PRIu64 ", \"usable\": %" PRIu64 ", \"site\": %" PRIu64
               ", \"seq\": %" PRIu64 ", \"tid\": %u, \"flags\": %u}",
               i ? "," : "", c.base, c.size, c.usable, c.site, c.seq, c.tid, c.flags);
    }
    printf("], \"in_flux\": [");
    for (size_t i = 0; i < inv.in_flux.size(); ++i) printf("%s\"%s\"", i ? ", " : "", esc(inv.in_flux[i]).c_str());
    printf("]}\n");
}

void cmd_sites(inventory &inv) {
    std::map<std::pair<u64, bool>, std::pair<u64, u64>> by;
    for (const auto *v : {&inv.chunks, &inv.clients})
        for (const chunk &c : *v) {
            auto &e = by[{c.site, (c.flags & HEAPINDEX_FLAG_CLIENT) != 0}];
            e.first += c.size;
            ++e.second;
        }
    std::vector<std::pair<std::pair<u64, bool>, std::pair<u64, u64>>> rows(by.begin(), by.end());
    std::sort(rows.begin(), rows.end(), [](auto &a, auto &b) {
        return a.second.first != b.second.first ? a.second.first > b.second.first : a.second.second > b.second.second;
    });
    printf("{\"sites\": [");
    for (size_t i = 0; i < rows.size(); ++i)
        printf("%s\n{\"site\": %" PRIu64 ", \"client\": %s, \"bytes\": %" PRIu64 ", \"chunks\": %" PRIu64 "}", i ? "," : "",
               rows[i].first.first, rows[i].first.second ? "true" : "false", rows[i].second.first, rows[i].second.second);
    printf("]}\n");
}

void cmd_stats(memory &mem, index_reader &ix, inventory &inv) {
    const heapindex_root &r = ix.root();
    auto counter = [&](uint32_t off) {
        u64 v = 0;
        mem.get(r.counters_address + off, &v);
        return v;
    };
    u64 allocs = counter(r.gc_orphan_allocations), frees = counter(r.gc_orphan_frees);
    u64 in = counter(r.gc_orphan_bytes_allocated), out = counter(r.gc_orphan_bytes_freed);
    u64 ts = 0, threads = 0;
    mem.get(r.thread_list_address, &ts);
    while (ts != 0 && threads < 1000000) {
        u64 v;
        if (mem.get(ts + r.ts_allocations, &v)) allocs += v;
        if (mem.get(ts + r.ts_frees, &v)) frees += v;
        if (mem.get(ts + r.ts_bytes_allocated, &v)) in += v;
        if (mem.get(ts + r.ts_bytes_freed, &v)) out += v;
        ++threads;
        if (!mem.get(ts + r.ts_next_all, &ts)) break;
    }
    u64 live_bytes = 0;
    for (const chunk &c : inv.chunks) live_bytes += c.size;
    const u64 peak = counter(r.gc_peak);
    printf("{\"live_chunks\": %zu, \"live_bytes\": %" PRIu64 ", \"client_blocks\": %zu, \"counted_live_chunks\": %" PRIu64
           ", \"counted_live_bytes\": %" PRIu64 ", \"peak_live_bytes\": %" PRIu64 ", \"total_allocations\": %" PRIu64
           ", \"total_frees\": %" PRIu64 ", \"total_bytes\": %" PRIu64 ", \"invalid_frees\": %" PRIu64
           ", \"double_frees\": %" PRIu64 ", \"corrupt_trailers\": %" PRIu64 ", \"thread_states\": %" PRIu64
           ", \"record_ids\": %" PRIu64 "}\n",
           inv.chunks.size(), live_bytes, inv.clients.size(), allocs > frees ? allocs - frees : 0, in > out ? in - out : 0,
           std::max(peak, in > out ? in - out : 0), allocs, frees, in, counter(r.gc_invalid_frees), counter(r.gc_double_frees),
           counter(r.gc_corrupt_trailers), threads, ix.ids_made());
}

void cmd_check(memory &mem, index_reader &ix, inventory &inv) {
    std::vector<std::string> problems = inv.in_flux;
    for (auto leaf : ix.leaf_problems) {
        char b[120];
        snprintf(b, sizeof b, "leaf at 0x%" PRIx64 " is not in the memory available", leaf);
        problems.push_back(b);
    }
    const chunk *prev = nullptr;
    for (const chunk &c : inv.chunks) {
        char b[300];
        record r{};
        r.base = c.base, r.size = c.size, r.usable = c.usable, r.site = c.site, r.seq = c.seq, r.tid = c.tid, r.flags = c.flags;
        r.link = c.link;
        memcpy(r.image, c.image, sizeof r.image);
        const std::string t = trailer_state(mem, ix, r);
        if (t == "clobbered" || t == "unreadable") {
            snprintf(b, sizeof b, "trailer of chunk 0x%" PRIx64 " (%" PRIu64 " bytes, seq %" PRIu64 ", site 0x%" PRIx64 ") %s",
                     c.base, c.size, c.seq, c.site, t == "clobbered" ? "overwritten" : "unreadable");
            problems.push_back(b);
        }
        const u64 extent = (c.flags & HEAPINDEX_FLAG_TRAILER) ? c.usable + ix.root().trailer_bytes : std::max(c.usable, c.size);
        if (prev && prev->base + ((prev->flags & HEAPINDEX_FLAG_TRAILER) ? prev->usable + ix.root().trailer_bytes : std::max(prev->usable, prev->size)) > c.base) {
            snprintf(b, sizeof b, "chunk 0x%" PRIx64 " (%" PRIu64 " bytes) overlaps 0x%" PRIx64, prev->base, prev->size, c.base);
            problems.push_back(b);
        }
        (void)extent;
        if (c.size > 0) {
            record g;
            for (u64 a : {c.base, c.base + c.size - 1})
                if (!ix.lookup(ix.heap(), a, &g) || g.id != c.id) {
                    snprintf(b, sizeof b, "lookup of 0x%" PRIx64 " does not find chunk 0x%" PRIx64 " (%" PRIu64 " bytes)", a, c.base, c.size);
                    problems.push_back(b);
                }
        }
        prev = &c;
    }
    printf("{\"chunks\": %zu, \"client_blocks\": %zu, \"problems\": [", inv.chunks.size(), inv.clients.size());
    for (size_t i = 0; i < problems.size(); ++i) printf("%s\n\"%s\"", i ? "," : "", esc(problems[i]).c_str());
    printf("]}\n");
}

void cmd_who(memory &mem, index_reader &ix, inventory &inv, u64 addr, u64 len) {
    // The target: the chunk containing addr (all of it), or [addr, addr + len) when len is given or no
    // chunk contains addr.
    record r;
    u64 lo = addr, hi = addr + (len ? len : 1);
    bool chunk_found = false;
    if (!len && ix.lookup(ix.heap(), addr, &r)) lo = r.base, hi = r.base + std::max<u64>(r.size, 1), chunk_found = true;
    printf("{\"target\": {\"start\": %" PRIu64 ", \"end\": %" PRIu64 ", \"chunk\": %s}, \"hits\": [", lo, hi,
           chunk_found ? chunk_json(r).c_str() : "null");
    bool first = true;
    auto hit = [&](const char *where, u64 at, u64 value, const std::string &extra) {
        printf("%s\n{\"where\": \"%s\", \"at\": %" PRIu64 ", \"value\": %" PRIu64 ", \"interior\": %s%s}", first ? "" : ",", where, at,
               value, value != lo ? "true" : "false", extra.c_str());
        first = false;
    };
    static const char *names[] = {"r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8", "rax", "rcx", "rdx",
                                  "rsi", "rdi", "orig_rax", "rip", "cs", "eflags", "rsp", "ss", "fs_base", "gs_base"};
    for (const thread_regs &t : mem.threads) {
        const u64 *regs = reinterpret_cast<const u64 *>(&t.regs);
        for (size_t i = 0; i < sizeof names / sizeof *names; ++i)
            if (regs[i] - lo < hi - lo && strcmp(names[i], "rsp") != 0)
                hit("register", 0, regs[i], ", \"register\": \"" + std::string(names[i]) + "\", \"tid\": " + std::to_string(t.tid));
    }
    auto scan = [&](u64 from, u64 to, auto &&report) {
        u64 a = (from + 7) & ~u64{7};
        while (a + 8 <= to) {
            const u64 next = std::min<u64>(to & ~u64{7}, (a | 0xffff) + 1);
            const uint8_t *p = mem.view(a, size_t(next - a));
            for (u64 x = a; x < next; x += 8) {
                u64 w;
                if (p) memcpy(&w, p + (x - a), 8);
                else if (!mem.get(x, &w)) continue;
                if (w - lo < hi - lo) report(x, w);
            }
            a = next;
        }
    };
    const std::vector<root_range> roots = find_roots(mem, ix, inv);
    mem.streaming(true);
    for (const root_range &rr : roots) {
        if (rr.kind == "client") continue;  // client blocks lie in chunks: found below
        scan(rr.start, rr.end, [&](u64 at, u64 w) {
            std::string extra = rr.tid ? ", \"tid\": " + std::to_string(rr.tid) : ", \"object\": \"" + esc(rr.what) + "\"";
            hit(rr.kind.c_str(), at, w, extra);
        });
    }
    for (const chunk &c : inv.chunks)
        scan(c.base, c.base + c.size, [&](u64 at, u64 w) {
            hit("chunk", at, w, ", \"chunk\": {\"base\": " + std::to_string(c.base) + ", \"size\": " + std::to_string(c.size) +
                                    ", \"site\": " + std::to_string(c.site) + "}");
        });
    printf("]}\n");
}

void cmd_leaks(memory &mem, index_reader &ix, inventory &inv) {
    const auto t0 = std::chrono::steady_clock::now();
    foreign_heap heap{ix, mem, inv};
    mallochooks::heapindex::reach::scan<foreign_heap> s(heap);
    if (!s.start()) fail("no memory for the scan");
    for (const thread_regs &t : mem.threads) {
        const u64 *regs = reinterpret_cast<const u64 *>(&t.regs);
        for (size_t i = 0; i < sizeof t.regs / 8; ++i) s.root_word(regs[i]);
    }
    for (const root_range &r : find_roots(mem, ix, inv)) s.root(r.start, r.end - r.start);
    s.finish();
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    std::map<std::pair<int, u64>, std::pair<u64, u64>> by;
    u64 totals[4][2] = {};
    for (size_t i = 0; i < inv.chunks.size(); ++i) {
        const uint8_t c = s.class_of(i);
        totals[c][0] += 1, totals[c][1] += inv.chunks[i].size;
        auto &e = by[{c, inv.chunks[i].site}];
        e.first += 1, e.second += inv.chunks[i].size;
    }
    printf("{\"milliseconds\": %.1f, \"root_bytes\": %" PRIu64 ", \"scanned_bytes\": %" PRIu64 ", \"threads\": %zu, \"totals\": {", ms,
           s.root_bytes(), s.scanned_bytes(), mem.threads.size());
    for (int c = 0; c < 4; ++c)
        printf("%s\"%s\": {\"chunks\": %" PRIu64 ", \"bytes\": %" PRIu64 "}", c ? ", " : "",
               mallochooks::heapindex::reach::class_key(uint8_t(c)), totals[c][0], totals[c][1]);
    printf("}, \"groups\": [");
    bool first = true;
    for (auto &[k, v] : by) {
        printf("%s\n{\"class\": \"%s\", \"site\": %" PRIu64 ", \"chunks\": %" PRIu64 ", \"bytes\": %" PRIu64 "}", first ? "" : ",",
               mallochooks::heapindex::reach::class_key(uint8_t(k.first)), k.second, v.first, v.second);
        first = false;
    }
    printf("], \"lost\": [");
    first = true;
    for (size_t i = 0; i < inv.chunks.size(); ++i) {
        const uint8_t c = s.class_of(i);
        if (c == mallochooks::heapindex::reach::reachable) continue;
        printf("%s\n{\"class\": \"%s\", \"base\": %" PRIu64 ", \"size\": %" PRIu64 ", \"site\": %" PRIu64 "}", first ? "" : ",",
               mallochooks::heapindex::reach::class_key(c), inv.chunks[i].base, inv.chunks[i].size, inv.chunks[i].site);
        first = false;
    }
    printf("]}\n");
}

u64 number(const char *s, const char *what) {
    char *end;
    errno = 0;
    const u64 v = strtoull(s, &end, 0);
    if (*s == '\0' || *end != '\0' || errno) fail("%s: '%s' is not a number", what, s);
    return v;
}

void usage() {
    fputs("usage: heapindex-inspect (--core FILE | --pid PID [--regs FILE]) --root ADDRESS COMMAND [ARGS]\n"
          "commands: info ADDR | list [--site S] [--thread T] [--min-size N] [--largest N] [--after-seq N] | sites |\n"
          "          stats | check | who-points-at ADDR [LEN] | leaks\n"
          "Output is JSON on stdout; errors go to stderr with exit status 2.\n",
          stderr);
    exit(2);
}

}  // namespace

int main(int argc, char **argv) {
    const char *core = nullptr, *regs = nullptr;
    int pid = 0;
    u64 root = 0;
    int i = 1;
    for (; i < argc && strncmp(argv[i], "--", 2) == 0; ++i) {
        const std::string a = argv[i];
        if (i + 1 >= argc) usage();
        if (a == "--core") core = argv[++i];
        else if (a == "--pid") pid = int(number(argv[++i], "--pid"));
        else if (a == "--regs") regs = argv[++i];
        else if (a == "--root") root = number(argv[++i], "--root");
        else usage();
    }
    if (i >= argc || (core == nullptr) == (pid == 0) || root == 0) usage();
    std::unique_ptr<memory> mem;
    if (core) mem = std::make_unique<core_memory>(core);
    else mem = std::make_unique<live_memory>(pid, regs);
    index_reader ix(*mem, root);
    for (const std::string &p : mem->problems) fprintf(stderr, "heapindex-inspect: warning: %s\n", p.c_str());
    const std::string cmd = argv[i++];
    if (cmd == "info") {
        if (i >= argc) usage();
        cmd_info(*mem, ix, number(argv[i], "address"));
        return 0;
    }
    inventory inv = take_inventory(ix);
    if (cmd == "list") {
        list_filter f;
        for (; i + 1 < argc; i += 2) {
            const std::string o = argv[i];
            const u64 v = number(argv[i + 1], o.c_str());
            if (o == "--site") f.site = v;
            else if (o == "--thread") f.tid = v;
            else if (o == "--min-size") f.min_size = v;
            else if (o == "--largest") f.largest = v;
            else if (o == "--after-seq") f.after_seq = v;
            else usage();
        }
        cmd_list(ix, inv, f);
    } else if (cmd == "sites") {
        cmd_sites(inv);
    } else if (cmd == "stats") {
        cmd_stats(*mem, ix, inv);
    } else if (cmd == "check") {
        cmd_check(*mem, ix, inv);
    } else if (cmd == "who-points-at") {
        if (i >= argc) usage();
        const u64 addr = number(argv[i], "address");
        cmd_who(*mem, ix, inv, addr, i + 1 < argc ? number(argv[i + 1], "length") : 0);
    } else if (cmd == "leaks") {
        cmd_leaks(*mem, ix, inv);
    } else {
        usage();
    }
    return 0;
}
