/*
 * msgrsim's report commands: report (pictures and exports of a traced
 * run) and pcap (the simulated TCP streams of a captured run).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "reports/pcap.h"
#include "reports/report.h"
#include "trace/trace.h"

int
cli_cmd_pcap(int argc, char **argv)
{
    static const struct option opts[] = {
        {"run", required_argument, NULL, 'r'},
        {"output", required_argument, NULL, 'o'},
        {"omit-dropped", no_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int64_t run_id = 0;
    const char *out = NULL;
    struct report_pcap_opts po = {0};
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "r:o:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'r': {
            long v;
            if (cli_parse_long(optarg, 1, 1L << 40, &v) < 0)
                return cli_usage_error("pcap: bad --run '%s' (a run id)", optarg);
            run_id = v;
            break;
        }
        case 'o':
            out = optarg;
            break;
        case 'd':
            po.omit_dropped = 1;
            break;
        case 'h':
            cli_usage(stdout);
            return 0;
        default:
            return cli_usage_error("pcap: %s", "unknown option");
        }
    }
    if (optind + 1 != argc || !out)
        return cli_usage_error("pcap: %s", "expected TRACE.db -o OUT.pcap");
    const char *path = argv[optind];
    struct trace_db *db;
    int code = cli_open_trace_run("pcap", path, &run_id, &db);
    if (code)
        return code;
    struct report_pcap_stats st;
    char err[512];
    int e = report_pcap_export(db, run_id, out, &po, &st, err, sizeof(err));
    trace_close(db);
    if (e < 0) {
        fprintf(stderr, "%s: %s: %s\n", cli_prog, path, err);
        return e == -ENOENT ? EXIT_DATAERR : 74; /* EX_IOERR */
    }
    printf("pcap: %s (run %" PRId64 ": %" PRIu64 " packets, %" PRIu64
           " dropped by the link%s, %" PRIu64 " injected RSTs, %" PRIu64
           " without payload)\n",
           out, run_id, st.packets, st.dropped,
           po.omit_dropped ? " and left out" : "", st.injected, st.truncated);
    return 0;
}

int
cli_cmd_report(int argc, char **argv)
{
    static const struct option opts[] = {
        {"run", required_argument, NULL, 'r'},
        {"out", required_argument, NULL, 'o'},
        {"format", required_argument, NULL, 'F'},
        {"pair", required_argument, NULL, 'p'},
        {"from", required_argument, NULL, 'f'},
        {"until", required_argument, NULL, 'u'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct report_opts ro;
    report_opts_init(&ro);
    const char *dir = NULL;
    char pa[64], pb[64];
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "r:o:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'r': {
            long v;
            if (cli_parse_long(optarg, 1, 1L << 40, &v) < 0)
                return cli_usage_error("report: bad --run '%s' (a run id)",
                                   optarg);
            ro.run = v;
            break;
        }
        case 'o':
            dir = optarg;
            break;
        case 'F':
            ro.format = report_format_parse(optarg);
            if (ro.format < 0)
                return cli_usage_error("report: bad --format '%s' (html, svg, "
                                   "dot, perfetto or pcap)", optarg);
            break;
        case 'p':
            if (trace_conn_spec_parse(optarg, pa, sizeof(pa), pb,
                                      sizeof(pb)) < 0)
                return cli_usage_error("report: bad --pair '%s' (e.g. "
                                   "osd.0-osd.1)", optarg);
            ro.pair_a = pa;
            ro.pair_b = pb;
            break;
        case 'f':
            if (cli_parse_time_ns(optarg, &ro.from_ns) < 0)
                return cli_usage_error("report: bad --from '%s' (e.g. 1.5s)",
                                   optarg);
            break;
        case 'u':
            if (cli_parse_time_ns(optarg, &ro.until_ns) < 0)
                return cli_usage_error("report: bad --until '%s' (e.g. 2s)",
                                   optarg);
            break;
        case 'h':
            cli_usage(stdout);
            return 0;
        default:
            return cli_usage_error("report: %s", "unknown option");
        }
    }
    if (optind + 1 != argc)
        return cli_usage_error("report: %s", "expected one TRACE.db");
    if (!dir)
        return cli_usage_error("report: %s", "expected -o DIR");
    const char *path = argv[optind];
    struct trace_db *db;
    int code = cli_open_trace_run("report", path, &ro.run, &db);
    if (code)
        return code;
    char err[512];
    const char *written = NULL;
    int e = report_write(db, &ro, dir, &written, err, sizeof(err));
    trace_close(db);
    if (e < 0) {
        fprintf(stderr, "%s: report: %s\n", cli_prog, err);
        /* 69: EX_UNAVAILABLE, a format this build lacks; 65: nothing of
         * that kind in the run (a pcap of a run traced without --capture) */
        return e == -ENOTSUP  ? 69
               : e == -ENOENT ? EXIT_DATAERR
                              : EXIT_SOFTWARE;
    }
    printf("report: %s\n", written);
    return 0;
}

