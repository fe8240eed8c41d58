/*
 * Holds and frame breakers on both stacks (MSGR_TEST_STACK): the
 * interceptor's MSGR_INTERCEPT_HOLD and the frame breaker's HOLD, FAIL and
 * STALL, tested so far on the simulator only (tests/unit/test_sim_breaker.c,
 * test_sim_catalog.c), here also on real sockets on 127.0.0.1.
 *
 * The pair: osd.0 (bound, no echo) and an unbound client, lossless_peer
 * both ways; the client sends NMSG requests on stream 0. The harness's
 * dispatcher checks the order per stream (a duplicate or a gap is an
 * error) and its tracer counts frames by tag, which is how "what reached
 * the wire" is checked.
 *
 * Threads (posix): interceptor and breaker callbacks run on the stack's
 * workers. They only touch atomics, take a reference to the connection
 * they act on, and never assert; the main thread waits through the
 * harness, asserts, releases and drops the reference.
 */
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

#define NMSG 5
/* How long a hold is watched for not moving: wall time on posix, virtual
 * time on the sim. */
#define HOLD_WATCH_NS (200 * MSGR_NS_PER_MS)

/* One armed action: the interceptor's (at step) or the breaker's (at the
 * round-th (dir, tag)), fired once. */
struct arm {
    int step;      /* interceptor: an msgr_step */
    int dir;       /* breaker */
    unsigned tag;  /* breaker */
    int round;     /* breaker: fire at this occurrence */
    int action;
    _Atomic int seen, fired;
    _Atomic(struct msgr_conn *) conn; /* where it fired (a reference) */
};

struct ctx {
    struct h_world *w;
    struct arm icpt, brk;
};

static struct ctx g;

static void
arm_take(struct arm *a, struct msgr_conn *c)
{
    msgr_conn_ref(c);
    struct msgr_conn *old = atomic_exchange(&a->conn, c);
    if (old) /* cannot happen (fired once); keep the count right anyway */
        msgr_conn_unref(old);
    atomic_store(&a->fired, 1); /* last: the main thread then sees conn */
}

static int
on_step(void *arg, struct msgr_conn *c, int step)
{
    struct arm *a = arg;
    if (step != a->step || atomic_load(&a->fired))
        return MSGR_INTERCEPT_CONTINUE;
    arm_take(a, c);
    return a->action;
}

static int
on_frame(void *arg, struct msgr_conn *c, int dir, unsigned tag,
         int client_side)
{
    struct arm *a = arg;
    (void)client_side;
    if (dir != a->dir || tag != a->tag || atomic_load(&a->fired))
        return MSGR_INTERCEPT_CONTINUE;
    if (atomic_fetch_add(&a->seen, 1) + 1 < a->round)
        return MSGR_INTERCEPT_CONTINUE;
    arm_take(a, c);
    return a->action;
}

static int
setup(void **state)
{
    memset(&g, 0, sizeof(g));
    g.w = h_world_new();
    if (!g.w)
        return -1;
    *state = g.w;
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    /* messengers down first (no more callbacks), then our references */
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
    struct arm *arms[] = {&g.icpt, &g.brk};
    for (int i = 0; i < 2; i++) {
        struct msgr_conn *c = atomic_exchange(&arms[i]->conn, NULL);
        if (c)
            msgr_conn_unref(c);
    }
    h_world_finish(w);
    return 0;
}

/* ------------------------------------------------------------- helpers */

static void
pair(struct h_world *w, struct h_node **srv, struct h_node **cli)
{
    struct h_spec ss = {.label = "osd.0", .type = MSGR_ENTITY_OSD, .num = 0,
                        .bind = 1, .echo = 0};
    struct h_spec cs = {.label = "client", .type = MSGR_ENTITY_CLIENT,
                        .num = 1, .bind = 0};
    *srv = h_node_new(w, &ss);
    *cli = h_node_new(w, &cs);
    h_policy(*srv, MSGR_ENTITY_CLIENT, MSGR_POLICY_LOSSLESS_PEER);
    h_policy(*cli, MSGR_ENTITY_OSD, MSGR_POLICY_LOSSLESS_PEER);
}

static void
with_interceptor(struct h_node *n, int step, int action)
{
    g.icpt.step = step;
    g.icpt.action = action;
    struct msgr_interceptor i = {.arg = &g.icpt, .intercept = on_step};
    msgr_set_interceptor(n->m, &i);
}

static void
with_breaker(struct h_node *n, int dir, unsigned tag, int round, int action)
{
    g.brk.dir = dir;
    g.brk.tag = tag;
    g.brk.round = round;
    g.brk.action = action;
    struct msgr_frame_breaker b = {.arg = &g.brk, .frame = on_frame};
    msgr_set_frame_breaker(n->m, &b);
}

/* Starts both, sends NMSG requests; the client's connection (the world
 * holds the reference). */
static struct msgr_conn *
start_and_send(struct h_node *srv, struct h_node *cli)
{
    h_node_start(srv);
    h_node_start(cli);
    struct msgr_addrvec to;
    h_node_addrs(srv, &to);
    struct msgr_conn *c = h_get_conn(cli, MSGR_ENTITY_OSD, &to);
    for (int i = 0; i < NMSG; i++) {
        struct msgr_msg *m =
            h_msg_new(cli, H_MSG_REQ, 0, cli->tx_seq[0]++, 0, 0, 100);
        assert_non_null(m);
        assert_int_equal(h_conn_send(c, m), 0);
    }
    return c;
}

struct held_arg {
    struct arm *a;
    int step;
};

static int
is_held(void *arg)
{
    struct held_arg *h = arg;
    if (!atomic_load(&h->a->fired))
        return 0;
    return msgr_conn_held_step(atomic_load(&h->a->conn)) == h->step;
}

/* Waits until the arm fired and its connection is held at step; that
 * connection. */
static struct msgr_conn *
wait_held(struct h_world *w, struct arm *a, int step)
{
    struct held_arg h = {a, step};
    if (!h_wait(w, is_held, &h, H_WAIT_NS))
        fail_msg("not held at %#x (fired %d, held at %#x)", step,
                 atomic_load(&a->fired),
                 atomic_load(&a->fired)
                     ? msgr_conn_held_step(atomic_load(&a->conn))
                     : 0);
    return atomic_load(&a->conn);
}

/* Every request arrived exactly once, in order (the dispatcher reports a
 * duplicate or a gap as an error), and nothing more comes later. */
static void
assert_exactly_once(struct h_world *w, struct h_node *srv)
{
    if (!h_wait_ge(w, &srv->n_req, NMSG, H_WAIT_NS))
        fail_msg("%d of %d delivered (%s)", atomic_load(&srv->n_req), NMSG,
                 h_first_error(srv));
    h_idle(w, 100 * MSGR_NS_PER_MS);
    h_settle(w);
    assert_int_equal(atomic_load(&srv->n_req), NMSG);
    if (atomic_load(&srv->errors))
        fail_msg("%s", h_first_error(srv));
    assert_int_equal(atomic_load(&srv->errors), 0);
}

static void
assert_no_resets(struct h_node *srv, struct h_node *cli)
{
    assert_int_equal(atomic_load(&cli->n_reset), 0);
    assert_int_equal(atomic_load(&cli->n_remote_reset), 0);
    assert_int_equal(atomic_load(&srv->n_remote_reset), 0);
}

/* ------------------------------------------ 1. interceptor hold */

/*
 * The client is held at SEND_CLIENT_IDENTITY: not connected, nothing
 * delivered, however long; released with `release`, every request
 * arrives exactly once (after a fault and a new attempt for FAIL).
 */
static void
icpt_hold_case(struct h_world *w, int release)
{
    struct h_node *srv, *cli;
    pair(w, &srv, &cli);
    with_interceptor(cli, MSGR_STEP_SEND_CLIENT_IDENTITY, MSGR_INTERCEPT_HOLD);
    struct msgr_conn *c = start_and_send(srv, cli);
    struct msgr_conn *held =
        wait_held(w, &g.icpt, MSGR_STEP_SEND_CLIENT_IDENTITY);
    assert_ptr_equal(held, c);
    h_idle(w, HOLD_WATCH_NS);
    assert_int_equal(msgr_conn_held_step(held),
                     MSGR_STEP_SEND_CLIENT_IDENTITY);
    assert_false(msgr_conn_is_connected(c));
    assert_int_equal(atomic_load(&cli->n_connect), 0);
    assert_int_equal(atomic_load(&cli->tag_out[MSGR_TAG_CLIENT_IDENT]), 0);
    assert_int_equal(atomic_load(&srv->msg_frames_in), 0);
    assert_int_equal(atomic_load(&srv->n_req), 0);
    assert_int_equal(atomic_load(&cli->nfaults), 0);

    assert_int_equal(msgr_conn_release(held, release), 0);
    assert_exactly_once(w, srv);
    assert_true(h_wait_connected(w, c, 1, H_WAIT_NS));
    assert_int_equal(msgr_conn_held_step(held), 0);
    if (release == MSGR_INTERCEPT_FAIL) {
        assert_true(h_fault_count(cli, MSGR_EINJECTED) >= 1);
        /* the next attempt sent CLIENT_IDENT again */
        assert_true(atomic_load(&cli->tag_out[MSGR_TAG_CLIENT_IDENT]) >= 1);
    } else {
        assert_int_equal(h_fault_count(cli, MSGR_EINJECTED), 0);
        assert_int_equal(atomic_load(&cli->tag_out[MSGR_TAG_CLIENT_IDENT]), 1);
    }
    assert_no_resets(srv, cli);
}

static void
test_icpt_hold_continue(void **state)
{
    icpt_hold_case(*state, MSGR_INTERCEPT_CONTINUE);
}

static void
test_icpt_hold_fail(void **state)
{
    icpt_hold_case(*state, MSGR_INTERCEPT_FAIL);
}

/* ------------------------------------ 2. breaker hold at a write */

/*
 * A hold at the client's 3rd MESSAGE write: exactly two MESSAGE frames
 * reach the server while it holds; on release all arrive once, in order,
 * without a fault.
 */
static void
test_brk_hold_message_write(void **state)
{
    struct h_world *w = *state;
    struct h_node *srv, *cli;
    pair(w, &srv, &cli);
    with_breaker(cli, 1, MSGR_TAG_MESSAGE, 3, MSGR_INTERCEPT_HOLD);
    (void)start_and_send(srv, cli);
    int step = MSGR_BREAK_HELD_STEP(1, MSGR_TAG_MESSAGE);
    struct msgr_conn *held = wait_held(w, &g.brk, step);
    if (!h_wait_ge(w, &srv->tag_in[MSGR_TAG_MESSAGE], 2, H_WAIT_NS))
        fail_msg("%d MESSAGE frames in before the hold",
                 atomic_load(&srv->tag_in[MSGR_TAG_MESSAGE]));
    h_idle(w, HOLD_WATCH_NS);
    h_settle(w);
    assert_int_equal(msgr_conn_held_step(held), step);
    assert_int_equal(atomic_load(&cli->tag_out[MSGR_TAG_MESSAGE]), 2);
    assert_int_equal(atomic_load(&srv->tag_in[MSGR_TAG_MESSAGE]), 2);
    assert_int_equal(atomic_load(&srv->n_req), 2);

    assert_int_equal(msgr_conn_release(held, MSGR_INTERCEPT_CONTINUE), 0);
    assert_exactly_once(w, srv);
    assert_int_equal(msgr_conn_held_step(held), 0);
    assert_int_equal(atomic_load(&cli->nfaults), 0);
    assert_int_equal(atomic_load(&cli->tag_out[MSGR_TAG_MESSAGE]), NMSG);
    assert_no_resets(srv, cli);
    assert_int_equal(atomic_load(&srv->n_reset), 0);
}

/* ------------------------------------- 3. breaker fail at a read */

/*
 * FAIL at the server's 2nd MESSAGE read: the server's connection faults
 * before processing it, the client reconnects and replays what was not
 * acknowledged, the session survives: exactly once, in order, no reset
 * (lossless_peer both ways).
 */
static void
test_brk_fail_message_read(void **state)
{
    struct h_world *w = *state;
    struct h_node *srv, *cli;
    pair(w, &srv, &cli);
    with_breaker(srv, 0, MSGR_TAG_MESSAGE, 2, MSGR_INTERCEPT_FAIL);
    (void)start_and_send(srv, cli);
    assert_exactly_once(w, srv);
    assert_int_equal(atomic_load(&g.brk.fired), 1);
    assert_true(h_fault_count(srv, MSGR_EINJECTED) >= 1);
    /* the breaker is asked once the frame is read whole, so the client
     * had written the failed frame on the first socket and wrote it
     * again in the replay (the failed read itself is not traced) */
    assert_true(atomic_load(&cli->tag_out[MSGR_TAG_MESSAGE]) >= NMSG + 1);
    assert_true(atomic_load(&srv->tag_in[MSGR_TAG_MESSAGE]) >= NMSG);
    assert_true(atomic_load(&cli->tag_out[MSGR_TAG_SESSION_RECONNECT]) >= 1);
    assert_no_resets(srv, cli);
    assert_int_equal(atomic_load(&srv->n_reset), 0);
}

/* ----------------------------------- 4. breaker stall at a write */

/*
 * STALL at the client's CLIENT_IDENT write: the frame goes out, the
 * socket is cut; the server sees the end of the stream (its accepted
 * connection faults) while the client, frozen, notices nothing. On
 * release the client finds the cut, faults, reconnects and delivers
 * exactly once.
 */
static void
test_brk_stall_client_ident(void **state)
{
    struct h_world *w = *state;
    struct h_node *srv, *cli;
    pair(w, &srv, &cli);
    with_breaker(cli, 1, MSGR_TAG_CLIENT_IDENT, 1, MSGR_INTERCEPT_STALL);
    struct msgr_conn *c = start_and_send(srv, cli);
    int step = MSGR_BREAK_HELD_STEP(1, MSGR_TAG_CLIENT_IDENT);
    struct msgr_conn *held = wait_held(w, &g.brk, step);
    assert_ptr_equal(held, c);
    if (!h_wait_ge(w, &srv->nfaults, 1, H_WAIT_NS))
        fail_msg("the server never saw the cut");
    h_idle(w, HOLD_WATCH_NS);
    assert_int_equal(msgr_conn_held_step(held), step);
    assert_int_equal(atomic_load(&cli->nfaults), 0);
    assert_int_equal(atomic_load(&cli->tag_out[MSGR_TAG_CLIENT_IDENT]), 1);
    assert_int_equal(atomic_load(&srv->msg_frames_in), 0);
    assert_int_equal(atomic_load(&srv->n_req), 0);

    assert_int_equal(msgr_conn_release(held, MSGR_INTERCEPT_CONTINUE), 0);
    if (!h_wait_ge(w, &cli->nfaults, 1, H_WAIT_NS))
        fail_msg("the client never noticed the cut");
    assert_exactly_once(w, srv);
    assert_true(h_wait_connected(w, c, 1, H_WAIT_NS));
    assert_int_equal(msgr_conn_held_step(held), 0);
    /* a new attempt was made: a new CLIENT_IDENT, or, when the server's
     * SERVER_IDENT was already in the client's receive buffer at the cut
     * (real sockets: the cut only shuts the stream down), the client
     * reached READY on the old socket, faulted on its next write and
     * came back with SESSION_RECONNECT */
    int ident = atomic_load(&cli->tag_out[MSGR_TAG_CLIENT_IDENT]);
    int recon = atomic_load(&cli->tag_out[MSGR_TAG_SESSION_RECONNECT]);
    print_message("stall: %d CLIENT_IDENT, %d SESSION_RECONNECT\n", ident,
                  recon);
    if (ident + recon < 2)
        fail_msg("no new attempt: %d CLIENT_IDENT, %d SESSION_RECONNECT",
                 ident, recon);
    assert_no_resets(srv, cli);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
        T(test_icpt_hold_continue),
        T(test_icpt_hold_fail),
        T(test_brk_hold_message_write),
        T(test_brk_fail_message_read),
        T(test_brk_stall_client_ident),
#undef T
    };
    const char *filter = getenv("MSGR_TEST_FILTER");
    if (filter && *filter)
        cmocka_set_test_filter(filter);
    return cmocka_run_group_tests_name("breaker", tests, NULL, NULL);
}
