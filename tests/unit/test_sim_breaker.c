/*
 * Frame breakpoints (msgr_set_frame_breaker), on the simulated stack: at a
 * frame tag or socket step, in a direction, at its Nth occurrence, a
 * connection faults, stops, holds or stalls exactly at that frame's
 * boundary. Frames are counted through the tracer (written frames, read
 * frames), so "the frames before went out, nothing from the boundary on"
 * is checked on the wire, on both sides.
 *
 * The client (client.0, unbound: the osd cannot dial it back) sends
 * NMSG lossless messages to osd.1.
 */
#include "sim_pair.h"

#define NMSG 5
#define SECOND MSGR_NS_PER_S

enum side { SIDE_A, SIDE_B }; /* client.0, osd.1 */

/* An action applied at the round-th occurrence of (dir, tag). */
struct rule {
    int dir;
    unsigned tag;
    int round;
    int action;
    int seen, fired;
    long out_at_fire; /* MESSAGE frames written when it fired */
};

struct brk {
    enum side side;
    struct rule rules[2];
    int nrules;
    long asked[2][0x200]; /* calls by direction and step */
    struct msgr_conn *conn; /* where the first rule fired (a ref) */
    long conn_faults;       /* faults traced on conn */
    int bad_side;           /* client_side disagreed with the side */
};

static struct pair P;
static struct brk BA, BB;

static struct brk *
brk_of(struct msgr *m)
{
    return m == P.ma ? &BA : &BB;
}

static int
on_frame(void *arg, struct msgr_conn *c, int dir, unsigned tag,
         int client_side)
{
    struct brk *b = arg;
    if (client_side != (b->side == SIDE_A))
        b->bad_side = 1;
    assert_true(tag < 0x200);
    b->asked[dir][tag]++;
    for (int i = 0; i < b->nrules; i++) {
        struct rule *r = &b->rules[i];
        if (r->dir != dir || r->tag != tag || r->fired)
            continue;
        if (++r->seen < r->round)
            continue;
        r->fired = 1;
        r->out_at_fire = P.ca.frames_out[MSGR_TAG_MESSAGE];
        if (i == 0) {
            msgr_conn_ref(c);
            b->conn = c;
        }
        return r->action;
    }
    return MSGR_INTERCEPT_CONTINUE;
}

static void
on_fault(struct msgr *m, struct msgr_conn *c)
{
    struct brk *b = brk_of(m);
    if (c == b->conn)
        b->conn_faults++;
}

static const struct msgr_frame_breaker breaker_a = {.arg = &BA,
                                                    .frame = on_frame};
static const struct msgr_frame_breaker breaker_b = {.arg = &BB,
                                                    .frame = on_frame};

/* server: the osd's policy toward clients (NULL: lossless peer). */
static void
up(const struct msgr_policy *server)
{
    memset(&BA, 0, sizeof(BA));
    memset(&BB, 0, sizeof(BB));
    BA.side = SIDE_A;
    BB.side = SIDE_B;
    pair_breaker_a = &breaker_a;
    pair_breaker_b = &breaker_b;
    pair_fault_hook = on_fault;
    struct msgr_config ca = {.max_backoff_ns = 1 * SECOND};
    struct msgr_config cb = {.max_backoff_ns = 1 * SECOND};
    pair_init(&P, 5, &ca, &cb, server);
}

static void
down(void)
{
    msgr_conn_unref(BA.conn);
    msgr_conn_unref(BB.conn);
    BA.conn = BB.conn = NULL;
    pair_fini(&P);
    pair_breaker_a = pair_breaker_b = NULL;
    pair_fault_hook = NULL;
}

static void
add_rule(struct brk *b, int dir, unsigned tag, int round, int action)
{
    assert_true(b->nrules < 2);
    b->rules[b->nrules++] =
        (struct rule){.dir = dir, .tag = tag, .round = round, .action = action};
}

static long
total(const long *v)
{
    long n = 0;
    for (int i = 0; i < 256; i++)
        n += v[i];
    return n;
}

static void
send_all(int n, uint64_t first)
{
    for (int i = 0; i < n; i++)
        pair_send(&P, MSGR_MSG_TEST, first + (uint64_t)i, 100);
}

/* Every lossless message arrived once, in order. */
static void
assert_exactly_once(long n)
{
    assert_true(pair_wait_delivered(&P, n, 20 * SECOND));
    pair_run(&P, 2 * SECOND);
    assert_int_equal(P.rx.delivered, n);
    assert_int_equal(P.rx.out_of_order, 0);
}

/* ------------------------------------------------------------ cases */

enum prelude {
    PRE_NONE,
    PRE_FAULT,     /* the client faults at its 3rd MESSAGE write first */
    PRE_KEEPALIVE, /* once the session is open, the client sends one */
};

struct bcase {
    const char *name;
    enum side side;
    int dir;
    unsigned tag;
    int round;
    enum prelude pre;
    /* stalled, the osd's connection is taken over before release: the
     * client, with messages unacknowledged, dials again and the session
     * resumes in it on the new socket (a reuse ends a hold) */
    int taken_over;
};

static const struct bcase cases[] = {
    {"client_ident write", SIDE_A, 1, MSGR_TAG_CLIENT_IDENT, 1, PRE_NONE, 0},
    {"server_ident write", SIDE_B, 1, MSGR_TAG_SERVER_IDENT, 1, PRE_NONE, 1},
    {"server_ident read", SIDE_A, 0, MSGR_TAG_SERVER_IDENT, 1, PRE_NONE, 0},
    {"message write round 3", SIDE_A, 1, MSGR_TAG_MESSAGE, 3, PRE_NONE, 0},
    {"message read round 3", SIDE_B, 0, MSGR_TAG_MESSAGE, 3, PRE_NONE, 1},
    {"session_reconnect write", SIDE_A, 1, MSGR_TAG_SESSION_RECONNECT, 1,
     PRE_FAULT, 0},
    {"keepalive2 read", SIDE_B, 0, MSGR_TAG_KEEPALIVE2, 1, PRE_KEEPALIVE, 0},
    {"ack write", SIDE_B, 1, MSGR_TAG_ACK, 1, PRE_NONE, 0},
    {"ack read", SIDE_A, 0, MSGR_TAG_ACK, 1, PRE_NONE, 0},
    {"banner write", SIDE_A, 1, MSGR_BREAK_BANNER, 1, PRE_NONE, 0},
    {"banner read", SIDE_B, 0, MSGR_BREAK_BANNER, 1, PRE_NONE, 0},
    {"connecting", SIDE_A, 1, MSGR_BREAK_CONNECTING, 1, PRE_NONE, 0},
    {"accepted", SIDE_B, 0, MSGR_BREAK_ACCEPTED, 1, PRE_NONE, 0},
};
#define NCASES ((int)(sizeof(cases) / sizeof(cases[0])))

static int
is_socket_step(unsigned tag)
{
    return tag >= MSGR_BREAK_BANNER;
}

static struct pair_counts *mine(const struct bcase *k);
static struct pair_counts *peers(const struct bcase *k);
static void assert_boundary(const struct bcase *k, long passed);

static int
fired(void *arg)
{
    return ((struct brk *)arg)->rules[0].fired;
}

/* Brings a case to the moment its rule fired, and checks the boundary
 * there: the frames before it were written or read; of it, only what a
 * stall lets through. */
static struct brk *
arm_and_run(const struct bcase *k, int action)
{
    up(NULL);
    struct brk *b = k->side == SIDE_A ? &BA : &BB;
    add_rule(b, k->dir, k->tag, k->round, action);
    if (k->pre == PRE_FAULT) {
        add_rule(&BA, 1, MSGR_TAG_MESSAGE, 3, MSGR_INTERCEPT_FAIL);
    }
    send_all(NMSG, 0);
    if (k->pre == PRE_KEEPALIVE) {
        assert_true(pair_wait_delivered(&P, NMSG, 5 * SECOND));
        struct msgr_conn *c = pair_conn(&P);
        msgr_conn_send_keepalive(c);
        msgr_conn_unref(c);
    }
    assert_true(sim_run_until_cond(P.w, fired, b, sim_now(P.w) + 5 * SECOND));
    assert_int_equal(b->rules[0].fired, 1);
    assert_non_null(b->conn);
    assert_boundary(k, k->round - 1 + (action == MSGR_INTERCEPT_STALL));
    return b;
}

static struct pair_counts *
mine(const struct bcase *k)
{
    return k->side == SIDE_A ? &P.ca : &P.cb;
}

static struct pair_counts *
peers(const struct bcase *k)
{
    return k->side == SIDE_A ? &P.cb : &P.ca;
}

/* What a hold at the boundary let through: the frames before, not the
 * one it holds nor any later. */
static void
assert_boundary(const struct bcase *k, long passed)
{
    struct pair_counts *m = mine(k);
    if (is_socket_step(k->tag)) {
        /* before the first frame of the attempt */
        assert_int_equal(total(m->frames_out) + total(m->frames_in), 0);
        return;
    }
    if (k->dir == 1)
        assert_int_equal(m->frames_out[k->tag], passed);
    else
        assert_int_equal(m->frames_in[k->tag], passed);
}

static void
hold_case(const struct bcase *k, int release_action)
{
    struct brk *b = arm_and_run(k, MSGR_INTERCEPT_HOLD);
    pair_run(&P, 1 * SECOND);
    assert_int_equal(msgr_conn_held_step(b->conn),
                     MSGR_BREAK_HELD_STEP(k->dir, k->tag));
    assert_boundary(k, k->round - 1);
    if (k->dir == 1 && !is_socket_step(k->tag))
        /* on the peer's side too */
        assert_int_equal(peers(k)->frames_in[k->tag], k->round - 1);
    if (k->dir == 0 && k->tag == MSGR_TAG_MESSAGE)
        assert_int_equal(P.rx.delivered, k->round - 1);
    /* nothing moves while it holds, however long */
    long before = total(P.ca.frames_out) + total(P.cb.frames_out) +
                  total(P.ca.frames_in) + total(P.cb.frames_in);
    long delivered = P.rx.delivered;
    pair_run(&P, 3 * SECOND);
    assert_int_equal(total(P.ca.frames_out) + total(P.cb.frames_out) +
                         total(P.ca.frames_in) + total(P.cb.frames_in),
                     before);
    assert_int_equal(P.rx.delivered, delivered);
    assert_int_equal(b->conn_faults, 0);
    assert_int_equal(msgr_conn_held_step(b->conn),
                     MSGR_BREAK_HELD_STEP(k->dir, k->tag));
    assert_int_equal(msgr_conn_release(b->conn, release_action), 0);
    assert_exactly_once(NMSG);
    assert_int_equal(msgr_conn_held_step(b->conn), 0);
    if (release_action == MSGR_INTERCEPT_CONTINUE) {
        assert_int_equal(b->conn_faults, 0);
        if (k->dir == 0 && !is_socket_step(k->tag)) {
            /* the held frame was processed once, without asking again */
            assert_int_equal(mine(k)->frames_in[k->tag],
                             b->asked[0][k->tag]);
        }
        if (k->dir == 1 && !is_socket_step(k->tag))
            assert_true(mine(k)->frames_out[k->tag] >= k->round);
    } else {
        assert_true(b->conn_faults >= 1);
    }
    /* (the osd's half-accepted connections that fault before a session
     * do tell the application, as Ceph's do; the client's never) */
    assert_int_equal(P.ca.resets, 0);
    if (release_action == MSGR_INTERCEPT_CONTINUE)
        assert_int_equal(P.cb.resets, 0);
    assert_int_equal(P.rx.remote_resets, 0);
    assert_int_equal(b->bad_side, 0);
    down();
}

static void
fail_case(const struct bcase *k)
{
    struct brk *b = arm_and_run(k, MSGR_INTERCEPT_FAIL);
    /* the connection faulted at the boundary, as a socket error would
     * make it, and the session went on: exactly once still */
    assert_true(b->conn_faults >= 1);
    assert_exactly_once(NMSG);
    if (k->dir == 1 && !is_socket_step(k->tag) && k->tag != MSGR_TAG_ACK)
        /* the failed frame was sent again, by the next attempt (an ACK
         * is not: the reconnect carries the count) */
        assert_true(mine(k)->frames_out[k->tag] >= k->round);
    assert_int_equal(P.ca.resets + P.rx.remote_resets, 0);
    assert_int_equal(b->bad_side, 0);
    down();
}

static void
stop_case(const struct bcase *k)
{
    struct brk *b = arm_and_run(k, MSGR_INTERCEPT_STOP);
    assert_string_equal(msgr_conn_state_name(b->conn), "CLOSED");
    pair_run(&P, 3 * SECOND);
    /* the application was told, once for that connection */
    if (k->side == SIDE_A)
        assert_int_equal(P.ca.resets, 1);
    else
        assert_true(P.cb.resets >= 1);
    assert_int_equal(b->conn_faults, 0);
    assert_int_equal(msgr_conn_held_step(b->conn), 0);
    assert_int_equal(P.rx.out_of_order, 0);
    down();
}

static void
stall_case(const struct bcase *k)
{
    struct brk *b = arm_and_run(k, MSGR_INTERCEPT_STALL);
    long peer_faults = peers(k)->faults;
    pair_run(&P, 3 * SECOND);
    /* the frame went out (or was processed), then the cut: the peer saw
     * it, we did not */
    if (!is_socket_step(k->tag) && k->dir == 1)
        assert_true(peers(k)->frames_in[k->tag] >= k->round);
    assert_true(peers(k)->faults > peer_faults);
    assert_int_equal(b->conn_faults, 0);
    if (k->taken_over) {
        assert_int_equal(msgr_conn_held_step(b->conn), 0);
        assert_string_equal(msgr_conn_state_name(b->conn), "READY");
        assert_exactly_once(NMSG);
        assert_int_equal(b->conn_faults, 0);
        down();
        return;
    }
    assert_int_equal(msgr_conn_held_step(b->conn),
                     MSGR_BREAK_HELD_STEP(k->dir, k->tag));
    assert_int_equal(msgr_conn_release(b->conn, MSGR_INTERCEPT_CONTINUE), 0);
    pair_run(&P, 10 * MSGR_NS_PER_MS);
    assert_int_equal(b->conn_faults, 1); /* it noticed the cut */
    assert_exactly_once(NMSG);
    assert_int_equal(b->bad_side, 0);
    down();
}

static void
test_hold_release(void **state)
{
    (void)state;
    for (int i = 0; i < NCASES; i++) {
        print_message("hold, release: %s\n", cases[i].name);
        hold_case(&cases[i], MSGR_INTERCEPT_CONTINUE);
    }
}

static void
test_hold_release_fail(void **state)
{
    (void)state;
    for (int i = 0; i < NCASES; i++) {
        print_message("hold, release with fail: %s\n", cases[i].name);
        hold_case(&cases[i], MSGR_INTERCEPT_FAIL);
    }
}

static void
test_fail(void **state)
{
    (void)state;
    for (int i = 0; i < NCASES; i++) {
        print_message("fail: %s\n", cases[i].name);
        fail_case(&cases[i]);
    }
}

static void
test_stop(void **state)
{
    (void)state;
    for (int i = 0; i < NCASES; i++) {
        print_message("stop: %s\n", cases[i].name);
        stop_case(&cases[i]);
    }
}

static void
test_stall(void **state)
{
    (void)state;
    for (int i = 0; i < NCASES; i++) {
        print_message("stall: %s\n", cases[i].name);
        stall_case(&cases[i]);
    }
}

/*
 * Ten messages queued at once go out in one gather write; a hold at the
 * fifth stops that write exactly at its boundary: four MESSAGE frames on
 * the wire, the fifth and later ones behind.
 */
static void
test_batch_boundary(void **state)
{
    (void)state;
    up(NULL);
    send_all(1, 0);
    assert_true(pair_wait_delivered(&P, 1, 5 * SECOND));
    /* rounds count from when the rule is armed */
    add_rule(&BA, 1, MSGR_TAG_MESSAGE, 5, MSGR_INTERCEPT_HOLD);
    send_all(10, 1);
    pair_run(&P, 2 * SECOND);
    assert_int_equal(BA.rules[0].fired, 1);
    /* asked for the fifth before any of the batch was written: one write
     * carried the four before it */
    assert_int_equal(BA.rules[0].out_at_fire, 1);
    assert_int_equal(P.ca.frames_out[MSGR_TAG_MESSAGE], 1 + 4);
    assert_int_equal(P.cb.frames_in[MSGR_TAG_MESSAGE], 1 + 4);
    assert_int_equal(P.rx.delivered, 1 + 4);
    assert_int_equal(P.ca.fate[MSGR_FATE_SENT], 1 + 4);
    /* what is sent meanwhile queues behind */
    send_all(2, 11);
    pair_run(&P, 2 * SECOND);
    assert_int_equal(P.ca.frames_out[MSGR_TAG_MESSAGE], 1 + 4);
    assert_int_equal(msgr_conn_release(BA.conn, MSGR_INTERCEPT_CONTINUE), 0);
    assert_exactly_once(13);
    assert_int_equal(P.ca.frames_out[MSGR_TAG_MESSAGE], 13);
    assert_int_equal(BA.asked[1][MSGR_TAG_MESSAGE], 13);
    down();
}

/*
 * A frame held while reading a message that spans several socket reads
 * is rewound whole and processed once on release.
 */
static void
test_hold_large_message_read(void **state)
{
    (void)state;
    up(NULL);
    add_rule(&BB, 0, MSGR_TAG_MESSAGE, 2, MSGR_INTERCEPT_HOLD);
    for (int i = 0; i < 3; i++)
        pair_send(&P, MSGR_MSG_TEST, (uint64_t)i, 512 * 1024);
    pair_run(&P, 2 * SECOND);
    assert_int_equal(BB.rules[0].fired, 1);
    assert_int_equal(P.rx.delivered, 1);
    assert_int_equal(P.cb.frames_in[MSGR_TAG_MESSAGE], 1);
    assert_int_equal(msgr_conn_release(BB.conn, MSGR_INTERCEPT_CONTINUE), 0);
    assert_exactly_once(3);
    assert_int_equal(BB.asked[0][MSGR_TAG_MESSAGE], 3);
    assert_int_equal(BB.conn_faults, 0);
    down();
}

/*
 * Every MESSAGE frame read has a fate: one an interceptor fails at
 * HANDLE_MESSAGE is reported dropped (the sender replays it).
 */
static int icpt_hits;

static int
fail_first_message(void *arg, struct msgr_conn *c, int step)
{
    (void)arg;
    (void)c;
    if (step == MSGR_STEP_HANDLE_MESSAGE && icpt_hits++ == 1)
        return MSGR_INTERCEPT_FAIL;
    return MSGR_INTERCEPT_CONTINUE;
}

static void
test_failed_message_has_fate(void **state)
{
    (void)state;
    pair_breaker_a = pair_breaker_b = NULL;
    struct msgr_config ca = {.max_backoff_ns = 1 * SECOND};
    struct msgr_config cb = {.max_backoff_ns = 1 * SECOND};
    pair_init(&P, 5, &ca, &cb, NULL);
    icpt_hits = 0;
    struct msgr_interceptor ic = {.intercept = fail_first_message};
    msgr_set_interceptor(P.mb, &ic); /* sim: single-threaded */
    send_all(NMSG, 0);
    assert_exactly_once(NMSG);
    long in = P.cb.frames_in[MSGR_TAG_MESSAGE];
    assert_int_equal(in, NMSG + 1);
    assert_int_equal(P.cb.fate[MSGR_FATE_DROPPED], 1);
    assert_int_equal(P.cb.fate[MSGR_FATE_DELIVERED] +
                         P.cb.fate[MSGR_FATE_DROPPED] +
                         P.cb.fate[MSGR_FATE_DUPLICATE],
                     in);
    pair_fini(&P);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hold_release),
        cmocka_unit_test(test_hold_release_fail),
        cmocka_unit_test(test_fail),
        cmocka_unit_test(test_stop),
        cmocka_unit_test(test_stall),
        cmocka_unit_test(test_batch_boundary),
        cmocka_unit_test(test_hold_large_message_read),
        cmocka_unit_test(test_failed_message_has_fate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
