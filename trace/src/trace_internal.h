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
extern const char trace__index_sql[];      /* CREATE INDEX IF NOT EXISTS */
extern const char trace__index_drop_sql[]; /* the per-row ones */
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

/*
 * Events on their way to sqlite (writer.c). The tracer callbacks copy
 * each event into a chunk under the handle's mutex (a few stores and the
 * strings appended to the chunk's arena); a writer thread, alive while a
 * run is open, turns full chunks into rows. The event's seq is given at
 * append time, so rows do not depend on when the writer runs.
 */
#define TRACE_CHUNK_EVENTS 4096
/* Chunks queued before appenders wait for the writer (bounds memory). */
#define TRACE_WRITER_MAX_CHUNKS 64
enum { TRACE_EV_STR_FROM, TRACE_EV_STR_TO, TRACE_EV_STR_TAG,
       TRACE_EV_STR_FATE, TRACE_EV_STR_DETAIL, TRACE_EV_NSTR };
#define TRACE_EV_NOSTR UINT32_MAX
struct trace_ev_slot {
    int64_t seq, t_ns, node, conn, msg_src, msg_id, msg_seq, bytes, err;
    int32_t kind;
    uint32_t str[TRACE_EV_NSTR]; /* offsets into the arena, or NOSTR */
};
struct trace_chunk {
    struct trace_chunk *next;
    size_t n;
    char *arena;
    size_t arena_len, arena_cap;
    struct trace_ev_slot ev[TRACE_CHUNK_EVENTS];
};
struct trace_writer {
    pthread_t thread;
    int running;
    pthread_mutex_t mu; /* guards the fields below */
    pthread_cond_t work, idle;
    struct trace_chunk *head, *tail; /* queued, oldest first */
    size_t queued;
    int busy, stop;
    struct trace_chunk *spare; /* written chunks for reuse */
    int err;                   /* first write error of the run */
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

/* The open run's connections, by id - 1; their rows are written at
 * trace_run_end. */
struct trace_conn {
    int64_t node, node_idx, first_t;
    uint64_t msgr_id;
    char *policy;
    int64_t peer_node; /* 0 until the peer's name resolves to a node */
    char *peer_name, *peer_addr;
    char last_state[32];
    int64_t last_t;
};

/*
 * Locks: `lock` guards the handle's state (the open run, counters, nodes,
 * conns, messages, the chunk being filled); `sql_lock` guards the sqlite
 * connection, its statements and the transaction (the writer thread takes
 * it alone); `err_lock` guards errmsg. Order: lock, then writer.mu or
 * sql_lock; err_lock is innermost.
 */
struct trace_db {
    sqlite3 *sql;
    enum trace_detail detail; /* of the open run */
    char *path;
    int readonly;
    pthread_mutex_t lock, sql_lock, err_lock;
    sqlite3_stmt *st[ST_N];
    int in_tx;
    long batch_rows;
    int indexes_dropped; /* the open run builds them at its end */
    char errmsg[512];
    struct trace_writer w;
    struct trace_chunk *cur; /* the chunk being filled (lock) */
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
/* One queued event as a row; sql_lock held. */
int trace__event_write(struct trace_db *db, const struct trace_ev_slot *s,
                       const char *arena);
/* Transaction batching; sql_lock held. */
int trace__row_written(struct trace_db *db);
int trace__tx_begin(struct trace_db *db);
int trace__tx_commit(struct trace_db *db);

/* writer.c; lock held. */
int trace__writer_start(struct trace_db *db);
/* Queues the chunk being filled and waits until the writer has written
 * everything queued; returns the writer's first error of the run. */
int trace__writer_drain(struct trace_db *db);
/* Drains, then ends the thread. */
int trace__writer_stop(struct trace_db *db);
/* The slot for the next event, queueing a full chunk; NULL: no memory. */
struct trace_ev_slot *trace__writer_slot(struct trace_db *db);
/* Copies s (NULL: none) into the current chunk's arena; *off gets its
 * offset or NOSTR. 0 or TRACE_ENOMEM. */
int trace__writer_str(struct trace_db *db, const char *s, uint32_t *off);
void trace__writer_free(struct trace_db *db);
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
