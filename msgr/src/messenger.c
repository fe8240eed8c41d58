/*
 * The messenger (Ceph's AsyncMessenger): lifecycle, binding and the
 * processors (listeners), the connection tables, lookup and reaping.
 * The dispatch queue lives in dispatch.c, a connection in conn.c.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "msgr_internal.h"

#define DEFAULT(field, value)                                                  \
    do {                                                                       \
        if (!(field))                                                          \
            (field) = (value);                                                 \
    } while (0)

static void
config_defaults(struct msgr_config *c)
{
    DEFAULT(c->nworkers, 3);
    DEFAULT(c->initial_backoff_ns, 200 * MSGR_NS_PER_MS);
    DEFAULT(c->max_backoff_ns, 15 * MSGR_NS_PER_S);
    DEFAULT(c->idle_timeout_ns, 900 * MSGR_NS_PER_S);
    DEFAULT(c->ready_timeout_ns, 10 * MSGR_NS_PER_S);
    DEFAULT(c->max_frame_segment, 16 * 1024 * 1024 + 4096);
    DEFAULT(c->max_frame, 64 * 1024 * 1024);
    DEFAULT(c->dispatch_throttle_bytes, 100ull * 1024 * 1024);
    DEFAULT(c->bind_port_min, 6800);
    DEFAULT(c->bind_port_max, 7568);
    DEFAULT(c->bind_retry_count, 3);
    DEFAULT(c->bind_retry_delay_ns, 5 * MSGR_NS_PER_S);
    DEFAULT(c->learn_addr_from_peer, 1);
    DEFAULT(c->features_supported, MSGR_FEATURES_DEFAULT);
}

/* ------------------------------------------------------------------- log */

static void
log_to_stderr(void *arg, int level, const char *line)
{
    (void)arg;
    (void)level;
    fprintf(stderr, "%s\n", line);
}

void
msgr__log(struct msgr *m, int level, const char *fmt, ...)
{
    char line[1024];
    msgr_time_ns now = m->ops->now_ns(m->stack);
    int n = snprintf(line, sizeof(line), "%llu.%06llu %s.%lld msgr %s: ",
                     (unsigned long long)(now / MSGR_NS_PER_S),
                     (unsigned long long)(now % MSGR_NS_PER_S / 1000),
                     msgr_entity_type_name(m->myname.type),
                     (long long)m->myname.num,
                     level <= MSGR_LOG_ERR    ? "ERR"
                     : level <= MSGR_LOG_WARN ? "WARN"
                     : level <= MSGR_LOG_INFO ? "INFO"
                                              : "DEBUG");
    if (n < 0 || (size_t)n >= sizeof(line))
        n = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    m->log_cb(m->log_arg, level, line);
}

void
msgr_set_log(struct msgr *m, int level, msgr_log_cb cb, void *arg)
{
    m->log_level = level;
    m->log_cb = cb ? cb : log_to_stderr;
    m->log_arg = arg;
}

/* ------------------------------------------------------------- lifecycle */

struct msgr *
msgr_create(const struct msgr_config *cfg, int *err)
{
    int e = 0;
    struct msgr *m = msgr__calloc(1, sizeof(*m));
    if (!m) {
        e = -ENOMEM;
        goto fail;
    }
    m->cfg = *cfg;
    config_defaults(&m->cfg);
    m->myname = cfg->name;
    m->nonce = cfg->nonce;
    m->log_cb = log_to_stderr;
    m->log_level = MSGR_LOG_WARN;
    msgr_frame_limits_default(&m->limits);
    m->limits.max_segment = m->cfg.max_frame_segment;
    m->limits.max_frame = m->cfg.max_frame;
    m->default_policy = msgr_policy_make(MSGR_POLICY_LOSSLESS_CLIENT, 0);
    m->default_policy.features_supported = m->cfg.features_supported;
    m->default_throttle = msgr__throttle_set_new(&m->default_policy);
    if (!m->default_throttle) {
        e = -ENOMEM;
        goto fail_free;
    }

    if (cfg->stack) {
        m->stack = cfg->stack;
        msgr_stack_ref(m->stack);
    } else {
        struct msgr_stack_config sc = {.nworkers = m->cfg.nworkers};
        m->stack = msgr_stack_create(
            cfg->stack_name ? cfg->stack_name : "posix", &sc, &e);
        if (!m->stack)
            goto fail_free;
    }
    m->ops = m->stack->ops;
    e = m->ops->start(m->stack);
    if (e < 0)
        goto fail_stack;
    m->lock = m->ops->mutex_new(m->stack);
    if (!m->lock) {
        e = -ENOMEM;
        goto fail_stack;
    }
    m->local_worker = msgr_stack_get_worker(m->stack);
    msgr__dq_init(m);

    /* An unbound messenger still has an identity: a blank "any" address
     * carrying its nonce, which the first peer helps fill in. */
    m->myaddrs.n = 1;
    memset(&m->myaddrs.v[0], 0, sizeof(m->myaddrs.v[0]));
    m->myaddrs.v[0].type = MSGR_ADDR_ANY;
    m->myaddrs.v[0].nonce = (uint32_t)m->nonce;
    m->need_addr = 1;

    m->loopback = msgr__conn_new_loopback(m);
    if (!m->loopback) {
        e = -ENOMEM;
        goto fail_lock;
    }
    return m;

fail_lock:
    msgr__dq_fini(m);
    msgr_stack_put_worker(m->local_worker);
    m->ops->mutex_free(m->lock);
fail_stack:
    msgr_stack_unref(m->stack);
fail_free:
    msgr__throttle_set_unref(m->default_throttle);
    msgr__free(m);
fail:
    if (err)
        *err = e;
    return NULL;
}

static void stop_processors(struct msgr *m);

static void
free_vec(struct conn_vec *cv)
{
    msgr__free(cv->v);
    cv->v = NULL;
    cv->n = cv->cap = 0;
}

void
msgr_destroy(struct msgr *m)
{
    if (!m)
        return;
    if (!atomic_load(&m->stopping))
        msgr_shutdown(m);
    if (!m->stopped_wait)
        msgr_wait(m);
    msgr_conn_unref(m->loopback);
    m->loopback = NULL;
    msgr__dq_fini(m);
    free_vec(&m->conns);
    free_vec(&m->accepting_conns);
    free_vec(&m->anon_conns);
    free_vec(&m->deleted_conns);
    msgr_stack_put_worker(m->local_worker);
    m->ops->mutex_free(m->lock);
    msgr__throttle_set_unref(m->default_throttle);
    for (int i = 0; i < m->npolicies; i++)
        msgr__throttle_set_unref(m->policy_throttle[i]);
    struct msgr_stack *st = m->stack;
    msgr__free(m);
    msgr_stack_unref(st);
}

/* -------------------------------------------------------------- policies */

void
msgr_set_policy(struct msgr *m, uint8_t peer_type, const struct msgr_policy *p)
{
    m->ops->mutex_lock(m->lock);
    for (int i = 0; i < m->npolicies; i++) {
        if (m->policy_type[i] == peer_type) {
            m->policy[i] = *p;
            msgr__throttle_set_limits(m->policy_throttle[i], p);
            m->ops->mutex_unlock(m->lock);
            return;
        }
    }
    MSGR_ASSERT(m->npolicies < MSGR_MAX_POLICIES);
    struct msgr_throttle_set *t = msgr__throttle_set_new(p);
    MSGR_ASSERT(t != NULL);
    m->policy_type[m->npolicies] = peer_type;
    m->policy_throttle[m->npolicies] = t;
    m->policy[m->npolicies++] = *p;
    m->ops->mutex_unlock(m->lock);
}

void
msgr_set_default_policy(struct msgr *m, const struct msgr_policy *p)
{
    m->ops->mutex_lock(m->lock);
    m->default_policy = *p;
    msgr__throttle_set_limits(m->default_throttle, p);
    m->ops->mutex_unlock(m->lock);
}

/* Policies are set before start and never change after, so reading them
 * without the lock from a worker is safe. */
const struct msgr_policy *
msgr__get_policy(struct msgr *m, uint8_t type)
{
    for (int i = 0; i < m->npolicies; i++)
        if (m->policy_type[i] == type)
            return &m->policy[i];
    return &m->default_policy;
}

/* Like msgr__get_policy: without the lock (callers may hold it). */
struct msgr_throttle_set *
msgr__get_throttle(struct msgr *m, uint8_t type)
{
    struct msgr_throttle_set *t = m->default_throttle;
    for (int i = 0; i < m->npolicies; i++)
        if (m->policy_type[i] == type)
            t = m->policy_throttle[i];
    msgr__throttle_set_ref(t);
    return t;
}

/* ------------------------------------------------------------ blackholes */

static unsigned
blackhole_dirs(const struct msgr_blackhole *b)
{
    return b->dirs ? b->dirs : MSGR_BLACKHOLE_OUT;
}

static int
blackhole_equal(const struct msgr_blackhole *a, const struct msgr_blackhole *b)
{
    if (a->peer_types != b->peer_types || a->msg_type != b->msg_type ||
        a->addr.family != b->addr.family ||
        blackhole_dirs(a) != blackhole_dirs(b))
        return 0;
    return a->addr.family == MSGR_AF_UNSPEC ||
           msgr_addr_same_endpoint(&a->addr, &b->addr);
}

int
msgr_blackhole_set(struct msgr *m, const struct msgr_blackhole *b)
{
    int e = 0;
    m->ops->mutex_lock(m->lock);
    int n = atomic_load(&m->nblackholes);
    for (int i = 0; i < n; i++)
        if (blackhole_equal(&m->blackholes[i], b))
            goto out;
    if (n == MSGR_MAX_BLACKHOLES) {
        e = -ENOSPC;
        goto out;
    }
    m->blackholes[n] = *b;
    atomic_store(&m->nblackholes, n + 1);
out:
    m->ops->mutex_unlock(m->lock);
    return e;
}

int
msgr_blackhole_clear(struct msgr *m, const struct msgr_blackhole *b)
{
    int e = -ENOENT;
    m->ops->mutex_lock(m->lock);
    int n = atomic_load(&m->nblackholes);
    if (!b) {
        n = 0;
        e = 0;
    }
    for (int i = 0; b && i < n; i++) {
        if (blackhole_equal(&m->blackholes[i], b)) {
            /* keep the order: rules are listed as they were set */
            memmove(&m->blackholes[i], &m->blackholes[i + 1],
                    sizeof(m->blackholes[0]) * (size_t)(n - i - 1));
            n--;
            e = 0;
            break;
        }
    }
    atomic_store(&m->nblackholes, n);
    m->ops->mutex_unlock(m->lock);
    return e;
}

static int
blackhole_match(const struct msgr_blackhole *b, struct msgr_conn *c,
                const struct msgr_msg *msg, unsigned dir)
{
    if (!(blackhole_dirs(b) & dir))
        return 0;
    if (b->msg_type && b->msg_type != msg->hdr.type)
        return 0;
    if (b->peer_types && !(b->peer_types & c->peer_type))
        return 0;
    if (b->addr.family == MSGR_AF_UNSPEC)
        return 1;
    for (uint32_t i = 0; i < c->peer_addrs.n; i++)
        if (msgr_addr_same_endpoint(&b->addr, &c->peer_addrs.v[i]))
            return 1;
    return 0;
}

int
msgr__blackholed(struct msgr *m, struct msgr_conn *c,
                 const struct msgr_msg *msg, unsigned dir)
{
    if (atomic_load_explicit(&m->nblackholes, memory_order_relaxed) == 0)
        return 0;
    int hit = 0;
    m->ops->mutex_lock(m->lock);
    int n = atomic_load(&m->nblackholes);
    for (int i = 0; i < n && !hit; i++)
        hit = blackhole_match(&m->blackholes[i], c, msg, dir);
    m->ops->mutex_unlock(m->lock);
    if (hit)
        atomic_fetch_add_explicit(&m->msgs_blackholed, 1,
                                  memory_order_relaxed);
    return hit;
}

void
msgr_set_tracer(struct msgr *m, const struct msgr_tracer *t)
{
    if (t) {
        m->tracer = *t;
        m->has_tracer = 1;
    } else {
        m->has_tracer = 0;
    }
}

void
msgr_set_interceptor(struct msgr *m, const struct msgr_interceptor *i)
{
    if (i) {
        m->interceptor = *i;
        m->has_interceptor = 1;
    } else {
        m->has_interceptor = 0;
    }
}

void
msgr_set_frame_breaker(struct msgr *m, const struct msgr_frame_breaker *b)
{
    if (b) {
        m->breaker = *b;
        m->has_breaker = 1;
    } else {
        m->has_breaker = 0;
    }
}

void
msgr__trace_msg(struct msgr *m, struct msgr_conn *c,
                const struct msgr_msg *msg, int fate)
{
    if (m->has_tracer && m->tracer.msg)
        m->tracer.msg(m->tracer.arg, m, c, msg, fate);
}

int
msgr_add_dispatcher(struct msgr *m, const struct msgr_dispatcher *d)
{
    m->ops->mutex_lock(m->lock);
    if (m->ndisp == MSGR_MAX_DISPATCHERS) {
        m->ops->mutex_unlock(m->lock);
        return -ENOSPC;
    }
    m->disp[m->ndisp++] = *d;
    int first = m->ndisp == 1;
    m->ops->mutex_unlock(m->lock);
    if (first)
        return msgr_ready(m);
    return 0;
}

uint64_t
msgr__get_global_seq(struct msgr *m, uint64_t old)
{
    m->ops->mutex_lock(m->lock);
    if (old > m->global_seq)
        m->global_seq = old;
    uint64_t r = ++m->global_seq;
    m->ops->mutex_unlock(m->lock);
    return r;
}

/* ---------------------------------------------------------- processors */

static void accept_cb(struct msgr_listener *l, void *arg);

struct listener_task {
    struct msgr *m;
    struct msgr_listener *l;
    int close;
};

static void
listener_task_cb(void *arg)
{
    struct listener_task *t = arg;
    if (t->close)
        t->m->ops->listener_close(t->l);
    else
        t->m->ops->listener_start(t->l);
    msgr__free(t);
}

/* Listener start and close are worker-only: hand them to the worker. */
static void
post_listener(struct msgr *m, struct msgr_listener *l, int close)
{
    struct listener_task *t = msgr__alloc(sizeof(*t));
    MSGR_ASSERT(t != NULL);
    t->m = m;
    t->l = l;
    t->close = close;
    MSGR_ASSERT(m->ops->post(l->worker, listener_task_cb, t) == 0);
}

static void
start_processors(struct msgr *m)
{
    /* with nothing bound yet, a later bind starts its own listeners */
    if (m->processors_started || m->nlisteners == 0)
        return;
    m->processors_started = 1;
    for (int i = 0; i < m->nlisteners; i++)
        post_listener(m, m->listeners[i], 0);
}

static void
stop_processors(struct msgr *m)
{
    int n = m->nlisteners;
    if (n == 0)
        return;
    for (int i = 0; i < n; i++) {
        if (m->processors_started)
            post_listener(m, m->listeners[i], 1);
        else
            m->ops->listener_close(m->listeners[i]);
    }
    m->nlisteners = 0;
    m->processors_started = 0;
    m->ops->drain(m->stack);
}

static int
port_avoided(int port, const int *avoid, int navoid)
{
    for (int i = 0; i < navoid; i++)
        if (avoid[i] == port)
            return 1;
    return 0;
}

static int
never(void *arg)
{
    (void)arg;
    return 0;
}

/*
 * Listens on one address for one worker (Ceph's Processor::bind): an
 * explicit port is retried bind_retry_count times, port 0 scans the port
 * range skipping avoided ports.
 */
static int
processor_bind(struct msgr *m, struct msgr_worker *w,
               const struct msgr_addr *addr, const int *avoid, int navoid,
               struct msgr_listener **out)
{
    struct msgr_listen_opts lo = {.backlog = 512, .reuse_addr = 1};
    struct msgr_addr a = *addr;
    int e = -EADDRINUSE;
    if (addr->port != 0) {
        for (int i = 0; i < m->cfg.bind_retry_count; i++) {
            e = m->ops->listen(w, &a, &lo, accept_cb, m, out);
            if (e != -EADDRINUSE)
                return e;
            MSGR_LOG(m, MSGR_LOG_WARN, "bind %u: %s, retrying", a.port,
                     msgr_strerror(e));
            if (i + 1 < m->cfg.bind_retry_count)
                m->ops->wait_until(m->stack, never, NULL,
                                   m->cfg.bind_retry_delay_ns);
        }
        return e;
    }
    for (int p = m->cfg.bind_port_min; p <= m->cfg.bind_port_max; p++) {
        if (port_avoided(p, avoid, navoid))
            continue;
        a.port = (uint16_t)p;
        e = m->ops->listen(w, &a, &lo, accept_cb, m, out);
        if (e != -EADDRINUSE)
            return e;
    }
    MSGR_LOG(m, MSGR_LOG_ERR, "no free port in %d..%d", m->cfg.bind_port_min,
             m->cfg.bind_port_max);
    return e;
}

static int
do_bind(struct msgr *m, const struct msgr_addrvec *addrs, const int *avoid,
        int navoid)
{
    struct msgr_addrvec bound = *addrs;
    int per_worker = (m->ops->caps & MSGR_STACK_LOCAL_LISTEN_TABLE) != 0;
    int nproc = per_worker ? m->stack->nworkers : 1;
    m->nlisteners = 0;
    for (uint32_t ai = 0; ai < addrs->n; ai++) {
        for (int wi = 0; wi < nproc; wi++) {
            struct msgr_worker *w =
                per_worker ? m->stack->workers[wi] : m->local_worker;
            struct msgr_addr a = bound.v[ai];
            /* later processors must take the port the first one got */
            struct msgr_listener *l = NULL;
            int e = processor_bind(m, w, &a, avoid, navoid, &l);
            if (e < 0) {
                /* The first processor failing is an ordinary error (the
                 * port is taken); a later one failing on a port the first
                 * just bound means the stack broke its contract. */
                MSGR_ASSERT(wi == 0);
                for (int i = 0; i < m->nlisteners; i++)
                    m->ops->listener_close(m->listeners[i]);
                m->nlisteners = 0;
                MSGR_LOG(m, MSGR_LOG_ERR, "bind failed: %s", msgr_strerror(e));
                return e;
            }
            struct msgr_addr got;
            m->ops->listener_addr(l, &got);
            bound.v[ai].port = got.port;
            m->listeners[m->nlisteners++] = l;
        }
    }
    /* _finish_bind */
    for (uint32_t i = 0; i < bound.n; i++)
        bound.v[i].nonce = (uint32_t)m->nonce;
    m->myaddrs = bound;
    m->need_addr = 0;
    for (uint32_t i = 0; i < bound.n; i++)
        if (msgr_addr_is_blank_ip(&bound.v[i]))
            m->need_addr = 1;
    m->did_bind = 1;
    m->loopback->peer_addrs = m->myaddrs;
    return 0;
}

int
msgr_bindv(struct msgr *m, const struct msgr_addrvec *addrs)
{
    if (addrs->n == 0 || addrs->n > MSGR_ADDRVEC_MAX)
        return -EINVAL;
    m->ops->mutex_lock(m->lock);
    if (m->started || m->did_bind || atomic_load(&m->stopping)) {
        m->ops->mutex_unlock(m->lock);
        return MSGR_ESTATE;
    }
    int e = do_bind(m, addrs, NULL, 0);
    /* ready() may have come first (a dispatcher added before bind) */
    if (e == 0 && m->ready)
        start_processors(m);
    m->ops->mutex_unlock(m->lock);
    return e;
}

int
msgr_bind(struct msgr *m, const struct msgr_addr *addr)
{
    struct msgr_addrvec v = {.n = 1};
    v.v[0] = *addr;
    return msgr_bindv(m, &v);
}

int
msgr_rebind(struct msgr *m, const int *avoid_ports, int navoid)
{
    if (!m->did_bind)
        return MSGR_ESTATE;
    int avoid[64];
    int na = 0;
    for (int i = 0; i < navoid && na < 60; i++)
        avoid[na++] = avoid_ports[i];
    /* the old ports too: peers must not reach the new instance there */
    for (uint32_t i = 0; i < m->myaddrs.n && na < 64; i++)
        avoid[na++] = m->myaddrs.v[i].port;
    struct msgr_addrvec addrs = m->myaddrs;
    for (uint32_t i = 0; i < addrs.n; i++)
        addrs.v[i].port = 0;

    stop_processors(m);
    msgr_mark_down_all(m);
    m->ops->mutex_lock(m->lock);
    m->nonce += 1000000;
    int e = do_bind(m, &addrs, avoid, na);
    m->ops->mutex_unlock(m->lock);
    if (e == 0 && m->ready)
        start_processors(m);
    return e;
}

int
msgr_client_bind(struct msgr *m, const struct msgr_addr *addr)
{
    m->ops->mutex_lock(m->lock);
    if (m->did_bind) {
        m->ops->mutex_unlock(m->lock);
        return MSGR_ESTATE;
    }
    m->myaddrs.n = 1;
    m->myaddrs.v[0] = *addr;
    m->myaddrs.v[0].nonce = (uint32_t)m->nonce;
    m->need_addr = msgr_addr_is_blank_ip(addr);
    m->ops->mutex_unlock(m->lock);
    return 0;
}

int
msgr_start(struct msgr *m)
{
    m->ops->mutex_lock(m->lock);
    if (m->started) {
        m->ops->mutex_unlock(m->lock);
        return MSGR_ESTATE;
    }
    m->started = 1;
    if (!m->did_bind)
        for (uint32_t i = 0; i < m->myaddrs.n; i++)
            m->myaddrs.v[i].nonce = (uint32_t)m->nonce;
    m->loopback->peer_addrs = m->myaddrs;
    m->ops->mutex_unlock(m->lock);
    return 0;
}

int
msgr_ready(struct msgr *m)
{
    m->ops->mutex_lock(m->lock);
    if (m->ready) {
        m->ops->mutex_unlock(m->lock);
        return 0;
    }
    m->ready = 1;
    start_processors(m);
    m->ops->mutex_unlock(m->lock);
    msgr__dq_start(m);
    return 0;
}

int
msgr_shutdown(struct msgr *m)
{
    if (atomic_exchange(&m->stopping, 1))
        return 0;
    /* not under the lock: draining waits for accept callbacks that take it */
    stop_processors(m);
    msgr_mark_down_all(m);
    /* the loopback is marked down before draining (tracker 43667) */
    atomic_store(&m->loopback->connected, 0);
    atomic_store(&m->loopback->state, MSGR_CONN_CLOSED);
    m->did_bind = 0;
    m->ops->drain(m->stack);
    return 0;
}

static void
reap_all(struct msgr *m)
{
    struct conn_vec dead;
    m->ops->mutex_lock(m->lock);
    dead = m->deleted_conns;
    memset(&m->deleted_conns, 0, sizeof(m->deleted_conns));
    for (int i = 0; i < dead.n; i++) {
        struct msgr_conn *c = dead.v[i];
        if (msgr__conn_vec_remove(&m->conns, c))
            msgr_conn_unref(c);
        if (msgr__conn_vec_remove(&m->accepting_conns, c))
            msgr_conn_unref(c);
        if (msgr__conn_vec_remove(&m->anon_conns, c))
            msgr_conn_unref(c);
    }
    m->reap_posted = 0;
    m->ops->mutex_unlock(m->lock);
    for (int i = 0; i < dead.n; i++)
        msgr_conn_unref(dead.v[i]); /* the deleted_conns reference */
    free_vec(&dead);
}

static void
reap_cb(void *arg)
{
    struct msgr *m = arg;
    reap_all(m);
}

void
msgr_wait(struct msgr *m)
{
    if (m->stopped_wait)
        return;
    if (!atomic_load(&m->stopping))
        msgr_shutdown(m);
    msgr__dq_stop(m);
    msgr_shutdown_connections(m, 0);
    m->ops->drain(m->stack);
    reap_all(m);
    m->ops->drain(m->stack);
    m->stopped_wait = 1;
}

/* ------------------------------------------------------------- addresses */

void
msgr_get_myaddrs(struct msgr *m, struct msgr_addrvec *out)
{
    m->ops->mutex_lock(m->lock);
    *out = m->myaddrs;
    m->ops->mutex_unlock(m->lock);
}

struct msgr_entity_name
msgr_get_myname(struct msgr *m)
{
    return m->myname;
}

uint64_t
msgr_get_nonce(struct msgr *m)
{
    return m->nonce;
}

struct msgr_stack *
msgr_get_stack(struct msgr *m)
{
    return m->stack;
}

static void
fill_blank(struct msgr_addr *mine, const struct msgr_addr *from)
{
    mine->family = from->family;
    memcpy(mine->ip, from->ip, sizeof(mine->ip));
    mine->flowinfo = from->flowinfo;
    mine->scope_id = from->scope_id;
}

void
msgr_set_addr_unknowns(struct msgr *m, const struct msgr_addrvec *addrs)
{
    m->ops->mutex_lock(m->lock);
    for (uint32_t i = 0; i < m->myaddrs.n; i++) {
        struct msgr_addr *a = &m->myaddrs.v[i];
        if (!msgr_addr_is_blank_ip(a))
            continue;
        for (uint32_t j = 0; j < addrs->n; j++) {
            if (a->family == MSGR_AF_UNSPEC ||
                addrs->v[j].family == a->family) {
                fill_blank(a, &addrs->v[j]);
                break;
            }
        }
    }
    m->loopback->peer_addrs = m->myaddrs;
    m->ops->mutex_unlock(m->lock);
}

void
msgr_learned_addr(struct msgr *m, const struct msgr_addr *peer_addr_for_me)
{
    m->ops->mutex_lock(m->lock);
    if (!m->need_addr || m->cfg.learn_addr_from_peer < 0) {
        m->ops->mutex_unlock(m->lock);
        return;
    }
    for (uint32_t i = 0; i < m->myaddrs.n; i++) {
        struct msgr_addr *a = &m->myaddrs.v[i];
        if (!msgr_addr_is_blank_ip(a))
            continue;
        if (a->family != MSGR_AF_UNSPEC &&
            a->family != peer_addr_for_me->family)
            continue;
        fill_blank(a, peer_addr_for_me);
        if (!m->did_bind)
            a->port = 0;
        char buf[96];
        msgr_addr_format(a, buf, sizeof(buf));
        MSGR_LOG(m, MSGR_LOG_INFO, "learned my addr %s", buf);
    }
    m->need_addr = 0;
    m->loopback->peer_addrs = m->myaddrs;
    m->ops->mutex_unlock(m->lock);
}

int
msgr_get_proto_version(struct msgr *m, uint8_t peer_type, int connect)
{
    /* msgr1 values (CEPH_*_PROTOCOL); msgr2 does not use them, but peers
     * of ours that fall back to v1 would. */
    enum { OSD_PROTO = 24, MDS_PROTO = 32, MON_PROTO = 15,
           OSDC_PROTO = 24, MDSC_PROTO = 32, MONC_PROTO = 15 };
    uint8_t my = m->myname.type;
    if (peer_type == my) {
        switch (my) {
        case MSGR_ENTITY_OSD:
            return OSD_PROTO;
        case MSGR_ENTITY_MDS:
            return MDS_PROTO;
        case MSGR_ENTITY_MON:
            return MON_PROTO;
        default:
            return 0;
        }
    }
    switch (connect ? peer_type : my) {
    case MSGR_ENTITY_OSD:
        return OSDC_PROTO;
    case MSGR_ENTITY_MDS:
        return MDSC_PROTO;
    case MSGR_ENTITY_MON:
        return MONC_PROTO;
    default:
        return 0;
    }
}

void
msgr_get_perf(struct msgr *m, struct msgr_perf *out)
{
    memset(out, 0, sizeof(*out));
    for (int i = 0; i < m->stack->nworkers; i++) {
        struct msgr_worker_perf *p = &m->stack->workers[i]->perf;
        out->msgs_in += atomic_load_explicit(&p->msgs_in, memory_order_relaxed);
        out->msgs_out +=
            atomic_load_explicit(&p->msgs_out, memory_order_relaxed);
        out->bytes_in +=
            atomic_load_explicit(&p->bytes_in, memory_order_relaxed);
        out->bytes_out +=
            atomic_load_explicit(&p->bytes_out, memory_order_relaxed);
        out->active_conns +=
            atomic_load_explicit(&p->active_conns, memory_order_relaxed);
    }
    out->msgs_blackholed = atomic_load(&m->msgs_blackholed);
    out->msgs_delayed = atomic_load(&m->msgs_delayed);
    out->throttle_waits = atomic_load(&m->throttle_waits);
}

/* ------------------------------------------------------ connection tables */

static int
is_my_addr(struct msgr *m, const struct msgr_addrvec *addrs)
{
    if (msgr_addrvec_equal(addrs, &m->myaddrs))
        return 1;
    return addrs->n == 1 && m->did_bind &&
           msgr_addrvec_contains(&m->myaddrs, &addrs->v[0]);
}

/* Under m->lock. Lazily forgets entries whose connection died. */
static struct msgr_conn *
lookup_locked(struct msgr *m, const struct msgr_addrvec *addrs)
{
    for (int i = 0; i < m->conns.n; i++) {
        struct msgr_conn *c = m->conns.v[i];
        if (!msgr_addrvec_equal(&c->peer_addrs, addrs))
            continue;
        /* a connection being stopped, or closed but not yet unregistered
         * (stop_now closes first), no longer holds the peer's slot */
        if (c->unregistered || atomic_load(&c->stop_requested) ||
            msgr__conn_state(c) == MSGR_CONN_CLOSED)
            continue;
        return c;
    }
    return NULL;
}

struct msgr_conn *
msgr__lookup_conn(struct msgr *m, const struct msgr_addrvec *addrs)
{
    m->ops->mutex_lock(m->lock);
    struct msgr_conn *c = lookup_locked(m, addrs);
    if (c)
        msgr_conn_ref(c);
    m->ops->mutex_unlock(m->lock);
    return c;
}

int
msgr__accept_conn(struct msgr *m, struct msgr_conn *c)
{
    m->ops->mutex_lock(m->lock);
    if (c->policy.server && c->policy.lossy &&
        !c->policy.register_lossy_clients) {
        if (msgr__conn_vec_remove(&m->accepting_conns, c))
            msgr__conn_vec_push(&m->anon_conns, c); /* ref moves */
        m->ops->mutex_unlock(m->lock);
        return 0;
    }
    struct msgr_conn *existing = lookup_locked(m, &c->peer_addrs);
    if (existing && existing != c) {
        m->ops->mutex_unlock(m->lock);
        return -1;
    }
    if (msgr__conn_vec_remove(&m->accepting_conns, c)) {
        if (!existing)
            msgr__conn_vec_push(&m->conns, c); /* ref moves */
        else
            msgr_conn_unref(c);
    }
    m->ops->mutex_unlock(m->lock);
    return 0;
}

void
msgr__unregister_conn(struct msgr *m, struct msgr_conn *c)
{
    m->ops->mutex_lock(m->lock);
    if (c->unregistered) {
        m->ops->mutex_unlock(m->lock);
        return;
    }
    c->unregistered = 1;
    msgr_conn_ref(c);
    msgr__conn_vec_push(&m->deleted_conns, c);
    int post = !m->reap_posted && !atomic_load(&m->stopping) &&
               m->deleted_conns.n >= MSGR_REAP_THRESHOLD;
    if (post)
        m->reap_posted = 1;
    m->ops->mutex_unlock(m->lock);
    if (post && m->ops->post(m->local_worker, reap_cb, m) != 0) {
        m->ops->mutex_lock(m->lock);
        m->reap_posted = 0;
        m->ops->mutex_unlock(m->lock);
    }
}

static struct msgr_conn *
create_connect(struct msgr *m, uint8_t type, const struct msgr_addrvec *addrs,
               int anon)
{
    /* Target: the first v2 address (we speak only msgr2). */
    const struct msgr_addr *t = msgr_addrvec_find(addrs, MSGR_ADDR_MSGR2);
    if (!t)
        t = msgr_addrvec_find(addrs, MSGR_ADDR_ANY);
    if (!t)
        return NULL;
    struct msgr_worker *w = msgr_stack_get_worker(m->stack);
    struct msgr_conn *c = msgr__conn_new(m, w, 1, type, addrs);
    if (!c) {
        msgr_stack_put_worker(w);
        return NULL;
    }
    c->target_addr = *t;
    c->target_addr.type = MSGR_ADDR_MSGR2;
    msgr_conn_ref(c); /* the table's */
    if (anon)
        msgr__conn_vec_push(&m->anon_conns, c);
    else
        msgr__conn_vec_push(&m->conns, c);
    return c;
}

struct msgr_conn *
msgr_connect_to(struct msgr *m, uint8_t peer_type,
                const struct msgr_addrvec *addrs, int anon, int *err)
{
    int e = 0;
    struct msgr_conn *c = NULL;
    if (!addrs || addrs->n == 0) {
        e = -EINVAL;
        goto out;
    }
    if (atomic_load(&m->stopping)) {
        e = MSGR_ESHUTDOWN;
        goto out;
    }
    m->ops->mutex_lock(m->lock);
    if (is_my_addr(m, addrs)) {
        c = m->loopback;
        msgr_conn_ref(c);
        m->ops->mutex_unlock(m->lock);
        goto out;
    }
    if (!anon) {
        c = lookup_locked(m, addrs);
        if (c) {
            msgr_conn_ref(c);
            m->ops->mutex_unlock(m->lock);
            goto out;
        }
    }
    c = create_connect(m, peer_type, addrs, anon);
    m->ops->mutex_unlock(m->lock);
    if (!c) {
        e = -EINVAL;
        goto out;
    }
    msgr__conn_start_connect(c);
out:
    if (err)
        *err = e;
    return c;
}

struct msgr_conn *
msgr_get_connection(struct msgr *m, uint8_t peer_type,
                    const struct msgr_addrvec *addrs, int *err)
{
    return msgr_connect_to(m, peer_type, addrs, 0, err);
}

struct msgr_conn *
msgr_get_loopback_connection(struct msgr *m)
{
    msgr_conn_ref(m->loopback);
    return m->loopback;
}

static void
hexdump(struct msgr *m, const char *what, const struct msgr_buf *b)
{
    char line[16 * 3 + 32];
    for (uint32_t off = 0; off < b->len; off += 16) {
        int n = snprintf(line, sizeof(line), "%s %08x:", what, off);
        for (uint32_t i = off; i < off + 16 && i < b->len; i++)
            n += snprintf(line + n, sizeof(line) - (size_t)n, " %02x",
                          b->data[i]);
        MSGR_LOG(m, MSGR_LOG_ERR, "%s", line);
    }
}

int
msgr_send_message(struct msgr *m, struct msgr_msg *msg, uint8_t peer_type,
                  const struct msgr_addrvec *addrs)
{
    if (!addrs || addrs->n == 0)
        return -EINVAL;
    if (m->cfg.dump_on_send) {
        MSGR_LOG(m, MSGR_LOG_ERR, "dump_on_send type %u front %u middle %u "
                 "data %u", msg->hdr.type, msg->front.len, msg->middle.len,
                 msg->data.len);
        hexdump(m, "front", &msg->front);
        hexdump(m, "middle", &msg->middle);
        hexdump(m, "data", &msg->data);
    }
    /* The registered connection may close between the lookup and the send
     * (a lossy fault, a mark_down on another thread). A closed connection
     * is no longer the peer's, so look again, which finds none and makes a
     * new one (or drops, under a server policy), instead of failing. */
    for (int attempt = 0;; attempt++) {
        struct msgr_conn *c = NULL;
        m->ops->mutex_lock(m->lock);
        int mine = is_my_addr(m, addrs);
        if (!mine)
            c = lookup_locked(m, addrs);
        if (c)
            msgr_conn_ref(c);
        m->ops->mutex_unlock(m->lock);
        if (!c && !mine && msgr__get_policy(m, peer_type)->server) {
            /* A server never initiates: with no session there is nobody
             * to give the message to (the seed's submit_message). */
            MSGR_LOG(m, MSGR_LOG_DEBUG,
                     "server policy, no session: dropping");
            msgr__trace_msg(m, NULL, msg, MSGR_FATE_DROPPED);
            msgr_msg_unref(msg);
            return 0;
        }
        int e = 0;
        if (!c)
            c = msgr_get_connection(m, peer_type, addrs, &e);
        if (!c)
            return e;
        e = msgr_conn_send_message(c, msg);
        int retry = e == MSGR_ECLOSED && !c->is_loopback && attempt < 3 &&
                    !atomic_load(&m->stopping);
        msgr_conn_unref(c);
        if (!retry)
            return e;
    }
}

int
msgr_submit_message(struct msgr *m, struct msgr_msg *msg, uint8_t peer_type,
                    const struct msgr_addrvec *addrs)
{
    return msgr_send_message(m, msg, peer_type, addrs);
}

void
msgr_mark_down(struct msgr *m, const struct msgr_addrvec *addrs)
{
    struct msgr_conn *c = msgr__lookup_conn(m, addrs);
    if (!c)
        return;
    msgr__conn_stop(c, 1);
    msgr_conn_unref(c);
}

static void
collect(struct conn_vec *dst, const struct conn_vec *src)
{
    for (int i = 0; i < src->n; i++) {
        msgr_conn_ref(src->v[i]);
        msgr__conn_vec_push(dst, src->v[i]);
    }
}

void
msgr_shutdown_connections(struct msgr *m, int queue_reset)
{
    struct conn_vec all = {0};
    m->ops->mutex_lock(m->lock);
    collect(&all, &m->accepting_conns);
    collect(&all, &m->conns);
    collect(&all, &m->anon_conns);
    m->ops->mutex_unlock(m->lock);
    for (int i = 0; i < all.n; i++) {
        msgr__conn_stop(all.v[i], queue_reset);
        msgr_conn_unref(all.v[i]);
    }
    free_vec(&all);
}

void
msgr_mark_down_all(struct msgr *m)
{
    msgr_shutdown_connections(m, 1);
}


/* --------------------------------------------------------------- accept */

static void
accept_cb(struct msgr_listener *l, void *arg)
{
    struct msgr *m = arg;
    for (;;) {
        struct msgr_worker *w = msgr_stack_get_worker(m->stack);
        struct msgr_socket *s = NULL;
        struct msgr_addr peer;
        int e = m->ops->accept(l, w, &s, &peer);
        if (e < 0) {
            msgr_stack_put_worker(w);
            if (e != -EAGAIN)
                MSGR_LOG(m, MSGR_LOG_WARN, "accept: %s", msgr_strerror(e));
            return;
        }
        if (atomic_load(&m->stopping)) {
            msgr_stack_put_worker(w);
            m->ops->close(s, 0);
            continue;
        }
        /* add_accept */
        struct msgr_addrvec pv = {.n = 1};
        pv.v[0] = peer;
        struct msgr_conn *c = msgr__conn_new(m, w, 0, 0, &pv);
        if (!c) {
            msgr_stack_put_worker(w);
            m->ops->close(s, 1);
            continue;
        }
        m->ops->mutex_lock(m->lock);
        msgr_conn_ref(c);
        msgr__conn_vec_push(&m->accepting_conns, c);
        m->ops->mutex_unlock(m->lock);
        msgr__conn_start_accept(c, s);
        msgr_conn_unref(c);
    }
}
