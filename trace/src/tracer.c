/*
 * The tracer adapter: a struct msgr_tracer whose callbacks append one
 * node's events to the open run.
 *
 * Connections are keyed by (node, msgr_conn_id): the messenger's own id
 * is stable and never reused, where a pointer could be reused by a later
 * connection. Trace ids are handed out in first-seen order.
 *
 * Threads: callbacks may come from any worker; the handle's mutex orders
 * them, and the clock is read under it so that seq order and time order
 * agree. The peer's identity is read only in state callbacks, which run
 * on the connection's own worker, where that identity is written.
 */
#include <stdio.h>
#include <string.h>

#include "msgr/msgr.h"
#include "trace_internal.h"

/* The per-message frames SESSIONS detail leaves to the message table. */
#define MSGR_TAG_MESSAGE_ 17
#define MSGR_TAG_ACK_ 20

const char *
trace_detail_name(enum trace_detail d)
{
    return d == TRACE_DETAIL_SESSIONS ? "sessions" : "full";
}

int
trace_detail_parse(const char *s)
{
    if (!s)
        return -1;
    if (!strcmp(s, "full"))
        return TRACE_DETAIL_FULL;
    if (!strcmp(s, "sessions"))
        return TRACE_DETAIL_SESSIONS;
    return -1;
}

/* msgr2 frame tags in the scenario language's spelling (PROTOCOL.md). */
static const char *const tag_names[] = {
    [1] = "hello",
    [2] = "auth_request",
    [3] = "auth_bad_method",
    [4] = "auth_reply_more",
    [5] = "auth_request_more",
    [6] = "auth_done",
    [7] = "auth_signature",
    [8] = "client_ident",
    [9] = "server_ident",
    [10] = "ident_missing_features",
    [11] = "session_reconnect",
    [12] = "session_reset",
    [13] = "session_retry",
    [14] = "session_retry_global",
    [15] = "session_reconnect_ok",
    [16] = "wait",
    [17] = "message",
    [18] = "keepalive2",
    [19] = "keepalive2_ack",
    [20] = "ack",
    [21] = "compression_request",
    [22] = "compression_done",
};
#define NTAGS (sizeof(tag_names) / sizeof(tag_names[0]))

/* Lock held. 0 when the adapter's run is no longer the open one: the
 * callback then records nothing. */
static int
live(struct trace_node *n)
{
    struct trace_db *db = n->db;

    return db->run_open && db->run == n->run;
}

/* A failure inside a callback cannot be returned: keep the first for
 * trace_run_end. */
static void
note_err(struct trace_db *db, int e)
{
    if (e && !db->sticky_err)
        db->sticky_err = e;
}

static void
peer_identity(struct msgr_conn *c, char *name, size_t nlen, char *addr,
              size_t alen, int *have_name)
{
    struct msgr_entity_name pn = msgr_conn_peer_name(c);
    struct msgr_addrvec av;
    uint8_t t = pn.type ? pn.type : msgr_conn_peer_type(c);

    *have_name = 0;
    if (t && pn.num >= 0 && strcmp(msgr_entity_type_name(t), "unknown")) {
        snprintf(name, nlen, "%s.%lld", msgr_entity_type_name(t),
                 (long long)pn.num);
        *have_name = 1;
    }
    msgr_conn_peer_addrs(c, &av);
    addr[0] = 0;
    if (av.n)
        msgr_addrvec_format(&av, addr, alen);
}

/*
 * The trace id of c, inserting its row the first time. with_peer: the
 * caller runs on c's worker and may read its peer identity. Lock held.
 */
static int64_t
conn_of(struct trace_node *n, struct msgr_conn *c, int64_t t, int with_peer)
{
    struct trace_db *db = n->db;
    uint64_t mid;
    int64_t id = 0;
    char name[64], addr[256];
    int have_name = 0;

    if (!c)
        return 0;
    mid = msgr_conn_id(c);
    if (mid < n->nconn_by_msgr && n->conn_by_msgr[mid])
        return n->conn_by_msgr[mid];
    if (with_peer)
        peer_identity(c, name, sizeof(name), addr, sizeof(addr), &have_name);
    note_err(db, trace__conn_add(db, n->id, mid, have_name ? name : NULL,
                                 with_peer && addr[0] ? addr : NULL, NULL, t,
                                 &id));
    return id;
}

static void
state_cb(void *arg, struct msgr *m, struct msgr_conn *c, const char *from,
         const char *to, const char *cause)
{
    struct trace_node *n = arg;
    struct trace_db *db = n->db;
    struct trace_event_rec e;

    (void)m;
    pthread_mutex_lock(&db->lock);
    if (!live(n))
        goto out;
    trace_event_rec_init(&e, TRACE_EV_STATE, n->now(n->clock_arg));
    e.node = n->id;
    e.conn = conn_of(n, c, e.t_ns, 1);
    e.state_from = from;
    e.state_to = to;
    e.detail = cause;
    if (e.conn && to && strcmp(to, "READY") == 0) {
        /* an accepted connection learns who its peer is by now */
        char name[64], addr[256];
        int have_name;
        peer_identity(c, name, sizeof(name), addr, sizeof(addr), &have_name);
        note_err(db, trace__conn_set_peer(db, e.conn,
                                          have_name ? name : NULL,
                                          addr[0] ? addr : NULL));
    }
    note_err(db, trace__event_add(db, &e, NULL));
    if (e.conn) {
        struct trace_conn *tc = &db->conns[e.conn - 1];
        snprintf(tc->last_state, sizeof(tc->last_state), "%s", to ? to : "");
        tc->last_t = e.t_ns;
    }
out:
    pthread_mutex_unlock(&db->lock);
}

static void
frame_cb(void *arg, struct msgr *m, struct msgr_conn *c, int dir,
         unsigned tag, uint64_t bytes)
{
    struct trace_node *n = arg;
    struct trace_db *db = n->db;
    struct trace_event_rec e;
    char other[16];

    (void)m;
    /* SESSIONS: messages and acks live in the message table */
    if (db->detail == TRACE_DETAIL_SESSIONS &&
        (tag == MSGR_TAG_MESSAGE_ || tag == MSGR_TAG_ACK_))
        return;
    pthread_mutex_lock(&db->lock);
    if (!live(n))
        goto out;
    trace_event_rec_init(&e, dir ? TRACE_EV_FRAME_OUT : TRACE_EV_FRAME_IN,
                         n->now(n->clock_arg));
    e.node = n->id;
    e.conn = conn_of(n, c, e.t_ns, 0);
    if (tag < NTAGS && tag_names[tag]) {
        e.tag = tag_names[tag];
    } else {
        snprintf(other, sizeof(other), "tag_%u", tag);
        e.tag = other;
    }
    e.bytes = (int64_t)bytes;
    note_err(db, trace__event_add(db, &e, NULL));
out:
    pthread_mutex_unlock(&db->lock);
}

/* Which side reports this fate: the receiver for deliveries, duplicates
 * and drops of received messages (which carry their connection). */
static int
receiver_side(const struct msgr_msg *msg, int fate)
{
    return fate == MSGR_FATE_DELIVERED || fate == MSGR_FATE_DUPLICATE ||
           ((fate == MSGR_FATE_DROPPED || fate == MSGR_FATE_BLACKHOLED) &&
            msg->conn != NULL);
}

static void
msg_cb(void *arg, struct msgr *m, struct msgr_conn *c,
       const struct msgr_msg *msg, int fate)
{
    struct trace_node *n = arg;
    struct trace_db *db = n->db;
    struct trace_event_rec e;
    struct trace_msg_rec r;

    (void)m;
    pthread_mutex_lock(&db->lock);
    if (!live(n))
        goto out;
    trace_event_rec_init(&e, TRACE_EV_MSG, n->now(n->clock_arg));
    e.node = n->id;
    e.conn = conn_of(n, c, e.t_ns, 0);
    e.fate = msgr_fate_name(fate);
    if (msg) {
        int rx = receiver_side(msg, fate);
        memset(&r, 0, sizeof(r));
        r.src = rx ? trace__node_by_entity(db, msg->hdr.src.type,
                                           msg->hdr.src.num)
                   : n->id;
        r.dst = rx ? n->id
                   : (e.conn ? db->conns[e.conn - 1].peer_node : 0);
        r.conn = rx ? 0 : e.conn;
        r.msg_id = (int64_t)msg->hdr.tid;
        /* a queued message has no seq yet */
        r.seq = msg->hdr.seq ? (int64_t)msg->hdr.seq : -1;
        r.size = (int64_t)msg->front.len + msg->middle.len + msg->data.len;
        r.fate = fate;
        r.t_ns = e.t_ns;
        e.msg_src = r.src ? r.src : -1;
        e.msg_id = r.msg_id;
        e.msg_seq = r.seq;
        e.bytes = r.size;
        /* tid 0: not one of the workload's messages; an unknown sender
         * cannot key a row either */
        if (r.msg_id && r.src)
            note_err(db, trace__message_fate(db, &r));
    }
    if (db->detail == TRACE_DETAIL_FULL || fate == MSGR_FATE_DROPPED ||
        fate == MSGR_FATE_DUPLICATE || fate == MSGR_FATE_BLACKHOLED)
        note_err(db, trace__event_add(db, &e, NULL));
out:
    pthread_mutex_unlock(&db->lock);
}

static void
fault_cb(void *arg, struct msgr *m, struct msgr_conn *c, int err,
         const char *what)
{
    struct trace_node *n = arg;
    struct trace_db *db = n->db;
    struct trace_event_rec e;

    (void)m;
    pthread_mutex_lock(&db->lock);
    if (!live(n))
        goto out;
    trace_event_rec_init(&e, TRACE_EV_CONN_FAULT, n->now(n->clock_arg));
    e.node = n->id;
    e.conn = conn_of(n, c, e.t_ns, 0);
    e.err = err;
    e.detail = what;
    note_err(db, trace__event_add(db, &e, NULL));
out:
    pthread_mutex_unlock(&db->lock);
}

int
trace_tracer_for_node(struct trace_db *db, int64_t run, int64_t node,
                      trace_clock_fn now, void *clock_arg,
                      struct msgr_tracer *out)
{
    struct trace_node *n;
    int e;

    if (!now || !out)
        return TRACE_EINVAL;
    pthread_mutex_lock(&db->lock);
    e = trace__check_run(db, run);
    if (e)
        goto out;
    n = trace__node_get(db, run, node);
    if (!n) {
        e = trace__fail(db, TRACE_ENOTFOUND, "%s: run %lld: no node %lld",
                        db->path, (long long)run, (long long)node);
        goto out;
    }
    n->now = now;
    n->clock_arg = clock_arg;
    memset(out, 0, sizeof(*out));
    out->arg = n;
    out->state = state_cb;
    out->frame = frame_cb;
    out->msg = msg_cb;
    out->fault = fault_cb;
out:
    pthread_mutex_unlock(&db->lock);
    return e;
}

int64_t
trace_tracer_conn_id(struct trace_db *db, int64_t node, uint64_t msgr_id)
{
    struct trace_node *n;
    int64_t id = 0;

    pthread_mutex_lock(&db->lock);
    n = trace__node_get(db, db->run, node);
    if (n && msgr_id < n->nconn_by_msgr)
        id = n->conn_by_msgr[msgr_id];
    pthread_mutex_unlock(&db->lock);
    return id;
}
