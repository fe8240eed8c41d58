/*
 * bench_msgr: the messenger on 127.0.0.1 against the plain-TCP baselines
 * measured in the same invocation (../shared/BENCH.md).
 *
 * Two messengers (osd.1 dials osd.0), lossless_peer on both sides, crc mode
 * (the only one), one connection, the posix stack:
 *
 *   msgr_stream    64 B, 4 KiB, 64 KiB messages, payload in the data
 *                  segment: msgs/s and GB/s (payload bytes, 1 GB = 1e9 B),
 *                  baseline tcp_stream of the same size; the receiver counts
 *                  in ms_fast_dispatch (ms_can_fast_dispatch returns 1);
 *   msgr_dispatch  the same at 4 KiB delivered through ms_dispatch (the
 *                  dispatch queue), baseline tcp_stream 4 KiB;
 *   msgr_rtt       64 B round trip in µs: the client thread sends, the
 *                  server replies from ms_fast_dispatch, the client thread
 *                  waits for the reply before sending the next; pinned
 *                  (the process on one CPU before the stacks exist, so the
 *                  workers inherit it) and unpinned, baseline tcp_pingpong
 *                  pinned / unpinned;
 *   msgr_rtt_cb    the same with the next request sent from the client's
 *                  ms_fast_dispatch (no application thread in the loop):
 *                  what the messenger itself costs per round trip.
 *
 * Stacks: by default each messenger has its own posix stack with one
 * worker, as two Ceph daemons would: the sending and the receiving
 * connection each get a thread, plus the application's sending thread.
 * --stack shared puts both messengers on one stack of two workers: the
 * fast-dispatch streams measure the same (the two connections still land on
 * different workers), but the server's dispatch queue then runs on the
 * worker that carries the client's connection, which roughly halves the
 * ms_dispatch figure: an artifact of co-locating two daemons, hence
 * separate stacks are the fairer default.
 *
 * Sender: the application thread keeps at most --window messages in flight
 * (sent, not yet received); when the window is full it sleeps on a
 * condition until half of it drained, so the out queue never grows without
 * bound. Each message is allocated and its payload written (a memcpy of a
 * pattern plus the message index), as the TCP baseline copies each payload
 * into its batch.
 *
 * Correctness, cheaply: every message's index (hdr.tid and the first 8
 * payload bytes), order, type, source and segment sizes are checked; the
 * whole payload is compared on every message up to 256 B and on one in 64
 * above. A lost, reordered, duplicated or corrupted message, a stall (no
 * progress for 10 s) or a fault of the session fails the benchmark with a
 * message on stderr and a non-zero exit.
 *
 * Round trips pinned: the main thread is pinned to the first allowed CPU
 * (sched_setaffinity) before the stacks are created, so their workers
 * inherit it; the mask is restored afterwards.
 *
 * Never asserts a time: it reports.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_common.h"
#include "msgr/msgr.h"
#include "tcp_baseline.h"

#define STALL_NS        (10ull * 1000 * 1000 * 1000)
#define CONNECT_NS      (10ull * 1000 * 1000 * 1000)
#define WAIT_SLICE_NS   (50ull * 1000 * 1000)
#define SAMPLE_EVERY    64   /* full payload compare: 1 message in 64 ... */
#define SAMPLE_ALL_UPTO 256  /* ... or every one up to this size */
#define MAX_RUN_BYTES   ((size_t)16 << 30)
#define MAX_RUN_MSGS    ((size_t)50 * 1000 * 1000)
#define MAX_ROUND_TRIPS ((size_t)2 * 1000 * 1000)
/* Default window: 4 MiB in flight, at least 64 and at most 1024 messages
 * (Ceph's objecter_inflight_ops); larger windows measured no better. */
#define WINDOW_BYTES    (4u << 20)
#define WINDOW_MIN      64
#define WINDOW_MAX      1024

#define SRV_NUM 0 /* osd.0 listens */
#define CLI_NUM 1 /* osd.1 dials */

enum mode {
    MODE_STREAM,  /* client thread streams, server counts */
    MODE_RTT,     /* client thread: send, wait for the reply, repeat */
    MODE_RTT_CB,  /* client's fast dispatch sends the next request */
};

/* What the application thread sleeps on (see wait_for). */
enum wait_kind {
    WAIT_WINDOW,  /* sent - recvd <= low */
    WAIT_RECVD,   /* recvd >= target */
    WAIT_REPLIES, /* replies >= target */
};

struct pair {
    /* configuration */
    enum mode mode;
    int use_queue;  /* the server delivers through ms_dispatch */
    int separate;   /* each messenger on its own stack */
    int nworkers;   /* per stack */
    size_t size;
    uint64_t window, low;
    uint8_t *tmpl; /* the payload pattern, size bytes */

    struct msgr_stack *st[2];
    struct msgr *srv, *cli;
    struct msgr_conn *conn; /* client -> server */

    /* counters; indices run on across runs of one pair */
    _Atomic uint64_t sent;     /* requests handed to msgr */
    _Atomic uint64_t recvd;    /* requests the server received */
    _Atomic uint64_t replies;  /* replies the client received */
    /* the index the next request / reply must carry; after a mismatch it
     * follows what arrived, so one loss counts once */
    _Atomic uint64_t next_req, next_rep;
    _Atomic uint64_t target;   /* end of the current run */
    _Atomic uint64_t end_ns;   /* when the last message of the run arrived */
    _Atomic uint64_t bad;      /* verification failures */
    _Atomic uint64_t faults;   /* session faults and resets */
    _Atomic uint64_t send_err; /* sends refused inside a worker */
    _Atomic int closing;       /* faults from now on are expected */
    char bad_what[160];        /* the first failure, written once */

    /* the application thread's sleep */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    _Atomic int waiting;
    _Atomic int wait_kind;
};

static struct {
    int separate;
    int nworkers; /* 0: 1 per stack when separate, 2 when shared */
    uint64_t window; /* 0: by size */
    const char *only; /* run only cases whose label contains it */
    int no_baseline;  /* for profiling: skip the TCP baselines */
} cfg = {.separate = 1};

/* ---------------------------------------------------------------- checks */

static void fail_msg(struct pair *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Records a verification failure; the first one's text is kept. */
static void
fail_msg(struct pair *p, const char *fmt, ...)
{
    if (atomic_fetch_add(&p->bad, 1) == 0) {
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(p->bad_what, sizeof(p->bad_what), fmt, ap);
        va_end(ap);
    }
}

static void
fill_pattern(uint8_t *buf, size_t n)
{
    uint32_t x = 2463534242u;

    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        buf[i] = (uint8_t)x;
    }
}

static void
stamp(const struct pair *p, uint8_t *data, uint64_t idx)
{
    memcpy(data, p->tmpl, p->size);
    memcpy(data, &idx, p->size < 8 ? p->size : 8);
}

/*
 * Checks one received message against the index it must carry (*next, then
 * advanced past what arrived). Runs on one receiving thread at a time.
 */
static void
check_msg(struct pair *p, const struct msgr_msg *m, _Atomic uint64_t *next,
          uint16_t type, int64_t src_num)
{
    uint64_t idx = atomic_load_explicit(next, memory_order_relaxed);
    size_t head = p->size < 8 ? p->size : 8;
    uint64_t v = 0;

    atomic_store_explicit(next, m->hdr.tid + 1, memory_order_relaxed);
    if (m->hdr.tid != idx) {
        fail_msg(p, "expected message %llu, got %llu (%s)",
                 (unsigned long long)idx, (unsigned long long)m->hdr.tid,
                 m->hdr.tid > idx ? "lost" : "duplicated or reordered");
        return;
    }
    if (m->hdr.type != type || m->hdr.src.type != MSGR_ENTITY_OSD ||
        m->hdr.src.num != src_num || m->conn == NULL) {
        fail_msg(p, "message %llu: type 0x%x from %s.%lld, want 0x%x from "
                    "osd.%lld",
                 (unsigned long long)idx, m->hdr.type,
                 msgr_entity_type_name(m->hdr.src.type),
                 (long long)m->hdr.src.num, type, (long long)src_num);
        return;
    }
    if (m->data.len != p->size || m->front.len != 0 || m->middle.len != 0) {
        fail_msg(p, "message %llu: segments %u/%u/%u bytes, want 0/0/%zu",
                 (unsigned long long)idx, m->front.len, m->middle.len,
                 m->data.len, p->size);
        return;
    }
    if (head > 0) {
        uint64_t want = 0;

        memcpy(&v, m->data.data, head);
        memcpy(&want, &idx, head);
        if (v != want) {
            fail_msg(p, "message %llu: payload carries index %llu",
                     (unsigned long long)idx, (unsigned long long)v);
            return;
        }
    }
    if ((p->size <= SAMPLE_ALL_UPTO || idx % SAMPLE_EVERY == 0) &&
        p->size > head &&
        memcmp(m->data.data + head, p->tmpl + head, p->size - head) != 0) {
        fail_msg(p, "message %llu: payload corrupted (%zu bytes)",
                 (unsigned long long)idx, p->size);
    }
}

/* ------------------------------------------------------- sleeping, waking */

static int
wait_ready(struct pair *p, int kind)
{
    uint64_t t = atomic_load(&p->target);

    switch (kind) {
    case WAIT_WINDOW:
        return atomic_load(&p->sent) - atomic_load(&p->recvd) <= p->low;
    case WAIT_RECVD:
        return atomic_load(&p->recvd) >= t;
    default:
        return atomic_load(&p->replies) >= t;
    }
}

/* Called by a receiver after it counted: wakes the application thread if it
 * sleeps and what it waits for happened (once per sleep). */
static void
notify(struct pair *p)
{
    if (atomic_load(&p->waiting) && wait_ready(p, atomic_load(&p->wait_kind)) &&
        atomic_exchange(&p->waiting, 0)) {
        /* The sleeper holds mu from its last check until it waits, so
         * taking mu orders this after it waits; signalling after unlock
         * spares it waking up into a held mutex. */
        pthread_mutex_lock(&p->mu);
        pthread_mutex_unlock(&p->mu);
        pthread_cond_signal(&p->cv);
    }
}

static uint64_t
progress(struct pair *p)
{
    return atomic_load(&p->recvd) + atomic_load(&p->replies);
}

/*
 * Sleeps until the condition holds. -ETIMEDOUT when nothing arrived for
 * STALL_NS, -EPROTO as soon as a receiver saw a bad message.
 */
static int
wait_for(struct pair *p, int kind)
{
    uint64_t last = progress(p);
    uint64_t deadline = bench_now_ns() + STALL_NS;
    int err = 0;

    if (wait_ready(p, kind)) {
        return 0;
    }
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->wait_kind, kind);
    for (;;) {
        atomic_store(&p->waiting, 1);
        if (wait_ready(p, kind)) {
            break;
        }
        if (atomic_load(&p->bad) != 0) {
            err = -EPROTO;
            break;
        }
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += (long)WAIT_SLICE_NS;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&p->cv, &p->mu, &ts);
        uint64_t now = bench_now_ns(), cur = progress(p);

        if (cur != last) {
            last = cur;
            deadline = now + STALL_NS;
        } else if (now >= deadline) {
            err = -ETIMEDOUT;
            break;
        }
    }
    atomic_store(&p->waiting, 0);
    pthread_mutex_unlock(&p->mu);
    return err;
}

/* ------------------------------------------------------------ dispatchers */

static struct msgr_msg *
new_msg(struct pair *p, uint16_t type, uint64_t idx)
{
    struct msgr_msg *m = msgr_msg_new(type, 0, 0, (uint32_t)p->size);

    if (m != NULL) {
        if (p->size > 0) {
            stamp(p, m->data.data, idx);
        }
        m->hdr.tid = idx;
    }
    return m;
}

/* The server: counts (stream) or replies (round trips). */
static void
srv_receive(struct pair *p, struct msgr_msg *m)
{
    uint64_t idx = m->hdr.tid;

    check_msg(p, m, &p->next_req, MSGR_MSG_TEST, CLI_NUM);
    if (p->mode != MODE_STREAM) {
        struct msgr_msg *r = new_msg(p, MSGR_MSG_TEST + 1, idx);

        if (r == NULL || msgr_conn_send_message(m->conn, r) != 0) {
            msgr_msg_unref(r);
            atomic_fetch_add(&p->send_err, 1);
            fail_msg(p, "server: cannot send reply %llu",
                     (unsigned long long)idx);
        }
    }
    msgr_msg_unref(m);
    uint64_t n = atomic_fetch_add(&p->recvd, 1) + 1;

    if (p->mode == MODE_STREAM) {
        if (n == atomic_load(&p->target)) {
            atomic_store(&p->end_ns, bench_now_ns());
        }
        notify(p);
    }
}

static int
can_fast(void *arg, const struct msgr_msg *m)
{
    (void)arg;
    (void)m;
    return 1;
}

static void
srv_fast_dispatch(void *arg, struct msgr_msg *m)
{
    srv_receive(arg, m);
}

static int
srv_dispatch(void *arg, struct msgr_msg *m)
{
    srv_receive(arg, m);
    return 1;
}

/* The client: replies of the round-trip modes. */
static void
cli_fast_dispatch(void *arg, struct msgr_msg *m)
{
    struct pair *p = arg;

    check_msg(p, m, &p->next_rep, MSGR_MSG_TEST + 1, SRV_NUM);
    msgr_msg_unref(m);
    uint64_t n = atomic_fetch_add(&p->replies, 1) + 1;
    uint64_t t = atomic_load(&p->target);

    if (n >= t) {
        if (n == t) {
            atomic_store(&p->end_ns, bench_now_ns());
        }
    } else if (p->mode == MODE_RTT_CB) {
        struct msgr_msg *r = new_msg(p, MSGR_MSG_TEST, n);

        atomic_fetch_add(&p->sent, 1);
        if (r == NULL || msgr_conn_send_message(p->conn, r) != 0) {
            msgr_msg_unref(r);
            atomic_fetch_add(&p->send_err, 1);
            fail_msg(p, "client: cannot send request %llu",
                     (unsigned long long)n);
        }
    }
    notify(p);
}

static int
on_reset(void *arg, struct msgr_conn *c)
{
    struct pair *p = arg;

    (void)c;
    if (!atomic_load(&p->closing)) {
        atomic_fetch_add(&p->faults, 1);
    }
    return 1;
}

static void
on_remote_reset(void *arg, struct msgr_conn *c)
{
    (void)on_reset(arg, c);
}

static void
on_fault(void *arg, struct msgr *m, struct msgr_conn *c, int err,
         const char *what)
{
    struct pair *p = arg;

    (void)m;
    (void)c;
    if (!atomic_load(&p->closing)) {
        atomic_fetch_add(&p->faults, 1);
        fprintf(stderr, "bench_msgr: session fault: %s: %s\n", what,
                msgr_strerror(err));
    }
}

/* ------------------------------------------------------------- the pair */

static int
conn_ready(void *arg)
{
    return msgr_conn_is_connected(arg);
}

static void
pair_close(struct pair *p)
{
    atomic_store(&p->closing, 1);
    if (p->conn != NULL) {
        msgr_conn_unref(p->conn);
    }
    if (p->cli != NULL) {
        msgr_shutdown(p->cli);
    }
    if (p->srv != NULL) {
        msgr_shutdown(p->srv);
    }
    if (p->cli != NULL) {
        msgr_wait(p->cli);
    }
    if (p->srv != NULL) {
        msgr_wait(p->srv);
    }
    msgr_destroy(p->cli);
    msgr_destroy(p->srv);
    for (int i = 0; i < 2; i++) {
        if (p->st[i] != NULL) {
            msgr_stack_unref(p->st[i]);
        }
    }
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p->tmpl);
    memset(p, 0, sizeof(*p));
}

static int
pair_open(struct pair *p, enum mode mode, int use_queue, size_t size)
{
    struct msgr_policy pol = msgr_policy_make(MSGR_POLICY_LOSSLESS_PEER, 0);
    struct msgr_tracer tr = {.arg = p, .fault = on_fault};
    struct msgr_dispatcher sd = {.arg = p,
                                 .ms_handle_reset = on_reset,
                                 .ms_handle_remote_reset = on_remote_reset};
    struct msgr_dispatcher cd = {.arg = p,
                                 .ms_can_fast_dispatch = can_fast,
                                 .ms_fast_dispatch = cli_fast_dispatch,
                                 .ms_handle_reset = on_reset,
                                 .ms_handle_remote_reset = on_remote_reset};
    struct msgr_addr bind_addr;
    struct msgr_addrvec saddrs;
    pthread_condattr_t ca;
    int err = 0;

    memset(p, 0, sizeof(*p));
    p->mode = mode;
    p->use_queue = use_queue;
    p->size = size;
    p->separate = cfg.separate;
    p->nworkers = cfg.nworkers > 0 ? cfg.nworkers : (cfg.separate ? 1 : 2);
    if (cfg.window > 0) {
        p->window = cfg.window;
    } else {
        p->window = WINDOW_BYTES / (size > 0 ? size : 1);
        p->window = p->window < WINDOW_MIN ? WINDOW_MIN : p->window;
        p->window = p->window > WINDOW_MAX ? WINDOW_MAX : p->window;
    }
    p->low = p->window / 2;
    pthread_mutex_init(&p->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cv, &ca);
    pthread_condattr_destroy(&ca);
    p->tmpl = malloc(size > 0 ? size : 1);
    if (p->tmpl == NULL) {
        pair_close(p);
        return -ENOMEM;
    }
    fill_pattern(p->tmpl, size);

    for (int i = 0; i < (p->separate ? 2 : 1); i++) {
        struct msgr_stack_config sc = {.nworkers = p->nworkers};

        p->st[i] = msgr_stack_create("posix", &sc, &err);
        if (p->st[i] == NULL) {
            fprintf(stderr, "bench_msgr: posix stack: %s\n",
                    msgr_strerror(err));
            pair_close(p);
            return err < 0 ? err : -ENOMEM;
        }
    }
    struct msgr_config scfg = {.name = {MSGR_ENTITY_OSD, SRV_NUM},
                               .stack = p->st[0],
                               .nonce = 1001};
    struct msgr_config ccfg = {.name = {MSGR_ENTITY_OSD, CLI_NUM},
                               .stack = p->separate ? p->st[1] : p->st[0],
                               .nonce = 2002};

    p->srv = msgr_create(&scfg, &err);
    p->cli = p->srv != NULL ? msgr_create(&ccfg, &err) : NULL;
    if (p->cli == NULL) {
        fprintf(stderr, "bench_msgr: messenger: %s\n", msgr_strerror(err));
        pair_close(p);
        return err < 0 ? err : -ENOMEM;
    }
    msgr_set_default_policy(p->srv, &pol);
    msgr_set_default_policy(p->cli, &pol);
    msgr_set_policy(p->srv, MSGR_ENTITY_OSD, &pol);
    msgr_set_policy(p->cli, MSGR_ENTITY_OSD, &pol);
    msgr_set_tracer(p->srv, &tr);
    msgr_set_tracer(p->cli, &tr);
    if (use_queue) {
        sd.ms_dispatch = srv_dispatch;
    } else {
        sd.ms_can_fast_dispatch = can_fast;
        sd.ms_fast_dispatch = srv_fast_dispatch;
    }
    msgr_addr_parse("v2:127.0.0.1:0", &bind_addr);
    err = msgr_bind(p->srv, &bind_addr);
    if (err < 0) {
        fprintf(stderr, "bench_msgr: bind 127.0.0.1: %s\n",
                msgr_strerror(err));
        pair_close(p);
        return err;
    }
    if ((err = msgr_start(p->srv)) < 0 ||
        (err = msgr_add_dispatcher(p->srv, &sd)) < 0 ||
        (err = msgr_start(p->cli)) < 0 ||
        (err = msgr_add_dispatcher(p->cli, &cd)) < 0) {
        fprintf(stderr, "bench_msgr: start: %s\n", msgr_strerror(err));
        pair_close(p);
        return err;
    }
    msgr_get_myaddrs(p->srv, &saddrs);
    p->conn = msgr_get_connection(p->cli, MSGR_ENTITY_OSD, &saddrs, &err);
    if (p->conn == NULL) {
        fprintf(stderr, "bench_msgr: connect: %s\n", msgr_strerror(err));
        pair_close(p);
        return err < 0 ? err : -ENOTCONN;
    }
    struct msgr_stack *cst = msgr_get_stack(p->cli);

    if (!cst->ops->wait_until(cst, conn_ready, p->conn, CONNECT_NS)) {
        fprintf(stderr, "bench_msgr: the session did not come up in %llu s "
                        "(state %s)\n",
                (unsigned long long)(CONNECT_NS / 1000000000ull),
                msgr_conn_state_name(p->conn));
        pair_close(p);
        return -ETIMEDOUT;
    }
    return 0;
}

/* Reports why a run failed; returns err. */
static int
run_failed(struct pair *p, int err)
{
    unsigned long long sent = atomic_load(&p->sent),
                       recvd = atomic_load(&p->recvd),
                       replies = atomic_load(&p->replies),
                       got = p->mode == MODE_STREAM ? recvd : replies;

    if (atomic_load(&p->bad) != 0) {
        fprintf(stderr, "bench_msgr: BAD DATA: %s (%llu messages failed "
                        "verification)\n",
                p->bad_what, (unsigned long long)atomic_load(&p->bad));
        err = -EPROTO;
    } else if (err == -ETIMEDOUT) {
        fprintf(stderr, "bench_msgr: LOST: %llu message(s) sent but not "
                        "%s within %llu s\n",
                sent - got, p->mode == MODE_STREAM ? "received" : "answered",
                (unsigned long long)(STALL_NS / 1000000000ull));
    }
    if (atomic_load(&p->faults) != 0) {
        fprintf(stderr, "bench_msgr: %llu session fault(s) or reset(s)\n",
                (unsigned long long)atomic_load(&p->faults));
    }
    fprintf(stderr, "bench_msgr: run failed (%s) after %llu sent, %llu "
                    "received, %llu replies; connection %s\n",
            strerror(-err), sent, recvd, replies,
            msgr_conn_state_name(p->conn));
    return err;
}

/* ------------------------------------------------------------------ runs */

/* n messages, window-limited; *secs from the first send to the last
 * message received. */
static int
stream_run(struct pair *p, size_t n, double *secs)
{
    uint64_t base = atomic_load(&p->sent);
    uint64_t target = base + n;
    int err = 0;

    atomic_store(&p->target, target);
    atomic_store(&p->end_ns, 0);
    uint64_t t0 = bench_now_ns();

    for (uint64_t i = base; i < target; i++) {
        if (i - atomic_load(&p->recvd) >= p->window &&
            (err = wait_for(p, WAIT_WINDOW)) != 0) {
            return run_failed(p, err);
        }
        struct msgr_msg *m = new_msg(p, MSGR_MSG_TEST, i);

        if (m == NULL) {
            return run_failed(p, -ENOMEM);
        }
        atomic_store(&p->sent, i + 1);
        err = msgr_conn_send_message(p->conn, m);
        if (err != 0) {
            msgr_msg_unref(m);
            atomic_store(&p->sent, i);
            fprintf(stderr, "bench_msgr: send: %s\n", msgr_strerror(err));
            return run_failed(p, err);
        }
    }
    err = wait_for(p, WAIT_RECVD);
    if (err != 0 || atomic_load(&p->bad) != 0 ||
        atomic_load(&p->faults) != 0) {
        return run_failed(p, err != 0 ? err : -EPROTO);
    }
    *secs = (double)(atomic_load(&p->end_ns) - t0) / 1e9;
    return 0;
}

/* n round trips; *secs over all of them. */
static int
rtt_run(struct pair *p, size_t n, double *secs)
{
    uint64_t base = atomic_load(&p->sent);
    uint64_t target = base + n;
    int err = 0;

    atomic_store(&p->target, target);
    atomic_store(&p->end_ns, 0);
    uint64_t t0 = bench_now_ns();

    if (p->mode == MODE_RTT_CB) {
        /* the first request; the client's dispatcher sends the others */
        struct msgr_msg *m = new_msg(p, MSGR_MSG_TEST, base);

        atomic_fetch_add(&p->sent, 1);
        if (m == NULL || (err = msgr_conn_send_message(p->conn, m)) != 0) {
            msgr_msg_unref(m);
            return run_failed(p, err != 0 ? err : -ENOMEM);
        }
        err = wait_for(p, WAIT_REPLIES);
    } else {
        for (uint64_t i = base; i < target && err == 0; i++) {
            struct msgr_msg *m = new_msg(p, MSGR_MSG_TEST, i);

            if (m == NULL) {
                return run_failed(p, -ENOMEM);
            }
            atomic_store(&p->sent, i + 1);
            /* the target the reply wakes us for */
            atomic_store(&p->target, i + 1);
            err = msgr_conn_send_message(p->conn, m);
            if (err != 0) {
                msgr_msg_unref(m);
                return run_failed(p, err);
            }
            err = wait_for(p, WAIT_REPLIES);
        }
        atomic_store(&p->end_ns, bench_now_ns());
    }
    if (err != 0 || atomic_load(&p->bad) != 0 ||
        atomic_load(&p->faults) != 0 ||
        atomic_load(&p->replies) != target) {
        return run_failed(p, err != 0 ? err : -EPROTO);
    }
    *secs = (double)(atomic_load(&p->end_ns) - t0) / 1e9;
    return 0;
}

static int
timed_cb(void *arg, size_t n, double *secs)
{
    struct pair *p = arg;

    return p->mode == MODE_STREAM ? stream_run(p, n, secs)
                                  : rtt_run(p, n, secs);
}

struct measured {
    struct pair *p;
    size_t n;
};

static int
run_cb(void *arg, double *values)
{
    struct measured *ms = arg;
    double secs = 0;
    int err = timed_cb(ms->p, ms->n, &secs);

    if (err != 0) {
        return err;
    }
    if (secs <= 0) {
        secs = 1e-9;
    }
    if (ms->p->mode == MODE_STREAM) {
        values[0] = (double)ms->n / secs;
        values[1] = (double)ms->n * (double)ms->p->size / secs;
    } else {
        values[0] = secs / (double)ms->n * 1e6;
    }
    return 0;
}

/*
 * One figure set of the messenger: a pair, a calibration (which warms it
 * up), bench_measure's warm-up and runs. st[0..1]: msgs/s and bytes/s, or
 * st[0]: µs per round trip.
 */
static int
measure_msgr(enum mode mode, int use_queue, size_t size, int runs,
             struct bench_stats st[2])
{
    struct pair p;
    struct measured ms = {.p = &p};
    size_t max_n = mode == MODE_STREAM
                       ? MAX_RUN_BYTES / (size > 0 ? size : 1)
                       : MAX_ROUND_TRIPS;
    int err;

    if (max_n > MAX_RUN_MSGS) {
        max_n = MAX_RUN_MSGS;
    }
    err = pair_open(&p, mode, use_queue, size);
    if (err != 0) {
        return err;
    }
    err = bench_calibrate(timed_cb, &p, BENCH_RUN_TARGET_S, max_n, &ms.n);
    if (err == 0) {
        err = bench_measure(run_cb, &ms, mode == MODE_STREAM ? 2 : 1, runs,
                            st);
    }
    if (err == 0 && (atomic_load(&p.bad) != 0 || atomic_load(&p.faults) != 0 ||
                     atomic_load(&p.send_err) != 0)) {
        err = run_failed(&p, -EPROTO);
    }
    if (err == 0) {
        fprintf(stderr,
                "bench_msgr: %s %zu B: %zu per run, window %llu, %llu "
                "messages verified%s\n",
                mode == MODE_STREAM ? (use_queue ? "ms_dispatch" : "stream")
                                    : (mode == MODE_RTT ? "rtt" : "rtt_cb"),
                size, ms.n, (unsigned long long)p.window,
                (unsigned long long)(atomic_load(&p.recvd) +
                                     atomic_load(&p.replies)),
                p.separate ? ", separate stacks" : ", shared stack");
    }
    pair_close(&p);
    return err;
}

/* -------------------------------------------------------------- affinity */

static cpu_set_t saved_mask;

static int
pin_process(int cpu)
{
    cpu_set_t set;

    if (sched_getaffinity(0, sizeof(saved_mask), &saved_mask) != 0) {
        return -errno;
    }
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    /* this thread; the stacks' workers created later inherit it */
    if (sched_setaffinity(0, sizeof(set), &set) != 0) {
        return -errno;
    }
    return 0;
}

static void
unpin_process(void)
{
    sched_setaffinity(0, sizeof(saved_mask), &saved_mask);
}

/* ---------------------------------------------------------------- report */

static void
scale(struct bench_stats *s, double f)
{
    s->median *= f;
    s->min *= f;
    s->max *= f;
}

static void
report_stream(struct bench_out *out, const char *bench, const char *case_name,
              const struct bench_stats st[2], const struct bench_stats base[2])
{
    struct bench_stats gb = st[1];

    scale(&gb, 1e-9);
    bench_out_row(out, &(struct bench_row){.bench = bench,
                                           .case_name = case_name,
                                           .metric = "msgs_per_s",
                                           .unit = "1/s",
                                           .stats = &st[0],
                                           .baseline = base != NULL
                                                           ? "tcp_stream"
                                                           : NULL,
                                           .baseline_value =
                                               base != NULL ? base[0].median
                                                            : 0});
    bench_out_row(out, &(struct bench_row){.bench = bench,
                                           .case_name = case_name,
                                           .metric = "GB_per_s",
                                           .unit = "GB/s",
                                           .stats = &gb,
                                           .baseline = base != NULL
                                                           ? "tcp_stream"
                                                           : NULL,
                                           .baseline_value =
                                               base != NULL
                                                   ? base[1].median / 1e9
                                                   : 0});
}

static int
selected(const char *label)
{
    return cfg.only == NULL || strstr(label, cfg.only) != NULL;
}

static int
failed(struct bench_out *out, const char *what, int err)
{
    fprintf(stderr, "bench_msgr: %s FAILED: %s\n", what, strerror(-err));
    bench_out_close(out);
    return 1;
}

/* Our own options, taken out of argv before bench_opts_parse sees it. */
static int
parse_own_opts(int *argc, char **argv)
{
    int j = 1;

    for (int i = 1; i < *argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < *argc ? argv[i + 1] : NULL;

        if (strcmp(a, "--stack") == 0 && v != NULL) {
            if (strcmp(v, "shared") == 0) {
                cfg.separate = 0;
            } else if (strcmp(v, "separate") == 0) {
                cfg.separate = 1;
            } else {
                fprintf(stderr, "bench_msgr: --stack shared|separate\n");
                return -EINVAL;
            }
            i++;
        } else if (strcmp(a, "--workers") == 0 && v != NULL) {
            cfg.nworkers = atoi(v);
            if (cfg.nworkers < 1 || cfg.nworkers > 24) {
                fprintf(stderr, "bench_msgr: --workers 1..24\n");
                return -EINVAL;
            }
            i++;
        } else if (strcmp(a, "--window") == 0 && v != NULL) {
            long w = atol(v);

            if (w < 1 || w > 1000000) {
                fprintf(stderr, "bench_msgr: --window 1..1000000\n");
                return -EINVAL;
            }
            cfg.window = (uint64_t)w;
            i++;
        } else if (strcmp(a, "--no-baseline") == 0) {
            cfg.no_baseline = 1;
        } else if (strcmp(a, "--only") == 0 && v != NULL) {
            cfg.only = v;
            i++;
        } else {
            argv[j++] = argv[i];
        }
    }
    *argc = j;
    argv[j] = NULL;
    return 0;
}

static const size_t stream_sizes[] = {64, 4096, 65536};
#define N_SIZES (sizeof(stream_sizes) / sizeof(stream_sizes[0]))

int
main(int argc, char **argv)
{
    struct bench_opts opts;
    struct bench_out out;
    struct bench_stats base[N_SIZES][2];
    struct bench_stats st[2];
    char name[64], sz[16];
    int err;

    if (parse_own_opts(&argc, argv) != 0) {
        return 2;
    }
    err = bench_opts_parse(argc, argv,
                           "The messenger on 127.0.0.1 (lossless_peer, crc) "
                           "beside the plain-TCP baselines.",
                           &opts);
    if (err != 0) {
        if (err > 0) {
            printf("  --stack shared|separate  one posix stack of 2 workers, "
                   "or one stack per\n"
                   "                           messenger (default separate)\n"
                   "  --workers N              workers per stack (default: 1 "
                   "separate, 2 shared)\n"
                   "  --window N               messages in flight (default: "
                   "4 MiB worth, 64..1024)\n"
                   "  --only TEXT              only the cases whose label "
                   "contains TEXT; labels:\n"
                   "                           stream-64B stream-4KiB "
                   "stream-64KiB dispatch-4KiB\n"
                   "                           rtt-pinned rtt-unpinned "
                   "rtt_cb-pinned rtt_cb-unpinned\n"
                   "  --no-baseline            skip the TCP baselines (to "
                   "profile the messenger\n"
                   "                           alone; rows then have no "
                   "ratio)\n");
        }
        return err > 0 ? 0 : 2;
    }
    if (bench_out_open(&out, opts.out_path) != 0) {
        return 74; /* EX_IOERR */
    }

    /* streams, each beside its baseline measured just before */
    for (size_t i = 0; i < N_SIZES; i++) {
        size_t s = stream_sizes[i];
        char label[32];

        bench_fmt_size(sz, sizeof(sz), s);
        snprintf(label, sizeof(label), "stream-%s", sz);
        if (!selected(label) && !(s == 4096 && selected("dispatch-4KiB"))) {
            continue;
        }
        err = cfg.no_baseline
                  ? 0
                  : bench_tcp_stream_measure(s, 0, opts.runs, base[i], NULL);
        if (err != 0) {
            return failed(&out, "tcp_stream baseline", err);
        }
        if (!selected(label)) {
            continue;
        }
        err = measure_msgr(MODE_STREAM, 0, s, opts.runs, st);
        if (err != 0) {
            return failed(&out, label, err);
        }
        snprintf(name, sizeof(name), "%s lossless_peer crc", sz);
        report_stream(&out, "msgr_stream", name, st,
                      cfg.no_baseline ? NULL : base[i]);
    }

    /* 4 KiB through the dispatch queue */
    if (selected("dispatch-4KiB")) {
        err = measure_msgr(MODE_STREAM, 1, 4096, opts.runs, st);
        if (err != 0) {
            return failed(&out, "dispatch-4KiB", err);
        }
        report_stream(&out, "msgr_dispatch", "4KiB lossless_peer crc", st,
                      cfg.no_baseline ? NULL : base[1]);
    }

    /* round trips, pinned then unpinned */
    int cpu = bench_cpu_first();

    if (cpu < 0) {
        return failed(&out, "rtt (no CPU to pin to)", cpu);
    }
    for (int pinned = 1; pinned >= 0; pinned--) {
        const char *how = pinned ? "pinned" : "unpinned";
        char l1[32], l2[32];
        struct bench_stats tcp = {0};

        snprintf(l1, sizeof(l1), "rtt-%s", how);
        snprintf(l2, sizeof(l2), "rtt_cb-%s", how);
        if (!selected(l1) && !selected(l2)) {
            continue;
        }
        err = cfg.no_baseline
                  ? 0
                  : bench_tcp_pingpong_measure(64, 0, pinned ? cpu : -1,
                                               opts.runs, &tcp, NULL);
        if (err != 0) {
            return failed(&out, "tcp_pingpong baseline", err);
        }
        snprintf(name, sizeof(name), "tcp_pingpong %s", how);
        for (int m = 0; m < 2; m++) {
            const char *label = m == 0 ? l1 : l2;
            char case_name[64];

            if (!selected(label)) {
                continue;
            }
            if (pinned && (err = pin_process(cpu)) != 0) {
                return failed(&out, "sched_setaffinity", err);
            }
            err = measure_msgr(m == 0 ? MODE_RTT : MODE_RTT_CB, 0, 64,
                               opts.runs, st);
            if (pinned) {
                unpin_process();
            }
            if (err != 0) {
                return failed(&out, label, err);
            }
            snprintf(case_name, sizeof(case_name), "64B lossless_peer %s",
                     how);
            bench_out_row(&out,
                          &(struct bench_row){.bench = m == 0 ? "msgr_rtt"
                                                              : "msgr_rtt_cb",
                                              .case_name = case_name,
                                              .metric = "rtt_us",
                                              .unit = "us",
                                              .stats = &st[0],
                                              .baseline = cfg.no_baseline
                                                              ? NULL
                                                              : name,
                                              .baseline_value =
                                                  cfg.no_baseline
                                                      ? 0
                                                      : tcp.median});
        }
    }
    bench_out_close(&out);
    return 0;
}
