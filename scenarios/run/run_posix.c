/*
 * The runner's second environment: real messengers on real sockets on
 * loopback, in wall-clock time (CLOCK_MONOTONIC from the run's start).
 *
 * Every node is its own messenger on its own posix stack (workers from the
 * plan, default 2), wrapped in the fault layer, listening on 127.0.0.1 at
 * a free port of a range picked per process. Faults are the fault layer's
 * (msgr/fault.h), kill and crash act on the node's stack, pause blocks the
 * node's workers. scenarios/ is not under the determinism rule: this file
 * may read the clock, sleep and use threads.
 *
 * Which sockets a fault between A and B reaches: the fault layer knows a
 * socket's peer by the address it connected to, or by what accept()
 * reported, which for loopback is 127.0.0.1 and the connector's ephemeral
 * port. So an entry "peer B" on A's stack reaches exactly the sockets A
 * opened to B, never those B opened to A. The runner therefore sets every
 * fault on both ends (A's entry for B, B's entry for A): each socket
 * between them is then reached at its connecting end, and the fault acts
 * on that end's I/O:
 *  - partition A -> B: A's writes to B stop (DIR_OUT on A's entry) and
 *    B's reads from A stop (DIR_IN on B's entry): exact on every socket;
 *  - reset (once): every socket is reset at both ends: exact;
 *  - reset prob P: socket_failures N = 1/P on both entries (one injected
 *    shutdown in about N I/O calls of those sockets);
 *  - delay A -> B T: a recv delay of T (jitter is not modelled; order is
 *    kept). Exact on sockets B opened; on sockets A opened it holds back
 *    A's reads of B's bytes instead (acks and replies), so the round trip
 *    still grows by T;
 *  - corrupt A -> B P: corrupt_ppm P on reads (per read, not per segment),
 *    exact on sockets B opened, the reverse direction on those A opened;
 *    either way the messenger's CRC must fault the connection;
 *  - drop A -> B P: loss cannot exist on TCP; what the messenger sees is
 *    delay and stalls, so writes are congested: one in N goes through,
 *    N = 1/(1-P) (at least 2), each congestion holding the socket for up
 *    to 200 ms x P (a retransmission stall). Exact on sockets A opened,
 *    the reverse direction on those B opened;
 *  - bandwidth A -> B R: pacing approximated by congestion too: one write
 *    in 2 passes, a congestion holds for up to twice the time 64 KiB take
 *    at R (same ends as drop);
 *  - blackhole: the messenger's rule, as on the sim;
 *  - kill: every socket of the node is reset and silenced, then its
 *    messenger is torn down (shutdown, wait, destroy): peers see RST or
 *    EOF, and connects are refused until it restarts on the same port;
 *  - crash: the node is partitioned from everyone in both directions (its
 *    stack's entry for all sockets): silence until it restarts;
 *  - pause T: every worker of the node's stack runs a closure that sleeps
 *    T: nothing is read, written or dispatched, sockets stay open.
 *
 * Posix runs are not bit-reproducible: the fingerprint hashes what is
 * deterministic (the file, the seed, the verdicts and the exit code).
 */
#include "run_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define RN_POSIX_WORKERS 2
#define RN_POSIX_PORT_LO 20000u
#define RN_POSIX_PORT_RANGES 40u /* ranges of 1000 ports above PORT_LO */

static uint64_t
mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * RN_NS_S + (uint64_t)ts.tv_nsec;
}

static int
px_setup(struct rn *r)
{
    pthread_mutexattr_t ma;
    pthread_condattr_t ca;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ERRORCHECK);
    pthread_mutex_init(&r->mu, &ma);
    pthread_mutexattr_destroy(&ma);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&r->cv, &ca);
    pthread_condattr_destroy(&ca);
    r->threaded = true;
    r->t0_ns = mono_ns();
    /* runs in parallel (ctest -j) bind in different ranges; a port taken
     * anyway is skipped by the messenger's scan */
    r->port_base = RN_POSIX_PORT_LO +
                   1000u * ((uint64_t)getpid() % RN_POSIX_PORT_RANGES);
    for (uint32_t i = 0; i < r->n; i++)
        r->nodes[i].ipv4 = 0x7f000001u;
    return 0;
}

static void
px_teardown(struct rn *r)
{
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    r->threaded = false;
}

static uint64_t
px_now(struct rn *r)
{
    return mono_ns() - r->t0_ns;
}

static void
px_advance(struct rn *r, uint64_t until)
{
    uint64_t abs = r->t0_ns + until;
    struct timespec ts = {.tv_sec = (time_t)(abs / RN_NS_S),
                          .tv_nsec = (long)(abs % RN_NS_S)};
    while (!r->internal_error && px_now(r) < until && !rn_due_now(r)) {
        int e = pthread_cond_timedwait(&r->cv, &r->mu, &ts);
        if (e == ETIMEDOUT)
            break;
    }
}

static void
px_wake(struct rn *r)
{
    pthread_cond_signal(&r->cv);
}

/* The value of `config KEY` for node i (the last statement wins). */
static bool
px_config(struct rn *r, uint32_t i, enum scn_config_key key, uint64_t *out)
{
    bool found = false;
    for (uint32_t k = 0; k < r->p->n_configs; k++) {
        const struct scn_config *c = &r->p->configs[k];
        if (c->key == key && scn_set_has(&c->nodes, i)) {
            *out = c->value;
            found = true;
        }
    }
    return found;
}

static int
px_node_stack(struct rn *r, struct rn_node *nd, uint32_t workers)
{
    int err = 0;
    uint64_t v = 0;
    struct msgr_stack_config sc = {
        .nworkers = workers ? (int)workers : RN_POSIX_WORKERS};
    struct msgr_stack *inner = msgr_stack_create("posix", &sc, &err);
    if (!inner) {
        rn_internal(r, "%s: cannot create its posix stack: %s",
                    nd->decl->name, strerror(-err));
        return err;
    }
    struct msgr_fault_config fc;
    memset(&fc, 0, sizeof(fc));
    if (px_config(r, nd->idx, SCN_CONFIG_INJECT_SOCKET_FAILURES, &v))
        fc.socket_failures = (uint32_t)v;
    if (px_config(r, nd->idx, SCN_CONFIG_INJECT_INTERNAL_DELAYS, &v))
        fc.internal_delay_ns = v;
    nd->st = msgr_fault_stack_new(inner, &fc, &err);
    msgr_stack_unref(inner); /* the fault stack holds its own */
    if (!nd->st) {
        rn_internal(r, "%s: cannot create the fault layer: %s",
                    nd->decl->name, strerror(-err));
        return err;
    }
    nd->sim_st = NULL;
    return 0;
}

/* Loopback only: the port the node had (a restart keeps it) or any free
 * one of the range. */
static void
px_node_addr(struct rn *r, struct rn_node *nd, struct msgr_addr *a)
{
    (void)r;
    memset(a, 0, sizeof(*a));
    msgr_addr_parse("v2:127.0.0.1:0", a);
    a->port = nd->addrs.n ? nd->addrs.v[0].port : 0;
}

static void
px_fp_tracer(struct rn *r, struct msgr_tracer *out)
{
    (void)r;
    memset(out, 0, sizeof(*out));
}

static void
px_kill(struct rn *r, struct rn_node *nd)
{
    struct msgr_stack *st = nd->st;
    if (!st)
        return;
    /* every socket resets; nothing more goes out while it is torn down */
    RN_CALL(r, msgr_fault_reset(st, NULL);
            msgr_fault_partition(st, NULL, MSGR_FAULT_DIR_BOTH));
}

static void
px_crash(struct rn *r, struct rn_node *nd)
{
    struct msgr_stack *st = nd->st;
    if (st)
        RN_CALL(r, msgr_fault_partition(st, NULL, MSGR_FAULT_DIR_BOTH));
}

static void
px_revive(struct rn *r, struct rn_node *nd)
{
    /* the old stack went with the old messenger: the new one is clean */
    (void)r;
    (void)nd;
}

static void
px_pair_fault(struct rn *r, const struct scn_action *a, uint32_t s,
              uint32_t d, struct rn_fault *f)
{
    (void)f;
    if (a->kind == SCN_ACT_RESET && !a->has_prob) {
        struct rn_node *x = &r->nodes[s], *y = &r->nodes[d];
        if (!x->st || !y->st || !x->addrs.n || !y->addrs.n)
            return;
        struct msgr_addr ax = x->addrs.v[0], ay = y->addrs.v[0];
        RN_CALL(r, msgr_fault_reset(x->st, &ay); msgr_fault_reset(y->st, &ax));
        return;
    }
    rn_posix_refresh(r);
}

struct px_pause {
    uint64_t ns;
};

static void
pause_cb(void *arg)
{
    struct px_pause *pp = arg;
    struct timespec ts = {.tv_sec = (time_t)(pp->ns / RN_NS_S),
                          .tv_nsec = (long)(pp->ns % RN_NS_S)};
    free(pp);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static void
px_pause(struct rn *r, uint32_t i, uint64_t for_ns, struct rn_fault *f)
{
    struct msgr_stack *st = r->nodes[i].st;
    f->active = true; /* heals by time (heal_at) */
    if (!st || !r->nodes[i].up)
        return;
    rn_unlock(r);
    for (int w = 0; w < st->nworkers; w++) {
        struct px_pause *pp = malloc(sizeof(*pp));
        if (!pp)
            abort();
        pp->ns = for_ns;
        if (st->ops->post(st->workers[w], pause_cb, pp) < 0)
            free(pp);
    }
    rn_lock(r);
}

static void
px_heal(struct rn *r, struct rn_fault *f)
{
    (void)f;
    rn_posix_refresh(r);
}

static bool
px_fault_over(struct rn *r, struct rn_fault *f)
{
    (void)r;
    (void)f;
    return true;
}

static uint64_t
px_progress(struct rn *r)
{
    /* bytes only grow: the sum stands still iff nothing moved */
    uint64_t sum = 0;
    for (uint32_t i = 0; i < r->n; i++) {
        struct rn_node *nd = &r->nodes[i];
        if (!nd->m)
            continue;
        struct msgr_perf pf;
        msgr_get_perf(nd->m, &pf); /* relaxed atomics, no lock */
        sum += pf.bytes_in + pf.bytes_out;
    }
    /* a new incarnation restarts its counters: mix in who is up */
    for (uint32_t i = 0; i < r->n; i++)
        sum += (uint64_t)r->nodes[i].incarnation << 48;
    return sum;
}

static uint64_t
fnv(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static uint64_t
px_fingerprint(struct rn *r, int exit_code)
{
    uint64_t h = 0xcbf29ce484222325ull;
    if (r->src)
        h = fnv(h, r->src, r->src_len);
    h = fnv(h, &r->seed, sizeof(r->seed));
    for (uint32_t i = 0; i < r->p->n_expects; i++) {
        uint8_t held = r->verdicts[i].held;
        h = fnv(h, &held, 1);
    }
    int32_t c = exit_code;
    return fnv(h, &c, sizeof(c));
}

static uint64_t
px_events(struct rn *r)
{
    (void)r;
    return 0;
}

const struct rn_env rn_env_posix = {
    .name = "posix",
    .setup = px_setup,
    .teardown = px_teardown,
    .now = px_now,
    .advance = px_advance,
    .wake = px_wake,
    .node_stack = px_node_stack,
    .node_addr = px_node_addr,
    .fp_tracer = px_fp_tracer,
    .host_kill = px_kill,
    .host_crash = px_crash,
    .host_revive = px_revive,
    .pair_fault = px_pair_fault,
    .pause = px_pause,
    .heal = px_heal,
    .fault_over = px_fault_over,
    .net_progress = px_progress,
    .fingerprint = px_fingerprint,
    .events = px_events,
};

/* ------------------------------------------------- fault-layer entries */

static void
min_nonzero(uint32_t *n, uint32_t v)
{
    if (v && (!*n || v < *n))
        *n = v;
}

static void
max_u64(msgr_time_ns *x, uint64_t v)
{
    if (v > *x)
        *x = v;
}

/* What fault f means for the sockets node `me` opened to the other end of
 * the direction src -> dst (me is src or dst). */
static void
end_config(const struct rn_fault *f, bool me_sends,
           struct msgr_fault_config *c)
{
    switch (f->kind) {
    case SCN_FAULT_PARTITION:
        c->partition |= me_sends ? MSGR_FAULT_DIR_OUT : MSGR_FAULT_DIR_IN;
        break;
    case SCN_FAULT_RESET:
        /* one failure in about 1/P operations */
        if (f->ppm)
            min_nonzero(&c->socket_failures,
                        f->ppm >= 1000000u ? 1u : 1000000u / f->ppm);
        break;
    case SCN_FAULT_DELAY:
        max_u64(&c->recv_delay_ns, f->delay_ns);
        break;
    case SCN_FAULT_CORRUPT:
        if (f->ppm > c->corrupt_ppm)
            c->corrupt_ppm = f->ppm;
        break;
    case SCN_FAULT_DROP: {
        uint32_t keep = f->ppm < 1000000u ? 1000000u - f->ppm : 1u;
        uint32_t n = (1000000u + keep / 2) / keep;
        min_nonzero(&c->network_congestion, n < 2 ? 2 : n);
        max_u64(&c->congestion_hold_ns, 200 * RN_NS_MS / 1000000u * f->ppm);
        break;
    }
    case SCN_FAULT_BANDWIDTH:
        if (f->bps) {
            min_nonzero(&c->network_congestion, 2);
            max_u64(&c->congestion_hold_ns,
                    2 * 65536ull * 8 * RN_NS_S / f->bps);
        }
        break;
    default:
        break;
    }
}

static bool
config_zero(const struct msgr_fault_config *c)
{
    static const struct msgr_fault_config zero;
    return !memcmp(c, &zero, sizeof(zero));
}

void
rn_posix_refresh(struct rn *r)
{
    for (uint32_t i = 0; i < r->n; i++) {
        struct rn_node *me = &r->nodes[i];
        if (!me->st || !me->m)
            continue;
        for (uint32_t k = 0; k < r->n; k++) {
            struct rn_node *peer = &r->nodes[k];
            if (k == i || !peer->nports)
                continue;
            struct msgr_fault_config c;
            memset(&c, 0, sizeof(c));
            for (uint32_t j = 0; j < r->nfaults; j++) {
                const struct rn_fault *f = &r->faults[j];
                if (!f->active || f->a == f->b)
                    continue;
                if (f->a == i && f->b == k)
                    end_config(f, true, &c);
                else if (f->a == k && f->b == i)
                    end_config(f, false, &c);
                if (f->both_ways && f->b == i && f->a == k)
                    end_config(f, true, &c);
                else if (f->both_ways && f->b == k && f->a == i)
                    end_config(f, false, &c);
            }
            struct msgr_stack *st = me->st;
            for (uint32_t p = 0; p < peer->nports; p++) {
                struct msgr_addr a;
                msgr_addr_parse("v2:127.0.0.1:0", &a);
                a.port = peer->ports[p];
                bool cur = peer->addrs.n && peer->addrs.v[0].port == a.port;
                if (cur && !config_zero(&c))
                    RN_CALL(r, msgr_fault_set(st, &a, &c));
                else
                    RN_CALL(r, msgr_fault_clear(st, &a));
            }
        }
    }
}
