/*
 * Error codes, their messages, and where the detail of a failure is kept:
 * in the handle for calls on one, in a thread-local slot otherwise.
 */
#include <stdio.h>
#include <string.h>

#include "internal.h"

static _Thread_local char last_errmsg[SPOTDB__ERRMSG_MAX];

const char *spotdb_strerror(int code)
{
    switch (code) {
    case SPOTDB_OK: return "success";
    case SPOTDB_ERROR: return "error";
    case SPOTDB_EINVAL: return "invalid argument";
    case SPOTDB_ENOMEM: return "out of memory";
    case SPOTDB_ECONN: return "connection failure";
    case SPOTDB_ESQL: return "statement rejected by the server";
    case SPOTDB_ENOTFOUND: return "not found";
    case SPOTDB_ECONFLICT: return "unique constraint violated";
    case SPOTDB_EREFERENCE: return "foreign key violated";
    case SPOTDB_EAUTH: return "authentication failed";
    case SPOTDB_ESCHEMA: return "schema version mismatch";
    case SPOTDB_ECHECKSUM: return "migration checksum mismatch";
    case SPOTDB_EMIGRATE: return "migration failed";
    case SPOTDB_EADOPT: return "existing schema cannot be adopted";
    case SPOTDB_ELOCKED: return "migration lock not acquired";
    case SPOTDB_EPOOLER: return "needs a direct connection, not a pooler";
    case SPOTDB_ETIMEOUT: return "deadline passed";
    case SPOTDB_ECANCELED: return "cancelled";
    case SPOTDB_EUNKNOWN: return "outcome unknown: the connection broke after the write was sent";
    case SPOTDB_ESERIALIZATION: return "serialization failure or deadlock: retry the transaction";
    case SPOTDB_EDENIED: return "not allowed for the acting user";
    default: return "unknown error";
    }
}

const char *spotdb_last_errmsg(void)
{
    return last_errmsg;
}

void spotdb__clear_last_error(void)
{
    last_errmsg[0] = '\0';
}

void spotdb__clear_error(spotdb_db *db)
{
    spotdb__clear_last_error();
    if (db) {
        db->errmsg[0] = '\0';
        db->sqlstate[0] = '\0';
        db->errcode = 0;
    }
}

/* Every message passes the redactor: libpq and the server may echo parts
 * of a connection string, and the handle knows its own password. */
static void store(spotdb_db *db, const char *msg)
{
    const char *secrets[3] = { NULL, NULL, NULL };
    char *dst = db ? db->errmsg : last_errmsg;
    size_t dstsz = db ? sizeof db->errmsg : sizeof last_errmsg;
    size_t n = 0;

    if (db && db->password)
        secrets[n++] = db->password;
    if (db && db->secret)
        secrets[n++] = db->secret;

    spotdb__redact(dst, dstsz, msg, db ? db->raw : NULL, secrets);
}

int spotdb__fail(spotdb_db *db, int code, const char *fmt, ...)
{
    char buf[SPOTDB__ERRMSG_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    store(db, buf);
    if (db)
        db->errcode = code;
    return code;
}

int spotdb__code_for_sqlstate(const char *sqlstate, bool conn_ok)
{
    if (!conn_ok)
        return SPOTDB_ECONN;
    if (!sqlstate || !*sqlstate)
        return SPOTDB_ESQL;
    if (strcmp(sqlstate, "23505") == 0)
        return SPOTDB_ECONFLICT;
    if (strcmp(sqlstate, "23503") == 0)
        return SPOTDB_EREFERENCE;
    if (strcmp(sqlstate, "23514") == 0 || strcmp(sqlstate, "23502") == 0 ||
        strncmp(sqlstate, "22", 2) == 0)
        return SPOTDB_EINVAL;
    if (strcmp(sqlstate, "53200") == 0)
        return SPOTDB_ENOMEM;
    if (strcmp(sqlstate, "40001") == 0 || strcmp(sqlstate, "40P01") == 0)
        return SPOTDB_ESERIALIZATION;
    if (strcmp(sqlstate, "42501") == 0)
        return SPOTDB_EDENIED;
    if (strncmp(sqlstate, "08", 2) == 0 || strcmp(sqlstate, "57P01") == 0)
        return SPOTDB_ECONN;
    return SPOTDB_ESQL;
}

/* The server's primary message, trimmed of libpq's "ERROR:  " prefix and
 * trailing newline, is what a reader needs; the full verbose text repeats
 * it. */
static void primary_message(char *out, size_t outsz, const PGresult *res,
                            PGconn *conn)
{
    const char *prim = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY)
                           : NULL;
    const char *detail = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL)
                             : NULL;
    size_t n;

    /* "Failing row contains (...)" quotes every column of the row: other
     * people's data and, for users, the password hash.  The constraint
     * the primary message names is what a reader needs. */
    if (detail && strncmp(detail, "Failing row contains", 20) == 0)
        detail = NULL;

    if (prim && detail)
        snprintf(out, outsz, "%s (%s)", prim, detail);
    else if (prim)
        snprintf(out, outsz, "%s", prim);
    else
        snprintf(out, outsz, "%s",
                 res && *PQresultErrorMessage(res)
                     ? PQresultErrorMessage(res)
                     : (conn ? PQerrorMessage(conn) : "no result"));
    n = strlen(out);
    while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == ' '))
        out[--n] = '\0';
}

/* A failure the server did not report (no SQLSTATE) is libpq's own, and
 * libpq may say "server closed the connection unexpectedly" while the
 * status still reads CONNECTION_OK (a server stopped with -m immediate,
 * seen on libpq 15): reading from the socket settles it, since EOF there
 * sets the status to CONNECTION_BAD. */
bool spotdb__conn_ok(PGconn *conn, const char *sqlstate)
{
    if (!conn || PQstatus(conn) != CONNECTION_OK)
        return false;
    if (sqlstate && *sqlstate)
        return true;
    return PQconsumeInput(conn) && PQstatus(conn) == CONNECTION_OK;
}

int spotdb__fail_result(spotdb_db *db, const PGresult *res,
                        const char *fmt, ...)
{
    char ctx[SPOTDB__ERRMSG_MAX / 2], srv[SPOTDB__ERRMSG_MAX];
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    int code = db ? spotdb__code_of(db, res)
                  : spotdb__code_for_sqlstate(state, false);
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(ctx, sizeof ctx, fmt, ap);
    va_end(ap);
    primary_message(srv, sizeof srv, res, db ? db->conn : NULL);
    if (db)
        snprintf(db->sqlstate, sizeof db->sqlstate, "%s", state ? state : "");
    if (state)
        return spotdb__fail(db, code, "%s: %s (SQLSTATE %s)", ctx, srv, state);
    return spotdb__fail(db, code, "%s: %s", ctx, srv);
}
