/*
 * Reading a trace back: runs, a filtered event cursor, and the first
 * divergence between two runs (what replay names when a re-run differs).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trace_internal.h"

/* ------------------------------------------------------------------ runs */

#define RUN_COLUMNS                                                            \
    "id, scenario_path, scenario_text, scenario_hash, seed, stack,"            \
    " build_id, started_wall, duration_ns, fingerprint, verdict, exit_code,"   \
    " nevents, detail"

static char *
col_dup(sqlite3_stmt *st, int i)
{
    const unsigned char *s = sqlite3_column_text(st, i);
    return s ? strdup((const char *)s) : NULL;
}

static int64_t
col_int_or(sqlite3_stmt *st, int i, int64_t none)
{
    if (sqlite3_column_type(st, i) == SQLITE_NULL)
        return none;
    return sqlite3_column_int64(st, i);
}

static void
run_from_row(sqlite3_stmt *st, struct trace_run *r)
{
    memset(r, 0, sizeof(*r));
    r->id = sqlite3_column_int64(st, 0);
    r->scenario_path = col_dup(st, 1);
    r->scenario_text = col_dup(st, 2);
    r->scenario_hash = col_dup(st, 3);
    r->seed = (uint64_t)sqlite3_column_int64(st, 4);
    r->stack = col_dup(st, 5);
    r->build_id = col_dup(st, 6);
    r->started_wall = col_dup(st, 7);
    r->duration_ns = col_int_or(st, 8, -1);
    r->fingerprint = col_dup(st, 9);
    r->verdict = col_dup(st, 10);
    r->exit_code = (int)col_int_or(st, 11, -1);
    r->nevents = sqlite3_column_int64(st, 12);
    r->detail = col_dup(st, 13);
}

void
trace_run_fini(struct trace_run *r)
{
    if (!r)
        return;
    free(r->scenario_path);
    free(r->scenario_text);
    free(r->scenario_hash);
    free(r->stack);
    free(r->build_id);
    free(r->started_wall);
    free(r->fingerprint);
    free(r->verdict);
    free(r->detail);
    memset(r, 0, sizeof(*r));
}

int
trace_run_get(struct trace_db *db, int64_t id, struct trace_run *out)
{
    sqlite3_stmt *st = NULL;
    int e = 0, rc;

    pthread_mutex_lock(&db->lock);
    pthread_mutex_lock(&db->sql_lock);
    if (sqlite3_prepare_v2(db->sql,
                           "SELECT " RUN_COLUMNS " FROM run WHERE id = ?", -1,
                           &st, NULL) != SQLITE_OK) {
        e = trace__sqlfail(db, "read run");
        goto out;
    }
    sqlite3_bind_int64(st, 1, id);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        run_from_row(st, out);
    else if (rc == SQLITE_DONE)
        e = trace__fail(db, TRACE_ENOTFOUND, "%s: no run %lld", db->path,
                        (long long)id);
    else
        e = trace__sqlfail(db, "read run");
out:
    sqlite3_finalize(st);
    pthread_mutex_unlock(&db->sql_lock);
    pthread_mutex_unlock(&db->lock);
    return e;
}

void
trace_runs_free(struct trace_run *runs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        trace_run_fini(&runs[i]);
    free(runs);
}

int
trace_run_latest(struct trace_db *db, int64_t *id)
{
    sqlite3_stmt *st = NULL;
    int e = 0;

    *id = 0;
    pthread_mutex_lock(&db->lock);
    pthread_mutex_lock(&db->sql_lock);
    if (sqlite3_prepare_v2(db->sql, "SELECT max(id) FROM run", -1, &st,
                           NULL) != SQLITE_OK) {
        e = trace__sqlfail(db, "latest run");
    } else if (sqlite3_step(st) == SQLITE_ROW &&
               sqlite3_column_type(st, 0) != SQLITE_NULL) {
        *id = sqlite3_column_int64(st, 0);
    } else {
        e = trace__fail(db, TRACE_ENOTFOUND, "%s holds no run", db->path);
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&db->sql_lock);
    pthread_mutex_unlock(&db->lock);
    return e;
}

int
trace_runs_list(struct trace_db *db, struct trace_run **out, size_t *n)
{
    sqlite3_stmt *st = NULL;
    struct trace_run *v = NULL;
    size_t len = 0, cap = 0;
    int e = 0, rc;

    *out = NULL;
    *n = 0;
    pthread_mutex_lock(&db->lock);
    pthread_mutex_lock(&db->sql_lock);
    if (sqlite3_prepare_v2(db->sql,
                           "SELECT " RUN_COLUMNS " FROM run ORDER BY id", -1,
                           &st, NULL) != SQLITE_OK) {
        e = trace__sqlfail(db, "list runs");
        goto out;
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (len == cap) {
            cap = cap ? 2 * cap : 8;
            struct trace_run *p = realloc(v, cap * sizeof(*p));
            if (!p) {
                e = TRACE_ENOMEM;
                goto out;
            }
            v = p;
        }
        run_from_row(st, &v[len++]);
    }
    if (rc != SQLITE_DONE)
        e = trace__sqlfail(db, "list runs");
out:
    sqlite3_finalize(st);
    pthread_mutex_unlock(&db->sql_lock);
    pthread_mutex_unlock(&db->lock);
    if (e) {
        trace_runs_free(v, len);
        return e;
    }
    *out = v;
    *n = len;
    return 0;
}

/* ---------------------------------------------------------------- cursor */

void
trace_filter_init(struct trace_filter *f)
{
    memset(f, 0, sizeof(*f));
    f->from_ns = INT64_MIN;
    f->until_ns = INT64_MAX;
}

/* The first character of a name: "osd.", "client.", ... a word then '.'. */
static int
starts_name(const char *s)
{
    const char *p = s;

    while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z'))
        p++;
    return p > s && *p == '.' && p[1] != 0;
}

int
trace_conn_spec_parse(const char *spec, char *a, size_t alen, char *b,
                      size_t blen)
{
    const char *dash;

    if (!spec || !starts_name(spec))
        return TRACE_EINVAL;
    for (dash = strchr(spec, '-'); dash; dash = strchr(dash + 1, '-')) {
        if (!starts_name(dash + 1))
            continue;
        size_t n = (size_t)(dash - spec);
        if (n + 1 > alen || strlen(dash + 1) + 1 > blen)
            return TRACE_EINVAL;
        memcpy(a, spec, n);
        a[n] = 0;
        strcpy(b, dash + 1);
        return 0;
    }
    return TRACE_EINVAL;
}

struct trace_cursor {
    struct trace_db *db;
    sqlite3_stmt *st;
};

/* clang-format off */
static const char cursor_sql[] =
    "SELECT e.run, e.seq, e.t_ns, e.node, e.conn, n.name, c.peer_name,"
    " e.kind, e.state_from, e.state_to, e.tag, e.fate, e.msg_src, e.msg_id,"
    " e.msg_seq, e.bytes, e.err, e.detail"
    " FROM event e"
    " LEFT JOIN node n ON n.run = e.run AND n.id = e.node"
    " LEFT JOIN conn c ON c.run = e.run AND c.id = e.conn"
    " WHERE e.run = ?1 AND e.t_ns >= ?2 AND e.t_ns <= ?3"
    " AND (?4 IS NULL OR n.name = ?4)"
    " AND (?5 IS NULL OR (n.name = ?5 AND c.peer_name = ?6)"
    "                 OR (n.name = ?6 AND c.peer_name = ?5))"
    " AND (?7 IS NULL OR e.kind = ?7)"
    " ORDER BY e.seq";
/* clang-format on */

int
trace_cursor_open(struct trace_db *db, int64_t run,
                  const struct trace_filter *f, struct trace_cursor **out)
{
    struct trace_filter all;
    struct trace_cursor *c;

    if (!f) {
        trace_filter_init(&all);
        f = &all;
    }
    if ((f->conn_a == NULL) != (f->conn_b == NULL))
        return TRACE_EINVAL;
    c = calloc(1, sizeof(*c));
    if (!c)
        return TRACE_ENOMEM;
    c->db = db;
    pthread_mutex_lock(&db->lock);
    pthread_mutex_lock(&db->sql_lock);
    if (sqlite3_prepare_v2(db->sql, cursor_sql, -1, &c->st, NULL) !=
        SQLITE_OK) {
        int e = trace__sqlfail(db, "event cursor");
        pthread_mutex_unlock(&db->sql_lock);
    pthread_mutex_unlock(&db->lock);
        free(c);
        return e;
    }
    pthread_mutex_unlock(&db->sql_lock);
    pthread_mutex_unlock(&db->lock);
    sqlite3_bind_int64(c->st, 1, run);
    sqlite3_bind_int64(c->st, 2, f->from_ns);
    sqlite3_bind_int64(c->st, 3, f->until_ns);
    if (f->node)
        sqlite3_bind_text(c->st, 4, f->node, -1, SQLITE_TRANSIENT);
    if (f->conn_a) {
        sqlite3_bind_text(c->st, 5, f->conn_a, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(c->st, 6, f->conn_b, -1, SQLITE_TRANSIENT);
    }
    if (f->kind)
        sqlite3_bind_text(c->st, 7, f->kind, -1, SQLITE_TRANSIENT);
    *out = c;
    return 0;
}

static const char *
col_text(sqlite3_stmt *st, int i)
{
    return (const char *)sqlite3_column_text(st, i);
}

static void
event_from_row(sqlite3_stmt *st, struct trace_event *ev)
{
    ev->run = sqlite3_column_int64(st, 0);
    ev->seq = sqlite3_column_int64(st, 1);
    ev->t_ns = sqlite3_column_int64(st, 2);
    ev->node = col_int_or(st, 3, 0);
    ev->conn = col_int_or(st, 4, 0);
    ev->node_name = col_text(st, 5);
    ev->peer_name = col_text(st, 6);
    ev->kind = col_text(st, 7);
    ev->state_from = col_text(st, 8);
    ev->state_to = col_text(st, 9);
    ev->tag = col_text(st, 10);
    ev->fate = col_text(st, 11);
    ev->msg_src = col_int_or(st, 12, -1);
    ev->msg_id = col_int_or(st, 13, -1);
    ev->msg_seq = col_int_or(st, 14, -1);
    ev->bytes = col_int_or(st, 15, -1);
    ev->err = col_int_or(st, 16, 0);
    ev->detail = col_text(st, 17);
}

int
trace_cursor_next(struct trace_cursor *c, struct trace_event *ev)
{
    int rc = sqlite3_step(c->st);

    if (rc == SQLITE_ROW) {
        event_from_row(c->st, ev);
        return 1;
    }
    if (rc == SQLITE_DONE)
        return 0;
    pthread_mutex_lock(&c->db->lock);
    pthread_mutex_lock(&c->db->sql_lock);
    rc = trace__sqlfail(c->db, "read events");
    pthread_mutex_unlock(&c->db->sql_lock);
    pthread_mutex_unlock(&c->db->lock);
    return rc;
}

void
trace_cursor_free(struct trace_cursor *c)
{
    if (!c)
        return;
    sqlite3_finalize(c->st);
    free(c);
}

/* ---------------------------------------------------------------- format */

/* Appends to buf at *off, never past len. */
static void
put(char *buf, size_t len, size_t *off, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
put(char *buf, size_t len, size_t *off, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (*off >= len)
        return;
    va_start(ap, fmt);
    n = vsnprintf(buf + *off, len - *off, fmt, ap);
    va_end(ap);
    if (n > 0)
        *off += (size_t)n;
}

int
trace_event_format(const struct trace_event *ev, char *buf, size_t len)
{
    size_t off = 0;
    int64_t t = ev->t_ns;

    if (!len)
        return 0;
    buf[0] = 0;
    put(buf, len, &off, "%s%lld.%09lld %s", t < 0 ? "-" : "",
        (long long)(t < 0 ? -t : t) / 1000000000,
        (long long)(t < 0 ? -t : t) % 1000000000,
        ev->node_name ? ev->node_name : "-");
    if (ev->conn)
        put(buf, len, &off, " c%lld", (long long)ev->conn);
    if (ev->peer_name)
        put(buf, len, &off, "(%s)", ev->peer_name);
    put(buf, len, &off, " %s", ev->kind ? ev->kind : "?");
    if (ev->state_from || ev->state_to)
        put(buf, len, &off, " %s -> %s", ev->state_from ? ev->state_from : "?",
            ev->state_to ? ev->state_to : "?");
    if (ev->tag)
        put(buf, len, &off, " %s", ev->tag);
    if (ev->fate)
        put(buf, len, &off, " %s", ev->fate);
    if (ev->msg_src >= 0)
        put(buf, len, &off, " src=%lld", (long long)ev->msg_src);
    if (ev->msg_id >= 0)
        put(buf, len, &off, " id=%lld", (long long)ev->msg_id);
    if (ev->msg_seq >= 0)
        put(buf, len, &off, " seq=%lld", (long long)ev->msg_seq);
    if (ev->bytes >= 0)
        put(buf, len, &off, " %lldB", (long long)ev->bytes);
    if (ev->err)
        put(buf, len, &off, " err=%lld", (long long)ev->err);
    if (ev->detail)
        put(buf, len, &off, " (%s)", ev->detail);
    return (int)(off < len ? off : len - 1);
}

/* ------------------------------------------------------------------ diff */

/* Columns of the cursor that must match (all but run and seq). */
static int
rows_equal(sqlite3_stmt *a, sqlite3_stmt *b)
{
    int n = sqlite3_column_count(a);

    for (int i = 2; i < n; i++) {
        int ta = sqlite3_column_type(a, i), tb = sqlite3_column_type(b, i);
        if (ta != tb)
            return 0;
        if (ta == SQLITE_NULL)
            continue;
        if (ta == SQLITE_INTEGER) {
            if (sqlite3_column_int64(a, i) != sqlite3_column_int64(b, i))
                return 0;
            continue;
        }
        int la = sqlite3_column_bytes(a, i), lb = sqlite3_column_bytes(b, i);
        const void *pa = sqlite3_column_blob(a, i);
        const void *pb = sqlite3_column_blob(b, i);
        if (la != lb || (la && memcmp(pa, pb, (size_t)la) != 0))
            return 0;
    }
    return 1;
}

static void
diff_side(sqlite3_stmt *st, int have, char *line, size_t len, int64_t *t)
{
    struct trace_event ev;

    if (!have) {
        snprintf(line, len, "(run ended)");
        *t = -1;
        return;
    }
    event_from_row(st, &ev);
    trace_event_format(&ev, line, len);
    *t = ev.t_ns;
}

int
trace_diff_runs(struct trace_db *db_a, int64_t run_a, struct trace_db *db_b,
                int64_t run_b, struct trace_divergence *out)
{
    struct trace_cursor *ca = NULL, *cb = NULL;
    int e, ra, rb;

    memset(out, 0, sizeof(*out));
    if ((e = trace_cursor_open(db_a, run_a, NULL, &ca)) ||
        (e = trace_cursor_open(db_b, run_b, NULL, &cb)))
        goto out;
    for (int64_t i = 0;; i++) {
        ra = sqlite3_step(ca->st);
        rb = sqlite3_step(cb->st);
        if ((ra != SQLITE_ROW && ra != SQLITE_DONE) ||
            (rb != SQLITE_ROW && rb != SQLITE_DONE)) {
            struct trace_db *bad = ra != SQLITE_ROW && ra != SQLITE_DONE
                                       ? db_a
                                       : db_b;
            pthread_mutex_lock(&bad->lock);
    pthread_mutex_lock(&bad->sql_lock);
            e = trace__sqlfail(bad, "diff runs");
            pthread_mutex_unlock(&bad->sql_lock);
    pthread_mutex_unlock(&bad->lock);
            goto out;
        }
        if (ra == SQLITE_DONE && rb == SQLITE_DONE)
            break;
        if (ra == SQLITE_ROW && rb == SQLITE_ROW && rows_equal(ca->st, cb->st))
            continue;
        out->found = 1;
        out->index = i;
        out->have_a = ra == SQLITE_ROW;
        out->have_b = rb == SQLITE_ROW;
        diff_side(ca->st, out->have_a, out->line_a, sizeof(out->line_a),
                  &out->t_a);
        diff_side(cb->st, out->have_b, out->line_b, sizeof(out->line_b),
                  &out->t_b);
        break;
    }
out:
    trace_cursor_free(ca);
    trace_cursor_free(cb);
    return e;
}
