/*
 * Private to net.c and tcp.c: the network's state (links, per-host
 * tables, the segment pool) and the TCP model's connection records.
 *
 * net.c owns the "wire": link parameters, partitions, per-pair fault
 * knobs, bandwidth queues and the fate of each segment (lost, late,
 * corrupted). tcp.c owns everything a kernel's TCP would: connections,
 * their buffers and timers, listeners, and the stack seam's socket
 * methods.
 */
#ifndef SIM_NET_H
#define SIM_NET_H

#include <stdint.h>

#include "sim_internal.h"

/* ------------------------------------------------------------ constants */

/* Linux's defaults on a 1500-byte Ethernet path with timestamps. */
#define SIM_TCP_MSS 1448u
#define SIM_TCP_HDR 52u /* IPv4 20 + TCP 32: MSS + HDR = MTU 1500 */
/* Buffer bounds (the logical sizes the window and EAGAIN follow). Both
 * are powers of two: the rings index by seq & (cap - 1). */
#define SIM_TCP_SNDBUF (256u * 1024u)
#define SIM_TCP_RCVBUF (256u * 1024u)
/* Rings start this small and double on demand up to the bounds above, so
 * an idle or chatty connection costs little memory. */
#define SIM_TCP_RING_MIN 4096u

#define SIM_LATENCY_DEFAULT_NS (100 * MSGR_NS_PER_US)

/* ---------------------------------------------------------------- links */

/* State of one direction a -> b, allocated the first time anything about
 * the pair differs from the defaults. */
struct sim_pair {
    struct sim_link_params params;
    int has_params;     /* else the world's defaults apply */
    int partitioned;    /* a -> b drops everything */
    uint32_t reset_ppm; /* per socket op of a's sockets to b */
    /* the link transmits one segment at a time (bandwidth > 0): when the
     * last one queued finishes serialising */
    msgr_time_ns busy_until;
};

struct tcp_conn;
struct tcp_end;
struct sim_listener;

/* A segment on the wire: headers only. The payload stays in the sender's
 * send ring until it is acknowledged, so the receiver copies it from
 * there when the segment arrives (see tcp.c). */
struct sim_seg {
    struct sim_seg *next; /* free list */
    struct tcp_conn *conn;
    uint64_t seq;
    uint64_t ack;  /* with SEG_ACK */
    uint64_t edge; /* window right edge: last seq + 1 accepted */
    uint32_t len;
    uint32_t corrupt_bit; /* 0: intact; else (bit index in payload) + 1 */
    uint32_t sacked;      /* with the ACK: bytes received past it (SACK) */
    uint8_t from;         /* side of the sender (0 client, 1 server) */
    uint8_t flags;        /* SEG_* */
};

#define SEG_SYN   0x01u
#define SEG_ACK   0x02u
#define SEG_FIN   0x04u
#define SEG_RST   0x08u
#define SEG_PROBE 0x10u /* zero-window probe: answer with an ACK now */

struct sim_net {
    struct sim_world *w;
    struct sim_link_params defaults;
    uint32_t next_host_idx; /* dense host indexes, creation order */
    uint64_t next_conn_id;
    /* every connection record alive, creation order (freed at fini) */
    struct tcp_conn *conns_head, *conns_tail;
    /* segment pool: slabs never move, segments recycle through a list */
    struct sim_seg *seg_free;
    struct seg_slab *slabs;
    /* sim_set_capture; cap_buf holds one segment's payload for it */
    sim_capture_cb capture_cb;
    void *capture_arg;
    uint8_t cap_buf[SIM_TCP_MSS];
};

struct sim_host_net {
    struct sim_host *host;
    uint32_t idx;             /* dense index, the key of pairs[] */
    struct sim_rng rng_net;   /* SIM_STREAM_NET: jitter, loss, corruption */
    struct sim_rng rng_fault; /* SIM_STREAM_FAULT: reset_prob draws */
    uint16_t next_port;       /* ephemeral port counter */
    /* pairs[idx of b] describes this host -> b (NULL: defaults) */
    struct sim_pair **pairs;
    uint32_t npairs;
    /* bound listeners and live connection ends, creation order */
    struct sim_listener *ls_head, *ls_tail;
    struct tcp_end *ends_head, *ends_tail;
};

/* net.c */
struct sim_pair *sim__net_pair(struct sim_host *a, struct sim_host *b);
/*
 * The fate of one segment sent now from a to b (b NULL: nobody has that
 * address) with `payload` bytes: 0 if it is lost (counted, fingerprinted),
 * else 1 with its arrival time in *at. *flow_last is the arrival time of
 * the previous segment of the same sender and is updated: a flow never
 * overtakes itself, so jitter delays segments without reordering them.
 * *corrupt_bit gets 0 or the bit (+1) the link flips in the payload.
 */
int sim__net_route(struct sim_world *w, struct sim_host *a, struct sim_host *b,
                   uint32_t payload, msgr_time_ns *flow_last, msgr_time_ns *at,
                   uint32_t *corrupt_bit);
struct sim_seg *sim__seg_alloc(struct sim_net *n);
void sim__seg_free(struct sim_net *n, struct sim_seg *s);
/* Mixes a fault record (code, host ids, time) into the fingerprint. */
void sim__net_fp(struct sim_world *w, uint64_t code, const struct sim_host *a,
                 const struct sim_host *b);

/* tcp.c: teardown of its records (net.c's init/fini call these) */
void sim__tcp_fini(struct sim_world *w);
void sim__tcp_host_fini(struct sim_host *h);

/* Fingerprint codes of the network's faults. */
enum {
    SIM_FP_NET_LOSS = 0x4e4c,    /* 'NL' */
    SIM_FP_NET_CORRUPT = 0x4e43, /* 'NC' */
    SIM_FP_NET_RESET = 0x4e52,   /* 'NR' */
    SIM_FP_NET_TIMEOUT = 0x4e54, /* 'NT' */
    SIM_FP_NET_REFUSED = 0x4e46, /* 'NF' */
};

#endif
