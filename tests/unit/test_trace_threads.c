/*
 * Several threads append to one handle at once, as the posix stack's
 * workers do through their tracers. Every row arrives, seqs are 1..N
 * without gaps, and each thread's rows keep that thread's order. Labelled
 * posix, so it also runs under ThreadSanitizer.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "msgr/msgr.h"
#include "trace_test_util.h"

#define NTHREADS 4
#define PER_THREAD 20000

struct worker {
    struct trace_db *db;
    int64_t run, node, conn;
    int failed; /* first error + 1; asserted on the main thread */
};

static void *
worker_main(void *arg)
{
    struct worker *w = arg;

    for (int64_t i = 1; i <= PER_THREAD && !w->failed; i++) {
        struct trace_event_rec e;
        trace_event_rec_init(&e, TRACE_EV_MSG, i);
        e.node = w->node;
        e.conn = w->conn;
        e.fate = "sent";
        e.msg_src = w->node;
        e.msg_id = i;
        e.bytes = 64;
        int r = trace_event_add(w->db, w->run, &e, NULL);
        if (!r && i % 4 == 0) {
            struct trace_msg_rec m = {.src = w->node, .msg_id = i,
                                      .conn = w->conn, .seq = i, .size = 64,
                                      .fate = MSGR_FATE_SENT, .t_ns = i};
            r = trace_message_fate(w->db, w->run, &m);
        }
        if (r)
            w->failed = -r + 1;
    }
    return NULL;
}

static void
test_threads_append(void **state)
{
    char p[128];
    (void)state;
    tt_mkdir();
    struct trace_open_error err;
    struct trace_db *db = trace_open(tt_path(p, sizeof(p), "thr.db"),
                                     TRACE_OPEN_RW, &err);
    assert_non_null(db);
    struct trace_run_info ri = {.seed = 1, .stack = "posix"};
    int64_t run;
    assert_int_equal(trace_run_begin(db, &ri, &run), 0);
    struct worker w[NTHREADS];
    pthread_t th[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) {
        char name[16];
        snprintf(name, sizeof(name), "osd.%d", i);
        struct trace_node_info ni = {.name = name,
                                     .entity_type = MSGR_ENTITY_OSD,
                                     .entity_num = i};
        memset(&w[i], 0, sizeof(w[i]));
        w[i].db = db;
        w[i].run = run;
        assert_int_equal(trace_node_add(db, run, &ni, &w[i].node), 0);
        assert_int_equal(trace_conn_add(db, run, w[i].node, 1, NULL, NULL,
                                        NULL, 0, &w[i].conn),
                         0);
    }
    for (int i = 0; i < NTHREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < NTHREADS; i++)
        assert_int_equal(w[i].failed, 0);
    assert_int_equal(trace_run_end(db, run, 0, NULL, "pass", 0), 0);
    trace_close(db);

    db = trace_open(p, TRACE_OPEN_READONLY, &err);
    assert_non_null(db);
    sqlite3 *q = trace_sqlite(db);
    const long long n = (long long)NTHREADS * PER_THREAD;
    assert_int_equal(tt_int(q, "SELECT count(*) FROM event"), n);
    assert_int_equal(tt_int(q, "SELECT count(DISTINCT seq) FROM event"), n);
    assert_int_equal(tt_int(q, "SELECT min(seq) FROM event"), 1);
    assert_int_equal(tt_int(q, "SELECT max(seq) FROM event"), n);
    /* within each thread (node), seq order is the thread's own order */
    assert_int_equal(tt_int(q, "SELECT count(*) FROM (SELECT msg_id, "
                               "lag(msg_id) OVER (PARTITION BY node ORDER BY"
                               " seq) AS prev FROM event) WHERE prev IS NOT "
                               "NULL AND msg_id <> prev + 1"),
                     0);
    assert_int_equal(tt_int(q, "SELECT count(*) FROM message"),
                     n / 4);
    assert_int_equal(tt_int(q, "SELECT count(DISTINCT src) FROM message"),
                     NTHREADS);
    trace_close(db);
    tt_rmdir();
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_threads_append),
    };
    return cmocka_run_group_tests_name("trace_threads", tests, NULL, NULL);
}
