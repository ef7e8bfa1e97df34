// SPDX-License-Identifier: MIT
// The descriptor parser: a hand-written scanner over the grammar in the README, which keeps line and
// column of every token so that a malformed descriptor is reported where it is, not just "invalid".
// Structural rules (which letters an allocation or a free function needs) are checked right after a
// descriptor is read, at the descriptor's position.
#include "stubgen/descriptor.h"

#include <cxxabi.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <map>
#include <memory>
#include <string_view>

#include "backends/family_names.h"

namespace mallochooks::stubgen {

std::string_view to_string(fn_kind kind) {
    switch (kind) {
    case fn_kind::alloc: return "alloc";
    case fn_kind::free: return "free";
    case fn_kind::suballoc: return "suballoc";
    }
    return "?";
}

const arg_code *find_arg_code(char letter) {
    for (const arg_code &c : arg_codes)
        if (c.letter == letter) return &c;
    return nullptr;
}

const arg_code *find_result_code(char letter) {
    if (letter == new_chunk_result.letter) return &new_chunk_result;
    const arg_code *c = find_arg_code(letter);
    return c != nullptr && c->role == arg_role::other ? c : nullptr;
}

std::optional<std::size_t> descriptor::param(char letter) const {
    std::size_t i = params.find(letter);
    if (i == std::string::npos) return std::nullopt;
    return i;
}

std::optional<std::size_t> descriptor::param(arg_role role) const {
    for (std::size_t i = 0; i < params.size(); ++i)
        if (find_arg_code(params[i])->role == role) return i;
    return std::nullopt;
}

std::string descriptor::origin() const {
    return source + ":" + std::to_string(line) + ":" + std::to_string(column);
}

parse_error::parse_error(std::string source, std::size_t line, std::size_t column, const std::string &message)
    : std::runtime_error(source + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " + message),
      source_(std::move(source)), line_(line), column_(column) {}

namespace {

bool is_ident_start(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool is_ident_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }
bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v'; }

std::string shown(char c) {
    if (std::isprint(static_cast<unsigned char>(c))) return std::string("'") + c + "'";
    char buf[8];
    std::snprintf(buf, sizeof buf, "0x%02x", static_cast<unsigned char>(c));
    return buf;
}

// A cursor over the text that knows its line and column.
class scanner {
public:
    scanner(std::string_view text, std::string_view source) : text_(text), source_(source) {}

    bool at_end() const { return pos_ >= text_.size(); }
    char peek() const { return at_end() ? '\0' : text_[pos_]; }
    std::size_t pos() const { return pos_; }
    std::size_t line() const { return line_; }
    std::size_t column() const { return column_; }
    std::string_view source() const { return source_; }
    std::string_view slice(std::size_t from) const { return text_.substr(from, pos_ - from); }

    char next() {
        char c = text_[pos_++];
        if (c == '\n') {
            ++line_;
            column_ = 1;
        } else {
            ++column_;
        }
        return c;
    }
    // Skips blanks; with stop_at_newline, stops before a newline (descriptor files are line-based).
    void skip_blanks(bool stop_at_newline = false) {
        while (!at_end() && is_blank(peek()) && !(stop_at_newline && peek() == '\n')) next();
    }
    [[noreturn]] void fail(const std::string &message) const { fail_at(line_, column_, message); }
    [[noreturn]] void fail_at(std::size_t line, std::size_t column, const std::string &message) const {
        throw parse_error(std::string(source_), line, column, message);
    }
    std::string found() const { return at_end() ? "the end" : shown(peek()); }

private:
    std::string_view text_, source_;
    std::size_t pos_ = 0, line_ = 1, column_ = 1;
};

// name: ident { "::" ident }
std::string read_name(scanner &s) {
    if (!is_ident_start(s.peek())) s.fail("expected a function name, found " + s.found());
    std::size_t from = s.pos();
    for (;;) {
        while (is_ident_char(s.peek())) s.next();
        if (s.peek() != ':') break;
        s.next();
        if (s.peek() != ':') s.fail("expected '::' in a qualified name, found " + s.found());
        s.next();
        if (!is_ident_start(s.peek())) s.fail("expected a name after '::', found " + s.found());
    }
    return std::string(s.slice(from));
}

// The structural rules of each kind, checked once the descriptor is complete.
void check_shape(const descriptor &d, const scanner &s) {
    auto fail = [&](const std::string &why) {
        s.fail_at(d.line, d.column, "'" + d.text + "': " + why);
    };
    for (char unique : {'Z', 'z', 'N', 'n', 'A', 'p', 'P'})
        if (std::count(d.params.begin(), d.params.end(), unique) > 1)
            fail(std::string("more than one '") + unique + "' argument");
    if (d.param('Z') && d.param('N')) fail("one size argument: 'Z' (size_t) or 'N' (32 bits), not both");
    if (d.param('z') && d.param('n')) fail("one count argument: 'z' (size_t) or 'n' (32 bits), not both");
    if (d.param(arg_role::count) && !d.param(arg_role::size))
        fail(std::string("'") + d.params[*d.param(arg_role::count)] +
             "' (element count) needs a 'Z' or 'N' (element size)");
    const bool frees = d.frees();
    const bool allocates = d.returns_chunk();
    if (frees && (d.param(arg_role::size) || d.param(arg_role::count) || d.param('A') || d.param('p')))
        fail("a free function ('P') takes no size, count, alignment or old chunk");
    if (frees && allocates) fail("a free function ('P') cannot return a chunk ('p')");
    switch (d.kind) {
    case fn_kind::alloc:
        if (!allocates) fail("an allocation function must return the chunk: end it with ')p'");
        break;
    case fn_kind::free:
        if (!frees) fail("a free function needs a 'P' argument (the chunk it frees)");
        break;
    case fn_kind::suballoc:
        if (!frees && !allocates)
            fail("a suballocator function either returns a chunk (')p') or frees one ('P')");
        if (allocates && !d.param(arg_role::size))
            fail("a suballocator's allocation function needs a 'Z' or 'N' argument: its chunks' size is reported to "
                 "the heap index");
        break;
    }
}

// descriptor: name "(" { param } ")" [ result ]
descriptor read_descriptor(scanner &s, fn_kind kind) {
    descriptor d;
    d.kind = kind;
    d.source = std::string(s.source());
    d.line = s.line();
    d.column = s.column();
    std::size_t from = s.pos();
    d.name = read_name(s);
    if (s.peek() != '(') s.fail("expected '(' after the function name '" + d.name + "', found " + s.found());
    s.next();
    while (s.peek() != ')') {
        if (s.at_end()) s.fail("expected ')' to close the arguments of '" + d.name + "', found the end");
        char c = s.peek();
        if (find_arg_code(c) == nullptr)
            s.fail("unknown argument code " + shown(c) + " (one of Z z N n A p P a i u l L d)");
        d.params += s.next();
    }
    s.next();  // ')'
    if (!s.at_end() && !is_blank(s.peek()) && s.peek() != '#') {
        char c = s.peek();
        if (find_result_code(c) == nullptr)
            s.fail("unknown result code " + shown(c) + " (p for the new chunk, one of a i u l L d, or nothing for void)");
        d.result = s.next();
        if (!s.at_end() && !is_blank(s.peek()) && s.peek() != '#')
            s.fail("expected a blank after the descriptor of '" + d.name + "', found " + s.found());
    }
    d.text = std::string(s.slice(from));
    check_shape(d, s);
    return d;
}

}  // namespace

std::vector<descriptor> parse_list(std::string_view text, fn_kind kind, std::string_view source) {
    scanner s(text, source);
    std::vector<descriptor> out;
    for (s.skip_blanks(); !s.at_end(); s.skip_blanks()) out.push_back(read_descriptor(s, kind));
    return out;
}

std::vector<descriptor> parse_file(std::string_view text, std::string_view source) {
    scanner s(text, source);
    std::vector<descriptor> out;
    while (!s.at_end()) {
        s.skip_blanks(true);
        if (s.peek() == '#') {
            while (!s.at_end() && s.peek() != '\n') s.next();
        } else if (!s.at_end() && s.peek() != '\n') {
            std::size_t from = s.pos(), line = s.line(), column = s.column();
            while (is_ident_char(s.peek())) s.next();
            std::string_view word = s.slice(from);
            fn_kind kind;
            if (word == "alloc") kind = fn_kind::alloc;
            else if (word == "free") kind = fn_kind::free;
            else if (word == "suballoc") kind = fn_kind::suballoc;
            else s.fail_at(line, column, "expected 'alloc', 'free' or 'suballoc' at the start of the line, found " +
                                             (word.empty() ? s.found() : "'" + std::string(word) + "'"));
            if (!is_blank(s.peek()) || s.peek() == '\n') s.fail("expected descriptors after '" + std::string(word) + "'");
            for (s.skip_blanks(true); !s.at_end() && s.peek() != '\n' && s.peek() != '#'; s.skip_blanks(true))
                out.push_back(read_descriptor(s, kind));
            continue;  // a '#' comment or the newline comes next
        }
        if (!s.at_end()) s.next();  // the newline
    }
    return out;
}

namespace {
// The operator a name is (`operator new(unsigned long)`), if it is one of C++'s allocation functions by
// any mangling (the family's LP64 names, a 32-bit target's _Znwj, ...) or written as the operator; else "".
std::string cxx_operator(const std::string &name) {
    auto is_operator = [](std::string_view s) { return s.rfind("operator new", 0) == 0 || s.rfind("operator delete", 0) == 0; };
    if (is_operator(name)) return name;
    if (name.rfind("_Z", 0) != 0) return {};
    int status = 0;
    std::unique_ptr<char, decltype(&std::free)> demangled(abi::__cxa_demangle(name.c_str(), nullptr, nullptr, &status),
                                                          &std::free);
    if (status != 0 || demangled == nullptr || !is_operator(demangled.get())) return {};
    return demangled.get();
}
}  // namespace

void check_set(const std::vector<descriptor> &all) {
    std::map<std::string, const descriptor *> seen;
    for (const descriptor &d : all) {
        if (const std::string op = cxx_operator(d.name); !op.empty())
            throw parse_error(d.source, d.line, d.column,
                              "'" + d.name + "' is C++'s " + op + ", a function of the malloc family: the hooks see "
                              "every call of it with its caller, an operator the program defines itself included, "
                              "without a declaration (docs/cxx.md)");
        if (names::user_api_index(d.name.c_str()) >= 0)
            throw parse_error(d.source, d.line, d.column,
                              "'" + d.name + "' is a malloc-family function, hooked already: declare only the program's own functions");
        auto [it, fresh] = seen.emplace(d.name, &d);
        if (!fresh)
            throw parse_error(d.source, d.line, d.column,
                              "'" + d.name + "' is declared twice (first at " + it->second->origin() + ")");
    }
}

}  // namespace mallochooks::stubgen
