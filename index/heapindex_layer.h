// SPDX-License-Identifier: MIT
// heapindex_layer: the hook layer that indexes every chunk (hooks.h: written once over any `Next`, so the
// same code runs in libheapindex.so's own chain and, through the dynamic ABI, in front of an executable's
// own allocator).
//
// Allocation: ask Next for room for the trailer (trailer.h), ask Next's usable size, write the trailer,
// publish a record and mark the chunk in the heap index.  free: find the record by the chunk's base (one
// granule look-up), check the trailer, kill the record (one CAS, which also catches racing double frees),
// clear the mark, then give the chunk to Next: the index forgets a chunk before the allocator can hand
// the address out again.  realloc: the same forget-first order, undone if the allocator fails.  usable
// size: the trailer's offset.  Anything that is not a live chunk (double free, interior or wild pointer)
// is reported with the sites the index knows and then passed on unchanged, so the program goes on to do
// what its allocator does with it (glibc aborts on most).
//
// early_terminal<T>: the same code without trailers (basic_layer<false>), as the *terminal* the front uses
// for calls that bypass the layer: calls made while the library's own code runs (under the reentrancy
// guard: symbolizer, pthread_setspecific, ...) and calls from threads that arrive while another thread
// initialises.  So the preloaded library indexes every chunk its allocator hands out, and a pointer the
// index never saw really is invalid.  Those chunks carry HEAPINDEX_FLAG_EARLY and no trailer.
#ifndef MALLOCHOOKS_INDEX_HEAPINDEX_LAYER_H
#define MALLOCHOOKS_INDEX_HEAPINDEX_LAYER_H

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include <type_traits>

#include "index/chunk_index.h"
#include "index/counters.h"
#include "index/heap_errors.h"
#include "index/memcheck.h"
#include "index/profile.h"
#include "index/record_pool.h"
#include "index/thread_state.h"
#include "index/trailer.h"
#include "libmallochooks/bootstrap_arena.h"
#include "mallochooks/dynamic.h"
#include "mallochooks/heapindex.h"
#include "mallochooks/hooks.h"

namespace mallochooks::heapindex {

using heap_index_t = chunk_index<5>;    // 32-byte granules: every indexed heap chunk is >= 32 bytes
using client_index_t = chunk_index<4>;  // 16-byte granules for client blocks
extern heap_index_t heap_chunks __attribute__((visibility("hidden")));
extern client_index_t client_chunks __attribute__((visibility("hidden")));

// Once per chain (idempotent).
void layer_init() __attribute__((visibility("hidden")));
// Fill in the root's run-time addresses for readers outside the process (layout.cc).
void publish_root() __attribute__((visibility("hidden")));

// Where Next is straight onto a terminal that can skip its bootstrap-arena test (direct_terminal,
// include/mallochooks/hooks.h: preload::terminal), the layer asks once, when it admits a chunk, and only
// such chunks get a trailer, so free's fast path (trailered chunks only) calls the allocator without the
// test.

template <bool Trailered> struct basic_layer {
    static constexpr uint32_t own_flags = Trailered ? HEAPINDEX_FLAG_TRAILER : HEAPINDEX_FLAG_EARLY;

    template <class Next> static void init(Next) { layer_init(); }

    template <class Next> static void *malloc(Next next, size_t size, const void *caller) {
        if constexpr (Trailered && direct_terminal<Next>::value) {
            // Never the bootstrap arena's chunk (malloc_unowned, backends/preload/terminal.h): no arena test
            // after the allocator's call, where its answer is tested anyway (null, or not_served: then the
            // ordinary call, whose chunk admit tests).
            static_assert(Next::terminal::unowned_spacing >= min_chunk);
            void *p = Next::terminal::malloc_unowned(unraised_request(size), caller);  // its chunks are spaced
            if (__builtin_expect(reinterpret_cast<uintptr_t>(p) > Next::terminal::not_served, 1))
                return admit_fast_inline<Next, false, true>(next, p, size, caller, 0, 0);
            if (p == nullptr) return p;
            return malloc_served(next, size, caller);
        }
        void *p = next.malloc(request(size), caller);
        return p ? admit<Next, true>(next, p, size, caller, 0, 0) : p;
    }

    template <class Next> static void *calloc(Next next, size_t nmemb, size_t size, const void *caller) {
        const size_t total = nmemb * size;  // the user API checked it does not overflow
        const size_t r = request(total);
        void *p = !Trailered && r == total ? next.calloc(nmemb, size, caller) : next.calloc(1, r, caller);
        return p ? admit(next, p, total, caller, HEAPINDEX_FLAG_CALLOC, 0) : p;
    }

    template <class Next> static void *memalign(Next next, size_t alignment, size_t size, const void *caller) {
        void *p = next.memalign(alignment, request(size), caller);
        return p ? admit(next, p, size, caller, HEAPINDEX_FLAG_ALIGNED, 0) : p;
    }

    // operator new: as malloc, the chunk's kind recorded in its flags (HEAPINDEX_FLAG_NEW, _NEW_ARRAY,
    // ALIGNED for the align_val_t forms), so that its release can be checked (dealloc below).
    template <class Next>
    static void *cxx_new(Next next, size_t size, size_t alignment, unsigned kind, const void *caller) {
        void *p = next.cxx_new(request(size), alignment, kind, caller);
        return p ? admit(next, p, size, caller, new_flags(kind, alignment), 0) : p;
    }

    // How a chunk is released: free (any function of the malloc family's kind) or operator delete of one
    // form.  `mask` and `expected` test the record's flags: a trailer, and the kind the releasing call
    // expects; any difference sends free to its slow path, which tells which.  A heap chunk's record has
    // exactly one of TRAILER and EARLY (own_flags; admit_general swaps them when it cannot place the
    // trailer), so "trailered" is tested as "not EARLY": free's test is then one `test` of the flags
    // against a constant, as the trailer bit alone was.
    struct by_free {
        static constexpr uint32_t kind_mask = HEAPINDEX_FLAG_NEW | HEAPINDEX_FLAG_NEW_ARRAY;
        static constexpr uint32_t mask = HEAPINDEX_FLAG_EARLY | record_flag_guarded_trailer | HEAPINDEX_FLAG_STACK | kind_mask;
        static constexpr uint32_t expected = 0;
        static constexpr uint32_t kind = 0;
        static constexpr size_t size = 0;  // no size to check
        template <class N> void release(N next, void *ptr, const void *caller) const { next.free(ptr, caller); }
    };
    struct by_delete {
        static constexpr uint32_t kind_mask = HEAPINDEX_FLAG_NEW | HEAPINDEX_FLAG_NEW_ARRAY | HEAPINDEX_FLAG_ALIGNED;
        static constexpr uint32_t mask = HEAPINDEX_FLAG_EARLY | record_flag_guarded_trailer | HEAPINDEX_FLAG_STACK | kind_mask;
        uint32_t kind;  // the flags the chunk should have (new_flags)
        size_t alignment;
        unsigned hook_kind;
        size_t size;    // sized delete's size, which must be the chunk's requested size; 0: unsized
        uint32_t expected_of() const { return kind; }
        // The index padded the chunk: the size the program gives is not the allocator's any more.
        template <class N> void release(N next, void *ptr, const void *caller) const {
            next.cxx_delete(ptr, 0, alignment, hook_kind, caller);
        }
    };
    static constexpr uint32_t new_flags(unsigned kind, size_t alignment) {
        return (kind == MALLOCHOOKS_KIND_NEW_ARRAY ? HEAPINDEX_FLAG_NEW_ARRAY : HEAPINDEX_FLAG_NEW) |
               (alignment != 0 ? HEAPINDEX_FLAG_ALIGNED : 0);
    }
    static uint32_t expected_of(by_free) { return by_free::expected; }
    static uint32_t expected_of(const by_delete &d) { return d.expected_of(); }

    template <class Next> static void free(Next next, void *ptr, const void *caller) {
        dealloc(next, ptr, caller, by_free{});
    }

    template <class Next>
    static void cxx_delete(Next next, void *ptr, size_t size, size_t alignment, unsigned kind, const void *caller) {
        dealloc(next, ptr, caller, by_delete{new_flags(kind, alignment), alignment, kind, size});
    }
    // Sized delete with another size than the chunk's (ASan's new-delete-type-mismatch): only delete
    // pays the test, a compare with the record's size that the fast path reads anyway (free's `size` is
    // a constant 0, folded away; unsized delete's is a 0 its entry point now passes: one instruction).
    template <class How> static bool wrong_size(const How &how, size_t size) { return how.size != 0 && how.size != size; }

    // The common case is written so that its only call is the final tail call to the allocator (every
    // other path leaves through a noinline function that finishes the job): then the fast path needs no
    // callee-saved registers, no prologue and no epilogue.
    //
    // The record decides whether ptr is a chunk: killing it succeeds only for the live record of a chunk
    // with this very base, and only once when frees race.  (The granule's id may be stale, but a record
    // is only live with this base while its chunk is indexed at this granule: the start bit need not be
    // read.  Record 0, named by granules where nothing ever started, is never live.)
    //
    // The flags test also checks the chunk's kind against the releasing call (see by_free).
    template <class Next, class How>
    __attribute__((always_inline)) static void dealloc(Next next, void *ptr, const void *caller, const How &how) {
        const uintptr_t base = reinterpret_cast<uintptr_t>(ptr);
        heap_index_t::leaf *l = heap_chunks.find_leaf(base);
        if (__builtin_expect(l == nullptr, 0)) return free_no_chunk(next, ptr, caller, how);
        const unsigned g = heap_index_t::slot_of(base);
        const uint32_t id = l->ids[g].load(std::memory_order_relaxed);
        record *r = records().get(id);
        if (__builtin_expect(!r->claim(base), 0)) return free_no_chunk(next, ptr, caller, how);
        // The dead record is ours now: nothing else changes its fields.  Its tail still holds the check
        // word and the thread id (the trailer's image) until bury() overlays the free site, last.
        // The start bit goes at once (the leaf and slot are then dead on the checks' path: one register
        // fewer, no push and pop); free_checked and free_slow clear it again, harmlessly (no other chunk
        // can start in the granule before this one goes back to the allocator).
        heap_index_t::clear_start(l, g);
        const size_t size = r->size();
        const uint32_t flags = r->flags();
        const size_t at = trailer_at(size);
        // A chunk whose program asked its usable size owns its slack: it leaves here with the others
        // (free_checked, then free_usable_asked), so that the slack's test needs no test of that flag
        // (issue 13, third pass: 2 instructions on every free, where such chunks are rare).
        if (__builtin_expect((flags & (How::mask | HEAPINDEX_FLAG_USABLE_ASKED)) != expected_of(how) || wrong_size(how, size) ||
                                 !trailer_intact(base + at, *r) || !trailered_slack_intact(base, size, at),
                             0))
            return free_checked(next, ptr, caller, l, id, size, how);
        finish_free(next, ptr, caller, id, size, how, r);
    }
    // The checked chunk's end of free: the free site, the id into the thread's ring, the counters, then
    // the allocator.
    template <class Next, class How>
    __attribute__((always_inline)) static void finish_free(Next next, void *ptr, const void *caller, uint32_t id, size_t size,
                                                           const How &how, record *r) {
        thread_state *t = take_thread_state();  // never null: see no_thread_state; put back below
        if (__builtin_expect(t->tail - t->head >= thread_state::ring_size, 0)) {
            put_thread_state(t);
            return free_slow(next, ptr, caller, size, false, how);  // which buries the record itself
        }
        // Checked: the free site over the check word and thread id (record.h), before the id goes into
        // the ring (from where only this thread takes it, after the quarantine), and after the exit
        // above: the site is then dead, and shifted in place.
        r->bury(caller);
        t->ring()[take_next(t->tail) % thread_state::ring_size] = id;
        count_free(t, size);
        put_thread_state(t);
        if constexpr (direct_terminal<Next>::value)
            Next::terminal::free_unowned(ptr, caller);  // trailered: not the arena's (see admit)
        else
            how.release(next, ptr, caller);
    }
    // A chunk whose program asked its usable size, without a stack (free_checked sends it): the fast
    // path's checks but the slack's, and its end.
    template <class Next, class How>
    __attribute__((noinline)) static void free_usable_asked(Next next, void *ptr, const void *caller, uint32_t id, size_t size,
                                                            How how) {
        record *r = records().get(id);
        const uint32_t flags = r->flags();
        if (__builtin_expect((flags & How::mask) != expected_of(how) || wrong_size(how, size) ||
                                 !trailer_intact(reinterpret_cast<uintptr_t>(ptr) + trailer_at(size), *r),
                             0))
            return free_slow(next, ptr, caller, size, true, how);
        finish_free(next, ptr, caller, id, size, how, r);
    }

    template <class Next> static void *realloc(Next next, void *ptr, size_t size, const void *caller) {
        const uintptr_t base = reinterpret_cast<uintptr_t>(ptr);
        const heap_index_t::slot s = heap_chunks.at(base);
        size_t old_size;
        if (__builtin_expect(s.l == nullptr || !forget(s, base, caller, "realloc", &old_size), 0)) {
            not_a_chunk<Next>(s, ptr, caller, "realloc");
            void *q = next.realloc(ptr, request(size), caller);
            return q ? admit(next, q, size, caller, HEAPINDEX_FLAG_REALLOC, 0) : q;
        }
        // Forgotten before the allocator sees the call: once realloc has moved the chunk, another thread
        // may get the old address from malloc and index it.
        void *q = next.realloc(ptr, request(size), caller);
        record *old = records().get(s.id);
        if (q == nullptr) {  // the old chunk is still live: put it back as it was (errno is the allocator's)
            old->revive();  // (with its stack, which still counts it)
            s.mark();
            if (__builtin_expect(foreign_guarded(old->flags()), 0)) reguard_trailer(*old);
            return nullptr;
        }
        if (__builtin_expect(foreign_guarded(old->flags()), 0)) after_realloc_copy(next, q, trailer_at(old_size), caller);
        {
            const owned_thread_state t;
            if (__builtin_expect(old->flags() & HEAPINDEX_FLAG_STACK, 0)) {  // and its "freed by" stack (see free_checked)
                const uintptr_t cfa = reinterpret_cast<uintptr_t>(__builtin_dwarf_cfa());
                if (!profile::released_fast(t.get(), s.id, old, caller, cfa)) profile::released_by_slow(t.get(), s.id, old, caller, cfa);
            }
            count_free(t.get(), old_size);
            if (q != ptr) {  // a tombstone now (in place, the record is the new chunk's: admit publishes it)
                old->finish_dying(caller);
                records().give(t.get(), s.id);
            }
        }
        return admit(next, q, size, caller, HEAPINDEX_FLAG_REALLOC, q == ptr ? s.id : 0);
    }

    template <class Next> static size_t usable_size(Next next, void *ptr, const void *caller) {
        const uintptr_t base = reinterpret_cast<uintptr_t>(ptr);
        const heap_index_t::slot s = heap_chunks.at(base);
        record_fields f;
        if (s.l != nullptr && records().get(s.id)->read_live(&f) && f.base == base && has_trailer(f.flags)) {
            // The program may now write up to the usable size: its slack is no longer checked.  Only the
            // chunk's owner calls this (a concurrent free of the same chunk is the program's bug), and
            // a reader that sees the flag change mid-copy takes either value, both true.
            if (!(f.flags & HEAPINDEX_FLAG_USABLE_ASKED))
                records().get(s.id)->set_flags(f.flags | HEAPINDEX_FLAG_USABLE_ASKED);
            return public_usable(f);
        }
        return next.usable_size(ptr, caller);
    }

private:
    // What to ask the allocator for: room for the trailer, or (untrailed) at least min_chunk bytes.
    static size_t request(size_t size) {
        if constexpr (Trailered) {
            return padded_request_or_max(size);
        } else {
            return size < min_chunk ? min_chunk : size;
        }
    }

    // malloc's call when malloc_unowned could not serve it: the terminal's malloc, whose chunk may be the
    // bootstrap arena's (admit asks).
    template <class Next> __attribute__((noinline)) static void *malloc_served(Next next, size_t size, const void *caller) {
        void *p = next.malloc(request(size), caller);
        return p ? admit<Next, true>(next, p, size, caller, 0, 0) : p;
    }

    // Index a chunk the allocator just returned.  `reuse` is a record id the caller owns (realloc in
    // place), or 0.  The bootstrap arena's chunks and untrailered ones go to admit_general; the rest to
    // admit_fast.  `Plain`: malloc's call (flags 0, no reuse), whose admit_fast has its flags as a
    // constant (no argument to pass, no register to keep it in) and is inlined into malloc: malloc then
    // is one function whose three callee-saved registers (size, caller and the chunk, kept across the
    // allocator's call) serve admit_fast's fast path too, which needs three (issue 13, third pass: a
    // tail call into a noinline admit_fast pushed and popped its own three, and malloc's entry point
    // moved the arguments for it: 360.0 -> 352.1 instructions per 32-byte pair).  The other allocating
    // calls reach a noinline admit_fast by a tail call, so that they keep only their arguments across
    // the allocator's call.
    template <class Next, bool Plain = false>
    __attribute__((always_inline)) static void *admit(Next next, void *p, size_t size, const void *caller,
                                                      uint32_t flags, uint32_t reuse) {
        if constexpr (direct_terminal<Next>::value) {
            if (Next::terminal::arena_owns(p)) return admit_general<Next>(next, p, size, caller, flags, reuse);
        }
        if constexpr (!Trailered) return admit_general<Next>(next, p, size, caller, flags, reuse);
        else if constexpr (Plain) return admit_fast_inline<Next, false, true>(next, p, size, caller, 0, 0);
        else if (reuse == 0) return admit_fast<Next, false>(next, p, size, caller, flags | own_flags, 0);
        else return admit_fast<Next, true>(next, p, size, caller, flags | own_flags, reuse);
    }

    // The common case is checked for first, whole (a thread state with ids and sequence numbers at hand,
    // an existing leaf, a chunk within one 2 MiB region) and done inline; anything else goes, untouched,
    // to admit_general.  The trailer's place follows from the request (trailer.h): no call at all.  Every
    // rarer exit is a tail call to a function that finishes the job and puts the thread state back.
    template <class Next, bool Reuse>
    __attribute__((noinline)) static void *admit_fast(Next next, void *p, size_t size, const void *caller,
                                                      uint64_t flags_given, uint32_t reuse) {
        return admit_fast_inline<Next, Reuse>(next, p, size, caller, flags_given, reuse);
    }
    template <class Next, bool Reuse, bool Plain = false>
    __attribute__((always_inline)) static void *admit_fast_inline(Next next, void *p, size_t size, const void *caller,
                                                                  uint64_t flags_given, uint32_t reuse) {
        // own_flags included (admit); malloc's are own_flags alone, which block_site_bits has (thread_state.h).
        const uint64_t flags = Plain ? 0 : flags_given;
        const uintptr_t base = reinterpret_cast<uintptr_t>(p);
        heap_index_t::leaf *l = heap_chunks.find_leaf(base);
        thread_state *t = take_thread_state();  // never null: see no_thread_state; put back below
        // An id: the oldest of the ring past the quarantine, or, while the thread allocates more than it
        // frees (the ring no fuller than the quarantine), one of its spare fresh ids (until issue 13 every
        // such allocation took the general path: a program building a large structure, perl's hash, paid
        // admit_general's hundred instructions more on each).
        const bool from_ring = Reuse || t->tail - t->head > quarantine_size();
        if (__builtin_expect(l == nullptr || (!from_ring && t->spare_count == 0) || t->seq_next >= t->seq_end, 0)) {
            put_thread_state_reloading(t);
            return admit_general<Next>(next, p, size, caller, flags, Reuse ? reuse : 0u);
        }
        const uint32_t id = Reuse ? reuse : __builtin_expect(from_ring, 1) ? t->ring()[take_next(t->head) % thread_state::ring_size]
                                                                          : t->spare[--t->spare_count];
        // A chunk beyond its first page: its page continuations now, before the record is published (a
        // lookup that meets one first finds the record not live and looks on, as for any stale one), so
        // that the small chunk's path tests once.  One that leaves its region goes to admit_general, with
        // the id it took (as realloc's in place).
        if (__builtin_expect((heap_index_t::ends_differ(base, size) & heap_index_t::crosses_page) != 0, 0)) {
            if (__builtin_expect((heap_index_t::ends_differ(base, size) & heap_index_t::crosses_region) != 0, 0)) {
                put_thread_state_reloading(t);
                return admit_general<Next>(next, p, size, caller, flags, id);
            }
            heap_index_t::continue_pages_after_first(l, base, base + size - 1, id);
        }
        return admit_finish(p, size, caller, flags, t, l, id);
    }

    // The rest of admit_fast, once the chunk's id is taken (and its continuations written).
    __attribute__((always_inline)) static void *admit_finish(void *p, size_t size, const void *caller, uint64_t flags,
                                                             thread_state *t, heap_index_t::leaf *l, uint32_t id) {
        const uintptr_t base = reinterpret_cast<uintptr_t>(p);
        const uint64_t seq = take_next(t->seq_next);
        // The record's words 2 and 3 are the trailer (trailer_intact): check word and size, with the
        // sequence number's and the thread's bits that the block shares (thread_state::block_*_bits).
        // The words first, then slack and trailer, then the head (live): the trailer is in place before
        // any reader (heapindex_check) can take the record for live.
        const uint64_t size_word = uint64_t{size} << rec::value_shift | t->block_size_bits;
        const uint64_t tail = t->block_tail_bits | t->checks[seq & (check_table_size - 1)];
        record *r = records().get(id);
        r->fill_words(uint64_t(uintptr_t(caller)) << rec::value_shift | t->block_site_bits | flags, size_word, tail);
        write_short_slack(base, size);
        // base + trailer_at(size), from base + size (which the slack's store has): the chunk is at least
        // 16-aligned (C's malloc guarantee for a request of 16 bytes or more; ours are at least 32).
        write_trailer((base + size + 7) & ~uintptr_t{7}, size_word, tail);
        r->go_live(rec::head_of(base, seq, rs_live));
        const unsigned g = heap_index_t::slot_of(base);
        const uint32_t old = heap_index_t::replace_id(l, g, id);
        if (__builtin_expect(heap_index_t::set_start(l, g), 0)) return stale_then(p, t, old, id, size, caller);  // see drop_stale
        // (t stays taken through the rare paths: the profile's sampling uses it.)  The one countdown of the
        // peak's sample and the profile's (counters.h): far away unless stacks are recorded.
        if (__builtin_expect(!count_allocation_fast(t, size), 0)) return events_then(p, t, id, size, caller);
        put_thread_state_reloading(t);  // the TLS offset reloaded: one register fewer to keep
        return p;
    }

    // The general case of admit: no trailer (early_terminal), thread state to make or refill, a leaf to
    // make, a chunk spanning regions (continuations), an allocator that gave less than asked.
    template <class Next>
    __attribute__((noinline)) static void *admit_general(Next next, void *p, size_t size, const void *caller,
                                                         uint32_t flags, uint32_t reuse) {
        const size_t usable = next.usable_size(p, caller);
        const owned_thread_state owned;
        thread_state *t = owned.get();
        const uintptr_t base = reinterpret_cast<uintptr_t>(p);
        const uint32_t id = reuse != 0 ? reuse : records().take(t);
        if (__builtin_expect(id == 0, 0)) return not_admitted(p);
        record_fields f{base, size, usable, caller, records().next_seq(t), nullptr, current_tid(t), flags | own_flags};
        record *r = records().get(id);
        if constexpr (Trailered) {
            bool arena = false;
            if constexpr (direct_terminal<Next>::value) arena = Next::terminal::arena_owns(p);
            // The trailer goes where the request put room for it (trailer.h), whatever the allocator's
            // usable size, as on the fast path.  An allocator that cannot tell usable sizes answers 0
            // (wrapdl's fallback, for an own allocator without malloc_usable_size): it gave at least what
            // was asked.  One that says it gave less than asked, or the bootstrap arena: no trailer.
            const bool blind = !arena && usable == 0;
            if (blind || (!arena && usable >= trailer_at(size) + trailer_size)) {
                f.usable = trailer_at(size);
                // t's table holds the words of the block next_seq took f.seq from; without a thread state, or
                // under memcheck (no blocks: refill_seq), f.seq came from the global counter.
                const uint32_t check = t != nullptr && !memcheck::running() ? t->checks[f.seq & (check_table_size - 1)]
                                                                            : check_word(f.seq);
                write_slack(base, size, f.usable);
                write_trailer(base, f, check);
                f.check = check;
                if (memcheck::running())  // see memcheck.h
                    f.flags = (f.flags & ~HEAPINDEX_FLAG_TRAILER) | memcheck::guard_new_trailer(p, size, usable, base + f.usable, blind);
            } else {  // an allocator that gave less than asked, or the bootstrap arena: no trailer
                f.flags = (f.flags & ~HEAPINDEX_FLAG_TRAILER) | HEAPINDEX_FLAG_EARLY;
                if (f.usable < size) f.usable = size;  // never less than asked (heapindex.h)
            }
        }
        r->publish(f);
        uint32_t stale = 0;
        if (__builtin_expect(heap_chunks.insert(base, size, id, &stale) != insert_result::ok, 0)) {
            r->kill(base, nullptr);
            records().give(t, id);
            return not_admitted(p);
        }
        if (__builtin_expect(stale != 0, 0)) drop_stale(t, stale, id, base);
        if (count_allocation(t, size) && Trailered)
            profile::on_countdown(t, id, r, size, caller, reinterpret_cast<uintptr_t>(__builtin_dwarf_cfa()));
        return p;
    }

    // admit_fast's rare exits, with t taken: each puts it back.
    // When the profile is due, its on_countdown_then finishes the job (arm_events, t put back) as this
    // function's tail call, from this function's CFA: with every allocation stacked, this is every
    // allocation's path, and neither function keeps a frame of its own.  So settle_events is written out
    // here, the peak's sample (a call) left to events_peak_then: with a call on its path, this function
    // would save and restore five registers at every allocation.
    __attribute__((noinline)) static void *events_then(void *p, thread_state *t, uint32_t id, size_t size, const void *caller) {
        const int64_t covered = t->event_armed - t->event_countdown;  // as settle_events
        const uint64_t now = t->bytes_allocated.load(std::memory_order_relaxed);
        if (__builtin_expect((((now - uint64_t(covered)) ^ now) >> peak_sample_shift) != 0, 0))
            return events_peak_then(p, t, id, size, caller);
        t->stack_countdown -= covered;
        if (t->stack_countdown < 0) {
            // The profile's common case inline (profile_thread.h), else its general path as the tail call.
            const uintptr_t cfa = reinterpret_cast<uintptr_t>(__builtin_dwarf_cfa());
            if (__builtin_expect(!profile::stacked_fast(t, id, records().get(id), size, caller, cfa), 0))
                return profile::on_countdown_then(p, t, id, size, caller, cfa);
            t->event_armed = t->event_countdown = -1;  // arm_events with every allocation stacked: the next one
            put_thread_state_reloading(t);
            return p;
        }
        arm_events(t);
        put_thread_state_reloading(t);
        return p;
    }
    __attribute__((noinline)) static void *events_peak_then(void *p, thread_state *t, uint32_t id, size_t size, const void *caller) {
        if (settle_events(t))
            return profile::on_countdown_then(p, t, id, size, caller, reinterpret_cast<uintptr_t>(__builtin_dwarf_cfa()));
        arm_events(t);
        put_thread_state_reloading(t);
        return p;
    }

    __attribute__((noinline)) static void *stale_then(void *p, thread_state *t, uint32_t stale, uint32_t id, size_t size,
                                                      const void *caller) {
        drop_stale(t, stale, id, reinterpret_cast<uintptr_t>(p));
        if (!count_allocation_fast(t, size)) return events_then(p, t, id, size, caller);
        put_thread_state_reloading(t);
        return p;
    }

    // The index cannot take the chunk: its own memory cannot grow (a limit on address space or data, see
    // index_memory.h, or no memory).  The program goes on as it would without the index: the chunk is
    // its, unindexed, counted (heapindex_stats, heapindex_check and the exit report say how many), and
    // the first time, one warning says so.  (Failing the allocation instead would fail one that the
    // program's allocator had granted.)
    __attribute__((noinline)) static void *not_admitted(void *p) {
        if (counters().unindexed.fetch_add(1, std::memory_order_relaxed) == 0) report_index_memory_exhausted();
        return p;
    }

    // The chunk at a marked granule is live and has this base: take it out of the index (its record
    // becomes a tombstone owned by the caller) after checking its trailer; *size is its requested size.
    // False when it is not (the caller then treats the pointer as no chunk).
    __attribute__((always_inline)) static bool forget(const heap_index_t::slot &s, uintptr_t base, const void *caller, const char *what, size_t *size) {
        record *r = records().get(s.id);
        if (__builtin_expect(!r->claim(base, rs_dying), 0)) return false;
        // The caller owns the claimed record now: nothing changes its fields.  It stays rs_dying (in
        // flux to readers) until the realloc is done: revive() or finish_dying().
        *size = r->size();
        const uint32_t flags = r->flags();
        if (has_trailer(flags) &&
            __builtin_expect(!trailer_intact_any(base, *r, flags) ||
                                 ((flags & HEAPINDEX_FLAG_TRAILER) && !(flags & HEAPINDEX_FLAG_USABLE_ASKED) &&
                                  !short_slack_intact(base, *size, trailer_at(*size))),
                             0))
            verify_chunk(s.id, caller, what);
        if (__builtin_expect((flags & by_free::kind_mask) != 0, 0)) mismatch(s.id, caller, what);
        s.remove();
        return true;
    }

    static constexpr bool foreign_guarded(uint32_t flags) {
        return (flags & (record_flag_guarded_trailer | record_flag_memcheck_block)) == record_flag_guarded_trailer;
    }
    // Is the trailer of a chunk that has one intact?  The chunk goes back to the allocator next (free,
    // realloc).  Under memcheck (memcheck.h) a guarded trailer is opened for the read; in memcheck's own
    // block it is guarded again (it lies beyond the block as memcheck knows it: memcheck's realloc does
    // not copy it and its free leaves it alone), in another allocator's block it stays open, the
    // allocator's bytes again (see realloc for its copy).
    static bool trailer_intact_any(uintptr_t base, const record &r, uint32_t flags) {
        const uintptr_t t = base + trailer_at(r.size());
        if (__builtin_expect(!(flags & record_flag_guarded_trailer), 1)) return trailer_intact(t, r);
        const void *at = reinterpret_cast<const void *>(t);
        memcheck::open(at, trailer_size);
        const bool intact = trailer_intact(t, r);
        if (flags & record_flag_memcheck_block) memcheck::guard(at, trailer_size);
        return intact;
    }
    // Under memcheck, in another allocator's block: a realloc that failed leaves the chunk live, its
    // trailer guarded again; one that succeeded copied the trailer's bytes into the new block (or kept
    // them there), where they are no data of the program's: undefined, as far as the new block goes.
    __attribute__((noinline)) static void reguard_trailer(const record &r) {
        memcheck::guard(reinterpret_cast<const void *>(r.base() + trailer_at(r.size())), trailer_size);
    }
    template <class Next>
    __attribute__((noinline)) static void after_realloc_copy(Next next, void *q, size_t old_trailer_at, const void *caller) {
        const size_t extent = next.usable_size(q, caller);
        if (old_trailer_at >= extent) return;
        const size_t end = old_trailer_at + trailer_size < extent ? old_trailer_at + trailer_size : extent;
        memcheck::make_undefined(static_cast<char *>(q) + old_trailer_at, end - old_trailer_at);
    }

    // A chunk released another way than its kind's (see by_free, by_delete): report it, with both sites.
    __attribute__((noinline)) static void mismatch(uint32_t id, const void *caller, const char *what) {
        counters().mismatched_frees.fetch_add(1, std::memory_order_relaxed);
        record_fields all;
        records().get(id)->read_owned(&all);
        report_mismatch(all, caller, what, id);
    }
    __attribute__((noinline)) static void size_mismatch(uint32_t id, const void *caller, const char *what, size_t size) {
        counters().mismatched_frees.fetch_add(1, std::memory_order_relaxed);
        record_fields all;
        records().get(id)->read_owned(&all);
        report_size_mismatch(all, caller, what, size, id);
    }
    static const char *dealloc_name(by_free) { return "free"; }
    static const char *dealloc_name(const by_delete &d) {
        static const char *const names[] = {"operator delete", "operator delete[]",
                                            "operator delete(std::align_val_t)", "operator delete[](std::align_val_t)"};
        return names[((d.kind & HEAPINDEX_FLAG_NEW_ARRAY) ? 1 : 0) + ((d.kind & HEAPINDEX_FLAG_ALIGNED) ? 2 : 0)];
    }
    static bool kind_matches(uint32_t flags, by_free) { return (flags & by_free::kind_mask) == 0; }
    static bool kind_matches(uint32_t flags, const by_delete &d) { return (flags & by_delete::kind_mask) == d.kind; }

    // The whole check of a killed trailered record's chunk (trailer, and every patterned slack byte
    // unless the program owns them), reported and counted when something was overwritten.  A trailer
    // guarded under memcheck has no slack pattern to check: memcheck itself watches those bytes.
    __attribute__((noinline)) static void verify_chunk(uint32_t id, const void *caller, const char *what) {
        const record *r = records().get(id);
        record_fields f;
        r->read_owned(&f);
        const bool trailer_bad = !trailer_intact_any(f.base, *r, f.flags);
        const size_t slack_bad = (f.flags & HEAPINDEX_FLAG_USABLE_ASKED) || !(f.flags & HEAPINDEX_FLAG_TRAILER)
                                     ? 0
                                     : slack_damage(reinterpret_cast<const unsigned char *>(f.base + f.size), f.size,
                                                    slack_length(f.size, f.usable));
        if (!trailer_bad && slack_bad == 0) return;
        counters().corrupt_trailers.fetch_add(1, std::memory_order_relaxed);
        report_overflow(f, caller, what, trailer_bad, slack_bad, id);
    }

    // Where free's fast path sends a chunk whose flags or trailer it did not accept.  A chunk with a stack
    // comes here by design (HEAPINDEX_FLAG_STACK is in by_free's and by_delete's masks, so the fast path's
    // flags test sends it, before the trailer's comparison): the same checks as the fast path's, and if they
    // pass, the fast path's work plus the profile's (profile::released_fast, inline, or released_by_slow:
    // the chunk off its stack's counters, and the "freed by" stack for heap-error reports, as free_slow
    // keeps it) with the slot the fast path found: no second look-up, no whole-chunk verify, no slow thread state.
    // Anything else (a damaged chunk, another kind than the call releases, an untrailered chunk, a full
    // ring or a thread without state) goes on to free_slow as before.  Nothing here runs when no chunk
    // has a stack: free's fast path is unchanged.
    template <class Next, class How>
    __attribute__((noinline)) static void free_checked(Next next, void *ptr, const void *caller, heap_index_t::leaf *l,
                                                       uint32_t id, size_t size, How how) {
        const uintptr_t base = reinterpret_cast<uintptr_t>(ptr);
        record *r = records().get(id);
        const uint32_t flags = r->flags();
        if (!(flags & HEAPINDEX_FLAG_STACK)) {
            if (flags & HEAPINDEX_FLAG_USABLE_ASKED) return free_usable_asked(next, ptr, caller, id, size, how);
            return free_slow(next, ptr, caller, size, true, how);
        }
        const size_t at = trailer_at(size);
        if (__builtin_expect((flags & (How::mask & ~HEAPINDEX_FLAG_STACK)) != expected_of(how) || wrong_size(how, size) ||
                                 !trailer_intact(base + at, *r) ||
                                 (!(flags & HEAPINDEX_FLAG_USABLE_ASKED) && !trailered_slack_intact(base, size, at)),
                             0))
            return free_slow(next, ptr, caller, size, true, how);
        heap_index_t::clear_start(l, heap_index_t::slot_of(base));
        thread_state *t = take_thread_state();  // never null: see no_thread_state; put back below
        if (__builtin_expect(t->tail - t->head >= thread_state::ring_size, 0)) {
            put_thread_state(t);
            return free_slow(next, ptr, caller, size, false, how, true);
        }
        t->ring()[take_next(t->tail) % thread_state::ring_size] = id;
        count_free(t, size);
        // Off its stack's counters, and its "freed by" stack kept, as free_slow does: inline in the common
        // case (profile_thread.h), from this function's CFA.
        const uintptr_t cfa = reinterpret_cast<uintptr_t>(__builtin_dwarf_cfa());
        if (__builtin_expect(!profile::released_fast(t, id, r, caller, cfa), 0)) profile::released_by_slow(t, id, r, caller, cfa);
        put_thread_state(t);
        r->bury(caller);
        if constexpr (direct_terminal<Next>::value)
            Next::terminal::free_unowned(ptr, caller);  // trailered: not the arena's (see admit)
        else
            how.release(next, ptr, caller);
    }

    // free's rarer cases, out of line (a few register arguments, the slot found again: nothing to keep or
    // pack on the fast path), with the record already killed: an untrailered chunk or a clobbered trailer
    // (`marked`: the start bit is still to be cleared), a thread without state yet or any more, a full
    // ring.
    // (`marked` also covers a chunk of another kind than the call releases.)  A chunk with a stack comes
    // here from free_checked: `marked` when a check failed; unmarked and checked (`stacked`), when the
    // thread state was not at hand.
    template <class Next, class How>
    __attribute__((noinline)) static void free_slow(Next next, void *ptr, const void *caller, size_t size, bool marked,
                                                    How how, bool stacked = false) {
        const heap_index_t::slot s = heap_chunks.at(reinterpret_cast<uintptr_t>(ptr));
        record *r = records().get(s.id);
        if (marked) stacked = r->flags() & HEAPINDEX_FLAG_STACK;
        if (marked) {
            const uint32_t flags = r->flags();
            if (has_trailer(flags)) verify_chunk(s.id, caller, dealloc_name(how));
            if (!kind_matches(flags, how)) mismatch(s.id, caller, dealloc_name(how));
            else if (wrong_size(how, r->size())) size_mismatch(s.id, caller, dealloc_name(how), how.size);
            s.remove();
        }
        {
            const owned_thread_state t;
            if (stacked) profile::released_by(t.get(), s.id, r, caller, reinterpret_cast<uintptr_t>(__builtin_dwarf_cfa()));
            count_free(t.get(), size);
            r->bury(caller);  // last: the reports and the profile read the thread id under it
            records().give(t.get(), s.id);
        }
        how.release(next, ptr, caller);
    }
    template <class Next, class How>
    __attribute__((noinline)) static void free_no_chunk(Next next, void *ptr, const void *caller, How how) {
        not_a_chunk<Next>(heap_chunks.at(reinterpret_cast<uintptr_t>(ptr)), ptr, caller, dealloc_name(how));
        how.release(next, ptr, caller);
    }

    // A granule already marked when a new chunk starts there: the old chunk was freed without the index
    // seeing it (through the allocator's own API, say).  Retire its record.
    __attribute__((noinline)) static void drop_stale(thread_state *t, uint32_t stale, uint32_t id, uintptr_t base) {
        if (stale == id) return;
        record *old = records().get(stale);
        record_fields f;
        if (old->read_live(&f) && (f.base >> heap_index_t::granule_shift) == (base >> heap_index_t::granule_shift) &&
            old->claim(f.base)) {
            if (f.flags & HEAPINDEX_FLAG_STACK) profile::released(t, stale, old);
            old->bury(nullptr);
            count_free(t, f.size);
            records().give(t, stale);
            // Silent when the program freed the chunk through the allocator's own API.  After a heap error
            // (a double free, a realloc of a freed chunk) it is the allocator handing one address out
            // twice: the index follows the allocator, and says which chunk it lost.
            if (counters().invalid_frees.load(std::memory_order_relaxed) != 0) {
                record_fields now;
                records().get(id)->read_any(&now);
                report_lost_chunk(f, now, stale);
            }
        }
    }

    // free or realloc of something that is not a live chunk: say what it is, if we can tell.
    template <class Next>
    __attribute__((noinline)) static void not_a_chunk(heap_index_t::slot s, void *ptr, const void *caller, const char *what) {
        const uintptr_t base = reinterpret_cast<uintptr_t>(ptr);
        record_fields f;
        if (s.l != nullptr && s.id != 0) {
            const record *r = records().get(s.id);
            const uint64_t head = r->head.load(std::memory_order_acquire);
            if (rec::state_of(head) == rs_dying && rec::base_of(head) == base) {
                // Claimed by a realloc of this very chunk still under way on another thread: freed
                // twice, the first time not finished (no free site yet).
                r->read_owned(&f);
                f.free_site = nullptr;
                counters().double_frees.fetch_add(1, std::memory_order_relaxed);
                counters().invalid_frees.fetch_add(1, std::memory_order_relaxed);
                report_double_free(f, caller, what, s.id);
                return;
            }
            const uint32_t state = r->read_any(&f);
            if (state == rs_dead && f.base == base) {  // a tombstone of this very address
                counters().double_frees.fetch_add(1, std::memory_order_relaxed);
                counters().invalid_frees.fetch_add(1, std::memory_order_relaxed);
                report_double_free(f, caller, what, s.id);
                return;
            }
        }
        uint32_t holder = 0;
        if (heap_chunks.lookup(base, &f, &holder)) {  // inside a live chunk, not at its start
            counters().invalid_frees.fetch_add(1, std::memory_order_relaxed);
            report_invalid_free(ptr, caller, &f, what, false, holder);
            return;
        }
        // The bootstrap arena's chunks predate the index (and are indexed as early chunks anyway).  A
        // chain adopted through the dynamic ABI (Next is a table) cannot see the calls its own front sends
        // straight to its allocator, so a pointer unknown there may be genuine; and once the index had to
        // leave a chunk out (no memory) the same holds everywhere.  Otherwise every chunk this library's
        // allocator handed out is indexed, and the pointer is no chunk at all.
        if (bootstrap_arena().owns(ptr) || std::is_base_of_v<table_next, Next> ||
            counters().unindexed.load(std::memory_order_relaxed) != 0)
            return;
        counters().invalid_frees.fetch_add(1, std::memory_order_relaxed);
        // A granule's id is written when a chunk starts there and never cleared: an id means a chunk
        // started in this granule once.
        report_invalid_free(ptr, caller, nullptr, what, s.l != nullptr && s.id != 0);
    }
};

using heapindex_layer = basic_layer<true>;

// A terminal (backends/terminal.h) that indexes what it hands out without trailers: see the top.
template <class Terminal> struct early_terminal {
    using layer = basic_layer<false>;
    using next = chain<Terminal>;
    static void init() { Terminal::init(); }
    static void *malloc(size_t size, const void *caller) { return layer::malloc(next{}, size, caller); }
    static void *calloc(size_t nmemb, size_t size, const void *caller) { return layer::calloc(next{}, nmemb, size, caller); }
    static void *memalign(size_t alignment, size_t size, const void *caller) {
        return layer::memalign(next{}, alignment, size, caller);
    }
    static void free(void *ptr, const void *caller) { layer::free(next{}, ptr, caller); }
    static void *cxx_new(size_t size, size_t alignment, unsigned kind, const void *caller) {
        return layer::cxx_new(next{}, size, alignment, kind, caller);
    }
    static void *cxx_next(const char *name, void **cache)
        requires requires { Terminal::cxx_next(name, cache); }
    {
        return Terminal::cxx_next(name, cache);
    }
    static void cxx_delete(void *ptr, size_t size, size_t alignment, unsigned kind, const void *caller) {
        layer::cxx_delete(next{}, ptr, size, alignment, kind, caller);
    }
    static void *realloc(void *ptr, size_t size, const void *caller) { return layer::realloc(next{}, ptr, size, caller); }
    static size_t usable_size(void *ptr, const void *caller) { return layer::usable_size(next{}, ptr, caller); }
};

}  // namespace mallochooks::heapindex

#endif
