/*
 * users: the description of the table (without hashed_password, which
 * never leaves the library), creation with a password, authentication
 * and password changes.
 */
#include <stdlib.h>
#include <string.h>

#include "password.h"
#include "table.h"

#define C(field, type, flags, minc, maxc, allowed, rule) \
    SPOTDB__COL(spotdb_user, field, type, flags, minc, maxc, allowed, rule, \
                NULL)
#define NN SPOTDB__NOT_NULL
#define REQ (SPOTDB__NOT_NULL | SPOTDB__REQUIRED)

enum { ID, EMAIL, USERNAME, FULL_NAME, ROLE, IS_ACTIVE, CREATED_AT,
       UPDATED_AT, LAST_LOGIN };

_Static_assert(USERNAME == SPOTDB__USER_USERNAME_COLUMN, "username column");

static const char *const roles[] = { "admin", "user", "lab", NULL };

static const spotdb__column columns[] = {
    C(id, SPOTDB__UUID, NN | SPOTDB__KEY, 0, 0, NULL, NULL),
    C(email, SPOTDB__TEXT, REQ, 1, 255, NULL, spotdb__rule_email),
    C(username, SPOTDB__TEXT, REQ, 1, 50, NULL, spotdb__rule_username),
    C(full_name, SPOTDB__TEXT, 0, 0, 100, NULL, NULL),
    C(role, SPOTDB__TEXT, NN, 1, 20, roles, NULL),
    C(is_active, SPOTDB__BOOL, NN, 0, 0, NULL, NULL),
    C(created_at, SPOTDB__TIMESTAMP, NN, 0, 0, NULL, NULL),
    C(updated_at, SPOTDB__TIMESTAMP, SPOTDB__TRIGGER, 0, 0, NULL, NULL),
    C(last_login, SPOTDB__TIMESTAMP, 0, 0, 0, NULL, NULL),
};

static const spotdb__filter filters[] = {
    { ROLE, "=", offsetof(spotdb_user_filter, role) },
    { IS_ACTIVE, "=", offsetof(spotdb_user_filter, is_active) },
};

SPOTDB__TABLE(user, "users", columns, filters, SPOTDB__NELEMS(filters),
              SPOTDB_USER_FILTER_VERSION, CREATED_AT, false, NULL);

SPOTDB__TABLE_FUNCTIONS(user, spotdb__user_table)

int spotdb_user_get_by_email(spotdb_user **out, spotdb_db *db,
                             const char *email)
{
    static const size_t key = EMAIL;

    return spotdb__get((void **)out, db, &spotdb__user_table, &key, &email,
                       1);
}

int spotdb_user_get_by_username(spotdb_user **out, spotdb_db *db,
                                const char *username)
{
    static const size_t key = USERNAME;

    return spotdb__get((void **)out, db, &spotdb__user_table, &key,
                       &username, 1);
}

/* Write with the new hash and/or the login time as extra columns.  The
 * hash is the handle's secret for the call: the server's messages can
 * quote a failing row, and the redactor then masks it. */
static int write_extras(void **out, spotdb_db *db, const char *id,
                        const spotdb__write *base, const char *hash,
                        bool login)
{
    spotdb__extra extras[2];
    spotdb__write w = *base;
    size_t n = 0;
    int rc;

    if (hash)
        extras[n++] = (spotdb__extra){ "hashed_password", hash, NULL };
    if (login)
        extras[n++] = (spotdb__extra){ "last_login", NULL,
                                       "CURRENT_TIMESTAMP" };
    w.extras = extras;
    w.nextras = n;
    db->secret = hash;
    rc = id ? spotdb__update(out, db, &spotdb__user_table, id, &w)
            : spotdb__insert(out, db, &spotdb__user_table, &w);
    db->secret = NULL;
    return rc;
}

int spotdb_user_create(spotdb_user **out, spotdb_db *db,
                       const spotdb_user *in, uint64_t fields,
                       const char *password)
{
    spotdb__write w = { in, fields, NULL, 0, NULL };
    char hash[SPOTDB__HASH_LEN + 1];
    int rc;

    if (out)
        *out = NULL;
    if ((rc = spotdb__enter(db, true)) != 0)
        return rc;
    if (!db)
        return spotdb__fail(NULL, SPOTDB_EINVAL, "the handle is NULL");
    /* The cheap checks first: a bad email must not cost a bcrypt. */
    if ((rc = spotdb__check_write(db, &spotdb__user_table, &w, true)) != 0 ||
        (rc = spotdb__password_check(db, password)) != 0 ||
        (rc = spotdb__password_hash(db, password, hash)) != 0)
        return rc;
    rc = write_extras((void **)out, db, NULL, &w, hash, false);
    spotdb__wipe(hash, sizeof hash);
    return rc;
}

int spotdb_user_set_password(spotdb_db *db, const char *id,
                             const char *password)
{
    static const spotdb_user none;
    spotdb__write w = { &none, 0, NULL, 0, NULL };
    char hash[SPOTDB__HASH_LEN + 1];
    int rc;

    if ((rc = spotdb__enter(db, true)) != 0)
        return rc;
    if (!db)
        return spotdb__fail(NULL, SPOTDB_EINVAL, "the handle is NULL");
    if (!id || !spotdb__is_uuid(id))
        return spotdb__fail(db, SPOTDB_EINVAL, "user.id: is not a UUID");
    if ((rc = spotdb__password_check(db, password)) != 0 ||
        (rc = spotdb__password_hash(db, password, hash)) != 0)
        return rc;
    rc = write_extras(NULL, db, id, &w, hash, false);
    spotdb__wipe(hash, sizeof hash);
    return rc;
}

/* The user a login names: its id, whether it is active, and its stored
 * hash ("" when none).  A login with @ is an email, otherwise a username:
 * usernames may not hold @, so the two never collide.  spotdb_login()
 * (migration 0003) reads it past row-level security, since nobody acts
 * as a user not yet found.  The row is decoded on the stack and the
 * result, which holds the hash, cleared here. */
static int find_login(spotdb_user *user, bool *found, char *hash,
                      spotdb_db *db, const char *login)
{
    size_t key = strchr(login, '@') ? EMAIL : USERNAME;
    char sql[1024], list[512];
    spotdb__params p = { .n = 0 };
    PGresult *res;
    int rc = 0, col = (int)spotdb__user_table.ncolumns;

    *found = false;
    spotdb__select_list(list, sizeof list, &spotdb__user_table);
    snprintf(sql, sizeof sql, "SELECT %s, hashed_password "
             "FROM spotdb_login($1::text)", list);
    spotdb__bind(&p, &columns[key], login);
    res = spotdb__execute(db, sql, &p, "authenticating");
    if (!res)
        return db->errcode;
    if (PQntuples(res) == 1 &&
        (rc = spotdb__check_shape(db, &spotdb__user_table, res)) == 0 &&
        (rc = spotdb__decode_rows(db, &spotdb__user_table, res, 0, 1,
                                  (char *)user)) == 0) {
        *found = true;
        if (!PQgetisnull(res, 0, col) &&
            PQgetlength(res, 0, col) == SPOTDB__HASH_LEN)
            memcpy(hash, PQgetvalue(res, 0, col), SPOTDB__HASH_LEN + 1);
    }
    PQclear(res);
    return rc;
}

/* The login is recorded by the user who logged in: under row-level
 * security that is who may update the row, whoever the handle acts for. */
static int record_login(spotdb_user **out, spotdb_db *db, const char *id,
                        const char *rehash)
{
    static const spotdb_user none;
    spotdb__write w = { &none, 0, NULL, 0, NULL };
    char saved[SPOTDB_UUID_SIZE];
    int rc;

    memcpy(saved, db->scope, sizeof saved);
    if ((rc = spotdb__scope_switch(db, id)) != 0) {
        memcpy(db->scope, saved, sizeof saved);
        return rc;
    }
    rc = write_extras((void **)out, db, id, &w, rehash, true);
    if (spotdb__scope_switch(db, saved) != 0 && rc == 0) {
        spotdb_user_free(*out);
        *out = NULL;
        rc = db->errcode;
    }
    return rc;
}

int spotdb_user_authenticate(spotdb_user **out, spotdb_db *db,
                             const char *login, const char *password)
{
    char stored[SPOTDB__HASH_LEN + 1] = "", fresh[SPOTDB__HASH_LEN + 1];
    const char *rehash = NULL;
    spotdb_user user;
    bool found, weak, ok;
    int rc;

    if (out)
        *out = NULL;
    if ((rc = spotdb__enter(db, true)) != 0)
        return rc;
    if (!db || !out || !login)
        return spotdb__fail(db, SPOTDB_EINVAL, "authenticate: db, out and "
                            "login must not be NULL");
    if ((rc = spotdb__password_check(db, password)) != 0 ||
        (rc = find_login(&user, &found, stored, db, login)) != 0)
        return rc;
    /* Every path does the same bcrypt work before deciding. */
    rc = spotdb__password_verify(db, password, stored[0] ? stored : NULL,
                                 &ok, &weak);
    spotdb__wipe(stored, sizeof stored);
    if (rc != 0)
        return rc;              /* out of memory, not a wrong password */
    if (!ok || !found || !user.is_active) {
        return spotdb__fail(db, SPOTDB_EAUTH, "authentication failed: wrong "
                            "login or password, or the user is inactive");
    }
    /* A failed re-hash does not refuse a right password: the old hash
     * still works and the next login tries again. */
    if (weak && spotdb__password_hash(db, password, fresh) == 0)
        rehash = fresh;
    rc = record_login(out, db, user.id, rehash);
    spotdb__wipe(fresh, sizeof fresh);
    return rc;
}
