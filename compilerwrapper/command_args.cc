// SPDX-License-Identifier: MIT
// Reads allocscc's command line (see command_args.h).
#include "compilerwrapper/command_args.h"

#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>

namespace mallochooks::allocscc {

namespace {

constexpr std::string_view fns_option = "--alloc-fns=";

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

bool own_option(const std::string &arg) { return arg.rfind(fns_option, 0) == 0; }

}  // namespace

std::vector<std::string> expand_response_files(const std::vector<std::string> &args) {
    std::vector<std::string> out;
    std::set<std::string> open;
    expand_into(args, out, open, 0);
    return out;
}

command_args read_command_args(const std::vector<std::string> &args) {
    command_args out;
    for (const std::string &arg : args) {
        const std::vector<std::string> words = expand_response_files({arg});
        bool holds_option = false;
        for (const std::string &w : words) {
            if (own_option(w)) {
                holds_option = true;
                out.fns_files.push_back(w.substr(fns_option.size()));
            } else {
                out.expanded.push_back(w);
            }
        }
        // A response file that holds allocscc's option (build systems put whole command lines into one)
        // reaches the compiler expanded in place without it; other response files reach it untouched.
        if (!holds_option) out.for_compiler.push_back(arg);
        else
            for (const std::string &w : words)
                if (!own_option(w)) out.for_compiler.push_back(w);
    }
    return out;
}

}  // namespace mallochooks::allocscc
