/*
 * spotdb_doctor_run() (include/spotdb/doctor.h): each check finds what it
 * is about in a real database changed by hand through raw libpq, says
 * nothing once it is fixed, and changes nothing itself.  Messages never
 * carry the admin hash, the password or an external id.
 *
 * The fixture migrates a fresh database and lowers bcrypt to cost 4; only
 * the first test verifies the seeded cost-12 hash, the others replace it
 * first.  The TLS check is tried against a TLS server in test_tls.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "internal.h"
#include "password.h"

#define NEW_PASSWORD "N3w-Adm1n-Pw"
#define EXTERNAL_ID "Xt3rnal-Sh4red-S3cret"

/* The report, every message checked for secrets. */
static spotdb_doctor_report *doctor(spotdb_db *db)
{
    spotdb_doctor_report *r = NULL;
    int rc = spotdb_doctor_run(&r, db);

    ck_assert_msg(rc == 0, "doctor: %d %s", rc, spotdb_errmsg(db));
    ck_assert_ptr_nonnull(r);
    ck_assert_str_eq(spotdb_errmsg(db), "");
    for (size_t i = 0; i < r->count; i++) {
        const spotdb_doctor_finding *f = &r->findings[i];

        ck_assert(f->severity >= SPOTDB_DOCTOR_INFO &&
                  f->severity <= SPOTDB_DOCTOR_ERROR);
        ck_assert(f->severity <= r->worst);
        ck_assert_msg(strstr(f->message, "$2") == NULL, "hash: %s",
                      f->message);
        ck_assert(strstr(f->message, NEW_PASSWORD) == NULL);
        ck_assert(strstr(f->message, EXTERNAL_ID) == NULL);
        ck_assert(strchr(f->message, '\n') == NULL);
    }
    return r;
}

static const spotdb_doctor_finding *finding(const spotdb_doctor_report *r,
                                            const char *code)
{
    for (size_t i = 0; i < r->count; i++)
        if (strcmp(r->findings[i].code, code) == 0)
            return &r->findings[i];
    return NULL;
}

static void dump(const spotdb_doctor_report *r)
{
    for (size_t i = 0; i < r->count; i++)
        fprintf(stderr, "  %s %s: %s\n",
                spotdb_doctor_severity_name(r->findings[i].severity),
                r->findings[i].code, r->findings[i].message);
}

/* Assert exactly one finding, `code`, and return its message copied. */
static char *only(spotdb_db *db, const char *code, int severity)
{
    spotdb_doctor_report *r = doctor(db);
    const spotdb_doctor_finding *f = finding(r, code);
    char *msg;

    if (r->count != 1 || !f)
        dump(r);
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(r->count, 1);
    ck_assert_int_eq(f->severity, severity);
    ck_assert_int_eq(r->worst, severity);
    msg = strdup(f->message);
    spotdb_doctor_report_free(r);
    return msg;
}

static void assert_clean(spotdb_db *db)
{
    spotdb_doctor_report *r = doctor(db);

    if (r->count)
        dump(r);
    ck_assert_uint_eq(r->count, 0);
    ck_assert_ptr_null(r->findings);
    ck_assert_int_eq(r->worst, 0);
    spotdb_doctor_report_free(r);
}

static void set_admin_password(spotdb_db *db, const char *password)
{
    spotdb_user *u = NULL;

    ck_assert_int_eq(spotdb_user_get_by_username(&u, db, "admin"), 0);
    ck_assert_int_eq(spotdb_user_set_password(db, u->id, password), 0);
    spotdb_user_free(u);
}

/* A handle on the test database, the seeded password replaced. */
static spotdb_db *open_fixed(void)
{
    spotdb_db *db = th_open();

    set_admin_password(db, NEW_PASSWORD);
    return db;
}

/* Nothing of the comparison stays behind. */
static void assert_no_probe_left(PGconn *raw)
{
    ck_assert_int_eq(th_count(raw, "SELECT count(*) FROM pg_namespace WHERE "
                                   "nspname = 'spotdb_catalog_probe'"), 0);
    ck_assert_int_eq(th_count(raw, "SELECT count(*) FROM users"), 1);
}

/* ---- the seeded admin password ----------------------------------------- */

START_TEST(seeded_admin_password_is_found)
{
    spotdb_db *db = th_open();
    PGconn *raw = th_connect(th_db_conninfo());
    char *before = th_scalar(raw, "SELECT hashed_password FROM users WHERE "
                                  "username = 'admin'");
    char *msg, *after;

    /* the cost-12 hash 0001_initial.sql seeds */
    ck_assert_int_eq(spotdb__bcrypt_cost_of(before), 12);
    msg = only(db, "default_admin_password", SPOTDB_DOCTOR_ERROR);
    ck_assert(strstr(msg, "user \"admin\"") != NULL);
    ck_assert(strstr(msg, before) == NULL);
    free(msg);
    /* no side effect: no login recorded, no re-hash */
    th_qeq(raw, NULL, "SELECT last_login FROM users WHERE username = 'admin'");
    after = th_scalar(raw, "SELECT hashed_password FROM users WHERE "
                           "username = 'admin'");
    ck_assert_str_eq(after, before);
    free(after);

    set_admin_password(db, NEW_PASSWORD);
    assert_clean(db);
    /* the password counts, not the seeded hash: admin again, at cost 4 */
    set_admin_password(db, "admin");
    free(only(db, "default_admin_password", SPOTDB_DOCTOR_ERROR));
    th_exec(raw, "UPDATE users SET is_active = false WHERE username = 'admin'");
    msg = only(db, "default_admin_password", SPOTDB_DOCTOR_WARNING);
    ck_assert(strstr(msg, "inactive") != NULL);
    free(msg);
    free(before);
    PQfinish(raw);
    spotdb_close(db);
}
END_TEST

/* ---- shared external ids ----------------------------------------------- */

static void add_account(PGconn *raw, const char *account_id, const char *ext)
{
    char sql[512];

    snprintf(sql, sizeof sql, "INSERT INTO accounts (user_id, account_id, "
             "account_name, role_arn, external_id) SELECT id, '%s', 'acct "
             "%s', 'arn:aws:iam::%s:role/spot', '%s' FROM users WHERE "
             "username = 'admin'", account_id, account_id, account_id, ext);
    th_exec(raw, sql);
}

START_TEST(shared_external_id_names_accounts_not_the_id)
{
    spotdb_db *db = open_fixed();
    PGconn *raw = th_connect(th_db_conninfo());
    char *msg;

    add_account(raw, "111111111111", EXTERNAL_ID);
    add_account(raw, "333333333333", "an-external-id-of-its-own");
    assert_clean(db);
    add_account(raw, "222222222222", EXTERNAL_ID);
    msg = only(db, "shared_external_id", SPOTDB_DOCTOR_WARNING);
    ck_assert_msg(strstr(msg, "1 external id is shared by 2 accounts"), "%s",
                  msg);
    ck_assert(strstr(msg, "111111111111, 222222222222") != NULL);
    ck_assert(strstr(msg, "333333333333") == NULL);
    ck_assert(strstr(msg, "an-external-id") == NULL);
    free(msg);
    /* two groups */
    add_account(raw, "444444444444", "an-external-id-of-its-own");
    add_account(raw, "555555555555", EXTERNAL_ID);
    msg = only(db, "shared_external_id", SPOTDB_DOCTOR_WARNING);
    ck_assert_msg(strstr(msg, "2 external ids are shared by 5 accounts"), "%s",
                  msg);
    ck_assert(strstr(msg, "111111111111, 222222222222, 555555555555; "
                          "333333333333, 444444444444") != NULL);
    free(msg);
    PQfinish(raw);
    spotdb_close(db);
}
END_TEST

/* ---- schema ------------------------------------------------------------ */

START_TEST(changed_column_default_is_drift)
{
    spotdb_db *db = open_fixed();
    PGconn *raw = th_connect(th_db_conninfo());
    char *msg;

    assert_clean(db);
    th_exec(raw, "ALTER TABLE accounts ALTER COLUMN region SET DEFAULT "
                 "'us-east-1'");
    msg = only(db, "schema_drift", SPOTDB_DOCTOR_WARNING);
    ck_assert_msg(strstr(msg, "0001_initial.sql to 0003_") != NULL, "%s", msg);
    ck_assert(strstr(msg, "2 differences") != NULL);
    ck_assert(strstr(msg, "DEFAULT 'us-east-1'") != NULL);
    ck_assert(strstr(msg, "DEFAULT 'ap-south-1'") != NULL);
    free(msg);
    assert_no_probe_left(raw);
    th_exec(raw, "ALTER TABLE accounts ALTER COLUMN region SET DEFAULT "
                 "'ap-south-1'");
    assert_clean(db);
    PQfinish(raw);
    spotdb_close(db);
}
END_TEST

/* Tenant isolation tampered with: each change is drift, named. */
START_TEST(weakened_row_security_is_drift)
{
    static const struct {
        const char *sql, *undo, *expect;
    } cases[] = {
        { "ALTER TABLE accounts NO FORCE ROW LEVEL SECURITY",
          "ALTER TABLE accounts FORCE ROW LEVEL SECURITY",
          "missing or different: row security accounts: enabled forced" },
        { "ALTER POLICY instances_tenant ON instances USING (true)",
          "ALTER POLICY instances_tenant ON instances USING "
          "((SELECT spotdb_scope_role()) = 'admin' OR EXISTS (SELECT 1 "
          "FROM accounts a WHERE a.id = instances.account_id))",
          "unexpected: policy instances: instances_tenant permissive ALL "
          "TO spotdb_app USING (true)" },
        { "ALTER VIEW v_recent_experiments RESET (security_invoker)",
          "ALTER VIEW v_recent_experiments SET (security_invoker = true)",
          "missing or different: options v_recent_experiments: "
          "security_invoker=true" },
    };
    spotdb_db *db = open_fixed();
    PGconn *raw = th_connect(th_db_conninfo());
    char *msg;

    assert_clean(db);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        th_exec(raw, cases[i].sql);
        msg = only(db, "schema_drift", SPOTDB_DOCTOR_WARNING);
        ck_assert_msg(strstr(msg, cases[i].expect) != NULL, "%s", msg);
        free(msg);
        th_exec(raw, cases[i].undo);
        assert_clean(db);
    }
    PQfinish(raw);
    spotdb_close(db);
}
END_TEST

START_TEST(hand_made_index_is_drift)
{
    spotdb_db *db = open_fixed();
    PGconn *raw = th_connect(th_db_conninfo());
    char *msg;

    th_exec(raw, "CREATE INDEX hand_made_idx ON users (full_name)");
    msg = only(db, "schema_drift", SPOTDB_DOCTOR_WARNING);
    ck_assert_msg(strstr(msg, "1 difference; unexpected: index users: "
                              "CREATE INDEX hand_made_idx") != NULL, "%s", msg);
    free(msg);
    assert_no_probe_left(raw);
    /* a table of its own is not the migrations' business */
    th_exec(raw, "DROP INDEX hand_made_idx");
    th_exec(raw, "CREATE TABLE local_notes (id int PRIMARY KEY)");
    assert_clean(db);
    PQfinish(raw);
    spotdb_close(db);
}
END_TEST

START_TEST(tampered_checksum_is_found)
{
    spotdb_db *db = open_fixed();
    PGconn *raw = th_connect(th_db_conninfo());
    char *msg;

    th_exec(raw, "UPDATE spotdb_schema_migrations SET checksum = "
                 "repeat('0', 64) WHERE version = 1");
    msg = only(db, "migration_changed", SPOTDB_DOCTOR_ERROR);
    ck_assert_msg(strstr(msg, "0001_initial.sql") != NULL, "%s", msg);
    free(msg);
    PQfinish(raw);
    spotdb_close(db);
}
END_TEST

/* Version 2 forgotten: pending, and its index is then drift against what
 * 0001 alone builds.  A version from the future: unknown, and no
 * comparison (its changes would all count). */
START_TEST(pending_and_unknown_migrations)
{
    spotdb_db *db = open_fixed();
    PGconn *raw = th_connect(th_db_conninfo());
    spotdb_doctor_report *r;
    const spotdb_doctor_finding *f;

    th_exec(raw, "DELETE FROM spotdb_schema_migrations WHERE version = 3");
    r = doctor(db);
    dump(r);
    ck_assert_uint_eq(r->count, 2);
    ck_assert_ptr_nonnull(f = finding(r, "migration_pending"));
    ck_assert_int_eq(f->severity, SPOTDB_DOCTOR_WARNING);
    ck_assert(strstr(f->message, "1 migration is not applied yet: "
                                 "0003_tenant_isolation") != NULL);
    ck_assert_ptr_nonnull(f = finding(r, "schema_drift"));
    ck_assert_msg(strstr(f->message, "that 0001_initial.sql to "
                                     "0002_experiment_log_paging.sql build: "
                                     "25 differences; unexpected: options "
                                     "v_active_instances: "
                                     "security_invoker=true") &&
                  strstr(f->message, "unexpected: policy accounts: "
                                     "accounts_tenant permissive ALL TO "
                                     "spotdb_app USING "),
                  "%s", f->message);
    spotdb_doctor_report_free(r);

    th_exec(raw, "INSERT INTO spotdb_schema_migrations (version, name, "
                 "checksum, execution_ms) SELECT 9999, 'from_the_future', "
                 "checksum, 0 FROM spotdb_schema_migrations WHERE version = 1");
    r = doctor(db);
    dump(r);
    ck_assert_uint_eq(r->count, 3);
    ck_assert_ptr_nonnull(f = finding(r, "migration_unknown"));
    ck_assert(strstr(f->message, "9999_from_the_future") != NULL);
    ck_assert_ptr_nonnull(f = finding(r, "schema_not_compared"));
    ck_assert_int_eq(f->severity, SPOTDB_DOCTOR_INFO);
    ck_assert_ptr_nonnull(finding(r, "migration_pending"));
    spotdb_doctor_report_free(r);
    PQfinish(raw);
    spotdb_close(db);
}
END_TEST

START_TEST(unversioned_database_is_found)
{
    spotdb_db *db = NULL;
    PGconn *raw = th_connect(th_db_conninfo());
    char *msg;

    /* schema v1 as the original file built it */
    th_exec(raw, "DROP SCHEMA public CASCADE; CREATE SCHEMA public");
    ck_assert_int_eq(th_exec_file_like_psql(raw, th_source_path(
                         "fixtures/v1_by_hand.sql")), 1);
    ck_assert_int_eq(th_open_unchecked(&db, th_db_conninfo()), 0);
    set_admin_password(db, NEW_PASSWORD);
    msg = only(db, "schema_unversioned", SPOTDB_DOCTOR_ERROR);
    ck_assert_msg(strstr(msg, "will adopt it") != NULL, "%s", msg);
    free(msg);
    PQfinish(raw);
    spotdb_close(db);
}
END_TEST

/* ---- a clean database, and what is refused ----------------------------- */

START_TEST(clean_database_has_no_findings)
{
    spotdb_db *db = open_fixed();
    PGconn *raw = th_connect(th_db_conninfo());

    add_account(raw, "111111111111", EXTERNAL_ID);
    assert_clean(db);
    assert_clean(db);
    /* the handle stays usable, outside any transaction */
    ck_assert_int_eq(spotdb_in_transaction(db), 0);
    ck_assert_int_eq(PQtransactionStatus(db->conn), PQTRANS_IDLE);
    th_qeq(raw, "\"$user\", public", "SHOW search_path");
    assert_no_probe_left(raw);
    PQfinish(raw);
    spotdb_close(db);
}
END_TEST

START_TEST(refused_calls)
{
    spotdb_db *db = open_fixed();
    spotdb_doctor_report *r = (spotdb_doctor_report *)1;

    ck_assert_int_eq(spotdb_doctor_run(NULL, db), SPOTDB_EINVAL);
    ck_assert_int_eq(spotdb_doctor_run(&r, NULL), SPOTDB_EINVAL);
    ck_assert_ptr_null(r);
    ck_assert_int_eq(spotdb_begin(db), 0);
    r = (spotdb_doctor_report *)1;
    ck_assert_int_eq(spotdb_doctor_run(&r, db), SPOTDB_EINVAL);
    ck_assert_ptr_null(r);
    ck_assert(strstr(spotdb_errmsg(db), "transaction") != NULL);
    ck_assert_int_eq(spotdb_rollback(db), 0);
    spotdb_doctor_report_free(NULL);
    ck_assert_str_eq(spotdb_doctor_severity_name(SPOTDB_DOCTOR_INFO), "info");
    ck_assert_str_eq(spotdb_doctor_severity_name(SPOTDB_DOCTOR_WARNING),
                     "warning");
    ck_assert_str_eq(spotdb_doctor_severity_name(SPOTDB_DOCTOR_ERROR), "error");
    ck_assert_str_eq(spotdb_doctor_severity_name(0), "unknown");
    spotdb_close(db);
}
END_TEST

/* A role that may read the tracking table and accounts but not users, and
 * may not create a schema: those checks become findings, the others run. */
START_TEST(missing_privileges_are_findings)
{
    spotdb_db *db = open_fixed(), *ro = NULL;
    PGconn *raw = th_connect(th_db_conninfo());
    spotdb_doctor_report *r;
    const spotdb_doctor_finding *f;
    char role[80], sql[512], *settings;

    spotdb_close(db);
    snprintf(role, sizeof role, "%s_ro", th_db_name());
    /* BYPASSRLS: under 0003's row-level security a role without a policy
     * sees no account, so no shared external id either */
    snprintf(sql, sizeof sql, "CREATE ROLE %s LOGIN BYPASSRLS; GRANT SELECT "
             "ON spotdb_schema_migrations, accounts TO %s", role, role);
    th_exec(raw, sql);
    add_account(raw, "111111111111", EXTERNAL_ID);
    add_account(raw, "222222222222", EXTERNAL_ID);
    settings = malloc(strlen(th_db_conninfo()) + sizeof role + 8);
    sprintf(settings, "%s user=%s", th_db_conninfo(), role);
    ck_assert_int_eq(th_open_unchecked(&ro, settings), 0);
    r = doctor(ro);
    dump(r);
    ck_assert_uint_eq(r->count, 3);
    ck_assert_ptr_nonnull(f = finding(r, "check_failed"));
    ck_assert_int_eq(f->severity, SPOTDB_DOCTOR_WARNING);
    ck_assert(strstr(f->message, "default admin password: not checked") !=
              NULL);
    ck_assert(strstr(f->message, "permission denied") != NULL);
    ck_assert_ptr_nonnull(finding(r, "shared_external_id"));
    ck_assert_ptr_nonnull(f = finding(r, "schema_not_compared"));
    ck_assert_int_eq(f->severity, SPOTDB_DOCTOR_INFO);
    ck_assert(strstr(f->message, "CREATE on the database") != NULL);
    spotdb_doctor_report_free(r);
    spotdb_close(ro);
    free(settings);
    snprintf(sql, sizeof sql, "DROP OWNED BY %s; DROP ROLE %s", role, role);
    th_exec(raw, sql);
    PQfinish(raw);
}
END_TEST

static Suite *doctor_suite(void)
{
    Suite *s = suite_create("doctor");
    TCase *tc = tcase_create("checks");

    tcase_add_checked_fixture(tc, th_setup_migrated_db, th_teardown_db);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, seeded_admin_password_is_found);
    tcase_add_test(tc, shared_external_id_names_accounts_not_the_id);
    tcase_add_test(tc, changed_column_default_is_drift);
    tcase_add_test(tc, weakened_row_security_is_drift);
    tcase_add_test(tc, hand_made_index_is_drift);
    tcase_add_test(tc, tampered_checksum_is_found);
    tcase_add_test(tc, pending_and_unknown_migrations);
    tcase_add_test(tc, unversioned_database_is_found);
    tcase_add_test(tc, clean_database_has_no_findings);
    tcase_add_test(tc, refused_calls);
    tcase_add_test(tc, missing_privileges_are_findings);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return th_run(doctor_suite());
}
