// SPDX-License-Identifier: MIT
// Allocation-function descriptors: how a user names the program's own allocation functions
// (`xmalloc(Z)p xcalloc(zZ)p xrealloc(pZ)p`, `xfree(P)`, suballocators) and says what each argument is.
// This is the one parser of the grammar (README "allocscc", section "Descriptor grammar"); allocscc and
// the stubgen tool both use it, and every error carries the line and column where the text went wrong.
#ifndef MALLOCHOOKS_STUBGEN_DESCRIPTOR_H
#define MALLOCHOOKS_STUBGEN_DESCRIPTOR_H

#include <cstddef>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace mallochooks::stubgen {

// Which list a descriptor came from.  alloc: returns a chunk it got from the malloc family (attribution
// only); free: gives one back; suballoc: carves chunks out of memory it got from malloc (or gives them
// back), so its chunks are reported to the heap index separately.
enum class fn_kind { alloc, free, suballoc };
std::string_view to_string(fn_kind kind);

// What an argument (or the result) is to the allocation function.
enum class arg_role { size, count, alignment, old_chunk, freed_chunk, new_chunk, other };

// The one table of argument codes: the letter, the C type the shim passes it as (what matters is the
// calling convention's class: integer, pointer or floating point), its role, and what the README says.
struct arg_code {
    char letter;
    std::string_view c_type;
    arg_role role;
    std::string_view meaning;
};
inline constexpr arg_code arg_codes[] = {
    {'Z', "size_t", arg_role::size, "size in bytes (of one element when `z` is present)"},
    {'z', "size_t", arg_role::count, "number of elements (the chunk is z * Z bytes)"},
    {'N', "unsigned int", arg_role::size, "size in bytes as a 32-bit unsigned (zlib's `uInt size`)"},
    {'n', "unsigned int", arg_role::count, "number of elements as a 32-bit unsigned (zlib's `uInt items`)"},
    {'A', "size_t", arg_role::alignment, "alignment in bytes"},
    {'p', "void *", arg_role::old_chunk, "a chunk to resize (realloc's first argument)"},
    {'P', "void *", arg_role::freed_chunk, "the chunk given back (free's argument)"},
    {'a', "void *", arg_role::other, "any other pointer (a pool, a context)"},
    {'i', "int", arg_role::other, "any other int"},
    {'u', "unsigned int", arg_role::other, "any other unsigned int"},
    {'l', "long", arg_role::other, "any other long"},
    {'L', "unsigned long", arg_role::other, "any other unsigned long or size_t"},
    {'d', "double", arg_role::other, "any other double"},
};
// Result codes: `p` (the new chunk, `void *`), any of the `other` letters, or nothing (void).
inline constexpr arg_code new_chunk_result{'p', "void *", arg_role::new_chunk, "the new chunk"};

const arg_code *find_arg_code(char letter);
// The result's code, or nullptr for void.
const arg_code *find_result_code(char letter);

struct descriptor {
    fn_kind kind;
    std::string name;    // as written: a C identifier, or a qualified C++ name `ns::alloc`
    std::string params;  // one letter of arg_codes per parameter
    char result = 0;     // a result letter, 0 for void
    std::string text;    // the descriptor as written, for messages and comments
    std::string source;  // where it was written: "ALLOCSCC_ALLOC_FNS", a file name
    std::size_t line = 1, column = 1;

    bool frees() const { return params.find('P') != std::string::npos; }
    bool returns_chunk() const { return result == 'p'; }
    // The index of the first parameter with this letter, if any.
    std::optional<std::size_t> param(char letter) const;
    // The index of the first parameter with this role (size: `Z` or `N`; count: `z` or `n`), if any.
    std::optional<std::size_t> param(arg_role role) const;
    // "ALLOCSCC_ALLOC_FNS:1:9", as messages cite it.
    std::string origin() const;
};

class parse_error : public std::runtime_error {
public:
    parse_error(std::string source, std::size_t line, std::size_t column, const std::string &message);
    const std::string &source() const { return source_; }
    std::size_t line() const { return line_; }
    std::size_t column() const { return column_; }

private:
    std::string source_;
    std::size_t line_, column_;
};

// A whitespace-separated list of descriptors, all of one kind (the value of ALLOCSCC_ALLOC_FNS and
// friends).  `source` names the text in messages.  Throws parse_error.
std::vector<descriptor> parse_list(std::string_view text, fn_kind kind, std::string_view source);

// A descriptor file: lines `alloc|free|suballoc descriptor...`, `#` comments, blank lines.
std::vector<descriptor> parse_file(std::string_view text, std::string_view source);

// Checks a whole set (from all lists and files): a name declared twice, or a malloc-family function
// declared (the family is hooked already).  Throws parse_error at the offending descriptor.
void check_set(const std::vector<descriptor> &all);

}  // namespace mallochooks::stubgen

#endif
