/* Helpers the report parts share. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report_internal.h"

/*
 * rp_event: the trace's events as the reports read them. A run traced at
 * detail "sessions" keeps its routine message fates (sent, acked,
 * delivered) only in the message table; this view gives them back as msg
 * events (seq NULL: they sort first among events of the same time), so a
 * picture looks the same whatever the detail. A delivery is put on the
 * receiver's newest connection from the sender. Temporary: it lives in
 * this connection only, and read-only trace files can have it.
 */
static int
event_view(sqlite3 *h, char *err, size_t errlen)
{
    static const char sql[] =
        "CREATE TEMP VIEW IF NOT EXISTS rp_event AS "
        "SELECT run, seq, t_ns, node, conn, kind, state_from, state_to, tag,"
        " fate, msg_src, msg_id, msg_seq, bytes, err, detail FROM event "
        "UNION ALL "
        "SELECT m.run, NULL, m.sent_t, m.src, m.conn, 'msg', NULL, NULL, NULL,"
        " 'sent', m.src, m.msg_id, m.seq, m.size, NULL, NULL FROM message m"
        " JOIN run r ON r.id = m.run AND r.detail = 'sessions'"
        " WHERE m.sent_t IS NOT NULL "
        "UNION ALL "
        "SELECT m.run, NULL, m.acked_t, m.src, m.conn, 'msg', NULL, NULL, NULL,"
        " 'acked', m.src, m.msg_id, m.seq, m.size, NULL, NULL FROM message m"
        " JOIN run r ON r.id = m.run AND r.detail = 'sessions'"
        " WHERE m.acked_t IS NOT NULL "
        "UNION ALL "
        "SELECT m.run, NULL, m.delivered_t, m.dst,"
        " (SELECT c.id FROM conn c JOIN node s ON s.run = m.run AND"
        "   s.id = m.src WHERE c.run = m.run AND c.node = m.dst AND"
        "   c.peer_name = s.name ORDER BY c.id DESC LIMIT 1),"
        " 'msg', NULL, NULL, NULL, 'delivered', m.src, m.msg_id, m.seq,"
        " m.size, NULL, NULL FROM message m"
        " JOIN run r ON r.id = m.run AND r.detail = 'sessions'"
        " WHERE m.delivered_t IS NOT NULL";
    char *msg = NULL;
    if (sqlite3_exec(h, sql, NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, errlen, "trace view failed: %s", msg ? msg : "?");
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

int
rp__prepare(struct trace_db *db, const char *sql, sqlite3_stmt **st,
            char *err, size_t errlen)
{
    sqlite3 *h = (sqlite3 *)trace_sqlite(db);
    if (strstr(sql, "rp_event") && event_view(h, err, errlen) < 0) {
        *st = NULL;
        return -1;
    }
    if (sqlite3_prepare_v2(h, sql, -1, st, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "trace query failed: %s", sqlite3_errmsg(h));
        *st = NULL;
        return -1;
    }
    return 0;
}

const char *
rp__text(sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    return t ? (const char *)t : "";
}

int
rp__faults_load(struct trace_db *db, int64_t run, struct rp_fault **out,
                size_t *n, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    *out = NULL;
    *n = 0;
    if (rp__prepare(db,
                    "SELECT id, t_ns, coalesce(healed_t, -1), kind, "
                    "coalesce(targets, ''), coalesce(params, '') "
                    "FROM fault WHERE run = ?1 ORDER BY id",
                    &st, err, errlen) < 0)
        return -1;
    sqlite3_bind_int64(st, 1, run);
    size_t cap = 0;
    int rc = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            struct rp_fault *f = realloc(*out, cap * sizeof(*f));
            if (!f) {
                snprintf(err, errlen, "out of memory");
                rc = -1;
                break;
            }
            *out = f;
        }
        struct rp_fault *f = &(*out)[(*n)++];
        memset(f, 0, sizeof(*f));
        f->id = sqlite3_column_int64(st, 0);
        f->t_ns = sqlite3_column_int64(st, 1);
        f->healed_t = sqlite3_column_int64(st, 2);
        snprintf(f->kind, sizeof(f->kind), "%s", rp__text(st, 3));
        snprintf(f->targets, sizeof(f->targets), "%s", rp__text(st, 4));
        snprintf(f->params, sizeof(f->params), "%s", rp__text(st, 5));
    }
    sqlite3_finalize(st);
    return rc;
}

int64_t
rp__run_end_ns(struct trace_db *db, int64_t run)
{
    sqlite3_stmt *st;
    char err[256];
    int64_t end = 0;
    if (rp__prepare(db,
                    "SELECT max(coalesce((SELECT duration_ns FROM run "
                    "WHERE id = ?1), 0), coalesce((SELECT max(t_ns) FROM "
                    "event WHERE run = ?1), 0))",
                    &st, err, sizeof(err)) < 0)
        return 0;
    sqlite3_bind_int64(st, 1, run);
    if (sqlite3_step(st) == SQLITE_ROW)
        end = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return end;
}

void
rp__fmt_ns(int64_t ns, char *buf, size_t len)
{
    double v = (double)ns;
    const char *sign = ns < 0 ? "-" : "";
    if (v < 0)
        v = -v;
    if (v >= 1e9)
        snprintf(buf, len, "%s%.4gs", sign, v / 1e9);
    else if (v >= 1e6)
        snprintf(buf, len, "%s%.4gms", sign, v / 1e6);
    else if (v >= 1e3)
        snprintf(buf, len, "%s%.4gus", sign, v / 1e3);
    else if (v == 0)
        snprintf(buf, len, "0");
    else
        snprintf(buf, len, "%s%.0fns", sign, v);
}

int
rp__fault_names(const struct rp_fault *f, const char *node)
{
    size_t n = strlen(node);
    const char *p = f->targets;
    while ((p = strstr(p, node)) != NULL) {
        /* a whole name: "osd.1" must not match "osd.10" */
        int left = p == f->targets || p[-1] == ' ' || p[-1] == ',' ||
                   p[-1] == '|' || p[-1] == '>';
        char r = p[n];
        int right = r == '\0' || r == ' ' || r == ',' || r == '|' ||
                    r == '<';
        if (left && right)
            return 1;
        p += n;
    }
    return 0;
}
