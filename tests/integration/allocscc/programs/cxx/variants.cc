// SPDX-License-Identifier: MIT
// Every C++ allocation function, called from this file, for cxx_variants.sh: built with plain g++ (the
// preloaded tools see libstdc++'s operators) and with allocsc++ (link-time hooks), with the operators
// libstdc++'s, the program's own over libc's malloc (-DOWN_OPERATORS), or the program's own over its own
// allocator, which also defines malloc (-DOWN_ALLOCATOR, as tcmalloc linked in does).
//
//   variants CASE
//     pairs      each new with its delete: plain, nothrow, sized, aligned, aligned + nothrow, sized +
//                aligned, each also as an array; prints the program's own operator counts (the same with
//                and without hooks: a tool changes nothing a program does)
//     leaks      one chunk of each new form left allocated, of 1000 + N bytes at the line marked LEAK:N,
//                inside cxxv::leak_all (the exit report's site names it)
//     bad-alloc  a throwing new of 2^62 bytes (plain and aligned) caught as std::bad_alloc; the nothrow
//                forms return null; then a new still works
// Built -O0 so that each call stays where it is written.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

namespace {
struct alignas(64) wide {
    char bytes[100];
};
}  // namespace

#if defined(OWN_OPERATORS) || defined(OWN_ALLOCATOR)
namespace {
unsigned long news, deletes;
}

#if defined(OWN_ALLOCATOR)
// The program's own allocator: a bump arena with a header before each chunk (its size), serving malloc
// and the operators by an internal function, as an allocator with its own operator new does (they do not
// go through the symbol malloc).  free gives nothing back.
namespace {
alignas(64) char arena[1 << 22];
size_t used;
void *arena_alloc(size_t n, size_t alignment) {
    if (alignment < 16) alignment = 16;
    if (n > sizeof arena) return nullptr;
    size_t start = (used + 16 + alignment - 1) & ~(alignment - 1);
    n = (n + 15) & ~size_t(15);
    if (start + n > sizeof arena) return nullptr;
    used = start + n;
    reinterpret_cast<size_t *>(arena + start)[-1] = n;
    return arena + start;
}
bool in_arena(const void *p) { return p >= arena && p < arena + sizeof arena; }
}  // namespace

extern "C" {
void *malloc(size_t n) { return arena_alloc(n, 16); }
void free(void *) {}
void *calloc(size_t a, size_t b) {
    if (b != 0 && a > size_t(-1) / b) return nullptr;
    void *p = arena_alloc(a * b, 16);
    return p ? std::memset(p, 0, a * b) : p;
}
size_t malloc_usable_size(void *p) { return p && in_arena(p) ? static_cast<size_t *>(p)[-1] : 0; }
void *realloc(void *p, size_t n) {
    void *q = arena_alloc(n, 16);
    if (q && p) std::memcpy(q, p, malloc_usable_size(p) < n ? malloc_usable_size(p) : n);
    return q;
}
void *memalign(size_t a, size_t n) { return arena_alloc(n, a); }
int posix_memalign(void **out, size_t a, size_t n) {
    void *p = arena_alloc(n, a);
    if (!p) return 12;
    *out = p;
    return 0;
}
void *aligned_alloc(size_t a, size_t n) { return arena_alloc(n, a); }
}
#define OWN_ALLOC(n, a) arena_alloc((n), (a))
#define OWN_FREE(p)     ((void)(p))
#else
#define OWN_ALLOC(n, a) ((a) > 16 ? std::aligned_alloc((a), ((n) + (a) - 1) / (a) * (a)) : std::malloc((n) ? (n) : 1))
#define OWN_FREE(p)     std::free(p)
#endif

static void *own_new(size_t n, size_t a, bool nothrow) {
    ++news;
    void *p = OWN_ALLOC(n, a);
    if (p == nullptr && !nothrow) throw std::bad_alloc();
    return p;
}
static void own_delete(void *p) {
    if (p == nullptr) return;
    ++deletes;
    OWN_FREE(p);
}
void *operator new(size_t n) { return own_new(n, 0, false); }
void *operator new[](size_t n) { return own_new(n, 0, false); }
void *operator new(size_t n, const std::nothrow_t &) noexcept { return own_new(n, 0, true); }
void *operator new[](size_t n, const std::nothrow_t &) noexcept { return own_new(n, 0, true); }
void *operator new(size_t n, std::align_val_t a) { return own_new(n, size_t(a), false); }
void *operator new[](size_t n, std::align_val_t a) { return own_new(n, size_t(a), false); }
void *operator new(size_t n, std::align_val_t a, const std::nothrow_t &) noexcept { return own_new(n, size_t(a), true); }
void *operator new[](size_t n, std::align_val_t a, const std::nothrow_t &) noexcept { return own_new(n, size_t(a), true); }
void operator delete(void *p) noexcept { own_delete(p); }
void operator delete[](void *p) noexcept { own_delete(p); }
void operator delete(void *p, size_t) noexcept { own_delete(p); }
void operator delete[](void *p, size_t) noexcept { own_delete(p); }
void operator delete(void *p, const std::nothrow_t &) noexcept { own_delete(p); }
void operator delete[](void *p, const std::nothrow_t &) noexcept { own_delete(p); }
void operator delete(void *p, std::align_val_t) noexcept { own_delete(p); }
void operator delete[](void *p, std::align_val_t) noexcept { own_delete(p); }
void operator delete(void *p, size_t, std::align_val_t) noexcept { own_delete(p); }
void operator delete[](void *p, size_t, std::align_val_t) noexcept { own_delete(p); }
void operator delete(void *p, std::align_val_t, const std::nothrow_t &) noexcept { own_delete(p); }
void operator delete[](void *p, std::align_val_t, const std::nothrow_t &) noexcept { own_delete(p); }
static void print_counts() { std::printf("own operators: %lu new, %lu delete\n", news, deletes); }
#else
static void print_counts() {}
#endif

namespace cxxv {

void check(const void *p, size_t alignment, const char *what) {
    if (p == nullptr || reinterpret_cast<uintptr_t>(p) % alignment != 0) {
        std::printf("%s: %p is not a %zu-aligned chunk\n", what, p, alignment);
        std::exit(1);
    }
}

int pairs() {
    const std::nothrow_t nt;
    const std::align_val_t a64{64};
    void *p;
    p = ::operator new(24); check(p, 16, "new"); ::operator delete(p);
    p = ::operator new[](40); check(p, 16, "new[]"); ::operator delete[](p);
    p = ::operator new(24, nt); check(p, 16, "nothrow new"); ::operator delete(p, nt);
    p = ::operator new[](40, nt); check(p, 16, "nothrow new[]"); ::operator delete[](p, nt);
    p = ::operator new(24); check(p, 16, "new"); ::operator delete(p, size_t(24));
    p = ::operator new[](40); check(p, 16, "new[]"); ::operator delete[](p, size_t(40));
    p = ::operator new(100, a64); check(p, 64, "aligned new"); ::operator delete(p, a64);
    p = ::operator new[](200, a64); check(p, 64, "aligned new[]"); ::operator delete[](p, a64);
    p = ::operator new(100, a64, nt); check(p, 64, "aligned nothrow new"); ::operator delete(p, a64, nt);
    p = ::operator new[](200, a64, nt); check(p, 64, "aligned nothrow new[]"); ::operator delete[](p, a64, nt);
    p = ::operator new(100, a64); check(p, 64, "aligned new"); ::operator delete(p, size_t(100), a64);
    p = ::operator new[](200, a64); check(p, 64, "aligned new[]"); ::operator delete[](p, size_t(200), a64);
    // And as the compiler writes them.
    int *i = new int(7); delete i;
    long *l = new long[10]; delete[] l;
    wide *w = new wide; check(w, 64, "new wide"); delete w;
    wide *ws = new wide[3]; check(ws, 64, "new wide[3]"); delete[] ws;
    char *c = new (std::nothrow) char[33]; check(c, 16, "new (nothrow) char[33]"); delete[] c;
    std::printf("pairs: 17 allocations released\n");
    print_counts();
    return 0;
}

void *volatile keep[10];
__attribute__((noinline)) void leak_all() {
    const std::nothrow_t nt;
    const std::align_val_t a64{64};
    keep[0] = ::operator new(1000);           // LEAK:0
    keep[1] = ::operator new[](1001);         // LEAK:1
    keep[2] = ::operator new(1002, nt);       // LEAK:2
    keep[3] = ::operator new[](1003, nt);     // LEAK:3
    keep[4] = ::operator new(1004, a64);      // LEAK:4
    keep[5] = ::operator new[](1005, a64);    // LEAK:5
    keep[6] = ::operator new(1006, a64, nt);  // LEAK:6
    keep[7] = ::operator new[](1007, a64, nt);  // LEAK:7
}

int leaks() {
    leak_all();
    std::printf("leaks: 8 chunks left\n");
    print_counts();
    return 0;
}

int bad_alloc() {
    const size_t huge = size_t(1) << 62;
    int caught = 0;
    try {
        void *p = ::operator new(huge);
        std::printf("new of 2^62 bytes returned %p\n", p);
    } catch (const std::bad_alloc &) {
        ++caught;
    }
    try {
        void *p = ::operator new[](huge, std::align_val_t{64});
        std::printf("aligned new[] of 2^62 bytes returned %p\n", p);
    } catch (const std::bad_alloc &) {
        ++caught;
    }
    void *q = ::operator new(huge, std::nothrow), *r = ::operator new[](huge, std::align_val_t{64}, std::nothrow);
    int *after = new int(5);  // the hooks still work on this thread
    check(after, 16, "new after bad_alloc");
    delete after;
    std::printf("bad-alloc: %d std::bad_alloc caught, nothrow: %s\n", caught, q == nullptr && r == nullptr ? "null" : "not null");
    print_counts();
    return 0;
}

}  // namespace cxxv

int main(int argc, char **argv) {
    const char *c = argc > 1 ? argv[1] : "";
    if (std::strcmp(c, "pairs") == 0) return cxxv::pairs();
    if (std::strcmp(c, "leaks") == 0) return cxxv::leaks();
    if (std::strcmp(c, "bad-alloc") == 0) return cxxv::bad_alloc();
    std::fprintf(stderr, "usage: variants pairs|leaks|bad-alloc\n");
    return 2;
}
