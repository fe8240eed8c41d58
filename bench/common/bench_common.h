/*
 * bench_common: the measurement harness shared by every bench/bench_*.c
 * (see ../shared/BENCH.md).
 *
 *   - bench_now_ns():       CLOCK_MONOTONIC in nanoseconds;
 *   - bench_measure():      one warm-up call, then N measured calls of a
 *                           run callback, each producing one or more figures;
 *                           the median, min, max and spread of each figure;
 *   - struct bench_out:     prints a table row for people on stdout and
 *                           appends the same figure as one JSON line to the
 *                           results file (--out PATH, else $MSGR_BENCH_OUT,
 *                           else no file);
 *   - bench_opts_parse():   the options every benchmark accepts
 *                           (--runs N, --out PATH, --help).
 *
 * A benchmark never asserts a time: it measures and reports.
 */
#ifndef MSGR_BENCH_COMMON_H
#define MSGR_BENCH_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* BENCH.md: every figure is the median of at least 5 runs after a warm-up. */
#define BENCH_RUNS_DEFAULT 5
#define BENCH_RUNS_MAX     101
/* How many figures one run callback may produce (e.g. msgs/s and GB/s). */
#define BENCH_VALUES_MAX 4

/* CLOCK_MONOTONIC, nanoseconds. */
uint64_t bench_now_ns(void);

/* ------------------------------------------------------------ statistics */

struct bench_stats {
    double median;
    double min;
    double max;
    double spread_pct; /* (max - min) / median * 100; 0 when median is 0 */
    int runs;
};

/* Fills *out from n >= 1 samples (the array is not modified). */
void bench_stats_compute(const double *samples, int n, struct bench_stats *out);

/*
 * One run of a measurement: performs the work once and writes nvalues
 * figures into values[]. Returns 0, or a negative errno on failure (the
 * measurement is then abandoned).
 */
typedef int bench_run_cb(void *arg, double *values);

/*
 * Calls run(arg, ...) once as a warm-up (discarded), then `runs` times,
 * and fills stats[0..nvalues-1] with the statistics of each figure.
 * Returns 0 or the first negative error of a run.
 */
int bench_measure(bench_run_cb *run, void *arg, int nvalues, int runs,
                  struct bench_stats *stats);

/*
 * Sizing a run by time rather than by a fixed count, so a figure is not
 * measured over a few milliseconds on a fast machine nor for minutes on a
 * slow one: run(arg, n, &secs) does n units of work and reports how long it
 * took.
 */
typedef int bench_timed_cb(void *arg, size_t n, double *secs);

#define BENCH_RUN_TARGET_S 0.4 /* aimed duration of one measured run */

/*
 * Calls run with n = 1024, 8192, ... until one call takes at least 50 ms,
 * then sets *n to the count expected to take target_s (at least 1024, at
 * most max_n). The probes double as a warm-up. 0 or a negative error.
 */
int bench_calibrate(bench_timed_cb *run, void *arg, double target_s,
                    size_t max_n, size_t *n);

/* --------------------------------------------------------------- options */

struct bench_opts {
    int runs;             /* measured runs per figure, >= 1 */
    const char *out_path; /* results file, or NULL */
};

/*
 * Parses --runs N, --out PATH and -h/--help. Defaults: BENCH_RUNS_DEFAULT
 * runs, out_path = $MSGR_BENCH_OUT (or NULL). Returns 0 to go on, 1 when
 * help was printed (exit 0), -EINVAL on a usage error (a hint went to
 * stderr; exit 2). `about` is one line for --help.
 */
int bench_opts_parse(int argc, char **argv, const char *about,
                     struct bench_opts *opts);

/* ---------------------------------------------------------------- output */

struct bench_out {
    FILE *jsonl; /* NULL: table only */
    int rows;
};

/*
 * One figure. baseline is NULL when the figure has none; baseline_value is
 * then ignored and baseline/baseline_value/ratio are null in the JSON.
 * ratio = value / baseline_value (for latencies, higher is worse).
 */
struct bench_row {
    const char *bench;     /* e.g. "tcp_stream" */
    const char *case_name; /* e.g. "4KiB" */
    const char *metric;    /* e.g. "msgs_per_s" */
    const char *unit;      /* e.g. "1/s" */
    const struct bench_stats *stats;
    const char *baseline; /* e.g. "tcp_stream", or NULL */
    double baseline_value;
};

/* Opens (appends to) path, creating it; path NULL: table only. */
int bench_out_open(struct bench_out *out, const char *path);
/* Prints the table header on the first row, the row, and the JSON line. */
void bench_out_row(struct bench_out *out, const struct bench_row *row);
void bench_out_close(struct bench_out *out);

/* Formats v for people: 13.0M, 1.20M, 812k, 4.91, 14.3. Returns buf. */
const char *bench_fmt_value(char *buf, size_t len, double v);

/* "64B", "4KiB", "64KiB", "1MiB" (exact powers only get a suffix). */
const char *bench_fmt_size(char *buf, size_t len, size_t bytes);

/* ------------------------------------------------------------------ CPUs */

/* The first CPU this process may run on (normally 0), or -errno. */
int bench_cpu_first(void);
/* Pins the calling thread to one CPU. 0 or -errno. */
int bench_thread_pin(int cpu);

#endif /* MSGR_BENCH_COMMON_H */
