/*
 * The message pool: the memory of a message (its struct and its payload,
 * one block) is recycled instead of going back to malloc on every unref.
 *
 * Why: a message is allocated on one thread and released on another (the
 * application allocates, the worker releases it once acked; the worker
 * allocates on receive, whoever dispatches releases it). glibc answers that
 * pattern from the allocating thread's arena with a lock on every remote
 * free, and it trims the top of the heap when a burst of frees leaves
 * 128 KiB free there, so the next burst faults fresh zeroed pages in again
 * (measured: a sixth of the 4 KiB stream and a quarter of the 64 KiB stream
 * went to page faults and brk).
 *
 * Design: five size classes by payload length (none, up to 64 B, 256 B, 4 KiB,
 * 64 KiB; larger messages are plain allocations). Each class is one global
 * LIFO of free blocks:
 *   - put pushes with a compare-and-swap, from any thread, lock-free;
 *   - get pops under a try-lock (an atomic flag): only one thread pops a
 *     class at a time, so the head a popper read can be taken by no one else
 *     and the classic ABA of a lock-free pop cannot happen; a get that finds
 *     the flag taken does not wait, it allocates a new block.
 * Nothing ever spins on the hot path. Each class keeps at most keep_max
 * blocks (about 13 MiB for all five together); a put beyond that frees, and
 * msgr_msg_pool_trim() gives every pooled block back.
 *
 * The pool only recycles memory: which block a message gets never changes
 * what the messenger does (nothing orders by pointer), so the simulator
 * stays deterministic.
 *
 * Sanitizers: under AddressSanitizer the pool starts disabled, so every
 * message is a malloc and a use after the last unref is caught; a test may
 * enable it, and pooled blocks are then poisoned while they sit in the pool.
 * Under ThreadSanitizer every hand-over goes through C11 atomics, which TSan
 * sees.
 */
#include <stdatomic.h>
#include <stddef.h>
#include <string.h>

#include "msgr_internal.h"

#if defined(__SANITIZE_ADDRESS__)
#define POOL_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define POOL_ASAN 1
#endif
#endif

#ifdef POOL_ASAN
#include <sanitizer/asan_interface.h>
#define POOL_POISON(p, n)   ASAN_POISON_MEMORY_REGION((p), (n))
#define POOL_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#define POOL_DEFAULT_ON     0
#else
#define POOL_POISON(p, n)   ((void)(p), (void)(n))
#define POOL_UNPOISON(p, n) ((void)(p), (void)(n))
#define POOL_DEFAULT_ON     1
#endif

/* One allocation: the pool's link and class, the message, its payload. */
struct msg_block {
    struct msg_block *pool_next; /* while pooled */
    uint32_t cls;                /* enum msgr__msg_pool_class */
    struct msgr_msg m;
    uint8_t payload[];
};

static const struct {
    uint32_t payload_max;
    uint32_t keep_max; /* blocks kept when free; beyond: freed */
} pool_classes[MSGR_MSG_POOL_NCLASS] = {
    /* control messages, acks, pings: the struct alone */
    [MSGR_MSG_POOL_EMPTY] = {0, 1024},
    /* small requests and replies: a block near malloc's own size for
     * them, so a simulator with many in flight keeps its cache footprint */
    [MSGR_MSG_POOL_64] = {64, 1024},
    [MSGR_MSG_POOL_256] = {256, 1024},
    /* a page: the default 4 MiB window holds 1024 of them */
    [MSGR_MSG_POOL_4K] = {4096, 1024},
    /* 64 KiB: a 64-message window plus the sent messages awaiting their
     * ack and the received copies; 64 still left page faults measurable */
    [MSGR_MSG_POOL_64K] = {65536, 128},
};

struct pool_class {
    /* a cache line each: different threads work different classes */
    _Alignas(64) _Atomic(struct msg_block *) head;
    atomic_flag pop_lock;
    atomic_uint count; /* places taken: pushed or about to be, not popped */
};

static struct pool_class pool[MSGR_MSG_POOL_NCLASS] = {
    {.pop_lock = ATOMIC_FLAG_INIT},
    {.pop_lock = ATOMIC_FLAG_INIT},
    {.pop_lock = ATOMIC_FLAG_INIT},
    {.pop_lock = ATOMIC_FLAG_INIT},
    {.pop_lock = ATOMIC_FLAG_INIT},
};
_Static_assert(MSGR_MSG_POOL_NCLASS == 5, "one initialiser per class");
static atomic_int pool_on = POOL_DEFAULT_ON;

static enum msgr__msg_pool_class
class_for(size_t payload)
{
    for (int c = 0; c < MSGR_MSG_POOL_NCLASS; c++)
        if (payload <= pool_classes[c].payload_max)
            return (enum msgr__msg_pool_class)c;
    return MSGR_MSG_POOL_NONE;
}

static size_t
block_size(enum msgr__msg_pool_class cls, size_t payload)
{
    if (cls != MSGR_MSG_POOL_NONE)
        payload = pool_classes[cls].payload_max;
    return sizeof(struct msg_block) + payload;
}

/* The part of a pooled block ASan guards: everything after the link. */
static void *
guarded(struct msg_block *b)
{
    return &b->m;
}

static size_t
guarded_len(struct msg_block *b)
{
    return block_size((enum msgr__msg_pool_class)b->cls, 0) -
           offsetof(struct msg_block, m);
}

static struct msg_block *
pool_pop(struct pool_class *pc)
{
    /* empty (a burst larger than the bound drained it): no locked op */
    if (!atomic_load_explicit(&pc->head, memory_order_relaxed))
        return NULL;
    if (atomic_flag_test_and_set_explicit(&pc->pop_lock, memory_order_acquire))
        return NULL; /* another thread is popping: do not wait */
    struct msg_block *b =
        atomic_load_explicit(&pc->head, memory_order_acquire);
    /* b stays in the list until our CAS: no one else pops */
    while (b && !atomic_compare_exchange_weak_explicit(
                    &pc->head, &b, b->pool_next, memory_order_acquire,
                    memory_order_acquire))
        ;
    atomic_flag_clear_explicit(&pc->pop_lock, memory_order_release);
    if (b)
        atomic_fetch_sub_explicit(&pc->count, 1, memory_order_relaxed);
    return b;
}

static void
pool_push(struct pool_class *pc, struct msg_block *b)
{
    struct msg_block *head =
        atomic_load_explicit(&pc->head, memory_order_relaxed);
    do {
        b->pool_next = head;
    } while (!atomic_compare_exchange_weak_explicit(
        &pc->head, &head, b, memory_order_release, memory_order_relaxed));
}

struct msgr_msg *
msgr__msg_pool_get(size_t payload, uint8_t **buf)
{
    enum msgr__msg_pool_class cls = class_for(payload);
    struct msg_block *b = NULL;
    if (cls != MSGR_MSG_POOL_NONE &&
        atomic_load_explicit(&pool_on, memory_order_relaxed)) {
        b = pool_pop(&pool[cls]);
        if (b)
            POOL_UNPOISON(guarded(b), guarded_len(b));
    }
    if (!b) {
        b = msgr__alloc(block_size(cls, payload));
        if (!b)
            return NULL;
        b->cls = cls;
    }
    b->pool_next = NULL;
    *buf = b->payload;
    return &b->m;
}

void
msgr__msg_pool_put(struct msgr_msg *m)
{
    struct msg_block *b =
        (struct msg_block *)((char *)m - offsetof(struct msg_block, m));
    if (b->cls != MSGR_MSG_POOL_NONE &&
        atomic_load_explicit(&pool_on, memory_order_relaxed)) {
        struct pool_class *pc = &pool[b->cls];
        unsigned keep = pool_classes[b->cls].keep_max;
        /* full (the common case when a burst exceeds the bound, as on a
         * simulator of a thousand nodes): no read-modify-write at all;
         * otherwise reserve a place first, so the bound holds under races */
        if (atomic_load_explicit(&pc->count, memory_order_relaxed) < keep) {
            if (atomic_fetch_add_explicit(&pc->count, 1,
                                          memory_order_relaxed) < keep) {
                POOL_POISON(guarded(b), guarded_len(b));
                pool_push(pc, b);
                return;
            }
            atomic_fetch_sub_explicit(&pc->count, 1, memory_order_relaxed);
        }
    }
    msgr__free(b);
}

void
msgr_msg_pool_trim(void)
{
    for (int c = 0; c < MSGR_MSG_POOL_NCLASS; c++) {
        struct pool_class *pc = &pool[c];
        /* a popper holds the flag for a few instructions and never blocks
         * under it: waiting here (a cold path) is short */
        while (atomic_flag_test_and_set_explicit(&pc->pop_lock,
                                                 memory_order_acquire))
            ;
        struct msg_block *b =
            atomic_exchange_explicit(&pc->head, NULL, memory_order_acquire);
        atomic_flag_clear_explicit(&pc->pop_lock, memory_order_release);
        while (b) {
            struct msg_block *n = b->pool_next;
            atomic_fetch_sub_explicit(&pc->count, 1, memory_order_relaxed);
            POOL_UNPOISON(guarded(b), guarded_len(b));
            msgr__free(b);
            b = n;
        }
    }
}

int
msgr__msg_pool_set_enabled(int on)
{
    int was = atomic_exchange_explicit(&pool_on, on ? 1 : 0,
                                       memory_order_relaxed);
    if (!on)
        msgr_msg_pool_trim();
    return was;
}

unsigned
msgr__msg_pool_count(enum msgr__msg_pool_class cls)
{
    MSGR_ASSERT((unsigned)cls < MSGR_MSG_POOL_NCLASS);
    return atomic_load_explicit(&pool[cls].count, memory_order_relaxed);
}

unsigned
msgr__msg_pool_keep_max(enum msgr__msg_pool_class cls)
{
    MSGR_ASSERT((unsigned)cls < MSGR_MSG_POOL_NCLASS);
    return pool_classes[cls].keep_max;
}

enum msgr__msg_pool_class
msgr__msg_pool_class_of(const struct msgr_msg *m)
{
    const struct msg_block *b = (const struct msg_block *)(
        (const char *)m - offsetof(struct msg_block, m));
    return (enum msgr__msg_pool_class)b->cls;
}
