/*
 * The topology: one box per node name (all its incarnations), shaped and
 * coloured by entity type; an edge per direction with traffic, as wide as
 * the messages it carried; connections without messages thin and grey;
 * faults between nodes as red dashed edges labelled with their window,
 * faults on one node as a red outline and a note.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report_internal.h"

struct type_style {
    const char *type, *shape, *fill;
};
static const struct type_style type_styles[] = {
    {"mon", "hexagon", "#f4cccc"},   {"osd", "box", "#cfe2f3"},
    {"client", "ellipse", "#d9ead3"}, {"mds", "diamond", "#fff2cc"},
    {"mgr", "octagon", "#ead1dc"},
};

static const struct type_style *
style_of(const char *type)
{
    for (size_t i = 0; i < sizeof(type_styles) / sizeof(type_styles[0]); i++)
        if (!strcmp(type_styles[i].type, type))
            return &type_styles[i];
    static const struct type_style other = {"", "component", "#eeeeee"};
    return &other;
}

static void
quoted(struct report_buf *b, const char *s)
{
    report_buf_puts(b, "\"");
    report_buf_dotstr(b, s);
    report_buf_puts(b, "\"");
}

/* The faults that name node alone (kill, crash, pause, ...) as a label
 * suffix; returns how many. */
static int
node_faults(const struct rp_fault *f, size_t nf, const char *node,
            struct report_buf *label)
{
    int n = 0;
    for (size_t i = 0; i < nf; i++) {
        if (strstr(f[i].targets, "->") || strcmp(f[i].targets, node))
            continue;
        char t[32];
        rp__fmt_ns(f[i].t_ns, t, sizeof(t));
        report_buf_printf(label, "\n%s @%s", f[i].kind, t);
        n++;
    }
    return n;
}

static int
emit_nodes(struct trace_db *db, int64_t run, const struct rp_fault *f,
           size_t nf, struct report_buf *out, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    if (rp__prepare(db,
                    "SELECT name, entity_type, count(*), min(addr) FROM node "
                    "WHERE run = ?1 GROUP BY name ORDER BY min(id)",
                    &st, err, errlen) < 0)
        return -1;
    sqlite3_bind_int64(st, 1, run);
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *name = rp__text(st, 0);
        const struct type_style *ts = style_of(rp__text(st, 1));
        int incarnations = sqlite3_column_int(st, 2);
        struct report_buf label;
        report_buf_init(&label);
        report_buf_puts(&label, name);
        if (incarnations > 1)
            report_buf_printf(&label, "\n%d incarnations", incarnations);
        int faulted = node_faults(f, nf, name, &label);
        report_buf_puts(out, "  ");
        quoted(out, name);
        report_buf_printf(out, " [shape=%s, style=filled, fillcolor=\"%s\"",
                          ts->shape, ts->fill);
        if (faulted)
            report_buf_puts(out, ", color=red, penwidth=2");
        report_buf_puts(out, ", label=");
        quoted(out, label.data ? label.data : name);
        report_buf_puts(out, "];\n");
        report_buf_fini(&label);
    }
    sqlite3_finalize(st);
    return 0;
}

static int
emit_traffic(struct trace_db *db, int64_t run, struct report_buf *out,
             char *err, size_t errlen)
{
    sqlite3_stmt *st;
    /* messages by direction, and connections that carried none */
    if (rp__prepare(db,
                    "WITH t AS (SELECT s.name AS a, d.name AS b, count(*) AS n,"
                    "  sum(m.delivered_t IS NOT NULL) AS dl,"
                    "  sum(m.delivered_t IS NULL AND m.dropped_t IS NOT NULL)"
                    "    AS dr, sum(m.duplicates) AS dup"
                    "  FROM message m JOIN node s ON s.run = m.run AND"
                    "  s.id = m.src JOIN node d ON d.run = m.run AND"
                    "  d.id = m.dst WHERE m.run = ?1 GROUP BY s.name, d.name)"
                    " SELECT a, b, n, dl, dr, dup FROM t"
                    " UNION ALL"
                    " SELECT DISTINCT n.name, c.peer_name, 0, 0, 0, 0"
                    "  FROM conn c JOIN node n ON n.run = c.run AND"
                    "  n.id = c.node WHERE c.run = ?1 AND c.peer_name <> ''"
                    "  AND NOT EXISTS (SELECT 1 FROM t WHERE"
                    "   (t.a = n.name AND t.b = c.peer_name) OR"
                    "   (t.b = n.name AND t.a = c.peer_name))"
                    " ORDER BY 1, 2",
                    &st, err, errlen) < 0)
        return -1;
    sqlite3_bind_int64(st, 1, run);
    /* widths are relative to the busiest direction */
    int64_t max = 1;
    while (sqlite3_step(st) == SQLITE_ROW)
        if (sqlite3_column_int64(st, 2) > max)
            max = sqlite3_column_int64(st, 2);
    sqlite3_reset(st);
    while (sqlite3_step(st) == SQLITE_ROW) {
        int64_t n = sqlite3_column_int64(st, 2);
        report_buf_puts(out, "  ");
        quoted(out, rp__text(st, 0));
        report_buf_puts(out, " -> ");
        quoted(out, rp__text(st, 1));
        if (n == 0) {
            report_buf_puts(out, " [color=gray70, arrowhead=none, "
                                 "tooltip=\"connection, no messages\"];\n");
            continue;
        }
        double w = 1.0 + 5.0 * log10((double)n + 1) / log10((double)max + 1);
        report_buf_printf(out,
                          " [penwidth=%.2f, color=\"#1f4e79\", "
                          "label=\"%lld msgs\\n%lld delivered",
                          w, (long long)n,
                          (long long)sqlite3_column_int64(st, 3));
        if (sqlite3_column_int64(st, 4))
            report_buf_printf(out, "\\n%lld dropped",
                              (long long)sqlite3_column_int64(st, 4));
        if (sqlite3_column_int64(st, 5))
            report_buf_printf(out, "\\n%lld duplicates",
                              (long long)sqlite3_column_int64(st, 5));
        report_buf_puts(out, "\"];\n");
    }
    sqlite3_finalize(st);
    return 0;
}

/* "a <-> b" or "a -> b": the two names; 0 when the fault is on one node. */
static int
fault_ends(const struct rp_fault *f, char *a, size_t alen, char *b,
           size_t blen, int *both)
{
    const char *arrow = strstr(f->targets, " <-> ");
    size_t skip = 5;
    *both = 1;
    if (!arrow) {
        arrow = strstr(f->targets, " -> ");
        skip = 4;
        *both = 0;
    }
    if (!arrow)
        return 0;
    snprintf(a, alen, "%.*s", (int)(arrow - f->targets), f->targets);
    snprintf(b, blen, "%s", arrow + skip);
    return 1;
}

static void
emit_faults(const struct rp_fault *f, size_t nf, struct report_buf *out)
{
    for (size_t i = 0; i < nf; i++) {
        char a[80], b[80], t0[32], t1[32];
        int both;
        if (!fault_ends(&f[i], a, sizeof(a), b, sizeof(b), &both))
            continue;
        rp__fmt_ns(f[i].t_ns, t0, sizeof(t0));
        if (f[i].healed_t >= 0)
            rp__fmt_ns(f[i].healed_t, t1, sizeof(t1));
        else
            snprintf(t1, sizeof(t1), "end");
        report_buf_puts(out, "  ");
        quoted(out, a);
        report_buf_puts(out, " -> ");
        quoted(out, b);
        report_buf_printf(out,
                          " [style=dashed, color=red, fontcolor=red, "
                          "constraint=false, dir=%s, label=\"",
                          both ? "both" : "forward");
        report_buf_dotstr(out, f[i].kind);
        report_buf_printf(out, " %s..%s\"];\n", t0, t1);
    }
}

int
report_topology_dot(struct trace_db *db, int64_t run, struct report_buf *out,
                    char *err, size_t errlen)
{
    struct rp_fault *f;
    size_t nf;
    if (rp__faults_load(db, run, &f, &nf, err, errlen) < 0)
        return -1;
    report_buf_puts(out,
                    "digraph topology {\n"
                    "  graph [layout=dot, rankdir=LR, fontname=\"Helvetica\", "
                    "fontsize=12, labelloc=t, label=\"nodes by entity type; "
                    "edges: messages per direction (width), red dashed: "
                    "faults with their window\"];\n"
                    "  node [fontname=\"Helvetica\", fontsize=10];\n"
                    "  edge [fontname=\"Helvetica\", fontsize=9];\n");
    int rc = emit_nodes(db, run, f, nf, out, err, errlen);
    if (!rc)
        rc = emit_traffic(db, run, out, err, errlen);
    if (!rc)
        emit_faults(f, nf, out);
    report_buf_puts(out, "}\n");
    free(f);
    if (!rc && out->oom) {
        snprintf(err, errlen, "out of memory");
        rc = -1;
    }
    return rc;
}
