// SPDX-License-Identifier: MIT
// The link model of link_inputs.h: a small re-enactment of GNU ld's input processing, enough to know
// which archive members are pulled and where each function of interest is defined.  It ignores what
// cannot change that answer (sections, relocations, versions) and the compiler's implicit libraries (crt
// files, libc, libgcc), which define no function of the program's own.
#include "compilerwrapper/link_inputs.h"

#include <cxxabi.h>
#include <sys/stat.h>

#include <cstdlib>
#include <memory>
#include <sstream>

#include "backends/family_names.h"

namespace mallochooks::allocscc {

std::vector<std::string> parse_search_dirs(const std::string &output) {
    std::istringstream in(output);
    std::vector<std::string> dirs;
    for (std::string line; std::getline(in, line);) {
        static const std::string key = "libraries: =";
        if (line.rfind(key, 0) != 0) continue;
        std::string list = line.substr(key.size());
        std::size_t from = 0;
        for (std::size_t colon;; from = colon + 1) {
            colon = list.find(':', from);
            std::string dir = list.substr(from, colon == std::string::npos ? std::string::npos : colon - from);
            if (!dir.empty()) dirs.push_back(dir);
            if (colon == std::string::npos) break;
        }
    }
    return dirs;
}

namespace {

bool is_file(const std::string &path) {
    struct stat st;
    return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

}  // namespace

std::optional<std::string> find_library(const std::string &name, bool static_only, const std::vector<std::string> &dirs) {
    for (const std::string &dir : dirs) {
        const std::string base = dir.empty() || dir.back() == '/' ? dir : dir + "/";
        if (!name.empty() && name[0] == ':') {
            if (is_file(base + name.substr(1))) return base + name.substr(1);
            continue;
        }
        if (!static_only && is_file(base + "lib" + name + ".so")) return base + "lib" + name + ".so";
        if (is_file(base + "lib" + name + ".a")) return base + "lib" + name + ".a";
    }
    return std::nullopt;
}

std::vector<std::string> linker_script_inputs(const std::string &script) {
    // Tokens inside INPUT(...) and GROUP(...), AS_NEEDED(...) included; comments removed.
    std::string text;
    for (std::size_t i = 0; i < script.size(); ++i) {
        if (script.compare(i, 2, "/*") == 0) {
            std::size_t end = script.find("*/", i + 2);
            if (end == std::string::npos) break;
            i = end + 1;
            text += ' ';
        } else {
            text += script[i];
        }
    }
    std::vector<std::string> out;
    std::vector<std::string> tokens;
    std::string cur;
    auto flush = [&] { if (!cur.empty()) tokens.push_back(cur); cur.clear(); };
    for (char c : text) {
        if (c == '(' || c == ')' || c == ',') { flush(); tokens.push_back(std::string(1, c)); }
        else if (c == ' ' || c == '\t' || c == '\n' || c == '\r') flush();
        else cur += c;
    }
    flush();
    int depth = 0;
    for (std::size_t i = 0; i < tokens.size(); ++i) {
        const std::string &t = tokens[i];
        if ((t == "INPUT" || t == "GROUP") && i + 1 < tokens.size() && tokens[i + 1] == "(" && depth == 0) {
            depth = 1;
            ++i;
        } else if (depth > 0) {
            if (t == "(") ++depth;
            else if (t == ")") --depth;
            else if (t != "," && t != "AS_NEEDED") out.push_back(t);
        }
    }
    return out;
}

std::string without_clone_suffix(const std::string &symbol) {
    const std::size_t dot = symbol.find('.');
    if (dot == std::string::npos || dot == 0) return symbol;
    static const char *const parts[] = {"constprop", "isra", "part", "cold", "localalias", "lto_priv", "clone"};
    for (std::size_t from = dot + 1; from <= symbol.size();) {
        std::size_t next = symbol.find('.', from);
        if (next == std::string::npos) next = symbol.size();
        const std::string part = symbol.substr(from, next - from);
        bool known = !part.empty() && part.find_first_not_of("0123456789") == std::string::npos;
        for (const char *p : parts) known |= part == p;
        if (!known) return symbol;
        from = next + 1;
    }
    return symbol.substr(0, dot);
}

bool symbol_matches(const std::string &name, const std::string &symbol_as_given) {
    if (symbol_as_given == name) return true;
    const std::string symbol = without_clone_suffix(symbol_as_given);
    if (symbol == name) return true;
    if (symbol.compare(0, 2, "_Z") != 0) return false;
    // Cheap filter before demangling: the last component of the name must appear in the symbol.
    std::size_t colons = name.rfind("::");
    std::string last = colons == std::string::npos ? name : name.substr(colons + 2);
    if (symbol.find(last) == std::string::npos) return false;
    int status = 0;
    std::unique_ptr<char, decltype(&std::free)> demangled(abi::__cxa_demangle(symbol.c_str(), nullptr, nullptr, &status),
                                                          &std::free);
    if (status != 0 || demangled == nullptr) return false;
    std::string d = demangled.get();
    std::size_t paren = d.find('(');
    return d.substr(0, paren) == name;
}

namespace {

class linker {
public:
    explicit linker(const link_model_input &in) : in_(in) {
        for (const std::string &u : in.line->undefined) undefined_.insert(u);
        if (!in.line->shared) undefined_.insert("main");  // crt1.o's reference comes first
    }

    link_analysis run() {
        std::size_t next_source = 0;
        for (const link_input &input : in_.line->inputs) {
            std::string path;
            switch (input.what) {
            case link_input::kind::source:
                if (next_source < in_.compiled_sources.size()) path = in_.compiled_sources[next_source++];
                break;
            case link_input::kind::file:
                path = input.value;
                // ld looks for a -T script in the -L directories too; one found nowhere is the linker's to report.
                if (input.script && !is_file(path)) path = find_library(":" + path, false, in_.line->library_dirs).value_or("");
                break;
            case link_input::kind::library:
                path = resolve(input.value, input.static_only);
                break;
            }
            out_.input_paths.push_back(input.script ? "" : path);
            add_path(path, input);
        }
        return std::move(out_);
    }

private:
    std::string resolve(const std::string &name, bool static_only) {
        if (auto p = find_library(name, static_only, in_.line->library_dirs)) return *p;
        if (!compiler_dirs_) compiler_dirs_ = in_.compiler_dirs ? in_.compiler_dirs() : std::vector<std::string>{};
        if (auto p = find_library(name, static_only, *compiler_dirs_)) return *p;
        // The linker will say it cannot find it; the analysis has nothing to add.
        return {};
    }

    void add_path(const std::string &path, const link_input &how, int depth = 0) {
        if (path.empty() || depth > 16) return;
        link_file f = read_link_file(path);
        switch (f.kind) {
        case file_kind::linker_script:
            for (const std::string &t : linker_script_inputs(f.script)) {
                if (t.compare(0, 2, "-l") == 0) add_path(resolve(t.substr(2), how.static_only), how, depth + 1);
                else add_path(t, how, depth + 1);
            }
            break;
        case file_kind::shared:
            for (const elf_symbol &s : f.units[0].symbols)
                if (s.is_defined() && s.is_global()) {
                    undefined_.erase(s.name);
                    in_dso_.insert(s.name);
                }
            out_.linked_units.push_back(f.path);
            break;
        case file_kind::archive:
            add_archive(f, how.whole_archive);
            break;
        case file_kind::relocatable:
        case file_kind::gcc_lto:
        case file_kind::llvm_bitcode:
            link_unit(f.units[0]);
            break;
        case file_kind::executable:
        case file_kind::other:
            break;
        }
    }

    void add_archive(const link_file &f, bool whole) {
        std::vector<bool> pulled(f.units.size(), false);
        for (bool progress = true; progress;) {
            progress = false;
            for (std::size_t i = 0; i < f.units.size(); ++i) {
                const elf_unit &u = f.units[i];
                if (pulled[i]) continue;
                if (u.is_lto()) {
                    // Its symbols are in the IR: whether the plugin pulls it cannot be known from here.
                    pulled[i] = true;
                    link_unit(u);
                    continue;
                }
                if (!whole && !defines_undefined(u)) continue;
                pulled[i] = progress = true;
                link_unit(u);
            }
        }
    }

    bool defines_undefined(const elf_unit &u) const {
        for (const elf_symbol &s : u.symbols)
            if (s.is_defined() && s.is_global() && !s.is_common() && undefined_.count(s.name) != 0) return true;
        return false;
    }

    const stubgen::descriptor *declared(const std::string &symbol) {
        auto cached = match_cache_.find(symbol);
        if (cached != match_cache_.end()) return cached->second;
        const stubgen::descriptor *found = nullptr;
        for (const stubgen::descriptor &d : *in_.declared)
            if (symbol_matches(d.name, symbol)) found = &d;
        match_cache_.emplace(symbol, found);
        return found;
    }

    void link_unit(const elf_unit &u) {
        out_.linked_units.push_back(u.name);
        if (u.is_lto()) out_.lto_units.push_back(u.name + " (" + to_string(u.kind) + ")");
        const std::size_t slash = u.name.find('(');
        const std::string path = u.member.empty() ? u.name : u.name.substr(0, slash);
        for (const elf_symbol &s : u.symbols) {
            if (s.is_undefined()) {
                if (!s.is_global()) continue;
                if (!s.is_weak() && defined_.count(s.name) == 0 && in_dso_.count(s.name) == 0) undefined_.insert(s.name);
                if (declared(s.name) != nullptr) {
                    out_.referenced.insert(s.name);
                    out_.declared_symbols.emplace(s.name, declared(s.name));
                }
                continue;
            }
            if (s.is_global()) {
                undefined_.erase(s.name);
                defined_.insert(s.name);
            }
            if (!s.is_function() || s.is_common()) continue;
            definition def{s.name, u.name, path, u.member, s.is_local(), s.is_weak(), s.size};
            if (s.is_global() && names::user_api_index(s.name.c_str()) >= 0) out_.family.push_back(def);
            if (const stubgen::descriptor *d = declared(s.name)) {
                out_.declared.push_back(def);
                out_.declared_symbols.emplace(s.name, d);
            }
        }
    }

    const link_model_input &in_;
    std::optional<std::vector<std::string>> compiler_dirs_;
    std::set<std::string> undefined_, defined_, in_dso_;
    std::map<std::string, const stubgen::descriptor *> match_cache_;
    link_analysis out_;
};

}  // namespace

link_analysis analyse_link(const link_model_input &in) { return linker(in).run(); }

}  // namespace mallochooks::allocscc
