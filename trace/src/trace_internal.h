/*
 * trace/ internals shared by the writer (store.c), the tracer adapter
 * (tracer.c) and the reader (reader.c).
 */
#ifndef TRACE_INTERNAL_H
#define TRACE_INTERNAL_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdint.h>

#include "trace/trace.h"

extern const char trace__schema_sql[];
/* The optional segment table (created on a capture's first row). */
extern const char trace__segment_schema_sql[];

/* Cached writer statements: prepared once at open, reset and bound per
 * row. */
enum trace_stmt {
    ST_BEGIN,
    ST_COMMIT,
    ST_RUN_INS,
    ST_RUN_END,
    ST_NODE_INS,
    ST_CONN_INS,
    ST_CONN_PEER,
    ST_CONN_END,
    ST_EVENT_INS,
    ST_FAULT_INS,
    ST_FAULT_HEAL,
    ST_MSG_FATE,
    ST_MSG_CSUM,
    ST_EXP_INS,
    ST_N
};

/* A node of a run, and the tracer adapter's context for it. Kept until
 * trace_close so a tracer never points at freed memory. */
struct trace_node {
    struct trace_db *db;
    int64_t run, id;
    uint8_t entity_type;
    int64_t entity_num;
    char name[64];
    trace_clock_fn now;
    void *clock_arg;
    /* msgr_conn_id -> trace conn id (0: not seen); ids are small and
     * increasing per messenger, so an array does */
    int64_t *conn_by_msgr;
    size_t nconn_by_msgr;
    int64_t nconns; /* node_idx of the last connection seen */
};

/* The open run's connections, by id - 1. */
struct trace_conn {
    int64_t node;
    int64_t peer_node; /* 0 until the peer's name resolves to a node */
    char *peer_name, *peer_addr;
    char last_state[32];
    int64_t last_t;
};

struct trace_db {
    sqlite3 *sql;
    char *path;
    int readonly;
    pthread_mutex_t lock;
    sqlite3_stmt *st[ST_N];
    int in_tx;
    long batch_rows;
    char errmsg[512];
    int sticky_err; /* first error of a tracer callback in the open run */

    /* the open run (run_open), its counters */
    int run_open;
    int64_t run;
    int64_t next_seq, next_node, next_conn, next_fault, next_exp;

    struct trace_node **nodes; /* every run's, in add order */
    size_t nnodes, capnodes;
    struct trace_conn *conns; /* the open run's */
    size_t nconns, capconns;

    /* segment.c: its insert (prepared with the table, on first use) and
     * the run its seq counter counts for */
    sqlite3_stmt *seg_ins;
    int64_t seg_run, seg_next;
};

/* Records an error message on the handle; returns code. Lock held. */
int trace__fail(struct trace_db *db, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* code from an sqlite result, with sqlite's message. Lock held. */
int trace__sqlfail(struct trace_db *db, const char *what);

/* Writer internals, lock held. */
/* One row written to the open batch: commits it when full. */
int trace__row_written(struct trace_db *db);
/* Finalises segment.c's statement (close). */
void trace__segment_fini(struct trace_db *db);
int trace__check_run(struct trace_db *db, int64_t run);
int trace__event_add(struct trace_db *db, const struct trace_event_rec *e,
                     int64_t *seq);
int trace__conn_add(struct trace_db *db, int64_t node, uint64_t msgr_id,
                    const char *peer_name, const char *peer_addr,
                    const char *policy, int64_t t_ns, int64_t *id);
int trace__conn_set_peer(struct trace_db *db, int64_t conn,
                         const char *peer_name, const char *peer_addr);
int trace__message_fate(struct trace_db *db, const struct trace_msg_rec *m);
/* The latest node of the open run with this entity name; 0 if none. */
int64_t trace__node_by_entity(struct trace_db *db, uint8_t type, int64_t num);
int64_t trace__node_by_name(struct trace_db *db, const char *name);
struct trace_node *trace__node_get(struct trace_db *db, int64_t run,
                                   int64_t id);

#endif
