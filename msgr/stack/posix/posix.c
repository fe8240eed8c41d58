/*
 * The posix backend of the stack seam: real TCP sockets and one libevent
 * event_base per worker thread (Ceph's PosixNetworkStack + EventCenter).
 *
 * This file is the only place in msgr allowed to touch sockets, clocks,
 * threads and libevent.
 *
 * Threading:
 *  - each worker owns one event_base, driven by its own pthread; every
 *    event of a socket, listener or timer lives on its worker's base, so
 *    its callbacks run on that thread only;
 *  - post() appends to a mutex-protected FIFO and activates a user event
 *    on the worker's base (libevent with evthread wakes a sleeping loop);
 *  - a thread-local pointer tells which worker (if any) the calling thread
 *    runs, which makes in_worker() exact and race-free.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "msgr/stack.h"

/*
 * The registry in stack.c refers to this table; stack.h only declares the
 * constructor, so the declaration is repeated there.
 */
extern const struct msgr_stack_ops msgr__posix_stack_ops;

#define POSIX_DEFAULT_WORKERS 3
/* Ceph's EventCenter::MAX_EVENTCENTER */
#define POSIX_MAX_WORKERS 24
#define POSIX_DEFAULT_BACKLOG 512
/* Post nodes kept per worker: enough that a steady stream of cross-thread
 * sends never reaches malloc, small enough to not matter when idle. */
#define POST_POOL_PREALLOC 64
#define POST_POOL_MAX 4096

struct post_node {
    struct post_node *next;
    msgr_task_cb cb;
    void *arg;
};

struct posix_stack;

struct posix_worker {
    struct msgr_worker base; /* first: the seam casts */
    struct posix_stack *st;
    struct event_base *eb;
    struct event *wake_ev; /* user event: "the post queue is non-empty" */
    pthread_t thread;
    int thread_running; /* under st->lock */

    pthread_mutex_t qlock;
    /* Everything below is guarded by qlock. */
    struct post_node *qhead, **qtail;
    struct post_node *pool;
    size_t npool;
    /* wake_ev was activated and the worker has not yet taken the queue:
     * later posts need not wake it again. */
    int wake_pending;
    int stopping; /* posts are refused */
    int quit;     /* the worker leaves its loop after the next batch */
};

struct posix_stack {
    struct msgr_stack base; /* first: the seam casts */
    struct posix_worker *w[POSIX_MAX_WORKERS];
    pthread_mutex_t lock; /* start/destroy */
    int started;
    pthread_mutex_t rng_lock;
    uint64_t rng[4]; /* xoshiro256** */
};

struct posix_socket {
    struct msgr_socket base; /* first: the seam casts */
    int fd;
    /* Both are created with the socket, on its worker's base, so io_set
     * cannot fail; they are added/deleted as the interest mask changes. */
    struct event *rev, *wev;
    msgr_io_cb cb;
    void *cb_arg;
    unsigned want; /* the interest currently registered with libevent */
    /* SO_ERROR is consumed by the first read, so a failure is kept for
     * later calls of connect_result(). */
    int connect_err;
    int connected;
};

struct posix_listener {
    struct msgr_listener base; /* first: the seam casts */
    int fd;
    struct event *ev;
    msgr_accept_cb cb;
    void *cb_arg;
};

struct msgr_timer {
    struct event *ev;
    msgr_task_cb cb;
    void *arg;
};

struct msgr_mutex {
    pthread_mutex_t m;
};

/*
 * The worker the calling thread is running, NULL on other threads. Set by
 * the worker thread itself, so no other thread ever writes it: reading a
 * pthread_t that pthread_create() stores concurrently would be a race.
 */
static _Thread_local struct posix_worker *current_worker;

static pthread_once_t evthread_once = PTHREAD_ONCE_INIT;
static int evthread_err;

static void
evthread_init(void)
{
    if (evthread_use_pthreads() != 0)
        evthread_err = -ENOMEM;
}

/*
 * drain() or destroy() on one of the stack's own workers would wait for
 * that very thread forever; a loud stop beats a silent hang.
 */
static void
forbid_on_worker(struct posix_stack *st, const char *what)
{
    if (current_worker && current_worker->st == st) {
        fprintf(stderr, "msgr posix stack: %s called from worker %d\n", what,
                current_worker->base.id);
        abort();
    }
}

static struct posix_stack *
to_stack(struct msgr_stack *st)
{
    return (struct posix_stack *)st;
}

static struct posix_worker *
to_worker(struct msgr_worker *w)
{
    return (struct posix_worker *)w;
}

static struct posix_socket *
to_socket(struct msgr_socket *s)
{
    return (struct posix_socket *)s;
}

static struct posix_listener *
to_listener(struct msgr_listener *l)
{
    return (struct posix_listener *)l;
}

/* ------------------------------------------------------------ post queue */

/* Runs a batch taken from the queue, then gives its nodes back. */
static void
run_batch(struct posix_worker *w, struct post_node *batch)
{
    struct post_node *n, *last = NULL;
    size_t count = 0;

    for (n = batch; n; n = n->next) {
        n->cb(n->arg);
        last = n;
        count++;
    }
    if (!batch)
        return;

    pthread_mutex_lock(&w->qlock);
    if (w->npool + count <= POST_POOL_MAX) {
        last->next = w->pool;
        w->pool = batch;
        w->npool += count;
        batch = NULL;
    } else {
        while (batch && w->npool < POST_POOL_MAX) {
            n = batch;
            batch = n->next;
            n->next = w->pool;
            w->pool = n;
            w->npool++;
        }
    }
    pthread_mutex_unlock(&w->qlock);

    while (batch) {
        n = batch;
        batch = n->next;
        free(n);
    }
}

/* Takes the whole queue at once: posts made while it runs go to a fresh
 * list and re-activate the event, so FIFO order holds across batches. */
static void
wake_cb(evutil_socket_t fd, short what, void *arg)
{
    struct posix_worker *w = arg;
    struct post_node *batch;
    int quit;

    (void)fd;
    (void)what;
    pthread_mutex_lock(&w->qlock);
    batch = w->qhead;
    w->qhead = NULL;
    w->qtail = &w->qhead;
    w->wake_pending = 0;
    /* destroy() sets quit together with stopping: this batch is the last
     * one anybody will ever post. */
    quit = w->quit;
    pthread_mutex_unlock(&w->qlock);

    run_batch(w, batch);
    if (quit)
        event_base_loopbreak(w->eb);
}

static int
posix_post(struct msgr_worker *wb, msgr_task_cb cb, void *arg)
{
    struct posix_worker *w = to_worker(wb);
    struct post_node *n;

    pthread_mutex_lock(&w->qlock);
    if (w->stopping) {
        pthread_mutex_unlock(&w->qlock);
        return -ESHUTDOWN;
    }
    n = w->pool;
    if (n) {
        w->pool = n->next;
        w->npool--;
    } else {
        pthread_mutex_unlock(&w->qlock);
        n = malloc(sizeof(*n));
        if (!n)
            return -ENOMEM;
        pthread_mutex_lock(&w->qlock);
        if (w->stopping) {
            pthread_mutex_unlock(&w->qlock);
            free(n);
            return -ESHUTDOWN;
        }
    }
    n->next = NULL;
    n->cb = cb;
    n->arg = arg;
    *w->qtail = n;
    w->qtail = &n->next;
    /* Activated under qlock: destroy() frees wake_ev only after taking
     * qlock to set stopping, so no poster can still be about to touch it. */
    if (!w->wake_pending) {
        w->wake_pending = 1;
        event_active(w->wake_ev, EV_READ, 0);
    }
    pthread_mutex_unlock(&w->qlock);
    return 0;
}

static int
posix_in_worker(struct msgr_worker *w)
{
    return current_worker == to_worker(w);
}

/* --------------------------------------------------------------- workers */

static void *
worker_main(void *arg)
{
    struct posix_worker *w = arg;

    current_worker = w;
    /* NO_EXIT_ON_EMPTY: an idle worker has no added events at all (posts
     * use event_active on a never-added event). */
    event_base_loop(w->eb, EVLOOP_NO_EXIT_ON_EMPTY);
    current_worker = NULL;
    return NULL;
}

static void
free_nodes(struct post_node *n)
{
    while (n) {
        struct post_node *next = n->next;
        free(n);
        n = next;
    }
}

static void
worker_free(struct posix_worker *w)
{
    if (!w)
        return;
    free_nodes(w->qhead);
    free_nodes(w->pool);
    if (w->wake_ev)
        event_free(w->wake_ev);
    if (w->eb)
        event_base_free(w->eb);
    pthread_mutex_destroy(&w->qlock);
    free(w);
}

static struct posix_worker *
worker_new(struct posix_stack *st, int id, int *err)
{
    struct posix_worker *w;
    struct event_config *cfg;
    int i;

    w = calloc(1, sizeof(*w));
    if (!w) {
        *err = -ENOMEM;
        return NULL;
    }
    w->base.stack = &st->base;
    w->base.id = id;
    atomic_init(&w->base.refs, 0);
    w->st = st;
    w->qtail = &w->qhead;
    pthread_mutex_init(&w->qlock, NULL);

    cfg = event_config_new();
    if (!cfg)
        goto fail;
    /* CLOCK_MONOTONIC instead of the coarse clock, which lags by a tick:
     * timers must not fire before their delay as now_ns() measures it. */
    event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER);
    w->eb = event_base_new_with_config(cfg);
    event_config_free(cfg);
    if (!w->eb)
        goto fail;
    w->wake_ev = event_new(w->eb, -1, EV_PERSIST, wake_cb, w);
    if (!w->wake_ev)
        goto fail;

    for (i = 0; i < POST_POOL_PREALLOC; i++) {
        struct post_node *n = malloc(sizeof(*n));
        if (!n)
            goto fail;
        n->next = w->pool;
        w->pool = n;
        w->npool++;
    }
    return w;

fail:
    worker_free(w);
    *err = -ENOMEM;
    return NULL;
}

/* Marks the worker as refusing posts; a running one leaves its loop after
 * running what was queued. Returns whether its thread must be joined. */
static int
worker_stop(struct posix_worker *w, int refuse_posts)
{
    int running = w->thread_running;

    pthread_mutex_lock(&w->qlock);
    if (refuse_posts)
        w->stopping = 1;
    if (running) {
        w->quit = 1;
        w->wake_pending = 1;
        event_active(w->wake_ev, EV_READ, 0);
    }
    pthread_mutex_unlock(&w->qlock);
    return running;
}

static void
worker_join(struct posix_worker *w)
{
    pthread_join(w->thread, NULL);
    w->thread_running = 0;
    /* wake_pending stays: if set, wake_ev is still active in the base and
     * a later start() runs what was posted meanwhile. */
    pthread_mutex_lock(&w->qlock);
    w->quit = 0;
    pthread_mutex_unlock(&w->qlock);
}

static int
posix_start(struct msgr_stack *stb)
{
    struct posix_stack *st = to_stack(stb);
    int i, r = 0;

    pthread_mutex_lock(&st->lock);
    if (st->started)
        goto out;
    for (i = 0; i < st->base.nworkers; i++) {
        struct posix_worker *w = st->w[i];
        char name[16];

        r = pthread_create(&w->thread, NULL, worker_main, w);
        if (r) {
            r = -r;
            break;
        }
        w->thread_running = 1;
        /* at most 24 workers: two digits fit the 15-char thread name */
        snprintf(name, sizeof(name), "msgr-worker-%u", (unsigned)i % 100u);
        pthread_setname_np(w->thread, name);
    }
    if (r) {
        /* All or nothing, so drain() and destroy() see one state. Posts
         * queued meanwhile ran on the threads that did start, or stay
         * queued for a later start(). */
        for (i = 0; i < st->base.nworkers; i++) {
            if (worker_stop(st->w[i], 0))
                worker_join(st->w[i]);
        }
        goto out;
    }
    st->started = 1;
out:
    pthread_mutex_unlock(&st->lock);
    return r;
}

struct drain_barrier {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int remaining;
};

static void
barrier_cb(void *arg)
{
    struct drain_barrier *b = arg;

    pthread_mutex_lock(&b->lock);
    if (--b->remaining == 0)
        pthread_cond_signal(&b->cond);
    pthread_mutex_unlock(&b->lock);
}

static void
posix_drain(struct msgr_stack *stb)
{
    struct posix_stack *st = to_stack(stb);
    struct drain_barrier b;
    int i, started;

    forbid_on_worker(st, "drain");
    pthread_mutex_lock(&st->lock);
    started = st->started;
    pthread_mutex_unlock(&st->lock);
    /* Nothing runs before start(): waiting would never end. */
    if (!started)
        return;

    pthread_mutex_init(&b.lock, NULL);
    pthread_cond_init(&b.cond, NULL);
    b.remaining = st->base.nworkers;
    for (i = 0; i < st->base.nworkers; i++) {
        /* A worker that refuses posts is stopping: nothing to wait for. */
        if (posix_post(&st->w[i]->base, barrier_cb, &b) != 0)
            barrier_cb(&b);
    }
    pthread_mutex_lock(&b.lock);
    while (b.remaining > 0)
        pthread_cond_wait(&b.cond, &b.lock);
    pthread_mutex_unlock(&b.lock);
    pthread_cond_destroy(&b.cond);
    pthread_mutex_destroy(&b.lock);
}

static void
posix_destroy(struct msgr_stack *stb)
{
    struct posix_stack *st = to_stack(stb);
    int i, running[POSIX_MAX_WORKERS];

    forbid_on_worker(st, "destroy");
    pthread_mutex_lock(&st->lock);
    /* Refuse posts everywhere before any worker leaves, so a closure on
     * one worker posting to another sees -ESHUTDOWN rather than a queue
     * nobody will run. */
    for (i = 0; i < st->base.nworkers; i++)
        running[i] = worker_stop(st->w[i], 1);
    for (i = 0; i < st->base.nworkers; i++) {
        if (running[i])
            worker_join(st->w[i]);
    }
    /* A never-started worker still owes the closures accepted by post():
     * run them here, as that worker, since they may free what they own. */
    for (i = 0; i < st->base.nworkers; i++) {
        struct posix_worker *w = st->w[i];
        struct post_node *batch;

        if (running[i])
            continue;
        pthread_mutex_lock(&w->qlock);
        batch = w->qhead;
        w->qhead = NULL;
        w->qtail = &w->qhead;
        pthread_mutex_unlock(&w->qlock);
        current_worker = w;
        run_batch(w, batch);
        current_worker = NULL;
    }
    st->started = 0;
    pthread_mutex_unlock(&st->lock);

    for (i = 0; i < st->base.nworkers; i++)
        worker_free(st->w[i]);
    free(st->base.workers);
    pthread_mutex_destroy(&st->rng_lock);
    pthread_mutex_destroy(&st->lock);
    free(st);
}

/* ------------------------------------------------------- time and random */

static msgr_time_ns
monotonic_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (msgr_time_ns)ts.tv_sec * MSGR_NS_PER_S + (msgr_time_ns)ts.tv_nsec;
}

static msgr_time_ns
posix_now_ns(struct msgr_stack *st)
{
    (void)st;
    return monotonic_ns();
}

static uint64_t
rotl64(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t
splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void
rng_seed(struct posix_stack *st)
{
    uint64_t x;
    int i;

    if (getrandom(st->rng, sizeof(st->rng), GRND_NONBLOCK) ==
        (ssize_t)sizeof(st->rng))
        return;
    /* Entropy pool not ready (early boot): still unique per stack. */
    x = monotonic_ns() ^ (uint64_t)(uintptr_t)st ^ ((uint64_t)getpid() << 32);
    for (i = 0; i < 4; i++)
        st->rng[i] = splitmix64(&x);
}

/* xoshiro256**: a mutex and four words beat a getrandom() syscall for
 * every nonce and cookie. */
static uint64_t
posix_random_u64(struct msgr_stack *stb)
{
    struct posix_stack *st = to_stack(stb);
    uint64_t *s = st->rng, r, t;

    pthread_mutex_lock(&st->rng_lock);
    r = rotl64(s[1] * 5, 7) * 9;
    t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl64(s[3], 45);
    pthread_mutex_unlock(&st->rng_lock);
    return r;
}

static void
sleep_ns(msgr_time_ns ns)
{
    struct timespec ts = {
        .tv_sec = (time_t)(ns / MSGR_NS_PER_S),
        .tv_nsec = (long)(ns % MSGR_NS_PER_S),
    };

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static int
posix_wait_until(struct msgr_stack *st, int (*cond)(void *arg), void *arg,
                 msgr_time_ns timeout_ns)
{
    msgr_time_ns now = monotonic_ns(), deadline;

    (void)st;
    deadline = timeout_ns > UINT64_MAX - now ? UINT64_MAX : now + timeout_ns;
    for (;;) {
        msgr_time_ns left;

        if (cond(arg))
            return 1;
        now = monotonic_ns();
        if (now >= deadline)
            return 0;
        left = deadline - now;
        sleep_ns(left < MSGR_NS_PER_MS ? left : MSGR_NS_PER_MS);
    }
}

/* ---------------------------------------------------------------- timers */

static void
timer_fire_cb(evutil_socket_t fd, short what, void *arg)
{
    struct msgr_timer *t = arg;

    (void)fd;
    (void)what;
    /* t may be freed by the callback: nothing may follow this call. */
    t->cb(t->arg);
}

static struct msgr_timer *
posix_timer_new(struct msgr_worker *w, msgr_task_cb cb, void *arg)
{
    struct msgr_timer *t = calloc(1, sizeof(*t));

    if (!t)
        return NULL;
    t->cb = cb;
    t->arg = arg;
    t->ev = evtimer_new(to_worker(w)->eb, timer_fire_cb, t);
    if (!t->ev) {
        free(t);
        return NULL;
    }
    return t;
}

static void
posix_timer_arm(struct msgr_timer *t, msgr_time_ns delay_ns)
{
    /* Rounded up, plus 1 us because libevent truncates its clock to
     * microseconds: never fire before delay_ns has passed. */
    uint64_t us = (delay_ns + 999) / 1000 + 1;
    struct timeval tv = {
        .tv_sec = (time_t)(us / 1000000),
        .tv_usec = (suseconds_t)(us % 1000000),
    };

    /* The base's cached time is from before this iteration's callbacks;
     * the delay counts from now. */
    event_base_update_cache_time(event_get_base(t->ev));
    evtimer_add(t->ev, &tv);
}

static void
posix_timer_cancel(struct msgr_timer *t)
{
    evtimer_del(t->ev);
}

static void
posix_timer_free(struct msgr_timer *t)
{
    if (!t)
        return;
    /* On the owning thread event_free() never waits, even from the
     * timer's own callback. */
    event_free(t->ev);
    free(t);
}

/* --------------------------------------------------------------- mutexes */

static struct msgr_mutex *
posix_mutex_new(struct msgr_stack *st)
{
    struct msgr_mutex *m = malloc(sizeof(*m));

    (void)st;
    if (!m)
        return NULL;
    if (pthread_mutex_init(&m->m, NULL) != 0) {
        free(m);
        return NULL;
    }
    return m;
}

static void
posix_mutex_lock(struct msgr_mutex *m)
{
    pthread_mutex_lock(&m->m);
}

static void
posix_mutex_unlock(struct msgr_mutex *m)
{
    pthread_mutex_unlock(&m->m);
}

static void
posix_mutex_free(struct msgr_mutex *m)
{
    if (!m)
        return;
    pthread_mutex_destroy(&m->m);
    free(m);
}

/* ------------------------------------------------------------- addresses */

static int
addr_to_sockaddr(const struct msgr_addr *a, struct sockaddr_storage *ss,
                 socklen_t *len)
{
    memset(ss, 0, sizeof(*ss));
    switch (a->family) {
    case MSGR_AF_INET: {
        struct sockaddr_in *sin = (struct sockaddr_in *)ss;

        sin->sin_family = AF_INET;
        sin->sin_port = htons(a->port);
        memcpy(&sin->sin_addr, a->ip, 4);
        *len = sizeof(*sin);
        return AF_INET;
    }
    case MSGR_AF_INET6: {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(a->port);
        memcpy(&sin6->sin6_addr, a->ip, 16);
        sin6->sin6_flowinfo = a->flowinfo;
        sin6->sin6_scope_id = a->scope_id;
        *len = sizeof(*sin6);
        return AF_INET6;
    }
    default:
        return -EAFNOSUPPORT;
    }
}

static int
sockaddr_to_addr(const struct sockaddr_storage *ss, struct msgr_addr *out)
{
    memset(out, 0, sizeof(*out));
    out->type = MSGR_ADDR_MSGR2;
    switch (ss->ss_family) {
    case AF_INET: {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;

        out->family = MSGR_AF_INET;
        out->port = ntohs(sin->sin_port);
        memcpy(out->ip, &sin->sin_addr, 4);
        return 0;
    }
    case AF_INET6: {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;

        out->family = MSGR_AF_INET6;
        out->port = ntohs(sin6->sin6_port);
        memcpy(out->ip, &sin6->sin6_addr, 16);
        out->flowinfo = sin6->sin6_flowinfo;
        out->scope_id = sin6->sin6_scope_id;
        return 0;
    }
    default:
        return -EAFNOSUPPORT;
    }
}

static int
fd_name(int fd, int peer, struct msgr_addr *out)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    int r;

    memset(&ss, 0, sizeof(ss));
    r = peer ? getpeername(fd, (struct sockaddr *)&ss, &len)
             : getsockname(fd, (struct sockaddr *)&ss, &len);
    if (r != 0)
        return -errno;
    return sockaddr_to_addr(&ss, out);
}

static void
set_nodelay(int fd)
{
    int one = 1;

    /* Best effort: the messenger batches writes itself, like Ceph's
     * ms_tcp_nodelay default. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* --------------------------------------------------------------- sockets */

static void
sock_read_cb(evutil_socket_t fd, short what, void *arg)
{
    struct posix_socket *s = arg;

    (void)fd;
    (void)what;
    /* The callback may close (free) s: nothing may follow this call. */
    s->cb(&s->base, MSGR_IO_READ, s->cb_arg);
}

static void
sock_write_cb(evutil_socket_t fd, short what, void *arg)
{
    struct posix_socket *s = arg;

    (void)fd;
    (void)what;
    s->cb(&s->base, MSGR_IO_WRITE, s->cb_arg);
}

/* Wraps a connected or connecting fd; takes ownership of fd even on
 * failure. */
static struct posix_socket *
socket_wrap(struct posix_worker *w, int fd, int connected, int *err)
{
    struct posix_socket *s = calloc(1, sizeof(*s));

    if (!s)
        goto fail;
    s->base.ops = &msgr__posix_stack_ops;
    s->base.worker = &w->base;
    s->fd = fd;
    s->connected = connected;
    s->rev = event_new(w->eb, fd, EV_READ | EV_PERSIST, sock_read_cb, s);
    s->wev = event_new(w->eb, fd, EV_WRITE | EV_PERSIST, sock_write_cb, s);
    if (!s->rev || !s->wev)
        goto fail;
    return s;

fail:
    if (s) {
        if (s->rev)
            event_free(s->rev);
        if (s->wev)
            event_free(s->wev);
        free(s);
    }
    close(fd);
    *err = -ENOMEM;
    return NULL;
}

static int
posix_connect(struct msgr_worker *wb, const struct msgr_addr *addr,
              struct msgr_socket **out)
{
    struct sockaddr_storage ss;
    struct posix_socket *s;
    socklen_t len;
    int fd, family, r = 0;

    *out = NULL;
    family = addr_to_sockaddr(addr, &ss, &len);
    if (family < 0)
        return family;
    fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    set_nodelay(fd);
    /* A non-blocking connect never sleeps, so EINTR cannot happen. */
    if (connect(fd, (struct sockaddr *)&ss, len) != 0 && errno != EINPROGRESS) {
        r = -errno;
        close(fd);
        return r;
    }
    s = socket_wrap(to_worker(wb), fd, 0, &r);
    if (!s)
        return r;
    *out = &s->base;
    return 0;
}

static int
posix_connect_result(struct msgr_socket *sb)
{
    struct posix_socket *s = to_socket(sb);
    struct sockaddr_storage ss;
    socklen_t len = sizeof(int);
    int soerr = 0;

    if (s->connected)
        return 0;
    if (s->connect_err)
        return s->connect_err;
    if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0)
        return -errno;
    if (soerr) {
        s->connect_err = -soerr;
        return s->connect_err;
    }
    /* SO_ERROR is also 0 while the handshake is still going. */
    len = sizeof(ss);
    if (getpeername(s->fd, (struct sockaddr *)&ss, &len) != 0)
        return errno == ENOTCONN ? -EINPROGRESS : -errno;
    s->connected = 1;
    return 0;
}

static void
apply_want(struct posix_socket *s, unsigned want)
{
    unsigned changed = want ^ s->want;

    /* Only changes reach libevent: re-adding costs an epoll_ctl each. */
    if (changed & MSGR_IO_READ) {
        if (want & MSGR_IO_READ)
            event_add(s->rev, NULL);
        else
            event_del(s->rev);
    }
    if (changed & MSGR_IO_WRITE) {
        if (want & MSGR_IO_WRITE)
            event_add(s->wev, NULL);
        else
            event_del(s->wev);
    }
    s->want = want & (MSGR_IO_READ | MSGR_IO_WRITE);
}

static void
posix_io_set(struct msgr_socket *sb, msgr_io_cb cb, void *arg, unsigned want)
{
    struct posix_socket *s = to_socket(sb);

    s->cb = cb;
    s->cb_arg = arg;
    apply_want(s, cb ? want : 0);
}

static void
posix_io_want(struct msgr_socket *sb, unsigned want)
{
    struct posix_socket *s = to_socket(sb);

    apply_want(s, s->cb ? want : 0);
}

static ssize_t
posix_readv(struct msgr_socket *sb, const struct iovec *iov, int iovcnt)
{
    struct posix_socket *s = to_socket(sb);
    ssize_t n;

    do {
        n = readv(s->fd, iov, iovcnt);
    } while (n < 0 && errno == EINTR);
    return n < 0 ? -errno : n;
}

static ssize_t
posix_writev(struct msgr_socket *sb, const struct iovec *iov, int iovcnt)
{
    struct posix_socket *s = to_socket(sb);
    struct msghdr msg;
    ssize_t n;

    memset(&msg, 0, sizeof(msg));
    msg.msg_iov = (struct iovec *)iov;
    msg.msg_iovlen = (size_t)iovcnt;
    /* MSG_NOSIGNAL: a peer reset is -EPIPE, not a process-killing SIGPIPE. */
    do {
        n = sendmsg(s->fd, &msg, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    return n < 0 ? -errno : n;
}

static void
posix_shutdown(struct msgr_socket *sb)
{
    shutdown(to_socket(sb)->fd, SHUT_RDWR);
}

static void
posix_close(struct msgr_socket *sb, int abortive)
{
    struct posix_socket *s = to_socket(sb);

    if (!s)
        return;
    /*
     * event_free() also removes an event that is already active in this
     * loop iteration, and on the owning thread it never waits for a
     * running callback (ours, when called from inside it). So freeing
     * right away is safe: sock_*_cb never touch s after the callback.
     */
    event_free(s->rev);
    event_free(s->wev);
    if (abortive) {
        struct linger lg = { .l_onoff = 1, .l_linger = 0 };

        setsockopt(s->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    }
    close(s->fd);
    free(s);
}

static void
posix_socket_move(struct msgr_socket *sb, struct msgr_worker *to)
{
    struct posix_socket *s = to_socket(sb);
    struct posix_worker *tw = to_worker(to);

    if (sb->worker == to)
        return;
    apply_want(s, 0);
    s->cb = NULL;
    s->cb_arg = NULL;
    /* Events belong to one base: make new ones on the target's. They are
     * only added later, by io_set on the target's thread; event_new()
     * reads nothing but the base pointer. */
    event_free(s->rev);
    event_free(s->wev);
    s->rev = event_new(tw->eb, s->fd, EV_READ | EV_PERSIST, sock_read_cb, s);
    s->wev = event_new(tw->eb, s->fd, EV_WRITE | EV_PERSIST, sock_write_cb, s);
    if (!s->rev || !s->wev) {
        fprintf(stderr, "msgr posix: out of memory moving a socket\n");
        abort();
    }
    sb->worker = to;
}

static int
posix_local_addr(struct msgr_socket *s, struct msgr_addr *out)
{
    return fd_name(to_socket(s)->fd, 0, out);
}

static int
posix_peer_addr(struct msgr_socket *s, struct msgr_addr *out)
{
    return fd_name(to_socket(s)->fd, 1, out);
}

/* ------------------------------------------------------------- listeners */

static void
listener_cb(evutil_socket_t fd, short what, void *arg)
{
    struct posix_listener *l = arg;

    (void)fd;
    (void)what;
    l->cb(&l->base, l->cb_arg);
}

static int
posix_listen(struct msgr_worker *wb, const struct msgr_addr *addr,
             const struct msgr_listen_opts *opts, msgr_accept_cb cb,
             void *arg, struct msgr_listener **out)
{
    struct posix_worker *w = to_worker(wb);
    struct posix_listener *l;
    struct sockaddr_storage ss;
    socklen_t len;
    int fd, family, one = 1, r;
    int backlog = opts && opts->backlog > 0 ? opts->backlog
                                            : POSIX_DEFAULT_BACKLOG;

    *out = NULL;
    family = addr_to_sockaddr(addr, &ss, &len);
    if (family < 0)
        return family;
    fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (opts && opts->reuse_addr &&
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0)
        goto fail_errno;
    /* A v6 bind must not take the v4 port too: a messenger binds each
     * family of its addrvec separately. */
    if (family == AF_INET6 &&
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) != 0)
        goto fail_errno;
    if (bind(fd, (struct sockaddr *)&ss, len) != 0)
        goto fail_errno;
    if (listen(fd, backlog) != 0)
        goto fail_errno;

    l = calloc(1, sizeof(*l));
    if (!l) {
        r = -ENOMEM;
        goto fail;
    }
    l->base.ops = &msgr__posix_stack_ops;
    l->base.worker = &w->base;
    l->fd = fd;
    l->cb = cb;
    l->cb_arg = arg;
    l->ev = event_new(w->eb, fd, EV_READ | EV_PERSIST, listener_cb, l);
    if (!l->ev) {
        free(l);
        r = -ENOMEM;
        goto fail;
    }
    *out = &l->base;
    return 0;

fail_errno:
    r = -errno;
fail:
    close(fd);
    return r;
}

static void
posix_listener_start(struct msgr_listener *l)
{
    event_add(to_listener(l)->ev, NULL);
}

static int
posix_listener_addr(struct msgr_listener *l, struct msgr_addr *out)
{
    return fd_name(to_listener(l)->fd, 0, out);
}

static int
posix_accept(struct msgr_listener *lb, struct msgr_worker *to,
             struct msgr_socket **out, struct msgr_addr *peer)
{
    struct posix_listener *l = to_listener(lb);
    struct posix_socket *s;
    struct sockaddr_storage ss;
    socklen_t len;
    int fd, r = 0;

    *out = NULL;
    for (;;) {
        len = sizeof(ss);
        fd = accept4(l->fd, (struct sockaddr *)&ss, &len,
                     SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0)
            break;
        /* The peer gave up between SYN and accept: look for the next. */
        if (errno == EINTR || errno == ECONNABORTED)
            continue;
        return -errno;
    }
    set_nodelay(fd);
    /* The events go on `to`'s base: its callbacks run on that worker.
     * event_new() only reads the base, so doing it here is safe. */
    s = socket_wrap(to_worker(to), fd, 1, &r);
    if (!s)
        return r;
    if (peer && sockaddr_to_addr(&ss, peer) != 0)
        memset(peer, 0, sizeof(*peer));
    *out = &s->base;
    return 0;
}

static void
posix_listener_close(struct msgr_listener *lb)
{
    struct posix_listener *l = to_listener(lb);

    if (!l)
        return;
    event_free(l->ev);
    close(l->fd);
    free(l);
}

/* ----------------------------------------------------------------- stack */

const struct msgr_stack_ops msgr__posix_stack_ops = {
    .name = "posix",
    .version = MSGR_STACK_OPS_VERSION,
    .caps = 0, /* the kernel shares the listen table across workers */

    .start = posix_start,
    .drain = posix_drain,
    .destroy = posix_destroy,
    .now_ns = posix_now_ns,
    .random_u64 = posix_random_u64,
    .wait_until = posix_wait_until,

    .post = posix_post,
    .in_worker = posix_in_worker,

    .timer_new = posix_timer_new,
    .timer_arm = posix_timer_arm,
    .timer_cancel = posix_timer_cancel,
    .timer_free = posix_timer_free,

    .mutex_new = posix_mutex_new,
    .mutex_lock = posix_mutex_lock,
    .mutex_unlock = posix_mutex_unlock,
    .mutex_free = posix_mutex_free,

    .listen = posix_listen,
    .listener_start = posix_listener_start,
    .listener_addr = posix_listener_addr,
    .accept = posix_accept,
    .listener_close = posix_listener_close,

    .connect = posix_connect,
    .connect_result = posix_connect_result,
    .io_set = posix_io_set,
    .io_want = posix_io_want,
    .readv = posix_readv,
    .writev = posix_writev,
    .shutdown = posix_shutdown,
    .close = posix_close,
    .local_addr = posix_local_addr,
    .peer_addr = posix_peer_addr,
    .socket_move = posix_socket_move,
};

struct msgr_stack *
msgr_posix_stack_new(const struct msgr_stack_config *cfg, int *err)
{
    struct posix_stack *st;
    int n = cfg ? cfg->nworkers : 0, i, dummy;

    if (!err)
        err = &dummy;
    *err = 0;
    if (n < 0) {
        *err = -EINVAL;
        return NULL;
    }
    if (n == 0)
        n = POSIX_DEFAULT_WORKERS;
    /* Ceph caps ms_async_op_threads the same way instead of failing. */
    if (n > POSIX_MAX_WORKERS)
        n = POSIX_MAX_WORKERS;

    pthread_once(&evthread_once, evthread_init);
    if (evthread_err) {
        *err = evthread_err;
        return NULL;
    }

    st = calloc(1, sizeof(*st));
    if (!st) {
        *err = -ENOMEM;
        return NULL;
    }
    pthread_mutex_init(&st->lock, NULL);
    pthread_mutex_init(&st->rng_lock, NULL);
    rng_seed(st);
    st->base.ops = &msgr__posix_stack_ops;
    st->base.nworkers = n;
    atomic_init(&st->base.refs, 1);
    st->base.workers = calloc((size_t)n, sizeof(*st->base.workers));
    if (!st->base.workers) {
        *err = -ENOMEM;
        goto fail;
    }
    for (i = 0; i < n; i++) {
        st->w[i] = worker_new(st, i, err);
        if (!st->w[i])
            goto fail;
        st->base.workers[i] = &st->w[i]->base;
    }
    return &st->base;

fail:
    for (i = 0; i < n; i++)
        worker_free(st->w[i]);
    free(st->base.workers);
    pthread_mutex_destroy(&st->rng_lock);
    pthread_mutex_destroy(&st->lock);
    free(st);
    return NULL;
}
