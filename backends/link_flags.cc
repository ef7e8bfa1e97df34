// SPDX-License-Identifier: MIT
// The link flags of the link-time backends (see link_flags.h).
#include "backends/link_flags.h"

#include <algorithm>

#include "backends/family_names.h"

namespace mallochooks {

link_flags_result link_flags(const link_request &request) {
    link_flags_result result;
    auto add = [&](const std::string &flag) { result.flags.push_back("-Wl," + flag); };
    if (request.backend == link_backend::wrap) {
        // An output with C++ operators of its own keeps every C++ call as it was: its operators are
        // its own (the caller gives them shims), and libstdc++'s others call them.
        for (const std::string &name : request.defined) {
            if (names::user_api_index(name.c_str()) < 0 || names::is_c_user_api(name.c_str())) {
                result.error = "wrap: '" + name + "' is not a C++ operator of the malloc family (an output "
                               "that defines a C function of the family links with wrapdl)";
                return result;
            }
        }
        const bool own_cxx = !request.defined.empty();
        const auto &wrapped = own_cxx ? std::vector<const char *>(std::begin(names::c_user_api), std::end(names::c_user_api))
                                      : std::vector<const char *>(std::begin(names::user_api), std::end(names::user_api));
        for (const char *name : wrapped) add(std::string("--wrap=") + name);
        // The driver adds libraries after the user's (-lmallochooks included) whose members call malloc:
        // libc.a under -static, libgcc_eh.a.  --wrap sends those calls to __wrap_X, which must then be in
        // the link already, even if the output's own files never call the family.
        for (const char *name : wrapped) add(std::string("--undefined=__wrap_") + name);
        return result;
    }

    for (const std::string &name : request.defined) {
        if (names::user_api_index(name.c_str()) < 0) {
            result.error = "'" + name + "' is not a function of the malloc family";
            return result;
        }
    }
    if (std::none_of(request.defined.begin(), request.defined.end(),
                     [](const std::string &name) { return names::is_c_user_api(name.c_str()); })) {
        result.error = "wrapdl needs the C functions of the family the output defines (none given); an output "
                       "that defines none (or only C++ operators) links with the wrap backend";
        return result;
    }
    // In the family's order, each once, whatever order the caller gave them in.
    auto defines = [&](const char *name) {
        return std::find(request.defined.begin(), request.defined.end(), name) != request.defined.end();
    };
    const std::string entry = names::wrapdl_entry_prefix, real = names::wrapdl_real_prefix,
                      fallback = names::wrapdl_fallback_prefix;
    for (const char *name : names::user_api) {
        if (!defines(name)) continue;
        add("--defsym=" + std::string(name) + "=" + entry + name);
        add("--undefined=" + entry + name);
        add("--undefined=" + real + name);
    }
    for (const char *name : names::wrapdl_called) {
        if (defines(name)) continue;
        add("--defsym=" + real + name + "=" + fallback + name);
        add("--undefined=" + fallback + name);
    }
    // The throwing operators' exceptions kept out of the chain (wrapdl/cxx_catch.cc, which needs the C++
    // runtime) only where there are operators of the output's own; a plain call elsewhere.
    const bool own_cxx = std::any_of(request.defined.begin(), request.defined.end(),
                                     [](const std::string &name) { return !names::is_c_user_api(name.c_str()); });
    for (const char *name : {"cxx_try", "cxx_rethrow"}) {
        const std::string target = (own_cxx ? names::wrapdl_catching_prefix : fallback) + name;
        add("--defsym=" + real + name + "=" + target);
        add("--undefined=" + target);
    }
    if (!request.version_script.empty()) add("--version-script=" + request.version_script);
    return result;
}

}  // namespace mallochooks
