/*
 * scn internals: the arena, tokens, the parser state and the helpers the
 * lexer, parser and checker share.
 */
#ifndef SCN_INTERNAL_H
#define SCN_INTERNAL_H

#include <setjmp.h>
#include <stdarg.h>

#include "scn/scn.h"

/* ---------------------------------------------------------------- arena */

/* Every allocation of a compile is a chunk on one list, freed together.
 * Out of memory unwinds to scn_compile through oom (a jmp_buf), so the
 * parser needs no NULL check after each allocation. */
struct scn_chunk;
struct scn_arena {
    struct scn_chunk *chunks;
    jmp_buf *oom;
};

void *scn__alloc(struct scn_arena *a, size_t size); /* zeroed */
char *scn__strndup(struct scn_arena *a, const char *s, size_t n);
void scn__arena_free(struct scn_arena *a);

/* A growable array in the arena: *v has *n used of *cap slots. */
void *scn__grow(struct scn_arena *a, void *v, uint32_t n, uint32_t *cap,
                size_t elem);

#define SCN_PUSH(A, arr, n, cap)                                        \
    ((arr) = scn__grow((A), (arr), (n), &(cap), sizeof(*(arr))),         \
     &(arr)[(n)++])

/* --------------------------------------------------------------- tokens */

enum scn_tok_kind {
    SCN_TOK_WORD,
    SCN_TOK_STRING,  /* s is the unquoted, unescaped text */
    SCN_TOK_ARROW,   /* -> */
    SCN_TOK_BIARROW, /* <-> */
    SCN_TOK_BAR,     /* | */
    SCN_TOK_EOL,     /* end of a statement (a logical line) */
    SCN_TOK_EOF,
};

struct scn_tok {
    enum scn_tok_kind kind;
    struct scn_loc loc;
    const char *s; /* NUL-terminated, in the arena */
};

/* ---------------------------------------------------------------- state */

struct scn_cc {
    struct scn_arena *A;
    struct scn_plan *plan;
    struct scn_diags *d;
    const char *path;

    struct scn_tok *toks;
    uint32_t n_toks, cap_toks, pos;

    /* growable arrays of the plan */
    uint32_t cap_nodes, cap_links, cap_pol, cap_cfg, cap_brk, cap_tl,
        cap_trig, cap_exp;

    bool stmt_failed;   /* an error in this statement: skip to its end */
    bool in_timeline;   /* a timeline statement was seen */
    bool have_at;       /* an absolute `at` was seen (for `+T`) */
    uint64_t last_at_ns;
    uint32_t seq;       /* statement counter (file order) */
    struct scn_loc seen_title, seen_seed, seen_stack, seen_duration,
        seen_workers;   /* line 0: not seen */
    struct scn_loc duration_loc;
};

/* Records an error at loc (printf-style) and marks the statement failed. */
void scn__error(struct scn_cc *c, struct scn_loc loc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Lexes the text into c->toks (errors go to c->d). */
void scn__lex(struct scn_cc *c, const char *text, size_t len);

/* Parses every statement (errors go to c->d, the plan gets the rest). */
void scn__parse(struct scn_cc *c);

/* Resolves node sets, runs the semantic checks, sorts the timeline. */
void scn__check(struct scn_cc *c);

/* ------------------------------------------------------ keyword helpers */

/* The candidate nearest to word by edit distance, when near enough to be a
 * likely typo, else NULL. list ends with NULL. */
const char *scn__suggest(const char *word, const char *const *list);
/* ", did you mean 'x'?" formatted into buf (empty when no suggestion). */
const char *scn__hint(char *buf, size_t len, const char *word,
                      const char *const *list);

extern const char *const scn__entity_types[];  /* "mon", ... NULL */
extern const char *const scn__policy_names[];
extern const enum msgr_policy_kind scn__policy_kinds[];
extern const char *const scn__step_names[];
extern const char *const scn__config_names[];
extern const char *const scn__fault_names[];   /* index = enum scn_fault_kind */
extern const char *const scn__state_names[];
extern const char *const scn__event_names[];
extern const char *const scn__op_names[];

/* Index of word in list (NULL-terminated), or -1. */
int scn__lookup(const char *word, const char *const *list);

uint8_t scn__entity_type_value(int index); /* index into scn__entity_types */

/* ----------------------------------------------------------- node sets */

/* One item of a node set: `all`, TYPE.ID, TYPE.*, TYPE.[lo..hi]. */
enum scn_item_kind {
    SCN_ITEM_ALL,
    SCN_ITEM_NAME,
    SCN_ITEM_GLOB,
    SCN_ITEM_RANGE,
};

struct scn_item {
    enum scn_item_kind kind;
    int type_index;     /* into scn__entity_types */
    char id[64];        /* NAME */
    uint64_t lo, hi;    /* RANGE */
};

/* Parses item number k of a set's text (items separated by ','). Returns 1
 * and fills *it, 0 when there is no item k, or -1 with a message in err. */
int scn__set_item(const char *text, uint32_t k, struct scn_item *it,
                  char *err, size_t errlen);

#endif
