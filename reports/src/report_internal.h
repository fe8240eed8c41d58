/* What the report parts share: sqlite helpers, faults, time labels. */
#ifndef REPORTS_REPORT_INTERNAL_H
#define REPORTS_REPORT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "reports/report.h"
#include "trace/trace.h"

/* Prepares sql on the trace's handle; on failure writes err. */
int rp__prepare(struct trace_db *db, const char *sql, sqlite3_stmt **st,
                char *err, size_t errlen);
/* Column text or "" when NULL. */
const char *rp__text(sqlite3_stmt *st, int col);

struct rp_fault {
    int64_t id, t_ns;
    int64_t healed_t; /* -1: never healed (lasts to the run's end) */
    char kind[32], targets[160], params[160];
};
/* The run's faults in id order (free() the array). */
int rp__faults_load(struct trace_db *db, int64_t run, struct rp_fault **out,
                    size_t *n, char *err, size_t errlen);
/* The run's last instant: duration_ns, or the last event's time. */
int64_t rp__run_end_ns(struct trace_db *db, int64_t run);
/* "1.234ms", "2.5s", "350us": short labels for axes and tables. */
void rp__fmt_ns(int64_t ns, char *buf, size_t len);
/* Whether a fault's targets ("osd.0 <-> osd.1", "osd.2") name node. */
int rp__fault_names(const struct rp_fault *f, const char *node);

#endif
