// SPDX-License-Identifier: MIT
// The dynamic hook ABI (mallochooks/dynamic.h): a layer written once runs in front of an allocator known
// only through a table, and a chain exported as a table behaves as the chain itself.
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "event_hooks/event_layer.h"
#include "mallochooks/dynamic.h"

namespace {

std::vector<std::string> calls;

struct table_terminal {
    static void init() {}
    static void *malloc(size_t n, const void *) { calls.push_back("T.malloc " + std::to_string(n)); return ::malloc(n); }
    static void *calloc(size_t a, size_t b, const void *) { calls.push_back("T.calloc"); return ::calloc(a, b); }
    static void *memalign(size_t a, size_t n, const void *) { calls.push_back("T.memalign"); return ::memalign(a, n); }
    static void free(void *p, const void *) { calls.push_back("T.free"); ::free(p); }
    static void *realloc(void *p, size_t n, const void *) { calls.push_back("T.realloc"); return ::realloc(p, n); }
    static size_t usable_size(void *p, const void *) { calls.push_back("T.usable_size"); return ::malloc_usable_size(p); }
};

struct growing_client : mallochooks::event_client {
    static constexpr bool wants_usable_size = true;
    static inline const void *last_caller = nullptr;
    static void post_init() { calls.push_back("E.post_init"); }
    static void pre_alloc(size_t *size, size_t *, const void *caller) {
        calls.push_back("E.pre_alloc " + std::to_string(*size));
        *size += 100;
        last_caller = caller;
    }
    static int pre_nonnull_free(void *, size_t usable, const void *) {
        calls.push_back("E.pre_nonnull_free " + std::to_string(usable >= 100));
        return 0;
    }
};

constexpr mallochooks_layer exported =
    mallochooks::layer_of<mallochooks::event_layer<growing_client>>::value("test", &mallochooks::table_of<table_terminal>::value);

}  // namespace

TEST_CASE("an exported layer runs in front of an allocator given as a table") {
    const mallochooks_hooks *next = &mallochooks::table_of<table_terminal>::value;
    REQUIRE(exported.abi == MALLOCHOOKS_LAYER_ABI);
    REQUIRE(exported.size == sizeof(mallochooks_layer));
    REQUIRE(std::string(exported.name) == "test");
    calls.clear();
    exported.init(next);
    const void *caller = reinterpret_cast<const void *>(0x1234);
    void *p = exported.malloc(next, 20, caller);
    REQUIRE(p != nullptr);
    REQUIRE(growing_client::last_caller == caller);
    REQUIRE(malloc_usable_size(p) >= 120);
    exported.free(next, p, caller);
    REQUIRE(calls == std::vector<std::string>{"E.post_init", "E.pre_alloc 20", "T.malloc 120", "T.usable_size",
                                              "E.pre_nonnull_free 1", "T.free"});
}

TEST_CASE("a table of a chain calls the chain; table_next calls the table") {
    const mallochooks_hooks *t = &mallochooks::table_of<table_terminal>::value;
    calls.clear();
    mallochooks::table_next n{t};
    void *p = n.calloc(2, 8, nullptr);
    for (int i = 0; i < 16; ++i) REQUIRE(static_cast<char *>(p)[i] == 0);
    p = n.realloc(p, 64, nullptr);
    REQUIRE(n.usable_size(p, nullptr) >= 64);
    n.free(p, nullptr);
    REQUIRE(calls == std::vector<std::string>{"T.calloc", "T.realloc", "T.usable_size", "T.free"});
}
