/*
 * Delayed delivery by peer type (Ceph's ms_inject_delay_*): messages from
 * a chosen peer type are held a random time before dispatch, in order,
 * with the sim's seeded randomness; other types are not delayed; a
 * connection that stops discards what it held, with a fate for each.
 */
#include "sim_pair.h"

#define N_MSGS 100
#define MAX_DELAY (50 * MSGR_NS_PER_MS)

static struct pair P;

struct delay_run {
    msgr_time_ns latency[N_MSGS];
    msgr_time_ns min, max; /* of the spaced messages */
    msgr_time_ns max_all;
    uint64_t delayed;
    uint64_t fingerprint;
};

/* Client -> osd; the osd delays messages from `types`. The first half
 * is spaced wider than the maximum delay (each latency is its own draw),
 * the second half comes one per ms (delays overlap: order must hold). */
static void
run_delayed(uint64_t seed, uint32_t types, struct delay_run *out)
{
    struct msgr_config ca = {0};
    struct msgr_config cb = {.inject_delay_types = types,
                             .inject_delay_max_ns = MAX_DELAY,
                             .inject_delay_prob_ppm = 1000000};
    pair_init(&P, seed, &ca, &cb, NULL);
    for (uint64_t i = 0; i < N_MSGS; i++) {
        pair_send(&P, MSGR_MSG_TEST, i, 100);
        pair_run(&P, i < N_MSGS / 2 ? MAX_DELAY + 10 * MSGR_NS_PER_MS
                                    : MSGR_NS_PER_MS);
    }
    assert_true(pair_wait_delivered(&P, N_MSGS, 5 * MSGR_NS_PER_S));
    assert_int_equal(P.rx.delivered, N_MSGS); /* every one ... */
    assert_int_equal(P.rx.out_of_order, 0);   /* ... in order */
    out->min = ~0ull;
    out->max = out->max_all = 0;
    for (int i = 0; i < N_MSGS; i++) {
        msgr_time_ns l = P.rx.latency[i];
        out->latency[i] = l;
        if (l > out->max_all)
            out->max_all = l;
        if (i >= N_MSGS / 2)
            continue;
        if (l < out->min)
            out->min = l;
        if (l > out->max)
            out->max = l;
    }
    struct msgr_perf pb;
    msgr_get_perf(P.mb, &pb);
    out->delayed = pb.msgs_delayed;
    out->fingerprint = pair_fini(&P);
}

static struct delay_run r1, r2, r3;

static void
test_delay_spreads_in_order(void **state)
{
    (void)state;
    run_delayed(8, MSGR_ENTITY_CLIENT | MSGR_ENTITY_MON, &r1);
    print_message("latency %llu..%llu us, %llu delayed\n",
                  (unsigned long long)(r1.min / 1000),
                  (unsigned long long)(r1.max / 1000),
                  (unsigned long long)r1.delayed);
    assert_true(r1.delayed >= N_MSGS - 1); /* a draw of 0 is possible */
    /* spread over the window: some near the maximum, some short */
    assert_true(r1.max >= 40 * MSGR_NS_PER_MS);
    assert_true(r1.min < 10 * MSGR_NS_PER_MS);
    /* never more than the maximum plus the network: waiting behind a
     * predecessor ends by its due time, which is earlier than ours */
    assert_true(r1.max_all <= MAX_DELAY + 2 * MSGR_NS_PER_MS);
}

static void
test_delay_same_seed_same_times(void **state)
{
    (void)state;
    run_delayed(8, MSGR_ENTITY_CLIENT, &r1);
    run_delayed(8, MSGR_ENTITY_CLIENT, &r2);
    run_delayed(9, MSGR_ENTITY_CLIENT, &r3);
    assert_memory_equal(r1.latency, r2.latency, sizeof(r1.latency));
    assert_int_equal(r1.fingerprint, r2.fingerprint);
    assert_memory_not_equal(r1.latency, r3.latency, sizeof(r1.latency));
}

static void
test_delay_other_type_not_delayed(void **state)
{
    (void)state;
    run_delayed(8, MSGR_ENTITY_OSD | MSGR_ENTITY_MDS, &r1);
    assert_int_equal(r1.delayed, 0);
    assert_true(r1.max_all < 2 * MSGR_NS_PER_MS);
}

/* A stopped connection discards what waits, each with a fate, and
 * leaks nothing (ASan). */
static void
test_delay_discarded_on_stop(void **state)
{
    (void)state;
    struct msgr_config ca = {0};
    struct msgr_config cb = {.inject_delay_types = MSGR_ENTITY_CLIENT,
                             .inject_delay_max_ns = 10 * MSGR_NS_PER_S,
                             .inject_delay_prob_ppm = 1000000};
    struct msgr_policy ps = msgr_policy_make(MSGR_POLICY_STATELESS_SERVER, 0);
    pair_init(&P, 2, &ca, &cb, &ps);
    struct msgr_policy pc = msgr_policy_make(MSGR_POLICY_LOSSY_CLIENT, 0);
    msgr_set_policy(P.ma, MSGR_ENTITY_OSD, &pc);
    for (uint64_t i = 0; i < 10; i++)
        pair_send(&P, MSGR_MSG_TEST, i, 100);
    pair_run(&P, 20 * MSGR_NS_PER_MS);
    struct msgr_perf pb;
    msgr_get_perf(P.mb, &pb);
    assert_int_equal(pb.msgs_in, 10);
    /* delays are drawn in 0..10 s: some are still waiting */
    long early = P.rx.delivered;
    assert_true(early < 10);
    msgr_mark_down_all(P.mb);
    pair_run(&P, 10 * MSGR_NS_PER_MS);
    assert_int_equal(P.cb.fate[MSGR_FATE_DROPPED], 10 - early);
    pair_run(&P, 20 * MSGR_NS_PER_S);
    assert_int_equal(P.rx.delivered, early); /* none after the stop */
    pair_fini(&P);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_delay_spreads_in_order),
        cmocka_unit_test(test_delay_same_seed_same_times),
        cmocka_unit_test(test_delay_other_type_not_delayed),
        cmocka_unit_test(test_delay_discarded_on_stop),
    };
    return cmocka_run_group_tests_name("sim_delay", tests, NULL, NULL);
}
