/*
 * msgrsim's scenario commands: check (lint), run (a scenario on the sim
 * or real sockets, optionally traced and captured) and replay (verify a
 * traced run bit for bit, or print its timeline).
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
#include "scn/run.h"
#include "scn/scn.h"
#include "trace/trace.h"

int
cli_cmd_check(int argc, char **argv)
{
    static const struct option opts[] = {
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int quiet = 0;
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "qh", opts, NULL)) != -1) {
        switch (ch) {
        case 'q':
            quiet = 1;
            break;
        case 'h':
            cli_usage(stdout);
            return 0;
        default:
            return cli_usage_error("check: %s", "unknown option");
        }
    }
    if (optind >= argc)
        return cli_usage_error("check: %s", "expected one or more FILEs");
    int invalid = 0, unreadable = 0;
    for (int i = optind; i < argc; i++) {
        const char *path = argv[i];
        struct scn_plan *plan = NULL;
        struct scn_diags d;
        int rc = scn_compile_file(path, &plan, &d);
        if (rc == -EINVAL) {
            scn_diags_print(&d, path, stderr);
            fprintf(stderr, "%s: %u error%s\n", path, d.total,
                    d.total == 1 ? "" : "s");
            invalid = 1;
        } else if (rc < 0) {
            fprintf(stderr, "%s: %s: %s\n", cli_prog, path, strerror(-rc));
            unreadable = 1;
        } else {
            if (!quiet)
                printf("%s: ok (%u node%s, %u action%s, %u expectation%s)\n",
                       path, plan->n_nodes, plan->n_nodes == 1 ? "" : "s",
                       plan->n_timeline, plan->n_timeline == 1 ? "" : "s",
                       plan->n_expects, plan->n_expects == 1 ? "" : "s");
            scn_plan_free(plan);
        }
    }
    return unreadable ? EXIT_NOINPUT : invalid ? EXIT_DATAERR : 0;
}

/* Reads a whole file; NULL and errno set on failure. */
char *
cli_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t k = fread(buf + n, 1, cap - n, f);
        n += k;
        if (k == 0)
            break;
        if (n == cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        errno = EIO;
        return NULL;
    }
    *len = n;
    return buf;
}

/* --capture keeps at most this much payload in the trace by default */
#define CAPTURE_MAX_DEFAULT (64ull << 20)

/* "65536", "64KiB", "64MiB", "1GiB" (also K, M, G, KB, MB, GB: powers of
 * two all the same: these bound memory and disk, not a line rate). */
int
cli_parse_size(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    if (!*s || *s == '-')
        return -1;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s)
        return -1;
    unsigned shift = 0;
    if (!*end || !strcmp(end, "B"))
        shift = 0;
    else if (!strcmp(end, "K") || !strcmp(end, "KB") || !strcmp(end, "KiB"))
        shift = 10;
    else if (!strcmp(end, "M") || !strcmp(end, "MB") || !strcmp(end, "MiB"))
        shift = 20;
    else if (!strcmp(end, "G") || !strcmp(end, "GB") || !strcmp(end, "GiB"))
        shift = 30;
    else
        return -1;
    if (v > (UINT64_MAX >> shift))
        return -1;
    *out = (uint64_t)v << shift;
    return 0;
}

/* What --capture stored, and whether the bound cut payloads off. */
static void
print_capture(const struct scn_trace *tr)
{
    struct scn_capture_stats cs;
    scn_trace_capture_stats(tr, &cs);
    printf("capture: %" PRIu64 " segments, %" PRIu64 " payload bytes kept\n",
           cs.segments, cs.payload_bytes);
    if (cs.headers_only)
        printf("capture: the payload bound (--capture-max %" PRIu64
               " bytes) was reached: %" PRIu64
               " later segments kept their headers only\n",
               cs.payload_max, cs.headers_only);
}

int
cli_cmd_run(int argc, char **argv)
{
    static const struct option opts[] = {
        {"seed", required_argument, NULL, 's'},
        {"stack", required_argument, NULL, 'S'},
        {"quiet", no_argument, NULL, 'q'},
        {"trace", required_argument, NULL, 't'},
        {"trace-detail", required_argument, NULL, 'D'},
        {"capture", no_argument, NULL, 'c'},
        {"capture-max", required_argument, NULL, 'C'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *trace_path = NULL;
    int detail = TRACE_DETAIL_SESSIONS;
    bool capture = false;
    uint64_t capture_max = CAPTURE_MAX_DEFAULT;
    struct scn_run_opts o;
    memset(&o, 0, sizeof(o));
    o.command = cli_prog;
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "s:qh", opts, NULL)) != -1) {
        switch (ch) {
        case 's': {
            char *end;
            errno = 0;
            unsigned long long v = strtoull(optarg, &end, 0);
            if (errno || *end || !*optarg || optarg[0] == '-')
                return cli_usage_error("run: bad --seed '%s' (a number)", optarg);
            o.has_seed = true;
            o.seed = v;
            break;
        }
        case 'S':
            if (!strcmp(optarg, "sim"))
                o.stack = SCN_STACK_SIM;
            else if (!strcmp(optarg, "posix"))
                o.stack = SCN_STACK_POSIX;
            else
                return cli_usage_error("run: bad --stack '%s' (sim or posix)",
                                   optarg);
            o.has_stack = true;
            break;
        case 'q':
            o.quiet = true;
            break;
        case 't':
            trace_path = optarg;
            break;
        case 'D':
            detail = trace_detail_parse(optarg);
            if (detail < 0)
                return cli_usage_error("run: bad --trace-detail '%s' (full or "
                                   "sessions)", optarg);
            break;
        case 'c':
            capture = true;
            break;
        case 'C':
            if (cli_parse_size(optarg, &capture_max) < 0)
                return cli_usage_error("run: bad --capture-max '%s' (bytes, "
                                   "e.g. 64MiB)",
                                   optarg);
            capture = true;
            break;
        case 'h':
            cli_usage(stdout);
            return 0;
        default:
            return cli_usage_error("run: %s", "unknown option");
        }
    }
    if (optind + 1 != argc)
        return cli_usage_error("run: %s", "expected one FILE.scn");
    if (capture && !trace_path)
        return cli_usage_error("run: %s", "--capture needs --trace OUT.db");
    const char *path = argv[optind];
    size_t len = 0;
    char *text = cli_read_file(path, &len);
    if (!text) {
        fprintf(stderr, "%s: %s: %s\n", cli_prog, path, strerror(errno));
        return EXIT_NOINPUT;
    }
    struct scn_plan *plan = NULL;
    struct scn_diags d;
    int rc = scn_compile(path, text, len, &plan, &d);
    if (rc < 0) {
        if (rc == -EINVAL) {
            scn_diags_print(&d, path, stderr);
            fprintf(stderr, "%s: %u error%s\n", path, d.total,
                    d.total == 1 ? "" : "s");
        } else {
            fprintf(stderr, "%s: %s: %s\n", cli_prog, path, strerror(-rc));
        }
        free(text);
        return rc == -EINVAL ? EXIT_DATAERR : 70;
    }
    o.progress = isatty(STDERR_FILENO) && !o.quiet;
    struct scn_trace *tr = NULL;
    char terr[512];
    if (trace_path) {
        tr = scn_trace_open(trace_path, path, text, len, detail, terr,
                            sizeof(terr));
        if (!tr) {
            fprintf(stderr, "%s: cannot write the trace: %s\n", cli_prog, terr);
            scn_plan_free(plan);
            free(text);
            return EXIT_NOINPUT;
        }
        if (capture)
            scn_trace_set_capture(tr, capture_max);
        o.observer = scn_trace_observer(tr);
    }
    struct scn_run_result res;
    int code = scn_run(plan, text, len, &o, &res);
    if (tr) {
        int64_t run = scn_trace_run_id(tr);
        if (capture)
            print_capture(tr);
        if (scn_trace_close(tr, terr, sizeof(terr)) < 0) {
            fprintf(stderr, "%s: the trace is incomplete: %s\n", cli_prog, terr);
            if (code == 0)
                code = 70;
        } else {
            printf("trace: %s (run %" PRId64 "; msgrsim replay %s --run %"
                   PRId64 ")\n", trace_path, run, trace_path, run);
        }
    }
    scn_plan_free(plan);
    free(text);
    return code;
}

/* "1.5s", "250ms", "10us", "42ns", "2m" or a bare number of ns. */
int
cli_parse_time_ns(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || v < 0)
        return -1;
    double mul = 1;
    if (!strcmp(end, "") || !strcmp(end, "ns"))
        mul = 1;
    else if (!strcmp(end, "us"))
        mul = 1e3;
    else if (!strcmp(end, "ms"))
        mul = 1e6;
    else if (!strcmp(end, "s"))
        mul = 1e9;
    else if (!strcmp(end, "m"))
        mul = 60e9;
    else
        return -1;
    *out = (int64_t)(v * mul + 0.5);
    return 0;
}

static void
discard_output(struct scn_run_opts *o, FILE **sink)
{
    *sink = fopen("/dev/null", "w");
    o->out = *sink;
    o->quiet = true;
}

/* Runs the stored scenario again with its seed into a scratch trace and
 * compares event streams; names the first divergence. */
static int
replay_verify(struct trace_db *db, const struct trace_run *run)
{
    struct scn_plan *plan = NULL;
    struct scn_diags d;
    const char *path = run->scenario_path ? run->scenario_path : "(stored)";
    size_t len = strlen(run->scenario_text ? run->scenario_text : "");
    if (!run->scenario_text || !len) {
        fprintf(stderr, "%s: run %" PRId64 " has no scenario text to replay\n",
                cli_prog, run->id);
        return EXIT_DATAERR;
    }
    if (scn_compile(path, run->scenario_text, len, &plan, &d) < 0) {
        scn_diags_print(&d, path, stderr);
        fprintf(stderr, "%s: the stored scenario no longer compiles with this "
                "build\n", cli_prog);
        return EXIT_DATAERR;
    }
    char tmp[] = "/tmp/msgrsim-replay-XXXXXX";
    int fd = mkstemp(tmp);
    if (fd < 0) {
        fprintf(stderr, "%s: cannot create a scratch file: %s\n", cli_prog,
                strerror(errno));
        scn_plan_free(plan);
        return 70;
    }
    close(fd);
    unlink(tmp); /* trace_open creates it */
    char terr[512];
    int detail = trace_detail_parse(run->detail);
    struct scn_trace *tr =
        scn_trace_open(tmp, path, run->scenario_text, len,
                       detail < 0 ? TRACE_DETAIL_FULL : detail, terr,
                       sizeof(terr));
    if (!tr) {
        fprintf(stderr, "%s: %s\n", cli_prog, terr);
        scn_plan_free(plan);
        return 70;
    }
    struct scn_run_opts o;
    memset(&o, 0, sizeof(o));
    o.has_seed = true;
    o.seed = run->seed;
    o.has_stack = true;
    o.stack = run->stack && !strcmp(run->stack, "posix") ? SCN_STACK_POSIX
                                                          : SCN_STACK_SIM;
    o.observer = scn_trace_observer(tr);
    FILE *sink = NULL;
    discard_output(&o, &sink);
    struct scn_run_result res;
    scn_run(plan, run->scenario_text, len, &o, &res);
    if (sink)
        fclose(sink);
    int64_t again_id = scn_trace_run_id(tr);
    scn_trace_close(tr, terr, sizeof(terr));
    scn_plan_free(plan);
    char fp[32];
    snprintf(fp, sizeof(fp), "%016" PRIx64, res.fingerprint);
    printf("run %" PRId64 ": %s, seed %" PRIu64 ", stored fingerprint %s\n",
           run->id, path, run->seed, run->fingerprint ? run->fingerprint : "-");
    printf("replayed: fingerprint %s, verdict %s\n", fp,
           res.exit_code == 0 ? "pass" : "fail");
    int ok = run->fingerprint && !strcmp(run->fingerprint, fp);
    struct trace_open_error oe;
    struct trace_db *again = trace_open(tmp, TRACE_OPEN_READONLY, &oe);
    if (again) {
        struct trace_divergence dv;
        if (trace_diff_runs(db, run->id, again, again_id, &dv) == 0) {
            if (dv.found) {
                ok = 0;
                printf("first divergence at event %" PRId64 ":\n"
                       "  recorded: %s\n  replayed: %s\n",
                       dv.index, dv.have_a ? dv.line_a : "(run had ended)",
                       dv.have_b ? dv.line_b : "(run had ended)");
            } else {
                printf("events: identical\n");
            }
        }
        trace_close(again);
    }
    unlink(tmp);
    printf("replay: %s\n", ok ? "ok, the run is reproduced bit for bit"
                              : "DIVERGED");
    return ok ? 0 : 1;
}

int
cli_cmd_replay(int argc, char **argv)
{
    static const struct option opts[] = {
        {"run", required_argument, NULL, 'r'},
        {"events", no_argument, NULL, 'e'},
        {"from", required_argument, NULL, 'f'},
        {"until", required_argument, NULL, 'u'},
        {"node", required_argument, NULL, 'n'},
        {"conn", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int64_t run_id = 0;
    int events = 0;
    struct trace_filter f;
    trace_filter_init(&f);
    char ca[64], cb[64];
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "r:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'r': {
            long v;
            if (cli_parse_long(optarg, 1, 1L << 40, &v) < 0)
                return cli_usage_error("replay: bad --run '%s' (a run id)",
                                   optarg);
            run_id = v;
            break;
        }
        case 'e':
            events = 1;
            break;
        case 'f':
            if (cli_parse_time_ns(optarg, &f.from_ns) < 0)
                return cli_usage_error("replay: bad --from '%s' (e.g. 1.5s)",
                                   optarg);
            break;
        case 'u':
            if (cli_parse_time_ns(optarg, &f.until_ns) < 0)
                return cli_usage_error("replay: bad --until '%s' (e.g. 2s)",
                                   optarg);
            break;
        case 'n':
            f.node = optarg;
            break;
        case 'c':
            if (trace_conn_spec_parse(optarg, ca, sizeof(ca), cb,
                                      sizeof(cb)) < 0)
                return cli_usage_error("replay: bad --conn '%s' (e.g. "
                                   "osd.0-osd.1)", optarg);
            f.conn_a = ca;
            f.conn_b = cb;
            break;
        case 'h':
            cli_usage(stdout);
            return 0;
        default:
            return cli_usage_error("replay: %s", "unknown option");
        }
    }
    if (optind + 1 != argc)
        return cli_usage_error("replay: %s", "expected one TRACE.db");
    if (!events && (f.node || f.conn_a || f.from_ns != INT64_MIN ||
                    f.until_ns != INT64_MAX))
        return cli_usage_error("replay: %s",
                           "--from/--until/--node/--conn go with --events");
    const char *path = argv[optind];
    struct trace_db *db;
    int e = cli_open_trace_run("replay", path, &run_id, &db);
    if (e)
        return e;
    struct trace_run run;
    e = trace_run_get(db, run_id, &run);
    if (e < 0) {
        fprintf(stderr, "%s: replay: %s\n", cli_prog, trace_errmsg(db));
        trace_close(db);
        return EXIT_SOFTWARE;
    }
    int code = 0;
    if (events) {
        struct trace_cursor *cur = NULL;
        e = trace_cursor_open(db, run_id, &f, &cur);
        if (e < 0) {
            fprintf(stderr, "%s: %s\n", cli_prog, trace_errmsg(db));
            code = 70;
        } else {
            struct trace_event ev;
            char line[1024];
            while ((e = trace_cursor_next(cur, &ev)) > 0) {
                trace_event_format(&ev, line, sizeof(line));
                puts(line);
            }
            trace_cursor_free(cur);
        }
    } else {
        code = replay_verify(db, &run);
    }
    trace_run_fini(&run);
    trace_close(db);
    return code;
}

