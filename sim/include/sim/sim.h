/*
 * The deterministic world: a virtual clock, one event heap, seeded PRNG
 * streams, hosts, links, a TCP-like stream model, fault primitives, and a
 * backend of the msgr stack seam running on all of it.
 *
 * Determinism contract: the same seed and the same sequence of API calls
 * give the same events in the same order at the same virtual times, on any
 * machine. Events are ordered by (time, insertion sequence); nothing is
 * ordered by pointer values or hash order; all randomness comes from
 * streams derived from the world seed; probabilities are integers (parts
 * per million). Nothing here reads the OS clock or starts a thread.
 *
 * Everything runs on the caller's thread: sim_run_* executes events, and
 * the messenger's workers are tasks of this one scheduler.
 */
#ifndef SIM_SIM_H
#define SIM_SIM_H

#include <stddef.h>
#include <stdint.h>

#include "msgr/stack.h"
#include "msgr/types.h"

struct sim_world;
struct sim_host;
struct msgr_tracer; /* msgr/msgr.h */

/* ------------------------------------------------------------------ rng */

/*
 * xoshiro256** 1.0, seeded through splitmix64. Pinned: its output for a
 * seed is part of the determinism contract (known-answer tests guard it).
 */
struct sim_rng {
    uint64_t s[4];
};

/* Seeds from (seed, stream): distinct streams are independent, and adding
 * a stream does not change the others. */
void sim_rng_seed(struct sim_rng *r, uint64_t seed, uint64_t stream);
uint64_t sim_rng_next(struct sim_rng *r);
/* Uniform in [0, n) without modulo bias; n > 0. */
uint64_t sim_rng_below(struct sim_rng *r, uint64_t n);
/* True with probability ppm / 1,000,000. */
int sim_rng_chance_ppm(struct sim_rng *r, uint32_t ppm);
uint64_t sim_splitmix64(uint64_t *state);

/* Stream purposes; combined with an id (a host id) into a stream number. */
enum sim_stream {
    SIM_STREAM_NET = 1,      /* link jitter, loss, corruption */
    SIM_STREAM_FAULT = 2,    /* fault injection choices */
    SIM_STREAM_WORKLOAD = 3, /* the scenario's workload */
    SIM_STREAM_NODE = 4,     /* a node's stack: random_u64 (cookies) */
};
uint64_t sim_stream_id(enum sim_stream purpose, uint32_t id);

/* ---------------------------------------------------------------- world */

struct sim_world *sim_world_new(uint64_t seed);
/* Frees the world; every host, stack and socket must be gone. */
void sim_world_free(struct sim_world *w);
uint64_t sim_world_seed(const struct sim_world *w);
msgr_time_ns sim_now(const struct sim_world *w);
/* Initialises r with the world's stream (purpose, id). */
void sim_world_rng(const struct sim_world *w, enum sim_stream purpose,
                   uint32_t id, struct sim_rng *r);

typedef void (*sim_event_cb)(void *arg);
/*
 * Schedules cb(arg) at virtual time `at` (>= now; earlier is clamped to
 * now). Returns an id (> 0) for sim_cancel. Events at equal times run in
 * the order they were scheduled.
 */
uint64_t sim_schedule(struct sim_world *w, msgr_time_ns at, sim_event_cb cb,
                      void *arg);
/* Returns 1 if the event was pending and is now cancelled, else 0. */
int sim_cancel(struct sim_world *w, uint64_t id);

/* Runs the next event (advancing the clock); 0 when none is pending. */
int sim_step(struct sim_world *w);
/* Runs every event due at or before t, then sets the clock to t. */
void sim_run_until(struct sim_world *w, msgr_time_ns t);
/* Runs events until cond(arg) or the clock would pass `deadline`; returns
 * 1 if cond held. The clock ends at the last event run (or deadline). */
int sim_run_until_cond(struct sim_world *w, int (*cond)(void *arg), void *arg,
                       msgr_time_ns deadline);
uint64_t sim_events_run(const struct sim_world *w);
size_t sim_events_pending(const struct sim_world *w);

/* ---------------------------------------------------------- fingerprint */

/*
 * A 64-bit hash over every observable event fed to it, in order: the
 * world feeds its own events (faults, connection resets); the harness
 * feeds the messenger's tracer events (sim_fp_tracer). Same seed, same
 * build → same value.
 */
void sim_fp_mix(struct sim_world *w, const void *p, size_t n);
void sim_fp_mix_u64(struct sim_world *w, uint64_t v);
uint64_t sim_fingerprint(const struct sim_world *w);
/* A tracer that mixes every state change, frame, message fate and fault
 * of a messenger into the world's fingerprint (with the virtual time). */
void sim_fp_tracer(struct sim_world *w, struct msgr_tracer *out);

/* ---------------------------------------------------------------- hosts */

/* A host with an IPv4 address (host order, e.g. 10.0.0.1 = 0x0a000001).
 * id: small, stable, given by the caller (it seeds the host's streams). */
struct sim_host *sim_host_new(struct sim_world *w, uint32_t id,
                              const char *name, uint32_t ipv4);
struct sim_host *sim_host_find(struct sim_world *w, uint32_t ipv4);
uint32_t sim_host_ipv4(const struct sim_host *h);
const char *sim_host_name(const struct sim_host *h);
/* Fills a msgr address (type v2, nonce 0) for the host and port. */
void sim_host_addr(const struct sim_host *h, uint16_t port,
                   struct msgr_addr *out);

/* ---------------------------------------------------------------- links */

struct sim_link_params {
    msgr_time_ns latency_ns;  /* one way */
    msgr_time_ns jitter_ns;   /* uniform extra in [0, jitter] */
    uint64_t bandwidth_bps;   /* bits/s; 0 = unlimited */
    uint32_t loss_ppm;        /* per segment */
    uint32_t corrupt_ppm;     /* per segment: one bit flipped */
};
/* The default for every pair without its own (latency 100 us). */
void sim_link_default(struct sim_world *w, const struct sim_link_params *p);
/* One direction a -> b; call twice for both. */
void sim_link_set(struct sim_world *w, struct sim_host *a, struct sim_host *b,
                  const struct sim_link_params *p);
void sim_link_get(struct sim_world *w, struct sim_host *a, struct sim_host *b,
                  struct sim_link_params *out);

/* --------------------------------------------------------------- faults */

/* Packets a -> b vanish (no RST). Symmetric: call both ways. */
void sim_partition(struct sim_world *w, struct sim_host *a, struct sim_host *b,
                   int on);
/* Resets every TCP connection between a and b now (both see -ECONNRESET). */
int sim_reset_between(struct sim_world *w, struct sim_host *a,
                      struct sim_host *b);
/* Per socket operation (read/write) on a's sockets to b: reset with this
 * probability (Ceph's ms_inject_socket_failures); 0 turns it off. */
void sim_reset_prob(struct sim_world *w, struct sim_host *a, struct sim_host *b,
                    uint32_t ppm);
/* The process dies: its sockets are closed by its host (peers see RST),
 * listeners gone; its stack's callbacks never run again. */
void sim_host_kill(struct sim_world *w, struct sim_host *h);
/* The host vanishes: no RST, all its packets vanish both ways, its stack
 * stops running. */
void sim_host_crash(struct sim_world *w, struct sim_host *h);
/* The process stops running: sockets stay, nothing is read or written, no
 * callback or timer of its stacks runs until resume (then they run, in
 * order, late). */
void sim_host_pause(struct sim_world *w, struct sim_host *h);
void sim_host_resume(struct sim_world *w, struct sim_host *h);
/* Brings a killed or crashed host back (empty: no sockets, no stacks). */
void sim_host_revive(struct sim_world *w, struct sim_host *h);

/* ------------------------------------------------- faults on a timeline */

enum sim_fault_kind {
    SIM_FAULT_LOSS,       /* a <-> b: loss_ppm = ppm */
    SIM_FAULT_DELAY,      /* a <-> b: latency += delay_ns, jitter += jitter_ns */
    SIM_FAULT_BANDWIDTH,  /* a <-> b: bandwidth cap */
    SIM_FAULT_CORRUPT,    /* a <-> b: corrupt_ppm = ppm */
    SIM_FAULT_PARTITION,  /* a <-> b: packets vanish */
    SIM_FAULT_RESET,      /* a <-> b: reset every connection, once */
    SIM_FAULT_RESET_PROB, /* a <-> b: reset per socket operation, ppm */
    SIM_FAULT_KILL,       /* a: process dies (heal: revive the host) */
    SIM_FAULT_CRASH,      /* a: host vanishes (heal: revive the host) */
    SIM_FAULT_PAUSE,      /* a: process stops (heal: resume) */
};

struct sim_fault {
    enum sim_fault_kind kind;
    struct sim_host *a, *b; /* b unused for KILL, CRASH, PAUSE */
    int oneway;             /* a -> b only */
    msgr_time_ns start_at_ns;
    msgr_time_ns heal_at_ns; /* 0: never heals by itself */
    uint32_t ppm;
    msgr_time_ns delay_ns, jitter_ns;
    uint64_t bandwidth_bps;
};

struct sim_fault_run;
/*
 * Schedules a fault: it starts at start_at_ns and heals at heal_at_ns (a
 * link fault restores the parameters it found). Every start and heal is
 * mixed into the fingerprint. NULL for an invalid description (missing
 * host, heal before start). Free with sim_fault_free (which cancels what
 * has not happened yet, without healing).
 */
struct sim_fault_run *sim_fault_schedule(struct sim_world *w,
                                         const struct sim_fault *f);
/* Heals now (cancelling a start that has not come yet). */
void sim_fault_heal(struct sim_fault_run *r);
int sim_fault_active(const struct sim_fault_run *r);
void sim_fault_free(struct sim_fault_run *r);

/* ----------------------------------------------------- the stack backend */

struct sim_stack_config {
    int nworkers;               /* 0: 1 */
    msgr_time_ns post_delay_ns; /* max injected delay of post() (random in
                                   [0, max]); shakes out races, like
                                   ms_inject_internal_delays */
};
/*
 * A msgr stack whose workers are tasks of the world's scheduler and whose
 * sockets are the host's simulated TCP. The caller owns one reference
 * (msgr_stack_unref). Several stacks may live on one host (a restarted
 * messenger gets a fresh one).
 */
struct msgr_stack *sim_stack_new(struct sim_world *w, struct sim_host *h,
                                 const struct sim_stack_config *cfg, int *err);
struct sim_world *sim_stack_world(struct msgr_stack *st);

/* -------------------------------------------------------------- capture */

/* TCP header flag bits, as on the wire (RFC 9293), in sim_capture_seg. */
enum sim_tcp_flag {
    SIM_TCP_FIN = 0x01,
    SIM_TCP_SYN = 0x02,
    SIM_TCP_RST = 0x04,
    SIM_TCP_PSH = 0x08,
    SIM_TCP_ACK = 0x10,
};

/*
 * One segment the simulated network puts on a link, as a capture on the
 * sender's interface would see it.
 *
 * Sequence numbers are the simulator's: 64-bit byte offsets from 0 in
 * each direction. The first data byte is 0; the SYN carries seq 0 and
 * takes no number of its own; the FIN takes the number right after the
 * data. ack (with SIM_TCP_ACK) is the next byte expected from the peer,
 * plus one once the peer's FIN arrived. A writer of real headers maps
 * them to 32 bits as isn + seq (+ 1 unless SYN): see reports/src/pcap.c.
 */
struct sim_capture_seg {
    msgr_time_ns t_ns;      /* when it left the sender (now) */
    msgr_time_ns arrive_ns; /* when it reaches the receiver; 0: dropped */
    uint64_t conn_id;       /* the simulator's TCP connection, 1, 2, ... */
    uint32_t src_ip, dst_ip; /* host order */
    uint16_t src_port, dst_port;
    uint64_t seq, ack;
    uint64_t window;        /* bytes the sender accepts past ack */
    unsigned flags;         /* SIM_TCP_* */
    const uint8_t *payload; /* len bytes as sent; valid during the call */
    uint32_t len;
    /* the link loses it (loss, partition, crashed or missing host) */
    unsigned dropped : 1;
    /* not sent by either end: an injected reset (sim_reset_between, the
     * RESET fault) reaches each end as if a middlebox sent it an RST */
    unsigned injected : 1;
    uint32_t corrupt_bit; /* 0, or (bit index in payload) + 1 the link
                             flips on arrival */
};

typedef void (*sim_capture_cb)(void *arg, const struct sim_capture_seg *s);

/*
 * Calls cb(arg, seg) for every segment sent from now on (NULL: stop),
 * in send order, at its send time, whether the link delivers, drops or
 * corrupts it. Segments are reported one by one as the sender emits
 * them, before any arrival-side merging. The callback observes only: it
 * must not call into the world (schedule, cancel, sockets), so a
 * captured run is the same run, event for event and fingerprint for
 * fingerprint, as an uncaptured one. Unset, it costs one branch per
 * segment.
 */
void sim_set_capture(struct sim_world *w, sim_capture_cb cb, void *arg);

/* ---------------------------------------------------------- statistics */

struct sim_net_stats {
    uint64_t segments_sent, segments_dropped, segments_corrupted;
    uint64_t retransmits, resets, connects, refused, timeouts;
    uint64_t bytes_delivered;
};
void sim_net_stats(const struct sim_world *w, struct sim_net_stats *out);

#endif
