/*
 * A TCP-like stream model, and the stack seam's socket methods on it.
 *
 * It behaves like Linux wherever the messenger can tell: the handshake
 * (SYN retries 1 s doubling, 6 of them, then -ETIMEDOUT; RST from a host
 * without a listener, -ECONNREFUSED; a full backlog drops SYNs), bounded
 * send and receive buffers with a window, retransmission with an RTO of
 * at least 200 ms backing off to 120 s and a reset after 15 retries
 * (tcp_retries2: about 924 s), FIN after queued data, RST on abortive
 * close and on data for a socket that will never read it, one-shot error
 * reporting (the first call after a reset gets -ECONNRESET, later reads
 * 0 and writes -EPIPE), level-triggered readiness.
 *
 * Records. A connection is one allocation holding both ends; an end is at
 * once the kernel's TCB and the app's socket handle (struct msgr_socket is
 * its first member). The record lives while anything refers to it: the
 * app's handle, a segment in flight, a pending timer event, a listener's
 * accept queue. An end whose app closed it lingers until its data and FIN
 * are acknowledged, as an orphaned Linux socket does.
 *
 * Buffers. Sequence numbers are 64-bit byte offsets from 0 in each
 * direction (no wrap, no ISN: nothing observable depends on them); the
 * FIN takes the one number after the data. The send ring holds
 * [snd_una, snd_end); a segment in flight is only (seq, len), and the
 * receiver copies the bytes out of the sender's ring on arrival. That is
 * sound because a byte the receiver still needs is one it has not
 * acknowledged, so the sender still holds it. Rings start at 4 KiB and
 * double up to the buffer bound, so idle connections stay small; a big
 * ring that stays empty for a second is given back.
 *
 * Receiving. In-order data goes to the receive ring at rcv_nxt. A segment
 * past a hole (a loss) is stored at its place too and remembered as a
 * range; when the hole fills, rcv_nxt jumps over it. The sender learns of
 * a loss by three duplicate ACKs or an ACK reporting three segments'
 * worth received past the hole (a SACK count: fast retransmit), or by its
 * RTO, and then retransmits the holes one by one as partial ACKs come
 * (NewReno). There is no congestion control: a sender is limited by the
 * window only.
 *
 * Arrivals. Data that reaches the receiver at the same instant right
 * behind the previous data segment of the flow, still in flight, is
 * merged into it (Linux's GRO): loss, delay and corruption were decided
 * per segment already, so this only saves events. A burst of small
 * writes costs one arrival event; so does an unpaced window.
 *
 * Timers. Each end has one pending event at most, for the earliest of its
 * deadlines (retransmission/persist, delayed ACK, ring reclaim). Moving
 * a deadline later touches no heap: the event fires early, finds nothing
 * due, and goes back in for the new deadline. ACKs are delayed until two
 * segments' worth of data is unacknowledged or 40 ms pass, and ride on data
 * going the other way, as Linux does; so a paced bulk transfer (bandwidth or
 * jitter set) costs about one arrival event per segment plus one ACK per
 * two, and an unpaced one far less.
 *
 * Readiness. The app's callback runs as an event of the socket's host
 * (sim__host_schedule: late while paused, never once dead), never from
 * inside a seam call; after each callback the condition is checked again
 * and, while it holds, another event is scheduled (level triggered).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "net.h"

#define SYN_RTO_NS     (1 * MSGR_NS_PER_S) /* TCP_TIMEOUT_INIT */
#define SYN_RETRIES    6                   /* tcp_syn_retries */
#define SYNACK_RETRIES 5                   /* tcp_synack_retries */
#define DATA_RETRIES   15                  /* tcp_retries2 */
#define RTO_MIN_NS     (200 * MSGR_NS_PER_MS)
#define RTO_MAX_NS     (120 * MSGR_NS_PER_S)
#define DELACK_NS      (40 * MSGR_NS_PER_MS) /* TCP_DELACK_MIN */
#define DUPACK_THRESH  3
/* Out-of-order ranges kept per receiver: more holes than this and the
 * segments that would add one are dropped (retransmitted later). */
#define OOO_MAX         256
#define BACKLOG_DEFAULT 512
/* A ring bigger than this is given back once it has stayed empty for
 * RING_IDLE_NS: a burst's memory does not stay with a connection that
 * went quiet, and a busy one is not made to reallocate (and fault in)
 * its buffers at every drain. Smaller rings are simply kept. */
#define RING_KEEP_MAX (64u * 1024u)
#define RING_IDLE_NS  (1 * MSGR_NS_PER_S)
/* Largest merged segment (Linux GRO's 64 KiB). */
#define GRO_MAX      65536u
#define EPHEMERAL_LO 40000
#define EPHEMERAL_HI 60999
#define SEQ_NONE     UINT64_MAX

enum end_state {
    E_NONE,     /* server side before its SYN (or after a dropped half-open) */
    E_SYN_SENT, /* client, handshake in progress */
    E_SYN_RCVD, /* server, waiting for the final ACK */
    E_ESTAB,    /* connected, possibly half-closed either way */
    E_DEAD,     /* gone from the kernel: reset, timed out, closed, killed */
};

struct ring {
    uint8_t *buf;
    uint32_t cap; /* 0 or a power of two */
};

struct ooo_range {
    uint64_t s, e;
};

struct tcp_end {
    struct msgr_socket base; /* first: the seam casts; valid with has_handle */
    struct tcp_conn *conn;
    struct sim_host *host;         /* NULL: the address has no host */
    struct tcp_end *hprev, *hnext; /* host's live ends, while linked */
    struct sim_listener *listener; /* SYN_RCVD (counted) or queued */
    struct tcp_end *aq_next;       /* listener's accept queue */
    uint64_t inc;                  /* host incarnation when it came alive */
    uint32_t ip;                   /* local IPv4 as the app sees it */
    uint16_t port;
    uint8_t side; /* 0 client, 1 server */
    uint8_t state;
    unsigned linked : 1, has_handle : 1, in_cb : 1, closing : 1, queued : 1,
        connected : 1, app_closed : 1, shut_wr : 1, fin_sent : 1, rd_shut : 1,
        fin_rcvd : 1, graceful : 1, recovering : 1, rtt_on : 1, rtt_valid : 1;
    int err;         /* pending socket error, reported once (SO_ERROR) */
    int connect_err; /* kept for connect_result() */
    /* the app's callback */
    msgr_io_cb cb;
    void *cb_arg;
    unsigned want;
    uint64_t ev; /* pending host event of the callback; 0: none */
    /* sending: data [0, snd_end), FIN at snd_end */
    struct ring sr;
    uint64_t snd_una, snd_max, snd_end;
    uint64_t peer_edge; /* the peer's window: we may send below it */
    uint64_t recover;   /* NewReno: snd_max when the loss was detected */
    uint64_t rtt_seq;
    msgr_time_ns rtt_t0, srtt, rttvar, rto;
    uint32_t retries, backoff, dupacks;
    /* receiving */
    struct ring rr;
    uint64_t rd_seq;   /* next byte the app reads */
    uint64_t rcv_nxt;  /* end of in-order data */
    uint64_t peer_fin; /* seq of the peer's FIN once seen */
    uint64_t acked;    /* the ack value last sent */
    uint64_t adv_edge; /* the window edge last advertised */
    struct ooo_range *ooo;
    uint32_t nooo, cooo;
    /* timers */
    msgr_time_ns rto_at, delack_at; /* deadlines, 0: off */
    msgr_time_ns reclaim_at;        /* see RING_KEEP_MAX; 0: off */
    msgr_time_ns tmr_at;
    uint64_t tmr_ev;
    /* arrival time of our previous segment: the flow stays in order */
    msgr_time_ns flow_last;
    /* our latest segment still in flight (for GRO-like merging) */
    struct sim_seg *tail;
    msgr_time_ns tail_at;
};

struct tcp_conn {
    struct sim_world *w;
    struct tcp_conn *prev, *next; /* the net's list, creation order */
    uint64_t id;
    uint32_t refs;
    struct tcp_end end[2];
};

struct sim_listener {
    struct msgr_listener base; /* first: the seam casts */
    struct sim_host *host;
    uint64_t inc;
    struct sim_listener *prev, *next; /* host's list, until freed */
    int bound, started, in_cb, closing;
    uint16_t port;
    uint32_t ip; /* bound IPv4, 0: any */
    uint32_t backlog, nsyn, nq;
    struct tcp_end *q_head, *q_tail;
    msgr_accept_cb cb;
    void *arg;
    uint64_t ev;
};

static void seg_arrive_cb(void *arg);
static void listener_free(struct sim_listener *l);
static void tmr_cb(void *arg);
static void sock_event_cb(void *arg);
static void listener_event_cb(void *arg);

/* ---------------------------------------------------------------- utils */

static uint64_t
min_u64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

static msgr_time_ns
add_sat(msgr_time_ns a, msgr_time_ns b)
{
    return b > UINT64_MAX - a ? UINT64_MAX : a + b;
}

static struct tcp_end *
to_end(struct msgr_socket *s)
{
    return (struct tcp_end *)s;
}

static struct sim_listener *
to_listener(struct msgr_listener *l)
{
    return (struct sim_listener *)l;
}

static struct tcp_end *
peer_of(struct tcp_end *e)
{
    return &e->conn->end[e->side ^ 1];
}

static struct sim_world *
world_of(const struct tcp_end *e)
{
    return e->conn->w;
}

static msgr_time_ns
now_of(const struct tcp_end *e)
{
    return sim_now(e->conn->w);
}

static uint32_t
addr_ipv4(const struct msgr_addr *a)
{
    return (uint32_t)a->ip[0] << 24 | (uint32_t)a->ip[1] << 16 |
           (uint32_t)a->ip[2] << 8 | (uint32_t)a->ip[3];
}

static void
fill_addr(struct msgr_addr *out, uint32_t ip, uint16_t port)
{
    memset(out, 0, sizeof(*out));
    out->type = MSGR_ADDR_MSGR2;
    out->family = MSGR_AF_INET;
    out->port = port;
    out->ip[0] = (uint8_t)(ip >> 24);
    out->ip[1] = (uint8_t)(ip >> 16);
    out->ip[2] = (uint8_t)(ip >> 8);
    out->ip[3] = (uint8_t)ip;
}

static int
is_loopback(uint32_t ip)
{
    return (ip >> 24) == 127;
}

/* ---------------------------------------------------------------- rings */

/* Copies n bytes at seq from ring s to ring d; both may wrap. */
static void
ring_copy(struct ring *d, const struct ring *s, uint64_t seq, uint64_t n)
{
    while (n) {
        uint32_t so = (uint32_t)(seq & (s->cap - 1));
        uint32_t dof = (uint32_t)(seq & (d->cap - 1));
        uint64_t k = min_u64(n, min_u64(s->cap - so, d->cap - dof));

        memcpy(d->buf + dof, s->buf + so, (size_t)k);
        seq += k;
        n -= k;
    }
}

/* Makes the ring hold [lo, need_hi), keeping the bytes of [lo, valid_hi). */
static void
ring_fit(struct ring *r, uint64_t lo, uint64_t valid_hi, uint64_t need_hi,
         uint32_t max)
{
    uint64_t need = need_hi - lo;
    struct ring nr;

    if (need <= r->cap)
        return;
    SIM_ASSERT(need <= max);
    nr.cap = r->cap ? r->cap : SIM_TCP_RING_MIN;
    while (nr.cap < need)
        nr.cap *= 2;
    nr.buf = malloc(nr.cap);
    SIM_ASSERT(nr.buf != NULL);
    if (r->buf && valid_hi > lo)
        ring_copy(&nr, r, lo, valid_hi - lo);
    free(r->buf);
    *r = nr;
}

static void
ring_release(struct ring *r)
{
    free(r->buf);
    r->buf = NULL;
    r->cap = 0;
}

/* Copies ring bytes at seq out to the iovecs; returns the count. */
static size_t
ring_to_iov(const struct ring *r, uint64_t seq, size_t n,
            const struct iovec *iov, int iovcnt)
{
    size_t done = 0;
    int i;

    for (i = 0; i < iovcnt && done < n; i++) {
        size_t left = iov[i].iov_len < n - done ? iov[i].iov_len : n - done;
        uint8_t *dst = iov[i].iov_base;

        while (left) {
            uint32_t off = (uint32_t)(seq & (r->cap - 1));
            size_t k = r->cap - off < left ? r->cap - off : left;

            memcpy(dst, r->buf + off, k);
            dst += k;
            seq += k;
            left -= k;
            done += k;
        }
    }
    return done;
}

static void
ring_from_iov(struct ring *r, uint64_t seq, size_t n, const struct iovec *iov,
              int iovcnt)
{
    size_t done = 0;
    int i;

    for (i = 0; i < iovcnt && done < n; i++) {
        size_t left = iov[i].iov_len < n - done ? iov[i].iov_len : n - done;
        const uint8_t *src = iov[i].iov_base;

        while (left) {
            uint32_t off = (uint32_t)(seq & (r->cap - 1));
            size_t k = r->cap - off < left ? r->cap - off : left;

            memcpy(r->buf + off, src, k);
            src += k;
            seq += k;
            left -= k;
            done += k;
        }
    }
}

/* ------------------------------------------------------ records, lists */

static void
end_link(struct tcp_end *e)
{
    struct sim_host_net *hn = e->host->net;

    SIM_ASSERT(!e->linked);
    e->hnext = NULL;
    e->hprev = hn->ends_tail;
    if (hn->ends_tail)
        hn->ends_tail->hnext = e;
    else
        hn->ends_head = e;
    hn->ends_tail = e;
    e->linked = 1;
}

static void
end_unlink(struct tcp_end *e)
{
    struct sim_host_net *hn;

    if (!e->linked)
        return;
    hn = e->host->net;
    if (e->hprev)
        e->hprev->hnext = e->hnext;
    else
        hn->ends_head = e->hnext;
    if (e->hnext)
        e->hnext->hprev = e->hprev;
    else
        hn->ends_tail = e->hprev;
    e->hprev = e->hnext = NULL;
    e->linked = 0;
}

static void
end_init(struct tcp_conn *c, int side)
{
    struct tcp_end *e = &c->end[side];

    e->conn = c;
    e->side = (uint8_t)side;
    e->state = E_NONE;
    e->peer_fin = SEQ_NONE;
    e->rto = SYN_RTO_NS;
    e->adv_edge = SIM_TCP_RCVBUF;
    e->peer_edge = SIM_TCP_RCVBUF;
}

static struct tcp_conn *
conn_new(struct sim_world *w)
{
    struct sim_net *n = w->net;
    struct tcp_conn *c = calloc(1, sizeof(*c));

    SIM_ASSERT(c != NULL);
    c->w = w;
    c->id = n->next_conn_id++;
    end_init(c, 0);
    end_init(c, 1);
    c->prev = n->conns_tail;
    if (n->conns_tail)
        n->conns_tail->next = c;
    else
        n->conns_head = c;
    n->conns_tail = c;
    return c;
}

static void
conn_free_mem(struct tcp_conn *c)
{
    int i;

    for (i = 0; i < 2; i++) {
        ring_release(&c->end[i].sr);
        ring_release(&c->end[i].rr);
        free(c->end[i].ooo);
    }
    free(c);
}

static void
conn_unref(struct tcp_conn *c)
{
    struct sim_net *n = c->w->net;
    int i;

    SIM_ASSERT(c->refs > 0);
    if (--c->refs)
        return;
    /* Nothing refers to it: both ends are done (an end still alive holds
     * a handle, a timer or a queue slot). */
    for (i = 0; i < 2; i++)
        end_unlink(&c->end[i]);
    if (c->prev)
        c->prev->next = c->next;
    else
        n->conns_head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        n->conns_tail = c->prev;
    conn_free_mem(c);
}

/* ---------------------------------------------------------------- ports */

static int
port_in_use(struct sim_host *h, uint16_t port, int listeners_only)
{
    struct sim_listener *l;
    struct tcp_end *e;

    for (l = h->net->ls_head; l; l = l->next) {
        if (l->bound && l->port == port)
            return 1;
    }
    if (listeners_only)
        return 0;
    for (e = h->net->ends_head; e; e = e->hnext) {
        if (e->port == port)
            return 1;
    }
    return 0;
}

/* The next free port of the host's ephemeral counter, 0 if none: the
 * same sequence every run, unlike the kernel's randomised choice. */
static uint16_t
port_ephemeral(struct sim_host *h)
{
    struct sim_host_net *hn = h->net;
    unsigned tries;

    for (tries = 0; tries <= EPHEMERAL_HI - EPHEMERAL_LO; tries++) {
        uint16_t p = hn->next_port;

        hn->next_port = p >= EPHEMERAL_HI ? EPHEMERAL_LO : (uint16_t)(p + 1);
        if (!port_in_use(h, p, 0))
            return p;
    }
    return 0;
}

/* ------------------------------------------------------------- readiness */

static uint64_t
snd_queued(const struct tcp_end *e)
{
    return e->snd_end - min_u64(e->snd_una, e->snd_end);
}

/* Linux's sk_stream_is_writeable: free space at least half the queued
 * bytes, so a writer is woken for a useful amount, not every ACK. */
static int
snd_writable(const struct tcp_end *e)
{
    uint64_t q = snd_queued(e), space = SIM_TCP_SNDBUF - q;

    return space > 0 && 2 * space >= q;
}

static unsigned
end_ready(const struct tcp_end *e)
{
    unsigned r = 0;

    switch ((enum end_state)e->state) {
    case E_NONE:
    case E_SYN_SENT:
    case E_SYN_RCVD:
        return 0;
    case E_DEAD:
        /* EPOLLERR/EPOLLHUP: both directions report, the call tells. */
        return MSGR_IO_READ | MSGR_IO_WRITE;
    case E_ESTAB:
        break;
    }
    if (e->err || e->rd_shut || e->fin_rcvd || e->rcv_nxt > e->rd_seq)
        r |= MSGR_IO_READ;
    if (e->err || e->shut_wr || snd_writable(e))
        r |= MSGR_IO_WRITE;
    return r;
}

static int
process_alive(const struct tcp_end *e)
{
    return e->host && e->host->incarnation == e->inc &&
           e->host->state != SIM_HOST_KILLED &&
           e->host->state != SIM_HOST_CRASHED;
}

/* Schedules the app's callback if it has something to say. Inside the
 * socket's own callback nothing is scheduled: the check after it returns
 * does that. */
static void
kick(struct tcp_end *e)
{
    if (!e->has_handle || e->closing || e->in_cb || e->ev || !e->cb)
        return;
    if (!(end_ready(e) & e->want) || !process_alive(e))
        return;
    e->ev = sim__host_schedule(e->host, now_of(e), sock_event_cb, e);
}

static void
handle_release(struct tcp_end *e)
{
    e->has_handle = 0;
    e->closing = 0;
    e->cb = NULL;
    conn_unref(e->conn);
}

static void
sock_event_cb(void *arg)
{
    struct tcp_end *e = arg;
    struct msgr_worker *wk = e->base.worker;
    unsigned ev;

    e->ev = 0;
    ev = end_ready(e) & e->want;
    if (!ev || !e->cb)
        return;
    e->in_cb = 1;
    sim__worker_enter(wk);
    e->cb(&e->base, ev, e->cb_arg);
    sim__worker_leave(wk);
    e->in_cb = 0;
    if (e->closing) {
        /* close() from inside the callback: the handle had to outlive it */
        handle_release(e);
        return;
    }
    kick(e);
}

static void
listener_kick(struct sim_listener *l)
{
    if (!l->started || !l->bound || l->in_cb || l->closing || l->ev || !l->cb ||
        !l->nq)
        return;
    if (l->host->incarnation != l->inc)
        return;
    l->ev = sim__host_schedule(l->host, sim_now(l->host->world),
                               listener_event_cb, l);
}

static void
listener_event_cb(void *arg)
{
    struct sim_listener *l = arg;
    struct msgr_worker *wk = l->base.worker;

    l->ev = 0;
    if (!l->nq || !l->cb || !l->bound)
        return;
    l->in_cb = 1;
    sim__worker_enter(wk);
    l->cb(&l->base, l->arg);
    sim__worker_leave(wk);
    l->in_cb = 0;
    if (l->closing) {
        listener_free(l);
        return;
    }
    listener_kick(l);
}

/* ---------------------------------------------------------------- timers */

static msgr_time_ns
rto_backoff(const struct tcp_end *e)
{
    msgr_time_ns r = e->rto;
    uint32_t i;

    for (i = 0; i < e->backoff && r < RTO_MAX_NS; i++)
        r *= 2;
    return r < RTO_MAX_NS ? r : RTO_MAX_NS;
}

/* Makes sure an event fires no later than the earliest deadline. */
static void
tmr_update(struct tcp_end *e)
{
    struct sim_world *w = world_of(e);
    msgr_time_ns due = e->rto_at;

    if (e->delack_at && (!due || e->delack_at < due))
        due = e->delack_at;
    if (e->reclaim_at && (!due || e->reclaim_at < due))
        due = e->reclaim_at;
    /* Nothing due: a pending event will fire, find nothing and go; that
     * is cheaper than a cancel. */
    if (!due)
        return;
    if (e->tmr_ev) {
        if (e->tmr_at <= due)
            return;
        /* the pending event's reference carries over to the new one */
        SIM_ASSERT(sim_cancel(w, e->tmr_ev));
    } else {
        e->conn->refs++;
    }
    e->tmr_at = due;
    e->tmr_ev = sim_schedule(w, due, tmr_cb, e);
}

static void
rtt_sample(struct tcp_end *e, msgr_time_ns m)
{
    msgr_time_ns var;

    if (!e->rtt_valid) {
        e->srtt = m;
        e->rttvar = m / 2;
        e->rtt_valid = 1;
    } else {
        msgr_time_ns d = m > e->srtt ? m - e->srtt : e->srtt - m;

        e->rttvar = (3 * e->rttvar + d) / 4;
        e->srtt = (7 * e->srtt + m) / 8;
    }
    /* Linux: RTO = srtt + max(4 * rttvar, rto_min) */
    var = 4 * e->rttvar > RTO_MIN_NS ? 4 * e->rttvar : RTO_MIN_NS;
    e->rto = add_sat(e->srtt, var);
    if (e->rto > RTO_MAX_NS)
        e->rto = RTO_MAX_NS;
}

/* A ring just became empty: a big one is reclaimed if it stays so. */
static void
ring_drained(struct tcp_end *e, const struct ring *r)
{
    if (r->cap > RING_KEEP_MAX)
        e->reclaim_at = add_sat(now_of(e), RING_IDLE_NS);
}

static void
rings_reclaim(struct tcp_end *e)
{
    if (e->sr.cap > RING_KEEP_MAX && !snd_queued(e))
        ring_release(&e->sr);
    if (e->rr.cap > RING_KEEP_MAX && e->rd_seq == e->rcv_nxt && !e->nooo)
        ring_release(&e->rr);
}

/* ------------------------------------------------------------- segments */

static uint64_t
ack_value(const struct tcp_end *e)
{
    return e->rcv_nxt + (e->fin_rcvd ? 1u : 0u);
}

/* What a SACK option would tell: how much arrived past the hole. */
static uint32_t
sacked_bytes(const struct tcp_end *e)
{
    uint64_t n = 0;
    uint32_t i;

    for (i = 0; i < e->nooo; i++)
        n += e->ooo[i].e - e->ooo[i].s;
    return (uint32_t)min_u64(n, UINT32_MAX);
}

/* ------------------------------------------------------------- capture */

static unsigned
wire_flags(unsigned f)
{
    return ((f & SEG_SYN) ? SIM_TCP_SYN : 0u) |
           ((f & SEG_ACK) ? SIM_TCP_ACK : 0u) |
           ((f & SEG_FIN) ? SIM_TCP_FIN : 0u) |
           ((f & SEG_RST) ? SIM_TCP_RST : 0u);
}

/* The capture record of a segment from `from` to `to` (headers only). */
static void
cap_init(struct sim_capture_seg *cs, const struct tcp_end *from,
         const struct tcp_end *to, uint64_t seq, unsigned flags)
{
    memset(cs, 0, sizeof(*cs));
    cs->t_ns = now_of(from);
    cs->conn_id = from->conn->id;
    cs->src_ip = from->ip;
    cs->src_port = from->port;
    cs->dst_ip = to->ip;
    cs->dst_port = to->port;
    cs->seq = seq;
    cs->flags = wire_flags(flags);
    if (flags & SEG_ACK)
        cs->ack = from->acked;
    /* the window a SYN offers is the whole buffer (seg_send) */
    cs->window = (flags & SEG_SYN) ? SIM_TCP_RCVBUF
                 : from->adv_edge > from->acked
                     ? from->adv_edge - from->acked
                     : 0;
}

/* Hands the segment e sends now to the capture hook, with its payload
 * copied out of the send ring (which may wrap) and its fate. */
static void
seg_capture(struct tcp_end *e, uint64_t seq, uint32_t len, unsigned flags,
            int routed, msgr_time_ns at, uint32_t bit)
{
    struct sim_net *n = world_of(e)->net;
    struct sim_capture_seg cs;

    cap_init(&cs, e, peer_of(e), seq, flags);
    if (len) {
        struct iovec iov = {.iov_base = n->cap_buf, .iov_len = len};

        SIM_ASSERT(len <= sizeof(n->cap_buf));
        SIM_ASSERT(seq >= e->snd_una && seq + len <= e->snd_end);
        ring_to_iov(&e->sr, seq, len, &iov, 1);
        cs.payload = n->cap_buf;
        cs.len = len;
        /* Linux pushes the last segment of what the app has written */
        if (seq + len == e->snd_end)
            cs.flags |= SIM_TCP_PSH;
    }
    cs.dropped = !routed;
    cs.arrive_ns = routed ? at : 0;
    cs.corrupt_bit = routed ? bit : 0;
    n->capture_cb(n->capture_arg, &cs);
}

/* An injected reset reaches `to` as an RST from its peer, on the wire. */
static void
reset_capture(struct tcp_end *to)
{
    struct sim_net *n = world_of(to)->net;
    struct tcp_end *from = peer_of(to);
    struct sim_capture_seg cs;

    cap_init(&cs, from, to, from->snd_max, SEG_RST | SEG_ACK);
    cs.ack = ack_value(from);
    cs.arrive_ns = cs.t_ns;
    cs.injected = 1;
    n->capture_cb(n->capture_arg, &cs);
}

static void
seg_send(struct tcp_end *e, uint64_t seq, uint32_t len, unsigned flags)
{
    struct tcp_conn *c = e->conn;
    struct sim_world *w = c->w;
    struct sim_seg *s;
    msgr_time_ns at = 0;
    uint32_t bit = 0;
    int routed;

    if (flags & SEG_ACK) {
        /* every segment carries the ACK: nothing left to delay */
        e->acked = ack_value(e);
        e->adv_edge = e->rd_seq + SIM_TCP_RCVBUF;
        e->delack_at = 0;
    }
    routed = sim__net_route(w, e->host, peer_of(e)->host, len, &e->flow_last,
                            &at, &bit);
    if (w->net->capture_cb)
        seg_capture(e, seq, len, flags, routed, at, bit);
    if (!routed)
        return;
    /*
     * GRO: data that lands at the same instant right behind our previous
     * data segment, still in flight, joins it. Segments are lost,
     * delayed and corrupted one by one before this point, so only the
     * number of arrival events changes: a burst of small writes with
     * nothing between them costs one event, not one per write.
     */
    s = e->tail;
    if (s && len && flags == SEG_ACK && s->flags == SEG_ACK && !bit &&
        !s->corrupt_bit && s->len && s->seq + s->len == seq &&
        s->len + len <= GRO_MAX && e->tail_at == at) {
        s->len += len;
        s->ack = e->acked;
        s->edge = e->adv_edge;
        s->sacked = sacked_bytes(e);
        return;
    }
    s = sim__seg_alloc(w->net);
    s->conn = c;
    s->seq = seq;
    s->ack = e->acked;
    s->edge = (flags & SEG_SYN) ? SIM_TCP_RCVBUF : e->adv_edge;
    s->len = len;
    s->corrupt_bit = bit;
    s->sacked = sacked_bytes(e);
    s->from = e->side;
    s->flags = (uint8_t)flags;
    c->refs++;
    sim_schedule(w, at, seg_arrive_cb, s);
    e->tail = s;
    e->tail_at = at;
}

static void
send_ack(struct tcp_end *e)
{
    seg_send(e, e->snd_max, 0, SEG_ACK);
}

static void
send_rst(struct tcp_end *e)
{
    seg_send(e, e->snd_max, 0, SEG_RST | SEG_ACK);
}

/* ----------------------------------------------------------- end states */

/*
 * The end leaves the kernel. err goes to the app (once) unless it closed
 * the socket already. Buffers go now: segments of ours still in flight
 * find no bytes and are dropped, which is what a reset does to them.
 */
static void
end_dead(struct tcp_end *e, int err)
{
    if (e->state == E_DEAD)
        return;
    if (e->state == E_SYN_SENT && err)
        e->connect_err = err;
    if (e->state == E_SYN_RCVD && e->listener && !e->queued) {
        e->listener->nsyn--;
        e->listener = NULL;
    }
    e->state = E_DEAD;
    if (err && !e->app_closed)
        e->err = err;
    ring_release(&e->sr);
    ring_release(&e->rr);
    free(e->ooo);
    e->ooo = NULL;
    e->nooo = e->cooo = 0;
    e->rto_at = e->delack_at = e->reclaim_at = 0;
    end_unlink(e);
    kick(e);
}

static void
end_reset(struct tcp_end *e, int err)
{
    struct sim_world *w = world_of(e);

    w->stats.resets++;
    sim__net_fp(w, SIM_FP_NET_RESET, e->host, peer_of(e)->host);
    end_dead(e, err);
}

static void
end_timeout(struct tcp_end *e)
{
    struct sim_world *w = world_of(e);

    w->stats.timeouts++;
    sim__net_fp(w, SIM_FP_NET_TIMEOUT, e->host, peer_of(e)->host);
    if (e->state == E_SYN_SENT)
        e->connect_err = -ETIMEDOUT;
    end_dead(e, -ETIMEDOUT);
}

/* A half-open connection is forgotten (SYN-ACK retries exhausted, or an
 * RST): the server side is as if the SYN never came. */
static void
server_abandon(struct tcp_end *e)
{
    if (e->listener && !e->queued) {
        e->listener->nsyn--;
        e->listener = NULL;
    }
    end_unlink(e);
    e->state = E_NONE;
    e->rto_at = 0;
    e->retries = e->backoff = 0;
}

/* Both ends reset now (fault injection): each sees -ECONNRESET. */
static void
conn_reset_now(struct tcp_conn *c)
{
    int i;

    for (i = 0; i < 2; i++) {
        struct tcp_end *e = &c->end[i];

        if (e->state == E_ESTAB || e->state == E_SYN_SENT) {
            if (c->w->net->capture_cb)
                reset_capture(e);
            end_reset(e, -ECONNRESET);
        } else if (e->state == E_SYN_RCVD) {
            server_abandon(e);
        }
    }
}

/* -------------------------------------------------------------- sending */

static void
tcp_output(struct tcp_end *e)
{
    msgr_time_ns now = now_of(e);

    if (e->state != E_ESTAB)
        return;
    while (e->snd_max < e->snd_end && e->snd_max < e->peer_edge) {
        uint64_t n = min_u64(SIM_TCP_MSS, min_u64(e->snd_end - e->snd_max,
                                                  e->peer_edge - e->snd_max));
        unsigned fl = SEG_ACK;

        if (e->shut_wr && e->snd_max + n == e->snd_end)
            fl |= SEG_FIN;
        if (!e->rtt_on) {
            e->rtt_on = 1;
            e->rtt_seq = e->snd_max + n;
            e->rtt_t0 = now;
        }
        seg_send(e, e->snd_max, (uint32_t)n, fl);
        e->snd_max += n;
        if (fl & SEG_FIN) {
            e->snd_max++;
            e->fin_sent = 1;
        }
    }
    if (e->shut_wr && !e->fin_sent && e->snd_max == e->snd_end) {
        seg_send(e, e->snd_max, 0, SEG_ACK | SEG_FIN);
        e->snd_max++;
        e->fin_sent = 1;
    }
    /* outstanding data, or data the window holds back (persist) */
    if (!e->rto_at && (e->snd_una < e->snd_max || e->snd_max < e->snd_end))
        e->rto_at = add_sat(now, rto_backoff(e));
}

/* Sends again the first unacknowledged segment. */
static void
retransmit(struct tcp_end *e)
{
    uint64_t seq = e->snd_una, lim = min_u64(e->snd_max, e->snd_end);
    uint32_t len = 0;
    unsigned fl = SEG_ACK;

    if (seq < lim)
        len = (uint32_t)min_u64(SIM_TCP_MSS, lim - seq);
    if (e->fin_sent && seq + len == e->snd_end)
        fl |= SEG_FIN;
    if (!len && !(fl & SEG_FIN))
        return;
    world_of(e)->stats.retransmits++;
    e->rtt_on = 0; /* Karn: an ambiguous ACK measures nothing */
    seg_send(e, seq, len, fl);
}

static void
on_rto(struct tcp_end *e)
{
    struct sim_world *w = world_of(e);
    msgr_time_ns now = sim_now(w);

    switch ((enum end_state)e->state) {
    case E_SYN_SENT:
        if (e->retries >= SYN_RETRIES) {
            end_timeout(e);
            return;
        }
        e->retries++;
        e->backoff++;
        e->rtt_on = 0;
        w->stats.retransmits++;
        seg_send(e, 0, 0, SEG_SYN);
        e->rto_at = add_sat(now, rto_backoff(e));
        return;
    case E_SYN_RCVD:
        if (e->retries >= SYNACK_RETRIES) {
            server_abandon(e);
            return;
        }
        e->retries++;
        e->backoff++;
        e->rtt_on = 0;
        w->stats.retransmits++;
        seg_send(e, 0, 0, SEG_SYN | SEG_ACK);
        e->rto_at = add_sat(now, rto_backoff(e));
        return;
    case E_ESTAB:
        break;
    case E_NONE:
    case E_DEAD:
        return;
    }
    if (e->snd_una < e->snd_max) {
        if (e->retries >= DATA_RETRIES) {
            end_timeout(e);
            return;
        }
        e->retries++;
        if (e->backoff < 31)
            e->backoff++;
        retransmit(e);
        /* everything sent so far is suspect: refill holes as ACKs come */
        e->recovering = 1;
        e->recover = e->snd_max;
        e->dupacks = 0;
        e->rto_at = add_sat(now, rto_backoff(e));
    } else if (e->snd_max < e->snd_end) {
        /* persist: the window is shut; ask whether it opened */
        if (e->retries >= DATA_RETRIES) {
            end_timeout(e);
            return;
        }
        e->retries++;
        if (e->backoff < 31)
            e->backoff++;
        seg_send(e, e->snd_max, 0, SEG_ACK | SEG_PROBE);
        e->rto_at = add_sat(now, rto_backoff(e));
    }
}

static void
tmr_cb(void *arg)
{
    struct tcp_end *e = arg;
    struct tcp_conn *c = e->conn;
    msgr_time_ns now = sim_now(c->w);

    e->tmr_ev = 0;
    if (e->state != E_DEAD && e->state != E_NONE) {
        if (e->delack_at && e->delack_at <= now) {
            e->delack_at = 0;
            if (e->state == E_ESTAB && ack_value(e) != e->acked)
                send_ack(e);
        }
        if (e->rto_at && e->rto_at <= now) {
            e->rto_at = 0;
            on_rto(e);
        }
        if (e->reclaim_at && e->reclaim_at <= now) {
            e->reclaim_at = 0;
            rings_reclaim(e);
        }
        tmr_update(e);
    }
    conn_unref(c);
}

/* ------------------------------------------------------------ receiving */

static uint64_t
rcv_high(const struct tcp_end *e)
{
    if (e->nooo && e->ooo[e->nooo - 1].e > e->rcv_nxt)
        return e->ooo[e->nooo - 1].e;
    return e->rcv_nxt;
}

static int
ooo_touches(const struct tcp_end *e, uint64_t lo, uint64_t hi)
{
    uint32_t i;

    for (i = 0; i < e->nooo; i++) {
        if (e->ooo[i].s <= hi && e->ooo[i].e >= lo)
            return 1;
    }
    return 0;
}

/* Adds [lo, hi) to the sorted, merged list of out-of-order ranges. */
static void
ooo_add(struct tcp_end *e, uint64_t lo, uint64_t hi)
{
    uint32_t i = 0, j;

    while (i < e->nooo && e->ooo[i].e < lo)
        i++;
    j = i;
    while (j < e->nooo && e->ooo[j].s <= hi) {
        if (e->ooo[j].s < lo)
            lo = e->ooo[j].s;
        if (e->ooo[j].e > hi)
            hi = e->ooo[j].e;
        j++;
    }
    if (j == i) {
        if (e->nooo == e->cooo) {
            uint32_t nc = e->cooo ? e->cooo * 2 : 8;
            struct ooo_range *p = realloc(e->ooo, nc * sizeof(*p));

            SIM_ASSERT(p != NULL);
            e->ooo = p;
            e->cooo = nc;
        }
        memmove(&e->ooo[i + 1], &e->ooo[i], (e->nooo - i) * sizeof(e->ooo[0]));
        e->nooo++;
    } else if (j > i + 1) {
        memmove(&e->ooo[i + 1], &e->ooo[j], (e->nooo - j) * sizeof(e->ooo[0]));
        e->nooo -= j - i - 1;
    }
    e->ooo[i].s = lo;
    e->ooo[i].e = hi;
}

/* rcv_nxt moved: swallow the ranges it reached. */
static void
ooo_absorb(struct tcp_end *e)
{
    uint32_t k = 0;

    while (k < e->nooo && e->ooo[k].s <= e->rcv_nxt) {
        if (e->ooo[k].e > e->rcv_nxt)
            e->rcv_nxt = e->ooo[k].e;
        k++;
    }
    if (k) {
        memmove(&e->ooo[0], &e->ooo[k], (e->nooo - k) * sizeof(e->ooo[0]));
        e->nooo -= k;
    }
}

/* Copies [a, b) of the segment from the sender's ring; the link's bit
 * flip lands here if it falls in these bytes. */
static void
rx_piece(struct tcp_end *e, const struct tcp_end *src, const struct sim_seg *s,
         uint64_t a, uint64_t b)
{
    struct sim_world *w = world_of(e);

    SIM_ASSERT(a >= src->snd_una && b <= src->snd_end);
    ring_copy(&e->rr, &src->sr, a, b - a);
    w->stats.bytes_delivered += b - a;
    if (s->corrupt_bit) {
        uint64_t bit = s->corrupt_bit - 1, at = s->seq + bit / 8;

        if (at >= a && at < b) {
            e->rr.buf[at & (e->rr.cap - 1)] ^= (uint8_t)(1u << (bit % 8));
            w->stats.segments_corrupted++;
            sim__net_fp(w, SIM_FP_NET_CORRUPT, src->host, e->host);
        }
    }
}

/* Takes the segment's new bytes; sets *ack_now when the sender must hear
 * about it at once (duplicate, hole). */
static void
rx_data(struct tcp_end *e, const struct tcp_end *src, const struct sim_seg *s,
        int *ack_now)
{
    uint64_t seg_end = s->seq + s->len, lo, hi, cur;
    uint32_t i;

    lo = s->seq > e->rcv_nxt ? s->seq : e->rcv_nxt;
    hi = min_u64(seg_end, e->rd_seq + SIM_TCP_RCVBUF);
    if (lo >= hi) {
        *ack_now = 1;
        return;
    }
    /* the sender was reset meanwhile: its bytes went with it */
    if (!src->sr.buf)
        return;
    if (lo > e->rcv_nxt) {
        *ack_now = 1;
        if (e->nooo >= OOO_MAX && !ooo_touches(e, lo, hi))
            return;
    }
    ring_fit(&e->rr, e->rd_seq, rcv_high(e), hi, SIM_TCP_RCVBUF);
    cur = lo;
    for (i = 0; i < e->nooo && cur < hi; i++) {
        const struct ooo_range *r = &e->ooo[i];

        if (r->e <= cur)
            continue;
        if (r->s >= hi)
            break;
        if (r->s > cur)
            rx_piece(e, src, s, cur, r->s);
        cur = r->e;
    }
    if (cur < hi)
        rx_piece(e, src, s, cur, hi);
    if (lo == e->rcv_nxt) {
        e->rcv_nxt = hi;
        ooo_absorb(e);
    } else {
        ooo_add(e, lo, hi);
    }
}

static void
ack_input(struct tcp_end *e, const struct sim_seg *s)
{
    msgr_time_ns now = now_of(e);
    uint64_t ack = min_u64(s->ack, e->snd_max);
    int wnd_update = 0;
    int persist = e->snd_una == e->snd_max && e->snd_max < e->snd_end;

    if (s->edge > e->peer_edge) {
        e->peer_edge = s->edge;
        wnd_update = 1;
        if (persist) {
            /* the window opened: the probe timer and its backoff go, and
             * the data sent now gets a fresh RTO */
            e->rto_at = 0;
            e->retries = e->backoff = 0;
        }
    }
    if (ack > e->snd_una) {
        e->snd_una = ack;
        e->retries = e->backoff = e->dupacks = 0;
        if (!snd_queued(e))
            ring_drained(e, &e->sr);
        if (e->rtt_on && ack >= e->rtt_seq) {
            rtt_sample(e, now - e->rtt_t0);
            e->rtt_on = 0;
        }
        if (e->recovering) {
            if (ack >= e->recover)
                e->recovering = 0;
            else
                retransmit(e); /* partial ACK: the next hole */
        }
        e->rto_at = e->snd_una < e->snd_max ? add_sat(now, e->rto) : 0;
        if (e->fin_sent && e->snd_una == e->snd_end + 1 && e->app_closed) {
            /* orphan done: everything, FIN included, was received */
            e->graceful = 1;
            end_dead(e, 0);
            return;
        }
        kick(e);
    } else if (ack == e->snd_una && !s->len &&
               !(s->flags & (SEG_FIN | SEG_SYN | SEG_PROBE)) && !wnd_update &&
               e->snd_una < e->snd_max) {
        /* Three duplicate ACKs, or (with merged arrivals sending fewer
         * ACKs) a SACK of three segments' worth: the hole is a loss. */
        if ((++e->dupacks == DUPACK_THRESH ||
             s->sacked >= DUPACK_THRESH * SIM_TCP_MSS) &&
            !e->recovering) {
            retransmit(e);
            e->recovering = 1;
            e->recover = e->snd_max;
        }
    }
    if (persist)
        e->retries = 0; /* persist: the peer answers, it is alive */
    tcp_output(e);
}

/* A segment for an end that is gone: TIME_WAIT-like for an orderly
 * close (duplicates and the peer's FIN are acknowledged), otherwise RST
 * to anything that carries data, as a host with no such socket does. */
static void
dead_input(struct tcp_end *e, const struct sim_seg *s)
{
    if (s->flags & SEG_RST)
        return;
    if (e->graceful) {
        uint64_t end = s->seq + s->len + ((s->flags & SEG_FIN) ? 1u : 0u);

        if ((s->flags & SEG_FIN) && !e->fin_rcvd &&
            s->seq + s->len == e->rcv_nxt) {
            e->fin_rcvd = 1;
            e->peer_fin = e->rcv_nxt;
        }
        if (end <= ack_value(e)) {
            if (s->len || (s->flags & SEG_FIN))
                send_ack(e);
            return;
        }
    } else if (!s->len && !(s->flags & SEG_FIN)) {
        return;
    }
    send_rst(e);
}

static void
est_input(struct tcp_end *e, const struct tcp_end *src, const struct sim_seg *s)
{
    msgr_time_ns now = now_of(e);
    int ack_now = 0;

    if (s->flags & SEG_ACK)
        ack_input(e, s);
    if (e->state == E_DEAD) {
        if (e->graceful)
            dead_input(e, s);
        return;
    }
    if (s->len && s->seq + s->len > e->rcv_nxt &&
        (e->app_closed || e->rd_shut)) {
        /* new data for a socket that will never read it: Linux resets */
        send_rst(e);
        end_reset(e, -ECONNRESET);
        return;
    }
    if (s->len)
        rx_data(e, src, s, &ack_now);
    if (s->flags & SEG_FIN) {
        if (e->peer_fin == SEQ_NONE)
            e->peer_fin = s->seq + s->len;
        ack_now = 1;
    }
    if (!e->fin_rcvd && e->peer_fin != SEQ_NONE && e->rcv_nxt == e->peer_fin)
        e->fin_rcvd = 1;
    if (e->nooo || (s->flags & SEG_PROBE))
        ack_now = 1;
    if (ack_now || ack_value(e) - e->acked >= 2 * SIM_TCP_MSS)
        send_ack(e);
    else if (ack_value(e) != e->acked && !e->delack_at)
        e->delack_at = add_sat(now, DELACK_NS);
    kick(e);
}

static struct sim_listener *
listener_find(struct sim_host *h, uint16_t port)
{
    struct sim_listener *l;

    for (l = h->net->ls_head; l; l = l->next) {
        if (l->bound && l->port == port)
            return l;
    }
    return NULL;
}

static void
syn_input(struct tcp_end *e, const struct sim_seg *s)
{
    struct sim_listener *l;

    switch ((enum end_state)e->state) {
    case E_NONE:
        l = listener_find(e->host, e->port);
        if (!l) {
            send_rst(e);
            return;
        }
        /* A full queue drops the SYN; the client's timer tries again. */
        if (l->nq + l->nsyn >= l->backlog)
            return;
        e->state = E_SYN_RCVD;
        e->inc = e->host->incarnation;
        e->listener = l;
        l->nsyn++;
        e->peer_edge = s->edge;
        e->retries = e->backoff = 0;
        e->rto = SYN_RTO_NS;
        end_link(e);
        e->rtt_on = 1;
        e->rtt_t0 = now_of(e);
        seg_send(e, 0, 0, SEG_SYN | SEG_ACK);
        e->rto_at = add_sat(now_of(e), SYN_RTO_NS);
        return;
    case E_SYN_RCVD:
        e->rtt_on = 0;
        seg_send(e, 0, 0, SEG_SYN | SEG_ACK);
        return;
    case E_ESTAB:
        send_ack(e);
        return;
    case E_SYN_SENT:
    case E_DEAD:
        return;
    }
}

static void
synack_input(struct tcp_end *e, const struct sim_seg *s)
{
    switch ((enum end_state)e->state) {
    case E_SYN_SENT:
        e->state = E_ESTAB;
        e->connected = 1;
        e->peer_edge = s->edge;
        e->retries = e->backoff = 0;
        e->rto_at = 0;
        if (e->rtt_on)
            rtt_sample(e, now_of(e) - e->rtt_t0);
        e->rtt_on = 0;
        send_ack(e);
        kick(e);
        return;
    case E_ESTAB:
        send_ack(e); /* our ACK was lost */
        return;
    case E_NONE:
    case E_SYN_RCVD:
    case E_DEAD:
        send_rst(e);
        return;
    }
}

static void
server_establish(struct tcp_end *e)
{
    struct sim_listener *l = e->listener;

    SIM_ASSERT(l != NULL);
    e->state = E_ESTAB;
    e->connected = 1;
    e->retries = e->backoff = 0;
    e->rto_at = 0;
    if (e->rtt_on)
        rtt_sample(e, now_of(e) - e->rtt_t0);
    e->rtt_on = 0;
    l->nsyn--;
    e->queued = 1;
    e->aq_next = NULL;
    if (l->q_tail)
        l->q_tail->aq_next = e;
    else
        l->q_head = e;
    l->q_tail = e;
    l->nq++;
    e->conn->refs++; /* the queue's */
    listener_kick(l);
}

static void
seg_input(struct tcp_end *e, const struct tcp_end *src, const struct sim_seg *s)
{
    if (s->flags & SEG_SYN) {
        if (s->flags & SEG_ACK)
            synack_input(e, s);
        else
            syn_input(e, s);
        return;
    }
    switch ((enum end_state)e->state) {
    case E_NONE:
        if (!(s->flags & SEG_RST))
            send_rst(e);
        return;
    case E_DEAD:
        dead_input(e, s);
        return;
    case E_SYN_SENT:
        if (s->flags & SEG_RST) {
            struct sim_world *w = world_of(e);

            w->stats.refused++;
            sim__net_fp(w, SIM_FP_NET_REFUSED, e->host, src->host);
            e->connect_err = -ECONNREFUSED;
            end_dead(e, -ECONNREFUSED);
        }
        return;
    case E_SYN_RCVD:
        if (s->flags & SEG_RST) {
            server_abandon(e);
            return;
        }
        if (!(s->flags & SEG_ACK))
            return;
        server_establish(e);
        break;
    case E_ESTAB:
        break;
    }
    if (s->flags & SEG_RST) {
        end_reset(e, -ECONNRESET);
        return;
    }
    est_input(e, src, s);
}

static void
seg_arrive_cb(void *arg)
{
    struct sim_seg *s = arg;
    struct tcp_conn *c = s->conn;
    struct sim_world *w = c->w;
    struct tcp_end *src = &c->end[s->from], *e = &c->end[s->from ^ 1];

    if (src->tail == s)
        src->tail = NULL; /* arrived: nothing joins it any more */
    if (!e->host || e->host->state == SIM_HOST_CRASHED) {
        /* nobody there: the segment vanishes */
        w->stats.segments_dropped++;
        sim__net_fp(w, SIM_FP_NET_LOSS, src->host, e->host);
    } else {
        seg_input(e, src, s);
        if (e->state != E_DEAD && e->state != E_NONE)
            tmr_update(e);
    }
    sim__seg_free(w->net, s);
    conn_unref(c);
}

/* ------------------------------------------------------ fault injection */

/* Ceph's ms_inject_socket_failures: a socket op may find its connection
 * reset, drawn from the host's fault stream. */
static int
maybe_inject_reset(struct tcp_end *e)
{
    struct tcp_end *p;
    struct sim_pair *pr;

    if (e->state != E_ESTAB || !e->host)
        return 0;
    p = peer_of(e);
    if (!p->host)
        return 0;
    pr = sim__net_pair(e->host, p->host);
    if (!pr || !pr->reset_ppm)
        return 0;
    if (!sim_rng_chance_ppm(&e->host->net->rng_fault, pr->reset_ppm))
        return 0;
    conn_reset_now(e->conn);
    return 1;
}

int
sim_reset_between(struct sim_world *w, struct sim_host *a, struct sim_host *b)
{
    struct tcp_conn **v = NULL;
    size_t n = 0, cap = 0, i;
    struct tcp_end *e;

    /* Collected first: resetting unlinks ends from the list being walked
     * (both ends are on a when a == b). */
    for (e = a->net->ends_head; e; e = e->hnext) {
        struct tcp_end *p = peer_of(e);

        if (p->host != b || (e->state != E_ESTAB && p->state != E_ESTAB))
            continue;
        if (a == b && e->side == 1 && p->linked)
            continue; /* the client end lists it */
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            v = realloc(v, cap * sizeof(*v));
            SIM_ASSERT(v != NULL);
        }
        v[n++] = e->conn;
    }
    for (i = 0; i < n; i++)
        conn_reset_now(v[i]);
    free(v);
    (void)w;
    return (int)n;
}

/* -------------------------------------------------------- listener side */

static void
listener_unbind(struct sim_listener *l, int rst)
{
    struct tcp_end *e, *next;

    if (!l->bound)
        return;
    l->bound = 0;
    /* Connections nobody accepted are reset, as Linux does on close. */
    while ((e = l->q_head) != NULL) {
        l->q_head = e->aq_next;
        if (!l->q_head)
            l->q_tail = NULL;
        l->nq--;
        e->aq_next = NULL;
        e->queued = 0;
        e->listener = NULL;
        if (rst && e->state == E_ESTAB)
            send_rst(e);
        e->app_closed = 1;
        end_dead(e, 0);
        conn_unref(e->conn);
    }
    for (e = l->host->net->ends_head; e; e = next) {
        next = e->hnext;
        if (e->state == E_SYN_RCVD && e->listener == l) {
            if (rst)
                send_rst(e);
            server_abandon(e);
        }
    }
    l->nsyn = 0;
}

static void
listener_free(struct sim_listener *l)
{
    struct sim_host_net *hn = l->host->net;

    if (l->prev)
        l->prev->next = l->next;
    else
        hn->ls_head = l->next;
    if (l->next)
        l->next->prev = l->prev;
    else
        hn->ls_tail = l->prev;
    free(l);
}

int
sim__listen(struct msgr_worker *w, const struct msgr_addr *addr,
            const struct msgr_listen_opts *opts, msgr_accept_cb cb, void *arg,
            struct msgr_listener **out)
{
    struct sim_host *h = sim__worker_host(w);
    struct sim_host_net *hn = h->net;
    struct sim_listener *l;
    uint32_t ip;
    uint16_t port;
    int reuse = opts && opts->reuse_addr;

    *out = NULL;
    /* The simulated hosts speak IPv4 only, like a kernel without IPv6. */
    if (addr->family != MSGR_AF_INET)
        return -EAFNOSUPPORT;
    ip = addr_ipv4(addr);
    if (ip != 0 && ip != h->ipv4 && !is_loopback(ip))
        return -EADDRNOTAVAIL;
    port = addr->port;
    if (port) {
        /* SO_REUSEADDR lets a new listener take a port that connections
         * (TIME_WAIT, accepted ones) still use, never another listener's. */
        if (port_in_use(h, port, reuse))
            return -EADDRINUSE;
    } else {
        port = port_ephemeral(h);
        if (!port)
            return -EADDRINUSE;
    }
    l = calloc(1, sizeof(*l));
    if (!l)
        return -ENOMEM;
    l->base.ops = w->stack->ops;
    l->base.worker = w;
    l->host = h;
    l->inc = h->incarnation;
    l->bound = 1;
    l->port = port;
    l->ip = ip;
    l->backlog =
        opts && opts->backlog > 0 ? (uint32_t)opts->backlog : BACKLOG_DEFAULT;
    l->cb = cb;
    l->arg = arg;
    l->prev = hn->ls_tail;
    if (hn->ls_tail)
        hn->ls_tail->next = l;
    else
        hn->ls_head = l;
    hn->ls_tail = l;
    *out = &l->base;
    return 0;
}

void
sim__listener_start(struct msgr_listener *lb)
{
    struct sim_listener *l = to_listener(lb);

    l->started = 1;
    listener_kick(l);
}

int
sim__listener_addr(struct msgr_listener *lb, struct msgr_addr *out)
{
    struct sim_listener *l = to_listener(lb);

    fill_addr(out, l->ip, l->port);
    return 0;
}

int
sim__accept(struct msgr_listener *lb, struct msgr_worker *to,
            struct msgr_socket **out, struct msgr_addr *peer)
{
    struct sim_listener *l = to_listener(lb);
    struct tcp_end *e = l->q_head, *p;

    *out = NULL;
    if (!e)
        return -EAGAIN;
    SIM_ASSERT(sim__worker_host(to) == l->host);
    l->q_head = e->aq_next;
    if (!l->q_head)
        l->q_tail = NULL;
    l->nq--;
    e->aq_next = NULL;
    e->queued = 0;
    e->listener = NULL;
    /* the queue's reference becomes the handle's */
    e->has_handle = 1;
    e->base.ops = to->stack->ops;
    e->base.worker = to;
    p = peer_of(e);
    if (peer)
        fill_addr(peer, p->ip, p->port);
    *out = &e->base;
    return 0;
}

void
sim__listener_close(struct msgr_listener *lb)
{
    struct sim_listener *l = to_listener(lb);

    if (!l)
        return;
    listener_unbind(l, 1);
    if (l->ev)
        sim__host_cancel(l->host, l->ev);
    l->ev = 0;
    l->cb = NULL;
    if (l->in_cb) {
        l->closing = 1;
        return;
    }
    listener_free(l);
}

/* ---------------------------------------------------------- socket side */

int
sim__connect(struct msgr_worker *w, const struct msgr_addr *addr,
             struct msgr_socket **out)
{
    struct sim_host *h = sim__worker_host(w);
    struct sim_world *wd = h->world;
    struct sim_host *dst;
    struct tcp_conn *c;
    struct tcp_end *a, *b;
    uint32_t ip, lip;
    uint16_t port;

    *out = NULL;
    if (addr->family == MSGR_AF_INET6)
        return -ENETUNREACH; /* no IPv6 routes in the sim */
    if (addr->family != MSGR_AF_INET)
        return -EAFNOSUPPORT;
    ip = addr_ipv4(addr);
    if (ip == 0 || is_loopback(ip)) {
        /* Linux sends 0.0.0.0 to loopback too */
        dst = h;
        if (ip == 0)
            ip = 0x7f000001;
        lip = ip;
    } else {
        dst = sim_host_find(wd, ip);
        lip = h->ipv4;
    }
    port = port_ephemeral(h);
    if (!port)
        return -EADDRNOTAVAIL;
    c = conn_new(wd);
    a = &c->end[0];
    b = &c->end[1];
    a->host = h;
    a->inc = h->incarnation;
    a->ip = lip;
    a->port = port;
    a->state = E_SYN_SENT;
    a->has_handle = 1;
    a->base.ops = w->stack->ops;
    a->base.worker = w;
    c->refs = 1; /* the handle's */
    b->host = dst;
    b->ip = ip;
    b->port = addr->port;
    end_link(a);
    wd->stats.connects++;
    a->rtt_on = 1;
    a->rtt_t0 = sim_now(wd);
    seg_send(a, 0, 0, SEG_SYN);
    a->rto_at = add_sat(sim_now(wd), SYN_RTO_NS);
    tmr_update(a);
    *out = &a->base;
    return 0;
}

int
sim__connect_result(struct msgr_socket *s)
{
    struct tcp_end *e = to_end(s);

    if (e->connect_err)
        return e->connect_err;
    if (e->connected)
        return 0;
    if (e->state == E_SYN_SENT)
        return -EINPROGRESS;
    return -ENOTCONN;
}

void
sim__io_set(struct msgr_socket *s, msgr_io_cb cb, void *arg, unsigned want)
{
    struct tcp_end *e = to_end(s);

    e->cb = cb;
    e->cb_arg = arg;
    e->want = cb ? want & (MSGR_IO_READ | MSGR_IO_WRITE) : 0;
    kick(e);
}

void
sim__io_want(struct msgr_socket *s, unsigned want)
{
    struct tcp_end *e = to_end(s);

    e->want = e->cb ? want & (MSGR_IO_READ | MSGR_IO_WRITE) : 0;
    kick(e);
}

static int
take_err(struct tcp_end *e)
{
    int r = e->err;

    e->err = 0;
    return r;
}

static size_t
iov_total(const struct iovec *iov, int iovcnt)
{
    size_t n = 0;
    int i;

    for (i = 0; i < iovcnt; i++)
        n += iov[i].iov_len;
    return n;
}

/* After the app read: tell the sender once the window has grown enough to
 * matter (Linux's __tcp_cleanup_rbuf rule: the new window is at least
 * twice what the sender was last told, and the old one was at most half
 * the buffer). */
static void
window_update(struct tcp_end *e)
{
    uint64_t cur, nw;

    if (e->state != E_ESTAB || e->fin_rcvd)
        return;
    cur = e->adv_edge > e->rcv_nxt ? e->adv_edge - e->rcv_nxt : 0;
    nw = e->rd_seq + SIM_TCP_RCVBUF - e->rcv_nxt;
    if (2 * cur <= SIM_TCP_RCVBUF && nw >= 2 * cur && nw - cur >= SIM_TCP_MSS)
        send_ack(e);
}

ssize_t
sim__readv(struct msgr_socket *s, const struct iovec *iov, int iovcnt)
{
    struct tcp_end *e = to_end(s);
    uint64_t avail;
    size_t n;

    if (maybe_inject_reset(e) || e->err)
        return take_err(e);
    switch ((enum end_state)e->state) {
    case E_NONE:
    case E_SYN_SENT:
    case E_SYN_RCVD:
        return -EAGAIN;
    case E_DEAD:
        return 0;
    case E_ESTAB:
        break;
    }
    if (e->rd_shut)
        return 0;
    avail = e->rcv_nxt - e->rd_seq;
    if (!avail)
        return e->fin_rcvd ? 0 : -EAGAIN;
    n = ring_to_iov(&e->rr, e->rd_seq, (size_t)min_u64(avail, SIZE_MAX), iov,
                    iovcnt);
    if (!n)
        return 0; /* empty iovecs */
    e->rd_seq += n;
    if (e->rd_seq == e->rcv_nxt && !e->nooo) {
        ring_drained(e, &e->rr);
        tmr_update(e);
    }
    window_update(e);
    kick(e);
    return (ssize_t)n;
}

ssize_t
sim__writev(struct msgr_socket *s, const struct iovec *iov, int iovcnt)
{
    struct tcp_end *e = to_end(s);
    uint64_t space;
    size_t total, n;

    if (maybe_inject_reset(e) || e->err)
        return take_err(e);
    if (e->state == E_SYN_SENT)
        return -EAGAIN;
    if (e->state != E_ESTAB || e->shut_wr)
        return -EPIPE;
    total = iov_total(iov, iovcnt);
    if (!total)
        return 0;
    space = SIM_TCP_SNDBUF - snd_queued(e);
    if (!space)
        return -EAGAIN;
    n = (size_t)min_u64(total, space);
    ring_fit(&e->sr, e->snd_una, e->snd_end, e->snd_end + n, SIM_TCP_SNDBUF);
    ring_from_iov(&e->sr, e->snd_end, n, iov, iovcnt);
    e->snd_end += n;
    tcp_output(e);
    tmr_update(e);
    kick(e);
    return (ssize_t)n;
}

void
sim__shutdown(struct msgr_socket *s)
{
    struct tcp_end *e = to_end(s);

    switch ((enum end_state)e->state) {
    case E_SYN_SENT:
        /* tcp_disconnect() of a connecting socket: ECONNRESET */
        e->connect_err = -ECONNRESET;
        e->rd_shut = e->shut_wr = 1;
        end_dead(e, -ECONNRESET);
        return;
    case E_ESTAB:
        e->rd_shut = 1;
        if (!e->shut_wr) {
            e->shut_wr = 1;
            tcp_output(e);
            tmr_update(e);
        }
        kick(e);
        return;
    case E_NONE:
    case E_SYN_RCVD:
    case E_DEAD:
        e->rd_shut = e->shut_wr = 1;
        return;
    }
}

void
sim__close(struct msgr_socket *s, int abortive)
{
    struct tcp_end *e = to_end(s);

    if (!s)
        return;
    if (e->ev) {
        sim__host_cancel(e->host, e->ev);
        e->ev = 0;
    }
    e->cb = NULL;
    e->want = 0;
    e->app_closed = 1;
    e->err = 0;
    switch ((enum end_state)e->state) {
    case E_SYN_SENT:
        end_dead(e, 0);
        break;
    case E_ESTAB:
        /* Unread data makes even a normal close a reset (RFC 2525, and
         * what Linux does): the peer must not think it was all read. */
        if (abortive || e->rcv_nxt > e->rd_seq) {
            send_rst(e);
            end_dead(e, 0);
        } else if (e->fin_sent && e->snd_una == e->snd_end + 1) {
            e->graceful = 1;
            end_dead(e, 0);
        } else {
            e->shut_wr = 1;
            tcp_output(e);
            tmr_update(e);
        }
        break;
    case E_NONE:
    case E_SYN_RCVD:
    case E_DEAD:
        break;
    }
    if (e->in_cb) {
        e->closing = 1;
        return;
    }
    handle_release(e);
}

int
sim__local_addr(struct msgr_socket *s, struct msgr_addr *out)
{
    struct tcp_end *e = to_end(s);

    fill_addr(out, e->ip, e->port);
    return 0;
}

int
sim__peer_addr(struct msgr_socket *s, struct msgr_addr *out)
{
    struct tcp_end *e = to_end(s), *p = peer_of(e);

    if (e->state != E_ESTAB) {
        memset(out, 0, sizeof(*out));
        return -ENOTCONN;
    }
    fill_addr(out, p->ip, p->port);
    return 0;
}

/* ------------------------------------------------------ host lifecycle */

void
sim__net_host_kill(struct sim_host *h, int silent)
{
    struct sim_host_net *hn = h->net;
    struct tcp_end *e, *next;
    struct sim_listener *l;

    /* The kernel closes what the process had: an RST for every
     * connection (a crash sends nothing at all). Handles stay for the
     * dead process's teardown to close; they never call back again. */
    for (e = hn->ends_head; e; e = next) {
        next = e->hnext;
        if (!silent && (e->state == E_ESTAB || e->state == E_SYN_RCVD))
            send_rst(e);
        e->app_closed = 1; /* nobody is left to be told */
        end_dead(e, 0);
    }
    for (l = hn->ls_head; l; l = l->next) {
        listener_unbind(l, 0);
        if (l->ev)
            sim__host_cancel(h, l->ev);
        l->ev = 0;
    }
}

void
sim__tcp_host_fini(struct sim_host *h)
{
    struct sim_host_net *hn = h->net;
    struct sim_listener *l, *next;

    /* Listeners left open: the world is going, nothing refers to them. */
    for (l = hn->ls_head; l; l = next) {
        next = l->next;
        free(l);
    }
    hn->ls_head = hn->ls_tail = NULL;
    hn->ends_head = hn->ends_tail = NULL;
}

void
sim__tcp_fini(struct sim_world *w)
{
    struct tcp_conn *c, *next;

    /* Records still referenced by dropped events (segments in flight,
     * timers) or by lingering orphans; the hosts are gone already, so
     * only memory is released. */
    for (c = w->net->conns_head; c; c = next) {
        next = c->next;
        conn_free_mem(c);
    }
    w->net->conns_head = w->net->conns_tail = NULL;
}

/* Worker changes are only bookkeeping here: every worker of a host is a
 * task of the one scheduler, and callbacks enter the socket's worker at the
 * time they run. */
void
sim__socket_move(struct msgr_socket *s, struct msgr_worker *to)
{
    SIM_ASSERT(sim__worker_host(to) == sim__worker_host(s->worker));
    s->worker = to;
}
