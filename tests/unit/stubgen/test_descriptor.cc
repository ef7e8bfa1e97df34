// SPDX-License-Identifier: MIT
// The descriptor parser: the grammar's accepted forms, every kind of error with its position, descriptor
// files, whole-set checks, and a deterministic fuzz loop (mutations of valid lists must parse or fail with
// a parse_error inside the text, never crash or throw anything else).
#include <catch2/catch.hpp>

#include <random>

#include "stubgen/descriptor.h"

namespace sg = mallochooks::stubgen;

namespace {

// The message of the parse_error `text` raises, or "" when it parses.
std::string error_of(std::string_view text, sg::fn_kind kind = sg::fn_kind::alloc) {
    try {
        sg::parse_list(text, kind, "V");
    } catch (const sg::parse_error &e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST_CASE("descriptor lists parse into names, argument codes and results", "[stubgen][descriptor]") {
    auto ds = sg::parse_list("  xmalloc(Z)p\txcalloc(zZ)p\n xrealloc(pZ)p  ", sg::fn_kind::alloc, "ALLOCSCC_ALLOC_FNS");
    REQUIRE(ds.size() == 3);
    CHECK(ds[0].name == "xmalloc");
    CHECK(ds[0].params == "Z");
    CHECK(ds[0].result == 'p');
    CHECK(ds[0].text == "xmalloc(Z)p");
    CHECK(ds[0].origin() == "ALLOCSCC_ALLOC_FNS:1:3");
    CHECK(ds[1].params == "zZ");
    CHECK(ds[1].param('Z') == std::optional<std::size_t>(1));
    CHECK(ds[2].origin() == "ALLOCSCC_ALLOC_FNS:2:2");
    CHECK(ds[2].param('p') == std::optional<std::size_t>(0));

    auto frees = sg::parse_list("xfree(P) pool_put(aP)i", sg::fn_kind::free, "F");
    REQUIRE(frees.size() == 2);
    CHECK(frees[0].result == 0);
    CHECK(frees[0].frees());
    CHECK(frees[1].result == 'i');

    // zlib's zcalloc(voidpf opaque, uInt items, uInt size): 32-bit count and size.
    auto z = sg::parse_list("zcalloc(anN)p", sg::fn_kind::alloc, "Z").front();
    CHECK(z.param(sg::arg_role::count) == std::optional<std::size_t>(1));
    CHECK(z.param(sg::arg_role::size) == std::optional<std::size_t>(2));
    CHECK(sg::find_arg_code('N')->c_type == "unsigned int");
    CHECK(sg::find_arg_code('n')->c_type == "unsigned int");

    auto subs = sg::parse_list("pool_alloc(aZ)p pool_free(aP) arena::alloc(aAZ)p", sg::fn_kind::suballoc, "S");
    REQUIRE(subs.size() == 3);
    CHECK(subs[2].name == "arena::alloc");
    CHECK(sg::parse_list("   ", sg::fn_kind::alloc, "E").empty());
    CHECK(sg::parse_list("", sg::fn_kind::alloc, "E").empty());
}

TEST_CASE("malformed descriptors are reported with their line and column", "[stubgen][descriptor]") {
    CHECK(error_of("xmalloc") == "V:1:8: expected '(' after the function name 'xmalloc', found the end");
    CHECK(error_of("xmalloc(Z") == "V:1:10: expected ')' to close the arguments of 'xmalloc', found the end");
    CHECK(error_of("xmalloc(Zq)p") == "V:1:10: unknown argument code 'q' (one of Z z N n A p P a i u l L d)");
    CHECK(error_of("xmalloc(Z)x") ==
          "V:1:11: unknown result code 'x' (p for the new chunk, one of a i u l L d, or nothing for void)");
    CHECK(error_of("xmalloc(Z)pp") == "V:1:12: expected a blank after the descriptor of 'xmalloc', found 'p'");
    CHECK(error_of("xmalloc(Z)p 9x(Z)p") == "V:1:13: expected a function name, found '9'");
    CHECK(error_of("ok(Z)p\n  a:b(Z)p") == "V:2:5: expected '::' in a qualified name, found 'b'");
    CHECK(error_of("a::(Z)p") == "V:1:4: expected a name after '::', found '('");
    CHECK(error_of("x\x01(Z)p") == "V:1:2: expected '(' after the function name 'x', found 0x01");
    // Structural rules, at the descriptor's start.
    CHECK(error_of("xmalloc(Z)") == "V:1:1: 'xmalloc(Z)': an allocation function must return the chunk: end it with ')p'");
    CHECK(error_of(" xmalloc(ZZ)p") == "V:1:2: 'xmalloc(ZZ)p': more than one 'Z' argument");
    CHECK(error_of("xcalloc(z)p") == "V:1:1: 'xcalloc(z)p': 'z' (element count) needs a 'Z' or 'N' (element size)");
    CHECK(error_of("zcalloc(an)p") == "V:1:1: 'zcalloc(an)p': 'n' (element count) needs a 'Z' or 'N' (element size)");
    CHECK(error_of("f(ZN)p") == "V:1:1: 'f(ZN)p': one size argument: 'Z' (size_t) or 'N' (32 bits), not both");
    CHECK(error_of("f(znN)p") == "V:1:1: 'f(znN)p': one count argument: 'z' (size_t) or 'n' (32 bits), not both");
    CHECK(error_of("f(NN)p") == "V:1:1: 'f(NN)p': more than one 'N' argument");
    CHECK(error_of("f(PN)", sg::fn_kind::free) == "V:1:1: 'f(PN)': a free function ('P') takes no size, count, alignment or old chunk");
    CHECK(error_of("xfree(Z)", sg::fn_kind::free) == "V:1:1: 'xfree(Z)': a free function needs a 'P' argument (the chunk it frees)");
    CHECK(error_of("xfree(PZ)", sg::fn_kind::free) ==
          "V:1:1: 'xfree(PZ)': a free function ('P') takes no size, count, alignment or old chunk");
    CHECK(error_of("odd(P)p", sg::fn_kind::suballoc) == "V:1:1: 'odd(P)p': a free function ('P') cannot return a chunk ('p')");
    CHECK(error_of("pool(a)p", sg::fn_kind::suballoc) ==
          "V:1:1: 'pool(a)p': a suballocator's allocation function needs a 'Z' or 'N' argument: its chunks' size is reported to "
          "the heap index");
    CHECK(error_of("pool(a)", sg::fn_kind::suballoc) ==
          "V:1:1: 'pool(a)': a suballocator function either returns a chunk (')p') or frees one ('P')");
}

TEST_CASE("descriptor files name the kind of each line", "[stubgen][descriptor]") {
    const char *text =
        "# the program's allocators\n"
        "alloc    xmalloc(Z)p xcalloc(zZ)p   # and more\n"
        "\n"
        "free xfree(P)\n"
        "  suballoc pool_alloc(aZ)p pool_free(aP)\n";
    auto ds = sg::parse_file(text, "fns.txt");
    REQUIRE(ds.size() == 5);
    CHECK(ds[0].kind == sg::fn_kind::alloc);
    CHECK(ds[1].origin() == "fns.txt:2:22");
    CHECK(ds[2].kind == sg::fn_kind::free);
    CHECK(ds[3].kind == sg::fn_kind::suballoc);
    CHECK(ds[4].origin() == "fns.txt:5:28");

    auto file_error = [](const char *t) {
        try {
            sg::parse_file(t, "f");
        } catch (const sg::parse_error &e) {
            return std::string(e.what());
        }
        return std::string();
    };
    CHECK(file_error("allok xmalloc(Z)p\n") == "f:1:1: expected 'alloc', 'free' or 'suballoc' at the start of the line, found 'allok'");
    CHECK(file_error("alloc\n") == "f:1:6: expected descriptors after 'alloc'");
    CHECK(file_error("free xfree(P)\n(\n") == "f:2:1: expected 'alloc', 'free' or 'suballoc' at the start of the line, found '('");
    CHECK(file_error("alloc xmalloc(Z)p\nfree xfree(Z)\n") == "f:2:6: 'xfree(Z)': a free function needs a 'P' argument (the chunk it frees)");
}

TEST_CASE("a set may not declare a name twice or a malloc-family function", "[stubgen][descriptor]") {
    auto a = sg::parse_list("xmalloc(Z)p", sg::fn_kind::alloc, "A");
    auto b = sg::parse_list("xfree(P)  xmalloc(P)", sg::fn_kind::free, "F");
    std::vector<sg::descriptor> all = a;
    all.insert(all.end(), b.begin(), b.end());
    CHECK_THROWS_WITH(sg::check_set(all), "F:1:11: 'xmalloc' is declared twice (first at A:1:1)");
    auto fam = sg::parse_list("realloc(pZ)p", sg::fn_kind::alloc, "A");
    CHECK_THROWS_WITH(sg::check_set(fam),
                      "A:1:1: 'realloc' is a malloc-family function, hooked already: declare only the program's own functions");
    // C++'s operators are members of the family too, by the family's names and by any other mangling
    // (issue 14: a declared _Znwm(Z)p used to be taken for a shared library's function).
    CHECK_THROWS_WITH(sg::check_set(sg::parse_list("_Znwm(Z)p", sg::fn_kind::alloc, "A")),
                      "A:1:1: '_Znwm' is C++'s operator new(unsigned long), a function of the malloc family: the "
                      "hooks see every call of it with its caller, an operator the program defines itself included, "
                      "without a declaration (docs/cxx.md)");
    CHECK_THROWS_WITH(sg::check_set(sg::parse_list("_Znwj(N)p", sg::fn_kind::alloc, "A")),
                      Catch::Matchers::Contains("is C++'s operator new(unsigned int), a function of the malloc family"));
    CHECK_THROWS_WITH(sg::check_set(sg::parse_list("x(P) _ZdaPvm(PL)", sg::fn_kind::free, "F")),
                      Catch::Matchers::Contains("F:1:6: '_ZdaPvm' is C++'s operator delete[](void*, unsigned long)"));
    CHECK_NOTHROW(sg::check_set(sg::parse_list("_ZN2ns6xallocEm(Z)p", sg::fn_kind::alloc, "A")));
    CHECK_NOTHROW(sg::check_set(a));
}

TEST_CASE("fuzz: mutated descriptor lists parse or fail with a position inside the text", "[stubgen][descriptor][fuzz]") {
    const std::vector<std::string> seeds = {
        "xmalloc(Z)p xcalloc(zZ)p xrealloc(pZ)p", "xfree(P) pool_free(aP)i", "pool_alloc(aAZ)p ns::make(iZ)p",
        "a(Z)p\nb(zZ)p\tc(pZ)p", "alloc x(Z)p # c\nfree y(P)\nsuballoc s(aZ)p",
    };
    const std::string alphabet = "ZzNnApPaiulLdx_:()# \t\n\r9\x01\xff";
    std::mt19937 rng(20240522);  // deterministic: a failure reproduces
    int parsed = 0, rejected = 0;
    for (int iteration = 0; iteration < 30000; ++iteration) {
        std::string text = seeds[rng() % seeds.size()];
        for (int edits = 1 + static_cast<int>(rng() % 4); edits > 0; --edits) {
            std::size_t at = text.empty() ? 0 : rng() % (text.size() + 1);
            char c = alphabet[rng() % alphabet.size()];
            switch (rng() % 3) {
            case 0: text.insert(at, 1, c); break;
            case 1: if (at < text.size()) text.erase(at, 1); break;
            default: if (at < text.size()) text[at] = c; break;
            }
        }
        const bool as_file = iteration % 2 == 1;
        const sg::fn_kind kind = static_cast<sg::fn_kind>(rng() % 3);
        try {
            auto ds = as_file ? sg::parse_file(text, "fuzz") : sg::parse_list(text, kind, "fuzz");
            // What parsed must re-parse to the same descriptors from their own text.
            for (const sg::descriptor &d : ds) {
                auto again = sg::parse_list(d.text, d.kind, "again");
                REQUIRE(again.size() == 1);
                REQUIRE(again[0].name == d.name);
                REQUIRE(again[0].params == d.params);
                REQUIRE(again[0].result == d.result);
            }
            ++parsed;
        } catch (const sg::parse_error &e) {
            // Lines start at 1; a column may point one past the last character (the end).
            REQUIRE(e.line() >= 1);
            REQUIRE(e.column() >= 1);
            std::size_t lines = 1 + static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
            REQUIRE(e.line() <= lines);
            REQUIRE(e.column() <= text.size() + 1);
            ++rejected;
        }
    }
    CHECK(parsed > 1000);
    CHECK(rejected > 1000);
}
