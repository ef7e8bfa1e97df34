// SPDX-License-Identifier: MIT
// A link's private temporary directory: unique per invocation (mkdtemp, so concurrent allocscc runs under
// make -j never share a file), removed with everything in it when the link ends, whether it succeeded,
// failed, threw, or was interrupted by a signal (see process.h) -- unless the user asked to keep it.
#ifndef MALLOCHOOKS_COMPILERWRAPPER_TEMP_DIR_H
#define MALLOCHOOKS_COMPILERWRAPPER_TEMP_DIR_H

#include <string>

namespace mallochooks::allocscc {

class temp_dir {
public:
    explicit temp_dir(bool keep);
    ~temp_dir();
    temp_dir(const temp_dir &) = delete;
    temp_dir &operator=(const temp_dir &) = delete;

    const std::string &path() const { return path_; }
    std::string file(const std::string &name) const { return path_ + "/" + name; }
    void remove();

private:
    std::string path_;
    bool keep_;
};

}  // namespace mallochooks::allocscc

#endif
