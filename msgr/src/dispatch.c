/*
 * The dispatch queue (Ceph's DispatchQueue): upcalls that are not fast
 * dispatched are queued here and delivered one at a time on the
 * messenger's local worker, by priority (connection events are strict at
 * the highest priority), FIFO within a priority.
 *
 * Ceph runs a thread for this; we run a drain task on a worker of the
 * stack, so the simulator schedules it like everything else and the posix
 * stack gives it a thread of its own.
 */
#include <errno.h>
#include <string.h>

#include "msgr_internal.h"

#define DQ_BATCH 64 /* deliveries per drain task before yielding */

void
msgr__dq_init(struct msgr *m)
{
    struct msgr_dispatch_queue *q = &m->dq;
    memset(q, 0, sizeof(*q));
    q->lock = m->ops->mutex_new(m->stack);
    MSGR_ASSERT(q->lock != NULL);
    q->stopped = 1; /* until ready() */
}

static void
free_items(struct dq_item *it)
{
    while (it) {
        struct dq_item *n = it->next;
        msgr__free(it);
        it = n;
    }
}

static void
release_item(struct msgr *m, struct dq_item *it)
{
    if (it->msg) {
        msgr__dq_release(m, msgr__msg_payload_len(it->msg));
        msgr_msg_unref(it->msg);
    }
    if (it->conn)
        msgr_conn_unref(it->conn);
}

/* An entry that will never be delivered: a message gets its fate. */
static void
drop_item(struct msgr *m, struct dq_item *it)
{
    if (it->msg)
        msgr__trace_msg(m, it->conn, it->msg, MSGR_FATE_DROPPED);
    release_item(m, it);
}

void
msgr__dq_fini(struct msgr *m)
{
    struct msgr_dispatch_queue *q = &m->dq;
    struct dq_item *it = q->head;
    q->head = NULL;
    q->tail = NULL;
    while (it) {
        struct dq_item *n = it->next;
        drop_item(m, it);
        msgr__free(it);
        it = n;
    }
    free_items(q->free_items);
    q->free_items = NULL;
    m->ops->mutex_free(q->lock);
}

void
msgr__dq_release(struct msgr *m, uint64_t bytes)
{
    atomic_fetch_sub_explicit(&m->dq.bytes, bytes, memory_order_relaxed);
}

static void deliver(struct msgr *m, struct dq_item *it);

static void
drain_cb(void *arg)
{
    struct msgr *m = arg;
    struct msgr_dispatch_queue *q = &m->dq;
    for (int i = 0; i < DQ_BATCH; i++) {
        m->ops->mutex_lock(q->lock);
        struct dq_item *it = q->stopped ? NULL : q->head;
        if (!it) {
            q->posted = 0;
            m->ops->mutex_unlock(q->lock);
            return;
        }
        q->head = it->next;
        if (!q->head)
            q->tail = NULL;
        atomic_fetch_sub_explicit(&q->length, 1, memory_order_relaxed);
        m->ops->mutex_unlock(q->lock);

        deliver(m, it);
        release_item(m, it);

        m->ops->mutex_lock(q->lock);
        it->next = q->free_items;
        q->free_items = it;
        m->ops->mutex_unlock(q->lock);
    }
    /* more work: yield the worker to others, come back */
    if (m->ops->post(m->local_worker, drain_cb, m) != 0) {
        m->ops->mutex_lock(q->lock);
        q->posted = 0;
        m->ops->mutex_unlock(q->lock);
    }
}

/* Under q->lock. */
static void
kick_locked(struct msgr *m)
{
    struct msgr_dispatch_queue *q = &m->dq;
    if (q->posted || q->stopped || !q->head)
        return;
    if (m->ops->post(m->local_worker, drain_cb, m) == 0)
        q->posted = 1;
}

static void
enqueue(struct msgr *m, int kind, int priority, struct msgr_conn *c,
        struct msgr_msg *msg)
{
    struct msgr_dispatch_queue *q = &m->dq;
    m->ops->mutex_lock(q->lock);
    struct dq_item *it = q->free_items;
    if (it)
        q->free_items = it->next;
    else
        it = msgr__alloc(sizeof(*it));
    MSGR_ASSERT(it != NULL);
    it->kind = kind;
    it->priority = priority;
    it->order = q->next_order++;
    it->msg = msg;
    it->conn = c;
    if (c)
        msgr_conn_ref(c);
    if (msg)
        atomic_fetch_add_explicit(&q->bytes, msgr__msg_payload_len(msg),
                                  memory_order_relaxed);
    /* sorted insert: after every item of higher or equal priority; the
     * common case (no higher priority waiting behind) appends in O(1) */
    if (!q->head || q->tail->priority >= priority) {
        it->next = NULL;
        if (q->tail)
            q->tail->next = it;
        else
            q->head = it;
        q->tail = it;
    } else {
        struct dq_item **pp = &q->head;
        while (*pp && (*pp)->priority >= priority)
            pp = &(*pp)->next;
        it->next = *pp;
        *pp = it; /* never the last: the tail's priority is lower */
    }
    atomic_fetch_add_explicit(&q->length, 1, memory_order_relaxed);
    kick_locked(m);
    m->ops->mutex_unlock(q->lock);
}

void
msgr__dq_enqueue_msg(struct msgr *m, struct msgr_conn *c,
                     struct msgr_msg *msg)
{
    enqueue(m, DQ_MSG, msg->hdr.priority, c, msg);
}

void
msgr__dq_enqueue_event(struct msgr *m, struct msgr_conn *c, int kind)
{
    /* connection events are strict, above every message priority */
    enqueue(m, kind, MSGR_PRIO_HIGHEST + 1, c, NULL);
}

void
msgr__deliver_msg(struct msgr *m, struct msgr_conn *c, struct msgr_msg *msg)
{
    for (int i = 0; i < m->ndisp; i++) {
        const struct msgr_dispatcher *d = &m->disp[i];
        if (d->ms_can_fast_dispatch && d->ms_fast_dispatch &&
            d->ms_can_fast_dispatch(d->arg, msg)) {
            msgr__trace_msg(m, c, msg, MSGR_FATE_DELIVERED);
            d->ms_fast_dispatch(d->arg, msg);
            return;
        }
    }
    msgr__dq_enqueue_msg(m, c, msg);
}

static void
deliver(struct msgr *m, struct dq_item *it)
{
    struct msgr_conn *c = it->conn;
    for (int i = 0; i < m->ndisp; i++) {
        const struct msgr_dispatcher *d = &m->disp[i];
        switch (it->kind) {
        case DQ_MSG:
            if (d->ms_dispatch) {
                if (i == 0)
                    msgr__trace_msg(m, c, it->msg, MSGR_FATE_DELIVERED);
                msgr_msg_ref(it->msg);
                if (d->ms_dispatch(d->arg, it->msg))
                    return;
            }
            break;
        case DQ_CONNECT:
            if (d->ms_handle_connect)
                d->ms_handle_connect(d->arg, c);
            break;
        case DQ_ACCEPT:
            if (d->ms_handle_accept)
                d->ms_handle_accept(d->arg, c);
            break;
        case DQ_REMOTE_RESET:
            if (d->ms_handle_remote_reset)
                d->ms_handle_remote_reset(d->arg, c);
            break;
        case DQ_RESET:
            if (d->ms_handle_reset && d->ms_handle_reset(d->arg, c))
                return;
            break;
        case DQ_REFUSED:
            if (d->ms_handle_refused && d->ms_handle_refused(d->arg, c))
                return;
            break;
        }
    }
    if (it->kind == DQ_MSG)
        MSGR_LOG(m, MSGR_LOG_DEBUG, "no dispatcher handled message type %u",
                 it->msg->hdr.type);
}

void
msgr__dq_start(struct msgr *m)
{
    struct msgr_dispatch_queue *q = &m->dq;
    m->ops->mutex_lock(q->lock);
    q->stopped = 0;
    kick_locked(m);
    m->ops->mutex_unlock(q->lock);
}

void
msgr__dq_stop(struct msgr *m)
{
    struct msgr_dispatch_queue *q = &m->dq;
    m->ops->mutex_lock(q->lock);
    q->stopped = 1;
    struct dq_item *it = q->head;
    q->head = NULL;
    q->tail = NULL;
    m->ops->mutex_unlock(q->lock);
    /* a drain task already running finishes its current delivery; the
     * stack drain in wait() waits for it */
    while (it) {
        struct dq_item *n = it->next;
        drop_item(m, it);
        msgr__free(it);
        it = n;
    }
    atomic_store(&q->length, 0);
}

void
msgr__dq_discard_conn(struct msgr *m, struct msgr_conn *c)
{
    struct msgr_dispatch_queue *q = &m->dq;
    struct dq_item *gone = NULL;
    m->ops->mutex_lock(q->lock);
    struct dq_item **pp = &q->head;
    while (*pp) {
        struct dq_item *it = *pp;
        if (it->conn == c && it->kind == DQ_MSG) {
            *pp = it->next;
            it->next = gone;
            gone = it;
            atomic_fetch_sub_explicit(&q->length, 1, memory_order_relaxed);
        } else {
            pp = &it->next;
        }
    }
    q->tail = NULL;
    for (struct dq_item *t = q->head; t; t = t->next)
        q->tail = t;
    m->ops->mutex_unlock(q->lock);
    while (gone) {
        struct dq_item *n = gone->next;
        msgr__trace_msg(m, c, gone->msg, MSGR_FATE_DROPPED);
        release_item(m, gone);
        msgr__free(gone);
        gone = n;
    }
}
