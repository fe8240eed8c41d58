/*
 * The trace store: file identity and version checks, a round trip of
 * every table, batching, the views on a hand-built trace whose answers
 * are known, the reader's filters and the run diff.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "msgr/msgr.h"
#include "trace_test_util.h"

static int
setup(void **state)
{
    (void)state;
    tt_mkdir();
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    tt_rmdir();
    return 0;
}

static struct trace_db *
open_rw(const char *name)
{
    char p[128];
    struct trace_open_error err;
    struct trace_db *db = trace_open(tt_path(p, sizeof(p), name),
                                     TRACE_OPEN_RW, &err);
    if (!db)
        fail_msg("trace_open: %s", err.msg);
    return db;
}

static int64_t
begin(struct trace_db *db, uint64_t seed)
{
    struct trace_run_info ri = {.scenario_path = "x.scn",
                                .scenario_text = "seed 1\n",
                                .seed = seed,
                                .stack = "sim",
                                .build_id = "test",
                                .started_wall = "now"};
    int64_t run = 0;
    assert_int_equal(trace_run_begin(db, &ri, &run), 0);
    return run;
}

static int64_t
add_node(struct trace_db *db, int64_t run, const char *name, uint8_t type,
         int64_t num)
{
    struct trace_node_info ni = {.name = name,
                                 .entity_type = type,
                                 .entity_num = num,
                                 .policy = "lossless_peer",
                                 .addr = "v2:10.0.0.1:6800/1",
                                 .nonce = 1};
    int64_t id = 0;
    assert_int_equal(trace_node_add(db, run, &ni, &id), 0);
    return id;
}

/* ------------------------------------------------------ identity checks */

static void
test_new_file_is_stamped(void **state)
{
    char p[128];
    (void)state;
    struct trace_db *db = open_rw("t.db");
    assert_non_null(db);
    assert_int_equal(tt_int(trace_sqlite(db), "PRAGMA application_id"),
                     TRACE_APPLICATION_ID);
    assert_int_equal(tt_int(trace_sqlite(db), "PRAGMA user_version"),
                     TRACE_SCHEMA_VERSION);
    trace_close(db);
    /* re-opening an existing trace works, read-only too */
    db = open_rw("t.db");
    assert_non_null(db);
    trace_close(db);
    db = trace_open(tt_path(p, sizeof(p), "t.db"), TRACE_OPEN_READONLY, NULL);
    assert_non_null(db);
    trace_close(db);
}

static void
make_sqlite_file(const char *path, const char *sql)
{
    sqlite3 *s;
    assert_int_equal(sqlite3_open(path, &s), SQLITE_OK);
    assert_int_equal(sqlite3_exec(s, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(s);
}

static void
expect_open_error(const char *path, int flags, int code, const char *needle)
{
    struct trace_open_error err;
    struct trace_db *db = trace_open(path, flags, &err);
    assert_null(db);
    assert_int_equal(err.code, code);
    /* the message names the file and says what to do */
    if (!strstr(err.msg, path) || !strstr(err.msg, needle))
        fail_msg("message '%s' lacks '%s' or '%s'", err.msg, path, needle);
}

static void
test_foreign_files_are_refused(void **state)
{
    char p[128];
    (void)state;
    /* another application's sqlite file */
    make_sqlite_file(tt_path(p, sizeof(p), "other.db"),
                     "PRAGMA application_id = 1234; CREATE TABLE x(a);");
    expect_open_error(p, TRACE_OPEN_RW, TRACE_ENOTTRACE,
                      "not a msgrsim trace");
    /* an sqlite file with tables but no stamp at all */
    make_sqlite_file(tt_path(p, sizeof(p), "plain.db"), "CREATE TABLE x(a);");
    expect_open_error(p, TRACE_OPEN_RW, TRACE_ENOTTRACE,
                      "not a msgrsim trace");
    /* not sqlite at all */
    FILE *f = fopen(tt_path(p, sizeof(p), "text.db"), "w");
    assert_non_null(f);
    for (int i = 0; i < 200; i++)
        fputs("this is not a database\n", f);
    fclose(f);
    expect_open_error(p, TRACE_OPEN_READONLY, TRACE_ENOTTRACE,
                      "not a msgrsim trace");
    /* missing, read-only */
    expect_open_error(tt_path(p, sizeof(p), "missing.db"), TRACE_OPEN_READONLY,
                      TRACE_ENOENT, "no such trace file");
}

static void
test_future_schema_is_refused(void **state)
{
    char p[128];
    (void)state;
    struct trace_db *db = open_rw("future.db");
    trace_close(db);
    make_sqlite_file(tt_path(p, sizeof(p), "future.db"),
                     "PRAGMA user_version = 99;");
    expect_open_error(p, TRACE_OPEN_READONLY, TRACE_ENEWER, "newer msgrsim");
    struct trace_open_error err;
    assert_null(trace_open(p, TRACE_OPEN_RW, &err));
    assert_non_null(strstr(err.msg, "99"));
    /* an older stamp with our id */
    make_sqlite_file(p, "PRAGMA user_version = 0;");
    expect_open_error(p, TRACE_OPEN_RW, TRACE_EOLDER, "re-run the scenario");
}

static void
test_state_errors(void **state)
{
    char p[128];
    (void)state;
    struct trace_db *db = open_rw("s.db");
    struct trace_event_rec e;
    trace_event_rec_init(&e, TRACE_EV_NOTE, 0);
    /* nothing open */
    assert_int_equal(trace_event_add(db, 1, &e, NULL), TRACE_ESTATE);
    int64_t run = begin(db, 1);
    int64_t other = 0;
    struct trace_run_info ri = {.seed = 2};
    assert_int_equal(trace_run_begin(db, &ri, &other), TRACE_ESTATE);
    /* the wrong run */
    assert_int_equal(trace_event_add(db, run + 1, &e, NULL), TRACE_ESTATE);
    assert_non_null(strstr(trace_errmsg(db), "not open"));
    /* an unknown kind, an unknown fault */
    trace_event_rec_init(&e, 99, 0);
    assert_int_equal(trace_event_add(db, run, &e, NULL), TRACE_EINVAL);
    assert_int_equal(trace_fault_heal(db, run, 7, 0), TRACE_ENOTFOUND);
    assert_int_equal(trace_run_end(db, run, 0, NULL, "pass", 0), 0);
    trace_close(db);
    db = trace_open(tt_path(p, sizeof(p), "s.db"), TRACE_OPEN_READONLY, NULL);
    assert_int_equal(trace_run_begin(db, &ri, &other), TRACE_ESTATE);
    trace_close(db);
}

/* ----------------------------------------------------------- round trip */

static void
test_round_trip(void **state)
{
    char p[128], s[256];
    (void)state;
    struct trace_db *db = open_rw("rt.db");
    struct trace_run_info ri = {.scenario_path = "scenarios/a.scn",
                                .scenario_text = "node osd.[0..1]\n",
                                .seed = 0xfedcba9876543210ull,
                                .stack = "posix",
                                .build_id = "v0.1-3-gabc",
                                .started_wall = "2024-01-01T00:00:00Z"};
    int64_t run = 0;
    assert_int_equal(trace_run_begin(db, &ri, &run), 0);
    int64_t a = add_node(db, run, "osd.0", MSGR_ENTITY_OSD, 0);
    int64_t b = add_node(db, run, "client.7", MSGR_ENTITY_CLIENT, 7);
    assert_int_equal(a, 1);
    assert_int_equal(b, 2);
    int64_t found = 0;
    assert_int_equal(trace_node_find(db, run, "client.7", &found), 0);
    assert_int_equal(found, b);
    assert_int_equal(trace_node_find(db, run, "mon.a", &found),
                     TRACE_ENOTFOUND);

    int64_t c1 = 0, c2 = 0, again = 0;
    assert_int_equal(trace_conn_add(db, run, a, 5, "client.7", NULL,
                                    "lossless_peer", 100, &c1),
                     0);
    assert_int_equal(trace_conn_add(db, run, b, 1, NULL, NULL, NULL, 101, &c2),
                     0);
    assert_int_equal(trace_conn_add(db, run, a, 5, NULL, NULL, NULL, 102,
                                    &again),
                     0);
    assert_int_equal(c1, 1);
    assert_int_equal(c2, 2);
    assert_int_equal(again, c1); /* the same (node, msgr id) */
    assert_int_equal(trace_conn_set_peer(db, run, c2, "osd.0",
                                         "v2:10.0.0.1:6800/1"),
                     0);

    assert_int_equal(trace_event_state(db, run, 110, a, c1, "NONE",
                                       "START_CONNECT", "connect"),
                     0);
    assert_int_equal(trace_event_frame(db, run, 120, a, c1, 1, "hello", 42),
                     0);
    assert_int_equal(trace_event_action(db, run, 130, a, "osd.0 send"), 0);
    assert_int_equal(trace_event_dispatch(db, run, 140, b, c2, "accept"), 0);
    struct trace_event_rec e;
    trace_event_rec_init(&e, TRACE_EV_CONN_FAULT, 150);
    e.node = a;
    e.conn = c1;
    e.err = -104;
    e.detail = "read";
    int64_t seq = 0;
    assert_int_equal(trace_event_add(db, run, &e, &seq), 0);
    assert_int_equal(seq, 5);

    int64_t f = 0;
    assert_int_equal(trace_fault_add(db, run, 200, "partition",
                                     "osd.0 | client.7", "{}", &f),
                     0);
    assert_int_equal(f, 1);
    assert_int_equal(trace_fault_heal(db, run, f, 300), 0);

    struct trace_msg_rec m = {.src = a, .msg_id = 9, .dst = 0, .conn = c1,
                              .seq = -1, .size = 4096,
                              .fate = MSGR_FATE_QUEUED, .t_ns = 400};
    assert_int_equal(trace_message_fate(db, run, &m), 0);
    m.fate = MSGR_FATE_SENT;
    m.seq = 1;
    m.t_ns = 410;
    assert_int_equal(trace_message_fate(db, run, &m), 0);
    m.t_ns = 415; /* resent: first time kept, counted twice */
    assert_int_equal(trace_message_fate(db, run, &m), 0);
    struct trace_msg_rec d = {.src = a, .msg_id = 9, .dst = b, .conn = 0,
                              .seq = 1, .size = 4096,
                              .fate = MSGR_FATE_DELIVERED, .t_ns = 420};
    assert_int_equal(trace_message_fate(db, run, &d), 0);
    m.fate = MSGR_FATE_ACKED;
    m.t_ns = 430;
    assert_int_equal(trace_message_fate(db, run, &m), 0);
    assert_int_equal(trace_message_set_checksum(db, run, a, 9, 0xdeadbeefu),
                     0);
    assert_int_equal(trace_expectation_add(db, run, 12,
                                           "expect delivered osd.0 -> "
                                           "client.7 all",
                                           "pass", "1/1"),
                     0);
    assert_int_equal(trace_run_end(db, run, 5000, "00ff", "pass", 0), 0);
    trace_close(db);

    db = trace_open(tt_path(p, sizeof(p), "rt.db"), TRACE_OPEN_READONLY,
                    NULL);
    assert_non_null(db);
    sqlite3 *q = trace_sqlite(db);
    struct trace_run r;
    assert_int_equal(trace_run_get(db, run, &r), 0);
    assert_string_equal(r.scenario_path, "scenarios/a.scn");
    assert_string_equal(r.scenario_text, "node osd.[0..1]\n");
    assert_int_equal(strlen(r.scenario_hash), 16);
    assert_true(r.seed == 0xfedcba9876543210ull);
    assert_string_equal(r.stack, "posix");
    assert_string_equal(r.build_id, "v0.1-3-gabc");
    assert_string_equal(r.started_wall, "2024-01-01T00:00:00Z");
    assert_int_equal(r.duration_ns, 5000);
    assert_string_equal(r.fingerprint, "00ff");
    assert_string_equal(r.verdict, "pass");
    assert_int_equal(r.exit_code, 0);
    assert_int_equal(r.nevents, 7); /* 5 + fault + heal */
    trace_run_fini(&r);
    assert_int_equal(trace_run_get(db, 42, &r), TRACE_ENOTFOUND);

    assert_string_equal(tt_text(q, "SELECT group_concat(name || ':' || "
                                   "entity_type || ':' || entity_num, ',') "
                                   "FROM node",
                                s, sizeof(s)),
                        "osd.0:osd:0,client.7:client:7");
    assert_string_equal(tt_text(q, "SELECT peer_name || ' ' || peer_addr || "
                                   "' ' || node_idx FROM conn WHERE id = 2",
                                s, sizeof(s)),
                        "osd.0 v2:10.0.0.1:6800/1 1");
    assert_string_equal(tt_text(q, "SELECT last_state || ' ' || last_t || ' '"
                                   " || policy FROM conn WHERE id = 1",
                                s, sizeof(s)),
                        "START_CONNECT 110 lossless_peer");
    assert_string_equal(tt_text(q, "SELECT group_concat(kind, ',') FROM "
                                   "(SELECT kind FROM event ORDER BY seq)",
                                s, sizeof(s)),
                        "state,frame_out,action,dispatch,conn_fault,fault,"
                        "heal");
    assert_string_equal(tt_text(q, "SELECT tag || bytes FROM event WHERE "
                                   "seq = 2",
                                s, sizeof(s)),
                        "hello42");
    assert_int_equal(tt_int(q, "SELECT err FROM event WHERE seq = 5"), -104);
    assert_string_equal(tt_text(q, "SELECT kind || ' ' || targets || ' ' || "
                                   "params || ' ' || t_ns || ' ' || healed_t"
                                   " FROM fault",
                                s, sizeof(s)),
                        "partition osd.0 | client.7 {} 200 300");
    assert_string_equal(tt_text(q, "SELECT printf('%d %d %d %d %d %d %d %d "
                                   "%d %d %d %s %d', dst, conn, seq, size, "
                                   "queued_t, sent_t, acked_t, delivered_t,"
                                   " sends, deliveries, duplicates, fate, "
                                   "checksum) FROM message",
                                s, sizeof(s)),
                        "2 1 1 4096 400 410 430 420 2 1 0 delivered "
                        "3735928559");
    assert_string_equal(tt_text(q, "SELECT line || ' ' || verdict || ' ' || "
                                   "evidence FROM expectation",
                                s, sizeof(s)),
                        "12 pass 1/1");
    trace_close(db);
}

/* ------------------------------------------------------------ batching */

static void
test_batching_many_rows(void **state)
{
    char p[128];
    (void)state;
    const long n = 3L * TRACE_BATCH_ROWS + 7;
    struct trace_db *db = open_rw("batch.db");
    int64_t run = begin(db, 1);
    int64_t a = add_node(db, run, "osd.0", MSGR_ENTITY_OSD, 0);
    for (long i = 0; i < n; i++)
        assert_int_equal(trace_event_frame(db, run, i, a, 0, (int)(i & 1),
                                           "message", i),
                         0);
    assert_int_equal(trace_run_end(db, run, n, NULL, "pass", 0), 0);
    trace_close(db);
    /* one self-contained file: no WAL left behind */
    assert_int_equal(access(tt_path(p, sizeof(p), "batch.db-wal"), F_OK), -1);
    db = trace_open(tt_path(p, sizeof(p), "batch.db"), TRACE_OPEN_READONLY,
                    NULL);
    assert_non_null(db);
    assert_int_equal(tt_int(trace_sqlite(db), "SELECT count(*) FROM event"),
                     n);
    assert_int_equal(tt_int(trace_sqlite(db), "SELECT sum(bytes) FROM event"),
                     (long long)n * (n - 1) / 2);
    assert_int_equal(tt_int(trace_sqlite(db), "SELECT nevents FROM run"), n);
    trace_close(db);
}

/* ------------------------------------------------------- a known trace */

struct known {
    int64_t run, a, b, c1, c2;
};

static void
st(struct trace_db *db, const struct known *k, int64_t t, int64_t node,
   int64_t conn, const char *from, const char *to)
{
    assert_int_equal(trace_event_state(db, k->run, t, node, conn, from, to,
                                       NULL),
                     0);
}

static void
fate(struct trace_db *db, const struct known *k, int64_t id, int f, int64_t t)
{
    int rx = f == MSGR_FATE_DELIVERED || f == MSGR_FATE_DUPLICATE;
    struct trace_msg_rec m = {.src = k->a, .msg_id = id, .dst = k->b,
                              .conn = rx ? 0 : k->c1, .seq = id,
                              .size = 100 * id, .fate = f, .t_ns = t};
    struct trace_event_rec e;
    trace_event_rec_init(&e, TRACE_EV_MSG, t);
    e.node = rx ? k->b : k->a;
    e.conn = rx ? k->c2 : k->c1;
    e.fate = msgr_fate_name(f);
    e.msg_src = k->a;
    e.msg_id = id;
    e.msg_seq = id;
    e.bytes = 100 * id;
    assert_int_equal(trace_event_add(db, k->run, &e, NULL), 0);
    assert_int_equal(trace_message_fate(db, k->run, &m), 0);
}

/*
 * osd.0 (conn 1) connects to osd.1 (conn 2). Fault 1 (reset, t=100):
 * conn 1 leaves READY at 105 and is READY again at 130 through a session
 * reconnect; conn 2 goes STANDBY at 104 and READY at 125. Fault 2
 * (partition 500..600): conn 1 leaves READY at 550, waits, and is READY
 * at 640. Messages 1..5: 1-3 delivered (3 also once as a duplicate), 4
 * dropped after a resend, 5 only sent.
 */
static void
build_known(struct trace_db *db, struct known *k, uint64_t seed)
{
    int64_t f1 = 0, f2 = 0;

    k->run = begin(db, seed);
    k->a = add_node(db, k->run, "osd.0", MSGR_ENTITY_OSD, 0);
    k->b = add_node(db, k->run, "osd.1", MSGR_ENTITY_OSD, 1);
    assert_int_equal(trace_conn_add(db, k->run, k->a, 1, "osd.1", NULL, NULL,
                                    0, &k->c1),
                     0);
    assert_int_equal(trace_conn_add(db, k->run, k->b, 1, "osd.0", NULL, NULL,
                                    3, &k->c2),
                     0);
    st(db, k, 0, k->a, k->c1, "NONE", "START_CONNECT");
    st(db, k, 1, k->a, k->c1, "START_CONNECT", "CONNECTING");
    st(db, k, 3, k->b, k->c2, "NONE", "START_ACCEPT");
    st(db, k, 4, k->b, k->c2, "START_ACCEPT", "SESSION_ACCEPTING");
    st(db, k, 9, k->b, k->c2, "SESSION_ACCEPTING", "READY");
    st(db, k, 10, k->a, k->c1, "CONNECTING", "READY");
    for (int64_t i = 1; i <= 5; i++) {
        fate(db, k, i, MSGR_FATE_QUEUED, 20 + i);
        fate(db, k, i, MSGR_FATE_SENT, 30 + i);
    }
    for (int64_t i = 1; i <= 3; i++)
        fate(db, k, i, MSGR_FATE_DELIVERED, 40 + i);
    fate(db, k, 3, MSGR_FATE_DUPLICATE, 50);
    assert_int_equal(trace_fault_add(db, k->run, 100, "reset",
                                     "osd.0 <-> osd.1", NULL, &f1),
                     0);
    st(db, k, 104, k->b, k->c2, "READY", "STANDBY");
    st(db, k, 105, k->a, k->c1, "READY", "START_CONNECT");
    st(db, k, 106, k->a, k->c1, "START_CONNECT", "CONNECTING");
    st(db, k, 107, k->a, k->c1, "CONNECTING", "SESSION_RECONNECTING");
    st(db, k, 125, k->b, k->c2, "STANDBY", "READY");
    st(db, k, 130, k->a, k->c1, "SESSION_RECONNECTING", "READY");
    fate(db, k, 4, MSGR_FATE_SENT, 140);
    fate(db, k, 4, MSGR_FATE_DROPPED, 150);
    assert_int_equal(trace_fault_add(db, k->run, 500, "partition",
                                     "osd.0 | osd.1", NULL, &f2),
                     0);
    st(db, k, 550, k->a, k->c1, "READY", "START_CONNECT");
    st(db, k, 560, k->a, k->c1, "START_CONNECT", "WAIT");
    assert_int_equal(trace_fault_heal(db, k->run, f2, 600), 0);
    st(db, k, 610, k->a, k->c1, "WAIT", "START_CONNECT");
    st(db, k, 640, k->a, k->c1, "START_CONNECT", "READY");
    assert_int_equal(trace_run_end(db, k->run, 1000, NULL, "pass", 0), 0);
}

static void
test_views_on_known_trace(void **state)
{
    char s[512];
    (void)state;
    struct trace_db *db = open_rw("views.db");
    struct known k;
    build_known(db, &k, 1);
    sqlite3 *q = trace_sqlite(db);

    assert_string_equal(
        tt_text(q, "SELECT group_concat(x, ';') FROM (SELECT node_name || ' "
                   "' || peer_name || ' ' || reconnects || ' ' || "
                   "session_reconnects || ' ' || readies AS x FROM "
                   "v_reconnects ORDER BY conn)",
                s, sizeof(s)),
        "osd.0 osd.1 3 1 3;osd.1 osd.0 0 0 2");

    assert_string_equal(
        tt_text(q, "SELECT group_concat(x, ';') FROM (SELECT fault || ' ' || "
                   "fault_kind || ' c' || conn || ' ' || down_t || ' ' || "
                   "ready_t || ' ' || ns_since_fault || ' ' || ns_down AS x "
                   "FROM v_time_to_reconnect ORDER BY fault, conn)",
                s, sizeof(s)),
        "1 reset c1 105 130 30 25;1 reset c2 104 125 25 21;"
        "2 partition c1 550 640 140 90");

    assert_string_equal(
        tt_text(q, "SELECT group_concat(fate || '=' || n, ',') FROM (SELECT "
                   "* FROM v_fates ORDER BY fate)",
                s, sizeof(s)),
        "delivered=3,dropped=1,sent=1");
    assert_string_equal(
        tt_text(q, "SELECT group_concat(src_name || '>' || dst_name || ':' ||"
                   " fate || '=' || n, ',') FROM (SELECT * FROM "
                   "v_fates_by_pair ORDER BY fate)",
                s, sizeof(s)),
        "osd.0>osd.1:delivered=3,osd.0>osd.1:dropped=1,osd.0>osd.1:sent=1");
    assert_int_equal(tt_int(q, "SELECT deliveries + 10 * duplicates FROM "
                               "message WHERE msg_id = 3"),
                     11);

    assert_string_equal(
        tt_text(q, "SELECT group_concat(x, ';') FROM (SELECT conn || ' ' || "
                   "queued || ' ' || sent || ' ' || acked || ' ' || "
                   "delivered || ' ' || dropped || ' ' || duplicate || ' ' || "
                   "bytes_sent || ' ' || bytes_delivered AS x FROM "
                   "v_messages_per_conn ORDER BY conn)",
                s, sizeof(s)),
        /* sent: 100+200+300+400+500, and 400 again */
        "1 5 6 0 0 1 0 1900 0;2 0 0 0 3 0 1 0 600");

    assert_int_equal(tt_int(q, "SELECT n FROM v_state_edges WHERE "
                               "state_from = 'READY' AND state_to = "
                               "'START_CONNECT'"),
                     2);
    assert_int_equal(tt_int(q, "SELECT count(*) FROM v_state_edges"), 14);
    assert_int_equal(tt_int(q, "SELECT sum(n) FROM v_state_edges"), 16);
    assert_int_equal(tt_int(q, "SELECT n FROM v_state_edges_by_conn WHERE "
                               "conn = 2 AND state_to = 'READY' AND "
                               "state_from = 'STANDBY'"),
                     1);
    trace_close(db);
}

/* --------------------------------------------------------------- reader */

static int
count_events(struct trace_db *db, int64_t run, const struct trace_filter *f,
             int64_t *first_t, int64_t *last_t)
{
    struct trace_cursor *c;
    struct trace_event ev;
    int n = 0, r;

    assert_int_equal(trace_cursor_open(db, run, f, &c), 0);
    while ((r = trace_cursor_next(c, &ev)) == 1) {
        if (n == 0 && first_t)
            *first_t = ev.t_ns;
        if (last_t)
            *last_t = ev.t_ns;
        n++;
    }
    assert_int_equal(r, 0);
    trace_cursor_free(c);
    return n;
}

static void
test_reader_filters(void **state)
{
    char a[32], b[32], line[256];
    (void)state;
    struct trace_db *db = open_rw("reader.db");
    struct known k;
    build_known(db, &k, 1);
    struct trace_filter f;
    int64_t t0 = 0, t1 = 0;

    trace_filter_init(&f);
    assert_int_equal(count_events(db, k.run, &f, &t0, &t1), 35);
    assert_int_equal(t0, 0);
    assert_int_equal(t1, 640);
    /* node osd.1: its states (5), deliveries and a duplicate (4) */
    f.node = "osd.1";
    assert_int_equal(count_events(db, k.run, &f, NULL, NULL), 9);
    /* the connection, named either way, both sides; no fault events */
    trace_filter_init(&f);
    f.conn_a = "osd.1";
    f.conn_b = "osd.0";
    assert_int_equal(count_events(db, k.run, &f, NULL, NULL), 32);
    f.conn_b = "osd.7";
    assert_int_equal(count_events(db, k.run, &f, NULL, NULL), 0);
    /* a time window, inclusive */
    trace_filter_init(&f);
    f.from_ns = 100;
    f.until_ns = 130;
    assert_int_equal(count_events(db, k.run, &f, &t0, &t1), 7);
    assert_int_equal(t0, 100);
    assert_int_equal(t1, 130);
    f.kind = "state";
    assert_int_equal(count_events(db, k.run, &f, NULL, NULL), 6);

    /* the first event, formatted */
    struct trace_cursor *c;
    struct trace_event ev;
    assert_int_equal(trace_cursor_open(db, k.run, NULL, &c), 0);
    assert_int_equal(trace_cursor_next(c, &ev), 1);
    assert_string_equal(ev.node_name, "osd.0");
    assert_string_equal(ev.peer_name, "osd.1");
    assert_string_equal(ev.state_to, "START_CONNECT");
    trace_event_format(&ev, line, sizeof(line));
    assert_string_equal(line,
                        "0.000000000 osd.0 c1(osd.1) state NONE -> "
                        "START_CONNECT");
    trace_cursor_free(c);

    struct trace_run *runs;
    size_t n;
    assert_int_equal(trace_runs_list(db, &runs, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(runs[0].id, k.run);
    assert_int_equal(runs[0].nevents, 35);
    trace_runs_free(runs, n);

    assert_int_equal(trace_conn_spec_parse("osd.0-client.admin", a, sizeof(a),
                                           b, sizeof(b)),
                     0);
    assert_string_equal(a, "osd.0");
    assert_string_equal(b, "client.admin");
    assert_int_equal(trace_conn_spec_parse("mon.a-b-osd.12", a, sizeof(a), b,
                                           sizeof(b)),
                     0);
    assert_string_equal(a, "mon.a-b");
    assert_string_equal(b, "osd.12");
    assert_int_equal(trace_conn_spec_parse("osd.0", a, sizeof(a), b,
                                           sizeof(b)),
                     TRACE_EINVAL);
    assert_int_equal(trace_conn_spec_parse("osd.0-", a, sizeof(a), b,
                                           sizeof(b)),
                     TRACE_EINVAL);
    trace_close(db);
}

/* ----------------------------------------------------------------- diff */

static void
test_diff_runs(void **state)
{
    char p[128];
    (void)state;
    struct trace_db *db = open_rw("diff.db");
    struct known k1, k2, k3;
    build_known(db, &k1, 1);
    build_known(db, &k2, 2); /* another seed, the same events */
    struct trace_divergence d;
    assert_int_equal(trace_diff_runs(db, k1.run, db, k2.run, &d), 0);
    assert_int_equal(d.found, 0);

    /* the same, with event 12 (0-based 11) a different size */
    k3.run = begin(db, 3);
    k3.a = add_node(db, k3.run, "osd.0", MSGR_ENTITY_OSD, 0);
    k3.b = add_node(db, k3.run, "osd.1", MSGR_ENTITY_OSD, 1);
    struct trace_cursor *c;
    struct trace_event ev;
    assert_int_equal(trace_cursor_open(db, k1.run, NULL, &c), 0);
    for (int i = 0; i < 20 && trace_cursor_next(c, &ev) == 1; i++) {
        struct trace_event_rec e;
        trace_event_rec_init(&e, TRACE_EV_NOTE, ev.t_ns);
        /* copy the row through the writer (kind note for every row) */
        e.node = ev.node;
        e.conn = 0;
        e.bytes = i == 11 ? 7 : ev.bytes;
        assert_int_equal(trace_event_add(db, k3.run, &e, NULL), 0);
    }
    trace_cursor_free(c);
    assert_int_equal(trace_run_end(db, k3.run, 0, NULL, "pass", 0), 0);
    /* k3 differs from k1 at once (kind note): index 0 */
    assert_int_equal(trace_diff_runs(db, k1.run, db, k3.run, &d), 0);
    assert_int_equal(d.found, 1);
    assert_int_equal(d.index, 0);

    /* a run that copies k3 except one field at index 11 */
    int64_t k4 = begin(db, 4);
    add_node(db, k4, "osd.0", MSGR_ENTITY_OSD, 0);
    add_node(db, k4, "osd.1", MSGR_ENTITY_OSD, 1);
    assert_int_equal(trace_cursor_open(db, k3.run, NULL, &c), 0);
    for (int i = 0; trace_cursor_next(c, &ev) == 1; i++) {
        struct trace_event_rec e;
        trace_event_rec_init(&e, TRACE_EV_NOTE, ev.t_ns);
        e.node = ev.node;
        e.bytes = i == 11 ? 8 : ev.bytes;
        assert_int_equal(trace_event_add(db, k4, &e, NULL), 0);
    }
    trace_cursor_free(c);
    assert_int_equal(trace_run_end(db, k4, 0, NULL, "pass", 0), 0);
    assert_int_equal(trace_diff_runs(db, k3.run, db, k4, &d), 0);
    assert_int_equal(d.found, 1);
    assert_int_equal(d.index, 11);
    assert_true(d.have_a && d.have_b);
    assert_non_null(strstr(d.line_a, " 7B"));
    assert_non_null(strstr(d.line_b, " 8B"));
    trace_close(db);

    /* across files: k1 against a prefix of itself in another file */
    struct trace_db *db2 = open_rw("diff2.db");
    struct known k5;
    build_known(db2, &k5, 1);
    int64_t k6 = begin(db2, 1);
    trace_run_end(db2, k6, 0, NULL, "pass", 0);
    db = trace_open(tt_path(p, sizeof(p), "diff.db"), TRACE_OPEN_READONLY,
                    NULL);
    assert_int_equal(trace_diff_runs(db, k1.run, db2, k5.run, &d), 0);
    assert_int_equal(d.found, 0);
    assert_int_equal(trace_diff_runs(db, k1.run, db2, k6, &d), 0);
    assert_int_equal(d.found, 1);
    assert_int_equal(d.index, 0);
    assert_int_equal(d.have_a, 1);
    assert_int_equal(d.have_b, 0);
    assert_string_equal(d.line_b, "(run ended)");
    trace_close(db);
    trace_close(db2);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_new_file_is_stamped, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_foreign_files_are_refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_future_schema_is_refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_state_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batching_many_rows, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_views_on_known_trace, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_reader_filters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_diff_runs, setup, teardown),
    };
    return cmocka_run_group_tests_name("trace_store", tests, NULL, NULL);
}
