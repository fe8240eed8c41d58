/*
 * Messenger conformance: the public API against PROTOCOL.md §1.4-1.8, §2
 * and §4, modelled on Ceph's test_msgr (§6): SimpleTest, FeatureTest,
 * TimeoutTest, round trips under each policy pair, loopback, malformed
 * input, shutdown orders.
 *
 * The stack is chosen by MSGR_TEST_STACK (default "posix"); every wait
 * goes through the stack's wait_until, so the same cases can run on a
 * simulated stack (MSGR_TEST_STACK=sim: a host and a stack per
 * messenger). The malformed-input case talks raw TCP on posix and drives
 * a raw socket of a third host through the stack ops on the sim.
 *
 * Each case gets a fresh world (tests/support/harness.h); its teardown
 * shuts every messenger down and asserts that nothing leaked.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include "frame.h"
#include "harness.h"
#include "msgr/msgr.h"

#define N_ROUND_TRIP 200

static int
setup(void **state)
{
    struct h_world *w = h_world_new();
    if (!w)
        return -1;
    *state = w;
    return 0;
}

static int
teardown(void **state)
{
    h_world_finish(*state);
    return 0;
}

static struct h_node *
server_node(struct h_world *w, uint8_t type, int64_t num)
{
    struct h_spec s = {.label = "server", .type = type, .num = num,
                       .bind = 1, .echo = 1};
    return h_node_new(w, &s);
}

static struct h_node *
client_node(struct h_world *w, const char *label, uint8_t type, int64_t num)
{
    struct h_spec s = {.label = label, .type = type, .num = num};
    return h_node_new(w, &s);
}

/* SimpleTest's pair: osd.0 (stateless_server for clients) and client.1
 * (lossy_client to OSDs), started. */
static void
simple_pair(struct h_world *w, struct h_node **srv, struct h_node **cli)
{
    *srv = server_node(w, MSGR_ENTITY_OSD, 0);
    *cli = client_node(w, "client", MSGR_ENTITY_CLIENT, 1);
    h_policy(*srv, MSGR_ENTITY_CLIENT, MSGR_POLICY_STATELESS_SERVER);
    h_policy(*cli, MSGR_ENTITY_OSD, MSGR_POLICY_LOSSY_CLIENT);
    h_node_start(*srv);
    h_node_start(*cli);
}

/* ------------------------------------------------- 1, 2: round trips */

/* The perf counters of a pair of messengers: of their one stack when they
 * share it (posix), the sum of both stacks when each has its own (sim).
 * Either way both ends of every message and every byte are counted. */
static void
pair_perf(struct msgr *a, struct msgr *b, struct msgr_perf *out)
{
    msgr_get_perf(a, out);
    if (msgr_get_stack(a) == msgr_get_stack(b))
        return;
    struct msgr_perf pb;
    msgr_get_perf(b, &pb);
    out->msgs_in += pb.msgs_in;
    out->msgs_out += pb.msgs_out;
    out->bytes_in += pb.bytes_in;
    out->bytes_out += pb.bytes_out;
    out->active_conns += pb.active_conns;
}

struct perf_arg {
    struct msgr *a, *b;
};

static int
perf_settled(void *arg)
{
    struct perf_arg *a = arg;
    struct msgr_perf p;
    pair_perf(a->a, a->b, &p);
    return p.bytes_in == p.bytes_out;
}

struct ge2 {
    _Atomic int *a, *b;
    int v;
};

static int
both_ge(void *arg)
{
    struct ge2 *g = arg;
    return atomic_load(g->a) >= g->v && atomic_load(g->b) >= g->v;
}

/*
 * N requests client -> server, each echoed back on m->conn; exactly once,
 * in order, intact, with the right source, upcalls and counters.
 */
static void
round_trip_case(struct h_world *w, uint8_t stype, uint8_t ctype,
                enum msgr_policy_kind skind, enum msgr_policy_kind ckind,
                int rev0)
{
    struct h_spec ss = {.label = "server", .type = stype, .num = 0,
                        .bind = 1, .echo = 1};
    struct h_spec cs = {.label = "client", .type = ctype, .num = 1,
                        .force_rev0 = rev0};
    struct h_node *srv = h_node_new(w, &ss);
    struct h_node *cli = h_node_new(w, &cs);
    h_policy(srv, ctype, skind);
    h_policy(cli, stype, ckind);
    int rev = rev0 ? 0 : 1;
    srv->expect_rev = cli->expect_rev = rev;
    srv->expect_src_type = ctype;
    srv->expect_src_num = 1;
    srv->check_src_num = 1;
    cli->expect_src_type = stype;
    cli->expect_src_num = 0;
    cli->check_src_num = 1;
    h_node_start(srv);
    h_node_start(cli);
    struct msgr_addrvec to;
    h_node_addrs(srv, &to);
    assert_int_equal(to.n, 1);
    assert_int_equal(to.v[0].type, MSGR_ADDR_MSGR2);
    assert_int_not_equal(to.v[0].port, 0);

    h_round_trip(cli, stype, &to, 0, N_ROUND_TRIP, 1);

    /* exactly once, both ways */
    h_settle(w);
    assert_int_equal(atomic_load(&srv->n_req), N_ROUND_TRIP);
    assert_int_equal(atomic_load(&srv->n_echo), N_ROUND_TRIP);
    assert_int_equal(atomic_load(&srv->n_echo_fail), 0);
    assert_int_equal(atomic_load(&cli->n_rep), N_ROUND_TRIP);
    assert_int_equal(atomic_load(&cli->n_req), 0);
    assert_int_equal(atomic_load(&srv->n_rep), 0);
    assert_int_equal(atomic_load(&srv->errors), 0);
    assert_int_equal(atomic_load(&cli->errors), 0);

    /* one session: connect once on the client, accept once on the server */
    assert_true(h_wait_ge(w, &cli->n_connect, 1, H_WAIT_NS));
    assert_true(h_wait_ge(w, &srv->n_accept, 1, H_WAIT_NS));
    assert_int_equal(atomic_load(&cli->n_connect), 1);
    assert_int_equal(atomic_load(&srv->n_accept), 1);
    assert_int_equal(atomic_load(&cli->n_accept), 0);
    assert_int_equal(atomic_load(&srv->n_connect), 0);
    assert_int_equal(atomic_load(&cli->n_reset), 0);
    assert_int_equal(atomic_load(&srv->n_reset), 0);
    assert_int_equal(atomic_load(&cli->n_remote_reset), 0);
    assert_int_equal(atomic_load(&srv->n_remote_reset), 0);
    assert_int_equal(atomic_load(&cli->connect_peer_type), stype);
    assert_int_equal(atomic_load(&srv->accept_peer_type), ctype);
    assert_int_equal(atomic_load(&cli->connect_rev), rev);
    assert_int_equal(atomic_load(&srv->accept_rev), rev);

    /* the connection the client used */
    struct msgr_conn *c = h_get_conn(cli, stype, &to);
    assert_ptr_equal(c, atomic_load(&cli->last_connect));
    assert_true(msgr_conn_is_connected(c));
    assert_false(msgr_conn_is_loopback(c));
    assert_int_equal(msgr_conn_peer_type(c), stype);
    assert_int_equal(msgr_conn_rev(c), rev);
    struct msgr_entity_name pn = msgr_conn_peer_name(c);
    assert_int_equal(pn.type, stype);
    assert_int_equal(pn.num, 0);
    assert_ptr_equal(msgr_conn_messenger(c), cli->m);
    assert_true(msgr_conn_features(c) & MSGR_FEATURE_MSG_ADDR2);
    struct msgr_addrvec ident;
    msgr_conn_peer_ident_addrs(c, &ident);
    assert_true(msgr_addrvec_equal(&ident, &to));

    /* fates: lossless sessions get every message acknowledged, lossy ones
     * just sent; nothing dropped */
    int lossy = msgr_policy_make(skind, 0).lossy;
    int final = lossy ? MSGR_FATE_SENT : MSGR_FATE_ACKED;
    struct ge2 g = {&cli->fate[final], &srv->fate[final], N_ROUND_TRIP};
    assert_true(h_wait(w, both_ge, &g, H_WAIT_NS));
    h_settle(w);
    for (int i = 0; i < 2; i++) {
        struct h_node *n = i ? srv : cli;
        assert_int_equal(atomic_load(&n->fate[MSGR_FATE_QUEUED]), N_ROUND_TRIP);
        assert_int_equal(atomic_load(&n->fate[MSGR_FATE_SENT]), N_ROUND_TRIP);
        assert_int_equal(atomic_load(&n->fate[MSGR_FATE_ACKED]),
                         lossy ? 0 : N_ROUND_TRIP);
        assert_int_equal(atomic_load(&n->fate[MSGR_FATE_DELIVERED]),
                         N_ROUND_TRIP);
        assert_int_equal(atomic_load(&n->fate[MSGR_FATE_DROPPED]), 0);
        assert_int_equal(atomic_load(&n->fate[MSGR_FATE_DUPLICATE]), 0);
        assert_int_equal(atomic_load(&n->msg_frames_out), N_ROUND_TRIP);
        assert_int_equal(atomic_load(&n->msg_frames_in), N_ROUND_TRIP);
        assert_int_equal(atomic_load(&n->births), 1);
        assert_int_equal(atomic_load(&n->deaths), 0);
        assert_int_equal(atomic_load(&n->readies), 1);
        assert_int_equal(atomic_load(&n->nfaults), 0);
        assert_int_equal(atomic_load(&n->n_dispatch), N_ROUND_TRIP);
        assert_int_equal(atomic_load(&n->n_fast), 0);
    }

    /* perf counters: both ends of every message and every byte */
    struct perf_arg pa = {cli->m, srv->m};
    assert_true(h_wait(w, perf_settled, &pa, H_WAIT_NS));
    struct msgr_perf p;
    pair_perf(cli->m, srv->m, &p);
    assert_int_equal(p.msgs_out, 2 * N_ROUND_TRIP);
    assert_int_equal(p.msgs_in, 2 * N_ROUND_TRIP);
    assert_int_equal(p.active_conns, 2);
    uint64_t payload = 0;
    for (uint64_t i = 0; i < N_ROUND_TRIP; i++) {
        uint32_t fe, mi, da;
        h_sizes_mixed(i, &fe, &mi, &da);
        payload += sizeof(struct h_payload) + fe + mi + da;
    }
    assert_true(p.bytes_out >= 2 * payload);
    assert_int_equal(p.bytes_in, p.bytes_out);
    struct msgr_perf p2;
    pair_perf(srv->m, cli->m, &p2);
    assert_int_equal(p2.msgs_out, p.msgs_out);
    if (msgr_get_stack(cli->m) != msgr_get_stack(srv->m)) {
        /* a stack each: each sees its own end */
        struct msgr_perf pc, ps;
        msgr_get_perf(cli->m, &pc);
        msgr_get_perf(srv->m, &ps);
        assert_int_equal(pc.msgs_out, N_ROUND_TRIP);
        assert_int_equal(pc.msgs_in, N_ROUND_TRIP);
        assert_int_equal(ps.msgs_out, N_ROUND_TRIP);
        assert_int_equal(ps.msgs_in, N_ROUND_TRIP);
        assert_int_equal(pc.active_conns, 1);
        assert_int_equal(ps.active_conns, 1);
        assert_int_equal(pc.bytes_out, ps.bytes_in);
        assert_int_equal(ps.bytes_out, pc.bytes_in);
    }
}

static void
test_round_trip_lossy_client(void **state)
{
    round_trip_case(*state, MSGR_ENTITY_OSD, MSGR_ENTITY_CLIENT,
                    MSGR_POLICY_STATELESS_SERVER, MSGR_POLICY_LOSSY_CLIENT, 0);
}

static void
test_round_trip_lossless_client(void **state)
{
    round_trip_case(*state, MSGR_ENTITY_MDS, MSGR_ENTITY_CLIENT,
                    MSGR_POLICY_STATEFUL_SERVER, MSGR_POLICY_LOSSLESS_CLIENT,
                    0);
}

static void
test_round_trip_lossless_peer(void **state)
{
    round_trip_case(*state, MSGR_ENTITY_OSD, MSGR_ENTITY_OSD,
                    MSGR_POLICY_LOSSLESS_PEER, MSGR_POLICY_LOSSLESS_PEER, 0);
}

static void
test_round_trip_lossless_peer_reuse(void **state)
{
    round_trip_case(*state, MSGR_ENTITY_MON, MSGR_ENTITY_MON,
                    MSGR_POLICY_LOSSLESS_PEER_REUSE,
                    MSGR_POLICY_LOSSLESS_PEER_REUSE, 0);
}

/* 2. msgr2.0: the client forces rev0; both ends agree on it. */
static void
test_rev0(void **state)
{
    round_trip_case(*state, MSGR_ENTITY_OSD, MSGR_ENTITY_CLIENT,
                    MSGR_POLICY_STATELESS_SERVER, MSGR_POLICY_LOSSY_CLIENT, 1);
}

static void
test_rev0_lossless(void **state)
{
    round_trip_case(*state, MSGR_ENTITY_OSD, MSGR_ENTITY_OSD,
                    MSGR_POLICY_LOSSLESS_PEER, MSGR_POLICY_LOSSLESS_PEER, 1);
}

/* ----------------------------------------------------------- 3. rebind */

static void
test_rebind(void **state)
{
    struct h_world *w = *state;
    struct h_node *srv, *cli;
    simple_pair(w, &srv, &cli);
    struct msgr_addrvec old;
    h_node_addrs(srv, &old);
    h_round_trip(cli, MSGR_ENTITY_OSD, &old, 0, 20, 0);
    struct msgr_conn *c1 = h_get_conn(cli, MSGR_ENTITY_OSD, &old);
    assert_true(msgr_conn_is_connected(c1));

    uint64_t nonce = msgr_get_nonce(srv->m);
    int old_port = old.v[0].port;
    int avoid[10];
    for (int i = 0; i < 10; i++)
        avoid[i] = old_port + 1 + i;
    assert_int_equal(msgr_rebind(srv->m, avoid, 10), 0);

    struct msgr_addrvec now;
    h_node_addrs(srv, &now);
    assert_int_equal(now.n, 1);
    int port = now.v[0].port;
    assert_int_not_equal(port, 0);
    assert_int_not_equal(port, old_port);
    for (int i = 0; i < 10; i++)
        assert_int_not_equal(port, avoid[i]);
    assert_int_equal(msgr_get_nonce(srv->m), nonce + 1000000);
    assert_int_equal(now.v[0].nonce, (uint32_t)(nonce + 1000000));
    assert_false(msgr_addrvec_equal(&now, &old));

    /* rebind marked every connection down: the client's lossy session is
     * gone (a lossy fault: ms_handle_reset) */
    assert_true(h_wait_connected(w, c1, 0, H_WAIT_NS));
    assert_true(h_wait_ge(w, &cli->n_reset, 1, H_WAIT_NS));

    /* a new session to the new address works */
    h_round_trip(cli, MSGR_ENTITY_OSD, &now, 0, 20, 0);
    struct msgr_conn *c2 = h_get_conn(cli, MSGR_ENTITY_OSD, &now);
    assert_ptr_not_equal(c1, c2);
    assert_true(msgr_conn_is_connected(c2));
    assert_int_equal(atomic_load(&cli->n_connect), 2);
    assert_int_equal(atomic_load(&srv->n_req), 40);
}

/* ------------------------------------------------------- 4. mark down */

static void
test_mark_down(void **state)
{
    struct h_world *w = *state;
    struct h_node *srv, *cli;
    simple_pair(w, &srv, &cli);
    struct msgr_addrvec to;
    h_node_addrs(srv, &to);

    /* Connection::mark_down: closes, no ms_handle_reset */
    h_round_trip(cli, MSGR_ENTITY_OSD, &to, 0, 10, 0);
    struct msgr_conn *c1 = h_get_conn(cli, MSGR_ENTITY_OSD, &to);
    assert_true(msgr_conn_is_connected(c1));
    msgr_conn_mark_down(c1);
    assert_true(h_wait_connected(w, c1, 0, H_WAIT_NS));
    /* the server's lossy session ends with the socket: a reset there */
    assert_true(h_wait_ge(w, &srv->n_reset, 1, H_WAIT_NS));
    h_settle(w);
    assert_int_equal(atomic_load(&cli->n_reset), 0);
    assert_int_equal(atomic_load(&cli->n_remote_reset), 0);
    assert_string_equal(msgr_conn_state_name(c1), "CLOSED");
    /* a marked-down connection refuses messages; the caller keeps them */
    struct msgr_msg *m = h_msg_new(cli, H_MSG_REQ, 1, 0, 0, 0, 0);
    msgr_msg_ref(m);
    assert_true(msgr_conn_send_message(c1, m) < 0);
    assert_int_equal(atomic_load(&m->refs), 3); /* ours x2 + tracker */
    msgr_msg_unref(m);
    msgr_msg_unref(m);

    /* a new send makes a new session */
    h_round_trip(cli, MSGR_ENTITY_OSD, &to, 0, 10, 0);
    struct msgr_conn *c2 = h_get_conn(cli, MSGR_ENTITY_OSD, &to);
    assert_ptr_not_equal(c1, c2);
    assert_true(msgr_conn_is_connected(c2));
    assert_int_equal(atomic_load(&cli->n_connect), 2);
    assert_int_equal(atomic_load(&srv->n_accept), 2);

    /* msgr_mark_down(addrs): closes with ms_handle_reset */
    msgr_mark_down(cli->m, &to);
    assert_true(h_wait_connected(w, c2, 0, H_WAIT_NS));
    assert_true(h_wait_ge(w, &cli->n_reset, 1, H_WAIT_NS));
    h_settle(w);
    assert_int_equal(atomic_load(&cli->n_reset), 1);

    /* marking down an address with no connection does nothing */
    struct msgr_addrvec other = to;
    other.v[0].port = (uint16_t)(other.v[0].port + 1);
    msgr_mark_down(cli->m, &other);
    h_settle(w);
    assert_int_equal(atomic_load(&cli->n_reset), 1);

    /* server shutdown: the lossy client's session ends, a later send on
     * it fails and the caller keeps the message */
    h_round_trip(cli, MSGR_ENTITY_OSD, &to, 0, 10, 0);
    struct msgr_conn *c3 = h_get_conn(cli, MSGR_ENTITY_OSD, &to);
    assert_true(msgr_conn_is_connected(c3));
    h_node_shutdown(srv);
    h_node_wait(srv);
    assert_true(h_wait_connected(w, c3, 0, H_WAIT_NS));
    assert_true(h_wait_ge(w, &cli->n_reset, 2, H_WAIT_NS));
    m = h_msg_new(cli, H_MSG_REQ, 1, 1, 0, 0, 0);
    int e = msgr_conn_send_message(c3, m);
    assert_true(e < 0);
    assert_int_equal(atomic_load(&m->refs), 2);
    msgr_msg_unref(m);
    assert_int_equal(atomic_load(&srv->n_req), 30);
}

/* -------------------------------------------------------- 5. loopback */

static void
loopback_case(struct h_world *w, struct h_node *a, int bound)
{
    a->expect_src_type = a->name.type;
    a->expect_src_num = a->name.num;
    a->check_src_num = 1;
    struct msgr_conn *lc = h_hold(w, msgr_get_loopback_connection(a->m));
    assert_true(msgr_conn_is_loopback(lc));
    assert_true(msgr_conn_is_connected(lc));
    assert_int_equal(msgr_conn_peer_type(lc), a->name.type);

    /* on the loopback connection */
    struct msgr_msg *m = h_msg_new(a, H_MSG_REQ, 0, 0, 10, 20, 4096);
    assert_int_equal(h_conn_send(lc, m), 0);
    a->tx_seq[0] = 1;
    assert_true(h_wait_ge(w, &a->n_req, 1, H_WAIT_NS));

    /* to my own address: the loopback connection again */
    struct msgr_addrvec me;
    h_node_addrs(a, &me);
    if (bound) {
        m = h_msg_new(a, H_MSG_REQ, 0, 1, 0, 0, 100);
        assert_int_equal(h_send(a, m, a->name.type, &me), 0);
        a->tx_seq[0] = 2;
        assert_true(h_wait_ge(w, &a->n_req, 2, H_WAIT_NS));
        struct msgr_conn *c = h_get_conn(a, a->name.type, &me);
        assert_ptr_equal(c, lc);
    }
    h_settle(w);
    int want = bound ? 2 : 1;
    assert_int_equal(atomic_load(&a->n_req), want);
    assert_int_equal(atomic_load(&a->n_loopback), want);
    assert_int_equal(atomic_load(&a->fate[MSGR_FATE_DELIVERED]), want);
    assert_int_equal(atomic_load(&a->msg_frames_out), 0);
    assert_int_equal(atomic_load(&a->births), 0);
    assert_int_equal(atomic_load(&a->errors), 0);

    /* after shutdown the loopback is down and refuses messages */
    h_node_shutdown(a);
    assert_false(msgr_conn_is_connected(lc));
    m = h_msg_new(a, H_MSG_REQ, 0, 2, 0, 0, 0);
    assert_true(h_conn_send(lc, m) < 0);
    if (bound) {
        m = h_msg_new(a, H_MSG_REQ, 0, 3, 0, 0, 0);
        assert_true(h_send(a, m, a->name.type, &me) < 0);
    }
    h_node_wait(a);
    assert_int_equal(atomic_load(&a->n_req), want);
}

static void
test_loopback(void **state)
{
    struct h_world *w = *state;
    struct h_spec s = {.label = "osd.0", .type = MSGR_ENTITY_OSD, .num = 0,
                       .bind = 1};
    struct h_node *a = h_node_new(w, &s);
    h_node_start(a);
    loopback_case(w, a, 1);
}

static void
test_loopback_unbound(void **state)
{
    struct h_world *w = *state;
    struct h_node *a = client_node(w, "client.7", MSGR_ENTITY_CLIENT, 7);
    h_node_start(a);
    loopback_case(w, a, 0);
}

/* Shutdown with loopback messages still queued: each one is delivered or
 * reported dropped, and freed. */
static void
test_loopback_shutdown_in_flight(void **state)
{
    struct h_world *w = *state;
    struct h_spec s = {.label = "osd.0", .type = MSGR_ENTITY_OSD, .num = 0,
                       .bind = 1};
    struct h_node *a = h_node_new(w, &s);
    h_node_start(a);
    struct msgr_conn *lc = h_hold(w, msgr_get_loopback_connection(a->m));
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 300; i++) {
            struct msgr_msg *m = h_msg_new(a, H_MSG_REQ, 0, a->tx_seq[0]++,
                                           0, 0, (uint32_t)(i % 7) * 1000);
            assert_int_equal(h_conn_send(lc, m), 0);
        }
        if (round == 0)
            assert_true(h_wait_ge(w, &a->n_req, 300, H_WAIT_NS));
    }
    /* no waiting: the second burst is in the queues */
    h_node_shutdown(a);
    h_node_wait(a);
    int got = atomic_load(&a->n_req);
    assert_true(got >= 300 && got <= 600);
    assert_int_equal(atomic_load(&a->errors), 0);
    /* the teardown checks that every one of the 600 has a fate */
}

/* ------------------------------------ 6. server policy, no session */

static void
test_server_policy_no_session(void **state)
{
    struct h_world *w = *state;
    struct h_spec sa = {.label = "osd.0", .type = MSGR_ENTITY_OSD, .num = 0,
                        .bind = 1};
    struct h_spec sb = {.label = "client.1", .type = MSGR_ENTITY_CLIENT,
                        .num = 1, .bind = 1};
    struct h_node *a = h_node_new(w, &sa);
    struct h_node *b = h_node_new(w, &sb);
    h_policy(a, MSGR_ENTITY_CLIENT, MSGR_POLICY_STATELESS_SERVER);
    h_policy(a, MSGR_ENTITY_MDS, MSGR_POLICY_STATEFUL_SERVER);
    h_node_start(a);
    h_node_start(b);
    struct msgr_addrvec to;
    h_node_addrs(b, &to);

    uint8_t types[2] = {MSGR_ENTITY_CLIENT, MSGR_ENTITY_MDS};
    for (int i = 0; i < 2; i++) {
        struct msgr_msg *m = h_msg_new(a, H_MSG_REQ, 0, (uint64_t)i, 0, 0, 64);
        struct h_tracked *t = h_tracked_of(w, m);
        assert_non_null(t);
        assert_int_equal(msgr_send_message(a->m, m, types[i], &to), 0);
        /* dropped at once: the messenger let go of its reference */
        assert_int_equal(atomic_load(&m->refs), 1);
        assert_int_equal(atomic_load(&t->fate[MSGR_FATE_DROPPED]), 1);
        assert_int_equal(atomic_load(&t->fate[MSGR_FATE_QUEUED]), 0);
    }
    h_settle(w);
    h_idle(w, 200 * MSGR_NS_PER_MS);
    h_settle(w);
    /* no connection on either side */
    assert_int_equal(atomic_load(&a->fate[MSGR_FATE_DROPPED]), 2);
    assert_int_equal(atomic_load(&a->births), 0);
    assert_int_equal(atomic_load(&b->births), 0);
    assert_int_equal(atomic_load(&b->n_req), 0);
    assert_int_equal(atomic_load(&b->n_accept), 0);
    struct msgr_perf p;
    msgr_get_perf(a->m, &p);
    assert_int_equal(p.active_conns, 0);
    assert_int_equal(p.bytes_out, 0);
}

/* ------------------------------------------------------ 7. refused */

static void
test_refused(void **state)
{
    struct h_world *w = *state;
    /* a port that was just listening and is now closed: a messenger bound
     * above the range every other server scans (6800..7568), destroyed */
    int base = 7600 + (int)(w->ops->random_u64(w->st) % 300);
    struct h_spec sx = {.label = "gone", .type = MSGR_ENTITY_OSD, .num = 9,
                        .bind = 1, .bind_port_min = base,
                        .bind_port_max = 7999};
    struct h_node *x = h_node_new(w, &sx);
    h_node_start(x);
    struct msgr_addrvec to;
    h_node_addrs(x, &to);
    h_node_destroy(x);

    struct h_node *cli = client_node(w, "client", MSGR_ENTITY_CLIENT, 1);
    h_policy(cli, MSGR_ENTITY_OSD, MSGR_POLICY_LOSSY_CLIENT);
    h_node_start(cli);
    struct msgr_msg *m = h_msg_new(cli, H_MSG_REQ, 0, 0, 0, 0, 10);
    assert_int_equal(h_send(cli, m, MSGR_ENTITY_OSD, &to), 0);
    assert_true(h_wait_ge(w, &cli->n_refused, 1, H_WAIT_NS));
    struct msgr_conn *c = h_get_conn(cli, MSGR_ENTITY_OSD, &to);
    assert_false(msgr_conn_is_connected(c));
    assert_int_equal(atomic_load(&cli->n_connect), 0);
    assert_true(h_fault_count(cli, -ECONNREFUSED) >= 1);
}

/* ----------------------------------------------------- 8. features */

static void
test_features(void **state)
{
    struct h_world *w = *state;
    const uint64_t bit = 1ull << 13;
    assert_true(MSGR_FEATURES_DEFAULT & bit);
    struct h_node *srv = server_node(w, MSGR_ENTITY_OSD, 0);
    struct msgr_policy sp = msgr_policy_make(MSGR_POLICY_STATELESS_SERVER, bit);
    h_policy_custom(srv, MSGR_ENTITY_CLIENT, &sp);
    h_node_start(srv);
    struct msgr_addrvec to;
    h_node_addrs(srv, &to);

    /* a client lacking the bit never gets a session */
    struct h_node *c1 = client_node(w, "client.1", MSGR_ENTITY_CLIENT, 1);
    struct msgr_policy cp = msgr_policy_make(MSGR_POLICY_LOSSY_CLIENT, 0);
    cp.features_supported &= ~bit;
    h_policy_custom(c1, MSGR_ENTITY_OSD, &cp);
    h_node_start(c1);
    c1->tx_seq[0] = 1;
    struct msgr_msg *m = h_msg_new(c1, H_MSG_REQ, 0, 0, 0, 0, 10);
    assert_int_equal(h_send(c1, m, MSGR_ENTITY_OSD, &to), 0);
    struct msgr_conn *conn = h_get_conn(c1, MSGR_ENTITY_OSD, &to);
    assert_false(h_wait_connected(w, conn, 1, 1 * MSGR_NS_PER_S));
    assert_int_equal(atomic_load(&c1->n_connect), 0);
    assert_int_equal(atomic_load(&srv->n_accept), 0);
    assert_int_equal(atomic_load(&srv->n_req), 0);
    assert_true(h_fault_count(c1, MSGR_EFEATURES) >= 1);

    /* one supporting it connects and exchanges messages */
    struct h_node *c2 = client_node(w, "client.2", MSGR_ENTITY_CLIENT, 2);
    h_policy(c2, MSGR_ENTITY_OSD, MSGR_POLICY_LOSSY_CLIENT);
    h_node_start(c2);
    h_round_trip(c2, MSGR_ENTITY_OSD, &to, 1, 10, 0);
    struct msgr_conn *conn2 = h_get_conn(c2, MSGR_ENTITY_OSD, &to);
    assert_true(msgr_conn_is_connected(conn2));
    assert_true(msgr_conn_features(conn2) & bit);
    assert_false(msgr_conn_is_connected(conn));
    assert_int_equal(atomic_load(&c1->n_rep), 0);
}

/* ------------------------------------------------ 9. idle timeout */

static void
test_idle_timeout(void **state)
{
    struct h_world *w = *state;
    struct h_node *srv = server_node(w, MSGR_ENTITY_OSD, 0);
    struct h_spec cs = {.label = "client", .type = MSGR_ENTITY_CLIENT,
                        .num = 1, .idle_timeout_ns = 1 * MSGR_NS_PER_S};
    struct h_node *cli = h_node_new(w, &cs);
    h_policy(srv, MSGR_ENTITY_CLIENT, MSGR_POLICY_STATELESS_SERVER);
    h_policy(cli, MSGR_ENTITY_OSD, MSGR_POLICY_LOSSY_CLIENT);
    h_node_start(srv);
    h_node_start(cli);
    struct msgr_addrvec to;
    h_node_addrs(srv, &to);
    h_round_trip(cli, MSGR_ENTITY_OSD, &to, 0, 5, 0);
    struct msgr_conn *c = h_get_conn(cli, MSGR_ENTITY_OSD, &to);
    assert_true(msgr_conn_is_connected(c));
    msgr_time_ns t0 = h_now(w);
    /* TimeoutTest: after 2.5 s idle the session is gone */
    assert_true(h_wait_connected(w, c, 0, 2500 * MSGR_NS_PER_MS));
    msgr_time_ns took = h_now(w) - t0;
    assert_true(took >= 500 * MSGR_NS_PER_MS); /* not before ~1 s idle */
    assert_true(h_fault_count(cli, -ETIMEDOUT) >= 1);
    assert_true(h_wait_ge(w, &cli->n_reset, 1, H_WAIT_NS));
    /* the server's end follows */
    assert_true(h_wait_ge(w, &srv->deaths, 1, H_WAIT_NS));
    /* and a new session can be made */
    h_round_trip(cli, MSGR_ENTITY_OSD, &to, 0, 5, 0);
    assert_int_equal(atomic_load(&cli->n_connect), 2);
}

/* --------------------------------------------------- 10. keepalive */

struct ka_arg {
    struct msgr_conn *c;
    msgr_time_ns after;
};

static int
ka_acked(void *arg)
{
    struct ka_arg *a = arg;
    return msgr_conn_last_keepalive_ack(a->c) > a->after;
}

static void
test_keepalive(void **state)
{
    struct h_world *w = *state;
    struct h_node *srv, *cli;
    simple_pair(w, &srv, &cli);
    struct msgr_addrvec to;
    h_node_addrs(srv, &to);
    /* asked for before the session exists: sent once it is ready */
    struct msgr_conn *c = h_get_conn(cli, MSGR_ENTITY_OSD, &to);
    assert_int_equal(msgr_conn_last_keepalive_ack(c), 0);
    msgr_conn_send_keepalive(c);
    struct ka_arg a = {c, 0};
    assert_true(h_wait(w, ka_acked, &a, H_WAIT_NS));
    assert_true(msgr_conn_is_connected(c));
    msgr_time_ns first = msgr_conn_last_keepalive_ack(c);
    /* again on the established session */
    h_idle(w, 2 * MSGR_NS_PER_MS);
    msgr_conn_send_keepalive(c);
    a.after = first;
    assert_true(h_wait(w, ka_acked, &a, H_WAIT_NS));
    /* a keepalive is not a message */
    h_settle(w);
    assert_int_equal(atomic_load(&srv->n_dispatch), 0);
    assert_int_equal(atomic_load(&cli->fate[MSGR_FATE_QUEUED]), 0);
    /* and the loopback ignores keepalives */
    struct msgr_conn *lc = h_hold(w, msgr_get_loopback_connection(cli->m));
    msgr_conn_send_keepalive(lc);
    assert_int_equal(msgr_conn_last_keepalive_ack(lc), 0);
}

/* ---------------------------------------------- 11. malformed input */

/*
 * A misbehaving peer is a plan of raw steps, run either on a real socket
 * (posix, blocking, from the test's thread) or on a sim socket of a third
 * host driven through the stack ops from that host's worker. After the
 * last step the peer waits for the server to close, unless the plan ends
 * by closing itself.
 */
enum raw_op {
    RAW_BANNERS,    /* read the server's banner (must offer rev1), send ours */
    RAW_READ_HELLO, /* read one whole frame (rev1): the server's HELLO */
    RAW_WRITE,      /* write bytes */
    RAW_CLOSE,      /* close gracefully (FIN) and stop */
};

#define RAW_MAX_STEPS 4

struct raw_step {
    enum raw_op op;
    uint8_t *buf; /* RAW_WRITE: owned by the plan */
    size_t len;
};

struct raw_plan {
    struct raw_step step[RAW_MAX_STEPS];
    int n;
    int want; /* the error the server must report */
};

/* What a run saw, checked on the test's thread. */
struct raw_result {
    int banner_ok; /* every banner read offered rev1 */
    int frame_tag; /* the tag RAW_READ_HELLO read; -1 none */
    int closed;    /* the server closed (EOF or reset), or we did */
    char err[160]; /* the first failure of the run itself */
};

static void
plan_add(struct raw_plan *p, enum raw_op op, const void *buf, size_t len)
{
    assert_true(p->n < RAW_MAX_STEPS);
    struct raw_step *st = &p->step[p->n++];
    st->op = op;
    st->buf = NULL;
    st->len = len;
    if (op == RAW_WRITE) {
        st->buf = malloc(len);
        assert_non_null(st->buf);
        memcpy(st->buf, buf, len);
    }
}

static void
plan_free(struct raw_plan *p)
{
    for (int i = 0; i < p->n; i++)
        free(p->step[i].buf);
    p->n = 0;
}

/* -- posix: a real socket on 127.0.0.1 -- */

static int
raw_open(const struct msgr_addr *a)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons(a->port);
    memcpy(&sin.sin_addr, a->ip, 4);
    if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int
raw_write(int fd, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n > 0) {
        ssize_t r = send(fd, b, n, MSG_NOSIGNAL);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        b += r;
        n -= (size_t)r;
    }
    return 0;
}

static int
raw_read(int fd, void *p, size_t n)
{
    uint8_t *b = p;
    while (n > 0) {
        ssize_t r = recv(fd, b, n, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        b += r;
        n -= (size_t)r;
    }
    return 0;
}

/* 1 when the peer closed (EOF or reset), 0 on timeout. */
static int
raw_wait_closed(int fd)
{
    uint8_t buf[4096];
    for (;;) {
        ssize_t r = recv(fd, buf, sizeof(buf), 0);
        if (r > 0)
            continue;
        if (r == 0)
            return 1;
        if (errno == EINTR)
            continue;
        return errno == ECONNRESET;
    }
}

/* Runs a plan on a real socket. */
static void
raw_run_posix(const struct msgr_addr *addr, const struct raw_plan *p,
              struct raw_result *res)
{
    int fd = raw_open(addr);
    assert_true(fd >= 0);
    for (int i = 0; i < p->n; i++) {
        const struct raw_step *st = &p->step[i];
        switch (st->op) {
        case RAW_BANNERS: {
            uint8_t b[MSGR_BANNER_LEN];
            assert_int_equal(raw_read(fd, b, sizeof(b)), 0);
            uint64_t sup = 0, req = 0;
            res->banner_ok = msgr_banner_decode(b, &sup, &req) == 0 &&
                             (sup & MSGR2_FEATURE_REVISION_1);
            msgr_banner_encode(b, MSGR2_FEATURE_REVISION_1, 0);
            assert_int_equal(raw_write(fd, b, sizeof(b)), 0);
            break;
        }
        case RAW_READ_HELLO: {
            uint8_t pre[MSGR_PREAMBLE_LEN];
            assert_int_equal(raw_read(fd, pre, sizeof(pre)), 0);
            struct msgr_frame_limits lim;
            msgr_frame_limits_default(&lim);
            struct msgr_preamble pr;
            assert_int_equal(msgr_preamble_decode(pre, &lim, &pr), 0);
            size_t n = msgr_frame_body_len(&pr, 1);
            uint8_t *body = malloc(n + 1);
            assert_non_null(body);
            int r = raw_read(fd, body, n);
            free(body);
            assert_int_equal(r, 0);
            res->frame_tag = pr.tag;
            break;
        }
        case RAW_WRITE:
            assert_int_equal(raw_write(fd, st->buf, st->len), 0);
            break;
        case RAW_CLOSE:
            close(fd);
            res->closed = 1;
            return;
        }
    }
    /* the server closes this socket */
    res->closed = raw_wait_closed(fd);
    close(fd);
}

/* -- sim: a socket of a third host, through the stack ops -- */

/* Static, with copies of the plan and the result: if the test fails with
 * the socket still open, its callbacks (run by the teardown) find valid
 * memory. */
struct raw_sim {
    const struct msgr_stack_ops *ops;
    struct msgr_worker *wk;
    struct msgr_socket *s;
    struct msgr_addr to;
    struct raw_plan plan_copy;
    struct raw_result res_copy;
    const struct raw_plan *plan;
    struct raw_result *res;
    int step, phase, connected;
    uint8_t in[64];       /* a banner or a preamble */
    size_t need, got;     /* of the current read */
    size_t woff;          /* of the current write */
    uint8_t out_banner[MSGR_BANNER_LEN];
    int done;             /* set on the worker; the main thread waits */
};

static void
raw_sim_finish(struct raw_sim *r, int closed, const char *err)
{
    if (err && !r->res->err[0])
        snprintf(r->res->err, sizeof(r->res->err), "%s", err);
    r->res->closed = closed;
    if (r->s)
        r->ops->close(r->s, err != NULL);
    r->s = NULL;
    r->done = 1;
}

/* Reads into r->in until r->need bytes (or discards them when r->in is
 * too small). 1: complete; 0: wait for READ; -1: finished (error). */
static int
raw_sim_read(struct raw_sim *r, int discard)
{
    uint8_t scratch[4096];
    while (r->got < r->need) {
        size_t want = r->need - r->got;
        struct iovec iov;
        if (discard) {
            iov.iov_base = scratch;
            iov.iov_len = want < sizeof(scratch) ? want : sizeof(scratch);
        } else {
            iov.iov_base = r->in + r->got;
            iov.iov_len = want;
        }
        ssize_t n = r->ops->readv(r->s, &iov, 1);
        if (n == -EAGAIN) {
            r->ops->io_want(r->s, MSGR_IO_READ);
            return 0;
        }
        if (n <= 0) {
            raw_sim_finish(r, 1, n == 0 ? "EOF in the middle of a read"
                                        : "error in the middle of a read");
            return -1;
        }
        r->got += (size_t)n;
    }
    return 1;
}

/* Writes buf from r->woff. 1: complete; 0: wait for WRITE; -1: error. */
static int
raw_sim_write(struct raw_sim *r, const uint8_t *buf, size_t len)
{
    while (r->woff < len) {
        struct iovec iov = {(void *)(buf + r->woff), len - r->woff};
        ssize_t n = r->ops->writev(r->s, &iov, 1);
        if (n == -EAGAIN) {
            r->ops->io_want(r->s, MSGR_IO_WRITE);
            return 0;
        }
        if (n <= 0) {
            raw_sim_finish(r, 1, "write failed");
            return -1;
        }
        r->woff += (size_t)n;
    }
    return 1;
}

static void
raw_sim_next(struct raw_sim *r)
{
    r->step++;
    r->phase = 0;
    r->got = r->need = r->woff = 0;
}

/* Runs the plan as far as the socket allows. Only the interest that the
 * current step waits for is set: no WRITE interest with nothing to say. */
static void
raw_sim_advance(struct raw_sim *r)
{
    while (!r->done) {
        if (r->step == r->plan->n) {
            /* wait for the server to close: EOF or a reset */
            uint8_t scratch[4096];
            struct iovec iov = {scratch, sizeof(scratch)};
            ssize_t n = r->ops->readv(r->s, &iov, 1);
            if (n > 0)
                continue;
            if (n == -EAGAIN) {
                r->ops->io_want(r->s, MSGR_IO_READ);
                return;
            }
            raw_sim_finish(r, n == 0 || n == -ECONNRESET, NULL);
            return;
        }
        const struct raw_step *st = &r->plan->step[r->step];
        int k;
        switch (st->op) {
        case RAW_BANNERS:
            if (r->phase == 0) {
                r->need = MSGR_BANNER_LEN;
                if ((k = raw_sim_read(r, 0)) <= 0)
                    return;
                uint64_t sup = 0, req = 0;
                r->res->banner_ok = msgr_banner_decode(r->in, &sup, &req) ==
                                        0 &&
                                    (sup & MSGR2_FEATURE_REVISION_1);
                msgr_banner_encode(r->out_banner, MSGR2_FEATURE_REVISION_1,
                                   0);
                r->phase = 1;
                r->woff = 0;
            }
            if ((k = raw_sim_write(r, r->out_banner, MSGR_BANNER_LEN)) <= 0)
                return;
            raw_sim_next(r);
            break;
        case RAW_READ_HELLO:
            if (r->phase == 0) {
                r->need = MSGR_PREAMBLE_LEN;
                if ((k = raw_sim_read(r, 0)) <= 0)
                    return;
                struct msgr_frame_limits lim;
                msgr_frame_limits_default(&lim);
                struct msgr_preamble pr;
                if (msgr_preamble_decode(r->in, &lim, &pr) != 0) {
                    raw_sim_finish(r, 0, "bad preamble from the server");
                    return;
                }
                r->res->frame_tag = pr.tag;
                r->phase = 1;
                r->got = 0;
                r->need = msgr_frame_body_len(&pr, 1);
            }
            if ((k = raw_sim_read(r, 1)) <= 0)
                return;
            raw_sim_next(r);
            break;
        case RAW_WRITE:
            if ((k = raw_sim_write(r, st->buf, st->len)) <= 0)
                return;
            raw_sim_next(r);
            break;
        case RAW_CLOSE:
            raw_sim_finish(r, 1, NULL);
            return;
        }
    }
}

static void
raw_sim_io(struct msgr_socket *s, unsigned events, void *arg)
{
    struct raw_sim *r = arg;
    (void)s;
    (void)events;
    if (r->done)
        return;
    if (!r->connected) {
        int e = r->ops->connect_result(r->s);
        if (e == -EAGAIN || e == -EINPROGRESS)
            return;
        if (e != 0) {
            raw_sim_finish(r, 0, "connect failed");
            return;
        }
        r->connected = 1;
        r->ops->io_want(r->s, 0);
    }
    raw_sim_advance(r);
}

static void
raw_sim_start(void *arg)
{
    struct raw_sim *r = arg;
    int e = r->ops->connect(r->wk, &r->to, &r->s);
    if (e < 0) {
        r->s = NULL;
        raw_sim_finish(r, 0, "connect refused at once");
        return;
    }
    r->ops->io_set(r->s, raw_sim_io, r, MSGR_IO_WRITE);
}

/* Closes a run that timed out (on its worker). */
static void
raw_sim_abort(void *arg)
{
    struct raw_sim *r = arg;
    if (!r->done)
        raw_sim_finish(r, 0, "timed out");
}

static int
raw_sim_done(void *arg)
{
    return ((struct raw_sim *)arg)->done;
}

static void
raw_run_sim(struct h_world *w, struct msgr_stack *st,
            const struct msgr_addr *addr, const struct raw_plan *p,
            struct raw_result *res)
{
    static struct raw_sim r;
    memset(&r, 0, sizeof(r));
    r.ops = st->ops;
    r.wk = st->workers[0];
    r.to = *addr;
    r.plan_copy = *p; /* the buffers stay the caller's */
    r.res_copy = *res;
    r.plan = &r.plan_copy;
    r.res = &r.res_copy;
    assert_int_equal(r.ops->post(r.wk, raw_sim_start, &r), 0);
    if (!h_wait(w, raw_sim_done, &r, H_WAIT_NS)) {
        assert_int_equal(r.ops->post(r.wk, raw_sim_abort, &r), 0);
        h_settle(w);
    }
    /* the socket is closed and no callback of it can run any more */
    assert_true(r.done);
    *res = r.res_copy;
    if (res->err[0] && strcmp(res->err, "timed out") != 0)
        fail_msg("raw sim peer: %s", res->err);
}

/* -- the bad peers -- */

/* Flattens an encoded frame into buf; returns its length. */
static size_t
flatten(const struct msgr_frame_out *fo, uint8_t *buf, size_t cap)
{
    size_t n = 0;
    for (int i = 0; i < fo->iovcnt; i++) {
        assert_true(n + fo->iov[i].iov_len <= cap);
        memcpy(buf + n, fo->iov[i].iov_base, fo->iov[i].iov_len);
        n += fo->iov[i].iov_len;
    }
    return n;
}

/* A valid client HELLO frame (rev1). */
static size_t
hello_frame(uint8_t *buf, size_t cap)
{
    uint8_t payload[128];
    struct msgr_wbuf wb;
    msgr_wbuf_init(&wb, payload, sizeof(payload));
    struct msgr_hello h;
    memset(&h, 0, sizeof(h));
    h.entity_type = MSGR_ENTITY_CLIENT;
    assert_int_equal(msgr_addr_parse("v2:127.0.0.1:1", &h.peer_addr), 0);
    msgr_hello_encode(&wb, &h);
    assert_int_equal(wb.err, 0);
    struct msgr_seg seg = {payload, (uint32_t)wb.len, 8};
    struct msgr_frame_out fo;
    assert_int_equal(msgr_frame_encode(&fo, 1, MSGR_TAG_HELLO, &seg, 1), 0);
    return flatten(&fo, buf, cap);
}

enum bad_kind {
    BAD_PREAMBLE_CRC,
    BAD_GARBAGE,
    BAD_V1_BANNER,
    BAD_TOO_BIG,
    BAD_TRUNCATED,
    BAD_SEGMENT_CRC,
    BAD_EARLY_MESSAGE,
};

static const char *const bad_names[] = {
    "bad preamble crc", "garbage banner",  "v1 banner",
    "oversized segment", "truncated frame", "bad segment crc",
    "message before session",
};

/* The plan of one malformed connection, and the error the server must
 * report for it. */
static void
bad_plan(enum bad_kind kind, struct raw_plan *p)
{
    uint8_t buf[1024];
    memset(p, 0, sizeof(*p));
    switch (kind) {
    case BAD_PREAMBLE_CRC: {
        plan_add(p, RAW_BANNERS, NULL, 0);
        size_t n = hello_frame(buf, sizeof(buf));
        assert_true(n > MSGR_PREAMBLE_LEN);
        buf[28] ^= 0x5a; /* the preamble crc */
        plan_add(p, RAW_WRITE, buf, n);
        p->want = MSGR_EBAD_CRC;
        break;
    }
    case BAD_GARBAGE:
        for (size_t i = 0; i < 300; i++)
            buf[i] = (uint8_t)(i * 37 + 11);
        plan_add(p, RAW_WRITE, buf, 300);
        p->want = MSGR_EBAD_BANNER;
        break;
    case BAD_V1_BANNER:
        /* what a msgr1 client sends: banner, then its entity_addr_t */
        memset(buf, 0, sizeof(buf));
        memcpy(buf, MSGR_BANNER_V1_PREFIX, strlen(MSGR_BANNER_V1_PREFIX));
        plan_add(p, RAW_WRITE, buf, strlen(MSGR_BANNER_V1_PREFIX) + 136);
        p->want = MSGR_EBAD_BANNER;
        break;
    case BAD_TOO_BIG: {
        plan_add(p, RAW_BANNERS, NULL, 0);
        uint32_t big = 1u << 20;
        uint8_t *seg_data = calloc(1, big);
        assert_non_null(seg_data);
        struct msgr_seg seg = {seg_data, big, 8};
        struct msgr_frame_out fo;
        assert_int_equal(msgr_frame_encode(&fo, 1, MSGR_TAG_HELLO, &seg, 1),
                         0);
        /* the preamble alone: the server must refuse before the body */
        plan_add(p, RAW_WRITE, fo.preamble, MSGR_PREAMBLE_LEN);
        free(seg_data);
        p->want = MSGR_ETOO_BIG;
        break;
    }
    case BAD_TRUNCATED: {
        plan_add(p, RAW_BANNERS, NULL, 0);
        /* read the server's HELLO so that closing sends a FIN, not a RST */
        plan_add(p, RAW_READ_HELLO, NULL, 0);
        size_t n = hello_frame(buf, sizeof(buf));
        plan_add(p, RAW_WRITE, buf, n - 5);
        plan_add(p, RAW_CLOSE, NULL, 0);
        p->want = MSGR_ECLOSED;
        break;
    }
    case BAD_SEGMENT_CRC: {
        plan_add(p, RAW_BANNERS, NULL, 0);
        size_t n = hello_frame(buf, sizeof(buf));
        buf[n - 1] ^= 0x01; /* rev1, one segment: its crc ends the frame */
        plan_add(p, RAW_WRITE, buf, n);
        p->want = MSGR_EBAD_CRC;
        break;
    }
    case BAD_EARLY_MESSAGE: {
        plan_add(p, RAW_BANNERS, NULL, 0);
        uint8_t h2[MSGR_HEADER2_LEN];
        struct msgr_header2 hdr;
        memset(&hdr, 0, sizeof(hdr));
        hdr.seq = 1;
        hdr.type = H_MSG_REQ;
        msgr_header2_encode(h2, &hdr);
        struct msgr_seg segs[1] = {{h2, sizeof(h2), 8}};
        struct msgr_frame_out fo;
        assert_int_equal(
            msgr_frame_encode(&fo, 1, MSGR_TAG_MESSAGE, segs, 1), 0);
        size_t n = flatten(&fo, buf, sizeof(buf));
        plan_add(p, RAW_WRITE, buf, n);
        p->want = MSGR_EPROTO;
        break;
    }
    }
}

/* One malformed connection to addr (posix: from this thread; sim: from
 * the raw host's stack); returns the error the server must report. */
static int
send_malformed(struct h_world *w, struct msgr_stack *raw_st,
               const struct msgr_addr *addr, enum bad_kind kind)
{
    struct raw_plan p;
    struct raw_result res;
    memset(&res, 0, sizeof(res));
    res.frame_tag = -1;
    bad_plan(kind, &p);
    if (raw_st)
        raw_run_sim(w, raw_st, addr, &p, &res);
    else
        raw_run_posix(addr, &p, &res);
    int want = p.want;
    int banners = 0, reads = 0;
    for (int i = 0; i < p.n; i++) {
        banners += p.step[i].op == RAW_BANNERS;
        reads += p.step[i].op == RAW_READ_HELLO;
    }
    plan_free(&p);
    if (banners && !res.banner_ok)
        fail_msg("%s: the server's banner does not offer msgr2.1",
                 bad_names[kind]);
    if (reads)
        assert_int_equal(res.frame_tag, MSGR_TAG_HELLO);
    if (!res.closed)
        fail_msg("%s: the server did not close the connection (%s)",
                 bad_names[kind], res.err[0] ? res.err : "timed out");
    return want;
}

struct fault_arg {
    struct h_node *n;
    int err, count;
};

static int
fault_seen(void *arg)
{
    struct fault_arg *a = arg;
    return h_fault_count(a->n, a->err) >= a->count;
}

static int
one_live_conn(void *arg)
{
    struct h_node *n = arg;
    return atomic_load(&n->births) - atomic_load(&n->deaths) == 1;
}

static void
test_malformed_input(void **state)
{
    struct h_world *w = *state;
    /* the bad peer: this thread on a real socket (posix), or a third host
     * driving a raw socket through the stack ops (sim) */
    struct msgr_stack *raw_st = NULL;
    if (h_is_sim(w))
        raw_st = h_sim_extra_stack(w, "raw", NULL);
    else if (!h_is_posix(w))
        skip();
    struct h_spec ss = {.label = "server", .type = MSGR_ENTITY_OSD, .num = 0,
                        .bind = 1, .echo = 1,
                        .max_frame_segment = 64 * 1024};
    struct h_node *srv = h_node_new(w, &ss);
    struct h_node *cli = client_node(w, "client", MSGR_ENTITY_CLIENT, 1);
    h_policy(srv, MSGR_ENTITY_CLIENT, MSGR_POLICY_STATELESS_SERVER);
    h_policy(cli, MSGR_ENTITY_OSD, MSGR_POLICY_LOSSY_CLIENT);
    h_node_start(srv);
    h_node_start(cli);
    struct msgr_addrvec to;
    h_node_addrs(srv, &to);
    h_round_trip(cli, MSGR_ENTITY_OSD, &to, 0, 10, 0);
    struct msgr_conn *c = h_get_conn(cli, MSGR_ENTITY_OSD, &to);

    for (int k = BAD_PREAMBLE_CRC; k <= BAD_EARLY_MESSAGE; k++) {
        /* some traffic while the bad peer is around */
        h_send_requests(cli, MSGR_ENTITY_OSD, &to, 0, 5, 0, H_MSG_REQ);
        int before[] = {h_fault_count(srv, MSGR_EBAD_CRC),
                        h_fault_count(srv, MSGR_EBAD_BANNER),
                        h_fault_count(srv, MSGR_ETOO_BIG),
                        h_fault_count(srv, MSGR_ECLOSED),
                        h_fault_count(srv, MSGR_EPROTO)};
        int codes[] = {MSGR_EBAD_CRC, MSGR_EBAD_BANNER, MSGR_ETOO_BIG,
                       MSGR_ECLOSED, MSGR_EPROTO};
        int err = send_malformed(w, raw_st, &to.v[0], (enum bad_kind)k);
        struct fault_arg fa = {srv, err, 0};
        for (int i = 0; i < 5; i++)
            if (codes[i] == err)
                fa.count = before[i] + 1;
        assert_int_not_equal(fa.count, 0);
        if (!h_wait(w, fault_seen, &fa, H_WAIT_NS))
            fail_msg("%s: the server reported no %s fault", bad_names[k],
                     msgr_err_name(err));
        /* exactly that fault: no other code appeared */
        for (int i = 0; i < 5; i++)
            assert_int_equal(h_fault_count(srv, codes[i]),
                             before[i] + (codes[i] == err));
        /* the bad connection is gone on the server; the good one lives */
        assert_true(h_wait(w, one_live_conn, srv, H_WAIT_NS));
        assert_true(h_wait_echoes(cli, 0, H_WAIT_NS));
        assert_true(msgr_conn_is_connected(c));
    }
    /* the well-behaved session never noticed (small messages: the server
     * allows only 64 KiB segments) */
    h_round_trip(cli, MSGR_ENTITY_OSD, &to, 0, 10, 0);
    assert_true(msgr_conn_is_connected(c));
    assert_int_equal(atomic_load(&cli->n_connect), 1);
    assert_int_equal(atomic_load(&cli->n_reset), 0);
    assert_int_equal(atomic_load(&cli->nfaults), 0);
    assert_int_equal(atomic_load(&srv->n_accept), 1);
    /* every bad connection was closed, the good one is alive */
    assert_int_equal(atomic_load(&srv->births) - atomic_load(&srv->deaths), 1);
    /* and the server still takes new clients */
    struct h_node *c2 = client_node(w, "client.2", MSGR_ENTITY_CLIENT, 2);
    h_policy(c2, MSGR_ENTITY_OSD, MSGR_POLICY_LOSSY_CLIENT);
    h_node_start(c2);
    h_round_trip(c2, MSGR_ENTITY_OSD, &to, 1, 10, 0);
}

/*
 * Lossy sessions that fault with frames still in the write queue: a server
 * that allows 64 KiB segments refuses the first 256 KiB message and closes
 * while the client has far more queued than the socket buffers hold.
 */
static struct h_node *
small_segment_server(struct h_world *w, int start)
{
    struct h_spec ss = {.label = "server", .type = MSGR_ENTITY_OSD, .num = 0,
                        .bind = 1, .echo = 1,
                        .max_frame_segment = 64 * 1024};
    struct h_node *srv = h_node_new(w, &ss);
    h_policy(srv, MSGR_ENTITY_CLIENT, MSGR_POLICY_STATELESS_SERVER);
    if (start)
        h_node_start(srv);
    else
        h_node_bind(srv);
    return srv;
}

/* On one connection: every message the connection took ends sent or
 * dropped (a lossy session keeps no sent list to account for them). */
static void
test_lossy_fault_with_queued_writes(void **state)
{
    struct h_world *w = *state;
    /* the server is bound but not started: the client's session cannot
     * come up (no banner) until every message is queued, so far more than
     * the socket buffers hold is waiting when the server faults */
    struct h_node *srv = small_segment_server(w, 0);
    struct h_node *cli = client_node(w, "client", MSGR_ENTITY_CLIENT, 1);
    h_policy(cli, MSGR_ENTITY_OSD, MSGR_POLICY_LOSSY_CLIENT);
    h_node_start(cli);
    struct msgr_addrvec to;
    h_node_addrs(srv, &to);
    struct msgr_conn *c = h_get_conn(cli, MSGR_ENTITY_OSD, &to);
    const int n = 200;
    for (int i = 0; i < n; i++) {
        struct msgr_msg *m =
            h_msg_new(cli, H_MSG_REQ, 0, (uint64_t)i, 0, 0, 256 * 1024);
        assert_int_equal(h_conn_send(c, m), 0);
    }
    assert_false(msgr_conn_is_connected(c));
    h_node_start(srv);
    int taken = n;
    assert_true(h_wait_connected(w, c, 0, H_WAIT_NS));
    assert_true(h_wait_ge(w, &cli->n_reset, 1, H_WAIT_NS));
    assert_true(h_wait_ge(w, &srv->deaths, 1, H_WAIT_NS));
    h_settle(w);
    assert_string_equal(msgr_conn_state_name(c), "CLOSED");
    assert_int_equal(h_fault_count(srv, MSGR_ETOO_BIG), 1);
    assert_int_equal(atomic_load(&cli->n_reset), 1);
    assert_int_equal(atomic_load(&srv->n_req), 0);
    assert_int_equal(atomic_load(&cli->fate[MSGR_FATE_QUEUED]), taken);
    assert_true(atomic_load(&cli->fate[MSGR_FATE_DROPPED]) > 0);
    assert_int_equal(atomic_load(&cli->fate[MSGR_FATE_SENT]) +
                         atomic_load(&cli->fate[MSGR_FATE_DROPPED]),
                     taken);
}

/* By address: sessions keep faulting under the sender; msgr_send_message
 * never fails because one closed under it, it makes a new one. */
static void
test_send_to_while_sessions_fault(void **state)
{
    struct h_world *w = *state;
    struct h_node *srv = small_segment_server(w, 1);
    struct h_node *cli = client_node(w, "client", MSGR_ENTITY_CLIENT, 1);
    h_policy(cli, MSGR_ENTITY_OSD, MSGR_POLICY_LOSSY_CLIENT);
    h_node_start(cli);
    struct msgr_addrvec to;
    h_node_addrs(srv, &to);
    const int n = 200;
    for (int i = 0; i < n; i++) {
        struct msgr_msg *m =
            h_msg_new(cli, H_MSG_REQ, 0, (uint64_t)i, 0, 0, 256 * 1024);
        int e = h_send(cli, m, MSGR_ENTITY_OSD, &to);
        if (e != 0)
            fail_msg("send #%d: %s", i, msgr_strerror(e));
    }
    assert_true(h_wait_ge(w, &cli->n_reset, 1, H_WAIT_NS));
    assert_true(h_fault_count(srv, MSGR_ETOO_BIG) >= 1);
    assert_int_equal(atomic_load(&cli->fate[MSGR_FATE_QUEUED]), n);
    /* the teardown checks that each of them ends sent or dropped */
}

/* ---------------------------------------- 12. shutdown and wait orders */

#define N_MANY 20

enum order {
    SERVER_FIRST,  /* server shutdown+wait+destroy, then the clients */
    CLIENTS_FIRST, /* clients, then the server */
    ALL_AT_ONCE,   /* everyone shutdown, then wait, then destroy, with
                    * messages in flight */
    DESTROY_ONLY,  /* msgr_destroy alone, which shuts down and waits */
};

static void
many_case(struct h_world *w, enum order order, enum msgr_policy_kind skind,
          enum msgr_policy_kind ckind)
{
    struct h_node *srv = server_node(w, MSGR_ENTITY_OSD, 0);
    h_policy(srv, MSGR_ENTITY_CLIENT, skind);
    h_node_start(srv);
    struct msgr_addrvec to;
    h_node_addrs(srv, &to);
    struct h_node *cli[N_MANY];
    for (int i = 0; i < N_MANY; i++) {
        char label[16];
        snprintf(label, sizeof(label), "client.%d", i + 1);
        cli[i] = client_node(w, label, MSGR_ENTITY_CLIENT, i + 1);
        h_policy(cli[i], MSGR_ENTITY_OSD, ckind);
        cli[i]->expect_src_type = MSGR_ENTITY_OSD;
        h_node_start(cli[i]);
    }
    /* every client on its own stream, all at once */
    for (int i = 0; i < N_MANY; i++)
        h_send_requests(cli[i], MSGR_ENTITY_OSD, &to, (uint32_t)i, 10, 0,
                        H_MSG_REQ);
    for (int i = 0; i < N_MANY; i++)
        if (!h_wait_echoes(cli[i], (uint32_t)i, H_WAIT_NS))
            fail_msg("client.%d: %d echoes (%s / %s)", i + 1,
                     atomic_load(&cli[i]->n_rep), h_first_error(cli[i]),
                     h_first_error(srv));
    assert_true(h_wait_ge(w, &srv->n_accept, N_MANY, H_WAIT_NS));
    assert_int_equal(atomic_load(&srv->n_req), 10 * N_MANY);
    assert_int_equal(atomic_load(&srv->errors), 0);

    if (order == ALL_AT_ONCE || order == DESTROY_ONLY) {
        /* more traffic, not waited for */
        for (int i = 0; i < N_MANY; i++)
            h_send_requests(cli[i], MSGR_ENTITY_OSD, &to, (uint32_t)i, 20, 1,
                            H_MSG_REQ);
    }

    msgr_time_ns t0 = h_now(w);
    switch (order) {
    case SERVER_FIRST:
        h_node_destroy(srv);
        for (int i = 0; i < N_MANY; i++)
            h_node_destroy(cli[i]);
        break;
    case CLIENTS_FIRST:
        for (int i = 0; i < N_MANY; i++)
            h_node_destroy(cli[i]);
        h_node_destroy(srv);
        break;
    case ALL_AT_ONCE:
        h_node_shutdown(srv);
        for (int i = 0; i < N_MANY; i++)
            h_node_shutdown(cli[i]);
        for (int i = N_MANY - 1; i >= 0; i--)
            h_node_wait(cli[i]);
        h_node_wait(srv);
        for (int i = 0; i < N_MANY; i++)
            h_node_destroy(cli[i]);
        h_node_destroy(srv);
        break;
    case DESTROY_ONLY:
        for (int i = 0; i < N_MANY; i += 2)
            h_node_destroy(cli[i]);
        h_node_destroy(srv);
        for (int i = 1; i < N_MANY; i += 2)
            h_node_destroy(cli[i]);
        break;
    }
    msgr_time_ns took = h_now(w) - t0;
    if (took > 10 * MSGR_NS_PER_S)
        fail_msg("shutting down %d messengers took %llu ms", N_MANY + 1,
                 (unsigned long long)(took / MSGR_NS_PER_MS));
}

static void
test_shutdown_server_first(void **state)
{
    many_case(*state, SERVER_FIRST, MSGR_POLICY_STATEFUL_SERVER,
              MSGR_POLICY_LOSSLESS_CLIENT);
}

static void
test_shutdown_clients_first(void **state)
{
    many_case(*state, CLIENTS_FIRST, MSGR_POLICY_STATELESS_SERVER,
              MSGR_POLICY_LOSSY_CLIENT);
}

static void
test_shutdown_all_in_flight(void **state)
{
    many_case(*state, ALL_AT_ONCE, MSGR_POLICY_STATEFUL_SERVER,
              MSGR_POLICY_LOSSLESS_CLIENT);
}

static void
test_destroy_in_flight(void **state)
{
    many_case(*state, DESTROY_ONLY, MSGR_POLICY_STATELESS_SERVER,
              MSGR_POLICY_LOSSY_CLIENT);
}

/* ------------------------------------------- 13. fast dispatch */

static void
test_fast_dispatch(void **state)
{
    struct h_world *w = *state;
    struct h_node *srv, *cli;
    srv = server_node(w, MSGR_ENTITY_OSD, 0);
    cli = client_node(w, "client", MSGR_ENTITY_CLIENT, 1);
    h_policy(srv, MSGR_ENTITY_CLIENT, MSGR_POLICY_STATEFUL_SERVER);
    h_policy(cli, MSGR_ENTITY_OSD, MSGR_POLICY_LOSSLESS_CLIENT);
    srv->fast_type = H_MSG_REQ_FAST;
    h_node_start(srv);
    h_node_start(cli);
    struct msgr_addrvec to;
    h_node_addrs(srv, &to);
    /* interleaved: stream 0 the normal path, stream 1 the fast path (order
     * is kept per path, not across them) */
    for (int i = 0; i < 50; i++) {
        h_send_requests(cli, MSGR_ENTITY_OSD, &to, 0, 1, 1, H_MSG_REQ);
        h_send_requests(cli, MSGR_ENTITY_OSD, &to, 1, 1, 1, H_MSG_REQ_FAST);
    }
    assert_true(h_wait_echoes(cli, 0, H_WAIT_NS));
    assert_true(h_wait_echoes(cli, 1, H_WAIT_NS));
    h_settle(w);
    assert_int_equal(atomic_load(&srv->n_fast), 50);
    assert_int_equal(atomic_load(&srv->n_dispatch), 50);
    assert_int_equal(atomic_load(&srv->n_req_stream[0]), 50);
    assert_int_equal(atomic_load(&srv->n_req_stream[1]), 50);
    assert_int_equal(atomic_load(&srv->fate[MSGR_FATE_DELIVERED]), 100);
    assert_int_equal(atomic_load(&cli->n_fast), 0);
    assert_int_equal(atomic_load(&cli->n_dispatch), 100);
    assert_int_equal(atomic_load(&srv->errors), 0);
    assert_int_equal(atomic_load(&cli->errors), 0);
}

static void
test_fast_dispatch_all(void **state)
{
    struct h_world *w = *state;
    struct h_node *srv = server_node(w, MSGR_ENTITY_OSD, 0);
    struct h_node *cli = client_node(w, "client", MSGR_ENTITY_CLIENT, 1);
    h_policy(srv, MSGR_ENTITY_CLIENT, MSGR_POLICY_STATELESS_SERVER);
    h_policy(cli, MSGR_ENTITY_OSD, MSGR_POLICY_LOSSY_CLIENT);
    srv->fast_all = 1;
    cli->fast_all = 1;
    h_node_start(srv);
    h_node_start(cli);
    struct msgr_addrvec to;
    h_node_addrs(srv, &to);
    h_round_trip(cli, MSGR_ENTITY_OSD, &to, 0, 100, 1);
    h_settle(w);
    assert_int_equal(atomic_load(&srv->n_fast), 100);
    assert_int_equal(atomic_load(&cli->n_fast), 100);
    assert_int_equal(atomic_load(&srv->n_dispatch), 0);
    assert_int_equal(atomic_load(&cli->n_dispatch), 0);
    /* events still come through the queue */
    assert_true(h_wait_ge(w, &cli->n_connect, 1, H_WAIT_NS));
    assert_true(h_wait_ge(w, &srv->n_accept, 1, H_WAIT_NS));
}

/* ---------------------------------------------- AnonTest (extra) */

static void
test_anon(void **state)
{
    struct h_world *w = *state;
    struct h_node *srv, *cli;
    simple_pair(w, &srv, &cli);
    struct msgr_addrvec to;
    h_node_addrs(srv, &to);
    int err = 0;
    struct msgr_conn *a =
        h_hold(w, msgr_connect_to(cli->m, MSGR_ENTITY_OSD, &to, 1, &err));
    struct msgr_conn *b =
        h_hold(w, msgr_connect_to(cli->m, MSGR_ENTITY_OSD, &to, 1, &err));
    assert_non_null(a);
    assert_non_null(b);
    assert_ptr_not_equal(a, b);
    for (int i = 0; i < 10; i++) {
        uint32_t s = (uint32_t)(i & 1);
        struct msgr_msg *m =
            h_msg_new(cli, H_MSG_REQ, s, cli->tx_seq[s]++, 0, 0, 100);
        assert_int_equal(h_conn_send(s ? b : a, m), 0);
    }
    assert_true(h_wait_echoes(cli, 0, H_WAIT_NS));
    assert_true(h_wait_echoes(cli, 1, H_WAIT_NS));
    assert_true(msgr_conn_is_connected(a));
    assert_true(msgr_conn_is_connected(b));
    /* two sessions on the server as well (stateless_server: anonymous) */
    assert_true(h_wait_ge(w, &srv->n_accept, 2, H_WAIT_NS));
    assert_int_equal(atomic_load(&cli->n_connect), 2);
    /* an anonymous connection is not the registered one */
    struct msgr_conn *r = h_get_conn(cli, MSGR_ENTITY_OSD, &to);
    assert_ptr_not_equal(r, a);
    assert_ptr_not_equal(r, b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
        T(test_round_trip_lossy_client),
        T(test_round_trip_lossless_client),
        T(test_round_trip_lossless_peer),
        T(test_round_trip_lossless_peer_reuse),
        T(test_rev0),
        T(test_rev0_lossless),
        T(test_rebind),
        T(test_mark_down),
        T(test_loopback),
        T(test_loopback_unbound),
        T(test_loopback_shutdown_in_flight),
        T(test_server_policy_no_session),
        T(test_refused),
        T(test_features),
        T(test_idle_timeout),
        T(test_keepalive),
        T(test_malformed_input),
        T(test_lossy_fault_with_queued_writes),
        T(test_send_to_while_sessions_fault),
        T(test_shutdown_server_first),
        T(test_shutdown_clients_first),
        T(test_shutdown_all_in_flight),
        T(test_destroy_in_flight),
        T(test_fast_dispatch),
        T(test_fast_dispatch_all),
        T(test_anon),
#undef T
    };
    /* MSGR_TEST_FILTER=test_rebind (a glob) runs some cases only */
    const char *filter = getenv("MSGR_TEST_FILTER");
    if (filter && *filter)
        cmocka_set_test_filter(filter);
    return cmocka_run_group_tests_name("msgr", tests, NULL, NULL);
}
