/* The HTML page and what report.c hands it. */
#ifndef REPORTS_HTML_H
#define REPORTS_HTML_H

#include "report_internal.h"

struct rp_conn_pic {
    int64_t id;
    char file[48];
    struct report_buf dot, svg;
};

struct rp_pictures {
    struct report_buf topology_svg, states_svg, sequence_svg, charts_svg;
    struct report_seq_view seq;
    struct rp_conn_pic *conn;
    size_t nconn, nconn_omitted;
};

int rp__html_write(struct report_buf *b, struct trace_db *db,
                   const struct trace_run *r, const struct rp_pictures *p,
                   char *err, size_t errlen);

#endif
