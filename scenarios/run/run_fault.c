/*
 * Faults on the simulated stack: link and host faults through the sim's
 * fault timeline (each heals by itself after `for T`, or by `heal`),
 * blackholes through the messenger, chaos drawn from the world's fault
 * stream, and protocol breakpoints by frame tag.
 */
#include "run_internal.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static struct rn_fault *
fault_new(struct rn *r)
{
    if (r->nfaults == r->capfaults) {
        r->capfaults = r->capfaults ? r->capfaults * 2 : 16;
        r->faults = realloc(r->faults, r->capfaults * sizeof(*r->faults));
        if (!r->faults)
            abort();
    }
    struct rn_fault *f = &r->faults[r->nfaults++];
    memset(f, 0, sizeof(*f));
    f->id = ++r->faults_started;
    return f;
}

static void
observe(struct rn *r, struct rn_fault *f, const char *kind, uint32_t a,
        uint32_t b, bool both, const char *params)
{
    if (!r->o->observer || !r->o->observer->fault)
        return;
    char t[160];
    if (a == b)
        snprintf(t, sizeof(t), "%s", r->nodes[a].decl->name);
    else
        snprintf(t, sizeof(t), "%s %s %s", r->nodes[a].decl->name,
                 both ? "<->" : "->", r->nodes[b].decl->name);
    r->o->observer->fault(r->o->observer->arg, rn_now(r), f->id, kind, t,
                          params);
}

static enum scn_fault_kind
fault_kind_of(enum scn_action_kind k)
{
    switch (k) {
    case SCN_ACT_DROP:
        return SCN_FAULT_DROP;
    case SCN_ACT_BLACKHOLE:
        return SCN_FAULT_BLACKHOLE;
    case SCN_ACT_DELAY:
        return SCN_FAULT_DELAY;
    case SCN_ACT_BANDWIDTH:
        return SCN_FAULT_BANDWIDTH;
    case SCN_ACT_PARTITION:
        return SCN_FAULT_PARTITION;
    case SCN_ACT_RESET:
        return SCN_FAULT_RESET;
    case SCN_ACT_CORRUPT:
        return SCN_FAULT_CORRUPT;
    case SCN_ACT_KILL:
        return SCN_FAULT_KILL;
    case SCN_ACT_CRASH:
        return SCN_FAULT_CRASH;
    case SCN_ACT_PAUSE:
        return SCN_FAULT_PAUSE;
    default:
        return SCN_FAULT_NONE;
    }
}

static struct msgr_blackhole
blackhole_rule(struct rn *r, const struct rn_fault *f)
{
    struct msgr_blackhole b;
    memset(&b, 0, sizeof(b));
    const struct msgr_addrvec *v = &r->nodes[f->b].addrs;
    if (v->n)
        b.addr = v->v[0];
    b.peer_types = r->nodes[f->b].decl->type;
    b.msg_type = f->has_type ? (uint16_t)f->msg_type : 0;
    return b;
}

/* Re-installs the active blackholes of a node's new messenger. */
void
rn_blackhole_apply(struct rn *r, struct rn_node *nd)
{
    for (uint32_t i = 0; i < r->nfaults; i++) {
        struct rn_fault *f = &r->faults[i];
        if (!f->active || f->kind != SCN_FAULT_BLACKHOLE)
            continue;
        if (f->a == nd->idx && nd->m) {
            struct msgr_blackhole b = blackhole_rule(r, f);
            RN_CALL(r, msgr_blackhole_set(nd->m, &b));
        }
        if (f->both_ways && f->b == nd->idx && nd->m) {
            struct rn_fault g = *f;
            g.a = f->b;
            g.b = f->a;
            struct msgr_blackhole b = blackhole_rule(r, &g);
            RN_CALL(r, msgr_blackhole_set(nd->m, &b));
        }
    }
}

static void
blackhole_clear(struct rn *r, struct rn_fault *f)
{
    for (int dir = 0; dir < (f->both_ways ? 2 : 1); dir++) {
        struct rn_fault g = *f;
        if (dir) {
            g.a = f->b;
            g.b = f->a;
        }
        struct rn_node *nd = &r->nodes[g.a];
        if (!nd->m)
            continue;
        struct msgr_blackhole b = blackhole_rule(r, &g);
        RN_CALL(r, msgr_blackhole_clear(nd->m, &b));
    }
}

static void
heal_one(struct rn *r, struct rn_fault *f)
{
    if (!f->active)
        return;
    f->active = false;
    if (f->kind == SCN_FAULT_BLACKHOLE)
        blackhole_clear(r, f);
    else
        r->env->heal(r, f);
    if (r->o->observer && r->o->observer->fault_heal)
        r->o->observer->fault_heal(r->o->observer->arg, rn_now(r), f->id);
}

/* The simulator's half of a link fault: schedule it on the fault
 * timeline. */
void
rn_sim_pair_fault(struct rn *r, const struct scn_action *a, uint32_t s,
                  uint32_t d, struct rn_fault *f)
{
    uint64_t now = rn_now(r);
    struct sim_fault sf;
    memset(&sf, 0, sizeof(sf));
    sf.a = r->nodes[s].host;
    sf.b = r->nodes[d].host;
    sf.oneway = !a->both_ways;
    sf.start_at_ns = now;
    sf.heal_at_ns = f->heal_at;
    sf.ppm = a->prob_ppm;
    switch (a->kind) {
    case SCN_ACT_DROP:
        sf.kind = SIM_FAULT_LOSS;
        break;
    case SCN_ACT_DELAY:
        sf.kind = SIM_FAULT_DELAY;
        sf.delay_ns = a->u.delay.delay_ns;
        sf.jitter_ns = a->u.delay.jitter_ns;
        break;
    case SCN_ACT_BANDWIDTH:
        sf.kind = SIM_FAULT_BANDWIDTH;
        sf.bandwidth_bps = a->u.bandwidth.bps;
        break;
    case SCN_ACT_PARTITION:
        sf.kind = SIM_FAULT_PARTITION;
        break;
    case SCN_ACT_RESET:
        sf.kind = a->has_prob ? SIM_FAULT_RESET_PROB : SIM_FAULT_RESET;
        break;
    case SCN_ACT_CORRUPT:
        sf.kind = SIM_FAULT_CORRUPT;
        break;
    default:
        return;
    }
    f->run = sim_fault_schedule(r->w, &sf);
    if (!f->run)
        rn_internal(r, "line %u: the simulator refused the fault",
                    a->loc.line);
}

void
rn_sim_pause(struct rn *r, uint32_t i, uint64_t for_ns, struct rn_fault *f)
{
    struct sim_fault sf;
    memset(&sf, 0, sizeof(sf));
    sf.kind = SIM_FAULT_PAUSE;
    sf.a = r->nodes[i].host;
    sf.start_at_ns = rn_now(r);
    sf.heal_at_ns = rn_now(r) + for_ns;
    f->run = sim_fault_schedule(r->w, &sf);
    f->active = f->run != NULL;
}

void
rn_sim_heal(struct rn *r, struct rn_fault *f)
{
    (void)r;
    if (f->run)
        sim_fault_heal(f->run);
}

bool
rn_sim_fault_over(struct rn *r, struct rn_fault *f)
{
    (void)r;
    return !f->run || !sim_fault_active(f->run);
}

static void
pair_fault(struct rn *r, const struct scn_action *a, uint32_t s, uint32_t d)
{
    enum scn_fault_kind kind = fault_kind_of(a->kind);
    uint64_t now = rn_now(r);
    uint64_t heal_at = a->for_ns ? now + a->for_ns : 0;
    char params[96];
    params[0] = 0;
    switch (a->kind) {
    case SCN_ACT_DROP:
        snprintf(params, sizeof(params), "loss %u ppm", a->prob_ppm);
        break;
    case SCN_ACT_DELAY:
        snprintf(params, sizeof(params), "delay %" PRIu64 " ns jitter %" PRIu64
                 " ns", a->u.delay.delay_ns, a->u.delay.jitter_ns);
        break;
    case SCN_ACT_BANDWIDTH:
        snprintf(params, sizeof(params), "%" PRIu64 " bit/s",
                 a->u.bandwidth.bps);
        break;
    case SCN_ACT_PARTITION:
        break;
    case SCN_ACT_RESET:
        if (a->has_prob)
            snprintf(params, sizeof(params), "per operation %u ppm",
                     a->prob_ppm);
        else
            heal_at = 0; /* a one-shot reset is an event */
        break;
    case SCN_ACT_CORRUPT:
        snprintf(params, sizeof(params), "%u ppm of segments", a->prob_ppm);
        break;
    case SCN_ACT_BLACKHOLE: {
        struct rn_fault *f = fault_new(r);
        f->kind = kind;
        f->a = s;
        f->b = d;
        f->both_ways = a->both_ways;
        f->has_type = a->u.blackhole.has_type;
        f->msg_type = a->u.blackhole.msg_type;
        f->active = true;
        f->heal_at = heal_at;
        if (f->has_type)
            snprintf(params, sizeof(params), "type %" PRIu64, f->msg_type);
        observe(r, f, "blackhole", s, d, a->both_ways, params);
        rn_blackhole_apply(r, &r->nodes[s]);
        if (a->both_ways)
            rn_blackhole_apply(r, &r->nodes[d]);
        return;
    }
    default:
        return;
    }
    struct rn_fault *f = fault_new(r);
    f->kind = kind;
    f->a = s;
    f->b = d;
    f->both_ways = a->both_ways;
    f->heal_at = heal_at;
    f->ppm = a->prob_ppm;
    f->delay_ns = a->kind == SCN_ACT_DELAY ? a->u.delay.delay_ns : 0;
    f->bps = a->kind == SCN_ACT_BANDWIDTH ? a->u.bandwidth.bps : 0;
    /* a one-shot reset is an event, not a state that lasts */
    f->active = !(a->kind == SCN_ACT_RESET && !a->has_prob);
    r->env->pair_fault(r, a, s, d, f);
    if (r->internal_error) {
        f->active = false;
        return;
    }
    observe(r, f, scn_fault_name(kind), s, d, a->both_ways, params);
}

static void break_arm(struct rn *r, const struct scn_action *a);
static void break_release(struct rn *r, const struct scn_action *a);

void
rn_fault_action(struct rn *r, const struct scn_action *a)
{
    if (a->kind == SCN_ACT_BREAK) {
        break_arm(r, a);
        return;
    }
    if (a->kind == SCN_ACT_RELEASE) {
        break_release(r, a);
        return;
    }
    if (a->kind == SCN_ACT_PAUSE) {
        for (uint32_t k = 0; k < a->subject.n; k++) {
            uint32_t i = a->subject.idx[k];
            struct rn_fault *f = fault_new(r);
            f->kind = SCN_FAULT_PAUSE;
            f->a = f->b = i;
            f->heal_at = rn_now(r) + a->for_ns;
            r->env->pause(r, i, a->for_ns, f);
            observe(r, f, "pause", i, i, false, "");
        }
        return;
    }
    for (uint32_t k = 0; k < a->subject.n; k++)
        for (uint32_t j = 0; j < a->peer.n; j++) {
            uint32_t s = a->subject.idx[k], d = a->peer.idx[j];
            if (s == d)
                continue;
            /* `A <-> B` over sets: each unordered pair once */
            if (a->both_ways && s > d && scn_set_has(&a->peer, s) &&
                scn_set_has(&a->subject, d))
                continue;
            pair_fault(r, a, s, d);
        }
}

static bool
touches(const struct scn_set *s, const struct rn_fault *f)
{
    if (!s->n)
        return true;
    return scn_set_has(s, f->a) || scn_set_has(s, f->b);
}

void
rn_heal(struct rn *r, const struct scn_action *a)
{
    for (uint32_t i = 0; i < r->nfaults; i++) {
        struct rn_fault *f = &r->faults[i];
        if (!f->active)
            continue;
        if (a->u.heal.kind != SCN_FAULT_NONE && f->kind != a->u.heal.kind)
            continue;
        if (!touches(&a->subject, f))
            continue;
        heal_one(r, f);
    }
}

void
rn_fault_expire(struct rn *r)
{
    uint64_t now = rn_now(r);
    for (uint32_t i = 0; i < r->nfaults; i++) {
        struct rn_fault *f = &r->faults[i];
        if (!f->active)
            continue;
        bool over = f->heal_at && now >= f->heal_at &&
                    (!f->run || r->env->fault_over(r, f));
        if (over)
            heal_one(r, f);
    }
}

bool
rn_faults_active(struct rn *r)
{
    for (uint32_t i = 0; i < r->nfaults; i++)
        if (r->faults[i].active)
            return true;
    return false;
}

void
rn_faults_free(struct rn *r)
{
    for (uint32_t i = 0; i < r->nfaults; i++)
        if (r->faults[i].run)
            sim_fault_free(r->faults[i].run);
    free(r->faults);
    r->faults = NULL;
    r->nfaults = 0;
    for (uint32_t i = 0; i < r->nbreaks; i++)
        for (uint32_t k = 0; k < r->breaks[i].nheld; k++)
            msgr_conn_unref(r->breaks[i].held[k]);
    free(r->breaks);
    r->breaks = NULL;
}

/* ---------------------------------------------------------------- chaos */

static const enum scn_action_kind chaos_kinds[] = {
    [SCN_FAULT_DROP] = SCN_ACT_DROP,
    [SCN_FAULT_BLACKHOLE] = SCN_ACT_BLACKHOLE,
    [SCN_FAULT_DELAY] = SCN_ACT_DELAY,
    [SCN_FAULT_BANDWIDTH] = SCN_ACT_BANDWIDTH,
    [SCN_FAULT_PARTITION] = SCN_ACT_PARTITION,
    [SCN_FAULT_RESET] = SCN_ACT_RESET,
    [SCN_FAULT_CORRUPT] = SCN_ACT_CORRUPT,
    [SCN_FAULT_KILL] = SCN_ACT_KILL,
    [SCN_FAULT_CRASH] = SCN_ACT_CRASH,
    [SCN_FAULT_PAUSE] = SCN_ACT_PAUSE,
};

void
rn_chaos_tick(struct rn *r, uint32_t ci)
{
    struct rn_chaos *ch = &r->chaos[ci];
    const struct scn_action *a = ch->act;
    uint64_t now = rn_now(r);
    if (now > a->u.chaos.until_ns || now >= r->end_ns)
        return;
    uint32_t kinds[SCN_FAULT_COUNT_], nk = 0;
    for (uint32_t k = SCN_FAULT_DROP; k < SCN_FAULT_COUNT_; k++)
        if (a->u.chaos.kinds & (1u << k))
            kinds[nk++] = k;
    if (nk && a->subject.n >= 1) {
        uint32_t kind = kinds[sim_rng_below(&ch->rng, nk)];
        uint32_t s = a->subject.idx[sim_rng_below(&ch->rng, a->subject.n)];
        uint32_t d = s;
        if (a->subject.n > 1)
            while (d == s)
                d = a->subject.idx[sim_rng_below(&ch->rng, a->subject.n)];
        uint64_t dur = 100 * RN_NS_MS +
                       sim_rng_below(&ch->rng, 900 * RN_NS_MS);
        struct scn_action f;
        memset(&f, 0, sizeof(f));
        f.loc = a->loc;
        f.kind = chaos_kinds[kind];
        f.both_ways = true;
        f.for_ns = dur;
        uint32_t one_s[1] = {s}, one_d[1] = {d};
        f.subject.n = 1;
        f.subject.idx = one_s;
        f.subject.text = r->nodes[s].decl->name;
        f.peer.n = 1;
        f.peer.idx = one_d;
        f.peer.text = r->nodes[d].decl->name;
        switch (f.kind) {
        case SCN_ACT_DROP:
            f.has_prob = true;
            f.prob_ppm = 50000 + (uint32_t)sim_rng_below(&ch->rng, 250000);
            break;
        case SCN_ACT_CORRUPT:
            f.has_prob = true;
            f.prob_ppm = 1000 + (uint32_t)sim_rng_below(&ch->rng, 20000);
            break;
        case SCN_ACT_RESET:
            f.has_prob = sim_rng_below(&ch->rng, 2) != 0;
            f.prob_ppm = 10000 + (uint32_t)sim_rng_below(&ch->rng, 40000);
            break;
        case SCN_ACT_DELAY:
            f.u.delay.delay_ns = sim_rng_below(&ch->rng, 50 * RN_NS_MS);
            f.u.delay.jitter_ns = sim_rng_below(&ch->rng, 5 * RN_NS_MS);
            break;
        case SCN_ACT_BANDWIDTH:
            f.u.bandwidth.bps = 1000000 + sim_rng_below(&ch->rng, 99000000);
            break;
        default:
            break;
        }
        if (f.kind == SCN_ACT_KILL || f.kind == SCN_ACT_CRASH) {
            /* with `for` set the node comes back after the duration, as a
             * new incarnation its peers are told about */
            if (!r->nodes[s].host_dead && r->nodes[s].started)
                rn_run_action(r, &f);
        } else {
            rn_run_action(r, &f);
        }
    }
    uint64_t period = a->u.chaos.rate_mps
                          ? 1000ull * RN_NS_S / a->u.chaos.rate_mps
                          : RN_NS_S;
    uint64_t next = now + period / 2 + sim_rng_below(&ch->rng, period + 1);
    if (next <= a->u.chaos.until_ns && next < r->end_ns)
        rn_push(r, next, RN_ITEM_CHAOS, ci, NULL, a->loc.line);
}

/* ----------------------------------------------------------- breakpoints */


static unsigned
step_tag(enum scn_step s)
{
    switch (s) {
    case SCN_STEP_BANNER:
        return MSGR_BREAK_BANNER;
    case SCN_STEP_CONNECTING:
        return MSGR_BREAK_CONNECTING;
    case SCN_STEP_ACCEPTED:
        return MSGR_BREAK_ACCEPTED;
    default:
        return (unsigned)s + 1; /* frame steps follow msgr2 tags */
    }
}

/* The page's default direction: write for what this side sends in the
 * handshake, read for everything else. */
static int
default_dir(enum scn_step s, int client_side)
{
    switch (s) {
    case SCN_STEP_BANNER:
    case SCN_STEP_HELLO:
    case SCN_STEP_AUTH_SIGNATURE:
    case SCN_STEP_CONNECTING:
        return 1;
    case SCN_STEP_AUTH_REQUEST:
    case SCN_STEP_AUTH_REQUEST_MORE:
    case SCN_STEP_CLIENT_IDENT:
    case SCN_STEP_SESSION_RECONNECT:
        return client_side;
    case SCN_STEP_AUTH_BAD_METHOD:
    case SCN_STEP_AUTH_REPLY_MORE:
    case SCN_STEP_AUTH_DONE:
    case SCN_STEP_SERVER_IDENT:
    case SCN_STEP_IDENT_MISSING_FEATURES:
    case SCN_STEP_SESSION_RESET:
    case SCN_STEP_SESSION_RETRY:
    case SCN_STEP_SESSION_RETRY_GLOBAL:
    case SCN_STEP_SESSION_RECONNECT_OK:
    case SCN_STEP_WAIT:
        return !client_side;
    default:
        return 0;
    }
}

static int
break_cb(void *arg, struct msgr_conn *c, int dir, unsigned tag,
         int client_side)
{
    struct rn_node *nd = arg;
    struct rn *r = nd->r;
    for (uint32_t i = 0; i < r->nbreaks; i++) {
        struct rn_break *bp = &r->breaks[i];
        if (bp->fired || step_tag(bp->b.step) != tag ||
            !scn_set_has(&bp->b.node, nd->idx))
            continue;
        int want = bp->b.dir == SCN_DIR_READ    ? 0
                   : bp->b.dir == SCN_DIR_WRITE ? 1
                                                : default_dir(bp->b.step,
                                                              client_side);
        if (want != dir)
            continue;
        if (bp->b.peer.n) {
            struct msgr_addrvec v;
            msgr_conn_peer_addrs(c, &v);
            int peer = rn_node_of_addr(r, &v);
            if (peer < 0 || !scn_set_has(&bp->b.peer, (uint32_t)peer))
                continue;
        }
        if (++bp->seen < bp->b.round)
            continue;
        bp->fired = true;
        rn_fire_breakpoint(r, nd->idx, (int)bp->b.step);
        switch (bp->b.action) {
        case SCN_BREAK_FAULT:
            return MSGR_INTERCEPT_FAIL;
        case SCN_BREAK_STOP:
            return MSGR_INTERCEPT_STOP;
        case SCN_BREAK_BLOCK:
        case SCN_BREAK_STALL:
            if (bp->nheld < RN_MAX_HELD) {
                msgr_conn_ref(c);
                bp->held[bp->nheld++] = c;
            }
            return bp->b.action == SCN_BREAK_BLOCK ? MSGR_INTERCEPT_HOLD
                                                   : MSGR_INTERCEPT_STALL;
        }
    }
    return MSGR_INTERCEPT_CONTINUE;
}

void
rn_break_install(struct rn *r, struct rn_node *nd)
{
    (void)r;
    struct msgr_frame_breaker fb = {.arg = nd, .frame = break_cb};
    msgr_set_frame_breaker(nd->m, &fb);
}


static void
break_arm(struct rn *r, const struct scn_action *a)
{
    if (r->nbreaks == r->capbreaks) {
        r->capbreaks = r->capbreaks ? r->capbreaks * 2 : 8;
        r->breaks = realloc(r->breaks, r->capbreaks * sizeof(*r->breaks));
        if (!r->breaks)
            abort();
    }
    struct rn_break *bp = &r->breaks[r->nbreaks++];
    memset(bp, 0, sizeof(*bp));
    bp->b = a->u.brk;
    if (bp->b.round == 0)
        bp->b.round = 1;
    bp->line = a->loc.line;
}

static void
break_release(struct rn *r, const struct scn_action *a)
{
    const struct scn_break *rb = &a->u.brk;
    for (uint32_t i = 0; i < r->nbreaks; i++) {
        struct rn_break *bp = &r->breaks[i];
        if (bp->b.step != rb->step)
            continue;
        bool node_ok = false;
        for (uint32_t k = 0; k < rb->node.n; k++)
            node_ok |= scn_set_has(&bp->b.node, rb->node.idx[k]);
        if (!node_ok)
            continue;
        for (uint32_t k = 0; k < bp->nheld; k++) {
            struct msgr_conn *c = bp->held[k];
            RN_CALL(r, msgr_conn_release(c, MSGR_INTERCEPT_CONTINUE);
                    msgr_conn_unref(c));
        }
        bp->nheld = 0;
    }
}

uint32_t
rn_breaks_unfired(struct rn *r, FILE *out)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < r->nbreaks; i++) {
        struct rn_break *bp = &r->breaks[i];
        if (bp->fired)
            continue;
        n++;
        fprintf(out, "  FAIL %s:%u: breakpoint at %s (round %u) never fired\n",
                r->p->path, bp->line, scn_step_name(bp->b.step), bp->b.round);
    }
    return n;
}
