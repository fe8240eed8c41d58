/*
 * The open run's message rows, kept in memory while the run is written.
 *
 * A message's life is about six calls (the runner's queued and checksum,
 * then queued, sent, delivered and acked from the tracers); as an sqlite
 * upsert each one was a b-tree seek plus a row rewrite. Here each call is
 * a probe in an open-addressing table keyed by (src, msg_id), and the row
 * reaches sqlite once: at trace_run_end, or when the table holds
 * TRACE_MSG_MEM_ROWS rows (a spill, which bounds memory on long runs).
 * Rows are written in (src, msg_id) order, the message table's key, so
 * the inserts append to its b-tree. The write merges with what a spill
 * already stored exactly as the old per-call upsert did: first times and
 * identity kept, counters added, the latest checksum.
 *
 * Iteration never depends on pointers: slots are visited by index and
 * the rows sorted by key before they are written.
 */
#include <stdlib.h>
#include <string.h>

#include "msgr/msgr.h"
#include "trace_internal.h"

static uint64_t
mix(int64_t src, int64_t msg_id)
{
    uint64_t h = (uint64_t)src * 0x9e3779b97f4a7c15ull ^ (uint64_t)msg_id;

    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebull;
    return h ^ (h >> 31);
}

void
trace__msgtab_free(struct trace_msgtab *t)
{
    free(t->slots);
    memset(t, 0, sizeof(*t));
}

static void
ent_init(struct trace_msg_ent *m, int64_t src, int64_t msg_id)
{
    memset(m, 0, sizeof(*m));
    m->used = 1;
    m->src = src;
    m->msg_id = msg_id;
    m->seq = m->size = m->checksum = -1;
    for (int i = 0; i < TRACE_MSG_NTIMES; i++)
        m->t[i] = -1;
}

static struct trace_msg_ent *
probe(struct trace_msg_ent *slots, size_t cap, int64_t src, int64_t msg_id)
{
    size_t i = (size_t)mix(src, msg_id) & (cap - 1);

    while (slots[i].used && (slots[i].src != src || slots[i].msg_id != msg_id))
        i = (i + 1) & (cap - 1);
    return &slots[i];
}

static int
grow(struct trace_msgtab *t)
{
    size_t cap = t->cap ? 2 * t->cap : 1024;
    struct trace_msg_ent *s = calloc(cap, sizeof(*s));

    if (!s)
        return TRACE_ENOMEM;
    for (size_t i = 0; i < t->cap; i++)
        if (t->slots[i].used)
            *probe(s, cap, t->slots[i].src, t->slots[i].msg_id) = t->slots[i];
    free(t->slots);
    t->slots = s;
    t->cap = cap;
    return 0;
}

/* The row of (src, msg_id), created when new; NULL when out of memory. */
struct trace_msg_ent *
trace__msgtab_get(struct trace_msgtab *t, int64_t src, int64_t msg_id)
{
    struct trace_msg_ent *m;

    /* at most half full: probes stay short */
    if (2 * (t->n + 1) > t->cap && grow(t))
        return NULL;
    m = probe(t->slots, t->cap, src, msg_id);
    if (!m->used) {
        ent_init(m, src, msg_id);
        t->n++;
    }
    return m;
}

/* One fate into a row, as the old upsert merged it. */
int
trace__msgtab_fate(struct trace_msg_ent *r, const struct trace_msg_rec *m)
{
    int slot;

    switch (m->fate) {
    case MSGR_FATE_QUEUED:
        slot = TRACE_MSG_T_QUEUED;
        break;
    case MSGR_FATE_SENT:
        slot = TRACE_MSG_T_SENT;
        r->sends++;
        break;
    case MSGR_FATE_ACKED:
        slot = TRACE_MSG_T_ACKED;
        break;
    case MSGR_FATE_DELIVERED:
        slot = TRACE_MSG_T_DELIVERED;
        r->deliveries++;
        break;
    case MSGR_FATE_DROPPED:
    case MSGR_FATE_BLACKHOLED: /* dropped on purpose, before the wire */
        slot = TRACE_MSG_T_DROPPED;
        break;
    case MSGR_FATE_DUPLICATE:
        slot = -1;
        r->duplicates++;
        break;
    default:
        return TRACE_EINVAL;
    }
    if (slot >= 0 && r->t[slot] < 0)
        r->t[slot] = m->t_ns;
    if (!r->dst && m->dst)
        r->dst = m->dst;
    if (!r->conn && m->conn)
        r->conn = m->conn;
    if (r->seq < 0 && m->seq >= 0)
        r->seq = m->seq;
    if (r->size < 0 && m->size >= 0)
        r->size = m->size;
    return 0;
}

static int
cmp_key(const void *a, const void *b)
{
    const struct trace_msg_ent *x = a, *y = b;

    if (x->src != y->src)
        return x->src < y->src ? -1 : 1;
    if (x->msg_id != y->msg_id)
        return x->msg_id < y->msg_id ? -1 : 1;
    return 0;
}

/*
 * Packs the used slots to the front in key order and empties the table
 * (the caller writes slots[0 .. *n) and then calls trace__msgtab_clear).
 */
struct trace_msg_ent *
trace__msgtab_sorted(struct trace_msgtab *t, size_t *n)
{
    size_t k = 0;

    *n = 0;
    if (!t->slots)
        return NULL;
    for (size_t i = 0; i < t->cap; i++)
        if (t->slots[i].used)
            t->slots[k++] = t->slots[i];
    qsort(t->slots, k, sizeof(*t->slots), cmp_key);
    *n = k;
    return t->slots;
}

void
trace__msgtab_clear(struct trace_msgtab *t)
{
    if (t->slots)
        memset(t->slots, 0, t->cap * sizeof(*t->slots));
    t->n = 0;
}
