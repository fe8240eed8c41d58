/*
 * Blackholes ("blackhole A -> B [type T]", Ceph's ms_blackhole_*):
 * matching messages are dropped at send time, never reach the wire, get
 * the BLACKHOLED fate; the connection stays up; clearing the rule lets
 * later messages through. Inbound rules drop what is received.
 */
#include "sim_pair.h"

#define TYPE_X (MSGR_MSG_TEST + 1)
#define TYPE_Y MSGR_MSG_TEST

static struct pair P;

static int
conn_ready(void *arg)
{
    return msgr_conn_is_connected(arg);
}

/* Sends n messages alternating X, Y from seq `from`; returns the count of
 * each sent. */
static void
send_xy(uint64_t from, int n, int *nx, int *ny)
{
    for (int i = 0; i < n; i++) {
        int x = i % 2 == 0;
        pair_send(&P, x ? TYPE_X : TYPE_Y, from + (uint64_t)i, 10);
        *(x ? nx : ny) += 1;
    }
}

static void
count_types(long from, long *nx, long *ny)
{
    *nx = *ny = 0;
    for (long i = from; i < P.rx.delivered; i++)
        *(P.rx.type[i] == TYPE_X ? nx : ny) += 1;
}

static void
test_blackhole_by_type(void **state)
{
    (void)state;
    struct msgr_config ca = {0}, cb = {0};
    pair_init(&P, 12, &ca, &cb, NULL);
    struct msgr_blackhole b = {.peer_types = MSGR_ENTITY_OSD,
                               .msg_type = TYPE_X};
    assert_int_equal(msgr_blackhole_set(P.ma, &b), 0);
    assert_int_equal(msgr_blackhole_set(P.ma, &b), 0); /* once */
    int nx = 0, ny = 0;
    send_xy(0, 100, &nx, &ny);
    assert_true(pair_wait_delivered(&P, ny, 5 * MSGR_NS_PER_S));
    pair_run(&P, 100 * MSGR_NS_PER_MS);
    long gx, gy;
    count_types(0, &gx, &gy);
    assert_int_equal(gx, 0);
    assert_int_equal(gy, ny);
    /* never on the wire, reported, counted */
    assert_int_equal(P.ca.frames_out[MSGR_TAG_MESSAGE], ny);
    assert_int_equal(P.ca.fate[MSGR_FATE_BLACKHOLED], nx);
    struct msgr_perf pa;
    msgr_get_perf(P.ma, &pa);
    assert_int_equal(pa.msgs_blackholed, (uint64_t)nx);
    /* the connection stays up */
    struct msgr_conn *c = pair_conn(&P);
    assert_true(msgr_conn_is_connected(c));
    assert_int_equal(P.rx.resets + P.rx.remote_resets, 0);

    /* cleared: everything goes through again */
    assert_int_equal(msgr_blackhole_clear(P.ma, &b), 0);
    assert_int_equal(msgr_blackhole_clear(P.ma, &b), -ENOENT);
    P.rx.next = 100; /* new sequence range */
    int nx2 = 0, ny2 = 0;
    send_xy(100, 50, &nx2, &ny2);
    long before = P.rx.delivered;
    assert_true(pair_wait_delivered(&P, before + 50, 5 * MSGR_NS_PER_S));
    count_types(before, &gx, &gy);
    assert_int_equal(gx, nx2);
    assert_int_equal(gy, ny2);
    assert_int_equal(P.rx.out_of_order, 0);
    assert_true(msgr_conn_is_connected(c));
    msgr_conn_unref(c);
    pair_fini(&P);
}

/* Inbound (Ceph's ms_blackhole_* also drop what they receive): the
 * receiver reads, acknowledges and drops X; the sender sees nothing wrong
 * (no replay, no fault); an outbound-only rule on the receiver drops
 * nothing it receives. */
static void
test_blackhole_inbound(void **state)
{
    (void)state;
    struct msgr_config ca = {0}, cb = {0};
    pair_init(&P, 14, &ca, &cb, NULL);
    struct msgr_blackhole out_only = {.msg_type = TYPE_X};
    assert_int_equal(msgr_blackhole_set(P.mb, &out_only), 0);
    int nx = 0, ny = 0;
    send_xy(0, 20, &nx, &ny);
    assert_true(pair_wait_delivered(&P, nx + ny, 5 * MSGR_NS_PER_S));
    assert_int_equal(msgr_blackhole_clear(P.mb, NULL), 0);

    struct msgr_blackhole in = {.msg_type = TYPE_X,
                                .dirs = MSGR_BLACKHOLE_IN};
    assert_int_equal(msgr_blackhole_set(P.mb, &in), 0);
    /* a rule differing only by direction is another rule */
    assert_int_equal(msgr_blackhole_clear(P.mb, &out_only), -ENOENT);
    P.rx.next = 20;
    long before = P.rx.delivered;
    int nx2 = 0, ny2 = 0;
    send_xy(20, 100, &nx2, &ny2);
    assert_true(pair_wait_delivered(&P, before + ny2, 5 * MSGR_NS_PER_S));
    pair_run(&P, 200 * MSGR_NS_PER_MS);
    long gx, gy;
    count_types(before, &gx, &gy);
    assert_int_equal(gx, 0);
    assert_int_equal(gy, ny2);
    /* on the wire, acknowledged, dropped by the receiver, counted there */
    assert_int_equal(P.ca.frames_out[MSGR_TAG_MESSAGE], nx + ny + nx2 + ny2);
    assert_int_equal(P.cb.fate[MSGR_FATE_BLACKHOLED], nx2);
    assert_int_equal(P.ca.fate[MSGR_FATE_BLACKHOLED], 0);
    struct msgr_perf pb;
    msgr_get_perf(P.mb, &pb);
    assert_int_equal(pb.msgs_blackholed, (uint64_t)nx2);
    struct msgr_conn *c = pair_conn(&P);
    assert_true(msgr_conn_is_connected(c));
    assert_int_equal(P.rx.resets + P.rx.remote_resets, 0);
    msgr_conn_unref(c);
    pair_fini(&P);
}

/* By address: the endpoint matches whatever the nonce; another port or
 * another peer type does not. */
static void
test_blackhole_by_addr(void **state)
{
    (void)state;
    struct msgr_config ca = {0}, cb = {0};
    pair_init(&P, 13, &ca, &cb, NULL);
    pair_send(&P, TYPE_Y, 0, 0);
    struct msgr_conn *c = pair_conn(&P);
    assert_true(sim_run_until_cond(P.w, conn_ready, c,
                                   sim_now(P.w) + MSGR_NS_PER_S));
    struct msgr_blackhole other_port = {.addr = P.to.v[0]};
    other_port.addr.port++;
    struct msgr_blackhole other_type = {.peer_types = MSGR_ENTITY_MON,
                                        .addr = P.to.v[0]};
    assert_int_equal(msgr_blackhole_set(P.ma, &other_port), 0);
    assert_int_equal(msgr_blackhole_set(P.ma, &other_type), 0);
    pair_send(&P, TYPE_Y, 1, 0);
    assert_true(pair_wait_delivered(&P, 2, MSGR_NS_PER_S));

    struct msgr_blackhole any_nonce = {.addr = P.to.v[0]};
    any_nonce.addr.nonce += 7;
    assert_int_equal(msgr_blackhole_set(P.ma, &any_nonce), 0);
    for (uint64_t i = 2; i < 12; i++)
        pair_send(&P, i % 2 ? TYPE_X : TYPE_Y, i, 0);
    pair_run(&P, 100 * MSGR_NS_PER_MS);
    assert_int_equal(P.rx.delivered, 2);
    assert_int_equal(P.ca.fate[MSGR_FATE_BLACKHOLED], 10);
    assert_true(msgr_conn_is_connected(c));

    assert_int_equal(msgr_blackhole_clear(P.ma, NULL), 0);
    P.rx.next = 12;
    pair_send(&P, TYPE_X, 12, 0);
    assert_true(pair_wait_delivered(&P, 3, MSGR_NS_PER_S));
    assert_int_equal(P.rx.out_of_order, 0);
    msgr_conn_unref(c);
    pair_fini(&P);
}

static void
test_blackhole_table_full(void **state)
{
    (void)state;
    struct msgr_config ca = {0}, cb = {0};
    pair_init(&P, 14, &ca, &cb, NULL);
    for (int i = 0; i < MSGR_MAX_BLACKHOLES; i++) {
        struct msgr_blackhole b = {.msg_type = (uint16_t)(1000 + i)};
        assert_int_equal(msgr_blackhole_set(P.ma, &b), 0);
    }
    struct msgr_blackhole b = {.msg_type = 999};
    assert_int_equal(msgr_blackhole_set(P.ma, &b), -ENOSPC);
    pair_send(&P, TYPE_Y, 0, 0); /* matches none */
    assert_true(pair_wait_delivered(&P, 1, MSGR_NS_PER_S));
    pair_fini(&P);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_blackhole_by_type),
        cmocka_unit_test(test_blackhole_by_addr),
        cmocka_unit_test(test_blackhole_inbound),
        cmocka_unit_test(test_blackhole_table_full),
    };
    return cmocka_run_group_tests_name("sim_blackhole", tests, NULL, NULL);
}
