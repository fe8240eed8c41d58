/*
 * The protocol state graph. The machine's states and allowed transitions
 * come from msgr's own table (msgr_fsm_*), so the drawing cannot drift
 * from the code; the counts come from the trace (v_state_edges, or
 * v_state_edges_by_conn for one connection).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msgr/msgr.h"
#include "report_internal.h"

/* An edge seen in the trace whose ends may be unknown to this build. */
struct seen_edge {
    char from[40], to[40];
    int64_t n;
    int from_i, to_i; /* -1: not a state of this build */
};

static int
state_index(const char *name)
{
    for (int i = 0; i < msgr_fsm_nstates(); i++)
        if (!strcmp(msgr_fsm_state_name(i), name))
            return i;
    return -1;
}

static int
load_edges(struct trace_db *db, int64_t run, int64_t conn,
           struct seen_edge **out, size_t *n, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    const char *sql =
        conn ? "SELECT state_from, state_to, n FROM v_state_edges_by_conn "
               "WHERE run = ?1 AND conn = ?2 ORDER BY state_from, state_to"
             : "SELECT state_from, state_to, n FROM v_state_edges "
               "WHERE run = ?1 ORDER BY state_from, state_to";
    *out = NULL;
    *n = 0;
    if (rp__prepare(db, sql, &st, err, errlen) < 0)
        return -1;
    sqlite3_bind_int64(st, 1, run);
    if (conn)
        sqlite3_bind_int64(st, 2, conn);
    size_t cap = 0;
    int rc = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 32;
            struct seen_edge *e = realloc(*out, cap * sizeof(*e));
            if (!e) {
                snprintf(err, errlen, "out of memory");
                rc = -1;
                break;
            }
            *out = e;
        }
        struct seen_edge *e = &(*out)[(*n)++];
        snprintf(e->from, sizeof(e->from), "%s", rp__text(st, 0));
        snprintf(e->to, sizeof(e->to), "%s", rp__text(st, 1));
        e->n = sqlite3_column_int64(st, 2);
        e->from_i = state_index(e->from);
        e->to_i = state_index(e->to);
    }
    sqlite3_finalize(st);
    return rc;
}

static int64_t
edge_count(const struct seen_edge *e, size_t n, int from, int to)
{
    for (size_t i = 0; i < n; i++)
        if (e[i].from_i == from && e[i].to_i == to)
            return e[i].n;
    return 0;
}

/* Which side of the handshake a state belongs to, for the clusters:
 * 1 client (dialling), 2 server (accepting), 0 the lifecycle states. */
static int
state_side(const char *name)
{
    if (strstr(name, "ACCEPT"))
        return 2;
    if (strstr(name, "CONNECTING"))
        return 1;
    return 0;
}

static void
emit_state(struct report_buf *b, const char *name, int visited)
{
    report_buf_printf(b, "    \"%s\" [%s];\n", name,
                      visited ? "style=\"rounded,filled\", fillcolor=\"#cfe2f3\""
                              : "color=gray60, fontcolor=gray50");
}

int
report_state_dot(struct trace_db *db, int64_t run, int64_t conn,
                 struct report_buf *out, char *err, size_t errlen)
{
    struct seen_edge *edges;
    size_t nedges;
    if (load_edges(db, run, conn, &edges, &nedges, err, errlen) < 0)
        return -1;
    int ns = msgr_fsm_nstates();
    char *visited = calloc((size_t)ns + 1, 1);
    if (!visited) {
        free(edges);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < nedges; i++) {
        if (edges[i].from_i >= 0)
            visited[edges[i].from_i] = 1;
        if (edges[i].to_i >= 0)
            visited[edges[i].to_i] = 1;
    }

    /* A connection's graph does not name the connection (its file name
     * does): connections that took the same paths then have the same DOT
     * text, and report_write lays it out once. mclimit trades a little
     * crossing minimisation for a third of the layout time. */
    report_buf_printf(out, "digraph \"%s\" {\n", conn ? "states_conn"
                                                        : "states");
    report_buf_puts(out,
                    "  graph [rankdir=TB, mclimit=0.3, fontname=\"Helvetica\", "
                    "fontsize=12, labelloc=t, nodesep=0.3, ranksep=0.45, "
                    "label=\"");
    report_buf_puts(out, conn ? "one connection: " : "all connections: ");
    report_buf_puts(out, "solid = taken (count), dashed = allowed but never "
                         "taken, red = taken but not allowed\"];\n"
                         "  node [shape=box, style=rounded, "
                         "fontname=\"Helvetica\", fontsize=10];\n"
                         "  edge [fontname=\"Helvetica\", fontsize=9];\n");
    /* the two handshakes side by side, lifecycle states around them */
    static const char *const clusters[] = {NULL, "dialling (client side)",
                                           "accepting (server side)"};
    for (int side = 1; side <= 2; side++) {
        report_buf_printf(out,
                          "  subgraph cluster_%d {\n    label=\"%s\"; "
                          "color=gray80; fontsize=10;\n",
                          side, clusters[side]);
        for (int s = 0; s < ns; s++)
            if (state_side(msgr_fsm_state_name(s)) == side)
                emit_state(out, msgr_fsm_state_name(s), visited[s]);
        report_buf_puts(out, "  }\n");
    }
    for (int s = 0; s < ns; s++)
        if (state_side(msgr_fsm_state_name(s)) == 0)
            emit_state(out, msgr_fsm_state_name(s), visited[s]);
    /* states the trace names but this build does not know */
    for (size_t i = 0; i < nedges; i++) {
        const char *unknown[2] = {edges[i].from_i < 0 ? edges[i].from : NULL,
                                  edges[i].to_i < 0 ? edges[i].to : NULL};
        for (int k = 0; k < 2; k++) {
            if (!unknown[k])
                continue;
            report_buf_puts(out, "  \"");
            report_buf_dotstr(out, unknown[k]);
            report_buf_puts(out, "\" [color=red, fontcolor=red];\n");
        }
    }

    for (int s = 0; s < ns; s++) {
        unsigned next = msgr_fsm_state_next(s);
        for (int t = 0; t < ns; t++) {
            if (!(next & (1u << t)))
                continue;
            int64_t n = edge_count(edges, nedges, s, t);
            if (n > 0) {
                double w = 1.0 + 1.5 * log10((double)n);
                report_buf_printf(out,
                                  "  \"%s\" -> \"%s\" [label=\"%lld\", "
                                  "penwidth=%.2f, color=\"#1f4e79\"];\n",
                                  msgr_fsm_state_name(s),
                                  msgr_fsm_state_name(t), (long long)n, w);
            } else {
                report_buf_printf(out,
                                  "  \"%s\" -> \"%s\" [style=dashed, "
                                  "color=gray70, arrowsize=0.6];\n",
                                  msgr_fsm_state_name(s),
                                  msgr_fsm_state_name(t));
            }
        }
    }
    for (size_t i = 0; i < nedges; i++) {
        const struct seen_edge *e = &edges[i];
        int allowed = e->from_i >= 0 && e->to_i >= 0 &&
                      (msgr_fsm_state_next(e->from_i) & (1u << e->to_i));
        if (allowed)
            continue;
        report_buf_puts(out, "  \"");
        report_buf_dotstr(out, e->from);
        report_buf_puts(out, "\" -> \"");
        report_buf_dotstr(out, e->to);
        report_buf_printf(out,
                          "\" [label=\"%lld (not allowed)\", color=red, "
                          "fontcolor=red, penwidth=2];\n",
                          (long long)e->n);
    }
    report_buf_puts(out, "}\n");
    free(visited);
    free(edges);
    if (out->oom) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}
