/*
 * Rows one at a time, in constant memory, through a server-side cursor
 * fetched a batch at a time: each batch is one result that the rows'
 * strings point into while the callback sees them.
 *
 * A cursor rather than libpq's single-row mode: single-row mode builds a
 * result object per row, which costs more than the row itself, while a
 * FETCH of a thousand rows costs one round trip per thousand, hidden by
 * pipelining the next FETCH.  Stopping early is a CLOSE, so the rest of
 * the result is never computed.
 *
 * The cursor needs a transaction: the caller's, or one opened here and
 * committed (it only reads) when the stream ends.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "table.h"

#define BATCH "1000"
#define BATCH_ROWS 1000
#define CURSOR "spotdb_stream"

#define FETCH "FETCH " BATCH " FROM " CURSOR

static int send_fetch(spotdb_db *db, const char *what, int64_t *sent_at)
{
    *sent_at = spotdb__trace_start(db);
    if (!PQsendQueryParams(db->conn, FETCH, 0, NULL,
                           NULL, NULL, NULL, 1) ||
        !PQsendFlushRequest(db->conn) || PQflush(db->conn) < 0)
        return spotdb__fail_result(db, NULL, "%s", what);
    return 0;
}

/* The next FETCH's result, and the NULL that ends it. */
static PGresult *next_batch(spotdb_db *db)
{
    PGresult *res, *end;

    if (!spotdb__await(db))
        return NULL;            /* the deadline abandoned the connection */
    res = PQgetResult(db->conn);
    while (res && spotdb__await(db) && (end = PQgetResult(db->conn)) != NULL)
        PQclear(end);           /* not expected: one result per FETCH */
    return res;
}

/* Hand over the rows of one batch; returns a code or fn's stop value. */
static int hand_over(spotdb_db *db, const spotdb__table *t, PGresult *res,
                     spotdb__row_fn fn, void *ctx, char *row)
{
    int rc = spotdb__check_shape(db, t, res), stop = 0;

    for (int r = 0; r < PQntuples(res) && rc == 0 && stop == 0; r++)
        if ((rc = spotdb__decode_rows(db, t, res, r, 1, row)) == 0) {
            db->rows_handed++;
            stop = fn(row, ctx);
        }
    return rc ? rc : stop;
}

/* FETCH batches in pipeline mode, always one ahead, so that the server
 * computes the next batch while this side decodes the current one.
 * Results come back in the order sent: sent_at is a ring of two. */
static int drain(spotdb_db *db, const spotdb__table *t, const char *what,
                 spotdb__row_fn fn, void *ctx, char *row)
{
    int rc = 0, in_flight = 0;
    unsigned sent = 0, received = 0;
    int64_t sent_at[2];
    bool more = true;
    PGresult *res;

    if (!PQenterPipelineMode(db->conn))
        return spotdb__fail_result(db, NULL, "%s", what);
    for (int i = 0; i < 2 && rc == 0; i++)
        if ((rc = send_fetch(db, what, &sent_at[sent++ % 2])) == 0)
            in_flight++;
    while (in_flight > 0) {
        res = next_batch(db);
        spotdb__trace(db, sent_at[received++ % 2], what, FETCH, NULL, res);
        in_flight--;
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
            if (rc == 0 && !res)
                rc = spotdb__fail_none(db, what);
            else if (rc == 0)
                rc = spotdb__fail_result(db, res, "%s", what);
            more = false;
        } else if (PQntuples(res) < BATCH_ROWS) {
            more = false;
        }
        if (more && rc == 0 &&
            send_fetch(db, what, &sent_at[sent++ % 2]) == 0)
            in_flight++;
        if (rc == 0 && PQresultStatus(res) == PGRES_TUPLES_OK &&
            (rc = hand_over(db, t, res, fn, ctx, row)) != 0)
            more = false;
        PQclear(res);
    }
    /* Leave pipeline mode through a sync, whatever happened; an abandoned
     * connection is reset by the next call instead. */
    if (db->broken)
        return rc;
    PQpipelineSync(db->conn);
    while ((res = PQgetResult(db->conn)) != NULL ||
           PQpipelineStatus(db->conn) != PQ_PIPELINE_OFF) {
        ExecStatusType st = res ? PQresultStatus(res) : PGRES_EMPTY_QUERY;

        PQclear(res);
        if (st == PGRES_PIPELINE_SYNC) {
            PQexitPipelineMode(db->conn);
            break;
        }
        if (!res && PQstatus(db->conn) != CONNECTION_OK)
            break;
    }
    return rc;
}

int spotdb__stream_rows(spotdb_db *db, const spotdb__table *t,
                        const char *sql, const spotdb__params *p,
                        const char *what, spotdb__row_fn fn, void *ctx)
{
    bool own = !spotdb_in_transaction(db);
    char *declare, *row;
    size_t len = strlen(sql) + 64;
    int64_t start;
    PGresult *res;
    int rc;

    if (!(declare = spotdb__malloc(len)) ||
        !(row = spotdb__malloc(t->row_size))) {
        free(declare);
        return spotdb__fail(db, SPOTDB_ENOMEM, "out of memory");
    }
    snprintf(declare, len, "DECLARE " CURSOR " NO SCROLL CURSOR FOR %s", sql);
    if (own && (rc = spotdb__command(db, "BEGIN", what)) != 0)
        goto out;
    start = spotdb__trace_start(db);
    res = spotdb__run(db, declare, NULL, p);
    spotdb__trace(db, start, what, declare, NULL, res);
    res = spotdb__check_result(db, res, what);
    if (!res) {
        rc = db->errcode;
    } else {
        PQclear(res);
        rc = drain(db, t, what, fn, ctx, row);
    }
    /* A failure has aborted the transaction; a stop or the end leaves the
     * cursor to close.  Both are quiet: the first error is the one kept. */
    if (own)
        spotdb__quiet(db, rc < 0 ? "ROLLBACK" : "COMMIT", what);
    else if (rc >= 0)
        spotdb__quiet(db, "CLOSE " CURSOR, what);
out:
    free(declare);
    free(row);
    return rc;
}
