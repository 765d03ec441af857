/*
 * TLS: an explicit sslmode passes through, a non-local host without one
 * gets sslmode=verify-full (spotdb/db.h), and libpq's verification
 * really refuses a certificate that names another host or comes from
 * another CA.
 *
 * The live cases run against a server of their own that tools/pg-tls
 * starts on loopback TCP, with a certificate from a test CA made at test
 * time by openssl: it names localhost and 127.0.0.2, not 127.0.0.1.
 * 127.0.0.2 is loopback, but not local by the library's rule, so the
 * default applies to it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "internal.h"

#define MARKER "Tl5Secret42"

/* What could change the outcome of resolving settings. */
static const char *const env_names[] = {
    "DATABASE_URL", "POSTGRES_HOST", "POSTGRES_PORT", "POSTGRES_USER",
    "POSTGRES_PASSWORD", "POSTGRES_DB", "PGHOST", "PGHOSTADDR", "PGSSLMODE",
    "PGREQUIRESSL", "PGSERVICE", "PGSSLROOTCERT", NULL
};
static char *saved_env[sizeof env_names / sizeof env_names[0]];

static char tls_dir[64];

static void save_env(void)
{
    for (int i = 0; env_names[i]; i++) {
        const char *v = getenv(env_names[i]);

        saved_env[i] = v ? strdup(v) : NULL;
        unsetenv(env_names[i]);
    }
}

static void restore_env(void)
{
    for (int i = 0; env_names[i]; i++) {
        if (saved_env[i])
            setenv(env_names[i], saved_env[i], 1);
        else
            unsetenv(env_names[i]);
        free(saved_env[i]);
        saved_env[i] = NULL;
    }
}

/* ---- the default, unit level ------------------------------------------- */

/* The last value of kw in the resolved settings (NULL: none) and how
 * many times it is there. */
static const char *resolved(const char *conninfo, const char *kw, int *count)
{
    static char value[64];
    spotdb__conninfo ci;
    bool found = false;

    *count = 0;
    ck_assert_msg(spotdb__conninfo_resolve(&ci, conninfo, NULL) == 0, "%s: %s",
                  conninfo ? conninfo : "(null)", spotdb_last_errmsg());
    for (size_t i = 0; i < ci.count; i++)
        if (strcmp(ci.keywords[i], kw) == 0) {
            snprintf(value, sizeof value, "%s", ci.values[i]);
            found = true;
            (*count)++;
        }
    ck_assert_ptr_null(ci.keywords[ci.count]);
    spotdb__conninfo_free(&ci);
    return found ? value : NULL;
}

static void expect_sslmode(const char *conninfo, const char *mode)
{
    int n;
    const char *v = resolved(conninfo, "sslmode", &n);

    if (!mode) {
        ck_assert_msg(v == NULL, "%s: sslmode=%s pushed",
                      conninfo ? conninfo : "(null)", v ? v : "");
    } else {
        ck_assert_msg(v && strcmp(v, mode) == 0, "%s: sslmode %s, expected "
                      "%s", conninfo ? conninfo : "(null)", v ? v : "none",
                      mode);
        ck_assert_int_eq(n, 1);
    }
}

START_TEST(non_local_host_defaults_to_verify_full)
{
    expect_sslmode("host=db.example.com dbname=x", "verify-full");
    expect_sslmode("postgresql://agent@db.example.com:5432/spot",
                   "verify-full");
    expect_sslmode("host=10.1.2.3", "verify-full");
    expect_sslmode("hostaddr=10.1.2.3", "verify-full");
    /* a name that is local, an address that is not: the address is
     * where the connection goes */
    expect_sslmode("host=localhost hostaddr=10.1.2.3", "verify-full");
    /* loopback, but only 127.0.0.1 counts as local */
    expect_sslmode("host=127.0.0.2", "verify-full");
    /* several hosts: one that is not local is enough */
    expect_sslmode("host=localhost,db.example.com port=5432,5433",
                   "verify-full");
    expect_sslmode("postgresql://localhost,db.example.com/x", "verify-full");
}
END_TEST

START_TEST(local_hosts_get_nothing)
{
    expect_sslmode("host=/tmp/sock dbname=x", NULL);
    expect_sslmode("host=@abstract dbname=x", NULL);
    expect_sslmode("host=localhost dbname=x", NULL);
    expect_sslmode("host=LocalHost dbname=x", NULL);
    expect_sslmode("host=127.0.0.1", NULL);
    expect_sslmode("host=::1", NULL);
    expect_sslmode("postgresql://[::1]:5432/x", NULL);
    expect_sslmode("host=/tmp,localhost,127.0.0.1 port=1,2,3", NULL);
    expect_sslmode("hostaddr=127.0.0.1", NULL);
    expect_sslmode("postgresql:///x", NULL);
    expect_sslmode("dbname=x", NULL);       /* libpq's default: a socket */
    ck_assert(spotdb__hosts_local(NULL));
    ck_assert(spotdb__hosts_local(""));
    ck_assert(!spotdb__hosts_local("localhost.example.com"));
    ck_assert(!spotdb__hosts_local("localhos"));
    ck_assert(!spotdb__hosts_local("127.0.0.10"));
    ck_assert(!spotdb__hosts_local("/tmp,db"));
}
END_TEST

START_TEST(explicit_sslmode_wins)
{
    expect_sslmode("host=db.example.com sslmode=disable", "disable");
    expect_sslmode("host=db.example.com sslmode=require", "require");
    expect_sslmode("host=db.example.com sslmode=verify-ca", "verify-ca");
    expect_sslmode("postgresql://db.example.com/x?sslmode=prefer", "prefer");
    expect_sslmode("host=localhost sslmode=verify-full", "verify-full");
    /* libpq reads PGSSLMODE when the settings name none: it wins too */
    setenv("PGSSLMODE", "disable", 1);
    expect_sslmode("host=db.example.com", NULL);
    unsetenv("PGSSLMODE");
    /* a service file may name sslmode: libpq decides */
    expect_sslmode("service=spot host=db.example.com", NULL);
    setenv("PGSERVICE", "spot", 1);
    expect_sslmode("host=db.example.com", NULL);
    unsetenv("PGSERVICE");
}
END_TEST

/* libpq ignores an empty value: the default then applies, after it. */
START_TEST(empty_sslmode_is_no_sslmode)
{
    int n;
    const char *v = resolved("host=db.example.com sslmode=''", "sslmode", &n);

    ck_assert_str_eq(v, "verify-full");
    ck_assert_int_eq(n, 2);
}
END_TEST

START_TEST(host_from_the_environment)
{
    /* the POSTGRES_* variables of the original deployment */
    setenv("POSTGRES_HOST", "db.example.com", 1);
    expect_sslmode(NULL, "verify-full");
    setenv("POSTGRES_HOST", "/run/postgresql", 1);
    expect_sslmode(NULL, NULL);
    unsetenv("POSTGRES_HOST");
    /* DATABASE_URL */
    setenv("DATABASE_URL", "postgresql://db.example.com/spot", 1);
    expect_sslmode(NULL, "verify-full");
    unsetenv("DATABASE_URL");
    /* libpq's own PGHOST and PGHOSTADDR, read when the settings name no
     * host */
    setenv("PGHOST", "db.example.com", 1);
    expect_sslmode(NULL, "verify-full");
    expect_sslmode("dbname=x", "verify-full");
    expect_sslmode("host=localhost", NULL);
    setenv("PGHOST", "localhost", 1);
    expect_sslmode("dbname=x", NULL);
    unsetenv("PGHOST");
    setenv("PGHOSTADDR", "192.0.2.7", 1);
    expect_sslmode("dbname=x", "verify-full");
    unsetenv("PGHOSTADDR");
}
END_TEST

/* ---- live: the server of tools/pg-tls ---------------------------------- */

static const char *env_or_fail(const char *name)
{
    const char *v = getenv(name);

    ck_assert_msg(v && *v, "%s is not set: tools/pg-tls did not start", name);
    return v;
}

/* Settings for the TLS server: host, then extra keywords. */
static char *tls_settings(const char *host, const char *extra)
{
    static char buf[1024];

    snprintf(buf, sizeof buf, "host=%s port=%s user=postgres dbname=postgres "
             "password=" MARKER " connect_timeout=10 %s", host,
             env_or_fail("SPOTDB_TLS_PORT"), extra);
    return buf;
}

static char *with_ca(const char *host, const char *mode, const char *ca_env)
{
    char extra[512];

    snprintf(extra, sizeof extra, "%s%s sslrootcert='%s'",
             mode ? "sslmode=" : "", mode ? mode : "", env_or_fail(ca_env));
    return tls_settings(host, extra);
}

static spotdb_db *open_ok(const char *settings)
{
    spotdb_db *db = NULL;
    int rc = th_open_unchecked(&db, settings);

    ck_assert_msg(rc == 0, "%s: %s", settings, spotdb_last_errmsg());
    return db;
}

/* The server's own view of the session, and libpq's. */
static void assert_verified_tls(spotdb_db *db)
{
    PGresult *r = PQexec(db->conn, "SELECT ssl FROM pg_stat_ssl "
                                   "WHERE pid = pg_backend_pid()");
    PQconninfoOption *opts = PQconninfo(db->conn);
    bool full = false;

    ck_assert_int_eq(PQresultStatus(r), PGRES_TUPLES_OK);
    ck_assert_str_eq(PQgetvalue(r, 0, 0), "t");
    PQclear(r);
    ck_assert_int_eq(PQsslInUse(db->conn), 1);
    for (PQconninfoOption *o = opts; o->keyword; o++)
        if (strcmp(o->keyword, "sslmode") == 0)
            full = o->val && strcmp(o->val, "verify-full") == 0;
    PQconninfoFree(opts);
    ck_assert_msg(full, "the connection is not verify-full");
}

static void expect_refused(const char *settings, const char *reason)
{
    spotdb_db *db = (spotdb_db *)1;
    int rc = th_open_unchecked(&db, settings);
    const char *msg = spotdb_last_errmsg();

    ck_assert_msg(rc == SPOTDB_ECONN, "%s: %d %s", settings, rc, msg);
    ck_assert_ptr_null(db);
    ck_assert_msg(strstr(msg, reason) != NULL, "reason \"%s\" not in: %s",
                  reason, msg);
    ck_assert_msg(strstr(msg, MARKER) == NULL, "password leaked: %s", msg);
}

START_TEST(verify_full_with_the_right_ca_connects)
{
    spotdb_db *db = open_ok(with_ca("localhost", "verify-full",
                                    "SPOTDB_TLS_CA"));

    assert_verified_tls(db);
    spotdb_close(db);
}
END_TEST

START_TEST(name_mismatch_is_refused)
{
    /* 127.0.0.1 is local, so the mode is explicit here */
    expect_refused(with_ca("127.0.0.1", "verify-full", "SPOTDB_TLS_CA"),
                   "does not match host name \"127.0.0.1\"");
}
END_TEST

START_TEST(wrong_ca_is_refused)
{
    expect_refused(with_ca("localhost", "verify-full", "SPOTDB_TLS_OTHER_CA"),
                   "certificate verify failed");
    expect_refused(with_ca("localhost", "verify-ca", "SPOTDB_TLS_OTHER_CA"),
                   "certificate verify failed");
}
END_TEST

/* No sslmode, a host that is not local: verify-full, live.  With the
 * wrong CA, libpq's own default (prefer) would have connected. */
START_TEST(default_for_a_non_local_host_verifies)
{
    spotdb_db *db = open_ok(with_ca("127.0.0.2", NULL, "SPOTDB_TLS_CA"));

    assert_verified_tls(db);
    spotdb_close(db);
    expect_refused(with_ca("127.0.0.2", NULL, "SPOTDB_TLS_OTHER_CA"),
                   "certificate verify failed");
    /* an explicit mode, or PGSSLMODE, is the caller's choice */
    db = open_ok(tls_settings("127.0.0.2", "sslmode=require"));
    ck_assert_int_eq(PQsslInUse(db->conn), 1);
    spotdb_close(db);
    setenv("PGSSLMODE", "disable", 1);
    db = open_ok(with_ca("127.0.0.2", NULL, "SPOTDB_TLS_OTHER_CA"));
    ck_assert_int_eq(PQsslInUse(db->conn), 0);
    spotdb_close(db);
    unsetenv("PGSSLMODE");
}
END_TEST

/* Whether the report holds `code`; its severity in *sev. */
static bool has_finding(const spotdb_doctor_report *r, const char *code,
                        int *sev)
{
    for (size_t i = 0; i < r->count; i++)
        if (strcmp(r->findings[i].code, code) == 0) {
            if (sev)
                *sev = r->findings[i].severity;
            ck_assert(strstr(r->findings[i].message, MARKER) == NULL);
            return true;
        }
    return false;
}

static int tls_findings(const char *settings, const char **code)
{
    static const char *const codes[] = {
        "tls_missing", "tls_unverified", "tls_hostname_unchecked",
    };
    spotdb_doctor_report *r = NULL;
    spotdb_db *db = open_ok(settings);
    int n = 0, sev = 0, rc = spotdb_doctor_run(&r, db);

    ck_assert_msg(rc == 0, "doctor: %s", spotdb_errmsg(db));
    *code = NULL;
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
        if (has_finding(r, codes[i], &sev)) {
            *code = codes[i];
            n++;
        }
    spotdb_doctor_report_free(r);
    spotdb_close(db);
    return n ? sev : 0;
}

START_TEST(doctor_reports_unverified_tls)
{
    const char *code;

    ck_assert_int_eq(tls_findings(tls_settings("127.0.0.2", "sslmode=disable"),
                                  &code), SPOTDB_DOCTOR_ERROR);
    ck_assert_str_eq(code, "tls_missing");
    ck_assert_int_eq(tls_findings(tls_settings("127.0.0.2", "sslmode=require"),
                                  &code), SPOTDB_DOCTOR_ERROR);
    ck_assert_str_eq(code, "tls_unverified");
    ck_assert_int_eq(tls_findings(with_ca("127.0.0.2", "verify-ca",
                                          "SPOTDB_TLS_CA"), &code),
                     SPOTDB_DOCTOR_WARNING);
    ck_assert_str_eq(code, "tls_hostname_unchecked");
    /* with a root certificate, libpq's require verifies the chain too */
    ck_assert_int_eq(tls_findings(with_ca("127.0.0.2", "require",
                                          "SPOTDB_TLS_CA"), &code),
                     SPOTDB_DOCTOR_WARNING);
    ck_assert_str_eq(code, "tls_hostname_unchecked");
    ck_assert_int_eq(tls_findings(with_ca("127.0.0.2", NULL, "SPOTDB_TLS_CA"),
                                  &code), 0);
    ck_assert_ptr_null(code);
    /* local: nothing to say, encrypted or not */
    ck_assert_int_eq(tls_findings(tls_settings("127.0.0.1", "sslmode=disable"),
                                  &code), 0);
    ck_assert_int_eq(tls_findings(tls_settings("localhost", "sslmode=require"),
                                  &code), 0);
}
END_TEST

static int pg_tls(const char *cmd)
{
    const char *src = getenv("SPOTDB_TEST_SOURCE_DIR");
    char line[1024];
    FILE *p;
    int st;

    if (!src)
        return -1;
    snprintf(line, sizeof line, "'%s/../tools/pg-tls' %s '%s'", src, cmd,
             tls_dir);
    if (!(p = popen(line, "r")))
        return -1;
    while (fgets(line, sizeof line, p)) {
        char *eq, *end;

        if (strncmp(line, "export ", 7) != 0 || !(eq = strchr(line, '=')))
            continue;
        *eq = '\0';
        end = strrchr(eq + 2, '\'');
        if (eq[1] != '\'' || !end)
            continue;
        *end = '\0';
        setenv(line + 7, eq + 2, 1);
    }
    st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static Suite *tls_suite(void)
{
    Suite *s = suite_create("tls");
    TCase *tc = tcase_create("default");

    tcase_add_checked_fixture(tc, save_env, restore_env);
    tcase_add_test(tc, non_local_host_defaults_to_verify_full);
    tcase_add_test(tc, local_hosts_get_nothing);
    tcase_add_test(tc, explicit_sslmode_wins);
    tcase_add_test(tc, empty_sslmode_is_no_sslmode);
    tcase_add_test(tc, host_from_the_environment);
    suite_add_tcase(s, tc);

    tc = tcase_create("live");
    tcase_add_checked_fixture(tc, save_env, restore_env);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, verify_full_with_the_right_ca_connects);
    tcase_add_test(tc, name_mismatch_is_refused);
    tcase_add_test(tc, wrong_ca_is_refused);
    tcase_add_test(tc, default_for_a_non_local_host_verifies);
    tcase_add_test(tc, doctor_reports_unverified_tls);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    int rc;

    snprintf(tls_dir, sizeof tls_dir, "/tmp/spotdb-tlst.XXXXXX");
    if (!mkdtemp(tls_dir)) {
        perror("mkdtemp");
        return EXIT_FAILURE;
    }
    if (pg_tls("start") != 0 || !getenv("SPOTDB_TLS_PORT")) {
        fprintf(stderr, "test_tls: tools/pg-tls could not start a TLS "
                "server (needs openssl and the postgresql package; run "
                "through meson test)\n");
        pg_tls("stop");
        rmdir(tls_dir);
        return EXIT_FAILURE;
    }
    rc = th_run(tls_suite());
    pg_tls("stop");
    rmdir(tls_dir);
    return rc;
}
