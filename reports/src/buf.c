/* report_buf: the growable text every report part is written into. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reports/report.h"

void
report_buf_init(struct report_buf *b)
{
    memset(b, 0, sizeof(*b));
}

void
report_buf_fini(struct report_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

/* Room for n more bytes and a terminating NUL. */
static int
reserve(struct report_buf *b, size_t n)
{
    if (b->oom)
        return -1;
    if (b->len + n + 1 <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n + 1)
        cap *= 2;
    char *d = realloc(b->data, cap);
    if (!d) {
        b->oom = 1;
        return -1;
    }
    b->data = d;
    b->cap = cap;
    return 0;
}

void
report_buf_putn(struct report_buf *b, const char *s, size_t n)
{
    if (reserve(b, n) < 0)
        return;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void
report_buf_puts(struct report_buf *b, const char *s)
{
    report_buf_putn(b, s, strlen(s));
}

void
report_buf_printf(struct report_buf *b, const char *fmt, ...)
{
    va_list ap;
    char small[256];
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof(small)) {
        report_buf_putn(b, small, (size_t)n);
        return;
    }
    if (reserve(b, (size_t)n) < 0)
        return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void
report_buf_xml(struct report_buf *b, const char *s)
{
    const char *run = s;
    for (; s && *s; s++) {
        const char *rep = NULL;
        switch (*s) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = "&quot;"; break;
        case '\'': rep = "&#39;"; break;
        default: break;
        }
        if (rep) {
            report_buf_putn(b, run, (size_t)(s - run));
            report_buf_puts(b, rep);
            run = s + 1;
        }
    }
    if (run)
        report_buf_putn(b, run, strlen(run));
}

void
report_buf_dotstr(struct report_buf *b, const char *s)
{
    for (; s && *s; s++) {
        if (*s == '"' || *s == '\\')
            report_buf_putn(b, "\\", 1);
        if (*s == '\n') {
            report_buf_puts(b, "\\n");
            continue;
        }
        report_buf_putn(b, s, 1);
    }
}
