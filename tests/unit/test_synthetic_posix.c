/*
 * Ceph's Synthetic* cases on the posix stack: real threads and TCP on
 * 127.0.0.1, the fault layer over it (tests/support/synthetic.h has the
 * workload and the checker's rules; test_sim_synthetic.c the full-size
 * cases on the simulator). Labelled posix, so it runs under ThreadSanitizer
 * too (`ctest -L posix`).
 *
 * Scale: a few seconds of wall time each, also under TSan: 4 servers, 8
 * clients, 16 connections first (at most 24), 300 ops 1 ms apart (Ceph:
 * 8/32, 100 connections, 1000-5000 ops), at most 32 messages in flight,
 * payloads 32 B .. 16 KiB, Ceph's op mix and socket
 * failures (1/30, 1/600). Internal delays are 10 ms instead of Ceph's
 * 0.1 s: every post of every worker waits for a random part of it in FIFO
 * order, in wall time.
 *
 * The PRNG of the op mix is seeded from MSGR_SYN_SEED (default per case);
 * thread scheduling is not reproducible, so a failure here prints its
 * seed and first violation for reading, not for replay.
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

static void
base(struct syn_config *c, const char *name, uint64_t seed)
{
    const char *v = getenv("MSGR_SYN_SEED");
    syn_config_default(c);
    c->name = name;
    c->use_sim = 0;
    c->seed = v && *v ? strtoull(v, NULL, 0) : seed;
    c->nservers = 4;
    c->nclients = 8;
    c->initial_conns = 16;
    c->ops = 300;
    c->max_payload = 16 * 1024;
    c->max_in_flight = 32;
    c->max_conns = 24;
    c->op_gap_ns = 1 * MS_NS;
    c->nworkers = 3;
    c->drain_timeout_ns = 30 * MSGR_NS_PER_S;
    v = getenv("MSGR_SYN_VERBOSE");
    c->verbose = v && *v ? atoi(v) : 0;
}

static void
run_and_check(const struct syn_config *c, uint64_t floor, int faults)
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
    /* lossless cases: everything came back; and the run did its work */
    if (c->client_policy != MSGR_POLICY_LOSSY_CLIENT)
        assert_true(r.drained);
    assert_true(r.chk.verified[SYN_LEG_ECHO] >= floor);
    assert_true(r.ops_drop > 0);
    if (faults) {
        assert_true(r.fault.socket_failures > 0);
        assert_true(r.msgr_faults > 0);
    }
    if (c->fault.internal_delay_ns)
        assert_true(r.fault.delayed_posts > 0);
}

/* SyntheticStressTest: stateful_server / lossless_client. */
static void
test_stress_posix(void **state)
{
    (void)state;
    struct syn_config c;
    base(&c, "SyntheticStressTest/posix", 201);
    run_and_check(&c, 100, 0);
}

/* SyntheticInjectTest: stateful_server / lossless_client, socket failures
 * 1/30, internal delays, dispatch throttle 16 MiB. */
static void
test_inject_posix(void **state)
{
    (void)state;
    struct syn_config c;
    base(&c, "SyntheticInjectTest/posix", 202);
    c.fault.socket_failures = 30;
    c.fault.internal_delay_ns = 10 * MS_NS;
    c.dispatch_throttle_bytes = 16ull << 20;
    run_and_check(&c, 100, 1);
}

/* SyntheticInjectTest2: lossless_peer_reuse both ways, 1/30, delays. */
static void
test_inject2_posix(void **state)
{
    (void)state;
    struct syn_config c;
    base(&c, "SyntheticInjectTest2/posix", 203);
    c.server_policy = c.client_policy = MSGR_POLICY_LOSSLESS_PEER_REUSE;
    c.fault.socket_failures = 30;
    c.fault.internal_delay_ns = 10 * MS_NS;
    run_and_check(&c, 100, 1);
}

/* SyntheticInjectTest3: stateless_server / lossy_client, 1/600, delays. */
static void
test_inject3_posix(void **state)
{
    (void)state;
    struct syn_config c;
    base(&c, "SyntheticInjectTest3/posix", 204);
    c.server_policy = MSGR_POLICY_STATELESS_SERVER;
    c.client_policy = MSGR_POLICY_LOSSY_CLIENT;
    c.fault.socket_failures = 600;
    c.fault.internal_delay_ns = 10 * MS_NS;
    /* 1/600 needs more I/O than 300 ops make to hit for sure */
    c.ops = 600;
    run_and_check(&c, 100, 1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stress_posix),
        cmocka_unit_test(test_inject_posix),
        cmocka_unit_test(test_inject2_posix),
        cmocka_unit_test(test_inject3_posix),
    };
    const char *filter = getenv("MSGR_TEST_FILTER");
    if (filter && *filter)
        cmocka_set_test_filter(filter);
    return cmocka_run_group_tests_name("synthetic_posix", tests, NULL, NULL);
}
