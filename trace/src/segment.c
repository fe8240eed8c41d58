/*
 * Captured TCP segments: the optional `segment` table (schema.c,
 * trace__segment_schema_sql). Kept apart from store.c: only captured runs
 * write here, and the table is created by the first row, so traces
 * without a capture neither have it nor pay for it.
 */
#include <stdio.h>

#include "trace_internal.h"

static const char seg_ins_sql[] =
    "INSERT INTO segment(run, seq, t_ns, arrive_ns, tcp_conn, src_ip,"
    " src_port, dst_ip, dst_port, tcp_seq, tcp_ack, flags, window, len,"
    " payload, dropped, injected, corrupt_bit)"
    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)";

void
trace__segment_fini(struct trace_db *db)
{
    sqlite3_finalize(db->seg_ins);
    db->seg_ins = NULL;
}

/* Creates the table (inside the open batch) and prepares the insert. */
static int
seg_prepare(struct trace_db *db)
{
    if (db->seg_ins)
        return 0;
    if (sqlite3_exec(db->sql, trace__segment_schema_sql, NULL, NULL, NULL) !=
        SQLITE_OK)
        return trace__sqlfail(db, "create segment table");
    if (sqlite3_prepare_v3(db->sql, seg_ins_sql, -1,
                           SQLITE_PREPARE_PERSISTENT, &db->seg_ins,
                           NULL) != SQLITE_OK)
        return trace__sqlfail(db, "prepare segment insert");
    return 0;
}

static void
seg_bind(sqlite3_stmt *st, int64_t run, int64_t seq,
         const struct trace_segment_rec *s)
{
    sqlite3_bind_int64(st, 1, run);
    sqlite3_bind_int64(st, 2, seq);
    sqlite3_bind_int64(st, 3, s->t_ns);
    if (s->dropped || s->arrive_ns < 0)
        sqlite3_bind_null(st, 4);
    else
        sqlite3_bind_int64(st, 4, s->arrive_ns);
    sqlite3_bind_int64(st, 5, s->tcp_conn);
    sqlite3_bind_int64(st, 6, s->src_ip);
    sqlite3_bind_int64(st, 7, s->src_port);
    sqlite3_bind_int64(st, 8, s->dst_ip);
    sqlite3_bind_int64(st, 9, s->dst_port);
    sqlite3_bind_int64(st, 10, s->tcp_seq);
    sqlite3_bind_int64(st, 11, s->tcp_ack);
    sqlite3_bind_int64(st, 12, (int64_t)s->flags);
    sqlite3_bind_int64(st, 13, s->window);
    sqlite3_bind_int64(st, 14, s->len);
    /* the caller's bytes are only borrowed for this call: stepped and
     * reset before it returns, so STATIC is safe */
    if (s->payload && s->len)
        sqlite3_bind_blob(st, 15, s->payload, (int)s->len, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 15);
    sqlite3_bind_int64(st, 16, s->dropped != 0);
    sqlite3_bind_int64(st, 17, s->injected != 0);
    if (s->corrupt_bit)
        sqlite3_bind_int64(st, 18, s->corrupt_bit);
    else
        sqlite3_bind_null(st, 18);
}

int
trace_segment_add(struct trace_db *db, int64_t run,
                  const struct trace_segment_rec *s)
{
    int e;

    if (!s || s->len > (uint32_t)INT32_MAX)
        return TRACE_EINVAL;
    pthread_mutex_lock(&db->lock);
    /* the writer thread inserts events on the same connection */
    pthread_mutex_lock(&db->sql_lock);
    e = trace__check_run(db, run);
    if (e == 0)
        e = seg_prepare(db);
    if (e == 0) {
        if (db->seg_run != run) {
            db->seg_run = run;
            db->seg_next = 1;
        }
        seg_bind(db->seg_ins, run, db->seg_next, s);
        if (sqlite3_step(db->seg_ins) != SQLITE_DONE)
            e = trace__sqlfail(db, "insert segment");
        sqlite3_reset(db->seg_ins);
        sqlite3_clear_bindings(db->seg_ins);
    }
    if (e == 0) {
        db->seg_next++;
        e = trace__row_written(db);
    }
    pthread_mutex_unlock(&db->sql_lock);
    pthread_mutex_unlock(&db->lock);
    return e;
}

int
trace_segment_count(struct trace_db *db, int64_t run, int64_t *n)
{
    sqlite3_stmt *st = NULL;
    int e = 0, rc;

    *n = 0;
    pthread_mutex_lock(&db->lock);
    trace__writer_drain(db);
    pthread_mutex_lock(&db->sql_lock);
    rc = sqlite3_prepare_v2(db->sql,
                            "SELECT count(*) FROM segment WHERE run = ?",
                            -1, &st, NULL);
    if (rc != SQLITE_OK) {
        /* no such table: the file holds no capture */
        sqlite3_finalize(st);
        pthread_mutex_unlock(&db->sql_lock);
        pthread_mutex_unlock(&db->lock);
        return 0;
    }
    sqlite3_bind_int64(st, 1, run);
    if (sqlite3_step(st) == SQLITE_ROW)
        *n = sqlite3_column_int64(st, 0);
    else
        e = trace__sqlfail(db, "count segments");
    sqlite3_finalize(st);
    pthread_mutex_unlock(&db->sql_lock);
    pthread_mutex_unlock(&db->lock);
    return e;
}
