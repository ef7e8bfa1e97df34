// SPDX-License-Identifier: MIT
// The reachability scan behind leak reports: one implementation, run in the process at exit
// (HEAPINDEX_LEAKS=exit, leaks_at_exit.cc) and outside it by heapindex-inspect for gdb's `heap leaks`
// (live process or core file).  It is written against a small `Heap` interface, so the same code walks
// the index in its own memory or through a reader's view of another process's memory:
//
//   size_t count() const;                         live chunks, numbered 0..count-1
//   uintptr_t base(size_t i) const; size_t size(size_t i) const;
//   bool find(uintptr_t word, uint32_t *i) const; the live chunk containing `word` (any byte of
//                                                 [base, base + size)): the index's constant-time lookup
//   template <class F> void words(uintptr_t from, size_t bytes, F &&f) const;
//                                                 f(value) for every aligned word of the range that can be read
//   void *memory(size_t bytes); void release(void *, size_t);  zeroed scratch memory (mmap in the process)
//
// Classes, as memcheck's leak checker defines them (so its `leak_check full` can be compared):
//   reachable      a chain of pointers to chunk starts leads to it from a root;
//   interior_only  reached, but every chain has a pointer into the middle of some chunk ("possibly lost");
//   lost           no pointer from a root or a reached chunk ("definitely lost");
//   indirect       reached only from lost chunks ("indirectly lost").
// Roots are given by the caller (writable segments of loaded objects, stacks, TLS, registers, client
// blocks).  Lost chunks are found as memcheck does: in address order, each chunk still unreached leads a
// "clique" and every unreached chunk it reaches (start or interior pointer) is indirect; a leader found
// later from another leader becomes indirect too.  Each word costs one index lookup (constant time),
// after a range test against the lowest and highest chunk.
//
// Runtime-safe: no exceptions, no allocation but Heap::memory, no libstdc++.
#ifndef MALLOCHOOKS_INDEX_REACHABILITY_H
#define MALLOCHOOKS_INDEX_REACHABILITY_H

#include <stddef.h>
#include <stdint.h>

namespace mallochooks::heapindex::reach {

enum chunk_class : uint8_t { unreached = 0, reachable = 1, interior_only = 2, indirect = 3 };
constexpr uint8_t lost = unreached;  // after finish()

inline const char *class_name(uint8_t c) {
    switch (c) {
    case reachable: return "still reachable";
    case interior_only: return "reachable only through interior pointers";
    case indirect: return "indirectly lost";
    default: return "definitely lost";
    }
}
// Short names, for machine-readable output.
inline const char *class_key(uint8_t c) {
    switch (c) {
    case reachable: return "reachable";
    case interior_only: return "interior";
    case indirect: return "indirect";
    default: return "definite";
    }
}

template <class Heap> class scan {
public:
    explicit scan(Heap &heap) : heap_(heap) {}
    ~scan() {
        if (class_ != nullptr) heap_.release(class_, n_);
        if (stack_ != nullptr) heap_.release(stack_, stack_bytes());
    }
    scan(const scan &) = delete;
    scan &operator=(const scan &) = delete;

    // False when scratch memory could not be had.
    bool start() {
        n_ = heap_.count();
        if (n_ == 0) return true;
        class_ = static_cast<uint8_t *>(heap_.memory(n_));
        stack_ = static_cast<uint32_t *>(heap_.memory(stack_bytes()));
        if (class_ == nullptr || stack_ == nullptr) return false;
        lo_ = heap_.base(0);
        for (size_t i = 0; i < n_; ++i) {
            const uintptr_t end = heap_.base(i) + heap_.size(i);
            if (end > hi_) hi_ = end;
        }
        return true;
    }

    // A root range (every aligned word in it), and a root word (a register).
    void root(uintptr_t from, size_t bytes) {
        if (n_ == 0) return;
        root_bytes_ += bytes;
        heap_.words(from, bytes, [this](uintptr_t w) { visit(w, true); });
        drain();
    }
    void root_word(uintptr_t w) {
        if (n_ == 0) return;
        visit(w, true);
        drain();
    }

    // After the roots: the lost chunks and their cliques.
    void finish() {
        for (size_t i = 0; i < n_; ++i) {
            if (class_[i] != unreached) continue;
            leader_ = uint32_t(i);
            push(uint32_t(i));
            while (top_ > 0) {
                const uint32_t c = stack_[--top_];
                scanned_bytes_ += heap_.size(c);
                heap_.words(heap_.base(c), heap_.size(c), [this](uintptr_t w) {
                    uint32_t j;
                    if (w - lo_ >= hi_ - lo_ || !heap_.find(w, &j) || j == leader_ || class_[j] != unreached) return;
                    class_[j] = indirect;
                    push(j);
                });
            }
        }
    }

    uint8_t class_of(size_t i) const { return class_ != nullptr ? class_[i] : uint8_t(unreached); }
    size_t count() const { return n_; }
    uint64_t root_bytes() const { return root_bytes_; }
    uint64_t scanned_bytes() const { return scanned_bytes_; }

private:
    size_t stack_bytes() const { return (2 * n_ + 1) * sizeof(uint32_t); }
    void push(uint32_t i) { stack_[top_++] = i; }

    // A word found in a root (definite) or in a chunk being scanned (definite when that chunk is
    // reachable through chunk starts): memcheck's lc_push_without_clique_if_a_chunk_ptr.
    void visit(uintptr_t w, bool definite) {
        uint32_t j;
        if (w - lo_ >= hi_ - lo_ || !heap_.find(w, &j)) return;
        const bool at_start = w == heap_.base(j);
        if (at_start && definite) {
            if (class_[j] != reachable) {
                class_[j] = reachable;
                push(j);
            }
        } else if (class_[j] == unreached) {
            class_[j] = interior_only;
            push(j);
        }
    }

    void drain() {
        while (top_ > 0) {
            const uint32_t c = stack_[--top_];
            const bool definite = class_[c] == reachable;
            scanned_bytes_ += heap_.size(c);
            heap_.words(heap_.base(c), heap_.size(c), [this, definite](uintptr_t w) { visit(w, definite); });
        }
    }

    Heap &heap_;
    size_t n_ = 0;
    uint8_t *class_ = nullptr;
    uint32_t *stack_ = nullptr;
    size_t top_ = 0;
    uint32_t leader_ = 0;
    uintptr_t lo_ = 0, hi_ = 0;
    uint64_t root_bytes_ = 0, scanned_bytes_ = 0;
};

}  // namespace mallochooks::heapindex::reach

#endif
