/*
 * The pcap export's header builders and writer: checksums against known
 * vectors and an independent implementation, and a hand-made capture
 * (handshake, data, a corrupted, a dropped, a headers-only segment, an
 * injected RST) read back with libpcap and checked field by field.
 */
#include <errno.h>
#include <pcap/pcap.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "reports/pcap.h"
#include "scn/run.h"
#include "scn/scn.h"
#include "trace/trace.h"

/* ------------------------------------------------------------ helpers */

static uint32_t
rd32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           p[3];
}

static uint16_t
rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

/* A second, deliberately naive Internet checksum: 64-bit accumulator,
 * folded once at the end. */
static uint16_t
naive_sum(const uint8_t *p, size_t n, uint64_t acc)
{
    for (size_t i = 0; i < n; i++)
        acc += (i & 1) ? p[i] : (uint64_t)p[i] << 8;
    while (acc >> 16)
        acc = (acc & 0xffff) + (acc >> 16);
    return (uint16_t)acc;
}

/* 0 when the TCP checksum of an IPv4 packet verifies. */
static uint16_t
tcp_verify(const uint8_t *ip, size_t n)
{
    uint8_t pseudo[12];
    size_t tl = n - 20;

    memcpy(pseudo, ip + 12, 8);
    pseudo[8] = 0;
    pseudo[9] = 6;
    pseudo[10] = (uint8_t)(tl >> 8);
    pseudo[11] = (uint8_t)tl;
    uint64_t acc = naive_sum(pseudo, 12, 0);
    return (uint16_t)~naive_sum(ip + 20, tl, acc);
}

/* ---------------------------------------------------------- checksums */

static void
test_checksum_vectors(void **state)
{
    (void)state;
    /* RFC 1071 section 3: the words sum to 0xddf2 */
    static const uint8_t rfc[] = {0x00, 0x01, 0xf2, 0x03,
                                  0xf4, 0xf5, 0xf6, 0xf7};
    assert_int_equal(report_inet_checksum(rfc, sizeof(rfc), 0),
                     (uint16_t)~0xddf2);
    /* a well-known IPv4 header (192.168.0.1 -> 192.168.0.199, UDP) whose
     * checksum is 0xb861 */
    uint8_t ip[] = {0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
                    0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7};
    assert_int_equal(report_inet_checksum(ip, sizeof(ip), 0), 0xb861);
    ip[10] = 0xb8;
    ip[11] = 0x61;
    assert_int_equal(report_inet_checksum(ip, sizeof(ip), 0), 0);
    /* an odd length pads with a zero byte */
    static const uint8_t odd[] = {0x12, 0x34, 0x56};
    assert_int_equal(report_inet_checksum(odd, 3, 0),
                     (uint16_t)~(0x1234 + 0x5600));
}

static void
test_headers(void **state)
{
    (void)state;
    uint8_t payload[301];
    for (size_t i = 0; i < sizeof(payload); i++)
        payload[i] = (uint8_t)(i * 7 + 3);
    struct report_tcp_seg s = {
        .src_ip = 0xc0000201, /* 192.0.2.1 */
        .dst_ip = 0xc0000202,
        .src_port = 40000,
        .dst_port = 6800,
        .seq = 0xfffffff0u,
        .ack = 0x01020304u,
        .flags = 0x18, /* PSH ACK */
        .window = 0x1234,
        .ip_id = 77,
        .payload = payload,
        .len = sizeof(payload),
    };
    uint8_t pkt[20 + 28 + sizeof(payload)];
    size_t h = report_tcp_headers(&s, pkt);
    assert_int_equal(h, 40);
    memcpy(pkt + h, payload, sizeof(payload));
    assert_int_equal(pkt[0], 0x45);
    assert_int_equal(rd16(pkt + 2), 40 + sizeof(payload));
    assert_int_equal(rd16(pkt + 4), 77);
    assert_int_equal(pkt[9], 6);
    assert_int_equal(rd32(pkt + 12), 0xc0000201);
    assert_int_equal(rd32(pkt + 16), 0xc0000202);
    assert_int_equal(naive_sum(pkt, 20, 0), 0xffff); /* IPv4 verifies */
    assert_int_equal(rd16(pkt + 20), 40000);
    assert_int_equal(rd16(pkt + 22), 6800);
    assert_int_equal(rd32(pkt + 24), 0xfffffff0u);
    assert_int_equal(rd32(pkt + 28), 0x01020304u);
    assert_int_equal(pkt[32] >> 4, 5);
    assert_int_equal(pkt[33], 0x18);
    assert_int_equal(rd16(pkt + 34), 0x1234);
    assert_int_equal(tcp_verify(pkt, h + sizeof(payload)), 0);
    /* one flipped bit and it no longer verifies */
    pkt[h + 100] ^= 0x10;
    assert_int_not_equal(tcp_verify(pkt, h + sizeof(payload)), 0);

    /* a SYN carries MSS and window scale */
    s.flags = 0x02;
    s.len = 0;
    s.payload = NULL;
    h = report_tcp_headers(&s, pkt);
    assert_int_equal(h, 48);
    assert_int_equal(pkt[32] >> 4, 7);
    assert_int_equal(pkt[40], 2);
    assert_int_equal(rd16(pkt + 42), REPORT_TCP_MSS);
    assert_int_equal(pkt[45], 3);
    assert_int_equal(pkt[47], REPORT_TCP_WSCALE);
    assert_int_equal(tcp_verify(pkt, h), 0);
}

/* --------------------------------------------------------------- export */

struct fixture {
    char db_path[64], pcap_path[64];
    struct trace_db *db;
    int64_t run;
};

static int
setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    snprintf(f->db_path, sizeof(f->db_path), "/tmp/test_report_pcap.%d.db",
             (int)getpid());
    snprintf(f->pcap_path, sizeof(f->pcap_path),
             "/tmp/test_report_pcap.%d.pcap", (int)getpid());
    unlink(f->db_path);
    f->db = trace_open(f->db_path, TRACE_OPEN_RW, NULL);
    assert_non_null(f->db);
    struct trace_run_info ri = {.scenario_text = "x", .seed = 1};
    assert_int_equal(trace_run_begin(f->db, &ri, &f->run), 0);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fixture *f = *state;
    trace_close(f->db);
    unlink(f->db_path);
    unlink(f->pcap_path);
    free(f);
    return 0;
}

#define CLI 0x0a000001u
#define SRV 0x0a000002u

static void
add(struct fixture *f, int64_t t, int from_cli, int64_t seq, int64_t ack,
    unsigned flags, const char *data, int dropped, int injected,
    uint32_t corrupt_bit, int keep)
{
    struct trace_segment_rec r = {
        .t_ns = t,
        .arrive_ns = dropped ? -1 : t + 100000,
        .tcp_conn = 1,
        .src_ip = from_cli ? CLI : SRV,
        .dst_ip = from_cli ? SRV : CLI,
        .src_port = from_cli ? 40000 : 6800,
        .dst_port = from_cli ? 6800 : 40000,
        .tcp_seq = seq,
        .tcp_ack = ack,
        .flags = flags,
        .window = 262144,
        .len = data ? (uint32_t)strlen(data) : 0,
        .payload = data && keep ? data : NULL,
        .dropped = dropped,
        .injected = injected,
        .corrupt_bit = corrupt_bit,
    };
    assert_int_equal(trace_segment_add(f->db, f->run, &r), 0);
}

struct pkt {
    struct pcap_pkthdr h;
    uint8_t b[2048];
};

static size_t
read_all(const char *path, struct pkt *out, size_t max)
{
    char eb[PCAP_ERRBUF_SIZE];
    pcap_t *p = pcap_open_offline_with_tstamp_precision(
        path, PCAP_TSTAMP_PRECISION_NANO, eb);
    assert_non_null(p);
    assert_int_equal(pcap_datalink(p), DLT_RAW);
    assert_int_equal(pcap_get_tstamp_precision(p), PCAP_TSTAMP_PRECISION_NANO);
    struct pcap_pkthdr *h;
    const u_char *d;
    size_t n = 0;
    while (n < max && pcap_next_ex(p, &h, &d) == 1) {
        out[n].h = *h;
        memcpy(out[n].b, d, h->caplen);
        n++;
    }
    pcap_close(p);
    return n;
}

static void
test_export(void **state)
{
    struct fixture *f = *state;
    /* handshake, "hello" each way, a corrupted and a dropped segment
     * (retransmitted), a segment kept without payload, an injected RST */
    add(f, 1000, 1, 0, 0, 0x02, NULL, 0, 0, 0, 1);            /* SYN */
    add(f, 2000, 0, 0, 0, 0x12, NULL, 0, 0, 0, 1);            /* SYN ACK */
    add(f, 3000, 1, 0, 0, 0x10, NULL, 0, 0, 0, 1);            /* ACK */
    add(f, 3001, 1, 0, 0, 0x18, "hello", 0, 0, 0, 1);         /* data */
    add(f, 4000, 0, 0, 5, 0x18, "world!", 0, 0, 9, 1);        /* corrupt */
    add(f, 5000, 1, 5, 6, 0x18, "lost", 1, 0, 0, 1);          /* dropped */
    add(f, 6000, 1, 5, 6, 0x18, "lost", 0, 0, 0, 1);          /* again */
    add(f, 7000, 1, 9, 6, 0x18, "big", 0, 0, 0, 0);           /* no body */
    add(f, 8000, 0, 6, 12, 0x14, NULL, 0, 1, 0, 1);           /* RST */
    assert_int_equal(trace_flush(f->db), 0);

    char err[256];
    struct report_pcap_stats st;
    assert_int_equal(report_pcap_export(f->db, f->run, f->pcap_path, NULL,
                                        &st, err, sizeof(err)),
                     0);
    assert_int_equal(st.packets, 9);
    assert_int_equal(st.dropped, 1);
    assert_int_equal(st.injected, 1);
    assert_int_equal(st.truncated, 1);
    assert_int_equal(st.corrupted, 1);

    static struct pkt p[16];
    size_t n = read_all(f->pcap_path, p, 16);
    assert_int_equal(n, 9);
    /* nanosecond timestamps, exactly */
    assert_int_equal(p[3].h.ts.tv_sec, 0);
    assert_int_equal(p[3].h.ts.tv_usec, 3001);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(naive_sum(p[i].b, 20, 0), 0xffff);
        if (i != 4 && i != 7)
            assert_int_equal(tcp_verify(p[i].b, p[i].h.caplen), 0);
    }
    /* sequence mapping: the SYN takes one number on the wire */
    uint32_t isn_c = rd32(p[0].b + 24), isn_s = rd32(p[1].b + 24);
    assert_int_equal(rd32(p[1].b + 28), isn_c + 1);
    assert_int_equal(rd32(p[3].b + 24), isn_c + 1);
    assert_int_equal(rd32(p[4].b + 28), isn_c + 1 + 5);
    assert_int_equal(rd32(p[5].b + 24), isn_c + 1 + 5);
    assert_int_equal(rd32(p[8].b + 24), isn_s + 1 + 6);
    assert_int_equal(rd32(p[8].b + 28), isn_c + 1 + 12);
    /* window: unscaled in the SYN, scaled after it */
    assert_int_equal(rd16(p[0].b + 34), 0xffff);
    assert_int_equal(rd16(p[3].b + 34), 262144 >> REPORT_TCP_WSCALE);
    /* payload bytes */
    assert_memory_equal(p[3].b + 40, "hello", 5);
    assert_memory_equal(p[6].b + 40, "lost", 4);
    /* the corrupted one: bit 8 (byte 1, bit 0) flipped, checksum of the
     * bytes as sent, so it fails on the wire and verifies unflipped */
    assert_int_equal(p[4].b[41], 'o' ^ 0x01);
    assert_int_not_equal(tcp_verify(p[4].b, p[4].h.caplen), 0);
    p[4].b[41] ^= 0x01;
    assert_int_equal(tcp_verify(p[4].b, p[4].h.caplen), 0);
    /* marks: DSCP CS1 dropped, CS2 injected, 0 otherwise */
    assert_int_equal(p[5].b[1] >> 2, REPORT_DSCP_DROPPED);
    assert_int_equal(p[8].b[1] >> 2, REPORT_DSCP_INJECTED);
    assert_int_equal(p[6].b[1] >> 2, 0);
    /* headers only: captured short, wire length intact */
    assert_int_equal(p[7].h.caplen, 40);
    assert_int_equal(p[7].h.len, 43);
    assert_int_equal(rd16(p[7].b + 2), 43);

    /* and again without the dropped segment */
    struct report_pcap_opts o = {.omit_dropped = 1};
    assert_int_equal(report_pcap_export(f->db, f->run, f->pcap_path, &o, &st,
                                        err, sizeof(err)),
                     0);
    assert_int_equal(st.packets, 8);
    assert_int_equal(read_all(f->pcap_path, p, 16), 8);
}

static void
test_no_capture(void **state)
{
    struct fixture *f = *state;
    char err[256] = "";
    assert_int_equal(report_pcap_write(f->db, f->run, f->pcap_path, err,
                                       sizeof(err)),
                     -ENOENT);
    assert_non_null(strstr(err, "--capture"));
    int64_t n = -1;
    assert_int_equal(trace_segment_count(f->db, f->run, &n), 0);
    assert_int_equal(n, 0);
}

/* Runs a catalogue scenario (lossy links: drops and retransmissions),
 * with a capture into db_path when given; returns its fingerprint. */
static uint64_t
run_lossy(const char *db_path, struct scn_capture_stats *cs)
{
    static const char path[] =
        MSGR_SOURCE_DIR "/scenarios/catalog/faults/lossy-links.scn";
    static char text[1 << 16];
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    size_t len = fread(text, 1, sizeof(text), f);
    fclose(f);
    struct scn_plan *plan = NULL;
    struct scn_diags dg;
    assert_int_equal(scn_compile(path, text, len, &plan, &dg), 0);
    char err[512];
    struct scn_trace *tr = NULL;
    FILE *sink = fopen("/dev/null", "w");
    struct scn_run_opts o = {.quiet = true, .out = sink};
    if (db_path) {
        tr = scn_trace_open(db_path, path, text, len, 0 /* full */, err,
                            sizeof(err));
        assert_non_null(tr);
        scn_trace_set_capture(tr, 1u << 20);
        o.observer = scn_trace_observer(tr);
    }
    struct scn_run_result res;
    assert_int_equal(scn_run(plan, text, len, &o, &res), SCN_EXIT_OK);
    if (tr) {
        scn_trace_capture_stats(tr, cs);
        assert_int_equal(scn_trace_close(tr, err, sizeof(err)), 0);
    }
    fclose(sink);
    scn_plan_free(plan);
    return res.fingerprint;
}

/* The capture hook observes only: a captured run is the same run. The
 * payload bound cuts payloads off and the export says so. */
static void
test_capture_is_transparent(void **state)
{
    (void)state;
    char db_path[64], pcap_path[64], err[256];
    snprintf(db_path, sizeof(db_path), "/tmp/test_report_pcap_run.%d.db",
             (int)getpid());
    snprintf(pcap_path, sizeof(pcap_path),
             "/tmp/test_report_pcap_run.%d.pcap", (int)getpid());
    unlink(db_path);
    struct scn_capture_stats cs;
    uint64_t plain = run_lossy(NULL, NULL);
    uint64_t captured = run_lossy(db_path, &cs);
    assert_int_equal(plain, captured);
    /* 500 messages of 16 KiB: far more than the 1 MiB bound */
    assert_true(cs.payload_bytes <= (1u << 20));
    assert_true(cs.payload_bytes > (1u << 20) - 1448);
    assert_true(cs.headers_only > 0);

    struct trace_db *db = trace_open(db_path, TRACE_OPEN_READONLY, NULL);
    assert_non_null(db);
    int64_t n = 0;
    assert_int_equal(trace_segment_count(db, 1, &n), 0);
    assert_int_equal((uint64_t)n, cs.segments);
    struct report_pcap_stats st;
    assert_int_equal(
        report_pcap_export(db, 1, pcap_path, NULL, &st, err, sizeof(err)), 0);
    trace_close(db);
    assert_int_equal(st.packets, cs.segments);
    assert_int_equal(st.truncated, cs.headers_only);
    assert_true(st.dropped > 0); /* the 20% loss */
    unlink(db_path);
    unlink(pcap_path);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_checksum_vectors),
        cmocka_unit_test(test_headers),
        cmocka_unit_test_setup_teardown(test_export, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_capture, setup, teardown),
        cmocka_unit_test(test_capture_is_transparent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
