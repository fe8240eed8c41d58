/*
 * Token-level parsers for the typed values of the language: counts,
 * durations, times, sizes, probabilities, rates, bandwidths, node sets and
 * keywords. Each consumes one word and, when it is not what was expected,
 * reports `expected X like EXAMPLE, got 'WORD'` at the word.
 *
 * Decimals are exact: `1.5s` is 1500000000 ns computed in integers; a value
 * finer than the unit of the plan (`1.5ns`, `0.00001%`) is an error rather
 * than a rounding.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "scn_internal.h"
#include "value.h"

/* ------------------------------------------------------------- tokens */

struct scn_tok *
scn__cur(struct scn_cc *c)
{
    return &c->toks[c->pos];
}

bool
scn__at_end(struct scn_cc *c)
{
    enum scn_tok_kind k = scn__cur(c)->kind;
    return k == SCN_TOK_EOL || k == SCN_TOK_EOF;
}

struct scn_tok *
scn__next(struct scn_cc *c)
{
    struct scn_tok *t = scn__cur(c);
    if (!scn__at_end(c))
        c->pos++;
    return t;
}

/* For messages: "'word'", "'->'" or "the end of the line". */
const char *
scn__desc(const struct scn_tok *t, char *buf, size_t len)
{
    if (t->kind == SCN_TOK_EOL || t->kind == SCN_TOK_EOF)
        snprintf(buf, len, "the end of the line");
    else if (t->kind == SCN_TOK_STRING)
        snprintf(buf, len, "\"%.60s\"", t->s);
    else
        snprintf(buf, len, "'%.60s'", t->s);
    return buf;
}

bool
scn__is_word(struct scn_cc *c, const char *w)
{
    struct scn_tok *t = scn__cur(c);
    return t->kind == SCN_TOK_WORD && strcmp(t->s, w) == 0;
}

bool
scn__accept(struct scn_cc *c, const char *w)
{
    if (!scn__is_word(c, w))
        return false;
    c->pos++;
    return true;
}

bool
scn__fail_expected(struct scn_cc *c, const char *what)
{
    char b[80];
    struct scn_tok *t = scn__cur(c);
    scn__error(c, t->loc, "expected %s, got %s", what, scn__desc(t, b, sizeof(b)));
    return false;
}

bool
scn__expect_word(struct scn_cc *c, const char *w)
{
    if (scn__accept(c, w))
        return true;
    char what[64];
    snprintf(what, sizeof(what), "'%s'", w);
    return scn__fail_expected(c, what);
}

/* A word token, or an error saying what was wanted. */
static struct scn_tok *
take_word(struct scn_cc *c, const char *what)
{
    if (scn__cur(c)->kind != SCN_TOK_WORD) {
        scn__fail_expected(c, what);
        return NULL;
    }
    return scn__next(c);
}

/* ------------------------------------------------------------ numbers */

struct decimal {
    uint64_t ip, fp;   /* integer part, fraction digits as a number */
    unsigned fd;       /* number of fraction digits */
    const char *suffix;
};

/* digits [ '.' digits ]; false when s does not start with a digit or the
 * number has too many digits to be exact. */
static bool
split_decimal(const char *s, struct decimal *d)
{
    memset(d, 0, sizeof(*d));
    if (!isdigit((unsigned char)*s))
        return false;
    unsigned nd = 0;
    while (isdigit((unsigned char)*s)) {
        if (++nd > 19)
            return false;
        d->ip = d->ip * 10 + (uint64_t)(*s++ - '0');
    }
    if (*s == '.' && isdigit((unsigned char)s[1])) {
        s++;
        while (isdigit((unsigned char)*s)) {
            if (++d->fd > 9)
                return false;
            d->fp = d->fp * 10 + (uint64_t)(*s++ - '0');
        }
    }
    d->suffix = s;
    return true;
}

static uint64_t
gcd(uint64_t a, uint64_t b)
{
    while (b) {
        uint64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

enum scale_result { SCALE_OK, SCALE_OVERFLOW, SCALE_INEXACT };

/* d * mult exactly, in integers. */
static enum scale_result
scale(const struct decimal *d, uint64_t mult, uint64_t *out)
{
    if (d->ip && mult > UINT64_MAX / d->ip)
        return SCALE_OVERFLOW;
    uint64_t v = d->ip * mult;
    if (d->fd) {
        uint64_t p10 = 1;
        for (unsigned i = 0; i < d->fd; i++)
            p10 *= 10;
        uint64_t g = gcd(mult, p10);
        uint64_t m = mult / g, q = p10 / g;
        if (d->fp % q != 0)
            return SCALE_INEXACT;
        uint64_t f = d->fp / q;
        if (f && m > UINT64_MAX / f)
            return SCALE_OVERFLOW;
        if (f * m > UINT64_MAX - v)
            return SCALE_OVERFLOW;
        v += f * m;
    }
    *out = v;
    return SCALE_OK;
}

bool
scn__p_count(struct scn_cc *c, const char *what, uint64_t min, uint64_t max,
             uint64_t *out)
{
    char exp[96];
    snprintf(exp, sizeof(exp), "%s (a whole number)", what);
    struct scn_tok *t = take_word(c, exp);
    if (!t)
        return false;
    struct decimal d;
    if (!split_decimal(t->s, &d) || *d.suffix || d.fd) {
        scn__error(c, t->loc, "expected %s (a whole number), got '%s'", what,
                   t->s);
        return false;
    }
    if (d.ip < min || d.ip > max) {
        scn__error(c, t->loc, "%s must be between %llu and %llu, got '%s'",
                   what, (unsigned long long)min, (unsigned long long)max,
                   t->s);
        return false;
    }
    *out = d.ip;
    return true;
}

struct unit {
    const char *name;
    uint64_t mult;
};

static const struct unit time_units[] = {
    {"ns", 1},
    {"us", SCN_NS_PER_US},
    {"ms", SCN_NS_PER_MS},
    {"s", SCN_NS_PER_S},
    {"m", 60 * SCN_NS_PER_S},
    {NULL, 0},
};
static const char *const time_unit_names[] = {"ns", "us", "ms", "s", "m",
                                              NULL};

static const struct unit size_units[] = {
    {"B", 1},
    {"KiB", 1ull << 10},
    {"MiB", 1ull << 20},
    {"GiB", 1ull << 30},
    {NULL, 0},
};
static const char *const size_unit_names[] = {"B", "KiB", "MiB", "GiB", NULL};

static const struct unit bw_units[] = {
    {"bit", 1},
    {"Kbit", 1000},
    {"Mbit", 1000000},
    {"Gbit", 1000000000},
    {"bit/s", 1},
    {"Kbit/s", 1000},
    {"Mbit/s", 1000000},
    {"Gbit/s", 1000000000},
    {NULL, 0},
};
static const char *const bw_unit_names[] = {"Kbit", "Mbit", "Gbit", NULL};

/*
 * A number with a unit from the table. kind names the value for messages
 * ("a duration like 250ms"); unitless_zero accepts a bare 0.
 */
static bool
p_united(struct scn_cc *c, struct scn_tok *t, const char *kind,
         const struct unit *units, const char *const *unit_names,
         const char *finest, bool unitless_zero, uint64_t *out)
{
    struct decimal d;
    if (!split_decimal(t->s, &d)) {
        scn__error(c, t->loc, "expected %s, got '%s'", kind, t->s);
        return false;
    }
    if (*d.suffix == '\0') {
        if (unitless_zero && d.ip == 0 && d.fp == 0) {
            *out = 0;
            return true;
        }
        char units_txt[64] = "";
        for (int i = 0; unit_names[i]; i++) {
            strcat(units_txt, i ? " " : "");
            strcat(units_txt, unit_names[i]);
        }
        scn__error(c, t->loc, "expected %s, got '%s' (add a unit: %s)",
                   kind, t->s, units_txt);
        return false;
    }
    for (const struct unit *u = units; u->name; u++) {
        if (strcmp(d.suffix, u->name) != 0)
            continue;
        switch (scale(&d, u->mult, out)) {
        case SCALE_OK:
            return true;
        case SCALE_OVERFLOW:
            scn__error(c, t->loc, "'%s' is too large", t->s);
            return false;
        case SCALE_INEXACT:
            scn__error(c, t->loc, "'%s' is finer than one %s", t->s, finest);
            return false;
        }
    }
    char hint[64];
    scn__error(c, t->loc, "unknown unit '%s' in '%s'; expected %s%s",
               d.suffix, t->s, kind,
               scn__hint(hint, sizeof(hint), d.suffix, unit_names));
    return false;
}

bool
scn__p_duration(struct scn_cc *c, uint64_t *out)
{
    struct scn_tok *t = take_word(c, "a duration like 250ms");
    return t && p_united(c, t, "a duration like 250ms", time_units,
                         time_unit_names, "nanosecond", true, out);
}

bool
scn__p_positive_duration(struct scn_cc *c, const char *what, uint64_t *out)
{
    struct scn_loc loc = scn__cur(c)->loc;
    if (!scn__p_duration(c, out))
        return false;
    if (*out == 0) {
        scn__error(c, loc, "%s must be longer than 0", what);
        return false;
    }
    return true;
}

bool
scn__p_time(struct scn_cc *c, bool *relative, uint64_t *out)
{
    struct scn_tok *t = take_word(c, "a time like 1.5s or +100ms");
    if (!t)
        return false;
    *relative = t->s[0] == '+';
    struct scn_tok tmp = *t;
    if (*relative)
        tmp.s = t->s + 1;
    return p_united(c, &tmp, "a time like 1.5s or +100ms", time_units,
                    time_unit_names, "nanosecond", true, out);
}

bool
scn__p_size(struct scn_cc *c, uint64_t *out)
{
    struct scn_tok *t = take_word(c, "a size like 4KiB");
    return t && p_united(c, t, "a size like 4KiB", size_units,
                         size_unit_names, "byte", true, out);
}

bool
scn__p_bandwidth(struct scn_cc *c, uint64_t *out)
{
    struct scn_tok *t = take_word(c, "a bandwidth like 100Mbit");
    if (!t || !p_united(c, t, "a bandwidth like 100Mbit", bw_units,
                        bw_unit_names, "bit per second", false, out))
        return false;
    if (*out == 0) {
        scn__error(c, t->loc, "a bandwidth must be above 0, got '%s'", t->s);
        return false;
    }
    return true;
}

bool
scn__p_prob(struct scn_cc *c, uint32_t *out)
{
    static const char *what = "a probability like 30% or 0.3";
    struct scn_tok *t = take_word(c, what);
    if (!t)
        return false;
    struct decimal d;
    if (!split_decimal(t->s, &d) ||
        (*d.suffix && strcmp(d.suffix, "%") != 0)) {
        scn__error(c, t->loc, "expected %s, got '%s'", what, t->s);
        return false;
    }
    bool pct = *d.suffix == '%';
    uint64_t v;
    switch (scale(&d, pct ? 10000 : SCN_PPM, &v)) {
    case SCALE_OK:
        break;
    case SCALE_OVERFLOW:
        v = UINT64_MAX;
        break;
    case SCALE_INEXACT:
        scn__error(c, t->loc, "probability '%s' is finer than one part per "
                   "million", t->s);
        return false;
    }
    if (v > SCN_PPM) {
        scn__error(c, t->loc, "probability '%s' is above 100%%%s", t->s,
                   pct ? "" : " (write a percentage with '%')");
        return false;
    }
    *out = (uint32_t)v;
    return true;
}

bool
scn__p_rate(struct scn_cc *c, uint64_t *out_mps)
{
    static const char *what = "a rate like 100/s";
    struct scn_tok *t = take_word(c, what);
    if (!t)
        return false;
    struct decimal d;
    if (!split_decimal(t->s, &d) || strcmp(d.suffix, "/s") != 0) {
        scn__error(c, t->loc, "expected %s, got '%s'", what, t->s);
        return false;
    }
    switch (scale(&d, 1000, out_mps)) {
    case SCALE_OK:
        break;
    case SCALE_OVERFLOW:
        scn__error(c, t->loc, "rate '%s' is too large", t->s);
        return false;
    case SCALE_INEXACT:
        scn__error(c, t->loc, "rate '%s' is finer than 0.001/s", t->s);
        return false;
    }
    if (*out_mps == 0) {
        scn__error(c, t->loc, "a rate must be above 0, got '%s'", t->s);
        return false;
    }
    return true;
}

bool
scn__percent_ppm(const char *s, uint32_t *out)
{
    struct decimal d;
    uint64_t v;
    if (!split_decimal(s, &d) || *d.suffix ||
        scale(&d, 10000, &v) != SCALE_OK || v > SCN_PPM)
        return false;
    *out = (uint32_t)v;
    return true;
}

/* ----------------------------------------------------------- keywords */

bool
scn__p_keyword(struct scn_cc *c, const char *what, const char *const *list,
               int *out)
{
    struct scn_tok *t = take_word(c, what);
    if (!t)
        return false;
    *out = scn__lookup(t->s, list);
    if (*out >= 0)
        return true;
    char hint[64];
    scn__error(c, t->loc, "unknown %s '%s'%s", what, t->s,
               scn__hint(hint, sizeof(hint), t->s, list));
    return false;
}

/* ------------------------------------------------------------ node sets */

bool
scn__looks_like_set(const struct scn_tok *t)
{
    return t->kind == SCN_TOK_WORD &&
           (strcmp(t->s, "all") == 0 || strchr(t->s, '.') != NULL);
}

bool
scn__p_set(struct scn_cc *c, struct scn_set *out)
{
    struct scn_tok *t = take_word(c, "a node or node set like osd.0");
    if (!t)
        return false;
    char err[200];
    struct scn_item it;
    int r;
    for (uint32_t k = 0; (r = scn__set_item(t->s, k, &it, err, sizeof(err)));
         k++) {
        if (r < 0) {
            scn__error(c, t->loc, "%s", err);
            return false;
        }
    }
    memset(out, 0, sizeof(*out));
    out->loc = t->loc;
    out->text = t->s;
    return true;
}

bool
scn__p_arrow(struct scn_cc *c, bool allow_both, bool *both)
{
    struct scn_tok *t = scn__cur(c);
    if (t->kind == SCN_TOK_ARROW) {
        c->pos++;
        *both = false;
        return true;
    }
    if (t->kind == SCN_TOK_BIARROW && allow_both) {
        c->pos++;
        *both = true;
        return true;
    }
    if (t->kind == SCN_TOK_BIARROW) {
        scn__error(c, t->loc, "this is one-way: use '->' (one line per "
                   "direction)");
        return false;
    }
    return scn__fail_expected(c, allow_both ? "'->' or '<->'" : "'->'");
}
