/*
 * The message sequence (Lamport) diagram of one pair of nodes, written as
 * SVG by hand: one row per event in trace order (so causality reads top
 * to bottom even when many events share a virtual instant), the two
 * lifelines, an arrow from each send to its delivery, drops crossed out,
 * duplicates (replayed messages) in red, state changes boxed (resets and
 * reconnects in orange), fault windows shaded across the rows they cover.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report_internal.h"

#define ROW_H 16
#define TOP 70
#define X_TIME 10
#define X_A 420
#define X_B 760
#define WIDTH 1100

struct row {
    int64_t seq, t;
    int side; /* 0: a, 1: b */
    char kind[16], from[32], to[32], tag[32], fate[16], detail[96];
    int64_t msg_src, msg_id, msg_seq, err;
};

struct rows {
    struct row *r;
    size_t n, cap;
};

static int
rows_push(struct rows *rs, const struct row *r)
{
    if (rs->n == rs->cap) {
        size_t cap = rs->cap ? rs->cap * 2 : 256;
        struct row *nr = realloc(rs->r, cap * sizeof(*nr));
        if (!nr)
            return -1;
        rs->r = nr;
        rs->cap = cap;
    }
    rs->r[rs->n++] = *r;
    return 0;
}

/* The busiest pair by messages, else the first connection's ends. */
static int
default_pair(struct trace_db *db, int64_t run, struct report_seq_view *v,
             char *err, size_t errlen)
{
    static const char *const sqls[] = {
        "SELECT s.name, d.name FROM message m JOIN node s ON s.run = m.run "
        "AND s.id = m.src JOIN node d ON d.run = m.run AND d.id = m.dst "
        "WHERE m.run = ?1 GROUP BY s.name, d.name "
        "ORDER BY count(*) DESC, s.name, d.name LIMIT 1",
        "SELECT n.name, c.peer_name FROM conn c JOIN node n ON n.run = c.run "
        "AND n.id = c.node WHERE c.run = ?1 AND c.peer_name <> '' "
        "ORDER BY c.id LIMIT 1",
    };
    for (size_t i = 0; i < 2; i++) {
        sqlite3_stmt *st;
        if (rp__prepare(db, sqls[i], &st, err, errlen) < 0)
            return -1;
        sqlite3_bind_int64(st, 1, run);
        int found = sqlite3_step(st) == SQLITE_ROW;
        if (found) {
            snprintf(v->a, sizeof(v->a), "%s", rp__text(st, 0));
            snprintf(v->b, sizeof(v->b), "%s", rp__text(st, 1));
        }
        sqlite3_finalize(st);
        if (found)
            return 0;
    }
    v->a[0] = v->b[0] = '\0';
    return 0;
}

/* The events a sequence diagram shows: message fates but "queued",
 * state changes, connection faults, upcalls and the handshake's frames
 * (message and ack frames repeat the fates). */
#define SEQ_SELECT                                                           \
    "SELECT e.seq, e.t_ns, n.name = ?2, e.kind, coalesce(e.state_from,''), " \
    "coalesce(e.state_to,''), coalesce(e.tag,''), coalesce(e.fate,''), "     \
    "coalesce(e.detail,''), coalesce(e.msg_src,-1), coalesce(e.msg_id,-1), " \
    "coalesce(e.msg_seq,-1), coalesce(e.err,0) "                             \
    "FROM rp_event e JOIN node n ON n.run = e.run AND n.id = e.node "        \
    "JOIN conn c ON c.run = e.run AND c.id = e.conn "                        \
    "WHERE e.run = ?1 AND ((n.name = ?2 AND c.peer_name = ?3) OR "           \
    "(n.name = ?3 AND c.peer_name = ?2)) AND e.t_ns >= ?4 AND e.t_ns <= ?5 " \
    "AND (e.kind IN ('state', 'conn_fault', 'dispatch') OR "                 \
    "(e.kind = 'msg' AND e.fate <> 'queued') OR "                            \
    "(e.kind IN ('frame_in', 'frame_out') AND e.tag NOT IN ('message', "     \
    "'ack', 'keepalive2', 'keepalive2_ack'))) "

static int
load_rows(struct trace_db *db, int64_t run, const struct report_seq_view *v,
          int64_t from, int64_t until, int desc, int limit, struct rows *rs,
          char *err, size_t errlen)
{
    sqlite3_stmt *st;
    const char *sql = desc ? SEQ_SELECT "ORDER BY e.t_ns DESC, e.seq DESC "
                                        "LIMIT ?6"
                           : SEQ_SELECT "ORDER BY e.t_ns, e.seq LIMIT ?6";
    if (rp__prepare(db, sql, &st, err, errlen) < 0)
        return -1;
    sqlite3_bind_int64(st, 1, run);
    sqlite3_bind_text(st, 2, v->a, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, v->b, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, from);
    sqlite3_bind_int64(st, 5, until);
    sqlite3_bind_int(st, 6, limit);
    int rc = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        struct row r;
        memset(&r, 0, sizeof(r));
        r.seq = sqlite3_column_int64(st, 0);
        r.t = sqlite3_column_int64(st, 1);
        r.side = sqlite3_column_int(st, 2) ? 0 : 1;
        snprintf(r.kind, sizeof(r.kind), "%s", rp__text(st, 3));
        snprintf(r.from, sizeof(r.from), "%s", rp__text(st, 4));
        snprintf(r.to, sizeof(r.to), "%s", rp__text(st, 5));
        snprintf(r.tag, sizeof(r.tag), "%s", rp__text(st, 6));
        snprintf(r.fate, sizeof(r.fate), "%s", rp__text(st, 7));
        snprintf(r.detail, sizeof(r.detail), "%s", rp__text(st, 8));
        r.msg_src = sqlite3_column_int64(st, 9);
        r.msg_id = sqlite3_column_int64(st, 10);
        r.msg_seq = sqlite3_column_int64(st, 11);
        r.err = sqlite3_column_int64(st, 12);
        if (rows_push(rs, &r) < 0) {
            snprintf(err, errlen, "out of memory");
            rc = -1;
            break;
        }
    }
    sqlite3_finalize(st);
    return rc;
}

/* The default window: a quarter of the rows before the first fault that
 * touches the pair (or any fault), the rest after it. */
static int
default_rows(struct trace_db *db, int64_t run, const struct rp_fault *f,
             size_t nf, int max, struct report_seq_view *v, struct rows *rs,
             char *err, size_t errlen)
{
    int64_t pivot = -1;
    for (size_t i = 0; i < nf && pivot < 0; i++)
        if (rp__fault_names(&f[i], v->a) || rp__fault_names(&f[i], v->b))
            pivot = f[i].t_ns;
    if (pivot < 0 && nf)
        pivot = f[0].t_ns;
    if (pivot < 0)
        return load_rows(db, run, v, INT64_MIN, INT64_MAX, 0, max, rs, err,
                         errlen);
    struct rows before = {0};
    if (load_rows(db, run, v, INT64_MIN, pivot - 1, 1, max / 4, &before, err,
                  errlen) < 0)
        return -1;
    int rc = 0;
    for (size_t i = before.n; i-- > 0 && !rc;)
        rc = rows_push(rs, &before.r[i]);
    free(before.r);
    if (rc) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return load_rows(db, run, v, pivot, INT64_MAX, 0, max - (int)rs->n, rs,
                     err, errlen);
}

static int
row_y(size_t i)
{
    return TOP + (int)i * ROW_H + ROW_H / 2;
}

static int
side_x(int side)
{
    return side ? X_B : X_A;
}

/* A label beside a lifeline: left of a, right of b. */
static void
label(struct report_buf *o, int side, size_t i, const char *cls,
      const char *text)
{
    report_buf_printf(o, "<text class=\"%s\" x=\"%d\" y=\"%d\" "
                         "text-anchor=\"%s\">",
                      cls, side ? X_B + 8 : X_A - 8, row_y(i) + 4,
                      side ? "start" : "end");
    report_buf_xml(o, text);
    report_buf_puts(o, "</text>\n");
}

static int
is_reset(const struct row *r)
{
    if (strcmp(r->kind, "state"))
        return 0;
    return (!strcmp(r->to, "START_CONNECT") && strcmp(r->from, "NONE")) ||
           !strcmp(r->to, "SESSION_RECONNECTING") ||
           (!strcmp(r->from, "READY") && strcmp(r->to, "READY"));
}

/* The row of the last "sent" of message (src, id) before row i, or -1. */
static long
find_send(const struct rows *rs, size_t i, int64_t src, int64_t id)
{
    for (size_t k = i; k-- > 0;)
        if (!strcmp(rs->r[k].kind, "msg") && !strcmp(rs->r[k].fate, "sent") &&
            rs->r[k].msg_src == src && rs->r[k].msg_id == id)
            return (long)k;
    return -1;
}

/* Whether message (src, id) is delivered or duplicated at a later row. */
static int
delivered_later(const struct rows *rs, size_t i, int64_t src, int64_t id)
{
    for (size_t k = i + 1; k < rs->n; k++)
        if (!strcmp(rs->r[k].kind, "msg") && rs->r[k].msg_src == src &&
            rs->r[k].msg_id == id &&
            (!strcmp(rs->r[k].fate, "delivered") ||
             !strcmp(rs->r[k].fate, "duplicate")))
            return 1;
    return 0;
}

static void
draw_faults(struct report_buf *o, const struct rows *rs,
            const struct rp_fault *f, size_t nf,
            const struct report_seq_view *v)
{
    int lane = 0;
    for (size_t k = 0; k < nf; k++) {
        int64_t end = f[k].healed_t >= 0 ? f[k].healed_t : INT64_MAX;
        long first = -1, last = -1;
        for (size_t i = 0; i < rs->n; i++)
            if (rs->r[i].t >= f[k].t_ns && rs->r[i].t < end) {
                if (first < 0)
                    first = (long)i;
                last = (long)i;
            }
        if (first < 0)
            continue;
        int ours = rp__fault_names(&f[k], v->a) ||
                   rp__fault_names(&f[k], v->b);
        int y0 = TOP + (int)first * ROW_H, y1 = TOP + (int)(last + 1) * ROW_H;
        report_buf_printf(o,
                          "<rect class=\"fault%s\" x=\"90\" y=\"%d\" "
                          "width=\"%d\" height=\"%d\"/>\n",
                          ours ? "" : " other", y0, WIDTH - 100, y1 - y0);
        report_buf_printf(o,
                          "<text class=\"faultlabel\" x=\"%d\" y=\"%d\" "
                          "text-anchor=\"end\">",
                          WIDTH - 14, y0 + 12 + 12 * (lane++ % 3));
        report_buf_xml(o, f[k].kind);
        report_buf_puts(o, " ");
        report_buf_xml(o, f[k].targets);
        report_buf_puts(o, "</text>\n");
    }
}

static void
draw_row(struct report_buf *o, const struct rows *rs, size_t i,
         struct report_seq_view *v)
{
    const struct row *r = &rs->r[i];
    char text[160];
    int x = side_x(r->side), y = row_y(i);
    if (i == 0 || rs->r[i - 1].t != r->t) {
        char t[32];
        snprintf(t, sizeof(t), "%.9f", (double)r->t / 1e9);
        report_buf_printf(o, "<text class=\"time\" x=\"%d\" y=\"%d\">%ss</text>\n",
                          X_TIME, y + 4, t);
    }
    if (!strcmp(r->kind, "msg")) {
        if (!strcmp(r->fate, "sent")) {
            int resend = find_send(rs, i, r->msg_src, r->msg_id) >= 0;
            snprintf(text, sizeof(text), "%s #%lld seq %lld",
                     resend ? "resend" : "send", (long long)r->msg_id,
                     (long long)r->msg_seq);
            label(o, r->side, i, resend ? "resend" : "msg", text);
            if (!delivered_later(rs, i, r->msg_src, r->msg_id)) {
                /* not delivered in the window: a stub towards the peer */
                int xe = (x + side_x(!r->side)) / 2;
                report_buf_printf(o,
                                  "<line class=\"stub\" x1=\"%d\" y1=\"%d\" "
                                  "x2=\"%d\" y2=\"%d\"/>\n",
                                  x, y, xe, y + ROW_H);
            }
        } else if (!strcmp(r->fate, "delivered") ||
                   !strcmp(r->fate, "duplicate")) {
            int dup = !strcmp(r->fate, "duplicate");
            long s = find_send(rs, i, r->msg_src, r->msg_id);
            if (s >= 0)
                report_buf_printf(o,
                                  "<line class=\"%s\" x1=\"%d\" y1=\"%d\" "
                                  "x2=\"%d\" y2=\"%d\" "
                                  "marker-end=\"url(#arrow)\"/>\n",
                                  dup ? "duparrow" : "arrow",
                                  side_x(rs->r[s].side), row_y((size_t)s),
                                  x, y);
            snprintf(text, sizeof(text), "%s #%lld seq %lld",
                     dup ? "DUPLICATE" : "deliver", (long long)r->msg_id,
                     (long long)r->msg_seq);
            label(o, r->side, i, dup ? "dup" : "msg", text);
            if (dup)
                v->nduplicates++;
        } else if (!strcmp(r->fate, "dropped")) {
            report_buf_printf(o,
                              "<path class=\"drop\" d=\"M%d %d l8 8 m0 -8 "
                              "l-8 8\"/>\n",
                              x - 4, y - 4);
            snprintf(text, sizeof(text), "dropped #%lld",
                     (long long)r->msg_id);
            label(o, r->side, i, "dropped", text);
            v->ndropped++;
        } else {
            snprintf(text, sizeof(text), "%s #%lld", r->fate,
                     (long long)r->msg_id);
            label(o, r->side, i, "ack", text);
        }
    } else if (!strcmp(r->kind, "state")) {
        int reset = is_reset(r);
        if (reset)
            v->nresets++;
        snprintf(text, sizeof(text), "%s \u2192 %s", r->from, r->to);
        int w = (int)strlen(text) * 7 + 6; /* about 7px a glyph at 11px */
        report_buf_printf(o,
                          "<rect class=\"%s\" x=\"%d\" y=\"%d\" width=\"%d\" "
                          "height=\"%d\" rx=\"3\"/>\n",
                          reset ? "statebox reset" : "statebox",
                          r->side ? X_B + 4 : X_A - 4 - w, y - ROW_H / 2 + 1,
                          w, ROW_H - 2);
        label(o, r->side, i, reset ? "state resettext" : "state", text);
    } else if (!strcmp(r->kind, "conn_fault")) {
        snprintf(text, sizeof(text), "fault: %s (err %lld)", r->detail,
                 (long long)r->err);
        report_buf_printf(o, "<circle class=\"connfault\" cx=\"%d\" "
                             "cy=\"%d\" r=\"4\"/>\n", x, y);
        label(o, r->side, i, "dropped", text);
    } else if (!strcmp(r->kind, "dispatch")) {
        snprintf(text, sizeof(text), "upcall %s", r->tag);
        label(o, r->side, i, "dispatch", text);
    } else {
        snprintf(text, sizeof(text), "%s %s",
                 !strcmp(r->kind, "frame_out") ? "\u2192" : "\u2190", r->tag);
        label(o, r->side, i, "frame", text);
    }
    report_buf_printf(o, "<circle class=\"dot\" cx=\"%d\" cy=\"%d\" "
                         "r=\"2.5\"/>\n", x, y);
}

static void
svg_head(struct report_buf *o, const struct report_seq_view *v, size_t nrows)
{
    int h = TOP + (int)nrows * ROW_H + 30;
    report_buf_printf(o,
                      "<svg xmlns=\"http://www.w3.org/2000/svg\" "
                      "class=\"sequence\" width=\"%d\" height=\"%d\" "
                      "viewBox=\"0 0 %d %d\">\n",
                      WIDTH, h, WIDTH, h);
    report_buf_puts(o,
                    "<style>\n"
                    "text{font:11px Helvetica,Arial,sans-serif}\n"
                    ".time{fill:#666;font-family:monospace}\n"
                    ".life{stroke:#444;stroke-width:1.5}\n"
                    ".head{fill:#cfe2f3;stroke:#1f4e79}\n"
                    ".headtext{font-weight:bold}\n"
                    ".arrow{stroke:#1f4e79;stroke-width:1}\n"
                    ".duparrow{stroke:#c00;stroke-width:1.5}\n"
                    ".stub{stroke:#999;stroke-dasharray:3 2}\n"
                    ".dot{fill:#333}\n"
                    ".msg{fill:#1f4e79}.resend{fill:#b45f06}\n"
                    ".dup{fill:#c00;font-weight:bold}\n"
                    ".dropped{fill:#c00}.drop{stroke:#c00;stroke-width:2}\n"
                    ".ack{fill:#888}.frame{fill:#777;font-style:italic}\n"
                    ".dispatch{fill:#6a329f}\n"
                    ".statebox{fill:#eef;stroke:#99b}\n"
                    ".statebox.reset{fill:#fde9d9;stroke:#e69138}\n"
                    ".state{fill:#223}.resettext{fill:#b45f06}\n"
                    ".connfault{fill:#c00}\n"
                    ".fault{fill:#f4cccc;opacity:.45}\n"
                    ".fault.other{fill:#eee;opacity:.6}\n"
                    ".faultlabel{fill:#900;font-size:10px}\n"
                    "</style>\n"
                    "<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" "
                    "refX=\"10\" refY=\"5\" markerWidth=\"7\" "
                    "markerHeight=\"7\" orient=\"auto-start-reverse\">"
                    "<path d=\"M0 0 L10 5 L0 10 z\" fill=\"#1f4e79\"/>"
                    "</marker></defs>\n");
    for (int s = 0; s < 2; s++) {
        int x = side_x(s);
        report_buf_printf(o,
                          "<rect class=\"head\" x=\"%d\" y=\"22\" "
                          "width=\"120\" height=\"24\" rx=\"4\"/>\n"
                          "<text class=\"headtext\" x=\"%d\" y=\"38\" "
                          "text-anchor=\"middle\">",
                          x - 60, x);
        report_buf_xml(o, s ? v->b : v->a);
        report_buf_printf(o,
                          "</text>\n<line class=\"life\" x1=\"%d\" "
                          "y1=\"46\" x2=\"%d\" y2=\"%d\"/>\n",
                          x, x, TOP + (int)nrows * ROW_H + 10);
    }
    report_buf_printf(o, "<text class=\"time\" x=\"%d\" y=\"60\">time "
                         "(virtual)</text>\n", X_TIME);
}

int
report_sequence_svg(struct trace_db *db, int64_t run,
                    const struct report_opts *o, struct report_buf *out,
                    struct report_seq_view *view, char *err, size_t errlen)
{
    struct report_seq_view v;
    memset(&v, 0, sizeof(v));
    int max = o->max_seq_events > 0 ? o->max_seq_events : 200;
    if (o->pair_a && o->pair_b) {
        snprintf(v.a, sizeof(v.a), "%s", o->pair_a);
        snprintf(v.b, sizeof(v.b), "%s", o->pair_b);
    } else if (default_pair(db, run, &v, err, errlen) < 0) {
        return -1;
    }
    struct rp_fault *f;
    size_t nf;
    if (rp__faults_load(db, run, &f, &nf, err, errlen) < 0)
        return -1;
    struct rows rs = {0};
    int rc;
    if (o->from_ns == INT64_MIN && o->until_ns == INT64_MAX)
        rc = default_rows(db, run, f, nf, max, &v, &rs, err, errlen);
    else
        rc = load_rows(db, run, &v, o->from_ns, o->until_ns, 0, max, &rs, err,
                       errlen);
    if (rc == 0) {
        v.nevents = (int)rs.n;
        v.from_ns = rs.n ? rs.r[0].t : o->from_ns;
        v.until_ns = rs.n ? rs.r[rs.n - 1].t : o->until_ns;
        svg_head(out, &v, rs.n);
        draw_faults(out, &rs, f, nf, &v);
        for (size_t i = 0; i < rs.n; i++)
            draw_row(out, &rs, i, &v);
        if (rs.n == 0)
            report_buf_printf(out,
                              "<text x=\"%d\" y=\"%d\">no events between "
                              "these nodes in this window</text>\n",
                              X_A, TOP + 10);
        report_buf_puts(out, "</svg>\n");
        if (out->oom) {
            snprintf(err, errlen, "out of memory");
            rc = -1;
        }
    }
    free(rs.r);
    free(f);
    if (view)
        *view = v;
    return rc;
}
