/*
 * Ceph's test_msgr catalogue (PROTOCOL.md §6) and the reconnect/race
 * regressions of §8, on the conformance harness: every case runs on posix
 * (real TCP on 127.0.0.1) and on the simulated stack (MSGR_TEST_STACK).
 *
 * Ceph's fixture: server osd.0, a client, ms_max_backoff 1 s (the harness
 * sets it), and message counts kept per connection in a "session" that
 * ms_handle_remote_reset clears; sess_* below keeps the same counts.
 *
 * Where the other catalogue cases live:
 *   FeatureTest            test_msgr.c test_features (bit 13, both halves)
 *   TimeoutTest            test_msgr.c test_idle_timeout (both ends idle);
 *                          here: only the server times out
 *   AnonTest               test_msgr.c test_anon
 *   MissingServerIdenTest, ReconnectTest
 *                          tests/unit/test_sim_catalog.c (sim only)
 *
 * Breakpoints: our interceptor answers synchronously (no blocking
 * proceed()), so what Ceph does "while the worker is held" is done from
 * inside the interceptor callback, on the connection's worker.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "frame.h"
#include "harness.h"
#include "msgr/msgr.h"
#if H_HAVE_SIM
#include "sim/sim.h"
#endif

/* ------------------------------------------------------ per-test context */

#define MAX_SESS 128
#define MAX_RULES 4

/* Ceph's Session: messages received per connection, zeroed by a remote
 * reset (the session object is dropped there). Keyed by connection, with
 * a reference held so the key is not reused. */
struct sess {
    struct msgr_conn *c;
    int count;
};

struct sess_tab {
    pthread_mutex_t lock;
    struct sess e[MAX_SESS];
    int n;
    int overflow;
};

/* One interceptor rule: at `step`, answer `action` `times` times (after
 * calling `before`, which may queue a message on the connection). */
struct rule {
    int step, action;
    _Atomic int times, hits;
    void (*before)(struct h_node *n, struct msgr_conn *c);
};

struct icpt {
    struct h_node *n;
    struct rule r[MAX_RULES];
    int nr;
};

struct ctx {
    struct h_world *w;
    struct sess_tab tab[H_MAX_NODES];
    struct icpt ic[H_MAX_NODES];
    /* a connection an interceptor captured (a reference), and a message
     * for it to queue */
    _Atomic(struct msgr_conn *) captured;
    _Atomic(struct msgr_msg *) to_queue;
    _Atomic int queue_fail;
};

static struct ctx g;

static int
setup(void **state)
{
    memset(&g, 0, sizeof(g));
    for (int i = 0; i < H_MAX_NODES; i++)
        pthread_mutex_init(&g.tab[i].lock, NULL);
    g.w = h_world_new();
    if (!g.w)
        return -1;
    *state = g.w;
    return 0;
}

static void
release_refs(void)
{
    for (int i = 0; i < H_MAX_NODES; i++) {
        struct sess_tab *t = &g.tab[i];
        pthread_mutex_lock(&t->lock);
        for (int k = 0; k < t->n; k++)
            msgr_conn_unref(t->e[k].c);
        t->n = 0;
        pthread_mutex_unlock(&t->lock);
    }
    struct msgr_conn *c = atomic_exchange(&g.captured, NULL);
    if (c)
        msgr_conn_unref(c);
    struct msgr_msg *m = atomic_exchange(&g.to_queue, NULL);
    if (m)
        msgr_msg_unref(m);
}

static int
teardown(void **state)
{
    (void)state;
    /* the session table holds references: the messengers shut down first
     * (no more hooks), then the references go, then the harness checks */
    struct h_world *w = g.w;
    for (int i = 0; i < w->nnodes; i++) {
        struct h_node *n = w->nodes[i];
        if (!n->destroyed && !n->shut) {
            msgr_shutdown(n->m);
            n->shut = 1;
        }
    }
    for (int i = 0; i < w->nnodes; i++)
        h_node_wait(w->nodes[i]);
    release_refs();
    h_world_finish(w);
    for (int i = 0; i < H_MAX_NODES; i++)
        pthread_mutex_destroy(&g.tab[i].lock);
    return 0;
}

/* Under t->lock: the entry of c, added (with a reference) if new. */
static struct sess *
sess_get_locked(struct sess_tab *t, struct msgr_conn *c)
{
    for (int i = 0; i < t->n; i++)
        if (t->e[i].c == c)
            return &t->e[i];
    if (t->n == MAX_SESS) {
        t->overflow = 1;
        return NULL;
    }
    msgr_conn_ref(c);
    t->e[t->n].c = c;
    t->e[t->n].count = 0;
    return &t->e[t->n++];
}

static void
sess_hook_msg(struct h_node *n, struct msgr_msg *m)
{
    struct sess_tab *t = &g.tab[n->idx];
    pthread_mutex_lock(&t->lock);
    struct sess *s = sess_get_locked(t, m->conn);
    if (s)
        s->count++;
    pthread_mutex_unlock(&t->lock);
}

static void
sess_hook_event(struct h_node *n, enum h_event ev, struct msgr_conn *c)
{
    struct sess_tab *t = &g.tab[n->idx];
    pthread_mutex_lock(&t->lock);
    struct sess *s = sess_get_locked(t, c);
    if (s && ev == H_EV_REMOTE_RESET)
        s->count = 0;
    pthread_mutex_unlock(&t->lock);
}

/* The messages counted on c's session (0 if none arrived). */
static int
sess_count(struct h_node *n, struct msgr_conn *c)
{
    struct sess_tab *t = &g.tab[n->idx];
    pthread_mutex_lock(&t->lock);
    assert_false(t->overflow);
    int k = 0;
    for (int i = 0; i < t->n; i++)
        if (t->e[i].c == c)
            k = t->e[i].count;
    pthread_mutex_unlock(&t->lock);
    return k;
}

/* The i-th connection accepted or connected by n, in order of first sight
 * (a reference stays with the table); NULL if fewer. */
static struct msgr_conn *
sess_nth(struct h_node *n, int i)
{
    struct sess_tab *t = &g.tab[n->idx];
    pthread_mutex_lock(&t->lock);
    struct msgr_conn *c = i < t->n ? t->e[i].c : NULL;
    pthread_mutex_unlock(&t->lock);
    return c;
}

static void
with_sessions(struct h_node *n)
{
    n->hook_msg = sess_hook_msg;
    n->hook_event = sess_hook_event;
}

static int
on_step(void *arg, struct msgr_conn *c, int step)
{
    struct icpt *ic = arg;
    for (int i = 0; i < ic->nr; i++) {
        struct rule *r = &ic->r[i];
        if (r->step != step)
            continue;
        int left = atomic_load(&r->times);
        while (left > 0 && !atomic_compare_exchange_weak(&r->times, &left,
                                                         left - 1))
            ;
        if (left <= 0)
            continue;
        atomic_fetch_add(&r->hits, 1);
        if (r->before)
            r->before(ic->n, c);
        return r->action;
    }
    return MSGR_INTERCEPT_CONTINUE;
}

/* Installs n's interceptor (before start); rules are armed later. */
static struct icpt *
intercepted(struct h_node *n)
{
    struct icpt *ic = &g.ic[n->idx];
    ic->n = n;
    struct msgr_interceptor i = {.arg = ic, .intercept = on_step};
    msgr_set_interceptor(n->m, &i);
    return ic;
}

static struct rule *
add_rule(struct icpt *ic, int step, int action,
         void (*before)(struct h_node *, struct msgr_conn *))
{
    assert_true(ic->nr < MAX_RULES);
    struct rule *r = &ic->r[ic->nr++];
    r->step = step;
    r->action = action;
    r->before = before;
    atomic_store(&r->times, 0); /* disarmed */
    return r;
}

/* Interceptor helper: capture the connection and queue g.to_queue on it
 * (Ceph: the test sends on the server's connection while it is held). */
static void
capture_and_queue(struct h_node *n, struct msgr_conn *c)
{
    (void)n;
    msgr_conn_ref(c);
    struct msgr_conn *old = atomic_exchange(&g.captured, c);
    if (old)
        msgr_conn_unref(old);
    struct msgr_msg *m = atomic_exchange(&g.to_queue, NULL);
    if (m && msgr_conn_send_message(c, m) != 0) {
        msgr_msg_unref(m);
        atomic_fetch_add(&g.queue_fail, 1);
    }
}

/* ------------------------------------------------------------- helpers */

static struct h_node *
server_node(struct h_world *w, const char *label, int64_t num, int echo)
{
    struct h_spec s = {.label = label, .type = MSGR_ENTITY_OSD, .num = num,
                       .bind = 1, .echo = echo};
    return h_node_new(w, &s);
}

static struct h_node *
client_node(struct h_world *w, const char *label, int64_t num, int bind)
{
    struct h_spec s = {.label = label, .type = MSGR_ENTITY_CLIENT, .num = num,
                       .bind = bind};
    return h_node_new(w, &s);
}

/* A pair with Ceph's policy conventions: the server's policy for clients,
 * the client's policy for OSDs. */
static void
pair(struct h_world *w, struct h_node **srv, struct h_node **cli,
     enum msgr_policy_kind sk, enum msgr_policy_kind ck, int cli_bound)
{
    *srv = server_node(w, "osd.0", 0, 1);
    *cli = client_node(w, "client", 1, cli_bound);
    h_policy(*srv, MSGR_ENTITY_CLIENT, sk);
    h_policy(*cli, MSGR_ENTITY_OSD, ck);
    with_sessions(*srv);
    with_sessions(*cli);
}

/* Sends one request on c (stream s); asserts the send was taken. */
static void
send_on(struct h_node *n, struct msgr_conn *c, uint32_t s)
{
    struct msgr_msg *m = h_msg_new(n, H_MSG_REQ, s, n->tx_seq[s]++, 0, 0, 64);
    assert_non_null(m);
    assert_int_equal(h_conn_send(c, m), 0);
}

static void
wait_echoes(struct h_node *n, uint32_t s)
{
    if (!h_wait_echoes(n, s, H_WAIT_NS))
        fail_msg("%s: stream %u: %d of %llu echoes (%s)", n->label, s,
                 atomic_load(&n->n_rep_stream[s]),
                 (unsigned long long)n->tx_seq[s], h_first_error(n));
}

static void
wait_true(struct h_world *w, _Atomic int *p, int v, const char *what)
{
    if (!h_wait_ge(w, p, v, H_WAIT_NS))
        fail_msg("timed out waiting for %s >= %d (is %d)", what, v,
                 atomic_load(p));
}
#define WAIT_GE(w, p, v) wait_true((w), (p), (v), #p)

struct state_arg {
    struct msgr_conn *c;
    const char *state;
};

static int
in_state(void *arg)
{
    struct state_arg *a = arg;
    return strcmp(msgr_conn_state_name(a->c), a->state) == 0;
}

static int
wait_state(struct h_world *w, struct msgr_conn *c, const char *state)
{
    struct state_arg a = {c, state};
    return h_wait(w, in_state, &a, H_WAIT_NS);
}

static void
assert_connected(struct h_world *w, struct msgr_conn *c)
{
    if (!h_wait_connected(w, c, 1, H_WAIT_NS))
        fail_msg("connection %llu not connected (state %s)",
                 (unsigned long long)msgr_conn_id(c), msgr_conn_state_name(c));
}

static void
assert_not_connected(struct h_world *w, struct msgr_conn *c)
{
    if (!h_wait_connected(w, c, 0, H_WAIT_NS))
        fail_msg("connection %llu still connected (state %s)",
                 (unsigned long long)msgr_conn_id(c), msgr_conn_state_name(c));
}

/* ------------------------------------------------------- SimpleTest(s) */

/*
 * SimpleTest: round trip; rebind avoiding the 10 ports above the current
 * one and round trip to the new address; mark_down; server shut down;
 * loopback. dual: SimpleMsgr2Test's dual bind as two v2 addresses.
 */
static void
simple_case(struct h_world *w, int dual)
{
    struct h_node *srv, *cli;
    pair(w, &srv, &cli, MSGR_POLICY_STATELESS_SERVER, MSGR_POLICY_LOSSY_CLIENT,
         0);
    if (dual) {
        srv->bind_pending = 0;
        struct msgr_addrvec v = {.n = 2};
        for (int i = 0; i < 2; i++) {
            assert_int_equal(msgr_addr_parse("v2:127.0.0.1:0", &v.v[i]), 0);
#if H_HAVE_SIM
            if (srv->host) /* the sim host's IP, as the harness binds */
                sim_host_addr(srv->host, 0, &v.v[i]);
#endif
        }
        int e = msgr_bindv(srv->m, &v);
        if (e < 0)
            fail_msg("bindv: %s", msgr_strerror(e));
    }
    h_node_start(srv);
    h_node_start(cli);
    struct msgr_addrvec to;
    h_node_addrs(srv, &to);
    assert_int_equal(to.n, dual ? 2 : 1);
    if (dual)
        assert_int_not_equal(to.v[0].port, to.v[1].port);

    /* 1. a round trip, one message each way, counted on the sessions */
    struct msgr_conn *c = h_get_conn(cli, MSGR_ENTITY_OSD, &to);
    send_on(cli, c, 0);
    wait_echoes(cli, 0);
    assert_true(msgr_conn_is_connected(c));
    assert_int_equal(msgr_conn_peer_type(c), MSGR_ENTITY_OSD);
    assert_int_equal(sess_count(cli, c), 1);
    assert_int_equal(sess_count(srv, sess_nth(srv, 0)), 1);

    /* 2. rebind, avoiding the 10 ports above the current one */
    int port = to.v[0].port;
    int avoid[10];
    for (int i = 0; i < 10; i++)
        avoid[i] = port + 1 + i;
    assert_int_equal(msgr_rebind(srv->m, avoid, 10), 0);
    struct msgr_addrvec now;
    h_node_addrs(srv, &now);
    assert_int_equal(now.n, to.n);
    for (uint32_t k = 0; k < now.n; k++) {
        assert_int_not_equal(now.v[k].port, 0);
        for (int i = 0; i < 10; i++)
            assert_int_not_equal(now.v[k].port, avoid[i]);
    }
    assert_false(msgr_addrvec_equal(&now, &to));
    c = h_get_conn(cli, MSGR_ENTITY_OSD, &now);
    send_on(cli, c, 0);
    wait_echoes(cli, 0);
    assert_true(msgr_conn_is_connected(c));
    assert_int_equal(sess_count(cli, c), 1);

    /* 3. mark_down */
    msgr_conn_mark_down(c);
    assert_false(msgr_conn_is_connected(c));

    /* 4. a dead server: the send is refused on the closed connection, a
     * new one to the dead address never connects */
    h_node_shutdown(srv);
    h_node_wait(srv);
    struct msgr_msg *m = h_msg_new(cli, H_MSG_REQ, 1, 0, 0, 0, 0);
    assert_true(h_conn_send(c, m) < 0);
    struct msgr_conn *c2 = h_get_conn(cli, MSGR_ENTITY_OSD, &now);
    assert_ptr_not_equal(c2, c);
    m = h_msg_new(cli, H_MSG_REQ, 1, 0, 0, 0, 0);
    assert_int_equal(h_conn_send(c2, m), 0);
    assert_not_connected(w, c2);
    assert_false(h_wait_connected(w, c2, 1, 500 * MSGR_NS_PER_MS));

    /* 5. loopback: delivered once, from myself */
    cli->expect_src_type = MSGR_ENTITY_CLIENT;
    struct msgr_conn *lc = h_hold(w, msgr_get_loopback_connection(cli->m));
    m = h_msg_new(cli, H_MSG_REQ, 2, 0, 0, 0, 10);
    assert_int_equal(h_conn_send(lc, m), 0);
    WAIT_GE(w, &cli->n_loopback, 1);
    h_settle(w);
    assert_int_equal(atomic_load(&cli->n_loopback), 1);
    assert_int_equal(atomic_load(&cli->n_req), 1);
    assert_int_equal(sess_count(cli, lc), 1);
    assert_int_equal(atomic_load(&cli->errors), 0);
}

static void
test_simple(void **state)
{
    simple_case(*state, 0);
}

/* Left out of SimpleMsgr2Test: the v1 listener (no msgr1 here). */
static void
test_simple_msgr2(void **state)
{
    simple_case(*state, 1);
}

/* ------------------------------------------------------- TimeoutTest */

/* Only the server has the 1 s idle timeout: it closes, the lossy client
 * notices (test_msgr.c covers the client's own timeout). */
static void
test_timeout_server_side(void **state)
{
    struct h_world *w = *state;
    struct h_spec ss = {.label = "osd.0", .type = MSGR_ENTITY_OSD, .num = 0,
                        .bind = 1, .echo = 1,
                        .idle_timeout_ns = 1 * MSGR_NS_PER_S};
    struct h_node *srv = h_node_new(w, &ss);
    struct h_node *cli = client_node(w, "client", 1, 0);
    h_policy(srv, MSGR_ENTITY_CLIENT, MSGR_POLICY_STATELESS_SERVER);
    h_policy(cli, MSGR_ENTITY_OSD, MSGR_POLICY_LOSSY_CLIENT);
    h_node_start(srv);
    h_node_start(cli);
    struct msgr_addrvec to;
    h_node_addrs(srv, &to);
    struct msgr_conn *c = h_get_conn(cli, MSGR_ENTITY_OSD, &to);
    send_on(cli, c, 0);
    wait_echoes(cli, 0);
    assert_true(msgr_conn_is_connected(c));
    assert_true(h_wait_connected(w, c, 0, 2500 * MSGR_NS_PER_MS));
    assert_true(h_fault_count(srv, -ETIMEDOUT) >= 1);
    WAIT_GE(w, &cli->n_reset, 1);
}

/* ------------------------------------------------------- StatefulTest */

static void
test_stateful(void **state)
{
    struct h_world *w = *state;
    struct h_node *srv, *cli;
    pair(w, &srv, &cli, MSGR_POLICY_STATEFUL_SERVER,
         MSGR_POLICY_LOSSLESS_CLIENT, 0);
    h_node_start(srv);
    h_node_start(cli);
    struct msgr_addrvec to;
    h_node_addrs(srv, &to);

    /* 1. a session; the client marks it down: the server keeps its
     * session state (stateful server: STANDBY, count kept) */
    struct msgr_conn *c = h_get_conn(cli, MSGR_ENTITY_OSD, &to);
    send_on(cli, c, 0);
    wait_echoes(cli, 0);
    struct msgr_conn *sc = sess_nth(srv, 0);
    assert_non_null(sc);
    assert_int_equal(sess_count(srv, sc), 1);
    assert_int_equal(sess_count(cli, c), 1);
    msgr_conn_mark_down(c);
    assert_false(msgr_conn_is_connected(c));
    assert_true(wait_state(w, sc, "STANDBY"));
    assert_int_equal(sess_count(srv, sc), 1);

    /* a new client connection (a new cookie) finds the old session: the
     * server resets it (resetcheck) and says so; Ceph's server then has a
     * fresh session, counted from 0 */
    c = h_get_conn(cli, MSGR_ENTITY_OSD, &to);
    send_on(cli, c, 0);
    wait_echoes(cli, 0);
    WAIT_GE(w, &srv->n_remote_reset, 1);
    assert_int_equal(atomic_load(&srv->n_remote_reset), 1);
    assert_int_equal(atomic_load(&cli->n_remote_reset), 0);
    /* our server reuses the existing connection object for the peer */
    struct msgr_addrvec ca;
    msgr_conn_peer_addrs(sc, &ca);
    struct msgr_conn *sc2 = h_get_conn(srv, MSGR_ENTITY_CLIENT, &ca);
    assert_true(msgr_conn_is_connected(sc2));
    assert_int_equal(sess_count(srv, sc2), 1);

    /* 2. the server marks down: the client reconnects, is told the
     * session is gone (remote reset), connects anew */
    int connects = atomic_load(&cli->n_connect);
    msgr_conn_mark_down(sc2);
    assert_false(msgr_conn_is_connected(sc2));
    WAIT_GE(w, &cli->n_remote_reset, 1);
    WAIT_GE(w, &cli->n_connect, connects + 1);
    assert_connected(w, c);
    send_on(cli, c, 0);
    wait_echoes(cli, 0);
    /* resetcheck: one message on each side's fresh session */
    assert_int_equal(sess_count(cli, c), 1);
    struct msgr_conn *sc3 = h_get_conn(srv, MSGR_ENTITY_CLIENT, &ca);
    assert_ptr_not_equal(sc3, sc2);
    assert_int_equal(sess_count(srv, sc3), 1);
    assert_int_equal(atomic_load(&cli->n_remote_reset), 1);
    assert_int_equal(atomic_load(&srv->n_remote_reset), 1);
}

/* ------------------------------------------------------ StatelessTest */

static void
test_stateless(void **state)
{
    struct h_world *w = *state;
    struct h_node *srv, *cli;
    pair(w, &srv, &cli, MSGR_POLICY_STATELESS_SERVER,
         MSGR_POLICY_LOSSY_CLIENT, 0);
    h_node_start(srv);
    h_node_start(cli);
    struct msgr_addrvec to;
    h_node_addrs(srv, &to);

    /* 1. a session; after the client marks down, a new connection is a
     * fresh server-side session */
    struct msgr_conn *c = h_get_conn(cli, MSGR_ENTITY_OSD, &to);
    send_on(cli, c, 0);
    wait_echoes(cli, 0);
    assert_int_equal(sess_count(srv, sess_nth(srv, 0)), 1);
    msgr_conn_mark_down(c);
    assert_false(msgr_conn_is_connected(c));
    c = h_get_conn(cli, MSGR_ENTITY_OSD, &to);
    send_on(cli, c, 0);
    wait_echoes(cli, 0);
    WAIT_GE(w, &srv->n_accept, 2);
    struct msgr_conn *sc = atomic_load(&srv->last_accept);
    assert_ptr_not_equal(sc, sess_nth(srv, 0));
    assert_int_equal(sess_count(srv, sc), 1);
    assert_int_equal(sess_count(cli, c), 1);

    /* 2. the server marks down; a keepalive makes the lossy client
     * notice; a new connection works */
    msgr_conn_mark_down(sc);
    assert_false(msgr_conn_is_connected(sc));
    msgr_conn_send_keepalive(c);
    assert_not_connected(w, c);
    c = h_get_conn(cli, MSGR_ENTITY_OSD, &to);
    send_on(cli, c, 0);
    wait_echoes(cli, 0);
    assert_true(msgr_conn_is_connected(c));
    assert_int_equal(sess_count(cli, c), 1);
    WAIT_GE(w, &srv->n_accept, 3);
    assert_int_equal(sess_count(srv, atomic_load(&srv->last_accept)), 1);
    assert_int_equal(atomic_load(&srv->n_remote_reset), 0);
    assert_int_equal(atomic_load(&cli->n_remote_reset), 0);
}

/* -------------------------------------------------- ClientStandbyTest */

static void
test_client_standby(void **state)
{
    struct h_world *w = *state;
    struct h_node *srv, *cli;
    pair(w, &srv, &cli, MSGR_POLICY_STATEFUL_SERVER,
         MSGR_POLICY_LOSSLESS_PEER, 0);
    h_node_start(srv);
    h_node_start(cli);
    struct msgr_addrvec to;
    h_node_addrs(srv, &to);

    struct msgr_conn *c = h_get_conn(cli, MSGR_ENTITY_OSD, &to);
    send_on(cli, c, 0);
    wait_echoes(cli, 0);
    /* nothing unacknowledged, so the client has nothing to resend */
    WAIT_GE(w, &cli->fate[MSGR_FATE_ACKED], 1);
    assert_int_equal(sess_count(cli, c), 1);
    struct msgr_conn *sc = sess_nth(srv, 0);
    assert_int_equal(sess_count(srv, sc), 1);

    msgr_conn_mark_down(sc);
    assert_false(msgr_conn_is_connected(sc));
    /* lossless_peer with nothing to send: STANDBY */
    if (!wait_state(w, c, "STANDBY"))
        fail_msg("client in %s, not STANDBY", msgr_conn_state_name(c));
    assert_false(msgr_conn_is_connected(c));

    /* a send on the standby connection reconnects; the server has no
     * session: remote reset (the message queued before it is discarded
     * with the session, as Ceph's reset_session does), then connect */
    int connects = atomic_load(&cli->n_connect);
    struct msgr_msg *m1 = h_msg_new(cli, H_MSG_REQ, 1, 0, 0, 0, 8);
    struct h_tracked *t1 = h_tracked_of(w, m1);
    assert_int_equal(h_conn_send(c, m1), 0);
    WAIT_GE(w, &cli->n_remote_reset, 1);
    WAIT_GE(w, &cli->n_connect, connects + 1);
    assert_connected(w, c);
    h_settle(w);
    assert_int_equal(atomic_load(&t1->fate[MSGR_FATE_DROPPED]), 1);
    assert_int_equal(atomic_load(&t1->fate[MSGR_FATE_DELIVERED]), 0);

    send_on(cli, c, 0);
    wait_echoes(cli, 0);
    assert_int_equal(sess_count(cli, c), 1);
    struct msgr_addrvec ca;
    msgr_conn_peer_addrs(sc, &ca);
    struct msgr_conn *sc2 = h_get_conn(srv, MSGR_ENTITY_CLIENT, &ca);
    assert_int_equal(sess_count(srv, sc2), 1);
    assert_int_equal(atomic_load(&cli->n_remote_reset), 1);
}

/* -------------------------------------------------------- MessageTest */

#define BIG_FRONT (1024u * 1024u)
#define BIG_DATA  (780u * 1024u)
#define N_BIG 3

/* Copies of what was sent, compared byte for byte on arrival. */
struct big {
    uint8_t *front[N_BIG], *data[N_BIG];
    uint32_t flen[N_BIG], dlen[N_BIG];
    _Atomic int same, differ;
};
static struct big big;

static void
big_hook_msg(struct h_node *n, struct msgr_msg *m)
{
    sess_hook_msg(n, m);
    struct h_payload p;
    memcpy(&p, m->front.data, sizeof(p));
    if (m->hdr.type != H_MSG_REQ || p.stream != 0 || p.seq >= N_BIG)
        return;
    int k = (int)p.seq;
    int ok = m->front.len == big.flen[k] && m->data.len == big.dlen[k] &&
             memcmp(m->front.data, big.front[k], m->front.len) == 0 &&
             (m->data.len == 0 ||
              memcmp(m->data.data, big.data[k], m->data.len) == 0);
    atomic_fetch_add(ok ? &big.same : &big.differ, 1);
}

static void
test_message(void **state)
{
    struct h_world *w = *state;
    struct h_node *srv, *cli;
    pair(w, &srv, &cli, MSGR_POLICY_STATEFUL_SERVER,
         MSGR_POLICY_LOSSLESS_PEER, 0);
    srv->hook_msg = big_hook_msg;
    memset(&big, 0, sizeof(big));
    h_node_start(srv);
    h_node_start(cli);
    struct msgr_addrvec to;
    h_node_addrs(srv, &to);
    struct msgr_conn *c = h_get_conn(cli, MSGR_ENTITY_OSD, &to);
    /* a ~1 MiB front (Ceph: an MCommand of 30,720 strings), a ~780 KB
     * data payload, and both */
    const uint32_t fe[N_BIG] = {BIG_FRONT, 0, BIG_FRONT};
    const uint32_t da[N_BIG] = {0, BIG_DATA, BIG_DATA};
    for (int k = 0; k < N_BIG; k++) {
        struct msgr_msg *m =
            h_msg_new(cli, H_MSG_REQ, 0, cli->tx_seq[0]++, fe[k], 0, da[k]);
        assert_non_null(m);
        big.flen[k] = m->front.len;
        big.dlen[k] = m->data.len;
        big.front[k] = malloc(m->front.len);
        big.data[k] = malloc(m->data.len + 1);
        assert_non_null(big.front[k]);
        assert_non_null(big.data[k]);
        memcpy(big.front[k], m->front.data, m->front.len);
        if (m->data.len)
            memcpy(big.data[k], m->data.data, m->data.len);
        assert_int_equal(h_conn_send(c, m), 0);
    }
    wait_echoes(cli, 0);
    h_settle(w);
    int same = atomic_load(&big.same), differ = atomic_load(&big.differ);
    for (int k = 0; k < N_BIG; k++) {
        free(big.front[k]);
        free(big.data[k]);
    }
    assert_int_equal(differ, 0);
    assert_int_equal(same, N_BIG);
    assert_int_equal(sess_count(srv, sess_nth(srv, 0)), N_BIG);
    assert_int_equal(sess_count(cli, c), N_BIG);
}

/* ------------------------------------------------------- MarkdownTest */

/*
 * Two servers share a dispatcher policy: a message arriving on one
 * server's connection marks down the other server's latest connection
 * from inside ms_dispatch. The client sends to both each iteration; the
 * servers must keep receiving (at most 3 stalls in a row). Ceph runs 1000
 * iterations; MARKDOWN_ITERS keeps this file fast.
 */
#define MARKDOWN_ITERS 200

struct markdown {
    pthread_mutex_t lock;
    struct h_node *srv[2];
    struct msgr_conn *last[2]; /* a reference each */
    _Atomic int count;
};
static struct markdown md;

static void
md_hook_msg(struct h_node *n, struct msgr_msg *m)
{
    int me = n == md.srv[0] ? 0 : 1;
    struct msgr_conn *victim = NULL, *old;
    msgr_conn_ref(m->conn);
    pthread_mutex_lock(&md.lock);
    old = md.last[me];
    md.last[me] = m->conn;
    victim = md.last[1 - me];
    if (victim)
        msgr_conn_ref(victim);
    pthread_mutex_unlock(&md.lock);
    if (old)
        msgr_conn_unref(old);
    if (victim) {
        msgr_conn_mark_down(victim);
        msgr_conn_unref(victim);
    }
    atomic_fetch_add(&md.count, 1);
}

static void
test_markdown(void **state)
{
    struct h_world *w = *state;
    memset(&md, 0, sizeof(md));
    pthread_mutex_init(&md.lock, NULL);
    struct h_node *s1 = server_node(w, "osd.0", 0, 0);
    struct h_node *s2 = server_node(w, "osd.1", 1, 0);
    struct h_node *cli = client_node(w, "client", 1, 0);
    md.srv[0] = s1;
    md.srv[1] = s2;
    for (int i = 0; i < 2; i++) {
        struct h_node *s = md.srv[i];
        h_policy(s, MSGR_ENTITY_CLIENT, MSGR_POLICY_STATELESS_SERVER);
        s->hook_msg = md_hook_msg;
        s->allow_gaps = 1; /* lossy sessions marked down lose messages */
        h_node_start(s);
    }
    h_policy(cli, MSGR_ENTITY_OSD, MSGR_POLICY_LOSSY_CLIENT);
    h_node_start(cli);
    struct msgr_addrvec a1, a2;
    h_node_addrs(s1, &a1);
    h_node_addrs(s2, &a2);

    int last = 0, stalls = 0, worst = 0;
    for (int i = 0; i < MARKDOWN_ITERS; i++) {
        struct msgr_msg *m = h_msg_new(cli, H_MSG_REQ, 0, (uint64_t)i, 0, 0, 8);
        assert_int_equal(h_send(cli, m, MSGR_ENTITY_OSD, &a1), 0);
        m = h_msg_new(cli, H_MSG_REQ, 1, (uint64_t)i, 0, 0, 8);
        assert_int_equal(h_send(cli, m, MSGR_ENTITY_OSD, &a2), 0);
        /* Ceph's CHECK_AND_WAIT_TRUE: up to ~1 s for both */
        h_wait_ge(w, &md.count, last + 2, 1 * MSGR_NS_PER_S);
        int now = atomic_load(&md.count);
        stalls = now == last ? stalls + 1 : 0;
        if (stalls > worst)
            worst = stalls;
        last = now;
        if (stalls > 3)
            fail_msg("iteration %d: %d stalls in a row (%d delivered)", i,
                     stalls, now);
    }
    print_message("[ markdown ] %d iterations, %d delivered, worst %d "
                  "stalls in a row\n",
                  MARKDOWN_ITERS, last, worst);
    assert_true(last > 0);
    /* stop the servers before dropping the references the hook keeps */
    h_node_shutdown(s1);
    h_node_shutdown(s2);
    h_node_wait(s1);
    h_node_wait(s2);
    for (int i = 0; i < 2; i++)
        if (md.last[i])
            msgr_conn_unref(md.last[i]);
    pthread_mutex_destroy(&md.lock);
}

/* ------------------------------------------- MissingServerIdenTest2 */

/*
 * lossless_peer both ways. The server queues a message to the client on
 * the accepted connection and fails just before SERVER_IDENT. The client,
 * with nothing to send, waits in STANDBY; the server dials back with the
 * client's cookie (an interrupted handshake: the client reuses its
 * connection) → both connected; client got 1 message, server 0.
 */
static void
test_missing_server_ident2(void **state)
{
    struct h_world *w = *state;
    struct h_node *srv, *cli;
    pair(w, &srv, &cli, MSGR_POLICY_LOSSLESS_PEER, MSGR_POLICY_LOSSLESS_PEER,
         1);
    srv->echo = 0;
    struct icpt *ic = intercepted(srv);
    struct rule *r = add_rule(ic, MSGR_STEP_SEND_SERVER_IDENTITY,
                              MSGR_INTERCEPT_FAIL, capture_and_queue);
    h_node_start(srv);
    h_node_start(cli);
    struct msgr_addrvec to;
    h_node_addrs(srv, &to);
    atomic_store(&g.to_queue, h_msg_new(srv, H_MSG_REQ, 0, 0, 0, 0, 32));
    srv->tx_seq[0] = 1;
    atomic_store(&r->times, 1);

    struct msgr_conn *c = h_get_conn(cli, MSGR_ENTITY_OSD, &to);
    WAIT_GE(w, &cli->n_req, 1);
    assert_int_equal(atomic_load(&r->hits), 1);
    assert_int_equal(atomic_load(&g.queue_fail), 0);
    struct msgr_conn *sc = atomic_load(&g.captured);
    assert_non_null(sc);
    assert_connected(w, c);
    assert_connected(w, sc);
    h_settle(w);
    assert_int_equal(atomic_load(&cli->n_req), 1);
    assert_int_equal(atomic_load(&srv->n_req), 0);
    assert_int_equal(sess_count(cli, c), 1);
    assert_int_equal(sess_count(srv, sc), 0);
    /* the server reached the client as the dialling side */
    assert_true(atomic_load(&srv->tag_out[MSGR_TAG_CLIENT_IDENT]) >= 1);
    assert_int_equal(atomic_load(&cli->n_remote_reset), 0);
    assert_int_equal(atomic_load(&srv->n_remote_reset), 0);
}

/* --------------------------------------------------- §8 regressions */

/*
 * Tracker 38118: the server faults right after it has a session but
 * before the client received SERVER_IDENT (its queued SERVER_IDENT dies
 * with the socket), and the next attempt goes the other way: the server,
 * holding a message for the client, reconnects. The client's connection
 * never got a server cookie: it must answer SESSION_RESET(full=false), so
 * both sides' queues survive. Expected: one SESSION_RESET, no remote
 * reset anywhere, every message delivered exactly once.
 */
static void
test_38118_reverse_reconnect(void **state)
{
    struct h_world *w = *state;
    struct h_node *srv, *cli;
    pair(w, &srv, &cli, MSGR_POLICY_LOSSLESS_PEER, MSGR_POLICY_LOSSLESS_PEER,
         1);
    srv->echo = 0;
    struct icpt *ic = intercepted(srv);
    struct rule *r =
        add_rule(ic, MSGR_STEP_READY, MSGR_INTERCEPT_FAIL, capture_and_queue);
    h_node_start(srv);
    h_node_start(cli);
    struct msgr_addrvec to;
    h_node_addrs(srv, &to);
    atomic_store(&g.to_queue, h_msg_new(srv, H_MSG_REQ, 0, 0, 0, 0, 32));
    srv->tx_seq[0] = 1;
    atomic_store(&r->times, 1);

    /* the client has messages queued for the server too */
    struct msgr_conn *c = h_get_conn(cli, MSGR_ENTITY_OSD, &to);
    for (int i = 0; i < 5; i++)
        send_on(cli, c, 0);
    WAIT_GE(w, &srv->n_req, 5);
    WAIT_GE(w, &cli->n_req, 1);
    assert_int_equal(atomic_load(&r->hits), 1);
    struct msgr_conn *sc = atomic_load(&g.captured);
    assert_connected(w, c);
    assert_connected(w, sc);
    h_settle(w);
    assert_int_equal(atomic_load(&srv->n_req), 5);
    assert_int_equal(atomic_load(&cli->n_req), 1);
    assert_int_equal(atomic_load(&cli->tag_out[MSGR_TAG_SESSION_RESET]), 1);
    assert_int_equal(atomic_load(&srv->n_remote_reset), 0);
    assert_int_equal(atomic_load(&cli->n_remote_reset), 0);
    assert_int_equal(atomic_load(&srv->fate[MSGR_FATE_DROPPED]), 0);
    assert_int_equal(atomic_load(&cli->fate[MSGR_FATE_DROPPED]), 0);
}

/*
 * Tracker 38247: CLIENT_IDENT aimed at another instance at the same
 * address must be refused. (a) the client dials the server's address
 * with a wrong nonce; (b) the server restarts on the same IP and port
 * with a new nonce, and the client's lossless session to the old instance
 * reconnects there: its SESSION_RECONNECT finds nothing (full reset),
 * and the CLIENT_IDENT that follows targets the old nonce. Expected: the
 * server refuses every attempt (WRONG_PEER), no session, no delivery.
 */
struct wrong_arg {
    struct h_node *n;
    int want;
};

static int
wrong_peer_seen(void *arg)
{
    struct wrong_arg *a = arg;
    return h_fault_count(a->n, MSGR_EWRONG_PEER) >= a->want;
}

static void
test_38247_wrong_target(void **state)
{
    struct h_world *w = *state;
    struct h_node *srv, *cli;
    pair(w, &srv, &cli, MSGR_POLICY_STATEFUL_SERVER,
         MSGR_POLICY_LOSSLESS_CLIENT, 0);
    h_node_start(srv);
    h_node_start(cli);
    struct msgr_addrvec to, wrong;
    h_node_addrs(srv, &to);

    /* (a) a wrong nonce */
    wrong = to;
    wrong.v[0].nonce ^= 0x5a5a;
    struct msgr_conn *cw = h_get_conn(cli, MSGR_ENTITY_OSD, &wrong);
    send_on(cli, cw, 1);
    struct wrong_arg wa = {srv, 2}; /* refused, and refused again */
    assert_true(h_wait(w, wrong_peer_seen, &wa, H_WAIT_NS));
    assert_false(msgr_conn_is_connected(cw));
    assert_int_equal(atomic_load(&srv->n_accept), 0);
    assert_int_equal(atomic_load(&srv->n_req), 0);
    msgr_conn_mark_down(cw);

    /* (b) a restart with a new nonce on the same address */
    struct msgr_conn *c = h_get_conn(cli, MSGR_ENTITY_OSD, &to);
    send_on(cli, c, 0);
    wait_echoes(cli, 0);
    int port = to.v[0].port;
    h_node_destroy(srv);
    struct h_spec s2 = {.label = "osd.0'", .type = MSGR_ENTITY_OSD, .num = 0,
                        .bind = 1, .echo = 1, .bind_port_min = port,
                        .bind_port_max = port, .on_host_of = srv};
    struct h_node *srv2 = h_node_new(w, &s2);
    h_policy(srv2, MSGR_ENTITY_CLIENT, MSGR_POLICY_STATEFUL_SERVER);
    h_node_start(srv2);
    struct msgr_addrvec to2;
    h_node_addrs(srv2, &to2);
    assert_int_equal(to2.v[0].port, port);
    assert_int_not_equal(to2.v[0].nonce, to.v[0].nonce);
    send_on(cli, c, 0);
    struct wrong_arg wb = {srv2, 2};
    assert_true(h_wait(w, wrong_peer_seen, &wb, H_WAIT_NS));
    h_settle(w);
    assert_false(msgr_conn_is_connected(c));
    assert_int_equal(atomic_load(&srv2->n_accept), 0);
    assert_int_equal(atomic_load(&srv2->n_req), 0);
    msgr_conn_mark_down(c);
}

/*
 * Tracker 36612: faults while reconnecting (the client's SEND_RECONNECT,
 * then the server's SEND_RECONNECT_OK) must back off and retry without
 * turning into a session reset. Expected: every message delivered exactly
 * once, in order; no remote reset, no reset.
 */
static void
test_36612_fault_while_connecting(void **state)
{
    struct h_world *w = *state;
    struct h_node *srv, *cli;
    pair(w, &srv, &cli, MSGR_POLICY_STATEFUL_SERVER,
         MSGR_POLICY_LOSSLESS_CLIENT, 0);
    struct icpt *ci = intercepted(cli);
    struct icpt *si = intercepted(srv);
    struct rule *r_msg =
        add_rule(ci, MSGR_STEP_HANDLE_MESSAGE, MSGR_INTERCEPT_FAIL, NULL);
    struct rule *r_rc =
        add_rule(ci, MSGR_STEP_SEND_RECONNECT, MSGR_INTERCEPT_FAIL, NULL);
    struct rule *r_ok =
        add_rule(si, MSGR_STEP_SEND_RECONNECT_OK, MSGR_INTERCEPT_FAIL, NULL);
    h_node_start(srv);
    h_node_start(cli);
    struct msgr_addrvec to;
    h_node_addrs(srv, &to);
    struct msgr_conn *c = h_get_conn(cli, MSGR_ENTITY_OSD, &to);
    send_on(cli, c, 0);
    wait_echoes(cli, 0);

    atomic_store(&r_msg->times, 1);
    atomic_store(&r_rc->times, 1);
    atomic_store(&r_ok->times, 1);
    for (int i = 0; i < 20; i++)
        send_on(cli, c, 0);
    wait_echoes(cli, 0);
    h_settle(w);
    assert_int_equal(atomic_load(&r_msg->hits), 1);
    assert_int_equal(atomic_load(&r_rc->hits), 1);
    assert_int_equal(atomic_load(&r_ok->hits), 1);
    assert_int_equal(atomic_load(&srv->n_req), 21);
    assert_int_equal(atomic_load(&cli->n_rep), 21);
    assert_int_equal(atomic_load(&cli->n_remote_reset), 0);
    assert_int_equal(atomic_load(&srv->n_remote_reset), 0);
    assert_int_equal(atomic_load(&cli->n_reset), 0);
    /* (the server's half-accepted connections that faulted before a
     * session do raise ms_handle_reset, as Ceph's "half accept state just
     * closed" does; its session connection lives on) */
    assert_true(msgr_conn_is_connected(sess_nth(srv, 0)));
    assert_int_equal(atomic_load(&srv->tag_out[MSGR_TAG_SESSION_RESET]), 0);
    /* the first attempt failed before its SESSION_RECONNECT */
    assert_int_equal(atomic_load(&cli->tag_out[MSGR_TAG_SESSION_RECONNECT]), 2);
    /* the frame failed at HANDLE_MESSAGE was read and dropped unprocessed
     * (the server resends it, delivered then): every frame read has a
     * fate, so the harness's frames-in == delivered + dropped balance
     * holds without correction */
    assert_int_equal(atomic_load(&cli->fate[MSGR_FATE_DROPPED]), 1);
    assert_int_equal(atomic_load(&srv->fate[MSGR_FATE_DROPPED]), 0);
    assert_true(msgr_conn_is_connected(c));
}

/*
 * Tracker 20230: an existing connection that is already closed must not
 * hold the peer's slot: after one side marks its connection down, both
 * sides send at once (a reconnect one way, a new connection the other)
 * and a session opens instead of sticking in WAIT. Expected: both
 * connections READY within the wait, later messages delivered both ways.
 */
static void
test_20230_closed_existing(void **state)
{
    struct h_world *w = *state;
    struct h_node *a = server_node(w, "osd.0", 0, 0);
    struct h_node *b = server_node(w, "osd.1", 1, 0);
    h_policy(a, MSGR_ENTITY_OSD, MSGR_POLICY_LOSSLESS_PEER);
    h_policy(b, MSGR_ENTITY_OSD, MSGR_POLICY_LOSSLESS_PEER);
    /* a reset may discard what was queued: gaps allowed, no duplicates */
    a->allow_gaps = b->allow_gaps = 1;
    h_node_start(a);
    h_node_start(b);
    struct msgr_addrvec aa, ba;
    h_node_addrs(a, &aa);
    h_node_addrs(b, &ba);
    struct msgr_conn *ab = h_get_conn(a, MSGR_ENTITY_OSD, &ba);
    send_on(a, ab, 0);
    WAIT_GE(w, &b->n_req, 1);
    struct msgr_conn *ba_c = h_get_conn(b, MSGR_ENTITY_OSD, &aa);
    assert_true(msgr_conn_is_connected(ba_c));
    msgr_conn_mark_down(ba_c);
    assert_false(msgr_conn_is_connected(ba_c));
    assert_true(wait_state(w, ba_c, "CLOSED"));

    send_on(a, ab, 0);
    struct msgr_conn *ba2 = h_get_conn(b, MSGR_ENTITY_OSD, &aa);
    assert_ptr_not_equal(ba2, ba_c);
    send_on(b, ba2, 0);
    assert_connected(w, ab);
    assert_connected(w, ba2);
    /* whatever the first round lost to a reset, the next goes through */
    int an = atomic_load(&a->n_req), bn = atomic_load(&b->n_req);
    struct msgr_conn *ab_now = h_get_conn(a, MSGR_ENTITY_OSD, &ba);
    struct msgr_conn *ba_now = h_get_conn(b, MSGR_ENTITY_OSD, &aa);
    send_on(a, ab_now, 0);
    send_on(b, ba_now, 0);
    WAIT_GE(w, &b->n_req, bn + 1);
    WAIT_GE(w, &a->n_req, an + 1);
    assert_string_not_equal(msgr_conn_state_name(ab_now), "WAIT");
    assert_string_not_equal(msgr_conn_state_name(ba_now), "WAIT");
    assert_true(msgr_conn_is_connected(ab_now));
    assert_true(msgr_conn_is_connected(ba_now));
}

/*
 * The restarted peer (PROTOCOL.md §8, PR #63413/#64122, reverted): a peer
 * comes back on the same IP and port with a new nonce while the server
 * still holds the stale connection to the old incarnation, whose
 * global_seq is higher than the new one's first CLIENT_IDENT. What our
 * implementation does: connections are looked up by the whole address
 * vector, nonce included, so the new incarnation never meets the stale
 * connection (§4.9 row 3 cannot apply; with the same nonce it would —
 * test_sim_reconnect covers that restart) and gets a session at once.
 * Asserted: a session within max_backoff (1 s) of the first send, and
 * its messages delivered.
 */
static void
test_restarted_peer_new_nonce(void **state)
{
    struct h_world *w = *state;
    struct h_node *srv = server_node(w, "osd.0", 0, 1);
    struct h_spec ps = {.label = "osd.1", .type = MSGR_ENTITY_OSD, .num = 1,
                        .bind = 1};
    struct h_node *p1 = h_node_new(w, &ps);
    h_policy(srv, MSGR_ENTITY_OSD, MSGR_POLICY_LOSSLESS_PEER);
    h_policy(p1, MSGR_ENTITY_OSD, MSGR_POLICY_LOSSLESS_PEER);
    h_node_start(srv);
    h_node_start(p1);
    struct msgr_addrvec to, pa;
    h_node_addrs(srv, &to);
    h_node_addrs(p1, &pa);
    /* raise the old incarnation's global_seq: several sessions */
    for (int i = 0; i < 5; i++) {
        struct msgr_conn *c = h_get_conn(p1, MSGR_ENTITY_OSD, &to);
        send_on(p1, c, 0);
        wait_echoes(p1, 0);
        if (i < 4) {
            msgr_conn_mark_down(c);
            h_release(w, c);
        }
    }
    int port = pa.v[0].port;
    h_node_destroy(p1);

    ps.label = "osd.1'";
    ps.bind_port_min = ps.bind_port_max = port;
    ps.on_host_of = p1;
    struct h_node *p2 = h_node_new(w, &ps);
    h_policy(p2, MSGR_ENTITY_OSD, MSGR_POLICY_LOSSLESS_PEER);
    h_node_start(p2);
    struct msgr_addrvec pa2;
    h_node_addrs(p2, &pa2);
    assert_int_equal(pa2.v[0].port, port);
    assert_int_not_equal(pa2.v[0].nonce, pa.v[0].nonce);

    msgr_time_ns t0 = h_now(w);
    struct msgr_conn *c = h_get_conn(p2, MSGR_ENTITY_OSD, &to);
    /* stream 1: the server orders requests per stream, and stream 0
     * was the old incarnation's */
    send_on(p2, c, 1);
    assert_true(h_wait_connected(w, c, 1, 1 * MSGR_NS_PER_S));
    msgr_time_ns took = h_now(w) - t0;
    for (int i = 0; i < 9; i++)
        send_on(p2, c, 1);
    wait_echoes(p2, 1);
    assert_true(took <= 1 * MSGR_NS_PER_S);
    assert_int_equal(atomic_load(&p2->n_rep), 10);
    assert_int_equal(atomic_load(&p2->n_remote_reset), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
        T(test_simple),
        T(test_simple_msgr2),
        T(test_timeout_server_side),
        T(test_stateful),
        T(test_stateless),
        T(test_client_standby),
        T(test_message),
        T(test_markdown),
        T(test_missing_server_ident2),
        T(test_38118_reverse_reconnect),
        T(test_38247_wrong_target),
        T(test_36612_fault_while_connecting),
        T(test_20230_closed_existing),
        T(test_restarted_peer_new_nonce),
#undef T
    };
    const char *filter = getenv("MSGR_TEST_FILTER");
    if (filter && *filter)
        cmocka_set_test_filter(filter);
    return cmocka_run_group_tests_name("catalog", tests, NULL, NULL);
}
