// SPDX-License-Identifier: MIT
// The shim generator: its output for one descriptor of each shape against a golden file, that the output
// compiles warning-free with gcc and clang, and the link flags for both linkages.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "stubgen/descriptor.h"
#include "stubgen/shim_writer.h"

namespace sg = mallochooks::stubgen;

namespace {

std::vector<sg::shim_function> sample() {
    std::vector<sg::descriptor> all = sg::parse_list("xmalloc(Z)p xcalloc(zZ)p xrealloc(pZ)p xmemalign(AZ)p",
                                                     sg::fn_kind::alloc, "ALLOCSCC_ALLOC_FNS");
    for (auto more : {sg::parse_list("xfree(P) xfree_status(P)i", sg::fn_kind::free, "ALLOCSCC_FREE_FNS"),
                      sg::parse_list("pool_alloc(aZ)p pool_calloc(azZ)p pool_resize(apZ)p pool_free(aP)",
                                     sg::fn_kind::suballoc, "ALLOCSCC_SUBALLOC_FNS")})
        all.insert(all.end(), more.begin(), more.end());
    return sg::with_plain_symbols(all);
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
    const std::string out = sg::write_shims(sample(), sg::linkage::wrap);
    if (std::getenv("STUBGEN_UPDATE_GOLDEN") != nullptr) std::ofstream(golden) << out;
    CHECK(out == read(golden));
}

TEST_CASE("shims compile without warnings with gcc and clang, in both linkages", "[stubgen][shims]") {
    for (auto how : {sg::linkage::wrap, sg::linkage::defsym}) {
        const std::string dir = std::string(TEST_BUILD_DIR);
        const std::string source = dir + "/shims_compile_test.c";
        std::ofstream(source) << sg::write_shims(sample(), how);
        for (const char *cc : {"gcc", "clang"}) {
            const std::string cmd = std::string(cc) + " -std=c11 -Wall -Wextra -Werror -O2 -fPIC -fexceptions -c " + source +
                                    " -o " + dir + "/shims_compile_test.o";
            INFO(cmd);
            CHECK(std::system(cmd.c_str()) == 0);
        }
    }
}

TEST_CASE("link flags route callers to the stubs", "[stubgen][shims]") {
    auto fns = sg::with_plain_symbols(sg::parse_list("xmalloc(Z)p _Z7xmallocm(Z)p", sg::fn_kind::alloc, "A"));
    CHECK(sg::link_flags(fns, sg::linkage::wrap) == std::vector<std::string>{"-Wl,--wrap=xmalloc", "-Wl,--wrap=_Z7xmallocm"});
    CHECK(sg::link_flags(fns, sg::linkage::defsym) ==
          std::vector<std::string>{"-Wl,--defsym=xmalloc=__mallochooks_stub_xmalloc",
                                   "-Wl,--defsym=_Z7xmallocm=__mallochooks_stub__Z7xmallocm"});
    CHECK(sg::real_symbol("xmalloc", sg::linkage::defsym) == "__mallochooks_real_xmalloc");
    CHECK_THROWS_WITH(sg::with_plain_symbols(sg::parse_list(" ns::alloc(Z)p", sg::fn_kind::alloc, "A")),
                      "A:1:2: 'ns::alloc' is a qualified C++ name: give its mangled symbol, or build with allocscc, which finds it");
}
