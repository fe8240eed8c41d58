/*
 * The synthetic workload and its checker (synthetic.h says what and why).
 */
#include "synthetic.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#if SYN_HAVE_SIM
#include "sim/sim.h"
#endif

#define SYN_GOT_REQ    1u
#define SYN_GOT_ECHO   2u
#define SYN_GOT_UNSENT 4u

uint64_t
syn_fnv1a(const uint8_t *p, uint32_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (uint32_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

const char *
syn_violation_name(enum syn_violation_kind k)
{
    switch (k) {
    case SYN_V_BAD_HEADER: return "bad header";
    case SYN_V_CORRUPT: return "corrupt payload";
    case SYN_V_DUPLICATE: return "duplicate";
    case SYN_V_REORDER: return "reordered";
    case SYN_V_LOSS: return "lost";
    case SYN_V_NKINDS: break;
    }
    return "?";
}

/* ============================================================ checker */

/* One incarnation: a client's connection object to one server. */
struct syn_inc {
    uint32_t client, server;
    const void *key; /* the connection (compared, never ordered) */
    uint8_t lossless, marked_down, closed;
    uint64_t last_seq;     /* sequence numbers handed out */
    uint64_t excused_upto; /* seq <= this may be lost (a session reset) */
    uint64_t outstanding;  /* counted in the checker's in-flight sums */
    uint64_t next[2];      /* per leg: highest delivered + 1 */
    uint8_t *got;          /* per seq (index seq-1): SYN_GOT_* */
    uint64_t cap;
};

struct syn_checker {
    pthread_mutex_t lock;
    struct syn_inc *inc; /* index inc-1 */
    uint32_t ninc, cap;
    uint64_t in_flight, lossless_in_flight;
    struct syn_checker_stats st;
    struct syn_violation kept[SYN_MAX_KEPT];
    int finished;
};

struct syn_checker *
syn_checker_new(void)
{
    struct syn_checker *k = calloc(1, sizeof(*k));
    if (!k)
        return NULL;
    pthread_mutex_init(&k->lock, NULL);
    return k;
}

void
syn_checker_free(struct syn_checker *k)
{
    if (!k)
        return;
    for (uint32_t i = 0; i < k->ninc; i++)
        free(k->inc[i].got);
    free(k->inc);
    pthread_mutex_destroy(&k->lock);
    free(k);
}

static void
vio(struct syn_checker *k, enum syn_violation_kind kind, enum syn_leg leg,
    uint32_t inc, uint64_t seq, uint64_t expected, uint64_t sent_ns,
    uint64_t at_ns)
{
    struct syn_inc *c = inc && inc <= k->ninc ? &k->inc[inc - 1] : NULL;
    if (k->st.violations < SYN_MAX_KEPT) {
        struct syn_violation *v = &k->kept[k->st.violations];
        v->kind = kind;
        v->leg = leg;
        v->client = c ? c->client : UINT32_MAX;
        v->server = c ? c->server : UINT32_MAX;
        v->inc = inc;
        v->seq = seq;
        v->expected = expected;
        v->sent_ns = sent_ns;
        v->at_ns = at_ns;
    }
    k->st.violations++;
    k->st.by_kind[kind]++;
}

uint32_t
syn_checker_inc_new(struct syn_checker *k, uint32_t client, uint32_t server,
                    int lossless, const void *key)
{
    pthread_mutex_lock(&k->lock);
    if (k->ninc == k->cap) {
        uint32_t cap = k->cap ? 2 * k->cap : 64;
        struct syn_inc *v = realloc(k->inc, cap * sizeof(*v));
        if (!v) {
            pthread_mutex_unlock(&k->lock);
            return 0;
        }
        k->inc = v;
        k->cap = cap;
    }
    struct syn_inc *c = &k->inc[k->ninc++];
    memset(c, 0, sizeof(*c));
    c->client = client;
    c->server = server;
    c->key = key;
    c->lossless = (uint8_t)(lossless != 0);
    c->next[0] = c->next[1] = 1;
    k->st.incarnations = k->ninc;
    uint32_t id = k->ninc;
    pthread_mutex_unlock(&k->lock);
    return id;
}

uint32_t
syn_checker_inc_by_key(struct syn_checker *k, const void *key)
{
    uint32_t id = 0;
    pthread_mutex_lock(&k->lock);
    /* newest first: a connection object reused for a new incarnation
     * belongs to the newest */
    for (uint32_t i = k->ninc; i > 0 && !id; i--)
        if (k->inc[i - 1].key == key)
            id = i;
    pthread_mutex_unlock(&k->lock);
    return id;
}

static struct syn_inc *
inc_get(struct syn_checker *k, uint32_t inc)
{
    return inc && inc <= k->ninc ? &k->inc[inc - 1] : NULL;
}

static void
outstanding_add(struct syn_checker *k, struct syn_inc *c, int delta)
{
    if (delta < 0 && c->outstanding == 0)
        return;
    c->outstanding += (uint64_t)(int64_t)delta;
    k->in_flight += (uint64_t)(int64_t)delta;
    if (c->lossless)
        k->lossless_in_flight += (uint64_t)(int64_t)delta;
}

/* Counted as outstanding: sent, not excused, not yet echoed. */
static int
counts(const struct syn_inc *c, uint64_t seq)
{
    return !c->marked_down && seq > c->excused_upto &&
           !(c->got[seq - 1] & (SYN_GOT_ECHO | SYN_GOT_UNSENT));
}

uint64_t
syn_checker_next_seq(struct syn_checker *k, uint32_t inc)
{
    uint64_t seq = 0;
    pthread_mutex_lock(&k->lock);
    struct syn_inc *c = inc_get(k, inc);
    if (c && c->last_seq == c->cap) {
        uint64_t cap = c->cap ? 2 * c->cap : 64;
        uint8_t *g = realloc(c->got, cap);
        if (g) {
            memset(g + c->cap, 0, cap - c->cap);
            c->got = g;
            c->cap = cap;
        }
    }
    if (c && c->last_seq < c->cap) {
        seq = ++c->last_seq;
        k->st.sent++;
        if (c->marked_down)
            k->st.excused++;
        else
            outstanding_add(k, c, 1);
    }
    pthread_mutex_unlock(&k->lock);
    return seq;
}

void
syn_checker_unsend(struct syn_checker *k, uint32_t inc, uint64_t seq)
{
    pthread_mutex_lock(&k->lock);
    struct syn_inc *c = inc_get(k, inc);
    if (c && seq && seq <= c->last_seq) {
        if (counts(c, seq))
            outstanding_add(k, c, -1);
        c->got[seq - 1] |= SYN_GOT_UNSENT;
        k->st.sent--;
    }
    pthread_mutex_unlock(&k->lock);
}

int
syn_checker_received(struct syn_checker *k, enum syn_leg leg,
                     const struct msgr_buf *front, const struct msgr_buf *data,
                     uint64_t now_ns)
{
    struct syn_hdr h;
    int bad = 0;
    pthread_mutex_lock(&k->lock);
    if (!front->data || front->len < sizeof(h)) {
        vio(k, SYN_V_BAD_HEADER, leg, 0, 0, 0, 0, now_ns);
        pthread_mutex_unlock(&k->lock);
        return -1;
    }
    memcpy(&h, front->data, sizeof(h));
    struct syn_inc *c = inc_get(k, h.inc);
    if (h.magic != SYN_MAGIC || h.leg != leg || !c || h.client != c->client ||
        h.server != c->server || h.seq == 0 || h.seq > c->last_seq) {
        vio(k, SYN_V_BAD_HEADER, leg, c ? h.inc : 0, h.seq, 0, h.sent_ns,
            now_ns);
        pthread_mutex_unlock(&k->lock);
        return -1;
    }
    if (data->len != h.len ||
        (h.len && syn_fnv1a(data->data, data->len) != h.sum)) {
        vio(k, SYN_V_CORRUPT, leg, h.inc, h.seq, c->next[leg], h.sent_ns,
            now_ns);
        bad = -1;
    }
    unsigned bit = leg == SYN_LEG_REQ ? SYN_GOT_REQ : SYN_GOT_ECHO;
    if (c->got[h.seq - 1] & bit) {
        vio(k, SYN_V_DUPLICATE, leg, h.inc, h.seq, c->next[leg], h.sent_ns,
            now_ns);
        bad = -1;
    } else {
        if (h.seq < c->next[leg]) {
            vio(k, SYN_V_REORDER, leg, h.inc, h.seq, c->next[leg], h.sent_ns,
                now_ns);
            bad = -1;
        } else {
            c->next[leg] = h.seq + 1;
        }
        if (leg == SYN_LEG_ECHO && counts(c, h.seq))
            outstanding_add(k, c, -1);
        c->got[h.seq - 1] |= (uint8_t)bit;
        if (!bad)
            k->st.verified[leg]++;
    }
    pthread_mutex_unlock(&k->lock);
    return bad;
}

/* Excuses every message sent so far on c. */
static void
excuse_all(struct syn_checker *k, struct syn_inc *c)
{
    for (uint64_t s = c->excused_upto + 1; s <= c->last_seq; s++)
        if (!(c->got[s - 1] & (SYN_GOT_ECHO | SYN_GOT_UNSENT)))
            k->st.excused++;
    outstanding_add(k, c, -(int)c->outstanding);
    c->excused_upto = c->last_seq;
}

void
syn_checker_marked_down(struct syn_checker *k, uint32_t inc)
{
    pthread_mutex_lock(&k->lock);
    struct syn_inc *c = inc_get(k, inc);
    if (c && !c->marked_down) {
        excuse_all(k, c);
        c->marked_down = 1;
    }
    pthread_mutex_unlock(&k->lock);
}

void
syn_checker_session_reset(struct syn_checker *k, uint32_t inc, int closed)
{
    pthread_mutex_lock(&k->lock);
    struct syn_inc *c = inc_get(k, inc);
    if (c) {
        if (!c->marked_down)
            excuse_all(k, c);
        if (closed)
            c->closed = 1;
    }
    pthread_mutex_unlock(&k->lock);
}

int
syn_checker_inc_closed(struct syn_checker *k, uint32_t inc)
{
    pthread_mutex_lock(&k->lock);
    struct syn_inc *c = inc_get(k, inc);
    int r = c ? c->closed : 1;
    pthread_mutex_unlock(&k->lock);
    return r;
}

uint64_t
syn_checker_in_flight(struct syn_checker *k)
{
    pthread_mutex_lock(&k->lock);
    uint64_t n = k->in_flight;
    pthread_mutex_unlock(&k->lock);
    return n;
}

uint64_t
syn_checker_lossless_in_flight(struct syn_checker *k)
{
    pthread_mutex_lock(&k->lock);
    uint64_t n = k->lossless_in_flight;
    pthread_mutex_unlock(&k->lock);
    return n;
}

uint64_t
syn_checker_finish(struct syn_checker *k, uint64_t now_ns)
{
    pthread_mutex_lock(&k->lock);
    if (!k->finished) {
        k->finished = 1;
        for (uint32_t i = 0; i < k->ninc; i++) {
            struct syn_inc *c = &k->inc[i];
            if (!c->lossless || c->marked_down)
                continue;
            for (uint64_t s = c->excused_upto + 1; s <= c->last_seq; s++)
                if (!(c->got[s - 1] & (SYN_GOT_ECHO | SYN_GOT_UNSENT)))
                    vio(k, SYN_V_LOSS, SYN_LEG_ECHO, i + 1, s,
                        c->next[SYN_LEG_ECHO], 0, now_ns);
        }
    }
    uint64_t n = k->st.violations;
    pthread_mutex_unlock(&k->lock);
    return n;
}

void
syn_checker_stats(struct syn_checker *k, struct syn_checker_stats *out)
{
    pthread_mutex_lock(&k->lock);
    *out = k->st;
    pthread_mutex_unlock(&k->lock);
}

int
syn_checker_violation(struct syn_checker *k, unsigned i,
                      struct syn_violation *out)
{
    pthread_mutex_lock(&k->lock);
    int ok = i < k->st.violations && i < SYN_MAX_KEPT;
    if (ok)
        *out = k->kept[i];
    pthread_mutex_unlock(&k->lock);
    return ok ? 0 : -1;
}

void
syn_violation_format(const struct syn_violation *v, char *buf, size_t len)
{
    char sent[32] = "-"; /* a loss has no send time recorded */
    if (v->kind != SYN_V_LOSS)
        snprintf(sent, sizeof(sent), "%.6f s", (double)v->sent_ns / 1e9);
    snprintf(buf, len,
             "%s on the %s leg: client %d -> server %d, incarnation %u, "
             "seq %llu (expected %llu), sent at %s, seen at %.6f s",
             syn_violation_name(v->kind),
             v->leg == SYN_LEG_REQ ? "request" : "echo", (int)v->client,
             (int)v->server, v->inc, (unsigned long long)v->seq,
             (unsigned long long)v->expected, sent, (double)v->at_ns / 1e9);
}

void
syn_checker_print(struct syn_checker *k, FILE *f)
{
    struct syn_checker_stats st;
    syn_checker_stats(k, &st);
    if (!st.violations)
        return;
    fprintf(f, "  %llu violations:", (unsigned long long)st.violations);
    for (int i = 0; i < SYN_V_NKINDS; i++)
        if (st.by_kind[i])
            fprintf(f, " %s %llu;", syn_violation_name(i),
                    (unsigned long long)st.by_kind[i]);
    fprintf(f, "\n");
    for (unsigned i = 0; i < SYN_MAX_KEPT; i++) {
        struct syn_violation v;
        char line[256];
        if (syn_checker_violation(k, i, &v) < 0)
            break;
        syn_violation_format(&v, line, sizeof(line));
        fprintf(f, "    %s\n", line);
    }
}

/* =========================================================== workload */

struct syn_wl;

struct syn_node {
    struct syn_wl *wl;
    int idx, is_server;
    char label[24];
    struct msgr *m;
    struct msgr_stack *st; /* the fault stack it runs on */
    struct msgr_addrvec addrs;
#if SYN_HAVE_SIM
    struct sim_host *h;
    struct msgr_tracer fp;
#endif
};

struct syn_wl {
    const struct syn_config *cfg;
    struct syn_checker *chk;
    struct syn_node nodes[SYN_MAX_NODES];
    int nnodes;
    struct msgr_stack *stacks[SYN_MAX_NODES]; /* the fault stacks */
    int nstacks;
    struct msgr_stack *clock; /* whose time and waits the workload uses */
    /* per (client, server) pair: the open connection and its incarnation
     * (main thread only) */
    struct msgr_conn **conn;
    uint32_t *inc;
    int npairs, nopen;
    int sim;       /* on the sim world */
    int peer_mode; /* neither policy is a server's */
    int lossless;  /* the client policy keeps messages */
#if SYN_HAVE_SIM
    struct sim_world *w;
    struct sim_rng srng;
#endif
    uint64_t prng; /* posix: splitmix64 state */
    _Atomic uint64_t echo_fail, msgr_faults;
    /* upcalls: [0] servers, [1] clients */
    _Atomic uint64_t up_reset[2], up_remote_reset[2], up_connect, up_accept;
    struct syn_result *out;
};

/* ------------------------------------------------------- randomness */

static uint64_t
splitmix64_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [0, n), n > 0. */
static uint64_t
rnd_below(struct syn_wl *wl, uint64_t n)
{
#if SYN_HAVE_SIM
    if (wl->w)
        return sim_rng_below(&wl->srng, n);
#endif
    return (uint64_t)(((unsigned __int128)splitmix64_next(&wl->prng) * n) >>
                      64);
}

static uint64_t
rnd_range(struct syn_wl *wl, uint64_t lo, uint64_t hi)
{
    return hi <= lo ? lo : lo + rnd_below(wl, hi - lo + 1);
}

/* --------------------------------------------------------------- time */

static uint64_t
now_ns(struct syn_wl *wl)
{
#if SYN_HAVE_SIM
    if (wl->w)
        return sim_now(wl->w);
#endif
    return wl->clock->ops->now_ns(wl->clock);
}

static int
never(void *arg)
{
    (void)arg;
    return 0;
}

static void
pass(struct syn_wl *wl, msgr_time_ns ns)
{
#if SYN_HAVE_SIM
    if (wl->w) {
        sim_run_until(wl->w, sim_now(wl->w) + ns);
        return;
    }
#endif
    wl->clock->ops->wait_until(wl->clock, never, NULL, ns);
}

static int
wait_for(struct syn_wl *wl, int (*cond)(void *), void *arg,
         msgr_time_ns timeout)
{
#if SYN_HAVE_SIM
    if (wl->w)
        return sim_run_until_cond(wl->w, cond, arg, sim_now(wl->w) + timeout);
#endif
    return wl->clock->ops->wait_until(wl->clock, cond, arg, timeout);
}

/* --------------------------------------------------------- payloads */

static void
fill_payload(uint8_t *p, uint32_t n, uint32_t inc, uint64_t seq)
{
    uint64_t s = ((uint64_t)inc << 40) ^ seq;
    uint32_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t x = splitmix64_next(&s);
        memcpy(p + i, &x, 8);
    }
    if (i < n) {
        uint64_t x = splitmix64_next(&s);
        memcpy(p + i, &x, n - i);
    }
}

/* ------------------------------------------------------ dispatchers */

static uint64_t
cb_now(struct syn_node *n)
{
    return n->st->ops->now_ns(n->st);
}

static int
server_dispatch(void *arg, struct msgr_msg *m)
{
    struct syn_node *n = arg;
    struct syn_wl *wl = n->wl;
    /* echo what came, as it came (the client judges the copy), unless
     * the checker refused it: a bad or repeated request is not echoed */
    if (syn_checker_received(wl->chk, SYN_LEG_REQ, &m->front, &m->data,
                             cb_now(n)) == 0) {
        struct syn_hdr h;
        memcpy(&h, m->front.data, sizeof(h));
        struct msgr_msg *e =
            msgr_msg_new(SYN_MSG_ECHO, sizeof(h), 0, m->data.len);
        if (!e) {
            atomic_fetch_add(&wl->echo_fail, 1);
        } else {
            h.leg = SYN_LEG_ECHO;
            memcpy(e->front.data, &h, sizeof(h));
            if (m->data.len)
                memcpy(e->data.data, m->data.data, m->data.len);
            e->hdr.tid = h.seq;
            if (msgr_conn_send_message(m->conn, e) != 0) {
                atomic_fetch_add(&wl->echo_fail, 1);
                msgr_msg_unref(e);
            }
        }
    }
    msgr_msg_unref(m);
    return 1;
}

static int
client_dispatch(void *arg, struct msgr_msg *m)
{
    struct syn_node *n = arg;
    syn_checker_received(n->wl->chk, SYN_LEG_ECHO, &m->front, &m->data,
                         cb_now(n));
    msgr_msg_unref(m);
    return 1;
}

static int
client_reset(void *arg, struct msgr_conn *c)
{
    struct syn_node *n = arg;
    atomic_fetch_add(&n->wl->up_reset[1], 1);
    uint32_t inc = syn_checker_inc_by_key(n->wl->chk, c);
    if (inc)
        syn_checker_session_reset(n->wl->chk, inc, 1);
    return 1;
}

static void
client_remote_reset(void *arg, struct msgr_conn *c)
{
    struct syn_node *n = arg;
    atomic_fetch_add(&n->wl->up_remote_reset[1], 1);
    uint32_t inc = syn_checker_inc_by_key(n->wl->chk, c);
    if (inc)
        syn_checker_session_reset(n->wl->chk, inc, 0);
}

static int
server_reset(void *arg, struct msgr_conn *c)
{
    (void)c;
    atomic_fetch_add(&((struct syn_node *)arg)->wl->up_reset[0], 1);
    return 1;
}

static void
server_remote_reset(void *arg, struct msgr_conn *c)
{
    (void)c;
    atomic_fetch_add(&((struct syn_node *)arg)->wl->up_remote_reset[0], 1);
}

static void
any_connect(void *arg, struct msgr_conn *c)
{
    (void)c;
    atomic_fetch_add(&((struct syn_node *)arg)->wl->up_connect, 1);
}

static void
any_accept(void *arg, struct msgr_conn *c)
{
    (void)c;
    atomic_fetch_add(&((struct syn_node *)arg)->wl->up_accept, 1);
}

/* ----------------------------------------------------------- tracer */

static void
tr_state(void *arg, struct msgr *m, struct msgr_conn *c, const char *from,
         const char *to, const char *cause)
{
#if SYN_HAVE_SIM
    struct syn_node *n = arg;
    if (n->fp.state)
        n->fp.state(n->fp.arg, m, c, from, to, cause);
#else
    (void)arg, (void)m, (void)c, (void)from, (void)to, (void)cause;
#endif
}

static void
tr_frame(void *arg, struct msgr *m, struct msgr_conn *c, int dir,
         unsigned tag, uint64_t bytes)
{
#if SYN_HAVE_SIM
    struct syn_node *n = arg;
    if (n->fp.frame)
        n->fp.frame(n->fp.arg, m, c, dir, tag, bytes);
#else
    (void)arg, (void)m, (void)c, (void)dir, (void)tag, (void)bytes;
#endif
}

static void
tr_msg(void *arg, struct msgr *m, struct msgr_conn *c,
       const struct msgr_msg *msg, int fate)
{
#if SYN_HAVE_SIM
    struct syn_node *n = arg;
    if (n->fp.msg)
        n->fp.msg(n->fp.arg, m, c, msg, fate);
#else
    (void)arg, (void)m, (void)c, (void)msg, (void)fate;
#endif
}

static void
tr_fault(void *arg, struct msgr *m, struct msgr_conn *c, int err,
         const char *what)
{
    struct syn_node *n = arg;
    atomic_fetch_add(&n->wl->msgr_faults, 1);
#if SYN_HAVE_SIM
    if (n->fp.fault)
        n->fp.fault(n->fp.arg, m, c, err, what);
#else
    (void)m, (void)c, (void)err, (void)what;
#endif
}

/* ------------------------------------------------------------ setup */

/* Delayed delivery by peer type (Ceph's ms_inject_delay_type/_max/
 * _probability), handed to the messenger's injection. */
static int
syn_apply_delay_by_type(const struct syn_delay_by_type *d,
                        struct msgr_config *mc)
{
    mc->inject_delay_types = d->types;
    mc->inject_delay_prob_ppm = d->prob_ppm;
    mc->inject_delay_max_ns = d->max_ns;
    return 0;
}

void
syn_config_default(struct syn_config *c)
{
    memset(c, 0, sizeof(*c));
    c->name = "synthetic";
    c->use_sim = 1;
    c->seed = 1;
    c->nservers = 8;
    c->nclients = 32;
    c->server_policy = MSGR_POLICY_STATEFUL_SERVER;
    c->client_policy = MSGR_POLICY_LOSSLESS_CLIENT;
    c->initial_conns = 100;
    c->ops = 5000;
    c->pct_new = 9;
    c->pct_drop = 10;
    c->pct_send = 70;
    c->min_payload = 32;
    c->max_payload = 64 * 1024;
    c->max_in_flight = 64;
    c->max_conns = 128;
}

static struct msgr_stack *
make_stack(struct syn_wl *wl, struct syn_node *n, int *err)
{
    const struct syn_config *cfg = wl->cfg;
    struct msgr_stack *inner = NULL;
#if SYN_HAVE_SIM
    if (wl->w) {
        /* one host and stack per messenger, 10.0.0.(idx+1) */
        uint32_t id = (uint32_t)n->idx + 1;
        n->h = sim_host_new(wl->w, id, n->label, 0x0a000000u | id);
        if (!n->h) {
            *err = -ENOMEM;
            return NULL;
        }
        struct sim_stack_config sc = {.nworkers = cfg->nworkers};
        inner = sim_stack_new(wl->w, n->h, &sc, err);
    }
#endif
    if (!inner) {
        /* posix: one stack shared by every messenger, made once */
        if (wl->nstacks)
            return wl->stacks[0];
        struct msgr_stack_config sc = {.nworkers = cfg->nworkers};
        inner = msgr_stack_create("posix", &sc, err);
        if (!inner)
            return NULL;
    }
    struct msgr_stack *st = msgr_fault_stack_new(inner, &cfg->fault, err);
    msgr_stack_unref(inner); /* st holds its own */
    if (!st)
        return NULL;
    if (st->ops->start(st) != 0) {
        msgr_stack_unref(st);
        *err = -EIO;
        return NULL;
    }
    wl->stacks[wl->nstacks++] = st;
    return st;
}

static int
node_new(struct syn_wl *wl, int idx, int is_server, int num)
{
    const struct syn_config *cfg = wl->cfg;
    struct syn_node *n = &wl->nodes[idx];
    int err = 0;
    n->wl = wl;
    n->idx = idx;
    n->is_server = is_server;
    snprintf(n->label, sizeof(n->label), "%s.%d", is_server ? "osd" : "client",
             num);
    n->st = make_stack(wl, n, &err);
    if (!n->st)
        return err ? err : -ENOMEM;
    if (!wl->clock)
        wl->clock = n->st;

    struct msgr_config mc;
    memset(&mc, 0, sizeof(mc));
    mc.name.type = is_server ? MSGR_ENTITY_OSD : MSGR_ENTITY_CLIENT;
    mc.name.num = num;
    /* random nonces, as Ceph's: on posix another test process's
     * messengers must not pass for ours */
    mc.nonce = 1000 + rnd_below(wl, 1000000000u);
    mc.stack = n->st;
    mc.max_backoff_ns = MSGR_NS_PER_S; /* test_msgr's ms_max_backoff 1 */
    mc.bind_retry_delay_ns = 100 * MSGR_NS_PER_MS;
    mc.dispatch_throttle_bytes = cfg->dispatch_throttle_bytes;
    if (!wl->sim) {
        mc.bind_port_min = 6800 + (int)rnd_below(wl, 700);
        mc.bind_port_max = 7568;
    }
    err = syn_apply_delay_by_type(&cfg->delay_by_type, &mc);
    if (err)
        return err;
    n->m = msgr_create(&mc, &err);
    if (!n->m)
        return err ? err : -ENOMEM;
    wl->nnodes = idx + 1;
    msgr_set_log(n->m, cfg->verbose > 1 ? MSGR_LOG_DEBUG : MSGR_LOG_ERR,
                 NULL, NULL);
    struct msgr_policy p = msgr_policy_make(
        is_server ? cfg->server_policy : cfg->client_policy, 0);
    msgr_set_default_policy(n->m, &p);
#if SYN_HAVE_SIM
    if (wl->w)
        sim_fp_tracer(wl->w, &n->fp);
#endif
    struct msgr_tracer t = {.arg = n,
                            .state = tr_state,
                            .frame = tr_frame,
                            .msg = tr_msg,
                            .fault = tr_fault};
    msgr_set_tracer(n->m, &t);

    /* every messenger binds: a peer policy's server side reconnects to
     * the client's address */
    struct msgr_addr a;
#if SYN_HAVE_SIM
    if (wl->w)
        sim_host_addr(n->h, 0, &a);
#endif
    if (!wl->sim && msgr_addr_parse("v2:127.0.0.1:0", &a) < 0)
        return -EINVAL;
    err = msgr_bind(n->m, &a);
    if (err < 0)
        return err;
    err = msgr_start(n->m);
    if (err < 0)
        return err;
    struct msgr_dispatcher d = {
        .arg = n,
        .ms_dispatch = is_server ? server_dispatch : client_dispatch,
        .ms_handle_connect = any_connect,
        .ms_handle_accept = any_accept,
        .ms_handle_reset = is_server ? server_reset : client_reset,
        .ms_handle_remote_reset =
            is_server ? server_remote_reset : client_remote_reset,
    };
    err = msgr_add_dispatcher(n->m, &d);
    if (err < 0)
        return err;
    msgr_get_myaddrs(n->m, &n->addrs);
    return 0;
}

static struct syn_node *
server_of(struct syn_wl *wl, int pair)
{
    return &wl->nodes[pair % wl->cfg->nservers];
}

static struct syn_node *
client_of(struct syn_wl *wl, int pair)
{
    return &wl->nodes[wl->cfg->nservers + pair / wl->cfg->nservers];
}

/* The k-th pair (0-based) whose open state is `open`. */
static int
nth_pair(struct syn_wl *wl, int open, int k)
{
    for (int p = 0; p < wl->npairs; p++)
        if ((wl->conn[p] != NULL) == open && k-- == 0)
            return p;
    return -1;
}

static void
forget_pair(struct syn_wl *wl, int p)
{
    msgr_conn_unref(wl->conn[p]);
    wl->conn[p] = NULL;
    wl->inc[p] = 0;
    wl->nopen--;
}

/* Connections the messenger closed (ms_handle_reset) leave the table. */
static void
sweep_closed(struct syn_wl *wl)
{
    for (int p = 0; p < wl->npairs; p++)
        if (wl->conn[p] && syn_checker_inc_closed(wl->chk, wl->inc[p])) {
            forget_pair(wl, p);
            wl->out->closed_conns++;
        }
}

static void
op_drop(struct syn_wl *wl)
{
    if (!wl->nopen)
        return;
    int p = nth_pair(wl, 1, (int)rnd_below(wl, (uint64_t)wl->nopen));
    syn_checker_marked_down(wl->chk, wl->inc[p]);
    msgr_conn_mark_down(wl->conn[p]);
    if (wl->peer_mode) {
        /* both ends are peers: the server's side would otherwise resume
         * the session towards the client */
        msgr_mark_down(server_of(wl, p)->m, &client_of(wl, p)->addrs);
    }
    forget_pair(wl, p);
    wl->out->ops_drop++;
}

static void
op_new(struct syn_wl *wl)
{
    if (wl->nopen >= wl->cfg->max_conns || wl->nopen == wl->npairs) {
        op_drop(wl);
        return;
    }
    int p = nth_pair(wl, 0,
                     (int)rnd_below(wl, (uint64_t)(wl->npairs - wl->nopen)));
    struct syn_node *c = client_of(wl, p), *s = server_of(wl, p);
    int err = 0;
    struct msgr_conn *conn =
        msgr_get_connection(c->m, MSGR_ENTITY_OSD, &s->addrs, &err);
    if (!conn)
        return;
    uint32_t inc = syn_checker_inc_new(wl->chk, (uint32_t)c->idx,
                                       (uint32_t)s->idx, wl->lossless, conn);
    if (!inc) {
        msgr_conn_unref(conn);
        return;
    }
    wl->conn[p] = conn;
    wl->inc[p] = inc;
    wl->nopen++;
    wl->out->ops_new++;
}

static int
below_limit(void *arg)
{
    struct syn_wl *wl = arg;
    return syn_checker_in_flight(wl->chk) < (uint64_t)wl->cfg->max_in_flight;
}

static void
op_send(struct syn_wl *wl)
{
    const struct syn_config *cfg = wl->cfg;
    /* at most max_in_flight outstanding: let time pass first */
    if (!below_limit(wl))
        wait_for(wl, below_limit, wl, 10 * MSGR_NS_PER_S);
    sweep_closed(wl);
    if (!wl->nopen)
        op_new(wl);
    if (!wl->nopen)
        return;
    int p = nth_pair(wl, 1, (int)rnd_below(wl, (uint64_t)wl->nopen));
    uint32_t inc = wl->inc[p];
    uint32_t len = (uint32_t)rnd_range(wl, cfg->min_payload, cfg->max_payload);
    uint64_t seq = syn_checker_next_seq(wl->chk, inc);
    struct msgr_msg *m =
        seq ? msgr_msg_new(SYN_MSG_REQ, sizeof(struct syn_hdr), 0, len) : NULL;
    if (!m) {
        syn_checker_unsend(wl->chk, inc, seq);
        return;
    }
    struct syn_hdr h;
    memset(&h, 0, sizeof(h));
    h.magic = SYN_MAGIC;
    h.leg = SYN_LEG_REQ;
    h.client = (uint32_t)client_of(wl, p)->idx;
    h.server = (uint32_t)server_of(wl, p)->idx;
    h.inc = inc;
    h.len = len;
    h.seq = seq;
    if (len)
        fill_payload(m->data.data, len, inc, seq);
    h.sum = len ? syn_fnv1a(m->data.data, len) : 0;
    h.sent_ns = now_ns(wl);
    memcpy(m->front.data, &h, sizeof(h));
    m->hdr.tid = seq;
    if (msgr_conn_send_message(wl->conn[p], m) != 0) {
        /* the connection is closed: the message never left */
        msgr_msg_unref(m);
        syn_checker_unsend(wl->chk, inc, seq);
        syn_checker_session_reset(wl->chk, inc, 1);
        wl->out->send_fail++;
        return;
    }
    wl->out->ops_send++;
}

static void
op_sleep(struct syn_wl *wl)
{
    msgr_time_ns max = wl->cfg->sleep_max_ns ? wl->cfg->sleep_max_ns
                                             : MSGR_NS_PER_MS;
    pass(wl, rnd_range(wl, 0, max));
    wl->out->ops_sleep++;
}

static void
one_op(struct syn_wl *wl)
{
    const struct syn_config *cfg = wl->cfg;
    uint64_t r = rnd_below(wl, 100);
    if (r < cfg->pct_new)
        op_new(wl);
    else if (r < cfg->pct_new + cfg->pct_drop)
        op_drop(wl);
    else if (r < cfg->pct_new + cfg->pct_drop + cfg->pct_send)
        op_send(wl);
    else
        op_sleep(wl);
}

static int
all_back(void *arg)
{
    struct syn_wl *wl = arg;
    return syn_checker_in_flight(wl->chk) == 0;
}

static int
policy_is_server(enum msgr_policy_kind k)
{
    struct msgr_policy p = msgr_policy_make(k, 0);
    return p.server;
}

static int
policy_is_lossless(enum msgr_policy_kind k)
{
    struct msgr_policy p = msgr_policy_make(k, 0);
    return !p.lossy;
}

static void
teardown(struct syn_wl *wl)
{
    for (int p = 0; p < wl->npairs; p++)
        if (wl->conn[p])
            forget_pair(wl, p);
    for (int i = 0; i < wl->nnodes; i++)
        if (wl->nodes[i].m)
            msgr_shutdown(wl->nodes[i].m);
    for (int i = 0; i < wl->nnodes; i++)
        if (wl->nodes[i].m)
            msgr_wait(wl->nodes[i].m);
    for (int i = 0; i < wl->nnodes; i++)
        if (wl->nodes[i].m)
            msgr_destroy(wl->nodes[i].m);
    memset(&wl->out->fault, 0, sizeof(wl->out->fault));
    for (int i = 0; i < wl->nstacks; i++) {
        struct msgr_fault_stats fs;
        msgr_fault_get_stats(wl->stacks[i], &fs);
        wl->out->fault.socket_failures += fs.socket_failures;
        wl->out->fault.delayed_posts += fs.delayed_posts;
        wl->out->fault.io_calls += fs.io_calls;
        wl->out->fault.resets += fs.resets;
        wl->out->fault.congestion_eagains += fs.congestion_eagains;
        wl->out->fault.delayed_bytes += fs.delayed_bytes;
        msgr_stack_unref(wl->stacks[i]);
    }
#if SYN_HAVE_SIM
    if (wl->w) {
        wl->out->fingerprint = sim_fingerprint(wl->w);
        sim_world_free(wl->w);
    }
#endif
    free(wl->conn);
    free(wl->inc);
}

int
syn_run(const struct syn_config *cfg, struct syn_result *out)
{
    if (cfg->nservers <= 0 || cfg->nclients <= 0 ||
        cfg->nservers + cfg->nclients > SYN_MAX_NODES ||
        cfg->pct_new + cfg->pct_drop + cfg->pct_send > 100 ||
        cfg->min_payload > cfg->max_payload || cfg->max_in_flight <= 0)
        return -EINVAL;
#if !SYN_HAVE_SIM
    if (cfg->use_sim)
        return -ENOTSUP;
#endif
    struct syn_wl *wl = calloc(1, sizeof(*wl));
    if (!wl)
        return -ENOMEM;
    memset(out, 0, sizeof(*out));
    wl->cfg = cfg;
    wl->out = out;
    wl->npairs = cfg->nservers * cfg->nclients;
    wl->conn = calloc((size_t)wl->npairs, sizeof(*wl->conn));
    wl->inc = calloc((size_t)wl->npairs, sizeof(*wl->inc));
    wl->chk = syn_checker_new();
    wl->peer_mode = !policy_is_server(cfg->server_policy) &&
                    !policy_is_server(cfg->client_policy);
    wl->lossless = policy_is_lossless(cfg->client_policy);
    wl->prng = cfg->seed;
    wl->sim = cfg->use_sim;
    int err = 0;
    if (!wl->conn || !wl->inc || !wl->chk) {
        err = -ENOMEM;
        goto done;
    }
#if SYN_HAVE_SIM
    if (cfg->use_sim) {
        wl->w = sim_world_new(cfg->seed);
        if (!wl->w) {
            err = -ENOMEM;
            goto done;
        }
        sim_world_rng(wl->w, SIM_STREAM_WORKLOAD, 0, &wl->srng);
        struct sim_link_params lp = {.latency_ns = 100 * MSGR_NS_PER_US,
                                     .jitter_ns = 50 * MSGR_NS_PER_US};
        sim_link_default(wl->w, &lp);
    }
#endif
    for (int i = 0; i < cfg->nservers + cfg->nclients && !err; i++) {
        int srv = i < cfg->nservers;
        err = node_new(wl, i, srv, srv ? i : i - cfg->nservers);
    }
    if (err)
        goto done;
    uint64_t t0 = now_ns(wl);
    /* time between ops: the messengers work meanwhile (on posix too, or
     * the ops outrun them and drops excuse most messages) */
    msgr_time_ns gap = cfg->op_gap_ns ? cfg->op_gap_ns
                       : wl->sim  ? 50 * MSGR_NS_PER_US
                                  : 500 * MSGR_NS_PER_US;
    for (int i = 0; i < cfg->initial_conns; i++)
        op_new(wl);
    for (int i = 0; i < cfg->ops; i++) {
        one_op(wl);
        pass(wl, gap);
    }
    /* every lossless message comes back (lossy ones too, unless lost) */
    wait_for(wl, all_back, wl,
             cfg->drain_timeout_ns ? cfg->drain_timeout_ns
                                   : 120 * MSGR_NS_PER_S);
    out->drained = syn_checker_lossless_in_flight(wl->chk) == 0;
    syn_checker_finish(wl->chk, now_ns(wl));
    out->elapsed_ns = now_ns(wl) - t0;
done:
    teardown(wl);
    if (wl->chk) {
        syn_checker_stats(wl->chk, &out->chk);
        syn_checker_violation(wl->chk, 0, &out->first);
        if (out->chk.violations || cfg->verbose)
            syn_checker_print(wl->chk, stderr);
        syn_checker_free(wl->chk);
    }
    out->echo_fail = atomic_load(&wl->echo_fail);
    out->msgr_faults = atomic_load(&wl->msgr_faults);
    for (int i = 0; i < 2; i++) {
        out->upcall_reset[i] = atomic_load(&wl->up_reset[i]);
        out->upcall_remote_reset[i] = atomic_load(&wl->up_remote_reset[i]);
    }
    out->upcall_connect = atomic_load(&wl->up_connect);
    out->upcall_accept = atomic_load(&wl->up_accept);
    free(wl);
    return err;
}

void
syn_result_print(const struct syn_config *cfg, const struct syn_result *r,
                 FILE *f)
{
    fprintf(f,
            "%s seed %llu (%s, %d srv/%d cli, %s/%s): ops new %llu drop "
            "%llu send %llu sleep %llu; sent %llu, verified %llu req %llu "
            "echo, excused %llu, %u incarnations; violations %llu%s\n",
            cfg->name, (unsigned long long)cfg->seed,
            cfg->use_sim ? "sim" : "posix", cfg->nservers, cfg->nclients,
            msgr_policy_name(cfg->server_policy),
            msgr_policy_name(cfg->client_policy),
            (unsigned long long)r->ops_new, (unsigned long long)r->ops_drop,
            (unsigned long long)r->ops_send, (unsigned long long)r->ops_sleep,
            (unsigned long long)r->chk.sent,
            (unsigned long long)r->chk.verified[SYN_LEG_REQ],
            (unsigned long long)r->chk.verified[SYN_LEG_ECHO],
            (unsigned long long)r->chk.excused, r->chk.incarnations,
            (unsigned long long)r->chk.violations,
            r->drained ? "" : ", NOT DRAINED");
    fprintf(f,
            "  injected socket failures %llu, delayed posts %llu; messenger "
            "faults %llu; upcalls connect %llu accept %llu reset %llu/%llu "
            "remote_reset %llu/%llu (servers/clients); send fails %llu, "
            "echo fails %llu, closed "
            "%llu; %.3f s %s\n",
            (unsigned long long)r->fault.socket_failures,
            (unsigned long long)r->fault.delayed_posts,
            (unsigned long long)r->msgr_faults,
            (unsigned long long)r->upcall_connect,
            (unsigned long long)r->upcall_accept,
            (unsigned long long)r->upcall_reset[0],
            (unsigned long long)r->upcall_reset[1],
            (unsigned long long)r->upcall_remote_reset[0],
            (unsigned long long)r->upcall_remote_reset[1],
            (unsigned long long)r->send_fail,
            (unsigned long long)r->echo_fail,
            (unsigned long long)r->closed_conns, (double)r->elapsed_ns / 1e9,
            cfg->use_sim ? "virtual" : "wall");
}
