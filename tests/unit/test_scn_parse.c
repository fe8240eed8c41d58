/*
 * The scenario front end on valid input: every form of the language page
 * lands in the plan with the right integers, sets resolve in declaration
 * order, and the timeline is sorted by (time, file order).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "scn/scn.h"

static struct scn_plan *
compile_ok(const char *text)
{
    struct scn_plan *p = NULL;
    struct scn_diags d;
    int rc = scn_compile("dir/t.scn", text, strlen(text), &p, &d);
    if (rc != 0) {
        scn_diags_print(&d, "dir/t.scn", stderr);
        fail_msg("compile failed: %d", rc);
    }
    assert_non_null(p);
    return p;
}

#define NODES3 "node osd.[0..2] policy lossless_peer\n"

static void
test_complete_example(void **state)
{
    (void)state;
    const char *src =
        "scenario \"lossless peers ride out a reset storm and a restart\"\n"
        "seed 7\n"
        "link default latency 200us jitter 50us\n"
        "node osd.[0..2] policy lossless_peer\n"
        "\n"
        "at 0       start all\n"
        "at 1ms     osd.0 send osd.1,osd.2 count 2000 size 4KiB every 1ms\n"
        "at 200ms   reset osd.0 <-> osd.1 prob 2% for 500ms\n"
        "at 400ms   partition osd.0 | osd.2 for 300ms\n"
        "at 900ms   kill osd.2\n"
        "at 1.2s    restart osd.2 same_nonce\n"
        "at 1.5s    rebind osd.1\n"
        "\n"
        "expect delivered osd.0 -> osd.1 no_dup in_order    # in flight\n"
        "expect delivered osd.0 -> osd.1 >= 99%\n"
        "expect event osd.0 remote_reset from osd.2\n"
        "expect delivered osd.0 -> osd.2 no_dup in_order\n"
        "expect connections osd.0 <= 2\n";
    struct scn_plan *p = compile_ok(src);
    assert_string_equal(p->title,
                        "lossless peers ride out a reset storm and a restart");
    assert_int_equal(p->seed, 7);
    assert_int_equal(p->stack, SCN_STACK_SIM);
    assert_int_equal(p->duration_ns, 60 * SCN_NS_PER_S);
    assert_int_equal(p->link_default.latency_ns, 200 * SCN_NS_PER_US);
    assert_int_equal(p->link_default.jitter_ns, 50 * SCN_NS_PER_US);
    assert_int_equal(p->n_nodes, 3);
    assert_string_equal(p->nodes[2].name, "osd.2");
    assert_int_equal(p->nodes[2].type, MSGR_ENTITY_OSD);
    assert_int_equal(p->nodes[2].num, 2);
    assert_int_equal(p->nodes[0].policy, MSGR_POLICY_LOSSLESS_PEER);
    assert_int_equal(p->nodes[0].loc.line, 4);
    assert_int_equal(p->n_timeline, 7);

    const struct scn_timed *t = p->timeline;
    assert_int_equal(t[0].act.kind, SCN_ACT_START);
    assert_int_equal(t[0].act.subject.n, 3);
    assert_int_equal(t[1].t_ns, SCN_NS_PER_MS);
    assert_int_equal(t[1].act.kind, SCN_ACT_SEND);
    assert_int_equal(t[1].act.subject.n, 1);
    assert_int_equal(t[1].act.peer.n, 2);
    assert_int_equal(t[1].act.peer.idx[0], 1);
    assert_int_equal(t[1].act.peer.idx[1], 2);
    assert_int_equal(t[1].act.u.send.count, 2000);
    assert_int_equal(t[1].act.u.send.size_bytes, 4096);
    assert_int_equal(t[1].act.u.send.every_ns, SCN_NS_PER_MS);
    assert_int_equal(t[1].act.u.send.priority, 127);
    assert_int_equal(t[2].act.kind, SCN_ACT_RESET);
    assert_true(t[2].act.both_ways);
    assert_true(t[2].act.has_prob);
    assert_int_equal(t[2].act.prob_ppm, 20000);
    assert_int_equal(t[2].act.for_ns, 500 * SCN_NS_PER_MS);
    assert_int_equal(t[3].act.kind, SCN_ACT_PARTITION);
    assert_true(t[3].act.both_ways);
    assert_int_equal(t[3].act.peer.idx[0], 2);
    assert_int_equal(t[4].act.kind, SCN_ACT_KILL);
    assert_int_equal(t[5].t_ns, 1200 * SCN_NS_PER_MS);
    assert_true(t[5].act.u.restart.same_nonce);
    assert_int_equal(t[6].act.kind, SCN_ACT_REBIND);
    assert_int_equal(t[6].act.loc.line, 12);
    assert_int_equal(t[6].act.loc.col, 12);

    assert_int_equal(p->n_expects, 5);
    assert_int_equal(p->expects[0].kind, SCN_EXPECT_DELIVERED);
    assert_int_equal(p->expects[0].flags,
                     SCN_DELIV_NO_DUP | SCN_DELIV_IN_ORDER);
    assert_true(p->expects[1].has_value);
    assert_int_equal(p->expects[1].op, SCN_OP_GE);
    assert_int_equal(p->expects[1].value, 990000);
    assert_int_equal(p->expects[2].kind, SCN_EXPECT_EVENT);
    assert_int_equal(p->expects[2].event, SCN_EV_REMOTE_RESET);
    assert_int_equal(p->expects[2].b.idx[0], 2);
    assert_int_equal(p->expects[4].kind, SCN_EXPECT_CONNECTIONS);
    assert_int_equal(p->expects[4].op, SCN_OP_LE);
    assert_int_equal(p->expects[4].value, 2);
    /* the run lasts at least until the last named time: 200ms + 500ms is
     * below 1.5s */
    assert_int_equal(p->last_named_ns, 1500 * SCN_NS_PER_MS);
    scn_plan_free(p);
}

static void
test_values(void **state)
{
    (void)state;
    struct scn_plan *p = compile_ok(
        "duration 2m\n"
        "workers 3\n"
        "stack posix\n"
        "node osd.0 policy lossy_client addr v2:10.0.0.1:6800/7 workers 2\n"
        "node client.admin,mon.a policy stateless_server\n"
        "link osd.0 <-> client.admin latency 1.5ms bandwidth 100Mbit loss 0.3\n"
        "link mon.a -> osd.0 loss 30% bandwidth 1.5Gbit/s latency 0\n"
        "at 0 delay osd.0 -> mon.a 250us jitter 1.25us for 2s prob 0.000001\n"
        "at 1us bandwidth osd.0 <-> mon.a 64Kbit\n"
        "at 2ns osd.0 send mon.a size 1.5KiB rate 2.5/s count 3 priority high\n"
        "at 3s osd.0 send mon.a size 0 priority 200\n");
    assert_int_equal(p->duration_ns, 120 * SCN_NS_PER_S);
    assert_true(p->has_duration);
    assert_int_equal(p->workers, 3);
    assert_int_equal(p->stack, SCN_STACK_POSIX);
    assert_string_equal(p->nodes[0].addr, "v2:10.0.0.1:6800/7");
    assert_int_equal(p->nodes[0].workers, 2);
    assert_int_equal(p->nodes[1].type, MSGR_ENTITY_CLIENT);
    assert_string_equal(p->nodes[1].id, "admin");
    assert_int_equal(p->nodes[1].num, -1);
    assert_int_equal(p->nodes[2].type, MSGR_ENTITY_MON);
    assert_int_equal(p->n_links, 2);
    assert_true(p->links[0].both_ways);
    assert_int_equal(p->links[0].opts.latency_ns, 1500 * SCN_NS_PER_US);
    assert_int_equal(p->links[0].opts.bandwidth_bps, 100000000);
    assert_int_equal(p->links[0].opts.loss_ppm, 300000);
    assert_false(p->links[1].both_ways);
    assert_int_equal(p->links[1].opts.loss_ppm, 300000);
    assert_int_equal(p->links[1].opts.bandwidth_bps, 1500000000);
    assert_true(p->links[1].opts.has_latency);
    assert_int_equal(p->links[1].opts.latency_ns, 0);
    /* the default link keeps the page's defaults */
    assert_int_equal(p->link_default.latency_ns, 100 * SCN_NS_PER_US);
    assert_int_equal(p->link_default.loss_ppm, 0);

    const struct scn_timed *t = p->timeline;
    assert_int_equal(t[0].act.u.delay.delay_ns, 250000);
    assert_int_equal(t[0].act.u.delay.jitter_ns, 1250);
    assert_int_equal(t[0].act.prob_ppm, 1);
    assert_int_equal(t[0].act.for_ns, 2 * SCN_NS_PER_S);
    assert_int_equal(t[1].t_ns, 2);
    assert_int_equal(t[1].act.u.send.size_bytes, 1536);
    assert_int_equal(t[1].act.u.send.rate_mps, 2500);
    assert_int_equal(t[1].act.u.send.count, 3);
    assert_int_equal(t[1].act.u.send.priority, 196);
    assert_int_equal(t[2].t_ns, 1000);
    assert_int_equal(t[2].act.u.bandwidth.bps, 64000);
    assert_int_equal(t[3].act.u.send.size_bytes, 0);
    assert_int_equal(t[3].act.u.send.priority, 200);
    scn_plan_free(p);
}

static void
test_sets_resolve_in_declaration_order(void **state)
{
    (void)state;
    struct scn_plan *p = compile_ok(
        "node mon.a policy lossless_peer\n"
        "node osd.[0..3] policy lossless_peer\n"
        "node client.x policy lossy_client\n"
        "at 0 start osd.3,mon.a,osd.1,osd.3\n"
        "at 0 kill osd.*\n"
        "at 0 crash all\n"
        "at 0 shutdown osd.[2..3],client.x\n");
    const struct scn_set *s = &p->timeline[0].act.subject;
    assert_string_equal(s->text, "osd.3,mon.a,osd.1,osd.3");
    assert_int_equal(s->n, 3);
    assert_int_equal(s->idx[0], 0); /* mon.a */
    assert_int_equal(s->idx[1], 2); /* osd.1 */
    assert_int_equal(s->idx[2], 4); /* osd.3 */
    s = &p->timeline[1].act.subject;
    assert_int_equal(s->n, 4);
    assert_int_equal(s->idx[0], 1);
    assert_int_equal(s->idx[3], 4);
    assert_int_equal(p->timeline[2].act.subject.n, 6);
    s = &p->timeline[3].act.subject;
    assert_int_equal(s->n, 3);
    assert_int_equal(s->idx[0], 3);
    assert_int_equal(s->idx[2], 5);
    scn_plan_free(p);
}

static void
test_timeline_order_relative_every(void **state)
{
    (void)state;
    struct scn_plan *p = compile_ok(
        NODES3
        "at 2s kill osd.2   # second in file, later in time\n"
        "at 1s start osd.0\n"
        "at +500ms start osd.1\n"
        "at 1.5s start osd.2\n"
        "every 100ms from 1s until 3s osd.0 keepalive osd.1\n"
        "every 1s osd.0 mark_down_all\n"
        "at +0 \\\n"
        "   osd.0 \\\n"
        "   connect osd.2\n");
    assert_int_equal(p->n_timeline, 7);
    const struct scn_timed *t = p->timeline;
    /* every 1s (no from) starts at 0 */
    assert_int_equal(t[0].t_ns, 0);
    assert_int_equal(t[0].period_ns, SCN_NS_PER_S);
    assert_int_equal(t[0].until_ns, SCN_TIME_END);
    assert_int_equal(t[0].act.kind, SCN_ACT_MARK_DOWN_ALL);
    assert_int_equal(t[1].t_ns, SCN_NS_PER_S);
    assert_int_equal(t[1].act.kind, SCN_ACT_START);
    assert_int_equal(t[2].t_ns, SCN_NS_PER_S);
    assert_int_equal(t[2].act.kind, SCN_ACT_KEEPALIVE);
    assert_int_equal(t[2].period_ns, 100 * SCN_NS_PER_MS);
    assert_int_equal(t[2].until_ns, 3 * SCN_NS_PER_S);
    /* +500ms after 1s; the next `at 1.5s` comes later in the file */
    assert_int_equal(t[3].t_ns, 1500 * SCN_NS_PER_MS);
    assert_int_equal(t[3].act.subject.idx[0], 1);
    assert_int_equal(t[4].t_ns, 1500 * SCN_NS_PER_MS);
    assert_int_equal(t[4].act.subject.idx[0], 2);
    /* `at +0` after 1.5s, joined over three lines */
    assert_int_equal(t[5].t_ns, 1500 * SCN_NS_PER_MS);
    assert_int_equal(t[5].act.kind, SCN_ACT_CONNECT);
    assert_int_equal(t[5].act.loc.line, 9); /* the action starts at its subject */
    assert_int_equal(t[5].act.loc.col, 4);
    assert_true(t[4].seq < t[5].seq);
    assert_int_equal(t[6].t_ns, 2 * SCN_NS_PER_S);
    assert_int_equal(t[6].act.kind, SCN_ACT_KILL);
    assert_int_equal(p->last_named_ns, 3 * SCN_NS_PER_S);
    /* the default title is the file's base name */
    assert_string_equal(p->title, "t.scn");
    scn_plan_free(p);
}

static void
test_header_policy_config(void **state)
{
    (void)state;
    struct scn_plan *p = compile_ok(
        "node osd.[0..1] policy lossless_peer\n"
        "node client.[1..2] policy lossy_client\n"
        "node mon.a policy lossless_peer_reuse\n"
        "policy osd.* -> client.*,mon.a stateless_server\n"
        "config all keepalive_interval 1s\n"
        "config osd.0 connection_idle_timeout 15m\n"
        "config osd.0 connection_ready_timeout 10s\n"
        "config osd.0 initial_backoff 200ms\n"
        "config osd.0 max_backoff 15s\n"
        "config osd.0 throttle_bytes 100MiB\n"
        "config osd.0 throttle_messages 1000\n"
        "config osd.0 crc off\n"
        "config osd.1 crc on\n"
        "config osd.0 inject_socket_failures 500\n"
        "config osd.0 inject_internal_delays 10us\n"
        "config client.1 dispatch_throttle_bytes 1GiB\n");
    assert_int_equal(p->n_policies, 1);
    const struct scn_policy_override *o = &p->policies[0];
    assert_int_equal(o->nodes.n, 2);
    assert_int_equal(o->peers.n, 3);
    assert_int_equal(o->peer_types,
                     (1u << MSGR_ENTITY_CLIENT) | (1u << MSGR_ENTITY_MON));
    assert_int_equal(o->policy, MSGR_POLICY_STATELESS_SERVER);
    assert_int_equal(p->n_configs, 12);
    static const struct {
        enum scn_config_key key;
        uint64_t value;
    } want[] = {
        {SCN_CONFIG_KEEPALIVE_INTERVAL, SCN_NS_PER_S},
        {SCN_CONFIG_CONNECTION_IDLE_TIMEOUT, 900 * SCN_NS_PER_S},
        {SCN_CONFIG_CONNECTION_READY_TIMEOUT, 10 * SCN_NS_PER_S},
        {SCN_CONFIG_INITIAL_BACKOFF, 200 * SCN_NS_PER_MS},
        {SCN_CONFIG_MAX_BACKOFF, 15 * SCN_NS_PER_S},
        {SCN_CONFIG_THROTTLE_BYTES, 100ull << 20},
        {SCN_CONFIG_THROTTLE_MESSAGES, 1000},
        {SCN_CONFIG_CRC, 0},
        {SCN_CONFIG_CRC, 1},
        {SCN_CONFIG_INJECT_SOCKET_FAILURES, 500},
        {SCN_CONFIG_INJECT_INTERNAL_DELAYS, 10 * SCN_NS_PER_US},
        {SCN_CONFIG_DISPATCH_THROTTLE_BYTES, 1ull << 30},
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        assert_int_equal(p->configs[i].key, want[i].key);
        assert_int_equal(p->configs[i].value, want[i].value);
    }
    assert_int_equal(p->configs[0].nodes.n, 5);
    assert_int_equal(scn_config_type(SCN_CONFIG_CRC), SCN_VALUE_BOOL);
    assert_string_equal(scn_config_name(SCN_CONFIG_MAX_BACKOFF), "max_backoff");
    scn_plan_free(p);
}

static void
test_faults(void **state)
{
    (void)state;
    struct scn_plan *p = compile_ok(
        NODES3
        "at 1s drop osd.0 -> osd.1 30% for 1s\n"
        "at 1s drop osd.0 <-> osd.1 prob 0.5\n"
        "at 1s blackhole osd.0 -> osd.1 type 0x7f00 for 2s\n"
        "at 1s partition osd.0 -> osd.1\n"
        "at 1s partition osd.0 <-> osd.2 for 1s\n"
        "at 1s reset osd.0 <-> osd.1\n"
        "at 1s corrupt osd.1 -> osd.2 prob 1%\n"
        "at 1s crash osd.2 for 5s\n"
        "at 1s pause osd.1 for 300ms\n"
        "at 2s heal\n"
        "at 2s heal drop\n"
        "at 2s heal osd.1\n"
        "at 2s heal partition osd.0,osd.1\n"
        "at 3s chaos all kinds drop,reset,kill rate 0.5/s from 4s until 9s\n"
        "at 5s heal kill osd.2\n");
    const struct scn_timed *t = p->timeline;
    assert_int_equal(t[0].act.kind, SCN_ACT_DROP);
    assert_int_equal(t[0].act.prob_ppm, 300000);
    assert_int_equal(t[0].act.for_ns, SCN_NS_PER_S);
    assert_true(t[1].act.both_ways);
    assert_int_equal(t[1].act.prob_ppm, 500000);
    assert_true(t[2].act.u.blackhole.has_type);
    assert_int_equal(t[2].act.u.blackhole.msg_type, 0x7f00);
    assert_false(t[3].act.both_ways);
    assert_true(t[4].act.both_ways);
    assert_false(t[5].act.has_prob);
    assert_int_equal(t[6].act.prob_ppm, 10000);
    assert_int_equal(t[7].act.kind, SCN_ACT_CRASH);
    assert_int_equal(t[8].act.for_ns, 300 * SCN_NS_PER_MS);
    assert_int_equal(t[9].act.u.heal.kind, SCN_FAULT_NONE);
    assert_int_equal(t[9].act.subject.n, 0);
    assert_int_equal(t[10].act.u.heal.kind, SCN_FAULT_DROP);
    assert_int_equal(t[11].act.subject.n, 1);
    assert_int_equal(t[12].act.u.heal.kind, SCN_FAULT_PARTITION);
    assert_int_equal(t[12].act.subject.n, 2);
    const struct scn_action *ch = &t[13].act;
    assert_int_equal(ch->kind, SCN_ACT_CHAOS);
    assert_int_equal(ch->u.chaos.kinds, (1u << SCN_FAULT_DROP) |
                                            (1u << SCN_FAULT_RESET) |
                                            (1u << SCN_FAULT_KILL));
    assert_int_equal(ch->u.chaos.rate_mps, 500);
    assert_int_equal(ch->u.chaos.from_ns, 4 * SCN_NS_PER_S);
    assert_int_equal(ch->u.chaos.until_ns, 9 * SCN_NS_PER_S);
    assert_int_equal(p->last_named_ns, 9 * SCN_NS_PER_S);
    scn_plan_free(p);
}

static void
test_actions(void **state)
{
    (void)state;
    struct scn_plan *p = compile_ok(
        NODES3
        "at 0 osd.0 bind v2:10.0.0.1:6800\n"
        "at 0 osd.1 client_bind [::1]:0\n"
        "at 0 osd.0 connect osd.1,osd.2\n"
        "at 0 osd.0 keepalive osd.1\n"
        "at 0 osd.0 mark_down osd.2\n"
        "at 0 osd.[0..1] send osd.2 every 10ms priority low\n"
        "at 0 restart osd.1\n");
    const struct scn_timed *t = p->timeline;
    assert_int_equal(t[0].act.kind, SCN_ACT_BIND);
    assert_string_equal(t[0].act.u.bind.addr, "v2:10.0.0.1:6800");
    assert_int_equal(t[1].act.kind, SCN_ACT_CLIENT_BIND);
    assert_string_equal(t[1].act.u.bind.addr, "[::1]:0");
    assert_int_equal(t[2].act.kind, SCN_ACT_CONNECT);
    assert_int_equal(t[2].act.peer.n, 2);
    assert_int_equal(t[3].act.kind, SCN_ACT_KEEPALIVE);
    assert_int_equal(t[4].act.kind, SCN_ACT_MARK_DOWN);
    assert_int_equal(t[5].act.subject.n, 2);
    assert_int_equal(t[5].act.u.send.count, 1);
    assert_int_equal(t[5].act.u.send.priority, 64);
    assert_false(t[6].act.u.restart.same_nonce);
    scn_plan_free(p);
}

static void
test_breakpoints_and_triggers(void **state)
{
    (void)state;
    struct scn_plan *p = compile_ok(
        NODES3
        "break osd.1 -> osd.0 at banner block\n"
        "break osd.0 at client_ident write round 3 fault\n"
        "break osd.2 at message read stop\n"
        "on osd.0 breakpoint client_ident release osd.1 -> osd.0 at banner\n"
        "on every osd.0 reset from osd.1 osd.0 connect osd.1\n"
        "on osd.1 delivered 100 from osd.0 rebind osd.1\n"
        "on osd.0 -> osd.1 state standby kill osd.1\n"
        "on osd.2 accept break osd.2 at session_reconnect stall\n"
        "at 1s break osd.0 -> osd.2 at accepted stall\n"
        "at 2s release osd.0 -> osd.2 at accepted\n"
        "on osd.1 remote_reset heal\n"
        "at 0 partition osd.0 | osd.1\n");
    assert_int_equal(p->n_breaks, 3);
    assert_int_equal(p->breaks[0].step, SCN_STEP_BANNER);
    assert_int_equal(p->breaks[0].action, SCN_BREAK_BLOCK);
    assert_int_equal(p->breaks[0].dir, SCN_DIR_DEFAULT);
    assert_int_equal(p->breaks[0].round, 1);
    assert_int_equal(p->breaks[0].peer.idx[0], 0);
    assert_int_equal(p->breaks[0].loc.line, 2);
    assert_int_equal(p->breaks[1].dir, SCN_DIR_WRITE);
    assert_int_equal(p->breaks[1].round, 3);
    assert_int_equal(p->breaks[1].peer.n, 0);
    assert_int_equal(p->breaks[2].dir, SCN_DIR_READ);
    assert_int_equal(p->breaks[2].action, SCN_BREAK_STOP);
    assert_false(scn_step_is_frame(SCN_STEP_BANNER));
    assert_true(scn_step_is_frame(SCN_STEP_ACK));

    assert_int_equal(p->n_triggers, 6);
    const struct scn_trigger *tr = p->triggers;
    assert_int_equal(tr[0].kind, SCN_TRIG_BREAKPOINT);
    assert_int_equal(tr[0].step, SCN_STEP_CLIENT_IDENT);
    assert_int_equal(tr[0].act.kind, SCN_ACT_RELEASE);
    assert_int_equal(tr[0].act.u.brk.step, SCN_STEP_BANNER);
    assert_true(tr[1].every);
    assert_int_equal(tr[1].kind, SCN_TRIG_DISPATCH);
    assert_int_equal(tr[1].event, SCN_EV_RESET);
    assert_int_equal(tr[1].peer.idx[0], 1);
    assert_int_equal(tr[1].act.kind, SCN_ACT_CONNECT);
    assert_int_equal(tr[2].kind, SCN_TRIG_DELIVERED);
    assert_int_equal(tr[2].count, 100);
    assert_int_equal(tr[3].kind, SCN_TRIG_STATE);
    assert_int_equal(tr[3].state, SCN_STATE_STANDBY);
    assert_int_equal(tr[4].event, SCN_EV_ACCEPT);
    assert_int_equal(tr[4].act.kind, SCN_ACT_BREAK);
    assert_int_equal(tr[4].act.u.brk.action, SCN_BREAK_STALL);
    assert_int_equal(tr[5].act.kind, SCN_ACT_HEAL);

    assert_int_equal(p->timeline[1].act.kind, SCN_ACT_BREAK);
    assert_int_equal(p->timeline[2].act.kind, SCN_ACT_RELEASE);
    assert_int_equal(p->timeline[2].act.u.brk.peer.idx[0], 2);
    scn_plan_free(p);
}

static void
test_expectations(void **state)
{
    (void)state;
    struct scn_plan *p = compile_ok(
        NODES3
        "expect delivered osd.0 -> osd.1 all exactly_once in_order\n"
        "expect state osd.0 -> osd.1 standby at 2s\n"
        "expect reconnects osd.0 -> osd.1 != 0\n"
        "expect resets osd.0 -> osd.1 < 3\n"
        "expect no event osd.1 refused\n"
        "expect latency osd.0 -> osd.1 p99 < 5ms\n"
        "expect latency osd.0 -> osd.1 p99.9 <= 1s\n"
        "expect latency osd.0 -> osd.1 max < 2s\n"
        "expect connections osd.0 == 2 at 1s\n"
        "expect connections osd.0 -> osd.1 replaced > 0\n"
        "expect frames osd.0 -> osd.1 session_reconnect sent >= 1\n"
        "expect frames osd.0 -> osd.1 ack received == 4\n"
        "expect trace_hash 0123ABCdef\n");
    const struct scn_expect *e = p->expects;
    assert_int_equal(p->n_expects, 13);
    assert_int_equal(e[0].flags, SCN_DELIV_ALL | SCN_DELIV_EXACTLY_ONCE |
                                     SCN_DELIV_IN_ORDER);
    assert_false(e[0].has_value);
    assert_int_equal(e[1].state, SCN_STATE_STANDBY);
    assert_true(e[1].has_at);
    assert_int_equal(e[1].at_ns, 2 * SCN_NS_PER_S);
    assert_int_equal(e[2].kind, SCN_EXPECT_RECONNECTS);
    assert_int_equal(e[2].op, SCN_OP_NE);
    assert_int_equal(e[3].kind, SCN_EXPECT_RESETS);
    assert_int_equal(e[3].op, SCN_OP_LT);
    assert_int_equal(e[3].value, 3);
    assert_true(e[4].negate);
    assert_int_equal(e[4].event, SCN_EV_REFUSED);
    assert_int_equal(e[4].b.n, 0);
    assert_int_equal(e[5].percentile_ppm, 990000);
    assert_int_equal(e[5].value, 5 * SCN_NS_PER_MS);
    assert_int_equal(e[6].percentile_ppm, 999000);
    assert_int_equal(e[6].op, SCN_OP_LE);
    assert_int_equal(e[7].percentile_ppm, SCN_PPM);
    assert_false(e[8].has_obj_state);
    assert_int_equal(e[8].op, SCN_OP_EQ);
    assert_int_equal(e[8].at_ns, SCN_NS_PER_S);
    assert_true(e[9].has_obj_state);
    assert_int_equal(e[9].obj_state, SCN_CONN_OBJ_REPLACED);
    assert_int_equal(e[9].op, SCN_OP_GT);
    assert_int_equal(e[10].tag, SCN_STEP_SESSION_RECONNECT);
    assert_false(e[10].received);
    assert_true(e[11].received);
    assert_int_equal(e[11].tag, SCN_STEP_ACK);
    assert_string_equal(e[12].hex, "0123abcdef");
    assert_int_equal(p->last_named_ns, 2 * SCN_NS_PER_S);
    scn_plan_free(p);
}

static void
test_lexical(void **state)
{
    (void)state;
    /* comments, tabs, CRLF, blank lines, escapes in strings, a
     * continuation with blanks after the backslash, no final newline */
    struct scn_plan *p = compile_ok(
        "# a comment\r\n"
        "\r\n"
        "scenario \"say \\\"hi\\\" # not a comment\"   # a comment\r\n"
        "node\tosd.0 \\  \r\n"
        "   policy lossless_peer\n"
        "node osd.1 policy lossless_peer\n"
        "at 0 start osd.0 # osd.0->osd.1 in a comment\n"
        "\n"
        "at 1s reset osd.0<->osd.1");
    assert_string_equal(p->title, "say \"hi\" # not a comment");
    assert_int_equal(p->n_nodes, 2);
    scn_plan_free(p);
}

static void
test_names(void **state)
{
    (void)state;
    assert_string_equal(scn_action_name(SCN_ACT_MARK_DOWN_ALL), "mark_down_all");
    assert_string_equal(scn_fault_name(SCN_FAULT_CORRUPT), "corrupt");
    assert_string_equal(scn_step_name(SCN_STEP_KEEPALIVE2_ACK), "keepalive2_ack");
    assert_string_equal(scn_policy_name(MSGR_POLICY_STATEFUL_SERVER),
                        "stateful_server");
    assert_string_equal(scn_state_name(SCN_STATE_CONNECTING), "connecting");
    assert_string_equal(scn_event_name(SCN_EV_REMOTE_RESET), "remote_reset");
    assert_string_equal(scn_op_name(SCN_OP_GE), ">=");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_complete_example),
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_sets_resolve_in_declaration_order),
        cmocka_unit_test(test_timeline_order_relative_every),
        cmocka_unit_test(test_header_policy_config),
        cmocka_unit_test(test_faults),
        cmocka_unit_test(test_actions),
        cmocka_unit_test(test_breakpoints_and_triggers),
        cmocka_unit_test(test_expectations),
        cmocka_unit_test(test_lexical),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests_name("scn_parse", tests, NULL, NULL);
}
