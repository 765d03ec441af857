/*
 * Bulk inserts (COPY in binary format), streams (single-row mode) and
 * prepared statements, against the real server.
 *
 * - insert_many of experiment logs and instances: the rows stored, their
 *   ids, defaults, NULLs, the all-or-nothing rule with the offending row's
 *   index for the library's own checks and for the server's refusals, and
 *   transactions around it;
 * - every *_stream: the same rows, in the same order, as the matching
 *   list; filters; stopping early; a NULL callback; a bad filter refused
 *   before anything is sent; constant memory over 300,000 rows;
 * - prepared statements: reused per connection, none with
 *   SPOTDB_STATEMENTS_UNNAMED, the option's validation and versioning,
 *   and their reset by spotdb_migrate.
 *
 * Outcomes are checked through a raw libpq connection too.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"
#include "internal.h"

/* ---- shared state and helpers ------------------------------------------ */

static spotdb_db *db;       /* the handle under test */
static PGconn *pg;          /* raw connection for independent checks */
#define S(p) ((p) ? (p) : "(null)")

#define UUID_ABSENT "00000000-0000-4000-8000-000000000000"
#define T0 INT64_C(1700000000123456) /* 2023-11-14 22:13:20.123456 UTC */
#define T0_TEXT "2023-11-14 22:13:20.123456"
#define HOUR_US INT64_C(3600000000)
#define DAY_US (24 * HOUR_US)

/* Allocations of the test itself, freed by the teardown when an assertion
 * leaves a test early (CK_FORK=no under valgrind must not see them as
 * leaks). */
static void *g_track[64];

static void *tcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);

    ck_assert_ptr_nonnull(p);
    for (size_t i = 0; i < sizeof g_track / sizeof *g_track; i++)
        if (!g_track[i]) {
            g_track[i] = p;
            return p;
        }
    ck_abort_msg("too many tracked allocations");
    return NULL;
}

static void tfree(void *p)
{
    for (size_t i = 0; p && i < sizeof g_track / sizeof *g_track; i++)
        if (g_track[i] == p)
            g_track[i] = NULL;
    free(p);
}

static void tfree_all(void)
{
    for (size_t i = 0; i < sizeof g_track / sizeof *g_track; i++) {
        free(g_track[i]);
        g_track[i] = NULL;
    }
}

static void setup(void)
{
    th_setup_migrated_db();
    db = th_open();
    pg = th_connect(th_db_conninfo());
}

static void teardown(void)
{
    tfree_all();
    spotdb_close(db);
    db = NULL;
    if (pg)
        PQfinish(pg);
    pg = NULL;
    th_teardown_db();
}

#include "checks.h"


static int is_uuid(const char *s)
{
    if (strlen(s) != 36)
        return 0;
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return 0;
        } else if (!((s[i] >= '0' && s[i] <= '9') ||
                     (s[i] >= 'a' && s[i] <= 'f'))) {
            return 0;
        }
    }
    return 1;
}

static void copy_id(char *dst, const char *src)
{
    size_t n = strlen(src);

    if (n > SPOTDB_UUID_SIZE - 1)
        n = SPOTDB_UUID_SIZE - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Count of the server-side prepared statements of a handle's session. */
static long prepared_count(spotdb_db *h)
{
    PGresult *r = PQexec(h->conn,
                         "SELECT count(*) FROM pg_prepared_statements");
    long n;

    ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK,
                  "pg_prepared_statements: %s", PQerrorMessage(h->conn));
    n = atol(PQgetvalue(r, 0, 0));
    PQclear(r);
    return n;
}

/* ---- fixtures of rows --------------------------------------------------- */

static void make_user(char *id_out, const char *username, const char *role)
{
    spotdb_user in;
    spotdb_user *u = NULL;
    char email[128];
    uint64_t fields = SPOTDB_USER_EMAIL | SPOTDB_USER_USERNAME;

    memset(&in, 0, sizeof in);
    snprintf(email, sizeof email, "%s@example.com", username);
    in.email = email;
    in.username = username;
    if (role) {
        in.role = role;
        fields |= SPOTDB_USER_ROLE;
    }
    OK(spotdb_user_create(&u, db, &in, fields, "password"));
    copy_id(id_out, u->id);
    spotdb_user_free(u);
}

#define ACCT_REQ                                                             \
    (SPOTDB_ACCOUNT_USER_ID | SPOTDB_ACCOUNT_ACCOUNT_ID |                    \
     SPOTDB_ACCOUNT_ACCOUNT_NAME | SPOTDB_ACCOUNT_ROLE_ARN |                 \
     SPOTDB_ACCOUNT_EXTERNAL_ID)

static void make_account(char *id_out, const char *user_id, const char *num,
                         const char *env, int active)
{
    spotdb_account in, *a = NULL;
    char arn[128];
    uint64_t fields = ACCT_REQ | SPOTDB_ACCOUNT_IS_ACTIVE;

    memset(&in, 0, sizeof in);
    copy_id(in.user_id, user_id);
    snprintf(arn, sizeof arn, "arn:aws:iam::%s:role/SpotOptimizer", num);
    in.account_id = num;
    in.account_name = "Lab account";
    in.role_arn = arn;
    in.external_id = "ext-id-42";
    in.is_active = active != 0;
    if (env) {
        in.environment_type = env;
        fields |= SPOTDB_ACCOUNT_ENVIRONMENT_TYPE;
    }
    OK(spotdb_account_create(&a, db, &in, fields));
    copy_id(id_out, a->id);
    spotdb_account_free(a);
}

#define INST_REQ                                                             \
    (SPOTDB_INSTANCE_ACCOUNT_ID | SPOTDB_INSTANCE_INSTANCE_ID |              \
     SPOTDB_INSTANCE_INSTANCE_TYPE | SPOTDB_INSTANCE_AVAILABILITY_ZONE)

static void make_instance(char *id_out, const char *account, const char *ec2,
                          const char *mode, int active,
                          const char *model_version, int64_t last_eval)
{
    spotdb_instance in, *i = NULL;
    uint64_t fields = INST_REQ | SPOTDB_INSTANCE_IS_ACTIVE;

    memset(&in, 0, sizeof in);
    copy_id(in.account_id, account);
    in.instance_id = ec2;
    in.instance_type = "c5.large";
    in.availability_zone = "ap-south-1a";
    in.is_active = active != 0;
    if (mode) {
        in.pipeline_mode = mode;
        fields |= SPOTDB_INSTANCE_PIPELINE_MODE;
    }
    if (model_version) {
        in.assigned_model_version = model_version;
        fields |= SPOTDB_INSTANCE_ASSIGNED_MODEL_VERSION;
    }
    if (last_eval) {
        in.last_evaluation = last_eval;
        fields |= SPOTDB_INSTANCE_LAST_EVALUATION;
    }
    OK(spotdb_instance_create(&i, db, &in, fields));
    copy_id(id_out, i->id);
    spotdb_instance_free(i);
}

static void make_model(char *id_out, const char *name, const char *version,
                       int active)
{
    spotdb_model in, *m = NULL;

    memset(&in, 0, sizeof in);
    in.name = name;
    in.version = version;
    in.is_active = active != 0;
    OK(spotdb_model_create(&m, db, &in,
                           SPOTDB_MODEL_NAME | SPOTDB_MODEL_VERSION |
                           SPOTDB_MODEL_IS_ACTIVE));
    copy_id(id_out, m->id);
    spotdb_model_free(m);
}

/* A user, an account, two instances and a model: what logs refer to. */
static char g_user[SPOTDB_UUID_SIZE], g_acct[SPOTDB_UUID_SIZE];
static char g_inst_a[SPOTDB_UUID_SIZE], g_inst_b[SPOTDB_UUID_SIZE];
static char g_model[SPOTDB_UUID_SIZE];

static void base_rows(void)
{
    make_user(g_user, "bulkuser", NULL);
    make_account(g_acct, g_user, "111111111111", NULL, 1);
    make_instance(g_inst_a, g_acct, "i-0000000000000000a", NULL, 1, NULL, 0);
    make_instance(g_inst_b, g_acct, "i-0000000000000000b", "LINEAR", 1, NULL,
                  0);
    make_model(g_model, "BulkModel", "v1.0", 1);
}

/* ---- bulk log rows ------------------------------------------------------ */

static const char *const decisions[] = { "SWITCH", "STAY",
                                         "FALLBACK_ONDEMAND" };

#define LOG_FIELDS                                                           \
    (SPOTDB_EXPERIMENT_LOG_INSTANCE_ID | SPOTDB_EXPERIMENT_LOG_MODEL_ID |    \
     SPOTDB_EXPERIMENT_LOG_PIPELINE_MODE |                                   \
     SPOTDB_EXPERIMENT_LOG_PREDICTION_SCORE |                                \
     SPOTDB_EXPERIMENT_LOG_DECISION | SPOTDB_EXPERIMENT_LOG_DECISION_REASON | \
     SPOTDB_EXPERIMENT_LOG_EXECUTION_TIME |                                  \
     SPOTDB_EXPERIMENT_LOG_EXECUTION_DURATION_MS |                           \
     SPOTDB_EXPERIMENT_LOG_FEATURES_USED |                                   \
     SPOTDB_EXPERIMENT_LOG_ERROR_MESSAGE)

#define JSON_SLOT 64
static const char long_reason[] =
    "spot price of the current pool rose above the threshold; a cheaper "
    "pool with lower interruption risk was found";

typedef struct bulk {
    spotdb_experiment_log *rows;
    char *text;                 /* features_used texts, JSON_SLOT each */
    size_t n;
} bulk;

/* n log rows, row i numbered base + i: alternating instances, the model
 * NULL through the nulls bit on every third row (the field still holds a
 * valid id), decision_reason NULL through the nulls bit on every fourth,
 * error_message NULL by pointer; is_shadow_run true in the struct but not
 * in LOG_FIELDS. */
static void bulk_make(bulk *b, size_t n, size_t base, int64_t t0,
                      int64_t step)
{
    b->n = n;
    b->rows = tcalloc(n ? n : 1, sizeof *b->rows);
    b->text = tcalloc(n ? n : 1, JSON_SLOT);
    ck_assert_ptr_nonnull(b->rows);
    ck_assert_ptr_nonnull(b->text);
    for (size_t k = 0; k < n; k++) {
        spotdb_experiment_log *r = &b->rows[k];
        size_t i = base + k;

        copy_id(r->instance_id, i % 2 ? g_inst_a : g_inst_b);
        copy_id(r->model_id, g_model);
        if (i % 3 == 0)
            r->nulls |= SPOTDB_EXPERIMENT_LOG_MODEL_ID;
        r->pipeline_mode = i % 2 ? "CLUSTER" : "LINEAR";
        r->is_shadow_run = true;
        r->prediction_score = (double)(i % 1001) / 1000.0;
        r->decision = decisions[i % 3];
        r->decision_reason = long_reason;
        if (i % 4 == 0)
            r->nulls |= SPOTDB_EXPERIMENT_LOG_DECISION_REASON;
        r->execution_time = t0 + (int64_t)i * step;
        r->execution_duration_ms = (int32_t)i;
        r->candidates_evaluated = 99;   /* not in fields */
        snprintf(b->text + k * JSON_SLOT, JSON_SLOT,
                 "{\"i\": %zu, \"tag\": \"bulk\"}", i);
        r->features_used = b->text + k * JSON_SLOT;
        r->error_message = NULL;
    }
}

static void bulk_free(bulk *b)
{
    tfree(b->rows);
    tfree(b->text);
    b->rows = NULL;
    b->text = NULL;
}

/* The stored log `id` is row i of bulk_make(base 0, T0, step). */
static void check_bulk_log(const char *id, size_t i, int64_t step)
{
    spotdb_experiment_log *l = NULL;
    char json[JSON_SLOT];

    OK(spotdb_experiment_log_get(&l, db, id));
    EQS(l->id, id);
    EQS(l->instance_id, i % 2 ? g_inst_a : g_inst_b);
    if (i % 3 == 0) {
        ISNULL(l, SPOTDB_EXPERIMENT_LOG_MODEL_ID);
        EQS(l->model_id, "");
    } else {
        NOTNULL(l, SPOTDB_EXPERIMENT_LOG_MODEL_ID);
        EQS(l->model_id, g_model);
    }
    EQS(l->pipeline_mode, i % 2 ? "CLUSTER" : "LINEAR");
    ck_assert_msg(!l->is_shadow_run, "row %zu: is_shadow_run not default",
                  i);
    NOTNULL(l, SPOTDB_EXPERIMENT_LOG_IS_SHADOW_RUN);
    EQD(l->prediction_score, (double)(i % 1001) / 1000.0);
    EQS(l->decision, decisions[i % 3]);
    if (i % 4 == 0) {
        ISNULL(l, SPOTDB_EXPERIMENT_LOG_DECISION_REASON);
        ck_assert_ptr_null(l->decision_reason);
    } else {
        EQS(l->decision_reason, long_reason);
    }
    EQI(l->execution_time, T0 + (int64_t)i * step);
    EQI(l->execution_duration_ms, (int64_t)i);
    ISNULL(l, SPOTDB_EXPERIMENT_LOG_CANDIDATES_EVALUATED);
    snprintf(json, sizeof json, "{\"i\": %zu, \"tag\": \"bulk\"}", i);
    EQS(l->features_used, json);
    ISNULL(l, SPOTDB_EXPERIMENT_LOG_ERROR_MESSAGE);
    ck_assert_ptr_null(l->error_message);
    spotdb_experiment_log_free(l);
}

static int cmp_id(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

/* ======================================================================== */
/* 1. insert_many of experiment logs                                        */
/* ======================================================================== */

START_TEST(log_insert_many_stores_every_row)
{
    enum { N = 5000 };
    bulk b;
    char (*ids)[SPOTDB_UUID_SIZE] = tcalloc(N, SPOTDB_UUID_SIZE);
    char (*sorted)[SPOTDB_UUID_SIZE] = tcalloc(N, SPOTDB_UUID_SIZE);
    int64_t bad = 12345;
    double t;

    ck_assert_ptr_nonnull(ids);
    ck_assert_ptr_nonnull(sorted);
    base_rows();
    bulk_make(&b, N, 0, T0, 1000);
    t = now_s();
    OK(spotdb_experiment_log_insert_many(db, b.rows, N, LOG_FIELDS, ids,
                                         &bad));
    t = now_s() - t;
    fprintf(stderr, "test_bulk: insert_many of %d logs: %.3f s (%.0f rows/s)"
            "\n", N, t, N / t);
    EQI(bad, -1);
    EQI(rows_in("experiment_logs"), N);
    EQI(qn("SELECT count(DISTINCT id) FROM experiment_logs"), N);
    /* the default of the column not in fields */
    EQI(qn("SELECT count(*) FROM experiment_logs WHERE is_shadow_run = false"),
        N);
    EQI(qn("SELECT count(*) FROM experiment_logs WHERE candidates_evaluated "
           "IS NULL AND error_message IS NULL"), N);
    EQI(qn("SELECT count(*) FROM experiment_logs WHERE model_id IS NULL"),
        (N + 2) / 3);
    EQI(qn("SELECT count(*) FROM experiment_logs WHERE decision_reason IS "
           "NULL"), N / 4);
    /* ids: distinct version 4 UUIDs, in the rows' order */
    memcpy(sorted, ids, (size_t)N * SPOTDB_UUID_SIZE);
    qsort(sorted, N, SPOTDB_UUID_SIZE, cmp_id);
    for (size_t i = 0; i < N; i++) {
        ck_assert_msg(is_uuid(ids[i]), "ids[%zu] = \"%s\"", i, ids[i]);
        ck_assert_msg(ids[i][14] == '4', "ids[%zu] = %s is not version 4", i,
                      ids[i]);
        ck_assert_msg(strchr("89ab", ids[i][19]) != NULL,
                      "ids[%zu] = %s has not the RFC 4122 variant", i, ids[i]);
        if (i > 0)
            ck_assert_msg(strcmp(sorted[i - 1], sorted[i]) != 0,
                          "id %s given twice", sorted[i]);
    }
    for (size_t i = 0; i < N; i++)
        check_bulk_log(ids[i], i, 1000);
    /* independently of get: the row ids[1234] holds row 1234's values */
    qeq("1234|LINEAR|STAY", "SELECT (features_used->>'i') || '|' || "
        "pipeline_mode || '|' || decision FROM experiment_logs WHERE id = "
        "'%s'", ids[1234]);
    qeq(T0_TEXT, "SELECT execution_time::text FROM experiment_logs WHERE "
        "id = '%s'", ids[0]);
    bulk_free(&b);
    tfree(ids);
    tfree(sorted);
}
END_TEST

START_TEST(log_insert_many_with_own_ids)
{
    enum { N = 300 };
    bulk b;
    char (*ids)[SPOTDB_UUID_SIZE] = tcalloc(N, SPOTDB_UUID_SIZE);
    int64_t bad = 7;

    ck_assert_ptr_nonnull(ids);
    base_rows();
    bulk_make(&b, N, 0, T0, 1000);
    for (size_t i = 0; i < N; i++)
        snprintf(b.rows[i].id, SPOTDB_UUID_SIZE,
                 "%08zx-1111-4222-8333-%012zx", i, i * 7);
    OK(spotdb_experiment_log_insert_many(db, b.rows, N,
                                         LOG_FIELDS | SPOTDB_EXPERIMENT_LOG_ID,
                                         ids, &bad));
    EQI(bad, -1);
    EQI(rows_in("experiment_logs"), N);
    for (size_t i = 0; i < N; i++) {
        EQS(ids[i], b.rows[i].id);
        check_bulk_log(b.rows[i].id, i, 1000);
    }
    EQI(qn("SELECT count(*) FROM experiment_logs WHERE id::text LIKE "
           "'%%-1111-4222-8333-%%'"), N);
    /* ids may be NULL, and so may bad_row */
    for (size_t i = 0; i < N; i++)
        snprintf(b.rows[i].id, SPOTDB_UUID_SIZE,
                 "%08zx-2222-4222-8333-%012zx", i, i);
    OK(spotdb_experiment_log_insert_many(db, b.rows, N,
                                         LOG_FIELDS | SPOTDB_EXPERIMENT_LOG_ID,
                                         NULL, NULL));
    EQI(rows_in("experiment_logs"), 2 * N);
    check_bulk_log(b.rows[N - 1].id, N - 1, 1000);
    /* without ID in fields and ids NULL, the server's default makes them */
    OK(spotdb_experiment_log_insert_many(db, b.rows, 10, LOG_FIELDS, NULL,
                                         NULL));
    EQI(rows_in("experiment_logs"), 2 * N + 10);
    bulk_free(&b);
    tfree(ids);
}
END_TEST

START_TEST(log_insert_many_edge_arguments)
{
    bulk b;
    int64_t bad = 99;
    char ids[1][SPOTDB_UUID_SIZE] = { "untouched" };

    base_rows();
    bulk_make(&b, 3, 0, T0, 1000);
    /* n = 0: a no-op, even with rows NULL */
    OK(spotdb_experiment_log_insert_many(db, NULL, 0, LOG_FIELDS, NULL,
                                         &bad));
    EQI(bad, -1);
    OK(spotdb_experiment_log_insert_many(db, b.rows, 0, LOG_FIELDS, ids,
                                         &bad));
    EQI(bad, -1);
    EQS(ids[0], "untouched");
    EQI(rows_in("experiment_logs"), 0);
    /* rows NULL with n > 0 */
    bad = 99;
    FAILS(SPOTDB_EINVAL, "rows", spotdb_experiment_log_insert_many(
              db, NULL, 3, LOG_FIELDS, NULL, &bad));
    EQI(bad, -1);
    EQI(rows_in("experiment_logs"), 0);
    /* the handle works after */
    OK(spotdb_experiment_log_insert_many(db, b.rows, 3, LOG_FIELDS, NULL,
                                         &bad));
    EQI(bad, -1);
    EQI(rows_in("experiment_logs"), 3);
    bulk_free(&b);
}
END_TEST

/* ======================================================================== */
/* 2. atomicity and the offending row                                       */
/* ======================================================================== */

enum { BAD_N = 2000, BAD_K = 1234 };

/* insert_many of b (fields), which must fail with `code` at row `k` (k < 0:
 * any row index the caller checks itself, returned) naming `needle`;
 * nothing stored, and the handle works afterwards. */
static int64_t expect_refused(bulk *b, uint64_t fields, int code,
                              int64_t k, const char *needle,
                              const char *what)
{
    long before = rows_in("experiment_logs");
    int64_t bad = 424242;
    char (*ids)[SPOTDB_UUID_SIZE] = tcalloc(b->n, SPOTDB_UUID_SIZE);
    char rowname[32];
    int rc;
    bulk good;

    ck_assert_ptr_nonnull(ids);
    rc = spotdb_experiment_log_insert_many(db, b->rows, b->n, fields, ids,
                                           &bad);
    ck_assert_msg(rc == code, "%s: insert_many -> %d (%s), expected %d (%s);"
                  " bad_row %lld; message: %s", what, rc, spotdb_strerror(rc),
                  code, spotdb_strerror(code), (long long)bad,
                  spotdb_errmsg(db));
    if (k >= 0) {
        ck_assert_msg(bad == k, "%s: bad_row %lld, expected %lld (%s)", what,
                      (long long)bad, (long long)k, spotdb_errmsg(db));
        snprintf(rowname, sizeof rowname, "rows[%lld]", (long long)k);
        ck_assert_msg(strstr(spotdb_errmsg(db), rowname) != NULL,
                      "%s: message \"%s\" does not name %s", what,
                      spotdb_errmsg(db), rowname);
    }
    if (code != SPOTDB_EINVAL)
        fprintf(stderr, "test_bulk: %s: rc %d, bad_row %lld, message: %s\n",
                what, rc, (long long)bad, spotdb_errmsg(db));
    if (needle)
        ck_assert_msg(strstr(spotdb_errmsg(db), needle) != NULL ||
                      strstr(spotdb_sqlstate(db), needle) != NULL,
                      "%s: message \"%s\" does not name \"%s\"", what,
                      spotdb_errmsg(db), needle);
    ck_assert_msg(rows_in("experiment_logs") == before,
                  "%s: %ld rows stored by a refused insert_many", what,
                  rows_in("experiment_logs") - before);
    ck_assert_msg(!spotdb_in_transaction(db), "%s: a transaction was left "
                  "open", what);
    /* the handle works right after */
    bulk_make(&good, 5, 0, T0, 1000);
    OK(spotdb_experiment_log_insert_many(db, good.rows, 5, LOG_FIELDS, NULL,
                                         NULL));
    EQI(rows_in("experiment_logs"), before + 5);
    bulk_free(&good);
    tfree(ids);
    return bad;
}

START_TEST(log_insert_many_refuses_rule_breaks)
{
    bulk b;
    int64_t bad;
    const char *saved;
    char saved_id[SPOTDB_UUID_SIZE];

    base_rows();
    bulk_make(&b, BAD_N, 0, T0, 1000);

    b.rows[BAD_K].prediction_score = 1.5;
    expect_refused(&b, LOG_FIELDS, SPOTDB_EINVAL, BAD_K, "prediction_score",
                   "prediction_score 1.5");
    b.rows[BAD_K].prediction_score = NAN;
    expect_refused(&b, LOG_FIELDS, SPOTDB_EINVAL, BAD_K, "prediction_score",
                   "prediction_score NaN");
    b.rows[BAD_K].prediction_score = 0.5;

    saved = b.rows[BAD_K].decision;
    b.rows[BAD_K].decision = "MAYBE";
    expect_refused(&b, LOG_FIELDS, SPOTDB_EINVAL, BAD_K, "decision",
                   "decision MAYBE");
    b.rows[BAD_K].decision = saved;

    saved = b.rows[BAD_K].features_used;
    b.rows[BAD_K].features_used = "{\"a\": 1,";
    expect_refused(&b, LOG_FIELDS, SPOTDB_EINVAL, BAD_K, "features_used",
                   "bad JSON");
    b.rows[BAD_K].features_used = saved;

    b.rows[BAD_K].new_spot_price = INFINITY;
    expect_refused(&b, LOG_FIELDS | SPOTDB_EXPERIMENT_LOG_NEW_SPOT_PRICE,
                   SPOTDB_EINVAL, BAD_K, "new_spot_price", "infinite price");
    b.rows[BAD_K].new_spot_price = 0;

    /* the required instance_id: NULL in row k, malformed in row k */
    copy_id(saved_id, b.rows[BAD_K].instance_id);
    b.rows[BAD_K].instance_id[0] = '\0';
    expect_refused(&b, LOG_FIELDS, SPOTDB_EINVAL, BAD_K, "instance_id",
                   "instance_id NULL");
    copy_id(b.rows[BAD_K].instance_id, "not-a-uuid");
    expect_refused(&b, LOG_FIELDS, SPOTDB_EINVAL, BAD_K, "instance_id",
                   "instance_id malformed");
    copy_id(b.rows[BAD_K].instance_id, saved_id);
    b.rows[BAD_K].nulls |= SPOTDB_EXPERIMENT_LOG_INSTANCE_ID;
    expect_refused(&b, LOG_FIELDS, SPOTDB_EINVAL, BAD_K, "instance_id",
                   "instance_id NULL bit");
    b.rows[BAD_K].nulls &= ~SPOTDB_EXPERIMENT_LOG_INSTANCE_ID;

    /* INSTANCE_ID missing from fields: the mask's fault, no row's */
    bad = 77;
    ck_assert_int_eq(spotdb_experiment_log_insert_many(
                         db, b.rows, b.n,
                         LOG_FIELDS & ~SPOTDB_EXPERIMENT_LOG_INSTANCE_ID,
                         NULL, &bad), SPOTDB_EINVAL);
    ck_assert_int_eq(bad, -1);
    ck_assert_ptr_nonnull(strstr(spotdb_errmsg(db), "instance_id"));
    ck_assert_ptr_null(strstr(spotdb_errmsg(db), "rows["));

    /* the fixed rows all go in */
    OK(spotdb_experiment_log_insert_many(db, b.rows, BAD_N, LOG_FIELDS, NULL,
                                         NULL));
    bulk_free(&b);
}
END_TEST

START_TEST(log_insert_many_refused_by_the_server)
{
    bulk b;
    int64_t bad;
    char saved_id[SPOTDB_UUID_SIZE];
    const char *saved;
    long before;

    base_rows();
    bulk_make(&b, BAD_N, 0, T0, 1000);

    /* a foreign key: instance_id well-formed but absent */
    copy_id(saved_id, b.rows[BAD_K].instance_id);
    copy_id(b.rows[BAD_K].instance_id, UUID_ABSENT);
    expect_refused(&b, LOG_FIELDS, SPOTDB_EREFERENCE, BAD_K,
                   "experiment_logs_instance_id_fkey", "absent instance");
    copy_id(b.rows[BAD_K].instance_id, saved_id);
    /* and the model */
    b.rows[BAD_K + 1].nulls &= ~SPOTDB_EXPERIMENT_LOG_MODEL_ID;
    copy_id(b.rows[BAD_K + 1].model_id, UUID_ABSENT);
    expect_refused(&b, LOG_FIELDS, SPOTDB_EREFERENCE, BAD_K + 1,
                   "experiment_logs_model_id_fkey", "absent model");
    copy_id(b.rows[BAD_K + 1].model_id, g_model);

    /* duplicate ids among the rows: j = 100 and k share one */
    for (size_t i = 0; i < BAD_N; i++)
        snprintf(b.rows[i].id, SPOTDB_UUID_SIZE,
                 "%08zx-aaaa-4aaa-8aaa-000000000000", i);
    copy_id(b.rows[BAD_K].id, b.rows[100].id);
    bad = expect_refused(&b, LOG_FIELDS | SPOTDB_EXPERIMENT_LOG_ID,
                         SPOTDB_ECONFLICT, -1, "experiment_logs_pkey",
                         "duplicate ids in the rows");
    ck_assert_msg(bad == 100 || bad == BAD_K, "duplicate: bad_row %lld, "
                  "expected 100 or %d", (long long)bad, BAD_K);
    snprintf(b.rows[BAD_K].id, SPOTDB_UUID_SIZE,
             "%08x-aaaa-4aaa-8aaa-000000000000", (unsigned)BAD_K);

    /* an id already in the table */
    th_exec(pg, "INSERT INTO experiment_logs (id, instance_id) SELECT "
            "'000004d2-aaaa-4aaa-8aaa-000000000000', id FROM instances "
            "LIMIT 1");                         /* 0x4d2 = 1234 */
    bad = expect_refused(&b, LOG_FIELDS | SPOTDB_EXPERIMENT_LOG_ID,
                         SPOTDB_ECONFLICT, BAD_K, "experiment_logs_pkey",
                         "id already stored");

    /* JSON that jsonb refuses: the server's refusal, nothing stored */
    th_exec(pg, "DELETE FROM experiment_logs "
            "WHERE id = '000004d2-aaaa-4aaa-8aaa-000000000000'");
    saved = b.rows[BAD_K].features_used;
    before = rows_in("experiment_logs");
    {
        static const char *const texts[2] = { "{\"a\": \"\\u0000\"}",
                                              "{'a': 1}" };
        int rc[2];
        int64_t row[2];
        char msg[2][SPOTDB__ERRMSG_MAX];

        for (int j = 0; j < 2; j++) {
            b.rows[BAD_K].features_used = texts[j];
            row[j] = 77;
            rc[j] = spotdb_experiment_log_insert_many(db, b.rows, BAD_N,
                                                      LOG_FIELDS, NULL,
                                                      &row[j]);
            snprintf(msg[j], sizeof msg[j], "%s", spotdb_errmsg(db));
            fprintf(stderr, "test_bulk: features_used %s at row %d: rc %d "
                    "(%s), bad_row %lld, sqlstate \"%s\", message: %s\n",
                    texts[j], BAD_K, rc[j], spotdb_strerror(rc[j]),
                    (long long)row[j], spotdb_sqlstate(db), msg[j]);
            EQI(rows_in("experiment_logs"), before);
        }
        for (int j = 0; j < 2; j++) {
            ck_assert_msg(rc[j] == SPOTDB_EINVAL, "features_used %s: %d",
                          texts[j], rc[j]);
            /* the refused row, named with its column */
            ck_assert_msg(row[j] == BAD_K, "features_used %s in rows[%d]: "
                          "bad_row %lld (%s)", texts[j], BAD_K,
                          (long long)row[j], msg[j]);
            ck_assert_msg(strstr(msg[j], "rows[1234]"), "%s", msg[j]);
            ck_assert_msg(strstr(msg[j], "features_used"), "%s", msg[j]);
        }
    }
    b.rows[BAD_K].features_used = saved;

    /* the handle works, and the fixed rows all go in */
    OK(spotdb_experiment_log_insert_many(db, b.rows, BAD_N,
                                         LOG_FIELDS | SPOTDB_EXPERIMENT_LOG_ID,
                                         NULL, &bad));
    EQI(bad, -1);
    EQI(rows_in("experiment_logs"), before + BAD_N);
    bulk_free(&b);
}
END_TEST

/* ======================================================================== */
/* 3. transactions                                                          */
/* ======================================================================== */

START_TEST(log_insert_many_in_transactions)
{
    bulk b;
    int64_t bad;
    long before;

    base_rows();
    bulk_make(&b, 500, 0, T0, 1000);
    before = rows_in("experiment_logs");

    /* rolled back: nothing */
    OK(spotdb_begin(db));
    OK(spotdb_experiment_log_insert_many(db, b.rows, 500, LOG_FIELDS, NULL,
                                         &bad));
    ck_assert(spotdb_in_transaction(db));
    EQI(rows_in("experiment_logs"), before);        /* not visible yet */
    OK(spotdb_rollback(db));
    EQI(rows_in("experiment_logs"), before);

    /* committed: everything, with what else the transaction did */
    OK(spotdb_begin(db));
    OK(spotdb_experiment_log_insert_many(db, b.rows, 500, LOG_FIELDS, NULL,
                                         &bad));
    OK(spotdb_experiment_log_insert_many(db, b.rows, 100, LOG_FIELDS, NULL,
                                         &bad));
    EQI(rows_in("experiment_logs"), before);
    OK(spotdb_commit(db));
    EQI(rows_in("experiment_logs"), before + 600);
    before += 600;

    /* a library refusal sends nothing: the transaction stays usable */
    OK(spotdb_begin(db));
    OK(spotdb_experiment_log_insert_many(db, b.rows, 50, LOG_FIELDS, NULL,
                                         &bad));
    b.rows[7].decision = "MAYBE";
    FAILS(SPOTDB_EINVAL, "rows[7]", spotdb_experiment_log_insert_many(
              db, b.rows, 50, LOG_FIELDS, NULL, &bad));
    EQI(bad, 7);
    b.rows[7].decision = "STAY";
    OK(spotdb_commit(db));
    EQI(rows_in("experiment_logs"), before + 50);
    before += 50;

    /* a COPY the server refuses dooms the transaction: commit is ESQL and
     * stores nothing, not even the earlier successful insert_many */
    OK(spotdb_begin(db));
    OK(spotdb_experiment_log_insert_many(db, b.rows, 500, LOG_FIELDS, NULL,
                                         &bad));
    copy_id(b.rows[321].instance_id, UUID_ABSENT);
    FAILS(SPOTDB_EREFERENCE, "rows[321]", spotdb_experiment_log_insert_many(
              db, b.rows, 500, LOG_FIELDS, NULL, &bad));
    EQI(bad, 321);
    ck_assert(spotdb_in_transaction(db));
    FAILS(SPOTDB_ESQL, NULL, spotdb_commit(db));
    ck_assert(!spotdb_in_transaction(db));
    EQI(rows_in("experiment_logs"), before);
    copy_id(b.rows[321].instance_id, g_inst_a);

    /* the handle is ready for the next one */
    OK(spotdb_experiment_log_insert_many(db, b.rows, 500, LOG_FIELDS, NULL,
                                         &bad));
    EQI(rows_in("experiment_logs"), before + 500);
    bulk_free(&b);
}
END_TEST

/* ======================================================================== */
/* 4. insert_many of instances                                              */
/* ======================================================================== */

START_TEST(instance_insert_many)
{
    enum { N = 200 };
    spotdb_instance rows[N];
    char ec2[N][24];
    char (*ids)[SPOTDB_UUID_SIZE] = tcalloc(N, SPOTDB_UUID_SIZE);
    int64_t bad = 5;
    long before;
    int rc;

    ck_assert_ptr_nonnull(ids);
    base_rows();
    before = rows_in("instances");
    memset(rows, 0, sizeof rows);
    for (size_t i = 0; i < N; i++) {
        snprintf(ec2[i], sizeof ec2[i], "i-%017zx", i + 0x1000);
        copy_id(rows[i].account_id, g_acct);
        rows[i].instance_id = ec2[i];
        rows[i].instance_type = i % 2 ? "c5.large" : "m5.xlarge";
        rows[i].availability_zone = "ap-south-1b";
        rows[i].pipeline_mode = i % 3 ? "CLUSTER" : "LINEAR";
        rows[i].metadata = "{\"n\": 1}";
    }

    /* a duplicate instance_id among the rows: 40 and 150 */
    rows[150].instance_id = ec2[40];
    rc = spotdb_instance_insert_many(db, rows, N, INST_REQ |
                                     SPOTDB_INSTANCE_PIPELINE_MODE |
                                     SPOTDB_INSTANCE_METADATA, ids, &bad);
    fprintf(stderr, "test_bulk: duplicate instance_id in rows 40 and 150: "
            "rc %d, bad_row %lld, message: %s\n", rc, (long long)bad,
            spotdb_errmsg(db));
    ck_assert_msg(rc == SPOTDB_ECONFLICT, "rc %d (%s): %s", rc,
                  spotdb_strerror(rc), spotdb_errmsg(db));
    ck_assert_msg(strstr(spotdb_errmsg(db), "instances_instance_id_key"),
                  "message \"%s\" does not name the constraint",
                  spotdb_errmsg(db));
    ck_assert_msg(bad >= 0 && bad < N, "bad_row %lld", (long long)bad);
    EQS(rows[bad].instance_id, ec2[40]);
    EQI(rows_in("instances"), before);

    /* a duplicate of an instance already stored */
    rows[150].instance_id = "i-0000000000000000a";
    bad = 5;
    FAILS(SPOTDB_ECONFLICT, "instances_instance_id_key",
          spotdb_instance_insert_many(db, rows, N, INST_REQ, ids, &bad));
    EQI(bad, 150);
    EQI(rows_in("instances"), before);

    /* a rule break: the library's check, with the row */
    rows[150].instance_id = "i-XYZ";
    FAILS(SPOTDB_EINVAL, "rows[150]",
          spotdb_instance_insert_many(db, rows, N, INST_REQ, ids, &bad));
    EQI(bad, 150);
    ck_assert_msg(strstr(spotdb_errmsg(db), "instance_id"), "%s",
                  spotdb_errmsg(db));
    /* the account missing */
    rows[150].instance_id = ec2[150];
    copy_id(rows[77].account_id, UUID_ABSENT);
    FAILS(SPOTDB_EREFERENCE, "rows[77]",
          spotdb_instance_insert_many(db, rows, N, INST_REQ, ids, &bad));
    EQI(bad, 77);
    EQI(rows_in("instances"), before);
    copy_id(rows[77].account_id, g_acct);
    /* required field left out */
    FAILS(SPOTDB_EINVAL, "availability_zone",
          spotdb_instance_insert_many(db, rows, N,
                                      INST_REQ &
                                      ~SPOTDB_INSTANCE_AVAILABILITY_ZONE,
                                      ids, &bad));

    /* all fixed: 200 rows, ids generated, defaults taken */
    bad = 5;
    OK(spotdb_instance_insert_many(db, rows, N, INST_REQ |
                                   SPOTDB_INSTANCE_PIPELINE_MODE |
                                   SPOTDB_INSTANCE_METADATA, ids, &bad));
    EQI(bad, -1);
    EQI(rows_in("instances"), before + N);
    EQI(qn("SELECT count(*) FROM instances WHERE is_active AND NOT "
           "is_shadow_mode AND availability_zone = 'ap-south-1b'"), N);
    for (size_t i = 0; i < N; i++) {
        spotdb_instance *g = NULL;

        ck_assert_msg(is_uuid(ids[i]) && ids[i][14] == '4', "ids[%zu] %s", i,
                      ids[i]);
        OK(spotdb_instance_get(&g, db, ids[i]));
        EQS(g->instance_id, ec2[i]);
        EQS(g->account_id, g_acct);
        EQS(g->instance_type, i % 2 ? "c5.large" : "m5.xlarge");
        EQS(g->pipeline_mode, i % 3 ? "CLUSTER" : "LINEAR");
        EQS(g->metadata, "{\"n\": 1}");
        ck_assert(g->is_active);
        ISNULL(g, SPOTDB_INSTANCE_LAST_EVALUATION);
        spotdb_instance_free(g);
    }
    tfree(ids);
}
END_TEST

/* ======================================================================== */
/* 5. streams                                                               */
/* ======================================================================== */

/* Rows as text, every field and the nulls, in the order received. */
typedef struct acc {
    char **v;
    size_t n, cap;
    long stop_after;            /* stop at this call (0: never) */
    int stop_value;
} acc;

static void acc_add(acc *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void acc_add(acc *a, const char *fmt, ...)
{
    char buf[4096];
    va_list ap;
    size_t len;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 64;
        a->v = realloc(a->v, a->cap * sizeof *a->v);
        ck_assert_ptr_nonnull(a->v);
    }
    len = strlen(buf);
    a->v[a->n] = malloc(len + 1);
    ck_assert_ptr_nonnull(a->v[a->n]);
    memcpy(a->v[a->n++], buf, len + 1);
}

static void acc_free(acc *a)
{
    for (size_t i = 0; i < a->n; i++)
        free(a->v[i]);
    free(a->v);
    memset(a, 0, sizeof *a);
}

/* The first `n` of x equal y's rows, which are n. */
static void acc_eq(const acc *x, const acc *y, size_t n, const char *what)
{
    ck_assert_msg(y->n == n, "%s: %zu rows, expected %zu", what, y->n, n);
    ck_assert_msg(x->n >= n, "%s: list has %zu rows, stream %zu", what, x->n,
                  n);
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(strcmp(x->v[i], y->v[i]) == 0,
                      "%s: row %zu differs:\n list   %s\n stream %s", what, i,
                      x->v[i], y->v[i]);
}

#define LL(x) ((long long)(x))
#define ULL(x) ((unsigned long long)(x))

static void fmt_user(acc *a, const spotdb_user *r)
{
    acc_add(a, "%s|%s|%s|%s|%s|%d|%lld|%lld|%lld|%llx", r->id, S(r->email),
            S(r->username), S(r->full_name), S(r->role), r->is_active,
            LL(r->created_at), LL(r->updated_at), LL(r->last_login),
            ULL(r->nulls));
}

static void fmt_account(acc *a, const spotdb_account *r)
{
    acc_add(a, "%s|%s|%s|%s|%s|%s|%s|%s|%d|%lld|%lld|%llx", r->id, r->user_id,
            S(r->account_id), S(r->account_name), S(r->environment_type),
            S(r->role_arn), S(r->external_id), S(r->region), r->is_active,
            LL(r->created_at), LL(r->updated_at), ULL(r->nulls));
}

static void fmt_instance(acc *a, const spotdb_instance *r)
{
    acc_add(a, "%s|%s|%s|%s|%s|%s|%s|%d|%d|%lld|%s|%lld|%lld|%llx", r->id,
            r->account_id, S(r->instance_id), S(r->instance_type),
            S(r->availability_zone), S(r->assigned_model_version),
            S(r->pipeline_mode), r->is_shadow_mode, r->is_active,
            LL(r->last_evaluation), S(r->metadata), LL(r->created_at),
            LL(r->updated_at), ULL(r->nulls));
}

static void fmt_model(acc *a, const spotdb_model *r)
{
    acc_add(a, "%s|%s|%s|%s|%s|%s|%d|%d|%s|%lld|%s|%llx", r->id, S(r->name),
            S(r->version), S(r->s3_path), S(r->local_path),
            S(r->description), r->is_experimental, r->is_active,
            S(r->feature_version), LL(r->created_at), r->created_by,
            ULL(r->nulls));
}

static void fmt_experiment_log(acc *a, const spotdb_experiment_log *r)
{
    acc_add(a, "%s|%s|%s|%s|%d|%.17g|%s|%s|%lld|%d|%d|%s|%s|%.17g|%.17g|"
            "%.17g|%s|%s|%llx", r->id, r->instance_id, r->model_id,
            S(r->pipeline_mode), r->is_shadow_run, r->prediction_score,
            S(r->decision), S(r->decision_reason), LL(r->execution_time),
            (int)r->execution_duration_ms, (int)r->candidates_evaluated,
            S(r->selected_instance_type), S(r->selected_availability_zone),
            r->old_spot_price, r->new_spot_price, r->projected_hourly_savings,
            S(r->features_used), S(r->error_message), ULL(r->nulls));
}

static void fmt_active_instance(acc *a, const spotdb_active_instance *r)
{
    acc_add(a, "%s|%s|%s|%s|%s|%d|%s|%lld|%s|%s|%s|%s|%s|%s|%s|%s|%llx",
            r->id, S(r->instance_id), S(r->instance_type),
            S(r->availability_zone), S(r->pipeline_mode), r->is_shadow_mode,
            S(r->assigned_model_version), LL(r->last_evaluation),
            S(r->aws_account_id), S(r->account_name),
            S(r->environment_type), S(r->region), S(r->user_email),
            S(r->username), S(r->model_name), S(r->model_version),
            ULL(r->nulls));
}

static void fmt_recent_experiment(acc *a, const spotdb_recent_experiment *r)
{
    acc_add(a, "%s|%lld|%s|%.17g|%d|%d|%s|%s|%s|%s|%s|%s|%s|%s|%.17g|%llx",
            r->id, LL(r->execution_time), S(r->decision), r->prediction_score,
            r->is_shadow_run, (int)r->execution_duration_ms,
            S(r->instance_id), S(r->instance_type), S(r->pipeline_mode),
            S(r->aws_account_id), S(r->account_name), S(r->model_name),
            S(r->model_version), S(r->selected_instance_type),
            r->projected_hourly_savings, ULL(r->nulls));
}

/* The averages to 12 digits: a float8 sum depends on the order rows
 * reach it, which a new plan (autoanalyze ran between the list and the
 * stream) changes; 0.0975 came back once as 0.097500000000000003 and
 * once as 0.097499999999999989 (reports.h). */
static void fmt_model_performance(acc *a, const spotdb_model_performance *r)
{
    acc_add(a, "%s|%s|%lld|%.12g|%lld|%.12g|%llx", S(r->model_name),
            S(r->model_version), LL(r->runs), r->avg_prediction_score,
            LL(r->switch_count), r->avg_projected_savings, ULL(r->nulls));
}

/* The stream's callback: record, and stop at stop_after. */
#define DEFINE_CB(T)                                                         \
    static int cb_##T(const spotdb_##T *row, void *payload)                  \
    {                                                                        \
        acc *a = payload;                                                    \
        fmt_##T(a, row);                                                     \
        if (a->stop_after && (long)a->n == a->stop_after)                    \
            return a->stop_value;                                            \
        return 0;                                                            \
    }
DEFINE_CB(user)
DEFINE_CB(account)
DEFINE_CB(instance)
DEFINE_CB(model)
DEFINE_CB(experiment_log)
DEFINE_CB(active_instance)
DEFINE_CB(recent_experiment)
DEFINE_CB(model_performance)

/* Every row of a table list, paging with a cursor. */
#define DEFINE_LIST_ALL(T)                                                   \
    static void list_all_##T(const spotdb_##T##_filter *f, int32_t limit,   \
                             acc *a)                                         \
    {                                                                        \
        char *cursor = NULL;                                                 \
        int pages = 0;                                                       \
        for (;;) {                                                           \
            spotdb_##T##_rows *r = NULL;                                     \
            OK(spotdb_##T##_list(&r, db, f, cursor, limit));                 \
            for (size_t k = 0; k < r->count; k++)                            \
                fmt_##T(a, &r->items[k]);                                    \
            free(cursor);                                                    \
            cursor = r->next_cursor ? strdup(r->next_cursor) : NULL;         \
            spotdb_##T##_rows_free(r);                                       \
            ck_assert_msg(++pages < 10000, "paging does not end");           \
            if (!cursor)                                                     \
                break;                                                       \
        }                                                                    \
    }
DEFINE_LIST_ALL(user)
DEFINE_LIST_ALL(account)
DEFINE_LIST_ALL(instance)
DEFINE_LIST_ALL(model)
DEFINE_LIST_ALL(experiment_log)

#define DEFINE_VIEW_ALL(T)                                                   \
    static void list_all_##T(const spotdb_##T##_filter *f, int32_t limit,   \
                             acc *a)                                         \
    {                                                                        \
        spotdb_##T##_rows *r = NULL;                                         \
        OK(spotdb_##T##_list(&r, db, f, limit));                             \
        ck_assert_ptr_null(r->next_cursor);                                  \
        for (size_t k = 0; k < r->count; k++)                                \
            fmt_##T(a, &r->items[k]);                                        \
        spotdb_##T##_rows_free(r);                                           \
    }
DEFINE_VIEW_ALL(active_instance)
DEFINE_VIEW_ALL(recent_experiment)

static void list_all_model_performance(
    const spotdb_model_performance_filter *f, int32_t limit, acc *a)
{
    spotdb_model_performance_rows *r = NULL;

    (void)limit;
    OK(spotdb_model_performance_list(&r, db, f));
    ck_assert_ptr_null(r->next_cursor);
    for (size_t k = 0; k < r->count; k++)
        fmt_model_performance(a, &r->items[k]);
    spotdb_model_performance_rows_free(r);
}

/* Uniform stream calls: tables take no limit, views do. */
#define TABLE_STREAM(T)                                                      \
    static int stream_##T(const spotdb_##T##_filter *f, spotdb_##T##_cb cb,  \
                          acc *a)                                            \
    {                                                                        \
        return spotdb_##T##_stream(db, f, cb, a);                            \
    }
TABLE_STREAM(user)
TABLE_STREAM(account)
TABLE_STREAM(instance)
TABLE_STREAM(model)
TABLE_STREAM(experiment_log)
TABLE_STREAM(model_performance)
#define VIEW_STREAM(T)                                                       \
    static int stream_##T(const spotdb_##T##_filter *f, spotdb_##T##_cb cb,  \
                          acc *a)                                            \
    {                                                                        \
        return spotdb_##T##_stream(db, f, 0, cb, a);                         \
    }
VIEW_STREAM(active_instance)
VIEW_STREAM(recent_experiment)

static char g_some_log[SPOTDB_UUID_SIZE];   /* a log that get() must find */
static long g_marker;

/* Run a marker statement on the handle's session, so that
 * pg_stat_activity shows it as the session's last query. */
static void mark(char *text, size_t n)
{
    PGresult *r;

    snprintf(text, n, "SELECT 'spotdb-test-marker-%ld'", ++g_marker);
    r = PQexec(db->conn, text);
    ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK, "%s",
                  PQerrorMessage(db->conn));
    PQclear(r);
}

/* The session's last statement is still `text`: nothing was sent. */
static void nothing_sent_since(const char *text, const char *what)
{
    char *q = NULL;

    for (int tries = 0; tries < 50; tries++) {
        free(q);
        q = th_scalar(pg, "SELECT 1");  /* a fresh snapshot of activity */
        free(q);
        {
            char sql[256];

            snprintf(sql, sizeof sql, "SELECT query FROM pg_stat_activity "
                     "WHERE pid = %d", PQbackendPID(db->conn));
            q = th_scalar(pg, sql);
        }
        if (q && strcmp(q, text) == 0)
            break;
    }
    ck_assert_msg(q && strcmp(q, text) == 0, "%s: the session ran \"%s\" "
                  "after the marker \"%s\"", what, S(q), text);
    free(q);
}

static void handle_works(void)
{
    spotdb_experiment_log *l = NULL;

    OK(spotdb_experiment_log_get(&l, db, g_some_log));
    EQS(l->id, g_some_log);
    spotdb_experiment_log_free(l);
}

/* Stream against list for one type and filter; then (full only) stop
 * early, NULL callback.  Returns the row count. */
#define DEFINE_CHECK(T)                                                      \
    static size_t check_##T(const spotdb_##T##_filter *f, int32_t limit,    \
                            int full, const char *what)                      \
    {                                                                        \
        acc l = { 0 }, s = { 0 }, s2 = { 0 };                                \
        size_t n;                                                            \
        int rc;                                                              \
        list_all_##T(f, limit, &l);                                          \
        rc = stream_##T(f, cb_##T, &s);                                      \
        ck_assert_msg(rc == 0, "%s: stream -> %d: %s", what, rc,             \
                      spotdb_errmsg(db));                                    \
        acc_eq(&l, &s, l.n, what);                                           \
        n = l.n;                                                             \
        if (full) {                                                          \
            ck_assert_msg(n >= 4, "%s: only %zu rows to stop in", what, n);  \
            acc_free(&s);                                                    \
            s.stop_after = 3;                                                \
            s.stop_value = 7;                                                \
            rc = stream_##T(f, cb_##T, &s);                                  \
            ck_assert_msg(rc == 7, "%s: stopped stream -> %d (%s), "         \
                          "expected 7", what, rc, spotdb_errmsg(db));        \
            acc_eq(&l, &s, 3, what);                                         \
            handle_works();                                                  \
            rc = stream_##T(f, cb_##T, &s2);                                 \
            ck_assert_msg(rc == 0, "%s: stream after a stop -> %d: %s",      \
                          what, rc, spotdb_errmsg(db));                      \
            acc_eq(&l, &s2, n, what);                                        \
            FAILS(SPOTDB_EINVAL, NULL, stream_##T(f, NULL, &s));             \
            handle_works();                                                  \
        }                                                                    \
        acc_free(&l);                                                        \
        acc_free(&s);                                                        \
        acc_free(&s2);                                                       \
        return n;                                                            \
    }
DEFINE_CHECK(user)
DEFINE_CHECK(account)
DEFINE_CHECK(instance)
DEFINE_CHECK(model)
DEFINE_CHECK(experiment_log)
DEFINE_CHECK(active_instance)
DEFINE_CHECK(recent_experiment)
DEFINE_CHECK(model_performance)

/* A bad filter: EINVAL naming `needle`, no callback, nothing sent. */
#define DEFINE_BAD(T)                                                        \
    static void bad_##T(const spotdb_##T##_filter *f, const char *needle,    \
                        const char *what)                                    \
    {                                                                        \
        acc s = { 0 };                                                       \
        char marker[96];                                                     \
        mark(marker, sizeof marker);                                         \
        FAILS(SPOTDB_EINVAL, needle, stream_##T(f, cb_##T, &s));             \
        ck_assert_msg(s.n == 0, "%s: the callback ran", what);               \
        EQS(spotdb_sqlstate(db), "");                                        \
        nothing_sent_since(marker, what);                                    \
        acc_free(&s);                                                        \
    }
DEFINE_BAD(user)
DEFINE_BAD(account)
DEFINE_BAD(instance)
DEFINE_BAD(model)
DEFINE_BAD(experiment_log)
DEFINE_BAD(active_instance)
DEFINE_BAD(recent_experiment)
DEFINE_BAD(model_performance)

/* Users, accounts, instances, models and logs for the streams: enough of
 * each to stop after 3, with filters that keep some and drop others, and
 * ties on the order keys. */
static int64_t g_now;

static void stream_rows(void)
{
    char u[4][SPOTDB_UUID_SIZE], a[3][SPOTDB_UUID_SIZE];
    char in[7][SPOTDB_UUID_SIZE], m[4][SPOTDB_UUID_SIZE];
    static const char *const roles[] = { "admin", "user", "lab", "lab" };
    char name[32], ec2[32];
    bulk b;
    enum { NLOGS = 240 };
    uint64_t fields = LOG_FIELDS | SPOTDB_EXPERIMENT_LOG_IS_SHADOW_RUN |
                      SPOTDB_EXPERIMENT_LOG_PROJECTED_HOURLY_SAVINGS |
                      SPOTDB_EXPERIMENT_LOG_SELECTED_INSTANCE_TYPE;
    char (*ids)[SPOTDB_UUID_SIZE] = tcalloc(NLOGS, SPOTDB_UUID_SIZE);

    ck_assert_ptr_nonnull(ids);
    g_now = spotdb_now_us();
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof name, "streamer%d", i);
        make_user(u[i], name, roles[i]);
    }
    make_account(a[0], u[0], "200000000001", "LAB", 1);
    make_account(a[1], u[1], "200000000002", "PROD", 1);
    make_account(a[2], u[2], "200000000003", "LAB", 1);
    make_account(in[0], u[3], "200000000004", "PROD", 0); /* inactive */
    make_model(m[0], "Alpha", "v1", 1);
    make_model(m[1], "Beta", "v2", 1);
    make_model(m[2], "Gamma", "v3", 0);
    make_model(m[3], "Delta", "v1", 1);        /* shares v1 with Alpha */
    {
        /* accounts a0..a2 active; the fourth (in[0] above) inactive */
        char inactive_acct[SPOTDB_UUID_SIZE];

        copy_id(inactive_acct, in[0]);
        for (int i = 0; i < 7; i++) {
            const char *acct = i < 3 ? a[0] : i < 5 ? a[1] : i == 5 ? a[2]
                                                                   : inactive_acct;

            snprintf(ec2, sizeof ec2, "i-%017x", 0xabc00 + i);
            make_instance(in[i], acct, ec2, i % 2 ? "LINEAR" : "CLUSTER",
                          i != 3, i % 3 == 0 ? "v1" : i % 3 == 1 ? "v2" : "v9",
                          i == 2 ? 0 : g_now - (int64_t)(i % 3) * HOUR_US);
        }
    }
    /* logs: 200 in the last week (20 sharing one execution_time), 40 older;
     * models cycle through the four and none */
    bulk_make(&b, NLOGS, 0, g_now - 30 * DAY_US, 1);
    for (size_t i = 0; i < NLOGS; i++) {
        spotdb_experiment_log *r = &b.rows[i];

        copy_id(r->instance_id, in[i % 7]);
        r->nulls = 0;
        if (i % 5 == 4)
            r->nulls |= SPOTDB_EXPERIMENT_LOG_MODEL_ID;
        else
            copy_id(r->model_id, m[i % 5]);
        if (i % 6 == 0)
            r->nulls |= SPOTDB_EXPERIMENT_LOG_DECISION_REASON;
        r->is_shadow_run = i % 2 == 0;
        r->projected_hourly_savings = (double)(i % 7) * 0.125;
        if (i % 8 == 0)
            r->nulls |= SPOTDB_EXPERIMENT_LOG_PROJECTED_HOURLY_SAVINGS;
        r->selected_instance_type = i % 3 == 0 ? "c5.xlarge" : NULL;
        if (i < 200)
            r->execution_time = g_now - HOUR_US -
                                (i < 20 ? 0 : (int64_t)i * 60000000);
        else
            r->execution_time = g_now - 10 * DAY_US - (int64_t)i * 1000000;
    }
    OK(spotdb_experiment_log_insert_many(db, b.rows, NLOGS, fields, ids,
                                         NULL));
    copy_id(g_some_log, ids[17]);
    bulk_free(&b);
    tfree(ids);
}

START_TEST(streams_equal_lists)
{
    bool yes = true, no = false;
    const char *lab = "lab", *prod = "PROD", *linear = "LINEAR";
    const char *sw = "SWITCH";
    int64_t month_ago, week_ago;
    size_t all, some;

    stream_rows();
    month_ago = g_now - 40 * DAY_US;
    week_ago = g_now - 2 * DAY_US;

    {
        spotdb_user_filter f = SPOTDB_USER_FILTER_INIT;

        all = check_user(NULL, 2, 1, "users");
        EQI(all, rows_in("users"));
        f.role = lab;
        some = check_user(&f, 1, 0, "users role lab");
        EQI(some, 2);
        f.role = NULL;
        f.is_active = &yes;
        check_user(&f, 3, 1, "users active");
        f.is_active = NULL;
        f.role = "superuser";
        bad_user(&f, "role", "users bad role");
        f.role = NULL;
        f.version = 99;
        bad_user(&f, NULL, "users bad version");
    }
    {
        spotdb_account_filter f = SPOTDB_ACCOUNT_FILTER_INIT;

        all = check_account(NULL, 3, 1, "accounts");
        EQI(all, 4);
        f.environment_type = prod;
        some = check_account(&f, 1, 0, "accounts PROD");
        EQI(some, 2);
        f.is_active = &no;
        some = check_account(&f, 1, 0, "accounts PROD inactive");
        EQI(some, 1);
        f.is_active = NULL;
        f.environment_type = "DEV";
        bad_account(&f, "environment_type", "accounts bad environment");
        f.environment_type = NULL;
        f.user_id = "not-a-uuid";
        bad_account(&f, "user_id", "accounts bad user_id");
    }
    {
        spotdb_instance_filter f = SPOTDB_INSTANCE_FILTER_INIT;

        all = check_instance(NULL, 2, 1, "instances");
        EQI(all, 7);
        f.pipeline_mode = linear;
        some = check_instance(&f, 2, 0, "instances LINEAR");
        EQI(some, 3);
        f.is_active = &yes;
        some = check_instance(&f, 1, 0, "instances LINEAR active");
        EQI(some, 2);
        f.pipeline_mode = "PARALLEL";
        bad_instance(&f, "pipeline_mode", "instances bad mode");
        f.pipeline_mode = NULL;
        f.account_id = "nope";
        bad_instance(&f, "account_id", "instances bad account_id");
    }
    {
        spotdb_model_filter f = SPOTDB_MODEL_FILTER_INIT;

        all = check_model(NULL, 1, 1, "models");
        EQI(all, 4);
        f.is_active = &yes;
        some = check_model(&f, 2, 0, "models active");
        EQI(some, 3);
        f.is_active = NULL;
        f.name = "Beta";
        some = check_model(&f, 2, 0, "models Beta");
        EQI(some, 1);
        f.name = NULL;
        f.version = 99;
        bad_model(&f, NULL, "models bad version");
    }
    {
        spotdb_experiment_log_filter f = SPOTDB_EXPERIMENT_LOG_FILTER_INIT;

        all = check_experiment_log(NULL, 7, 1, "logs");
        EQI(all, 240);
        all = check_experiment_log(NULL, 0, 0, "logs (default limit)");
        EQI(all, 240);
        f.decision = sw;
        f.is_shadow_run = &no;
        some = check_experiment_log(&f, 9, 1, "logs real SWITCH");
        EQI(some, qn("SELECT count(*) FROM experiment_logs WHERE decision = "
                     "'SWITCH' AND NOT is_shadow_run"));
        ck_assert(some > 0 && some < 240);
        f.decision = NULL;
        f.is_shadow_run = NULL;
        f.executed_from = &week_ago;
        some = check_experiment_log(&f, 50, 1, "logs of the week");
        EQI(some, 200);
        f.executed_from = NULL;
        f.instance_id = "not-a-uuid";
        bad_experiment_log(&f, "instance_id", "logs bad instance_id");
        f.instance_id = NULL;
        f.decision = "MAYBE";
        bad_experiment_log(&f, "decision", "logs bad decision");
    }
    {
        spotdb_active_instance_filter f = SPOTDB_ACTIVE_INSTANCE_FILTER_INIT;
        acc s = { 0 };

        all = check_active_instance(NULL, 0, 1, "active instances");
        EQI(all, qn("SELECT count(*) FROM v_active_instances"));
        ck_assert(all >= 4);
        f.environment_type = prod;
        some = check_active_instance(&f, 0, 0, "active instances PROD");
        ck_assert(some > 0 && some < all);
        f.environment_type = "DEV";
        bad_active_instance(&f, "environment_type", "active bad env");
        /* a negative limit */
        FAILS(SPOTDB_EINVAL, NULL, spotdb_active_instance_stream(
                  db, NULL, -1, cb_active_instance, &s));
        ck_assert(s.n == 0);
        /* a limit: the first rows */
        {
            acc l = { 0 };

            list_all_active_instance(NULL, 0, &l);
            OK(spotdb_active_instance_stream(db, NULL, 2, cb_active_instance,
                                             &s));
            acc_eq(&l, &s, 2, "active instances limit 2");
            acc_free(&l);
        }
        acc_free(&s);
    }
    {
        spotdb_recent_experiment_filter f =
            SPOTDB_RECENT_EXPERIMENT_FILTER_INIT;

        all = check_recent_experiment(NULL, 0, 1, "recent experiments");
        EQI(all, qn("SELECT count(*) FROM v_recent_experiments"));
        f.decision = sw;
        f.is_shadow_run = &no;
        some = check_recent_experiment(&f, 0, 1, "recent real SWITCH");
        ck_assert(some > 0 && some < all);
        f.decision = "MAYBE";
        bad_recent_experiment(&f, "decision", "recent bad decision");
    }
    {
        spotdb_model_performance_filter f =
            SPOTDB_MODEL_PERFORMANCE_FILTER_INIT;

        all = check_model_performance(NULL, 0, 1, "performance (7 days)");
        EQI(all, 4);
        f.since = &month_ago;
        all = check_model_performance(&f, 0, 1, "performance (40 days)");
        EQI(all, 4);
        f.since = &week_ago;
        f.until = &g_now;
        check_model_performance(&f, 0, 1, "performance (2 days)");
        f.until = &week_ago;            /* empty window */
        some = check_model_performance(&f, 0, 0, "performance (empty)");
        EQI(some, 0);
        f.version = 99;
        bad_model_performance(&f, NULL, "performance bad version");
    }
    /* control of nothing_sent_since(): a stream that runs does replace
     * the marker as the session's last statement */
    {
        acc s = { 0 };
        char marker[96], sql[128], *q;

        mark(marker, sizeof marker);
        OK(spotdb_model_stream(db, NULL, cb_model, &s));
        EQI(s.n, 4);
        snprintf(sql, sizeof sql, "SELECT query FROM pg_stat_activity WHERE "
                 "pid = %d", PQbackendPID(db->conn));
        q = th_scalar(pg, sql);
        /* the stream's cursor runs in a transaction of its own, so its
         * last statement is that COMMIT */
        ck_assert_msg(q && strcmp(q, marker) != 0, "last query: %s", S(q));
        free(q);
        acc_free(&s);
    }
    /* NULL callbacks */
    FAILS(SPOTDB_EINVAL, NULL, spotdb_user_stream(db, NULL, NULL, NULL));
    FAILS(SPOTDB_EINVAL, NULL, spotdb_recent_experiment_stream(db, NULL, 0,
                                                               NULL, NULL));
    handle_works();
}
END_TEST

/* A stream stopped early inside a transaction leaves it usable. */
START_TEST(stream_stopped_inside_transaction)
{
    acc s = { 0 };
    int64_t n = 0;
    bulk b;

    base_rows();
    bulk_make(&b, 1000, 0, T0, 1000);
    OK(spotdb_experiment_log_insert_many(db, b.rows, 1000, LOG_FIELDS, NULL,
                                         NULL));
    OK(spotdb_begin(db));
    OK(spotdb_experiment_log_insert_many(db, b.rows, 10, LOG_FIELDS, NULL,
                                         NULL));
    s.stop_after = 3;
    s.stop_value = 42;
    EQI(spotdb_experiment_log_stream(db, NULL, cb_experiment_log, &s), 42);
    EQI(s.n, 3);
    OK(spotdb_experiment_log_count(&n, db, NULL));
    EQI(n, 1010);
    OK(spotdb_commit(db));
    EQI(rows_in("experiment_logs"), 1010);
    acc_free(&s);
    bulk_free(&b);
}
END_TEST

/* The backend is terminated while the stream is fetching: the call ends
 * with SPOTDB_ECONN (no hang in the pipeline, no callback after the
 * error), and a new handle works. */
typedef struct killer {
    long n;
    int pid;
} killer;

static int cb_kill(const spotdb_experiment_log *row, void *payload)
{
    killer *k = payload;
    char sql[96];

    (void)row;
    if (++k->n == 1500) {       /* well inside the second batch */
        snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(%d)", k->pid);
        th_exec(pg, sql);
    }
    return 0;
}

START_TEST(stream_ends_with_econn_when_the_backend_dies)
{
    killer k = { 0, PQbackendPID(db->conn) };
    spotdb_db *fresh;
    int64_t n = 0;
    bulk b;
    int rc;

    base_rows();
    bulk_make(&b, 20000, 0, T0, 1000);
    OK(spotdb_experiment_log_insert_many(db, b.rows, b.n, LOG_FIELDS, NULL,
                                         NULL));
    rc = spotdb_experiment_log_stream(db, NULL, cb_kill, &k);
    EQI(rc, SPOTDB_ECONN);
    /* the rows already fetched may still be handed over, never all */
    ck_assert_msg(k.n >= 1500 && k.n < 20000, "callbacks: %ld", k.n);
    fresh = th_open();
    OK_ON(fresh, spotdb_experiment_log_count(&n, fresh, NULL));
    EQI(n, 20000);
    spotdb_close(fresh);
    bulk_free(&b);
}
END_TEST

static int cb_count_logs(const spotdb_experiment_log *row, void *payload)
{
    (void)row;
    ++*(int64_t *)payload;
    return 0;
}

/* Terminate the handle's backend and wait until it is gone, so that the
 * next call finds the connection closed before it sends anything. */
static void kill_backend_between_calls(void)
{
    int pid = PQbackendPID(db->conn);

    th_qn(pg, "SELECT pg_terminate_backend(%d)", pid);
    for (int i = 0; i < 500 && th_qn(pg, "SELECT count(*) FROM "
                                     "pg_stat_activity WHERE pid = %d",
                                     pid) > 0; i++)
        th_sleep_s(0.01);
}

/* A handle whose backend was terminated between calls: insert_many and a
 * stream reconnect before sending and work; every row is stored once. */
START_TEST(bulk_calls_on_a_dead_connection)
{
    int old_pid;
    int64_t streamed = 0;
    bulk b;

    base_rows();
    bulk_make(&b, 100, 0, T0, 1000);
    old_pid = PQbackendPID(db->conn);
    kill_backend_between_calls();
    OK(spotdb_experiment_log_insert_many(db, b.rows, b.n, LOG_FIELDS, NULL,
                                         NULL));
    ck_assert_int_ne(PQbackendPID(db->conn), old_pid);
    EQI(rows_in("experiment_logs"), 100);
    kill_backend_between_calls();
    OK(spotdb_experiment_log_stream(db, NULL, cb_count_logs, &streamed));
    EQI(streamed, 100);
    EQI(rows_in("experiment_logs"), 100);
    bulk_free(&b);
}
END_TEST

/* ======================================================================== */
/* 6. constant memory                                                       */
/* ======================================================================== */

/* A "VmHWM:" or "VmRSS:" figure of /proc/self/status, in KiB. */
static long status_kib(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;

    ck_assert_ptr_nonnull(f);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, key, strlen(key)) == 0) {
            v = atol(line + strlen(key));
            break;
        }
    fclose(f);
    ck_assert_msg(v >= 0, "no %s in /proc/self/status", key);
    return v;
}

static int reset_peak(void)
{
    FILE *f = fopen("/proc/self/clear_refs", "w");
    int ok;

    if (!f)
        return 0;
    ok = fputs("5", f) >= 0;
    ok = (fclose(f) == 0) && ok;
    return ok;
}

typedef struct tally {
    long rows;
    long long duration_sum;
    long bad;
} tally;

static int count_log(const spotdb_experiment_log *row, void *payload)
{
    tally *t = payload;

    t->rows++;
    t->duration_sum += row->execution_duration_ms;
    if (!row->decision || !row->pipeline_mode || strlen(row->id) != 36)
        t->bad++;
    return 0;
}

/* Memory checkers keep freed memory aside (valgrind's and ASan's
 * quarantines), so the peak RSS says nothing about the library there; the
 * plain run measures it. */
#if defined(__SANITIZE_ADDRESS__)
#  define ADDRESS_SANITIZER 1
#elif defined(__has_feature)
#  if __has_feature(address_sanitizer)
#    define ADDRESS_SANITIZER 1
#  endif
#endif

static int under_memory_checker(void)
{
#ifdef ADDRESS_SANITIZER
    return 1;
#endif
    return th_under_valgrind();
}

START_TEST(stream_in_constant_memory)
{
    enum { TOTAL = 300000, CHUNK = 50000 };
    tally t = { 0, 0, 0 };
    long before, after, growth;
    int reset;
    double t_load, t_stream;
    bulk b;

    if (under_memory_checker()) {
        fprintf(stderr, "test_bulk: stream_in_constant_memory skipped under "
                "a memory checker\n");
        return;
    }
    base_rows();
    t_load = now_s();
    for (size_t done = 0; done < TOTAL; done += CHUNK) {
        bulk_make(&b, CHUNK, done, T0, 1000);
        OK(spotdb_experiment_log_insert_many(db, b.rows, CHUNK, LOG_FIELDS,
                                             NULL, NULL));
        bulk_free(&b);
    }
    t_load = now_s() - t_load;
    EQI(rows_in("experiment_logs"), TOTAL);

    reset = reset_peak();
    before = reset ? status_kib("VmRSS:") : status_kib("VmHWM:");
    t_stream = now_s();
    OK(spotdb_experiment_log_stream(db, NULL, count_log, &t));
    t_stream = now_s() - t_stream;
    after = status_kib("VmHWM:");
    growth = after - before;
    fprintf(stderr, "test_bulk: loaded %d logs by insert_many in %.2f s "
            "(%.0f rows/s); streamed them in %.2f s (%.0f rows/s); peak RSS "
            "growth %ld KiB (%s; before %ld KiB, peak after %ld KiB)\n",
            TOTAL, t_load, TOTAL / t_load, t_stream, TOTAL / t_stream, growth,
            reset ? "peak reset through clear_refs" : "VmHWM before/after",
            before, after);
    EQI(t.rows, TOTAL);
    EQI(t.bad, 0);
    EQI(t.duration_sum, qn("SELECT sum(execution_duration_ms) FROM "
                           "experiment_logs"));
    ck_assert_msg(growth < 16 * 1024, "streaming %d rows grew the peak RSS "
                  "by %ld KiB", TOTAL, growth);

    /* control: the same rows read whole (not streamed) do show up in the
     * measure, so the figure above can fail */
    if (reset) {
        PGresult *r;

        reset_peak();
        before = status_kib("VmRSS:");
        r = PQexec(db->conn, "SELECT * FROM experiment_logs");
        ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK, "%s",
                      PQerrorMessage(db->conn));
        EQI(PQntuples(r), TOTAL);
        after = status_kib("VmHWM:");
        PQclear(r);
        fprintf(stderr, "test_bulk: control, the same rows in one PGresult: "
                "peak RSS growth %ld KiB\n", after - before);
        ck_assert_msg(after - before > 16 * 1024, "the control grew the peak "
                      "RSS by only %ld KiB: the measure is blind",
                      after - before);
    }
}
END_TEST

/* ======================================================================== */
/* 7. prepared statements                                                   */
/* ======================================================================== */

START_TEST(prepared_statements_are_reused)
{
    spotdb_experiment_log *l = NULL;
    char id[SPOTDB_UUID_SIZE];
    long c0, c1, c2, c3;
    bulk b;
    char ids[1][SPOTDB_UUID_SIZE];

    base_rows();
    bulk_make(&b, 1, 1, T0, 1000);
    OK(spotdb_experiment_log_insert_many(db, b.rows, 1, LOG_FIELDS, ids,
                                         NULL));
    copy_id(id, ids[0]);
    c0 = prepared_count(db);
    OK(spotdb_experiment_log_get(&l, db, id));
    spotdb_experiment_log_free(l);
    c1 = prepared_count(db);
    ck_assert_msg(c1 >= 1 && c1 > c0, "after a get: %ld prepared (before "
                  "%ld)", c1, c0);
    OK(spotdb_experiment_log_get(&l, db, id));
    EQS(l->id, id);
    spotdb_experiment_log_free(l);
    c2 = prepared_count(db);
    EQI(c2, c1);
    /* another id, same statement */
    FAILS(SPOTDB_ENOTFOUND, NULL, spotdb_experiment_log_get(&l, db,
                                                            UUID_ABSENT));
    EQI(prepared_count(db), c1);

    /* a no-op migration deallocates them; the next get still works */
    OK(spotdb_migrate(db, NULL));
    EQI(prepared_count(db), 0);
    OK(spotdb_experiment_log_get(&l, db, id));
    EQS(l->id, id);
    check_bulk_log(id, 1, 1000);
    spotdb_experiment_log_free(l);
    c3 = prepared_count(db);
    ck_assert_msg(c3 >= 1, "after the migration, a get prepared nothing");
    bulk_free(&b);
}
END_TEST

START_TEST(unnamed_statements_prepare_nothing)
{
    spotdb_open_options o;
    spotdb_db *u = NULL, *main_db = db;
    spotdb_experiment_log in, *l = NULL;
    spotdb_experiment_log_rows *page = NULL;
    int64_t n = 0;
    acc s = { 0 };
    bulk b;
    char ids[3][SPOTDB_UUID_SIZE];

    base_rows();
    OK(spotdb_open_options_init(&o, SPOTDB_OPEN_OPTIONS_VERSION));
    o.statements = SPOTDB_STATEMENTS_UNNAMED;
    OK_ON(u, spotdb_open(&u, th_db_conninfo(), &o));
    db = u;                             /* the macros use db */
    EQI(prepared_count(u), 0);

    memset(&in, 0, sizeof in);
    copy_id(in.instance_id, g_inst_a);
    in.decision = "SWITCH";
    in.prediction_score = 0.25;
    OK(spotdb_experiment_log_create(&l, u, &in,
                                    SPOTDB_EXPERIMENT_LOG_INSTANCE_ID |
                                    SPOTDB_EXPERIMENT_LOG_DECISION |
                                    SPOTDB_EXPERIMENT_LOG_PREDICTION_SCORE));
    EQS(l->decision, "SWITCH");
    EQD(l->prediction_score, 0.25);
    copy_id(ids[0], l->id);
    spotdb_experiment_log_free(l);
    for (int i = 0; i < 2; i++) {
        OK(spotdb_experiment_log_get(&l, u, ids[0]));
        EQS(l->id, ids[0]);
        spotdb_experiment_log_free(l);
    }
    in.decision = "STAY";
    OK(spotdb_experiment_log_update(&l, u, ids[0], &in,
                                    SPOTDB_EXPERIMENT_LOG_DECISION));
    EQS(l->decision, "STAY");
    spotdb_experiment_log_free(l);
    bulk_make(&b, 2, 0, T0, 1000);
    OK(spotdb_experiment_log_insert_many(u, b.rows, 2, LOG_FIELDS, ids + 1,
                                         NULL));
    bulk_free(&b);
    OK(spotdb_experiment_log_list(&page, u, NULL, NULL, 0));
    EQI(page->count, 3);
    spotdb_experiment_log_rows_free(page);
    OK(spotdb_experiment_log_count(&n, u, NULL));
    EQI(n, 3);
    OK(spotdb_experiment_log_stream(u, NULL, cb_experiment_log, &s));
    EQI(s.n, 3);
    acc_free(&s);
    OK(spotdb_experiment_log_delete(u, ids[1]));
    FAILS(SPOTDB_ENOTFOUND, NULL, spotdb_experiment_log_get(&l, u, ids[1]));
    EQI(prepared_count(u), 0);
    qeq("2", "SELECT count(*) FROM experiment_logs");
    qeq("STAY", "SELECT decision FROM experiment_logs WHERE id = '%s'",
        ids[0]);
    db = main_db;
    spotdb_close(u);
}
END_TEST

START_TEST(statements_option_is_checked)
{
    spotdb_open_options o;
    spotdb_db *h = (spotdb_db *)&o;
    const int32_t sentinel = 0x5EED;

    /* an unknown value */
    OK(spotdb_open_options_init(&o, SPOTDB_OPEN_OPTIONS_VERSION));
    EQI(o.version, SPOTDB_OPEN_OPTIONS_VERSION);
    EQI(o.statements, SPOTDB_STATEMENTS_PREPARED);
    o.statements = 7;
    ck_assert_int_eq(spotdb_open(&h, th_db_conninfo(), &o), SPOTDB_EINVAL);
    ck_assert_ptr_null(h);
    ck_assert_msg(strstr(spotdb_last_errmsg(), "statements"), "%s",
                  spotdb_last_errmsg());
    o.statements = -1;
    h = (spotdb_db *)&o;
    ck_assert_int_eq(spotdb_open(&h, th_db_conninfo(), &o), SPOTDB_EINVAL);
    ck_assert_ptr_null(h);

    /* a version 2 caller has no statements member: it is not read */
    o.version = 2;
    o.statements = 7;
    OK_ON(h, spotdb_open(&h, th_db_conninfo(), &o));
    ck_assert_ptr_nonnull(h);
    spotdb_close(h);
    h = NULL;

    /* init for version 2 writes only the version 2 layout */
    memset(&o, 0xab, sizeof o);
    o.statements = sentinel;
    OK(spotdb_open_options_init(&o, 2));
    EQI(o.version, 2);
    ck_assert_ptr_null(o.application_name);
    EQI(o.connect_timeout_s, 0);
    EQI(o.schema_check, 0);
    EQI(o.statements, sentinel);
    /* version 1: neither schema_check nor statements */
    memset(&o, 0xab, sizeof o);
    o.schema_check = sentinel;
    o.statements = sentinel;
    OK(spotdb_open_options_init(&o, 1));
    EQI(o.version, 1);
    EQI(o.connect_timeout_s, 0);
    EQI(o.schema_check, sentinel);
    EQI(o.statements, sentinel);
    /* version 3: up to statements, not the version 4 members */
    o.statements = sentinel;
    o.pooler = sentinel;
    o.replica_reads = sentinel;
    OK(spotdb_open_options_init(&o, 3));
    EQI(o.statements, 0);
    EQI(o.schema_check, 0);
    EQI(o.pooler, sentinel);
    EQI(o.replica_reads, sentinel);
    /* version 4: up to replica_reads */
    o.call_timeout_ms = sentinel;
    OK(spotdb_open_options_init(&o, 4));
    EQI(o.pooler, 0);
    EQI(o.replica_reads, 0);
    EQI(o.call_timeout_ms, sentinel);
    /* version 5: everything */
    OK(spotdb_open_options_init(&o, 5));
    EQI(o.call_timeout_ms, 0);
    /* unknown versions */
    ck_assert_int_eq(spotdb_open_options_init(&o, 6), SPOTDB_EINVAL);
    ck_assert_int_eq(spotdb_open_options_init(&o, 0), SPOTDB_EINVAL);
    ck_assert_int_eq(spotdb_open_options_init(NULL, 3), SPOTDB_EINVAL);

    /* the explicit PREPARED value is the default */
    OK(spotdb_open_options_init(&o, 3));
    o.statements = SPOTDB_STATEMENTS_PREPARED;
    OK_ON(h, spotdb_open(&h, th_db_conninfo(), &o));
    {
        spotdb_model *m = NULL;

        FAILS(SPOTDB_ENOTFOUND, NULL, spotdb_model_get(&m, h, UUID_ABSENT));
        ck_assert_msg(prepared_count(h) >= 1, "PREPARED prepared nothing");
    }
    spotdb_close(h);
}
END_TEST

/* ======================================================================== */

static Suite *bulk_suite(void)
{
    Suite *s = suite_create("bulk");
    TCase *tc;

#define ADD(name)                                                            \
    do {                                                                     \
        tc = tcase_create(#name);                                            \
        tcase_add_checked_fixture(tc, setup, teardown);                      \
        tcase_set_timeout(tc, 120);                                          \
        tcase_add_test(tc, name);                                            \
        suite_add_tcase(s, tc);                                              \
    } while (0)
    ADD(log_insert_many_stores_every_row);
    ADD(log_insert_many_with_own_ids);
    ADD(log_insert_many_edge_arguments);
    ADD(log_insert_many_refuses_rule_breaks);
    ADD(log_insert_many_refused_by_the_server);
    ADD(log_insert_many_in_transactions);
    ADD(instance_insert_many);
    ADD(streams_equal_lists);
    ADD(stream_stopped_inside_transaction);
    ADD(stream_ends_with_econn_when_the_backend_dies);
    ADD(bulk_calls_on_a_dead_connection);
    ADD(stream_in_constant_memory);
    ADD(prepared_statements_are_reused);
    ADD(unnamed_statements_prepare_nothing);
    ADD(statements_option_is_checked);
#undef ADD
    return s;
}

int main(void)
{
    return th_run(bulk_suite());
}
