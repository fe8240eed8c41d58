/*
 * The sim backend of the msgr stack seam: workers are tasks of the world's
 * one scheduler, time is the virtual clock, randomness is the host's
 * stream, mutexes are no-ops, and the socket methods are tcp.c's.
 *
 * Posts. Each worker keeps a FIFO of closures and at most one pending
 * host-bound "runner" event, due when the head closure is due; a runner
 * runs exactly the head, then schedules the next runner. FIFO order is
 * thus a property of the queue, not of event times, and survives
 * everything that can reorder events (a pause releasing held events at
 * the resume time, injected post delays, equal times).
 *
 * A dead host (killed or crashed: its incarnation moved on) runs none of
 * this stack's code any more: its runner and timers were dropped by
 * host.c, new posts are only queued, timers do not arm. The queued
 * closures run only when the owner tears the messenger down (drain or
 * destroy, called from outside the scheduler): they free what they own,
 * the way a dead process's memory goes away, while the network has
 * already seen the process die.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "sim_internal.h"

#define SIM_MAX_WORKERS 64
/* How long (virtual) drain() waits for its barriers. Only a paused host
 * can hold them that long: an hour of simulated time means "never". */
#define DRAIN_TIMEOUT_NS (3600ull * MSGR_NS_PER_S)

struct post_node {
    struct post_node *next;
    msgr_task_cb cb;
    void *arg;
    msgr_time_ns due;
};

struct sim_stack;

struct sim_worker {
    struct msgr_worker base; /* first: the seam casts */
    struct sim_stack *st;
    struct post_node *qhead, **qtail;
    /* The latest due time handed out: a later post is never due before
     * an earlier one, whatever delay it drew. */
    msgr_time_ns last_due;
    uint64_t runner; /* host event id of the pending runner; 0: none */
    /* enter/leave: who was running before, and a re-entry guard */
    struct msgr_worker *prev;
    int entered;
};

struct sim_stack {
    struct msgr_stack base; /* first: the seam casts */
    struct sim_world *w;
    struct sim_host *h;
    uint64_t incarnation; /* the host's when the stack was made */
    msgr_time_ns post_delay_ns;
    struct sim_worker *wk; /* nworkers of them */
    struct post_node *pool;
    int ntimers;
    int barriers_left; /* drain() barriers posted and not yet run */
};

struct msgr_timer {
    struct sim_worker *sw;
    msgr_task_cb cb;
    void *arg;
    uint64_t ev; /* pending host event; 0: not armed */
};

struct msgr_mutex {
    /* No threads, so nothing to exclude; but locking twice would deadlock
     * a real mutex, and that bug is worth catching here. */
    int locked;
};

static const struct msgr_stack_ops sim_stack_ops;

static struct sim_stack *
to_stack(struct msgr_stack *st)
{
    return (struct sim_stack *)st;
}

static struct sim_worker *
to_worker(struct msgr_worker *w)
{
    return (struct sim_worker *)w;
}

static int
stack_dead(const struct sim_stack *st)
{
    return st->incarnation != st->h->incarnation;
}

static msgr_time_ns
add_sat(msgr_time_ns a, msgr_time_ns b)
{
    return b > UINT64_MAX - a ? UINT64_MAX : a + b;
}

/* ------------------------------------------------------- worker context */

struct sim_host *
sim__worker_host(struct msgr_worker *w)
{
    return to_worker(w)->st->h;
}

struct sim_world *
sim__worker_world(struct msgr_worker *w)
{
    return to_worker(w)->st->w;
}

void
sim__worker_enter(struct msgr_worker *w)
{
    struct sim_worker *sw = to_worker(w);

    /* A worker running inside itself would be two of its callbacks at
     * once, which the seam promises never happens. */
    SIM_ASSERT(!sw->entered);
    sw->entered = 1;
    sw->prev = sw->st->w->current_worker;
    sw->st->w->current_worker = w;
}

void
sim__worker_leave(struct msgr_worker *w)
{
    struct sim_worker *sw = to_worker(w);

    SIM_ASSERT(sw->entered && sw->st->w->current_worker == w);
    sw->st->w->current_worker = sw->prev;
    sw->prev = NULL;
    sw->entered = 0;
}

static void
run_as(struct sim_worker *sw, msgr_task_cb cb, void *arg)
{
    sim__worker_enter(&sw->base);
    cb(arg);
    sim__worker_leave(&sw->base);
}

/* ----------------------------------------------------------------- post */

static struct post_node *
node_get(struct sim_stack *st)
{
    struct post_node *n = st->pool;

    if (n) {
        st->pool = n->next;
        return n;
    }
    return malloc(sizeof(*n));
}

static void
node_put(struct sim_stack *st, struct post_node *n)
{
    n->next = st->pool;
    st->pool = n;
}

static struct post_node *
queue_pop(struct sim_worker *sw)
{
    struct post_node *n = sw->qhead;

    if (n) {
        sw->qhead = n->next;
        if (!sw->qhead)
            sw->qtail = &sw->qhead;
    }
    return n;
}

static void runner_cb(void *arg);

static void
schedule_runner(struct sim_worker *sw)
{
    struct sim_stack *st = sw->st;

    if (sw->runner || !sw->qhead || stack_dead(st))
        return;
    sw->runner = sim__host_schedule(st->h, sw->qhead->due, runner_cb, sw);
}

static void
runner_cb(void *arg)
{
    struct sim_worker *sw = arg;
    struct sim_stack *st = sw->st;
    struct post_node *n = queue_pop(sw);
    msgr_task_cb cb;
    void *cb_arg;

    sw->runner = 0;
    SIM_ASSERT(n != NULL);
    cb = n->cb;
    cb_arg = n->arg;
    node_put(st, n);
    run_as(sw, cb, cb_arg);
    /* The closure may have posted (and so scheduled) already. */
    schedule_runner(sw);
}

static int
sim_post(struct msgr_worker *w, msgr_task_cb cb, void *arg)
{
    struct sim_worker *sw = to_worker(w);
    struct sim_stack *st = sw->st;
    msgr_time_ns due = sim_now(st->w);
    struct post_node *n;

    if (st->post_delay_ns && !stack_dead(st)) {
        uint64_t span = st->post_delay_ns == UINT64_MAX
                            ? UINT64_MAX
                            : st->post_delay_ns + 1;

        due = add_sat(due, sim_rng_below(&st->h->rng, span));
    }
    if (due < sw->last_due)
        due = sw->last_due;
    n = node_get(st);
    if (!n)
        return -ENOMEM;
    n->next = NULL;
    n->cb = cb;
    n->arg = arg;
    n->due = due;
    sw->last_due = due;
    *sw->qtail = n;
    sw->qtail = &n->next;
    schedule_runner(sw);
    return 0;
}

static int
sim_in_worker(struct msgr_worker *w)
{
    return to_worker(w)->st->w->current_worker == w;
}

/*
 * Runs every queued closure of every worker inline, worker by worker in
 * id order, until all queues are empty (closures may post more). For
 * teardown and dead stacks only, where there is no scheduler to wait for.
 */
static void
flush_queues(struct sim_stack *st)
{
    int progress, i;

    do {
        progress = 0;
        for (i = 0; i < st->base.nworkers; i++) {
            struct sim_worker *sw = &st->wk[i];
            struct post_node *n;

            while ((n = queue_pop(sw)) != NULL) {
                msgr_task_cb cb = n->cb;
                void *cb_arg = n->arg;

                node_put(st, n);
                run_as(sw, cb, cb_arg);
                progress = 1;
            }
        }
    } while (progress);
}

/* ---------------------------------------------------------------- stack */

static int
sim_start(struct msgr_stack *stb)
{
    (void)stb;
    return 0; /* no threads: the workers run whenever the world does */
}

static void
barrier_cb(void *arg)
{
    struct sim_stack *st = arg;

    st->barriers_left--;
}

static int
drain_done(void *arg)
{
    struct sim_stack *st = arg;

    return st->barriers_left == 0 || stack_dead(st);
}

static void
sim_drain(struct msgr_stack *stb)
{
    struct sim_stack *st = to_stack(stb);
    int i;

    SIM_ASSERT(!sim__world_running(st->w));
    if (!stack_dead(st)) {
        /* One shared counter: barriers left over from a drain that gave
         * up are earlier in their FIFOs, so waiting for them too is
         * exactly "everything posted before this call". */
        for (i = 0; i < st->base.nworkers; i++) {
            st->barriers_left++;
            if (sim_post(&st->wk[i].base, barrier_cb, st) != 0)
                st->barriers_left--;
        }
        sim_run_until_cond(st->w, drain_done, st,
                           add_sat(sim_now(st->w), DRAIN_TIMEOUT_NS));
    }
    if (stack_dead(st)) {
        flush_queues(st);
        st->barriers_left = 0;
    } else if (st->barriers_left != 0) {
        fprintf(stderr,
                "sim: drain of a stack on host %s gave up after %llu s "
                "of virtual time; is the host paused?\n",
                st->h->name,
                (unsigned long long)(DRAIN_TIMEOUT_NS / MSGR_NS_PER_S));
    }
}

static void
sim_destroy(struct msgr_stack *stb)
{
    struct sim_stack *st = to_stack(stb);
    struct post_node *n;
    int i;

    for (i = 0; i < st->base.nworkers; i++)
        SIM_ASSERT(st->w->current_worker != &st->wk[i].base);
    SIM_ASSERT(st->ntimers == 0);
    /* Accepted closures are owed a run (they may free what they own),
     * as the posix backend runs a stopping worker's last batch. */
    flush_queues(st);
    st->barriers_left = 0;
    for (i = 0; i < st->base.nworkers; i++) {
        struct sim_worker *sw = &st->wk[i];

        if (sw->runner)
            sim__host_cancel(st->h, sw->runner);
        sw->runner = 0;
    }
    while ((n = st->pool) != NULL) {
        st->pool = n->next;
        free(n);
    }
    st->h->nstacks--;
    free(st->base.workers);
    free(st->wk);
    free(st);
}

static msgr_time_ns
sim_now_ns(struct msgr_stack *stb)
{
    return sim_now(to_stack(stb)->w);
}

static uint64_t
sim_random_u64(struct msgr_stack *stb)
{
    return sim_rng_next(&to_stack(stb)->h->rng);
}

static int
sim_wait_until(struct msgr_stack *stb, int (*cond)(void *arg), void *arg,
               msgr_time_ns timeout_ns)
{
    struct sim_stack *st = to_stack(stb);

    return sim_run_until_cond(st->w, cond, arg,
                              add_sat(sim_now(st->w), timeout_ns));
}

/* --------------------------------------------------------------- timers */

static void
timer_fire_cb(void *arg)
{
    struct msgr_timer *t = arg;
    struct sim_worker *sw = t->sw;

    t->ev = 0;
    /* t may be freed by the callback: only sw is used after it. */
    run_as(sw, t->cb, t->arg);
}

static struct msgr_timer *
sim_timer_new(struct msgr_worker *w, msgr_task_cb cb, void *arg)
{
    struct msgr_timer *t = calloc(1, sizeof(*t));

    if (!t)
        return NULL;
    t->sw = to_worker(w);
    t->cb = cb;
    t->arg = arg;
    t->sw->st->ntimers++;
    return t;
}

static void
sim_timer_cancel(struct msgr_timer *t)
{
    if (t->ev)
        sim__host_cancel(t->sw->st->h, t->ev);
    t->ev = 0;
}

static void
sim_timer_arm(struct msgr_timer *t, msgr_time_ns delay_ns)
{
    struct sim_stack *st = t->sw->st;

    sim_timer_cancel(t);
    if (stack_dead(st))
        return;
    t->ev = sim__host_schedule(st->h, add_sat(sim_now(st->w), delay_ns),
                               timer_fire_cb, t);
}

static void
sim_timer_free(struct msgr_timer *t)
{
    if (!t)
        return;
    sim_timer_cancel(t);
    t->sw->st->ntimers--;
    free(t);
}

/* -------------------------------------------------------------- mutexes */

static struct msgr_mutex *
sim_mutex_new(struct msgr_stack *stb)
{
    (void)stb;
    return calloc(1, sizeof(struct msgr_mutex));
}

static void
sim_mutex_lock(struct msgr_mutex *m)
{
    SIM_ASSERT(!m->locked); /* a real mutex would deadlock here */
    m->locked = 1;
}

static void
sim_mutex_unlock(struct msgr_mutex *m)
{
    SIM_ASSERT(m->locked);
    m->locked = 0;
}

static void
sim_mutex_free(struct msgr_mutex *m)
{
    if (!m)
        return;
    SIM_ASSERT(!m->locked);
    free(m);
}

/* ------------------------------------------------------------ the table */

static const struct msgr_stack_ops sim_stack_ops = {
    .name = "sim",
    .version = MSGR_STACK_OPS_VERSION,
    .caps = 0, /* one listen table per host, shared by the workers */

    .start = sim_start,
    .drain = sim_drain,
    .destroy = sim_destroy,
    .now_ns = sim_now_ns,
    .random_u64 = sim_random_u64,
    .wait_until = sim_wait_until,

    .post = sim_post,
    .in_worker = sim_in_worker,

    .timer_new = sim_timer_new,
    .timer_arm = sim_timer_arm,
    .timer_cancel = sim_timer_cancel,
    .timer_free = sim_timer_free,

    .mutex_new = sim_mutex_new,
    .mutex_lock = sim_mutex_lock,
    .mutex_unlock = sim_mutex_unlock,
    .mutex_free = sim_mutex_free,

    .listen = sim__listen,
    .listener_start = sim__listener_start,
    .listener_addr = sim__listener_addr,
    .accept = sim__accept,
    .listener_close = sim__listener_close,

    .connect = sim__connect,
    .connect_result = sim__connect_result,
    .io_set = sim__io_set,
    .io_want = sim__io_want,
    .readv = sim__readv,
    .writev = sim__writev,
    .shutdown = sim__shutdown,
    .close = sim__close,
    .local_addr = sim__local_addr,
    .peer_addr = sim__peer_addr,
    .socket_move = sim__socket_move,
};

struct msgr_stack *
sim_stack_new(struct sim_world *w, struct sim_host *h,
              const struct sim_stack_config *cfg, int *err)
{
    struct sim_stack *st;
    int n = cfg ? cfg->nworkers : 0, i, dummy;

    if (!err)
        err = &dummy;
    *err = 0;
    if (!w || !h || h->world != w || n < 0 || n > SIM_MAX_WORKERS) {
        *err = -EINVAL;
        return NULL;
    }
    /* A dead host runs nothing; revive it first. */
    if (h->state == SIM_HOST_KILLED || h->state == SIM_HOST_CRASHED) {
        *err = -EHOSTDOWN;
        return NULL;
    }
    if (n == 0)
        n = 1;
    st = calloc(1, sizeof(*st));
    if (!st)
        goto nomem;
    st->wk = calloc((size_t)n, sizeof(*st->wk));
    st->base.workers = calloc((size_t)n, sizeof(*st->base.workers));
    if (!st->wk || !st->base.workers)
        goto nomem;
    st->w = w;
    st->h = h;
    st->incarnation = h->incarnation;
    st->post_delay_ns = cfg ? cfg->post_delay_ns : 0;
    st->base.ops = &sim_stack_ops;
    st->base.nworkers = n;
    atomic_init(&st->base.refs, 1);
    for (i = 0; i < n; i++) {
        struct sim_worker *sw = &st->wk[i];

        sw->base.stack = &st->base;
        sw->base.id = i;
        atomic_init(&sw->base.refs, 0);
        atomic_init(&sw->base.perf.msgs_in, 0);
        atomic_init(&sw->base.perf.msgs_out, 0);
        atomic_init(&sw->base.perf.bytes_in, 0);
        atomic_init(&sw->base.perf.bytes_out, 0);
        atomic_init(&sw->base.perf.active_conns, 0);
        sw->st = st;
        sw->qtail = &sw->qhead;
        st->base.workers[i] = &sw->base;
    }
    h->nstacks++;
    return &st->base;

nomem:
    if (st) {
        free(st->wk);
        free(st->base.workers);
        free(st);
    }
    *err = -ENOMEM;
    return NULL;
}

struct sim_world *
sim_stack_world(struct msgr_stack *st)
{
    SIM_ASSERT(st->ops == &sim_stack_ops);
    return to_stack(st)->w;
}
