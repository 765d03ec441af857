/*
 * The trace hook: one event per statement, with what the library was
 * doing, the SQL text, the time and the outcome, never the parameter
 * values (spotdb/trace.h).
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

int64_t spotdb__monotonic_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int spotdb_set_trace(spotdb_db *db, spotdb_trace_fn fn, void *payload)
{
    spotdb__clear_error(db);
    if (!db)
        return spotdb__fail(NULL, SPOTDB_EINVAL, "the handle is NULL");
    db->trace_fn = fn;
    db->trace_payload = fn ? payload : NULL;
    return 0;
}

int64_t spotdb__trace_start(const spotdb_db *db)
{
    return db->trace_fn ? spotdb__monotonic_us() : 0;
}

/* Rows returned, or changed as the command tag says ("UPDATE 3"). */
static int64_t rows_of(const PGresult *res)
{
    const char *n;

    if (PQresultStatus(res) == PGRES_TUPLES_OK)
        return PQntuples(res);
    n = PQcmdTuples((PGresult *)res);
    return n && *n ? strtoll(n, NULL, 10) : -1;
}

void spotdb__trace(spotdb_db *db, int64_t start, const char *name,
                   const char *sql, const char *statement,
                   const PGresult *res)
{
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE)
                            : NULL;
    spotdb_trace_event ev;

    if (!db->trace_fn)
        return;
    memset(&ev, 0, sizeof ev);
    ev.version = SPOTDB_TRACE_EVENT_VERSION;
    ev.name = name ? name : "";
    ev.sql = sql ? sql : "";
    ev.statement = statement ? statement : "";
    ev.duration_us = spotdb__monotonic_us() - start;
    ev.rows = ok ? rows_of(res) : -1;
    ev.sqlstate = !ok && state ? state : "";
    if (!ok)
        ev.code = !res && !db->timed_out && !db->broken &&
                          PQstatus(db->conn) == CONNECTION_OK
                      ? SPOTDB_ENOMEM : spotdb__code_of(db, res);
    ev.replica = db->on_replica;
    db->trace_fn(&ev, db->trace_payload);
}

PGresult *spotdb__pq_exec(spotdb_db *db, const char *sql, const char *name)
{
    int64_t start = spotdb__trace_start(db);
    PGresult *res = spotdb__run(db, sql, NULL, NULL);

    spotdb__trace(db, start, name, sql, NULL, res);
    return res;
}

void spotdb__quiet(spotdb_db *db, const char *sql, const char *name)
{
    PQclear(spotdb__pq_exec(db, sql, name));
}
