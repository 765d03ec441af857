/*
 * Tenant isolation enforced by the database (migration 0003, scope.h):
 *
 * 1. raw SQL as the application role: without an acting user no row of
 *    any table or view; with one (set_config(..., true) in a transaction)
 *    only that tenant's rows, and the setting is gone after the
 *    transaction;
 * 2. scoped handles as user, lab and admin: what each sees, gets, changes
 *    and may create, with the codes (ENOTFOUND for rows of others, EDENIED
 *    for writes the policies refuse), through lists, counts, gets, views,
 *    streams, insert_many and transactions;
 * 3. the scope itself: refused on a superuser, checked as a UUID, changed
 *    inside a transaction, cleared by the pool, kept through
 *    authenticate, and never left in the server session;
 * 4. the service role: everything unscoped, a tenant's rights scoped.
 *
 * The randomized run over many operations is test_tenancy_random.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "internal.h"

/* Login roles of this suite (roles are the cluster's: shared by the
 * parallel tests, created once, never dropped). */
#define APP_ROLE "spotdb_tenancy_app"
#define SVC_ROLE "spotdb_tenancy_svc"

/* Tenants: two users, a lab user, an admin, an inactive user. */
#define U1 "11111111-1111-4111-8111-111111111111"
#define U2 "22222222-2222-4222-8222-222222222222"
#define LAB "33333333-3333-4333-8333-333333333333"
#define ADM "44444444-4444-4444-8444-444444444444"
#define OFF "55555555-5555-4555-8555-555555555555"

/* Accounts: U1 PROD + LAB, U2 LAB, LAB's PROD + LAB; one instance (its
 * id the account's with a b for the a) and two logs under each. */
#define A1P "a1000000-0000-4000-8000-000000000001"
#define A1L "a1000000-0000-4000-8000-000000000002"
#define A2L "a2000000-0000-4000-8000-000000000001"
#define A3P "a3000000-0000-4000-8000-000000000001"
#define A3L "a3000000-0000-4000-8000-000000000002"

static PGconn *admin;

static void add_account(const char *id, const char *user, const char *num,
                        const char *env)
{
    char sql[1024];

    snprintf(sql, sizeof sql,
             "INSERT INTO accounts (id, user_id, account_id, account_name, "
             "environment_type, role_arn, external_id) VALUES ('%s', '%s', "
             "'%s', 'acct %s', '%s', 'arn:aws:iam::%s:role/x', 'ext-%s');"
             "INSERT INTO instances (id, account_id, instance_id, "
             "instance_type, availability_zone) VALUES ('b%s', '%s', "
             "'i-%s', 'c5.large', 'ap-south-1a');"
             "INSERT INTO experiment_logs (instance_id, decision) VALUES "
             "('b%s', 'STAY'), ('b%s', 'SWITCH')",
             id, user, num, num, env, num, num, id + 1, id, num, id + 1,
             id + 1);
    th_exec(admin, sql);
}

static void setup(void)
{
    th_setup_migrated_db();
    admin = th_connect(th_db_conninfo());
    th_login_role(APP_ROLE, "spotdb_app");
    th_login_role(SVC_ROLE, "spotdb_service");
    th_exec(admin,
            "INSERT INTO users (id, email, username, hashed_password, role, "
            "is_active) VALUES "
            "('" U1 "', 'u1@t.example', 'u1', 'x', 'user', true),"
            "('" U2 "', 'u2@t.example', 'u2', 'x', 'user', true),"
            "('" LAB "', 'lab@t.example', 'lab', 'x', 'lab', true),"
            "('" ADM "', 'adm@t.example', 'adm', 'x', 'admin', true),"
            "('" OFF "', 'off@t.example', 'off', 'x', 'admin', false)");
    add_account(A1P, U1, "100000000001", "PROD");
    add_account(A1L, U1, "100000000002", "LAB");
    add_account(A2L, U2, "200000000001", "LAB");
    add_account(A3P, LAB, "300000000001", "PROD");
    add_account(A3L, LAB, "300000000002", "LAB");
    th_exec(admin, "INSERT INTO model_registry (name, version) VALUES "
                   "('m', 'v1')");
}

static void teardown(void)
{
    PQfinish(admin);
    admin = NULL;
    th_teardown_db();
}

static spotdb_db *open_as(const char *role)
{
    char *ci = th_conninfo_as(role);
    spotdb_db *db = NULL;
    int rc = spotdb_open(&db, ci, NULL);

    ck_assert_msg(rc == 0, "open as %s: %s", role, spotdb_last_errmsg());
    free(ci);
    return db;
}

static spotdb_db *scoped(const char *role, const char *user)
{
    spotdb_db *db = open_as(role);

    ck_assert_msg(spotdb_set_scope(db, user) == 0, "%s", spotdb_errmsg(db));
    return db;
}

static int64_t count_of(spotdb_db *db,
                        int (*fn)(int64_t *, spotdb_db *, const void *))
{
    int64_t n = -1;

    ck_assert_msg(fn(&n, db, NULL) == 0, "%s", spotdb_errmsg(db));
    return n;
}

#define COUNT(db, what)                                                      \
    count_of(db, (int (*)(int64_t *, spotdb_db *, const void *))             \
                     spotdb_##what##_count)

/* ---- 1. raw SQL as the application role ------------------------------- */

static const char *const relations[] = {
    "users", "accounts", "instances", "experiment_logs", "model_registry",
    "v_active_instances", "v_recent_experiments",
};

START_TEST(raw_sql_without_a_user_sees_nothing)
{
    char *ci = th_conninfo_as(APP_ROLE);
    PGconn *app = th_connect(ci);
    char sql[128];

    for (size_t i = 0; i < sizeof relations / sizeof *relations; i++) {
        snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", relations[i]);
        ck_assert_msg(th_count(admin, sql) > 0, "%s is empty", relations[i]);
        ck_assert_msg(th_count(app, sql) == 0, "%s: the application role "
                      "without an acting user sees rows", relations[i]);
    }
    /* and the role owns nothing, so it cannot switch the policies off */
    ck_assert_int_eq(th_count(admin, "SELECT count(*) FROM pg_class c "
                              "JOIN pg_roles r ON r.oid = c.relowner "
                              "WHERE r.rolname = '" APP_ROLE "'"), 0);
    ck_assert_ptr_null(PQgetResult(app));
    PGresult *r = PQexec(app, "ALTER TABLE accounts DISABLE ROW LEVEL "
                              "SECURITY");
    ck_assert_str_eq(PQresultErrorField(r, PG_DIAG_SQLSTATE), "42501");
    PQclear(r);
    r = PQexec(app, "INSERT INTO accounts (user_id, account_id, "
                    "account_name, role_arn, external_id) VALUES ('" U1 "',"
                    " '999999999999', 'x', 'arn:aws:iam::999999999999:role/x'"
                    ", 'e')");
    ck_assert_str_eq(PQresultErrorField(r, PG_DIAG_SQLSTATE), "42501");
    PQclear(r);
    PQfinish(app);
    free(ci);
}
END_TEST

START_TEST(raw_sql_as_a_user_sees_their_rows_only)
{
    char *ci = th_conninfo_as(APP_ROLE);
    PGconn *app = th_connect(ci);

    th_exec(app, "BEGIN");
    th_exec(app, "SELECT set_config('spotdb.user_id', '" U1 "', true)");
    ck_assert_int_eq(th_count(app, "SELECT count(*) FROM users"), 1);
    ck_assert_int_eq(th_count(app, "SELECT count(*) FROM accounts WHERE "
                              "user_id = '" U1 "'"), 2);
    ck_assert_int_eq(th_count(app, "SELECT count(*) FROM accounts"), 2);
    ck_assert_int_eq(th_count(app, "SELECT count(*) FROM instances"), 2);
    ck_assert_int_eq(th_count(app, "SELECT count(*) FROM experiment_logs"),
                     4);
    ck_assert_int_eq(th_count(app, "SELECT count(*) FROM model_registry"), 1);
    ck_assert_int_eq(th_count(app, "SELECT count(*) FROM v_active_instances"),
                     2);
    ck_assert_int_eq(th_count(app, "SELECT count(DISTINCT aws_account_id) "
                              "FROM v_recent_experiments"), 2);
    /* asking for another tenant's rows by id finds nothing */
    ck_assert_int_eq(th_count(app, "SELECT count(*) FROM accounts WHERE "
                              "id = '" A2L "'"), 0);
    ck_assert_int_eq(th_count(app, "SELECT count(*) FROM experiment_logs e "
                              "JOIN instances i ON i.id = e.instance_id "
                              "WHERE i.account_id = '" A3P "'"), 0);
    th_exec(app, "UPDATE accounts SET account_name = 'taken' WHERE id = '"
                 A2L "'");
    th_exec(app, "COMMIT");
    /* the setting was transaction-local */
    ck_assert_int_eq(th_count(app, "SELECT count(*) FROM accounts"), 0);
    ck_assert_int_eq(th_count(admin, "SELECT count(*) FROM accounts WHERE "
                              "account_name = 'taken'"), 0);
    PQfinish(app);
    free(ci);
}
END_TEST

START_TEST(a_mangled_setting_fails_closed)
{
    char *ci = th_conninfo_as(APP_ROLE);
    PGconn *app = th_connect(ci);
    PGresult *r;

    th_exec(app, "BEGIN");
    th_exec(app, "SELECT set_config('spotdb.user_id', 'x'' OR true', true)");
    r = PQexec(app, "SELECT count(*) FROM accounts");
    ck_assert_int_eq(PQresultStatus(r), PGRES_FATAL_ERROR);
    ck_assert_str_eq(PQresultErrorField(r, PG_DIAG_SQLSTATE), "22P02");
    PQclear(r);
    th_exec(app, "ROLLBACK");
    /* an inactive user, even an admin, sees nothing */
    th_exec(app, "BEGIN");
    th_exec(app, "SELECT set_config('spotdb.user_id', '" OFF "', true)");
    for (size_t i = 0; i < sizeof relations / sizeof *relations; i++) {
        char sql[128];

        snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", relations[i]);
        ck_assert_msg(th_count(app, sql) == 0, "%s seen by an inactive "
                      "user", relations[i]);
    }
    th_exec(app, "ROLLBACK");
    PQfinish(app);
    free(ci);
}
END_TEST

/* ---- 2. scoped handles ---------------------------------------------------- */

START_TEST(a_user_sees_and_changes_only_their_own)
{
    spotdb_db *db = scoped(APP_ROLE, U1);
    spotdb_account *a = NULL, in = { 0 };
    spotdb_account_rows *page = NULL;
    spotdb_instance_rows *inst = NULL;
    spotdb_active_instance_rows *act = NULL;
    spotdb_recent_experiment_rows *rec = NULL;

    ck_assert_str_eq(spotdb_scope(db), U1);
    ck_assert_int_eq(COUNT(db, user), 1);
    ck_assert_int_eq(COUNT(db, account), 2);
    ck_assert_int_eq(COUNT(db, instance), 2);
    ck_assert_int_eq(COUNT(db, experiment_log), 4);
    ck_assert_int_eq(COUNT(db, model), 1);
    ck_assert_int_eq(spotdb_account_list(&page, db, NULL, NULL, 0), 0);
    ck_assert_uint_eq(page->count, 2);
    for (size_t i = 0; i < page->count; i++)
        ck_assert_str_eq(page->items[i].user_id, U1);
    spotdb_account_rows_free(page);
    ck_assert_int_eq(spotdb_instance_list(&inst, db, NULL, NULL, 0), 0);
    for (size_t i = 0; i < inst->count; i++)
        ck_assert(strcmp(inst->items[i].account_id, A1P) == 0 ||
                  strcmp(inst->items[i].account_id, A1L) == 0);
    spotdb_instance_rows_free(inst);
    ck_assert_int_eq(spotdb_active_instance_list(&act, db, NULL, 0), 0);
    ck_assert_uint_eq(act->count, 2);
    for (size_t i = 0; i < act->count; i++)
        ck_assert_str_eq(act->items[i].user_email, "u1@t.example");
    spotdb_active_instance_rows_free(act);
    ck_assert_int_eq(spotdb_recent_experiment_list(&rec, db, NULL, 0), 0);
    ck_assert_uint_eq(rec->count, 4);
    for (size_t i = 0; i < rec->count; i++)
        ck_assert(strncmp(rec->items[i].aws_account_id, "1000", 4) == 0);
    spotdb_recent_experiment_rows_free(rec);

    /* another tenant's rows are not there */
    ck_assert_int_eq(spotdb_account_get(&a, db, A2L), SPOTDB_ENOTFOUND);
    ck_assert_int_eq(spotdb_account_get_by_account_id(&a, db,
                                                      "200000000001"),
                     SPOTDB_ENOTFOUND);
    in.account_name = "mine now";
    ck_assert_int_eq(spotdb_account_update(&a, db, A2L, &in,
                                           SPOTDB_ACCOUNT_ACCOUNT_NAME),
                     SPOTDB_ENOTFOUND);
    ck_assert_int_eq(spotdb_account_delete(db, A2L), SPOTDB_ENOTFOUND);
    ck_assert_int_eq(spotdb_user_delete(db, U2), SPOTDB_ENOTFOUND);

    /* an account cannot be created for, or given to, someone else */
    memcpy(in.user_id, U2, sizeof in.user_id);
    in.account_id = "100000000009";
    in.account_name = "gift";
    in.role_arn = "arn:aws:iam::100000000009:role/x";
    in.external_id = "ext-gift";
    ck_assert_int_eq(spotdb_account_create(&a, db, &in,
                                           SPOTDB_ACCOUNT_USER_ID |
                                           SPOTDB_ACCOUNT_ACCOUNT_ID |
                                           SPOTDB_ACCOUNT_ACCOUNT_NAME |
                                           SPOTDB_ACCOUNT_ROLE_ARN |
                                           SPOTDB_ACCOUNT_EXTERNAL_ID),
                     SPOTDB_EDENIED);
    ck_assert_ptr_null(a);
    ck_assert_msg(strstr(spotdb_errmsg(db), "row-level security"), "%s",
                  spotdb_errmsg(db));
    ck_assert_int_eq(spotdb_account_update(&a, db, A1L, &in,
                                           SPOTDB_ACCOUNT_USER_ID),
                     SPOTDB_EDENIED);
    /* their own: yes, PROD included */
    memcpy(in.user_id, U1, sizeof in.user_id);
    in.environment_type = "PROD";
    ck_assert_int_eq(spotdb_account_create(&a, db, &in,
                                           SPOTDB_ACCOUNT_USER_ID |
                                           SPOTDB_ACCOUNT_ACCOUNT_ID |
                                           SPOTDB_ACCOUNT_ACCOUNT_NAME |
                                           SPOTDB_ACCOUNT_ENVIRONMENT_TYPE |
                                           SPOTDB_ACCOUNT_ROLE_ARN |
                                           SPOTDB_ACCOUNT_EXTERNAL_ID), 0);
    spotdb_account_free(a);
    ck_assert_int_eq(th_count(admin, "SELECT count(*) FROM accounts WHERE "
                              "user_id = '" U2 "'"), 1);
    ck_assert_int_eq(th_count(admin, "SELECT count(*) FROM accounts WHERE "
                              "user_id = '" U1 "'"), 3);
    ck_assert_int_eq(th_count(admin, "SELECT count(*) FROM accounts WHERE "
                              "account_name IN ('mine now', 'gift')"), 1);
    spotdb_close(db);
}
END_TEST

START_TEST(a_user_cannot_promote_themselves_nor_touch_models)
{
    spotdb_db *db = scoped(APP_ROLE, U1);
    spotdb_user *u = NULL, uin = { 0 };
    spotdb_model *m = NULL, min = { 0 };

    uin.full_name = "Me";
    ck_assert_int_eq(spotdb_user_update(&u, db, U1, &uin,
                                        SPOTDB_USER_FULL_NAME), 0);
    spotdb_user_free(u);
    uin.role = "admin";
    ck_assert_int_eq(spotdb_user_update(&u, db, U1, &uin, SPOTDB_USER_ROLE),
                     SPOTDB_EDENIED);
    ck_assert_int_eq(th_count(admin, "SELECT count(*) FROM users WHERE "
                              "id = '" U1 "' AND role = 'user'"), 1);
    min.name = "mine";
    min.version = "v9";
    ck_assert_int_eq(spotdb_model_create(&m, db, &min, SPOTDB_MODEL_NAME |
                                         SPOTDB_MODEL_VERSION),
                     SPOTDB_EDENIED);
    ck_assert_int_eq(th_count(admin, "SELECT count(*) FROM model_registry"),
                     1);
    spotdb_close(db);
}
END_TEST

START_TEST(lab_sees_lab_accounts_only)
{
    spotdb_db *db = scoped(APP_ROLE, LAB);
    spotdb_account *a = NULL, in = { 0 };
    spotdb_model *m = NULL, min = { 0 };
    uint64_t f = SPOTDB_ACCOUNT_USER_ID | SPOTDB_ACCOUNT_ACCOUNT_ID |
                 SPOTDB_ACCOUNT_ACCOUNT_NAME |
                 SPOTDB_ACCOUNT_ENVIRONMENT_TYPE | SPOTDB_ACCOUNT_ROLE_ARN |
                 SPOTDB_ACCOUNT_EXTERNAL_ID;

    ck_assert_int_eq(COUNT(db, account), 1);
    ck_assert_int_eq(COUNT(db, instance), 1);
    ck_assert_int_eq(COUNT(db, experiment_log), 2);
    ck_assert_int_eq(spotdb_account_get(&a, db, A3P), SPOTDB_ENOTFOUND);
    ck_assert_int_eq(spotdb_account_get(&a, db, A3L), 0);
    spotdb_account_free(a);
    memcpy(in.user_id, LAB, sizeof in.user_id);
    in.account_id = "300000000009";
    in.account_name = "prod try";
    in.environment_type = "PROD";
    in.role_arn = "arn:aws:iam::300000000009:role/x";
    in.external_id = "ext-try";
    ck_assert_int_eq(spotdb_account_create(&a, db, &in, f), SPOTDB_EDENIED);
    ck_assert_int_eq(spotdb_account_update(&a, db, A3L, &in,
                                           SPOTDB_ACCOUNT_ENVIRONMENT_TYPE),
                     SPOTDB_EDENIED);
    in.environment_type = "LAB";
    ck_assert_int_eq(spotdb_account_create(&a, db, &in, f), 0);
    spotdb_account_free(a);
    ck_assert_int_eq(th_count(admin, "SELECT count(*) FROM accounts WHERE "
                              "user_id = '" LAB "' AND environment_type = "
                              "'PROD'"), 1);
    /* R&D registers models */
    min.name = "lab-model";
    min.version = "v0";
    ck_assert_int_eq(spotdb_model_create(&m, db, &min, SPOTDB_MODEL_NAME |
                                         SPOTDB_MODEL_VERSION), 0);
    spotdb_model_free(m);
    spotdb_close(db);
}
END_TEST

START_TEST(admin_sees_everything)
{
    spotdb_db *db = scoped(APP_ROLE, ADM);
    spotdb_account *a = NULL;

    ck_assert_int_eq(COUNT(db, user), 6);   /* with 0001's admin */
    ck_assert_int_eq(COUNT(db, account), 5);
    ck_assert_int_eq(COUNT(db, instance), 5);
    ck_assert_int_eq(COUNT(db, experiment_log), 10);
    ck_assert_int_eq(spotdb_account_get(&a, db, A2L), 0);
    spotdb_account_free(a);
    ck_assert_int_eq(spotdb_user_delete(db, OFF), 0);
    spotdb_close(db);
}
END_TEST

START_TEST(unscoped_application_handle_sees_nothing)
{
    spotdb_db *db = open_as(APP_ROLE);
    spotdb_active_instance_rows *act = NULL;

    ck_assert_ptr_null(spotdb_scope(db));
    ck_assert_int_eq(COUNT(db, user), 0);
    ck_assert_int_eq(COUNT(db, account), 0);
    ck_assert_int_eq(COUNT(db, instance), 0);
    ck_assert_int_eq(COUNT(db, experiment_log), 0);
    ck_assert_int_eq(COUNT(db, model), 0);
    ck_assert_int_eq(spotdb_active_instance_list(&act, db, NULL, 0), 0);
    ck_assert_uint_eq(act->count, 0);
    spotdb_active_instance_rows_free(act);
    /* a scope, then none again */
    ck_assert_int_eq(spotdb_set_scope(db, U2), 0);
    ck_assert_int_eq(COUNT(db, account), 1);
    ck_assert_int_eq(spotdb_set_scope(db, NULL), 0);
    ck_assert_ptr_null(spotdb_scope(db));
    ck_assert_int_eq(COUNT(db, account), 0);
    spotdb_close(db);
}
END_TEST

static int count_rows(const spotdb_instance *row, void *payload)
{
    (void)row;
    ++*(int *)payload;
    return 0;
}

START_TEST(streams_bulk_and_transactions_keep_the_scope)
{
    spotdb_db *db = scoped(APP_ROLE, U2);
    spotdb_instance rows[3];
    int64_t bad = -2;
    int n = 0;

    ck_assert_int_eq(spotdb_instance_stream(db, NULL, count_rows, &n), 0);
    ck_assert_int_eq(n, 1);
    /* insert_many: under their account, all or nothing */
    memset(rows, 0, sizeof rows);
    for (int i = 0; i < 3; i++) {
        memcpy(rows[i].account_id, A2L, sizeof rows[i].account_id);
        rows[i].instance_type = "t3.micro";
        rows[i].availability_zone = "ap-south-1b";
    }
    rows[0].instance_id = "i-00000000";
    rows[1].instance_id = "i-00000001";
    rows[2].instance_id = "i-00000002";
    ck_assert_msg(spotdb_instance_insert_many(db, rows, 3,
                     SPOTDB_INSTANCE_ACCOUNT_ID | SPOTDB_INSTANCE_INSTANCE_ID |
                     SPOTDB_INSTANCE_INSTANCE_TYPE |
                     SPOTDB_INSTANCE_AVAILABILITY_ZONE, NULL, &bad) ==
                     0, "%s", spotdb_errmsg(db));
    ck_assert_int_eq(COUNT(db, instance), 4);
    rows[0].instance_id = "i-00000003";
    rows[1].instance_id = "i-00000004";
    memcpy(rows[1].account_id, A1P, sizeof rows[1].account_id);
    rows[2].instance_id = "i-00000005";
    ck_assert_int_eq(spotdb_instance_insert_many(db, rows, 3,
                     SPOTDB_INSTANCE_ACCOUNT_ID | SPOTDB_INSTANCE_INSTANCE_ID |
                     SPOTDB_INSTANCE_INSTANCE_TYPE |
                     SPOTDB_INSTANCE_AVAILABILITY_ZONE, NULL, &bad),
                     SPOTDB_EDENIED);
    ck_assert_int_eq(th_count(admin, "SELECT count(*) FROM instances WHERE "
                              "instance_id LIKE 'i-0000000_'"), 3);
    ck_assert_int_eq(spotdb_in_transaction(db), 0);

    /* a transaction: the scope holds, and may change inside it */
    ck_assert_int_eq(spotdb_begin(db), 0);
    ck_assert_int_eq(COUNT(db, account), 1);
    ck_assert_int_eq(spotdb_set_scope(db, U1), 0);
    ck_assert_int_eq(COUNT(db, account), 2);
    ck_assert_int_eq(spotdb_commit(db), 0);
    ck_assert_int_eq(COUNT(db, account), 2);
    spotdb_close(db);
}
END_TEST

/* The backend of the handle under test dies after its second row insert:
 * the trace hook kills it and waits until it is gone. */
typedef struct killer {
    PGconn *admin;
    int pid, inserts;
} killer;

static void kill_after_two_inserts(const spotdb_trace_event *e, void *arg)
{
    killer *k = arg;
    char sql[128];

    if (strcmp(e->name, "creating instance") != 0 || ++k->inserts != 2)
        return;
    snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(%d, 5000)::int",
             k->pid);
    ck_assert_int_eq(th_count(k->admin, sql), 1);
}

/* Row by row under row-level security is all or nothing even when the
 * connection dies midway: no reconnect carries on in autocommit. */
START_TEST(bulk_rows_survive_no_lost_connection)
{
    spotdb_db *db = scoped(APP_ROLE, U2);
    killer k = { admin, PQbackendPID(db->conn), 0 };
    spotdb_instance rows[4];
    int rc;

    memset(rows, 0, sizeof rows);
    for (int i = 0; i < 4; i++) {
        static const char *const ids[4] = { "i-0000000a", "i-0000000b",
                                            "i-0000000c", "i-0000000d" };

        memcpy(rows[i].account_id, A2L, sizeof rows[i].account_id);
        rows[i].instance_id = ids[i];
        rows[i].instance_type = "t3.micro";
        rows[i].availability_zone = "ap-south-1b";
    }
    spotdb_set_trace(db, kill_after_two_inserts, &k);
    rc = spotdb_instance_insert_many(db, rows, 4,
             SPOTDB_INSTANCE_ACCOUNT_ID | SPOTDB_INSTANCE_INSTANCE_ID |
             SPOTDB_INSTANCE_INSTANCE_TYPE |
             SPOTDB_INSTANCE_AVAILABILITY_ZONE, NULL, NULL);
    spotdb_set_trace(db, NULL, NULL);
    ck_assert_msg(rc == SPOTDB_ECONN, "rc %d: %s", rc, spotdb_errmsg(db));
    ck_assert_int_eq(k.inserts, 3);     /* two done, the third failed */
    ck_assert_int_eq(th_count(admin, "SELECT count(*) FROM instances WHERE "
                              "instance_id LIKE 'i-0000000_'"), 0);
    /* the handle goes on, acting for the same user */
    ck_assert_int_eq(spotdb_in_transaction(db), 0);
    ck_assert_int_eq(COUNT(db, account), 1);
    spotdb_close(db);
}
END_TEST

/* ---- 3. the scope itself ------------------------------------------------ */

START_TEST(scope_refused_where_it_would_not_hold)
{
    spotdb_db *db = th_open();          /* the superuser */

    ck_assert_int_eq(spotdb_set_scope(db, U1), SPOTDB_EINVAL);
    ck_assert_msg(strstr(spotdb_errmsg(db), "BYPASSRLS"), "%s",
                  spotdb_errmsg(db));
    ck_assert_ptr_null(spotdb_scope(db));
    spotdb_close(db);

    db = open_as(APP_ROLE);
    ck_assert_int_eq(spotdb_set_scope(db, "u1"), SPOTDB_EINVAL);
    ck_assert_msg(strstr(spotdb_errmsg(db), "user_id"), "%s",
                  spotdb_errmsg(db));
    ck_assert_int_eq(spotdb_set_scope(db, "x' OR '1'='1"), SPOTDB_EINVAL);
    ck_assert_ptr_null(spotdb_scope(db));
    spotdb_close(db);

    /* without migration 0003 there is nothing to enforce it */
    th_exec(admin, "DROP FUNCTION spotdb_scope_user() CASCADE");
    db = open_as(APP_ROLE);
    ck_assert_int_eq(spotdb_set_scope(db, U1), SPOTDB_ESCHEMA);
    spotdb_close(db);
}
END_TEST

START_TEST(the_setting_never_outlives_a_call)
{
    spotdb_db *db = scoped(APP_ROLE, U1);
    PGresult *r;

    ck_assert_int_eq(COUNT(db, account), 2);
    r = PQexec(db->conn, "SELECT coalesce(current_setting('spotdb.user_id', "
                         "true), '')");
    ck_assert_int_eq(PQresultStatus(r), PGRES_TUPLES_OK);
    ck_assert_str_eq(PQgetvalue(r, 0, 0), "");
    PQclear(r);
    spotdb_close(db);
}
END_TEST

START_TEST(authenticate_as_application_role)
{
    spotdb_db *db = open_as(APP_ROLE);
    spotdb_user *u = NULL;
    spotdb_db *sup = th_open();

    ck_assert_int_eq(spotdb_user_set_password(sup, U2, "right horse"), 0);
    spotdb_close(sup);
    ck_assert_int_eq(spotdb_set_scope(db, U1), 0);
    ck_assert_int_eq(spotdb_user_authenticate(&u, db, "u2", "wrong"),
                     SPOTDB_EAUTH);
    ck_assert_int_eq(spotdb_user_authenticate(&u, db, "u2@t.example",
                                              "right horse"), 0);
    ck_assert_str_eq(u->id, U2);
    ck_assert(!(u->nulls & SPOTDB_USER_LAST_LOGIN));
    spotdb_user_free(u);
    ck_assert_str_eq(spotdb_scope(db), U1);
    ck_assert_int_eq(COUNT(db, account), 2);
    ck_assert_int_eq(th_count(admin, "SELECT count(*) FROM users WHERE "
                              "last_login IS NOT NULL"), 1);
    /* inside a transaction too */
    ck_assert_int_eq(spotdb_begin(db), 0);
    ck_assert_int_eq(spotdb_user_authenticate(&u, db, "u2", "right horse"),
                     0);
    spotdb_user_free(u);
    ck_assert_int_eq(COUNT(db, account), 2);
    ck_assert_int_eq(spotdb_commit(db), 0);
    spotdb_close(db);
}
END_TEST

START_TEST(the_pool_forgets_the_scope)
{
    char *ci = th_conninfo_as(APP_ROLE);
    spotdb_pool_options o;
    spotdb_pool *p = NULL;
    spotdb_db *db = NULL;

    ck_assert_int_eq(spotdb_pool_options_init(&o, SPOTDB_POOL_OPTIONS_VERSION),
                     0);
    o.max_size = 1;
    ck_assert_int_eq(spotdb_pool_open(&p, ci, &o), 0);
    ck_assert_int_eq(spotdb_pool_acquire(p, &db, SPOTDB_POOL_WAIT_DEFAULT), 0);
    ck_assert_int_eq(spotdb_set_scope(db, U1), 0);
    ck_assert_int_eq(COUNT(db, account), 2);
    ck_assert_int_eq(spotdb_pool_release(p, db), 0);
    ck_assert_int_eq(spotdb_pool_acquire(p, &db, SPOTDB_POOL_WAIT_DEFAULT), 0);
    ck_assert_ptr_null(spotdb_scope(db));
    ck_assert_int_eq(COUNT(db, account), 0);
    ck_assert_int_eq(spotdb_pool_release(p, db), 0);
    ck_assert_int_eq(spotdb_pool_close(p), 0);
    free(ci);
}
END_TEST

/* ---- 4. the service role -------------------------------------------------- */

START_TEST(service_role_sees_all_unless_acting)
{
    spotdb_db *db = open_as(SVC_ROLE);

    ck_assert_int_eq(COUNT(db, account), 5);
    ck_assert_int_eq(COUNT(db, experiment_log), 10);
    ck_assert_int_eq(spotdb_set_scope(db, LAB), 0);
    ck_assert_int_eq(COUNT(db, account), 1);
    ck_assert_int_eq(COUNT(db, user), 1);
    ck_assert_int_eq(spotdb_set_scope(db, ""), 0);
    ck_assert_int_eq(COUNT(db, user), 6);
    spotdb_close(db);
}
END_TEST

static Suite *tenancy_suite(void)
{
    Suite *s = suite_create("tenancy");
    TCase *tc = tcase_create("pg");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, raw_sql_without_a_user_sees_nothing);
    tcase_add_test(tc, raw_sql_as_a_user_sees_their_rows_only);
    tcase_add_test(tc, a_mangled_setting_fails_closed);
    tcase_add_test(tc, a_user_sees_and_changes_only_their_own);
    tcase_add_test(tc, a_user_cannot_promote_themselves_nor_touch_models);
    tcase_add_test(tc, lab_sees_lab_accounts_only);
    tcase_add_test(tc, admin_sees_everything);
    tcase_add_test(tc, unscoped_application_handle_sees_nothing);
    tcase_add_test(tc, streams_bulk_and_transactions_keep_the_scope);
    tcase_add_test(tc, bulk_rows_survive_no_lost_connection);
    tcase_add_test(tc, scope_refused_where_it_would_not_hold);
    tcase_add_test(tc, the_setting_never_outlives_a_call);
    tcase_add_test(tc, authenticate_as_application_role);
    tcase_add_test(tc, the_pool_forgets_the_scope);
    tcase_add_test(tc, service_role_sees_all_unless_acting);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return th_run(tenancy_suite());
}
