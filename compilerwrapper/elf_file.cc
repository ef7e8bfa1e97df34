// SPDX-License-Identifier: MIT
// libelf readers behind the views of elf_file.h.  libelf gives class-independent access through GElf;
// archives are walked member by member with elf_next, and a member that is not ELF (LLVM bitcode in a
// thin-LTO archive) is classified from its raw bytes.
#include "compilerwrapper/elf_file.h"

#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <sstream>

namespace mallochooks::allocscc {

const char *to_string(file_kind kind) {
    switch (kind) {
    case file_kind::relocatable: return "object";
    case file_kind::shared: return "shared library";
    case file_kind::executable: return "executable";
    case file_kind::archive: return "archive";
    case file_kind::linker_script: return "linker script";
    case file_kind::gcc_lto: return "GCC LTO object";
    case file_kind::llvm_bitcode: return "LLVM bitcode";
    case file_kind::other: return "unknown file";
    }
    return "?";
}

bool elf_symbol::is_undefined() const { return section == SHN_UNDEF; }
bool elf_symbol::is_local() const { return binding == STB_LOCAL; }
bool elf_symbol::is_global() const { return binding == STB_GLOBAL || binding == STB_WEAK || binding == STB_GNU_UNIQUE; }
bool elf_symbol::is_weak() const { return binding == STB_WEAK; }
bool elf_symbol::is_function() const { return type == STT_FUNC || type == STT_GNU_IFUNC; }
bool elf_symbol::is_common() const { return section == SHN_COMMON; }

file_kind sniff(const unsigned char *data, std::size_t size) {
    if (size >= 4 && std::memcmp(data, ELFMAG, SELFMAG) == 0) return file_kind::other;  // refined by libelf
    if (size >= 8 && std::memcmp(data, "!<arch>\n", 8) == 0) return file_kind::archive;
    if (size >= 8 && std::memcmp(data, "!<thin>\n", 8) == 0) return file_kind::archive;
    if (size >= 4 && data[0] == 'B' && data[1] == 'C' && data[2] == 0xC0 && data[3] == 0xDE) return file_kind::llvm_bitcode;
    if (size >= 4 && data[0] == 0xDE && data[1] == 0xC0 && data[2] == 0x17 && data[3] == 0x0B) return file_kind::llvm_bitcode;
    // A linker script is text: GROUP, INPUT, OUTPUT_FORMAT, comments...
    std::size_t n = size < 512 ? size : 512;
    for (std::size_t i = 0; i < n; ++i)
        if (data[i] == 0 || (data[i] < 32 && data[i] != '\n' && data[i] != '\t' && data[i] != '\r')) return file_kind::other;
    return size > 0 ? file_kind::linker_script : file_kind::other;
}

namespace {

struct elf_handle {
    Elf *elf;
    explicit elf_handle(Elf *e) : elf(e) {}
    ~elf_handle() { if (elf != nullptr) elf_end(elf); }
    elf_handle(const elf_handle &) = delete;
    elf_handle &operator=(const elf_handle &) = delete;
};

struct fd_handle {
    int fd;
    ~fd_handle() { if (fd >= 0) close(fd); }
};

[[noreturn]] void fail(const std::string &what) { throw elf_error(what + ": " + elf_errmsg(-1)); }

// Reads the symbols of one ELF (a file or a member) into `unit`, and decides its kind.
void read_elf(Elf *elf, elf_unit &unit) {
    GElf_Ehdr ehdr;
    if (gelf_getehdr(elf, &ehdr) == nullptr) fail(unit.name);
    unit.kind = ehdr.e_type == ET_REL ? file_kind::relocatable
              : ehdr.e_type == ET_DYN ? file_kind::shared
              : ehdr.e_type == ET_EXEC ? file_kind::executable
                                       : file_kind::other;
    std::size_t shstrndx;
    if (elf_getshdrstrndx(elf, &shstrndx) != 0) fail(unit.name);
    const Elf64_Word wanted = unit.kind == file_kind::relocatable ? SHT_SYMTAB : SHT_DYNSYM;
    for (Elf_Scn *scn = elf_nextscn(elf, nullptr); scn != nullptr; scn = elf_nextscn(elf, scn)) {
        GElf_Shdr shdr;
        if (gelf_getshdr(scn, &shdr) == nullptr) fail(unit.name);
        const char *sname = elf_strptr(elf, shstrndx, shdr.sh_name);
        // GCC LTO IR: slim objects carry only .gnu.lto_* sections (and __gnu_lto_slim); fat ones carry
        // both, and with -flto on the link line the plugin uses the IR, so both count as LTO.
        if (sname != nullptr && std::strncmp(sname, ".gnu.lto_", 9) == 0 && unit.kind == file_kind::relocatable)
            unit.kind = file_kind::gcc_lto;
        if (shdr.sh_type != wanted) continue;
        Elf_Data *data = elf_getdata(scn, nullptr);
        if (data == nullptr) continue;
        const std::size_t count = shdr.sh_entsize != 0 ? shdr.sh_size / shdr.sh_entsize : 0;
        for (std::size_t i = 1; i < count; ++i) {
            GElf_Sym sym;
            if (gelf_getsym(data, static_cast<int>(i), &sym) == nullptr) fail(unit.name);
            unsigned char type = GELF_ST_TYPE(sym.st_info);
            if (type == STT_SECTION || type == STT_FILE) continue;
            const char *name = elf_strptr(elf, shdr.sh_link, sym.st_name);
            if (name == nullptr || *name == '\0') continue;
            elf_symbol s;
            s.name = name;
            s.binding = GELF_ST_BIND(sym.st_info);
            s.type = type;
            s.visibility = GELF_ST_VISIBILITY(sym.st_other);
            s.section = sym.st_shndx;
            s.value = sym.st_value;
            s.size = sym.st_size;
            unit.symbols.push_back(std::move(s));
        }
    }
    for (const elf_symbol &s : unit.symbols)
        if (s.name == "__gnu_lto_slim" || s.name == "__gnu_lto_v1") unit.kind = file_kind::gcc_lto;
}

}  // namespace

namespace {

// A thin archive (`ar rcT`) holds only its index and the names of its members, which are files of their
// own, named relative to the archive's directory; libelf does not read them, so the headers are read here
// and each member file is read as a unit of the archive.
void read_thin_archive(const std::string &path, link_file &file) {
    std::ifstream in(path, std::ios::binary);
    std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const std::string dir = path.find('/') == std::string::npos ? "." : path.substr(0, path.rfind('/'));
    std::string long_names;
    for (std::size_t at = 8; at + 60 <= data.size();) {
        std::string name = data.substr(at, 16);
        const std::size_t size = std::strtoul(data.substr(at + 48, 10).c_str(), nullptr, 10);
        at += 60;
        name.erase(name.find_last_not_of(' ') + 1);
        if (name == "/" || name == "/SYM64/") {  // the index: its data is in the archive
            at += size + (size & 1);
            continue;
        }
        if (name == "//") {  // the long names: in the archive too
            long_names = data.substr(at, size);
            at += size + (size & 1);
            continue;
        }
        if (name.size() > 1 && name[0] == '/') {  // "/offset" into the long names, ended by "/\n"
            const std::size_t off = std::strtoul(name.c_str() + 1, nullptr, 10);
            name = long_names.substr(off, long_names.find("/\n", off) - off);
        } else if (!name.empty() && name.back() == '/') {
            name.pop_back();
        }
        // Members' data is not in a thin archive: nothing to skip.
        const std::string member_path = !name.empty() && name[0] == '/' ? name : dir + "/" + name;
        link_file member = read_link_file(member_path);
        for (elf_unit &u : member.units) {
            u.name = path + "(" + name + ")";
            u.member = name;
            file.units.push_back(std::move(u));
        }
    }
}

}  // namespace

link_file read_link_file(const std::string &path) {
    static const bool initialised = elf_version(EV_CURRENT) != EV_NONE;
    if (!initialised) throw elf_error("libelf is out of date");

    fd_handle fd{open(path.c_str(), O_RDONLY | O_CLOEXEC)};
    if (fd.fd < 0) throw elf_error(path + ": " + std::strerror(errno));
    link_file file;
    file.path = path;
    unsigned char head[512];
    ssize_t got = pread(fd.fd, head, sizeof head, 0);
    file.kind = sniff(head, got > 0 ? static_cast<std::size_t>(got) : 0);
    if (file.kind == file_kind::linker_script) {
        std::ifstream in(path);
        std::ostringstream s;
        s << in.rdbuf();
        file.script = s.str();
        return file;
    }
    if (file.kind == file_kind::archive && got >= 8 && std::memcmp(head, "!<thin>\n", 8) == 0) {
        read_thin_archive(path, file);
        return file;
    }
    if (file.kind == file_kind::llvm_bitcode) {
        file.units.push_back({path, "", file_kind::llvm_bitcode, {}});
        return file;
    }

    elf_handle top(elf_begin(fd.fd, ELF_C_READ_MMAP, nullptr));
    if (top.elf == nullptr) fail(path);
    if (elf_kind(top.elf) == ELF_K_ELF) {
        elf_unit unit{path, "", file_kind::other, {}};
        read_elf(top.elf, unit);
        file.kind = unit.kind;
        file.units.push_back(std::move(unit));
        return file;
    }
    if (elf_kind(top.elf) != ELF_K_AR) return file;
    file.kind = file_kind::archive;
    Elf_Cmd cmd = ELF_C_READ_MMAP;
    for (Elf *m = elf_begin(fd.fd, cmd, top.elf); m != nullptr; m = elf_begin(fd.fd, cmd, top.elf)) {
        elf_handle member(m);
        // The header belongs to the archive's cursor, which elf_next moves on: copy the name first.
        Elf_Arhdr *hdr = elf_getarhdr(m);
        if (hdr == nullptr) fail(path);
        std::string name = hdr->ar_name != nullptr ? hdr->ar_name : "";
        if (name == "/" || name == "//" || name == "/SYM64/") {  // the symbol index, long names
            cmd = elf_next(m);
            continue;
        }
        elf_unit unit{path + "(" + name + ")", name, file_kind::other, {}};
        if (elf_kind(m) == ELF_K_ELF) {
            read_elf(m, unit);
        } else {
            std::size_t size = 0;
            const char *raw = elf_rawfile(m, &size);
            if (raw != nullptr) unit.kind = sniff(reinterpret_cast<const unsigned char *>(raw), size);
            if (unit.kind == file_kind::linker_script) unit.kind = file_kind::other;
        }
        file.units.push_back(std::move(unit));
        cmd = elf_next(m);
    }
    return file;
}

}  // namespace mallochooks::allocscc
