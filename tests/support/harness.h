/*
 * A test harness for messenger conformance tests: a "world" and "nodes"
 * (one messenger each, with a recording dispatcher and a recording
 * tracer). MSGR_TEST_STACK picks the stack:
 *
 *  - posix: one stack shared by every messenger of a test, real TCP on
 *    127.0.0.1;
 *  - sim: a sim_world seeded from MSGR_TEST_SEED (default H_SIM_SEED),
 *    one sim host per messenger (10.0.0.1, .2, ... in creation order),
 *    each messenger on its own sim_stack_new() stack on its host (binding
 *    v2:10.0.0.N:0), plus a "driver" host (10.0.0.254) whose
 *    stack gives the test its clock, its randomness and its waits. Every
 *    sim stack's wait_until runs the one shared scheduler, so waiting
 *    through any stack drives the whole world; timeouts are virtual time
 *    and cost no wall time. MSGR_TEST_SIM_POST_DELAY_US sets the stacks'
 *    injected post delay (0 by default).
 *
 * Threads: dispatcher and tracer callbacks run on the stack's workers.
 * They never assert; they record into atomics (and a mutex-guarded error
 * text), and the test's main thread waits with the stack's wait_until and
 * then asserts (cmocka unwinds with longjmp, so only the main thread may).
 *
 * Leak accounting: every message a node creates (h_msg_new) is tracked:
 * the world keeps one extra reference, and the tracer's fates of that
 * message are recorded in its slot. h_world_finish() shuts every messenger
 * down, then checks that each tracked message is referenced by the world
 * alone (the messenger released all of its references), that each message
 * handed to a messenger got exactly one fate, that every message received
 * was dispatched (and unreferenced by the dispatcher) or reported dropped,
 * and that every connection that was born was closed.
 */
#ifndef MSGR_TEST_HARNESS_H
#define MSGR_TEST_HARNESS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "msgr/msgr.h"

struct sim_world;
struct sim_host;

/* Set by the build when the simulator is linked (sim/ exists). */
#ifndef H_HAVE_SIM
#define H_HAVE_SIM 0
#endif

/* The sim world's seed when MSGR_TEST_SEED is not set. */
#define H_SIM_SEED 1

/* On the sim: this many events in a row at one virtual instant means a
 * task keeps rescheduling itself without time passing (e.g. WRITE
 * interest with nothing to write): h_wait stops and the case fails,
 * instead of hanging at that instant forever. */
#define H_SPIN_EVENTS 2000000ull

/* How long a test waits for something that must happen. */
#define H_WAIT_NS (30 * MSGR_NS_PER_S)

#define H_MAX_NODES   40
#define H_MAX_STREAMS 64
#define H_MAX_TRACKED 32768
#define H_MAX_FAULTS  256
#define H_MAX_HELD    64
#define H_NFATES      (MSGR_FATE_BLACKHOLED + 1)

/* Message types of the harness. */
#define H_MSG_REQ      MSGR_MSG_TEST       /* a request: echoed by servers */
#define H_MSG_REP      (MSGR_MSG_TEST + 1) /* an echo */
#define H_MSG_REQ_FAST (MSGR_MSG_TEST + 2) /* a request for fast dispatch */

/* The start of every front segment (the rest is filler). Integers in host
 * order: both ends live in this process. */
struct h_payload {
    uint32_t magic;
    uint32_t stream;
    uint64_t seq;
    uint16_t type;
    uint8_t src_type;
    uint8_t pad;
    uint32_t pad2;
    int64_t src_num;
    uint32_t front_len, middle_len, data_len;
    uint32_t sum_front, sum_middle, sum_data; /* filler, middle, data */
};
#define H_MAGIC 0x4d534754u /* "MSGT" */

struct h_tracked {
    _Atomic(struct msgr_msg *) msg;
    _Atomic int fate[H_NFATES];
    _Atomic int sent_lossy; /* SENT on a lossy session: final */
};

struct h_fault {
    uint64_t conn_id;
    int err;
};

struct h_world;
struct h_node;

/* Connection events a test hook sees (see h_node.hook_event). */
enum h_event {
    H_EV_CONNECT,
    H_EV_ACCEPT,
    H_EV_RESET,
    H_EV_REMOTE_RESET,
};

#define H_NTAGS 32 /* frame tags counted per node (msgr2 tags are < 32) */

struct h_node {
    struct h_world *w;
    struct msgr *m;
    struct msgr_stack *st; /* its stack (posix: the world's, shared) */
    struct sim_host *host; /* sim only: its host, 10.0.0.N */
    struct msgr_tracer fp; /* sim only: the world's fingerprint tracer */
    int idx;
    char label[32];
    struct msgr_entity_name name;
    int started, shut, waited, destroyed; /* main thread only */
    int bind_pending;

    /* behaviour, set before start */
    int echo;            /* answer every request with an echo */
    uint16_t fast_type;  /* this type is fast dispatched (0: none) */
    int fast_all;        /* every message is fast dispatched */
    int expect_rev;      /* msgr_conn_rev of non-loopback conns, -1: any */
    uint8_t expect_src_type; /* 0: any */
    int64_t expect_src_num;  /* checked when expect_src_type != 0 */
    int check_src_num;
    /* lossy tests: a gap in a stream (a message lost with its session)
     * is not an error; going backwards (a duplicate) still is */
    int allow_gaps;
    /* Optional test hooks, set before start: run on the thread that
     * delivers (dispatch or fast dispatch), before the harness counts the
     * message or event, so a main thread that saw the count also sees
     * what the hook did. They must not assert. The message is verified
     * and still referenced by the harness. */
    void (*hook_msg)(struct h_node *n, struct msgr_msg *m);
    void (*hook_event)(struct h_node *n, enum h_event ev, struct msgr_conn *c);
    void *hook_arg;

    pthread_mutex_t lock;
    uint64_t next_req[H_MAX_STREAMS]; /* next expected, under lock */
    uint64_t next_rep[H_MAX_STREAMS];
    char first_error[512];            /* under lock */
    struct h_fault faults[H_MAX_FAULTS];
    int nfaults_logged;               /* under lock */

    uint64_t tx_seq[H_MAX_STREAMS]; /* main thread: next request seq */

    /* dispatcher records */
    _Atomic int errors;
    _Atomic int n_dispatch, n_fast;
    _Atomic int n_req, n_rep, n_loopback;
    _Atomic int n_req_stream[H_MAX_STREAMS];
    _Atomic int n_rep_stream[H_MAX_STREAMS];
    _Atomic int n_echo, n_echo_fail;
    _Atomic int n_connect, n_accept, n_reset, n_remote_reset, n_refused;
    _Atomic(struct msgr_conn *) last_connect, last_accept; /* identity only */
    _Atomic int connect_peer_type, accept_peer_type;
    _Atomic int connect_rev, accept_rev;

    /* tracer records */
    _Atomic int fate[H_NFATES];    /* every message */
    _Atomic int rx_fate[H_NFATES]; /* messages this node received */
    _Atomic int births, deaths, readies;
    _Atomic int msg_frames_in, msg_frames_out;
    _Atomic int tag_in[H_NTAGS], tag_out[H_NTAGS]; /* frames by tag */
    _Atomic int nfaults;
};

struct h_spec {
    const char *label;
    uint8_t type;
    int64_t num;
    int bind;       /* v2:127.0.0.1:0 (sim: v2:10.0.0.N:0) */
    int echo;
    int force_rev0;
    msgr_time_ns idle_timeout_ns;
    uint32_t max_frame_segment;
    /* 0: a random start in 6800..7499 up to 7568, so that parallel test
     * processes do not all take the lowest free port (a port one process
     * just freed would be re-bound at once by another, and its clients,
     * still reconnecting, would reach a stranger); on the sim, where every
     * host has its own ports, the messenger's default 6800..7568 */
    int bind_port_min, bind_port_max;
    /* sim only: put the messenger on this (destroyed) node's host and
     * stack, so that a restarted daemon keeps its IP (posix: ignored,
     * every node is on 127.0.0.1) */
    struct h_node *on_host_of;
};

struct h_world {
    /* The driver stack: the clock, randomness and waits of the test. On
     * posix it is the stack every node shares; on the sim it lives on the
     * driver host and runs no messenger. */
    struct msgr_stack *st;
    const struct msgr_stack_ops *ops;
    /* Every stack of the world (the driver's first), each referenced by
     * the world until h_world_finish: drained by h_settle. */
    struct msgr_stack *stacks[H_MAX_NODES + 8];
    int nstacks;
    /* sim only */
    struct sim_world *sim;
    struct sim_host *driver;
    uint64_t seed;
    uint32_t next_host; /* hosts made so far (10.0.0.next_host is next) */
    msgr_time_ns post_delay_ns;
    msgr_time_ns spin_at;
    uint64_t spin_run, spin_max; /* events in a row at spin_at; the most */
    int spun;
    const char *stack_name;
    int log_level;
    uint64_t nonce_base; /* random: identities never repeat across runs */
    struct h_node *nodes[H_MAX_NODES];
    int nnodes;
    struct h_tracked *tracked; /* H_MAX_TRACKED slots */
    _Atomic int ntracked;
    _Atomic int track_overflow;
    struct msgr_conn *held[H_MAX_HELD];
    int nheld;
};

/* ---- world ---- */

/* A world on the stack named by MSGR_TEST_STACK ("posix" by default);
 * NULL (with a message on stderr) when the stack cannot be created. */
struct h_world *h_world_new(void);
/* Shuts down, waits for and destroys every messenger still alive, checks
 * that nothing leaked (cmocka asserts), frees the world. */
void h_world_finish(struct h_world *w);
int h_is_posix(struct h_world *w);
int h_is_sim(struct h_world *w);
/* Sim only: a new host (10.0.0.N, the next N) with its own stack, owned
 * by the world (drained by h_settle, freed at the finish): for tests that
 * drive raw sockets through the stack ops. Everything opened on it must
 * be closed before h_world_finish. */
struct msgr_stack *h_sim_extra_stack(struct h_world *w, const char *name,
                                     struct sim_host **host);

msgr_time_ns h_now(struct h_world *w);
/* Waits until cond(arg) or the timeout; 1 if cond became true. */
int h_wait(struct h_world *w, int (*cond)(void *), void *arg,
           msgr_time_ns timeout);
/* Waits until *p >= v. */
int h_wait_ge(struct h_world *w, _Atomic int *p, int v, msgr_time_ns timeout);
/* Lets time pass (the stack's notion of time). */
void h_idle(struct h_world *w, msgr_time_ns ns);
/* Runs the workers until every callback posted so far, and everything
 * those posted, ran (two drains of every stack): queued upcalls are
 * delivered. */
void h_settle(struct h_world *w);

/* ---- nodes ---- */

/* Creates the messenger (not started). */
struct h_node *h_node_new(struct h_world *w, const struct h_spec *spec);
void h_policy(struct h_node *n, uint8_t peer_type, enum msgr_policy_kind k);
void h_policy_custom(struct h_node *n, uint8_t peer_type,
                     const struct msgr_policy *p);
/* Binds now (the spec's bind), without starting: the socket listens, so
 * peers' TCP connects complete, but nothing is accepted until start. */
void h_node_bind(struct h_node *n);
/* Binds (if the spec says so and not done yet), starts, adds the
 * dispatcher. */
void h_node_start(struct h_node *n);
void h_node_addrs(struct h_node *n, struct msgr_addrvec *out);
/* Lifecycle steps with checks (tables empty, every born conn closed). */
void h_node_shutdown(struct h_node *n);
void h_node_wait(struct h_node *n);
void h_node_destroy(struct h_node *n);
/* The faults the tracer reported with this error code. */
int h_fault_count(struct h_node *n, int err);
/* Pretty-prints the first dispatcher error (or "") for assert messages. */
const char *h_first_error(struct h_node *n);

/* ---- connections ---- */

/* msgr_get_connection; the world holds the reference (released at the
 * end, or by h_release). Asserts success. */
struct msgr_conn *h_get_conn(struct h_node *n, uint8_t peer_type,
                             const struct msgr_addrvec *to);
/* Holds a reference the caller already owns. */
struct msgr_conn *h_hold(struct h_world *w, struct msgr_conn *c);
void h_release(struct h_world *w, struct msgr_conn *c);
int h_wait_connected(struct h_world *w, struct msgr_conn *c, int want,
                     msgr_time_ns timeout);

/* ---- messages ---- */

/* A filled, tracked message (refs: the caller's and the world's). */
struct msgr_msg *h_msg_new(struct h_node *from, uint16_t type,
                           uint32_t stream, uint64_t seq, uint32_t front_extra,
                           uint32_t middle_len, uint32_t data_len);
/* The i-th entry of a mixed size profile (0 .. 256 KiB of data). */
void h_sizes_mixed(uint64_t i, uint32_t *front_extra, uint32_t *middle,
                   uint32_t *data);
/* Small sizes (< 16 KiB in all). */
void h_sizes_small(uint64_t i, uint32_t *front_extra, uint32_t *middle,
                   uint32_t *data);
/* Sends; on failure unrefs the caller's reference. Returns the error. */
int h_send(struct h_node *n, struct msgr_msg *m, uint8_t peer_type,
           const struct msgr_addrvec *to);
int h_conn_send(struct msgr_conn *c, struct msgr_msg *m);
/* Sends count requests on stream (asserting each send returns 0). */
void h_send_requests(struct h_node *n, uint8_t peer_type,
                     const struct msgr_addrvec *to, uint32_t stream,
                     int count, int mixed, uint16_t type);
/* Waits until n received every echo of what it sent on stream. */
int h_wait_echoes(struct h_node *n, uint32_t stream, msgr_time_ns timeout);
/* Sends count requests and waits for every echo; asserts. */
void h_round_trip(struct h_node *n, uint8_t peer_type,
                  const struct msgr_addrvec *to, uint32_t stream, int count,
                  int mixed);
/* The tracked slot of a message (NULL if untracked). */
struct h_tracked *h_tracked_of(struct h_world *w, const struct msgr_msg *m);

#endif
