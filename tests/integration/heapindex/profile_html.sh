#!/bin/bash
# SPDX-License-Identifier: MIT
# The HTML heap profile in a real browser (Debian's chromium, headless): the page of profile_prog.c's run
# renders with no script error, shows the totals the program makes (208 allocations, 100 temporary,
# 10000 bytes live at exit; with HEAPINDEX_LEAKS=exit, the 4000 bytes no pointer reaches as the leak), draws the flame graph down to the allocating function and the series with
# its peak, and a screenshot of it is taken (kept in the build directory: profile_html.png).
# Usage: profile_html.sh PROFILE_PROG LIBHEAPINDEX
set -u
prog=$(realpath "$1") lib=$(realpath "$2")
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
status=0
fail() { echo "profile_html: $*"; status=1; }
browser=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$browser" ]; then
  echo "profile_html: chromium is not installed (./dev installs it)"; exit 77
fi
(cd "$tmp" && env -u HEAPINDEX_REPORT -u HEAPINDEX_STACKS_SAMPLE HEAPINDEX_STACKS=32 HEAPINDEX_REPORT=report.html \
  LD_PRELOAD="$lib" "$prog" >"$tmp/out" 2>"$tmp/err") || fail "the program failed: $(cat "$tmp/err")"
[ -s "$tmp/report.html" ] || { echo "profile_html: no report.html"; exit 1; }
grep -q '<script src=\|<link [^>]*href="http\|https://' "$tmp/report.html" &&
  grep -q '<script src=\|<link [^>]*href="http' "$tmp/report.html" && fail "the page loads something from elsewhere"
# Headless chromium as root needs --no-sandbox; its own profile directory keeps it off $HOME.
page=report.html
chrome() { timeout 120 "$browser" --headless --no-sandbox --disable-gpu --user-data-dir="$tmp/chrome" \
  --virtual-time-budget=5000 "$@" "file://$tmp/$page" 2>>"$tmp/chrome.err"; }
chrome --dump-dom >"$tmp/dom.html" || fail "chromium failed: $(tail -5 "$tmp/chrome.err")"
grep -q 'data-rendered="yes"' "$tmp/dom.html" || fail "the page's script did not finish"
grep -q '<div id="errors"></div>' "$tmp/dom.html" || fail "script errors: $(grep -o '<div id="errors">[^<]*' "$tmp/dom.html")"
grep -q 'id="total-allocations" data-count="208"' "$tmp/dom.html" || fail "total allocations are not 208"
grep -q 'id="total-temporary" data-count="100"' "$tmp/dom.html" || fail "temporary allocations are not 100"
grep -q 'id="total-live" data-bytes="10000"' "$tmp/dom.html" || fail "live at exit is not 10000 bytes"
# The flame graph (d3-flame-graph draws a <g> with a <title> per frame) reaches the allocating function.
grep -q '<title>leaf_alloc: 9.77 KiB</title>' "$tmp/dom.html" || fail "the flame graph has no leaf_alloc frame of 9.77 KiB"
grep -q '<title>keep_middle: 9.77 KiB</title>' "$tmp/dom.html" || fail "the flame graph has no keep_middle frame"
grep -q '<path class="line" d="M' "$tmp/dom.html" || fail "no memory-over-time line"
grep -q 'id="peak-marker"' "$tmp/dom.html" || fail "no peak marker"
grep -q 'live at exit' "$tmp/dom.html" && grep -q 'keep_middle' "$tmp/dom.html" || fail "no leaks section"
# Leaks by reachability: keep's 10000 bytes stay reachable (live at exit, not leaked); lose_outer's 4000
# bytes are the leak, with its whole stack.
(cd "$tmp" && env -u HEAPINDEX_REPORT -u HEAPINDEX_STACKS_SAMPLE -u HEAPINDEX_LEAKS_EXITCODE HEAPINDEX_STACKS=32 HEAPINDEX_LEAKS=exit \
  HEAPINDEX_LOG="$tmp/leaks.log" HEAPINDEX_REPORT=leak.html LD_PRELOAD="$lib" "$prog" leak >"$tmp/out" 2>"$tmp/err") ||
  fail "the leaky program failed: $(cat "$tmp/err")"
page=leak.html
chrome --dump-dom >"$tmp/leakdom.html" || fail "chromium failed on the leak page: $(tail -5 "$tmp/chrome.err")"
grep -q 'data-rendered="yes"' "$tmp/leakdom.html" || fail "leak page: the script did not finish"
grep -q '<div id="errors"></div>' "$tmp/leakdom.html" || fail "leak page: script errors"
grep -q 'id="total-leaked" data-bytes="4000" data-chunks="1"' "$tmp/leakdom.html" || fail "leak page: the leak total is not 4000 bytes in 1 chunk"
grep -q 'id="total-live" data-bytes="14000"' "$tmp/leakdom.html" || fail "leak page: live at exit is not 14000 bytes"
leakrows=$(grep -o '<tr class="leak">.*</tr>' "$tmp/leakdom.html" | sed 's|</tr>|&\n|g')
echo "$leakrows" | grep -q 'lose_outer.*definitely lost</td><td data-bytes="4000">' || fail "leak page: no row for lose_outer's 4000 bytes: $leakrows"
echo "$leakrows" | grep -q 'keep_outer' && fail "leak page: keep's reachable chunks listed as leaks"
echo "$leakrows" | grep -q '<li>main (profile_prog.c' || fail "leak page: the leak's stack does not reach main"
page=report.html
# The screenshot: a PNG of the page, kept for a person to look at.
shot=${MESON_BUILD_ROOT:-$tmp}/profile_html.png
chrome --window-size=1280,1800 --screenshot="$shot" >/dev/null || fail "no screenshot"
if [ -s "$shot" ] && [ "$(head -c 8 "$shot" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ]; then
  [ "$(stat -c %s "$shot")" -gt 20000 ] || fail "the screenshot is nearly empty ($(stat -c %s "$shot") bytes)"
else
  fail "the screenshot is not a PNG"
fi
exit $status
