/*
 * The conformance harness: see harness.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"
#include "msgr_internal.h"
#if H_HAVE_SIM
#include "sim/sim.h"
#endif

/* ------------------------------------------------------------ payloads */

static uint64_t
mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

static void
fill(uint8_t *p, uint32_t n, uint64_t seed)
{
    uint64_t x = mix64(seed) | 1;
    uint32_t i = 0;
    for (; i + 8 <= n; i += 8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        memcpy(p + i, &x, 8);
    }
    for (; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p[i] = (uint8_t)x;
    }
}

static uint32_t
checksum(const uint8_t *p, uint32_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    uint32_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t v;
        memcpy(&v, p + i, 8);
        h = (h ^ v) * 0x100000001b3ull;
    }
    for (; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return (uint32_t)(h ^ (h >> 32)) ^ n;
}

static uint64_t
seed_of(uint32_t stream, uint64_t seq, uint16_t type, int seg)
{
    return ((uint64_t)stream << 48) ^ (seq << 8) ^ ((uint64_t)type << 32) ^
           (uint64_t)seg;
}

void
h_sizes_mixed(uint64_t i, uint32_t *front_extra, uint32_t *middle,
              uint32_t *data)
{
    static const uint32_t d[] = {0,     1,      100,    4095,  4096,
                                 4097,  65549,  200000, 262144, 7};
    static const uint32_t mi[] = {0, 0, 17, 1000, 0, 4096, 3};
    static const uint32_t fe[] = {0, 3, 64, 512, 8000};
    *data = d[i % (sizeof(d) / sizeof(d[0]))];
    *middle = mi[(i * 7 + 3) % (sizeof(mi) / sizeof(mi[0]))];
    *front_extra = fe[(i * 3 + 1) % (sizeof(fe) / sizeof(fe[0]))];
}

void
h_sizes_small(uint64_t i, uint32_t *front_extra, uint32_t *middle,
              uint32_t *data)
{
    static const uint32_t d[] = {0, 10, 4096, 1000, 12000};
    static const uint32_t mi[] = {0, 5, 100};
    *data = d[i % 5];
    *middle = mi[i % 3];
    *front_extra = (uint32_t)(i % 11) * 13;
}

/* ------------------------------------------------------------ tracking */

static void
track(struct h_world *w, struct msgr_msg *m)
{
    int i = atomic_fetch_add(&w->ntracked, 1);
    if (i >= H_MAX_TRACKED) {
        atomic_fetch_add(&w->track_overflow, 1);
        m->hdr.tid = 0;
        return;
    }
    msgr_msg_ref(m);
    m->hdr.tid = (uint64_t)i + 1;
    atomic_store(&w->tracked[i].msg, m);
}

struct h_tracked *
h_tracked_of(struct h_world *w, const struct msgr_msg *m)
{
    uint64_t tid = m->hdr.tid;
    int n = atomic_load(&w->ntracked);
    if (tid == 0 || tid > (uint64_t)n || tid > H_MAX_TRACKED)
        return NULL;
    struct h_tracked *t = &w->tracked[tid - 1];
    return atomic_load(&t->msg) == m ? t : NULL;
}

struct msgr_msg *
h_msg_new(struct h_node *from, uint16_t type, uint32_t stream, uint64_t seq,
          uint32_t front_extra, uint32_t middle_len, uint32_t data_len)
{
    uint32_t flen = (uint32_t)sizeof(struct h_payload) + front_extra;
    struct msgr_msg *m = msgr_msg_new(type, flen, middle_len, data_len);
    if (!m)
        return NULL;
    struct h_payload p;
    memset(&p, 0, sizeof(p));
    p.magic = H_MAGIC;
    p.stream = stream;
    p.seq = seq;
    p.type = type;
    p.src_type = from->name.type;
    p.src_num = from->name.num;
    p.front_len = flen;
    p.middle_len = middle_len;
    p.data_len = data_len;
    uint8_t *extra = m->front.data + sizeof(p);
    fill(extra, front_extra, seed_of(stream, seq, type, 0));
    if (middle_len)
        fill(m->middle.data, middle_len, seed_of(stream, seq, type, 1));
    if (data_len)
        fill(m->data.data, data_len, seed_of(stream, seq, type, 2));
    p.sum_front = checksum(extra, front_extra);
    p.sum_middle = checksum(m->middle.data, middle_len);
    p.sum_data = checksum(m->data.data, data_len);
    memcpy(m->front.data, &p, sizeof(p));
    track(from->w, m);
    return m;
}

/* ---------------------------------------------------------- dispatcher */

static void node_error(struct h_node *n, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
node_error(struct h_node *n, const char *fmt, ...)
{
    atomic_fetch_add(&n->errors, 1);
    pthread_mutex_lock(&n->lock);
    if (!n->first_error[0]) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(n->first_error, sizeof(n->first_error), fmt, ap);
        va_end(ap);
    }
    pthread_mutex_unlock(&n->lock);
}

const char *
h_first_error(struct h_node *n)
{
    return n->first_error;
}

static int
verify(struct h_node *n, const struct msgr_msg *m, struct h_payload *p)
{
    if (m->front.len < sizeof(*p)) {
        node_error(n, "%s: type %u: front of %u bytes", n->label, m->hdr.type,
                   m->front.len);
        return -1;
    }
    memcpy(p, m->front.data, sizeof(*p));
    if (p->magic != H_MAGIC || p->type != m->hdr.type ||
        p->front_len != m->front.len || p->middle_len != m->middle.len ||
        p->data_len != m->data.len || p->stream >= H_MAX_STREAMS) {
        node_error(n,
                   "%s: bad payload header: magic %08x type %u/%u lens "
                   "%u/%u %u/%u %u/%u stream %u",
                   n->label, p->magic, p->type, m->hdr.type, p->front_len,
                   m->front.len, p->middle_len, m->middle.len, p->data_len,
                   m->data.len, p->stream);
        return -1;
    }
    if (checksum(m->front.data + sizeof(*p),
                 m->front.len - (uint32_t)sizeof(*p)) != p->sum_front ||
        checksum(m->middle.data, m->middle.len) != p->sum_middle ||
        checksum(m->data.data, m->data.len) != p->sum_data) {
        node_error(n, "%s: checksum mismatch: stream %u seq %llu", n->label,
                   p->stream, (unsigned long long)p->seq);
        return -1;
    }
    if (m->hdr.src.type != p->src_type || m->hdr.src.num != p->src_num) {
        node_error(n, "%s: hdr.src %s.%lld but sent by %s.%lld", n->label,
                   msgr_entity_type_name(m->hdr.src.type),
                   (long long)m->hdr.src.num,
                   msgr_entity_type_name(p->src_type), (long long)p->src_num);
        return -1;
    }
    if (n->expect_src_type &&
        (m->hdr.src.type != n->expect_src_type ||
         (n->check_src_num && m->hdr.src.num != n->expect_src_num))) {
        node_error(n, "%s: hdr.src %s.%lld, expected %s.%lld", n->label,
                   msgr_entity_type_name(m->hdr.src.type),
                   (long long)m->hdr.src.num,
                   msgr_entity_type_name(n->expect_src_type),
                   (long long)n->expect_src_num);
        return -1;
    }
    if (!m->conn) {
        node_error(n, "%s: received message without a connection", n->label);
        return -1;
    }
    int lb = msgr_conn_is_loopback(m->conn);
    if (msgr_conn_peer_type(m->conn) != m->hdr.src.type) {
        node_error(n, "%s: conn peer type %s, hdr.src %s", n->label,
                   msgr_entity_type_name(msgr_conn_peer_type(m->conn)),
                   msgr_entity_type_name(m->hdr.src.type));
        return -1;
    }
    if (!lb && n->expect_rev >= 0 && msgr_conn_rev(m->conn) != n->expect_rev) {
        node_error(n, "%s: conn rev %d, expected %d", n->label,
                   msgr_conn_rev(m->conn), n->expect_rev);
        return -1;
    }
    return 0;
}

static void
on_msg(struct h_node *n, struct msgr_msg *m, int fast)
{
    struct h_payload p;
    int want_fast = n->fast_all || (n->fast_type && m->hdr.type == n->fast_type);
    if (fast != want_fast)
        node_error(n, "%s: type %u delivered by %s", n->label, m->hdr.type,
                   fast ? "ms_fast_dispatch" : "ms_dispatch");
    if (verify(n, m, &p) < 0) {
        msgr_msg_unref(m);
        return;
    }
    int is_rep = m->hdr.type == H_MSG_REP;
    pthread_mutex_lock(&n->lock);
    uint64_t *next = is_rep ? &n->next_rep[p.stream] : &n->next_req[p.stream];
    uint64_t want = *next;
    *next = p.seq + 1;
    pthread_mutex_unlock(&n->lock);
    if (p.seq != want && !(n->allow_gaps && p.seq > want))
        node_error(n, "%s: %s stream %u: seq %llu, expected %llu", n->label,
                   is_rep ? "echo" : "request", p.stream,
                   (unsigned long long)p.seq, (unsigned long long)want);
    if (n->hook_msg)
        n->hook_msg(n, m);
    if (msgr_conn_is_loopback(m->conn))
        atomic_fetch_add(&n->n_loopback, 1);
    if (!is_rep && n->echo) {
        struct msgr_msg *r = h_msg_new(
            n, H_MSG_REP, p.stream, p.seq,
            p.front_len - (uint32_t)sizeof(p), p.middle_len, p.data_len);
        if (!r || h_conn_send(m->conn, r) < 0)
            atomic_fetch_add(&n->n_echo_fail, 1);
        else
            atomic_fetch_add(&n->n_echo, 1);
    }
    /* counted last: the main thread waits on these */
    if (is_rep) {
        atomic_fetch_add(&n->n_rep_stream[p.stream], 1);
        atomic_fetch_add(&n->n_rep, 1);
    } else {
        atomic_fetch_add(&n->n_req_stream[p.stream], 1);
        atomic_fetch_add(&n->n_req, 1);
    }
    msgr_msg_unref(m);
}

static int
d_dispatch(void *arg, struct msgr_msg *m)
{
    struct h_node *n = arg;
    atomic_fetch_add(&n->n_dispatch, 1);
    on_msg(n, m, 0);
    return 1;
}

static int
d_can_fast(void *arg, const struct msgr_msg *m)
{
    struct h_node *n = arg;
    return n->fast_all || (n->fast_type && m->hdr.type == n->fast_type);
}

static void
d_fast(void *arg, struct msgr_msg *m)
{
    struct h_node *n = arg;
    atomic_fetch_add(&n->n_fast, 1);
    on_msg(n, m, 1);
}

static void
d_connect(void *arg, struct msgr_conn *c)
{
    struct h_node *n = arg;
    if (n->hook_event)
        n->hook_event(n, H_EV_CONNECT, c);
    atomic_store(&n->last_connect, c);
    atomic_store(&n->connect_peer_type, msgr_conn_peer_type(c));
    atomic_store(&n->connect_rev, msgr_conn_rev(c));
    atomic_fetch_add(&n->n_connect, 1);
}

static void
d_accept(void *arg, struct msgr_conn *c)
{
    struct h_node *n = arg;
    if (n->hook_event)
        n->hook_event(n, H_EV_ACCEPT, c);
    atomic_store(&n->last_accept, c);
    atomic_store(&n->accept_peer_type, msgr_conn_peer_type(c));
    atomic_store(&n->accept_rev, msgr_conn_rev(c));
    atomic_fetch_add(&n->n_accept, 1);
}

static int
d_reset(void *arg, struct msgr_conn *c)
{
    struct h_node *n = arg;
    if (n->hook_event)
        n->hook_event(n, H_EV_RESET, c);
    atomic_fetch_add(&n->n_reset, 1);
    return 1;
}

static void
d_remote_reset(void *arg, struct msgr_conn *c)
{
    struct h_node *n = arg;
    if (n->hook_event)
        n->hook_event(n, H_EV_REMOTE_RESET, c);
    atomic_fetch_add(&n->n_remote_reset, 1);
}

static int
d_refused(void *arg, struct msgr_conn *c)
{
    struct h_node *n = arg;
    (void)c;
    atomic_fetch_add(&n->n_refused, 1);
    return 1;
}

/* --------------------------------------------------------------- tracer */

static void
t_state(void *arg, struct msgr *m, struct msgr_conn *c, const char *from,
        const char *to, const char *cause)
{
    struct h_node *n = arg;
    if (n->fp.state)
        n->fp.state(n->fp.arg, m, c, from, to, cause);
    if (!strcmp(from, "NONE"))
        atomic_fetch_add(&n->births, 1);
    if (!strcmp(to, "CLOSED"))
        atomic_fetch_add(&n->deaths, 1);
    if (!strcmp(to, "READY"))
        atomic_fetch_add(&n->readies, 1);
}

static void
t_frame(void *arg, struct msgr *m, struct msgr_conn *c, int dir, unsigned tag,
        uint64_t bytes)
{
    struct h_node *n = arg;
    if (n->fp.frame)
        n->fp.frame(n->fp.arg, m, c, dir, tag, bytes);
    if (tag == 17 /* MESSAGE */)
        atomic_fetch_add(dir ? &n->msg_frames_out : &n->msg_frames_in, 1);
    if (tag < H_NTAGS)
        atomic_fetch_add(dir ? &n->tag_out[tag] : &n->tag_in[tag], 1);
}

static void
t_msg(void *arg, struct msgr *m, struct msgr_conn *c, const struct msgr_msg *msg,
      int fate)
{
    struct h_node *n = arg;
    if (n->fp.msg)
        n->fp.msg(n->fp.arg, m, c, msg, fate);
    if (fate < 0 || fate >= H_NFATES) {
        node_error(n, "%s: tracer fate %d", n->label, fate);
        return;
    }
    atomic_fetch_add(&n->fate[fate], 1);
    struct h_tracked *t = h_tracked_of(n->w, msg);
    if (!t) {
        atomic_fetch_add(&n->rx_fate[fate], 1);
        return;
    }
    atomic_fetch_add(&t->fate[fate], 1);
    /* SENT is reported on the connection's worker, where the policy is
     * written: reading it here is not a race */
    if (fate == MSGR_FATE_SENT && c && c->policy.lossy)
        atomic_fetch_add(&t->sent_lossy, 1);
}

static void
t_fault(void *arg, struct msgr *m, struct msgr_conn *c, int err,
        const char *what)
{
    struct h_node *n = arg;
    if (n->fp.fault)
        n->fp.fault(n->fp.arg, m, c, err, what);
    pthread_mutex_lock(&n->lock);
    if (n->nfaults_logged < H_MAX_FAULTS) {
        n->faults[n->nfaults_logged].conn_id = c ? msgr_conn_id(c) : 0;
        n->faults[n->nfaults_logged].err = err;
        n->nfaults_logged++;
    }
    pthread_mutex_unlock(&n->lock);
    atomic_fetch_add(&n->nfaults, 1);
}

int
h_fault_count(struct h_node *n, int err)
{
    int k = 0;
    pthread_mutex_lock(&n->lock);
    for (int i = 0; i < n->nfaults_logged; i++)
        if (n->faults[i].err == err)
            k++;
    pthread_mutex_unlock(&n->lock);
    return k;
}

/* ---------------------------------------------------------------- world */

static void
world_add_stack(struct h_world *w, struct msgr_stack *st)
{
    assert_true(w->nstacks < (int)(sizeof(w->stacks) / sizeof(w->stacks[0])));
    w->stacks[w->nstacks++] = st;
}

#if H_HAVE_SIM
#define H_DRIVER_ID   254u
#define H_DRIVER_IPV4 0x0a0000feu /* 10.0.0.254 */

static uint64_t
env_u64(const char *name, uint64_t dflt)
{
    const char *v = getenv(name);
    if (!v || !*v)
        return dflt;
    char *end = NULL;
    unsigned long long x = strtoull(v, &end, 0);
    if (!end || *end) {
        fprintf(stderr, "%s=%s: not a number, using %llu\n", name, v,
                (unsigned long long)dflt);
        return dflt;
    }
    return (uint64_t)x;
}

/* The next host (10.0.0.N) with a stack of nworkers on it. */
static struct msgr_stack *
sim_host_stack(struct h_world *w, const char *name, int nworkers,
               struct sim_host **host)
{
    assert_true(w->next_host < 250);
    uint32_t id = ++w->next_host;
    struct sim_host *h = sim_host_new(w->sim, id, name, 0x0a000000u | id);
    assert_non_null(h);
    struct sim_stack_config sc = {.nworkers = nworkers,
                                  .post_delay_ns = w->post_delay_ns};
    int err = 0;
    struct msgr_stack *st = sim_stack_new(w->sim, h, &sc, &err);
    if (!st)
        fail_msg("sim_stack_new(%s): %s", name, msgr_strerror(err));
    world_add_stack(w, st);
    if (host)
        *host = h;
    return st;
}

static int
sim_world_init(struct h_world *w)
{
    w->seed = env_u64("MSGR_TEST_SEED", H_SIM_SEED);
    w->post_delay_ns = env_u64("MSGR_TEST_SIM_POST_DELAY_US", 0) * 1000;
    w->sim = sim_world_new(w->seed);
    if (!w->sim)
        return -1;
    w->driver = sim_host_new(w->sim, H_DRIVER_ID, "driver", H_DRIVER_IPV4);
    struct sim_stack_config sc = {.nworkers = 1};
    int err = 0;
    w->st = w->driver ? sim_stack_new(w->sim, w->driver, &sc, &err) : NULL;
    if (!w->st) {
        fprintf(stderr, "cannot create the sim driver stack: %s\n",
                msgr_strerror(err));
        sim_world_free(w->sim);
        return -1;
    }
    return 0;
}

struct msgr_stack *
h_sim_extra_stack(struct h_world *w, const char *name, struct sim_host **host)
{
    assert_true(h_is_sim(w));
    return sim_host_stack(w, name, 1, host);
}
#else
struct msgr_stack *
h_sim_extra_stack(struct h_world *w, const char *name, struct sim_host **host)
{
    (void)w;
    (void)name;
    (void)host;
    fail_msg("built without the simulator");
    return NULL;
}
#endif

struct h_world *
h_world_new(void)
{
    const char *name = getenv("MSGR_TEST_STACK");
    if (!name || !*name)
        name = "posix";
    struct h_world *w = calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    w->tracked = calloc(H_MAX_TRACKED, sizeof(*w->tracked));
    if (!w->tracked) {
        free(w);
        return NULL;
    }
    if (!strcmp(name, "sim")) {
#if H_HAVE_SIM
        if (sim_world_init(w) < 0) {
            free(w->tracked);
            free(w);
            return NULL;
        }
#else
        fprintf(stderr, "cannot create the 'sim' stack: built without the "
                        "simulator\n");
        free(w->tracked);
        free(w);
        return NULL;
#endif
    } else {
        struct msgr_stack_config sc = {.nworkers = 3};
        int err = 0;
        w->st = msgr_stack_create(name, &sc, &err);
        if (!w->st) {
            fprintf(stderr, "cannot create the '%s' stack: %s\n", name,
                    msgr_strerror(err));
            free(w->tracked);
            free(w);
            return NULL;
        }
    }
    w->ops = w->st->ops;
    w->stack_name = w->ops->name;
    if (w->ops->start(w->st) != 0) {
        msgr_stack_unref(w->st);
#if H_HAVE_SIM
        if (w->sim)
            sim_world_free(w->sim);
#endif
        free(w->tracked);
        free(w);
        return NULL;
    }
    w->stacks[w->nstacks++] = w->st;
    /* Random nonces (Ceph's are random too): two test processes run the
     * same cases at once, and a client of one that reaches the other's
     * server must be told apart (WRONG_PEER), not taken for one of its
     * clients. Room is left for rebinds (+1,000,000 each). On the sim the
     * driver's stream gives them: the same for a seed. */
    w->nonce_base = 1000 + w->ops->random_u64(w->st) % 2000000000u;
    w->log_level = MSGR_LOG_WARN;
    const char *lv = getenv("MSGR_TEST_LOG");
    if (lv && *lv)
        w->log_level = atoi(lv);
    return w;
}

int
h_is_posix(struct h_world *w)
{
    return strcmp(w->stack_name, "posix") == 0;
}

int
h_is_sim(struct h_world *w)
{
    return w->sim != NULL;
}

msgr_time_ns
h_now(struct h_world *w)
{
    return w->ops->now_ns(w->st);
}

#if H_HAVE_SIM
struct spin_arg {
    struct h_world *w;
    int (*cond)(void *);
    void *arg;
};

/* Called by the sim's scheduler before each event it runs for a wait:
 * counts the events run in a row at one virtual instant. */
static int
spin_cond(void *p)
{
    struct spin_arg *a = p;
    struct h_world *w = a->w;
    msgr_time_ns now = sim_now(w->sim);
    if (now != w->spin_at) {
        w->spin_at = now;
        w->spin_run = 0;
    } else if (++w->spin_run >= H_SPIN_EVENTS) {
        w->spun = 1;
        return 1;
    }
    if (w->spin_run > w->spin_max)
        w->spin_max = w->spin_run;
    return a->cond(a->arg);
}
#endif

int
h_wait(struct h_world *w, int (*cond)(void *), void *arg, msgr_time_ns timeout)
{
#if H_HAVE_SIM
    if (w->sim) {
        struct spin_arg a = {w, cond, arg};
        int r = w->ops->wait_until(w->st, spin_cond, &a, timeout);
        if (w->spun)
            fail_msg("sim: %llu events in a row at virtual time %llu ns "
                     "without time passing: a busy loop (seed %llu)",
                     (unsigned long long)w->spin_run,
                     (unsigned long long)w->spin_at,
                     (unsigned long long)w->seed);
        return r;
    }
#endif
    return w->ops->wait_until(w->st, cond, arg, timeout);
}

struct ge_arg {
    _Atomic int *p;
    int v;
};

static int
ge_cond(void *arg)
{
    struct ge_arg *g = arg;
    return atomic_load(g->p) >= g->v;
}

int
h_wait_ge(struct h_world *w, _Atomic int *p, int v, msgr_time_ns timeout)
{
    struct ge_arg g = {p, v};
    return h_wait(w, ge_cond, &g, timeout);
}

static int
never(void *arg)
{
    (void)arg;
    return 0;
}

void
h_idle(struct h_world *w, msgr_time_ns ns)
{
    h_wait(w, never, NULL, ns);
}

void
h_settle(struct h_world *w)
{
    for (int round = 0; round < 2; round++)
        for (int i = 0; i < w->nstacks; i++)
            w->ops->drain(w->stacks[i]);
}

/* ----------------------------------------------------------------- nodes */

struct h_node *
h_node_new(struct h_world *w, const struct h_spec *spec)
{
    assert_true(w->nnodes < H_MAX_NODES);
    struct h_node *n = calloc(1, sizeof(*n));
    assert_non_null(n);
    n->w = w;
    n->idx = w->nnodes;
    snprintf(n->label, sizeof(n->label), "%s", spec->label ? spec->label : "node");
    n->name.type = spec->type;
    n->name.num = spec->num;
    n->echo = spec->echo;
    n->expect_rev = -1;
    pthread_mutex_init(&n->lock, NULL);
    n->st = w->st;
#if H_HAVE_SIM
    if (w->sim && spec->on_host_of) {
        /* a restart: the same host, the same stack (the world holds it) */
        n->st = spec->on_host_of->st;
        n->host = spec->on_host_of->host;
        sim_fp_tracer(w->sim, &n->fp);
    } else if (w->sim) {
        n->st = sim_host_stack(w, n->label, 3, &n->host);
        sim_fp_tracer(w->sim, &n->fp);
    }
#endif

    struct msgr_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.name = n->name;
    cfg.nonce = w->nonce_base + 97 * (uint64_t)n->idx;
    cfg.stack = n->st;
    cfg.force_rev0 = spec->force_rev0;
    cfg.idle_timeout_ns = spec->idle_timeout_ns;
    cfg.max_frame_segment = spec->max_frame_segment;
    cfg.bind_port_min = spec->bind_port_min;
    cfg.bind_port_max = spec->bind_port_max;
    if (!cfg.bind_port_min && !w->sim) {
        cfg.bind_port_min = 6800 + (int)(w->ops->random_u64(w->st) % 700);
        cfg.bind_port_max = 7568;
    }
    /* tests back off quickly (Ceph's test_msgr uses ms_max_backoff 1) */
    cfg.max_backoff_ns = 1 * MSGR_NS_PER_S;
    cfg.bind_retry_delay_ns = 100 * MSGR_NS_PER_MS;
    int err = 0;
    n->m = msgr_create(&cfg, &err);
    if (!n->m) {
        pthread_mutex_destroy(&n->lock);
        free(n);
        fail_msg("msgr_create(%s): %s", spec->label, msgr_strerror(err));
        return NULL;
    }
    msgr_set_log(n->m, w->log_level, NULL, NULL);
    w->nodes[w->nnodes++] = n;
    n->bind_pending = spec->bind;
    return n;
}

void
h_policy(struct h_node *n, uint8_t peer_type, enum msgr_policy_kind k)
{
    struct msgr_policy p = msgr_policy_make(k, 0);
    msgr_set_policy(n->m, peer_type, &p);
}

void
h_policy_custom(struct h_node *n, uint8_t peer_type,
                const struct msgr_policy *p)
{
    msgr_set_policy(n->m, peer_type, p);
}

void
h_node_bind(struct h_node *n)
{
    if (!n->bind_pending)
        return;
    n->bind_pending = 0;
    struct msgr_addr a;
#if H_HAVE_SIM
    if (n->host)
        sim_host_addr(n->host, 0, &a); /* v2:10.0.0.N:0 */
    else
#endif
        assert_int_equal(msgr_addr_parse("v2:127.0.0.1:0", &a), 0);
    int e = msgr_bind(n->m, &a);
    if (e < 0)
        fail_msg("%s: bind: %s", n->label, msgr_strerror(e));
}

void
h_node_start(struct h_node *n)
{
    struct msgr_tracer t = {
        .arg = n,
        .state = t_state,
        .frame = t_frame,
        .msg = t_msg,
        .fault = t_fault,
    };
    msgr_set_tracer(n->m, &t);
    h_node_bind(n);
    assert_int_equal(msgr_start(n->m), 0);
    struct msgr_dispatcher d = {
        .arg = n,
        .ms_can_fast_dispatch = d_can_fast,
        .ms_fast_dispatch = d_fast,
        .ms_dispatch = d_dispatch,
        .ms_handle_connect = d_connect,
        .ms_handle_accept = d_accept,
        .ms_handle_reset = d_reset,
        .ms_handle_remote_reset = d_remote_reset,
        .ms_handle_refused = d_refused,
    };
    assert_int_equal(msgr_add_dispatcher(n->m, &d), 0);
    n->started = 1;
}

void
h_node_addrs(struct h_node *n, struct msgr_addrvec *out)
{
    msgr_get_myaddrs(n->m, out);
}

void
h_node_shutdown(struct h_node *n)
{
    if (n->shut || n->destroyed)
        return;
    assert_int_equal(msgr_shutdown(n->m), 0);
    n->shut = 1;
}

/* After wait(): nothing of a connection may be left. Returns a count of
 * violations, printing each. */
static int
check_closed(struct h_node *n)
{
    int bad = 0;
    struct msgr *m = n->m;
    m->ops->mutex_lock(m->lock);
    int tables = m->conns.n + m->accepting_conns.n + m->anon_conns.n +
                 m->deleted_conns.n;
    m->ops->mutex_unlock(m->lock);
    if (tables) {
        print_error("%s: %d connection table entries left after wait()\n",
                    n->label, tables);
        bad++;
    }
    int births = atomic_load(&n->births), deaths = atomic_load(&n->deaths);
    if (births != deaths) {
        print_error("%s: %d connections born, %d closed after wait()\n",
                    n->label, births, deaths);
        bad++;
    }
    if (atomic_load(&m->dq.length) != 0) {
        print_error("%s: dispatch queue not empty after wait()\n", n->label);
        bad++;
    }
    return bad;
}

void
h_node_wait(struct h_node *n)
{
    if (n->waited || n->destroyed)
        return;
    msgr_wait(n->m);
    n->shut = n->waited = 1;
    assert_int_equal(check_closed(n), 0);
}

void
h_node_destroy(struct h_node *n)
{
    if (n->destroyed)
        return;
    h_node_wait(n);
    msgr_destroy(n->m);
    n->m = NULL;
    n->destroyed = 1;
}

/* ----------------------------------------------------------- connections */

struct msgr_conn *
h_hold(struct h_world *w, struct msgr_conn *c)
{
    assert_true(w->nheld < H_MAX_HELD);
    w->held[w->nheld++] = c;
    return c;
}

void
h_release(struct h_world *w, struct msgr_conn *c)
{
    for (int i = 0; i < w->nheld; i++) {
        if (w->held[i] == c) {
            w->held[i] = w->held[--w->nheld];
            msgr_conn_unref(c);
            return;
        }
    }
    fail_msg("h_release: connection not held");
}

struct msgr_conn *
h_get_conn(struct h_node *n, uint8_t peer_type, const struct msgr_addrvec *to)
{
    int err = 0;
    struct msgr_conn *c = msgr_get_connection(n->m, peer_type, to, &err);
    if (!c)
        fail_msg("%s: msgr_get_connection: %s", n->label, msgr_strerror(err));
    return h_hold(n->w, c);
}

struct conn_arg {
    struct msgr_conn *c;
    int want;
};

static int
conn_cond(void *arg)
{
    struct conn_arg *a = arg;
    return !!msgr_conn_is_connected(a->c) == a->want;
}

int
h_wait_connected(struct h_world *w, struct msgr_conn *c, int want,
                 msgr_time_ns timeout)
{
    struct conn_arg a = {c, !!want};
    return h_wait(w, conn_cond, &a, timeout);
}

/* -------------------------------------------------------------- sending */

int
h_send(struct h_node *n, struct msgr_msg *m, uint8_t peer_type,
       const struct msgr_addrvec *to)
{
    int e = msgr_send_message(n->m, m, peer_type, to);
    if (e < 0)
        msgr_msg_unref(m);
    return e;
}

int
h_conn_send(struct msgr_conn *c, struct msgr_msg *m)
{
    int e = msgr_conn_send_message(c, m);
    if (e < 0)
        msgr_msg_unref(m);
    return e;
}

void
h_send_requests(struct h_node *n, uint8_t peer_type,
                const struct msgr_addrvec *to, uint32_t stream, int count,
                int mixed, uint16_t type)
{
    assert_true(stream < H_MAX_STREAMS);
    for (int i = 0; i < count; i++) {
        uint64_t seq = n->tx_seq[stream]++;
        uint32_t fe, mi, da;
        if (mixed)
            h_sizes_mixed(seq, &fe, &mi, &da);
        else
            h_sizes_small(seq, &fe, &mi, &da);
        struct msgr_msg *m = h_msg_new(n, type, stream, seq, fe, mi, da);
        assert_non_null(m);
        int e = h_send(n, m, peer_type, to);
        if (e < 0)
            fail_msg("%s: send #%d: %s", n->label, i, msgr_strerror(e));
    }
}

int
h_wait_echoes(struct h_node *n, uint32_t stream, msgr_time_ns timeout)
{
    return h_wait_ge(n->w, &n->n_rep_stream[stream], (int)n->tx_seq[stream],
                     timeout);
}

void
h_round_trip(struct h_node *n, uint8_t peer_type, const struct msgr_addrvec *to,
             uint32_t stream, int count, int mixed)
{
    h_send_requests(n, peer_type, to, stream, count, mixed, H_MSG_REQ);
    if (!h_wait_echoes(n, stream, H_WAIT_NS))
        fail_msg("%s: stream %u: %d of %llu echoes after %llu s (%s)",
                 n->label, stream, atomic_load(&n->n_rep_stream[stream]),
                 (unsigned long long)n->tx_seq[stream],
                 (unsigned long long)(H_WAIT_NS / MSGR_NS_PER_S),
                 h_first_error(n));
    assert_int_equal(atomic_load(&n->n_rep_stream[stream]),
                     (int)n->tx_seq[stream]);
    if (atomic_load(&n->errors))
        fail_msg("%s: %s", n->label, h_first_error(n));
}

/* ----------------------------------------------------------- the finish */

static int
check_tracked(struct h_world *w)
{
    int bad = 0;
    int n = atomic_load(&w->ntracked);
    if (n > H_MAX_TRACKED) {
        print_error("tracker overflow: %d messages\n", n);
        bad++;
        n = H_MAX_TRACKED;
    }
    for (int i = 0; i < n; i++) {
        struct h_tracked *t = &w->tracked[i];
        struct msgr_msg *m = atomic_load(&t->msg);
        if (!m)
            continue;
        int refs = atomic_load(&m->refs);
        int q = atomic_load(&t->fate[MSGR_FATE_QUEUED]);
        int a = atomic_load(&t->fate[MSGR_FATE_ACKED]);
        int d = atomic_load(&t->fate[MSGR_FATE_DROPPED]);
        int l = atomic_load(&t->fate[MSGR_FATE_DELIVERED]);
        int sl = atomic_load(&t->sent_lossy);
        int final = a + d + l;
        if (refs != 1) {
            print_error("message #%d (type %u): %d references left after "
                        "destroy\n", i + 1, m->hdr.type, refs - 1);
            bad++;
        }
        if (final > 1) {
            print_error("message #%d: %d final fates (acked %d dropped %d "
                        "delivered %d)\n", i + 1, final, a, d, l);
            bad++;
        }
        if (q > 0 && final == 0 && sl == 0) {
            print_error("message #%d (type %u): queued but never acked, "
                        "dropped, delivered or sent lossy\n", i + 1,
                        m->hdr.type);
            bad++;
        }
        if (q == 0 && (a || l || sl)) {
            print_error("message #%d: a fate without being queued\n", i + 1);
            bad++;
        }
        atomic_store(&t->msg, NULL);
        msgr_msg_unref(m);
    }
    return bad;
}

static int
check_node_records(struct h_node *n)
{
    int bad = 0;
    if (atomic_load(&n->errors)) {
        print_error("%s: %d dispatcher errors, first: %s\n", n->label,
                    atomic_load(&n->errors), n->first_error);
        bad++;
    }
    int delivered = atomic_load(&n->fate[MSGR_FATE_DELIVERED]);
    int dispatched = atomic_load(&n->n_dispatch) + atomic_load(&n->n_fast);
    if (delivered != dispatched) {
        print_error("%s: tracer says %d delivered, dispatcher got %d\n",
                    n->label, delivered, dispatched);
        bad++;
    }
    int rx = atomic_load(&n->rx_fate[MSGR_FATE_DELIVERED]) +
             atomic_load(&n->rx_fate[MSGR_FATE_DROPPED]);
    int frames = atomic_load(&n->msg_frames_in);
    if (rx != frames) {
        print_error("%s: %d message frames received, %d delivered or "
                    "dropped\n", n->label, frames, rx);
        bad++;
    }
    return bad;
}

void
h_world_finish(struct h_world *w)
{
    int bad = 0;
    while (w->nheld > 0)
        msgr_conn_unref(w->held[--w->nheld]);
    for (int i = 0; i < w->nnodes; i++) {
        struct h_node *n = w->nodes[i];
        if (!n->destroyed && !n->shut) {
            msgr_shutdown(n->m);
            n->shut = 1;
        }
    }
    for (int i = 0; i < w->nnodes; i++) {
        struct h_node *n = w->nodes[i];
        if (!n->destroyed && !n->waited) {
            msgr_wait(n->m);
            n->waited = 1;
            bad += check_closed(n);
        }
    }
    for (int i = 0; i < w->nnodes; i++) {
        struct h_node *n = w->nodes[i];
        if (!n->destroyed) {
            msgr_destroy(n->m);
            n->m = NULL;
            n->destroyed = 1;
        }
    }
    int64_t active = 0;
    for (int s = 0; s < w->nstacks; s++)
        for (int i = 0; i < w->stacks[s]->nworkers; i++)
            active +=
                atomic_load(&w->stacks[s]->workers[i]->perf.active_conns);
    if (active != 0) {
        print_error("%lld connections still active on the stacks\n",
                    (long long)active);
        bad++;
    }
    for (int i = 0; i < w->nnodes; i++)
        bad += check_node_records(w->nodes[i]);
    bad += check_tracked(w);
    for (int i = w->nstacks - 1; i >= 0; i--)
        msgr_stack_unref(w->stacks[i]);
#if H_HAVE_SIM
    if (w->sim) {
        /* What reproduces this case: the seed; what the run was: its
         * fingerprint (messenger trace and world faults), events, time. */
        print_message("[ sim      ] seed %llu: %llu events, %.3f s virtual, "
                      "at most %llu events at one instant while waiting, "
                      "fingerprint %016llx\n",
                      (unsigned long long)w->seed,
                      (unsigned long long)sim_events_run(w->sim),
                      (double)sim_now(w->sim) / (double)MSGR_NS_PER_S,
                      (unsigned long long)w->spin_max + 1,
                      (unsigned long long)sim_fingerprint(w->sim));
        sim_world_free(w->sim);
    }
#endif
    for (int i = 0; i < w->nnodes; i++) {
        pthread_mutex_destroy(&w->nodes[i]->lock);
        free(w->nodes[i]);
    }
    free(w->tracked);
    free(w);
    assert_int_equal(bad, 0);
}
