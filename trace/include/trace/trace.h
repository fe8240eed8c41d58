/*
 * trace: the run store. One sqlite file holds one or many runs; each run
 * keeps its scenario, seed and outcome, its nodes and connections, every
 * event in arrival order, the faults, the messages and the expectations.
 * Reports and replay read it back; anyone can query it with sqlite3.
 *
 * File identity: PRAGMA application_id = TRACE_APPLICATION_ID ('MSGT'),
 * PRAGMA user_version = TRACE_SCHEMA_VERSION. Opening a file stamped with
 * another application id, or a newer schema, fails with a message naming
 * the file and what to do (docs/TRACE.md has the whole schema).
 *
 * Schema (STRICT tables; every time is an integer of nanoseconds: virtual
 * time on the sim stack, time since the run began on posix):
 *
 *   run(id, scenario_path, scenario_text, scenario_hash, seed, stack,
 *       build_id, started_wall, duration_ns, fingerprint, verdict,
 *       exit_code, nevents)
 *   node(run, id, name, entity_type, entity_num, policy, addr, nonce,
 *        incarnation)                  one row per messenger incarnation
 *   conn(run, id, node, node_idx, msgr_id, peer_name, peer_addr, policy,
 *        first_t, last_t, last_state)
 *   event(run, seq, t_ns, node, conn, kind, state_from, state_to, tag,
 *         fate, msg_src, msg_id, msg_seq, bytes, err, detail)
 *   fault(run, id, t_ns, kind, targets, params, healed_t)
 *   message(run, src, msg_id, dst, conn, seq, size, checksum, queued_t,
 *           sent_t, acked_t, delivered_t, dropped_t, sends, deliveries,
 *           duplicates, fate)          fate is derived, see below
 *   expectation(run, id, line, text, verdict, evidence)
 *
 * Views: v_conn, v_messages_per_conn, v_reconnects, v_time_to_reconnect,
 * v_fates, v_fates_by_pair, v_state_edges, v_state_edges_by_conn
 * (docs/TRACE.md says what each counts).
 *
 * Threads: every function may be called from any thread; one mutex per
 * handle serialises them (the posix stack's workers all trace into one
 * handle). Events are numbered (event.seq) in arrival order.
 *
 * Writing: events are queued in memory and inserted by a writer thread
 * that lives while a run is open; message and conn rows are kept in
 * memory and inserted at trace_run_end. A write error of the writer
 * thread is returned by the next trace_flush / trace_run_end.
 *
 * Durability: rows are committed in large transactions (every
 * TRACE_BATCH_ROWS rows and at trace_run_end / trace_flush / trace_close)
 * in WAL mode with synchronous=NORMAL: a crash loses the open batch, the
 * queued events and the open run's message and conn rows, never corrupts
 * the file or other runs (docs/TRACE.md says exactly what). trace_close
 * checkpoints and turns the file back into a single self-contained file
 * (journal_mode=DELETE).
 *
 * Errors: functions return 0 or a negative TRACE_E* code; the handle keeps
 * a message for the last error (trace_errmsg).
 */
#ifndef TRACE_TRACE_H
#define TRACE_TRACE_H

#include <stddef.h>
#include <stdint.h>

struct msgr_tracer; /* msgr/msgr.h */

/* 'MSGT' */
#define TRACE_APPLICATION_ID 0x4d534754
#define TRACE_SCHEMA_VERSION 2
/* Rows per transaction while a run is written. */
#define TRACE_BATCH_ROWS 50000

/* clang-format off */
#define TRACE_ERR_MAP(X)                                                      \
    X(INVAL,     -5001, "invalid argument")                                   \
    X(NOMEM,     -5002, "out of memory")                                      \
    X(IO,        -5003, "sqlite error")                                       \
    X(NOTTRACE,  -5004, "not a msgrsim trace")                                \
    X(NEWER,     -5005, "trace written by a newer schema")                    \
    X(OLDER,     -5006, "trace written by an older, unsupported schema")      \
    X(NOENT,     -5007, "no such trace file")                                 \
    X(NOTFOUND,  -5008, "no such run, node, connection or fault")             \
    X(STATE,     -5009, "call not valid now (no run open, or one is open)")
/* clang-format on */

enum trace_err {
#define TRACE_ERR_ENUM_(name, value, msg) TRACE_E##name = (value),
    TRACE_ERR_MAP(TRACE_ERR_ENUM_)
#undef TRACE_ERR_ENUM_
};

const char *trace_strerror(int err);

/* -------------------------------------------------------------- handle */

struct trace_db;

enum trace_open_flags {
    TRACE_OPEN_RW = 0,       /* create when missing */
    TRACE_OPEN_READONLY = 1, /* must exist; no writer calls */
};

/* Where trace_open reports why it failed (code and a sentence naming the
 * file and what to do). */
struct trace_open_error {
    int code;
    char msg[512];
};

/*
 * Opens (and with TRACE_OPEN_RW creates) a trace file. NULL on failure,
 * with *err filled (err may be NULL). A new file gets the schema; an
 * existing one must carry our application id and a schema version this
 * build reads.
 */
struct trace_db *trace_open(const char *path, int flags,
                            struct trace_open_error *err);
/* Ends an open run as if trace_run_end(fingerprint NULL, verdict
 * "aborted", exit_code -1) was called, commits, closes. NULL is fine.
 * Tracers obtained from this handle must not be called afterwards. */
void trace_close(struct trace_db *db);
/* The message of the handle's last error ("" when none). */
const char *trace_errmsg(struct trace_db *db);
/* Commits the open batch now. */
int trace_flush(struct trace_db *db);
/* The sqlite3 handle, for ad-hoc queries (reports, tests). The caller
 * must not use it concurrently with writer calls. */
struct sqlite3 *trace_sqlite(struct trace_db *db);

/* ---------------------------------------------------------------- runs */

/*
 * How much of a run the tracer adapter writes as events. FULL: every
 * frame and every message fate. SESSIONS: what the connections and
 * sessions do (states, handshake and session frames, keepalives, faults)
 * and the exceptional message fates (dropped, duplicate, blackholed);
 * MESSAGE and ACK frames and the routine fates (queued, sent, acked,
 * delivered) go only into the message table, which keeps each message's
 * times and counts either way. SESSIONS is what makes tracing cheap: in a
 * busy run nine rows in ten are per-message events.
 */
enum trace_detail {
    TRACE_DETAIL_FULL = 0,
    TRACE_DETAIL_SESSIONS = 1,
};
const char *trace_detail_name(enum trace_detail d);
/* "full" / "sessions"; -1 when unknown. */
int trace_detail_parse(const char *s);

struct trace_run_info {
    const char *scenario_path; /* may be NULL */
    const char *scenario_text; /* the scenario file's text, for replay */
    const char *scenario_hash; /* hex; NULL: computed (FNV-1a 64 of text) */
    uint64_t seed;
    const char *stack;         /* "sim" or "posix" */
    const char *build_id;      /* git describe; may be NULL */
    const char *started_wall;  /* informative only (never compared) */
    enum trace_detail detail;  /* what the tracer adapter writes */
};

/*
 * Starts a run; *run gets its id. Only one run is open per handle at a
 * time (TRACE_ESTATE otherwise). Everything below names the run it
 * writes to, which must be the open one.
 */
int trace_run_begin(struct trace_db *db, const struct trace_run_info *info,
                    int64_t *run);
/* Ends the open run: records the outcome, finishes conn rows (last
 * state), commits. fingerprint: hex text, may be NULL. */
int trace_run_end(struct trace_db *db, int64_t run, int64_t duration_ns,
                  const char *fingerprint, const char *verdict,
                  int exit_code);

/* --------------------------------------------------------------- nodes */

struct trace_node_info {
    const char *name;    /* "osd.0" */
    uint8_t entity_type; /* MSGR_ENTITY_* */
    int64_t entity_num;  /* the number in the messenger's entity name */
    const char *policy;  /* "lossless_peer", may be NULL */
    const char *addr;    /* "v2:10.0.0.1:6800/1", may be NULL */
    uint64_t nonce;
    int incarnation;     /* 0 first; a restart adds a row with +1 */
};

/* Adds a node (one messenger incarnation); *id: 1, 2, ... in add order.
 * Messages received from (entity_type, entity_num) are attributed to the
 * latest node added with that entity name. */
int trace_node_add(struct trace_db *db, int64_t run,
                   const struct trace_node_info *info, int64_t *id);
/* Latest node of the run with this name; TRACE_ENOTFOUND. */
int trace_node_find(struct trace_db *db, int64_t run, const char *name,
                    int64_t *id);

/* --------------------------------------------------------- connections */

/*
 * Connection ids are per run, 1, 2, ... in first-seen order (the tracer
 * adapter inserts them lazily); key is (node, msgr_id), the messenger's
 * own stable per-messenger connection id, never a pointer.
 * Returns the existing id when (node, msgr_id) is known.
 */
int trace_conn_add(struct trace_db *db, int64_t run, int64_t node,
                   uint64_t msgr_id, const char *peer_name,
                   const char *peer_addr, const char *policy, int64_t t_ns,
                   int64_t *id);
/* Peer identity learnt later (an accepted connection learns it from the
 * peer's ident). NULL leaves a field alone. */
int trace_conn_set_peer(struct trace_db *db, int64_t run, int64_t conn,
                        const char *peer_name, const char *peer_addr);

/* -------------------------------------------------------------- events */

/* event.kind; the text stored is the lower-case name. */
enum trace_event_kind {
    TRACE_EV_STATE,      /* connection state change: state_from, state_to */
    TRACE_EV_FRAME_IN,   /* msgr2 frame read: tag, bytes */
    TRACE_EV_FRAME_OUT,  /* msgr2 frame written: tag, bytes */
    TRACE_EV_MSG,        /* a message's fate: fate, msg_src, msg_id, ... */
    TRACE_EV_CONN_FAULT, /* a connection faulted: err, detail */
    TRACE_EV_FAULT,      /* an injected fault started: detail = kind */
    TRACE_EV_HEAL,       /* an injected fault healed */
    TRACE_EV_ACTION,     /* a scenario timeline action: detail */
    TRACE_EV_DISPATCH,   /* a dispatcher upcall: tag = connect, accept,
                            reset, remote_reset, refused */
    TRACE_EV_NOTE,       /* anything else worth a line */
    TRACE_EV_NKINDS
};
const char *trace_event_kind_name(int kind);

/* One event to append. Fields that do not apply: 0/NULL for text and
 * ids (stored as NULL), msg_* and bytes as -1 (stored as NULL). */
struct trace_event_rec {
    int64_t t_ns;
    int64_t node; /* 0: none */
    int64_t conn; /* 0: none */
    int kind;     /* enum trace_event_kind */
    const char *state_from, *state_to;
    const char *tag;
    const char *fate;
    int64_t msg_src, msg_id, msg_seq, bytes;
    int64_t err; /* 0: none */
    const char *detail;
};
/* Sets every numeric field to its "none" value and the text to NULL. */
void trace_event_rec_init(struct trace_event_rec *e, int kind, int64_t t_ns);

/* Appends; *seq (may be NULL) gets the event's number in the run. */
int trace_event_add(struct trace_db *db, int64_t run,
                    const struct trace_event_rec *e, int64_t *seq);
/* Short forms of trace_event_add. */
int trace_event_state(struct trace_db *db, int64_t run, int64_t t_ns,
                      int64_t node, int64_t conn, const char *from,
                      const char *to, const char *cause);
int trace_event_frame(struct trace_db *db, int64_t run, int64_t t_ns,
                      int64_t node, int64_t conn, int out, const char *tag,
                      int64_t bytes);
int trace_event_action(struct trace_db *db, int64_t run, int64_t t_ns,
                       int64_t node, const char *text);
int trace_event_dispatch(struct trace_db *db, int64_t run, int64_t t_ns,
                         int64_t node, int64_t conn, const char *what);

/* -------------------------------------------------------------- faults */

/* An injected fault; *id: 1, 2, ... per run. Also appends a "fault"
 * event. targets: "osd.0 <-> osd.1"; params: free text or JSON. */
int trace_fault_add(struct trace_db *db, int64_t run, int64_t t_ns,
                    const char *kind, const char *targets,
                    const char *params, int64_t *id);
/* Records the heal time (and a "heal" event). */
int trace_fault_heal(struct trace_db *db, int64_t run, int64_t id,
                     int64_t t_ns);

/* ------------------------------------------------------------ messages */

/*
 * A message is identified by (src node, msg_id), where msg_id is the
 * message's tid: the runner gives every message a tid unique per sender
 * (the tracer adapter does not trace messages with tid 0 into this
 * table, only as events). Each call records one fate at t_ns: the first
 * queued/sent/acked/delivered/dropped time is kept, sends, deliveries and
 * duplicates are counted. message.fate is derived: delivered if ever
 * delivered, else dropped, else acked, else sent, else queued.
 * dst, conn, seq, size: 0/-1 leave the stored value alone.
 */
struct trace_msg_rec {
    int64_t src, msg_id;
    int64_t dst;  /* 0: unknown here */
    int64_t conn; /* the sender's connection; 0: unknown / not this side */
    int64_t seq;  /* -1: unknown */
    int64_t size; /* -1: unknown */
    int fate;     /* MSGR_FATE_* */
    int64_t t_ns;
};
int trace_message_fate(struct trace_db *db, int64_t run,
                       const struct trace_msg_rec *m);
/* The workload's payload checksum for a message. */
int trace_message_set_checksum(struct trace_db *db, int64_t run, int64_t src,
                               int64_t msg_id, uint32_t checksum);

/* -------------------------------------------------------- expectations */

int trace_expectation_add(struct trace_db *db, int64_t run, int line,
                          const char *text, const char *verdict,
                          const char *evidence);

/* ------------------------------------------------------------ segments */

/*
 * Captured TCP segments of a simulated run (`msgrsim run --capture`):
 * the optional `segment` table, created in a file by its first
 * trace_segment_add (traces without a capture do not have it). One row
 * per segment a simulated end sent, in send order, with the simulator's
 * 64-bit sequence numbers (sim/sim.h, struct sim_capture_seg, says how
 * they map to a wire's). docs/TRACE.md has the columns.
 */
struct trace_segment_rec {
    int64_t t_ns;      /* sent */
    int64_t arrive_ns; /* -1: dropped */
    int64_t tcp_conn;  /* the simulator's connection id */
    uint32_t src_ip, dst_ip; /* IPv4, host order */
    uint16_t src_port, dst_port;
    int64_t tcp_seq, tcp_ack;
    unsigned flags; /* TCP header bits: FIN 0x01 SYN 0x02 RST 0x04 PSH 0x08
                       ACK 0x10 */
    int64_t window; /* bytes */
    uint32_t len;   /* payload bytes on the wire */
    /* len bytes, or NULL when only the headers are kept (a capture over
     * its size bound); copied */
    const void *payload;
    int dropped;  /* the link lost it */
    int injected; /* an RST of an injected reset (no end sent it) */
    uint32_t corrupt_bit; /* 0, or the payload bit (+1) the link flips */
};
/* Appends a segment to the open run (row seq 1, 2, ... per run). */
int trace_segment_add(struct trace_db *db, int64_t run,
                      const struct trace_segment_rec *s);
/* *n gets the number of segments captured for `run` (0 when the file has
 * no segment table). */
int trace_segment_count(struct trace_db *db, int64_t run, int64_t *n);

/* ------------------------------------------------------ tracer adapter */

typedef int64_t (*trace_clock_fn)(void *arg);

/*
 * Fills *out with a msgr tracer that appends node `node`'s state changes,
 * frames (tag names as in the scenario language: "client_ident"), message
 * fates (event + message row) and connection faults to the open run,
 * stamping each with now(clock_arg). Connections get conn rows the first
 * time they are seen (first-seen order); the peer name is refreshed when a
 * connection becomes READY. The adapter's state lives in the handle until
 * trace_close; after trace_run_end its callbacks record nothing.
 */
int trace_tracer_for_node(struct trace_db *db, int64_t run, int64_t node,
                          trace_clock_fn now, void *clock_arg,
                          struct msgr_tracer *out);
/* The trace connection id the adapter gave (node, msgr_conn_id); 0 if
 * never seen. */
int64_t trace_tracer_conn_id(struct trace_db *db, int64_t node,
                             uint64_t msgr_id);

/* -------------------------------------------------------------- reader */

struct trace_run {
    int64_t id;
    char *scenario_path, *scenario_text, *scenario_hash;
    uint64_t seed;
    char *stack, *build_id, *started_wall;
    int64_t duration_ns;    /* -1 while open */
    char *fingerprint;      /* NULL when none */
    char *verdict;          /* NULL while open */
    int exit_code;          /* -1 while open */
    int64_t nevents;
    char *detail;           /* "full" or "sessions" */
};
/* Fills *out (strings allocated; trace_run_fini frees them). */
int trace_run_get(struct trace_db *db, int64_t id, struct trace_run *out);
void trace_run_fini(struct trace_run *r);
/* Every run, by id; *out is an array of *n (trace_runs_free). */
int trace_runs_list(struct trace_db *db, struct trace_run **out, size_t *n);
void trace_runs_free(struct trace_run *runs, size_t n);
/* The id of the file's latest run; TRACE_ENOTFOUND when it holds none. */
int trace_run_latest(struct trace_db *db, int64_t *id);

/* One event as read back. Text fields point into the cursor and stay
 * valid until the next trace_cursor_next / trace_cursor_free; NULL when
 * the column is NULL. Absent numbers read as -1 (node, conn: 0). */
struct trace_event {
    int64_t run, seq, t_ns;
    int64_t node, conn;
    const char *node_name; /* "osd.0" */
    const char *peer_name; /* the connection's peer, if known */
    const char *kind;
    const char *state_from, *state_to, *tag, *fate;
    int64_t msg_src, msg_id, msg_seq, bytes, err;
    const char *detail;
};

struct trace_filter {
    int64_t from_ns;   /* INT64_MIN: no bound */
    int64_t until_ns;  /* INT64_MAX: no bound (inclusive) */
    const char *node;  /* events of this node name only, or NULL */
    /* events on connections between these two nodes (either side), or
     * NULL; events without a connection are left out then */
    const char *conn_a, *conn_b;
    const char *kind;  /* "state", ...; NULL: all */
};
void trace_filter_init(struct trace_filter *f);
/* Splits "osd.0-client.1" into two node names at the '-' that starts a
 * name (a word followed by '.'). 0 or TRACE_EINVAL. */
int trace_conn_spec_parse(const char *spec, char *a, size_t alen, char *b,
                          size_t blen);

struct trace_cursor;
/* Events of `run` matching f (NULL: all) in seq order. */
int trace_cursor_open(struct trace_db *db, int64_t run,
                      const struct trace_filter *f,
                      struct trace_cursor **out);
/* 1 and *ev filled, 0 at the end, or a negative error. */
int trace_cursor_next(struct trace_cursor *c, struct trace_event *ev);
void trace_cursor_free(struct trace_cursor *c);

/* One line for people: "12.345678901 osd.0 c3 state READY -> STANDBY". */
int trace_event_format(const struct trace_event *ev, char *buf, size_t len);

/*
 * The first event where two runs differ, comparing in seq order
 * everything but ids that depend on the file (run id): time, node name,
 * connection id, kind and every field. Runs may be in two files (pass
 * the same handle twice for one file).
 */
struct trace_divergence {
    int found;      /* 0: identical event streams */
    int64_t index;  /* 0-based position of the first difference */
    int have_a, have_b; /* 0 when that run had already ended there */
    char line_a[512], line_b[512]; /* trace_event_format of each */
    int64_t t_a, t_b;
};
int trace_diff_runs(struct trace_db *db_a, int64_t run_a,
                    struct trace_db *db_b, int64_t run_b,
                    struct trace_divergence *out);

#endif /* TRACE_TRACE_H */
