/*
 * Policy throttles (Ceph's Policy::throttler_messages/_bytes): counters
 * that bound what peers of one policy can make us hold. A reader takes
 * one message and its payload bytes before it reads a MESSAGE body; the
 * message gives them back when its last reference goes.
 *
 * The rule for a request: it passes when the throttle is unlimited, when
 * nothing is held, or when it fits under the limit. "Nothing held" lets a
 * single message larger than the whole limit through (alone), which would
 * otherwise never pass.
 */
#include "msgr_internal.h"

struct msgr_throttle_set *
msgr__throttle_set_new(const struct msgr_policy *p)
{
    struct msgr_throttle_set *t = msgr__calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    atomic_init(&t->refs, 1);
    msgr__throttle_set_limits(t, p);
    return t;
}

void
msgr__throttle_set_limits(struct msgr_throttle_set *t,
                          const struct msgr_policy *p)
{
    atomic_store(&t->msgs.max, p->throttle_msgs);
    atomic_store(&t->bytes.max, p->throttle_bytes);
}

void
msgr__throttle_set_ref(struct msgr_throttle_set *t)
{
    atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
}

void
msgr__throttle_set_unref(struct msgr_throttle_set *t)
{
    if (t && atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) == 1)
        msgr__free(t);
}

static int
take(struct msgr_throttle *t, uint64_t n)
{
    uint64_t max = atomic_load_explicit(&t->max, memory_order_relaxed);
    uint64_t cur = atomic_load_explicit(&t->cur, memory_order_relaxed);
    do {
        if (cur && cur + n > max)
            return 0;
    } while (!atomic_compare_exchange_weak_explicit(
        &t->cur, &cur, cur + n, memory_order_acquire, memory_order_relaxed));
    uint64_t peak = atomic_load_explicit(&t->peak, memory_order_relaxed);
    while (cur + n > peak &&
           !atomic_compare_exchange_weak_explicit(&t->peak, &peak, cur + n,
                                                  memory_order_relaxed,
                                                  memory_order_relaxed))
        ;
    return 1;
}

static void
put(struct msgr_throttle *t, uint64_t n)
{
    if (n)
        atomic_fetch_sub_explicit(&t->cur, n, memory_order_release);
}

int
msgr__throttle_take(struct msgr_throttle_set *t, uint64_t bytes,
                    uint32_t *got_msgs, uint64_t *got_bytes)
{
    *got_msgs = 0;
    *got_bytes = 0;
    if (!t)
        return 1;
    /* unlimited counters are not touched: no shared cache line on the
     * common path */
    int limit_msgs = atomic_load_explicit(&t->msgs.max, memory_order_relaxed) != 0;
    int limit_bytes =
        atomic_load_explicit(&t->bytes.max, memory_order_relaxed) != 0;
    if (limit_msgs && !take(&t->msgs, 1))
        return 0;
    if (limit_bytes && bytes && !take(&t->bytes, bytes)) {
        if (limit_msgs)
            put(&t->msgs, 1);
        return 0;
    }
    *got_msgs = limit_msgs ? 1 : 0;
    *got_bytes = limit_bytes ? bytes : 0;
    return 1;
}

void
msgr__throttle_put(struct msgr_throttle_set *t, uint32_t msgs, uint64_t bytes)
{
    if (!t)
        return;
    put(&t->msgs, msgs);
    put(&t->bytes, bytes);
}

void
msgr_get_throttle(struct msgr *m, uint8_t peer_type,
                  struct msgr_throttle_stats *out)
{
    struct msgr_throttle_set *t = msgr__get_throttle(m, peer_type);
    out->msgs_cur = atomic_load(&t->msgs.cur);
    out->msgs_peak = atomic_load(&t->msgs.peak);
    out->msgs_max = atomic_load(&t->msgs.max);
    out->bytes_cur = atomic_load(&t->bytes.cur);
    out->bytes_peak = atomic_load(&t->bytes.peak);
    out->bytes_max = atomic_load(&t->bytes.max);
    msgr__throttle_set_unref(t);
}
