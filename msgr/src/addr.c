/*
 * Entity types and addresses: text forms, comparisons and Ceph's ordering.
 *
 * Text forms follow Ceph's operator<< so that our logs line up with a Ceph
 * daemon's: "v2:1.2.3.4:3300/0", "[::1]:0/7" for TYPE_ANY (Ceph prints no
 * prefix for it), "-" for TYPE_NONE, and an address vector of one element
 * printed without brackets.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "msgr/types.h"

static const struct {
    uint8_t type;
    const char *name;
} entity_types[] = {
    {MSGR_ENTITY_MON, "mon"}, {MSGR_ENTITY_MDS, "mds"},
    {MSGR_ENTITY_OSD, "osd"}, {MSGR_ENTITY_CLIENT, "client"},
    {MSGR_ENTITY_MGR, "mgr"}, {MSGR_ENTITY_AUTH, "auth"},
    {MSGR_ENTITY_ANY, "any"},
};

const char *
msgr_entity_type_name(uint8_t type)
{
    for (size_t i = 0; i < sizeof(entity_types) / sizeof(entity_types[0]); i++)
        if (entity_types[i].type == type)
            return entity_types[i].name;
    return "unknown";
}

int
msgr_entity_type_parse(const char *s, uint8_t *type)
{
    size_t n = sizeof(entity_types) / sizeof(entity_types[0]);
    if (s == NULL)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(entity_types[i].name, s) == 0) {
            *type = entity_types[i].type;
            return 0;
        }
    }
    return -EINVAL;
}

static size_t
ip_len(uint16_t family)
{
    switch (family) {
    case MSGR_AF_INET:
        return 4;
    case MSGR_AF_INET6:
        return 16;
    default:
        return 0;
    }
}

/*
 * Strict decimal: at least one digit, no sign, no overflow past max. Ceph
 * uses atoi() here, which silently accepts garbage; a simulator that takes
 * addresses from scenario files is better served by a clear -EINVAL.
 */
static const char *
parse_decimal(const char *p, uint32_t max, uint32_t *out)
{
    uint64_t v = 0;
    const char *start = p;
    while (*p >= '0' && *p <= '9') {
        v = v * 10 + (uint64_t)(*p - '0');
        if (v > max)
            return NULL;
        p++;
    }
    if (p == start)
        return NULL;
    *out = (uint32_t)v;
    return p;
}

/* Copies [p, p+n) into a NUL-terminated buffer for inet_pton. */
static int
copy_host(char *dst, size_t cap, const char *p, size_t n)
{
    if (n == 0 || n >= cap)
        return -1;
    memcpy(dst, p, n);
    dst[n] = '\0';
    return 0;
}

static int
parse_ip(const char *host, struct msgr_addr *a)
{
    if (inet_pton(AF_INET, host, a->ip) == 1) {
        a->family = MSGR_AF_INET;
        return 0;
    }
    if (inet_pton(AF_INET6, host, a->ip) == 1) {
        a->family = MSGR_AF_INET6;
        return 0;
    }
    return -1;
}

int
msgr_addr_parse(const char *s, struct msgr_addr *out)
{
    struct msgr_addr a;
    char host[INET6_ADDRSTRLEN + 1];
    const char *p = s;
    uint32_t v;

    if (s == NULL || out == NULL)
        return -EINVAL;
    memset(&a, 0, sizeof(a));

    if (strcmp(s, "-") == 0) {
        *out = a; /* TYPE_NONE, no address: what Ceph prints as "-" */
        return 0;
    }
    if (strncmp(p, "v1:", 3) == 0) {
        a.type = MSGR_ADDR_LEGACY;
        p += 3;
    } else if (strncmp(p, "v2:", 3) == 0) {
        a.type = MSGR_ADDR_MSGR2;
        p += 3;
    } else if (strncmp(p, "any:", 4) == 0) {
        a.type = MSGR_ADDR_ANY;
        p += 4;
    } else {
        a.type = MSGR_ADDR_MSGR2;
    }

    if (*p == '[') {
        const char *close = strchr(p, ']');
        if (close == NULL ||
            copy_host(host, sizeof(host), p + 1, (size_t)(close - p - 1)) ||
            parse_ip(host, &a))
            return -EINVAL;
        p = close + 1;
    } else {
        /* Dotted quad first, so "1.2.3.4:80" keeps its port; otherwise a
         * bare IPv6 literal, which leaves no room for a port (as in Ceph). */
        size_t n4 = strspn(p, "0123456789.");
        if (copy_host(host, sizeof(host), p, n4) == 0 &&
            inet_pton(AF_INET, host, a.ip) == 1) {
            a.family = MSGR_AF_INET;
            p += n4;
        } else {
            size_t n6 = strspn(p, "0123456789abcdefABCDEF:.");
            if (copy_host(host, sizeof(host), p, n6) ||
                inet_pton(AF_INET6, host, a.ip) != 1)
                return -EINVAL;
            a.family = MSGR_AF_INET6;
            p += n6;
        }
    }

    if (*p == ':') {
        p = parse_decimal(p + 1, 65535, &v);
        if (p == NULL)
            return -EINVAL;
        a.port = (uint16_t)v;
    }
    if (*p == '/') {
        p = parse_decimal(p + 1, UINT32_MAX, &v);
        if (p == NULL)
            return -EINVAL;
        a.nonce = v;
    }
    if (*p != '\0')
        return -EINVAL;
    *out = a;
    return 0;
}

static const char *
addr_type_prefix(uint32_t type)
{
    switch (type) {
    case MSGR_ADDR_LEGACY:
        return "v1:";
    case MSGR_ADDR_MSGR2:
        return "v2:";
    case MSGR_ADDR_ANY:
        return "";
    default:
        return "???:";
    }
}

int
msgr_addr_format(const struct msgr_addr *a, char *buf, size_t len)
{
    char host[INET6_ADDRSTRLEN];
    const char *pre;

    if (a->type == MSGR_ADDR_NONE)
        return snprintf(buf, len, "-");
    pre = addr_type_prefix(a->type);
    switch (a->family) {
    case MSGR_AF_INET:
        if (inet_ntop(AF_INET, a->ip, host, sizeof(host)) == NULL)
            return snprintf(buf, len, "%s?/%u", pre, (unsigned)a->nonce);
        return snprintf(buf, len, "%s%s:%u/%u", pre, host, (unsigned)a->port,
                        (unsigned)a->nonce);
    case MSGR_AF_INET6:
        if (inet_ntop(AF_INET6, a->ip, host, sizeof(host)) == NULL)
            return snprintf(buf, len, "%s?/%u", pre, (unsigned)a->nonce);
        return snprintf(buf, len, "%s[%s]:%u/%u", pre, host, (unsigned)a->port,
                        (unsigned)a->nonce);
    default:
        return snprintf(buf, len, "%s(unrecognized address family %u)/%u", pre,
                        (unsigned)a->family, (unsigned)a->nonce);
    }
}

/* snprintf-style appender: keeps counting past a full buffer so the result
 * is the length that would have been written, as the header promises. */
struct text_sink {
    char *buf;
    size_t len, total;
};

static char *
sink_tail(const struct text_sink *s, size_t *room)
{
    size_t off;
    if (s->len == 0) {
        *room = 0;
        return NULL;
    }
    off = s->total < s->len ? s->total : s->len - 1;
    *room = s->len - off;
    return s->buf + off;
}

static int
sink_add(struct text_sink *s, int r)
{
    if (r < 0)
        return r;
    s->total += (size_t)r;
    return 0;
}

int
msgr_addrvec_format(const struct msgr_addrvec *v, char *buf, size_t len)
{
    struct text_sink s = {buf, len, 0};
    uint32_t n = v->n < MSGR_ADDRVEC_MAX ? v->n : MSGR_ADDRVEC_MAX;
    size_t room;
    char *dst;
    int r;

    if (n == 1)
        return msgr_addr_format(&v->v[0], buf, len);
    if (n == 0)
        return snprintf(buf, len, "%s", "");

    dst = sink_tail(&s, &room);
    if ((r = sink_add(&s, snprintf(dst, room, "["))) < 0)
        return r;
    for (uint32_t i = 0; i < n; i++) {
        if (i > 0) {
            dst = sink_tail(&s, &room);
            if ((r = sink_add(&s, snprintf(dst, room, ","))) < 0)
                return r;
        }
        dst = sink_tail(&s, &room);
        if ((r = sink_add(&s, msgr_addr_format(&v->v[i], dst, room))) < 0)
            return r;
    }
    dst = sink_tail(&s, &room);
    if ((r = sink_add(&s, snprintf(dst, room, "]"))) < 0)
        return r;
    return (int)s.total;
}

int
msgr_addr_is_blank_ip(const struct msgr_addr *a)
{
    size_t n = ip_len(a->family);
    for (size_t i = 0; i < n; i++)
        if (a->ip[i] != 0)
            return 0;
    return 1;
}

int
msgr_addr_same_endpoint(const struct msgr_addr *a, const struct msgr_addr *b)
{
    return a->family == b->family && a->port == b->port &&
           memcmp(a->ip, b->ip, ip_len(a->family)) == 0;
}

int
msgr_addr_equal(const struct msgr_addr *a, const struct msgr_addr *b)
{
    return a->type == b->type && a->nonce == b->nonce &&
           msgr_addr_same_endpoint(a, b);
}

/* sizeof(entity_addr_t) on x86-64 Linux: two u32 and a sockaddr_in6-sized
 * union. */
#define CEPH_ADDR_IMAGE_LEN 36

static void
put_le16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void
put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

/*
 * Rebuilds the bytes Ceph's memcmp sees, so that race resolution picks the
 * same winner as a real daemon would against us. flowinfo and scope_id are
 * "carried verbatim" from sockaddr_in6, i.e. as the host (little-endian)
 * stores those fields.
 */
static void
ceph_addr_image(const struct msgr_addr *a, uint8_t img[CEPH_ADDR_IMAGE_LEN])
{
    memset(img, 0, CEPH_ADDR_IMAGE_LEN);
    put_le32(img + 0, a->type);
    put_le32(img + 4, a->nonce);
    put_le16(img + 8, a->family);
    img[10] = (uint8_t)(a->port >> 8);
    img[11] = (uint8_t)a->port;
    if (a->family == MSGR_AF_INET) {
        memcpy(img + 12, a->ip, 4);
    } else if (a->family == MSGR_AF_INET6) {
        put_le32(img + 12, a->flowinfo);
        memcpy(img + 16, a->ip, 16);
        put_le32(img + 32, a->scope_id);
    }
}

int
msgr_addr_cmp(const struct msgr_addr *a, const struct msgr_addr *b)
{
    uint8_t ia[CEPH_ADDR_IMAGE_LEN], ib[CEPH_ADDR_IMAGE_LEN];
    ceph_addr_image(a, ia);
    ceph_addr_image(b, ib);
    return memcmp(ia, ib, sizeof(ia));
}

int
msgr_addrvec_equal(const struct msgr_addrvec *a, const struct msgr_addrvec *b)
{
    uint32_t n = a->n < MSGR_ADDRVEC_MAX ? a->n : MSGR_ADDRVEC_MAX;
    if (a->n != b->n)
        return 0;
    for (uint32_t i = 0; i < n; i++)
        if (!msgr_addr_equal(&a->v[i], &b->v[i]))
            return 0;
    return 1;
}

const struct msgr_addr *
msgr_addrvec_find(const struct msgr_addrvec *v, uint32_t type)
{
    uint32_t n = v->n < MSGR_ADDRVEC_MAX ? v->n : MSGR_ADDRVEC_MAX;
    for (uint32_t i = 0; i < n; i++)
        if (v->v[i].type == type)
            return &v->v[i];
    return NULL;
}

int
msgr_addrvec_contains(const struct msgr_addrvec *v, const struct msgr_addr *a)
{
    uint32_t n = v->n < MSGR_ADDRVEC_MAX ? v->n : MSGR_ADDRVEC_MAX;
    for (uint32_t i = 0; i < n; i++)
        if (msgr_addr_equal(&v->v[i], a))
            return 1;
    return 0;
}
