/*
 * The trace file: open (schema and version checks), the batched writer,
 * close.
 *
 * Every row goes through a statement prepared once at open and reset per
 * row, inside one transaction per TRACE_BATCH_ROWS rows: sqlite's cost
 * per row is then a b-tree append, not a journal sync.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "msgr/msgr.h"
#include "trace_internal.h"

/* ---------------------------------------------------------------- errors */

const char *
trace_strerror(int err)
{
    switch (err) {
#define TRACE_ERR_CASE_(name, value, msg)                                      \
    case value:                                                                \
        return msg;
        TRACE_ERR_MAP(TRACE_ERR_CASE_)
#undef TRACE_ERR_CASE_
    case 0:
        return "success";
    default:
        return "unknown trace error";
    }
}

int
trace__fail(struct trace_db *db, int code, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(db->errmsg, sizeof(db->errmsg), fmt, ap);
    va_end(ap);
    return code;
}

int
trace__sqlfail(struct trace_db *db, const char *what)
{
    return trace__fail(db, TRACE_EIO, "%s: %s: %s", db->path, what,
                       sqlite3_errmsg(db->sql));
}

const char *
trace_errmsg(struct trace_db *db)
{
    return db ? db->errmsg : "";
}

struct sqlite3 *
trace_sqlite(struct trace_db *db)
{
    return db->sql;
}

/* ------------------------------------------------------------ statements */

/* clang-format off */
static const char *const stmt_sql[ST_N] = {
    [ST_BEGIN] = "BEGIN",
    [ST_COMMIT] = "COMMIT",
    [ST_RUN_INS] =
        "INSERT INTO run(scenario_path, scenario_text, scenario_hash, seed,"
        " stack, build_id, started_wall) VALUES (?,?,?,?,?,?,?)",
    [ST_RUN_END] =
        "UPDATE run SET duration_ns = ?2, fingerprint = ?3, verdict = ?4,"
        " exit_code = ?5, nevents = ?6 WHERE id = ?1",
    [ST_NODE_INS] =
        "INSERT INTO node(run, id, name, entity_type, entity_num, policy,"
        " addr, nonce, incarnation) VALUES (?,?,?,?,?,?,?,?,?)",
    [ST_CONN_INS] =
        "INSERT INTO conn(run, id, node, node_idx, msgr_id, peer_name,"
        " peer_addr, policy, first_t) VALUES (?,?,?,?,?,?,?,?,?)",
    [ST_CONN_PEER] =
        "UPDATE conn SET peer_name = coalesce(?3, peer_name),"
        " peer_addr = coalesce(?4, peer_addr) WHERE run = ?1 AND id = ?2",
    [ST_CONN_END] =
        "UPDATE conn SET last_t = ?3, last_state = ?4"
        " WHERE run = ?1 AND id = ?2",
    [ST_EVENT_INS] =
        "INSERT INTO event(run, seq, t_ns, node, conn, kind, state_from,"
        " state_to, tag, fate, msg_src, msg_id, msg_seq, bytes, err, detail)"
        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
    [ST_FAULT_INS] =
        "INSERT INTO fault(run, id, t_ns, kind, targets, params)"
        " VALUES (?,?,?,?,?,?)",
    [ST_FAULT_HEAL] =
        "UPDATE fault SET healed_t = ?3 WHERE run = ?1 AND id = ?2",
    /* first times kept, counters added, identity filled once known */
    [ST_MSG_FATE] =
        "INSERT INTO message(run, src, msg_id, dst, conn, seq, size,"
        " queued_t, sent_t, acked_t, delivered_t, dropped_t, sends,"
        " deliveries, duplicates) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
        " ON CONFLICT(run, src, msg_id) DO UPDATE SET"
        " dst = coalesce(dst, excluded.dst),"
        " conn = coalesce(conn, excluded.conn),"
        " seq = coalesce(seq, excluded.seq),"
        " size = coalesce(size, excluded.size),"
        " queued_t = coalesce(queued_t, excluded.queued_t),"
        " sent_t = coalesce(sent_t, excluded.sent_t),"
        " acked_t = coalesce(acked_t, excluded.acked_t),"
        " delivered_t = coalesce(delivered_t, excluded.delivered_t),"
        " dropped_t = coalesce(dropped_t, excluded.dropped_t),"
        " sends = sends + excluded.sends,"
        " deliveries = deliveries + excluded.deliveries,"
        " duplicates = duplicates + excluded.duplicates",
    [ST_MSG_CSUM] =
        "INSERT INTO message(run, src, msg_id, checksum) VALUES (?,?,?,?)"
        " ON CONFLICT(run, src, msg_id) DO UPDATE SET"
        " checksum = excluded.checksum",
    [ST_EXP_INS] =
        "INSERT INTO expectation(run, id, line, text, verdict, evidence)"
        " VALUES (?,?,?,?,?,?)",
};
/* clang-format on */

static int
prepare_all(struct trace_db *db)
{
    for (int i = 0; i < ST_N; i++) {
        if (sqlite3_prepare_v3(db->sql, stmt_sql[i], -1,
                               SQLITE_PREPARE_PERSISTENT, &db->st[i],
                               NULL) != SQLITE_OK)
            return trace__sqlfail(db, "prepare");
    }
    return 0;
}

/* Runs a bound cached statement to completion and resets it. */
static int
step_done(struct trace_db *db, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);
    int e = 0;

    if (rc != SQLITE_DONE)
        e = trace__sqlfail(db, what);
    sqlite3_reset(st);
    return e;
}

/*
 * Text is bound SQLITE_STATIC (not copied): every statement is stepped
 * and reset before the call that bound it returns, while the caller's
 * strings are still alive. Every writer statement binds all of its
 * parameters on each use (NULL included), so nothing stale survives a
 * reset.
 */
static void
bind_text(sqlite3_stmt *st, int i, const char *s)
{
    if (s)
        sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

/* v, or NULL when v equals none */
static void
bind_opt(sqlite3_stmt *st, int i, int64_t v, int64_t none)
{
    if (v == none)
        sqlite3_bind_null(st, i);
    else
        sqlite3_bind_int64(st, i, v);
}

/* ------------------------------------------------------------- batching */

static int
tx_begin(struct trace_db *db)
{
    int e;

    if (db->in_tx)
        return 0;
    e = step_done(db, db->st[ST_BEGIN], "begin");
    if (e == 0)
        db->in_tx = 1;
    db->batch_rows = 0;
    return e;
}

static int
tx_commit(struct trace_db *db)
{
    int e;

    if (!db->in_tx)
        return 0;
    e = step_done(db, db->st[ST_COMMIT], "commit");
    db->in_tx = 0;
    return e;
}

/* One row written: commit the batch when it is full. */
static int
row_written(struct trace_db *db)
{
    if (++db->batch_rows < TRACE_BATCH_ROWS)
        return 0;
    int e = tx_commit(db);
    return e ? e : tx_begin(db);
}

int
trace__row_written(struct trace_db *db)
{
    return row_written(db);
}

int
trace_flush(struct trace_db *db)
{
    int e;

    pthread_mutex_lock(&db->lock);
    e = tx_commit(db);
    if (e == 0 && db->run_open)
        e = tx_begin(db);
    pthread_mutex_unlock(&db->lock);
    return e;
}

/* ------------------------------------------------------------------ open */

static int
open_fail(struct trace_open_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
open_fail(struct trace_open_error *err, int code, const char *fmt, ...)
{
    va_list ap;

    if (err) {
        err->code = code;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
        va_end(ap);
    }
    return code;
}

static int
pragma_int(sqlite3 *sql, const char *q, int64_t *out)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(sql, q, -1, &st, NULL);

    if (rc != SQLITE_OK)
        return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *out = sqlite3_column_int64(st, 0);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    return rc;
}

static int
create_schema(struct trace_db *db, struct trace_open_error *err)
{
    char pragmas[128];
    char *msg = NULL;

    snprintf(pragmas, sizeof(pragmas),
             "PRAGMA application_id = %d; PRAGMA user_version = %d;",
             TRACE_APPLICATION_ID, TRACE_SCHEMA_VERSION);
    if (sqlite3_exec(db->sql, "BEGIN", NULL, NULL, &msg) != SQLITE_OK ||
        sqlite3_exec(db->sql, trace__schema_sql, NULL, NULL, &msg) !=
            SQLITE_OK ||
        sqlite3_exec(db->sql, pragmas, NULL, NULL, &msg) != SQLITE_OK ||
        sqlite3_exec(db->sql, "COMMIT", NULL, NULL, &msg) != SQLITE_OK) {
        open_fail(err, TRACE_EIO, "%s: cannot create the trace schema: %s",
                  db->path, msg ? msg : sqlite3_errmsg(db->sql));
        sqlite3_free(msg);
        return TRACE_EIO;
    }
    return 0;
}

/* Identity and version of an opened file; creates the schema in an empty
 * file opened for writing. */
static int
check_file(struct trace_db *db, struct trace_open_error *err)
{
    int64_t app = 0, ver = 0, nobj = 0;
    const char *p = db->path;

    if (pragma_int(db->sql, "PRAGMA application_id", &app) != SQLITE_OK ||
        pragma_int(db->sql, "PRAGMA user_version", &ver) != SQLITE_OK ||
        pragma_int(db->sql, "SELECT count(*) FROM sqlite_schema", &nobj) !=
            SQLITE_OK)
        return open_fail(err, TRACE_ENOTTRACE,
                         "%s: not a msgrsim trace (not an sqlite database: "
                         "%s); pass a trace.db written by 'msgrsim run'",
                         p, sqlite3_errmsg(db->sql));
    if (app == 0 && ver == 0 && nobj == 0) {
        if (db->readonly)
            return open_fail(err, TRACE_ENOTTRACE,
                             "%s: empty file, not a msgrsim trace; pass a "
                             "trace.db written by 'msgrsim run'",
                             p);
        return create_schema(db, err);
    }
    if (app != TRACE_APPLICATION_ID)
        return open_fail(err, TRACE_ENOTTRACE,
                         "%s: not a msgrsim trace (application_id 0x%llx, "
                         "a msgrsim trace has 0x%x); pass a trace.db "
                         "written by 'msgrsim run', or another path",
                         p, (unsigned long long)app, TRACE_APPLICATION_ID);
    if (ver > TRACE_SCHEMA_VERSION)
        return open_fail(err, TRACE_ENEWER,
                         "%s: trace schema version %lld is newer than this "
                         "msgrsim reads (%d); use a newer msgrsim build, or "
                         "re-run the scenario with this one",
                         p, (long long)ver, TRACE_SCHEMA_VERSION);
    if (ver < TRACE_SCHEMA_VERSION)
        return open_fail(err, TRACE_EOLDER,
                         "%s: trace schema version %lld is older than this "
                         "msgrsim reads (%d); re-run the scenario to write "
                         "it again",
                         p, (long long)ver, TRACE_SCHEMA_VERSION);
    return 0;
}

static int
open_sqlite(struct trace_db *db, const char *path, int flags,
            struct trace_open_error *err)
{
    int of = db->readonly ? SQLITE_OPEN_READONLY
                          : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;

    if (db->readonly && access(path, F_OK) != 0)
        return open_fail(err, TRACE_ENOENT,
                         "%s: no such trace file; write one with "
                         "'msgrsim run SCENARIO --trace %s'",
                         path, path);
    (void)flags;
    if (sqlite3_open_v2(path, &db->sql, of | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK)
        return open_fail(err, TRACE_EIO, "%s: cannot open: %s", path,
                         db->sql ? sqlite3_errmsg(db->sql) : "out of memory");
    sqlite3_busy_timeout(db->sql, 5000);
    return 0;
}

/* WAL + synchronous=NORMAL: commits do not wait for the disk, and a
 * crash can lose the last batches but never corrupts the file. */
static int
set_write_mode(struct trace_db *db, struct trace_open_error *err)
{
    char *msg = NULL;

    if (sqlite3_exec(db->sql,
                     "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;"
                     " PRAGMA cache_size = -16384;",
                     NULL, NULL, &msg) != SQLITE_OK) {
        open_fail(err, TRACE_EIO, "%s: cannot set the journal mode: %s",
                  db->path, msg ? msg : "?");
        sqlite3_free(msg);
        return TRACE_EIO;
    }
    return 0;
}

static void
free_db(struct trace_db *db)
{
    for (int i = 0; i < ST_N; i++)
        sqlite3_finalize(db->st[i]);
    trace__segment_fini(db);
    if (db->sql)
        sqlite3_close(db->sql);
    for (size_t i = 0; i < db->nnodes; i++) {
        free(db->nodes[i]->conn_by_msgr);
        free(db->nodes[i]);
    }
    free(db->nodes);
    for (size_t i = 0; i < db->nconns; i++) {
        free(db->conns[i].peer_name);
        free(db->conns[i].peer_addr);
    }
    free(db->conns);
    pthread_mutex_destroy(&db->lock);
    free(db->path);
    free(db);
}

struct trace_db *
trace_open(const char *path, int flags, struct trace_open_error *err)
{
    struct trace_db *db;

    if (err) {
        err->code = 0;
        err->msg[0] = 0;
    }
    if (!path) {
        open_fail(err, TRACE_EINVAL, "trace_open: no path");
        return NULL;
    }
    db = calloc(1, sizeof(*db));
    if (!db || !(db->path = strdup(path))) {
        free(db);
        open_fail(err, TRACE_ENOMEM, "%s: out of memory", path);
        return NULL;
    }
    pthread_mutex_init(&db->lock, NULL);
    db->readonly = (flags & TRACE_OPEN_READONLY) != 0;
    if (open_sqlite(db, path, flags, err) || check_file(db, err) ||
        (!db->readonly && set_write_mode(db, err))) {
        free_db(db);
        return NULL;
    }
    if (!db->readonly && prepare_all(db)) {
        open_fail(err, TRACE_EIO, "%s", db->errmsg);
        free_db(db);
        return NULL;
    }
    return db;
}

void
trace_close(struct trace_db *db)
{
    if (!db)
        return;
    if (db->run_open)
        trace_run_end(db, db->run, -1, NULL, "aborted", -1);
    pthread_mutex_lock(&db->lock);
    tx_commit(db);
    pthread_mutex_unlock(&db->lock);
    for (int i = 0; i < ST_N; i++) {
        sqlite3_finalize(db->st[i]);
        db->st[i] = NULL;
    }
    trace__segment_fini(db);
    /* back to one self-contained file (checkpoints the WAL); fails
     * harmlessly when another connection still has the file open */
    if (!db->readonly)
        sqlite3_exec(db->sql, "PRAGMA journal_mode = DELETE", NULL, NULL,
                     NULL);
    free_db(db);
}

/* ------------------------------------------------------------------ runs */

int
trace__check_run(struct trace_db *db, int64_t run)
{
    if (db->readonly)
        return trace__fail(db, TRACE_ESTATE, "%s: opened read-only",
                           db->path);
    if (!db->run_open || run != db->run)
        return trace__fail(db, TRACE_ESTATE, "%s: run %lld is not open",
                           db->path, (long long)run);
    return 0;
}

/* FNV-1a 64 of the scenario text, as hex: identifies the text, not a
 * security measure. */
static void
text_hash(const char *s, char out[17])
{
    uint64_t h = 0xcbf29ce484222325ull;

    for (; s && *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x00000100000001b3ull;
    }
    snprintf(out, 17, "%016llx", (unsigned long long)h);
}

static void
forget_conns(struct trace_db *db)
{
    for (size_t i = 0; i < db->nconns; i++) {
        free(db->conns[i].peer_name);
        free(db->conns[i].peer_addr);
    }
    db->nconns = 0;
}

int
trace_run_begin(struct trace_db *db, const struct trace_run_info *info,
                int64_t *run)
{
    sqlite3_stmt *st = db->st[ST_RUN_INS];
    char hash[17];
    int e;

    if (!info || !run)
        return TRACE_EINVAL;
    pthread_mutex_lock(&db->lock);
    if (db->readonly || db->run_open) {
        e = trace__fail(db, TRACE_ESTATE, "%s: %s", db->path,
                        db->readonly ? "opened read-only"
                                     : "a run is already open");
        goto out;
    }
    e = tx_begin(db);
    if (e)
        goto out;
    bind_text(st, 1, info->scenario_path);
    bind_text(st, 2, info->scenario_text);
    if (!info->scenario_hash)
        text_hash(info->scenario_text, hash);
    bind_text(st, 3, info->scenario_hash ? info->scenario_hash : hash);
    sqlite3_bind_int64(st, 4, (int64_t)info->seed);
    bind_text(st, 5, info->stack ? info->stack : "sim");
    bind_text(st, 6, info->build_id);
    bind_text(st, 7, info->started_wall);
    e = step_done(db, st, "insert run");
    if (e)
        goto out;
    *run = sqlite3_last_insert_rowid(db->sql);
    db->run = *run;
    db->run_open = 1;
    db->sticky_err = 0;
    db->next_seq = db->next_node = db->next_conn = 1;
    db->next_fault = db->next_exp = 1;
    forget_conns(db);
    e = row_written(db);
out:
    pthread_mutex_unlock(&db->lock);
    return e;
}

static int
finish_conns(struct trace_db *db)
{
    sqlite3_stmt *st = db->st[ST_CONN_END];

    for (size_t i = 0; i < db->nconns; i++) {
        const struct trace_conn *c = &db->conns[i];
        sqlite3_bind_int64(st, 1, db->run);
        sqlite3_bind_int64(st, 2, (int64_t)i + 1);
        sqlite3_bind_int64(st, 3, c->last_t);
        bind_text(st, 4, c->last_state[0] ? c->last_state : NULL);
        int e = step_done(db, st, "update conn");
        if (e)
            return e;
    }
    return 0;
}

int
trace_run_end(struct trace_db *db, int64_t run, int64_t duration_ns,
              const char *fingerprint, const char *verdict, int exit_code)
{
    sqlite3_stmt *st = db->st[ST_RUN_END];
    int e;

    pthread_mutex_lock(&db->lock);
    e = trace__check_run(db, run);
    if (e)
        goto out;
    e = finish_conns(db);
    if (e)
        goto close;
    sqlite3_bind_int64(st, 1, run);
    bind_opt(st, 2, duration_ns, -1);
    bind_text(st, 3, fingerprint);
    bind_text(st, 4, verdict ? verdict : "unknown");
    sqlite3_bind_int64(st, 5, exit_code);
    sqlite3_bind_int64(st, 6, db->next_seq - 1);
    e = step_done(db, st, "update run");
close:
    db->run_open = 0;
    if (tx_commit(db) && !e)
        e = TRACE_EIO;
    /* a write that failed inside a tracer callback had nobody to tell */
    if (!e && db->sticky_err)
        e = db->sticky_err;
out:
    pthread_mutex_unlock(&db->lock);
    return e;
}

/* ----------------------------------------------------------------- nodes */

static int
node_remember(struct trace_db *db, const struct trace_node_info *info,
              int64_t id)
{
    struct trace_node *n;

    if (db->nnodes == db->capnodes) {
        size_t cap = db->capnodes ? 2 * db->capnodes : 16;
        struct trace_node **p = realloc(db->nodes, cap * sizeof(*p));
        if (!p)
            return TRACE_ENOMEM;
        db->nodes = p;
        db->capnodes = cap;
    }
    n = calloc(1, sizeof(*n));
    if (!n)
        return TRACE_ENOMEM;
    n->db = db;
    n->run = db->run;
    n->id = id;
    n->entity_type = info->entity_type;
    n->entity_num = info->entity_num;
    snprintf(n->name, sizeof(n->name), "%s", info->name);
    db->nodes[db->nnodes++] = n;
    return 0;
}

int
trace_node_add(struct trace_db *db, int64_t run,
               const struct trace_node_info *info, int64_t *id)
{
    sqlite3_stmt *st = db->st[ST_NODE_INS];
    int64_t nid;
    int e;

    if (!info || !info->name)
        return TRACE_EINVAL;
    pthread_mutex_lock(&db->lock);
    e = trace__check_run(db, run);
    if (e)
        goto out;
    nid = db->next_node;
    e = node_remember(db, info, nid);
    if (e)
        goto out;
    sqlite3_bind_int64(st, 1, run);
    sqlite3_bind_int64(st, 2, nid);
    bind_text(st, 3, info->name);
    bind_text(st, 4, msgr_entity_type_name(info->entity_type));
    sqlite3_bind_int64(st, 5, info->entity_num);
    bind_text(st, 6, info->policy);
    bind_text(st, 7, info->addr);
    sqlite3_bind_int64(st, 8, (int64_t)info->nonce);
    sqlite3_bind_int64(st, 9, info->incarnation);
    e = step_done(db, st, "insert node");
    if (e)
        goto out;
    db->next_node++;
    if (id)
        *id = nid;
    e = row_written(db);
out:
    pthread_mutex_unlock(&db->lock);
    return e;
}

struct trace_node *
trace__node_get(struct trace_db *db, int64_t run, int64_t id)
{
    for (size_t i = 0; i < db->nnodes; i++)
        if (db->nodes[i]->run == run && db->nodes[i]->id == id)
            return db->nodes[i];
    return NULL;
}

int64_t
trace__node_by_entity(struct trace_db *db, uint8_t type, int64_t num)
{
    /* the latest incarnation: search from the end */
    for (size_t i = db->nnodes; i-- > 0;) {
        const struct trace_node *n = db->nodes[i];
        if (n->run != db->run)
            break;
        if (n->entity_type == type && n->entity_num == num)
            return n->id;
    }
    return 0;
}

int64_t
trace__node_by_name(struct trace_db *db, const char *name)
{
    for (size_t i = db->nnodes; i-- > 0;) {
        const struct trace_node *n = db->nodes[i];
        if (n->run != db->run)
            break;
        if (strcmp(n->name, name) == 0)
            return n->id;
    }
    return 0;
}

int
trace_node_find(struct trace_db *db, int64_t run, const char *name,
                int64_t *id)
{
    int e;

    pthread_mutex_lock(&db->lock);
    e = trace__check_run(db, run);
    if (!e) {
        *id = trace__node_by_name(db, name);
        if (!*id)
            e = trace__fail(db, TRACE_ENOTFOUND, "%s: run %lld: no node %s",
                            db->path, (long long)run, name);
    }
    pthread_mutex_unlock(&db->lock);
    return e;
}

/* ----------------------------------------------------------- connections */

static char *
dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static int
conns_grow(struct trace_db *db)
{
    if (db->nconns < db->capconns)
        return 0;
    size_t cap = db->capconns ? 2 * db->capconns : 64;
    struct trace_conn *p = realloc(db->conns, cap * sizeof(*p));
    if (!p)
        return TRACE_ENOMEM;
    db->conns = p;
    db->capconns = cap;
    return 0;
}

/* The adapter's map (node, msgr id) -> conn id. */
static int
map_set(struct trace_node *n, uint64_t msgr_id, int64_t id)
{
    if (msgr_id >= n->nconn_by_msgr) {
        size_t cap = n->nconn_by_msgr ? n->nconn_by_msgr : 16;
        while (cap <= msgr_id)
            cap *= 2;
        int64_t *p = realloc(n->conn_by_msgr, cap * sizeof(*p));
        if (!p)
            return TRACE_ENOMEM;
        memset(p + n->nconn_by_msgr, 0,
               (cap - n->nconn_by_msgr) * sizeof(*p));
        n->conn_by_msgr = p;
        n->nconn_by_msgr = cap;
    }
    n->conn_by_msgr[msgr_id] = id;
    return 0;
}

int
trace__conn_add(struct trace_db *db, int64_t node, uint64_t msgr_id,
                const char *peer_name, const char *peer_addr,
                const char *policy, int64_t t_ns, int64_t *id)
{
    sqlite3_stmt *st = db->st[ST_CONN_INS];
    struct trace_node *n = trace__node_get(db, db->run, node);
    struct trace_conn *c;
    int64_t cid;
    int e;

    if (!n)
        return trace__fail(db, TRACE_ENOTFOUND, "%s: run %lld: no node %lld",
                           db->path, (long long)db->run, (long long)node);
    if (msgr_id < n->nconn_by_msgr && n->conn_by_msgr[msgr_id]) {
        *id = n->conn_by_msgr[msgr_id];
        return 0;
    }
    if ((e = conns_grow(db)) || (e = map_set(n, msgr_id, db->next_conn)))
        return trace__fail(db, e, "%s: out of memory", db->path);
    cid = db->next_conn++;
    c = &db->conns[db->nconns++];
    memset(c, 0, sizeof(*c));
    c->node = node;
    c->last_t = t_ns;
    c->peer_name = dup_or_null(peer_name);
    c->peer_addr = dup_or_null(peer_addr);
    c->peer_node = peer_name ? trace__node_by_name(db, peer_name) : 0;
    n->nconns++;
    sqlite3_bind_int64(st, 1, db->run);
    sqlite3_bind_int64(st, 2, cid);
    sqlite3_bind_int64(st, 3, node);
    sqlite3_bind_int64(st, 4, n->nconns);
    sqlite3_bind_int64(st, 5, (int64_t)msgr_id);
    bind_text(st, 6, peer_name);
    bind_text(st, 7, peer_addr);
    bind_text(st, 8, policy);
    sqlite3_bind_int64(st, 9, t_ns);
    e = step_done(db, st, "insert conn");
    if (e)
        return e;
    *id = cid;
    return row_written(db);
}

int
trace_conn_add(struct trace_db *db, int64_t run, int64_t node,
               uint64_t msgr_id, const char *peer_name, const char *peer_addr,
               const char *policy, int64_t t_ns, int64_t *id)
{
    int64_t cid = 0;
    int e;

    pthread_mutex_lock(&db->lock);
    e = trace__check_run(db, run);
    if (!e)
        e = trace__conn_add(db, node, msgr_id, peer_name, peer_addr, policy,
                            t_ns, &cid);
    pthread_mutex_unlock(&db->lock);
    if (!e && id)
        *id = cid;
    return e;
}

static int
same_text(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

int
trace__conn_set_peer(struct trace_db *db, int64_t conn, const char *peer_name,
                     const char *peer_addr)
{
    sqlite3_stmt *st = db->st[ST_CONN_PEER];
    struct trace_conn *c;

    if (conn < 1 || (size_t)conn > db->nconns)
        return trace__fail(db, TRACE_ENOTFOUND, "%s: no connection %lld",
                           db->path, (long long)conn);
    c = &db->conns[conn - 1];
    if ((!peer_name || same_text(peer_name, c->peer_name)) &&
        (!peer_addr || same_text(peer_addr, c->peer_addr)))
        return 0;
    if (peer_name && !same_text(peer_name, c->peer_name)) {
        free(c->peer_name);
        c->peer_name = strdup(peer_name);
        c->peer_node = trace__node_by_name(db, peer_name);
    }
    if (peer_addr && !same_text(peer_addr, c->peer_addr)) {
        free(c->peer_addr);
        c->peer_addr = strdup(peer_addr);
    }
    sqlite3_bind_int64(st, 1, db->run);
    sqlite3_bind_int64(st, 2, conn);
    bind_text(st, 3, peer_name);
    bind_text(st, 4, peer_addr);
    int e = step_done(db, st, "update conn peer");
    return e ? e : row_written(db);
}

int
trace_conn_set_peer(struct trace_db *db, int64_t run, int64_t conn,
                    const char *peer_name, const char *peer_addr)
{
    int e;

    pthread_mutex_lock(&db->lock);
    e = trace__check_run(db, run);
    if (!e)
        e = trace__conn_set_peer(db, conn, peer_name, peer_addr);
    pthread_mutex_unlock(&db->lock);
    return e;
}

/* ---------------------------------------------------------------- events */

static const char *const kind_names[TRACE_EV_NKINDS] = {
    [TRACE_EV_STATE] = "state",
    [TRACE_EV_FRAME_IN] = "frame_in",
    [TRACE_EV_FRAME_OUT] = "frame_out",
    [TRACE_EV_MSG] = "msg",
    [TRACE_EV_CONN_FAULT] = "conn_fault",
    [TRACE_EV_FAULT] = "fault",
    [TRACE_EV_HEAL] = "heal",
    [TRACE_EV_ACTION] = "action",
    [TRACE_EV_DISPATCH] = "dispatch",
    [TRACE_EV_NOTE] = "note",
};

const char *
trace_event_kind_name(int kind)
{
    if (kind < 0 || kind >= TRACE_EV_NKINDS)
        return NULL;
    return kind_names[kind];
}

void
trace_event_rec_init(struct trace_event_rec *e, int kind, int64_t t_ns)
{
    memset(e, 0, sizeof(*e));
    e->kind = kind;
    e->t_ns = t_ns;
    e->msg_src = e->msg_id = e->msg_seq = e->bytes = -1;
}

int
trace__event_add(struct trace_db *db, const struct trace_event_rec *e,
                 int64_t *seq)
{
    sqlite3_stmt *st = db->st[ST_EVENT_INS];
    const char *kind = trace_event_kind_name(e->kind);
    int r;

    if (!kind)
        return trace__fail(db, TRACE_EINVAL, "%s: event kind %d", db->path,
                           e->kind);
    /* static strings (names from msgr's tables) dominate: binding them
     * STATIC saves a copy per column */
    sqlite3_bind_int64(st, 1, db->run);
    sqlite3_bind_int64(st, 2, db->next_seq);
    sqlite3_bind_int64(st, 3, e->t_ns);
    bind_opt(st, 4, e->node, 0);
    bind_opt(st, 5, e->conn, 0);
    sqlite3_bind_text(st, 6, kind, -1, SQLITE_STATIC);
    bind_text(st, 7, e->state_from);
    bind_text(st, 8, e->state_to);
    bind_text(st, 9, e->tag);
    bind_text(st, 10, e->fate);
    bind_opt(st, 11, e->msg_src, -1);
    bind_opt(st, 12, e->msg_id, -1);
    bind_opt(st, 13, e->msg_seq, -1);
    bind_opt(st, 14, e->bytes, -1);
    bind_opt(st, 15, e->err, 0);
    bind_text(st, 16, e->detail);
    r = step_done(db, st, "insert event");
    if (r)
        return r;
    if (seq)
        *seq = db->next_seq;
    db->next_seq++;
    return row_written(db);
}

int
trace_event_add(struct trace_db *db, int64_t run,
                const struct trace_event_rec *e, int64_t *seq)
{
    int r;

    if (!e)
        return TRACE_EINVAL;
    pthread_mutex_lock(&db->lock);
    r = trace__check_run(db, run);
    if (!r)
        r = trace__event_add(db, e, seq);
    /* a state event also moves the connection's last state */
    if (!r && e->kind == TRACE_EV_STATE && e->conn > 0 &&
        (size_t)e->conn <= db->nconns && e->state_to) {
        struct trace_conn *c = &db->conns[e->conn - 1];
        snprintf(c->last_state, sizeof(c->last_state), "%s", e->state_to);
        c->last_t = e->t_ns;
    }
    pthread_mutex_unlock(&db->lock);
    return r;
}

int
trace_event_state(struct trace_db *db, int64_t run, int64_t t_ns,
                  int64_t node, int64_t conn, const char *from,
                  const char *to, const char *cause)
{
    struct trace_event_rec e;

    trace_event_rec_init(&e, TRACE_EV_STATE, t_ns);
    e.node = node;
    e.conn = conn;
    e.state_from = from;
    e.state_to = to;
    e.detail = cause;
    return trace_event_add(db, run, &e, NULL);
}

int
trace_event_frame(struct trace_db *db, int64_t run, int64_t t_ns,
                  int64_t node, int64_t conn, int out, const char *tag,
                  int64_t bytes)
{
    struct trace_event_rec e;

    trace_event_rec_init(&e, out ? TRACE_EV_FRAME_OUT : TRACE_EV_FRAME_IN,
                         t_ns);
    e.node = node;
    e.conn = conn;
    e.tag = tag;
    e.bytes = bytes;
    return trace_event_add(db, run, &e, NULL);
}

int
trace_event_action(struct trace_db *db, int64_t run, int64_t t_ns,
                   int64_t node, const char *text)
{
    struct trace_event_rec e;

    trace_event_rec_init(&e, TRACE_EV_ACTION, t_ns);
    e.node = node;
    e.detail = text;
    return trace_event_add(db, run, &e, NULL);
}

int
trace_event_dispatch(struct trace_db *db, int64_t run, int64_t t_ns,
                     int64_t node, int64_t conn, const char *what)
{
    struct trace_event_rec e;

    trace_event_rec_init(&e, TRACE_EV_DISPATCH, t_ns);
    e.node = node;
    e.conn = conn;
    e.tag = what;
    return trace_event_add(db, run, &e, NULL);
}

/* ---------------------------------------------------------------- faults */

int
trace_fault_add(struct trace_db *db, int64_t run, int64_t t_ns,
                const char *kind, const char *targets, const char *params,
                int64_t *id)
{
    sqlite3_stmt *st = db->st[ST_FAULT_INS];
    struct trace_event_rec ev;
    int64_t fid;
    char detail[256];
    int e;

    if (!kind)
        return TRACE_EINVAL;
    pthread_mutex_lock(&db->lock);
    e = trace__check_run(db, run);
    if (e)
        goto out;
    fid = db->next_fault;
    sqlite3_bind_int64(st, 1, run);
    sqlite3_bind_int64(st, 2, fid);
    sqlite3_bind_int64(st, 3, t_ns);
    bind_text(st, 4, kind);
    bind_text(st, 5, targets);
    bind_text(st, 6, params);
    e = step_done(db, st, "insert fault");
    if (e || (e = row_written(db)))
        goto out;
    db->next_fault++;
    snprintf(detail, sizeof(detail), "%s %s%s%s", kind, targets ? targets : "",
             params ? " " : "", params ? params : "");
    trace_event_rec_init(&ev, TRACE_EV_FAULT, t_ns);
    ev.msg_id = fid; /* the fault's id, so the event names its row */
    ev.detail = detail;
    e = trace__event_add(db, &ev, NULL);
    if (!e && id)
        *id = fid;
out:
    pthread_mutex_unlock(&db->lock);
    return e;
}

int
trace_fault_heal(struct trace_db *db, int64_t run, int64_t id, int64_t t_ns)
{
    sqlite3_stmt *st = db->st[ST_FAULT_HEAL];
    struct trace_event_rec ev;
    int e;

    pthread_mutex_lock(&db->lock);
    e = trace__check_run(db, run);
    if (e)
        goto out;
    if (id < 1 || id >= db->next_fault) {
        e = trace__fail(db, TRACE_ENOTFOUND, "%s: run %lld: no fault %lld",
                        db->path, (long long)run, (long long)id);
        goto out;
    }
    sqlite3_bind_int64(st, 1, run);
    sqlite3_bind_int64(st, 2, id);
    sqlite3_bind_int64(st, 3, t_ns);
    e = step_done(db, st, "heal fault");
    if (e || (e = row_written(db)))
        goto out;
    trace_event_rec_init(&ev, TRACE_EV_HEAL, t_ns);
    ev.msg_id = id;
    e = trace__event_add(db, &ev, NULL);
out:
    pthread_mutex_unlock(&db->lock);
    return e;
}

/* -------------------------------------------------------------- messages */

int
trace__message_fate(struct trace_db *db, const struct trace_msg_rec *m)
{
    sqlite3_stmt *st = db->st[ST_MSG_FATE];
    int e;

    sqlite3_bind_int64(st, 1, db->run);
    sqlite3_bind_int64(st, 2, m->src);
    sqlite3_bind_int64(st, 3, m->msg_id);
    bind_opt(st, 4, m->dst, 0);
    bind_opt(st, 5, m->conn, 0);
    bind_opt(st, 6, m->seq, -1);
    bind_opt(st, 7, m->size, -1);
    /* the column of this fate gets the time; the others stay NULL so the
     * upsert's coalesce keeps what is there */
    for (int i = 8; i <= 12; i++)
        sqlite3_bind_null(st, i);
    switch (m->fate) {
    case MSGR_FATE_QUEUED:
        sqlite3_bind_int64(st, 8, m->t_ns);
        break;
    case MSGR_FATE_SENT:
        sqlite3_bind_int64(st, 9, m->t_ns);
        break;
    case MSGR_FATE_ACKED:
        sqlite3_bind_int64(st, 10, m->t_ns);
        break;
    case MSGR_FATE_DELIVERED:
        sqlite3_bind_int64(st, 11, m->t_ns);
        break;
    case MSGR_FATE_DROPPED:
    case MSGR_FATE_BLACKHOLED: /* dropped on purpose, before the wire */
        sqlite3_bind_int64(st, 12, m->t_ns);
        break;
    case MSGR_FATE_DUPLICATE:
        break;
    default:
        return trace__fail(db, TRACE_EINVAL, "%s: message fate %d",
                           db->path, m->fate);
    }
    sqlite3_bind_int64(st, 13, m->fate == MSGR_FATE_SENT);
    sqlite3_bind_int64(st, 14, m->fate == MSGR_FATE_DELIVERED);
    sqlite3_bind_int64(st, 15, m->fate == MSGR_FATE_DUPLICATE);
    e = step_done(db, st, "upsert message");
    return e ? e : row_written(db);
}

int
trace_message_fate(struct trace_db *db, int64_t run,
                   const struct trace_msg_rec *m)
{
    int e;

    if (!m)
        return TRACE_EINVAL;
    pthread_mutex_lock(&db->lock);
    e = trace__check_run(db, run);
    if (!e)
        e = trace__message_fate(db, m);
    pthread_mutex_unlock(&db->lock);
    return e;
}

int
trace_message_set_checksum(struct trace_db *db, int64_t run, int64_t src,
                           int64_t msg_id, uint32_t checksum)
{
    sqlite3_stmt *st = db->st[ST_MSG_CSUM];
    int e;

    pthread_mutex_lock(&db->lock);
    e = trace__check_run(db, run);
    if (e)
        goto out;
    sqlite3_bind_int64(st, 1, run);
    sqlite3_bind_int64(st, 2, src);
    sqlite3_bind_int64(st, 3, msg_id);
    sqlite3_bind_int64(st, 4, checksum);
    e = step_done(db, st, "message checksum");
    if (!e)
        e = row_written(db);
out:
    pthread_mutex_unlock(&db->lock);
    return e;
}

/* ---------------------------------------------------------- expectations */

int
trace_expectation_add(struct trace_db *db, int64_t run, int line,
                      const char *text, const char *verdict,
                      const char *evidence)
{
    sqlite3_stmt *st = db->st[ST_EXP_INS];
    int e;

    if (!text || !verdict)
        return TRACE_EINVAL;
    pthread_mutex_lock(&db->lock);
    e = trace__check_run(db, run);
    if (e)
        goto out;
    sqlite3_bind_int64(st, 1, run);
    sqlite3_bind_int64(st, 2, db->next_exp);
    sqlite3_bind_int64(st, 3, line);
    bind_text(st, 4, text);
    bind_text(st, 5, verdict);
    bind_text(st, 6, evidence);
    e = step_done(db, st, "insert expectation");
    if (!e) {
        db->next_exp++;
        e = row_written(db);
    }
out:
    pthread_mutex_unlock(&db->lock);
    return e;
}
