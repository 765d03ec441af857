/*
 * Users and passwords (include/spotdb/users.h): typed create/read/update/
 * delete, validation before any round trip, unique and foreign-key
 * failures, keyset paging, bcrypt hashing and authentication.
 *
 * Every outcome is checked against the real server, and where it matters
 * through a raw libpq connection that does not go through the library
 * (the stored hash, row counts, cascades).  The fixture lowers bcrypt to
 * cost 4; the few tests about the cost itself raise it again.
 */
#include <crypt.h>
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"
#include "internal.h"

/* ---- helpers ------------------------------------------------------------ */

/* A non-NULL value that a failing call must overwrite with NULL. */
static spotdb_user sentinel_row;
#define SENTINEL (&sentinel_row)

static PGconn *raw_conn(void)
{
    return th_connect(th_db_conninfo());
}

static long users_count(PGconn *c)
{
    return th_count(c, "SELECT count(*) FROM users");
}

/* malloc'd: `unit` n times, then `suffix` (may be NULL). */
static char *repeat(const char *unit, int n, const char *suffix)
{
    size_t ul = strlen(unit), sl = suffix ? strlen(suffix) : 0;
    char *s = malloc(ul * (size_t)n + sl + 1), *p = s;

    ck_assert_ptr_nonnull(s);
    for (int i = 0; i < n; i++, p += ul)
        memcpy(p, unit, ul);
    if (sl)
        memcpy(p, suffix, sl);
    p[sl] = '\0';
    return s;
}

static bool is_uuid(const char *s)
{
    if (strlen(s) != 36)
        return false;
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return false;
        } else if (!((s[i] >= '0' && s[i] <= '9') ||
                     (s[i] >= 'a' && s[i] <= 'f'))) {
            return false;
        }
    }
    return true;
}

/* Every failure message: present, and never a hash or the password. */
static void check_clean_message(spotdb_db *db, const char *password,
                                const char *what)
{
    const char *m = spotdb_errmsg(db);

    ck_assert_ptr_nonnull(m);
    ck_assert_msg(m[0] != '\0', "%s: a failure left an empty message", what);
    ck_assert_msg(strstr(m, "$2b$") == NULL && strstr(m, "$2a$") == NULL &&
                  strstr(m, "$2y$") == NULL,
                  "%s: message shows a password hash: %s", what, m);
    if (password && *password)
        ck_assert_msg(strstr(m, password) == NULL,
                      "%s: message shows the password: %s", what, m);
}

#define STR_(x) #x
#define STR(x) STR_(x)
#define assert_clean_message(db, password) \
    check_clean_message((db), (password), "line " STR(__LINE__))

/* The failure message names `needle` (NULL: anything goes). */
static void assert_names(spotdb_db *db, const char *needle, const char *call)
{
    if (needle)
        ck_assert_msg(strstr(spotdb_errmsg(db), needle) != NULL,
                      "%s: message does not name '%s': %s", call, needle,
                      spotdb_errmsg(db));
}

#define ASSERT_FAILS(call, code, db, needle, password) do {                 \
        int rc_ = (call);                                                   \
        ck_assert_msg(rc_ == (code), "%s: expected %s (%d), got %d: %s",    \
                      #call, spotdb_strerror(code), (int)(code), rc_,       \
                      spotdb_errmsg(db));                                   \
        check_clean_message((db), (password), #call);                       \
        assert_names((db), (needle), #call);                                \
    } while (0)

#define ASSERT_OK(call, db) do {                                            \
        int rc_ = (call);                                                   \
        ck_assert_msg(rc_ == 0, "%s: %d %s", #call, rc_, spotdb_errmsg(db)); \
        ck_assert_str_eq(spotdb_errmsg(db), "");                            \
    } while (0)

/* A user with only the required columns; fails the test on error. */
static spotdb_user *make_user(spotdb_db *db, const char *email,
                              const char *username, const char *password)
{
    spotdb_user in = { .email = email, .username = username };
    spotdb_user *out = NULL;

    ASSERT_OK(spotdb_user_create(&out, db, &in,
                                 SPOTDB_USER_EMAIL | SPOTDB_USER_USERNAME,
                                 password), db);
    ck_assert_ptr_nonnull(out);
    return out;
}

static void assert_user_eq(const spotdb_user *a, const spotdb_user *b)
{
    ck_assert_str_eq(a->id, b->id);
    ck_assert_str_eq(a->email, b->email);
    ck_assert_str_eq(a->username, b->username);
    ck_assert_pstr_eq(a->full_name, b->full_name);
    ck_assert_str_eq(a->role, b->role);
    ck_assert_int_eq(a->is_active, b->is_active);
    ck_assert_int_eq(a->created_at, b->created_at);
    ck_assert_int_eq(a->updated_at, b->updated_at);
    ck_assert_uint_eq(a->nulls, b->nulls);
    if (!(a->nulls & SPOTDB_USER_LAST_LOGIN))
        ck_assert_int_eq(a->last_login, b->last_login);
}

/* Row `id` read back through get, get_by_email and get_by_username, each
 * equal to `want`. */
static void assert_reads_back(spotdb_db *db, const spotdb_user *want)
{
    spotdb_user *got = NULL;

    ASSERT_OK(spotdb_user_get(&got, db, want->id), db);
    assert_user_eq(got, want);
    spotdb_user_free(got);
    got = NULL;
    ASSERT_OK(spotdb_user_get_by_email(&got, db, want->email), db);
    assert_user_eq(got, want);
    spotdb_user_free(got);
    got = NULL;
    ASSERT_OK(spotdb_user_get_by_username(&got, db, want->username), db);
    assert_user_eq(got, want);
    spotdb_user_free(got);
}

/* A column of user `id` through the raw connection (malloc'd or NULL). */
static char *raw_col(PGconn *c, const char *id, const char *expr)
{
    char sql[512];

    snprintf(sql, sizeof sql, "SELECT %s FROM users WHERE id = '%s'", expr,
             id);
    return th_scalar(c, sql);
}

static char *raw_hash(PGconn *c, const char *id)
{
    return raw_col(c, id, "hashed_password");
}

/* A timestamp column as microseconds since 1970 (UTC by convention);
 * INT64_MIN + 1 for NULL. */
static int64_t raw_us(PGconn *c, const char *id, const char *col)
{
    char expr[256], *v;
    int64_t us;

    snprintf(expr, sizeof expr,
             "(EXTRACT(EPOCH FROM %s) * 1000000)::int8", col);
    v = raw_col(c, id, expr);
    if (!v)
        return INT64_MIN + 1;
    us = strtoll(v, NULL, 10);
    free(v);
    return us;
}

static void raw_set_hash(PGconn *c, const char *id, const char *hash)
{
    const char *params[2] = { hash, id };
    PGresult *r = PQexecParams(c, "UPDATE users SET hashed_password = $1 "
                               "WHERE id = $2", 2, NULL, params, NULL, NULL,
                               0);

    ck_assert_msg(PQresultStatus(r) == PGRES_COMMAND_OK, "%s",
                  PQerrorMessage(c));
    ck_assert_str_eq(PQcmdTuples(r), "1");
    PQclear(r);
}

/* Does `password` verify against `hash` (libxcrypt)? */
static bool verifies(const char *password, const char *hash)
{
    struct crypt_data cd;
    const char *h;

    memset(&cd, 0, sizeof cd);
    h = crypt_rn(password, hash, &cd, sizeof cd);
    return h != NULL && h[0] != '*' && strcmp(h, hash) == 0;
}

/* A bcrypt hash of `password` with `prefix` ("$2b$") and `cost`
 * (malloc'd). */
static char *make_hash(const char *password, const char *prefix, int cost)
{
    char salt[CRYPT_GENSALT_OUTPUT_SIZE];
    struct crypt_data cd;
    const char *h;

    ck_assert_ptr_nonnull(crypt_gensalt_rn(prefix, (unsigned long)cost, NULL,
                                           0, salt, sizeof salt));
    memset(&cd, 0, sizeof cd);
    h = crypt_rn(password, salt, &cd, sizeof cd);
    ck_assert_ptr_nonnull(h);
    ck_assert(h[0] == '$');
    return strdup(h);
}

static bool starts_with(const char *s, const char *prefix)
{
    return s && strncmp(s, prefix, strlen(prefix)) == 0;
}

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

    nanosleep(&ts, NULL);
}

static double elapsed_ms(const struct timespec *a, const struct timespec *b)
{
    return (double)(b->tv_sec - a->tv_sec) * 1e3 +
           (double)(b->tv_nsec - a->tv_nsec) / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

#define ADMIN_EMAIL "admin@spotoptimizer.local"
#define ADMIN_SEED_HASH \
    "$2b$12$/ASjsC1a43P.fo6GCkzY6.51BDVO9iE8UsE9KxAzGQW5AU6lIb4y6"
/* 2020-01-01 00:00:00 UTC and 2000-01-01 00:00:00 UTC in microseconds. */
#define US_2020 INT64_C(1577836800000000)
#define US_2000 INT64_C(946684800000000)
#define NOW_SLACK_US INT64_C(60000000)

/* ---- create and read ---------------------------------------------------- */

START_TEST(create_fills_defaults_and_reads_back)
{
    spotdb_db *db = th_open();
    PGconn *c = raw_conn();
    int64_t now = spotdb_now_us();
    spotdb_user *u = make_user(db, "carol@example.com", "carol", "pw-carol");
    char *v;

    ck_assert_msg(is_uuid(u->id), "id '%s'", u->id);
    ck_assert_str_eq(u->email, "carol@example.com");
    ck_assert_str_eq(u->username, "carol");
    ck_assert_ptr_nonnull(u->role);
    ck_assert_str_eq(u->role, "user");
    ck_assert(u->is_active);
    ck_assert_ptr_null(u->full_name);
    ck_assert(u->nulls & SPOTDB_USER_FULL_NAME);
    ck_assert(u->nulls & SPOTDB_USER_LAST_LOGIN);
    ck_assert_uint_eq(u->nulls & (SPOTDB_USER_ID | SPOTDB_USER_EMAIL |
                                  SPOTDB_USER_USERNAME | SPOTDB_USER_ROLE |
                                  SPOTDB_USER_IS_ACTIVE |
                                  SPOTDB_USER_CREATED_AT |
                                  SPOTDB_USER_UPDATED_AT), 0);
    ck_assert_int_lt(llabs(u->created_at - now), NOW_SLACK_US);
    ck_assert_int_lt(llabs(u->updated_at - now), NOW_SLACK_US);

    /* the returned row is the stored one */
    ck_assert_int_eq(raw_us(c, u->id, "created_at"), u->created_at);
    ck_assert_int_eq(raw_us(c, u->id, "updated_at"), u->updated_at);
    v = raw_col(c, u->id, "role || '/' || is_active || '/' || "
                "(full_name IS NULL) || '/' || (last_login IS NULL)");
    ck_assert_str_eq(v, "user/true/true/true");
    free(v);
    ck_assert_int_eq(users_count(c), 2);     /* admin and carol */

    /* stored as bcrypt, never the password; salted */
    v = raw_hash(c, u->id);
    ck_assert_msg(starts_with(v, "$2b$"), "hash %s", v);
    ck_assert_str_ne(v, "pw-carol");
    ck_assert(strstr(v, "pw-carol") == NULL);
    ck_assert(verifies("pw-carol", v));
    ck_assert(!verifies("pw-caro", v));
    {
        spotdb_user *twin = make_user(db, "twin@example.com", "twin",
                                      "pw-carol");
        char *h2 = raw_hash(c, twin->id);

        ck_assert_str_ne(h2, v);
        ck_assert(verifies("pw-carol", h2));
        free(h2);
        spotdb_user_free(twin);
    }
    free(v);

    assert_reads_back(db, u);
    spotdb_user_free(u);
    PQfinish(c);
    spotdb_close(db);
}
END_TEST

START_TEST(create_every_column_utf8_and_maximum_lengths)
{
    spotdb_db *db = th_open();
    PGconn *c = raw_conn();
    char *email = repeat("a", 243, "@example.com");     /* 255 chars */
    char *username = repeat("\xc3\xbc", 50, NULL);       /* 50 x u-umlaut */
    char *full_name = repeat("\xe6\x97\xa5", 100, NULL); /* 100 x 日 */
    spotdb_user in = { .email = email, .username = username,
                       .full_name = full_name, .role = "lab",
                       .is_active = false };
    spotdb_user *u = NULL;
    char *v;

    ck_assert_uint_eq(strlen(email), 255);
    ck_assert_uint_eq(strlen(full_name), 300);
    ASSERT_OK(spotdb_user_create(&u, db, &in, SPOTDB_USER_EMAIL |
                                 SPOTDB_USER_USERNAME | SPOTDB_USER_FULL_NAME |
                                 SPOTDB_USER_ROLE | SPOTDB_USER_IS_ACTIVE,
                                 "pw"), db);
    ck_assert_str_eq(u->email, email);
    ck_assert_str_eq(u->username, username);
    ck_assert_str_eq(u->full_name, full_name);
    ck_assert_str_eq(u->role, "lab");
    ck_assert(!u->is_active);
    ck_assert_uint_eq(u->nulls & (SPOTDB_USER_FULL_NAME |
                                  SPOTDB_USER_IS_ACTIVE), 0);
    ck_assert(u->nulls & SPOTDB_USER_LAST_LOGIN);
    v = raw_col(c, u->id, "char_length(email) || '/' || "
                "char_length(username) || '/' || char_length(full_name) || "
                "'/' || role || '/' || is_active");
    ck_assert_str_eq(v, "255/50/100/lab/false");
    free(v);
    assert_reads_back(db, u);
    spotdb_user_free(u);

    /* non-ASCII text round-trips byte for byte */
    {
        spotdb_user in2 = { .email = "zoe@example.com",
                            .username = "zo\xc3\xab",
                            .full_name = "Zo\xc3\xab \xc3\x91\xc3\xba\xc3\xb1"
                                         "ez \xe6\x97\xa5\xe6\x9c\xac",
                            .role = "admin", .is_active = true };

        ASSERT_OK(spotdb_user_create(&u, db, &in2, SPOTDB_USER_EMAIL |
                                     SPOTDB_USER_USERNAME |
                                     SPOTDB_USER_FULL_NAME |
                                     SPOTDB_USER_ROLE, "pw"), db);
        ck_assert_str_eq(u->full_name, "Zoë Ñúñez 日本");
        ck_assert_str_eq(u->username, "zoë");
        ck_assert_str_eq(u->role, "admin");
        v = raw_col(c, u->id, "full_name");
        ck_assert_str_eq(v, "Zoë Ñúñez 日本");
        free(v);
        assert_reads_back(db, u);
        spotdb_user_free(u);
    }

    /* FULL_NAME in fields with a NULL pointer, or with its nulls bit, is
     * SQL NULL; a zero struct's is_active is false, not the default */
    {
        spotdb_user in3 = { .email = "n1@example.com", .username = "n1",
                            .full_name = NULL };
        spotdb_user in4 = { .email = "n2@example.com", .username = "n2",
                            .full_name = "ignored",
                            .nulls = SPOTDB_USER_FULL_NAME };

        ASSERT_OK(spotdb_user_create(&u, db, &in3, SPOTDB_USER_EMAIL |
                                     SPOTDB_USER_USERNAME |
                                     SPOTDB_USER_FULL_NAME |
                                     SPOTDB_USER_IS_ACTIVE, "pw"), db);
        ck_assert_ptr_null(u->full_name);
        ck_assert(u->nulls & SPOTDB_USER_FULL_NAME);
        ck_assert(!u->is_active);
        spotdb_user_free(u);
        ASSERT_OK(spotdb_user_create(&u, db, &in4, SPOTDB_USER_EMAIL |
                                     SPOTDB_USER_USERNAME |
                                     SPOTDB_USER_FULL_NAME, "pw"), db);
        ck_assert_ptr_null(u->full_name);
        ck_assert(u->nulls & SPOTDB_USER_FULL_NAME);
        ck_assert(u->is_active);
        v = raw_col(c, u->id, "(full_name IS NULL)::text");
        ck_assert_str_eq(v, "true");
        free(v);
        spotdb_user_free(u);
    }

    /* an explicit created_at is stored exactly */
    {
        spotdb_user in5 = { .email = "old@example.com", .username = "old",
                            .created_at = US_2020 };

        ASSERT_OK(spotdb_user_create(&u, db, &in5, SPOTDB_USER_EMAIL |
                                     SPOTDB_USER_USERNAME |
                                     SPOTDB_USER_CREATED_AT, "pw"), db);
        ck_assert_int_eq(u->created_at, US_2020);
        ck_assert_int_eq(raw_us(c, u->id, "created_at"), US_2020);
        spotdb_user_free(u);
    }
    free(email);
    free(username);
    free(full_name);
    PQfinish(c);
    spotdb_close(db);
}
END_TEST

START_TEST(over_length_by_one_is_einval_naming_the_field)
{
    spotdb_db *db = th_open();
    PGconn *c = raw_conn();
    char *email = repeat("b", 244, "@example.com");       /* 256 chars */
    char *username = repeat("x", 51, NULL);
    char *username_mb = repeat("\xc3\xbc", 51, NULL);
    char *full_name = repeat("\xe6\x97\xa5", 101, NULL);
    char *full_ascii = repeat("f", 101, NULL);
    const uint64_t req = SPOTDB_USER_EMAIL | SPOTDB_USER_USERNAME;
    spotdb_user *u = SENTINEL;
    long before = users_count(c);

    {
        spotdb_user in = { .email = email, .username = "ok1" };
        ASSERT_FAILS(spotdb_user_create(&u, db, &in, req, "pw"), SPOTDB_EINVAL,
                     db, "email", "pw");
        ck_assert_ptr_null(u);
    }
    {
        spotdb_user in = { .email = "ok2@example.com", .username = username };
        u = SENTINEL;
        ASSERT_FAILS(spotdb_user_create(&u, db, &in, req, "pw"), SPOTDB_EINVAL,
                     db, "username", "pw");
        ck_assert_ptr_null(u);
        in.username = username_mb;
        ASSERT_FAILS(spotdb_user_create(&u, db, &in, req, "pw"), SPOTDB_EINVAL,
                     db, "username", "pw");
    }
    {
        spotdb_user in = { .email = "ok3@example.com", .username = "ok3",
                           .full_name = full_name };
        u = SENTINEL;
        ASSERT_FAILS(spotdb_user_create(&u, db, &in,
                                        req | SPOTDB_USER_FULL_NAME, "pw"),
                     SPOTDB_EINVAL, db, "full_name", "pw");
        ck_assert_ptr_null(u);
        in.full_name = full_ascii;
        ASSERT_FAILS(spotdb_user_create(&u, db, &in,
                                        req | SPOTDB_USER_FULL_NAME, "pw"),
                     SPOTDB_EINVAL, db, "full_name", "pw");
    }
    /* empty email and username break the 1.. minimum */
    {
        spotdb_user in = { .email = "", .username = "ok4" };
        ASSERT_FAILS(spotdb_user_create(&u, db, &in, req, "pw"), SPOTDB_EINVAL,
                     db, "email", "pw");
        in.email = "ok4@example.com";
        in.username = "";
        ASSERT_FAILS(spotdb_user_create(&u, db, &in, req, "pw"), SPOTDB_EINVAL,
                     db, "username", "pw");
    }
    ck_assert_int_eq(users_count(c), before);
    free(email);
    free(username);
    free(username_mb);
    free(full_name);
    free(full_ascii);
    PQfinish(c);
    spotdb_close(db);
}
END_TEST

START_TEST(stored_hash_is_bcrypt_cost_12)
{
    spotdb_db *db = th_open();
    PGconn *c = raw_conn();
    spotdb_user *u;
    char *h;

    spotdb__bcrypt_cost = 12;
    u = make_user(db, "strong@example.com", "strong", "Corr3ct horse");
    h = raw_hash(c, u->id);
    ck_assert_msg(starts_with(h, "$2b$12$"), "hash %s", h);
    ck_assert_uint_eq(strlen(h), 60);
    ck_assert_str_ne(h, "Corr3ct horse");
    ck_assert(verifies("Corr3ct horse", h));
    ck_assert(!verifies("Corr3ct hors", h));
    ck_assert(!verifies("Corr3ct horse ", h));
    free(h);
    spotdb_user_free(u);
    PQfinish(c);
    spotdb_close(db);
}
END_TEST

START_TEST(password_rules)
{
    spotdb_db *db = th_open();
    PGconn *c = raw_conn();
    const uint64_t req = SPOTDB_USER_EMAIL | SPOTDB_USER_USERNAME;
    spotdb_user in = { .email = "pw@example.com", .username = "pwuser" };
    char *pw73 = repeat("S3cr3tZq", 9, "!");             /* 73 bytes */
    char *pw72 = repeat("S3cr3tZq", 9, NULL);            /* 72 bytes */
    char *mb72 = repeat("\xe6\x97\xa5", 24, NULL);       /* 24 chars, 72 B */
    char *mb73 = repeat("\xe6\x97\xa5", 24, "k");        /* 73 bytes */
    spotdb_user *u = SENTINEL;
    long before = users_count(c);
    char *h;

    ck_assert_uint_eq(strlen(pw73), 73);
    ck_assert_uint_eq(strlen(mb73), 73);
    ASSERT_FAILS(spotdb_user_create(&u, db, &in, req, ""), SPOTDB_EINVAL, db,
                 "password", NULL);
    ck_assert_ptr_null(u);
    u = SENTINEL;
    ASSERT_FAILS(spotdb_user_create(&u, db, &in, req, NULL), SPOTDB_EINVAL,
                 db, "password", NULL);
    ck_assert_ptr_null(u);
    u = SENTINEL;
    ASSERT_FAILS(spotdb_user_create(&u, db, &in, req, pw73), SPOTDB_EINVAL,
                 db, "password", pw73);
    ck_assert_ptr_null(u);
    ck_assert(strstr(spotdb_errmsg(db), "S3cr3tZq") == NULL);
    ASSERT_FAILS(spotdb_user_create(&u, db, &in, req, mb73), SPOTDB_EINVAL,
                 db, "password", mb73);
    ck_assert_int_eq(users_count(c), before);

    /* exactly 72 bytes is accepted, and all of it counts */
    u = NULL;
    ASSERT_OK(spotdb_user_create(&u, db, &in, req, pw72), db);
    h = raw_hash(c, u->id);
    ck_assert(verifies(pw72, h));
    free(h);
    spotdb_user_free(u);
    u = NULL;
    ASSERT_OK(spotdb_user_authenticate(&u, db, "pwuser", pw72), db);
    spotdb_user_free(u);
    u = SENTINEL;
    ASSERT_FAILS(spotdb_user_authenticate(&u, db, "pwuser", pw73),
                 SPOTDB_EINVAL, db, "password", pw73);
    ck_assert_ptr_null(u);
    {
        spotdb_user in2 = { .email = "mb@example.com", .username = "mb" };
        u = NULL;
        ASSERT_OK(spotdb_user_create(&u, db, &in2, req, mb72), db);
        spotdb_user_free(u);
        u = NULL;
        ASSERT_OK(spotdb_user_authenticate(&u, db, "mb", mb72), db);
        spotdb_user_free(u);
    }
    {
        /* a password is bytes, not text: any non-NUL byte counts */
        spotdb_user in3 = { .email = "bin@example.com", .username = "bin" };
        const char *bin = "\xff\xfe\x01 \x80pw";

        u = NULL;
        ASSERT_OK(spotdb_user_create(&u, db, &in3, req, bin), db);
        spotdb_user_free(u);
        u = NULL;
        ASSERT_OK(spotdb_user_authenticate(&u, db, "bin", bin), db);
        spotdb_user_free(u);
        u = SENTINEL;
        ASSERT_FAILS(spotdb_user_authenticate(&u, db, "bin", "\xff\xfe\x01 \x80"),
                     SPOTDB_EAUTH, db, NULL, NULL);
        ck_assert_ptr_null(u);
    }
    ck_assert_int_eq(users_count(c), before + 3);
    free(pw73);
    free(pw72);
    free(mb72);
    free(mb73);
    PQfinish(c);
    spotdb_close(db);
}
END_TEST

START_TEST(validation_rules)
{
    spotdb_db *db = th_open();
    PGconn *c = raw_conn();
    const uint64_t req = SPOTDB_USER_EMAIL | SPOTDB_USER_USERNAME;
    spotdb_user *u = SENTINEL;
    long before = users_count(c);
    static const char *const bad_roles[] = { "superuser", "Admin", "",
                                             "admin ", NULL };
    static const char *const bad_utf8[] = {
        "\xff\xfe", "ab\xc3", "\xc0\xaf", "\xed\xa0\x80", "a\x80z", NULL
    };

    for (int i = 0; bad_roles[i]; i++) {
        spotdb_user in = { .email = "r@example.com", .username = "r",
                           .role = bad_roles[i] };
        u = SENTINEL;
        ASSERT_FAILS(spotdb_user_create(&u, db, &in, req | SPOTDB_USER_ROLE,
                                        "pw"), SPOTDB_EINVAL, db, "role",
                     "pw");
        ck_assert_ptr_null(u);
    }
    {
        /* role is NOT NULL: writing NULL is refused */
        spotdb_user in = { .email = "r@example.com", .username = "r" };
        ASSERT_FAILS(spotdb_user_create(&u, db, &in, req | SPOTDB_USER_ROLE,
                                        "pw"), SPOTDB_EINVAL, db, "role",
                     "pw");
    }
    {
        /* usernames cannot look like an email */
        spotdb_user in = { .email = "at@example.com",
                           .username = "bob@example.com" };
        ASSERT_FAILS(spotdb_user_create(&u, db, &in, req, "pw"),
                     SPOTDB_EINVAL, db, "username", "pw");
        in.username = "@";
        ASSERT_FAILS(spotdb_user_create(&u, db, &in, req, "pw"),
                     SPOTDB_EINVAL, db, "username", "pw");
    }
    {
        spotdb_user in = { .email = "no-at-sign.example.com",
                           .username = "noat" };
        ASSERT_FAILS(spotdb_user_create(&u, db, &in, req, "pw"),
                     SPOTDB_EINVAL, db, "email", "pw");
    }
    for (int i = 0; bad_utf8[i]; i++) {
        char email[64];
        spotdb_user in = { .email = "u8@example.com", .username = "u8",
                           .full_name = bad_utf8[i] };

        ASSERT_FAILS(spotdb_user_create(&u, db, &in,
                                        req | SPOTDB_USER_FULL_NAME, "pw"),
                     SPOTDB_EINVAL, db, "full_name", "pw");
        in.full_name = NULL;
        in.username = bad_utf8[i];
        ASSERT_FAILS(spotdb_user_create(&u, db, &in, req, "pw"),
                     SPOTDB_EINVAL, db, "username", "pw");
        snprintf(email, sizeof email, "x%s@example.com", bad_utf8[i]);
        in.username = "u8";
        in.email = email;
        ASSERT_FAILS(spotdb_user_create(&u, db, &in, req, "pw"),
                     SPOTDB_EINVAL, db, "email", "pw");
    }
    {
        /* required columns */
        spotdb_user in = { .email = "req@example.com", .username = "req" };
        ASSERT_FAILS(spotdb_user_create(&u, db, &in, SPOTDB_USER_USERNAME,
                                        "pw"), SPOTDB_EINVAL, db, "email",
                     "pw");
        ASSERT_FAILS(spotdb_user_create(&u, db, &in, SPOTDB_USER_EMAIL,
                                        "pw"), SPOTDB_EINVAL, db, "username",
                     "pw");
        ASSERT_FAILS(spotdb_user_create(&u, db, &in, 0, "pw"),
                     SPOTDB_EINVAL, db, NULL, "pw");
        in.email = NULL;
        ASSERT_FAILS(spotdb_user_create(&u, db, &in, req, "pw"),
                     SPOTDB_EINVAL, db, "email", "pw");
        in.email = "req@example.com";
        in.nulls = SPOTDB_USER_USERNAME;
        ASSERT_FAILS(spotdb_user_create(&u, db, &in, req, "pw"),
                     SPOTDB_EINVAL, db, "username", "pw");
        in.nulls = SPOTDB_USER_IS_ACTIVE;       /* NOT NULL column */
        ASSERT_FAILS(spotdb_user_create(&u, db, &in,
                                        req | SPOTDB_USER_IS_ACTIVE, "pw"),
                     SPOTDB_EINVAL, db, "is_active", "pw");
        ck_assert_ptr_null(u);
    }
    ck_assert_int_eq(users_count(c), before);

    /* reads: malformed ids are EINVAL, unknown ones ENOTFOUND */
    u = SENTINEL;
    ASSERT_FAILS(spotdb_user_get(&u, db, "not-a-uuid"), SPOTDB_EINVAL, db,
                 NULL, NULL);
    ck_assert_ptr_null(u);
    u = SENTINEL;
    ASSERT_FAILS(spotdb_user_get(&u, db, "'; DROP TABLE users; --"),
                 SPOTDB_EINVAL, db, NULL, NULL);
    ck_assert_ptr_null(u);
    u = SENTINEL;
    ASSERT_FAILS(spotdb_user_get(&u, db,
                                 "00000000-0000-4000-8000-000000000000"),
                 SPOTDB_ENOTFOUND, db, NULL, NULL);
    ck_assert_ptr_null(u);
    u = SENTINEL;
    ASSERT_FAILS(spotdb_user_get_by_email(&u, db, "nobody@example.com"),
                 SPOTDB_ENOTFOUND, db, NULL, NULL);
    ck_assert_ptr_null(u);
    u = SENTINEL;
    ASSERT_FAILS(spotdb_user_get_by_username(&u, db, "nobody"),
                 SPOTDB_ENOTFOUND, db, NULL, NULL);
    ck_assert_ptr_null(u);
    /* exact match: no case folding, no pattern */
    ASSERT_FAILS(spotdb_user_get_by_username(&u, db, "ADMIN"),
                 SPOTDB_ENOTFOUND, db, NULL, NULL);
    ASSERT_FAILS(spotdb_user_get_by_username(&u, db, "adm%"),
                 SPOTDB_ENOTFOUND, db, NULL, NULL);
    ASSERT_FAILS(spotdb_user_get_by_email(&u, db, "ADMIN@spotoptimizer.local"),
                 SPOTDB_ENOTFOUND, db, NULL, NULL);
    {
        /* a LIKE pattern is no pattern: not found, or refused as an
         * address, never the admin */
        int rc = spotdb_user_get_by_email(&u, db, "%@spotoptimizer.local");

        ck_assert_msg(rc == SPOTDB_ENOTFOUND || rc == SPOTDB_EINVAL,
                      "got %d: %s", rc, spotdb_errmsg(db));
        ck_assert_ptr_null(u);
    }
    ck_assert_int_eq(th_count(c, "SELECT count(*) FROM users"), before);
    PQfinish(c);
    spotdb_close(db);
}
END_TEST

/* Rule breaks are found before any round trip (and before any bcrypt):
 * with the handle's server session killed they are still EINVAL, while a
 * valid call then reports the broken connection. */
START_TEST(validation_needs_no_round_trip)
{
    spotdb_db *db = th_open();
    PGconn *c = raw_conn();
    const uint64_t req = SPOTDB_USER_EMAIL | SPOTDB_USER_USERNAME;
    spotdb_user bad_email = { .email = "nobody", .username = "n" };
    spotdb_user good = { .email = "good@example.com", .username = "good" };
    spotdb_user *u = SENTINEL;
    spotdb_user_rows *rows = NULL;
    struct timespec a, b;
    int rc;

    spotdb__bcrypt_cost = 12;
    clock_gettime(CLOCK_MONOTONIC, &a);
    ASSERT_FAILS(spotdb_user_create(&u, db, &bad_email, req, "pw"),
                 SPOTDB_EINVAL, db, "email", "pw");
    clock_gettime(CLOCK_MONOTONIC, &b);
    ck_assert_msg(elapsed_ms(&a, &b) < 50.0, "a refused email cost %.1f ms",
                  elapsed_ms(&a, &b));

    ck_assert_int_eq(th_count(c, "SELECT count(pg_terminate_backend(pid)) "
                     "FROM pg_stat_activity WHERE datname = "
                     "current_database() AND pid <> pg_backend_pid() AND "
                     "application_name = 'libspotdb'"), 1);
    /* gone, so that the call after the refusals finds it closed */
    for (int i = 0; i < 500 && th_count(c, "SELECT count(*) FROM "
                                        "pg_stat_activity WHERE datname = "
                                        "current_database() AND pid <> "
                                        "pg_backend_pid()") > 0; i++)
        th_sleep_s(0.01);
    ASSERT_FAILS(spotdb_user_create(&u, db, &bad_email, req, "pw"),
                 SPOTDB_EINVAL, db, "email", "pw");
    ASSERT_FAILS(spotdb_user_create(&u, db, &good, req, ""),
                 SPOTDB_EINVAL, db, "password", NULL);
    ASSERT_FAILS(spotdb_user_update(&u, db, "00000000-0000-4000-8000-"
                                    "000000000000", &good, 0),
                 SPOTDB_EINVAL, db, NULL, NULL);
    ASSERT_FAILS(spotdb_user_get(&u, db, "nope"), SPOTDB_EINVAL, db, NULL,
                 NULL);
    ASSERT_FAILS(spotdb_user_list(&rows, db, NULL, NULL, -1), SPOTDB_EINVAL,
                 db, NULL, NULL);
    ASSERT_FAILS(spotdb_user_authenticate(&u, db, "good", ""), SPOTDB_EINVAL,
                 db, "password", NULL);
    ASSERT_FAILS(spotdb_user_set_password(db, "nope", "pw2"), SPOTDB_EINVAL,
                 db, NULL, "pw2");
    ck_assert_ptr_null(u);
    /* the first call that needs the server reconnects (db.h) */
    rc = spotdb_user_get_by_username(&u, db, "admin");
    ck_assert_msg(rc == 0, "after the session died: %d %s", rc,
                  spotdb_errmsg(db));
    spotdb_user_free(u);
    ck_assert_int_eq(users_count(c), 1);
    PQfinish(c);
    spotdb_close(db);
}
END_TEST

/* ---- unique keys and secrets in messages -------------------------------- */

START_TEST(unique_conflicts_name_the_constraint)
{
    spotdb_db *db = th_open();
    PGconn *c = raw_conn();
    const uint64_t req = SPOTDB_USER_EMAIL | SPOTDB_USER_USERNAME;
    spotdb_user *a = make_user(db, "dup@example.com", "dup", "pw-one");
    spotdb_user *b = make_user(db, "other@example.com", "other", "pw-one");
    spotdb_user *u = SENTINEL, *after = NULL;
    long before = users_count(c);

    {
        spotdb_user in = { .email = "dup@example.com", .username = "fresh" };
        ASSERT_FAILS(spotdb_user_create(&u, db, &in, req, "pw-two"),
                     SPOTDB_ECONFLICT, db, "users_email_key", "pw-two");
        ck_assert_ptr_null(u);
        ck_assert_str_eq(spotdb_sqlstate(db), "23505");
    }
    {
        spotdb_user in = { .email = "fresh@example.com", .username = "dup" };
        u = SENTINEL;
        ASSERT_FAILS(spotdb_user_create(&u, db, &in, req, "pw-two"),
                     SPOTDB_ECONFLICT, db, "users_username_key", "pw-two");
        ck_assert_ptr_null(u);
    }
    {
        /* the seeded admin's keys are taken too */
        spotdb_user in = { .email = ADMIN_EMAIL, .username = "admin2" };
        ASSERT_FAILS(spotdb_user_create(&u, db, &in, req, "pw-two"),
                     SPOTDB_ECONFLICT, db, "users_email_key", "pw-two");
    }
    ck_assert_int_eq(users_count(c), before);

    /* update into a taken key: conflict, row unchanged */
    {
        spotdb_user in = { .email = "dup@example.com", .username = "dup" };
        u = SENTINEL;
        ASSERT_FAILS(spotdb_user_update(&u, db, b->id, &in,
                                        SPOTDB_USER_EMAIL),
                     SPOTDB_ECONFLICT, db, "users_email_key", NULL);
        ck_assert_ptr_null(u);
        ASSERT_FAILS(spotdb_user_update(NULL, db, b->id, &in,
                                        SPOTDB_USER_USERNAME),
                     SPOTDB_ECONFLICT, db, "users_username_key", NULL);
        ASSERT_OK(spotdb_user_get(&after, db, b->id), db);
        assert_user_eq(after, b);
        spotdb_user_free(after);
    }
    spotdb_user_free(a);
    spotdb_user_free(b);
    PQfinish(c);
    spotdb_close(db);
}
END_TEST

/* A server-side CHECK failure reports the failing row, hash included; the
 * library must not pass that on. */
START_TEST(server_errors_never_show_the_hash)
{
    spotdb_db *db = th_open();
    PGconn *c = raw_conn();
    spotdb_user *u = make_user(db, "guard@example.com", "guard", "pw-guard");
    spotdb_user *out = SENTINEL;
    int rc;

    th_exec(c, "ALTER TABLE users ADD CONSTRAINT chk_test_name "
               "CHECK (full_name IS DISTINCT FROM 'forbidden')");
    {
        spotdb_user in = { .email = "f@example.com", .username = "f",
                           .full_name = "forbidden" };
        rc = spotdb_user_create(&out, db, &in, SPOTDB_USER_EMAIL |
                                SPOTDB_USER_USERNAME | SPOTDB_USER_FULL_NAME,
                                "Secret-Create-1");
        ck_assert_int_lt(rc, 0);
        ck_assert_ptr_null(out);
        assert_clean_message(db, "Secret-Create-1");
        ck_assert_msg(strstr(spotdb_errmsg(db), "chk_test_name") != NULL,
                      "%s", spotdb_errmsg(db));
    }
    {
        spotdb_user in = { .full_name = "forbidden" };
        out = SENTINEL;
        rc = spotdb_user_update(&out, db, u->id, &in, SPOTDB_USER_FULL_NAME);
        ck_assert_int_lt(rc, 0);
        ck_assert_ptr_null(out);
        assert_clean_message(db, "pw-guard");
    }
    /* a row that already breaks a NOT VALID check: set_password's UPDATE
     * fails with the new hash in the failing row */
    {
        spotdb_user *fz = make_user(db, "frozen@example.com", "frozen", "pw");

        th_exec(c, "ALTER TABLE users ADD CONSTRAINT chk_test_user "
                   "CHECK (username <> 'frozen') NOT VALID");
        rc = spotdb_user_set_password(db, fz->id, "Secret-Set-2");
        ck_assert_int_lt(rc, 0);
        assert_clean_message(db, "Secret-Set-2");
        spotdb_user_free(fz);
    }
    spotdb_user_free(u);
    PQfinish(c);
    spotdb_close(db);
}
END_TEST

/* A trigger may quote the row in its own message: the hash, new or
 * stored, must still not reach the caller.  Every call is tried, then the
 * ones that leaked are listed. */
static void note_leak(spotdb_db *db, int rc, const char *what, char *report,
                      size_t n)
{
    const char *m = spotdb_errmsg(db);
    size_t len = strlen(report);

    if (rc >= 0)
        snprintf(report + len, n - len, "[%s succeeded] ", what);
    else if (!strstr(m, "refused row"))
        snprintf(report + len, n - len, "[%s: unexpected failure: %s] ",
                 what, m);
    else if (strstr(m, "$2b$"))
        snprintf(report + len, n - len, "[%s: %s] ", what, m);
}

START_TEST(trigger_messages_never_show_the_hash)
{
    spotdb_db *db = th_open();
    PGconn *c = raw_conn();
    spotdb_user *u = make_user(db, "trig@example.com", "trig", "pw-trig");
    spotdb_user *out = NULL;
    char report[8192] = "", sql[256];
    int rc;

    th_exec(c, "CREATE FUNCTION test_echo() RETURNS trigger AS $$ BEGIN "
               "IF NEW.full_name = 'echo' OR NEW.username = 'echo' THEN "
               "RAISE EXCEPTION 'refused row with %', NEW.hashed_password; "
               "END IF; RETURN NEW; END $$ LANGUAGE plpgsql");
    th_exec(c, "CREATE TRIGGER test_echo BEFORE INSERT OR UPDATE ON users "
               "FOR EACH ROW EXECUTE FUNCTION test_echo()");
    {
        /* create: the new hash */
        spotdb_user in = { .email = "echo@example.com", .username = "echo" };
        rc = spotdb_user_create(&out, db, &in, SPOTDB_USER_EMAIL |
                                SPOTDB_USER_USERNAME, "Secret-Echo-1");
        ck_assert_ptr_null(out);
        note_leak(db, rc, "create", report, sizeof report);
    }
    {
        /* update: the stored hash */
        spotdb_user in = { .full_name = "echo" };
        rc = spotdb_user_update(&out, db, u->id, &in, SPOTDB_USER_FULL_NAME);
        ck_assert_ptr_null(out);
        note_leak(db, rc, "update", report, sizeof report);
    }
    /* a row the trigger refuses: set_password (new hash) and the login's
     * last_login write (stored hash) */
    th_exec(c, "ALTER TABLE users DISABLE TRIGGER test_echo");
    snprintf(sql, sizeof sql, "UPDATE users SET full_name = 'echo' "
             "WHERE id = '%s'", u->id);
    th_exec(c, sql);
    th_exec(c, "ALTER TABLE users ENABLE TRIGGER test_echo");
    rc = spotdb_user_set_password(db, u->id, "Secret-Echo-2");
    note_leak(db, rc, "set_password", report, sizeof report);
    rc = spotdb_user_authenticate(&out, db, "trig", "pw-trig");
    ck_assert_ptr_null(out);
    note_leak(db, rc, "authenticate", report, sizeof report);
    /* and the re-hash on login (new hash) */
    {
        char *weak = make_hash("pw-trig", "$2b$", 4);

        th_exec(c, "ALTER TABLE users DISABLE TRIGGER test_echo");
        raw_set_hash(c, u->id, weak);
        th_exec(c, "ALTER TABLE users ENABLE TRIGGER test_echo");
        free(weak);
    }
    spotdb__bcrypt_cost = 5;
    rc = spotdb_user_authenticate(&out, db, "trig", "pw-trig");
    ck_assert_ptr_null(out);
    note_leak(db, rc, "authenticate with re-hash", report, sizeof report);
    ck_assert_msg(report[0] == '\0', "messages show a hash: %s", report);
    spotdb_user_free(u);
    PQfinish(c);
    spotdb_close(db);
}
END_TEST

/* ---- update ------------------------------------------------------------- */

START_TEST(update_changes_only_masked_columns)
{
    spotdb_db *db = th_open();
    PGconn *c = raw_conn();
    spotdb_user in0 = { .email = "up@example.com", .username = "up",
                        .full_name = "Old Name" };
    spotdb_user *u = NULL, *prev = NULL, *out = NULL;
    char sql[256], *hash_before, *hash_after;

    ASSERT_OK(spotdb_user_create(&u, db, &in0, SPOTDB_USER_EMAIL |
                                 SPOTDB_USER_USERNAME | SPOTDB_USER_FULL_NAME,
                                 "pw"), db);
    /* put created_at in the past, so the trigger's updated_at is after it */
    snprintf(sql, sizeof sql, "UPDATE users SET created_at = "
             "'2020-01-01 00:00:00' WHERE id = '%s'", u->id);
    th_exec(c, sql);
    ASSERT_OK(spotdb_user_get(&prev, db, u->id), db);
    ck_assert_int_eq(prev->created_at, US_2020);
    hash_before = raw_hash(c, u->id);
    sleep_ms(20);

    /* full_name only */
    {
        spotdb_user in = { .full_name = "New Näme",
                           .email = "ignored@example.com",
                           .username = "ignored", .role = "admin" };

        ASSERT_OK(spotdb_user_update(&out, db, u->id, &in,
                                     SPOTDB_USER_FULL_NAME), db);
        ck_assert_str_eq(out->full_name, "New Näme");
        ck_assert_str_eq(out->id, prev->id);
        ck_assert_str_eq(out->email, prev->email);
        ck_assert_str_eq(out->username, prev->username);
        ck_assert_str_eq(out->role, prev->role);
        ck_assert_int_eq(out->is_active, prev->is_active);
        ck_assert_int_eq(out->created_at, prev->created_at);
        ck_assert(out->nulls & SPOTDB_USER_LAST_LOGIN);
        ck_assert_int_gt(out->updated_at, prev->updated_at);
        ck_assert_int_gt(out->updated_at, out->created_at);
        ck_assert_int_eq(raw_us(c, u->id, "updated_at"), out->updated_at);
        hash_after = raw_hash(c, u->id);
        ck_assert_str_eq(hash_after, hash_before);
        free(hash_after);
        assert_reads_back(db, out);
        spotdb_user_free(prev);
        prev = out;
        out = NULL;
    }
    sleep_ms(20);
    /* role and is_active; full_name stays */
    {
        spotdb_user in = { .role = "lab", .is_active = false,
                           .full_name = "not written" };

        ASSERT_OK(spotdb_user_update(&out, db, u->id, &in,
                                     SPOTDB_USER_ROLE | SPOTDB_USER_IS_ACTIVE),
                  db);
        ck_assert_str_eq(out->role, "lab");
        ck_assert(!out->is_active);
        ck_assert_str_eq(out->full_name, "New Näme");
        ck_assert_str_eq(out->email, prev->email);
        ck_assert_int_eq(out->created_at, prev->created_at);
        ck_assert_int_gt(out->updated_at, prev->updated_at);
        spotdb_user_free(prev);
        prev = out;
        out = NULL;
    }
    /* email and username, without asking for the row back */
    {
        spotdb_user in = { .email = "up2@example.com", .username = "up2" };
        char *v;

        ASSERT_OK(spotdb_user_update(NULL, db, u->id, &in,
                                     SPOTDB_USER_EMAIL | SPOTDB_USER_USERNAME),
                  db);
        v = raw_col(c, u->id, "email || '/' || username || '/' || role || "
                    "'/' || full_name");
        ck_assert_str_eq(v, "up2@example.com/up2/lab/New Näme");
        free(v);
    }
    /* full_name to NULL: by NULL pointer, then by the nulls bit */
    {
        spotdb_user in = { .full_name = NULL };

        ASSERT_OK(spotdb_user_update(&out, db, u->id, &in,
                                     SPOTDB_USER_FULL_NAME), db);
        ck_assert_ptr_null(out->full_name);
        ck_assert(out->nulls & SPOTDB_USER_FULL_NAME);
        spotdb_user_free(out);
        out = NULL;
        in.full_name = "back";
        ASSERT_OK(spotdb_user_update(&out, db, u->id, &in,
                                     SPOTDB_USER_FULL_NAME), db);
        ck_assert_str_eq(out->full_name, "back");
        ck_assert_uint_eq(out->nulls & SPOTDB_USER_FULL_NAME, 0);
        spotdb_user_free(out);
        out = NULL;
        in.nulls = SPOTDB_USER_FULL_NAME;
        ASSERT_OK(spotdb_user_update(&out, db, u->id, &in,
                                     SPOTDB_USER_FULL_NAME), db);
        ck_assert_ptr_null(out->full_name);
        ck_assert(out->nulls & SPOTDB_USER_FULL_NAME);
        spotdb_user_free(out);
        out = NULL;
        hash_after = raw_col(c, u->id, "(full_name IS NULL)::text");
        ck_assert_str_eq(hash_after, "true");
        free(hash_after);
    }
    /* timestamps written explicitly, and 'infinity' read back */
    {
        spotdb_user in = { .created_at = US_2000, .last_login = US_2020 };

        ASSERT_OK(spotdb_user_update(&out, db, u->id, &in,
                                     SPOTDB_USER_CREATED_AT |
                                     SPOTDB_USER_LAST_LOGIN), db);
        ck_assert_int_eq(out->created_at, US_2000);
        ck_assert_uint_eq(out->nulls & SPOTDB_USER_LAST_LOGIN, 0);
        ck_assert_int_eq(out->last_login, US_2020);
        ck_assert_int_eq(raw_us(c, u->id, "created_at"), US_2000);
        ck_assert_int_eq(raw_us(c, u->id, "last_login"), US_2020);
        spotdb_user_free(out);
        out = NULL;
        snprintf(sql, sizeof sql, "UPDATE users SET last_login = 'infinity' "
                 "WHERE id = '%s'", u->id);
        th_exec(c, sql);
        ASSERT_OK(spotdb_user_get(&out, db, u->id), db);
        ck_assert_int_eq(out->last_login, INT64_MAX);
        spotdb_user_free(out);
    }
    free(hash_before);
    spotdb_user_free(prev);
    spotdb_user_free(u);
    PQfinish(c);
    spotdb_close(db);
}
END_TEST

START_TEST(update_rejections_leave_the_row_alone)
{
    spotdb_db *db = th_open();
    PGconn *c = raw_conn();
    spotdb_user *u = make_user(db, "keep@example.com", "keep", "pw");
    spotdb_user *out = SENTINEL, *after = NULL;
    spotdb_user in = { .id = "00000000-0000-4000-8000-000000000000",
                       .email = "e@example.com", .username = "e",
                       .full_name = "F", .role = "admin",
                       .updated_at = US_2020 };
    char *long_name = repeat("n", 101, NULL);

    ASSERT_FAILS(spotdb_user_update(&out, db, u->id, &in, 0), SPOTDB_EINVAL,
                 db, NULL, NULL);
    ck_assert_ptr_null(out);
    out = SENTINEL;
    ASSERT_FAILS(spotdb_user_update(&out, db, u->id, &in, SPOTDB_USER_ID),
                 SPOTDB_EINVAL, db, NULL, NULL);
    ck_assert_ptr_null(out);
    ASSERT_FAILS(spotdb_user_update(&out, db, u->id, &in,
                                    SPOTDB_USER_ID | SPOTDB_USER_FULL_NAME),
                 SPOTDB_EINVAL, db, NULL, NULL);
    ASSERT_FAILS(spotdb_user_update(&out, db, u->id, &in,
                                    SPOTDB_USER_UPDATED_AT),
                 SPOTDB_EINVAL, db, NULL, NULL);
    ASSERT_FAILS(spotdb_user_update(&out, db, u->id, &in,
                                    SPOTDB_USER_UPDATED_AT |
                                    SPOTDB_USER_ROLE),
                 SPOTDB_EINVAL, db, NULL, NULL);
    /* unknown and malformed ids */
    out = SENTINEL;
    ASSERT_FAILS(spotdb_user_update(&out, db,
                                    "00000000-0000-4000-8000-000000000000",
                                    &in, SPOTDB_USER_FULL_NAME),
                 SPOTDB_ENOTFOUND, db, NULL, NULL);
    ck_assert_ptr_null(out);
    ASSERT_FAILS(spotdb_user_update(NULL, db, "nope", &in,
                                    SPOTDB_USER_FULL_NAME),
                 SPOTDB_EINVAL, db, NULL, NULL);
    /* the create rules hold for update */
    {
        spotdb_user bad = { .role = "root", .username = "a@b",
                            .email = "plain", .full_name = long_name };

        ASSERT_FAILS(spotdb_user_update(NULL, db, u->id, &bad,
                                        SPOTDB_USER_ROLE),
                     SPOTDB_EINVAL, db, "role", NULL);
        ASSERT_FAILS(spotdb_user_update(NULL, db, u->id, &bad,
                                        SPOTDB_USER_USERNAME),
                     SPOTDB_EINVAL, db, "username", NULL);
        ASSERT_FAILS(spotdb_user_update(NULL, db, u->id, &bad,
                                        SPOTDB_USER_EMAIL),
                     SPOTDB_EINVAL, db, "email", NULL);
        ASSERT_FAILS(spotdb_user_update(NULL, db, u->id, &bad,
                                        SPOTDB_USER_FULL_NAME),
                     SPOTDB_EINVAL, db, "full_name", NULL);
        bad.email = NULL;
        ASSERT_FAILS(spotdb_user_update(NULL, db, u->id, &bad,
                                        SPOTDB_USER_EMAIL),
                     SPOTDB_EINVAL, db, "email", NULL);
    }
    ASSERT_OK(spotdb_user_get(&after, db, u->id), db);
    assert_user_eq(after, u);
    ck_assert_int_eq(raw_us(c, u->id, "updated_at"), u->updated_at);
    ck_assert_int_eq(th_count(c, "SELECT count(*) FROM users WHERE id = "
                     "'00000000-0000-4000-8000-000000000000'"), 0);
    spotdb_user_free(after);
    spotdb_user_free(u);
    free(long_name);
    PQfinish(c);
    spotdb_close(db);
}
END_TEST

/* ---- delete ------------------------------------------------------------- */

/* An account, an instance and `nlogs` logs owned by user `uid`; returns
 * the account's id (malloc'd). */
static char *raw_owned_tree(PGconn *c, const char *uid, const char *aws,
                            const char *ec2, int nlogs)
{
    char sql[512], *acc, *inst;

    snprintf(sql, sizeof sql, "INSERT INTO accounts (user_id, account_id, "
             "account_name, role_arn, external_id) VALUES ('%s', '%s', 'acc',"
             " 'arn:aws:iam::%s:role/x', 'ext-1') RETURNING id", uid, aws,
             aws);
    acc = th_scalar(c, sql);
    ck_assert_ptr_nonnull(acc);
    snprintf(sql, sizeof sql, "INSERT INTO instances (account_id, "
             "instance_id, instance_type, availability_zone) VALUES ('%s', "
             "'%s', 'c5.large', 'ap-south-1a') RETURNING id", acc, ec2);
    inst = th_scalar(c, sql);
    ck_assert_ptr_nonnull(inst);
    for (int i = 0; i < nlogs; i++) {
        snprintf(sql, sizeof sql, "INSERT INTO experiment_logs (instance_id, "
                 "decision) VALUES ('%s', 'STAY')", inst);
        th_exec(c, sql);
    }
    free(inst);
    return acc;
}

static long owned_count(PGconn *c, const char *table, const char *uid)
{
    char sql[512];

    if (strcmp(table, "accounts") == 0)
        snprintf(sql, sizeof sql, "SELECT count(*) FROM accounts "
                 "WHERE user_id = '%s'", uid);
    else if (strcmp(table, "instances") == 0)
        snprintf(sql, sizeof sql, "SELECT count(*) FROM instances i JOIN "
                 "accounts a ON a.id = i.account_id WHERE a.user_id = '%s'",
                 uid);
    else
        snprintf(sql, sizeof sql, "SELECT count(*) FROM experiment_logs e "
                 "JOIN instances i ON i.id = e.instance_id JOIN accounts a "
                 "ON a.id = i.account_id WHERE a.user_id = '%s'", uid);
    return th_count(c, sql);
}

START_TEST(delete_missing_and_simple)
{
    spotdb_db *db = th_open();
    PGconn *c = raw_conn();
    spotdb_user *u = make_user(db, "del@example.com", "del", "pw");
    spotdb_user *out = SENTINEL;
    long before = users_count(c);

    ASSERT_FAILS(spotdb_user_delete(db,
                                    "00000000-0000-4000-8000-000000000000"),
                 SPOTDB_ENOTFOUND, db, NULL, NULL);
    ASSERT_FAILS(spotdb_user_delete(db, "zzz"), SPOTDB_EINVAL, db, NULL,
                 NULL);
    ck_assert_int_eq(users_count(c), before);
    ASSERT_OK(spotdb_user_delete(db, u->id), db);
    ck_assert_int_eq(users_count(c), before - 1);
    ASSERT_FAILS(spotdb_user_get(&out, db, u->id), SPOTDB_ENOTFOUND, db,
                 NULL, NULL);
    ck_assert_ptr_null(out);
    ASSERT_FAILS(spotdb_user_delete(db, u->id), SPOTDB_ENOTFOUND, db, NULL,
                 NULL);
    spotdb_user_free(u);
    PQfinish(c);
    spotdb_close(db);
}
END_TEST

START_TEST(delete_cascades_to_accounts_instances_logs)
{
    spotdb_db *db = th_open();
    PGconn *c = raw_conn();
    spotdb_user *u = make_user(db, "owner@example.com", "owner", "pw");
    spotdb_user *v = make_user(db, "bystander@example.com", "bystander",
                               "pw");
    char *a1 = raw_owned_tree(c, u->id, "123456789012",
                              "i-0123456789abcdef0", 3);
    char *a2 = raw_owned_tree(c, v->id, "210987654321",
                              "i-0fedcba9876543210", 2);

    ck_assert_int_eq(owned_count(c, "accounts", u->id), 1);
    ck_assert_int_eq(owned_count(c, "instances", u->id), 1);
    ck_assert_int_eq(owned_count(c, "experiment_logs", u->id), 3);
    ASSERT_OK(spotdb_user_delete(db, u->id), db);
    ck_assert_int_eq(owned_count(c, "accounts", u->id), 0);
    ck_assert_int_eq(owned_count(c, "instances", u->id), 0);
    ck_assert_int_eq(owned_count(c, "experiment_logs", u->id), 0);
    ck_assert_int_eq(th_count(c, "SELECT count(*) FROM accounts"), 1);
    ck_assert_int_eq(th_count(c, "SELECT count(*) FROM instances"), 1);
    ck_assert_int_eq(th_count(c, "SELECT count(*) FROM experiment_logs"), 2);
    ck_assert_int_eq(owned_count(c, "experiment_logs", v->id), 2);
    ck_assert_int_eq(th_count(c, "SELECT count(*) FROM users WHERE "
                     "username IN ('owner', 'bystander')"), 1);
    free(a1);
    free(a2);
    spotdb_user_free(u);
    spotdb_user_free(v);
    PQfinish(c);
    spotdb_close(db);
}
END_TEST

START_TEST(delete_of_model_creator_is_ereference)
{
    spotdb_db *db = th_open();
    PGconn *c = raw_conn();
    spotdb_user *u = make_user(db, "author@example.com", "author", "pw");
    spotdb_user *got = NULL;
    char sql[512], *acc;
    long before;

    acc = raw_owned_tree(c, u->id, "123456789012", "i-0123456789abcdef0", 1);
    snprintf(sql, sizeof sql, "INSERT INTO model_registry (name, version, "
             "created_by) VALUES ('FamilyStressPredictor', 'v2.1.0', '%s')",
             u->id);
    th_exec(c, sql);
    before = users_count(c);
    ASSERT_FAILS(spotdb_user_delete(db, u->id), SPOTDB_EREFERENCE, db, NULL,
                 NULL);
    ck_assert_str_eq(spotdb_sqlstate(db), "23503");
    ck_assert_int_eq(users_count(c), before);
    /* nothing of the cascade happened either */
    ck_assert_int_eq(owned_count(c, "accounts", u->id), 1);
    ck_assert_int_eq(owned_count(c, "experiment_logs", u->id), 1);
    ASSERT_OK(spotdb_user_get(&got, db, u->id), db);
    assert_user_eq(got, u);
    spotdb_user_free(got);

    /* once the model no longer names it, it goes */
    th_exec(c, "UPDATE model_registry SET created_by = NULL");
    ASSERT_OK(spotdb_user_delete(db, u->id), db);
    ck_assert_int_eq(users_count(c), before - 1);
    ck_assert_int_eq(th_count(c, "SELECT count(*) FROM model_registry"), 1);
    free(acc);
    spotdb_user_free(u);
    PQfinish(c);
    spotdb_close(db);
}
END_TEST

/* ---- list and count ----------------------------------------------------- */

static int find_id(char ids[][SPOTDB_UUID_SIZE], int n, const char *id)
{
    for (int i = 0; i < n; i++)
        if (strcmp(ids[i], id) == 0)
            return i;
    return -1;
}

/* (created_at, id) strictly increasing from a to b. */
static void assert_ordered(const spotdb_user *a, const spotdb_user *b)
{
    ck_assert_msg(a->created_at < b->created_at ||
                  (a->created_at == b->created_at &&
                   strcmp(a->id, b->id) < 0),
                  "order: (%lld, %s) before (%lld, %s)",
                  (long long)a->created_at, a->id,
                  (long long)b->created_at, b->id);
}

START_TEST(list_pages_every_user_once_in_order)
{
    spotdb_db *db = th_open();
    PGconn *c = raw_conn();
    char ids[64][SPOTDB_UUID_SIZE], seen_ids[64][SPOTDB_UUID_SIZE];
    int n = 0, seen = 0, pages = 0;
    char *cursor = NULL;
    spotdb_user_rows *all = NULL;
    spotdb_user *admin = NULL;

    ASSERT_OK(spotdb_user_get_by_username(&admin, db, "admin"), db);
    snprintf(ids[n++], SPOTDB_UUID_SIZE, "%s", admin->id);
    spotdb_user_free(admin);
    for (int i = 0; i < 24; i++) {
        char email[64], name[32];
        spotdb_user *u;

        snprintf(email, sizeof email, "page%02d@example.com", i);
        snprintf(name, sizeof name, "page%02d", i);
        u = make_user(db, email, name, "pw");
        snprintf(ids[n++], SPOTDB_UUID_SIZE, "%s", u->id);
        spotdb_user_free(u);
    }
    ck_assert_int_eq(users_count(c), 25);

    for (;;) {
        spotdb_user_rows *p = NULL;

        ASSERT_OK(spotdb_user_list(&p, db, NULL, cursor, 7), db);
        ck_assert_ptr_nonnull(p);
        ck_assert_uint_le(p->count, 7);
        for (size_t i = 0; i < p->count; i++) {
            ck_assert_msg(find_id(seen_ids, seen, p->items[i].id) < 0,
                          "user %s listed twice", p->items[i].id);
            ck_assert_int_ge(find_id(ids, n, p->items[i].id), 0);
            ck_assert_ptr_nonnull(p->items[i].email);
            ck_assert_ptr_nonnull(p->items[i].role);
            snprintf(seen_ids[seen++], SPOTDB_UUID_SIZE, "%s",
                     p->items[i].id);
            if (i > 0)
                assert_ordered(&p->items[i - 1], &p->items[i]);
        }
        free(cursor);
        cursor = p->next_cursor ? strdup(p->next_cursor) : NULL;
        if (p->next_cursor)
            ck_assert_uint_eq(p->count, 7);
        spotdb_user_rows_free(p);
        ck_assert_int_lt(++pages, 10);
        if (!cursor)
            break;
    }
    ck_assert_int_eq(seen, 25);
    ck_assert_int_ge(pages, 4);

    /* one big page: same order as the pages, admin (seeded first) first */
    ASSERT_OK(spotdb_user_list(&all, db, NULL, NULL, 0), db);
    ck_assert_uint_eq(all->count, 25);
    ck_assert_ptr_null(all->next_cursor);
    ck_assert_str_eq(all->items[0].username, "admin");
    for (size_t i = 0; i < all->count; i++) {
        ck_assert_str_eq(all->items[i].id, seen_ids[i]);
        if (i > 0)
            assert_ordered(&all->items[i - 1], &all->items[i]);
    }
    spotdb_user_rows_free(all);
    PQfinish(c);
    spotdb_close(db);
}
END_TEST

START_TEST(list_is_stable_while_rows_are_inserted)
{
    spotdb_db *db = th_open();
    spotdb_db *other = th_open();
    PGconn *c = raw_conn();
    char ids[32][SPOTDB_UUID_SIZE], seen_ids[128][SPOTDB_UUID_SIZE];
    int n = 0, seen = 0, pages = 0, added = 0;
    char *cursor = NULL;
    spotdb_user *admin = NULL;

    ASSERT_OK(spotdb_user_get_by_username(&admin, db, "admin"), db);
    snprintf(ids[n++], SPOTDB_UUID_SIZE, "%s", admin->id);
    spotdb_user_free(admin);
    for (int i = 0; i < 20; i++) {
        char email[64], name[32];
        spotdb_user *u;

        snprintf(email, sizeof email, "pre%02d@example.com", i);
        snprintf(name, sizeof name, "pre%02d", i);
        u = make_user(db, email, name, "pw");
        snprintf(ids[n++], SPOTDB_UUID_SIZE, "%s", u->id);
        spotdb_user_free(u);
    }

    for (;;) {
        spotdb_user_rows *p = NULL;

        ASSERT_OK(spotdb_user_list(&p, db, NULL, cursor, 7), db);
        for (size_t i = 0; i < p->count; i++) {
            ck_assert_msg(find_id(seen_ids, seen, p->items[i].id) < 0,
                          "user %s listed twice", p->items[i].id);
            ck_assert_int_lt(seen, 128);
            snprintf(seen_ids[seen++], SPOTDB_UUID_SIZE, "%s",
                     p->items[i].id);
        }
        free(cursor);
        cursor = p->next_cursor ? strdup(p->next_cursor) : NULL;
        spotdb_user_rows_free(p);
        ck_assert_int_lt(++pages, 20);
        if (!cursor)
            break;
        /* between pages, through another handle: two rows sorted before
         * everything (created in the past), one after everything */
        for (int k = 0; k < 3; k++) {
            char email[64], name[32];
            spotdb_user in = { .created_at = US_2000 + added }, *u = NULL;
            uint64_t f = SPOTDB_USER_EMAIL | SPOTDB_USER_USERNAME;

            snprintf(email, sizeof email, "mid%02d@example.com", added);
            snprintf(name, sizeof name, "mid%02d", added);
            in.email = email;
            in.username = name;
            if (k < 2)
                f |= SPOTDB_USER_CREATED_AT;
            ASSERT_OK(spotdb_user_create(&u, other, &in, f, "pw"), other);
            spotdb_user_free(u);
            added++;
        }
    }
    for (int i = 0; i < n; i++)
        ck_assert_msg(find_id(seen_ids, seen, ids[i]) >= 0,
                      "user %s, there before paging, never listed", ids[i]);
    ck_assert_int_eq(users_count(c), n + added);
    ck_assert_int_le(seen, n + added);
    free(cursor);
    PQfinish(c);
    spotdb_close(other);
    spotdb_close(db);
}
END_TEST

/* Rows sharing a created_at are told apart by id; 'infinity' and
 * '-infinity' sort last and first and page like any value. */
START_TEST(list_pages_through_ties_and_infinities)
{
    spotdb_db *db = th_open();
    PGconn *c = raw_conn();
    spotdb_user *tie[6];
    spotdb_user_rows *all = NULL;
    char sql[256], ids[16][SPOTDB_UUID_SIZE], *cursor = NULL;
    int seen = 0, pages = 0;

    for (int i = 0; i < 6; i++) {
        char email[64], name[32];
        spotdb_user in = { .created_at = US_2020 };

        snprintf(email, sizeof email, "tie%d@example.com", i);
        snprintf(name, sizeof name, "tie%d", i);
        in.email = email;
        in.username = name;
        tie[i] = NULL;
        ASSERT_OK(spotdb_user_create(&tie[i], db, &in, SPOTDB_USER_EMAIL |
                                     SPOTDB_USER_USERNAME |
                                     SPOTDB_USER_CREATED_AT, "pw"), db);
    }
    snprintf(sql, sizeof sql, "UPDATE users SET created_at = 'infinity' "
             "WHERE id = '%s'", tie[4]->id);
    th_exec(c, sql);
    snprintf(sql, sizeof sql, "UPDATE users SET created_at = '-infinity' "
             "WHERE id = '%s'", tie[5]->id);
    th_exec(c, sql);

    for (;;) {
        spotdb_user_rows *p = NULL;

        ASSERT_OK(spotdb_user_list(&p, db, NULL, cursor, 2), db);
        for (size_t i = 0; i < p->count; i++) {
            ck_assert_msg(find_id(ids, seen, p->items[i].id) < 0,
                          "user %s listed twice", p->items[i].id);
            ck_assert_int_lt(seen, 16);
            snprintf(ids[seen++], SPOTDB_UUID_SIZE, "%s", p->items[i].id);
        }
        free(cursor);
        cursor = p->next_cursor ? strdup(p->next_cursor) : NULL;
        spotdb_user_rows_free(p);
        ck_assert_int_lt(++pages, 10);
        if (!cursor)
            break;
    }
    ck_assert_int_eq(seen, 7);                  /* six and the admin */
    ASSERT_OK(spotdb_user_list(&all, db, NULL, NULL, 0), db);
    ck_assert_uint_eq(all->count, 7);
    ck_assert_str_eq(all->items[0].id, tie[5]->id);
    ck_assert_int_eq(all->items[0].created_at, INT64_MIN);
    ck_assert_str_eq(all->items[6].id, tie[4]->id);
    ck_assert_int_eq(all->items[6].created_at, INT64_MAX);
    for (int i = 1; i <= 4; i++)
        ck_assert_int_eq(all->items[i].created_at, US_2020);
    ck_assert_str_eq(all->items[5].username, "admin");
    for (size_t i = 0; i < all->count; i++) {
        ck_assert_str_eq(all->items[i].id, ids[i]);
        if (i > 0)
            assert_ordered(&all->items[i - 1], &all->items[i]);
    }
    spotdb_user_rows_free(all);
    for (int i = 0; i < 6; i++)
        spotdb_user_free(tie[i]);
    PQfinish(c);
    spotdb_close(db);
}
END_TEST

START_TEST(list_bad_arguments)
{
    spotdb_db *db = th_open();
    spotdb_user_rows *p = (spotdb_user_rows *)SENTINEL;
    spotdb_user_filter f = SPOTDB_USER_FILTER_INIT;

    ASSERT_FAILS(spotdb_user_list(&p, db, NULL, "not-a-cursor", 7),
                 SPOTDB_EINVAL, db, NULL, NULL);
    ck_assert_ptr_null(p);
    p = (spotdb_user_rows *)SENTINEL;
    ASSERT_FAILS(spotdb_user_list(&p, db, NULL, "%%%%\x01", 7),
                 SPOTDB_EINVAL, db, NULL, NULL);
    ck_assert_ptr_null(p);
    p = (spotdb_user_rows *)SENTINEL;
    ASSERT_FAILS(spotdb_user_list(&p, db, NULL, NULL, SPOTDB_MAX_LIMIT + 1),
                 SPOTDB_EINVAL, db, NULL, NULL);
    ck_assert_ptr_null(p);
    ASSERT_FAILS(spotdb_user_list(&p, db, NULL, NULL, -1), SPOTDB_EINVAL, db,
                 NULL, NULL);
    ASSERT_FAILS(spotdb_user_list(&p, db, NULL, NULL, INT32_MIN),
                 SPOTDB_EINVAL, db, NULL, NULL);
    f.version = 0;
    ASSERT_FAILS(spotdb_user_list(&p, db, &f, NULL, 0), SPOTDB_EINVAL, db,
                 NULL, NULL);
    f.version = 99;
    ASSERT_FAILS(spotdb_user_count(&(int64_t){ 0 }, db, &f), SPOTDB_EINVAL,
                 db, NULL, NULL);
    p = NULL;
    ASSERT_OK(spotdb_user_list(&p, db, NULL, NULL, SPOTDB_MAX_LIMIT), db);
    ck_assert_uint_eq(p->count, 1);
    spotdb_user_rows_free(p);
    /* a cursor of one page works on a second call, and the last page of a
     * small table has no cursor */
    p = NULL;
    ASSERT_OK(spotdb_user_list(&p, db, NULL, NULL, 0), db);
    ck_assert_uint_eq(p->count, 1);
    ck_assert_ptr_null(p->next_cursor);
    spotdb_user_rows_free(p);
    spotdb_close(db);
}
END_TEST

static long list_all(spotdb_db *db, const spotdb_user_filter *f,
                     const char *role, int active)
{
    char *cursor = NULL;
    long total = 0;

    for (int guard = 0; guard < 20; guard++) {
        spotdb_user_rows *p = NULL;

        ASSERT_OK(spotdb_user_list(&p, db, f, cursor, 3), db);
        for (size_t i = 0; i < p->count; i++) {
            if (role)
                ck_assert_str_eq(p->items[i].role, role);
            if (active >= 0)
                ck_assert_int_eq(p->items[i].is_active, active);
        }
        total += (long)p->count;
        free(cursor);
        cursor = p->next_cursor ? strdup(p->next_cursor) : NULL;
        spotdb_user_rows_free(p);
        if (!cursor)
            return total;
    }
    ck_abort_msg("paging did not end");
    return -1;
}

START_TEST(list_and_count_filter_role_and_active)
{
    spotdb_db *db = th_open();
    PGconn *c = raw_conn();
    static const struct { const char *role; bool active; int n; } mix[] = {
        { "lab", true, 3 }, { "lab", false, 2 }, { "user", true, 4 },
        { "user", false, 1 }, { "admin", false, 1 },
    };
    int k = 0;
    bool yes = true, no = false;
    static const char *const roles[] = { "admin", "user", "lab" };

    for (size_t m = 0; m < sizeof mix / sizeof mix[0]; m++)
        for (int i = 0; i < mix[m].n; i++, k++) {
            char email[64], name[32];
            spotdb_user in = { .role = mix[m].role,
                               .is_active = mix[m].active }, *u = NULL;

            snprintf(email, sizeof email, "f%02d@example.com", k);
            snprintf(name, sizeof name, "f%02d", k);
            in.email = email;
            in.username = name;
            ASSERT_OK(spotdb_user_create(&u, db, &in, SPOTDB_USER_EMAIL |
                                         SPOTDB_USER_USERNAME |
                                         SPOTDB_USER_ROLE |
                                         SPOTDB_USER_IS_ACTIVE, "pw"), db);
            spotdb_user_free(u);
        }
    /* plus the seeded admin, active */
    for (int r = 0; r < 3; r++)
        for (int a = -1; a <= 1; a++) {
            spotdb_user_filter f = SPOTDB_USER_FILTER_INIT;
            int64_t n = -1;
            char sql[256];
            long want;

            f.role = roles[r];
            f.is_active = a < 0 ? NULL : (a ? &yes : &no);
            snprintf(sql, sizeof sql, "SELECT count(*) FROM users WHERE "
                     "role = '%s'%s", roles[r],
                     a < 0 ? "" : (a ? " AND is_active" : " AND NOT is_active"));
            want = th_count(c, sql);
            ASSERT_OK(spotdb_user_count(&n, db, &f), db);
            ck_assert_int_eq(n, want);
            ck_assert_int_eq(list_all(db, &f, roles[r], a), want);
        }
    {
        spotdb_user_filter f = SPOTDB_USER_FILTER_INIT;
        int64_t n = -1;

        ASSERT_OK(spotdb_user_count(&n, db, NULL), db);
        ck_assert_int_eq(n, 12);
        ASSERT_OK(spotdb_user_count(&n, db, &f), db);
        ck_assert_int_eq(n, 12);
        ck_assert_int_eq(list_all(db, &f, NULL, -1), 12);
        f.is_active = &no;
        ASSERT_OK(spotdb_user_count(&n, db, &f), db);
        ck_assert_int_eq(n, 4);
        ck_assert_int_eq(list_all(db, &f, NULL, 0), 4);
        f.is_active = &yes;
        ASSERT_OK(spotdb_user_count(&n, db, &f), db);
        ck_assert_int_eq(n, 8);
        f.role = "lab";
        ASSERT_OK(spotdb_user_count(&n, db, &f), db);
        ck_assert_int_eq(n, 3);
        f.role = "admin";
        ASSERT_OK(spotdb_user_count(&n, db, &f), db);
        ck_assert_int_eq(n, 1);
    }
    PQfinish(c);
    spotdb_close(db);
}
END_TEST

/* ---- authenticate ------------------------------------------------------- */

START_TEST(authenticate_seeded_admin)
{
    spotdb_db *db = th_open();
    PGconn *c = raw_conn();
    spotdb_user *u = NULL, *admin = NULL;
    int64_t now;
    char *h;

    /* the seed hash is cost 12: not weaker than the floor, never
     * re-hashed */
    spotdb__bcrypt_cost = 12;
    ASSERT_OK(spotdb_user_get_by_username(&admin, db, "admin"), db);
    ck_assert(admin->nulls & SPOTDB_USER_LAST_LOGIN);
    h = raw_hash(c, admin->id);
    ck_assert_str_eq(h, ADMIN_SEED_HASH);
    free(h);

    now = spotdb_now_us();
    ASSERT_OK(spotdb_user_authenticate(&u, db, "admin", "admin"), db);
    ck_assert_ptr_nonnull(u);
    ck_assert_str_eq(u->id, admin->id);
    ck_assert_str_eq(u->username, "admin");
    ck_assert_str_eq(u->email, ADMIN_EMAIL);
    ck_assert_str_eq(u->role, "admin");
    ck_assert_str_eq(u->full_name, "System Administrator");
    ck_assert_uint_eq(u->nulls & SPOTDB_USER_LAST_LOGIN, 0);
    ck_assert_int_lt(llabs(u->last_login - now), NOW_SLACK_US);
    ck_assert_int_eq(raw_us(c, u->id, "last_login"), u->last_login);
    h = raw_hash(c, admin->id);
    ck_assert_str_eq(h, ADMIN_SEED_HASH);
    free(h);
    spotdb_user_free(u);
    u = NULL;

    ASSERT_OK(spotdb_user_authenticate(&u, db, ADMIN_EMAIL, "admin"), db);
    ck_assert_str_eq(u->id, admin->id);
    ck_assert_uint_eq(u->nulls & SPOTDB_USER_LAST_LOGIN, 0);
    ck_assert_int_eq(raw_us(c, u->id, "last_login"), u->last_login);
    spotdb_user_free(u);
    spotdb_user_free(admin);
    PQfinish(c);
    spotdb_close(db);
}
END_TEST

START_TEST(authenticate_by_username_and_email)
{
    spotdb_db *db = th_open();
    PGconn *c = raw_conn();
    spotdb_user *bob = make_user(db, "bob@example.com", "bob", "b0b-pass");
    spotdb_user *u = NULL;
    int64_t first;

    ck_assert(bob->nulls & SPOTDB_USER_LAST_LOGIN);
    ASSERT_OK(spotdb_user_authenticate(&u, db, "bob", "b0b-pass"), db);
    ck_assert_str_eq(u->id, bob->id);
    ck_assert_uint_eq(u->nulls & SPOTDB_USER_LAST_LOGIN, 0);
    ck_assert_int_lt(llabs(u->last_login - spotdb_now_us()), NOW_SLACK_US);
    ck_assert_int_eq(raw_us(c, bob->id, "last_login"), u->last_login);
    first = u->last_login;
    spotdb_user_free(u);
    u = NULL;
    sleep_ms(20);
    ASSERT_OK(spotdb_user_authenticate(&u, db, "bob@example.com",
                                       "b0b-pass"), db);
    ck_assert_str_eq(u->id, bob->id);
    ck_assert_int_gt(u->last_login, first);
    ck_assert_int_eq(raw_us(c, bob->id, "last_login"), u->last_login);
    spotdb_user_free(u);
    spotdb_user_free(bob);
    PQfinish(c);
    spotdb_close(db);
}
END_TEST

START_TEST(authenticate_failures_look_alike)
{
    spotdb_db *db = th_open();
    PGconn *c = raw_conn();
    spotdb_user *bob = make_user(db, "bob@example.com", "bob", "b0b-pass");
    spotdb_user *eve = make_user(db, "eve@example.com", "eve", "eve-pass");
    spotdb_user *u = SENTINEL;
    spotdb_user off = { .is_active = false };
    char wrong[SPOTDB__ERRMSG_MAX], *v;

    ASSERT_OK(spotdb_user_update(NULL, db, eve->id, &off,
                                 SPOTDB_USER_IS_ACTIVE), db);
    ASSERT_FAILS(spotdb_user_authenticate(&u, db, "bob", "not-b0b"),
                 SPOTDB_EAUTH, db, NULL, "not-b0b");
    ck_assert_ptr_null(u);
    snprintf(wrong, sizeof wrong, "%s", spotdb_errmsg(db));
    ck_assert(strstr(wrong, "bob") == NULL);

    u = SENTINEL;
    ASSERT_FAILS(spotdb_user_authenticate(&u, db, "bob@example.com", "nope"),
                 SPOTDB_EAUTH, db, NULL, "nope");
    ck_assert_ptr_null(u);
    ck_assert_str_eq(spotdb_errmsg(db), wrong);
    u = SENTINEL;
    ASSERT_FAILS(spotdb_user_authenticate(&u, db, "mallory", "b0b-pass"),
                 SPOTDB_EAUTH, db, NULL, "b0b-pass");
    ck_assert_ptr_null(u);
    ck_assert_str_eq(spotdb_errmsg(db), wrong);
    ASSERT_FAILS(spotdb_user_authenticate(&u, db, "mallory@example.com",
                                          "b0b-pass"),
                 SPOTDB_EAUTH, db, NULL, "b0b-pass");
    ck_assert_str_eq(spotdb_errmsg(db), wrong);
    /* an inactive user with the right password */
    u = SENTINEL;
    ASSERT_FAILS(spotdb_user_authenticate(&u, db, "eve", "eve-pass"),
                 SPOTDB_EAUTH, db, NULL, "eve-pass");
    ck_assert_ptr_null(u);
    ck_assert_str_eq(spotdb_errmsg(db), wrong);
    ASSERT_FAILS(spotdb_user_authenticate(&u, db, "eve@example.com",
                                          "eve-pass"),
                 SPOTDB_EAUTH, db, NULL, "eve-pass");
    ck_assert_str_eq(spotdb_errmsg(db), wrong);
    /* logins that are not names at all are just unknown */
    ASSERT_FAILS(spotdb_user_authenticate(&u, db, "' OR '1'='1", "x"),
                 SPOTDB_EAUTH, db, NULL, NULL);
    ck_assert_str_eq(spotdb_errmsg(db), wrong);
    ASSERT_FAILS(spotdb_user_authenticate(&u, db, "BOB", "b0b-pass"),
                 SPOTDB_EAUTH, db, NULL, NULL);
    ck_assert_str_eq(spotdb_errmsg(db), wrong);

    /* no failure logged anybody in */
    v = th_scalar(c, "SELECT count(*) FROM users WHERE last_login IS NOT "
                     "NULL");
    ck_assert_str_eq(v, "0");
    free(v);

    /* rule breaks are EINVAL, not EAUTH */
    {
        char *pw73 = repeat("L0ngPw", 12, "x");     /* 73 bytes */

        u = SENTINEL;
        ASSERT_FAILS(spotdb_user_authenticate(&u, db, "bob", pw73),
                     SPOTDB_EINVAL, db, "password", pw73);
        ck_assert_ptr_null(u);
        free(pw73);
    }
    ASSERT_FAILS(spotdb_user_authenticate(&u, db, "bob", ""), SPOTDB_EINVAL,
                 db, "password", NULL);
    ASSERT_FAILS(spotdb_user_authenticate(&u, db, "bob", NULL),
                 SPOTDB_EINVAL, db, "password", NULL);
    ASSERT_FAILS(spotdb_user_authenticate(&u, db, NULL, "b0b-pass"),
                 SPOTDB_EINVAL, db, NULL, "b0b-pass");

    /* and the right password still works afterwards */
    u = NULL;
    ASSERT_OK(spotdb_user_authenticate(&u, db, "bob", "b0b-pass"), db);
    spotdb_user_free(u);
    spotdb_user_free(bob);
    spotdb_user_free(eve);
    PQfinish(c);
    spotdb_close(db);
}
END_TEST

/* An unknown login pays for a bcrypt check like a wrong password does. */
START_TEST(authenticate_timing_does_not_tell_unknown_logins)
{
    spotdb_db *db = th_open();
    enum { TRIES = 5 };
    double unknown[TRIES], wrong[TRIES], mu, mw, ratio;

    spotdb__bcrypt_cost = 12;
    /* warm up the connection and the statement cache */
    spotdb_user_authenticate(&(spotdb_user *){ NULL }, db, "nobody-x", "pw");
    for (int i = 0; i < TRIES; i++) {
        struct timespec a, b;
        spotdb_user *u = SENTINEL;

        clock_gettime(CLOCK_MONOTONIC, &a);
        ck_assert_int_eq(spotdb_user_authenticate(&u, db, "nobody-here",
                                                  "admin"), SPOTDB_EAUTH);
        clock_gettime(CLOCK_MONOTONIC, &b);
        ck_assert_ptr_null(u);
        unknown[i] = elapsed_ms(&a, &b);
        clock_gettime(CLOCK_MONOTONIC, &a);
        ck_assert_int_eq(spotdb_user_authenticate(&u, db, "admin",
                                                  "wrong-password"),
                         SPOTDB_EAUTH);
        clock_gettime(CLOCK_MONOTONIC, &b);
        wrong[i] = elapsed_ms(&a, &b);
    }
    qsort(unknown, TRIES, sizeof unknown[0], cmp_double);
    qsort(wrong, TRIES, sizeof wrong[0], cmp_double);
    mu = unknown[TRIES / 2];
    mw = wrong[TRIES / 2];
    ratio = mu > mw ? mu / mw : mw / mu;
    ck_assert_msg(mu > 20.0 && mw > 20.0,
                  "medians: unknown %.1f ms, wrong password %.1f ms", mu, mw);
    ck_assert_msg(ratio < 2.0,
                  "medians differ: unknown %.1f ms, wrong password %.1f ms",
                  mu, mw);
    spotdb_close(db);
}
END_TEST

START_TEST(authenticate_rehashes_weak_hashes)
{
    spotdb_db *db = th_open();
    PGconn *c = raw_conn();
    spotdb_user *u = make_user(db, "weak@example.com", "weak", "whatever");
    spotdb_user *out = NULL;
    char *weak = make_hash("Weak-pw-1", "$2b$", 4);
    char *weak_y = make_hash("Weak-pw-1", "$2y$", 5);
    char *h, *h2;

    ck_assert(starts_with(weak, "$2b$04$"));
    ck_assert(starts_with(weak_y, "$2y$05$"));
    raw_set_hash(c, u->id, weak);
    spotdb__bcrypt_cost = 5;
    ASSERT_OK(spotdb_user_authenticate(&out, db, "weak", "Weak-pw-1"), db);
    spotdb_user_free(out);
    out = NULL;
    h = raw_hash(c, u->id);
    ck_assert_msg(starts_with(h, "$2b$05$"), "hash after login: %s", h);
    ck_assert_str_ne(h, weak);
    ck_assert(verifies("Weak-pw-1", h));
    ck_assert(!verifies("whatever", h));
    /* strong enough now: a second login leaves it */
    ASSERT_OK(spotdb_user_authenticate(&out, db, "weak@example.com",
                                       "Weak-pw-1"), db);
    spotdb_user_free(out);
    out = NULL;
    h2 = raw_hash(c, u->id);
    ck_assert_str_eq(h2, h);
    free(h2);
    free(h);

    /* a failed login never re-hashes */
    raw_set_hash(c, u->id, weak);
    ASSERT_FAILS(spotdb_user_authenticate(&out, db, "weak", "Weak-pw-2"),
                 SPOTDB_EAUTH, db, NULL, "Weak-pw-2");
    h = raw_hash(c, u->id);
    ck_assert_str_eq(h, weak);
    free(h);

    /* another bcrypt prefix, at the floor's cost, is upgraded to $2b$ */
    raw_set_hash(c, u->id, weak_y);
    ASSERT_OK(spotdb_user_authenticate(&out, db, "weak", "Weak-pw-1"), db);
    spotdb_user_free(out);
    out = NULL;
    h = raw_hash(c, u->id);
    ck_assert_msg(starts_with(h, "$2b$05$"), "hash after login: %s", h);
    ck_assert_str_ne(h, weak_y);
    ck_assert(verifies("Weak-pw-1", h));
    free(h);

    /* a hash above the floor is never downgraded */
    spotdb__bcrypt_cost = 4;
    ASSERT_OK(spotdb_user_authenticate(&out, db, "weak", "Weak-pw-1"), db);
    spotdb_user_free(out);
    h = raw_hash(c, u->id);
    ck_assert_msg(starts_with(h, "$2b$05$"), "hash after login: %s", h);
    free(h);
    free(weak);
    free(weak_y);
    spotdb_user_free(u);
    PQfinish(c);
    spotdb_close(db);
}
END_TEST

START_TEST(authenticate_garbage_hash_is_eauth)
{
    spotdb_db *db = th_open();
    PGconn *c = raw_conn();
    spotdb_user *u = make_user(db, "junk@example.com", "junk", "junk-pw");
    spotdb_user *out = SENTINEL;
    char wrong[SPOTDB__ERRMSG_MAX], *v;
    static const char *const garbage[] = {
        "garbage", "", "*0", "*1", "$2b$04$tooshort", "$2b$99$",
        "$2b$04$/ASjsC1a43P.fo6GCkzY6.51BDVO9iE8UsE9KxAzGQW5AU6lIb4y",
        NULL
    };

    ASSERT_FAILS(spotdb_user_authenticate(&out, db, "junk", "wrong"),
                 SPOTDB_EAUTH, db, NULL, NULL);
    snprintf(wrong, sizeof wrong, "%s", spotdb_errmsg(db));
    for (int i = 0; garbage[i]; i++) {
        raw_set_hash(c, u->id, garbage[i]);
        out = SENTINEL;
        ASSERT_FAILS(spotdb_user_authenticate(&out, db, "junk", "junk-pw"),
                     SPOTDB_EAUTH, db, NULL, "junk-pw");
        ck_assert_ptr_null(out);
        ck_assert_msg(strcmp(spotdb_errmsg(db), wrong) == 0,
                      "stored '%s': '%s' vs '%s'", garbage[i],
                      spotdb_errmsg(db), wrong);
        /* nor does the stored text itself, taken as a password */
        ASSERT_FAILS(spotdb_user_authenticate(&out, db, "junk",
                                              garbage[i][0] ? garbage[i]
                                                            : "x"),
                     SPOTDB_EAUTH, db, NULL, NULL);
        v = raw_hash(c, u->id);
        ck_assert_str_eq(v, garbage[i]);
        free(v);
    }
    v = raw_col(c, u->id, "(last_login IS NULL)::text");
    ck_assert_str_eq(v, "true");
    free(v);
    spotdb_user_free(u);
    PQfinish(c);
    spotdb_close(db);
}
END_TEST

/* A stored cost the library never makes, and that would take minutes to
 * days to check, is refused at the price of an ordinary failed login. */
START_TEST(authenticate_refuses_huge_stored_costs)
{
    spotdb_db *db = th_open();
    PGconn *c = raw_conn();
    spotdb_user *u = make_user(db, "slow@example.com", "slow", "slow-pw");
    spotdb_user *out = SENTINEL;
    struct timespec a, b;
    static const char *const huge[] = {
        "$2b$17$/ASjsC1a43P.fo6GCkzY6.51BDVO9iE8UsE9KxAzGQW5AU6lIb4y",
        "$2b$31$/ASjsC1a43P.fo6GCkzY6.51BDVO9iE8UsE9KxAzGQW5AU6lIb4y",
        NULL
    };

    for (int i = 0; huge[i]; i++) {
        raw_set_hash(c, u->id, huge[i]);
        clock_gettime(CLOCK_MONOTONIC, &a);
        ASSERT_FAILS(spotdb_user_authenticate(&out, db, "slow", "slow-pw"),
                     SPOTDB_EAUTH, db, NULL, "slow-pw");
        clock_gettime(CLOCK_MONOTONIC, &b);
        ck_assert_ptr_null(out);
        out = SENTINEL;
        /* cost 17 alone would take about 8 s */
        ck_assert_msg(elapsed_ms(&a, &b) < 3000.0, "cost %.2s took %.0f ms",
                      huge[i] + 4, elapsed_ms(&a, &b));
    }
    spotdb_user_free(u);
    PQfinish(c);
    spotdb_close(db);
}
END_TEST

/* ---- set_password ------------------------------------------------------- */

START_TEST(set_password_replaces_the_hash)
{
    spotdb_db *db = th_open();
    PGconn *c = raw_conn();
    spotdb_user *u = make_user(db, "sp@example.com", "sp", "Old-pass-1");
    spotdb_user *out = NULL;
    char *before = raw_hash(c, u->id), *after, *pw73;

    ASSERT_OK(spotdb_user_set_password(db, u->id, "New-pass-2"), db);
    after = raw_hash(c, u->id);
    ck_assert_str_ne(after, before);
    ck_assert_msg(starts_with(after, "$2b$04$"), "hash %s", after);
    ck_assert(verifies("New-pass-2", after));
    ck_assert(!verifies("Old-pass-1", after));
    ASSERT_FAILS(spotdb_user_authenticate(&out, db, "sp", "Old-pass-1"),
                 SPOTDB_EAUTH, db, NULL, "Old-pass-1");
    ck_assert_ptr_null(out);
    ASSERT_OK(spotdb_user_authenticate(&out, db, "sp", "New-pass-2"), db);
    ck_assert_str_eq(out->id, u->id);
    spotdb_user_free(out);
    free(before);

    /* failures change nothing */
    ASSERT_FAILS(spotdb_user_set_password(db,
                                          "00000000-0000-4000-8000-000000000000",
                                          "Other-pass-3"),
                 SPOTDB_ENOTFOUND, db, NULL, "Other-pass-3");
    ASSERT_FAILS(spotdb_user_set_password(db, "not-a-uuid", "Other-pass-3"),
                 SPOTDB_EINVAL, db, NULL, "Other-pass-3");
    ASSERT_FAILS(spotdb_user_set_password(db, u->id, ""), SPOTDB_EINVAL, db,
                 "password", NULL);
    ASSERT_FAILS(spotdb_user_set_password(db, u->id, NULL), SPOTDB_EINVAL, db,
                 "password", NULL);
    pw73 = repeat("Q7w", 24, "!");
    ck_assert_uint_eq(strlen(pw73), 73);
    ASSERT_FAILS(spotdb_user_set_password(db, u->id, pw73), SPOTDB_EINVAL, db,
                 "password", pw73);
    before = raw_hash(c, u->id);
    ck_assert_str_eq(before, after);
    free(before);
    free(after);
    free(pw73);
    ck_assert_int_eq(th_count(c, "SELECT count(*) FROM users WHERE "
                     "id = '00000000-0000-4000-8000-000000000000'"), 0);
    spotdb_user_free(u);
    PQfinish(c);
    spotdb_close(db);
}
END_TEST

/* ---- ownership and messages --------------------------------------------- */

START_TEST(free_null_and_messages_reset)
{
    spotdb_db *db = th_open();
    spotdb_user *u = SENTINEL;

    spotdb_user_free(NULL);
    spotdb_user_rows_free(NULL);
    ASSERT_FAILS(spotdb_user_get_by_username(&u, db, "ghost"),
                 SPOTDB_ENOTFOUND, db, NULL, NULL);
    ck_assert_ptr_null(u);
    /* the next successful call clears the message */
    ASSERT_OK(spotdb_user_get_by_username(&u, db, "admin"), db);
    ck_assert_ptr_nonnull(u);
    ck_assert_str_eq(spotdb_sqlstate(db), "");
    spotdb_user_free(u);
    u = SENTINEL;
    ASSERT_FAILS(spotdb_user_create(&u, db, NULL, SPOTDB_USER_EMAIL |
                                    SPOTDB_USER_USERNAME, "pw"),
                 SPOTDB_EINVAL, db, NULL, "pw");
    ck_assert_ptr_null(u);
    spotdb_close(db);
}
END_TEST

/* ---- passwords at the edges ------------------------------------------ */

/*
 * crypt_rn as the library sees it: this definition takes the place of
 * libxcrypt's in this executable (the library is linked in statically),
 * records each setting it is given, then calls the real one.  It shows
 * which stored values reach crypt without a hook in the library.
 */
#define CRYPT_LOG 8
static struct {
    int calls;
    char settings[CRYPT_LOG][128];
} crypt_log;

typedef char *(*crypt_rn_fn)(const char *, const char *, void *, int);

static crypt_rn_fn real_crypt_rn(void)
{
    static crypt_rn_fn fn;

    if (!fn) {
        void *lib = dlopen("libcrypt.so.1", RTLD_NOW | RTLD_LOCAL), *sym;

        ck_assert_msg(lib != NULL, "dlopen libcrypt.so.1: %s", dlerror());
        sym = dlsym(lib, "crypt_rn");
        ck_assert_ptr_nonnull(sym);
        memcpy(&fn, &sym, sizeof fn);
    }
    return fn;
}

char *crypt_rn(const char *phrase, const char *setting, void *data, int size)
{
    if (crypt_log.calls < CRYPT_LOG)
        snprintf(crypt_log.settings[crypt_log.calls],
                 sizeof crypt_log.settings[0], "%s", setting);
    crypt_log.calls++;
    return real_crypt_rn()(phrase, setting, data, size);
}

static void crypt_log_reset(void)
{
    memset(&crypt_log, 0, sizeof crypt_log);
}

/* A login attempt that must end in 0 or EAUTH; true when accepted. */
static bool login_accepted(spotdb_db *db, const char *login,
                           const char *password)
{
    spotdb_user *u = SENTINEL;
    int rc = spotdb_user_authenticate(&u, db, login, password);

    ck_assert_msg(rc == 0 || rc == SPOTDB_EAUTH, "login %s: %d %s", login,
                  rc, spotdb_errmsg(db));
    if (rc == 0) {
        ck_assert_ptr_nonnull(u);
        spotdb_user_free(u);
        return true;
    }
    ck_assert_ptr_null(u);
    check_clean_message(db, password, login);
    return false;
}

#define EMOJI4 "\xf0\x9f\x98\x80"     /* U+1F600: 4 bytes */

/* Passwords of 71, 72 and 73 bytes, 4-byte UTF-8, Unicode forms and
 * embedded NUL: each user accepts only its own password.  (72 bytes
 * accepted and 73 refused, ASCII and 3-byte UTF-8, empty and NULL, and
 * raw non-UTF-8 bytes: password_rules.) */
START_TEST(password_edges_zero_false_accepts)
{
    spotdb_db *db = th_open();
    PGconn *c = raw_conn();
    char *p71 = repeat("Ab1$", 17, "xyz");          /* 71 bytes */
    char *p72 = repeat("Ab1$", 18, NULL);           /* 72 bytes */
    char *p73 = repeat("Ab1$", 18, "!");            /* p72 and one more */
    char *e72 = repeat(EMOJI4, 18, NULL);           /* 18 chars, 72 B */
    char *e76 = repeat(EMOJI4, 19, NULL);
    char *p70 = strndup(p71, 70), *p71x = repeat("Ab1$", 17, "xyzQ");
    char *p72b = strdup(p72), *p72short = strndup(p72, 71);
    char *e71 = strndup(e72, 71), *e72b = strdup(e72), *h;
    static const char nfc[] = "caf\xc3\xa9", nfd[] = "cafe\xcc\x81";
    static const char with_nul[] = "nul\0tail", other_nul[] = "nul\0else";
    const uint64_t req = SPOTDB_USER_EMAIL | SPOTDB_USER_USERNAME;
    spotdb_user *u = SENTINEL;
    long before;
    int attempts = 0, false_accepts = 0, false_refusals = 0;
    struct {
        const char *login, *right;
        const char *wrong[4];
        bool accepts_wrong0;        /* wrong[0] is the same C string */
    } cases[] = {
        { "u71", NULL, { NULL }, false },
        { "u72", NULL, { NULL }, false },
        { "ue", NULL, { NULL }, false },
        { "unfc", nfc, { nfd, "CAF\xc3\x89", "cafe", "caf\xc3" }, false },
        { "unul", with_nul, { other_nul, "nultail", "nu", "nul " }, true },
    };

    ck_assert_uint_eq(strlen(p71), 71);
    ck_assert_uint_eq(strlen(p72), 72);
    ck_assert_uint_eq(strlen(p73), 73);
    ck_assert_uint_eq(strlen(e72), 72);
    ck_assert_uint_eq(strlen(p71x), 72);
    p72b[71] = '%';
    e72b[71] = '\x81';                  /* the last emoji becomes U+1F601 */
    cases[0].right = p71;
    cases[0].wrong[0] = p70;
    cases[0].wrong[1] = p71x;
    cases[0].wrong[2] = p72;
    cases[1].right = p72;
    cases[1].wrong[0] = p72b;
    cases[1].wrong[1] = p72short;
    cases[1].wrong[2] = p71;
    cases[2].right = e72;
    cases[2].wrong[0] = e71;
    cases[2].wrong[1] = e72b;
    cases[2].wrong[2] = EMOJI4;

    before = users_count(c);
    /* Over 72 bytes: refused, never cut. */
    {
        spotdb_user in = { .email = "long@example.com", .username = "long" };

        ASSERT_FAILS(spotdb_user_create(&u, db, &in, req, p73),
                     SPOTDB_EINVAL, db, "at most 72 bytes", p73);
        ASSERT_FAILS(spotdb_user_create(&u, db, &in, req, e76),
                     SPOTDB_EINVAL, db, "at most 72 bytes", e76);
        ck_assert_int_eq(users_count(c), before);
    }
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        char email[64];
        spotdb_user in = { .email = email, .username = cases[k].login };

        snprintf(email, sizeof email, "%s@example.com", cases[k].login);
        u = NULL;
        ASSERT_OK(spotdb_user_create(&u, db, &in, req, cases[k].right), db);
        h = raw_hash(c, u->id);
        ck_assert(verifies(cases[k].right, h));
        spotdb_user_free(u);
        free(h);
    }
    ck_assert_int_eq(users_count(c), before + 5);
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        attempts++;
        false_refusals += !login_accepted(db, cases[k].login, cases[k].right);
        for (int w = 0; w < 4 && cases[k].wrong[w]; w++) {
            bool expect = w == 0 && cases[k].accepts_wrong0;

            attempts++;
            if (login_accepted(db, cases[k].login, cases[k].wrong[w]) !=
                expect) {
                if (expect)
                    false_refusals++;
                else
                    false_accepts++;
                fprintf(stderr, "password edge: %s with wrong[%d] %s\n",
                        cases[k].login, w, expect ? "refused" : "ACCEPTED");
            }
        }
        /* Every user's password against every other user. */
        for (size_t o = 0; o < sizeof cases / sizeof cases[0]; o++) {
            if (o == k)
                continue;
            attempts++;
            false_accepts += login_accepted(db, cases[k].login,
                                            cases[o].right);
        }
    }
    /* 73 bytes whose first 72 are right: EINVAL, not a login. */
    u = SENTINEL;
    ASSERT_FAILS(spotdb_user_authenticate(&u, db, "u72", p73), SPOTDB_EINVAL,
                 db, "password", p73);
    ck_assert_ptr_null(u);
    ASSERT_FAILS(spotdb_user_authenticate(&u, db, "ue", e76), SPOTDB_EINVAL,
                 db, "password", e76);
    /* The C string ends at NUL: the hash is of "nul" alone. */
    {
        spotdb_user *un = NULL;

        ASSERT_OK(spotdb_user_get_by_username(&un, db, "unul"), db);
        h = raw_hash(c, un->id);
        ck_assert(verifies("nul", h));
        ck_assert(!verifies("nultail", h));
        free(h);
        spotdb_user_free(un);
    }
    fprintf(stderr, "password edges: %d logins, %d false accepts, %d false "
            "refusals\n", attempts, false_accepts, false_refusals);
    ck_assert_int_eq(false_accepts, 0);
    ck_assert_int_eq(false_refusals, 0);
    free(p70);
    free(p71);
    free(p71x);
    free(p72);
    free(p72b);
    free(p72short);
    free(p73);
    free(e71);
    free(e72);
    free(e72b);
    free(e76);
    PQfinish(c);
    spotdb_close(db);
}
END_TEST

/* A hash of `password` in another scheme of libxcrypt (malloc'd). */
static char *scheme_hash(const char *password, const char *prefix)
{
    char salt[CRYPT_GENSALT_OUTPUT_SIZE];
    struct crypt_data cd;
    const char *h;

    ck_assert_msg(crypt_gensalt_rn(prefix, 0, NULL, 0, salt, sizeof salt),
                  "libxcrypt has no %s", prefix);
    memset(&cd, 0, sizeof cd);
    h = crypt_rn(password, salt, &cd, sizeof cd);
    ck_assert_msg(h && h[0] != '*', "cannot hash with %s", prefix);
    return strdup(h);
}

/* What may be in hashed_password, against the right password and a
 * wrong one: only a well-formed bcrypt hash of the right password logs
 * in; a stored value that is not bcrypt never reaches crypt (the one
 * crypt call is the fixed dummy setting), even when it is a valid hash
 * of the right password in a scheme libxcrypt would accept. */
START_TEST(stored_hash_formats_zero_false_accepts)
{
    static const char *const schemes[] = {
        "$1$", "$5$", "$6$", "$y$", "$gy$", "$7$", "$sha1$", "$md5", "_", "",
    };
    enum { MAX_STORED = 40 };
    const char *pw = "Right-pw-1", *wrong = "Wrong-pw-1";
    spotdb_db *db = th_open();
    PGconn *c = raw_conn();
    spotdb_user *u = make_user(db, "fmt@example.com", "fmt", "Initial-1");
    char *stored[MAX_STORED], *b2b = make_hash(pw, "$2b$", 4);
    bool bcrypt_ok[MAX_STORED];
    int n = 0, logins = 0, false_accepts = 0, crypt_reached = 0;

    /* Well-formed bcrypt hashes of the right password. */
    stored[n] = strdup(b2b), bcrypt_ok[n++] = true;
    stored[n] = make_hash(pw, "$2a$", 4), bcrypt_ok[n++] = true;
    stored[n] = make_hash(pw, "$2y$", 5), bcrypt_ok[n++] = true;
    /* The right password in every other scheme. */
    for (size_t k = 0; k < sizeof schemes / sizeof *schemes; k++) {
        stored[n] = scheme_hash(pw, schemes[k]);
        ck_assert_msg(verifies(pw, stored[n]), "%s", stored[n]);
        bcrypt_ok[n++] = false;
    }
    /* bcrypt-like values that are not well formed. */
    {
        static const char *const edits[][2] = {
            { "$2x$", NULL }, { "$2B$", NULL }, { "$2b$03$", NULL },
            { "$2b$32$", NULL }, { "$3b$", NULL }, { "$2b$4$", NULL },
        };

        for (size_t k = 0; k < sizeof edits / sizeof *edits; k++) {
            stored[n] = strdup(b2b);
            memcpy(stored[n], edits[k][0], strlen(edits[k][0]));
            bcrypt_ok[n++] = false;
        }
    }
    stored[n] = strndup(b2b, 59), bcrypt_ok[n++] = false;        /* cut */
    stored[n] = repeat(b2b, 1, "x"), bcrypt_ok[n++] = false;     /* 61 */
    stored[n] = repeat(" ", 1, b2b), bcrypt_ok[n++] = false;
    stored[n] = repeat(b2b, 1, "\n"), bcrypt_ok[n++] = false;
    stored[n] = strdup(b2b), bcrypt_ok[n] = false;
    stored[n][40] = '!';                                         /* base64 */
    n++;
    stored[n] = repeat("$2b$04$", 1, "(not base64, fifty-three characters "
                       "in all: ok?)"), bcrypt_ok[n++] = false;
    stored[n] = strdup("garbage"), bcrypt_ok[n++] = false;
    stored[n] = strdup(""), bcrypt_ok[n++] = false;
    stored[n] = strdup("*0"), bcrypt_ok[n++] = false;
    stored[n] = strdup(pw), bcrypt_ok[n++] = false;              /* plain */
    ck_assert_int_le(n, MAX_STORED);

    for (int k = 0; k < n; k++) {
        char as_pw[73];
        const char *tries[3] = { pw, wrong, as_pw };

        /* the stored text itself as the password (72 bytes at most) */
        snprintf(as_pw, sizeof as_pw, "%s", stored[k][0] ? stored[k] : "x");

        for (int t = 0; t < 3; t++) {
            bool ok, expect = bcrypt_ok[k] && t == 0;

            raw_set_hash(c, u->id, stored[k]);
            crypt_log_reset();
            ok = login_accepted(db, "fmt", tries[t]);
            logins++;
            if (ok != expect) {
                false_accepts += ok;
                ck_assert_msg(!expect, "stored [%s]: right password refused",
                              stored[k]);
                fprintf(stderr, "stored [%s]: try %d ACCEPTED\n", stored[k],
                        t);
            }
            /* Which settings reached crypt. */
            ck_assert_int_ge(crypt_log.calls, 1);
            if (bcrypt_ok[k]) {
                ck_assert_str_eq(crypt_log.settings[0], stored[k]);
            } else {
                for (int j = 0; j < crypt_log.calls && j < CRYPT_LOG; j++) {
                    crypt_reached +=
                        strcmp(crypt_log.settings[j], stored[k]) == 0;
                    ck_assert_msg(strncmp(crypt_log.settings[j], "$2b$04$",
                                          7) == 0,
                                  "stored [%s] led to crypt setting [%s]",
                                  stored[k], crypt_log.settings[j]);
                }
                ck_assert_int_eq(crypt_log.calls, 1);
            }
        }
    }
    fprintf(stderr, "stored hashes: %d values x 3 passwords = %d logins, %d "
            "false accepts; non-bcrypt values that reached crypt: %d\n", n,
            logins, false_accepts, crypt_reached);
    ck_assert_int_eq(false_accepts, 0);
    ck_assert_int_eq(crypt_reached, 0);
    /* The test's premise: libxcrypt alone would have taken each scheme. */
    ck_assert_int_ge(n, 25);
    for (int k = 0; k < n; k++)
        free(stored[k]);
    free(b2b);
    spotdb_user_free(u);
    PQfinish(c);
    spotdb_close(db);
}
END_TEST

/* A right login on a hash weaker than the policy (cost 12) stores a new
 * $2b$12$ hash; the next login keeps it.  (Re-hashing at the lowered test
 * cost, the untouched hash after a failed login and the no-downgrade
 * rule: authenticate_rehashes_weak_hashes.) */
START_TEST(lower_cost_login_rehashes_at_12)
{
    spotdb_db *db = th_open();
    PGconn *c = raw_conn();
    spotdb_user *u = make_user(db, "cost@example.com", "cost", "Initial-1");
    static const char *const prefixes[] = { "$2b$", "$2a$" };
    const char *pw = "Cost-pw-12";

    spotdb__bcrypt_cost = 12;
    for (size_t k = 0; k < 2; k++) {
        char *weak = make_hash(pw, prefixes[k], 5), *h, *h2;

        raw_set_hash(c, u->id, weak);
        crypt_log_reset();
        ck_assert(login_accepted(db, "cost", pw));
        /* one check of the stored hash, then the new one at cost 12 */
        ck_assert_int_eq(crypt_log.calls, 2);
        ck_assert_str_eq(crypt_log.settings[0], weak);
        ck_assert_msg(strncmp(crypt_log.settings[1], "$2b$12$", 7) == 0,
                      "new setting %s", crypt_log.settings[1]);
        h = raw_hash(c, u->id);
        ck_assert_msg(starts_with(h, "$2b$12$"), "after login: %s", h);
        ck_assert_uint_eq(strlen(h), 60);
        ck_assert(verifies(pw, h));
        ck_assert(!verifies("Cost-pw-1", h));
        if (k == 0) {
            /* at the policy's cost now: the next login keeps it */
            crypt_log_reset();
            ck_assert(login_accepted(db, "cost@example.com", pw));
            ck_assert_int_eq(crypt_log.calls, 1);
            h2 = raw_hash(c, u->id);
            ck_assert_str_eq(h2, h);
            free(h2);
        }
        free(h);
        free(weak);
    }
    spotdb_user_free(u);
    PQfinish(c);
    spotdb_close(db);
}
END_TEST

static Suite *users_suite(void)
{
    Suite *s = suite_create("users");
    TCase *tc = tcase_create("pg");

    tcase_add_checked_fixture(tc, th_setup_migrated_db, th_teardown_db);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, create_fills_defaults_and_reads_back);
    tcase_add_test(tc, create_every_column_utf8_and_maximum_lengths);
    tcase_add_test(tc, over_length_by_one_is_einval_naming_the_field);
    tcase_add_test(tc, stored_hash_is_bcrypt_cost_12);
    tcase_add_test(tc, password_rules);
    tcase_add_test(tc, validation_rules);
    tcase_add_test(tc, validation_needs_no_round_trip);
    tcase_add_test(tc, unique_conflicts_name_the_constraint);
    tcase_add_test(tc, server_errors_never_show_the_hash);
    tcase_add_test(tc, trigger_messages_never_show_the_hash);
    tcase_add_test(tc, update_changes_only_masked_columns);
    tcase_add_test(tc, update_rejections_leave_the_row_alone);
    tcase_add_test(tc, delete_missing_and_simple);
    tcase_add_test(tc, delete_cascades_to_accounts_instances_logs);
    tcase_add_test(tc, delete_of_model_creator_is_ereference);
    tcase_add_test(tc, list_pages_every_user_once_in_order);
    tcase_add_test(tc, list_is_stable_while_rows_are_inserted);
    tcase_add_test(tc, list_pages_through_ties_and_infinities);
    tcase_add_test(tc, list_bad_arguments);
    tcase_add_test(tc, list_and_count_filter_role_and_active);
    tcase_add_test(tc, authenticate_seeded_admin);
    tcase_add_test(tc, authenticate_by_username_and_email);
    tcase_add_test(tc, authenticate_failures_look_alike);
    tcase_add_test(tc, authenticate_timing_does_not_tell_unknown_logins);
    tcase_add_test(tc, authenticate_rehashes_weak_hashes);
    tcase_add_test(tc, authenticate_garbage_hash_is_eauth);
    tcase_add_test(tc, authenticate_refuses_huge_stored_costs);
    tcase_add_test(tc, set_password_replaces_the_hash);
    tcase_add_test(tc, free_null_and_messages_reset);
    tcase_add_test(tc, password_edges_zero_false_accepts);
    tcase_add_test(tc, stored_hash_formats_zero_false_accepts);
    tcase_add_test(tc, lower_cost_login_rehashes_at_12);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return th_run(users_suite());
}
