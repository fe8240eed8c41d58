/*
 * bench_trace: the sqlite trace writer (../shared/BENCH.md).
 *
 *   events   frame events through trace_event_frame (one row each, the
 *            commonest kind in a run): events written per second, from
 *            trace_run_begin to trace_run_end's commit;
 *   fates    a message's life as the tracer adapter records it: four fate
 *            events (queued, sent, delivered, acked) and four upserts of
 *            its message row; messages per second.
 *
 * Each measured run writes a fresh file under $TMPDIR (or /tmp), so the
 * b-trees start empty as they do for a real run.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_common.h"
#include "msgr/msgr.h"
#include "trace/trace.h"

#define EVENTS_PER_RUN 1000000
#define MSGS_PER_RUN   100000

struct ctx {
    char dir[256];
    char path[300];
    int fates; /* 0: events case, 1: fates case */
};

static int
open_run(struct ctx *c, struct trace_db **db, int64_t *run, int64_t *node,
         int64_t *conn)
{
    struct trace_open_error err;
    struct trace_run_info ri = {.seed = 1, .stack = "sim"};
    struct trace_node_info a = {.name = "osd.0", .entity_type = MSGR_ENTITY_OSD};
    struct trace_node_info b = {.name = "osd.1", .entity_type = MSGR_ENTITY_OSD,
                                .entity_num = 1};
    int64_t other;

    unlink(c->path);
    *db = trace_open(c->path, TRACE_OPEN_RW, &err);
    if (!*db) {
        fprintf(stderr, "bench_trace: %s\n", err.msg);
        return -EIO;
    }
    if (trace_run_begin(*db, &ri, run) || trace_node_add(*db, *run, &a, node) ||
        trace_node_add(*db, *run, &b, &other) ||
        trace_conn_add(*db, *run, *node, 1, "osd.1", NULL, NULL, 0, conn)) {
        fprintf(stderr, "bench_trace: %s\n", trace_errmsg(*db));
        trace_close(*db);
        return -EIO;
    }
    return 0;
}

static int
write_events(struct trace_db *db, int64_t run, int64_t node, int64_t conn)
{
    for (int64_t i = 0; i < EVENTS_PER_RUN; i++)
        if (trace_event_frame(db, run, i * 1000, node, conn, (int)(i & 1),
                              "message", 64 + (i & 255)))
            return -EIO;
    return 0;
}

static int
write_fates(struct trace_db *db, int64_t run, int64_t node, int64_t conn)
{
    static const int order[4] = {MSGR_FATE_QUEUED, MSGR_FATE_SENT,
                                 MSGR_FATE_DELIVERED, MSGR_FATE_ACKED};
    for (int64_t i = 1; i <= MSGS_PER_RUN; i++) {
        for (int k = 0; k < 4; k++) {
            int rx = order[k] == MSGR_FATE_DELIVERED;
            struct trace_event_rec e;
            struct trace_msg_rec m = {.src = node, .msg_id = i,
                                      .dst = node + 1,
                                      .conn = rx ? 0 : conn,
                                      .seq = k ? i : -1, .size = 64,
                                      .fate = order[k], .t_ns = i * 4000 + k};
            trace_event_rec_init(&e, TRACE_EV_MSG, m.t_ns);
            e.node = rx ? node + 1 : node;
            e.conn = conn;
            e.fate = msgr_fate_name(order[k]);
            e.msg_src = node;
            e.msg_id = i;
            e.msg_seq = m.seq;
            e.bytes = 64;
            if (trace_event_add(db, run, &e, NULL) ||
                trace_message_fate(db, run, &m))
                return -EIO;
        }
    }
    return 0;
}

static int
one_run(void *arg, double *values)
{
    struct ctx *c = arg;
    struct trace_db *db;
    int64_t run, node, conn;
    int e = open_run(c, &db, &run, &node, &conn);

    if (e)
        return e;
    uint64_t t0 = bench_now_ns();
    e = c->fates ? write_fates(db, run, node, conn)
                 : write_events(db, run, node, conn);
    if (!e && trace_run_end(db, run, 0, NULL, "pass", 0))
        e = -EIO;
    double secs = (double)(bench_now_ns() - t0) / 1e9;
    if (e)
        fprintf(stderr, "bench_trace: %s\n", trace_errmsg(db));
    trace_close(db);
    unlink(c->path);
    values[0] = (c->fates ? MSGS_PER_RUN : EVENTS_PER_RUN) / secs;
    return e;
}

int
main(int argc, char **argv)
{
    struct bench_opts opts;
    struct bench_out out;
    struct bench_stats st;
    struct ctx c;
    const char *tmp = getenv("TMPDIR");
    int err;

    err = bench_opts_parse(argc, argv,
                           "The sqlite trace writer: frame events/s and "
                           "message lives (4 fates + message row)/s.",
                           &opts);
    if (err)
        return err > 0 ? 0 : 2;
    memset(&c, 0, sizeof(c));
    snprintf(c.dir, sizeof(c.dir), "%s/bench_trace-XXXXXX", tmp ? tmp : "/tmp");
    if (!mkdtemp(c.dir)) {
        perror("bench_trace: mkdtemp");
        return 1;
    }
    snprintf(c.path, sizeof(c.path), "%s/trace.db", c.dir);
    bench_out_open(&out, opts.out_path);

    c.fates = 0;
    err = bench_measure(one_run, &c, 1, opts.runs, &st);
    if (!err)
        bench_out_row(&out, &(struct bench_row){.bench = "trace_write",
                                                .case_name = "frame events",
                                                .metric = "events_per_s",
                                                .unit = "1/s",
                                                .stats = &st});
    if (!err) {
        c.fates = 1;
        err = bench_measure(one_run, &c, 1, opts.runs, &st);
    }
    if (!err)
        bench_out_row(&out, &(struct bench_row){.bench = "trace_write",
                                                .case_name = "message lives",
                                                .metric = "msgs_per_s",
                                                .unit = "1/s",
                                                .stats = &st});
    bench_out_close(&out);
    rmdir(c.dir);
    if (err) {
        fprintf(stderr, "bench_trace: FAILED: %s\n", strerror(-err));
        return 1;
    }
    return 0;
}
