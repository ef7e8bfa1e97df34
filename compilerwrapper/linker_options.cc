// SPDX-License-Identifier: MIT
// How GNU ld, gold and lld read the words they get (see linker_options.h).  The two tables are the long
// options of the three linkers' --help (binutils 2.40, gold 1.16, lld 14), split by whether a value may
// follow as the next word; single-letter options are getopt's.
#include "compilerwrapper/linker_options.h"

#include <algorithm>
#include <iterator>

namespace mallochooks::allocscc {

namespace {

// Sorted (byte order): binary-searched.
constexpr std::string_view long_with_value[] = {
    "Map", "Tbss", "Tdata", "Tldata-segment", "Trodata-segment", "Ttext", "Ttext-segment", "architecture", "assert",
    "audit", "auxiliary", "base_file", "build-id-chunk-size-for-treehash", "build-id-min-file-size-for-treehash",
    "call-graph-ordering-file", "ctf-share-types", "dT", "default-script", "defsym", "depaudit", "dependency-file",
    "dll-search-prefix", "dynamic-linker", "dynamic-list", "entry", "error-handling-script", "error-limit",
    "exclude-libs", "export-dynamic-symbol", "export-dynamic-symbol-list", "file-alignment", "filter", "fini",
    "flto-partition", "format", "fuse-ld", "gpsize", "hash-bucket-empty-fraction", "hash-size", "hash-style",
    "heap", "icf", "icf-iterations", "ignore-unresolved-symbol", "image-base", "incremental-base",
    "incremental-patch", "init", "just-symbols", "keep-unique", "library", "library-path", "lto-O",
    "lto-aa-pipeline", "lto-basic-block-sections", "lto-cs-profile-file", "lto-newpm-passes", "lto-partitions",
    "lto-sample-profile", "major-image-version", "major-os-version", "major-subsystem-version", "max-cache-size",
    "minor-image-version", "minor-os-version", "minor-subsystem-version", "mllvm", "mri-script", "oformat",
    "opt-remarks-filename", "opt-remarks-format", "opt-remarks-hotness-threshold", "opt-remarks-passes", "optimize",
    "orphan-handling", "out-implib", "output", "output-def", "plugin", "plugin-opt", "power10-stubs",
    "print-archive-stats", "print-symbol-counts", "print-symbol-order", "reproduce", "require-defined",
    "retain-symbols-file", "rosegment-gap", "rpath", "rpath-link", "script", "section-alignment",
    "section-ordering-file", "section-start", "shuffle-sections", "soname", "sort-section", "spare-dynamic-tags",
    "split-stack-adjust-size", "stack", "stub-group-size", "subsystem", "symbol-ordering-file", "sysroot",
    "target2", "task-link", "thinlto-cache-dir", "thinlto-cache-policy", "thinlto-jobs", "thinlto-single-module",
    "thread-count", "thread-count-final", "thread-count-initial", "thread-count-middle", "threads", "thumb-entry",
    "time-trace-file", "time-trace-granularity", "trace-symbol", "undefined", "undefined-glob",
    "unresolved-symbols", "version-exports-section", "version-script", "warn-backrefs-exclude", "why-extract",
    "wrap",
};
constexpr std::string_view long_without_value[] = {
    "Bdynamic", "Bgroup", "Bno-symbolic", "Bshareable", "Bstatic", "Bsymbolic", "Bsymbolic-functions",
    "Bsymbolic-non-weak-functions", "EB", "EL", "Qy", "Ur", "accept-unknown-input-arch", "add-needed",
    "add-stdcall-alias", "allow-multiple-definition", "allow-shlib-undefined", "apply-dynamic-relocs", "as-needed",
    "be8", "build-id", "call-graph-profile-sort", "call_shared", "check-sections", "color-diagnostics",
    "compat-implib", "compress-debug-sections", "copy-dt-needed-entries", "cref", "ctf-variables",
    "ctors-in-init-array", "dc", "debug", "default-imported-symver", "default-symver", "define-common", "demangle",
    "dependent-libraries", "detect-odr-violations", "disable-auto-image-base", "disable-auto-import",
    "disable-large-address-aware", "disable-long-section-names", "disable-multiple-abs-defs", "disable-new-dtags",
    "disable-reloc-section", "disable-runtime-pseudo-reloc", "disable-stdcall-fixup", "discard-all",
    "discard-locals", "discard-none", "dll", "dn", "dp", "dy", "dynamic-list-cpp-new", "dynamic-list-cpp-typeinfo",
    "dynamic-list-data", "eh-frame-hdr", "embedded-relocs", "emit-relocs", "emit-stub-syms",
    "enable-auto-image-base", "enable-auto-import", "enable-extra-pe-debug", "enable-extra-pep-debug",
    "enable-long-section-names", "enable-new-dtags", "enable-non-contiguous-regions",
    "enable-non-contiguous-regions-warnings", "enable-reloc-section", "enable-runtime-pseudo-reloc",
    "enable-stdcall-fixup", "end-group", "end-lib", "error-unresolved-symbols", "exclude-all-symbols",
    "exclude-modules-for-implib", "exclude-symbols", "execute-only", "export-all-symbols", "export-dynamic",
    "fatal-warnings", "fix-arm1176", "fix-cortex-a53-835769", "fix-cortex-a53-843419", "fix-cortex-a8", "fix-v4bx",
    "fix-v4bx-interworking", "flto", "force-exe-suffix", "force-group-allocation", "fortran-common",
    "gc-keep-exported", "gc-sections", "gdb-index", "gnu-unique", "help", "ignore-data-address-equality",
    "ignore-function-address-equality", "incremental", "incremental-changed", "incremental-full",
    "incremental-startup-unchanged", "incremental-unchanged", "incremental-unknown", "incremental-update",
    "keep-files-mapped", "kill-at", "large-address-aware", "ld-generated-unwind-info", "long-plt",
    "lto-cs-profile-generate", "lto-debug-pass-manager", "lto-emit-asm", "lto-legacy-pass-manager",
    "lto-pgo-warn-mismatch", "lto-unique-basic-block-section-names", "lto-whole-program-visibility",
    "map-whole-files", "merge-exidx-entries", "mmap-output-file", "nmagic", "no-accept-unknown-input-arch",
    "no-add-needed", "no-allow-multiple-definition", "no-allow-shlib-undefined", "no-apply-dynamic-relocs",
    "no-as-needed", "no-call-graph-profile-sort", "no-check-sections", "no-color-diagnostics",
    "no-copy-dt-needed-entries", "no-cref", "no-ctf-variables", "no-ctors-in-init-array", "no-define-common",
    "no-demangle", "no-dependent-libraries", "no-detect-odr-violations", "no-dynamic-linker", "no-eh-frame-hdr",
    "no-emit-stub-syms", "no-enum-size-warning", "no-execute-only", "no-export-dynamic", "no-fatal-warnings",
    "no-fix-arm1176", "no-fix-cortex-a53-835769", "no-fix-cortex-a53-843419", "no-fix-cortex-a8",
    "no-fortran-common", "no-gc-sections", "no-gdb-index", "no-gnu-unique", "no-incremental",
    "no-keep-files-mapped", "no-keep-memory", "no-ld-generated-unwind-info", "no-long-plt",
    "no-lto-legacy-pass-manager", "no-lto-pgo-warn-mismatch", "no-lto-unique-basic-block-section-names",
    "no-lto-whole-program-visibility", "no-map-whole-files", "no-merge-exidx-entries", "no-mmap-output-file",
    "no-nmagic", "no-omagic", "no-optimize-bb-jumps", "no-pcrel-optimize", "no-pic-executable", "no-pie",
    "no-pipeline-knowledge", "no-plt-localentry", "no-plt-static-chain", "no-plt-thread-safe", "no-posix-fallocate",
    "no-power10-stubs", "no-print-gc-sections", "no-print-icf-sections", "no-print-map-discarded", "no-relax",
    "no-rosegment", "no-strip-discarded", "no-stub-group-multi", "no-text-reorder", "no-threads",
    "no-tls-get-addr-optimize", "no-tls-optimize", "no-toc-optimize", "no-toc-sort", "no-undefined",
    "no-undefined-version", "no-use-android-relr-tags", "no-warn-backrefs", "no-warn-common",
    "no-warn-constructors", "no-warn-drop-version", "no-warn-execstack", "no-warn-ifunc-textrel",
    "no-warn-mismatch", "no-warn-rwx-segments", "no-warn-search-mismatch", "no-warn-shared-textrel",
    "no-warn-symbol-ordering", "no-warnings", "no-wchar-size-warning", "no-whole-archive", "noinhibit-exec",
    "non_shared", "nostdlib", "omagic", "opt-remarks-with-hotness", "optimize-bb-jumps", "pack-dyn-relocs",
    "package-metadata", "pcrel-optimize", "pic-executable", "pic-veneer", "pie", "plt-align", "plt-localentry",
    "plt-static-chain", "plt-thread-safe", "pop-state", "posix-fallocate", "preread-archive-symbols",
    "print-gc-sections", "print-icf-sections", "print-map", "print-map-discarded", "print-memory-usage",
    "print-output-format", "print-sysroot", "push-state", "qmagic", "reduce-memory-overheads", "relax",
    "relocatable", "rosegment", "rsp-quoting", "save-temps", "secure-plt", "shared", "sort-common", "split-by-file",
    "split-by-reloc", "start-group", "start-lib", "static", "stats", "strip-all", "strip-debug", "strip-debug-gdb",
    "strip-debug-non-line", "strip-discarded", "strip-lto-sections", "stub-group-multi", "support-old-code",
    "target-help", "target1-abs", "target1-rel", "text-reorder", "time-trace", "tls-get-addr-optimize",
    "tls-optimize", "toc-optimize", "toc-sort", "trace", "traditional-format", "undefined-version", "unique",
    "use-android-relr-tags", "verbose", "version", "vs-diagnostics", "warn-alternate-em", "warn-backrefs",
    "warn-common", "warn-constructors", "warn-drop-version", "warn-duplicate-exports", "warn-execstack",
    "warn-ifunc-textrel", "warn-multiple-gp", "warn-once", "warn-rwx-segments", "warn-search-mismatch",
    "warn-section-align", "warn-shared-textrel", "warn-symbol-ordering", "warn-textrel", "warn-unresolved-symbols",
    "weak-unresolved-symbols", "whole-archive",
};

// Single-letter options that take a value, joined (-lm) or as the next word (-l m).
constexpr std::string_view short_with_value = "AFGILOPRTYabcefhlmouyz";

bool in(const std::string_view *first, const std::string_view *last, std::string_view name) {
    return std::binary_search(first, last, name);
}

}  // namespace

linker_word_reading read_linker_word(const std::vector<std::string> &words, std::size_t i) {
    const std::string &w = words[i];
    linker_word_reading r;
    r.used = 1;
    if (w.size() < 2 || w[0] != '-') {  // an input file ("-" alone included: ld reads it as a name)
        r.positional = true;
        return r;
    }
    const bool two_dashes = w[1] == '-';
    const std::string body = w.substr(two_dashes ? 2 : 1);
    const std::size_t eq = body.find('=');
    const std::string name = body.substr(0, eq);
    auto value_from_next = [&] {
        if (i + 1 < words.size()) {
            r.value = words[i + 1];
            r.used = 2;
        } else {
            r.incomplete = true;
        }
    };
    // A long option, with one dash or two (getopt_long_only; gold and lld accept both too).
    if (in(std::begin(long_with_value), std::end(long_with_value), name)) {
        r.name = name;
        if (eq != std::string::npos) r.value = body.substr(eq + 1);
        else value_from_next();
        return r;
    }
    if (in(std::begin(long_without_value), std::end(long_without_value), name) || two_dashes ||
        name.size() < 1) {
        r.name = name;
        if (eq != std::string::npos) r.value = body.substr(eq + 1);  // --build-id=sha1: an optional value
        return r;
    }
    // A single-letter option: -lm, -l m, -Lfoo, -o out, -hlibx.so.1; with no value: -r, -s, -E.
    r.name = body.substr(0, 1);
    if (short_with_value.find(body[0]) != std::string_view::npos) {
        if (body.size() > 1) r.value = body.substr(1);
        else value_from_next();
    }
    return r;
}

}  // namespace mallochooks::allocscc
