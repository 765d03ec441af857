/*
 * The schema handshake of spotdb_open(): once per handle, compare the
 * version the database records with the newest one this library embeds,
 * so that a program never reads or writes a schema it was not built for.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static int64_t newest(const spotdb__migration_set *set)
{
    return set->count ? set->items[set->count - 1].version : 0;
}

/* No tracking table: an empty database, or schema v1 built by hand. */
static int unversioned(spotdb_db *db, const spotdb__migration_set *set)
{
    PGresult *res = spotdb__exec(db, "SELECT to_regclass('users') IS NOT NULL",
                                 "schema handshake");
    bool has_v1;

    if (!res)
        return db->errcode;
    has_v1 = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    if (has_v1)
        return spotdb__fail(db, SPOTDB_ESCHEMA,
                            "the database holds tables but no libspotdb "
                            "version: run `spotdb migrate` once to adopt it "
                            "(libspotdb %s needs schema version %" PRId64 ")",
                            SPOTDB_VERSION, newest(set));
    return spotdb__fail(db, SPOTDB_ESCHEMA,
                        "the database has no libspotdb schema: run `spotdb "
                        "migrate` (libspotdb %s needs schema version %" PRId64
                        ")", SPOTDB_VERSION, newest(set));
}

/* The database is ahead: each newer migration must have been recorded as
 * compatible.  to_jsonb(m) reads the column whether or not the table has
 * it yet. */
static int check_ahead(spotdb_db *db, const spotdb__migration_set *set,
                       int64_t current)
{
    PGresult *res = spotdb__exec(
        db,
        "SELECT version, name FROM spotdb_schema_migrations m "
        "WHERE NOT coalesce((to_jsonb(m) ->> 'compatible')::boolean, false) "
        "ORDER BY version DESC LIMIT 1",
        "schema handshake");
    int rc = 0;

    if (!res)
        return db->errcode;
    if (PQntuples(res) == 1 &&
        strtoll(PQgetvalue(res, 0, 0), NULL, 10) > newest(set))
        rc = spotdb__fail(db, SPOTDB_ESCHEMA,
                          "the database is at schema version %" PRId64
                          ", newer than libspotdb %s knows (%" PRId64 "), and "
                          "migration %s (%s) is not marked compatible: "
                          "upgrade libspotdb", current, SPOTDB_VERSION,
                          newest(set), PQgetvalue(res, 0, 0),
                          PQgetvalue(res, 0, 1));
    PQclear(res);
    return rc;
}

int spotdb__schema_handshake(spotdb_db *db, const spotdb__migration_set *set)
{
    PGresult *res = spotdb__exec(
        db,
        "SELECT to_regclass('spotdb_schema_migrations') IS NOT NULL",
        "schema handshake");
    int64_t current;
    bool tracked;

    if (!res)
        return db->errcode;
    tracked = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    if (!tracked)
        return unversioned(db, set);
    res = spotdb__exec(db, "SELECT coalesce(max(version), 0) "
                           "FROM spotdb_schema_migrations",
                       "schema handshake");
    if (!res)
        return db->errcode;
    current = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    if (current < newest(set))
        return spotdb__fail(db, SPOTDB_ESCHEMA,
                            "the database is at schema version %" PRId64
                            " and libspotdb %s needs %" PRId64 ": run "
                            "`spotdb migrate`", current, SPOTDB_VERSION,
                            newest(set));
    return current > newest(set) ? check_ahead(db, set, current) : 0;
}
