// SPDX-License-Identifier: MIT
// The link step of allocscc (see link_step.h).
#include "compilerwrapper/link_step.h"

#include <algorithm>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>

#include "backends/family_names.h"
#include "backends/link_flags.h"
#include "backends/wrapdl/real_alias.h"
#include "compilerwrapper/link_inputs.h"
#include "compilerwrapper/object_cache.h"
#include "compilerwrapper/process.h"
#include "compilerwrapper/temp_dir.h"
#include "stubgen/shim_writer.h"

namespace mallochooks::allocscc {

namespace {

struct link_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

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
    linker_run(const settings &config, const driver_command &cmd, const std::vector<std::string> &args)
        : config_(config), cmd_(cmd), args_(args), tmp_(config.keep_temps) {}

    int go() {
        link_split split = split_link_args(args_);
        // Sources are compiled apart: what they define decides the backend.
        std::vector<std::string> objects;
        for (std::size_t k = 0; k < split.source_slots.size(); ++k) {
            const std::string &source = split.link_args[split.source_slots[k]];
            const std::string object = tmp_.file("source" + std::to_string(k) + ".o");
            std::vector<std::string> argv = with_compiler(split.compile_args);
            argv.push_back("-c");
            if (!split.source_languages[k].empty()) argv.insert(argv.end(), {"-x", split.source_languages[k]});
            argv.insert(argv.end(), {source, "-o", object});
            if (int status = step(argv); status != 0) return status;
            objects.push_back(object);
            split.link_args[split.source_slots[k]] = object;
        }

        link_model_input in{&cmd_, [this] { return compiler_search_dirs(); }, &config_.functions, objects};
        const link_analysis found = analyse_link(in);
        if (config_.verbose) report(found);
        // LTO IR hides what it defines and calls: the link cannot be done right.
        if (!found.lto_units.empty())
            throw link_error("link-time optimisation is not supported: " + found.lto_units.front() +
                             " is compiler IR, so the functions the output defines cannot be found before the link "
                             "(build without -flto, or link with the compiler itself)");
        std::vector<stubgen::shim_function> shims = shim_functions(found);
        std::vector<std::string> backend_flags = backend(found, split.link_args);

        std::vector<std::string> link_argv = with_compiler(split.link_args);
        if (!shims.empty()) {
            std::string object = tmp_.file("shims.o");
            if (int status = compile_shims(stubgen::write_shims(shims, stubgen::linkage::wrap), object); status != 0)
                return status;
            // First, before every input: the stubs' references to the originals (__real_X, which the
            // linker reads as X) must be undefined when the archives are scanned, or a member that
            // defines X and was needed only through the now-wrapped references would not be pulled.
            link_argv.insert(link_argv.begin() + static_cast<std::ptrdiff_t>(config_.compiler.size()), object);
            for (const std::string &flag : stubgen::link_flags(shims, stubgen::linkage::wrap)) link_argv.push_back(flag);
        }
        link_argv.insert(link_argv.end(), backend_flags.begin(), backend_flags.end());
        link_argv.insert(link_argv.end(), {"-L" + config_.runtime_dir, "-lmallochooks"});
        return step(within_arg_max(link_argv));
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

    // The link-time backend (docs/link-time.md): wrap when the malloc family lives outside the output;
    // wrapdl when the output defines some of it, with each defining input (an object, or the archive that
    // holds the member) replaced on the link line by a copy that carries the __mallochooks_real_ aliases.
    std::vector<std::string> backend(const link_analysis &found, std::vector<std::string> &link_args) {
        link_request request;
        std::set<std::string> paths;
        for (const definition &d : found.family) {
            if (d.local) continue;
            if (std::find(request.defined.begin(), request.defined.end(), d.symbol) == request.defined.end())
                request.defined.push_back(d.symbol);
            paths.insert(d.path);
        }
        request.backend = request.defined.empty() ? link_backend::wrap : link_backend::wrapdl;
        if (config_.verbose)
            std::cerr << "allocscc: backend " << (request.defined.empty() ? "wrap" : "wrapdl") << "\n";
        int n = 0;
        for (const std::string &path : paths) {
            const bool archive = read_link_file(path).kind == file_kind::archive;
            const std::string copy = tmp_.file("alias" + std::to_string(n++) + (archive ? ".a" : ".o"));
            wrapdl::alias_result made = wrapdl::write_real_aliases(path, copy);
            if (!made.error.empty()) throw link_error("cannot copy " + path + " with aliases: " + made.error);
            replace_input(link_args, path, copy, found);
        }
        // A shared library on wrapdl without a version script of its own gets ours (link_flags.h).
        bool own_script = false;
        for (const std::string &a : link_args) own_script |= a.find("--version-script") != std::string::npos;
        if (request.backend == link_backend::wrapdl && cmd_.shared && !own_script) request.version_script = config_.wrapdl_map;
        link_flags_result flags = link_flags(request);
        if (!flags.error.empty()) throw link_error(flags.error);
        if (request.backend == link_backend::wrap) {
            // The driver adds libraries after -lmallochooks (libc.a with -static, libgcc_eh.a) whose members
            // call malloc: --wrap sends them to __wrap_X, which must then be in the link already.
            for (const char *name : names::user_api) flags.flags.push_back(std::string("-Wl,--undefined=__wrap_") + name);
        }
        return flags.flags;
    }

    // Puts `copy` where the link line names `path`: as itself, or as the -l that found it.
    static void replace_input(std::vector<std::string> &link_args, const std::string &path, const std::string &copy,
                              const link_analysis &found) {
        for (std::string &a : link_args)
            if (a == path) {
                a = copy;
                return;
            }
        if (auto lib = found.library_paths.find(path); lib != found.library_paths.end()) {
            for (std::size_t i = 0; i < link_args.size(); ++i) {
                if (link_args[i] == "-l" + lib->second) {
                    link_args[i] = copy;
                    return;
                }
                if (link_args[i] == "-l" && i + 1 < link_args.size() && link_args[i + 1] == lib->second) {
                    link_args.erase(link_args.begin() + static_cast<std::ptrdiff_t>(i));
                    link_args[i] = copy;
                    return;
                }
            }
        }
        throw link_error(path + " defines malloc-family functions but is not named on the command line (a linker "
                         "script or -Wl,-l names it): allocscc cannot give the linker its copy with aliases");
    }

    // Compiles the shims into `object`, or points `object` at the same shims compiled by an earlier link.
    int compile_shims(const std::string &text, std::string &object) {
        const std::string source = tmp_.file("shims.c");
        std::ofstream(source) << text;
        std::vector<std::string> options = cmd_.target_flags;
        options.insert(options.end(), {"-x", "c", "-c", "-O2", "-fPIC", "-fexceptions", "-w"});
        const object_cache cache(config_.cache_dir);
        const std::string key = object_cache::key(text, with_compiler(options), find_in_path(config_.compiler[0]));
        if (auto cached = cache.find(key)) {
            if (config_.verbose) std::cerr << "allocscc: shims compiled by an earlier link: " << *cached << "\n";
            object = *cached;
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
        std::vector<std::string> argv = with_compiler(cmd_.target_flags);
        argv.push_back("-print-search-dirs");
        std::string out;
        if (capture(argv, out) != 0) return {};
        return parse_search_dirs(out);
    }

    // The declared global functions the link refers to or defines get a stub each.  Static ones cannot
    // be reached by the linker (docs/allocscc.md, "Static allocation functions").
    std::vector<stubgen::shim_function> shim_functions(const link_analysis &found) const {
        std::set<std::string> symbols(found.referenced.begin(), found.referenced.end());
        for (const definition &d : found.declared)
            if (!d.local) symbols.insert(d.symbol);
        std::vector<stubgen::shim_function> out;
        for (const std::string &s : symbols) out.push_back({*found.declared_symbols.at(s), s});
        return out;
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
    const driver_command &cmd_;
    const std::vector<std::string> &args_;
    temp_dir tmp_;
};

}  // namespace

int link(const settings &config, const driver_command &cmd, const std::vector<std::string> &args) {
    try {
        return linker_run(config, cmd, args).go();
    } catch (const link_error &e) {
        std::cerr << "allocscc: error: " << e.what() << "\n";
        return 1;
    }
}

}  // namespace mallochooks::allocscc
