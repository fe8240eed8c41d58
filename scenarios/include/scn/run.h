/*
 * scn run: executes a compiled scenario (struct scn_plan) on the simulated
 * stack and checks its expectations.
 *
 * One run builds a sim world from the plan's seed, one host and one
 * messenger per node, drives the timeline, the workload, the faults and
 * the triggers in virtual time, ends at `duration` or earlier at
 * quiescence (never before the last time the file names), then checks
 * every expectation and prints the verdict with its evidence. The same
 * plan and seed reproduce the run bit for bit (the fingerprint).
 *
 * Exit codes are the language page's (enum scn_exit).
 */
#ifndef SCN_RUN_H
#define SCN_RUN_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "scn/scn.h"

enum scn_exit {
    SCN_EXIT_OK = 0,        /* every expectation held */
    SCN_EXIT_FAILED = 1,    /* an expectation or an invariant failed */
    SCN_EXIT_USAGE = 2,     /* command-line usage error */
    SCN_EXIT_INVALID = 65,  /* the scenario file is invalid */
    SCN_EXIT_NOINPUT = 66,  /* an input cannot be opened */
    SCN_EXIT_INTERNAL = 70, /* a bug in msgrsim */
};

struct scn_observer;
struct sim_capture_seg; /* sim/sim.h */

/*
 * Tests of the checker itself: the runner mishandles the Nth delivery (1
 * based, counted over all pairs) as a broken messenger would, so tests can
 * prove that the matching expectation fails. Never set in real runs.
 */
enum scn_sabotage {
    SCN_SABOTAGE_NONE,
    SCN_SABOTAGE_DROP,    /* the delivery is not recorded: a lost message */
    SCN_SABOTAGE_DUP,     /* recorded twice: a duplicate */
    SCN_SABOTAGE_REORDER, /* recorded after the next one: out of order */
    SCN_SABOTAGE_CORRUPT, /* recorded with a bad checksum */
};

struct scn_run_opts {
    bool has_seed;            /* --seed: overrides the file's */
    uint64_t seed;
    bool has_stack;           /* --stack: overrides the file's */
    enum scn_stack stack;
    bool quiet;               /* only the verdict lines */
    bool progress;            /* a status line on stderr (callers: a TTY) */
    FILE *out;                /* NULL: stdout */
    const char *command;      /* the reproduction line's program, "msgrsim" */
    const struct scn_observer *observer; /* NULL: none (traces) */
    enum scn_sabotage sabotage;
    uint64_t sabotage_at;
};

struct scn_run_result {
    int exit_code;            /* enum scn_exit */
    uint64_t seed;
    uint64_t fingerprint;
    uint64_t end_ns;          /* virtual time the run ended */
    uint32_t expects_total, expects_failed;
    uint32_t breaks_unfired;  /* breakpoints that never fired */
    uint64_t msgs_sent, msgs_delivered, msgs_given_up;
    uint64_t faults;          /* faults started */
    uint64_t sim_events;
};

/*
 * What a trace store needs to see of a run; every callback may be NULL.
 * Times are virtual nanoseconds. Node and connection ids are small
 * integers in first-seen order (never pointer values).
 */
struct scn_observer {
    void *arg;
    void (*run_begin)(void *arg, const struct scn_plan *p, uint64_t seed,
                      const char *stack);
    void (*node)(void *arg, uint32_t node, const char *name, uint8_t type,
                 const char *policy, const char *addr, uint64_t nonce,
                 uint32_t incarnation);
    /* A tracer for a node's messenger, chained after the runner's own. */
    void (*tracer)(void *arg, uint32_t node, uint64_t (*now)(void *),
                   void *now_arg, struct msgr_tracer *out);
    void (*action)(void *arg, uint64_t t, uint32_t line, const char *what);
    void (*fault)(void *arg, uint64_t t, uint64_t id, const char *kind,
                  const char *targets, const char *params);
    void (*fault_heal)(void *arg, uint64_t t, uint64_t id);
    /* A workload message: tid is unique per sending node (all its
     * incarnations), seq per (src, dst) pair. */
    void (*msg_sent)(void *arg, uint64_t t, uint32_t src, uint32_t dst,
                     uint64_t seq, uint64_t tid, uint64_t size,
                     uint64_t checksum);
    /* given up by the runner's ledger (its connection went away) */
    void (*msg_given_up)(void *arg, uint64_t t, uint32_t src, uint32_t dst,
                         uint64_t tid);
    void (*expectation)(void *arg, uint32_t line, const char *text,
                        bool held, const char *evidence);
    void (*run_end)(void *arg, uint64_t t, uint64_t fingerprint,
                    int exit_code);
    /* Every TCP segment the simulated network sends, at its send time
     * (sim_set_capture's contract). Only when this is set does the runner
     * install the world's capture hook; a captured run is otherwise the
     * same run (events, fingerprint). */
    void (*segment)(void *arg, const struct sim_capture_seg *s);
};

/*
 * Runs the plan. The plan's text of each expectation is read back from
 * `source` (the file's bytes, for evidence lines); may be NULL. Returns
 * the exit code (also in res).
 */
int scn_run(const struct scn_plan *plan, const char *source, size_t source_len,
            const struct scn_run_opts *o, struct scn_run_result *res);

/* ------------------------------------------------------------ traces */

/*
 * An observer that writes a run into a trace file (trace/, sqlite): nodes,
 * every connection's states and frames, message fates, faults, actions,
 * expectations and the fingerprint, with the scenario text and seed so
 * `msgrsim replay` can run it again. NULL with a message in err on
 * failure (the file cannot be created, or is not a trace).
 */
struct scn_trace;
/* detail: enum trace_detail (0 full: every frame and message fate as an
 * event; 1 sessions: per-message events only in the message table). */
struct scn_trace *scn_trace_open(const char *path, const char *scenario_path,
                                 const char *text, size_t len, int detail,
                                 char *err, size_t errlen);
const struct scn_observer *scn_trace_observer(struct scn_trace *t);
/*
 * Also records every TCP segment of the run with its payload (the trace's
 * segment table, for pcap export). Payloads are kept until payload_max
 * bytes were stored; later segments keep their headers only (their len
 * stays, their payload is NULL). Call before the run.
 */
void scn_trace_set_capture(struct scn_trace *t, uint64_t payload_max);
struct scn_capture_stats {
    uint64_t segments;      /* rows written */
    uint64_t payload_bytes; /* payload bytes stored */
    uint64_t headers_only;  /* segments with payload past the bound */
    uint64_t payload_max;
};
void scn_trace_capture_stats(const struct scn_trace *t,
                             struct scn_capture_stats *out);
/* The run's id in the file (valid after the run began). */
int64_t scn_trace_run_id(const struct scn_trace *t);
/* Commits and closes; returns 0 or a negative error (message in err). */
int scn_trace_close(struct scn_trace *t, char *err, size_t errlen);

#endif
