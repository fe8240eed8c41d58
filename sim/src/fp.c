/*
 * The run's fingerprint: FNV-1a 64 over every observable event, in order.
 *
 * FNV-1a because it is tiny, documented and has published test vectors
 * (the known-answer tests pin it): the value is compared across two runs
 * of one build, so speed matters less than being obviously the same on
 * every machine. Integers are fed as 8 little-endian bytes whatever the
 * host's byte order; strings as their length and bytes, so that
 * ("ab","c") and ("a","bc") differ. Pointer values are never fed.
 */
#include <string.h>

#include "msgr/msgr.h"
#include "sim_internal.h"

#define FNV64_OFFSET 0xcbf29ce484222325ull
#define FNV64_PRIME  0x00000100000001b3ull

/* Tags that start each traced record, so records of different kinds with
 * equal fields do not hash alike. */
enum {
    FP_TAG_STATE = 0x53,  /* 'S' */
    FP_TAG_FRAME = 0x46,  /* 'F' */
    FP_TAG_MSG = 0x4d,    /* 'M' */
    FP_TAG_FAULT = 0x58,  /* 'X' */
};

void
sim__fp_init(struct sim_world *w)
{
    /* The seed is not mixed in: two seeds whose runs behave identically
     * give equal fingerprints, which is the information wanted. */
    w->fp = FNV64_OFFSET;
}

void
sim_fp_mix(struct sim_world *w, const void *p, size_t n)
{
    const unsigned char *b = p;
    uint64_t h = w->fp;
    size_t i;

    for (i = 0; i < n; i++) {
        h ^= b[i];
        h *= FNV64_PRIME;
    }
    w->fp = h;
}

void
sim_fp_mix_u64(struct sim_world *w, uint64_t v)
{
    unsigned char b[8];
    int i;

    for (i = 0; i < 8; i++)
        b[i] = (unsigned char)(v >> (8 * i));
    sim_fp_mix(w, b, sizeof(b));
}

uint64_t
sim_fingerprint(const struct sim_world *w)
{
    return w->fp;
}

static void
mix_str(struct sim_world *w, const char *s)
{
    size_t n;

    if (!s) {
        /* distinct from "" (length 0) */
        sim_fp_mix_u64(w, UINT64_MAX);
        return;
    }
    n = strlen(s);
    sim_fp_mix_u64(w, (uint64_t)n);
    sim_fp_mix(w, s, n);
}

/* What every traced record starts with: its kind, the virtual time, and
 * who saw it (the messenger's entity name and the connection's stable
 * per-messenger id; never the pointers). */
static void
mix_head(struct sim_world *w, int tag, struct msgr *m, struct msgr_conn *c)
{
    struct msgr_entity_name n = {0, 0};

    if (m)
        n = msgr_get_myname(m);
    sim_fp_mix_u64(w, (uint64_t)tag);
    sim_fp_mix_u64(w, sim_now(w));
    sim_fp_mix_u64(w, n.type);
    sim_fp_mix_u64(w, (uint64_t)n.num);
    sim_fp_mix_u64(w, c ? msgr_conn_id(c) : UINT64_MAX);
}

static void
fp_state_cb(void *arg, struct msgr *m, struct msgr_conn *c, const char *from,
            const char *to, const char *cause)
{
    struct sim_world *w = arg;

    mix_head(w, FP_TAG_STATE, m, c);
    mix_str(w, from);
    mix_str(w, to);
    mix_str(w, cause);
}

static void
fp_frame_cb(void *arg, struct msgr *m, struct msgr_conn *c, int dir,
            unsigned tag, uint64_t bytes)
{
    struct sim_world *w = arg;

    mix_head(w, FP_TAG_FRAME, m, c);
    sim_fp_mix_u64(w, (uint64_t)dir);
    sim_fp_mix_u64(w, tag);
    sim_fp_mix_u64(w, bytes);
}

static void
fp_msg_cb(void *arg, struct msgr *m, struct msgr_conn *c,
          const struct msgr_msg *msg, int fate)
{
    struct sim_world *w = arg;

    mix_head(w, FP_TAG_MSG, m, c);
    sim_fp_mix_u64(w, (uint64_t)fate);
    if (!msg) {
        sim_fp_mix_u64(w, UINT64_MAX);
        return;
    }
    sim_fp_mix_u64(w, msg->hdr.seq);
    sim_fp_mix_u64(w, msg->hdr.tid);
    sim_fp_mix_u64(w, msg->hdr.type);
    sim_fp_mix_u64(w, (uint64_t)msg->front.len + msg->middle.len +
                          msg->data.len);
}

static void
fp_fault_cb(void *arg, struct msgr *m, struct msgr_conn *c, int err,
            const char *what)
{
    struct sim_world *w = arg;

    mix_head(w, FP_TAG_FAULT, m, c);
    sim_fp_mix_u64(w, (uint64_t)(int64_t)err);
    mix_str(w, what);
}

void
sim_fp_tracer(struct sim_world *w, struct msgr_tracer *out)
{
    memset(out, 0, sizeof(*out));
    out->arg = w;
    out->state = fp_state_cb;
    out->frame = fp_frame_cb;
    out->msg = fp_msg_cb;
    out->fault = fp_fault_cb;
}
