/*
 * Running a migration file statement by statement, so that a failure can
 * name its statement and the line and column in the file.  Used to apply
 * migrations and to build the reference catalog for adoption.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "internal.h"

/* Byte offset of the pos-th character (1-based, as the server counts) of
 * a statement. */
static size_t char_to_byte(const char *s, size_t len, long pos)
{
    size_t i = 0;

    for (long c = 1; c < pos && i < len; c++) {
        i++;
        while (i < len && ((unsigned char)s[i] & 0xC0) == 0x80)
            i++;
    }
    return i;
}

static int statement_failed(spotdb_db *db, const spotdb__migration *m,
                            const spotdb__stmt *st, long index, PGresult *res,
                            const char *prefix, const char *suffix)
{
    const char *pos = res ? PQresultErrorField(res, PG_DIAG_STATEMENT_POSITION)
                          : NULL;
    size_t at = st->offset;
    unsigned line, col;

    if (pos)
        at += char_to_byte(m->sql + st->offset, st->length,
                           strtol(pos, NULL, 10));
    spotdb__line_col(m->sql, at, &line, &col);
    return spotdb__fail_result(db, res,
                               "%s%s failed at statement %ld (line %u, "
                               "column %u)%s",
                               prefix, m->filename, index + 1, line, col,
                               suffix);
}

int spotdb__run_script(spotdb_db *db, const spotdb__migration *m,
                       const char *prefix, const char *suffix)
{
    size_t bad = 0;
    long n = spotdb__sql_split(m->sql, m->sql_len, NULL, 0, &bad);
    spotdb__stmt *stmts;
    char *copy;
    int rc = 0;

    if (n < 0) {
        unsigned line, col;
        spotdb__line_col(m->sql, bad, &line, &col);
        return spotdb__fail(db, SPOTDB_ERROR,
                            "%s%s: unterminated quote or comment starting at "
                            "line %u, column %u", prefix, m->filename, line,
                            col);
    }
    stmts = spotdb__calloc((size_t)n + 1, sizeof *stmts);
    copy = spotdb__malloc(m->sql_len + 1);
    if (!stmts || !copy) {
        free(stmts);
        free(copy);
        return spotdb__fail(db, SPOTDB_ENOMEM, "out of memory");
    }
    spotdb__sql_split(m->sql, m->sql_len, stmts, (size_t)n, NULL);
    memcpy(copy, m->sql, m->sql_len + 1);
    for (long k = 0; k < n && rc == 0; k++) {
        PGresult *res;

        /* statements are cut in place: the text after one is no longer
         * needed once it has run */
        copy[stmts[k].offset + stmts[k].length] = '\0';
        res = spotdb__pq_exec(db, copy + stmts[k].offset, m->filename);
        if (!res || (PQresultStatus(res) != PGRES_COMMAND_OK &&
                     PQresultStatus(res) != PGRES_TUPLES_OK))
            rc = statement_failed(db, m, &stmts[k], k, res, prefix, suffix);
        PQclear(res);
    }
    free(stmts);
    free(copy);
    return rc;
}
