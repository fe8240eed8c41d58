/*
 * The wire: link parameters per direction, partitions, per-pair fault
 * knobs, bandwidth queues, and the fate of each segment.
 *
 * A segment's fate is decided when it is sent, from the sending host's
 * SIM_STREAM_NET stream, in a fixed order of draws (loss, jitter,
 * corruption), and only for the knobs that are on: a world with default
 * links draws nothing, so turning on loss between two hosts does not
 * reshuffle anything elsewhere. Whether the receiving host is still there
 * is decided on arrival (tcp.c), since it may crash while the segment
 * flies.
 */
#include <stdlib.h>
#include <string.h>

#include "net.h"

#define SEG_SLAB        256
#define EPHEMERAL_FIRST 40000

struct seg_slab {
    struct seg_slab *next;
    struct sim_seg segs[SEG_SLAB];
};

/* ------------------------------------------------------------ lifecycle */

void
sim__net_init(struct sim_world *w)
{
    struct sim_net *n = calloc(1, sizeof(*n));

    SIM_ASSERT(n != NULL);
    n->w = w;
    n->defaults.latency_ns = SIM_LATENCY_DEFAULT_NS;
    n->next_conn_id = 1;
    w->net = n;
}

void
sim__net_fini(struct sim_world *w)
{
    struct sim_net *n = w->net;
    struct seg_slab *s, *next;

    if (!n)
        return;
    sim__tcp_fini(w);
    for (s = n->slabs; s; s = next) {
        next = s->next;
        free(s);
    }
    free(n);
    w->net = NULL;
}

void
sim__net_host_init(struct sim_host *h)
{
    struct sim_world *w = h->world;
    struct sim_host_net *hn = calloc(1, sizeof(*hn));

    SIM_ASSERT(hn != NULL);
    hn->host = h;
    hn->idx = w->net->next_host_idx++;
    sim_world_rng(w, SIM_STREAM_NET, h->id, &hn->rng_net);
    sim_world_rng(w, SIM_STREAM_FAULT, h->id, &hn->rng_fault);
    hn->next_port = EPHEMERAL_FIRST;
    h->net = hn;
}

void
sim__net_host_fini(struct sim_host *h)
{
    struct sim_host_net *hn = h->net;
    uint32_t i;

    if (!hn)
        return;
    sim__tcp_host_fini(h);
    for (i = 0; i < hn->npairs; i++)
        free(hn->pairs[i]);
    free(hn->pairs);
    free(hn);
    h->net = NULL;
}

/* ---------------------------------------------------------------- pairs */

struct sim_pair *
sim__net_pair(struct sim_host *a, struct sim_host *b)
{
    uint32_t i = b->net->idx;

    return i < a->net->npairs ? a->net->pairs[i] : NULL;
}

static struct sim_pair *
pair_make(struct sim_world *w, struct sim_host *a, struct sim_host *b)
{
    struct sim_host_net *an = a->net;
    uint32_t i = b->net->idx;

    if (i >= an->npairs) {
        uint32_t n = an->npairs ? an->npairs : 4;
        struct sim_pair **p;

        while (n <= i)
            n *= 2;
        p = realloc(an->pairs, n * sizeof(*p));
        SIM_ASSERT(p != NULL);
        memset(p + an->npairs, 0, (n - an->npairs) * sizeof(*p));
        an->pairs = p;
        an->npairs = n;
    }
    if (!an->pairs[i]) {
        an->pairs[i] = calloc(1, sizeof(struct sim_pair));
        SIM_ASSERT(an->pairs[i] != NULL);
        an->pairs[i]->params = w->net->defaults;
    }
    return an->pairs[i];
}

void
sim_link_default(struct sim_world *w, const struct sim_link_params *p)
{
    w->net->defaults = *p;
}

void
sim_link_set(struct sim_world *w, struct sim_host *a, struct sim_host *b,
             const struct sim_link_params *p)
{
    struct sim_pair *pr = pair_make(w, a, b);

    pr->params = *p;
    pr->has_params = 1;
}

void
sim_link_get(struct sim_world *w, struct sim_host *a, struct sim_host *b,
             struct sim_link_params *out)
{
    struct sim_pair *pr = sim__net_pair(a, b);

    *out = pr && pr->has_params ? pr->params : w->net->defaults;
}

void
sim_partition(struct sim_world *w, struct sim_host *a, struct sim_host *b,
              int on)
{
    pair_make(w, a, b)->partitioned = on != 0;
}

void
sim_reset_prob(struct sim_world *w, struct sim_host *a, struct sim_host *b,
               uint32_t ppm)
{
    pair_make(w, a, b)->reset_ppm = ppm;
}

void
sim_set_capture(struct sim_world *w, sim_capture_cb cb, void *arg)
{
    w->net->capture_cb = cb;
    w->net->capture_arg = cb ? arg : NULL;
}

void
sim_net_stats(const struct sim_world *w, struct sim_net_stats *out)
{
    *out = w->stats;
}

void
sim__net_fp(struct sim_world *w, uint64_t code, const struct sim_host *a,
            const struct sim_host *b)
{
    sim_fp_mix_u64(w, code);
    sim_fp_mix_u64(w, a ? a->id : UINT32_MAX);
    sim_fp_mix_u64(w, b ? b->id : UINT32_MAX);
    sim_fp_mix_u64(w, sim_now(w));
}

/* ------------------------------------------------------------- segments */

struct sim_seg *
sim__seg_alloc(struct sim_net *n)
{
    struct sim_seg *s = n->seg_free;

    if (!s) {
        struct seg_slab *slab = malloc(sizeof(*slab));
        int i;

        SIM_ASSERT(slab != NULL);
        slab->next = n->slabs;
        n->slabs = slab;
        /* Reverse, so the slab's first segment is handed out first. */
        for (i = SEG_SLAB; i-- > 0;) {
            slab->segs[i].next = n->seg_free;
            n->seg_free = &slab->segs[i];
        }
        s = n->seg_free;
    }
    n->seg_free = s->next;
    return s;
}

void
sim__seg_free(struct sim_net *n, struct sim_seg *s)
{
    s->conn = NULL;
    s->next = n->seg_free;
    n->seg_free = s;
}

static msgr_time_ns
sat_add(msgr_time_ns a, msgr_time_ns b)
{
    return b > UINT64_MAX - a ? UINT64_MAX : a + b;
}

int
sim__net_route(struct sim_world *w, struct sim_host *a, struct sim_host *b,
               uint32_t payload, msgr_time_ns *flow_last, msgr_time_ns *at,
               uint32_t *corrupt_bit)
{
    struct sim_rng *rng = &a->net->rng_net;
    const struct sim_link_params *lp;
    struct sim_pair *pr;
    msgr_time_ns t = sim_now(w);

    *corrupt_bit = 0;
    w->stats.segments_sent++;
    /* No such address, or our own host is gone: nothing leaves. */
    if (!b || a->state == SIM_HOST_CRASHED) {
        w->stats.segments_dropped++;
        sim__net_fp(w, SIM_FP_NET_LOSS, a, b);
        return 0;
    }
    pr = sim__net_pair(a, b);
    lp = pr && pr->has_params ? &pr->params : &w->net->defaults;
    if (lp->bandwidth_bps) {
        /* Serialised one after the other on the sender's side, lost or
         * not: a dropped segment still used the link before it vanished. */
        uint64_t bits = (uint64_t)(payload + SIM_TCP_HDR) * 8u;

        pr = pair_make(w, a, b);
        if (pr->busy_until > t)
            t = pr->busy_until;
        t = sat_add(t, (bits * MSGR_NS_PER_S + lp->bandwidth_bps - 1) /
                           lp->bandwidth_bps);
        pr->busy_until = t;
    }
    /* a partition draws nothing: the stream is only used by real loss */
    if ((pr && pr->partitioned) ||
        (lp->loss_ppm && sim_rng_chance_ppm(rng, lp->loss_ppm))) {
        w->stats.segments_dropped++;
        sim__net_fp(w, SIM_FP_NET_LOSS, a, b);
        return 0;
    }
    t = sat_add(t, lp->latency_ns);
    if (lp->jitter_ns)
        t = sat_add(t, sim_rng_below(rng, lp->jitter_ns == UINT64_MAX
                                              ? UINT64_MAX
                                              : lp->jitter_ns + 1));
    if (payload && lp->corrupt_ppm && sim_rng_chance_ppm(rng, lp->corrupt_ppm))
        *corrupt_bit = 1 + (uint32_t)sim_rng_below(rng, (uint64_t)payload * 8u);
    /* FIFO per flow: jitter stretches gaps but never swaps segments. */
    if (t < *flow_last)
        t = *flow_last;
    *flow_last = t;
    *at = t;
    return 1;
}
