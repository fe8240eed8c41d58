/*
 * The workload and its ledger. Every message the runner sends carries a
 * header (sender, receiver, sequence per pair, send time, a checksum of
 * the body), so the receiver side detects loss, duplication, reordering
 * and corruption per pair without trusting the messenger.
 */
#include "run_internal.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static void
put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void
put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t
get32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v |= (uint32_t)p[i] << (8 * i);
    return v;
}

static uint64_t
get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* FNV-1a, 64 bit: small, fixed, good enough to catch flipped bits. */
static uint64_t
checksum(const uint8_t *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static void
seen_grow(struct rn_pair *pr, uint64_t seq)
{
    if (seq < pr->seen_cap)
        return;
    uint64_t cap = pr->seen_cap ? pr->seen_cap : 64;
    while (cap <= seq)
        cap *= 2;
    uint8_t *n = realloc(pr->seen, cap);
    if (!n)
        abort();
    memset(n + pr->seen_cap, 0, cap - pr->seen_cap);
    pr->seen = n;
    pr->seen_cap = cap;
}

static void
pending_add(struct rn_conn *rc, uint32_t dst, uint64_t seq, uint64_t tid)
{
    if (rc->npending == rc->cappending) {
        rc->cappending = rc->cappending ? rc->cappending * 2 : 16;
        rc->pending = realloc(rc->pending,
                              rc->cappending * sizeof(*rc->pending));
        if (!rc->pending)
            abort();
    }
    rc->pending[rc->npending++] = (struct rn_pending){dst, seq, tid};
}

void
rn_send_one(struct rn *r, struct rn_flow *f)
{
    if (!f->left)
        return;
    f->left--;
    struct rn_node *s = &r->nodes[f->src];
    struct rn_node *d = &r->nodes[f->dst];
    if (!s->up) {
        /* a dead or stopped process sends nothing */
        s->sends_skipped++;
        return;
    }
    struct rn_pair *pr = rn_pair(r, f->src, f->dst);
    uint64_t seq = ++pr->sent;
    seen_grow(pr, seq);
    size_t len = f->size < RN_HDR_LEN ? RN_HDR_LEN : (size_t)f->size;
    struct msgr_msg *m = msgr_msg_new(RN_MSG_TYPE, (uint32_t)len, 0, 0);
    if (!m) {
        rn_internal(r, "out of memory for a %zu byte message", len);
        return;
    }
    uint8_t *b = m->front.data;
    /* the body: a deterministic pattern of the pair and seq */
    uint64_t st = r->seed ^ ((uint64_t)f->src << 40) ^
                  ((uint64_t)f->dst << 20) ^ seq;
    for (size_t i = RN_HDR_LEN; i < len; i += 8) {
        uint64_t v = sim_splitmix64(&st);
        size_t k = len - i < 8 ? len - i : 8;
        memcpy(b + i, &v, k);
    }
    uint64_t sum = checksum(b + RN_HDR_LEN, len - RN_HDR_LEN);
    put32(b, RN_MAGIC);
    put32(b + 4, f->src);
    put32(b + 8, f->dst);
    put32(b + 12, s->incarnation);
    put64(b + 16, seq);
    put64(b + 24, rn_now(r));
    put64(b + 32, sum);
    m->hdr.priority = f->priority;
    m->hdr.tid = ++s->next_tid;
    r->msgs_sent++;
    if (r->o->observer && r->o->observer->msg_sent)
        r->o->observer->msg_sent(r->o->observer->arg, rn_now(r), f->src,
                                 f->dst, seq, m->hdr.tid, len, sum);
    int e = 0;
    struct msgr_addrvec to = d->addrs;
    RN_CALL(r, e = msgr_send_message(s->m, m, d->decl->type, &to));
    if (e < 0) {
        /* refused at once (shut down): given up */
        pr->seen[seq] |= RN_SEEN_GIVEN_UP;
        pr->given_up++;
        r->msgs_given_up++;
    }
}

/* Parses a workload header; false when the message is not ours. */
static bool
parse(const struct msgr_msg *m, uint32_t *src, uint32_t *dst, uint64_t *seq,
      uint64_t *sent_t, bool *sum_ok)
{
    if (m->hdr.type != RN_MSG_TYPE || m->front.len < RN_HDR_LEN ||
        get32(m->front.data) != RN_MAGIC)
        return false;
    const uint8_t *b = m->front.data;
    *src = get32(b + 4);
    *dst = get32(b + 8);
    *seq = get64(b + 16);
    *sent_t = get64(b + 24);
    *sum_ok = checksum(b + RN_HDR_LEN, m->front.len - RN_HDR_LEN) ==
              get64(b + 32);
    return true;
}

static void
offend(struct rn_pair *pr, uint64_t seq, uint64_t t, const char *what)
{
    if (pr->bad)
        return;
    pr->bad = true;
    pr->bad_seq = seq;
    pr->bad_t = t;
    snprintf(pr->bad_what, sizeof(pr->bad_what), "%s", what);
}

static void record(struct rn *r, struct rn_node *to, struct msgr_msg *m,
                   bool corrupt);

void
rn_on_delivered(struct rn *r, struct rn_node *to, struct msgr_msg *m)
{
    uint64_t k = ++r->deliveries;
    if (r->o->sabotage && k == r->o->sabotage_at) {
        switch (r->o->sabotage) {
        case SCN_SABOTAGE_DROP:
            return;
        case SCN_SABOTAGE_DUP:
            record(r, to, m, false);
            break;
        case SCN_SABOTAGE_REORDER:
            msgr_msg_ref(m);
            r->held_back = m;
            r->held_to = to;
            return;
        case SCN_SABOTAGE_CORRUPT:
            record(r, to, m, true);
            return;
        case SCN_SABOTAGE_NONE:
            break;
        }
    }
    record(r, to, m, false);
    if (r->held_back && k == r->o->sabotage_at + 1) {
        struct msgr_msg *h = r->held_back;
        r->held_back = NULL;
        record(r, r->held_to, h, false);
        msgr_msg_unref(h);
    }
}

static void
record(struct rn *r, struct rn_node *to, struct msgr_msg *m, bool corrupt)
{
    uint32_t src, dst;
    uint64_t seq, sent_t;
    bool sum_ok;
    uint64_t now = rn_now(r);
    if (!parse(m, &src, &dst, &seq, &sent_t, &sum_ok) || src >= r->n ||
        dst != to->idx) {
        rn_internal(r, "%s received a message that is not the workload's",
                    to->decl->name);
        return;
    }
    struct rn_pair *pr = rn_pair(r, src, dst);
    pr->delivered_total++;
    if (corrupt)
        sum_ok = false;
    if (!sum_ok) {
        pr->corrupt++;
        offend(pr, seq, now, "delivered with a corrupt payload");
    }
    if (seq == 0 || seq > pr->sent) {
        offend(pr, seq, now, "delivered but never sent");
        return;
    }
    uint8_t *sn = &pr->seen[seq];
    if ((*sn & RN_SEEN_COUNT) != 0) {
        pr->dups++;
        offend(pr, seq, now, "delivered twice");
    } else {
        pr->delivered++;
        r->msgs_delivered++;
        if (seq < pr->last_seq) {
            pr->reorders++;
            offend(pr, seq, now, "delivered out of order");
        }
    }
    if ((*sn & RN_SEEN_COUNT) < RN_SEEN_COUNT)
        (*sn)++;
    if (seq > pr->last_seq)
        pr->last_seq = seq;
    if (pr->nlat == pr->caplat) {
        pr->caplat = pr->caplat ? pr->caplat * 2 : 64;
        pr->lat = realloc(pr->lat, pr->caplat * sizeof(*pr->lat));
        if (!pr->lat)
            abort();
    }
    pr->lat[pr->nlat++] = now - sent_t;
    rn_fire_delivered(r, dst, src, pr->delivered_total);
}

static void
give_up(struct rn *r, uint32_t src, uint32_t dst, uint64_t seq, uint64_t tid)
{
    struct rn_pair *pr = rn_pair(r, src, dst);
    if (seq == 0 || seq > pr->sent)
        return;
    uint8_t *sn = &pr->seen[seq];
    if (*sn & (RN_SEEN_GIVEN_UP | RN_SEEN_COUNT))
        return; /* delivered already, or counted */
    *sn |= RN_SEEN_GIVEN_UP;
    pr->given_up++;
    r->msgs_given_up++;
    if (tid && r->o->observer && r->o->observer->msg_given_up)
        r->o->observer->msg_given_up(r->o->observer->arg, rn_now(r), src,
                                     dst, tid);
}

void
rn_on_msg_fate(struct rn *r, struct rn_node *from, struct rn_conn *rc,
               const struct msgr_msg *m, int fate)
{
    uint32_t src, dst;
    uint64_t seq, sent_t;
    bool sum_ok;
    if (!parse(m, &src, &dst, &seq, &sent_t, &sum_ok) || src != from->idx)
        return; /* a receiver-side fate, or not ours */
    if (fate == MSGR_FATE_QUEUED && rc)
        pending_add(rc, dst, seq, m->hdr.tid);
    else if (fate == MSGR_FATE_DROPPED || fate == MSGR_FATE_BLACKHOLED)
        give_up(r, src, dst, seq, 0); /* the messenger traced it already */
}

/* A connection object is gone: what was queued on it and never arrived
 * was given up by the messenger (a lossy fault, a mark_down, a reset). A
 * message still in flight may yet arrive; it then counts as delivered. */
void
rn_conn_closed(struct rn *r, struct rn_conn *rc)
{
    for (uint32_t i = 0; i < rc->npending; i++) {
        const struct rn_pending *pd = &rc->pending[i];
        struct rn_pair *pr = rn_pair(r, rc->node->idx, pd->dst);
        if (pd->seq <= pr->sent && !(pr->seen[pd->seq] & RN_SEEN_COUNT))
            give_up(r, rc->node->idx, pd->dst, pd->seq, pd->tid);
    }
    rc->npending = 0;
}

bool
rn_all_resolved(struct rn *r)
{
    return r->msgs_delivered + r->msgs_given_up >= r->msgs_sent;
}
