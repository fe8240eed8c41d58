/*
 * The event writer: a thread that turns queued chunks of events into
 * sqlite rows while the run goes on, so a traced run pays for copying an
 * event into memory rather than for an sqlite insert (on two CPUs the
 * simulation and the inserts overlap).
 *
 * The thread lives from trace_run_begin to trace_run_end. Appenders fill
 * db->cur under the handle's mutex and queue it when full; trace_flush,
 * trace_run_end and the readers drain the queue first, so whatever they
 * do sees every event appended before them. The writer takes sql_lock per
 * chunk and never the handle's mutex, so appenders never wait for sqlite
 * unless TRACE_WRITER_MAX_CHUNKS chunks are already waiting.
 */
#include <stdlib.h>
#include <string.h>

#include "trace_internal.h"

static void
chunk_free(struct trace_chunk *c)
{
    if (c) {
        free(c->arena);
        free(c);
    }
}

/* Writes one chunk's events; sql_lock held. */
static int
write_chunk(struct trace_db *db, const struct trace_chunk *c)
{
    int e = 0;

    if (!db->in_tx)
        e = trace__tx_begin(db);
    for (size_t i = 0; i < c->n && !e; i++) {
        e = trace__event_write(db, &c->ev[i], c->arena);
        if (!e)
            e = trace__row_written(db);
    }
    return e;
}

static void *
writer_main(void *arg)
{
    struct trace_db *db = arg;
    struct trace_writer *w = &db->w;

    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->head && !w->stop)
            pthread_cond_wait(&w->work, &w->mu);
        if (!w->head)
            break;
        struct trace_chunk *c = w->head;
        w->head = c->next;
        if (!w->head)
            w->tail = NULL;
        w->queued--;
        w->busy = 1;
        int failed = w->err;
        pthread_mutex_unlock(&w->mu);

        /* after a failure the rest of the run is dropped, not retried */
        int e = 0;
        if (!failed) {
            pthread_mutex_lock(&db->sql_lock);
            e = write_chunk(db, c);
            pthread_mutex_unlock(&db->sql_lock);
        }
        c->n = 0;
        c->arena_len = 0;

        pthread_mutex_lock(&w->mu);
        if (e && !w->err)
            w->err = e;
        c->next = w->spare;
        w->spare = c;
        w->busy = 0;
        pthread_cond_broadcast(&w->idle);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

int
trace__writer_start(struct trace_db *db)
{
    struct trace_writer *w = &db->w;

    w->err = 0;
    w->stop = 0;
    if (pthread_create(&w->thread, NULL, writer_main, db) != 0)
        return trace__fail(db, TRACE_ENOMEM, "%s: cannot start the writer "
                           "thread", db->path);
    w->running = 1;
    return 0;
}

/* Hands db->cur to the writer; lock held. */
static void
queue_cur(struct trace_db *db)
{
    struct trace_writer *w = &db->w;
    struct trace_chunk *c = db->cur;

    db->cur = NULL;
    if (!c)
        return;
    if (c->n == 0) {
        chunk_free(c);
        return;
    }
    c->next = NULL;
    pthread_mutex_lock(&w->mu);
    while (w->queued >= TRACE_WRITER_MAX_CHUNKS)
        pthread_cond_wait(&w->idle, &w->mu);
    if (w->tail)
        w->tail->next = c;
    else
        w->head = c;
    w->tail = c;
    w->queued++;
    pthread_cond_signal(&w->work);
    pthread_mutex_unlock(&w->mu);
}

int
trace__writer_drain(struct trace_db *db)
{
    struct trace_writer *w = &db->w;
    int e;

    if (!w->running)
        return 0;
    queue_cur(db);
    pthread_mutex_lock(&w->mu);
    while (w->head || w->busy)
        pthread_cond_wait(&w->idle, &w->mu);
    e = w->err;
    pthread_mutex_unlock(&w->mu);
    return e;
}

int
trace__writer_stop(struct trace_db *db)
{
    struct trace_writer *w = &db->w;
    int e;

    if (!w->running)
        return 0;
    e = trace__writer_drain(db);
    pthread_mutex_lock(&w->mu);
    w->stop = 1;
    pthread_cond_signal(&w->work);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    w->running = 0;
    return e;
}

struct trace_ev_slot *
trace__writer_slot(struct trace_db *db)
{
    struct trace_writer *w = &db->w;
    struct trace_chunk *c = db->cur;

    if (c && c->n == TRACE_CHUNK_EVENTS) {
        queue_cur(db);
        c = NULL;
    }
    if (!c) {
        pthread_mutex_lock(&w->mu);
        c = w->spare;
        if (c)
            w->spare = c->next;
        pthread_mutex_unlock(&w->mu);
        if (!c) {
            c = malloc(sizeof(*c));
            if (!c)
                return NULL;
            memset(c, 0, offsetof(struct trace_chunk, ev));
        }
        db->cur = c;
    }
    return &c->ev[c->n++];
}

int
trace__writer_str(struct trace_db *db, const char *s, uint32_t *off)
{
    struct trace_chunk *c = db->cur;
    size_t len;

    *off = TRACE_EV_NOSTR;
    if (!s)
        return 0;
    len = strlen(s) + 1;
    if (c->arena_len + len > c->arena_cap) {
        size_t cap = c->arena_cap ? 2 * c->arena_cap : 16384;
        while (cap < c->arena_len + len)
            cap *= 2;
        char *p = realloc(c->arena, cap);
        if (!p)
            return TRACE_ENOMEM;
        c->arena = p;
        c->arena_cap = cap;
    }
    memcpy(c->arena + c->arena_len, s, len);
    *off = (uint32_t)c->arena_len;
    c->arena_len += len;
    return 0;
}

void
trace__writer_free(struct trace_db *db)
{
    struct trace_writer *w = &db->w;

    chunk_free(db->cur);
    db->cur = NULL;
    while (w->spare) {
        struct trace_chunk *c = w->spare;
        w->spare = c->next;
        chunk_free(c);
    }
    while (w->head) {
        struct trace_chunk *c = w->head;
        w->head = c->next;
        chunk_free(c);
    }
}
