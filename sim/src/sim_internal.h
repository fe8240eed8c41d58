/*
 * Internal interfaces between the parts of the simulator:
 *
 *   world.c  heap.c  rng.c  fp.c   the scheduler, PRNG, fingerprint
 *   host.c                          hosts: state (alive, paused, killed,
 *                                   crashed) and host-bound scheduling
 *   stack_sim.c                     the msgr stack backend: workers, post,
 *                                   timers, mutexes, wait_until, drain; its
 *                                   socket methods are tcp.c's
 *   net.c  tcp.c                    links, segments, the TCP-like model,
 *                                   listeners and sockets, network faults
 *
 * Host-bound work (anything that runs the process's code: posted closures,
 * timers, I/O callbacks) is scheduled with sim__host_schedule so that a
 * paused host runs it late and a dead host never runs it. Network work
 * (segments in flight, retransmission timers, the kernel's ACKs) uses
 * sim_schedule directly: a paused process's kernel still receives.
 */
#ifndef SIM_INTERNAL_H
#define SIM_INTERNAL_H

#include "sim/sim.h"

#define SIM_ASSERT(cond)                                                       \
    ((cond) ? (void)0 : sim__assert_fail(#cond, __FILE__, __LINE__))
_Noreturn void sim__assert_fail(const char *expr, const char *file, int line);

/* The network's state, owned by net.c/tcp.c (opaque to the rest). */
struct sim_net;
struct sim_host_net;

enum sim_host_state {
    SIM_HOST_ALIVE,
    SIM_HOST_PAUSED,
    SIM_HOST_KILLED,
    SIM_HOST_CRASHED,
};

struct sim_host {
    struct sim_world *world;
    uint32_t id;
    uint32_t ipv4;
    char name[32];
    enum sim_host_state state;
    uint64_t incarnation;           /* bumped by kill/crash/revive */
    struct sim_host_net *net;       /* tcp.c's per-host state */
    struct sim_rng rng;             /* SIM_STREAM_NODE stream of this host */
    /* events held while paused, in order (host.c) */
    struct sim_held *held_head, *held_tail;
    struct sim_host *next;          /* world's list, creation order */
    int nstacks;                    /* live sim stacks on it (stack_sim.c) */
};

struct sim_world {
    uint64_t seed;
    msgr_time_ns now;
    /* heap.c */
    struct sim_heap *heap;
    uint64_t next_seq;
    uint64_t events_run;
    /* fp.c */
    uint64_t fp;
    /* hosts, creation order */
    struct sim_host *hosts, *hosts_tail;
    uint32_t nhosts;
    struct sim_net *net;
    struct sim_net_stats stats;
    /* the stack worker whose code is running now (in_worker) */
    struct msgr_worker *current_worker;
};

/* heap.c: (time, seq)-ordered event heap with O(log n) cancel */
struct sim_heap *sim__heap_new(void);
void sim__heap_free(struct sim_heap *h);
uint64_t sim__heap_push(struct sim_heap *h, msgr_time_ns at, uint64_t seq,
                        sim_event_cb cb, void *arg);
int sim__heap_cancel(struct sim_heap *h, uint64_t id);
/* Pops the earliest event if its time <= limit; returns 0 when none. */
int sim__heap_pop(struct sim_heap *h, msgr_time_ns limit, msgr_time_ns *at,
                  sim_event_cb *cb, void **arg);
size_t sim__heap_size(const struct sim_heap *h);

/* world.c: true while an event runs (the scheduler is not re-entrant) */
int sim__world_running(const struct sim_world *w);
/* fp.c: the fingerprint's initial value (world creation) */
void sim__fp_init(struct sim_world *w);
/* host.c: frees every host's memory (sim_world_free, after the net's
 * sim__net_host_fini and sim__net_fini hooks have run) */
void sim__hosts_free(struct sim_world *w);

/* host.c: runs cb on behalf of host h at `at`: held while h is paused
 * (released in order on resume), dropped if h died in between (the
 * incarnation changed). Returns an id usable with sim__host_cancel. */
uint64_t sim__host_schedule(struct sim_host *h, msgr_time_ns at,
                            sim_event_cb cb, void *arg);
int sim__host_cancel(struct sim_host *h, uint64_t id);

/* net.c/tcp.c lifecycle hooks called by world/host code */
void sim__net_init(struct sim_world *w);
void sim__net_fini(struct sim_world *w);
void sim__net_host_init(struct sim_host *h);
void sim__net_host_fini(struct sim_host *h);
/* kill: RST every connection of h, close its listeners; crash: the same
 * but silently (peers see nothing). */
void sim__net_host_kill(struct sim_host *h, int silent);

/* stack_sim.c: what tcp.c needs from a worker */
struct sim_host *sim__worker_host(struct msgr_worker *w);
struct sim_world *sim__worker_world(struct msgr_worker *w);
/* Runs an I/O or accept callback "on" worker w (sets current_worker). */
void sim__worker_enter(struct msgr_worker *w);
void sim__worker_leave(struct msgr_worker *w);

/* tcp.c: the socket methods of the stack seam (same contracts) */
int sim__listen(struct msgr_worker *w, const struct msgr_addr *addr,
                const struct msgr_listen_opts *opts, msgr_accept_cb cb,
                void *arg, struct msgr_listener **out);
void sim__listener_start(struct msgr_listener *l);
int sim__listener_addr(struct msgr_listener *l, struct msgr_addr *out);
int sim__accept(struct msgr_listener *l, struct msgr_worker *to,
                struct msgr_socket **out, struct msgr_addr *peer);
void sim__listener_close(struct msgr_listener *l);
int sim__connect(struct msgr_worker *w, const struct msgr_addr *addr,
                 struct msgr_socket **out);
int sim__connect_result(struct msgr_socket *s);
void sim__io_set(struct msgr_socket *s, msgr_io_cb cb, void *arg,
                 unsigned want);
void sim__io_want(struct msgr_socket *s, unsigned want);
ssize_t sim__readv(struct msgr_socket *s, const struct iovec *iov, int iovcnt);
ssize_t sim__writev(struct msgr_socket *s, const struct iovec *iov,
                    int iovcnt);
void sim__shutdown(struct msgr_socket *s);
void sim__close(struct msgr_socket *s, int abortive);
int sim__local_addr(struct msgr_socket *s, struct msgr_addr *out);
int sim__peer_addr(struct msgr_socket *s, struct msgr_addr *out);
void sim__socket_move(struct msgr_socket *s, struct msgr_worker *to);

#endif
