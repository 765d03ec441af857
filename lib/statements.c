/*
 * Running the library's statements: prepared once per connection and
 * reused, or unnamed (parsed on every call, in the same round trip) for
 * transaction-mode poolers.
 *
 * The SQL text of an operation is built from the column descriptions and
 * the caller's fields mask and filters, so a handful of texts per table
 * recur; the cache maps each text to a server-side statement.  It is
 * bounded: past SPOTDB__STATEMENTS_MAX texts, new ones run unnamed rather
 * than evicting, since a workload with that many shapes gains nothing
 * from preparing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "table.h"

#define SPOTDB__STATEMENTS_MAX 128

struct spotdb__statement {
    uint64_t hash;
    char *sql;
    char name[24];
};

/* FNV-1a: texts differ early (the operation and table come first). */
static uint64_t hash_text(const char *s)
{
    uint64_t h = UINT64_C(14695981039346656037);

    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * UINT64_C(1099511628211);
    return h;
}

void spotdb__statements_reset(spotdb_db *db)
{
    if (db->nstatements && PQstatus(db->conn) == CONNECTION_OK)
        spotdb__quiet(db, "DEALLOCATE ALL", "forgetting statements");
    spotdb__statements_forget(db);
}

void spotdb__statements_forget(spotdb_db *db)
{
    for (size_t i = 0; i < db->nstatements; i++)
        free(db->statements[i].sql);
    free(db->statements);
    db->statements = NULL;
    db->nstatements = 0;
}

static const char *find(const spotdb_db *db, const char *sql, uint64_t h)
{
    for (size_t i = 0; i < db->nstatements; i++)
        if (db->statements[i].hash == h &&
            strcmp(db->statements[i].sql, sql) == 0)
            return db->statements[i].name;
    return NULL;
}

/* The name of the prepared statement for `sql`, preparing it now if it
 * is new; NULL to run it unnamed (the option, or a full cache), or when
 * the server refused the PREPARE (*failed: its result, for the caller to
 * trace and record). */
static const char *prepared(spotdb_db *db, const char *sql,
                            const spotdb__params *p, PGresult **failed)
{
    uint64_t h = hash_text(sql);
    const char *name = find(db, sql, h);
    struct spotdb__statement *s;
    PGresult *res;

    *failed = NULL;
    if (name || db->unnamed || db->nstatements == SPOTDB__STATEMENTS_MAX)
        return name;
    if (!db->statements &&
        !(db->statements = spotdb__calloc(SPOTDB__STATEMENTS_MAX, sizeof *s)))
        return NULL;            /* out of memory: run it unnamed */
    s = &db->statements[db->nstatements];
    if (!(s->sql = spotdb__strdup(sql)))
        return NULL;
    /* Names never repeat on a connection: a DEALLOCATE that failed (in an
     * aborted transaction, say) must not make a new PREPARE collide. */
    snprintf(s->name, sizeof s->name, "spotdb_%lu", db->statement_serial++);
    res = spotdb__prepare(db, s->name, sql, p);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        /* No result at all is out of memory, a failed send or a deadline:
         * the statement then runs unnamed, and spotdb__run says which. */
        free(s->sql);
        *failed = res;
        return NULL;
    }
    PQclear(res);
    s->hash = h;
    db->nstatements++;
    return s->name;
}

/* A first call's event includes the PREPARE: it is what the call cost. */
PGresult *spotdb__execute(spotdb_db *db, const char *sql,
                          const spotdb__params *p, const char *what)
{
    int64_t start = spotdb__trace_start(db);
    PGresult *failed = NULL, *res;
    const char *name = NULL;

    if (!spotdb__ready(db) ||
        (!(name = prepared(db, sql, p, &failed)) && failed)) {
        spotdb__trace(db, start, what, sql, NULL, failed);
        return spotdb__check_result(db, failed, what);
    }
    res = spotdb__run(db, sql, name, p);
    spotdb__trace(db, start, what, sql, name, res);
    return spotdb__check_result(db, res, what);
}
