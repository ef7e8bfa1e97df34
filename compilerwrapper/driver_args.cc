// SPDX-License-Identifier: MIT
// Reads gcc/clang driver command lines (see driver_args.h).
//
// The rule for "does it link" follows gcc.c's and clang's driver: -c, -S and -E (and -M/-MM, which imply
// -E; -MD/-MMD do not) stop before the link; so do -fsyntax-only, the informational options (--version,
// -dump*, -print-*, --help, -###), `-v` without inputs, no inputs at all, and a relocatable link (-r),
// which makes an object rather than an output.  Options that take a separate value are listed so that
// their value is never mistaken for an input file.
#include "compilerwrapper/driver_args.h"

#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>

namespace mallochooks::allocscc {

namespace {

// libiberty's buildargv: blanks separate, quotes group, backslash escapes (inside quotes too).
std::vector<std::string> split_response_file(const std::string &text) {
    std::vector<std::string> out;
    std::string cur;
    bool in_word = false;
    char quote = 0;
    for (std::size_t i = 0; i < text.size(); ++i) {
        char c = text[i];
        if (c == '\\' && i + 1 < text.size()) {
            cur += text[++i];
            in_word = true;
        } else if (quote != 0) {
            if (c == quote) quote = 0;
            else cur += c;
        } else if (c == '\'' || c == '"') {
            quote = c;
            in_word = true;
        } else if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
            if (in_word) out.push_back(cur);
            cur.clear();
            in_word = false;
        } else {
            cur += c;
            in_word = true;
        }
    }
    if (in_word) out.push_back(cur);
    return out;
}

void expand_into(const std::vector<std::string> &args, std::vector<std::string> &out, std::set<std::string> &open,
                 int depth) {
    for (const std::string &a : args) {
        if (a.size() < 2 || a[0] != '@') {
            out.push_back(a);
            continue;
        }
        std::string path = a.substr(1);
        std::ifstream in(path, std::ios::binary);
        if (!in) {  // not a readable file: an ordinary argument (libiberty does the same)
            out.push_back(a);
            continue;
        }
        if (depth > 64 || open.count(path) != 0) throw std::runtime_error("response file '" + path + "' includes itself");
        std::ostringstream s;
        s << in.rdbuf();
        open.insert(path);
        expand_into(split_response_file(s.str()), out, open, depth + 1);
        open.erase(path);
    }
}

bool starts_with(const std::string &s, std::string_view p) { return s.compare(0, p.size(), p) == 0; }

// Options whose value is the next argument when not joined.  gcc's and clang's, as far as C/C++ builds
// use them.
const std::set<std::string, std::less<>> separate_value_options = {
    "-o", "-x", "-I", "-L", "-l", "-D", "-U", "-include", "-imacros", "-idirafter", "-iprefix",
    "-iwithprefix", "-iwithprefixbefore", "-isystem", "-isysroot", "-iquote", "-imultilib", "-MF", "-MT",
    "-MQ", "-Xlinker", "-Xassembler", "-Xpreprocessor", "-Xclang", "-aux-info", "-T", "-u", "-z", "-e",
    "--param", "-A", "-B", "-G", "-target", "-arch", "-dumpbase", "-dumpbase-ext", "-dumpdir", "-mllvm",
    "--sysroot", "-wrapper", "-ivfsoverlay", "-isystem-after", "-iframework", "-F", "-specs",
    "--include-directory", "--library-directory", "--output", "--language", "-Xarch_host",
};

const std::set<std::string, std::less<>> source_extensions = {
    "c", "i", "ii", "cc", "cp", "cxx", "cpp", "CPP", "c++", "C", "m", "mi", "mm", "M", "mii", "s", "S",
    "sx", "h", "hh", "hpp", "hxx", "H", "h++", "tcc", "f", "for", "f90", "f95", "F", "F90", "go", "d",
};

// Linker arguments that change how the linker searches or reads what follows.
struct linker_state {
    bool static_only = false;
    bool whole_archive = false;
};

}  // namespace

std::vector<std::string> expand_response_files(const std::vector<std::string> &args) {
    std::vector<std::string> out;
    std::set<std::string> open;
    expand_into(args, out, open, 0);
    return out;
}

bool takes_separate_value(const std::string &arg) { return separate_value_options.count(arg) != 0; }

std::string language_of(const std::string &path) {
    std::size_t slash = path.find_last_of('/');
    std::size_t dot = path.find_last_of('.');
    if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) return "";
    std::string ext = path.substr(dot + 1);
    return source_extensions.count(ext) != 0 ? ext : "";
}

driver_command parse_driver_args(const std::vector<std::string> &args) {
    driver_command cmd;
    std::string stop;            // the first option that stops before the link
    bool verbose_only = false;   // -v
    bool has_md = false;         // -MD / -MMD: dependencies as a side effect, the compile goes on
    bool has_m = false;          // -M / -MM: preprocess only
    std::string language;        // -x in force
    linker_state ld;

    // Linker options given with -Wl, / -Xlinker, read in order with the inputs.
    std::vector<std::string> pending_linker;
    auto linker_option = [&](const std::vector<std::string> &opts) {
        for (std::size_t i = 0; i < opts.size(); ++i) {
            const std::string &o = opts[i];
            auto value = [&](std::string_view name) -> std::optional<std::string> {
                if (o == name && i + 1 < opts.size()) return opts[++i];
                if (starts_with(o, std::string(name) + "=")) return o.substr(name.size() + 1);
                return std::nullopt;
            };
            if (o == "-Bstatic" || o == "-dn" || o == "-non_shared" || o == "-static") ld.static_only = true;
            else if (o == "-Bdynamic" || o == "-dy" || o == "-call_shared") ld.static_only = cmd.static_link;
            else if (o == "--whole-archive") ld.whole_archive = true;
            else if (o == "--no-whole-archive") ld.whole_archive = false;
            else if (o == "-r" || o == "--relocatable" || o == "-i") cmd.relocatable = true;
            else if (o == "-shared" || o == "-Bshareable") cmd.shared = true;
            else if (starts_with(o, "-L") && o.size() > 2) cmd.library_dirs.push_back(o.substr(2));
            else if (auto v = value("--library-path")) cmd.library_dirs.push_back(*v);
            else if (starts_with(o, "-l") && o.size() > 2)
                cmd.inputs.push_back({link_input::kind::library, o.substr(2), "", ld.static_only, ld.whole_archive});
            else if (auto v = value("--library")) cmd.inputs.push_back({link_input::kind::library, *v, "", ld.static_only, ld.whole_archive});
            else if (o == "-u" && i + 1 < opts.size()) cmd.undefined.push_back(opts[++i]);
            else if (auto v = value("--undefined")) cmd.undefined.push_back(*v);
            else if (starts_with(o, "-u") && o.size() > 2) cmd.undefined.push_back(o.substr(2));
        }
    };
    auto split_commas = [](const std::string &s) {
        std::vector<std::string> out;
        std::size_t from = 0;
        for (std::size_t comma; (comma = s.find(',', from)) != std::string::npos; from = comma + 1)
            out.push_back(s.substr(from, comma - from));
        out.push_back(s.substr(from));
        return out;
    };

    for (std::size_t i = 0; i < args.size(); ++i) {
        const std::string &a = args[i];
        auto next = [&]() -> std::string { return i + 1 < args.size() ? args[++i] : std::string(); };
        if (a == "-" || a.empty() || a[0] != '-') {
            if (!language.empty() && language != "none") {
                cmd.inputs.push_back({link_input::kind::source, a, language, false, false});
            } else if (a == "-" ) {
                cmd.inputs.push_back({link_input::kind::source, a, "c", false, false});  // gcc refuses without -x
            } else if (!language_of(a).empty()) {
                cmd.inputs.push_back({link_input::kind::source, a, "", false, false});
            } else {
                cmd.inputs.push_back({link_input::kind::file, a, "", ld.static_only, ld.whole_archive});
            }
            continue;
        }
        // Stops before the link.
        if (a == "-c" || a == "-S" || a == "-E" || a == "-fsyntax-only" || a == "-###" || a == "--version" ||
            a == "-dumpversion" || a == "-dumpfullversion" || a == "-dumpmachine" || a == "-dumpspecs" ||
            a == "--help" || starts_with(a, "--help=") || a == "--target-help" || a == "-fdump-ada-spec" ||
            starts_with(a, "-print-") || starts_with(a, "--print-") || a == "-emit-ast" || a == "--precompile") {
            if (stop.empty()) stop = a;
            continue;
        }
        if (a == "-M" || a == "-MM") { has_m = true; continue; }
        if (a == "-MD" || a == "-MMD") { has_md = true; continue; }
        if (a == "-v") { verbose_only = true; continue; }
        if (a == "-r") { cmd.relocatable = true; continue; }
        if (a == "-shared") { cmd.shared = true; continue; }
        if (a == "-static" || a == "-static-pie") { cmd.static_link = true; ld.static_only = true; continue; }
        if (a == "-flto" || starts_with(a, "-flto=")) { cmd.lto = true; continue; }
        if (a == "-fno-lto") { cmd.lto = false; continue; }
        if (starts_with(a, "-fuse-ld=")) { cmd.fuse_ld = a.substr(9); continue; }
        if (a == "-m32" || a == "-m64" || a == "-mx32" || starts_with(a, "--target=") || starts_with(a, "-march=") ||
            starts_with(a, "--sysroot=") || starts_with(a, "-B")) {
            cmd.target_flags.push_back(a);
            if (a == "-B") cmd.target_flags.push_back(next());
            continue;
        }
        if (a == "-target" || a == "--sysroot") { cmd.target_flags.push_back(a); cmd.target_flags.push_back(next()); continue; }
        if (a == "-o" || a == "--output") { cmd.output = next(); continue; }
        if (starts_with(a, "-o") ) { cmd.output = a.substr(2); continue; }
        if (starts_with(a, "--output=")) { cmd.output = a.substr(9); continue; }
        if (a == "-x" || a == "--language") { language = next(); continue; }
        if (starts_with(a, "-x")) { language = a.substr(2); continue; }
        if (starts_with(a, "--language=")) { language = a.substr(11); continue; }
        if (a == "-L" || a == "--library-directory") { cmd.library_dirs.push_back(next()); continue; }
        if (starts_with(a, "-L")) { cmd.library_dirs.push_back(a.substr(2)); continue; }
        if (starts_with(a, "--library-directory=")) { cmd.library_dirs.push_back(a.substr(20)); continue; }
        if (a == "-l") { cmd.inputs.push_back({link_input::kind::library, next(), "", ld.static_only, ld.whole_archive}); continue; }
        if (starts_with(a, "-l")) { cmd.inputs.push_back({link_input::kind::library, a.substr(2), "", ld.static_only, ld.whole_archive}); continue; }
        if (a == "-u") { cmd.undefined.push_back(next()); continue; }
        if (starts_with(a, "-Wl,")) { linker_option(split_commas(a.substr(4))); continue; }
        if (a == "-Xlinker") { pending_linker.push_back(next()); linker_option(pending_linker); pending_linker.clear(); continue; }
        if (takes_separate_value(a)) { next(); continue; }
        // Anything else (warnings, -O, -f..., -D..., unknown options) does not change what is linked.
    }

    // The driver puts -static before every input of the link: it applies to all -l, wherever it stood.
    if (cmd.static_link)
        for (link_input &in : cmd.inputs) in.static_only = true;
    if (has_m && !has_md && stop.empty()) stop = "-M";
    bool any_input = !cmd.inputs.empty();
    if (!stop.empty()) cmd.reason = stop;
    else if (!any_input) cmd.reason = verbose_only ? "-v without inputs" : "no input files";
    else if (cmd.relocatable) cmd.reason = "-r (a relocatable link makes an object)";
    cmd.links = cmd.reason.empty();
    return cmd;
}

link_split split_link_args(const std::vector<std::string> &args) {
    // Options that only the link step needs (with -c they are ignored or warned about).
    static const std::set<std::string, std::less<>> link_only = {
        "-shared", "-static", "-static-pie", "-pie", "-no-pie", "-rdynamic", "-nostdlib", "-nostartfiles",
        "-nodefaultlibs", "-nolibc", "-s", "-static-libgcc", "-shared-libgcc", "-static-libstdc++", "-pthread-link",
    };
    static const std::set<std::string, std::less<>> link_only_with_value = {"-l", "-u", "-T", "-Xlinker", "-z", "-e"};
    link_split out;
    std::string language;
    for (std::size_t i = 0; i < args.size(); ++i) {
        const std::string &a = args[i];
        const bool has_next = i + 1 < args.size();
        if (a == "-" || a.empty() || a[0] != '-') {
            const bool source = (!language.empty() && language != "none") || a == "-" || !language_of(a).empty();
            if (source) {
                out.source_slots.push_back(out.link_args.size());
                out.source_languages.push_back(language == "none" ? "" : (a == "-" && language.empty() ? "c" : language));
            }
            out.link_args.push_back(a);
            continue;
        }
        if (a == "-x" || a == "--language") { if (has_next) language = args[++i]; continue; }
        if (starts_with(a, "--language=")) { language = a.substr(11); continue; }
        if (starts_with(a, "-x")) { language = a.substr(2); continue; }
        if (a == "-o" || a == "--output") {
            out.link_args.push_back(a);
            if (has_next) out.link_args.push_back(args[++i]);
            continue;
        }
        if ((starts_with(a, "-o") && a != "-o") || starts_with(a, "--output=")) { out.link_args.push_back(a); continue; }
        if (link_only_with_value.count(a) != 0) {
            out.link_args.push_back(a);
            if (has_next) out.link_args.push_back(args[++i]);
            continue;
        }
        if (link_only.count(a) != 0 || starts_with(a, "-Wl,") || (starts_with(a, "-l") && a.size() > 2) ||
            starts_with(a, "-fuse-ld=") || starts_with(a, "-T")) {
            out.link_args.push_back(a);
            continue;
        }
        out.link_args.push_back(a);
        out.compile_args.push_back(a);
        if (takes_separate_value(a) && has_next) {
            out.link_args.push_back(args[i + 1]);
            out.compile_args.push_back(args[++i]);
        }
    }
    return out;
}

}  // namespace mallochooks::allocscc
