/*
 * The simulator's TCP model through the stack seam: handshake, data,
 * backpressure, loss, corruption, jitter, bandwidth, FIN/RST, faults
 * (partition, reset, kill, crash, pause), ports, backlog, determinism.
 *
 * Everything runs on the test's thread: seam calls are made "on" a
 * worker with sim__worker_enter/leave, callbacks run inside
 * sim_run_until_cond and only record; the assertions are made after.
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

/* One socket end and what the test wants it to do. */
struct ep {
    struct fx *fx;
    struct msgr_socket *s;
    struct msgr_stack *st;
    /* sending */
    const uint8_t *tx;
    size_t tx_len, tx_off, write_chunk;
    int shut_after_tx;  /* shutdown() once everything is written */
    int close_after_tx; /* close() once everything is written */
    uint64_t eagain_w;
    /* receiving */
    uint8_t *rx;
    size_t rx_cap, rx_len, read_max_per_cb;
    int no_read; /* leave data in the kernel (backpressure) */
    int close_on_eof;
    /* what happened */
    int connected, conn_err, eof, err, wr_err, closed;
    unsigned ncb, nread_cb;
    msgr_time_ns t_conn, t_eof, t_err, t_rx_done, t_first_cb;
    uint64_t rx_trace; /* hash of (time, bytes) of each read */
    struct msgr_addr peer;
};

struct fx {
    struct sim_world *w;
    struct sim_host *h1, *h2, *h3;
    struct msgr_stack *st1, *st2, *st3;
    const struct msgr_stack_ops *ops;
    struct msgr_listener *l;
    unsigned accept_calls;
    int accept_off;     /* the accept callback accepts nothing */
    int close_l_in_cb;  /* ... or closes the listener after one accept */
    struct ep srv_tmpl; /* copied into each accepted ep */
    struct ep srv[MAXEP];
    int nsrv;
    struct ep cli[MAXEP];
};

#define ON(st, stmt)                                  \
    do {                                              \
        struct msgr_worker *on_w_ = (st)->workers[0]; \
        sim__worker_enter(on_w_);                     \
        stmt;                                         \
        sim__worker_leave(on_w_);                     \
    } while (0)

/* ------------------------------------------------------------- patterns */

static uint8_t
pat(size_t i)
{
    uint64_t x = i * 0x9e3779b97f4a7c15ull;

    return (uint8_t)(x >> 56);
}

static uint8_t *
pattern_buf(size_t n)
{
    uint8_t *b = malloc(n);
    size_t i;

    assert_non_null(b);
    for (i = 0; i < n; i++)
        b[i] = pat(i);
    return b;
}

static uint64_t
mix(uint64_t h, uint64_t v)
{
    h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    return h * 0x100000001b3ull;
}

/* -------------------------------------------------------------- the ep */

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
        if (!e->eof && !e->no_read)
            want |= MSGR_IO_READ;
        if (e->tx_off < e->tx_len && !e->wr_err)
            want |= MSGR_IO_WRITE;
    }
    e->fx->ops->io_want(e->s, want);
}

static void
ep_close(struct ep *e, int abortive)
{
    if (e->closed || !e->s)
        return;
    e->fx->ops->close(e->s, abortive);
    e->closed = 1;
    e->s = NULL;
}

static void
ep_read(struct ep *e)
{
    const struct msgr_stack_ops *ops = e->fx->ops;
    size_t got = 0;

    e->nread_cb++;
    for (;;) {
        uint8_t tmp[3000];
        struct iovec iov[2];
        size_t want = sizeof(tmp);
        ssize_t n;

        if (e->read_max_per_cb && got >= e->read_max_per_cb)
            return;
        if (e->read_max_per_cb && want > e->read_max_per_cb - got)
            want = e->read_max_per_cb - got;
        /* two iovecs: the model must fill across them */
        iov[0].iov_base = tmp;
        iov[0].iov_len = want / 3;
        iov[1].iov_base = tmp + want / 3;
        iov[1].iov_len = want - want / 3;
        n = ops->readv(e->s, iov, 2);
        if (n > 0) {
            size_t k = (size_t)n;
            msgr_time_ns now = sim_now(e->fx->w);

            if (e->rx_len + k <= e->rx_cap)
                memcpy(e->rx + e->rx_len, tmp, k);
            e->rx_len += k;
            got += k;
            e->rx_trace = mix(mix(e->rx_trace, now), k);
            if (e->rx_len >= e->rx_cap && !e->t_rx_done)
                e->t_rx_done = now;
            continue;
        }
        if (n == 0) {
            e->eof = 1;
            e->t_eof = sim_now(e->fx->w);
        } else if (n != -EAGAIN) {
            e->err = (int)n;
            e->t_err = sim_now(e->fx->w);
        }
        return;
    }
}

static void
ep_write(struct ep *e)
{
    const struct msgr_stack_ops *ops = e->fx->ops;

    while (e->tx_off < e->tx_len) {
        size_t k = e->tx_len - e->tx_off;
        struct iovec iov;
        ssize_t n;

        if (e->write_chunk && k > e->write_chunk)
            k = e->write_chunk;
        iov.iov_base = (void *)(e->tx + e->tx_off);
        iov.iov_len = k;
        n = ops->writev(e->s, &iov, 1);
        if (n > 0) {
            e->tx_off += (size_t)n;
            continue;
        }
        if (n == -EAGAIN) {
            e->eagain_w++;
        } else {
            e->wr_err = (int)n;
            if (!e->err) {
                e->err = (int)n;
                e->t_err = sim_now(e->fx->w);
            }
        }
        return;
    }
    if (e->shut_after_tx == 1) {
        ops->shutdown(e->s);
        e->shut_after_tx = 2;
    }
}

static void
ep_io_cb(struct msgr_socket *s, unsigned events, void *arg)
{
    struct ep *e = arg;
    const struct msgr_stack_ops *ops = e->fx->ops;

    assert_ptr_equal(s, e->s);
    if (!e->ncb++)
        e->t_first_cb = sim_now(e->fx->w);
    if (!e->connected) {
        int r = ops->connect_result(s);

        if (r == -EINPROGRESS)
            return;
        e->t_conn = sim_now(e->fx->w);
        if (r) {
            e->conn_err = r;
            ep_want(e);
            return;
        }
        e->connected = 1;
    }
    if (events & MSGR_IO_READ)
        ep_read(e);
    if ((events & MSGR_IO_WRITE) && !e->err)
        ep_write(e);
    if ((e->eof && e->close_on_eof) ||
        (e->close_after_tx && e->tx_off == e->tx_len)) {
        /* from inside its own callback: the model must defer the free */
        ep_close(e, 0);
        return;
    }
    ep_want(e);
}

static void
accept_cb(struct msgr_listener *l, void *arg)
{
    struct fx *fx = arg;

    fx->accept_calls++;
    if (fx->accept_off)
        return;
    for (;;) {
        struct msgr_socket *s;
        struct msgr_addr peer;
        struct ep *e;
        int r = fx->ops->accept(l, fx->st2->workers[0], &s, &peer);

        if (r == -EAGAIN)
            return;
        assert_int_equal(r, 0);
        assert_true(fx->nsrv < MAXEP);
        e = &fx->srv[fx->nsrv++];
        *e = fx->srv_tmpl;
        e->fx = fx;
        e->s = s;
        e->st = fx->st2;
        e->connected = 1;
        e->peer = peer;
        if (e->rx_cap && !e->rx)
            e->rx = malloc(e->rx_cap);
        fx->ops->io_set(s, ep_io_cb, e, 0);
        ep_want(e);
        if (fx->close_l_in_cb) {
            /* from inside its own callback: freed after it returns */
            fx->ops->listener_close(l);
            fx->l = NULL;
            return;
        }
    }
}

/* ------------------------------------------------------------- fixture */

static struct fx *
fx_new(uint64_t seed)
{
    struct fx *fx = calloc(1, sizeof(*fx));
    struct sim_stack_config cfg = {.nworkers = 1};
    int err = 0;

    assert_non_null(fx);
    fx->w = sim_world_new(seed);
    assert_non_null(fx->w);
    fx->h1 = sim_host_new(fx->w, 1, "h1", IP1);
    fx->h2 = sim_host_new(fx->w, 2, "h2", IP2);
    fx->h3 = sim_host_new(fx->w, 3, "h3", IP3);
    assert_non_null(fx->h3);
    fx->st1 = sim_stack_new(fx->w, fx->h1, &cfg, &err);
    fx->st2 = sim_stack_new(fx->w, fx->h2, &cfg, &err);
    fx->st3 = sim_stack_new(fx->w, fx->h3, &cfg, &err);
    assert_non_null(fx->st3);
    fx->ops = fx->st1->ops;
    return fx;
}

static int
setup(void **state)
{
    *state = fx_new(42);
    return 0;
}

static void
fx_free(struct fx *fx)
{
    int i;

    for (i = 0; i < MAXEP; i++) {
        if (fx->cli[i].s && !fx->cli[i].closed)
            ON(fx->cli[i].st, ep_close(&fx->cli[i], 0));
        free(fx->cli[i].rx);
    }
    for (i = 0; i < fx->nsrv; i++) {
        if (fx->srv[i].s && !fx->srv[i].closed)
            ON(fx->srv[i].st, ep_close(&fx->srv[i], 0));
        free(fx->srv[i].rx);
    }
    if (fx->l)
        ON(fx->st2, fx->ops->listener_close(fx->l));
    msgr_stack_unref(fx->st1);
    msgr_stack_unref(fx->st2);
    msgr_stack_unref(fx->st3);
    sim_world_free(fx->w);
    free(fx);
}

static int
teardown(void **state)
{
    fx_free(*state);
    return 0;
}

static void
fx_listen(struct fx *fx, int backlog, int start)
{
    struct msgr_listen_opts o = {.backlog = backlog, .reuse_addr = 1};
    struct msgr_addr a;
    int r;

    sim_host_addr(fx->h2, PORT, &a);
    ON(fx->st2,
       r = fx->ops->listen(fx->st2->workers[0], &a, &o, accept_cb, fx, &fx->l));
    assert_int_equal(r, 0);
    if (start)
        ON(fx->st2, fx->ops->listener_start(fx->l));
}

static void
fx_connect(struct fx *fx, struct msgr_stack *st, struct sim_host *to,
           uint16_t port, struct ep *e)
{
    struct msgr_addr a;
    int r;

    e->fx = fx;
    e->st = st;
    sim_host_addr(to, port, &a);
    ON(st, r = fx->ops->connect(st->workers[0], &a, &e->s));
    assert_int_equal(r, 0);
    assert_non_null(e->s);
    if (e->rx_cap && !e->rx)
        e->rx = malloc(e->rx_cap);
    ON(st, fx->ops->io_set(e->s, ep_io_cb, e, MSGR_IO_WRITE));
}

/* ep_want after the test changed what an ep should do */
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

    return sim_run_until_cond(fx->w, until_cb, &u, sim_now(fx->w) + for_ns);
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
c_rx_done(struct fx *fx, void *arg)
{
    struct ep *e = arg;

    (void)fx;
    return e->rx_len >= e->rx_cap || e->err || e->eof;
}

static int
c_err(struct fx *fx, void *arg)
{
    struct ep *e = arg;

    (void)fx;
    return e->err || e->eof;
}

static int
c_srv0_done(struct fx *fx, void *arg)
{
    (void)arg;
    return fx->nsrv > 0 && c_rx_done(fx, &fx->srv[0]);
}

static int
c_srv0_err(struct fx *fx, void *arg)
{
    (void)arg;
    return fx->nsrv > 0 && c_err(fx, &fx->srv[0]);
}

/* Connects cli[0] to the listener and waits for the accept. */
static void
fx_pair(struct fx *fx)
{
    int one = 1;

    fx_connect(fx, fx->st1, fx->h2, PORT, &fx->cli[0]);
    /* long enough for a lost SYN or SYN-ACK to be sent again */
    assert_true(run_until(fx, c_connected, &fx->cli[0], 10 * S_NS));
    assert_int_equal(fx->cli[0].conn_err, 0);
    assert_true(run_until(fx, c_nsrv, &one, 10 * S_NS));
}

static void
link_both(struct fx *fx, struct sim_host *a, struct sim_host *b,
          const struct sim_link_params *p)
{
    sim_link_set(fx->w, a, b, p);
    sim_link_set(fx->w, b, a, p);
}

/* --------------------------------------------------------------- tests */

static void
test_connect_exchange(void **state)
{
    struct fx *fx = *state;
    struct ep *c = &fx->cli[0], *s;
    struct msgr_addr la, pa;
    struct sim_net_stats ns;
    msgr_time_ns t0 = sim_now(fx->w);
    unsigned ncb;
    int one = 1, r;

    fx_listen(fx, 0, 1);
    fx->srv_tmpl.tx = (const uint8_t *)"world";
    fx->srv_tmpl.tx_len = 5;
    fx->srv_tmpl.rx_cap = 5;
    c->tx = (const uint8_t *)"hello";
    c->tx_len = 5;
    c->rx_cap = 5;
    fx_connect(fx, fx->st1, fx->h2, PORT, c);
    /* io_set never calls back from inside itself */
    assert_int_equal(c->ncb, 0);
    assert_true(run_until(fx, c_connected, c, S_NS));
    assert_int_equal(c->conn_err, 0);
    /* one round trip at the default 100 us latency */
    assert_int_equal(c->t_conn - t0, 200 * US_NS);
    assert_true(run_until(fx, c_nsrv, &one, S_NS));
    s = &fx->srv[0];
    /* the final ACK: 1.5 round trips */
    assert_true(sim_now(fx->w) - t0 >= 300 * US_NS);
    assert_true(run_until(fx, c_rx_done, c, S_NS));
    assert_true(run_until(fx, c_srv0_done, NULL, S_NS));
    assert_memory_equal(c->rx, "world", 5);
    assert_memory_equal(s->rx, "hello", 5);

    /* addresses, as the kernel gives them */
    ON(fx->st1, r = fx->ops->local_addr(c->s, &la));
    assert_int_equal(r, 0);
    ON(fx->st1, r = fx->ops->peer_addr(c->s, &pa));
    assert_int_equal(r, 0);
    assert_int_equal(la.family, MSGR_AF_INET);
    assert_int_equal(la.type, MSGR_ADDR_MSGR2);
    assert_int_equal(la.port, 40000); /* the first ephemeral port */
    assert_memory_equal(la.ip, "\x0a\x00\x00\x01", 4);
    assert_int_equal(pa.port, PORT);
    assert_memory_equal(pa.ip, "\x0a\x00\x00\x02", 4);
    assert_int_equal(s->peer.port, 40000);
    assert_memory_equal(s->peer.ip, "\x0a\x00\x00\x01", 4);
    ON(fx->st2, r = fx->ops->local_addr(s->s, &la));
    assert_int_equal(la.port, PORT);
    ON(fx->st2, r = fx->ops->connect_result(s->s));
    assert_int_equal(r, 0);

    /* level triggered, but quiet when nothing is ready */
    ncb = c->ncb;
    sim_run_until(fx->w, sim_now(fx->w) + S_NS);
    assert_int_equal(c->ncb, ncb);
    /* io_want(WRITE) on a writable socket: called back, not inline */
    ON(fx->st1, fx->ops->io_want(c->s, MSGR_IO_WRITE));
    assert_int_equal(c->ncb, ncb);
    sim_step(fx->w);
    assert_int_equal(c->ncb, ncb + 1);

    sim_net_stats(fx->w, &ns);
    assert_int_equal(ns.connects, 1);
    assert_int_equal(ns.bytes_delivered, 10);
    assert_int_equal(ns.segments_dropped, 0);
    assert_int_equal(ns.retransmits, 0);
}

/* A transfer of n bytes cli[0] -> srv[0]; returns the virtual time. */
static msgr_time_ns
transfer(struct fx *fx, size_t n, msgr_time_ns limit)
{
    struct ep *c = &fx->cli[0], *s;
    uint8_t *src = pattern_buf(n);
    msgr_time_ns t0;

    fx->srv_tmpl.rx_cap = n;
    fx_listen(fx, 0, 1);
    fx_pair(fx);
    s = &fx->srv[0];
    t0 = sim_now(fx->w);
    c->tx = src;
    c->tx_len = n;
    c->write_chunk = 100000;
    ep_rearm(c);
    assert_true(run_until(fx, c_srv0_done, NULL, limit));
    assert_int_equal(s->err, 0);
    assert_int_equal(s->rx_len, n);
    assert_int_equal(c->tx_off, n);
    /* byte-exact and in order */
    assert_memory_equal(s->rx, src, n);
    c->tx = NULL;
    free(src);
    return s->t_rx_done - t0;
}

static void
test_large_transfer_jitter(void **state)
{
    struct fx *fx = *state;
    struct sim_link_params p = {.latency_ns = 500 * US_NS,
                                .jitter_ns = 400 * US_NS};
    struct sim_net_stats ns;
    size_t n = 8u << 20;
    uint64_t ev0 = sim_events_run(fx->w);
    msgr_time_ns t;

    link_both(fx, fx->h1, fx->h2, &p);
    t = transfer(fx, n, 60 * S_NS);
    /* 8 MiB into a 256 KiB send buffer: the writer hit EAGAIN */
    assert_true(fx->cli[0].eagain_w > 0);
    sim_net_stats(fx->w, &ns);
    assert_int_equal(ns.segments_dropped, 0);
    assert_int_equal(ns.retransmits, 0);
    assert_int_equal(ns.bytes_delivered, n);
    print_message("  8 MiB over 0.5 ms +0..0.4 ms jitter: %.3f s virtual, "
                  "%.2f events/KiB, %llu segments\n",
                  (double)t / S_NS,
                  (double)(sim_events_run(fx->w) - ev0) / (double)(n >> 10),
                  (unsigned long long)ns.segments_sent);
}

static void
test_large_transfer_slow_reader(void **state)
{
    struct fx *fx = *state;
    struct ep *c = &fx->cli[0];
    size_t n = 2u << 20;

    /* the reader takes 1000 bytes per callback: level triggering must
     * keep calling it while data waits */
    fx->srv_tmpl.read_max_per_cb = 1000;
    transfer(fx, n, 60 * S_NS);
    assert_true(fx->srv[0].nread_cb >= n / 1000);
    assert_true(c->eagain_w > 0);
}

static void
test_backpressure_window(void **state)
{
    struct fx *fx = *state;
    struct ep *c = &fx->cli[0], *s;
    uint8_t *src = pattern_buf(1u << 20);
    struct sim_net_stats ns;

    fx->srv_tmpl.no_read = 1;
    fx->srv_tmpl.rx_cap = 1u << 20;
    fx_listen(fx, 0, 1);
    fx_pair(fx);
    s = &fx->srv[0];
    c->tx = src;
    c->tx_len = 1u << 20;
    ep_rearm(c);
    sim_run_until(fx->w, sim_now(fx->w) + 10 * S_NS);
    /* receive buffer (256 KiB) + send buffer (256 KiB), no more; the
     * writer is woken only when a third of the send buffer is free, so
     * the last few ACKed bytes may stay unused */
    assert_true(c->tx_off <= 512u << 10);
    assert_true(c->tx_off > (512u << 10) - (256u << 10) / 3);
    assert_true(c->eagain_w > 0);
    sim_net_stats(fx->w, &ns);
    assert_int_equal(ns.bytes_delivered, 256u << 10);
    /* nobody gave up: the persist probes are answered */
    assert_int_equal(c->err, 0);
    sim_run_until(fx->w, sim_now(fx->w) + 2000 * S_NS);
    assert_int_equal(c->err, 0);
    /* the reader wakes up: everything flows */
    s->no_read = 0;
    ep_rearm(s);
    assert_true(run_until(fx, c_srv0_done, NULL, 200 * S_NS));
    assert_memory_equal(s->rx, src, 1u << 20);
    c->tx = NULL;
    free(src);
}

static void
test_transfer_loss(void **state)
{
    struct fx *fx = *state;
    struct sim_link_params p = {.latency_ns = 1 * MS_NS, .loss_ppm = 50000};
    struct sim_net_stats ns;
    size_t n = 1u << 20;
    msgr_time_ns t;

    link_both(fx, fx->h1, fx->h2, &p);
    t = transfer(fx, n, 600 * S_NS);
    sim_net_stats(fx->w, &ns);
    assert_true(ns.segments_dropped > 0);
    assert_true(ns.retransmits > 0);
    assert_int_equal(fx->srv[0].err, 0);
    print_message("  1 MiB at 5%% loss: %.3f s virtual, %llu dropped, "
                  "%llu retransmits\n",
                  (double)t / S_NS, (unsigned long long)ns.segments_dropped,
                  (unsigned long long)ns.retransmits);
}

static void
test_transfer_corruption(void **state)
{
    struct fx *fx = *state;
    struct sim_link_params p = {.latency_ns = 100 * US_NS,
                                .corrupt_ppm = 20000};
    struct sim_net_stats ns;
    struct ep *c = &fx->cli[0], *s;
    size_t n = 1u << 20, i;
    uint8_t *src = pattern_buf(n);
    uint64_t bits = 0;

    link_both(fx, fx->h1, fx->h2, &p);
    fx->srv_tmpl.rx_cap = n;
    fx_listen(fx, 0, 1);
    fx_pair(fx);
    s = &fx->srv[0];
    c->tx = src;
    c->tx_len = n;
    ep_rearm(c);
    assert_true(run_until(fx, c_srv0_done, NULL, 60 * S_NS));
    assert_int_equal(s->rx_len, n);
    for (i = 0; i < n; i++) {
        uint8_t d = s->rx[i] ^ src[i];

        while (d) {
            bits += d & 1u;
            d >>= 1;
        }
    }
    sim_net_stats(fx->w, &ns);
    assert_true(ns.segments_corrupted > 0);
    /* one flipped bit per corrupted segment, none lost */
    assert_int_equal(bits, ns.segments_corrupted);
    c->tx = NULL;
    free(src);
}

static void
test_refused(void **state)
{
    struct fx *fx = *state;
    struct ep *c = &fx->cli[0];
    struct sim_net_stats ns;
    msgr_time_ns t0 = sim_now(fx->w);
    ssize_t r;
    uint8_t b[4];
    struct iovec iov = {b, sizeof(b)};

    fx_connect(fx, fx->st1, fx->h2, PORT, c);
    assert_true(run_until(fx, c_connected, c, S_NS));
    assert_int_equal(c->conn_err, -ECONNREFUSED);
    assert_int_equal(c->t_conn - t0, 200 * US_NS);
    ON(fx->st1, r = fx->ops->connect_result(c->s));
    assert_int_equal(r, -ECONNREFUSED);
    /* the error is reported once by I/O, then EOF / EPIPE */
    ON(fx->st1, r = fx->ops->readv(c->s, &iov, 1));
    assert_int_equal(r, -ECONNREFUSED);
    ON(fx->st1, r = fx->ops->readv(c->s, &iov, 1));
    assert_int_equal(r, 0);
    ON(fx->st1, r = fx->ops->writev(c->s, &iov, 1));
    assert_int_equal(r, -EPIPE);
    sim_net_stats(fx->w, &ns);
    assert_int_equal(ns.refused, 1);
}

static void
test_connect_timeout_partition(void **state)
{
    struct fx *fx = *state;
    struct ep *c = &fx->cli[0];
    struct sim_net_stats ns;
    msgr_time_ns t0 = sim_now(fx->w);

    fx_listen(fx, 0, 1);
    sim_partition(fx->w, fx->h1, fx->h2, 1);
    sim_partition(fx->w, fx->h2, fx->h1, 1);
    fx_connect(fx, fx->st1, fx->h2, PORT, c);
    assert_true(run_until(fx, c_connected, c, 300 * S_NS));
    assert_int_equal(c->conn_err, -ETIMEDOUT);
    /* SYN at 0, 1, 3, 7, 15, 31, 63 s; given up at 127 s (Linux) */
    assert_int_equal(c->t_conn - t0, 127 * S_NS);
    sim_net_stats(fx->w, &ns);
    assert_int_equal(ns.timeouts, 1);
    assert_int_equal(ns.retransmits, 6);
    assert_int_equal(ns.segments_dropped, 7);
}

static void
test_connect_no_such_host(void **state)
{
    struct fx *fx = *state;
    struct ep *c = &fx->cli[0];
    struct msgr_addr a;
    int r;

    sim_host_addr(fx->h2, PORT, &a);
    a.ip[3] = 99; /* 10.0.0.99: nobody */
    c->fx = fx;
    c->st = fx->st1;
    ON(fx->st1, r = fx->ops->connect(fx->st1->workers[0], &a, &c->s));
    assert_int_equal(r, 0);
    ON(fx->st1, fx->ops->io_set(c->s, ep_io_cb, c, MSGR_IO_WRITE));
    assert_true(run_until(fx, c_connected, c, 300 * S_NS));
    assert_int_equal(c->conn_err, -ETIMEDOUT);
}

static void
test_partition_heal(void **state)
{
    struct fx *fx = *state;
    struct ep *c = &fx->cli[0], *s;
    size_t n = 1u << 20;
    uint8_t *src = pattern_buf(n);
    struct sim_net_stats ns;
    struct sim_link_params p = {.latency_ns = 5 * MS_NS};

    /* 4 windows of 256 KiB: 4 round trips of 10 ms */
    link_both(fx, fx->h1, fx->h2, &p);
    fx->srv_tmpl.rx_cap = n;
    fx_listen(fx, 0, 1);
    fx_pair(fx);
    s = &fx->srv[0];
    c->tx = src;
    c->tx_len = n;
    ep_rearm(c);
    sim_run_until(fx->w, sim_now(fx->w) + 12 * MS_NS);
    assert_true(s->rx_len > 0);
    assert_true(s->rx_len < n);
    sim_partition(fx->w, fx->h1, fx->h2, 1);
    sim_partition(fx->w, fx->h2, fx->h1, 1);
    sim_run_until(fx->w, sim_now(fx->w) + 60 * S_NS);
    assert_true(s->rx_len < n);
    assert_int_equal(c->err, 0);
    sim_partition(fx->w, fx->h1, fx->h2, 0);
    sim_partition(fx->w, fx->h2, fx->h1, 0);
    /* the next retransmission (backed off: up to ~51 s) gets through */
    assert_true(run_until(fx, c_srv0_done, NULL, 200 * S_NS));
    assert_int_equal(s->rx_len, n);
    assert_memory_equal(s->rx, src, n);
    assert_int_equal(c->err, 0);
    sim_net_stats(fx->w, &ns);
    assert_true(ns.retransmits > 0);
    assert_int_equal(ns.timeouts, 0);
    c->tx = NULL;
    free(src);
}

static void
test_partition_timeout(void **state)
{
    struct fx *fx = *state;
    struct ep *c = &fx->cli[0];
    uint8_t *src = pattern_buf(100000);
    struct sim_net_stats ns;
    msgr_time_ns t0;

    fx_listen(fx, 0, 1);
    fx_pair(fx);
    sim_partition(fx->w, fx->h1, fx->h2, 1);
    sim_partition(fx->w, fx->h2, fx->h1, 1);
    t0 = sim_now(fx->w);
    c->tx = src;
    c->tx_len = 100000;
    ep_rearm(c);
    assert_true(run_until(fx, c_err, c, 2000 * S_NS));
    assert_int_equal(c->err, -ETIMEDOUT);
    /* 15 retransmissions from a ~200 ms RTO, doubling, capped at 120 s:
     * about 924.6 s like Linux's tcp_retries2 */
    assert_true(c->t_err - t0 > 920 * S_NS);
    assert_true(c->t_err - t0 < 930 * S_NS);
    sim_net_stats(fx->w, &ns);
    assert_int_equal(ns.timeouts, 1);
    assert_int_equal(ns.retransmits, 15);
    /* the server side heard nothing and still waits */
    assert_int_equal(fx->srv[0].err, 0);
    assert_int_equal(fx->srv[0].eof, 0);
    c->tx = NULL;
    free(src);
}

static void
test_fin_eof(void **state)
{
    struct fx *fx = *state;
    struct ep *c = &fx->cli[0], *s;
    size_t n = 300000;
    uint8_t *src = pattern_buf(n);

    fx->srv_tmpl.rx_cap = n;
    fx->srv_tmpl.close_on_eof = 1;
    fx_listen(fx, 0, 1);
    fx_pair(fx);
    s = &fx->srv[0];
    c->tx = src;
    c->tx_len = n;
    /* the client writes it all, then closes (from its callback) */
    c->close_after_tx = 1;
    ep_rearm(c);
    assert_true(run_until(fx, c_srv0_err, NULL, 10 * S_NS));
    assert_int_equal(s->eof, 1);
    assert_int_equal(s->err, 0);
    assert_int_equal(s->rx_len, n);
    assert_memory_equal(s->rx, src, n);
    assert_true(c->closed);
    assert_true(s->closed);
    /* both orphans finish their FIN exchange and go away */
    sim_run_until(fx->w, sim_now(fx->w) + 10 * S_NS);
    assert_int_equal(sim_events_pending(fx->w), 0);
    c->tx = NULL;
    free(src);
}

static void
test_shutdown(void **state)
{
    struct fx *fx = *state;
    struct ep *c = &fx->cli[0], *s;
    uint8_t b[8];
    struct iovec iov = {b, sizeof(b)};
    ssize_t r;

    fx->srv_tmpl.rx_cap = 3;
    fx_listen(fx, 0, 1);
    fx_pair(fx);
    s = &fx->srv[0];
    c->tx = (const uint8_t *)"abc";
    c->tx_len = 3;
    c->shut_after_tx = 1;
    ep_rearm(c);
    assert_true(run_until(fx, c_srv0_err, NULL, S_NS));
    assert_int_equal(s->eof, 1);
    assert_memory_equal(s->rx, "abc", 3);
    assert_int_equal(c->shut_after_tx, 2);
    ON(fx->st1, r = fx->ops->writev(c->s, &iov, 1));
    assert_int_equal(r, -EPIPE);
    ON(fx->st1, r = fx->ops->readv(c->s, &iov, 1));
    assert_int_equal(r, 0);
    /* the server's data to a shut-down socket resets it */
    ON(fx->st2, r = fx->ops->writev(s->s, &iov, 1));
    assert_int_equal(r, (ssize_t)sizeof(b));
    sim_run_until(fx->w, sim_now(fx->w) + S_NS);
    ON(fx->st2, r = fx->ops->writev(s->s, &iov, 1));
    assert_int_equal(r, -ECONNRESET);
}

static void
test_rst_abortive(void **state)
{
    struct fx *fx = *state;
    struct ep *c = &fx->cli[0], *s;
    uint8_t b[8];
    struct iovec iov = {b, sizeof(b)};
    struct sim_net_stats ns;
    msgr_time_ns t0;
    ssize_t r;

    fx_listen(fx, 0, 1);
    fx_pair(fx);
    s = &fx->srv[0];
    t0 = sim_now(fx->w);
    ON(fx->st1, ep_close(c, 1));
    assert_true(run_until(fx, c_srv0_err, NULL, S_NS));
    /* READ readiness, then -ECONNRESET on the first call */
    assert_int_equal(s->err, -ECONNRESET);
    assert_int_equal(s->t_err - t0, 100 * US_NS);
    ON(fx->st2, r = fx->ops->readv(s->s, &iov, 1));
    assert_int_equal(r, 0);
    ON(fx->st2, r = fx->ops->writev(s->s, &iov, 1));
    assert_int_equal(r, -EPIPE);
    sim_net_stats(fx->w, &ns);
    assert_int_equal(ns.resets, 1);
}

static void
test_close_unread_resets(void **state)
{
    struct fx *fx = *state;
    struct ep *c = &fx->cli[0], *s;

    fx->srv_tmpl.no_read = 1;
    fx_listen(fx, 0, 1);
    fx_pair(fx);
    s = &fx->srv[0];
    c->tx = (const uint8_t *)"unread";
    c->tx_len = 6;
    ep_rearm(c);
    sim_run_until(fx->w, sim_now(fx->w) + 10 * MS_NS);
    /* a normal close with unread data is a reset (Linux, RFC 2525) */
    ON(fx->st2, ep_close(s, 0));
    assert_true(run_until(fx, c_err, c, S_NS));
    assert_int_equal(c->err, -ECONNRESET);
}

static void
test_reset_between(void **state)
{
    struct fx *fx = *state;
    struct ep *c = &fx->cli[0], *s;
    struct sim_net_stats ns;
    msgr_time_ns t0;
    int n;

    fx_listen(fx, 0, 1);
    fx_pair(fx);
    s = &fx->srv[0];
    t0 = sim_now(fx->w);
    n = sim_reset_between(fx->w, fx->h1, fx->h2);
    assert_int_equal(n, 1);
    assert_true(run_until(fx, c_err, c, S_NS));
    assert_true(run_until(fx, c_srv0_err, NULL, S_NS));
    assert_int_equal(c->err, -ECONNRESET);
    assert_int_equal(s->err, -ECONNRESET);
    /* now: no network trip */
    assert_int_equal(c->t_err, t0);
    assert_int_equal(s->t_err, t0);
    assert_int_equal(sim_reset_between(fx->w, fx->h1, fx->h2), 0);
    sim_net_stats(fx->w, &ns);
    assert_int_equal(ns.resets, 2);
}

static void
test_reset_prob(void **state)
{
    struct fx *fx = *state;
    struct ep *c = &fx->cli[0], *s;
    size_t n = 1u << 20;
    uint8_t *src = pattern_buf(n);

    fx->srv_tmpl.rx_cap = n;
    fx_listen(fx, 0, 1);
    fx_pair(fx);
    s = &fx->srv[0];
    /* 1% per op on h2's sockets to h1: the reading side */
    sim_reset_prob(fx->w, fx->h2, fx->h1, 10000);
    c->tx = src;
    c->tx_len = n;
    ep_rearm(c);
    assert_true(run_until(fx, c_srv0_err, NULL, 60 * S_NS));
    assert_true(run_until(fx, c_err, c, 60 * S_NS));
    assert_int_equal(s->err, -ECONNRESET);
    assert_int_equal(c->err, -ECONNRESET);
    assert_true(s->rx_len < n);
    /* what arrived before the reset is intact */
    assert_memory_equal(s->rx, src, s->rx_len);
    c->tx = NULL;
    free(src);
}

static void
test_host_kill(void **state)
{
    struct fx *fx = *state;
    struct ep *c = &fx->cli[0];
    struct sim_net_stats ns;
    msgr_time_ns t0;
    unsigned srv_ncb;

    fx_listen(fx, 0, 1);
    fx_pair(fx);
    srv_ncb = fx->srv[0].ncb;
    t0 = sim_now(fx->w);
    sim_host_kill(fx->w, fx->h2);
    assert_true(run_until(fx, c_err, c, S_NS));
    assert_int_equal(c->err, -ECONNRESET);
    assert_int_equal(c->t_err - t0, 100 * US_NS);
    /* the dead process is never called back */
    sim_run_until(fx->w, sim_now(fx->w) + S_NS);
    assert_int_equal(fx->srv[0].ncb, srv_ncb);
    /* its kernel lives on: no listener, so refused */
    fx_connect(fx, fx->st1, fx->h2, PORT, &fx->cli[1]);
    assert_true(run_until(fx, c_connected, &fx->cli[1], S_NS));
    assert_int_equal(fx->cli[1].conn_err, -ECONNREFUSED);
    sim_net_stats(fx->w, &ns);
    assert_int_equal(ns.resets, 1);
}

static void
test_host_crash(void **state)
{
    struct fx *fx = *state;
    struct ep *c = &fx->cli[0];
    uint8_t *src = pattern_buf(10000);
    msgr_time_ns t0;

    fx_listen(fx, 0, 1);
    fx_pair(fx);
    sim_host_crash(fx->w, fx->h2);
    t0 = sim_now(fx->w);
    sim_run_until(fx->w, t0 + 10 * S_NS);
    /* silence: no RST */
    assert_int_equal(c->err, 0);
    c->tx = src;
    c->tx_len = 10000;
    ep_rearm(c);
    assert_true(run_until(fx, c_err, c, 2000 * S_NS));
    assert_int_equal(c->err, -ETIMEDOUT);
    assert_true(c->t_err - t0 > 900 * S_NS);
    c->tx = NULL;
    free(src);
}

static void
test_host_crash_revive_rst(void **state)
{
    struct fx *fx = *state;
    struct ep *c = &fx->cli[0];
    uint8_t *src = pattern_buf(10000);

    fx_listen(fx, 0, 1);
    fx_pair(fx);
    sim_host_crash(fx->w, fx->h2);
    c->tx = src;
    c->tx_len = 10000;
    ep_rearm(c);
    sim_run_until(fx->w, sim_now(fx->w) + 5 * S_NS);
    assert_int_equal(c->err, 0);
    /* back, but with no memory of the connection: the next
     * retransmission is answered with an RST */
    sim_host_revive(fx->w, fx->h2);
    assert_true(run_until(fx, c_err, c, 100 * S_NS));
    assert_int_equal(c->err, -ECONNRESET);
    c->tx = NULL;
    free(src);
}

static void
test_host_pause(void **state)
{
    struct fx *fx = *state;
    struct ep *c = &fx->cli[0], *s;
    size_t n = 100000;
    uint8_t *src = pattern_buf(n);
    struct sim_net_stats ns;
    unsigned ncb;
    msgr_time_ns t_resume;

    fx->srv_tmpl.rx_cap = n;
    fx_listen(fx, 0, 1);
    fx_pair(fx);
    s = &fx->srv[0];
    sim_host_pause(fx->w, fx->h2);
    ncb = s->ncb;
    c->tx = src;
    c->tx_len = n;
    ep_rearm(c);
    sim_run_until(fx->w, sim_now(fx->w) + 5 * S_NS);
    /* no callback ran, but the kernel took (and acknowledged) it all */
    assert_int_equal(s->ncb, ncb);
    assert_int_equal(s->rx_len, 0);
    assert_int_equal(c->tx_off, n);
    sim_net_stats(fx->w, &ns);
    assert_int_equal(ns.bytes_delivered, n);
    assert_int_equal(ns.retransmits, 0);
    t_resume = sim_now(fx->w);
    sim_host_resume(fx->w, fx->h2);
    assert_true(run_until(fx, c_srv0_done, NULL, S_NS));
    assert_int_equal(s->t_rx_done, t_resume);
    assert_memory_equal(s->rx, src, n);
    c->tx = NULL;
    free(src);
}

static void
test_listen_ports(void **state)
{
    struct fx *fx = *state;
    struct msgr_listener *l2 = NULL, *l3 = NULL;
    struct msgr_listen_opts o = {0};
    struct msgr_addr a, b;
    int r;

    fx_listen(fx, 0, 1);
    sim_host_addr(fx->h2, PORT, &a);
    ON(fx->st2,
       r = fx->ops->listen(fx->st2->workers[0], &a, &o, accept_cb, fx, &l2));
    assert_int_equal(r, -EADDRINUSE);
    assert_null(l2);
    /* port 0: the first ephemeral port, deterministically */
    a.port = 0;
    ON(fx->st2,
       r = fx->ops->listen(fx->st2->workers[0], &a, &o, accept_cb, fx, &l2));
    assert_int_equal(r, 0);
    ON(fx->st2, r = fx->ops->listener_addr(l2, &b));
    assert_int_equal(b.port, 40000);
    assert_memory_equal(b.ip, "\x0a\x00\x00\x02", 4);
    /* an address that is not the host's */
    sim_host_addr(fx->h1, 7000, &a);
    ON(fx->st2,
       r = fx->ops->listen(fx->st2->workers[0], &a, &o, accept_cb, fx, &l3));
    assert_int_equal(r, -EADDRNOTAVAIL);
    /* closing frees the port */
    ON(fx->st2, fx->ops->listener_close(l2));
    sim_host_addr(fx->h2, 40000, &a);
    ON(fx->st2,
       r = fx->ops->listen(fx->st2->workers[0], &a, &o, accept_cb, fx, &l3));
    assert_int_equal(r, 0);
    ON(fx->st2, fx->ops->listener_close(l3));
}

static void
test_backlog_full(void **state)
{
    struct fx *fx = *state;
    int i, two = 2, three = 3;
    msgr_time_ns t0 = sim_now(fx->w);

    fx_listen(fx, 2, 0); /* backlog 2, not started: nobody accepts */
    for (i = 0; i < 3; i++)
        fx_connect(fx, fx->st1, fx->h2, PORT, &fx->cli[i]);
    sim_run_until(fx->w, t0 + 100 * MS_NS);
    /* two handshakes completed; the third SYN was dropped */
    assert_true(fx->cli[0].connected);
    assert_true(fx->cli[1].connected);
    assert_false(fx->cli[2].connected);
    assert_int_equal(fx->cli[2].conn_err, 0);
    ON(fx->st2, fx->ops->listener_start(fx->l));
    assert_true(run_until(fx, c_nsrv, &two, S_NS));
    /* the SYN retry at 1 s finds room */
    assert_true(run_until(fx, c_nsrv, &three, 5 * S_NS));
    assert_true(fx->cli[2].connected);
    assert_int_equal(fx->cli[2].t_conn - t0, 1 * S_NS + 200 * US_NS);
}

static void
test_bandwidth(void **state)
{
    struct fx *fx = *state;
    struct sim_link_params p = {.latency_ns = 1 * MS_NS,
                                .bandwidth_bps = 10000000};
    size_t n = 2000000;
    msgr_time_ns t;
    double expect;

    link_both(fx, fx->h1, fx->h2, &p);
    t = transfer(fx, n, 60 * S_NS);
    /* payload plus 52 header bytes per 1448-byte segment */
    expect = (double)n * 1500.0 / 1448.0 * 8.0 / 1e7 * (double)S_NS;
    print_message("  2 MB at 10 Mbit/s: %.4f s virtual (line rate %.4f s)\n",
                  (double)t / S_NS, expect / S_NS);
    assert_true((double)t >= expect);
    assert_true((double)t <= expect * 1.03);
}

/* A lossy, jittery exchange both ways in a fresh world; what it saw. */
struct det {
    uint64_t fp, trace_c, trace_s, events;
    msgr_time_ns t_c, t_s;
};

static void
det_run(uint64_t seed, struct det *out)
{
    struct fx *fx = fx_new(seed);
    struct sim_link_params p = {.latency_ns = 300 * US_NS,
                                .jitter_ns = 300 * US_NS,
                                .loss_ppm = 20000,
                                .corrupt_ppm = 1000};
    size_t n = 512u << 10;
    uint8_t *src = pattern_buf(n);
    struct ep *c = &fx->cli[0];

    link_both(fx, fx->h1, fx->h2, &p);
    fx->srv_tmpl.rx_cap = n;
    fx->srv_tmpl.tx = src;
    fx->srv_tmpl.tx_len = n;
    c->rx_cap = n;
    fx_listen(fx, 0, 1);
    fx_pair(fx);
    c->tx = src;
    c->tx_len = n;
    ep_rearm(c);
    assert_true(run_until(fx, c_srv0_done, NULL, 300 * S_NS));
    assert_true(run_until(fx, c_rx_done, c, 300 * S_NS));
    out->fp = sim_fingerprint(fx->w);
    out->trace_c = c->rx_trace;
    out->trace_s = fx->srv[0].rx_trace;
    out->t_c = c->t_rx_done;
    out->t_s = fx->srv[0].t_rx_done;
    out->events = sim_events_run(fx->w);
    c->tx = NULL;
    fx->srv[0].tx = NULL;
    fx_free(fx);
    free(src);
}

static void
test_determinism(void **state)
{
    struct det a, b, d;

    (void)state;
    det_run(7, &a);
    det_run(7, &b);
    det_run(8, &d);
    assert_int_equal(a.fp, b.fp);
    assert_int_equal(a.trace_c, b.trace_c);
    assert_int_equal(a.trace_s, b.trace_s);
    assert_int_equal(a.t_c, b.t_c);
    assert_int_equal(a.t_s, b.t_s);
    assert_int_equal(a.events, b.events);
    assert_int_not_equal(a.fp, d.fp);
    assert_int_not_equal(a.trace_s, d.trace_s);
}

static void
test_loopback_and_self(void **state)
{
    struct fx *fx = *state;
    struct ep *c = &fx->cli[0];
    struct msgr_listen_opts o = {0};
    struct msgr_listener *l = NULL;
    struct msgr_addr a, la;
    int one = 1, r;

    /* a listener on any address of h2, a client on h2 itself */
    memset(&a, 0, sizeof(a));
    a.type = MSGR_ADDR_MSGR2;
    a.family = MSGR_AF_INET;
    a.port = PORT;
    ON(fx->st2,
       r = fx->ops->listen(fx->st2->workers[0], &a, &o, accept_cb, fx, &l));
    assert_int_equal(r, 0);
    fx->l = l;
    ON(fx->st2, fx->ops->listener_start(l));
    a.ip[0] = 127;
    a.ip[3] = 1;
    c->fx = fx;
    c->st = fx->st2;
    ON(fx->st2, r = fx->ops->connect(fx->st2->workers[0], &a, &c->s));
    assert_int_equal(r, 0);
    ON(fx->st2, fx->ops->io_set(c->s, ep_io_cb, c, MSGR_IO_WRITE));
    assert_true(run_until(fx, c_connected, c, S_NS));
    assert_int_equal(c->conn_err, 0);
    assert_true(run_until(fx, c_nsrv, &one, S_NS));
    ON(fx->st2, fx->ops->local_addr(c->s, &la));
    assert_memory_equal(la.ip, "\x7f\x00\x00\x01", 4);
    assert_int_equal(fx->srv[0].peer.port, la.port);
    /* INET6: no routes */
    a.family = MSGR_AF_INET6;
    ON(fx->st2, r = fx->ops->connect(fx->st2->workers[0], &a, &fx->cli[1].s));
    assert_int_equal(r, -ENETUNREACH);
    assert_null(fx->cli[1].s);
}

static void
test_close_cancels_and_in_callback(void **state)
{
    struct fx *fx = *state;
    struct ep *c = &fx->cli[0], *s;
    struct sim_net_stats ns;
    int one = 1;

    fx->close_l_in_cb = 1;
    fx->srv_tmpl.no_read = 1;
    fx_listen(fx, 0, 1);
    fx_pair(fx);
    assert_null(fx->l); /* closed by the accept callback */
    s = &fx->srv[0];
    c->tx = (const uint8_t *)"x";
    c->tx_len = 1;
    ep_rearm(c);
    sim_run_until(fx->w, sim_now(fx->w) + 10 * MS_NS);
    /* data waits; READ interest schedules a callback; close() before it
     * runs must cancel it (ASan would see it run on freed memory) */
    s->no_read = 0;
    ep_rearm(s);
    ON(fx->st2, ep_close(s, 1));
    sim_run_until(fx->w, sim_now(fx->w) + S_NS);
    assert_int_equal(c->err, -ECONNRESET);
    /* the listener is gone: a new connection is refused */
    fx_connect(fx, fx->st1, fx->h2, PORT, &fx->cli[1]);
    assert_true(run_until(fx, c_connected, &fx->cli[1], S_NS));
    assert_int_equal(fx->cli[1].conn_err, -ECONNREFUSED);
    assert_int_equal(fx->nsrv, one);
    sim_net_stats(fx->w, &ns);
    assert_int_equal(ns.refused, 1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
        T(test_connect_exchange),
        T(test_large_transfer_jitter),
        T(test_large_transfer_slow_reader),
        T(test_backpressure_window),
        T(test_transfer_loss),
        T(test_transfer_corruption),
        T(test_refused),
        T(test_connect_timeout_partition),
        T(test_connect_no_such_host),
        T(test_partition_heal),
        T(test_partition_timeout),
        T(test_fin_eof),
        T(test_shutdown),
        T(test_rst_abortive),
        T(test_close_unread_resets),
        T(test_reset_between),
        T(test_reset_prob),
        T(test_host_kill),
        T(test_host_crash),
        T(test_host_crash_revive_rst),
        T(test_host_pause),
        T(test_listen_ports),
        T(test_backlog_full),
        T(test_bandwidth),
        T(test_loopback_and_self),
        T(test_close_cancels_and_in_callback),
        cmocka_unit_test(test_determinism),
#undef T
    };

    return cmocka_run_group_tests_name("sim_tcp", tests, NULL, NULL);
}
