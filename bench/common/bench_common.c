/* bench_common.c - see bench_common.h. */
#include "bench_common.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

uint64_t
bench_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ------------------------------------------------------------ statistics */

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a;
    double y = *(const double *)b;

    return (x > y) - (x < y);
}

void
bench_stats_compute(const double *samples, int n, struct bench_stats *out)
{
    double sorted[BENCH_RUNS_MAX];

    memset(out, 0, sizeof(*out));
    if (n <= 0) {
        return;
    }
    if (n > BENCH_RUNS_MAX) {
        n = BENCH_RUNS_MAX;
    }
    memcpy(sorted, samples, (size_t)n * sizeof(double));
    qsort(sorted, (size_t)n, sizeof(double), cmp_double);
    out->runs = n;
    out->min = sorted[0];
    out->max = sorted[n - 1];
    if (n % 2 == 1) {
        out->median = sorted[n / 2];
    } else {
        out->median = (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0;
    }
    out->spread_pct =
        out->median != 0.0 ? (out->max - out->min) / out->median * 100.0 : 0.0;
}

int
bench_measure(bench_run_cb *run, void *arg, int nvalues, int runs,
              struct bench_stats *stats)
{
    double samples[BENCH_VALUES_MAX][BENCH_RUNS_MAX];
    double values[BENCH_VALUES_MAX];
    int err;

    if (nvalues < 1 || nvalues > BENCH_VALUES_MAX || runs < 1 ||
        runs > BENCH_RUNS_MAX) {
        return -EINVAL;
    }
    err = run(arg, values); /* warm-up: caches, page faults, TCP windows */
    if (err < 0) {
        return err;
    }
    for (int r = 0; r < runs; r++) {
        err = run(arg, values);
        if (err < 0) {
            return err;
        }
        for (int v = 0; v < nvalues; v++) {
            samples[v][r] = values[v];
        }
    }
    for (int v = 0; v < nvalues; v++) {
        bench_stats_compute(samples[v], runs, &stats[v]);
    }
    return 0;
}

int
bench_calibrate(bench_timed_cb *run, void *arg, double target_s,
                size_t max_n, size_t *n)
{
    size_t probe = 1024;
    double secs = 0;

    for (;;) {
        int err = run(arg, probe, &secs);

        if (err < 0) {
            return err;
        }
        if (secs >= 0.05 || probe >= max_n / 8) {
            break;
        }
        probe *= 8;
    }
    double want = (double)probe * target_s / (secs > 1e-9 ? secs : 1e-9);

    if (want > (double)max_n) {
        want = (double)max_n;
    }
    *n = want < 1024.0 ? 1024 : (size_t)want;
    if (*n > max_n) {
        *n = max_n;
    }
    return 0;
}

/* --------------------------------------------------------------- options */

int
bench_opts_parse(int argc, char **argv, const char *about,
                 struct bench_opts *opts)
{
    static const struct option longopts[] = {
        {"runs", required_argument, NULL, 'r'},
        {"out", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *prog = argc > 0 ? argv[0] : "bench";
    const char *env = getenv("MSGR_BENCH_OUT");
    int c;

    opts->runs = BENCH_RUNS_DEFAULT;
    opts->out_path = env != NULL && env[0] != '\0' ? env : NULL;
    optind = 1;
    while ((c = getopt_long(argc, argv, "r:o:h", longopts, NULL)) != -1) {
        char *end = NULL;
        long n;

        switch (c) {
        case 'r':
            errno = 0;
            n = strtol(optarg, &end, 10);
            if (errno != 0 || end == optarg || *end != '\0' || n < 1 ||
                n > BENCH_RUNS_MAX) {
                fprintf(stderr, "%s: --runs wants 1..%d, got '%s'\n", prog,
                        BENCH_RUNS_MAX, optarg);
                return -EINVAL;
            }
            opts->runs = (int)n;
            break;
        case 'o':
            opts->out_path = optarg;
            break;
        case 'h':
            printf("usage: %s [--runs N] [--out PATH]\n"
                   "%s\n\n"
                   "  -r, --runs N    measured runs per figure after one "
                   "warm-up (default %d)\n"
                   "  -o, --out PATH  append one JSON line per figure to "
                   "PATH\n"
                   "                  (default: $MSGR_BENCH_OUT, else none)\n"
                   "  -h, --help      this text\n",
                   prog, about, BENCH_RUNS_DEFAULT);
            return 1;
        default:
            fprintf(stderr, "%s: try --help\n", prog);
            return -EINVAL;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "%s: unexpected argument '%s'; try --help\n", prog,
                argv[optind]);
        return -EINVAL;
    }
    return 0;
}

/* ---------------------------------------------------------------- output */

int
bench_out_open(struct bench_out *out, const char *path)
{
    out->jsonl = NULL;
    out->rows = 0;
    if (path == NULL) {
        return 0;
    }
    out->jsonl = fopen(path, "a");
    if (out->jsonl == NULL) {
        int err = -errno;

        fprintf(stderr, "bench: cannot open %s: %s\n", path, strerror(errno));
        return err;
    }
    return 0;
}

void
bench_out_close(struct bench_out *out)
{
    if (out->jsonl != NULL) {
        fclose(out->jsonl);
        out->jsonl = NULL;
    }
}

const char *
bench_fmt_value(char *buf, size_t len, double v)
{
    double a = fabs(v);

    if (isnan(v)) {
        snprintf(buf, len, "-");
    } else if (a >= 1e9) {
        snprintf(buf, len, "%.3gG", v / 1e9);
    } else if (a >= 1e6) {
        snprintf(buf, len, "%.3gM", v / 1e6);
    } else if (a >= 1e4) {
        snprintf(buf, len, "%.3gk", v / 1e3);
    } else if (a >= 100.0 || v == 0.0) {
        snprintf(buf, len, "%.0f", v);
    } else {
        snprintf(buf, len, "%.3g", v);
    }
    return buf;
}

const char *
bench_fmt_size(char *buf, size_t len, size_t bytes)
{
    if (bytes >= 1024 * 1024 && bytes % (1024 * 1024) == 0) {
        snprintf(buf, len, "%zuMiB", bytes / (1024 * 1024));
    } else if (bytes >= 1024 && bytes % 1024 == 0) {
        snprintf(buf, len, "%zuKiB", bytes / 1024);
    } else {
        snprintf(buf, len, "%zuB", bytes);
    }
    return buf;
}

static void
json_string(FILE *f, const char *s)
{
    if (s == NULL) {
        fputs("null", f);
        return;
    }
    fputc('"', f);
    for (; *s != '\0'; s++) {
        unsigned char ch = (unsigned char)*s;

        if (ch == '"' || ch == '\\') {
            fprintf(f, "\\%c", ch);
        } else if (ch < 0x20) {
            fprintf(f, "\\u%04x", ch);
        } else {
            fputc(ch, f);
        }
    }
    fputc('"', f);
}

/* JSON has no NaN or infinity: those become null. */
static void
json_number(FILE *f, double v, int digits)
{
    if (isnan(v) || isinf(v)) {
        fputs("null", f);
    } else {
        fprintf(f, "%.*g", digits, v);
    }
}

#define TABLE_FMT "%-18s %-26s %-12s %9s %-5s %-18s %9s %7s %8s %4s\n"

void
bench_out_row(struct bench_out *out, const struct bench_row *row)
{
    const struct bench_stats *st = row->stats;
    double base = row->baseline != NULL ? row->baseline_value : (double)NAN;
    double ratio = row->baseline != NULL && base != 0.0 ? st->median / base
                                                         : (double)NAN;
    char value[32], basev[32], ratiov[32], spread[32], runs[16];

    if (out->rows == 0) {
        printf(TABLE_FMT, "bench", "case", "metric", "value", "unit",
               "baseline", "base.val", "ratio", "spread%", "runs");
    }
    out->rows++;
    bench_fmt_value(value, sizeof(value), st->median);
    bench_fmt_value(basev, sizeof(basev), base);
    if (isnan(ratio)) {
        snprintf(ratiov, sizeof(ratiov), "-");
    } else {
        snprintf(ratiov, sizeof(ratiov), "%.3g", ratio);
    }
    snprintf(spread, sizeof(spread), "%.1f", st->spread_pct);
    snprintf(runs, sizeof(runs), "%d", st->runs);
    printf(TABLE_FMT, row->bench, row->case_name, row->metric, value,
           row->unit, row->baseline != NULL ? row->baseline : "-", basev,
           ratiov, spread, runs);
    fflush(stdout);

    if (out->jsonl == NULL) {
        return;
    }
    FILE *f = out->jsonl;

    fputs("{\"bench\": ", f);
    json_string(f, row->bench);
    fputs(", \"case\": ", f);
    json_string(f, row->case_name);
    fputs(", \"metric\": ", f);
    json_string(f, row->metric);
    fputs(", \"value\": ", f);
    json_number(f, st->median, 10);
    fputs(", \"unit\": ", f);
    json_string(f, row->unit);
    fputs(", \"baseline\": ", f);
    json_string(f, row->baseline);
    fputs(", \"baseline_value\": ", f);
    json_number(f, base, 10);
    fputs(", \"ratio\": ", f);
    json_number(f, ratio, 4);
    fprintf(f, ", \"runs\": %d, \"spread_pct\": ", st->runs);
    json_number(f, st->spread_pct, 3);
    fputs("}\n", f);
    fflush(f);
}

/* ------------------------------------------------------------------ CPUs */

int
bench_cpu_first(void)
{
    cpu_set_t set;

    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) != 0) {
        return -errno;
    }
    for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
        if (CPU_ISSET(cpu, &set)) {
            return cpu;
        }
    }
    return -ENODEV;
}

int
bench_thread_pin(int cpu)
{
    cpu_set_t set;

    if (cpu < 0 || cpu >= CPU_SETSIZE) {
        return -EINVAL;
    }
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    /* returns an error number rather than setting errno */
    return -pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}
