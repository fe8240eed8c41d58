/*
 * reports: pictures and exports made from a trace (trace/trace.h). A
 * report never runs a messenger; it reads one run of a trace file and
 * writes files into a directory:
 *
 *   index.html          one self-contained page (inline SVG and CSS, no
 *                       script, no fetch): scenario, seed, fingerprint,
 *                       expectations with verdicts and evidence, every
 *                       picture, a per-connection table
 *   states.dot/.svg     the protocol state graph merged over the run
 *   states-cN.dot/.svg  the same for connection N
 *   topology.dot/.svg   nodes, links weighted by traffic, faults
 *   sequence.svg        message sequence (Lamport) diagram of one pair
 *   charts.svg          throughput, latency percentiles, queue depth,
 *                       reconnects and the fault timeline
 *   trace.json          Chrome/Perfetto trace events (format perfetto)
 *   trace.pcap          simulated streams (format pcap, see pcap.h)
 *
 * Graphs are DOT first (always written) and rendered in process with
 * graphviz (libgvc); the sequence diagram and the charts are SVG written
 * by hand, because their geometry is the information (rows in event
 * order, time on an axis) and a graph layout would move it.
 *
 * Errors: functions return 0 or -1 and write a sentence into err.
 */
#ifndef REPORTS_REPORT_H
#define REPORTS_REPORT_H

#include <stddef.h>
#include <stdint.h>

struct trace_db;

enum report_format {
    REPORT_FORMAT_HTML,     /* index.html + SVG + DOT (the default) */
    REPORT_FORMAT_SVG,      /* SVG + DOT files */
    REPORT_FORMAT_DOT,      /* DOT files only */
    REPORT_FORMAT_PERFETTO, /* trace.json */
    REPORT_FORMAT_PCAP,     /* trace.pcap */
};
/* "html" ... "pcap" -> the format, or -1. */
int report_format_parse(const char *name);

struct report_opts {
    int64_t run;         /* 0: the latest run of the file */
    int format;          /* enum report_format */
    /* the sequence diagram's pair of node names; NULL: the busiest pair */
    const char *pair_a, *pair_b;
    /* its time window (inclusive); INT64_MIN / INT64_MAX: around the
     * first fault (or from the start when there is none) */
    int64_t from_ns, until_ns;
    int max_seq_events;  /* rows of the sequence diagram; 0: 200 */
    int max_conn_graphs; /* per-connection state graphs rendered; 0: 32 */
};
void report_opts_init(struct report_opts *o);

/*
 * Writes the report of one run into dir (created when missing; files of
 * the same names are replaced). *written (may be NULL) gets the path of
 * the main file (index.html, trace.json, ...), valid until the next call.
 * 0, or a negative value with a sentence in err: -ENOTSUP when the format
 * is not in this build (pcap without libpcap), -ENOENT when the run holds
 * nothing to export in that format, -1 otherwise.
 */
int report_write(struct trace_db *db, const struct report_opts *o,
                 const char *dir, const char **written, char *err,
                 size_t errlen);

/* ------------------------------------------------- the parts, for tests */

/* A growable text buffer; every report part writes into one. */
struct report_buf {
    char *data;
    size_t len, cap;
    int oom; /* set when an allocation failed; later appends do nothing */
};
void report_buf_init(struct report_buf *b);
void report_buf_fini(struct report_buf *b);
void report_buf_puts(struct report_buf *b, const char *s);
void report_buf_putn(struct report_buf *b, const char *s, size_t n);
void report_buf_printf(struct report_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Appends s with &, <, >, " and ' escaped (HTML and XML text). */
void report_buf_xml(struct report_buf *b, const char *s);
/* Appends s escaped for a DOT double-quoted string. */
void report_buf_dotstr(struct report_buf *b, const char *s);

/* The protocol state graph of a run (conn 0: merged over every
 * connection) as DOT: every state of msgr's machine, observed edges with
 * their counts, allowed edges never taken dashed, observed edges the
 * machine does not allow in red. */
int report_state_dot(struct trace_db *db, int64_t run, int64_t conn,
                     struct report_buf *out, char *err, size_t errlen);
/* Nodes by entity type, links weighted by messages, faults as red edges
 * or marked nodes, as DOT. */
int report_topology_dot(struct trace_db *db, int64_t run,
                        struct report_buf *out, char *err, size_t errlen);

/* The window and pair the sequence diagram shows (filled in when left to
 * the defaults). */
struct report_seq_view {
    char a[64], b[64];
    int64_t from_ns, until_ns;
    int nevents;  /* rows drawn */
    int ndropped, nduplicates, nresets;
};
/* The sequence diagram of o's pair and window as SVG; *view may be NULL. */
int report_sequence_svg(struct trace_db *db, int64_t run,
                        const struct report_opts *o, struct report_buf *out,
                        struct report_seq_view *view, char *err,
                        size_t errlen);
/* The charts over time as one SVG. */
int report_charts_svg(struct trace_db *db, int64_t run,
                      struct report_buf *out, char *err, size_t errlen);

/* Lays out DOT with graphviz's dot and renders SVG (the XML prologue and
 * DOCTYPE removed, so that it can be inlined into HTML). */
int report_dot_to_svg(const char *dot, struct report_buf *svg, char *err,
                      size_t errlen);

/* Chrome/Perfetto trace-event JSON of a run into path: nodes are
 * processes, connections threads, state spans complete events, messages
 * flows from send to delivery, faults instant events (and spans on a
 * "faults" process). */
int report_perfetto_write(struct trace_db *db, int64_t run, const char *path,
                          char *err, size_t errlen);

#endif /* REPORTS_REPORT_H */
