/*
 * scn_compile: lex, parse, check; the plan on success, the diagnostics
 * otherwise.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scn_internal.h"

static const char *
base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static int
cmp_diag(const void *x, const void *y)
{
    const struct scn_diag *a = x, *b = y;
    if (a->loc.line != b->loc.line)
        return a->loc.line < b->loc.line ? -1 : 1;
    return a->loc.col < b->loc.col ? -1 : a->loc.col > b->loc.col;
}

/* Sorted into source order; equal places keep the order they were found
 * in, which insertion sort preserves (qsort would not). */
static void
sort_diags(struct scn_diags *d)
{
    for (uint32_t i = 1; i < d->n; i++) {
        struct scn_diag t = d->v[i];
        uint32_t j = i;
        while (j > 0 && cmp_diag(&d->v[j - 1], &t) > 0) {
            d->v[j] = d->v[j - 1];
            j--;
        }
        d->v[j] = t;
    }
}

static void
init_plan(struct scn_plan *p, struct scn_arena *A, const char *path)
{
    p->arena_ = A;
    p->path = scn__strndup(A, path, strlen(path));
    p->title = scn__strndup(A, base_name(path), strlen(base_name(path)));
    p->seed = SCN_DEFAULT_SEED;
    p->stack = SCN_STACK_SIM;
    p->duration_ns = SCN_DEFAULT_DURATION_NS;
    p->link_default.latency_ns = SCN_DEFAULT_LATENCY_NS;
}

int
scn_compile(const char *path, const char *text, size_t len,
            struct scn_plan **out, struct scn_diags *diags)
{
    *out = NULL;
    memset(diags, 0, sizeof(*diags));
    jmp_buf oom;
    /* the arena and compile state live on the heap so nothing a longjmp
     * skips over needs to be volatile */
    struct scn_arena *A = calloc(1, sizeof(*A));
    struct scn_cc *c = calloc(1, sizeof(*c));
    if (!A || !c) {
        free(A);
        free(c);
        return -ENOMEM;
    }
    A->oom = &oom;
    if (setjmp(oom)) {
        scn__arena_free(A);
        free(A);
        free(c);
        return -ENOMEM;
    }
    c->A = A;
    c->d = diags;
    c->path = path;
    c->plan = scn__alloc(A, sizeof(*c->plan));
    init_plan(c->plan, A, path);
    scn__lex(c, text, len);
    scn__parse(c);
    scn__check(c);
    struct scn_plan *p = c->plan;
    int rc = diags->total ? -EINVAL : 0;
    free(c);
    if (rc) {
        sort_diags(diags);
        scn__arena_free(A);
        free(A);
        return rc;
    }
    A->oom = NULL;
    *out = p;
    return 0;
}

int
scn_compile_file(const char *path, struct scn_plan **out,
                 struct scn_diags *diags)
{
    *out = NULL;
    memset(diags, 0, sizeof(*diags));
    FILE *f = fopen(path, "rb");
    if (!f)
        return -errno;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    int err = 0;
    while (buf) {
        if (n == cap) {
            char *nb = cap < (64u << 20) ? realloc(buf, cap * 2) : NULL;
            if (!nb) {
                err = cap < (64u << 20) ? -ENOMEM : -EFBIG;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0) {
            if (ferror(f))
                err = -EIO;
            break;
        }
    }
    fclose(f);
    if (!buf)
        return -ENOMEM;
    if (err) {
        free(buf);
        return err;
    }
    int rc = scn_compile(path, buf, n, out, diags);
    free(buf);
    return rc;
}

void
scn_plan_free(struct scn_plan *p)
{
    if (!p)
        return;
    struct scn_arena *A = p->arena_;
    scn__arena_free(A);
    free(A);
}
