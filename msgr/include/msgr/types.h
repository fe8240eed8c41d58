/*
 * Plain value types shared by every msgr module: time, entity names,
 * addresses (Ceph's entity_addr_t / entity_addrvec_t), feature bits.
 *
 * Addresses are our own struct rather than struct sockaddr so that the
 * simulated stack and the wire codec need no socket headers; the posix
 * backend converts at the edge.
 */
#ifndef MSGR_TYPES_H
#define MSGR_TYPES_H

#include <stddef.h>
#include <stdint.h>

typedef uint64_t msgr_time_ns;

#define MSGR_NS_PER_US 1000ull
#define MSGR_NS_PER_MS 1000000ull
#define MSGR_NS_PER_S  1000000000ull

/* Entity types, as on the wire (CEPH_ENTITY_TYPE_*). */
enum msgr_entity_type {
    MSGR_ENTITY_MON = 0x01,
    MSGR_ENTITY_MDS = 0x02,
    MSGR_ENTITY_OSD = 0x04,
    MSGR_ENTITY_CLIENT = 0x08,
    MSGR_ENTITY_MGR = 0x10,
    MSGR_ENTITY_AUTH = 0x20,
    MSGR_ENTITY_ANY = 0xff,
};

struct msgr_entity_name {
    uint8_t type;  /* enum msgr_entity_type */
    int64_t num;   /* -1 for "not yet assigned", like client.-1 */
};

/* "osd", "client", ... ; "unknown" for anything else. */
const char *msgr_entity_type_name(uint8_t type);
/* Parses "osd" etc.; returns 0 and sets *type, or -EINVAL. */
int msgr_entity_type_parse(const char *s, uint8_t *type);

/* entity_addr_t.type */
enum msgr_addr_type {
    MSGR_ADDR_NONE = 0,
    MSGR_ADDR_LEGACY = 1, /* msgr1, "v1:" */
    MSGR_ADDR_MSGR2 = 2,  /* "v2:" */
    MSGR_ADDR_ANY = 3,    /* "any:" */
};

/* Address families as Linux numbers them; these values go on the wire. */
#define MSGR_AF_UNSPEC 0
#define MSGR_AF_INET   2
#define MSGR_AF_INET6  10

struct msgr_addr {
    uint32_t type;   /* enum msgr_addr_type */
    uint32_t nonce;
    uint16_t family; /* MSGR_AF_* ; MSGR_AF_UNSPEC means "no address" */
    uint16_t port;   /* host byte order */
    uint8_t ip[16];  /* network order; 4 bytes used for INET */
    uint32_t flowinfo, scope_id; /* INET6 only, carried verbatim */
};

#define MSGR_ADDRVEC_MAX 4
struct msgr_addrvec {
    uint32_t n;
    struct msgr_addr v[MSGR_ADDRVEC_MAX];
};

/*
 * Parses "v2:127.0.0.1:3300", "v1:1.2.3.4:6789/123", "any:[::1]:0",
 * "127.0.0.1:3300" (type defaults to MSGR2), with an optional "/nonce".
 * Returns 0 or -EINVAL.
 */
int msgr_addr_parse(const char *s, struct msgr_addr *out);
/* Formats like Ceph ("v2:127.0.0.1:3300/0"); returns snprintf's count. */
int msgr_addr_format(const struct msgr_addr *a, char *buf, size_t len);
int msgr_addrvec_format(const struct msgr_addrvec *v, char *buf, size_t len);

/* True when the IP is all zero (a "blank" address waiting to be learned). */
int msgr_addr_is_blank_ip(const struct msgr_addr *a);
/* Equality of type, nonce, family, port and ip. */
int msgr_addr_equal(const struct msgr_addr *a, const struct msgr_addr *b);
/* Same family, port and ip: the "where", ignoring type and nonce. */
int msgr_addr_same_endpoint(const struct msgr_addr *a,
                            const struct msgr_addr *b);
/*
 * Ceph orders addresses for race resolution by memcmp of the in-memory
 * entity_addr_t on x86-64 Linux: le32 type, le32 nonce, then the sockaddr
 * (le16 family, be16 port, address). Returns <0, 0, >0 like memcmp.
 */
int msgr_addr_cmp(const struct msgr_addr *a, const struct msgr_addr *b);

int msgr_addrvec_equal(const struct msgr_addrvec *a,
                       const struct msgr_addrvec *b);
/* The first address of the vector of this type, or NULL. */
const struct msgr_addr *msgr_addrvec_find(const struct msgr_addrvec *v,
                                          uint32_t type);
/* True if v holds an address equal to a (type, nonce, endpoint). */
int msgr_addrvec_contains(const struct msgr_addrvec *v,
                          const struct msgr_addr *a);

/* Ceph feature bits we care about (CEPH_FEATURE_*). */
#define MSGR_FEATURE_NOSRCADDR       (1ull << 1)
#define MSGR_FEATURE_RECONNECT_SEQ   (1ull << 6)
#define MSGR_FEATURE_MSG_AUTH        (1ull << 23)
#define MSGR_FEATURE_MSGR_KEEPALIVE2 (1ull << 42)
#define MSGR_FEATURE_MSG_ADDR2       (1ull << 59)
/*
 * What a Ceph 16.2 daemon advertises (seen in the capture's SERVER_IDENT);
 * we speak every feature that concerns the messenger layer and carry the
 * rest opaquely, so we advertise the same set by default.
 */
#define MSGR_FEATURES_DEFAULT 0x3f01cfbdfffdffffull
/* msgr2 always requires MSG_ADDR2. */
#define MSGR_FEATURES_REQUIRED_V2 MSGR_FEATURE_MSG_ADDR2

/* msgr2 banner feature bits (CEPH_MSGR2_FEATURE_*). */
#define MSGR2_FEATURE_REVISION_1 (1ull << 0)

#endif
