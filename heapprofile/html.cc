// SPDX-License-Identifier: MIT
// The HTML report: one self-contained file (no network): totals, an icicle (top-down flame graph) of live
// bytes at exit, switchable to bytes at the peak and to allocation counts, memory in use over time with
// the peak marked, the largest allocation sites, and the leaks.  The flame graph is d3-flame-graph 5.0.0
// over d3 7.9.2, from npm, vendored in heapprofile/vendor/ and embedded whole (their licences are
// embedded beside them); the chart of memory over time is drawn with d3's own scales, axes and line.
//
// Leaks: when the reachability scan of HEAPINDEX_LEAKS=exit ran, its section of the dump
// (profile_format.h, leak_record) gives the chunks no pointer reaches, per stack and kind: the page lists
// those, each with its full stack, and the flame graph can show them.  Without it, the page lists what
// was still allocated at exit ("live at exit", heaptrack's "leaked") and says so.
#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <sstream>

#include "heapprofile/vendor_files.h"
#include "heapprofile/writers.h"

namespace heapprofile {

namespace {

// A JSON string, safe inside a <script> element ("</" is written "<\/").
std::string js(const std::string &s) {
    std::string o = "\"";
    for (size_t i = 0; i < s.size(); ++i) {
        const char c = s[i];
        switch (c) {
        case '"': o += "\\\""; break;
        case '\\': o += "\\\\"; break;
        case '\n': o += "\\n"; break;
        case '\t': o += "\\t"; break;
        case '<': o += "\\u003c"; break;
        case '>': o += "\\u003e"; break;
        case '&': o += "\\u0026"; break;
        default:
            if (static_cast<unsigned char>(c) < 0x20) {
                char b[8];
                std::snprintf(b, sizeof b, "\\u%04x", c);
                o += b;
            } else {
                o += c;
            }
        }
    }
    return o + "\"";
}

std::string html_escape(const std::string &s) {
    std::string o;
    for (char c : s) {
        switch (c) {
        case '<': o += "&lt;"; break;
        case '>': o += "&gt;"; break;
        case '&': o += "&amp;"; break;
        case '"': o += "&quot;"; break;
        default: o += c;
        }
    }
    return o;
}

struct node {
    std::string name;
    double value = 0;
    std::map<std::string, std::unique_ptr<node>> children;
};

void add_path(node &root, const std::vector<std::string> &path, double v) {
    node *n = &root;
    n->value += v;
    for (const std::string &name : path) {
        auto &c = n->children[name];
        if (!c) c = std::make_unique<node>(), c->name = name;
        n = c.get();
        n->value += v;
    }
}

void to_json(std::ostream &out, const node &n) {
    out << "{\"name\":" << js(n.name) << ",\"value\":" << std::llround(n.value);
    if (!n.children.empty()) {
        out << ",\"children\":[";
        bool first = true;
        for (const auto &[k, c] : n.children) {
            if (!first) out << ',';
            first = false;
            to_json(out, *c);
        }
        out << ']';
    }
    out << '}';
}

std::string describe(const frame &f) {
    std::string s = f.function;
    if (!f.file.empty()) {
        const auto slash = f.file.rfind('/');
        s += " (" + (slash == std::string::npos ? f.file : f.file.substr(slash + 1)) + ":" + std::to_string(f.line) + ")";
    }
    return s;
}

}  // namespace

void write_html(std::ostream &out, const profile &p, symbolizer &sym) {
    const pf::header &h = p.header;
    // Paths of source frames, root first, and the allocation site (the innermost frame outside the
    // allocator) for the tables.
    std::vector<std::vector<std::string>> paths;
    std::vector<std::string> sites;
    for (const stack &s : p.stacks) {
        std::vector<std::string> path;
        for (auto pc = s.pcs.rbegin(); pc != s.pcs.rend(); ++pc) {
            const auto &frames = sym.frames_of(*pc);
            for (auto f = frames.rbegin(); f != frames.rend(); ++f) path.push_back(f->function);
        }
        if (path.empty()) path.push_back("[unknown]");
        paths.push_back(path);
        // The site: the innermost source frame and its two callers ("leaf (f.c:3) < caller < caller's caller").
        std::string site;
        unsigned shown = 0;
        for (uint64_t pc : s.pcs) {
            for (const frame &f : sym.frames_of(pc)) {
                if (shown == 3) break;
                site += shown == 0 ? describe(f) : " < " + f.function;
                ++shown;
            }
            if (shown == 3) break;
        }
        sites.push_back(site.empty() ? std::string("[unknown]") : site);
    }
    node live, peak, allocs, leaked;
    live.name = peak.name = allocs.name = leaked.name = "all";
    double temporaries = 0;
    int64_t stack_live = 0, stack_peak = 0;
    for (size_t i = 0; i < p.stacks.size(); ++i) {
        const stack &s = p.stacks[i];
        if (s.live_bytes > 0) add_path(live, paths[i], double(s.live_bytes)), stack_live += s.live_bytes;
        if (s.peak_bytes > 0) add_path(peak, paths[i], double(s.peak_bytes)), stack_peak += s.peak_bytes;
        if (s.allocations > 0) add_path(allocs, paths[i], s.allocations);
        if (p.has_leak_section && leaked_bytes(p, s) > 0) add_path(leaked, paths[i], leaked_bytes(p, s));
        temporaries += s.temporaries;
    }
    std::vector<size_t> order(p.stacks.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    // Largest sites: by bytes at the peak, then live at exit.
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
        const stack &x = p.stacks[a], &y = p.stacks[b];
        return x.peak_bytes != y.peak_bytes ? x.peak_bytes > y.peak_bytes : x.live_bytes > y.live_bytes;
    });

    std::string command;
    for (const std::string &a : p.command) command += (command.empty() ? "" : " ") + a;
    const double seconds = double(h.end_ns - h.start_ns) / 1e9;

    out << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>heap profile: "
        << html_escape(command.substr(0, 80)) << "</title>\n<style>\n"
        << vendor::d3_flamegraph_css
        << "\nbody{font:14px system-ui,sans-serif;margin:1.5em;color:#222}h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em}"
           "table{border-collapse:collapse}td,th{padding:2px 10px;text-align:right;border-bottom:1px solid #ddd}"
           "td.site,th.site{text-align:left;font-family:monospace}#totals td{text-align:left}"
           ".note{color:#555;max-width:70em}#errors{color:#b00;white-space:pre}.axis text{font-size:11px}"
           "#chart{width:100%}#series path.line{fill:none;stroke:#c33;stroke-width:1.5px}"
           "ol.stack{margin:2px 0 4px;font-size:12px}summary{cursor:pointer}\n</style>\n"
           "<script>window.heapindexErrors=[];window.addEventListener('error',function(e){window.heapindexErrors.push(String(e.message));"
           "var el=document.getElementById('errors');if(el)el.textContent=window.heapindexErrors.join('\\n');});</script>\n"
        << "</head><body>\n<div id=\"errors\"></div>\n<h1>Heap profile of <code>" << html_escape(command) << "</code></h1>\n";
    // The scan's exact totals: leaked (definitely and indirectly lost), and reached through interior pointers only.
    std::string leak_rows;
    if (p.has_leak_section) {
        const uint64_t lb = p.lost_bytes[0] + p.lost_bytes[1];
        const long long lc = std::llround(p.lost_chunks[0] + p.lost_chunks[1]);
        leak_rows = "<tr><th>leaked (no pointer reaches them at exit)</th><td id=\"total-leaked\" data-bytes=\"" + std::to_string(lb) +
                    "\" data-chunks=\"" + std::to_string(lc) + "\">" + format_bytes(double(lb)) + " in " + std::to_string(lc) +
                    " chunks (" + format_bytes(double(p.lost_bytes[0])) + " definitely, " + format_bytes(double(p.lost_bytes[1])) +
                    " indirectly lost)</td></tr>\n<tr><th>reachable only through interior pointers</th><td id=\"total-interior\" data-bytes=\"" +
                    std::to_string(p.lost_bytes[2]) + "\">" + format_bytes(double(p.lost_bytes[2])) + " in " +
                    std::to_string(std::llround(p.lost_chunks[2])) + " chunks</td></tr>\n";
    }
    out << "<table id=\"totals\">\n"
        << "<tr><th>peak heap memory</th><td id=\"total-peak\" data-bytes=\"" << h.peak_snapshot_bytes << "\">"
        << format_bytes(double(h.peak_snapshot_bytes)) << "</td></tr>\n"
        << "<tr><th>live at exit" << (p.has_leak_section ? "" : " (leaked, as heaptrack counts it)") << "</th><td id=\"total-live\" data-bytes=\""
        << h.live_bytes << "\">" << format_bytes(double(h.live_bytes)) << " in " << h.live_chunks << " chunks</td></tr>\n"
        << leak_rows
        << "<tr><th>allocations</th><td id=\"total-allocations\" data-count=\"" << h.total_allocations << "\">"
        << h.total_allocations << " (" << format_bytes(double(h.total_bytes)) << " in all)</td></tr>\n"
        << "<tr><th>temporary allocations</th><td id=\"total-temporary\" data-count=\"" << std::llround(temporaries) << "\">"
        << std::llround(temporaries) << "</td></tr>\n"
        << "<tr><th>run time</th><td>" << seconds << " s, process " << h.pid << "</td></tr>\n"
        << "<tr><th>stacks</th><td>" << p.stacks.size() << " distinct, up to " << h.stack_depth << " frames, "
        << (h.sample_bytes ? "sampled about once per " + format_bytes(double(h.sample_bytes)) + " allocated (counts scaled up)"
                           : std::string("every allocation"))
        << (h.stacks_dropped ? ", " + std::to_string(h.stacks_dropped) + " allocations in the \"depot full\" stack" : std::string())
        << "</td></tr>\n</table>\n";

    out << "<h2>Where the memory is</h2>\n<p><label>Show <select id=\"metric\"><option value=\"live\">bytes live at exit</option>"
           "<option value=\"peak\">bytes live at the peak</option><option value=\"allocs\">allocations</option>"
        << (p.has_leak_section ? "<option value=\"leaked\">bytes leaked</option>" : "") << "</select></label> "
           "<span class=\"note\">An icicle: callers above callees, width is the share. Click a frame to zoom.</span></p>\n"
           "<div id=\"chart\"></div><div id=\"details\" class=\"note\"></div>\n";
    out << "<h2>Memory in use over time</h2>\n<svg id=\"series\" width=\"960\" height=\"260\"></svg>\n"
           "<p class=\"note\">Requested bytes of live chunks, sampled every few milliseconds or megabytes of allocation; the "
           "dot marks the peak, when the stacks' peak figures were taken.</p>\n";
    out << "<h2>Largest allocation sites</h2>\n<table id=\"sites\"><tr><th class=\"site\">allocated at</th><th>at peak</th>"
           "<th>live at exit</th><th>allocations</th><th>temporary</th><th>bytes allocated</th></tr>\n";
    for (size_t k = 0; k < order.size() && k < 25; ++k) {
        const stack &s = p.stacks[order[k]];
        out << "<tr><td class=\"site\">" << html_escape(sites[order[k]]) << "</td><td>" << format_bytes(double(std::max<int64_t>(s.peak_bytes, 0)))
            << "</td><td>" << format_bytes(double(std::max<int64_t>(s.live_bytes, 0))) << "</td><td>" << std::llround(s.allocations)
            << "</td><td>" << std::llround(s.temporaries) << "</td><td>" << format_bytes(double(s.bytes)) << "</td></tr>\n";
    }
    out << "</table>\n";

    out << "<h2>Leaks</h2>\n";
    if (p.has_leak_section) {
        out << "<p class=\"note\" id=\"leak-kind\">Chunks no chain of pointers from a root reaches at exit (the reachability scan "
               "of <code>HEAPINDEX_LEAKS=exit</code>; roots are the loaded objects' writable data, the threads' stacks and TLS, "
               "the client blocks): definitely lost, indirectly lost (reached only from lost chunks), and reached only through "
               "pointers into their middle (possibly lost)"
            << (h.sample_bytes ? "; per stack, estimates scaled up from the sampled chunks" : "")
            << ". Open a row for its whole stack.</p>\n<table id=\"leaks\"><tr><th class=\"site\">allocated at</th><th>kind</th>"
               "<th>bytes</th><th>chunks</th></tr>\n";
        struct row {
            size_t stack;
            unsigned kind;
        };
        std::vector<row> rows;
        for (size_t i = 0; i < p.stacks.size(); ++i)
            for (unsigned k = 0; k < 3; ++k)
                if (p.stacks[i].lost_bytes[k] > 0 || p.stacks[i].lost_chunks[k] > 0) rows.push_back({i, k});
        std::sort(rows.begin(), rows.end(), [&](const row &a, const row &b) {
            return a.kind != b.kind ? a.kind < b.kind : p.stacks[a.stack].lost_bytes[a.kind] > p.stacks[b.stack].lost_bytes[b.kind];
        });
        const char *kinds[] = {"definitely lost", "indirectly lost", "interior pointers only"};
        for (size_t r = 0; r < rows.size() && r < 100; ++r) {
            const stack &s = p.stacks[rows[r].stack];
            out << "<tr class=\"leak\"><td class=\"site\"><details><summary>"
                << html_escape(s.pcs.empty() ? std::string("[allocated before stacks were recorded]") : sites[rows[r].stack])
                << "</summary><ol class=\"stack\">";
            for (uint64_t pc : s.pcs)
                for (const frame &f : sym.frames_of(pc)) out << "<li>" << html_escape(describe(f)) << "</li>";
            out << "</ol></details></td><td>" << kinds[rows[r].kind] << "</td><td data-bytes=\"" << s.lost_bytes[rows[r].kind] << "\">"
                << format_bytes(double(s.lost_bytes[rows[r].kind])) << "</td><td>" << std::llround(s.lost_chunks[rows[r].kind])
                << "</td></tr>\n";
        }
        out << "</table>\n";
        if (rows.size() > 100) out << "<p class=\"note\">" << rows.size() - 100 << " more rows not shown.</p>\n";
    } else {
        out << "<p class=\"note\" id=\"leak-kind\">Live at exit: what was still allocated when the program ended (heaptrack's "
               "\"leaked\"). Run with <code>HEAPINDEX_LEAKS=exit</code> to tell leaks (chunks no pointer reaches) apart from memory "
               "still referenced at exit.</p>\n<table id=\"leaks\"><tr><th class=\"site\">allocated at</th><th>bytes</th><th>chunks</th></tr>\n";
        std::vector<size_t> by_live = order;
        std::sort(by_live.begin(), by_live.end(), [&](size_t a, size_t b) { return p.stacks[a].live_bytes > p.stacks[b].live_bytes; });
        for (size_t k = 0; k < by_live.size() && k < 25 && p.stacks[by_live[k]].live_bytes > 0; ++k) {
            const stack &s = p.stacks[by_live[k]];
            out << "<tr><td class=\"site\">" << html_escape(sites[by_live[k]]) << "</td><td>" << format_bytes(double(s.live_bytes))
                << "</td><td>" << std::llround(s.live_chunks) << "</td></tr>\n";
        }
        out << "</table>\n";
    }

    // Data and code.
    out << "<script id=\"profile-data\" type=\"application/json\">{\"live\":";
    to_json(out, live);
    out << ",\"peak\":";
    to_json(out, peak);
    out << ",\"allocs\":";
    to_json(out, allocs);
    out << ",\"leaked\":";
    to_json(out, leaked);
    out << ",\"series\":[";
    for (size_t i = 0; i < p.series.size(); ++i)
        out << (i ? "," : "") << '[' << double(p.series[i].t_ns - std::min(p.series[i].t_ns, h.start_ns)) / 1e9 << ','
            << p.series[i].live_bytes << ']';
    out << "],\"peak_t\":" << (h.peak_ns > h.start_ns ? double(h.peak_ns - h.start_ns) / 1e9 : 0.0)
        << ",\"peak_bytes\":" << h.peak_snapshot_bytes << "}</script>\n";
    out << "<script>/* d3 7.9.2, ISC licence:\n" << vendor::d3_license << "*/\n" << vendor::d3_js << "\n</script>\n";
    out << "<script>/* d3-flame-graph 5.0.0, Apache-2.0 licence (full text in heapprofile/vendor/) */\n" << vendor::d3_flamegraph_js
        << "\n</script>\n";
    out << R"JS(<script>
(function () {
  var data = JSON.parse(document.getElementById('profile-data').textContent);
  var units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  function bytes(v) { var u = 0; while (v >= 1024 && u < 4) { v /= 1024; u++; } return (u ? v.toFixed(2) : v.toFixed(0)) + ' ' + units[u]; }
  var metric = 'live';
  function fmt(v) { return metric === 'allocs' ? Math.round(v) + ' allocations' : bytes(v); }
  var width = Math.max(600, document.getElementById('chart').clientWidth || 960);
  var chart = flamegraph.default().width(width).cellHeight(18).inverted(true).minFrameSize(2)
      .label(function (d) { return d.data.name + ': ' + fmt(d.value); })
      .setDetailsElement(document.getElementById('details'));
  function show() { d3.select('#chart').datum(JSON.parse(JSON.stringify(data[metric]))).call(chart); }
  show();
  document.getElementById('metric').addEventListener('change', function (e) {
    metric = e.target.value; d3.select('#chart').selectAll('*').remove(); show();
  });
  var svg = d3.select('#series'), m = {top: 10, right: 20, bottom: 30, left: 80};
  var w = +svg.attr('width') - m.left - m.right, h = +svg.attr('height') - m.top - m.bottom;
  var g = svg.append('g').attr('transform', 'translate(' + m.left + ',' + m.top + ')');
  var pts = [[0, 0]].concat(data.series);
  var x = d3.scaleLinear().domain([0, d3.max(pts, function (p) { return p[0]; }) || 1]).range([0, w]);
  var y = d3.scaleLinear().domain([0, Math.max(data.peak_bytes, d3.max(pts, function (p) { return p[1]; })) || 1]).nice().range([h, 0]);
  g.append('g').attr('class', 'axis').attr('transform', 'translate(0,' + h + ')').call(d3.axisBottom(x).ticks(8).tickFormat(function (v) { return v + ' s'; }));
  g.append('g').attr('class', 'axis').call(d3.axisLeft(y).ticks(6).tickFormat(bytes));
  g.append('path').datum(pts).attr('class', 'line').attr('d', d3.line().x(function (p) { return x(p[0]); }).y(function (p) { return y(p[1]); }));
  if (data.peak_bytes > 0) g.append('circle').attr('id', 'peak-marker').attr('r', 4).attr('fill', '#33c')
      .attr('cx', x(Math.min(data.peak_t, x.domain()[1]))).attr('cy', y(data.peak_bytes));
  document.body.setAttribute('data-rendered', 'yes');
})();
</script>
)JS";
    if (sym.timed_out())
        out << "<p class=\"note\" id=\"symbolize-timeout\">Reading debug information took longer than the time allowed "
               "(HEAPINDEX_SYMBOLIZE_TIMEOUT, heapindex-report's --symbolize-timeout): later frames are named from symbol "
               "tables only.</p>\n";
    out << "</body></html>\n";
}

}  // namespace heapprofile
