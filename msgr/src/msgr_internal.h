/*
 * Internal declarations shared by the messenger's source files.
 *
 * Locking (Ceph's rule): the messenger lock may be held while taking a
 * connection lock, never the reverse. Protocol state, socket and buffers of
 * a connection are touched only on its worker and need no lock; the
 * connection lock guards what other threads touch: the out queue, the
 * keepalive flag and the wake-up flag.
 */
#ifndef MSGR_INTERNAL_H
#define MSGR_INTERNAL_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>

#include "conn_fsm.h"
#include "frame.h"
#include "msgr/msgr.h"

#define MSGR_ASSERT(cond)                                                      \
    ((cond) ? (void)0 : msgr__assert_fail(#cond, __FILE__, __LINE__))
_Noreturn void msgr__assert_fail(const char *expr, const char *file, int line);

void *msgr__alloc(size_t n);
void *msgr__calloc(size_t n, size_t sz);
void *msgr__realloc(void *p, size_t n);
void msgr__free(void *p);

/* A growable array of connection pointers; order is insertion order with
 * swap-remove, so it never depends on pointer values. */
struct conn_vec {
    struct msgr_conn **v;
    int n, cap;
};
int msgr__conn_vec_push(struct conn_vec *cv, struct msgr_conn *c);
/* Removes c if present; returns 1 if it was. */
int msgr__conn_vec_remove(struct conn_vec *cv, struct msgr_conn *c);

/* ---------------------------------------------------------- dispatch queue */

enum dq_kind {
    DQ_MSG,
    DQ_CONNECT,
    DQ_ACCEPT,
    DQ_REMOTE_RESET,
    DQ_RESET,
    DQ_REFUSED,
};

struct dq_item {
    struct dq_item *next;
    int kind;
    int priority;
    uint64_t order; /* FIFO within a priority */
    struct msgr_msg *msg;
    struct msgr_conn *conn; /* a reference */
};

struct msgr_dispatch_queue {
    struct msgr_mutex *lock;
    struct dq_item *head; /* sorted: priority desc, then order */
    struct dq_item *tail;
    struct dq_item *free_items;
    uint64_t next_order;
    int posted;  /* a drain task is queued on the dispatch worker */
    int stopped; /* nothing more is delivered */
    _Atomic uint64_t bytes; /* payload bytes waiting (dispatch throttle) */
    _Atomic int64_t length;
};

/* ------------------------------------------------------------- throttle */

/* One counter of a policy throttle; max 0 = unlimited. Atomics: the
 * connections of one policy live on different workers. */
struct msgr_throttle {
    _Atomic uint64_t cur, peak, max;
};

/* A policy's two throttles, refcounted: the messenger holds one
 * reference per policy entry, each connection one for the policy it
 * uses, and received messages point at their connection's (kept alive by
 * msg->conn), so a message outliving its messenger still releases. */
struct msgr_throttle_set {
    _Atomic int refs;
    struct msgr_throttle msgs, bytes;
};

struct msgr_throttle_set *msgr__throttle_set_new(const struct msgr_policy *p);
void msgr__throttle_set_limits(struct msgr_throttle_set *t,
                               const struct msgr_policy *p);
void msgr__throttle_set_ref(struct msgr_throttle_set *t);
void msgr__throttle_set_unref(struct msgr_throttle_set *t);
/* Takes one message and `bytes` from the limited throttles of t; returns
 * 1 and what was taken, or 0 taking nothing. */
int msgr__throttle_take(struct msgr_throttle_set *t, uint64_t bytes,
                        uint32_t *got_msgs, uint64_t *got_bytes);
void msgr__throttle_put(struct msgr_throttle_set *t, uint32_t msgs,
                        uint64_t bytes);

/* ------------------------------------------------------------- messenger */

#define MSGR_MAX_DISPATCHERS 8
#define MSGR_MAX_POLICIES    8
#define MSGR_REAP_THRESHOLD  5

struct msgr {
    struct msgr_stack *stack;
    const struct msgr_stack_ops *ops;
    struct msgr_mutex *lock;

    struct msgr_config cfg; /* defaults filled in */
    struct msgr_frame_limits limits;
    struct msgr_entity_name myname;
    uint64_t nonce;
    struct msgr_addrvec myaddrs;
    int need_addr;   /* learned_addr still to be done */
    int did_bind;
    int started;
    int ready;
    _Atomic int stopping; /* shutdown() was called */
    int stopped_wait;     /* wait() done */

    struct msgr_policy default_policy;
    int npolicies;
    uint8_t policy_type[MSGR_MAX_POLICIES];
    struct msgr_policy policy[MSGR_MAX_POLICIES];
    /* one throttle set per policy entry (references) */
    struct msgr_throttle_set *default_throttle;
    struct msgr_throttle_set *policy_throttle[MSGR_MAX_POLICIES];

    /* blackhole rules, under lock; the count is also read without it as
     * the hot path's "any rule?" test */
    struct msgr_blackhole blackholes[MSGR_MAX_BLACKHOLES];
    _Atomic int nblackholes;
    _Atomic uint64_t msgs_blackholed, msgs_delayed, throttle_waits;

    struct msgr_tracer tracer;
    int has_tracer;
    struct msgr_interceptor interceptor;
    int has_interceptor;
    struct msgr_frame_breaker breaker;
    int has_breaker;
    struct msgr_dispatcher disp[MSGR_MAX_DISPATCHERS];
    int ndisp;

    msgr_log_cb log_cb;
    void *log_arg;
    int log_level;

    /* the worker running reaping and the dispatch queue (Ceph's
     * local_worker and ms_dispatch thread) */
    struct msgr_worker *local_worker;
    struct msgr_dispatch_queue dq;

    /* processors: one listener per bound address (per worker as well when
     * the stack has a local listen table) */
    int nlisteners;
    struct msgr_listener *listeners[MSGR_ADDRVEC_MAX * 24];
    int processors_started;

    /* connection tables, under lock */
    struct conn_vec conns;           /* registered, by peer addrs */
    struct conn_vec accepting_conns; /* accepted, handshake not done */
    struct conn_vec anon_conns;
    struct conn_vec deleted_conns;   /* stopped, waiting for the reaper */
    int reap_posted;
    struct msgr_conn *loopback;

    uint64_t global_seq; /* under lock */
    _Atomic uint64_t next_conn_id; /* taken with or without the lock */
};

const struct msgr_policy *msgr__get_policy(struct msgr *m, uint8_t type);
/* The throttle set of the policy for type, with a reference. */
struct msgr_throttle_set *msgr__get_throttle(struct msgr *m, uint8_t type);
/* Non-zero if a blackhole rule drops msg sent (dir MSGR_BLACKHOLE_OUT) or
 * received (MSGR_BLACKHOLE_IN) on c. Any thread. */
int msgr__blackholed(struct msgr *m, struct msgr_conn *c,
                     const struct msgr_msg *msg, unsigned dir);
uint64_t msgr__get_global_seq(struct msgr *m, uint64_t old);
void msgr__log(struct msgr *m, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#define MSGR_LOG(m, lvl, ...)                                                  \
    do {                                                                       \
        if ((lvl) <= (m)->log_level)                                           \
            msgr__log((m), (lvl), __VA_ARGS__);                                \
    } while (0)

/* Called by connections (on their worker). */
/* Handshake reached the session level: move from accepting to conns.
 * Returns 0, or -1 if another live connection holds the peer's slot. */
int msgr__accept_conn(struct msgr *m, struct msgr_conn *c);
/* Looks up a registered live connection by peer addrs (a reference). */
struct msgr_conn *msgr__lookup_conn(struct msgr *m,
                                    const struct msgr_addrvec *addrs);
/* The connection stopped: park it in deleted_conns for the reaper. */
void msgr__unregister_conn(struct msgr *m, struct msgr_conn *c);

/* Dispatch-queue entry points (any thread). They take over msg's
 * reference and take their own conn reference. */
void msgr__dq_enqueue_msg(struct msgr *m, struct msgr_conn *c,
                          struct msgr_msg *msg);
void msgr__dq_enqueue_event(struct msgr *m, struct msgr_conn *c, int kind);
/* Upcalls: fast path first (inline on the caller's thread), else queued. */
void msgr__deliver_msg(struct msgr *m, struct msgr_conn *c,
                       struct msgr_msg *msg);
void msgr__dq_init(struct msgr *m);
void msgr__dq_fini(struct msgr *m);
void msgr__dq_start(struct msgr *m);
void msgr__dq_stop(struct msgr *m);
/* Drops every queued entry of this connection. */
void msgr__dq_discard_conn(struct msgr *m, struct msgr_conn *c);
/* Releases dispatch-throttle bytes of a delivered message. */
void msgr__dq_release(struct msgr *m, uint64_t bytes);

/* Tracer helpers; free when no tracer is set. */
void msgr__trace_msg(struct msgr *m, struct msgr_conn *c,
                     const struct msgr_msg *msg, int fate);

/* --------------------------------------------------------------- message */

uint64_t msgr__msg_payload_len(const struct msgr_msg *msg);
/* A message whose three payloads live in one buffer of len bytes that the
 * message owns. */
struct msgr_msg *msgr__msg_new_raw(uint32_t len, uint8_t **buf);

/* The message pool (msg_pool.c): size classes by payload length. */
enum msgr__msg_pool_class {
    MSGR_MSG_POOL_EMPTY, /* no payload */
    MSGR_MSG_POOL_64,    /* up to 64 B */
    MSGR_MSG_POOL_256,   /* up to 256 B */
    MSGR_MSG_POOL_4K,    /* up to 4 KiB */
    MSGR_MSG_POOL_64K,   /* up to 64 KiB */
    MSGR_MSG_POOL_NCLASS,
    MSGR_MSG_POOL_NONE = MSGR_MSG_POOL_NCLASS /* larger: plain malloc */
};
/* Uninitialised memory for a message and payload bytes behind it (*buf);
 * any thread. NULL on ENOMEM. */
struct msgr_msg *msgr__msg_pool_get(size_t payload, uint8_t **buf);
/* Gives back what msgr__msg_pool_get returned; any thread. */
void msgr__msg_pool_put(struct msgr_msg *m);
/* For tests: switch pooling on or off (off also trims); returns the old
 * setting. Off by default under AddressSanitizer. */
int msgr__msg_pool_set_enabled(int on);
unsigned msgr__msg_pool_count(enum msgr__msg_pool_class cls);
unsigned msgr__msg_pool_keep_max(enum msgr__msg_pool_class cls);
enum msgr__msg_pool_class msgr__msg_pool_class_of(const struct msgr_msg *m);

/* ------------------------------------------------------------ connection */

/* The out queue: FIFO buckets ordered by priority, highest first. */
struct out_bucket {
    struct out_bucket *next;
    int priority;
    struct msgr_msg *head, *tail;
};

/* A frame breaker's say on a frame waiting to be written: asked once,
 * when the frame is about to be handed to the socket. FB_FAIL, FB_STOP and
 * FB_HOLD act once every frame before it is written; FB_STALL once the
 * frame itself is. */
enum out_frame_brk {
    FB_UNASKED = 0,
    FB_PASSED,
    FB_FAIL,
    FB_STOP,
    FB_HOLD,
    FB_STALL,
};

/* A frame waiting for writev; pooled per connection. */
struct out_frame {
    struct out_frame *next;
    struct msgr_frame_out fo;
    struct msgr_msg *msg;     /* a reference while the frame is queued */
    uint8_t hdr2[MSGR_HEADER2_LEN];
    uint8_t ctrl[512];        /* control payload storage */
    uint8_t tag;
    uint8_t brk;              /* enum out_frame_brk: the breaker's say */
    int iov_done;             /* iovecs fully written */
    size_t iov_off;           /* bytes written of iov[iov_done] */
};

typedef int (*conn_read_fn)(struct msgr_conn *c, const uint8_t *p, size_t n);
struct conn_hold;
typedef int (*conn_resume_fn)(struct msgr_conn *c, struct conn_hold *h);

/*
 * A breakpoint holding a connection (worker only). Steps that come before
 * a frame is sent keep the rest of their work as `resume`; steps met while
 * reading rewind the read cursor instead and replay the frame on release,
 * with `pass` letting the replay through the steps it already passed.
 */
struct conn_hold {
    int step;                /* 0: not held */
    int pass;                /* replaying: intercepts up to this step go on */
    conn_resume_fn resume;   /* NULL: a replayed read */
    struct msgr_conn *ex;    /* SEND_RECONNECT_OK: the session to resume */
    uint64_t arg;            /* the step's saved value (a seq) */
    /* replaying a frame a frame breaker held: the breaker is not asked
     * again for it */
    int brk_pass;
    /* a MESSAGE frame read, traced and held before it was processed:
     * reported dropped if the hold ends without replaying it */
    int has_msg;
    struct msgr_msg_header msg_hdr;
};

struct msgr_conn {
    struct msgr *msgr;
    struct msgr_worker *worker;
    const struct msgr_stack_ops *ops;
    _Atomic int refs;
    uint64_t id;
    struct msgr_mutex *lock;
    void *priv;

    /* identity */
    /* written on the worker at each handshake, read by accessors from any
     * thread (the application, the dispatch thread) */
    _Atomic uint8_t peer_type;
    struct msgr_addrvec peer_addrs; /* registration key */
    struct msgr_addr target_addr;   /* what we dial (clients) */
    struct msgr_entity_name peer_name;
    struct msgr_addrvec ident_addrs; /* what the peer said it is */
    struct msgr_policy policy;
    int is_loopback, is_client;
    uint64_t features;
    _Atomic int rev1; /* -1 until the banners are exchanged */

    /* state, written on the worker, read anywhere */
    _Atomic int state;
    _Atomic int connected;   /* READY reached and not closed */
    _Atomic int stop_requested;
    int unregistered;        /* in deleted_conns */
    int started;             /* worker-side init done (timers exist) */

    /* socket and I/O (worker only) */
    struct msgr_socket *sock;
    uint8_t *rbuf;
    size_t rcap, rlen, roff;
    uint32_t rchunk; /* read size now: grows while reads fill it */
    size_t need;
    size_t rkeep; /* bytes before roff kept: the preamble of the frame
                     whose body is being read (a hold rewinds over it) */
    conn_read_fn next_read;
    struct msgr_preamble pre; /* of the frame being read */
    struct out_frame *wq_head, *wq_tail, *frame_pool;
    int nframes_pooled;
    size_t wq_bytes;
    int wq_nframes;
    unsigned io_want;
    int paused;         /* reading stopped by a throttle */
    int brk_stall_connected; /* `connecting` STALL: cut once connected */
    /* policy throttle (a reference) and what is held for the frame being
     * read: moves to the message, or is returned when none is built */
    struct msgr_throttle_set *throttle;
    uint32_t thr_msgs;
    uint64_t thr_bytes;
    /* injected delivery delay: received messages waiting (linked by
     * msg->next, due at msg->delay_until), in arrival order */
    struct msgr_msg *delay_head, *delay_tail;
    struct conn_hold hold;
    _Atomic int held_step; /* hold.step, for other threads */

    /* session (worker only) */
    uint64_t out_seq, in_seq, ack_left;
    uint64_t client_cookie, server_cookie;
    uint64_t global_seq, peer_global_seq, connect_seq;
    struct msgr_msg *sent_head, *sent_tail; /* lossless: sent, unacked */
    uint64_t nsent;
    msgr_time_ns backoff_ns;
    int replacing;

    /* under lock: what other threads hand to the worker */
    struct out_bucket *out_q;
    struct out_bucket *bucket_pool;
    uint64_t out_q_len;
    int keepalive_pending;
    int wake_posted;
    msgr_time_ns last_keepalive_ack; /* atomic-ish: written under lock */

    /* timers (worker only) */
    struct msgr_timer *backoff_timer;
    struct msgr_timer *tick_timer;   /* idle / ready timeout */
    struct msgr_timer *retry_timer;  /* throttle retry */
    struct msgr_timer *keepalive_timer; /* keepalive_interval_ns */
    struct msgr_timer *delay_timer;  /* injected delivery delay */
    msgr_time_ns last_active;
    int tick_is_ready_timeout;
};

/* Allocates an outgoing (client) or accepting connection object. */
struct msgr_conn *msgr__conn_new(struct msgr *m, struct msgr_worker *w,
                                 int is_client, uint8_t peer_type,
                                 const struct msgr_addrvec *peer_addrs);
struct msgr_conn *msgr__conn_new_loopback(struct msgr *m);
/* Begins connecting (posts to the worker). */
void msgr__conn_start_connect(struct msgr_conn *c);
/* Adopts an accepted socket (on c's worker, where the socket lives). */
void msgr__conn_start_accept(struct msgr_conn *c, struct msgr_socket *s);
/* Stops asynchronously: posts to the worker. queue_reset: raise
 * ms_handle_reset if not closed yet. */
void msgr__conn_stop(struct msgr_conn *c, int queue_reset);
int msgr__conn_state(const struct msgr_conn *c);

#endif
