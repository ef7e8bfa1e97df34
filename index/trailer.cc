// SPDX-License-Identifier: MIT
// The trailer's key and check words (see trailer.h).  The key is 256 bits from getrandom(2), taken once;
// a chunk's check word is a word of a ChaCha8 keystream under that key, chosen by its sequence number,
// so one check word (or a few thousand) says nothing about another: predicting one is breaking ChaCha.
// The keystream is made 64 words (4 ChaCha blocks side by side in SSE2-sized vectors) at a time, 1024
// per thread at once when a thread takes its block of 1024 sequence numbers (records.cc): allocation
// reads its check word from the thread's table, one load.  Sequence number s takes word (s / 4) % 16 of
// block 4 * (s / 64) + s % 4: the order the vectors hold them in, stored whole.
//
// Why ChaCha12 and not the keyed multiply-xorshift it replaces or SipHash-1-3: the old word was
// ((base ^ key ^ seq) + size) * odd >> 32 with key = AT_RANDOM[0..7] | 1, the bytes glibc's stack canary
// comes from, so the canary and one trailer gave the key away, and even unknown the key leaked from a
// couple of neighbours' trailers (issue 16).  SipHash-1-3 of (base, size, seq) is a keyed PRF too, but it
// costs about 110 instructions per malloc, on the fast path; the keystream costs about 11 per malloc,
// amortised, and one load on the fast path (docs/heapindex.md has the measured figures).  A check word binds a chunk
// through its sequence number, unique in the process: the other trailer fields are compared with the
// record one by one, and a trailer copied elsewhere (realloc moves bytes) holds another chunk's number.
// ChaCha with 8 rounds: the best published attacks reach 7 rounds at a cost near 2^230 (Aumasson's "Too
// Much Crypto" argues 8 suffice); ChaCha12 measured 27 instructions per malloc against ChaCha8's 11.
#include "index/trailer.h"

#include <errno.h>

#include <atomic>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#endif
#include <fcntl.h>
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef GRND_NONBLOCK
#define GRND_NONBLOCK 0x0001
#endif
#ifndef GRND_INSECURE
#define GRND_INSECURE 0x0004
#endif

namespace mallochooks::heapindex {

constinit trailer_key_t trailer_key = {};

namespace {

typedef uint32_t v4 __attribute__((vector_size(16)));

inline v4 rotl(v4 x, unsigned n) { return (x << n) | (x >> (32 - n)); }

// By 16: swap the halves of each lane with two word shuffles (SSE2 has no rotate; the shifts and the or
// would take three instructions and a register).
inline v4 rotl16(v4 x) {
#if defined(__SSE2__)
    return v4(_mm_shufflehi_epi16(_mm_shufflelo_epi16(__m128i(x), 0xb1), 0xb1));
#else
    return rotl(x, 16);
#endif
}

inline void quarter(v4 &a, v4 &b, v4 &c, v4 &d) {
    a += b, d ^= a, d = rotl16(d);
    c += d, b ^= c, b = rotl(b, 12);
    a += b, d ^= a, d = rotl(d, 8);
    c += d, b ^= c, b = rotl(b, 7);
}

// Read the whole of n bytes from fd; false on anything short.
bool read_all(int fd, unsigned char *p, size_t n) {
    while (n > 0) {
        const ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return false;
        p += r, n -= size_t(r);
    }
    return true;
}

// 32 random bytes.  getrandom through syscall(2), not the libc wrapper: a libc may serve getrandom from a
// per-thread state it allocates (glibc 2.41's vDSO getrandom), and this runs inside malloc.  Early in boot
// the pool may not be ready (EAGAIN with GRND_NONBLOCK): then GRND_INSECURE (Linux 5.6), then
// /dev/urandom, and only with none of them (seccomp, a chroot without /dev) AT_RANDOM mixed with the
// clock, the process id and addresses ASLR placed: weaker, but never the canary's bytes alone.
void random_key(unsigned char out[32]) {
    for (int flags : {GRND_NONBLOCK, GRND_INSECURE}) {
        size_t got = 0;
        while (got < 32) {
            const long r = syscall(SYS_getrandom, out + got, 32 - got, flags);
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) break;
            got += size_t(r);
        }
        if (got == 32) return;
    }
    const int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        const bool ok = read_all(fd, out, 32);
        close(fd);
        if (ok) return;
    }
    uint64_t w[4] = {0x6865617069646578ull, 0, 0, 0};
    if (const void *r = reinterpret_cast<const void *>(getauxval(AT_RANDOM))) memcpy(&w[0], r, 16);
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    w[2] = (uint64_t(ts.tv_sec) * 1000000000u + uint64_t(ts.tv_nsec)) ^ (uint64_t(getpid()) << 40);
    w[3] = reinterpret_cast<uintptr_t>(&ts) ^ (reinterpret_cast<uintptr_t>(&random_key) << 16);
    memcpy(out, w, 32);
}

}  // namespace

template <unsigned Rounds>
void chacha_blocks(const uint32_t key[8], uint64_t counter, uint64_t nonce, uint32_t out[64], uint32_t set_bits) {
    v4 x[16], in[16];
    const uint32_t constants[4] = {0x61707865, 0x3320646e, 0x79622d32, 0x6b206574};  // "expand 32-byte k"
    for (int i = 0; i < 4; ++i) in[i] = v4{} + constants[i];
    for (int i = 0; i < 8; ++i) in[4 + i] = v4{} + key[i];
    const uint64_t c[4] = {counter, counter + 1, counter + 2, counter + 3};
    in[12] = v4{uint32_t(c[0]), uint32_t(c[1]), uint32_t(c[2]), uint32_t(c[3])};
    in[13] = v4{uint32_t(c[0] >> 32), uint32_t(c[1] >> 32), uint32_t(c[2] >> 32), uint32_t(c[3] >> 32)};
    in[14] = v4{} + uint32_t(nonce);
    in[15] = v4{} + uint32_t(nonce >> 32);
    for (int i = 0; i < 16; ++i) x[i] = in[i];
    for (unsigned r = 0; r < Rounds; r += 2) {
        quarter(x[0], x[4], x[8], x[12]);
        quarter(x[1], x[5], x[9], x[13]);
        quarter(x[2], x[6], x[10], x[14]);
        quarter(x[3], x[7], x[11], x[15]);
        quarter(x[0], x[5], x[10], x[15]);
        quarter(x[1], x[6], x[11], x[12]);
        quarter(x[2], x[7], x[8], x[13]);
        quarter(x[3], x[4], x[9], x[14]);
    }
    // Word i of block b at out[4 * i + b]: each vector stored whole (no lane extraction).
    for (int i = 0; i < 16; ++i) {
        const v4 y = (x[i] + in[i]) | set_bits;
        memcpy(out + 4 * i, &y, sizeof y);
    }
}
template void chacha_blocks<8>(const uint32_t *, uint64_t, uint64_t, uint32_t *, uint32_t);
template void chacha_blocks<20>(const uint32_t *, uint64_t, uint64_t, uint32_t *, uint32_t);

#if defined(__x86_64__)
namespace {
// 8 blocks at once in AVX2 vectors where the CPU has them (about half the instructions per word of the
// SSE2 path: 16 -> 8 per allocation, callgrind), the rotations by 16 and 8 as byte shuffles.
typedef uint32_t v8 __attribute__((vector_size(32)));
#define HI_AVX2 __attribute__((target("avx2"), always_inline)) inline
HI_AVX2 v8 rotl8v(v8 x, unsigned n) { return (x << n) | (x >> (32 - n)); }
HI_AVX2 v8 shuffle8(v8 x, __m256i m) { return v8(_mm256_shuffle_epi8(__m256i(x), m)); }
HI_AVX2 void quarter8(v8 &a, v8 &b, v8 &c, v8 &d, __m256i r16, __m256i r8) {
    a += b, d ^= a, d = shuffle8(d, r16);
    c += d, b ^= c, b = rotl8v(b, 12);
    a += b, d ^= a, d = shuffle8(d, r8);
    c += d, b ^= c, b = rotl8v(b, 7);
}
#undef HI_AVX2
}  // namespace

bool wide_chacha_available() {
    static std::atomic<int> known{0};  // 0 not asked yet, 1 no, 2 yes: cpuid only, nothing allocated
    int k = known.load(std::memory_order_relaxed);
    if (k == 0) {
        unsigned a, b, c, d;
        bool ok = __get_cpuid(1, &a, &b, &c, &d) && (c & bit_OSXSAVE) != 0;
        if (ok) {
            unsigned lo, hi;
            __asm__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
            ok = (lo & 6) == 6 && __get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & bit_AVX2) != 0;  // SSE and AVX state
        }
        k = ok ? 2 : 1;
        known.store(k, std::memory_order_relaxed);
    }
    return k == 2;
}

// 8 ChaCha8 blocks, counters counter..counter+7: out[0..63] exactly as chacha_blocks<8> gives for
// counter, out[64..127] as it gives for counter + 4 (the low and high halves of each vector).
__attribute__((target("avx2"))) void chacha8_blocks_wide(const uint32_t key[8], uint64_t counter, uint64_t nonce,
                                                        uint32_t out[128], uint32_t set_bits) {
    const __m256i r16 = _mm256_setr_epi8(2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13, 2, 3, 0, 1, 6, 7, 4, 5, 10,
                                         11, 8, 9, 14, 15, 12, 13);
    const __m256i r8 = _mm256_setr_epi8(3, 0, 1, 2, 7, 4, 5, 6, 11, 8, 9, 10, 15, 12, 13, 14, 3, 0, 1, 2, 7, 4, 5, 6, 11,
                                        8, 9, 10, 15, 12, 13, 14);
    v8 x[16], in[16];
    const uint32_t constants[4] = {0x61707865, 0x3320646e, 0x79622d32, 0x6b206574};
    for (int i = 0; i < 4; ++i) in[i] = v8{} + constants[i];
    for (int i = 0; i < 8; ++i) in[4 + i] = v8{} + key[i];
    for (int b = 0; b < 8; ++b) {
        in[12][b] = uint32_t(counter + unsigned(b));
        in[13][b] = uint32_t((counter + unsigned(b)) >> 32);
    }
    in[14] = v8{} + uint32_t(nonce);
    in[15] = v8{} + uint32_t(nonce >> 32);
    for (int i = 0; i < 16; ++i) x[i] = in[i];
    for (unsigned r = 0; r < check_rounds; r += 2) {
        quarter8(x[0], x[4], x[8], x[12], r16, r8);
        quarter8(x[1], x[5], x[9], x[13], r16, r8);
        quarter8(x[2], x[6], x[10], x[14], r16, r8);
        quarter8(x[3], x[7], x[11], x[15], r16, r8);
        quarter8(x[0], x[5], x[10], x[15], r16, r8);
        quarter8(x[1], x[6], x[11], x[12], r16, r8);
        quarter8(x[2], x[7], x[8], x[13], r16, r8);
        quarter8(x[3], x[4], x[9], x[14], r16, r8);
    }
    for (int i = 0; i < 16; ++i) {
        const __m256i y = __m256i((x[i] + in[i]) | set_bits);
        _mm_storeu_si128(reinterpret_cast<__m128i *>(out + 4 * i), _mm256_castsi256_si128(y));
        _mm_storeu_si128(reinterpret_cast<__m128i *>(out + 64 + 4 * i), _mm256_extracti128_si256(y, 1));
    }
}
#else
bool wide_chacha_available() { return false; }
void chacha8_blocks_wide(const uint32_t *, uint64_t, uint64_t, uint32_t *, uint32_t) {}
#endif

void init_trailer_key() {
    if (__atomic_load_n(&trailer_key.ready, __ATOMIC_ACQUIRE)) return;
    unsigned char k[32];
    random_key(k);
    // Two threads may get here at once (the chain's init is idempotent, not exclusive): the first key
    // stored wins, and nobody has written a check word before init returns.
    uint32_t words[8];
    memcpy(words, k, sizeof words);
    bool expected = false;
    if (!__atomic_compare_exchange_n(&trailer_key.claimed, &expected, true, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        // Another thread is taking the key (two system calls).  Bounded: a child forked from a thread
        // that was half-way through has no one to finish, and takes its own key.
        for (unsigned spins = 0; spins < (1u << 20); ++spins)
            if (__atomic_load_n(&trailer_key.ready, __ATOMIC_ACQUIRE)) return;
    }
    memcpy(trailer_key.words, words, sizeof words);
    __atomic_store_n(&trailer_key.ready, true, __ATOMIC_RELEASE);
}

uint32_t check_word(uint64_t seq) {
    if (!__atomic_load_n(&trailer_key.ready, __ATOMIC_ACQUIRE)) init_trailer_key();
    uint32_t group[64];
    chacha_blocks<check_rounds>(trailer_key.words, (seq >> 6) * 4, check_nonce, group, check_forced_bits);
    return group[seq & 63];
}

void fill_check_words(uint32_t *table, uint64_t first, uint64_t end) {
    // A thread may take its first block of sequence numbers before any chain's init ran (an allocator
    // resolved by an ifunc allocates that early): the key comes first.
    if (!__atomic_load_n(&trailer_key.ready, __ATOMIC_ACQUIRE)) init_trailer_key();
    uint32_t group[128];
    const bool wide = wide_chacha_available();
    for (uint64_t g = first & ~uint64_t{63}; g < end;) {
        // 128 words at a time where the CPU allows it and the group is 128-aligned, else 64.
        const uint64_t n = wide && (g & 127) == 0 ? 128 : 64;
        if (n == 128)
            chacha8_blocks_wide(trailer_key.words, (g >> 6) * 4, check_nonce, group, check_forced_bits);
        else
            chacha_blocks<check_rounds>(trailer_key.words, (g >> 6) * 4, check_nonce, group, check_forced_bits);
        // Only the words of [first, end): a block of sequence numbers need not start at a multiple of 64,
        // and the table slots of its first group's other numbers hold words of its last group.
        const uint64_t lo = g > first ? g : first, hi = g + n < end ? g + n : end;
        memcpy(table + (lo & (check_table_size - 1)), group + (lo - g), (hi - lo) * sizeof *group);
        g += n;
    }
}

}  // namespace mallochooks::heapindex
