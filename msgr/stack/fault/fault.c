/*
 * The fault layer: a stack over any stack that injects Ceph's ms_inject_*
 * faults at the seam (see msgr/fault.h for what each fault does).
 *
 * Generic on purpose, like stack.c: no thread, clock, socket or libevent
 * call here, only the inner stack's ops and C11 atomics. Time, random
 * numbers, timers and mutexes are the inner stack's, so on the simulator
 * every fault is seeded and lands at a virtual instant.
 *
 * Objects. The fault stack has its own workers (struct msgr_worker first,
 * each pointing at the inner worker it stands for), sockets and listeners
 * (the seam's structs first, each wrapping the inner object). Timers and
 * mutexes are the inner ones, returned as they are: their methods take no
 * worker or socket that would need translating.
 *
 * Sockets. The inner socket's callback is ours (dispatch()); it filters the
 * inner readiness through the faults and adds readiness of its own:
 *  - a partition masks the inner interest in that direction, so nothing
 *    spins, and unmasks it on heal (a posted "refresh" re-applies it);
 *  - with a receive delay the inner socket is read by the layer as soon as
 *    it is readable, into a FIFO of chunks stamped with a due time (a delay
 *    line); READ is reported for the chunks that are due, and a per-socket
 *    "kick" timer reports it when the next one falls due;
 *  - after a congested writev the WRITE interest is masked until the hold
 *    time passes (the kick timer ends the hold), then the inner socket's
 *    own WRITE readiness comes back;
 *  - a reset socket (and one with a reset requested) reports READ|WRITE so
 *    its owner does I/O and learns.
 * Everything the kick timer reports is level triggered: after each
 * callback the state is looked at again (sync_io) and the timer re-armed
 * at once while a wanted event is still ready, as the kernel would.
 *
 * Sockets are refcounted: the owner's reference (dropped by close) and one
 * per pending refresh closure and per running callback, so a socket closed
 * from inside its callback, or while a refresh is in flight, stays valid
 * until those return. A closed socket's refresh touches nothing but the
 * socket, never the stack. After the owner's callback the layer looks at
 * the socket again only if it is still open and still on the same worker:
 * a resumed session moves the socket to another worker from inside the
 * callback, and that worker may be using it before the callback returns.
 *
 * Delayed posts: see fault.h (internal_delay_ns) and pump_cb below.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "msgr/fault.h"
#include "msgr/stack.h"

#define NEVER UINT64_MAX
/* Bytes held in one socket's delay line before its inner socket is not
 * read any more (then TCP backpressure takes over). */
#define HOLD_MAX_BYTES (4u << 20)
/* What one inner read of the delay line takes at most. */
#define PULL_CHUNK 16384
#define DEFAULT_CONGESTION_HOLD_NS (100 * MSGR_NS_PER_US)
#define IO_BOTH (MSGR_IO_READ | MSGR_IO_WRITE)

struct fault_stack;

/* ------------------------------------------------------------- objects */

struct dpost {
    struct dpost *next;
    msgr_task_cb cb;
    void *arg;
    msgr_time_ns due;
    uint64_t seq;
};

struct fault_worker {
    struct msgr_worker base; /* first: the seam casts */
    struct fault_stack *fs;
    struct msgr_worker *inner;
    /* The delay queue; under fs->lock. */
    struct dpost *qhead, **qtail;
    msgr_time_ns last_due;
    uint64_t posted_seq; /* seq of the last closure queued */
    uint64_t ran_seq;    /* seq of the last closure run */
    uint64_t flush_upto; /* closures up to this seq are due now (drain) */
    /* A pump is pending (posted or on the timer) or running: every post
     * to this worker goes through the queue. */
    atomic_int active;
    /* The pump's timer, created and freed by the pump: worker-only. */
    struct msgr_timer *timer;
};

struct rule {
    int all; /* the entry for all sockets (peer unused) */
    struct msgr_addr peer;
    struct msgr_fault_config cfg;
};

/* The faults in force on one socket: every matching entry combined. */
struct eff {
    uint32_t socket_failures, network_congestion, corrupt_ppm;
    msgr_time_ns congestion_hold_ns, recv_delay_ns;
    unsigned partition;
};

struct fault_socket;

struct fault_stack {
    struct msgr_stack base; /* first: the seam casts */
    /* Our table, a copy of fault_ops carrying the inner capabilities. */
    struct msgr_stack_ops ops;
    struct msgr_stack *inner;
    const struct msgr_stack_ops *iops;
    struct fault_worker *wk;
    struct msgr_mutex *lock;
    /* Under lock. rules[0] is the entry for all sockets. */
    struct rule *rules;
    size_t nrules, caprules;
    struct fault_socket *socks; /* live sockets, creation order */
    struct fault_socket *socks_tail;
    msgr_fault_observer_cb obs;
    void *obs_arg;
    /* Lock-free reads. */
    atomic_int has_obs;
    _Atomic uint64_t gen;             /* bumped by every rule change */
    _Atomic uint64_t post_delay_ns;   /* internal_delay_ns of rules[0] */
    atomic_int started;
    atomic_int flush_all;             /* destroy: every delayed post due */
    atomic_int zombie;                /* destroyed; pumps still queued */
    atomic_int pumps_out;             /* pump closures posted, not run */
    struct {
        _Atomic uint64_t socket_failures, congestion_eagains,
            partition_eagains, delayed_bytes, corruptions, resets,
            delayed_posts;
    } stats;
};

/* One block of the delay line: data, or the end of the stream. */
struct chunk {
    struct chunk *next;
    msgr_time_ns due;
    size_t len, off;
    int final; /* 0: data; 1: EOF; < 0: that error, then EOF */
    uint8_t data[];
};

struct fault_socket {
    struct msgr_socket base; /* first: the seam casts */
    struct fault_stack *fs;
    struct msgr_socket *inner; /* NULL once reset */
    /* The worker servicing it, for refresh closures posted from any
     * thread (base.worker is the seam's, read on the worker only). */
    _Atomic(struct fault_worker *) owner;
    atomic_int refs;
    atomic_int closed;
    atomic_int reset_req; /* msgr_fault_reset() marked it */
    struct fault_socket *prev, *next; /* fs->socks, under fs->lock */
    struct msgr_addr peer;
    int has_peer;

    /* Worker-only from here. */
    msgr_io_cb cb;
    void *cb_arg;
    unsigned want;    /* what the owner asked for */
    unsigned applied; /* what the inner socket was told */
    uint64_t gen;     /* of the rules eff was computed from */
    struct eff eff;
    int connected;
    int dead;     /* reset: the inner socket is closed */
    int dead_err; /* -ECONNRESET not yet returned */
    /* the delay line */
    struct chunk *hhead, **htail;
    size_t held;
    int held_final; /* EOF or an error is in the line: stop reading */
    msgr_time_ns last_due;
    /* congestion */
    int congested;
    msgr_time_ns hold_until;
    /* the kick timer (on the owner's worker; freed by socket_move) */
    struct msgr_timer *kick;
    int kick_armed;
    msgr_time_ns kick_at;
};

struct fault_listener {
    struct msgr_listener base; /* first: the seam casts */
    struct fault_stack *fs;
    struct msgr_listener *inner;
    msgr_accept_cb cb;
    void *arg;
};

static const struct msgr_stack_ops fault_ops;

static struct fault_stack *
to_fs(struct msgr_stack *st)
{
    return (struct fault_stack *)st;
}

static struct fault_worker *
to_fw(struct msgr_worker *w)
{
    return (struct fault_worker *)w;
}

static struct fault_socket *
to_fsock(struct msgr_socket *s)
{
    return (struct fault_socket *)s;
}

static struct fault_listener *
to_fl(struct msgr_listener *l)
{
    return (struct fault_listener *)l;
}

static struct msgr_worker *
inner_w(struct msgr_worker *w)
{
    return to_fw(w)->inner;
}

static void
lock(struct fault_stack *fs)
{
    fs->iops->mutex_lock(fs->lock);
}

static void
unlock(struct fault_stack *fs)
{
    fs->iops->mutex_unlock(fs->lock);
}

static msgr_time_ns
now_of(struct fault_stack *fs)
{
    return fs->iops->now_ns(fs->inner);
}

static uint64_t
rnd(struct fault_stack *fs)
{
    return fs->iops->random_u64(fs->inner);
}

static msgr_time_ns
add_sat(msgr_time_ns a, msgr_time_ns b)
{
    return b > UINT64_MAX - a ? UINT64_MAX : a + b;
}

static void
stat_add(_Atomic uint64_t *c, uint64_t v)
{
    atomic_fetch_add_explicit(c, v, memory_order_relaxed);
}

static void
notify(struct fault_stack *fs, enum msgr_fault_kind kind,
       const struct msgr_addr *peer, uint64_t value)
{
    msgr_fault_observer_cb cb;
    void *arg;

    if (!atomic_load_explicit(&fs->has_obs, memory_order_acquire))
        return;
    lock(fs);
    cb = fs->obs;
    arg = fs->obs_arg;
    unlock(fs);
    if (cb)
        cb(arg, kind, peer, value);
}

static const struct msgr_addr *
sock_peer(const struct fault_socket *s)
{
    return s->has_peer ? &s->peer : NULL;
}

const char *
msgr_fault_kind_name(enum msgr_fault_kind kind)
{
    switch (kind) {
    case MSGR_FAULT_SOCKET_FAILURE:
        return "socket_failure";
    case MSGR_FAULT_CONGESTION:
        return "congestion";
    case MSGR_FAULT_CORRUPT:
        return "corrupt";
    case MSGR_FAULT_RESET:
        return "reset";
    case MSGR_FAULT_DELAY_BYTES:
        return "delay_bytes";
    case MSGR_FAULT_DELAY_POST:
        return "delay_post";
    }
    return "unknown";
}

/* --------------------------------------------------------------- rules */

static size_t
ip_len(uint16_t family)
{
    return family == MSGR_AF_INET6 ? 16 : 4;
}

/* sel's family and IP, and its port unless 0. */
static int
addr_match(const struct msgr_addr *sel, const struct msgr_addr *a)
{
    if (sel->family != a->family)
        return 0;
    if (memcmp(sel->ip, a->ip, ip_len(sel->family)) != 0)
        return 0;
    return !sel->port || sel->port == a->port;
}

static int
key_equal(const struct msgr_addr *a, const struct msgr_addr *b)
{
    return a->family == b->family && a->port == b->port &&
           memcmp(a->ip, b->ip, ip_len(a->family)) == 0;
}

static uint32_t
min_nz(uint32_t a, uint32_t b)
{
    if (!a)
        return b;
    if (!b)
        return a;
    return a < b ? a : b;
}

static void
combine(struct eff *e, const struct msgr_fault_config *c)
{
    e->socket_failures = min_nz(e->socket_failures, c->socket_failures);
    e->network_congestion =
        min_nz(e->network_congestion, c->network_congestion);
    if (c->corrupt_ppm > e->corrupt_ppm)
        e->corrupt_ppm = c->corrupt_ppm;
    if (c->congestion_hold_ns > e->congestion_hold_ns)
        e->congestion_hold_ns = c->congestion_hold_ns;
    if (c->recv_delay_ns > e->recv_delay_ns)
        e->recv_delay_ns = c->recv_delay_ns;
    e->partition |= c->partition & MSGR_FAULT_DIR_BOTH;
}

static int
rule_matches(const struct rule *r, const struct fault_socket *s)
{
    return r->all || (s->has_peer && addr_match(&r->peer, &s->peer));
}

/* Under lock. */
static void
eff_compute(struct fault_stack *fs, const struct fault_socket *s,
            struct eff *e)
{
    size_t i;

    memset(e, 0, sizeof(*e));
    for (i = 0; i < fs->nrules; i++) {
        if (rule_matches(&fs->rules[i], s))
            combine(e, &fs->rules[i].cfg);
    }
    if (e->network_congestion && !e->congestion_hold_ns)
        e->congestion_hold_ns = DEFAULT_CONGESTION_HOLD_NS;
}

/* Worker-only: picks up rule changes (one atomic load when none). */
static void
refresh_cfg(struct fault_socket *s)
{
    struct fault_stack *fs = s->fs;

    if (atomic_load_explicit(&fs->gen, memory_order_acquire) == s->gen)
        return;
    lock(fs);
    s->gen = atomic_load_explicit(&fs->gen, memory_order_relaxed);
    eff_compute(fs, s, &s->eff);
    unlock(fs);
}

/* Under lock: the entry for peer, created when missing. */
static struct rule *
rule_get(struct fault_stack *fs, const struct msgr_addr *peer, int create)
{
    struct rule *r;
    size_t i;

    if (!peer)
        return &fs->rules[0];
    for (i = 1; i < fs->nrules; i++) {
        if (key_equal(&fs->rules[i].peer, peer))
            return &fs->rules[i];
    }
    if (!create)
        return NULL;
    if (fs->nrules == fs->caprules) {
        size_t cap = fs->caprules * 2;
        struct rule *nr = realloc(fs->rules, cap * sizeof(*nr));

        if (!nr)
            return NULL;
        fs->rules = nr;
        fs->caprules = cap;
    }
    r = &fs->rules[fs->nrules++];
    memset(r, 0, sizeof(*r));
    r->peer.family = peer->family;
    r->peer.port = peer->port;
    memcpy(r->peer.ip, peer->ip, ip_len(peer->family));
    return r;
}

/* ------------------------------------------------------------- sockets */

static void sync_io(struct fault_socket *s);
static void refresh_cb(void *arg);

static void
sock_ref(struct fault_socket *s)
{
    atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
}

static void
line_free(struct fault_socket *s)
{
    struct chunk *c;

    while ((c = s->hhead) != NULL) {
        s->hhead = c->next;
        free(c);
    }
    s->htail = &s->hhead;
    s->held = 0;
}

/* Touches nothing but s: a refresh of a closed socket may run after the
 * stack is gone. */
static void
sock_unref(struct fault_socket *s)
{
    if (atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) == 1) {
        line_free(s);
        free(s);
    }
}

/*
 * Posts a refresh to each live socket matching peer (NULL: all), so that
 * changed faults are applied to its interest and timers on its worker.
 * Under lock.
 */
static void
post_refreshes(struct fault_stack *fs, const struct msgr_addr *peer)
{
    struct fault_socket *s;

    for (s = fs->socks; s; s = s->next) {
        struct fault_worker *fw;

        if (peer && !(s->has_peer && addr_match(peer, &s->peer)))
            continue;
        fw = atomic_load(&s->owner);
        sock_ref(s);
        /* A listed socket holds its owner's reference: never the last. */
        if (fs->iops->post(fw->inner, refresh_cb, s) != 0)
            sock_unref(s);
    }
}

static struct fault_socket *
sock_new(struct fault_stack *fs, struct fault_worker *fw,
         struct msgr_socket *inner, const struct msgr_addr *peer)
{
    struct fault_socket *s = calloc(1, sizeof(*s));

    if (!s)
        return NULL;
    s->base.ops = &fs->ops;
    s->base.worker = &fw->base;
    s->fs = fs;
    s->inner = inner;
    atomic_init(&s->owner, fw);
    atomic_init(&s->refs, 1);
    atomic_init(&s->closed, 0);
    atomic_init(&s->reset_req, 0);
    if (peer && peer->family != MSGR_AF_UNSPEC) {
        s->peer = *peer;
        s->has_peer = 1;
    }
    s->htail = &s->hhead;
    lock(fs);
    s->prev = fs->socks_tail;
    if (fs->socks_tail)
        fs->socks_tail->next = s;
    else
        fs->socks = s;
    fs->socks_tail = s;
    s->gen = atomic_load(&fs->gen);
    eff_compute(fs, s, &s->eff);
    unlock(fs);
    return s;
}

static void
sock_unlink(struct fault_stack *fs, struct fault_socket *s)
{
    lock(fs);
    if (s->prev)
        s->prev->next = s->next;
    else
        fs->socks = s->next;
    if (s->next)
        s->next->prev = s->prev;
    else
        fs->socks_tail = s->prev;
    s->prev = s->next = NULL;
    unlock(fs);
}

static int
delay_mode(const struct fault_socket *s)
{
    return s->eff.recv_delay_ns > 0 || s->hhead != NULL;
}

/*
 * Readiness the layer itself reports (not the inner socket's), and the
 * next instant that may change it (*next_at, when given). Ends a
 * congestion hold that has passed.
 */
static unsigned
synth_events(struct fault_socket *s, msgr_time_ns now, msgr_time_ns *next_at)
{
    unsigned ev = 0;

    if (s->dead || atomic_load_explicit(&s->reset_req, memory_order_relaxed))
        return IO_BOTH;
    if (s->congested) {
        if (now >= s->hold_until)
            s->congested = 0;
        else if (next_at && (s->want & MSGR_IO_WRITE) &&
                 s->hold_until < *next_at)
            *next_at = s->hold_until;
    }
    if (s->hhead && !(s->eff.partition & MSGR_FAULT_DIR_IN)) {
        if (s->hhead->due <= now)
            ev |= MSGR_IO_READ;
        else if (next_at && (s->want & MSGR_IO_READ) &&
                 s->hhead->due < *next_at)
            *next_at = s->hhead->due;
    }
    return ev;
}

/* The interest the inner socket should have. */
static unsigned
inner_want(const struct fault_socket *s)
{
    unsigned w = s->cb ? s->want : 0;

    if (s->eff.partition & MSGR_FAULT_DIR_IN)
        w &= ~MSGR_IO_READ;
    if (s->eff.partition & MSGR_FAULT_DIR_OUT)
        w &= ~MSGR_IO_WRITE;
    if (delay_mode(s) && (s->held >= HOLD_MAX_BYTES || s->held_final))
        w &= ~MSGR_IO_READ;
    if (s->congested)
        w &= ~MSGR_IO_WRITE;
    return w;
}

static void kick_cb(void *arg);

static void
kick_cancel(struct fault_socket *s)
{
    if (s->kick_armed) {
        s->fs->iops->timer_cancel(s->kick);
        s->kick_armed = 0;
    }
}

static void
kick_arm_at(struct fault_socket *s, msgr_time_ns at, msgr_time_ns now)
{
    struct fault_stack *fs = s->fs;

    /* Already due sooner: the kick looks again when it fires. */
    if (s->kick_armed && s->kick_at <= at)
        return;
    if (!s->kick) {
        s->kick = fs->iops->timer_new(inner_w(s->base.worker), kick_cb, s);
        if (!s->kick)
            return; /* out of memory: readiness comes with the next I/O */
    }
    fs->iops->timer_arm(s->kick, at > now ? at - now : 0);
    s->kick_armed = 1;
    s->kick_at = at;
}

/*
 * Brings the inner interest and the kick timer in line with the state.
 * Worker-only; called after every method and callback that may change it.
 */
static void
sync_io(struct fault_socket *s)
{
    struct fault_stack *fs = s->fs;
    msgr_time_ns now = 0, next_at = NEVER;
    unsigned ev = 0;

    if (atomic_load_explicit(&s->closed, memory_order_relaxed))
        return;
    /* Only the states below need the clock. */
    if (s->dead || s->congested || s->hhead ||
        atomic_load_explicit(&s->reset_req, memory_order_relaxed)) {
        now = now_of(fs);
        ev = synth_events(s, now, &next_at) & s->want;
    }
    if (s->inner && s->cb) {
        unsigned iw = inner_want(s);

        if (iw != s->applied) {
            fs->iops->io_want(s->inner, iw);
            s->applied = iw;
        }
    }
    if (!s->cb) {
        kick_cancel(s);
        return;
    }
    if (ev)
        kick_arm_at(s, now, now);
    else if (next_at != NEVER)
        kick_arm_at(s, next_at, now);
    else
        kick_cancel(s);
}

/* Reads what the inner socket has into the delay line. */
static void
pull(struct fault_socket *s)
{
    struct fault_stack *fs = s->fs;
    uint64_t pulled = 0;

    while (s->inner && s->held < HOLD_MAX_BYTES && !s->held_final) {
        uint8_t buf[PULL_CHUNK];
        struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf)};
        ssize_t n = fs->iops->readv(s->inner, &iov, 1);
        msgr_time_ns due;
        struct chunk *c;

        if (n == -EAGAIN)
            break;
        due = add_sat(now_of(fs), s->eff.recv_delay_ns);
        if (due < s->last_due)
            due = s->last_due; /* never overtake what came first */
        s->last_due = due;
        c = malloc(sizeof(*c) + (n > 0 ? (size_t)n : 0));
        if (!c) {
            n = -ENOMEM; /* the stream cannot go on intact: end it */
            c = malloc(sizeof(*c));
            if (!c)
                break;
        }
        c->next = NULL;
        c->due = due;
        c->off = 0;
        if (n > 0) {
            memcpy(c->data, buf, (size_t)n);
            c->len = (size_t)n;
            c->final = 0;
            s->held += (size_t)n;
            pulled += (uint64_t)n;
        } else {
            c->len = 0;
            c->final = n == 0 ? 1 : (int)n;
            s->held_final = 1;
        }
        *s->htail = c;
        s->htail = &c->next;
    }
    if (pulled) {
        stat_add(&fs->stats.delayed_bytes, pulled);
        notify(fs, MSGR_FAULT_DELAY_BYTES, sock_peer(s), pulled);
    }
}

/* Copies what is due out of the delay line. */
static ssize_t
serve(struct fault_socket *s, const struct iovec *iov, int iovcnt,
      msgr_time_ns now)
{
    size_t done = 0, ioff = 0;
    int i = 0;

    while (i < iovcnt && iov[i].iov_len == 0)
        i++;
    while (s->hhead && s->hhead->due <= now) {
        struct chunk *c = s->hhead;

        if (c->final) {
            int r;

            if (done)
                break;
            r = c->final == 1 ? 0 : c->final;
            c->final = 1; /* an error is told once, then EOF */
            return r;
        }
        if (i >= iovcnt)
            break;
        while (c->off < c->len && i < iovcnt) {
            size_t k = c->len - c->off, room = iov[i].iov_len - ioff;

            if (k > room)
                k = room;
            memcpy((uint8_t *)iov[i].iov_base + ioff, c->data + c->off, k);
            c->off += k;
            ioff += k;
            done += k;
            s->held -= k;
            if (ioff == iov[i].iov_len) {
                ioff = 0;
                for (i++; i < iovcnt && iov[i].iov_len == 0; i++)
                    ;
            }
        }
        if (c->off < c->len)
            break;
        s->hhead = c->next;
        if (!s->hhead)
            s->htail = &s->hhead;
        free(c);
    }
    if (done)
        return (ssize_t)done;
    return i >= iovcnt ? 0 : -EAGAIN; /* empty iovecs read nothing */
}

/* The inner socket is closed abortively; the owner learns on this call. */
static void
do_reset(struct fault_socket *s)
{
    struct fault_stack *fs = s->fs;

    if (s->inner)
        fs->iops->close(s->inner, 1);
    s->inner = NULL;
    s->applied = 0;
    s->dead = 1;
    s->dead_err = 1;
    s->held_final = 1;
    line_free(s);
    stat_add(&fs->stats.resets, 1);
    notify(fs, MSGR_FAULT_RESET, sock_peer(s), 0);
}

/* Returns 1 to go on with the I/O, else what the call returns. */
static ssize_t
reset_check(struct fault_socket *s, int writing)
{
    if (!s->dead &&
        atomic_load_explicit(&s->reset_req, memory_order_relaxed) &&
        atomic_exchange(&s->reset_req, 0))
        do_reset(s);
    if (!s->dead)
        return 1;
    if (s->dead_err) {
        s->dead_err = 0;
        return -ECONNRESET;
    }
    return writing ? -EPIPE : 0;
}

static void
maybe_fail(struct fault_socket *s)
{
    struct fault_stack *fs = s->fs;
    uint32_t n = s->eff.socket_failures;

    if (!n || !s->inner || rnd(fs) % n != 0)
        return;
    /* Ceph's ms_inject_socket_failures: shutdown(SHUT_RDWR), and the
     * I/O that follows fails the way the kernel makes it fail. */
    fs->iops->shutdown(s->inner);
    stat_add(&fs->stats.socket_failures, 1);
    notify(fs, MSGR_FAULT_SOCKET_FAILURE, sock_peer(s), 0);
}

static void
maybe_corrupt(struct fault_socket *s, const struct iovec *iov, int iovcnt,
              size_t n)
{
    struct fault_stack *fs = s->fs;
    uint64_t bit;
    size_t byte;
    int i;

    if (!s->eff.corrupt_ppm || rnd(fs) % 1000000u >= s->eff.corrupt_ppm)
        return;
    bit = rnd(fs) % ((uint64_t)n * 8);
    byte = (size_t)(bit / 8);
    for (i = 0; i < iovcnt; i++) {
        if (byte < iov[i].iov_len) {
            ((uint8_t *)iov[i].iov_base)[byte] ^= (uint8_t)(1u << (bit % 8));
            break;
        }
        byte -= iov[i].iov_len;
    }
    stat_add(&fs->stats.corruptions, 1);
    notify(fs, MSGR_FAULT_CORRUPT, sock_peer(s), bit);
}

/*
 * Every readiness report to the owner goes through here: the inner
 * socket's (inner_events) and the kick timer's (0).
 */
static void
dispatch(struct fault_socket *s, unsigned inner_events)
{
    struct fault_worker *fw = atomic_load(&s->owner);
    unsigned ev = inner_events;

    sock_ref(s); /* the owner may close it from its callback */
    refresh_cfg(s);
    if ((ev & MSGR_IO_READ) && delay_mode(s)) {
        if (!(s->eff.partition & MSGR_FAULT_DIR_IN))
            pull(s);
        ev &= ~MSGR_IO_READ; /* the line tells when bytes are due */
    }
    if (s->eff.partition & MSGR_FAULT_DIR_IN)
        ev &= ~MSGR_IO_READ;
    if (s->eff.partition & MSGR_FAULT_DIR_OUT)
        ev &= ~MSGR_IO_WRITE;
    if (s->dead || s->congested || s->hhead ||
        atomic_load_explicit(&s->reset_req, memory_order_relaxed)) {
        unsigned syn = synth_events(s, now_of(s->fs), NULL);

        if (s->congested)
            ev &= ~MSGR_IO_WRITE;
        ev |= syn;
    }
    ev &= s->want;
    if (ev && s->cb)
        s->cb(&s->base, ev, s->cb_arg);
    /* Closed, or moved to another worker (a resumed session takes the
     * socket over, and that worker may be using it already): not ours to
     * touch any more. */
    if (!atomic_load_explicit(&s->closed, memory_order_relaxed) &&
        atomic_load(&s->owner) == fw)
        sync_io(s);
    sock_unref(s);
}

static void
inner_io_cb(struct msgr_socket *is, unsigned events, void *arg)
{
    (void)is;
    dispatch(arg, events);
}

static void
kick_cb(void *arg)
{
    struct fault_socket *s = arg;

    s->kick_armed = 0;
    dispatch(s, 0);
}

/* A rule changed: apply it on the socket's worker. */
static void
refresh_cb(void *arg)
{
    struct fault_socket *s = arg;
    struct fault_worker *fw;

    if (atomic_load(&s->closed)) {
        sock_unref(s);
        return;
    }
    fw = atomic_load(&s->owner);
    if (!s->fs->iops->in_worker(fw->inner)) {
        /* moved meanwhile: follow it */
        if (s->fs->iops->post(fw->inner, refresh_cb, s) != 0)
            sock_unref(s);
        return;
    }
    refresh_cfg(s);
    sync_io(s);
    sock_unref(s);
}

/* ----------------------------------------------------- socket methods */

static int
f_connect(struct msgr_worker *w, const struct msgr_addr *addr,
          struct msgr_socket **out)
{
    struct fault_stack *fs = to_fw(w)->fs;
    struct msgr_socket *is = NULL;
    struct fault_socket *s;
    int r;

    *out = NULL;
    r = fs->iops->connect(inner_w(w), addr, &is);
    if (r)
        return r;
    s = sock_new(fs, to_fw(w), is, addr);
    if (!s) {
        fs->iops->close(is, 1);
        return -ENOMEM;
    }
    *out = &s->base;
    return 0;
}

static int
f_connect_result(struct msgr_socket *sb)
{
    struct fault_socket *s = to_fsock(sb);
    int r;

    /* a connected socket's reset is for its I/O to report */
    if (s->connected)
        return 0;
    if (!s->dead &&
        atomic_load_explicit(&s->reset_req, memory_order_relaxed) &&
        atomic_exchange(&s->reset_req, 0))
        do_reset(s);
    if (s->dead) {
        s->dead_err = 0;
        return -ECONNRESET;
    }
    r = s->fs->iops->connect_result(s->inner);
    if (r == 0)
        s->connected = 1;
    return r;
}

static void
f_io_set(struct msgr_socket *sb, msgr_io_cb cb, void *arg, unsigned want)
{
    struct fault_socket *s = to_fsock(sb);

    s->cb = cb;
    s->cb_arg = cb ? arg : NULL;
    s->want = cb ? want & IO_BOTH : 0;
    refresh_cfg(s);
    if (s->inner) {
        unsigned iw = inner_want(s);

        s->fs->iops->io_set(s->inner, cb ? inner_io_cb : NULL,
                            cb ? s : NULL, iw);
        s->applied = iw;
    }
    sync_io(s);
}

static void
f_io_want(struct msgr_socket *sb, unsigned want)
{
    struct fault_socket *s = to_fsock(sb);

    s->want = s->cb ? want & IO_BOTH : 0;
    sync_io(s);
}

static ssize_t
f_readv(struct msgr_socket *sb, const struct iovec *iov, int iovcnt)
{
    struct fault_socket *s = to_fsock(sb);
    struct fault_stack *fs = s->fs;
    ssize_t n;

    refresh_cfg(s);
    n = reset_check(s, 0);
    if (n != 1)
        goto out;
    if (s->eff.partition & MSGR_FAULT_DIR_IN) {
        stat_add(&fs->stats.partition_eagains, 1);
        n = -EAGAIN;
        goto out;
    }
    maybe_fail(s);
    if (delay_mode(s)) {
        pull(s);
        n = serve(s, iov, iovcnt, now_of(fs));
    } else {
        n = fs->iops->readv(s->inner, iov, iovcnt);
    }
    if (n > 0)
        maybe_corrupt(s, iov, iovcnt, (size_t)n);
out:
    sync_io(s);
    return n;
}

static ssize_t
f_writev(struct msgr_socket *sb, const struct iovec *iov, int iovcnt)
{
    struct fault_socket *s = to_fsock(sb);
    struct fault_stack *fs = s->fs;
    ssize_t n;

    refresh_cfg(s);
    n = reset_check(s, 1);
    if (n != 1)
        goto out;
    if (s->eff.partition & MSGR_FAULT_DIR_OUT) {
        stat_add(&fs->stats.partition_eagains, 1);
        n = -EAGAIN;
        goto out;
    }
    if (s->congested) {
        if (now_of(fs) < s->hold_until) {
            n = -EAGAIN; /* still held: no new draw */
            goto out;
        }
        s->congested = 0;
    }
    maybe_fail(s);
    if (s->eff.network_congestion > 1 &&
        rnd(fs) % s->eff.network_congestion != 0) {
        msgr_time_ns hold =
            rnd(fs) % (s->eff.congestion_hold_ns == UINT64_MAX
                           ? UINT64_MAX
                           : s->eff.congestion_hold_ns + 1);

        s->congested = 1;
        s->hold_until = add_sat(now_of(fs), hold);
        stat_add(&fs->stats.congestion_eagains, 1);
        notify(fs, MSGR_FAULT_CONGESTION, sock_peer(s), hold);
        n = -EAGAIN;
        goto out;
    }
    n = fs->iops->writev(s->inner, iov, iovcnt);
out:
    sync_io(s);
    return n;
}

static void
f_shutdown(struct msgr_socket *sb)
{
    struct fault_socket *s = to_fsock(sb);

    if (s->inner)
        s->fs->iops->shutdown(s->inner);
}

static void
f_close(struct msgr_socket *sb, int abortive)
{
    struct fault_socket *s = to_fsock(sb);
    struct fault_stack *fs;

    if (!s)
        return;
    fs = s->fs;
    sock_unlink(fs, s);
    atomic_store(&s->closed, 1);
    /* From inside the kick's own callback too: both backends allow it. */
    if (s->kick)
        fs->iops->timer_free(s->kick);
    s->kick = NULL;
    s->kick_armed = 0;
    if (s->inner)
        fs->iops->close(s->inner, abortive);
    s->inner = NULL;
    s->cb = NULL;
    s->cb_arg = NULL;
    line_free(s);
    sock_unref(s);
}

static int
f_local_addr(struct msgr_socket *sb, struct msgr_addr *out)
{
    struct fault_socket *s = to_fsock(sb);

    if (!s->inner) {
        memset(out, 0, sizeof(*out));
        return -ENOTCONN;
    }
    return s->fs->iops->local_addr(s->inner, out);
}

static int
f_peer_addr(struct msgr_socket *sb, struct msgr_addr *out)
{
    struct fault_socket *s = to_fsock(sb);

    if (!s->inner) {
        memset(out, 0, sizeof(*out));
        return -ENOTCONN;
    }
    return s->fs->iops->peer_addr(s->inner, out);
}

static void
f_socket_move(struct msgr_socket *sb, struct msgr_worker *to)
{
    struct fault_socket *s = to_fsock(sb);
    struct fault_stack *fs = s->fs;

    if (sb->worker == to)
        return;
    /* The kick timer belongs to this worker: a new one is made on `to`
     * when needed (io_set there re-applies everything). */
    if (s->kick)
        fs->iops->timer_free(s->kick);
    s->kick = NULL;
    s->kick_armed = 0;
    if (s->inner)
        fs->iops->socket_move(s->inner, inner_w(to));
    s->cb = NULL;
    s->cb_arg = NULL;
    s->want = 0;
    s->applied = 0;
    sb->worker = to;
    atomic_store(&s->owner, to_fw(to));
}

/* ----------------------------------------------------------- listeners */

static void
accept_tramp(struct msgr_listener *il, void *arg)
{
    struct fault_listener *fl = arg;

    (void)il;
    /* fl may be closed (freed) by the callback: nothing may follow. */
    fl->cb(&fl->base, fl->arg);
}

static int
f_listen(struct msgr_worker *w, const struct msgr_addr *addr,
         const struct msgr_listen_opts *opts, msgr_accept_cb cb, void *arg,
         struct msgr_listener **out)
{
    struct fault_stack *fs = to_fw(w)->fs;
    struct fault_listener *fl = calloc(1, sizeof(*fl));
    int r;

    *out = NULL;
    if (!fl)
        return -ENOMEM;
    fl->base.ops = &fs->ops;
    fl->base.worker = w;
    fl->fs = fs;
    fl->cb = cb;
    fl->arg = arg;
    r = fs->iops->listen(inner_w(w), addr, opts, accept_tramp, fl,
                         &fl->inner);
    if (r) {
        free(fl);
        return r;
    }
    *out = &fl->base;
    return 0;
}

static void
f_listener_start(struct msgr_listener *l)
{
    to_fl(l)->fs->iops->listener_start(to_fl(l)->inner);
}

static int
f_listener_addr(struct msgr_listener *l, struct msgr_addr *out)
{
    return to_fl(l)->fs->iops->listener_addr(to_fl(l)->inner, out);
}

static int
f_accept(struct msgr_listener *l, struct msgr_worker *to,
         struct msgr_socket **out, struct msgr_addr *peer)
{
    struct fault_listener *fl = to_fl(l);
    struct fault_stack *fs = fl->fs;
    struct msgr_socket *is = NULL;
    struct fault_socket *s;
    struct msgr_addr p;
    int r;

    *out = NULL;
    memset(&p, 0, sizeof(p));
    r = fs->iops->accept(fl->inner, inner_w(to), &is, &p);
    if (r)
        return r;
    s = sock_new(fs, to_fw(to), is, &p);
    if (!s) {
        fs->iops->close(is, 1);
        return -ENOMEM;
    }
    if (peer)
        *peer = p;
    *out = &s->base;
    return 0;
}

static void
f_listener_close(struct msgr_listener *l)
{
    struct fault_listener *fl = to_fl(l);

    if (!fl)
        return;
    /* The inner listener defers its own free when called from its
     * callback; accept_tramp touches fl no more after the callback. */
    fl->fs->iops->listener_close(fl->inner);
    free(fl);
}

/* -------------------------------------------------------- delayed posts */

static void pump_cb(void *arg);

/* Posts a pump closure to the inner worker; under lock or not. */
static int
pump_post(struct fault_worker *fw)
{
    struct fault_stack *fs = fw->fs;
    int r;

    atomic_fetch_add(&fs->pumps_out, 1);
    r = fs->iops->post(fw->inner, pump_cb, fw);
    if (r)
        atomic_fetch_sub(&fs->pumps_out, 1);
    return r;
}

static void fs_free(struct fault_stack *fs);
static void pump_timer_cb(void *arg);

/*
 * Runs the worker's delay queue in order: each closure once it is due (or
 * flushed by drain/destroy). When the head is not due yet, arms the
 * worker's timer for it and returns; when the queue is empty, frees the
 * timer and clears `active`, after which posts go straight to the inner
 * stack again. One run takes only what was queued when it started, then
 * yields (posts itself again) so that a closure posting to its own worker
 * cannot starve the worker's I/O.
 */
static void
pump_run(struct fault_worker *fw)
{
    struct fault_stack *fs = fw->fs;
    uint64_t limit;

    lock(fs);
    limit = fw->posted_seq;
    unlock(fs);
    for (;;) {
        struct msgr_timer *t;
        struct dpost *n;
        msgr_time_ns now;
        int flush_all = atomic_load(&fs->flush_all);

        lock(fs);
        n = fw->qhead;
        if (!n) {
            atomic_store(&fw->active, 0);
            t = fw->timer;
            fw->timer = NULL;
            unlock(fs);
            if (t)
                fs->iops->timer_free(t);
            return;
        }
        now = now_of(fs);
        if (n->due > now && n->seq > fw->flush_upto && !flush_all) {
            msgr_time_ns wait = n->due - now;

            unlock(fs);
            if (!fw->timer)
                fw->timer = fs->iops->timer_new(fw->inner, pump_timer_cb, fw);
            if (fw->timer)
                fs->iops->timer_arm(fw->timer, wait);
            else if (pump_post(fw) != 0)
                continue; /* no timer, no post: run it early */
            return;
        }
        if (n->seq > limit && !flush_all) {
            unlock(fs);
            if (pump_post(fw) == 0)
                return;
            lock(fs);
        }
        fw->qhead = n->next;
        if (!fw->qhead)
            fw->qtail = &fw->qhead;
        unlock(fs);
        n->cb(n->arg);
        lock(fs);
        fw->ran_seq = n->seq;
        unlock(fs);
        stat_add(&fs->stats.delayed_posts, 1);
        free(n);
    }
}

static void
pump_cb(void *arg)
{
    struct fault_worker *fw = arg;
    struct fault_stack *fs = fw->fs;

    /* Only posted pumps are counted: a timer pump never outlives the
     * stack (destroy frees the timer). A posted one may, when the inner
     * stack was never started and is shared: the last one frees. */
    if (atomic_load(&fs->zombie)) {
        if (atomic_fetch_sub(&fs->pumps_out, 1) == 1)
            fs_free(fs);
        return;
    }
    atomic_fetch_sub(&fs->pumps_out, 1);
    pump_run(fw);
}

/* The timer's entry point: not a counted pump. */
static void
pump_timer_cb(void *arg)
{
    pump_run(arg);
}

static int
f_post(struct msgr_worker *w, msgr_task_cb cb, void *arg)
{
    struct fault_worker *fw = to_fw(w);
    struct fault_stack *fs = fw->fs;
    uint64_t max = atomic_load(&fs->post_delay_ns), d = 0;
    struct dpost *n;
    int r;

    if (!max && !atomic_load(&fw->active))
        return fs->iops->post(fw->inner, cb, arg);
    n = malloc(sizeof(*n));
    if (!n)
        return -ENOMEM;
    if (max)
        d = rnd(fs) % (max == UINT64_MAX ? UINT64_MAX : max + 1);
    n->next = NULL;
    n->cb = cb;
    n->arg = arg;
    lock(fs);
    if (!atomic_load(&fw->active)) {
        /* Posted under the lock: a post racing with us must see either
         * the queue idle and go direct before us, or active and queue
         * after us. */
        r = pump_post(fw);
        if (r) {
            unlock(fs);
            free(n);
            return r;
        }
        atomic_store(&fw->active, 1);
    }
    n->due = add_sat(now_of(fs), d);
    if (n->due < fw->last_due)
        n->due = fw->last_due; /* FIFO: never due before the previous */
    fw->last_due = n->due;
    n->seq = ++fw->posted_seq;
    *fw->qtail = n;
    fw->qtail = &n->next;
    unlock(fs);
    if (max)
        notify(fs, MSGR_FAULT_DELAY_POST, NULL, d);
    return 0;
}

/* -------------------------------------------------------------- stack */

static int
f_start(struct msgr_stack *st)
{
    struct fault_stack *fs = to_fs(st);
    int r = fs->iops->start(fs->inner);

    if (r == 0)
        atomic_store(&fs->started, 1);
    return r;
}

static uint64_t
ran_sum(struct fault_stack *fs)
{
    uint64_t sum = 0;
    int i;

    lock(fs);
    for (i = 0; i < fs->base.nworkers; i++)
        sum += fs->wk[i].ran_seq;
    unlock(fs);
    return sum;
}

static int
any_active(struct fault_stack *fs)
{
    int i;

    for (i = 0; i < fs->base.nworkers; i++) {
        if (atomic_load(&fs->wk[i].active))
            return 1;
    }
    return 0;
}

/*
 * The inner drain, plus every delayed closure posted before the call: they
 * are made due now and a pump is kicked, which the inner barrier follows.
 * Repeats while that makes progress (a pump yields after one batch).
 */
static void
f_drain(struct msgr_stack *st)
{
    struct fault_stack *fs = to_fs(st);
    int n = fs->base.nworkers, i;
    uint64_t *target = calloc((size_t)n, sizeof(*target)), last;

    if (!target) {
        fs->iops->drain(fs->inner);
        return;
    }
    lock(fs);
    for (i = 0; i < n; i++) {
        struct fault_worker *fw = &fs->wk[i];

        target[i] = fw->posted_seq;
        if (fw->flush_upto < target[i])
            fw->flush_upto = target[i];
        /* an extra pump is harmless: it runs what is due and returns */
        if (atomic_load(&fw->active) && fw->ran_seq < target[i])
            pump_post(fw);
    }
    unlock(fs);
    last = ran_sum(fs);
    for (;;) {
        int done = 1;
        uint64_t now_ran;

        fs->iops->drain(fs->inner);
        lock(fs);
        for (i = 0; i < n; i++) {
            if (fs->wk[i].ran_seq < target[i])
                done = 0;
        }
        unlock(fs);
        now_ran = ran_sum(fs);
        if (done || now_ran == last)
            break; /* done, or nothing runs (not started, paused) */
        last = now_ran;
    }
    free(target);
}

static void
fs_free(struct fault_stack *fs)
{
    free(fs->base.workers);
    free(fs->wk);
    free(fs);
}

static void
f_destroy(struct msgr_stack *st)
{
    struct fault_stack *fs = to_fs(st);
    const struct msgr_stack_ops *iops = fs->iops;
    struct msgr_stack *inner = fs->inner;
    uint64_t last;
    int i;

    /* Closures accepted by post() are owed a run: all due now. */
    atomic_store(&fs->flush_all, 1);
    lock(fs);
    for (i = 0; i < fs->base.nworkers; i++) {
        if (atomic_load(&fs->wk[i].active))
            pump_post(&fs->wk[i]);
    }
    unlock(fs);
    /* Also runs the refreshes still in flight (they free closed sockets). */
    last = ran_sum(fs);
    for (;;) {
        uint64_t now_ran;

        iops->drain(inner);
        now_ran = ran_sum(fs);
        if (!any_active(fs) || now_ran == last)
            break;
        last = now_ran;
    }
    /* Nothing ran them (a stack never started): run them here. */
    for (i = 0; i < fs->base.nworkers; i++) {
        struct fault_worker *fw = &fs->wk[i];
        struct dpost *q, *n;

        lock(fs);
        q = fw->qhead;
        fw->qhead = NULL;
        fw->qtail = &fw->qhead;
        unlock(fs);
        while ((n = q) != NULL) {
            q = n->next;
            n->cb(n->arg);
            free(n);
        }
        if (fw->timer)
            iops->timer_free(fw->timer);
        fw->timer = NULL;
        atomic_store(&fw->active, 0);
    }
    iops->mutex_free(fs->lock);
    fs->lock = NULL;
    free(fs->rules);
    fs->rules = NULL;
    /*
     * A pump closure can still sit in the inner queue only when nothing
     * ran it: the inner stack was never started (or its sim host is
     * paused or dead). Then no worker runs our code concurrently, and the
     * last such pump frees fs when it finally runs (maybe during the
     * unref below, as the inner stack's destroy runs what it accepted).
     */
    if (atomic_load(&fs->pumps_out) == 0) {
        msgr_stack_unref(inner);
        fs_free(fs);
        return;
    }
    atomic_store(&fs->zombie, 1);
    msgr_stack_unref(inner); /* fs may be gone from here on */
}

static msgr_time_ns
f_now_ns(struct msgr_stack *st)
{
    return now_of(to_fs(st));
}

static uint64_t
f_random_u64(struct msgr_stack *st)
{
    return rnd(to_fs(st));
}

static int
f_wait_until(struct msgr_stack *st, int (*cond)(void *arg), void *arg,
             msgr_time_ns timeout_ns)
{
    struct fault_stack *fs = to_fs(st);

    return fs->iops->wait_until(fs->inner, cond, arg, timeout_ns);
}

static int
f_in_worker(struct msgr_worker *w)
{
    return to_fw(w)->fs->iops->in_worker(inner_w(w));
}

static struct msgr_timer *
f_timer_new(struct msgr_worker *w, msgr_task_cb cb, void *arg)
{
    return to_fw(w)->fs->iops->timer_new(inner_w(w), cb, arg);
}

/*
 * Timers and mutexes are the inner stack's own objects. timer_new and
 * mutex_new translate the worker/stack; the methods taking only the
 * object cannot find the inner table from it, so the per-stack copy of
 * the table holds the inner methods themselves (msgr_fault_stack_new).
 */

static struct msgr_mutex *
f_mutex_new(struct msgr_stack *st)
{
    struct fault_stack *fs = to_fs(st);

    return fs->iops->mutex_new(fs->inner);
}

static const struct msgr_stack_ops fault_ops = {
    .name = "fault",
    .version = MSGR_STACK_OPS_VERSION,
    .caps = 0, /* the inner stack's, copied per stack */

    .start = f_start,
    .drain = f_drain,
    .destroy = f_destroy,
    .now_ns = f_now_ns,
    .random_u64 = f_random_u64,
    .wait_until = f_wait_until,

    .post = f_post,
    .in_worker = f_in_worker,

    .timer_new = f_timer_new,
    /* timer_arm, timer_cancel, timer_free, mutex_lock, mutex_unlock,
     * mutex_free: the inner methods, filled in per stack */

    .mutex_new = f_mutex_new,

    .listen = f_listen,
    .listener_start = f_listener_start,
    .listener_addr = f_listener_addr,
    .accept = f_accept,
    .listener_close = f_listener_close,

    .connect = f_connect,
    .connect_result = f_connect_result,
    .io_set = f_io_set,
    .io_want = f_io_want,
    .readv = f_readv,
    .writev = f_writev,
    .shutdown = f_shutdown,
    .close = f_close,
    .local_addr = f_local_addr,
    .peer_addr = f_peer_addr,
    .socket_move = f_socket_move,
};

/* ----------------------------------------------------------- public API */

int
msgr_fault_stack_is(const struct msgr_stack *st)
{
    return st && st->ops && st->ops->destroy == f_destroy;
}

static struct fault_stack *
fault_of(struct msgr_stack *st)
{
    return msgr_fault_stack_is(st) ? to_fs(st) : NULL;
}

struct msgr_stack *
msgr_fault_stack_new(struct msgr_stack *inner,
                     const struct msgr_fault_config *cfg, int *err)
{
    struct fault_stack *fs;
    int n, i, dummy;

    if (!err)
        err = &dummy;
    *err = 0;
    if (!inner || !inner->ops || inner->nworkers <= 0 ||
        inner->ops->version < MSGR_STACK_OPS_VERSION) {
        *err = -EINVAL;
        return NULL;
    }
    n = inner->nworkers;
    fs = calloc(1, sizeof(*fs));
    if (!fs)
        goto nomem;
    fs->wk = calloc((size_t)n, sizeof(*fs->wk));
    fs->base.workers = calloc((size_t)n, sizeof(*fs->base.workers));
    fs->rules = calloc(4, sizeof(*fs->rules));
    if (!fs->wk || !fs->base.workers || !fs->rules)
        goto nomem;
    fs->inner = inner;
    fs->iops = inner->ops;
    fs->lock = fs->iops->mutex_new(inner);
    if (!fs->lock)
        goto nomem;
    fs->ops = fault_ops;
    fs->ops.caps = inner->ops->caps;
    fs->ops.timer_arm = inner->ops->timer_arm;
    fs->ops.timer_cancel = inner->ops->timer_cancel;
    fs->ops.timer_free = inner->ops->timer_free;
    fs->ops.mutex_lock = inner->ops->mutex_lock;
    fs->ops.mutex_unlock = inner->ops->mutex_unlock;
    fs->ops.mutex_free = inner->ops->mutex_free;
    fs->caprules = 4;
    fs->nrules = 1;
    fs->rules[0].all = 1;
    if (cfg)
        fs->rules[0].cfg = *cfg;
    atomic_init(&fs->post_delay_ns, cfg ? cfg->internal_delay_ns : 0);
    atomic_init(&fs->gen, 1);
    atomic_init(&fs->has_obs, 0);
    atomic_init(&fs->started, 0);
    atomic_init(&fs->flush_all, 0);
    atomic_init(&fs->zombie, 0);
    atomic_init(&fs->pumps_out, 0);
    fs->base.ops = &fs->ops;
    fs->base.nworkers = n;
    atomic_init(&fs->base.refs, 1);
    for (i = 0; i < n; i++) {
        struct fault_worker *fw = &fs->wk[i];

        fw->base.stack = &fs->base;
        fw->base.id = i;
        atomic_init(&fw->base.refs, 0);
        atomic_init(&fw->base.perf.msgs_in, 0);
        atomic_init(&fw->base.perf.msgs_out, 0);
        atomic_init(&fw->base.perf.bytes_in, 0);
        atomic_init(&fw->base.perf.bytes_out, 0);
        atomic_init(&fw->base.perf.active_conns, 0);
        fw->fs = fs;
        fw->inner = inner->workers[i];
        fw->qtail = &fw->qhead;
        atomic_init(&fw->active, 0);
        fs->base.workers[i] = &fw->base;
    }
    msgr_stack_ref(inner);
    return &fs->base;

nomem:
    if (fs) {
        free(fs->rules);
        free(fs->wk);
        free(fs->base.workers);
        free(fs);
    }
    *err = -ENOMEM;
    return NULL;
}

struct msgr_stack *
msgr_fault_inner(struct msgr_stack *st)
{
    struct fault_stack *fs = fault_of(st);

    return fs ? fs->inner : NULL;
}

struct msgr_worker *
msgr_fault_inner_worker(struct msgr_worker *w)
{
    if (!w || !msgr_fault_stack_is(w->stack))
        return NULL;
    return inner_w(w);
}

/* Applies fn to the entry for peer and the sockets it concerns. */
static int
modify(struct msgr_stack *st, const struct msgr_addr *peer,
       void (*fn)(struct msgr_fault_config *c, const void *arg),
       const void *arg)
{
    struct fault_stack *fs = fault_of(st);
    struct rule *r;

    if (!fs)
        return -EINVAL;
    lock(fs);
    r = rule_get(fs, peer, 1);
    if (!r) {
        unlock(fs);
        return -ENOMEM;
    }
    fn(&r->cfg, arg);
    if (!peer)
        atomic_store(&fs->post_delay_ns, r->cfg.internal_delay_ns);
    else
        r->cfg.internal_delay_ns = 0; /* stack-wide only */
    atomic_fetch_add_explicit(&fs->gen, 1, memory_order_release);
    post_refreshes(fs, peer);
    unlock(fs);
    return 0;
}

static void
set_all(struct msgr_fault_config *c, const void *arg)
{
    *c = *(const struct msgr_fault_config *)arg;
}

int
msgr_fault_set(struct msgr_stack *st, const struct msgr_addr *peer,
               const struct msgr_fault_config *cfg)
{
    struct msgr_fault_config zero;

    if (!cfg) {
        memset(&zero, 0, sizeof(zero));
        cfg = &zero;
    }
    return modify(st, peer, set_all, cfg);
}

int
msgr_fault_get(struct msgr_stack *st, const struct msgr_addr *peer,
               struct msgr_fault_config *out)
{
    struct fault_stack *fs = fault_of(st);
    struct rule *r;

    memset(out, 0, sizeof(*out));
    if (!fs)
        return -EINVAL;
    lock(fs);
    r = rule_get(fs, peer, 0);
    if (r)
        *out = r->cfg;
    unlock(fs);
    return 0;
}

int
msgr_fault_clear(struct msgr_stack *st, const struct msgr_addr *peer)
{
    struct fault_stack *fs = fault_of(st);
    struct rule *r;

    if (!fs)
        return -EINVAL;
    lock(fs);
    r = rule_get(fs, peer, 0);
    if (r && r->all) {
        memset(&r->cfg, 0, sizeof(r->cfg));
        atomic_store(&fs->post_delay_ns, 0);
    } else if (r) {
        *r = fs->rules[--fs->nrules];
    }
    if (r) {
        atomic_fetch_add_explicit(&fs->gen, 1, memory_order_release);
        post_refreshes(fs, peer);
    }
    unlock(fs);
    return 0;
}

static void
set_failures(struct msgr_fault_config *c, const void *arg)
{
    c->socket_failures = *(const uint32_t *)arg;
}

int
msgr_fault_set_socket_failures(struct msgr_stack *st,
                               const struct msgr_addr *peer, uint32_t n)
{
    return modify(st, peer, set_failures, &n);
}

static void
set_congestion(struct msgr_fault_config *c, const void *arg)
{
    c->network_congestion = *(const uint32_t *)arg;
}

int
msgr_fault_set_network_congestion(struct msgr_stack *st,
                                  const struct msgr_addr *peer, uint32_t n)
{
    return modify(st, peer, set_congestion, &n);
}

static void
set_recv_delay(struct msgr_fault_config *c, const void *arg)
{
    c->recv_delay_ns = *(const msgr_time_ns *)arg;
}

int
msgr_fault_set_recv_delay(struct msgr_stack *st, const struct msgr_addr *peer,
                          msgr_time_ns delay_ns)
{
    return modify(st, peer, set_recv_delay, &delay_ns);
}

static void
set_corrupt(struct msgr_fault_config *c, const void *arg)
{
    c->corrupt_ppm = *(const uint32_t *)arg;
}

int
msgr_fault_set_corrupt(struct msgr_stack *st, const struct msgr_addr *peer,
                       uint32_t ppm)
{
    return modify(st, peer, set_corrupt, &ppm);
}

static void
set_partition(struct msgr_fault_config *c, const void *arg)
{
    c->partition = *(const unsigned *)arg & MSGR_FAULT_DIR_BOTH;
}

int
msgr_fault_partition(struct msgr_stack *st, const struct msgr_addr *peer,
                     unsigned dirs)
{
    return modify(st, peer, set_partition, &dirs);
}

static void
set_internal_delay(struct msgr_fault_config *c, const void *arg)
{
    c->internal_delay_ns = *(const msgr_time_ns *)arg;
}

int
msgr_fault_set_internal_delay(struct msgr_stack *st, msgr_time_ns max_delay_ns)
{
    return modify(st, NULL, set_internal_delay, &max_delay_ns);
}

int
msgr_fault_reset(struct msgr_stack *st, const struct msgr_addr *peer)
{
    struct fault_stack *fs = fault_of(st);
    struct fault_socket *s;
    int count = 0;

    if (!fs)
        return -EINVAL;
    lock(fs);
    for (s = fs->socks; s; s = s->next) {
        if (peer && !(s->has_peer && addr_match(peer, &s->peer)))
            continue;
        atomic_store(&s->reset_req, 1);
        count++;
    }
    /* wake the owners: an idle socket learns now, not at its next I/O */
    if (count)
        post_refreshes(fs, peer);
    unlock(fs);
    return count;
}

void
msgr_fault_set_observer(struct msgr_stack *st, msgr_fault_observer_cb cb,
                        void *arg)
{
    struct fault_stack *fs = fault_of(st);

    if (!fs)
        return;
    lock(fs);
    fs->obs = cb;
    fs->obs_arg = arg;
    atomic_store_explicit(&fs->has_obs, cb != NULL, memory_order_release);
    unlock(fs);
}

void
msgr_fault_get_stats(struct msgr_stack *st, struct msgr_fault_stats *out)
{
    struct fault_stack *fs = fault_of(st);

    memset(out, 0, sizeof(*out));
    if (!fs)
        return;
    out->socket_failures = atomic_load(&fs->stats.socket_failures);
    out->congestion_eagains = atomic_load(&fs->stats.congestion_eagains);
    out->partition_eagains = atomic_load(&fs->stats.partition_eagains);
    out->delayed_bytes = atomic_load(&fs->stats.delayed_bytes);
    out->corruptions = atomic_load(&fs->stats.corruptions);
    out->resets = atomic_load(&fs->stats.resets);
    out->delayed_posts = atomic_load(&fs->stats.delayed_posts);
}
