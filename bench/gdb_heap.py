#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# The heap index from gdb next to valgrind memcheck and LeakSanitizer, on bench/heap_shape.c's heap of
# 1e5 and 1e6 live chunks (BENCH_GDB_SIZES to change): the time of `heap info`, `heap sites`,
# `heap who-points-at` and `heap leaks` on the live process (stopped at a breakpoint) and on its gcore
# core; memcheck's time to reach the same point and its monitor commands `who_points_at` and
# `leak_check full` there (through vgdb); the leak scan at exit (HEAPINDEX_LEAKS=exit, its own timing)
# against LeakSanitizer's (a run with detect_leaks=1 minus one with detect_leaks=0).  Each figure is
# one run (the machine is shared: repeat for medians).
# Usage: gdb_heap.py HEAP_SHAPE HEAP_SHAPE_LSAN LIBHEAPINDEX GDB_SCRIPT
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

prog, prog_lsan, lib, script = (os.path.abspath(a) for a in sys.argv[1:5])
sizes = [int(float(s)) for s in os.environ.get("BENCH_GDB_SIZES", "1e5 1e6").split()]
tmp = tempfile.mkdtemp(prefix="bench-gdb-")
TIMER = ("python\nimport time\nclass Timed(gdb.Command):\n  def __init__(self): super().__init__('timed', gdb.COMMAND_USER)\n"
         "  def invoke(self, arg, tty):\n    t = time.time(); out = gdb.execute(arg, to_string=True)\n"
         "    gdb.write('@@time %.3f %s\\n' % (time.time() - t, arg))\n    gdb.write(out[-400:] + '\\n')\nTimed()\nend\n")
timer_file = os.path.join(tmp, "timer.gdb")
open(timer_file, "w").write(TIMER)


def gdb(cmds, target):
    cmd = ["gdb", "-nx", "-batch", "-iex", "set auto-load safe-path /", "-x", script, "-x", timer_file]
    for c in cmds:
        cmd += ["-ex", c]
    p = subprocess.run(cmd + target, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp)
    return {m.group(2): float(m.group(1)) for m in re.finditer(r"@@time ([\d.]+) (.*)", p.stdout)}, p.stdout


def fmt(t):
    return "%.2f s" % t if t is not None else "-"


rows = []
for n in sizes:
    mid = "chunks[%d]" % (n // 2 + 1)
    core = os.path.join(tmp, "heap.core")
    q = ["timed heap info %s" % mid, "timed heap sites", "timed heap who-points-at %s" % mid, "timed heap leaks"]
    live, out = gdb(["set environment LD_PRELOAD=" + lib, "break stop_here", "timed run %d" % n] + q +
                    ["python import os; print('@@rss', open('/proc/%d/status' % gdb.selected_inferior().pid).read().split('VmRSS:')[1].split()[0])",
                     "timed gcore " + core], [prog])
    rss = re.search(r"@@rss (\d+)", out)
    core_size = os.path.getsize(core) if os.path.exists(core) else 0
    oncore, _ = gdb(q, [prog, core])
    if os.path.exists(core):
        os.unlink(core)
    # memcheck, through vgdb, at the same breakpoint.
    prefix = os.path.join(tmp, "vgdb")
    vg = subprocess.Popen(["valgrind", "--vgdb=yes", "--vgdb-error=0", "--vgdb-prefix=" + prefix, prog, str(n)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp)
    time.sleep(2)
    mc, mcout = gdb(["target remote | vgdb --vgdb-prefix=%s --pid=%d" % (prefix, vg.pid), "break stop_here", "timed continue",
                     "python gdb.execute('timed monitor who_points_at 0x%%x' %% int(gdb.parse_and_eval('(long)%s')))" % mid,
                     "timed monitor leak_check full", "kill"], [prog])
    vg.wait()
    wp = [v for k, v in mc.items() if k.startswith("monitor who_points_at 0x")]
    # The scan at exit, and LeakSanitizer's.
    p = subprocess.run([prog, str(n)], env=dict(os.environ, LD_PRELOAD=lib, HEAPINDEX_LEAKS="exit", HEAPINDEX_SYMBOLIZE="off"),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    m = re.search(r"scanned (\d+) bytes of roots and (\d+) bytes of chunks in ([\d.]+) ms", p.stdout)
    scan_ms, scanned = (float(m.group(3)), int(m.group(2))) if m else (None, 0)

    def lsan(detect):
        t = time.time()
        subprocess.run([prog_lsan, str(n)], env=dict(os.environ, LSAN_OPTIONS="detect_leaks=%d:exitcode=0" % detect),
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return time.time() - t
    lsan_ms = (lsan(1) - lsan(0)) * 1e3
    rows.append((n, live, oncore, mc, wp[0] if wp else None, rss.group(1) if rss else "?", core_size, scan_ms, scanned, lsan_ms))

print("\nThe heap index from gdb (one run each; live = stopped at a breakpoint, core = gcore of it)")
print("| live chunks | RSS | gcore size | run to breakpoint: index / memcheck | heap info live / core | heap sites live / core | "
      "who-points-at live / core / memcheck | heap leaks live / core / memcheck leak_check full |")
print("|---|---|---|---|---|---|---|---|")
for n, live, core, mc, wp, rss, cs, scan_ms, scanned, lsan_ms in rows:
    g = lambda d, k: next((v for kk, v in d.items() if kk.startswith(k)), None)
    print("| %.0e | %s MB | %d MB | %s / %s | %s / %s | %s / %s | %s / %s / %s | %s / %s / %s |" % (
        n, int(rss) // 1024 if rss != "?" else "?", cs >> 20, fmt(g(live, "run")), fmt(g(mc, "continue")),
        fmt(g(live, "heap info")), fmt(g(core, "heap info")), fmt(g(live, "heap sites")), fmt(g(core, "heap sites")),
        fmt(g(live, "heap who")), fmt(g(core, "heap who")), fmt(wp), fmt(g(live, "heap leaks")), fmt(g(core, "heap leaks")),
        fmt(g(mc, "monitor leak_check"))))
print("\nLeak scan at exit (HEAPINDEX_LEAKS=exit, timed by itself) and LeakSanitizer (detect_leaks=1 minus =0)")
print("| live chunks | chunk bytes scanned | heapindex scan | per GB | per 1e6 chunks | LeakSanitizer |")
print("|---|---|---|---|---|---|")
for n, live, core, mc, wp, rss, cs, scan_ms, scanned, lsan_ms in rows:
    if scan_ms is None:
        print("| %.0e | - | (no report) | | | %.0f ms |" % (n, lsan_ms))
        continue
    print("| %.0e | %d MB | %.0f ms | %.0f ms | %.0f ms | %.0f ms |" % (n, scanned >> 20, scan_ms, scan_ms / (scanned / 1e9),
                                                                      scan_ms / (n / 1e6), lsan_ms))
shutil.rmtree(tmp, ignore_errors=True)
