/*
 * The scenario runner's private state. One `struct rn` per run; nodes,
 * pairs (sender, receiver), connection records and the runner's own
 * agenda of timed items. Everything is indexed by plan order, never by
 * pointer value, so iteration is deterministic.
 */
#ifndef SCN_RUN_INTERNAL_H
#define SCN_RUN_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "msgr/msgr.h"
#include "scn/run.h"
#include "scn/scn.h"
#include "msgr/fault.h"
#include "sim/sim.h"

#define RN_NTAGS 32
#define RN_NS_US ((uint64_t)1000)
#define RN_NS_MS ((uint64_t)1000000)
#define RN_NS_S ((uint64_t)1000000000)
#define RN_NEVENTS 5 /* enum scn_dispatch_event */

/* Payload header every workload message starts with (little endian). */
#define RN_MAGIC 0x4e52534du /* "MSRN" */
#define RN_HDR_LEN 40
#define RN_MSG_TYPE 0x7f01

struct rn;
struct rn_node;
struct rn_fault;

/*
 * The environment a run happens in: the simulated world (virtual time, one
 * thread) or real messengers on loopback sockets (wall-clock time, worker
 * threads). Everything else (timeline, workload ledger, triggers,
 * expectations, output) is one code path over this seam.
 */
struct rn_env {
    const char *name;                 /* "sim", "posix" */
    int (*setup)(struct rn *r);       /* after nodes are declared */
    void (*teardown)(struct rn *r);   /* after every node stopped */
    uint64_t (*now)(struct rn *r);    /* ns since the run's start */
    /* Lets the world run until `until` or until an agenda item is due.
     * Called with the runner's lock held (posix: waits on r->cv). */
    void (*advance)(struct rn *r, uint64_t until);
    /* Wakes advance() (a trigger queued an item); NULL: not needed. */
    void (*wake)(struct rn *r);
    /* Creates nd->st for a new incarnation (the fault layer on top). */
    int (*node_stack)(struct rn *r, struct rn_node *nd, uint32_t workers);
    /* The address a starting node binds (no `bind` given). */
    void (*node_addr)(struct rn *r, struct rn_node *nd, struct msgr_addr *a);
    /* The fingerprint tracer a node's messenger feeds; zeroes: none. */
    void (*fp_tracer)(struct rn *r, struct msgr_tracer *out);
    /* kill: the process dies (peers see RST/EOF); crash: silence. */
    void (*host_kill)(struct rn *r, struct rn_node *nd);
    void (*host_crash)(struct rn *r, struct rn_node *nd);
    void (*host_revive)(struct rn *r, struct rn_node *nd);
    /* A link fault between two nodes (drop, delay, bandwidth, partition,
     * reset, corrupt); fills f (f->active) or reports an internal error. */
    void (*pair_fault)(struct rn *r, const struct scn_action *a, uint32_t s,
                       uint32_t d, struct rn_fault *f);
    void (*pause)(struct rn *r, uint32_t node, uint64_t for_ns,
                  struct rn_fault *f);
    /* f stopped being active (healed or expired). */
    void (*heal)(struct rn *r, struct rn_fault *f);
    /* f's own run says it is over (sim: the simulator healed it). */
    bool (*fault_over)(struct rn *r, struct rn_fault *f);
    /* A counter of bytes moved on the network: quiescence compares it. */
    uint64_t (*net_progress)(struct rn *r);
    uint64_t (*fingerprint)(struct rn *r, int exit_code);
    /* Work done in the world for the summary line (sim events). */
    uint64_t (*events)(struct rn *r);
};

extern const struct rn_env rn_env_sim;
extern const struct rn_env rn_env_posix;

/* Per message of a pair: low 7 bits delivery count, bit 7 given up. */
#define RN_SEEN_GIVEN_UP 0x80u
#define RN_SEEN_COUNT 0x7fu

struct rn_pair {
    uint64_t sent;              /* seqs 1..sent were sent */
    uint64_t delivered;         /* distinct seqs delivered */
    uint64_t dups, reorders, corrupt, given_up;
    uint64_t last_seq;          /* highest seq delivered so far */
    uint8_t *seen;              /* [seq] */
    uint64_t seen_cap;
    /* the first offending message, for evidence */
    bool bad;
    uint64_t bad_seq, bad_t;
    char bad_what[48];
    uint64_t *lat;              /* delivery latencies, ns */
    uint64_t nlat, caplat;
    uint64_t ready_entries;     /* times A's connections to B became READY */
    uint64_t resets;            /* reset/remote_reset upcalls at A for B */
    uint64_t frames[2][RN_NTAGS]; /* [0] received, [1] sent; by msgr tag */
    uint64_t ev[RN_NEVENTS];    /* dispatch events at A from B */
    uint64_t delivered_total;   /* deliveries incl. duplicates (triggers) */
    struct rn_conn *cur;        /* A's newest connection object to B */
};

struct rn_pending {
    uint32_t dst;
    uint64_t seq, tid;
};

/* A connection object seen through the tracer (its msgr priv slot). */
struct rn_conn {
    struct rn_node *node;
    struct msgr_conn *c;        /* a reference while the run lasts */
    int32_t peer;               /* node index, -1 until known */
    uint32_t order;             /* first-seen index within the node */
    int state;                  /* enum scn_conn_state */
    bool ever_ready, announced, closed, reset_told;
    /* workload messages queued on it, until it closes */
    struct rn_pending *pending;
    uint32_t npending, cappending;
};

struct rn_node {
    struct rn *r;
    uint32_t idx;
    const struct scn_node *decl;
    struct sim_host *host;
    struct msgr_stack *st;      /* the messenger's stack (maybe fault layer) */
    struct msgr_stack *sim_st;  /* the backend stack under it */
    struct msgr *m;
    struct msgr_addrvec addrs;  /* where peers reach it now */
    uint32_t ipv4;              /* its host's address */
    uint16_t ports[8];          /* posix: every port it listened on */
    uint32_t nports;
    bool has_bind, has_client_bind; /* `bind` / `client_bind` before start */
    struct msgr_addr bind_addr, client_bind_addr;
    uint64_t nonce;
    uint32_t incarnation;
    bool started, up;           /* a messenger exists / is running */
    bool host_dead;             /* killed or crashed: revive before reuse */
    struct rn_conn **conns;     /* first-seen order */
    uint32_t nconns, capconns;
    uint64_t ev_total[RN_NEVENTS];
    uint64_t sends_skipped;     /* sends while the node was down */
    uint64_t next_tid;          /* workload tids, over all incarnations */
    struct msgr_tracer fp;      /* the world's fingerprint tracer */
    struct msgr_tracer chain;   /* the observer's tracer, if any */
    bool has_chain;
};

/* The runner's agenda: timed items run outside sim events, in (t, seq). */
enum rn_item_kind {
    RN_ITEM_TIMELINE,  /* plan->timeline[i] */
    RN_ITEM_FLOW,      /* a send flow's next message */
    RN_ITEM_CHAOS,     /* the next random fault of a chaos action */
    RN_ITEM_EXPECT,    /* an expectation with `at` */
    RN_ITEM_TRIGGER,   /* a trigger's action, fired by an event */
    RN_ITEM_RESTART,   /* chaos killed node idx: it comes back now */
};

struct rn_item {
    uint64_t t, seq;
    enum rn_item_kind kind;
    uint32_t idx;      /* timeline, flow, chaos, expect index */
    const struct scn_action *act; /* TRIGGER */
    uint32_t line;
};

struct rn_flow {
    uint32_t src, dst;
    uint64_t left, interval_ns, size;
    uint8_t priority;
};

struct rn_chaos {
    const struct scn_action *act;
    struct sim_rng rng;
};

/* A fault the runner started (for heal and quiescence). */
struct rn_fault {
    uint64_t id;
    enum scn_fault_kind kind;
    uint32_t a, b;             /* node indices; b = a for node faults */
    bool both_ways;
    struct sim_fault_run *run; /* NULL: handled by the runner */
    /* posix: the parameters the fault layer is set from */
    uint32_t ppm;
    uint64_t delay_ns, bps;
    uint64_t msg_type;         /* blackhole */
    bool has_type;
    bool active;
    uint64_t heal_at;          /* 0: until healed */
};

/* A protocol breakpoint armed by `break` (or the header). */
#define RN_MAX_HELD 16
struct rn_break {
    struct scn_break b;
    uint32_t line;
    uint64_t seen;             /* occurrences so far */
    bool fired;
    struct msgr_conn *held[RN_MAX_HELD]; /* block/stall: references */
    uint32_t nheld;
};

struct rn_verdict {
    bool checked, held;
    char evidence[320];
};

struct rn {
    const struct rn_env *env;
    /*
     * posix only (threaded): one plain mutex over the runner's state that
     * messenger callbacks touch (pairs, ledger, connection records, event
     * counts, agenda, counters). The main thread holds it while it runs
     * items and drops it around every messenger call (rn_unlock/rn_lock),
     * callbacks take it on entry. Not recursive on purpose: a callback that
     * the messenger runs synchronously inside a call from the main thread
     * finds it free, and the lock is never held while the messenger waits
     * for its workers (shutdown, wait, destroy) or takes its own locks, so
     * no lock order can invert. The condition variable wakes the main
     * thread when a trigger queues an item.
     */
    bool threaded;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t t0_ns;            /* posix: CLOCK_MONOTONIC at the start */
    uint64_t port_base;        /* posix: first port of the bind range */
    const struct scn_plan *p;
    const char *src;
    size_t src_len;
    const struct scn_run_opts *o;
    FILE *out;
    uint64_t seed;
    struct sim_world *w;
    struct rn_node *nodes;
    uint32_t n;
    /* (sender, receiver) -> pair, created on first use: an open-addressing
     * table keyed by a << 32 | b (+1, 0 marks empty), so 10,000 nodes do
     * not cost n^2 pointers; looked up, never iterated but to free */
    uint64_t *pair_keys;
    struct rn_pair **pair_vals;
    size_t pair_cap, pair_len;
    struct rn_item *agenda;    /* a binary heap on (t, seq) */
    uint32_t nagenda, capagenda;
    uint64_t next_seq;
    struct rn_flow *flows;
    uint32_t nflows, capflows;
    struct rn_chaos *chaos;
    uint32_t nchaos, capchaos;
    struct rn_fault *faults;
    uint32_t nfaults, capfaults;
    struct rn_break *breaks;
    uint32_t nbreaks, capbreaks;
    struct rn_verdict *verdicts; /* [plan->n_expects] */
    bool *trig_fired;          /* [plan->n_triggers] */
    uint64_t timeline_left;    /* timeline items still to run */
    uint64_t end_ns;
    uint64_t last_bytes;       /* net bytes delivered at the last check */
    uint64_t quiet_since;
    uint64_t msgs_sent, msgs_delivered, msgs_given_up, faults_started;
    int internal_error;
    char internal_what[200];
    struct sim_rng work_rng;
    uint64_t progress_last_wall;
    uint64_t deliveries;       /* all deliveries, for sabotage */
    struct msgr_msg *held_back; /* SCN_SABOTAGE_REORDER */
    struct rn_node *held_to;
};

static inline void
rn_lock(struct rn *r)
{
    if (r->threaded)
        pthread_mutex_lock(&r->mu);
}

static inline void
rn_unlock(struct rn *r)
{
    if (r->threaded)
        pthread_mutex_unlock(&r->mu);
}

/* A messenger call from the main thread: never under the runner's lock
 * (see struct rn). */
#define RN_CALL(r, stmt)                                                      \
    do {                                                                      \
        rn_unlock(r);                                                         \
        stmt;                                                                 \
        rn_lock(r);                                                           \
    } while (0)

static inline uint64_t
rn_now(struct rn *r)
{
    return r->env->now(r);
}

static inline bool
scn_set_has(const struct scn_set *s, uint32_t i)
{
    for (uint32_t k = 0; k < s->n; k++)
        if (s->idx[k] == i)
            return true;
    return false;
}

/* run.c */
struct rn_pair *rn_pair(struct rn *r, uint32_t a, uint32_t b);
/* NULL when nothing happened between a and b yet */
struct rn_pair *rn_pair_find(const struct rn *r, uint32_t a, uint32_t b);
void rn_internal(struct rn *r, const char *fmt, ...);
void rn_push(struct rn *r, uint64_t t, enum rn_item_kind kind, uint32_t idx,
             const struct scn_action *act, uint32_t line);
int rn_node_of_addr(struct rn *r, const struct msgr_addrvec *v);
uint32_t rn_addr_ipv4(const struct msgr_addr *a);

void rn_run_action(struct rn *r, const struct scn_action *a);
void rn_fire_delivered(struct rn *r, uint32_t node, uint32_t peer,
                       uint64_t count);
void rn_fire_breakpoint(struct rn *r, uint32_t node, int step);

int rn_due_now(void *arg);
void rn_node_listened(struct rn *r, struct rn_node *nd);

/* run_posix.c: recomputes every node's fault-layer entries from the
 * active faults (after a fault, a heal, a start or a rebind) */
void rn_posix_refresh(struct rn *r);

/* run_work.c: the workload and its ledger */
void rn_send_one(struct rn *r, struct rn_flow *f);
void rn_on_delivered(struct rn *r, struct rn_node *to, struct msgr_msg *m);
void rn_on_msg_fate(struct rn *r, struct rn_node *from, struct rn_conn *rc,
                    const struct msgr_msg *m, int fate);
void rn_conn_closed(struct rn *r, struct rn_conn *rc);
bool rn_all_resolved(struct rn *r);

/* run_expect.c */
void rn_check_expect(struct rn *r, uint32_t i);
void rn_expect_text(struct rn *r, uint32_t line, char *buf, size_t len);

/* run_fault.c */
void rn_fault_action(struct rn *r, const struct scn_action *a);
void rn_heal(struct rn *r, const struct scn_action *a);
void rn_chaos_tick(struct rn *r, uint32_t i);
bool rn_faults_active(struct rn *r);
void rn_fault_expire(struct rn *r);
void rn_blackhole_apply(struct rn *r, struct rn_node *nd);
void rn_break_install(struct rn *r, struct rn_node *nd);
void rn_restart_node(struct rn *r, uint32_t i, bool same_nonce);
uint32_t rn_breaks_unfired(struct rn *r, FILE *out);
void rn_sim_pair_fault(struct rn *r, const struct scn_action *a, uint32_t s,
                       uint32_t d, struct rn_fault *f);
void rn_sim_pause(struct rn *r, uint32_t i, uint64_t for_ns,
                  struct rn_fault *f);
void rn_sim_heal(struct rn *r, struct rn_fault *f);
bool rn_sim_fault_over(struct rn *r, struct rn_fault *f);
void rn_faults_free(struct rn *r);

#endif
