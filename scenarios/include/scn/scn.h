/*
 * scn: the scenario language front end (../shared/SCENARIO-LANGUAGE.md).
 *
 * Text in, plan out: a lexer, a recursive-descent parser and a checker
 * turn a .scn file into a `struct scn_plan`, or into a list of diagnostics
 * in compiler format (`path:line:col: error: MESSAGE`). Pure parsing: no
 * clock, no randomness, no sockets; msgr's public headers only for the
 * policy and entity-type enums, so a runner hands them to msgr as they are.
 *
 * Everything in a plan is an integer: times in nanoseconds, sizes in
 * bytes, probabilities in parts per million (1% = 10000), message rates in
 * thousandths of a message per second, bandwidth in bits per second.
 * Every item keeps its source location (line and column, 1-based).
 *
 * Node sets are resolved against the declared nodes: `struct scn_set`
 * holds indices into plan->nodes in ascending order (declaration order,
 * the deterministic order a runner iterates in), without duplicates.
 *
 * The plan owns all its memory; scn_plan_free releases it in one go.
 */
#ifndef SCN_SCN_H
#define SCN_SCN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "msgr/msgr.h" /* enum msgr_policy_kind, enum msgr_entity_type */

#define SCN_NS_PER_US 1000ull
#define SCN_NS_PER_MS 1000000ull
#define SCN_NS_PER_S  1000000000ull
#define SCN_PPM       1000000u /* probability 1 (100%) */
#define SCN_TIME_END  UINT64_MAX /* "until the end of the run" */

/* Defaults the language page fixes (a runner applies them, not the parser,
 * where they depend on the stack: workers). */
#define SCN_DEFAULT_SEED        1ull
#define SCN_DEFAULT_DURATION_NS (60ull * SCN_NS_PER_S)
#define SCN_DEFAULT_LATENCY_NS  (100ull * SCN_NS_PER_US)
#define SCN_DEFAULT_SEND_SIZE   4096ull
#define SCN_DEFAULT_PRIORITY    127 /* MSGR_PRIO_DEFAULT */

struct scn_loc {
    uint32_t line, col; /* 1-based; col counts bytes */
};

/* A resolved node set: indices into plan->nodes, ascending, unique.
 * text is the set as written (for reports); n == 0 only where the set is
 * optional and was absent (see each use). */
struct scn_set {
    struct scn_loc loc;
    const char *text;
    uint32_t n;
    const uint32_t *idx;
};

/* ------------------------------------------------------------ header */

enum scn_stack {
    SCN_STACK_SIM,
    SCN_STACK_POSIX,
};

struct scn_node {
    struct scn_loc loc;
    const char *name;           /* "osd.3", "client.admin" */
    uint8_t type;               /* enum msgr_entity_type */
    const char *id;             /* "3", "admin" */
    int64_t num;                /* numeric id, or -1 when the id is a word */
    enum msgr_policy_kind policy;
    const char *addr;           /* `addr ADDR` as written, or NULL */
    uint32_t workers;           /* 0: the scenario's (or the stack's) default */
};

/* A `link` statement's options; has_* say which were given. */
struct scn_link_opts {
    bool has_latency, has_jitter, has_bandwidth, has_loss;
    uint64_t latency_ns, jitter_ns;
    uint64_t bandwidth_bps;     /* bits per second */
    uint32_t loss_ppm;
};

/* `link default OPTS` (is_default, a and b empty) or `link A <-> B OPTS`
 * (both_ways) / `link A -> B OPTS`. Later statements override earlier ones
 * option by option, in plan order. */
struct scn_link {
    struct scn_loc loc;
    bool is_default, both_ways;
    struct scn_set a, b;
    struct scn_link_opts opts;
};

/* `policy SET -> PEERS POLICY`: each node of `nodes` uses `policy` for
 * peers of the entity types in peer_types (msgr_set_policy(peer_type)). */
struct scn_policy_override {
    struct scn_loc loc;
    struct scn_set nodes, peers;
    uint32_t peer_types;        /* bit (1 << t) per enum msgr_entity_type t */
    enum msgr_policy_kind policy;
};

/* clang-format off */
#define SCN_CONFIG_KEYS(X)                                        \
    X(KEEPALIVE_INTERVAL,       "keepalive_interval",       DURATION) \
    X(CONNECTION_IDLE_TIMEOUT,  "connection_idle_timeout",  DURATION) \
    X(CONNECTION_READY_TIMEOUT, "connection_ready_timeout", DURATION) \
    X(INITIAL_BACKOFF,          "initial_backoff",          DURATION) \
    X(MAX_BACKOFF,              "max_backoff",              DURATION) \
    X(THROTTLE_BYTES,           "throttle_bytes",           SIZE)     \
    X(THROTTLE_MESSAGES,        "throttle_messages",        COUNT)    \
    X(CRC,                      "crc",                      BOOL)     \
    X(INJECT_SOCKET_FAILURES,   "inject_socket_failures",   COUNT)    \
    X(INJECT_INTERNAL_DELAYS,   "inject_internal_delays",   DURATION) \
    X(DISPATCH_THROTTLE_BYTES,  "dispatch_throttle_bytes",  SIZE)
/* clang-format on */

enum scn_config_key {
#define SCN_X(e, s, t) SCN_CONFIG_##e,
    SCN_CONFIG_KEYS(SCN_X)
#undef SCN_X
    SCN_CONFIG_COUNT_
};

enum scn_value_type {
    SCN_VALUE_DURATION, /* value in ns */
    SCN_VALUE_SIZE,     /* value in bytes */
    SCN_VALUE_COUNT,    /* a plain number */
    SCN_VALUE_BOOL,     /* 0 (off) or 1 (on) */
};

struct scn_config {
    struct scn_loc loc;
    struct scn_set nodes;
    enum scn_config_key key;
    uint64_t value;             /* in the unit of scn_config_type(key) */
};

/* ---------------------------------------------------------- breakpoints */

/* clang-format off */
#define SCN_STEPS(X)                                                  \
    X(HELLO, "hello")                     X(AUTH_REQUEST, "auth_request") \
    X(AUTH_BAD_METHOD, "auth_bad_method") X(AUTH_REPLY_MORE, "auth_reply_more") \
    X(AUTH_REQUEST_MORE, "auth_request_more") X(AUTH_DONE, "auth_done") \
    X(AUTH_SIGNATURE, "auth_signature")   X(CLIENT_IDENT, "client_ident") \
    X(SERVER_IDENT, "server_ident")                                    \
    X(IDENT_MISSING_FEATURES, "ident_missing_features")                \
    X(SESSION_RECONNECT, "session_reconnect")                          \
    X(SESSION_RESET, "session_reset")     X(SESSION_RETRY, "session_retry") \
    X(SESSION_RETRY_GLOBAL, "session_retry_global")                    \
    X(SESSION_RECONNECT_OK, "session_reconnect_ok")                    \
    X(WAIT, "wait")                       X(MESSAGE, "message")        \
    X(KEEPALIVE2, "keepalive2")           X(KEEPALIVE2_ACK, "keepalive2_ack") \
    X(ACK, "ack")                                                      \
    X(BANNER, "banner") X(CONNECTING, "connecting") X(ACCEPTED, "accepted")
/* clang-format on */

/* Frame tags first (SCN_STEP_ACK is the last frame tag), then the socket
 * steps; scn_step_is_frame tells them apart. */
enum scn_step {
#define SCN_X(e, s) SCN_STEP_##e,
    SCN_STEPS(SCN_X)
#undef SCN_X
    SCN_STEP_COUNT_
};

enum scn_dir {
    SCN_DIR_DEFAULT, /* the page's rule: `write` for frames the node sends
                        first in the handshake, `read` otherwise; the runner
                        decides per connection (it knows who connected) */
    SCN_DIR_READ,
    SCN_DIR_WRITE,
};

enum scn_break_action {
    SCN_BREAK_FAULT,
    SCN_BREAK_STOP,
    SCN_BREAK_BLOCK,
    SCN_BREAK_STALL,
};

/* `break NODE [-> PEER] at STEP [read|write] [round N] ACTION` and
 * `release NODE [-> PEER] at STEP` (action and round unused). peer.n == 0:
 * all of NODE's connections. */
struct scn_break {
    struct scn_loc loc;         /* the `break` / `release` keyword */
    struct scn_set node, peer;
    enum scn_step step;
    enum scn_dir dir;
    uint32_t round;             /* >= 1 */
    enum scn_break_action action;
};

/* ------------------------------------------------------------- actions */

enum scn_fault_kind {
    SCN_FAULT_NONE, /* heal: any kind */
    SCN_FAULT_DROP,
    SCN_FAULT_BLACKHOLE,
    SCN_FAULT_DELAY,
    SCN_FAULT_BANDWIDTH,
    SCN_FAULT_PARTITION,
    SCN_FAULT_RESET,
    SCN_FAULT_CORRUPT,
    SCN_FAULT_KILL,
    SCN_FAULT_CRASH,
    SCN_FAULT_PAUSE,
    SCN_FAULT_COUNT_
};

/* clang-format off */
#define SCN_ACTIONS(X)                                           \
    X(START, "start")       X(BIND, "bind")                      \
    X(CLIENT_BIND, "client_bind") X(CONNECT, "connect")          \
    X(SEND, "send")         X(KEEPALIVE, "keepalive")            \
    X(MARK_DOWN, "mark_down") X(MARK_DOWN_ALL, "mark_down_all")  \
    X(SHUTDOWN, "shutdown") X(RESTART, "restart")                \
    X(REBIND, "rebind")                                          \
    X(DROP, "drop")         X(BLACKHOLE, "blackhole")            \
    X(DELAY, "delay")       X(BANDWIDTH, "bandwidth")            \
    X(PARTITION, "partition") X(RESET, "reset")                  \
    X(CORRUPT, "corrupt")   X(KILL, "kill")                      \
    X(CRASH, "crash")       X(PAUSE, "pause")                    \
    X(HEAL, "heal")         X(CHAOS, "chaos")                    \
    X(BREAK, "break")       X(RELEASE, "release")
/* clang-format on */

enum scn_action_kind {
#define SCN_X(e, s) SCN_ACT_##e,
    SCN_ACTIONS(SCN_X)
#undef SCN_X
    SCN_ACT_COUNT_
};

/*
 * One action. Which fields mean something, by kind:
 *
 *   START, SHUTDOWN, REBIND, KILL, CRASH   subject
 *   RESTART       subject, u.restart.same_nonce
 *   PAUSE         subject, for_ns (> 0, required)
 *   BIND, CLIENT_BIND  subject, u.bind.addr (as written, syntax checked)
 *   CONNECT, KEEPALIVE, MARK_DOWN   subject -> peer (every member to every
 *                 member; a node never acts on itself)
 *   MARK_DOWN_ALL subject
 *   SEND          subject -> peer, u.send
 *   DROP          subject -> peer, both_ways, prob_ppm (the P), for_ns
 *   BLACKHOLE     subject -> peer, both_ways, u.blackhole, prob_ppm, for_ns
 *   DELAY         subject -> peer, both_ways, u.delay, for_ns
 *   BANDWIDTH     subject -> peer, both_ways, u.bandwidth, for_ns
 *   PARTITION     `SET | SET`: subject and peer, both_ways = true;
 *                 `A -> B` / `A <-> B`: subject, peer, both_ways; for_ns
 *   RESET         subject <-> peer (both_ways as written), prob_ppm
 *                 (has_prob false: reset once now), for_ns
 *   CORRUPT       subject -> peer, both_ways, prob_ppm (required), for_ns
 *   HEAL          u.heal.kind (SCN_FAULT_NONE: every kind); subject.n == 0:
 *                 every fault, else the faults touching subject
 *   CHAOS         subject, u.chaos
 *   BREAK         u.brk (the breakpoint is armed when the action runs)
 *   RELEASE       u.brk (node, peer, step, dir)
 *
 * for_ns == 0: the fault lasts until healed (or the end of the run).
 */
struct scn_action {
    struct scn_loc loc;
    enum scn_action_kind kind;
    struct scn_set subject, peer;
    bool both_ways;
    bool has_prob;
    uint32_t prob_ppm;
    uint64_t for_ns;
    union {
        struct {
            const char *addr;
        } bind;
        struct {
            uint64_t count;          /* messages per (sender, receiver); default 1 */
            uint64_t size_bytes;     /* payload; default 4096 */
            uint64_t every_ns;       /* 0 with rate_mps 0: all at once */
            uint64_t rate_mps;       /* thousandths of a message per second */
            uint8_t priority;        /* default 127 */
        } send;
        struct {
            bool same_nonce;
        } restart;
        struct {
            bool has_type;
            uint32_t msg_type;       /* `type T`: number, decimal or 0x hex */
        } blackhole;
        struct {
            uint64_t delay_ns, jitter_ns;
        } delay;
        struct {
            uint64_t bps;
        } bandwidth;
        struct {
            enum scn_fault_kind kind;
        } heal;
        struct {
            uint32_t kinds;          /* bit (1 << enum scn_fault_kind) */
            uint64_t rate_mps;       /* faults per second, in thousandths */
            uint64_t from_ns;        /* default 0 */
            uint64_t until_ns;       /* default SCN_TIME_END */
        } chaos;
        struct scn_break brk;
    } u;
};

/*
 * A timeline entry. `at TIME ACTION`: t_ns, period_ns = 0. `every T [from
 * T1] [until T2] ACTION`: kept as one descriptor (not expanded): it runs at
 * t_ns (= T1, default 0), then every period_ns while the time is <=
 * until_ns (T2, default SCN_TIME_END = the end of the run). The runner
 * re-schedules it itself; its later runs order among actions of the same
 * time by `seq`, as the first one does.
 *
 * plan->timeline is sorted by (t_ns, seq); seq is the statement's position
 * in the file, so actions at the same time run in file order.
 */
struct scn_timed {
    struct scn_loc loc;         /* the `at` / `every` keyword */
    uint64_t t_ns;
    uint64_t period_ns;
    uint64_t until_ns;
    uint32_t seq;
    struct scn_action act;
};

/* ------------------------------------------------------------ triggers */

enum scn_dispatch_event {
    SCN_EV_CONNECT,
    SCN_EV_ACCEPT,
    SCN_EV_RESET,
    SCN_EV_REMOTE_RESET,
    SCN_EV_REFUSED,
};

/* Connection states of `expect state` and `on ... state`. */
enum scn_conn_state {
    SCN_STATE_OPEN,
    SCN_STATE_CONNECTING,
    SCN_STATE_STANDBY,
    SCN_STATE_CLOSED,
    SCN_STATE_NONE,
};

enum scn_trigger_kind {
    SCN_TRIG_DISPATCH,   /* NODE KIND [from PEER] */
    SCN_TRIG_STATE,      /* NODE -> PEER state STATE */
    SCN_TRIG_DELIVERED,  /* NODE delivered N from PEER */
    SCN_TRIG_BREAKPOINT, /* NODE breakpoint STEP */
};

/* `on [every] EVENT ACTION`, armed from the start wherever it stands. Sets
 * fire on any member; peer.n == 0 where the peer is optional and absent. */
struct scn_trigger {
    struct scn_loc loc;
    bool every;
    enum scn_trigger_kind kind;
    struct scn_set node, peer;
    enum scn_dispatch_event event; /* DISPATCH */
    enum scn_conn_state state;     /* STATE */
    uint64_t count;                /* DELIVERED: the Nth message (>= 1) */
    enum scn_step step;            /* BREAKPOINT */
    struct scn_action act;
};

/* --------------------------------------------------------- expectations */

enum scn_op {
    SCN_OP_EQ,
    SCN_OP_NE,
    SCN_OP_LT,
    SCN_OP_LE,
    SCN_OP_GT,
    SCN_OP_GE,
};

enum scn_expect_kind {
    SCN_EXPECT_DELIVERED,   /* a -> b, flags or (op, ppm) */
    SCN_EXPECT_STATE,       /* a -> b, state */
    SCN_EXPECT_RECONNECTS,  /* a -> b, op, count */
    SCN_EXPECT_RESETS,      /* a -> b, op, count */
    SCN_EXPECT_EVENT,       /* a, event, b (peer, optional), negate */
    SCN_EXPECT_LATENCY,     /* a -> b, percentile_ppm, op, ns */
    SCN_EXPECT_CONNECTIONS, /* a [-> b conn_state], op, count */
    SCN_EXPECT_FRAMES,      /* a -> b, tag, received, op, count */
    SCN_EXPECT_TRACE_HASH,  /* hex */
};

/* SCN_EXPECT_DELIVERED flags */
#define SCN_DELIV_ALL          0x1u
#define SCN_DELIV_EXACTLY_ONCE 0x2u
#define SCN_DELIV_NO_DUP       0x4u
#define SCN_DELIV_IN_ORDER     0x8u

/* `expect connections NODE -> PEER STATE`: states of connection objects */
enum scn_conn_obj_state {
    SCN_CONN_OBJ_OPEN,
    SCN_CONN_OBJ_CLOSED,
    SCN_CONN_OBJ_REPLACED,
};

/*
 * One `expect` line. With sets, it must hold for every (a member, b
 * member) pair (every a member where there is no b), each pair checked on
 * its own. has_at: checked at at_ns instead of at the end (any kind but
 * TRACE_HASH may carry a trailing `at T`).
 */
struct scn_expect {
    struct scn_loc loc;
    enum scn_expect_kind kind;
    struct scn_set a, b;
    bool has_at;
    uint64_t at_ns;
    bool negate;                   /* EVENT: `expect no event` */
    uint32_t flags;                /* DELIVERED: SCN_DELIV_*, 0 with has_value */
    bool has_value;                /* DELIVERED: `OP P` form */
    enum scn_op op;
    uint64_t value;                /* count, ns (LATENCY) or ppm (DELIVERED) */
    enum scn_conn_state state;     /* STATE */
    enum scn_dispatch_event event; /* EVENT */
    uint32_t percentile_ppm;       /* LATENCY: p50 = 500000, max = 1000000 */
    bool has_obj_state;            /* CONNECTIONS with `-> PEER STATE` */
    enum scn_conn_obj_state obj_state;
    enum scn_step tag;             /* FRAMES: a frame tag */
    bool received;                 /* FRAMES: received (else sent) */
    const char *hex;               /* TRACE_HASH: lower-case hex digits */
};

/* ---------------------------------------------------------------- plan */

struct scn_plan {
    const char *path;              /* as given to scn_compile */
    const char *title;             /* `scenario "T"`, or the file's base name */
    uint64_t seed;                 /* default 1 */
    bool has_seed, has_stack, has_duration;
    enum scn_stack stack;          /* default sim */
    uint64_t duration_ns;          /* default 60 s */
    uint32_t workers;              /* `workers N`; 0: 1 on sim, 2 on posix */

    struct scn_node *nodes;
    uint32_t n_nodes;
    /* The default link after every `link default` (latency 100us, no jitter,
     * no loss, unlimited bandwidth unless overridden); per-pair links in
     * links[], applied in order over it. */
    struct scn_link_opts link_default;
    struct scn_link *links;
    uint32_t n_links;
    struct scn_policy_override *policies;
    uint32_t n_policies;
    struct scn_config *configs;    /* in file order; a later one wins */
    uint32_t n_configs;
    struct scn_break *breaks;      /* header breakpoints: armed from the start */
    uint32_t n_breaks;
    struct scn_timed *timeline;    /* sorted by (t_ns, seq) */
    uint32_t n_timeline;
    struct scn_trigger *triggers;  /* in file order */
    uint32_t n_triggers;
    struct scn_expect *expects;    /* in file order */
    uint32_t n_expects;
    /* The last time the file names (timeline, every's until when finite,
     * chaos until, expectation `at`): the run never ends before it. */
    uint64_t last_named_ns;

    struct scn_arena *arena_;      /* private: owns every pointer above */
};

/* ----------------------------------------------------------- diagnostics */

#define SCN_MAX_DIAGS 50           /* stored and printed; the rest counted */

struct scn_diag {
    struct scn_loc loc;
    char msg[240];
};

struct scn_diags {
    struct scn_diag v[SCN_MAX_DIAGS];
    uint32_t n;                    /* stored, <= SCN_MAX_DIAGS */
    uint32_t total;                /* all errors found */
};

/*
 * Compiles a scenario held in memory (text need not end in NUL). path names
 * it in diagnostics and the default title. Returns 0 and sets *out (free it
 * with scn_plan_free), or -EINVAL with *out NULL and diags filled (every
 * error found, in source order), or -ENOMEM.
 */
int scn_compile(const char *path, const char *text, size_t len,
                struct scn_plan **out, struct scn_diags *diags);

/* Reads path and compiles it; -errno (e.g. -ENOENT) when it cannot be read. */
int scn_compile_file(const char *path, struct scn_plan **out,
                     struct scn_diags *diags);

void scn_plan_free(struct scn_plan *p);

/* Prints "path:line:col: error: MESSAGE" lines, then, when more were found
 * than stored, "path: N more errors not shown". */
void scn_diags_print(const struct scn_diags *d, const char *path, FILE *f);

/* ------------------------------------------------------------ names */

const char *scn_action_name(enum scn_action_kind k);
const char *scn_fault_name(enum scn_fault_kind k);
const char *scn_step_name(enum scn_step s);
bool scn_step_is_frame(enum scn_step s);
const char *scn_config_name(enum scn_config_key k);
enum scn_value_type scn_config_type(enum scn_config_key k);
const char *scn_policy_name(enum msgr_policy_kind k);
const char *scn_state_name(enum scn_conn_state s);
const char *scn_event_name(enum scn_dispatch_event e);
const char *scn_op_name(enum scn_op op);

#endif
