// SPDX-License-Identifier: MIT
// Heap profiles (HEAPINDEX_STACKS, HEAPINDEX_STACKS_SAMPLE, profile outputs in HEAPINDEX_REPORT): the
// per-allocation hooks the layer calls when a chunk gets a stack or loses one, the sampled series of
// memory in use and the stack set at the peak, and the profile dump written at exit (or on demand) that
// the out-of-process converter, heapindex-report, turns into heaptrack's format, folded stacks and an
// HTML page.  Design: docs/heap-profiles.md.
//
// Cost when no profile is asked for: nothing of its own in malloc's fast path (its countdown is folded
// into the thread's one countdown of events, counters.h, which the peak's sample needs anyway), nothing
// in free's (a chunk with a stack is sent off free's fast path by its flag, which the fast path's test of
// the flags already masks, to a near copy of it that also takes the chunk off its stack:
// profile_thread.h's released_fast).  The countdown is in bytes, as tcmalloc's and jemalloc's samplers: with every
// allocation stacked it stays negative; with HEAPINDEX_STACKS_SAMPLE=K it is drawn from an exponential
// distribution of mean K after each sample; with profiles off it is set far away on a thread's first
// allocation.
#ifndef MALLOCHOOKS_INDEX_PROFILE_H
#define MALLOCHOOKS_INDEX_PROFILE_H

#include <stddef.h>
#include <stdint.h>

#include "index/counters.h"
#include "index/profile_thread.h"
#include "index/record.h"
#include "index/stack_depot.h"
#include "index/thread_state.h"

namespace mallochooks::heapindex::profile {

// A chunk's countdown ran out (or its thread's first allocation): record its stack if profiling, and
// draw the next countdown.  The record `id` is live and this thread's; `r` is its record.  `cfa` is the
// CFA (__builtin_dwarf_cfa()) of the caller, a function of this library whose own caller's frames are
// the stack's: the remembered walks (unwind.h) are checked from there, with no frame of the profile's own
// to walk through.
void on_countdown(thread_state *t, uint32_t id, record *r, size_t size, const void *caller, uintptr_t cfa)
    __attribute__((visibility("hidden"), noinline));
// The same from malloc's exit once settle_events said the profile is due and profile_thread.h's
// stacked_fast did not apply, with t taken (admit_finish's events_then, heapindex_layer.h), as its tail
// call: then arm_events, put t back, and return p.
void *on_countdown_then(void *p, thread_state *t, uint32_t id, size_t size, const void *caller, uintptr_t cfa)
    __attribute__((visibility("hidden")));

// A chunk with a stack (HEAPINDEX_FLAG_STACK) is no longer live: the record is dead and owned by the
// caller.  Takes the chunk off its stack's live counters.  `t` may be null.
void released(thread_state *t, uint32_t id, record *r) __attribute__((visibility("hidden")));

// From sample_peak (counters.cc): the live bytes summed just now; a point of the series, and a copy of
// the stacks' live counters when this is a new peak.
void on_sample(uint64_t live_bytes) __attribute__((visibility("hidden")));

// Settings (settings.cc hands over the variables it does not know itself): true if `name` is one of
// profile's; `value` parsed, problems reported.
bool is_setting(const char *name, size_t len) __attribute__((visibility("hidden")));
int load_settings() __attribute__((visibility("hidden")));
// HEAPINDEX_REPORT is a comma-separated list: the items that name a profile output (by suffix: .html,
// .folded, .hiprof, heaptrack) are taken here; the one other item, if any, is copied to `text` (the text
// report of report.cc).  Returns the problems reported.
int take_report_outputs(const char *value, char *text, size_t text_size) __attribute__((visibility("hidden")));
const char *setting_names() __attribute__((visibility("hidden")));

// From the library's constructor, after the settings: prepare the depot if stacks are asked for.
void start() __attribute__((visibility("hidden")));
// From the library's destructor: write the profile outputs asked for.
void at_exit() __attribute__((visibility("hidden")));
// heapindex_profile_write: the outputs in `list` (comma-separated, as HEAPINDEX_REPORT's profile items)
// or, when null, those of HEAPINDEX_REPORT.  Returns how many were written, -1 when stacks are off.
int write_now(const char *list) __attribute__((visibility("hidden")));

bool enabled() __attribute__((visibility("hidden")));

// The reachability scan at exit (HEAPINDEX_LEAKS=exit, leaks_at_exit.cc) runs before the dump and hands
// over what it found: leak_scan_done() once, after one leak_found() per chunk not reachable (kind:
// profile_format's leak_definite, leak_indirect or leak_interior; `stack` its stack id or 0).  The dump
// then carries a leak section, and the outputs show these chunks as the leaks.  Not thread-safe: the
// destructor's thread only.
void leak_found(uint32_t stack, uint32_t kind, size_t size) __attribute__((visibility("hidden")));
void leak_scan_done() __attribute__((visibility("hidden")));

// The stack id (in depot()) recorded for the chunk of live record `id`, 0 when it has none (leak reports:
// leaks_at_exit.cc).
uint32_t stack_of_chunk(uint32_t id) __attribute__((visibility("hidden")));

// Stacks for heap-error reports (heap_errors.cc), with HEAPINDEX_STACKS > 1 only (else they answer 0):
//   capture_stack       the stack of the current call, from `caller` out, kept in a depot of its own
//                       (not the profile's): its id;
//   released_by         released, and the releasing call's stack kept for the chunk's tombstone ("freed
//                       by"), in one call (free_checked, free_slow, realloc: every release of a chunk with
//                       a stack but drop_stale's); `cfa` as on_countdown's, the caller's own CFA;
//   freed_by_of_chunk   that stack's id for record `id` (meaningful while it is a tombstone of such a chunk);
//   stack               an id's entry: an allocation stack (stack_of_chunk) or one of the others;
//                       nullptr with one-frame stacks (profile outputs without HEAPINDEX_STACKS).
uint32_t capture_stack(const void *caller) __attribute__((visibility("hidden")));
void released_by(thread_state *t, uint32_t id, record *r, const void *caller, uintptr_t cfa)
    __attribute__((visibility("hidden")));
uint32_t freed_by_of_chunk(uint32_t id) __attribute__((visibility("hidden")));
const stack_entry *stack(uint32_t sid, bool allocation) __attribute__((visibility("hidden")));

}  // namespace mallochooks::heapindex::profile

#endif
