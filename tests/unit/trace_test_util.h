/*
 * Helpers shared by the test_trace_* tests: a scratch directory and
 * one-value queries. Header-only (static), included after cmocka.h.
 */
#ifndef TRACE_TEST_UTIL_H
#define TRACE_TEST_UTIL_H

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "trace/trace.h"

/* A fresh directory under /tmp for one test's files. */
static char tt_dir[64];

static inline void
tt_mkdir(void)
{
    snprintf(tt_dir, sizeof(tt_dir), "/tmp/msgrtrace-test-XXXXXX");
    assert_non_null(mkdtemp(tt_dir));
}

/* tt_dir/name into buf */
static inline const char *
tt_path(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s", tt_dir, name);
    return buf;
}

static inline void
tt_rmdir(void)
{
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tt_dir);
    assert_int_equal(system(cmd), 0);
}

/* The first column of the first row of q, as an integer (-999 when the
 * query returns no row or NULL). */
static inline long long
tt_int(sqlite3 *db, const char *q)
{
    sqlite3_stmt *st;
    long long v = -999;

    if (sqlite3_prepare_v2(db, q, -1, &st, NULL) != SQLITE_OK) {
        fail_msg("query %s: %s", q, sqlite3_errmsg(db));
        return v;
    }
    if (sqlite3_step(st) == SQLITE_ROW &&
        sqlite3_column_type(st, 0) != SQLITE_NULL)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* The same, as text copied into buf ("" when none). */
static inline const char *
tt_text(sqlite3 *db, const char *q, char *buf, size_t len)
{
    sqlite3_stmt *st;

    buf[0] = 0;
    if (sqlite3_prepare_v2(db, q, -1, &st, NULL) != SQLITE_OK) {
        fail_msg("query %s: %s", q, sqlite3_errmsg(db));
        return buf;
    }
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
        snprintf(buf, len, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return buf;
}

#endif
