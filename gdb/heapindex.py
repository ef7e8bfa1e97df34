# SPDX-License-Identifier: MIT
# The heap index from gdb: the `heap` commands (info, list, sites, stats, check, who-points-at, leaks)
# for a live process or a core file running under libheapindex.so.
#
# gdb loads this file by itself (libheapindex.so names it in its .debug_gdb_scripts section; `meson
# install` puts it in gdb's auto-load directory), or with `gdb -x BUILD/gdb/libheapindex-gdb.py`.
# The index is read by heapindex-inspect (gdb/heapindex_inspect.cc), which walks it with memory reads
# alone from the exported root symbol `heapindex_v1_root`: in a core file directly, in a live process
# through /proc/PID/mem in bulk (gdb's own `gcore` when that is not allowed).  No function of the
# inferior is ever called.  This file turns the helper's JSON into text (sites named through gdb's
# symbols: function (file:line) in object), or passes it on with --json; every command also leaves its
# answer in the convenience variable $heap_json (and a few numbers, e.g. $heap_base, $heap_size).
import json
import os
import re
import subprocess
import tempfile

import gdb

HELPER_CANDIDATES = [os.environ.get("HEAPINDEX_INSPECT", ""), "@HELPER_INSTALLED@", "@HELPER_BUILD@"]
FLAGS = [(0x1, "trailer"), (0x2, "early"), (0x4, "client block"), (0x8, "realloc"), (0x10, "aligned"), (0x20, "calloc")]
CLASS_NAMES = {
    "definite": "definitely lost",
    "indirect": "indirectly lost",
    "interior": "reachable only through interior pointers",
    "reachable": "still reachable",
}
# user_regs_struct's order, which heapindex-inspect reads (gdb's names).
REGISTERS = ["r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8", "rax", "rcx", "rdx", "rsi", "rdi",
             "orig_rax", "rip", "cs", "eflags", "rsp", "ss", "fs_base", "gs_base", "ds", "es", "fs", "gs"]


def helper_path():
    for c in HELPER_CANDIDATES:
        if c and not c.startswith("@") and os.access(c, os.X_OK):
            return c
    raise gdb.GdbError("heap: heapindex-inspect not found (set HEAPINDEX_INSPECT to its path)")


def root_address():
    try:
        return int(gdb.parse_and_eval("(unsigned long)&heapindex_v1_root"))
    except gdb.error:
        raise gdb.GdbError("heap: the heap index is not loaded in this process (no heapindex_v1_root symbol: "
                           "run the program with LD_PRELOAD=libheapindex.so)")


def core_file():
    """The core file gdb has open, or None for a live process."""
    inf = gdb.selected_inferior()
    conn = getattr(inf, "connection", None)
    if conn is not None and conn.type != "core":
        return None
    text = gdb.execute("info target", to_string=True)
    m = re.search(r"Local core dump file:\s*\n?\s*`([^']+)'", text)
    return m.group(1) if m else None


def thread_registers():
    """Lines of "tid r15 r14 ..." for every thread of a live inferior, read from gdb."""
    inf = gdb.selected_inferior()
    lines = []
    selected = gdb.selected_thread()
    frame = gdb.selected_frame() if selected is not None else None
    try:
        for t in inf.threads():
            t.switch()
            f = gdb.newest_frame()
            vals = []
            for r in REGISTERS:
                try:
                    vals.append(str(int(f.read_register(r)) & (2**64 - 1)))
                except (gdb.error, ValueError):
                    vals.append("0")
            lines.append("%d %s" % (t.ptid[1], " ".join(vals)))
    finally:
        if selected is not None:
            selected.switch()
            if frame is not None and frame.is_valid():
                frame.select()
    return "\n".join(lines) + "\n"


def run_helper(args):
    """Run heapindex-inspect on the selected inferior; its JSON answer."""
    inf = gdb.selected_inferior()
    if inf.pid == 0:
        raise gdb.GdbError("heap: no process and no core file")
    root = root_address()
    helper = helper_path()
    core = core_file()
    tmp = None
    try:
        if core is not None:
            source = ["--core", core]
        else:
            tmp = tempfile.NamedTemporaryFile("w", prefix="heapindex-regs-", delete=False)
            tmp.write(thread_registers())
            tmp.close()
            source = ["--pid", str(inf.pid), "--regs", tmp.name]
        cmd = [helper] + source + ["--root", str(root)] + [str(a) for a in args]
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if p.returncode != 0 and core is None and "/mem" in p.stderr:
            # /proc/PID/mem not readable here: let gdb dump the process in bulk, and read that.
            dump = tempfile.NamedTemporaryFile(prefix="heapindex-gcore-", delete=False)
            dump.close()
            try:
                gdb.execute("gcore " + dump.name, to_string=True)
                cmd = [helper, "--core", dump.name, "--root", str(root)] + [str(a) for a in args]
                p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            finally:
                os.unlink(dump.name)
        for line in p.stderr.splitlines():
            if "warning:" in line:
                gdb.write(line.replace("heapindex-inspect: ", "heap: ") + "\n", gdb.STDERR)
        if p.returncode != 0:
            msg = p.stderr.strip().splitlines()
            raise gdb.GdbError("heap: " + (msg[-1].replace("heapindex-inspect: ", "") if msg else "the reader failed"))
        return json.loads(p.stdout)
    finally:
        if tmp is not None:
            os.unlink(tmp.name)


_site_cache = {}


def describe_site(pc):
    """A return address as "function (file:line) in object", like the exit report."""
    if pc in _site_cache:
        return _site_cache[pc]
    if pc == 0:
        return "(unknown)"
    call = pc - 1  # the call instruction, not the one after it
    func = None
    try:
        block = gdb.block_for_pc(call)
        while block is not None and block.function is None:
            block = block.superblock
        if block is not None:
            func = block.function.print_name
    except (RuntimeError, gdb.error):
        pass
    if func is None:
        try:
            out = gdb.execute("info symbol %d" % call, to_string=True)
            if not out.startswith("No symbol"):
                func = out.split(" in section")[0].split(" + ")[0].strip()
        except gdb.error:
            pass
    where = ""
    sal = gdb.find_pc_line(call)
    if sal.symtab is not None and sal.line:
        where = " (%s:%d)" % (os.path.basename(sal.symtab.filename), sal.line)
    obj = gdb.solib_name(call) or gdb.current_progspace().filename or "?"
    text = "%s%s in %s" % (func or "0x%x" % pc, where, obj)
    _site_cache[pc] = text
    return text


def plural(n, word):
    return "%d %s%s" % (n, word, "" if n == 1 else "s")


def flags_text(flags):
    return ", ".join(name for bit, name in FLAGS if flags & bit) or "none"


def chunk_line(c):
    return "chunk 0x%x, %d bytes (usable %d), seq %d, thread %d, flags %s" % (
        c["base"], c["size"], c["usable"], c["seq"], c["tid"], flags_text(c["flags"]))


def evaluate_address(expr, command):
    try:
        v = gdb.parse_and_eval(expr)
        if v.type.strip_typedefs().code == gdb.TYPE_CODE_ARRAY:
            v = v.address
        return int(v.cast(gdb.lookup_type("unsigned long")))
    except gdb.error as e:
        raise gdb.GdbError("heap %s: cannot evaluate '%s': %s" % (command, expr, e))


def split_options(arg, command, options, takes_values):
    """(--json flag, {option: value}, positional words)."""
    words = gdb.string_to_argv(arg)
    opts, rest, as_json = {}, [], False
    i = 0
    while i < len(words):
        w = words[i]
        if w == "--json":
            as_json = True
        elif w in options:
            if w in takes_values:
                if i + 1 >= len(words):
                    raise gdb.GdbError("heap %s: %s needs a value" % (command, w))
                opts[w] = words[i + 1]
                i += 1
            else:
                opts[w] = True
        elif w.startswith("--"):
            raise gdb.GdbError("heap %s: unknown option %s (options: %s)" % (command, w, " ".join(["--json"] + options)))
        else:
            rest.append(w)
        i += 1
    return as_json, opts, rest


def publish(answer, as_json, numbers=None):
    try:
        gdb.set_convenience_variable("heap_json", json.dumps(answer))
    except gdb.error:
        # Longer than gdb's max-value-size: the answer without its per-chunk lists (--json prints it all).
        short = {k: v for k, v in answer.items() if not isinstance(v, list)}
        short["truncated"] = True
        gdb.set_convenience_variable("heap_json", json.dumps(short))
    for k, v in (numbers or {}).items():
        gdb.set_convenience_variable(k, v)
    if as_json:
        gdb.write(json.dumps(answer, indent=1) + "\n")
        return True
    return False


class HeapCommand(gdb.Command):
    """Ask the heap index (libheapindex.so) about the heap of this process or core file.

heap info ADDR            what ADDR points into: chunk, site, sizes, trailer; or mapping, neighbours, freed chunk
heap list [FILTERS]       live chunks: --site EXPR, --thread TID, --min-size N, --largest N, --after-seq N
heap sites                bytes and chunks by allocation site
heap stats                the index's counters
heap check                the index and every trailer, as heapindex_check does
heap who-points-at ADDR [LEN]   every word pointing at or into the chunk (registers, stacks, globals, chunks)
heap leaks                reachability from the roots: definitely/indirectly lost, interior-only, reachable

Every command takes --json (the answer as JSON) and leaves it in $heap_json.
ADDR is a gdb expression (heap info &list->name[3])."""

    def __init__(self):
        super().__init__("heap", gdb.COMMAND_DATA, gdb.COMPLETE_COMMAND, True)


class HeapSubcommand(gdb.Command):
    options = []
    takes_values = []

    def __init__(self, name):
        super().__init__("heap " + name, gdb.COMMAND_DATA)
        self.name = name

    def complete(self, text, word):
        # gdb breaks words at '-': complete the option from the whole last token, answer from `word` on.
        token = text.split()[-1] if text and not text[-1].isspace() else ""
        if token.startswith("-"):
            cut = len(token) - len(word or "")
            return [o[cut:] for o in ["--json"] + self.options if o.startswith(token)]
        return gdb.COMPLETE_EXPRESSION


class HeapInfo(HeapSubcommand):
    """heap info ADDR [--json]: the chunk ADDR points into (offset, requested and usable size, allocation
site, seq, thread, flags, trailer intact or clobbered); for an address in no live chunk: its mapping, the
nearest live chunks before and after, and the freed chunk still held as a tombstone if any."""

    def __init__(self):
        super().__init__("info")

    def invoke(self, arg, from_tty):
        as_json, _, rest = split_options(arg, "info", [], [])
        if not rest:
            raise gdb.GdbError("heap info: an address expression is needed (heap info &list->name[3])")
        addr = evaluate_address(" ".join(rest), "info")
        a = run_helper(["info", addr])
        for k in ("chunk", "in_chunk", "freed", "before", "after"):
            if a.get(k):
                a[k]["site_name"] = describe_site(a[k]["site"])
                if a[k].get("free_site"):
                    a[k]["free_site_name"] = describe_site(a[k]["free_site"])
        if a.get("mapping") is None and a.get("found") is None:
            a["symbol"] = None
        if not a.get("found"):
            try:
                out = gdb.execute("info symbol %d" % addr, to_string=True).strip()
                a["symbol"] = None if out.startswith("No symbol") else out
            except gdb.error:
                a["symbol"] = None
        nums = {"heap_base": a["chunk"]["base"], "heap_size": a["chunk"]["size"]} if a.get("found") else {}
        if publish(a, as_json, nums):
            return
        if a.get("found"):
            c = a["chunk"]
            gdb.write("0x%x is %d bytes into %s 0x%x of %d bytes (usable %d)\n" % (
                addr, a["offset"], a["found"], c["base"], c["size"], c["usable"]))
            gdb.write("  allocated at %s\n" % c["site_name"])
            gdb.write("  seq %d, thread %d, flags %s, trailer %s\n" % (c["seq"], c["tid"], flags_text(c["flags"]), a["trailer"]))
            if a.get("in_chunk"):
                gdb.write("  inside heap %s, allocated at %s\n" % (chunk_line(a["in_chunk"]), a["in_chunk"]["site_name"]))
            return
        gdb.write("0x%x is in no live chunk\n" % addr)
        if a.get("freed"):
            f = a["freed"]
            # A tombstone keeps no thread id (its free site overlays it: index/record.h): tid 0.
            thread = (", thread %d" % f["tid"]) if f.get("tid") else ""
            gdb.write("  it is %d bytes into a freed chunk 0x%x of %d bytes allocated at %s, freed at %s (seq %d%s)\n" % (
                addr - f["base"], f["base"], f["size"], f["site_name"], f.get("free_site_name", "?"), f["seq"], thread))
        m = a.get("mapping")
        if m:
            what = m["file"] or "anonymous memory"
            if "stack_of" in m:
                what = "the stack of thread %d%s" % (m["stack_of"], " (below its stack pointer)" if m.get("below_sp") else "")
            gdb.write("  mapping 0x%x-0x%x %s (%s)\n" % (m["start"], m["end"], "rw" if m["writable"] else "r", what))
        else:
            gdb.write("  not mapped\n")
        if a.get("symbol"):
            gdb.write("  symbol: %s\n" % a["symbol"])
        for k, label in (("before", "nearest live chunk before"), ("after", "nearest live chunk after")):
            if a.get(k):
                gdb.write("  %s: %s, allocated at %s\n" % (label, chunk_line(a[k]), a[k]["site_name"]))


class HeapList(HeapSubcommand):
    """heap list [--site EXPR] [--thread TID] [--min-size N] [--largest N] [--after-seq N] [--json]:
live chunks and client blocks, in address order (--largest: largest first)."""
    options = ["--site", "--thread", "--min-size", "--largest", "--after-seq"]
    takes_values = options

    def __init__(self):
        super().__init__("list")

    def invoke(self, arg, from_tty):
        as_json, opts, rest = split_options(arg, "list", self.options, self.takes_values)
        if rest:
            raise gdb.GdbError("heap list: unexpected '%s'" % " ".join(rest))
        args = ["list"]
        for o, v in opts.items():
            args += [o, evaluate_address(v, "list")]
        a = run_helper(args)
        for c in a["chunks"]:
            c["site_name"] = describe_site(c["site"])
        if publish(a, as_json, {"heap_count": len(a["chunks"])}):
            return
        for c in a["chunks"]:
            gdb.write("0x%x %10d bytes  seq %-8d thread %-7d %s%s\n" % (
                c["base"], c["size"], c["seq"], c["tid"], "[client block] " if c["flags"] & 0x4 else "", c["site_name"]))
        for f in a["in_flux"]:
            gdb.write("  mid-update: %s\n" % f)
        gdb.write("%d chunks, %d bytes\n" % (len(a["chunks"]), sum(c["size"] for c in a["chunks"])))


class HeapSites(HeapSubcommand):
    """heap sites [--json]: bytes and chunks by allocation site, most bytes first (HEAPINDEX_REPORT's table)."""

    def __init__(self):
        super().__init__("sites")

    def invoke(self, arg, from_tty):
        as_json, _, _ = split_options(arg, "sites", [], [])
        a = run_helper(["sites"])
        for s in a["sites"]:
            s["site_name"] = describe_site(s["site"])
        if publish(a, as_json):
            return
        gdb.write("%14s %10s  %s\n" % ("bytes", "chunks", "allocation site"))
        for s in a["sites"]:
            gdb.write("%14d %10d  %s%s\n" % (s["bytes"], s["chunks"], "[client block] " if s["client"] else "", s["site_name"]))


class HeapStats(HeapSubcommand):
    """heap stats [--json]: live chunks and bytes, totals, peak, heap errors counted, record ids."""

    def __init__(self):
        super().__init__("stats")

    def invoke(self, arg, from_tty):
        as_json, _, _ = split_options(arg, "stats", [], [])
        a = run_helper(["stats"])
        if publish(a, as_json, {"heap_live_chunks": a["live_chunks"], "heap_live_bytes": a["live_bytes"]}):
            return
        for k, v in a.items():
            gdb.write("%-20s %d\n" % (k, v))


class HeapCheck(HeapSubcommand):
    """heap check [--json]: the index against itself and every live chunk's trailer; problems with sites."""

    def __init__(self):
        super().__init__("check")

    def invoke(self, arg, from_tty):
        as_json, _, _ = split_options(arg, "check", [], [])
        a = run_helper(["check"])
        named = []
        for p in a["problems"]:
            m = re.search(r"site 0x([0-9a-f]+)", p)
            named.append(p.replace(m.group(0), "allocated at " + describe_site(int(m.group(1), 16))) if m else p)
        a["problems"] = named
        if publish(a, as_json, {"heap_problems": len(named)}):
            return
        for p in named:
            gdb.write("check: %s\n" % p)
        if named:
            gdb.write("check: %d problems (%d chunks, %d client blocks)\n" % (len(named), a["chunks"], a["client_blocks"]))
        else:
            gdb.write("check: sound (%d chunks, %d client blocks, every trailer intact)\n" % (a["chunks"], a["client_blocks"]))


def frame_of(tid, address):
    """The frame of thread `tid` whose stack area holds `address`, as "#N function"."""
    for t in gdb.selected_inferior().threads():
        if t.ptid[1] != tid:
            continue
        selected = gdb.selected_thread()
        try:
            t.switch()
            f, n, best = gdb.newest_frame(), 0, None
            while f is not None:
                sp = int(f.read_register("sp"))
                # The red zone (128 bytes below sp) belongs to the newest frame only: an older frame's own
                # area starts at its sp, and giving it 128 bytes more took a small callee's locals from it.
                if (sp - 128 if n == 0 else sp) <= address:
                    best = "#%d %s" % (n, f.name() or "??")
                else:
                    break
                f, n = f.older(), n + 1
            return best
        except gdb.error:
            return None
        finally:
            if selected is not None:
                selected.switch()
    return None


class HeapWhoPointsAt(HeapSubcommand):
    """heap who-points-at ADDR [LEN] [--json]: every aligned word that points at or into the chunk holding
ADDR (or into [ADDR, ADDR+LEN)): in the registers of every thread, the thread stacks (with the frame), the
writable segments of every loaded object (with the symbol), and other live chunks (with their site).
Interior pointers are marked."""

    def __init__(self):
        super().__init__("who-points-at")

    def invoke(self, arg, from_tty):
        as_json, _, rest = split_options(arg, "who-points-at", [], [])
        if not rest or len(rest) > 2:
            raise gdb.GdbError("heap who-points-at: ADDR [LEN] (quote an expression with spaces)")
        addr = evaluate_address(rest[0], "who-points-at")
        args = ["who-points-at", addr] + ([evaluate_address(rest[1], "who-points-at")] if len(rest) > 1 else [])
        a = run_helper(args)
        for h in a["hits"]:
            if h["where"] == "stack":
                h["frame"] = frame_of(h["tid"], h["at"])
            elif h["where"] in ("segment", "tls"):
                try:
                    out = gdb.execute("info symbol %d" % h["at"], to_string=True).strip()
                    h["symbol"] = None if out.startswith("No symbol") else out
                except gdb.error:
                    h["symbol"] = None
            elif h["where"] == "chunk":
                h["chunk"]["site_name"] = describe_site(h["chunk"]["site"])
        if publish(a, as_json, {"heap_hits": len(a["hits"])}):
            return
        t = a["target"]
        if t["chunk"]:
            gdb.write("pointers to chunk 0x%x (%d bytes, allocated at %s):\n" % (
                t["start"], t["chunk"]["size"], describe_site(t["chunk"]["site"])))
        else:
            gdb.write("pointers into 0x%x-0x%x:\n" % (t["start"], t["end"]))
        for h in a["hits"]:
            interior = " (interior, +%d)" % (h["value"] - t["start"]) if h["interior"] else ""
            if h["where"] == "register":
                gdb.write("  register %s of thread %d = 0x%x%s\n" % (h["register"], h["tid"], h["value"], interior))
            elif h["where"] == "stack":
                gdb.write("  stack of thread %d at 0x%x, frame %s: 0x%x%s\n" % (h["tid"], h["at"], h.get("frame") or "?",
                                                                             h["value"], interior))
            elif h["where"] in ("segment", "tls"):
                gdb.write("  0x%x %s: 0x%x%s\n" % (h["at"], h.get("symbol") or "in " + (h.get("object") or "TLS"),
                                                  h["value"], interior))
            else:
                c = h["chunk"]
                gdb.write("  0x%x, %d bytes into chunk 0x%x (%d bytes, allocated at %s): 0x%x%s\n" % (
                    h["at"], h["at"] - c["base"], c["base"], c["size"], c["site_name"], h["value"], interior))
        gdb.write("%s\n" % plural(len(a["hits"]), "pointer"))


class HeapLeaks(HeapSubcommand):
    """heap leaks [--all] [--json]: reachability from the roots (registers, stacks, data/bss/TLS of every
object, client blocks): chunks definitely lost, indirectly lost (only reachable from lost chunks),
reachable only through interior pointers, grouped by allocation site with chunks and bytes, largest
first (--all: still reachable ones too).  The scan is the one HEAPINDEX_LEAKS=exit runs."""
    options = ["--all"]

    def __init__(self):
        super().__init__("leaks")

    def invoke(self, arg, from_tty):
        as_json, opts, _ = split_options(arg, "leaks", self.options, [])
        a = run_helper(["leaks"])
        for g in a["groups"]:
            g["site_name"] = describe_site(g["site"])
        tot = a["totals"]
        if publish(a, as_json, {"heap_definitely_lost": tot["definite"]["bytes"], "heap_indirectly_lost": tot["indirect"]["bytes"],
                                "heap_possibly_lost": tot["interior"]["bytes"], "heap_still_reachable": tot["reachable"]["bytes"]}):
            return
        order = ["definite", "indirect", "interior"] + (["reachable"] if "--all" in opts else [])
        for cls in order:
            groups = sorted((g for g in a["groups"] if g["class"] == cls), key=lambda g: (-g["bytes"], -g["chunks"]))
            for g in groups:
                gdb.write("%s in %s %s, allocated at %s\n" % (plural(g["bytes"], "byte"), plural(g["chunks"], "chunk"),
                                                              CLASS_NAMES[cls], g["site_name"]))
        gdb.write("leaks: %s\n" % ", ".join("%s in %s %s" % (plural(tot[c]["bytes"], "byte"), plural(tot[c]["chunks"], "chunk"),
                                                          CLASS_NAMES[c]) for c in ["definite", "indirect", "interior", "reachable"]))
        gdb.write("leaks: scanned %s of roots (%s) and %s of chunks in %.1f ms\n" % (
            plural(a["root_bytes"], "byte"), plural(a["threads"], "thread"), plural(a["scanned_bytes"], "byte"), a["milliseconds"]))


# Loaded twice (auto-loaded and by -x, or by two objfiles): the second time registers nothing.
if not getattr(gdb, "_heapindex_commands", False):
    gdb._heapindex_commands = True
    for command in (HeapCommand, HeapInfo, HeapList, HeapSites, HeapStats, HeapCheck, HeapWhoPointsAt, HeapLeaks):
        command()
