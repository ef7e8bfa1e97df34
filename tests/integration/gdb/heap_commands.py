#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# The gdb `heap` commands on known_heap.c's known heap, with exact expected answers: on a live process
# stopped at a breakpoint, on one stopped inside the index's own malloc, with threads, on gcore's core
# and on the kernel's core; cross-checked against valgrind memcheck's leak check and HEAPINDEX_LEAKS=exit;
# core file sizes; bad input (an expression that does not evaluate, no index, a truncated core, a
# version mismatch, a corrupted trailer and record).  Every process that may write a core runs under an
# RLIMIT_FSIZE of 256 MiB.
# Usage: heap_commands.py PROGRAM LIBHEAPINDEX GDB_SCRIPT SOURCE [JEMALLOC]
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile

prog, lib, script, source = (os.path.abspath(a) for a in sys.argv[1:5])
jemalloc = sys.argv[5] if len(sys.argv) > 5 and os.path.exists(sys.argv[5]) else None
tmp = tempfile.mkdtemp(prefix="heap-commands-")
failures = []
FSIZE = 256 << 20

# Expected sites, from the source's `site:NAME` markers.
lines = {}
for n, text in enumerate(open(source), 1):
    m = re.search(r"// site:(\w+)", text)
    if m:
        lines[m.group(1)] = n
src = os.path.basename(source)


def site(fn, name):
    return "%s (%s:%d) in %s" % (fn, src, lines[name], prog)


def check(cond, what, detail=""):
    if cond:
        print("ok: " + what)
    else:
        print("FAIL: " + what + ("\n  " + str(detail)[:3000] if detail else ""))
        failures.append(what)


def limits(core=False):
    def apply():
        resource.setrlimit(resource.RLIMIT_FSIZE, (FSIZE, FSIZE))
        resource.setrlimit(resource.RLIMIT_CORE, (FSIZE, FSIZE) if core else (0, 0))
    return apply


def gdb(target, commands, preload=lib, args=()):
    """Run gdb -batch; commands are strings, or ("json", cmd) whose JSON answer is collected."""
    cmd = ["gdb", "-nx", "-batch", "-iex", "set auto-load safe-path /", "-x", script]
    if preload is not None and target.get("core") is None:
        cmd += ["-ex", "set environment LD_PRELOAD=" + preload]
    answers = []
    for i, c in enumerate(commands):
        if isinstance(c, tuple):
            cmd += ["-ex", "echo @@begin %d\\n" % i, "-ex", c[1], "-ex", "echo @@end %d\\n" % i]
        else:
            cmd += ["-ex", c]
    cmd += [prog] + ([target["core"]] if target.get("core") else [])
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp, preexec_fn=limits(),
                       timeout=300)
    out = p.stdout
    result = {}
    for i, c in enumerate(commands):
        if isinstance(c, tuple):
            m = re.search(r"@@begin %d\n(.*?)@@end %d\n" % (i, i), out, re.S)
            body = m.group(1) if m else ""
            starts = [i for i in (body.find("{"), body.find("[")) if i >= 0]
            try:
                result[c[0]] = json.loads(body[min(starts):]) if starts else body
            except ValueError:
                result[c[0]] = body
    return result, out


def jq(name, cmd):
    return (name, cmd)


def leak_groups(a):
    """{(class, site name): (chunks, bytes)}"""
    return {(g["class"], g["site_name"]): (g["chunks"], g["bytes"]) for g in a["groups"] if g["class"] != "reachable"}


def expect_known_leaks(a, where, extra_interior=None):
    if not isinstance(a, dict):
        check(False, where + ": heap leaks answered", a)
        return
    g = leak_groups(a)
    want = {
        ("definite", site("make_definite", "definite")): (1, 100),
        ("definite", site("make_indirect", "pair")): (1, 16),
        ("indirect", site("make_indirect", "child")): (1, 48),
        ("interior", site("make_interior", "interior")): (1, 200),
    }
    for k, v in (extra_interior or {}).items():
        want[("interior", k)] = v
    check(g == want, where + ": heap leaks groups are exactly the known leaks", json.dumps(sorted(g.items())))
    t = a["totals"]
    check(t["definite"] == {"chunks": 2, "bytes": 116} and t["indirect"] == {"chunks": 1, "bytes": 48},
          where + ": definitely lost 116 bytes in 2, indirectly lost 48 bytes in 1", t)


live = {"args": None}
# ---- a live process stopped at a breakpoint, with the known heap ----------------------------------------
cmds = [
    "break stop_here", "run break",
    jq("leaks", "heap leaks --json"),
    jq("name", "heap info list->name --json"),
    jq("name3", "heap info &list->name[3] --json"),
    jq("interior", "heap info interior --json"),
    jq("global", "heap info &list --json"),
    jq("who_list", "heap who-points-at list --json"),
    jq("who_next", "heap who-points-at list->next --json"),
    jq("sites", "heap sites --json"),
    jq("check", "heap check --json"),
    jq("stats", "heap stats --json"),
    jq("largest", "heap list --largest 2 --json"),
    "python import json",
    "heap info list --json",
    "python gdb.execute('heap list --json --site %d' % json.loads(gdb.convenience_variable('heap_json').string())['chunk']['site'], to_string=True)",
    jq("bysite", "python print(gdb.convenience_variable('heap_json').string())"),
    jq("pool", "heap info pool+130 --json"),
    jq("dangling", "heap info dangling+8 --json"),
    jq("complete_sub", "complete heap wh"),
    jq("complete_opt", "complete heap list --la"),
    jq("vars", "python print(json.dumps([int(gdb.parse_and_eval(e)) for e in "
               "['(long)list', '(long)list->name', '(long)list->next', '(long)interior - 40', '(long)&list', '(long)pool']]))"),
    jq("status", "python print(json.dumps({'status': open('/proc/%d/status' % gdb.selected_inferior().pid).read()}))"),
    "gcore " + os.path.join(tmp, "gcore.core"),
    jq("bad_expr", "heap info no_such_variable"),
    jq("bad_option", "heap list --colour red"),
]
# A clobbered trailer (a byte of the 100-byte chunk's), then a record caught mid-update (the 200-byte
# chunk's word made "dead" while its start mark stays): reported, and the commands go on.
corrupt = [
    "heap leaks --json",
    "python d = [c for c in json.loads(gdb.convenience_variable('heap_json').string())['lost'] if c['size'] == 100][0]",
    "python gdb.execute('heap info %d --json' % d['base'], to_string=True)",
    "python c = json.loads(gdb.convenience_variable('heap_json').string())['chunk']",
    "python gdb.execute('set var *(unsigned char *)%d ^= 0x5a' % (c['base'] + c['usable'] + 2))",
    jq("check_trailer", "heap check --json"),
    "python gdb.execute('heap info interior --json', to_string=True)",
    "python r = json.loads(gdb.convenience_variable('heap_json').string())['chunk']",
    "python gdb.execute('set var *(unsigned int *)%d |= 3' % r['record'])",
    jq("check_record", "heap check --json"),
    jq("list_record", "heap list --json"),
    jq("info_record", "heap info interior --json"),
    jq("leaks_after", "heap leaks --json"),
]
res, out = gdb(live, cmds + corrupt)
if not isinstance(res.get("vars"), (dict, list)):
    check(False, "live: the session ran", out[-3000:])
    shutil.rmtree(tmp, ignore_errors=True)
    sys.exit(1)
v_list, v_name, v_next, v_interior, v_global, v_pool = res["vars"]
expect_known_leaks(res["leaks"], "live")
check(res["leaks"]["totals"]["reachable"] == {"chunks": 7, "bytes": 4161},
      "live: still reachable 4161 bytes in 7 (3 nodes, 3 names, the pool)", res["leaks"]["totals"])
a = res["name"]
check(a.get("found") == "chunk" and a["chunk"]["base"] == v_name and a["chunk"]["size"] == 6 and a["offset"] == 0
      and a["trailer"] == "intact" and "strdup" in a["chunk"]["site_name"],
      "live: heap info list->name: the 6-byte strdup'd chunk, trailer intact", a)
a = res["name3"]
check(a.get("found") == "chunk" and a["chunk"]["base"] == v_name and a["offset"] == 3,
      "live: heap info &list->name[3]: 3 bytes into it", a)
a = res["interior"]
check(a.get("found") == "chunk" and a["chunk"]["base"] == v_interior and a["chunk"]["size"] == 200 and a["offset"] == 40
      and a["chunk"]["site_name"] == site("make_interior", "interior"), "live: heap info interior: 40 bytes into 200, site", a)
a = res["global"]
check(a.get("found") is None and a["mapping"]["file"] == prog and a.get("symbol", "").startswith("list in section .bss"),
      "live: heap info &list: no chunk, the program's .bss, symbol list", a)
a = res["who_list"]
hits = [(h["where"], h["at"], h["interior"]) for h in a["hits"]]
check(("segment", v_global, False) in hits and a["target"]["chunk"]["base"] == v_list and
      any(h.get("symbol", "").startswith("list in section .bss") for h in a["hits"]),
      "live: who-points-at list: the global `list`", a)
a = res["who_next"]
check([(h["where"], h["at"]) for h in a["hits"]] == [("chunk", v_list)] and
      a["hits"][0]["chunk"]["site_name"] == site("make_list", "node"),
      "live: who-points-at list->next: exactly the first node, with its site", a)
a = res["sites"]
sites = {(s["site_name"], s["client"]): (s["bytes"], s["chunks"]) for s in a["sites"]}
check(sites.get((site("make_pool", "pool"), False)) == (4096, 1) and sites.get((site("make_list", "node"), False)) == (48, 3)
      and sites.get((site("make_definite", "definite"), False)) == (100, 1)
      and sum(b for (n, c), (b, k) in sites.items() if c) == 192, "live: heap sites: pool, nodes, leaks, 192 bytes of client blocks", sites)
# The same numbers as HEAPINDEX_REPORT at exit (nothing is allocated or freed after stop_here); the names
# too, but for sites in inlined code (the exit report names the outermost call, gdb the innermost line).
p = subprocess.run([prog, "exit"], env=dict(os.environ, LD_PRELOAD=lib, HEAPINDEX_REPORT="stderr", HEAPINDEX_REPORT_TOP="0"),
                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
report = sorted((int(b), int(c), "[client block]" in rest) for b, c, rest in
                re.findall(r"^heapindex\[\d+\]: +(\d+) +(\d+)  (.*)$", p.stdout, re.M))
check(report == sorted((b, k, c) for (n, c), (b, k) in sites.items()),
      "live: heap sites gives HEAPINDEX_REPORT's bytes and chunks per site", (report, sites))
check(res["check"]["problems"] == [] and res["check"]["chunks"] == 11 and res["check"]["client_blocks"] == 3,
      "live: heap check sound, 11 chunks, 3 client blocks", res["check"])
st = res["stats"]
check(st["live_chunks"] == 11 and st["live_bytes"] == 4525 and st["client_blocks"] == 3 and st["total_frees"] == 1,
      "live: heap stats 11 chunks, 4525 bytes, 3 client blocks", st)
check([c["size"] for c in res["largest"]["chunks"]] == [4096, 200], "live: heap list --largest 2", res["largest"])
check(sorted(c["size"] for c in res["bysite"]["chunks"]) == [16, 16, 16], "live: heap list --site (the first node's site): the 3 nodes",
      res["bysite"])
a = res["pool"]
check(a.get("found") == "client block" and a["offset"] == 2 and a["chunk"]["base"] == v_pool + 128 and
      a["in_chunk"]["base"] == v_pool, "live: heap info pool+130: 2 bytes into the second client block, inside the pool", a)
a = res["dangling"]
check(a.get("found") is None and a.get("freed", {}).get("size") == 72 and
      a["freed"].get("site_name") == site("make_dangling", "dangling") and
      a["freed"].get("free_site_name") == site("make_dangling", "dangling_free"),
      "live: heap info dangling+8: a freed chunk of 72 bytes, allocated and freed in make_dangling", a)
check(str(res["complete_sub"]).strip() == "heap who-points-at", "completion: heap wh -> heap who-points-at", res["complete_sub"])
check(str(res["complete_opt"]).strip() == "heap list --largest", "completion: heap list --la -> --largest", res["complete_opt"])
check("cannot evaluate 'no_such_variable'" in str(res["bad_expr"]), "bad input: an expression that does not evaluate", res["bad_expr"])
check("unknown option --colour" in str(res["bad_option"]), "bad input: an unknown option", res["bad_option"])
a = res["check_trailer"]
check(any("overwritten" in p and site("make_definite", "definite") in p for p in a["problems"]) and a["chunks"] == 11,
      "corrupt trailer: heap check names the chunk and its site, and checks the rest", a)
a = res["check_record"]
check(any("dead" in p and "being freed" in p for p in a["problems"]), "corrupt record: heap check reports a chunk mid-update", a)
check(len(res["list_record"]["chunks"]) == 13 and len(res["list_record"]["in_flux"]) == 1,
      "corrupt record: heap list goes on without it and names it mid-update", res["list_record"])
a = res["info_record"]
check(a.get("found") is None and a.get("freed", {}).get("size") == 200,
      "corrupt record: heap info reports no live chunk, a freed one of 200 bytes", a)

# ---- core files: gcore's, truncated, another version; sizes ---------------------------------------------
rss_kb = int(re.search(r"VmRSS:\s+(\d+)", res["status"]["status"]).group(1))
gcore = os.path.join(tmp, "gcore.core")
size = os.path.getsize(gcore) if os.path.exists(gcore) else -1
used = os.stat(gcore).st_blocks * 512 if size >= 0 else -1
# gcore writes every writable mapping whole, untouched pages included: the index's first record segment
# and first block of leaves (4 MiB each) count in full, resident or not (issue 13 keeps their first 2 MiB
# on small pages, so a small process's resident memory no longer includes them).
check(0 < size <= rss_kb * 1024 + (12 << 20), "gcore: %d bytes (%d on disk) for %d kB resident: within 12 MiB" % (size, used, rss_kb))
core = {"core": gcore}
res, out = gdb(core, [jq("leaks", "heap leaks --json"), jq("interior", "heap info interior --json"),
                      jq("who", "heap who-points-at list --json"), jq("check", "heap check --json"),
                      jq("stats", "heap stats --json")])
expect_known_leaks(res.get("leaks"), "gcore")
check(isinstance(res.get("interior"), dict) and res["interior"].get("offset") == 40, "gcore: heap info interior", res.get("interior"))
check(isinstance(res.get("who"), dict) and any(h["where"] == "segment" for h in res["who"]["hits"]),
      "gcore: who-points-at list finds the global", res.get("who"))
check(isinstance(res.get("check"), dict) and res["check"]["problems"] == [], "gcore: heap check sound", res.get("check"))

with open(gcore, "rb") as f:
    data = f.read()
with open(os.path.join(tmp, "truncated.core"), "wb") as f:
    f.write(data[:len(data) // 3])
res, out = gdb({"core": os.path.join(tmp, "truncated.core")}, [jq("leaks", "heap leaks")])
check("truncated" in out and "Traceback" not in out, "bad input: a truncated core is named as such", out[-1500:])
at = data.find(b"mallochooks-hix\0")
patched = bytearray(data)
patched[at + 16:at + 20] = (99).to_bytes(4, "little")
with open(os.path.join(tmp, "version.core"), "wb") as f:
    f.write(patched)
res, out = gdb({"core": os.path.join(tmp, "version.core")}, [jq("leaks", "heap leaks")])
check(at > 0 and "version mismatch" in out and "version 99" in out, "bad input: a version mismatch is named", out[-1500:])
del data, patched

# ---- the kernel's core, from a crashing program -----------------------------------------------------------
pattern = open("/proc/sys/kernel/core_pattern").read().strip()
if pattern.startswith("|"):
    print("skip: kernel core: core_pattern pipes cores to %s" % pattern.split()[0])
else:
    kdir = os.path.join(tmp, "kernel")
    os.mkdir(kdir)
    subprocess.run([prog, "crash"], cwd=kdir, env=dict(os.environ, LD_PRELOAD=lib), preexec_fn=limits(core=True),
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cores = [os.path.join(kdir, f) for f in os.listdir(kdir) if f.startswith("core")]
    check(len(cores) == 1, "kernel core written (core_pattern %s)" % pattern, os.listdir(kdir))
    if cores:
        size = os.path.getsize(cores[0])
        check(size <= rss_kb * 1024 + (8 << 20), "kernel core: %d bytes (%d on disk), resident ~%d kB" % (
            size, os.stat(cores[0]).st_blocks * 512, rss_kb))
        res, out = gdb({"core": cores[0]}, [jq("leaks", "heap leaks --json"), jq("check", "heap check --json")])
        expect_known_leaks(res.get("leaks"), "kernel core")
        check(isinstance(res.get("check"), dict) and res["check"]["problems"] == [], "kernel core: heap check sound")

# ---- threads: chunks held only on other threads' stacks ----------------------------------------------------
thr = [
    "break stop_here", "run threads",
    jq("leaks", "heap leaks --json"),
    "heap list --json",
    "python h = [c for c in json.loads(gdb.convenience_variable('heap_json').string())['chunks'] if 'holder' in c['site_name']]",
    "python gdb.execute('heap who-points-at %d --json' % h[0]['base'], to_string=True)",
    jq("who", "python print(gdb.convenience_variable('heap_json').string())"),
    jq("holders", "python print(json.dumps({'n': len(h)}))"),
]
res, out = gdb(live, ["python import json"] + thr)
a = res.get("leaks")
if isinstance(a, dict):
    reach = {g["site_name"]: (g["chunks"], g["bytes"]) for g in a["groups"] if g["class"] == "reachable"}
    check(reach.get(site("holder", "holder")) == (3, 192) and a["threads"] == 4,
          "threads: the 3 chunks held on their threads' stacks are reachable (4 threads' registers and stacks)", reach)
    # glibc's thread control blocks point at dtv[1], one word into each thread's DTV (allocated by ld.so's
    # calloc): interior pointers, memcheck's "possibly lost" as well.
    dtv = {g["site_name"]: (g["chunks"], g["bytes"]) for g in a["groups"] if g["class"] == "interior" and "ld-linux" in g["site_name"]}
    expect_known_leaks(a, "threads", dtv)
else:
    check(False, "threads: heap leaks answered", out[-3000:])
a = res.get("who")
check(isinstance(a, dict) and any(h["where"] == "stack" and "holder" in (h.get("frame") or "") for h in a["hits"]),
      "threads: who-points-at a holder's chunk: its thread's stack, frame holder", a if isinstance(a, dict) else out[-2000:])

# ---- stopped inside the index's own malloc -----------------------------------------------------------------
ins = ["break stop_here", "run inside-malloc", "break malloc", "continue", "delete",
       # up to 25 instructions into the index's malloc; where an optimised build has already reached the
       # allocator behind it by then, return from that into the index (chunk allocated, not yet indexed)
       "python exec(\"for _ in range(25):\\n gdb.execute('stepi', to_string=True)\\n"
       " if 'libheapindex' not in (gdb.solib_name(int(gdb.parse_and_eval('$pc'))) or ''):\\n"
       "  gdb.execute('finish', to_string=True); break\")",
       jq("where", "python print(json.dumps({'so': gdb.solib_name(int(gdb.parse_and_eval('$pc'))) or ''}))"),
       jq("leaks", "heap leaks --json"), jq("check", "heap check --json"), jq("interior", "heap info interior --json")]
res, out = gdb(live, ins)
check(isinstance(res.get("where"), dict) and "libheapindex" in res["where"]["so"], "inside malloc: stopped in libheapindex.so",
      res.get("where"))
expect_known_leaks(res.get("leaks"), "inside malloc")
check(isinstance(res.get("interior"), dict) and res["interior"].get("offset") == 40, "inside malloc: heap info", res.get("interior"))
check(isinstance(res.get("check"), dict), "inside malloc: heap check answers", res.get("check"))

# ---- without the index ------------------------------------------------------------------------------------
res, out = gdb(live, ["break stop_here", "run break", jq("leaks", "heap leaks")], preload="")
check("the heap index is not loaded" in out, "bad input: a process without the index", out[-1500:])

# ---- the index over jemalloc --------------------------------------------------------------------------------
if jemalloc:
    res, out = gdb(live, ["break stop_here", "run break", jq("leaks", "heap leaks --json")], preload=lib + " " + jemalloc)
    expect_known_leaks(res.get("leaks"), "jemalloc")
else:
    print("skip: jemalloc not installed")

# ---- the same leaks from valgrind memcheck and from HEAPINDEX_LEAKS=exit ---------------------------------------
if shutil.which("valgrind"):
    p = subprocess.run(["valgrind", "--leak-check=full", "--show-leak-kinds=all", prog, "exit"], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
    vg = {k: (int(b.replace(",", "")), int(n.replace(",", ""))) for k, b, n in
          re.findall(r"(definitely lost|indirectly lost|possibly lost|still reachable): ([\d,]+) bytes in ([\d,]+) blocks", p.stdout)}
    check(vg.get("definitely lost") == (116, 2) and vg.get("indirectly lost") == (48, 1) and vg.get("possibly lost") == (200, 1)
          and vg.get("still reachable") == (4161, 7), "memcheck: the same totals as heap leaks", vg)
    # memcheck names the file as the debug information does (clang: with its directory).
    records = [(fn, os.path.basename(where)) for fn, where in
               re.findall(r"are definitely lost in loss record.*?\n(?:.*\n)*?.*?by 0x[0-9A-F]+: (\w+) \((\S+)\)", p.stdout)]
    check(sorted(records) == sorted([("make_definite", "%s:%d" % (src, lines["definite"])), ("make_indirect", "%s:%d" % (src, lines["pair"]))]),
          "memcheck: the same definitely lost sites", records)
else:
    print("skip: valgrind not installed")
p = subprocess.run([prog, "exit"], env=dict(os.environ, LD_PRELOAD=lib, HEAPINDEX_LEAKS="exit", HEAPINDEX_LEAKS_EXITCODE="23",
                                             HEAPINDEX_SYMBOLIZE="libdw"), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
check(p.returncode == 23, "HEAPINDEX_LEAKS_EXITCODE=23: a leaky program exits 23", p.returncode)
want = [r"116 bytes in 2 chunks definitely lost, 48 bytes in 1 indirectly lost, 200 bytes in 1 reachable only through "
        r"interior pointers, 4161 bytes in 7 still reachable",
        r"100 +1  definitely lost +make_definite \(%s:%d\)" % (src, lines["definite"]),
        r"16 +1  definitely lost +make_indirect \(%s:%d\)" % (src, lines["pair"]),
        r"48 +1  indirectly lost +make_indirect \(%s:%d\)" % (src, lines["child"]),
        r"200 +1  interior only +make_interior \(%s:%d\)" % (src, lines["interior"])]
for w in want:
    check(re.search(w, p.stdout) is not None, "HEAPINDEX_LEAKS=exit: " + w, p.stdout)
p = subprocess.run([prog, "exit-threads"], env=dict(os.environ, LD_PRELOAD=lib, HEAPINDEX_LEAKS="exit", HEAPINDEX_LEAKS_EXITCODE="23"),
                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
check(p.returncode == 23 and "116 bytes in 2 chunks definitely lost, 48 bytes in 1 indirectly lost" in p.stdout and
      "holder" not in p.stdout and "some threads were running" not in p.stdout,
      "HEAPINDEX_LEAKS=exit with 3 threads blocked at exit: the chunks on their stacks are not leaks", p.stdout)
# With allocation stacks (HEAPINDEX_STACKS): each leak with its full stack, the same classes.
p = subprocess.run([prog, "exit"], env=dict(os.environ, LD_PRELOAD=lib, HEAPINDEX_LEAKS="exit", HEAPINDEX_LEAKS_EXITCODE="23",
                                             HEAPINDEX_STACKS="16"), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
check(p.returncode == 23 and all(re.search(w, p.stdout) for w in want) and
      re.search(r"definitely lost +make_definite \(%s:%d\).*\n.*#0 +make_definite \(%s:%d\).*\n.*#1 +main \(%s:\d+\)"
                % (src, lines["definite"], src, lines["definite"], src), p.stdout),
      "HEAPINDEX_LEAKS=exit with HEAPINDEX_STACKS: the leak's full stack (make_definite, main, ...), exit status 23", p.stdout)
p = subprocess.run([prog, "exit-running"], env=dict(os.environ, LD_PRELOAD=lib, HEAPINDEX_LEAKS="exit"),
                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60)
# Its stack and control block are not read, so its DTV (288 bytes, ld.so's calloc) is reported lost too.
check(all(re.search(w, p.stdout) for w in want[1:]) and re.search(r"288 +1  definitely lost +allocate_dtv", p.stdout) and
      "some threads were running: their stacks are not roots" in p.stdout,
      "HEAPINDEX_LEAKS=exit with a thread running user code: said so, the known leaks exact (chunks read by copy)", p.stdout)
p = subprocess.run([prog, "exit"], env=dict(os.environ, LD_PRELOAD=lib, HEAPINDEX_LEAKS="exit"), stdout=subprocess.PIPE,
                   stderr=subprocess.STDOUT, text=True)
check(p.returncode == 0, "HEAPINDEX_LEAKS=exit without an exit code: the status is the program's", p.returncode)
p = subprocess.run(["/bin/true"], env=dict(os.environ, LD_PRELOAD=lib, HEAPINDEX_LEAKS="exit", HEAPINDEX_LEAKS_EXITCODE="23"),
                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
check(p.returncode == 0 and "0 bytes in 0 chunks definitely lost" in p.stdout, "HEAPINDEX_LEAKS=exit: a program without leaks exits 0",
      p.stdout)

shutil.rmtree(tmp, ignore_errors=True)
print("%d failed" % len(failures))
sys.exit(1 if failures else 0)
