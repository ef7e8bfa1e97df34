// SPDX-License-Identifier: MIT
// The alias writer (see real_alias.h).  An object is copied section by section into a new ELF image with
// libelf, the symbol table and its string table (and extended section index table, if any) being the only
// sections whose contents grow; libelf lays the copy out.  Archives are parsed and written here (libelf
// reads members but writes no archives): members are copied byte for byte except the ones that get
// aliases, and the archive's symbol index keeps every entry it had, plus the new names.
#include "backends/wrapdl/real_alias.h"

#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <iterator>
#include <map>
#include <memory>
#include <optional>

#include "backends/family_names.h"

namespace mallochooks::wrapdl {

namespace {

constexpr size_t family_size = std::size(names::user_api);
using bytes = std::vector<char>;
using family_set = std::vector<bool>;  // indexed like names::user_api

// ---- files -------------------------------------------------------------------------------------------

bool read_file(const std::string &path, bytes &out, std::string &error) {
    FILE *f = fopen(path.c_str(), "rb");
    if (f == nullptr) {
        error = "cannot open " + path + ": " + strerror(errno);
        return false;
    }
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) out.insert(out.end(), buf, buf + n);
    const bool ok = !ferror(f);
    fclose(f);
    if (!ok) error = "cannot read " + path;
    return ok;
}

// Written next to the destination and renamed over it: a failed run leaves no half-written output for
// the next link to pick up.
bool write_file(const std::string &path, const bytes &data, std::string &error) {
    const std::string temporary = path + ".tmp";
    FILE *f = fopen(temporary.c_str(), "wb");
    if (f == nullptr) {
        error = "cannot create " + temporary + ": " + strerror(errno);
        return false;
    }
    const bool ok = fwrite(data.data(), 1, data.size(), f) == data.size() && fclose(f) == 0;
    if (!ok || rename(temporary.c_str(), path.c_str()) != 0) {
        error = "cannot write " + path + ": " + strerror(errno);
        unlink(temporary.c_str());
        return false;
    }
    return true;
}

// ---- ELF objects ---------------------------------------------------------------------------------------

struct elf_closer {
    void operator()(Elf *elf) const { elf_end(elf); }
};
using elf_ptr = std::unique_ptr<Elf, elf_closer>;

std::string libelf_error(const char *what) { return std::string(what) + ": " + elf_errmsg(-1); }

bool is_relocatable_object(Elf *elf) {
    GElf_Ehdr ehdr;
    return elf_kind(elf) == ELF_K_ELF && gelf_getehdr(elf, &ehdr) != nullptr && ehdr.e_type == ET_REL;
}

// One .symtab entry, with its name and its section index (an extended index already looked up).
struct symbol {
    GElf_Sym raw;
    Elf32_Word extended_section;  // the SHT_SYMTAB_SHNDX entry (meaningful when st_shndx is SHN_XINDEX)
    const char *name;

    unsigned binding() const { return GELF_ST_BIND(raw.st_info); }
    unsigned type() const { return GELF_ST_TYPE(raw.st_info); }
    bool is_definition() const { return raw.st_shndx != SHN_UNDEF && raw.st_shndx != SHN_COMMON; }
    bool is_global_or_weak() const { return binding() == STB_GLOBAL || binding() == STB_WEAK; }
    bool is_code() const { return type() == STT_FUNC || type() == STT_GNU_IFUNC || type() == STT_NOTYPE; }
    // A function definition other objects can bind to by this name.
    bool defines_function() const { return is_definition() && is_global_or_weak() && is_code(); }
    // A static (file-local) function.
    bool defines_local_function() const {
        return is_definition() && binding() == STB_LOCAL && (type() == STT_FUNC || type() == STT_GNU_IFUNC);
    }
};

// The symbol table of a relocatable object, with the sections that belong to it.
struct symbol_table {
    Elf_Scn *section = nullptr;          // SHT_SYMTAB
    Elf_Data *data = nullptr;
    size_t strtab_index = 0;             // its string table (sh_link)
    Elf_Scn *shndx_section = nullptr;    // SHT_SYMTAB_SHNDX for it, if the object has one
    Elf_Data *shndx_data = nullptr;
    size_t count = 0;

    static std::optional<symbol_table> of(Elf *elf) {
        symbol_table table;
        size_t symtab_index = 0;
        for (Elf_Scn *scn = nullptr; (scn = elf_nextscn(elf, scn)) != nullptr;) {
            GElf_Shdr shdr;
            if (gelf_getshdr(scn, &shdr) == nullptr || shdr.sh_type != SHT_SYMTAB) continue;
            table.section = scn;
            table.strtab_index = shdr.sh_link;
            symtab_index = elf_ndxscn(scn);
            table.data = elf_getdata(scn, nullptr);
            table.count = shdr.sh_entsize != 0 ? shdr.sh_size / shdr.sh_entsize : 0;
        }
        if (table.section == nullptr || table.data == nullptr) return std::nullopt;
        for (Elf_Scn *scn = nullptr; (scn = elf_nextscn(elf, scn)) != nullptr;) {
            GElf_Shdr shdr;
            if (gelf_getshdr(scn, &shdr) != nullptr && shdr.sh_type == SHT_SYMTAB_SHNDX && shdr.sh_link == symtab_index) {
                table.shndx_section = scn;
                table.shndx_data = elf_getdata(scn, nullptr);
            }
        }
        return table;
    }

    std::optional<symbol> at(Elf *elf, size_t index) const {
        symbol s{};
        if (gelf_getsymshndx(data, shndx_data, int(index), &s.raw, &s.extended_section) == nullptr) return std::nullopt;
        s.name = elf_strptr(elf, strtab_index, s.raw.st_name);
        if (s.name == nullptr) s.name = "";
        return s;
    }
};

// Which family functions an object defines.
family_set scan(Elf *elf, const symbol_table &table) {
    family_set defines(family_size);
    for (size_t i = 1; i < table.count; ++i) {
        const std::optional<symbol> s = table.at(elf, i);
        if (!s || !s->defines_function()) continue;
        const int index = names::user_api_index(s->name);
        if (index >= 0) defines[size_t(index)] = true;
    }
    return defines;
}

// The aliases to add to one object: for each request not yet met that names a function this object
// (`member`) defines, the symbol that defines it.  Fails when the object has a symbol of an alias's name
// already (an output of this tool: adding it again would define it twice).
struct planned_alias {
    std::string name;
    symbol original;
};

bool plan(Elf *elf, const symbol_table &table, const std::string &member, const std::vector<alias_spec> &requests,
          std::vector<bool> &met, std::vector<planned_alias> &aliases, std::string &error) {
    for (size_t i = 1; i < table.count; ++i) {
        const std::optional<symbol> s = table.at(elf, i);
        if (!s) continue;
        for (size_t k = 0; k < requests.size(); ++k) {
            const alias_spec &r = requests[k];
            if (s->is_definition() && r.alias == s->name) {
                error = std::string("it already has the symbol ") + s->name + " (is it an output of mallochooks-alias?)";
                return false;
            }
            if (met[k] || r.symbol != s->name || (!r.member.empty() && r.member != member)) continue;
            if (!(r.local ? s->defines_local_function() : s->defines_function())) continue;
            met[k] = true;
            aliases.push_back({r.alias, *s});
        }
    }
    return true;
}

// The copy of `image` with the planned aliases: every section, in order, with its header and data; the
// symbol table, its string table and its extended index table grow at their ends.
bool write_aliased(Elf *in, const symbol_table &table, const std::vector<planned_alias> &aliases, bytes &out,
                   std::string &error) {
    const int fd = memfd_create("mallochooks-alias", MFD_CLOEXEC);
    if (fd < 0) {
        error = std::string("memfd_create: ") + strerror(errno);
        return false;
    }
    struct fd_closer {
        int fd;
        ~fd_closer() { close(fd); }
    } closer{fd};
    elf_ptr copy(elf_begin(fd, ELF_C_WRITE, nullptr));
    GElf_Ehdr ehdr;
    if (copy == nullptr || gelf_getehdr(in, &ehdr) == nullptr || gelf_newehdr(copy.get(), gelf_getclass(in)) == nullptr) {
        error = libelf_error("cannot start the copy");
        return false;
    }

    // New contents of the three growing sections; they must outlive elf_update.
    const size_t symtab_index = elf_ndxscn(table.section);
    const size_t shndx_index = table.shndx_section != nullptr ? elf_ndxscn(table.shndx_section) : 0;
    Elf_Data *strtab_in = elf_getdata(elf_getscn(in, table.strtab_index), nullptr);
    if (strtab_in == nullptr) {
        error = libelf_error("cannot read the symbol string table");
        return false;
    }
    bytes strings(static_cast<char *>(strtab_in->d_buf), static_cast<char *>(strtab_in->d_buf) + strtab_in->d_size);
    const size_t entry_size = gelf_fsize(in, ELF_T_SYM, 1, EV_CURRENT);
    bytes symbols(static_cast<char *>(table.data->d_buf),
                  static_cast<char *>(table.data->d_buf) + table.data->d_size);
    symbols.resize(symbols.size() + aliases.size() * entry_size);
    std::vector<Elf32_Word> extended;
    if (table.shndx_data != nullptr) {
        const auto *words = static_cast<const Elf32_Word *>(table.shndx_data->d_buf);
        extended.assign(words, words + table.shndx_data->d_size / sizeof(Elf32_Word));
    }

    for (Elf_Scn *scn = nullptr; (scn = elf_nextscn(in, scn)) != nullptr;) {
        Elf_Scn *target = elf_newscn(copy.get());
        GElf_Shdr shdr;
        if (target == nullptr || gelf_getshdr(scn, &shdr) == nullptr) {
            error = libelf_error("cannot copy a section");
            return false;
        }
        for (Elf_Data *data = nullptr; (data = elf_getdata(scn, data)) != nullptr;) {
            Elf_Data *copied = elf_newdata(target);
            if (copied == nullptr) {
                error = libelf_error("cannot copy section data");
                return false;
            }
            *copied = *data;
            const size_t index = elf_ndxscn(scn);
            if (index == symtab_index) {
                copied->d_buf = symbols.data();
                copied->d_size = symbols.size();
            } else if (index == table.strtab_index) {
                copied->d_buf = nullptr;  // set below, once every name is in
            } else if (shndx_index != 0 && index == shndx_index) {
                copied->d_buf = nullptr;
            }
        }
        if (gelf_update_shdr(target, &shdr) == 0) {
            error = libelf_error("cannot copy a section header");
            return false;
        }
    }

    // The aliases: same section, value, size and type as the original, its binding (a weak malloc keeps a
    // weak alias, so two such objects still link) or global for a static function (the alias must be
    // seen by the output's other objects, and globals follow every local in the table), hidden so that
    // nothing outside the output sees them.
    Elf_Data *symbols_out = elf_getdata(elf_getscn(copy.get(), symtab_index), nullptr);
    size_t next = table.count;
    for (const planned_alias &alias : aliases) {
        GElf_Sym sym = alias.original.raw;
        sym.st_name = Elf32_Word(strings.size());
        strings.insert(strings.end(), alias.name.begin(), alias.name.end());
        strings.push_back('\0');
        sym.st_other = (sym.st_other & ~0x3) | STV_HIDDEN;
        if (alias.original.binding() == STB_LOCAL) sym.st_info = GELF_ST_INFO(STB_GLOBAL, alias.original.type());
        if (gelf_update_sym(symbols_out, int(next++), &sym) == 0) {
            error = libelf_error("cannot write an alias");
            return false;
        }
        if (table.shndx_data != nullptr)
            extended.push_back(alias.original.raw.st_shndx == SHN_XINDEX ? alias.original.extended_section : 0);
    }
    Elf_Data *strings_out = elf_getdata(elf_getscn(copy.get(), table.strtab_index), nullptr);
    strings_out->d_buf = strings.data();
    strings_out->d_size = strings.size();
    if (shndx_index != 0) {
        Elf_Data *extended_out = elf_getdata(elf_getscn(copy.get(), shndx_index), nullptr);
        extended_out->d_buf = extended.data();
        extended_out->d_size = extended.size() * sizeof(Elf32_Word);
    }

    // Section zero carries the real section count and string-table index when they overflow the header.
    GElf_Shdr zero;
    if (gelf_getshdr(elf_getscn(in, 0), &zero) != nullptr) gelf_update_shdr(elf_getscn(copy.get(), 0), &zero);
    if (gelf_update_ehdr(copy.get(), &ehdr) == 0) {
        error = libelf_error("cannot write the ELF header");
        return false;
    }
    const off_t size = elf_update(copy.get(), ELF_C_WRITE);
    if (size < 0) {
        error = libelf_error("cannot write the copy");
        return false;
    }
    out.resize(size_t(size));
    if (pread(fd, out.data(), out.size(), 0) != ssize_t(out.size())) {
        error = "cannot read the copy back";
        return false;
    }
    return true;
}

// One object (`member` of an archive, or ""): scan it, and (when `out` is given) write its copy with the
// aliases it is asked for.  `found` accumulates the family functions it defines, `met` the requests it
// satisfied; `added` receives the alias names it got.
struct object_job {
    const std::vector<alias_spec> *requests;
    std::vector<bool> *met;
};

bool process_object(bytes &image, const std::string &what, const std::string &member, family_set &found, bytes *out,
                    const object_job &job, std::vector<std::string> *added, std::string &error) {
    elf_ptr elf(elf_memory(image.data(), image.size()));
    if (elf == nullptr || !is_relocatable_object(elf.get())) {
        error = what + " is not an ELF relocatable object";
        return false;
    }
    const std::optional<symbol_table> table = symbol_table::of(elf.get());
    if (!table) return true;  // no symbols: defines nothing
    const family_set defines = scan(elf.get(), *table);
    for (size_t i = 0; i < family_size; ++i) found[i] = found[i] || defines[i];
    if (out == nullptr) return true;
    std::vector<planned_alias> aliases;
    if (!plan(elf.get(), *table, member, *job.requests, *job.met, aliases, error)) {
        error = what + ": " + error;
        return false;
    }
    if (aliases.empty()) return true;
    if (!write_aliased(elf.get(), *table, aliases, *out, error)) {
        error = what + ": " + error;
        return false;
    }
    for (const planned_alias &alias : aliases) added->push_back(alias.name);
    return true;
}

// ---- archives ------------------------------------------------------------------------------------------

constexpr char archive_magic[] = "!<arch>\n";
constexpr char thin_archive_magic[] = "!<thin>\n";  // members stay in their own files (meson makes these)
constexpr size_t header_size = 60;

struct member {
    std::string name;
    std::string fields;  // date, uid, gid and mode, 32 characters, copied as they were
    bytes data;
    std::vector<std::string> index_names;  // its entries in the archive's symbol index
};

uint32_t read_be32(const char *p) {
    const auto *u = reinterpret_cast<const unsigned char *>(p);
    return uint32_t(u[0]) << 24 | uint32_t(u[1]) << 16 | uint32_t(u[2]) << 8 | u[3];
}

void append_be32(bytes &out, uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(char(v >> shift & 0xff));
}

std::string trimmed(const char *p, size_t n) {
    std::string s(p, n);
    s.erase(s.find_last_not_of(' ') + 1);
    return s;
}

// The GNU/SysV format: 60-byte headers; "/" is the symbol index (big-endian count, member offsets, then
// the names), "//" holds names longer than 15 characters, referred to as "/offset".  A thin archive has
// the same headers but no member data: each name is the member's path, relative to the archive's folder.
bool parse_archive(const std::string &path, const bytes &file, bool thin, std::vector<member> &members,
                   bool &has_index, std::string &error) {
    const size_t slash = path.rfind('/');
    const std::string folder = slash == std::string::npos ? "" : path.substr(0, slash + 1);
    std::string long_names;
    std::map<uint32_t, std::vector<std::string>> index;  // member header offset -> names
    std::map<uint32_t, size_t> member_at;
    has_index = false;
    size_t pos = sizeof archive_magic - 1;
    while (pos + header_size <= file.size()) {
        const char *h = file.data() + pos;
        if (h[58] != '`' || h[59] != '\n') {
            error = "malformed archive member header at offset " + std::to_string(pos);
            return false;
        }
        const size_t size = strtoul(trimmed(h + 48, 10).c_str(), nullptr, 10);
        const std::string name = trimmed(h, 16);
        const bool special = name == "/" || name == "//" || name == "/SYM64/";
        const size_t stored = thin && !special ? 0 : size;  // bytes of data inside the archive itself
        if (pos + header_size + stored > file.size()) {
            error = "truncated archive";
            return false;
        }
        const char *data = h + header_size;
        if (name == "/") {
            has_index = true;
            if (size < 4) return error = "malformed archive index", false;
            const uint32_t count = read_be32(data);
            if (4 + size_t(count) * 4 > size) return error = "malformed archive index", false;
            const char *strings = data + 4 + size_t(count) * 4, *end = data + size;
            for (uint32_t i = 0; i < count && strings < end; ++i) {
                const size_t length = strnlen(strings, size_t(end - strings));
                index[read_be32(data + 4 + i * 4)].emplace_back(strings, length);
                strings += length + 1;
            }
        } else if (name == "/SYM64/") {
            error = "archives with a 64-bit symbol index are not supported";
            return false;
        } else if (name == "//") {
            long_names.assign(data, size);
        } else if (name.compare(0, 3, "#1/") == 0) {
            error = "BSD archives are not supported";
            return false;
        } else {
            member m;
            if (name.size() > 1 && name[0] == '/') {
                const size_t offset = strtoul(name.c_str() + 1, nullptr, 10);
                const size_t end = long_names.find("/\n", offset);
                if (offset >= long_names.size() || end == std::string::npos)
                    return error = "malformed archive member name " + name, false;
                m.name = long_names.substr(offset, end - offset);
            } else {
                m.name = !name.empty() && name.back() == '/' ? name.substr(0, name.size() - 1) : name;
            }
            m.fields.assign(h + 16, 32);
            if (thin) {
                const std::string file_path = m.name[0] == '/' ? m.name : folder + m.name;
                if (!read_file(file_path, m.data, error)) return false;
                const size_t base = m.name.rfind('/');  // the copy is a normal archive: members by name
                if (base != std::string::npos) m.name = m.name.substr(base + 1);
            } else {
                m.data.assign(data, data + size);
            }
            member_at[uint32_t(pos)] = members.size();
            members.push_back(std::move(m));
        }
        pos += header_size + stored + (stored & 1);
    }
    for (auto &[offset, names] : index) {
        const auto found = member_at.find(offset);
        if (found == member_at.end()) return error = "archive index points at no member", false;
        members[found->second].index_names = std::move(names);
    }
    return true;
}

void append_header(bytes &out, const std::string &name, const std::string &fields, size_t size) {
    char header[header_size + 1];
    snprintf(header, sizeof header, "%-16s%-32s%-10zu`\n", name.c_str(), fields.c_str(), size);
    out.insert(out.end(), header, header + header_size);
}

bytes write_archive(const std::vector<member> &members, bool with_index) {
    // Names: "name/" when it fits in the 16-character field, else "/offset" into the long-name member.
    std::string long_names;
    std::vector<std::string> header_names;
    for (const member &m : members) {
        if (m.name.size() <= 15) {
            header_names.push_back(m.name + "/");
        } else {
            header_names.push_back("/" + std::to_string(long_names.size()));
            long_names += m.name + "/\n";
        }
    }
    bytes index_strings;
    uint32_t index_count = 0;
    for (const member &m : members)
        for (const std::string &name : m.index_names) {
            index_strings.insert(index_strings.end(), name.begin(), name.end());
            index_strings.push_back('\0');
            ++index_count;
        }
    if (index_strings.size() % 2 != 0) index_strings.push_back('\0');
    const size_t index_size = with_index ? 4 + size_t(index_count) * 4 + index_strings.size() : 0;
    auto padded = [](size_t size) { return size + (size & 1); };

    // Where each member's header lands, now that the sizes before it are known.
    size_t pos = sizeof archive_magic - 1;
    if (with_index) pos += header_size + padded(index_size);
    if (!long_names.empty()) pos += header_size + padded(long_names.size());
    std::vector<uint32_t> offsets;
    for (const member &m : members) {
        offsets.push_back(uint32_t(pos));
        pos += header_size + padded(m.data.size());
    }

    bytes out(archive_magic, archive_magic + sizeof archive_magic - 1);
    if (with_index) {
        append_header(out, "/", "0           0     0     0       ", index_size);
        append_be32(out, index_count);
        for (size_t i = 0; i < members.size(); ++i)
            for (size_t k = 0; k < members[i].index_names.size(); ++k) append_be32(out, offsets[i]);
        out.insert(out.end(), index_strings.begin(), index_strings.end());
    }
    if (!long_names.empty()) {
        append_header(out, "//", "", long_names.size());
        out.insert(out.end(), long_names.begin(), long_names.end());
        if (long_names.size() % 2 != 0) out.push_back('\n');
    }
    for (size_t i = 0; i < members.size(); ++i) {
        append_header(out, header_names[i], members[i].fields, members[i].data.size());
        out.insert(out.end(), members[i].data.begin(), members[i].data.end());
        if (members[i].data.size() % 2 != 0) out.push_back('\n');
    }
    return out;
}

bool starts_with(const bytes &file, const char *magic) {
    const size_t n = strlen(magic);
    return file.size() >= n && memcmp(file.data(), magic, n) == 0;
}

bool is_elf(const bytes &data) { return data.size() >= 4 && memcmp(data.data(), ELFMAG, SELFMAG) == 0; }

std::vector<std::string> names_of(const family_set &set) {
    std::vector<std::string> names;
    for (size_t i = 0; i < family_size; ++i)
        if (set[i]) names.emplace_back(names::user_api[i]);
    return names;
}

// Scans (out == nullptr) or aliases `input` as `requests` ask.
alias_result process(const std::string &input, bytes *out, const std::vector<alias_spec> &requests = {}) {
    elf_version(EV_CURRENT);
    alias_result result;
    std::vector<bool> met(requests.size());
    const object_job job{&requests, &met};
    bytes file;
    if (!read_file(input, file, result.error)) return result;
    family_set found(family_size);
    const bool thin = starts_with(file, thin_archive_magic);
    if (thin || starts_with(file, archive_magic)) {
        std::vector<member> members;
        bool has_index = false;
        if (!parse_archive(input, file, thin, members, has_index, result.error)) {
            result.error = input + ": " + result.error;
            return result;
        }
        for (member &m : members) {
            if (!is_elf(m.data)) continue;  // LTO bitcode and the like: copied as they are
            bytes copy;
            std::vector<std::string> added;
            if (!process_object(m.data, input + "(" + m.name + ")", m.name, found, out ? &copy : nullptr, job, &added,
                                result.error))
                return result;
            if (!copy.empty()) {
                m.data = std::move(copy);
                m.index_names.insert(m.index_names.end(), added.begin(), added.end());
            }
        }
        if (out != nullptr) *out = write_archive(members, has_index);
    } else if (is_elf(file)) {
        bytes copy;
        std::vector<std::string> added;
        if (!process_object(file, input, "", found, out ? &copy : nullptr, job, &added, result.error)) return result;
        if (out != nullptr) *out = copy.empty() ? file : std::move(copy);
    } else {
        result.error = input + " is neither an ELF object nor an archive";
        return result;
    }
    result.defined = names_of(found);
    for (size_t k = 0; k < requests.size(); ++k)
        if (!met[k]) result.missing.push_back(requests[k]);
    return result;
}

}  // namespace

std::vector<alias_spec> family_aliases(const std::vector<std::string> &defined) {
    std::vector<alias_spec> specs;
    for (const std::string &name : defined) specs.push_back({name, names::wrapdl_real_prefix + name, false, ""});
    return specs;
}

alias_result defined_family_functions(const std::string &path) { return process(path, nullptr); }

alias_result write_aliases(const std::string &input, const std::string &output, const std::vector<alias_spec> &aliases) {
    bytes copy;
    alias_result result = process(input, &copy, aliases);
    if (result.error.empty()) write_file(output, copy, result.error);
    return result;
}

alias_result write_real_aliases(const std::string &input, const std::string &output) {
    alias_result found = defined_family_functions(input);
    if (!found.error.empty()) return found;
    if (found.defined.empty()) {
        found.error = input + " defines no function of the malloc family: link it with the wrap backend";
        return found;
    }
    return write_aliases(input, output, family_aliases(found.defined));
}

}  // namespace mallochooks::wrapdl
