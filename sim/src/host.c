/*
 * Hosts: an address, a name, a life cycle (alive, paused, killed, crashed)
 * and host-bound scheduling.
 *
 * Host-bound events are the process's own work (posts, timers, I/O
 * callbacks). Each goes through a record of this host so that:
 *  - while the host is paused, a due event is parked on the host's held
 *    list, and resume releases the list in order at the resume time;
 *  - when the host dies (kill, crash) its pending events are cancelled at
 *    once and its held ones dropped; the incarnation stamped on each record
 *    is checked again when one fires, as a second line of defence.
 * Records are pooled per host in fixed chunks (the heap keeps pointers to
 * them, so they never move) and named by (generation << 32) | slot, like
 * the heap's ids, so a stale id is recognised and ignored.
 */
#include <stdlib.h>
#include <string.h>

#include "sim_internal.h"

#define CHUNK_SHIFT 8
#define CHUNK_SIZE (1u << CHUNK_SHIFT)
#define SLOT_NONE UINT32_MAX

enum held_state {
    HELD_FREE,
    HELD_QUEUED, /* in the world's heap */
    HELD_HELD,   /* on the host's held list (paused) */
};

struct host_priv;

struct sim_held {
    struct host_priv *host;
    sim_event_cb cb;
    void *arg;
    uint64_t heap_id;     /* HELD_QUEUED */
    uint64_t incarnation; /* the host's when scheduled */
    struct sim_held *prev, *next; /* held list; next is also the free list */
    uint32_t slot, gen;
    enum held_state state;
};

struct host_priv {
    struct sim_host pub; /* first: sim_host pointers are host_priv's */
    struct sim_held **chunks;
    uint32_t nchunks, nslots;
    struct sim_held *free_list;
};

/* Fault tags mixed into the fingerprint. */
enum {
    FP_HOST_PAUSE = 0x4850,  /* 'HP' */
    FP_HOST_RESUME = 0x4852, /* 'HR' */
    FP_HOST_KILL = 0x484b,   /* 'HK' */
    FP_HOST_CRASH = 0x4843,  /* 'HC' */
    FP_HOST_REVIVE = 0x4856, /* 'HV' */
};

static struct host_priv *
priv(struct sim_host *h)
{
    return (struct host_priv *)h;
}

static int
host_dead(const struct sim_host *h)
{
    return h->state == SIM_HOST_KILLED || h->state == SIM_HOST_CRASHED;
}

static void
fp_host_event(struct sim_host *h, uint64_t tag)
{
    sim_fp_mix_u64(h->world, tag);
    sim_fp_mix_u64(h->world, sim_now(h->world));
    sim_fp_mix_u64(h->world, h->id);
}

/* ------------------------------------------------------------ records */

static struct sim_held *
slot_rec(struct host_priv *p, uint32_t slot)
{
    return &p->chunks[slot >> CHUNK_SHIFT][slot & (CHUNK_SIZE - 1)];
}

static struct sim_held *
rec_alloc(struct host_priv *p)
{
    struct sim_held *r;

    if (!p->free_list) {
        struct sim_held *chunk;
        uint32_t i;

        SIM_ASSERT(p->nslots <= UINT32_MAX - 2 * CHUNK_SIZE);
        p->chunks = realloc(p->chunks, (p->nchunks + 1) * sizeof(*p->chunks));
        SIM_ASSERT(p->chunks != NULL);
        chunk = calloc(CHUNK_SIZE, sizeof(*chunk));
        SIM_ASSERT(chunk != NULL);
        p->chunks[p->nchunks++] = chunk;
        /* Pushed in reverse so the lowest slot is handed out first: the
         * order records are reused in is fixed by the call sequence. */
        for (i = CHUNK_SIZE; i-- > 0;) {
            chunk[i].slot = p->nslots + i;
            chunk[i].gen = 1;
            chunk[i].state = HELD_FREE;
            chunk[i].next = p->free_list;
            p->free_list = &chunk[i];
        }
        p->nslots += CHUNK_SIZE;
    }
    r = p->free_list;
    p->free_list = r->next;
    r->next = r->prev = NULL;
    return r;
}

static void
rec_free(struct host_priv *p, struct sim_held *r)
{
    r->state = HELD_FREE;
    r->cb = NULL;
    r->arg = NULL;
    r->heap_id = 0;
    if (++r->gen == 0)
        r->gen = 1;
    r->prev = NULL;
    r->next = p->free_list;
    p->free_list = r;
}

static uint64_t
rec_id(const struct sim_held *r)
{
    return ((uint64_t)r->gen << 32) | r->slot;
}

static struct sim_held *
rec_find(struct host_priv *p, uint64_t id)
{
    uint32_t slot = (uint32_t)id, gen = (uint32_t)(id >> 32);
    struct sim_held *r;

    if (id == 0 || slot >= p->nslots)
        return NULL;
    r = slot_rec(p, slot);
    if (r->gen != gen || r->state == HELD_FREE)
        return NULL;
    return r;
}

static void
held_append(struct sim_host *h, struct sim_held *r)
{
    r->state = HELD_HELD;
    r->heap_id = 0;
    r->next = NULL;
    r->prev = h->held_tail;
    if (h->held_tail)
        h->held_tail->next = r;
    else
        h->held_head = r;
    h->held_tail = r;
}

static void
held_unlink(struct sim_host *h, struct sim_held *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        h->held_head = r->next;
    if (r->next)
        r->next->prev = r->prev;
    else
        h->held_tail = r->prev;
    r->prev = r->next = NULL;
}

/* ------------------------------------------------- host-bound events */

static void
host_event_cb(void *arg)
{
    struct sim_held *r = arg;
    struct host_priv *p = r->host;
    struct sim_host *h = &p->pub;
    sim_event_cb cb;
    void *cb_arg;

    SIM_ASSERT(r->state == HELD_QUEUED);
    if (r->incarnation != h->incarnation || host_dead(h)) {
        rec_free(p, r);
        return;
    }
    if (h->state == SIM_HOST_PAUSED) {
        held_append(h, r);
        return;
    }
    cb = r->cb;
    cb_arg = r->arg;
    /* Freed before the call: the callback may cancel its own id (a no-op
     * now) or schedule new work that reuses this record. */
    rec_free(p, r);
    cb(cb_arg);
}

uint64_t
sim__host_schedule(struct sim_host *h, msgr_time_ns at, sim_event_cb cb,
                   void *arg)
{
    struct host_priv *p = priv(h);
    struct sim_held *r = rec_alloc(p);

    r->host = p;
    r->cb = cb;
    r->arg = arg;
    r->incarnation = h->incarnation;
    r->state = HELD_QUEUED;
    /* Even on a dead host the event is queued (and dropped when due):
     * callers get a real id either way and need not special-case it. */
    r->heap_id = sim_schedule(h->world, at, host_event_cb, r);
    return rec_id(r);
}

int
sim__host_cancel(struct sim_host *h, uint64_t id)
{
    struct host_priv *p = priv(h);
    struct sim_held *r = rec_find(p, id);

    if (!r)
        return 0;
    if (r->state == HELD_QUEUED)
        SIM_ASSERT(sim_cancel(h->world, r->heap_id));
    else
        held_unlink(h, r);
    rec_free(p, r);
    return 1;
}

/* Drops every pending and held event of h. Slots are walked in index
 * order, so the heap sees the same cancels in the same order every run. */
static void
drop_all(struct sim_host *h)
{
    struct host_priv *p = priv(h);
    uint32_t slot;

    for (slot = 0; slot < p->nslots; slot++) {
        struct sim_held *r = slot_rec(p, slot);

        if (r->state == HELD_QUEUED) {
            SIM_ASSERT(sim_cancel(h->world, r->heap_id));
            rec_free(p, r);
        } else if (r->state == HELD_HELD) {
            rec_free(p, r);
        }
    }
    h->held_head = h->held_tail = NULL;
}

/* -------------------------------------------------------------- hosts */

struct sim_host *
sim_host_new(struct sim_world *w, uint32_t id, const char *name, uint32_t ipv4)
{
    struct host_priv *p;
    struct sim_host *h, *o;

    /* Ids seed the streams and addresses route segments: both unique. */
    for (o = w->hosts; o; o = o->next) {
        if (o->id == id || o->ipv4 == ipv4)
            return NULL;
    }
    p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    h = &p->pub;
    h->world = w;
    h->id = id;
    h->ipv4 = ipv4;
    if (name) {
        size_t n = strlen(name);

        /* truncated to fit; calloc left the terminator */
        if (n >= sizeof(h->name))
            n = sizeof(h->name) - 1;
        memcpy(h->name, name, n);
    }
    h->state = SIM_HOST_ALIVE;
    sim_world_rng(w, SIM_STREAM_NODE, id, &h->rng);
    if (w->hosts_tail)
        w->hosts_tail->next = h;
    else
        w->hosts = h;
    w->hosts_tail = h;
    w->nhosts++;
    sim__net_host_init(h);
    return h;
}

void
sim__hosts_free(struct sim_world *w)
{
    struct sim_host *h = w->hosts;

    while (h) {
        struct sim_host *next = h->next;
        struct host_priv *p = priv(h);
        uint32_t i;

        for (i = 0; i < p->nchunks; i++)
            free(p->chunks[i]);
        free(p->chunks);
        free(p);
        h = next;
    }
    w->hosts = w->hosts_tail = NULL;
    w->nhosts = 0;
}

struct sim_host *
sim_host_find(struct sim_world *w, uint32_t ipv4)
{
    struct sim_host *h;

    for (h = w->hosts; h; h = h->next) {
        if (h->ipv4 == ipv4)
            return h;
    }
    return NULL;
}

uint32_t
sim_host_ipv4(const struct sim_host *h)
{
    return h->ipv4;
}

const char *
sim_host_name(const struct sim_host *h)
{
    return h->name;
}

void
sim_host_addr(const struct sim_host *h, uint16_t port, struct msgr_addr *out)
{
    memset(out, 0, sizeof(*out));
    out->type = MSGR_ADDR_MSGR2;
    out->nonce = 0;
    out->family = MSGR_AF_INET;
    out->port = port;
    out->ip[0] = (uint8_t)(h->ipv4 >> 24);
    out->ip[1] = (uint8_t)(h->ipv4 >> 16);
    out->ip[2] = (uint8_t)(h->ipv4 >> 8);
    out->ip[3] = (uint8_t)h->ipv4;
}

/* ------------------------------------------------------------- faults */

void
sim_host_pause(struct sim_world *w, struct sim_host *h)
{
    SIM_ASSERT(h->world == w);
    if (h->state != SIM_HOST_ALIVE)
        return;
    h->state = SIM_HOST_PAUSED;
    fp_host_event(h, FP_HOST_PAUSE);
}

/*
 * The held events go back to the heap at the resume time, oldest first;
 * each gets a fresh sequence number, so they run after whatever was
 * already due at this instant, and in the order they were held.
 */
void
sim_host_resume(struct sim_world *w, struct sim_host *h)
{
    struct sim_held *r, *next;

    SIM_ASSERT(h->world == w);
    if (h->state != SIM_HOST_PAUSED)
        return;
    h->state = SIM_HOST_ALIVE;
    fp_host_event(h, FP_HOST_RESUME);
    r = h->held_head;
    h->held_head = h->held_tail = NULL;
    for (; r; r = next) {
        next = r->next;
        r->prev = r->next = NULL;
        r->state = HELD_QUEUED;
        r->heap_id = sim_schedule(w, sim_now(w), host_event_cb, r);
    }
}

static void
host_die(struct sim_world *w, struct sim_host *h, int crash)
{
    SIM_ASSERT(h->world == w);
    if (host_dead(h))
        return;
    h->state = crash ? SIM_HOST_CRASHED : SIM_HOST_KILLED;
    h->incarnation++;
    fp_host_event(h, crash ? FP_HOST_CRASH : FP_HOST_KILL);
    drop_all(h);
    sim__net_host_kill(h, crash);
}

void
sim_host_kill(struct sim_world *w, struct sim_host *h)
{
    host_die(w, h, 0);
}

void
sim_host_crash(struct sim_world *w, struct sim_host *h)
{
    host_die(w, h, 1);
}

void
sim_host_revive(struct sim_world *w, struct sim_host *h)
{
    SIM_ASSERT(h->world == w);
    if (!host_dead(h))
        return;
    /* A new incarnation again: whatever was scheduled for the dead one
     * (nothing should be) can never run in the new process. */
    h->incarnation++;
    h->state = SIM_HOST_ALIVE;
    fp_host_event(h, FP_HOST_REVIVE);
}
