/*
 * A connection (Ceph's AsyncConnection + ProtocolV2): the socket, the
 * read and write engines, the out queue, the sent (unacked) list, the
 * timers, faults, and the msgr2 handshake and steady-state protocol.
 *
 * Everything below runs on the connection's worker unless a comment says
 * otherwise; the functions at the end (msgr_conn_*) are the public,
 * any-thread entry points, which only touch the locked fields and post
 * work to the worker.
 *
 * Reads are continuations: c->need bytes, then c->next_read(c, p, need).
 * Writes are frames in c->wq, written with writev as the socket allows.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "msgr_internal.h"

/* Reads start at READ_CHUNK_MIN bytes of buffer (Ceph's prefetch size:
 * an idle connection keeps little) and double up to READ_CHUNK while
 * reads fill what they are offered (a stream). */
#define READ_CHUNK_MIN   (4 * 1024)
#define READ_CHUNK       (64 * 1024)
#define READS_PER_EVENT  16
#define WQ_HIGH_BYTES    (1024 * 1024)
#define WQ_MAX_FRAMES    256
/* Small frames take 4-5 iovecs each: a wide gather keeps the number of
 * sendmsg calls per message low (IOV_MAX on Linux). */
#define WRITE_IOV_MAX    1024
#define FRAME_POOL_MAX   WQ_MAX_FRAMES
#define THROTTLE_RETRY_NS (1 * MSGR_NS_PER_MS)

static const char *const state_names[] = {
#define MSGR_CONN_STATE_NAME_(name, next) #name,
    MSGR_CONN_STATES(MSGR_CONN_STATE_NAME_)
#undef MSGR_CONN_STATE_NAME_
};

static const unsigned state_next[] = {
#define MSGR_CONN_STATE_NEXT_(name, next) (next),
    MSGR_CONN_STATES(MSGR_CONN_STATE_NEXT_)
#undef MSGR_CONN_STATE_NEXT_
};

const char *
msgr__conn_state_name(int state)
{
    if (state < 0 || state >= MSGR_CONN_NSTATES)
        return "?";
    return state_names[state];
}

unsigned
msgr__conn_state_next(int state)
{
    if (state < 0 || state >= MSGR_CONN_NSTATES)
        return 0;
    return state_next[state];
}

int
msgr_fsm_nstates(void)
{
    return MSGR_CONN_NSTATES;
}

const char *
msgr_fsm_state_name(int state)
{
    return msgr__conn_state_name(state);
}

unsigned
msgr_fsm_state_next(int state)
{
    return msgr__conn_state_next(state);
}

int
msgr__conn_state(const struct msgr_conn *c)
{
    return atomic_load_explicit(&c->state, memory_order_acquire);
}

static void do_write(struct msgr_conn *c);
static void do_read(struct msgr_conn *c);
static void do_connect(struct msgr_conn *c);
static void fault(struct msgr_conn *c, int err, const char *what);
static void stop_now(struct msgr_conn *c, int queue_reset);
static void attach_socket(struct msgr_conn *c, struct msgr_socket *s,
                          unsigned want);
static void close_socket(struct msgr_conn *c, int abortive);

/* Every state change goes through here (curl's mstate): the transition is
 * checked against the declared table, traced and published. */
static void
set_state(struct msgr_conn *c, int to, const char *cause)
{
    int from = msgr__conn_state(c);
    if (from == to)
        return;
    if (!(msgr__conn_state_next(from) & (1u << to))) {
        msgr__log(c->msgr, MSGR_LOG_ERR, "conn %llu: illegal transition %s -> %s (%s)",
                  (unsigned long long)c->id, msgr__conn_state_name(from),
                  msgr__conn_state_name(to), cause);
        MSGR_ASSERT(!"illegal connection state transition");
    }
    atomic_store_explicit(&c->state, to, memory_order_release);
    atomic_store_explicit(&c->connected, to == MSGR_CONN_READY,
                          memory_order_release);
    struct msgr *m = c->msgr;
    if (m->has_tracer && m->tracer.state)
        m->tracer.state(m->tracer.arg, m, c, msgr__conn_state_name(from),
                        msgr__conn_state_name(to), cause);
    MSGR_LOG(m, MSGR_LOG_DEBUG, "conn %llu: %s -> %s (%s)",
             (unsigned long long)c->id, msgr__conn_state_name(from),
             msgr__conn_state_name(to), cause);
}

static int
is_connecting_state(int s)
{
    return s == MSGR_CONN_START_CONNECT || s == MSGR_CONN_CONNECTING ||
           s == MSGR_CONN_BANNER_CONNECTING || s == MSGR_CONN_HELLO_CONNECTING ||
           s == MSGR_CONN_AUTH_CONNECTING ||
           s == MSGR_CONN_AUTH_CONNECTING_SIGN ||
           s == MSGR_CONN_SESSION_CONNECTING ||
           s == MSGR_CONN_SESSION_RECONNECTING;
}

static msgr_time_ns
now(struct msgr_conn *c)
{
    return c->ops->now_ns(c->msgr->stack);
}

static void
trace_fault(struct msgr_conn *c, int err, const char *what)
{
    struct msgr *m = c->msgr;
    if (m->has_tracer && m->tracer.fault)
        m->tracer.fault(m->tracer.arg, m, c, err, what);
}

/* Freezes c at `step`: nothing is read or written until released. */
static void
hold_begin(struct msgr_conn *c, int step, conn_resume_fn resume)
{
    c->hold.step = step;
    c->hold.resume = resume;
    atomic_store_explicit(&c->held_step, step, memory_order_release);
    if (c->sock && c->io_want) {
        c->io_want = 0;
        c->ops->io_want(c->sock, 0);
    }
}

/* A MESSAGE frame read (and traced) that will never be processed: the
 * tracer still learns its fate, from its header (no message is built). */
static void
trace_msg_unprocessed(struct msgr_conn *c, const struct msgr_msg_header *hdr)
{
    struct msgr *m = c->msgr;
    if (!m->has_tracer || !m->tracer.msg)
        return;
    struct msgr_msg shadow;
    memset(&shadow, 0, sizeof(shadow));
    shadow.hdr = *hdr;
    msgr__trace_msg(m, c, &shadow, MSGR_FATE_DROPPED);
}

/* Gives back what a hold kept that its step did not consume. */
static void
hold_drop(struct conn_hold *h)
{
    struct msgr_conn *ex = h->ex;
    if (!ex)
        return;
    h->ex = NULL;
    ex->ops->mutex_lock(ex->lock);
    ex->replacing = 0;
    ex->ops->mutex_unlock(ex->lock);
    msgr_conn_unref(ex);
}

/* A hold ends without its step happening: a message frame it kept
 * unprocessed is dropped, and what it held is given back. */
static void
hold_end(struct msgr_conn *c, struct conn_hold *h)
{
    if (h->has_msg)
        trace_msg_unprocessed(c, &h->msg_hdr);
    hold_drop(h);
}

/* The socket or the session context went away: the held step never
 * happens. */
static void
hold_clear(struct msgr_conn *c)
{
    if (!c->hold.step && !c->hold.pass && !c->hold.brk_pass)
        return;
    struct conn_hold h = c->hold;
    memset(&c->hold, 0, sizeof(c->hold));
    atomic_store_explicit(&c->held_step, 0, memory_order_release);
    hold_end(c, &h);
}

/*
 * A protocol breakpoint. Returns 0 to go on, MSGR_EINJECTED when the
 * interceptor says fail (the caller returns it, and the connection
 * faults), or 1 when it said stop (the connection is stopped here) or
 * hold (`resume` finishes the step on release; NULL when the caller
 * rewinds its read instead).
 */
static int
intercept_at(struct msgr_conn *c, int step, conn_resume_fn resume)
{
    struct msgr *m = c->msgr;
    if (c->hold.pass) {
        /* replaying a frame read before a hold: the steps up to the one
         * that held were answered the first time */
        if (step == c->hold.pass)
            c->hold.pass = 0;
        return 0;
    }
    if (!m->has_interceptor)
        return 0;
    switch (m->interceptor.intercept(m->interceptor.arg, c, step)) {
    case MSGR_INTERCEPT_FAIL:
        return MSGR_EINJECTED;
    case MSGR_INTERCEPT_STOP:
        stop_now(c, 1);
        return 1;
    case MSGR_INTERCEPT_HOLD:
        hold_begin(c, step, resume);
        return 1;
    default:
        return 0;
    }
}

/* A step followed by `then`: now, or on release when it holds. */
static int
at_step(struct msgr_conn *c, int step, conn_resume_fn then)
{
    int r = intercept_at(c, step, then);
    return r ? r : then(c, NULL);
}

/* A step met while reading the last `n` bytes: a hold rewinds them so
 * they are read again on release. */
static int
intercept_read(struct msgr_conn *c, int step, size_t n)
{
    int r = intercept_at(c, step, NULL);
    if (r == 1 && c->hold.step)
        c->roff -= n;
    return r;
}

static int
step_done(struct msgr_conn *c, struct conn_hold *h)
{
    (void)c;
    (void)h;
    return 0;
}

/* ------------------------------------------------------ frame breaker */

/*
 * The frame breaker (msgr_set_frame_breaker) is asked once per frame in
 * write or read order, and at the socket steps. Its holds use the hold
 * machinery above with MSGR_BREAK_HELD_STEP() as the step, so a fault, a
 * stop or a reuse ends them as any other.
 */
static int
brk_ask(struct msgr_conn *c, int dir, unsigned tag)
{
    struct msgr *m = c->msgr;
    return m->breaker.frame(m->breaker.arg, c, dir, tag, c->is_client);
}

/* STALL: the socket is cut under the connection, which freezes without
 * noticing; released, it goes on (`resume`), finds the cut and faults. */
static void
brk_stall_then(struct msgr_conn *c, int dir, unsigned tag,
               conn_resume_fn resume)
{
    c->ops->shutdown(c->sock);
    hold_begin(c, MSGR_BREAK_HELD_STEP(dir, tag), resume);
}

static void
brk_stall(struct msgr_conn *c, int dir, unsigned tag)
{
    brk_stall_then(c, dir, tag, step_done);
}

/* Released: the rewound frame is processed without asking again. */
static int
brk_replay_step(struct msgr_conn *c, struct conn_hold *h)
{
    (void)h;
    c->hold.brk_pass = 1;
    return 0;
}

/*
 * The say on a frame (or banner) just read, whose last `n` bytes end at
 * roff. Returns 0 to process it (*stall: then cut and freeze), 1 when the
 * connection faulted, stopped or holds before it (rewound, so the frame
 * is read again on release).
 */
static int
brk_read(struct msgr_conn *c, unsigned tag, size_t n, int *stall)
{
    *stall = 0;
    /* a replay after an interceptor's hold was asked the first time */
    if (!c->msgr->has_breaker || c->hold.pass)
        return 0;
    if (c->hold.brk_pass) {
        c->hold.brk_pass = 0;
        return 0;
    }
    switch (brk_ask(c, 0, tag)) {
    case MSGR_INTERCEPT_FAIL:
        fault(c, MSGR_EINJECTED, "breakpoint");
        return 1;
    case MSGR_INTERCEPT_STOP:
        stop_now(c, 1);
        return 1;
    case MSGR_INTERCEPT_HOLD:
        c->roff -= n;
        hold_begin(c, MSGR_BREAK_HELD_STEP(0, tag), brk_replay_step);
        return 1;
    case MSGR_INTERCEPT_STALL:
        *stall = 1;
        return 0;
    default:
        return 0;
    }
}

/* After a frame read under STALL was processed (r its result). */
static int
brk_read_stalled(struct msgr_conn *c, int r, unsigned tag)
{
    if (r != 0 || !c->sock)
        return r;
    if (c->hold.step) /* an interceptor holds it already: cut only */
        c->ops->shutdown(c->sock);
    else
        brk_stall(c, 0, tag);
    return 1;
}

/* ---------------------------------------------------------- lifetime */

static struct msgr_conn *
conn_alloc(struct msgr *m)
{
    struct msgr_conn *c = msgr__calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->lock = m->ops->mutex_new(m->stack);
    if (!c->lock) {
        msgr__free(c);
        return NULL;
    }
    c->msgr = m;
    c->ops = m->ops;
    atomic_init(&c->refs, 1);
    atomic_init(&c->state, MSGR_CONN_NONE);
    c->rev1 = -1;
    c->id = atomic_fetch_add(&m->next_conn_id, 1) + 1;
    return c;
}

struct msgr_conn *
msgr__conn_new(struct msgr *m, struct msgr_worker *w, int is_client,
               uint8_t peer_type, const struct msgr_addrvec *peer_addrs)
{
    struct msgr_conn *c = conn_alloc(m);
    if (!c)
        return NULL;
    c->worker = w;
    c->is_client = is_client;
    c->peer_type = peer_type;
    c->peer_addrs = *peer_addrs;
    c->policy = *msgr__get_policy(m, peer_type);
    c->throttle = msgr__get_throttle(m, peer_type);
    c->backoff_ns = 0;
    return c;
}

struct msgr_conn *
msgr__conn_new_loopback(struct msgr *m)
{
    struct msgr_conn *c = conn_alloc(m);
    if (!c)
        return NULL;
    c->worker = m->local_worker;
    c->is_loopback = 1;
    c->peer_type = m->myname.type;
    c->peer_name = m->myname;
    c->peer_addrs = m->myaddrs;
    c->features = ~0ull;
    c->policy = msgr_policy_make(MSGR_POLICY_LOSSLESS_PEER, 0);
    /* the loopback is born connected (Ceph's LoopbackProtocolV1) */
    atomic_store(&c->state, MSGR_CONN_READY);
    atomic_store(&c->connected, 1);
    return c;
}

static void
free_msg_list(struct msgr_msg *m)
{
    while (m) {
        struct msgr_msg *n = m->next;
        msgr_msg_unref(m);
        m = n;
    }
}

static void
free_frames(struct out_frame *f)
{
    while (f) {
        struct out_frame *n = f->next;
        msgr_msg_unref(f->msg);
        msgr__free(f);
        f = n;
    }
}

void
msgr_conn_ref(struct msgr_conn *c)
{
    atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
}

void
msgr_conn_unref(struct msgr_conn *c)
{
    if (!c)
        return;
    if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1)
        return;
    /* Last reference: the worker already closed the socket and freed the
     * timers (stop_now), so nothing of the stack is left to release. */
    MSGR_ASSERT(c->sock == NULL);
    MSGR_ASSERT(c->backoff_timer == NULL && c->tick_timer == NULL);
    struct out_bucket *b = c->out_q;
    while (b) {
        struct out_bucket *n = b->next;
        free_msg_list(b->head);
        msgr__free(b);
        b = n;
    }
    b = c->bucket_pool;
    while (b) {
        struct out_bucket *n = b->next;
        msgr__free(b);
        b = n;
    }
    free_msg_list(c->sent_head);
    /* delayed messages hold a reference to c: none can be left */
    MSGR_ASSERT(c->delay_head == NULL);
    msgr__throttle_put(c->throttle, c->thr_msgs, c->thr_bytes);
    msgr__throttle_set_unref(c->throttle);
    free_frames(c->wq_head);
    free_frames(c->frame_pool);
    msgr__free(c->rbuf);
    c->ops->mutex_free(c->lock);
    msgr__free(c);
}

/* ------------------------------------------------------------ out queue */

/* Under c->lock. */
static void
out_q_push(struct msgr_conn *c, struct msgr_msg *msg, int front)
{
    int prio = msg->hdr.priority;
    struct out_bucket **pp = &c->out_q;
    while (*pp && (*pp)->priority > prio)
        pp = &(*pp)->next;
    struct out_bucket *b = *pp;
    if (!b || b->priority != prio) {
        b = c->bucket_pool;
        if (b)
            c->bucket_pool = b->next;
        else
            b = msgr__alloc(sizeof(*b));
        MSGR_ASSERT(b != NULL);
        b->priority = prio;
        b->head = b->tail = NULL;
        b->next = *pp;
        *pp = b;
    }
    if (front) {
        msg->next = b->head;
        b->head = msg;
        if (!b->tail)
            b->tail = msg;
    } else {
        msg->next = NULL;
        if (b->tail)
            b->tail->next = msg;
        else
            b->head = msg;
        b->tail = msg;
    }
    c->out_q_len++;
}

/* Under c->lock. */
static struct msgr_msg *
out_q_pop(struct msgr_conn *c)
{
    struct out_bucket *b = c->out_q;
    if (!b)
        return NULL;
    struct msgr_msg *msg = b->head;
    b->head = msg->next;
    msg->next = NULL;
    if (!b->head) {
        c->out_q = b->next;
        b->next = c->bucket_pool;
        c->bucket_pool = b;
    }
    c->out_q_len--;
    return msg;
}

/* Drops everything queued; reports each message as dropped. Worker. */
static void
discard_out_q(struct msgr_conn *c)
{
    struct msgr_msg *list = NULL, **tail = &list;
    c->ops->mutex_lock(c->lock);
    struct msgr_msg *msg;
    while ((msg = out_q_pop(c)) != NULL) {
        *tail = msg;
        tail = &msg->next;
    }
    c->keepalive_pending = 0;
    c->ops->mutex_unlock(c->lock);
    while (list) {
        struct msgr_msg *n = list->next;
        msgr__trace_msg(c->msgr, c, list, MSGR_FATE_DROPPED);
        msgr_msg_unref(list);
        list = n;
    }
}

static void
discard_sent(struct msgr_conn *c)
{
    struct msgr_msg *msg = c->sent_head;
    c->sent_head = c->sent_tail = NULL;
    c->nsent = 0;
    while (msg) {
        struct msgr_msg *n = msg->next;
        msgr__trace_msg(c->msgr, c, msg, MSGR_FATE_DROPPED);
        msgr_msg_unref(msg);
        msg = n;
    }
}

/* Frees sent messages the peer acknowledged (seq <= ack). */
static void
trim_sent(struct msgr_conn *c, uint64_t ack)
{
    while (c->sent_head && c->sent_head->hdr.seq <= ack) {
        struct msgr_msg *msg = c->sent_head;
        c->sent_head = msg->next;
        if (!c->sent_head)
            c->sent_tail = NULL;
        c->nsent--;
        msg->next = NULL;
        msgr__trace_msg(c->msgr, c, msg, MSGR_FATE_ACKED);
        msgr_msg_unref(msg);
    }
}

/*
 * After a fault: the sent but unacked messages go back to the front of the
 * queue, keeping their sequence numbers (out_seq is rewound), so the new
 * session sends them again and the receiver drops what it already had.
 */
static void
requeue_sent(struct msgr_conn *c)
{
    if (!c->sent_head)
        return;
    /* reverse, so pushing each to the front restores the order */
    struct msgr_msg *rev = NULL, *msg = c->sent_head;
    while (msg) {
        struct msgr_msg *n = msg->next;
        msg->next = rev;
        rev = msg;
        msg = n;
    }
    c->ops->mutex_lock(c->lock);
    while (rev) {
        struct msgr_msg *n = rev->next;
        int prio = rev->hdr.priority;
        rev->hdr.priority = MSGR_PRIO_HIGHEST;
        out_q_push(c, rev, 1);
        rev->hdr.priority = (uint16_t)prio;
        rev = n;
    }
    c->ops->mutex_unlock(c->lock);
    c->out_seq -= c->nsent;
    c->sent_head = c->sent_tail = NULL;
    c->nsent = 0;
}

/* After RECONNECT_OK: drop requeued messages the peer already has. */
static void
discard_requeued_up_to(struct msgr_conn *c, uint64_t seq)
{
    c->ops->mutex_lock(c->lock);
    struct out_bucket *b = c->out_q;
    while (b && b->priority == MSGR_PRIO_HIGHEST && b->head &&
           b->head->hdr.seq && b->head->hdr.seq <= seq) {
        struct msgr_msg *msg = out_q_pop(c);
        c->out_seq = msg->hdr.seq > c->out_seq ? msg->hdr.seq : c->out_seq;
        c->ops->mutex_unlock(c->lock);
        msgr__trace_msg(c->msgr, c, msg, MSGR_FATE_ACKED);
        msgr_msg_unref(msg);
        c->ops->mutex_lock(c->lock);
        b = c->out_q;
    }
    c->ops->mutex_unlock(c->lock);
}

/* ------------------------------------------------------------- writing */

static struct out_frame *
frame_get(struct msgr_conn *c)
{
    struct out_frame *f = c->frame_pool;
    if (f) {
        c->frame_pool = f->next;
        c->nframes_pooled--;
    } else {
        f = msgr__alloc(sizeof(*f));
        MSGR_ASSERT(f != NULL);
    }
    f->next = NULL;
    f->msg = NULL;
    f->brk = FB_UNASKED;
    f->iov_done = 0;
    f->iov_off = 0;
    return f;
}

static void
frame_put(struct msgr_conn *c, struct out_frame *f)
{
    if (f->msg) {
        msgr_msg_unref(f->msg);
        f->msg = NULL;
    }
    if (c->nframes_pooled < FRAME_POOL_MAX) {
        f->next = c->frame_pool;
        c->frame_pool = f;
        c->nframes_pooled++;
    } else {
        msgr__free(f);
    }
}

static void
wq_append(struct msgr_conn *c, struct out_frame *f)
{
    f->next = NULL;
    if (c->wq_tail)
        c->wq_tail->next = f;
    else
        c->wq_head = f;
    c->wq_tail = f;
    c->wq_bytes += f->fo.total;
    c->wq_nframes++;
}

static void
wq_clear(struct msgr_conn *c)
{
    struct out_frame *f = c->wq_head;
    c->wq_head = c->wq_tail = NULL;
    c->wq_bytes = 0;
    c->wq_nframes = 0;
    while (f) {
        struct out_frame *n = f->next;
        /* A lossy session keeps no sent list: a message whose frame was
         * not completely written dies here and must be reported dropped.
         * (Lossless ones are still on the sent list, which accounts for
         * them: requeued or dropped.) */
        if (f->tag == MSGR_TAG_MESSAGE && f->msg && c->policy.lossy)
            msgr__trace_msg(c->msgr, c, f->msg, MSGR_FATE_DROPPED);
        frame_put(c, f);
        f = n;
    }
}

static void
trace_frame(struct msgr_conn *c, int dir, unsigned tag, uint64_t bytes)
{
    struct msgr *m = c->msgr;
    if (m->has_tracer && m->tracer.frame)
        m->tracer.frame(m->tracer.arg, m, c, dir, tag, bytes);
}

/* Raw bytes (the banner): one iovec, not a frame. */
static void
queue_raw(struct msgr_conn *c, const void *p, size_t n)
{
    struct out_frame *f = frame_get(c);
    MSGR_ASSERT(n <= sizeof(f->ctrl));
    memcpy(f->ctrl, p, n);
    f->tag = 0;
    f->fo.iov[0].iov_base = f->ctrl;
    f->fo.iov[0].iov_len = n;
    f->fo.iovcnt = 1;
    f->fo.total = n;
    wq_append(c, f);
}

/* A control frame whose payload the caller wrote into a wbuf over
 * f->ctrl: see ctrl_begin / ctrl_send. */
static struct out_frame *
ctrl_begin(struct msgr_conn *c, struct msgr_wbuf *w)
{
    struct out_frame *f = frame_get(c);
    msgr_wbuf_init(w, f->ctrl, sizeof(f->ctrl));
    return f;
}

static void
ctrl_send(struct msgr_conn *c, struct out_frame *f, struct msgr_wbuf *w,
          uint8_t tag)
{
    MSGR_ASSERT(w->err == 0);
    struct msgr_seg seg = {.base = f->ctrl, .len = (uint32_t)w->len,
                           .align = 8};
    f->tag = tag;
    MSGR_ASSERT(msgr_frame_encode(&f->fo, c->rev1 > 0, tag, &seg, 1) == 0);
    wq_append(c, f);
}

static void
send_u64_frame(struct msgr_conn *c, uint8_t tag, uint64_t v)
{
    struct msgr_wbuf w;
    struct out_frame *f = ctrl_begin(c, &w);
    msgr_put_u64(&w, v);
    ctrl_send(c, f, &w, tag);
}

static void
send_keepalive_frame(struct msgr_conn *c, uint8_t tag, uint32_t sec,
                     uint32_t nsec)
{
    struct msgr_wbuf w;
    struct out_frame *f = ctrl_begin(c, &w);
    msgr_put_u32(&w, sec);
    msgr_put_u32(&w, nsec);
    ctrl_send(c, f, &w, tag);
}

/*
 * A small frame goes out as one contiguous iovec: the kernel's per-iovec
 * cost (a user-access window and a copy call each) dominated profiles of
 * 64 B streams, where a message frame is five iovecs of 4..64 bytes. The
 * copy is cheap at this size; larger frames keep their payloads
 * referenced (zero-copy). The bytes on the wire are the same.
 */
static void
frame_flatten(struct msgr_frame_out *fo, uint8_t *buf, size_t cap)
{
    if (fo->iovcnt <= 1 || fo->total > cap)
        return;
    size_t off = 0;
    for (int i = 0; i < fo->iovcnt; i++) {
        if (fo->iov[i].iov_len)
            memcpy(buf + off, fo->iov[i].iov_base, fo->iov[i].iov_len);
        off += fo->iov[i].iov_len;
    }
    fo->iov[0].iov_base = buf;
    fo->iov[0].iov_len = off;
    fo->iovcnt = 1;
}

/* Encodes one message into a frame; lossless sessions keep it on the sent
 * list until acknowledged. Takes over the caller's reference. */
static void
queue_message(struct msgr_conn *c, struct msgr_msg *msg)
{
    struct out_frame *f = frame_get(c);
    msg->hdr.seq = ++c->out_seq;
    struct msgr_header2 h = {
        .seq = msg->hdr.seq,
        .tid = msg->hdr.tid,
        .type = msg->hdr.type,
        .priority = msg->hdr.priority,
        .version = msg->hdr.version,
        .data_off = msg->hdr.data_off,
        .ack_seq = c->in_seq,
        .flags = msg->hdr.flags,
        .compat_version = msg->hdr.compat_version,
    };
    c->ack_left = 0; /* the ack rides on this message */
    msgr_header2_encode(f->hdr2, &h);
    struct msgr_seg segs[4] = {
        {f->hdr2, MSGR_HEADER2_LEN, 8},
        {msg->front.data, msg->front.len, 8},
        {msg->middle.data, msg->middle.len, 8},
        {msg->data.data, msg->data.len, 4096},
    };
    MSGR_ASSERT(msgr_frame_encode(&f->fo, c->rev1 > 0, MSGR_TAG_MESSAGE, segs,
                                  4) == 0);
    /* f->ctrl is free in a message frame */
    frame_flatten(&f->fo, f->ctrl, sizeof(f->ctrl));
    f->tag = MSGR_TAG_MESSAGE;
    f->msg = msg;
    if (!c->policy.lossy) {
        msgr_msg_ref(msg);
        msg->next = NULL;
        if (c->sent_tail)
            c->sent_tail->next = msg;
        else
            c->sent_head = msg;
        c->sent_tail = msg;
        c->nsent++;
    }
    wq_append(c, f);
}

/* Moves queued messages into frames while the write queue has room. */
static void
fill_wq(struct msgr_conn *c)
{
    if (msgr__conn_state(c) != MSGR_CONN_READY)
        return;
    /* One lock round for a whole batch: the out queue is shared with
     * sending threads, and a lock per message showed up in profiles. The
     * batch is bounded in frames and bytes so the write queue (and the
     * frame pool) stays small. */
    struct msgr_msg *batch = NULL, **tail = &batch;
    size_t bytes = c->wq_bytes;
    int frames = c->wq_nframes;
    c->ops->mutex_lock(c->lock);
    while (bytes < WQ_HIGH_BYTES && frames < WQ_MAX_FRAMES) {
        struct msgr_msg *msg = out_q_pop(c);
        if (!msg)
            break;
        bytes += MSGR_PREAMBLE_LEN + MSGR_HEADER2_LEN + msgr__msg_payload_len(msg);
        frames++;
        *tail = msg;
        tail = &msg->next;
    }
    int keepalive = c->keepalive_pending;
    c->keepalive_pending = 0;
    c->ops->mutex_unlock(c->lock);
    while (batch) {
        struct msgr_msg *msg = batch;
        batch = msg->next;
        msg->next = NULL;
        queue_message(c, msg);
    }
    if (keepalive) {
        msgr_time_ns t = now(c);
        send_keepalive_frame(c, MSGR_TAG_KEEPALIVE2,
                             (uint32_t)(t / MSGR_NS_PER_S),
                             (uint32_t)(t % MSGR_NS_PER_S));
    }
    if (c->ack_left > 0) {
        send_u64_frame(c, MSGR_TAG_ACK, c->in_seq);
        c->ack_left = 0;
    }
}

static int
out_q_empty(struct msgr_conn *c)
{
    c->ops->mutex_lock(c->lock);
    int empty = c->out_q == NULL && !c->keepalive_pending;
    c->ops->mutex_unlock(c->lock);
    return empty;
}

static void
update_want(struct msgr_conn *c)
{
    if (!c->sock)
        return;
    unsigned want = MSGR_IO_READ;
    if (msgr__conn_state(c) == MSGR_CONN_CONNECTING)
        want = MSGR_IO_WRITE;
    else if (c->wq_head)
        want |= MSGR_IO_WRITE;
    if ((c->need == 0 && c->next_read == NULL) || c->paused)
        want &= ~MSGR_IO_READ;
    if (c->hold.step)
        want = 0;
    if (want != c->io_want) {
        c->io_want = want;
        c->ops->io_want(c->sock, want);
    }
}

static unsigned
frame_break_tag(const struct out_frame *f)
{
    return f->tag ? f->tag : MSGR_BREAK_BANNER; /* tag 0: the raw banner */
}

/* Asks the breaker about f once; non-zero when the write must end before
 * f (its action is due once everything before it is written). */
static int
brk_write_stops(struct msgr_conn *c, struct out_frame *f)
{
    if (f->brk == FB_UNASKED) {
        switch (brk_ask(c, 1, frame_break_tag(f))) {
        case MSGR_INTERCEPT_FAIL:
            f->brk = FB_FAIL;
            break;
        case MSGR_INTERCEPT_STOP:
            f->brk = FB_STOP;
            break;
        case MSGR_INTERCEPT_HOLD:
            f->brk = FB_HOLD;
            break;
        case MSGR_INTERCEPT_STALL:
            f->brk = FB_STALL;
            break;
        default:
            f->brk = FB_PASSED;
            break;
        }
    }
    return f->brk == FB_FAIL || f->brk == FB_STOP || f->brk == FB_HOLD;
}

/*
 * With a frame breaker: asks the frames about to be handed to the socket,
 * in order, and returns where this write ends: before a frame that fails,
 * stops or holds; after one that stalls; before the first frame not asked
 * when the gather budget runs out; NULL at the queue's end.
 */
static struct out_frame *
brk_write_end(struct msgr_conn *c)
{
    struct out_frame *f = c->wq_head;
    for (int n = 0; f && n < WRITE_IOV_MAX; f = f->next) {
        if (brk_write_stops(c, f))
            return f;
        if (f->brk == FB_STALL)
            return f->next;
        n += f->fo.iovcnt - f->iov_done;
    }
    return f;
}

/* Everything before f, the head, is written: its breakpoint acts. */
static void
brk_write_act(struct msgr_conn *c, struct out_frame *f)
{
    switch (f->brk) {
    case FB_FAIL:
        fault(c, MSGR_EINJECTED, "breakpoint");
        break;
    case FB_STOP:
        stop_now(c, 1);
        break;
    default: /* FB_HOLD: on release the frame goes */
        f->brk = FB_PASSED;
        hold_begin(c, MSGR_BREAK_HELD_STEP(1, frame_break_tag(f)), step_done);
        break;
    }
}

/* The head frame is completely written: it leaves the queue and is
 * traced. Returns its breakpoint tag when a stall cuts the socket now. */
static unsigned
wq_pop_written(struct msgr_conn *c)
{
    struct out_frame *f = c->wq_head;
    c->wq_head = f->next;
    if (!c->wq_head)
        c->wq_tail = NULL;
    c->wq_bytes -= f->fo.total;
    c->wq_nframes--;
    if (f->tag)
        trace_frame(c, 1, f->tag, f->fo.total);
    if (f->tag == MSGR_TAG_MESSAGE) {
        atomic_fetch_add_explicit(&c->worker->perf.msgs_out, 1,
                                  memory_order_relaxed);
        msgr__trace_msg(c->msgr, c, f->msg, MSGR_FATE_SENT);
    }
    unsigned stall = f->brk == FB_STALL ? frame_break_tag(f) : 0;
    frame_put(c, f);
    return stall;
}

/* Writes as much of the write queue as the socket takes. */
static void
do_write(struct msgr_conn *c)
{
    struct msgr_worker_perf *perf = &c->worker->perf;
    const int brk = c->msgr->has_breaker;
    if (c->hold.step)
        return;
    for (;;) {
        if (!c->sock)
            return;
        fill_wq(c);
        if (!c->wq_head)
            break;
        /* without a breaker `end` is NULL: the gather below runs to the
         * queue's end at no extra cost per frame */
        struct out_frame *end = brk ? brk_write_end(c) : NULL;
        if (end == c->wq_head) {
            brk_write_act(c, end);
            return;
        }
        struct iovec iov[WRITE_IOV_MAX];
        int n = 0;
        for (struct out_frame *f = c->wq_head; f != end && n < WRITE_IOV_MAX;
             f = f->next) {
            for (int i = f->iov_done; i < f->fo.iovcnt && n < WRITE_IOV_MAX;
                 i++) {
                iov[n] = f->fo.iov[i];
                if (i == f->iov_done && f->iov_off) {
                    iov[n].iov_base = (uint8_t *)iov[n].iov_base + f->iov_off;
                    iov[n].iov_len -= f->iov_off;
                }
                if (iov[n].iov_len)
                    n++;
            }
        }
        if (n == 0) {
            /* frames of empty iovecs only: complete them */
            while (c->wq_head != end) {
                unsigned stall = wq_pop_written(c);
                if (stall) {
                    brk_stall(c, 1, stall);
                    return;
                }
            }
            continue;
        }
        ssize_t w = c->ops->writev(c->sock, iov, n);
        if (w == -EAGAIN)
            break;
        if (w < 0) {
            fault(c, (int)w, "write");
            return;
        }
        c->last_active = now(c);
        atomic_fetch_add_explicit(&perf->bytes_out, (uint64_t)w,
                                  memory_order_relaxed);
        size_t left = (size_t)w;
        while (c->wq_head != end) {
            struct out_frame *f = c->wq_head;
            while (f->iov_done < f->fo.iovcnt) {
                size_t len = f->fo.iov[f->iov_done].iov_len - f->iov_off;
                if (left < len) {
                    f->iov_off += left;
                    left = 0;
                    break;
                }
                left -= len;
                f->iov_done++;
                f->iov_off = 0;
            }
            if (f->iov_done < f->fo.iovcnt)
                break;
            unsigned stall = wq_pop_written(c);
            if (stall) {
                brk_stall(c, 1, stall);
                return;
            }
        }
    }
    update_want(c);
}

/* ------------------------------------------------------------- reading */

static int read_preamble(struct msgr_conn *c, const uint8_t *p, size_t n);

static void
expect(struct msgr_conn *c, size_t need, conn_read_fn fn)
{
    c->need = need;
    c->next_read = fn;
    c->rkeep = 0;
}

static void
expect_frame(struct msgr_conn *c)
{
    expect(c, MSGR_PREAMBLE_LEN, read_preamble);
}

/* Grows the receive buffer to hold `need` unread bytes plus room to read. */
static int
ensure_rbuf(struct msgr_conn *c, size_t need)
{
    size_t chunk = c->rchunk ? c->rchunk : READ_CHUNK_MIN;
    /* what stays from `base` on: the unread bytes and the kept preamble */
    size_t base = c->roff - c->rkeep;
    size_t unread = c->rlen - base;
    need += c->rkeep;
    if (base && (base == c->rlen || c->rcap - c->rlen < chunk ||
                 c->rcap - base < need)) {
        memmove(c->rbuf, c->rbuf + base, unread);
        c->rlen = unread;
        c->roff = c->rkeep;
    }
    size_t want = need > unread ? need : unread;
    if (want < chunk)
        want = chunk;
    if (c->rcap >= want && c->rcap - c->rlen > 0)
        return 0;
    size_t ncap = c->rcap ? c->rcap : chunk;
    while (ncap < want || ncap - c->rlen == 0)
        ncap *= 2;
    uint8_t *nb = msgr__realloc(c->rbuf, ncap);
    if (!nb)
        return -ENOMEM;
    c->rbuf = nb;
    c->rcap = ncap;
    return 0;
}

/* Shrinks a buffer that grew for one big frame, once it is drained. */
static void
maybe_shrink_rbuf(struct msgr_conn *c)
{
    if (c->rcap > 4 * READ_CHUNK && c->roff == c->rlen && !c->rkeep) {
        msgr__free(c->rbuf);
        c->rbuf = NULL;
        c->rcap = c->rlen = c->roff = 0;
    }
}

static void
do_read(struct msgr_conn *c)
{
    struct msgr_worker_perf *perf = &c->worker->perf;
    if (c->hold.step)
        return;
    for (int reads = 0;;) {
        /* consume what is buffered */
        while (c->next_read && c->rlen - c->roff >= c->need) {
            const uint8_t *p = c->rbuf + c->roff;
            size_t n = c->need;
            c->roff += n;
            int r = c->next_read(c, p, n);
            if (r < 0) {
                fault(c, r, "protocol");
                return;
            }
            if (!c->sock || r > 0) /* stopped, faulted, or paused */
                return;
        }
        if (!c->next_read)
            return;
        maybe_shrink_rbuf(c);
        if (reads++ >= READS_PER_EVENT)
            return; /* level triggered: we will be called again */
        if (ensure_rbuf(c, c->need) < 0) {
            fault(c, -ENOMEM, "receive buffer");
            return;
        }
        struct iovec iov = {c->rbuf + c->rlen, c->rcap - c->rlen};
        ssize_t r = c->ops->readv(c->sock, &iov, 1);
        if (r == -EAGAIN)
            return;
        if (r == 0) {
            fault(c, MSGR_ECLOSED, "peer closed the connection");
            return;
        }
        if (r < 0) {
            fault(c, (int)r, "read");
            return;
        }
        c->rlen += (size_t)r;
        if ((size_t)r == iov.iov_len && c->rchunk < READ_CHUNK)
            c->rchunk = c->rchunk ? 2 * c->rchunk : 2 * READ_CHUNK_MIN;
        c->last_active = now(c);
        atomic_fetch_add_explicit(&perf->bytes_in, (uint64_t)r,
                                  memory_order_relaxed);
    }
}

/* --------------------------------------------------------- handshake out */

static void
send_banner(struct msgr_conn *c)
{
    uint8_t b[MSGR_BANNER_LEN];
    uint64_t supported = c->msgr->cfg.force_rev0 ? 0 : MSGR2_FEATURE_REVISION_1;
    msgr_banner_encode(b, supported, 0);
    queue_raw(c, b, sizeof(b));
}

static void
send_hello(struct msgr_conn *c, const struct msgr_addr *peer_as_seen)
{
    struct msgr_hello h = {.entity_type = c->msgr->myname.type,
                           .peer_addr = *peer_as_seen};
    struct msgr_wbuf w;
    struct out_frame *f = ctrl_begin(c, &w);
    msgr_hello_encode(&w, &h);
    ctrl_send(c, f, &w, MSGR_TAG_HELLO);
}

static void
send_auth_request(struct msgr_conn *c)
{
    struct msgr *m = c->msgr;
    /* Auth "none" still carries who we are: to a monitor the MonClient's
     * form (auth mode MON = 10, entity name, global id), to others an
     * authorizer (struct_v 1, entity name, global id). */
    uint8_t payload[64];
    struct msgr_wbuf pw;
    msgr_wbuf_init(&pw, payload, sizeof(payload));
    msgr_put_u8(&pw, c->peer_type == MSGR_ENTITY_MON ? 10 : 1);
    msgr_put_u32(&pw, m->myname.type);
    char id[24];
    int idlen = 0;
    if (m->myname.num >= 0) {
        idlen = snprintf(id, sizeof(id), "%lld", (long long)m->myname.num);
    } else {
        memcpy(id, "admin", 5);
        idlen = 5;
    }
    msgr_put_u32(&pw, (uint32_t)idlen);
    msgr_put_bytes(&pw, id, (size_t)idlen);
    msgr_put_u64(&pw, 0); /* global_id: none yet */
    struct msgr_auth_request a = {
        .method = MSGR_AUTH_NONE,
        .nmodes = 1,
        .modes = {MSGR_CON_MODE_CRC},
        .payload = payload,
        .payload_len = (uint32_t)pw.len,
    };
    struct msgr_wbuf w;
    struct out_frame *f = ctrl_begin(c, &w);
    msgr_auth_request_encode(&w, &a);
    ctrl_send(c, f, &w, MSGR_TAG_AUTH_REQUEST);
}

static void
send_auth_signature(struct msgr_conn *c)
{
    /* HMAC-SHA256 with no session key: 32 zero bytes under auth none */
    uint8_t zero[32] = {0};
    struct msgr_wbuf w;
    struct out_frame *f = ctrl_begin(c, &w);
    msgr_put_bytes(&w, zero, sizeof(zero));
    ctrl_send(c, f, &w, MSGR_TAG_AUTH_SIGNATURE);
}

static uint64_t
random_cookie(struct msgr_conn *c)
{
    uint64_t v;
    do
        v = c->ops->random_u64(c->msgr->stack);
    while (v == 0);
    return v;
}

static void
send_client_ident(struct msgr_conn *c)
{
    struct msgr *m = c->msgr;
    struct msgr_client_ident ci;
    memset(&ci, 0, sizeof(ci));
    msgr_get_myaddrs(m, &ci.addrs);
    ci.target = c->target_addr;
    ci.gid = m->myname.num;
    ci.global_seq = c->global_seq;
    ci.features_supported = c->policy.features_supported;
    ci.features_required =
        c->policy.features_required | MSGR_FEATURES_REQUIRED_V2;
    ci.flags = c->policy.lossy ? MSGR_IDENT_FLAG_LOSSY : 0;
    if (!c->policy.lossy && c->client_cookie == 0) {
        uint64_t cookie = random_cookie(c);
        c->ops->mutex_lock(c->lock);
        c->client_cookie = cookie;
        c->ops->mutex_unlock(c->lock);
    }
    ci.cookie = c->client_cookie;
    struct msgr_wbuf w;
    struct out_frame *f = ctrl_begin(c, &w);
    msgr_client_ident_encode(&w, &ci);
    ctrl_send(c, f, &w, MSGR_TAG_CLIENT_IDENT);
}

static void
send_reconnect(struct msgr_conn *c)
{
    struct msgr_reconnect r;
    memset(&r, 0, sizeof(r));
    msgr_get_myaddrs(c->msgr, &r.addrs);
    r.client_cookie = c->client_cookie;
    r.server_cookie = c->server_cookie;
    r.global_seq = c->global_seq;
    r.connect_seq = c->connect_seq;
    r.msg_seq = c->in_seq;
    struct msgr_wbuf w;
    struct out_frame *f = ctrl_begin(c, &w);
    msgr_reconnect_encode(&w, &r);
    ctrl_send(c, f, &w, MSGR_TAG_SESSION_RECONNECT);
}

/* --------------------------------------------------- delayed delivery */

/*
 * Ceph's ms_inject_delay_* (DelayedDelivery): messages from a peer type
 * in the mask wait in a per-connection FIFO until their due time, so a
 * delayed message holds back the ones behind it and order is kept.
 */
static void
deliver_or_delay(struct msgr_conn *c, struct msgr_msg *msg)
{
    struct msgr *m = c->msgr;
    const struct msgr_config *cfg = &m->cfg;
    msgr_time_ns delay = 0;
    /* no random draw unless the peer type is chosen: other runs keep
     * their random streams (and fingerprints) */
    if ((cfg->inject_delay_types & c->peer_type) && cfg->inject_delay_prob_ppm &&
        c->ops->random_u64(m->stack) % 1000000 < cfg->inject_delay_prob_ppm &&
        cfg->inject_delay_max_ns)
        delay = c->ops->random_u64(m->stack) % (cfg->inject_delay_max_ns + 1);
    if (!delay && !c->delay_head) {
        msgr__deliver_msg(m, c, msg);
        return;
    }
    if (delay)
        atomic_fetch_add_explicit(&m->msgs_delayed, 1, memory_order_relaxed);
    msg->delay_until = now(c) + delay;
    msg->next = NULL;
    if (c->delay_tail) {
        c->delay_tail->next = msg;
    } else {
        c->delay_head = msg;
        c->ops->timer_arm(c->delay_timer, delay);
    }
    c->delay_tail = msg;
}

static struct msgr_msg *
delay_pop(struct msgr_conn *c)
{
    struct msgr_msg *msg = c->delay_head;
    if (msg) {
        c->delay_head = msg->next;
        if (!c->delay_head)
            c->delay_tail = NULL;
        msg->next = NULL;
    }
    return msg;
}

/* Delivers the due messages at the head, then waits for the next one. */
static void
delay_cb(void *arg)
{
    struct msgr_conn *c = arg;
    msgr_conn_ref(c);
    msgr_time_ns t = now(c);
    while (c->delay_head && c->delay_head->delay_until <= t)
        msgr__deliver_msg(c->msgr, c, delay_pop(c));
    if (c->delay_head && c->delay_timer)
        c->ops->timer_arm(c->delay_timer, c->delay_head->delay_until - t);
    msgr_conn_unref(c);
}

/* On a fault: what the session received is delivered now (the peer may
 * have had it acknowledged). */
static void
delay_flush(struct msgr_conn *c)
{
    if (c->delay_timer)
        c->ops->timer_cancel(c->delay_timer);
    struct msgr_msg *msg;
    while ((msg = delay_pop(c)) != NULL)
        msgr__deliver_msg(c->msgr, c, msg);
}

/* On stop or a session reset: never delivered. */
static void
delay_discard(struct msgr_conn *c)
{
    if (c->delay_timer)
        c->ops->timer_cancel(c->delay_timer);
    struct msgr_msg *msg;
    while ((msg = delay_pop(c)) != NULL) {
        msgr__trace_msg(c->msgr, c, msg, MSGR_FATE_DROPPED);
        msgr_msg_unref(msg);
    }
}

/* ------------------------------------------------------------- upcalls */

static void
upcall(struct msgr_conn *c, int kind)
{
    msgr__dq_enqueue_event(c->msgr, c, kind);
}

/* The session is gone on the peer's side: drop our state and tell the
 * application, never a silent loss. */
static void
reset_session(struct msgr_conn *c, int full)
{
    if (full) {
        discard_out_q(c);
        discard_sent(c);
        c->out_seq = 0;
        c->ops->mutex_lock(c->lock);
        c->client_cookie = 0;
        c->ops->mutex_unlock(c->lock);
        delay_discard(c);
        msgr__dq_discard_conn(c->msgr, c);
        upcall(c, DQ_REMOTE_RESET);
    }
    c->in_seq = 0;
    c->ack_left = 0;
    c->ops->mutex_lock(c->lock);
    c->connect_seq = 0;
    c->server_cookie = 0;
    c->ops->mutex_unlock(c->lock);
}

/* ---------------------------------------------------------- timers */

static void
tick_cb(void *arg)
{
    struct msgr_conn *c = arg;
    int s = msgr__conn_state(c);
    if (c->tick_is_ready_timeout) {
        if (s != MSGR_CONN_READY && s != MSGR_CONN_CLOSED &&
            s != MSGR_CONN_STANDBY)
            fault(c, -ETIMEDOUT, "connection not ready in time");
        return;
    }
    if (s != MSGR_CONN_READY)
        return;
    msgr_time_ns idle = now(c) - c->last_active;
    if (idle >= c->msgr->cfg.idle_timeout_ns) {
        fault(c, -ETIMEDOUT, "idle timeout");
        return;
    }
    c->ops->timer_arm(c->tick_timer, c->msgr->cfg.idle_timeout_ns - idle);
}

static void
arm_ready_timeout(struct msgr_conn *c)
{
    c->tick_is_ready_timeout = 1;
    c->ops->timer_arm(c->tick_timer, c->msgr->cfg.ready_timeout_ns);
}

static void
arm_idle_timeout(struct msgr_conn *c)
{
    c->tick_is_ready_timeout = 0;
    c->last_active = now(c);
    c->ops->timer_arm(c->tick_timer, c->msgr->cfg.idle_timeout_ns);
}

static void
backoff_cb(void *arg)
{
    struct msgr_conn *c = arg;
    if (msgr__conn_state(c) == MSGR_CONN_START_CONNECT ||
        msgr__conn_state(c) == MSGR_CONN_WAIT)
        do_connect(c);
}

static void
retry_cb(void *arg)
{
    struct msgr_conn *c = arg;
    c->paused = 0;
    if (!c->sock)
        return;
    do_read(c);
    if (c->sock) {
        update_want(c);
        do_write(c);
    }
}

static void
arm_keepalive(struct msgr_conn *c)
{
    if (c->msgr->cfg.keepalive_interval_ns && c->keepalive_timer)
        c->ops->timer_arm(c->keepalive_timer,
                          c->msgr->cfg.keepalive_interval_ns);
}

/* keepalive_interval_ns: a KEEPALIVE2 from a READY connection; the
 * timer is cancelled with the socket and re-armed at READY. */
static void
keepalive_cb(void *arg)
{
    struct msgr_conn *c = arg;
    if (msgr__conn_state(c) != MSGR_CONN_READY)
        return;
    c->ops->mutex_lock(c->lock);
    c->keepalive_pending = 1;
    c->ops->mutex_unlock(c->lock);
    msgr_conn_ref(c);
    do_write(c);
    if (msgr__conn_state(c) == MSGR_CONN_READY)
        arm_keepalive(c);
    msgr_conn_unref(c);
}

static void
init_worker_side(struct msgr_conn *c)
{
    if (c->started)
        return;
    c->started = 1;
    c->backoff_timer = c->ops->timer_new(c->worker, backoff_cb, c);
    c->tick_timer = c->ops->timer_new(c->worker, tick_cb, c);
    c->retry_timer = c->ops->timer_new(c->worker, retry_cb, c);
    c->keepalive_timer = c->ops->timer_new(c->worker, keepalive_cb, c);
    c->delay_timer = c->ops->timer_new(c->worker, delay_cb, c);
    MSGR_ASSERT(c->backoff_timer && c->tick_timer && c->retry_timer &&
                c->keepalive_timer && c->delay_timer);
    atomic_fetch_add_explicit(&c->worker->perf.active_conns, 1,
                              memory_order_relaxed);
}

/* ------------------------------------------------------------- ready */

static int
become_ready(struct msgr_conn *c, int kind, const char *cause)
{
    set_state(c, MSGR_CONN_READY, cause);
    c->backoff_ns = 0;
    arm_idle_timeout(c);
    arm_keepalive(c);
    /* what was queued while connecting goes out behind the ident frame */
    fill_wq(c);
    upcall(c, kind);
    return at_step(c, MSGR_STEP_READY, step_done);
}

/* --------------------------------------------------- frame handlers */

static int
auth_request_step(struct msgr_conn *c, struct conn_hold *h)
{
    (void)h;
    send_auth_request(c);
    return 0;
}

static int
handle_hello(struct msgr_conn *c, const struct msgr_seg *seg)
{
    struct msgr_hello h;
    int e = msgr_hello_decode(seg->base, seg->len, &h);
    if (e < 0)
        return e;
    struct msgr *m = c->msgr;
    if (c->is_client) {
        if (c->peer_type != MSGR_ENTITY_ANY && c->peer_type != 0 &&
            h.entity_type != c->peer_type) {
            msgr__log(m, MSGR_LOG_WARN, "conn %llu: peer is %s, expected %s",
                      (unsigned long long)c->id,
                      msgr_entity_type_name(h.entity_type),
                      msgr_entity_type_name(c->peer_type));
            stop_now(c, 1);
            return 1;
        }
        c->peer_type = h.entity_type;
        msgr_learned_addr(m, &h.peer_addr);
        set_state(c, MSGR_CONN_AUTH_CONNECTING, "hello");
        return at_step(c, MSGR_STEP_SEND_AUTH_REQUEST, auth_request_step);
    }
    c->peer_type = h.entity_type;
    c->policy = *msgr__get_policy(m, c->peer_type);
    msgr__throttle_set_unref(c->throttle);
    c->throttle = msgr__get_throttle(m, c->peer_type);
    msgr_learned_addr(m, &h.peer_addr);
    set_state(c, MSGR_CONN_AUTH_ACCEPTING, "hello");
    return 0;
}

static int
auth_done_step(struct msgr_conn *c, struct conn_hold *h)
{
    (void)h;
    struct msgr_auth_done d = {.global_id = 0, .con_mode = MSGR_CON_MODE_CRC};
    struct msgr_wbuf w;
    struct out_frame *f = ctrl_begin(c, &w);
    msgr_auth_done_encode(&w, &d);
    ctrl_send(c, f, &w, MSGR_TAG_AUTH_DONE);
    set_state(c, MSGR_CONN_AUTH_ACCEPTING_SIGN, "auth done");
    send_auth_signature(c);
    return 0;
}

static int
handle_auth_request(struct msgr_conn *c, const struct msgr_seg *seg)
{
    struct msgr_auth_request a;
    int e = msgr_auth_request_decode(seg->base, seg->len, &a);
    if (e < 0)
        return e;
    int crc_ok = 0;
    for (uint32_t i = 0; i < a.nmodes; i++)
        if (a.modes[i] == MSGR_CON_MODE_CRC)
            crc_ok = 1;
    if (a.method != MSGR_AUTH_NONE || !crc_ok) {
        struct msgr_auth_bad_method b = {
            .method = a.method,
            .result = -EOPNOTSUPP,
            .nmethods = 1,
            .methods = {MSGR_AUTH_NONE},
            .nmodes = 1,
            .modes = {MSGR_CON_MODE_CRC},
        };
        struct msgr_wbuf w;
        struct out_frame *f = ctrl_begin(c, &w);
        msgr_auth_bad_method_encode(&w, &b);
        ctrl_send(c, f, &w, MSGR_TAG_AUTH_BAD_METHOD);
        return 0;
    }
    return at_step(c, MSGR_STEP_HANDLE_AUTH_REQUEST_ACCEPTING_SIGN,
                   auth_done_step);
}

static int
check_signature(const struct msgr_seg *seg)
{
    static const uint8_t zero[32];
    if (seg->len != 32 || memcmp(seg->base, zero, 32) != 0)
        return MSGR_EAUTH;
    return 0;
}

static int
handle_auth_done(struct msgr_conn *c, const struct msgr_seg *seg)
{
    struct msgr_auth_done d;
    int e = msgr_auth_done_decode(seg->base, seg->len, &d);
    if (e < 0)
        return e;
    if (d.con_mode != MSGR_CON_MODE_CRC)
        return MSGR_EAUTH; /* secure mode is not implemented */
    set_state(c, MSGR_CONN_AUTH_CONNECTING_SIGN, "auth done");
    send_auth_signature(c);
    return 0;
}

static int
client_ident_step(struct msgr_conn *c, struct conn_hold *h)
{
    (void)h;
    send_client_ident(c);
    return 0;
}

static int
reconnect_step(struct msgr_conn *c, struct conn_hold *h)
{
    (void)h;
    send_reconnect(c);
    return 0;
}

static int
handle_client_signature(struct msgr_conn *c, const struct msgr_seg *seg)
{
    int e = check_signature(seg);
    if (e < 0)
        return e;
    if (c->server_cookie == 0) {
        set_state(c, MSGR_CONN_SESSION_CONNECTING, "signature");
        return at_step(c, MSGR_STEP_SEND_CLIENT_IDENTITY, client_ident_step);
    }
    set_state(c, MSGR_CONN_SESSION_RECONNECTING, "signature");
    return at_step(c, MSGR_STEP_SEND_RECONNECT, reconnect_step);
}

static void
send_server_ident(struct msgr_conn *c)
{
    struct msgr *m = c->msgr;
    struct msgr_server_ident si;
    memset(&si, 0, sizeof(si));
    msgr_get_myaddrs(m, &si.addrs);
    si.gid = m->myname.num;
    c->global_seq = msgr__get_global_seq(m, 0);
    si.global_seq = c->global_seq;
    si.features_supported = c->policy.features_supported;
    si.features_required =
        c->policy.features_required | MSGR_FEATURES_REQUIRED_V2;
    si.flags = c->policy.lossy ? MSGR_IDENT_FLAG_LOSSY : 0;
    uint64_t cookie = c->policy.lossy ? 0 : random_cookie(c);
    c->ops->mutex_lock(c->lock);
    c->server_cookie = cookie;
    c->ops->mutex_unlock(c->lock);
    si.cookie = c->server_cookie;
    struct msgr_wbuf w;
    struct out_frame *f = ctrl_begin(c, &w);
    msgr_server_ident_encode(&w, &si);
    ctrl_send(c, f, &w, MSGR_TAG_SERVER_IDENT);
}

/* What a resumed or replaced session hands to the existing connection's
 * worker. */
struct reuse_task {
    struct msgr_conn *ex;
    struct msgr_socket *sock;
    int rev1;
    int new_session; /* CLIENT_IDENT: a new session on ex (SERVER_IDENT) */
    int reset_full;  /* the peer restarted: ex's session state goes */
    uint64_t msg_seq; /* reconnect: the peer's in_seq */
    /* new session: what the handshake learned about the peer */
    struct msgr_entity_name peer_name;
    struct msgr_addrvec ident_addrs;
    uint64_t features, client_cookie, peer_global_seq;
};

static int
has_requeued(struct msgr_conn *c)
{
    c->ops->mutex_lock(c->lock);
    int r = c->out_q && c->out_q->priority == MSGR_PRIO_HIGHEST;
    c->ops->mutex_unlock(c->lock);
    return r;
}

static void send_server_ident(struct msgr_conn *c);

/*
 * On the existing connection's worker (Ceph's reuse_connection): ex drops
 * whatever transport it had (requeuing what was not acknowledged) and
 * adopts the new socket. A resumed session forgets what the peer already
 * has and answers SESSION_RECONNECT_OK with its in_seq; a new session
 * (CLIENT_IDENT: a race won by the incoming side, an interrupted
 * handshake, a restarted peer) takes the peer's identity from the new
 * handshake and answers SERVER_IDENT. Either way user pointers to the
 * connection and its queue survive.
 */
static void
reuse_cb(void *arg)
{
    struct reuse_task *t = arg;
    struct msgr_conn *ex = t->ex;
    if (msgr__conn_state(ex) == MSGR_CONN_CLOSED ||
        atomic_load(&ex->stop_requested) || !ex->started) {
        ex->ops->close(t->sock, 0);
    } else {
        requeue_sent(ex);
        close_socket(ex, 0);
        ex->ops->timer_cancel(ex->backoff_timer);
        ex->rev1 = t->rev1;
        attach_socket(ex, t->sock, MSGR_IO_READ);
        expect_frame(ex);
        if (!t->new_session) {
            discard_requeued_up_to(ex, t->msg_seq);
            send_u64_frame(ex, MSGR_TAG_SESSION_RECONNECT_OK, ex->in_seq);
            (void)become_ready(ex, DQ_ACCEPT, "session resumed");
        } else {
            if (t->reset_full)
                reset_session(ex, 1);
            ex->ops->mutex_lock(ex->lock);
            ex->client_cookie = t->client_cookie;
            ex->peer_global_seq = t->peer_global_seq;
            ex->connect_seq = 0;
            ex->ops->mutex_unlock(ex->lock);
            ex->peer_name = t->peer_name;
            ex->ident_addrs = t->ident_addrs;
            ex->features = t->features;
            /* a new session: the peer starts counting from 1; what we
             * requeue keeps its seqs (the receiver accepts gaps) */
            ex->in_seq = 0;
            ex->ack_left = 0;
            if (!has_requeued(ex))
                ex->out_seq = 0;
            send_server_ident(ex);
            (void)become_ready(ex, DQ_ACCEPT, "session replaced");
        }
        do_write(ex);
    }
    ex->ops->mutex_lock(ex->lock);
    ex->replacing = 0;
    ex->ops->mutex_unlock(ex->lock);
    msgr__free(t);
    msgr_conn_unref(ex);
}

/* Hands c's socket to ex (whose lookup reference t->ex carries) and ends
 * c quietly: it was never visible to the application. */
static void
hand_over(struct msgr_conn *c, struct reuse_task *t)
{
    t->sock = c->sock;
    t->rev1 = c->rev1;
    c->ops->io_set(c->sock, NULL, NULL, 0);
    c->ops->socket_move(c->sock, t->ex->worker);
    c->sock = NULL;
    MSGR_ASSERT(c->ops->post(t->ex->worker, reuse_cb, t) == 0);
    stop_now(c, 0);
}

enum existing_verdict { EX_NEW, EX_ANSWERED, EX_REUSE };

/*
 * CLIENT_IDENT finds a registered connection to the same peer
 * (PROTOCOL.md §4.9). EX_NEW: open a new session on c; EX_ANSWERED: c was
 * answered (WAIT) or stopped; EX_REUSE: *t is filled, c's socket moves
 * into ex. Reads ex's session under its lock (ex is another worker's).
 */
static enum existing_verdict
handle_existing(struct msgr_conn *c, struct msgr_conn *ex,
                const struct msgr_client_ident *ci, struct reuse_task *t)
{
    int es = msgr__conn_state(ex);
    if (es == MSGR_CONN_CLOSED)
        return EX_NEW;
    c->ops->mutex_lock(ex->lock);
    uint64_t ex_pgs = ex->peer_global_seq;
    uint64_t ex_ccookie = ex->client_cookie, ex_scookie = ex->server_cookie;
    int ex_lossy = ex->policy.lossy, ex_server = ex->policy.server;
    int ex_resetcheck = ex->policy.resetcheck;
    int replacing = ex->replacing;
    c->ops->mutex_unlock(ex->lock);
    struct msgr_wbuf w;
    struct out_frame *f;
    if (replacing) {
        f = ctrl_begin(c, &w);
        ctrl_send(c, f, &w, MSGR_TAG_WAIT);
        return EX_ANSWERED;
    }
    if (ex_pgs > ci->global_seq) {
        /* an attempt from before the existing session: stale */
        MSGR_LOG(c->msgr, MSGR_LOG_INFO,
                 "conn %llu: stale global_seq %llu < %llu",
                 (unsigned long long)c->id,
                 (unsigned long long)ci->global_seq,
                 (unsigned long long)ex_pgs);
        stop_now(c, 1);
        return EX_ANSWERED;
    }
    if (ex_lossy) {
        /* a lossy session is simply replaced */
        msgr__conn_stop(ex, 1);
        return EX_NEW;
    }
    int reuse = 0;
    t->reset_full = 0;
    if (ex_scookie && ex_ccookie && ci->cookie != ex_ccookie) {
        /* the peer restarted or reset its session */
        reuse = 1;
        t->reset_full = ex_resetcheck;
    } else if (ci->cookie == ex_ccookie && ex_ccookie) {
        /* a handshake cut between CLIENT_IDENT and SERVER_IDENT */
        reuse = 1;
    } else if (es == MSGR_CONN_READY || es == MSGR_CONN_STANDBY) {
        reuse = 1;
    } else {
        /* both sides connecting: a race */
        struct msgr_addrvec mine;
        msgr_get_myaddrs(c->msgr, &mine);
        const struct msgr_addr *pa =
            msgr_addrvec_find(&ci->addrs, MSGR_ADDR_MSGR2);
        const struct msgr_addr *ma = msgr_addrvec_find(&mine, MSGR_ADDR_MSGR2);
        reuse = ex_server || (pa && ma && msgr_addr_cmp(pa, ma) < 0);
        if (!reuse) {
            /* our outgoing attempt wins: the peer backs off */
            msgr_conn_send_keepalive(ex);
            f = ctrl_begin(c, &w);
            ctrl_send(c, f, &w, MSGR_TAG_WAIT);
            return EX_ANSWERED;
        }
    }
    c->ops->mutex_lock(ex->lock);
    if (ex->replacing) {
        c->ops->mutex_unlock(ex->lock);
        f = ctrl_begin(c, &w);
        ctrl_send(c, f, &w, MSGR_TAG_WAIT);
        return EX_ANSWERED;
    }
    ex->replacing = 1;
    c->ops->mutex_unlock(ex->lock);
    t->new_session = 1;
    t->peer_name = c->peer_name;
    t->ident_addrs = ci->addrs;
    t->features = c->features;
    t->client_cookie = ci->cookie;
    t->peer_global_seq = ci->global_seq;
    return EX_REUSE;
}

/* A new session on c: SERVER_IDENT, then into the table, then READY. */
static int
server_ident_step(struct msgr_conn *c, struct conn_hold *h)
{
    (void)h;
    c->in_seq = 0;
    c->out_seq = 0;
    send_server_ident(c);
    if (msgr__accept_conn(c->msgr, c) < 0) {
        /* the replaced connection has not left the table yet: let the
         * peer retry */
        return MSGR_ESTATE;
    }
    return become_ready(c, DQ_ACCEPT, "server ident sent");
}

static int
handle_client_ident(struct msgr_conn *c, const struct msgr_seg *seg)
{
    struct msgr *m = c->msgr;
    struct msgr_client_ident ci;
    int e = msgr_client_ident_decode(seg->base, seg->len, &ci);
    if (e < 0)
        return e;
    if (ci.addrs.n == 0)
        return MSGR_EDECODE;
    struct msgr_addrvec mine;
    msgr_get_myaddrs(m, &mine);
    if (!msgr_addrvec_contains(&mine, &ci.target)) {
        /* meant for another instance at this address (tracker 38247) */
        char a[96], b[160];
        msgr_addr_format(&ci.target, a, sizeof(a));
        msgr_addrvec_format(&mine, b, sizeof(b));
        msgr__log(m, MSGR_LOG_WARN, "conn %llu: peer targets %s, I am %s",
                  (unsigned long long)c->id, a, b);
        return MSGR_EWRONG_PEER;
    }
    uint64_t missing = c->policy.features_required & ~ci.features_supported;
    if (missing) {
        send_u64_frame(c, MSGR_TAG_IDENT_MISSING_FEATURES, missing);
        return 0;
    }
    /* a client that does not know its IP: what the socket says */
    struct msgr_addr sock_peer;
    if (c->ops->peer_addr(c->sock, &sock_peer) == 0) {
        for (uint32_t i = 0; i < ci.addrs.n; i++) {
            if (msgr_addr_is_blank_ip(&ci.addrs.v[i])) {
                ci.addrs.v[i].family = sock_peer.family;
                memcpy(ci.addrs.v[i].ip, sock_peer.ip, sizeof(sock_peer.ip));
            }
        }
    }
    c->peer_addrs = ci.addrs;
    c->ident_addrs = ci.addrs;
    c->peer_name.type = c->peer_type;
    c->peer_name.num = ci.gid;
    c->ops->mutex_lock(c->lock);
    c->peer_global_seq = ci.global_seq;
    c->client_cookie = ci.cookie;
    c->ops->mutex_unlock(c->lock);
    c->features = ci.features_supported & c->policy.features_supported;
    const struct msgr_addr *t = msgr_addrvec_find(&ci.addrs, MSGR_ADDR_MSGR2);
    if (t)
        c->target_addr = *t;

    if (!(c->policy.server && c->policy.lossy &&
          !c->policy.register_lossy_clients)) {
        struct msgr_conn *ex = msgr__lookup_conn(m, &ci.addrs);
        if (ex && ex != c) {
            struct reuse_task *rt = msgr__calloc(1, sizeof(*rt));
            MSGR_ASSERT(rt != NULL);
            rt->ex = ex;
            enum existing_verdict v = handle_existing(c, ex, &ci, rt);
            if (v == EX_REUSE) {
                hand_over(c, rt); /* rt owns the lookup reference now */
                return 1;
            }
            msgr__free(rt);
            msgr_conn_unref(ex);
            if (v == EX_ANSWERED)
                return msgr__conn_state(c) == MSGR_CONN_CLOSED ? 1 : 0;
        } else if (ex) {
            msgr_conn_unref(ex);
        }
    }
    return at_step(c, MSGR_STEP_SEND_SERVER_IDENTITY, server_ident_step);
}

static int
handle_server_ident(struct msgr_conn *c, const struct msgr_seg *seg)
{
    struct msgr_server_ident si;
    int e = msgr_server_ident_decode(seg->base, seg->len, &si);
    if (e < 0)
        return e;
    if (!msgr_addrvec_contains(&si.addrs, &c->target_addr)) {
        char a[96], b[160];
        msgr_addr_format(&c->target_addr, a, sizeof(a));
        msgr_addrvec_format(&si.addrs, b, sizeof(b));
        msgr__log(c->msgr, MSGR_LOG_WARN,
                  "conn %llu: dialled %s but the peer is %s",
                  (unsigned long long)c->id, a, b);
        return MSGR_EWRONG_PEER;
    }
    uint64_t missing = c->policy.features_required & ~si.features_supported;
    if (missing)
        return MSGR_EFEATURES;
    c->ops->mutex_lock(c->lock);
    c->server_cookie = si.cookie;
    c->ident_addrs = si.addrs;
    c->peer_global_seq = si.global_seq;
    c->peer_name.type = c->peer_type;
    c->peer_name.num = si.gid;
    c->features = si.features_supported & c->policy.features_supported;
    /* the server decides whether the session is lossy */
    c->policy.lossy = (si.flags & MSGR_IDENT_FLAG_LOSSY) != 0;
    c->ops->mutex_unlock(c->lock);
    c->in_seq = 0;
    return become_ready(c, DQ_CONNECT, "server ident");
}

static int
handle_reconnect_reply(struct msgr_conn *c, uint8_t tag,
                       const struct msgr_seg *seg)
{
    uint64_t v = 0;
    int e;
    switch (tag) {
    case MSGR_TAG_SESSION_RECONNECT_OK:
        if ((e = msgr_u64_decode(seg->base, seg->len, &v)) < 0)
            return e;
        discard_requeued_up_to(c, v);
        return become_ready(c, DQ_CONNECT, "reconnect ok");
    case MSGR_TAG_SESSION_RESET:
        if (seg->len < 1)
            return MSGR_EDECODE;
        reset_session(c, ((const uint8_t *)seg->base)[0] != 0);
        set_state(c, MSGR_CONN_SESSION_CONNECTING, "session reset");
        send_client_ident(c);
        return 0;
    case MSGR_TAG_SESSION_RETRY:
        if ((e = msgr_u64_decode(seg->base, seg->len, &v)) < 0)
            return e;
        c->ops->mutex_lock(c->lock);
        c->connect_seq = v + 1;
        c->ops->mutex_unlock(c->lock);
        send_reconnect(c);
        return 0;
    case MSGR_TAG_SESSION_RETRY_GLOBAL:
        if ((e = msgr_u64_decode(seg->base, seg->len, &v)) < 0)
            return e;
        c->global_seq = msgr__get_global_seq(c->msgr, v);
        send_reconnect(c);
        return 0;
    default:
        return MSGR_EPROTO;
    }
}

static void
send_session_reset(struct msgr_conn *c, int full)
{
    struct msgr_wbuf w;
    struct out_frame *f = ctrl_begin(c, &w);
    msgr_put_u8(&w, full ? 1 : 0);
    ctrl_send(c, f, &w, MSGR_TAG_SESSION_RESET);
}

/*
 * A peer resumes a session (PROTOCOL.md §4.10). The decision reads the
 * existing connection's session under its lock; resuming moves this
 * socket into the existing connection (Ceph's reuse_connection) and this
 * connection ends quietly: it was never visible to the application.
 */
static int
retry_global_step(struct msgr_conn *c, struct conn_hold *h)
{
    send_u64_frame(c, MSGR_TAG_SESSION_RETRY_GLOBAL, h->arg);
    return 0;
}

/* The session resumes in ex: c's socket moves there (h->ex carries the
 * lookup's reference, which moves into the task). */
static int
reconnect_ok_step(struct msgr_conn *c, struct conn_hold *h)
{
    struct reuse_task *t = msgr__calloc(1, sizeof(*t));
    MSGR_ASSERT(t != NULL);
    t->ex = h->ex;
    t->msg_seq = h->arg;
    h->ex = NULL;
    hand_over(c, t);
    return 1;
}

static int
handle_session_reconnect(struct msgr_conn *c, const struct msgr_seg *seg)
{
    struct msgr *m = c->msgr;
    struct msgr_reconnect r;
    int e = msgr_reconnect_decode(seg->base, seg->len, &r);
    if (e < 0)
        return e;
    struct msgr_addr sock_peer;
    if (c->ops->peer_addr(c->sock, &sock_peer) == 0) {
        for (uint32_t i = 0; i < r.addrs.n; i++) {
            if (msgr_addr_is_blank_ip(&r.addrs.v[i])) {
                r.addrs.v[i].family = sock_peer.family;
                memcpy(r.addrs.v[i].ip, sock_peer.ip, sizeof(sock_peer.ip));
            }
        }
    }
    struct msgr_conn *ex = msgr__lookup_conn(m, &r.addrs);
    if (!ex) {
        send_session_reset(c, 1);
        return 0;
    }
    enum { REUSE, RESET_FULL, RESET_KEEP, RETRY, RETRY_GLOBAL, WAIT } act;
    uint64_t v = 0;
    c->ops->mutex_lock(ex->lock);
    int es = msgr__conn_state(ex);
    if (es == MSGR_CONN_CLOSED) {
        act = RESET_FULL;
    } else if (ex->replacing) {
        act = RETRY_GLOBAL;
        v = ex->peer_global_seq;
    } else if (r.client_cookie != ex->client_cookie) {
        act = ex->policy.resetcheck ? RESET_FULL : RESET_KEEP;
    } else if (ex->server_cookie == 0) {
        /* our own attempt never got SERVER_IDENT: queues kept (38118) */
        act = RESET_KEEP;
    } else if (ex->peer_global_seq > r.global_seq) {
        act = RETRY_GLOBAL;
        v = ex->peer_global_seq;
    } else if (ex->connect_seq > r.connect_seq) {
        act = RETRY;
        v = ex->connect_seq;
    } else {
        act = REUSE;
        if (ex->connect_seq == r.connect_seq && !ex->policy.server) {
            /* both sides reconnecting: the higher address waits */
            struct msgr_addrvec mine;
            msgr_get_myaddrs(m, &mine);
            const struct msgr_addr *pa =
                msgr_addrvec_find(&r.addrs, MSGR_ADDR_MSGR2);
            const struct msgr_addr *ma =
                msgr_addrvec_find(&mine, MSGR_ADDR_MSGR2);
            if (pa && ma && msgr_addr_cmp(pa, ma) > 0)
                act = WAIT;
        }
        if (act == REUSE) {
            ex->replacing = 1;
            ex->connect_seq = r.connect_seq;
            ex->peer_global_seq = r.global_seq;
        }
    }
    c->ops->mutex_unlock(ex->lock);

    switch (act) {
    case RESET_FULL:
    case RESET_KEEP:
        send_session_reset(c, act == RESET_FULL);
        break;
    case RETRY:
        send_u64_frame(c, MSGR_TAG_SESSION_RETRY, v);
        break;
    case RETRY_GLOBAL:
        e = intercept_at(c, MSGR_STEP_SESSION_RETRY, retry_global_step);
        if (e == 1 && c->hold.step)
            c->hold.arg = v;
        if (e) {
            msgr_conn_unref(ex);
            return e;
        }
        send_u64_frame(c, MSGR_TAG_SESSION_RETRY_GLOBAL, v);
        break;
    case WAIT: {
        struct msgr_wbuf w;
        struct out_frame *f = ctrl_begin(c, &w);
        ctrl_send(c, f, &w, MSGR_TAG_WAIT);
        break;
    }
    case REUSE: {
        struct conn_hold h = {.ex = ex, .arg = r.msg_seq};
        e = intercept_at(c, MSGR_STEP_SEND_RECONNECT_OK, reconnect_ok_step);
        if (e == 1 && c->hold.step) {
            /* ex stays marked replacing while c waits */
            c->hold.ex = ex;
            c->hold.arg = r.msg_seq;
            return 1;
        }
        if (e) {
            hold_drop(&h);
            return e;
        }
        return reconnect_ok_step(c, &h);
    }
    }
    msgr_conn_unref(ex);
    return 0;
}

/*
 * An interceptor did not let a MESSAGE frame (traced as read) through:
 * held, it is reported when the hold ends without replaying it; failed or
 * stopped, it is dropped now. Either way it has a fate.
 */
static void
msg_not_processed(struct msgr_conn *c, const struct msgr_header2 *h)
{
    struct msgr_msg_header hdr;
    memset(&hdr, 0, sizeof(hdr));
    hdr.seq = h->seq;
    hdr.tid = h->tid;
    hdr.type = h->type;
    hdr.src = c->peer_name;
    if (c->hold.step) {
        c->hold.has_msg = 1;
        c->hold.msg_hdr = hdr;
    } else {
        trace_msg_unprocessed(c, &hdr);
    }
}

/* Steady state: one MESSAGE frame. */
static int
handle_message(struct msgr_conn *c, const struct msgr_seg *segs)
{
    struct msgr *m = c->msgr;
    struct msgr_header2 h;
    size_t frame_len =
        MSGR_PREAMBLE_LEN + msgr_frame_body_len(&c->pre, c->rev1 > 0);
    int e = msgr_header2_decode(segs[0].base, segs[0].len, &h);
    if (e < 0)
        return e;
    if (c->pre.nseg < 1 || segs[0].len != MSGR_HEADER2_LEN)
        return MSGR_EDECODE;
    if ((e = intercept_read(c, MSGR_STEP_HANDLE_MESSAGE, frame_len)) != 0) {
        msg_not_processed(c, &h);
        return e;
    }
    trim_sent(c, h.ack_seq);
    if (h.seq <= c->in_seq) {
        /* a replay of something we already have */
        MSGR_LOG(m, MSGR_LOG_DEBUG, "conn %llu: dropping old seq %llu <= %llu",
                 (unsigned long long)c->id, (unsigned long long)h.seq,
                 (unsigned long long)c->in_seq);
        if (m->has_tracer && m->tracer.msg) {
            /* no message object is built for a duplicate: report its
             * header so traces can count replays */
            struct msgr_msg dup;
            memset(&dup, 0, sizeof(dup));
            dup.hdr.seq = h.seq;
            dup.hdr.type = h.type;
            dup.hdr.tid = h.tid;
            dup.hdr.src = c->peer_name;
            msgr__trace_msg(m, c, &dup, MSGR_FATE_DUPLICATE);
        }
        return 0;
    }
    uint32_t lens[3] = {0, 0, 0};
    for (int i = 1; i < c->pre.nseg && i < 4; i++)
        lens[i - 1] = segs[i].len;
    uint8_t *buf;
    struct msgr_msg *msg = msgr__msg_new_raw(lens[0] + lens[1] + lens[2], &buf);
    if (!msg)
        return -ENOMEM;
    struct msgr_buf *dst[3] = {&msg->front, &msg->middle, &msg->data};
    for (int i = 0; i < 3; i++) {
        dst[i]->len = lens[i];
        dst[i]->data = lens[i] ? buf : NULL;
        if (lens[i])
            memcpy(buf, segs[i + 1].base, lens[i]);
        buf += lens[i];
    }
    msg->hdr.seq = h.seq;
    msg->hdr.tid = h.tid;
    msg->hdr.type = h.type;
    msg->hdr.priority = h.priority;
    msg->hdr.version = h.version;
    msg->hdr.compat_version = h.compat_version;
    msg->hdr.data_off = h.data_off;
    msg->hdr.flags = h.flags;
    msg->hdr.src = c->peer_name;
    msg->recv_stamp = now(c);
    if (c->thr_msgs || c->thr_bytes) {
        msg->throttle = c->throttle; /* returned by the last unref */
        msg->throttle_msgs = c->thr_msgs;
        msg->throttle_bytes = c->thr_bytes;
        c->thr_msgs = 0;
        c->thr_bytes = 0;
    }
    /* before the message counts as received: a fault here makes the
     * peer send it again on the next session */
    if ((e = intercept_read(c, MSGR_STEP_READ_MESSAGE_COMPLETE, frame_len)) !=
        0) {
        msg_not_processed(c, &h);
        msgr_msg_unref(msg);
        return e;
    }
    msgr_conn_ref(c);
    msg->conn = c;
    c->in_seq = h.seq;
    c->ack_left++;
    atomic_fetch_add_explicit(&c->worker->perf.msgs_in, 1,
                              memory_order_relaxed);
    if (msgr__blackholed(m, c, msg, MSGR_BLACKHOLE_IN)) {
        /* read and acknowledged, then dropped: the sender never knows */
        msgr__trace_msg(m, c, msg, MSGR_FATE_BLACKHOLED);
        msgr_msg_unref(msg);
        return 0;
    }
    deliver_or_delay(c, msg);
    return 0;
}

static int
handle_ready_frame(struct msgr_conn *c, uint8_t tag, const struct msgr_seg *segs)
{
    uint64_t v;
    int e;
    switch (tag) {
    case MSGR_TAG_MESSAGE:
        return handle_message(c, segs);
    case MSGR_TAG_ACK:
        if ((e = msgr_u64_decode(segs[0].base, segs[0].len, &v)) < 0)
            return e;
        trim_sent(c, v);
        return 0;
    case MSGR_TAG_KEEPALIVE2:
        if (segs[0].len < 8)
            return MSGR_EDECODE;
        {
            const uint8_t *p = segs[0].base;
            uint32_t sec = (uint32_t)p[0] | (uint32_t)p[1] << 8 |
                           (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
            uint32_t nsec = (uint32_t)p[4] | (uint32_t)p[5] << 8 |
                            (uint32_t)p[6] << 16 | (uint32_t)p[7] << 24;
            send_keepalive_frame(c, MSGR_TAG_KEEPALIVE2_ACK, sec, nsec);
        }
        return 0;
    case MSGR_TAG_KEEPALIVE2_ACK:
        c->ops->mutex_lock(c->lock);
        c->last_keepalive_ack = now(c);
        c->ops->mutex_unlock(c->lock);
        return 0;
    default:
        return MSGR_EPROTO;
    }
}

/* One complete frame, by state (one small function per state above). */
static int
handle_frame(struct msgr_conn *c, uint8_t tag, const struct msgr_seg *segs)
{
    int s = msgr__conn_state(c);
    if (!c->hold.pass) /* a replay after a hold was traced the first time */
        trace_frame(c, 0, tag,
                    MSGR_PREAMBLE_LEN +
                        msgr_frame_body_len(&c->pre, c->rev1 > 0));
    switch (s) {
    case MSGR_CONN_HELLO_CONNECTING:
    case MSGR_CONN_HELLO_ACCEPTING:
        return tag == MSGR_TAG_HELLO ? handle_hello(c, &segs[0]) : MSGR_EPROTO;
    case MSGR_CONN_AUTH_CONNECTING:
        if (tag == MSGR_TAG_AUTH_DONE)
            return handle_auth_done(c, &segs[0]);
        if (tag == MSGR_TAG_AUTH_BAD_METHOD) {
            /* none is all we have: no other method to try */
            msgr__log(c->msgr, MSGR_LOG_ERR, "conn %llu: peer refuses auth none",
                      (unsigned long long)c->id);
            stop_now(c, 1);
            return 1;
        }
        return MSGR_EPROTO;
    case MSGR_CONN_AUTH_ACCEPTING:
        return tag == MSGR_TAG_AUTH_REQUEST ? handle_auth_request(c, &segs[0])
                                            : MSGR_EPROTO;
    case MSGR_CONN_AUTH_CONNECTING_SIGN:
        return tag == MSGR_TAG_AUTH_SIGNATURE
                   ? handle_client_signature(c, &segs[0])
                   : MSGR_EPROTO;
    case MSGR_CONN_AUTH_ACCEPTING_SIGN:
        if (tag != MSGR_TAG_AUTH_SIGNATURE)
            return MSGR_EPROTO;
        if (check_signature(&segs[0]) < 0)
            return MSGR_EAUTH;
        set_state(c, MSGR_CONN_SESSION_ACCEPTING, "signature");
        return 0;
    case MSGR_CONN_SESSION_CONNECTING:
        if (tag == MSGR_TAG_SERVER_IDENT)
            return handle_server_ident(c, &segs[0]);
        if (tag == MSGR_TAG_IDENT_MISSING_FEATURES)
            return MSGR_EFEATURES;
        if (tag == MSGR_TAG_WAIT) {
            set_state(c, MSGR_CONN_WAIT, "wait");
            return MSGR_ESTATE;
        }
        return MSGR_EPROTO;
    case MSGR_CONN_SESSION_RECONNECTING:
        if (tag == MSGR_TAG_WAIT) {
            set_state(c, MSGR_CONN_WAIT, "wait");
            return MSGR_ESTATE;
        }
        return handle_reconnect_reply(c, tag, &segs[0]);
    case MSGR_CONN_SESSION_ACCEPTING:
        if (tag == MSGR_TAG_CLIENT_IDENT)
            return handle_client_ident(c, &segs[0]);
        if (tag == MSGR_TAG_SESSION_RECONNECT)
            return handle_session_reconnect(c, &segs[0]);
        return MSGR_EPROTO;
    case MSGR_CONN_READY:
        return handle_ready_frame(c, tag, segs);
    case MSGR_CONN_NONE:
    case MSGR_CONN_START_CONNECT:
    case MSGR_CONN_CONNECTING:
    case MSGR_CONN_BANNER_CONNECTING:
    case MSGR_CONN_START_ACCEPT:
    case MSGR_CONN_BANNER_ACCEPTING:
    case MSGR_CONN_STANDBY:
    case MSGR_CONN_WAIT:
    case MSGR_CONN_CLOSED:
    case MSGR_CONN_NSTATES:
        break;
    }
    return MSGR_EPROTO;
}

static void
release_held_throttle(struct msgr_conn *c)
{
    msgr__throttle_put(c->throttle, c->thr_msgs, c->thr_bytes);
    c->thr_msgs = 0;
    c->thr_bytes = 0;
}

static int
read_body(struct msgr_conn *c, const uint8_t *p, size_t n)
{
    (void)n;
    struct msgr_seg segs[MSGR_MAX_SEGMENTS];
    memset(segs, 0, sizeof(segs));
    int e = msgr_frame_body_decode(&c->pre, c->rev1 > 0, p, segs);
    expect_frame(c);
    if (e == 0) {
        int stall;
        unsigned tag = c->pre.tag;
        if (brk_read(c, tag, MSGR_PREAMBLE_LEN + n, &stall)) {
            release_held_throttle(c); /* a replay takes it again */
            return 1;
        }
        e = handle_frame(c, tag, segs);
        if (stall)
            e = brk_read_stalled(c, e, tag);
    } else if (e == MSGR_EABORTED) {
        e = 0; /* the sender revoked it: nothing to do */
    }
    /* a frame that built no message (a duplicate, a decoding error, an
     * aborted frame) returns what its preamble took */
    release_held_throttle(c);
    if (e == 0 && c->sock)
        update_want(c);
    return e;
}

/* Rewinds the preamble just read and retries it in 1 ms. */
static int
pause_reading(struct msgr_conn *c)
{
    c->roff -= MSGR_PREAMBLE_LEN;
    c->paused = 1;
    c->ops->timer_arm(c->retry_timer, THROTTLE_RETRY_NS);
    update_want(c);
    return 1;
}

static int
read_preamble(struct msgr_conn *c, const uint8_t *p, size_t n)
{
    (void)n;
    int e = msgr_preamble_decode(p, &c->msgr->limits, &c->pre);
    if (e < 0)
        return e;
    if (c->pre.tag == MSGR_TAG_MESSAGE) {
        if (msgr__conn_state(c) != MSGR_CONN_READY)
            return MSGR_EPROTO;
        uint64_t sz = 0;
        for (int i = 1; i < c->pre.nseg; i++)
            sz += c->pre.seg_len[i];
        /* the policy throttles (held across a dispatch-throttle pause),
         * then the dispatch throttle: a slow application slows the peer
         * down instead of growing our memory */
        if (!c->thr_msgs && !c->thr_bytes &&
            !msgr__throttle_take(c->throttle, sz, &c->thr_msgs,
                                 &c->thr_bytes)) {
            atomic_fetch_add_explicit(&c->msgr->throttle_waits, 1,
                                      memory_order_relaxed);
            return pause_reading(c);
        }
        uint64_t queued =
            atomic_load_explicit(&c->msgr->dq.bytes, memory_order_relaxed);
        if (queued && queued + sz > c->msgr->cfg.dispatch_throttle_bytes)
            return pause_reading(c);
    }
    size_t body = msgr_frame_body_len(&c->pre, c->rev1 > 0);
    expect(c, body, read_body);
    c->rkeep = MSGR_PREAMBLE_LEN; /* a hold may rewind the whole frame */
    if (body == 0)
        return read_body(c, p + MSGR_PREAMBLE_LEN, 0);
    return 0;
}

/* The peer's banner was read: say HELLO. */
static int
hello_step(struct msgr_conn *c, struct conn_hold *h)
{
    (void)h;
    if (c->is_client) {
        set_state(c, MSGR_CONN_HELLO_CONNECTING, "banner");
        send_hello(c, &c->target_addr);
    } else {
        struct msgr_addr peer;
        memset(&peer, 0, sizeof(peer));
        c->ops->peer_addr(c->sock, &peer);
        peer.type = MSGR_ADDR_MSGR2;
        peer.nonce = 0;
        set_state(c, MSGR_CONN_HELLO_ACCEPTING, "banner");
        send_hello(c, &peer);
    }
    update_want(c);
    return 0;
}

static int
process_banner(struct msgr_conn *c, const uint8_t *p, size_t n)
{
    uint64_t supported, required;
    int e = intercept_read(c, c->is_client
                                  ? MSGR_STEP_HANDLE_PEER_BANNER_BANNER_CONNECTING
                                  : MSGR_STEP_HANDLE_PEER_BANNER,
                           n);
    if (e)
        return e;
    e = msgr_banner_decode(p, &supported, &required);
    if (e < 0)
        return e;
    uint64_t ours = c->msgr->cfg.force_rev0 ? 0 : MSGR2_FEATURE_REVISION_1;
    if (required & ~ours) {
        msgr__log(c->msgr, MSGR_LOG_WARN,
                  "conn %llu: peer requires msgr2 features 0x%llx we lack",
                  (unsigned long long)c->id, (unsigned long long)required);
        stop_now(c, 1);
        return 1;
    }
    /* both sides must speak 2.1, else both fall back to 2.0 */
    c->rev1 = (supported & ours & MSGR2_FEATURE_REVISION_1) ? 1 : 0;
    expect_frame(c);
    return at_step(c,
                   c->is_client
                       ? MSGR_STEP_HANDLE_PEER_BANNER_PAYLOAD_HELLO_CONNECTING
                       : MSGR_STEP_HANDLE_PEER_BANNER_PAYLOAD,
                   hello_step);
}

static int
read_banner(struct msgr_conn *c, const uint8_t *p, size_t n)
{
    int stall;
    if (brk_read(c, MSGR_BREAK_BANNER, n, &stall))
        return 1;
    int r = process_banner(c, p, n);
    return stall ? brk_read_stalled(c, r, MSGR_BREAK_BANNER) : r;
}

/* ------------------------------------------------------------- socket */

static int
client_banner_send_step(struct msgr_conn *c, struct conn_hold *h)
{
    (void)h;
    send_banner(c);
    expect(c, MSGR_BANNER_LEN, read_banner);
    update_want(c);
    return 0;
}

static int
client_banner_step(struct msgr_conn *c, struct conn_hold *h)
{
    (void)h;
    return at_step(c, MSGR_STEP_BANNER_EXCHANGE_BANNER_CONNECTING,
                   client_banner_send_step);
}

static void
connected(struct msgr_conn *c)
{
    int r = c->ops->connect_result(c->sock);
    if (r < 0) {
        if (r == -ECONNREFUSED)
            upcall(c, DQ_REFUSED);
        fault(c, r, "connect");
        return;
    }
    if (c->brk_stall_connected) {
        c->brk_stall_connected = 0;
        brk_stall(c, 1, MSGR_BREAK_CONNECTING);
        return;
    }
    set_state(c, MSGR_CONN_BANNER_CONNECTING, "tcp connected");
    r = at_step(c, MSGR_STEP_START_CLIENT_BANNER_EXCHANGE, client_banner_step);
    if (r < 0)
        fault(c, r, "breakpoint");
}

static void
io_cb(struct msgr_socket *s, unsigned events, void *arg)
{
    struct msgr_conn *c = arg;
    (void)s;
    msgr_conn_ref(c);
    if (msgr__conn_state(c) == MSGR_CONN_CONNECTING) {
        if (events & MSGR_IO_WRITE)
            connected(c);
    } else {
        if ((events & MSGR_IO_READ) && c->sock)
            do_read(c);
        if (c->sock && (c->wq_head || c->ack_left || (events & MSGR_IO_WRITE)))
            do_write(c);
    }
    msgr_conn_unref(c);
}

static void
attach_socket(struct msgr_conn *c, struct msgr_socket *s, unsigned want)
{
    c->sock = s;
    c->io_want = want;
    c->ops->io_set(s, io_cb, c, want);
}

static void
close_socket(struct msgr_conn *c, int abortive)
{
    hold_clear(c);
    if (!c->sock)
        return;
    c->ops->close(c->sock, abortive);
    c->sock = NULL;
    c->io_want = 0;
    c->paused = 0;
    c->brk_stall_connected = 0;
    release_held_throttle(c); /* a half-read message */
    if (c->keepalive_timer)
        c->ops->timer_cancel(c->keepalive_timer);
    wq_clear(c);
    c->rlen = c->roff = 0;
    c->need = 0;
    c->rkeep = 0;
    c->next_read = NULL;
    maybe_shrink_rbuf(c);
}

/* The TCP connect of an attempt (after the `connecting` breakpoint). */
static void
connect_now(struct msgr_conn *c)
{
    struct msgr_socket *s = NULL;
    int e = c->ops->connect(c->worker, &c->target_addr, &s);
    if (e < 0) {
        if (e == -ECONNREFUSED)
            upcall(c, DQ_REFUSED);
        fault(c, e, "connect");
        return;
    }
    attach_socket(c, s, MSGR_IO_WRITE);
    set_state(c, MSGR_CONN_CONNECTING, "connecting");
    arm_ready_timeout(c);
}

static int
connect_step(struct msgr_conn *c, struct conn_hold *h)
{
    (void)h;
    connect_now(c);
    return 0;
}

static void
do_connect(struct msgr_conn *c)
{
    if (atomic_load(&c->stop_requested))
        return;
    close_socket(c, 0);
    set_state(c, MSGR_CONN_START_CONNECT, "connect");
    c->rev1 = -1;
    c->global_seq = msgr__get_global_seq(c->msgr, 0);
    if (c->msgr->has_breaker) {
        switch (brk_ask(c, 1, MSGR_BREAK_CONNECTING)) {
        case MSGR_INTERCEPT_FAIL:
            fault(c, MSGR_EINJECTED, "breakpoint");
            return;
        case MSGR_INTERCEPT_STOP:
            stop_now(c, 1);
            return;
        case MSGR_INTERCEPT_HOLD:
            hold_begin(c, MSGR_BREAK_HELD_STEP(1, MSGR_BREAK_CONNECTING),
                       connect_step);
            return;
        case MSGR_INTERCEPT_STALL:
            /* no frame to let go: the connect completes, then the cut */
            c->brk_stall_connected = 1;
            break;
        default:
            break;
        }
    }
    connect_now(c);
}

/* ---------------------------------------------------------------- fault */

/*
 * The fault algorithm (PROTOCOL.md §3.10 and §4.11): lossy sessions end;
 * lossless ones requeue what was not acknowledged, then either wait in
 * STANDBY (servers, or nothing to send) or reconnect, with a backoff when
 * the failure happened while connecting.
 */
static void
fault(struct msgr_conn *c, int err, const char *what)
{
    struct msgr *m = c->msgr;
    int s = msgr__conn_state(c);
    if (s == MSGR_CONN_CLOSED || s == MSGR_CONN_NONE)
        return;
    trace_fault(c, err, what);
    MSGR_LOG(m, MSGR_LOG_INFO, "conn %llu: fault in %s: %s: %s",
             (unsigned long long)c->id, msgr__conn_state_name(s), what,
             msgr_strerror(err));
    int connecting = is_connecting_state(s) || s == MSGR_CONN_WAIT;
    if (atomic_load(&m->stopping) || atomic_load(&c->stop_requested)) {
        stop_now(c, 0);
        return;
    }
    if (c->policy.lossy && !(c->is_client && connecting)) {
        stop_now(c, 1);
        return;
    }
    delay_flush(c);
    requeue_sent(c);
    close_socket(c, 0);
    c->ops->timer_cancel(c->tick_timer);
    if (!c->is_client && c->server_cookie == 0 && out_q_empty(c)) {
        /* accepted, never reached a session, nothing to send */
        stop_now(c, 1);
        return;
    }
    if (!c->is_client && c->target_addr.family == MSGR_AF_UNSPEC) {
        /* accepted from a peer we cannot dial back (an unbound client):
         * keep the session for it to resume */
        set_state(c, MSGR_CONN_STANDBY, "fault, peer not dialable");
        return;
    }
    if (c->policy.server ||
        (c->policy.standby && out_q_empty(c) && s != MSGR_CONN_WAIT)) {
        set_state(c, MSGR_CONN_STANDBY, "fault");
        return;
    }
    if (connecting) {
        if (s == MSGR_CONN_WAIT)
            c->backoff_ns = m->cfg.max_backoff_ns;
        else if (c->backoff_ns == 0)
            c->backoff_ns = m->cfg.initial_backoff_ns;
        else if (c->backoff_ns * 2 < m->cfg.max_backoff_ns)
            c->backoff_ns *= 2;
        else
            c->backoff_ns = m->cfg.max_backoff_ns;
        /* a retry of a session that exists is a new reconnect attempt:
         * without the bump a WAIT answer would repeat forever */
        c->ops->mutex_lock(c->lock);
        if (c->server_cookie)
            c->connect_seq++;
        c->ops->mutex_unlock(c->lock);
        if (s != MSGR_CONN_WAIT)
            set_state(c, MSGR_CONN_START_CONNECT, "fault, backing off");
        c->is_client = 1;
        c->ops->timer_arm(c->backoff_timer, c->backoff_ns);
        return;
    }
    /* was established: reconnect now */
    c->ops->mutex_lock(c->lock);
    if (c->server_cookie)
        c->connect_seq++;
    c->ops->mutex_unlock(c->lock);
    c->backoff_ns = 0;
    c->is_client = 1;
    do_connect(c);
}

/* --------------------------------------------------------------- stop */

static void
stop_now(struct msgr_conn *c, int queue_reset)
{
    struct msgr *m = c->msgr;
    int s = msgr__conn_state(c);
    if (s == MSGR_CONN_CLOSED)
        return;
    set_state(c, MSGR_CONN_CLOSED, queue_reset ? "stop, reset" : "stop");
    close_socket(c, 0);
    if (c->started) {
        c->ops->timer_free(c->backoff_timer);
        c->ops->timer_free(c->tick_timer);
        c->ops->timer_free(c->retry_timer);
        c->ops->timer_free(c->keepalive_timer);
        c->ops->timer_free(c->delay_timer);
        c->backoff_timer = c->tick_timer = c->retry_timer = NULL;
        c->keepalive_timer = c->delay_timer = NULL;
        atomic_fetch_sub_explicit(&c->worker->perf.active_conns, 1,
                                  memory_order_relaxed);
    }
    discard_out_q(c);
    discard_sent(c);
    delay_discard(c);
    msgr__dq_discard_conn(m, c);
    msgr__unregister_conn(m, c);
    if (queue_reset && !atomic_load(&m->stopping))
        upcall(c, DQ_RESET);
    msgr_stack_put_worker(c->worker);
}

/* ------------------------------------------------------- posted tasks */

static void
start_connect_cb(void *arg)
{
    struct msgr_conn *c = arg;
    init_worker_side(c);
    if (!atomic_load(&c->stop_requested) &&
        msgr__conn_state(c) == MSGR_CONN_NONE)
        do_connect(c);
    msgr_conn_unref(c);
}

void
msgr__conn_start_connect(struct msgr_conn *c)
{
    msgr_conn_ref(c);
    if (c->ops->post(c->worker, start_connect_cb, c) != 0)
        msgr_conn_unref(c);
}

struct accept_task {
    struct msgr_conn *c;
    struct msgr_socket *s;
};

static int
server_banner_send_step(struct msgr_conn *c, struct conn_hold *h)
{
    (void)h;
    send_banner(c);
    set_state(c, MSGR_CONN_BANNER_ACCEPTING, "banner sent");
    expect(c, MSGR_BANNER_LEN, read_banner);
    do_write(c);
    return 0;
}

static int
server_banner_step(struct msgr_conn *c, struct conn_hold *h)
{
    (void)h;
    return at_step(c, MSGR_STEP_BANNER_EXCHANGE, server_banner_send_step);
}

static int
accepted_step(struct msgr_conn *c, struct conn_hold *h)
{
    (void)h;
    return at_step(c, MSGR_STEP_START_SERVER_BANNER_EXCHANGE,
                   server_banner_step);
}

/* The `accepted` breakpoint: 0 to go on, else what to return. */
static int
brk_accepted(struct msgr_conn *c)
{
    if (!c->msgr->has_breaker)
        return 0;
    switch (brk_ask(c, 0, MSGR_BREAK_ACCEPTED)) {
    case MSGR_INTERCEPT_FAIL:
        return MSGR_EINJECTED;
    case MSGR_INTERCEPT_STOP:
        stop_now(c, 1);
        return 1;
    case MSGR_INTERCEPT_HOLD:
        hold_begin(c, MSGR_BREAK_HELD_STEP(0, MSGR_BREAK_ACCEPTED),
                   accepted_step);
        return 1;
    case MSGR_INTERCEPT_STALL:
        /* released, it starts the banner exchange on the cut socket */
        brk_stall_then(c, 0, MSGR_BREAK_ACCEPTED, accepted_step);
        return 1;
    default:
        return 0;
    }
}

static void
start_accept_cb(void *arg)
{
    struct accept_task *t = arg;
    struct msgr_conn *c = t->c;
    init_worker_side(c);
    if (atomic_load(&c->stop_requested)) {
        c->ops->close(t->s, 0);
    } else {
        set_state(c, MSGR_CONN_START_ACCEPT, "accepted");
        attach_socket(c, t->s, MSGR_IO_READ);
        arm_ready_timeout(c);
        int r = brk_accepted(c);
        if (r == 0)
            r = accepted_step(c, NULL);
        if (r < 0)
            fault(c, r, "breakpoint");
    }
    msgr__free(t);
    msgr_conn_unref(c);
}

void
msgr__conn_start_accept(struct msgr_conn *c, struct msgr_socket *s)
{
    struct accept_task *t = msgr__alloc(sizeof(*t));
    MSGR_ASSERT(t != NULL);
    t->c = c;
    t->s = s;
    msgr_conn_ref(c);
    MSGR_ASSERT(c->ops->post(c->worker, start_accept_cb, t) == 0);
}

static void
stop_cb(void *arg)
{
    struct msgr_conn *c = arg;
    int reset = atomic_load(&c->stop_requested) == 2;
    if (!c->started && msgr__conn_state(c) == MSGR_CONN_NONE) {
        /* never reached its worker: nothing of the stack to release */
        set_state(c, MSGR_CONN_CLOSED, "stop before start");
        discard_out_q(c);
        msgr__unregister_conn(c->msgr, c);
        if (reset && !atomic_load(&c->msgr->stopping))
            upcall(c, DQ_RESET);
        msgr_stack_put_worker(c->worker);
    } else {
        stop_now(c, reset);
    }
    msgr_conn_unref(c);
}

void
msgr__conn_stop(struct msgr_conn *c, int queue_reset)
{
    if (c->is_loopback) {
        atomic_store(&c->connected, 0);
        return;
    }
    int expected = 0;
    if (!atomic_compare_exchange_strong(&c->stop_requested, &expected,
                                        queue_reset ? 2 : 1))
        return;
    msgr_conn_ref(c);
    if (c->ops->post(c->worker, stop_cb, c) != 0)
        msgr_conn_unref(c);
}

/* Wakes the worker: something was queued or a keepalive requested. */
static void
wake_cb(void *arg)
{
    struct msgr_conn *c = arg;
    c->ops->mutex_lock(c->lock);
    c->wake_posted = 0;
    c->ops->mutex_unlock(c->lock);
    int s = msgr__conn_state(c);
    if (c->is_loopback) {
        for (;;) {
            c->ops->mutex_lock(c->lock);
            struct msgr_msg *msg = out_q_pop(c);
            c->ops->mutex_unlock(c->lock);
            if (!msg)
                break;
            if (!atomic_load(&c->connected)) {
                msgr__trace_msg(c->msgr, c, msg, MSGR_FATE_DROPPED);
                msgr_msg_unref(msg);
                continue;
            }
            msg->hdr.src = c->msgr->myname;
            msgr_conn_ref(c);
            msg->conn = c;
            msg->recv_stamp = now(c);
            msgr__deliver_msg(c->msgr, c, msg);
        }
    } else if (s == MSGR_CONN_READY) {
        do_write(c);
    } else if (s == MSGR_CONN_STANDBY && !c->policy.server &&
               !out_q_empty(c)) {
        c->is_client = 1;
        do_connect(c);
    } else if (s == MSGR_CONN_CLOSED) {
        discard_out_q(c);
    }
    msgr_conn_unref(c);
}

/* Posts the wake-up whose flag the caller set under the lock. */
static void
wake_post(struct msgr_conn *c)
{
    msgr_conn_ref(c);
    if (c->ops->post(c->worker, wake_cb, c) != 0) {
        c->ops->mutex_lock(c->lock);
        c->wake_posted = 0;
        c->ops->mutex_unlock(c->lock);
        msgr_conn_unref(c);
    }
}

static void
wake(struct msgr_conn *c)
{
    c->ops->mutex_lock(c->lock);
    int post = !c->wake_posted;
    c->wake_posted = 1;
    c->ops->mutex_unlock(c->lock);
    if (post)
        wake_post(c);
}

/* ----------------------------------------------------------- public API */

int
msgr_conn_send_message(struct msgr_conn *c, struct msgr_msg *msg)
{
    int s = msgr__conn_state(c);
    if (s == MSGR_CONN_CLOSED || atomic_load(&c->stop_requested) ||
        (c->is_loopback && !atomic_load(&c->connected)))
        return MSGR_ECLOSED;
    if (msgr__blackholed(c->msgr, c, msg, MSGR_BLACKHOLE_OUT)) {
        msgr__trace_msg(c->msgr, c, msg, MSGR_FATE_BLACKHOLED);
        msgr_msg_unref(msg);
        return 0;
    }
    msg->hdr.seq = 0;
    msgr__trace_msg(c->msgr, c, msg, MSGR_FATE_QUEUED);
    /* queue and claim the wake-up in one critical section */
    c->ops->mutex_lock(c->lock);
    out_q_push(c, msg, 0);
    int post = !c->wake_posted;
    c->wake_posted = 1;
    c->ops->mutex_unlock(c->lock);
    if (post)
        wake_post(c);
    return 0;
}

void
msgr_conn_send_keepalive(struct msgr_conn *c)
{
    if (c->is_loopback)
        return;
    c->ops->mutex_lock(c->lock);
    c->keepalive_pending = 1;
    c->ops->mutex_unlock(c->lock);
    wake(c);
}

struct release_task {
    struct msgr_conn *c;
    int action;
};

/* On the worker: the held step goes on, or fails, or stops. */
static void
release_cb(void *arg)
{
    struct release_task *t = arg;
    struct msgr_conn *c = t->c;
    if (c->hold.step) {
        struct conn_hold h = c->hold;
        memset(&c->hold, 0, sizeof(c->hold));
        atomic_store_explicit(&c->held_step, 0, memory_order_release);
        if (t->action == MSGR_INTERCEPT_FAIL) {
            hold_end(c, &h);
            fault(c, MSGR_EINJECTED, "breakpoint released with fail");
        } else if (t->action == MSGR_INTERCEPT_STOP) {
            hold_end(c, &h);
            stop_now(c, 1);
        } else {
            int r = 0;
            if (h.resume)
                r = h.resume(c, &h);
            else
                c->hold.pass = h.step; /* replay the rewound read */
            hold_drop(&h);
            if (r < 0) {
                fault(c, r, "protocol");
            } else if (r == 0 && c->sock && !c->hold.step) {
                update_want(c);
                do_read(c);
                do_write(c);
            }
        }
    }
    msgr__free(t);
    msgr_conn_unref(c);
}

int
msgr_conn_release(struct msgr_conn *c, int action)
{
    if (action != MSGR_INTERCEPT_CONTINUE && action != MSGR_INTERCEPT_FAIL &&
        action != MSGR_INTERCEPT_STOP)
        return -EINVAL;
    struct release_task *t = msgr__alloc(sizeof(*t));
    if (!t)
        return -ENOMEM;
    t->c = c;
    t->action = action;
    msgr_conn_ref(c);
    int e = c->ops->post(c->worker, release_cb, t);
    if (e != 0) {
        msgr_conn_unref(c);
        msgr__free(t);
    }
    return e;
}

int
msgr_conn_held_step(struct msgr_conn *c)
{
    return atomic_load_explicit(&c->held_step, memory_order_acquire);
}

void
msgr_conn_mark_down(struct msgr_conn *c)
{
    msgr__conn_stop(c, 0);
}

int
msgr_conn_is_connected(struct msgr_conn *c)
{
    /* Ceph's mark_down stops the protocol under the connection's lock,
     * so is_connected() is false once it returns; ours posts the stop to
     * the worker, and the request itself already ends the connection */
    return atomic_load_explicit(&c->connected, memory_order_acquire) &&
           !atomic_load(&c->stop_requested);
}

int
msgr_conn_is_loopback(struct msgr_conn *c)
{
    return c->is_loopback;
}

uint8_t
msgr_conn_peer_type(struct msgr_conn *c)
{
    return atomic_load_explicit(&c->peer_type, memory_order_relaxed);
}

void
msgr_conn_peer_addrs(struct msgr_conn *c, struct msgr_addrvec *out)
{
    *out = c->peer_addrs;
}

void
msgr_conn_peer_ident_addrs(struct msgr_conn *c, struct msgr_addrvec *out)
{
    *out = c->ident_addrs;
}

struct msgr_entity_name
msgr_conn_peer_name(struct msgr_conn *c)
{
    return c->peer_name;
}

uint64_t
msgr_conn_features(struct msgr_conn *c)
{
    return c->features;
}

int
msgr_conn_rev(struct msgr_conn *c)
{
    return atomic_load_explicit(&c->rev1, memory_order_relaxed);
}

const char *
msgr_conn_state_name(struct msgr_conn *c)
{
    return msgr__conn_state_name(msgr__conn_state(c));
}

uint64_t
msgr_conn_id(struct msgr_conn *c)
{
    return c->id;
}

msgr_time_ns
msgr_conn_last_keepalive_ack(struct msgr_conn *c)
{
    c->ops->mutex_lock(c->lock);
    msgr_time_ns t = c->last_keepalive_ack;
    c->ops->mutex_unlock(c->lock);
    return t;
}

void
msgr_conn_set_priv(struct msgr_conn *c, void *priv)
{
    c->priv = priv;
}

void *
msgr_conn_get_priv(struct msgr_conn *c)
{
    return c->priv;
}

struct msgr *
msgr_conn_messenger(struct msgr_conn *c)
{
    return c->msgr;
}
