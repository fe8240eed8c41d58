/*
 * The scenario runner on real sockets (stack posix): real messengers on
 * 127.0.0.1 in wall time. Verdicts, the checker still catching a broken
 * delivery, nodes told apart by port, a partition that really stalls the
 * stream, and `expect trace_hash` refused. Labelled posix: runs under
 * ThreadSanitizer too.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "scn/run.h"
#include "scn/scn.h"

struct outcome {
    int code;
    uint64_t fp;
    struct scn_run_result res;
    char text[8192];
};

static void
run_posix(const char *text, enum scn_sabotage sab, uint64_t at,
          struct outcome *out)
{
    struct scn_plan *p = NULL;
    struct scn_diags d;
    assert_int_equal(scn_compile("t.scn", text, strlen(text), &p, &d), 0);
    FILE *f = tmpfile();
    assert_non_null(f);
    struct scn_run_opts o;
    memset(&o, 0, sizeof(o));
    o.out = f;
    o.has_stack = true;
    o.stack = SCN_STACK_POSIX;
    o.sabotage = sab;
    o.sabotage_at = at;
    out->code = scn_run(p, text, strlen(text), &o, &out->res);
    out->fp = out->res.fingerprint;
    rewind(f);
    size_t n = fread(out->text, 1, sizeof(out->text) - 1, f);
    out->text[n] = 0;
    fclose(f);
    scn_plan_free(p);
}

static const char *const lossless =
    "scenario \"posix checker\"\n"
    "duration 2s\n" /* a lost delivery never resolves: no quiescence */
    "node osd.[0..1] policy lossless_peer\n"
    "at 0 start all\n"
    "at 1ms osd.0 send osd.1 count 50 size 512B every 1ms\n"
    "expect delivered osd.0 -> osd.1 all exactly_once in_order\n"
    "expect delivered osd.0 -> osd.1 no_dup in_order\n";

static void
test_clean_run_passes_on_real_sockets(void **state)
{
    (void)state;
    struct outcome a, b;
    run_posix(lossless, SCN_SABOTAGE_NONE, 0, &a);
    if (a.code != 0)
        fprintf(stderr, "%s", a.text);
    assert_int_equal(a.code, 0);
    assert_non_null(strstr(a.text, "stack posix"));
    assert_non_null(strstr(a.text, "s wall"));
    assert_int_equal(a.res.msgs_sent, 50);
    assert_int_equal(a.res.msgs_delivered, 50);
    /* the fingerprint hashes what is deterministic: the same again */
    run_posix(lossless, SCN_SABOTAGE_NONE, 0, &b);
    assert_int_equal(b.code, 0);
    assert_int_equal(a.fp, b.fp);
}

static void
test_checker_catches_a_lost_delivery(void **state)
{
    (void)state;
    struct outcome o;
    run_posix(lossless, SCN_SABOTAGE_DROP, 10, &o);
    assert_int_equal(o.code, SCN_EXIT_FAILED);
    assert_non_null(strstr(o.text, "FAIL t.scn:6"));
    assert_non_null(strstr(o.text, "--stack posix"));
}

/* Every node is 127.0.0.1: events and deliveries must land on the right
 * pair, which takes the port. */
static void
test_nodes_told_apart_by_port(void **state)
{
    (void)state;
    static const char *const text =
        "node osd.[0..2] policy lossless_peer\n"
        "at 0 start all\n"
        "at 1ms osd.0 send osd.2 count 20 every 1ms\n"
        "at 1ms osd.1 send osd.2 count 7\n"
        "expect delivered osd.0 -> osd.2 all exactly_once in_order\n"
        "expect delivered osd.1 -> osd.2 all exactly_once in_order\n"
        "expect event osd.2 accept from osd.0\n"
        "expect event osd.2 accept from osd.1\n"
        "expect no event osd.1 accept from osd.0\n"
        "expect connections osd.2 == 2\n";
    struct outcome o;
    run_posix(text, SCN_SABOTAGE_NONE, 0, &o);
    if (o.code != 0)
        fprintf(stderr, "%s", o.text);
    assert_int_equal(o.code, 0);
    assert_int_equal(o.res.msgs_delivered, 27);
}

/* A one-way partition set at both ends stalls the stream for its length
 * and loses nothing once healed. */
static void
test_partition_stalls_then_resumes(void **state)
{
    (void)state;
    static const char *const text =
        "node osd.[0..1] policy lossless_peer\n"
        "at 0 start all\n"
        "at 1ms osd.0 send osd.1 count 100 every 2ms\n"
        "at 50ms partition osd.0 -> osd.1 for 300ms\n"
        "expect delivered osd.0 -> osd.1 all exactly_once in_order\n"
        "expect latency osd.0 -> osd.1 max > 200ms\n"
        "expect resets osd.0 -> osd.1 == 0\n";
    struct outcome o;
    run_posix(text, SCN_SABOTAGE_NONE, 0, &o);
    if (o.code != 0)
        fprintf(stderr, "%s", o.text);
    assert_int_equal(o.code, 0);
    assert_true(o.res.end_ns >= 350000000ull);
}

static void
test_trace_hash_is_sim_only(void **state)
{
    (void)state;
    static const char *const text =
        "node osd.[0..1] policy lossless_peer\n"
        "at 0 start all\n"
        "expect trace_hash 0123456789abcdef\n";
    struct outcome o;
    run_posix(text, SCN_SABOTAGE_NONE, 0, &o);
    assert_int_equal(o.code, SCN_EXIT_INVALID);
    assert_null(strstr(o.text, "verdict:"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clean_run_passes_on_real_sockets),
        cmocka_unit_test(test_checker_catches_a_lost_delivery),
        cmocka_unit_test(test_nodes_told_apart_by_port),
        cmocka_unit_test(test_partition_stalls_then_resumes),
        cmocka_unit_test(test_trace_hash_is_sim_only),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
