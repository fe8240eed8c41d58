/*
 * The stack seam: everything the messenger needs from the world.
 *
 * The messenger never touches a file descriptor, a clock, a thread or a
 * random source directly; it calls these function pointers. A backend (the
 * posix stack on libevent, the simulated stack in sim/) fills in one const
 * struct msgr_stack_ops and embeds struct msgr_stack, struct msgr_worker,
 * struct msgr_socket and struct msgr_listener as the FIRST member of its
 * own objects, the way SQLite's VFS files embed sqlite3_file.
 *
 * Model (Ceph's NetworkStack / Worker / EventCenter):
 *  - a stack owns N workers; each worker is an event loop (a thread for
 *    posix, a task of the one scheduler for the sim);
 *  - a socket or listener is serviced by exactly one worker at a time; its
 *    callbacks run on that worker, never concurrently with each other;
 *  - post() is the only thread-safe way to run code on a worker.
 *
 * Threading contract, for every method unless it says otherwise:
 *  - "worker-only": must be called on the thread currently running the
 *    worker that owns the object (from one of its callbacks or a post);
 *  - "any thread": safe from any thread, including non-worker threads.
 * Callbacks are never invoked from inside the method that registered them,
 * and never from inside close()/free().
 *
 * Errors are negative: -errno for OS-like failures (the sim returns the
 * same codes the kernel would), MSGR_E* for our own.
 */
#ifndef MSGR_STACK_H
#define MSGR_STACK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "msgr/types.h"

#define MSGR_STACK_OPS_VERSION 1

struct msgr_stack;
struct msgr_worker;
struct msgr_socket;
struct msgr_listener;
struct msgr_timer;
struct msgr_mutex;

/* I/O readiness bits. */
#define MSGR_IO_READ  1u
#define MSGR_IO_WRITE 2u

typedef void (*msgr_task_cb)(void *arg);
/* events: MSGR_IO_* that are ready now. */
typedef void (*msgr_io_cb)(struct msgr_socket *s, unsigned events, void *arg);
/* The listener has at least one connection to accept(). */
typedef void (*msgr_accept_cb)(struct msgr_listener *l, void *arg);

/* Backend capability bits. */
/*
 * Each worker binds its own listener for the same address (a DPDK-like
 * stack with a per-worker listen table). Without it one listener serves all
 * workers, as the kernel's shared listen table does for posix.
 */
#define MSGR_STACK_LOCAL_LISTEN_TABLE 1u

/* Per-worker counters, updated by the messenger on the worker's thread and
 * read from anywhere (relaxed atomics). */
struct msgr_worker_perf {
    _Atomic uint64_t msgs_in, msgs_out;
    _Atomic uint64_t bytes_in, bytes_out;
    _Atomic int64_t active_conns;
};

struct msgr_worker {
    struct msgr_stack *stack;
    int id;
    /* Number of connections assigned (Ceph's Worker::references); the
     * messenger picks the least loaded worker for a new connection. */
    _Atomic int refs;
    struct msgr_worker_perf perf;
};

struct msgr_stack {
    const struct msgr_stack_ops *ops;
    int nworkers;
    struct msgr_worker **workers; /* filled by the backend */
    _Atomic int refs;             /* messengers sharing this stack */
};

struct msgr_socket {
    const struct msgr_stack_ops *ops;
    struct msgr_worker *worker; /* the worker servicing it now */
};

struct msgr_listener {
    const struct msgr_stack_ops *ops;
    struct msgr_worker *worker;
};

struct msgr_listen_opts {
    int backlog;    /* 0: backend default (512) */
    int reuse_addr; /* SO_REUSEADDR */
};

struct msgr_stack_ops {
    const char *name;
    int version; /* MSGR_STACK_OPS_VERSION; members are only ever appended */
    unsigned caps; /* MSGR_STACK_* */

    /* ---- stack ---- */
    /*
     * Starts the workers (threads for posix). Idempotent. Any thread,
     * not from a worker.
     */
    int (*start)(struct msgr_stack *st);
    /*
     * Runs a barrier on every worker and returns when each has run every
     * callback posted before the call (Ceph's NetworkStack::drain). Never
     * from a worker. The sim runs its scheduler until the barriers ran.
     */
    void (*drain)(struct msgr_stack *st);
    /* Stops and joins the workers, frees the stack. All sockets, listeners
     * and timers must be closed/freed before. Never from a worker. */
    void (*destroy)(struct msgr_stack *st);
    /* Monotonic time in ns. Any thread. */
    msgr_time_ns (*now_ns)(struct msgr_stack *st);
    /* 64 random bits (the sim: from the seeded stream). Any thread. */
    uint64_t (*random_u64)(struct msgr_stack *st);
    /*
     * Runs until cond(arg) returns true or timeout_ns passes; returns 1 if
     * cond became true, 0 on timeout. posix: polls with short sleeps on the
     * caller's thread (cond must be thread-safe); sim: runs the scheduler.
     * For tests and blocking façades (msgr wait); never from a worker.
     */
    int (*wait_until)(struct msgr_stack *st, int (*cond)(void *arg),
                      void *arg, msgr_time_ns timeout_ns);

    /* ---- workers ---- */
    /*
     * Runs cb(arg) on worker w soon, in FIFO order with other posts to w.
     * Any thread. Never runs cb inline. Returns 0 or -ENOMEM/-ESHUTDOWN.
     */
    int (*post)(struct msgr_worker *w, msgr_task_cb cb, void *arg);
    /* True if the calling thread is running worker w. Any thread. */
    int (*in_worker)(struct msgr_worker *w);

    /* ---- timers (worker-only, fire on their worker) ---- */
    struct msgr_timer *(*timer_new)(struct msgr_worker *w, msgr_task_cb cb,
                                    void *arg);
    /* (Re)arms: fires once after delay_ns. */
    void (*timer_arm)(struct msgr_timer *t, msgr_time_ns delay_ns);
    void (*timer_cancel)(struct msgr_timer *t);
    /* Cancels and frees; cb will not run after this returns. */
    void (*timer_free)(struct msgr_timer *t);

    /* ---- mutexes (any thread; the sim's are no-ops) ---- */
    struct msgr_mutex *(*mutex_new)(struct msgr_stack *st);
    void (*mutex_lock)(struct msgr_mutex *m);
    void (*mutex_unlock)(struct msgr_mutex *m);
    void (*mutex_free)(struct msgr_mutex *m);

    /* ---- listeners (worker-only after creation) ---- */
    /*
     * Binds and listens on addr (port 0: the backend picks). Any thread.
     * -EADDRINUSE, -EADDRNOTAVAIL, -EACCES as the kernel says. The
     * listener is serviced by w; cb runs there when accept() may succeed.
     * Callbacks start only after listener_start().
     */
    int (*listen)(struct msgr_worker *w, const struct msgr_addr *addr,
                  const struct msgr_listen_opts *opts, msgr_accept_cb cb,
                  void *arg, struct msgr_listener **out);
    /* Begins delivering accept callbacks. Worker-only. */
    void (*listener_start)(struct msgr_listener *l);
    /* The bound address (port filled in). Any thread. */
    int (*listener_addr)(struct msgr_listener *l, struct msgr_addr *out);
    /*
     * Accepts one connection: 0 and *out (unbound to a callback, serviced
     * by worker `to`), or -EAGAIN when none is pending. Worker-only.
     */
    int (*accept)(struct msgr_listener *l, struct msgr_worker *to,
                  struct msgr_socket **out, struct msgr_addr *peer);
    /* Stops callbacks and closes. Worker-only, or any thread when the
     * listener was never started. */
    void (*listener_close)(struct msgr_listener *l);

    /* ---- sockets ---- */
    /*
     * Starts a non-blocking connect from worker w. Completion is signalled
     * by MSGR_IO_WRITE readiness; then connect_result() tells 0 or the
     * error (-ECONNREFUSED, -ETIMEDOUT, -EHOSTUNREACH ...). An immediate
     * failure is returned here. Worker-only (w's).
     */
    int (*connect)(struct msgr_worker *w, const struct msgr_addr *addr,
                   struct msgr_socket **out);
    int (*connect_result)(struct msgr_socket *s);
    /*
     * Sets the callback and the interest mask. Level triggered: while a
     * bit of `want` is ready the callback keeps being called. Worker-only.
     */
    void (*io_set)(struct msgr_socket *s, msgr_io_cb cb, void *arg,
                   unsigned want);
    /* Changes only the interest mask. Worker-only. */
    void (*io_want)(struct msgr_socket *s, unsigned want);
    /* Bytes read, 0 at EOF, -EAGAIN, -ECONNRESET ... Worker-only. */
    ssize_t (*readv)(struct msgr_socket *s, const struct iovec *iov,
                     int iovcnt);
    /* Bytes written (may be short), -EAGAIN, -EPIPE, -ECONNRESET ... */
    ssize_t (*writev)(struct msgr_socket *s, const struct iovec *iov,
                      int iovcnt);
    /* shutdown(SHUT_RDWR): later I/O fails (fault injection uses it). */
    void (*shutdown)(struct msgr_socket *s);
    /*
     * Closes and frees. abortive: the peer sees a reset (SO_LINGER 0)
     * instead of EOF. No callback runs after this returns. Worker-only.
     */
    void (*close)(struct msgr_socket *s, int abortive);
    int (*local_addr)(struct msgr_socket *s, struct msgr_addr *out);
    int (*peer_addr)(struct msgr_socket *s, struct msgr_addr *out);
    /*
     * Hands the socket to worker `to` (a session resumed on a connection
     * owned by another worker takes over the new socket). Worker-only, on
     * the socket's current worker, after io_set(s, NULL, NULL, 0); no
     * callback runs until io_set is called again, on `to`.
     */
    void (*socket_move)(struct msgr_socket *s, struct msgr_worker *to);
};

/* ---- registry of built-in stacks ---- */

/* Built-in backends by name ("posix"); NULL when unknown. */
const struct msgr_stack_ops *msgr_stack_find(const char *name);

struct msgr_stack_config {
    int nworkers; /* 0: 3, like ms_async_op_threads */
};

/*
 * Creates a stack of a built-in backend by name. The caller owns one
 * reference; msgr_stack_unref destroys it at zero. *err gets the reason on
 * failure (-EINVAL for an unknown name).
 */
struct msgr_stack *msgr_stack_create(const char *name,
                                     const struct msgr_stack_config *cfg,
                                     int *err);
void msgr_stack_ref(struct msgr_stack *st);
void msgr_stack_unref(struct msgr_stack *st);
/* The worker with the fewest refs; its refs is incremented. */
struct msgr_worker *msgr_stack_get_worker(struct msgr_stack *st);
void msgr_stack_put_worker(struct msgr_worker *w);

/* The posix backend's constructor (used by the registry). */
struct msgr_stack *msgr_posix_stack_new(const struct msgr_stack_config *cfg,
                                        int *err);

#endif
