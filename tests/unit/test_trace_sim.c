/*
 * The tracer adapter under real messengers on the simulated stack: a
 * lossless stream with transport resets. The trace must hold every
 * message once and delivered, the connections with their peers, the
 * reconnects the views count, and two runs of one seed must not diverge
 * while another seed does.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "msgr/msgr.h"
#include "sim/sim.h"
#include "trace_test_util.h"

#define NMSG    600
#define NRESETS 3

static int64_t
sim_clock(void *arg)
{
    return (int64_t)sim_now(arg);
}

static int
conn_ready(void *arg)
{
    return msgr_conn_is_connected(arg);
}

static long delivered;

static int
rx_dispatch(void *arg, struct msgr_msg *m)
{
    (void)arg;
    delivered++;
    msgr_msg_unref(m);
    return 1;
}

static int
all_delivered(void *arg)
{
    (void)arg;
    return delivered >= NMSG;
}

static struct msgr *
make_msgr(struct msgr_stack *st, uint8_t type, int64_t num, uint64_t nonce)
{
    struct msgr_config c = {.name = {type, num}, .nonce = nonce, .stack = st};
    int err = 0;
    struct msgr *m = msgr_create(&c, &err);
    assert_non_null(m);
    return m;
}

static void
add_traced_node(struct trace_db *db, int64_t run, struct sim_world *w,
                struct msgr *m, const char *name, uint8_t type, int64_t num)
{
    struct trace_node_info ni = {.name = name,
                                 .entity_type = type,
                                 .entity_num = num,
                                 .policy = "lossless_peer"};
    int64_t id;
    struct msgr_tracer tr;
    assert_int_equal(trace_node_add(db, run, &ni, &id), 0);
    assert_int_equal(trace_tracer_for_node(db, run, id, sim_clock, w, &tr), 0);
    msgr_set_tracer(m, &tr);
}

/* One traced run into db; returns its id. */
static int64_t
traced_run(struct trace_db *db, uint64_t seed)
{
    struct trace_run_info ri = {.scenario_text = "(test_trace_sim)",
                                .seed = seed,
                                .stack = "sim"};
    int64_t run;
    assert_int_equal(trace_run_begin(db, &ri, &run), 0);
    struct sim_world *w = sim_world_new(seed);
    struct sim_link_params lp = {.latency_ns = 200 * MSGR_NS_PER_US,
                                 .jitter_ns = 50 * MSGR_NS_PER_US};
    sim_link_default(w, &lp);
    struct sim_host *ha = sim_host_new(w, 1, "client.0", 0x0a000001u);
    struct sim_host *hb = sim_host_new(w, 2, "osd.1", 0x0a000002u);
    struct sim_stack_config sc = {.nworkers = 2};
    int err = 0;
    struct msgr_stack *sa = sim_stack_new(w, ha, &sc, &err);
    struct msgr_stack *sb = sim_stack_new(w, hb, &sc, &err);
    assert_non_null(sa);
    assert_non_null(sb);
    struct msgr *ma = make_msgr(sa, MSGR_ENTITY_CLIENT, 0, 11);
    struct msgr *mb = make_msgr(sb, MSGR_ENTITY_OSD, 1, 22);
    add_traced_node(db, run, w, ma, "client.0", MSGR_ENTITY_CLIENT, 0);
    add_traced_node(db, run, w, mb, "osd.1", MSGR_ENTITY_OSD, 1);
    struct msgr_policy p = msgr_policy_make(MSGR_POLICY_LOSSLESS_PEER, 0);
    msgr_set_policy(ma, MSGR_ENTITY_OSD, &p);
    msgr_set_policy(mb, MSGR_ENTITY_CLIENT, &p);
    struct msgr_addr ab;
    sim_host_addr(hb, 6800, &ab);
    assert_int_equal(msgr_bind(mb, &ab), 0);
    struct msgr_dispatcher da = {.arg = NULL};
    struct msgr_dispatcher db_ = {.arg = NULL, .ms_dispatch = rx_dispatch};
    msgr_start(ma);
    msgr_start(mb);
    msgr_add_dispatcher(ma, &da);
    msgr_add_dispatcher(mb, &db_);
    struct msgr_addrvec to;
    msgr_get_myaddrs(mb, &to);

    delivered = 0;
    for (int i = 0; i < NMSG; i++) {
        struct msgr_msg *m = msgr_msg_new(MSGR_MSG_TEST, 64, 0, 1000);
        memset(m->front.data, 0, 64);
        m->hdr.tid = (uint64_t)i + 1; /* unique per sender: the trace key */
        assert_int_equal(msgr_send_message(ma, m, MSGR_ENTITY_OSD, &to), 0);
        if (i % 50 == 49)
            sim_run_until(w, sim_now(w) + 100 * MSGR_NS_PER_US);
        if ((i + 1) % (NMSG / (NRESETS + 1)) == 0 && i + 1 < NMSG) {
            struct msgr_conn *c = msgr_get_connection(ma, MSGR_ENTITY_OSD,
                                                      &to, &err);
            assert_non_null(c);
            assert_true(sim_run_until_cond(w, conn_ready, c,
                                           sim_now(w) + 5 * MSGR_NS_PER_S));
            msgr_conn_unref(c);
            assert_int_equal(trace_fault_add(db, run, (int64_t)sim_now(w),
                                             "reset", "client.0 <-> osd.1",
                                             NULL, NULL),
                             0);
            assert_int_equal(sim_reset_between(w, ha, hb), 1);
            sim_run_until(w, sim_now(w) + MSGR_NS_PER_MS);
        }
    }
    sim_run_until_cond(w, all_delivered, NULL,
                       sim_now(w) + 60 * MSGR_NS_PER_S);
    sim_run_until(w, sim_now(w) + MSGR_NS_PER_S);
    assert_int_equal(delivered, NMSG);
    msgr_shutdown(ma);
    msgr_shutdown(mb);
    msgr_wait(ma);
    msgr_wait(mb);
    msgr_destroy(ma);
    msgr_destroy(mb);
    msgr_stack_unref(sa);
    msgr_stack_unref(sb);
    char fp[17];
    snprintf(fp, sizeof(fp), "%016llx",
             (unsigned long long)sim_fingerprint(w));
    assert_int_equal(trace_run_end(db, run, (int64_t)sim_now(w), fp, "pass",
                                   0),
                     0);
    sim_world_free(w);
    return run;
}

/* One integer from sql, where ?1 is the run. */
static long long
q_run(sqlite3 *q, int64_t run, const char *sql)
{
    sqlite3_stmt *st;
    long long v = -999;

    if (sqlite3_prepare_v2(q, sql, -1, &st, NULL) != SQLITE_OK) {
        fail_msg("query %s: %s", sql, sqlite3_errmsg(q));
        return v;
    }
    sqlite3_bind_int64(st, 1, run);
    if (sqlite3_step(st) == SQLITE_ROW &&
        sqlite3_column_type(st, 0) != SQLITE_NULL)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static void
test_adapter_records_a_run(void **state)
{
    char p[128];
    (void)state;
    tt_mkdir();
    struct trace_open_error err;
    struct trace_db *db = trace_open(tt_path(p, sizeof(p), "sim.db"),
                                     TRACE_OPEN_RW, &err);
    assert_non_null(db);
    int64_t r1 = traced_run(db, 3);
    sqlite3 *q = trace_sqlite(db);

    /* every message once, delivered to osd.1, through client.0's conn */
    assert_int_equal(q_run(q, r1, "SELECT count(*) FROM message WHERE run = "
                                  "?1 AND src = 1"),
                     NMSG);
    assert_int_equal(q_run(q, r1, "SELECT count(*) FROM message WHERE run = "
                                  "?1 AND fate = 'delivered' AND "
                                  "deliveries = 1 AND dst = 2 AND size = "
                                  "1064 AND conn IS NOT NULL"),
                     NMSG);
    assert_int_equal(q_run(q, r1, "SELECT count(*) FROM message WHERE run = "
                                  "?1 AND delivered_t < sent_t"),
                     0);
    /* no event names a connection that has no row */
    assert_int_equal(q_run(q, r1, "SELECT count(*) FROM event e WHERE run = "
                                  "?1 AND conn IS NOT NULL AND NOT EXISTS "
                                  "(SELECT 1 FROM conn c WHERE c.run = e.run"
                                  " AND c.id = e.conn)"),
                     0);
    /* times never go backwards in seq order (one thread, virtual time) */
    assert_int_equal(q_run(q, r1, "SELECT count(*) FROM (SELECT t_ns, lag"
                                  "(t_ns) OVER (ORDER BY seq) AS prev FROM "
                                  "event WHERE run = ?1) WHERE t_ns < "
                                  "prev"),
                     0);
    /* the handshake's frames, by name, on each side */
    assert_true(q_run(q, r1, "SELECT count(*) FROM event WHERE run = ?1 "
                             "AND node = 1 AND kind = 'frame_out' AND tag = "
                             "'client_ident'") >= 1);
    assert_true(q_run(q, r1, "SELECT count(*) FROM event WHERE run = ?1 "
                             "AND node = 2 AND kind = 'frame_in' AND tag = "
                             "'client_ident'") >= 1);
    /* connections know their peers */
    assert_int_equal(q_run(q, r1, "SELECT count(*) FROM v_conn WHERE run = "
                                  "?1 AND node_name = 'client.0' AND "
                                  "peer_name = 'osd.1'"),
                     1);
    assert_true(q_run(q, r1, "SELECT count(*) FROM v_conn WHERE run = ?1 "
                             "AND node_name = 'osd.1' AND peer_name = "
                             "'client.0'") >= 1);
    /* each reset made the client reconnect and get READY again */
    assert_true(q_run(q, r1, "SELECT reconnects FROM v_reconnects WHERE run "
                             "= ?1 AND node_name = 'client.0'") >= NRESETS);
    assert_true(q_run(q, r1, "SELECT session_reconnects FROM v_reconnects "
                             "WHERE run = ?1 AND node_name = 'client.0'") >=
                NRESETS);
    assert_int_equal(q_run(q, r1, "SELECT count(*) FROM v_time_to_reconnect "
                                  "WHERE run = ?1 AND node_name = "
                                  "'client.0' AND ready_t IS NOT NULL AND "
                                  "ns_since_fault > 0"),
                     NRESETS);
    assert_true(q_run(q, r1, "SELECT count(*) FROM event WHERE run = ?1 "
                             "AND kind = 'conn_fault'") >= NRESETS);
    assert_int_equal(q_run(q, r1, "SELECT count(*) FROM conn WHERE run = "
                                  "?1 AND last_state IS NULL"),
                     0);

    /* same seed: the same events; another seed: a divergence */
    int64_t r2 = traced_run(db, 3);
    int64_t r3 = traced_run(db, 4);
    struct trace_divergence d;
    assert_int_equal(trace_diff_runs(db, r1, db, r2, &d), 0);
    if (d.found)
        fail_msg("same seed diverged at %lld:\n  %s\n  %s",
                 (long long)d.index, d.line_a, d.line_b);
    assert_int_equal(trace_diff_runs(db, r1, db, r3, &d), 0);
    assert_int_equal(d.found, 1);
    print_message("seed 3 vs 4: first divergence at event %lld:\n  %s\n  %s\n",
                  (long long)d.index, d.line_a, d.line_b);
    trace_close(db);
    tt_rmdir();
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_adapter_records_a_run),
    };
    return cmocka_run_group_tests_name("trace_sim", tests, NULL, NULL);
}
