/*
 * Faults on a timeline (sim/src/fault.c): each kind starts and heals at
 * its virtual times, link faults restore what they found (also when they
 * overlap), host faults change the host's state, and every start and heal
 * shows in the fingerprint.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "sim/sim.h"
#include "sim_internal.h"

#define S MSGR_NS_PER_S
#define MS MSGR_NS_PER_MS

struct fx {
    struct sim_world *w;
    struct sim_host *a, *b;
};

static int
setup(void **state)
{
    static struct fx fx;
    fx.w = sim_world_new(42);
    fx.a = sim_host_new(fx.w, 1, "a", 0x0a000001u);
    fx.b = sim_host_new(fx.w, 2, "b", 0x0a000002u);
    struct sim_link_params p = {.latency_ns = 100 * MSGR_NS_PER_US};
    sim_link_default(fx.w, &p);
    *state = &fx;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *fx = *state;
    sim_world_free(fx->w);
    return 0;
}

static struct sim_link_params
link_at(struct fx *fx, msgr_time_ns t, struct sim_host *x, struct sim_host *y)
{
    sim_run_until(fx->w, t);
    struct sim_link_params p;
    sim_link_get(fx->w, x, y, &p);
    return p;
}

static void
test_link_faults_start_and_heal(void **state)
{
    struct fx *fx = *state;
    struct sim_fault f = {.kind = SIM_FAULT_LOSS, .a = fx->a, .b = fx->b,
                          .start_at_ns = 1 * S, .heal_at_ns = 2 * S,
                          .ppm = 50000};
    struct sim_fault_run *r = sim_fault_schedule(fx->w, &f);
    assert_non_null(r);
    struct sim_fault d = {.kind = SIM_FAULT_DELAY, .a = fx->a, .b = fx->b,
                          .oneway = 1, .start_at_ns = 1500 * MS,
                          .heal_at_ns = 3 * S, .delay_ns = 5 * MS,
                          .jitter_ns = 1 * MS};
    struct sim_fault_run *rd = sim_fault_schedule(fx->w, &d);
    assert_non_null(rd);

    assert_int_equal(link_at(fx, 999 * MS, fx->a, fx->b).loss_ppm, 0);
    assert_false(sim_fault_active(r));
    assert_int_equal(link_at(fx, 1 * S, fx->a, fx->b).loss_ppm, 50000);
    assert_int_equal(link_at(fx, 1 * S, fx->b, fx->a).loss_ppm, 50000);
    assert_true(sim_fault_active(r));
    struct sim_link_params p = link_at(fx, 1600 * MS, fx->a, fx->b);
    assert_int_equal(p.latency_ns, 100 * MSGR_NS_PER_US + 5 * MS);
    assert_int_equal(p.jitter_ns, 1 * MS);
    assert_int_equal(p.loss_ppm, 50000);
    /* one way: b -> a keeps its latency */
    assert_int_equal(link_at(fx, 1600 * MS, fx->b, fx->a).latency_ns,
                     100 * MSGR_NS_PER_US);
    /* the loss heals first and leaves the delay, still on, alone */
    assert_int_equal(link_at(fx, 2 * S, fx->b, fx->a).loss_ppm, 0);
    assert_false(sim_fault_active(r));
    p = link_at(fx, 2500 * MS, fx->a, fx->b);
    assert_int_equal(p.loss_ppm, 0);
    assert_int_equal(p.latency_ns, 100 * MSGR_NS_PER_US + 5 * MS);
    p = link_at(fx, 3 * S, fx->a, fx->b);
    assert_int_equal(p.latency_ns, 100 * MSGR_NS_PER_US);
    assert_int_equal(p.jitter_ns, 0);
    sim_fault_free(r);
    sim_fault_free(rd);
}

static void
test_nested_faults_restore_original(void **state)
{
    struct fx *fx = *state;
    struct sim_fault bw = {.kind = SIM_FAULT_BANDWIDTH, .a = fx->a, .b = fx->b,
                           .start_at_ns = 1 * S, .heal_at_ns = 4 * S,
                           .bandwidth_bps = 1000000};
    struct sim_fault cor = {.kind = SIM_FAULT_CORRUPT, .a = fx->a, .b = fx->b,
                            .start_at_ns = 2 * S, .heal_at_ns = 3 * S,
                            .ppm = 1000};
    struct sim_fault_run *r1 = sim_fault_schedule(fx->w, &bw);
    struct sim_fault_run *r2 = sim_fault_schedule(fx->w, &cor);
    struct sim_link_params p = link_at(fx, 2500 * MS, fx->a, fx->b);
    assert_int_equal(p.bandwidth_bps, 1000000);
    assert_int_equal(p.corrupt_ppm, 1000);
    p = link_at(fx, 3500 * MS, fx->a, fx->b);
    assert_int_equal(p.bandwidth_bps, 1000000);
    assert_int_equal(p.corrupt_ppm, 0);
    p = link_at(fx, 5 * S, fx->b, fx->a);
    assert_int_equal(p.bandwidth_bps, 0);
    assert_int_equal(p.corrupt_ppm, 0);
    sim_fault_free(r1);
    sim_fault_free(r2);
}

static void
test_host_faults(void **state)
{
    struct fx *fx = *state;
    struct sim_fault pause = {.kind = SIM_FAULT_PAUSE, .a = fx->a,
                              .start_at_ns = 1 * S, .heal_at_ns = 2 * S};
    struct sim_fault kill = {.kind = SIM_FAULT_KILL, .a = fx->b,
                             .start_at_ns = 3 * S, .heal_at_ns = 4 * S};
    struct sim_fault_run *rp = sim_fault_schedule(fx->w, &pause);
    struct sim_fault_run *rk = sim_fault_schedule(fx->w, &kill);
    sim_run_until(fx->w, 1500 * MS);
    assert_int_equal(fx->a->state, SIM_HOST_PAUSED);
    sim_run_until(fx->w, 2 * S);
    assert_int_equal(fx->a->state, SIM_HOST_ALIVE);
    sim_run_until(fx->w, 3500 * MS);
    assert_int_equal(fx->b->state, SIM_HOST_KILLED);
    sim_run_until(fx->w, 4 * S);
    assert_int_equal(fx->b->state, SIM_HOST_ALIVE);
    sim_fault_free(rp);
    sim_fault_free(rk);
}

static void
test_heal_early_and_invalid(void **state)
{
    struct fx *fx = *state;
    struct sim_fault bad = {.kind = SIM_FAULT_PARTITION, .a = fx->a};
    assert_null(sim_fault_schedule(fx->w, &bad)); /* no b */
    struct sim_fault back = {.kind = SIM_FAULT_LOSS, .a = fx->a, .b = fx->b,
                             .start_at_ns = 2 * S, .heal_at_ns = 1 * S};
    assert_null(sim_fault_schedule(fx->w, &back));

    struct sim_fault f = {.kind = SIM_FAULT_LOSS, .a = fx->a, .b = fx->b,
                          .start_at_ns = 1 * S, .ppm = 7};
    struct sim_fault_run *r = sim_fault_schedule(fx->w, &f);
    assert_int_equal(link_at(fx, 5 * S, fx->a, fx->b).loss_ppm, 7);
    sim_fault_heal(r);
    assert_int_equal(link_at(fx, 5 * S, fx->a, fx->b).loss_ppm, 0);
    /* healing a fault that has not started cancels it */
    f.start_at_ns = 10 * S;
    struct sim_fault_run *r2 = sim_fault_schedule(fx->w, &f);
    sim_fault_heal(r2);
    assert_int_equal(link_at(fx, 11 * S, fx->a, fx->b).loss_ppm, 0);
    sim_fault_free(r);
    sim_fault_free(r2);
}

/* The same faults give the same fingerprint; a fault's time changes it. */
static uint64_t
fp_with_partition(msgr_time_ns at)
{
    struct sim_world *w = sim_world_new(9);
    struct sim_host *a = sim_host_new(w, 1, "a", 0x0a000001u);
    struct sim_host *b = sim_host_new(w, 2, "b", 0x0a000002u);
    struct sim_fault f = {.kind = SIM_FAULT_PARTITION, .a = a, .b = b,
                          .start_at_ns = at, .heal_at_ns = at + 1 * S};
    struct sim_fault_run *r = sim_fault_schedule(w, &f);
    sim_run_until(w, 10 * S);
    uint64_t fp = sim_fingerprint(w);
    sim_fault_free(r);
    sim_world_free(w);
    return fp;
}

static void
test_fingerprint(void **state)
{
    (void)state;
    assert_int_equal(fp_with_partition(1 * S), fp_with_partition(1 * S));
    assert_int_not_equal(fp_with_partition(1 * S), fp_with_partition(2 * S));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_link_faults_start_and_heal, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_nested_faults_restore_original,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_host_faults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_heal_early_and_invalid, setup,
                                        teardown),
        cmocka_unit_test(test_fingerprint),
    };
    return cmocka_run_group_tests_name("sim_fault", tests, NULL, NULL);
}
