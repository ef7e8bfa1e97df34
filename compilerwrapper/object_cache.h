// SPDX-License-Identifier: MIT
// A cache of compiled shim objects.  Every link of a project declares the same functions and uses the same
// compiler, so the shims it compiles are the same from one link to the next; compiling them (a whole
// compiler run for a few stubs) is most of what allocscc adds to a link.  The key is a hash of everything
// the object depends on: the shim source, the compile command, and the compiler binary's identity (path,
// size, modification time).  Entries are written under a temporary name and renamed into place, so
// concurrent links (make -j) never read a partial object.
#ifndef MALLOCHOOKS_COMPILERWRAPPER_OBJECT_CACHE_H
#define MALLOCHOOKS_COMPILERWRAPPER_OBJECT_CACHE_H

#include <optional>
#include <string>
#include <vector>

namespace mallochooks::allocscc {

class object_cache {
public:
    // `dir` empty: no cache (every lookup misses, nothing is stored).
    explicit object_cache(std::string dir) : dir_(std::move(dir)) {}

    // The key of an object compiled by `command` (compiler included) from `source_text`.
    static std::string key(const std::string &source_text, const std::vector<std::string> &command,
                           const std::string &compiler_path);

    // The cached object's path, if present.
    std::optional<std::string> find(const std::string &key) const;
    // Stores a copy of `object` under `key`; failures are ignored (the cache is an optimisation).
    void store(const std::string &key, const std::string &object) const;

    // The default directory: $XDG_CACHE_HOME/allocscc, else $HOME/.cache/allocscc, else none.
    static std::string default_dir();

private:
    std::string dir_;
};

}  // namespace mallochooks::allocscc

#endif
