/*
 * pcap export of a captured simulated run: every TCP segment of the
 * trace's segment table (msgrsim run --capture) as an IPv4 packet with
 * real IPv4 and TCP headers (checksums computed), nanosecond timestamps
 * (virtual time since the run began, shown as 1970-01-01 plus that),
 * written with libpcap (LINKTYPE_RAW), so Wireshark and tshark open it,
 * list the conversations and follow each TCP stream.
 *
 * What a packet shows (docs/REPORTS.md has the whole mapping):
 *   - the capture point is each sender's interface: a segment appears at
 *     its send time, whether the link then delivers, drops or corrupts it;
 *   - dropped segments are included (by default) and marked with DSCP
 *     CS1 (Wireshark: ip.dsfield.dscp == 8); the retransmission follows;
 *   - RSTs of injected resets (no end sent them) carry DSCP CS2 (16);
 *   - a corrupted segment carries the flipped bit and the checksum of the
 *     bytes as sent, so Wireshark flags exactly those as bad checksums;
 *   - a segment stored without payload (the capture's size bound) is
 *     written truncated: caplen = headers, len = the wire length;
 *   - sequence numbers are isn + the simulator's offsets, with a
 *     deterministic isn per direction; SYNs carry MSS and window scale
 *     options, so the window field is scaled as Linux's is.
 */
#ifndef REPORTS_PCAP_H
#define REPORTS_PCAP_H

#include <stddef.h>
#include <stdint.h>

struct trace_db;

struct report_pcap_opts {
    int omit_dropped; /* leave out segments the link lost */
};

struct report_pcap_stats {
    uint64_t packets;   /* written */
    uint64_t dropped;   /* of which the link lost (or left out, if so) */
    uint64_t injected;  /* RSTs of injected resets */
    uint64_t truncated; /* written without their payload */
    uint64_t corrupted; /* with a flipped bit */
};

/*
 * Writes run `run` of db (which must hold a capture of it) to `path`.
 * 0, or a negative errno with a sentence in err: -ENOENT when the run has
 * no captured segments (run it with --capture), -EIO when the file cannot
 * be written or the trace cannot be read.
 */
int report_pcap_write(struct trace_db *db, int64_t run, const char *path,
                      char *err, size_t errlen);
/* The same with options (NULL: defaults) and counts (out may be NULL). */
int report_pcap_export(struct trace_db *db, int64_t run, const char *path,
                       const struct report_pcap_opts *opts,
                       struct report_pcap_stats *out, char *err,
                       size_t errlen);

/* ------------------------------------------------------------- builders */

#define REPORT_IPV4_HDR     20u
#define REPORT_TCP_HDR      20u
#define REPORT_TCP_HDR_SYN  28u /* with MSS, NOP, window scale */
#define REPORT_TCP_MSS      1448u
#define REPORT_TCP_WSCALE   3u  /* 65535 << 3 covers the sim's 256 KiB */
#define REPORT_DSCP_DROPPED 8u  /* CS1 */
#define REPORT_DSCP_INJECTED 16u /* CS2 */

/* The Internet checksum (RFC 1071) of n bytes, folded and complemented,
 * starting from a partial sum (0 for a fresh one). */
uint16_t report_inet_checksum(const void *p, size_t n, uint32_t sum);

struct report_tcp_seg {
    uint32_t src_ip, dst_ip; /* host order */
    uint16_t src_port, dst_port;
    uint32_t seq, ack;       /* wire values */
    uint8_t flags;           /* FIN 0x01 SYN 0x02 RST 0x04 PSH 0x08 ACK 0x10 */
    uint16_t window;         /* the field's value (scaled already) */
    uint8_t dscp;
    uint16_t ip_id;
    const uint8_t *payload;  /* checksummed; may differ from what is sent */
    uint32_t len;
};

/*
 * Writes the IPv4 and TCP headers of s into out (at least
 * REPORT_IPV4_HDR + REPORT_TCP_HDR_SYN bytes) and returns their length.
 * The IPv4 checksum covers the header; the TCP checksum covers the
 * pseudo-header, the TCP header and s->payload.
 */
size_t report_tcp_headers(const struct report_tcp_seg *s, uint8_t *out);

#endif
