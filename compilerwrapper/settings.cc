// SPDX-License-Identifier: MIT
// Reads and checks allocscc's settings (see settings.h).
#include "compilerwrapper/settings.h"

#include "compilerwrapper/object_cache.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

namespace mallochooks::allocscc {

const std::vector<setting_info> known_settings = {
    {"ALLOCSCC_CC", "cc", "the C compiler driver allocscc runs (words split at blanks: `ccache gcc` works)"},
    {"ALLOCSCC_CXX", "c++", "the C++ compiler driver allocsc++ runs"},
    {"ALLOCSCC_ALLOC_FNS", "", "descriptors of the program's allocation functions: `xmalloc(Z)p xcalloc(zZ)p`"},
    {"ALLOCSCC_FREE_FNS", "", "descriptors of its free functions: `xfree(P)`"},
    {"ALLOCSCC_SUBALLOC_FNS", "", "descriptors of its suballocator functions (allocation and free)"},
    {"ALLOCSCC_FNS_FILE", "", "a descriptor file (same as the `--alloc-fns=FILE` option)"},
    {"ALLOCSCC_CACHE_DIR", "$XDG_CACHE_HOME/allocscc or ~/.cache/allocscc",
     "where compiled shims are kept for the next link; empty: no cache"},
    {"ALLOCSCC_RUNTIME_DIR", "found relative to allocscc (installed, moved or build tree)",
     "where libmallochooks.a is, overriding the search"},
    {"ALLOCSCC_KEEP_TEMPS", "0", "1: keep the private temporary directory of a link and print its path"},
    {"ALLOCSCC_VERBOSE", "0", "1: print what a link found in its inputs and the commands allocscc runs"},
};

namespace {

constexpr std::string_view prefix = "ALLOCSCC_";
constexpr std::string_view fns_option = "--alloc-fns=";

bool flag(const std::map<std::string, std::string> &vars, const char *name) {
    auto it = vars.find(name);
    if (it == vars.end() || it->second.empty() || it->second == "0") return false;
    if (it->second == "1") return true;
    throw settings_error(std::string(name) + "='" + it->second + "': expected 0 or 1");
}

std::vector<std::string> split_words(const std::string &s) {
    std::istringstream in(s);
    std::vector<std::string> words;
    for (std::string w; in >> w;) words.push_back(w);
    return words;
}

std::string read_file(const std::string &path, const std::string &what) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw settings_error(what + ": cannot read '" + path + "': " + std::strerror(errno));
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

}  // namespace

language language_from_name(const std::string &argv0) {
    std::string base = argv0.substr(argv0.find_last_of('/') + 1);
    return base.find("++") != std::string::npos ? language::cxx : language::c;
}

settings read_settings(char **env, language lang, const std::vector<std::string> &fns_files) {
    std::map<std::string, std::string> vars;
    for (char **e = env; e != nullptr && *e != nullptr; ++e) {
        std::string_view entry(*e);
        if (entry.substr(0, prefix.size()) != prefix) continue;
        std::size_t eq = entry.find('=');
        std::string name(entry.substr(0, eq));
        bool known = false;
        for (const setting_info &s : known_settings) known |= name == s.variable;
        if (!known) {
            std::string list;
            for (const setting_info &s : known_settings) list += std::string(list.empty() ? "" : ", ") + s.variable;
            throw settings_error("unknown setting " + name + " (known: " + list + ")");
        }
        vars[name] = eq == std::string_view::npos ? "" : std::string(entry.substr(eq + 1));
    }

    settings out;
    out.lang = lang;
    out.compiler_variable = lang == language::cxx ? "ALLOCSCC_CXX" : "ALLOCSCC_CC";
    auto cc = vars.find(out.compiler_variable);
    out.compiler = split_words(cc != vars.end() ? cc->second : (lang == language::cxx ? "c++" : "cc"));
    if (out.compiler.empty()) throw settings_error(out.compiler_variable + " is empty: it must name a compiler driver");
    auto cache = vars.find("ALLOCSCC_CACHE_DIR");
    out.cache_dir = cache != vars.end() ? cache->second : object_cache::default_dir();
    out.keep_temps = flag(vars, "ALLOCSCC_KEEP_TEMPS");
    // The runtime is found next to allocscc when the link needs it (runtime_dir.h), unless the user says.
    if (auto runtime = vars.find("ALLOCSCC_RUNTIME_DIR"); runtime != vars.end()) out.runtime_override = runtime->second;
    out.verbose = flag(vars, "ALLOCSCC_VERBOSE");

    auto add = [&](std::vector<stubgen::descriptor> more) {
        out.functions.insert(out.functions.end(), more.begin(), more.end());
    };
    const std::pair<const char *, stubgen::fn_kind> lists[] = {
        {"ALLOCSCC_ALLOC_FNS", stubgen::fn_kind::alloc},
        {"ALLOCSCC_FREE_FNS", stubgen::fn_kind::free},
        {"ALLOCSCC_SUBALLOC_FNS", stubgen::fn_kind::suballoc},
    };
    for (const auto &[name, kind] : lists)
        if (auto it = vars.find(name); it != vars.end()) add(stubgen::parse_list(it->second, kind, name));
    if (auto it = vars.find("ALLOCSCC_FNS_FILE"); it != vars.end() && !it->second.empty())
        add(stubgen::parse_file(read_file(it->second, "ALLOCSCC_FNS_FILE"), it->second));

    // allocscc's own option, taken off the command line by read_command_args.
    for (const std::string &path : fns_files)
        add(stubgen::parse_file(read_file(path, std::string(fns_option) + path), path));
    stubgen::check_set(out.functions);
    return out;
}

}  // namespace mallochooks::allocscc
