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

/* The role does not change on a handle, nor do the tables' flags (they
 * share their policies): asked once, for the scope and for insert_many,
 * to which PostgreSQL refuses COPY under row-level security. */
int spotdb__rls_check(spotdb_db *db, const char *what)
{
    static const char sql[] =
        "SELECT r.rolsuper OR r.rolbypassrls, "
        "to_regprocedure('spotdb_scope_user()') IS NOT NULL, "
        "coalesce((SELECT c.relrowsecurity FROM pg_class c "
        "WHERE c.oid = to_regclass('experiment_logs')), false) "
        "FROM pg_roles r WHERE r.rolname = current_user";
    PGresult *res;

    if (db->rls_known)
        return 0;
    if (!(res = spotdb__exec(db, sql, what)))
        return db->errcode;
    if (PQntuples(res) != 1) {
        PQclear(res);
        return spotdb__fail(db, SPOTDB_ERROR, "%s: the connection's role is "
                            "not in pg_roles", what);
    }
    db->rls_bypassed = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    db->rls_policies = strcmp(PQgetvalue(res, 0, 1), "t") == 0;
    db->rls_on = strcmp(PQgetvalue(res, 0, 2), "t") == 0;
    db->rls_known = true;
    PQclear(res);
    return 0;
}

/* A role the policies do not hold would make a scope a false promise;
 * without the migration there is nothing to hold anyone. */
static int check_enforced(spotdb_db *db)
{
    int rc = spotdb__rls_check(db, "set_scope: checking the role");

    if (rc != 0)
        return rc;
    if (!db->rls_policies)
        return spotdb__fail(db, SPOTDB_ESCHEMA, "set_scope: the database has "
                            "no row-level security policies (migration "
                            "0003): run `spotdb migrate`");
    if (db->rls_bypassed)
        return spotdb__fail(db, SPOTDB_EINVAL, "set_scope: role \"%s\" is a "
                            "superuser or has BYPASSRLS, so row-level "
                            "security would not hold it to the acting user; "
                            "connect as a member of spotdb_app",
                            PQuser(db->conn));
    return 0;
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
