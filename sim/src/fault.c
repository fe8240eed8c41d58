/*
 * Faults on a timeline: each primitive of sim.h, started at one virtual
 * time and optionally healed at another. Scenario files will drive this;
 * tests and benchmarks use it directly.
 *
 * A link fault remembers the value of the one parameter it changes and
 * puts back only that one when it heals: faults of different kinds on one
 * link overlap freely (a loss healing keeps a delay that is still on).
 */
#include <stdlib.h>
#include <string.h>

#include "sim_internal.h"

struct sim_fault_run {
    struct sim_world *w;
    struct sim_fault f;
    struct sim_link_params saved_ab, saved_ba;
    uint64_t start_id, heal_id;
    int active, healed;
};

static void
fp_fault(struct sim_world *w, const struct sim_fault *f, int heal)
{
    sim_fp_mix_u64(w, 0x46415554u); /* "FAUT" */
    sim_fp_mix_u64(w, ((uint64_t)f->kind << 8) | (uint64_t)heal);
    sim_fp_mix_u64(w, f->a ? f->a->id : UINT32_MAX);
    sim_fp_mix_u64(w, f->b ? f->b->id : UINT32_MAX);
    sim_fp_mix_u64(w, sim_now(w));
}

static void
apply_link(struct sim_fault_run *r, struct sim_host *a, struct sim_host *b,
           int reverse)
{
    struct sim_world *w = r->w;
    struct sim_link_params p;
    sim_link_get(w, a, b, &p);
    if (reverse)
        r->saved_ba = p;
    else
        r->saved_ab = p;
    switch (r->f.kind) {
    case SIM_FAULT_LOSS:
        p.loss_ppm = r->f.ppm;
        break;
    case SIM_FAULT_CORRUPT:
        p.corrupt_ppm = r->f.ppm;
        break;
    case SIM_FAULT_DELAY:
        p.latency_ns += r->f.delay_ns;
        p.jitter_ns += r->f.jitter_ns;
        break;
    case SIM_FAULT_BANDWIDTH:
        p.bandwidth_bps = r->f.bandwidth_bps;
        break;
    default:
        return;
    }
    sim_link_set(w, a, b, &p);
}

static void
restore_link(struct sim_fault_run *r, struct sim_host *a, struct sim_host *b,
             const struct sim_link_params *saved)
{
    struct sim_link_params p;
    sim_link_get(r->w, a, b, &p);
    switch (r->f.kind) {
    case SIM_FAULT_LOSS:
        p.loss_ppm = saved->loss_ppm;
        break;
    case SIM_FAULT_CORRUPT:
        p.corrupt_ppm = saved->corrupt_ppm;
        break;
    case SIM_FAULT_DELAY:
        p.latency_ns -= r->f.delay_ns;
        p.jitter_ns -= r->f.jitter_ns;
        break;
    case SIM_FAULT_BANDWIDTH:
        p.bandwidth_bps = saved->bandwidth_bps;
        break;
    default:
        return;
    }
    sim_link_set(r->w, a, b, &p);
}

static int
is_link_fault(enum sim_fault_kind k)
{
    return k == SIM_FAULT_LOSS || k == SIM_FAULT_CORRUPT ||
           k == SIM_FAULT_DELAY || k == SIM_FAULT_BANDWIDTH;
}

static void
start_cb(void *arg)
{
    struct sim_fault_run *r = arg;
    struct sim_world *w = r->w;
    const struct sim_fault *f = &r->f;
    r->start_id = 0;
    r->active = 1;
    fp_fault(w, f, 0);
    if (is_link_fault(f->kind)) {
        apply_link(r, f->a, f->b, 0);
        if (!f->oneway)
            apply_link(r, f->b, f->a, 1);
        return;
    }
    switch (f->kind) {
    case SIM_FAULT_PARTITION:
        sim_partition(w, f->a, f->b, 1);
        if (!f->oneway)
            sim_partition(w, f->b, f->a, 1);
        break;
    case SIM_FAULT_RESET:
        sim_reset_between(w, f->a, f->b);
        r->active = 0; /* instantaneous */
        break;
    case SIM_FAULT_RESET_PROB:
        sim_reset_prob(w, f->a, f->b, f->ppm);
        if (!f->oneway)
            sim_reset_prob(w, f->b, f->a, f->ppm);
        break;
    case SIM_FAULT_KILL:
        sim_host_kill(w, f->a);
        break;
    case SIM_FAULT_CRASH:
        sim_host_crash(w, f->a);
        break;
    case SIM_FAULT_PAUSE:
        sim_host_pause(w, f->a);
        break;
    case SIM_FAULT_LOSS:
    case SIM_FAULT_CORRUPT:
    case SIM_FAULT_DELAY:
    case SIM_FAULT_BANDWIDTH:
        break;
    }
}

static void
heal_cb(void *arg)
{
    struct sim_fault_run *r = arg;
    struct sim_world *w = r->w;
    const struct sim_fault *f = &r->f;
    r->heal_id = 0;
    if (!r->active || r->healed)
        return;
    r->healed = 1;
    r->active = 0;
    fp_fault(w, f, 1);
    if (is_link_fault(f->kind)) {
        restore_link(r, f->a, f->b, &r->saved_ab);
        if (!f->oneway)
            restore_link(r, f->b, f->a, &r->saved_ba);
        return;
    }
    switch (f->kind) {
    case SIM_FAULT_PARTITION:
        sim_partition(w, f->a, f->b, 0);
        if (!f->oneway)
            sim_partition(w, f->b, f->a, 0);
        break;
    case SIM_FAULT_RESET_PROB:
        sim_reset_prob(w, f->a, f->b, 0);
        if (!f->oneway)
            sim_reset_prob(w, f->b, f->a, 0);
        break;
    case SIM_FAULT_KILL:
    case SIM_FAULT_CRASH:
        sim_host_revive(w, f->a);
        break;
    case SIM_FAULT_PAUSE:
        sim_host_resume(w, f->a);
        break;
    case SIM_FAULT_RESET:
    case SIM_FAULT_LOSS:
    case SIM_FAULT_CORRUPT:
    case SIM_FAULT_DELAY:
    case SIM_FAULT_BANDWIDTH:
        break;
    }
}

static int
needs_b(enum sim_fault_kind k)
{
    return k != SIM_FAULT_KILL && k != SIM_FAULT_CRASH && k != SIM_FAULT_PAUSE;
}

struct sim_fault_run *
sim_fault_schedule(struct sim_world *w, const struct sim_fault *f)
{
    if (!f->a || (needs_b(f->kind) && !f->b))
        return NULL;
    if (f->heal_at_ns && f->heal_at_ns < f->start_at_ns)
        return NULL;
    struct sim_fault_run *r = calloc(1, sizeof(*r));
    SIM_ASSERT(r != NULL);
    r->w = w;
    r->f = *f;
    r->start_id = sim_schedule(w, f->start_at_ns, start_cb, r);
    if (f->heal_at_ns)
        r->heal_id = sim_schedule(w, f->heal_at_ns, heal_cb, r);
    return r;
}

void
sim_fault_heal(struct sim_fault_run *r)
{
    if (r->start_id) {
        sim_cancel(r->w, r->start_id);
        r->start_id = 0;
    }
    if (r->heal_id) {
        sim_cancel(r->w, r->heal_id);
        r->heal_id = 0;
    }
    heal_cb(r);
}

int
sim_fault_active(const struct sim_fault_run *r)
{
    return r->active;
}

void
sim_fault_free(struct sim_fault_run *r)
{
    if (!r)
        return;
    if (r->start_id)
        sim_cancel(r->w, r->start_id);
    if (r->heal_id)
        sim_cancel(r->w, r->heal_id);
    free(r);
}
