/*
 * msgr: a C re-implementation of Ceph's AsyncMessenger speaking msgr2.
 *
 * Objects:
 *   struct msgr        a messenger (Ceph's AsyncMessenger): my entity name
 *                      and addresses, policies, connections, dispatchers;
 *   struct msgr_conn   one session with a peer (AsyncConnection), owned by
 *                      one worker for life, refcounted;
 *   struct msgr_msg    one message, refcounted, payload not copied.
 *
 * Threads: every callback of a dispatcher runs either on a connection's
 * worker (ms_fast_dispatch and the fast upcalls) or on the messenger's
 * dispatch worker (everything else), never two at once for one messenger's
 * dispatch queue. API calls are safe from any thread unless noted.
 *
 * Ownership (nng's rule): msgr_send_message and msgr_conn_send_message take
 * over the caller's reference to the message only when they return 0.
 */
#ifndef MSGR_MSGR_H
#define MSGR_MSGR_H

#include <stdint.h>

#include "msgr/err.h"
#include "msgr/stack.h"
#include "msgr/types.h"

struct msgr;
struct msgr_conn;
struct msgr_msg;
struct msgr_throttle_set; /* internal: a policy's throttles */

/* ---------------------------------------------------------------- policy */

/*
 * throttle_bytes, throttle_msgs (Ceph's throttler_bytes/_messages): bound
 * the messages received from peers of this policy's type that are alive
 * (read and not yet released by their last unref), shared by every
 * connection of the policy in one messenger. A reader that cannot take
 * one message and its payload bytes stops reading and retries every
 * 1 ms. A request always passes when nothing is held, so one message
 * larger than the whole byte limit still goes through (alone). 0:
 * unlimited.
 */
struct msgr_policy {
    uint8_t lossy, server, standby, resetcheck, register_lossy_clients;
    uint64_t features_supported, features_required;
    uint64_t throttle_bytes, throttle_msgs; /* 0: unlimited */
};

enum msgr_policy_kind {
    MSGR_POLICY_LOSSY_CLIENT,
    MSGR_POLICY_LOSSLESS_CLIENT,
    MSGR_POLICY_LOSSLESS_PEER,
    MSGR_POLICY_LOSSLESS_PEER_REUSE,
    MSGR_POLICY_STATELESS_SERVER,
    MSGR_POLICY_STATELESS_REGISTERED_SERVER,
    MSGR_POLICY_STATEFUL_SERVER,
};

/* Ceph's Policy constructors (PROTOCOL.md §2). */
struct msgr_policy msgr_policy_make(enum msgr_policy_kind kind,
                                    uint64_t features_required);
/* "lossy_client", "lossless_peer", ...; -EINVAL when unknown. */
int msgr_policy_parse(const char *name, enum msgr_policy_kind *kind);
const char *msgr_policy_name(enum msgr_policy_kind kind);

/* --------------------------------------------------------------- message */

#define MSGR_PRIO_LOW     64
#define MSGR_PRIO_DEFAULT 127
#define MSGR_PRIO_HIGH    196
#define MSGR_PRIO_HIGHEST 255

/* Ceph message types used by the probe and tests. */
#define MSGR_MSG_MON_MAP       4
#define MSGR_MSG_MON_GET_MAP   5
#define MSGR_MSG_MON_SUBSCRIBE 15
#define MSGR_MSG_CONFIG        62
#define MSGR_MSG_PING          0x2
/* First type of the private range our tests and workloads use. */
#define MSGR_MSG_TEST          0x7f00

struct msgr_buf {
    uint8_t *data;
    uint32_t len;
};

struct msgr_msg_header {
    uint64_t seq;  /* assigned on send */
    uint64_t tid;
    uint16_t type;
    uint16_t priority;
    uint16_t version, compat_version;
    uint16_t data_off;
    uint8_t flags;
    struct msgr_entity_name src; /* set on receive from the session */
};

struct msgr_msg {
    struct msgr_msg_header hdr;
    struct msgr_buf front, middle, data;
    struct msgr_conn *conn; /* on received messages: a reference */
    msgr_time_ns recv_stamp;
    /* internal */
    _Atomic int refs;
    struct msgr_msg *next; /* queue link, owned by whichever queue holds it */
    /* policy throttle taken for a received message, returned by the last
     * unref (kept alive by conn, whose reference outlives it) */
    struct msgr_throttle_set *throttle;
    uint64_t throttle_bytes;
    uint32_t throttle_msgs;
    msgr_time_ns delay_until; /* injected delivery delay: due time */
};

/*
 * A new message with refs 1. Payload buffers of the given lengths are
 * allocated (uninitialised) when the length is non-zero. NULL on ENOMEM.
 */
struct msgr_msg *msgr_msg_new(uint16_t type, uint32_t front_len,
                              uint32_t middle_len, uint32_t data_len);
void msgr_msg_ref(struct msgr_msg *m);
void msgr_msg_unref(struct msgr_msg *m);
/*
 * Messages up to 64 KiB of payload come from a process-wide pool that keeps
 * a bounded number of freed messages (about 13 MiB at most) for reuse. This
 * gives all of them back to the allocator, e.g. when a process goes idle.
 * Thread safe.
 */
void msgr_msg_pool_trim(void);

/* ------------------------------------------------------------ dispatcher */

/*
 * Callbacks; any may be NULL. Messages passed to ms_dispatch and
 * ms_fast_dispatch carry one reference that the callee now owns (unref it
 * when done). Return value of ms_dispatch: non-zero = handled.
 */
struct msgr_dispatcher {
    void *arg;
    /* Non-zero: deliver this message inline on the connection's worker. */
    int (*ms_can_fast_dispatch)(void *arg, const struct msgr_msg *m);
    void (*ms_fast_dispatch)(void *arg, struct msgr_msg *m);
    int (*ms_dispatch)(void *arg, struct msgr_msg *m);
    void (*ms_handle_connect)(void *arg, struct msgr_conn *c);
    void (*ms_handle_accept)(void *arg, struct msgr_conn *c);
    /* Returns non-zero if handled. */
    int (*ms_handle_reset)(void *arg, struct msgr_conn *c);
    void (*ms_handle_remote_reset)(void *arg, struct msgr_conn *c);
    int (*ms_handle_refused)(void *arg, struct msgr_conn *c);
};

/* ---------------------------------------------------------------- tracer */

/*
 * What happened to a message. Reported with the connection it went
 * through. The tracer is how the trace store (and tests) observe a run;
 * msgr holds no sqlite.
 */
enum msgr_msg_fate {
    MSGR_FATE_QUEUED,
    MSGR_FATE_SENT,
    MSGR_FATE_ACKED,
    MSGR_FATE_DELIVERED,
    MSGR_FATE_DROPPED,   /* discarded: lossy fault, reset, mark_down */
    MSGR_FATE_DUPLICATE, /* received again after replay: dropped */
    MSGR_FATE_BLACKHOLED, /* matched a blackhole rule: dropped at send */
};
const char *msgr_fate_name(int fate);

struct msgr_tracer {
    void *arg;
    /* A protocol state change; from/to are state names. */
    void (*state)(void *arg, struct msgr *m, struct msgr_conn *c,
                  const char *from, const char *to, const char *cause);
    /* A frame in (dir 0: read, before it is processed) or out (dir 1:
     * once completely written to the socket): tag, bytes on the wire. */
    void (*frame)(void *arg, struct msgr *m, struct msgr_conn *c, int dir,
                  unsigned tag, uint64_t bytes);
    void (*msg)(void *arg, struct msgr *m, struct msgr_conn *c,
                const struct msgr_msg *msg, int fate);
    /* A fault or reset of a connection, with its error. */
    void (*fault)(void *arg, struct msgr *m, struct msgr_conn *c, int err,
                  const char *what);
};

/* ----------------------------------------------------------- interceptor */

/*
 * Protocol breakpoints (Ceph's Interceptor, test_msgr's sync points): at
 * each step the connection asks the interceptor what to do. Steps are
 * numbered as Ceph's.
 */
enum msgr_step {
    MSGR_STEP_START_CLIENT_BANNER_EXCHANGE = 1,
    MSGR_STEP_START_SERVER_BANNER_EXCHANGE = 2,
    MSGR_STEP_BANNER_EXCHANGE_BANNER_CONNECTING = 3, /* client, own banner */
    MSGR_STEP_BANNER_EXCHANGE = 4,                   /* server, own banner */
    MSGR_STEP_HANDLE_PEER_BANNER_BANNER_CONNECTING = 5, /* client, peer's */
    MSGR_STEP_HANDLE_PEER_BANNER = 6,                   /* server, peer's */
    MSGR_STEP_HANDLE_PEER_BANNER_PAYLOAD_HELLO_CONNECTING = 7, /* client */
    MSGR_STEP_HANDLE_PEER_BANNER_PAYLOAD = 8,                  /* server */
    MSGR_STEP_SEND_AUTH_REQUEST = 9,
    MSGR_STEP_HANDLE_AUTH_REQUEST_ACCEPTING_SIGN = 10,
    MSGR_STEP_SEND_CLIENT_IDENTITY = 11,
    MSGR_STEP_SEND_SERVER_IDENTITY = 12,
    MSGR_STEP_SEND_RECONNECT = 13,
    MSGR_STEP_SEND_RECONNECT_OK = 14,
    MSGR_STEP_READY = 15,
    MSGR_STEP_HANDLE_MESSAGE = 16,
    MSGR_STEP_READ_MESSAGE_COMPLETE = 17,
    MSGR_STEP_SESSION_RETRY = 18,
};

enum msgr_intercept_action {
    MSGR_INTERCEPT_CONTINUE = 0,
    MSGR_INTERCEPT_FAIL = 1, /* the connection faults (MSGR_EINJECTED) */
    MSGR_INTERCEPT_STOP = 2, /* the connection stops, reset upcall */
    /*
     * The connection freezes at the step (no reading, no writing) until
     * msgr_conn_release(). Ceph's breakpoints block the whole worker
     * thread; here only that connection waits, which the simulator can
     * do too. A fault, a stop or a reuse of the connection by a newer
     * socket ends the hold (the step then never happens).
     */
    MSGR_INTERCEPT_HOLD = 3,
};

struct msgr_interceptor {
    void *arg;
    /* Runs on the connection's worker; returns an msgr_intercept_action. */
    int (*intercept)(void *arg, struct msgr_conn *c, int step);
};

/*
 * Frame breakpoints (the scenario language's `break ... at STEP`): where
 * the interceptor is asked at Ceph's numbered steps, a frame breaker is
 * asked once per msgr2 frame, in the order frames are written (dir 1) or
 * read (dir 0), also when several frames share one socket write, and at
 * the socket steps below. Its answer takes effect at that frame's
 * boundary: the frames before it are written (or processed), the frame
 * itself and those after it are not.
 *  - CONTINUE: nothing.
 *  - FAIL: the connection faults (MSGR_EINJECTED) before the frame's I/O,
 *    as a socket error would make it; a lossless session replays it.
 *  - STOP: the connection is marked down there, reset upcall.
 *  - HOLD: the connection freezes before the frame (no reading, no
 *    writing; later frames queue behind) until msgr_conn_release(). A
 *    frame read is rewound and processed on release without asking the
 *    breaker again.
 *  - STALL: the frame is written (or processed), then the socket is cut
 *    (shutdown: the peer sees the end of the stream) and the connection
 *    freezes, not noticing; on release it finds the cut and faults.
 * A fault, a stop or a reuse of the connection ends a hold.
 * While held, msgr_conn_held_step() is MSGR_BREAK_HELD_STEP(dir, tag),
 * which no interceptor step can be equal to.
 */
#define MSGR_BREAK_BANNER     0x101u /* our banner written (dir 1) / the peer's read (dir 0) */
#define MSGR_BREAK_CONNECTING 0x102u /* dir 1: before the TCP connect of an outgoing attempt */
#define MSGR_BREAK_ACCEPTED   0x103u /* dir 0: an accepted socket, before anything is read */
#define MSGR_INTERCEPT_STALL  4      /* frame breakers only */
#define MSGR_BREAK_HELD       0x10000
#define MSGR_BREAK_HELD_STEP(dir, tag)                                         \
    ((int)(MSGR_BREAK_HELD | ((dir) ? 0x1000 : 0) | ((tag) & 0xfff)))

struct msgr_frame_breaker {
    void *arg;
    /* On the connection's worker, once per frame in the order frames are
     * written (dir 1, tag = msgr2 tag) or read (dir 0), and at the socket
     * steps above. client_side: 1 when this connection is the dialling side
     * of the current attempt. Returns an msgr_intercept_action. At
     * `connecting` STALL starts the connect, then cuts and freezes; at
     * `accepted` it cuts and freezes before anything is read. */
    int (*frame)(void *arg, struct msgr_conn *c, int dir, unsigned tag,
                 int client_side);
};

/* ------------------------------------------------------------- messenger */

struct msgr_config {
    struct msgr_entity_name name;
    uint64_t nonce;
    /* A stack shared with other messengers (a reference is taken), or NULL
     * to create a private one of stack_name ("posix" when NULL). */
    struct msgr_stack *stack;
    const char *stack_name;
    int nworkers;

    /* Timers and limits; 0 selects Ceph's default. */
    msgr_time_ns initial_backoff_ns;  /* 200 ms */
    msgr_time_ns max_backoff_ns;      /* 15 s */
    msgr_time_ns idle_timeout_ns;     /* 900 s */
    msgr_time_ns ready_timeout_ns;    /* 10 s */
    uint32_t max_frame_segment;       /* 16 MiB + 4 KiB */
    uint32_t max_frame;               /* 64 MiB */
    uint64_t dispatch_throttle_bytes; /* 100 MiB */
    int bind_port_min, bind_port_max; /* 6800..7568 */
    int bind_retry_count;             /* 3 */
    msgr_time_ns bind_retry_delay_ns; /* 5 s (tests set it low) */
    int learn_addr_from_peer;         /* 1 (use -1 for "no") */
    int dump_on_send;                 /* hex-dump each message sent */
    int force_rev0;                   /* speak msgr2.0 even to 2.1 peers */
    uint64_t features_supported;      /* MSGR_FEATURES_DEFAULT */

    /* A READY connection sends KEEPALIVE2 every interval; 0: never. */
    msgr_time_ns keepalive_interval_ns;
    /*
     * Delayed delivery (Ceph's ms_inject_delay_type/_max/_probability):
     * a message received from a peer whose entity type is in
     * inject_delay_types (an OR of MSGR_ENTITY_* values, which are single
     * bits) is, with probability inject_delay_prob_ppm / 1e6, held for a
     * uniform time in [0, inject_delay_max_ns] before dispatch. Order per
     * connection is kept: later messages wait behind a delayed one. The
     * randomness is the stack's (seeded on the sim). 0: off.
     */
    uint32_t inject_delay_types;
    msgr_time_ns inject_delay_max_ns;
    uint32_t inject_delay_prob_ppm;
};

/*
 * The seed's constructor: gets the stack (by name, started), picks a local
 * worker, creates the loopback connection and the processors, installs the
 * reap handler. NULL and *err on failure.
 */
struct msgr *msgr_create(const struct msgr_config *cfg, int *err);
/* The seed's destructor: shutdown+wait if still running, then free. */
void msgr_destroy(struct msgr *m);

void msgr_set_policy(struct msgr *m, uint8_t peer_type,
                     const struct msgr_policy *p);
void msgr_set_default_policy(struct msgr *m, const struct msgr_policy *p);
/* May be NULL. Set before start(). */
void msgr_set_tracer(struct msgr *m, const struct msgr_tracer *t);
/* May be NULL. Set before start(). */
void msgr_set_interceptor(struct msgr *m, const struct msgr_interceptor *i);
/* May be NULL. Set before start(). NULL costs nothing on the hot path. */
void msgr_set_frame_breaker(struct msgr *m, const struct msgr_frame_breaker *b);
/*
 * Lets a connection held at a breakpoint go on with `action` (CONTINUE,
 * FAIL or STOP). Thread-safe; takes effect on the connection's worker.
 * Does nothing when the connection is no longer held by then.
 */
int msgr_conn_release(struct msgr_conn *c, int action);
/* The step a connection is held at (an msgr_step, or
 * MSGR_BREAK_HELD_STEP() for a frame breaker), 0 when it is not held. */
int msgr_conn_held_step(struct msgr_conn *c);
/* Adds a dispatcher (copied); the first one makes the messenger ready(). */
int msgr_add_dispatcher(struct msgr *m, const struct msgr_dispatcher *d);

int msgr_bind(struct msgr *m, const struct msgr_addr *addr);
int msgr_bindv(struct msgr *m, const struct msgr_addrvec *addrs);
/* Stops processors, mark_down_all, nonce += 1,000,000, rebinds on port 0
 * avoiding the given ports, restarts processors. */
int msgr_rebind(struct msgr *m, const int *avoid_ports, int navoid);
/* Only records the address used as source for connects. */
int msgr_client_bind(struct msgr *m, const struct msgr_addr *addr);
int msgr_start(struct msgr *m);
/* Starts processors and the dispatch queue (called by add_dispatcher). */
int msgr_ready(struct msgr *m);
/* Stops processors, mark_down_all, marks the loopback down, drains. */
int msgr_shutdown(struct msgr *m);
/* Waits for shutdown, stops dispatch, closes every connection (no reset
 * upcalls), drains again. */
void msgr_wait(struct msgr *m);

/* My addresses (copy) and name. */
void msgr_get_myaddrs(struct msgr *m, struct msgr_addrvec *out);
struct msgr_entity_name msgr_get_myname(struct msgr *m);
uint64_t msgr_get_nonce(struct msgr *m);
void msgr_set_addr_unknowns(struct msgr *m, const struct msgr_addrvec *addrs);
/* The peer told us how it sees us: fill our blank IPs once. */
void msgr_learned_addr(struct msgr *m, const struct msgr_addr *peer_addr_for_me);

/*
 * The connection to peer (type, addrs): the loopback connection for my own
 * address, the registered one if it exists, else a new outgoing one. The
 * caller gets a reference (msgr_conn_unref). NULL and *err on failure
 * (-EINVAL for empty addrs, MSGR_ESHUTDOWN).
 */
struct msgr_conn *msgr_get_connection(struct msgr *m, uint8_t peer_type,
                                      const struct msgr_addrvec *addrs,
                                      int *err);
/* anon: always a new, unregistered connection. */
struct msgr_conn *msgr_connect_to(struct msgr *m, uint8_t peer_type,
                                  const struct msgr_addrvec *addrs, int anon,
                                  int *err);
struct msgr_conn *msgr_get_loopback_connection(struct msgr *m);

/*
 * Sends msg to peer: the seed's send_message/submit_message. With no
 * connection, a server policy drops the message (returns 0 and unrefs,
 * reporting DROPPED), others create a connection.
 */
int msgr_send_message(struct msgr *m, struct msgr_msg *msg, uint8_t peer_type,
                      const struct msgr_addrvec *addrs);
int msgr_submit_message(struct msgr *m, struct msgr_msg *msg,
                        uint8_t peer_type, const struct msgr_addrvec *addrs);

void msgr_mark_down(struct msgr *m, const struct msgr_addrvec *addrs);
void msgr_mark_down_all(struct msgr *m);
/* Closes every connection; queue_reset: raise ms_handle_reset. */
void msgr_shutdown_connections(struct msgr *m, int queue_reset);

/* msgr1 protocol version for a peer type (Ceph: cluster, or OSD 24 ...). */
int msgr_get_proto_version(struct msgr *m, uint8_t peer_type, int connect);

/* Aggregated perf counters of the workers this messenger uses, and the
 * messenger's own: messages dropped by blackhole rules, messages held by
 * the injected delivery delay (total), reads paused by a policy throttle. */
struct msgr_perf {
    uint64_t msgs_in, msgs_out, bytes_in, bytes_out;
    int64_t active_conns;
    uint64_t msgs_blackholed, msgs_delayed, throttle_waits;
};
void msgr_get_perf(struct msgr *m, struct msgr_perf *out);

/* The policy throttles of a peer type (the default policy's when the type
 * has none): what is held now, the most ever held, the limits. */
struct msgr_throttle_stats {
    uint64_t msgs_cur, msgs_peak, msgs_max;
    uint64_t bytes_cur, bytes_peak, bytes_max;
};
void msgr_get_throttle(struct msgr *m, uint8_t peer_type,
                       struct msgr_throttle_stats *out);

/*
 * Blackholes (Ceph's ms_blackhole_*, the scenario language's
 * "blackhole A -> B [type T]"): a message sent to a matching peer is
 * dropped silently at send time, before it is queued (it never reaches
 * the wire and gets no sequence number), reported to the tracer as
 * MSGR_FATE_BLACKHOLED and counted in msgs_blackholed; the send returns 0
 * and the connection stays up. A rule matches when every field set
 * matches:
 *   peer_types  an OR of MSGR_ENTITY_* values; 0 = any type;
 *   addr        family MSGR_AF_UNSPEC = any address; else compared with
 *               the connection's registered peer addresses by endpoint
 *               (family, ip, port): address type and nonce are ignored,
 *               so a restarted peer stays blackholed;
 *   msg_type    0 = every message type;
 *   dirs        MSGR_BLACKHOLE_OUT (what we send; 0 means this),
 *               MSGR_BLACKHOLE_IN (what we receive, as Ceph's
 *               ms_blackhole_* also do: the message is read, acknowledged
 *               and then dropped, reported BLACKHOLED on the receiving
 *               side; the sender sees it delivered), or both.
 * Rules apply to messages sent (or read) after the call; any thread.
 */
#define MSGR_MAX_BLACKHOLES 16
#define MSGR_BLACKHOLE_OUT 1u
#define MSGR_BLACKHOLE_IN  2u
struct msgr_blackhole {
    uint32_t peer_types;
    struct msgr_addr addr;
    uint16_t msg_type;
    uint8_t dirs;
};
/* Adds a rule (an equal rule is not added twice); -ENOSPC when full. */
int msgr_blackhole_set(struct msgr *m, const struct msgr_blackhole *b);
/* Removes the equal rule (-ENOENT if none), or every rule when b is NULL. */
int msgr_blackhole_clear(struct msgr *m, const struct msgr_blackhole *b);
struct msgr_stack *msgr_get_stack(struct msgr *m);

/* ------------------------------------------------------------ connection */

void msgr_conn_ref(struct msgr_conn *c);
void msgr_conn_unref(struct msgr_conn *c);
int msgr_conn_send_message(struct msgr_conn *c, struct msgr_msg *msg);
void msgr_conn_send_keepalive(struct msgr_conn *c);
/* Closes without a reset upcall (Connection::mark_down). */
void msgr_conn_mark_down(struct msgr_conn *c);
int msgr_conn_is_connected(struct msgr_conn *c);
int msgr_conn_is_loopback(struct msgr_conn *c);
uint8_t msgr_conn_peer_type(struct msgr_conn *c);
/* The addresses the connection is registered under (what was dialled, or
 * what an accepted peer announced). */
void msgr_conn_peer_addrs(struct msgr_conn *c, struct msgr_addrvec *out);
/* The addresses the peer announced in its IDENT frame (valid once
 * connected), and its entity name. */
void msgr_conn_peer_ident_addrs(struct msgr_conn *c, struct msgr_addrvec *out);
struct msgr_entity_name msgr_conn_peer_name(struct msgr_conn *c);
uint64_t msgr_conn_features(struct msgr_conn *c);
/* The msgr2 revision negotiated (0 or 1); -1 before the banner. */
int msgr_conn_rev(struct msgr_conn *c);
/* The protocol state's name (for tests and logs). */
const char *msgr_conn_state_name(struct msgr_conn *c);
/* A stable small id (per messenger, increasing) for logs and traces. */
uint64_t msgr_conn_id(struct msgr_conn *c);
/* The connection state machine's declaration (one table in msgr), for
 * tools that draw it, such as reports' state graphs: states are numbered
 * 0 .. msgr_fsm_nstates() - 1 with NONE first; msgr_fsm_state_name gives
 * "READY" ("?" out of range) and msgr_fsm_state_next the bitmask of the
 * states a state may move to (bit i: state i). */
int msgr_fsm_nstates(void);
const char *msgr_fsm_state_name(int state);
unsigned msgr_fsm_state_next(int state);
msgr_time_ns msgr_conn_last_keepalive_ack(struct msgr_conn *c);
/* An opaque slot for the application (Ceph's priv). */
void msgr_conn_set_priv(struct msgr_conn *c, void *priv);
void *msgr_conn_get_priv(struct msgr_conn *c);
struct msgr *msgr_conn_messenger(struct msgr_conn *c);

/* ------------------------------------------------------------------ log */

enum msgr_log_level {
    MSGR_LOG_ERR = 3,
    MSGR_LOG_WARN = 4,
    MSGR_LOG_INFO = 6,
    MSGR_LOG_DEBUG = 7,
    MSGR_LOG_TRACE = 8,
};
typedef void (*msgr_log_cb)(void *arg, int level, const char *line);
/* Per messenger; default: ERR and WARN to stderr. */
void msgr_set_log(struct msgr *m, int level, msgr_log_cb cb, void *arg);

#endif
