/*
 * Cases of Ceph's test_msgr catalogue (PROTOCOL.md §6) that need protocol
 * breakpoints, on the simulated stack: the interceptor faults a
 * connection at an exact protocol step, and the frames each side sent are
 * counted by tag through the tracer, as Ceph's tests count them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "msgr/msgr.h"
#include "sim/sim.h"

#define NTAGS 32

struct side {
    struct msgr *m;
    int delivered, connects, accepts, resets, remote_resets;
    int frames_out[NTAGS];
    /* breakpoint: at step `step`, act `times` times */
    int step, action, times, hits;
    int step_seen[32];        /* every step met, as Ceph's step history */
    struct msgr_conn *held;   /* the connection a HOLD froze (a ref) */
};

static int
dispatch(void *arg, struct msgr_msg *m)
{
    struct side *s = arg;
    s->delivered++;
    msgr_msg_unref(m);
    return 1;
}

static void
on_connect(void *arg, struct msgr_conn *c)
{
    (void)c;
    ((struct side *)arg)->connects++;
}

static void
on_accept(void *arg, struct msgr_conn *c)
{
    (void)c;
    ((struct side *)arg)->accepts++;
}

static int
on_reset(void *arg, struct msgr_conn *c)
{
    (void)c;
    ((struct side *)arg)->resets++;
    return 1;
}

static void
on_remote_reset(void *arg, struct msgr_conn *c)
{
    (void)c;
    ((struct side *)arg)->remote_resets++;
}

static void
on_frame(void *arg, struct msgr *m, struct msgr_conn *c, int dir,
         unsigned tag, uint64_t bytes)
{
    (void)m;
    (void)c;
    (void)bytes;
    struct side *s = arg;
    if (dir == 1 && tag < NTAGS)
        s->frames_out[tag]++;
}

static int
on_step(void *arg, struct msgr_conn *c, int step)
{
    struct side *s = arg;
    if (step >= 0 && step < 32)
        s->step_seen[step]++;
    if (step != s->step || s->hits >= s->times)
        return MSGR_INTERCEPT_CONTINUE;
    s->hits++;
    if (s->action == MSGR_INTERCEPT_HOLD) {
        assert_null(s->held);
        msgr_conn_ref(c);
        s->held = c;
    }
    return s->action;
}

/* Lets the held connection go on with `action`. */
static void
release(struct side *s, int action)
{
    assert_non_null(s->held);
    assert_int_equal(msgr_conn_release(s->held, action), 0);
    msgr_conn_unref(s->held);
    s->held = NULL;
}

struct world {
    struct sim_world *w;
    struct sim_host *host[2];
    struct msgr_stack *st[2];
    struct side side[2]; /* 0: server osd.0, 1: client */
    struct msgr_addrvec srv_addrs;
};

static void
world_up(struct world *wd, enum msgr_policy_kind srv_policy,
         enum msgr_policy_kind cli_policy)
{
    memset(wd, 0, sizeof(*wd));
    wd->w = sim_world_new(77);
    struct sim_link_params lp = {.latency_ns = 100 * MSGR_NS_PER_US};
    sim_link_default(wd->w, &lp);
    struct sim_host *h[2] = {
        sim_host_new(wd->w, 1, "osd.0", 0x0a000001u),
        sim_host_new(wd->w, 2, "osd.1", 0x0a000002u),
    };
    int err = 0;
    wd->host[0] = h[0];
    wd->host[1] = h[1];
    for (int i = 0; i < 2; i++) {
        struct sim_stack_config sc = {.nworkers = 2};
        wd->st[i] = sim_stack_new(wd->w, h[i], &sc, &err);
        assert_non_null(wd->st[i]);
        /* both are osds: each side's policy toward the other is set by
         * type, as Ceph's tests set them */
        struct msgr_config cfg = {.name = {MSGR_ENTITY_OSD, i},
                                  .nonce = 100u + (unsigned)i,
                                  .stack = wd->st[i],
                                  .max_backoff_ns = 1 * MSGR_NS_PER_S};
        struct side *s = &wd->side[i];
        s->m = msgr_create(&cfg, &err);
        assert_non_null(s->m);
        struct msgr_policy p =
            msgr_policy_make(i == 0 ? srv_policy : cli_policy, 0);
        msgr_set_policy(s->m, MSGR_ENTITY_OSD, &p);
        struct msgr_tracer tr = {.arg = s, .frame = on_frame};
        msgr_set_tracer(s->m, &tr);
        struct msgr_interceptor ic = {.arg = s, .intercept = on_step};
        msgr_set_interceptor(s->m, &ic);
        struct msgr_addr a;
        sim_host_addr(h[i], 6800, &a);
        assert_int_equal(msgr_bind(s->m, &a), 0);
        struct msgr_dispatcher d = {.arg = s,
                                    .ms_dispatch = dispatch,
                                    .ms_handle_connect = on_connect,
                                    .ms_handle_accept = on_accept,
                                    .ms_handle_reset = on_reset,
                                    .ms_handle_remote_reset =
                                        on_remote_reset};
        msgr_start(s->m);
        msgr_add_dispatcher(s->m, &d);
    }
    msgr_get_myaddrs(wd->side[0].m, &wd->srv_addrs);
}

static void
world_down(struct world *wd)
{
    for (int i = 0; i < 2; i++)
        if (wd->side[i].held) {
            msgr_conn_unref(wd->side[i].held);
            wd->side[i].held = NULL;
        }
    for (int i = 0; i < 2; i++)
        msgr_shutdown(wd->side[i].m);
    for (int i = 0; i < 2; i++) {
        msgr_wait(wd->side[i].m);
        msgr_destroy(wd->side[i].m);
        msgr_stack_unref(wd->st[i]);
    }
    sim_world_free(wd->w);
}

static void
send_one(struct msgr *from, const struct msgr_addrvec *to)
{
    struct msgr_msg *m = msgr_msg_new(MSGR_MSG_TEST, 16, 0, 0);
    memset(m->front.data, 7, 16);
    assert_int_equal(msgr_send_message(from, m, MSGR_ENTITY_OSD, to), 0);
}

static void
settle(struct world *wd)
{
    sim_run_until(wd->w, sim_now(wd->w) + 10 * MSGR_NS_PER_S);
}

/*
 * MissingServerIdenTest2-like: the server fails right before sending
 * SERVER_IDENT; the client retries and the session opens; the message
 * arrives exactly once and nobody's session was reset.
 */
static void
test_missing_server_ident(void **state)
{
    (void)state;
    struct world wd;
    world_up(&wd, MSGR_POLICY_LOSSLESS_PEER, MSGR_POLICY_LOSSLESS_PEER);
    struct side *srv = &wd.side[0], *cli = &wd.side[1];
    srv->step = MSGR_STEP_SEND_SERVER_IDENTITY;
    srv->action = MSGR_INTERCEPT_FAIL;
    srv->times = 1;
    send_one(cli->m, &wd.srv_addrs);
    settle(&wd);
    assert_int_equal(srv->hits, 1);
    assert_int_equal(srv->delivered, 1);
    assert_int_equal(cli->connects, 1);
    assert_int_equal(srv->frames_out[9 /* SERVER_IDENT */], 1);
    assert_int_equal(cli->frames_out[8 /* CLIENT_IDENT */], 2);
    assert_int_equal(cli->remote_resets + srv->remote_resets, 0);
    assert_int_equal(cli->resets, 0);
    world_down(&wd);
}

/*
 * ReconnectTest: after a round trip the client fails while handling an
 * incoming message; it reconnects with SESSION_RECONNECT, the server
 * answers RECONNECT_OK, and the message that was cut arrives (once).
 */
static void
test_reconnect(void **state)
{
    (void)state;
    struct world wd;
    world_up(&wd, MSGR_POLICY_STATEFUL_SERVER, MSGR_POLICY_LOSSLESS_PEER);
    struct side *srv = &wd.side[0], *cli = &wd.side[1];
    send_one(cli->m, &wd.srv_addrs);
    settle(&wd);
    assert_int_equal(srv->delivered, 1);
    struct msgr_addrvec cli_addrs;
    msgr_get_myaddrs(cli->m, &cli_addrs);
    cli->step = MSGR_STEP_HANDLE_MESSAGE;
    cli->action = MSGR_INTERCEPT_FAIL;
    cli->times = 1;
    /* the server sends on the session it accepted while the client's
     * next message is in flight: the client has something unacked when it
     * faults, so it reconnects (lossless_peer would wait in STANDBY with
     * nothing to send) */
    send_one(srv->m, &cli_addrs);
    send_one(cli->m, &wd.srv_addrs);
    settle(&wd);
    assert_int_equal(cli->hits, 1);
    assert_int_equal(cli->delivered, 1);            /* once, after replay */
    assert_int_equal(srv->delivered, 2);
    assert_int_equal(cli->frames_out[11 /* SESSION_RECONNECT */], 1);
    assert_int_equal(cli->frames_out[15 /* RECONNECT_OK */], 0);
    assert_int_equal(srv->frames_out[11], 0);
    assert_int_equal(srv->frames_out[15], 1);
    assert_int_equal(cli->remote_resets + srv->remote_resets, 0);
    assert_int_equal(cli->resets + srv->resets, 0);
    world_down(&wd);
}

/* A stop at READY ends the session and tells the application. */
static void
test_stop_at_ready(void **state)
{
    (void)state;
    struct world wd;
    world_up(&wd, MSGR_POLICY_STATELESS_SERVER, MSGR_POLICY_LOSSY_CLIENT);
    struct side *cli = &wd.side[1];
    cli->step = MSGR_STEP_READY;
    cli->action = MSGR_INTERCEPT_STOP;
    cli->times = 1;
    send_one(cli->m, &wd.srv_addrs);
    settle(&wd);
    assert_int_equal(cli->hits, 1);
    assert_int_equal(cli->resets, 1);
    world_down(&wd);
}


static void
run_for(struct world *wd, msgr_time_ns dt)
{
    sim_run_until(wd->w, sim_now(wd->w) + dt);
}

static void
my_addrs(struct side *s, struct msgr_addrvec *out)
{
    msgr_get_myaddrs(s->m, out);
}

/*
 * A hold freezes one connection at a step of the handshake: nothing
 * moves while it holds (however long), and on release the session opens
 * as if nothing happened: one connect, one delivery, no reset.
 */
static void
hold_and_release(int srv_side, int step, int action)
{
    struct world wd;
    world_up(&wd, MSGR_POLICY_LOSSLESS_PEER, MSGR_POLICY_LOSSLESS_PEER);
    struct side *srv = &wd.side[0], *cli = &wd.side[1];
    struct side *h = srv_side ? srv : cli;
    h->step = step;
    h->action = MSGR_INTERCEPT_HOLD;
    h->times = 1;
    send_one(cli->m, &wd.srv_addrs);
    run_for(&wd, 3 * MSGR_NS_PER_S); /* below the 10 s ready timeout */
    assert_int_equal(h->hits, 1);
    assert_non_null(h->held);
    assert_int_equal(msgr_conn_held_step(h->held), step);
    if (step != MSGR_STEP_READY) {
        assert_int_equal(srv->delivered, 0);
        assert_int_equal(cli->connects, 0);
    }
    release(h, action);
    settle(&wd);
    assert_int_equal(srv->delivered, 1);
    assert_int_equal(cli->connects, 1);
    assert_int_equal(cli->remote_resets + srv->remote_resets, 0);
    assert_int_equal(cli->resets, 0);
    if (action == MSGR_INTERCEPT_CONTINUE) {
        assert_int_equal(srv->resets, 0);
        assert_int_equal(cli->frames_out[8 /* CLIENT_IDENT */], 1);
    } else {
        /* the step failed and the client dialled again; the server's
         * half-accepted connection ended with a reset upcall, as Ceph's
         * does */
        assert_true(srv->resets <= 1);
        assert_true(cli->frames_out[8] >= 1 && cli->frames_out[8] <= 2);
    }
    world_down(&wd);
}

static const int client_steps[] = {
    MSGR_STEP_START_CLIENT_BANNER_EXCHANGE,
    MSGR_STEP_BANNER_EXCHANGE_BANNER_CONNECTING,
    MSGR_STEP_HANDLE_PEER_BANNER_BANNER_CONNECTING,
    MSGR_STEP_HANDLE_PEER_BANNER_PAYLOAD_HELLO_CONNECTING,
    MSGR_STEP_SEND_AUTH_REQUEST,
    MSGR_STEP_SEND_CLIENT_IDENTITY,
};
static const int server_steps[] = {
    MSGR_STEP_START_SERVER_BANNER_EXCHANGE,
    MSGR_STEP_BANNER_EXCHANGE,
    MSGR_STEP_HANDLE_PEER_BANNER,
    MSGR_STEP_HANDLE_PEER_BANNER_PAYLOAD,
    MSGR_STEP_HANDLE_AUTH_REQUEST_ACCEPTING_SIGN,
    MSGR_STEP_SEND_SERVER_IDENTITY,
};

static void
test_hold_every_handshake_step(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(client_steps) / sizeof(client_steps[0]);
         i++) {
        hold_and_release(0, client_steps[i], MSGR_INTERCEPT_CONTINUE);
        hold_and_release(0, client_steps[i], MSGR_INTERCEPT_FAIL);
    }
    for (size_t i = 0; i < sizeof(server_steps) / sizeof(server_steps[0]);
         i++) {
        hold_and_release(1, server_steps[i], MSGR_INTERCEPT_CONTINUE);
        hold_and_release(1, server_steps[i], MSGR_INTERCEPT_FAIL);
    }
}

/*
 * Holds met while reading a message rewind it: on release the frame is
 * read again, and the message is delivered once; released with fail, the
 * sender replays it on the next session, still once.
 */
static void
test_hold_message_steps(void **state)
{
    (void)state;
    const int steps[] = {MSGR_STEP_HANDLE_MESSAGE,
                         MSGR_STEP_READ_MESSAGE_COMPLETE};
    for (int i = 0; i < 2; i++)
        for (int fail = 0; fail < 2; fail++) {
            struct world wd;
            world_up(&wd, MSGR_POLICY_LOSSLESS_PEER,
                     MSGR_POLICY_LOSSLESS_PEER);
            struct side *srv = &wd.side[0], *cli = &wd.side[1];
            srv->step = steps[i];
            srv->action = MSGR_INTERCEPT_HOLD;
            srv->times = 1;
            send_one(cli->m, &wd.srv_addrs);
            send_one(cli->m, &wd.srv_addrs);
            run_for(&wd, 3 * MSGR_NS_PER_S);
            assert_int_equal(srv->hits, 1);
            assert_int_equal(srv->delivered, 0);
            release(srv, fail ? MSGR_INTERCEPT_FAIL
                              : MSGR_INTERCEPT_CONTINUE);
            settle(&wd);
            assert_int_equal(srv->delivered, 2);
            /* a replay after CONTINUE does not ask again */
            assert_int_equal(srv->step_seen[steps[i]], fail ? 3 : 2);
            assert_int_equal(cli->frames_out[11 /* SESSION_RECONNECT */],
                             fail ? 1 : 0);
            world_down(&wd);
        }
}

/*
 * ConnectionRaceTest: both sides dial each other at once and both are
 * held right before CLIENT_IDENT, then released: the race resolves to one
 * session, each side gets its one message, the peer types are right.
 */
static void
test_connection_race(void **state)
{
    (void)state;
    struct world wd;
    world_up(&wd, MSGR_POLICY_LOSSLESS_PEER_REUSE,
             MSGR_POLICY_LOSSLESS_PEER_REUSE);
    struct side *a = &wd.side[0], *b = &wd.side[1];
    struct msgr_addrvec aa, ba;
    my_addrs(a, &aa);
    my_addrs(b, &ba);
    a->step = b->step = MSGR_STEP_SEND_CLIENT_IDENTITY;
    a->action = b->action = MSGR_INTERCEPT_HOLD;
    a->times = b->times = 1;
    send_one(a->m, &ba);
    send_one(b->m, &aa);
    run_for(&wd, 1 * MSGR_NS_PER_S);
    assert_non_null(a->held);
    assert_non_null(b->held);
    release(a, MSGR_INTERCEPT_CONTINUE);
    release(b, MSGR_INTERCEPT_CONTINUE);
    settle(&wd);
    assert_int_equal(a->delivered, 1);
    assert_int_equal(b->delivered, 1);
    struct msgr_conn *ca = msgr_get_connection(a->m, MSGR_ENTITY_OSD, &ba, NULL);
    struct msgr_conn *cb = msgr_get_connection(b->m, MSGR_ENTITY_OSD, &aa, NULL);
    assert_true(msgr_conn_is_connected(ca));
    assert_true(msgr_conn_is_connected(cb));
    assert_int_equal(msgr_conn_peer_type(ca), MSGR_ENTITY_OSD);
    assert_int_equal(msgr_conn_peer_type(cb), MSGR_ENTITY_OSD);
    msgr_conn_unref(ca);
    msgr_conn_unref(cb);
    assert_int_equal(a->remote_resets + b->remote_resets, 0);
    /* the losing dial's half-accepted peer ends with a reset upcall, as
     * in Ceph; no session was reset */
    world_down(&wd);
}

/*
 * ConnectionRaceReuseBannerTest (tracker 46180): one side's dial reaches
 * CLIENT_IDENT while the other side's dial is held before its banner.
 * The incoming session wins and its socket is reused by the held
 * connection, still in BANNER_CONNECTING: the loser never sent a banner
 * again, never sent RECONNECT, reached READY once, and frames keep their
 * msgr2.1 form (the revision is carried over with the socket).
 */
static void
test_connection_race_reuse_banner(void **state)
{
    (void)state;
    for (int holder = 0; holder < 2; holder++) {
        struct world wd;
        world_up(&wd, MSGR_POLICY_LOSSLESS_PEER_REUSE,
                 MSGR_POLICY_LOSSLESS_PEER_REUSE);
        struct side *l = &wd.side[holder], *w = &wd.side[!holder];
        struct msgr_addrvec la, wa;
        my_addrs(l, &la);
        my_addrs(w, &wa);
        l->step = MSGR_STEP_START_CLIENT_BANNER_EXCHANGE;
        l->action = MSGR_INTERCEPT_HOLD;
        l->times = 1;
        send_one(l->m, &wa); /* held before its banner */
        run_for(&wd, 10 * MSGR_NS_PER_MS);
        assert_non_null(l->held);
        send_one(w->m, &la); /* meets the held one at CLIENT_IDENT */
        run_for(&wd, 1 * MSGR_NS_PER_S);
        /* the lower address wins a race (PROTOCOL.md §4.9): with the held
         * side higher, its connection loses and adopts the incoming
         * socket while held (the hold ends with the handshake it froze);
         * with the held side lower, the incoming dial is told WAIT and
         * the session opens when the hold is released */
        int reused = msgr_conn_held_step(l->held) == 0;
        assert_int_equal(reused, holder == 1);
        release(l, MSGR_INTERCEPT_CONTINUE); /* a no-op when reused */
        settle(&wd);
        assert_int_equal(l->delivered, 1);
        assert_int_equal(w->delivered, 1);
        assert_int_equal(l->step_seen[MSGR_STEP_START_CLIENT_BANNER_EXCHANGE],
                         1);
        assert_int_equal(l->step_seen[MSGR_STEP_SEND_RECONNECT], 0);
        assert_int_equal(w->step_seen[MSGR_STEP_SEND_RECONNECT], 0);
        assert_int_equal(l->step_seen[MSGR_STEP_READY], 1);
        assert_int_equal(w->step_seen[MSGR_STEP_READY], 1);
        if (reused) {
            assert_int_equal(l->accepts, 1);
            assert_int_equal(w->connects, 1);
            /* the loser never got as far as a banner of its own */
            assert_int_equal(
                l->step_seen[MSGR_STEP_BANNER_EXCHANGE_BANNER_CONNECTING], 0);
        } else {
            assert_int_equal(l->connects, 1);
            assert_int_equal(w->accepts, 1);
        }
        struct msgr_conn *cl = msgr_get_connection(l->m, MSGR_ENTITY_OSD, &wa, NULL);
        assert_true(msgr_conn_is_connected(cl));
        msgr_conn_unref(cl);
        assert_int_equal(l->remote_resets + w->remote_resets, 0);
        world_down(&wd);
    }
}

/*
 * ReconnectRaceTest: an established lossless_peer session breaks (a
 * reset), both sides have something to send and reconnect at once, both
 * held at SEND_RECONNECT and released together. One reconnect wins: one
 * RECONNECT_OK in all; the loser sent one RECONNECT; when the winner had
 * to try twice, the loser answered RETRY_GLOBAL once. Nothing is lost or
 * duplicated, and no session was reset.
 */
static void
test_reconnect_race(void **state)
{
    (void)state;
    struct world wd;
    world_up(&wd, MSGR_POLICY_LOSSLESS_PEER, MSGR_POLICY_LOSSLESS_PEER);
    struct side *srv = &wd.side[0], *cli = &wd.side[1];
    struct msgr_addrvec ca;
    my_addrs(cli, &ca);
    send_one(cli->m, &wd.srv_addrs);
    settle(&wd);
    send_one(srv->m, &ca);
    settle(&wd);
    assert_int_equal(srv->delivered, 1);
    assert_int_equal(cli->delivered, 1);
    assert_true(sim_reset_between(wd.w, wd.host[0], wd.host[1]) > 0);
    run_for(&wd, 10 * MSGR_NS_PER_MS);
    srv->step = cli->step = MSGR_STEP_SEND_RECONNECT;
    srv->action = cli->action = MSGR_INTERCEPT_HOLD;
    srv->times = cli->times = 1;
    send_one(cli->m, &wd.srv_addrs);
    send_one(srv->m, &ca);
    run_for(&wd, 1 * MSGR_NS_PER_S);
    assert_non_null(srv->held);
    assert_non_null(cli->held);
    release(srv, MSGR_INTERCEPT_CONTINUE);
    release(cli, MSGR_INTERCEPT_CONTINUE);
    settle(&wd);
    assert_int_equal(srv->delivered, 2);
    assert_int_equal(cli->delivered, 2);
    int ok_s = srv->frames_out[15 /* RECONNECT_OK */];
    int ok_c = cli->frames_out[15];
    assert_int_equal(ok_s + ok_c, 1);
    struct side *win = ok_c ? srv : cli, *lose = ok_c ? cli : srv;
    /* the loser answered the winner's reconnect and sent one of its own */
    assert_int_equal(lose->frames_out[11 /* SESSION_RECONNECT */], 1);
    assert_true(win->frames_out[11] >= 1 && win->frames_out[11] <= 2);
    if (win->frames_out[11] == 2)
        assert_int_equal(lose->frames_out[14 /* RETRY_GLOBAL */], 1);
    assert_int_equal(srv->remote_resets + cli->remote_resets, 0);
    /* half-accepted losers may report a reset (as in Ceph); sessions not */
    world_down(&wd);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_missing_server_ident),
        cmocka_unit_test(test_reconnect),
        cmocka_unit_test(test_stop_at_ready),
        cmocka_unit_test(test_hold_every_handshake_step),
        cmocka_unit_test(test_hold_message_steps),
        cmocka_unit_test(test_connection_race),
        cmocka_unit_test(test_connection_race_reuse_banner),
        cmocka_unit_test(test_reconnect_race),
    };
    return cmocka_run_group_tests_name("sim_catalog", tests, NULL, NULL);
}
