/* DOT to SVG with graphviz in process (libgvc). */
#include <stdio.h>
#include <string.h>

#include <graphviz/gvc.h>

#include "reports/report.h"

/*
 * One graphviz context for the process, never freed. Graphviz 2.42's
 * pango plugin remembers the last font name in a static pointer to a
 * string interned in the context; freeing the context between two
 * layouts leaves that pointer dangling, and the next layout reads freed
 * memory (AddressSanitizer catches it). Graphviz is not thread-safe
 * anyway: reports are made on one thread.
 */
static GVC_t *
context(void)
{
    static GVC_t *gvc;
    if (!gvc)
        gvc = gvContext();
    return gvc;
}

int
report_dot_to_svg(const char *dot, struct report_buf *svg, char *err,
                  size_t errlen)
{
    int rc = -1;
    GVC_t *gvc = context();
    if (!gvc) {
        snprintf(err, errlen, "graphviz: no context (is libgvc installed "
                 "with its plugins?)");
        return -1;
    }
    Agraph_t *g = agmemread(dot);
    if (!g) {
        snprintf(err, errlen, "graphviz: the DOT text does not parse");
        return -1;
    }
    if (gvLayout(gvc, g, "dot") != 0) {
        snprintf(err, errlen, "graphviz: dot layout failed");
        goto out_graph;
    }
    char *data = NULL;
    unsigned int len = 0;
    if (gvRenderData(gvc, g, "svg", &data, &len) != 0 || !data) {
        snprintf(err, errlen, "graphviz: svg rendering failed");
        goto out_layout;
    }
    /* inline SVG in HTML takes neither an XML prologue nor a DOCTYPE */
    const char *start = strstr(data, "<svg");
    if (!start) {
        snprintf(err, errlen, "graphviz: the output holds no <svg>");
    } else {
        report_buf_putn(svg, start, len - (size_t)(start - data));
        rc = svg->oom ? -1 : 0;
        if (rc)
            snprintf(err, errlen, "out of memory");
    }
    gvFreeRenderData(data);
out_layout:
    gvFreeLayout(gvc, g);
out_graph:
    agclose(g);
    return rc;
}
