/*
 * Policy throttles (Ceph's throttler_messages / throttler_bytes): a slow
 * application holding what it received never holds more than the limit
 * from that peer type, the sender's queue grows instead, reading resumes
 * when messages are released, and everything still arrives exactly once
 * in order.
 */
#include "sim_pair.h"

#define N_MSGS   200
#define DATA_LEN 4096
#define MSG_BYTES (64 + DATA_LEN)

static struct pair P;

static struct msgr_policy
server_policy(uint64_t msgs, uint64_t bytes)
{
    struct msgr_policy ps = msgr_policy_make(MSGR_POLICY_STATEFUL_SERVER, 0);
    ps.throttle_msgs = msgs;
    ps.throttle_bytes = bytes;
    return ps;
}

/*
 * Sends N_MSGS, lets the receiver hold what it gets; checks it is stuck
 * at `limit` held with the rest queued at the sender, that releasing
 * resumes the reading, then drains slowly (one release per 2 ms).
 */
static void
check_slow_reader(uint64_t msgs, uint64_t bytes, int limit)
{
    struct msgr_config ca = {0}, cb = {0};
    struct msgr_policy ps = server_policy(msgs, bytes);
    pair_init(&P, 5, &ca, &cb, &ps);
    P.rx.hold = 1;
    for (uint64_t i = 0; i < N_MSGS; i++)
        pair_send(&P, MSGR_MSG_TEST, i, DATA_LEN);
    pair_run(&P, 200 * MSGR_NS_PER_MS);

    /* stuck at the limit: the reader waits, the sender keeps the rest */
    struct msgr_throttle_stats ts;
    msgr_get_throttle(P.mb, MSGR_ENTITY_CLIENT, &ts);
    struct msgr_perf pa, pb;
    msgr_get_perf(P.ma, &pa);
    msgr_get_perf(P.mb, &pb);
    print_message("held %d, throttle msgs %llu bytes %llu, sender wrote %llu "
                  "of %d, waits %llu\n",
                  pair_held(&P), (unsigned long long)ts.msgs_cur,
                  (unsigned long long)ts.bytes_cur,
                  (unsigned long long)pa.msgs_out, N_MSGS,
                  (unsigned long long)pb.throttle_waits);
    assert_int_equal(P.rx.delivered, limit);
    assert_int_equal(pair_held(&P), limit);
    assert_int_equal(pb.msgs_in, (uint64_t)limit);
    assert_true(pa.msgs_out < N_MSGS); /* the sender's queue holds the rest */
    assert_true(pb.throttle_waits > 0);
    if (msgs)
        assert_int_equal(ts.msgs_cur, (uint64_t)limit);
    if (bytes)
        assert_int_equal(ts.bytes_cur, (uint64_t)limit * MSG_BYTES);

    /* released messages give the throttle back: reading resumes */
    while (pair_release_one(&P))
        ;
    pair_run(&P, 20 * MSGR_NS_PER_MS);
    assert_int_equal(P.rx.delivered, 2 * limit);

    /* the slow application drains the rest */
    while (P.rx.delivered < N_MSGS &&
           sim_now(P.w) < 60 * MSGR_NS_PER_S) {
        pair_release_one(&P);
        pair_run(&P, 2 * MSGR_NS_PER_MS);
    }
    while (pair_release_one(&P))
        ;
    pair_run(&P, 10 * MSGR_NS_PER_MS);
    msgr_get_throttle(P.mb, MSGR_ENTITY_CLIENT, &ts);
    assert_int_equal(P.rx.delivered, N_MSGS); /* exactly once ... */
    assert_int_equal(P.rx.out_of_order, 0);   /* ... in order */
    assert_int_equal(P.rx.held_max, limit);   /* never more in memory */
    assert_int_equal(ts.msgs_cur, 0);         /* all given back */
    assert_int_equal(ts.bytes_cur, 0);
    if (msgs)
        assert_int_equal(ts.msgs_peak, (uint64_t)limit);
    if (bytes)
        assert_true(ts.bytes_peak <= bytes);
    assert_int_equal(P.rx.resets + P.rx.remote_resets, 0);
    pair_fini(&P);
}

static void
test_message_throttle(void **state)
{
    (void)state;
    check_slow_reader(4, 0, 4);
}

static void
test_byte_throttle(void **state)
{
    (void)state;
    /* 16 KiB: three messages of 4160 bytes fit, a fourth does not */
    check_slow_reader(0, 16 * 1024, 3);
}

/* Another peer type's policy is not throttled by this one. */
static void
test_other_policy_unthrottled(void **state)
{
    (void)state;
    struct msgr_config ca = {0}, cb = {0};
    struct msgr_policy ps = server_policy(4, 0);
    pair_init(&P, 5, &ca, &cb, &ps);
    /* the limit is on the mon policy; clients use the unlimited one */
    msgr_set_policy(P.mb, MSGR_ENTITY_MON, &ps);
    struct msgr_policy pc = server_policy(0, 0);
    msgr_set_policy(P.mb, MSGR_ENTITY_CLIENT, &pc);
    P.rx.hold = 1;
    for (uint64_t i = 0; i < 50; i++)
        pair_send(&P, MSGR_MSG_TEST, i, DATA_LEN);
    assert_true(pair_wait_delivered(&P, 50, 5 * MSGR_NS_PER_S));
    struct msgr_throttle_stats ts;
    msgr_get_throttle(P.mb, MSGR_ENTITY_MON, &ts);
    assert_int_equal(ts.msgs_peak, 0);
    pair_fini(&P);
}

/*
 * A message larger than the whole byte limit passes when nothing is held
 * (it would never pass otherwise), and only then.
 */
static void
test_big_message_passes_alone(void **state)
{
    (void)state;
    struct msgr_config ca = {0}, cb = {0};
    struct msgr_policy ps = server_policy(0, 16 * 1024);
    pair_init(&P, 6, &ca, &cb, &ps);
    P.rx.hold = 1;
    pair_send(&P, MSGR_MSG_TEST, 0, 100);
    pair_send(&P, MSGR_MSG_TEST, 1, 64 * 1024);
    pair_run(&P, 100 * MSGR_NS_PER_MS);
    /* the small one is held: the big one waits */
    assert_int_equal(P.rx.delivered, 1);
    pair_release_one(&P);
    pair_run(&P, 20 * MSGR_NS_PER_MS);
    assert_int_equal(P.rx.delivered, 2);
    struct msgr_throttle_stats ts;
    msgr_get_throttle(P.mb, MSGR_ENTITY_CLIENT, &ts);
    assert_int_equal(ts.bytes_cur, 64 + 64 * 1024);
    /* nothing else passes while it is held */
    pair_send(&P, MSGR_MSG_TEST, 2, 0);
    pair_run(&P, 20 * MSGR_NS_PER_MS);
    assert_int_equal(P.rx.delivered, 2);
    pair_release_one(&P);
    pair_run(&P, 20 * MSGR_NS_PER_MS);
    assert_int_equal(P.rx.delivered, 3);
    assert_int_equal(P.rx.out_of_order, 0);
    pair_fini(&P);
}

/* Held throttle survives a transport fault: what a half-read or replayed
 * frame took is returned, and the stream completes. */
static void
test_throttle_across_reset(void **state)
{
    (void)state;
    struct msgr_config ca = {0}, cb = {0};
    struct msgr_policy ps = server_policy(4, 0);
    pair_init(&P, 7, &ca, &cb, &ps);
    P.rx.hold = 1;
    for (uint64_t i = 0; i < 100; i++)
        pair_send(&P, MSGR_MSG_TEST, i, DATA_LEN);
    pair_run(&P, 50 * MSGR_NS_PER_MS);
    assert_int_equal(sim_reset_between(P.w, P.ha, P.hb), 1);
    while (P.rx.delivered < 100 && sim_now(P.w) < 60 * MSGR_NS_PER_S) {
        pair_release_one(&P);
        pair_run(&P, 2 * MSGR_NS_PER_MS);
    }
    while (pair_release_one(&P))
        ;
    pair_run(&P, 10 * MSGR_NS_PER_MS);
    struct msgr_throttle_stats ts;
    msgr_get_throttle(P.mb, MSGR_ENTITY_CLIENT, &ts);
    assert_int_equal(P.rx.delivered, 100);
    assert_int_equal(P.rx.out_of_order, 0);
    assert_true(P.rx.held_max <= 4);
    assert_int_equal(ts.msgs_cur, 0);
    pair_fini(&P);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_message_throttle),
        cmocka_unit_test(test_byte_throttle),
        cmocka_unit_test(test_other_policy_unthrottled),
        cmocka_unit_test(test_big_message_passes_alone),
        cmocka_unit_test(test_throttle_across_reset),
    };
    return cmocka_run_group_tests_name("sim_throttle", tests, NULL, NULL);
}
