/*
 * bench_tcp: the plain-TCP baselines on 127.0.0.1 (BENCH.md).
 *
 *   tcp_stream         coalesced writes, 64 B / 4 KiB / 64 KiB: msgs/s, GB/s
 *   tcp_write_per_msg  one send() per message (baseline: tcp_stream)
 *   tcp_pingpong       64 B round trip in µs, both ends pinned to one CPU
 *                      and unpinned (baseline of unpinned: pinned)
 *
 * Each run is sized to about BENCH_RUN_TARGET_S by a calibration probe,
 * then measured after one warm-up, --runs times (default 5).
 * The work lives in common/tcp_baseline.c so that other benchmarks can
 * measure the same baselines in their own invocation.
 */
#include <stdio.h>
#include <string.h>

#include "bench_common.h"
#include "tcp_baseline.h"

static const size_t stream_sizes[] = {64, 4096, 65536};
#define N_SIZES (sizeof(stream_sizes) / sizeof(stream_sizes[0]))

static void
report_stream(struct bench_out *out, const char *bench, const char *case_name,
              const struct bench_stats st[2], const struct bench_stats *base)
{
    struct bench_stats gbps = st[1];

    gbps.median /= 1e9;
    gbps.min /= 1e9;
    gbps.max /= 1e9;
    bench_out_row(out, &(struct bench_row){
                           .bench = bench,
                           .case_name = case_name,
                           .metric = "msgs_per_s",
                           .unit = "1/s",
                           .stats = &st[0],
                           .baseline = base != NULL ? "tcp_stream" : NULL,
                           .baseline_value = base != NULL ? base[0].median : 0,
                       });
    bench_out_row(out,
                  &(struct bench_row){
                      .bench = bench,
                      .case_name = case_name,
                      .metric = "GB_per_s",
                      .unit = "GB/s",
                      .stats = &gbps,
                      .baseline = base != NULL ? "tcp_stream" : NULL,
                      .baseline_value = base != NULL ? base[1].median / 1e9 : 0,
                  });
}

static int
fail(const char *what, const char *case_name, int err)
{
    fprintf(stderr, "bench_tcp: %s %s failed: %s\n", what, case_name,
            strerror(-err));
    return 1;
}

int
main(int argc, char **argv)
{
    struct bench_opts opts;
    struct bench_out out;
    struct bench_stats stream[N_SIZES][2];
    struct bench_stats st[2];
    struct bench_stats pinned, unpinned;
    char name[32];
    int cpu;
    int err;

    err = bench_opts_parse(argc, argv,
                           "Plain TCP baselines on 127.0.0.1: coalesced "
                           "stream, one write per message, ping-pong.",
                           &opts);
    if (err != 0) {
        return err > 0 ? 0 : 2;
    }
    if (bench_out_open(&out, opts.out_path) != 0) {
        return 74; /* EX_IOERR */
    }

    for (size_t i = 0; i < N_SIZES; i++) {
        size_t s = stream_sizes[i];

        bench_fmt_size(name, sizeof(name), s);
        err = bench_tcp_stream_measure(s, 0, opts.runs, stream[i], NULL);
        if (err != 0) {
            bench_out_close(&out);
            return fail("tcp_stream", name, err);
        }
        report_stream(&out, "tcp_stream", name, stream[i], NULL);
    }
    for (size_t i = 0; i < N_SIZES; i++) {
        size_t s = stream_sizes[i];

        bench_fmt_size(name, sizeof(name), s);
        err = bench_tcp_write_per_msg_measure(s, 0, opts.runs, st, NULL);
        if (err != 0) {
            bench_out_close(&out);
            return fail("tcp_write_per_msg", name, err);
        }
        report_stream(&out, "tcp_write_per_msg", name, st, stream[i]);
    }

    cpu = bench_cpu_first();
    if (cpu < 0) {
        bench_out_close(&out);
        return fail("tcp_pingpong", "(no CPU to pin to)", cpu);
    }
    fprintf(stderr, "bench_tcp: pinned ping-pong runs on CPU %d\n", cpu);
    err = bench_tcp_pingpong_measure(64, 0, cpu, opts.runs, &pinned, NULL);
    if (err == 0) {
        err = bench_tcp_pingpong_measure(64, 0, -1, opts.runs, &unpinned,
                                         NULL);
    }
    if (err != 0) {
        bench_out_close(&out);
        return fail("tcp_pingpong", "64B", err);
    }
    bench_out_row(&out, &(struct bench_row){.bench = "tcp_pingpong",
                                            .case_name = "64B pinned",
                                            .metric = "rtt_us",
                                            .unit = "us",
                                            .stats = &pinned});
    bench_out_row(&out, &(struct bench_row){
                            .bench = "tcp_pingpong",
                            .case_name = "64B unpinned",
                            .metric = "rtt_us",
                            .unit = "us",
                            .stats = &unpinned,
                            .baseline = "tcp_pingpong pinned",
                            .baseline_value = pinned.median,
                        });
    bench_out_close(&out);
    return 0;
}
