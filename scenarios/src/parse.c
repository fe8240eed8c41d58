/*
 * The parser: one recursive-descent function per statement and per action.
 * An error ends the statement (the rest of its line is skipped) but not
 * the file, so one run reports every broken line. Node sets are only
 * checked for syntax here; check.c resolves them once every node is known.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scn_internal.h"
#include "value.h"

static const char *const header_words[] = {
    "scenario", "seed", "stack", "duration", "workers", "link", "node",
    "policy", "config", NULL};
static const char *const statement_words[] = {
    "scenario", "seed", "stack", "duration", "workers", "link", "node",
    "policy", "config", "at", "every", "on", "break", "expect", NULL};
static const char *const action_words[] = {
    "start", "shutdown", "restart", "rebind", "drop", "blackhole", "delay",
    "bandwidth", "partition", "reset", "corrupt", "kill", "crash", "pause",
    "heal", "chaos", "break", "release", NULL};
static const char *const verb_words[] = {
    "bind", "client_bind", "connect", "send", "keepalive", "mark_down",
    "mark_down_all", NULL};
static const char *const break_actions[] = {"fault", "stop", "block",
                                            "stall", NULL};
static const char *const fault_kinds[] = {
    "drop", "blackhole", "delay", "bandwidth", "partition", "reset",
    "corrupt", "kill", "crash", "pause", NULL}; /* = scn__fault_names + 1 */

/* ----------------------------------------------------------- addresses */

static bool
digits(const char **p, unsigned max_digits, uint64_t max, uint64_t *v)
{
    const char *s = *p;
    unsigned n = 0;
    *v = 0;
    while (isdigit((unsigned char)*s) && n < max_digits) {
        *v = *v * 10 + (uint64_t)(*s++ - '0');
        n++;
    }
    if (n == 0 || *v > max)
        return false;
    *p = s;
    return true;
}

/* [v1:|v2:|any:]IPV4:PORT or [IPV6]:PORT, then an optional /NONCE: the
 * forms msgr_addr_parse accepts; the runner parses it for real. */
static bool
addr_ok(const char *s)
{
    if (!strncmp(s, "v1:", 3) || !strncmp(s, "v2:", 3))
        s += 3;
    else if (!strncmp(s, "any:", 4))
        s += 4;
    uint64_t v;
    if (*s == '[') {
        s++;
        unsigned n = 0;
        while (isxdigit((unsigned char)*s) || *s == ':' || *s == '.') {
            s++;
            n++;
        }
        if (n < 2 || *s != ']')
            return false;
        s++;
    } else {
        for (int i = 0; i < 4; i++) {
            if (!digits(&s, 3, 255, &v))
                return false;
            if (i < 3 && *s++ != '.')
                return false;
        }
    }
    if (*s++ != ':' || !digits(&s, 5, 65535, &v))
        return false;
    if (*s == '/') {
        s++;
        if (!digits(&s, 10, UINT32_MAX, &v))
            return false;
    }
    return *s == '\0';
}

static bool
p_addr(struct scn_cc *c, const char **out)
{
    struct scn_tok *t = scn__cur(c);
    if (t->kind != SCN_TOK_WORD)
        return scn__fail_expected(c, "an address like v2:10.0.0.1:6800");
    if (!addr_ok(t->s)) {
        scn__error(c, t->loc, "expected an address like v2:10.0.0.1:6800 "
                   "or [::1]:6800, got '%s'", t->s);
        return false;
    }
    *out = t->s;
    c->pos++;
    return true;
}

static bool
p_policy(struct scn_cc *c, enum msgr_policy_kind *out)
{
    int i;
    if (!scn__p_keyword(c, "policy", scn__policy_names, &i))
        return false;
    *out = scn__policy_kinds[i];
    return true;
}

static bool
p_step(struct scn_cc *c, bool frames_only, enum scn_step *out)
{
    struct scn_tok *t = scn__cur(c);
    int i;
    if (!scn__p_keyword(c, frames_only ? "frame tag" : "protocol step",
                        scn__step_names, &i))
        return false;
    if (frames_only && !scn_step_is_frame((enum scn_step)i)) {
        scn__error(c, t->loc, "'%s' is a socket step, not a frame tag", t->s);
        return false;
    }
    *out = (enum scn_step)i;
    return true;
}

static bool
p_op(struct scn_cc *c, enum scn_op *out)
{
    struct scn_tok *t = scn__cur(c);
    int i = t->kind == SCN_TOK_WORD ? scn__lookup(t->s, scn__op_names) : -1;
    if (i < 0)
        return scn__fail_expected(c, "a comparison (== != < <= > >=)");
    c->pos++;
    *out = (enum scn_op)i;
    return true;
}

/* Rejects anything left on the line. */
static bool
end_of_statement(struct scn_cc *c, const char *after)
{
    if (scn__at_end(c))
        return true;
    char b[80];
    struct scn_tok *t = scn__cur(c);
    scn__error(c, t->loc, "unexpected %s after %s", scn__desc(t, b, sizeof(b)),
               after);
    return false;
}

/* --------------------------------------------------------- breakpoints */

/* NODE [-> PEER] at STEP [read|write] */
static bool
p_break_target(struct scn_cc *c, struct scn_break *b)
{
    if (!scn__p_set(c, &b->node))
        return false;
    if (scn__cur(c)->kind == SCN_TOK_ARROW) {
        c->pos++;
        if (!scn__p_set(c, &b->peer))
            return false;
    }
    if (!scn__expect_word(c, "at") || !p_step(c, false, &b->step))
        return false;
    if (scn__accept(c, "read"))
        b->dir = SCN_DIR_READ;
    else if (scn__accept(c, "write"))
        b->dir = SCN_DIR_WRITE;
    return true;
}

static bool
p_break(struct scn_cc *c, struct scn_break *b)
{
    memset(b, 0, sizeof(*b));
    b->round = 1;
    if (!p_break_target(c, b))
        return false;
    if (scn__accept(c, "round")) {
        uint64_t n;
        if (!scn__p_count(c, "a round", 1, UINT32_MAX, &n))
            return false;
        b->round = (uint32_t)n;
    }
    int a;
    if (scn__at_end(c))
        return scn__fail_expected(c, "a breakpoint action (fault, stop, "
                                  "block or stall)");
    if (!scn__p_keyword(c, "breakpoint action", break_actions, &a))
        return false;
    b->action = (enum scn_break_action)a;
    return end_of_statement(c, "the breakpoint action");
}

/* ------------------------------------------------------------- actions */

enum {
    OPT_FOR = 1,
    OPT_PROB = 2,
    OPT_JITTER = 4,
    OPT_TYPE = 8,
};

/* [for T] [prob P] [jitter T] [type N], any order, each once. */
static bool
p_fault_opts(struct scn_cc *c, struct scn_action *a, unsigned allowed)
{
    unsigned seen = 0;
    while (!scn__at_end(c)) {
        struct scn_tok *t = scn__cur(c);
        unsigned opt = scn__is_word(c, "for")      ? OPT_FOR
                       : scn__is_word(c, "prob")   ? OPT_PROB
                       : scn__is_word(c, "jitter") ? OPT_JITTER
                       : scn__is_word(c, "type")   ? OPT_TYPE
                                                   : 0;
        if (!(opt & allowed)) {
            char b[80], exp[80] = "";
            const char *names[] = {"for", "prob", "jitter", "type"};
            for (unsigned i = 0; i < 4; i++)
                if (allowed & (1u << i)) {
                    strcat(exp, exp[0] ? ", " : "");
                    strcat(exp, names[i]);
                }
            if (opt)
                scn__error(c, t->loc, "'%s' does not apply to '%s'%s%s%s",
                           t->s, scn_action_name(a->kind),
                           exp[0] ? " (it takes " : "", exp,
                           exp[0] ? ")" : "");
            else
                scn__error(c, t->loc, "unexpected %s after '%s'%s%s%s",
                           scn__desc(t, b, sizeof(b)),
                           scn_action_name(a->kind),
                           exp[0] ? " (expected " : "", exp,
                           exp[0] ? ")" : "");
            return false;
        }
        if (seen & opt) {
            scn__error(c, t->loc, "'%s' given twice", t->s);
            return false;
        }
        seen |= opt;
        c->pos++;
        bool ok = true;
        if (opt == OPT_FOR) {
            ok = scn__p_positive_duration(c, "'for'", &a->for_ns);
        } else if (opt == OPT_PROB) {
            a->has_prob = true;
            ok = scn__p_prob(c, &a->prob_ppm);
        } else if (opt == OPT_JITTER) {
            ok = scn__p_duration(c, &a->u.delay.jitter_ns);
        } else {
            uint64_t v = 0;
            struct scn_tok *tt = scn__cur(c);
            char *end = NULL;
            ok = tt->kind == SCN_TOK_WORD;
            if (ok) {
                v = strtoull(tt->s, &end, 0);
                ok = isdigit((unsigned char)tt->s[0]) && *end == '\0' &&
                     v <= UINT16_MAX;
            }
            if (!ok)
                return scn__fail_expected(c, "a message type like 0x7f00 "
                                          "(0..65535)");
            c->pos++;
            a->u.blackhole.has_type = true;
            a->u.blackhole.msg_type = (uint32_t)v;
        }
        if (!ok)
            return false;
    }
    return true;
}

/* A -> B or A <-> B */
static bool
p_pair(struct scn_cc *c, struct scn_action *a)
{
    return scn__p_set(c, &a->subject) &&
           scn__p_arrow(c, true, &a->both_ways) && scn__p_set(c, &a->peer);
}

static bool
p_send(struct scn_cc *c, struct scn_action *a)
{
    a->u.send.count = 1;
    a->u.send.size_bytes = SCN_DEFAULT_SEND_SIZE;
    a->u.send.priority = SCN_DEFAULT_PRIORITY;
    static const char *const opts[] = {"count", "size", "every", "rate",
                                       "priority", NULL};
    static const char *const prios[] = {"low", "default", "high", "highest",
                                        NULL};
    static const uint8_t prio_values[] = {64, 127, 196, 255};
    unsigned seen = 0;
    while (!scn__at_end(c)) {
        struct scn_tok *t = scn__cur(c);
        int o = t->kind == SCN_TOK_WORD ? scn__lookup(t->s, opts) : -1;
        if (o < 0) {
            char b[80], hint[64];
            scn__error(c, t->loc, "unexpected %s in 'send' (expected count, "
                       "size, every, rate or priority)%s",
                       scn__desc(t, b, sizeof(b)),
                       t->kind == SCN_TOK_WORD
                           ? scn__hint(hint, sizeof(hint), t->s, opts)
                           : "");
            return false;
        }
        if (seen & (1u << o)) {
            scn__error(c, t->loc, "'%s' given twice", t->s);
            return false;
        }
        if ((o == 2 && (seen & 8)) || (o == 3 && (seen & 4))) {
            scn__error(c, t->loc, "'every' and 'rate' cannot both pace one "
                       "send");
            return false;
        }
        seen |= 1u << o;
        c->pos++;
        bool ok;
        uint64_t v = 0;
        switch (o) {
        case 0:
            ok = scn__p_count(c, "a message count", 1, UINT32_MAX,
                              &a->u.send.count);
            break;
        case 1:
            ok = scn__p_size(c, &a->u.send.size_bytes);
            if (ok && a->u.send.size_bytes > (1ull << 30)) {
                scn__error(c, t->loc, "a message of more than 1GiB");
                ok = false;
            }
            break;
        case 2:
            ok = scn__p_positive_duration(c, "'every'", &a->u.send.every_ns);
            break;
        case 3:
            ok = scn__p_rate(c, &a->u.send.rate_mps);
            break;
        default: {
            struct scn_tok *pt = scn__cur(c);
            int pi = pt->kind == SCN_TOK_WORD ? scn__lookup(pt->s, prios) : -1;
            if (pi >= 0) {
                c->pos++;
                a->u.send.priority = prio_values[pi];
                ok = true;
            } else {
                ok = scn__p_count(c, "a priority (0..255, low, default, "
                                  "high or highest)", 0, 255, &v);
                a->u.send.priority = (uint8_t)v;
            }
        }
        }
        if (!ok)
            return false;
    }
    return true;
}

static bool
p_heal(struct scn_cc *c, struct scn_action *a)
{
    a->u.heal.kind = SCN_FAULT_NONE;
    if (scn__at_end(c))
        return true;
    struct scn_tok *t = scn__cur(c);
    int k = t->kind == SCN_TOK_WORD ? scn__lookup(t->s, fault_kinds) : -1;
    if (k >= 0) {
        a->u.heal.kind = (enum scn_fault_kind)(k + 1);
        c->pos++;
        if (scn__at_end(c))
            return true;
        t = scn__cur(c);
    }
    if (!scn__looks_like_set(t)) {
        char b[80], hint[64];
        scn__error(c, t->loc, "expected a fault kind or a node set after "
                   "'heal', got %s%s", scn__desc(t, b, sizeof(b)),
                   t->kind == SCN_TOK_WORD
                       ? scn__hint(hint, sizeof(hint), t->s, fault_kinds)
                       : "");
        return false;
    }
    return scn__p_set(c, &a->subject) && end_of_statement(c, "'heal'");
}

static bool
p_chaos(struct scn_cc *c, struct scn_action *a)
{
    a->u.chaos.until_ns = SCN_TIME_END;
    if (!scn__p_set(c, &a->subject) || !scn__expect_word(c, "kinds"))
        return false;
    struct scn_tok *t = scn__cur(c);
    if (t->kind != SCN_TOK_WORD)
        return scn__fail_expected(c, "fault kinds like drop,reset");
    char buf[64];
    const char *p = t->s;
    for (;;) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        snprintf(buf, sizeof(buf), "%.*s", (int)n, p);
        int k = scn__lookup(buf, fault_kinds);
        if (k < 0) {
            char hint[64];
            scn__error(c, t->loc, "unknown fault kind '%s' in '%s'%s", buf,
                       t->s, scn__hint(hint, sizeof(hint), buf, fault_kinds));
            return false;
        }
        a->u.chaos.kinds |= 1u << (k + 1);
        if (!e)
            break;
        p = e + 1;
    }
    c->pos++;
    if (!scn__expect_word(c, "rate") || !scn__p_rate(c, &a->u.chaos.rate_mps))
        return false;
    if (scn__accept(c, "from") && !scn__p_duration(c, &a->u.chaos.from_ns))
        return false;
    if (scn__accept(c, "until") && !scn__p_duration(c, &a->u.chaos.until_ns))
        return false;
    if (a->u.chaos.until_ns <= a->u.chaos.from_ns) {
        scn__error(c, t->loc, "chaos 'until' must be after its 'from'");
        return false;
    }
    return end_of_statement(c, "'chaos'");
}

/* NODE VERB ... */
static bool
p_subject_action(struct scn_cc *c, struct scn_action *a)
{
    if (!scn__p_set(c, &a->subject))
        return false;
    int v;
    struct scn_tok *t = scn__cur(c);
    if (scn__at_end(c))
        return scn__fail_expected(c, "what the node does (bind, client_bind, "
                                  "connect, send, keepalive, mark_down, "
                                  "mark_down_all)");
    if (t->kind != SCN_TOK_WORD || (v = scn__lookup(t->s, verb_words)) < 0) {
        char b[80], hint[64];
        scn__error(c, t->loc, "unknown node action %s%s",
                   scn__desc(t, b, sizeof(b)),
                   t->kind == SCN_TOK_WORD
                       ? scn__hint(hint, sizeof(hint), t->s, verb_words)
                       : "");
        return false;
    }
    c->pos++;
    static const enum scn_action_kind kinds[] = {
        SCN_ACT_BIND,      SCN_ACT_CLIENT_BIND, SCN_ACT_CONNECT,
        SCN_ACT_SEND,      SCN_ACT_KEEPALIVE,   SCN_ACT_MARK_DOWN,
        SCN_ACT_MARK_DOWN_ALL};
    a->kind = kinds[v];
    switch (a->kind) {
    case SCN_ACT_BIND:
    case SCN_ACT_CLIENT_BIND:
        return p_addr(c, &a->u.bind.addr) && end_of_statement(c, "the address");
    case SCN_ACT_MARK_DOWN_ALL:
        return end_of_statement(c, "'mark_down_all'");
    case SCN_ACT_SEND:
        return scn__p_set(c, &a->peer) && p_send(c, a);
    default:
        return scn__p_set(c, &a->peer) && end_of_statement(c, "the node set");
    }
}

static bool
p_keyword_action(struct scn_cc *c, int w, struct scn_action *a)
{
    static const enum scn_action_kind kinds[] = {
        SCN_ACT_START,   SCN_ACT_SHUTDOWN,  SCN_ACT_RESTART,
        SCN_ACT_REBIND,  SCN_ACT_DROP,      SCN_ACT_BLACKHOLE,
        SCN_ACT_DELAY,   SCN_ACT_BANDWIDTH, SCN_ACT_PARTITION,
        SCN_ACT_RESET,   SCN_ACT_CORRUPT,   SCN_ACT_KILL,
        SCN_ACT_CRASH,   SCN_ACT_PAUSE,     SCN_ACT_HEAL,
        SCN_ACT_CHAOS,   SCN_ACT_BREAK,     SCN_ACT_RELEASE};
    a->kind = kinds[w];
    struct scn_loc kw_loc = a->loc;
    switch (a->kind) {
    case SCN_ACT_START:
    case SCN_ACT_SHUTDOWN:
    case SCN_ACT_REBIND:
        return scn__p_set(c, &a->subject) && end_of_statement(c, "the node set");
    case SCN_ACT_RESTART:
        if (!scn__p_set(c, &a->subject))
            return false;
        a->u.restart.same_nonce = scn__accept(c, "same_nonce");
        return end_of_statement(c, "'restart'");
    case SCN_ACT_KILL:
    case SCN_ACT_CRASH:
        return scn__p_set(c, &a->subject) && p_fault_opts(c, a, OPT_FOR);
    case SCN_ACT_PAUSE:
        if (!scn__p_set(c, &a->subject) || !p_fault_opts(c, a, OPT_FOR))
            return false;
        if (!a->for_ns) {
            scn__error(c, kw_loc, "'pause' needs 'for T' (how long the "
                       "process stops)");
            return false;
        }
        return true;
    case SCN_ACT_DROP:
        if (!p_pair(c, a))
            return false;
        if (!scn__at_end(c) && !scn__is_word(c, "prob") &&
            !scn__is_word(c, "for")) {
            a->has_prob = true;
            if (!scn__p_prob(c, &a->prob_ppm))
                return false;
        }
        if (!p_fault_opts(c, a, OPT_FOR | (a->has_prob ? 0 : OPT_PROB)))
            return false;
        if (!a->has_prob) {
            scn__error(c, kw_loc, "'drop' needs a probability, e.g. 'drop "
                       "osd.0 -> osd.1 30%%'");
            return false;
        }
        return true;
    case SCN_ACT_BLACKHOLE:
        return p_pair(c, a) && p_fault_opts(c, a, OPT_FOR | OPT_PROB | OPT_TYPE);
    case SCN_ACT_DELAY:
        return p_pair(c, a) && scn__p_duration(c, &a->u.delay.delay_ns) &&
               p_fault_opts(c, a, OPT_FOR | OPT_PROB | OPT_JITTER);
    case SCN_ACT_BANDWIDTH:
        return p_pair(c, a) && scn__p_bandwidth(c, &a->u.bandwidth.bps) &&
               p_fault_opts(c, a, OPT_FOR);
    case SCN_ACT_PARTITION:
        if (!scn__p_set(c, &a->subject))
            return false;
        if (scn__cur(c)->kind == SCN_TOK_BAR) {
            c->pos++;
            a->both_ways = true;
        } else if (scn__cur(c)->kind == SCN_TOK_ARROW ||
                   scn__cur(c)->kind == SCN_TOK_BIARROW) {
            a->both_ways = scn__cur(c)->kind == SCN_TOK_BIARROW;
            c->pos++;
        } else {
            return scn__fail_expected(c, "'|', '->' or '<->'");
        }
        return scn__p_set(c, &a->peer) && p_fault_opts(c, a, OPT_FOR);
    case SCN_ACT_RESET:
        return p_pair(c, a) && p_fault_opts(c, a, OPT_FOR | OPT_PROB);
    case SCN_ACT_CORRUPT:
        if (!p_pair(c, a) || !p_fault_opts(c, a, OPT_FOR | OPT_PROB))
            return false;
        if (!a->has_prob) {
            scn__error(c, kw_loc, "'corrupt' needs 'prob P', e.g. 'corrupt "
                       "osd.0 -> osd.1 prob 1%%'");
            return false;
        }
        return true;
    case SCN_ACT_HEAL:
        return p_heal(c, a);
    case SCN_ACT_CHAOS:
        return p_chaos(c, a);
    case SCN_ACT_BREAK:
        if (!p_break(c, &a->u.brk))
            return false;
        a->u.brk.loc = kw_loc;
        return true;
    case SCN_ACT_RELEASE:
        memset(&a->u.brk, 0, sizeof(a->u.brk));
        a->u.brk.round = 1;
        a->u.brk.loc = kw_loc;
        return p_break_target(c, &a->u.brk) &&
               end_of_statement(c, "the step");
    default:
        return false;
    }
}

/* Any timeline action (also the ACTION of `on`). */
static bool
p_action(struct scn_cc *c, struct scn_action *a)
{
    memset(a, 0, sizeof(*a));
    struct scn_tok *t = scn__cur(c);
    a->loc = t->loc;
    if (scn__at_end(c))
        return scn__fail_expected(c, "an action");
    int w = t->kind == SCN_TOK_WORD ? scn__lookup(t->s, action_words) : -1;
    if (w >= 0) {
        c->pos++;
        return p_keyword_action(c, w, a);
    }
    if (scn__looks_like_set(t))
        return p_subject_action(c, a);
    char b[80], hint[64];
    const char *kind = "action";
    if (t->kind == SCN_TOK_WORD && scn__suggest(t->s, fault_kinds))
        kind = "fault";
    scn__error(c, t->loc, "unknown %s %s%s", kind, scn__desc(t, b, sizeof(b)),
               t->kind == SCN_TOK_WORD
                   ? scn__hint(hint, sizeof(hint), t->s, action_words)
                   : "");
    return false;
}

/* ------------------------------------------------------------ timeline */

static void
push_timed(struct scn_cc *c, struct scn_loc loc, uint64_t t_ns, uint64_t period_ns,
           uint64_t until_ns, const struct scn_action *a)
{
    struct scn_plan *p = c->plan;
    struct scn_timed *e = SCN_PUSH(c->A, p->timeline, p->n_timeline, c->cap_tl);
    e->loc = loc;
    e->t_ns = t_ns;
    e->period_ns = period_ns;
    e->until_ns = until_ns;
    e->seq = c->seq;
    e->act = *a;
}

static void
st_at(struct scn_cc *c)
{
    struct scn_loc loc = scn__cur(c)->loc;
    bool rel;
    uint64_t t;
    if (!scn__p_time(c, &rel, &t))
        return;
    if (rel) {
        if (!c->have_at) {
            scn__error(c, loc, "relative time '+...' before any absolute "
                       "'at' (what would it be relative to?)");
            return;
        }
        if (t > UINT64_MAX - c->last_at_ns) {
            scn__error(c, loc, "time overflows");
            return;
        }
        t += c->last_at_ns;
    }
    c->have_at = true;
    c->last_at_ns = t;
    struct scn_action a;
    if (p_action(c, &a))
        push_timed(c, loc, t, 0, SCN_TIME_END, &a);
}

static void
st_every(struct scn_cc *c)
{
    struct scn_loc loc = scn__cur(c)->loc;
    uint64_t period, from = 0, until = SCN_TIME_END;
    if (!scn__p_positive_duration(c, "the period of 'every'", &period))
        return;
    if (scn__accept(c, "from") && !scn__p_duration(c, &from))
        return;
    if (scn__accept(c, "until") && !scn__p_duration(c, &until))
        return;
    if (until < from) {
        scn__error(c, loc, "'until' is before 'from'");
        return;
    }
    struct scn_action a;
    if (p_action(c, &a))
        push_timed(c, loc, from, period, until, &a);
}

/* ------------------------------------------------------------ triggers */

static void
st_on(struct scn_cc *c, struct scn_loc kw_loc)
{
    struct scn_trigger tr;
    memset(&tr, 0, sizeof(tr));
    tr.loc = kw_loc;
    tr.every = scn__accept(c, "every");
    if (!scn__p_set(c, &tr.node))
        return;
    struct scn_tok *t = scn__cur(c);
    int i;
    if (t->kind == SCN_TOK_ARROW) {
        c->pos++;
        tr.kind = SCN_TRIG_STATE;
        if (!scn__p_set(c, &tr.peer) || !scn__expect_word(c, "state") ||
            !scn__p_keyword(c, "connection state", scn__state_names, &i))
            return;
        tr.state = (enum scn_conn_state)i;
    } else if (scn__accept(c, "delivered")) {
        tr.kind = SCN_TRIG_DELIVERED;
        if (!scn__p_count(c, "a message count", 1, UINT64_MAX / 2, &tr.count) ||
            !scn__expect_word(c, "from") || !scn__p_set(c, &tr.peer))
            return;
    } else if (scn__accept(c, "breakpoint")) {
        tr.kind = SCN_TRIG_BREAKPOINT;
        if (!p_step(c, false, &tr.step))
            return;
    } else if (t->kind == SCN_TOK_WORD &&
               (i = scn__lookup(t->s, scn__event_names)) >= 0) {
        c->pos++;
        tr.kind = SCN_TRIG_DISPATCH;
        tr.event = (enum scn_dispatch_event)i;
        if (scn__accept(c, "from") && !scn__p_set(c, &tr.peer))
            return;
    } else {
        static const char *const evs[] = {
            "connect", "accept", "reset", "remote_reset", "refused",
            "delivered", "breakpoint", NULL};
        char b[80], hint[64];
        scn__error(c, t->loc, "expected an event (connect, accept, reset, "
                   "remote_reset, refused, delivered N from PEER, breakpoint "
                   "STEP or -> PEER state STATE), got %s%s",
                   scn__desc(t, b, sizeof(b)),
                   t->kind == SCN_TOK_WORD
                       ? scn__hint(hint, sizeof(hint), t->s, evs)
                       : "");
        return;
    }
    if (!p_action(c, &tr.act))
        return;
    struct scn_plan *p = c->plan;
    *SCN_PUSH(c->A, p->triggers, p->n_triggers, c->cap_trig) = tr;
}

/* -------------------------------------------------------- expectations */

static bool
p_expect_at(struct scn_cc *c, struct scn_expect *e)
{
    if (scn__accept(c, "at")) {
        e->has_at = true;
        if (!scn__p_duration(c, &e->at_ns))
            return false;
    }
    return end_of_statement(c, "the expectation");
}

static bool
p_ab(struct scn_cc *c, struct scn_expect *e)
{
    bool both;
    return scn__p_set(c, &e->a) && scn__p_arrow(c, false, &both) &&
           scn__p_set(c, &e->b);
}

static bool
p_expect_delivered(struct scn_cc *c, struct scn_expect *e)
{
    static const char *const flags[] = {"all", "exactly_once", "no_dup",
                                        "in_order", NULL};
    if (!p_ab(c, e))
        return false;
    struct scn_tok *t = scn__cur(c);
    if (t->kind == SCN_TOK_WORD && scn__lookup(t->s, scn__op_names) >= 0) {
        e->has_value = true;
        uint32_t ppm;
        if (!p_op(c, &e->op) || !scn__p_prob(c, &ppm))
            return false;
        e->value = ppm;
        return p_expect_at(c, e);
    }
    while (!scn__at_end(c) && !scn__is_word(c, "at")) {
        int f;
        if (!scn__p_keyword(c, "delivery property", flags, &f))
            return false;
        e->flags |= 1u << f;
    }
    if (!e->flags)
        return scn__fail_expected(c, "'all exactly_once in_order', "
                                  "'no_dup in_order' or '>= P'");
    return p_expect_at(c, e);
}

static bool
p_latency(struct scn_cc *c, struct scn_expect *e)
{
    struct scn_tok *t = scn__cur(c);
    static const char *what = "a percentile like p99 or max";
    if (t->kind != SCN_TOK_WORD)
        return scn__fail_expected(c, what);
    if (strcmp(t->s, "max") == 0) {
        e->percentile_ppm = SCN_PPM;
    } else {
        /* pNN or pNN.N: the number after 'p' is a percentage */
        uint32_t ppm = 0;
        if (t->s[0] != 'p' || !scn__percent_ppm(t->s + 1, &ppm) || ppm == 0) {
            scn__error(c, t->loc, "expected %s, got '%s'", what, t->s);
            return false;
        }
        e->percentile_ppm = ppm;
    }
    c->pos++;
    return p_op(c, &e->op) && scn__p_duration(c, &e->value);
}

static bool
p_expect_body(struct scn_cc *c, struct scn_expect *e, int kind_word)
{
    int i;
    switch (kind_word) {
    case 0: /* delivered */
        e->kind = SCN_EXPECT_DELIVERED;
        return p_expect_delivered(c, e);
    case 1: /* state */
        e->kind = SCN_EXPECT_STATE;
        if (!p_ab(c, e) ||
            !scn__p_keyword(c, "connection state", scn__state_names, &i))
            return false;
        e->state = (enum scn_conn_state)i;
        return p_expect_at(c, e);
    case 2: /* reconnects */
    case 3: /* resets */
        e->kind = kind_word == 2 ? SCN_EXPECT_RECONNECTS : SCN_EXPECT_RESETS;
        return p_ab(c, e) && p_op(c, &e->op) &&
               scn__p_count(c, "a count", 0, UINT64_MAX / 2, &e->value) &&
               p_expect_at(c, e);
    case 4: /* event */
        e->kind = SCN_EXPECT_EVENT;
        if (!scn__p_set(c, &e->a) ||
            !scn__p_keyword(c, "dispatcher event", scn__event_names, &i))
            return false;
        e->event = (enum scn_dispatch_event)i;
        if (scn__accept(c, "from") && !scn__p_set(c, &e->b))
            return false;
        return p_expect_at(c, e);
    case 5: /* latency */
        e->kind = SCN_EXPECT_LATENCY;
        return p_ab(c, e) && p_latency(c, e) && p_expect_at(c, e);
    case 6: /* connections */
        e->kind = SCN_EXPECT_CONNECTIONS;
        if (!scn__p_set(c, &e->a))
            return false;
        if (scn__cur(c)->kind == SCN_TOK_ARROW) {
            static const char *const objs[] = {"open", "closed", "replaced",
                                               NULL};
            c->pos++;
            if (!scn__p_set(c, &e->b) ||
                !scn__p_keyword(c, "connection object state", objs, &i))
                return false;
            e->has_obj_state = true;
            e->obj_state = (enum scn_conn_obj_state)i;
        }
        return p_op(c, &e->op) &&
               scn__p_count(c, "a count", 0, UINT64_MAX / 2, &e->value) &&
               p_expect_at(c, e);
    case 7: /* frames */
        e->kind = SCN_EXPECT_FRAMES;
        if (!p_ab(c, e) || !p_step(c, true, &e->tag))
            return false;
        if (scn__accept(c, "received"))
            e->received = true;
        else if (!scn__accept(c, "sent"))
            return scn__fail_expected(c, "'sent' or 'received'");
        return p_op(c, &e->op) &&
               scn__p_count(c, "a count", 0, UINT64_MAX / 2, &e->value) &&
               p_expect_at(c, e);
    default: { /* trace_hash */
        e->kind = SCN_EXPECT_TRACE_HASH;
        struct scn_tok *t = scn__cur(c);
        if (t->kind != SCN_TOK_WORD)
            return scn__fail_expected(c, "a hexadecimal fingerprint");
        size_t n = strlen(t->s);
        bool ok = n > 0 && n <= 64;
        for (size_t k = 0; ok && k < n; k++)
            ok = isxdigit((unsigned char)t->s[k]);
        if (!ok) {
            scn__error(c, t->loc, "expected a hexadecimal fingerprint (1 to "
                       "64 digits 0-9a-f, as the run prints after "
                       "'fingerprint:'), got '%s'", t->s);
            return false;
        }
        char *hex = scn__strndup(c->A, t->s, n);
        for (size_t k = 0; k < n; k++)
            hex[k] = (char)tolower((unsigned char)hex[k]);
        e->hex = hex;
        c->pos++;
        return end_of_statement(c, "the fingerprint");
    }
    }
}

static void
st_expect(struct scn_cc *c, struct scn_loc kw_loc)
{
    static const char *const kinds[] = {
        "delivered", "state", "reconnects", "resets", "event", "latency",
        "connections", "frames", "trace_hash", NULL};
    struct scn_expect e;
    memset(&e, 0, sizeof(e));
    e.loc = kw_loc;
    if (scn__accept(c, "no")) {
        e.negate = true;
        if (!scn__is_word(c, "event")) {
            scn__fail_expected(c, "'event' after 'expect no'");
            return;
        }
    }
    int k;
    if (!scn__p_keyword(c, "expectation", kinds, &k))
        return;
    if (p_expect_body(c, &e, k)) {
        struct scn_plan *p = c->plan;
        *SCN_PUSH(c->A, p->expects, p->n_expects, c->cap_exp) = e;
    }
}

/* -------------------------------------------------------------- header */

static bool
once(struct scn_cc *c, struct scn_loc *seen, struct scn_loc loc,
     const char *what)
{
    if (seen->line) {
        scn__error(c, loc, "'%s' given twice (first at line %u)", what,
                   seen->line);
        return false;
    }
    *seen = loc;
    return true;
}

static bool
p_link_opts(struct scn_cc *c, struct scn_link_opts *o)
{
    static const char *const names[] = {"latency", "jitter", "bandwidth",
                                        "loss", NULL};
    if (scn__at_end(c))
        return scn__fail_expected(c, "link options (latency, jitter, "
                                  "bandwidth, loss)");
    while (!scn__at_end(c)) {
        struct scn_tok *t = scn__cur(c);
        int i;
        if (!scn__p_keyword(c, "link option", names, &i))
            return false;
        bool *has[] = {&o->has_latency, &o->has_jitter, &o->has_bandwidth,
                       &o->has_loss};
        if (*has[i]) {
            scn__error(c, t->loc, "'%s' given twice", t->s);
            return false;
        }
        *has[i] = true;
        bool ok = i == 0   ? scn__p_duration(c, &o->latency_ns)
                  : i == 1 ? scn__p_duration(c, &o->jitter_ns)
                  : i == 2 ? scn__p_bandwidth(c, &o->bandwidth_bps)
                           : scn__p_prob(c, &o->loss_ppm);
        if (!ok)
            return false;
    }
    return true;
}

static void
st_link(struct scn_cc *c)
{
    struct scn_link l;
    memset(&l, 0, sizeof(l));
    l.loc = scn__cur(c)->loc;
    if (scn__accept(c, "default")) {
        l.is_default = true;
    } else if (!scn__p_set(c, &l.a) || !scn__p_arrow(c, true, &l.both_ways) ||
               !scn__p_set(c, &l.b)) {
        return;
    }
    if (!p_link_opts(c, &l.opts))
        return;
    struct scn_plan *p = c->plan;
    if (l.is_default) {
        struct scn_link_opts *d = &p->link_default;
        if (l.opts.has_latency)
            d->latency_ns = l.opts.latency_ns;
        if (l.opts.has_jitter)
            d->jitter_ns = l.opts.jitter_ns;
        if (l.opts.has_bandwidth)
            d->bandwidth_bps = l.opts.bandwidth_bps;
        if (l.opts.has_loss)
            d->loss_ppm = l.opts.loss_ppm;
    }
    *SCN_PUSH(c->A, p->links, p->n_links, c->cap_links) = l;
}

static int
find_node(const struct scn_plan *p, const char *name)
{
    for (uint32_t i = 0; i < p->n_nodes; i++)
        if (strcmp(p->nodes[i].name, name) == 0)
            return (int)i;
    return -1;
}

static void
declare(struct scn_cc *c, struct scn_loc loc, int type_index, const char *id,
        const struct scn_node *tmpl)
{
    struct scn_plan *p = c->plan;
    char name[96];
    snprintf(name, sizeof(name), "%s.%s", scn__entity_types[type_index], id);
    int prev = find_node(p, name);
    if (prev >= 0) {
        scn__error(c, loc, "node '%s' declared twice (first at line %u)",
                   name, p->nodes[prev].loc.line);
        return;
    }
    if (p->n_nodes >= 10000) {
        scn__error(c, loc, "too many nodes (10000 at most)");
        return;
    }
    struct scn_node *n = SCN_PUSH(c->A, p->nodes, p->n_nodes, c->cap_nodes);
    *n = *tmpl;
    n->loc = loc;
    n->name = scn__strndup(c->A, name, strlen(name));
    n->id = n->name + strlen(scn__entity_types[type_index]) + 1;
    n->type = scn__entity_type_value(type_index);
    n->num = -1;
    if (id[0] && strspn(id, "0123456789") == strlen(id) && strlen(id) < 10)
        n->num = (int64_t)strtoll(id, NULL, 10);
}

static void
st_node(struct scn_cc *c)
{
    struct scn_set s;
    if (!scn__p_set(c, &s) || !scn__expect_word(c, "policy"))
        return;
    struct scn_node tmpl;
    memset(&tmpl, 0, sizeof(tmpl));
    if (!p_policy(c, &tmpl.policy))
        return;
    if (scn__accept(c, "addr")) {
        struct scn_loc aloc = scn__cur(c)->loc;
        if (!p_addr(c, &tmpl.addr))
            return;
        if (strchr(s.text, ',') || strchr(s.text, '[')) {
            scn__error(c, aloc, "'addr' gives one node's address; '%s' "
                       "declares several", s.text);
            return;
        }
    }
    if (scn__accept(c, "workers")) {
        uint64_t w;
        if (!scn__p_count(c, "a worker count", 1, 64, &w))
            return;
        tmpl.workers = (uint32_t)w;
    }
    if (!end_of_statement(c, "the node declaration"))
        return;
    struct scn_item it;
    char err[200];
    for (uint32_t k = 0; scn__set_item(s.text, k, &it, err, sizeof(err)) > 0;
         k++) {
        if (it.kind == SCN_ITEM_ALL || it.kind == SCN_ITEM_GLOB) {
            scn__error(c, s.loc, "'%s' cannot declare nodes: name them "
                       "(osd.0), list them (osd.0,osd.1) or give a range "
                       "(osd.[0..3])", s.text);
            return;
        }
        if (it.kind == SCN_ITEM_NAME) {
            declare(c, s.loc, it.type_index, it.id, &tmpl);
            continue;
        }
        for (uint64_t i = it.lo; i <= it.hi && !c->stmt_failed; i++) {
            char id[24];
            snprintf(id, sizeof(id), "%llu", (unsigned long long)i);
            declare(c, s.loc, it.type_index, id, &tmpl);
        }
    }
}

static void
st_policy(struct scn_cc *c)
{
    struct scn_policy_override o;
    memset(&o, 0, sizeof(o));
    o.loc = scn__cur(c)->loc;
    bool both;
    if (!scn__p_set(c, &o.nodes) || !scn__p_arrow(c, false, &both) ||
        !scn__p_set(c, &o.peers) || !p_policy(c, &o.policy) ||
        !end_of_statement(c, "the policy"))
        return;
    struct scn_plan *p = c->plan;
    *SCN_PUSH(c->A, p->policies, p->n_policies, c->cap_pol) = o;
}

static void
st_config(struct scn_cc *c)
{
    struct scn_config cf;
    memset(&cf, 0, sizeof(cf));
    cf.loc = scn__cur(c)->loc;
    int k;
    if (!scn__p_set(c, &cf.nodes) ||
        !scn__p_keyword(c, "config key", scn__config_names, &k))
        return;
    cf.key = (enum scn_config_key)k;
    bool ok = false;
    switch (scn_config_type(cf.key)) {
    case SCN_VALUE_DURATION:
        ok = scn__p_duration(c, &cf.value);
        break;
    case SCN_VALUE_SIZE:
        ok = scn__p_size(c, &cf.value);
        break;
    case SCN_VALUE_COUNT:
        ok = scn__p_count(c, "a number", 0, UINT32_MAX, &cf.value);
        break;
    case SCN_VALUE_BOOL: {
        static const char *const onoff[] = {"off", "on", NULL};
        int v;
        ok = scn__p_keyword(c, "value for 'crc' (on or off)", onoff, &v);
        cf.value = (uint64_t)v;
        break;
    }
    }
    if (!ok || !end_of_statement(c, "the value"))
        return;
    struct scn_plan *p = c->plan;
    *SCN_PUSH(c->A, p->configs, p->n_configs, c->cap_cfg) = cf;
}

static void
st_header(struct scn_cc *c, int w, struct scn_tok *kw)
{
    struct scn_plan *p = c->plan;
    uint64_t v;
    int i;
    switch (w) {
    case 0: { /* scenario */
        if (!once(c, &c->seen_title, kw->loc, "scenario"))
            return;
        struct scn_tok *t = scn__cur(c);
        if (t->kind != SCN_TOK_STRING) {
            scn__fail_expected(c, "a quoted title like \"my scenario\"");
            return;
        }
        c->pos++;
        p->title = t->s;
        end_of_statement(c, "the title");
        return;
    }
    case 1: /* seed */
        if (once(c, &c->seen_seed, kw->loc, "seed") &&
            scn__p_count(c, "a seed", 0, UINT64_MAX, &p->seed) &&
            end_of_statement(c, "the seed"))
            p->has_seed = true;
        return;
    case 2: { /* stack */
        static const char *const stacks[] = {"sim", "posix", NULL};
        if (once(c, &c->seen_stack, kw->loc, "stack") &&
            scn__p_keyword(c, "stack", stacks, &i) &&
            end_of_statement(c, "the stack")) {
            p->stack = (enum scn_stack)i;
            p->has_stack = true;
        }
        return;
    }
    case 3: /* duration */
        c->duration_loc = scn__cur(c)->loc;
        if (once(c, &c->seen_duration, kw->loc, "duration") &&
            scn__p_positive_duration(c, "the duration", &p->duration_ns) &&
            end_of_statement(c, "the duration"))
            p->has_duration = true;
        return;
    case 4: /* workers */
        if (once(c, &c->seen_workers, kw->loc, "workers") &&
            scn__p_count(c, "a worker count", 1, 64, &v) &&
            end_of_statement(c, "the worker count"))
            p->workers = (uint32_t)v;
        return;
    case 5:
        st_link(c);
        return;
    case 6:
        st_node(c);
        return;
    case 7:
        st_policy(c);
        return;
    default:
        st_config(c);
        return;
    }
}

/* ----------------------------------------------------------- statements */

static void
statement(struct scn_cc *c)
{
    struct scn_tok *kw = scn__cur(c);
    if (kw->kind != SCN_TOK_WORD) {
        char b[80];
        scn__error(c, kw->loc, "expected a statement, got %s",
                   scn__desc(kw, b, sizeof(b)));
        return;
    }
    c->pos++;
    int w = scn__lookup(kw->s, header_words);
    if (w >= 0) {
        if (c->in_timeline) {
            scn__error(c, kw->loc, "'%s' is a header statement: it must come "
                       "before the first 'at' or 'every'", kw->s);
            return;
        }
        st_header(c, w, kw);
        return;
    }
    if (!strcmp(kw->s, "at") || !strcmp(kw->s, "every")) {
        c->in_timeline = true;
        if (kw->s[0] == 'a')
            st_at(c);
        else
            st_every(c);
        return;
    }
    if (!strcmp(kw->s, "on")) {
        st_on(c, kw->loc);
        return;
    }
    if (!strcmp(kw->s, "expect")) {
        st_expect(c, kw->loc);
        return;
    }
    if (!strcmp(kw->s, "break")) {
        if (c->in_timeline) {
            scn__error(c, kw->loc, "a 'break' after the timeline started must "
                       "be a timeline action: 'at T break ...'");
            return;
        }
        struct scn_plan *p = c->plan;
        struct scn_break b;
        if (!p_break(c, &b))
            return;
        b.loc = kw->loc;
        *SCN_PUSH(c->A, p->breaks, p->n_breaks, c->cap_brk) = b;
        return;
    }
    char hint[64];
    if (scn__lookup(kw->s, action_words) >= 0 || scn__looks_like_set(kw)) {
        scn__error(c, kw->loc, "'%s' starts an action: it needs a time, "
                   "e.g. 'at 1s %s ...'", kw->s, kw->s);
        return;
    }
    scn__error(c, kw->loc, "unknown statement '%s'%s", kw->s,
               scn__hint(hint, sizeof(hint), kw->s, statement_words));
}

void
scn__parse(struct scn_cc *c)
{
    while (scn__cur(c)->kind != SCN_TOK_EOF) {
        c->stmt_failed = false;
        c->seq++;
        statement(c);
        /* skip what is left of the statement (after an error) */
        while (scn__cur(c)->kind != SCN_TOK_EOL &&
               scn__cur(c)->kind != SCN_TOK_EOF)
            c->pos++;
        if (scn__cur(c)->kind == SCN_TOK_EOL)
            c->pos++;
    }
}
