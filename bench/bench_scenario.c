/*
 * bench_scenario: what tracing costs a scenario run. The same scenario
 * (4 lossless peers exchanging messages through resets and a partition on
 * the simulator) runs untraced and traced into a sqlite file; the figure
 * is the traced run's wall time, its baseline the untraced run's, so the
 * ratio is the cost of tracing (BENCH.md aims at <= 1.5), at the default
 * detail (sessions) and at full detail (every frame and fate an event).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_common.h"
#include "scn/run.h"
#include "scn/scn.h"
#include "trace/trace.h"

static const char scenario[] =
    "scenario \"bench: tracing cost\"\n"
    "seed 5\n"
    "link default latency 100us jitter 20us\n"
    "node osd.[0..3] policy lossless_peer\n"
    "at 0 start all\n"
    "at 1ms osd.* send osd.* count 2000 size 1KiB every 200us\n"
    "at 100ms reset osd.0 <-> osd.1 prob 1% for 200ms\n"
    "at 150ms partition osd.2 | osd.3 for 100ms\n"
    "expect delivered osd.0 -> osd.1 all exactly_once in_order\n";

struct ctx {
    struct scn_plan *plan;
    int traced; /* 0: no; 1 + enum trace_detail */
    char path[64];
    uint64_t events;
};

static int
run_once(void *arg, double *values)
{
    struct ctx *c = arg;
    struct scn_run_opts o;
    memset(&o, 0, sizeof(o));
    FILE *sink = fopen("/dev/null", "w");
    if (!sink)
        return -errno;
    o.out = sink;
    o.quiet = true;
    struct scn_trace *tr = NULL;
    char err[256];
    if (c->traced) {
        unlink(c->path);
        tr = scn_trace_open(c->path, "bench.scn", scenario,
                            sizeof(scenario) - 1, c->traced - 1, err,
                            sizeof(err));
        if (!tr) {
            fprintf(stderr, "bench_scenario: %s\n", err);
            fclose(sink);
            return -EIO;
        }
        o.observer = scn_trace_observer(tr);
    }
    struct scn_run_result res;
    uint64_t t0 = bench_now_ns();
    scn_run(c->plan, scenario, sizeof(scenario) - 1, &o, &res);
    if (tr)
        scn_trace_close(tr, err, sizeof(err));
    uint64_t t1 = bench_now_ns();
    fclose(sink);
    if (res.exit_code != 0) {
        fprintf(stderr, "bench_scenario: the run failed (exit %d)\n",
                res.exit_code);
        return -EIO;
    }
    c->events = res.sim_events;
    values[0] = (double)(t1 - t0) / 1e6;
    return 0;
}

int
main(int argc, char **argv)
{
    struct bench_opts opts;
    int e = bench_opts_parse(argc, argv,
                             "scenario run time untraced vs traced (sqlite)",
                             &opts);
    if (e)
        return e > 0 ? 0 : 2;
    struct scn_diags d;
    struct ctx c;
    memset(&c, 0, sizeof(c));
    if (scn_compile("bench.scn", scenario, sizeof(scenario) - 1, &c.plan,
                    &d) < 0) {
        scn_diags_print(&d, "bench.scn", stderr);
        return 1;
    }
    snprintf(c.path, sizeof(c.path), "/tmp/bench_scenario.%d.db",
             (int)getpid());
    struct bench_stats plain, traced, full;
    c.traced = 0;
    if (bench_measure(run_once, &c, 1, opts.runs, &plain) < 0)
        return 1;
    c.traced = 1 + TRACE_DETAIL_SESSIONS;
    if (bench_measure(run_once, &c, 1, opts.runs, &traced) < 0)
        return 1;
    c.traced = 1 + TRACE_DETAIL_FULL;
    if (bench_measure(run_once, &c, 1, opts.runs, &full) < 0)
        return 1;
    unlink(c.path);
    struct bench_out out;
    bench_out_open(&out, opts.out_path);
    char cs[96];
    snprintf(cs, sizeof(cs), "4 osds, 24k msgs, %llu sim events",
             (unsigned long long)c.events);
    bench_out_row(&out, &(struct bench_row){.bench = "scenario_run",
                                            .case_name = cs,
                                            .metric = "untraced_ms",
                                            .unit = "ms",
                                            .stats = &plain});
    bench_out_row(&out, &(struct bench_row){.bench = "scenario_run",
                                            .case_name = cs,
                                            .metric = "traced_ms",
                                            .unit = "ms",
                                            .stats = &traced,
                                            .baseline = "untraced",
                                            .baseline_value = plain.median});
    bench_out_row(&out, &(struct bench_row){.bench = "scenario_run",
                                            .case_name = cs,
                                            .metric = "traced_full_ms",
                                            .unit = "ms",
                                            .stats = &full,
                                            .baseline = "untraced",
                                            .baseline_value = plain.median});
    bench_out_close(&out);
    scn_plan_free(c.plan);
    return 0;
}
