// SPDX-License-Identifier: MIT
// C++ operator new and delete, every variant, reach the hooks through libstdc++ (which calls malloc,
// aligned_alloc and free): each raises exactly the expected events, for the same chunk.
#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>
#include <new>

#include "recorder_client.h"

namespace {
struct alignas(128) wide {
    char bytes[300];
};
recorder_api rec;
mhtest_event ev[64];

size_t logged(void (*f)()) {
    rec.log_begin();
    f();
    return rec.log_end(ev, 64);
}

void expect_alloc(size_t i, size_t size, size_t alignment) {
    CHECK(ev[i].kind == MHTEST_PRE_ALLOC);
    CHECK(ev[i + 1].kind == MHTEST_POST_SUCCESSFUL_ALLOC);
    CHECK(ev[i + 1].size == size);
    CHECK(ev[i + 1].alignment == alignment);
}
void expect_free(size_t i, void *p) {
    CHECK(ev[i].kind == MHTEST_PRE_NONNULL_FREE && ev[i].ptr == p);
    CHECK(ev[i + 1].kind == MHTEST_POST_NONNULL_FREE && ev[i + 1].ptr == p);
}

void *volatile sink;
}  // namespace

int main() {
    recorder_find(&rec, 1);
    static int *one;
    CHECK(logged([] { one = new int(7); }) == 2);
    expect_alloc(0, sizeof(int), 16);
    CHECK(ev[1].ptr == one);
    CHECK(logged([] { delete one; }) == 2);
    expect_free(0, one);

    static long *arr;
    CHECK(logged([] { arr = new long[100]; }) == 2);
    expect_alloc(0, 800, 16);
    CHECK(logged([] { delete[] arr; }) == 2);
    expect_free(0, arr);

    static wide *w;
    CHECK(logged([] { w = new wide; }) == 2);  // aligned new: aligned_alloc(128, 384)
    expect_alloc(0, sizeof(wide), 128);
    CHECK(reinterpret_cast<uintptr_t>(w) % 128 == 0);
    CHECK(logged([] { delete w; }) == 2);
    expect_free(0, w);

    static char *nt;
    CHECK(logged([] { nt = new (std::nothrow) char[33]; }) == 2);
    expect_alloc(0, 33, 16);
    CHECK(logged([] { operator delete[](nt, std::nothrow); }) == 2);
    expect_free(0, nt);

    // A request that cannot succeed: nothrow new returns NULL.  libstdc++ implements it by catching
    // bad_alloc, so the exception object is allocated and freed in between; the huge request itself
    // raises pre_alloc and no post_successful_alloc, and everything else allocated is freed again.
    static size_t huge = SIZE_MAX / 2;
    size_t n = logged([] { sink = operator new(huge, std::nothrow); });
    CHECK(sink == nullptr);
    CHECK(n >= 1 && ev[0].kind == MHTEST_PRE_ALLOC && ev[0].size == huge);
    long live = 0;
    for (size_t i = 0; i < n; ++i) {
        CHECK(!(ev[i].kind == MHTEST_POST_SUCCESSFUL_ALLOC && ev[i].size == huge));
        live += ev[i].kind == MHTEST_POST_SUCCESSFUL_ALLOC;
        live -= ev[i].kind == MHTEST_POST_NONNULL_FREE;
    }
    CHECK(live == 0);

    static void *sized;
    CHECK(logged([] { sized = operator new(40); }) == 2);
    CHECK(logged([] { operator delete(sized, 40); }) == 2);  // sized delete
    expect_free(0, sized);
    std::printf("c++: new, new[], aligned new, nothrow new and sized delete raise their events\n");
    return 0;
}
