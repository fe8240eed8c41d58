/*
 * The fault layer (msgr/stack/fault) over the simulated stack: every
 * fault lands at a virtual instant drawn from the seed, so each check is
 * exact and repeatable. Stack-level cases drive sockets through the seam
 * the way test_sim_tcp.c does (callbacks only record; the assertions are
 * made after); the last cases run two messengers over fault-wrapped sim
 * stacks with Ceph's SyntheticInjectTest settings.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "msgr/fault.h"
#include "msgr/msgr.h"
#include "msgr/stack.h"
#include "sim/sim.h"
#include "sim_internal.h"

#define S_NS  MSGR_NS_PER_S
#define MS_NS MSGR_NS_PER_MS
#define US_NS MSGR_NS_PER_US
#define MAXEP 8
#define PORT  6800
#define IP1   0x0a000001u
#define IP2   0x0a000002u
#define IP3   0x0a000003u

struct fx;

struct ep {
    struct fx *fx;
    struct msgr_stack *st; /* the fault stack */
    struct msgr_socket *s;
    /* sending */
    const uint8_t *tx;
    size_t tx_len, tx_off, write_chunk;
    int close_after_tx;
    /* receiving */
    uint8_t *rx;
    size_t rx_cap, rx_len;
    int close_on_eof;
    /* what happened */
    int connected, conn_err, eof, err, wr_err, closed;
    unsigned ncb;
    uint64_t nreadv, nwritev, eagain_r, eagain_w;
    msgr_time_ns t_conn, t_first_rx, t_rx_done, t_eof, t_err, t_closed;
    int fail_on_write; /* the first error came from writev */
};

struct fx {
    struct sim_world *w;
    struct sim_host *h1, *h2, *h3;
    struct msgr_stack *in1, *in2, *in3; /* sim stacks */
    struct msgr_stack *f1, *f2, *f3;    /* fault stacks over them */
    struct msgr_listener *l;
    int accept_to; /* worker of f2 that accepted sockets go to */
    struct ep srv_tmpl;
    struct ep srv[MAXEP];
    int nsrv;
    struct ep cli[MAXEP];
};

/* Runs stmt "on" worker 0 of fault stack st (its inner sim worker). */
#define ON(st, stmt)                                                        \
    do {                                                                    \
        struct msgr_worker *on_w_ = msgr_fault_inner_worker((st)->workers[0]); \
        sim__worker_enter(on_w_);                                           \
        stmt;                                                               \
        sim__worker_leave(on_w_);                                           \
    } while (0)

static uint8_t
pat(size_t i)
{
    uint64_t x = (i + 1) * 0x9e3779b97f4a7c15ull;

    return (uint8_t)(x >> 56);
}

static uint8_t *
pattern_buf(size_t n)
{
    uint8_t *b = malloc(n);

    assert_non_null(b);
    for (size_t i = 0; i < n; i++)
        b[i] = pat(i);
    return b;
}

static msgr_time_ns
now(struct fx *fx)
{
    return sim_now(fx->w);
}

/* ------------------------------------------------------------------ ep */

static void ep_io_cb(struct msgr_socket *s, unsigned events, void *arg);

static void
ep_want(struct ep *e)
{
    unsigned want = 0;

    if (e->closed)
        return;
    if (!e->connected) {
        want = e->conn_err ? 0 : MSGR_IO_WRITE;
    } else if (!e->err) {
        if (!e->eof)
            want |= MSGR_IO_READ;
        if (e->tx_off < e->tx_len && !e->wr_err)
            want |= MSGR_IO_WRITE;
    }
    e->st->ops->io_want(e->s, want);
}

static void
ep_close(struct ep *e, int abortive)
{
    if (e->closed || !e->s)
        return;
    e->st->ops->close(e->s, abortive);
    e->closed = 1;
    e->t_closed = now(e->fx);
    e->s = NULL;
}

static void
ep_set_err(struct ep *e, int err, int writing)
{
    if (e->err)
        return;
    e->err = err;
    e->t_err = now(e->fx);
    e->fail_on_write = writing;
}

static void
ep_read(struct ep *e)
{
    for (;;) {
        uint8_t tmp[3000];
        struct iovec iov[2];
        ssize_t n;

        iov[0].iov_base = tmp;
        iov[0].iov_len = 1000;
        iov[1].iov_base = tmp + 1000;
        iov[1].iov_len = sizeof(tmp) - 1000;
        e->nreadv++;
        n = e->st->ops->readv(e->s, iov, 2);
        if (n > 0) {
            size_t k = (size_t)n;

            if (!e->t_first_rx)
                e->t_first_rx = now(e->fx);
            if (e->rx && e->rx_len + k <= e->rx_cap)
                memcpy(e->rx + e->rx_len, tmp, k);
            e->rx_len += k;
            if (e->rx_cap && e->rx_len >= e->rx_cap && !e->t_rx_done)
                e->t_rx_done = now(e->fx);
            continue;
        }
        if (n == 0) {
            e->eof = 1;
            e->t_eof = now(e->fx);
        } else if (n == -EAGAIN) {
            e->eagain_r++;
        } else {
            ep_set_err(e, (int)n, 0);
        }
        return;
    }
}

static void
ep_write(struct ep *e)
{
    while (e->tx_off < e->tx_len) {
        size_t k = e->tx_len - e->tx_off;
        struct iovec iov;
        ssize_t n;

        if (e->write_chunk && k > e->write_chunk)
            k = e->write_chunk;
        iov.iov_base = (void *)(e->tx + e->tx_off);
        iov.iov_len = k;
        e->nwritev++;
        n = e->st->ops->writev(e->s, &iov, 1);
        if (n > 0) {
            e->tx_off += (size_t)n;
            continue;
        }
        if (n == -EAGAIN) {
            e->eagain_w++;
        } else {
            e->wr_err = (int)n;
            ep_set_err(e, (int)n, 1);
        }
        return;
    }
}

static void
ep_io_cb(struct msgr_socket *s, unsigned events, void *arg)
{
    struct ep *e = arg;

    assert_ptr_equal(s, e->s);
    e->ncb++;
    if (!e->connected) {
        int r = e->st->ops->connect_result(s);

        if (r == -EINPROGRESS)
            return;
        e->t_conn = now(e->fx);
        if (r) {
            e->conn_err = r;
            ep_want(e);
            return;
        }
        e->connected = 1;
    }
    if ((events & MSGR_IO_READ) && !e->err)
        ep_read(e);
    if ((events & MSGR_IO_WRITE) && !e->err)
        ep_write(e);
    if ((e->close_on_eof && (e->eof || e->err)) ||
        (e->close_after_tx && e->tx_off == e->tx_len)) {
        ep_close(e, 0);
        return;
    }
    ep_want(e);
}

static void
accept_cb(struct msgr_listener *l, void *arg)
{
    struct fx *fx = arg;

    for (;;) {
        struct msgr_socket *s;
        struct msgr_addr peer;
        struct ep *e;
        int r = fx->f2->ops->accept(l, fx->f2->workers[fx->accept_to], &s,
                                    &peer);

        if (r == -EAGAIN)
            return;
        assert_int_equal(r, 0);
        assert_true(fx->nsrv < MAXEP);
        e = &fx->srv[fx->nsrv++];
        *e = fx->srv_tmpl;
        e->fx = fx;
        e->st = fx->f2;
        e->s = s;
        e->connected = 1;
        if (e->rx_cap && !e->rx)
            e->rx = malloc(e->rx_cap);
        fx->f2->ops->io_set(s, ep_io_cb, e, 0);
        ep_want(e);
    }
}

/* ------------------------------------------------------------- fixture */

static struct fx *
fx_new(uint64_t seed, int nworkers)
{
    struct fx *fx = calloc(1, sizeof(*fx));
    struct sim_stack_config cfg = {.nworkers = nworkers};
    int err = 0;

    assert_non_null(fx);
    fx->w = sim_world_new(seed);
    fx->h1 = sim_host_new(fx->w, 1, "h1", IP1);
    fx->h2 = sim_host_new(fx->w, 2, "h2", IP2);
    fx->h3 = sim_host_new(fx->w, 3, "h3", IP3);
    fx->in1 = sim_stack_new(fx->w, fx->h1, &cfg, &err);
    fx->in2 = sim_stack_new(fx->w, fx->h2, &cfg, &err);
    fx->in3 = sim_stack_new(fx->w, fx->h3, &cfg, &err);
    assert_non_null(fx->in3);
    fx->f1 = msgr_fault_stack_new(fx->in1, NULL, &err);
    fx->f2 = msgr_fault_stack_new(fx->in2, NULL, &err);
    fx->f3 = msgr_fault_stack_new(fx->in3, NULL, &err);
    assert_non_null(fx->f3);
    assert_int_equal(err, 0);
    /* the fault stacks hold their own references */
    msgr_stack_unref(fx->in1);
    msgr_stack_unref(fx->in2);
    msgr_stack_unref(fx->in3);
    return fx;
}

static void
fx_free(struct fx *fx)
{
    for (int i = 0; i < MAXEP; i++) {
        if (fx->cli[i].s && !fx->cli[i].closed)
            ON(fx->cli[i].st, ep_close(&fx->cli[i], 0));
        free(fx->cli[i].rx);
    }
    for (int i = 0; i < fx->nsrv; i++) {
        if (fx->srv[i].s && !fx->srv[i].closed)
            ON(fx->srv[i].st, ep_close(&fx->srv[i], 0));
        free(fx->srv[i].rx);
    }
    if (fx->l)
        ON(fx->f2, fx->f2->ops->listener_close(fx->l));
    msgr_stack_unref(fx->f1);
    msgr_stack_unref(fx->f2);
    msgr_stack_unref(fx->f3);
    sim_world_free(fx->w);
    free(fx);
}

static int
setup(void **state)
{
    *state = fx_new(42, 1);
    return 0;
}

static int
teardown(void **state)
{
    fx_free(*state);
    return 0;
}

static void
fx_listen(struct fx *fx)
{
    struct msgr_listen_opts o = {.backlog = 0, .reuse_addr = 1};
    struct msgr_addr a;
    int r;

    sim_host_addr(fx->h2, PORT, &a);
    ON(fx->f2, r = fx->f2->ops->listen(fx->f2->workers[0], &a, &o, accept_cb,
                                       fx, &fx->l));
    assert_int_equal(r, 0);
    ON(fx->f2, fx->f2->ops->listener_start(fx->l));
}

static void
fx_connect(struct fx *fx, struct msgr_stack *st, struct sim_host *to,
           struct ep *e)
{
    struct msgr_addr a;
    int r;

    e->fx = fx;
    e->st = st;
    sim_host_addr(to, PORT, &a);
    ON(st, r = st->ops->connect(st->workers[0], &a, &e->s));
    assert_int_equal(r, 0);
    if (e->rx_cap && !e->rx)
        e->rx = malloc(e->rx_cap);
    ON(st, st->ops->io_set(e->s, ep_io_cb, e, MSGR_IO_WRITE));
}

static void
ep_rearm(struct ep *e)
{
    ON(e->st, ep_want(e));
}

struct until {
    int (*fn)(struct fx *fx, void *arg);
    struct fx *fx;
    void *arg;
};

static int
until_cb(void *p)
{
    struct until *u = p;

    return u->fn(u->fx, u->arg);
}

static int
run_until(struct fx *fx, int (*fn)(struct fx *, void *), void *arg,
          msgr_time_ns for_ns)
{
    struct until u = {fn, fx, arg};

    return sim_run_until_cond(fx->w, until_cb, &u, now(fx) + for_ns);
}

static void
run_for(struct fx *fx, msgr_time_ns ns)
{
    sim_run_until(fx->w, now(fx) + ns);
}

static int
c_connected(struct fx *fx, void *arg)
{
    struct ep *e = arg;

    (void)fx;
    return e->connected || e->conn_err;
}

static int
c_nsrv(struct fx *fx, void *arg)
{
    return fx->nsrv >= *(int *)arg;
}

static int
c_srv_rx(struct fx *fx, void *arg)
{
    size_t want = *(size_t *)arg;

    return fx->nsrv > 0 && (fx->srv[fx->nsrv - 1].rx_len >= want ||
                            fx->srv[fx->nsrv - 1].err ||
                            fx->srv[fx->nsrv - 1].eof);
}

static int
c_err(struct fx *fx, void *arg)
{
    struct ep *e = arg;

    (void)fx;
    return e->err || e->eof;
}

/* cli[i] connects to h2 and the server end is accepted. */
static void
fx_pair(struct fx *fx, int i)
{
    int want = fx->nsrv + 1;

    fx_connect(fx, fx->f1, fx->h2, &fx->cli[i]);
    assert_true(run_until(fx, c_connected, &fx->cli[i], 5 * S_NS));
    assert_int_equal(fx->cli[i].conn_err, 0);
    assert_true(run_until(fx, c_nsrv, &want, 5 * S_NS));
}

static struct msgr_addr
ip_of(struct sim_host *h)
{
    struct msgr_addr a;

    sim_host_addr(h, 0, &a); /* port 0: any port of that host */
    return a;
}

/* --------------------------------------------------------------- tests */

static void
test_passthrough(void **state)
{
    struct fx *fx = *state;
    const size_t n = 1u << 20;
    uint8_t *a = pattern_buf(n), *b = pattern_buf(n);
    struct ep *c = &fx->cli[0], *s;
    struct msgr_addr la, pa, lst;
    struct msgr_fault_stats fst;
    int r;

    /* the wrapper's own objects, standing for the inner ones */
    assert_true(msgr_fault_stack_is(fx->f1));
    assert_false(msgr_fault_stack_is(fx->in1));
    assert_ptr_equal(msgr_fault_inner(fx->f1), fx->in1);
    assert_null(msgr_fault_inner(fx->in1));
    assert_string_equal(fx->f1->ops->name, "fault");
    assert_int_equal(fx->f1->ops->caps, fx->in1->ops->caps);
    assert_int_equal(fx->f1->nworkers, fx->in1->nworkers);
    assert_ptr_equal(fx->f1->workers[0]->stack, fx->f1);
    assert_ptr_equal(msgr_fault_inner_worker(fx->f1->workers[0]),
                     fx->in1->workers[0]);
    assert_false(fx->f1->ops->in_worker(fx->f1->workers[0]));
    ON(fx->f1, r = fx->f1->ops->in_worker(fx->f1->workers[0]));
    assert_true(r);
    assert_int_equal(fx->f1->ops->now_ns(fx->f1), now(fx));

    for (size_t i = 0; i < n; i++)
        b[i] = pat(i + 7);
    fx_listen(fx);
    ON(fx->f2, r = fx->f2->ops->listener_addr(fx->l, &lst));
    assert_int_equal(r, 0);
    assert_int_equal(lst.port, PORT);
    fx->srv_tmpl.tx = b;
    fx->srv_tmpl.tx_len = n;
    fx->srv_tmpl.rx_cap = n;
    c->tx = a;
    c->tx_len = n;
    c->rx_cap = n;
    c->write_chunk = 5000;
    fx_pair(fx, 0);
    s = &fx->srv[0];
    ON(fx->f1, r = fx->f1->ops->local_addr(c->s, &la));
    assert_int_equal(r, 0);
    ON(fx->f2, r = fx->f2->ops->peer_addr(s->s, &pa));
    assert_int_equal(r, 0);
    assert_true(msgr_addr_same_endpoint(&la, &pa));
    size_t want = n;
    assert_true(run_until(fx, c_srv_rx, &want, 30 * S_NS));
    run_for(fx, 100 * MS_NS);
    assert_int_equal(s->rx_len, n);
    assert_int_equal(c->rx_len, n);
    assert_memory_equal(s->rx, a, n);
    assert_memory_equal(c->rx, b, n);
    assert_int_equal(c->err, 0);
    assert_int_equal(s->err, 0);
    msgr_fault_get_stats(fx->f1, &fst);
    assert_int_equal(fst.socket_failures + fst.congestion_eagains +
                         fst.corruptions + fst.resets + fst.delayed_bytes,
                     0);
    free(a);
    free(b);
}

static void
test_config_entries(void **state)
{
    struct fx *fx = *state;
    struct msgr_fault_config fc, got;
    struct msgr_addr p = ip_of(fx->h2), q = ip_of(fx->h3);

    memset(&fc, 0, sizeof(fc));
    fc.socket_failures = 7;
    fc.internal_delay_ns = 5; /* ignored for a peer entry */
    assert_int_equal(msgr_fault_set(fx->f1, &p, &fc), 0);
    assert_int_equal(msgr_fault_get(fx->f1, &p, &got), 0);
    assert_int_equal(got.socket_failures, 7);
    assert_int_equal(got.internal_delay_ns, 0);
    assert_int_equal(msgr_fault_set_corrupt(fx->f1, &p, 3), 0);
    assert_int_equal(msgr_fault_partition(fx->f1, &q, MSGR_FAULT_DIR_OUT), 0);
    assert_int_equal(msgr_fault_get(fx->f1, &p, &got), 0);
    assert_int_equal(got.corrupt_ppm, 3);
    assert_int_equal(got.socket_failures, 7);
    assert_int_equal(msgr_fault_get(fx->f1, &q, &got), 0);
    assert_int_equal(got.partition, MSGR_FAULT_DIR_OUT);
    assert_int_equal(msgr_fault_set_internal_delay(fx->f1, 9), 0);
    assert_int_equal(msgr_fault_get(fx->f1, NULL, &got), 0);
    assert_int_equal(got.internal_delay_ns, 9);
    assert_int_equal(msgr_fault_clear(fx->f1, &p), 0);
    assert_int_equal(msgr_fault_get(fx->f1, &p, &got), 0);
    assert_int_equal(got.socket_failures, 0);
    assert_int_equal(msgr_fault_clear(fx->f1, NULL), 0);
    assert_int_equal(msgr_fault_get(fx->f1, NULL, &got), 0);
    assert_int_equal(got.internal_delay_ns, 0);
    /* not a fault stack */
    assert_int_equal(msgr_fault_set_corrupt(fx->in1, NULL, 1), -EINVAL);
    assert_int_equal(msgr_fault_reset(fx->in1, NULL), -EINVAL);
    assert_string_equal(msgr_fault_kind_name(MSGR_FAULT_RESET), "reset");
}

/*
 * Sequential connections, each writing in small chunks until the first
 * injected failure. Returns the I/O calls per failure; *nfail failures.
 */
static double
failure_run(struct fx *fx, struct msgr_stack *faulty, int conns, int *nfail,
            int *write_fails, int *read_fails)
{
    const size_t n = 4u << 20;
    uint8_t *a = pattern_buf(n);
    uint64_t calls = 0;
    struct msgr_fault_stats st0, st1;

    msgr_fault_get_stats(faulty, &st0);
    *write_fails = *read_fails = 0;
    fx->srv_tmpl.rx_cap = 0; /* count only */
    fx->srv_tmpl.close_on_eof = 1;
    for (int i = 0; i < conns; i++) {
        struct ep *c = &fx->cli[0], *s;

        memset(c, 0, sizeof(*c));
        c->tx = a;
        c->tx_len = n;
        c->write_chunk = 1000;
        fx->nsrv = 0;
        memset(fx->srv, 0, sizeof(fx->srv));
        fx_pair(fx, 0);
        s = &fx->srv[0];
        assert_true(run_until(fx, c_err, faulty == fx->f1 ? (void *)c
                                                        : (void *)s,
                              60 * S_NS));
        if (faulty == fx->f1) {
            calls += c->nreadv + c->nwritev;
            /* a shut down socket fails the very call: EPIPE on write */
            assert_true(c->err == -EPIPE && c->fail_on_write);
            (*write_fails)++;
        } else {
            calls += s->nreadv + s->nwritev;
            /* ... and EOF on read, with the sender still sending */
            assert_true(s->eof);
            assert_true(c->tx_off < n);
            (*read_fails)++;
        }
        ON(fx->f1, ep_close(c, 1));
        if (!s->closed)
            ON(fx->f2, ep_close(s, 1));
        run_for(fx, 10 * MS_NS);
    }
    msgr_fault_get_stats(faulty, &st1);
    *nfail = (int)(st1.socket_failures - st0.socket_failures);
    free(a);
    return (double)calls / (double)*nfail;
}

static void
test_socket_failures_rate(void **state)
{
    struct fx *fx = *state;
    struct msgr_addr p = ip_of(fx->h2), q = ip_of(fx->h1);
    int nfail, wf, rf;
    double per;

    fx_listen(fx);
    /* on the sender: writev fails */
    assert_int_equal(msgr_fault_set_socket_failures(fx->f1, &p, 20), 0);
    per = failure_run(fx, fx->f1, 100, &nfail, &wf, &rf);
    print_message("writer: %d failures, %.1f calls per failure (N=20)\n",
                  nfail, per);
    assert_int_equal(nfail, 100); /* one per connection: each ended it */
    assert_int_equal(wf, 100);
    assert_true(per > 20 * 0.7 && per < 20 * 1.35);
    assert_int_equal(msgr_fault_set_socket_failures(fx->f1, &p, 0), 0);

    /* on the receiver: readv sees EOF */
    assert_int_equal(msgr_fault_set_socket_failures(fx->f2, &q, 10), 0);
    per = failure_run(fx, fx->f2, 100, &nfail, &wf, &rf);
    print_message("reader: %d failures, %.1f calls per failure (N=10)\n",
                  nfail, per);
    assert_int_equal(nfail, 100);
    assert_int_equal(rf, 100);
    assert_true(per > 10 * 0.7 && per < 10 * 1.35);
}

static void
test_partition_and_heal(void **state)
{
    struct fx *fx = *state;
    const size_t n = 6u << 20;
    uint8_t *a = pattern_buf(n);
    struct ep *c = &fx->cli[0], *s;
    struct msgr_addr p2 = ip_of(fx->h2), p3 = ip_of(fx->h3), p1 = ip_of(fx->h1);
    struct msgr_fault_stats fst;
    size_t rx0, tx0, want;
    unsigned ncb0, sncb0;
    /* 100 Mbit/s: the stream takes about half a second */
    struct sim_link_params lp = {.latency_ns = 100 * US_NS,
                                 .bandwidth_bps = 100000000};

    sim_link_default(fx->w, &lp);
    fx_listen(fx);
    fx->srv_tmpl.rx_cap = n;
    c->tx = a;
    c->tx_len = n;
    c->write_chunk = 8000;
    fx_pair(fx, 0);
    s = &fx->srv[0];
    want = 1u << 20;
    assert_true(run_until(fx, c_srv_rx, &want, 10 * S_NS));

    /* a partition from another host changes nothing here */
    assert_int_equal(msgr_fault_partition(fx->f1, &p3, MSGR_FAULT_DIR_BOTH), 0);
    rx0 = s->rx_len;
    run_for(fx, 20 * MS_NS);
    assert_true(s->rx_len > rx0);

    /* the sender is cut off from h2: what it wrote before still lands */
    assert_int_equal(msgr_fault_partition(fx->f1, &p2, MSGR_FAULT_DIR_BOTH), 0);
    run_for(fx, 50 * MS_NS);
    tx0 = c->tx_off;
    rx0 = s->rx_len;
    ncb0 = c->ncb;
    assert_int_equal(rx0, tx0);
    run_for(fx, 2 * S_NS);
    assert_int_equal(c->tx_off, tx0);
    assert_int_equal(s->rx_len, rx0);
    assert_true(c->ncb <= ncb0 + 1); /* interest masked: no busy loop */
    assert_int_equal(c->err, 0);
    assert_true(c->tx_off < n);

    /* heal: the stream resumes where it stopped */
    assert_int_equal(msgr_fault_partition(fx->f1, &p2, 0), 0);
    want = 3u << 20;
    assert_true(run_until(fx, c_srv_rx, &want, 10 * S_NS));

    /* now the receiver stops reading from h1: the sender fills the
     * window and stalls, nothing spins */
    assert_int_equal(msgr_fault_partition(fx->f2, &p1, MSGR_FAULT_DIR_IN), 0);
    run_for(fx, 100 * MS_NS);
    rx0 = s->rx_len;
    tx0 = c->tx_off;
    ncb0 = c->ncb;
    sncb0 = s->ncb;
    run_for(fx, 2 * S_NS);
    assert_int_equal(s->rx_len, rx0);
    assert_int_equal(c->tx_off, tx0); /* the window is full */
    assert_true(c->tx_off < n);
    assert_true(c->ncb <= ncb0 + 2);
    assert_true(s->ncb <= sncb0 + 1);
    msgr_fault_get_stats(fx->f2, &fst);
    print_message("partition: stopped at %zu/%zu, partition eagains %llu\n",
                  rx0, n, (unsigned long long)fst.partition_eagains);

    msgr_fault_partition(fx->f2, &p1, 0);
    msgr_fault_partition(fx->f1, &p3, 0);
    want = n;
    assert_true(run_until(fx, c_srv_rx, &want, 30 * S_NS));
    assert_int_equal(s->rx_len, n);
    assert_memory_equal(s->rx, a, n);
    assert_int_equal(s->err, 0);
    assert_int_equal(c->err, 0);
    free(a);
}

static void
test_recv_delay(void **state)
{
    struct fx *fx = *state;
    const msgr_time_ns d = 50 * MS_NS;
    const size_t n = 1u << 20;
    uint8_t *a = pattern_buf(n);
    struct ep *c = &fx->cli[0], *s;
    struct msgr_fault_stats fst;
    msgr_time_ns t0;
    unsigned sncb;
    size_t want;
    ssize_t r;

    fx_listen(fx);
    assert_int_equal(msgr_fault_set_recv_delay(fx->f2, NULL, d), 0);
    fx->srv_tmpl.rx_cap = n;
    fx_pair(fx, 0);
    s = &fx->srv[0];
    run_for(fx, MS_NS);
    sncb = s->ncb;

    /* 5 bytes, then look before the deadline */
    c->tx = (const uint8_t *)"hello";
    c->tx_len = 5;
    t0 = now(fx);
    ep_rearm(c);
    run_for(fx, 10 * MS_NS); /* arrived at the inner socket long ago */
    assert_int_equal(c->tx_off, 5);
    assert_int_equal(s->rx_len, 0);
    {
        uint8_t tmp[16];
        struct iovec iov = {tmp, sizeof(tmp)};

        ON(fx->f2, r = fx->f2->ops->readv(s->s, &iov, 1));
        assert_int_equal(r, -EAGAIN);
    }
    assert_int_equal(s->ncb, sncb); /* no READ before the deadline */
    want = 5;
    assert_true(run_until(fx, c_srv_rx, &want, S_NS));
    /* one way (100 us) plus the delay, to the nanosecond */
    assert_int_equal(s->t_first_rx - t0, d + 100 * US_NS);
    assert_memory_equal(s->rx, "hello", 5);

    /* a stream and its EOF: in order, every byte late by d */
    c->tx = a;
    c->tx_len = n;
    c->tx_off = 0;
    c->write_chunk = 10000;
    c->close_after_tx = 1;
    s->rx_len = 0;
    s->t_first_rx = 0;
    t0 = now(fx);
    ep_rearm(c);
    want = n;
    assert_true(run_until(fx, c_srv_rx, &want, 30 * S_NS));
    assert_true(s->t_first_rx - t0 >= d);
    assert_true(run_until(fx, c_err, s, 5 * S_NS));
    assert_int_equal(s->rx_len, n);
    assert_memory_equal(s->rx, a, n);
    assert_true(s->eof);
    assert_int_equal(s->err, 0);
    assert_true(c->closed);
    assert_true(s->t_eof - c->t_closed >= d);
    /* no busy loop while bytes were held: a few callbacks per due chunk */
    print_message("delay: %u server callbacks, %llu readv EAGAIN\n", s->ncb,
                  (unsigned long long)s->eagain_r);
    assert_true(s->ncb < 2000);
    msgr_fault_get_stats(fx->f2, &fst);
    assert_int_equal(fst.delayed_bytes, n + 5);
    free(a);
}

static unsigned
popcount8(uint8_t x)
{
    unsigned c = 0;

    for (; x; x &= (uint8_t)(x - 1))
        c++;
    return c;
}

static void
test_corrupt(void **state)
{
    struct fx *fx = *state;
    const size_t n = 256u << 10;
    uint8_t *a = pattern_buf(n);
    struct ep *c = &fx->cli[0], *s;
    struct msgr_fault_stats fst;
    uint64_t bits = 0;
    size_t want = n;

    fx_listen(fx);
    assert_int_equal(msgr_fault_set_corrupt(fx->f2, NULL, 1000000), 0);
    fx->srv_tmpl.rx_cap = n;
    c->tx = a;
    c->tx_len = n;
    c->write_chunk = 3000;
    fx_pair(fx, 0);
    s = &fx->srv[0];
    assert_true(run_until(fx, c_srv_rx, &want, 30 * S_NS));
    assert_int_equal(s->rx_len, n);
    for (size_t i = 0; i < n; i++)
        bits += popcount8(s->rx[i] ^ a[i]);
    msgr_fault_get_stats(fx->f2, &fst);
    print_message("corrupt: %llu bits flipped in %llu reads\n",
                  (unsigned long long)bits,
                  (unsigned long long)fst.corruptions);
    /* every read that returned data flipped exactly one bit */
    assert_true(fst.corruptions > 0);
    assert_int_equal(bits, fst.corruptions);
    assert_int_equal(fst.corruptions, s->nreadv - s->eagain_r);

    /* ppm 0: byte-exact again */
    assert_int_equal(msgr_fault_set_corrupt(fx->f2, NULL, 0), 0);
    memset(s->rx, 0, n);
    s->rx_len = 0;
    c->tx_off = 0;
    ep_rearm(c);
    assert_true(run_until(fx, c_srv_rx, &want, 30 * S_NS));
    assert_memory_equal(s->rx, a, n);
    free(a);
}

static void
test_reset(void **state)
{
    struct fx *fx = *state;
    struct ep *c = &fx->cli[0], *s;
    struct msgr_addr p2 = ip_of(fx->h2), p3 = ip_of(fx->h3);
    struct msgr_fault_stats fst;
    uint8_t tmp[8];
    struct iovec iov = {tmp, sizeof(tmp)};
    size_t want = 5;
    ssize_t r;

    fx_listen(fx);
    fx->srv_tmpl.rx_cap = 64;
    c->tx = (const uint8_t *)"hello";
    c->tx_len = 5;
    fx_pair(fx, 0);
    s = &fx->srv[0];
    assert_true(run_until(fx, c_srv_rx, &want, S_NS));

    assert_int_equal(msgr_fault_reset(fx->f1, &p3), 0); /* no such peer */
    run_for(fx, 10 * MS_NS);
    assert_int_equal(c->err, 0);

    /* the client is idle: the layer wakes it and its read is reset */
    assert_int_equal(msgr_fault_reset(fx->f1, &p2), 1);
    assert_true(run_until(fx, c_err, c, S_NS));
    assert_int_equal(c->err, -ECONNRESET);
    assert_false(c->fail_on_write);
    /* the peer got an RST */
    assert_true(run_until(fx, c_err, s, S_NS));
    assert_int_equal(s->err, -ECONNRESET);
    /* then like a kernel socket whose error was taken: EOF, EPIPE */
    ON(fx->f1, r = fx->f1->ops->readv(c->s, &iov, 1));
    assert_int_equal(r, 0);
    ON(fx->f1, r = fx->f1->ops->writev(c->s, &iov, 1));
    assert_int_equal(r, -EPIPE);
    msgr_fault_get_stats(fx->f1, &fst);
    assert_int_equal(fst.resets, 1);

    /* a reset on the next write of a busy socket */
    ON(fx->f1, ep_close(c, 0));
    c = &fx->cli[1];
    c->tx = (const uint8_t *)"again";
    c->tx_len = 5;
    fx_pair(fx, 1);
    run_for(fx, 10 * MS_NS);
    assert_int_equal(msgr_fault_reset(fx->f1, NULL), 1); /* all: that one */
    ON(fx->f1, r = fx->f1->ops->writev(c->s, &iov, 1));
    assert_int_equal(r, -ECONNRESET);
    run_for(fx, 10 * MS_NS); /* the wake-up finds it reset: no spin */
    msgr_fault_get_stats(fx->f1, &fst);
    assert_int_equal(fst.resets, 2);
}

static void
test_congestion(void **state)
{
    struct fx *fx = *state;
    const size_t n = 2u << 20;
    uint8_t *a = pattern_buf(n);
    struct ep *c = &fx->cli[0], *s;
    struct msgr_fault_stats fst;
    size_t want = n;

    fx_listen(fx);
    assert_int_equal(msgr_fault_set_network_congestion(fx->f1, NULL, 4), 0);
    fx->srv_tmpl.rx_cap = n;
    c->tx = a;
    c->tx_len = n;
    c->write_chunk = 4000;
    fx_pair(fx, 0);
    s = &fx->srv[0];
    assert_true(run_until(fx, c_srv_rx, &want, 60 * S_NS));
    assert_memory_equal(s->rx, a, n);
    msgr_fault_get_stats(fx->f1, &fst);
    print_message("congestion: %llu writev, %llu EAGAIN (%llu congested), "
                  "%u callbacks\n",
                  (unsigned long long)c->nwritev,
                  (unsigned long long)c->eagain_w,
                  (unsigned long long)fst.congestion_eagains, c->ncb);
    /* 3 in 4 draws congest; each congestion costs one call, no spin */
    assert_true(fst.congestion_eagains > 0);
    assert_true(c->eagain_w >= fst.congestion_eagains);
    assert_true(c->ncb < 3 * (n / 4000) * 4);
    free(a);
}

/* --------------------------------------------------- delayed posts, FIFO */

struct prec {
    int worker;
    int idx;   /* per worker, in post order */
    int chain; /* posts this many successors from inside itself */
};

struct plog {
    int order[2][4096];
    int n[2];
    int wrong_worker;
    msgr_time_ns max_t;
    struct prec recs[4096];
    int nrec;
    int next_idx[2];
    struct fx *fx;
    struct msgr_stack *st;
};

static struct plog *g_plog;

static void post_rec_cb(void *arg);

static void
post_one(struct plog *pl, int worker, int chain)
{
    struct prec *r;

    assert_true(pl->nrec < 4096);
    r = &pl->recs[pl->nrec++];
    r->worker = worker;
    r->idx = pl->next_idx[worker]++;
    r->chain = chain;
    assert_int_equal(pl->st->ops->post(pl->st->workers[worker], post_rec_cb, r),
                     0);
}

static void
post_rec_cb(void *arg)
{
    struct prec *r = arg;
    struct plog *pl = g_plog;

    if (!pl->st->ops->in_worker(pl->st->workers[r->worker]))
        pl->wrong_worker++;
    pl->order[r->worker][pl->n[r->worker]++] = r->idx;
    if (now(pl->fx) > pl->max_t)
        pl->max_t = now(pl->fx);
    if (r->chain)
        post_one(pl, r->worker, r->chain - 1);
}

static int
c_nruns(void *arg)
{
    struct plog *pl = arg;

    return pl->n[0] + pl->n[1] == pl->nrec;
}

static void
check_fifo(struct plog *pl)
{
    for (int w = 0; w < 2; w++)
        for (int i = 1; i < pl->n[w]; i++)
            assert_true(pl->order[w][i] > pl->order[w][i - 1]);
}

static void
test_internal_delay_fifo(void **state)
{
    struct fx *fx = fx_new(7, 2);
    struct plog *pl = calloc(1, sizeof(*pl));
    struct msgr_fault_stats fst;
    msgr_time_ns t0;

    (void)state;
    pl->fx = fx;
    pl->st = fx->f1;
    g_plog = pl;
    assert_int_equal(msgr_fault_set_internal_delay(fx->f1, 10 * MS_NS), 0);
    t0 = now(fx);
    /* from outside the workers, and chained from inside them */
    for (int i = 0; i < 600; i++)
        post_one(pl, i % 2, i % 50 == 0 ? 3 : 0);
    assert_true(sim_run_until_cond(fx->w, c_nruns, pl, now(fx) + 10 * S_NS));
    check_fifo(pl);
    assert_int_equal(pl->wrong_worker, 0);
    assert_true(pl->max_t > t0);                 /* they were delayed */
    assert_true(pl->max_t - t0 <= 4 * 10 * MS_NS); /* ... but not much */

    /* delay off with closures still queued: FIFO holds across the switch */
    for (int i = 0; i < 200; i++)
        post_one(pl, i % 2, 0);
    assert_int_equal(msgr_fault_set_internal_delay(fx->f1, 0), 0);
    for (int i = 0; i < 200; i++)
        post_one(pl, i % 2, i % 10 == 0 ? 2 : 0);
    assert_true(sim_run_until_cond(fx->w, c_nruns, pl, now(fx) + 10 * S_NS));
    check_fifo(pl);

    /* drain runs what was posted before it, without waiting out the delay */
    assert_int_equal(msgr_fault_set_internal_delay(fx->f1, 10 * S_NS), 0);
    for (int i = 0; i < 100; i++)
        post_one(pl, i % 2, 0);
    t0 = now(fx);
    fx->f1->ops->drain(fx->f1);
    assert_true(c_nruns(pl));
    assert_true(now(fx) - t0 < S_NS);
    check_fifo(pl);

    /* destroy runs what is still queued */
    for (int i = 0; i < 20; i++)
        post_one(pl, i % 2, 0);
    msgr_fault_get_stats(fx->f1, &fst);
    print_message("delayed posts so far: %llu\n",
                  (unsigned long long)fst.delayed_posts);
    assert_true(fst.delayed_posts >= 600);
    msgr_stack_unref(fx->f1);
    fx->f1 = NULL;
    assert_true(c_nruns(pl));
    check_fifo(pl);
    /* fx_free: f1 is gone already */
    {
        int err;

        fx->f1 = msgr_fault_stack_new(fx->in2, NULL, &err);
        assert_non_null(fx->f1);
    }
    fx_free(fx);
    free(pl);
}

/* ----------------------------------------------------------- determinism */

struct det {
    uint64_t hash;
    unsigned count[8];
    struct sim_world *w;
    int nops;
};

static void
det_nop(void *arg)
{
    (*(int *)arg)++;
}

static void
det_obs(void *arg, enum msgr_fault_kind kind, const struct msgr_addr *peer,
        uint64_t value)
{
    struct det *d = arg;
    uint64_t v[4] = {sim_now(d->w), (uint64_t)kind, value,
                     peer ? peer->port : 0};

    for (int i = 0; i < 4; i++) {
        d->hash ^= v[i];
        d->hash *= 0x100000001b3ull;
    }
    d->count[kind]++;
}

static struct det
det_run(uint64_t seed)
{
    struct fx *fx = fx_new(seed, 1);
    struct det d;
    struct msgr_fault_config fc = {.socket_failures = 200,
                                   .network_congestion = 3,
                                   .corrupt_ppm = 20000,
                                   .recv_delay_ns = 300 * US_NS,
                                   .internal_delay_ns = 50 * US_NS};
    const size_t n = 512u << 10;
    uint8_t *a = pattern_buf(n);

    memset(&d, 0, sizeof(d));
    d.w = fx->w;
    d.hash = 0xcbf29ce484222325ull;
    msgr_fault_set_observer(fx->f1, det_obs, &d);
    msgr_fault_set_observer(fx->f2, det_obs, &d);
    assert_int_equal(msgr_fault_set(fx->f1, NULL, &fc), 0);
    assert_int_equal(msgr_fault_set(fx->f2, NULL, &fc), 0);
    /* posts, drawn from the same stream as the socket faults */
    for (int i = 0; i < 50; i++)
        assert_int_equal(fx->f1->ops->post(fx->f1->workers[0], det_nop,
                                           &d.nops),
                         0);
    fx_listen(fx);
    fx->srv_tmpl.rx_cap = 0;
    fx->srv_tmpl.tx = a;
    fx->srv_tmpl.tx_len = n;
    fx->srv_tmpl.close_on_eof = 1;
    for (int i = 0; i < 4; i++) {
        struct ep *c = &fx->cli[i];

        c->tx = a;
        c->tx_len = n;
        c->write_chunk = 2000;
        c->close_on_eof = 1;
        fx_pair(fx, i);
    }
    run_for(fx, 5 * S_NS);
    assert_int_equal(d.nops, 50);
    free(a);
    fx_free(fx);
    return d;
}

static void
test_determinism(void **state)
{
    struct det a = det_run(11), b = det_run(11), c = det_run(12);

    (void)state;
    print_message("seed 11: %016llx (%u failures, %u congestions, %u "
                  "corruptions, %u delayed reads); seed 12: %016llx\n",
                  (unsigned long long)a.hash,
                  a.count[MSGR_FAULT_SOCKET_FAILURE],
                  a.count[MSGR_FAULT_CONGESTION], a.count[MSGR_FAULT_CORRUPT],
                  a.count[MSGR_FAULT_DELAY_BYTES], (unsigned long long)c.hash);
    assert_true(a.count[MSGR_FAULT_SOCKET_FAILURE] > 0);
    assert_true(a.count[MSGR_FAULT_CONGESTION] > 0);
    assert_true(a.count[MSGR_FAULT_CORRUPT] > 0);
    assert_true(a.count[MSGR_FAULT_DELAY_BYTES] > 0);
    assert_true(a.count[MSGR_FAULT_DELAY_POST] > 0);
    assert_memory_equal(&a.count, &b.count, sizeof(a.count));
    assert_int_equal(a.hash, b.hash);
    assert_int_not_equal(a.hash, c.hash);
}

/* ----------------------------------------------------- two messengers */

struct rx {
    uint64_t next;
    int out_of_order; /* first seq that went backwards + 1 */
    long delivered;
    int remote_resets, resets;
};

static int
rx_dispatch(void *arg, struct msgr_msg *m)
{
    struct rx *r = arg;
    uint64_t seq;

    memcpy(&seq, m->front.data, sizeof(seq));
    if (seq < r->next && !r->out_of_order)
        r->out_of_order = (int)seq + 1;
    if (seq >= r->next)
        r->next = seq + 1;
    r->delivered++;
    msgr_msg_unref(m);
    return 1;
}

static void
rx_remote_reset(void *arg, struct msgr_conn *c)
{
    (void)c;
    ((struct rx *)arg)->remote_resets++;
}

static int
rx_reset(void *arg, struct msgr_conn *c)
{
    (void)c;
    ((struct rx *)arg)->resets++;
    return 1;
}

static int
rx_all(void *arg)
{
    struct rx *r = arg;

    return r->delivered >= 2000 || r->out_of_order;
}

struct e2e {
    long delivered;
    int out_of_order, remote_resets, resets;
    uint64_t failures, fingerprint;
    msgr_time_ns took_ns;
};

static struct e2e
e2e_run(uint64_t seed, uint32_t failures, msgr_time_ns internal_delay)
{
    const long nmsg = 2000;
    struct e2e out;
    struct sim_world *w = sim_world_new(seed);
    struct sim_link_params lp = {.latency_ns = 200 * US_NS,
                                 .jitter_ns = 50 * US_NS};
    struct sim_host *ha, *hb;
    struct sim_stack_config sc = {.nworkers = 2};
    struct msgr_fault_config fc = {.socket_failures = failures,
                                   .internal_delay_ns = internal_delay};
    struct msgr_stack *ia, *ib, *sa, *sb;
    struct msgr *ma, *mb;
    struct msgr_tracer tr;
    struct msgr_policy p;
    struct msgr_addr ab;
    struct msgr_addrvec to;
    struct rx rxa, rxb;
    struct msgr_fault_stats fa, fb;
    msgr_time_ns t0;
    int err = 0;

    memset(&out, 0, sizeof(out));
    sim_link_default(w, &lp);
    ha = sim_host_new(w, 1, "osd.0", IP1);
    hb = sim_host_new(w, 2, "osd.1", IP2);
    ia = sim_stack_new(w, ha, &sc, &err);
    ib = sim_stack_new(w, hb, &sc, &err);
    sa = msgr_fault_stack_new(ia, &fc, &err);
    sb = msgr_fault_stack_new(ib, &fc, &err);
    assert_non_null(sa);
    assert_non_null(sb);
    msgr_stack_unref(ia);
    msgr_stack_unref(ib);
    struct msgr_config ca = {.name = {MSGR_ENTITY_OSD, 0}, .nonce = 11,
                             .stack = sa, .max_backoff_ns = S_NS};
    struct msgr_config cb = {.name = {MSGR_ENTITY_OSD, 1}, .nonce = 22,
                             .stack = sb, .max_backoff_ns = S_NS};
    ma = msgr_create(&ca, &err);
    mb = msgr_create(&cb, &err);
    assert_non_null(ma);
    assert_non_null(mb);
    if (getenv("T_LOG")) {
        msgr_set_log(ma, MSGR_LOG_DEBUG, NULL, NULL);
        msgr_set_log(mb, MSGR_LOG_DEBUG, NULL, NULL);
    }
    sim_fp_tracer(w, &tr);
    msgr_set_tracer(ma, &tr);
    msgr_set_tracer(mb, &tr);
    p = msgr_policy_make(MSGR_POLICY_LOSSLESS_PEER, 0);
    msgr_set_policy(ma, MSGR_ENTITY_OSD, &p);
    msgr_set_policy(mb, MSGR_ENTITY_OSD, &p);
    sim_host_addr(hb, PORT, &ab);
    assert_int_equal(msgr_bind(mb, &ab), 0);
    memset(&rxa, 0, sizeof(rxa));
    memset(&rxb, 0, sizeof(rxb));
    struct msgr_dispatcher da = {.arg = &rxa,
                                 .ms_dispatch = rx_dispatch,
                                 .ms_handle_remote_reset = rx_remote_reset,
                                 .ms_handle_reset = rx_reset};
    struct msgr_dispatcher db = {.arg = &rxb,
                                 .ms_dispatch = rx_dispatch,
                                 .ms_handle_remote_reset = rx_remote_reset,
                                 .ms_handle_reset = rx_reset};
    msgr_start(ma);
    msgr_start(mb);
    msgr_add_dispatcher(ma, &da);
    msgr_add_dispatcher(mb, &db);
    msgr_get_myaddrs(mb, &to);
    t0 = sim_now(w);
    for (long i = 0; i < nmsg; i++) {
        struct msgr_msg *m = msgr_msg_new(MSGR_MSG_TEST, 64, 0,
                                          (uint32_t)(i % 5) * 1000);
        uint64_t seq = (uint64_t)i;

        memset(m->front.data, 0, 64);
        memcpy(m->front.data, &seq, sizeof(seq));
        assert_int_equal(msgr_send_message(ma, m, MSGR_ENTITY_OSD, &to), 0);
        if (i % 20 == 19)
            sim_run_until(w, sim_now(w) + 200 * US_NS);
    }
    sim_run_until_cond(w, rx_all, &rxb, sim_now(w) + 600 * S_NS);
    out.took_ns = sim_now(w) - t0;
    sim_run_until(w, sim_now(w) + S_NS);
    out.delivered = rxb.delivered;
    out.out_of_order = rxb.out_of_order;
    out.remote_resets = rxa.remote_resets + rxb.remote_resets;
    out.resets = rxa.resets + rxb.resets;
    msgr_fault_get_stats(sa, &fa);
    msgr_fault_get_stats(sb, &fb);
    out.failures = fa.socket_failures + fb.socket_failures;
    msgr_shutdown(ma);
    msgr_shutdown(mb);
    msgr_wait(ma);
    msgr_wait(mb);
    msgr_destroy(ma);
    msgr_destroy(mb);
    msgr_stack_unref(sa);
    msgr_stack_unref(sb);
    out.fingerprint = sim_fingerprint(w);
    sim_world_free(w);
    return out;
}

static void
check_e2e(uint64_t seed, msgr_time_ns internal_delay)
{
    struct e2e r = e2e_run(seed, 30, internal_delay);

    print_message("seed %llu, internal delay %llu ns: delivered %ld/2000, "
                  "out of order at %d, %llu injected failures, resets %d/%d, "
                  "%.3f s virtual\n",
                  (unsigned long long)seed,
                  (unsigned long long)internal_delay, r.delivered,
                  r.out_of_order, (unsigned long long)r.failures,
                  r.remote_resets, r.resets, (double)r.took_ns / 1e9);
    assert_true(r.failures > 0);
    assert_int_equal(r.out_of_order, 0); /* no duplicate, no reordering */
    assert_int_equal(r.delivered, 2000); /* ... and nothing lost */
    assert_int_equal(r.remote_resets, 0);
}

static void
test_messengers_inject_socket_failures(void **state)
{
    (void)state;
    check_e2e(1, 0);
    check_e2e(2, 0);
}

static void
test_messengers_inject_internal_delays(void **state)
{
    (void)state;
    /* SyntheticInjectTest also sets ms_inject_internal_delays */
    check_e2e(3, MS_NS);
}

static void
test_messengers_deterministic(void **state)
{
    struct e2e a = e2e_run(5, 30, 0), b = e2e_run(5, 30, 0);

    (void)state;
    assert_int_equal(a.fingerprint, b.fingerprint);
    assert_int_equal(a.failures, b.failures);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_passthrough, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_entries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_socket_failures_rate, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_partition_and_heal, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_recv_delay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_congestion, setup, teardown),
        cmocka_unit_test(test_internal_delay_fifo),
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_messengers_inject_socket_failures),
        cmocka_unit_test(test_messengers_inject_internal_delays),
        cmocka_unit_test(test_messengers_deterministic),
    };
    return cmocka_run_group_tests_name("sim_fault_layer", tests, NULL, NULL);
}
