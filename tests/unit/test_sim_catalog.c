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
    (void)c;
    struct side *s = arg;
    if (step != s->step || s->hits >= s->times)
        return MSGR_INTERCEPT_CONTINUE;
    s->hits++;
    return s->action;
}

struct world {
    struct sim_world *w;
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

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_missing_server_ident),
        cmocka_unit_test(test_reconnect),
        cmocka_unit_test(test_stop_at_ready),
    };
    return cmocka_run_group_tests_name("sim_catalog", tests, NULL, NULL);
}
