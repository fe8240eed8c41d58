/*
 * The scenario runner end to end on the simulator: verdicts, exit codes,
 * determinism, and proof that each delivery expectation can fail: the
 * runner's sabotage hook breaks one delivery the way a faulty messenger
 * would, and the matching expectation must catch it with its evidence.
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

static const char *const lossless =
    "scenario \"checker\"\n"
    "node osd.[0..1] policy lossless_peer\n"
    "at 0 start all\n"
    "at 1ms osd.0 send osd.1 count 50 size 512B every 1ms\n"
    "expect delivered osd.0 -> osd.1 all exactly_once in_order\n"
    "expect delivered osd.0 -> osd.1 no_dup in_order\n"
    "expect delivered osd.0 -> osd.1 >= 100%\n";

struct outcome {
    int code;
    uint64_t fp;
    char text[8192];
};

static void
run_text(const char *text, enum scn_sabotage sab, uint64_t at,
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
    o.sabotage = sab;
    o.sabotage_at = at;
    struct scn_run_result res;
    out->code = scn_run(p, text, strlen(text), &o, &res);
    out->fp = res.fingerprint;
    rewind(f);
    size_t n = fread(out->text, 1, sizeof(out->text) - 1, f);
    out->text[n] = 0;
    fclose(f);
    scn_plan_free(p);
}

static void
test_clean_run_passes(void **state)
{
    (void)state;
    struct outcome o;
    run_text(lossless, SCN_SABOTAGE_NONE, 0, &o);
    assert_int_equal(o.code, SCN_EXIT_OK);
    assert_non_null(strstr(o.text, "verdict: pass (3 of 3"));
    assert_non_null(strstr(o.text, "seed: 1\n"));
    assert_non_null(strstr(o.text, "fingerprint: "));
    assert_null(strstr(o.text, "reproduce:"));
}

static void
test_same_seed_same_fingerprint(void **state)
{
    (void)state;
    struct outcome a, b;
    run_text(lossless, SCN_SABOTAGE_NONE, 0, &a);
    run_text(lossless, SCN_SABOTAGE_NONE, 0, &b);
    assert_int_equal(a.fp, b.fp);
    assert_string_equal(a.text, b.text);
}

/* A lost message: `all exactly_once` and `>= 100%` fail, naming it;
 * no_dup in_order still holds (loss is allowed there). */
static void
test_drop_is_caught(void **state)
{
    (void)state;
    struct outcome o;
    run_text(lossless, SCN_SABOTAGE_DROP, 7, &o);
    assert_int_equal(o.code, SCN_EXIT_FAILED);
    assert_non_null(strstr(o.text, "FAIL t.scn:5:"));
    assert_non_null(strstr(o.text, "first missing: seq 7 (never arrived)"));
    assert_non_null(strstr(o.text, "FAIL t.scn:7:"));
    assert_non_null(strstr(o.text, "ok   t.scn:6:"));
    assert_non_null(strstr(o.text, "reproduce: msgrsim run t.scn --seed 1"));
}

static void
test_duplicate_is_caught(void **state)
{
    (void)state;
    struct outcome o;
    run_text(lossless, SCN_SABOTAGE_DUP, 9, &o);
    assert_int_equal(o.code, SCN_EXIT_FAILED);
    assert_non_null(strstr(o.text, "FAIL t.scn:5:"));
    assert_non_null(strstr(o.text, "FAIL t.scn:6:"));
    assert_non_null(strstr(o.text, "seq 9 delivered twice"));
}

static void
test_reorder_is_caught(void **state)
{
    (void)state;
    struct outcome o;
    run_text(lossless, SCN_SABOTAGE_REORDER, 3, &o);
    assert_int_equal(o.code, SCN_EXIT_FAILED);
    assert_non_null(strstr(o.text, "FAIL t.scn:5:"));
    assert_non_null(strstr(o.text, "FAIL t.scn:6:"));
    assert_non_null(strstr(o.text, "seq 3 delivered out of order"));
    /* nothing was lost: the ratio holds */
    assert_non_null(strstr(o.text, "ok   t.scn:7:"));
}

static void
test_corruption_is_caught(void **state)
{
    (void)state;
    struct outcome o;
    run_text(lossless, SCN_SABOTAGE_CORRUPT, 4, &o);
    assert_int_equal(o.code, SCN_EXIT_FAILED);
    assert_non_null(strstr(o.text, "seq 4 delivered with a corrupt payload"));
}

/* Expectations other than delivery fail with their evidence too. */
static void
test_other_expectations_can_fail(void **state)
{
    (void)state;
    const char *text =
        "node osd.[0..1] policy lossless_peer\n"
        "at 0 start all\n"
        "at 1ms osd.0 send osd.1 count 10\n"
        "expect state osd.0 -> osd.1 closed\n"
        "expect reconnects osd.0 -> osd.1 > 0\n"
        "expect resets osd.0 -> osd.1 >= 1\n"
        "expect event osd.1 remote_reset from osd.0\n"
        "expect no event osd.0 connect\n"
        "expect latency osd.0 -> osd.1 p50 < 1us\n"
        "expect connections osd.0 == 0\n"
        "expect frames osd.0 -> osd.1 message sent == 9\n"
        "expect trace_hash 0123456789abcdef\n";
    struct outcome o;
    run_text(text, SCN_SABOTAGE_NONE, 0, &o);
    assert_int_equal(o.code, SCN_EXIT_FAILED);
    assert_non_null(strstr(o.text, "verdict: FAIL (0 of 9"));
    assert_non_null(strstr(o.text, "osd.0 -> osd.1 is open"));
    assert_non_null(strstr(o.text, "osd.0 -> osd.1: 10 message frames sent"));
    assert_non_null(strstr(o.text, "osd.0 has 1 live connections"));
}

/* And the same expectations written to hold do hold. */
static void
test_other_expectations_hold(void **state)
{
    (void)state;
    const char *text =
        "node osd.[0..1] policy lossless_peer\n"
        "at 0 start all\n"
        "at 1ms osd.0 send osd.1 count 10\n"
        "at 50ms reset osd.0 <-> osd.1\n"
        "at 100ms osd.0 send osd.1 count 10\n"
        "expect state osd.0 -> osd.1 open\n"
        "expect reconnects osd.0 -> osd.1 == 1\n"
        "expect resets osd.0 -> osd.1 == 0\n"
        "expect event osd.0 connect from osd.1\n"
        "expect no event osd.1 remote_reset\n"
        "expect latency osd.0 -> osd.1 max < 50ms\n"
        "expect connections osd.0 == 1\n"
        "expect frames osd.0 -> osd.1 message sent >= 20\n"
        "expect frames osd.1 -> osd.0 session_reconnect received == 1\n"
        "expect delivered osd.0 -> osd.1 all exactly_once in_order\n";
    struct outcome o;
    run_text(text, SCN_SABOTAGE_NONE, 0, &o);
    if (o.code != SCN_EXIT_OK)
        print_message("%s", o.text);
    assert_int_equal(o.code, SCN_EXIT_OK);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clean_run_passes),
        cmocka_unit_test(test_same_seed_same_fingerprint),
        cmocka_unit_test(test_drop_is_caught),
        cmocka_unit_test(test_duplicate_is_caught),
        cmocka_unit_test(test_reorder_is_caught),
        cmocka_unit_test(test_corruption_is_caught),
        cmocka_unit_test(test_other_expectations_can_fail),
        cmocka_unit_test(test_other_expectations_hold),
    };
    return cmocka_run_group_tests_name("scn_run", tests, NULL, NULL);
}
