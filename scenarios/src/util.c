/*
 * The arena, diagnostics, keyword tables, typo suggestions and node-set
 * item syntax.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scn_internal.h"

/* ---------------------------------------------------------------- arena */

struct scn_chunk {
    struct scn_chunk *next;
    max_align_t data[];
};

void *
scn__alloc(struct scn_arena *a, size_t size)
{
    struct scn_chunk *ch = calloc(1, sizeof(*ch) + size);
    if (!ch)
        longjmp(*a->oom, 1);
    ch->next = a->chunks;
    a->chunks = ch;
    return ch->data;
}

char *
scn__strndup(struct scn_arena *a, const char *s, size_t n)
{
    char *r = scn__alloc(a, n + 1);
    memcpy(r, s, n);
    r[n] = '\0';
    return r;
}

void
scn__arena_free(struct scn_arena *a)
{
    struct scn_chunk *ch = a->chunks;
    while (ch) {
        struct scn_chunk *next = ch->next;
        free(ch);
        ch = next;
    }
    a->chunks = NULL;
}

/* The old block stays in the arena until the end: scenario files are small
 * and doubling bounds the waste to the array's own size. */
void *
scn__grow(struct scn_arena *a, void *v, uint32_t n, uint32_t *cap,
          size_t elem)
{
    if (n < *cap)
        return v;
    uint32_t ncap = *cap ? *cap * 2 : 8;
    void *nv = scn__alloc(a, (size_t)ncap * elem);
    if (n)
        memcpy(nv, v, (size_t)n * elem);
    *cap = ncap;
    return nv;
}

/* ---------------------------------------------------------- diagnostics */

void
scn__error(struct scn_cc *c, struct scn_loc loc, const char *fmt, ...)
{
    c->stmt_failed = true;
    c->d->total++;
    if (c->d->n >= SCN_MAX_DIAGS)
        return;
    struct scn_diag *dg = &c->d->v[c->d->n++];
    dg->loc = loc;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dg->msg, sizeof(dg->msg), fmt, ap);
    va_end(ap);
}

void
scn_diags_print(const struct scn_diags *d, const char *path, FILE *f)
{
    for (uint32_t i = 0; i < d->n; i++)
        fprintf(f, "%s:%u:%u: error: %s\n", path, d->v[i].loc.line,
                d->v[i].loc.col, d->v[i].msg);
    if (d->total > d->n)
        fprintf(f, "%s: %u more errors not shown\n", path, d->total - d->n);
}

/* ------------------------------------------------------------- keywords */

const char *const scn__entity_types[] = {"mon", "osd", "mds", "mgr", "client",
                                         NULL};
static const uint8_t entity_values[] = {MSGR_ENTITY_MON, MSGR_ENTITY_OSD,
                                        MSGR_ENTITY_MDS, MSGR_ENTITY_MGR,
                                        MSGR_ENTITY_CLIENT};

uint8_t
scn__entity_type_value(int index)
{
    return entity_values[index];
}

const char *const scn__policy_names[] = {
    "lossy_client",     "lossless_client", "lossless_peer",
    "lossless_peer_reuse", "stateless_server", "stateful_server",
    "stateless_registered_server", NULL};
const enum msgr_policy_kind scn__policy_kinds[] = {
    MSGR_POLICY_LOSSY_CLIENT,        MSGR_POLICY_LOSSLESS_CLIENT,
    MSGR_POLICY_LOSSLESS_PEER,       MSGR_POLICY_LOSSLESS_PEER_REUSE,
    MSGR_POLICY_STATELESS_SERVER,    MSGR_POLICY_STATEFUL_SERVER,
    MSGR_POLICY_STATELESS_REGISTERED_SERVER};

const char *const scn__step_names[] = {
#define SCN_X(e, s) s,
    SCN_STEPS(SCN_X)
#undef SCN_X
        NULL};

const char *const scn__config_names[] = {
#define SCN_X(e, s, t) s,
    SCN_CONFIG_KEYS(SCN_X)
#undef SCN_X
        NULL};

static const enum scn_value_type config_types[] = {
#define SCN_X(e, s, t) SCN_VALUE_##t,
    SCN_CONFIG_KEYS(SCN_X)
#undef SCN_X
};

const char *const scn__fault_names[] = {
    "any",   "drop",  "blackhole", "delay", "bandwidth", "partition",
    "reset", "corrupt", "kill",    "crash", "pause",     NULL};

const char *const scn__state_names[] = {"open", "connecting", "standby",
                                        "closed", "none", NULL};
const char *const scn__event_names[] = {"connect", "accept", "reset",
                                        "remote_reset", "refused", NULL};
const char *const scn__op_names[] = {"==", "!=", "<", "<=", ">", ">=", NULL};

static const char *const action_names[] = {
#define SCN_X(e, s) s,
    SCN_ACTIONS(SCN_X)
#undef SCN_X
        NULL};

int
scn__lookup(const char *word, const char *const *list)
{
    for (int i = 0; list[i]; i++)
        if (strcmp(word, list[i]) == 0)
            return i;
    return -1;
}

const char *
scn_action_name(enum scn_action_kind k)
{
    return k < SCN_ACT_COUNT_ ? action_names[k] : "?";
}

const char *
scn_fault_name(enum scn_fault_kind k)
{
    return k < SCN_FAULT_COUNT_ ? scn__fault_names[k] : "?";
}

const char *
scn_step_name(enum scn_step s)
{
    return s < SCN_STEP_COUNT_ ? scn__step_names[s] : "?";
}

bool
scn_step_is_frame(enum scn_step s)
{
    return s <= SCN_STEP_ACK;
}

const char *
scn_config_name(enum scn_config_key k)
{
    return k < SCN_CONFIG_COUNT_ ? scn__config_names[k] : "?";
}

enum scn_value_type
scn_config_type(enum scn_config_key k)
{
    return k < SCN_CONFIG_COUNT_ ? config_types[k] : SCN_VALUE_COUNT;
}

const char *
scn_policy_name(enum msgr_policy_kind k)
{
    for (int i = 0; scn__policy_names[i]; i++)
        if (scn__policy_kinds[i] == k)
            return scn__policy_names[i];
    return "?";
}

const char *
scn_state_name(enum scn_conn_state s)
{
    return s <= SCN_STATE_NONE ? scn__state_names[s] : "?";
}

const char *
scn_event_name(enum scn_dispatch_event e)
{
    return e <= SCN_EV_REFUSED ? scn__event_names[e] : "?";
}

const char *
scn_op_name(enum scn_op op)
{
    return op <= SCN_OP_GE ? scn__op_names[op] : "?";
}

/* ---------------------------------------------------------- suggestions */

/* Optimal string alignment distance (Levenshtein plus adjacent swaps):
 * "dorp" is one swap from "drop". Words longer than 63 bytes never match. */
static unsigned
edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63)
        return 99;
    unsigned d[64][64];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = (unsigned)i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = (unsigned)j;
    for (size_t i = 1; i <= la; i++) {
        for (size_t j = 1; j <= lb; j++) {
            unsigned cost = a[i - 1] != b[j - 1];
            unsigned v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v)
                v = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < v)
                v = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] &&
                a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < v)
                v = d[i - 2][j - 2] + 1;
            d[i][j] = v;
        }
    }
    return d[la][lb];
}

const char *
scn__suggest(const char *word, const char *const *list)
{
    const char *best = NULL;
    unsigned best_d = 99;
    size_t lw = strlen(word);
    for (int i = 0; list[i]; i++) {
        unsigned dist = edit_distance(word, list[i]);
        /* on a tie, a candidate with the same first letter reads as the
         * likelier typo ('KB': 'KiB' rather than 'B') */
        bool better = dist < best_d ||
                      (dist == best_d && best && word[0] == list[i][0] &&
                       word[0] != best[0]);
        if (better) {
            best_d = dist;
            best = list[i];
        }
    }
    /* a third of the word, at least one and at most three edits: close
     * enough to be a typo, far enough not to suggest nonsense */
    unsigned limit = (unsigned)(lw / 3);
    if (limit < 1)
        limit = 1;
    if (limit > 3)
        limit = 3;
    return best && best_d <= limit && best_d > 0 ? best : NULL;
}

const char *
scn__hint(char *buf, size_t len, const char *word, const char *const *list)
{
    const char *s = scn__suggest(word, list);
    if (s)
        snprintf(buf, len, " (did you mean '%s'?)", s);
    else if (len)
        buf[0] = '\0';
    return buf;
}

/* ------------------------------------------------------------ node sets */

static bool
parse_index(const char *s, size_t n, uint64_t *out)
{
    if (n == 0 || n > 9)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *out = v;
    return true;
}

static bool
id_char(char ch)
{
    return isalnum((unsigned char)ch) || ch == '_' || ch == '-';
}

static int
item_syntax(const char *s, size_t n, struct scn_item *it, char *err,
            size_t errlen)
{
    memset(it, 0, sizeof(*it));
    if (n == 3 && memcmp(s, "all", 3) == 0) {
        it->kind = SCN_ITEM_ALL;
        return 1;
    }
    const char *dot = memchr(s, '.', n);
    if (!dot || dot == s) {
        snprintf(err, errlen,
                 "expected a node like osd.3, a range osd.[0..3], a list "
                 "osd.0,osd.2, a glob osd.* or 'all', got '%.*s'",
                 (int)n, s);
        return -1;
    }
    char type[16];
    size_t tl = (size_t)(dot - s);
    if (tl >= sizeof(type)) {
        snprintf(err, errlen, "unknown entity type '%.*s' (one of mon, osd, "
                 "mds, mgr, client)", (int)tl, s);
        return -1;
    }
    memcpy(type, s, tl);
    type[tl] = '\0';
    it->type_index = scn__lookup(type, scn__entity_types);
    if (it->type_index < 0) {
        char hint[64];
        snprintf(err, errlen,
                 "unknown entity type '%s' in '%.*s' (one of mon, osd, mds, "
                 "mgr, client)%s",
                 type, (int)n, s, scn__hint(hint, sizeof(hint), type,
                                             scn__entity_types));
        return -1;
    }
    const char *id = dot + 1;
    size_t il = n - tl - 1;
    if (il == 1 && id[0] == '*') {
        it->kind = SCN_ITEM_GLOB;
        return 1;
    }
    if (il >= 2 && id[0] == '[' && id[il - 1] == ']') {
        const char *dd = NULL;
        for (size_t i = 1; i + 1 < il; i++)
            if (id[i] == '.' && id[i + 1] == '.') {
                dd = id + i;
                break;
            }
        uint64_t lo, hi;
        if (!dd || !parse_index(id + 1, (size_t)(dd - id - 1), &lo) ||
            !parse_index(dd + 2, (size_t)(id + il - 1 - dd - 2), &hi)) {
            snprintf(err, errlen,
                     "bad range '%.*s' (expected e.g. osd.[0..3])", (int)n, s);
            return -1;
        }
        if (lo > hi) {
            snprintf(err, errlen, "empty range '%.*s' (%llu > %llu)", (int)n,
                     s, (unsigned long long)lo, (unsigned long long)hi);
            return -1;
        }
        if (hi - lo >= 100000) {
            snprintf(err, errlen, "range '%.*s' is too large (100000 nodes "
                     "at most)", (int)n, s);
            return -1;
        }
        it->kind = SCN_ITEM_RANGE;
        it->lo = lo;
        it->hi = hi;
        return 1;
    }
    bool ok = il > 0 && il < sizeof(it->id);
    for (size_t i = 0; ok && i < il; i++)
        ok = id_char(id[i]);
    if (!ok) {
        snprintf(err, errlen,
                 "bad node id in '%.*s' (a number or a word of letters, "
                 "digits, '_' and '-')", (int)n, s);
        return -1;
    }
    it->kind = SCN_ITEM_NAME;
    memcpy(it->id, id, il);
    it->id[il] = '\0';
    return 1;
}

int
scn__set_item(const char *text, uint32_t k, struct scn_item *it, char *err,
              size_t errlen)
{
    const char *p = text;
    for (uint32_t i = 0; i < k; i++) {
        p = strchr(p, ',');
        if (!p)
            return 0;
        p++;
    }
    const char *end = strchr(p, ',');
    size_t n = end ? (size_t)(end - p) : strlen(p);
    if (n == 0) {
        snprintf(err, errlen, "empty item in node list '%s'", text);
        return -1;
    }
    return item_syntax(p, n, it, err, errlen);
}
