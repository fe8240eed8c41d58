/*
 * The lexer: bytes to tokens. One statement per logical line; `#` to the
 * end of the line is a comment; a `\` as the last character of a line
 * joins the next one. Words are everything between separators; numbers,
 * durations and node sets are told apart later by the parser, which knows
 * what it expects and can say so.
 */
#include <string.h>

#include "scn_internal.h"

struct lexer {
    struct scn_cc *c;
    const char *t;
    size_t len, i;
    uint32_t line, col;
};

static char
peek(const struct lexer *lx, size_t k)
{
    return lx->i + k < lx->len ? lx->t[lx->i + k] : '\0';
}

static void
advance(struct lexer *lx, size_t k)
{
    while (k-- && lx->i < lx->len) {
        if (lx->t[lx->i] == '\n') {
            lx->line++;
            lx->col = 1;
        } else {
            lx->col++;
        }
        lx->i++;
    }
}

static struct scn_loc
here(const struct lexer *lx)
{
    return (struct scn_loc){lx->line, lx->col};
}

static void
emit(struct lexer *lx, enum scn_tok_kind kind, struct scn_loc loc,
     const char *s, size_t n)
{
    struct scn_cc *c = lx->c;
    /* empty statements are dropped here so the parser never sees them */
    if (kind == SCN_TOK_EOL &&
        (c->n_toks == 0 || c->toks[c->n_toks - 1].kind == SCN_TOK_EOL))
        return;
    struct scn_tok *tk = SCN_PUSH(c->A, c->toks, c->n_toks, c->cap_toks);
    tk->kind = kind;
    tk->loc = loc;
    tk->s = scn__strndup(c->A, s, n);
}

static bool
ends_word(const struct lexer *lx)
{
    if (lx->i >= lx->len)
        return true;
    char ch = peek(lx, 0);
    if (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n' ||
        ch == '#' || ch == '"' || ch == '|')
        return true;
    if (ch == '-' && peek(lx, 1) == '>')
        return true;
    if (ch == '<' && peek(lx, 1) == '-' && peek(lx, 2) == '>')
        return true;
    return false;
}

/* A `\` is a continuation only when nothing but blanks follows it. */
static void
backslash(struct lexer *lx)
{
    struct scn_loc loc = here(lx);
    size_t k = 1;
    while (peek(lx, k) == ' ' || peek(lx, k) == '\t' || peek(lx, k) == '\r')
        k++;
    if (peek(lx, k) == '\n') {
        advance(lx, k + 1);
        return;
    }
    if (lx->i + k >= lx->len) {
        scn__error(lx->c, loc, "'\\' at the end of the file has no line "
                   "to join");
        advance(lx, k);
        return;
    }
    scn__error(lx->c, loc, "stray '\\' (it joins lines only as the last "
               "character of a line)");
    advance(lx, 1);
}

static void
string(struct lexer *lx)
{
    struct scn_loc loc = here(lx);
    advance(lx, 1);
    char buf[512];
    size_t n = 0;
    for (;;) {
        char ch = peek(lx, 0);
        if (lx->i >= lx->len || ch == '\n') {
            scn__error(lx->c, loc, "unterminated string (a '\"' must close "
                       "it on the same line)");
            return;
        }
        if (ch == '"') {
            advance(lx, 1);
            break;
        }
        if ((unsigned char)ch < 0x20 && ch != '\t') {
            scn__error(lx->c, here(lx), "unexpected control character 0x%02x "
                       "in a string", (unsigned char)ch);
            advance(lx, 1);
            continue;
        }
        if (ch == '\\' && (peek(lx, 1) == '"' || peek(lx, 1) == '\\')) {
            advance(lx, 1);
            ch = peek(lx, 0);
        }
        if (n < sizeof(buf) - 1)
            buf[n++] = ch;
        advance(lx, 1);
    }
    if (n >= sizeof(buf) - 1) {
        scn__error(lx->c, loc, "string too long (%zu bytes at most)",
                   sizeof(buf) - 2);
        return;
    }
    emit(lx, SCN_TOK_STRING, loc, buf, n);
}

static void
word(struct lexer *lx)
{
    struct scn_loc loc = here(lx);
    size_t start = lx->i;
    while (!ends_word(lx)) {
        unsigned char ch = (unsigned char)peek(lx, 0);
        if (ch < 0x20 && ch != '\t') {
            if (lx->i > start)
                emit(lx, SCN_TOK_WORD, loc, lx->t + start, lx->i - start);
            scn__error(lx->c, here(lx), "unexpected control character 0x%02x",
                       ch);
            advance(lx, 1);
            return;
        }
        if (ch == '\\')
            break; /* a continuation right after a word */
        advance(lx, 1);
    }
    if (lx->i > start)
        emit(lx, SCN_TOK_WORD, loc, lx->t + start, lx->i - start);
    else if (peek(lx, 0) == '\\')
        backslash(lx);
}

void
scn__lex(struct scn_cc *c, const char *text, size_t len)
{
    struct lexer lx = {.c = c, .t = text, .len = len, .line = 1, .col = 1};
    while (lx.i < lx.len) {
        char ch = peek(&lx, 0);
        /* errors do not stop the lexer, but the statement's flag must not
         * leak into the parser's first statement */
        if (ch == ' ' || ch == '\t' || ch == '\r') {
            advance(&lx, 1);
        } else if (ch == '\n') {
            emit(&lx, SCN_TOK_EOL, here(&lx), "", 0);
            advance(&lx, 1);
        } else if (ch == '#') {
            while (lx.i < lx.len && peek(&lx, 0) != '\n')
                advance(&lx, 1);
        } else if (ch == '\\') {
            backslash(&lx);
        } else if (ch == '"') {
            string(&lx);
        } else if (ch == '|') {
            emit(&lx, SCN_TOK_BAR, here(&lx), "|", 1);
            advance(&lx, 1);
        } else if (ch == '-' && peek(&lx, 1) == '>') {
            emit(&lx, SCN_TOK_ARROW, here(&lx), "->", 2);
            advance(&lx, 2);
        } else if (ch == '<' && peek(&lx, 1) == '-' && peek(&lx, 2) == '>') {
            emit(&lx, SCN_TOK_BIARROW, here(&lx), "<->", 3);
            advance(&lx, 3);
        } else {
            size_t before = lx.i;
            word(&lx);
            /* every branch consumes input; this keeps it so if a future
             * change forgets */
            if (lx.i == before)
                advance(&lx, 1);
        }
    }
    emit(&lx, SCN_TOK_EOL, here(&lx), "", 0);
    struct scn_tok *tk = SCN_PUSH(c->A, c->toks, c->n_toks, c->cap_toks);
    tk->kind = SCN_TOK_EOF;
    tk->loc = here(&lx);
    tk->s = "";
    c->stmt_failed = false;
}
