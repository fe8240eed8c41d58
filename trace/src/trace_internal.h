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
    ST_MSG_PUT,
    ST_EXP_INS,
    ST_N
};

/* A message row held in memory while its run is written (msgtab.c).
 * Absent values: dst/conn 0, seq/size/checksum/times -1. */
enum trace_msg_time {
    TRACE_MSG_T_QUEUED,
    TRACE_MSG_T_SENT,
    TRACE_MSG_T_ACKED,
    TRACE_MSG_T_DELIVERED,
    TRACE_MSG_T_DROPPED,
    TRACE_MSG_NTIMES
};
struct trace_msg_ent {
    int64_t src, msg_id;
    int64_t dst, conn, seq, size, checksum;
    int64_t t[TRACE_MSG_NTIMES];
    int32_t sends, deliveries, duplicates;
    uint8_t used;
};
/* Open addressing, linear probing, power-of-two capacity. */
struct trace_msgtab {
    struct trace_msg_ent *slots;
    size_t cap, n;
};
/* Rows held before they are written out (a spill) mid-run. */
#define TRACE_MSG_MEM_ROWS (1u << 20)

struct trace_msg_ent *trace__msgtab_get(struct trace_msgtab *t, int64_t src,
                                        int64_t msg_id);
int trace__msgtab_fate(struct trace_msg_ent *r,
                       const struct trace_msg_rec *m);
struct trace_msg_ent *trace__msgtab_sorted(struct trace_msgtab *t,
                                           size_t *n);
void trace__msgtab_clear(struct trace_msgtab *t);
void trace__msgtab_free(struct trace_msgtab *t);

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
    struct trace_msgtab msgs; /* the open run's message rows */
};

/* Records an error message on the handle; returns code. Lock held. */
int trace__fail(struct trace_db *db, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* code from an sqlite result, with sqlite's message. Lock held. */
int trace__sqlfail(struct trace_db *db, const char *what);

/* Writer internals, lock held. */
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
