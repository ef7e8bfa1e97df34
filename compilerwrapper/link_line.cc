// SPDX-License-Identifier: MIT
// Reads gcc/clang driver command lines into the link-line model and renders commands from it (see
// link_line.h).
//
// The rule for "does it link" follows gcc.c's and clang's driver: -c, -S and -E (and -M/-MM, which imply
// -E; -MD/-MMD do not) stop before the link; so do -fsyntax-only, the informational options (--version,
// -dump*, -print-*, --help, -###), `-v` without inputs, no inputs at all, and a relocatable link (-r),
// which makes an object rather than an output.  Options that take a separate value are listed so that
// their value is never mistaken for an input file.
#include "compilerwrapper/link_line.h"

#include <set>
#include <sys/stat.h>

#include "compilerwrapper/command_args.h"
#include "compilerwrapper/linker_options.h"

namespace mallochooks::allocscc {

namespace {

bool starts_with(const std::string &s, std::string_view p) { return s.compare(0, p.size(), p) == 0; }

// Driver options whose value is the next argument when not joined.  gcc's and clang's, as far as C/C++
// builds use them.
const std::set<std::string, std::less<>> separate_value_options = {
    "-o", "-x", "-I", "-L", "-l", "-D", "-U", "-include", "-imacros", "-idirafter", "-iprefix",
    "-iwithprefix", "-iwithprefixbefore", "-isystem", "-isysroot", "-iquote", "-imultilib", "-MF", "-MT",
    "-MQ", "-Xlinker", "-Xassembler", "-Xpreprocessor", "-Xclang", "-aux-info", "-T", "-u", "-z", "-e",
    "--param", "-A", "-B", "-G", "-target", "-arch", "-dumpbase", "-dumpbase-ext", "-dumpdir", "-mllvm",
    "--sysroot", "-wrapper", "-ivfsoverlay", "-isystem-after", "-iframework", "-F", "-specs",
    "--include-directory", "--library-directory", "--output", "--language", "-Xarch_host", "--for-linker",
    "--entry",
};

const std::set<std::string, std::less<>> source_extensions = {
    "c", "i", "ii", "cc", "cp", "cxx", "cpp", "CPP", "c++", "C", "m", "mi", "mm", "M", "mii", "s", "S",
    "sx", "h", "hh", "hpp", "hxx", "H", "h++", "tcc", "f", "for", "f90", "f95", "F", "F90", "go", "d",
};

// Driver options that only the link step needs (with -c they are ignored or warned about).
const std::set<std::string, std::less<>> link_only = {
    "-shared", "-static", "-static-pie", "-pie", "-no-pie", "-rdynamic", "-nostdlib", "-nostartfiles",
    "-nodefaultlibs", "-nolibc", "-s", "-static-libgcc", "-shared-libgcc", "-static-libstdc++", "-pthread-link",
};
const std::set<std::string, std::less<>> link_only_with_value = {"-u", "-T", "-z", "-e", "--entry"};

std::vector<std::string> split_commas(const std::string &s) {
    std::vector<std::string> out;
    std::size_t from = 0;
    for (std::size_t comma; (comma = s.find(',', from)) != std::string::npos; from = comma + 1)
        out.push_back(s.substr(from, comma - from));
    out.push_back(s.substr(from));
    return out;
}

bool is_file(const std::string &path) {
    struct stat st;
    return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

class line_reader {
public:
    link_line read(const std::vector<std::string> &args) {
        std::string stop;            // the first option that stops before the link
        bool verbose_only = false;   // -v
        bool has_md = false;         // -MD / -MMD: dependencies as a side effect, the compile goes on
        bool has_m = false;          // -M / -MM: preprocess only
        for (std::size_t i = 0; i < args.size(); ++i) {
            const std::string &a = args[i];
            const bool has_next = i + 1 < args.size();
            // An option with its separate value as one argument of the model.
            auto with_value = [&](line_arg::role r) -> std::string {
                std::vector<std::string> words{a};
                if (has_next) words.push_back(args[++i]);
                add_arg(r, words);
                return words.size() > 1 ? words[1] : std::string();
            };
            if (a == "-" || a.empty() || a[0] != '-') {
                add_arg(line_arg::role::input, {a});
                if (!language_.empty() && language_ != "none") add_input(link_input::kind::source, a, language_);
                else if (a == "-") add_input(link_input::kind::source, a, "c");  // gcc refuses it without -x
                else if (!language_of(a).empty()) add_input(link_input::kind::source, a, "");
                else add_input(link_input::kind::file, a, "");
                continue;
            }
            // Stops before the link.
            if (a == "-c" || a == "-S" || a == "-E" || a == "-fsyntax-only" || a == "-###" || a == "--version" ||
                a == "-dumpversion" || a == "-dumpfullversion" || a == "-dumpmachine" || a == "-dumpspecs" ||
                a == "--help" || starts_with(a, "--help=") || a == "--target-help" || a == "-fdump-ada-spec" ||
                starts_with(a, "-print-") || starts_with(a, "--print-") || a == "-emit-ast" || a == "--precompile") {
                if (stop.empty()) stop = a;
                add_arg(line_arg::role::compile, {a});
                continue;
            }
            if (a == "-M" || a == "-MM") has_m = true;
            if (a == "-MD" || a == "-MMD") has_md = true;
            if (a == "-v") verbose_only = true;
            if (a == "-r") line_.relocatable = true;
            if (a == "-shared") line_.shared = true;
            if (a == "-static-libstdc++") line_.static_libstdcxx = true;
            if (a == "-static" || a == "-static-pie") {
                line_.static_link = true;
                state_.static_only = true;
            }
            if (a == "-flto" || starts_with(a, "-flto=")) line_.lto = true;
            if (a == "-fno-lto") line_.lto = false;
            if (link_only.count(a) != 0) {
                add_arg(line_arg::role::link, {a});
                continue;
            }
            if (starts_with(a, "-fuse-ld=")) {
                line_.fuse_ld = a.substr(9);
                add_arg(line_arg::role::link, {a});
                continue;
            }
            if (a == "-m32" || a == "-m64" || a == "-mx32" || starts_with(a, "--target=") || starts_with(a, "-march=") ||
                starts_with(a, "--sysroot=") || starts_with(a, "-B") || a == "-target" || a == "--sysroot") {
                line_.target_flags.push_back(a);
                if (a == "-B" || a == "-target" || a == "--sysroot") line_.target_flags.push_back(with_value(line_arg::role::compile));
                else add_arg(line_arg::role::compile, {a});
                continue;
            }
            if (a == "-o" || a == "--output") { line_.output = with_value(line_arg::role::output); continue; }
            if (starts_with(a, "-o")) { line_.output = a.substr(2); add_arg(line_arg::role::output, {a}); continue; }
            if (starts_with(a, "--output=")) { line_.output = a.substr(9); add_arg(line_arg::role::output, {a}); continue; }
            if (a == "-x" || a == "--language") { language_ = with_value(line_arg::role::language); continue; }
            if (starts_with(a, "-x")) { language_ = a.substr(2); add_arg(line_arg::role::language, {a}); continue; }
            if (starts_with(a, "--language=")) { language_ = a.substr(11); add_arg(line_arg::role::language, {a}); continue; }
            if (a == "-L" || a == "--library-directory") { line_.library_dirs.push_back(with_value(line_arg::role::compile)); continue; }
            if (starts_with(a, "-L")) { line_.library_dirs.push_back(a.substr(2)); add_arg(line_arg::role::compile, {a}); continue; }
            if (starts_with(a, "--library-directory=")) {
                line_.library_dirs.push_back(a.substr(20));
                add_arg(line_arg::role::compile, {a});
                continue;
            }
            if (a == "-l") {
                const std::string name = with_value(line_arg::role::input);
                add_input(link_input::kind::library, name, "");
                continue;
            }
            if (starts_with(a, "-l")) {
                add_arg(line_arg::role::input, {a});
                add_input(link_input::kind::library, a.substr(2), "");
                continue;
            }
            if (a == "-u") { line_.undefined.push_back(with_value(line_arg::role::link)); continue; }
            if (a == "-T") {
                add_script(with_value(line_arg::role::link));
                continue;
            }
            if (starts_with(a, "-T")) {
                add_arg(line_arg::role::link, {a});
                add_script(a.substr(2));
                continue;
            }
            if (starts_with(a, "-Wl,")) {
                add_arg(line_arg::role::linker, {a});
                add_linker_words(split_commas(a.substr(4)));
                continue;
            }
            if (starts_with(a, "--for-linker=")) {
                add_arg(line_arg::role::linker, {a});
                add_linker_words({a.substr(13)});
                continue;
            }
            if (a == "-Xlinker" || a == "--for-linker") {
                const std::string word = with_value(line_arg::role::linker);
                add_linker_words({word});
                continue;
            }
            if (link_only_with_value.count(a) != 0) { with_value(line_arg::role::link); continue; }
            if (takes_separate_value(a)) { with_value(line_arg::role::compile); continue; }
            // Anything else (warnings, -O, -f..., -D..., unknown options) does not change what is linked.
            add_arg(line_arg::role::compile, {a});
        }

        // The driver puts -static before every input of the link: it applies to all -l, wherever it stood.
        if (line_.static_link)
            for (link_input &in : line_.inputs) in.static_only = true;
        if (has_m && !has_md && stop.empty()) stop = "-M";
        bool any_input = false;
        for (const link_input &in : line_.inputs) any_input |= !in.script;
        if (!stop.empty()) line_.reason = stop;
        else if (!any_input) line_.reason = verbose_only ? "-v without inputs" : "no input files";
        else if (line_.relocatable) line_.reason = "-r (a relocatable link makes an object)";
        line_.links = line_.reason.empty();
        return std::move(line_);
    }

private:
    // Linker arguments that change how the linker searches or reads what follows (--push-state saves them).
    struct linker_state {
        bool static_only = false;
        bool whole_archive = false;
    };

    void add_arg(line_arg::role r, std::vector<std::string> words) { line_.args.push_back({r, std::move(words)}); }

    link_input &add_input(link_input::kind k, const std::string &value, const std::string &language) {
        link_input in;
        in.what = k;
        in.value = value;
        in.language = language;
        in.static_only = state_.static_only;
        in.whole_archive = state_.whole_archive;
        in.arg = line_.args.size() - 1;
        line_.inputs.push_back(in);
        return line_.inputs.back();
    }

    void add_script(const std::string &path) {
        link_input &in = add_input(link_input::kind::file, path, "");
        in.script = true;
    }

    // The words of the last argument go to the linker: they are read with the words before them, so that
    // an option whose value is in the next -Wl, argument (`-Wl,-soname -Wl,libx.so.1`) is understood.
    // A linker response file is read as the linker reads it.
    void add_linker_words(const std::vector<std::string> &words) {
        const std::size_t arg = line_.args.size() - 1;
        for (const std::string &w : words) {
            std::vector<std::string> expanded{w};
            try {
                expanded = expand_response_files({w});
            } catch (const std::exception &) {
                // A response file that includes itself: the linker will say so; a compile step ignores it.
            }
            for (std::string &e : expanded) line_.linker_words.push_back({e, arg});
        }
        std::vector<std::string> text;
        for (const linker_word &w : line_.linker_words) text.push_back(w.text);
        while (next_word_ < text.size()) {
            const linker_word_reading r = read_linker_word(text, next_word_);
            if (r.incomplete) return;  // its value is in the next linker argument
            linker_option(r, next_word_, text);
            next_word_ += r.used;
        }
    }

    void linker_option(const linker_word_reading &r, std::size_t first, const std::vector<std::string> &text) {
        auto input = [&](link_input::kind k, const std::string &value) {
            link_input &in = add_input(k, value, "");
            in.arg = line_.linker_words[first].arg;
            in.first_word = first;
            in.end_word = first + r.used;
        };
        if (r.positional) {
            // An input file for the linker.  A word that names no file is left to the linker (the value of an
            // option allocscc does not know, or a file the linker will not find either).
            if (is_file(text[first])) input(link_input::kind::file, text[first]);
            return;
        }
        const std::string &n = r.name;
        const std::string value = r.value.value_or("");
        if (n == "l" || n == "library") input(link_input::kind::library, value);
        else if (n == "L" || n == "library-path") line_.library_dirs.push_back(value);
        else if (n == "o" || n == "output") line_.output = value;
        else if (n == "h" || n == "soname") line_.soname = value;
        else if (n == "version-script") line_.version_scripts.push_back(value);
        else if (n == "whole-archive") state_.whole_archive = true;
        else if (n == "no-whole-archive") state_.whole_archive = false;
        else if (n == "Bstatic" || n == "dn" || n == "non_shared" || n == "static") state_.static_only = true;
        else if (n == "Bdynamic" || n == "dy" || n == "call_shared") state_.static_only = line_.static_link;
        else if (n == "push-state") saved_.push_back(state_);
        else if (n == "pop-state" && !saved_.empty()) {
            state_ = saved_.back();
            saved_.pop_back();
        } else if (n == "r" || n == "relocatable" || n == "i" || n == "Ur") line_.relocatable = true;
        else if (n == "shared" || n == "Bshareable") line_.shared = true;
        else if (n == "u" || n == "undefined" || n == "require-defined") line_.undefined.push_back(value);
        else if (n == "T" || n == "script" || n == "dT" || n == "default-script") {
            input(link_input::kind::file, value);
            line_.inputs.back().script = true;
        }
    }

    link_line line_;
    std::string language_;  // -x in force
    linker_state state_;
    std::vector<linker_state> saved_;
    std::size_t next_word_ = 0;  // the first linker word not read yet
};

}  // namespace

bool takes_separate_value(const std::string &arg) { return separate_value_options.count(arg) != 0; }

std::string language_of(const std::string &path) {
    std::size_t slash = path.find_last_of('/');
    std::size_t dot = path.find_last_of('.');
    if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) return "";
    std::string ext = path.substr(dot + 1);
    return source_extensions.count(ext) != 0 ? ext : "";
}

link_line read_link_line(const std::vector<std::string> &args) { return line_reader().read(args); }

std::vector<std::string> render_link(const link_line &line, const link_edits &edits) {
    // The replacement of each linker word that starts a replaced input, and the words it stands for.
    std::map<std::size_t, const std::string *> word_replaced;
    std::set<std::size_t> word_dropped, arg_per_word;
    std::map<std::size_t, const std::string *> arg_replaced;
    for (const auto &[index, file] : edits.inputs) {
        const link_input &in = line.inputs.at(index);
        if (!in.first_word) {
            arg_replaced[in.arg] = &file;
            continue;
        }
        word_replaced[*in.first_word] = &file;
        for (std::size_t w = *in.first_word; w < *in.end_word; ++w) {
            if (w != *in.first_word) word_dropped.insert(w);
            arg_per_word.insert(line.linker_words[w].arg);
        }
    }
    std::vector<std::string> out = edits.first;
    for (std::size_t a = 0; a < line.args.size(); ++a) {
        const line_arg &arg = line.args[a];
        if (arg.what == line_arg::role::language) continue;
        if (auto r = arg_replaced.find(a); r != arg_replaced.end()) {
            out.push_back(*r->second);
        } else if (arg_per_word.count(a) != 0) {
            for (std::size_t w = 0; w < line.linker_words.size(); ++w) {
                if (line.linker_words[w].arg != a || word_dropped.count(w) != 0) continue;
                auto r = word_replaced.find(w);
                out.insert(out.end(), {"-Xlinker", r != word_replaced.end() ? *r->second : line.linker_words[w].text});
            }
        } else {
            out.insert(out.end(), arg.words.begin(), arg.words.end());
        }
    }
    out.insert(out.end(), edits.last.begin(), edits.last.end());
    return out;
}

std::vector<std::string> compile_options(const link_line &line) {
    std::vector<std::string> out;
    for (const line_arg &arg : line.args)
        if (arg.what == line_arg::role::compile) out.insert(out.end(), arg.words.begin(), arg.words.end());
    return out;
}

}  // namespace mallochooks::allocscc
