// SPDX-License-Identifier: MIT
// Writes the shim object (see shim_object.h) with libelf.  Layout, for each declared function S:
//
//     .text         S's thunk, 16 or 32 bytes:   4c 8b 1d <rel32>    movq REAL@GOTPCREL(%rip), %r11
//                                                [41 ba <imm32>]     movl $PLAN, %r10d   (suballocators)
//                                                e9 <rel32>          jmp  TRAMPOLINE
//                                                cc...               padding
//     .rela.text    R_X86_64_REX_GOTPCRELX REAL - 4, R_X86_64_PLT32 TRAMPOLINE - 4
//
// The GOT load lets REAL live anywhere (in a shared library, for --wrap); the linker relaxes it to a lea
// when REAL is in the output.  The table, when there are static functions, is .data.rel.ro: begin/end
// pairs written as R_X86_64_64 relocations against the aliases (addend 0 and the size), then a null pair.
// No .eh_frame: a thunk never calls, so no thunk frame is ever on the stack when something unwinds.
// .tbss holds the allocation site's weak definition, as the C shims have it (mallochooks/alloc_site.h): a
// reference from the program's own files must not pull some member of libmallochooks.a for it.
#include "stubgen/shim_object.h"

#include <elf.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <unistd.h>

#include <cstring>
#include <map>

#include "backends/linktime/shim_trampolines.h"
#include "mallochooks/alloc_site.h"

namespace mallochooks::stubgen {

namespace {

bool is_floating(char letter) { return find_arg_code(letter)->c_type == "double"; }

// The slot of parameter `index` among the integer-class ones.
unsigned integer_slot(const descriptor &d, std::size_t index) {
    unsigned slot = 0;
    for (std::size_t i = 0; i < index; ++i) slot += !is_floating(d.params[i]);
    return slot;
}

// An object under construction: bytes of each section, symbols and relocations.
class object_builder {
public:
    enum section_id : unsigned { text = 1, data = 2, tbss = 3 };

    std::vector<unsigned char> text_bytes, data_bytes;
    std::uint64_t tbss_size = 0;

    // A global symbol, defined in `section` (0: undefined).  Returns its index among the globals.
    std::size_t global(const std::string &name, unsigned section, std::uint64_t value, std::uint64_t size,
                       unsigned char type, unsigned char visibility, unsigned char binding = STB_GLOBAL) {
        auto [it, fresh] = global_index_.emplace(name, globals_.size());
        if (fresh) globals_.push_back({name, section, value, size, type, visibility, binding});
        return it->second;
    }
    std::size_t undefined(const std::string &name, unsigned char visibility = STV_DEFAULT) {
        return global(name, 0, 0, 0, STT_NOTYPE, visibility);
    }
    void relocate(unsigned section, std::uint64_t offset, std::size_t global_symbol, unsigned type, std::int64_t addend) {
        (section == text ? text_relocs_ : data_relocs_).push_back({offset, global_symbol, type, addend});
    }

    std::string write(const std::string &path) const;

private:
    struct sym {
        std::string name;
        unsigned section;
        std::uint64_t value, size;
        unsigned char type, visibility, binding;
    };
    struct reloc {
        std::uint64_t offset;
        std::size_t global_symbol;
        unsigned type;
        std::int64_t addend;
    };
    std::vector<sym> globals_;
    std::map<std::string, std::size_t> global_index_;
    std::vector<reloc> text_relocs_, data_relocs_;
};

std::string libelf_error(const std::string &what) { return what + ": " + elf_errmsg(-1); }

std::string object_builder::write(const std::string &path) const {
    elf_version(EV_CURRENT);
    const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return "cannot create " + path + ": " + std::strerror(errno);
    struct closer {
        int fd;
        Elf *elf = nullptr;
        ~closer() {
            if (elf != nullptr) elf_end(elf);
            close(fd);
        }
    } files{fd};
    Elf *elf = files.elf = elf_begin(fd, ELF_C_WRITE, nullptr);
    if (elf == nullptr || gelf_newehdr(elf, ELFCLASS64) == nullptr) return libelf_error("cannot start the object");

    // Section names, symbol names.
    std::string shstrtab(1, '\0'), strtab(1, '\0');
    auto add_name = [](std::string &table, const std::string &name) {
        const std::size_t at = table.size();
        table += name;
        table += '\0';
        return Elf64_Word(at);
    };
    const bool has_data = !data_bytes.empty();
    // Section indexes in the file: .text 1, .rela.text 2, .tbss 3, then .data.rel.ro 4 and its relocations 5.
    const unsigned text_index = 1, tbss_index = 3, data_index = 4;
    // Symbols: null, the section symbols (local), then the globals.
    const std::size_t first_global = 3;
    std::vector<Elf64_Sym> symbols(first_global);
    std::memset(symbols.data(), 0, sizeof(Elf64_Sym) * first_global);
    symbols[1].st_info = ELF64_ST_INFO(STB_LOCAL, STT_SECTION);
    symbols[2].st_info = ELF64_ST_INFO(STB_LOCAL, STT_SECTION);
    symbols[1].st_shndx = text_index;
    symbols[2].st_shndx = has_data ? data_index : text_index;
    for (const sym &s : globals_) {
        Elf64_Sym e{};
        e.st_name = add_name(strtab, s.name);
        e.st_info = ELF64_ST_INFO(s.binding, s.type);
        e.st_other = s.visibility;
        e.st_shndx = s.section == 0 ? SHN_UNDEF : s.section == text ? text_index : s.section == tbss ? tbss_index : data_index;
        e.st_value = s.value;
        e.st_size = s.size;
        symbols.push_back(e);
    }
    auto relocations = [&](const std::vector<reloc> &list) {
        std::vector<Elf64_Rela> out;
        for (const reloc &r : list)
            out.push_back({r.offset, ELF64_R_INFO(first_global + r.global_symbol, r.type), r.addend});
        return out;
    };
    const std::vector<Elf64_Rela> text_rela = relocations(text_relocs_), data_rela = relocations(data_relocs_);

    struct section_spec {
        const char *name;
        Elf64_Word type;
        Elf64_Xword flags;
        const void *bytes;
        std::size_t size;
        Elf_Type data_type;
        Elf64_Xword align, entsize;
        Elf64_Word link, info;
    };
    // Fixed indexes: 1 .text, 2 .rela.text, 3 .tbss, [4 .data.rel.ro, 5 .rela.data.rel.ro], then the note,
    // symtab, strtab, shstrtab.
    const unsigned symtab_index = has_data ? 7 : 5;
    std::vector<section_spec> sections = {
        {".text", SHT_PROGBITS, SHF_ALLOC | SHF_EXECINSTR, text_bytes.data(), text_bytes.size(), ELF_T_BYTE, 16, 0, 0, 0},
        {".rela.text", SHT_RELA, SHF_INFO_LINK, text_rela.data(), text_rela.size() * sizeof(Elf64_Rela), ELF_T_RELA, 8,
         sizeof(Elf64_Rela), symtab_index, text_index},
        {".tbss", SHT_NOBITS, SHF_ALLOC | SHF_WRITE | SHF_TLS, nullptr, tbss_size, ELF_T_BYTE, 8, 0, 0, 0},
    };
    if (has_data) {
        sections.push_back({".data.rel.ro", SHT_PROGBITS, SHF_ALLOC | SHF_WRITE, data_bytes.data(), data_bytes.size(),
                            ELF_T_BYTE, 8, 0, 0, 0});
        sections.push_back({".rela.data.rel.ro", SHT_RELA, SHF_INFO_LINK, data_rela.data(),
                            data_rela.size() * sizeof(Elf64_Rela), ELF_T_RELA, 8, sizeof(Elf64_Rela), symtab_index, data_index});
    }
    sections.push_back({".note.GNU-stack", SHT_PROGBITS, 0, nullptr, 0, ELF_T_BYTE, 1, 0, 0, 0});
    sections.push_back({".symtab", SHT_SYMTAB, 0, symbols.data(), symbols.size() * sizeof(Elf64_Sym), ELF_T_SYM, 8,
                        sizeof(Elf64_Sym), symtab_index + 1, Elf64_Word(first_global)});
    sections.push_back({".strtab", SHT_STRTAB, 0, strtab.data(), strtab.size(), ELF_T_BYTE, 1, 0, 0, 0});
    std::vector<Elf64_Word> section_names;
    for (const section_spec &s : sections) section_names.push_back(add_name(shstrtab, s.name));
    const Elf64_Word shstrtab_name = add_name(shstrtab, ".shstrtab");
    sections.push_back({".shstrtab", SHT_STRTAB, 0, shstrtab.data(), shstrtab.size(), ELF_T_BYTE, 1, 0, 0, 0});
    section_names.push_back(shstrtab_name);

    for (std::size_t i = 0; i < sections.size(); ++i) {
        const section_spec &s = sections[i];
        Elf_Scn *scn = elf_newscn(elf);
        Elf_Data *data = scn != nullptr ? elf_newdata(scn) : nullptr;
        GElf_Shdr shdr;
        if (data == nullptr || gelf_getshdr(scn, &shdr) == nullptr) return libelf_error("cannot add a section");
        data->d_buf = const_cast<void *>(s.bytes);
        data->d_size = s.size;
        data->d_type = s.data_type;
        data->d_align = s.align;
        data->d_version = EV_CURRENT;
        shdr.sh_name = section_names[i];
        shdr.sh_type = s.type;
        shdr.sh_flags = s.flags;
        shdr.sh_addralign = s.align;
        shdr.sh_entsize = s.entsize;
        shdr.sh_link = s.link;
        shdr.sh_info = s.info;
        if (gelf_update_shdr(scn, &shdr) == 0) return libelf_error("cannot write a section header");
    }
    GElf_Ehdr ehdr;
    if (gelf_getehdr(elf, &ehdr) == nullptr) return libelf_error("cannot read the ELF header");
    ehdr.e_ident[EI_DATA] = ELFDATA2LSB;
    ehdr.e_ident[EI_OSABI] = ELFOSABI_NONE;
    ehdr.e_type = ET_REL;
    ehdr.e_machine = EM_X86_64;
    ehdr.e_version = EV_CURRENT;
    ehdr.e_shstrndx = Elf64_Half(sections.size());  // the last one; section 0 is the null section
    if (gelf_update_ehdr(elf, &ehdr) == 0) return libelf_error("cannot write the ELF header");
    if (elf_update(elf, ELF_C_WRITE) < 0) return libelf_error("cannot write " + path);
    return "";
}

void append(std::vector<unsigned char> &out, std::initializer_list<unsigned char> bytes) {
    out.insert(out.end(), bytes);
}

void append32(std::vector<unsigned char> &out, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<unsigned char>(v >> (8 * i)));
}

}  // namespace

bool fits_thunk(const descriptor &d) {
    unsigned integers = 0, floats = 0;
    for (char c : d.params) (is_floating(c) ? floats : integers)++;
    // A suballocator's trampoline reads its size and count as whole 64-bit registers; a 32-bit one ('N',
    // 'n') leaves the upper half undefined (the x86-64 ABI), so it gets a C shim, which reads it as what
    // it is.
    const bool narrow_size = d.param('N') || d.param('n');
    return integers <= 6 && floats <= 8 && !(d.kind == fn_kind::suballoc && narrow_size);
}

unsigned suballoc_plan(const descriptor &d) {
    auto slot = [&](char letter) { return d.param(letter) ? integer_slot(d, *d.param(letter)) : MALLOCHOOKS_PLAN_NONE; };
    return slot('Z') << MALLOCHOOKS_PLAN_SIZE_SHIFT | slot('z') << MALLOCHOOKS_PLAN_COUNT_SHIFT |
           slot('p') << MALLOCHOOKS_PLAN_OLD_SHIFT | slot('P') << MALLOCHOOKS_PLAN_FREED_SHIFT |
           (d.returns_chunk() ? MALLOCHOOKS_PLAN_RETURNS_CHUNK : 0u);
}

std::string write_shim_object(const std::vector<shim_function> &functions, const std::vector<code_range> &ranges,
                              const std::string &path) {
    object_builder o;
    for (const shim_function &f : functions) {
        if (!fits_thunk(f.desc))
            return f.symbol + ": it needs a C shim (its arguments do not all travel in registers, or it is a suballocator "
                              "with 32-bit sizes)";
        const std::uint64_t at = o.text_bytes.size();
        const bool suballoc = f.desc.kind == fn_kind::suballoc;
        append(o.text_bytes, {0x4c, 0x8b, 0x1d});  // movq REAL@GOTPCREL(%rip), %r11
        o.relocate(object_builder::text, o.text_bytes.size(), o.undefined(f.real()), R_X86_64_REX_GOTPCRELX, -4);
        append32(o.text_bytes, 0);
        if (suballoc) {
            append(o.text_bytes, {0x41, 0xba});  // movl $PLAN, %r10d
            append32(o.text_bytes, suballoc_plan(f.desc));
        }
        append(o.text_bytes, {0xe9});  // jmp TRAMPOLINE
        o.relocate(object_builder::text, o.text_bytes.size(),
                   o.undefined(suballoc ? MALLOCHOOKS_SUBALLOC_TRAMPOLINE : MALLOCHOOKS_SITE_TRAMPOLINE, STV_HIDDEN),
                   R_X86_64_PLT32, -4);
        append32(o.text_bytes, 0);
        const std::uint64_t size = o.text_bytes.size() - at;
        o.text_bytes.resize((o.text_bytes.size() + 15) & ~std::size_t(15), 0xcc);
        // Hidden for --wrap; default for --defsym (see shim_writer.cc's write_stub).
        o.global(f.stub(), object_builder::text, at, size, STT_FUNC, f.how == linkage::wrap ? STV_HIDDEN : STV_DEFAULT);
    }
    o.global(MALLOCHOOKS_ALLOC_SITE_SYMBOL, object_builder::tbss, 0, 8, STT_TLS, STV_HIDDEN, STB_WEAK);
    o.tbss_size = 8;
    if (!ranges.empty()) {
        o.global(MALLOCHOOKS_STATIC_RANGES_SYMBOL, object_builder::data, 0, (ranges.size() + 1) * 16, STT_OBJECT, STV_HIDDEN);
        for (const code_range &r : ranges) {
            const std::size_t alias = o.undefined(r.alias, STV_HIDDEN);
            o.relocate(object_builder::data, o.data_bytes.size(), alias, R_X86_64_64, 0);
            o.relocate(object_builder::data, o.data_bytes.size() + 8, alias, R_X86_64_64, std::int64_t(r.size));
            o.data_bytes.resize(o.data_bytes.size() + 16, 0);
        }
        o.data_bytes.resize(o.data_bytes.size() + 16, 0);  // the null pair
    }
    return o.write(path);
}

}  // namespace mallochooks::stubgen
