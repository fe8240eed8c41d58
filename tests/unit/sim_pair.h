/*
 * Two messengers on a sim world for the unit tests of one feature each:
 * client.0 on 10.0.0.1 sends to osd.1 bound at 10.0.0.2:6800. The
 * receiver's dispatcher records every message (sequence number and send
 * time carried in the front, arrival time) and may hold them, as a slow
 * application does; a tracer counts frames and fates per messenger and
 * feeds the world's fingerprint.
 */
#ifndef TEST_SIM_PAIR_H
#define TEST_SIM_PAIR_H

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "frame.h" /* MSGR_TAG_* */
#include "msgr/msgr.h"
#include "sim/sim.h"

#define PAIR_MAX_MSGS 4096

struct pair_front {
    uint64_t seq;
    msgr_time_ns sent;
};

struct pair_rx {
    long delivered;
    int out_of_order;  /* first seq that went backwards (+1); with all n
                          delivered and none backwards: once, in order */
    uint64_t next;
    msgr_time_ns latency[PAIR_MAX_MSGS]; /* by seq */
    uint16_t type[PAIR_MAX_MSGS];        /* by arrival */
    int resets, remote_resets;
    /* hold mode: messages kept as a slow application would */
    int hold;
    struct msgr_msg *held[PAIR_MAX_MSGS];
    int held_head, held_tail;
    int held_max;
};

struct pair_counts {
    long frames_out[256], frames_in[256];
    long fate[MSGR_FATE_BLACKHOLED + 1];
    long faults;
    long resets; /* ms_handle_reset upcalls on this messenger */
};

/* Optional, read by pair_init: frame breakers for the client (a) and the
 * osd (b), installed before start; a hook told of every fault. */
static const struct msgr_frame_breaker *pair_breaker_a, *pair_breaker_b;
static void (*pair_fault_hook)(struct msgr *m, struct msgr_conn *c);

struct pair {
    struct sim_world *w;
    struct sim_host *ha, *hb;
    struct msgr_stack *sa, *sb;
    struct msgr *ma, *mb;
    struct msgr_addrvec to;
    struct pair_rx rx;
    struct msgr_tracer fp;
    struct pair_counts ca, cb; /* by messenger */
};

static inline struct pair_counts *
pair_counts(struct pair *p, struct msgr *m)
{
    return m == p->ma ? &p->ca : &p->cb;
}

static inline void
pair_tr_state(void *arg, struct msgr *m, struct msgr_conn *c,
              const char *from, const char *to, const char *cause)
{
    struct pair *p = arg;
    p->fp.state(p->fp.arg, m, c, from, to, cause);
}

static inline void
pair_tr_frame(void *arg, struct msgr *m, struct msgr_conn *c, int dir,
              unsigned tag, uint64_t bytes)
{
    struct pair *p = arg;
    p->fp.frame(p->fp.arg, m, c, dir, tag, bytes);
    struct pair_counts *k = pair_counts(p, m);
    (dir ? k->frames_out : k->frames_in)[tag & 0xff]++;
}

static inline void
pair_tr_msg(void *arg, struct msgr *m, struct msgr_conn *c,
            const struct msgr_msg *msg, int fate)
{
    struct pair *p = arg;
    p->fp.msg(p->fp.arg, m, c, msg, fate);
    pair_counts(p, m)->fate[fate]++;
}

static inline void
pair_tr_fault(void *arg, struct msgr *m, struct msgr_conn *c, int err,
              const char *what)
{
    struct pair *p = arg;
    p->fp.fault(p->fp.arg, m, c, err, what);
    pair_counts(p, m)->faults++;
    if (pair_fault_hook)
        pair_fault_hook(m, c);
}

static struct pair *pair_cur;

static inline int
pair_dispatch(void *arg, struct msgr_msg *m)
{
    struct pair_rx *r = arg;
    struct pair_front f;
    memcpy(&f, m->front.data, sizeof(f));
    if (f.seq < r->next && !r->out_of_order)
        r->out_of_order = (int)f.seq + 1;
    r->next = f.seq + 1;
    if (f.seq < PAIR_MAX_MSGS)
        r->latency[f.seq] = sim_now(pair_cur->w) - f.sent;
    if (r->delivered < PAIR_MAX_MSGS)
        r->type[r->delivered] = m->hdr.type;
    r->delivered++;
    if (r->hold) {
        r->held[r->held_tail++] = m;
        if (r->held_tail - r->held_head > r->held_max)
            r->held_max = r->held_tail - r->held_head;
    } else {
        msgr_msg_unref(m);
    }
    return 1;
}

static inline int
pair_reset(void *arg, struct msgr_conn *c)
{
    ((struct pair_rx *)arg)->resets++;
    pair_counts(pair_cur, msgr_conn_messenger(c))->resets++;
    return 1;
}

static inline void
pair_remote_reset(void *arg, struct msgr_conn *c)
{
    (void)c;
    ((struct pair_rx *)arg)->remote_resets++;
}

static inline int
pair_held(const struct pair *p)
{
    return p->rx.held_tail - p->rx.held_head;
}

/* The slow application finishes with its oldest message. */
static inline int
pair_release_one(struct pair *p)
{
    if (pair_held(p) == 0)
        return 0;
    msgr_msg_unref(p->rx.held[p->rx.held_head++]);
    return 1;
}

/*
 * ca, cb: the messengers' configurations (name, nonce and stack are
 * filled in); srv: the receiver's policy for clients (NULL: lossless
 * peer).
 */
static inline void
pair_init(struct pair *p, uint64_t seed, const struct msgr_config *ca,
          const struct msgr_config *cb, const struct msgr_policy *srv)
{
    memset(p, 0, sizeof(*p));
    pair_cur = p;
    p->w = sim_world_new(seed);
    struct sim_link_params lp = {.latency_ns = 200 * MSGR_NS_PER_US,
                                 .jitter_ns = 20 * MSGR_NS_PER_US};
    sim_link_default(p->w, &lp);
    p->ha = sim_host_new(p->w, 1, "client.0", 0x0a000001u);
    p->hb = sim_host_new(p->w, 2, "osd.1", 0x0a000002u);
    struct sim_stack_config sc = {.nworkers = 2};
    int err = 0;
    p->sa = sim_stack_new(p->w, p->ha, &sc, &err);
    p->sb = sim_stack_new(p->w, p->hb, &sc, &err);
    assert_non_null(p->sa);
    assert_non_null(p->sb);
    struct msgr_config a = *ca, b = *cb;
    a.name = (struct msgr_entity_name){MSGR_ENTITY_CLIENT, 0};
    a.nonce = 11;
    a.stack = p->sa;
    b.name = (struct msgr_entity_name){MSGR_ENTITY_OSD, 1};
    b.nonce = 22;
    b.stack = p->sb;
    p->ma = msgr_create(&a, &err);
    p->mb = msgr_create(&b, &err);
    assert_non_null(p->ma);
    assert_non_null(p->mb);
    if (getenv("T_LOG")) {
        msgr_set_log(p->ma, MSGR_LOG_DEBUG, NULL, NULL);
        msgr_set_log(p->mb, MSGR_LOG_DEBUG, NULL, NULL);
    }
    sim_fp_tracer(p->w, &p->fp);
    struct msgr_tracer tr = {.arg = p,
                             .state = pair_tr_state,
                             .frame = pair_tr_frame,
                             .msg = pair_tr_msg,
                             .fault = pair_tr_fault};
    msgr_set_tracer(p->ma, &tr);
    msgr_set_tracer(p->mb, &tr);
    struct msgr_policy pc = msgr_policy_make(MSGR_POLICY_LOSSLESS_PEER, 0);
    struct msgr_policy ps = srv ? *srv
                                : msgr_policy_make(MSGR_POLICY_LOSSLESS_PEER, 0);
    msgr_set_policy(p->ma, MSGR_ENTITY_OSD, &pc);
    msgr_set_policy(p->mb, MSGR_ENTITY_CLIENT, &ps);
    struct msgr_addr ab;
    sim_host_addr(p->hb, 6800, &ab);
    assert_int_equal(msgr_bind(p->mb, &ab), 0);
    struct msgr_dispatcher da = {.arg = &p->rx, .ms_handle_reset = pair_reset};
    struct msgr_dispatcher db = {.arg = &p->rx,
                                 .ms_dispatch = pair_dispatch,
                                 .ms_handle_reset = pair_reset,
                                 .ms_handle_remote_reset = pair_remote_reset};
    if (pair_breaker_a)
        msgr_set_frame_breaker(p->ma, pair_breaker_a);
    if (pair_breaker_b)
        msgr_set_frame_breaker(p->mb, pair_breaker_b);
    msgr_start(p->ma);
    msgr_start(p->mb);
    msgr_add_dispatcher(p->ma, &da);
    msgr_add_dispatcher(p->mb, &db);
    msgr_get_myaddrs(p->mb, &p->to);
}

/* One message client -> osd: front carries seq and the send time. */
static inline void
pair_send(struct pair *p, uint16_t type, uint64_t seq, uint32_t data_len)
{
    struct msgr_msg *m = msgr_msg_new(type, 64, 0, data_len);
    assert_non_null(m);
    memset(m->front.data, 0, 64);
    struct pair_front f = {.seq = seq, .sent = sim_now(p->w)};
    memcpy(m->front.data, &f, sizeof(f));
    if (data_len)
        memset(m->data.data, (int)(seq & 0xff), data_len);
    assert_int_equal(msgr_send_message(p->ma, m, MSGR_ENTITY_OSD, &p->to), 0);
}

static inline void
pair_run(struct pair *p, msgr_time_ns dt)
{
    sim_run_until(p->w, sim_now(p->w) + dt);
}

static long pair_want;

static inline int
pair_has(void *arg)
{
    return ((struct pair *)arg)->rx.delivered >= pair_want;
}

/* Runs until n messages were delivered (or the virtual timeout). */
static inline int
pair_wait_delivered(struct pair *p, long n, msgr_time_ns timeout)
{
    pair_want = n;
    return sim_run_until_cond(p->w, pair_has, p, sim_now(p->w) + timeout);
}

/* The client's connection to the osd (a reference). */
static inline struct msgr_conn *
pair_conn(struct pair *p)
{
    int err = 0;
    struct msgr_conn *c =
        msgr_get_connection(p->ma, MSGR_ENTITY_OSD, &p->to, &err);
    assert_non_null(c);
    return c;
}

/* Tears down; returns the world's fingerprint. */
static inline uint64_t
pair_fini(struct pair *p)
{
    while (pair_release_one(p))
        ;
    msgr_shutdown(p->ma);
    msgr_shutdown(p->mb);
    msgr_wait(p->ma);
    msgr_wait(p->mb);
    msgr_destroy(p->ma);
    msgr_destroy(p->mb);
    msgr_stack_unref(p->sa);
    msgr_stack_unref(p->sb);
    uint64_t fp = sim_fingerprint(p->w);
    sim_world_free(p->w);
    pair_cur = NULL;
    return fp;
}

#endif
