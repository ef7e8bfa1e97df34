// SPDX-License-Identifier: MIT
// The C shim generator (see shim_writer.h).  The output is plain C11 with GNU attributes, so that the
// user's own compiler builds it with the user's target flags; it includes nothing of ours.
//
// Why the stubs look the way they do:
//  - the site is saved and restored by a `cleanup` variable rather than cleared after the call, so that a
//    declared function that throws (C++) or a signal handler that allocates leaves the site as it found
//    it; the shims are compiled with -fexceptions so that a C++ exception can unwind through them;
//  - the cleanup also keeps the compiler from turning the call to the original into a tail call, which
//    would end the scope before the original runs;
//  - __builtin_return_address(0) is taken in the stub itself (never in a helper that might not be
//    inlined): it is the call site in the caller of the declared function;
//  - the heap index's heapindex_v1_notify_* are weak references, so a program runs, and reports nothing,
//    without the index.
#include "stubgen/shim_writer.h"

#include <sstream>

#include "mallochooks/alloc_site.h"

namespace mallochooks::stubgen {

std::string stub_symbol(const std::string &symbol, linkage how) {
    return (how == linkage::wrap ? "__wrap_" : "__mallochooks_stub_") + symbol;
}

std::string real_symbol(const std::string &symbol, linkage how) {
    return (how == linkage::wrap ? "__real_" : "__mallochooks_real_") + symbol;
}

std::string shim_function::stub() const { return stub_symbol(symbol, how); }
std::string shim_function::real() const { return real_symbol(symbol, how); }

namespace {

const char *const prologue = R"(#include <stddef.h>

/* The allocation site (mallochooks/alloc_site.h): set by the outermost declared allocation function on
 * the thread, read by the link-time hooks as the caller of the malloc-family calls made meanwhile. */
__attribute__((weak, visibility("hidden"), tls_model("initial-exec")))
__thread const void *)" MALLOCHOOKS_ALLOC_SITE_SYMBOL R"(;

__attribute__((always_inline)) static inline const void *mallochooks_site_enter(const void *return_address) {
    const void *saved = )" MALLOCHOOKS_ALLOC_SITE_SYMBOL R"(;
    if (saved == NULL) )" MALLOCHOOKS_ALLOC_SITE_SYMBOL R"( = return_address;
    return saved;
}
static inline void mallochooks_site_leave(const void *const *saved) { )" MALLOCHOOKS_ALLOC_SITE_SYMBOL R"( = *saved; }
#define MALLOCHOOKS_SITE_SCOPE \
    __attribute__((cleanup(mallochooks_site_leave), unused)) const void *const mallochooks_saved_site = \
        mallochooks_site_enter(__builtin_return_address(0))

)";

// The heap index's exported names are versioned (mallochooks/heapindex.h: heapindex_v1_*), and a weak
// function's address is read through the GOT as that header does, so that the loader fills it in even in
// a non-PIE executable, where a linker may otherwise resolve the undefined weak reference to 0.
const char *const suballoc_prologue = R"(/* Suballocators' chunks go to the heap index (mallochooks/heapindex.h) when it is loaded. */
extern int heapindex_v1_notify_alloc(void *base, size_t size, const void *site) __attribute__((weak));
extern int heapindex_v1_notify_free(void *base) __attribute__((weak));
#if defined(__x86_64__)
#define MALLOCHOOKS_WEAK_ADDRESS(name) __extension__({ __typeof__(&name) f_; \
    __asm__(".weak " #name "\n\tmovq " #name "@GOTPCREL(%%rip), %0" : "=r"(f_)); f_; })
#else
#define MALLOCHOOKS_WEAK_ADDRESS(name) (&name)
#endif
static inline void mallochooks_notify_alloc(void *base, size_t size, const void *site) {
    int (*f)(void *, size_t, const void *) = MALLOCHOOKS_WEAK_ADDRESS(heapindex_v1_notify_alloc);
    if (f != NULL) f(base, size, site);
}
static inline void mallochooks_notify_free(void *base) {
    int (*f)(void *) = MALLOCHOOKS_WEAK_ADDRESS(heapindex_v1_notify_free);
    if (f != NULL) f(base);
}

__attribute__((always_inline)) static inline const void *mallochooks_site_or(const void *return_address) {
    const void *site = )" MALLOCHOOKS_ALLOC_SITE_SYMBOL R"(;
    return site != NULL ? site : return_address;
}

)";

// "void *a0", "size_t a1".
std::string declaration(std::string_view type, const std::string &name) {
    return std::string(type) + (type.back() == '*' ? "" : " ") + name;
}

std::string c_type_of_result(const descriptor &d) {
    if (d.result == 0) return "void";
    return std::string(find_result_code(d.result)->c_type);
}

std::string arg_name(const descriptor &d, char letter) { return "a" + std::to_string(*d.param(letter)); }
std::string arg_name(const descriptor &d, arg_role role) { return "a" + std::to_string(*d.param(role)); }

std::string parameter_list(const descriptor &d) {
    if (d.params.empty()) return "void";
    std::string out;
    for (std::size_t i = 0; i < d.params.size(); ++i) {
        if (i != 0) out += ", ";
        out += declaration(find_arg_code(d.params[i])->c_type, "a" + std::to_string(i));
    }
    return out;
}

std::string argument_list(const descriptor &d) {
    std::string out;
    for (std::size_t i = 0; i < d.params.size(); ++i) out += (i != 0 ? ", a" : "a") + std::to_string(i);
    return out;
}

// The chunk size expression of a suballocator allocation, and whether it can overflow (z * Z).
std::string chunk_size(const descriptor &d) {
    return d.param(arg_role::count) ? "n" : arg_name(d, arg_role::size);
}

void write_stub(std::ostringstream &out, const shim_function &f) {
    const descriptor &d = f.desc;
    const std::string ret = c_type_of_result(d), params = parameter_list(d), args = argument_list(d);
    const std::string real = f.real(), stub = f.stub();
    out << "/* " << to_string(d.kind) << " " << d.text << "  (" << d.origin() << ") */\n";
    out << "extern " << declaration(ret, real) << "(" << params << ");\n";
    // wrap: hidden, so that in a shared library the stub is not exported and cannot interpose another
    // output's.  defsym: default, because ld.bfd and gold give the name --defsym defines the visibility of
    // its target (docs/link-time.md); a shared library's version script keeps the stub local.
    out << "__attribute__((visibility(\"" << (f.how == linkage::wrap ? "hidden" : "default") << "\"))) "
        << declaration(ret, stub) << "(" << params << ") {\n";
    const std::string call = real + "(" + args + ")";
    if (d.kind != fn_kind::suballoc) {
        // Attribution only: the hooks see the malloc-family calls the original makes.
        out << "    MALLOCHOOKS_SITE_SCOPE;\n";
        out << "    " << (d.result ? "return " : "") << call << ";\n";
    } else if (d.frees()) {
        const std::string p = arg_name(d, 'P');
        out << "    if (" << p << " != NULL) mallochooks_notify_free(" << p << ");\n";
        out << "    " << (d.result ? "return " : "") << call << ";\n";
    } else {
        out << "    const void *site = mallochooks_site_or(__builtin_return_address(0));\n";
        out << "    void *r = " << call << ";\n";
        if (d.param('p')) {
            // A resize: the old chunk is gone when the call succeeded, or when it freed (size 0).
            const std::string p = arg_name(d, 'p'), z = arg_name(d, arg_role::size);
            out << "    if (" << p << " != NULL && (r != NULL || " << z << " == 0)) mallochooks_notify_free(" << p << ");\n";
        }
        if (d.param(arg_role::count)) {
            out << "    size_t n;\n";
            out << "    if (r != NULL && !__builtin_mul_overflow(" << arg_name(d, arg_role::count) << ", "
                << arg_name(d, arg_role::size)
                << ", &n))\n";
        } else {
            out << "    if (r != NULL)\n";
        }
        out << "        mallochooks_notify_alloc(r, " << chunk_size(d) << ", site);\n";
        out << "    return r;\n";
    }
    out << "}\n\n";
}

}  // namespace

std::string write_shims(const std::vector<shim_function> &functions, const std::vector<code_range> &ranges) {
    std::ostringstream out;
    out << "/* Generated by stubgen: caller-side shims for the program's own allocation functions.\n"
        << " * Callers reach them through the linker flags:";
    for (const std::string &flag : link_flags(functions)) out << " " << flag;
    out << "\n * Do not edit; regenerate from the descriptors. */\n";
    out << prologue;
    bool suballoc = false;
    for (const shim_function &f : functions) suballoc |= f.desc.kind == fn_kind::suballoc;
    if (suballoc) out << suballoc_prologue;
    for (const shim_function &f : functions) write_stub(out, f);
    if (!ranges.empty()) {
        out << "/* The code of the declared static functions (mallochooks/alloc_site.h), through their aliases. */\n";
        for (const code_range &r : ranges) out << "extern const char " << r.alias << "[] __attribute__((visibility(\"hidden\")));\n";
        out << "__attribute__((visibility(\"hidden\"))) const void *const " MALLOCHOOKS_STATIC_RANGES_SYMBOL "[] = {\n";
        for (const code_range &r : ranges) out << "    " << r.alias << ", " << r.alias << " + " << r.size << ",\n";
        out << "    0, 0,\n};\n";
    }
    return out.str();
}

std::vector<std::string> link_flags(const std::vector<shim_function> &functions) {
    std::vector<std::string> flags;
    for (const shim_function &f : functions) {
        if (f.how == linkage::wrap) {
            flags.push_back("-Wl,--wrap=" + f.symbol);
        } else {
            flags.push_back("-Wl,--defsym=" + f.symbol + "=" + f.stub());
            flags.push_back("-Wl,--undefined=" + f.real());
        }
    }
    return flags;
}

std::vector<shim_function> with_plain_symbols(const std::vector<descriptor> &descriptors, linkage how) {
    std::vector<shim_function> out;
    for (const descriptor &d : descriptors) {
        if (d.name.find("::") != std::string::npos)
            throw parse_error(d.source, d.line, d.column,
                              "'" + d.name + "' is a qualified C++ name: give its mangled symbol, or build with allocscc, which finds it");
        out.push_back({d, d.name, how});
    }
    return out;
}

}  // namespace mallochooks::stubgen
