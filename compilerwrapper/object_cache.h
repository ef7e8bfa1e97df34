// SPDX-License-Identifier: MIT
// A cache of compiled shim objects.  Every link of a project declares the same functions and uses the same
// compiler, so the shims it compiles are the same from one link to the next; compiling them (a whole
// compiler run for a few stubs) is most of what allocscc adds to a link.  The key is a hash of everything
// the object depends on: the shim source, the compile command, and the compiler binary's identity (path,
// size, modification time).  Entries are written under a temporary name and renamed into place, so
// concurrent links (make -j) never read a partial object.  The cache is bounded: a store that leaves more
// than max_entries objects removes the least recently used ones (a hit refreshes its entry's time), and a
// hit hands the link its own hard link (or copy) of the entry, so an eviction by a concurrent link never
// takes an object from under a link that uses it.
#ifndef MALLOCHOOKS_COMPILERWRAPPER_OBJECT_CACHE_H
#define MALLOCHOOKS_COMPILERWRAPPER_OBJECT_CACHE_H

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace mallochooks::allocscc {

class object_cache {
public:
    // `dir` empty: no cache (every lookup misses, nothing is stored).
    explicit object_cache(std::string dir, std::size_t max_entries = default_max_entries)
        : dir_(std::move(dir)), max_entries_(max_entries) {}

    // Enough for every combination of declared functions and compiler flags of a few projects.
    static constexpr std::size_t default_max_entries = 64;

    // The key of an object compiled by `command` (compiler included) from `source_text`.
    static std::string key(const std::string &source_text, const std::vector<std::string> &command,
                           const std::string &compiler_path);

    // The cached object's path, if present.
    std::optional<std::string> find(const std::string &key) const;
    // On a hit, puts the cached object at `dest` (a hard link, or a copy) and marks the entry as used.
    bool fetch(const std::string &key, const std::string &dest) const;
    // Stores a copy of `object` under `key`, then evicts beyond max_entries; failures are ignored (the
    // cache is an optimisation).
    void store(const std::string &key, const std::string &object) const;

    // The default directory: $XDG_CACHE_HOME/allocscc, else $HOME/.cache/allocscc, else none.
    static std::string default_dir();

private:
    void evict() const;

    std::string dir_;
    std::size_t max_entries_;
};

}  // namespace mallochooks::allocscc

#endif
