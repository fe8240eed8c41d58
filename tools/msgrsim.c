/*
 * msgrsim: the command-line front end.
 *
 *   msgrsim demo [--count N] [--size BYTES] [--policy NAME]
 *   msgrsim probe [--rev0] [--timeout SECONDS] ADDR
 *   msgrsim check [-q] FILE...
 *   msgrsim run FILE.scn [--trace OUT.db [--capture]]
 *   msgrsim pcap TRACE.db -o OUT.pcap [--run ID]
 *
 * Exit codes: 0 success, 1 the system under test failed (no MON_MAP, a
 * message lost), 2 usage error, 65 a scenario file is invalid, 66 an input
 * cannot be opened, 70 internal error.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "msgr/msgr.h"
#include "reports/pcap.h"
#include "reports/report.h"
#include "scn/run.h"
#include "scn/scn.h"
#include "trace/trace.h"
#include "sim/sim.h"

#define EXIT_USAGE    2
#define EXIT_DATAERR  65
#define EXIT_NOINPUT  66
#define EXIT_SOFTWARE 70

static const char *prog = "msgrsim";
/* MSGRSIM_DEBUG=1 in the environment: the messengers log at DEBUG */
static int log_level = MSGR_LOG_WARN;

static void
usage(FILE *f)
{
    fprintf(f,
            "usage: %s <command> [options]\n"
            "\n"
            "commands:\n"
            "  demo   two messengers on 127.0.0.1 exchange messages over "
            "msgr2.1;\n"
            "         prints what they exchanged\n"
            "         --count N        messages to send (default 8)\n"
            "         --size BYTES     payload bytes per message (default "
            "4096)\n"
            "         --policy NAME    client policy: lossy_client, "
            "lossless_client,\n"
            "                          lossless_peer (default), "
            "lossless_peer_reuse\n"
            "         --stack sim|posix  the deterministic simulated network "
            "(virtual\n"
            "                          time, prints a fingerprint) or real "
            "sockets (default)\n"
            "         --seed N         the simulated world's seed (default 1)\n"
            "  probe  connect to a Ceph monitor as a client, complete the "
            "msgr2\n"
            "         handshake, ask for the monitor map and print what "
            "arrives\n"
            "         ADDR             e.g. v2:127.0.0.1:3300\n"
            "         --rev0           speak msgr2.0 instead of msgr2.1\n"
            "         --timeout SECS   give up after this long (default 10)\n"
            "  run    run a scenario file and check its expectations\n"
            "         FILE.scn\n"
            "         --seed N         override the file's seed\n"
            "         --stack sim|posix  override the file's stack: sim (virtual "
            "time,\n"
            "                          bit-reproducible, fingerprint of the "
            "trace) or\n"
            "                          posix (real messengers on 127.0.0.1, "
            "wall time;\n"
            "                          faults through the fault layer; not "
            "reproducible:\n"
            "                          the fingerprint hashes file, seed and "
            "verdicts;\n"
            "                          expect trace_hash is sim only)\n"
            "         --quiet          print only failures and the verdict\n"
            "         --trace OUT.db   write the run into a sqlite trace\n"
            "         --trace-detail sessions|full  sessions (default): states,\n"
            "                          handshakes, faults, exceptional fates, a row\n"
            "                          per message; full: also every message and\n"
            "                          ack frame and every fate as an event\n"
            "         --capture        also record every TCP segment with its "
            "payload\n"
            "                          (for msgrsim pcap; needs --trace)\n"
            "         --capture-max SIZE  payload bytes kept (default 64MiB); "
            "later\n"
            "                          segments keep their headers only\n"
            "         exit 0 all expectations held, 1 one failed, 65 invalid "
            "file,\n"
            "         66 file cannot be opened, 70 internal error\n"
            "  replay verify a traced run: run its scenario again with its "
            "seed and\n"
            "         compare (names the first diverging event)\n"
            "         TRACE.db [--run ID]  (default: the latest run)\n"
            "         --events [--from T] [--until T] [--node N] [--conn A-B]\n"
            "                          print the recorded timeline instead\n"
            "  pcap   export a captured run (run --capture) as a pcap file "
            "for\n"
            "         Wireshark/tshark: IPv4/TCP headers, nanosecond "
            "timestamps\n"
            "         TRACE.db -o OUT.pcap [--run ID]  (default: the latest "
            "run)\n"
            "         --omit-dropped   leave out segments the link lost "
            "(default:\n"
            "                          kept, marked DSCP CS1)\n"
            "  report turn a traced run into pictures: index.html (state "
            "graphs,\n"
            "         sequence diagram, topology, charts, expectations), SVG "
            "and DOT\n"
            "         TRACE.db -o DIR [--run ID]  (default: the latest run)\n"
            "         --format html|svg|dot|perfetto|pcap  (default html; "
            "perfetto\n"
            "                          writes DIR/trace.json, pcap "
            "DIR/trace.pcap)\n"
            "         --pair A-B       the sequence diagram's nodes "
            "(default: the\n"
            "                          busiest pair)\n"
            "         --from T --until T  its window (default: around the "
            "first fault)\n"
            "  check  lint scenario files without running them: prints\n"
            "         'FILE: ok (N nodes, M actions, K expectations)' per valid\n"
            "         file, or 'FILE:LINE:COL: error: ...' lines on stderr\n"
            "         FILE...          one or more .scn files\n"
            "         -q, --quiet      print nothing for valid files\n"
            "         exit 0 all valid, 65 one is invalid, 66 one cannot be "
            "opened\n"
            "\n"
            "  -h, --help     this text\n"
            "  --version      print the version\n",
            prog);
}

static int usage_error(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

static int
usage_error(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry '%s --help' for more information.\n", prog);
    return EXIT_USAGE;
}

static int
parse_long(const char *s, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

static void
print_addrvec(const char *label, const struct msgr_addrvec *v)
{
    char buf[512];
    msgr_addrvec_format(v, buf, sizeof(buf));
    printf("%s%s\n", label, buf);
}

/* ------------------------------------------------------------------ probe */

struct probe_state {
    _Atomic int connected;
    _Atomic int got_monmap;
    _Atomic int reset;
    _Atomic int refused;
    struct msgr_conn *conn;
};

static void
probe_connect(void *arg, struct msgr_conn *c)
{
    struct probe_state *ps = arg;
    struct msgr_addrvec v;
    struct msgr_entity_name n = msgr_conn_peer_name(c);
    msgr_conn_peer_ident_addrs(c, &v);
    printf("connected: peer %s.%" PRId64 " (msgr2.%d)\n",
           msgr_entity_type_name(n.type), n.num, msgr_conn_rev(c));
    print_addrvec("  addrs    ", &v);
    printf("  features 0x%016" PRIx64 "\n", msgr_conn_features(c));
    fflush(stdout);
    atomic_store(&ps->connected, 1);
}

static const char *
msg_type_name(uint16_t t)
{
    switch (t) {
    case MSGR_MSG_MON_MAP:
        return "MON_MAP";
    case MSGR_MSG_MON_GET_MAP:
        return "MON_GET_MAP";
    case MSGR_MSG_MON_SUBSCRIBE:
        return "MON_SUBSCRIBE";
    case MSGR_MSG_CONFIG:
        return "CONFIG";
    default:
        return "?";
    }
}

static int
probe_dispatch(void *arg, struct msgr_msg *m)
{
    struct probe_state *ps = arg;
    printf("message: type %u (%s) seq %" PRIu64 " front %u middle %u data %u\n",
           m->hdr.type, msg_type_name(m->hdr.type), m->hdr.seq, m->front.len,
           m->middle.len, m->data.len);
    fflush(stdout);
    if (m->hdr.type == MSGR_MSG_MON_MAP)
        atomic_store(&ps->got_monmap, 1);
    msgr_msg_unref(m);
    return 1;
}

static int
probe_reset(void *arg, struct msgr_conn *c)
{
    struct probe_state *ps = arg;
    (void)c;
    atomic_store(&ps->reset, 1);
    return 1;
}

static int
probe_refused(void *arg, struct msgr_conn *c)
{
    struct probe_state *ps = arg;
    (void)c;
    atomic_store(&ps->refused, 1);
    return 1;
}

static int
probe_done(void *arg)
{
    struct probe_state *ps = arg;
    return atomic_load(&ps->got_monmap) || atomic_load(&ps->reset);
}

static int
cmd_probe(int argc, char **argv)
{
    static const struct option opts[] = {
        {"rev0", no_argument, NULL, 'r'},
        {"timeout", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int rev0 = 0;
    long timeout_s = 10;
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (ch) {
        case 'r':
            rev0 = 1;
            break;
        case 't':
            if (parse_long(optarg, 1, 3600, &timeout_s) < 0)
                return usage_error("probe: bad --timeout '%s' (seconds, 1..3600)",
                                   optarg);
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            return usage_error("probe: %s", "unknown option");
        }
    }
    if (optind != argc - 1)
        return usage_error("probe: %s", "expected one ADDR, e.g. v2:127.0.0.1:3300");
    struct msgr_addr target;
    if (msgr_addr_parse(argv[optind], &target) < 0)
        return usage_error("probe: bad address '%s' (expected e.g. "
                           "v2:127.0.0.1:3300)", argv[optind]);
    if (target.type != MSGR_ADDR_MSGR2)
        return usage_error("probe: '%s' is not a msgr2 (v2:) address",
                           argv[optind]);

    struct msgr_config cfg = {
        .name = {MSGR_ENTITY_CLIENT, -1},
        .nworkers = 1,
        .force_rev0 = rev0,
    };
    int err = 0;
    struct msgr_stack *st = NULL;
    struct msgr_stack_config sc = {.nworkers = 1};
    st = msgr_stack_create("posix", &sc, &err);
    if (!st) {
        fprintf(stderr, "%s: cannot create the posix stack: %s\n", prog,
                msgr_strerror(err));
        return EXIT_SOFTWARE;
    }
    cfg.stack = st;
    /* a nonce the monitor can tell apart from other clients */
    cfg.nonce = (uint32_t)st->ops->random_u64(st);
    struct msgr *m = msgr_create(&cfg, &err);
    if (!m) {
        fprintf(stderr, "%s: cannot create the messenger: %s\n", prog,
                msgr_strerror(err));
        msgr_stack_unref(st);
        return EXIT_SOFTWARE;
    }
    msgr_set_log(m, log_level, NULL, NULL);
    struct msgr_policy p = msgr_policy_make(MSGR_POLICY_LOSSY_CLIENT, 0);
    msgr_set_policy(m, MSGR_ENTITY_MON, &p);
    struct probe_state ps = {0};
    struct msgr_dispatcher d = {
        .arg = &ps,
        .ms_dispatch = probe_dispatch,
        .ms_handle_connect = probe_connect,
        .ms_handle_reset = probe_reset,
        .ms_handle_refused = probe_refused,
    };
    msgr_start(m);
    msgr_add_dispatcher(m, &d);

    struct msgr_addrvec av = {.n = 1};
    av.v[0] = target;
    char abuf[128];
    msgr_addr_format(&target, abuf, sizeof(abuf));
    printf("probing %s as client.? over msgr2.%d\n", abuf, rev0 ? 0 : 1);
    fflush(stdout);
    struct msgr_msg *msg = msgr_msg_new(MSGR_MSG_MON_GET_MAP, 0, 0, 0);
    msg->hdr.priority = MSGR_PRIO_DEFAULT;
    err = msgr_send_message(m, msg, MSGR_ENTITY_MON, &av);
    if (err < 0) {
        fprintf(stderr, "%s: send failed: %s\n", prog, msgr_strerror(err));
        msgr_msg_unref(msg);
    }
    st->ops->wait_until(st, probe_done, &ps,
                        (msgr_time_ns)timeout_s * MSGR_NS_PER_S);
    int ok = atomic_load(&ps.got_monmap);
    if (!ok) {
        if (atomic_load(&ps.reset))
            fprintf(stderr, "%s: the connection to %s was reset before a "
                    "MON_MAP arrived\n", prog, abuf);
        else if (atomic_load(&ps.refused))
            fprintf(stderr, "%s: %s refused the connection: is a monitor "
                    "listening there?\n", prog, abuf);
        else if (!atomic_load(&ps.connected))
            fprintf(stderr, "%s: timed out after %lds: no msgr2 session with "
                    "%s (is it a Ceph monitor?)\n", prog, timeout_s, abuf);
        else
            fprintf(stderr, "%s: timed out after %lds waiting for MON_MAP\n",
                    prog, timeout_s);
    } else {
        printf("ok: MON_MAP received\n");
    }
    msgr_shutdown(m);
    msgr_wait(m);
    msgr_destroy(m);
    msgr_stack_unref(st);
    return ok ? 0 : 1;
}

/* ------------------------------------------------------------------- demo */

struct demo_state {
    struct msgr *m;
    _Atomic int received;
    _Atomic int replies;
    _Atomic int bad;
    _Atomic int connects, accepts;
    int is_server;
};

static uint32_t
checksum(const uint8_t *p, uint32_t n)
{
    uint32_t h = 2166136261u; /* FNV-1a: enough to catch a corrupted byte */
    for (uint32_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 16777619u;
    return h;
}

static void
fill_payload(uint8_t *p, uint32_t n, uint32_t seed)
{
    uint32_t x = seed * 2654435761u + 1;
    for (uint32_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (uint8_t)x;
    }
}

static int
demo_dispatch(void *arg, struct msgr_msg *m)
{
    struct demo_state *ds = arg;
    uint32_t sum = m->data.len ? checksum(m->data.data, m->data.len) : 0;
    uint32_t want = 0;
    if (m->front.len >= 4)
        memcpy(&want, m->front.data, 4);
    if (sum != want)
        atomic_fetch_add(&ds->bad, 1);
    if (ds->is_server) {
        int n = atomic_fetch_add(&ds->received, 1);
        if (n < 4)
            printf("  server <- %s.%" PRId64 ": type 0x%x seq %" PRIu64
                   " tid %" PRIu64 " %u bytes, checksum %s\n",
                   msgr_entity_type_name(m->hdr.src.type), m->hdr.src.num,
                   m->hdr.type, m->hdr.seq, m->hdr.tid, m->data.len,
                   sum == want ? "ok" : "BAD");
        /* the reply carries no data, so its checksum field is 0 */
        struct msgr_msg *r = msgr_msg_new(MSGR_MSG_TEST + 1, 4, 0, 0);
        memset(r->front.data, 0, 4);
        r->hdr.tid = m->hdr.tid;
        if (msgr_conn_send_message(m->conn, r) < 0)
            msgr_msg_unref(r);
    } else {
        int n = atomic_fetch_add(&ds->replies, 1);
        if (n < 4)
            printf("  client <- %s.%" PRId64 ": reply seq %" PRIu64
                   " tid %" PRIu64 "\n",
                   msgr_entity_type_name(m->hdr.src.type), m->hdr.src.num,
                   m->hdr.seq, m->hdr.tid);
    }
    fflush(stdout);
    msgr_msg_unref(m);
    return 1;
}

static void
demo_connect(void *arg, struct msgr_conn *c)
{
    struct demo_state *ds = arg;
    atomic_fetch_add(&ds->connects, 1);
    printf("  client: session with %s ready (msgr2.%d, features 0x%" PRIx64
           ")\n", msgr_entity_type_name(msgr_conn_peer_type(c)),
           msgr_conn_rev(c), msgr_conn_features(c));
    fflush(stdout);
}

static void
demo_accept(void *arg, struct msgr_conn *c)
{
    struct demo_state *ds = arg;
    atomic_fetch_add(&ds->accepts, 1);
    struct msgr_addrvec v;
    msgr_conn_peer_addrs(c, &v);
    char buf[256];
    msgr_addrvec_format(&v, buf, sizeof(buf));
    printf("  server: accepted %s from %s\n",
           msgr_entity_type_name(msgr_conn_peer_type(c)), buf);
    fflush(stdout);
}

struct demo_wait {
    struct demo_state *cli;
    int count;
};

static int
demo_done(void *arg)
{
    struct demo_wait *w = arg;
    return atomic_load(&w->cli->replies) >= w->count;
}

static int
cmd_demo(int argc, char **argv)
{
    static const struct option opts[] = {
        {"count", required_argument, NULL, 'c'},
        {"size", required_argument, NULL, 's'},
        {"policy", required_argument, NULL, 'p'},
        {"stack", required_argument, NULL, 'k'},
        {"seed", required_argument, NULL, 'e'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    long count = 8, size = 4096;
    int use_sim = 0;
    unsigned long long seed = 1;
    enum msgr_policy_kind pk = MSGR_POLICY_LOSSLESS_PEER;
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            if (parse_long(optarg, 1, 10000000, &count) < 0)
                return usage_error("demo: bad --count '%s' (1..10000000)",
                                   optarg);
            break;
        case 's':
            if (parse_long(optarg, 0, 64L << 20, &size) < 0)
                return usage_error("demo: bad --size '%s' (0..64MiB)", optarg);
            break;
        case 'p':
            if (msgr_policy_parse(optarg, &pk) < 0 ||
                msgr_policy_make(pk, 0).server)
                return usage_error("demo: bad --policy '%s' (a client policy)",
                                   optarg);
            break;
        case 'k':
            if (strcmp(optarg, "sim") == 0)
                use_sim = 1;
            else if (strcmp(optarg, "posix") == 0)
                use_sim = 0;
            else
                return usage_error("demo: bad --stack '%s' (sim or posix)",
                                   optarg);
            break;
        case 'e': {
            char *end;
            errno = 0;
            seed = strtoull(optarg, &end, 0);
            if (errno || end == optarg || *end)
                return usage_error("demo: bad --seed '%s' (a number)", optarg);
            break;
        }
        case 'h':
            usage(stdout);
            return 0;
        default:
            return usage_error("demo: %s", "unknown option");
        }
    }
    if (optind != argc)
        return usage_error("demo: unexpected argument '%s'", argv[optind]);

    int err = 0;
    /* posix: one stack of two workers shared by both messengers; sim: a
     * world of two hosts, a stack on each, virtual time */
    struct sim_world *world = NULL;
    struct msgr_stack *st = NULL, *cst = NULL;
    struct msgr_tracer fp_tracer;
    if (use_sim) {
        world = sim_world_new(seed);
        struct sim_link_params lp = {.latency_ns = 100 * MSGR_NS_PER_US,
                                     .jitter_ns = 20 * MSGR_NS_PER_US};
        sim_link_default(world, &lp);
        struct sim_host *hs = sim_host_new(world, 1, "osd.0", 0x0a000001u);
        struct sim_host *hc = sim_host_new(world, 2, "client.1", 0x0a000002u);
        struct sim_stack_config ssc = {.nworkers = 1};
        st = sim_stack_new(world, hs, &ssc, &err);
        cst = st ? sim_stack_new(world, hc, &ssc, &err) : NULL;
        sim_fp_tracer(world, &fp_tracer);
    } else {
        struct msgr_stack_config sc = {.nworkers = 2};
        st = msgr_stack_create("posix", &sc, &err);
        cst = st;
        if (st)
            msgr_stack_ref(st);
    }
    if (!st || !cst) {
        fprintf(stderr, "%s: cannot create the %s stack: %s\n", prog,
                use_sim ? "sim" : "posix", msgr_strerror(err));
        msgr_stack_unref(st);
        if (world)
            sim_world_free(world);
        return EXIT_SOFTWARE;
    }
    struct msgr_config scfg = {.name = {MSGR_ENTITY_OSD, 0}, .stack = st,
                               .nonce = 1001};
    struct msgr_config ccfg = {.name = {MSGR_ENTITY_CLIENT, 1}, .stack = cst,
                               .nonce = 2002};
    struct msgr *srv = msgr_create(&scfg, &err);
    struct msgr *cli = srv ? msgr_create(&ccfg, &err) : NULL;
    if (!cli) {
        fprintf(stderr, "%s: cannot create a messenger: %s\n", prog,
                msgr_strerror(err));
        msgr_destroy(srv);
        msgr_stack_unref(st);
        msgr_stack_unref(cst);
        if (world)
            sim_world_free(world);
        return EXIT_SOFTWARE;
    }
    if (world) {
        msgr_set_tracer(srv, &fp_tracer);
        msgr_set_tracer(cli, &fp_tracer);
    }
    struct msgr_policy cp = msgr_policy_make(pk, 0);
    struct msgr_policy sp = msgr_policy_make(
        cp.lossy ? MSGR_POLICY_STATELESS_SERVER
                 : (pk == MSGR_POLICY_LOSSLESS_CLIENT
                        ? MSGR_POLICY_STATEFUL_SERVER
                        : pk),
        0);
    msgr_set_policy(srv, MSGR_ENTITY_CLIENT, &sp);
    msgr_set_policy(cli, MSGR_ENTITY_OSD, &cp);
    struct msgr_addr bind_addr;
    msgr_addr_parse(world ? "v2:10.0.0.1:0" : "v2:127.0.0.1:0", &bind_addr);
    err = msgr_bind(srv, &bind_addr);
    if (err < 0) {
        fprintf(stderr, "%s: bind: %s\n", prog, msgr_strerror(err));
        msgr_destroy(cli);
        msgr_destroy(srv);
        msgr_stack_unref(st);
        msgr_stack_unref(cst);
        if (world)
            sim_world_free(world);
        return EXIT_SOFTWARE;
    }
    struct demo_state sds = {.m = srv, .is_server = 1};
    struct demo_state cds = {.m = cli};
    struct msgr_dispatcher sd = {.arg = &sds,
                                 .ms_dispatch = demo_dispatch,
                                 .ms_handle_accept = demo_accept};
    struct msgr_dispatcher cd = {.arg = &cds,
                                 .ms_dispatch = demo_dispatch,
                                 .ms_handle_connect = demo_connect};
    msgr_set_log(srv, log_level, NULL, NULL);
    msgr_set_log(cli, log_level, NULL, NULL);
    msgr_start(srv);
    msgr_add_dispatcher(srv, &sd);
    msgr_start(cli);
    msgr_add_dispatcher(cli, &cd);

    struct msgr_addrvec saddrs;
    msgr_get_myaddrs(srv, &saddrs);
    char abuf[256];
    msgr_addrvec_format(&saddrs, abuf, sizeof(abuf));
    if (world)
        printf("seed: %llu (simulated stack, virtual time)\n", seed);
    printf("msgrsim demo: osd.0 listens on %s; client.1 (%s) sends %ld "
           "messages of %ld bytes\n",
           abuf, msgr_policy_name(pk), count, size);
    fflush(stdout);
    msgr_time_ns t0 = st->ops->now_ns(st);
    for (long i = 0; i < count; i++) {
        struct msgr_msg *m = msgr_msg_new(MSGR_MSG_TEST, 4, 0, (uint32_t)size);
        if (size)
            fill_payload(m->data.data, (uint32_t)size, (uint32_t)i);
        uint32_t sum = size ? checksum(m->data.data, (uint32_t)size) : 0;
        memcpy(m->front.data, &sum, 4);
        m->hdr.tid = (uint64_t)i + 1;
        err = msgr_send_message(cli, m, MSGR_ENTITY_OSD, &saddrs);
        if (err < 0) {
            fprintf(stderr, "%s: send: %s\n", prog, msgr_strerror(err));
            msgr_msg_unref(m);
            break;
        }
    }
    struct demo_wait w = {.cli = &cds, .count = (int)count};
    int done = st->ops->wait_until(st, demo_done, &w, 30 * MSGR_NS_PER_S);
    msgr_time_ns t1 = st->ops->now_ns(st);
    struct msgr_perf cperf, sperf;
    msgr_get_perf(cli, &cperf);
    if (world) {
        /* separate stacks: add the server's counters */
        msgr_get_perf(srv, &sperf);
        cperf.msgs_out += sperf.msgs_out;
        cperf.msgs_in += sperf.msgs_in;
        cperf.bytes_out += sperf.bytes_out;
        cperf.bytes_in += sperf.bytes_in;
    }
    int bad = atomic_load(&sds.bad) + atomic_load(&cds.bad);
    printf("summary: %d/%ld requests delivered, %d/%ld replies, %d checksum "
           "errors, %.1f ms%s\n",
           atomic_load(&sds.received), count, atomic_load(&cds.replies), count,
           bad, (double)(t1 - t0) / 1e6, world ? " of virtual time" : "");
    printf("stack counters (both messengers): %" PRIu64 " msgs out, %" PRIu64
           " msgs in, %" PRIu64 " bytes out, %" PRIu64 " bytes in\n",
           cperf.msgs_out, cperf.msgs_in, cperf.bytes_out, cperf.bytes_in);
    msgr_shutdown(cli);
    msgr_shutdown(srv);
    msgr_wait(cli);
    msgr_wait(srv);
    msgr_destroy(cli);
    msgr_destroy(srv);
    msgr_stack_unref(st);
    msgr_stack_unref(cst);
    if (world) {
        /* the same seed and build print the same value, on any machine */
        printf("fingerprint: %016llx\n",
               (unsigned long long)sim_fingerprint(world));
        sim_world_free(world);
    }
    if (!done || bad) {
        fprintf(stderr, "%s: demo FAILED: %s\n", prog,
                !done ? "not every reply arrived within 30 s"
                      : "payload checksum mismatch");
        return 1;
    }
    printf("ok\n");
    return 0;
}

static int
cmd_check(int argc, char **argv)
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
            usage(stdout);
            return 0;
        default:
            return usage_error("check: %s", "unknown option");
        }
    }
    if (optind >= argc)
        return usage_error("check: %s", "expected one or more FILEs");
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
            fprintf(stderr, "%s: %s: %s\n", prog, path, strerror(-rc));
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
static char *
read_file(const char *path, size_t *len)
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
static int
parse_size(const char *s, uint64_t *out)
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

static int
cmd_run(int argc, char **argv)
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
    o.command = prog;
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "s:qh", opts, NULL)) != -1) {
        switch (ch) {
        case 's': {
            char *end;
            errno = 0;
            unsigned long long v = strtoull(optarg, &end, 0);
            if (errno || *end || !*optarg || optarg[0] == '-')
                return usage_error("run: bad --seed '%s' (a number)", optarg);
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
                return usage_error("run: bad --stack '%s' (sim or posix)",
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
                return usage_error("run: bad --trace-detail '%s' (full or "
                                   "sessions)", optarg);
            break;
        case 'c':
            capture = true;
            break;
        case 'C':
            if (parse_size(optarg, &capture_max) < 0)
                return usage_error("run: bad --capture-max '%s' (bytes, "
                                   "e.g. 64MiB)",
                                   optarg);
            capture = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            return usage_error("run: %s", "unknown option");
        }
    }
    if (optind + 1 != argc)
        return usage_error("run: %s", "expected one FILE.scn");
    if (capture && !trace_path)
        return usage_error("run: %s", "--capture needs --trace OUT.db");
    const char *path = argv[optind];
    size_t len = 0;
    char *text = read_file(path, &len);
    if (!text) {
        fprintf(stderr, "%s: %s: %s\n", prog, path, strerror(errno));
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
            fprintf(stderr, "%s: %s: %s\n", prog, path, strerror(-rc));
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
            fprintf(stderr, "%s: cannot write the trace: %s\n", prog, terr);
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
            fprintf(stderr, "%s: the trace is incomplete: %s\n", prog, terr);
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
static int
parse_time_ns(const char *s, int64_t *out)
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
                prog, run->id);
        return EXIT_DATAERR;
    }
    if (scn_compile(path, run->scenario_text, len, &plan, &d) < 0) {
        scn_diags_print(&d, path, stderr);
        fprintf(stderr, "%s: the stored scenario no longer compiles with this "
                "build\n", prog);
        return EXIT_DATAERR;
    }
    char tmp[] = "/tmp/msgrsim-replay-XXXXXX";
    int fd = mkstemp(tmp);
    if (fd < 0) {
        fprintf(stderr, "%s: cannot create a scratch file: %s\n", prog,
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
        fprintf(stderr, "%s: %s\n", prog, terr);
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

static int
cmd_replay(int argc, char **argv)
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
            if (parse_long(optarg, 1, 1L << 40, &v) < 0)
                return usage_error("replay: bad --run '%s' (a run id)",
                                   optarg);
            run_id = v;
            break;
        }
        case 'e':
            events = 1;
            break;
        case 'f':
            if (parse_time_ns(optarg, &f.from_ns) < 0)
                return usage_error("replay: bad --from '%s' (e.g. 1.5s)",
                                   optarg);
            break;
        case 'u':
            if (parse_time_ns(optarg, &f.until_ns) < 0)
                return usage_error("replay: bad --until '%s' (e.g. 2s)",
                                   optarg);
            break;
        case 'n':
            f.node = optarg;
            break;
        case 'c':
            if (trace_conn_spec_parse(optarg, ca, sizeof(ca), cb,
                                      sizeof(cb)) < 0)
                return usage_error("replay: bad --conn '%s' (e.g. "
                                   "osd.0-osd.1)", optarg);
            f.conn_a = ca;
            f.conn_b = cb;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            return usage_error("replay: %s", "unknown option");
        }
    }
    if (optind + 1 != argc)
        return usage_error("replay: %s", "expected one TRACE.db");
    if (!events && (f.node || f.conn_a || f.from_ns != INT64_MIN ||
                    f.until_ns != INT64_MAX))
        return usage_error("replay: %s",
                           "--from/--until/--node/--conn go with --events");
    const char *path = argv[optind];
    struct trace_open_error oe;
    struct trace_db *db = trace_open(path, TRACE_OPEN_READONLY, &oe);
    if (!db) {
        fprintf(stderr, "%s: %s\n", prog, oe.msg);
        return EXIT_NOINPUT;
    }
    struct trace_run run;
    int e;
    if (!run_id) {
        struct trace_run *runs = NULL;
        size_t n = 0;
        e = trace_runs_list(db, &runs, &n);
        if (e < 0 || n == 0) {
            fprintf(stderr, "%s: %s holds no run\n", prog, path);
            trace_runs_free(runs, n);
            trace_close(db);
            return EXIT_DATAERR;
        }
        run_id = runs[n - 1].id;
        trace_runs_free(runs, n);
    }
    e = trace_run_get(db, run_id, &run);
    if (e < 0) {
        fprintf(stderr, "%s: %s: no run %" PRId64 " (msgrsim replay %s lists "
                "the latest)\n", prog, path, run_id, path);
        trace_close(db);
        return EXIT_DATAERR;
    }
    int code = 0;
    if (events) {
        struct trace_cursor *cur = NULL;
        e = trace_cursor_open(db, run_id, &f, &cur);
        if (e < 0) {
            fprintf(stderr, "%s: %s\n", prog, trace_errmsg(db));
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

/* The id of the file's latest run; 0 when it holds none. */
static int64_t
latest_run(struct trace_db *db)
{
    struct trace_run *runs = NULL;
    size_t n = 0;
    int64_t id = 0;
    if (trace_runs_list(db, &runs, &n) == 0 && n)
        id = runs[n - 1].id;
    trace_runs_free(runs, n);
    return id;
}

static int
cmd_pcap(int argc, char **argv)
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
            if (parse_long(optarg, 1, 1L << 40, &v) < 0)
                return usage_error("pcap: bad --run '%s' (a run id)", optarg);
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
            usage(stdout);
            return 0;
        default:
            return usage_error("pcap: %s", "unknown option");
        }
    }
    if (optind + 1 != argc || !out)
        return usage_error("pcap: %s", "expected TRACE.db -o OUT.pcap");
    const char *path = argv[optind];
    struct trace_open_error oe;
    struct trace_db *db = trace_open(path, TRACE_OPEN_READONLY, &oe);
    if (!db) {
        fprintf(stderr, "%s: %s\n", prog, oe.msg);
        return EXIT_NOINPUT;
    }
    if (!run_id)
        run_id = latest_run(db);
    struct report_pcap_stats st;
    char err[512];
    int e = report_pcap_export(db, run_id, out, &po, &st, err, sizeof(err));
    trace_close(db);
    if (e < 0) {
        fprintf(stderr, "%s: %s: %s\n", prog, path, err);
        return e == -ENOENT ? EXIT_DATAERR : 74; /* EX_IOERR */
    }
    printf("pcap: %s (run %" PRId64 ": %" PRIu64 " packets, %" PRIu64
           " dropped by the link%s, %" PRIu64 " injected RSTs, %" PRIu64
           " without payload)\n",
           out, run_id, st.packets, st.dropped,
           po.omit_dropped ? " and left out" : "", st.injected, st.truncated);
    return 0;
}

static int
cmd_report(int argc, char **argv)
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
            if (parse_long(optarg, 1, 1L << 40, &v) < 0)
                return usage_error("report: bad --run '%s' (a run id)",
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
                return usage_error("report: bad --format '%s' (html, svg, "
                                   "dot, perfetto or pcap)", optarg);
            break;
        case 'p':
            if (trace_conn_spec_parse(optarg, pa, sizeof(pa), pb,
                                      sizeof(pb)) < 0)
                return usage_error("report: bad --pair '%s' (e.g. "
                                   "osd.0-osd.1)", optarg);
            ro.pair_a = pa;
            ro.pair_b = pb;
            break;
        case 'f':
            if (parse_time_ns(optarg, &ro.from_ns) < 0)
                return usage_error("report: bad --from '%s' (e.g. 1.5s)",
                                   optarg);
            break;
        case 'u':
            if (parse_time_ns(optarg, &ro.until_ns) < 0)
                return usage_error("report: bad --until '%s' (e.g. 2s)",
                                   optarg);
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            return usage_error("report: %s", "unknown option");
        }
    }
    if (optind + 1 != argc)
        return usage_error("report: %s", "expected one TRACE.db");
    if (!dir)
        return usage_error("report: %s", "expected -o DIR");
    const char *path = argv[optind];
    struct trace_open_error oe;
    struct trace_db *db = trace_open(path, TRACE_OPEN_READONLY, &oe);
    if (!db) {
        fprintf(stderr, "%s: %s\n", prog, oe.msg);
        return EXIT_NOINPUT;
    }
    char err[512];
    const char *written = NULL;
    int e = report_write(db, &ro, dir, &written, err, sizeof(err));
    trace_close(db);
    if (e < 0) {
        fprintf(stderr, "%s: report: %s\n", prog, err);
        /* 69: EX_UNAVAILABLE, a format this build lacks */
        return strstr(err, "not available") ? 69 : EXIT_SOFTWARE;
    }
    printf("report: %s\n", written);
    return 0;
}

int
main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    const char *dbg = getenv("MSGRSIM_DEBUG");
    if (dbg && *dbg && strcmp(dbg, "0") != 0)
        log_level = MSGR_LOG_DEBUG;
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "--version")) {
        printf("msgrsim 0.1.0\n");
        return 0;
    }
    if (!strcmp(cmd, "demo"))
        return cmd_demo(argc - 1, argv + 1);
    if (!strcmp(cmd, "probe"))
        return cmd_probe(argc - 1, argv + 1);
    if (!strcmp(cmd, "check"))
        return cmd_check(argc - 1, argv + 1);
    if (!strcmp(cmd, "run"))
        return cmd_run(argc - 1, argv + 1);
    if (!strcmp(cmd, "replay"))
        return cmd_replay(argc - 1, argv + 1);
    if (!strcmp(cmd, "pcap"))
        return cmd_pcap(argc - 1, argv + 1);
    if (!strcmp(cmd, "report"))
        return cmd_report(argc - 1, argv + 1);
    return usage_error("unknown command '%s'", cmd);
}
