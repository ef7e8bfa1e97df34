// SPDX-License-Identifier: MIT
// Finding the tool a link-time chain adopts (see adopted_layer.h): a walk of the link map with
// fake_dlsym, which runs inside the first malloc without allocating or locking.
#include "backends/linktime/adopted_layer.h"

namespace mallochooks {

adopted_tool find_tool(const void *self) noexcept {
    const link_map *own = elf::object_containing(self);
    const link_map *after = nullptr;  // search from the first object, then on past each rejected one
    for (;;) {
        const link_map *where = nullptr;
        const void *found = elf::lookup(MALLOCHOOKS_LAYER_SYMBOL, nullptr, after, &where);
        if (found == nullptr || where == nullptr) return {};
        const auto *layer = static_cast<const mallochooks_layer *>(found);
        // Our own object never exports the symbol (link-time outputs keep it hidden), but a tool linked
        // with link-time hooks would: never adopt ourselves.  A layer of another ABI is not ours to call.
        if (where != own && layer->abi == MALLOCHOOKS_LAYER_ABI && layer->size >= sizeof(mallochooks_layer))
            return {layer, elf::extent_of(where)};
        after = where;
    }
}

}  // namespace mallochooks
