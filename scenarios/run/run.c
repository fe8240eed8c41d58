/*
 * The scenario runner on the simulated stack: builds the world from a
 * plan, then alternates between letting the simulator run and running the
 * plan's items at their virtual times. Items run outside simulator events
 * (the scheduler is not re-entrant, and shutdown drains it), so a trigger
 * fired inside a messenger callback only queues its action; the loop stops
 * the simulator at that moment and runs it.
 */
#include "run_internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RN_CHECK_NS (10 * RN_NS_MS) /* quiescence is checked this often */
#define RN_BASE_PORT 6800


static void *
xcalloc(size_t n, size_t sz)
{
    void *p = calloc(n ? n : 1, sz);
    if (!p) {
        fprintf(stderr, "msgrsim: out of memory\n");
        abort();
    }
    return p;
}

void
rn_internal(struct rn *r, const char *fmt, ...)
{
    if (r->internal_error)
        return;
    r->internal_error = 1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->internal_what, sizeof(r->internal_what), fmt, ap);
    va_end(ap);
}

static size_t
pair_slot(const uint64_t *keys, size_t cap, uint64_t key)
{
    uint64_t h = key * 0x9e3779b97f4a7c15ull;
    size_t i = (size_t)(h >> 20) & (cap - 1);
    while (keys[i] && keys[i] != key)
        i = (i + 1) & (cap - 1);
    return i;
}

struct rn_pair *
rn_pair_find(const struct rn *r, uint32_t a, uint32_t b)
{
    if (!r->pair_cap)
        return NULL;
    uint64_t key = ((uint64_t)a << 32 | b) + 1;
    size_t i = pair_slot(r->pair_keys, r->pair_cap, key);
    return r->pair_keys[i] ? r->pair_vals[i] : NULL;
}

struct rn_pair *
rn_pair(struct rn *r, uint32_t a, uint32_t b)
{
    struct rn_pair *pr = rn_pair_find(r, a, b);
    if (pr)
        return pr;
    if (2 * (r->pair_len + 1) > r->pair_cap) {
        size_t ncap = r->pair_cap ? 2 * r->pair_cap : 64;
        uint64_t *nk = xcalloc(ncap, sizeof(*nk));
        struct rn_pair **nv = xcalloc(ncap, sizeof(*nv));
        for (size_t i = 0; i < r->pair_cap; i++)
            if (r->pair_keys[i]) {
                size_t j = pair_slot(nk, ncap, r->pair_keys[i]);
                nk[j] = r->pair_keys[i];
                nv[j] = r->pair_vals[i];
            }
        free(r->pair_keys);
        free(r->pair_vals);
        r->pair_keys = nk;
        r->pair_vals = nv;
        r->pair_cap = ncap;
    }
    uint64_t key = ((uint64_t)a << 32 | b) + 1;
    size_t i = pair_slot(r->pair_keys, r->pair_cap, key);
    r->pair_keys[i] = key;
    r->pair_vals[i] = pr = xcalloc(1, sizeof(*pr));
    r->pair_len++;
    return pr;
}

/* ------------------------------------------------------------- agenda */

static int
item_before(const struct rn_item *x, const struct rn_item *y)
{
    return x->t < y->t || (x->t == y->t && x->seq < y->seq);
}

void
rn_push(struct rn *r, uint64_t t, enum rn_item_kind kind, uint32_t idx,
        const struct scn_action *act, uint32_t line)
{
    if (r->nagenda == r->capagenda) {
        r->capagenda = r->capagenda ? r->capagenda * 2 : 64;
        r->agenda = realloc(r->agenda, r->capagenda * sizeof(*r->agenda));
        if (!r->agenda)
            abort();
    }
    struct rn_item it = {.t = t, .seq = r->next_seq++, .kind = kind,
                         .idx = idx, .act = act, .line = line};
    uint32_t i = r->nagenda++;
    while (i > 0) {
        uint32_t parent = (i - 1) / 2;
        if (!item_before(&it, &r->agenda[parent]))
            break;
        r->agenda[i] = r->agenda[parent];
        i = parent;
    }
    r->agenda[i] = it;
}

static struct rn_item
pop_item(struct rn *r)
{
    struct rn_item top = r->agenda[0];
    struct rn_item last = r->agenda[--r->nagenda];
    uint32_t i = 0;
    for (;;) {
        uint32_t l = 2 * i + 1, s = i;
        const struct rn_item *best = &last;
        if (l < r->nagenda && item_before(&r->agenda[l], best)) {
            s = l;
            best = &r->agenda[l];
        }
        if (l + 1 < r->nagenda && item_before(&r->agenda[l + 1], best))
            s = l + 1;
        if (s == i)
            break;
        r->agenda[i] = r->agenda[s];
        i = s;
    }
    if (r->nagenda)
        r->agenda[i] = last;
    return top;
}

/* ------------------------------------------------------------- nodes */

static uint32_t
auto_ipv4(uint32_t k)
{
    /* 10.0.x.y with y in 1..200: never .0 or .255 */
    return 0x0a000000u | ((k / 200u) << 8) | (k % 200u + 1u);
}

uint32_t
rn_addr_ipv4(const struct msgr_addr *a)
{
    return (uint32_t)a->ip[0] << 24 | (uint32_t)a->ip[1] << 16 |
           (uint32_t)a->ip[2] << 8 | a->ip[3];
}

/* Hosts take the IP of a declared `addr`, the others 10.0.x.y in order,
 * skipping what a declaration took. */
static void
assign_ips(struct rn *r)
{
    for (uint32_t i = 0; i < r->n; i++) {
        struct msgr_addr a;
        if (r->nodes[i].decl->addr &&
            msgr_addr_parse(r->nodes[i].decl->addr, &a) == 0 &&
            a.family == MSGR_AF_INET)
            r->nodes[i].ipv4 = rn_addr_ipv4(&a);
    }
    uint32_t k = 0;
    for (uint32_t i = 0; i < r->n; i++) {
        if (r->nodes[i].ipv4)
            continue;
        for (;;) {
            uint32_t ip = auto_ipv4(k++);
            bool used = false;
            for (uint32_t j = 0; j < r->n; j++)
                used |= r->nodes[j].ipv4 == ip;
            if (!used) {
                r->nodes[i].ipv4 = ip;
                break;
            }
        }
    }
}

/* Which node an address is: by IP on the sim (one IP per host); on posix
 * every node is 127.0.0.1, so by IP and any port the node listened on. */
int
rn_node_of_addr(struct rn *r, const struct msgr_addrvec *v)
{
    for (uint32_t i = 0; i < v->n; i++) {
        const struct msgr_addr *a = &v->v[i];
        if (a->family != MSGR_AF_INET)
            continue;
        uint32_t ip = rn_addr_ipv4(a);
        for (uint32_t k = 0; k < r->n; k++) {
            if (r->nodes[k].ipv4 != ip)
                continue;
            if (!r->threaded)
                return (int)k;
            for (uint32_t j = 0; j < r->nodes[k].nports; j++)
                if (r->nodes[k].ports[j] == a->port)
                    return (int)k;
        }
    }
    return -1;
}

/* Remembers the port node nd listens on now (posix tells nodes apart by
 * port; connections to an old port still belong to the node). */
void
rn_node_listened(struct rn *r, struct rn_node *nd)
{
    (void)r;
    if (!nd->addrs.n)
        return;
    uint16_t port = nd->addrs.v[0].port;
    for (uint32_t j = 0; j < nd->nports; j++)
        if (nd->ports[j] == port)
            return;
    uint32_t cap = sizeof(nd->ports) / sizeof(nd->ports[0]);
    if (nd->nports == cap) {
        memmove(nd->ports, nd->ports + 1, (cap - 1) * sizeof(nd->ports[0]));
        nd->nports--;
    }
    nd->ports[nd->nports++] = port;
}

static uint64_t
now_of(void *arg)
{
    return rn_now(arg);
}

static int
map_state(const char *to)
{
    if (!strcmp(to, "READY"))
        return SCN_STATE_OPEN;
    if (!strcmp(to, "STANDBY"))
        return SCN_STATE_STANDBY;
    if (!strcmp(to, "CLOSED"))
        return SCN_STATE_CLOSED;
    return SCN_STATE_CONNECTING;
}

static void fire_triggers_state(struct rn *r, struct rn_node *nd,
                                struct rn_conn *rc);
static void fire_triggers_dispatch(struct rn *r, struct rn_node *nd, int ev,
                                   int peer);

/* The record of a connection, created the first time the tracer sees it. */
static struct rn_conn *
conn_rec(struct rn_node *nd, struct msgr_conn *c)
{
    if (!c || msgr_conn_is_loopback(c))
        return NULL;
    struct rn_conn *rc = msgr_conn_get_priv(c);
    if (rc)
        return rc;
    rc = xcalloc(1, sizeof(*rc));
    rc->node = nd;
    rc->c = c;
    msgr_conn_ref(c);
    rc->peer = -1;
    rc->state = SCN_STATE_CONNECTING;
    if (nd->nconns == nd->capconns) {
        nd->capconns = nd->capconns ? nd->capconns * 2 : 8;
        nd->conns = realloc(nd->conns, nd->capconns * sizeof(*nd->conns));
        if (!nd->conns)
            abort();
    }
    rc->order = nd->nconns;
    nd->conns[nd->nconns++] = rc;
    msgr_conn_set_priv(c, rc);
    return rc;
}

/* Learns which node the connection goes to, as soon as it can tell. */
static void
conn_peer(struct rn *r, struct rn_conn *rc)
{
    if (rc->peer >= 0)
        return;
    struct msgr_addrvec v;
    msgr_conn_peer_addrs(rc->c, &v);
    int k = rn_node_of_addr(r, &v);
    if (k < 0) {
        msgr_conn_peer_ident_addrs(rc->c, &v);
        k = rn_node_of_addr(r, &v);
    }
    if (k < 0 || (uint32_t)k == rc->node->idx)
        return;
    rc->peer = k;
    struct rn_pair *pr = rn_pair(r, rc->node->idx, (uint32_t)k);
    if (!pr->cur || pr->cur->closed || rc->order > pr->cur->order)
        pr->cur = rc;
}

static void
tr_state(void *arg, struct msgr *m, struct msgr_conn *c, const char *from,
         const char *to, const char *cause)
{
    struct rn_node *nd = arg;
    struct rn *r = nd->r;
    rn_lock(r);
    if (nd->fp.state)
        nd->fp.state(nd->fp.arg, m, c, from, to, cause);
    struct rn_conn *rc = conn_rec(nd, c);
    if (rc) {
        int s = map_state(to);
        conn_peer(r, rc);
        int was = rc->state;
        rc->state = s;
        if (s == SCN_STATE_OPEN) {
            rc->ever_ready = true;
            if (rc->peer >= 0) {
                struct rn_pair *pr = rn_pair(r, nd->idx, (uint32_t)rc->peer);
                pr->ready_entries++;
                pr->cur = rc;
            }
        }
        if (s == SCN_STATE_CLOSED && !rc->closed) {
            rc->closed = true;
            rn_conn_closed(r, rc);
        }
        if (s != was)
            fire_triggers_state(r, nd, rc);
    }
    if (nd->has_chain && nd->chain.state)
        nd->chain.state(nd->chain.arg, m, c, from, to, cause);
    rn_unlock(r);
}

static void
tr_frame(void *arg, struct msgr *m, struct msgr_conn *c, int dir,
         unsigned tag, uint64_t bytes)
{
    struct rn_node *nd = arg;
    rn_lock(nd->r);
    if (nd->fp.frame)
        nd->fp.frame(nd->fp.arg, m, c, dir, tag, bytes);
    struct rn_conn *rc = conn_rec(nd, c);
    if (rc) {
        conn_peer(nd->r, rc);
        if (rc->peer >= 0 && tag < RN_NTAGS)
            rn_pair(nd->r, nd->idx, (uint32_t)rc->peer)->frames[dir ? 1 : 0]
                                                              [tag]++;
    }
    if (nd->has_chain && nd->chain.frame)
        nd->chain.frame(nd->chain.arg, m, c, dir, tag, bytes);
    rn_unlock(nd->r);
}

static void
tr_msg(void *arg, struct msgr *m, struct msgr_conn *c,
       const struct msgr_msg *msg, int fate)
{
    struct rn_node *nd = arg;
    rn_lock(nd->r);
    if (nd->fp.msg)
        nd->fp.msg(nd->fp.arg, m, c, msg, fate);
    struct rn_conn *rc = conn_rec(nd, c);
    if (rc)
        conn_peer(nd->r, rc);
    rn_on_msg_fate(nd->r, nd, rc, msg, fate);
    if (nd->has_chain && nd->chain.msg)
        nd->chain.msg(nd->chain.arg, m, c, msg, fate);
    rn_unlock(nd->r);
}

static void
tr_fault(void *arg, struct msgr *m, struct msgr_conn *c, int err,
         const char *what)
{
    struct rn_node *nd = arg;
    rn_lock(nd->r);
    if (nd->fp.fault)
        nd->fp.fault(nd->fp.arg, m, c, err, what);
    if (nd->has_chain && nd->chain.fault)
        nd->chain.fault(nd->chain.arg, m, c, err, what);
    rn_unlock(nd->r);
}

static void
dispatch_event(struct rn_node *nd, struct msgr_conn *c, int ev)
{
    struct rn *r = nd->r;
    rn_lock(r);
    struct rn_conn *rc = conn_rec(nd, c);
    int peer = -1;
    if (rc) {
        conn_peer(r, rc);
        peer = rc->peer;
        if (ev == SCN_EV_CONNECT || ev == SCN_EV_ACCEPT)
            rc->announced = true;
    }
    nd->ev_total[ev]++;
    if (peer >= 0) {
        struct rn_pair *pr = rn_pair(r, nd->idx, (uint32_t)peer);
        pr->ev[ev]++;
        if (ev == SCN_EV_RESET || ev == SCN_EV_REMOTE_RESET)
            pr->resets++;
    }
    fire_triggers_dispatch(r, nd, ev, peer);
    rn_unlock(r);
}

static int
d_dispatch(void *arg, struct msgr_msg *m)
{
    struct rn_node *nd = arg;
    rn_lock(nd->r);
    rn_on_delivered(nd->r, nd, m);
    rn_unlock(nd->r);
    msgr_msg_unref(m);
    return 1;
}

static void
d_connect(void *arg, struct msgr_conn *c)
{
    dispatch_event(arg, c, SCN_EV_CONNECT);
}

static void
d_accept(void *arg, struct msgr_conn *c)
{
    dispatch_event(arg, c, SCN_EV_ACCEPT);
}

static int
d_reset(void *arg, struct msgr_conn *c)
{
    dispatch_event(arg, c, SCN_EV_RESET);
    return 1;
}

static void
d_remote_reset(void *arg, struct msgr_conn *c)
{
    dispatch_event(arg, c, SCN_EV_REMOTE_RESET);
}

static int
d_refused(void *arg, struct msgr_conn *c)
{
    dispatch_event(arg, c, SCN_EV_REFUSED);
    return 1;
}

/* The value of `config KEY` for node i (the last statement wins). */
static bool
config_of(struct rn *r, uint32_t i, enum scn_config_key key, uint64_t *out)
{
    bool found = false;
    for (uint32_t k = 0; k < r->p->n_configs; k++) {
        const struct scn_config *c = &r->p->configs[k];
        if (c->key != key)
            continue;
        for (uint32_t j = 0; j < c->nodes.n; j++)
            if (c->nodes.idx[j] == i) {
                *out = c->value;
                found = true;
            }
    }
    return found;
}

static void
node_free_conns(struct rn_node *nd)
{
    for (uint32_t i = 0; i < nd->nconns; i++) {
        struct rn_conn *rc = nd->conns[i];
        msgr_conn_set_priv(rc->c, NULL);
        msgr_conn_unref(rc->c);
        free(rc->pending);
        free(rc);
    }
    free(nd->conns);
    nd->conns = NULL;
    nd->nconns = nd->capconns = 0;
}

static int node_start_(struct rn *r, uint32_t i);

/* Creates, binds and starts node i's messenger (a new incarnation);
 * on failure leaves nothing behind. */
static int
node_start(struct rn *r, uint32_t i)
{
    struct rn_node *nd = &r->nodes[i];
    int e = node_start_(r, i);
    if (e < 0) {
        struct msgr *m = nd->m;
        if (m) {
            RN_CALL(r, msgr_shutdown(m); msgr_wait(m));
            node_free_conns(nd);
            RN_CALL(r, msgr_destroy(m));
            nd->m = NULL;
        }
        struct msgr_stack *st = nd->st ? nd->st : nd->sim_st;
        if (st)
            RN_CALL(r, msgr_stack_unref(st));
        nd->st = nd->sim_st = NULL;
        nd->started = nd->up = false;
    }
    return e;
}

static int
node_start_(struct rn *r, uint32_t i)
{
    struct rn_node *nd = &r->nodes[i];
    const struct scn_plan *p = r->p;
    int err = 0;
    if (nd->started)
        return 0;
    if (nd->host_dead) {
        r->env->host_revive(r, nd);
        nd->host_dead = false;
    }
    uint32_t workers = nd->decl->workers ? nd->decl->workers : p->workers;
    uint64_t v = 0;
    err = r->env->node_stack(r, nd, workers);
    if (err < 0)
        return err;
    struct msgr_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.name.type = nd->decl->type;
    cfg.name.num = nd->decl->num >= 0 ? nd->decl->num : (int64_t)i;
    cfg.nonce = nd->nonce;
    cfg.stack = nd->st;
    if (config_of(r, i, SCN_CONFIG_INITIAL_BACKOFF, &v))
        cfg.initial_backoff_ns = v;
    if (config_of(r, i, SCN_CONFIG_MAX_BACKOFF, &v))
        cfg.max_backoff_ns = v;
    if (config_of(r, i, SCN_CONFIG_CONNECTION_IDLE_TIMEOUT, &v))
        cfg.idle_timeout_ns = v;
    if (config_of(r, i, SCN_CONFIG_CONNECTION_READY_TIMEOUT, &v))
        cfg.ready_timeout_ns = v;
    if (config_of(r, i, SCN_CONFIG_DISPATCH_THROTTLE_BYTES, &v))
        cfg.dispatch_throttle_bytes = v;
    if (config_of(r, i, SCN_CONFIG_KEEPALIVE_INTERVAL, &v))
        cfg.keepalive_interval_ns = v;
    cfg.bind_retry_delay_ns = 1 * RN_NS_MS;
    if (r->port_base) {
        /* posix: a range of our own, away from the conformance tests' */
        cfg.bind_port_min = (int)r->port_base;
        cfg.bind_port_max = (int)r->port_base + 999;
    }
    struct msgr *m = NULL;
    RN_CALL(r, m = msgr_create(&cfg, &err));
    nd->m = m;
    if (!nd->m) {
        rn_internal(r, "%s: msgr_create failed: %s", nd->decl->name,
                    msgr_strerror(err));
        return err;
    }
    rn_unlock(r);
    msgr_set_log(m, MSGR_LOG_ERR, NULL, NULL);
    uint64_t tb = 0, tm = 0;
    bool has_tb = config_of(r, i, SCN_CONFIG_THROTTLE_BYTES, &tb);
    bool has_tm = config_of(r, i, SCN_CONFIG_THROTTLE_MESSAGES, &tm);
    struct msgr_policy pol = msgr_policy_make(nd->decl->policy, 0);
    if (has_tb)
        pol.throttle_bytes = tb;
    if (has_tm)
        pol.throttle_msgs = tm;
    msgr_set_default_policy(m, &pol);
    for (uint32_t k = 0; k < p->n_policies; k++) {
        const struct scn_policy_override *po = &p->policies[k];
        bool mine = false;
        for (uint32_t j = 0; j < po->nodes.n; j++)
            mine |= po->nodes.idx[j] == i;
        if (!mine)
            continue;
        for (uint32_t t = 0; t < 32; t++)
            if (po->peer_types & (1u << t)) {
                struct msgr_policy pp = msgr_policy_make(po->policy, 0);
                if (has_tb)
                    pp.throttle_bytes = tb;
                if (has_tm)
                    pp.throttle_msgs = tm;
                msgr_set_policy(m, (uint8_t)t, &pp);
            }
    }
    rn_lock(r);
    /* tracers: fingerprint, then the runner's (chaining the observer's) */
    struct msgr_tracer mine = {.arg = nd,
                               .state = tr_state,
                               .frame = tr_frame,
                               .msg = tr_msg,
                               .fault = tr_fault};
    struct msgr_addr a;
    if (nd->has_bind) {
        a = nd->bind_addr;
    } else if (nd->decl->addr) {
        if (msgr_addr_parse(nd->decl->addr, &a) < 0) {
            rn_internal(r, "%s: bad address %s", nd->decl->name,
                        nd->decl->addr);
            return -EINVAL;
        }
    } else {
        r->env->node_addr(r, nd, &a);
    }
    if (r->threaded) {
        /* posix: only loopback, at the port this node had (a restart) or
         * a free one */
        struct msgr_addr lo;
        r->env->node_addr(r, nd, &lo);
        a.family = lo.family;
        memcpy(a.ip, lo.ip, sizeof(a.ip));
        a.port = lo.port;
    }
    /* the trace knows the node before its first event */
    if (r->o->observer && r->o->observer->node) {
        char buf[128];
        struct msgr_addr shown = a;
        shown.nonce = (uint32_t)nd->nonce;
        msgr_addr_format(&shown, buf, sizeof(buf));
        r->o->observer->node(r->o->observer->arg, i, nd->decl->name,
                             nd->decl->type,
                             msgr_policy_name(nd->decl->policy), buf,
                             nd->nonce, nd->incarnation);
    }
    memset(&nd->fp, 0, sizeof(nd->fp));
    r->env->fp_tracer(r, &nd->fp);
    nd->has_chain = false;
    if (r->o->observer && r->o->observer->tracer) {
        r->o->observer->tracer(r->o->observer->arg, i, now_of, r,
                               &nd->chain);
        nd->has_chain = true;
    }
    RN_CALL(r, msgr_set_tracer(m, &mine); rn_break_install(r, nd));
    RN_CALL(r, err = msgr_bind(m, &a));
    if (err < 0) {
        char buf[80];
        msgr_addr_format(&a, buf, sizeof(buf));
        rn_internal(r, "%s: bind to %s failed: %s (a node binds on its own "
                    "host's address)", nd->decl->name, buf,
                    msgr_strerror(err));
        return err;
    }
    if (nd->has_client_bind && !r->threaded)
        msgr_client_bind(m, &nd->client_bind_addr);
    struct msgr_dispatcher d = {.arg = nd,
                                .ms_dispatch = d_dispatch,
                                .ms_handle_connect = d_connect,
                                .ms_handle_accept = d_accept,
                                .ms_handle_reset = d_reset,
                                .ms_handle_remote_reset = d_remote_reset,
                                .ms_handle_refused = d_refused};
    struct msgr_addrvec got;
    RN_CALL(r, msgr_start(m); msgr_add_dispatcher(m, &d);
            msgr_get_myaddrs(m, &got));
    nd->addrs = got;
    rn_node_listened(r, nd);
    nd->started = nd->up = true;
    rn_blackhole_apply(r, nd);
    if (r->env == &rn_env_posix)
        rn_posix_refresh(r);
    return 0;
}

/* Tears node i's messenger down (after a kill: a dead process's). */
static void
node_stop(struct rn *r, uint32_t i)
{
    struct rn_node *nd = &r->nodes[i];
    if (!nd->started)
        return;
    /* what the messenger still holds is lost with it */
    for (uint32_t k = 0; k < nd->nconns; k++)
        if (!nd->conns[k]->closed) {
            nd->conns[k]->closed = true;
            nd->conns[k]->state = SCN_STATE_CLOSED;
            rn_conn_closed(r, nd->conns[k]);
        }
    struct msgr *m = nd->m;
    struct msgr_stack *st = nd->st;
    nd->up = false;
    RN_CALL(r, msgr_shutdown(m); msgr_wait(m));
    node_free_conns(nd); /* our references go before the messenger */
    RN_CALL(r, msgr_destroy(m));
    nd->m = NULL;
    for (uint32_t b = 0; b < r->n; b++) {
        struct rn_pair *pr = rn_pair_find(r, i, b);
        if (pr)
            pr->cur = NULL;
    }
    RN_CALL(r, msgr_stack_unref(st));
    nd->st = nd->sim_st = NULL;
    nd->started = nd->up = false;
}

/* Peers learn a node's new address (or incarnation) as a cluster map
 * would tell them: they mark the old one down. */
static void
tell_peers(struct rn *r, uint32_t i, const struct msgr_addrvec *old)
{
    for (uint32_t k = 0; k < r->n; k++) {
        if (k == i || !r->nodes[k].up)
            continue;
        RN_CALL(r, msgr_mark_down(r->nodes[k].m, old));
        struct rn_pair *pr = rn_pair_find(r, k, i);
        if (pr)
            pr->cur = NULL;
    }
}

/* ------------------------------------------------------------ actions */

static struct msgr_conn *
conn_to(struct rn *r, uint32_t a, uint32_t b)
{
    int err = 0;
    struct msgr_conn *c = NULL;
    struct msgr *m = r->nodes[a].m;
    struct msgr_addrvec to = r->nodes[b].addrs;
    RN_CALL(r, c = msgr_get_connection(m, r->nodes[b].decl->type, &to, &err));
    return c;
}

static void
add_flow(struct rn *r, const struct scn_action *a, uint32_t s, uint32_t d)
{
    if (r->nflows == r->capflows) {
        r->capflows = r->capflows ? r->capflows * 2 : 16;
        r->flows = realloc(r->flows, r->capflows * sizeof(*r->flows));
        if (!r->flows)
            abort();
    }
    struct rn_flow *f = &r->flows[r->nflows];
    f->src = s;
    f->dst = d;
    f->left = a->u.send.count ? a->u.send.count : 1;
    f->size = a->u.send.size_bytes;
    f->priority = a->u.send.priority;
    f->interval_ns = a->u.send.every_ns;
    if (!f->interval_ns && a->u.send.rate_mps)
        f->interval_ns = 1000ull * RN_NS_S / a->u.send.rate_mps;
    uint32_t fi = r->nflows++;
    if (!f->interval_ns) {
        while (f->left)
            rn_send_one(r, f);
        return;
    }
    rn_send_one(r, f);
    if (f->left)
        rn_push(r, rn_now(r) + f->interval_ns, RN_ITEM_FLOW, fi, NULL,
                a->loc.line);
}

static void
observe_action(struct rn *r, const struct scn_action *a)
{
    if (!r->o->observer || !r->o->observer->action)
        return;
    char buf[200];
    snprintf(buf, sizeof(buf), "%s %s%s%s", scn_action_name(a->kind),
             a->subject.text ? a->subject.text : "",
             a->peer.n ? " -> " : "", a->peer.n && a->peer.text
                                          ? a->peer.text
                                          : "");
    r->o->observer->action(r->o->observer->arg, rn_now(r), a->loc.line,
                           buf);
}

void
rn_restart_node(struct rn *r, uint32_t i, bool same_nonce)
{
    struct rn_node *nd = &r->nodes[i];
    struct msgr_addrvec old = nd->addrs;
    if (nd->started) {
        /* the old process dies abruptly: its peers see its sockets reset */
        if (!nd->host_dead) {
            r->env->host_kill(r, nd);
            nd->host_dead = true;
        }
        node_stop(r, i);
    }
    nd->incarnation++;
    if (!same_nonce)
        nd->nonce += 1;
    if (node_start(r, i) < 0)
        return;
    if (!same_nonce)
        tell_peers(r, i, &old);
}

void
rn_run_action(struct rn *r, const struct scn_action *a)
{
    observe_action(r, a);
    switch (a->kind) {
    case SCN_ACT_START:
        for (uint32_t k = 0; k < a->subject.n; k++)
            node_start(r, a->subject.idx[k]);
        break;
    case SCN_ACT_BIND:
    case SCN_ACT_CLIENT_BIND:
        for (uint32_t k = 0; k < a->subject.n; k++) {
            struct rn_node *nd = &r->nodes[a->subject.idx[k]];
            struct msgr_addr ad;
            if (msgr_addr_parse(a->u.bind.addr, &ad) < 0)
                continue;
            if (!nd->started) {
                /* before `start`: the address start binds / records */
                if (a->kind == SCN_ACT_BIND) {
                    nd->has_bind = true;
                    nd->bind_addr = ad;
                } else {
                    nd->has_client_bind = true;
                    nd->client_bind_addr = ad;
                }
                continue;
            }
            if (r->threaded)
                continue; /* posix: a bound messenger stays where it is */
            if (a->kind == SCN_ACT_BIND) {
                if (msgr_bind(nd->m, &ad) == 0)
                    msgr_get_myaddrs(nd->m, &nd->addrs);
            } else {
                msgr_client_bind(nd->m, &ad);
            }
        }
        break;
    case SCN_ACT_CONNECT:
    case SCN_ACT_KEEPALIVE:
    case SCN_ACT_MARK_DOWN:
        for (uint32_t k = 0; k < a->subject.n; k++)
            for (uint32_t j = 0; j < a->peer.n; j++) {
                uint32_t s = a->subject.idx[k], d = a->peer.idx[j];
                if (s == d || !r->nodes[s].up)
                    continue;
                if (a->kind == SCN_ACT_MARK_DOWN) {
                    struct msgr_addrvec to = r->nodes[d].addrs;
                    RN_CALL(r, msgr_mark_down(r->nodes[s].m, &to));
                    continue;
                }
                struct msgr_conn *c = conn_to(r, s, d);
                if (!c)
                    continue;
                bool ka = a->kind == SCN_ACT_KEEPALIVE;
                RN_CALL(r, if (ka) msgr_conn_send_keepalive(c);
                        msgr_conn_unref(c));
            }
        break;
    case SCN_ACT_SEND:
        for (uint32_t k = 0; k < a->subject.n; k++)
            for (uint32_t j = 0; j < a->peer.n; j++)
                if (a->subject.idx[k] != a->peer.idx[j])
                    add_flow(r, a, a->subject.idx[k], a->peer.idx[j]);
        break;
    case SCN_ACT_MARK_DOWN_ALL:
        for (uint32_t k = 0; k < a->subject.n; k++)
            if (r->nodes[a->subject.idx[k]].up)
                RN_CALL(r, msgr_mark_down_all(r->nodes[a->subject.idx[k]].m));
        break;
    case SCN_ACT_SHUTDOWN:
        for (uint32_t k = 0; k < a->subject.n; k++)
            node_stop(r, a->subject.idx[k]);
        break;
    case SCN_ACT_RESTART:
        for (uint32_t k = 0; k < a->subject.n; k++)
            rn_restart_node(r, a->subject.idx[k], a->u.restart.same_nonce);
        break;
    case SCN_ACT_REBIND:
        for (uint32_t k = 0; k < a->subject.n; k++) {
            uint32_t i = a->subject.idx[k];
            struct rn_node *nd = &r->nodes[i];
            if (!nd->up)
                continue;
            struct msgr_addrvec old = nd->addrs;
            int avoid[MSGR_ADDRVEC_MAX];
            int navoid = 0;
            for (uint32_t x = 0; x < old.n; x++)
                avoid[navoid++] = old.v[x].port;
            int e = 0;
            struct msgr_addrvec got;
            RN_CALL(r, e = msgr_rebind(nd->m, avoid, navoid);
                    msgr_get_myaddrs(nd->m, &got));
            if (e < 0) {
                rn_internal(r, "%s: rebind failed: %s", nd->decl->name,
                            msgr_strerror(e));
                continue;
            }
            nd->addrs = got;
            rn_node_listened(r, nd);
            nd->nonce = nd->addrs.n ? nd->addrs.v[0].nonce : nd->nonce;
            if (r->env == &rn_env_posix)
                rn_posix_refresh(r);
            tell_peers(r, i, &old);
        }
        break;
    case SCN_ACT_KILL:
    case SCN_ACT_CRASH:
        for (uint32_t k = 0; k < a->subject.n; k++) {
            struct rn_node *nd = &r->nodes[a->subject.idx[k]];
            if (nd->host_dead)
                continue;
            r->faults_started++;
            if (a->kind == SCN_ACT_KILL)
                r->env->host_kill(r, nd);
            else
                r->env->host_crash(r, nd);
            nd->host_dead = true;
            nd->up = false;
            /* posix: a dead process's messenger goes at once (its port is
             * closed: connects are refused, as to a dead daemon) */
            if (a->kind == SCN_ACT_KILL && r->threaded)
                node_stop(r, a->subject.idx[k]);
            /* `for T`: the host comes back after T and the node restarts
             * as a new incarnation (a reboot), its peers told */
            if (a->for_ns)
                rn_push(r, rn_now(r) + a->for_ns, RN_ITEM_RESTART,
                        a->subject.idx[k], NULL, a->loc.line);
            if (r->o->observer && r->o->observer->fault)
                r->o->observer->fault(r->o->observer->arg, rn_now(r),
                                      r->faults_started,
                                      scn_action_name(a->kind),
                                      nd->decl->name, "");
        }
        break;
    case SCN_ACT_DROP:
    case SCN_ACT_BLACKHOLE:
    case SCN_ACT_DELAY:
    case SCN_ACT_BANDWIDTH:
    case SCN_ACT_PARTITION:
    case SCN_ACT_RESET:
    case SCN_ACT_CORRUPT:
    case SCN_ACT_PAUSE:
        rn_fault_action(r, a);
        break;
    case SCN_ACT_HEAL:
        rn_heal(r, a);
        break;
    case SCN_ACT_CHAOS: {
        if (r->nchaos == r->capchaos) {
            r->capchaos = r->capchaos ? r->capchaos * 2 : 4;
            r->chaos = realloc(r->chaos, r->capchaos * sizeof(*r->chaos));
            if (!r->chaos)
                abort();
        }
        struct rn_chaos *ch = &r->chaos[r->nchaos];
        ch->act = a;
        sim_world_rng(r->w, SIM_STREAM_FAULT, 1000u + r->nchaos, &ch->rng);
        uint64_t at = a->u.chaos.from_ns > rn_now(r) ? a->u.chaos.from_ns
                                                         : rn_now(r);
        rn_push(r, at, RN_ITEM_CHAOS, r->nchaos, NULL, a->loc.line);
        r->nchaos++;
        break;
    }
    case SCN_ACT_BREAK:
    case SCN_ACT_RELEASE:
        /* protocol breakpoints by frame tag: see run_fault.c */
        rn_fault_action(r, a);
        break;
    case SCN_ACT_COUNT_:
        break;
    }
}

/* ------------------------------------------------------------ triggers */

static void
fire(struct rn *r, uint32_t ti)
{
    const struct scn_trigger *t = &r->p->triggers[ti];
    if (!t->every && r->trig_fired[ti])
        return;
    r->trig_fired[ti] = true;
    /* runs at this time, outside the messenger's callback (on posix: on
     * the main thread, woken now) */
    rn_push(r, rn_now(r), RN_ITEM_TRIGGER, ti, &t->act, t->loc.line);
    if (r->env->wake)
        r->env->wake(r);
}

static bool
in_set(const struct scn_set *s, uint32_t i)
{
    for (uint32_t k = 0; k < s->n; k++)
        if (s->idx[k] == i)
            return true;
    return false;
}

static void
fire_triggers_dispatch(struct rn *r, struct rn_node *nd, int ev, int peer)
{
    for (uint32_t i = 0; i < r->p->n_triggers; i++) {
        const struct scn_trigger *t = &r->p->triggers[i];
        if (t->kind != SCN_TRIG_DISPATCH || (int)t->event != ev ||
            !in_set(&t->node, nd->idx))
            continue;
        if (t->peer.n && (peer < 0 || !in_set(&t->peer, (uint32_t)peer)))
            continue;
        fire(r, i);
    }
}

static void
fire_triggers_state(struct rn *r, struct rn_node *nd, struct rn_conn *rc)
{
    for (uint32_t i = 0; i < r->p->n_triggers; i++) {
        const struct scn_trigger *t = &r->p->triggers[i];
        if (t->kind != SCN_TRIG_STATE || (int)t->state != rc->state ||
            !in_set(&t->node, nd->idx))
            continue;
        if (rc->peer < 0 || !in_set(&t->peer, (uint32_t)rc->peer))
            continue;
        fire(r, i);
    }
}

void
rn_fire_delivered(struct rn *r, uint32_t node, uint32_t peer, uint64_t count)
{
    for (uint32_t i = 0; i < r->p->n_triggers; i++) {
        const struct scn_trigger *t = &r->p->triggers[i];
        if (t->kind != SCN_TRIG_DELIVERED || t->count != count ||
            !in_set(&t->node, node) || !in_set(&t->peer, peer))
            continue;
        fire(r, i);
    }
}

void
rn_fire_breakpoint(struct rn *r, uint32_t node, int step)
{
    for (uint32_t i = 0; i < r->p->n_triggers; i++) {
        const struct scn_trigger *t = &r->p->triggers[i];
        if (t->kind == SCN_TRIG_BREAKPOINT && (int)t->step == step &&
            in_set(&t->node, node))
            fire(r, i);
    }
}

/* ---------------------------------------------------------------- loop */

/* Stops the simulator (or the posix wait) as soon as a trigger queued
 * something for now. */
int
rn_due_now(void *arg)
{
    struct rn *r = arg;
    return r->nagenda && r->agenda[0].t <= rn_now(r);
}

static void
run_item(struct rn *r, const struct rn_item *it)
{
    const struct scn_plan *p = r->p;
    switch (it->kind) {
    case RN_ITEM_TIMELINE: {
        const struct scn_timed *tm = &p->timeline[it->idx];
        rn_run_action(r, &tm->act);
        uint64_t next = it->t + tm->period_ns;
        if (tm->period_ns && next <= tm->until_ns && next < r->end_ns)
            rn_push(r, next, RN_ITEM_TIMELINE, it->idx, NULL, it->line);
        else
            r->timeline_left--;
        break;
    }
    case RN_ITEM_FLOW: {
        struct rn_flow *f = &r->flows[it->idx];
        rn_send_one(r, f);
        if (f->left)
            rn_push(r, it->t + f->interval_ns, RN_ITEM_FLOW, it->idx, NULL,
                    it->line);
        break;
    }
    case RN_ITEM_CHAOS:
        rn_chaos_tick(r, it->idx);
        break;
    case RN_ITEM_EXPECT:
        rn_check_expect(r, it->idx);
        break;
    case RN_ITEM_TRIGGER:
        rn_run_action(r, it->act);
        break;
    case RN_ITEM_RESTART:
        rn_restart_node(r, it->idx, false);
        break;
    }
}

static bool
quiescent(struct rn *r)
{
    if (r->timeline_left)
        return false;
    for (uint32_t i = 0; i < r->nagenda; i++)
        if (r->agenda[i].kind != RN_ITEM_EXPECT)
            return false;
    if (rn_faults_active(r) || !rn_all_resolved(r))
        return false;
    /* nothing moved on the network since the last look: no frame in
     * flight (acks and keepalives included) */
    uint64_t moved = r->env->net_progress(r);
    bool still = moved == r->last_bytes;
    r->last_bytes = moved;
    return still;
}

static uint64_t
wall_ms(void)
{
    /* progress display only: never feeds the run */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void
progress(struct rn *r, bool last)
{
    if (!r->o->progress)
        return;
    uint64_t w = wall_ms();
    if (!last && w - r->progress_last_wall < 200)
        return;
    r->progress_last_wall = w;
    uint64_t t = rn_now(r);
    fprintf(stderr,
            "\r  t=%" PRIu64 ".%03" PRIu64 "s / %" PRIu64
            "s  messages %" PRIu64 " sent %" PRIu64 " delivered  faults %" PRIu64
            "   ",
            t / RN_NS_S, (t % RN_NS_S) / RN_NS_MS,
            r->end_ns / RN_NS_S, r->msgs_sent, r->msgs_delivered,
            r->faults_started);
    if (last)
        fputs("\r\033[K", stderr);
    fflush(stderr);
}

static void
setup_links(struct rn *r)
{
    const struct scn_plan *p = r->p;
    struct sim_link_params lp = {
        /* the plan holds the default latency unless `link default`
         * gave one (the parser sets the value, not has_latency) */
        .latency_ns = p->link_default.latency_ns,
        .jitter_ns = p->link_default.jitter_ns,
        .bandwidth_bps = p->link_default.bandwidth_bps,
        .loss_ppm = p->link_default.loss_ppm,
    };
    sim_link_default(r->w, &lp);
    for (uint32_t k = 0; k < p->n_links; k++) {
        const struct scn_link *l = &p->links[k];
        if (l->is_default)
            continue;
        for (uint32_t i = 0; i < l->a.n; i++)
            for (uint32_t j = 0; j < l->b.n; j++) {
                struct rn_node *a = &r->nodes[l->a.idx[i]];
                struct rn_node *b = &r->nodes[l->b.idx[j]];
                if (a == b)
                    continue;
                for (int dir = 0; dir < (l->both_ways ? 2 : 1); dir++) {
                    struct sim_host *x = dir ? b->host : a->host;
                    struct sim_host *y = dir ? a->host : b->host;
                    struct sim_link_params cur;
                    sim_link_get(r->w, x, y, &cur);
                    if (l->opts.has_latency)
                        cur.latency_ns = l->opts.latency_ns;
                    if (l->opts.has_jitter)
                        cur.jitter_ns = l->opts.jitter_ns;
                    if (l->opts.has_bandwidth)
                        cur.bandwidth_bps = l->opts.bandwidth_bps;
                    if (l->opts.has_loss)
                        cur.loss_ppm = l->opts.loss_ppm;
                    sim_link_set(r->w, x, y, &cur);
                }
            }
    }
}

static void
print_verdicts(struct rn *r, struct scn_run_result *res)
{
    const struct scn_plan *p = r->p;
    for (uint32_t i = 0; i < p->n_expects; i++) {
        struct rn_verdict *v = &r->verdicts[i];
        if (!v->checked)
            rn_check_expect(r, i);
        char text[200];
        rn_expect_text(r, p->expects[i].loc.line, text, sizeof(text));
        res->expects_total++;
        if (!v->held)
            res->expects_failed++;
        if (!r->o->quiet || !v->held)
            fprintf(r->out, "%s %s:%u: %s\n", v->held ? "  ok  " : "  FAIL",
                    p->path, p->expects[i].loc.line, text);
        if (!v->held || !r->o->quiet)
            if (v->evidence[0])
                fprintf(r->out, "         %s\n", v->evidence);
        if (r->o->observer && r->o->observer->expectation)
            r->o->observer->expectation(r->o->observer->arg,
                                        p->expects[i].loc.line, text, v->held,
                                        v->evidence);
    }
}

/* ------------------------------------------------- the simulated world */

static int
sim_setup(struct rn *r)
{
    assign_ips(r);
    for (uint32_t i = 0; i < r->n; i++)
        r->nodes[i].host = sim_host_new(r->w, i + 1, r->nodes[i].decl->name,
                                        r->nodes[i].ipv4);
    setup_links(r);
    return 0;
}

static void
sim_teardown(struct rn *r)
{
    (void)r;
}

static uint64_t
sim_env_now(struct rn *r)
{
    return sim_now(r->w);
}

static void
sim_advance(struct rn *r, uint64_t until)
{
    sim_run_until_cond(r->w, rn_due_now, r, until);
}

static int
sim_node_stack(struct rn *r, struct rn_node *nd, uint32_t workers)
{
    int err = 0;
    uint64_t v = 0;
    struct sim_stack_config sc = {.nworkers = workers ? (int)workers : 1};
    if (config_of(r, nd->idx, SCN_CONFIG_INJECT_INTERNAL_DELAYS, &v))
        sc.post_delay_ns = v;
    nd->sim_st = sim_stack_new(r->w, nd->host, &sc, &err);
    if (!nd->sim_st) {
        rn_internal(r, "%s: cannot create its stack: %s", nd->decl->name,
                    strerror(-err));
        return err;
    }
    nd->st = nd->sim_st;
    if (config_of(r, nd->idx, SCN_CONFIG_INJECT_SOCKET_FAILURES, &v) && v) {
        struct msgr_fault_config fc;
        memset(&fc, 0, sizeof(fc));
        fc.socket_failures = (uint32_t)v;
        nd->st = msgr_fault_stack_new(nd->sim_st, &fc, &err);
        if (!nd->st) {
            rn_internal(r, "%s: cannot create the fault layer: %s",
                        nd->decl->name, strerror(-err));
            return err;
        }
        /* the fault layer holds its own reference to the sim stack: ours
         * goes, so unref of nd->st releases both (else the sim host keeps
         * a stack and the world cannot be freed) */
        msgr_stack_unref(nd->sim_st);
    }
    return 0;
}

static void
sim_node_addr(struct rn *r, struct rn_node *nd, struct msgr_addr *a)
{
    (void)r;
    sim_host_addr(nd->host, RN_BASE_PORT, a);
}

static void
sim_fp(struct rn *r, struct msgr_tracer *out)
{
    sim_fp_tracer(r->w, out);
}

static void
sim_kill(struct rn *r, struct rn_node *nd)
{
    sim_host_kill(r->w, nd->host);
}

static void
sim_crash(struct rn *r, struct rn_node *nd)
{
    sim_host_crash(r->w, nd->host);
}

static void
sim_revive(struct rn *r, struct rn_node *nd)
{
    sim_host_revive(r->w, nd->host);
}

static uint64_t
sim_progress(struct rn *r)
{
    /* both counters only grow: their sum stands still iff both do */
    struct sim_net_stats ns;
    sim_net_stats(r->w, &ns);
    return ns.bytes_delivered + ns.segments_sent;
}

static uint64_t
sim_fp_value(struct rn *r, int exit_code)
{
    (void)exit_code;
    return sim_fingerprint(r->w);
}

static uint64_t
sim_events(struct rn *r)
{
    return sim_events_run(r->w);
}

const struct rn_env rn_env_sim = {
    .name = "sim",
    .setup = sim_setup,
    .teardown = sim_teardown,
    .now = sim_env_now,
    .advance = sim_advance,
    .wake = NULL,
    .node_stack = sim_node_stack,
    .node_addr = sim_node_addr,
    .fp_tracer = sim_fp,
    .host_kill = sim_kill,
    .host_crash = sim_crash,
    .host_revive = sim_revive,
    .pair_fault = rn_sim_pair_fault,
    .pause = rn_sim_pause,
    .heal = rn_sim_heal,
    .fault_over = rn_sim_fault_over,
    .net_progress = sim_progress,
    .fingerprint = sim_fp_value,
    .events = sim_events,
};

/* ---------------------------------------------------------------- run */

/* `expect trace_hash` compares the simulator's fingerprint: posix runs are
 * not bit-reproducible, so it cannot hold there. */
static bool
reject_trace_hash(const struct scn_plan *p)
{
    for (uint32_t i = 0; i < p->n_expects; i++)
        if (p->expects[i].kind == SCN_EXPECT_TRACE_HASH) {
            fprintf(stderr,
                    "%s:%u:%u: error: `expect trace_hash` holds only on the "
                    "simulated stack (runs on real sockets are not "
                    "bit-reproducible); run with --stack sim or remove it\n",
                    p->path, p->expects[i].loc.line, p->expects[i].loc.col);
            return true;
        }
    return false;
}

static void
run_loop(struct rn *r)
{
    const struct scn_plan *p = r->p;
    uint64_t next_check = 0;
    for (;;) {
        if (r->internal_error)
            break;
        uint64_t now = rn_now(r);
        uint64_t next = r->end_ns;
        if (r->nagenda && r->agenda[0].t < next)
            next = r->agenda[0].t;
        if (next_check < next)
            next = next_check;
        if (next > now)
            r->env->advance(r, next);
        now = rn_now(r);
        while (r->nagenda && r->agenda[0].t <= now && !r->internal_error) {
            struct rn_item it = pop_item(r);
            run_item(r, &it);
        }
        rn_fault_expire(r);
        if (now >= next_check) {
            next_check = now + RN_CHECK_NS;
            progress(r, false);
            if (now >= p->last_named_ns && quiescent(r))
                break;
        }
        if (now >= r->end_ns)
            break;
    }
}

static void
report(struct rn *r, struct scn_run_result *res, int code)
{
    const struct scn_run_opts *o = r->o;
    bool sim = r->env == &rn_env_sim;
    if (!o->quiet)
        fprintf(r->out,
                "ran %" PRIu64 ".%03" PRIu64 "s %s, %" PRIu64
                " events; messages: %" PRIu64 " sent, %" PRIu64
                " delivered, %" PRIu64 " given up; faults: %" PRIu64 "\n",
                r->end_ns / RN_NS_S, (r->end_ns % RN_NS_S) / RN_NS_MS,
                sim ? "virtual" : "wall", res->sim_events, r->msgs_sent,
                r->msgs_delivered, r->msgs_given_up, r->faults_started);
    fprintf(r->out, "verdict: %s (%u of %u expectations held)\n",
            code == SCN_EXIT_OK       ? "pass"
            : code == SCN_EXIT_FAILED ? "FAIL"
                                      : "ERROR",
            res->expects_total - res->expects_failed, res->expects_total);
    if (code != SCN_EXIT_OK)
        fprintf(r->out, "reproduce: %s run %s --seed %" PRIu64 " --stack %s\n",
                o->command ? o->command : "msgrsim", r->p->path, r->seed,
                r->env->name);
    /* the teardown's FINs and RSTs are not part of the run */
    if (o->observer && o->observer->segment)
        sim_set_capture(r->w, NULL, NULL);
    if (o->observer && o->observer->run_end)
        o->observer->run_end(o->observer->arg, r->end_ns, res->fingerprint,
                             code);
    if (!sim && !o->quiet)
        fprintf(r->out, "note: runs on real sockets are not bit-reproducible;"
                        " the fingerprint hashes the plan, seed and verdicts\n");
    fprintf(r->out, "fingerprint: %016" PRIx64 "\n", res->fingerprint);
}

int
scn_run(const struct scn_plan *p, const char *src, size_t src_len,
        const struct scn_run_opts *o, struct scn_run_result *res)
{
    struct rn rr;
    struct rn *r = &rr;
    memset(r, 0, sizeof(*r));
    memset(res, 0, sizeof(*res));
    r->p = p;
    r->src = src;
    r->src_len = src_len;
    r->o = o;
    r->out = o->out ? o->out : stdout;
    r->seed = o->has_seed ? o->seed : p->seed;
    res->seed = r->seed;
    enum scn_stack stack = o->has_stack ? o->stack : p->stack;
    r->env = stack == SCN_STACK_SIM ? &rn_env_sim : &rn_env_posix;
    fprintf(r->out, "seed: %" PRIu64 "\n", r->seed);
    if (stack != SCN_STACK_SIM && reject_trace_hash(p)) {
        res->exit_code = SCN_EXIT_INVALID;
        return res->exit_code;
    }
    if (!o->quiet)
        fprintf(r->out, "scenario: %s (%s, %u nodes, stack %s)\n", p->title,
                p->path, p->n_nodes, r->env->name);
    for (uint32_t k = 0; k < p->n_configs; k++)
        if (p->configs[k].key == SCN_CONFIG_CRC && p->configs[k].value == 0) {
            /* Ceph's msgr2 crc mode checks every frame whatever ms_crc_*
             * say (they act on msgr1); so do we */
            fprintf(r->out, "note: %s:%u: crc off has no effect: msgr2's "
                            "crc mode always checks frames, as Ceph's does\n",
                    p->path, p->configs[k].loc.line);
            break;
        }
    /* on posix the world is only the seeded source of the workload's and
     * chaos's random draws, so both stacks draw the same faults */
    r->w = sim_world_new(r->seed);
    if (o->observer && o->observer->segment)
        sim_set_capture(r->w, o->observer->segment, o->observer->arg);
    r->n = p->n_nodes;
    r->end_ns = p->duration_ns;
    r->nodes = xcalloc(r->n, sizeof(*r->nodes));
    r->verdicts = xcalloc(p->n_expects, sizeof(*r->verdicts));
    r->trig_fired = xcalloc(p->n_triggers, sizeof(*r->trig_fired));
    sim_world_rng(r->w, SIM_STREAM_WORKLOAD, 0, &r->work_rng);
    for (uint32_t i = 0; i < r->n; i++) {
        struct rn_node *nd = &r->nodes[i];
        nd->r = r;
        nd->idx = i;
        nd->decl = &p->nodes[i];
        nd->nonce = 1000u + i;
    }
    int code = SCN_EXIT_OK;
    if (r->env->setup(r) < 0) {
        fprintf(stderr, "msgrsim: internal error: %s\n", r->internal_what);
        code = SCN_EXIT_INTERNAL;
        goto out_free;
    }
    rn_lock(r); /* the main thread holds it except around messenger calls */
    if (o->observer && o->observer->run_begin)
        o->observer->run_begin(o->observer->arg, p, r->seed, r->env->name);
    for (uint32_t i = 0; i < p->n_breaks; i++) {
        struct scn_action a;
        memset(&a, 0, sizeof(a));
        a.kind = SCN_ACT_BREAK;
        a.loc = p->breaks[i].loc;
        a.u.brk = p->breaks[i];
        rn_fault_action(r, &a);
    }
    for (uint32_t i = 0; i < p->n_timeline; i++)
        rn_push(r, p->timeline[i].t_ns, RN_ITEM_TIMELINE, i, NULL,
                p->timeline[i].act.loc.line);
    r->timeline_left = p->n_timeline;
    for (uint32_t i = 0; i < p->n_expects; i++)
        if (p->expects[i].has_at)
            rn_push(r, p->expects[i].at_ns, RN_ITEM_EXPECT, i, NULL,
                    p->expects[i].loc.line);

    run_loop(r);
    progress(r, true);
    r->end_ns = rn_now(r);
    res->end_ns = r->end_ns;

    if (r->internal_error) {
        fprintf(stderr, "msgrsim: internal error: %s\n", r->internal_what);
        code = SCN_EXIT_INTERNAL;
    } else {
        print_verdicts(r, res);
        res->breaks_unfired = rn_breaks_unfired(r, r->out);
        if (res->expects_failed || res->breaks_unfired)
            code = SCN_EXIT_FAILED;
    }
    res->fingerprint = r->env->fingerprint(r, code);
    res->msgs_sent = r->msgs_sent;
    res->msgs_delivered = r->msgs_delivered;
    res->msgs_given_up = r->msgs_given_up;
    res->faults = r->faults_started;
    res->sim_events = r->env->events(r);
    report(r, res, code);

    /* teardown: every messenger, then the world */
    if (r->held_back)
        msgr_msg_unref(r->held_back);
    for (uint32_t i = 0; i < r->n; i++)
        node_stop(r, i);
    rn_unlock(r);
    r->env->teardown(r);
out_free:
    rn_faults_free(r);
    sim_world_free(r->w);
    for (size_t k = 0; k < r->pair_cap; k++)
        if (r->pair_keys[k]) {
            free(r->pair_vals[k]->seen);
            free(r->pair_vals[k]->lat);
            free(r->pair_vals[k]);
        }
    free(r->pair_keys);
    free(r->pair_vals);
    free(r->nodes);
    free(r->agenda);
    free(r->flows);
    free(r->chaos);
    free(r->verdicts);
    free(r->trig_fired);
    res->exit_code = code;
    return code;
}
