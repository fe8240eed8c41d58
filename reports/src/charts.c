/*
 * Charts over time, one hand-written SVG: delivered messages per second,
 * delivery latency percentiles (first send to first delivery), queue
 * depth (messages queued or sent but neither delivered nor dropped yet),
 * reconnects, and the fault timeline; every injected fault's window is
 * shaded across all panels so cause and effect line up.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report_internal.h"

#define NB 120         /* time buckets */
#define PW 900         /* plot width */
#define PH 110         /* plot height */
#define PX 80          /* plot left */
#define PANEL_H 150

struct series {
    const char *name, *cls;
    double v[NB];
};

struct chart_data {
    int64_t end_ns;
    double bucket_ns;
    double thr[NB];          /* deliveries per second */
    double p50[NB], p90[NB], p99[NB]; /* latency, ns; -1: no sample */
    double depth[NB];
    double reconn[NB];
};

static int
bucket_of(const struct chart_data *d, int64_t t)
{
    if (t <= 0)
        return 0;
    int b = (int)((double)t / d->bucket_ns);
    return b >= NB ? NB - 1 : b;
}

static int
cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static double
pct(const int64_t *v, size_t n, int p)
{
    size_t i = (n * (size_t)p) / 100;
    return (double)v[i >= n ? n - 1 : i];
}

/* Deliveries, latencies and queue depth from the message table. */
static int
load_messages(struct trace_db *db, int64_t run, struct chart_data *d,
              char *err, size_t errlen)
{
    sqlite3_stmt *st;
    if (rp__prepare(db,
                    "SELECT coalesce(queued_t, sent_t), sent_t, delivered_t, "
                    "dropped_t FROM message WHERE run = ?1",
                    &st, err, errlen) < 0)
        return -1;
    sqlite3_bind_int64(st, 1, run);
    size_t cap = 1024, n = 0;
    int64_t *lat = malloc(cap * sizeof(*lat));
    int *lat_b = malloc(cap * sizeof(*lat_b));
    double delta[NB + 1] = {0};
    size_t count[NB] = {0};
    int rc = 0;
    if (!lat || !lat_b)
        rc = -1;
    while (!rc && sqlite3_step(st) == SQLITE_ROW) {
        int has_q = sqlite3_column_type(st, 0) != SQLITE_NULL;
        int has_s = sqlite3_column_type(st, 1) != SQLITE_NULL;
        int has_d = sqlite3_column_type(st, 2) != SQLITE_NULL;
        int has_x = sqlite3_column_type(st, 3) != SQLITE_NULL;
        int64_t q = sqlite3_column_int64(st, 0), s = sqlite3_column_int64(st, 1);
        int64_t dl = sqlite3_column_int64(st, 2), x = sqlite3_column_int64(st, 3);
        if (has_q) {
            delta[bucket_of(d, q)] += 1;
            int64_t gone = has_d ? dl : has_x ? x : -1;
            if (has_d && has_x && x < dl)
                gone = x;
            if (gone >= 0)
                delta[bucket_of(d, gone)] -= 1;
        }
        if (!has_d)
            continue;
        d->thr[bucket_of(d, dl)] += 1;
        if (!has_s || dl < s)
            continue;
        if (n == cap) {
            cap *= 2;
            int64_t *nl = realloc(lat, cap * sizeof(*lat));
            if (nl)
                lat = nl;
            int *nb = realloc(lat_b, cap * sizeof(*lat_b));
            if (nb)
                lat_b = nb;
            if (!nl || !nb) {
                rc = -1;
                break;
            }
        }
        lat[n] = dl - s;
        lat_b[n] = bucket_of(d, dl);
        count[lat_b[n]]++;
        n++;
    }
    sqlite3_finalize(st);
    if (rc) {
        free(lat);
        free(lat_b);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    double per_s = 1e9 / d->bucket_ns, depth = 0;
    for (int b = 0; b < NB; b++) {
        d->thr[b] *= per_s;
        depth += delta[b];
        d->depth[b] = depth;
    }
    /* group the latencies by bucket (counting sort), then sort each */
    size_t off[NB + 1];
    off[0] = 0;
    for (int b = 0; b < NB; b++)
        off[b + 1] = off[b] + count[b];
    int64_t *byb = malloc((n ? n : 1) * sizeof(*byb));
    size_t fill[NB];
    memcpy(fill, off, sizeof(fill));
    if (!byb) {
        free(lat);
        free(lat_b);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        byb[fill[lat_b[i]]++] = lat[i];
    for (int b = 0; b < NB; b++) {
        size_t k = count[b];
        if (!k) {
            d->p50[b] = d->p90[b] = d->p99[b] = -1;
            continue;
        }
        qsort(byb + off[b], k, sizeof(*byb), cmp_i64);
        d->p50[b] = pct(byb + off[b], k, 50);
        d->p90[b] = pct(byb + off[b], k, 90);
        d->p99[b] = pct(byb + off[b], k, 99);
    }
    free(byb);
    free(lat);
    free(lat_b);
    return 0;
}

static int
load_reconnects(struct trace_db *db, int64_t run, struct chart_data *d,
                char *err, size_t errlen)
{
    sqlite3_stmt *st;
    /* as v_reconnects counts them: a new attempt after the first connect */
    if (rp__prepare(db,
                    "SELECT t_ns FROM event WHERE run = ?1 AND kind = 'state' "
                    "AND state_to = 'START_CONNECT' AND state_from <> 'NONE'",
                    &st, err, errlen) < 0)
        return -1;
    sqlite3_bind_int64(st, 1, run);
    while (sqlite3_step(st) == SQLITE_ROW)
        d->reconn[bucket_of(d, sqlite3_column_int64(st, 0))] += 1;
    sqlite3_finalize(st);
    return 0;
}

static double
x_of(const struct chart_data *d, int64_t t)
{
    if (d->end_ns <= 0)
        return PX;
    return PX + (double)PW * (double)t / (double)d->end_ns;
}

static void
shade_faults(struct report_buf *o, const struct chart_data *d,
             const struct rp_fault *f, size_t nf, int y, int h)
{
    for (size_t i = 0; i < nf; i++) {
        int64_t end = f[i].healed_t >= 0 ? f[i].healed_t : d->end_ns;
        double x0 = x_of(d, f[i].t_ns), x1 = x_of(d, end);
        if (x1 - x0 < 1.5)
            x1 = x0 + 1.5; /* an instant fault (kill) stays visible */
        report_buf_printf(o,
                          "<rect class=\"fault\" x=\"%.1f\" y=\"%d\" "
                          "width=\"%.1f\" height=\"%d\"><title>",
                          x0, y, x1 - x0, h);
        report_buf_xml(o, f[i].kind);
        report_buf_puts(o, " ");
        report_buf_xml(o, f[i].targets);
        report_buf_puts(o, "</title></rect>\n");
    }
}

static void
fmt_value(double v, const char *unit, char *buf, size_t len)
{
    if (!strcmp(unit, "ns"))
        rp__fmt_ns((int64_t)v, buf, len);
    else if (v >= 1e6)
        snprintf(buf, len, "%.3gM", v / 1e6);
    else if (v >= 1e3)
        snprintf(buf, len, "%.3gk", v / 1e3);
    else
        snprintf(buf, len, "%.3g", v);
}

static void
axes(struct report_buf *o, const struct chart_data *d, int y,
     const char *title, double max, const char *unit)
{
    char a[32], b[32];
    fmt_value(max, unit, a, sizeof(a));
    fmt_value(max / 2, unit, b, sizeof(b));
    report_buf_printf(o,
                      "<text class=\"ctitle\" x=\"%d\" y=\"%d\">",
                      PX, y - 8);
    report_buf_xml(o, title);
    report_buf_printf(o,
                      "</text>\n<rect class=\"plot\" x=\"%d\" y=\"%d\" "
                      "width=\"%d\" height=\"%d\"/>\n"
                      "<text class=\"tick\" x=\"%d\" y=\"%d\" "
                      "text-anchor=\"end\">%s</text>\n"
                      "<text class=\"tick\" x=\"%d\" y=\"%d\" "
                      "text-anchor=\"end\">%s</text>\n"
                      "<text class=\"tick\" x=\"%d\" y=\"%d\" "
                      "text-anchor=\"end\">0</text>\n",
                      PX, y, PW, PH, PX - 4, y + 8, a, PX - 4, y + PH / 2 + 4,
                      b, PX - 4, y + PH);
    for (int k = 0; k <= 4; k++) {
        char t[32];
        int64_t at = d->end_ns / 4 * k;
        rp__fmt_ns(at, t, sizeof(t));
        report_buf_printf(o,
                          "<text class=\"tick\" x=\"%.1f\" y=\"%d\" "
                          "text-anchor=\"middle\">%s</text>\n",
                          x_of(d, at), y + PH + 12, t);
    }
}

static void
polyline(struct report_buf *o, const struct chart_data *d, const double *v,
         double max, int y, const char *cls)
{
    report_buf_printf(o, "<polyline class=\"%s\" points=\"", cls);
    for (int b = 0; b < NB; b++) {
        if (v[b] < 0)
            continue; /* no sample in this bucket */
        double x = PX + (b + 0.5) * (double)PW / NB;
        double yy = y + PH - (max > 0 ? v[b] / max * PH : 0);
        report_buf_printf(o, "%.1f,%.1f ", x, yy);
    }
    (void)d;
    report_buf_puts(o, "\"/>\n");
}

static double
max_of(const double *v)
{
    double m = 0;
    for (int b = 0; b < NB; b++)
        if (v[b] > m)
            m = v[b];
    return m > 0 ? m : 1;
}

static void
legend(struct report_buf *o, int y, const struct series *s, int n)
{
    for (int i = 0; i < n; i++)
        report_buf_printf(o,
                          "<text class=\"%s legend\" x=\"%d\" y=\"%d\">"
                          "\u2014 %s</text>\n",
                          s[i].cls, PX + PW - 180 + 60 * i, y - 8, s[i].name);
}

static void
fault_timeline(struct report_buf *o, const struct chart_data *d,
               const struct rp_fault *f, size_t nf, int y)
{
    report_buf_printf(o, "<text class=\"ctitle\" x=\"%d\" y=\"%d\">faults "
                         "over time</text>\n", PX, y - 8);
    for (size_t i = 0; i < nf; i++) {
        int64_t end = f[i].healed_t >= 0 ? f[i].healed_t : d->end_ns;
        double x0 = x_of(d, f[i].t_ns), x1 = x_of(d, end);
        if (x1 - x0 < 3)
            x1 = x0 + 3;
        int yy = y + (int)i * 18;
        report_buf_printf(o,
                          "<rect class=\"faultbar\" x=\"%.1f\" y=\"%d\" "
                          "width=\"%.1f\" height=\"12\"/>\n"
                          "<text class=\"tick\" x=\"%d\" y=\"%d\" "
                          "text-anchor=\"end\">",
                          x0, yy, x1 - x0, PX - 4, yy + 10);
        report_buf_xml(o, f[i].kind);
        /* a bar reaching the right edge carries its label inside */
        int inside = x1 > PX + PW - 200;
        report_buf_printf(o, "</text>\n<text class=\"%s\" x=\"%.1f\" "
                             "y=\"%d\">", inside ? "barlabel" : "tick",
                          inside ? x0 + 4 : x1 + 4, yy + 10);
        report_buf_xml(o, f[i].targets);
        if (f[i].params[0]) {
            report_buf_puts(o, " (");
            report_buf_xml(o, f[i].params);
            report_buf_puts(o, ")");
        }
        report_buf_puts(o, "</text>\n");
    }
    if (!nf)
        report_buf_printf(o, "<text class=\"tick\" x=\"%d\" y=\"%d\">no "
                             "injected faults</text>\n", PX, y + 10);
}

int
report_charts_svg(struct trace_db *db, int64_t run, struct report_buf *out,
                  char *err, size_t errlen)
{
    struct chart_data *d = calloc(1, sizeof(*d));
    if (!d) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    d->end_ns = rp__run_end_ns(db, run);
    d->bucket_ns = d->end_ns > 0 ? (double)d->end_ns / NB : 1;
    struct rp_fault *f = NULL;
    size_t nf = 0;
    if (load_messages(db, run, d, err, errlen) < 0 ||
        load_reconnects(db, run, d, err, errlen) < 0 ||
        rp__faults_load(db, run, &f, &nf, err, errlen) < 0) {
        free(d);
        return -1;
    }
    int fault_rows = nf ? (int)nf : 1;
    int h = 4 * PANEL_H + 40 + fault_rows * 18 + 20;
    report_buf_printf(out,
                      "<svg xmlns=\"http://www.w3.org/2000/svg\" "
                      "class=\"charts\" width=\"%d\" height=\"%d\" "
                      "viewBox=\"0 0 %d %d\">\n",
                      PX + PW + 20, h, PX + PW + 20, h);
    report_buf_puts(out,
                    "<style>\n"
                    "text{font:11px Helvetica,Arial,sans-serif}\n"
                    ".ctitle{font-weight:bold}\n.tick{fill:#555;font-size:10px}\n"
                    ".plot{fill:none;stroke:#bbb}\n"
                    ".fault{fill:#f4cccc;opacity:.5}\n"
                    ".faultbar{fill:#e06666}\n.barlabel{fill:#fff;font-size:10px}\n"
                    ".thr,.p50,.p90,.p99,.depth{fill:none;stroke-width:1.5}\n"
                    ".thr{stroke:#1f4e79}.depth{stroke:#6a329f}\n"
                    ".p50{stroke:#38761d}.p90{stroke:#bf9000}.p99{stroke:#c00}\n"
                    "text.p50{fill:#38761d;stroke:none}"
                    "text.p90{fill:#bf9000;stroke:none}"
                    "text.p99{fill:#c00;stroke:none}\n"
                    ".bar{fill:#e69138}\n"
                    "</style>\n");
    int y = 24;
    double lmax = max_of(d->p99);
    struct {
        const char *title, *unit, *cls;
        double *v;
    } panels[] = {
        {"throughput: messages delivered per second", "", "thr", d->thr},
        {"delivery latency (first send to first delivery)", "ns", NULL, NULL},
        {"queue depth: messages queued or sent, not yet delivered or dropped",
         "", "depth", d->depth},
        {"reconnect attempts per interval", "", NULL, d->reconn},
    };
    for (int p = 0; p < 4; p++, y += PANEL_H) {
        double max = p == 1 ? lmax : max_of(panels[p].v);
        shade_faults(out, d, f, nf, y, PH);
        axes(out, d, y, panels[p].title, max, panels[p].unit);
        if (p == 1) {
            struct series s[] = {{"p50", "p50", {0}}, {"p90", "p90", {0}},
                                 {"p99", "p99", {0}}};
            legend(out, y, s, 3);
            polyline(out, d, d->p50, max, y, "p50");
            polyline(out, d, d->p90, max, y, "p90");
            polyline(out, d, d->p99, max, y, "p99");
        } else if (p == 3) {
            for (int b = 0; b < NB; b++) {
                if (d->reconn[b] <= 0)
                    continue;
                double bh = d->reconn[b] / max * PH;
                report_buf_printf(out,
                                  "<rect class=\"bar\" x=\"%.1f\" y=\"%.1f\" "
                                  "width=\"%.1f\" height=\"%.1f\"/>\n",
                                  PX + b * (double)PW / NB, y + PH - bh,
                                  (double)PW / NB - 1, bh);
            }
        } else {
            polyline(out, d, panels[p].v, max, y, panels[p].cls);
        }
    }
    fault_timeline(out, d, f, nf, y);
    report_buf_puts(out, "</svg>\n");
    free(f);
    free(d);
    if (out->oom) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}
