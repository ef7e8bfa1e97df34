// SPDX-License-Identifier: MIT
// The link step of allocscc (see link_step.h).
#include "compilerwrapper/link_step.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <new>
#include <type_traits>
#include <set>
#include <sstream>

#include "backends/family_names.h"
#include "backends/link_flags.h"
#include "backends/wrapdl/real_alias.h"
#include "compilerwrapper/code_refs.h"
#include "compilerwrapper/link_inputs.h"
#include "compilerwrapper/object_cache.h"
#include "compilerwrapper/process.h"
#include "compilerwrapper/runtime_dir.h"
#include "compilerwrapper/temp_dir.h"
#include "stubgen/shim_object.h"
#include "stubgen/shim_writer.h"

namespace mallochooks::allocscc {

namespace {

struct link_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// The declared static functions' aliases: __mallochooks_static_0, _1, ... in each link.
constexpr char static_alias_prefix[] = "__mallochooks_static_";

// The runtime's shim trampolines (backends/linktime/shim_trampolines.S) are x86-64 code, and the runtime is
// built for the machine allocscc is built for: thunk objects only there.
#if defined(__x86_64__)
constexpr bool runtime_has_trampolines = true;
#else
constexpr bool runtime_has_trampolines = false;
#endif

// allocscc's executable, symlinks resolved (allocsc++ is one): where the runtime is looked for.
std::string own_executable() {
    std::error_code ec;
    const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
    return ec ? std::string() : exe.string();
}

std::string shell_words(const std::vector<std::string> &argv) {
    std::string out;
    for (const std::string &a : argv) {
        if (!out.empty()) out += ' ';
        bool plain = !a.empty() && a.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_=+,./:@%") == std::string::npos;
        if (plain) {
            out += a;
        } else {
            out += '\'';
            for (char c : a) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
            out += '\'';
        }
    }
    return out;
}

class linker_run {
public:
    linker_run(const settings &config, const link_line &line) : config_(config), line_(line), tmp_(config.keep_temps) {}

    int go() {
        // The runtime first: a link that cannot be done stops before it compiles anything.
        const runtime_found runtime = find_runtime_dir(config_.runtime_override, own_executable(), built_layout());
        if (config_.verbose) std::cerr << "allocscc: the runtime: " << runtime.dir << " (" << runtime.how << ")\n";
        link_edits edits;
        // Sources are compiled apart: what they define decides the backend.
        std::vector<std::string> objects;
        for (std::size_t i = 0; i < line_.inputs.size(); ++i) {
            const link_input &source = line_.inputs[i];
            if (source.what != link_input::kind::source) continue;
            const std::string object = tmp_.file("source" + std::to_string(objects.size()) + ".o");
            std::vector<std::string> argv = with_compiler(compile_options(line_));
            argv.push_back("-c");
            if (!source.language.empty()) argv.insert(argv.end(), {"-x", source.language});
            argv.insert(argv.end(), {source.value, "-o", object});
            if (int status = step(argv); status != 0) return status;
            objects.push_back(object);
            edits.inputs[i] = object;
        }

        link_model_input in{&line_, [this] { return compiler_search_dirs(); }, &config_.functions, objects};
        const link_analysis found = analyse_link(in);
        if (config_.verbose) report(found);
        // LTO IR hides what it defines and calls: the link cannot be done right.
        if (!found.lto_units.empty())
            throw link_error("link-time optimisation is not supported: " + found.lto_units.front() +
                             " is compiler IR, so the functions the output defines cannot be found before the link "
                             "(build without -flto, or link with the compiler itself)");

        link_plan plan = plan_link(found);
        warn_static_without_allocation_calls(found);
        warn_family_calling_itself(found);
        write_alias_copies(plan, found, edits);
        std::vector<std::string> backend_flags = backend(plan);

        // The shims go first, before every input: their references to the originals (__real_X, which the
        // linker reads as X, or the aliases) must be undefined when the archives are scanned, or a member
        // that defines X and was needed only through the now-redirected references would not be pulled.
        if (int status = make_shims(plan, edits.first); status != 0) return status;
        edits.last = stubgen::link_flags(plan.shims);
        edits.last.insert(edits.last.end(), backend_flags.begin(), backend_flags.end());
        edits.last.insert(edits.last.end(), {"-L" + runtime.dir, "-lmallochooks"});
        return step(within_arg_max(with_compiler(render_link(line_, edits))));
    }

private:
    std::vector<std::string> with_compiler(const std::vector<std::string> &args) const {
        std::vector<std::string> argv = config_.compiler;
        argv.insert(argv.end(), args.begin(), args.end());
        return argv;
    }

    // A link line that came in a response file may be too long for exec once expanded: it goes back into
    // one (libiberty's quoting: single quotes, backslash escapes).
    std::vector<std::string> within_arg_max(const std::vector<std::string> &argv) const {
        std::size_t total = 0;
        for (const std::string &a : argv) total += a.size() + 1;
        if (total < 64 * 1024) return argv;
        const std::string rsp = tmp_.file("link.rsp");
        std::ofstream out(rsp);
        for (std::size_t i = config_.compiler.size(); i < argv.size(); ++i) {
            out << '\'';
            for (char c : argv[i]) out << (c == '\'' || c == '\\' ? "\\" : "") << c;
            out << "'\n";
        }
        std::vector<std::string> short_argv = config_.compiler;
        short_argv.push_back("@" + rsp);
        return short_argv;
    }

    int step(const std::vector<std::string> &argv) {
        if (config_.verbose) std::cerr << "allocscc: running " << shell_words(argv) << "\n";
        int status = run(argv);
        if (pending_signal() != 0) {
            tmp_.remove();
            die_of_pending_signal();
        }
        return status;
    }

    // What the link does beyond the user's command: the backend, the alias copies, the shims.
    struct link_plan {
        link_request request;                                        // the backend and the family the output defines
        std::map<std::string, std::vector<wrapdl::alias_spec>> aliases;  // input path -> the aliases its copy gets
        std::vector<stubgen::shim_function> shims;                  // one per declared function the output uses
        std::vector<stubgen::code_range> static_ranges;             // declared static functions' code
    };

    // The descriptor of a C++ operator the output defines over a malloc it does not own: an allocation
    // (new) or free (delete) function whose shim sets the allocation site, as a declared one's does.  Its
    // parameters by the list's types (the nothrow tag is a pointer, align_val_t a size).
    template <class T> static char cxx_param_letter(bool first_of_new) {
        if constexpr (std::is_same_v<T, void *>) return 'P';
        else if constexpr (std::is_same_v<T, std::align_val_t>) return 'A';
        else if constexpr (std::is_same_v<T, const std::nothrow_t &>) return 'a';
        else return first_of_new ? 'Z' : 'L';  // size_t: new's size, or a sized delete's
    }
    template <class R, class... A> static std::string cxx_param_letters(R (*)(A...)) {
        std::string letters;
        bool first = true;
        ((letters += cxx_param_letter<A>(first && !std::is_void_v<R>), first = false), ...);
        return letters;
    }
    static stubgen::descriptor cxx_operator_shim(const std::string &symbol) {
        static const std::map<std::string, std::string> params = {
#define ALLOCSCC_CXX_PARAMS_(r, data, e)                                                               \
    {BOOST_PP_STRINGIZE(MALLOCHOOKS_NAME(e)),                                                          \
     cxx_param_letters(static_cast<MALLOCHOOKS_RET(e) (*)(MALLOCHOOKS_TYPES(e))>(nullptr))},
            MALLOCHOOKS_FOR_EACH(ALLOCSCC_CXX_PARAMS_, ~, MALLOCHOOKS_CXX_USER_API)
#undef ALLOCSCC_CXX_PARAMS_
        };
        const bool deletes = symbol.rfind("_Zd", 0) == 0;
        const std::string letters = params.at(symbol);
        stubgen::descriptor d;
        d.kind = deletes ? stubgen::fn_kind::free : stubgen::fn_kind::alloc;
        d.name = symbol;
        d.params = letters;
        d.result = deletes ? 0 : 'p';
        d.text = symbol + "(" + letters + ")" + (deletes ? "" : "p");
        d.source = "the output's own C++ operator";
        return d;
    }

    // Decides everything from the analysis (docs/allocscc.md, "Linking"):
    //  - the malloc family: wrap when the output defines none of it, else wrapdl with the
    //    __mallochooks_real_X aliases in the copies of the inputs that define it;
    //  - a declared function the output defines gets a shim reached through --defsym and the alias
    //    __mallochooks_real_S in the copy of its input: every reference, the defining object's own and, in
    //    a shared library, other outputs' included, goes through it.  One the output only calls (a shared
    //    library's) gets a shim reached through --wrap only when the output defines the malloc family;
    //  - a declared static function (and every compiler clone of a declared function) gets a hidden
    //    alias in the copy of its input, and its code goes into the shims' table for the hooks.
    // An input that cannot be replaced by a copy (named by a linker script) keeps the declared functions
    // it defines on --wrap, and its static functions unattributed; a malloc it defines is an error.
    link_plan plan_link(const link_analysis &found) const {
        link_plan plan;
        // wrapdl when the output defines a C function of the family (its own malloc): then its own C++
        // operators, if any, are diverted the same way.  An output that defines only C++ operators builds
        // them on a malloc it does not own (libc's, which wrap hooks): they are allocation functions over
        // malloc, and get the shims of declared functions, reached through --defsym, so that their malloc
        // and free calls name their callers (cxx_operator_shim below; link_flags.h, "wrap").
        bool own_malloc = false;
        for (const definition &d : found.family)
            own_malloc |= !d.local && names::is_c_user_api(d.symbol.c_str());
        for (const definition &d : found.family) {
            if (d.local) continue;
            if (!can_replace(d.path, found))
                throw link_error(d.path + " defines malloc-family functions but is not named on the command line (a "
                                 "linker script names it): allocscc cannot give the linker its copy with aliases");
            if (std::find(plan.request.defined.begin(), plan.request.defined.end(), d.symbol) != plan.request.defined.end())
                continue;
            plan.request.defined.push_back(d.symbol);
            if (own_malloc) {
                plan.aliases[d.path].push_back({d.symbol, names::wrapdl_real_prefix + d.symbol, false, d.member});
            } else {
                plan.shims.push_back({cxx_operator_shim(d.symbol), d.symbol, stubgen::linkage::defsym});
                plan.aliases[d.path].push_back(
                    {d.symbol, stubgen::real_symbol(d.symbol, stubgen::linkage::defsym), false, d.member});
            }
        }
        plan.request.backend = own_malloc ? link_backend::wrapdl : link_backend::wrap;

        std::set<std::string> defined_here;
        for (const definition &d : found.declared) {
            const stubgen::descriptor &desc = *found.declared_symbols.at(d.symbol);
            const bool replaceable = can_replace(d.path, found);
            if (d.local) {
                if (!replaceable) {
                    note(d.symbol + " in " + d.unit + ": its input cannot be replaced by a copy; its allocations are "
                         "attributed to itself");
                    continue;
                }
                const std::string alias = std::string(static_alias_prefix) + std::to_string(plan.static_ranges.size());
                plan.aliases[d.path].push_back({d.symbol, alias, true, d.member});
                plan.static_ranges.push_back({alias, d.size});
                continue;
            }
            if (!defined_here.insert(d.symbol).second) continue;
            if (!replaceable) {
                note(d.symbol + " in " + d.unit + ": its input cannot be replaced by a copy; calls reach its shim "
                     "through --wrap only");
                plan.shims.push_back({desc, d.symbol, stubgen::linkage::wrap});
                continue;
            }
            plan.shims.push_back({desc, d.symbol, stubgen::linkage::defsym});
            plan.aliases[d.path].push_back({d.symbol, stubgen::real_symbol(d.symbol, stubgen::linkage::defsym), false, d.member});
        }
        // A declared function the output only calls lives in a shared library.  Built by allocscc, that
        // library's own --defsym shim sets its site, which its hooks read, from its return address: a shim
        // here in between would make that address our trampoline.  Built otherwise, its malloc calls reach
        // no hooks of ours, unless this output defines the malloc family (wrapdl, which other outputs bind
        // to): only then does a --wrap shim here set a site that anything reads.
        for (const std::string &s : found.referenced) {
            if (defined_here.count(s) != 0) continue;
            if (plan.request.backend == link_backend::wrap) {
                note(s + ": defined outside the output (a shared library), whose own shims attribute it: no shim here");
                continue;
            }
            plan.shims.push_back({*found.declared_symbols.at(s), s, stubgen::linkage::wrap});
        }
        if (config_.verbose) {
            for (const stubgen::descriptor &d : config_.functions) {
                bool seen = false;
                for (const auto &[symbol, desc] : found.declared_symbols) seen |= desc == &d;
                if (!seen)
                    note(d.name + ": declared, but the output neither defines nor calls it (or it is a static function "
                         "the compiler inlined everywhere: its allocations are then attributed to the functions it was "
                         "inlined into)");
            }
            for (const stubgen::shim_function &f : plan.shims)
                note(f.symbol + ": callers reach its shim through " +
                     (f.how == stubgen::linkage::wrap ? "--wrap (the output calls it)" : "--defsym (the output defines it)"));
            for (const stubgen::code_range &r : plan.static_ranges)
                note(r.alias + ": a declared static function (or a compiler's copy of a declared function), " +
                     std::to_string(r.size) + " bytes, in the hooks' table");
        }
        return plan;
    }

    // A declared static function counts only for the allocation calls in its own code (docs/allocscc.md,
    // "Static allocation functions"): one that makes none, reaching malloc through a function pointer or
    // through an undeclared helper, attributes nothing.  Found from its object's calls (code_refs.h) and
    // told as a warning naming the functions to declare with it; declared together, the hooks unwind
    // through every declared static function to the outermost one's caller.
    void warn_static_without_allocation_calls(const link_analysis &found) const {
        // The declared static functions (and their compiler clones) by their object, and by descriptor.
        std::map<std::pair<std::string, std::string>, std::map<const stubgen::descriptor *, std::vector<std::string>>> units;
        for (const definition &d : found.declared)
            if (d.local) units[{d.path, d.member}][found.declared_symbols.at(d.symbol)].push_back(d.symbol);
        for (const auto &[where, statics] : units) {
            std::vector<code_function> functions;
            try {
                functions = read_code_refs(where.first, where.second);
            } catch (const std::exception &e) {
                note(std::string("cannot read the calls of ") + where.first + ": " + e.what());
                continue;
            }
            std::map<std::string, const code_function *> by_name;
            for (const code_function &f : functions) by_name.emplace(f.name, &f);
            std::string unit = where.second.empty() ? where.first : where.first + "(" + where.second + ")";
            for (std::size_t i = 0; i < found.input_paths.size(); ++i)  // an object compiled from a source: the source
                if (found.input_paths[i] == where.first && line_.inputs[i].what == link_input::kind::source)
                    unit = line_.inputs[i].value;
            for (const auto &[desc, pieces] : statics) {
                // The calls that attribute S's allocations: the family functions of its kind (free for a free
                // function, the allocating ones otherwise) and the declared functions.
                std::set<std::string> attributing;
                for (const char *name : names::user_api) {
                    const bool freeing = std::string_view(name) == "free";
                    if (std::string_view(name) != "malloc_usable_size" && freeing == (desc->kind == stubgen::fn_kind::free))
                        attributing.insert(name);
                }
                for (const auto &[symbol, d] : found.declared_symbols) attributing.insert(symbol);
                auto attributes = [&](const code_function &f) {
                    for (const std::string &c : f.calls)
                        if (attributing.count(c) != 0) return true;
                    return false;
                };
                bool direct = false, known = false;
                for (const std::string &piece : pieces)
                    if (auto f = by_name.find(piece); f != by_name.end()) {
                        known = true;
                        direct |= attributes(*f->second);
                    }
                if (direct || !known) continue;
                // What to declare with it: the undeclared functions it calls (transitively, in its object)
                // that make such calls, and those of its object whose address is taken.
                std::vector<std::string> advice;
                auto advise = [&](const std::string &symbol, const char *why) {
                    const std::string name = without_clone_suffix(symbol) + why;
                    if (std::find(advice.begin(), advice.end(), name) == advice.end()) advice.push_back(name);
                };
                std::set<std::string> seen(pieces.begin(), pieces.end());
                std::vector<std::string> todo(pieces.begin(), pieces.end());
                for (std::size_t depth = 0; depth < 4 && !todo.empty(); ++depth) {
                    std::vector<std::string> next;
                    for (const std::string &name : todo)
                        if (auto f = by_name.find(name); f != by_name.end())
                            for (const std::string &c : f->second->calls)
                                if (auto g = by_name.find(c); g != by_name.end() && seen.insert(c).second) {
                                    if (attributing.count(c) == 0 && attributes(*g->second)) advise(c, " (which it calls)");
                                    next.push_back(c);
                                }
                    todo = std::move(next);
                }
                // A function pointer's targets cannot be told apart from here: every function of the object
                // that makes such calls and whose address is taken, unless a helper explains it.
                bool pointed_declared = false;
                const bool helped = !advice.empty();
                for (const code_function &f : functions) {
                    if (!f.address_taken || !attributes(f)) continue;
                    if (attributing.count(f.name) != 0) pointed_declared = true;
                    else if (!helped) advise(f.name, " (its address is taken: called through a pointer)");
                }
                std::string list;
                for (const std::string &a : advice) list += (list.empty() ? "" : ", ") + a;
                if (list.empty() && pointed_declared) continue;  // what it calls through pointers is declared
                std::cerr << "allocscc: warning: " << desc->name << " (" << desc->origin() << ") is a static function of "
                          << unit << " that makes no " << (desc->kind == stubgen::fn_kind::free ? "free" : "allocation")
                          << " call of its own (it reaches one through a function pointer or an undeclared function), "
                          << "so what it does is attributed to the function that makes the call; "
                          << (list.empty() ? std::string("declare that function as well")
                                           : "declare as well: " + list)
                          << " (the outermost declared function still wins)\n";
            }
        }
    }

    // An allocator function of the output's own whose code calls itself by name: gcc -O2 turns
    // `p = malloc(n); memset(p, 0, n)` into `calloc(n, 1)`, so a calloc written that way calls itself
    // without end as soon as anything calls it (hooks or not: ld.so's calloc during a dlopen did, in the
    // tests' bump allocator).  Said as a warning, naming the function and its object.
    void warn_family_calling_itself(const link_analysis &found) const {
        std::map<std::pair<std::string, std::string>, std::vector<const definition *>> units;
        for (const definition &d : found.family)
            if (!d.local && names::is_c_user_api(d.symbol.c_str())) units[{d.path, d.member}].push_back(&d);
        for (const auto &[where, defs] : units) {
            std::vector<code_function> functions;
            try {
                functions = read_code_refs(where.first, where.second);
            } catch (const std::exception &) {
                continue;  // unreadable here: the link says what it finds
            }
            for (const definition *d : defs)
                for (const code_function &f : functions)
                    if (f.name == d->symbol && f.calls.count(d->symbol) != 0)
                        std::cerr << "allocscc: warning: " << d->symbol << " in " << d->unit << " calls " << d->symbol
                                  << " itself, without end when it is called"
                                  << (d->symbol == "calloc" ? " (gcc turns malloc followed by memset into calloc: "
                                                              "allocate through an internal function, or compile the "
                                                              "allocator with -fno-builtin-malloc)"
                                                            : "")
                                  << "\n";
        }
    }

    // Copies each input that needs aliases and puts the copy wherever the link line names the input.
    void write_alias_copies(const link_plan &plan, const link_analysis &found, link_edits &edits) {
        int n = 0;
        for (const auto &[path, specs] : plan.aliases) {
            const bool archive = read_link_file(path).kind == file_kind::archive;
            const std::string copy = tmp_.file("alias" + std::to_string(n++) + (archive ? ".a" : ".o"));
            wrapdl::alias_result made = wrapdl::write_aliases(path, copy, specs);
            if (!made.error.empty()) throw link_error("cannot copy " + path + " with aliases: " + made.error);
            if (!made.missing.empty())
                throw link_error("cannot copy " + path + " with aliases: " + made.missing.front().symbol +
                                 " is not defined in it as the analysis found");
            for (std::size_t i = 0; i < found.input_paths.size(); ++i)
                if (found.input_paths[i] == path) edits.inputs[i] = copy;
        }
    }

    // The backend's flags (docs/link-time.md).  A shared library without a version script of its own gets
    // one that keeps local what must have default visibility but is no part of its interface: the wrapdl
    // entry points and the --defsym shims (ld.bfd cannot combine two anonymous scripts, so it is one).
    std::vector<std::string> backend(const link_plan &plan) {
        if (config_.verbose)
            std::cerr << "allocscc: backend " << (plan.request.backend == link_backend::wrap ? "wrap" : "wrapdl") << "\n";
        link_flags_result flags = link_flags(plan.request);
        if (!flags.error.empty()) throw link_error(flags.error);
        // C++'s errors need two functions of the C++ runtime, which the hooks look up at run time in the
        // dynamic symbol tables (libmallochooks/cxx_runtime.h): with libstdc++ linked in statically, nothing
        // exports them, and a failed throwing new could only abort.  Keep them in the link and export them.
        if (line_.static_libstdcxx && !line_.static_link && config_.lang == language::cxx)
            for (const char *symbol : {"_ZSt17__throw_bad_allocv", "_ZSt15get_new_handlerv"}) {
                flags.flags.push_back(std::string("-Wl,--undefined=") + symbol);
                flags.flags.push_back(std::string("-Wl,--export-dynamic-symbol=") + symbol);
            }
        std::vector<std::string> local;
        if (plan.request.backend == link_backend::wrapdl)
            for (const char *name : names::user_api) local.push_back(names::wrapdl_entry_prefix + std::string(name));
        for (const stubgen::shim_function &f : plan.shims)
            if (f.how == stubgen::linkage::defsym) local.push_back(f.stub());
        if (line_.shared && line_.version_scripts.empty() && !local.empty()) {
            const std::string script = tmp_.file("exports.map");
            std::ofstream out(script);
            out << "{\n  local:\n";
            for (const std::string &name : local) out << "    " << name << ";\n";
            out << "};\n";
            flags.flags.push_back("-Wl,--version-script=" + script);
        }
        return flags.flags;
    }

    // Whether the link line names `path` (as itself, as the -l that found it, or as the source compiled to
    // it), rather than a linker script: only then can a copy take its place.
    static bool can_replace(const std::string &path, const link_analysis &found) {
        return std::find(found.input_paths.begin(), found.input_paths.end(), path) != found.input_paths.end();
    }

    // The shim objects of the link: the thunk object that allocscc writes itself (shim_object.h) for the
    // functions whose arguments travel in registers and for the static functions' table; C shims, compiled
    // (and cached), for the others, or for all when the runtime has no trampolines (not x86-64).
    int make_shims(const link_plan &plan, std::vector<std::string> &objects) {
        std::vector<stubgen::shim_function> thunks, compiled;
        for (const stubgen::shim_function &f : plan.shims)
            (runtime_has_trampolines && stubgen::fits_thunk(f.desc) ? thunks : compiled).push_back(f);
        if (runtime_has_trampolines && (!thunks.empty() || !plan.static_ranges.empty())) {
            const std::string object = tmp_.file("shims.o");
            const std::string error = stubgen::write_shim_object(thunks, plan.static_ranges, object);
            if (!error.empty()) throw link_error("cannot write the shim object: " + error);
            if (config_.verbose) std::cerr << "allocscc: wrote the shim object " << object << "\n";
            objects.push_back(object);
        }
        if (!compiled.empty() || (!runtime_has_trampolines && !plan.static_ranges.empty())) {
            std::string object = tmp_.file("shims-c.o");
            const std::vector<stubgen::code_range> ranges = runtime_has_trampolines ? std::vector<stubgen::code_range>{}
                                                                                  : plan.static_ranges;
            if (int status = compile_shims(stubgen::write_shims(compiled, ranges), object); status != 0) return status;
            objects.push_back(object);
        }
        return 0;
    }

    void note(const std::string &what) const {
        if (config_.verbose) std::cerr << "allocscc: " << what << "\n";
    }

    // Compiles the shims into `object`, or puts there the same shims compiled by an earlier link.
    int compile_shims(const std::string &text, std::string &object) {
        const std::string source = tmp_.file("shims.c");
        std::ofstream(source) << text;
        std::vector<std::string> options = line_.target_flags;
        options.insert(options.end(), {"-x", "c", "-c", "-O2", "-fPIC", "-fexceptions", "-w"});
        const object_cache cache(config_.cache_dir);
        const std::string key = object_cache::key(text, with_compiler(options), find_in_path(config_.compiler[0]));
        if (cache.fetch(key, object)) {
            if (config_.verbose) std::cerr << "allocscc: shims compiled by an earlier link: " << config_.cache_dir << "/" << key << ".o\n";
            return 0;
        }
        std::vector<std::string> argv = with_compiler(options);
        argv.insert(argv.end(), {source, "-o", object});
        if (int status = step(argv); status != 0) {
            std::cerr << "allocscc: error: the shims did not compile (" << source << ")\n";
            return status;
        }
        cache.store(key, object);
        return 0;
    }

    std::vector<std::string> compiler_search_dirs() {
        std::vector<std::string> argv = with_compiler(line_.target_flags);
        argv.push_back("-print-search-dirs");
        std::string out;
        if (capture(argv, out) != 0) return {};
        return parse_search_dirs(out);
    }

    void report(const link_analysis &found) const {
        std::cerr << "allocscc: link inputs:";
        for (const std::string &u : found.linked_units) std::cerr << " " << u;
        std::cerr << "\n";
        for (const definition &d : found.family)
            std::cerr << "allocscc: the output defines malloc-family function " << d.symbol << " in " << d.unit
                      << (d.weak ? " (weak)" : "") << "\n";
        for (const definition &d : found.declared)
            std::cerr << "allocscc: the output defines " << (d.local ? "static " : "") << "allocation function "
                      << d.symbol << " in " << d.unit << "\n";
        for (const std::string &s : found.referenced) std::cerr << "allocscc: the output calls allocation function " << s << "\n";
    }

    const settings &config_;
    const link_line &line_;
    temp_dir tmp_;
};

}  // namespace

int link(const settings &config, const link_line &line) {
    try {
        return linker_run(config, line).go();
    } catch (const link_error &e) {
        std::cerr << "allocscc: error: " << e.what() << "\n";
        return 1;
    }
}

}  // namespace mallochooks::allocscc
