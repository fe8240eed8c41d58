/*
 * keepalive_interval_ns: a READY connection sends KEEPALIVE2 on a timer,
 * the peer answers, and last_keepalive_ack advances; the timer stops with
 * the connection.
 */
#include "sim_pair.h"

static struct pair P;

static int
conn_ready(void *arg)
{
    return msgr_conn_is_connected(arg);
}

/* KEEPALIVE2 frames the client sent over one virtual second once READY,
 * and its last ack at the half and at the end. */
static long
count_keepalives(msgr_time_ns interval, msgr_time_ns *ack_half,
                 msgr_time_ns *ack_end)
{
    struct msgr_config ca = {.keepalive_interval_ns = interval}, cb = {0};
    pair_init(&P, 3, &ca, &cb, NULL);
    pair_send(&P, MSGR_MSG_TEST, 0, 0);
    struct msgr_conn *c = pair_conn(&P);
    assert_true(sim_run_until_cond(P.w, conn_ready, c,
                                   sim_now(P.w) + MSGR_NS_PER_S));
    long k0 = P.ca.frames_out[MSGR_TAG_KEEPALIVE2];
    pair_run(&P, MSGR_NS_PER_S / 2);
    *ack_half = msgr_conn_last_keepalive_ack(c);
    pair_run(&P, MSGR_NS_PER_S / 2);
    *ack_end = msgr_conn_last_keepalive_ack(c);
    long n = P.ca.frames_out[MSGR_TAG_KEEPALIVE2] - k0;
    /* the osd answered each one (the last answer may be in flight) */
    assert_true(P.cb.frames_out[MSGR_TAG_KEEPALIVE2_ACK] + 1 >=
                P.ca.frames_out[MSGR_TAG_KEEPALIVE2]);
    assert_true(P.cb.frames_out[MSGR_TAG_KEEPALIVE2_ACK] <=
                P.ca.frames_out[MSGR_TAG_KEEPALIVE2]);
    assert_int_equal(P.cb.frames_out[MSGR_TAG_KEEPALIVE2], 0);

    /* closed: no more keepalives */
    msgr_conn_mark_down(c);
    pair_run(&P, 10 * MSGR_NS_PER_MS);
    long closed = P.ca.frames_out[MSGR_TAG_KEEPALIVE2];
    pair_run(&P, MSGR_NS_PER_S);
    assert_int_equal(P.ca.frames_out[MSGR_TAG_KEEPALIVE2], closed);
    msgr_conn_unref(c);
    pair_fini(&P);
    return n;
}

static void
test_keepalive_every_100ms(void **state)
{
    (void)state;
    msgr_time_ns half, end;
    long n = count_keepalives(100 * MSGR_NS_PER_MS, &half, &end);
    print_message("%ld keepalives in 1 s, acks at %llu and %llu ns\n", n,
                  (unsigned long long)half, (unsigned long long)end);
    assert_true(n >= 9 && n <= 11);
    assert_true(half > 0);
    assert_true(end > half);
}

static void
test_keepalive_off(void **state)
{
    (void)state;
    msgr_time_ns half, end;
    long n = count_keepalives(0, &half, &end);
    assert_int_equal(n, 0);
    assert_int_equal(half, 0);
    assert_int_equal(end, 0);
}

/* After a transport fault the resumed session keeps sending them. */
static void
test_keepalive_after_reset(void **state)
{
    (void)state;
    struct msgr_config ca = {.keepalive_interval_ns = 100 * MSGR_NS_PER_MS},
                       cb = {0};
    pair_init(&P, 4, &ca, &cb, NULL);
    pair_send(&P, MSGR_MSG_TEST, 0, 0);
    struct msgr_conn *c = pair_conn(&P);
    assert_true(sim_run_until_cond(P.w, conn_ready, c,
                                   sim_now(P.w) + MSGR_NS_PER_S));
    pair_run(&P, 250 * MSGR_NS_PER_MS);
    assert_int_equal(sim_reset_between(P.w, P.ha, P.hb), 1);
    pair_send(&P, MSGR_MSG_TEST, 1, 0); /* wakes a standby session */
    pair_run(&P, 50 * MSGR_NS_PER_MS);
    assert_true(sim_run_until_cond(P.w, conn_ready, c,
                                   sim_now(P.w) + 5 * MSGR_NS_PER_S));
    long k0 = P.ca.frames_out[MSGR_TAG_KEEPALIVE2];
    msgr_time_ns a0 = msgr_conn_last_keepalive_ack(c);
    pair_run(&P, MSGR_NS_PER_S);
    long n = P.ca.frames_out[MSGR_TAG_KEEPALIVE2] - k0;
    assert_true(n >= 9 && n <= 11);
    assert_true(msgr_conn_last_keepalive_ack(c) > a0);
    assert_int_equal(P.rx.delivered, 2);
    msgr_conn_unref(c);
    pair_fini(&P);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keepalive_every_100ms),
        cmocka_unit_test(test_keepalive_off),
        cmocka_unit_test(test_keepalive_after_reset),
    };
    return cmocka_run_group_tests_name("sim_keepalive", tests, NULL, NULL);
}
