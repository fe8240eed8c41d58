/*
 * Ceph's Synthetic* acceptance cases of test_msgr.cc (PROTOCOL.md §6) on
 * the simulator, through the workload and checker of
 * tests/support/synthetic.h (servers echo; the client judges the echoes;
 * rules in that header). Every stack is wrapped in the fault layer.
 *
 * Scale: Ceph runs 1000-10000 ops with payloads up to 4 MiB in minutes of
 * wall time. Here the whole file must take seconds: the op counts, the
 * server and client counts, the op mix, the in-flight and connection
 * limits and the fault settings are Ceph's (numbers at each case), but
 * payloads are 32 B .. 64 KiB (the checksums and echo copies of 4 MiB
 * payloads would cost seconds per case). The file takes about 3 s.
 *
 * Each case asserts zero violations AND that the run did what it claims:
 * messages verified above a floor, faults injected and seen by the
 * messengers, connections dropped, so a broken checker or a silent
 * workload cannot pass.
 *
 * Seeds: each case has its own; MSGR_SYN_SEED overrides them all.
 * The sweep (test_sweep_*) runs only when MSGR_SYN_SWEEP=N is set (ctest's
 * test_sim_synthetic_sweep sets 200): SyntheticInjectTest and
 * SyntheticInjectTest2, sized down, on N seeds from MSGR_SYN_SEED (default
 * 1). A failing seed is printed with a command that replays it alone.
 * MSGR_TEST_FILTER (a cmocka glob) picks cases; MSGR_SYN_VERBOSE=1 prints
 * every run's figures; MSGR_SYN_SOCKET_FAILURES=N makes the injected
 * socket failures 1/N (harsher sweeps for bug hunting), MSGR_SYN_DRAIN_S
 * how long (virtual) the end waits for every message to come back
 * (default 120 s).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "synthetic.h"

#define MS_NS MSGR_NS_PER_MS

static uint64_t
env_u64(const char *name, uint64_t dflt)
{
    const char *v = getenv(name);
    return v && *v ? strtoull(v, NULL, 0) : dflt;
}

static uint64_t
seed_or(uint64_t dflt)
{
    return env_u64("MSGR_SYN_SEED", dflt);
}

static void
base(struct syn_config *c, const char *name, uint64_t seed)
{
    syn_config_default(c);
    c->name = name;
    c->use_sim = 1;
    c->seed = seed_or(seed);
    c->drain_timeout_ns = env_u64("MSGR_SYN_DRAIN_S", 120) * MSGR_NS_PER_S;
    c->verbose = (int)env_u64("MSGR_SYN_VERBOSE", 0);
}

/* Ceph's socket failures 1/N and internal delays of 0.1 s.
 * MSGR_SYN_SOCKET_FAILURES=N overrides N (bug hunting). */
static void
inject(struct syn_config *c, uint32_t one_in, msgr_time_ns delay)
{
    c->fault.socket_failures =
        (uint32_t)env_u64("MSGR_SYN_SOCKET_FAILURES", one_in);
    c->fault.internal_delay_ns = delay;
}

/* What every case asserts: no violation, and a workload that worked. */
struct floor {
    uint64_t verified;   /* echoes verified, at least */
    int want_failures;   /* injected socket failures > 0 */
    int want_drain;      /* every lossless message came back */
};

static void
run_and_check(const struct syn_config *c, const struct floor *f)
{
    static struct syn_result r; /* static: cmocka unwinds with longjmp */
    int err = syn_run(c, &r);
    syn_result_print(c, &r, stdout);
    if (err)
        fail_msg("%s: setup failed: %d", c->name, err);
    if (r.chk.violations) {
        char line[256];
        syn_violation_format(&r.first, line, sizeof(line));
        fail_msg("%s seed %llu: %llu violations, first: %s", c->name,
                 (unsigned long long)c->seed,
                 (unsigned long long)r.chk.violations, line);
    }
    if (f->want_drain)
        assert_true(r.drained);
    /* the workload exercised what it claims */
    assert_true(r.chk.verified[SYN_LEG_ECHO] >= f->verified);
    assert_true(r.chk.verified[SYN_LEG_REQ] >= r.chk.verified[SYN_LEG_ECHO]);
    assert_true(r.ops_drop > 0);
    assert_true(r.chk.excused > 0 || c->pct_drop == 0);
    if (f->want_failures) {
        assert_true(r.fault.socket_failures > 0);
        assert_true(r.msgr_faults > 0);
    }
    if (c->fault.internal_delay_ns)
        assert_true(r.fault.delayed_posts > 0);
}

/* ---------------------------------------------------- the checker fails */

static struct msgr_buf
buf_of(void *p, uint32_t n)
{
    struct msgr_buf b = {p, n};
    return b;
}

/* A message of inc as the client would build it. */
static void
forge(struct syn_hdr *h, uint8_t *payload, uint32_t len, uint32_t inc,
      uint64_t seq, enum syn_leg leg)
{
    memset(h, 0, sizeof(*h));
    for (uint32_t i = 0; i < len; i++)
        payload[i] = (uint8_t)(seq * 7 + i);
    h->magic = SYN_MAGIC;
    h->leg = (uint8_t)leg;
    h->client = 1;
    h->server = 0;
    h->inc = inc;
    h->len = len;
    h->seq = seq;
    h->sum = syn_fnv1a(payload, len);
    h->sent_ns = seq * 1000;
}

static int
deliver(struct syn_checker *k, uint32_t inc, uint64_t seq, enum syn_leg leg,
        int corrupt)
{
    struct syn_hdr h;
    uint8_t p[64];
    forge(&h, p, sizeof(p), inc, seq, leg);
    if (corrupt)
        p[17] ^= 0x10;
    struct msgr_buf fb = buf_of(&h, sizeof(h)), db = buf_of(p, sizeof(p));
    return syn_checker_received(k, leg, &fb, &db, 5000 + seq);
}

static void
expect_one(struct syn_checker *k, enum syn_violation_kind kind, uint64_t seq,
           enum syn_leg leg)
{
    struct syn_checker_stats st;
    struct syn_violation v;
    syn_checker_stats(k, &st);
    assert_int_equal(st.violations, 1);
    assert_int_equal(st.by_kind[kind], 1);
    assert_int_equal(syn_checker_violation(k, 0, &v), 0);
    assert_int_equal(v.kind, kind);
    assert_int_equal(v.seq, seq);
    assert_int_equal(v.leg, leg);
    assert_int_equal(v.client, 1);
    assert_int_equal(v.server, 0);
}

static void
test_checker_catches(void **state)
{
    (void)state;
    struct syn_checker *k;
    uint32_t inc;

    /* a clean stream: nothing reported, nothing outstanding */
    k = syn_checker_new();
    inc = syn_checker_inc_new(k, 1, 0, 1, &k);
    for (int s = 1; s <= 3; s++) {
        assert_int_equal(syn_checker_next_seq(k, inc), (uint64_t)s);
        assert_int_equal(deliver(k, inc, (uint64_t)s, SYN_LEG_REQ, 0), 0);
        assert_int_equal(deliver(k, inc, (uint64_t)s, SYN_LEG_ECHO, 0), 0);
    }
    assert_int_equal(syn_checker_in_flight(k), 0);
    assert_int_equal(syn_checker_finish(k, 1), 0);
    syn_checker_free(k);

    /* dropped: 2 never comes back on a lossless connection */
    k = syn_checker_new();
    inc = syn_checker_inc_new(k, 1, 0, 1, &k);
    for (int s = 1; s <= 3; s++)
        syn_checker_next_seq(k, inc);
    assert_int_equal(deliver(k, inc, 1, SYN_LEG_ECHO, 0), 0);
    assert_int_equal(deliver(k, inc, 3, SYN_LEG_ECHO, 0), 0);
    assert_int_equal(syn_checker_lossless_in_flight(k), 1);
    assert_int_equal(syn_checker_finish(k, 9), 1);
    expect_one(k, SYN_V_LOSS, 2, SYN_LEG_ECHO);
    syn_checker_print(k, stdout);
    syn_checker_free(k);

    /* duplicated: 1 twice */
    k = syn_checker_new();
    inc = syn_checker_inc_new(k, 1, 0, 1, &k);
    syn_checker_next_seq(k, inc);
    syn_checker_next_seq(k, inc);
    assert_int_equal(deliver(k, inc, 1, SYN_LEG_REQ, 0), 0);
    assert_int_not_equal(deliver(k, inc, 1, SYN_LEG_REQ, 0), 0);
    expect_one(k, SYN_V_DUPLICATE, 1, SYN_LEG_REQ);
    syn_checker_free(k);

    /* reordered: 2 before 1 (also on a lossy connection) */
    k = syn_checker_new();
    inc = syn_checker_inc_new(k, 1, 0, 0, &k);
    syn_checker_next_seq(k, inc);
    syn_checker_next_seq(k, inc);
    assert_int_equal(deliver(k, inc, 2, SYN_LEG_ECHO, 0), 0);
    assert_int_not_equal(deliver(k, inc, 1, SYN_LEG_ECHO, 0), 0);
    expect_one(k, SYN_V_REORDER, 1, SYN_LEG_ECHO);
    /* the lossy gap itself was no loss */
    assert_int_equal(syn_checker_finish(k, 9), 1);
    syn_checker_free(k);

    /* corrupted: one bit of the payload flipped */
    k = syn_checker_new();
    inc = syn_checker_inc_new(k, 1, 0, 1, &k);
    syn_checker_next_seq(k, inc);
    assert_int_not_equal(deliver(k, inc, 1, SYN_LEG_REQ, 1), 0);
    expect_one(k, SYN_V_CORRUPT, 1, SYN_LEG_REQ);
    syn_checker_free(k);

    /* excused: a lossless loss after mark_down or before a session reset
     * is no violation; a loss after the reset is */
    k = syn_checker_new();
    inc = syn_checker_inc_new(k, 1, 0, 1, &k);
    uint32_t inc2 = syn_checker_inc_new(k, 1, 0, 1, &inc);
    syn_checker_next_seq(k, inc);
    syn_checker_marked_down(k, inc);
    syn_checker_next_seq(k, inc2);
    syn_checker_session_reset(k, inc2, 0);
    assert_int_equal(syn_checker_inc_by_key(k, &inc), inc2);
    assert_int_equal(syn_checker_in_flight(k), 0);
    assert_int_equal(syn_checker_next_seq(k, inc2), 2);
    assert_int_equal(syn_checker_finish(k, 9), 1);
    expect_one(k, SYN_V_LOSS, 2, SYN_LEG_ECHO);
    syn_checker_free(k);
}

/* ------------------------------------------------------------- cases */

/* SyntheticStressTest: stateful_server / lossless_client, 8 servers, 32
 * clients, 100 connections, then 5000 ops (new 9%, drop 10%, send 70%,
 * sleep), at most 64 in flight and 128 connections: Ceph's numbers, with
 * payloads up to 64 KiB instead of 4 MiB (about 0.6 s). */
static void
test_stress(void **state)
{
    (void)state;
    struct syn_config c;
    base(&c, "SyntheticStressTest", 101);
    c.ops = 5000;
    struct floor f = {.verified = 2000, .want_drain = 1};
    run_and_check(&c, &f);
}

/* SyntheticStressTest1: lossless_peer_reuse both ways, 16 servers, 32
 * clients, more churn (new 19%, drop 20%), 10000 ops as Ceph (about
 * 0.9 s). */
static void
test_stress1(void **state)
{
    (void)state;
    struct syn_config c;
    base(&c, "SyntheticStressTest1", 102);
    c.nservers = 16;
    c.server_policy = c.client_policy = MSGR_POLICY_LOSSLESS_PEER_REUSE;
    c.ops = 10000;
    c.pct_new = 19;
    c.pct_drop = 20;
    c.pct_send = 50;
    struct floor f = {.verified = 2000, .want_drain = 1};
    run_and_check(&c, &f);
}

/* SyntheticInjectTest: stateful_server / lossless_client, socket failures
 * 1/30, internal delays 0.1 s, dispatch throttle 16 MiB. Ceph: 1000 ops
 * after 100 connections (8 servers, 32 clients); the same here. */
static void
test_inject(void **state)
{
    (void)state;
    struct syn_config c;
    base(&c, "SyntheticInjectTest", 103);
    inject(&c, 30, 100 * MS_NS);
    c.dispatch_throttle_bytes = 16ull << 20;
    c.ops = 1000;
    struct floor f = {.verified = 300, .want_failures = 1, .want_drain = 1};
    run_and_check(&c, &f);
}

/* SyntheticInjectTest2: lossless_peer_reuse both ways, 1/30, delays. */
static void
test_inject2(void **state)
{
    (void)state;
    struct syn_config c;
    base(&c, "SyntheticInjectTest2", 104);
    c.server_policy = c.client_policy = MSGR_POLICY_LOSSLESS_PEER_REUSE;
    inject(&c, 30, 100 * MS_NS);
    c.ops = 1000;
    struct floor f = {.verified = 300, .want_failures = 1, .want_drain = 1};
    run_and_check(&c, &f);
}

/* SyntheticInjectTest3: stateless_server / lossy_client, socket failures
 * 1/600, delays 0.1 s. Lossy: only no duplicate, no reordering, intact
 * payloads are required; messages may be lost. */
static void
test_inject3(void **state)
{
    (void)state;
    struct syn_config c;
    base(&c, "SyntheticInjectTest3", 105);
    c.server_policy = MSGR_POLICY_STATELESS_SERVER;
    c.client_policy = MSGR_POLICY_LOSSY_CLIENT;
    inject(&c, 600, 100 * MS_NS);
    c.ops = 1000;
    struct floor f = {.verified = 300, .want_failures = 1};
    run_and_check(&c, &f);
}

/* SyntheticInjectTest4: lossless_peer both ways, 16 servers, 32 clients,
 * 1/30, delays 0.1 s, and delivery from "client osd" peers delayed with
 * probability 1 by up to 5 s, as Ceph's ms_inject_delay_*. */
static void
test_inject4(void **state)
{
    (void)state;
    struct syn_config c;
    base(&c, "SyntheticInjectTest4", 106);
    c.nservers = 16;
    c.server_policy = c.client_policy = MSGR_POLICY_LOSSLESS_PEER;
    inject(&c, 30, 100 * MS_NS);
    c.delay_by_type = (struct syn_delay_by_type){
        MSGR_ENTITY_CLIENT | MSGR_ENTITY_OSD, 1000000, 5 * MSGR_NS_PER_S};
    c.ops = 1000;
    struct floor f = {.verified = 300, .want_failures = 1, .want_drain = 1};
    run_and_check(&c, &f);
}

/* ------------------------------------------------------------- sweep */

/* The sweep's sizes: the case's (8 servers, 32 clients, 100 connections
 * first, at most 128 connections and 64 in flight) with 600 ops and
 * payloads up to 16 KiB. */
static void
sweep_config(struct syn_config *c, int peer, uint64_t seed)
{
    base(c, peer ? "sweep:SyntheticInjectTest2" : "sweep:SyntheticInjectTest",
         seed);
    c->seed = seed;
    c->ops = 600;
    c->max_payload = 16 * 1024;
    inject(c, 30, 100 * MS_NS);
    if (peer) {
        c->server_policy = c->client_policy = MSGR_POLICY_LOSSLESS_PEER_REUSE;
    } else {
        c->dispatch_throttle_bytes = 16ull << 20;
    }
}

static void
sweep(int peer)
{
    uint64_t n = env_u64("MSGR_SYN_SWEEP", 0);
    if (!n)
        skip();
    uint64_t first = seed_or(1);
    static struct syn_result r;
    uint64_t failed = 0, verified = 0, failures = 0;
    for (uint64_t s = first; s < first + n; s++) {
        struct syn_config c;
        sweep_config(&c, peer, s);
        int err = syn_run(&c, &r);
        if (c.verbose)
            syn_result_print(&c, &r, stdout);
        verified += r.chk.verified[SYN_LEG_ECHO];
        failures += r.fault.socket_failures;
        if (err || r.chk.violations || !r.drained) {
            char line[256] = "";
            if (r.chk.violations)
                syn_violation_format(&r.first, line, sizeof(line));
            const char *knob = getenv("MSGR_SYN_SOCKET_FAILURES");
            print_message("FAIL %s seed %llu: %s%s%s\n"
                          "  reproduce: %s%s%sMSGR_SYN_SWEEP=1 "
                          "MSGR_SYN_SEED=%llu "
                          "MSGR_TEST_FILTER=%s MSGR_SYN_VERBOSE=1 "
                          "build/tests/test_sim_synthetic\n",
                          c.name, (unsigned long long)s,
                          err ? "setup failed" : "", line,
                          !err && !r.drained ? " (not drained)" : "",
                          knob ? "MSGR_SYN_SOCKET_FAILURES=" : "",
                          knob ? knob : "", knob ? " " : "",
                          (unsigned long long)s,
                          peer ? "test_sweep_inject2" : "test_sweep_inject");
            failed++;
        }
    }
    print_message("%llu seeds, %llu echoes verified, %llu socket failures "
                  "injected, %llu failed\n",
                  (unsigned long long)n, (unsigned long long)verified,
                  (unsigned long long)failures, (unsigned long long)failed);
    if (failed)
        fail_msg("%llu of %llu seeds failed", (unsigned long long)failed,
                 (unsigned long long)n);
    assert_true(failures >= n); /* faults on every seed, on average */
    assert_true(verified >= 20 * n);
}

static void
test_sweep_inject(void **state)
{
    (void)state;
    sweep(0);
}

static void
test_sweep_inject2(void **state)
{
    (void)state;
    sweep(1);
}

/* ------------------------------------------------------- determinism */

static void
test_same_seed_same_run(void **state)
{
    (void)state;
    static struct syn_result a, b;
    struct syn_config c;
    sweep_config(&c, 1, seed_or(7));
    assert_int_equal(syn_run(&c, &a), 0);
    assert_int_equal(syn_run(&c, &b), 0);
    assert_int_equal(a.fingerprint, b.fingerprint);
    assert_int_equal(a.chk.sent, b.chk.sent);
    assert_int_equal(a.chk.verified[SYN_LEG_ECHO],
                     b.chk.verified[SYN_LEG_ECHO]);
    assert_int_equal(a.fault.socket_failures, b.fault.socket_failures);
    assert_int_equal(a.elapsed_ns, b.elapsed_ns);
    c.seed++;
    assert_int_equal(syn_run(&c, &b), 0);
    assert_int_not_equal(a.fingerprint, b.fingerprint);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_checker_catches),
        cmocka_unit_test(test_same_seed_same_run),
        cmocka_unit_test(test_stress),
        cmocka_unit_test(test_stress1),
        cmocka_unit_test(test_inject),
        cmocka_unit_test(test_inject2),
        cmocka_unit_test(test_inject3),
        cmocka_unit_test(test_inject4),
        cmocka_unit_test(test_sweep_inject),
        cmocka_unit_test(test_sweep_inject2),
    };
    const char *filter = getenv("MSGR_TEST_FILTER");
    if (filter && *filter)
        cmocka_set_test_filter(filter);
    return cmocka_run_group_tests_name("sim_synthetic", tests, NULL, NULL);
}
