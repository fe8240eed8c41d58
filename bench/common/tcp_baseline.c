/* tcp_baseline.c - see tcp_baseline.h. */
#include "tcp_baseline.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <unistd.h>

#define HDR_LEN      4u
#define BATCH_BYTES  (256u * 1024u) /* one coalesced write */
#define RECV_BYTES   (256u * 1024u) /* one read */
#define IO_TIMEOUT_S 10
#define PING_WARMUP  200u /* untimed round trips on each new connection */
/* calibration never sends more than this many payload bytes in one run */
#define MAX_RUN_BYTES ((size_t)16 << 30)
#define MAX_ROUND_TRIPS ((size_t)10 * 1000 * 1000)

/* ------------------------------------------------------------- sockets */

struct tcp_pair {
    int client; /* connected to server */
    int server; /* accepted */
};

static int
sock_setup(int fd)
{
    struct timeval tv = {.tv_sec = IO_TIMEOUT_S, .tv_usec = 0};
    int one = 1;

    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0) {
        return -errno;
    }
    return 0;
}

static int
tcp_pair_open(struct tcp_pair *p)
{
    struct sockaddr_in sa;
    socklen_t salen = sizeof(sa);
    int lfd = -1;
    int err = 0;

    p->client = -1;
    p->server = -1;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = 0;

    lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        listen(lfd, 1) != 0 ||
        getsockname(lfd, (struct sockaddr *)&sa, &salen) != 0) {
        err = -errno;
        goto out;
    }
    p->client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (p->client < 0) {
        err = -errno;
        goto out;
    }
    /* loopback: the connect completes into the backlog, so no thread */
    if (connect(p->client, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        err = -errno;
        goto out;
    }
    p->server = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    if (p->server < 0) {
        err = -errno;
        goto out;
    }
    err = sock_setup(p->client);
    if (err == 0) {
        err = sock_setup(p->server);
    }
out:
    if (lfd >= 0) {
        close(lfd);
    }
    if (err != 0) {
        if (p->client >= 0) {
            close(p->client);
        }
        if (p->server >= 0) {
            close(p->server);
        }
        p->client = p->server = -1;
    }
    return err;
}

static void
tcp_pair_close(struct tcp_pair *p)
{
    close(p->client);
    close(p->server);
    p->client = p->server = -1;
}

/* A timeout shows up as EAGAIN on a blocking socket with SO_*TIMEO. */
static int
io_errno(void)
{
    return errno == EAGAIN || errno == EWOULDBLOCK ? -ETIMEDOUT : -errno;
}

static int
send_all(int fd, const uint8_t *p, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return io_errno();
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int
recv_all(int fd, uint8_t *p, size_t len)
{
    while (len > 0) {
        ssize_t n = recv(fd, p, len, 0);

        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return io_errno();
        }
        if (n == 0) {
            return -ECONNRESET;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static void
put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static uint32_t
get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static double
secs_between(uint64_t t0, uint64_t t1)
{
    uint64_t d = t1 > t0 ? t1 - t0 : 1;

    return (double)d / 1e9;
}

/* -------------------------------------------------------------- stream */

struct receiver {
    int fd;
    size_t msg_size;
    size_t count;
    uint64_t end_ns; /* when the last message was parsed */
    int err;
};

/* Parses length-prefixed messages until `count` have arrived. */
static void *
receiver_main(void *arg)
{
    struct receiver *r = arg;
    uint8_t *buf = malloc(RECV_BYTES);
    uint8_t hdr[HDR_LEN];
    size_t hdr_have = 0;
    size_t payload_left = 0;
    size_t msgs = 0;

    r->err = 0;
    if (buf == NULL) {
        r->err = -ENOMEM;
        goto out;
    }
    while (msgs < r->count) {
        ssize_t n = recv(r->fd, buf, RECV_BYTES, 0);
        const uint8_t *p = buf;

        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            r->err = io_errno();
            goto out;
        }
        if (n == 0) {
            r->err = -ECONNRESET;
            goto out;
        }
        size_t left = (size_t)n;

        while (left > 0) {
            if (payload_left > 0) {
                size_t take = left < payload_left ? left : payload_left;

                payload_left -= take;
                p += take;
                left -= take;
                if (payload_left == 0) {
                    msgs++;
                }
                continue;
            }
            if (hdr_have == 0 && left >= HDR_LEN) {
                memcpy(hdr, p, HDR_LEN); /* the common case: whole prefix */
                hdr_have = HDR_LEN;
                p += HDR_LEN;
                left -= HDR_LEN;
            } else {
                size_t take = HDR_LEN - hdr_have;

                take = take < left ? take : left;
                memcpy(hdr + hdr_have, p, take);
                hdr_have += take;
                p += take;
                left -= take;
                if (hdr_have < HDR_LEN) {
                    break;
                }
            }
            hdr_have = 0;
            if (get_le32(hdr) != r->msg_size) {
                r->err = -EPROTO;
                goto out;
            }
            payload_left = r->msg_size;
            if (payload_left == 0) {
                msgs++;
            }
        }
    }
out:
    r->end_ns = bench_now_ns();
    if (r->err != 0) {
        shutdown(r->fd, SHUT_RDWR); /* wake the sender */
    }
    free(buf);
    return NULL;
}

/* Packs as many whole messages as fit into one buffer per send. */
static int
send_coalesced(int fd, const uint8_t *payload, size_t msg_size, size_t count)
{
    size_t frame = HDR_LEN + msg_size;
    size_t cap = frame > BATCH_BYTES ? frame : BATCH_BYTES;
    size_t per_batch = cap / frame;
    uint8_t *batch = malloc(cap);
    int err = 0;

    if (batch == NULL) {
        return -ENOMEM;
    }
    for (size_t sent = 0; sent < count && err == 0;) {
        size_t k = count - sent < per_batch ? count - sent : per_batch;
        uint8_t *q = batch;

        for (size_t i = 0; i < k; i++) {
            put_le32(q, (uint32_t)msg_size);
            memcpy(q + HDR_LEN, payload, msg_size);
            q += frame;
        }
        err = send_all(fd, batch, (size_t)(q - batch));
        sent += k;
    }
    free(batch);
    return err;
}

/* One send() per message (header and payload copied into one buffer). */
static int
send_per_msg(int fd, const uint8_t *payload, size_t msg_size, size_t count)
{
    size_t frame = HDR_LEN + msg_size;
    uint8_t *buf = malloc(frame);
    int err = 0;

    if (buf == NULL) {
        return -ENOMEM;
    }
    for (size_t i = 0; i < count && err == 0; i++) {
        put_le32(buf, (uint32_t)msg_size);
        memcpy(buf + HDR_LEN, payload, msg_size);
        err = send_all(fd, buf, frame);
    }
    free(buf);
    return err;
}

static int
run_stream(bool coalesced, size_t msg_size, size_t count, double *msgs_per_s,
           double *bytes_per_s)
{
    struct tcp_pair pair;
    struct receiver r;
    pthread_t tid;
    uint8_t *payload;
    uint64_t t0;
    int err;

    if (count == 0 || msg_size > UINT32_MAX) {
        return -EINVAL;
    }
    payload = malloc(msg_size > 0 ? msg_size : 1);
    if (payload == NULL) {
        return -ENOMEM;
    }
    for (size_t i = 0; i < msg_size; i++) {
        payload[i] = (uint8_t)(i * 31u + 7u);
    }
    err = tcp_pair_open(&pair);
    if (err != 0) {
        free(payload);
        return err;
    }
    r = (struct receiver){.fd = pair.server, .msg_size = msg_size,
                          .count = count};
    err = -pthread_create(&tid, NULL, receiver_main, &r);
    if (err != 0) {
        tcp_pair_close(&pair);
        free(payload);
        return err;
    }
    t0 = bench_now_ns();
    if (coalesced) {
        err = send_coalesced(pair.client, payload, msg_size, count);
    } else {
        err = send_per_msg(pair.client, payload, msg_size, count);
    }
    if (err != 0) {
        shutdown(pair.client, SHUT_RDWR); /* wake the receiver */
    }
    pthread_join(tid, NULL);
    tcp_pair_close(&pair);
    free(payload);
    if (r.err != 0) {
        return r.err; /* the receiver's reason is the first cause */
    }
    if (err != 0) {
        return err;
    }
    double secs = secs_between(t0, r.end_ns);

    *msgs_per_s = (double)count / secs;
    *bytes_per_s = (double)count * (double)msg_size / secs;
    return 0;
}

int
bench_tcp_stream(size_t msg_size, size_t count, double *msgs_per_s,
                 double *bytes_per_s)
{
    return run_stream(true, msg_size, count, msgs_per_s, bytes_per_s);
}

int
bench_tcp_write_per_msg(size_t msg_size, size_t count, double *msgs_per_s,
                        double *bytes_per_s)
{
    return run_stream(false, msg_size, count, msgs_per_s, bytes_per_s);
}

/* ------------------------------------------------------------ pingpong */

struct pinger {
    int fd;
    size_t msg_size;
    size_t round_trips; /* timed, after PING_WARMUP untimed ones */
    int cpu;
    bool is_client;
    uint64_t elapsed_ns; /* client only */
    int err;
};

static void *
pinger_main(void *arg)
{
    struct pinger *p = arg;
    uint8_t *buf = calloc(1, p->msg_size > 0 ? p->msg_size : 1);
    size_t total = PING_WARMUP + p->round_trips;
    uint64_t t0 = 0;

    p->err = 0;
    if (buf == NULL) {
        p->err = -ENOMEM;
        goto out;
    }
    if (p->cpu >= 0) {
        p->err = bench_thread_pin(p->cpu);
        if (p->err != 0) {
            goto out;
        }
    }
    for (size_t i = 0; i < total && p->err == 0; i++) {
        if (p->is_client && i == PING_WARMUP) {
            t0 = bench_now_ns();
        }
        if (p->is_client) {
            p->err = send_all(p->fd, buf, p->msg_size);
            if (p->err == 0) {
                p->err = recv_all(p->fd, buf, p->msg_size);
            }
        } else {
            p->err = recv_all(p->fd, buf, p->msg_size);
            if (p->err == 0) {
                p->err = send_all(p->fd, buf, p->msg_size);
            }
        }
    }
    if (p->is_client) {
        p->elapsed_ns = bench_now_ns() - t0;
    }
out:
    if (p->err != 0) {
        shutdown(p->fd, SHUT_RDWR); /* wake the other end */
    }
    free(buf);
    return NULL;
}

int
bench_tcp_pingpong(size_t msg_size, size_t round_trips, int cpu,
                   double *rtt_us)
{
    struct tcp_pair pair;
    struct pinger cli, srv;
    pthread_t tc, ts;
    int err;

    if (round_trips == 0 || msg_size == 0) {
        return -EINVAL;
    }
    err = tcp_pair_open(&pair);
    if (err != 0) {
        return err;
    }
    srv = (struct pinger){.fd = pair.server, .msg_size = msg_size,
                          .round_trips = round_trips, .cpu = cpu};
    cli = srv;
    cli.fd = pair.client;
    cli.is_client = true;
    /* both ends on their own threads: the caller's affinity is untouched */
    err = -pthread_create(&ts, NULL, pinger_main, &srv);
    if (err != 0) {
        tcp_pair_close(&pair);
        return err;
    }
    err = -pthread_create(&tc, NULL, pinger_main, &cli);
    if (err != 0) {
        shutdown(pair.server, SHUT_RDWR);
        pthread_join(ts, NULL);
        tcp_pair_close(&pair);
        return err;
    }
    pthread_join(tc, NULL);
    pthread_join(ts, NULL);
    tcp_pair_close(&pair);
    if (cli.err != 0) {
        return cli.err;
    }
    if (srv.err != 0) {
        return srv.err;
    }
    *rtt_us = (double)cli.elapsed_ns / 1e3 / (double)round_trips;
    return 0;
}

/* ------------------------------------------------- measured (N runs) */

struct stream_args {
    bool coalesced;
    size_t msg_size;
    size_t count;
};

static int
stream_timed_cb(void *arg, size_t n, double *secs)
{
    struct stream_args *a = arg;
    double msgs_per_s, bytes_per_s;
    int err = run_stream(a->coalesced, a->msg_size, n, &msgs_per_s,
                         &bytes_per_s);

    *secs = (double)n / msgs_per_s;
    return err;
}

static int
stream_run_cb(void *arg, double *values)
{
    struct stream_args *a = arg;

    return run_stream(a->coalesced, a->msg_size, a->count, &values[0],
                      &values[1]);
}

static int
stream_measure(struct stream_args *a, int runs, struct bench_stats st[2],
               size_t *used)
{
    if (a->count == 0) {
        size_t max_n = MAX_RUN_BYTES / (a->msg_size > 0 ? a->msg_size : 1);
        int err = bench_calibrate(stream_timed_cb, a, BENCH_RUN_TARGET_S,
                                  max_n, &a->count);

        if (err != 0) {
            return err;
        }
    }
    if (used != NULL) {
        *used = a->count;
    }
    return bench_measure(stream_run_cb, a, 2, runs, st);
}

int
bench_tcp_stream_measure(size_t msg_size, size_t count, int runs,
                         struct bench_stats st[2], size_t *used)
{
    struct stream_args a = {.coalesced = true, .msg_size = msg_size,
                            .count = count};

    return stream_measure(&a, runs, st, used);
}

int
bench_tcp_write_per_msg_measure(size_t msg_size, size_t count, int runs,
                                struct bench_stats st[2], size_t *used)
{
    struct stream_args a = {.coalesced = false, .msg_size = msg_size,
                            .count = count};

    return stream_measure(&a, runs, st, used);
}

struct pingpong_args {
    size_t msg_size;
    size_t round_trips;
    int cpu;
};

static int
pingpong_timed_cb(void *arg, size_t n, double *secs)
{
    struct pingpong_args *a = arg;
    double rtt_us = 0;
    int err = bench_tcp_pingpong(a->msg_size, n, a->cpu, &rtt_us);

    *secs = rtt_us * 1e-6 * (double)n;
    return err;
}

static int
pingpong_run_cb(void *arg, double *values)
{
    struct pingpong_args *a = arg;

    return bench_tcp_pingpong(a->msg_size, a->round_trips, a->cpu, &values[0]);
}

int
bench_tcp_pingpong_measure(size_t msg_size, size_t round_trips, int cpu,
                           int runs, struct bench_stats *st, size_t *used)
{
    struct pingpong_args a = {.msg_size = msg_size,
                              .round_trips = round_trips, .cpu = cpu};

    if (a.round_trips == 0) {
        int err = bench_calibrate(pingpong_timed_cb, &a, BENCH_RUN_TARGET_S,
                                  MAX_ROUND_TRIPS, &a.round_trips);

        if (err != 0) {
            return err;
        }
    }
    if (used != NULL) {
        *used = a.round_trips;
    }
    return bench_measure(pingpong_run_cb, &a, 1, runs, st);
}
