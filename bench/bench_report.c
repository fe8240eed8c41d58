/*
 * bench_report: msgrsim report of a 1,000,000-event trace. The trace is
 * synthetic but shaped like a real run (../shared/BENCH.md: a report of a
 * 1M-event trace in at most 5 s is the aim, 10 s the limit): 8 nodes,
 * 16 connections, message lives of six events each (queued, sent, the
 * message frame out and in, delivered, acked), a reset every 50,000
 * events with a reconnect handshake, drops and duplicates, partitions.
 * It is written once with the trace API, then `report` (HTML with every
 * picture) and the Perfetto export are timed on it.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_common.h"
#include "reports/report.h"
#include "trace/trace.h"

#define TARGET_EVENTS 1000000

struct gen {
    struct trace_db *db;
    int64_t run, nevents, t;
    int64_t nodes[8];
    int64_t conn_out[8], conn_in[8]; /* client i -> osd i%4 and its peer */
};

static int
ev(struct gen *g, int kind, int64_t node, int64_t conn, const char *fate,
   int64_t src, int64_t id, const char *tag)
{
    struct trace_event_rec e;
    trace_event_rec_init(&e, kind, g->t);
    e.node = node;
    e.conn = conn;
    e.fate = fate;
    e.tag = tag;
    if (fate) {
        e.msg_src = src;
        e.msg_id = id;
        e.msg_seq = id;
        e.bytes = 4096;
    } else if (tag) {
        e.bytes = 4096 + 64;
    }
    g->nevents++;
    return trace_event_add(g->db, g->run, &e, NULL);
}

static int
msg_fate(struct gen *g, int64_t src, int64_t dst, int64_t conn, int64_t id,
         int fate)
{
    struct trace_msg_rec m = {.src = src, .msg_id = id, .dst = dst,
                              .conn = conn, .seq = id, .size = 4096,
                              .fate = fate, .t_ns = g->t};
    return trace_message_fate(g->db, g->run, &m);
}

static int
handshake(struct gen *g, int i, const char *first)
{
    static const char *const c[] = {"START_CONNECT", "CONNECTING",
                                    "BANNER_CONNECTING", "HELLO_CONNECTING",
                                    "AUTH_CONNECTING", "AUTH_CONNECTING_SIGN",
                                    "SESSION_CONNECTING", "READY"};
    static const char *const s[] = {"START_ACCEPT", "BANNER_ACCEPTING",
                                    "HELLO_ACCEPTING", "AUTH_ACCEPTING",
                                    "AUTH_ACCEPTING_SIGN",
                                    "SESSION_ACCEPTING", "READY"};
    int e = 0;
    const char *from = first;
    /* a reconnect is already in START_CONNECT */
    for (size_t k = strcmp(first, "NONE") ? 1 : 0; k < 8 && !e;
         k++, g->t += 1000) {
        e = trace_event_state(g->db, g->run, g->t, g->nodes[i],
                              g->conn_out[i], from, c[k], "bench");
        from = c[k];
        g->nevents++;
    }
    from = "NONE";
    for (size_t k = 0; k < 7 && !e; k++, g->t += 1000) {
        e = trace_event_state(g->db, g->run, g->t, g->nodes[4 + i % 4],
                              g->conn_in[i], from, s[k], "bench");
        from = s[k];
        g->nevents++;
    }
    return e;
}

/* One message from client i to its osd: six events, three fates. */
static int
message(struct gen *g, int i, int64_t id, int drop, int dup)
{
    int64_t src = g->nodes[i], dst = g->nodes[4 + i % 4];
    int64_t co = g->conn_out[i], ci = g->conn_in[i];
    int e = ev(g, TRACE_EV_MSG, src, co, "queued", src, id, NULL);
    e = e ? e : msg_fate(g, src, dst, co, id, 0);
    g->t += 2000;
    e = e ? e : ev(g, TRACE_EV_MSG, src, co, "sent", src, id, NULL);
    e = e ? e : msg_fate(g, src, dst, co, id, 1);
    e = e ? e : ev(g, TRACE_EV_FRAME_OUT, src, co, NULL, 0, 0, "message");
    g->t += 150000 + (id * 7919) % 100000; /* latency varies */
    if (drop) {
        e = e ? e : ev(g, TRACE_EV_MSG, src, co, "dropped", src, id, NULL);
        e = e ? e : msg_fate(g, src, dst, co, id, 4);
        return e;
    }
    e = e ? e : ev(g, TRACE_EV_FRAME_IN, dst, ci, NULL, 0, 0, "message");
    e = e ? e : ev(g, TRACE_EV_MSG, dst, ci, dup ? "duplicate" : "delivered",
                   src, id, NULL);
    e = e ? e : msg_fate(g, src, dst, co, id, dup ? 5 : 3);
    g->t += 20000;
    e = e ? e : ev(g, TRACE_EV_MSG, src, co, "acked", src, id, NULL);
    e = e ? e : msg_fate(g, src, dst, co, id, 2);
    return e;
}

static int
generate(struct gen *g, const char *path)
{
    g->db = trace_open(path, TRACE_OPEN_RW, NULL);
    if (!g->db)
        return -EIO;
    struct trace_run_info ri = {.scenario_path = "bench_report (synthetic)",
                                .scenario_text = "# synthetic\n",
                                .seed = 1, .stack = "sim"};
    int e = trace_run_begin(g->db, &ri, &g->run);
    for (int i = 0; i < 8 && !e; i++) {
        char name[16];
        snprintf(name, sizeof(name), i < 4 ? "client.%d" : "osd.%d", i % 4);
        struct trace_node_info ni = {.name = name,
                                     .entity_type = i < 4 ? 8 : 4,
                                     .entity_num = i % 4};
        e = trace_node_add(g->db, g->run, &ni, &g->nodes[i]);
    }
    for (int i = 0; i < 4 && !e; i++) {
        char peer[16];
        snprintf(peer, sizeof(peer), "osd.%d", i);
        e = trace_conn_add(g->db, g->run, g->nodes[i], 1, peer, NULL, NULL, 0,
                           &g->conn_out[i]);
        snprintf(peer, sizeof(peer), "client.%d", i);
        e = e ? e : trace_conn_add(g->db, g->run, g->nodes[4 + i], 1, peer,
                                   NULL, NULL, 0, &g->conn_in[i]);
        e = e ? e : handshake(g, i, "NONE");
    }
    int64_t id = 0, next_fault = 50000;
    while (!e && g->nevents < TARGET_EVENTS - 40) {
        int i = (int)(id % 4);
        id++;
        e = message(g, i, id, id % 997 == 0, id % 1499 == 0);
        if (!e && g->nevents >= next_fault) {
            /* a reset: the client reconnects, the server accepts again */
            next_fault += 50000;
            int64_t fid;
            char targets[40];
            snprintf(targets, sizeof(targets), "client.%d <-> osd.%d", i, i);
            e = trace_fault_add(g->db, g->run, g->t, "partition", targets,
                                "", &fid);
            g->nevents++;
            e = e ? e : trace_event_state(g->db, g->run, g->t, g->nodes[i],
                                          g->conn_out[i], "READY",
                                          "START_CONNECT", "bench");
            g->nevents++;
            g->t += 5000000;
            e = e ? e : trace_fault_heal(g->db, g->run, fid, g->t);
            g->nevents++;
            e = e ? e : handshake(g, i, "START_CONNECT");
        }
    }
    while (!e && g->nevents < TARGET_EVENTS) {
        e = trace_event_action(g->db, g->run, g->t, 0, "padding");
        g->nevents++;
    }
    e = e ? e : trace_run_end(g->db, g->run, g->t, "0", "pass", 0);
    return e;
}

struct ctx {
    struct trace_db *db;
    char dir[320];
    int format;
};

static int
one_report(void *arg, double *values)
{
    struct ctx *c = arg;
    struct report_opts o;
    char err[512];
    report_opts_init(&o);
    o.format = c->format;
    uint64_t t0 = bench_now_ns();
    int e = report_write(c->db, &o, c->dir, NULL, err, sizeof(err));
    values[0] = (double)(bench_now_ns() - t0) / 1e9;
    if (e)
        fprintf(stderr, "bench_report: %s\n", err);
    return e ? -EIO : 0;
}

int
main(int argc, char **argv)
{
    struct bench_opts opts;
    struct bench_out out;
    struct bench_stats st;
    const char *tmp = getenv("TMPDIR");
    char dir[256], path[300], cmd[320];
    int err = bench_opts_parse(argc, argv,
                               "msgrsim report of a 1,000,000-event trace "
                               "(HTML with every picture; Perfetto JSON).",
                               &opts);
    if (err)
        return err > 0 ? 0 : 2;
    snprintf(dir, sizeof(dir), "%s/bench_report-XXXXXX", tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        perror("bench_report: mkdtemp");
        return 1;
    }
    snprintf(path, sizeof(path), "%s/trace.db", dir);
    struct gen g;
    memset(&g, 0, sizeof(g));
    uint64_t t0 = bench_now_ns();
    err = generate(&g, path);
    if (err)
        fprintf(stderr, "bench_report: writing the trace: %s\n",
                trace_errmsg(g.db));
    trace_close(g.db);
    fprintf(stderr, "bench_report: %" PRId64 " events written in %.1f s\n",
            g.nevents, (double)(bench_now_ns() - t0) / 1e9);
    struct ctx c = {0};
    snprintf(c.dir, sizeof(c.dir), "%s/report", dir);
    if (!err) {
        c.db = trace_open(path, TRACE_OPEN_READONLY, NULL);
        err = c.db ? 0 : -EIO;
    }
    bench_out_open(&out, opts.out_path);
    static const struct {
        int format;
        const char *name;
    } cases[] = {{REPORT_FORMAT_HTML, "1M events html"},
                 {REPORT_FORMAT_PERFETTO, "1M events perfetto"}};
    for (size_t k = 0; k < 2 && !err; k++) {
        c.format = cases[k].format;
        err = bench_measure(one_report, &c, 1, opts.runs, &st);
        if (!err)
            bench_out_row(&out, &(struct bench_row){.bench = "report",
                                                    .case_name = cases[k].name,
                                                    .metric = "seconds",
                                                    .unit = "s",
                                                    .stats = &st});
    }
    bench_out_close(&out);
    trace_close(c.db);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "bench_report: could not remove %s\n", dir);
    if (err) {
        fprintf(stderr, "bench_report: FAILED\n");
        return 1;
    }
    return 0;
}
