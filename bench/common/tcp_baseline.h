/*
 * tcp_baseline: the plain-TCP baselines of BENCH.md, on 127.0.0.1 (an
 * ephemeral port, loopback only), usable from any benchmark so that a
 * messenger figure and its baseline are measured in the same invocation.
 *
 * Wire format of the stream baselines: each message is a 4-byte
 * little-endian length followed by msg_size payload bytes; the receiver
 * parses every length prefix (and checks it) and skips the payload.
 * Throughput counts payload bytes only (1 GB = 1e9 bytes).
 * All sockets have TCP_NODELAY (as Ceph's ms_tcp_nodelay) and 10 s send
 * and receive timeouts, so a broken run fails instead of hanging.
 *
 *   tcp_stream         a sender thread packs messages into large writes
 *                      (coalesced: the ceiling), a receiver thread parses;
 *   tcp_write_per_msg  the same with one send() per message;
 *   tcp_pingpong       msg_size bytes there and back (no framing), one
 *                      round trip at a time; the latency floor.
 *
 * Every function returns 0 or a negative errno (-EPROTO when the receiver
 * saw a bad length prefix).
 */
#ifndef MSGR_BENCH_TCP_BASELINE_H
#define MSGR_BENCH_TCP_BASELINE_H

#include <stddef.h>

#include "bench_common.h"

/* One run each. Time is from the first write to the last message parsed. */
int bench_tcp_stream(size_t msg_size, size_t count, double *msgs_per_s,
                     double *bytes_per_s);
int bench_tcp_write_per_msg(size_t msg_size, size_t count, double *msgs_per_s,
                            double *bytes_per_s);
/* cpu >= 0 pins both ends to that CPU (see bench_cpu_first()); -1: not. */
int bench_tcp_pingpong(size_t msg_size, size_t round_trips, int cpu,
                       double *rtt_us);

/*
 * The same after bench_measure()'s warm-up, `runs` times: st[0] is
 * msgs/s, st[1] bytes/s (stream) or st[0] is µs per round trip (pingpong).
 * A count (round_trips) of 0 sizes each run to about BENCH_RUN_TARGET_S by
 * bench_calibrate(); *used (may be NULL) tells the count that was used.
 */
int bench_tcp_stream_measure(size_t msg_size, size_t count, int runs,
                             struct bench_stats st[2], size_t *used);
int bench_tcp_write_per_msg_measure(size_t msg_size, size_t count, int runs,
                                    struct bench_stats st[2], size_t *used);
int bench_tcp_pingpong_measure(size_t msg_size, size_t round_trips, int cpu,
                               int runs, struct bench_stats *st,
                               size_t *used);

#endif /* MSGR_BENCH_TCP_BASELINE_H */
