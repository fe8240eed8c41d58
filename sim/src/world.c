/*
 * The world: a virtual clock and the scheduler loop.
 *
 * Time only moves when an event runs (to that event's time) or when a run
 * is told to stop at a later time; nothing here reads a real clock. The
 * world's own bookkeeping that no other part needs (the nesting guard)
 * lives in a private wrapper around struct sim_world.
 */
#include <stdio.h>
#include <stdlib.h>

#include "sim_internal.h"

struct world_priv {
    struct sim_world pub; /* first: sim_world pointers are world_priv's */
    /* An event is running: the scheduler may not be re-entered from it
     * (that would run later events in the middle of an earlier one). */
    int running;
};

static struct world_priv *
priv(struct sim_world *w)
{
    return (struct world_priv *)w;
}

_Noreturn void
sim__assert_fail(const char *expr, const char *file, int line)
{
    fprintf(stderr, "sim: assertion failed: %s (%s:%d)\n", expr, file, line);
    fflush(stderr);
    abort();
}

struct sim_world *
sim_world_new(uint64_t seed)
{
    struct world_priv *p = calloc(1, sizeof(*p));
    struct sim_world *w;

    if (!p)
        return NULL;
    w = &p->pub;
    w->seed = seed;
    w->heap = sim__heap_new();
    /* seq 0 is never used: ids and sequence numbers start at 1. */
    w->next_seq = 1;
    sim__fp_init(w);
    sim__net_init(w);
    return w;
}

void
sim_world_free(struct sim_world *w)
{
    struct sim_host *h;

    if (!w)
        return;
    SIM_ASSERT(!priv(w)->running);
    for (h = w->hosts; h; h = h->next) {
        /* A stack's workers point at the host: freeing the host under a
         * live stack would leave them dangling. */
        SIM_ASSERT(h->nstacks == 0);
        sim__net_host_fini(h);
    }
    sim__net_fini(w);
    sim__hosts_free(w);
    /* Events still pending (segments in flight, kernel timers) only point
     * at state that is gone now; they are dropped unrun. */
    sim__heap_free(w->heap);
    free(priv(w));
}

uint64_t
sim_world_seed(const struct sim_world *w)
{
    return w->seed;
}

msgr_time_ns
sim_now(const struct sim_world *w)
{
    return w->now;
}

void
sim_world_rng(const struct sim_world *w, enum sim_stream purpose,
              uint32_t id, struct sim_rng *r)
{
    sim_rng_seed(r, w->seed, sim_stream_id(purpose, id));
}

uint64_t
sim_schedule(struct sim_world *w, msgr_time_ns at, sim_event_cb cb, void *arg)
{
    /* The past is clamped to now rather than refused: "as soon as
     * possible", still after everything already due now (larger seq). */
    if (at < w->now)
        at = w->now;
    return sim__heap_push(w->heap, at, w->next_seq++, cb, arg);
}

int
sim_cancel(struct sim_world *w, uint64_t id)
{
    return sim__heap_cancel(w->heap, id);
}

/* Pops and runs one event due at or before limit; 0 if there is none. */
static int
run_one(struct sim_world *w, msgr_time_ns limit)
{
    msgr_time_ns at;
    sim_event_cb cb;
    void *arg;

    if (!sim__heap_pop(w->heap, limit, &at, &cb, &arg))
        return 0;
    w->now = at;
    w->events_run++;
    priv(w)->running = 1;
    cb(arg);
    priv(w)->running = 0;
    return 1;
}

int
sim_step(struct sim_world *w)
{
    SIM_ASSERT(!priv(w)->running);
    return run_one(w, UINT64_MAX);
}

void
sim_run_until(struct sim_world *w, msgr_time_ns t)
{
    SIM_ASSERT(!priv(w)->running);
    while (run_one(w, t))
        ;
    /* Never backwards: a t in the past runs nothing and keeps the clock. */
    if (t > w->now)
        w->now = t;
}

int
sim_run_until_cond(struct sim_world *w, int (*cond)(void *arg), void *arg,
                   msgr_time_ns deadline)
{
    SIM_ASSERT(!priv(w)->running);
    for (;;) {
        if (cond(arg))
            return 1;
        if (!run_one(w, deadline))
            break;
    }
    if (deadline > w->now)
        w->now = deadline;
    /* Checked once more at the deadline itself: a condition on the clock
     * ("until now >= t") holds exactly when time reaches it. */
    return cond(arg) ? 1 : 0;
}

int
sim__world_running(const struct sim_world *w)
{
    return ((const struct world_priv *)w)->running;
}

uint64_t
sim_events_run(const struct sim_world *w)
{
    return w->events_run;
}

size_t
sim_events_pending(const struct sim_world *w)
{
    return sim__heap_size(w->heap);
}
