/*
 * msgrsim: the command-line front end.
 *
 *   msgrsim demo [--count N] [--size BYTES] [--policy NAME]
 *   msgrsim probe [--rev0] [--timeout SECONDS] ADDR
 *   msgrsim check [-q] FILE...                      (cmd_scenario.c)
 *   msgrsim run FILE.scn [--trace OUT.db [--capture]] (cmd_scenario.c)
 *   msgrsim replay TRACE.db [--run ID] [--events ...] (cmd_scenario.c)
 *   msgrsim report TRACE.db -o DIR [--format ...]     (cmd_report.c)
 *   msgrsim pcap TRACE.db -o OUT.pcap [--run ID]      (cmd_report.c)
 *
 * Exit codes: 0 success, 1 the system under test failed (no MON_MAP, a
 * message lost), 2 cli_usage error, 65 a scenario file is invalid, 66 an input
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

#include "cli.h"
#include "trace/trace.h"
#include "msgr/msgr.h"
#include "sim/sim.h"

const char *cli_prog = "msgrsim";
/* MSGRSIM_DEBUG=1 in the environment: the messengers log at DEBUG */
static int log_level = MSGR_LOG_WARN;

void
cli_usage(FILE *f)
{
    fprintf(f,
            "cli_usage: %s <command> [options]\n"
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
            cli_prog);
}

int
cli_usage_error(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", cli_prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry '%s --help' for more information.\n", cli_prog);
    return EXIT_USAGE;
}

int
cli_parse_long(const char *s, long min, long max, long *out)
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
            if (cli_parse_long(optarg, 1, 3600, &timeout_s) < 0)
                return cli_usage_error("probe: bad --timeout '%s' (seconds, 1..3600)",
                                   optarg);
            break;
        case 'h':
            cli_usage(stdout);
            return 0;
        default:
            return cli_usage_error("probe: %s", "unknown option");
        }
    }
    if (optind != argc - 1)
        return cli_usage_error("probe: %s", "expected one ADDR, e.g. v2:127.0.0.1:3300");
    struct msgr_addr target;
    if (msgr_addr_parse(argv[optind], &target) < 0)
        return cli_usage_error("probe: bad address '%s' (expected e.g. "
                           "v2:127.0.0.1:3300)", argv[optind]);
    if (target.type != MSGR_ADDR_MSGR2)
        return cli_usage_error("probe: '%s' is not a msgr2 (v2:) address",
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
        fprintf(stderr, "%s: cannot create the posix stack: %s\n", cli_prog,
                msgr_strerror(err));
        return EXIT_SOFTWARE;
    }
    cfg.stack = st;
    /* a nonce the monitor can tell apart from other clients */
    cfg.nonce = (uint32_t)st->ops->random_u64(st);
    struct msgr *m = msgr_create(&cfg, &err);
    if (!m) {
        fprintf(stderr, "%s: cannot create the messenger: %s\n", cli_prog,
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
        fprintf(stderr, "%s: send failed: %s\n", cli_prog, msgr_strerror(err));
        msgr_msg_unref(msg);
    }
    st->ops->wait_until(st, probe_done, &ps,
                        (msgr_time_ns)timeout_s * MSGR_NS_PER_S);
    int ok = atomic_load(&ps.got_monmap);
    if (!ok) {
        if (atomic_load(&ps.reset))
            fprintf(stderr, "%s: the connection to %s was reset before a "
                    "MON_MAP arrived\n", cli_prog, abuf);
        else if (atomic_load(&ps.refused))
            fprintf(stderr, "%s: %s refused the connection: is a monitor "
                    "listening there?\n", cli_prog, abuf);
        else if (!atomic_load(&ps.connected))
            fprintf(stderr, "%s: timed out after %lds: no msgr2 session with "
                    "%s (is it a Ceph monitor?)\n", cli_prog, timeout_s, abuf);
        else
            fprintf(stderr, "%s: timed out after %lds waiting for MON_MAP\n",
                    cli_prog, timeout_s);
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
            if (cli_parse_long(optarg, 1, 10000000, &count) < 0)
                return cli_usage_error("demo: bad --count '%s' (1..10000000)",
                                   optarg);
            break;
        case 's':
            if (cli_parse_long(optarg, 0, 64L << 20, &size) < 0)
                return cli_usage_error("demo: bad --size '%s' (0..64MiB)", optarg);
            break;
        case 'p':
            if (msgr_policy_parse(optarg, &pk) < 0 ||
                msgr_policy_make(pk, 0).server)
                return cli_usage_error("demo: bad --policy '%s' (a client policy)",
                                   optarg);
            break;
        case 'k':
            if (strcmp(optarg, "sim") == 0)
                use_sim = 1;
            else if (strcmp(optarg, "posix") == 0)
                use_sim = 0;
            else
                return cli_usage_error("demo: bad --stack '%s' (sim or posix)",
                                   optarg);
            break;
        case 'e': {
            char *end;
            errno = 0;
            seed = strtoull(optarg, &end, 0);
            if (errno || end == optarg || *end)
                return cli_usage_error("demo: bad --seed '%s' (a number)", optarg);
            break;
        }
        case 'h':
            cli_usage(stdout);
            return 0;
        default:
            return cli_usage_error("demo: %s", "unknown option");
        }
    }
    if (optind != argc)
        return cli_usage_error("demo: unexpected argument '%s'", argv[optind]);

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
        fprintf(stderr, "%s: cannot create the %s stack: %s\n", cli_prog,
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
        fprintf(stderr, "%s: cannot create a messenger: %s\n", cli_prog,
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
        fprintf(stderr, "%s: bind: %s\n", cli_prog, msgr_strerror(err));
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
            fprintf(stderr, "%s: send: %s\n", cli_prog, msgr_strerror(err));
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
        fprintf(stderr, "%s: demo FAILED: %s\n", cli_prog,
                !done ? "not every reply arrived within 30 s"
                      : "payload checksum mismatch");
        return 1;
    }
    printf("ok\n");
    return 0;
}

int
cli_open_trace_run(const char *cmd, const char *path, int64_t *run,
                   struct trace_db **db)
{
    struct trace_open_error oe;
    *db = trace_open(path, TRACE_OPEN_READONLY, &oe);
    if (!*db) {
        fprintf(stderr, "%s: %s\n", cli_prog, oe.msg);
        return EXIT_NOINPUT;
    }
    struct trace_run r;
    if (*run == 0 && trace_run_latest(*db, run) < 0) {
        fprintf(stderr, "%s: %s: %s holds no run\n", cli_prog, cmd, path);
    } else if (trace_run_get(*db, *run, &r) < 0) {
        fprintf(stderr, "%s: %s: %s has no run %" PRId64 " (see its runs: "
                "sqlite3 %s 'select id, scenario_path, verdict from run')\n",
                cli_prog, cmd, path, *run, path);
    } else {
        trace_run_fini(&r);
        return 0;
    }
    trace_close(*db);
    *db = NULL;
    return EXIT_DATAERR;
}

int
main(int argc, char **argv)
{
    if (argc < 2) {
        cli_usage(stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    const char *dbg = getenv("MSGRSIM_DEBUG");
    if (dbg && *dbg && strcmp(dbg, "0") != 0)
        log_level = MSGR_LOG_DEBUG;
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
        cli_usage(stdout);
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
        return cli_cmd_check(argc - 1, argv + 1);
    if (!strcmp(cmd, "run"))
        return cli_cmd_run(argc - 1, argv + 1);
    if (!strcmp(cmd, "replay"))
        return cli_cmd_replay(argc - 1, argv + 1);
    if (!strcmp(cmd, "pcap"))
        return cli_cmd_pcap(argc - 1, argv + 1);
    if (!strcmp(cmd, "report"))
        return cli_cmd_report(argc - 1, argv + 1);
    return cli_usage_error("unknown command '%s'", cmd);
}
