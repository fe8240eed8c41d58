/*
 * The fault layer over the posix stack: real TCP on 127.0.0.1, real
 * threads. The simulator covers every fault exactly (test_sim_fault_layer);
 * this checks that the same faults work on real sockets and threads:
 * pass-through, socket failures, partition and heal, reset, receive delay,
 * delayed posts from several threads.
 *
 * cmocka unwinds with longjmp, so workers never assert: they record into
 * atomics (or plain fields read only once a release store says the worker
 * is done with them), and the main thread waits and asserts.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "msgr/fault.h"
#include "msgr/stack.h"

#define WAIT_NS (20 * MSGR_NS_PER_S)
#define MS_NS   MSGR_NS_PER_MS

struct fx;

struct ep {
    struct fx *fx;
    struct msgr_socket *s;
    int worker; /* of the fault stack, servicing s */
    /* sending (worker-only, but tx_off is published) */
    const uint8_t *tx;
    size_t tx_len, write_chunk;
    atomic_size_t tx_off;
    /* receiving */
    uint8_t *rx;
    size_t rx_cap;
    atomic_size_t rx_len;
    int close_on_eof;
    /* what happened (published) */
    atomic_int connected, err, eof, closed, fail_on_write;
    atomic_uint ncb;
    atomic_ullong nio;
    _Atomic msgr_time_ns t_first_rx;
    /* move the socket to this worker from inside a callback; -1: no */
    int move_to;
    atomic_int moved, wrong_worker;
};

struct fx {
    struct msgr_stack *inner, *st;
    const struct msgr_stack_ops *ops;
    struct msgr_listener *l;
    uint16_t port;
    struct ep cli, srv;
    atomic_int accepted;
};

static uint8_t
pat(size_t i)
{
    uint64_t x = (i + 1) * 0x9e3779b97f4a7c15ull;

    return (uint8_t)(x >> 56);
}

static uint8_t *
pattern_buf(size_t n, size_t salt)
{
    uint8_t *b = malloc(n);

    assert_non_null(b);
    for (size_t i = 0; i < n; i++)
        b[i] = pat(i + salt);
    return b;
}

static msgr_time_ns
now(struct fx *fx)
{
    return fx->ops->now_ns(fx->st);
}

/* ---- run a function on a worker and wait for it ---- */

struct call {
    void (*fn)(void *arg);
    void *arg;
    atomic_int done;
};

static void
call_cb(void *p)
{
    struct call *c = p;

    c->fn(c->arg);
    atomic_store_explicit(&c->done, 1, memory_order_release);
}

static int
flag_set(void *p)
{
    return atomic_load_explicit((atomic_int *)p, memory_order_acquire);
}

static int
never(void *p)
{
    (void)p;
    return 0;
}

static void
run_on(struct fx *fx, int wid, void (*fn)(void *arg), void *arg)
{
    struct call c = {.fn = fn, .arg = arg};

    atomic_init(&c.done, 0);
    assert_int_equal(fx->ops->post(fx->st->workers[wid], call_cb, &c), 0);
    assert_true(fx->ops->wait_until(fx->st, flag_set, &c.done, WAIT_NS));
}

static void
nop_cb(void *arg)
{
    (void)arg;
}

/* Everything workers 0 and 1 did so far happens before what follows
 * (before freeing a buffer a worker sent from, say). */
static void
sync_workers(struct fx *fx)
{
    run_on(fx, 0, nop_cb, NULL);
    run_on(fx, 1, nop_cb, NULL);
}

static void
pause_ms(struct fx *fx, unsigned ms)
{
    fx->ops->wait_until(fx->st, never, NULL, ms * MS_NS);
}

/* ------------------------------------------------------------------ ep */

static void
ep_want(struct ep *e)
{
    unsigned want = 0;

    if (atomic_load(&e->closed))
        return;
    if (!atomic_load(&e->connected)) {
        want = MSGR_IO_WRITE;
    } else if (!atomic_load(&e->err)) {
        if (!atomic_load(&e->eof))
            want |= MSGR_IO_READ;
        if (atomic_load(&e->tx_off) < e->tx_len)
            want |= MSGR_IO_WRITE;
    }
    e->fx->ops->io_want(e->s, want);
}

static void
ep_close(struct ep *e, int abortive)
{
    if (atomic_load(&e->closed) || !e->s)
        return;
    e->fx->ops->close(e->s, abortive);
    e->s = NULL;
    atomic_store(&e->closed, 1);
}

static void
ep_fail(struct ep *e, int err, int writing)
{
    if (atomic_load(&e->err))
        return;
    atomic_store(&e->fail_on_write, writing);
    atomic_store(&e->err, err);
}

static void
ep_read(struct ep *e)
{
    for (;;) {
        uint8_t tmp[4096];
        struct iovec iov = {tmp, sizeof(tmp)};
        ssize_t n;

        atomic_fetch_add(&e->nio, 1);
        n = e->fx->ops->readv(e->s, &iov, 1);
        if (n > 0) {
            size_t have = atomic_load(&e->rx_len);

            if (!atomic_load(&e->t_first_rx))
                atomic_store(&e->t_first_rx, now(e->fx));
            if (e->rx && have + (size_t)n <= e->rx_cap)
                memcpy(e->rx + have, tmp, (size_t)n);
            atomic_store_explicit(&e->rx_len, have + (size_t)n,
                                  memory_order_release);
            continue;
        }
        if (n == 0)
            atomic_store(&e->eof, 1);
        else if (n != -EAGAIN)
            ep_fail(e, (int)n, 0);
        return;
    }
}

static void
ep_write(struct ep *e)
{
    for (;;) {
        size_t off = atomic_load(&e->tx_off), k = e->tx_len - off;
        struct iovec iov;
        ssize_t n;

        if (!k)
            return;
        if (e->write_chunk && k > e->write_chunk)
            k = e->write_chunk;
        iov.iov_base = (void *)(e->tx + off);
        iov.iov_len = k;
        atomic_fetch_add(&e->nio, 1);
        n = e->fx->ops->writev(e->s, &iov, 1);
        if (n > 0) {
            atomic_store(&e->tx_off, off + (size_t)n);
            continue;
        }
        if (n != -EAGAIN)
            ep_fail(e, (int)n, 1);
        return;
    }
}

static void srv_start_cb(void *arg);

static void
ep_io_cb(struct msgr_socket *s, unsigned events, void *arg)
{
    struct ep *e = arg;

    (void)s;
    atomic_fetch_add(&e->ncb, 1);
    if (!e->fx->ops->in_worker(e->fx->st->workers[e->worker]))
        atomic_fetch_add(&e->wrong_worker, 1);
    if (!atomic_load(&e->connected)) {
        int r = e->fx->ops->connect_result(e->s);

        if (r == -EINPROGRESS)
            return;
        if (r) {
            ep_fail(e, r, 0);
            e->fx->ops->io_want(e->s, 0);
            return;
        }
        atomic_store(&e->connected, 1);
    }
    if ((events & MSGR_IO_READ) && !atomic_load(&e->err))
        ep_read(e);
    if ((events & MSGR_IO_WRITE) && !atomic_load(&e->err))
        ep_write(e);
    if (e->close_on_eof && (atomic_load(&e->eof) || atomic_load(&e->err))) {
        ep_close(e, 0);
        return;
    }
    if (e->move_to >= 0 && !atomic_load(&e->moved) &&
        atomic_load(&e->rx_len) > 0) {
        /* as a resumed session does: hand the socket over from inside its
         * callback, the new worker takes it up at once */
        e->fx->ops->io_set(e->s, NULL, NULL, 0);
        e->fx->ops->socket_move(e->s, e->fx->st->workers[e->move_to]);
        e->worker = e->move_to;
        atomic_store(&e->moved, 1);
        if (e->fx->ops->post(e->fx->st->workers[e->move_to], srv_start_cb,
                             e) != 0)
            ep_fail(e, -ESHUTDOWN, 0);
        return;
    }
    ep_want(e);
}

static void
ep_rearm_cb(void *arg)
{
    ep_want(arg);
}

struct set_tx {
    struct ep *e;
    const uint8_t *tx;
    size_t len;
};

/* On the ep's worker, which alone reads tx and tx_len. */
static void
set_tx_cb(void *arg)
{
    struct set_tx *t = arg;

    t->e->tx = t->tx;
    t->e->tx_len = t->len;
    atomic_store(&t->e->tx_off, 0);
    ep_rearm_cb(t->e);
}

static void
ep_send(struct ep *e, const uint8_t *tx, size_t len)
{
    struct set_tx t = {e, tx, len};

    run_on(e->fx, e->worker, set_tx_cb, &t);
}

static void
ep_close_cb(void *arg)
{
    ep_close(arg, 0);
}

/* the accepted socket is serviced by worker 1: io_set runs there */
static void
srv_start_cb(void *arg)
{
    struct ep *e = arg;

    e->fx->ops->io_set(e->s, ep_io_cb, e, 0);
    ep_want(e);
}

static void
accept_cb(struct msgr_listener *l, void *arg)
{
    struct fx *fx = arg;
    struct msgr_socket *s;
    struct msgr_addr peer;

    while (fx->ops->accept(l, fx->st->workers[1], &s, &peer) == 0) {
        if (atomic_load(&fx->accepted)) {
            fx->ops->close(s, 1); /* one at a time */
            continue;
        }
        fx->srv.s = s;
        atomic_store(&fx->srv.connected, 1);
        if (fx->ops->post(fx->st->workers[1], srv_start_cb, &fx->srv) != 0)
            fx->ops->close(s, 1);
        atomic_store(&fx->accepted, 1);
    }
}

/* ------------------------------------------------------------- fixture */

static struct msgr_addr
loopback(uint16_t port)
{
    struct msgr_addr a;

    memset(&a, 0, sizeof(a));
    a.type = MSGR_ADDR_MSGR2;
    a.family = MSGR_AF_INET;
    a.port = port;
    a.ip[0] = 127;
    a.ip[3] = 1;
    return a;
}

struct listen_args {
    struct fx *fx;
    int r;
};

static void
listen_cb(void *arg)
{
    struct listen_args *la = arg;
    struct fx *fx = la->fx;
    struct msgr_listen_opts o = {.backlog = 16, .reuse_addr = 1};
    struct msgr_addr a = loopback(0), got;

    la->r = fx->ops->listen(fx->st->workers[0], &a, &o, accept_cb, fx,
                            &fx->l);
    if (la->r)
        return;
    fx->ops->listener_addr(fx->l, &got);
    fx->port = got.port;
    fx->ops->listener_start(fx->l);
}

static int
setup(void **state)
{
    struct msgr_stack_config cfg = {.nworkers = 3};
    struct fx *fx = calloc(1, sizeof(*fx));
    struct listen_args la = {.fx = fx};
    int err = 0;

    if (!fx)
        return -1;
    fx->cli.move_to = fx->srv.move_to = -1;
    fx->inner = msgr_stack_create("posix", &cfg, &err);
    if (!fx->inner)
        return -1;
    fx->st = msgr_fault_stack_new(fx->inner, NULL, &err);
    if (!fx->st)
        return -1;
    msgr_stack_unref(fx->inner); /* the fault stack holds one */
    fx->ops = fx->st->ops;
    if (fx->ops->start(fx->st) != 0)
        return -1;
    run_on(fx, 0, listen_cb, &la);
    if (la.r)
        return -1;
    *state = fx;
    return 0;
}

static void
close_all_cb(void *arg)
{
    struct fx *fx = arg;

    ep_close(&fx->cli, 0);
    if (fx->l)
        fx->ops->listener_close(fx->l);
    fx->l = NULL;
}

static int
teardown(void **state)
{
    struct fx *fx = *state;

    run_on(fx, 0, close_all_cb, fx);
    run_on(fx, fx->srv.worker, ep_close_cb, &fx->srv);
    free(fx->cli.rx);
    free(fx->srv.rx);
    msgr_stack_unref(fx->st);
    free(fx);
    return 0;
}

static void
connect_cb(void *arg)
{
    struct fx *fx = arg;
    struct msgr_addr a = loopback(fx->port);
    int r = fx->ops->connect(fx->st->workers[0], &a, &fx->cli.s);

    if (r) {
        ep_fail(&fx->cli, r, 0);
        return;
    }
    fx->ops->io_set(fx->cli.s, ep_io_cb, &fx->cli, MSGR_IO_WRITE);
}

static int
c_pair(void *arg)
{
    struct fx *fx = arg;

    return (atomic_load(&fx->cli.connected) || atomic_load(&fx->cli.err)) &&
           atomic_load(&fx->accepted);
}

/* Connects cli (worker 0) to the listener; srv is serviced by worker 1. */
static void
fx_pair(struct fx *fx)
{
    fx->cli.fx = fx->srv.fx = fx;
    fx->cli.worker = 0;
    fx->srv.worker = 1;
    if (fx->cli.rx_cap)
        fx->cli.rx = malloc(fx->cli.rx_cap);
    if (fx->srv.rx_cap)
        fx->srv.rx = malloc(fx->srv.rx_cap);
    run_on(fx, 0, connect_cb, fx);
    assert_true(fx->ops->wait_until(fx->st, c_pair, fx, WAIT_NS));
    assert_int_equal(atomic_load(&fx->cli.err), 0);
}

static int
c_rx(void *arg)
{
    struct ep *e = arg;

    return atomic_load_explicit(&e->rx_len, memory_order_acquire) >=
               e->rx_cap ||
           atomic_load(&e->err) || atomic_load(&e->eof);
}

static int
c_moved(void *arg)
{
    struct ep *e = arg;

    return atomic_load(&e->moved);
}

static int
c_fail(void *arg)
{
    struct ep *e = arg;

    return atomic_load(&e->err) || atomic_load(&e->eof);
}

/* --------------------------------------------------------------- tests */

static void
test_passthrough(void **state)
{
    struct fx *fx = *state;
    const size_t n = 4u << 20;
    uint8_t *a = pattern_buf(n, 0), *b = pattern_buf(n, 3);

    assert_true(msgr_fault_stack_is(fx->st));
    assert_ptr_equal(msgr_fault_inner(fx->st), fx->inner);
    assert_int_equal(fx->ops->caps, fx->inner->ops->caps);
    fx->cli.tx = a;
    fx->cli.tx_len = n;
    fx->cli.rx_cap = n;
    fx->srv.tx = b;
    fx->srv.tx_len = n;
    fx->srv.rx_cap = n;
    fx_pair(fx);
    assert_true(fx->ops->wait_until(fx->st, c_rx, &fx->srv, WAIT_NS));
    assert_true(fx->ops->wait_until(fx->st, c_rx, &fx->cli, WAIT_NS));
    assert_int_equal(atomic_load(&fx->srv.rx_len), n);
    assert_int_equal(atomic_load(&fx->cli.rx_len), n);
    assert_memory_equal(fx->srv.rx, a, n);
    assert_memory_equal(fx->cli.rx, b, n);
    assert_int_equal(atomic_load(&fx->cli.err), 0);
    assert_int_equal(atomic_load(&fx->srv.err), 0);
    sync_workers(fx);
    free(a);
    free(b);
}

static void
test_socket_failures(void **state)
{
    struct fx *fx = *state;
    const size_t n = 8u << 20;
    uint8_t *a = pattern_buf(n, 0);
    struct msgr_fault_stats fst;
    unsigned long long calls;
    struct msgr_addr srv;

    /* the writer: its writev fails the way a shut down socket fails */
    fx->cli.tx = a;
    fx->cli.tx_len = n;
    fx->cli.write_chunk = 1000;
    fx->srv.rx_cap = 0; /* count only */
    fx->srv.close_on_eof = 1;
    fx_pair(fx);
    /* by the port the client dialled: the client's socket only */
    srv = loopback(fx->port);
    assert_int_equal(msgr_fault_set_socket_failures(fx->st, &srv, 50), 0);
    assert_true(fx->ops->wait_until(fx->st, c_fail, &fx->cli, WAIT_NS));
    msgr_fault_get_stats(fx->st, &fst);
    calls = atomic_load(&fx->cli.nio) + atomic_load(&fx->srv.nio);
    print_message("posix: %llu injected failures in %llu I/O calls, client "
                  "error %d\n",
                  (unsigned long long)fst.socket_failures, calls,
                  atomic_load(&fx->cli.err));
    assert_true(fst.socket_failures >= 1);
    assert_true(atomic_load(&fx->cli.tx_off) < n);
    /* the very writev after the injection failed, as on a shut down
     * socket; the server sees the FIN */
    assert_int_equal(atomic_load(&fx->cli.err), -EPIPE);
    assert_true(atomic_load(&fx->cli.fail_on_write));
    assert_true(fx->ops->wait_until(fx->st, c_fail, &fx->srv, WAIT_NS));
    sync_workers(fx);
    free(a);
}

static void
test_partition_and_heal(void **state)
{
    struct fx *fx = *state;
    const size_t n = 64u << 20;
    uint8_t *a = pattern_buf(n, 0);
    struct msgr_addr peer = loopback(0); /* 127.0.0.1, any port */
    size_t rx0, tx0;
    unsigned ncb0;

    fx->cli.tx = a;
    fx->cli.tx_len = n;
    fx->cli.write_chunk = 16384;
    fx->srv.rx_cap = n;
    fx_pair(fx);
    /* partition right away, before most of the stream is out */
    assert_int_equal(msgr_fault_partition(fx->st, &peer, MSGR_FAULT_DIR_BOTH),
                     0);
    pause_ms(fx, 100); /* let what was written before land */
    tx0 = atomic_load(&fx->cli.tx_off);
    rx0 = atomic_load(&fx->srv.rx_len);
    ncb0 = atomic_load(&fx->cli.ncb) + atomic_load(&fx->srv.ncb);
    pause_ms(fx, 300);
    print_message("posix partition: stopped at %zu/%zu bytes, %u callbacks "
                  "meanwhile\n",
                  rx0, n,
                  atomic_load(&fx->cli.ncb) + atomic_load(&fx->srv.ncb) -
                      ncb0);
    assert_true(tx0 < n);
    assert_int_equal(atomic_load(&fx->cli.tx_off), tx0);
    assert_int_equal(atomic_load(&fx->srv.rx_len), rx0);
    /* interest masked both ends: nothing spins */
    assert_true(atomic_load(&fx->cli.ncb) + atomic_load(&fx->srv.ncb) <=
                ncb0 + 2);
    assert_int_equal(msgr_fault_partition(fx->st, &peer, 0), 0);
    assert_true(fx->ops->wait_until(fx->st, c_rx, &fx->srv, WAIT_NS));
    assert_int_equal(atomic_load(&fx->srv.rx_len), n);
    assert_memory_equal(fx->srv.rx, a, n);
    assert_int_equal(atomic_load(&fx->srv.err), 0);
    assert_int_equal(atomic_load(&fx->cli.err), 0);
    sync_workers(fx);
    free(a);
}

static void
test_reset(void **state)
{
    struct fx *fx = *state;
    struct msgr_fault_stats fst;
    struct msgr_addr peer = loopback(fx->port);
    struct msgr_addr other = loopback(1);

    fx->cli.tx = (const uint8_t *)"hello";
    fx->cli.tx_len = 5;
    fx->srv.rx_cap = 5;
    fx_pair(fx);
    assert_true(fx->ops->wait_until(fx->st, c_rx, &fx->srv, WAIT_NS));
    /* by the port the client dialled: only the client's socket matches */
    assert_int_equal(msgr_fault_reset(fx->st, &other), 0);
    assert_int_equal(msgr_fault_reset(fx->st, &peer), 1);
    assert_true(fx->ops->wait_until(fx->st, c_fail, &fx->cli, WAIT_NS));
    assert_int_equal(atomic_load(&fx->cli.err), -ECONNRESET);
    /* a real RST: the server's read fails too */
    assert_true(fx->ops->wait_until(fx->st, c_fail, &fx->srv, WAIT_NS));
    assert_int_equal(atomic_load(&fx->srv.err), -ECONNRESET);
    msgr_fault_get_stats(fx->st, &fst);
    assert_int_equal(fst.resets, 1);
}

static void
test_recv_delay(void **state)
{
    struct fx *fx = *state;
    const size_t n = 1u << 20;
    uint8_t *a = pattern_buf(n, 0);
    msgr_time_ns t0;

    fx->srv.rx_cap = n;
    fx_pair(fx);
    assert_int_equal(msgr_fault_set_recv_delay(fx->st, NULL, 100 * MS_NS), 0);
    pause_ms(fx, 10); /* the refresh reached the sockets */
    t0 = now(fx);
    ep_send(&fx->cli, a, n);
    assert_true(fx->ops->wait_until(fx->st, c_rx, &fx->srv, WAIT_NS));
    print_message("posix delay: first byte after %.1f ms\n",
                  (double)(atomic_load(&fx->srv.t_first_rx) - t0) / 1e6);
    assert_true(atomic_load(&fx->srv.t_first_rx) - t0 >= 100 * MS_NS);
    assert_int_equal(atomic_load(&fx->srv.rx_len), n);
    assert_memory_equal(fx->srv.rx, a, n);
    sync_workers(fx);
    free(a);
}

/*
 * The owner moves the socket to another worker from inside its callback
 * (a resumed session does), with a receive delay in force so the layer
 * has a timer of its own on the old worker: the layer must let go of the
 * socket when the callback returns, and go on on the new worker.
 */
static void
test_move_inside_callback(void **state)
{
    struct fx *fx = *state;
    const size_t n = 4u << 20;
    uint8_t *a = pattern_buf(n, 0);
    struct msgr_fault_stats fst;

    assert_int_equal(msgr_fault_set_recv_delay(fx->st, NULL, 2 * MS_NS), 0);
    fx->cli.tx = a;
    fx->cli.tx_len = n;
    fx->cli.write_chunk = 100000;
    fx->srv.rx_cap = n;
    fx->srv.move_to = 2;
    fx_pair(fx);
    assert_true(fx->ops->wait_until(fx->st, c_rx, &fx->srv, WAIT_NS));
    /* the last bytes may land in the very callback that moves the socket:
     * the reader sees them before the move is recorded */
    assert_true(fx->ops->wait_until(fx->st, c_moved, &fx->srv, WAIT_NS));
    assert_int_equal(atomic_load(&fx->srv.wrong_worker), 0);
    assert_int_equal(atomic_load(&fx->srv.rx_len), n);
    assert_memory_equal(fx->srv.rx, a, n);
    msgr_fault_get_stats(fx->st, &fst);
    assert_true(fst.delayed_bytes >= n);
    sync_workers(fx);
    run_on(fx, 2, nop_cb, NULL);
    free(a);
}

/* --------------------------------------------------- delayed posts, FIFO */

#define PRODUCERS 3
#define PER 2000

struct item {
    struct pctx *c;
    int producer, seq;
};

struct pctx {
    struct fx *fx;
    /* written by worker 2 only, read after count says so */
    int order_p[PRODUCERS * PER];
    int order_seq[PRODUCERS * PER];
    int wrong_thread;
    atomic_int count;
    int post_err[PRODUCERS];
    struct item items[PRODUCERS][PER];
};

static void
item_cb(void *arg)
{
    struct item *it = arg;
    struct pctx *c = it->c;
    int n = atomic_load_explicit(&c->count, memory_order_relaxed);

    if (!c->fx->ops->in_worker(c->fx->st->workers[2]))
        c->wrong_thread++;
    c->order_p[n] = it->producer;
    c->order_seq[n] = it->seq;
    atomic_store_explicit(&c->count, n + 1, memory_order_release);
}

struct parg {
    struct pctx *c;
    int producer;
};

static void *
producer_main(void *arg)
{
    struct parg *pa = arg;
    struct pctx *c = pa->c;

    for (int i = 0; i < PER; i++) {
        struct item *it = &c->items[pa->producer][i];
        int r;

        it->c = c;
        it->producer = pa->producer;
        it->seq = i;
        r = c->fx->ops->post(c->fx->st->workers[2], item_cb, it);
        if (r) {
            c->post_err[pa->producer] = r;
            break;
        }
        /* switch the delay on and off under the producers' feet */
        if (pa->producer == 0 && i % 500 == 250)
            msgr_fault_set_internal_delay(c->fx->st,
                                          (i / 500) % 2 ? 0 : 2 * MS_NS);
    }
    return NULL;
}

static int
all_done(void *arg)
{
    struct pctx *c = arg;

    return atomic_load_explicit(&c->count, memory_order_acquire) ==
           PRODUCERS * PER;
}

static void
test_internal_delay_fifo(void **state)
{
    struct fx *fx = *state;
    struct pctx *c = calloc(1, sizeof(*c));
    struct parg pa[PRODUCERS];
    pthread_t th[PRODUCERS];
    struct msgr_fault_stats fst;
    int last[PRODUCERS];

    assert_non_null(c);
    c->fx = fx;
    atomic_init(&c->count, 0);
    assert_int_equal(msgr_fault_set_internal_delay(fx->st, 2 * MS_NS), 0);
    for (int i = 0; i < PRODUCERS; i++) {
        pa[i].c = c;
        pa[i].producer = i;
        assert_int_equal(pthread_create(&th[i], NULL, producer_main, &pa[i]),
                         0);
    }
    for (int i = 0; i < PRODUCERS; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < PRODUCERS; i++)
        assert_int_equal(c->post_err[i], 0);
    /* drain: everything posted before it has run when it returns */
    fx->ops->drain(fx->st);
    assert_true(all_done(c));
    assert_int_equal(c->wrong_thread, 0);
    for (int i = 0; i < PRODUCERS; i++)
        last[i] = -1;
    for (int i = 0; i < PRODUCERS * PER; i++) {
        int p = c->order_p[i];

        assert_in_range(p, 0, PRODUCERS - 1);
        assert_int_equal(c->order_seq[i], last[p] + 1);
        last[p] = c->order_seq[i];
    }
    msgr_fault_get_stats(fx->st, &fst);
    print_message("posix: %llu posts went through the delay queue\n",
                  (unsigned long long)fst.delayed_posts);
    assert_true(fst.delayed_posts > 0);
    assert_int_equal(msgr_fault_set_internal_delay(fx->st, 0), 0);
    free(c);
}

/* Closures still delayed when the stack goes are run by destroy. */
static void
count_cb(void *arg)
{
    atomic_fetch_add((atomic_int *)arg, 1);
}

static void
test_destroy_runs_delayed_posts(void **state)
{
    struct msgr_stack_config cfg = {.nworkers = 2};
    struct msgr_fault_config fc = {.internal_delay_ns = 10 * MSGR_NS_PER_S};
    struct msgr_stack *in, *st;
    atomic_int ran;
    int err = 0;

    (void)state;
    atomic_init(&ran, 0);
    in = msgr_stack_create("posix", &cfg, &err);
    assert_non_null(in);
    st = msgr_fault_stack_new(in, &fc, &err);
    assert_non_null(st);
    msgr_stack_unref(in);
    assert_int_equal(st->ops->start(st), 0);
    for (int i = 0; i < 100; i++)
        assert_int_equal(st->ops->post(st->workers[i % 2], count_cb, &ran), 0);
    msgr_stack_unref(st); /* well before the 10 s are up */
    assert_int_equal(atomic_load(&ran), 100);

    /* never started: destroy still runs them */
    atomic_store(&ran, 0);
    in = msgr_stack_create("posix", &cfg, &err);
    st = msgr_fault_stack_new(in, &fc, &err);
    assert_non_null(st);
    msgr_stack_unref(in);
    for (int i = 0; i < 10; i++)
        assert_int_equal(st->ops->post(st->workers[i % 2], count_cb, &ran), 0);
    msgr_stack_unref(st);
    assert_int_equal(atomic_load(&ran), 10);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_passthrough, setup, teardown),
        cmocka_unit_test_setup_teardown(test_socket_failures, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_partition_and_heal, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_reset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recv_delay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_move_inside_callback, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_internal_delay_fifo, setup,
                                        teardown),
        cmocka_unit_test(test_destroy_runs_delayed_posts),
    };
    return cmocka_run_group_tests_name("stack_fault", tests, NULL, NULL);
}
