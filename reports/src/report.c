/* report_write: picks the run, makes the parts and writes the files. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "html.h"
#if REPORTS_HAVE_PCAP
#include "reports/pcap.h"
#endif

int
report_format_parse(const char *name)
{
    static const char *const names[] = {"html", "svg", "dot", "perfetto",
                                        "pcap"};
    for (int i = 0; i < 5; i++)
        if (!strcmp(name, names[i]))
            return i;
    return -1;
}

void
report_opts_init(struct report_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->format = REPORT_FORMAT_HTML;
    o->from_ns = INT64_MIN;
    o->until_ns = INT64_MAX;
}

/* mkdir -p */
static int
make_dir(const char *dir, char *err, size_t errlen)
{
    char path[4096];
    if (snprintf(path, sizeof(path), "%s", dir) >= (int)sizeof(path)) {
        snprintf(err, errlen, "%s: path too long", dir);
        return -1;
    }
    for (char *p = path + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        if (mkdir(path, 0777) < 0 && errno != EEXIST) {
            snprintf(err, errlen, "cannot create %s: %s", path,
                     strerror(errno));
            return -1;
        }
        *p = c;
        if (!c)
            break;
    }
    return 0;
}

struct ctx {
    struct trace_db *db;
    const struct report_opts *o;
    const char *dir;
    char *err;
    size_t errlen;
    char main_path[4096];
};

static int
write_file(struct ctx *c, const char *name, const struct report_buf *b)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", c->dir, name);
    FILE *f = fopen(path, "w");
    if (!f) {
        snprintf(c->err, c->errlen, "cannot write %s: %s", path,
                 strerror(errno));
        return -1;
    }
    size_t n = b->len ? fwrite(b->data, 1, b->len, f) : 0;
    if (fclose(f) != 0 || n != b->len) {
        snprintf(c->err, c->errlen, "cannot write %s", path);
        return -1;
    }
    return 0;
}

/* Writes NAME.dot and, unless only DOT is asked for, NAME.svg (kept in
 * *svg when not NULL). */
static int
graph_files(struct ctx *c, const char *name, const struct report_buf *dot,
            struct report_buf *svg)
{
    char file[128];
    snprintf(file, sizeof(file), "%s.dot", name);
    if (write_file(c, file, dot) < 0)
        return -1;
    if (c->o->format == REPORT_FORMAT_DOT)
        return 0;
    struct report_buf tmp;
    report_buf_init(&tmp);
    struct report_buf *out = svg ? svg : &tmp;
    int rc = report_dot_to_svg(dot->data, out, c->err, c->errlen);
    snprintf(file, sizeof(file), "%s.svg", name);
    if (!rc)
        rc = write_file(c, file, out);
    report_buf_fini(&tmp);
    return rc;
}

static int
latest_run(struct trace_db *db, int64_t *run, char *err, size_t errlen)
{
    if (trace_run_latest(db, run) < 0) {
        snprintf(err, errlen, "the trace holds no run");
        return -1;
    }
    return 0;
}

static int
conn_graphs(struct ctx *c, int64_t run, struct rp_pictures *p)
{
    sqlite3_stmt *st;
    size_t max = c->o->max_conn_graphs > 0 ? (size_t)c->o->max_conn_graphs
                                            : 32;
    if (rp__prepare(c->db, "SELECT id FROM conn WHERE run = ?1 ORDER BY id",
                    &st, c->err, c->errlen) < 0)
        return -1;
    sqlite3_bind_int64(st, 1, run);
    p->conn = calloc(max, sizeof(*p->conn));
    int rc = p->conn ? 0 : -1;
    while (!rc && sqlite3_step(st) == SQLITE_ROW) {
        if (p->nconn == max) {
            p->nconn_omitted++;
            continue;
        }
        struct rp_conn_pic *cp = &p->conn[p->nconn++];
        cp->id = sqlite3_column_int64(st, 0);
        report_buf_init(&cp->svg);
        snprintf(cp->file, sizeof(cp->file), "states-c%lld",
                 (long long)cp->id);
        report_buf_init(&cp->dot);
        rc = report_state_dot(c->db, run, cp->id, &cp->dot, c->err,
                              c->errlen);
        /* connections that took the same paths share one layout */
        const struct rp_conn_pic *same = NULL;
        for (size_t k = 0; !rc && k + 1 < p->nconn && !same; k++)
            if (p->conn[k].svg.data && !strcmp(p->conn[k].dot.data,
                                               cp->dot.data))
                same = &p->conn[k];
        if (!rc && same) {
            report_buf_putn(&cp->svg, same->svg.data, same->svg.len);
            char file[128];
            snprintf(file, sizeof(file), "%s.dot", cp->file);
            rc = write_file(c, file, &cp->dot);
            snprintf(file, sizeof(file), "%s.svg", cp->file);
            if (!rc)
                rc = write_file(c, file, &cp->svg);
        } else if (!rc) {
            rc = graph_files(c, cp->file, &cp->dot, &cp->svg);
        }
    }
    sqlite3_finalize(st);
    if (!p->conn)
        snprintf(c->err, c->errlen, "out of memory");
    return rc;
}

static int
pictures(struct ctx *c, int64_t run, struct rp_pictures *p)
{
    struct report_buf dot;
    report_buf_init(&dot);
    int rc = report_state_dot(c->db, run, 0, &dot, c->err, c->errlen);
    if (!rc)
        rc = graph_files(c, "states", &dot, &p->states_svg);
    report_buf_fini(&dot);
    report_buf_init(&dot);
    if (!rc)
        rc = report_topology_dot(c->db, run, &dot, c->err, c->errlen);
    if (!rc)
        rc = graph_files(c, "topology", &dot, &p->topology_svg);
    report_buf_fini(&dot);
    if (!rc)
        rc = conn_graphs(c, run, p);
    if (rc || c->o->format == REPORT_FORMAT_DOT)
        return rc;
    rc = report_sequence_svg(c->db, run, c->o, &p->sequence_svg, &p->seq,
                             c->err, c->errlen);
    if (!rc)
        rc = write_file(c, "sequence.svg", &p->sequence_svg);
    if (!rc)
        rc = report_charts_svg(c->db, run, &p->charts_svg, c->err, c->errlen);
    if (!rc)
        rc = write_file(c, "charts.svg", &p->charts_svg);
    return rc;
}

static void
pictures_fini(struct rp_pictures *p)
{
    report_buf_fini(&p->topology_svg);
    report_buf_fini(&p->states_svg);
    report_buf_fini(&p->sequence_svg);
    report_buf_fini(&p->charts_svg);
    for (size_t i = 0; i < p->nconn; i++) {
        report_buf_fini(&p->conn[i].svg);
        report_buf_fini(&p->conn[i].dot);
    }
    free(p->conn);
}

static int
html(struct ctx *c, int64_t run, struct rp_pictures *p)
{
    struct trace_run r;
    if (trace_run_get(c->db, run, &r) < 0) {
        snprintf(c->err, c->errlen, "no run %lld in the trace",
                 (long long)run);
        return -1;
    }
    struct report_buf b;
    report_buf_init(&b);
    int rc = rp__html_write(&b, c->db, &r, p, c->err, c->errlen);
    if (!rc)
        rc = write_file(c, "index.html", &b);
    report_buf_fini(&b);
    trace_run_fini(&r);
    return rc;
}

int
report_write(struct trace_db *db, const struct report_opts *o,
             const char *dir, const char **written, char *err, size_t errlen)
{
    static char main_path[4096];
    struct ctx c = {.db = db, .o = o, .dir = dir, .err = err,
                    .errlen = errlen};
    int64_t run = o->run;
    struct trace_run check;
    if (!run && latest_run(db, &run, err, errlen) < 0)
        return -1;
    if (trace_run_get(db, run, &check) < 0) {
        snprintf(err, errlen, "no run %lld in the trace", (long long)run);
        return -1;
    }
    trace_run_fini(&check);
    if (make_dir(dir, err, errlen) < 0)
        return -1;
    const char *main_file = NULL;
    int rc = 0;
    switch (o->format) {
    case REPORT_FORMAT_PERFETTO:
        main_file = "trace.json";
        snprintf(main_path, sizeof(main_path), "%s/%s", dir, main_file);
        rc = report_perfetto_write(db, run, main_path, err, errlen);
        break;
    case REPORT_FORMAT_PCAP:
        main_file = "trace.pcap";
        snprintf(main_path, sizeof(main_path), "%s/%s", dir, main_file);
#if REPORTS_HAVE_PCAP
        rc = report_pcap_write(db, run, main_path, err, errlen);
#else
        snprintf(err, errlen, "pcap export not available in this build");
        rc = -ENOTSUP;
#endif
        break;
    case REPORT_FORMAT_HTML:
    case REPORT_FORMAT_SVG:
    case REPORT_FORMAT_DOT: {
        struct rp_pictures p;
        memset(&p, 0, sizeof(p));
        rc = pictures(&c, run, &p);
        main_file = o->format == REPORT_FORMAT_HTML ? "index.html"
                    : o->format == REPORT_FORMAT_SVG ? "states.svg"
                                                     : "states.dot";
        if (!rc && o->format == REPORT_FORMAT_HTML)
            rc = html(&c, run, &p);
        pictures_fini(&p);
        snprintf(main_path, sizeof(main_path), "%s/%s", dir, main_file);
        break;
    }
    default:
        snprintf(err, errlen, "unknown report format %d", o->format);
        rc = -1;
    }
    if (written)
        *written = rc ? NULL : main_path;
    return rc;
}
