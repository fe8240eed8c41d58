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

    pthread_mutex_lock(&db->err_lock);
    va_start(ap, fmt);
    vsnprintf(db->errmsg, sizeof(db->errmsg), fmt, ap);
    va_end(ap);
    pthread_mutex_unlock(&db->err_lock);
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
        " stack, build_id, started_wall, detail) VALUES (?,?,?,?,?,?,?,?)",
    [ST_RUN_END] =
        "UPDATE run SET duration_ns = ?2, fingerprint = ?3, verdict = ?4,"
        " exit_code = ?5, nevents = ?6 WHERE id = ?1",
    [ST_NODE_INS] =
        "INSERT INTO node(run, id, name, entity_type, entity_num, policy,"
        " addr, nonce, incarnation) VALUES (?,?,?,?,?,?,?,?,?)",
    [ST_CONN_INS] =
        "INSERT INTO conn(run, id, node, node_idx, msgr_id, peer_name,"
        " peer_addr, policy, first_t, last_t, last_state)"
        " VALUES (?,?,?,?,?,?,?,?,?,?,?)",
    [ST_EVENT_INS] =
        "INSERT INTO event(run, seq, t_ns, node, conn, kind, state_from,"
        " state_to, tag, fate, msg_src, msg_id, msg_seq, bytes, err, detail)"
        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
    [ST_FAULT_INS] =
        "INSERT INTO fault(run, id, t_ns, kind, targets, params)"
        " VALUES (?,?,?,?,?,?)",
    [ST_FAULT_HEAL] =
        "UPDATE fault SET healed_t = ?3 WHERE run = ?1 AND id = ?2",
    /* a message row from memory (msgtab.c), merged with what an earlier
     * spill of the run stored: first times and identity kept, counters
     * added, the latest checksum */
    [ST_MSG_PUT] =
        "INSERT INTO message(run, src, msg_id, dst, conn, seq, size,"
        " checksum, queued_t, sent_t, acked_t, delivered_t, dropped_t,"
        " sends, deliveries, duplicates)"
        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
        " ON CONFLICT(run, src, msg_id) DO UPDATE SET"
        " dst = coalesce(dst, excluded.dst),"
        " conn = coalesce(conn, excluded.conn),"
        " seq = coalesce(seq, excluded.seq),"
        " size = coalesce(size, excluded.size),"
        " checksum = coalesce(excluded.checksum, checksum),"
        " queued_t = coalesce(queued_t, excluded.queued_t),"
        " sent_t = coalesce(sent_t, excluded.sent_t),"
        " acked_t = coalesce(acked_t, excluded.acked_t),"
        " delivered_t = coalesce(delivered_t, excluded.delivered_t),"
        " dropped_t = coalesce(dropped_t, excluded.dropped_t),"
        " sends = sends + excluded.sends,"
        " deliveries = deliveries + excluded.deliveries,"
        " duplicates = duplicates + excluded.duplicates",
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

int
trace__tx_begin(struct trace_db *db)
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

int
trace__tx_commit(struct trace_db *db)
{
    int e;

    if (!db->in_tx)
        return 0;
    e = step_done(db, db->st[ST_COMMIT], "commit");
    db->in_tx = 0;
    return e;
}

/* One row written: commit the batch when it is full. */
int
trace__row_written(struct trace_db *db)
{
    if (++db->batch_rows < TRACE_BATCH_ROWS)
        return 0;
    int e = trace__tx_commit(db);
    return e ? e : trace__tx_begin(db);
}

int
trace_flush(struct trace_db *db)
{
    int e;

    pthread_mutex_lock(&db->lock);
    e = trace__writer_drain(db);
    pthread_mutex_lock(&db->sql_lock);
    if (!e)
        e = trace__tx_commit(db);
    if (e == 0 && db->run_open)
        e = trace__tx_begin(db);
    pthread_mutex_unlock(&db->sql_lock);
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
        sqlite3_exec(db->sql, trace__index_sql, NULL, NULL, &msg) !=
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
                     NULL, NULL, &msg) != SQLITE_OK ||
        /* a writer that died in the middle of a file's first run left
         * it without its indexes */
        sqlite3_exec(db->sql, trace__index_sql, NULL, NULL, &msg) !=
            SQLITE_OK) {
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
        free(db->conns[i].policy);
    }
    free(db->conns);
    trace__msgtab_free(&db->msgs);
    trace__writer_free(db);
    pthread_mutex_destroy(&db->w.mu);
    pthread_cond_destroy(&db->w.work);
    pthread_cond_destroy(&db->w.idle);
    pthread_mutex_destroy(&db->err_lock);
    pthread_mutex_destroy(&db->sql_lock);
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
    pthread_mutex_init(&db->sql_lock, NULL);
    pthread_mutex_init(&db->err_lock, NULL);
    pthread_mutex_init(&db->w.mu, NULL);
    pthread_cond_init(&db->w.work, NULL);
    pthread_cond_init(&db->w.idle, NULL);
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
    pthread_mutex_lock(&db->sql_lock);
    trace__tx_commit(db);
    pthread_mutex_unlock(&db->sql_lock);
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
        free(db->conns[i].policy);
    }
    db->nconns = 0;
}

/*
 * The first run of a file builds the event and message indexes at its
 * end (one sort each) rather than row by row. A file that already holds
 * events keeps them maintained per row: rebuilding would cost the whole
 * file at every run. sql_lock held, in the run's first transaction.
 */
static int
defer_indexes(struct trace_db *db)
{
    int64_t any = 1;
    char *msg = NULL;

    db->indexes_dropped = 0;
    if (pragma_int(db->sql, "SELECT EXISTS (SELECT 1 FROM event)", &any) !=
        SQLITE_OK)
        return trace__sqlfail(db, "count events");
    if (any)
        return 0;
    if (sqlite3_exec(db->sql, trace__index_drop_sql, NULL, NULL, &msg) !=
        SQLITE_OK) {
        int e = trace__fail(db, TRACE_EIO, "%s: drop indexes: %s", db->path,
                            msg ? msg : "?");
        sqlite3_free(msg);
        return e;
    }
    db->indexes_dropped = 1;
    return 0;
}

static int
build_indexes(struct trace_db *db)
{
    char *msg = NULL;

    if (!db->indexes_dropped)
        return 0;
    db->indexes_dropped = 0;
    if (sqlite3_exec(db->sql, trace__index_sql, NULL, NULL, &msg) !=
        SQLITE_OK) {
        int e = trace__fail(db, TRACE_EIO, "%s: create indexes: %s",
                            db->path, msg ? msg : "?");
        sqlite3_free(msg);
        return e;
    }
    return 0;
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
        pthread_mutex_unlock(&db->lock);
        return e;
    }
    pthread_mutex_lock(&db->sql_lock);
    e = trace__tx_begin(db);
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
    bind_text(st, 8, trace_detail_name(info->detail));
    e = step_done(db, st, "insert run");
    if (e || (e = defer_indexes(db)))
        goto out;
    *run = sqlite3_last_insert_rowid(db->sql);
    db->run = *run;
    db->run_open = 1;
    db->detail = info->detail;
    db->sticky_err = 0;
    db->next_seq = db->next_node = db->next_conn = 1;
    db->next_fault = db->next_exp = 1;
    forget_conns(db);
    trace__msgtab_clear(&db->msgs);
    e = trace__row_written(db);
    pthread_mutex_unlock(&db->sql_lock);
    if (!e && (e = trace__writer_start(db)))
        db->run_open = 0;
    pthread_mutex_unlock(&db->lock);
    return e;
out:
    pthread_mutex_unlock(&db->sql_lock);
    pthread_mutex_unlock(&db->lock);
    return e;
}

static int messages_write(struct trace_db *db);

/* The run's connection rows, in id order; sql_lock held. */
static int
conns_write(struct trace_db *db)
{
    sqlite3_stmt *st = db->st[ST_CONN_INS];

    for (size_t i = 0; i < db->nconns; i++) {
        const struct trace_conn *c = &db->conns[i];
        sqlite3_bind_int64(st, 1, db->run);
        sqlite3_bind_int64(st, 2, (int64_t)i + 1);
        sqlite3_bind_int64(st, 3, c->node);
        sqlite3_bind_int64(st, 4, c->node_idx);
        sqlite3_bind_int64(st, 5, (int64_t)c->msgr_id);
        bind_text(st, 6, c->peer_name);
        bind_text(st, 7, c->peer_addr);
        bind_text(st, 8, c->policy);
        sqlite3_bind_int64(st, 9, c->first_t);
        sqlite3_bind_int64(st, 10, c->last_t);
        bind_text(st, 11, c->last_state[0] ? c->last_state : NULL);
        int e = step_done(db, st, "insert conn");
        if (e || (e = trace__row_written(db)))
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
    /* every queued event is a row before the run's other rows; a write
     * error of the writer thread left its message in errmsg */
    e = trace__writer_stop(db);
    pthread_mutex_lock(&db->sql_lock);
    if (!e)
        e = conns_write(db);
    if (!e)
        e = messages_write(db);
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
    /* also after a failure: the file's earlier content stays indexed */
    if (build_indexes(db) && !e)
        e = TRACE_EIO;
    db->run_open = 0;
    if (trace__tx_commit(db) && !e)
        e = TRACE_EIO;
    pthread_mutex_unlock(&db->sql_lock);
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
    pthread_mutex_lock(&db->sql_lock);
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
    if (!e)
        e = trace__row_written(db);
    pthread_mutex_unlock(&db->sql_lock);
    if (e)
        goto out;
    db->next_node++;
    if (id)
        *id = nid;
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
    c->msgr_id = msgr_id;
    c->first_t = c->last_t = t_ns;
    c->peer_name = dup_or_null(peer_name);
    c->peer_addr = dup_or_null(peer_addr);
    c->policy = dup_or_null(policy);
    c->peer_node = peer_name ? trace__node_by_name(db, peer_name) : 0;
    c->node_idx = ++n->nconns;
    /* the row is written at trace_run_end, with its last state */
    *id = cid;
    return 0;
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
    return 0;
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

/* Queues the event for the writer thread (writer.c). */
int
trace__event_add(struct trace_db *db, const struct trace_event_rec *e,
                 int64_t *seq)
{
    struct trace_ev_slot *s;
    int r;

    if (e->kind < 0 || e->kind >= TRACE_EV_NKINDS)
        return trace__fail(db, TRACE_EINVAL, "%s: event kind %d", db->path,
                           e->kind);
    s = trace__writer_slot(db);
    if (!s)
        return trace__fail(db, TRACE_ENOMEM, "%s: out of memory", db->path);
    s->seq = db->next_seq;
    s->t_ns = e->t_ns;
    s->node = e->node;
    s->conn = e->conn;
    s->kind = e->kind;
    s->msg_src = e->msg_src;
    s->msg_id = e->msg_id;
    s->msg_seq = e->msg_seq;
    s->bytes = e->bytes;
    s->err = e->err;
    if ((r = trace__writer_str(db, e->state_from, &s->str[TRACE_EV_STR_FROM])) ||
        (r = trace__writer_str(db, e->state_to, &s->str[TRACE_EV_STR_TO])) ||
        (r = trace__writer_str(db, e->tag, &s->str[TRACE_EV_STR_TAG])) ||
        (r = trace__writer_str(db, e->fate, &s->str[TRACE_EV_STR_FATE])) ||
        (r = trace__writer_str(db, e->detail, &s->str[TRACE_EV_STR_DETAIL]))) {
        db->cur->n--; /* the slot just taken */
        return trace__fail(db, r, "%s: out of memory", db->path);
    }
    if (seq)
        *seq = db->next_seq;
    db->next_seq++;
    return 0;
}

static const char *
slot_str(const struct trace_ev_slot *s, const char *arena, int i)
{
    return s->str[i] == TRACE_EV_NOSTR ? NULL : arena + s->str[i];
}

int
trace__event_write(struct trace_db *db, const struct trace_ev_slot *s,
                   const char *arena)
{
    sqlite3_stmt *st = db->st[ST_EVENT_INS];

    /* the arena outlives the step: bound STATIC */
    sqlite3_bind_int64(st, 1, db->run);
    sqlite3_bind_int64(st, 2, s->seq);
    sqlite3_bind_int64(st, 3, s->t_ns);
    bind_opt(st, 4, s->node, 0);
    bind_opt(st, 5, s->conn, 0);
    sqlite3_bind_text(st, 6, kind_names[s->kind], -1, SQLITE_STATIC);
    bind_text(st, 7, slot_str(s, arena, TRACE_EV_STR_FROM));
    bind_text(st, 8, slot_str(s, arena, TRACE_EV_STR_TO));
    bind_text(st, 9, slot_str(s, arena, TRACE_EV_STR_TAG));
    bind_text(st, 10, slot_str(s, arena, TRACE_EV_STR_FATE));
    bind_opt(st, 11, s->msg_src, -1);
    bind_opt(st, 12, s->msg_id, -1);
    bind_opt(st, 13, s->msg_seq, -1);
    bind_opt(st, 14, s->bytes, -1);
    bind_opt(st, 15, s->err, 0);
    bind_text(st, 16, slot_str(s, arena, TRACE_EV_STR_DETAIL));
    return step_done(db, st, "insert event");
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
    pthread_mutex_lock(&db->sql_lock);
    sqlite3_bind_int64(st, 1, run);
    sqlite3_bind_int64(st, 2, fid);
    sqlite3_bind_int64(st, 3, t_ns);
    bind_text(st, 4, kind);
    bind_text(st, 5, targets);
    bind_text(st, 6, params);
    e = step_done(db, st, "insert fault");
    if (!e)
        e = trace__row_written(db);
    pthread_mutex_unlock(&db->sql_lock);
    if (e)
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
    pthread_mutex_lock(&db->sql_lock);
    sqlite3_bind_int64(st, 1, run);
    sqlite3_bind_int64(st, 2, id);
    sqlite3_bind_int64(st, 3, t_ns);
    e = step_done(db, st, "heal fault");
    if (!e)
        e = trace__row_written(db);
    pthread_mutex_unlock(&db->sql_lock);
    if (e)
        goto out;
    trace_event_rec_init(&ev, TRACE_EV_HEAL, t_ns);
    ev.msg_id = id;
    e = trace__event_add(db, &ev, NULL);
out:
    pthread_mutex_unlock(&db->lock);
    return e;
}

/* -------------------------------------------------------------- messages */

/* Writes the run's message rows held in memory, in key order, and
 * empties the table. */
static int
messages_write(struct trace_db *db)
{
    sqlite3_stmt *st = db->st[ST_MSG_PUT];
    size_t n;
    struct trace_msg_ent *rows = trace__msgtab_sorted(&db->msgs, &n);
    int e = 0;

    for (size_t i = 0; i < n && !e; i++) {
        const struct trace_msg_ent *m = &rows[i];
        sqlite3_bind_int64(st, 1, db->run);
        sqlite3_bind_int64(st, 2, m->src);
        sqlite3_bind_int64(st, 3, m->msg_id);
        bind_opt(st, 4, m->dst, 0);
        bind_opt(st, 5, m->conn, 0);
        bind_opt(st, 6, m->seq, -1);
        bind_opt(st, 7, m->size, -1);
        bind_opt(st, 8, m->checksum, -1);
        for (int k = 0; k < TRACE_MSG_NTIMES; k++)
            bind_opt(st, 9 + k, m->t[k], -1);
        sqlite3_bind_int64(st, 14, m->sends);
        sqlite3_bind_int64(st, 15, m->deliveries);
        sqlite3_bind_int64(st, 16, m->duplicates);
        e = step_done(db, st, "write message");
        if (!e)
            e = trace__row_written(db);
    }
    trace__msgtab_clear(&db->msgs);
    return e;
}

/* The row of (src, msg_id) in memory; spills the table first when it is
 * full. NULL with the error in *e. */
static struct trace_msg_ent *
message_row(struct trace_db *db, int64_t src, int64_t msg_id, int *e)
{
    struct trace_msg_ent *r;

    *e = 0;
    if (db->msgs.n >= TRACE_MSG_MEM_ROWS) {
        pthread_mutex_lock(&db->sql_lock);
        *e = messages_write(db);
        pthread_mutex_unlock(&db->sql_lock);
        if (*e)
            return NULL;
    }
    r = trace__msgtab_get(&db->msgs, src, msg_id);
    if (!r)
        *e = trace__fail(db, TRACE_ENOMEM, "%s: out of memory", db->path);
    return r;
}

int
trace__message_fate(struct trace_db *db, const struct trace_msg_rec *m)
{
    struct trace_msg_ent *r;
    int e;

    if (m->fate < MSGR_FATE_QUEUED || m->fate > MSGR_FATE_BLACKHOLED)
        return trace__fail(db, TRACE_EINVAL, "%s: message fate %d",
                           db->path, m->fate);
    r = message_row(db, m->src, m->msg_id, &e);
    return r ? trace__msgtab_fate(r, m) : e;
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
    struct trace_msg_ent *r;
    int e;

    pthread_mutex_lock(&db->lock);
    e = trace__check_run(db, run);
    if (!e && (r = message_row(db, src, msg_id, &e)))
        r->checksum = checksum;
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
    pthread_mutex_lock(&db->sql_lock);
    sqlite3_bind_int64(st, 1, run);
    sqlite3_bind_int64(st, 2, db->next_exp);
    sqlite3_bind_int64(st, 3, line);
    bind_text(st, 4, text);
    bind_text(st, 5, verdict);
    bind_text(st, 6, evidence);
    e = step_done(db, st, "insert expectation");
    if (!e) {
        db->next_exp++;
        e = trace__row_written(db);
    }
    pthread_mutex_unlock(&db->sql_lock);
out:
    pthread_mutex_unlock(&db->lock);
    return e;
}
