/*
 * The registry of built-in stacks and the backend-independent helpers of
 * the stack seam (references, worker selection).
 *
 * Generic on purpose: no thread, clock or socket call here, only the
 * backend's ops and C11 atomics, so the same helpers serve the sim.
 */
#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stddef.h>
#include <string.h>

#include "msgr/stack.h"

/* Defined by the posix backend; stack.h only declares its constructor. */
extern const struct msgr_stack_ops msgr__posix_stack_ops;

struct stack_entry {
    const char *name;
    const struct msgr_stack_ops *ops;
    struct msgr_stack *(*create)(const struct msgr_stack_config *cfg,
                                 int *err);
};

static const struct stack_entry builtin_stacks[] = {
    { "posix", &msgr__posix_stack_ops, msgr_posix_stack_new },
};

static const struct stack_entry *
find_entry(const char *name)
{
    size_t i;

    if (!name)
        return NULL;
    for (i = 0; i < sizeof(builtin_stacks) / sizeof(builtin_stacks[0]); i++) {
        if (strcmp(builtin_stacks[i].name, name) == 0)
            return &builtin_stacks[i];
    }
    return NULL;
}

const struct msgr_stack_ops *
msgr_stack_find(const char *name)
{
    const struct stack_entry *e = find_entry(name);

    return e ? e->ops : NULL;
}

struct msgr_stack *
msgr_stack_create(const char *name, const struct msgr_stack_config *cfg,
                  int *err)
{
    const struct stack_entry *e = find_entry(name);
    struct msgr_stack *st;
    int dummy;

    if (!err)
        err = &dummy;
    *err = 0;
    if (!e) {
        *err = -EINVAL;
        return NULL;
    }
    st = e->create(cfg, err);
    if (!st) {
        if (*err == 0)
            *err = -ENOMEM;
        return NULL;
    }
    /* The caller's reference, whatever the backend started from. */
    atomic_store(&st->refs, 1);
    return st;
}

void
msgr_stack_ref(struct msgr_stack *st)
{
    atomic_fetch_add_explicit(&st->refs, 1, memory_order_relaxed);
}

void
msgr_stack_unref(struct msgr_stack *st)
{
    if (!st)
        return;
    /* acq_rel: the destroying thread must see every other holder's
     * writes made before it dropped its reference. */
    if (atomic_fetch_sub_explicit(&st->refs, 1, memory_order_acq_rel) == 1)
        st->ops->destroy(st);
}

struct msgr_worker *
msgr_stack_get_worker(struct msgr_stack *st)
{
    for (;;) {
        struct msgr_worker *best = NULL;
        int best_refs = INT_MAX, i;

        for (i = 0; i < st->nworkers; i++) {
            int r = atomic_load_explicit(&st->workers[i]->refs,
                                         memory_order_relaxed);

            /* strict <: ties go to the lowest id */
            if (r < best_refs) {
                best = st->workers[i];
                best_refs = r;
            }
        }
        if (!best)
            return NULL;
        /* Only take it if nobody changed its load since the scan; else
         * the choice may be stale (two callers picking the same "least
         * loaded" worker), so look again. */
        if (atomic_compare_exchange_weak_explicit(&best->refs, &best_refs,
                                                  best_refs + 1,
                                                  memory_order_relaxed,
                                                  memory_order_relaxed))
            return best;
    }
}

void
msgr_stack_put_worker(struct msgr_worker *w)
{
    atomic_fetch_sub_explicit(&w->refs, 1, memory_order_relaxed);
}
