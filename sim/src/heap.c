/*
 * The event heap: a binary min-heap ordered by (time, seq).
 *
 * seq is the world's global insertion counter, so two events at the same
 * time run in the order they were scheduled and nothing ever compares
 * pointers. The heap array holds the keys inline (time, seq, slot) so that
 * sifting touches one array only; the callback lives in a node slot.
 *
 * Nodes are pooled: a slot freed by a pop or a cancel is reused by the
 * next push, so a steady state of scheduling never reaches malloc. An
 * event's id is (generation << 32) | slot: the slot finds the node in
 * O(1) and its heap position gives an O(log n) cancel; the generation,
 * bumped whenever the slot is freed, makes a stale id (an event that
 * already ran or was cancelled) harmless.
 */
#include <stdlib.h>

#include "sim_internal.h"

#define SLOT_FREE UINT32_MAX

struct heap_entry {
    msgr_time_ns at;
    uint64_t seq;
    uint32_t slot;
};

struct heap_node {
    sim_event_cb cb;
    void *arg;
    uint32_t pos;  /* index in the heap array; SLOT_FREE when free */
    uint32_t gen;  /* >= 1; part of the id */
    uint32_t next_free;
};

struct sim_heap {
    struct heap_entry *e;
    size_t n, cap;
    struct heap_node *nodes;
    uint32_t nnodes, capnodes;
    uint32_t free_head; /* SLOT_FREE: none */
};

static void *
xrealloc(void *p, size_t n, size_t size)
{
    void *q;

    /* The scheduler has no error path (an id is always returned): running
     * out of memory in a simulation is fatal, loudly. */
    SIM_ASSERT(n <= SIZE_MAX / size);
    q = realloc(p, n * size);
    SIM_ASSERT(q != NULL);
    return q;
}

struct sim_heap *
sim__heap_new(void)
{
    struct sim_heap *h = calloc(1, sizeof(*h));

    SIM_ASSERT(h != NULL);
    h->free_head = SLOT_FREE;
    return h;
}

void
sim__heap_free(struct sim_heap *h)
{
    if (!h)
        return;
    free(h->e);
    free(h->nodes);
    free(h);
}

size_t
sim__heap_size(const struct sim_heap *h)
{
    return h->n;
}

static int
entry_less(const struct heap_entry *a, const struct heap_entry *b)
{
    if (a->at != b->at)
        return a->at < b->at;
    return a->seq < b->seq;
}

static void
place(struct sim_heap *h, size_t pos, const struct heap_entry *ent)
{
    h->e[pos] = *ent;
    h->nodes[ent->slot].pos = (uint32_t)pos;
}

static void
sift_up(struct sim_heap *h, size_t pos)
{
    struct heap_entry ent = h->e[pos];

    while (pos > 0) {
        size_t parent = (pos - 1) / 2;

        if (!entry_less(&ent, &h->e[parent]))
            break;
        place(h, pos, &h->e[parent]);
        pos = parent;
    }
    place(h, pos, &ent);
}

static void
sift_down(struct sim_heap *h, size_t pos)
{
    struct heap_entry ent = h->e[pos];

    for (;;) {
        size_t child = 2 * pos + 1;

        if (child >= h->n)
            break;
        if (child + 1 < h->n && entry_less(&h->e[child + 1], &h->e[child]))
            child++;
        if (!entry_less(&h->e[child], &ent))
            break;
        place(h, pos, &h->e[child]);
        pos = child;
    }
    place(h, pos, &ent);
}

static uint32_t
slot_alloc(struct sim_heap *h)
{
    uint32_t slot;

    if (h->free_head != SLOT_FREE) {
        slot = h->free_head;
        h->free_head = h->nodes[slot].next_free;
        return slot;
    }
    if (h->nnodes == h->capnodes) {
        uint32_t cap = h->capnodes ? h->capnodes * 2 : 64;

        /* SLOT_FREE is reserved, and ids keep the slot in 32 bits. */
        SIM_ASSERT(h->capnodes < UINT32_MAX / 2);
        h->nodes = xrealloc(h->nodes, cap, sizeof(*h->nodes));
        h->capnodes = cap;
    }
    slot = h->nnodes++;
    h->nodes[slot].gen = 1;
    return slot;
}

static void
slot_release(struct sim_heap *h, uint32_t slot)
{
    struct heap_node *nd = &h->nodes[slot];

    nd->pos = SLOT_FREE;
    nd->cb = NULL;
    nd->arg = NULL;
    /* Generation 0 is skipped so that an id is never 0 ("no event"). */
    if (++nd->gen == 0)
        nd->gen = 1;
    nd->next_free = h->free_head;
    h->free_head = slot;
}

uint64_t
sim__heap_push(struct sim_heap *h, msgr_time_ns at, uint64_t seq,
               sim_event_cb cb, void *arg)
{
    struct heap_entry ent;
    uint32_t slot;

    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 64;

        h->e = xrealloc(h->e, cap, sizeof(*h->e));
        h->cap = cap;
    }
    slot = slot_alloc(h);
    h->nodes[slot].cb = cb;
    h->nodes[slot].arg = arg;
    ent.at = at;
    ent.seq = seq;
    ent.slot = slot;
    h->e[h->n] = ent;
    h->nodes[slot].pos = (uint32_t)h->n;
    h->n++;
    sift_up(h, h->n - 1);
    return ((uint64_t)h->nodes[slot].gen << 32) | slot;
}

/* Removes the entry at pos: the last entry fills the hole and moves
 * whichever way restores the order. */
static void
remove_at(struct sim_heap *h, size_t pos)
{
    h->n--;
    if (pos == h->n)
        return;
    place(h, pos, &h->e[h->n]);
    if (pos > 0 && entry_less(&h->e[pos], &h->e[(pos - 1) / 2]))
        sift_up(h, pos);
    else
        sift_down(h, pos);
}

int
sim__heap_cancel(struct sim_heap *h, uint64_t id)
{
    uint32_t slot = (uint32_t)id, gen = (uint32_t)(id >> 32);
    struct heap_node *nd;

    if (slot >= h->nnodes)
        return 0;
    nd = &h->nodes[slot];
    if (nd->gen != gen || nd->pos == SLOT_FREE)
        return 0;
    remove_at(h, nd->pos);
    slot_release(h, slot);
    return 1;
}

int
sim__heap_pop(struct sim_heap *h, msgr_time_ns limit, msgr_time_ns *at,
              sim_event_cb *cb, void **arg)
{
    uint32_t slot;

    if (h->n == 0 || h->e[0].at > limit)
        return 0;
    slot = h->e[0].slot;
    *at = h->e[0].at;
    *cb = h->nodes[slot].cb;
    *arg = h->nodes[slot].arg;
    remove_at(h, 0);
    /* Freed before the callback runs: cancelling the running event (or
     * any already-run one) by its id finds a new generation and fails. */
    slot_release(h, slot);
    return 1;
}
