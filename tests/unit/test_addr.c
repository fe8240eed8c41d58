/*
 * Addresses, entity types and error names: text round trips, bad input,
 * Ceph's memcmp ordering, address-vector helpers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "msgr/err.h"
#include "msgr/types.h"

static struct msgr_addr
mkaddr(const char *s)
{
    struct msgr_addr a;
    int rc = msgr_addr_parse(s, &a);
    if (rc != 0)
        fail_msg("cannot parse \"%s\": %d", s, rc);
    return a;
}

static void
assert_formats(const struct msgr_addr *a, const char *want)
{
    char buf[128];
    int n = msgr_addr_format(a, buf, sizeof(buf));
    assert_int_equal(n, (int)strlen(want));
    assert_string_equal(buf, want);
}

static uint64_t
prng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    return x;
}

static int
sign(int v)
{
    return (v > 0) - (v < 0);
}

/* ------------------------------------------------------------------ */

static void
test_entity_types(void **state)
{
    static const struct {
        uint8_t type;
        const char *name;
    } t[] = {
        {MSGR_ENTITY_MON, "mon"}, {MSGR_ENTITY_MDS, "mds"},
        {MSGR_ENTITY_OSD, "osd"}, {MSGR_ENTITY_CLIENT, "client"},
        {MSGR_ENTITY_MGR, "mgr"}, {MSGR_ENTITY_AUTH, "auth"},
        {MSGR_ENTITY_ANY, "any"},
    };

    uint8_t ty = 0x77;
    (void)state;

    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        assert_string_equal(msgr_entity_type_name(t[i].type), t[i].name);
        assert_int_equal(msgr_entity_type_parse(t[i].name, &ty), 0);
        assert_int_equal(ty, t[i].type);
    }
    assert_string_equal(msgr_entity_type_name(0), "unknown");
    assert_string_equal(msgr_entity_type_name(0x40), "unknown");
    ty = 0x77;
    assert_int_equal(msgr_entity_type_parse("OSD", &ty), -EINVAL);
    assert_int_equal(msgr_entity_type_parse("osd.1", &ty), -EINVAL);
    assert_int_equal(msgr_entity_type_parse("", &ty), -EINVAL);
    assert_int_equal(msgr_entity_type_parse("unknown", &ty), -EINVAL);
    assert_int_equal(msgr_entity_type_parse(NULL, &ty), -EINVAL);
    assert_int_equal(ty, 0x77);
}

static void
test_parse_format(void **state)
{
    struct msgr_addr a;
    (void)state;

    a = mkaddr("v2:127.0.0.1:3300/0");
    assert_int_equal(a.type, MSGR_ADDR_MSGR2);
    assert_int_equal(a.family, MSGR_AF_INET);
    assert_int_equal(a.port, 3300);
    assert_int_equal(a.nonce, 0);
    assert_memory_equal(a.ip, "\x7f\x00\x00\x01", 4);
    assert_formats(&a, "v2:127.0.0.1:3300/0");

    a = mkaddr("v1:1.2.3.4:6789/123");
    assert_int_equal(a.type, MSGR_ADDR_LEGACY);
    assert_int_equal(a.nonce, 123);
    assert_formats(&a, "v1:1.2.3.4:6789/123");

    /* no prefix: msgr2, as Ceph's default type */
    a = mkaddr("127.0.0.1:3300");
    assert_int_equal(a.type, MSGR_ADDR_MSGR2);
    assert_formats(&a, "v2:127.0.0.1:3300/0");

    /* a port is optional (Ceph's mon_host accepts bare IPs) */
    a = mkaddr("v2:10.0.0.1");
    assert_int_equal(a.port, 0);
    assert_formats(&a, "v2:10.0.0.1:0/0");
    a = mkaddr("10.0.0.1/7");
    assert_int_equal(a.nonce, 7);

    /* extremes */
    a = mkaddr("v1:255.255.255.255:65535/4294967295");
    assert_int_equal(a.port, 65535);
    assert_int_equal(a.nonce, UINT32_MAX);
    assert_formats(&a, "v1:255.255.255.255:65535/4294967295");

    /* "any:" parses; Ceph prints TYPE_ANY without a prefix */
    a = mkaddr("any:127.0.0.1:0/1982462882");
    assert_int_equal(a.type, MSGR_ADDR_ANY);
    assert_formats(&a, "127.0.0.1:0/1982462882");

    /* TYPE_NONE is "-" both ways */
    a = mkaddr("-");
    assert_int_equal(a.type, MSGR_ADDR_NONE);
    assert_int_equal(a.family, MSGR_AF_UNSPEC);
    assert_formats(&a, "-");

    /* an address-less typed address, worded as Ceph words it */
    memset(&a, 0, sizeof(a));
    a.type = MSGR_ADDR_MSGR2;
    a.nonce = 9;
    assert_formats(&a, "v2:(unrecognized address family 0)/9");
}

static void
test_parse_ipv6(void **state)
{
    static const uint8_t loop6[16] = {[15] = 1};
    struct msgr_addr a;
    (void)state;

    a = mkaddr("any:[::1]:0");
    assert_int_equal(a.type, MSGR_ADDR_ANY);
    assert_int_equal(a.family, MSGR_AF_INET6);
    assert_memory_equal(a.ip, loop6, 16);
    assert_formats(&a, "[::1]:0/0");

    a = mkaddr("v2:[2001:db8::1]:6800/42");
    assert_int_equal(a.port, 6800);
    assert_int_equal(a.nonce, 42);
    assert_int_equal(a.ip[0], 0x20);
    assert_int_equal(a.ip[1], 0x01);
    assert_int_equal(a.ip[15], 1);
    assert_formats(&a, "v2:[2001:db8::1]:6800/42");

    /* inet_ntop's canonical form on output */
    a = mkaddr("v1:[2001:0DB8:0000:0000:0000:0000:0000:0001]:1/2");
    assert_formats(&a, "v1:[2001:db8::1]:1/2");

    /* unbracketed IPv6 is accepted but cannot carry a port (Ceph alike) */
    a = mkaddr("v2:::1");
    assert_int_equal(a.family, MSGR_AF_INET6);
    assert_int_equal(a.port, 0);
    a = mkaddr("fe80::1/5");
    assert_int_equal(a.family, MSGR_AF_INET6);
    assert_int_equal(a.nonce, 5);

    /* IPv4-mapped */
    a = mkaddr("[::ffff:10.1.2.3]:80");
    assert_int_equal(a.family, MSGR_AF_INET6);
    assert_int_equal(a.ip[10], 0xff);
    assert_int_equal(a.ip[12], 10);
    assert_formats(&a, "v2:[::ffff:10.1.2.3]:80/0");

    /* a bracketed dotted quad is IPv4, as in Ceph */
    a = mkaddr("[1.2.3.4]:5");
    assert_int_equal(a.family, MSGR_AF_INET);
    assert_formats(&a, "v2:1.2.3.4:5/0");
}

static void
test_parse_bad(void **state)
{
    static const char *const bad[] = {
        "",
        "v2:",
        "v1:",
        "any:",
        "1.2.3.4:",
        "1.2.3.4:65536",
        "1.2.3.4:99999999999999999999",
        "1.2.3.4:-1",
        "1.2.3.4:+1",
        "1.2.3.4: 1",
        "1.2.3.4/",
        "1.2.3.4/x",
        "1.2.3.4/-1",
        "1.2.3.4:80/4294967296",
        "1.2.3.4:80/1/2",
        "1.2.3.4:80:81",
        "[::1",
        "[::1]x",
        "[::1]:80]",
        "[]:80",
        "[:::]:80",
        "[1.2.3.4.5]:80",
        "999.1.1.1:80",
        "1.2.3",
        "1.2.3.4.5",
        "localhost:80",
        "1.2.3.4:80 ",
        " 1.2.3.4",
        "v3:1.2.3.4",
        "V2:1.2.3.4",
        "v2:v2:1.2.3.4",
        "-x",
        "--",
        "1.2.3.4:0x50",
        "[fe80::1%eth0]:80",
        "[0123456789abcdef0123456789abcdef0123456789abcdef]:1",
    };
    struct msgr_addr a, keep;
    (void)state;

    memset(&keep, 0x5c, sizeof(keep));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        a = keep;
        int rc = msgr_addr_parse(bad[i], &a);
        if (rc != -EINVAL)
            fail_msg("\"%s\" parsed (rc %d)", bad[i], rc);
        /* the output is untouched on failure */
        assert_memory_equal(&a, &keep, sizeof(a));
    }
    assert_int_equal(msgr_addr_parse(NULL, &a), -EINVAL);
}

static void
test_format_truncation(void **state)
{
    struct msgr_addr a = mkaddr("v2:[2001:db8::abcd]:6800/123456");
    char full[128], buf[128];
    (void)state;

    int n = msgr_addr_format(&a, full, sizeof(full));
    assert_int_equal(n, (int)strlen(full));
    assert_int_equal(msgr_addr_format(&a, NULL, 0), n);
    for (int len = 1; len <= n + 1; len++) {
        memset(buf, 'X', sizeof(buf));
        assert_int_equal(msgr_addr_format(&a, buf, (size_t)len), n);
        assert_int_equal(strlen(buf), (size_t)(len - 1 < n ? len - 1 : n));
        assert_memory_equal(buf, full, strlen(buf));
        assert_int_equal(buf[len], 'X'); /* nothing written past len */
    }
}

static void
test_addrvec_format(void **state)
{
    struct msgr_addrvec v;
    char full[256], buf[256];
    const char *want = "[v2:127.0.0.1:3300/0,v1:127.0.0.1:6789/0]";
    (void)state;

    memset(&v, 0, sizeof(v));
    memset(full, 'X', sizeof(full));
    assert_int_equal(msgr_addrvec_format(&v, full, sizeof(full)), 0);
    assert_string_equal(full, "");

    /* one address: no brackets, as Ceph prints it */
    v.n = 1;
    v.v[0] = mkaddr("any:127.0.0.1:0/1982462882");
    assert_int_equal(msgr_addrvec_format(&v, full, sizeof(full)),
                     (int)strlen("127.0.0.1:0/1982462882"));
    assert_string_equal(full, "127.0.0.1:0/1982462882");

    v.n = 2;
    v.v[0] = mkaddr("v2:127.0.0.1:3300/0");
    v.v[1] = mkaddr("v1:127.0.0.1:6789/0");
    int n = msgr_addrvec_format(&v, full, sizeof(full));
    assert_string_equal(full, want);
    assert_int_equal(n, (int)strlen(want));

    v.n = 4;
    v.v[2] = mkaddr("any:[::1]:1/2");
    v.v[3] = mkaddr("-");
    n = msgr_addrvec_format(&v, full, sizeof(full));
    assert_string_equal(
        full, "[v2:127.0.0.1:3300/0,v1:127.0.0.1:6789/0,[::1]:1/2,-]");
    assert_int_equal(n, (int)strlen(full));
    assert_int_equal(msgr_addrvec_format(&v, NULL, 0), n);
    for (int len = 1; len <= n + 1; len++) {
        memset(buf, 'X', sizeof(buf));
        assert_int_equal(msgr_addrvec_format(&v, buf, (size_t)len), n);
        assert_int_equal(strlen(buf), (size_t)(len - 1 < n ? len - 1 : n));
        assert_memory_equal(buf, full, strlen(buf));
        assert_int_equal(buf[len], 'X');
    }
}

static void
test_blank_equal_endpoint(void **state)
{
    struct msgr_addr a, b;
    (void)state;

    assert_true(msgr_addr_is_blank_ip(&(struct msgr_addr){0}));
    a = mkaddr("v2:0.0.0.0:3300/5");
    assert_true(msgr_addr_is_blank_ip(&a));
    a = mkaddr("v2:[::]:3300/5");
    assert_true(msgr_addr_is_blank_ip(&a));
    a = mkaddr("v2:0.0.0.1:3300/5");
    assert_false(msgr_addr_is_blank_ip(&a));
    a = mkaddr("v2:[::1]:3300/5");
    assert_false(msgr_addr_is_blank_ip(&a));

    a = mkaddr("v2:10.0.0.1:3300/5");
    b = mkaddr("v2:10.0.0.1:3300/5");
    assert_true(msgr_addr_equal(&a, &b));
    assert_true(msgr_addr_same_endpoint(&a, &b));

    b = mkaddr("v1:10.0.0.1:3300/6"); /* other type and nonce */
    assert_false(msgr_addr_equal(&a, &b));
    assert_true(msgr_addr_same_endpoint(&a, &b));

    b = mkaddr("v2:10.0.0.1:3301/5");
    assert_false(msgr_addr_equal(&a, &b));
    assert_false(msgr_addr_same_endpoint(&a, &b));

    b = mkaddr("v2:10.0.0.2:3300/5");
    assert_false(msgr_addr_equal(&a, &b));
    assert_false(msgr_addr_same_endpoint(&a, &b));

    /* ::a00:1 holds the same last four bytes, in another family */
    b = mkaddr("v2:[::10.0.0.1]:3300/5");
    assert_false(msgr_addr_same_endpoint(&a, &b));

    /* bytes past the family's address length do not count */
    b = a;
    b.ip[4] = 0xee;
    assert_true(msgr_addr_equal(&a, &b));
}

/*
 * Ceph's order is memcmp over its in-memory entity_addr_t. On a
 * little-endian Linux host we can build that very object from the real
 * socket structs and compare against it.
 */
#if defined(__linux__) && defined(__BYTE_ORDER__) &&                           \
    __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define HAVE_NATIVE_IMAGE 1

struct ceph_entity_addr_image {
    uint32_t type;
    uint32_t nonce;

    union {
        struct sockaddr sa;
        struct sockaddr_in sin;
        struct sockaddr_in6 sin6;
    } u;
};

static int
native_cmp(const struct msgr_addr *a, const struct msgr_addr *b)
{
    struct ceph_entity_addr_image x[2];
    const struct msgr_addr *in[2] = {a, b};
    _Static_assert(sizeof(x[0]) == 36, "entity_addr_t is 36 bytes on Linux");
    memset(x, 0, sizeof(x));
    for (int i = 0; i < 2; i++) {
        x[i].type = in[i]->type;
        x[i].nonce = in[i]->nonce;
        x[i].u.sa.sa_family = in[i]->family;
        if (in[i]->family == MSGR_AF_INET) {
            x[i].u.sin.sin_port = htons(in[i]->port);
            memcpy(&x[i].u.sin.sin_addr, in[i]->ip, 4);
        } else if (in[i]->family == MSGR_AF_INET6) {
            x[i].u.sin6.sin6_port = htons(in[i]->port);
            x[i].u.sin6.sin6_flowinfo = in[i]->flowinfo;
            memcpy(&x[i].u.sin6.sin6_addr, in[i]->ip, 16);
            x[i].u.sin6.sin6_scope_id = in[i]->scope_id;
        }
    }
    return memcmp(&x[0], &x[1], sizeof(x[0]));
}
#else
#define HAVE_NATIVE_IMAGE 0
#endif

static void
test_addr_cmp_order(void **state)
{
    struct msgr_addr a, b;
    (void)state;

    a = mkaddr("v2:10.0.0.1:3300/5");
    b = a;
    assert_int_equal(msgr_addr_cmp(&a, &b), 0);

    /* type first, as little-endian bytes: 0x100 sorts before 1 */
    b.type = MSGR_ADDR_LEGACY;
    assert_true(msgr_addr_cmp(&b, &a) < 0);
    a.type = 0x100;
    b.type = 1;
    assert_true(msgr_addr_cmp(&a, &b) < 0);
    assert_true(msgr_addr_cmp(&b, &a) > 0);

    /* then nonce, also little-endian: 256 sorts before 1 */
    a = mkaddr("v2:10.0.0.1:3300/256");
    b = mkaddr("v2:10.0.0.1:3300/1");
    assert_true(msgr_addr_cmp(&a, &b) < 0);
    /* nonce outranks the IP */
    a = mkaddr("v2:99.0.0.1:3300/1");
    b = mkaddr("v2:1.0.0.1:3300/2");
    assert_true(msgr_addr_cmp(&a, &b) < 0);

    /* then family (le16): IPv4 (2) before IPv6 (10) */
    a = mkaddr("v2:255.255.255.255:65535/0");
    b = mkaddr("v2:[::]:0/0");
    assert_true(msgr_addr_cmp(&a, &b) < 0);

    /* then port, big-endian: numeric order */
    a = mkaddr("v2:10.0.0.1:255/0");
    b = mkaddr("v2:10.0.0.1:256/0");
    assert_true(msgr_addr_cmp(&a, &b) < 0);
    /* port outranks the IP */
    a = mkaddr("v2:10.0.0.9:1/0");
    b = mkaddr("v2:10.0.0.1:2/0");
    assert_true(msgr_addr_cmp(&a, &b) < 0);

    /* then the address bytes in network order */
    a = mkaddr("v2:10.0.0.2:1/0");
    b = mkaddr("v2:10.0.0.10:1/0");
    assert_true(msgr_addr_cmp(&a, &b) < 0);
    a = mkaddr("v2:10.0.1.0:1/0");
    b = mkaddr("v2:10.0.0.255:1/0");
    assert_true(msgr_addr_cmp(&a, &b) > 0);

    /* IPv6: flowinfo sits before the address in sockaddr_in6 */
    a = mkaddr("v2:[::2]:1/0");
    b = mkaddr("v2:[::1]:1/0");
    assert_true(msgr_addr_cmp(&a, &b) > 0);
    b.flowinfo = 1;
    assert_true(msgr_addr_cmp(&a, &b) < 0);
    /* and scope_id after it */
    a = mkaddr("v2:[fe80::1]:1/0");
    b = a;
    b.scope_id = 1;
    assert_true(msgr_addr_cmp(&a, &b) < 0);

    /* the race rule's typical case: two daemons on one host */
    a = mkaddr("v2:127.0.0.1:6800/1000");
    b = mkaddr("v2:127.0.0.1:6801/999");
    assert_true(msgr_addr_cmp(&a, &b) > 0); /* 1000 = e8 03 > e7 03 */
}

static void
test_addr_cmp_random(void **state)
{
    enum { N = 64 };
    struct msgr_addr v[N];
    uint64_t rng = 0x5eed5eed5eedull;
    (void)state;

    /* small value ranges so ties and near-ties are common */
    for (int i = 0; i < N; i++) {
        uint64_t r = prng_next(&rng);
        memset(&v[i], 0, sizeof(v[i]));
        v[i].type = (uint32_t)(r % 4);
        v[i].nonce = (uint32_t)((r >> 8) % 3) * 255;
        v[i].family = (r >> 16) % 3 == 0 ? MSGR_AF_INET6 : MSGR_AF_INET;
        v[i].port = (uint16_t)((r >> 24) % 3 * 255);
        v[i].ip[0] = (uint8_t)((r >> 32) % 2);
        v[i].ip[3] = (uint8_t)((r >> 40) % 2);
        if (v[i].family == MSGR_AF_INET6)
            v[i].ip[15] = (uint8_t)((r >> 48) % 2);
    }
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < N; j++) {
            int c = msgr_addr_cmp(&v[i], &v[j]);
            assert_int_equal(sign(c), -sign(msgr_addr_cmp(&v[j], &v[i])));
            assert_int_equal(c == 0, msgr_addr_equal(&v[i], &v[j]));
#if HAVE_NATIVE_IMAGE
            assert_int_equal(sign(c), sign(native_cmp(&v[i], &v[j])));
#endif
            for (int k = 0; k < N; k += 7)
                if (c < 0 && msgr_addr_cmp(&v[j], &v[k]) < 0)
                    assert_true(msgr_addr_cmp(&v[i], &v[k]) < 0);
        }
    }
}

static void
test_addrvec_helpers(void **state)
{
    struct msgr_addrvec v, w;
    struct msgr_addr x;
    (void)state;

    memset(&v, 0, sizeof(v));
    v.n = 3;
    v.v[0] = mkaddr("v2:127.0.0.1:3300/0");
    v.v[1] = mkaddr("v1:127.0.0.1:6789/0");
    v.v[2] = mkaddr("v2:[::1]:3300/0");

    assert_ptr_equal(msgr_addrvec_find(&v, MSGR_ADDR_MSGR2), &v.v[0]);
    assert_ptr_equal(msgr_addrvec_find(&v, MSGR_ADDR_LEGACY), &v.v[1]);
    assert_null(msgr_addrvec_find(&v, MSGR_ADDR_ANY));
    assert_null(msgr_addrvec_find(&v, MSGR_ADDR_NONE));

    x = mkaddr("v2:[::1]:3300/0");
    assert_true(msgr_addrvec_contains(&v, &x));
    x.nonce = 1;
    assert_false(msgr_addrvec_contains(&v, &x));
    x = mkaddr("any:127.0.0.1:3300/0"); /* type matters */
    assert_false(msgr_addrvec_contains(&v, &x));

    w = v;
    assert_true(msgr_addrvec_equal(&v, &w));
    w.v[2].port = 1;
    assert_false(msgr_addrvec_equal(&v, &w));
    w = v;
    w.n = 2;
    assert_false(msgr_addrvec_equal(&v, &w));
    /* order matters, as in Ceph's vector == */
    w = v;
    w.v[0] = v.v[1];
    w.v[1] = v.v[0];
    assert_false(msgr_addrvec_equal(&v, &w));
    /* slots past n are ignored */
    w = v;
    w.v[3] = mkaddr("1.1.1.1:1");
    assert_true(msgr_addrvec_equal(&v, &w));

    memset(&w, 0, sizeof(w));
    memset(&v, 0, sizeof(v));
    assert_true(msgr_addrvec_equal(&v, &w));
    assert_null(msgr_addrvec_find(&v, MSGR_ADDR_MSGR2));
    assert_false(msgr_addrvec_contains(&v, &x));
}

static void
test_err_names(void **state)
{
    static const struct {
        int code;
        const char *name, *msg;
    } ours[] = {

#define X_(name, value, msg) {MSGR_E##name, #name, msg},
        MSGR_ERR_MAP(X_)
#undef X_
    };

    static const struct {
        int err;
        const char *name, *msg;
    } os[] = {
        {ECONNREFUSED, "ECONNREFUSED", "Connection refused"},
        {ECONNRESET, "ECONNRESET", "Connection reset by peer"},
        {ETIMEDOUT, "ETIMEDOUT", "Connection timed out"},
        {EPIPE, "EPIPE", "Broken pipe"},
        {EAGAIN, "EAGAIN", "Resource temporarily unavailable"},
        {ENOMEM, "ENOMEM", "Cannot allocate memory"},
        {EINVAL, "EINVAL", "Invalid argument"},
        {EADDRINUSE, "EADDRINUSE", "Address already in use"},
        {EHOSTUNREACH, "EHOSTUNREACH", "No route to host"},
        {ENOBUFS, "ENOBUFS", "No buffer space available"},
        {ESHUTDOWN, "ESHUTDOWN",
         "Cannot send after transport endpoint shutdown"},
        {EOPNOTSUPP, "EOPNOTSUPP", "Operation not supported"},
        {ENOTCONN, "ENOTCONN", "Transport endpoint is not connected"},
        {ENETUNREACH, "ENETUNREACH", "Network is unreachable"},
        {EINPROGRESS, "EINPROGRESS", "Operation now in progress"},
        {ECONNABORTED, "ECONNABORTED", "Software caused connection abort"},
        {EBUSY, "EBUSY", "Device or resource busy"},
        {ENOENT, "ENOENT", "No such file or directory"},
    };

    (void)state;

    for (size_t i = 0; i < sizeof(ours) / sizeof(ours[0]); i++) {
        assert_true(ours[i].code < -4000);
        assert_string_equal(msgr_err_name(ours[i].code), ours[i].name);
        assert_string_equal(msgr_strerror(ours[i].code), ours[i].msg);
        for (size_t j = 0; j < i; j++)
            assert_int_not_equal(ours[i].code, ours[j].code);
    }
    assert_string_equal(msgr_err_name(MSGR_EBAD_CRC), "BAD_CRC");
    assert_string_equal(msgr_strerror(MSGR_EBAD_CRC), "frame crc mismatch");
    assert_string_equal(msgr_err_name(MSGR_EDECODE), "DECODE");

    for (size_t i = 0; i < sizeof(os) / sizeof(os[0]); i++) {
        assert_string_equal(msgr_err_name(-os[i].err), os[i].name);
        assert_string_equal(msgr_strerror(-os[i].err), os[i].msg);
    }
    /* errno aliases resolve to their Linux primary names */
    assert_string_equal(msgr_err_name(-EWOULDBLOCK), "EAGAIN");
    assert_string_equal(msgr_err_name(-ENOTSUP), "EOPNOTSUPP");

    assert_string_equal(msgr_err_name(0), "OK");
    assert_string_equal(msgr_strerror(0), "success");
    static const int unknown[] = {1,     ECONNRESET, -4000,   -4099,  -4999,
                                  -9999, -4095,      INT_MIN, INT_MAX};
    for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
        assert_string_equal(msgr_err_name(unknown[i]), "?");
        assert_string_equal(msgr_strerror(unknown[i]), "unknown error");
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_entity_types),
        cmocka_unit_test(test_parse_format),
        cmocka_unit_test(test_parse_ipv6),
        cmocka_unit_test(test_parse_bad),
        cmocka_unit_test(test_format_truncation),
        cmocka_unit_test(test_addrvec_format),
        cmocka_unit_test(test_blank_equal_endpoint),
        cmocka_unit_test(test_addr_cmp_order),
        cmocka_unit_test(test_addr_cmp_random),
        cmocka_unit_test(test_addrvec_helpers),
        cmocka_unit_test(test_err_names),
    };
    return cmocka_run_group_tests_name("addr", tests, NULL, NULL);
}
