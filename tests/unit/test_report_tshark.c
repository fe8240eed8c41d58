/*
 * The pcap export as a person would use it: a catalogue scenario with a
 * reset storm, a partition and a kill (so RSTs, drops and
 * retransmissions) runs with --capture, its pcap is exported, and tshark
 * must (1) decode every packet without a malformed packet, a bad IPv4 or
 * TCP checksum or any expert error, (2) see one TCP conversation per
 * simulated connection, and (3) reassemble, for every stream and
 * direction, exactly the bytes the trace says that end sent (the union of
 * its segments' payloads by sequence number, checked against each other
 * for retransmissions), each messenger's stream starting with the msgr2
 * banner. Exits 77 (skipped) without tshark.
 */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "reports/pcap.h"
#include "scn/run.h"
#include "scn/scn.h"
#include "trace/trace.h"

#define SCENARIO MSGR_SOURCE_DIR "/scenarios/catalog/basics/complete-example.scn"
/* decode every port as plain data: heuristic dissectors (Ceph's v1,
 * Thrift) would otherwise misread msgr2 and report their own errors */
#define TSHARK "tshark -n -d 'tcp.port==1-65535,data' "

/* One direction of one simulated connection, reassembled from the trace. */
struct dir {
    int64_t conn;
    uint32_t sip, dip;
    uint16_t sport, dport;
    uint8_t *buf, *have;
    size_t len, cap;
    int matched;
};

struct ctx {
    char db_path[64], pcap_path[64];
    struct dir *dirs;
    size_t ndirs;
    int64_t nconns;
};

/* ------------------------------------------------------------ helpers */

static char *
run_cmd(const char *cmd, size_t *len)
{
    FILE *p = popen(cmd, "r");
    size_t cap = 1 << 16, n = 0;
    char *b = malloc(cap);
    assert_non_null(p);
    assert_non_null(b);
    for (;;) {
        if (cap - n < 4096) {
            cap *= 2;
            b = realloc(b, cap);
            assert_non_null(b);
        }
        size_t k = fread(b + n, 1, cap - n - 1, p);
        if (!k)
            break;
        n += k;
    }
    b[n] = 0;
    assert_int_equal(pclose(p), 0);
    if (len)
        *len = n;
    return b;
}

static size_t
count_lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static struct dir *
dir_get(struct ctx *c, int64_t conn, uint32_t sip, uint16_t sport,
        uint32_t dip, uint16_t dport)
{
    for (size_t i = 0; i < c->ndirs; i++)
        if (c->dirs[i].conn == conn && c->dirs[i].sip == sip &&
            c->dirs[i].sport == sport)
            return &c->dirs[i];
    c->dirs = realloc(c->dirs, (c->ndirs + 1) * sizeof(*c->dirs));
    assert_non_null(c->dirs);
    struct dir *d = &c->dirs[c->ndirs++];
    memset(d, 0, sizeof(*d));
    d->conn = conn;
    d->sip = sip;
    d->sport = sport;
    d->dip = dip;
    d->dport = dport;
    return d;
}

/* Puts a segment's payload at its offset; bytes sent twice (a
 * retransmission) must be the same bytes. */
static void
dir_put(struct dir *d, uint64_t seq, const uint8_t *p, size_t n)
{
    if (seq + n > d->cap) {
        size_t cap = d->cap ? d->cap : 4096;
        while (cap < seq + n)
            cap *= 2;
        d->buf = realloc(d->buf, cap);
        d->have = realloc(d->have, cap);
        assert_non_null(d->buf);
        assert_non_null(d->have);
        memset(d->have + d->cap, 0, cap - d->cap);
        d->cap = cap;
    }
    for (size_t i = 0; i < n; i++) {
        if (d->have[seq + i])
            assert_int_equal(d->buf[seq + i], p[i]);
        d->buf[seq + i] = p[i];
        d->have[seq + i] = 1;
    }
    if (seq + n > d->len)
        d->len = seq + n;
}

/* ------------------------------------------------------- the capture */

static void
run_scenario(struct ctx *c)
{
    struct scn_plan *plan = NULL;
    struct scn_diags dg;
    FILE *f = fopen(SCENARIO, "rb");
    assert_non_null(f);
    static char text[1 << 16];
    size_t len = fread(text, 1, sizeof(text), f);
    fclose(f);
    assert_int_equal(scn_compile(SCENARIO, text, len, &plan, &dg), 0);
    char err[512];
    struct scn_trace *tr =
        scn_trace_open(c->db_path, SCENARIO, text, len, 0 /* full */, err,
                       sizeof(err));
    assert_non_null(tr);
    scn_trace_set_capture(tr, 64u << 20);
    FILE *sink = fopen("/dev/null", "w");
    struct scn_run_opts o = {
        .quiet = true,
        .out = sink,
        .observer = scn_trace_observer(tr),
    };
    struct scn_run_result res;
    assert_int_equal(scn_run(plan, text, len, &o, &res), SCN_EXIT_OK);
    struct scn_capture_stats cs;
    scn_trace_capture_stats(tr, &cs);
    assert_true(cs.segments > 1000);
    assert_int_equal(cs.headers_only, 0);
    assert_int_equal(scn_trace_close(tr, err, sizeof(err)), 0);
    fclose(sink);
    scn_plan_free(plan);
}

static void
load_trace(struct ctx *c, struct trace_db *db)
{
    sqlite3_stmt *q;
    sqlite3 *sql = trace_sqlite(db);
    assert_int_equal(
        sqlite3_prepare_v2(sql,
                           "SELECT tcp_conn, src_ip, src_port, dst_ip,"
                           " dst_port, tcp_seq, len, payload FROM segment"
                           " WHERE run = 1 ORDER BY seq",
                           -1, &q, NULL),
        SQLITE_OK);
    while (sqlite3_step(q) == SQLITE_ROW) {
        struct dir *d = dir_get(
            c, sqlite3_column_int64(q, 0), (uint32_t)sqlite3_column_int64(q, 1),
            (uint16_t)sqlite3_column_int64(q, 2),
            (uint32_t)sqlite3_column_int64(q, 3),
            (uint16_t)sqlite3_column_int64(q, 4));
        int len = sqlite3_column_int(q, 6);
        if (len > 0) {
            assert_int_equal(sqlite3_column_bytes(q, 7), len);
            dir_put(d, (uint64_t)sqlite3_column_int64(q, 5),
                    sqlite3_column_blob(q, 7), (size_t)len);
        }
        if (sqlite3_column_int64(q, 0) > c->nconns)
            c->nconns = sqlite3_column_int64(q, 0);
    }
    sqlite3_finalize(q);
    /* every direction's bytes are contiguous from 0 */
    for (size_t i = 0; i < c->ndirs; i++)
        for (size_t k = 0; k < c->dirs[i].len; k++)
            assert_true(c->dirs[i].have[k]);
}

/* ------------------------------------------------- tshark's side */

static int
parse_node(const char *line, uint32_t *ip, uint16_t *port)
{
    unsigned a, b, cc, d, p;
    if (sscanf(line, "%*s %*s %u.%u.%u.%u:%u", &a, &b, &cc, &d, &p) != 5)
        return -1;
    *ip = a << 24 | b << 16 | cc << 8 | d;
    *port = (uint16_t)p;
    return 0;
}

static struct dir *
find_dir(struct ctx *c, uint32_t sip, uint16_t sport, uint32_t dip,
         uint16_t dport)
{
    for (size_t i = 0; i < c->ndirs; i++) {
        struct dir *d = &c->dirs[i];
        if (d->sip == sip && d->sport == sport && d->dip == dip &&
            d->dport == dport)
            return d;
    }
    return NULL;
}

static int
hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    return -1;
}

/* Checks one block of `-z follow,tcp,raw,N` output against the trace. */
static void
check_stream(struct ctx *c, char *block, uint64_t *bytes)
{
    uint32_t ip[2] = {0, 0};
    uint16_t port[2] = {0, 0};
    int have[2] = {0, 0};
    size_t got[2] = {0, 0};
    struct dir *d[2] = {NULL, NULL};
    char *save = NULL;

    for (char *l = strtok_r(block, "\n", &save); l;
         l = strtok_r(NULL, "\n", &save)) {
        if (!strncmp(l, "Node 0:", 7) || !strncmp(l, "Node 1:", 7)) {
            int k = l[5] - '0';
            assert_int_equal(parse_node(l, &ip[k], &port[k]), 0);
            have[k] = 1;
            if (have[0] && have[1]) {
                d[0] = find_dir(c, ip[0], port[0], ip[1], port[1]);
                d[1] = find_dir(c, ip[1], port[1], ip[0], port[0]);
                assert_non_null(d[0]);
                assert_non_null(d[1]);
            }
            continue;
        }
        if (hexval(l[l[0] == '\t']) < 0)
            continue; /* a header line */
        int k = l[0] == '\t';
        assert_non_null(d[k]);
        for (const char *h = l + k; h[0] && h[1]; h += 2) {
            int v = hexval(h[0]) << 4 | hexval(h[1]);
            assert_true(got[k] < d[k]->len);
            /* byte for byte what the trace says this end sent */
            assert_int_equal(v, d[k]->buf[got[k]]);
            got[k]++;
        }
    }
    assert_true(have[0] && have[1]);
    for (int k = 0; k < 2; k++) {
        assert_int_equal(got[k], d[k]->len);
        /* a messenger's stream opens with the msgr2 banner */
        if (d[k]->len)
            assert_memory_equal(d[k]->buf, "ceph v2\n", 8);
        d[k]->matched = 1;
        *bytes += got[k];
    }
}

static void
test_tshark_follows_streams(void **state)
{
    struct ctx *c = *state;
    run_scenario(c);
    struct trace_db *db = trace_open(c->db_path, TRACE_OPEN_READONLY, NULL);
    assert_non_null(db);
    char err[256], cmd[8192];
    struct report_pcap_stats st;
    assert_int_equal(report_pcap_export(db, 1, c->pcap_path, NULL, &st, err,
                                        sizeof(err)),
                     0);
    load_trace(c, db);
    trace_close(db);
    print_message("pcap: %" PRIu64 " packets, %" PRIu64 " dropped, %" PRIu64
                  " injected RSTs, %" PRId64 " connections\n",
                  st.packets, st.dropped, st.injected, c->nconns);
    assert_true(st.dropped > 0);

    /* (1) decodes cleanly, and the faults are there to see */
    snprintf(cmd, sizeof(cmd),
             TSHARK "-o tcp.check_checksum:TRUE -o ip.check_checksum:TRUE"
                    " -r %s -Y '_ws.malformed || _ws.expert.severity >= "
                    "0x00800000 || tcp.checksum.status == 0 || "
                    "ip.checksum.status == 0' 2>/dev/null",
             c->pcap_path);
    char *bad = run_cmd(cmd, NULL);
    if (*bad)
        print_error("tshark flags:\n%s", bad);
    assert_int_equal(count_lines(bad), 0);
    free(bad);
    snprintf(cmd, sizeof(cmd),
             TSHARK "-r %s -Y 'tcp.flags.reset == 1' 2>/dev/null",
             c->pcap_path);
    char *rst = run_cmd(cmd, NULL);
    assert_true(count_lines(rst) > 0);
    free(rst);
    snprintf(cmd, sizeof(cmd),
             TSHARK "-r %s -Y 'tcp.analysis.retransmission' 2>/dev/null",
             c->pcap_path);
    char *rtx = run_cmd(cmd, NULL);
    assert_true(count_lines(rtx) > 0);
    free(rtx);

    /* (2) one conversation per simulated connection */
    snprintf(cmd, sizeof(cmd), TSHARK "-r %s -q -z conv,tcp 2>/dev/null",
             c->pcap_path);
    char *conv = run_cmd(cmd, NULL);
    size_t nconv = 0;
    for (const char *l = conv; (l = strstr(l, "<->")); l++)
        nconv++;
    free(conv);
    assert_int_equal(nconv, (size_t)c->nconns);

    /* (3) every stream, both directions, byte for byte */
    int n = snprintf(cmd, sizeof(cmd), TSHARK "-r %s -q", c->pcap_path);
    for (int64_t i = 0; i < c->nconns; i++)
        n += snprintf(cmd + n, sizeof(cmd) - (size_t)n,
                      " -z follow,tcp,raw,%" PRId64, i);
    snprintf(cmd + n, sizeof(cmd) - (size_t)n, " 2>/dev/null");
    assert_true((size_t)n < sizeof(cmd) - 32);
    char *out = run_cmd(cmd, NULL);
    uint64_t bytes = 0, want = 0;
    int nblocks = 0;
    for (char *b = strstr(out, "Follow: tcp,raw"); b;) {
        char *next = strstr(b + 1, "Follow: tcp,raw");
        if (next)
            next[-1] = 0;
        check_stream(c, b, &bytes);
        nblocks++;
        b = next;
    }
    free(out);
    assert_int_equal(nblocks, c->nconns);
    for (size_t i = 0; i < c->ndirs; i++) {
        assert_true(c->dirs[i].matched);
        want += c->dirs[i].len;
    }
    assert_int_equal(bytes, want);
    print_message("tshark reassembled %" PRIu64 " bytes in %d streams, equal "
                  "to the trace's\n",
                  bytes, nblocks);
}

static int
setup(void **state)
{
    struct ctx *c = calloc(1, sizeof(*c));
    snprintf(c->db_path, sizeof(c->db_path), "/tmp/test_report_tshark.%d.db",
             (int)getpid());
    snprintf(c->pcap_path, sizeof(c->pcap_path),
             "/tmp/test_report_tshark.%d.pcap", (int)getpid());
    unlink(c->db_path);
    *state = c;
    return 0;
}

static int
teardown(void **state)
{
    struct ctx *c = *state;
    unlink(c->db_path);
    unlink(c->pcap_path);
    for (size_t i = 0; i < c->ndirs; i++) {
        free(c->dirs[i].buf);
        free(c->dirs[i].have);
    }
    free(c->dirs);
    free(c);
    return 0;
}

int
main(void)
{
    if (system("tshark --version >/dev/null 2>&1") != 0) {
        printf("skipped: tshark is not installed (apt-get install tshark)\n");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_tshark_follows_streams, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
