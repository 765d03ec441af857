/*
 * The two views of schema v1 (v_active_instances, v_recent_experiments),
 * the model-performance report, and the schema handshake of spotdb_open().
 *
 * Fixtures are written with raw SQL through libpq, so that these tests do
 * not depend on the CRUD calls; every expectation is computed by hand
 * from known data (values exact in binary, timestamps chosen on whole
 * seconds) and, where useful, cross-checked with plain SQL.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "internal.h"

/* ---- helpers ------------------------------------------------------------ */

/* A raw connection to the test database, pinned to UTC like the library's
 * sessions, so that now() and timestamp literals mean the same on both. */
static PGconn *raw_connect(void)
{
    PGconn *c = th_connect(th_db_conninfo());

    th_exec(c, "SET TimeZone = 'UTC'");
    return c;
}

/* Microseconds since the epoch of a TIMESTAMP literal (UTC). */
static int64_t ts_us(PGconn *c, const char *literal)
{
    char sql[256];
    char *v;
    int64_t us;

    snprintf(sql, sizeof sql,
             "SELECT (extract(epoch FROM timestamp '%s') * 1000000)::bigint",
             literal);
    v = th_scalar(c, sql);
    ck_assert_ptr_nonnull(v);
    us = (int64_t)strtoll(v, NULL, 10);
    free(v);
    return us;
}

static void execf(PGconn *c, const char *fmt, ...) SPOTDB__PRINTF(2, 3);
static void execf(PGconn *c, const char *fmt, ...)
{
    char sql[8192];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(sql, sizeof sql, fmt, ap);
    va_end(ap);
    th_exec(c, sql);
}

/* A user (the password column gets a placeholder: these tests never log
 * in). */
static void add_user(PGconn *c, const char *id, const char *email,
                     const char *username)
{
    execf(c, "INSERT INTO users (id, email, username, hashed_password) "
             "VALUES ('%s', '%s', '%s', 'x')", id, email, username);
}

/* An account; is_active is an SQL literal (TRUE, FALSE, NULL). */
static void add_account(PGconn *c, const char *id, const char *user_id,
                        const char *aws, const char *name, const char *env,
                        const char *region, const char *is_active)
{
    execf(c, "INSERT INTO accounts (id, user_id, account_id, account_name, "
             "environment_type, role_arn, external_id, region, is_active) "
             "VALUES ('%s', '%s', '%s', '%s', '%s', "
             "'arn:aws:iam::%s:role/spot', 'ext-id-1', '%s', %s)",
          id, user_id, aws, name, env, aws, region, is_active);
}

/* A model; returns nothing, the id is the caller's. */
static void add_model(PGconn *c, const char *id, const char *name,
                      const char *version)
{
    execf(c, "INSERT INTO model_registry (id, name, version) "
             "VALUES ('%s', '%s', '%s')", id, name, version);
}

/* An instance; the last five arguments are SQL literals. */
static void add_instance(PGconn *c, const char *id, const char *account_id,
                         const char *ec2, const char *type, const char *az,
                         const char *model_version, const char *pipeline,
                         const char *is_shadow, const char *is_active,
                         const char *last_eval)
{
    execf(c, "INSERT INTO instances (id, account_id, instance_id, "
             "instance_type, availability_zone, assigned_model_version, "
             "pipeline_mode, is_shadow_mode, is_active, last_evaluation) "
             "VALUES ('%s', '%s', '%s', '%s', '%s', %s, %s, %s, %s, %s)",
          id, account_id, ec2, type, az, model_version, pipeline, is_shadow,
          is_active, last_eval);
}

/* An experiment log; every argument after instance_id is an SQL literal. */
static void add_log(PGconn *c, const char *id, const char *instance_id,
                    const char *model_id, const char *decision,
                    const char *score, const char *shadow,
                    const char *exec_time, const char *savings)
{
    execf(c, "INSERT INTO experiment_logs (id, instance_id, model_id, "
             "decision, prediction_score, is_shadow_run, execution_time, "
             "projected_hourly_savings) "
             "VALUES (%s, '%s', %s, %s, %s, %s, %s, %s)",
          id, instance_id, model_id, decision, score, shadow, exec_time,
          savings);
}

/* ---- common data ---------------------------------------------------------- */

#define U_ALICE "a0000000-0000-4000-8000-000000000001"
#define U_BOB   "a0000000-0000-4000-8000-000000000002"
#define A_LAB   "b0000000-0000-4000-8000-000000000001"
#define A_PROD  "b0000000-0000-4000-8000-000000000002"
#define A_OFF   "b0000000-0000-4000-8000-000000000003"
#define A_NULL  "b0000000-0000-4000-8000-000000000004"
#define M_ALPHA "c0000000-0000-4000-8000-000000000001"
#define M_BETA  "c0000000-0000-4000-8000-000000000002"
#define M_GAMMA "c0000000-0000-4000-8000-000000000003"
#define M_DELTA "c0000000-0000-4000-8000-000000000004"
#define M_EPS   "c0000000-0000-4000-8000-000000000005"
#define M_ZETA  "c0000000-0000-4000-8000-000000000006"
#define I_1     "d0000000-0000-4000-8000-000000000001"
#define I_2     "d0000000-0000-4000-8000-000000000002"
#define I_3     "d0000000-0000-4000-8000-000000000003"
#define I_4     "d0000000-0000-4000-8000-000000000004"
#define I_5     "d0000000-0000-4000-8000-000000000005"
#define I_6     "d0000000-0000-4000-8000-000000000006"
#define I_7     "d0000000-0000-4000-8000-000000000007"
#define I_8     "d0000000-0000-4000-8000-000000000008"
#define I_9     "d0000000-0000-4000-8000-000000000009"

/* Two users, four accounts (LAB active, PROD active, LAB inactive, LAB
 * with is_active NULL) and three models, two of which share "v1.0". */
static void add_owners_and_models(PGconn *c)
{
    add_user(c, U_ALICE, "alice@example.com", "alice");
    add_user(c, U_BOB, "bob@example.com", "bob");
    add_account(c, A_LAB, U_ALICE, "111111111111", "lab-one", "LAB",
                "us-east-1", "TRUE");
    add_account(c, A_PROD, U_BOB, "222222222222", "prod-one", "PROD",
                "eu-west-1", "TRUE");
    add_account(c, A_OFF, U_ALICE, "333333333333", "lab-off", "LAB",
                "us-east-1", "FALSE");
    add_account(c, A_NULL, U_ALICE, "444444444444", "lab-null", "LAB",
                "us-east-1", "NULL");
    add_model(c, M_ALPHA, "Alpha", "v1.0");
    add_model(c, M_BETA, "Beta", "v1.0");
    add_model(c, M_GAMMA, "Gamma", "v2.0");
}

/* ---- v_active_instances --------------------------------------------------- */

/*
 * Active instances:
 *   I1 LAB  v1.0 (Alpha and Beta)  2024-03-03  LINEAR shadow   -> 2 rows
 *   I2 PROD v2.0 (Gamma)           2024-03-05  CLUSTER         -> 1 row
 *   I3 LAB  v9.9 (no model)        never       shadow NULL     -> 1 row
 *   I6 PROD no version             2024-03-04                  -> 1 row
 *   I9 PROD v2.0 (Gamma)           never                       -> 1 row
 * Hidden: I4 (inactive), I5 (inactive account), I7 (account is_active
 * NULL), I8 (is_active NULL).
 */
static void add_active_instance_data(PGconn *c)
{
    add_owners_and_models(c);
    add_instance(c, I_1, A_LAB, "i-00000001", "c5.large", "us-east-1a",
                 "'v1.0'", "'LINEAR'", "TRUE", "TRUE",
                 "'2024-03-03 00:00:00'");
    add_instance(c, I_2, A_PROD, "i-00000002", "m5.xlarge", "eu-west-1b",
                 "'v2.0'", "'CLUSTER'", "FALSE", "TRUE",
                 "'2024-03-05 12:34:56.789012'");
    add_instance(c, I_3, A_LAB, "i-00000003", "t3.micro", "us-east-1c",
                 "'v9.9'", "'CLUSTER'", "NULL", "TRUE", "NULL");
    add_instance(c, I_4, A_LAB, "i-00000004", "t3.micro", "us-east-1a",
                 "'v1.0'", "'CLUSTER'", "FALSE", "FALSE",
                 "'2024-03-09 00:00:00'");
    add_instance(c, I_5, A_OFF, "i-00000005", "t3.micro", "us-east-1a",
                 "'v1.0'", "'CLUSTER'", "FALSE", "TRUE",
                 "'2024-03-09 00:00:00'");
    add_instance(c, I_6, A_PROD, "i-00000006", "r5.large", "eu-west-1a",
                 "NULL", "'CLUSTER'", "FALSE", "TRUE",
                 "'2024-03-04 00:00:00'");
    add_instance(c, I_7, A_NULL, "i-00000007", "t3.micro", "us-east-1a",
                 "'v1.0'", "'CLUSTER'", "FALSE", "TRUE",
                 "'2024-03-09 00:00:00'");
    add_instance(c, I_8, A_LAB, "i-00000008", "t3.micro", "us-east-1a",
                 "'v1.0'", "'CLUSTER'", "FALSE", "NULL",
                 "'2024-03-09 00:00:00'");
    add_instance(c, I_9, A_PROD, "i-00000009", "m5.large", "eu-west-1c",
                 "'v2.0'", "'CLUSTER'", "FALSE", "TRUE", "NULL");
}

static const spotdb_active_instance *
find_active(const spotdb_active_instance_rows *r, const char *id,
            const char *model_name)
{
    for (size_t k = 0; k < r->count; k++) {
        const spotdb_active_instance *a = &r->items[k];
        if (strcmp(a->id, id) != 0)
            continue;
        if (model_name == NULL ? a->model_name == NULL
                               : (a->model_name &&
                                  strcmp(a->model_name, model_name) == 0))
            return a;
    }
    return NULL;
}

static size_t count_id(const spotdb_active_instance_rows *r, const char *id)
{
    size_t n = 0;

    for (size_t k = 0; k < r->count; k++)
        n += strcmp(r->items[k].id, id) == 0;
    return n;
}

START_TEST(active_instances_only_active_of_active_accounts)
{
    PGconn *c = raw_connect();
    spotdb_db *db;
    spotdb_active_instance_rows *r = NULL;

    add_active_instance_data(c);
    db = th_open();
    ck_assert_msg(spotdb_active_instance_list(&r, db, NULL, 0) == 0, "%s",
                  spotdb_errmsg(db));
    ck_assert_ptr_nonnull(r);
    /* I1 twice (two models share v1.0), I2, I3, I6, I9 once */
    ck_assert_uint_eq(r->count, 6);
    ck_assert_int_eq((long)r->count,
                      th_count(c, "SELECT count(*) FROM v_active_instances"));
    ck_assert_ptr_null(r->next_cursor);
    ck_assert_uint_eq(count_id(r, I_1), 2);
    ck_assert_uint_eq(count_id(r, I_2), 1);
    ck_assert_uint_eq(count_id(r, I_3), 1);
    ck_assert_uint_eq(count_id(r, I_6), 1);
    ck_assert_uint_eq(count_id(r, I_9), 1);
    ck_assert_uint_eq(count_id(r, I_4), 0);     /* instance inactive */
    ck_assert_uint_eq(count_id(r, I_5), 0);     /* account inactive */
    ck_assert_uint_eq(count_id(r, I_7), 0);     /* account is_active NULL */
    ck_assert_uint_eq(count_id(r, I_8), 0);     /* instance is_active NULL */
    spotdb_active_instance_rows_free(r);

    /* deactivating the account of I2 and I6 and I9 hides them */
    th_exec(c, "UPDATE accounts SET is_active = FALSE "
               "WHERE account_id = '222222222222'");
    ck_assert_int_eq(spotdb_active_instance_list(&r, db, NULL, 0), 0);
    ck_assert_uint_eq(r->count, 3);
    ck_assert_uint_eq(count_id(r, I_2), 0);
    ck_assert_uint_eq(count_id(r, I_6), 0);
    spotdb_active_instance_rows_free(r);
    spotdb_close(db);
    PQfinish(c);
}
END_TEST

START_TEST(active_instances_order_newest_evaluation_first)
{
    PGconn *c = raw_connect();
    spotdb_db *db;
    spotdb_active_instance_rows *r = NULL;
    int64_t prev = INT64_MAX;
    bool seen_null = false;

    add_active_instance_data(c);
    db = th_open();
    ck_assert_int_eq(spotdb_active_instance_list(&r, db, NULL, 0), 0);
    ck_assert_uint_eq(r->count, 6);
    /* I2 (03-05), I6 (03-04), I1 twice (03-03), then I3 and I9 (NULL) */
    ck_assert_str_eq(r->items[0].id, I_2);
    ck_assert_str_eq(r->items[1].id, I_6);
    ck_assert_str_eq(r->items[2].id, I_1);
    ck_assert_str_eq(r->items[3].id, I_1);
    ck_assert((strcmp(r->items[4].id, I_3) == 0 &&
               strcmp(r->items[5].id, I_9) == 0) ||
              (strcmp(r->items[4].id, I_9) == 0 &&
               strcmp(r->items[5].id, I_3) == 0));
    for (size_t k = 0; k < r->count; k++) {
        const spotdb_active_instance *a = &r->items[k];
        if (a->nulls & SPOTDB_ACTIVE_INSTANCE_LAST_EVALUATION) {
            seen_null = true;
            continue;
        }
        ck_assert_msg(!seen_null, "an evaluated instance after a NULL one");
        ck_assert_int_le(a->last_evaluation, prev);
        prev = a->last_evaluation;
    }
    ck_assert(seen_null);
    spotdb_active_instance_rows_free(r);
    spotdb_close(db);
    PQfinish(c);
}
END_TEST

START_TEST(active_instances_columns_decoded)
{
    PGconn *c = raw_connect();
    spotdb_db *db;
    spotdb_active_instance_rows *r = NULL;
    const spotdb_active_instance *a;

    add_active_instance_data(c);
    db = th_open();
    ck_assert_int_eq(spotdb_active_instance_list(&r, db, NULL, 0), 0);

    /* I2: every column set */
    a = find_active(r, I_2, "Gamma");
    ck_assert_ptr_nonnull(a);
    ck_assert_str_eq(a->id, I_2);
    ck_assert_str_eq(a->instance_id, "i-00000002");
    ck_assert_str_eq(a->instance_type, "m5.xlarge");
    ck_assert_str_eq(a->availability_zone, "eu-west-1b");
    ck_assert_str_eq(a->pipeline_mode, "CLUSTER");
    ck_assert(a->is_shadow_mode == false);
    ck_assert_str_eq(a->assigned_model_version, "v2.0");
    ck_assert_int_eq(a->last_evaluation,
                     ts_us(c, "2024-03-05 12:34:56.789012"));
    ck_assert_int_eq(a->last_evaluation, INT64_C(1709642096789012));
    ck_assert_str_eq(a->aws_account_id, "222222222222");
    ck_assert_str_eq(a->account_name, "prod-one");
    ck_assert_str_eq(a->environment_type, "PROD");
    ck_assert_str_eq(a->region, "eu-west-1");
    ck_assert_str_eq(a->user_email, "bob@example.com");
    ck_assert_str_eq(a->username, "bob");
    ck_assert_str_eq(a->model_name, "Gamma");
    ck_assert_str_eq(a->model_version, "v2.0");
    ck_assert_uint_eq(a->nulls, 0);

    /* I1: shadow, LINEAR, alice's LAB account; once per model of v1.0 */
    a = find_active(r, I_1, "Alpha");
    ck_assert_ptr_nonnull(a);
    ck_assert_str_eq(a->instance_id, "i-00000001");
    ck_assert_str_eq(a->pipeline_mode, "LINEAR");
    ck_assert(a->is_shadow_mode == true);
    ck_assert_int_eq(a->last_evaluation, ts_us(c, "2024-03-03 00:00:00"));
    ck_assert_str_eq(a->aws_account_id, "111111111111");
    ck_assert_str_eq(a->account_name, "lab-one");
    ck_assert_str_eq(a->environment_type, "LAB");
    ck_assert_str_eq(a->region, "us-east-1");
    ck_assert_str_eq(a->user_email, "alice@example.com");
    ck_assert_str_eq(a->username, "alice");
    ck_assert_str_eq(a->model_version, "v1.0");
    ck_assert_uint_eq(a->nulls, 0);
    a = find_active(r, I_1, "Beta");
    ck_assert_ptr_nonnull(a);
    ck_assert_str_eq(a->model_version, "v1.0");
    ck_assert_str_eq(a->instance_id, "i-00000001");
    ck_assert_uint_eq(a->nulls, 0);

    /* I3: version that matches no model, never evaluated, shadow NULL */
    a = find_active(r, I_3, NULL);
    ck_assert_ptr_nonnull(a);
    ck_assert_str_eq(a->instance_id, "i-00000003");
    ck_assert_str_eq(a->assigned_model_version, "v9.9");
    ck_assert_ptr_null(a->model_name);
    ck_assert_ptr_null(a->model_version);
    ck_assert_uint_eq(a->nulls, SPOTDB_ACTIVE_INSTANCE_IS_SHADOW_MODE |
                                SPOTDB_ACTIVE_INSTANCE_LAST_EVALUATION |
                                SPOTDB_ACTIVE_INSTANCE_MODEL_NAME |
                                SPOTDB_ACTIVE_INSTANCE_MODEL_VERSION);
    ck_assert_str_eq(a->username, "alice");

    /* I6: no assigned version at all */
    a = find_active(r, I_6, NULL);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_null(a->assigned_model_version);
    ck_assert_ptr_null(a->model_name);
    ck_assert_ptr_null(a->model_version);
    ck_assert_uint_eq(a->nulls, SPOTDB_ACTIVE_INSTANCE_ASSIGNED_MODEL_VERSION |
                                SPOTDB_ACTIVE_INSTANCE_MODEL_NAME |
                                SPOTDB_ACTIVE_INSTANCE_MODEL_VERSION);
    ck_assert_str_eq(a->user_email, "bob@example.com");
    spotdb_active_instance_rows_free(r);
    spotdb_close(db);
    PQfinish(c);
}
END_TEST

START_TEST(active_instances_shared_version_quirk)
{
    PGconn *c = raw_connect();
    spotdb_db *db;
    spotdb_active_instance_rows *r = NULL;

    add_active_instance_data(c);
    db = th_open();
    ck_assert_int_eq(spotdb_active_instance_list(&r, db, NULL, 0), 0);
    ck_assert_uint_eq(count_id(r, I_1), 2);
    ck_assert_ptr_nonnull(find_active(r, I_1, "Alpha"));
    ck_assert_ptr_nonnull(find_active(r, I_1, "Beta"));
    ck_assert_ptr_null(find_active(r, I_1, NULL));
    ck_assert_uint_eq(count_id(r, I_3), 1);
    ck_assert_ptr_nonnull(find_active(r, I_3, NULL));
    spotdb_active_instance_rows_free(r);

    /* a third model on v1.0 makes it three rows; a model for v9.9 gives
     * I3 its model */
    th_exec(c, "INSERT INTO model_registry (name, version) VALUES "
               "('Omega', 'v1.0'), ('Nine', 'v9.9')");
    ck_assert_int_eq(spotdb_active_instance_list(&r, db, NULL, 0), 0);
    ck_assert_uint_eq(count_id(r, I_1), 3);
    ck_assert_ptr_nonnull(find_active(r, I_1, "Omega"));
    ck_assert_uint_eq(count_id(r, I_3), 1);
    ck_assert_ptr_nonnull(find_active(r, I_3, "Nine"));
    ck_assert_uint_eq(r->count, 7);
    spotdb_active_instance_rows_free(r);
    spotdb_close(db);
    PQfinish(c);
}
END_TEST

START_TEST(active_instances_environment_filter)
{
    PGconn *c = raw_connect();
    spotdb_db *db;
    spotdb_active_instance_rows *r = NULL;
    spotdb_active_instance_filter f = SPOTDB_ACTIVE_INSTANCE_FILTER_INIT;

    add_active_instance_data(c);
    db = th_open();

    /* the documented query: active LAB instances, newest evaluation first */
    f.environment_type = "LAB";
    ck_assert_msg(spotdb_active_instance_list(&r, db, &f, 0) == 0, "%s",
                  spotdb_errmsg(db));
    ck_assert_uint_eq(r->count, 3);
    ck_assert_str_eq(r->items[0].id, I_1);
    ck_assert_str_eq(r->items[1].id, I_1);
    ck_assert_str_eq(r->items[2].id, I_3);
    for (size_t k = 0; k < r->count; k++)
        ck_assert_str_eq(r->items[k].environment_type, "LAB");
    spotdb_active_instance_rows_free(r);

    f.environment_type = "PROD";
    ck_assert_int_eq(spotdb_active_instance_list(&r, db, &f, 0), 0);
    ck_assert_uint_eq(r->count, 3);
    ck_assert_str_eq(r->items[0].id, I_2);
    ck_assert_str_eq(r->items[1].id, I_6);
    ck_assert_str_eq(r->items[2].id, I_9);
    for (size_t k = 0; k < r->count; k++)
        ck_assert_str_eq(r->items[k].environment_type, "PROD");
    spotdb_active_instance_rows_free(r);

    /* a NULL member does not filter */
    f.environment_type = NULL;
    ck_assert_int_eq(spotdb_active_instance_list(&r, db, &f, 0), 0);
    ck_assert_uint_eq(r->count, 6);
    spotdb_active_instance_rows_free(r);

    /* a value outside PROD/LAB is refused before any round trip */
    f.environment_type = "DEV";
    r = (spotdb_active_instance_rows *)&f;      /* must be reset to NULL */
    ck_assert_int_eq(spotdb_active_instance_list(&r, db, &f, 0),
                     SPOTDB_EINVAL);
    ck_assert_ptr_null(r);
    ck_assert_str_ne(spotdb_errmsg(db), "");
    f.environment_type = "lab";
    ck_assert_int_eq(spotdb_active_instance_list(&r, db, &f, 0),
                     SPOTDB_EINVAL);
    ck_assert_ptr_null(r);

    /* the handle still works */
    f.environment_type = "LAB";
    ck_assert_int_eq(spotdb_active_instance_list(&r, db, &f, 0), 0);
    ck_assert_uint_eq(r->count, 3);
    ck_assert_str_eq(spotdb_errmsg(db), "");
    spotdb_active_instance_rows_free(r);
    spotdb_close(db);
    PQfinish(c);
}
END_TEST

START_TEST(active_instances_limit)
{
    PGconn *c = raw_connect();
    spotdb_db *db;
    spotdb_active_instance_rows *r = NULL;
    spotdb_active_instance_filter f = SPOTDB_ACTIVE_INSTANCE_FILTER_INIT;

    add_active_instance_data(c);
    db = th_open();
    ck_assert_int_eq(spotdb_active_instance_list(&r, db, NULL, 2), 0);
    ck_assert_uint_eq(r->count, 2);
    ck_assert_str_eq(r->items[0].id, I_2);
    ck_assert_str_eq(r->items[1].id, I_6);
    ck_assert_ptr_null(r->next_cursor);
    spotdb_active_instance_rows_free(r);

    ck_assert_int_eq(spotdb_active_instance_list(&r, db, NULL, 1), 0);
    ck_assert_uint_eq(r->count, 1);
    ck_assert_str_eq(r->items[0].id, I_2);
    spotdb_active_instance_rows_free(r);

    f.environment_type = "LAB";
    ck_assert_int_eq(spotdb_active_instance_list(&r, db, &f, 1), 0);
    ck_assert_uint_eq(r->count, 1);
    ck_assert_str_eq(r->items[0].id, I_1);
    spotdb_active_instance_rows_free(r);

    /* more than there are, and 0 for all */
    ck_assert_int_eq(spotdb_active_instance_list(&r, db, NULL, 50), 0);
    ck_assert_uint_eq(r->count, 6);
    spotdb_active_instance_rows_free(r);
    ck_assert_int_eq(spotdb_active_instance_list(&r, db, NULL, 0), 0);
    ck_assert_uint_eq(r->count, 6);
    spotdb_active_instance_rows_free(r);

    r = (spotdb_active_instance_rows *)&f;
    ck_assert_int_eq(spotdb_active_instance_list(&r, db, NULL, -1),
                     SPOTDB_EINVAL);
    ck_assert_ptr_null(r);
    ck_assert_str_ne(spotdb_errmsg(db), "");
    ck_assert_int_eq(spotdb_active_instance_list(&r, db, NULL, INT32_MIN),
                     SPOTDB_EINVAL);
    ck_assert_ptr_null(r);
    spotdb_close(db);
    PQfinish(c);
}
END_TEST

START_TEST(active_instances_empty)
{
    spotdb_db *db = th_open();
    spotdb_active_instance_rows *r = NULL;

    ck_assert_int_eq(spotdb_active_instance_list(&r, db, NULL, 0), 0);
    ck_assert_ptr_nonnull(r);
    ck_assert_uint_eq(r->count, 0);
    ck_assert_ptr_null(r->next_cursor);
    spotdb_active_instance_rows_free(r);
    spotdb_active_instance_rows_free(NULL);
    spotdb_close(db);
}
END_TEST

/* ---- v_recent_experiments ------------------------------------------------- */

/* One LAB account of alice with two instances: I1 (LINEAR, c5.large) and
 * I2 (CLUSTER, m5.xlarge); models Alpha/Beta/Gamma. */
static void add_experiment_owners(PGconn *c)
{
    add_owners_and_models(c);
    add_instance(c, I_1, A_LAB, "i-0123456789abcdef0", "c5.large",
                 "us-east-1a", "'v1.0'", "'LINEAR'", "FALSE", "TRUE", "NULL");
    add_instance(c, I_2, A_PROD, "i-00000002", "m5.xlarge", "eu-west-1b",
                 "'v2.0'", "'CLUSTER'", "FALSE", "TRUE", "NULL");
}

START_TEST(recent_real_switches_documented_query)
{
    PGconn *c = raw_connect();
    spotdb_db *db;
    spotdb_recent_experiment_rows *r = NULL;
    spotdb_recent_experiment_filter f = SPOTDB_RECENT_EXPERIMENT_FILTER_INIT;
    bool no = false;
    int64_t base;

    add_experiment_owners(c);
    /* 90 logs, k minutes after 2024-02-01: SWITCH when k % 3 == 0, shadow
     * when k % 6 == 0, so the real switches are k = 3, 9, ..., 87 (15) */
    th_exec(c,
        "INSERT INTO experiment_logs (instance_id, model_id, decision, "
        "is_shadow_run, prediction_score, execution_time) "
        "SELECT '" I_1 "', '" M_ALPHA "', "
        "CASE WHEN k % 3 = 0 THEN 'SWITCH' ELSE 'STAY' END, "
        "k % 6 = 0, 0.5, "
        "timestamp '2024-02-01 00:00:00' + k * interval '1 minute' "
        "FROM generate_series(1, 90) AS k");
    base = ts_us(c, "2024-02-01 00:00:00");
    db = th_open();
    f.decision = "SWITCH";
    f.is_shadow_run = &no;
    ck_assert_msg(spotdb_recent_experiment_list(&r, db, &f, 10) == 0, "%s",
                  spotdb_errmsg(db));
    ck_assert_uint_eq(r->count, 10);
    ck_assert_ptr_null(r->next_cursor);
    for (size_t n = 0; n < r->count; n++) {
        const spotdb_recent_experiment *e = &r->items[n];
        int64_t k = 87 - 6 * (int64_t)n;        /* 87, 81, ..., 33 */

        ck_assert_str_eq(e->decision, "SWITCH");
        ck_assert(e->is_shadow_run == false);
        ck_assert_int_eq(e->execution_time, base + k * INT64_C(60000000));
        ck_assert_str_eq(e->instance_id, "i-0123456789abcdef0");
    }
    spotdb_recent_experiment_rows_free(r);

    /* all 15, and the shadow switches apart */
    ck_assert_int_eq(spotdb_recent_experiment_list(&r, db, &f, 0), 0);
    ck_assert_uint_eq(r->count, 15);
    spotdb_recent_experiment_rows_free(r);
    {
        bool yes = true;
        f.is_shadow_run = &yes;
        ck_assert_int_eq(spotdb_recent_experiment_list(&r, db, &f, 0), 0);
        ck_assert_uint_eq(r->count, 15);
        for (size_t n = 0; n < r->count; n++) {
            ck_assert(r->items[n].is_shadow_run == true);
            ck_assert_str_eq(r->items[n].decision, "SWITCH");
        }
        ck_assert_int_eq(r->items[0].execution_time,
                         base + 90 * INT64_C(60000000));
        spotdb_recent_experiment_rows_free(r);
    }
    /* only the shadow filter */
    f.decision = NULL;
    f.is_shadow_run = &no;
    ck_assert_int_eq(spotdb_recent_experiment_list(&r, db, &f, 0), 0);
    ck_assert_uint_eq(r->count, 75);
    spotdb_recent_experiment_rows_free(r);
    /* STAY only */
    f.decision = "STAY";
    f.is_shadow_run = NULL;
    ck_assert_int_eq(spotdb_recent_experiment_list(&r, db, &f, 0), 0);
    ck_assert_uint_eq(r->count, 60);
    ck_assert_int_eq(r->items[0].execution_time,
                     base + 89 * INT64_C(60000000));
    spotdb_recent_experiment_rows_free(r);
    f.decision = "FALLBACK_ONDEMAND";
    ck_assert_int_eq(spotdb_recent_experiment_list(&r, db, &f, 0), 0);
    ck_assert_uint_eq(r->count, 0);
    spotdb_recent_experiment_rows_free(r);
    spotdb_close(db);
    PQfinish(c);
}
END_TEST

START_TEST(recent_experiments_window_of_1000)
{
    PGconn *c = raw_connect();
    spotdb_db *db;
    spotdb_recent_experiment_rows *r = NULL;
    spotdb_recent_experiment_filter f = SPOTDB_RECENT_EXPERIMENT_FILTER_INIT;
    spotdb_experiment_log_filter lf = SPOTDB_EXPERIMENT_LOG_FILTER_INIT;
    spotdb_experiment_log_rows *lr = NULL;
    int64_t n = -1, base;

    add_experiment_owners(c);
    /* 1,100 logs one second apart; the 100 oldest are the only SWITCHes */
    th_exec(c,
        "INSERT INTO experiment_logs (instance_id, decision, is_shadow_run, "
        "execution_time) "
        "SELECT '" I_1 "', CASE WHEN k <= 100 THEN 'SWITCH' ELSE 'STAY' END, "
        "FALSE, timestamp '2024-02-01 00:00:00' + k * interval '1 second' "
        "FROM generate_series(1, 1100) AS k");
    base = ts_us(c, "2024-02-01 00:00:00");
    ck_assert_int_eq(th_count(c, "SELECT count(*) FROM experiment_logs "
                                 "WHERE decision = 'SWITCH'"), 100);
    db = th_open();

    /* the view only sees the newest 1000: no SWITCH among them */
    f.decision = "SWITCH";
    ck_assert_msg(spotdb_recent_experiment_list(&r, db, &f, 10) == 0, "%s",
                  spotdb_errmsg(db));
    ck_assert_uint_eq(r->count, 0);
    spotdb_recent_experiment_rows_free(r);
    ck_assert_int_eq(spotdb_recent_experiment_list(&r, db, &f, 0), 0);
    ck_assert_uint_eq(r->count, 0);
    spotdb_recent_experiment_rows_free(r);

    /* the table itself has them */
    lf.decision = "SWITCH";
    ck_assert_msg(spotdb_experiment_log_count(&n, db, &lf) == 0, "%s",
                  spotdb_errmsg(db));
    ck_assert_int_eq(n, 100);
    ck_assert_msg(spotdb_experiment_log_list(&lr, db, &lf, NULL, 1000) == 0,
                  "%s", spotdb_errmsg(db));
    ck_assert_uint_eq(lr->count, 100);
    ck_assert_ptr_null(lr->next_cursor);
    ck_assert_str_eq(lr->items[0].decision, "SWITCH");
    ck_assert_int_eq(lr->items[0].execution_time, base + 100 * INT64_C(1000000));
    ck_assert_int_eq(lr->items[99].execution_time, base + 1 * INT64_C(1000000));
    spotdb_experiment_log_rows_free(lr);
    lf.decision = NULL;
    ck_assert_int_eq(spotdb_experiment_log_count(&n, db, &lf), 0);
    ck_assert_int_eq(n, 1100);

    /* no filter, limit 0: exactly the window, newest first */
    ck_assert_int_eq(spotdb_recent_experiment_list(&r, db, NULL, 0), 0);
    ck_assert_uint_eq(r->count, 1000);
    ck_assert_ptr_null(r->next_cursor);
    ck_assert_int_eq(r->items[0].execution_time, base + 1100 * INT64_C(1000000));
    ck_assert_int_eq(r->items[999].execution_time, base + 101 * INT64_C(1000000));
    for (size_t k = 1; k < r->count; k++)
        ck_assert_int_eq(r->items[k].execution_time,
                         r->items[k - 1].execution_time - INT64_C(1000000));
    for (size_t k = 0; k < r->count; k++)
        ck_assert_str_eq(r->items[k].decision, "STAY");
    spotdb_recent_experiment_rows_free(r);

    /* a limit above the window still gives the window */
    ck_assert_int_eq(spotdb_recent_experiment_list(&r, db, NULL, 5000), 0);
    ck_assert_uint_eq(r->count, 1000);
    spotdb_recent_experiment_rows_free(r);
    /* STAY sees all 1000 */
    f.decision = "STAY";
    ck_assert_int_eq(spotdb_recent_experiment_list(&r, db, &f, 0), 0);
    ck_assert_uint_eq(r->count, 1000);
    spotdb_recent_experiment_rows_free(r);
    /* a small limit */
    ck_assert_int_eq(spotdb_recent_experiment_list(&r, db, NULL, 3), 0);
    ck_assert_uint_eq(r->count, 3);
    ck_assert_int_eq(r->items[2].execution_time, base + 1098 * INT64_C(1000000));
    spotdb_recent_experiment_rows_free(r);

    /* deleting 100 of the newest brings the SWITCHes into the window */
    th_exec(c, "DELETE FROM experiment_logs WHERE execution_time > "
               "timestamp '2024-02-01 00:00:00' + 1000 * interval '1 second'");
    f.decision = "SWITCH";
    ck_assert_int_eq(spotdb_recent_experiment_list(&r, db, &f, 10), 0);
    ck_assert_uint_eq(r->count, 10);
    ck_assert_int_eq(r->items[0].execution_time, base + 100 * INT64_C(1000000));
    spotdb_recent_experiment_rows_free(r);
    spotdb_close(db);
    PQfinish(c);
}
END_TEST

#define L_FULL  "e0000000-0000-4000-8000-000000000001"
#define L_BARE  "e0000000-0000-4000-8000-000000000002"
#define L_TIE_A "e0000000-0000-4000-8000-00000000000a"
#define L_TIE_B "e0000000-0000-4000-8000-00000000000b"

static const spotdb_recent_experiment *
find_recent(const spotdb_recent_experiment_rows *r, const char *id)
{
    for (size_t k = 0; k < r->count; k++)
        if (strcmp(r->items[k].id, id) == 0)
            return &r->items[k];
    return NULL;
}

START_TEST(recent_experiments_columns_decoded)
{
    PGconn *c = raw_connect();
    spotdb_db *db;
    spotdb_recent_experiment_rows *r = NULL;
    const spotdb_recent_experiment *e;

    add_experiment_owners(c);
    /* every column: the log says CLUSTER, the instance LINEAR */
    th_exec(c,
        "INSERT INTO experiment_logs (id, instance_id, model_id, "
        "pipeline_mode, is_shadow_run, prediction_score, decision, "
        "execution_time, execution_duration_ms, selected_instance_type, "
        "projected_hourly_savings) VALUES ('" L_FULL "', '" I_1 "', '"
        M_BETA "', 'CLUSTER', TRUE, 0.375, 'STAY', "
        "'2024-02-03 04:05:06.000007', 1234, 'c5.xlarge', 0.125)");
    /* as bare as the table allows, on the other instance */
    th_exec(c,
        "INSERT INTO experiment_logs (id, instance_id, is_shadow_run, "
        "execution_time) VALUES ('" L_BARE "', '" I_2 "', NULL, "
        "'2024-02-03 00:00:00')");
    /* two logs at the same time: the greater id first */
    add_log(c, "'" L_TIE_A "'", I_2, "NULL", "'STAY'", "0.25", "FALSE",
            "'2024-02-01 00:00:00'", "NULL");
    add_log(c, "'" L_TIE_B "'", I_2, "NULL", "'STAY'", "0.25", "FALSE",
            "'2024-02-01 00:00:00'", "NULL");

    db = th_open();
    ck_assert_int_eq(spotdb_recent_experiment_list(&r, db, NULL, 0), 0);
    ck_assert_uint_eq(r->count, 4);
    ck_assert_str_eq(r->items[0].id, L_FULL);
    ck_assert_str_eq(r->items[1].id, L_BARE);
    ck_assert_str_eq(r->items[2].id, L_TIE_B);
    ck_assert_str_eq(r->items[3].id, L_TIE_A);

    e = find_recent(r, L_FULL);
    ck_assert_ptr_nonnull(e);
    ck_assert_int_eq(e->execution_time, ts_us(c, "2024-02-03 04:05:06.000007"));
    ck_assert_int_eq(e->execution_time, INT64_C(1706933106000007));
    ck_assert_str_eq(e->decision, "STAY");
    ck_assert_double_eq(e->prediction_score, 0.375);
    ck_assert(e->is_shadow_run == true);
    ck_assert_int_eq(e->execution_duration_ms, 1234);
    ck_assert_str_eq(e->instance_id, "i-0123456789abcdef0");
    ck_assert_str_eq(e->instance_type, "c5.large");
    ck_assert_str_eq(e->pipeline_mode, "LINEAR");
    ck_assert_str_eq(e->aws_account_id, "111111111111");
    ck_assert_str_eq(e->account_name, "lab-one");
    ck_assert_str_eq(e->model_name, "Beta");
    ck_assert_str_eq(e->model_version, "v1.0");
    ck_assert_str_eq(e->selected_instance_type, "c5.xlarge");
    ck_assert_double_eq(e->projected_hourly_savings, 0.125);
    ck_assert_uint_eq(e->nulls, 0);

    e = find_recent(r, L_BARE);
    ck_assert_ptr_nonnull(e);
    ck_assert_int_eq(e->execution_time, ts_us(c, "2024-02-03 00:00:00"));
    ck_assert_ptr_null(e->decision);
    ck_assert_ptr_null(e->model_name);
    ck_assert_ptr_null(e->model_version);
    ck_assert_ptr_null(e->selected_instance_type);
    ck_assert_str_eq(e->instance_id, "i-00000002");
    ck_assert_str_eq(e->instance_type, "m5.xlarge");
    ck_assert_str_eq(e->pipeline_mode, "CLUSTER");
    ck_assert_str_eq(e->aws_account_id, "222222222222");
    ck_assert_str_eq(e->account_name, "prod-one");
    ck_assert_uint_eq(e->nulls,
                      SPOTDB_RECENT_EXPERIMENT_DECISION |
                      SPOTDB_RECENT_EXPERIMENT_PREDICTION_SCORE |
                      SPOTDB_RECENT_EXPERIMENT_IS_SHADOW_RUN |
                      SPOTDB_RECENT_EXPERIMENT_EXECUTION_DURATION_MS |
                      SPOTDB_RECENT_EXPERIMENT_MODEL_NAME |
                      SPOTDB_RECENT_EXPERIMENT_MODEL_VERSION |
                      SPOTDB_RECENT_EXPERIMENT_SELECTED_INSTANCE_TYPE |
                      SPOTDB_RECENT_EXPERIMENT_PROJECTED_HOURLY_SAVINGS);

    e = find_recent(r, L_TIE_A);
    ck_assert_ptr_nonnull(e);
    ck_assert_ptr_null(e->model_name);
    ck_assert_double_eq(e->prediction_score, 0.25);
    ck_assert(e->is_shadow_run == false);
    ck_assert_uint_eq(e->nulls & SPOTDB_RECENT_EXPERIMENT_MODEL_NAME,
                      SPOTDB_RECENT_EXPERIMENT_MODEL_NAME);
    ck_assert_uint_eq(e->nulls & SPOTDB_RECENT_EXPERIMENT_IS_SHADOW_RUN, 0);
    spotdb_recent_experiment_rows_free(r);
    spotdb_recent_experiment_rows_free(NULL);

    /* a NULL is_shadow_run is neither true nor false for the filter */
    {
        bool no = false;
        spotdb_recent_experiment_filter f =
            SPOTDB_RECENT_EXPERIMENT_FILTER_INIT;
        f.is_shadow_run = &no;
        ck_assert_int_eq(spotdb_recent_experiment_list(&r, db, &f, 0), 0);
        ck_assert_uint_eq(r->count, 2);
        ck_assert_ptr_null(find_recent(r, L_BARE));
        ck_assert_ptr_null(find_recent(r, L_FULL));
        spotdb_recent_experiment_rows_free(r);
    }
    spotdb_close(db);
    PQfinish(c);
}
END_TEST

START_TEST(recent_experiments_bad_arguments)
{
    PGconn *c = raw_connect();
    spotdb_db *db;
    spotdb_recent_experiment_rows *r = NULL;
    spotdb_recent_experiment_filter f = SPOTDB_RECENT_EXPERIMENT_FILTER_INIT;

    add_experiment_owners(c);
    add_log(c, "DEFAULT", I_1, "NULL", "'SWITCH'", "0.5", "FALSE",
            "'2024-02-01 00:00:00'", "NULL");
    db = th_open();
    r = (spotdb_recent_experiment_rows *)&f;
    ck_assert_int_eq(spotdb_recent_experiment_list(&r, db, NULL, -1),
                     SPOTDB_EINVAL);
    ck_assert_ptr_null(r);
    ck_assert_str_ne(spotdb_errmsg(db), "");
    f.decision = "MAYBE";
    ck_assert_int_eq(spotdb_recent_experiment_list(&r, db, &f, 10),
                     SPOTDB_EINVAL);
    ck_assert_ptr_null(r);
    f.decision = "switch";
    ck_assert_int_eq(spotdb_recent_experiment_list(&r, db, &f, 10),
                     SPOTDB_EINVAL);
    ck_assert_ptr_null(r);
    /* the handle is fine afterwards */
    f.decision = "SWITCH";
    ck_assert_int_eq(spotdb_recent_experiment_list(&r, db, &f, 10), 0);
    ck_assert_uint_eq(r->count, 1);
    ck_assert_str_eq(spotdb_errmsg(db), "");
    spotdb_recent_experiment_rows_free(r);
    spotdb_close(db);
    PQfinish(c);
}
END_TEST

/* ---- model performance ---------------------------------------------------- */

static const spotdb_model_performance *
find_perf(const spotdb_model_performance_rows *r, const char *name)
{
    for (size_t k = 0; k < r->count; k++)
        if (r->items[k].model_name && strcmp(r->items[k].model_name, name) == 0)
            return &r->items[k];
    return NULL;
}

/*
 * Window [2024-02-01, 2024-02-08):
 *   Alpha v1.0: 4 runs, scores .25 .75 .5 NULL (avg .5), 3 SWITCH,
 *               savings .5 1.5 NULL 1.0 (avg 1.0)
 *   Beta  v1.0: 2 runs (one exactly at since), scores .125 .375 (avg .25),
 *               0 SWITCH, savings 2 3 (avg 2.5)
 *   Gamma v2.0: 3 runs, scores 1 0 .5 (avg .5), 2 SWITCH, savings all NULL
 *   Eps   v5.0: 1 run, score NULL, STAY, savings .25
 *   no model:   2 runs, not counted
 * Outside: Alpha 1 µs before since and exactly at until, Beta after until,
 * Delta only before since.
 */
static void add_performance_data(PGconn *c)
{
    add_experiment_owners(c);
    add_model(c, M_DELTA, "Delta", "v3.0");
    add_model(c, M_EPS, "Eps", "v5.0");
#define M(x) "'" x "'"
    add_log(c, "DEFAULT", I_1, M(M_ALPHA), "'SWITCH'", "0.25", "FALSE",
            "'2024-02-01 00:00:01'", "0.5");
    add_log(c, "DEFAULT", I_1, M(M_ALPHA), "'STAY'", "0.75", "TRUE",
            "'2024-02-02 00:00:00'", "1.5");
    add_log(c, "DEFAULT", I_2, M(M_ALPHA), "'SWITCH'", "0.5", "FALSE",
            "'2024-02-05 00:00:00'", "NULL");
    add_log(c, "DEFAULT", I_2, M(M_ALPHA), "'SWITCH'", "NULL", "FALSE",
            "'2024-02-07 23:59:59.999999'", "1.0");
    add_log(c, "DEFAULT", I_1, M(M_BETA), "'STAY'", "0.125", "FALSE",
            "'2024-02-01 00:00:00'", "2.0");
    add_log(c, "DEFAULT", I_1, M(M_BETA), "'FALLBACK_ONDEMAND'", "0.375",
            "FALSE", "'2024-02-03 00:00:00'", "3.0");
    add_log(c, "DEFAULT", I_1, M(M_GAMMA), "'SWITCH'", "1.0", "FALSE",
            "'2024-02-03 00:00:00'", "NULL");
    add_log(c, "DEFAULT", I_1, M(M_GAMMA), "'SWITCH'", "0.0", "FALSE",
            "'2024-02-04 00:00:00'", "NULL");
    add_log(c, "DEFAULT", I_2, M(M_GAMMA), "NULL", "0.5", "FALSE",
            "'2024-02-05 00:00:00'", "NULL");
    add_log(c, "DEFAULT", I_2, M(M_EPS), "'STAY'", "NULL", "FALSE",
            "'2024-02-06 00:00:00'", "0.25");
    add_log(c, "DEFAULT", I_1, "NULL", "'SWITCH'", "0.5", "FALSE",
            "'2024-02-04 00:00:00'", "50.0");
    add_log(c, "DEFAULT", I_2, "NULL", "'SWITCH'", "0.5", "FALSE",
            "'2024-02-04 00:00:00'", "50.0");
    /* outside the window */
    add_log(c, "DEFAULT", I_1, M(M_ALPHA), "'SWITCH'", "1.0", "FALSE",
            "'2024-01-31 23:59:59.999999'", "100.0");
    add_log(c, "DEFAULT", I_1, M(M_ALPHA), "'SWITCH'", "1.0", "FALSE",
            "'2024-02-08 00:00:00'", "100.0");
    add_log(c, "DEFAULT", I_1, M(M_BETA), "'SWITCH'", "1.0", "FALSE",
            "'2024-03-01 00:00:00'", "100.0");
    add_log(c, "DEFAULT", I_1, M(M_DELTA), "'SWITCH'", "1.0", "FALSE",
            "'2024-01-15 00:00:00'", "100.0");
#undef M
}

static void assert_perf(const spotdb_model_performance *p, const char *name,
                        const char *version, int64_t runs, double avg_score,
                        int64_t switches, double avg_savings, uint64_t nulls)
{
    ck_assert_ptr_nonnull(p);
    ck_assert_str_eq(p->model_name, name);
    ck_assert_str_eq(p->model_version, version);
    ck_assert_int_eq(p->runs, runs);
    ck_assert_int_eq(p->switch_count, switches);
    ck_assert_uint_eq(p->nulls, nulls);
    if (!(nulls & SPOTDB_MODEL_PERFORMANCE_AVG_PREDICTION_SCORE))
        ck_assert_double_eq(p->avg_prediction_score, avg_score);
    if (!(nulls & SPOTDB_MODEL_PERFORMANCE_AVG_PROJECTED_SAVINGS))
        ck_assert_double_eq(p->avg_projected_savings, avg_savings);
}

START_TEST(model_performance_window)
{
    PGconn *c = raw_connect();
    spotdb_db *db;
    spotdb_model_performance_rows *r = NULL;
    spotdb_model_performance_filter f = SPOTDB_MODEL_PERFORMANCE_FILTER_INIT;
    int64_t since, until;

    add_performance_data(c);
    since = ts_us(c, "2024-02-01 00:00:00");
    until = ts_us(c, "2024-02-08 00:00:00");
    ck_assert_int_eq(since, INT64_C(1706745600000000));
    f.since = &since;
    f.until = &until;
    db = th_open();
    ck_assert_msg(spotdb_model_performance_list(&r, db, &f) == 0, "%s",
                  spotdb_errmsg(db));
    ck_assert_ptr_nonnull(r);
    ck_assert_ptr_null(r->next_cursor);
    ck_assert_uint_eq(r->count, 4);
    /* by average savings descending, the all-NULL model last */
    assert_perf(&r->items[0], "Beta", "v1.0", 2, 0.25, 0, 2.5, 0);
    assert_perf(&r->items[1], "Alpha", "v1.0", 4, 0.5, 3, 1.0, 0);
    assert_perf(&r->items[2], "Eps", "v5.0", 1, 0, 0, 0.25,
                SPOTDB_MODEL_PERFORMANCE_AVG_PREDICTION_SCORE);
    assert_perf(&r->items[3], "Gamma", "v2.0", 3, 0.5, 2, 0,
                SPOTDB_MODEL_PERFORMANCE_AVG_PROJECTED_SAVINGS);
    ck_assert_ptr_null(find_perf(r, "Delta"));
    for (size_t k = 0; k < r->count; k++)
        ck_assert_ptr_nonnull(r->items[k].model_name);
    spotdb_model_performance_rows_free(r);

    /* without an upper bound the logs at and after until count */
    f.until = NULL;
    ck_assert_int_eq(spotdb_model_performance_list(&r, db, &f), 0);
    ck_assert_uint_eq(r->count, 4);
    /* Alpha: + the log at 02-08 (SWITCH, 1.0, 100): savings 103/4 */
    assert_perf(find_perf(r, "Alpha"), "Alpha", "v1.0", 5, 0.625, 4, 25.75, 0);
    /* Beta: + 03-01 (SWITCH, 1.0, 100): score 1.5/3 = .5, savings 105/3 */
    assert_perf(find_perf(r, "Beta"), "Beta", "v1.0", 3, 0.5, 1, 35.0, 0);
    ck_assert_str_eq(r->items[0].model_name, "Beta");
    ck_assert_str_eq(r->items[1].model_name, "Alpha");
    ck_assert_str_eq(r->items[2].model_name, "Eps");
    ck_assert_str_eq(r->items[3].model_name, "Gamma");
    spotdb_model_performance_rows_free(r);

    /* a window one microsecond wider at the start takes Alpha's early log
     * and Delta stays out until its own day */
    since -= 1;
    f.until = &until;
    ck_assert_int_eq(spotdb_model_performance_list(&r, db, &f), 0);
    assert_perf(find_perf(r, "Alpha"), "Alpha", "v1.0", 5, 0.625, 4, 25.75, 0);
    ck_assert_ptr_null(find_perf(r, "Delta"));
    spotdb_model_performance_rows_free(r);

    /* a window with no logs: no rows */
    since = ts_us(c, "2023-01-01 00:00:00");
    until = ts_us(c, "2023-02-01 00:00:00");
    ck_assert_int_eq(spotdb_model_performance_list(&r, db, &f), 0);
    ck_assert_ptr_nonnull(r);
    ck_assert_uint_eq(r->count, 0);
    spotdb_model_performance_rows_free(r);
    spotdb_model_performance_rows_free(NULL);
    spotdb_close(db);
    PQfinish(c);
}
END_TEST

START_TEST(model_performance_ties_by_name_and_version)
{
    PGconn *c = raw_connect();
    spotdb_db *db;
    spotdb_model_performance_rows *r = NULL;
    spotdb_model_performance_filter f = SPOTDB_MODEL_PERFORMANCE_FILTER_INIT;
    int64_t since, until;

    add_experiment_owners(c);
    th_exec(c, "INSERT INTO model_registry (id, name, version) VALUES "
               "('c1000000-0000-4000-8000-000000000001', 'Zed', 'v1'), "
               "('c1000000-0000-4000-8000-000000000002', 'Ann', 'v2'), "
               "('c1000000-0000-4000-8000-000000000003', 'Ann', 'v1'), "
               "('c1000000-0000-4000-8000-000000000004', 'Bob', 'v1'), "
               "('c1000000-0000-4000-8000-000000000005', 'Abe', 'v1')");
    /* equal savings for Zed, Ann v2, Ann v1; Bob and Abe without savings */
    th_exec(c, "INSERT INTO experiment_logs (instance_id, model_id, "
               "execution_time, projected_hourly_savings) "
               "SELECT '" I_1 "', id, '2024-02-02 00:00:00', "
               "CASE WHEN name IN ('Bob', 'Abe') THEN NULL ELSE 0.5 END "
               "FROM model_registry WHERE id::text LIKE 'c1%'");
    since = ts_us(c, "2024-02-01 00:00:00");
    until = ts_us(c, "2024-02-08 00:00:00");
    f.since = &since;
    f.until = &until;
    db = th_open();
    ck_assert_int_eq(spotdb_model_performance_list(&r, db, &f), 0);
    ck_assert_uint_eq(r->count, 5);
    ck_assert_str_eq(r->items[0].model_name, "Ann");
    ck_assert_str_eq(r->items[0].model_version, "v1");
    ck_assert_str_eq(r->items[1].model_name, "Ann");
    ck_assert_str_eq(r->items[1].model_version, "v2");
    ck_assert_str_eq(r->items[2].model_name, "Zed");
    ck_assert_str_eq(r->items[3].model_name, "Abe");
    ck_assert_str_eq(r->items[4].model_name, "Bob");
    for (size_t k = 0; k < r->count; k++) {
        ck_assert_int_eq(r->items[k].runs, 1);
        ck_assert_int_eq(r->items[k].switch_count, 0);
        /* no log has a score */
        ck_assert(r->items[k].nulls &
                  SPOTDB_MODEL_PERFORMANCE_AVG_PREDICTION_SCORE);
        ck_assert_int_eq(!!(r->items[k].nulls &
                            SPOTDB_MODEL_PERFORMANCE_AVG_PROJECTED_SAVINGS),
                         k >= 3);
    }
    spotdb_model_performance_rows_free(r);
    spotdb_close(db);
    PQfinish(c);
}
END_TEST

START_TEST(model_performance_default_window_is_7_days)
{
    PGconn *c = raw_connect();
    spotdb_db *db;
    spotdb_model_performance_rows *r = NULL;
    spotdb_model_performance_filter f = SPOTDB_MODEL_PERFORMANCE_FILTER_INIT;
    int64_t now, until, since;

    add_experiment_owners(c);
    add_model(c, M_ZETA, "Zeta", "v9.0");
    /* 8 days old (out), 6 days old (in), 1 hour old (in) */
    add_log(c, "DEFAULT", I_1, "'" M_ZETA "'", "'SWITCH'", "1.0", "FALSE",
            "(now() AT TIME ZONE 'UTC') - interval '8 days'", "10.0");
    add_log(c, "DEFAULT", I_1, "'" M_ZETA "'", "'SWITCH'", "0.25", "FALSE",
            "(now() AT TIME ZONE 'UTC') - interval '6 days'", "0.5");
    add_log(c, "DEFAULT", I_1, "'" M_ZETA "'", "'STAY'", "0.75", "FALSE",
            "(now() AT TIME ZONE 'UTC') - interval '1 hour'", "1.5");
    /* Alpha's only log is old: it is not in the default window */
    add_log(c, "DEFAULT", I_1, "'" M_ALPHA "'", "'SWITCH'", "1.0", "FALSE",
            "(now() AT TIME ZONE 'UTC') - interval '7 days 1 hour'", "10.0");
    db = th_open();

    /* NULL filter */
    ck_assert_msg(spotdb_model_performance_list(&r, db, NULL) == 0, "%s",
                  spotdb_errmsg(db));
    ck_assert_uint_eq(r->count, 1);
    assert_perf(&r->items[0], "Zeta", "v9.0", 2, 0.5, 1, 1.0, 0);
    spotdb_model_performance_rows_free(r);

    /* a filter with both bounds NULL */
    ck_assert_int_eq(spotdb_model_performance_list(&r, db, &f), 0);
    ck_assert_uint_eq(r->count, 1);
    assert_perf(&r->items[0], "Zeta", "v9.0", 2, 0.5, 1, 1.0, 0);
    spotdb_model_performance_rows_free(r);

    /* since NULL with an upper bound: 7 days ago up to 3 days ago */
    now = spotdb_now_us();
    until = now - INT64_C(3) * 86400 * 1000000;
    f.until = &until;
    ck_assert_int_eq(spotdb_model_performance_list(&r, db, &f), 0);
    ck_assert_uint_eq(r->count, 1);
    assert_perf(&r->items[0], "Zeta", "v9.0", 1, 0.25, 1, 0.5, 0);
    spotdb_model_performance_rows_free(r);

    /* an explicit since of 9 days ago takes the 8-day-old log and Alpha */
    since = now - INT64_C(9) * 86400 * 1000000;
    f.since = &since;
    f.until = NULL;
    ck_assert_int_eq(spotdb_model_performance_list(&r, db, &f), 0);
    ck_assert_uint_eq(r->count, 2);
    /* Zeta: savings 12/3 = 4, Alpha 10 */
    assert_perf(&r->items[0], "Alpha", "v1.0", 1, 1.0, 1, 10.0, 0);
    ck_assert_str_eq(r->items[1].model_name, "Zeta");
    ck_assert_int_eq(r->items[1].runs, 3);
    ck_assert_int_eq(r->items[1].switch_count, 2);
    ck_assert_double_eq(r->items[1].avg_projected_savings, 4.0);
    spotdb_model_performance_rows_free(r);
    spotdb_close(db);
    PQfinish(c);
}
END_TEST

START_TEST(model_performance_bad_filter)
{
    spotdb_db *db = th_open();
    spotdb_model_performance_rows *r = NULL;
    spotdb_model_performance_filter f = SPOTDB_MODEL_PERFORMANCE_FILTER_INIT;

    /* an unknown filter version is a bad filter */
    f.version = 9999;
    r = (spotdb_model_performance_rows *)&f;
    ck_assert_int_eq(spotdb_model_performance_list(&r, db, &f),
                     SPOTDB_EINVAL);
    ck_assert_ptr_null(r);
    ck_assert_str_ne(spotdb_errmsg(db), "");
    f.version = SPOTDB_MODEL_PERFORMANCE_FILTER_VERSION;
    ck_assert_int_eq(spotdb_model_performance_list(&r, db, &f), 0);
    ck_assert_uint_eq(r->count, 0);
    spotdb_model_performance_rows_free(r);
    spotdb_close(db);
}
END_TEST

/* ---- schema handshake ----------------------------------------------------- */

static int64_t latest_embedded_version(void)
{
    spotdb_migration_info m;
    size_t n = spotdb_migration_embedded_count();

    ck_assert_uint_ge(n, 1);
    ck_assert_int_eq(spotdb_migration_embedded(&m, n - 1), 0);
    return m.version;
}

static bool has_compatible_column(PGconn *c)
{
    return th_count(c, "SELECT count(*) FROM information_schema.columns "
                       "WHERE table_name = 'spotdb_schema_migrations' "
                       "AND column_name = 'compatible'") == 1;
}

static void assert_open_eschema(const char *conninfo,
                                const spotdb_open_options *o,
                                const char *needle)
{
    spotdb_db *db = (spotdb_db *)&db;
    int rc = spotdb_open(&db, conninfo, o);

    ck_assert_msg(rc == SPOTDB_ESCHEMA, "open gave %d (%s), not ESCHEMA",
                  rc, spotdb_last_errmsg());
    ck_assert_ptr_null(db);
    ck_assert_msg(strstr(spotdb_last_errmsg(), needle) != NULL,
                  "message \"%s\" does not mention \"%s\"",
                  spotdb_last_errmsg(), needle);
}

static void assert_open_ok(const char *conninfo, const spotdb_open_options *o)
{
    spotdb_db *db = NULL;
    int rc = spotdb_open(&db, conninfo, o);

    ck_assert_msg(rc == 0, "open gave %d: %s", rc, spotdb_last_errmsg());
    ck_assert_ptr_nonnull(db);
    ck_assert_str_eq(spotdb_last_errmsg(), "");
    spotdb_close(db);
}

START_TEST(handshake_empty_database)
{
    const char *ci = th_db_conninfo();
    spotdb_open_options o = SPOTDB_OPEN_OPTIONS_INIT;
    spotdb_db *db = NULL;
    PGconn *c;

    assert_open_eschema(ci, NULL, "spotdb migrate");
    /* explicit REQUIRE is the same */
    o.schema_check = SPOTDB_SCHEMA_CHECK_REQUIRE;
    assert_open_eschema(ci, &o, "spotdb migrate");
    /* the failed handshake left nothing behind: still empty */
    c = raw_connect();
    ck_assert_int_eq(th_count(c, "SELECT count(*) FROM pg_class c JOIN "
                                 "pg_namespace n ON n.oid = c.relnamespace "
                                 "WHERE n.nspname = 'public'"), 0);
    /* SKIP opens, and a migration makes the checked open succeed */
    o.schema_check = SPOTDB_SCHEMA_CHECK_SKIP;
    ck_assert_msg(spotdb_open(&db, ci, &o) == 0, "%s", spotdb_last_errmsg());
    ck_assert_msg(spotdb_migrate(db, NULL) == 0, "%s", spotdb_errmsg(db));
    spotdb_close(db);
    assert_open_ok(ci, NULL);
    o.schema_check = SPOTDB_SCHEMA_CHECK_REQUIRE;
    assert_open_ok(ci, &o);
    PQfinish(c);
}
END_TEST

START_TEST(handshake_skip_on_empty_database)
{
    spotdb_db *db = NULL;

    ck_assert_msg(th_open_unchecked(&db, th_db_conninfo()) == 0, "%s",
                  spotdb_last_errmsg());
    ck_assert_ptr_nonnull(db);
    ck_assert_str_eq(spotdb_last_errmsg(), "");
    spotdb_close(db);
}
END_TEST

START_TEST(handshake_bad_schema_check_option)
{
    spotdb_db *db = (spotdb_db *)&db;
    spotdb_open_options o = SPOTDB_OPEN_OPTIONS_INIT;

    o.schema_check = 7;
    ck_assert_int_eq(spotdb_open(&db, th_db_conninfo(), &o), SPOTDB_EINVAL);
    ck_assert_ptr_null(db);
    ck_assert(strstr(spotdb_last_errmsg(), "schema_check") != NULL);
    o.schema_check = -1;
    ck_assert_int_eq(spotdb_open(&db, th_db_conninfo(), &o), SPOTDB_EINVAL);
}
END_TEST

START_TEST(handshake_unversioned_v1_by_hand)
{
    const char *ci = th_db_conninfo();
    char *sql = th_read_file(th_source_path("../sql/0001_initial.sql"));
    PGconn *c = raw_connect();
    PGresult *res = PQexec(c, sql);
    spotdb_db *db = NULL;

    ck_assert_msg(PQresultStatus(res) == PGRES_COMMAND_OK, "%s",
                  PQerrorMessage(c));
    PQclear(res);
    free(sql);
    ck_assert_int_eq(th_count(c, "SELECT count(*) FROM users"), 1);
    ck_assert_ptr_null(th_scalar(c, "SELECT to_regclass("
                                    "'spotdb_schema_migrations')::text"));

    assert_open_eschema(ci, NULL, "migrate");
    /* the handshake does not adopt or record anything */
    ck_assert_ptr_null(th_scalar(c, "SELECT to_regclass("
                                    "'spotdb_schema_migrations')::text"));
    /* migrating adopts it; then the checked open succeeds */
    ck_assert_int_eq(th_open_unchecked(&db, ci), 0);
    ck_assert_msg(spotdb_migrate(db, NULL) == 0, "%s", spotdb_errmsg(db));
    spotdb_close(db);
    ck_assert_int_eq(th_count(c, "SELECT max(version) FROM "
                                 "spotdb_schema_migrations"),
                     latest_embedded_version());
    assert_open_ok(ci, NULL);
    PQfinish(c);
}
END_TEST

START_TEST(handshake_behind)
{
    const char *ci = th_db_conninfo();
    PGconn *c = raw_connect();

    /* the tracking table exists but records nothing: version 0 */
    th_exec(c, "DELETE FROM spotdb_schema_migrations");
    assert_open_eschema(ci, NULL, "spotdb migrate");
    PQfinish(c);
}
END_TEST

START_TEST(handshake_ahead_incompatible_then_compatible)
{
    const char *ci = th_db_conninfo();
    PGconn *c = raw_connect();
    int64_t next = latest_embedded_version() + 1;

    assert_open_ok(ci, NULL);
    ck_assert_msg(has_compatible_column(c),
                  "spotdb_schema_migrations has no 'compatible' column "
                  "after spotdb_migrate: the handshake cannot read it");
    execf(c, "INSERT INTO spotdb_schema_migrations (version, name, "
             "checksum, execution_ms, compatible) VALUES "
             "(%" PRId64 ", 'future', 'x', 1, FALSE)", next);
    assert_open_eschema(ci, NULL, "");
    /* SKIP still opens */
    {
        spotdb_db *db = NULL;
        ck_assert_int_eq(th_open_unchecked(&db, ci), 0);
        spotdb_close(db);
    }
    /* recorded as compatible: accepted */
    th_exec(c, "UPDATE spotdb_schema_migrations SET compatible = TRUE "
               "WHERE name = 'future'");
    assert_open_ok(ci, NULL);

    /* every newer migration must be compatible */
    execf(c, "INSERT INTO spotdb_schema_migrations (version, name, "
             "checksum, execution_ms, compatible) VALUES "
             "(%" PRId64 ", 'future2', 'y', 1, FALSE)", next + 1);
    assert_open_eschema(ci, NULL, "");
    th_exec(c, "UPDATE spotdb_schema_migrations SET compatible = TRUE "
               "WHERE name = 'future2'");
    assert_open_ok(ci, NULL);
    /* a NULL compatible (when the column allows it) is not a recorded
     * "compatible" */
    if (th_count(c, "SELECT count(*) FROM information_schema.columns "
                    "WHERE table_name = 'spotdb_schema_migrations' "
                    "AND column_name = 'compatible' "
                    "AND is_nullable = 'YES'") == 1) {
        th_exec(c, "UPDATE spotdb_schema_migrations SET compatible = NULL "
                   "WHERE name = 'future'");
        assert_open_eschema(ci, NULL, "");
    }
    PQfinish(c);
}
END_TEST

/* The older, version-1 layout of the options, as a caller compiled with the
 * first header would pass it. */
typedef struct open_options_v1 {
    unsigned int version;
    const char *application_name;
    int32_t connect_timeout_s;
} open_options_v1;

START_TEST(handshake_options_version_1_still_checks)
{
    const char *ci = th_db_conninfo();
    spotdb_open_options o;
    open_options_v1 *v1 = calloc(1, sizeof *v1);
    spotdb_db *db = NULL;

    ck_assert_ptr_nonnull(v1);
    v1->version = 1;
    v1->application_name = "views-v1";
    /* the v1 layout has no schema_check: the default (check) applies */
    assert_open_eschema(ci, (const spotdb_open_options *)(void *)v1,
                        "spotdb migrate");
    /* whatever lies where v2 keeps schema_check is not read for v1 */
    memset(&o, 0, sizeof o);
    o.version = 1;
    o.schema_check = SPOTDB_SCHEMA_CHECK_SKIP;
    assert_open_eschema(ci, &o, "spotdb migrate");

    /* after a migration the v1 options open, and still set the name */
    ck_assert_int_eq(th_open_unchecked(&db, ci), 0);
    ck_assert_msg(spotdb_migrate(db, NULL) == 0, "%s", spotdb_errmsg(db));
    spotdb_close(db);
    db = NULL;
    ck_assert_msg(spotdb_open(&db, ci, (const spotdb_open_options *)(void *)v1)
                  == 0, "%s", spotdb_last_errmsg());
    {
        char *name = th_scalar(db->conn, "SHOW application_name");
        ck_assert_pstr_eq(name, "views-v1");
        free(name);
    }
    spotdb_close(db);
    free(v1);
}
END_TEST

/* ---- suite ---------------------------------------------------------------- */

static Suite *views_suite(void)
{
    Suite *s = suite_create("views");
    TCase *tc;

    tc = tcase_create("active_instances");
    tcase_add_checked_fixture(tc, th_setup_migrated_db, th_teardown_db);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, active_instances_only_active_of_active_accounts);
    tcase_add_test(tc, active_instances_order_newest_evaluation_first);
    tcase_add_test(tc, active_instances_columns_decoded);
    tcase_add_test(tc, active_instances_shared_version_quirk);
    tcase_add_test(tc, active_instances_environment_filter);
    tcase_add_test(tc, active_instances_limit);
    tcase_add_test(tc, active_instances_empty);
    suite_add_tcase(s, tc);

    tc = tcase_create("recent_experiments");
    tcase_add_checked_fixture(tc, th_setup_migrated_db, th_teardown_db);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, recent_real_switches_documented_query);
    tcase_add_test(tc, recent_experiments_window_of_1000);
    tcase_add_test(tc, recent_experiments_columns_decoded);
    tcase_add_test(tc, recent_experiments_bad_arguments);
    suite_add_tcase(s, tc);

    tc = tcase_create("model_performance");
    tcase_add_checked_fixture(tc, th_setup_migrated_db, th_teardown_db);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, model_performance_window);
    tcase_add_test(tc, model_performance_ties_by_name_and_version);
    tcase_add_test(tc, model_performance_default_window_is_7_days);
    tcase_add_test(tc, model_performance_bad_filter);
    suite_add_tcase(s, tc);

    tc = tcase_create("handshake_empty");
    tcase_add_checked_fixture(tc, th_setup_db, th_teardown_db);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, handshake_empty_database);
    tcase_add_test(tc, handshake_skip_on_empty_database);
    tcase_add_test(tc, handshake_bad_schema_check_option);
    tcase_add_test(tc, handshake_unversioned_v1_by_hand);
    tcase_add_test(tc, handshake_options_version_1_still_checks);
    suite_add_tcase(s, tc);

    tc = tcase_create("handshake_migrated");
    tcase_add_checked_fixture(tc, th_setup_migrated_db, th_teardown_db);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, handshake_behind);
    tcase_add_test(tc, handshake_ahead_incompatible_then_compatible);
    suite_add_tcase(s, tc);

    return s;
}

int main(void)
{
    return th_run(views_suite());
}
