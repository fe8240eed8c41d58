/* Messages, policies and the small utilities every file of msgr uses. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msgr_internal.h"

void
msgr__assert_fail(const char *expr, const char *file, int line)
{
    fprintf(stderr, "msgr: assertion failed: %s (%s:%d)\n", expr, file, line);
    abort();
}

/* One place for allocation so a hook (leak accounting per node in the sim,
 * fail-the-Nth torture runs) can be added without touching callers. */
void *
msgr__alloc(size_t n)
{
    return malloc(n);
}

void *
msgr__calloc(size_t n, size_t sz)
{
    return calloc(n, sz);
}

void *
msgr__realloc(void *p, size_t n)
{
    return realloc(p, n);
}

void
msgr__free(void *p)
{
    free(p);
}

int
msgr__conn_vec_push(struct conn_vec *cv, struct msgr_conn *c)
{
    if (cv->n == cv->cap) {
        int ncap = cv->cap ? cv->cap * 2 : 8;
        struct msgr_conn **nv = msgr__realloc(cv->v, sizeof(*nv) * ncap);
        if (!nv)
            return -ENOMEM;
        cv->v = nv;
        cv->cap = ncap;
    }
    cv->v[cv->n++] = c;
    return 0;
}

int
msgr__conn_vec_remove(struct conn_vec *cv, struct msgr_conn *c)
{
    for (int i = 0; i < cv->n; i++) {
        if (cv->v[i] == c) {
            /* keep insertion order: iteration order is observable */
            memmove(&cv->v[i], &cv->v[i + 1],
                    sizeof(cv->v[0]) * (size_t)(cv->n - i - 1));
            cv->n--;
            return 1;
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- message */

/*
 * A message and its payload are one block: the payload buffers of a new
 * message are carved out of the bytes that follow the struct, so a message
 * costs one block however many segments it has, and blocks come from the
 * message pool (msg_pool.c), not from malloc each time.
 */
static struct msgr_msg *
msg_alloc(size_t payload, uint8_t **buf)
{
    struct msgr_msg *m = msgr__msg_pool_get(payload, buf);
    if (!m)
        return NULL;
    memset(m, 0, sizeof(*m));
    atomic_init(&m->refs, 1);
    m->hdr.priority = MSGR_PRIO_DEFAULT;
    m->hdr.version = 1;
    m->hdr.compat_version = 1;
    return m;
}

struct msgr_msg *
msgr_msg_new(uint16_t type, uint32_t front_len, uint32_t middle_len,
             uint32_t data_len)
{
    size_t total = (size_t)front_len + middle_len + data_len;
    uint8_t *p;
    struct msgr_msg *m = msg_alloc(total, &p);
    if (!m)
        return NULL;
    m->hdr.type = type;
    m->front.data = front_len ? p : NULL;
    m->front.len = front_len;
    m->middle.data = middle_len ? p + front_len : NULL;
    m->middle.len = middle_len;
    m->data.data = data_len ? p + front_len + middle_len : NULL;
    m->data.len = data_len;
    return m;
}

struct msgr_msg *
msgr__msg_new_raw(uint32_t len, uint8_t **buf)
{
    return msg_alloc(len, buf);
}

void
msgr_msg_ref(struct msgr_msg *m)
{
    atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
}

void
msgr_msg_unref(struct msgr_msg *m)
{
    if (!m)
        return;
    if (atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) != 1)
        return;
    /* before the conn reference: it keeps the throttle set alive */
    msgr__throttle_put(m->throttle, m->throttle_msgs, m->throttle_bytes);
    if (m->conn)
        msgr_conn_unref(m->conn);
    msgr__msg_pool_put(m);
}

uint64_t
msgr__msg_payload_len(const struct msgr_msg *msg)
{
    return (uint64_t)msg->front.len + msg->middle.len + msg->data.len;
}

const char *
msgr_fate_name(int fate)
{
    switch (fate) {
    case MSGR_FATE_QUEUED:
        return "queued";
    case MSGR_FATE_SENT:
        return "sent";
    case MSGR_FATE_ACKED:
        return "acked";
    case MSGR_FATE_DELIVERED:
        return "delivered";
    case MSGR_FATE_DROPPED:
        return "dropped";
    case MSGR_FATE_DUPLICATE:
        return "duplicate";
    case MSGR_FATE_BLACKHOLED:
        return "blackholed";
    default:
        return "?";
    }
}

/* ----------------------------------------------------------------- policy */

static const struct {
    const char *name;
    uint8_t lossy, server, standby, resetcheck, register_lossy_clients;
} policy_table[] = {
    [MSGR_POLICY_LOSSY_CLIENT] = {"lossy_client", 1, 0, 0, 0, 1},
    [MSGR_POLICY_LOSSLESS_CLIENT] = {"lossless_client", 0, 0, 0, 1, 1},
    [MSGR_POLICY_LOSSLESS_PEER] = {"lossless_peer", 0, 0, 1, 0, 1},
    [MSGR_POLICY_LOSSLESS_PEER_REUSE] = {"lossless_peer_reuse", 0, 0, 1, 1, 1},
    [MSGR_POLICY_STATELESS_SERVER] = {"stateless_server", 1, 1, 0, 0, 0},
    [MSGR_POLICY_STATELESS_REGISTERED_SERVER] =
        {"stateless_registered_server", 1, 1, 0, 0, 1},
    [MSGR_POLICY_STATEFUL_SERVER] = {"stateful_server", 0, 1, 1, 1, 1},
};

struct msgr_policy
msgr_policy_make(enum msgr_policy_kind kind, uint64_t features_required)
{
    struct msgr_policy p;
    memset(&p, 0, sizeof(p));
    MSGR_ASSERT((unsigned)kind <
                sizeof(policy_table) / sizeof(policy_table[0]));
    p.lossy = policy_table[kind].lossy;
    p.server = policy_table[kind].server;
    p.standby = policy_table[kind].standby;
    p.resetcheck = policy_table[kind].resetcheck;
    p.register_lossy_clients = policy_table[kind].register_lossy_clients;
    p.features_supported = MSGR_FEATURES_DEFAULT;
    p.features_required = features_required;
    return p;
}

int
msgr_policy_parse(const char *name, enum msgr_policy_kind *kind)
{
    for (size_t i = 0; i < sizeof(policy_table) / sizeof(policy_table[0]);
         i++) {
        if (strcmp(policy_table[i].name, name) == 0) {
            *kind = (enum msgr_policy_kind)i;
            return 0;
        }
    }
    return -EINVAL;
}

const char *
msgr_policy_name(enum msgr_policy_kind kind)
{
    if ((unsigned)kind >= sizeof(policy_table) / sizeof(policy_table[0]))
        return "?";
    return policy_table[kind].name;
}
