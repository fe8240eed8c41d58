/*
 * msgr2 frames: pure encoding and decoding, no I/O, no allocation except
 * where a function says so. Crc mode only (secure mode is not implemented).
 *
 * Wire facts: PROTOCOL.md §4.3-4.6. All integers little-endian.
 *
 *   preamble (32): tag u8, nseg u8, 4 x {le32 len, le16 align}, 2 reserved,
 *                  le32 crc32c(seed 0) over bytes 0..27
 *   rev0 body:     seg1..segN back to back, epilogue 17 =
 *                  late_flags u8 + 4 x le32 crc (unused slots 0)
 *   rev1 body:     seg1 [+ le32 crc of seg1 if seg1 non-empty], seg2..segN,
 *                  and only if nseg > 1 an epilogue 13 =
 *                  late_status u8 + 3 x le32 crc (segs 2..4)
 *   segment crcs:  crc32c seeded with 0xffffffff, no inversion
 */
#ifndef MSGR_FRAME_H
#define MSGR_FRAME_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "msgr/types.h"

#define MSGR_BANNER_PREFIX     "ceph v2\n"
#define MSGR_BANNER_PREFIX_LEN 8
#define MSGR_BANNER_LEN        26 /* prefix + le16 16 + le64 supp + le64 req */
#define MSGR_BANNER_V1_PREFIX  "ceph v027"

#define MSGR_PREAMBLE_LEN      32
#define MSGR_MAX_SEGMENTS      4
#define MSGR_EPILOGUE_REV0_LEN 17
#define MSGR_EPILOGUE_REV1_LEN 13
#define MSGR_HEADER2_LEN       41

/* late_status / late_flags */
#define MSGR_FRAME_LATE_ABORTED_REV0 0x01
#define MSGR_FRAME_LATE_STATUS_ABORTED  0x1
#define MSGR_FRAME_LATE_STATUS_COMPLETE 0xe

enum msgr_tag {
    MSGR_TAG_HELLO = 1,
    MSGR_TAG_AUTH_REQUEST = 2,
    MSGR_TAG_AUTH_BAD_METHOD = 3,
    MSGR_TAG_AUTH_REPLY_MORE = 4,
    MSGR_TAG_AUTH_REQUEST_MORE = 5,
    MSGR_TAG_AUTH_DONE = 6,
    MSGR_TAG_AUTH_SIGNATURE = 7,
    MSGR_TAG_CLIENT_IDENT = 8,
    MSGR_TAG_SERVER_IDENT = 9,
    MSGR_TAG_IDENT_MISSING_FEATURES = 10,
    MSGR_TAG_SESSION_RECONNECT = 11,
    MSGR_TAG_SESSION_RESET = 12,
    MSGR_TAG_SESSION_RETRY = 13,
    MSGR_TAG_SESSION_RETRY_GLOBAL = 14,
    MSGR_TAG_SESSION_RECONNECT_OK = 15,
    MSGR_TAG_WAIT = 16,
    MSGR_TAG_MESSAGE = 17,
    MSGR_TAG_KEEPALIVE2 = 18,
    MSGR_TAG_KEEPALIVE2_ACK = 19,
    MSGR_TAG_ACK = 20,
    MSGR_TAG_COMPRESSION_REQUEST = 21,
    MSGR_TAG_COMPRESSION_DONE = 22,
};
#define MSGR_TAG_MAX 22
/* "HELLO", ... ; "UNKNOWN" otherwise */
const char *msgr_tag_name(unsigned tag);

/* Raw Ceph crc32c: reflected Castagnoli, given seed, no final inversion. */
uint32_t msgr_crc32c(uint32_t seed, const void *buf, size_t len);

/* ---- banner ---- */
void msgr_banner_encode(uint8_t out[MSGR_BANNER_LEN], uint64_t supported,
                        uint64_t required);
/* 0, MSGR_EBAD_BANNER (wrong prefix, v1 banner, payload length != 16). */
int msgr_banner_decode(const uint8_t in[MSGR_BANNER_LEN], uint64_t *supported,
                       uint64_t *required);

/* ---- limits a peer cannot exceed ---- */
struct msgr_frame_limits {
    uint32_t max_segment; /* bytes, per segment (default 16 MiB + 4 KiB) */
    uint32_t max_frame;   /* sum of segments (default 64 MiB) */
};
void msgr_frame_limits_default(struct msgr_frame_limits *l);

/* ---- encoding ---- */
struct msgr_seg {
    const void *base;
    uint32_t len;
    uint16_t align; /* 8 for control and header/front/middle, 4096 data */
};

/*
 * An encoded frame as an iovec list: preamble, payloads (referenced, not
 * copied) and the crc/epilogue bytes kept inside this struct. The struct
 * must outlive the writev of its iov.
 */
struct msgr_frame_out {
    uint8_t preamble[MSGR_PREAMBLE_LEN];
    uint8_t seg1_crc[4];                    /* rev1 only */
    uint8_t epilogue[MSGR_EPILOGUE_REV0_LEN];
    struct iovec iov[1 + MSGR_MAX_SEGMENTS + 2];
    int iovcnt;
    size_t total; /* bytes on the wire */
};

/*
 * Encodes a frame with nseg (1..4) segments. Trailing empty segments are
 * dropped from the preamble count (at least one remains). Computes every
 * crc. Returns 0 or -EINVAL (nseg out of range).
 */
int msgr_frame_encode(struct msgr_frame_out *out, int rev1, uint8_t tag,
                      const struct msgr_seg *segs, int nseg);

/* ---- decoding ---- */
struct msgr_preamble {
    uint8_t tag;
    uint8_t nseg;
    uint32_t seg_len[MSGR_MAX_SEGMENTS];
    uint16_t seg_align[MSGR_MAX_SEGMENTS];
};

/*
 * Checks and parses a preamble: crc (MSGR_EBAD_CRC), nseg in 1..4 and a
 * non-empty last segment when nseg > 1 (MSGR_EBAD_FRAME), sizes within
 * limits (MSGR_ETOO_BIG). Unknown tags are not an error here.
 */
int msgr_preamble_decode(const uint8_t in[MSGR_PREAMBLE_LEN],
                         const struct msgr_frame_limits *lim,
                         struct msgr_preamble *out);

/* Bytes that follow the preamble on the wire for this frame. */
size_t msgr_frame_body_len(const struct msgr_preamble *p, int rev1);

/*
 * Verifies a complete body (exactly msgr_frame_body_len bytes) and points
 * segs[i] into it (no copy). Returns 0, MSGR_EBAD_CRC, MSGR_EBAD_FRAME (bad
 * late status), or MSGR_EABORTED (the sender revoked the frame: drop it and
 * go on).
 */
int msgr_frame_body_decode(const struct msgr_preamble *p, int rev1,
                           const uint8_t *body, struct msgr_seg *segs);

/* ---- control-frame payloads (PROTOCOL.md §4.2, §4.6) ---- */

/* Growable-free writer over caller storage; overflow sets err. */
struct msgr_wbuf {
    uint8_t *p;
    size_t len, cap;
    int err; /* -ENOBUFS once anything did not fit */
};
void msgr_wbuf_init(struct msgr_wbuf *w, void *buf, size_t cap);
void msgr_put_u8(struct msgr_wbuf *w, uint8_t v);
void msgr_put_u16(struct msgr_wbuf *w, uint16_t v);
void msgr_put_u32(struct msgr_wbuf *w, uint32_t v);
void msgr_put_u64(struct msgr_wbuf *w, uint64_t v);
void msgr_put_bytes(struct msgr_wbuf *w, const void *p, size_t n);
/* entity_addr_t, new (MSG_ADDR2) encoding; 35 bytes for IPv4 */
void msgr_put_addr(struct msgr_wbuf *w, const struct msgr_addr *a);
/* entity_addrvec_t: marker 2, le32 count, addrs */
void msgr_put_addrvec(struct msgr_wbuf *w, const struct msgr_addrvec *v);

/* Reader; any short or malformed read sets err = MSGR_EDECODE and makes
 * later reads return zeros. */
struct msgr_rbuf {
    const uint8_t *p;
    size_t len, off;
    int err;
};
void msgr_rbuf_init(struct msgr_rbuf *r, const void *buf, size_t len);
uint8_t msgr_get_u8(struct msgr_rbuf *r);
uint16_t msgr_get_u16(struct msgr_rbuf *r);
uint32_t msgr_get_u32(struct msgr_rbuf *r);
uint64_t msgr_get_u64(struct msgr_rbuf *r);
/* Points into the buffer (no copy); NULL and err on a short buffer. */
const uint8_t *msgr_get_bytes(struct msgr_rbuf *r, size_t n);
/* Accepts the legacy (marker 0, 136 bytes) and new (marker 1) forms. */
void msgr_get_addr(struct msgr_rbuf *r, struct msgr_addr *a);
/* Accepts markers 0, 1 (single address) and 2 (vector, count bounded by
 * MSGR_ADDRVEC_MAX else err). */
void msgr_get_addrvec(struct msgr_rbuf *r, struct msgr_addrvec *v);

struct msgr_hello {
    uint8_t entity_type;
    struct msgr_addr peer_addr; /* the receiver's address as the sender sees it */
};

#define MSGR_AUTH_NONE  1
#define MSGR_AUTH_CEPHX 2
#define MSGR_CON_MODE_CRC    1
#define MSGR_CON_MODE_SECURE 2
#define MSGR_AUTH_MAX_MODES  8

struct msgr_auth_request {
    uint32_t method;
    uint32_t nmodes;
    uint32_t modes[MSGR_AUTH_MAX_MODES];
    const uint8_t *payload; /* points into the decoded buffer */
    uint32_t payload_len;
};

struct msgr_auth_bad_method {
    uint32_t method;
    int32_t result;
    uint32_t nmethods, nmodes;
    uint32_t methods[MSGR_AUTH_MAX_MODES];
    uint32_t modes[MSGR_AUTH_MAX_MODES];
};

struct msgr_auth_done {
    uint64_t global_id;
    uint32_t con_mode;
    const uint8_t *payload;
    uint32_t payload_len;
};

#define MSGR_IDENT_FLAG_LOSSY 1ull

struct msgr_client_ident {
    struct msgr_addrvec addrs;
    struct msgr_addr target;
    int64_t gid;
    uint64_t global_seq;
    uint64_t features_supported, features_required;
    uint64_t flags;
    uint64_t cookie;
};

struct msgr_server_ident {
    struct msgr_addrvec addrs;
    int64_t gid;
    uint64_t global_seq;
    uint64_t features_supported, features_required;
    uint64_t flags;
    uint64_t cookie;
};

struct msgr_reconnect {
    struct msgr_addrvec addrs;
    uint64_t client_cookie, server_cookie;
    uint64_t global_seq, connect_seq, msg_seq;
};

/* ceph_msg_header2, 41 bytes packed */
struct msgr_header2 {
    uint64_t seq, tid;
    uint16_t type, priority, version;
    uint32_t data_pre_padding_len;
    uint16_t data_off;
    uint64_t ack_seq;
    uint8_t flags;
    uint16_t compat_version;
    uint16_t reserved;
};

/*
 * Encoders write the payload (the single segment of a control frame) into
 * w; decoders parse one and return 0 or MSGR_EDECODE (short, trailing
 * garbage is allowed as Ceph's decoders allow it, counts over bounds).
 */
void msgr_hello_encode(struct msgr_wbuf *w, const struct msgr_hello *h);
int msgr_hello_decode(const void *p, size_t n, struct msgr_hello *h);
void msgr_auth_request_encode(struct msgr_wbuf *w,
                              const struct msgr_auth_request *a);
int msgr_auth_request_decode(const void *p, size_t n,
                             struct msgr_auth_request *a);
void msgr_auth_bad_method_encode(struct msgr_wbuf *w,
                                 const struct msgr_auth_bad_method *a);
int msgr_auth_bad_method_decode(const void *p, size_t n,
                                struct msgr_auth_bad_method *a);
void msgr_auth_done_encode(struct msgr_wbuf *w, const struct msgr_auth_done *a);
int msgr_auth_done_decode(const void *p, size_t n, struct msgr_auth_done *a);
void msgr_client_ident_encode(struct msgr_wbuf *w,
                              const struct msgr_client_ident *c);
int msgr_client_ident_decode(const void *p, size_t n,
                             struct msgr_client_ident *c);
void msgr_server_ident_encode(struct msgr_wbuf *w,
                              const struct msgr_server_ident *s);
int msgr_server_ident_decode(const void *p, size_t n,
                             struct msgr_server_ident *s);
void msgr_reconnect_encode(struct msgr_wbuf *w, const struct msgr_reconnect *r);
int msgr_reconnect_decode(const void *p, size_t n, struct msgr_reconnect *r);
void msgr_header2_encode(uint8_t out[MSGR_HEADER2_LEN],
                         const struct msgr_header2 *h);
int msgr_header2_decode(const void *p, size_t n, struct msgr_header2 *h);

/* Single-field frames: u64 (ACK, SESSION_RETRY, SESSION_RETRY_GLOBAL,
 * SESSION_RECONNECT_OK, IDENT_MISSING_FEATURES), bool (SESSION_RESET),
 * utime (KEEPALIVE2 / KEEPALIVE2_ACK: le32 sec, le32 nsec). */
int msgr_u64_decode(const void *p, size_t n, uint64_t *v);

#endif
