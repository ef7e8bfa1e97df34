// SPDX-License-Identifier: MIT
// C++'s allocation functions as members of the family, in a real process under libheapindex.so
// (cxx_family.sh runs each case and checks the report): every new/delete variant indexed with its
// caller's file and line, released cleanly; mismatched releases (new[]/delete, malloc/delete, new/free,
// new/delete[], aligned new/plain delete) reported with both sites; a failed throwing new runs the
// new_handler loop then throws std::bad_alloc; a failed nothrow new returns null.
//
// Usage: cxx_family CASE.  Built with -O0 -g and -fno-builtin so that each call stays where it is
// written (the report's site lines name this file's lines, marked SITE: below).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

#include "mallochooks/heapindex.h"

namespace {

struct alignas(64) wide {
    char bytes[100];
};

// The index's view of a chunk: its size and flags, or exit with a message.
heapindex_chunk chunk_of(const void *p, const char *what) {
    heapindex_chunk c;
    if (heapindex_lookup(p, &c) != 1) {
        std::printf("%s: %p is not indexed\n", what, p);
        std::exit(1);
    }
    return c;
}

void expect_kind(const void *p, size_t size, unsigned kind, const char *what) {
    const heapindex_chunk c = chunk_of(p, what);
    const unsigned mask = HEAPINDEX_FLAG_NEW | HEAPINDEX_FLAG_NEW_ARRAY | HEAPINDEX_FLAG_ALIGNED;
    if (c.size != size || (c.flags & mask) != kind) {
        std::printf("%s: size %zu flags %#x, wanted %zu, %#x\n", what, c.size, c.flags & mask, size, kind);
        std::exit(1);
    }
}

int variants() {
    const std::nothrow_t nt;
    void *p;
    p = ::operator new(24);  // SITE:new
    expect_kind(p, 24, HEAPINDEX_FLAG_NEW, "new");
    ::operator delete(p);
    p = ::operator new[](40);
    expect_kind(p, 40, HEAPINDEX_FLAG_NEW_ARRAY, "new[]");
    ::operator delete[](p);
    p = ::operator new(24, nt);
    expect_kind(p, 24, HEAPINDEX_FLAG_NEW, "nothrow new");
    ::operator delete(p, nt);
    p = ::operator new[](40, nt);
    expect_kind(p, 40, HEAPINDEX_FLAG_NEW_ARRAY, "nothrow new[]");
    ::operator delete[](p, nt);
    p = ::operator new(24);
    ::operator delete(p, size_t(24));
    p = ::operator new[](40);
    ::operator delete[](p, size_t(40));
    const std::align_val_t al{128};
    p = ::operator new(200, al);
    expect_kind(p, 200, HEAPINDEX_FLAG_NEW | HEAPINDEX_FLAG_ALIGNED, "aligned new");
    if (reinterpret_cast<uintptr_t>(p) % 128 != 0) return std::printf("aligned new: %p\n", p), 1;
    ::operator delete(p, al);
    p = ::operator new[](200, al);
    expect_kind(p, 200, HEAPINDEX_FLAG_NEW_ARRAY | HEAPINDEX_FLAG_ALIGNED, "aligned new[]");
    ::operator delete[](p, al);
    p = ::operator new(200, al, nt);
    ::operator delete(p, al, nt);
    p = ::operator new[](200, al, nt);
    ::operator delete[](p, al, nt);
    p = ::operator new(200, al);
    ::operator delete(p, size_t(200), al);
    p = ::operator new[](200, al);
    ::operator delete[](p, size_t(200), al);
    // The language's own expressions.
    int *i = new int(7);
    expect_kind(i, sizeof(int), HEAPINDEX_FLAG_NEW, "new int");
    delete i;
    wide *w = new wide[3];
    delete[] w;
    w = new wide;
    expect_kind(w, sizeof(wide), HEAPINDEX_FLAG_NEW | HEAPINDEX_FLAG_ALIGNED, "new wide");
    delete w;
    void *m = std::malloc(10);
    expect_kind(m, 10, 0, "malloc");
    std::free(m);
    if (const int problems = heapindex_check(stderr)) return std::printf("check: %d problems\n", problems), 1;
    std::printf("variants: every new/delete variant indexed with its kind and released cleanly\n");
    return 0;
}

int handler_calls;
void *reserve;
void release_reserve() {  // a new_handler that frees memory once, then gives up
    ++handler_calls;
    if (reserve == nullptr) {
        std::set_new_handler(nullptr);
        return;
    }
    std::free(reserve);
    reserve = nullptr;
}

int bad_alloc_case() {
    reserve = std::malloc(100);
    std::set_new_handler(release_reserve);
    try {
        void *p = ::operator new(size_t(1) << 62);
        std::printf("bad-alloc: new of 2^62 bytes returned %p\n", p);
        return 1;
    } catch (const std::bad_alloc &) {
        std::printf("bad-alloc: std::bad_alloc caught after %d new_handler calls\n", handler_calls);
    }
    std::set_new_handler(nullptr);
    void *q = ::operator new[](size_t(1) << 62, std::nothrow);
    void *r = ::operator new(size_t(1) << 62, std::align_val_t{64}, std::nothrow);
    std::printf("nothrow: %s\n", q == nullptr && r == nullptr ? "null" : "not null");
    return handler_calls == 2 && q == nullptr && r == nullptr ? 0 : 1;
}

// Live at exit, one chunk per allocating form: the exit report lists each at its line here.
int leaks() {
    static void *keep[6];
    keep[0] = ::operator new(1000);  // SITE:leak
    keep[1] = ::operator new[](1000);  // SITE:leak
    keep[2] = ::operator new(1000, std::nothrow);  // SITE:leak
    keep[3] = ::operator new(1000, std::align_val_t{256});  // SITE:leak
    keep[4] = ::operator new[](1000, std::align_val_t{256}, std::nothrow);  // SITE:leak
    keep[5] = new char[1000];  // SITE:leak
    std::printf("leaks: 6 chunks live\n");
    return 0;
}

}  // namespace

struct base_part {
    long a;
};
struct whole : base_part {
    char more[24];
};

// Exported (-rdynamic): the error reports name the sites by function, through dladdr.
extern "C" __attribute__((noinline)) int cxx_mismatch(const char *which) {
    if (std::strcmp(which, "newarray-delete") == 0) {
        char *p = new char[32];  // SITE:alloc
        ::operator delete(p);  // SITE:release
    } else if (std::strcmp(which, "malloc-delete") == 0) {
        void *p = std::malloc(32);  // SITE:alloc
        ::operator delete(p);  // SITE:release
    } else if (std::strcmp(which, "new-free") == 0) {
        void *p = ::operator new(32);  // SITE:alloc
        std::free(p);  // SITE:release
    } else if (std::strcmp(which, "new-deletearray") == 0) {
        void *p = ::operator new(32);  // SITE:alloc
        ::operator delete[](p);  // SITE:release
    } else if (std::strcmp(which, "aligned-delete") == 0) {
        void *p = ::operator new(32, std::align_val_t{64});  // SITE:alloc
        ::operator delete(p);  // SITE:release
    } else if (std::strcmp(which, "sized-delete") == 0) {
        void *p = ::operator new(32);  // SITE:alloc
        ::operator delete(p, size_t(48));  // SITE:release
    } else if (std::strcmp(which, "base-delete") == 0) {
        // Deleted through a pointer to its base, which has no virtual destructor: the sized delete is
        // given the base's size (ASan's new-delete-type-mismatch).
        base_part *b = new whole;  // SITE:alloc
        delete b;  // SITE:release
    } else if (std::strcmp(which, "new-realloc") == 0) {
        void *p = ::operator new(32);  // SITE:alloc
        p = std::realloc(p, 64);  // SITE:release
        std::free(p);
    } else {
        return 2;
    }
    std::printf("mismatch: %s done\n", which);
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    if (std::strcmp(argv[1], "variants") == 0) return variants();
    if (std::strcmp(argv[1], "bad-alloc") == 0) return bad_alloc_case();
    if (std::strcmp(argv[1], "leaks") == 0) return leaks();
    return cxx_mismatch(argv[1]);
}
