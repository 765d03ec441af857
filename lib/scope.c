/*
 * The acting user of a handle (scope.h).  The policies of migration 0003
 * read it from the transaction-local setting spotdb.user_id; io.c sends
 * it in front of each statement run outside a transaction, and this file
 * sends it at once when the scope changes inside one.
 */
#include <string.h>

#include "table.h"

const char spotdb__scope_sql[] =
    "SELECT set_config('spotdb.user_id', $1, true)";

/* A role the policies do not hold would make a scope a false promise;
 * without the migration there is nothing to hold anyone. */
static const char check_sql[] =
    "SELECT r.rolsuper OR r.rolbypassrls, "
    "to_regprocedure('spotdb_scope_user()') IS NOT NULL, r.rolname "
    "FROM pg_roles r WHERE r.rolname = current_user";

static int check_enforced(spotdb_db *db)
{
    PGresult *res;
    int rc = 0;

    if (db->scope_enforced)
        return 0;
    if (!(res = spotdb__exec(db, check_sql, "set_scope: checking the role")))
        return db->errcode;
    if (PQntuples(res) != 1)
        rc = spotdb__fail(db, SPOTDB_ERROR, "set_scope: the connection's "
                          "role is not in pg_roles");
    else if (strcmp(PQgetvalue(res, 0, 1), "t") != 0)
        rc = spotdb__fail(db, SPOTDB_ESCHEMA, "set_scope: the database has "
                          "no row-level security policies (migration 0003): "
                          "run `spotdb migrate`");
    else if (strcmp(PQgetvalue(res, 0, 0), "t") == 0)
        rc = spotdb__fail(db, SPOTDB_EINVAL, "set_scope: role \"%s\" is a "
                          "superuser or has BYPASSRLS, so row-level security "
                          "would not hold it to the acting user; connect as "
                          "a member of spotdb_app", PQgetvalue(res, 0, 2));
    PQclear(res);
    db->scope_enforced = rc == 0;
    return rc;
}

/* The handle takes the new scope even when sending it fails: that
 * failure ends the transaction, and the next one must not go on as the
 * previous user. */
int spotdb__scope_switch(spotdb_db *db, const char *id)
{
    const char *params[1] = { db->scope };
    PGresult *res;

    memmove(db->scope, id, strlen(id) + 1);
    if (!spotdb_in_transaction(db))
        return 0;
    res = spotdb__exec_params(db, spotdb__scope_sql, 1, params, "set_scope");
    if (!res)
        return db->errcode;
    PQclear(res);
    return 0;
}

int spotdb_set_scope(spotdb_db *db, const char *user_id)
{
    int rc;

    if ((rc = spotdb__enter(db, true)) != 0)
        return rc;
    if (!db || !db->conn)
        return spotdb__fail(db, SPOTDB_EINVAL, "the handle is NULL");
    if (!user_id || !*user_id)
        return spotdb__scope_switch(db, "");
    if (!spotdb__is_uuid(user_id))
        return spotdb__fail(db, SPOTDB_EINVAL,
                            "set_scope: user_id: is not a UUID");
    if ((rc = check_enforced(db)) != 0)
        return rc;
    return spotdb__scope_switch(db, user_id);
}

const char *spotdb_scope(const spotdb_db *db)
{
    return db && db->scope[0] ? db->scope : NULL;
}
