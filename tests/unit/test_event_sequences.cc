// SPDX-License-Identifier: MIT
// The event sequence of every user-API call (docs/events.md), checked in-process: the real user-API
// translation, front and event layer, over a recording terminal that uses this test's own (unhooked)
// glibc malloc.  Also: chaining two event layers, cancelling a free, errno preservation, the reentrancy
// guard, and that usable sizes are fetched only for clients that want them.
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "event_hooks/event_layer.h"

// The tests pass impossible sizes on purpose, to see the failure paths.
#pragma GCC diagnostic ignored "-Walloc-size-larger-than="
#include "libmallochooks/user_api.h"

namespace {

std::vector<std::string> events_log;

template <class... A> void record(const char *what, A... args) {
    std::string s = what;
    s += '(';
    bool first = true;
    [[maybe_unused]] auto add = [&](long long v) {
        if (!first) s += ',';
        s += std::to_string(v);
        first = false;
    };
    (add(static_cast<long long>(args)), ...);
    s += ')';
    events_log.push_back(s);
}

// A terminal over this process's own glibc malloc, recording each call.
struct recording_terminal {
    static inline int inits = 0;
    static void init() { ++inits; }
    static void *malloc(size_t n, const void *) {
        record("T.malloc", n);
        return ::malloc(n);
    }
    static void *calloc(size_t a, size_t b, const void *) {
        record("T.calloc", a, b);
        return ::calloc(a, b);
    }
    static void *memalign(size_t a, size_t n, const void *) {
        record("T.memalign", a, n);
        return ::memalign(a, n);
    }
    static void free(void *p, const void *) {
        record("T.free");
        ::free(p);
    }
    static void *realloc(void *p, size_t n, const void *) {
        record("T.realloc", n);
        return ::realloc(p, n);
    }
    static size_t usable_size(void *p, const void *) {
        record("T.usable_size");
        return ::malloc_usable_size(p);
    }
};

// Records every event; modifies sizes when asked to; may cancel frees.
template <int Id, size_t Grow, bool WantsUsable> struct recorder : mallochooks::event_client {
    static constexpr bool wants_usable_size = WantsUsable;
    static inline bool cancel_next_free = false;
    static inline size_t raise_alignment_to = 0;
    static std::string tag(const char *e) { return "E" + std::to_string(Id) + "." + e; }
    static void post_init() { record(tag("post_init").c_str()); }
    static void pre_alloc(size_t *size, size_t *align, const void *) {
        record(tag("pre_alloc").c_str(), *size, *align);
        *size += Grow;
        if (raise_alignment_to) *align = raise_alignment_to;
    }
    static void post_successful_alloc(void *, size_t msize, size_t malign, size_t rsize, size_t ralign,
                                      const void *) {
        record(tag("post_successful_alloc").c_str(), msize, malign, rsize, ralign);
    }
    static int pre_nonnull_free(void *, size_t usable, const void *) {
        record(tag("pre_nonnull_free").c_str(), usable != 0);
        bool c = cancel_next_free;
        cancel_next_free = false;
        return c;
    }
    static void post_nonnull_free(void *) { record(tag("post_nonnull_free").c_str()); }
    static void pre_nonnull_nonzero_realloc(void *, size_t size, const void *) {
        record(tag("pre_nonnull_nonzero_realloc").c_str(), size);
    }
    static void post_nonnull_nonzero_realloc(void *, size_t msize, size_t old_usable, const void *, void *newp) {
        record(tag("post_nonnull_nonzero_realloc").c_str(), msize, old_usable != 0, newp != nullptr);
    }
};

using one = recorder<1, 0, true>;
using one_chain = mallochooks::chain<mallochooks::event_layer<one>, recording_terminal>;
using api = mallochooks::user_api<mallochooks::front<one_chain>>;

std::vector<std::string> run(void (*f)()) {
    events_log.clear();
    f();
    return events_log;
}

using V = std::vector<std::string>;
const void *const here = nullptr;

}  // namespace

TEST_CASE("post_init is raised once, before any other event, after the terminal is ready") {
    int before = recording_terminal::inits;
    auto l = run([] { api::free(api::malloc(8, here), here); });
    REQUIRE(recording_terminal::inits == before + 1);
    REQUIRE(l.at(0) == "E1.post_init()");
    REQUIRE(l.at(1) == "E1.pre_alloc(8,16)");
    auto again = run([] { api::free(api::malloc(8, here), here); });
    REQUIRE(std::count(again.begin(), again.end(), "E1.post_init()") == 0);
}

TEST_CASE("malloc, free and calloc raise exactly their events") {
    api::free(api::malloc(1, here), here);  // initialised
    REQUIRE(run([] { api::free(api::malloc(40, here), here); }) ==
            V{"E1.pre_alloc(40,16)", "T.malloc(40)", "E1.post_successful_alloc(40,16,40,16)",
              "T.usable_size()", "E1.pre_nonnull_free(1)", "T.free()", "E1.post_nonnull_free()"});
    REQUIRE(run([] { api::free(nullptr, here); }) == V{});
    REQUIRE(run([] {
                char *p = static_cast<char *>(api::calloc(3, 5, here));
                for (int i = 0; i < 15; ++i) REQUIRE(p[i] == 0);
                ::free(p);
            }) == V{"E1.pre_alloc(15,16)", "T.calloc(3,5)", "E1.post_successful_alloc(15,16,15,16)"});
}

TEST_CASE("calloc overflow fails with ENOMEM and raises nothing") {
    api::free(api::malloc(1, here), here);
    errno = 0;
    auto l = run([] { REQUIRE(api::calloc(SIZE_MAX / 2, 3, here) == nullptr); });
    REQUIRE(errno == ENOMEM);
    REQUIRE(l == V{});
    errno = 0;
    l = run([] { REQUIRE(api::reallocarray(nullptr, SIZE_MAX / 2, 3, here) == nullptr); });
    REQUIRE(errno == ENOMEM);
    REQUIRE(l == V{});
}

TEST_CASE("realloc's degenerate cases raise each event once") {
    api::free(api::malloc(1, here), here);
    // realloc(NULL, n) is a malloc: one pre_alloc (the original libmallochooks raised two).
    void *p = nullptr;
    REQUIRE(run([] {
                void *q = api::realloc(nullptr, 24, here);
                ::free(q);
            }) == V{"E1.pre_alloc(24,16)", "T.malloc(24)", "E1.post_successful_alloc(24,16,24,16)"});
    // realloc(p, 0) frees and returns NULL.
    p = ::malloc(10);
    static void *sp;
    sp = p;
    REQUIRE(run([] { REQUIRE(api::realloc(sp, 0, here) == nullptr); }) ==
            V{"T.usable_size()", "E1.pre_nonnull_free(1)", "T.free()", "E1.post_nonnull_free()"});
    // realloc(p, n): the realloc events around a pre_alloc.
    sp = ::malloc(10);
    REQUIRE(run([] { ::free(api::realloc(sp, 100, here)); }) ==
            V{"E1.pre_nonnull_nonzero_realloc(100)", "T.usable_size()", "E1.pre_alloc(100,16)", "T.realloc(100)",
              "E1.post_nonnull_nonzero_realloc(100,1,1)"});
    // A failed realloc is told apart by its NULL new pointer; the old chunk is live.
    sp = ::malloc(10);
    errno = 0;
    REQUIRE(run([] { REQUIRE(api::realloc(sp, SIZE_MAX - 4096, here) == nullptr); }) ==
            V{"E1.pre_nonnull_nonzero_realloc(" + std::to_string((long long)(SIZE_MAX - 4096)) + ")",
              "T.usable_size()", "E1.pre_alloc(" + std::to_string((long long)(SIZE_MAX - 4096)) + ",16)",
              "T.realloc(" + std::to_string((long long)(SIZE_MAX - 4096)) + ")",
              "E1.post_nonnull_nonzero_realloc(" + std::to_string((long long)(SIZE_MAX - 4096)) + ",1,0)"});
    REQUIRE(errno == ENOMEM);
    ::free(sp);
}

TEST_CASE("the aligned family becomes memalign with the requested alignment") {
    api::free(api::malloc(1, here), here);
    REQUIRE(run([] { ::free(api::memalign(64, 10, here)); }) ==
            V{"E1.pre_alloc(10,64)", "T.memalign(64,10)", "E1.post_successful_alloc(10,64,10,64)"});
    REQUIRE(run([] { ::free(api::aligned_alloc(256, 512, here)); }) ==
            V{"E1.pre_alloc(512,256)", "T.memalign(256,512)", "E1.post_successful_alloc(512,256,512,256)"});
    REQUIRE(run([] { ::free(api::valloc(10, here)); }) ==
            V{"E1.pre_alloc(10,4096)", "T.memalign(4096,10)", "E1.post_successful_alloc(10,4096,10,4096)"});
    REQUIRE(run([] { ::free(api::pvalloc(10, here)); }) ==
            V{"E1.pre_alloc(4096,4096)", "T.memalign(4096,4096)", "E1.post_successful_alloc(4096,4096,4096,4096)"});
    static void *out;
    out = &out;
    REQUIRE(run([] {
                REQUIRE(api::posix_memalign(&out, 32, 7, here) == 0);
                REQUIRE(reinterpret_cast<uintptr_t>(out) % 32 == 0);
                ::free(out);
            }) == V{"E1.pre_alloc(7,32)", "T.memalign(32,7)", "E1.post_successful_alloc(7,32,7,32)"});
}

TEST_CASE("posix_memalign: EINVAL raises nothing and leaves *memptr and errno alone; ENOMEM sets errno") {
    api::free(api::malloc(1, here), here);
    static void *out;
    out = &out;
    errno = 1234;
    REQUIRE(run([] {
                REQUIRE(api::posix_memalign(&out, 24, 8, here) == EINVAL);
                REQUIRE(api::posix_memalign(&out, 0, 8, here) == EINVAL);
                REQUIRE(api::posix_memalign(&out, 4, 8, here) == EINVAL);
            }) == V{});
    REQUIRE(errno == 1234);
    REQUIRE(out == &out);
    errno = 0;
    auto l = run([] { REQUIRE(api::posix_memalign(&out, 64, SIZE_MAX - 100, here) == ENOMEM); });
    REQUIRE(errno == ENOMEM);
    REQUIRE(out == &out);
    REQUIRE(l.size() == 2);  // pre_alloc, T.memalign; no post_successful_alloc
}

TEST_CASE("malloc_usable_size(NULL) is 0 without any hook call") {
    api::free(api::malloc(1, here), here);
    REQUIRE(run([] { REQUIRE(api::malloc_usable_size(nullptr, here) == 0); }) == V{});
    static void *p;
    p = ::malloc(30);
    REQUIRE(run([] { REQUIRE(api::malloc_usable_size(p, here) >= 30); }) == V{"T.usable_size()"});
    ::free(p);
}

TEST_CASE("pre_nonnull_free can cancel the free") {
    api::free(api::malloc(1, here), here);
    static void *p;
    p = ::malloc(16);
    one::cancel_next_free = true;
    REQUIRE(run([] { api::free(p, here); }) == V{"T.usable_size()", "E1.pre_nonnull_free(1)"});
    ::free(p);  // still ours to free
}

namespace {
using quiet = recorder<7, 0, false>;
using quiet_chain = mallochooks::chain<mallochooks::event_layer<quiet>, recording_terminal>;
using quiet_api = mallochooks::user_api<mallochooks::front<quiet_chain>>;
}  // namespace

TEST_CASE("free fetches no usable size for a client that does not want it") {
    quiet_api::free(quiet_api::malloc(1, here), here);
    REQUIRE(run([] { quiet_api::free(quiet_api::malloc(5, here), here); }) ==
            V{"E7.pre_alloc(5,16)", "T.malloc(5)", "E7.post_successful_alloc(5,16,5,16)", "E7.pre_nonnull_free(0)",
              "T.free()", "E7.post_nonnull_free()"});
    static void *p;
    p = ::malloc(8);
    REQUIRE(run([] { ::free(quiet_api::realloc(p, 64, here)); }) ==
            V{"E7.pre_nonnull_nonzero_realloc(64)", "E7.pre_alloc(64,16)", "T.realloc(64)",
              "E7.post_nonnull_nonzero_realloc(64,0,1)"});
}

namespace {
using outer = recorder<1, 8, false>;
using inner = recorder<2, 16, false>;
using two_chain =
    mallochooks::chain<mallochooks::event_layer<outer>, mallochooks::event_layer<inner>, recording_terminal>;
using two_api = mallochooks::user_api<mallochooks::front<two_chain>>;
}  // namespace

TEST_CASE("two chained layers: order of events and each sees the size the previous one modified") {
    events_log.clear();
    ::free(two_api::malloc(1, here));
    // Innermost layer initialises first.
    REQUIRE(events_log.at(0) == "E2.post_init()");
    REQUIRE(events_log.at(1) == "E1.post_init()");
    REQUIRE(run([] { two_api::free(two_api::malloc(100, here), here); }) ==
            V{"E1.pre_alloc(100,16)", "E2.pre_alloc(108,16)", "T.malloc(124)",
              "E2.post_successful_alloc(124,16,108,16)", "E1.post_successful_alloc(108,16,100,16)",
              "E1.pre_nonnull_free(0)", "E2.pre_nonnull_free(0)", "T.free()", "E2.post_nonnull_free()",
              "E1.post_nonnull_free()"});
}

namespace {
struct aligning : mallochooks::event_client {
    static inline size_t to = 0;
    static void pre_alloc(size_t *, size_t *align, const void *) {
        if (to) *align = to;
    }
};
using aligning_chain = mallochooks::chain<mallochooks::event_layer<aligning>, recording_terminal>;
using aligning_api = mallochooks::user_api<mallochooks::front<aligning_chain>>;
}  // namespace

TEST_CASE("pre_alloc may raise the alignment of malloc, calloc and realloc") {
    aligning::to = 0;
    ::free(aligning_api::malloc(1, here));
    aligning::to = 128;
    static void *p;
    REQUIRE(run([] { p = aligning_api::malloc(10, here); }) == V{"T.memalign(128,10)"});
    REQUIRE(reinterpret_cast<uintptr_t>(p) % 128 == 0);
    memset(p, 0x5a, 10);
    REQUIRE(run([] { p = aligning_api::realloc(p, 5000, here); }) ==
            V{"T.memalign(128,5000)", "T.usable_size()", "T.free()"});
    REQUIRE(reinterpret_cast<uintptr_t>(p) % 128 == 0);
    REQUIRE(static_cast<unsigned char *>(p)[9] == 0x5a);
    ::free(p);
    REQUIRE(run([] { p = aligning_api::calloc(10, 10, here); }) == V{"T.memalign(128,100)"});
    for (int i = 0; i < 100; ++i) REQUIRE(static_cast<unsigned char *>(p)[i] == 0);
    ::free(p);
    aligning::to = 0;
}

namespace {
struct errno_clobberer : mallochooks::event_client {
    static void pre_alloc(size_t *, size_t *, const void *) { errno = EBADF; }
    static int pre_nonnull_free(void *, size_t, const void *) {
        errno = EIO;
        return 0;
    }
    static void post_nonnull_free(void *) { errno = EPIPE; }
};
using clobber_chain = mallochooks::chain<mallochooks::event_layer<errno_clobberer>, recording_terminal>;
using clobber_api = mallochooks::user_api<mallochooks::front<clobber_chain>>;
}  // namespace

TEST_CASE("events cannot change errno as the program sees it") {
    errno = 77;
    void *p = clobber_api::malloc(10, here);
    REQUIRE(errno == 77);
    clobber_api::free(p, here);
    REQUIRE(errno == 77);
}

namespace {
struct reentrant : mallochooks::event_client {
    static inline void *inner_chunk = nullptr;
    static void pre_alloc(size_t *, size_t *, const void *);
};
using reentrant_chain = mallochooks::chain<mallochooks::event_layer<reentrant>, recording_terminal>;
using reentrant_api = mallochooks::user_api<mallochooks::front<reentrant_chain>>;
void reentrant::pre_alloc(size_t *, size_t *, const void *) {
    record("E.pre_alloc");
    if (inner_chunk == nullptr) inner_chunk = reentrant_api::malloc(3, here);  // nested: straight to the terminal
}
}  // namespace

TEST_CASE("an event client that allocates reaches the terminal directly, raising nothing") {
    ::free(reentrant_api::malloc(1, here));
    reentrant::inner_chunk = nullptr;
    REQUIRE(run([] { ::free(reentrant_api::malloc(9, here)); }) ==
            V{"E.pre_alloc()", "T.malloc(3)", "T.malloc(9)"});
    REQUIRE(reentrant::inner_chunk != nullptr);
    ::free(reentrant::inner_chunk);
    REQUIRE(!mallochooks::in_hooks());
}

namespace {
// A second route into the same layers over another terminal (what a preloaded library's __libc_ entry
// points use: chain::over, front<Chain, Owner>).
struct other_terminal : recording_terminal {
    static void *malloc(size_t n, const void *) {
        record("U.malloc", n);
        return ::malloc(n);
    }
    static void free(void *p, const void *) {
        record("U.free");
        ::free(p);
    }
};
using first = recorder<5, 0, false>;
using second = recorder<6, 0, false>;
using owner_chain = mallochooks::chain<mallochooks::event_layer<first>, mallochooks::event_layer<second>, recording_terminal>;
using other_chain = owner_chain::over<other_terminal>;
static_assert(std::is_same_v<other_chain, mallochooks::chain<mallochooks::event_layer<first>,
                                                             mallochooks::event_layer<second>, other_terminal>>);
static_assert(std::is_same_v<owner_chain::chain_terminal, recording_terminal>);
using owner_api = mallochooks::user_api<mallochooks::front<owner_chain>>;
using other_api = mallochooks::user_api<mallochooks::front<other_chain, owner_chain>>;
}  // namespace

TEST_CASE("a second route over another terminal: the same layers, readied once by the owner's front") {
    const int before = recording_terminal::inits;
    REQUIRE(run([] { other_api::free(other_api::malloc(24, here), here); }) ==
            V{"E6.post_init()", "E5.post_init()", "E5.pre_alloc(24,16)", "E6.pre_alloc(24,16)", "U.malloc(24)",
              "E6.post_successful_alloc(24,16,24,16)", "E5.post_successful_alloc(24,16,24,16)",
              "E5.pre_nonnull_free(0)", "E6.pre_nonnull_free(0)", "U.free()", "E6.post_nonnull_free()",
              "E5.post_nonnull_free()"});
    REQUIRE(recording_terminal::inits == before + 1);  // the owner's chain, once
    auto l = run([] { owner_api::free(owner_api::malloc(8, here), here); });
    REQUIRE(std::count(l.begin(), l.end(), "E5.post_init()") == 0);
    REQUIRE(std::find(l.begin(), l.end(), "T.malloc(8)") != l.end());
}
