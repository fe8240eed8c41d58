/*
 * The trace observer: writes what the runner sees into a trace file
 * (trace/, sqlite). The runner's node indices and fault ids map to the
 * trace's own ids here; each node incarnation is one trace node row.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "msgr/msgr.h"
#include "scn/run.h"
#include "sim/sim.h"
#include "trace/trace.h"

struct clock_adapter {
    uint64_t (*now)(void *);
    void *arg;
};

struct scn_trace {
    struct trace_db *db;
    int64_t run;
    const char *path, *scenario_path;
    char *text;
    int failed;
    int ended; /* run_end came: the teardown after it is not the run's */
    int detail;
    char errmsg[256];
    /* runner node index -> trace node id of its latest incarnation */
    int64_t *node_id;
    /* one adapter per node index, allocated once: the trace's tracer keeps
     * its address for the whole run, so it must never move */
    struct clock_adapter **clocks;
    uint32_t nnodes;
    /* runner fault id -> trace fault id */
    int64_t *fault_id;
    uint64_t nfaults;
    /* --capture: segments, with payloads up to a bound */
    struct scn_capture_stats cap;
    struct scn_observer obs;
};

static void
note_err(struct scn_trace *t, int e)
{
    if (t->failed || e >= 0)
        return;
    t->failed = e;
    snprintf(t->errmsg, sizeof(t->errmsg), "%s: %s", t->path,
             trace_errmsg(t->db)[0] ? trace_errmsg(t->db) : trace_strerror(e));
}

static void
grow_nodes(struct scn_trace *t, uint32_t i)
{
    if (i < t->nnodes)
        return;
    uint32_t n = t->nnodes ? t->nnodes : 8;
    while (n <= i)
        n *= 2;
    t->node_id = realloc(t->node_id, n * sizeof(*t->node_id));
    t->clocks = realloc(t->clocks, n * sizeof(*t->clocks));
    if (!t->node_id || !t->clocks)
        abort();
    memset(t->node_id + t->nnodes, 0, (n - t->nnodes) * sizeof(*t->node_id));
    memset(t->clocks + t->nnodes, 0, (n - t->nnodes) * sizeof(*t->clocks));
    t->nnodes = n;
}

static int64_t
clock_cb(void *arg)
{
    struct clock_adapter *c = arg;
    return (int64_t)c->now(c->arg);
}

static void
o_run_begin(void *arg, const struct scn_plan *p, uint64_t seed,
            const char *stack)
{
    struct scn_trace *t = arg;
    char wall[64];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(wall, sizeof(wall), "%Y-%m-%dT%H:%M:%SZ", &tm);
    struct trace_run_info info = {
        .scenario_path = t->scenario_path ? t->scenario_path : p->path,
        .scenario_text = t->text,
        .seed = seed,
        .stack = stack,
        .build_id = "msgrsim 0.1.0",
        .started_wall = wall,
        .detail = (enum trace_detail)t->detail,
    };
    note_err(t, trace_run_begin(t->db, &info, &t->run));
}

static void
o_node(void *arg, uint32_t node, const char *name, uint8_t type,
       const char *policy, const char *addr, uint64_t nonce,
       uint32_t incarnation)
{
    struct scn_trace *t = arg;
    if (t->ended)
        return;
    grow_nodes(t, node);
    const char *dot = strchr(name, '.');
    struct trace_node_info ni = {
        .name = name,
        .entity_type = type,
        .entity_num = dot ? strtoll(dot + 1, NULL, 10) : 0,
        .policy = policy,
        .addr = addr,
        .nonce = nonce,
        .incarnation = (int)incarnation,
    };
    note_err(t, trace_node_add(t->db, t->run, &ni, &t->node_id[node]));
}

static void
o_tracer(void *arg, uint32_t node, uint64_t (*now)(void *), void *now_arg,
         struct msgr_tracer *out)
{
    struct scn_trace *t = arg;
    if (t->ended)
        return;
    grow_nodes(t, node);
    if (!t->clocks[node]) {
        t->clocks[node] = calloc(1, sizeof(*t->clocks[node]));
        if (!t->clocks[node])
            abort();
    }
    t->clocks[node]->now = now;
    t->clocks[node]->arg = now_arg;
    note_err(t, trace_tracer_for_node(t->db, t->run, t->node_id[node],
                                      clock_cb, t->clocks[node], out));
}

static void
o_action(void *arg, uint64_t at, uint32_t line, const char *what)
{
    struct scn_trace *t = arg;
    if (t->ended)
        return;
    char buf[256];
    snprintf(buf, sizeof(buf), "line %u: %s", line, what);
    note_err(t, trace_event_action(t->db, t->run, (int64_t)at, 0, buf));
}

static void
o_fault(void *arg, uint64_t at, uint64_t id, const char *kind,
        const char *targets, const char *params)
{
    struct scn_trace *t = arg;
    if (t->ended)
        return;
    if (id >= t->nfaults) {
        uint64_t n = t->nfaults ? t->nfaults : 16;
        while (n <= id)
            n *= 2;
        t->fault_id = realloc(t->fault_id, n * sizeof(*t->fault_id));
        if (!t->fault_id)
            abort();
        memset(t->fault_id + t->nfaults, 0,
               (n - t->nfaults) * sizeof(*t->fault_id));
        t->nfaults = n;
    }
    note_err(t, trace_fault_add(t->db, t->run, (int64_t)at, kind, targets,
                                params, &t->fault_id[id]));
}

static void
o_fault_heal(void *arg, uint64_t at, uint64_t id)
{
    struct scn_trace *t = arg;
    if (t->ended)
        return;
    if (id < t->nfaults && t->fault_id[id])
        note_err(t, trace_fault_heal(t->db, t->run, t->fault_id[id],
                                     (int64_t)at));
}

static void
o_msg_sent(void *arg, uint64_t at, uint32_t src, uint32_t dst, uint64_t seq,
           uint64_t tid, uint64_t size, uint64_t checksum)
{
    struct scn_trace *t = arg;
    if (t->ended)
        return;
    (void)seq;
    if (src >= t->nnodes || dst >= t->nnodes)
        return;
    struct trace_msg_rec m = {
        .src = t->node_id[src],
        .msg_id = (int64_t)tid,
        .dst = t->node_id[dst],
        .conn = 0,
        .seq = -1,
        .size = (int64_t)size,
        .fate = MSGR_FATE_QUEUED,
        .t_ns = (int64_t)at,
    };
    note_err(t, trace_message_fate(t->db, t->run, &m));
    note_err(t, trace_message_set_checksum(t->db, t->run, m.src, m.msg_id,
                                           (uint32_t)checksum));
}

static void
o_msg_given_up(void *arg, uint64_t at, uint32_t src, uint32_t dst,
               uint64_t tid)
{
    struct scn_trace *t = arg;
    if (t->ended)
        return;
    if (src >= t->nnodes || dst >= t->nnodes)
        return;
    struct trace_msg_rec m = {
        .src = t->node_id[src],
        .msg_id = (int64_t)tid,
        .dst = t->node_id[dst],
        .seq = -1,
        .size = -1,
        .fate = MSGR_FATE_DROPPED,
        .t_ns = (int64_t)at,
    };
    note_err(t, trace_message_fate(t->db, t->run, &m));
}

static void
o_expectation(void *arg, uint32_t line, const char *text, bool held,
              const char *evidence)
{
    struct scn_trace *t = arg;
    if (t->ended)
        return;
    note_err(t, trace_expectation_add(t->db, t->run, (int)line, text,
                                      held ? "pass" : "fail", evidence));
}

static void
o_run_end(void *arg, uint64_t at, uint64_t fingerprint, int exit_code)
{
    struct scn_trace *t = arg;
    if (t->ended)
        return;
    char fp[32];
    snprintf(fp, sizeof(fp), "%016" PRIx64, fingerprint);
    t->ended = 1;
    note_err(t, trace_run_end(t->db, t->run, (int64_t)at, fp,
                              exit_code == 0   ? "pass"
                              : exit_code == 1 ? "fail"
                                               : "error",
                              exit_code));
}

static void
o_segment(void *arg, const struct sim_capture_seg *cs)
{
    struct scn_trace *t = arg;
    if (t->ended)
        return;
    struct trace_segment_rec r = {
        .t_ns = (int64_t)cs->t_ns,
        .arrive_ns = cs->dropped ? -1 : (int64_t)cs->arrive_ns,
        .tcp_conn = (int64_t)cs->conn_id,
        .src_ip = cs->src_ip,
        .dst_ip = cs->dst_ip,
        .src_port = cs->src_port,
        .dst_port = cs->dst_port,
        .tcp_seq = (int64_t)cs->seq,
        .tcp_ack = (int64_t)cs->ack,
        .flags = cs->flags,
        .window = (int64_t)cs->window,
        .len = cs->len,
        .payload = cs->payload,
        .dropped = cs->dropped,
        .injected = cs->injected,
        .corrupt_bit = cs->corrupt_bit,
    };
    /* Past the bound a segment keeps its headers: the pcap still shows
     * the conversation, its payload as not captured. */
    if (cs->len && t->cap.payload_bytes + cs->len > t->cap.payload_max) {
        r.payload = NULL;
        t->cap.headers_only++;
    } else {
        t->cap.payload_bytes += cs->len;
    }
    t->cap.segments++;
    note_err(t, trace_segment_add(t->db, t->run, &r));
}

struct scn_trace *
scn_trace_open(const char *path, const char *scenario_path, const char *text,
               size_t len, int detail, char *err, size_t errlen)
{
    struct trace_open_error oe;
    memset(&oe, 0, sizeof(oe));
    struct trace_db *db = trace_open(path, TRACE_OPEN_RW, &oe);
    if (!db) {
        snprintf(err, errlen, "%s", oe.msg[0] ? oe.msg : path);
        return NULL;
    }
    struct scn_trace *t = calloc(1, sizeof(*t));
    if (!t) {
        trace_close(db);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    t->db = db;
    t->detail = detail;
    t->path = path;
    t->scenario_path = scenario_path;
    t->text = malloc(len + 1);
    if (!t->text)
        abort();
    memcpy(t->text, text, len);
    t->text[len] = 0;
    t->obs = (struct scn_observer){
        .arg = t,
        .run_begin = o_run_begin,
        .node = o_node,
        .tracer = o_tracer,
        .action = o_action,
        .fault = o_fault,
        .fault_heal = o_fault_heal,
        .msg_sent = o_msg_sent,
        .msg_given_up = o_msg_given_up,
        .expectation = o_expectation,
        .run_end = o_run_end,
    };
    return t;
}

void
scn_trace_set_capture(struct scn_trace *t, uint64_t payload_max)
{
    t->cap.payload_max = payload_max;
    t->obs.segment = o_segment;
}

void
scn_trace_capture_stats(const struct scn_trace *t,
                        struct scn_capture_stats *out)
{
    *out = t->cap;
}

const struct scn_observer *
scn_trace_observer(struct scn_trace *t)
{
    return &t->obs;
}

int64_t
scn_trace_run_id(const struct scn_trace *t)
{
    return t->run;
}

int
scn_trace_close(struct scn_trace *t, char *err, size_t errlen)
{
    if (!t)
        return 0;
    int e = t->failed;
    if (!e) {
        e = trace_flush(t->db);
        note_err(t, e);
    }
    if (e && err)
        snprintf(err, errlen, "%s", t->errmsg);
    trace_close(t->db);
    free(t->text);
    free(t->node_id);
    for (uint32_t i = 0; i < t->nnodes; i++)
        free(t->clocks[i]);
    free(t->clocks);
    free(t->fault_id);
    free(t);
    return e;
}
