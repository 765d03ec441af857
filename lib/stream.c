/*
 * Rows one at a time, in constant memory: libpq's single-row mode hands
 * over each row as it arrives, and one buffer, grown to the largest row,
 * holds the decoded struct the callback sees.
 *
 * Stopping early does not cancel the query: a cancel request travels on
 * its own connection and may land on the handle's next statement instead,
 * so the rest of the result is read and dropped undecoded.
 */
#include <stdlib.h>

#include "table.h"

int spotdb__stream_rows(spotdb_db *db, const spotdb__table *t,
                        const char *sql, const spotdb__params *p,
                        const char *what, spotdb__row_fn fn, void *ctx)
{
    char *buf = NULL;
    size_t cap = 0;
    int rc, stop = 0;
    bool checked = false;
    PGresult *res;

    if ((rc = spotdb__send(db, sql, p, what)) != 0)
        return rc;
    if (!PQsetSingleRowMode(db->conn))
        rc = spotdb__fail(db, SPOTDB_ERROR, "%s: cannot stream", what);
    /* Every result is read, whatever happens, so that the connection is
     * ready for the next statement. */
    while ((res = PQgetResult(db->conn)) != NULL) {
        ExecStatusType st = PQresultStatus(res);

        if (st == PGRES_SINGLE_TUPLE && rc == 0 && !stop) {
            if (!checked && (rc = spotdb__check_shape(db, t, res)) == 0)
                checked = true;
            if (rc == 0)
                rc = spotdb__decode_reuse(db, t, res, 0, &buf, &cap);
            if (rc == 0)
                stop = fn(buf, ctx);
        } else if (st != PGRES_SINGLE_TUPLE && st != PGRES_TUPLES_OK &&
                   rc == 0) {
            rc = spotdb__fail_result(db, res, "%s", what);
        }
        PQclear(res);
    }
    free(buf);
    return rc ? rc : stop;
}
