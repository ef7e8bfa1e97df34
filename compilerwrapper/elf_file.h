// SPDX-License-Identifier: MIT
// Typed, read-only views over link inputs through libelf, in the manner of mold's ELF structs: a symbol
// knows whether it is defined, global, weak or a function; an input knows whether it is a relocatable
// object, a shared library, an archive (with members), a linker script, or LTO IR that only the
// compiler's linker plugin can read.  allocscc's link analysis (link_inputs.h) is written against these.
#ifndef MALLOCHOOKS_COMPILERWRAPPER_ELF_FILE_H
#define MALLOCHOOKS_COMPILERWRAPPER_ELF_FILE_H

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace mallochooks::allocscc {

struct elf_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

enum class file_kind {
    relocatable,    // ET_REL
    shared,         // ET_DYN (a shared library, or a PIE given as input)
    executable,     // ET_EXEC
    archive,        // ar archive (its members are looked at one by one)
    linker_script,  // text: libc.so is one
    gcc_lto,        // an ELF object carrying GCC's LTO IR (.gnu.lto_* sections)
    llvm_bitcode,   // LLVM bitcode (raw 'BC' 0xC0DE, or the 0x0B17C0DE wrapper)
    other,
};
const char *to_string(file_kind kind);

// One symbol table entry, with the predicates the link analysis needs.
struct elf_symbol {
    std::string name;
    unsigned char binding = 0;  // STB_*
    unsigned char type = 0;     // STT_*
    unsigned char visibility = 0;
    std::uint16_t section = 0;  // st_shndx
    std::uint64_t value = 0, size = 0;

    bool is_undefined() const;
    bool is_defined() const { return !is_undefined(); }
    bool is_local() const;
    bool is_global() const;  // global or weak binding (or unique)
    bool is_weak() const;
    bool is_function() const;  // STT_FUNC or STT_GNU_IFUNC
    bool is_common() const;
};

// An ELF file or archive member: kind and symbols (.symtab for objects, .dynsym for shared libraries).
struct elf_unit {
    std::string name;  // the path, or "archive(member)"
    std::string member;  // the member's name inside its archive, "" for a file
    file_kind kind = file_kind::other;
    std::vector<elf_symbol> symbols;
    // Is this unit LTO IR (GCC slim or fat, LLVM bitcode)?  Its real code is made at link time.
    bool is_lto() const { return kind == file_kind::gcc_lto || kind == file_kind::llvm_bitcode; }
};

// What one path on the link line is: a unit, or an archive of units, or a linker script's text.
struct link_file {
    std::string path;
    file_kind kind = file_kind::other;
    std::vector<elf_unit> units;  // one for an ELF file, one per member for an archive
    std::string script;           // the text of a linker script
};

// Opens and reads a link input.  Throws elf_error when the file cannot be opened or libelf fails.
link_file read_link_file(const std::string &path);

// Classifies raw bytes (the start of a file or member).
file_kind sniff(const unsigned char *data, std::size_t size);

}  // namespace mallochooks::allocscc

#endif
