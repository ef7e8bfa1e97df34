// SPDX-License-Identifier: MIT
// The shim object cache (see object_cache.h).
#include "compilerwrapper/object_cache.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <system_error>
#include <utility>

namespace mallochooks::allocscc {

namespace {

// FNV-1a, 64 bits, twice with different offsets: a cache key, not a security boundary.
struct hasher {
    std::uint64_t a = 14695981039346656037ull, b = 1099511628211ull * 7919;
    void add(const std::string &s) {
        for (unsigned char c : s) {
            a = (a ^ c) * 1099511628211ull;
            b = (b ^ c) * 1099511628211ull + 1;
        }
        a = (a ^ 0xff) * 1099511628211ull;  // separator: ("ab","c") != ("a","bc")
        b = (b ^ 0xfe) * 1099511628211ull;
    }
    std::string hex() const {
        char buf[40];
        std::snprintf(buf, sizeof buf, "%016llx%016llx", static_cast<unsigned long long>(a), static_cast<unsigned long long>(b));
        return buf;
    }
};

}  // namespace

std::string object_cache::key(const std::string &source_text, const std::vector<std::string> &command,
                              const std::string &compiler_path) {
    hasher h;
    h.add(source_text);
    for (const std::string &a : command) h.add(a);
    h.add(compiler_path);
    struct stat st;
    if (stat(compiler_path.c_str(), &st) == 0) {
        h.add(std::to_string(st.st_size));
        h.add(std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec));
        h.add(std::to_string(st.st_ino));
    }
    return h.hex();
}

std::optional<std::string> object_cache::find(const std::string &key) const {
    if (dir_.empty()) return std::nullopt;
    std::string path = dir_ + "/" + key + ".o";
    if (access(path.c_str(), R_OK) != 0) return std::nullopt;
    return path;
}

bool object_cache::fetch(const std::string &key, const std::string &dest) const {
    const std::optional<std::string> path = find(key);
    if (!path) return false;
    std::error_code ec;
    std::filesystem::remove(dest, ec);
    if (link(path->c_str(), dest.c_str()) != 0) {
        std::filesystem::copy_file(*path, dest, std::filesystem::copy_options::overwrite_existing, ec);
        if (ec) return false;  // evicted meanwhile, or unreadable: compile instead
    }
    utimensat(AT_FDCWD, path->c_str(), nullptr, 0);  // used now: the last to be evicted
    return true;
}

void object_cache::evict() const {
    std::error_code ec;
    std::vector<std::pair<std::filesystem::file_time_type, std::filesystem::path>> entries;
    for (const auto &e : std::filesystem::directory_iterator(dir_, ec)) {
        const std::filesystem::path &p = e.path();
        if (p.extension() != ".o" || p.filename().string()[0] == '.') continue;
        std::error_code tec;
        const auto t = std::filesystem::last_write_time(p, tec);
        if (!tec) entries.emplace_back(t, p);
    }
    if (entries.size() <= max_entries_) return;
    std::sort(entries.begin(), entries.end());
    for (std::size_t i = 0; i < entries.size() - max_entries_; ++i) std::filesystem::remove(entries[i].second, ec);
}

void object_cache::store(const std::string &key, const std::string &object) const {
    if (dir_.empty()) return;
    std::error_code ec;
    std::filesystem::create_directories(dir_, ec);
    const std::string temp = dir_ + "/." + key + "." + std::to_string(getpid()) + ".tmp";
    std::filesystem::copy_file(object, temp, std::filesystem::copy_options::overwrite_existing, ec);
    if (ec) return;
    std::filesystem::rename(temp, dir_ + "/" + key + ".o", ec);
    if (ec) {
        std::filesystem::remove(temp, ec);
        return;
    }
    evict();
}

std::string object_cache::default_dir() {
    const char *xdg = std::getenv("XDG_CACHE_HOME");
    if (xdg != nullptr && *xdg == '/') return std::string(xdg) + "/allocscc";
    const char *home = std::getenv("HOME");
    if (home != nullptr && *home == '/') return std::string(home) + "/.cache/allocscc";
    return "";
}

}  // namespace mallochooks::allocscc
