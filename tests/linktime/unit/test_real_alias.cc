// SPDX-License-Identifier: MIT
// The alias writer (backends/wrapdl/real_alias.h) on real inputs built by meson: the test allocator's
// (thin) archive, an object file that defines part of the family, an archive that defines none of it.
// The copy must add exactly one hidden alias per family function, equal to the original in everything
// but name and visibility, leave every other symbol, section and relocation as it was, and keep the
// archive's index.  Inputs come from the environment (tests/linktime/meson.build sets it).
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdlib.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <map>
#include <string>
#include <vector>

#include "backends/family_names.h"
#include "backends/wrapdl/real_alias.h"

namespace {

std::string input(const char *variable) {
    const char *path = getenv(variable);
    if (path == nullptr) FAIL(std::string(variable) + " is not set: run this through meson test");
    return path;
}

std::string scratch(const char *name) { return input("MHTEST_SCRATCH") + "/" + name; }

// One member (or the object itself): its symbols by name, and its sections' headers and contents.
struct object_view {
    std::string member;
    std::vector<std::pair<std::string, GElf_Sym>> symbols;  // in table order
    std::vector<std::pair<GElf_Shdr, std::string>> sections;
    std::vector<std::string> section_names;
};

std::vector<object_view> read_objects(const std::string &path, std::vector<std::string> *index = nullptr) {
    elf_version(EV_CURRENT);
    std::vector<object_view> objects;
    const int fd = open(path.c_str(), O_RDONLY);
    REQUIRE(fd >= 0);
    Elf *outer = elf_begin(fd, ELF_C_READ, nullptr);
    REQUIRE(outer != nullptr);
    if (index != nullptr && elf_kind(outer) == ELF_K_AR) {
        size_t n = 0;
        if (Elf_Arsym *arsym = elf_getarsym(outer, &n))
            for (size_t i = 0; i < n; ++i)
                if (arsym[i].as_name != nullptr) index->push_back(arsym[i].as_name);
    }
    Elf_Cmd cmd = ELF_C_READ;
    for (Elf *elf = elf_kind(outer) == ELF_K_AR ? elf_begin(fd, cmd, outer) : outer; elf != nullptr;) {
        object_view view;
        if (Elf_Arhdr *hdr = elf_getarhdr(elf)) view.member = hdr->ar_name;
        if (elf_kind(elf) != ELF_K_ELF) {  // libelf shows an archive's index and long names as members
            cmd = elf_next(elf);
            elf_end(elf);
            elf = elf_begin(fd, cmd, outer);
            continue;
        }
        size_t shstrndx = 0;
        elf_getshdrstrndx(elf, &shstrndx);
        for (Elf_Scn *scn = nullptr; (scn = elf_nextscn(elf, scn)) != nullptr;) {
            GElf_Shdr shdr;
            gelf_getshdr(scn, &shdr);
            Elf_Data *data = elf_rawdata(scn, nullptr);
            std::string bytes = data && data->d_buf ? std::string(static_cast<char *>(data->d_buf), data->d_size) : "";
            view.sections.emplace_back(shdr, bytes);
            view.section_names.emplace_back(elf_strptr(elf, shstrndx, shdr.sh_name));
            if (shdr.sh_type != SHT_SYMTAB) continue;
            Elf_Data *symbols = elf_getdata(scn, nullptr);
            for (size_t i = 0; i < shdr.sh_size / shdr.sh_entsize; ++i) {
                GElf_Sym sym;
                gelf_getsym(symbols, int(i), &sym);
                view.symbols.emplace_back(elf_strptr(elf, shdr.sh_link, sym.st_name), sym);
            }
        }
        objects.push_back(view);
        if (elf == outer) break;
        cmd = elf_next(elf);
        elf_end(elf);
        elf = elf_begin(fd, cmd, outer);
    }
    elf_end(outer);
    close(fd);
    return objects;
}

const GElf_Sym *find(const object_view &view, const std::string &name) {
    for (const auto &[n, sym] : view.symbols)
        if (n == name) return &sym;
    return nullptr;
}

// One alias per name, after every original symbol: equal to its original but hidden.
void require_aliases(const object_view &copy, size_t original_symbols, const std::vector<std::string> &names) {
    REQUIRE(copy.symbols.size() == original_symbols + names.size());
    for (const std::string &name : names) {
        INFO("alias of " << name);
        const GElf_Sym *real = find(copy, name), *alias = find(copy, "__mallochooks_real_" + name);
        REQUIRE(real != nullptr);
        REQUIRE(alias != nullptr);
        REQUIRE(alias->st_value == real->st_value);
        REQUIRE(alias->st_size == real->st_size);
        REQUIRE(alias->st_shndx == real->st_shndx);
        REQUIRE(alias->st_info == real->st_info);
        REQUIRE(GELF_ST_VISIBILITY(alias->st_other) == STV_HIDDEN);
    }
}

// `copy` is `original` plus the aliases of `names`: same sections (the symbol and string tables only
// longer), same symbols first, then the aliases.
void require_aliased(const object_view &original, const object_view &copy, const std::vector<std::string> &names) {
    REQUIRE(copy.sections.size() == original.sections.size());
    for (size_t i = 0; i < original.sections.size(); ++i) {
        const GElf_Shdr &a = original.sections[i].first, &b = copy.sections[i].first;
        INFO("section " << original.section_names[i]);
        REQUIRE(copy.section_names[i] == original.section_names[i]);
        REQUIRE((a.sh_type == b.sh_type && a.sh_flags == b.sh_flags && a.sh_link == b.sh_link &&
                 a.sh_info == b.sh_info && a.sh_entsize == b.sh_entsize && a.sh_addralign == b.sh_addralign));
        if (a.sh_type == SHT_SYMTAB || a.sh_type == SHT_STRTAB) continue;  // these grow
        REQUIRE(copy.sections[i].second == original.sections[i].second);  // relocations included
    }
    REQUIRE(copy.symbols.size() == original.symbols.size() + names.size());
    for (size_t i = 0; i < original.symbols.size(); ++i) {
        const GElf_Sym &a = original.symbols[i].second, &b = copy.symbols[i].second;
        REQUIRE(copy.symbols[i].first == original.symbols[i].first);
        REQUIRE((a.st_value == b.st_value && a.st_size == b.st_size && a.st_info == b.st_info &&
                 a.st_other == b.st_other && a.st_shndx == b.st_shndx));
    }
    require_aliases(copy, original.symbols.size(), names);
}

}  // namespace

TEST_CASE("alias writer: an archive defining the whole family", "[.real_alias]") {
    const std::string archive = input("MHTEST_ALLOC_ARCHIVE"), copy = scratch("alias-test.a");
    // The allocator defines the C family (the C++ functions are libstdc++'s).
    const std::vector<std::string> family(std::begin(mallochooks::names::c_user_api), std::end(mallochooks::names::c_user_api));
    REQUIRE(mallochooks::wrapdl::defined_family_functions(archive).defined == family);

    const auto written = mallochooks::wrapdl::write_real_aliases(archive, copy);
    REQUIRE(written.error.empty());
    REQUIRE(written.defined == family);
    // meson's archive is thin (libelf cannot read those; the object-file case below compares a copy
    // with its original section by section); the copy is a normal archive holding the one member.
    std::vector<std::string> index;
    const auto copies = read_objects(copy, &index);
    REQUIRE(copies.size() == 1);
    REQUIRE(copies[0].member == "test_allocator.c.o");
    require_aliases(copies[0], copies[0].symbols.size() - family.size(), family);
    // The index keeps every entry and names the aliases, so -u __mallochooks_real_X can pull the member.
    for (const std::string &name : family) {
        REQUIRE(std::count(index.begin(), index.end(), name) == 1);
        REQUIRE(std::count(index.begin(), index.end(), "__mallochooks_real_" + name) == 1);
    }
    REQUIRE(mallochooks::wrapdl::defined_family_functions(copy).defined == family);

    // Aliasing a copy again would define every alias twice.
    const auto again = mallochooks::wrapdl::write_real_aliases(copy, scratch("alias-test-again.a"));
    REQUIRE(again.error.find("already has") != std::string::npos);
    REQUIRE(access(scratch("alias-test-again.a").c_str(), F_OK) != 0);
}

TEST_CASE("alias writer: an object defining part of the family", "[.real_alias]") {
    const std::string object = input("MHTEST_SELF_OBJECT"), copy = scratch("alias-test.o");
    const std::vector<std::string> defined{"malloc", "calloc", "realloc", "free"};
    const auto written = mallochooks::wrapdl::write_real_aliases(object, copy);
    REQUIRE(written.error.empty());
    REQUIRE(written.defined == defined);
    require_aliased(read_objects(object)[0], read_objects(copy)[0], defined);
}

TEST_CASE("alias writer: any function asked for, static ones included, in the member asked for", "[.real_alias]") {
    namespace wd = mallochooks::wrapdl;
    const std::string archive = input("MHTEST_DECLARED_ARCHIVE"), copy = scratch("alias-test-declared.a");
    // meson's archive is thin, which libelf cannot read: a copy without aliases (a normal archive) stands
    // for the original.
    const std::string plain = scratch("alias-test-declared-plain.a");
    REQUIRE(wd::write_aliases(archive, plain, {}).error.empty());
    const std::vector<object_view> original = read_objects(plain);
    REQUIRE(original.size() == 1);
    const std::string member = original[0].member;
    CHECK(member == "alias_input.c.o");
    const std::vector<wd::alias_spec> specs = {
        {"xalloc", "__mallochooks_real_xalloc", false, member},
        {"local_alloc", "__mallochooks_static_0", true, ""},
        {"local_alloc", "__mallochooks_static_1", false, ""},  // it is not global: no match
        {"xalloc", "__mallochooks_static_2", true, ""},        // it is not static: no match
        {"xalloc", "__mallochooks_real_2", false, "other.o"},  // no such member
    };
    std::vector<std::string> index;
    const wd::alias_result made = wd::write_aliases(archive, copy, specs);
    REQUIRE(made.error.empty());
    REQUIRE(made.missing.size() == 3);
    CHECK(made.missing[0].alias == "__mallochooks_static_1");
    CHECK(made.missing[2].member == "other.o");
    const std::vector<object_view> copied = read_objects(copy, &index);
    REQUIRE(copied.size() == 1);
    const object_view &o = original[0], &c = copied[0];
    REQUIRE(c.symbols.size() == o.symbols.size() + 2);
    const GElf_Sym *global = find(c, "xalloc"), *real = find(c, "__mallochooks_real_xalloc");
    const GElf_Sym *local = find(c, "local_alloc"), *alias = find(c, "__mallochooks_static_0");
    REQUIRE((global && real && local && alias));
    CHECK((real->st_value == global->st_value && real->st_size == global->st_size && real->st_info == global->st_info &&
           GELF_ST_VISIBILITY(real->st_other) == STV_HIDDEN));
    // The static function's alias: global (it must be seen by the shim object), hidden, its code.
    CHECK((alias->st_value == local->st_value && alias->st_size == local->st_size && alias->st_shndx == local->st_shndx));
    CHECK(GELF_ST_BIND(alias->st_info) == STB_GLOBAL);
    CHECK(GELF_ST_TYPE(alias->st_info) == GELF_ST_TYPE(local->st_info));
    CHECK(GELF_ST_VISIBILITY(alias->st_other) == STV_HIDDEN);
    // The archive's index names both, so that a reference to either pulls the member.
    CHECK(std::count(index.begin(), index.end(), "__mallochooks_real_xalloc") == 1);
    CHECK(std::count(index.begin(), index.end(), "__mallochooks_static_0") == 1);
    // Asking again for an alias the copy has already is refused.
    const wd::alias_result again = wd::write_aliases(copy, scratch("alias-test-declared-again.a"), {specs[1]});
    CHECK(again.error.find("already has the symbol __mallochooks_static_0") != std::string::npos);
}

TEST_CASE("alias writer: refuses what it cannot alias", "[.real_alias]") {
    auto result = mallochooks::wrapdl::write_real_aliases(input("MHTEST_NO_FAMILY_ARCHIVE"), scratch("none.a"));
    REQUIRE(result.error.find("defines no function of the malloc family") != std::string::npos);
    result = mallochooks::wrapdl::write_real_aliases(scratch("does-not-exist.o"), scratch("none.o"));
    REQUIRE(result.error.find("cannot open") != std::string::npos);
    result = mallochooks::wrapdl::defined_family_functions(input("MHTEST_NOT_ELF"));
    REQUIRE(result.error.find("neither an ELF object nor an archive") != std::string::npos);
}
