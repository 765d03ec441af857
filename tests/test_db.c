/*
 * Opening a handle: where settings come from and in which order, session
 * pinning, options, and failures that explain themselves without ever
 * showing a password.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "internal.h"

#define MARKER "Sekr1tPw9"

static const char *const env_names[] = {
    "DATABASE_URL", "POSTGRES_HOST", "POSTGRES_PORT", "POSTGRES_USER",
    "POSTGRES_PASSWORD", "POSTGRES_DB", "PGHOST", "PGPORT", "PGUSER",
    "PGDATABASE", "PGPASSWORD", "PGAPPNAME", "PGCONNECT_TIMEOUT", NULL
};

/* Host, port and user of the test server, from the admin URL. */
static char srv_host[1024], srv_port[32], srv_user[128];

static void clear_env(void)
{
    for (int i = 0; env_names[i]; i++)
        unsetenv(env_names[i]);
}

static void setup(void)
{
    char *err = NULL;
    PQconninfoOption *o;

    th_setup_db();
    o = PQconninfoParse(th_admin_url(), &err);
    ck_assert_ptr_nonnull(o);
    for (PQconninfoOption *p = o; p->keyword; p++) {
        const char *v = p->val ? p->val : "";
        if (strcmp(p->keyword, "host") == 0)
            snprintf(srv_host, sizeof srv_host, "%s", v);
        else if (strcmp(p->keyword, "port") == 0)
            snprintf(srv_port, sizeof srv_port, "%s", v);
        else if (strcmp(p->keyword, "user") == 0)
            snprintf(srv_user, sizeof srv_user, "%s", v);
    }
    PQconninfoFree(o);
    /* the URL may rely on libpq defaults for the socket and user */
    if (!srv_host[0] && getenv("PGHOST"))
        snprintf(srv_host, sizeof srv_host, "%s", getenv("PGHOST"));
    if (!srv_user[0])
        snprintf(srv_user, sizeof srv_user, "%s", getenv("PGUSER") ? getenv("PGUSER") : "postgres");
    clear_env();
}

static void teardown(void)
{
    clear_env();
    th_teardown_db();
}

static char *this_db(void)
{
    return th_conninfo_with_db(th_admin_url(), th_db_name());
}

/* A value of the handle's session. */
static char *session(spotdb_db *db, const char *sql)
{
    return th_scalar(db->conn, sql);
}

static void assert_connected_to(spotdb_db *db, const char *dbname, int source)
{
    char *cur = session(db, "SELECT current_database()");

    ck_assert_str_eq(cur, dbname);
    ck_assert_int_eq(spotdb_conn_source_of(db), source);
    free(cur);
}

static void set_server_env(void)
{
    if (srv_host[0])
        setenv("POSTGRES_HOST", srv_host, 1);
    if (srv_port[0])
        setenv("POSTGRES_PORT", srv_port, 1);
    setenv("POSTGRES_USER", srv_user, 1);
}

START_TEST(argument_wins_over_everything)
{
    spotdb_db *db = NULL;
    char *ci = this_db();
    char *other = th_conninfo_with_db(th_admin_url(), "postgres");

    setenv("DATABASE_URL", other, 1);
    set_server_env();
    setenv("POSTGRES_DB", "postgres", 1);
    setenv("PGDATABASE", "postgres", 1);
    ck_assert_int_eq(th_open_unchecked(&db, ci), 0);
    assert_connected_to(db, th_db_name(), SPOTDB_CONN_ARGUMENT);
    spotdb_close(db);
    free(ci);
    free(other);
}
END_TEST

START_TEST(database_url_then_postgres_env_then_libpq)
{
    spotdb_db *db = NULL;
    char *ci = this_db();

    /* 2. DATABASE_URL (a keyword string is accepted as well as a URI) */
    setenv("DATABASE_URL", ci, 1);
    set_server_env();
    setenv("POSTGRES_DB", "postgres", 1);
    ck_assert_msg(th_open_unchecked(&db, NULL) == 0, "%s", spotdb_last_errmsg());
    assert_connected_to(db, th_db_name(), SPOTDB_CONN_DATABASE_URL);
    spotdb_close(db);

    /* an empty DATABASE_URL counts as unset: 3. POSTGRES_* */
    setenv("DATABASE_URL", "", 1);
    ck_assert_msg(th_open_unchecked(&db, "") == 0, "%s", spotdb_last_errmsg());
    assert_connected_to(db, "postgres", SPOTDB_CONN_POSTGRES_ENV);
    spotdb_close(db);

    /* 4. libpq's PG* defaults */
    clear_env();
    if (srv_host[0])
        setenv("PGHOST", srv_host, 1);
    if (srv_port[0])
        setenv("PGPORT", srv_port, 1);
    setenv("PGUSER", srv_user, 1);
    setenv("PGDATABASE", th_db_name(), 1);
    ck_assert_msg(th_open_unchecked(&db, NULL) == 0, "%s", spotdb_last_errmsg());
    assert_connected_to(db, th_db_name(), SPOTDB_CONN_LIBPQ_DEFAULTS);
    spotdb_close(db);
    free(ci);
}
END_TEST

START_TEST(postgres_env_falls_through_to_pg_defaults)
{
    spotdb_db *db = NULL;

    /* only the database comes from POSTGRES_*; host and user from PG* */
    if (srv_host[0])
        setenv("PGHOST", srv_host, 1);
    if (srv_port[0])
        setenv("PGPORT", srv_port, 1);
    setenv("PGUSER", srv_user, 1);
    setenv("PGDATABASE", "postgres", 1);
    setenv("POSTGRES_DB", th_db_name(), 1);
    ck_assert_msg(th_open_unchecked(&db, NULL) == 0, "%s", spotdb_last_errmsg());
    assert_connected_to(db, th_db_name(), SPOTDB_CONN_POSTGRES_ENV);
    spotdb_close(db);
}
END_TEST

START_TEST(session_is_pinned_to_utc_and_named)
{
    spotdb_db *db = NULL;
    char *ci = this_db(), *v, sql[256];
    PGconn *raw = th_connect(ci);
    spotdb_open_options o = SPOTDB_OPEN_OPTIONS_INIT;

    snprintf(sql, sizeof sql, "ALTER DATABASE %s SET TimeZone = 'Asia/Kolkata'",
             th_db_name());
    th_exec(raw, sql);
    ck_assert_int_eq(th_open_unchecked(&db, ci), 0);
    v = session(db, "SHOW TimeZone");
    ck_assert_str_eq(v, "UTC");
    free(v);
    /* CURRENT_TIMESTAMP into a TIMESTAMP column now means UTC */
    v = session(db, "SELECT abs(extract(epoch FROM CURRENT_TIMESTAMP::timestamp"
                    " - (now() AT TIME ZONE 'UTC'))) < 1");
    ck_assert_str_eq(v, "t");
    free(v);
    v = session(db, "SHOW application_name");
    ck_assert_str_eq(v, "libspotdb");
    free(v);
    v = session(db, "SHOW client_encoding");
    ck_assert_str_eq(v, "UTF8");
    free(v);
    spotdb_close(db);

    o.application_name = "lab-agent-7";
    o.schema_check = SPOTDB_SCHEMA_CHECK_SKIP;
    ck_assert_int_eq(spotdb_open(&db, ci, &o), 0);
    v = session(db, "SHOW application_name");
    ck_assert_str_eq(v, "lab-agent-7");
    free(v);
    spotdb_close(db);

    /* the settings' own application_name wins over the option */
    {
        char *named = malloc(strlen(ci) + 64);
        sprintf(named, "%s application_name=from-settings", ci);
        ck_assert_int_eq(spotdb_open(&db, named, &o), 0);
        v = session(db, "SHOW application_name");
        ck_assert_str_eq(v, "from-settings");
        free(v);
        spotdb_close(db);
        free(named);
    }
    PQfinish(raw);
    free(ci);
}
END_TEST

static const char *keyword_value(const spotdb__conninfo *ci, const char *kw,
                                 int *count)
{
    const char *v = NULL;

    *count = 0;
    for (size_t i = 0; i < ci->count; i++)
        if (strcmp(ci->keywords[i], kw) == 0) {
            v = ci->values[i];
            (*count)++;
        }
    return v;
}

START_TEST(connect_timeout_defaults)
{
    spotdb__conninfo ci;
    spotdb_open_options o = SPOTDB_OPEN_OPTIONS_INIT;
    int n;

    ck_assert_int_eq(spotdb__conninfo_resolve(&ci, "dbname=x", NULL), 0);
    ck_assert_str_eq(keyword_value(&ci, "connect_timeout", &n), "10");
    ck_assert_int_eq(n, 1);
    ck_assert_str_eq(keyword_value(&ci, "fallback_application_name", &n), "libspotdb");
    ck_assert_ptr_null(ci.keywords[ci.count]);
    spotdb__conninfo_free(&ci);

    o.connect_timeout_s = 3;
    ck_assert_int_eq(spotdb__conninfo_resolve(&ci, "dbname=x", &o), 0);
    ck_assert_str_eq(keyword_value(&ci, "connect_timeout", &n), "3");
    spotdb__conninfo_free(&ci);

    ck_assert_int_eq(spotdb__conninfo_resolve(&ci, "postgresql:///x?connect_timeout=5", &o), 0);
    ck_assert_str_eq(keyword_value(&ci, "connect_timeout", &n), "5");
    ck_assert_int_eq(n, 1);
    spotdb__conninfo_free(&ci);
}
END_TEST

#define assert_no_marker(msg) \
    ck_assert_msg(strstr(msg, MARKER) == NULL, "password leaked: %s", msg)

START_TEST(unreachable_server_names_host_and_port)
{
    spotdb_db *db = (spotdb_db *)1;
    const char *msg;

    ck_assert_int_eq(spotdb_open(&db, "host=/nonexistent-dir port=5999 "
                                      "password=" MARKER " connect_timeout=2",
                                 NULL),
                     SPOTDB_ECONN);
    ck_assert_ptr_null(db);
    msg = spotdb_last_errmsg();
    ck_assert_msg(strstr(msg, "host \"/nonexistent-dir\" port 5999") != NULL, "%s", msg);
    ck_assert_msg(strstr(msg, "the conninfo argument") != NULL, "%s", msg);
    ck_assert_msg(strstr(msg, "No such file or directory") != NULL, "%s", msg);
    assert_no_marker(msg);
    ck_assert_str_eq(spotdb_errmsg(NULL), msg);
}
END_TEST

START_TEST(server_refusal_carries_its_reason)
{
    spotdb_db *db = NULL;
    char *ci = th_conninfo_with_db(th_admin_url(), "no_such_db_" MARKER);
    char *with_pw = malloc(strlen(ci) + 64);
    const char *msg;

    sprintf(with_pw, "%s password=" MARKER, ci);
    ck_assert_int_eq(th_open_unchecked(&db, with_pw), SPOTDB_ECONN);
    msg = spotdb_last_errmsg();
    ck_assert_msg(strstr(msg, "does not exist") != NULL, "%s", msg);
    ck_assert_msg(strstr(msg, "cannot connect to PostgreSQL at host") != NULL, "%s", msg);
    /* the marker is also in the database name the server echoes: masked
     * too, since the handle knows it as the password */
    assert_no_marker(msg);
    free(ci);
    free(with_pw);
}
END_TEST

START_TEST(malformed_settings_are_einval_without_secret)
{
    static const char *const bad[] = {
        "postgresql://u:" MARKER "@[::1/db",
        "postgresql://u:" MARKER "%zz@host/db",
        "postgresql://u:" MARKER "@host/db?nonsense=1",
        "host=x password='" MARKER,
        "password=" MARKER " = x",
        "password=" MARKER " nokeyword",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        spotdb_db *db = NULL;
        int rc = th_open_unchecked(&db, bad[i]);

        ck_assert_msg(rc == SPOTDB_EINVAL, "%s: %d", bad[i], rc);
        ck_assert_ptr_null(db);
        ck_assert_msg(strstr(spotdb_last_errmsg(), "invalid connection settings") != NULL,
                      "%s", spotdb_last_errmsg());
        assert_no_marker(spotdb_last_errmsg());
    }
}
END_TEST

START_TEST(environment_secrets_are_redacted)
{
    spotdb_db *db = NULL;

    setenv("DATABASE_URL", "postgresql://u:" MARKER "@[::1/db", 1);
    ck_assert_int_eq(th_open_unchecked(&db, NULL), SPOTDB_EINVAL);
    ck_assert(strstr(spotdb_last_errmsg(), "DATABASE_URL") != NULL);
    assert_no_marker(spotdb_last_errmsg());
    unsetenv("DATABASE_URL");

    setenv("POSTGRES_HOST", "/nonexistent-" MARKER, 1);
    setenv("POSTGRES_PASSWORD", MARKER, 1);
    ck_assert_int_eq(th_open_unchecked(&db, NULL), SPOTDB_ECONN);
    ck_assert(strstr(spotdb_last_errmsg(), "POSTGRES_*") != NULL);
    assert_no_marker(spotdb_last_errmsg());
    clear_env();

    setenv("PGHOST", "/nonexistent-" MARKER, 1);
    setenv("PGPASSWORD", MARKER, 1);
    ck_assert_int_eq(th_open_unchecked(&db, NULL), SPOTDB_ECONN);
    assert_no_marker(spotdb_last_errmsg());
}
END_TEST

START_TEST(bad_arguments)
{
    spotdb_db *db = NULL;
    spotdb_open_options o = SPOTDB_OPEN_OPTIONS_INIT;
    char *ci = this_db();

    ck_assert_int_eq(spotdb_open(NULL, ci, NULL), SPOTDB_EINVAL);
    o.version = 7;
    ck_assert_int_eq(spotdb_open(&db, ci, &o), SPOTDB_EINVAL);
    ck_assert(strstr(spotdb_last_errmsg(), "version") != NULL);
    ck_assert_int_eq(spotdb_open_options_init(&o, SPOTDB_OPEN_OPTIONS_VERSION), 0);
    o.connect_timeout_s = -1;
    ck_assert_int_eq(spotdb_open(&db, ci, &o), SPOTDB_EINVAL);
    ck_assert(strstr(spotdb_last_errmsg(), "connect_timeout_s") != NULL);
    ck_assert_int_eq(spotdb_open_options_init(&o, 6), SPOTDB_EINVAL);
    ck_assert_int_eq(spotdb_open_options_init(NULL, 1), SPOTDB_EINVAL);
    ck_assert_ptr_null(db);
    spotdb_close(NULL);
    free(ci);
}
END_TEST

START_TEST(messages_are_never_null_nor_stale)
{
    spotdb_db *db = NULL;
    char *ci = this_db();

    ck_assert_int_eq(th_open_unchecked(&db, "host=/nonexistent-dir"), SPOTDB_ECONN);
    ck_assert_str_ne(spotdb_last_errmsg(), "");
    ck_assert_int_eq(th_open_unchecked(&db, ci), 0);
    ck_assert_str_eq(spotdb_last_errmsg(), "");
    ck_assert_str_eq(spotdb_errmsg(db), "");
    ck_assert_str_eq(spotdb_sqlstate(db), "");
    ck_assert_str_eq(spotdb_sqlstate(NULL), "");
    spotdb_close(db);
    for (int c = 0; c >= -14; c--)
        ck_assert_str_ne(spotdb_strerror(c), "unknown error");
    ck_assert_str_eq(spotdb_strerror(-999), "unknown error");
    ck_assert_str_eq(spotdb_strerror(1), "unknown error");
    ck_assert_str_eq(spotdb_version(), SPOTDB_VERSION);
    free(ci);
}
END_TEST

static void *fail_in_thread(void *arg)
{
    spotdb_db *db = NULL;

    (void)arg;
    th_open_unchecked(&db, "host=/nonexistent-thread");
    return strstr(spotdb_last_errmsg(), "nonexistent-thread") ? (void *)1 : NULL;
}

START_TEST(thread_local_errors_stay_in_their_thread)
{
    pthread_t t;
    void *saw = NULL;

    spotdb_open_options_init(NULL, 1);      /* sets this thread's message */
    ck_assert(strstr(spotdb_last_errmsg(), "opts must not be NULL") != NULL);
    ck_assert_int_eq(pthread_create(&t, NULL, fail_in_thread, NULL), 0);
    pthread_join(t, &saw);
    ck_assert_ptr_nonnull(saw);
    ck_assert(strstr(spotdb_last_errmsg(), "opts must not be NULL") != NULL);
}
END_TEST

static Suite *db_suite(void)
{
    Suite *s = suite_create("db");
    TCase *tc = tcase_create("pg");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, argument_wins_over_everything);
    tcase_add_test(tc, database_url_then_postgres_env_then_libpq);
    tcase_add_test(tc, postgres_env_falls_through_to_pg_defaults);
    tcase_add_test(tc, session_is_pinned_to_utc_and_named);
    tcase_add_test(tc, connect_timeout_defaults);
    tcase_add_test(tc, unreachable_server_names_host_and_port);
    tcase_add_test(tc, server_refusal_carries_its_reason);
    tcase_add_test(tc, malformed_settings_are_einval_without_secret);
    tcase_add_test(tc, environment_secrets_are_redacted);
    tcase_add_test(tc, bad_arguments);
    tcase_add_test(tc, messages_are_never_null_nor_stale);
    tcase_add_test(tc, thread_local_errors_stay_in_their_thread);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    /* the tests clear DATABASE_URL: keep the server's URL apart */
    const char *u = getenv("DATABASE_URL");

    if (u && !getenv("SPOTDB_TEST_DATABASE_URL"))
        setenv("SPOTDB_TEST_DATABASE_URL", u, 1);
    return th_run(db_suite());
}
