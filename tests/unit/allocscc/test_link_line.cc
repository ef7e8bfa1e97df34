// SPDX-License-Identifier: MIT
// The command line and the link-line model: which invocations link, what a link's inputs are, response
// files and allocscc's own option, the compile steps of a compile-and-link command and the link rendered
// with edits.
#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>

#include "compilerwrapper/command_args.h"
#include "compilerwrapper/link_line.h"
#include "compilerwrapper/settings.h"

namespace ac = mallochooks::allocscc;

namespace {

std::vector<std::string> words(const std::string &s) {
    std::istringstream in(s);
    std::vector<std::string> out;
    for (std::string w; in >> w;) out.push_back(w);
    return out;
}

bool links(const std::string &cmdline) { return ac::read_link_line(words(cmdline)).links; }

}  // namespace

TEST_CASE("invocations that stop before the link are recognised", "[allocscc][args]") {
    for (const char *cmd : {"-c a.c", "-S a.c -o a.s", "-E a.c", "-M a.c", "-MM a.c", "-fsyntax-only a.c", "--version",
                            "-v", "-dumpversion", "-dumpmachine", "-print-search-dirs", "-print-file-name=libc.a",
                            "--print-prog-name=ld", "-### a.c", "--help", "--help=warnings", "", "-O2 -Wall",
                            "-r a.o b.o -o c.o", "a.o -Wl,-r -o c.o", "-c -x c -", "-E -MD a.c", "-o x -c a.c"}) {
        INFO(cmd);
        CHECK_FALSE(links(cmd));
    }
    for (const char *cmd : {"a.c", "a.o", "a.c -o a", "-MD a.c -o a", "-MMD -MF a.d a.c", "-v a.o", "-shared a.o -o l.so",
                            "-static a.o", "-lm", "-x c - -o a", "-O2 a.c -I inc -o prog"}) {
        INFO(cmd);
        CHECK(links(cmd));
    }
    CHECK(ac::read_link_line(words("-c a.c")).reason == "-c");
    CHECK(ac::read_link_line(words("-O2")).reason == "no input files");
}

TEST_CASE("link inputs keep their order, search flags and values of options", "[allocscc][args]") {
    auto cmd = ac::read_link_line(words(
        "-o prog -I inc main.c -x c gen -x none util.o -L lib1 -Llib2 -lfoo -l bar -Wl,-Bstatic,-lbaz,-Bdynamic "
        "-Wl,--whole-archive libw.a -Wl,--no-whole-archive -l:exact.a -Xlinker -L -Xlinker lib3 -u keep -MF deps.d "
        "-include pre.h -fuse-ld=gold -flto -m32"));
    REQUIRE(cmd.links);
    CHECK(cmd.output == std::optional<std::string>("prog"));
    CHECK(cmd.library_dirs == std::vector<std::string>{"lib1", "lib2", "lib3"});
    CHECK(cmd.undefined == std::vector<std::string>{"keep"});
    CHECK(cmd.fuse_ld == std::optional<std::string>("gold"));
    CHECK(cmd.lto);
    CHECK(cmd.target_flags == std::vector<std::string>{"-m32"});
    using k = ac::link_input::kind;
    REQUIRE(cmd.inputs.size() == 8);
    CHECK((cmd.inputs[0].what == k::source && cmd.inputs[0].value == "main.c" && cmd.inputs[0].language.empty()));
    CHECK((cmd.inputs[1].what == k::source && cmd.inputs[1].value == "gen" && cmd.inputs[1].language == "c"));
    CHECK((cmd.inputs[2].what == k::file && cmd.inputs[2].value == "util.o"));
    CHECK((cmd.inputs[3].what == k::library && cmd.inputs[3].value == "foo" && !cmd.inputs[3].static_only));
    CHECK((cmd.inputs[4].what == k::library && cmd.inputs[4].value == "bar"));
    CHECK((cmd.inputs[5].what == k::library && cmd.inputs[5].value == "baz" && cmd.inputs[5].static_only));
    CHECK((cmd.inputs[6].what == k::file && cmd.inputs[6].value == "libw.a" && cmd.inputs[6].whole_archive));
    CHECK((cmd.inputs[7].what == k::library && cmd.inputs[7].value == ":exact.a" && !cmd.inputs[7].whole_archive));
    // -Xlinker -L -Xlinker lib3: the linker reads its words as one stream, -L with its separate value.
    auto st = ac::read_link_line(words("-static a.o -lm -shared"));
    CHECK(st.static_link);
    CHECK(st.shared);
    CHECK(st.inputs[1].static_only);
}

TEST_CASE("response files expand like libiberty's, for analysis only", "[allocscc][args]") {
    const std::string dir = TEST_BUILD_DIR;
    std::ofstream(dir + "/rsp_inner") << "-lm 'with space.o'";
    std::ofstream(dir + "/rsp_outer") << "-c \"a b.c\" x\\ y.c\n@" + dir + "/rsp_inner -DX='\"q\"'";
    auto out = ac::expand_response_files({"-O2", "@" + dir + "/rsp_outer", "@does-not-exist", "tail.c"});
    CHECK(out == std::vector<std::string>{"-O2", "-c", "a b.c", "x y.c", "-lm", "with space.o", "-DX=\"q\"",
                                          "@does-not-exist", "tail.c"});
    std::ofstream(dir + "/rsp_loop") << "@" + dir + "/rsp_loop";
    CHECK_THROWS_WITH(ac::expand_response_files({"@" + dir + "/rsp_loop"}),
                      "response file '" + dir + "/rsp_loop' includes itself");
    CHECK_FALSE(ac::read_link_line(ac::expand_response_files({"@" + dir + "/rsp_outer"})).links);
    // A linker response file that includes itself is the linker's to report; the model keeps the word.
    auto loop = ac::read_link_line({"-c", "a.c", "-Wl,@" + dir + "/rsp_loop"});
    CHECK_FALSE(loop.links);
    REQUIRE(loop.linker_words.size() == 1);
    CHECK(loop.linker_words[0].text == "@" + dir + "/rsp_loop");
}

TEST_CASE("a compile-and-link command: the compile steps' options, the link rendered with edits", "[allocscc][args]") {
    auto line = ac::read_link_line(words("-O2 -DX=1 -I inc a.c -x c gen -x none b.o -o prog -lm -Wl,--as-needed -shared -MD"));
    CHECK(ac::compile_options(line) == words("-O2 -DX=1 -I inc -MD"));
    using k = ac::link_input::kind;
    REQUIRE(line.inputs.size() == 4);
    CHECK((line.inputs[0].what == k::source && line.inputs[0].language.empty()));
    CHECK((line.inputs[1].what == k::source && line.inputs[1].language == "c"));
    CHECK(ac::render_link(line, {}) == words("-O2 -DX=1 -I inc a.c gen b.o -o prog -lm -Wl,--as-needed -shared -MD"));
    ac::link_edits edits{{"shims.o"}, {{0, "a.o"}, {1, "gen.o"}, {3, "m-copy.a"}}, {"-lmallochooks"}};
    CHECK(ac::render_link(line, edits) ==
          words("shims.o -O2 -DX=1 -I inc a.o gen.o b.o -o prog m-copy.a -Wl,--as-needed -shared -MD -lmallochooks"));
    // An input that linker words name: its argument is written word by word, the copy in the input's place;
    // an input in two words (-l m) is replaced as a whole.
    auto wl = ac::read_link_line(words("a.o -Wl,-Bstatic,-lfoo,-Bdynamic -Xlinker -l -Xlinker m -Wl,--as-needed"));
    REQUIRE(wl.inputs.size() == 3);
    CHECK(ac::render_link(wl, {{}, {{1, "foo.a"}, {2, "m.a"}}, {}}) ==
          words("a.o -Xlinker -Bstatic -Xlinker foo.a -Xlinker -Bdynamic -Xlinker m.a -Wl,--as-needed"));
}

TEST_CASE("settings: --alloc-fns inside a response file; other response files untouched", "[allocscc][settings]") {
    const std::string dir = TEST_BUILD_DIR;
    std::ofstream(dir + "/rsp_fns.txt") << "free xfree(P)\n";
    std::ofstream(dir + "/inner.rsp") << "--alloc-fns=" << dir << "/rsp_fns.txt \"b c.o\"\n";
    std::ofstream(dir + "/outer.rsp") << "-O2 @" << dir << "/inner.rsp -o prog\n";
    std::ofstream(dir + "/plain.rsp") << "-O2 x.o\n";
    auto args = ac::read_command_args({"a.o", "@" + dir + "/outer.rsp", "@" + dir + "/plain.rsp", "@missing.rsp"});
    char *env[] = {nullptr};
    auto s = ac::read_settings(env, ac::language::c, args.fns_files);
    REQUIRE(s.functions.size() == 1);
    CHECK(s.functions[0].name == "xfree");
    // The response file that held the option is expanded in place, in order, without it.
    CHECK(args.for_compiler ==
          std::vector<std::string>{"a.o", "-O2", "b c.o", "-o", "prog", "@" + dir + "/plain.rsp", "@missing.rsp"});
    // The link-line model reads every response file expanded.
    CHECK(args.expanded == std::vector<std::string>{"a.o", "-O2", "b c.o", "-o", "prog", "-O2", "x.o", "@missing.rsp"});
    // A malformed descriptor in that file is reported with its position.
    std::ofstream(dir + "/bad_fns.txt") << "alloc xmalloc(Zq)p\n";
    std::ofstream(dir + "/bad.rsp") << "--alloc-fns=" << dir << "/bad_fns.txt\n";
    CHECK_THROWS_WITH(ac::read_settings(env, ac::language::c, ac::read_command_args({"@" + dir + "/bad.rsp"}).fns_files),
                      Catch::Contains("bad_fns.txt:1:"));
}

TEST_CASE("settings: known variables, unknown ones named, --alloc-fns removed from the arguments", "[allocscc][settings]") {
    const std::string dir = TEST_BUILD_DIR;
    std::ofstream(dir + "/fns.txt") << "alloc xstrdup(a)p\n";
    auto args = ac::read_command_args({"-c", "--alloc-fns=" + dir + "/fns.txt", "a.c"});
    std::string e1 = "ALLOCSCC_CC=ccache gcc", e2 = "ALLOCSCC_ALLOC_FNS=xmalloc(Z)p", e3 = "ALLOCSCC_VERBOSE=1",
                e4 = "PATH=/bin";
    char *env[] = {e1.data(), e2.data(), e3.data(), e4.data(), nullptr};
    auto s = ac::read_settings(env, ac::language::c, args.fns_files);
    CHECK(s.compiler == std::vector<std::string>{"ccache", "gcc"});
    CHECK(s.verbose);
    REQUIRE(s.functions.size() == 2);
    CHECK(s.functions[1].name == "xstrdup");
    CHECK(args.for_compiler == std::vector<std::string>{"-c", "a.c"});
    CHECK(args.expanded == std::vector<std::string>{"-c", "a.c"});

    std::string bad = "ALLOCSCC_ALLOCFNS=x";
    char *env2[] = {bad.data(), nullptr};
    std::vector<std::string> none;
    CHECK_THROWS_WITH(ac::read_settings(env2, ac::language::c, none),
                      Catch::StartsWith("unknown setting ALLOCSCC_ALLOCFNS (known: ALLOCSCC_CC, "));
    std::string flag = "ALLOCSCC_KEEP_TEMPS=yes";
    char *env3[] = {flag.data(), nullptr};
    CHECK_THROWS_WITH(ac::read_settings(env3, ac::language::c, none), "ALLOCSCC_KEEP_TEMPS='yes': expected 0 or 1");
    char *env4[] = {nullptr};
    CHECK(ac::read_settings(env4, ac::language::cxx, none).compiler == std::vector<std::string>{"c++"});
    CHECK(ac::language_from_name("/usr/bin/allocsc++") == ac::language::cxx);
    CHECK(ac::language_from_name("allocscc") == ac::language::c);
}

namespace {

// The facts of the model that a link decision reads, as one line: -o, -soname, version scripts, -L, -u, the
// inputs (kind, value, search state).
std::string facts(const ac::link_line &l) {
    std::ostringstream out;
    if (l.output) out << " o=" << *l.output;
    if (l.soname) out << " soname=" << *l.soname;
    for (const auto &v : l.version_scripts) out << " vs=" << v;
    for (const auto &d : l.library_dirs) out << " L=" << d;
    for (const auto &u : l.undefined) out << " u=" << u;
    if (l.shared) out << " shared";
    if (l.relocatable) out << " r";
    for (const auto &in : l.inputs) {
        if (in.value == "main.o") continue;
        out << (in.script ? " script:" : in.what == ac::link_input::kind::library ? " lib:" : " file:") << in.value;
        if (in.static_only) out << "/static";
        if (in.whole_archive) out << "/whole";
    }
    return out.str().empty() ? "" : out.str().substr(1);
}

std::string join(const std::vector<std::string> &w, const std::string &sep) {
    std::string out;
    for (const auto &s : w) out += (out.empty() ? "" : sep) + s;
    return out;
}

}  // namespace

TEST_CASE("every linker spelling of the options allocscc reads, through every way to reach the linker", "[allocscc][args]") {
    const std::string dir = TEST_BUILD_DIR;
    // linker words -> the facts they give.  One dash or two for long options, =VALUE or the next word, a
    // joined or separate value for single-letter ones (GNU ld's getopt_long_only; gold and lld agree).
    const std::vector<std::pair<std::vector<std::string>, std::string>> table = {
        {{"-version-script", "v.map"}, "vs=v.map"},
        {{"-version-script=v.map"}, "vs=v.map"},
        {{"--version-script", "v.map"}, "vs=v.map"},
        {{"--version-script=v.map"}, "vs=v.map"},
        {{"-soname", "libx.so.1"}, "soname=libx.so.1"},
        {{"-soname=libx.so.1"}, "soname=libx.so.1"},
        {{"--soname", "libx.so.1"}, "soname=libx.so.1"},
        {{"--soname=libx.so.1"}, "soname=libx.so.1"},
        {{"-h", "libx.so.1"}, "soname=libx.so.1"},
        {{"-hlibx.so.1"}, "soname=libx.so.1"},
        {{"-o", "out"}, "o=out"},
        {{"-oout"}, "o=out"},
        {{"--output", "out"}, "o=out"},
        {{"--output=out"}, "o=out"},
        {{"-output", "out"}, "o=out"},
        {{"-L", "d"}, "L=d"},
        {{"-Ld"}, "L=d"},
        {{"--library-path", "d"}, "L=d"},
        {{"--library-path=d"}, "L=d"},
        {{"-library-path=d"}, "L=d"},
        {{"-l", "m"}, "lib:m"},
        {{"-lm"}, "lib:m"},
        {{"-l:libm.a"}, "lib::libm.a"},
        {{"--library", "m"}, "lib:m"},
        {{"--library=m"}, "lib:m"},
        {{"-library=m"}, "lib:m"},
        {{"--whole-archive", "-lm", "--no-whole-archive", "-lz"}, "lib:m/whole lib:z"},
        {{"-whole-archive", "-lm", "-no-whole-archive", "-lz"}, "lib:m/whole lib:z"},
        {{"-Bstatic", "-lm", "-Bdynamic", "-lz"}, "lib:m/static lib:z"},
        {{"--Bstatic", "-lm", "--Bdynamic", "-lz"}, "lib:m/static lib:z"},
        {{"-dn", "-lm", "-dy", "-lz"}, "lib:m/static lib:z"},
        {{"-non_shared", "-lm", "-call_shared", "-lz"}, "lib:m/static lib:z"},
        {{"-static", "-lm"}, "lib:m/static"},
        {{"--push-state", "--whole-archive", "-Bstatic", "-lm", "--pop-state", "-lz"}, "lib:m/static/whole lib:z"},
        {{"-T", "s.ld"}, "script:s.ld"},
        {{"-Ts.ld"}, "script:s.ld"},
        {{"--script", "s.ld"}, "script:s.ld"},
        {{"--script=s.ld"}, "script:s.ld"},
        {{"-script", "s.ld"}, "script:s.ld"},
        {{"-u", "sym"}, "u=sym"},
        {{"-usym"}, "u=sym"},
        {{"--undefined", "sym"}, "u=sym"},
        {{"--undefined=sym"}, "u=sym"},
        {{"--require-defined=sym"}, "u=sym"},
        {{"-shared"}, "shared"},
        {{"--shared"}, "shared"},
        {{"-Bshareable"}, "shared"},
        // Options with values that must not be taken for anything else.
        {{"-hash-style=gnu"}, ""},
        {{"--hash-style", "gnu"}, ""},
        {{"-rpath", "/usr/lib", "-rpath-link", "/lib"}, ""},
        {{"-z", "now", "-znoexecstack"}, ""},
        {{"-export-dynamic", "--as-needed", "-Bsymbolic", "-O1"}, ""},
        {{"--defsym", "a=b", "-Map", "out.map"}, ""},
    };
    int n = 0;
    for (const auto &[linker_words, want] : table) {
        // Every way a driver passes words to the linker.
        std::vector<std::vector<std::string>> forms;
        forms.push_back({"-Wl," + join(linker_words, ",")});
        std::vector<std::string> each_wl, xlinker, for_linker;
        for (const auto &w : linker_words) {
            each_wl.push_back("-Wl," + w);
            xlinker.insert(xlinker.end(), {"-Xlinker", w});
            for_linker.push_back("--for-linker=" + w);
        }
        forms.push_back(each_wl);
        forms.push_back(xlinker);
        forms.push_back(for_linker);
        // A linker response file, and the driver's (expanded by read_command_args, as allocscc does).
        const std::string ld_rsp = dir + "/ld" + std::to_string(n) + ".rsp", cc_rsp = dir + "/cc" + std::to_string(n) + ".rsp";
        std::ofstream(ld_rsp) << join(linker_words, "\n") << "\n";
        std::ofstream(cc_rsp) << join(xlinker, " ") << "\n";
        ++n;
        forms.push_back({"-Wl,@" + ld_rsp});
        forms.push_back(ac::read_command_args({"@" + cc_rsp}).expanded);
        for (const auto &form : forms) {
            std::vector<std::string> args = {"main.o"};
            args.insert(args.end(), form.begin(), form.end());
            INFO(join(args, " "));
            CHECK(facts(ac::read_link_line(args)) == want);
        }
    }
    // The driver's own spellings.
    const std::vector<std::pair<std::string, std::string>> driver = {
        {"-o out", "o=out"}, {"-oout", "o=out"}, {"--output out", "o=out"}, {"--output=out", "o=out"},
        {"-L d", "L=d"}, {"-Ld", "L=d"}, {"--library-directory d", "L=d"}, {"--library-directory=d", "L=d"},
        {"-l m", "lib:m"}, {"-lm", "lib:m"}, {"-T s.ld", "script:s.ld"}, {"-Ts.ld", "script:s.ld"},
        {"-u sym", "u=sym"}, {"-shared", "shared"}, {"-static -lm", "lib:m/static"},
        {"-Wl,-Bstatic -lm -Wl,-Bdynamic -lz", "lib:m/static lib:z"},
        {"-Wl,-soname -Xlinker libx.so.1 -Wl,-version-script --for-linker v.map", "soname=libx.so.1 vs=v.map"},
    };
    for (const auto &[line, want] : driver) {
        INFO(line);
        CHECK(facts(ac::read_link_line(words("main.o " + line))) == want);
    }
}

TEST_CASE("positional linker words are inputs when they name a file", "[allocscc][args]") {
    const std::string dir = TEST_BUILD_DIR;
    std::ofstream(dir + "/positional.o") << "x";
    auto l = ac::read_link_line({"main.o", "-Wl," + dir + "/positional.o,-rpath," + dir, "-Wl,no-such-file.o"});
    CHECK(facts(l) == "file:" + dir + "/positional.o");
    REQUIRE(l.inputs.size() == 2);
    CHECK(ac::render_link(l, {{}, {{1, "copy.o"}}, {}}) ==
          std::vector<std::string>{"main.o", "-Xlinker", "copy.o", "-Xlinker", "-rpath", "-Xlinker", dir, "-Wl,no-such-file.o"});
}
