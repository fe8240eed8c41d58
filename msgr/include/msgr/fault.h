/*
 * The fault layer: a stack that wraps any other stack (posix, the sim, or
 * another fault stack) and injects Ceph's ms_inject_* faults at the seam,
 * so scenario faults work on real sockets too (DESIGN.md, "fault layer";
 * PROTOCOL.md §5).
 *
 *     struct msgr_stack *inner = msgr_stack_create("posix", NULL, &err);
 *     struct msgr_fault_config fc = { .socket_failures = 30 };
 *     struct msgr_stack *st = msgr_fault_stack_new(inner, &fc, &err);
 *     msgr_stack_unref(inner);          // st holds its own reference
 *     ... msgr_config.stack = st ...
 *
 * Every method of the returned stack forwards to the inner one; its
 * workers, sockets and listeners are small wrappers (struct msgr_worker,
 * msgr_socket, msgr_listener first, as every backend does) around the
 * inner objects. Time, randomness, timers, mutexes and wait_until are the
 * inner stack's: on the sim every injected fault is drawn from the seeded
 * stream and lands at a virtual instant, so runs repeat exactly. The layer
 * makes no OS call of its own.
 *
 * Faults (the knobs of struct msgr_fault_config):
 *  - socket_failures N: each readv/writev first shutdown()s the inner
 *    socket with probability 1/N, so that I/O fails as the kernel makes it
 *    fail (EOF, EPIPE) and the messenger takes its fault path
 *    (ms_inject_socket_failures).
 *  - network_congestion N: a writev goes through with probability 1/N;
 *    otherwise it returns -EAGAIN (ms_inject_network_congestion). To not
 *    spin on a writable socket, a congested socket then stays congested
 *    (writev -EAGAIN, WRITE interest masked) for a random time in
 *    [0, congestion_hold_ns]; WRITE readiness is reported again afterwards
 *    through the inner socket's own readiness.
 *  - partition (MSGR_FAULT_DIR_* bits): data stops moving in that
 *    direction: readv returns -EAGAIN / writev accepts nothing, and the
 *    inner interest is masked so nothing busy-loops. Bytes stay in the
 *    inner socket (TCP backpressure builds up as it would); on heal the
 *    readiness comes back and the stream continues byte-exact. A connect
 *    to a partitioned peer completes only after the heal (the inner
 *    handshake proceeds; its completion is not reported).
 *  - recv_delay_ns: a delay line. Bytes read from the inner socket are
 *    held back until arrival + recv_delay_ns (readv -EAGAIN until then; a
 *    timer re-signals READ readiness at the deadline). Order is kept, EOF
 *    and errors are delayed with the data, at most 4 MiB are held per
 *    socket (then the inner socket is not read: backpressure).
 *  - corrupt_ppm: each readv that returns data flips one random bit of
 *    it with probability corrupt_ppm / 1,000,000. The layer does not
 *    know frames: the msgr2 banner, which no CRC covers, is hit too, and
 *    a banner whose feature bits were flipped makes the messenger stop
 *    the connection with a reset (as Ceph does), dropping its queue.
 *  - msgr_fault_reset(): every current socket to the peer is reset on its
 *    next I/O (readv, writev or connect_result): the inner socket is
 *    closed abortively (the peer sees an RST) and the call returns
 *    -ECONNRESET; later readv return 0 and writev -EPIPE, like a kernel
 *    socket after the error is consumed. The owner is woken (READ|WRITE
 *    readiness) so an idle socket is reset promptly too.
 *  - internal_delay_ns: each post() runs its closure after a random delay
 *    in [0, internal_delay_ns] (ms_inject_internal_delays, as a delay
 *    rather than a sleep of the worker). FIFO per worker is kept: delayed
 *    closures wait in a per-worker queue and a due time is never earlier
 *    than the previous post's; one "pump" closure (posted to the inner
 *    worker, or fired by a worker timer when the head is not yet due)
 *    runs the queue in order; while the queue is non-empty every post to
 *    that worker goes through it, even with the delay turned off, and
 *    only once it is empty and the pump has returned do posts go straight
 *    to the inner stack again. drain() runs delayed closures posted
 *    before it without waiting for their delay.
 *
 * Which sockets a fault hits: faults are set per peer (struct msgr_addr:
 * family and IP, and the port too when it is non-zero; type and nonce are
 * ignored) or for all sockets (peer NULL). A socket's peer is the address
 * it connected to, or the address accept() reported. Several entries may
 * match one socket; the strongest fault of each kind wins (the smallest
 * non-zero N, the longest delay, the highest ppm, the union of partition
 * directions), so a per-peer entry never hides a fault set for all.
 * Entries apply to sockets created later too, except reset, which hits
 * the sockets that exist when it is called.
 *
 * Threads: the setters are safe from any thread and take effect at each
 * socket's next I/O; changes that need a socket's interest re-applied (a
 * partition healing, a reset) are posted to the socket's worker.
 */
#ifndef MSGR_FAULT_H
#define MSGR_FAULT_H

#include <stdint.h>

#include "msgr/stack.h"
#include "msgr/types.h"

/* Partition directions, as seen from the wrapped stack's sockets. */
#define MSGR_FAULT_DIR_IN   1u /* readv stops: nothing is received */
#define MSGR_FAULT_DIR_OUT  2u /* writev stops: nothing is sent */
#define MSGR_FAULT_DIR_BOTH 3u

struct msgr_fault_config {
    uint32_t socket_failures;         /* N: 1 in N I/O calls; 0: off */
    uint32_t network_congestion;      /* N: 1 in N writev pass; 0: off */
    msgr_time_ns congestion_hold_ns;  /* 0: 100 us */
    msgr_time_ns recv_delay_ns;       /* 0: off */
    uint32_t corrupt_ppm;             /* per readv returning data */
    unsigned partition;               /* MSGR_FAULT_DIR_* ; 0: none */
    /* Stack-wide: only the entry for all sockets (peer NULL) sets it. */
    msgr_time_ns internal_delay_ns;   /* max delay of post(); 0: off */
};

/* What was injected (for the observer, stats and traces). */
enum msgr_fault_kind {
    MSGR_FAULT_SOCKET_FAILURE, /* inner socket shut down before I/O */
    MSGR_FAULT_CONGESTION,     /* writev -EAGAIN; value: hold in ns */
    MSGR_FAULT_CORRUPT,        /* value: bit index in the bytes read */
    MSGR_FAULT_RESET,          /* inner socket closed abortively */
    MSGR_FAULT_DELAY_BYTES,    /* value: bytes put into the delay line */
    MSGR_FAULT_DELAY_POST,     /* value: delay drawn in ns (peer NULL) */
};
const char *msgr_fault_kind_name(enum msgr_fault_kind kind);

/*
 * Called on the thread where the fault is injected (a socket's worker;
 * the posting thread for DELAY_POST) with no lock of the layer held. It
 * must not call the setters of this stack for DELAY_POST (the poster may
 * hold its own locks). peer: the socket's peer, NULL if none.
 */
typedef void (*msgr_fault_observer_cb)(void *arg, enum msgr_fault_kind kind,
                                       const struct msgr_addr *peer,
                                       uint64_t value);

struct msgr_fault_stats {
    uint64_t socket_failures;    /* shutdown()s injected */
    uint64_t congestion_eagains; /* writev -EAGAIN from congestion draws */
    uint64_t partition_eagains;  /* readv/writev stopped by a partition */
    uint64_t delayed_bytes;      /* bytes that went through a delay line */
    uint64_t corruptions;        /* bits flipped */
    uint64_t resets;             /* sockets reset */
    uint64_t delayed_posts;      /* closures run through the delay queue */
    uint64_t io_calls;           /* readv + writev calls seen */
};

/*
 * A stack forwarding to inner, with the faults of cfg (NULL: none) set
 * for all sockets. Takes its own reference to inner (dropped when the
 * fault stack is destroyed); the caller owns one reference to the result
 * (msgr_stack_unref). NULL and *err (-EINVAL, -ENOMEM) on failure.
 */
struct msgr_stack *msgr_fault_stack_new(struct msgr_stack *inner,
                                        const struct msgr_fault_config *cfg,
                                        int *err);
/* True if st was made by msgr_fault_stack_new. */
int msgr_fault_stack_is(const struct msgr_stack *st);
/* The wrapped stack (no reference taken). */
struct msgr_stack *msgr_fault_inner(struct msgr_stack *st);
/* The inner worker behind one of st's workers. */
struct msgr_worker *msgr_fault_inner_worker(struct msgr_worker *w);

/*
 * The setters. peer NULL: the entry for all sockets; else the entry for
 * that peer (created on first use). Return 0, or -EINVAL when st is not a
 * fault stack, -ENOMEM.
 */
/* Replaces the whole entry. */
int msgr_fault_set(struct msgr_stack *st, const struct msgr_addr *peer,
                   const struct msgr_fault_config *cfg);
/* The entry as set (zeroes when there is none). */
int msgr_fault_get(struct msgr_stack *st, const struct msgr_addr *peer,
                   struct msgr_fault_config *out);
/* Removes the entry (peer NULL: zeroes the entry for all). */
int msgr_fault_clear(struct msgr_stack *st, const struct msgr_addr *peer);
int msgr_fault_set_socket_failures(struct msgr_stack *st,
                                   const struct msgr_addr *peer, uint32_t n);
int msgr_fault_set_network_congestion(struct msgr_stack *st,
                                      const struct msgr_addr *peer,
                                      uint32_t n);
int msgr_fault_set_recv_delay(struct msgr_stack *st,
                              const struct msgr_addr *peer,
                              msgr_time_ns delay_ns);
int msgr_fault_set_corrupt(struct msgr_stack *st, const struct msgr_addr *peer,
                           uint32_t ppm);
/* dirs: MSGR_FAULT_DIR_* to partition, 0 to heal. */
int msgr_fault_partition(struct msgr_stack *st, const struct msgr_addr *peer,
                         unsigned dirs);
int msgr_fault_set_internal_delay(struct msgr_stack *st,
                                  msgr_time_ns max_delay_ns);
/*
 * Resets every socket to peer (NULL: all) on its next I/O. Returns how
 * many sockets were marked, or -EINVAL.
 */
int msgr_fault_reset(struct msgr_stack *st, const struct msgr_addr *peer);

/* Any thread; NULL removes it. */
void msgr_fault_set_observer(struct msgr_stack *st, msgr_fault_observer_cb cb,
                             void *arg);
void msgr_fault_get_stats(struct msgr_stack *st, struct msgr_fault_stats *out);

#endif
