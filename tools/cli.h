/*
 * What msgrsim's command files share: the program name, usage, argument
 * parsing and the exit codes of the language page (0 success, 1 the run
 * failed, 2 usage, 65 invalid input, 66 unreadable input, 70 internal).
 */
#ifndef MSGRSIM_CLI_H
#define MSGRSIM_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define EXIT_USAGE    2
#define EXIT_DATAERR  65
#define EXIT_NOINPUT  66
#define EXIT_SOFTWARE 70

extern const char *cli_prog;

void cli_usage(FILE *f);
/* Prints "msgrsim: MESSAGE" and a hint to stderr; returns EXIT_USAGE. */
int cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A whole number in [min, max]; 0 or -1. */
int cli_parse_long(const char *s, long min, long max, long *out);
/* "1.5s", "250ms", "10us", "42ns", "2m" or a bare number of ns. */
int cli_parse_time_ns(const char *s, int64_t *out);
/* "64MiB", "4KiB", "512B" or a bare number of bytes. */
int cli_parse_size(const char *s, uint64_t *out);
/* A whole file (malloc'd), or NULL with errno set. */
char *cli_read_file(const char *path, size_t *len);

struct trace_db;
/*
 * Opens a trace read-only and settles which run a command works on (*run
 * 0: the latest). 0 and *db open; else an exit code, the reason printed
 * (66 the file cannot be opened, 65 it holds no such run).
 */
int cli_open_trace_run(const char *cmd, const char *path, int64_t *run,
                       struct trace_db **db);

/* cmd_scenario.c */
int cli_cmd_check(int argc, char **argv);
int cli_cmd_run(int argc, char **argv);
int cli_cmd_replay(int argc, char **argv);
/* cmd_report.c */
int cli_cmd_report(int argc, char **argv);
int cli_cmd_pcap(int argc, char **argv);

#endif
