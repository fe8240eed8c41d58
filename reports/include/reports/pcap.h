/*
 * pcap export of a traced run's simulated streams (reports/src/pcap.c):
 * real IPv4/TCP headers and nanosecond timestamps, so that Wireshark or
 * tshark opens the file and follows each TCP stream.
 */
#ifndef REPORTS_PCAP_H
#define REPORTS_PCAP_H

#include <stddef.h>
#include <stdint.h>

struct trace_db;

/* Writes run `run` of db into path; 0, or -1 with a sentence in err. */
int report_pcap_write(struct trace_db *db, int64_t run, const char *path,
                      char *err, size_t errlen);

#endif /* REPORTS_PCAP_H */
