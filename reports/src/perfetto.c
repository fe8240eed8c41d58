/*
 * Chrome/Perfetto trace-event JSON ("JSON Object Format": traceEvents
 * plus displayTimeUnit). Nodes are processes (pid = trace node id, one
 * per incarnation), connections threads (tid = trace connection id), the
 * scenario (actions, faults) is process 0. Times are microseconds with
 * nanosecond decimals. Streams the events once in seq order, so a large
 * trace costs one pass and little memory.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report_internal.h"

static void
json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

static void
ts(FILE *f, int64_t t_ns)
{
    /* microseconds with three decimals: exact for nanoseconds */
    fprintf(f, "%" PRId64 ".%03d", t_ns / 1000, (int)(t_ns % 1000));
}

/* A set of 64-bit keys (open addressing), to start and end each flow
 * once even if a trace repeats a time. */
struct keyset {
    uint64_t *k;
    size_t cap, n;
};

static int
keyset_add(struct keyset *s, uint64_t key)
{
    if ((s->n + 1) * 2 > s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 1024;
        uint64_t *k = calloc(cap, sizeof(*k));
        if (!k)
            return -1;
        for (size_t i = 0; i < s->cap; i++) {
            if (!s->k[i])
                continue;
            size_t j = (size_t)(s->k[i] * 0x9e3779b97f4a7c15ull) & (cap - 1);
            while (k[j])
                j = (j + 1) & (cap - 1);
            k[j] = s->k[i];
        }
        free(s->k);
        s->k = k;
        s->cap = cap;
    }
    key |= 1ull << 63; /* never 0, the empty slot */
    size_t j = (size_t)(key * 0x9e3779b97f4a7c15ull) & (s->cap - 1);
    while (s->k[j]) {
        if (s->k[j] == key)
            return 0;
        j = (j + 1) & (s->cap - 1);
    }
    s->k[j] = key;
    s->n++;
    return 1;
}

struct conn_span {
    char state[32];
    int64_t since;
    int64_t node;
};

struct pf {
    FILE *f;
    int first;
    struct conn_span *spans;
    size_t nspans;
    struct keyset started, ended;
};

static void
begin_event(struct pf *p)
{
    fputs(p->first ? "\n" : ",\n", p->f);
    p->first = 0;
}

static int
metadata(struct trace_db *db, int64_t run, struct pf *p, char *err,
         size_t errlen)
{
    sqlite3_stmt *st;
    begin_event(p);
    fputs("{\"ph\":\"M\",\"name\":\"process_name\",\"pid\":0,\"tid\":0,"
          "\"args\":{\"name\":\"scenario\"}}", p->f);
    if (rp__prepare(db,
                    "SELECT id, name, incarnation FROM node WHERE run = ?1 "
                    "ORDER BY id",
                    &st, err, errlen) < 0)
        return -1;
    sqlite3_bind_int64(st, 1, run);
    while (sqlite3_step(st) == SQLITE_ROW) {
        char name[96];
        int inc = sqlite3_column_int(st, 2);
        if (inc)
            snprintf(name, sizeof(name), "%s (incarnation %d)",
                     rp__text(st, 1), inc);
        else
            snprintf(name, sizeof(name), "%s", rp__text(st, 1));
        begin_event(p);
        fprintf(p->f, "{\"ph\":\"M\",\"name\":\"process_name\",\"pid\":%lld,"
                      "\"tid\":0,\"args\":{\"name\":",
                (long long)sqlite3_column_int64(st, 0));
        json_str(p->f, name);
        fputs("}}", p->f);
        begin_event(p);
        fprintf(p->f, "{\"ph\":\"M\",\"name\":\"process_sort_index\","
                      "\"pid\":%lld,\"tid\":0,\"args\":{\"sort_index\":%lld}}",
                (long long)sqlite3_column_int64(st, 0),
                (long long)sqlite3_column_int64(st, 0));
    }
    sqlite3_finalize(st);
    if (rp__prepare(db,
                    "SELECT id, node, coalesce(peer_name, ''), msgr_id, "
                    "coalesce(peer_addr, '') FROM conn WHERE run = ?1 "
                    "ORDER BY id",
                    &st, err, errlen) < 0)
        return -1;
    sqlite3_bind_int64(st, 1, run);
    while (sqlite3_step(st) == SQLITE_ROW) {
        char name[160];
        const char *peer = rp__text(st, 2);
        snprintf(name, sizeof(name), "c%lld \u2192 %s (msgr id %lld)",
                 (long long)sqlite3_column_int64(st, 0),
                 *peer ? peer : rp__text(st, 4),
                 (long long)sqlite3_column_int64(st, 3));
        begin_event(p);
        fprintf(p->f, "{\"ph\":\"M\",\"name\":\"thread_name\",\"pid\":%lld,"
                      "\"tid\":%lld,\"args\":{\"name\":",
                (long long)sqlite3_column_int64(st, 1),
                (long long)sqlite3_column_int64(st, 0));
        json_str(p->f, name);
        fputs("}}", p->f);
    }
    sqlite3_finalize(st);
    return 0;
}

static int
span_slot(struct pf *p, int64_t conn)
{
    if (conn <= 0)
        return -1;
    if ((size_t)conn >= p->nspans) {
        size_t n = p->nspans ? p->nspans : 64;
        while (n <= (size_t)conn)
            n *= 2;
        struct conn_span *s = realloc(p->spans, n * sizeof(*s));
        if (!s)
            return -1;
        memset(s + p->nspans, 0, (n - p->nspans) * sizeof(*s));
        p->spans = s;
        p->nspans = n;
    }
    return 0;
}

static void
close_span(struct pf *p, int64_t conn, int64_t t)
{
    struct conn_span *s = &p->spans[conn];
    if (!s->state[0])
        return;
    begin_event(p);
    fputs("{\"ph\":\"X\",\"cat\":\"state\",\"name\":", p->f);
    json_str(p->f, s->state);
    fprintf(p->f, ",\"pid\":%lld,\"tid\":%lld,\"ts\":", (long long)s->node,
            (long long)conn);
    ts(p->f, s->since);
    fputs(",\"dur\":", p->f);
    ts(p->f, t > s->since ? t - s->since : 0);
    fputc('}', p->f);
    s->state[0] = '\0';
}

/* Common head of an event on a node's connection (tid 0: none). */
static void
head(struct pf *p, const char *ph, const char *cat, int64_t node,
     int64_t conn, int64_t t)
{
    begin_event(p);
    fprintf(p->f, "{\"ph\":\"%s\",\"cat\":\"%s\",\"pid\":%lld,\"tid\":%lld,"
                  "\"ts\":",
            ph, cat, (long long)node, (long long)(conn > 0 ? conn : 0));
    ts(p->f, t);
}

static uint64_t
msg_key(int64_t src, int64_t id)
{
    return ((uint64_t)src << 40) ^ (uint64_t)id;
}

/* One trace event; returns -1 when out of memory. */
static int
one_event(struct pf *p, sqlite3_stmt *st)
{
    int64_t t = sqlite3_column_int64(st, 0);
    int64_t node = sqlite3_column_int64(st, 1);
    int64_t conn = sqlite3_column_int64(st, 2);
    const char *kind = rp__text(st, 3);
    const char *tag = rp__text(st, 6), *fate = rp__text(st, 7);
    const char *detail = rp__text(st, 13);
    int64_t src = sqlite3_column_int64(st, 8), id = sqlite3_column_int64(st, 9);
    char name[256];

    if (!strcmp(kind, "state")) {
        if (span_slot(p, conn) < 0)
            return conn > 0 ? -1 : 0;
        close_span(p, conn, t);
        struct conn_span *s = &p->spans[conn];
        snprintf(s->state, sizeof(s->state), "%s", rp__text(st, 5));
        s->since = t;
        s->node = node;
        return 0;
    }
    if (!strcmp(kind, "msg")) {
        int is_send = !strcmp(fate, "sent"), is_dl = !strcmp(fate, "delivered");
        snprintf(name, sizeof(name), "%s #%lld", fate, (long long)id);
        if (is_send || is_dl) {
            /* a tiny slice that the flow arrow binds to */
            head(p, "X", "msg", node, conn, t);
            fputs(",\"dur\":0.001,\"name\":", p->f);
            json_str(p->f, name);
            fprintf(p->f, ",\"args\":{\"src\":%lld,\"id\":%lld,\"seq\":%lld,"
                          "\"bytes\":%lld}}",
                    (long long)src, (long long)id,
                    (long long)sqlite3_column_int64(st, 10),
                    (long long)sqlite3_column_int64(st, 11));
        } else {
            head(p, "i", "msg", node, conn, t);
            fputs(",\"s\":\"t\",\"name\":", p->f);
            json_str(p->f, name);
            fputc('}', p->f);
        }
        int flow_s = is_send && sqlite3_column_int(st, 14);
        int flow_f = is_dl && sqlite3_column_int(st, 15);
        if (flow_s || flow_f) {
            int fresh = keyset_add(flow_s ? &p->started : &p->ended,
                                   msg_key(src, id));
            if (fresh < 0)
                return -1;
            if (fresh) {
                head(p, flow_s ? "s" : "f", "flow", node, conn, t);
                fprintf(p->f, ",\"name\":\"message\",\"id\":%" PRIu64 "%s}",
                        msg_key(src, id), flow_f ? ",\"bp\":\"e\"" : "");
            }
        }
        return 0;
    }
    if (!strcmp(kind, "fault") || !strcmp(kind, "heal")) {
        head(p, "i", "fault", 0, 0, t);
        fputs(",\"s\":\"g\",\"name\":", p->f);
        snprintf(name, sizeof(name), "%s: %s", kind, detail);
        json_str(p->f, name);
        fputc('}', p->f);
        return 0;
    }
    if (!strcmp(kind, "frame_in") || !strcmp(kind, "frame_out"))
        snprintf(name, sizeof(name), "%s %s",
                 kind[6] == 'i' ? "\u2190" : "\u2192", tag);
    else if (!strcmp(kind, "conn_fault"))
        snprintf(name, sizeof(name), "conn fault: %s (%lld)", detail,
                 (long long)sqlite3_column_int64(st, 12));
    else if (!strcmp(kind, "dispatch"))
        snprintf(name, sizeof(name), "upcall %s", tag);
    else
        snprintf(name, sizeof(name), "%s%s%s", kind, *detail ? ": " : "",
                 detail);
    head(p, "i", kind, node, conn, t);
    fprintf(p->f, ",\"s\":\"%s\",\"name\":", conn > 0 ? "t" : "p");
    json_str(p->f, name);
    fputc('}', p->f);
    return 0;
}

static int
fault_spans(struct trace_db *db, int64_t run, struct pf *p, int64_t end,
            char *err, size_t errlen)
{
    struct rp_fault *f;
    size_t nf;
    if (rp__faults_load(db, run, &f, &nf, err, errlen) < 0)
        return -1;
    for (size_t i = 0; i < nf; i++) {
        char name[400];
        snprintf(name, sizeof(name), "%s %s", f[i].kind, f[i].targets);
        int64_t until = f[i].healed_t >= 0 ? f[i].healed_t : end;
        head(p, "X", "fault", 0, (int64_t)i + 1, f[i].t_ns);
        fputs(",\"dur\":", p->f);
        ts(p->f, until > f[i].t_ns ? until - f[i].t_ns : 0);
        fputs(",\"name\":", p->f);
        json_str(p->f, name);
        fputs(",\"args\":{\"params\":", p->f);
        json_str(p->f, f[i].params);
        fputs("}}", p->f);
        begin_event(p);
        fprintf(p->f, "{\"ph\":\"M\",\"name\":\"thread_name\",\"pid\":0,"
                      "\"tid\":%zu,\"args\":{\"name\":", i + 1);
        snprintf(name, sizeof(name), "fault %lld", (long long)f[i].id);
        json_str(p->f, name);
        fputs("}}", p->f);
    }
    free(f);
    return 0;
}

int
report_perfetto_write(struct trace_db *db, int64_t run, const char *path,
                      char *err, size_t errlen)
{
    struct pf p;
    memset(&p, 0, sizeof(p));
    p.first = 1;
    p.f = fopen(path, "w");
    if (!p.f) {
        snprintf(err, errlen, "cannot write %s", path);
        return -1;
    }
    setvbuf(p.f, NULL, _IOFBF, 1 << 20);
    fputs("{\"displayTimeUnit\":\"ns\",\"traceEvents\":[", p.f);
    int rc = metadata(db, run, &p, err, errlen);
    sqlite3_stmt *st = NULL;
    /* flow_start: the first send of a message that was delivered;
     * flow_end: its first delivery */
    if (!rc)
        rc = rp__prepare(
            db,
            "SELECT e.t_ns, coalesce(e.node, 0), coalesce(e.conn, 0), e.kind, "
            "e.state_from, e.state_to, e.tag, e.fate, coalesce(e.msg_src, -1), "
            "coalesce(e.msg_id, -1), coalesce(e.msg_seq, -1), "
            "coalesce(e.bytes, -1), coalesce(e.err, 0), e.detail, "
            "e.fate = 'sent' AND m.sent_t = e.t_ns AND m.delivered_t IS NOT "
            "NULL, e.fate = 'delivered' AND m.delivered_t = e.t_ns "
            "FROM rp_event e LEFT JOIN message m ON e.kind = 'msg' AND "
            "m.run = e.run AND m.src = e.msg_src AND m.msg_id = e.msg_id "
            "WHERE e.run = ?1 ORDER BY e.t_ns, e.seq",
            &st, err, errlen);
    int64_t last_t = 0;
    if (!rc) {
        sqlite3_bind_int64(st, 1, run);
        while (!rc && sqlite3_step(st) == SQLITE_ROW) {
            last_t = sqlite3_column_int64(st, 0);
            rc = one_event(&p, st);
        }
        sqlite3_finalize(st);
        if (rc)
            snprintf(err, errlen, "out of memory");
    }
    int64_t end = rp__run_end_ns(db, run);
    if (end < last_t)
        end = last_t;
    for (size_t c = 0; !rc && c < p.nspans; c++)
        close_span(&p, (int64_t)c, end);
    if (!rc)
        rc = fault_spans(db, run, &p, end, err, errlen);
    fputs("\n]}\n", p.f);
    if (fclose(p.f) != 0 && !rc) {
        snprintf(err, errlen, "cannot write %s", path);
        rc = -1;
    }
    free(p.spans);
    free(p.started.k);
    free(p.ended.k);
    return rc;
}
