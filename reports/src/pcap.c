/*
 * pcap export (reports/pcap.h): the trace's segment table as IPv4/TCP
 * packets through libpcap, in send order, with nanosecond timestamps.
 *
 * The simulator's sequence numbers are 64-bit offsets from 0 per
 * direction, where the SYN takes no number (sim/sim.h). A wire's SYN
 * takes one, so a direction's wire sequence is isn + offset + 1 for
 * everything but the SYN (isn itself), and an ACK of offset a is
 * peer_isn + 1 + a. The isn is a hash of the direction's 4-tuple and the
 * simulator's connection id: deterministic, different for a reused port.
 */
#include <errno.h>
#include <pcap/pcap.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reports/pcap.h"
#include "trace/trace.h"

#define TCP_FIN 0x01u
#define TCP_SYN 0x02u
#define TCP_RST 0x04u
#define TCP_ACK 0x10u
#define SNAPLEN 65535

/* ------------------------------------------------------------- builders */

static void
put16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void
put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* The 32-bit one's-complement sum of big-endian 16-bit words, unfolded;
 * an odd last byte is padded with zero (RFC 1071). */
static uint32_t
sum_words(const uint8_t *p, size_t n, uint32_t sum)
{
    size_t i;

    for (i = 0; i + 1 < n; i += 2) {
        sum += (uint32_t)p[i] << 8 | p[i + 1];
        sum = (sum & 0xffffu) + (sum >> 16);
    }
    if (n & 1u) {
        sum += (uint32_t)p[n - 1] << 8;
        sum = (sum & 0xffffu) + (sum >> 16);
    }
    return sum;
}

uint16_t
report_inet_checksum(const void *p, size_t n, uint32_t sum)
{
    sum = sum_words(p, n, sum);
    while (sum >> 16)
        sum = (sum & 0xffffu) + (sum >> 16);
    return (uint16_t)~sum;
}

static void
ipv4_header(const struct report_tcp_seg *s, size_t tcp_len, uint8_t *h)
{
    memset(h, 0, REPORT_IPV4_HDR);
    h[0] = 0x45; /* version 4, 5 words */
    h[1] = (uint8_t)(s->dscp << 2);
    put16(h + 2, (uint32_t)(REPORT_IPV4_HDR + tcp_len));
    put16(h + 4, s->ip_id);
    put16(h + 6, 0x4000); /* DF, as Linux sends TCP */
    h[8] = 64;            /* TTL */
    h[9] = 6;             /* TCP */
    put32(h + 12, s->src_ip);
    put32(h + 16, s->dst_ip);
    put16(h + 10, report_inet_checksum(h, REPORT_IPV4_HDR, 0));
}

/* MSS and window scale, as a SYN carries them (NOP pads to 4 bytes). */
static void
syn_options(uint8_t *o)
{
    o[0] = 2; /* MSS */
    o[1] = 4;
    put16(o + 2, REPORT_TCP_MSS);
    o[4] = 1; /* NOP */
    o[5] = 3; /* window scale */
    o[6] = 3;
    o[7] = REPORT_TCP_WSCALE;
}

size_t
report_tcp_headers(const struct report_tcp_seg *s, uint8_t *out)
{
    size_t th = (s->flags & TCP_SYN) ? REPORT_TCP_HDR_SYN : REPORT_TCP_HDR;
    uint8_t *t = out + REPORT_IPV4_HDR;
    uint8_t pseudo[12];
    uint32_t sum;

    ipv4_header(s, th + s->len, out);
    memset(t, 0, th);
    put16(t, s->src_port);
    put16(t + 2, s->dst_port);
    put32(t + 4, s->seq);
    put32(t + 8, s->ack);
    t[12] = (uint8_t)((th / 4) << 4);
    t[13] = s->flags;
    put16(t + 14, s->window);
    if (s->flags & TCP_SYN)
        syn_options(t + REPORT_TCP_HDR);
    /* pseudo-header: addresses, zero, protocol, TCP length */
    put32(pseudo, s->src_ip);
    put32(pseudo + 4, s->dst_ip);
    pseudo[8] = 0;
    pseudo[9] = 6;
    put16(pseudo + 10, (uint32_t)(th + s->len));
    sum = sum_words(pseudo, sizeof(pseudo), 0);
    sum = sum_words(t, th, sum);
    put16(t + 16, report_inet_checksum(s->payload, s->payload ? s->len : 0,
                                       sum));
    return REPORT_IPV4_HDR + th;
}

/* ------------------------------------------------------------- mapping */

/* splitmix64's finaliser: a fixed, well-mixed hash (never changes, so
 * exports of one trace are identical). */
static uint64_t
mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static uint32_t
isn_of(uint32_t sip, uint16_t sport, uint32_t dip, uint16_t dport,
       int64_t conn)
{
    uint64_t h = mix64((uint64_t)sip << 32 | dip);

    h = mix64(h ^ ((uint64_t)sport << 16 | dport));
    return (uint32_t)mix64(h ^ (uint64_t)conn);
}

/* One row of the segment table. */
struct seg_row {
    int64_t t_ns, conn, seq, ack, window;
    uint32_t sip, dip, len;
    uint16_t sport, dport;
    unsigned flags;
    const uint8_t *payload; /* NULL: headers only */
    int dropped, injected;
    uint32_t corrupt_bit;
};

static void
row_read(sqlite3_stmt *st, struct seg_row *r)
{
    r->t_ns = sqlite3_column_int64(st, 0);
    r->conn = sqlite3_column_int64(st, 1);
    r->sip = (uint32_t)sqlite3_column_int64(st, 2);
    r->sport = (uint16_t)sqlite3_column_int64(st, 3);
    r->dip = (uint32_t)sqlite3_column_int64(st, 4);
    r->dport = (uint16_t)sqlite3_column_int64(st, 5);
    r->seq = sqlite3_column_int64(st, 6);
    r->ack = sqlite3_column_int64(st, 7);
    r->flags = (unsigned)sqlite3_column_int64(st, 8);
    r->window = sqlite3_column_int64(st, 9);
    r->len = (uint32_t)sqlite3_column_int64(st, 10);
    r->payload = sqlite3_column_blob(st, 11);
    if (r->payload && (uint32_t)sqlite3_column_bytes(st, 11) != r->len)
        r->payload = NULL; /* not what the row says: treat as not kept */
    r->dropped = sqlite3_column_int(st, 12) != 0;
    r->injected = sqlite3_column_int(st, 13) != 0;
    r->corrupt_bit = (uint32_t)sqlite3_column_int64(st, 14);
}

/* The window field: unscaled in a SYN, shifted by the scale after it. */
static uint16_t
window_field(const struct seg_row *r)
{
    uint64_t w = r->window < 0 ? 0 : (uint64_t)r->window;

    if (!(r->flags & TCP_SYN))
        w >>= REPORT_TCP_WSCALE;
    return (uint16_t)(w > 0xffffu ? 0xffffu : w);
}

/* Builds the packet of r into pkt; returns the bytes captured (headers,
 * plus the payload when kept) and sets *wire to the length on the wire. */
static size_t
packet_build(const struct seg_row *r, uint16_t ip_id, uint8_t *pkt,
             size_t *wire)
{
    struct report_tcp_seg s = {
        .src_ip = r->sip,
        .dst_ip = r->dip,
        .src_port = r->sport,
        .dst_port = r->dport,
        .flags = (uint8_t)r->flags,
        .window = window_field(r),
        .ip_id = ip_id,
        .payload = r->payload,
        .len = r->len,
    };
    uint32_t isn = isn_of(r->sip, r->sport, r->dip, r->dport, r->conn);
    uint32_t peer = isn_of(r->dip, r->dport, r->sip, r->sport, r->conn);
    size_t h;

    s.seq = isn + (uint32_t)r->seq + ((r->flags & TCP_SYN) ? 0u : 1u);
    if (r->flags & TCP_ACK)
        s.ack = peer + 1u + (uint32_t)r->ack;
    s.dscp = r->injected  ? REPORT_DSCP_INJECTED
             : r->dropped ? REPORT_DSCP_DROPPED
                          : 0;
    /* the checksum is over the bytes as sent ... */
    h = report_tcp_headers(&s, pkt);
    *wire = h + r->len;
    if (!r->payload)
        return h;
    memcpy(pkt + h, r->payload, r->len);
    /* ... and the link's flipped bit lands after it, as on a wire */
    if (r->corrupt_bit && r->corrupt_bit <= (uint64_t)r->len * 8u) {
        uint32_t bit = r->corrupt_bit - 1;

        pkt[h + bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    return h + r->len;
}

/* ---------------------------------------------------------------- write */

static const char seg_sql[] =
    "SELECT t_ns, tcp_conn, src_ip, src_port, dst_ip, dst_port, tcp_seq,"
    " tcp_ack, flags, window, len, payload, dropped, injected, corrupt_bit"
    " FROM segment WHERE run = ? ORDER BY seq";

static void
count(struct report_pcap_stats *st, const struct seg_row *r)
{
    st->packets++;
    st->dropped += r->dropped != 0;
    st->injected += r->injected != 0;
    st->truncated += r->len && !r->payload;
    st->corrupted += r->corrupt_bit != 0;
}

/* Streams every row of the run into the dumper. */
static int
dump_rows(sqlite3 *sql, int64_t run, pcap_dumper_t *d,
          const struct report_pcap_opts *o, struct report_pcap_stats *st,
          char *err, size_t errlen)
{
    uint8_t *pkt = malloc(SNAPLEN);
    sqlite3_stmt *q = NULL;
    uint16_t ip_id = 0;
    int rc;

    if (!pkt) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    if (sqlite3_prepare_v2(sql, seg_sql, -1, &q, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "reading segments: %s", sqlite3_errmsg(sql));
        free(pkt);
        return -EIO;
    }
    sqlite3_bind_int64(q, 1, run);
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        struct seg_row r;
        struct pcap_pkthdr ph;
        size_t wire, cap;

        row_read(q, &r);
        if (r.len > SNAPLEN - REPORT_IPV4_HDR - REPORT_TCP_HDR_SYN)
            continue; /* cannot be an IPv4 packet; the sim never sends one */
        if (r.dropped && o->omit_dropped) {
            st->dropped++;
            continue;
        }
        cap = packet_build(&r, ip_id++, pkt, &wire);
        memset(&ph, 0, sizeof(ph));
        /* nanosecond precision: tv_usec holds nanoseconds */
        ph.ts.tv_sec = (time_t)(r.t_ns / 1000000000);
        ph.ts.tv_usec = (suseconds_t)(r.t_ns % 1000000000);
        ph.caplen = (bpf_u_int32)cap;
        ph.len = (bpf_u_int32)wire;
        pcap_dump((u_char *)d, &ph, pkt);
        count(st, &r);
    }
    sqlite3_finalize(q);
    free(pkt);
    if (rc != SQLITE_DONE) {
        snprintf(err, errlen, "reading segments: %s", sqlite3_errmsg(sql));
        return -EIO;
    }
    return 0;
}

int
report_pcap_export(struct trace_db *db, int64_t run, const char *path,
                   const struct report_pcap_opts *opts,
                   struct report_pcap_stats *out, char *err, size_t errlen)
{
    static const struct report_pcap_opts defaults;
    struct report_pcap_stats st;
    pcap_dumper_t *d;
    pcap_t *p;
    int64_t n = 0;
    int e;

    memset(&st, 0, sizeof(st));
    if (trace_segment_count(db, run, &n) < 0 || n == 0) {
        snprintf(err, errlen,
                 "run %lld has no captured segments (run the scenario with "
                 "--trace FILE --capture)",
                 (long long)run);
        return -ENOENT;
    }
    p = pcap_open_dead_with_tstamp_precision(DLT_RAW, SNAPLEN,
                                             PCAP_TSTAMP_PRECISION_NANO);
    if (!p) {
        snprintf(err, errlen, "libpcap: cannot open a dead handle");
        return -EIO;
    }
    d = pcap_dump_open(p, path);
    if (!d) {
        snprintf(err, errlen, "%s: %s", path, pcap_geterr(p));
        pcap_close(p);
        return -EIO;
    }
    e = dump_rows(trace_sqlite(db), run, d, opts ? opts : &defaults, &st,
                  err, errlen);
    if (e == 0 && pcap_dump_flush(d) < 0) {
        snprintf(err, errlen, "%s: write failed", path);
        e = -EIO;
    }
    pcap_dump_close(d);
    pcap_close(p);
    if (out)
        *out = st;
    return e;
}

int
report_pcap_write(struct trace_db *db, int64_t run, const char *path,
                  char *err, size_t errlen)
{
    return report_pcap_export(db, run, path, NULL, NULL, err, errlen);
}
