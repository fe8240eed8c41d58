/*
 * Expectations: each is checked per (a, b) member pair (or per a), and a
 * failure carries its evidence: counts, the first offending message and
 * its time.
 */
#include "run_internal.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static bool
cmp(enum scn_op op, uint64_t x, uint64_t y)
{
    switch (op) {
    case SCN_OP_EQ:
        return x == y;
    case SCN_OP_NE:
        return x != y;
    case SCN_OP_LT:
        return x < y;
    case SCN_OP_LE:
        return x <= y;
    case SCN_OP_GT:
        return x > y;
    case SCN_OP_GE:
        return x >= y;
    }
    return false;
}

static void
fmt_t(uint64_t ns, char *buf, size_t len)
{
    if (ns >= RN_NS_S)
        snprintf(buf, len, "%" PRIu64 ".%03" PRIu64 "s", ns / RN_NS_S,
                 (ns % RN_NS_S) / RN_NS_MS);
    else if (ns >= RN_NS_MS)
        snprintf(buf, len, "%" PRIu64 ".%03" PRIu64 "ms", ns / RN_NS_MS,
                 (ns % RN_NS_MS) / RN_NS_US);
    else
        snprintf(buf, len, "%" PRIu64 "us", ns / RN_NS_US);
}

/* The expectation's own text, from the source (for the report). */
void
rn_expect_text(struct rn *r, uint32_t line, char *buf, size_t len)
{
    buf[0] = 0;
    if (!r->src)
        return;
    const char *p = r->src, *end = r->src + r->src_len;
    for (uint32_t l = 1; l < line && p < end; p++)
        if (*p == '\n')
            l++;
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    size_t n = 0;
    while (p + n < end && p[n] != '\n' && p[n] != '#')
        n++;
    while (n && (p[n - 1] == ' ' || p[n - 1] == '\t' || p[n - 1] == '\r'))
        n--;
    if (n >= len)
        n = len - 1;
    memcpy(buf, p, n);
    buf[n] = 0;
}

static const char *
nm(struct rn *r, uint32_t i)
{
    return r->nodes[i].decl->name;
}

static uint64_t
percentile(uint64_t *v, uint64_t n, uint32_t ppm)
{
    if (!n)
        return 0;
    uint64_t *c = malloc(n * sizeof(*c));
    if (!c)
        abort();
    memcpy(c, v, n * sizeof(*c));
    for (uint64_t gap = n / 2; gap > 0; gap /= 2) /* shell sort */
        for (uint64_t i = gap; i < n; i++) {
            uint64_t x = c[i], j = i;
            while (j >= gap && c[j - gap] > x) {
                c[j] = c[j - gap];
                j -= gap;
            }
            c[j] = x;
        }
    uint64_t k = (n * ppm + SCN_PPM - 1) / SCN_PPM;
    if (k == 0)
        k = 1;
    uint64_t out = c[k - 1];
    free(c);
    return out;
}

static const char *
conn_state_name(int s)
{
    return scn_state_name((enum scn_conn_state)s);
}

/* Checks one pair; false with evidence in ev when it does not hold. */
static bool
check_pair(struct rn *r, const struct scn_expect *e, uint32_t a, uint32_t b,
           char *ev, size_t evlen)
{
    struct rn_pair *pr = rn_pair_find(r, a, b);
    struct rn_pair zero;
    memset(&zero, 0, sizeof(zero));
    if (!pr)
        pr = &zero;
    char t1[32];
    switch (e->kind) {
    case SCN_EXPECT_DELIVERED: {
        if (pr->sent == 0) {
            snprintf(ev, evlen, "%s sent nothing to %s", nm(r, a), nm(r, b));
            return false;
        }
        if (e->has_value) {
            uint64_t frac = pr->delivered * SCN_PPM / pr->sent;
            bool ok = cmp(e->op, frac, e->value);
            snprintf(ev, evlen,
                     "%s -> %s: %" PRIu64 " of %" PRIu64
                     " delivered (%" PRIu64 ".%02" PRIu64 "%%), %" PRIu64
                     " given up",
                     nm(r, a), nm(r, b), pr->delivered, pr->sent,
                     frac / 10000, (frac % 10000) / 100, pr->given_up);
            return ok;
        }
        bool ok = true;
        if (pr->corrupt)
            ok = false;
        if ((e->flags & (SCN_DELIV_EXACTLY_ONCE | SCN_DELIV_NO_DUP)) &&
            pr->dups)
            ok = false;
        if ((e->flags & SCN_DELIV_IN_ORDER) && pr->reorders)
            ok = false;
        uint64_t first_missing = 0;
        if (e->flags & SCN_DELIV_ALL) {
            for (uint64_t s = 1; s <= pr->sent; s++)
                if (!(pr->seen[s] & RN_SEEN_COUNT)) {
                    first_missing = s;
                    break;
                }
            if (first_missing)
                ok = false;
        }
        int n = snprintf(ev, evlen,
                         "%s -> %s: sent %" PRIu64 ", delivered %" PRIu64
                         ", duplicates %" PRIu64 ", out of order %" PRIu64
                         ", corrupt %" PRIu64 ", given up %" PRIu64,
                         nm(r, a), nm(r, b), pr->sent, pr->delivered,
                         pr->dups, pr->reorders, pr->corrupt, pr->given_up);
        if (!ok && pr->bad && n > 0 && (size_t)n < evlen) {
            fmt_t(pr->bad_t, t1, sizeof(t1));
            n += snprintf(ev + n, evlen - (size_t)n,
                          "; first: seq %" PRIu64 " %s at %s", pr->bad_seq,
                          pr->bad_what, t1);
        }
        if (!ok && first_missing && n > 0 && (size_t)n < evlen)
            snprintf(ev + n, evlen - (size_t)n,
                     "; first missing: seq %" PRIu64 "%s", first_missing,
                     (pr->seen[first_missing] & RN_SEEN_GIVEN_UP)
                         ? " (given up by the messenger)"
                         : " (never arrived)");
        return ok;
    }
    case SCN_EXPECT_STATE: {
        int s = pr->cur ? pr->cur->state : SCN_STATE_NONE;
        snprintf(ev, evlen, "%s -> %s is %s", nm(r, a), nm(r, b),
                 conn_state_name(s));
        return s == (int)e->state;
    }
    case SCN_EXPECT_RECONNECTS: {
        uint64_t n = pr->ready_entries ? pr->ready_entries - 1 : 0;
        snprintf(ev, evlen, "%s -> %s reconnected %" PRIu64 " times",
                 nm(r, a), nm(r, b), n);
        return cmp(e->op, n, e->value);
    }
    case SCN_EXPECT_RESETS:
        snprintf(ev, evlen, "%s -> %s: %" PRIu64 " session resets",
                 nm(r, a), nm(r, b), pr->resets);
        return cmp(e->op, pr->resets, e->value);
    case SCN_EXPECT_EVENT: {
        uint64_t n = pr->ev[e->event];
        snprintf(ev, evlen, "%s saw %s from %s %" PRIu64 " times", nm(r, a),
                 scn_event_name(e->event), nm(r, b), n);
        return e->negate ? n == 0 : n > 0;
    }
    case SCN_EXPECT_LATENCY: {
        if (!pr->nlat) {
            snprintf(ev, evlen, "%s -> %s: nothing delivered", nm(r, a),
                     nm(r, b));
            return false;
        }
        uint64_t v = percentile(pr->lat, pr->nlat, e->percentile_ppm);
        fmt_t(v, t1, sizeof(t1));
        snprintf(ev, evlen, "%s -> %s: latency p%u = %s over %" PRIu64
                 " messages", nm(r, a), nm(r, b), e->percentile_ppm / 10000,
                 t1, pr->nlat);
        return cmp(e->op, v, e->value);
    }
    case SCN_EXPECT_CONNECTIONS: {
        struct rn_node *nd = &r->nodes[a];
        uint64_t n = 0;
        for (uint32_t k = 0; k < nd->nconns; k++) {
            struct rn_conn *rc = nd->conns[k];
            if (rc->peer != (int32_t)b)
                continue;
            switch (e->obj_state) {
            case SCN_CONN_OBJ_OPEN:
                n += !rc->closed;
                break;
            case SCN_CONN_OBJ_CLOSED:
                n += rc->closed && rc->ever_ready;
                break;
            case SCN_CONN_OBJ_REPLACED:
                /* ended before it was ever a session the application saw:
                 * its socket or session moved into another object */
                n += rc->closed && !rc->ever_ready && !rc->reset_told;
                break;
            }
        }
        snprintf(ev, evlen, "%s has %" PRIu64 " %s connection objects for %s",
                 nm(r, a), n,
                 e->obj_state == SCN_CONN_OBJ_OPEN     ? "open"
                 : e->obj_state == SCN_CONN_OBJ_CLOSED ? "closed"
                                                       : "replaced",
                 nm(r, b));
        return cmp(e->op, n, e->value);
    }
    case SCN_EXPECT_FRAMES: {
        unsigned tag = (unsigned)e->tag + 1; /* scn steps follow msgr tags */
        uint64_t n = tag < RN_NTAGS ? pr->frames[e->received ? 0 : 1][tag]
                                    : 0;
        snprintf(ev, evlen, "%s -> %s: %" PRIu64 " %s frames %s", nm(r, a),
                 nm(r, b), n, scn_step_name(e->tag),
                 e->received ? "received" : "sent");
        return cmp(e->op, n, e->value);
    }
    case SCN_EXPECT_TRACE_HASH:
        break;
    }
    return false;
}

static bool
check_node(struct rn *r, const struct scn_expect *e, uint32_t a, char *ev,
           size_t evlen)
{
    struct rn_node *nd = &r->nodes[a];
    switch (e->kind) {
    case SCN_EXPECT_EVENT: {
        uint64_t n = nd->ev_total[e->event];
        snprintf(ev, evlen, "%s saw %s %" PRIu64 " times", nm(r, a),
                 scn_event_name(e->event), n);
        return e->negate ? n == 0 : n > 0;
    }
    case SCN_EXPECT_CONNECTIONS: {
        uint64_t n = 0;
        for (uint32_t k = 0; k < nd->nconns; k++)
            n += !nd->conns[k]->closed;
        snprintf(ev, evlen, "%s has %" PRIu64 " live connections", nm(r, a),
                 n);
        return cmp(e->op, n, e->value);
    }
    default:
        snprintf(ev, evlen, "needs a peer");
        return false;
    }
}

void
rn_check_expect(struct rn *r, uint32_t i)
{
    const struct scn_expect *e = &r->p->expects[i];
    struct rn_verdict *v = &r->verdicts[i];
    if (v->checked)
        return;
    v->checked = true;
    v->held = true;
    char ev[320];
    ev[0] = 0;
    if (e->kind == SCN_EXPECT_TRACE_HASH) {
        char got[32];
        snprintf(got, sizeof(got), "%016" PRIx64, sim_fingerprint(r->w));
        v->held = strcmp(got, e->hex) == 0;
        snprintf(v->evidence, sizeof(v->evidence), "fingerprint %s", got);
        return;
    }
    uint32_t npairs = 0;
    for (uint32_t x = 0; x < e->a.n; x++) {
        uint32_t a = e->a.idx[x];
        if (!e->b.n) {
            bool ok = check_node(r, e, a, ev, sizeof(ev));
            if (!ok || !npairs++)
                snprintf(v->evidence, sizeof(v->evidence), "%s", ev);
            if (!ok) {
                v->held = false;
                return;
            }
            continue;
        }
        for (uint32_t y = 0; y < e->b.n; y++) {
            uint32_t b = e->b.idx[y];
            if (a == b)
                continue;
            bool ok = check_pair(r, e, a, b, ev, sizeof(ev));
            if (!ok || !npairs++)
                snprintf(v->evidence, sizeof(v->evidence), "%s", ev);
            if (!ok) {
                v->held = false;
                return;
            }
        }
    }
    if (npairs > 1)
        snprintf(v->evidence + strlen(v->evidence),
                 sizeof(v->evidence) - strlen(v->evidence),
                 " (and %u more pairs)", npairs - 1);
}
