/*
 * The posix backend of the stack seam against its contract: registry,
 * worker selection, posts, drain, timers and real TCP over 127.0.0.1.
 *
 * cmocka unwinds with longjmp, so workers never assert: they record into
 * structs, publish with a release store, and the main thread waits
 * (wait_until) and asserts.
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
#include <time.h>

#include <cmocka.h>

#include "msgr/stack.h"

#define WAIT_NS (20 * MSGR_NS_PER_S)
#define BIG_XFER (8u << 20)

struct fx {
    struct msgr_stack *st;
    const struct msgr_stack_ops *ops;
};

static int
fx_setup(void **state)
{
    struct msgr_stack_config cfg = { .nworkers = 3 };
    struct fx *fx = calloc(1, sizeof(*fx));
    int err = 0;

    if (!fx)
        return -1;
    fx->st = msgr_stack_create("posix", &cfg, &err);
    if (!fx->st) {
        free(fx);
        return -1;
    }
    fx->ops = fx->st->ops;
    if (fx->ops->start(fx->st) != 0)
        return -1;
    *state = fx;
    return 0;
}

static int
fx_teardown(void **state)
{
    struct fx *fx = *state;

    msgr_stack_unref(fx->st);
    free(fx);
    return 0;
}

static struct msgr_worker *
wk(struct fx *fx, int id)
{
    return fx->st->workers[id];
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
    struct call c = { .fn = fn, .arg = arg };

    atomic_init(&c.done, 0);
    assert_int_equal(fx->ops->post(wk(fx, wid), call_cb, &c), 0);
    assert_true(fx->ops->wait_until(fx->st, flag_set, &c.done, WAIT_NS));
}

static void
pause_ms(struct fx *fx, unsigned ms)
{
    fx->ops->wait_until(fx->st, never, NULL, ms * MSGR_NS_PER_MS);
}

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

/* ------------------------------------------------------------- registry */

struct inline_rec {
    struct msgr_stack *st;
    int ran, on_w1, on_w0;
};

static void
inline_rec_cb(void *arg)
{
    struct inline_rec *r = arg;

    r->ran++;
    r->on_w1 = r->st->ops->in_worker(r->st->workers[1]);
    r->on_w0 = r->st->ops->in_worker(r->st->workers[0]);
}

static void
test_registry(void **state)
{
    const struct msgr_stack_ops *ops = msgr_stack_find("posix");
    struct msgr_stack_config cfg = { 0 };
    struct inline_rec rec = { 0 };
    struct msgr_stack *st;
    struct msgr_mutex *m;
    uint64_t r1, r2;
    msgr_time_ns t1, t2;
    int err = 0, i;

    (void)state;
    assert_non_null(ops);
    assert_string_equal(ops->name, "posix");
    assert_int_equal(ops->version, MSGR_STACK_OPS_VERSION);
    assert_int_equal(ops->caps, 0);
    assert_null(msgr_stack_find("dpdk"));
    assert_null(msgr_stack_find(""));
    assert_null(msgr_stack_find(NULL));

    assert_null(msgr_stack_create("nope", NULL, &err));
    assert_int_equal(err, -EINVAL);
    cfg.nworkers = -1;
    assert_null(msgr_stack_create("posix", &cfg, &err));
    assert_int_equal(err, -EINVAL);

    st = msgr_stack_create("posix", NULL, &err);
    assert_non_null(st);
    assert_int_equal(err, 0);
    assert_ptr_equal(st->ops, ops);
    assert_int_equal(st->nworkers, 3);
    assert_int_equal(atomic_load(&st->refs), 1);
    for (i = 0; i < st->nworkers; i++) {
        assert_int_equal(st->workers[i]->id, i);
        assert_ptr_equal(st->workers[i]->stack, st);
        assert_int_equal(atomic_load(&st->workers[i]->refs), 0);
        assert_false(ops->in_worker(st->workers[i]));
    }
    msgr_stack_ref(st);
    assert_int_equal(atomic_load(&st->refs), 2);
    msgr_stack_unref(st);
    assert_int_equal(atomic_load(&st->refs), 1);

    t1 = ops->now_ns(st);
    t2 = ops->now_ns(st);
    assert_true(t2 >= t1);
    r1 = ops->random_u64(st);
    r2 = ops->random_u64(st);
    assert_true(r1 != r2);
    m = ops->mutex_new(st);
    assert_non_null(m);
    ops->mutex_lock(m);
    ops->mutex_unlock(m);
    ops->mutex_free(m);

    /* Never started: destroy still runs what post() accepted, as the
     * worker it was posted to. */
    rec.st = st;
    assert_int_equal(ops->post(st->workers[1], inline_rec_cb, &rec), 0);
    assert_int_equal(rec.ran, 0);
    ops->drain(st); /* returns at once before start() */
    msgr_stack_unref(st);
    assert_int_equal(rec.ran, 1);
    assert_true(rec.on_w1);
    assert_false(rec.on_w0);

    /* Capped like ms_async_op_threads; start and stop them all. */
    cfg.nworkers = 100;
    st = msgr_stack_create("posix", &cfg, &err);
    assert_non_null(st);
    assert_int_equal(st->nworkers, 24);
    assert_int_equal(ops->start(st), 0);
    assert_int_equal(ops->start(st), 0);
    ops->drain(st);
    msgr_stack_unref(st);
}

static void
test_get_worker(void **state)
{
    struct msgr_stack_config cfg = { .nworkers = 3 };
    struct msgr_stack *st;
    struct msgr_worker *w[8];
    int err = 0, i;

    (void)state;
    st = msgr_stack_create("posix", &cfg, &err);
    assert_non_null(st);
    /* all equal: lowest id first, then round the ring */
    for (i = 0; i < 4; i++)
        w[i] = msgr_stack_get_worker(st);
    assert_int_equal(w[0]->id, 0);
    assert_int_equal(w[1]->id, 1);
    assert_int_equal(w[2]->id, 2);
    assert_int_equal(w[3]->id, 0);
    assert_int_equal(atomic_load(&st->workers[0]->refs), 2);

    /* worker 1 becomes the least loaded */
    msgr_stack_put_worker(w[1]);
    w[4] = msgr_stack_get_worker(st);
    assert_int_equal(w[4]->id, 1);
    msgr_stack_put_worker(w[0]);
    msgr_stack_put_worker(w[3]);
    /* refs now 0,1,1 */
    w[5] = msgr_stack_get_worker(st);
    assert_int_equal(w[5]->id, 0);
    w[6] = msgr_stack_get_worker(st);
    assert_int_equal(w[6]->id, 0);
    w[7] = msgr_stack_get_worker(st);
    assert_int_equal(w[7]->id, 1);

    msgr_stack_put_worker(w[2]);
    msgr_stack_put_worker(w[4]);
    msgr_stack_put_worker(w[5]);
    msgr_stack_put_worker(w[6]);
    msgr_stack_put_worker(w[7]);
    for (i = 0; i < 3; i++)
        assert_int_equal(atomic_load(&st->workers[i]->refs), 0);
    msgr_stack_unref(st);
}

/* ---------------------------------------------------------------- posts */

#define FIFO_PRODUCERS 3
#define FIFO_PER 3000

struct fifo_ctx {
    struct fx *fx;
    /* written by worker 1 only */
    int order_p[FIFO_PRODUCERS * FIFO_PER];
    int order_seq[FIFO_PRODUCERS * FIFO_PER];
    int wrong_thread;
    atomic_int count;
    int post_err[FIFO_PRODUCERS];
};

struct fifo_item {
    struct fifo_ctx *ctx;
    int producer, seq;
};

static struct fifo_item fifo_items[FIFO_PRODUCERS][FIFO_PER];

static void
fifo_cb(void *arg)
{
    struct fifo_item *it = arg;
    struct fifo_ctx *c = it->ctx;
    const struct msgr_stack_ops *ops = c->fx->ops;
    int n = atomic_load_explicit(&c->count, memory_order_relaxed);

    if (!ops->in_worker(wk(c->fx, 1)) || ops->in_worker(wk(c->fx, 0)) ||
        ops->in_worker(wk(c->fx, 2)))
        c->wrong_thread++;
    c->order_p[n] = it->producer;
    c->order_seq[n] = it->seq;
    atomic_store_explicit(&c->count, n + 1, memory_order_release);
}

struct producer_arg {
    struct fifo_ctx *ctx;
    int producer;
};

static void *
producer_main(void *arg)
{
    struct producer_arg *pa = arg;
    struct fifo_ctx *c = pa->ctx;
    int i, r;

    for (i = 0; i < FIFO_PER; i++) {
        struct fifo_item *it = &fifo_items[pa->producer][i];

        it->ctx = c;
        it->producer = pa->producer;
        it->seq = i;
        r = c->fx->ops->post(wk(c->fx, 1), fifo_cb, it);
        if (r) {
            c->post_err[pa->producer] = r;
            break;
        }
    }
    return NULL;
}

static int
fifo_all_done(void *arg)
{
    struct fifo_ctx *c = arg;

    return atomic_load_explicit(&c->count, memory_order_acquire) ==
           FIFO_PRODUCERS * FIFO_PER;
}

static void
test_post_fifo(void **state)
{
    struct fx *fx = *state;
    struct fifo_ctx *c = calloc(1, sizeof(*c));
    struct producer_arg pa[FIFO_PRODUCERS];
    pthread_t th[FIFO_PRODUCERS];
    int last[FIFO_PRODUCERS], i;

    assert_non_null(c);
    c->fx = fx;
    atomic_init(&c->count, 0);
    for (i = 0; i < fx->st->nworkers; i++)
        assert_false(fx->ops->in_worker(wk(fx, i)));
    /* producer 0 is this (foreign) thread, the others are extra threads */
    for (i = 1; i < FIFO_PRODUCERS; i++) {
        pa[i].ctx = c;
        pa[i].producer = i;
        assert_int_equal(pthread_create(&th[i], NULL, producer_main, &pa[i]),
                         0);
    }
    pa[0].ctx = c;
    pa[0].producer = 0;
    producer_main(&pa[0]);
    for (i = 1; i < FIFO_PRODUCERS; i++)
        pthread_join(th[i], NULL);
    for (i = 0; i < FIFO_PRODUCERS; i++)
        assert_int_equal(c->post_err[i], 0);

    assert_true(fx->ops->wait_until(fx->st, fifo_all_done, c, WAIT_NS));
    assert_int_equal(c->wrong_thread, 0);
    for (i = 0; i < FIFO_PRODUCERS; i++)
        last[i] = -1;
    for (i = 0; i < FIFO_PRODUCERS * FIFO_PER; i++) {
        int p = c->order_p[i];

        assert_in_range(p, 0, FIFO_PRODUCERS - 1);
        assert_int_equal(c->order_seq[i], last[p] + 1);
        last[p] = c->order_seq[i];
    }
    free(c);
}

/* ---------------------------------------------------------------- drain */

struct drain_ctx {
    struct fx *fx;
    atomic_int flags[3];
};

static void
slow_cb(void *arg)
{
    atomic_int *flag = arg;
    struct timespec ts = { 0, 30 * 1000 * 1000 };

    nanosleep(&ts, NULL);
    atomic_store(flag, 1);
}

static void
test_drain(void **state)
{
    struct fx *fx = *state;
    struct drain_ctx c;
    int i;

    c.fx = fx;
    for (i = 0; i < 3; i++)
        atomic_init(&c.flags[i], 0);
    for (i = 0; i < 3; i++)
        assert_int_equal(fx->ops->post(wk(fx, i), slow_cb, &c.flags[i]), 0);
    fx->ops->drain(fx->st);
    /* no waiting: drain returned only after every earlier post ran */
    for (i = 0; i < 3; i++)
        assert_int_equal(atomic_load(&c.flags[i]), 1);
}

/* -------------------------------------------------- shutdown and destroy */

struct shut_ctx {
    struct msgr_stack *st;
    atomic_int started, accepted, ran, last_err;
};

static void
count_cb(void *arg)
{
    struct shut_ctx *c = arg;

    atomic_fetch_add(&c->ran, 1);
}

/* Keeps posting to worker 1 from worker 0 until destroy refuses it. */
static void
hammer_cb(void *arg)
{
    struct shut_ctx *c = arg;
    const struct msgr_stack_ops *ops = c->st->ops;
    msgr_time_ns end = ops->now_ns(c->st) + 10 * MSGR_NS_PER_S;
    struct timespec ts = { 0, 200 * 1000 };

    atomic_store(&c->started, 1);
    while (ops->now_ns(c->st) < end) {
        int r = ops->post(c->st->workers[1], count_cb, c);

        if (r) {
            atomic_store(&c->last_err, r);
            return;
        }
        atomic_fetch_add(&c->accepted, 1);
        nanosleep(&ts, NULL);
    }
}

static int
hammer_going(void *arg)
{
    struct shut_ctx *c = arg;

    return atomic_load(&c->started) && atomic_load(&c->accepted) > 10;
}

static void
test_shutdown(void **state)
{
    struct msgr_stack_config cfg = { .nworkers = 2 };
    struct shut_ctx c;
    const struct msgr_stack_ops *ops;
    int err = 0, i;

    (void)state;
    atomic_init(&c.started, 0);
    atomic_init(&c.accepted, 0);
    atomic_init(&c.ran, 0);
    atomic_init(&c.last_err, 0);
    c.st = msgr_stack_create("posix", &cfg, &err);
    assert_non_null(c.st);
    ops = c.st->ops;
    /* queued before start: they run once the workers do */
    for (i = 0; i < 5; i++)
        assert_int_equal(ops->post(c.st->workers[1], count_cb, &c), 0);
    assert_int_equal(ops->start(c.st), 0);
    assert_int_equal(ops->post(c.st->workers[0], hammer_cb, &c), 0);
    assert_true(ops->wait_until(c.st, hammer_going, &c, WAIT_NS));
    msgr_stack_unref(c.st);
    /* every accepted post ran; the first refused one saw -ESHUTDOWN */
    assert_int_equal(atomic_load(&c.last_err), -ESHUTDOWN);
    assert_int_equal(atomic_load(&c.ran), atomic_load(&c.accepted) + 5);
}

/* --------------------------------------------------------------- timers */

struct tctx {
    struct fx *fx;
    struct msgr_timer *t;
    msgr_time_ns armed, fired;
    int self_free, on_worker;
    atomic_int count;
};

static void
tfire_cb(void *arg)
{
    struct tctx *tc = arg;

    tc->fired = tc->fx->ops->now_ns(tc->fx->st);
    tc->on_worker = tc->fx->ops->in_worker(wk(tc->fx, 0));
    if (tc->self_free) {
        tc->fx->ops->timer_free(tc->t);
        tc->t = NULL;
    }
    atomic_fetch_add_explicit(&tc->count, 1, memory_order_release);
}

struct timers {
    struct fx *fx;
    struct tctx a, b, c, d, e;
};

static void
tinit(struct timers *ts, struct tctx *tc)
{
    tc->fx = ts->fx;
    atomic_init(&tc->count, 0);
    tc->t = ts->fx->ops->timer_new(wk(ts->fx, 0), tfire_cb, tc);
}

static void
timers_arm(void *arg)
{
    struct timers *ts = arg;
    const struct msgr_stack_ops *ops = ts->fx->ops;
    msgr_time_ns now = ops->now_ns(ts->fx->st);

    tinit(ts, &ts->a);
    tinit(ts, &ts->b);
    tinit(ts, &ts->c);
    tinit(ts, &ts->d);
    tinit(ts, &ts->e);
    if (!ts->a.t || !ts->b.t || !ts->c.t || !ts->d.t || !ts->e.t)
        return;

    ts->a.armed = now;
    ops->timer_arm(ts->a.t, 50 * MSGR_NS_PER_MS);
    /* cancelled: must never fire */
    ops->timer_arm(ts->b.t, 20 * MSGR_NS_PER_MS);
    ops->timer_cancel(ts->b.t);
    /* re-armed to a shorter delay: fires once, at the new time */
    ops->timer_arm(ts->c.t, 400 * MSGR_NS_PER_MS);
    ts->c.armed = ops->now_ns(ts->fx->st);
    ops->timer_arm(ts->c.t, 30 * MSGR_NS_PER_MS);
    /* frees itself from its own callback */
    ts->d.self_free = 1;
    ts->d.armed = now;
    ops->timer_arm(ts->d.t, 10 * MSGR_NS_PER_MS);
    /* freed while armed: must never fire */
    ops->timer_arm(ts->e.t, 5 * MSGR_NS_PER_MS);
    ops->timer_free(ts->e.t);
    ts->e.t = NULL;
}

static void
timers_free(void *arg)
{
    struct timers *ts = arg;

    ts->fx->ops->timer_free(ts->a.t);
    ts->fx->ops->timer_free(ts->b.t);
    ts->fx->ops->timer_free(ts->c.t);
}

static void
timers_rearm_a(void *arg)
{
    struct timers *ts = arg;

    ts->a.armed = ts->fx->ops->now_ns(ts->fx->st);
    ts->fx->ops->timer_arm(ts->a.t, 10 * MSGR_NS_PER_MS);
}

static int
timer_a_twice(void *arg)
{
    struct timers *ts = arg;

    return atomic_load_explicit(&ts->a.count, memory_order_acquire) == 2;
}

static int
timers_fired(void *arg)
{
    struct timers *ts = arg;

    return atomic_load_explicit(&ts->a.count, memory_order_acquire) &&
           atomic_load_explicit(&ts->c.count, memory_order_acquire) &&
           atomic_load_explicit(&ts->d.count, memory_order_acquire);
}

static void
test_timers(void **state)
{
    struct fx *fx = *state;
    struct timers ts;

    memset(&ts, 0, sizeof(ts));
    ts.fx = fx;
    run_on(fx, 0, timers_arm, &ts);
    assert_non_null(ts.a.t);
    assert_non_null(ts.b.t);
    assert_non_null(ts.c.t);
    assert_true(fx->ops->wait_until(fx->st, timers_fired, &ts, WAIT_NS));
    /* long enough for the cancelled and freed ones to show up */
    pause_ms(fx, 100);

    assert_int_equal(atomic_load(&ts.a.count), 1);
    assert_int_equal(atomic_load(&ts.b.count), 0);
    assert_int_equal(atomic_load(&ts.c.count), 1);
    assert_int_equal(atomic_load(&ts.d.count), 1);
    assert_int_equal(atomic_load(&ts.e.count), 0);
    assert_true(ts.a.on_worker);
    assert_true(ts.a.fired - ts.a.armed >= 50 * MSGR_NS_PER_MS);
    assert_true(ts.c.fired - ts.c.armed >= 30 * MSGR_NS_PER_MS);
    assert_true(ts.c.fired - ts.c.armed < 400 * MSGR_NS_PER_MS);
    assert_true(ts.d.fired - ts.d.armed >= 10 * MSGR_NS_PER_MS);
    assert_null(ts.d.t);

    /* a fired timer can be armed again */
    run_on(fx, 0, timers_rearm_a, &ts);
    assert_true(fx->ops->wait_until(fx->st, timer_a_twice, &ts, WAIT_NS));
    assert_true(ts.a.fired - ts.a.armed >= 10 * MSGR_NS_PER_MS);
    run_on(fx, 0, timers_free, &ts);
}

/* ------------------------------------------------- a connected TCP pair */

/*
 * Listener on worker 0, client connecting from worker 1, the accepted
 * socket serviced by worker 2.
 */
struct pair {
    struct fx *fx;
    struct msgr_listener *l;
    struct msgr_addr laddr, accept_peer;
    struct msgr_socket *cs, *ss;
    int first_accept, connect_err, accept_err, extra_accepts;
    atomic_int connected, accepted;
};

static void
pair_accept_cb(struct msgr_listener *l, void *arg)
{
    struct pair *p = arg;
    const struct msgr_stack_ops *ops = p->fx->ops;

    for (;;) {
        struct msgr_socket *s = NULL;
        struct msgr_addr peer;
        int r = ops->accept(l, wk(p->fx, 2), &s, &peer);

        if (r == -EAGAIN)
            break;
        if (r) {
            p->accept_err = r;
            break;
        }
        if (p->ss) {
            p->extra_accepts++;
            continue;
        }
        p->ss = s;
        p->accept_peer = peer;
    }
    if (p->ss || p->accept_err)
        atomic_store_explicit(&p->accepted, 1, memory_order_release);
}

static void
pair_start_listener(void *arg)
{
    struct pair *p = arg;
    struct msgr_socket *s = NULL;

    /* nothing pending yet */
    p->first_accept = p->fx->ops->accept(p->l, wk(p->fx, 2), &s, NULL);
    if (s)
        p->first_accept = -9999;
    p->fx->ops->listener_start(p->l);
}

static void
pair_connect_cb(struct msgr_socket *s, unsigned events, void *arg)
{
    struct pair *p = arg;

    if (!(events & MSGR_IO_WRITE))
        return;
    p->connect_err = p->fx->ops->connect_result(s);
    p->fx->ops->io_want(s, 0);
    atomic_store_explicit(&p->connected, 1, memory_order_release);
}

static void
pair_connect(void *arg)
{
    struct pair *p = arg;
    int r = p->fx->ops->connect(wk(p->fx, 1), &p->laddr, &p->cs);

    if (r) {
        p->connect_err = r;
        atomic_store_explicit(&p->connected, 1, memory_order_release);
        return;
    }
    p->fx->ops->io_set(p->cs, pair_connect_cb, p, MSGR_IO_WRITE);
}

static int
pair_up(void *arg)
{
    struct pair *p = arg;

    return atomic_load_explicit(&p->connected, memory_order_acquire) &&
           atomic_load_explicit(&p->accepted, memory_order_acquire);
}

static void
assert_loopback(const struct msgr_addr *a)
{
    struct msgr_addr lo = loopback(0);

    assert_int_equal(a->type, MSGR_ADDR_MSGR2);
    assert_int_equal(a->nonce, 0);
    assert_int_equal(a->family, MSGR_AF_INET);
    assert_memory_equal(a->ip, lo.ip, 4);
    assert_int_not_equal(a->port, 0);
}

static void
pair_open(struct fx *fx, struct pair *p)
{
    const struct msgr_stack_ops *ops = fx->ops;
    struct msgr_addr bind = loopback(0), cl, cp, sl, sp;

    memset(p, 0, sizeof(*p));
    p->fx = fx;
    atomic_init(&p->connected, 0);
    atomic_init(&p->accepted, 0);
    assert_int_equal(
        ops->listen(wk(fx, 0), &bind, NULL, pair_accept_cb, p, &p->l), 0);
    assert_int_equal(ops->listener_addr(p->l, &p->laddr), 0);
    assert_loopback(&p->laddr);
    run_on(fx, 0, pair_start_listener, p);
    assert_int_equal(p->first_accept, -EAGAIN);
    run_on(fx, 1, pair_connect, p);
    assert_true(ops->wait_until(fx->st, pair_up, p, WAIT_NS));
    assert_int_equal(p->connect_err, 0);
    assert_int_equal(p->accept_err, 0);
    assert_int_equal(p->extra_accepts, 0);
    assert_non_null(p->cs);
    assert_non_null(p->ss);
    assert_ptr_equal(p->cs->worker, wk(fx, 1));
    assert_ptr_equal(p->ss->worker, wk(fx, 2));

    assert_int_equal(ops->local_addr(p->cs, &cl), 0);
    assert_int_equal(ops->peer_addr(p->cs, &cp), 0);
    assert_int_equal(ops->local_addr(p->ss, &sl), 0);
    assert_int_equal(ops->peer_addr(p->ss, &sp), 0);
    assert_loopback(&cl);
    assert_loopback(&sp);
    assert_memory_equal(&cp, &p->laddr, sizeof(cp));
    assert_memory_equal(&sl, &p->laddr, sizeof(sl));
    assert_memory_equal(&sp, &cl, sizeof(sp));
    assert_memory_equal(&p->accept_peer, &cl, sizeof(cl));
}

static void
close_cs(void *arg)
{
    struct pair *p = arg;

    if (p->cs)
        p->fx->ops->close(p->cs, 0);
    p->cs = NULL;
}

static void
close_ss(void *arg)
{
    struct pair *p = arg;

    if (p->ss)
        p->fx->ops->close(p->ss, 0);
    p->ss = NULL;
}

static void
close_listener(void *arg)
{
    struct pair *p = arg;

    p->fx->ops->listener_close(p->l);
    p->l = NULL;
}

static void
pair_close(struct pair *p)
{
    run_on(p->fx, 1, close_cs, p);
    run_on(p->fx, 2, close_ss, p);
    run_on(p->fx, 0, close_listener, p);
}

/* ------------------------------------------------ bulk exchange, both ways */

struct endpoint {
    struct fx *fx;
    struct msgr_socket *s;
    struct endpoint *peer;
    int wid;
    const uint8_t *src;
    uint8_t *dst;
    size_t len, sent, rcvd;
    /* worker-local */
    int read_enabled, notified_peer, started;
    int eagain_writes, eagain_reads, wrong_thread, err;
    unsigned calls;
    atomic_int done;
};

static void ep_update(struct endpoint *ep);

/* Runs on ep's worker: the peer has filled its pipe (or sent all). */
static void
ep_enable_read(void *arg)
{
    struct endpoint *ep = arg;

    ep->read_enabled = 1;
    if (ep->started)
        ep_update(ep);
}

/*
 * Reading starts only once the peer's writes have hit EAGAIN, so both
 * directions really fill the kernel buffers.
 */
static void
ep_notify_peer(struct endpoint *ep)
{
    int r;

    if (ep->notified_peer)
        return;
    ep->notified_peer = 1;
    r = ep->fx->ops->post(wk(ep->fx, ep->peer->wid), ep_enable_read,
                          ep->peer);
    if (r)
        ep->err = r;
}

static void
ep_update(struct endpoint *ep)
{
    unsigned want = 0;

    if (ep->err || (ep->sent == ep->len && ep->rcvd == ep->len)) {
        ep->fx->ops->io_want(ep->s, 0);
        atomic_store_explicit(&ep->done, 1, memory_order_release);
        return;
    }
    if (ep->sent < ep->len)
        want |= MSGR_IO_WRITE;
    if (ep->read_enabled && ep->rcvd < ep->len)
        want |= MSGR_IO_READ;
    ep->fx->ops->io_want(ep->s, want);
}

static void
ep_write(struct endpoint *ep)
{
    while (ep->sent < ep->len) {
        size_t left = ep->len - ep->sent, first = left / 3 + 1;
        struct iovec iov[2] = {
            { (void *)(ep->src + ep->sent), first },
            { (void *)(ep->src + ep->sent + first), left - first },
        };
        ssize_t n = ep->fx->ops->writev(ep->s, iov, left > first ? 2 : 1);

        if (n == -EAGAIN) {
            ep->eagain_writes++;
            ep_notify_peer(ep);
            return;
        }
        if (n <= 0) {
            ep->err = n ? (int)n : -EIO;
            return;
        }
        ep->sent += (size_t)n;
    }
    ep_notify_peer(ep);
}

static void
ep_read(struct endpoint *ep)
{
    while (ep->rcvd < ep->len) {
        /* three pieces of odd sizes, so reads straddle iovec borders */
        size_t left = ep->len - ep->rcvd;
        size_t a = left < 1000 ? left : 1000;
        size_t b = left - a < 70001 ? left - a : 70001;
        struct iovec iov[3] = {
            { ep->dst + ep->rcvd, a },
            { ep->dst + ep->rcvd + a, b },
            { ep->dst + ep->rcvd + a + b, left - a - b },
        };
        ssize_t n = ep->fx->ops->readv(ep->s, iov, 3);

        if (n == -EAGAIN) {
            ep->eagain_reads++;
            return;
        }
        if (n == 0) {
            ep->err = -ENODATA; /* EOF before the end */
            return;
        }
        if (n < 0) {
            ep->err = (int)n;
            return;
        }
        ep->rcvd += (size_t)n;
    }
}

static void
ep_io_cb(struct msgr_socket *s, unsigned events, void *arg)
{
    struct endpoint *ep = arg;

    ep->calls++;
    if (s != ep->s || !ep->fx->ops->in_worker(wk(ep->fx, ep->wid)))
        ep->wrong_thread++;
    if (events & MSGR_IO_WRITE)
        ep_write(ep);
    if ((events & MSGR_IO_READ) && !ep->err)
        ep_read(ep);
    ep_update(ep);
}

static void
ep_start(void *arg)
{
    struct endpoint *ep = arg;

    ep->started = 1;
    ep->fx->ops->io_set(ep->s, ep_io_cb, ep, 0);
    ep_update(ep);
}

static int
eps_done(void *arg)
{
    struct endpoint *ep = arg;

    return atomic_load_explicit(&ep[0].done, memory_order_acquire) &&
           atomic_load_explicit(&ep[1].done, memory_order_acquire);
}

static void
fill(uint8_t *buf, size_t len, uint32_t seed)
{
    size_t i;

    for (i = 0; i < len; i++)
        buf[i] = (uint8_t)(((uint32_t)i * 2654435761u + seed) >> 13);
}

static void
test_tcp_exchange(void **state)
{
    struct fx *fx = *state;
    struct pair p;
    struct endpoint ep[2]; /* client, server */
    uint8_t *csrc = malloc(BIG_XFER), *ssrc = malloc(BIG_XFER);
    uint8_t *cdst = malloc(BIG_XFER), *sdst = malloc(BIG_XFER);
    int i;

    assert_non_null(csrc);
    assert_non_null(ssrc);
    assert_non_null(cdst);
    assert_non_null(sdst);
    fill(csrc, BIG_XFER, 1);
    fill(ssrc, BIG_XFER, 77);
    memset(cdst, 0, BIG_XFER);
    memset(sdst, 0, BIG_XFER);

    pair_open(fx, &p);
    memset(ep, 0, sizeof(ep));
    for (i = 0; i < 2; i++) {
        ep[i].fx = fx;
        ep[i].peer = &ep[1 - i];
        ep[i].len = BIG_XFER;
        atomic_init(&ep[i].done, 0);
    }
    ep[0].s = p.cs;
    ep[0].wid = 1;
    ep[0].src = csrc;
    ep[0].dst = cdst;
    ep[1].s = p.ss;
    ep[1].wid = 2;
    ep[1].src = ssrc;
    ep[1].dst = sdst;

    run_on(fx, 1, ep_start, &ep[0]);
    run_on(fx, 2, ep_start, &ep[1]);
    assert_true(fx->ops->wait_until(fx->st, eps_done, ep, 3 * WAIT_NS));

    for (i = 0; i < 2; i++) {
        assert_int_equal(ep[i].err, 0);
        assert_int_equal(ep[i].wrong_thread, 0);
        assert_int_equal(ep[i].sent, BIG_XFER);
        assert_int_equal(ep[i].rcvd, BIG_XFER);
        /* 8 MiB cannot fit in the kernel buffers of an idle reader */
        assert_true(ep[i].eagain_writes > 0);
    }
    assert_memory_equal(cdst, ssrc, BIG_XFER);
    assert_memory_equal(sdst, csrc, BIG_XFER);

    pair_close(&p);
    free(csrc);
    free(ssrc);
    free(cdst);
    free(sdst);
}

/* --------------------------------------------------- EOF, reset, close */

struct one_shot {
    struct pair *p;
    ssize_t result;
    unsigned first_events;
    atomic_int calls;
    atomic_int done;
};

/*
 * Called with both READ and WRITE ready in the same loop iteration; closes
 * the socket from inside the callback, so the other, already active event
 * must not run (ASan would see the freed socket).
 */
static void
eof_cb(struct msgr_socket *s, unsigned events, void *arg)
{
    struct one_shot *o = arg;
    char buf[16];
    struct iovec iov = { buf, sizeof(buf) };

    if (atomic_fetch_add(&o->calls, 1) > 0)
        return;
    o->first_events = events;
    o->result = o->p->fx->ops->readv(s, &iov, 1);
    o->p->fx->ops->close(s, 0);
    o->p->ss = NULL;
    atomic_store_explicit(&o->done, 1, memory_order_release);
}

static void
eof_watch(void *arg)
{
    struct one_shot *o = arg;

    o->p->fx->ops->io_set(o->p->ss, eof_cb, o, MSGR_IO_READ | MSGR_IO_WRITE);
}

static void
test_eof_close_in_callback(void **state)
{
    struct fx *fx = *state;
    struct pair p;
    struct one_shot o;

    memset(&o, 0, sizeof(o));
    atomic_init(&o.calls, 0);
    atomic_init(&o.done, 0);
    o.p = &p;
    pair_open(fx, &p);
    run_on(fx, 1, close_cs, &p);
    pause_ms(fx, 20); /* let the FIN land before watching */
    run_on(fx, 2, eof_watch, &o);
    assert_true(fx->ops->wait_until(fx->st, flag_set, &o.done, WAIT_NS));
    pause_ms(fx, 50);
    assert_int_equal(atomic_load(&o.calls), 1);
    assert_int_equal(o.result, 0);
    assert_null(p.ss);
    pair_close(&p);
}

static void
reset_cb(struct msgr_socket *s, unsigned events, void *arg)
{
    struct one_shot *o = arg;
    char buf[16];
    struct iovec iov = { buf, sizeof(buf) };
    ssize_t n;

    if (atomic_load(&o->done))
        return;
    atomic_fetch_add(&o->calls, 1);
    n = o->p->fx->ops->readv(s, &iov, 1);
    if (n == -EAGAIN)
        return;
    o->result = n;
    o->p->fx->ops->close(s, 0);
    o->p->cs = NULL;
    atomic_store_explicit(&o->done, 1, memory_order_release);
}

static void
reset_abort_server(void *arg)
{
    struct pair *p = arg;

    p->fx->ops->close(p->ss, 1);
    p->ss = NULL;
}

static void
reset_watch(void *arg)
{
    struct one_shot *o = arg;

    o->p->fx->ops->io_set(o->p->cs, reset_cb, o, MSGR_IO_READ);
}

static void
test_abortive_close(void **state)
{
    struct fx *fx = *state;
    struct pair p;
    struct one_shot o;

    memset(&o, 0, sizeof(o));
    atomic_init(&o.calls, 0);
    atomic_init(&o.done, 0);
    o.p = &p;
    pair_open(fx, &p);
    run_on(fx, 2, reset_abort_server, &p);
    run_on(fx, 1, reset_watch, &o);
    assert_true(fx->ops->wait_until(fx->st, flag_set, &o.done, WAIT_NS));
    assert_int_equal(o.result, -ECONNRESET);
    pair_close(&p);
}

struct shut_io {
    struct pair *p;
    ssize_t w_after, r_after;
    atomic_int done;
};

static void
shutdown_server(void *arg)
{
    struct shut_io *si = arg;
    const struct msgr_stack_ops *ops = si->p->fx->ops;
    char byte = 'x';
    struct iovec iov = { &byte, 1 };

    ops->shutdown(si->p->ss);
    si->w_after = ops->writev(si->p->ss, &iov, 1);
    si->r_after = ops->readv(si->p->ss, &iov, 1);
}

static void
peer_eof_cb(struct msgr_socket *s, unsigned events, void *arg)
{
    struct shut_io *si = arg;
    char buf[4];
    struct iovec iov = { buf, sizeof(buf) };
    ssize_t n = si->p->fx->ops->readv(s, &iov, 1);

    if (n == -EAGAIN || atomic_load(&si->done))
        return;
    si->r_after = n;
    si->p->fx->ops->io_want(s, 0);
    atomic_store_explicit(&si->done, 1, memory_order_release);
}

static void
peer_eof_watch(void *arg)
{
    struct shut_io *si = arg;

    si->p->fx->ops->io_set(si->p->cs, peer_eof_cb, si, MSGR_IO_READ);
}

static void
test_shutdown_socket(void **state)
{
    struct fx *fx = *state;
    struct pair p;
    struct shut_io si;

    memset(&si, 0, sizeof(si));
    atomic_init(&si.done, 0);
    si.p = &p;
    pair_open(fx, &p);
    run_on(fx, 2, shutdown_server, &si);
    assert_int_equal(si.w_after, -EPIPE);
    assert_int_equal(si.r_after, 0);
    /* the peer sees the FIN */
    si.r_after = -1;
    run_on(fx, 1, peer_eof_watch, &si);
    assert_true(fx->ops->wait_until(fx->st, flag_set, &si.done, WAIT_NS));
    assert_int_equal(si.r_after, 0);
    pair_close(&p);
}

/* -------------------------------------------------------- connect errors */

struct refused {
    struct fx *fx;
    struct msgr_addr addr;
    int immediate, result;
    atomic_int done;
};

static void
refused_cb(struct msgr_socket *s, unsigned events, void *arg)
{
    struct refused *r = arg;

    r->result = r->fx->ops->connect_result(s);
    if (r->result == -EINPROGRESS)
        return;
    /* a second call must give the same answer: SO_ERROR is read once */
    if (r->fx->ops->connect_result(s) != r->result)
        r->result = -9999;
    r->fx->ops->close(s, 0); /* from inside its own callback */
    atomic_store_explicit(&r->done, 1, memory_order_release);
}

static void
refused_connect(void *arg)
{
    struct refused *r = arg;
    struct msgr_socket *s = NULL;

    r->immediate = r->fx->ops->connect(wk(r->fx, 1), &r->addr, &s);
    if (r->immediate) {
        r->result = r->immediate;
        atomic_store_explicit(&r->done, 1, memory_order_release);
        return;
    }
    r->fx->ops->io_set(s, refused_cb, r, MSGR_IO_WRITE);
}

static void
test_connect_refused(void **state)
{
    struct fx *fx = *state;
    struct msgr_listener *l = NULL;
    struct msgr_addr bind = loopback(0);
    struct refused r;

    memset(&r, 0, sizeof(r));
    atomic_init(&r.done, 0);
    r.fx = fx;
    /* a port that was free a moment ago and now has no listener */
    assert_int_equal(fx->ops->listen(wk(fx, 0), &bind, NULL, NULL, NULL, &l),
                     0);
    assert_int_equal(fx->ops->listener_addr(l, &r.addr), 0);
    fx->ops->listener_close(l); /* never started: any thread */

    run_on(fx, 1, refused_connect, &r);
    assert_true(fx->ops->wait_until(fx->st, flag_set, &r.done, WAIT_NS));
    assert_int_equal(r.result, -ECONNREFUSED);
}

static void
test_listen_errors(void **state)
{
    struct fx *fx = *state;
    const struct msgr_stack_ops *ops = fx->ops;
    struct msgr_listen_opts reuse = { .backlog = 16, .reuse_addr = 1 };
    struct msgr_listener *l = NULL, *l2 = (struct msgr_listener *)fx;
    struct msgr_addr bind = loopback(0), got, bad;

    assert_int_equal(ops->listen(wk(fx, 0), &bind, &reuse, NULL, NULL, &l),
                     0);
    assert_int_equal(ops->listener_addr(l, &got), 0);
    assert_loopback(&got);
    /* SO_REUSEADDR does not let two listeners share a port */
    assert_int_equal(ops->listen(wk(fx, 1), &got, &reuse, NULL, NULL, &l2),
                     -EADDRINUSE);
    assert_null(l2);
    assert_int_equal(ops->listen(wk(fx, 1), &got, NULL, NULL, NULL, &l2),
                     -EADDRINUSE);
    assert_null(l2);
    memset(&bad, 0, sizeof(bad));
    assert_int_equal(ops->listen(wk(fx, 1), &bad, NULL, NULL, NULL, &l2),
                     -EAFNOSUPPORT);
    ops->listener_close(l);

    /* the port is free again */
    assert_int_equal(ops->listen(wk(fx, 1), &got, &reuse, NULL, NULL, &l2),
                     0);
    ops->listener_close(l2);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_registry),
        cmocka_unit_test(test_get_worker),
        cmocka_unit_test(test_shutdown),
        cmocka_unit_test_setup_teardown(test_post_fifo, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_drain, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_timers, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_tcp_exchange, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_eof_close_in_callback, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_abortive_close, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_shutdown_socket, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_connect_refused, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_listen_errors, fx_setup,
                                        fx_teardown),
    };

    return cmocka_run_group_tests_name("stack_posix", tests, NULL, NULL);
}
