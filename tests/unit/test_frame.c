/*
 * msgr2 frame codec tests: crc vectors, golden frame sizes, round trips,
 * the real Ceph 16.2 capture byte for byte, and hostile input.
 *
 * Every decoder is fed exactly-sized heap copies so that AddressSanitizer
 * (the CI's asan build) turns any read past the end into a failure.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "msgr/err.h"
#include "msgr/types.h"

#ifndef MSGR_SHARED_DIR
#error "MSGR_SHARED_DIR must name the shared reference folder"
#endif
#define TRANSCRIPT_PATH                                                        \
    MSGR_SHARED_DIR "/ceph-wire/msgr2.1-session-transcript.txt"

/* ------------------------------------------------------------------ */
/* helpers                                                             */
/* ------------------------------------------------------------------ */

/* xorshift64: the test's own generator so runs never depend on libc. */
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

static void
prng_fill(uint64_t *s, uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(prng_next(s) >> 32);
}

static uint8_t *
dup_exact(const void *p, size_t n)
{
    /* malloc(0) may return NULL; keep a real allocation so ASan still
     * guards the (empty) buffer's end. */
    uint8_t *d = malloc(n > 0 ? n : 1);
    assert_non_null(d);
    if (n > 0)
        memcpy(d, p, n);
    return d;
}

static size_t
flatten(const struct msgr_frame_out *o, uint8_t *buf, size_t cap)
{
    size_t off = 0;
    for (int i = 0; i < o->iovcnt; i++) {
        assert_true(off + o->iov[i].iov_len <= cap);
        memcpy(buf + off, o->iov[i].iov_base, o->iov[i].iov_len);
        off += o->iov[i].iov_len;
    }
    assert_int_equal(off, o->total);
    return off;
}

static uint32_t
ld32le(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

static void
st32le(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

/* Recomputes a (possibly tampered) preamble's crc so the test reaches the
 * check it means to exercise. */
static void
fix_preamble_crc(uint8_t *pre)
{
    st32le(pre + 28, msgr_crc32c(0, pre, 28));
}

static struct msgr_addr
mkaddr(const char *s)
{
    struct msgr_addr a;
    assert_int_equal(msgr_addr_parse(s, &a), 0);
    return a;
}

/* ------------------------------------------------------------------ */
/* transcript                                                          */
/* ------------------------------------------------------------------ */

#define TRANSCRIPT_MAX_FRAMES 32

struct tframe {
    int c2s;
    char hdr[1024];
    uint8_t *bytes;
    size_t len;
};

struct transcript {
    struct tframe f[TRANSCRIPT_MAX_FRAMES];
    int n;
    char banner[2][256]; /* [0] client's, [1] server's */
    int nbanner;
};

static int
hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static uint8_t *
parse_hex(const char *s, size_t *len)
{
    size_t n = 0, cap = strlen(s) / 2 + 1;
    uint8_t *out = malloc(cap);
    assert_non_null(out);
    while (*s == ' ' || *s == '\t')
        s++;
    while (hexval(s[0]) >= 0 && hexval(s[1]) >= 0) {
        out[n++] = (uint8_t)(hexval(s[0]) << 4 | hexval(s[1]));
        s += 2;
    }
    assert_true(*s == '\0' || *s == '\n' || *s == '\r');
    *len = n;
    return out;
}

#define LINE_MAX_ 8192

static void
load_transcript(struct transcript *t)
{
    char *line = malloc(LINE_MAX_);
    FILE *f = fopen(TRANSCRIPT_PATH, "r");
    struct tframe *pending = NULL;

    if (f == NULL)
        fail_msg("cannot open %s", TRANSCRIPT_PATH);
    assert_non_null(line);
    memset(t, 0, sizeof(*t));
    while (fgets(line, LINE_MAX_, f) != NULL) {
        size_t l = strlen(line);
        assert_true(l < LINE_MAX_ - 1); /* no truncated lines */
        if (pending != NULL) {
            pending->bytes = parse_hex(line, &pending->len);
            pending = NULL;
            continue;
        }
        int c2s = strncmp(line, "[C>S] ", 6) == 0;
        int s2c = strncmp(line, "[S>C] ", 6) == 0;
        if (!c2s && !s2c)
            continue;
        if (strncmp(line + 6, "banner ", 7) == 0) {
            assert_true(t->nbanner < 2);
            snprintf(t->banner[c2s ? 0 : 1], sizeof(t->banner[0]), "%s", line);
            /* the banner line has no hex: its bytes are rebuilt below */
            t->nbanner++;
        } else if (line[6] == '+') {
            assert_true(t->n < TRANSCRIPT_MAX_FRAMES);
            pending = &t->f[t->n++];
            pending->c2s = c2s;
            snprintf(pending->hdr, sizeof(pending->hdr), "%s", line);
        }
    }
    fclose(f);
    free(line);
    assert_null(pending);
}

static void
free_transcript(struct transcript *t)
{
    for (int i = 0; i < t->n; i++)
        free(t->f[i].bytes);
}

/*
 * The value text after the last " key=" in a header line, or NULL. The last
 * one, because "flags=" names the frame's preamble flags first and the
 * IDENT flags after.
 */
static const char *
kv(const char *hdr, const char *key)
{
    char pat[64];
    const char *p, *last = NULL;
    snprintf(pat, sizeof(pat), " %s=", key);
    for (p = strstr(hdr, pat); p != NULL; p = strstr(p + 1, pat))
        last = p;
    return last != NULL ? last + strlen(pat) : NULL;
}

static uint64_t
kv_u64(const char *hdr, const char *key)
{
    const char *v = kv(hdr, key);
    if (v == NULL)
        fail_msg("no %s= in: %s", key, hdr);
    return strtoull(v, NULL, 0);
}

static int64_t
kv_s64(const char *hdr, const char *key)
{
    const char *v = kv(hdr, key);
    if (v == NULL)
        fail_msg("no %s= in: %s", key, hdr);
    return strtoll(v, NULL, 0);
}

/* The frame's tag name: the token after "+offset". */
static void
hdr_tag(const char *hdr, char *out, size_t cap)
{
    const char *p = hdr + 7;
    size_t n = 0;
    while (*p >= '0' && *p <= '9')
        p++;
    while (*p == ' ')
        p++;
    while (p[n] != '\0' && p[n] != ' ' && n + 1 < cap) {
        out[n] = p[n];
        n++;
    }
    out[n] = '\0';
}

/* Parses "[a,b]" or "a" (up to a space) into a vector. */
static void
kv_addrvec(const char *hdr, const char *key, struct msgr_addrvec *v)
{
    const char *p = kv(hdr, key);
    char tok[128];
    memset(v, 0, sizeof(*v));
    assert_non_null(p);
    if (*p == '[')
        p++;
    for (;;) {
        size_t n = strcspn(p, ",] \n");
        assert_true(n > 0 && n < sizeof(tok));
        memcpy(tok, p, n);
        tok[n] = '\0';
        assert_true(v->n < MSGR_ADDRVEC_MAX);
        v->v[v->n++] = mkaddr(tok);
        p += n;
        if (*p != ',')
            break;
        p++;
    }
}

static void
kv_addr(const char *hdr, const char *key, struct msgr_addr *a)
{
    struct msgr_addrvec v;
    kv_addrvec(hdr, key, &v);
    assert_int_equal(v.n, 1);
    *a = v.v[0];
}

/* ------------------------------------------------------------------ */
/* crc                                                                 */
/* ------------------------------------------------------------------ */

static void
test_crc_vectors(void **state)
{
    (void)state;
    assert_int_equal(msgr_crc32c(0, "foo bar baz", 11), 4119623852u);
    assert_int_equal(msgr_crc32c(1234, "foo bar baz", 11), 881700046u);
    assert_int_equal(msgr_crc32c(0, "whiz bang boom", 14), 2360230088u);
    /* RFC 3720's check value needs the standard pre/post inversion. */
    assert_int_equal(~msgr_crc32c(0xffffffffu, "123456789", 9), 0xe3069283u);
    assert_int_equal(msgr_crc32c(0xffffffffu, NULL, 0), 0xffffffffu);
    assert_int_equal(msgr_crc32c(77, "", 0), 77);
}

static void
test_crc_chaining(void **state)
{
    uint8_t buf[1000];
    uint64_t s = 0x9e3779b97f4a7c15ull;
    (void)state;
    prng_fill(&s, buf, sizeof(buf));
    uint32_t whole = msgr_crc32c(0xffffffffu, buf, sizeof(buf));
    for (size_t cut = 0; cut <= sizeof(buf); cut += 37) {
        uint32_t c = msgr_crc32c(0xffffffffu, buf, cut);
        c = msgr_crc32c(c, buf + cut, sizeof(buf) - cut);
        assert_int_equal(c, whole);
    }
}

/* Bit at a time, straight from the definition: reflected Castagnoli
 * polynomial, caller's seed, no inversion. */
static uint32_t
crc_bitwise(uint32_t c, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int b = 0; b < 8; b++)
            c = (c >> 1) ^ (0x82f63b78u & (0u - (c & 1u)));
    }
    return c;
}

/* Every length around the small-buffer cut-over, at odd offsets, several
 * seeds: whichever implementation serves a length, the crc is the same. */
static void
test_crc_all_lengths(void **state)
{
    uint8_t buf[600];
    uint64_t s = 0x243f6a8885a308d3ull;
    const uint32_t seeds[] = {0, 0xffffffffu, 0x12345678u};
    (void)state;
    prng_fill(&s, buf, sizeof(buf));
    for (size_t k = 0; k < sizeof(seeds) / sizeof(seeds[0]); k++)
        for (size_t off = 0; off < 3; off++)
            for (size_t n = 0; n + off <= 560; n++)
                assert_int_equal(msgr_crc32c(seeds[k], buf + off, n),
                                 crc_bitwise(seeds[k], buf + off, n));
}

static void
test_crc_capture(void **state)
{
    struct transcript t;
    (void)state;
    load_transcript(&t);
    assert_true(t.n >= 2);
    /* client HELLO and server HELLO */
    const struct tframe *ch = &t.f[0], *sh = NULL;
    for (int i = 0; i < t.n; i++)
        if (!t.f[i].c2s && t.f[i].bytes[0] == MSGR_TAG_HELLO)
            sh = &t.f[i];
    assert_non_null(sh);
    assert_int_equal(ch->bytes[0], MSGR_TAG_HELLO);
    assert_int_equal(msgr_crc32c(0, ch->bytes, 28), 0x066bbd3fu);
    assert_int_equal(ld32le(ch->bytes + 28), 0x066bbd3fu);
    /* The crc after the 36-byte HELLO payloads, as Ceph wrote them. */
    assert_int_equal(msgr_crc32c(0xffffffffu, ch->bytes + 32, 36), 0x073e887du);
    assert_int_equal(ld32le(ch->bytes + 68), 0x073e887du);
    assert_int_equal(msgr_crc32c(0xffffffffu, sh->bytes + 32, 36), 0x98beecc2u);
    free_transcript(&t);
}

static void
test_tag_names(void **state)
{
    (void)state;
    assert_string_equal(msgr_tag_name(MSGR_TAG_HELLO), "HELLO");
    assert_string_equal(msgr_tag_name(MSGR_TAG_CLIENT_IDENT), "CLIENT_IDENT");
    assert_string_equal(msgr_tag_name(MSGR_TAG_MESSAGE), "MESSAGE");
    assert_string_equal(msgr_tag_name(MSGR_TAG_COMPRESSION_DONE),
                        "COMPRESSION_DONE");
    assert_string_equal(msgr_tag_name(0), "UNKNOWN");
    assert_string_equal(msgr_tag_name(MSGR_TAG_MAX + 1), "UNKNOWN");
    assert_string_equal(msgr_tag_name(255), "UNKNOWN");
    for (unsigned t = 1; t <= MSGR_TAG_MAX; t++)
        assert_string_not_equal(msgr_tag_name(t), "UNKNOWN");
}

/* ------------------------------------------------------------------ */
/* banner                                                              */
/* ------------------------------------------------------------------ */

/* Builds a banner by hand from the transcript's "supported=... required=..."
 * text, independently of msgr_banner_encode. */
static void
banner_from_text(const char *line, uint8_t out[MSGR_BANNER_LEN])
{
    uint64_t sup = kv_u64(line, "supported");
    uint64_t req = kv_u64(line, "required");
    assert_non_null(strstr(line, "(payload 16 bytes)"));
    memcpy(out, "ceph v2\n", 8);
    out[8] = 16;
    out[9] = 0;
    for (int i = 0; i < 8; i++) {
        out[10 + i] = (uint8_t)(sup >> (8 * i));
        out[18 + i] = (uint8_t)(req >> (8 * i));
    }
}

static void
test_banner(void **state)
{
    struct transcript t;
    uint8_t b[MSGR_BANNER_LEN], e[MSGR_BANNER_LEN];
    uint64_t sup, req;
    (void)state;

    load_transcript(&t);
    assert_int_equal(t.nbanner, 2);
    for (int i = 0; i < 2; i++) {
        banner_from_text(t.banner[i], b);
        assert_int_equal(msgr_banner_decode(b, &sup, &req), 0);
        assert_int_equal(sup, MSGR2_FEATURE_REVISION_1);
        assert_int_equal(req, 0);
        msgr_banner_encode(e, sup, req);
        assert_memory_equal(e, b, MSGR_BANNER_LEN);
    }
    free_transcript(&t);

    msgr_banner_encode(b, 0x3, 0x1);
    assert_int_equal(msgr_banner_decode(b, &sup, &req), 0);
    assert_int_equal(sup, 3);
    assert_int_equal(req, 1);

    /* a msgr1 peer */
    memset(b, 0, sizeof(b));
    memcpy(b, MSGR_BANNER_V1_PREFIX, strlen(MSGR_BANNER_V1_PREFIX));
    assert_int_equal(msgr_banner_decode(b, &sup, &req), MSGR_EBAD_BANNER);
    /* wrong prefix, wrong payload length */
    msgr_banner_encode(b, 1, 0);
    b[5] = 'V';
    assert_int_equal(msgr_banner_decode(b, &sup, &req), MSGR_EBAD_BANNER);
    msgr_banner_encode(b, 1, 0);
    b[8] = 17;
    assert_int_equal(msgr_banner_decode(b, &sup, &req), MSGR_EBAD_BANNER);
    msgr_banner_encode(b, 1, 0);
    b[9] = 1;
    assert_int_equal(msgr_banner_decode(b, &sup, &req), MSGR_EBAD_BANNER);
    memset(b, 0, sizeof(b));
    assert_int_equal(msgr_banner_decode(b, &sup, &req), MSGR_EBAD_BANNER);
}

/* ------------------------------------------------------------------ */
/* frames: golden sizes and round trips                                */
/* ------------------------------------------------------------------ */

/* "32/53/0": preamble, each present segment as it sits on the wire (rev1's
 * first segment with its crc), epilogue. */
static void
wire_layout(const struct msgr_preamble *p, int rev1, char *out, size_t cap)
{
    size_t off = 0;
    off += (size_t)snprintf(out + off, cap - off, "%d", MSGR_PREAMBLE_LEN);
    for (unsigned i = 0; i < p->nseg; i++) {
        uint32_t l = p->seg_len[i];
        if (rev1 && i == 0 && l > 0)
            l += 4;
        off += (size_t)snprintf(out + off, cap - off, "/%u", (unsigned)l);
    }
    int epi = rev1 ? (p->nseg > 1 ? MSGR_EPILOGUE_REV1_LEN : 0)
                   : MSGR_EPILOGUE_REV0_LEN;
    snprintf(out + off, cap - off, "/%d", epi);
}

static size_t
expected_wire_len(const uint32_t len[4], int rev1)
{
    size_t sum = 0;
    int n = 1;
    for (int i = 0; i < 4; i++) {
        sum += len[i];
        if (len[i] > 0)
            n = i + 1;
    }
    if (!rev1)
        return 32 + sum + 17;
    return 32 + sum + (len[0] > 0 ? 4 : 0) + (n > 1 ? 13 : 0);
}

#define SEG_MAX   4096
#define FRAME_BUF (32 + 4 * SEG_MAX + 4 + 17)

/*
 * Encodes segments of the given lengths (random contents), checks the
 * iovec references the caller's buffers, flattens, decodes and compares.
 * Writes the decoded layout string to layout.
 */
static void
roundtrip(uint64_t *rng, const uint32_t len[4], int rev1, char *layout,
          size_t layout_cap)
{
    static const uint16_t align[4] = {8, 8, 8, 4096};
    uint8_t(*payload)[SEG_MAX] = malloc(4 * SEG_MAX);
    uint8_t *wire = malloc(FRAME_BUF);
    struct msgr_seg segs[4], back[4];
    struct msgr_frame_out out;
    struct msgr_preamble p;
    int last = 0;

    assert_non_null(payload);
    assert_non_null(wire);
    for (int i = 0; i < 4; i++) {
        assert_true(len[i] <= SEG_MAX);
        prng_fill(rng, payload[i], len[i]);
        segs[i].base = payload[i];
        segs[i].len = len[i];
        segs[i].align = align[i];
        if (len[i] > 0)
            last = i;
    }
    assert_int_equal(msgr_frame_encode(&out, rev1, MSGR_TAG_MESSAGE, segs, 4),
                     0);
    assert_int_equal(out.total, expected_wire_len(len, rev1));

    /* zero copy: every non-empty payload is referenced, not copied */
    for (int i = 0; i < 4; i++) {
        if (len[i] == 0)
            continue;
        int found = 0;
        for (int j = 0; j < out.iovcnt; j++)
            if (out.iov[j].iov_base == (void *)payload[i] &&
                out.iov[j].iov_len == len[i])
                found = 1;
        assert_true(found);
    }

    size_t n = flatten(&out, wire, FRAME_BUF);
    uint8_t *frame = dup_exact(wire, n);
    assert_int_equal(msgr_preamble_decode(frame, NULL, &p), 0);
    assert_int_equal(p.tag, MSGR_TAG_MESSAGE);
    assert_int_equal(p.nseg, last + 1);
    assert_int_equal(msgr_frame_body_len(&p, rev1), n - MSGR_PREAMBLE_LEN);
    for (int i = 0; i < p.nseg; i++)
        assert_int_equal(p.seg_align[i], align[i]);
    for (int i = p.nseg; i < 4; i++) {
        assert_int_equal(p.seg_len[i], 0);
        assert_int_equal(p.seg_align[i], 0);
    }
    assert_int_equal(
        msgr_frame_body_decode(&p, rev1, frame + MSGR_PREAMBLE_LEN, back), 0);
    for (int i = 0; i < 4; i++) {
        if (i >= p.nseg) {
            assert_int_equal(len[i], 0);
            continue;
        }
        assert_int_equal(back[i].len, len[i]);
        assert_int_equal(back[i].align, align[i]);
        if (len[i] > 0) {
            assert_true(back[i].base >= (const void *)frame &&
                        (const uint8_t *)back[i].base + len[i] <= frame + n);
            assert_memory_equal(back[i].base, payload[i], len[i]);
        }
    }
    if (layout != NULL)
        wire_layout(&p, rev1, layout, layout_cap);
    free(frame);
    free(wire);
    free(payload);
}

static void
test_golden_sizes(void **state)
{
    /* PROTOCOL.md §4.4, from Ceph's test_frames_v2.cc */
    static const struct {
        uint32_t len[4];
        const char *rev0, *rev1;
        size_t total0, total1;
    } rows[] = {
        {{0, 0, 0, 0}, "32/0/17", "32/0/0", 49, 32},
        {{1, 0, 0, 0}, "32/1/17", "32/5/0", 50, 37},
        {{48, 0, 0, 0}, "32/48/17", "32/52/0", 97, 84},
        {{49, 0, 0, 0}, "32/49/17", "32/53/0", 98, 85},
        {{0, 101, 0, 0}, "32/0/101/17", "32/0/101/13", 150, 146},
        {{0, 0, 202, 303}, "32/0/0/202/303/17", "32/0/0/202/303/13", 554, 550},
        {{49, 101, 202, 303},
         "32/49/101/202/303/17",
         "32/53/101/202/303/13",
         704,
         704},
    };

    uint64_t rng = 42;
    char layout[128];
    (void)state;

    for (size_t r = 0; r < sizeof(rows) / sizeof(rows[0]); r++) {
        for (int rev1 = 0; rev1 <= 1; rev1++) {
            struct msgr_frame_out out;
            struct msgr_seg segs[4];
            uint8_t buf[4][512];
            memset(buf, 0, sizeof(buf));
            for (int i = 0; i < 4; i++) {
                segs[i].base = buf[i];
                segs[i].len = rows[r].len[i];
                segs[i].align = 8;
            }
            assert_int_equal(
                msgr_frame_encode(&out, rev1, MSGR_TAG_MESSAGE, segs, 4), 0);
            assert_int_equal(out.total, rev1 ? rows[r].total1 : rows[r].total0);

            roundtrip(&rng, rows[r].len, rev1, layout, sizeof(layout));
            assert_string_equal(layout, rev1 ? rows[r].rev1 : rows[r].rev0);
        }
    }
}

static void
test_roundtrip_sweep(void **state)
{
    static const uint32_t sizes[] = {0, 1, 48, 49, 101, 4096};

    enum { NS = sizeof(sizes) / sizeof(sizes[0]) };

    uint64_t rng = 0x1234567887654321ull;
    int frames = 0;
    (void)state;

    for (int a = 0; a < NS; a++)
        for (int b = 0; b < NS; b++)
            for (int c = 0; c < NS; c++)
                for (int d = 0; d < NS; d++)
                    for (int rev1 = 0; rev1 <= 1; rev1++) {
                        uint32_t len[4] = {sizes[a], sizes[b], sizes[c],
                                           sizes[d]};
                        roundtrip(&rng, len, rev1, NULL, 0);
                        frames++;
                    }
    assert_int_equal(frames, NS * NS * NS * NS * 2);
}

static void
test_encode_shapes(void **state)
{
    struct msgr_frame_out out;
    struct msgr_seg segs[4] = {
        {NULL, 0, 8}, {NULL, 0, 8}, {NULL, 0, 8}, {NULL, 0, 4096}};
    uint8_t one = 0x5a;
    (void)state;

    /* An empty frame (WAIT) is one empty segment; only the preamble for
     * rev1, preamble + epilogue with crc 0xffffffff for rev0. */
    assert_int_equal(msgr_frame_encode(&out, 1, MSGR_TAG_WAIT, segs, 1), 0);
    assert_int_equal(out.iovcnt, 1);
    assert_int_equal(out.total, 32);
    assert_int_equal(out.preamble[0], MSGR_TAG_WAIT);
    assert_int_equal(out.preamble[1], 1);
    assert_int_equal(msgr_frame_encode(&out, 0, MSGR_TAG_WAIT, segs, 4), 0);
    assert_int_equal(out.preamble[1], 1);
    assert_int_equal(out.total, 32 + 17);
    assert_int_equal(out.epilogue[0], 0);
    assert_int_equal(ld32le(out.epilogue + 1), 0xffffffffu);
    assert_int_equal(ld32le(out.epilogue + 5), 0);

    /* used-but-empty middle segment: crc of nothing is the seed */
    segs[0].base = &one;
    segs[0].len = 1;
    segs[2].base = &one;
    segs[2].len = 1;
    assert_int_equal(msgr_frame_encode(&out, 1, MSGR_TAG_MESSAGE, segs, 4), 0);
    assert_int_equal(out.preamble[1], 3);
    assert_int_equal(out.epilogue[0], MSGR_FRAME_LATE_STATUS_COMPLETE);
    assert_int_equal(ld32le(out.epilogue + 1), 0xffffffffu);
    assert_int_equal(ld32le(out.epilogue + 5),
                     msgr_crc32c(0xffffffffu, &one, 1));
    assert_int_equal(ld32le(out.epilogue + 9), 0);
    assert_int_equal(ld32le(out.seg1_crc), msgr_crc32c(0xffffffffu, &one, 1));

    assert_int_equal(msgr_frame_encode(&out, 1, MSGR_TAG_ACK, segs, 0),
                     -EINVAL);
    assert_int_equal(msgr_frame_encode(&out, 1, MSGR_TAG_ACK, segs, 5),
                     -EINVAL);
    assert_int_equal(msgr_frame_encode(&out, 1, MSGR_TAG_ACK, segs, -1),
                     -EINVAL);
}

/* ------------------------------------------------------------------ */
/* the real capture                                                    */
/* ------------------------------------------------------------------ */

/* Frames our encoder with the given payload segments and compares with the
 * captured frame. */
static void
assert_reencodes(const struct tframe *f, const struct msgr_seg *s, int nseg)
{
    struct msgr_frame_out out;
    uint8_t wire[2048];
    assert_int_equal(msgr_frame_encode(&out, 1, f->bytes[0], s, nseg), 0);
    size_t n = flatten(&out, wire, sizeof(wire));
    assert_int_equal(n, f->len);
    assert_memory_equal(wire, f->bytes, n);
}

static void
check_payload(const struct msgr_wbuf *w, const struct msgr_seg *s)
{
    assert_int_equal(w->err, 0);
    assert_int_equal(w->len, s->len);
    assert_memory_equal(w->p, s->base, s->len);
}

static void
check_transcript_frame(const struct tframe *f)
{
    struct msgr_preamble p;
    struct msgr_seg segs[4];
    uint8_t pay[512];
    struct msgr_wbuf w;
    char tag[32], segtxt[64], *q;
    uint8_t *frame = dup_exact(f->bytes, f->len);
    const char *h = f->hdr;

    hdr_tag(h, tag, sizeof(tag));
    assert_true(f->len >= MSGR_PREAMBLE_LEN);
    assert_int_equal(msgr_preamble_decode(frame, NULL, &p), 0);
    assert_string_equal(msgr_tag_name(p.tag), tag);
    assert_int_equal(kv_u64(h, "on-wire"), f->len);
    assert_int_equal(msgr_frame_body_len(&p, 1), f->len - MSGR_PREAMBLE_LEN);
    assert_int_equal(msgr_frame_body_decode(&p, 1, frame + 32, segs), 0);

    /* "segs=[41, 48]" */
    q = segtxt;
    for (int i = 0; i < p.nseg; i++) {
        q += sprintf(q, "%s%u", i ? ", " : "[", (unsigned)segs[i].len);
        assert_int_equal(segs[i].align, 8);
    }
    sprintf(q, "]");
    assert_true(strncmp(kv(h, "segs"), segtxt, strlen(segtxt)) == 0);

    msgr_wbuf_init(&w, pay, sizeof(pay));
    switch (p.tag) {
    case MSGR_TAG_HELLO: {
        struct msgr_hello hello;
        assert_int_equal(p.nseg, 1);
        assert_int_equal(msgr_hello_decode(segs[0].base, segs[0].len, &hello),
                         0);
        assert_int_equal(hello.entity_type, kv_u64(h, "entity_type"));
        /* each side tells the other the address it connected to / from */
        struct msgr_addr peer =
            mkaddr(f->c2s ? "v2:127.0.0.1:3300/0" : "v2:127.0.0.1:49698/0");
        assert_true(msgr_addr_equal(&hello.peer_addr, &peer));
        assert_int_equal(hello.entity_type,
                         f->c2s ? MSGR_ENTITY_CLIENT : MSGR_ENTITY_MON);
        msgr_hello_encode(&w, &hello);
        break;
    }
    case MSGR_TAG_AUTH_REQUEST: {
        struct msgr_auth_request a;
        assert_int_equal(
            msgr_auth_request_decode(segs[0].base, segs[0].len, &a), 0);
        assert_int_equal(a.method, kv_u64(h, "method"));
        assert_int_equal(a.method, MSGR_AUTH_NONE);
        assert_int_equal(a.nmodes, 1);
        assert_int_equal(a.modes[0], MSGR_CON_MODE_CRC);
        assert_int_equal(a.payload_len, 22);
        assert_ptr_equal(a.payload, (const uint8_t *)segs[0].base + 16);
        /* auth none: u8 version, le32 entity type (client), string
         * "admin", u64 global_id */
        assert_int_equal(ld32le(a.payload + 1), MSGR_ENTITY_CLIENT);
        assert_int_equal(ld32le(a.payload + 5), 5);
        assert_memory_equal(a.payload + 9, "admin", 5);
        msgr_auth_request_encode(&w, &a);
        break;
    }
    case MSGR_TAG_AUTH_DONE: {
        struct msgr_auth_done a;
        assert_int_equal(msgr_auth_done_decode(segs[0].base, segs[0].len, &a),
                         0);
        assert_int_equal(a.global_id, kv_u64(h, "global_id"));
        assert_int_equal(a.con_mode, kv_u64(h, "con_mode"));
        assert_int_equal(a.global_id, 4107);
        assert_int_equal(a.con_mode, MSGR_CON_MODE_CRC);
        assert_int_equal(a.payload_len, 0);
        msgr_auth_done_encode(&w, &a);
        break;
    }
    case MSGR_TAG_AUTH_SIGNATURE: {
        static const uint8_t zero[32];
        /* auth none: the HMAC is 32 zero bytes */
        assert_int_equal(segs[0].len, 32);
        assert_memory_equal(segs[0].base, zero, 32);
        msgr_put_bytes(&w, zero, sizeof(zero));
        break;
    }
    case MSGR_TAG_CLIENT_IDENT: {
        struct msgr_client_ident c;
        struct msgr_addrvec want;
        struct msgr_addr target;
        assert_int_equal(
            msgr_client_ident_decode(segs[0].base, segs[0].len, &c), 0);
        kv_addrvec(h, "addrs", &want);
        kv_addr(h, "target", &target);
        assert_true(msgr_addrvec_equal(&c.addrs, &want));
        assert_true(msgr_addr_equal(&c.target, &target));
        assert_int_equal(c.gid, kv_s64(h, "gid"));
        assert_int_equal(c.global_seq, kv_u64(h, "global_seq"));
        assert_int_equal(c.features_supported, kv_u64(h, "features"));
        assert_int_equal(c.features_required, kv_u64(h, "required"));
        assert_int_equal(c.flags, kv_u64(h, "flags"));
        assert_int_equal(c.cookie, kv_u64(h, "cookie"));
        /* and the facts the brief calls out, spelled out */
        assert_int_equal(c.addrs.n, 1);
        assert_int_equal(c.addrs.v[0].type, MSGR_ADDR_ANY);
        assert_int_equal(c.addrs.v[0].nonce, 1982462882u);
        assert_int_equal(c.addrs.v[0].port, 0);
        assert_int_equal(c.target.type, MSGR_ADDR_MSGR2);
        assert_int_equal(c.target.port, 3300);
        assert_true(c.gid == -1);
        assert_int_equal(c.global_seq, 1);
        assert_int_equal(c.features_supported, MSGR_FEATURES_DEFAULT);
        assert_int_equal(c.features_required, MSGR_FEATURE_MSG_ADDR2);
        assert_int_equal(c.flags, 0);
        assert_int_equal(c.cookie, 0x7f8955cca49c7f53ull);
        msgr_client_ident_encode(&w, &c);
        break;
    }
    case MSGR_TAG_SERVER_IDENT: {
        struct msgr_server_ident s;
        struct msgr_addrvec want;
        assert_int_equal(
            msgr_server_ident_decode(segs[0].base, segs[0].len, &s), 0);
        kv_addrvec(h, "addrs", &want);
        assert_true(msgr_addrvec_equal(&s.addrs, &want));
        assert_int_equal(s.gid, kv_s64(h, "gid"));
        assert_int_equal(s.global_seq, kv_u64(h, "global_seq"));
        assert_int_equal(s.features_supported, kv_u64(h, "features"));
        assert_int_equal(s.features_required, kv_u64(h, "required"));
        assert_int_equal(s.flags, kv_u64(h, "flags"));
        assert_int_equal(s.cookie, kv_u64(h, "cookie"));
        assert_int_equal(s.addrs.n, 2);
        assert_int_equal(s.addrs.v[0].type, MSGR_ADDR_MSGR2);
        assert_int_equal(s.addrs.v[0].port, 3300);
        assert_int_equal(s.addrs.v[1].type, MSGR_ADDR_LEGACY);
        assert_int_equal(s.addrs.v[1].port, 6789);
        assert_int_equal(s.gid, 0);
        assert_int_equal(s.global_seq, 12);
        assert_int_equal(s.features_supported, 0x3f01cfbdfffdffffull);
        assert_int_equal(s.features_required, 0x0c01020002040000ull);
        assert_int_equal(s.flags, MSGR_IDENT_FLAG_LOSSY);
        assert_int_equal(s.cookie, 0);
        msgr_server_ident_encode(&w, &s);
        break;
    }
    case MSGR_TAG_MESSAGE: {
        struct msgr_header2 m;
        struct msgr_seg re[4] = {{pay, MSGR_HEADER2_LEN, 8},
                                 {NULL, 0, 8},
                                 {NULL, 0, 8},
                                 {NULL, 0, 4096}};
        assert_true(p.nseg >= 1 && p.nseg <= 2);
        assert_int_equal(msgr_header2_decode(segs[0].base, segs[0].len, &m), 0);
        assert_int_equal(segs[0].len, MSGR_HEADER2_LEN);
        assert_int_equal(m.seq, kv_u64(h, "seq"));
        assert_int_equal(m.type, kv_u64(h, "type"));
        assert_int_equal(m.data_pre_padding_len, 0);
        msgr_header2_encode(pay, &m);
        assert_memory_equal(pay, segs[0].base, MSGR_HEADER2_LEN);
        if (p.nseg == 2)
            re[1] = segs[1];
        re[1].align = 8;
        /* four segments in, trailing empties dropped as Ceph does */
        assert_reencodes(f, re, 4);
        free(frame);
        return;
    }
    default:
        fail_msg("unexpected frame in transcript: %s", h);
    }
    check_payload(&w, &segs[0]);
    struct msgr_seg s = {pay, (uint32_t)w.len, 8};
    assert_reencodes(f, &s, 1);
    free(frame);
}

static void
test_transcript(void **state)
{
    static const struct {
        int c2s;
        uint8_t tag;
        uint64_t seq;
        uint16_t type;
    } order[] = {
        /* clang-format off */
        {1, MSGR_TAG_HELLO, 0, 0},
        {1, MSGR_TAG_AUTH_REQUEST, 0, 0},
        {1, MSGR_TAG_AUTH_SIGNATURE, 0, 0},
        {1, MSGR_TAG_CLIENT_IDENT, 0, 0},
        {1, MSGR_TAG_MESSAGE, 1, 0x0005}, /* MON_GET_MAP */
        {1, MSGR_TAG_MESSAGE, 2, 0x000f}, /* MON_SUBSCRIBE */
        {0, MSGR_TAG_HELLO, 0, 0},
        {0, MSGR_TAG_AUTH_DONE, 0, 0},
        {0, MSGR_TAG_AUTH_SIGNATURE, 0, 0},
        {0, MSGR_TAG_SERVER_IDENT, 0, 0},
        {0, MSGR_TAG_MESSAGE, 1, 0x0004}, /* MON_MAP */
        {0, MSGR_TAG_MESSAGE, 2, 0x003e}, /* CONFIG */
        {0, MSGR_TAG_MESSAGE, 3, 0x0004}, /* MON_MAP */
        /* clang-format on */
    };
    struct transcript t;
    size_t c2s_bytes = 26, s2c_bytes = 26; /* banners */
    (void)state;

    load_transcript(&t);
    assert_int_equal(t.n, (int)(sizeof(order) / sizeof(order[0])));
    for (int i = 0; i < t.n; i++) {
        const struct tframe *f = &t.f[i];
        assert_int_equal(f->c2s, order[i].c2s);
        assert_int_equal(f->bytes[0], order[i].tag);
        /* "+N" is the frame's offset in its direction's byte stream */
        assert_int_equal(strtoull(f->hdr + 7, NULL, 10),
                         f->c2s ? c2s_bytes : s2c_bytes);
        if (f->c2s)
            c2s_bytes += f->len;
        else
            s2c_bytes += f->len;
        if (order[i].tag == MSGR_TAG_MESSAGE) {
            struct msgr_header2 m;
            assert_int_equal(
                msgr_header2_decode(f->bytes + 32, MSGR_HEADER2_LEN, &m), 0);
            assert_int_equal(m.seq, order[i].seq);
            assert_int_equal(m.type, order[i].type);
        }
        check_transcript_frame(f);
    }
    /* "client->server 614 bytes, server->client 1061 bytes" */
    assert_int_equal(c2s_bytes, 614);
    assert_int_equal(s2c_bytes, 1061);
    free_transcript(&t);
}

/* ------------------------------------------------------------------ */
/* address encodings                                                   */
/* ------------------------------------------------------------------ */

static void
test_addr_encoding(void **state)
{
    /* CLIENT_IDENT's target in the capture */
    static const uint8_t v4[] = {
        0x01, 0x01, 0x01, 0x1c, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x02, 0x00, 0x0c, 0xe4, 0x7f,
        0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
    uint8_t buf[256];
    struct msgr_wbuf w;
    struct msgr_rbuf r;
    struct msgr_addr a = mkaddr("v2:127.0.0.1:3300/0"), b;
    (void)state;

    msgr_wbuf_init(&w, buf, sizeof(buf));
    msgr_put_addr(&w, &a);
    assert_int_equal(w.err, 0);
    assert_int_equal(w.len, 35);
    assert_memory_equal(buf, v4, sizeof(v4));

    /* IPv6 with flowinfo and scope carried through: 12 + 28 + 7 = 47 */
    a = mkaddr("v1:[fe80::1:2]:6789/77");
    a.flowinfo = 0x01020304;
    a.scope_id = 3;
    msgr_wbuf_init(&w, buf, sizeof(buf));
    msgr_put_addr(&w, &a);
    assert_int_equal(w.len, 47);
    assert_int_equal(ld32le(buf + 3), 12 + 28);
    assert_int_equal(ld32le(buf + 15), 28);
    assert_int_equal(buf[19], 10); /* family, little-endian */
    assert_int_equal(buf[20], 0);
    assert_int_equal(buf[21], 0x1a); /* port 6789, big-endian */
    assert_int_equal(buf[22], 0x85);
    msgr_rbuf_init(&r, buf, w.len);
    msgr_get_addr(&r, &b);
    assert_int_equal(r.err, 0);
    assert_int_equal(r.off, 47);
    assert_true(msgr_addr_equal(&a, &b));
    assert_int_equal(b.flowinfo, 0x01020304);
    assert_int_equal(b.scope_id, 3);

    /* No address: Ceph sizes AF_UNSPEC as the whole 28-byte union. */
    memset(&a, 0, sizeof(a));
    a.type = MSGR_ADDR_ANY;
    a.nonce = 5;
    msgr_wbuf_init(&w, buf, sizeof(buf));
    msgr_put_addr(&w, &a);
    assert_int_equal(w.len, 47);
    assert_int_equal(ld32le(buf + 15), 28);
    msgr_rbuf_init(&r, buf, w.len);
    msgr_get_addr(&r, &b);
    assert_int_equal(r.err, 0);
    assert_true(msgr_addr_equal(&a, &b));
    assert_int_equal(b.family, MSGR_AF_UNSPEC);

    /* ... while elen 0 (what a minimal encoder would send) decodes too */
    static const uint8_t none0[] = {1, 1, 1, 12, 0, 0, 0, 3, 0, 0,
                                    0, 5, 0, 0,  0, 0, 0, 0, 0};
    msgr_rbuf_init(&r, none0, sizeof(none0));
    msgr_get_addr(&r, &b);
    assert_int_equal(r.err, 0);
    assert_int_equal(r.off, sizeof(none0));
    assert_true(msgr_addr_equal(&a, &b));

    /* a newer struct_v may append fields inside its length: skipped */
    msgr_wbuf_init(&w, buf, sizeof(buf));
    a = mkaddr("v2:10.1.2.3:6800/9");
    msgr_put_addr(&w, &a);
    buf[1] = 2;
    st32le(buf + 3, ld32le(buf + 3) + 3);
    buf[35] = 0xaa;
    buf[36] = 0xbb;
    buf[37] = 0xcc;
    buf[38] = 0x99; /* next field */
    msgr_rbuf_init(&r, buf, 39);
    msgr_get_addr(&r, &b);
    assert_int_equal(r.err, 0);
    assert_true(msgr_addr_equal(&a, &b));
    assert_int_equal(msgr_get_u8(&r), 0x99);

    /* partial sockaddr (family + port only) is allowed, as in Ceph */
    static const uint8_t part[] = {1, 1, 1, 16, 0, 0, 0, 2, 0, 0,    0,   0,
                                   0, 0, 0, 4,  0, 0, 0, 2, 0, 0x0c, 0xe4};
    msgr_rbuf_init(&r, part, sizeof(part));
    msgr_get_addr(&r, &b);
    assert_int_equal(r.err, 0);
    assert_int_equal(b.family, MSGR_AF_INET);
    assert_int_equal(b.port, 3300);
    assert_true(msgr_addr_is_blank_ip(&b));
}

/* 136-byte legacy form: le32 0, le32 nonce, sockaddr_storage with the
 * family big-endian. */
static void
build_legacy(uint8_t out[136], uint16_t family, uint16_t port,
             const uint8_t *ip, uint32_t nonce)
{
    memset(out, 0, 136);
    st32le(out + 4, nonce);
    out[8] = (uint8_t)(family >> 8);
    out[9] = (uint8_t)family;
    out[10] = (uint8_t)(port >> 8);
    out[11] = (uint8_t)port;
    if (family == MSGR_AF_INET)
        memcpy(out + 12, ip, 4);
    else if (family == MSGR_AF_INET6)
        memcpy(out + 16, ip, 16);
}

static void
test_addr_legacy(void **state)
{
    static const uint8_t ip4[4] = {192, 168, 1, 7};
    static const uint8_t ip6[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 1};
    uint8_t b[1 + 136 + 1];
    struct msgr_rbuf r;
    struct msgr_addr a;
    struct msgr_addrvec v;
    (void)state;

    build_legacy(b, MSGR_AF_INET, 6789, ip4, 4242);
    msgr_rbuf_init(&r, b, 136);
    msgr_get_addr(&r, &a);
    assert_int_equal(r.err, 0);
    assert_int_equal(r.off, 136);
    assert_int_equal(a.type, MSGR_ADDR_LEGACY);
    assert_int_equal(a.nonce, 4242);
    assert_int_equal(a.family, MSGR_AF_INET);
    assert_int_equal(a.port, 6789);
    assert_memory_equal(a.ip, ip4, 4);

    build_legacy(b, MSGR_AF_INET6, 1, ip6, 1);
    msgr_rbuf_init(&r, b, 136);
    msgr_get_addrvec(&r, &v); /* marker 0: a single legacy addr */
    assert_int_equal(r.err, 0);
    assert_int_equal(v.n, 1);
    assert_int_equal(v.v[0].family, MSGR_AF_INET6);
    assert_memory_equal(v.v[0].ip, ip6, 16);

    build_legacy(b, MSGR_AF_UNSPEC, 0, NULL, 0);
    msgr_rbuf_init(&r, b, 136);
    msgr_get_addr(&r, &a);
    assert_int_equal(r.err, 0);
    assert_int_equal(a.type, MSGR_ADDR_NONE);

    build_legacy(b, 1 /* AF_UNIX */, 0, NULL, 0);
    msgr_rbuf_init(&r, b, 136);
    msgr_get_addr(&r, &a);
    assert_int_equal(r.err, MSGR_EDECODE);

    build_legacy(b, MSGR_AF_INET, 6789, ip4, 4242);
    for (size_t n = 0; n < 136; n++) {
        uint8_t *d = dup_exact(b, n);
        msgr_rbuf_init(&r, d, n);
        msgr_get_addr(&r, &a);
        assert_int_equal(r.err, MSGR_EDECODE);
        free(d);
    }
}

static void
test_addr_malformed(void **state)
{
    uint8_t buf[64];
    struct msgr_wbuf w;
    struct msgr_rbuf r;
    struct msgr_addr a = mkaddr("v2:127.0.0.1:3300/0"), b;
    struct msgr_addrvec v;
    (void)state;

    msgr_wbuf_init(&w, buf, sizeof(buf));
    msgr_put_addr(&w, &a);
    assert_int_equal(w.len, 35);

#define EXPECT_ADDR_FAILS(mutate)                                              \
    do {                                                                       \
        uint8_t m_[35];                                                        \
        memcpy(m_, buf, 35);                                                   \
        mutate;                                                                \
        uint8_t *d_ = dup_exact(m_, 35);                                       \
        msgr_rbuf_init(&r, d_, 35);                                            \
        msgr_get_addr(&r, &b);                                                 \
        assert_int_equal(r.err, MSGR_EDECODE);                                 \
        free(d_);                                                              \
    } while (0)

    EXPECT_ADDR_FAILS(m_[0] = 2);                   /* marker */
    EXPECT_ADDR_FAILS(m_[0] = 0xff);                /* marker */
    EXPECT_ADDR_FAILS(m_[2] = 2);                   /* compat too new */
    EXPECT_ADDR_FAILS(st32le(m_ + 3, 29));          /* struct past end */
    EXPECT_ADDR_FAILS(st32le(m_ + 3, 0xffffffffu)); /* struct past end */
    EXPECT_ADDR_FAILS(st32le(m_ + 3, 11));          /* elen outside struct */
    EXPECT_ADDR_FAILS(st32le(m_ + 15, 1));          /* elen < family */
    EXPECT_ADDR_FAILS(st32le(m_ + 15, 17));         /* past sockaddr_in */
    EXPECT_ADDR_FAILS(st32le(m_ + 15, 0x7fffffff)); /* absurd */
    EXPECT_ADDR_FAILS(m_[19] = 1);                  /* AF_UNIX */
    EXPECT_ADDR_FAILS(m_[20] = 2);                  /* family 0x202 */
#undef EXPECT_ADDR_FAILS

    /* sockaddr longer than its family allows, with the bytes present so
     * only the length check stands between them and the 28-byte image */
    static const struct {
        uint16_t family;
        uint32_t elen;
        int ok;
    } over[] = {
        {MSGR_AF_INET, 16, 1},   {MSGR_AF_INET, 17, 0},
        {MSGR_AF_INET, 28, 0},   {MSGR_AF_INET6, 28, 1},
        {MSGR_AF_INET6, 29, 0},  {MSGR_AF_INET6, 40, 0},
        {MSGR_AF_UNSPEC, 28, 1}, {MSGR_AF_UNSPEC, 29, 0},
        {MSGR_AF_UNSPEC, 2, 1},  {MSGR_AF_INET6, 3, 1},
    };

    for (size_t i = 0; i < sizeof(over) / sizeof(over[0]); i++) {
        uint8_t raw[64];
        size_t len = 19 + over[i].elen;
        memset(raw, 0, sizeof(raw));
        raw[0] = raw[1] = raw[2] = 1;
        st32le(raw + 3, 12 + over[i].elen);
        st32le(raw + 7, MSGR_ADDR_MSGR2);
        st32le(raw + 15, over[i].elen);
        raw[19] = (uint8_t)over[i].family;
        uint8_t *d = dup_exact(raw, len);
        msgr_rbuf_init(&r, d, len);
        msgr_get_addr(&r, &b);
        assert_int_equal(r.err, over[i].ok ? 0 : MSGR_EDECODE);
        if (over[i].ok) {
            assert_int_equal(r.off, len);
            assert_int_equal(b.family, over[i].family);
        }
        free(d);
    }

    /* addrvec markers and counts */
    static const uint8_t bad_marker[] = {3, 1, 0, 0, 0};
    msgr_rbuf_init(&r, bad_marker, sizeof(bad_marker));
    msgr_get_addrvec(&r, &v);
    assert_int_equal(r.err, MSGR_EDECODE);
    assert_int_equal(v.n, 0);

    uint8_t vec[1 + 4 + 5 * 35];
    vec[0] = 2;
    for (int i = 0; i < 5; i++)
        memcpy(vec + 5 + 35 * i, buf, 35);
    for (uint32_t count = 0; count <= 5; count++) {
        st32le(vec + 1, count);
        msgr_rbuf_init(&r, vec, sizeof(vec));
        msgr_get_addrvec(&r, &v);
        if (count <= MSGR_ADDRVEC_MAX) {
            assert_int_equal(r.err, 0);
            assert_int_equal(v.n, count);
            assert_int_equal(r.off, 5 + 35 * count);
        } else {
            assert_int_equal(r.err, MSGR_EDECODE);
            assert_int_equal(v.n, 0);
        }
    }
    st32le(vec + 1, 0xffffffffu);
    msgr_rbuf_init(&r, vec, sizeof(vec));
    msgr_get_addrvec(&r, &v);
    assert_int_equal(r.err, MSGR_EDECODE);

    /* marker 1: a single new-format address as a vector */
    msgr_rbuf_init(&r, buf, 35);
    msgr_get_addrvec(&r, &v);
    assert_int_equal(r.err, 0);
    assert_int_equal(v.n, 1);
    assert_true(msgr_addr_equal(&v.v[0], &a));

    /* encoding an over-long vector is refused, not truncated */
    struct msgr_addrvec big;
    memset(&big, 0, sizeof(big));
    big.n = MSGR_ADDRVEC_MAX + 1;
    msgr_wbuf_init(&w, buf, sizeof(buf));
    msgr_put_addrvec(&w, &big);
    assert_int_not_equal(w.err, 0);
    assert_int_equal(w.len, 0);
}

/* ------------------------------------------------------------------ */
/* reader / writer                                                     */
/* ------------------------------------------------------------------ */

static void
test_rbuf_wbuf(void **state)
{
    uint8_t buf[16];
    struct msgr_wbuf w;
    struct msgr_rbuf r;
    (void)state;

    msgr_wbuf_init(&w, buf, 11);
    msgr_put_u8(&w, 0x11);
    msgr_put_u16(&w, 0x2233);
    msgr_put_u64(&w, 0x0102030405060708ull);
    assert_int_equal(w.err, 0);
    assert_int_equal(w.len, 11);
    msgr_put_u8(&w, 0);
    assert_int_equal(w.err, -ENOBUFS);
    assert_int_equal(w.len, 11);
    msgr_put_u8(&w, 0); /* stays failed, writes nothing */
    assert_int_equal(w.len, 11);
    static const uint8_t want[] = {0x11, 0x33, 0x22, 8, 7, 6, 5, 4, 3, 2, 1};
    assert_memory_equal(buf, want, sizeof(want));

    /* a field that only partly fits is not written at all */
    memset(buf, 0xee, sizeof(buf));
    msgr_wbuf_init(&w, buf, 6);
    msgr_put_u32(&w, 0xaabbccdd);
    msgr_put_u32(&w, 0x11223344);
    assert_int_equal(w.err, -ENOBUFS);
    assert_int_equal(w.len, 4);
    assert_int_equal(buf[4], 0xee);

    msgr_wbuf_init(&w, NULL, 100);
    msgr_put_bytes(&w, "", 0);
    assert_int_equal(w.err, 0);
    msgr_put_u8(&w, 1);
    assert_int_equal(w.err, -ENOBUFS);

    msgr_rbuf_init(&r, want, sizeof(want));
    assert_int_equal(msgr_get_u8(&r), 0x11);
    assert_int_equal(msgr_get_u16(&r), 0x2233);
    assert_int_equal(msgr_get_u32(&r), 0x05060708);
    assert_null(msgr_get_bytes(&r, 5)); /* only 4 left */
    assert_int_equal(r.err, MSGR_EDECODE);
    /* poisoned: later reads give zeros even though bytes remain */
    assert_int_equal(msgr_get_u8(&r), 0);
    assert_int_equal(msgr_get_u32(&r), 0);
    assert_int_equal(r.off, 7);

    msgr_rbuf_init(&r, want, sizeof(want));
    assert_int_equal(msgr_get_u64(&r), 0x0405060708223311ull);
    assert_int_equal(r.off, 8);
    assert_non_null(msgr_get_bytes(&r, 0));
    assert_int_equal(r.err, 0);
}

/* ------------------------------------------------------------------ */
/* control payloads: round trips                                       */
/* ------------------------------------------------------------------ */

static void
test_control_roundtrip(void **state)
{
    uint8_t buf[512];
    struct msgr_wbuf w;
    (void)state;

    struct msgr_auth_bad_method bm =
                                    {
                                        .method = MSGR_AUTH_CEPHX,
                                        .result = -EOPNOTSUPP,
                                        .nmethods = 2,
                                        .nmodes = 2,
                                        .methods = {MSGR_AUTH_CEPHX,
                                                    MSGR_AUTH_NONE},
                                        .modes = {MSGR_CON_MODE_SECURE,
                                                  MSGR_CON_MODE_CRC},
                                    },
                                bm2;
    msgr_wbuf_init(&w, buf, sizeof(buf));
    msgr_auth_bad_method_encode(&w, &bm);
    assert_int_equal(w.err, 0);
    assert_int_equal(w.len, 4 + 4 + 4 + 8 + 4 + 8);
    assert_int_equal(msgr_auth_bad_method_decode(buf, w.len, &bm2), 0);
    assert_int_equal(bm2.method, MSGR_AUTH_CEPHX);
    assert_int_equal(bm2.result, -EOPNOTSUPP);
    assert_int_equal(bm2.nmethods, 2);
    assert_int_equal(bm2.methods[1], MSGR_AUTH_NONE);
    assert_int_equal(bm2.nmodes, 2);
    assert_int_equal(bm2.modes[0], MSGR_CON_MODE_SECURE);

    struct msgr_reconnect rc = {.client_cookie = 0x1122334455667788ull,
                                .server_cookie = 9,
                                .global_seq = 10,
                                .connect_seq = 11,
                                .msg_seq = 12},
                          rc2;
    rc.addrs.n = 2;
    rc.addrs.v[0] = mkaddr("v2:[::1]:3300/5");
    rc.addrs.v[1] = mkaddr("v1:127.0.0.1:6789/5");
    msgr_wbuf_init(&w, buf, sizeof(buf));
    msgr_reconnect_encode(&w, &rc);
    assert_int_equal(w.err, 0);
    assert_int_equal(w.len, 1 + 4 + 47 + 35 + 5 * 8);
    assert_int_equal(msgr_reconnect_decode(buf, w.len, &rc2), 0);
    assert_true(msgr_addrvec_equal(&rc.addrs, &rc2.addrs));
    assert_int_equal(rc2.client_cookie, rc.client_cookie);
    assert_int_equal(rc2.server_cookie, 9);
    assert_int_equal(rc2.global_seq, 10);
    assert_int_equal(rc2.connect_seq, 11);
    assert_int_equal(rc2.msg_seq, 12);

    struct msgr_header2 h = {.seq = 1ull << 40,
                             .tid = 7,
                             .type = 0x3e,
                             .priority = 196,
                             .version = 2,
                             .data_pre_padding_len = 0,
                             .data_off = 0x1234,
                             .ack_seq = 99,
                             .flags = 3,
                             .compat_version = 1,
                             .reserved = 0},
                        h2;
    uint8_t hb[MSGR_HEADER2_LEN];
    msgr_header2_encode(hb, &h);
    assert_int_equal(hb[36], 3);
    assert_int_equal(hb[37], 1);
    assert_int_equal(msgr_header2_decode(hb, sizeof(hb), &h2), 0);
    assert_int_equal(h2.seq, h.seq);
    assert_int_equal(h2.tid, h.tid);
    assert_int_equal(h2.type, h.type);
    assert_int_equal(h2.priority, h.priority);
    assert_int_equal(h2.version, h.version);
    assert_int_equal(h2.data_pre_padding_len, h.data_pre_padding_len);
    assert_int_equal(h2.data_off, h.data_off);
    assert_int_equal(h2.ack_seq, h.ack_seq);
    assert_int_equal(h2.flags, h.flags);
    assert_int_equal(h2.compat_version, h.compat_version);
    assert_int_equal(h2.reserved, h.reserved);
    assert_int_equal(msgr_header2_decode(hb, sizeof(hb) - 1, &h2),
                     MSGR_EDECODE);

    uint64_t v;
    static const uint8_t u[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    assert_int_equal(msgr_u64_decode(u, 9, &v), 0); /* trailing allowed */
    assert_int_equal(v, 0x0807060504030201ull);

    /* every mode slot in use, and one too many refused on encode */
    struct msgr_auth_request ar = {.method = 2, .nmodes = MSGR_AUTH_MAX_MODES},
                             ar2;
    for (int i = 0; i < MSGR_AUTH_MAX_MODES; i++)
        ar.modes[i] = (uint32_t)i;
    msgr_wbuf_init(&w, buf, sizeof(buf));
    msgr_auth_request_encode(&w, &ar);
    assert_int_equal(w.err, 0);
    assert_int_equal(msgr_auth_request_decode(buf, w.len, &ar2), 0);
    assert_int_equal(ar2.nmodes, MSGR_AUTH_MAX_MODES);
    assert_int_equal(ar2.modes[7], 7);
    assert_int_equal(ar2.payload_len, 0);
    ar.nmodes = MSGR_AUTH_MAX_MODES + 1;
    msgr_wbuf_init(&w, buf, sizeof(buf));
    msgr_auth_request_encode(&w, &ar);
    assert_int_not_equal(w.err, 0);

    /* a too-small buffer fails cleanly */
    struct msgr_client_ident ci;
    memset(&ci, 0, sizeof(ci));
    ci.addrs.n = 1;
    ci.addrs.v[0] = mkaddr("any:127.0.0.1:0/1");
    msgr_wbuf_init(&w, buf, 10);
    msgr_client_ident_encode(&w, &ci);
    assert_int_equal(w.err, -ENOBUFS);
    assert_true(w.len <= 10);
}

/* ------------------------------------------------------------------ */
/* malformed frames                                                    */
/* ------------------------------------------------------------------ */

static void
encode_flat(int rev1, const uint32_t len[4], uint8_t *wire, size_t cap,
            size_t *n)
{
    uint8_t data[4][256];
    struct msgr_seg segs[4];
    struct msgr_frame_out out;
    for (int i = 0; i < 4; i++) {
        memset(data[i], 0x30 + i, sizeof(data[i]));
        assert_true(len[i] <= sizeof(data[i]));
        segs[i].base = data[i];
        segs[i].len = len[i];
        segs[i].align = 8;
    }
    assert_int_equal(msgr_frame_encode(&out, rev1, MSGR_TAG_MESSAGE, segs, 4),
                     0);
    *n = flatten(&out, wire, cap);
}

/* Decodes preamble and body of a flat frame; returns the first error. */
static int
decode_flat(int rev1, const uint8_t *wire, size_t n)
{
    struct msgr_preamble p;
    struct msgr_seg segs[4];
    uint8_t *d = dup_exact(wire, n);
    int rc = msgr_preamble_decode(d, NULL, &p);
    if (rc == 0) {
        assert_int_equal(msgr_frame_body_len(&p, rev1), n - 32);
        rc = msgr_frame_body_decode(&p, rev1, d + 32, segs);
    }
    free(d);
    return rc;
}

static void
test_preamble_malformed(void **state)
{
    uint8_t wire[1024], pre[32];
    size_t n;
    struct msgr_preamble p;
    struct msgr_frame_limits lim;
    static const uint32_t len[4] = {41, 100, 0, 7};
    (void)state;

    encode_flat(1, len, wire, sizeof(wire), &n);
    assert_int_equal(decode_flat(1, wire, n), 0);

    /* any flipped bit in the preamble, crc included, is caught */
    for (int i = 0; i < 32; i++) {
        for (int bit = 0; bit < 8; bit++) {
            memcpy(pre, wire, 32);
            pre[i] ^= (uint8_t)(1u << bit);
            assert_int_equal(msgr_preamble_decode(pre, NULL, &p),
                             MSGR_EBAD_CRC);
        }
    }

    /* segment counts */
    memcpy(pre, wire, 32);
    pre[1] = 0;
    fix_preamble_crc(pre);
    assert_int_equal(msgr_preamble_decode(pre, NULL, &p), MSGR_EBAD_FRAME);
    pre[1] = 5;
    fix_preamble_crc(pre);
    assert_int_equal(msgr_preamble_decode(pre, NULL, &p), MSGR_EBAD_FRAME);
    pre[1] = 255;
    fix_preamble_crc(pre);
    assert_int_equal(msgr_preamble_decode(pre, NULL, &p), MSGR_EBAD_FRAME);

    /* last segment empty with nseg > 1: 3 segments where #3 is 0 */
    memcpy(pre, wire, 32);
    pre[1] = 3;
    fix_preamble_crc(pre);
    assert_int_equal(msgr_preamble_decode(pre, NULL, &p), MSGR_EBAD_FRAME);
    /* ... but one empty segment alone is the empty frame */
    memset(pre, 0, 32);
    pre[0] = MSGR_TAG_WAIT;
    pre[1] = 1;
    fix_preamble_crc(pre);
    assert_int_equal(msgr_preamble_decode(pre, NULL, &p), 0);
    assert_int_equal(msgr_frame_body_len(&p, 1), 0);
    assert_int_equal(msgr_frame_body_len(&p, 0), 17);
    struct msgr_seg segs[4];
    assert_int_equal(msgr_frame_body_decode(&p, 1, NULL, segs), 0);
    assert_int_equal(segs[0].len, 0);

    /* unknown tags pass here; the state machine judges them */
    memcpy(pre, wire, 32);
    pre[0] = 200;
    fix_preamble_crc(pre);
    assert_int_equal(msgr_preamble_decode(pre, NULL, &p), 0);
    assert_int_equal(p.tag, 200);

    /* limits: per segment, and the sum */
    lim.max_segment = 100;
    lim.max_frame = 1000;
    memcpy(pre, wire, 32);
    assert_int_equal(msgr_preamble_decode(pre, &lim, &p), 0);
    lim.max_segment = 99;
    assert_int_equal(msgr_preamble_decode(pre, &lim, &p), MSGR_ETOO_BIG);
    lim.max_segment = 100;
    lim.max_frame = 147;
    assert_int_equal(msgr_preamble_decode(pre, &lim, &p), MSGR_ETOO_BIG);
    lim.max_frame = 148;
    assert_int_equal(msgr_preamble_decode(pre, &lim, &p), 0);

    /* defaults: 16 MiB + 4 KiB per segment, 64 MiB per frame */
    msgr_frame_limits_default(&lim);
    assert_int_equal(lim.max_segment, 16 * 1024 * 1024 + 4096);
    assert_int_equal(lim.max_frame, 64 * 1024 * 1024);
    memset(pre, 0, 32);
    pre[0] = MSGR_TAG_MESSAGE;
    pre[1] = 1;
    st32le(pre + 2, lim.max_segment + 1);
    fix_preamble_crc(pre);
    assert_int_equal(msgr_preamble_decode(pre, NULL, &p), MSGR_ETOO_BIG);
    /* four maximal segments: each allowed, the sum is not; no overflow */
    pre[1] = 4;
    for (int i = 0; i < 4; i++)
        st32le(pre + 2 + 6 * i, 0xffffffffu);
    fix_preamble_crc(pre);
    lim.max_segment = 0xffffffffu;
    lim.max_frame = 0xffffffffu;
    assert_int_equal(msgr_preamble_decode(pre, &lim, &p), MSGR_ETOO_BIG);
}

static void
test_body_malformed(void **state)
{
    uint8_t wire[2048], m[2048];
    size_t n;
    static const uint32_t two[4] = {41, 100, 0, 0};
    static const uint32_t four[4] = {41, 100, 3, 200};
    (void)state;

    for (int rev1 = 0; rev1 <= 1; rev1++) {
        encode_flat(rev1, four, wire, sizeof(wire), &n);
        assert_int_equal(decode_flat(rev1, wire, n), 0);
        /* every byte of the body (payloads and crcs) is protected, except
         * the late status/flags byte */
        size_t status_at = n - (rev1 ? 13 : 17);
        for (size_t i = 32; i < n; i++) {
            if (i == status_at)
                continue;
            memcpy(m, wire, n);
            m[i] ^= 0x40;
            assert_int_equal(decode_flat(rev1, m, n), MSGR_EBAD_CRC);
        }
    }

    /* rev1 late_status */
    encode_flat(1, two, wire, sizeof(wire), &n);
    assert_int_equal(wire[n - 13], MSGR_FRAME_LATE_STATUS_COMPLETE);
    for (int st = 0; st < 256; st++) {
        memcpy(m, wire, n);
        m[n - 13] = (uint8_t)st;
        int want = (st & 0xf) == MSGR_FRAME_LATE_STATUS_COMPLETE ? 0
                   : (st & 0xf) == MSGR_FRAME_LATE_STATUS_ABORTED
                       ? MSGR_EABORTED
                       : MSGR_EBAD_FRAME;
        assert_int_equal(decode_flat(1, m, n), want);
    }

    /* rev0 late_flags: bit 0 is ABORTED */
    encode_flat(0, two, wire, sizeof(wire), &n);
    assert_int_equal(wire[n - 17], 0);
    memcpy(m, wire, n);
    m[n - 17] = MSGR_FRAME_LATE_ABORTED_REV0;
    assert_int_equal(decode_flat(0, m, n), MSGR_EABORTED);

    /* corruption wins over an abort mark: crcs are checked first */
    memcpy(m, wire, n);
    m[n - 17] = MSGR_FRAME_LATE_ABORTED_REV0;
    m[40] ^= 1;
    assert_int_equal(decode_flat(0, m, n), MSGR_EBAD_CRC);

    /* a single-segment rev1 frame has no epilogue: seg1 crc only */
    static const uint32_t one[4] = {5, 0, 0, 0};
    encode_flat(1, one, wire, sizeof(wire), &n);
    assert_int_equal(n, 32 + 5 + 4);
    memcpy(m, wire, n);
    m[n - 1] ^= 0x80;
    assert_int_equal(decode_flat(1, m, n), MSGR_EBAD_CRC);
}

/* ------------------------------------------------------------------ */
/* control payloads: truncation and fuzzing                            */
/* ------------------------------------------------------------------ */

enum dec_kind {
    DEC_HELLO,
    DEC_AUTH_REQUEST,
    DEC_AUTH_BAD_METHOD,
    DEC_AUTH_DONE,
    DEC_CLIENT_IDENT,
    DEC_SERVER_IDENT,
    DEC_RECONNECT,
    DEC_HEADER2,
    DEC_U64,
    DEC_ADDR,
    DEC_ADDRVEC,
    DEC_COUNT
};

static int
decode_kind(enum dec_kind k, const uint8_t *p, size_t n)
{
    struct msgr_rbuf r;

    union {
        struct msgr_hello hello;
        struct msgr_auth_request ar;
        struct msgr_auth_bad_method bm;
        struct msgr_auth_done ad;
        struct msgr_client_ident ci;
        struct msgr_server_ident si;
        struct msgr_reconnect rc;
        struct msgr_header2 h2;
        uint64_t u;
        struct msgr_addr a;
        struct msgr_addrvec v;
    } o;

    int rc;

    switch (k) {
    case DEC_HELLO:
        return msgr_hello_decode(p, n, &o.hello);
    case DEC_AUTH_REQUEST:
        rc = msgr_auth_request_decode(p, n, &o.ar);
        if (rc == 0) {
            assert_true(o.ar.nmodes <= MSGR_AUTH_MAX_MODES);
            assert_true(o.ar.payload_len <= n);
            /* the payload must lie inside the input */
            if (o.ar.payload_len > 0)
                assert_true(o.ar.payload >= p &&
                            o.ar.payload + o.ar.payload_len <= p + n);
        }
        return rc;
    case DEC_AUTH_BAD_METHOD:
        rc = msgr_auth_bad_method_decode(p, n, &o.bm);
        if (rc == 0)
            assert_true(o.bm.nmethods <= MSGR_AUTH_MAX_MODES &&
                        o.bm.nmodes <= MSGR_AUTH_MAX_MODES);
        return rc;
    case DEC_AUTH_DONE:
        rc = msgr_auth_done_decode(p, n, &o.ad);
        if (rc == 0 && o.ad.payload_len > 0)
            assert_true(o.ad.payload >= p &&
                        o.ad.payload + o.ad.payload_len <= p + n);
        return rc;
    case DEC_CLIENT_IDENT:
        rc = msgr_client_ident_decode(p, n, &o.ci);
        if (rc == 0)
            assert_true(o.ci.addrs.n <= MSGR_ADDRVEC_MAX);
        return rc;
    case DEC_SERVER_IDENT:
        rc = msgr_server_ident_decode(p, n, &o.si);
        if (rc == 0)
            assert_true(o.si.addrs.n <= MSGR_ADDRVEC_MAX);
        return rc;
    case DEC_RECONNECT:
        rc = msgr_reconnect_decode(p, n, &o.rc);
        if (rc == 0)
            assert_true(o.rc.addrs.n <= MSGR_ADDRVEC_MAX);
        return rc;
    case DEC_HEADER2:
        return msgr_header2_decode(p, n, &o.h2);
    case DEC_U64:
        return msgr_u64_decode(p, n, &o.u);
    case DEC_ADDR:
        msgr_rbuf_init(&r, p, n);
        msgr_get_addr(&r, &o.a);
        assert_true(r.off <= n);
        return r.err;
    case DEC_ADDRVEC:
        msgr_rbuf_init(&r, p, n);
        msgr_get_addrvec(&r, &o.v);
        assert_true(r.off <= n);
        assert_true(o.v.n <= MSGR_ADDRVEC_MAX);
        return r.err;
    case DEC_COUNT:
        break;
    }
    fail();
    return 0;
}

struct sample {
    enum dec_kind kind;
    uint8_t bytes[512];
    size_t len;
};

/* One valid payload per decoder, from the capture where it has one. */
static int
build_samples(struct sample *s, int cap)
{
    struct transcript t;
    struct msgr_wbuf w;
    int n = 0;

    load_transcript(&t);
    for (int i = 0; i < t.n; i++) {
        const struct tframe *f = &t.f[i];
        uint32_t l0 = ld32le(f->bytes + 2);
        enum dec_kind k;
        switch (f->bytes[0]) {
        case MSGR_TAG_HELLO:
            k = DEC_HELLO;
            break;
        case MSGR_TAG_AUTH_REQUEST:
            k = DEC_AUTH_REQUEST;
            break;
        case MSGR_TAG_AUTH_DONE:
            k = DEC_AUTH_DONE;
            break;
        case MSGR_TAG_CLIENT_IDENT:
            k = DEC_CLIENT_IDENT;
            break;
        case MSGR_TAG_SERVER_IDENT:
            k = DEC_SERVER_IDENT;
            break;
        case MSGR_TAG_MESSAGE:
            k = DEC_HEADER2;
            break;
        default:
            continue;
        }
        assert_true(n < cap && l0 <= sizeof(s[n].bytes));
        s[n].kind = k;
        memcpy(s[n].bytes, f->bytes + 32, l0);
        s[n].len = l0;
        n++;
    }
    free_transcript(&t);

    struct msgr_auth_bad_method bm = {.method = 2,
                                      .result = -EOPNOTSUPP,
                                      .nmethods = 2,
                                      .methods = {2, 1},
                                      .nmodes = 1,
                                      .modes = {2}};
    assert_true(n < cap);
    msgr_wbuf_init(&w, s[n].bytes, sizeof(s[n].bytes));
    msgr_auth_bad_method_encode(&w, &bm);
    s[n].kind = DEC_AUTH_BAD_METHOD;
    s[n++].len = w.len;

    struct msgr_reconnect rc = {.client_cookie = 1, .server_cookie = 2};
    rc.addrs.n = 3;
    rc.addrs.v[0] = mkaddr("v2:[2001:db8::5]:3300/1");
    rc.addrs.v[1] = mkaddr("v1:10.0.0.1:6789/1");
    rc.addrs.v[2].type = MSGR_ADDR_ANY; /* AF_UNSPEC, 28-byte sockaddr */
    assert_true(n < cap);
    msgr_wbuf_init(&w, s[n].bytes, sizeof(s[n].bytes));
    msgr_reconnect_encode(&w, &rc);
    s[n].kind = DEC_RECONNECT;
    s[n++].len = w.len;

    assert_true(n < cap);
    s[n].kind = DEC_U64;
    memset(s[n].bytes, 0xab, 8);
    s[n++].len = 8;

    /* HELLO carrying a legacy address (marker 0, 136 bytes) */
    static const uint8_t ip[4] = {10, 0, 0, 1};
    assert_true(n < cap);
    s[n].kind = DEC_HELLO;
    s[n].bytes[0] = MSGR_ENTITY_OSD;
    build_legacy(s[n].bytes + 1, MSGR_AF_INET, 6800, ip, 3);
    s[n++].len = 137;

    struct msgr_addr a6 = mkaddr("[fe80::1]:1/2");
    assert_true(n < cap);
    msgr_wbuf_init(&w, s[n].bytes, sizeof(s[n].bytes));
    msgr_put_addr(&w, &a6);
    s[n].kind = DEC_ADDR;
    s[n++].len = w.len;

    struct msgr_addrvec av;
    memset(&av, 0, sizeof(av));
    av.n = MSGR_ADDRVEC_MAX;
    for (int i = 0; i < MSGR_ADDRVEC_MAX; i++)
        av.v[i] = mkaddr(i & 1 ? "v1:1.2.3.4:5/6" : "v2:[::2]:7/8");
    assert_true(n < cap);
    msgr_wbuf_init(&w, s[n].bytes, sizeof(s[n].bytes));
    msgr_put_addrvec(&w, &av);
    assert_int_equal(w.err, 0);
    s[n].kind = DEC_ADDRVEC;
    s[n++].len = w.len;

    return n;
}

static void
test_truncated_payloads(void **state)
{
    struct sample s[32];
    int kinds_seen[DEC_COUNT] = {0};
    (void)state;

    int n = build_samples(s, 32);
    for (int i = 0; i < n; i++) {
        kinds_seen[s[i].kind] = 1;
        uint8_t *d = dup_exact(s[i].bytes, s[i].len);
        assert_int_equal(decode_kind(s[i].kind, d, s[i].len), 0);
        free(d);
        for (size_t len = 0; len < s[i].len; len++) {
            d = dup_exact(s[i].bytes, len);
            assert_int_equal(decode_kind(s[i].kind, d, len), MSGR_EDECODE);
            free(d);
        }
        /* and NULL with length 0 */
        assert_int_equal(decode_kind(s[i].kind, NULL, 0), MSGR_EDECODE);
    }
    for (int k = 0; k < DEC_COUNT; k++)
        assert_true(kinds_seen[k]);
}

static void
test_counts_over_bound(void **state)
{
    uint8_t b[128];
    struct msgr_wbuf w;
    struct msgr_auth_request ar;
    struct msgr_auth_bad_method bm;
    struct msgr_auth_done ad;
    (void)state;

    /* AUTH_REQUEST: method, modes count 9 (with 9 modes present) */
    msgr_wbuf_init(&w, b, sizeof(b));
    msgr_put_u32(&w, 1);
    msgr_put_u32(&w, MSGR_AUTH_MAX_MODES + 1);
    for (int i = 0; i <= MSGR_AUTH_MAX_MODES; i++)
        msgr_put_u32(&w, 1);
    msgr_put_u32(&w, 0);
    assert_int_equal(msgr_auth_request_decode(b, w.len, &ar), MSGR_EDECODE);
    st32le(b + 4, 0xffffffffu);
    assert_int_equal(msgr_auth_request_decode(b, w.len, &ar), MSGR_EDECODE);

    /* bufferlist longer than the frame */
    msgr_wbuf_init(&w, b, sizeof(b));
    msgr_put_u32(&w, 1);
    msgr_put_u32(&w, 0);
    msgr_put_u32(&w, 0xfffffff0u);
    msgr_put_bytes(&w, "xyz", 3);
    assert_int_equal(msgr_auth_request_decode(b, w.len, &ar), MSGR_EDECODE);

    msgr_wbuf_init(&w, b, sizeof(b));
    msgr_put_u64(&w, 1);
    msgr_put_u32(&w, 1);
    msgr_put_u32(&w, 4);
    msgr_put_bytes(&w, "abc", 3);
    assert_int_equal(msgr_auth_done_decode(b, w.len, &ad), MSGR_EDECODE);
    assert_int_equal(msgr_auth_done_decode(b, w.len + 1, &ad), 0);

    /* AUTH_BAD_METHOD: methods ok, modes over bound */
    msgr_wbuf_init(&w, b, sizeof(b));
    msgr_put_u32(&w, 2);
    msgr_put_u32(&w, (uint32_t)-EOPNOTSUPP);
    msgr_put_u32(&w, 1);
    msgr_put_u32(&w, 2);
    msgr_put_u32(&w, 100);
    assert_int_equal(msgr_auth_bad_method_decode(b, w.len, &bm), MSGR_EDECODE);
}

static void
test_fuzz_decoders(void **state)
{
    struct sample s[32];
    uint8_t buf[600];
    uint64_t rng = 0xdecafbadcafef00dull;
    (void)state;

    int ok = 0, bad = 0;
    int ns = build_samples(s, 32);
    for (int iter = 0; iter < 60000; iter++) {
        size_t n;
        enum dec_kind k;
        uint64_t r = prng_next(&rng);
        if (r % 4 == 0) {
            /* pure noise */
            k = (enum dec_kind)(prng_next(&rng) % DEC_COUNT);
            n = prng_next(&rng) % 300;
            prng_fill(&rng, buf, n);
            /* steer the first byte toward valid markers now and then */
            if (n > 0 && (r & 0x30) == 0)
                buf[0] = (uint8_t)(prng_next(&rng) % 3);
        } else {
            /* a valid sample with a few bytes changed, cut or extended */
            const struct sample *sm = &s[prng_next(&rng) % (uint64_t)ns];
            k = sm->kind;
            n = sm->len;
            memcpy(buf, sm->bytes, n);
            int flips = 1 + (int)(prng_next(&rng) % 4);
            for (int f = 0; f < flips && n > 0; f++) {
                size_t at = prng_next(&rng) % n;
                uint64_t how = prng_next(&rng);
                if (how & 1)
                    buf[at] = (uint8_t)(how >> 8);
                else
                    buf[at] ^= (uint8_t)(1u << (how >> 8 & 7));
            }
            switch (prng_next(&rng) % 4) {
            case 0:
                n = n > 0 ? prng_next(&rng) % n : 0;
                break;
            case 1: {
                size_t extra = prng_next(&rng) % 40;
                prng_fill(&rng, buf + n, extra);
                n += extra;
                break;
            }
            default:
                break;
            }
        }
        uint8_t *d = dup_exact(buf, n);
        int rc = decode_kind(k, d, n);
        assert_true(rc == 0 || rc == MSGR_EDECODE);
        if (rc == 0)
            ok++;
        else
            bad++;
        free(d);
    }
    /* both outcomes well represented, or the fuzzing proves little */
    assert_true(ok > 5000);
    assert_true(bad > 5000);
}

static void
test_fuzz_frames(void **state)
{
    uint8_t wire[2048];
    uint64_t rng = 0x0123456789abcdefull;
    struct msgr_frame_limits lim = {.max_segment = 1024, .max_frame = 1500};
    int seen_pre[3] = {0}, seen_body[4] = {0};
    (void)state;

    for (int iter = 0; iter < 20000; iter++) {
        uint32_t len[4];
        size_t n;
        int rev1 = (int)(prng_next(&rng) & 1);
        for (int i = 0; i < 4; i++)
            len[i] = prng_next(&rng) % 3 == 0 ? 0 : prng_next(&rng) % 200;
        encode_flat(rev1, len, wire, sizeof(wire), &n);

        int flips = (int)(prng_next(&rng) % 4);
        for (int f = 0; f < flips; f++)
            wire[prng_next(&rng) % n] ^= (uint8_t)(1 + prng_next(&rng) % 255);
        if (prng_next(&rng) & 1)
            fix_preamble_crc(wire); /* get past the crc to the checks */

        struct msgr_preamble p;
        struct msgr_seg segs[4];
        uint8_t *pre = dup_exact(wire, 32);
        int rc = msgr_preamble_decode(pre, &lim, &p);
        free(pre);
        if (rc != 0) {
            assert_true(rc == MSGR_EBAD_CRC || rc == MSGR_EBAD_FRAME ||
                        rc == MSGR_ETOO_BIG);
            seen_pre[rc == MSGR_EBAD_CRC ? 0 : rc == MSGR_EBAD_FRAME ? 1 : 2]++;
            continue;
        }
        size_t body = msgr_frame_body_len(&p, rev1);
        assert_true(body <= 1500 + 4 + 17);
        /* A length field hit by a flip would make the peer send a body of
         * another size; feed random bytes of exactly that size. */
        uint8_t *d = malloc(body > 0 ? body : 1);
        assert_non_null(d);
        if (body <= n - 32)
            memcpy(d, wire + 32, body);
        else
            prng_fill(&rng, d, body);
        rc = msgr_frame_body_decode(&p, rev1, d, segs);
        assert_true(rc == 0 || rc == MSGR_EBAD_CRC || rc == MSGR_EBAD_FRAME ||
                    rc == MSGR_EABORTED);
        seen_body[rc == 0                 ? 0
                  : rc == MSGR_EBAD_CRC   ? 1
                  : rc == MSGR_EBAD_FRAME ? 2
                                          : 3]++;
        if (rc == 0)
            for (int i = 0; i < p.nseg; i++)
                assert_true((const uint8_t *)segs[i].base + segs[i].len <=
                            d + body);
        free(d);
    }
    for (int i = 0; i < 3; i++)
        assert_true(seen_pre[i] > 0);
    for (int i = 0; i < 4; i++)
        assert_true(seen_body[i] > 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc_vectors),
        cmocka_unit_test(test_crc_chaining),
        cmocka_unit_test(test_crc_all_lengths),
        cmocka_unit_test(test_crc_capture),
        cmocka_unit_test(test_tag_names),
        cmocka_unit_test(test_banner),
        cmocka_unit_test(test_golden_sizes),
        cmocka_unit_test(test_roundtrip_sweep),
        cmocka_unit_test(test_encode_shapes),
        cmocka_unit_test(test_transcript),
        cmocka_unit_test(test_addr_encoding),
        cmocka_unit_test(test_addr_legacy),
        cmocka_unit_test(test_addr_malformed),
        cmocka_unit_test(test_rbuf_wbuf),
        cmocka_unit_test(test_control_roundtrip),
        cmocka_unit_test(test_preamble_malformed),
        cmocka_unit_test(test_body_malformed),
        cmocka_unit_test(test_truncated_payloads),
        cmocka_unit_test(test_counts_over_bound),
        cmocka_unit_test(test_fuzz_decoders),
        cmocka_unit_test(test_fuzz_frames),
    };
    return cmocka_run_group_tests_name("frame", tests, NULL, NULL);
}
