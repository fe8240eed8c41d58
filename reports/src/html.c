/*
 * index.html: one self-contained page. Everything is inline (SVG, CSS);
 * there is no script and nothing is fetched, so the file opens offline
 * and can be mailed or attached to a bug as it is.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "html.h"

#define MAX_TABLE_ROWS 2000

static const char css[] =
    "body{font:14px/1.4 Helvetica,Arial,sans-serif;margin:0 auto;"
    "max-width:1200px;padding:0 16px 40px;color:#222}\n"
    "h1{font-size:22px;margin:18px 0 4px}h2{font-size:18px;margin-top:32px;"
    "border-bottom:1px solid #ddd}\n"
    "table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ddd;"
    "padding:3px 8px;text-align:left;vertical-align:top}\n"
    "th{background:#f3f3f3}td.n{text-align:right;font-variant-numeric:"
    "tabular-nums}\n"
    ".pass{color:#38761d;font-weight:bold}.fail{color:#c00;font-weight:bold}\n"
    "pre{background:#f7f7f7;padding:8px;overflow:auto;max-height:420px}\n"
    ".pic{overflow:auto;border:1px solid #eee;padding:4px;margin:8px 0}\n"
    ".pic.tall{max-height:760px}\n"
    ".pic svg{max-width:none}\n"
    /* graphviz sizes in points; its graphs are scaled to the page */
    ".pic.fit svg{max-width:100%;height:auto}\n"
    "nav a{margin-right:12px}\n.note{color:#666;font-size:12px}\n"
    "details{margin:6px 0}summary{cursor:pointer}\n";

static void
cell(struct report_buf *b, const char *s)
{
    report_buf_puts(b, "<td>");
    report_buf_xml(b, s);
    report_buf_puts(b, "</td>");
}

static void
ncell(struct report_buf *b, long long v)
{
    report_buf_printf(b, "<td class=\"n\">%lld</td>", v);
}

static void
tcell(struct report_buf *b, int64_t ns)
{
    char t[32];
    rp__fmt_ns(ns, t, sizeof(t));
    report_buf_printf(b, "<td class=\"n\">%s</td>", t);
}

static void
run_table(struct report_buf *b, const struct trace_run *r)
{
    char v[64];
    report_buf_puts(b, "<table>\n");
    struct {
        const char *k, *v;
    } rows[] = {
        {"scenario", r->scenario_path ? r->scenario_path : "(none)"},
        {"stack", r->stack ? r->stack : ""},
        {"build", r->build_id ? r->build_id : ""},
        {"fingerprint", r->fingerprint ? r->fingerprint : "(none)"},
        {"verdict", r->verdict ? r->verdict : "(run still open)"},
        {"started (wall clock)", r->started_wall ? r->started_wall : ""},
    };
    report_buf_printf(b, "<tr><th>run</th><td>%lld</td></tr>\n",
                      (long long)r->id);
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        report_buf_printf(b, "<tr><th>%s</th>", rows[i].k);
        if (!strcmp(rows[i].k, "verdict"))
            report_buf_printf(b, "<td class=\"%s\">",
                              r->verdict && !strcmp(r->verdict, "pass")
                                  ? "pass" : "fail");
        else
            report_buf_puts(b, "<td>");
        report_buf_xml(b, rows[i].v);
        report_buf_puts(b, "</td></tr>\n");
    }
    report_buf_printf(b, "<tr><th>seed</th><td>%llu</td></tr>\n",
                      (unsigned long long)r->seed);
    rp__fmt_ns(r->duration_ns, v, sizeof(v));
    report_buf_printf(b, "<tr><th>duration (virtual)</th><td>%s</td></tr>\n",
                      r->duration_ns >= 0 ? v : "(open)");
    report_buf_printf(b, "<tr><th>events</th><td>%lld</td></tr>\n"
                         "<tr><th>exit code</th><td>%d</td></tr>\n</table>\n",
                      (long long)r->nevents, r->exit_code);
}

static int
expectations(struct report_buf *b, struct trace_db *db, int64_t run,
             char *err, size_t errlen)
{
    sqlite3_stmt *st;
    if (rp__prepare(db,
                    "SELECT coalesce(line, 0), text, coalesce(verdict, ''), "
                    "coalesce(evidence, '') FROM expectation WHERE run = ?1 "
                    "ORDER BY id",
                    &st, err, errlen) < 0)
        return -1;
    sqlite3_bind_int64(st, 1, run);
    report_buf_puts(b, "<table>\n<tr><th>line</th><th>expectation</th>"
                       "<th>verdict</th><th>evidence</th></tr>\n");
    int n = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *verdict = rp__text(st, 2);
        report_buf_puts(b, "<tr>");
        ncell(b, sqlite3_column_int(st, 0));
        cell(b, rp__text(st, 1));
        report_buf_printf(b, "<td class=\"%s\">",
                          !strcmp(verdict, "pass") ? "pass" : "fail");
        report_buf_xml(b, verdict);
        report_buf_puts(b, "</td>");
        cell(b, rp__text(st, 3));
        report_buf_puts(b, "</tr>\n");
        n++;
    }
    sqlite3_finalize(st);
    if (!n)
        report_buf_puts(b, "<tr><td colspan=\"4\">no expectations "
                           "recorded</td></tr>\n");
    report_buf_puts(b, "</table>\n");
    return 0;
}

/* The per-connection table. The aggregates mirror v_messages_per_conn and
 * v_reconnects but are filtered by run before grouping, so a large trace
 * is scanned once per aggregate. */
static int
conn_table(struct report_buf *b, struct trace_db *db, int64_t run, char *err,
           size_t errlen)
{
    sqlite3_stmt *st;
    if (rp__prepare(
            db,
            "WITH m AS (SELECT conn, sum(fate = 'sent') AS sent,"
            "  sum(fate = 'acked') AS acked, sum(fate = 'delivered') AS dl,"
            "  sum(fate = 'dropped') AS dr, sum(fate = 'duplicate') AS dup,"
            "  sum(CASE WHEN fate = 'sent' THEN bytes ELSE 0 END) AS bytes"
            "  FROM rp_event WHERE run = ?1 AND kind = 'msg' GROUP BY conn),"
            " r AS (SELECT conn, sum(state_to = 'START_CONNECT' AND"
            "  state_from <> 'NONE') AS rc,"
            "  sum(state_to = 'SESSION_RECONNECTING') AS src,"
            "  sum(state_to = 'READY') AS rd"
            "  FROM event WHERE run = ?1 AND kind = 'state' GROUP BY conn),"
            " f AS (SELECT conn, count(*) AS n FROM event WHERE run = ?1 AND"
            "  kind = 'conn_fault' GROUP BY conn)"
            " SELECT c.id, n.name, coalesce(nullif(c.peer_name, ''),"
            "  c.peer_addr, ''), c.first_t, c.last_t,"
            "  coalesce(c.last_state, ''), coalesce(m.sent, 0),"
            "  coalesce(m.acked, 0), coalesce(m.dl, 0), coalesce(m.dr, 0),"
            "  coalesce(m.dup, 0), coalesce(m.bytes, 0), coalesce(r.rc, 0),"
            "  coalesce(r.src, 0), coalesce(r.rd, 0), coalesce(f.n, 0)"
            " FROM conn c JOIN node n ON n.run = c.run AND n.id = c.node"
            " LEFT JOIN m ON m.conn = c.id LEFT JOIN r ON r.conn = c.id"
            " LEFT JOIN f ON f.conn = c.id WHERE c.run = ?1 ORDER BY c.id",
            &st, err, errlen) < 0)
        return -1;
    sqlite3_bind_int64(st, 1, run);
    report_buf_puts(b,
                    "<table>\n<tr><th>conn</th><th>node</th><th>peer</th>"
                    "<th>first</th><th>last</th><th>last state</th>"
                    "<th>sent</th><th>acked</th><th>delivered</th>"
                    "<th>dropped</th><th>dup</th><th>bytes sent</th>"
                    "<th>reconnects</th><th>session reconnects</th>"
                    "<th>readies</th><th>faults</th></tr>\n");
    int n = 0, more = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        if (n == MAX_TABLE_ROWS) {
            more++;
            continue;
        }
        report_buf_printf(b, "<tr id=\"c%lld\"><td>c%lld</td>",
                          (long long)sqlite3_column_int64(st, 0),
                          (long long)sqlite3_column_int64(st, 0));
        cell(b, rp__text(st, 1));
        cell(b, rp__text(st, 2));
        tcell(b, sqlite3_column_int64(st, 3));
        tcell(b, sqlite3_column_int64(st, 4));
        cell(b, rp__text(st, 5));
        for (int c = 6; c <= 15; c++)
            ncell(b, sqlite3_column_int64(st, c));
        report_buf_puts(b, "</tr>\n");
        n++;
    }
    sqlite3_finalize(st);
    report_buf_puts(b, "</table>\n");
    if (more)
        report_buf_printf(b, "<p class=\"note\">%d more connections not "
                             "listed (see the trace's v_conn view)</p>\n",
                          more);
    return 0;
}

/* Inlines an SVG with its element ids prefixed: graphviz numbers its
 * elements the same way in every picture, and ids must be unique in one
 * HTML document. */
static void
put_svg(struct report_buf *b, const struct report_buf *svg,
        const char *prefix)
{
    static const char *const pats[] = {" id=\"", "url(#"};
    const char *s = svg->data;
    if (!s)
        return;
    /* the next hit of each pattern, searched again only once consumed */
    const char *next[2] = {strstr(s, pats[0]), strstr(s, pats[1])};
    for (;;) {
        int k = !next[0] ? 1 : !next[1] ? 0 : next[1] < next[0];
        if (!next[k])
            break;
        size_t plen = strlen(pats[k]);
        report_buf_putn(b, s, (size_t)(next[k] - s) + plen);
        report_buf_printf(b, "%s-", prefix);
        s = next[k] + plen;
        next[k] = strstr(s, pats[k]);
    }
    report_buf_puts(b, s);
}

static void
picture(struct report_buf *b, const char *id, const char *title,
        const char *caption, const struct report_buf *svg, const char *files,
        int tall /* 1: scroll when tall, 2: scale to the page width */)
{
    report_buf_printf(b, "<h2 id=\"%s\">", id);
    report_buf_xml(b, title);
    report_buf_puts(b, "</h2>\n<p>");
    report_buf_puts(b, caption); /* trusted markup from this file */
    report_buf_printf(b, "</p>\n<div class=\"pic%s\">\n",
                      tall == 1 ? " tall" : tall == 2 ? " fit" : "");
    if (svg)
        put_svg(b, svg, id);
    report_buf_puts(b, "</div>\n");
    if (files)
        report_buf_printf(b, "<p class=\"note\">files: %s</p>\n", files);
}

int
rp__html_write(struct report_buf *b, struct trace_db *db,
               const struct trace_run *r, const struct rp_pictures *p,
               char *err, size_t errlen)
{
    report_buf_puts(b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n"
                       "<meta charset=\"utf-8\">\n<title>msgrsim report: ");
    report_buf_xml(b, r->scenario_path ? r->scenario_path : "run");
    report_buf_printf(b, " (run %lld)</title>\n<style>\n%s</style>\n"
                         "</head>\n<body>\n<h1>msgrsim report</h1>\n",
                      (long long)r->id, css);
    report_buf_puts(b,
                    "<nav><a href=\"#run\">run</a><a href=\"#expectations\">"
                    "expectations</a><a href=\"#topology\">topology</a>"
                    "<a href=\"#states\">state graph</a><a href=\"#sequence\">"
                    "sequence</a><a href=\"#charts\">charts</a>"
                    "<a href=\"#connections\">connections</a>"
                    "<a href=\"#scenario\">scenario</a></nav>\n"
                    "<h2 id=\"run\">run</h2>\n");
    run_table(b, r);
    report_buf_puts(b, "<h2 id=\"expectations\">expectations</h2>\n");
    if (expectations(b, db, r->id, err, errlen) < 0)
        return -1;

    picture(b, "topology", "topology",
            "Nodes are shaped and coloured by entity type (mon hexagon, osd "
            "box, client ellipse, mds diamond, mgr octagon). A blue edge is "
            "one direction of traffic, as wide as its message count; a grey "
            "line a connection that carried no message; a red dashed edge a "
            "fault between two nodes with its window; a red outline a node "
            "that was killed, crashed or paused.",
            &p->topology_svg, "topology.dot, topology.svg", 2);
    picture(b, "states", "protocol state graph (all connections)",
            "Every state of the msgr2 connection machine. Solid edges were "
            "taken, labelled with how often; dashed grey edges are allowed "
            "but never taken in this run (untested paths); red edges were "
            "taken but are not allowed. Filled states were visited.",
            &p->states_svg, "states.dot, states.svg", 2);

    char cap[1024];
    char t0[32], t1[32];
    rp__fmt_ns(p->seq.from_ns, t0, sizeof(t0));
    rp__fmt_ns(p->seq.until_ns, t1, sizeof(t1));
    struct report_buf c;
    report_buf_init(&c);
    report_buf_puts(&c, "Between <b>");
    report_buf_xml(&c, p->seq.a);
    report_buf_puts(&c, "</b> and <b>");
    report_buf_xml(&c, p->seq.b);
    snprintf(cap, sizeof(cap),
             "</b>, %d events from %s to %s (%d dropped, %d duplicates, "
             "%d resets or reconnects). One row per event in trace order; "
             "arrows go from a send to its delivery, red arrows deliver a "
             "duplicate (a replayed message), a red cross marks a drop, "
             "grey stubs are sends not delivered in the window, orange "
             "boxes are resets and reconnects, shaded bands are fault "
             "windows (pink: a fault naming one of the pair). Choose "
             "another pair or window with <code>msgrsim report --pair A-B "
             "--from T --until T</code>.",
             p->seq.nevents, t0, t1, p->seq.ndropped, p->seq.nduplicates,
             p->seq.nresets);
    report_buf_puts(&c, cap);
    picture(b, "sequence", "message sequence", c.data ? c.data : "",
            &p->sequence_svg, "sequence.svg (hand-written SVG)", 1);
    report_buf_fini(&c);
    picture(b, "charts", "over time",
            "Per interval of 1/120 of the run: delivered messages per second; "
            "delivery latency percentiles (first send to first delivery, by "
            "delivery time); queue depth (messages queued or sent and "
            "neither delivered nor dropped yet, at the interval's end); "
            "reconnect attempts; and each injected fault as a bar. Fault "
            "windows are shaded in every panel.",
            &p->charts_svg, "charts.svg", 0);

    report_buf_puts(b, "<h2 id=\"connections\">connections</h2>\n");
    if (conn_table(b, db, r->id, err, errlen) < 0)
        return -1;
    report_buf_printf(b, "<h2 id=\"conn-states\">state graph per "
                         "connection</h2>\n");
    for (size_t i = 0; i < p->nconn; i++) {
        report_buf_printf(b, "<details><summary>connection c%lld (%s)"
                             "</summary>\n<div class=\"pic fit\">\n",
                          (long long)p->conn[i].id, p->conn[i].file);
        char prefix[32];
        snprintf(prefix, sizeof(prefix), "c%lld", (long long)p->conn[i].id);
        put_svg(b, &p->conn[i].svg, prefix);
        report_buf_puts(b, "</div></details>\n");
    }
    if (p->nconn_omitted)
        report_buf_printf(b, "<p class=\"note\">%zu more connections have "
                             "no picture here (raise the limit in "
                             "report_opts.max_conn_graphs)</p>\n",
                          p->nconn_omitted);
    report_buf_puts(b, "<h2 id=\"scenario\">scenario</h2>\n<pre>");
    report_buf_xml(b, r->scenario_text ? r->scenario_text : "");
    report_buf_printf(b, "</pre>\n<p class=\"note\">replay: <code>msgrsim "
                         "replay TRACE.db --run %lld</code></p>\n"
                         "</body>\n</html>\n",
                      (long long)r->id);
    if (b->oom) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}
