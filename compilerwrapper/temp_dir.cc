// SPDX-License-Identifier: MIT
// The private temporary directory of a link (see temp_dir.h).
#include "compilerwrapper/temp_dir.h"

#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <stdexcept>
#include <vector>

namespace mallochooks::allocscc {

temp_dir::temp_dir(bool keep) : keep_(keep) {
    const char *base = std::getenv("TMPDIR");
    std::string templ = std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/allocscc-XXXXXX";
    std::vector<char> buf(templ.begin(), templ.end());
    buf.push_back('\0');
    if (mkdtemp(buf.data()) == nullptr)
        throw std::runtime_error("cannot create a temporary directory " + templ + ": " + std::strerror(errno));
    path_ = buf.data();
}

void temp_dir::remove() {
    if (path_.empty()) return;
    if (keep_) {
        std::cerr << "allocscc: kept the temporary files in " << path_ << "\n";
    } else {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    path_.clear();
}

temp_dir::~temp_dir() { remove(); }

}  // namespace mallochooks::allocscc
