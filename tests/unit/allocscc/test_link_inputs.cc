// SPDX-License-Identifier: MIT
// Link-input inspection against real files made by the compiler at test time: objects, archives whose
// members are pulled only when needed, -l libraries found through -L (shared before static, -static,
// -l:FILE) and through the compiler's search path, linker scripts (libc.so), static functions, C++
// names, and LTO IR from gcc and clang.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "compilerwrapper/link_line.h"
#include "compilerwrapper/elf_file.h"
#include "compilerwrapper/link_inputs.h"
#include "compilerwrapper/process.h"

namespace ac = mallochooks::allocscc;
namespace sg = mallochooks::stubgen;

namespace {

const std::string dir = std::string(TEST_BUILD_DIR) + "/link_fixture";

void sh(const std::string &cmd) {
    INFO(cmd);
    REQUIRE(std::system(("cd " + dir + " && " + cmd).c_str()) == 0);
}

void write(const std::string &name, const std::string &text) { std::ofstream(dir + "/" + name) << text; }

// The fixture, made once: objects, an archive, a shared library and its static twin.
void make_fixture() {
    static bool made = false;
    if (made) return;
    std::system(("rm -rf " + dir + " && mkdir -p " + dir + "/lib " + dir + "/other").c_str());
    write("main.c", "void *xmalloc(unsigned long); int main(void) { return xmalloc(1) == 0; }\n");
    write("xmalloc.c", "#include <stdlib.h>\nvoid *xmalloc(unsigned long n) { return malloc(n); }\n"
                       "static void *local_alloc(unsigned long n) { return malloc(n); }\n"
                       "void *via_local(void) { return local_alloc(2); }\n");
    write("mymalloc.c", "#include <stddef.h>\nvoid *malloc(size_t n) { (void)n; return 0; }\nvoid free(void *p) { (void)p; }\n");
    write("unused.c", "void *calloc(unsigned long a, unsigned long b) { (void)a; (void)b; return 0; }\n");
    write("needs_more.c", "void *helper(void); void *xstrdup(const char *s) { (void)s; return helper(); }\n");
    write("helper.c", "void *helper(void) { return 0; }\n");
    write("alloc.cc", "#include <cstdlib>\nnamespace pool { void *alloc(unsigned long n) { return std::malloc(n); } }\n"
                      "void *xmalloc(unsigned long n, int) { return std::malloc(n); }\n");
    sh("cc -c main.c xmalloc.c mymalloc.c unused.c needs_more.c helper.c && c++ -c alloc.cc");
    sh("ar rcs lib/libmix.a xmalloc.o mymalloc.o unused.o needs_more.o helper.o");
    sh("cc -shared -fPIC -o lib/libshared.so mymalloc.c && ar rcs lib/libshared.a mymalloc.o && cp lib/libshared.a other/libexact.a");
    sh("gcc -flto -c -o gcc_lto.o helper.c && clang -flto -c -o clang_lto.o helper.c && ar rcs liblto.a gcc_lto.o");
    made = true;
}

// "dir/lib/libx.a(../m.o)" -> "libx.a(../m.o)": the file's own name and the member as stored.
std::string short_unit(const std::string &unit) {
    return unit.substr(unit.rfind('/', unit.find('(')) + 1);
}

struct result {
    ac::link_analysis a;
    std::vector<std::string> family() const {
        std::vector<std::string> out;
        for (auto &d : a.family) out.push_back(d.symbol + "@" + short_unit(d.unit));
        std::sort(out.begin(), out.end());
        return out;
    }
    std::vector<std::string> declared() const {
        std::vector<std::string> out;
        for (auto &d : a.declared) out.push_back((d.local ? "static " : "") + d.symbol + "@" + short_unit(d.unit));
        std::sort(out.begin(), out.end());
        return out;
    }
};

result analyse(const std::string &cmdline, const std::string &declared = "xmalloc(Z)p local_alloc(Z)p") {
    std::istringstream in(cmdline);
    std::vector<std::string> args;
    for (std::string w; in >> w;) args.push_back(w);
    static std::vector<sg::descriptor> ds;
    ds = sg::parse_list(declared, sg::fn_kind::alloc, "T");
    ac::link_line line = ac::read_link_line(args);
    std::string cwd = dir + "/";
    for (auto &i : line.inputs)
        if (i.what == ac::link_input::kind::file && i.value[0] != '/') i.value = cwd + i.value;
    for (auto &d : line.library_dirs)
        if (d[0] != '/') d = cwd + d;
    int asked = 0;
    ac::link_model_input mi{&line, [&] { ++asked; return std::vector<std::string>{dir + "/other"}; }, &ds, {}};
    return {ac::analyse_link(mi)};
}

}  // namespace

TEST_CASE("objects: global and static allocation functions and family definitions are found", "[allocscc][inputs]") {
    make_fixture();
    auto r = analyse("main.o xmalloc.o mymalloc.o -o prog");
    CHECK(r.family() == std::vector<std::string>{"free@mymalloc.o", "malloc@mymalloc.o"});
    CHECK(r.declared() == std::vector<std::string>{"static local_alloc@xmalloc.o", "xmalloc@xmalloc.o"});
    CHECK(r.a.referenced == std::set<std::string>{"xmalloc"});
    CHECK(r.a.lto_units.empty());
}

TEST_CASE("archives: only the members the link pulls count, rescanned until nothing more is pulled", "[allocscc][inputs]") {
    make_fixture();
    // main needs xmalloc -> xmalloc.o, which needs malloc -> mymalloc.o; unused.o (calloc) stays out.
    auto r = analyse("main.o -Llib -lmix");
    CHECK(r.family() == std::vector<std::string>{"free@libmix.a(mymalloc.o)", "malloc@libmix.a(mymalloc.o)"});
    CHECK(r.declared() == std::vector<std::string>{"static local_alloc@libmix.a(xmalloc.o)", "xmalloc@libmix.a(xmalloc.o)"});
    // helper.o comes after needs_more.o in the archive and is still pulled on the rescan.
    auto r2 = analyse("-u xstrdup lib/libmix.a", "xstrdup(a)p");
    CHECK(std::count(r2.a.linked_units.begin(), r2.a.linked_units.end(), dir + "/lib/libmix.a(helper.o)") == 1);
    // --whole-archive takes every member.
    auto r3 = analyse("main.o -Wl,--whole-archive lib/libmix.a -Wl,--no-whole-archive");
    CHECK(r3.family() == std::vector<std::string>{"calloc@libmix.a(unused.o)", "free@libmix.a(mymalloc.o)",
                                                  "malloc@libmix.a(mymalloc.o)"});
    // A thin archive: the same members, read from their own files (named relative to the archive, as ar
    // stored them).
    sh("ar rcT lib/libthin.a xmalloc.o mymalloc.o unused.o && ar rcT lib/libthinlong.a needs_more.o helper.o");
    auto r4 = analyse("main.o -Llib -lthin");
    CHECK(r4.family() == std::vector<std::string>{"free@libthin.a(../mymalloc.o)", "malloc@libthin.a(../mymalloc.o)"});
    CHECK(r4.declared() == std::vector<std::string>{"static local_alloc@libthin.a(../xmalloc.o)", "xmalloc@libthin.a(../xmalloc.o)"});
    auto r5 = analyse("-u xstrdup lib/libthinlong.a", "xstrdup(a)p");
    CHECK(std::count(r5.a.linked_units.begin(), r5.a.linked_units.end(), dir + "/lib/libthinlong.a(../helper.o)") == 1);
    // Nothing refers to the archive's symbols: nothing is pulled.
    CHECK(analyse("lib/libmix.a -shared").a.linked_units.empty());
}

TEST_CASE("-l: shared before static, -static and -Bstatic, -l:FILE, the compiler's directories last", "[allocscc][inputs]") {
    make_fixture();
    // libshared.so defines malloc in a DSO: the output does not define it.
    CHECK(analyse("main.o xmalloc.o -Llib -lshared").family().empty());
    CHECK(analyse("main.o xmalloc.o -Llib -lshared -static").family() ==
          std::vector<std::string>{"free@libshared.a(mymalloc.o)", "malloc@libshared.a(mymalloc.o)"});
    CHECK(analyse("main.o xmalloc.o -Llib -Wl,-Bstatic -lshared -Wl,-Bdynamic").family() ==
          std::vector<std::string>{"free@libshared.a(mymalloc.o)", "malloc@libshared.a(mymalloc.o)"});
    // Not in -L: found in the compiler's directories (here: other/).
    CHECK(analyse("main.o xmalloc.o -l:libexact.a").family() == std::vector<std::string>{"free@libexact.a(mymalloc.o)", "malloc@libexact.a(mymalloc.o)"});
    CHECK(ac::find_library("shared", false, {dir + "/nowhere", dir + "/lib"}) == dir + "/lib/libshared.so");
    CHECK(ac::find_library("shared", true, {dir + "/lib"}) == dir + "/lib/libshared.a");
    CHECK_FALSE(ac::find_library("absent", false, {dir + "/lib"}).has_value());
}

TEST_CASE("the compiler's search directories and linker scripts", "[allocscc][inputs]") {
    std::string out;
    REQUIRE(ac::capture({"cc", "-print-search-dirs"}, out) == 0);
    auto dirs = ac::parse_search_dirs(out);
    REQUIRE_FALSE(dirs.empty());
    auto libc = ac::find_library("c", false, dirs);
    REQUIRE(libc.has_value());
    ac::link_file f = ac::read_link_file(*libc);
    REQUIRE(f.kind == ac::file_kind::linker_script);  // Debian's libc.so
    auto inputs = ac::linker_script_inputs(f.script);
    CHECK(std::any_of(inputs.begin(), inputs.end(), [](auto &s) { return s.find("libc.so.6") != std::string::npos; }));
    CHECK(ac::linker_script_inputs("/* c */ GROUP ( /a/libx.so.1 AS_NEEDED ( /b/ld.so ) -lfoo )") ==
          std::vector<std::string>{"/a/libx.so.1", "/b/ld.so", "-lfoo"});
    CHECK(ac::parse_search_dirs("install: /x/\nprograms: =/p\nlibraries: =/a/:/b::/c\n") ==
          std::vector<std::string>{"/a/", "/b", "/c"});
}

TEST_CASE("C++ functions are matched by demangled name or mangled symbol", "[allocscc][inputs]") {
    make_fixture();
    auto r = analyse("alloc.o -shared", "pool::alloc(Z)p xmalloc(Zi)p");
    CHECK(r.declared() == std::vector<std::string>{"_Z7xmallocmi@alloc.o", "_ZN4pool5allocEm@alloc.o"});
    CHECK(ac::symbol_matches("pool::alloc", "_ZN4pool5allocEm"));
    CHECK(ac::symbol_matches("_ZN4pool5allocEm", "_ZN4pool5allocEm"));
    CHECK_FALSE(ac::symbol_matches("alloc", "_ZN4pool5allocEm"));
    CHECK_FALSE(ac::symbol_matches("pool::alloc", "_ZN4pool9allocatorEm"));
}

TEST_CASE("LTO IR is recognised: GCC objects, LLVM bitcode, and inside archives", "[allocscc][inputs]") {
    make_fixture();
    CHECK(ac::read_link_file(dir + "/gcc_lto.o").kind == ac::file_kind::gcc_lto);
    CHECK(ac::read_link_file(dir + "/clang_lto.o").kind == ac::file_kind::llvm_bitcode);
    CHECK(ac::read_link_file(dir + "/main.o").kind == ac::file_kind::relocatable);
    CHECK(ac::read_link_file(dir + "/lib/libshared.so").kind == ac::file_kind::shared);
    CHECK(ac::read_link_file(dir + "/lib/libmix.a").kind == ac::file_kind::archive);
    auto r = analyse("main.o xmalloc.o clang_lto.o liblto.a");
    REQUIRE(r.a.lto_units.size() == 2);
    CHECK(r.a.lto_units[0] == dir + "/clang_lto.o (LLVM bitcode)");
    CHECK(r.a.lto_units[1] == dir + "/liblto.a(gcc_lto.o) (GCC LTO object)");
    CHECK_THROWS_AS(ac::read_link_file(dir + "/absent.o"), ac::elf_error);
}
