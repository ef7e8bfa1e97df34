// SPDX-License-Identifier: MIT
// The shim generators: the C output for one descriptor of each shape against a golden file, that it
// compiles warning-free with gcc and clang, the link flags for both linkages; the object of thunks
// (shim_object.h): which functions can have one, the plans of suballocators, and the object's symbols,
// relocations and table as the linker will read them.
#include <catch2/catch.hpp>

#include <elf.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>

#include "backends/linktime/shim_trampolines.h"
#include "mallochooks/alloc_site.h"
#include "stubgen/descriptor.h"
#include "stubgen/shim_object.h"
#include "stubgen/shim_writer.h"

namespace sg = mallochooks::stubgen;

namespace {

std::vector<sg::shim_function> sample() {
    std::vector<sg::descriptor> all = sg::parse_list("xmalloc(Z)p xcalloc(zZ)p xrealloc(pZ)p xmemalign(AZ)p",
                                                     sg::fn_kind::alloc, "ALLOCSCC_ALLOC_FNS");
    for (auto more : {sg::parse_list("xfree(P) xfree_status(P)i", sg::fn_kind::free, "ALLOCSCC_FREE_FNS"),
                      sg::parse_list("pool_alloc(aZ)p pool_calloc(azZ)p pool_resize(apZ)p pool_free(aP) pool32(anN)p",
                                     sg::fn_kind::suballoc, "ALLOCSCC_SUBALLOC_FNS")})
        all.insert(all.end(), more.begin(), more.end());
    return sg::with_plain_symbols(all, sg::linkage::wrap);
}

std::vector<sg::shim_function> with_linkage(std::vector<sg::shim_function> fns, sg::linkage how) {
    for (sg::shim_function &f : fns) f.how = how;
    return fns;
}

std::string read(const std::string &path) {
    std::ifstream in(path);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

}  // namespace

TEST_CASE("shims match the golden output", "[stubgen][shims]") {
    const std::string golden = std::string(TEST_SOURCE_DIR) + "/golden_shims_wrap.c";
    const std::string out = sg::write_shims(sample(), {{"__mallochooks_static_0", 48}, {"__mallochooks_static_1", 7}});
    if (std::getenv("STUBGEN_UPDATE_GOLDEN") != nullptr) std::ofstream(golden) << out;
    CHECK(out == read(golden));
}

TEST_CASE("shims compile without warnings with gcc and clang, in both linkages", "[stubgen][shims]") {
    for (auto how : {sg::linkage::wrap, sg::linkage::defsym}) {
        const std::string dir = std::string(TEST_BUILD_DIR);
        const std::string source = dir + "/shims_compile_test.c";
        std::ofstream(source) << sg::write_shims(with_linkage(sample(), how), {{"__mallochooks_static_0", 48}});
        for (const char *cc : {"gcc", "clang"}) {
            const std::string cmd = std::string(cc) + " -std=c11 -Wall -Wextra -Werror -O2 -fPIC -fexceptions -c " + source +
                                    " -o " + dir + "/shims_compile_test.o";
            INFO(cmd);
            CHECK(std::system(cmd.c_str()) == 0);
        }
    }
}

TEST_CASE("link flags route callers to the stubs", "[stubgen][shims]") {
    auto fns = sg::with_plain_symbols(sg::parse_list("xmalloc(Z)p _Z7xmallocm(Z)p", sg::fn_kind::alloc, "A"), sg::linkage::wrap);
    CHECK(sg::link_flags(fns) == std::vector<std::string>{"-Wl,--wrap=xmalloc", "-Wl,--wrap=_Z7xmallocm"});
    CHECK(sg::link_flags(with_linkage(fns, sg::linkage::defsym)) ==
          std::vector<std::string>{"-Wl,--defsym=xmalloc=__mallochooks_stub_xmalloc",
                                   "-Wl,--undefined=__mallochooks_real_xmalloc",
                                   "-Wl,--defsym=_Z7xmallocm=__mallochooks_stub__Z7xmallocm",
                                   "-Wl,--undefined=__mallochooks_real__Z7xmallocm"});
    CHECK(sg::real_symbol("xmalloc", sg::linkage::defsym) == "__mallochooks_real_xmalloc");
    CHECK_THROWS_WITH(sg::with_plain_symbols(sg::parse_list(" ns::alloc(Z)p", sg::fn_kind::alloc, "A"), sg::linkage::wrap),
                      "A:1:2: 'ns::alloc' is a qualified C++ name: give its mangled symbol, or build with allocscc, which finds it");
}

namespace {

// The symbols and relocations of an object, as a linker reads them.
struct object_contents {
    GElf_Ehdr ehdr{};
    std::map<std::string, GElf_Sym> symbols;
    std::vector<std::string> locals_after_globals;  // must stay empty
    // per relocated section name: (offset, type, symbol, addend)
    std::map<std::string, std::vector<std::tuple<std::uint64_t, unsigned, std::string, std::int64_t>>> relocations;
    std::map<std::string, std::string> bytes;
};

object_contents read_object(const std::string &path) {
    elf_version(EV_CURRENT);
    object_contents out;
    const int fd = open(path.c_str(), O_RDONLY);
    REQUIRE(fd >= 0);
    Elf *elf = elf_begin(fd, ELF_C_READ, nullptr);
    REQUIRE(elf != nullptr);
    REQUIRE(gelf_getehdr(elf, &out.ehdr) != nullptr);
    size_t shstrndx = 0;
    elf_getshdrstrndx(elf, &shstrndx);
    std::vector<std::string> names(1);
    for (Elf_Scn *scn = nullptr; (scn = elf_nextscn(elf, scn)) != nullptr;) {
        GElf_Shdr shdr;
        gelf_getshdr(scn, &shdr);
        names.push_back(elf_strptr(elf, shstrndx, shdr.sh_name));
        Elf_Data *data = elf_getdata(scn, nullptr);
        if (shdr.sh_type == SHT_PROGBITS && data && data->d_buf) out.bytes[names.back()].assign(static_cast<char *>(data->d_buf), data->d_size);
    }
    std::vector<std::string> symbol_names;
    for (Elf_Scn *scn = nullptr; (scn = elf_nextscn(elf, scn)) != nullptr;) {
        GElf_Shdr shdr;
        gelf_getshdr(scn, &shdr);
        if (shdr.sh_type != SHT_SYMTAB) continue;
        Elf_Data *data = elf_getdata(scn, nullptr);
        for (size_t i = 0; i < shdr.sh_size / shdr.sh_entsize; ++i) {
            GElf_Sym sym;
            gelf_getsym(data, int(i), &sym);
            const std::string name = elf_strptr(elf, shdr.sh_link, sym.st_name);
            symbol_names.push_back(name);
            if (i >= shdr.sh_info && GELF_ST_BIND(sym.st_info) == STB_LOCAL) out.locals_after_globals.push_back(name);
            if (!name.empty()) out.symbols[name] = sym;
        }
    }
    for (Elf_Scn *scn = nullptr; (scn = elf_nextscn(elf, scn)) != nullptr;) {
        GElf_Shdr shdr;
        gelf_getshdr(scn, &shdr);
        if (shdr.sh_type != SHT_RELA) continue;
        Elf_Data *data = elf_getdata(scn, nullptr);
        for (size_t i = 0; i < shdr.sh_size / shdr.sh_entsize; ++i) {
            GElf_Rela r;
            gelf_getrela(data, int(i), &r);
            out.relocations[names[shdr.sh_info]].emplace_back(r.r_offset, unsigned(GELF_R_TYPE(r.r_info)),
                                                              symbol_names[GELF_R_SYM(r.r_info)], r.r_addend);
        }
    }
    elf_end(elf);
    close(fd);
    return out;
}

}  // namespace

TEST_CASE("thunks: which functions can have one, and suballocators' plans", "[stubgen][object]") {
    auto one = [](const char *text, sg::fn_kind kind = sg::fn_kind::alloc) { return sg::parse_list(text, kind, "T").front(); };
    CHECK(sg::fits_thunk(one("f(Z)p")));
    CHECK(sg::fits_thunk(one("f(iiiiiZ)p")));
    CHECK_FALSE(sg::fits_thunk(one("f(iiiiiiZ)p")));       // a seventh integer argument goes on the stack
    CHECK(sg::fits_thunk(one("f(ddddddddiiiiiZ)p")));     // 8 in xmm registers, 6 in integer ones
    CHECK_FALSE(sg::fits_thunk(one("f(dddddddddZ)p")));
    // 32-bit sizes: an allocation function's thunk passes them on untouched; a suballocator's trampoline
    // would read them as 64-bit registers, so it gets a C shim.
    CHECK(sg::fits_thunk(one("zcalloc(anN)p")));
    CHECK_FALSE(sg::fits_thunk(one("pool32(anN)p", sg::fn_kind::suballoc)));
    CHECK_FALSE(sg::fits_thunk(one("pool32(aN)p", sg::fn_kind::suballoc)));
    CHECK(sg::fits_thunk(one("pool32_free(aP)", sg::fn_kind::suballoc)));
    const unsigned none = MALLOCHOOKS_PLAN_NONE;
    // pool_calloc(a, z, Z): slots 1 and 2; a double before them takes no integer slot.
    CHECK(sg::suballoc_plan(one("pool_calloc(dazZ)p", sg::fn_kind::suballoc)) ==
          (2u << MALLOCHOOKS_PLAN_SIZE_SHIFT | 1u << MALLOCHOOKS_PLAN_COUNT_SHIFT | none << MALLOCHOOKS_PLAN_OLD_SHIFT |
           none << MALLOCHOOKS_PLAN_FREED_SHIFT | MALLOCHOOKS_PLAN_RETURNS_CHUNK));
    CHECK(sg::suballoc_plan(one("pool_resize(apZ)p", sg::fn_kind::suballoc)) ==
          (2u << MALLOCHOOKS_PLAN_SIZE_SHIFT | none << MALLOCHOOKS_PLAN_COUNT_SHIFT | 1u << MALLOCHOOKS_PLAN_OLD_SHIFT |
           none << MALLOCHOOKS_PLAN_FREED_SHIFT | MALLOCHOOKS_PLAN_RETURNS_CHUNK));
    CHECK(sg::suballoc_plan(one("pool_free(aP)", sg::fn_kind::suballoc)) ==
          (none << MALLOCHOOKS_PLAN_SIZE_SHIFT | none << MALLOCHOOKS_PLAN_COUNT_SHIFT | none << MALLOCHOOKS_PLAN_OLD_SHIFT |
           1u << MALLOCHOOKS_PLAN_FREED_SHIFT));
}

TEST_CASE("the shim object: thunks, their relocations, and the static functions' table", "[stubgen][object]") {
    std::vector<sg::shim_function> fns;
    for (const sg::shim_function &f : sample())
        if (sg::fits_thunk(f.desc)) fns.push_back(f);  // pool32 (32-bit sizes) gets a C shim
    REQUIRE(fns.size() + 1 == sample().size());
    fns[0].how = sg::linkage::defsym;  // xmalloc: defined by the output
    const std::string path = std::string(TEST_BUILD_DIR) + "/shim_object_test.o";
    REQUIRE(sg::write_shim_object(fns, {{"__mallochooks_static_0", 48}, {"__mallochooks_static_1", 7}}, path) == "");
    const object_contents o = read_object(path);
    CHECK(o.ehdr.e_type == ET_REL);
    CHECK(o.ehdr.e_machine == EM_X86_64);
    CHECK(o.locals_after_globals.empty());

    const GElf_Sym &stub = o.symbols.at("__mallochooks_stub_xmalloc");
    CHECK(GELF_ST_BIND(stub.st_info) == STB_GLOBAL);
    CHECK(GELF_ST_TYPE(stub.st_info) == STT_FUNC);
    CHECK(GELF_ST_VISIBILITY(stub.st_other) == STV_DEFAULT);  // --defsym copies its target's visibility
    CHECK(stub.st_size == 12);
    const GElf_Sym &wrap = o.symbols.at("__wrap_pool_calloc");
    CHECK(GELF_ST_VISIBILITY(wrap.st_other) == STV_HIDDEN);
    CHECK(wrap.st_size == 18);
    CHECK(o.symbols.at("__real_xfree").st_shndx == SHN_UNDEF);
    CHECK(o.symbols.at("__mallochooks_real_xmalloc").st_shndx == SHN_UNDEF);
    CHECK(GELF_ST_VISIBILITY(o.symbols.at(MALLOCHOOKS_SITE_TRAMPOLINE).st_other) == STV_HIDDEN);
    // The allocation site's weak definition, as in the C shims.
    const GElf_Sym &site = o.symbols.at(MALLOCHOOKS_ALLOC_SITE_SYMBOL);
    CHECK((GELF_ST_BIND(site.st_info) == STB_WEAK && GELF_ST_TYPE(site.st_info) == STT_TLS && site.st_size == 8 &&
           GELF_ST_VISIBILITY(site.st_other) == STV_HIDDEN));

    // Each thunk: the GOT load of the original, the jump to its trampoline; the suballocator's plan.
    const std::string &text = o.bytes.at(".text");
    CHECK(text.substr(stub.st_value, 3) == "\x4c\x8b\x1d");
    CHECK(static_cast<unsigned char>(text[stub.st_value + 7]) == 0xe9);
    CHECK(text.substr(wrap.st_value + 7, 2) == "\x41\xba");
    const auto &text_relocs = o.relocations.at(".text");
    CHECK(text_relocs.size() == 2 * fns.size());
    bool got = false, jump = false;
    for (const auto &[offset, type, symbol, addend] : text_relocs) {
        if (offset == wrap.st_value + 3) got = type == R_X86_64_REX_GOTPCRELX && symbol == "__real_pool_calloc" && addend == -4;
        if (offset == wrap.st_value + 14) jump = type == R_X86_64_PLT32 && symbol == MALLOCHOOKS_SUBALLOC_TRAMPOLINE && addend == -4;
    }
    CHECK(got);
    CHECK(jump);

    // The table: [alias, alias + size] pairs and a null pair.
    const GElf_Sym &table = o.symbols.at(MALLOCHOOKS_STATIC_RANGES_SYMBOL);
    CHECK(GELF_ST_VISIBILITY(table.st_other) == STV_HIDDEN);
    CHECK(table.st_size == 48);
    const auto &data_relocs = o.relocations.at(".data.rel.ro");
    REQUIRE(data_relocs.size() == 4);
    CHECK(data_relocs[0] == std::make_tuple(std::uint64_t(0), unsigned(R_X86_64_64), std::string("__mallochooks_static_0"), std::int64_t(0)));
    CHECK(data_relocs[1] == std::make_tuple(std::uint64_t(8), unsigned(R_X86_64_64), std::string("__mallochooks_static_0"), std::int64_t(48)));
    CHECK(data_relocs[3] == std::make_tuple(std::uint64_t(24), unsigned(R_X86_64_64), std::string("__mallochooks_static_1"), std::int64_t(7)));

    // And the linker takes it (a relocatable link resolves nothing but reads everything).
    const std::string cmd = "ld -r " + path + " -o " + path + ".r.o";
    CHECK(std::system(cmd.c_str()) == 0);
    // A function with a stack argument is refused.
    auto big = sg::with_plain_symbols(sg::parse_list("big(iiiiiiZ)p", sg::fn_kind::alloc, "A"), sg::linkage::wrap);
    CHECK(sg::write_shim_object(big, {}, path) ==
          "big: it needs a C shim (its arguments do not all travel in registers, or it is a suballocator with 32-bit sizes)");
}
