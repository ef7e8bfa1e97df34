// SPDX-License-Identifier: MIT
// A C++ allocation function in a namespace (declared to allocsc++ by its qualified name) that throws.
#include <cstddef>
namespace pool {
void *alloc(std::size_t n);  // throws std::bad_alloc for n == 0
const void *site_seen();
const void *site_now();
}  // namespace pool
