// SPDX-License-Identifier: MIT
// Reads calls and address-taken functions of one object (see code_refs.h).
//
// A relocation is a call when it is the displacement of `call`/`jmp rel32` (E8/E9 before it) or of
// `call`/`jmp *X@GOTPCREL(%rip)` (FF 15/FF 25, -fno-plt); any other reference to a function (a pointer in
// data, `lea f(%rip)`, a GOT load) takes its address.  A reference through a section symbol (how the
// assembler writes references to local functions) names the function that starts at the section offset
// it points to.  Calls between local functions of one section carry no relocation: a `call rel32` whose
// target is the start of a function of the same section counts (the bytes of an immediate could look like
// one, but would then also have to land exactly on a function's start).
#include "compilerwrapper/code_refs.h"

#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>

#include "compilerwrapper/elf_file.h"

namespace mallochooks::allocscc {

namespace {

struct fd_closer {
    int fd;
    ~fd_closer() { if (fd >= 0) close(fd); }
};

struct elf_closer {
    Elf *elf;
    ~elf_closer() { if (elf != nullptr) elf_end(elf); }
};

[[noreturn]] void fail(const std::string &what) { throw elf_error(what + ": " + elf_errmsg(-1)); }

struct section_info {
    GElf_Shdr shdr{};
    const unsigned char *bytes = nullptr;  // executable sections' contents
    std::size_t size = 0;
    std::set<std::uint64_t> relocated;     // offsets of relocated fields (not call instructions of their own)
};

std::vector<code_function> read_elf_refs(Elf *elf, const std::string &name) {
    GElf_Ehdr ehdr;
    if (gelf_getehdr(elf, &ehdr) == nullptr) fail(name);
    if (ehdr.e_type != ET_REL || ehdr.e_machine != EM_X86_64) return {};
    std::size_t count = 0;
    if (elf_getshdrnum(elf, &count) != 0) fail(name);
    std::vector<section_info> sections(count);
    std::vector<Elf_Scn *> relas;
    Elf_Scn *symtab = nullptr;
    for (Elf_Scn *scn = elf_nextscn(elf, nullptr); scn != nullptr; scn = elf_nextscn(elf, scn)) {
        section_info &s = sections[elf_ndxscn(scn)];
        if (gelf_getshdr(scn, &s.shdr) == nullptr) fail(name);
        if (s.shdr.sh_type == SHT_SYMTAB) symtab = scn;
        if (s.shdr.sh_type == SHT_RELA) relas.push_back(scn);
        if (s.shdr.sh_type == SHT_PROGBITS && (s.shdr.sh_flags & SHF_EXECINSTR) != 0) {
            Elf_Data *data = elf_getdata(scn, nullptr);
            if (data != nullptr && data->d_buf != nullptr) {
                s.bytes = static_cast<const unsigned char *>(data->d_buf);
                s.size = data->d_size;
            }
        }
    }
    if (symtab == nullptr) return {};

    // The symbols, and the functions with where they start.
    GElf_Shdr symhdr;
    gelf_getshdr(symtab, &symhdr);
    Elf_Data *symdata = elf_getdata(symtab, nullptr);
    const std::size_t nsyms = symhdr.sh_entsize != 0 ? symhdr.sh_size / symhdr.sh_entsize : 0;
    std::vector<GElf_Sym> syms(nsyms);
    std::vector<std::string> names(nsyms);
    std::vector<code_function> functions;
    struct place {
        std::size_t function;
        std::uint64_t begin, end;
    };
    std::map<std::size_t, std::vector<place>> by_section;
    for (std::size_t i = 0; i < nsyms; ++i) {
        if (gelf_getsym(symdata, static_cast<int>(i), &syms[i]) == nullptr) fail(name);
        const char *n = elf_strptr(elf, symhdr.sh_link, syms[i].st_name);
        names[i] = n != nullptr ? n : "";
        const GElf_Sym &s = syms[i];
        if (GELF_ST_TYPE(s.st_info) != STT_FUNC || s.st_shndx == SHN_UNDEF || s.st_shndx >= count || names[i].empty())
            continue;
        by_section[s.st_shndx].push_back({functions.size(), s.st_value, s.st_value + s.st_size});
        functions.push_back({names[i], GELF_ST_BIND(s.st_info) == STB_LOCAL, {}, false});
    }
    auto function_at = [&](std::size_t section, std::uint64_t offset, bool start) -> const place * {
        auto it = by_section.find(section);
        if (it == by_section.end()) return nullptr;
        for (const place &p : it->second)
            if (start ? offset == p.begin : (offset >= p.begin && offset < p.end)) return &p;
        return nullptr;
    };

    for (Elf_Scn *scn : relas) {
        GElf_Shdr rhdr;
        gelf_getshdr(scn, &rhdr);
        if (rhdr.sh_info >= count || rhdr.sh_link != elf_ndxscn(symtab)) continue;
        section_info &target = sections[rhdr.sh_info];
        Elf_Data *data = elf_getdata(scn, nullptr);
        const std::size_t n = rhdr.sh_entsize != 0 ? rhdr.sh_size / rhdr.sh_entsize : 0;
        for (std::size_t i = 0; i < n; ++i) {
            GElf_Rela r;
            if (gelf_getrela(data, static_cast<int>(i), &r) == nullptr) fail(name);
            const std::size_t symidx = GELF_R_SYM(r.r_info);
            const unsigned type = GELF_R_TYPE(r.r_info);
            if (symidx >= nsyms) continue;
            target.relocated.insert(r.r_offset);
            const bool pc_relative = type == R_X86_64_PC32 || type == R_X86_64_PLT32 || type == R_X86_64_GOTPCREL ||
                                     type == R_X86_64_GOTPCRELX || type == R_X86_64_REX_GOTPCRELX;
            // What it refers to: a named symbol, or the function at a section offset.
            const GElf_Sym &s = syms[symidx];
            std::string referred = names[symidx];
            if (GELF_ST_TYPE(s.st_info) == STT_SECTION) {
                const std::int64_t at = r.r_addend + (pc_relative ? 4 : 0);
                const place *p = at >= 0 ? function_at(s.st_shndx, static_cast<std::uint64_t>(at), true) : nullptr;
                referred = p != nullptr ? functions[p->function].name : "";
            }
            if (referred.empty()) continue;
            const unsigned char *b = target.bytes;
            const std::uint64_t o = r.r_offset;
            const bool call = b != nullptr && o >= 1 && o <= target.size &&
                              (((type == R_X86_64_PLT32 || type == R_X86_64_PC32) && (b[o - 1] == 0xe8 || b[o - 1] == 0xe9)) ||
                               ((type == R_X86_64_GOTPCRELX || type == R_X86_64_GOTPCREL) && o >= 2 && b[o - 2] == 0xff &&
                                (b[o - 1] == 0x15 || b[o - 1] == 0x25)));
            if (call) {
                if (const place *caller = function_at(rhdr.sh_info, o, false)) functions[caller->function].calls.insert(referred);
                continue;
            }
            for (code_function &f : functions)
                if (f.name == referred) f.address_taken = true;
        }
    }
    // Calls between local functions of one section: no relocation.
    for (const auto &[section, places] : by_section) {
        const section_info &s = sections[section];
        if (s.bytes == nullptr) continue;
        for (const place &p : places) {
            for (std::uint64_t i = p.begin; i + 5 <= p.end && i + 5 <= s.size; ++i) {
                if ((s.bytes[i] != 0xe8 && s.bytes[i] != 0xe9) || s.relocated.count(i + 1) != 0) continue;
                std::int32_t rel;
                std::memcpy(&rel, s.bytes + i + 1, 4);
                const std::int64_t to = static_cast<std::int64_t>(i) + 5 + rel;
                const place *callee = to >= 0 ? function_at(section, static_cast<std::uint64_t>(to), true) : nullptr;
                if (callee != nullptr && callee != &p) functions[p.function].calls.insert(functions[callee->function].name);
            }
        }
    }
    return functions;
}

}  // namespace

std::vector<code_function> read_code_refs(const std::string &path, const std::string &member) {
    if (elf_version(EV_CURRENT) == EV_NONE) throw elf_error("libelf is out of date");
    fd_closer fd{open(path.c_str(), O_RDONLY | O_CLOEXEC)};
    if (fd.fd < 0) throw elf_error(path + ": " + std::strerror(errno));
    if (!member.empty()) {
        char magic[8] = {};
        if (pread(fd.fd, magic, sizeof magic, 0) == 8 && std::memcmp(magic, "!<thin>\n", 8) == 0) {
            // A thin archive's member is a file of its own, named relative to the archive.
            const std::string dir = path.find('/') == std::string::npos ? "." : path.substr(0, path.rfind('/'));
            return read_code_refs(member[0] == '/' ? member : dir + "/" + member, "");
        }
    }
    elf_closer top{elf_begin(fd.fd, ELF_C_READ_MMAP, nullptr)};
    if (top.elf == nullptr) fail(path);
    if (member.empty()) return elf_kind(top.elf) == ELF_K_ELF ? read_elf_refs(top.elf, path) : std::vector<code_function>{};
    Elf_Cmd cmd = ELF_C_READ_MMAP;
    for (Elf *m = elf_begin(fd.fd, cmd, top.elf); m != nullptr; m = elf_begin(fd.fd, cmd, top.elf)) {
        elf_closer closer{m};
        Elf_Arhdr *hdr = elf_getarhdr(m);
        if (hdr != nullptr && hdr->ar_name != nullptr && member == hdr->ar_name && elf_kind(m) == ELF_K_ELF)
            return read_elf_refs(m, path + "(" + member + ")");
        cmd = elf_next(m);
    }
    return {};
}

}  // namespace mallochooks::allocscc
