// SPDX-License-Identifier: MIT
// stubgen: the shim generator as a tool of its own, for builds that do not go through allocscc (a Meson or
// Make rule generates the shims, compiles them, and links with the flags it prints and -lmallochooks).
//
//   stubgen [--alloc=DESCS] [--free=DESCS] [--suballoc=DESCS] [--alloc-fns=FILE]... [--linkage=wrap|defsym]
//           [--emit=c|object] [-o FILE] [--print-link-flags]
//
// --emit=object writes the x86-64 shim object of thunks (shim_object.h) instead of C: nothing to compile,
// but it needs libmallochooks.a's trampolines in the link, and functions with arguments on the stack
// cannot have one.
// Descriptors are those of allocscc (README, "Descriptor grammar"); names must be link symbols (C names or
// mangled C++ names).  Exit status: 0, or 1 with a message naming the problem and its position.
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "stubgen/descriptor.h"
#include "stubgen/shim_object.h"
#include "stubgen/shim_writer.h"

namespace sg = mallochooks::stubgen;

namespace {

const char usage[] =
    "usage: stubgen [--alloc=DESCS] [--free=DESCS] [--suballoc=DESCS] [--alloc-fns=FILE]...\n"
    "               [--linkage=wrap|defsym] [--emit=c|object] [-o FILE] [--print-link-flags]\n";

std::string read_whole(const std::string &path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error(path + ": cannot read: " + std::strerror(errno));
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

// "--name=value" or "--name value".
bool option(const std::vector<std::string> &args, std::size_t &i, const std::string &name, std::string &value) {
    const std::string &a = args[i];
    if (a.rfind(name + "=", 0) == 0) {
        value = a.substr(name.size() + 1);
        return true;
    }
    if (a == name) {
        if (i + 1 >= args.size()) throw std::runtime_error(name + " needs a value");
        value = args[++i];
        return true;
    }
    return false;
}

}  // namespace

int main(int argc, char **argv) {
    try {
        std::vector<std::string> args(argv + 1, argv + argc);
        std::vector<sg::descriptor> all;
        sg::linkage how = sg::linkage::wrap;
        std::string output = "-";
        bool print_flags = false, object = false;
        auto append = [&](std::vector<sg::descriptor> more) { all.insert(all.end(), more.begin(), more.end()); };
        for (std::size_t i = 0; i < args.size(); ++i) {
            std::string v;
            if (option(args, i, "--alloc", v)) append(sg::parse_list(v, sg::fn_kind::alloc, "--alloc"));
            else if (option(args, i, "--free", v)) append(sg::parse_list(v, sg::fn_kind::free, "--free"));
            else if (option(args, i, "--suballoc", v)) append(sg::parse_list(v, sg::fn_kind::suballoc, "--suballoc"));
            else if (option(args, i, "--alloc-fns", v)) append(sg::parse_file(read_whole(v), v));
            else if (option(args, i, "--linkage", v)) {
                if (v == "wrap") how = sg::linkage::wrap;
                else if (v == "defsym") how = sg::linkage::defsym;
                else throw std::runtime_error("--linkage: '" + v + "' is neither 'wrap' nor 'defsym'");
            } else if (option(args, i, "--emit", v)) {
                if (v == "c") object = false;
                else if (v == "object") object = true;
                else throw std::runtime_error("--emit: '" + v + "' is neither 'c' nor 'object'");
            } else if (option(args, i, "-o", v)) output = v;
            else if (args[i] == "--print-link-flags") print_flags = true;
            else if (args[i] == "--help" || args[i] == "-h") {
                std::cout << usage;
                return 0;
            } else throw std::runtime_error("unknown argument '" + args[i] + "'\n" + usage);
        }
        sg::check_set(all);
        const std::vector<sg::shim_function> functions = sg::with_plain_symbols(all, how);
        if (print_flags) {
            for (const std::string &flag : sg::link_flags(functions)) std::cout << flag << "\n";
            return 0;
        }
        if (object) {
            if (output == "-") throw std::runtime_error("--emit=object needs -o FILE");
            const std::string error = sg::write_shim_object(functions, {}, output);
            if (!error.empty()) throw std::runtime_error(error);
            return 0;
        }
        const std::string source = sg::write_shims(functions);
        if (output == "-") {
            std::cout << source;
        } else {
            std::ofstream out(output, std::ios::binary);
            out << source;
            if (!out.flush()) throw std::runtime_error(output + ": cannot write: " + std::strerror(errno));
        }
        return 0;
    } catch (const std::exception &e) {
        std::cerr << "stubgen: " << e.what() << "\n";
        return 1;
    }
}
