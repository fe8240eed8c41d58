/*
 * The checker: resolves every node set against the declared nodes, then
 * the semantic checks that need the whole file (times against duration,
 * heal with nothing to heal, release without a break, ...), then sorts the
 * timeline by (time, file order).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scn_internal.h"

/* "1.5s", "250ms", "0": the largest unit not above the value, exact */
static const char *
fmt_ns(char *buf, size_t len, uint64_t ns)
{
    static const struct {
        const char *u;
        uint64_t m;
        int digits;
    } units[] = {{"s", SCN_NS_PER_S, 9},
                 {"ms", SCN_NS_PER_MS, 6},
                 {"us", SCN_NS_PER_US, 3},
                 {"ns", 1, 0}};
    if (ns == 0) {
        snprintf(buf, len, "0");
        return buf;
    }
    size_t i = 0;
    while (ns < units[i].m)
        i++;
    uint64_t whole = ns / units[i].m, frac = ns % units[i].m;
    if (frac == 0) {
        snprintf(buf, len, "%llu%s", (unsigned long long)whole, units[i].u);
        return buf;
    }
    char f[16];
    snprintf(f, sizeof(f), "%0*llu", units[i].digits, (unsigned long long)frac);
    size_t n = strlen(f);
    while (n > 0 && f[n - 1] == '0')
        f[--n] = '\0';
    snprintf(buf, len, "%llu.%s%s", (unsigned long long)whole, f, units[i].u);
    return buf;
}

/* ------------------------------------------------------------ resolving */

struct resolver {
    struct scn_cc *c;
    const char **names; /* node names, NULL-terminated, for suggestions */
    uint8_t *mark;      /* one per node */
};

static int
node_index(const struct scn_plan *p, int type_index, const char *id)
{
    const char *t = scn__entity_types[type_index];
    size_t tl = strlen(t);
    for (uint32_t i = 0; i < p->n_nodes; i++) {
        const char *n = p->nodes[i].name;
        if (strncmp(n, t, tl) == 0 && n[tl] == '.' && strcmp(n + tl + 1, id) == 0)
            return (int)i;
    }
    return -1;
}

static bool
mark_item(struct resolver *r, const struct scn_set *s, const struct scn_item *it)
{
    struct scn_cc *c = r->c;
    struct scn_plan *p = c->plan;
    uint8_t type = it->kind == SCN_ITEM_ALL ? 0 : scn__entity_type_value(it->type_index);
    char hint[96];
    uint32_t hits = 0;
    switch (it->kind) {
    case SCN_ITEM_ALL:
    case SCN_ITEM_GLOB:
        for (uint32_t i = 0; i < p->n_nodes; i++)
            if (it->kind == SCN_ITEM_ALL || p->nodes[i].type == type) {
                r->mark[i] = 1;
                hits++;
            }
        if (!hits) {
            scn__error(c, s->loc, "node set '%s' matches no declared node",
                       it->kind == SCN_ITEM_ALL ? "all" : s->text);
            return false;
        }
        return true;
    case SCN_ITEM_NAME: {
        int i = node_index(p, it->type_index, it->id);
        if (i < 0) {
            char name[96];
            snprintf(name, sizeof(name), "%s.%s",
                     scn__entity_types[it->type_index], it->id);
            /* osd.9 is no typo of osd.0: suggest only for word ids */
            bool numeric = strspn(it->id, "0123456789") == strlen(it->id);
            scn__error(c, s->loc, "unknown node '%s' (not declared with "
                       "'node')%s", name,
                       numeric ? "" : scn__hint(hint, sizeof(hint), name, r->names));
            return false;
        }
        r->mark[i] = 1;
        return true;
    }
    case SCN_ITEM_RANGE:
        for (uint64_t k = it->lo; k <= it->hi; k++) {
            char id[24];
            snprintf(id, sizeof(id), "%llu", (unsigned long long)k);
            int i = node_index(p, it->type_index, id);
            if (i < 0) {
                scn__error(c, s->loc, "node '%s.%s' of range '%s' is not "
                           "declared", scn__entity_types[it->type_index], id,
                           s->text);
                return false;
            }
            r->mark[i] = 1;
        }
        return true;
    }
    return false;
}

static bool
resolve(struct resolver *r, struct scn_set *s)
{
    if (!s->text)
        return true;
    struct scn_plan *p = r->c->plan;
    memset(r->mark, 0, p->n_nodes ? p->n_nodes : 1);
    struct scn_item it;
    char err[200];
    int k;
    for (uint32_t i = 0; (k = scn__set_item(s->text, i, &it, err, sizeof(err))) > 0; i++)
        if (!mark_item(r, s, &it))
            return false;
    uint32_t n = 0;
    for (uint32_t i = 0; i < p->n_nodes; i++)
        n += r->mark[i];
    uint32_t *idx = scn__alloc(r->c->A, (n ? n : 1) * sizeof(*idx));
    n = 0;
    for (uint32_t i = 0; i < p->n_nodes; i++)
        if (r->mark[i])
            idx[n++] = i;
    s->idx = idx;
    s->n = n;
    return true;
}

static void
resolve_action(struct resolver *r, struct scn_action *a)
{
    resolve(r, &a->subject);
    resolve(r, &a->peer);
    if (a->kind == SCN_ACT_BREAK || a->kind == SCN_ACT_RELEASE) {
        resolve(r, &a->u.brk.node);
        resolve(r, &a->u.brk.peer);
    }
}

static void
resolve_all(struct scn_cc *c)
{
    struct scn_plan *p = c->plan;
    struct resolver r = {.c = c};
    r.names = scn__alloc(c->A, (p->n_nodes + 1) * sizeof(*r.names));
    for (uint32_t i = 0; i < p->n_nodes; i++)
        r.names[i] = p->nodes[i].name;
    r.mark = scn__alloc(c->A, p->n_nodes + 1);
    for (uint32_t i = 0; i < p->n_links; i++) {
        resolve(&r, &p->links[i].a);
        resolve(&r, &p->links[i].b);
    }
    for (uint32_t i = 0; i < p->n_policies; i++) {
        struct scn_policy_override *o = &p->policies[i];
        resolve(&r, &o->nodes);
        if (resolve(&r, &o->peers))
            for (uint32_t k = 0; k < o->peers.n; k++)
                o->peer_types |= 1u << p->nodes[o->peers.idx[k]].type;
    }
    for (uint32_t i = 0; i < p->n_configs; i++)
        resolve(&r, &p->configs[i].nodes);
    for (uint32_t i = 0; i < p->n_breaks; i++) {
        resolve(&r, &p->breaks[i].node);
        resolve(&r, &p->breaks[i].peer);
    }
    for (uint32_t i = 0; i < p->n_timeline; i++)
        resolve_action(&r, &p->timeline[i].act);
    for (uint32_t i = 0; i < p->n_triggers; i++) {
        resolve(&r, &p->triggers[i].node);
        resolve(&r, &p->triggers[i].peer);
        resolve_action(&r, &p->triggers[i].act);
    }
    for (uint32_t i = 0; i < p->n_expects; i++) {
        resolve(&r, &p->expects[i].a);
        resolve(&r, &p->expects[i].b);
    }
}

/* ------------------------------------------------------------- helpers */

static bool
intersects(const struct scn_set *a, const struct scn_set *b)
{
    for (uint32_t i = 0, j = 0; i < a->n && j < b->n;) {
        if (a->idx[i] == b->idx[j])
            return true;
        if (a->idx[i] < b->idx[j])
            i++;
        else
            j++;
    }
    return false;
}

static enum scn_fault_kind
fault_of(enum scn_action_kind k)
{
    switch (k) {
    case SCN_ACT_DROP: return SCN_FAULT_DROP;
    case SCN_ACT_BLACKHOLE: return SCN_FAULT_BLACKHOLE;
    case SCN_ACT_DELAY: return SCN_FAULT_DELAY;
    case SCN_ACT_BANDWIDTH: return SCN_FAULT_BANDWIDTH;
    case SCN_ACT_PARTITION: return SCN_FAULT_PARTITION;
    case SCN_ACT_RESET: return SCN_FAULT_RESET;
    case SCN_ACT_CORRUPT: return SCN_FAULT_CORRUPT;
    case SCN_ACT_KILL: return SCN_FAULT_KILL;
    case SCN_ACT_CRASH: return SCN_FAULT_CRASH;
    case SCN_ACT_PAUSE: return SCN_FAULT_PAUSE;
    default: return SCN_FAULT_NONE;
    }
}

/* ---------------------------------------------------------------- heal */

/* Could the fault action f (scheduled at t/seq, or from a trigger when
 * tl is NULL) be active when heal h runs at th/sh (any time when the heal
 * itself is in a trigger, th == UINT64_MAX)? */
static bool
could_heal(const struct scn_action *h, uint64_t th, uint32_t sh,
           const struct scn_action *f, const struct scn_timed *tl)
{
    enum scn_fault_kind want = h->u.heal.kind;
    if (f->kind == SCN_ACT_CHAOS) {
        if (want != SCN_FAULT_NONE && !(f->u.chaos.kinds & (1u << want)))
            return false;
        if (h->subject.n && !intersects(&h->subject, &f->subject))
            return false;
        if (!tl || th == UINT64_MAX)
            return true;
        uint64_t start = tl->t_ns > f->u.chaos.from_ns ? tl->t_ns : f->u.chaos.from_ns;
        return start < th || (start == th && tl->seq < sh);
    }
    enum scn_fault_kind k = fault_of(f->kind);
    if (k == SCN_FAULT_NONE || (want != SCN_FAULT_NONE && k != want))
        return false;
    if (h->subject.n && !intersects(&h->subject, &f->subject) &&
        !intersects(&h->subject, &f->peer))
        return false;
    if (!tl || th == UINT64_MAX)
        return true;
    if (tl->t_ns > th || (tl->t_ns == th && tl->seq >= sh))
        return false;
    /* a fault that heals itself before the heal runs leaves nothing; a
     * repeated one may be active again */
    return f->for_ns == 0 || tl->period_ns != 0 || tl->t_ns + f->for_ns > th;
}

static void
check_heal(struct scn_cc *c, const struct scn_action *h, uint64_t th, uint32_t sh)
{
    struct scn_plan *p = c->plan;
    for (uint32_t i = 0; i < p->n_timeline; i++)
        if (could_heal(h, th, sh, &p->timeline[i].act, &p->timeline[i]))
            return;
    for (uint32_t i = 0; i < p->n_triggers; i++)
        if (could_heal(h, th, sh, &p->triggers[i].act, NULL))
            return;
    char t[32];
    const char *kind = h->u.heal.kind == SCN_FAULT_NONE ? "" : scn_fault_name(h->u.heal.kind);
    if (th == UINT64_MAX)
        scn__error(c, h->loc, "nothing to heal: no %s%sfault%s%s anywhere in "
                   "the scenario", kind, *kind ? " " : "",
                   h->subject.n ? " touching " : "",
                   h->subject.n ? h->subject.text : "");
    else
        scn__error(c, h->loc, "nothing to heal: no %s%sfault%s%s could be "
                   "active at %s", kind, *kind ? " " : "",
                   h->subject.n ? " touching " : "",
                   h->subject.n ? h->subject.text : "",
                   fmt_ns(t, sizeof(t), th));
}

/* ---------------------------------------------------------- breakpoints */

static bool
break_matches(const struct scn_break *b, const struct scn_break *want,
              bool need_hold)
{
    if (b->step != want->step || !intersects(&b->node, &want->node))
        return false;
    if (b->peer.n && want->peer.n && !intersects(&b->peer, &want->peer))
        return false;
    if (need_hold && b->action != SCN_BREAK_BLOCK && b->action != SCN_BREAK_STALL)
        return false;
    return true;
}

static bool
any_break(struct scn_cc *c, const struct scn_break *want, bool need_hold)
{
    struct scn_plan *p = c->plan;
    for (uint32_t i = 0; i < p->n_breaks; i++)
        if (break_matches(&p->breaks[i], want, need_hold))
            return true;
    for (uint32_t i = 0; i < p->n_timeline; i++)
        if (p->timeline[i].act.kind == SCN_ACT_BREAK &&
            break_matches(&p->timeline[i].act.u.brk, want, need_hold))
            return true;
    for (uint32_t i = 0; i < p->n_triggers; i++)
        if (p->triggers[i].act.kind == SCN_ACT_BREAK &&
            break_matches(&p->triggers[i].act.u.brk, want, need_hold))
            return true;
    return false;
}

static void
check_release(struct scn_cc *c, const struct scn_action *a)
{
    const struct scn_break *b = &a->u.brk;
    if (!b->node.n || any_break(c, b, true))
        return;
    scn__error(c, a->loc, "'release' without a matching 'break %s%s%s at %s "
               "... block|stall' (only block and stall wait for a release)",
               b->node.text, b->peer.n ? " -> " : "",
               b->peer.n ? b->peer.text : "", scn_step_name(b->step));
}

/* ------------------------------------------------------------- checks */

static void
check_action(struct scn_cc *c, const struct scn_action *a, uint64_t t, uint32_t seq)
{
    if (a->kind == SCN_ACT_HEAL)
        check_heal(c, a, t, seq);
    else if (a->kind == SCN_ACT_RELEASE)
        check_release(c, a);
}

static void
check_time(struct scn_cc *c, struct scn_loc loc, uint64_t t, const char *what)
{
    struct scn_plan *p = c->plan;
    if (t == SCN_TIME_END || t <= p->duration_ns)
        return;
    char a[32], b[32];
    scn__error(c, loc, "%s %s is after the end of the run (duration %s%s)",
               what, fmt_ns(a, sizeof(a), t), fmt_ns(b, sizeof(b), p->duration_ns),
               p->has_duration ? "" : ", the default");
}

static void
note_time(struct scn_plan *p, uint64_t t)
{
    if (t != SCN_TIME_END && t > p->last_named_ns)
        p->last_named_ns = t;
}

static void
check_times(struct scn_cc *c)
{
    struct scn_plan *p = c->plan;
    for (uint32_t i = 0; i < p->n_timeline; i++) {
        const struct scn_timed *e = &p->timeline[i];
        check_time(c, e->loc, e->t_ns, "time");
        check_time(c, e->loc, e->until_ns, "'until'");
        note_time(p, e->t_ns);
        note_time(p, e->until_ns);
        if (e->act.for_ns && e->period_ns == 0)
            note_time(p, e->t_ns + e->act.for_ns);
        if (e->act.kind == SCN_ACT_CHAOS) {
            check_time(c, e->act.loc, e->act.u.chaos.from_ns, "chaos 'from'");
            check_time(c, e->act.loc, e->act.u.chaos.until_ns, "chaos 'until'");
            note_time(p, e->act.u.chaos.until_ns);
        }
    }
    for (uint32_t i = 0; i < p->n_expects; i++) {
        const struct scn_expect *e = &p->expects[i];
        if (e->has_at) {
            check_time(c, e->loc, e->at_ns, "expectation time");
            note_time(p, e->at_ns);
        }
    }
}

static void
check_triggers(struct scn_cc *c)
{
    struct scn_plan *p = c->plan;
    for (uint32_t i = 0; i < p->n_triggers; i++) {
        const struct scn_trigger *t = &p->triggers[i];
        check_action(c, &t->act, UINT64_MAX, 0);
        if (t->kind == SCN_TRIG_BREAKPOINT && t->node.n) {
            struct scn_break want = {.node = t->node, .step = t->step};
            if (!any_break(c, &want, false))
                scn__error(c, t->loc, "no 'break' on %s at %s for this "
                           "trigger to wait for", t->node.text,
                           scn_step_name(t->step));
        }
    }
}

static int
cmp_timed(const void *x, const void *y)
{
    const struct scn_timed *a = x, *b = y;
    if (a->t_ns != b->t_ns)
        return a->t_ns < b->t_ns ? -1 : 1;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

void
scn__check(struct scn_cc *c)
{
    struct scn_plan *p = c->plan;
    uint32_t before = c->d->total;
    resolve_all(c);
    check_times(c);
    /* heal and release compare resolved sets: skip them when a set did not
     * resolve, rather than adding a second error for the same mistake */
    if (c->d->total == before) {
        for (uint32_t i = 0; i < p->n_timeline; i++)
            check_action(c, &p->timeline[i].act, p->timeline[i].t_ns,
                         p->timeline[i].seq);
        check_triggers(c);
    }
    if (p->n_timeline > 1)
        qsort(p->timeline, p->n_timeline, sizeof(*p->timeline), cmp_timed);
}
