/*
 * bench_sim: the deterministic simulator (../shared/BENCH.md).
 *
 *   sim_sched     the scheduler alone: 1,024 pending events, each of which
 *                 reschedules itself at a random future time (1 ns .. 1 ms
 *                 later, drawn from the world's workload stream) when it
 *                 runs; events per wall second through sim_step;
 *   sim_msgr_64B  64 B messages through the full msgr2 protocol (frames,
 *                 crc) on the simulated network, lossless_peer, default
 *                 links (100 us one way, lossless, unlimited bandwidth),
 *                 one host + one sim stack (1 worker) + one messenger per
 *                 node, nodes in pairs (osd.2k dials osd.2k+1 and streams
 *                 to it): 2, 100 and 1,000 nodes. Per configuration:
 *                   msgs_per_s      messages delivered per wall second;
 *                   sim_s_per_s     simulated seconds per wall second;
 *                   events_per_msg  scheduler events per message (a count:
 *                                   the same on every machine);
 *                 Baselines, named in the case: the 2-node row's against
 *                 sim_sched (ratio = msgs/s over bare events/s: 1/ratio is
 *                 what one message costs in bare scheduler events; compare
 *                 it with events_per_msg to see whether a change moved the
 *                 number of events or the work per event); the 100- and
 *                 1,000-node rows against the 2-node row of the same
 *                 metric (how the simulator scales with the world's size);
 *   sim_mem       memory of idle nodes and idle established connections:
 *                 heap bytes in use (mallinfo2: uordblks + hblkhd; the
 *                 simulation is single-threaded, so one arena) and RSS,
 *                 as deltas: 1,000 nodes started (bound, listening) over
 *                 nothing; 500 established sessions, idle for 5 simulated
 *                 seconds, over the nodes alone; the same sessions idle
 *                 again (5 s) after a burst of 1,024 messages each. One
 *                 connection is both ends: the two messengers' sessions
 *                 and the simulated TCP connection with its buffers.
 *
 * The workload, per pair: the application (this thread, outside the
 * scheduler, as a test's main thread would be) keeps at most --window
 * messages in flight on the connection; the server counts in
 * ms_fast_dispatch and, when a pair has drained to half its window, asks
 * the application for more: the stack's wait_until (which runs the
 * world's scheduler) returns as soon as some pair wants a refill or every
 * message of the run has arrived. The application learns of the drain at
 * once (no reply crosses the network), so a pair moves about a window of
 * messages per one-way latency: sim_s_per_s is that workload's.
 *
 * Every run does a fixed amount of work (SCHED_EVENTS_PER_RUN events;
 * msg_per_pair messages per pair, about 0.4 s each here) rather than a
 * calibrated one: the simulation is deterministic, so the events and the
 * simulated time of every run are the same in every invocation on every
 * machine, and only the wall time varies.

 * Correctness: every message's index (hdr.tid and the first 8 payload
 * bytes), order, type, source, size and whole payload is checked on
 * arrival, and at the end of each run every pair must have received
 * exactly what it was sent. A lost, duplicated, reordered or corrupted
 * message, a session fault, a stall (no progress in 60 simulated seconds)
 * or a run exceeding 60 wall seconds fails the benchmark with a message on
 * stderr and a non-zero exit.
 *
 * Everything is one thread, so nothing is pinned. Never asserts a time:
 * it reports.
 */
#include <errno.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_common.h"
#include "msgr/msgr.h"
#include "sim/sim.h"

#define SEED_DEFAULT   0x5eedb5e4c0ffee11ull
#define MSG_SIZE       64
#define PORT           6800
#define WINDOW_DEFAULT 128 /* messages in flight per connection */
#define SCHED_PENDING  1024
#define SCHED_SPAN_NS  (1 * MSGR_NS_PER_MS)
/* No progress for this long in simulated time: stalled. */
#define STALL_NS       (60 * MSGR_NS_PER_S)
/* A single wait_until that runs this long in wall time: give up (a storm
 * of events at one virtual instant would never reach STALL_NS). */
#define WALL_LIMIT_NS  (60ull * 1000 * 1000 * 1000)
#define WALL_POLL_MASK 0xffffu /* look at the wall clock every 64k events */
#define IDLE_SETTLE_NS (5 * MSGR_NS_PER_S)
/* events per scheduler run (see the top comment; msg_per_pair in main) */
#define SCHED_EVENTS_PER_RUN ((size_t)6 * 1000 * 1000)
#define MEM_NODES      1000
#define MEM_BURST      1024 /* messages per pair before "idle again" */

static struct {
    uint64_t seed;
    uint64_t window;
    const char *only; /* run only cases whose label contains it */
    int no_baseline;  /* for profiling: skip the baselines */
} cfg = {.seed = SEED_DEFAULT, .window = WINDOW_DEFAULT};

/* ------------------------------------------------------ the scheduler */

struct sched_ctx {
    struct sim_world *w;
    struct sim_rng rng;
    uint64_t fired;
};

static void
sched_tick(void *arg)
{
    struct sched_ctx *s = arg;

    s->fired++;
    sim_schedule(s->w,
                 sim_now(s->w) + 1 + sim_rng_below(&s->rng, SCHED_SPAN_NS),
                 sched_tick, s);
}

static int
sched_timed(void *arg, size_t n, double *secs)
{
    struct sched_ctx *s = arg;
    uint64_t before = s->fired;
    uint64_t t0 = bench_now_ns();

    for (size_t i = 0; i < n; i++) {
        if (!sim_step(s->w)) {
            break;
        }
    }
    *secs = (double)(bench_now_ns() - t0) / 1e9;
    if (s->fired - before != n ||
        sim_events_pending(s->w) != SCHED_PENDING) {
        fprintf(stderr, "bench_sim: scheduler ran %llu of %zu events, "
                        "%zu pending (want %d)\n",
                (unsigned long long)(s->fired - before), n,
                sim_events_pending(s->w), SCHED_PENDING);
        return -EPROTO;
    }
    return 0;
}

struct sched_measured {
    struct sched_ctx *s;
    size_t n;
};

static int
sched_run(void *arg, double *values)
{
    struct sched_measured *ms = arg;
    double secs = 0;
    int err = sched_timed(ms->s, ms->n, &secs);

    if (err != 0) {
        return err;
    }
    values[0] = (double)ms->n / (secs > 1e-9 ? secs : 1e-9);
    return 0;
}

static int
measure_sched(int runs, struct bench_stats *st)
{
    struct sched_ctx s = {0};
    struct sched_measured ms = {.s = &s};
    int err;

    s.w = sim_world_new(cfg.seed);
    if (s.w == NULL) {
        return -ENOMEM;
    }
    sim_world_rng(s.w, SIM_STREAM_WORKLOAD, 0, &s.rng);
    for (int i = 0; i < SCHED_PENDING; i++) {
        sim_schedule(s.w, 1 + sim_rng_below(&s.rng, SCHED_SPAN_NS),
                     sched_tick, &s);
    }
    ms.n = SCHED_EVENTS_PER_RUN;
    err = bench_measure(sched_run, &ms, 1, runs, st);
    if (err == 0) {
        fprintf(stderr, "bench_sim: scheduler: %zu events per run, %d "
                        "pending\n",
                ms.n, SCHED_PENDING);
    }
    sim_world_free(s.w);
    return err;
}

/* ----------------------------------------------------------- the world */

struct world;

struct node {
    struct world *wd;
    uint32_t idx;
    struct sim_host *h;
    struct msgr_stack *st;
    struct msgr *m;
    struct msgr_addrvec addrs;
    struct flow *in; /* the pair this node serves, or NULL */
};

/* One connection: cli streams to srv. */
struct flow {
    struct node *cli, *srv;
    struct msgr_conn *conn;
    uint64_t sent;  /* messages handed to msgr */
    uint64_t recvd; /* messages the server received (in order) */
    uint64_t quota; /* sent may grow up to this in the current run */
    int queued;     /* on the refill list */
};

struct world {
    struct sim_world *w;
    struct msgr_stack *st0; /* whose wait_until runs the world */
    uint32_t nnodes, nflows;
    struct node *nodes;
    struct flow *flows;
    struct flow **refill; /* pairs that want more messages */
    uint32_t nrefill;
    uint32_t connected;   /* flows[0..connected) are connected */
    uint64_t window, low;
    uint64_t total_recvd, target;
    uint64_t bad, faults;
    int closing; /* faults from now on are expected */
    char bad_what[192];
    uint8_t tmpl[MSG_SIZE];
    /* the wall-clock guard of one wait */
    uint64_t polls, wall_deadline;
    int wall_expired;
};

static void fail_msg(struct world *wd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
fail_msg(struct world *wd, const char *fmt, ...)
{
    if (wd->bad++ == 0) {
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(wd->bad_what, sizeof(wd->bad_what), fmt, ap);
        va_end(ap);
    }
}

static void
refill_push(struct world *wd, struct flow *f)
{
    if (!f->queued && f->sent < f->quota) {
        f->queued = 1;
        wd->refill[wd->nrefill++] = f;
    }
}

/* The server's side: in order, exactly once, intact. */
static void
srv_fast_dispatch(void *arg, struct msgr_msg *m)
{
    struct node *n = arg;
    struct world *wd = n->wd;
    struct flow *f = n->in;
    uint64_t idx = f != NULL ? f->recvd : 0, v = 0;
    uint64_t tid = m->hdr.tid;

    if (f == NULL) {
        fail_msg(wd, "osd.%u: a message for a node that serves no pair",
                 n->idx);
    } else if (tid != idx) {
        fail_msg(wd, "osd.%u: expected message %llu, got %llu (%s)", n->idx,
                 (unsigned long long)idx, (unsigned long long)tid,
                 tid > idx ? "lost" : "duplicated or reordered");
    } else if (m->hdr.type != MSGR_MSG_TEST ||
               m->hdr.src.type != MSGR_ENTITY_OSD ||
               m->hdr.src.num != (int64_t)f->cli->idx) {
        fail_msg(wd, "osd.%u: message %llu: type 0x%x from %s.%lld, want "
                     "0x%x from osd.%u",
                 n->idx, (unsigned long long)idx, m->hdr.type,
                 msgr_entity_type_name(m->hdr.src.type),
                 (long long)m->hdr.src.num, MSGR_MSG_TEST, f->cli->idx);
    } else if (m->data.len != MSG_SIZE || m->front.len != 0 ||
               m->middle.len != 0) {
        fail_msg(wd, "osd.%u: message %llu: segments %u/%u/%u bytes, want "
                     "0/0/%d",
                 n->idx, (unsigned long long)idx, m->front.len,
                 m->middle.len, m->data.len, MSG_SIZE);
    } else {
        memcpy(&v, m->data.data, 8);
        if (v != idx || memcmp(m->data.data + 8, wd->tmpl + 8,
                               MSG_SIZE - 8) != 0) {
            fail_msg(wd, "osd.%u: message %llu: payload corrupted", n->idx,
                     (unsigned long long)idx);
        }
    }
    msgr_msg_unref(m);
    if (f == NULL) {
        return;
    }
    f->recvd++;
    wd->total_recvd++;
    if (f->sent - f->recvd <= wd->low) {
        refill_push(wd, f);
    }
}

static int
can_fast(void *arg, const struct msgr_msg *m)
{
    (void)arg;
    (void)m;
    return 1;
}

static int
on_reset(void *arg, struct msgr_conn *c)
{
    struct node *n = arg;

    (void)c;
    if (!n->wd->closing) {
        n->wd->faults++;
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
    struct node *n = arg;

    (void)m;
    (void)c;
    if (!n->wd->closing) {
        if (n->wd->faults++ == 0) {
            fprintf(stderr, "bench_sim: osd.%u: session fault: %s: %s\n",
                    n->idx, what, msgr_strerror(err));
        }
    }
}

/* wait_until's condition: stop for a refill, the end, or the wall clock. */
static int
want_app(void *arg)
{
    struct world *wd = arg;

    if (wd->nrefill > 0 || wd->total_recvd >= wd->target || wd->bad != 0) {
        return 1;
    }
    if ((++wd->polls & WALL_POLL_MASK) == 0 &&
        bench_now_ns() > wd->wall_deadline) {
        wd->wall_expired = 1;
        return 1;
    }
    return 0;
}

static int
all_connected(void *arg)
{
    struct world *wd = arg;

    while (wd->connected < wd->nflows &&
           msgr_conn_is_connected(wd->flows[wd->connected].conn)) {
        wd->connected++;
    }
    if (wd->connected == wd->nflows || wd->faults != 0) {
        return 1;
    }
    if ((++wd->polls & WALL_POLL_MASK) == 0 &&
        bench_now_ns() > wd->wall_deadline) {
        wd->wall_expired = 1;
        return 1;
    }
    return 0;
}

static int
never(void *arg)
{
    (void)arg;
    return 0;
}

/* Runs the world through the stack's wait_until; 1 if cond held. */
static int
world_wait(struct world *wd, int (*cond)(void *), msgr_time_ns timeout)
{
    wd->polls = 0;
    wd->wall_deadline = bench_now_ns() + WALL_LIMIT_NS;
    wd->wall_expired = 0;
    return wd->st0->ops->wait_until(wd->st0, cond, wd, timeout);
}

static void world_close(struct world *wd);

/* nnodes nodes, started; no connection yet. */
static int
world_open(struct world *wd, uint32_t nnodes)
{
    struct msgr_policy pol = msgr_policy_make(MSGR_POLICY_LOSSLESS_PEER, 0);
    int err = 0;

    memset(wd, 0, sizeof(*wd));
    wd->window = cfg.window;
    wd->low = cfg.window / 2;
    for (size_t i = 0; i < MSG_SIZE; i++) {
        wd->tmpl[i] = (uint8_t)(i * 131u + 7u);
    }
    wd->w = sim_world_new(cfg.seed);
    wd->nodes = calloc(nnodes, sizeof(*wd->nodes));
    wd->flows = calloc(nnodes / 2 + 1, sizeof(*wd->flows));
    wd->refill = calloc(nnodes / 2 + 1, sizeof(*wd->refill));
    if (wd->w == NULL || wd->nodes == NULL || wd->flows == NULL ||
        wd->refill == NULL) {
        world_close(wd);
        return -ENOMEM;
    }
    for (uint32_t i = 0; i < nnodes; i++) {
        struct node *n = &wd->nodes[i];
        struct sim_stack_config sc = {.nworkers = 1};
        char name[32];

        n->wd = wd;
        n->idx = i;
        snprintf(name, sizeof(name), "n%u", i);
        /* 10.0.0.1, 10.0.0.2, ... */
        n->h = sim_host_new(wd->w, i + 1, name, 0x0a000001u + i);
        n->st = n->h != NULL ? sim_stack_new(wd->w, n->h, &sc, &err) : NULL;
        if (n->st == NULL) {
            fprintf(stderr, "bench_sim: node %u: %s\n", i,
                    n->h == NULL ? "sim_host_new failed"
                                 : msgr_strerror(err));
            world_close(wd);
            return err < 0 ? err : -ENOMEM;
        }
        wd->nnodes = i + 1;

        struct msgr_config mc = {.name = {MSGR_ENTITY_OSD, i},
                                 .stack = n->st,
                                 .nonce = 1000 + (uint64_t)i};
        struct msgr_tracer tr = {.arg = n, .fault = on_fault};
        struct msgr_dispatcher d = {.arg = n,
                                    .ms_can_fast_dispatch = can_fast,
                                    .ms_fast_dispatch = srv_fast_dispatch,
                                    .ms_handle_reset = on_reset,
                                    .ms_handle_remote_reset =
                                        on_remote_reset};
        struct msgr_addr a;

        n->m = msgr_create(&mc, &err);
        if (n->m == NULL) {
            fprintf(stderr, "bench_sim: node %u: msgr_create: %s\n", i,
                    msgr_strerror(err));
            world_close(wd);
            return err < 0 ? err : -ENOMEM;
        }
        msgr_set_default_policy(n->m, &pol);
        msgr_set_policy(n->m, MSGR_ENTITY_OSD, &pol);
        msgr_set_tracer(n->m, &tr);
        sim_host_addr(n->h, PORT, &a);
        if ((err = msgr_bind(n->m, &a)) < 0 ||
            (err = msgr_start(n->m)) < 0 ||
            (err = msgr_add_dispatcher(n->m, &d)) < 0) {
            fprintf(stderr, "bench_sim: node %u: bind/start: %s\n", i,
                    msgr_strerror(err));
            world_close(wd);
            return err;
        }
        msgr_get_myaddrs(n->m, &n->addrs);
    }
    wd->st0 = wd->nodes[0].st;
    /* let whatever starting posted run */
    world_wait(wd, never, 1 * MSGR_NS_PER_MS);
    return 0;
}

/* Pairs: osd.2k dials osd.2k+1; waits until every session is up. */
static int
world_connect(struct world *wd)
{
    int err = 0;

    for (uint32_t k = 0; k + 1 < wd->nnodes; k += 2) {
        struct flow *f = &wd->flows[wd->nflows];

        f->cli = &wd->nodes[k];
        f->srv = &wd->nodes[k + 1];
        f->srv->in = f;
        f->conn = msgr_get_connection(f->cli->m, MSGR_ENTITY_OSD,
                                      &f->srv->addrs, &err);
        if (f->conn == NULL) {
            fprintf(stderr, "bench_sim: osd.%u -> osd.%u: %s\n", f->cli->idx,
                    f->srv->idx, msgr_strerror(err));
            return err < 0 ? err : -ENOTCONN;
        }
        wd->nflows++;
    }
    if (!world_wait(wd, all_connected, STALL_NS) ||
        wd->connected != wd->nflows || wd->faults != 0) {
        fprintf(stderr, "bench_sim: %u of %u sessions came up (%llu "
                        "faults%s); the next is %s\n",
                wd->connected, wd->nflows, (unsigned long long)wd->faults,
                wd->wall_expired ? ", wall-clock limit" : "",
                wd->connected < wd->nflows
                    ? msgr_conn_state_name(wd->flows[wd->connected].conn)
                    : "-");
        return -ETIMEDOUT;
    }
    return 0;
}

static void
world_close(struct world *wd)
{
    wd->closing = 1;
    for (uint32_t i = 0; i < wd->nflows; i++) {
        if (wd->flows[i].conn != NULL) {
            msgr_conn_unref(wd->flows[i].conn);
        }
    }
    for (uint32_t i = 0; i < wd->nnodes; i++) {
        if (wd->nodes[i].m != NULL) {
            msgr_shutdown(wd->nodes[i].m);
        }
    }
    for (uint32_t i = 0; i < wd->nnodes; i++) {
        if (wd->nodes[i].m != NULL) {
            msgr_wait(wd->nodes[i].m);
        }
    }
    for (uint32_t i = 0; i < wd->nnodes; i++) {
        msgr_destroy(wd->nodes[i].m);
        if (wd->nodes[i].st != NULL) {
            msgr_stack_unref(wd->nodes[i].st);
        }
    }
    if (wd->w != NULL) {
        sim_world_free(wd->w);
    }
    free(wd->nodes);
    free(wd->flows);
    free(wd->refill);
    memset(wd, 0, sizeof(*wd));
}

/* ------------------------------------------------------------ messages */

static int
flow_send(struct world *wd, struct flow *f)
{
    while (f->sent < f->quota && f->sent - f->recvd < wd->window) {
        struct msgr_msg *m = msgr_msg_new(MSGR_MSG_TEST, 0, 0, MSG_SIZE);
        uint64_t idx = f->sent;
        int err;

        if (m == NULL) {
            return -ENOMEM;
        }
        memcpy(m->data.data, wd->tmpl, MSG_SIZE);
        memcpy(m->data.data, &idx, 8);
        m->hdr.tid = idx;
        err = msgr_conn_send_message(f->conn, m);
        if (err != 0) {
            msgr_msg_unref(m);
            fprintf(stderr, "bench_sim: osd.%u: send: %s\n", f->cli->idx,
                    msgr_strerror(err));
            return err;
        }
        f->sent++;
    }
    return 0;
}

static int
run_failed(struct world *wd, int err, uint32_t at_flow)
{
    if (wd->bad != 0) {
        fprintf(stderr, "bench_sim: BAD: %s (%llu messages failed "
                        "verification)\n",
                wd->bad_what, (unsigned long long)wd->bad);
        err = -EPROTO;
    }
    if (wd->faults != 0) {
        fprintf(stderr, "bench_sim: %llu session fault(s) or reset(s)\n",
                (unsigned long long)wd->faults);
    }
    if (wd->wall_expired) {
        fprintf(stderr, "bench_sim: one wait ran %llu s of wall time "
                        "without an end\n",
                (unsigned long long)(WALL_LIMIT_NS / 1000000000ull));
    }
    if (at_flow < wd->nflows) {
        struct flow *f = &wd->flows[at_flow];

        fprintf(stderr, "bench_sim: osd.%u -> osd.%u: %llu sent, %llu "
                        "received, quota %llu; session %s\n",
                f->cli->idx, f->srv->idx, (unsigned long long)f->sent,
                (unsigned long long)f->recvd, (unsigned long long)f->quota,
                msgr_conn_state_name(f->conn));
    }
    fprintf(stderr, "bench_sim: %u nodes: run failed (%s): %llu of %llu "
                    "messages delivered, simulated time %.6f s\n",
            wd->nnodes, strerror(-err), (unsigned long long)wd->total_recvd,
            (unsigned long long)wd->target,
            (double)sim_now(wd->w) / 1e9);
    return err;
}

struct msgs_result {
    double secs, sim_secs;
    uint64_t msgs, events;
};

/*
 * About n messages (a whole number per pair), window-limited per pair;
 * every one delivered and verified, or an error.
 */
static int
msgs_once(struct world *wd, size_t n, struct msgs_result *r)
{
    uint64_t per = (n + wd->nflows - 1) / wd->nflows;
    uint64_t e0 = sim_events_run(wd->w);
    msgr_time_ns s0 = sim_now(wd->w);
    uint64_t t0;
    int err;

    if (per == 0) {
        per = 1;
    }
    wd->target = wd->total_recvd + per * wd->nflows;
    wd->nrefill = 0;
    for (uint32_t i = 0; i < wd->nflows; i++) {
        wd->flows[i].quota += per;
        wd->flows[i].queued = 0;
    }
    t0 = bench_now_ns();
    for (uint32_t i = 0; i < wd->nflows; i++) {
        refill_push(wd, &wd->flows[i]);
    }
    for (;;) {
        while (wd->nrefill > 0) {
            struct flow *f = wd->refill[--wd->nrefill];

            f->queued = 0;
            if ((err = flow_send(wd, f)) != 0) {
                return run_failed(wd, err, (uint32_t)(f - wd->flows));
            }
        }
        if (wd->total_recvd >= wd->target) {
            break;
        }
        if (!world_wait(wd, want_app, STALL_NS) || wd->wall_expired ||
            wd->bad != 0 || wd->faults != 0) {
            uint32_t i = 0;

            while (i < wd->nflows && wd->flows[i].recvd == wd->flows[i].quota)
                i++;
            return run_failed(wd, wd->bad != 0 ? -EPROTO : -ETIMEDOUT, i);
        }
    }
    r->secs = (double)(bench_now_ns() - t0) / 1e9;
    r->sim_secs = (double)(sim_now(wd->w) - s0) / 1e9;
    r->msgs = per * wd->nflows;
    r->events = sim_events_run(wd->w) - e0;
    /* every pair got all it was sent, nothing more */
    for (uint32_t i = 0; i < wd->nflows; i++) {
        struct flow *f = &wd->flows[i];

        if (f->recvd != f->quota || f->sent != f->quota) {
            fail_msg(wd, "pair %u: %llu received, %llu sent, %llu wanted", i,
                     (unsigned long long)f->recvd,
                     (unsigned long long)f->sent,
                     (unsigned long long)f->quota);
            return run_failed(wd, -EPROTO, i);
        }
    }
    if (wd->total_recvd != wd->target || wd->faults != 0) {
        return run_failed(wd, -EPROTO, wd->nflows);
    }
    return 0;
}

struct msgs_measured {
    struct world *wd;
    size_t n;
};

static int
msgs_run(void *arg, double *values)
{
    struct msgs_measured *ms = arg;
    struct msgs_result r = {0};
    int err = msgs_once(ms->wd, ms->n, &r);

    if (err != 0) {
        return err;
    }
    if (r.secs <= 0) {
        r.secs = 1e-9;
    }
    values[0] = (double)r.msgs / r.secs;
    values[1] = r.sim_secs / r.secs;
    values[2] = (double)r.events / (double)r.msgs;
    return 0;
}

/* st[0..2]: msgs/s, simulated s per wall s, events per message. */
static int
measure_msgs(uint32_t nnodes, size_t per_pair, int runs,
             struct bench_stats st[3])
{
    struct world wd;
    struct msgs_measured ms = {.wd = &wd, .n = per_pair * (nnodes / 2)};
    uint64_t t0 = bench_now_ns();
    double setup;
    int err;

    err = world_open(&wd, nnodes);
    if (err != 0) {
        return err;
    }
    err = world_connect(&wd);
    setup = (double)(bench_now_ns() - t0) / 1e9;
    if (err == 0) {
        err = bench_measure(msgs_run, &ms, 3, runs, st);
    }
    if (err == 0 && (wd.bad != 0 || wd.faults != 0)) {
        err = run_failed(&wd, -EPROTO, wd.nflows);
    }
    if (err == 0) {
        fprintf(stderr,
                "bench_sim: %u nodes, %u sessions up in %.2f s wall; %zu "
                "messages per run, window %llu; %llu messages verified, "
                "simulated time %.3f s\n",
                nnodes, wd.nflows, setup, ms.n,
                (unsigned long long)wd.window,
                (unsigned long long)wd.total_recvd,
                (double)sim_now(wd.w) / 1e9);
    }
    t0 = bench_now_ns();
    world_close(&wd);
    if (err == 0) {
        fprintf(stderr, "bench_sim: %u nodes torn down in %.2f s wall\n",
                nnodes, (double)(bench_now_ns() - t0) / 1e9);
    }
    return err;
}

/* -------------------------------------------------------------- memory */

static double
heap_bytes(void)
{
    struct mallinfo2 mi = mallinfo2();

    return (double)mi.uordblks + (double)mi.hblkhd;
}

static double
rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size = 0, rss = 0;

    if (f == NULL) {
        return 0;
    }
    if (fscanf(f, "%lu %lu", &size, &rss) != 2) {
        rss = 0;
    }
    fclose(f);
    return (double)rss * (double)sysconf(_SC_PAGESIZE);
}

/*
 * values: heap per fresh idle conn, RSS per fresh idle conn, heap per
 * idle node, heap per conn idle again after a burst of traffic.
 */
static int
mem_run(void *arg, double *values)
{
    struct world wd;
    struct msgs_result r;
    double h0, h1, r1, h2, r2, h3;
    int err;

    (void)arg;
    malloc_trim(0);
    h0 = heap_bytes();
    err = world_open(&wd, MEM_NODES);
    if (err != 0) {
        return err;
    }
    world_wait(&wd, never, IDLE_SETTLE_NS);
    h1 = heap_bytes();
    r1 = rss_bytes();
    err = world_connect(&wd);
    if (err == 0) {
        world_wait(&wd, never, IDLE_SETTLE_NS);
        h2 = heap_bytes();
        r2 = rss_bytes();
        /* a burst (MEM_BURST messages per pair, windowed), then quiet */
        err = msgs_once(&wd, (size_t)MEM_BURST * wd.nflows, &r);
    }
    if (err == 0) {
        world_wait(&wd, never, IDLE_SETTLE_NS);
        h3 = heap_bytes();
        if (wd.faults != 0 || wd.bad != 0) {
            err = run_failed(&wd, -EPROTO, wd.nflows);
        }
    }
    if (err == 0) {
        values[0] = (h2 - h1) / wd.nflows;
        values[1] = (r2 - r1) / wd.nflows;
        values[2] = (h1 - h0) / wd.nnodes;
        values[3] = (h3 - h1) / wd.nflows;
    }
    world_close(&wd);
    return err;
}

/* ---------------------------------------------------------------- main */

static int
selected(const char *label)
{
    return cfg.only == NULL || strstr(label, cfg.only) != NULL;
}

static int
failed(struct bench_out *out, const char *what, int err)
{
    fprintf(stderr, "bench_sim: %s FAILED: %s\n", what, strerror(-err));
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

        if (strcmp(a, "--window") == 0 && v != NULL) {
            long w = atol(v);

            if (w < 2 || w > 1000000) {
                fprintf(stderr, "bench_sim: --window 2..1000000\n");
                return -EINVAL;
            }
            cfg.window = (uint64_t)w;
            i++;
        } else if (strcmp(a, "--seed") == 0 && v != NULL) {
            cfg.seed = strtoull(v, NULL, 0);
            i++;
        } else if (strcmp(a, "--only") == 0 && v != NULL) {
            cfg.only = v;
            i++;
        } else if (strcmp(a, "--no-baseline") == 0) {
            cfg.no_baseline = 1;
        } else {
            argv[j++] = argv[i];
        }
    }
    *argc = j;
    argv[j] = NULL;
    return 0;
}

static void
row(struct bench_out *out, const char *bench, const char *case_name,
    const char *metric, const char *unit, const struct bench_stats *st,
    const char *baseline, double baseline_value)
{
    bench_out_row(out, &(struct bench_row){.bench = bench,
                                           .case_name = case_name,
                                           .metric = metric,
                                           .unit = unit,
                                           .stats = st,
                                           .baseline = baseline,
                                           .baseline_value = baseline_value});
}

static const uint32_t msg_nodes[] = {2, 100, 1000};
/* messages per pair and run (see SCHED_EVENTS_PER_RUN) */
static const size_t msg_per_pair[] = {1600 * 1000, 16384, 1280};
#define N_CONFIGS (sizeof(msg_nodes) / sizeof(msg_nodes[0]))

int
main(int argc, char **argv)
{
    struct bench_opts opts;
    struct bench_out out;
    struct bench_stats sched = {0};
    struct bench_stats mem[4];
    struct bench_stats st[N_CONFIGS][3];
    int have_sched = 0, have_2n = 0;
    int err;

    if (parse_own_opts(&argc, argv) != 0) {
        return 2;
    }
    err = bench_opts_parse(argc, argv,
                           "The simulator: the scheduler alone, 64 B "
                           "messages through msgr2 on 2/100/1000 simulated "
                           "nodes, memory per idle node and connection.",
                           &opts);
    if (err != 0) {
        if (err > 0) {
            printf("  --window N  messages in flight per connection "
                   "(default %d)\n"
                   "  --seed N    the world's seed\n"
                   "  --only TEXT only the cases whose label contains "
                   "TEXT; labels:\n"
                   "              sched msgs-2n msgs-100n msgs-1000n mem\n"
                   "              (a message row's baseline is measured "
                   "whenever it runs)\n"
                   "  --no-baseline  skip the baselines (to profile one "
                   "case; rows then\n"
                   "              have no ratio)\n",
                   WINDOW_DEFAULT);
        }
        return err > 0 ? 0 : 2;
    }
    if (bench_out_open(&out, opts.out_path) != 0) {
        return 74; /* EX_IOERR */
    }

    /* the scheduler alone: also the 2-node rows' baseline */
    if (selected("sched") || (selected("msgs-2n") && !cfg.no_baseline)) {
        err = measure_sched(opts.runs, &sched);
        if (err != 0) {
            return failed(&out, "sched", err);
        }
        have_sched = 1;
        row(&out, "sim_sched", "1024 pending", "events_per_s", "1/s", &sched,
            NULL, 0);
    }

    for (size_t c = 0; c < N_CONFIGS; c++) {
        char label[32], case_name[64];
        int big = c > 0;

        snprintf(label, sizeof(label), "msgs-%un", msg_nodes[c]);
        /* the larger worlds' baseline is the 2-node world */
        if (!selected(label) &&
            !(c == 0 && !cfg.no_baseline &&
              (selected("msgs-100n") || selected("msgs-1000n")))) {
            continue;
        }
        err = measure_msgs(msg_nodes[c], msg_per_pair[c], opts.runs, st[c]);
        if (err != 0) {
            return failed(&out, label, err);
        }
        if (c == 0) {
            have_2n = 1;
        }
        if (!selected(label)) {
            continue;
        }
        snprintf(case_name, sizeof(case_name), "%un lossless_peer vs %s",
                 msg_nodes[c], big ? "2n" : "sched");
        row(&out, "sim_msgr_64B", case_name, "msgs_per_s", "1/s", &st[c][0],
            big ? (have_2n ? "sim_msgr_64B 2n" : NULL)
                : (have_sched ? "sim_sched 1024 pending" : NULL),
            big ? st[0][0].median : sched.median);
        row(&out, "sim_msgr_64B", case_name, "sim_s_per_s", "s/s", &st[c][1],
            big && have_2n ? "sim_msgr_64B 2n" : NULL,
            big ? st[0][1].median : 0);
        snprintf(case_name, sizeof(case_name), "%un lossless_peer",
                 msg_nodes[c]);
        row(&out, "sim_msgr_64B", case_name, "events_per_msg", "1", &st[c][2],
            NULL, 0);
    }

    if (selected("mem")) {
        err = bench_measure(mem_run, NULL, 4, opts.runs, mem);
        if (err != 0) {
            return failed(&out, "mem", err);
        }
        if (mem[2].median <= 0) {
            fprintf(stderr, "bench_sim: mallinfo2() counted nothing (not "
                            "glibc's malloc? a sanitizer?): heap figures "
                            "are 0\n");
        }
        row(&out, "sim_mem", "500 idle conns, heap", "B_per_conn", "B",
            &mem[0], NULL, 0);
        row(&out, "sim_mem", "500 idle conns, RSS", "B_per_conn", "B",
            &mem[1], NULL, 0);
        row(&out, "sim_mem", "500 used+idle conns, heap", "B_per_conn", "B",
            &mem[3], NULL, 0);
        row(&out, "sim_mem", "1000 idle nodes, heap", "B_per_node", "B",
            &mem[2], NULL, 0);
    }
    bench_out_close(&out);
    return 0;
}
