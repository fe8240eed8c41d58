/*
 * reports/: the parts of a report made from a small trace whose contents
 * are known (a handshake, a reset and a reconnect, a message delivered,
 * one dropped, one delivered twice, a partition), and report_write's
 * files, with every DOT file parsed back through graphviz.
 */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "msgr/msgr.h"
#include "reports/report.h"
#include "trace_test_util.h"

static struct trace_db *db;
static int64_t run, n_osd0, n_osd1, n_client;

static const char *const handshake[] = {
    "NONE", "START_CONNECT", "CONNECTING", "BANNER_CONNECTING",
    "HELLO_CONNECTING", "AUTH_CONNECTING", "AUTH_CONNECTING_SIGN",
    "SESSION_CONNECTING", "READY"};

static void
state(int64_t t, int64_t node, int64_t conn, const char *from, const char *to)
{
    assert_int_equal(trace_event_state(db, run, t, node, conn, from, to, "t"),
                     0);
}

/* One fate of message (src, id): the event on conn and the message row. */
static void
fate(int64_t t, int64_t node, int64_t conn, int64_t src, int64_t dst,
     int64_t id, const char *name, int f)
{
    struct trace_event_rec e;
    trace_event_rec_init(&e, TRACE_EV_MSG, t);
    e.node = node;
    e.conn = conn;
    e.fate = name;
    e.msg_src = src;
    e.msg_id = id;
    e.msg_seq = id;
    e.bytes = 100;
    assert_int_equal(trace_event_add(db, run, &e, NULL), 0);
    struct trace_msg_rec m = {.src = src, .msg_id = id, .dst = dst,
                              .conn = node == src ? conn : 0, .seq = id,
                              .size = 100, .fate = f, .t_ns = t};
    assert_int_equal(trace_message_fate(db, run, &m), 0);
}

static int
setup(void **state_)
{
    (void)state_;
    char path[128];
    tt_mkdir();
    db = trace_open(tt_path(path, sizeof(path), "t.db"), TRACE_OPEN_RW, NULL);
    assert_non_null(db);
    struct trace_run_info ri = {.scenario_path = "known.scn",
                                .scenario_text = "scenario \"known\"\n",
                                .seed = 42, .stack = "sim"};
    assert_int_equal(trace_run_begin(db, &ri, &run), 0);
    struct trace_node_info a = {.name = "osd.0", .entity_type = 4},
                           b = {.name = "osd.1", .entity_type = 4},
                           c = {.name = "client.0", .entity_type = 8};
    assert_int_equal(trace_node_add(db, run, &a, &n_osd0), 0);
    assert_int_equal(trace_node_add(db, run, &b, &n_osd1), 0);
    assert_int_equal(trace_node_add(db, run, &c, &n_client), 0);
    int64_t c1, c2, c3;
    assert_int_equal(trace_conn_add(db, run, n_osd0, 1, "osd.1", NULL, NULL,
                                    1000, &c1), 0);
    assert_int_equal(trace_conn_add(db, run, n_osd1, 1, "osd.0", NULL, NULL,
                                    1000, &c2), 0);
    assert_int_equal(trace_conn_add(db, run, n_client, 1, "osd.0", NULL,
                                    NULL, 1000, &c3), 0);
    /* c1 dials: the whole handshake, a reset and a second handshake */
    for (size_t i = 1; i < sizeof(handshake) / sizeof(*handshake); i++)
        state(1000 * (int64_t)i, n_osd0, c1, handshake[i - 1], handshake[i]);
    state(1500, n_osd1, c2, "NONE", "START_ACCEPT");
    state(9500, n_osd1, c2, "START_ACCEPT", "BANNER_ACCEPTING");
    /* messages: 1 delivered and acked, 2 dropped, 3 delivered twice */
    fate(20000, n_osd0, c1, n_osd0, n_osd1, 1, "sent", 1);
    fate(25000, n_osd1, c2, n_osd0, n_osd1, 1, "delivered", 3);
    fate(26000, n_osd0, c1, n_osd0, n_osd1, 1, "acked", 2);
    int64_t fid;
    assert_int_equal(trace_fault_add(db, run, 30000, "partition",
                                     "osd.0 <-> osd.1", "", &fid), 0);
    fate(31000, n_osd0, c1, n_osd0, n_osd1, 2, "sent", 1);
    fate(32000, n_osd0, c1, n_osd0, n_osd1, 3, "sent", 1);
    state(33000, n_osd0, c1, "READY", "START_CONNECT");
    fate(34000, n_osd0, c1, n_osd0, n_osd1, 2, "dropped", 4);
    assert_int_equal(trace_fault_heal(db, run, fid, 40000), 0);
    state(41000, n_osd0, c1, "START_CONNECT", "CONNECTING");
    fate(45000, n_osd1, c2, n_osd0, n_osd1, 3, "delivered", 3);
    fate(46000, n_osd0, c1, n_osd0, n_osd1, 3, "sent", 1);
    fate(47000, n_osd1, c2, n_osd0, n_osd1, 3, "duplicate", 5);
    /* a transition the machine does not allow */
    state(50000, n_client, c3, "CLOSED", "READY");
    assert_int_equal(trace_expectation_add(db, run, 3, "expect delivered",
                                           "fail", "1 of 3"), 0);
    assert_int_equal(trace_run_end(db, run, 60000, "abcd", "fail", 1), 0);
    return 0;
}

static int
teardown(void **state_)
{
    (void)state_;
    trace_close(db);
    tt_rmdir();
    return 0;
}

static int
count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
        n++;
    return n;
}

static void
test_state_graph(void **state_)
{
    (void)state_;
    struct report_buf b;
    char err[256];
    report_buf_init(&b);
    assert_int_equal(report_state_dot(db, run, 0, &b, err, sizeof(err)), 0);
    /* every state of the machine, taken or not */
    for (int s = 0; s < msgr_fsm_nstates(); s++) {
        char q[64];
        snprintf(q, sizeof(q), "\"%s\" [", msgr_fsm_state_name(s));
        assert_non_null(strstr(b.data, q));
    }
    /* every allowed edge once: taken with its count, or dashed */
    int allowed = 0;
    for (int s = 0; s < msgr_fsm_nstates(); s++)
        allowed += __builtin_popcount(msgr_fsm_state_next(s));
    int taken = count(b.data, "color=\"#1f4e79\"");
    int dashed = count(b.data, "style=dashed");
    /* the handshake's 8 edges, READY->START_CONNECT, START_CONNECT->
     * CONNECTING (taken twice: one edge), NONE->START_ACCEPT,
     * START_ACCEPT->BANNER_ACCEPTING */
    assert_int_equal(taken, 8 + 1 + 2);
    assert_int_equal(taken + dashed, allowed);
    assert_non_null(strstr(b.data, "\"START_CONNECT\" -> \"CONNECTING\" "
                                   "[label=\"2\""));
    assert_non_null(strstr(b.data, "\"CLOSED\" -> \"READY\" [label=\"1 (not "
                                   "allowed)\""));
    struct report_buf svg;
    report_buf_init(&svg);
    assert_int_equal(report_dot_to_svg(b.data, &svg, err, sizeof(err)), 0);
    assert_true(!strncmp(svg.data, "<svg", 4));
    report_buf_fini(&svg);
    report_buf_fini(&b);

    /* one connection: the server side only */
    report_buf_init(&b);
    assert_int_equal(report_state_dot(db, run, 2, &b, err, sizeof(err)), 0);
    assert_int_equal(count(b.data, "color=\"#1f4e79\""), 2);
    report_buf_fini(&b);
}

static void
test_topology(void **state_)
{
    (void)state_;
    struct report_buf b;
    char err[256];
    report_buf_init(&b);
    assert_int_equal(report_topology_dot(db, run, &b, err, sizeof(err)), 0);
    assert_non_null(strstr(b.data, "\"osd.0\" [shape=box"));
    assert_non_null(strstr(b.data, "\"client.0\" [shape=ellipse"));
    assert_non_null(strstr(b.data, "label=\"3 msgs\\n2 delivered\\n1 "
                                   "dropped\\n1 duplicates\""));
    assert_non_null(strstr(b.data, "\"client.0\" -> \"osd.0\" "
                                   "[color=gray70"));
    assert_non_null(strstr(b.data, "partition 30us..40us"));
    struct report_buf svg;
    report_buf_init(&svg);
    assert_int_equal(report_dot_to_svg(b.data, &svg, err, sizeof(err)), 0);
    report_buf_fini(&svg);
    report_buf_fini(&b);
}

static void
test_sequence(void **state_)
{
    (void)state_;
    struct report_opts o;
    struct report_seq_view v;
    struct report_buf b;
    char err[256];
    report_opts_init(&o);
    report_buf_init(&b);
    assert_int_equal(report_sequence_svg(db, run, &o, &b, &v, err,
                                         sizeof(err)), 0);
    assert_string_equal(v.a, "osd.0"); /* the busiest pair */
    assert_string_equal(v.b, "osd.1");
    assert_int_equal(v.ndropped, 1);
    assert_int_equal(v.nduplicates, 1);
    assert_int_equal(v.nresets, 1);
    assert_non_null(strstr(b.data, "DUPLICATE #3"));
    assert_non_null(strstr(b.data, "dropped #2"));
    assert_non_null(strstr(b.data, "resend #3"));
    assert_non_null(strstr(b.data, "class=\"fault\""));
    /* deliveries of 1 and 3 and the duplicate have arrows */
    assert_int_equal(count(b.data, "marker-end"), 3);
    report_buf_fini(&b);

    /* a window that holds only the first message */
    report_buf_init(&b);
    o.from_ns = 15000;
    o.until_ns = 27000;
    assert_int_equal(report_sequence_svg(db, run, &o, &b, &v, err,
                                         sizeof(err)), 0);
    assert_int_equal(v.nevents, 3);
    assert_non_null(strstr(b.data, "deliver #1 seq 1"));
    assert_null(strstr(b.data, "send #3"));
    report_buf_fini(&b);
}

static void
test_charts(void **state_)
{
    (void)state_;
    struct report_buf b;
    char err[256];
    report_buf_init(&b);
    assert_int_equal(report_charts_svg(db, run, &b, err, sizeof(err)), 0);
    assert_int_equal(count(b.data, "<polyline"), 5);
    /* one reconnect attempt: one bar; the partition shaded in 4 panels
     * and drawn once as a bar */
    assert_int_equal(count(b.data, "class=\"bar\""), 1);
    assert_int_equal(count(b.data, "class=\"fault\""), 4);
    assert_int_equal(count(b.data, "class=\"faultbar\""), 1);
    report_buf_fini(&b);
}

static char *
slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    assert_non_null(s);
    assert_int_equal(fread(s, 1, (size_t)n, f), (size_t)n);
    s[n] = '\0';
    fclose(f);
    return s;
}

static void
test_perfetto(void **state_)
{
    (void)state_;
    char path[128], err[256];
    tt_path(path, sizeof(path), "trace.json");
    assert_int_equal(report_perfetto_write(db, run, path, err, sizeof(err)),
                     0);
    char *s = slurp(path);
    assert_non_null(strstr(s, "\"args\":{\"name\":\"osd.0\"}"));
    assert_non_null(strstr(s, "\"args\":{\"name\":\"client.0\"}"));
    assert_non_null(strstr(s, "\"name\":\"thread_name\",\"pid\":1,\"tid\":1"));
    /* one flow per delivered message (1 and 3), started and ended once */
    assert_int_equal(count(s, "\"ph\":\"s\""), 2);
    assert_int_equal(count(s, "\"ph\":\"f\""), 2);
    /* the span of READY on c1 ends at the reset */
    assert_non_null(strstr(s, "\"name\":\"READY\",\"pid\":1,\"tid\":1,"
                              "\"ts\":8.000,\"dur\":25.000"));
    assert_non_null(strstr(s, "\"s\":\"g\",\"name\":\"fault: "));
    free(s);
}

static int
dot_files_parse(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *de;
    int n = 0;
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        if (len < 5 || strcmp(de->d_name + len - 4, ".dot"))
            continue;
        char path[512], err[256];
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        char *dot = slurp(path);
        struct report_buf svg;
        report_buf_init(&svg);
        if (report_dot_to_svg(dot, &svg, err, sizeof(err)) != 0)
            fail_msg("%s: %s", path, err);
        report_buf_fini(&svg);
        free(dot);
        n++;
    }
    closedir(d);
    return n;
}

static void
test_write_html(void **state_)
{
    (void)state_;
    struct report_opts o;
    char dir[128], err[256], path[256];
    const char *main_file = NULL;
    report_opts_init(&o);
    tt_path(dir, sizeof(dir), "html/deeper");
    assert_int_equal(report_write(db, &o, dir, &main_file, err, sizeof(err)),
                     0);
    snprintf(path, sizeof(path), "%s/index.html", dir);
    assert_string_equal(main_file, path);
    char *s = slurp(path);
    /* self-contained: no script, nothing fetched */
    assert_null(strstr(s, "<script"));
    assert_null(strstr(s, "src="));
    assert_null(strstr(s, "href=\"http"));
    assert_null(strstr(s, "<link"));
    assert_non_null(strstr(s, "abcd"));          /* fingerprint */
    assert_non_null(strstr(s, "<td>42</td>"));   /* seed */
    assert_non_null(strstr(s, "<td class=\"fail\">fail</td><td>1 of 3"));
    assert_int_equal(count(s, "<svg"), 4 + 3); /* 4 pictures, 3 conns */
    assert_non_null(strstr(s, "<tr id=\"c3\">"));
    free(s);
    /* states, topology and one graph per connection */
    assert_int_equal(dot_files_parse(dir), 2 + 3);

    /* DOT only */
    o.format = REPORT_FORMAT_DOT;
    tt_path(dir, sizeof(dir), "dot");
    assert_int_equal(report_write(db, &o, dir, NULL, err, sizeof(err)), 0);
    assert_int_equal(dot_files_parse(dir), 5);
    snprintf(path, sizeof(path), "%s/states.svg", dir);
    assert_int_equal(access(path, F_OK), -1);

    /* no such run */
    o.run = 99;
    assert_int_equal(report_write(db, &o, dir, NULL, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "no run 99"));
}

static void
test_pcap_dispatch(void **state_)
{
    (void)state_;
    struct report_opts o;
    char dir[128], err[256];
    report_opts_init(&o);
    o.format = report_format_parse("pcap");
    assert_int_equal(o.format, REPORT_FORMAT_PCAP);
    assert_int_equal(report_format_parse("png"), -1);
    tt_path(dir, sizeof(dir), "pcap");
    int rc = report_write(db, &o, dir, NULL, err, sizeof(err));
#if REPORTS_HAVE_PCAP
    /* this trace holds no capture: the pcap writer says how to get one
     * (its own tests judge the output of a captured run) */
    assert_int_equal(rc, -ENOENT);
    assert_non_null(strstr(err, "--capture"));
#else
    assert_int_equal(rc, -ENOTSUP);
    assert_string_equal(err, "pcap export not available in this build");
#endif
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_state_graph),
        cmocka_unit_test(test_topology),
        cmocka_unit_test(test_sequence),
        cmocka_unit_test(test_charts),
        cmocka_unit_test(test_perfetto),
        cmocka_unit_test(test_write_html),
        cmocka_unit_test(test_pcap_dispatch),
    };
    return cmocka_run_group_tests_name("report", tests, setup, teardown);
}
