/*
 * Typed CRUD on accounts, instances, model_registry and experiment_logs:
 * defaults, round trips of every column, NULLs, validation before the
 * round trip, server rejections mapped to codes, update by mask, delete
 * and its cascades, filtered lists and counts, keyset paging (also while
 * another handle inserts), transactions and the convenience creators.
 *
 * Every outcome that matters is also checked through a raw libpq
 * connection, independently of the library's own readers.
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
static spotdb_db *db2;      /* a second handle, for concurrent inserts */
static PGconn *pg;          /* raw connection for independent checks */
static char poison_;        /* *out is set to this before failing calls */
static char g_ctx[1024];    /* what a validation helper is checking */
#define S(p) ((p) ? (p) : "(null)")

#define UUID_ABSENT "00000000-0000-4000-8000-000000000000"
#define T0 INT64_C(1700000000123456) /* 2023-11-14 22:13:20.123456 UTC */
#define T0_TEXT "2023-11-14 22:13:20.123456"

static void setup(void)
{
    th_setup_migrated_db();
    db = th_open();
    db2 = NULL;
    pg = th_connect(th_db_conninfo());
}

static void teardown(void)
{
    spotdb_close(db2);
    db2 = NULL;
    spotdb_close(db);
    db = NULL;
    if (pg)
        PQfinish(pg);
    pg = NULL;
    th_teardown_db();
}

#define FAILS_CONTEXT g_ctx
#include "checks.h"

/* Same, and *out (poisoned beforehand) is NULL afterwards. */
#define FAILS_OUT(code, needle, out, call)                                   \
    do {                                                                     \
        (out) = (void *)&poison_;                                            \
        FAILS(code, needle, call);                                           \
        ck_assert_msg((out) == NULL, "%s: *out is not NULL on failure",      \
                      #call);                                                \
    } while (0)

/* Two JSON texts mean the same (compared by the server as jsonb). */
static int json_same(const char *a, const char *b)
{
    const char *params[2] = { a, b };
    PGresult *r = PQexecParams(pg, "SELECT $1::jsonb = $2::jsonb", 2, NULL,
                               params, NULL, NULL, 0);
    int same;

    ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK, "json compare: %s",
                  PQerrorMessage(pg));
    same = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    return same;
}

/* `unit` n times then `tail`, malloc'd. */
static char *rep(const char *unit, int n, const char *tail)
{
    size_t ul = strlen(unit), tl = strlen(tail);
    char *s = malloc(ul * (size_t)n + tl + 1), *p = s;

    ck_assert_ptr_nonnull(s);
    for (int i = 0; i < n; i++, p += ul)
        memcpy(p, unit, ul);
    memcpy(p, tail, tl + 1);
    return s;
}

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

static void assert_near_now(int64_t t, const char *what)
{
    int64_t d = t - spotdb_now_us();

    ck_assert_msg(d > -INT64_C(120000000) && d < INT64_C(120000000),
                  "%s is %lld, not within 2 minutes of now", what,
                  (long long)t);
}

static void nap_ms(long ms)
{
    struct timespec ts = { 0, ms * 1000000L };

    nanosleep(&ts, NULL);
}

/* Copy into a UUID field, cut to fit (tests pass over-long ids on purpose
 * only where the cut still leaves a malformed UUID). */
static void copy_id(char *dst, const char *src)
{
    size_t n = strlen(src);

    if (n > SPOTDB_UUID_SIZE - 1)
        n = SPOTDB_UUID_SIZE - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* ---- fixtures of rows --------------------------------------------------- */

static void make_user(char *id_out, const char *username)
{
    spotdb_user in;
    spotdb_user *u = NULL;
    char email[128];
    int rc;

    memset(&in, 0, sizeof in);
    snprintf(email, sizeof email, "%s@example.com", username);
    in.email = email;
    in.username = username;
    rc = spotdb_user_create(&u, db, &in,
                            SPOTDB_USER_EMAIL | SPOTDB_USER_USERNAME,
                            "password");
    ck_assert_msg(rc == 0, "user_create: %s", spotdb_errmsg(db));
    copy_id(id_out, u->id);
    spotdb_user_free(u);
}

#define ACCT_REQ                                                             \
    (SPOTDB_ACCOUNT_USER_ID | SPOTDB_ACCOUNT_ACCOUNT_ID |                    \
     SPOTDB_ACCOUNT_ACCOUNT_NAME | SPOTDB_ACCOUNT_ROLE_ARN |                 \
     SPOTDB_ACCOUNT_EXTERNAL_ID)

/* A valid account input for AWS number `num`; `arn` holds the ARN. */
static void account_input(spotdb_account *in, char *arn, size_t arnsz,
                          const char *user_id, const char *num)
{
    memset(in, 0, sizeof *in);
    copy_id(in->user_id, user_id);
    snprintf(arn, arnsz, "arn:aws:iam::%s:role/SpotOptimizer", num);
    in->account_id = num;
    in->account_name = "Lab account";
    in->role_arn = arn;
    in->external_id = "ext-id-42";
}

static void make_account_on(spotdb_db *h, char *id_out, const char *user_id,
                            const char *num, uint64_t extra,
                            const spotdb_account *extra_values)
{
    spotdb_account in;
    spotdb_account *a = NULL;
    char arn[128];

    if (extra_values)
        in = *extra_values;
    else
        memset(&in, 0, sizeof in);
    {
        spotdb_account base;

        account_input(&base, arn, sizeof arn, user_id, num);
        copy_id(in.user_id, base.user_id);
        in.account_id = base.account_id;
        in.account_name = base.account_name;
        in.role_arn = base.role_arn;
        in.external_id = base.external_id;
    }
    OK_ON(h, spotdb_account_create(&a, h, &in, ACCT_REQ | extra));
    if (id_out)
        copy_id(id_out, a->id);
    spotdb_account_free(a);
}

static void make_account(char *id_out, const char *user_id, const char *num)
{
    make_account_on(db, id_out, user_id, num, 0, NULL);
}

#define INST_REQ                                                             \
    (SPOTDB_INSTANCE_ACCOUNT_ID | SPOTDB_INSTANCE_INSTANCE_ID |              \
     SPOTDB_INSTANCE_INSTANCE_TYPE | SPOTDB_INSTANCE_AVAILABILITY_ZONE)

static void instance_input(spotdb_instance *in, const char *account,
                           const char *ec2)
{
    memset(in, 0, sizeof *in);
    copy_id(in->account_id, account);
    in->instance_id = ec2;
    in->instance_type = "c5.large";
    in->availability_zone = "ap-south-1a";
}

static void make_instance_on(spotdb_db *h, char *id_out, const char *account,
                             const char *ec2, uint64_t extra,
                             const spotdb_instance *extra_values)
{
    spotdb_instance in;
    spotdb_instance *i = NULL;

    if (extra_values)
        in = *extra_values;
    else
        memset(&in, 0, sizeof in);
    copy_id(in.account_id, account);
    in.instance_id = ec2;
    in.instance_type = "c5.large";
    in.availability_zone = "ap-south-1a";
    OK_ON(h, spotdb_instance_create(&i, h, &in, INST_REQ | extra));
    if (id_out)
        copy_id(id_out, i->id);
    spotdb_instance_free(i);
}

static void make_instance(char *id_out, const char *account, const char *ec2)
{
    make_instance_on(db, id_out, account, ec2, 0, NULL);
}

static void make_model_on(spotdb_db *h, char *id_out, const char *name,
                          const char *version, uint64_t extra,
                          const spotdb_model *extra_values)
{
    spotdb_model in;
    spotdb_model *m = NULL;

    if (extra_values)
        in = *extra_values;
    else
        memset(&in, 0, sizeof in);
    in.name = name;
    in.version = version;
    OK_ON(h, spotdb_model_create(&m, h, &in,
                                 SPOTDB_MODEL_NAME | SPOTDB_MODEL_VERSION |
                                 extra));
    if (id_out)
        copy_id(id_out, m->id);
    spotdb_model_free(m);
}

static void make_model(char *id_out, const char *name, const char *version)
{
    make_model_on(db, id_out, name, version, 0, NULL);
}

/* A log of `instance`; model may be NULL; exec_time 0 for the default. */
static void make_log_on(spotdb_db *h, char *id_out, const char *instance,
                        const char *model, int64_t exec_time,
                        const char *decision, int shadow)
{
    spotdb_experiment_log in;
    spotdb_experiment_log *l = NULL;
    uint64_t fields = SPOTDB_EXPERIMENT_LOG_INSTANCE_ID |
                      SPOTDB_EXPERIMENT_LOG_IS_SHADOW_RUN;

    memset(&in, 0, sizeof in);
    copy_id(in.instance_id, instance);
    in.is_shadow_run = shadow != 0;
    if (model) {
        copy_id(in.model_id, model);
        fields |= SPOTDB_EXPERIMENT_LOG_MODEL_ID;
    }
    if (exec_time) {
        in.execution_time = exec_time;
        fields |= SPOTDB_EXPERIMENT_LOG_EXECUTION_TIME;
    }
    if (decision) {
        in.decision = decision;
        fields |= SPOTDB_EXPERIMENT_LOG_DECISION;
    }
    OK_ON(h, spotdb_experiment_log_create(&l, h, &in, fields));
    if (id_out)
        copy_id(id_out, l->id);
    spotdb_experiment_log_free(l);
}

static void make_log(char *id_out, const char *instance, const char *model,
                     int64_t exec_time, const char *decision, int shadow)
{
    make_log_on(db, id_out, instance, model, exec_time, decision, shadow);
}

static void num12(char *buf, long n)
{
    snprintf(buf, 13, "%012ld", n);
}

static void ec2_id(char *buf, size_t sz, unsigned long n)
{
    snprintf(buf, sz, "i-%017lx", n);
}

/* ---- paging, shared by the four tables --------------------------------- */

struct item {
    char id[SPOTDB_UUID_SIZE];
    char parent[SPOTDB_UUID_SIZE];
    int64_t key;
};

/* One page: fills items (at most max), *next (malloc'd or NULL); returns
 * the row count.  The call must succeed. */
typedef size_t (*pager_fn)(const void *filter, const char *cursor,
                           int32_t limit, struct item *items, size_t max,
                           char **next);

#define DEFINE_PAGER(fn, rows_t, filter_t, list, rows_free, keyf, parentf)   \
    static size_t fn(const void *filter, const char *cursor, int32_t limit, \
                     struct item *items, size_t max, char **next)           \
    {                                                                        \
        rows_t *r = NULL;                                                    \
        size_t n;                                                            \
        int rc = list(&r, db, (const filter_t *)filter, cursor, limit);      \
        ck_assert_msg(rc == 0, #list ": %d %s", rc, spotdb_errmsg(db));      \
        ck_assert_ptr_nonnull(r);                                            \
        ck_assert_msg(r->count <= max, #list ": %zu rows, limit %d",         \
                      r->count, (int)limit);                                 \
        for (size_t k = 0; k < r->count; k++) {                              \
            copy_id(items[k].id, r->items[k].id);                            \
            copy_id(items[k].parent, parentf);                               \
            items[k].key = r->items[k].keyf;                                 \
        }                                                                    \
        *next = r->next_cursor ? strdup(r->next_cursor) : NULL;              \
        n = r->count;                                                        \
        rows_free(r);                                                        \
        return n;                                                            \
    }

DEFINE_PAGER(page_accounts, spotdb_account_rows, spotdb_account_filter,
             spotdb_account_list, spotdb_account_rows_free, created_at,
             r->items[k].user_id)
DEFINE_PAGER(page_instances, spotdb_instance_rows, spotdb_instance_filter,
             spotdb_instance_list, spotdb_instance_rows_free, created_at,
             r->items[k].account_id)
DEFINE_PAGER(page_models, spotdb_model_rows, spotdb_model_filter,
             spotdb_model_list, spotdb_model_rows_free, created_at, "")
DEFINE_PAGER(page_logs, spotdb_experiment_log_rows,
             spotdb_experiment_log_filter, spotdb_experiment_log_list,
             spotdb_experiment_log_rows_free, execution_time,
             r->items[k].instance_id)

#define MAX_ITEMS 400

/* Page through with `limit`, calling hook(page number) after each page
 * but the last.  Checks: full pages while a cursor follows, no row twice,
 * a strict (key, id) order, every one of `expect` exactly once with its
 * key, and (without hook) nothing else.  Returns the number of pages. */
static int page_check(pager_fn pager, const void *filter, int32_t limit,
                      const struct item *expect, size_t n_expect, int desc,
                      void (*hook)(int page), const char *parent)
{
    static struct item all[MAX_ITEMS];
    size_t total = 0;
    char *cursor = NULL;
    int pages = 0;

    for (;;) {
        char *next = NULL;
        size_t n = pager(filter, cursor, limit, all + total,
                         MAX_ITEMS - total, &next);

        pages++;
        ck_assert_msg(pages < 100, "paging does not end");
        if (next)
            ck_assert_msg(n == (size_t)limit,
                          "page %d has %zu rows but a next cursor", pages, n);
        total += n;
        free(cursor);
        cursor = next;
        if (!cursor)
            break;
        if (hook)
            hook(pages);
    }
    for (size_t k = 1; k < total; k++) {
        const struct item *a = &all[k - 1], *b = &all[k];
        int cmp = a->key < b->key ? -1 : a->key > b->key ? 1
                                                          : strcmp(a->id, b->id);

        if (desc)
            cmp = -cmp;
        ck_assert_msg(cmp < 0, "rows %zu and %zu out of order: (%lld, %s) "
                      "then (%lld, %s)", k - 1, k, (long long)a->key, a->id,
                      (long long)b->key, b->id);
    }
    for (size_t k = 0; k < total; k++)
        if (parent)
            ck_assert_msg(strcmp(all[k].parent, parent) == 0,
                          "row %s escapes the filter", all[k].id);
    for (size_t e = 0; e < n_expect; e++) {
        int seen = 0;

        for (size_t k = 0; k < total; k++)
            if (strcmp(all[k].id, expect[e].id) == 0) {
                seen++;
                EQI(all[k].key, expect[e].key);
            }
        ck_assert_msg(seen == 1, "row %s seen %d times while paging",
                      expect[e].id, seen);
    }
    if (!hook)
        ck_assert_msg(total == n_expect, "paging gave %zu rows, expected %zu",
                      total, n_expect);
    return pages;
}

/* ======================================================================== */
/* accounts                                                                 */
/* ======================================================================== */

static void assert_account_same(const spotdb_account *x,
                                const spotdb_account *y)
{
    EQS(x->id, y->id);
    EQS(x->user_id, y->user_id);
    EQS(x->account_id, y->account_id);
    EQS(x->account_name, y->account_name);
    EQS(x->environment_type, y->environment_type);
    EQS(x->role_arn, y->role_arn);
    EQS(x->external_id, y->external_id);
    EQS(x->region, y->region);
    EQI(x->is_active, y->is_active);
    EQI(x->created_at, y->created_at);
    EQI(x->updated_at, y->updated_at);
    EQI(x->nulls, y->nulls);
}

START_TEST(account_create_takes_defaults)
{
    char uid[SPOTDB_UUID_SIZE], arn[128];
    spotdb_account in, *a = NULL;

    make_user(uid, "alice");
    account_input(&in, arn, sizeof arn, uid, "123456789012");
    /* values outside `fields` must not be written */
    in.environment_type = "PROD";
    in.region = "us-east-1";
    in.is_active = false;
    in.created_at = T0;
    OK(spotdb_account_create(&a, db, &in, ACCT_REQ));
    ck_assert_ptr_nonnull(a);
    ck_assert_msg(is_uuid(a->id), "id \"%s\"", a->id);
    EQS(a->user_id, uid);
    EQS(a->account_id, "123456789012");
    EQS(a->account_name, "Lab account");
    EQS(a->environment_type, "LAB");
    EQS(a->role_arn, arn);
    EQS(a->external_id, "ext-id-42");
    EQS(a->region, "ap-south-1");
    ck_assert(a->is_active);
    EQI(a->nulls, 0);
    assert_near_now(a->created_at, "created_at");
    assert_near_now(a->updated_at, "updated_at");
    qeq("LAB|ap-south-1|true", "SELECT environment_type || '|' || region || '|' "
        "|| is_active FROM accounts WHERE id = '%s'", a->id);
    qeq("1", "SELECT count(*) FROM accounts WHERE id = '%s' AND "
        "abs(extract(epoch FROM created_at - now() AT TIME ZONE 'UTC')) < 120",
        a->id);
    spotdb_account_free(a);
}
END_TEST

START_TEST(account_round_trip_every_column)
{
    char uid[SPOTDB_UUID_SIZE];
    char *name = rep("ü漢", 50, ""); /* 100 characters, 250 bytes */
    char *arn = rep("r", 255 - (int)strlen("arn:aws:iam::123456789012:role/"),
                    "");
    char *full_arn = malloc(300);
    char *ext = rep("Az09_+=,.@:/-", 19, "xx"); /* 249 characters */
    spotdb_account in, *a = NULL, *g = NULL, *k = NULL;
    uint64_t fields = ACCT_REQ | SPOTDB_ACCOUNT_ENVIRONMENT_TYPE |
                      SPOTDB_ACCOUNT_REGION | SPOTDB_ACCOUNT_IS_ACTIVE |
                      SPOTDB_ACCOUNT_CREATED_AT;

    snprintf(full_arn, 300, "arn:aws:iam::123456789012:role/%s", arn);
    ck_assert_uint_eq(strlen(full_arn), 255);
    make_user(uid, "alice");
    memset(&in, 0, sizeof in);
    copy_id(in.user_id, uid);
    in.account_id = "123456789012";
    in.account_name = name;
    in.environment_type = "PROD";
    in.role_arn = full_arn;
    in.external_id = ext;
    in.region = "eu-ünï-20-chars-ok1";
    in.is_active = false;
    in.created_at = T0;
    OK(spotdb_account_create(&a, db, &in, fields));
    EQS(a->user_id, uid);
    EQS(a->account_id, "123456789012");
    EQS(a->account_name, name);
    EQS(a->environment_type, "PROD");
    EQS(a->role_arn, full_arn);
    EQS(a->external_id, ext);
    EQS(a->region, in.region);
    ck_assert(!a->is_active);
    EQI(a->created_at, T0);
    EQI(a->nulls, 0);
    assert_near_now(a->updated_at, "updated_at");

    OK(spotdb_account_get(&g, db, a->id));
    assert_account_same(g, a);
    OK(spotdb_account_get_by_account_id(&k, db, "123456789012"));
    assert_account_same(k, a);

    qeq("100", "SELECT char_length(account_name) FROM accounts WHERE id='%s'",
        a->id);
    qeq(T0_TEXT, "SELECT created_at::text FROM accounts WHERE id = '%s'",
        a->id);
    qeq("false", "SELECT is_active::text FROM accounts WHERE id = '%s'", a->id);
    qeq("1", "SELECT count(*) FROM accounts WHERE id = '%s' AND "
        "account_name = repeat('ü漢', 50)", a->id);

    spotdb_account_free(k);
    k = NULL;
    FAILS_OUT(SPOTDB_ENOTFOUND, NULL, k,
              spotdb_account_get_by_account_id(&k, db, "999999999999"));
    FAILS_OUT(SPOTDB_ENOTFOUND, NULL, k,
              spotdb_account_get(&k, db, UUID_ABSENT));
    FAILS_OUT(SPOTDB_EINVAL, NULL, k, spotdb_account_get(&k, db, "nope"));
    spotdb_account_free(g);
    spotdb_account_free(a);
    free(name);
    free(arn);
    free(full_arn);
    free(ext);
}
END_TEST

/* The create fails with EINVAL naming `field`, and stores nothing. */
static void account_einval(const spotdb_account *in, uint64_t fields,
                           const char *field)
{
    spotdb_account *a;
    long before = rows_in("accounts");

    snprintf(g_ctx, sizeof g_ctx, "field %s: user=%s account_id=%s name=%.30s"
             " env=%s arn=%.60s ext=%.30s region=%s fields=%#llx", field,
             in->user_id, S(in->account_id), S(in->account_name),
             S(in->environment_type), S(in->role_arn), S(in->external_id),
             S(in->region), (unsigned long long)fields);
    FAILS_OUT(SPOTDB_EINVAL, field, a,
              spotdb_account_create(&a, db, in, fields));
    EQI(rows_in("accounts"), before);
}

START_TEST(account_lengths_in_characters)
{
    char uid[SPOTDB_UUID_SIZE], arn[128];
    spotdb_account in, *a = NULL;
    char *name101 = rep("ü漢", 50, "x");
    char *long_arn = rep("r", 256 - (int)strlen(
                              "arn:aws:iam::123456789012:role/"), "");
    char full_arn[300];
    char *ext255 = rep("e", 255, "");
    char *ext256 = rep("e", 256, "");
    long before;
    int rc;

    make_user(uid, "alice");
    account_input(&in, arn, sizeof arn, uid, "123456789012");

    in.account_name = name101;
    account_einval(&in, ACCT_REQ, "account_name");
    in.account_name = "";
    account_einval(&in, ACCT_REQ, "account_name");
    in.account_name = "ok";

    in.region = "abcdefghijklmnopqrstu"; /* 21 */
    account_einval(&in, ACCT_REQ | SPOTDB_ACCOUNT_REGION, "region");
    in.region = "";
    account_einval(&in, ACCT_REQ | SPOTDB_ACCOUNT_REGION, "region");
    in.region = "ü-abcdefghijklmnopqr"; /* 20 characters, 21 bytes */
    OK(spotdb_account_create(&a, db, &in, ACCT_REQ | SPOTDB_ACCOUNT_REGION));
    EQS(a->region, in.region);
    OK(spotdb_account_delete(db, a->id));
    spotdb_account_free(a);
    a = NULL;

    snprintf(full_arn, sizeof full_arn, "arn:aws:iam::123456789012:role/%s",
             long_arn);
    in.role_arn = full_arn; /* 256 characters */
    account_einval(&in, ACCT_REQ, "role_arn");
    in.role_arn = arn;

    /* the column holds 255 characters of external id */
    in.external_id = ext255;
    OK(spotdb_account_create(&a, db, &in, ACCT_REQ));
    EQS(a->external_id, ext255);
    OK(spotdb_account_delete(db, a->id));
    spotdb_account_free(a);
    a = (void *)&poison_;
    before = rows_in("accounts");
    in.external_id = ext256;
    rc = spotdb_account_create(&a, db, &in, ACCT_REQ);
    ck_assert_msg(rc != 0, "a 256-character external_id was accepted");
    ck_assert_ptr_null(a);
    EQI(rows_in("accounts"), before);

    free(name101);
    free(long_arn);
    free(ext255);
    free(ext256);
}
END_TEST

START_TEST(account_validation_names_the_field)
{
    char uid[SPOTDB_UUID_SIZE], arn[128];
    spotdb_account in;
    static const char *const bad_numbers[] = {
        "12345678901", "1234567890123", "12345678901a", "", "-12345678901",
        "１２３４５６７８９０１２", NULL
    };
    static const char *const bad_arns[] = {
        "arn:aws:iam::12345678901:role/x", "not-an-arn",
        "arn:aws:iam::123456789012:user/x", "arn:aws:iam::123456789012:role/",
        "arn:aws:s3::123456789012:role/x", NULL
    };
    static const char *const bad_external[] = {
        "x", "ab cd", "ab#cd", "", "abc\xc3\xa9", "ab;cd", NULL
    };

    make_user(uid, "alice");
    account_input(&in, arn, sizeof arn, uid, "123456789012");
    for (int i = 0; bad_numbers[i]; i++) {
        in.account_id = bad_numbers[i];
        account_einval(&in, ACCT_REQ, "account_id");
    }
    in.account_id = "123456789012";
    for (int i = 0; bad_arns[i]; i++) {
        in.role_arn = bad_arns[i];
        account_einval(&in, ACCT_REQ, "role_arn");
    }
    /* well-formed, but another account's number */
    in.role_arn = "arn:aws:iam::999999999999:role/SpotOptimizer";
    account_einval(&in, ACCT_REQ, "role_arn");
    in.role_arn = arn;
    for (int i = 0; bad_external[i]; i++) {
        in.external_id = bad_external[i];
        account_einval(&in, ACCT_REQ, "external_id");
    }
    in.external_id = "ext-id-42";
    /* required columns missing from fields */
    account_einval(&in, ACCT_REQ & ~SPOTDB_ACCOUNT_EXTERNAL_ID,
                   "external_id");
    account_einval(&in, ACCT_REQ & ~SPOTDB_ACCOUNT_ACCOUNT_NAME,
                   "account_name");
    account_einval(&in, ACCT_REQ & ~SPOTDB_ACCOUNT_USER_ID, "user_id");
    account_einval(&in, ACCT_REQ & ~SPOTDB_ACCOUNT_ROLE_ARN, "role_arn");
    account_einval(&in, ACCT_REQ & ~SPOTDB_ACCOUNT_ACCOUNT_ID, "account_id");
    in.environment_type = "DEV";
    account_einval(&in, ACCT_REQ | SPOTDB_ACCOUNT_ENVIRONMENT_TYPE,
                   "environment_type");
    in.environment_type = "lab";
    account_einval(&in, ACCT_REQ | SPOTDB_ACCOUNT_ENVIRONMENT_TYPE,
                   "environment_type");
    in.environment_type = NULL;
    copy_id(in.user_id, "not-a-uuid");
    account_einval(&in, ACCT_REQ, "user_id");
    copy_id(in.user_id, "0000000-0000-4000-8000-0000000000000");
    account_einval(&in, ACCT_REQ, "user_id");
    copy_id(in.user_id, uid);
    /* a NOT NULL column written as NULL never reaches the table */
    {
        spotdb_account *a;
        long before = rows_in("accounts");
        int rc;

        in.external_id = NULL;
        a = (void *)&poison_;
        rc = spotdb_account_create(&a, db, &in, ACCT_REQ);
        ck_assert_msg(rc != 0, "NULL external_id accepted");
        ck_assert_ptr_null(a);
        EQI(rows_in("accounts"), before);
    }
    EQI(rows_in("accounts"), 0);
}
END_TEST

START_TEST(account_server_rejections_are_mapped)
{
    char uid[SPOTDB_UUID_SIZE], arn[128];
    spotdb_account in, *a;

    make_user(uid, "alice");
    make_account(NULL, uid, "123456789012");
    account_input(&in, arn, sizeof arn, uid, "123456789012");
    in.account_name = "another";
    FAILS_OUT(SPOTDB_ECONFLICT, "accounts_account_id_key", a,
              spotdb_account_create(&a, db, &in, ACCT_REQ));
    EQS(spotdb_sqlstate(db), "23505");
    EQI(rows_in("accounts"), 1);

    account_input(&in, arn, sizeof arn, UUID_ABSENT, "222222222222");
    FAILS_OUT(SPOTDB_EREFERENCE, "accounts_user_id_fkey", a,
              spotdb_account_create(&a, db, &in, ACCT_REQ));
    EQS(spotdb_sqlstate(db), "23503");
    EQI(rows_in("accounts"), 1);
    /* the handle is fine afterwards */
    make_account(NULL, uid, "222222222222");
    EQI(rows_in("accounts"), 2);
}
END_TEST

START_TEST(account_nullable_is_active)
{
    char uid[SPOTDB_UUID_SIZE], arn[128];
    spotdb_account in, *a = NULL, *u = NULL, *g = NULL;

    make_user(uid, "alice");
    /* NULL at create */
    account_input(&in, arn, sizeof arn, uid, "123456789012");
    in.is_active = true;
    in.nulls = SPOTDB_ACCOUNT_IS_ACTIVE;
    OK(spotdb_account_create(&a, db, &in, ACCT_REQ | SPOTDB_ACCOUNT_IS_ACTIVE));
    ISNULL(a, SPOTDB_ACCOUNT_IS_ACTIVE);
    EQI(a->nulls, SPOTDB_ACCOUNT_IS_ACTIVE);
    qeq(NULL, "SELECT is_active::text FROM accounts WHERE id = '%s'", a->id);
    OK(spotdb_account_get(&g, db, a->id));
    ISNULL(g, SPOTDB_ACCOUNT_IS_ACTIVE);
    spotdb_account_free(g);
    g = NULL;

    /* false is not NULL */
    memset(&in, 0, sizeof in);
    in.is_active = false;
    OK(spotdb_account_update(&u, db, a->id, &in, SPOTDB_ACCOUNT_IS_ACTIVE));
    NOTNULL(u, SPOTDB_ACCOUNT_IS_ACTIVE);
    ck_assert(!u->is_active);
    qeq("false", "SELECT is_active::text FROM accounts WHERE id = '%s'", a->id);
    spotdb_account_free(u);
    u = NULL;

    /* back to NULL through update */
    in.nulls = SPOTDB_ACCOUNT_IS_ACTIVE;
    OK(spotdb_account_update(&u, db, a->id, &in, SPOTDB_ACCOUNT_IS_ACTIVE));
    ISNULL(u, SPOTDB_ACCOUNT_IS_ACTIVE);
    qeq(NULL, "SELECT is_active::text FROM accounts WHERE id = '%s'", a->id);
    OK(spotdb_account_get(&g, db, a->id));
    ISNULL(g, SPOTDB_ACCOUNT_IS_ACTIVE);
    EQI(g->nulls, SPOTDB_ACCOUNT_IS_ACTIVE);
    spotdb_account_free(g);
    spotdb_account_free(u);
    spotdb_account_free(a);
}
END_TEST

START_TEST(account_update_by_mask)
{
    char uid[SPOTDB_UUID_SIZE], uid2[SPOTDB_UUID_SIZE], arn[128];
    spotdb_account in, *a = NULL, *u = NULL, *g = NULL;
    char *before_row;

    make_user(uid, "alice");
    make_user(uid2, "bob");
    account_input(&in, arn, sizeof arn, uid, "123456789012");
    in.environment_type = "PROD";
    in.region = "us-east-1";
    OK(spotdb_account_create(&a, db, &in, ACCT_REQ |
                             SPOTDB_ACCOUNT_ENVIRONMENT_TYPE |
                             SPOTDB_ACCOUNT_REGION));
    make_account(NULL, uid, "555555555555");

    /* every column of `in` holds something else; only two are masked */
    memset(&in, 0, sizeof in);
    copy_id(in.id, UUID_ABSENT);
    copy_id(in.user_id, uid2);
    in.account_id = "999999999999";
    in.account_name = "Renamed ✓";
    in.environment_type = "LAB";
    in.role_arn = "arn:aws:iam::999999999999:role/Other";
    in.external_id = "other-ext";
    in.region = "eu-west-1";
    in.is_active = false;
    in.created_at = T0;
    in.updated_at = T0;
    nap_ms(5);
    OK(spotdb_account_update(&u, db, a->id, &in,
                             SPOTDB_ACCOUNT_ACCOUNT_NAME |
                             SPOTDB_ACCOUNT_REGION));
    EQS(u->id, a->id);
    EQS(u->user_id, uid);
    EQS(u->account_id, "123456789012");
    EQS(u->account_name, "Renamed ✓");
    EQS(u->environment_type, "PROD");
    EQS(u->role_arn, a->role_arn);
    EQS(u->external_id, "ext-id-42");
    EQS(u->region, "eu-west-1");
    ck_assert(u->is_active);
    EQI(u->created_at, a->created_at);
    ck_assert_msg(u->updated_at > a->updated_at,
                  "updated_at did not move: %lld then %lld",
                  (long long)a->updated_at, (long long)u->updated_at);
    EQI(u->nulls, 0);
    OK(spotdb_account_get(&g, db, a->id));
    assert_account_same(g, u);
    spotdb_account_free(u);
    u = NULL;
    qeq("123456789012|Renamed ✓|PROD|eu-west-1|true|ext-id-42",
        "SELECT account_id || '|' || account_name || '|' || environment_type"
        " || '|' || region || '|' || is_active || '|' || external_id "
        "FROM accounts WHERE id = '%s'", a->id);
    spotdb_account_free(g);
    g = NULL;

    /* columns outside the mask are not even read */
    in.environment_type = "DEV";
    in.account_id = "bad";
    in.region = "us-west-2";
    OK(spotdb_account_update(NULL, db, a->id, &in, SPOTDB_ACCOUNT_REGION));
    qeq("us-west-2|PROD", "SELECT region || '|' || environment_type FROM "
        "accounts WHERE id = '%s'", a->id);

    /* account_id and a matching role_arn together; then a mismatch */
    in.account_id = "777777777777";
    in.role_arn = "arn:aws:iam::777777777777:role/Moved";
    OK(spotdb_account_update(NULL, db, a->id, &in,
                             SPOTDB_ACCOUNT_ACCOUNT_ID |
                             SPOTDB_ACCOUNT_ROLE_ARN));
    qeq("777777777777", "SELECT account_id FROM accounts WHERE id = '%s'",
        a->id);
    in.account_id = "888888888888";
    FAILS(SPOTDB_EINVAL, "role_arn",
          spotdb_account_update(NULL, db, a->id, &in,
                                SPOTDB_ACCOUNT_ACCOUNT_ID |
                                SPOTDB_ACCOUNT_ROLE_ARN));
    qeq("777777777777", "SELECT account_id FROM accounts WHERE id = '%s'",
        a->id);

    before_row = qf("SELECT a::text FROM accounts a WHERE id = '%s'", a->id);
    FAILS_OUT(SPOTDB_EINVAL, NULL, u,
              spotdb_account_update(&u, db, a->id, &in, 0));
    FAILS_OUT(SPOTDB_EINVAL, NULL, u,
              spotdb_account_update(&u, db, a->id, &in, SPOTDB_ACCOUNT_ID));
    FAILS_OUT(SPOTDB_EINVAL, NULL, u,
              spotdb_account_update(&u, db, a->id, &in,
                                    SPOTDB_ACCOUNT_UPDATED_AT));
    in.environment_type = "DEV";
    FAILS_OUT(SPOTDB_EINVAL, "environment_type", u,
              spotdb_account_update(&u, db, a->id, &in,
                                    SPOTDB_ACCOUNT_ENVIRONMENT_TYPE));
    in.account_name = NULL;
    u = (void *)&poison_;
    ck_assert_int_ne(spotdb_account_update(&u, db, a->id, &in,
                                           SPOTDB_ACCOUNT_ACCOUNT_NAME), 0);
    ck_assert_ptr_null(u);
    in.account_name = "x";
    FAILS_OUT(SPOTDB_ENOTFOUND, NULL, u,
              spotdb_account_update(&u, db, UUID_ABSENT, &in,
                                    SPOTDB_ACCOUNT_ACCOUNT_NAME));
    FAILS_OUT(SPOTDB_EINVAL, NULL, u,
              spotdb_account_update(&u, db, "nope", &in,
                                    SPOTDB_ACCOUNT_ACCOUNT_NAME));
    in.account_id = "555555555555";
    FAILS_OUT(SPOTDB_ECONFLICT, "accounts_account_id_key", u,
              spotdb_account_update(&u, db, a->id, &in,
                                    SPOTDB_ACCOUNT_ACCOUNT_ID));
    copy_id(in.user_id, UUID_ABSENT);
    FAILS_OUT(SPOTDB_EREFERENCE, "accounts_user_id_fkey", u,
              spotdb_account_update(&u, db, a->id, &in,
                                    SPOTDB_ACCOUNT_USER_ID));
    {
        char *after = qf("SELECT a::text FROM accounts a WHERE id = '%s'",
                         a->id);
        EQS(after, before_row);
        free(after);
    }
    free(before_row);
    spotdb_account_free(a);
}
END_TEST

START_TEST(account_delete_cascades)
{
    char uid[SPOTDB_UUID_SIZE], acc_a[SPOTDB_UUID_SIZE],
        acc_b[SPOTDB_UUID_SIZE], ia1[SPOTDB_UUID_SIZE],
        ia2[SPOTDB_UUID_SIZE], ib[SPOTDB_UUID_SIZE];

    make_user(uid, "alice");
    make_account(acc_a, uid, "111111111111");
    make_account(acc_b, uid, "222222222222");
    make_instance(ia1, acc_a, "i-0000000a");
    make_instance(ia2, acc_a, "i-0000000b");
    make_instance(ib, acc_b, "i-0000000c");
    for (int k = 0; k < 2; k++) {
        make_log(NULL, ia1, NULL, 0, "STAY", 0);
        make_log(NULL, ia2, NULL, 0, "STAY", 0);
        make_log(NULL, ib, NULL, 0, "STAY", 0);
    }
    EQI(rows_in("experiment_logs"), 6);
    OK(spotdb_account_delete(db, acc_a));
    EQI(qn("SELECT count(*) FROM accounts WHERE id = '%s'", acc_a), 0);
    EQI(qn("SELECT count(*) FROM instances WHERE account_id = '%s'", acc_a),
        0);
    EQI(rows_in("instances"), 1);
    EQI(rows_in("experiment_logs"), 2);
    EQI(qn("SELECT count(*) FROM experiment_logs WHERE instance_id = '%s'",
           ib), 2);
    FAILS(SPOTDB_ENOTFOUND, NULL, spotdb_account_delete(db, acc_a));
    FAILS(SPOTDB_ENOTFOUND, NULL, spotdb_account_delete(db, UUID_ABSENT));
    FAILS(SPOTDB_EINVAL, NULL, spotdb_account_delete(db, "nope"));
    EQI(rows_in("accounts"), 1);
}
END_TEST

/* The filter lists exactly `ids` (any order) and counts as many. */
static void account_filter_is(const spotdb_account_filter *f,
                              const char *const *ids, size_t n)
{
    spotdb_account_rows *r = NULL;
    int64_t c = -1;

    OK(spotdb_account_list(&r, db, f, NULL, 0));
    ck_assert_msg(r->count == n, "list gave %zu rows, expected %zu",
                  r->count, n);
    ck_assert_ptr_null(r->next_cursor);
    for (size_t i = 0; i < n; i++) {
        int seen = 0;
        for (size_t k = 0; k < r->count; k++)
            seen += strcmp(r->items[k].id, ids[i]) == 0;
        ck_assert_msg(seen == 1, "row %s seen %d times", ids[i], seen);
    }
    spotdb_account_rows_free(r);
    OK(spotdb_account_count(&c, db, f));
    EQI(c, (int64_t)n);
}

START_TEST(account_list_and_count_filters)
{
    char u1[SPOTDB_UUID_SIZE], u2[SPOTDB_UUID_SIZE];
    char a1[SPOTDB_UUID_SIZE], a2[SPOTDB_UUID_SIZE], a3[SPOTDB_UUID_SIZE],
        a4[SPOTDB_UUID_SIZE], a5[SPOTDB_UUID_SIZE];
    spotdb_account v;
    spotdb_account_filter f = SPOTDB_ACCOUNT_FILTER_INIT;
    bool yes = true, no = false;
    spotdb_account_rows *r;
    int64_t c;

    make_user(u1, "alice");
    make_user(u2, "bob");
    memset(&v, 0, sizeof v);
    v.environment_type = "PROD";
    v.is_active = true;
    make_account_on(db, a1, u1, "100000000001",
                    SPOTDB_ACCOUNT_ENVIRONMENT_TYPE |
                    SPOTDB_ACCOUNT_IS_ACTIVE, &v);
    v.environment_type = "LAB";
    make_account_on(db, a2, u1, "100000000002",
                    SPOTDB_ACCOUNT_ENVIRONMENT_TYPE, &v);
    v.is_active = false;
    make_account_on(db, a3, u1, "100000000003",
                    SPOTDB_ACCOUNT_IS_ACTIVE, &v);
    v.environment_type = "PROD";
    make_account_on(db, a4, u2, "100000000004",
                    SPOTDB_ACCOUNT_ENVIRONMENT_TYPE |
                    SPOTDB_ACCOUNT_IS_ACTIVE, &v);
    v.nulls = SPOTDB_ACCOUNT_IS_ACTIVE;
    make_account_on(db, a5, u2, "100000000005", SPOTDB_ACCOUNT_IS_ACTIVE,
                    &v);
    {
        const char *all[] = { a1, a2, a3, a4, a5 };
        account_filter_is(NULL, all, 5);
        account_filter_is(&f, all, 5);
    }
    f.user_id = u1;
    {
        const char *e[] = { a1, a2, a3 };
        account_filter_is(&f, e, 3);
    }
    f.user_id = u2;
    {
        const char *e[] = { a4, a5 };
        account_filter_is(&f, e, 2);
    }
    f.user_id = NULL;
    f.environment_type = "PROD";
    {
        const char *e[] = { a1, a4 };
        account_filter_is(&f, e, 2);
    }
    f.environment_type = "LAB";
    {
        const char *e[] = { a2, a3, a5 };
        account_filter_is(&f, e, 3);
    }
    f.environment_type = NULL;
    f.is_active = &yes;
    {
        const char *e[] = { a1, a2 };
        account_filter_is(&f, e, 2);
    }
    f.is_active = &no;
    {
        const char *e[] = { a3, a4 };
        account_filter_is(&f, e, 2);
    }
    f.user_id = u1;
    f.environment_type = "LAB";
    f.is_active = &yes;
    {
        const char *e[] = { a2 };
        account_filter_is(&f, e, 1);
    }
    f.user_id = UUID_ABSENT;
    account_filter_is(&f, NULL, 0);

    f.is_active = NULL;
    f.environment_type = NULL;
    f.user_id = "not-a-uuid";
    FAILS_OUT(SPOTDB_EINVAL, NULL, r,
              spotdb_account_list(&r, db, &f, NULL, 0));
    c = 77;
    FAILS(SPOTDB_EINVAL, NULL, spotdb_account_count(&c, db, &f));
}
END_TEST

static char g_parent[SPOTDB_UUID_SIZE];
static int g_serial;

static void account_insert_hook(int page)
{
    spotdb_account v;
    char num[16];

    if (page != 1 && page != 3)
        return;
    if (!db2)
        db2 = th_open();
    memset(&v, 0, sizeof v);
    /* before every existing row, tied with existing rows, after all */
    v.created_at = INT64_C(1600000000000000) - 1;
    num12(num, 900000000000L + g_serial++);
    make_account_on(db2, NULL, g_parent, num, SPOTDB_ACCOUNT_CREATED_AT, &v);
    v.created_at = INT64_C(1600000000000000) + 1000000;
    num12(num, 900000000000L + g_serial++);
    make_account_on(db2, NULL, g_parent, num, SPOTDB_ACCOUNT_CREATED_AT, &v);
    num12(num, 900000000000L + g_serial++);
    make_account_on(db2, NULL, g_parent, num, 0, NULL);
}

START_TEST(account_keyset_paging)
{
    struct item expect[30];
    char num[16];

    make_user(g_parent, "alice");
    for (int k = 0; k < 30; k++) {
        spotdb_account v, *a = NULL;
        char arn[128];

        num12(num, 100000000000L + k);
        account_input(&v, arn, sizeof arn, g_parent, num);
        /* three distinct times: ties are broken by id */
        v.created_at = INT64_C(1600000000000000) + (k % 3) * 1000000;
        OK(spotdb_account_create(&a, db, &v,
                                 ACCT_REQ | SPOTDB_ACCOUNT_CREATED_AT));
        copy_id(expect[k].id, a->id);
        expect[k].key = a->created_at;
        spotdb_account_free(a);
    }
    ck_assert_int_eq(page_check(page_accounts, NULL, 7, expect, 30, 0, NULL,
                                NULL), 5);
    /* a second handle inserts while this one pages */
    ck_assert_int_ge(page_check(page_accounts, NULL, 7, expect, 30, 0,
                                account_insert_hook, g_parent), 5);
    EQI(rows_in("accounts"), 36);
}
END_TEST

START_TEST(account_limits_and_cursor)
{
    char uid[SPOTDB_UUID_SIZE];
    spotdb_account_rows *r = NULL, *r2 = NULL;
    int64_t c = 0;

    make_user(uid, "alice");
    (void)qn("WITH x AS (INSERT INTO accounts (user_id, account_id, "
             "account_name, role_arn, external_id) SELECT '%s', "
             "lpad(g::text, 12, '0'), 'bulk', 'arn:aws:iam::' || "
             "lpad(g::text, 12, '0') || ':role/r', 'ext-bulk' "
             "FROM generate_series(1, 120) g RETURNING 1) "
             "SELECT count(*) FROM x", uid);
    OK(spotdb_account_list(&r, db, NULL, NULL, 0));
    EQI(r->count, SPOTDB_DEFAULT_LIMIT);
    ck_assert_ptr_nonnull(r->next_cursor);
    OK(spotdb_account_list(&r2, db, NULL, r->next_cursor, 0));
    EQI(r2->count, 20);
    ck_assert_ptr_null(r2->next_cursor);
    spotdb_account_rows_free(r);
    spotdb_account_rows_free(r2);
    OK(spotdb_account_list(&r, db, NULL, NULL, SPOTDB_MAX_LIMIT));
    EQI(r->count, 120);
    ck_assert_ptr_null(r->next_cursor);
    spotdb_account_rows_free(r);
    OK(spotdb_account_count(&c, db, NULL));
    EQI(c, 120);

    FAILS_OUT(SPOTDB_EINVAL, NULL, r,
              spotdb_account_list(&r, db, NULL, NULL, -1));
    FAILS_OUT(SPOTDB_EINVAL, NULL, r,
              spotdb_account_list(&r, db, NULL, NULL, SPOTDB_MAX_LIMIT + 1));
    FAILS_OUT(SPOTDB_EINVAL, NULL, r,
              spotdb_account_list(&r, db, NULL, "garbage!", 7));
    FAILS_OUT(SPOTDB_EINVAL, NULL, r,
              spotdb_account_list(&r, db, NULL, "eyJ4IjoxfQ", 7));
}
END_TEST

START_TEST(account_create_for_username)
{
    char uid[SPOTDB_UUID_SIZE], arn[128];
    spotdb_account in, *a = NULL;

    make_user(uid, "carol");
    account_input(&in, arn, sizeof arn, UUID_ABSENT, "123456789012");
    OK(spotdb_account_create_for_username(&a, db, "carol", &in,
                                          ACCT_REQ & ~SPOTDB_ACCOUNT_USER_ID));
    EQS(a->user_id, uid);
    EQS(a->account_id, "123456789012");
    EQS(a->environment_type, "LAB");
    qeq(uid, "SELECT user_id::text FROM accounts WHERE id = '%s'", a->id);
    spotdb_account_free(a);

    account_input(&in, arn, sizeof arn, UUID_ABSENT, "222222222222");
    FAILS_OUT(SPOTDB_ENOTFOUND, NULL, a,
              spotdb_account_create_for_username(
                  &a, db, "nobody", &in, ACCT_REQ & ~SPOTDB_ACCOUNT_USER_ID));
    EQI(rows_in("accounts"), 1);
    FAILS_OUT(SPOTDB_EINVAL, NULL, a,
              spotdb_account_create_for_username(&a, db, "carol", &in,
                                                 ACCT_REQ));
    EQI(rows_in("accounts"), 1);
    in.account_id = "123456789012";
    in.role_arn = "arn:aws:iam::123456789012:role/SpotOptimizer";
    FAILS_OUT(SPOTDB_ECONFLICT, "accounts_account_id_key", a,
              spotdb_account_create_for_username(
                  &a, db, "carol", &in, ACCT_REQ & ~SPOTDB_ACCOUNT_USER_ID));
    EQI(rows_in("accounts"), 1);
}
END_TEST

/* ======================================================================== */
/* instances                                                                */
/* ======================================================================== */

static void assert_instance_same(const spotdb_instance *x,
                                 const spotdb_instance *y)
{
    EQS(x->id, y->id);
    EQS(x->account_id, y->account_id);
    EQS(x->instance_id, y->instance_id);
    EQS(x->instance_type, y->instance_type);
    EQS(x->availability_zone, y->availability_zone);
    EQS(x->assigned_model_version, y->assigned_model_version);
    EQS(x->pipeline_mode, y->pipeline_mode);
    EQI(x->is_shadow_mode, y->is_shadow_mode);
    EQI(x->is_active, y->is_active);
    EQI(x->last_evaluation, y->last_evaluation);
    EQS(x->metadata, y->metadata);
    EQI(x->created_at, y->created_at);
    EQI(x->updated_at, y->updated_at);
    EQI(x->nulls, y->nulls);
}

/* A user and an account; the account's id goes to acc. */
static void base_account(char *acc)
{
    char uid[SPOTDB_UUID_SIZE];

    make_user(uid, "owner");
    make_account(acc, uid, "123456789012");
}

START_TEST(instance_create_takes_defaults)
{
    char acc[SPOTDB_UUID_SIZE];
    spotdb_instance in, *i = NULL;

    base_account(acc);
    instance_input(&in, acc, "i-0123456789abcdef0");
    in.pipeline_mode = "LINEAR";
    in.is_shadow_mode = true;
    in.is_active = false;
    in.metadata = "{\"x\": 1}";
    in.assigned_model_version = "v9";
    in.last_evaluation = T0;
    OK(spotdb_instance_create(&i, db, &in, INST_REQ));
    ck_assert_msg(is_uuid(i->id), "id \"%s\"", i->id);
    EQS(i->account_id, acc);
    EQS(i->instance_id, "i-0123456789abcdef0");
    EQS(i->instance_type, "c5.large");
    EQS(i->availability_zone, "ap-south-1a");
    EQS(i->pipeline_mode, "CLUSTER");
    ck_assert(!i->is_shadow_mode);
    ck_assert(i->is_active);
    NOTNULL(i, SPOTDB_INSTANCE_IS_SHADOW_MODE);
    NOTNULL(i, SPOTDB_INSTANCE_IS_ACTIVE);
    ISNULL(i, SPOTDB_INSTANCE_ASSIGNED_MODEL_VERSION);
    ck_assert_ptr_null(i->assigned_model_version);
    ISNULL(i, SPOTDB_INSTANCE_LAST_EVALUATION);
    ISNULL(i, SPOTDB_INSTANCE_METADATA);
    ck_assert_ptr_null(i->metadata);
    EQI(i->nulls, SPOTDB_INSTANCE_ASSIGNED_MODEL_VERSION |
        SPOTDB_INSTANCE_LAST_EVALUATION | SPOTDB_INSTANCE_METADATA);
    assert_near_now(i->created_at, "created_at");
    assert_near_now(i->updated_at, "updated_at");
    qeq("CLUSTER|false|true", "SELECT pipeline_mode || '|' || is_shadow_mode || '|'"
        " || is_active FROM instances WHERE id = '%s'", i->id);
    qeq("1", "SELECT count(*) FROM instances WHERE id = '%s' AND metadata IS "
        "NULL AND last_evaluation IS NULL AND assigned_model_version IS NULL",
        i->id);
    spotdb_instance_free(i);
}
END_TEST

START_TEST(instance_round_trip_every_column)
{
    char acc[SPOTDB_UUID_SIZE];
    const char *canon = "{\"a\": 1, \"b\": [true, null], \"ü\": \"漢字\"}";
    char *amv = rep("ü", 49, "漢"); /* 50 characters */
    spotdb_instance in, *i = NULL, *g = NULL, *k = NULL;
    uint64_t fields = INST_REQ | SPOTDB_INSTANCE_ASSIGNED_MODEL_VERSION |
                      SPOTDB_INSTANCE_PIPELINE_MODE |
                      SPOTDB_INSTANCE_IS_SHADOW_MODE |
                      SPOTDB_INSTANCE_IS_ACTIVE |
                      SPOTDB_INSTANCE_LAST_EVALUATION |
                      SPOTDB_INSTANCE_METADATA | SPOTDB_INSTANCE_CREATED_AT;

    base_account(acc);
    memset(&in, 0, sizeof in);
    copy_id(in.account_id, acc);
    in.instance_id = "i-0123abcd";
    in.instance_type = "ü1234567890123456789"; /* 20 characters */
    in.availability_zone = "ap-ünï-1a-0123456789";
    in.assigned_model_version = amv;
    in.pipeline_mode = "LINEAR";
    in.is_shadow_mode = true;
    in.is_active = false;
    in.last_evaluation = T0 + 1;
    in.metadata = canon;
    in.created_at = T0;
    OK(spotdb_instance_create(&i, db, &in, fields));
    EQS(i->account_id, acc);
    EQS(i->instance_id, "i-0123abcd");
    EQS(i->instance_type, in.instance_type);
    EQS(i->availability_zone, in.availability_zone);
    EQS(i->assigned_model_version, amv);
    EQS(i->pipeline_mode, "LINEAR");
    ck_assert(i->is_shadow_mode);
    ck_assert(!i->is_active);
    EQI(i->last_evaluation, T0 + 1);
    EQS(i->metadata, canon);
    EQI(i->created_at, T0);
    EQI(i->nulls, 0);
    assert_near_now(i->updated_at, "updated_at");
    OK(spotdb_instance_get(&g, db, i->id));
    assert_instance_same(g, i);
    OK(spotdb_instance_get_by_instance_id(&k, db, "i-0123abcd"));
    assert_instance_same(k, i);
    qeq("2023-11-14 22:13:20.123457|2023-11-14 22:13:20.123456|true|false",
        "SELECT last_evaluation || '|' || created_at || '|' || is_shadow_mode"
        " || '|' || is_active FROM instances WHERE id = '%s'", i->id);
    qeq("1", "SELECT count(*) FROM instances WHERE id = '%s' AND metadata = "
        "'{\"b\": [true, null], \"a\": 1, \"ü\": \"漢字\"}'::jsonb AND "
        "assigned_model_version = repeat('ü', 49) || '漢'", i->id);
    spotdb_instance_free(g);
    spotdb_instance_free(k);
    g = k = NULL;

    /* JSON that is not in canonical form comes back meaning the same */
    OK(spotdb_instance_update(&g, db, i->id, &(spotdb_instance){
        .metadata = " { \"z\" : [1, 2.50, {\"k\":\"v\"}],\n\"a\":\"é\" } " },
        SPOTDB_INSTANCE_METADATA));
    ck_assert_msg(json_same(g->metadata, "{\"a\":\"é\",\"z\":[1,2.50,"
                            "{\"k\":\"v\"}]}"), "metadata %s", g->metadata);
    qeq("1", "SELECT count(*) FROM instances WHERE id = '%s' AND metadata = "
        "'{\"a\":\"é\",\"z\":[1,2.5,{\"k\":\"v\"}]}'::jsonb", i->id);
    spotdb_instance_free(g);
    g = NULL;

    /* timestamps at the edges: before 1970 and 'infinity' */
    OK(spotdb_instance_update(&g, db, i->id, &(spotdb_instance){
        .last_evaluation = -INT64_C(86400000001) },
        SPOTDB_INSTANCE_LAST_EVALUATION));
    EQI(g->last_evaluation, -INT64_C(86400000001));
    qeq("1969-12-30 23:59:59.999999", "SELECT last_evaluation::text FROM "
        "instances WHERE id = '%s'", i->id);
    spotdb_instance_free(g);
    g = NULL;
    OK(spotdb_instance_update(&g, db, i->id, &(spotdb_instance){
        .last_evaluation = INT64_MAX }, SPOTDB_INSTANCE_LAST_EVALUATION));
    EQI(g->last_evaluation, INT64_MAX);
    qeq("infinity", "SELECT last_evaluation::text FROM instances WHERE "
        "id = '%s'", i->id);
    spotdb_instance_free(g);
    g = NULL;

    spotdb_instance_free(k);
    FAILS_OUT(SPOTDB_ENOTFOUND, NULL, k,
              spotdb_instance_get_by_instance_id(&k, db, "i-ffffffff"));
    FAILS_OUT(SPOTDB_ENOTFOUND, NULL, k,
              spotdb_instance_get(&k, db, UUID_ABSENT));
    FAILS_OUT(SPOTDB_EINVAL, NULL, k, spotdb_instance_get(&k, db, "i-1"));
    spotdb_instance_free(i);
    free(amv);
}
END_TEST

static void instance_einval(const spotdb_instance *in, uint64_t fields,
                            const char *field)
{
    spotdb_instance *i;
    long before = rows_in("instances");

    snprintf(g_ctx, sizeof g_ctx, "field %s: account_id=%s instance_id=%s "
             "type=%s az=%s amv=%s mode=%s metadata=%s fields=%#llx", field,
             in->account_id, S(in->instance_id), S(in->instance_type),
             S(in->availability_zone), S(in->assigned_model_version),
             S(in->pipeline_mode), S(in->metadata),
             (unsigned long long)fields);
    FAILS_OUT(SPOTDB_EINVAL, field, i,
              spotdb_instance_create(&i, db, in, fields));
    EQI(rows_in("instances"), before);
}

START_TEST(instance_validation_names_the_field)
{
    char acc[SPOTDB_UUID_SIZE];
    spotdb_instance in;
    char *amv51 = rep("ü", 51, "");
    static const char *const bad_ids[] = {
        "x-123", "i-XYZ", "i-0123ABCD", "i-0123abc", "i-0123456789abcdef",
        "i-0123456789abcdef01", "i-0123abcd ", "0123abcd", "", "i-0123abcg",
        NULL
    };

    base_account(acc);
    instance_input(&in, acc, "i-0123abcd");
    for (int k = 0; bad_ids[k]; k++) {
        in.instance_id = bad_ids[k];
        instance_einval(&in, INST_REQ, "instance_id");
    }
    in.instance_id = "i-0123abcd";
    in.instance_type = "abcdefghijklmnopqrstu"; /* 21 */
    instance_einval(&in, INST_REQ, "instance_type");
    in.instance_type = "";
    instance_einval(&in, INST_REQ, "instance_type");
    in.instance_type = "c5.large";
    in.availability_zone = "ü23456789012345678901"; /* 21 */
    instance_einval(&in, INST_REQ, "availability_zone");
    in.availability_zone = "ap-south-1a";
    in.assigned_model_version = amv51;
    instance_einval(&in, INST_REQ | SPOTDB_INSTANCE_ASSIGNED_MODEL_VERSION,
                    "assigned_model_version");
    in.pipeline_mode = "FOO";
    instance_einval(&in, INST_REQ | SPOTDB_INSTANCE_PIPELINE_MODE,
                    "pipeline_mode");
    in.pipeline_mode = "cluster";
    instance_einval(&in, INST_REQ | SPOTDB_INSTANCE_PIPELINE_MODE,
                    "pipeline_mode");
    in.metadata = "{\"a\":";
    instance_einval(&in, INST_REQ | SPOTDB_INSTANCE_METADATA, "metadata");
    copy_id(in.account_id, "123456789012");
    instance_einval(&in, INST_REQ, "account_id");
    copy_id(in.account_id, "0000000000000000000000000000000000Z0");
    instance_einval(&in, INST_REQ, "account_id");
    copy_id(in.account_id, acc);
    instance_einval(&in, INST_REQ & ~SPOTDB_INSTANCE_INSTANCE_TYPE,
                    "instance_type");
    instance_einval(&in, INST_REQ & ~SPOTDB_INSTANCE_ACCOUNT_ID,
                    "account_id");
    instance_einval(&in, INST_REQ & ~SPOTDB_INSTANCE_INSTANCE_ID,
                    "instance_id");
    instance_einval(&in, INST_REQ & ~SPOTDB_INSTANCE_AVAILABILITY_ZONE,
                    "availability_zone");
    EQI(rows_in("instances"), 0);
    in.assigned_model_version = NULL;
    free(amv51);
    /* last, so that a failure here does not hide the checks above */
    in.metadata = "{'a': 1}";
    instance_einval(&in, INST_REQ | SPOTDB_INSTANCE_METADATA, "metadata");
    in.metadata = "[1, 2,]";
    instance_einval(&in, INST_REQ | SPOTDB_INSTANCE_METADATA, "metadata");
}
END_TEST

START_TEST(instance_server_rejections_are_mapped)
{
    char acc[SPOTDB_UUID_SIZE];
    spotdb_instance in, *i;

    base_account(acc);
    make_instance(NULL, acc, "i-0123abcd");
    instance_input(&in, acc, "i-0123abcd");
    FAILS_OUT(SPOTDB_ECONFLICT, "instances_instance_id_key", i,
              spotdb_instance_create(&i, db, &in, INST_REQ));
    EQI(rows_in("instances"), 1);
    instance_input(&in, UUID_ABSENT, "i-0123abce");
    FAILS_OUT(SPOTDB_EREFERENCE, "instances_account_id_fkey", i,
              spotdb_instance_create(&i, db, &in, INST_REQ));
    EQI(rows_in("instances"), 1);
}
END_TEST

START_TEST(instance_nulls_round_trip)
{
    char acc[SPOTDB_UUID_SIZE];
    spotdb_instance in, *i = NULL, *g = NULL;
    uint64_t nullable = SPOTDB_INSTANCE_ASSIGNED_MODEL_VERSION |
                        SPOTDB_INSTANCE_IS_SHADOW_MODE |
                        SPOTDB_INSTANCE_IS_ACTIVE |
                        SPOTDB_INSTANCE_LAST_EVALUATION |
                        SPOTDB_INSTANCE_METADATA;

    base_account(acc);
    instance_input(&in, acc, "i-0123abcd");
    in.assigned_model_version = NULL;
    in.metadata = NULL;
    in.is_shadow_mode = false;
    in.is_active = true;
    in.last_evaluation = T0;
    in.nulls = SPOTDB_INSTANCE_IS_SHADOW_MODE | SPOTDB_INSTANCE_IS_ACTIVE |
               SPOTDB_INSTANCE_LAST_EVALUATION;
    OK(spotdb_instance_create(&i, db, &in, INST_REQ | nullable));
    EQI(i->nulls, nullable);
    ck_assert_ptr_null(i->assigned_model_version);
    ck_assert_ptr_null(i->metadata);
    OK(spotdb_instance_get(&g, db, i->id));
    EQI(g->nulls, nullable);
    qeq("5", "SELECT (assigned_model_version IS NULL)::int + (is_shadow_mode "
        "IS NULL)::int + (is_active IS NULL)::int + (last_evaluation IS "
        "NULL)::int + (metadata IS NULL)::int FROM instances WHERE id = '%s'",
        i->id);
    spotdb_instance_free(g);
    spotdb_instance_free(i);
}
END_TEST

START_TEST(instance_update_by_mask)
{
    char acc[SPOTDB_UUID_SIZE], acc2[SPOTDB_UUID_SIZE], uid[SPOTDB_UUID_SIZE];
    spotdb_instance in, *i = NULL, *u = NULL, *g = NULL;
    char *before_row;

    make_user(uid, "owner");
    make_account(acc, uid, "123456789012");
    make_account(acc2, uid, "210987654321");
    instance_input(&in, acc, "i-0123abcd");
    in.assigned_model_version = "v1.0";
    in.metadata = "{\"a\": 1}";
    in.last_evaluation = T0;
    OK(spotdb_instance_create(&i, db, &in, INST_REQ |
                              SPOTDB_INSTANCE_ASSIGNED_MODEL_VERSION |
                              SPOTDB_INSTANCE_METADATA |
                              SPOTDB_INSTANCE_LAST_EVALUATION));
    make_instance(NULL, acc, "i-0123abce");

    memset(&in, 0, sizeof in);
    copy_id(in.id, UUID_ABSENT);
    copy_id(in.account_id, acc2);
    in.instance_id = "i-99999999";
    in.instance_type = "m5.xlarge";
    in.availability_zone = "us-east-1b";
    in.assigned_model_version = "v2.0";
    in.pipeline_mode = "LINEAR";
    in.is_shadow_mode = true;
    in.is_active = false;
    in.last_evaluation = T0 + 5;
    in.metadata = "{\"b\": 2}";
    in.created_at = 1;
    in.updated_at = 1;
    nap_ms(5);
    OK(spotdb_instance_update(&u, db, i->id, &in,
                              SPOTDB_INSTANCE_PIPELINE_MODE |
                              SPOTDB_INSTANCE_IS_SHADOW_MODE));
    EQS(u->id, i->id);
    EQS(u->account_id, acc);
    EQS(u->instance_id, "i-0123abcd");
    EQS(u->instance_type, "c5.large");
    EQS(u->availability_zone, "ap-south-1a");
    EQS(u->assigned_model_version, "v1.0");
    EQS(u->pipeline_mode, "LINEAR");
    ck_assert(u->is_shadow_mode);
    ck_assert(u->is_active);
    EQI(u->last_evaluation, T0);
    EQS(u->metadata, "{\"a\": 1}");
    EQI(u->created_at, i->created_at);
    ck_assert_msg(u->updated_at > i->updated_at, "updated_at did not move");
    EQI(u->nulls, 0);
    OK(spotdb_instance_get(&g, db, i->id));
    assert_instance_same(g, u);
    spotdb_instance_free(g);
    g = NULL;
    spotdb_instance_free(u);
    u = NULL;
    qeq("LINEAR|true|true|c5.large", "SELECT pipeline_mode || '|' || is_shadow_mode"
        " || '|' || is_active || '|' || instance_type FROM instances WHERE "
        "id = '%s'", i->id);

    /* a nullable column set to NULL, the others untouched */
    in.assigned_model_version = NULL;
    in.metadata = NULL;
    OK(spotdb_instance_update(&u, db, i->id, &in,
                              SPOTDB_INSTANCE_ASSIGNED_MODEL_VERSION |
                              SPOTDB_INSTANCE_METADATA));
    EQI(u->nulls, SPOTDB_INSTANCE_ASSIGNED_MODEL_VERSION |
        SPOTDB_INSTANCE_METADATA);
    EQI(u->last_evaluation, T0);
    qeq("1", "SELECT count(*) FROM instances WHERE id = '%s' AND metadata IS "
        "NULL AND assigned_model_version IS NULL AND last_evaluation IS NOT "
        "NULL", i->id);
    spotdb_instance_free(u);
    u = NULL;
    in.nulls = SPOTDB_INSTANCE_IS_SHADOW_MODE;
    in.is_shadow_mode = false;
    OK(spotdb_instance_update(&u, db, i->id, &in,
                              SPOTDB_INSTANCE_IS_SHADOW_MODE));
    ISNULL(u, SPOTDB_INSTANCE_IS_SHADOW_MODE);
    qeq(NULL, "SELECT is_shadow_mode::text FROM instances WHERE id = '%s'",
        i->id);
    spotdb_instance_free(u);
    u = NULL;
    in.nulls = 0;

    /* move it to another account */
    OK(spotdb_instance_update(NULL, db, i->id, &in,
                              SPOTDB_INSTANCE_ACCOUNT_ID));
    qeq(acc2, "SELECT account_id::text FROM instances WHERE id = '%s'",
        i->id);

    before_row = qf("SELECT i::text FROM instances i WHERE id = '%s'", i->id);
    FAILS_OUT(SPOTDB_EINVAL, NULL, u,
              spotdb_instance_update(&u, db, i->id, &in, 0));
    FAILS_OUT(SPOTDB_EINVAL, NULL, u,
              spotdb_instance_update(&u, db, i->id, &in,
                                     SPOTDB_INSTANCE_ID));
    FAILS_OUT(SPOTDB_EINVAL, NULL, u,
              spotdb_instance_update(&u, db, i->id, &in,
                                     SPOTDB_INSTANCE_UPDATED_AT));
    FAILS_OUT(SPOTDB_ENOTFOUND, NULL, u,
              spotdb_instance_update(&u, db, UUID_ABSENT, &in,
                                     SPOTDB_INSTANCE_INSTANCE_TYPE));
    in.pipeline_mode = "FOO";
    FAILS_OUT(SPOTDB_EINVAL, "pipeline_mode", u,
              spotdb_instance_update(&u, db, i->id, &in,
                                     SPOTDB_INSTANCE_PIPELINE_MODE));
    in.instance_id = "i-0123abce";
    FAILS_OUT(SPOTDB_ECONFLICT, "instances_instance_id_key", u,
              spotdb_instance_update(&u, db, i->id, &in,
                                     SPOTDB_INSTANCE_INSTANCE_ID));
    copy_id(in.account_id, UUID_ABSENT);
    FAILS_OUT(SPOTDB_EREFERENCE, "instances_account_id_fkey", u,
              spotdb_instance_update(&u, db, i->id, &in,
                                     SPOTDB_INSTANCE_ACCOUNT_ID));
    {
        char *after = qf("SELECT i::text FROM instances i WHERE id = '%s'",
                         i->id);
        EQS(after, before_row);
        free(after);
    }
    free(before_row);
    spotdb_instance_free(i);
}
END_TEST

START_TEST(instance_delete_cascades_to_logs)
{
    char acc[SPOTDB_UUID_SIZE], i1[SPOTDB_UUID_SIZE], i2[SPOTDB_UUID_SIZE];

    base_account(acc);
    make_instance(i1, acc, "i-0000000a");
    make_instance(i2, acc, "i-0000000b");
    for (int k = 0; k < 3; k++) {
        make_log(NULL, i1, NULL, 0, "SWITCH", 0);
        make_log(NULL, i2, NULL, 0, "SWITCH", 0);
    }
    OK(spotdb_instance_delete(db, i1));
    EQI(rows_in("instances"), 1);
    EQI(qn("SELECT count(*) FROM experiment_logs WHERE instance_id = '%s'",
           i1), 0);
    EQI(rows_in("experiment_logs"), 3);
    FAILS(SPOTDB_ENOTFOUND, NULL, spotdb_instance_delete(db, i1));
    FAILS(SPOTDB_EINVAL, NULL, spotdb_instance_delete(db, "i-0000000b"));
    EQI(rows_in("instances"), 1);
    EQI(rows_in("accounts"), 1);
}
END_TEST

static void instance_filter_is(const spotdb_instance_filter *f,
                               const char *const *ids, size_t n)
{
    spotdb_instance_rows *r = NULL;
    int64_t c = -1;

    OK(spotdb_instance_list(&r, db, f, NULL, 0));
    ck_assert_msg(r->count == n, "list gave %zu rows, expected %zu",
                  r->count, n);
    ck_assert_ptr_null(r->next_cursor);
    for (size_t i = 0; i < n; i++) {
        int seen = 0;
        for (size_t k = 0; k < r->count; k++)
            seen += strcmp(r->items[k].id, ids[i]) == 0;
        ck_assert_msg(seen == 1, "row %s seen %d times", ids[i], seen);
    }
    spotdb_instance_rows_free(r);
    OK(spotdb_instance_count(&c, db, f));
    EQI(c, (int64_t)n);
}

START_TEST(instance_list_and_count_filters)
{
    char uid[SPOTDB_UUID_SIZE], a1[SPOTDB_UUID_SIZE], a2[SPOTDB_UUID_SIZE];
    char i1[SPOTDB_UUID_SIZE], i2[SPOTDB_UUID_SIZE], i3[SPOTDB_UUID_SIZE],
        i4[SPOTDB_UUID_SIZE];
    spotdb_instance v;
    spotdb_instance_filter f = SPOTDB_INSTANCE_FILTER_INIT;
    bool yes = true, no = false;
    spotdb_instance_rows *r;

    make_user(uid, "owner");
    make_account(a1, uid, "111111111111");
    make_account(a2, uid, "222222222222");
    memset(&v, 0, sizeof v);
    make_instance(i1, a1, "i-00000001"); /* CLUSTER, active */
    v.pipeline_mode = "LINEAR";
    v.is_active = false;
    make_instance_on(db, i2, a1, "i-00000002",
                     SPOTDB_INSTANCE_PIPELINE_MODE |
                     SPOTDB_INSTANCE_IS_ACTIVE, &v);
    make_instance_on(db, i3, a2, "i-00000003",
                     SPOTDB_INSTANCE_PIPELINE_MODE, &v); /* LINEAR, active */
    v.nulls = SPOTDB_INSTANCE_IS_ACTIVE;
    make_instance_on(db, i4, a2, "i-00000004", SPOTDB_INSTANCE_IS_ACTIVE,
                     &v); /* CLUSTER, NULL */
    {
        const char *e[] = { i1, i2, i3, i4 };
        instance_filter_is(NULL, e, 4);
    }
    f.account_id = a1;
    {
        const char *e[] = { i1, i2 };
        instance_filter_is(&f, e, 2);
    }
    f.account_id = NULL;
    f.pipeline_mode = "LINEAR";
    {
        const char *e[] = { i2, i3 };
        instance_filter_is(&f, e, 2);
    }
    f.pipeline_mode = "CLUSTER";
    {
        const char *e[] = { i1, i4 };
        instance_filter_is(&f, e, 2);
    }
    f.pipeline_mode = NULL;
    f.is_active = &yes;
    {
        const char *e[] = { i1, i3 };
        instance_filter_is(&f, e, 2);
    }
    f.is_active = &no;
    {
        const char *e[] = { i2 };
        instance_filter_is(&f, e, 1);
    }
    f.account_id = a2;
    f.pipeline_mode = "LINEAR";
    f.is_active = &yes;
    {
        const char *e[] = { i3 };
        instance_filter_is(&f, e, 1);
    }
    f.is_active = &no;
    instance_filter_is(&f, NULL, 0);
    f.is_active = NULL;
    f.pipeline_mode = NULL;
    f.account_id = "111111111111"; /* the AWS number is not the key */
    FAILS_OUT(SPOTDB_EINVAL, NULL, r,
              spotdb_instance_list(&r, db, &f, NULL, 0));
}
END_TEST

static void instance_insert_hook(int page)
{
    spotdb_instance v;
    char ec2[32];

    if (page != 1 && page != 4)
        return;
    if (!db2)
        db2 = th_open();
    memset(&v, 0, sizeof v);
    v.created_at = INT64_C(1600000000000000) - 1;
    ec2_id(ec2, sizeof ec2, 0xf00000UL + (unsigned long)g_serial++);
    make_instance_on(db2, NULL, g_parent, ec2, SPOTDB_INSTANCE_CREATED_AT,
                     &v);
    v.created_at = INT64_C(1600000000000000) + 2000000;
    ec2_id(ec2, sizeof ec2, 0xf00000UL + (unsigned long)g_serial++);
    make_instance_on(db2, NULL, g_parent, ec2, SPOTDB_INSTANCE_CREATED_AT,
                     &v);
    ec2_id(ec2, sizeof ec2, 0xf00000UL + (unsigned long)g_serial++);
    make_instance_on(db2, NULL, g_parent, ec2, 0, NULL);
}

START_TEST(instance_keyset_paging)
{
    struct item expect[30];
    char other[SPOTDB_UUID_SIZE], uid[SPOTDB_UUID_SIZE];
    spotdb_instance_filter f = SPOTDB_INSTANCE_FILTER_INIT;

    make_user(uid, "owner");
    make_account(g_parent, uid, "123456789012");
    make_account(other, uid, "210987654321");
    for (int k = 0; k < 30; k++) {
        spotdb_instance v, *i = NULL;
        char ec2[32];

        ec2_id(ec2, sizeof ec2, 0xa00000UL + (unsigned long)k);
        instance_input(&v, g_parent, ec2);
        v.created_at = INT64_C(1600000000000000) + (k % 3) * 1000000;
        OK(spotdb_instance_create(&i, db, &v,
                                  INST_REQ | SPOTDB_INSTANCE_CREATED_AT));
        copy_id(expect[k].id, i->id);
        expect[k].key = i->created_at;
        spotdb_instance_free(i);
    }
    for (int k = 0; k < 4; k++) {
        char ec2[32];

        ec2_id(ec2, sizeof ec2, 0xb00000UL + (unsigned long)k);
        make_instance(NULL, other, ec2);
    }
    f.account_id = g_parent;
    ck_assert_int_eq(page_check(page_instances, &f, 7, expect, 30, 0, NULL,
                                g_parent), 5);
    ck_assert_int_ge(page_check(page_instances, &f, 7, expect, 30, 0,
                                instance_insert_hook, g_parent), 5);
}
END_TEST

START_TEST(instance_limits_and_cursor)
{
    char acc[SPOTDB_UUID_SIZE];
    spotdb_instance_rows *r = NULL;
    int64_t c = 0;

    base_account(acc);
    (void)qn("WITH x AS (INSERT INTO instances (account_id, instance_id, "
             "instance_type, availability_zone) SELECT '%s', 'i-' || "
             "lpad(to_hex(g), 8, '0'), 't3.micro', 'ap-south-1a' FROM "
             "generate_series(1, 130) g RETURNING 1) SELECT count(*) FROM x",
             acc);
    OK(spotdb_instance_list(&r, db, NULL, NULL, 0));
    EQI(r->count, SPOTDB_DEFAULT_LIMIT);
    ck_assert_ptr_nonnull(r->next_cursor);
    spotdb_instance_rows_free(r);
    OK(spotdb_instance_count(&c, db, NULL));
    EQI(c, 130);
    FAILS_OUT(SPOTDB_EINVAL, NULL, r,
              spotdb_instance_list(&r, db, NULL, NULL, -5));
    FAILS_OUT(SPOTDB_EINVAL, NULL, r,
              spotdb_instance_list(&r, db, NULL, NULL, SPOTDB_MAX_LIMIT + 1));
    FAILS_OUT(SPOTDB_EINVAL, NULL, r,
              spotdb_instance_list(&r, db, NULL, "%%%", 3));
}
END_TEST

START_TEST(instance_create_for_aws_account)
{
    char acc[SPOTDB_UUID_SIZE];
    spotdb_instance in, *i = NULL;

    base_account(acc);
    instance_input(&in, UUID_ABSENT, "i-0123abcd");
    OK(spotdb_instance_create_for_aws_account(
        &i, db, "123456789012", &in, INST_REQ & ~SPOTDB_INSTANCE_ACCOUNT_ID));
    EQS(i->account_id, acc);
    EQS(i->instance_id, "i-0123abcd");
    EQS(i->pipeline_mode, "CLUSTER");
    qeq(acc, "SELECT account_id::text FROM instances WHERE id = '%s'",
        i->id);
    spotdb_instance_free(i);

    in.instance_id = "i-0123abce";
    FAILS_OUT(SPOTDB_ENOTFOUND, NULL, i,
              spotdb_instance_create_for_aws_account(
                  &i, db, "999999999999", &in,
                  INST_REQ & ~SPOTDB_INSTANCE_ACCOUNT_ID));
    EQI(rows_in("instances"), 1);
    FAILS_OUT(SPOTDB_EINVAL, NULL, i,
              spotdb_instance_create_for_aws_account(&i, db, "123456789012",
                                                     &in, INST_REQ));
    EQI(rows_in("instances"), 1);
    in.instance_id = "i-0123abcd";
    FAILS_OUT(SPOTDB_ECONFLICT, "instances_instance_id_key", i,
              spotdb_instance_create_for_aws_account(
                  &i, db, "123456789012", &in,
                  INST_REQ & ~SPOTDB_INSTANCE_ACCOUNT_ID));
    EQI(rows_in("instances"), 1);
}
END_TEST

/* ======================================================================== */
/* model_registry                                                           */
/* ======================================================================== */

static void assert_model_same(const spotdb_model *x, const spotdb_model *y)
{
    EQS(x->id, y->id);
    EQS(x->name, y->name);
    EQS(x->version, y->version);
    EQS(x->s3_path, y->s3_path);
    EQS(x->local_path, y->local_path);
    EQS(x->description, y->description);
    EQI(x->is_experimental, y->is_experimental);
    EQI(x->is_active, y->is_active);
    EQS(x->feature_version, y->feature_version);
    EQI(x->created_at, y->created_at);
    EQS(x->created_by, y->created_by);
    EQI(x->nulls, y->nulls);
}

#define MODEL_NULLABLE                                                       \
    (SPOTDB_MODEL_S3_PATH | SPOTDB_MODEL_LOCAL_PATH |                        \
     SPOTDB_MODEL_DESCRIPTION | SPOTDB_MODEL_IS_EXPERIMENTAL |               \
     SPOTDB_MODEL_IS_ACTIVE | SPOTDB_MODEL_FEATURE_VERSION |                 \
     SPOTDB_MODEL_CREATED_BY)

START_TEST(model_create_takes_defaults)
{
    spotdb_model in, *m = NULL;

    memset(&in, 0, sizeof in);
    in.name = "FamilyStressPredictor";
    in.version = "v2.1.0";
    in.is_experimental = true;
    in.is_active = false;
    in.description = "not written";
    in.created_at = T0;
    OK(spotdb_model_create(&m, db, &in, SPOTDB_MODEL_NAME |
                           SPOTDB_MODEL_VERSION));
    ck_assert_msg(is_uuid(m->id), "id \"%s\"", m->id);
    EQS(m->name, "FamilyStressPredictor");
    EQS(m->version, "v2.1.0");
    ck_assert(!m->is_experimental);
    ck_assert(m->is_active);
    NOTNULL(m, SPOTDB_MODEL_IS_EXPERIMENTAL);
    NOTNULL(m, SPOTDB_MODEL_IS_ACTIVE);
    EQI(m->nulls, SPOTDB_MODEL_S3_PATH | SPOTDB_MODEL_LOCAL_PATH |
        SPOTDB_MODEL_DESCRIPTION | SPOTDB_MODEL_FEATURE_VERSION |
        SPOTDB_MODEL_CREATED_BY);
    ck_assert_ptr_null(m->s3_path);
    ck_assert_ptr_null(m->local_path);
    ck_assert_ptr_null(m->description);
    ck_assert_ptr_null(m->feature_version);
    EQS(m->created_by, "");
    assert_near_now(m->created_at, "created_at");
    qeq("false|true", "SELECT is_experimental || '|' || is_active FROM "
        "model_registry WHERE id = '%s'", m->id);
    qeq("1", "SELECT count(*) FROM model_registry WHERE id = '%s' AND "
        "description IS NULL AND created_by IS NULL", m->id);
    spotdb_model_free(m);
}
END_TEST

START_TEST(model_round_trip_every_column)
{
    char uid[SPOTDB_UUID_SIZE];
    char *name = rep("模", 50, "");
    char *s3 = rep("é", 255 - 5, "s3://");
    char *local = rep("/ü", 127, "/");
    char *desc = rep("Ωmega ≈ 😀 ", 500, "end");
    spotdb_model in, *m = NULL, *g = NULL, *k = NULL;

    make_user(uid, "mlops");
    memset(&in, 0, sizeof in);
    in.name = name;
    in.version = "v12345678901234567.";
    in.s3_path = s3;
    in.local_path = local;
    in.description = desc;
    in.is_experimental = true;
    in.is_active = false;
    in.feature_version = "fv-ü-0123456789abcd";
    in.created_at = T0;
    copy_id(in.created_by, uid);
    OK(spotdb_model_create(&m, db, &in, SPOTDB_MODEL_NAME |
                           SPOTDB_MODEL_VERSION | MODEL_NULLABLE |
                           SPOTDB_MODEL_CREATED_AT));
    EQS(m->name, name);
    EQS(m->version, in.version);
    EQS(m->s3_path, s3);
    EQS(m->local_path, local);
    EQS(m->description, desc);
    ck_assert(m->is_experimental);
    ck_assert(!m->is_active);
    EQS(m->feature_version, in.feature_version);
    EQI(m->created_at, T0);
    EQS(m->created_by, uid);
    EQI(m->nulls, 0);
    OK(spotdb_model_get(&g, db, m->id));
    assert_model_same(g, m);
    OK(spotdb_model_get_by_name_version(&k, db, name, in.version));
    assert_model_same(k, m);
    qeq("50|255|255|true|false|" T0_TEXT, "SELECT char_length(name) || '|' || "
        "char_length(s3_path) || '|' || char_length(local_path) || '|' || "
        "is_experimental || '|' || is_active || '|' || created_at FROM "
        "model_registry WHERE id = '%s'", m->id);
    qeq(uid, "SELECT created_by::text FROM model_registry WHERE id = '%s'",
        m->id);
    spotdb_model_free(k);
    FAILS_OUT(SPOTDB_ENOTFOUND, NULL, k,
              spotdb_model_get_by_name_version(&k, db, name, "v0"));
    FAILS_OUT(SPOTDB_ENOTFOUND, NULL, k,
              spotdb_model_get(&k, db, UUID_ABSENT));
    FAILS_OUT(SPOTDB_EINVAL, NULL, k, spotdb_model_get(&k, db, ""));
    spotdb_model_free(g);
    spotdb_model_free(m);
    free(name);
    free(s3);
    free(local);
    free(desc);
}
END_TEST

static void model_einval(const spotdb_model *in, uint64_t fields,
                         const char *field)
{
    spotdb_model *m;
    long before = rows_in("model_registry");

    snprintf(g_ctx, sizeof g_ctx, "field %s: name=%s version=%s s3=%.20s "
             "local=%.20s fv=%s created_by=%s fields=%#llx", field,
             S(in->name), S(in->version), S(in->s3_path), S(in->local_path),
             S(in->feature_version), in->created_by,
             (unsigned long long)fields);
    FAILS_OUT(SPOTDB_EINVAL, field, m,
              spotdb_model_create(&m, db, in, fields));
    EQI(rows_in("model_registry"), before);
}

START_TEST(model_validation_names_the_field)
{
    spotdb_model in;
    char *name51 = rep("模", 51, "");
    char *p256 = rep("p", 256, "");
    const uint64_t req = SPOTDB_MODEL_NAME | SPOTDB_MODEL_VERSION;

    memset(&in, 0, sizeof in);
    in.name = name51;
    in.version = "v1";
    model_einval(&in, req, "name");
    in.name = "";
    model_einval(&in, req, "name");
    in.name = "M";
    in.version = "v12345678901234567890"; /* 21 */
    model_einval(&in, req, "version");
    in.version = "";
    model_einval(&in, req, "version");
    in.version = "v1";
    in.s3_path = p256;
    model_einval(&in, req | SPOTDB_MODEL_S3_PATH, "s3_path");
    in.local_path = p256;
    model_einval(&in, req | SPOTDB_MODEL_LOCAL_PATH, "local_path");
    in.feature_version = "fv-0123456789abcdefgh"; /* 21 */
    model_einval(&in, req | SPOTDB_MODEL_FEATURE_VERSION, "feature_version");
    copy_id(in.created_by, "zzz");
    model_einval(&in, req | SPOTDB_MODEL_CREATED_BY, "created_by");
    copy_id(in.created_by, "0000000000000000000000000000000000000");
    model_einval(&in, req | SPOTDB_MODEL_CREATED_BY, "created_by");
    model_einval(&in, SPOTDB_MODEL_NAME, "version");
    model_einval(&in, SPOTDB_MODEL_VERSION, "name");
    EQI(rows_in("model_registry"), 0);
    free(name51);
    free(p256);
}
END_TEST

START_TEST(model_server_rejections_are_mapped)
{
    spotdb_model in, *m;

    make_model(NULL, "Predictor", "v1");
    make_model(NULL, "Predictor", "v2");
    make_model(NULL, "Other", "v1");
    memset(&in, 0, sizeof in);
    in.name = "Predictor";
    in.version = "v1";
    FAILS_OUT(SPOTDB_ECONFLICT, "uq_model_version", m,
              spotdb_model_create(&m, db, &in, SPOTDB_MODEL_NAME |
                                  SPOTDB_MODEL_VERSION));
    EQI(rows_in("model_registry"), 3);
    in.version = "v3";
    copy_id(in.created_by, UUID_ABSENT);
    FAILS_OUT(SPOTDB_EREFERENCE, "model_registry_created_by_fkey", m,
              spotdb_model_create(&m, db, &in, SPOTDB_MODEL_NAME |
                                  SPOTDB_MODEL_VERSION |
                                  SPOTDB_MODEL_CREATED_BY));
    EQI(rows_in("model_registry"), 3);
}
END_TEST

START_TEST(model_nulls_round_trip)
{
    spotdb_model in, *m = NULL, *g = NULL;

    memset(&in, 0, sizeof in);
    in.name = "N";
    in.version = "v1";
    in.nulls = SPOTDB_MODEL_IS_EXPERIMENTAL | SPOTDB_MODEL_IS_ACTIVE;
    OK(spotdb_model_create(&m, db, &in, SPOTDB_MODEL_NAME |
                           SPOTDB_MODEL_VERSION | MODEL_NULLABLE));
    EQI(m->nulls, MODEL_NULLABLE);
    EQS(m->created_by, "");
    OK(spotdb_model_get(&g, db, m->id));
    EQI(g->nulls, MODEL_NULLABLE);
    qeq("7", "SELECT (s3_path IS NULL)::int + (local_path IS NULL)::int + "
        "(description IS NULL)::int + (is_experimental IS NULL)::int + "
        "(is_active IS NULL)::int + (feature_version IS NULL)::int + "
        "(created_by IS NULL)::int FROM model_registry WHERE id = '%s'",
        m->id);
    spotdb_model_free(g);
    spotdb_model_free(m);
}
END_TEST

START_TEST(model_update_by_mask)
{
    char uid[SPOTDB_UUID_SIZE];
    spotdb_model in, *m = NULL, *u = NULL, *g = NULL;
    char *before_row;

    make_user(uid, "mlops");
    memset(&in, 0, sizeof in);
    in.name = "Predictor";
    in.version = "v1";
    in.s3_path = "s3://models/p/v1";
    in.description = "first";
    in.feature_version = "v2.0";
    copy_id(in.created_by, uid);
    OK(spotdb_model_create(&m, db, &in, SPOTDB_MODEL_NAME |
                           SPOTDB_MODEL_VERSION | SPOTDB_MODEL_S3_PATH |
                           SPOTDB_MODEL_DESCRIPTION |
                           SPOTDB_MODEL_FEATURE_VERSION |
                           SPOTDB_MODEL_CREATED_BY));
    make_model(NULL, "Predictor", "v2");

    memset(&in, 0, sizeof in);
    in.name = "Other";
    in.version = "v9";
    in.s3_path = "s3://elsewhere";
    in.local_path = "/tmp/x";
    in.description = "second ✓";
    in.is_experimental = true;
    in.is_active = false;
    in.feature_version = "v3.0";
    in.created_at = 1;
    OK(spotdb_model_update(&u, db, m->id, &in, SPOTDB_MODEL_DESCRIPTION |
                           SPOTDB_MODEL_IS_ACTIVE));
    EQS(u->id, m->id);
    EQS(u->name, "Predictor");
    EQS(u->version, "v1");
    EQS(u->s3_path, "s3://models/p/v1");
    ck_assert_ptr_null(u->local_path);
    EQS(u->description, "second ✓");
    ck_assert(!u->is_experimental);
    ck_assert(!u->is_active);
    EQS(u->feature_version, "v2.0");
    EQI(u->created_at, m->created_at);
    EQS(u->created_by, uid);
    EQI(u->nulls, SPOTDB_MODEL_LOCAL_PATH);
    OK(spotdb_model_get(&g, db, m->id));
    assert_model_same(g, u);
    spotdb_model_free(g);
    spotdb_model_free(u);
    u = NULL;
    qeq("second ✓|false|false|s3://models/p/v1", "SELECT description || '|' || "
        "is_active || '|' || is_experimental || '|' || s3_path FROM "
        "model_registry WHERE id = '%s'", m->id);

    /* to NULL */
    in.description = NULL;
    in.created_by[0] = '\0';
    OK(spotdb_model_update(&u, db, m->id, &in, SPOTDB_MODEL_DESCRIPTION |
                           SPOTDB_MODEL_CREATED_BY));
    ISNULL(u, SPOTDB_MODEL_DESCRIPTION);
    ISNULL(u, SPOTDB_MODEL_CREATED_BY);
    EQS(u->created_by, "");
    EQS(u->s3_path, "s3://models/p/v1");
    qeq("1", "SELECT count(*) FROM model_registry WHERE id = '%s' AND "
        "description IS NULL AND created_by IS NULL AND s3_path IS NOT NULL",
        m->id);
    spotdb_model_free(u);
    u = NULL;

    before_row = qf("SELECT m::text FROM model_registry m WHERE id = '%s'",
                    m->id);
    FAILS_OUT(SPOTDB_EINVAL, NULL, u,
              spotdb_model_update(&u, db, m->id, &in, 0));
    FAILS_OUT(SPOTDB_EINVAL, NULL, u,
              spotdb_model_update(&u, db, m->id, &in, SPOTDB_MODEL_ID));
    FAILS_OUT(SPOTDB_ENOTFOUND, NULL, u,
              spotdb_model_update(&u, db, UUID_ABSENT, &in,
                                  SPOTDB_MODEL_DESCRIPTION));
    in.version = "v2";
    FAILS_OUT(SPOTDB_ECONFLICT, "uq_model_version", u,
              spotdb_model_update(&u, db, m->id, &in, SPOTDB_MODEL_VERSION));
    copy_id(in.created_by, UUID_ABSENT);
    FAILS_OUT(SPOTDB_EREFERENCE, "model_registry_created_by_fkey", u,
              spotdb_model_update(&u, db, m->id, &in,
                                  SPOTDB_MODEL_CREATED_BY));
    in.version = "v1234567890123456789x";
    FAILS_OUT(SPOTDB_EINVAL, "version", u,
              spotdb_model_update(&u, db, m->id, &in, SPOTDB_MODEL_VERSION));
    {
        char *after = qf("SELECT m::text FROM model_registry m WHERE "
                         "id = '%s'", m->id);
        EQS(after, before_row);
        free(after);
    }
    free(before_row);
    spotdb_model_free(m);
}
END_TEST

START_TEST(model_delete_refused_while_logged)
{
    char acc[SPOTDB_UUID_SIZE], inst[SPOTDB_UUID_SIZE],
        m1[SPOTDB_UUID_SIZE], m2[SPOTDB_UUID_SIZE], log[SPOTDB_UUID_SIZE];

    base_account(acc);
    make_instance(inst, acc, "i-0123abcd");
    make_model(m1, "P", "v1");
    make_model(m2, "P", "v2");
    make_log(log, inst, m1, 0, "STAY", 0);
    FAILS(SPOTDB_EREFERENCE, "experiment_logs_model_id_fkey",
          spotdb_model_delete(db, m1));
    EQI(rows_in("model_registry"), 2);
    EQI(rows_in("experiment_logs"), 1);
    OK(spotdb_model_delete(db, m2));
    EQI(rows_in("model_registry"), 1);
    FAILS(SPOTDB_ENOTFOUND, NULL, spotdb_model_delete(db, m2));
    FAILS(SPOTDB_EINVAL, NULL, spotdb_model_delete(db, "P"));
    OK(spotdb_experiment_log_delete(db, log));
    OK(spotdb_model_delete(db, m1));
    EQI(rows_in("model_registry"), 0);
}
END_TEST

static void model_filter_is(const spotdb_model_filter *f,
                            const char *const *ids, size_t n)
{
    spotdb_model_rows *r = NULL;
    int64_t c = -1;

    OK(spotdb_model_list(&r, db, f, NULL, 0));
    ck_assert_msg(r->count == n, "list gave %zu rows, expected %zu",
                  r->count, n);
    for (size_t i = 0; i < n; i++) {
        int seen = 0;
        for (size_t k = 0; k < r->count; k++)
            seen += strcmp(r->items[k].id, ids[i]) == 0;
        ck_assert_msg(seen == 1, "row %s seen %d times", ids[i], seen);
    }
    spotdb_model_rows_free(r);
    OK(spotdb_model_count(&c, db, f));
    EQI(c, (int64_t)n);
}

START_TEST(model_list_and_count_filters)
{
    char m1[SPOTDB_UUID_SIZE], m2[SPOTDB_UUID_SIZE], m3[SPOTDB_UUID_SIZE],
        m4[SPOTDB_UUID_SIZE];
    spotdb_model v;
    spotdb_model_filter f = SPOTDB_MODEL_FILTER_INIT;
    bool yes = true, no = false;

    memset(&v, 0, sizeof v);
    make_model(m1, "Alpha", "v1");
    v.is_active = false;
    make_model_on(db, m2, "Alpha", "v2", SPOTDB_MODEL_IS_ACTIVE, &v);
    make_model(m3, "Beta", "v1");
    v.nulls = SPOTDB_MODEL_IS_ACTIVE;
    make_model_on(db, m4, "alpha", "v1", SPOTDB_MODEL_IS_ACTIVE, &v);
    {
        const char *e[] = { m1, m2, m3, m4 };
        model_filter_is(NULL, e, 4);
    }
    f.name = "Alpha";
    {
        const char *e[] = { m1, m2 };
        model_filter_is(&f, e, 2);
    }
    f.is_active = &yes;
    {
        const char *e[] = { m1 };
        model_filter_is(&f, e, 1);
    }
    f.name = NULL;
    {
        const char *e[] = { m1, m3 };
        model_filter_is(&f, e, 2);
    }
    f.is_active = &no;
    {
        const char *e[] = { m2 };
        model_filter_is(&f, e, 1);
    }
    f.name = "Gamma";
    f.is_active = NULL;
    model_filter_is(&f, NULL, 0);
}
END_TEST

static void model_insert_hook(int page)
{
    spotdb_model v;
    char ver[32];

    if (page != 2)
        return;
    if (!db2)
        db2 = th_open();
    memset(&v, 0, sizeof v);
    v.created_at = INT64_C(1600000000000000) - 1;
    snprintf(ver, sizeof ver, "late%d", g_serial++);
    make_model_on(db2, NULL, "Paged", ver, SPOTDB_MODEL_CREATED_AT, &v);
    v.created_at = INT64_C(1600000000000000) + 1000000;
    snprintf(ver, sizeof ver, "late%d", g_serial++);
    make_model_on(db2, NULL, "Paged", ver, SPOTDB_MODEL_CREATED_AT, &v);
    snprintf(ver, sizeof ver, "late%d", g_serial++);
    make_model_on(db2, NULL, "Paged", ver, 0, NULL);
}

START_TEST(model_keyset_paging)
{
    struct item expect[30];
    spotdb_model_rows *r = NULL;

    for (int k = 0; k < 30; k++) {
        spotdb_model v, *m = NULL;
        char ver[16];

        memset(&v, 0, sizeof v);
        snprintf(ver, sizeof ver, "v%d", k);
        v.name = "Paged";
        v.version = ver;
        v.created_at = INT64_C(1600000000000000) + (k % 3) * 1000000;
        OK(spotdb_model_create(&m, db, &v, SPOTDB_MODEL_NAME |
                               SPOTDB_MODEL_VERSION |
                               SPOTDB_MODEL_CREATED_AT));
        copy_id(expect[k].id, m->id);
        expect[k].key = m->created_at;
        spotdb_model_free(m);
    }
    ck_assert_int_eq(page_check(page_models, NULL, 7, expect, 30, 0, NULL,
                                NULL), 5);
    ck_assert_int_ge(page_check(page_models, NULL, 7, expect, 30, 0,
                                model_insert_hook, NULL), 5);

    (void)qn("WITH x AS (INSERT INTO model_registry (name, version) SELECT "
             "'bulk', 'v' || g FROM generate_series(1, 110) g RETURNING 1) "
             "SELECT count(*) FROM x");
    OK(spotdb_model_list(&r, db, NULL, NULL, 0));
    EQI(r->count, SPOTDB_DEFAULT_LIMIT);
    ck_assert_ptr_nonnull(r->next_cursor);
    spotdb_model_rows_free(r);
    FAILS_OUT(SPOTDB_EINVAL, NULL, r,
              spotdb_model_list(&r, db, NULL, NULL, -1));
    FAILS_OUT(SPOTDB_EINVAL, NULL, r,
              spotdb_model_list(&r, db, NULL, NULL, SPOTDB_MAX_LIMIT + 1));
    FAILS_OUT(SPOTDB_EINVAL, NULL, r,
              spotdb_model_list(&r, db, NULL, "not a cursor", 7));
}
END_TEST

/* ======================================================================== */
/* experiment_logs                                                          */
/* ======================================================================== */

static void assert_log_same(const spotdb_experiment_log *x,
                            const spotdb_experiment_log *y)
{
    EQS(x->id, y->id);
    EQS(x->instance_id, y->instance_id);
    EQS(x->model_id, y->model_id);
    EQS(x->pipeline_mode, y->pipeline_mode);
    EQI(x->is_shadow_run, y->is_shadow_run);
    EQD(x->prediction_score, y->prediction_score);
    EQS(x->decision, y->decision);
    EQS(x->decision_reason, y->decision_reason);
    EQI(x->execution_time, y->execution_time);
    EQI(x->execution_duration_ms, y->execution_duration_ms);
    EQI(x->candidates_evaluated, y->candidates_evaluated);
    EQS(x->selected_instance_type, y->selected_instance_type);
    EQS(x->selected_availability_zone, y->selected_availability_zone);
    EQD(x->old_spot_price, y->old_spot_price);
    EQD(x->new_spot_price, y->new_spot_price);
    EQD(x->projected_hourly_savings, y->projected_hourly_savings);
    EQS(x->features_used, y->features_used);
    EQS(x->error_message, y->error_message);
    EQI(x->nulls, y->nulls);
}

#define LOG_ALL_BUT_ID                                                       \
    (SPOTDB_EXPERIMENT_LOG_INSTANCE_ID | SPOTDB_EXPERIMENT_LOG_MODEL_ID |    \
     SPOTDB_EXPERIMENT_LOG_PIPELINE_MODE |                                   \
     SPOTDB_EXPERIMENT_LOG_IS_SHADOW_RUN |                                   \
     SPOTDB_EXPERIMENT_LOG_PREDICTION_SCORE |                                \
     SPOTDB_EXPERIMENT_LOG_DECISION | SPOTDB_EXPERIMENT_LOG_DECISION_REASON |\
     SPOTDB_EXPERIMENT_LOG_EXECUTION_TIME |                                  \
     SPOTDB_EXPERIMENT_LOG_EXECUTION_DURATION_MS |                           \
     SPOTDB_EXPERIMENT_LOG_CANDIDATES_EVALUATED |                            \
     SPOTDB_EXPERIMENT_LOG_SELECTED_INSTANCE_TYPE |                          \
     SPOTDB_EXPERIMENT_LOG_SELECTED_AVAILABILITY_ZONE |                      \
     SPOTDB_EXPERIMENT_LOG_OLD_SPOT_PRICE |                                  \
     SPOTDB_EXPERIMENT_LOG_NEW_SPOT_PRICE |                                  \
     SPOTDB_EXPERIMENT_LOG_PROJECTED_HOURLY_SAVINGS |                        \
     SPOTDB_EXPERIMENT_LOG_FEATURES_USED |                                   \
     SPOTDB_EXPERIMENT_LOG_ERROR_MESSAGE)

/* A user, account and instance; the instance's id goes to inst. */
static void base_instance(char *inst)
{
    char acc[SPOTDB_UUID_SIZE];

    base_account(acc);
    make_instance(inst, acc, "i-0123456789abcdef0");
}

START_TEST(log_create_takes_defaults)
{
    char inst[SPOTDB_UUID_SIZE];
    spotdb_experiment_log in, *l = NULL;

    base_instance(inst);
    memset(&in, 0, sizeof in);
    copy_id(in.instance_id, inst);
    in.is_shadow_run = true;
    in.execution_time = T0;
    in.prediction_score = 0.5;
    OK(spotdb_experiment_log_create(&l, db, &in,
                                    SPOTDB_EXPERIMENT_LOG_INSTANCE_ID));
    ck_assert_msg(is_uuid(l->id), "id \"%s\"", l->id);
    EQS(l->instance_id, inst);
    ck_assert(!l->is_shadow_run);
    assert_near_now(l->execution_time, "execution_time");
    EQI(l->nulls, LOG_ALL_BUT_ID & ~(SPOTDB_EXPERIMENT_LOG_INSTANCE_ID |
                                     SPOTDB_EXPERIMENT_LOG_IS_SHADOW_RUN |
                                     SPOTDB_EXPERIMENT_LOG_EXECUTION_TIME));
    EQS(l->model_id, "");
    ck_assert_ptr_null(l->pipeline_mode);
    ck_assert_ptr_null(l->decision);
    ck_assert_ptr_null(l->features_used);
    qeq("false", "SELECT is_shadow_run::text FROM experiment_logs WHERE "
        "id = '%s'", l->id);
    qeq("1", "SELECT count(*) FROM experiment_logs WHERE id = '%s' AND "
        "prediction_score IS NULL AND abs(extract(epoch FROM execution_time "
        "- now() AT TIME ZONE 'UTC')) < 120", l->id);
    spotdb_experiment_log_free(l);
}
END_TEST

START_TEST(log_round_trip_every_column)
{
    char inst[SPOTDB_UUID_SIZE], model[SPOTDB_UUID_SIZE];
    const char *canon = "{\"cpu\": [0.5, 1.25], \"mem\": {\"x\": null}, "
                        "\"pool\": \"ü\"}";
    char *reason = rep("Prix élevé → 切り替え. ", 40, "");
    spotdb_experiment_log in, *l = NULL, *g = NULL, *l2 = NULL;

    base_instance(inst);
    make_model(model, "P", "v1");
    memset(&in, 0, sizeof in);
    copy_id(in.instance_id, inst);
    copy_id(in.model_id, model);
    in.pipeline_mode = "LINEAR";
    in.is_shadow_run = true;
    in.prediction_score = 0.12345678901234568;
    in.decision = "FALLBACK_ONDEMAND";
    in.decision_reason = reason;
    in.execution_time = T0;
    in.execution_duration_ms = INT32_MAX;
    in.candidates_evaluated = INT32_MIN;
    in.selected_instance_type = "ü1234567890123456789";
    in.selected_availability_zone = "ap-south-1c-67890123";
    in.old_spot_price = 0.1;
    in.new_spot_price = 1.0 / 3.0;
    in.projected_hourly_savings = -1234.000000000001;
    in.features_used = canon;
    in.error_message = "timeout: 😀";
    OK(spotdb_experiment_log_create(&l, db, &in, LOG_ALL_BUT_ID));
    EQS(l->instance_id, inst);
    EQS(l->model_id, model);
    EQS(l->pipeline_mode, "LINEAR");
    ck_assert(l->is_shadow_run);
    EQD(l->prediction_score, 0.12345678901234568);
    EQS(l->decision, "FALLBACK_ONDEMAND");
    EQS(l->decision_reason, reason);
    EQI(l->execution_time, T0);
    EQI(l->execution_duration_ms, INT32_MAX);
    EQI(l->candidates_evaluated, INT32_MIN);
    EQS(l->selected_instance_type, in.selected_instance_type);
    EQS(l->selected_availability_zone, in.selected_availability_zone);
    EQD(l->old_spot_price, 0.1);
    EQD(l->new_spot_price, 1.0 / 3.0);
    EQD(l->projected_hourly_savings, -1234.000000000001);
    EQS(l->features_used, canon);
    EQS(l->error_message, "timeout: 😀");
    EQI(l->nulls, 0);
    OK(spotdb_experiment_log_get(&g, db, l->id));
    assert_log_same(g, l);
    qeq(T0_TEXT "|2147483647|-2147483648|true|0.1", "SELECT execution_time || "
        "'|' || execution_duration_ms || '|' || candidates_evaluated || '|' "
        "|| is_shadow_run || '|' || old_spot_price FROM experiment_logs "
        "WHERE id = '%s'", l->id);
    qeq("1", "SELECT count(*) FROM experiment_logs WHERE id = '%s' AND "
        "new_spot_price = 1::float8 / 3 AND features_used = '{\"pool\": "
        "\"ü\", \"mem\": {\"x\": null}, \"cpu\": [0.5, 1.25]}'::jsonb",
        l->id);

    /* the other extremes, and the boundaries of the score */
    in.is_shadow_run = false;
    in.prediction_score = 0.0;
    in.execution_duration_ms = INT32_MIN;
    in.candidates_evaluated = INT32_MAX;
    in.decision = "STAY";
    in.features_used = "[1, \"two\", {\"three\": 3.0}]";
    OK(spotdb_experiment_log_create(&l2, db, &in, LOG_ALL_BUT_ID));
    ck_assert(!l2->is_shadow_run);
    NOTNULL(l2, SPOTDB_EXPERIMENT_LOG_IS_SHADOW_RUN);
    EQD(l2->prediction_score, 0.0);
    NOTNULL(l2, SPOTDB_EXPERIMENT_LOG_PREDICTION_SCORE);
    EQI(l2->execution_duration_ms, INT32_MIN);
    EQI(l2->candidates_evaluated, INT32_MAX);
    ck_assert_msg(json_same(l2->features_used, in.features_used), "%s",
                  l2->features_used);
    spotdb_experiment_log_free(l2);
    l2 = NULL;
    in.prediction_score = 1.0;
    in.decision = "SWITCH";
    OK(spotdb_experiment_log_create(&l2, db, &in, LOG_ALL_BUT_ID));
    EQD(l2->prediction_score, 1.0);
    EQS(l2->decision, "SWITCH");
    spotdb_experiment_log_free(l2);
    l2 = NULL;
    EQI(rows_in("experiment_logs"), 3);

    spotdb_experiment_log_free(g);
    FAILS_OUT(SPOTDB_ENOTFOUND, NULL, g,
              spotdb_experiment_log_get(&g, db, UUID_ABSENT));
    FAILS_OUT(SPOTDB_EINVAL, NULL, g,
              spotdb_experiment_log_get(&g, db, "x"));
    spotdb_experiment_log_free(l);
    free(reason);
}
END_TEST

START_TEST(log_nulls_are_not_zero)
{
    char inst[SPOTDB_UUID_SIZE];
    spotdb_experiment_log in, *a = NULL, *b = NULL, *g = NULL;
    uint64_t nullable = LOG_ALL_BUT_ID & ~(SPOTDB_EXPERIMENT_LOG_INSTANCE_ID |
                                           SPOTDB_EXPERIMENT_LOG_EXECUTION_TIME);
    uint64_t scalar_nulls = SPOTDB_EXPERIMENT_LOG_IS_SHADOW_RUN |
                            SPOTDB_EXPERIMENT_LOG_PREDICTION_SCORE |
                            SPOTDB_EXPERIMENT_LOG_EXECUTION_DURATION_MS |
                            SPOTDB_EXPERIMENT_LOG_CANDIDATES_EVALUATED |
                            SPOTDB_EXPERIMENT_LOG_OLD_SPOT_PRICE |
                            SPOTDB_EXPERIMENT_LOG_NEW_SPOT_PRICE |
                            SPOTDB_EXPERIMENT_LOG_PROJECTED_HOURLY_SAVINGS;

    base_instance(inst);
    memset(&in, 0, sizeof in);
    copy_id(in.instance_id, inst);
    /* every nullable column NULL: text pointers NULL, model_id "", and the
     * scalars through `nulls` while their values are 0/false */
    in.nulls = scalar_nulls;
    OK(spotdb_experiment_log_create(&a, db, &in,
                                    SPOTDB_EXPERIMENT_LOG_INSTANCE_ID |
                                    nullable));
    EQI(a->nulls, nullable);
    OK(spotdb_experiment_log_get(&g, db, a->id));
    EQI(g->nulls, nullable);
    spotdb_experiment_log_free(g);
    g = NULL;
    /* the same scalars as 0.0 / 0 / false, not NULL */
    in.nulls = 0;
    OK(spotdb_experiment_log_create(&b, db, &in,
                                    SPOTDB_EXPERIMENT_LOG_INSTANCE_ID |
                                    scalar_nulls));
    EQI(b->nulls, 0 | (LOG_ALL_BUT_ID & ~(SPOTDB_EXPERIMENT_LOG_INSTANCE_ID |
                                          SPOTDB_EXPERIMENT_LOG_EXECUTION_TIME |
                                          scalar_nulls)));
    EQD(b->prediction_score, 0.0);
    ck_assert(!b->is_shadow_run);
    OK(spotdb_experiment_log_get(&g, db, b->id));
    NOTNULL(g, SPOTDB_EXPERIMENT_LOG_PREDICTION_SCORE);
    NOTNULL(g, SPOTDB_EXPERIMENT_LOG_IS_SHADOW_RUN);
    NOTNULL(g, SPOTDB_EXPERIMENT_LOG_OLD_SPOT_PRICE);
    spotdb_experiment_log_free(g);

    qeq("14", "SELECT (model_id IS NULL)::int + (pipeline_mode IS NULL)::int"
        " + (is_shadow_run IS NULL)::int + (prediction_score IS NULL)::int "
        "+ (decision IS NULL)::int + (decision_reason IS NULL)::int + "
        "(execution_duration_ms IS NULL)::int + (candidates_evaluated IS "
        "NULL)::int + (selected_instance_type IS NULL)::int + "
        "(selected_availability_zone IS NULL)::int + (old_spot_price IS "
        "NULL)::int + (new_spot_price IS NULL)::int + "
        "(projected_hourly_savings IS NULL)::int + (features_used IS "
        "NULL)::int + (error_message IS NULL)::int - 1 FROM experiment_logs "
        "WHERE id = '%s'", a->id);
    qeq("0|false|0|0", "SELECT prediction_score || '|' || is_shadow_run || '|' "
        "|| old_spot_price || '|' || execution_duration_ms FROM "
        "experiment_logs WHERE id = '%s'", b->id);
    spotdb_experiment_log_free(a);
    spotdb_experiment_log_free(b);
}
END_TEST

static void log_einval(const spotdb_experiment_log *in, uint64_t fields,
                       const char *field)
{
    spotdb_experiment_log *l;
    long before = rows_in("experiment_logs");

    snprintf(g_ctx, sizeof g_ctx, "field %s: instance=%s model=%s mode=%s "
             "score=%g decision=%s old=%g new=%g sav=%g features=%s sit=%s "
             "saz=%s fields=%#llx", field, in->instance_id, in->model_id,
             S(in->pipeline_mode), in->prediction_score, S(in->decision),
             in->old_spot_price, in->new_spot_price,
             in->projected_hourly_savings, S(in->features_used),
             S(in->selected_instance_type),
             S(in->selected_availability_zone), (unsigned long long)fields);
    FAILS_OUT(SPOTDB_EINVAL, field, l,
              spotdb_experiment_log_create(&l, db, in, fields));
    EQI(rows_in("experiment_logs"), before);
}

START_TEST(log_validation_names_the_field)
{
    char inst[SPOTDB_UUID_SIZE];
    spotdb_experiment_log in;
    const uint64_t req = SPOTDB_EXPERIMENT_LOG_INSTANCE_ID;
    static const char *const bad_decisions[] = {
        "MAYBE", "stay", "SWITCH ", "", NULL
    };
    const double bad_scores[] = { 1.5, -0.1, 1.0000000000000002, -1e-300,
                                  NAN, INFINITY, -INFINITY };

    base_instance(inst);
    memset(&in, 0, sizeof in);
    copy_id(in.instance_id, inst);
    for (int k = 0; bad_decisions[k]; k++) {
        in.decision = bad_decisions[k];
        log_einval(&in, req | SPOTDB_EXPERIMENT_LOG_DECISION, "decision");
    }
    in.pipeline_mode = "FOO";
    log_einval(&in, req | SPOTDB_EXPERIMENT_LOG_PIPELINE_MODE,
               "pipeline_mode");
    for (size_t k = 0; k < sizeof bad_scores / sizeof bad_scores[0]; k++) {
        in.prediction_score = bad_scores[k];
        log_einval(&in, req | SPOTDB_EXPERIMENT_LOG_PREDICTION_SCORE,
                   "prediction_score");
    }
    in.old_spot_price = NAN;
    log_einval(&in, req | SPOTDB_EXPERIMENT_LOG_OLD_SPOT_PRICE,
               "old_spot_price");
    in.new_spot_price = INFINITY;
    log_einval(&in, req | SPOTDB_EXPERIMENT_LOG_NEW_SPOT_PRICE,
               "new_spot_price");
    in.projected_hourly_savings = -INFINITY;
    log_einval(&in, req | SPOTDB_EXPERIMENT_LOG_PROJECTED_HOURLY_SAVINGS,
               "projected_hourly_savings");
    in.features_used = "{\"a\":";
    log_einval(&in, req | SPOTDB_EXPERIMENT_LOG_FEATURES_USED,
               "features_used");
    in.features_used = "{\"a\": 1} trailing";
    log_einval(&in, req | SPOTDB_EXPERIMENT_LOG_FEATURES_USED,
               "features_used");
    in.selected_instance_type = "abcdefghijklmnopqrstu";
    log_einval(&in, req | SPOTDB_EXPERIMENT_LOG_SELECTED_INSTANCE_TYPE,
               "selected_instance_type");
    in.selected_availability_zone = "ü23456789012345678901"; /* 21 */
    log_einval(&in, req | SPOTDB_EXPERIMENT_LOG_SELECTED_AVAILABILITY_ZONE,
               "selected_availability_zone");
    copy_id(in.model_id, "123");
    log_einval(&in, req | SPOTDB_EXPERIMENT_LOG_MODEL_ID, "model_id");
    copy_id(in.model_id, "");
    copy_id(in.instance_id, "i-0123456789abcdef0");
    log_einval(&in, req, "instance_id");
    copy_id(in.instance_id, inst);
    log_einval(&in, SPOTDB_EXPERIMENT_LOG_DECISION, "instance_id");
    EQI(rows_in("experiment_logs"), 0);
}
END_TEST

START_TEST(log_server_rejections_are_mapped)
{
    char inst[SPOTDB_UUID_SIZE];
    spotdb_experiment_log in, *l;

    base_instance(inst);
    memset(&in, 0, sizeof in);
    copy_id(in.instance_id, UUID_ABSENT);
    FAILS_OUT(SPOTDB_EREFERENCE, "experiment_logs_instance_id_fkey", l,
              spotdb_experiment_log_create(&l, db, &in,
                                           SPOTDB_EXPERIMENT_LOG_INSTANCE_ID));
    copy_id(in.instance_id, inst);
    copy_id(in.model_id, UUID_ABSENT);
    FAILS_OUT(SPOTDB_EREFERENCE, "experiment_logs_model_id_fkey", l,
              spotdb_experiment_log_create(&l, db, &in,
                                           SPOTDB_EXPERIMENT_LOG_INSTANCE_ID |
                                           SPOTDB_EXPERIMENT_LOG_MODEL_ID));
    EQI(rows_in("experiment_logs"), 0);
}
END_TEST

START_TEST(log_update_by_mask)
{
    char inst[SPOTDB_UUID_SIZE], model[SPOTDB_UUID_SIZE],
        inst2[SPOTDB_UUID_SIZE], acc[SPOTDB_UUID_SIZE];
    spotdb_experiment_log in, *l = NULL, *u = NULL, *g = NULL;
    char *before_row;

    base_instance(inst);
    acc[0] = '\0';
    {
        char *a = qf("SELECT account_id::text FROM instances WHERE id='%s'",
                     inst);
        copy_id(acc, a);
        free(a);
    }
    make_instance(inst2, acc, "i-0000000f");
    make_model(model, "P", "v1");
    memset(&in, 0, sizeof in);
    copy_id(in.instance_id, inst);
    copy_id(in.model_id, model);
    in.decision = "STAY";
    in.prediction_score = 0.25;
    in.execution_time = T0;
    in.old_spot_price = 0.05;
    in.features_used = "{\"a\": 1}";
    OK(spotdb_experiment_log_create(&l, db, &in,
                                    SPOTDB_EXPERIMENT_LOG_INSTANCE_ID |
                                    SPOTDB_EXPERIMENT_LOG_MODEL_ID |
                                    SPOTDB_EXPERIMENT_LOG_DECISION |
                                    SPOTDB_EXPERIMENT_LOG_PREDICTION_SCORE |
                                    SPOTDB_EXPERIMENT_LOG_EXECUTION_TIME |
                                    SPOTDB_EXPERIMENT_LOG_OLD_SPOT_PRICE |
                                    SPOTDB_EXPERIMENT_LOG_FEATURES_USED));

    memset(&in, 0, sizeof in);
    copy_id(in.instance_id, inst2);
    in.pipeline_mode = "LINEAR";
    in.is_shadow_run = true;
    in.prediction_score = 0.75;
    in.decision = "SWITCH";
    in.decision_reason = "cheaper pool";
    in.execution_time = T0 + 1000000;
    in.old_spot_price = 9.0;
    in.features_used = "{\"b\": 2}";
    in.error_message = "x";
    OK(spotdb_experiment_log_update(&u, db, l->id, &in,
                                    SPOTDB_EXPERIMENT_LOG_DECISION |
                                    SPOTDB_EXPERIMENT_LOG_DECISION_REASON));
    EQS(u->id, l->id);
    EQS(u->instance_id, inst);
    EQS(u->model_id, model);
    ck_assert_ptr_null(u->pipeline_mode);
    ck_assert(!u->is_shadow_run);
    EQD(u->prediction_score, 0.25);
    EQS(u->decision, "SWITCH");
    EQS(u->decision_reason, "cheaper pool");
    EQI(u->execution_time, T0);
    EQD(u->old_spot_price, 0.05);
    EQS(u->features_used, "{\"a\": 1}");
    ck_assert_ptr_null(u->error_message);
    OK(spotdb_experiment_log_get(&g, db, l->id));
    assert_log_same(g, u);
    spotdb_experiment_log_free(g);
    spotdb_experiment_log_free(u);
    u = NULL;
    qeq("SWITCH|0.25|" T0_TEXT, "SELECT decision || '|' || prediction_score"
        " || '|' || execution_time FROM experiment_logs WHERE id = '%s'",
        l->id);

    /* to NULL: model_id "", prediction_score by bit */
    in.model_id[0] = '\0';
    in.nulls = SPOTDB_EXPERIMENT_LOG_PREDICTION_SCORE;
    OK(spotdb_experiment_log_update(&u, db, l->id, &in,
                                    SPOTDB_EXPERIMENT_LOG_MODEL_ID |
                                    SPOTDB_EXPERIMENT_LOG_PREDICTION_SCORE));
    ISNULL(u, SPOTDB_EXPERIMENT_LOG_MODEL_ID);
    ISNULL(u, SPOTDB_EXPERIMENT_LOG_PREDICTION_SCORE);
    EQS(u->model_id, "");
    EQS(u->decision, "SWITCH");
    qeq("1", "SELECT count(*) FROM experiment_logs WHERE id = '%s' AND "
        "model_id IS NULL AND prediction_score IS NULL AND old_spot_price = "
        "0.05", l->id);
    spotdb_experiment_log_free(u);
    u = NULL;
    in.nulls = 0;
    /* move it, and the time */
    OK(spotdb_experiment_log_update(NULL, db, l->id, &in,
                                    SPOTDB_EXPERIMENT_LOG_INSTANCE_ID |
                                    SPOTDB_EXPERIMENT_LOG_EXECUTION_TIME));
    qeq(inst2, "SELECT instance_id::text FROM experiment_logs WHERE "
        "id = '%s'", l->id);
    qeq("2023-11-14 22:13:21.123456", "SELECT execution_time::text FROM "
        "experiment_logs WHERE id = '%s'", l->id);

    before_row = qf("SELECT e::text FROM experiment_logs e WHERE id = '%s'",
                    l->id);
    FAILS_OUT(SPOTDB_EINVAL, NULL, u,
              spotdb_experiment_log_update(&u, db, l->id, &in, 0));
    FAILS_OUT(SPOTDB_EINVAL, NULL, u,
              spotdb_experiment_log_update(&u, db, l->id, &in,
                                           SPOTDB_EXPERIMENT_LOG_ID));
    FAILS_OUT(SPOTDB_ENOTFOUND, NULL, u,
              spotdb_experiment_log_update(&u, db, UUID_ABSENT, &in,
                                           SPOTDB_EXPERIMENT_LOG_DECISION));
    in.prediction_score = 1.5;
    FAILS_OUT(SPOTDB_EINVAL, "prediction_score", u,
              spotdb_experiment_log_update(
                  &u, db, l->id, &in, SPOTDB_EXPERIMENT_LOG_PREDICTION_SCORE));
    in.decision = "MAYBE";
    FAILS_OUT(SPOTDB_EINVAL, "decision", u,
              spotdb_experiment_log_update(&u, db, l->id, &in,
                                           SPOTDB_EXPERIMENT_LOG_DECISION));
    copy_id(in.model_id, UUID_ABSENT);
    FAILS_OUT(SPOTDB_EREFERENCE, "experiment_logs_model_id_fkey", u,
              spotdb_experiment_log_update(&u, db, l->id, &in,
                                           SPOTDB_EXPERIMENT_LOG_MODEL_ID));
    copy_id(in.instance_id, UUID_ABSENT);
    FAILS_OUT(SPOTDB_EREFERENCE, "experiment_logs_instance_id_fkey", u,
              spotdb_experiment_log_update(&u, db, l->id, &in,
                                           SPOTDB_EXPERIMENT_LOG_INSTANCE_ID));
    {
        char *after = qf("SELECT e::text FROM experiment_logs e WHERE "
                         "id = '%s'", l->id);
        EQS(after, before_row);
        free(after);
    }
    free(before_row);
    OK(spotdb_experiment_log_delete(db, l->id));
    EQI(rows_in("experiment_logs"), 0);
    FAILS(SPOTDB_ENOTFOUND, NULL, spotdb_experiment_log_delete(db, l->id));
    FAILS(SPOTDB_EINVAL, NULL, spotdb_experiment_log_delete(db, "1"));
    EQI(rows_in("instances"), 2);
    spotdb_experiment_log_free(l);
}
END_TEST

static void log_filter_is(const spotdb_experiment_log_filter *f,
                          const char *const *ids, size_t n)
{
    spotdb_experiment_log_rows *r = NULL;
    int64_t c = -1;

    OK(spotdb_experiment_log_list(&r, db, f, NULL, 0));
    ck_assert_msg(r->count == n, "list gave %zu rows, expected %zu",
                  r->count, n);
    for (size_t i = 0; i < n; i++) {
        int seen = 0;
        for (size_t k = 0; k < r->count; k++)
            seen += strcmp(r->items[k].id, ids[i]) == 0;
        ck_assert_msg(seen == 1, "row %s seen %d times", ids[i], seen);
    }
    spotdb_experiment_log_rows_free(r);
    OK(spotdb_experiment_log_count(&c, db, f));
    EQI(c, (int64_t)n);
}

START_TEST(log_list_and_count_filters)
{
    char acc[SPOTDB_UUID_SIZE], i1[SPOTDB_UUID_SIZE], i2[SPOTDB_UUID_SIZE],
        m1[SPOTDB_UUID_SIZE], m2[SPOTDB_UUID_SIZE];
    char l1[SPOTDB_UUID_SIZE], l2[SPOTDB_UUID_SIZE], l3[SPOTDB_UUID_SIZE],
        l4[SPOTDB_UUID_SIZE], l5[SPOTDB_UUID_SIZE];
    spotdb_experiment_log_filter f = SPOTDB_EXPERIMENT_LOG_FILTER_INIT;
    bool yes = true, no = false;
    int64_t from, before;
    spotdb_experiment_log_rows *r;
    const int64_t s = 1000000;

    base_account(acc);
    make_instance(i1, acc, "i-00000001");
    make_instance(i2, acc, "i-00000002");
    make_model(m1, "P", "v1");
    make_model(m2, "P", "v2");
    make_log(l1, i1, m1, T0, "SWITCH", 0);
    make_log(l2, i1, m2, T0 + s, "STAY", 1);
    make_log(l3, i1, NULL, T0 + 2 * s, "FALLBACK_ONDEMAND", 0);
    make_log(l4, i2, m1, T0 + 3 * s, "STAY", 0);
    make_log(l5, i2, m2, T0 + 4 * s, NULL, 1);
    {
        const char *e[] = { l1, l2, l3, l4, l5 };
        log_filter_is(NULL, e, 5);
    }
    f.instance_id = i1;
    {
        const char *e[] = { l1, l2, l3 };
        log_filter_is(&f, e, 3);
    }
    f.instance_id = NULL;
    f.model_id = m1;
    {
        const char *e[] = { l1, l4 };
        log_filter_is(&f, e, 2);
    }
    f.model_id = NULL;
    f.decision = "STAY";
    {
        const char *e[] = { l2, l4 };
        log_filter_is(&f, e, 2);
    }
    f.decision = NULL;
    f.is_shadow_run = &yes;
    {
        const char *e[] = { l2, l5 };
        log_filter_is(&f, e, 2);
    }
    f.is_shadow_run = &no;
    {
        const char *e[] = { l1, l3, l4 };
        log_filter_is(&f, e, 3);
    }
    f.is_shadow_run = NULL;
    /* [from, before): from is included, before is not */
    from = T0 + s;
    before = T0 + 3 * s;
    f.executed_from = &from;
    f.executed_before = &before;
    {
        const char *e[] = { l2, l3 };
        log_filter_is(&f, e, 2);
    }
    f.executed_before = NULL;
    {
        const char *e[] = { l2, l3, l4, l5 };
        log_filter_is(&f, e, 4);
    }
    f.executed_from = NULL;
    f.executed_before = &before;
    {
        const char *e[] = { l1, l2, l3 };
        log_filter_is(&f, e, 3);
    }
    from = T0 + 1;
    f.executed_from = &from;
    {
        const char *e[] = { l2, l3 };
        log_filter_is(&f, e, 2);
    }
    f.instance_id = i1;
    f.model_id = m2;
    f.decision = "STAY";
    f.is_shadow_run = &yes;
    {
        const char *e[] = { l2 };
        log_filter_is(&f, e, 1);
    }
    f.decision = "SWITCH";
    log_filter_is(&f, NULL, 0);
    memset(&f, 0, sizeof f);
    f.version = SPOTDB_EXPERIMENT_LOG_FILTER_VERSION;
    f.model_id = "m1";
    FAILS_OUT(SPOTDB_EINVAL, NULL, r,
              spotdb_experiment_log_list(&r, db, &f, NULL, 0));
}
END_TEST

static char g_other[SPOTDB_UUID_SIZE];

static void log_insert_hook(int page)
{
    if (page != 1 && page != 3)
        return;
    if (!db2)
        db2 = th_open();
    /* after every row (newest first: never reached), tied, before all */
    make_log_on(db2, NULL, g_parent, NULL, 0, "STAY", 0);
    make_log_on(db2, NULL, g_parent, NULL, INT64_C(1600000000000000) +
                1000000, "STAY", 0);
    make_log_on(db2, NULL, g_parent, NULL, INT64_C(1600000000000000) - 1,
                "STAY", 0);
    make_log_on(db2, NULL, g_other, NULL, INT64_C(1600000000000000),
                "STAY", 0);
}

START_TEST(log_keyset_paging_newest_first)
{
    struct item expect[30], all_expect[35];
    char acc[SPOTDB_UUID_SIZE];
    spotdb_experiment_log_filter f = SPOTDB_EXPERIMENT_LOG_FILTER_INIT;
    spotdb_experiment_log_rows *r = NULL;

    base_account(acc);
    make_instance(g_parent, acc, "i-00000001");
    make_instance(g_other, acc, "i-00000002");
    for (int k = 0; k < 30; k++) {
        spotdb_experiment_log v, *l = NULL;

        memset(&v, 0, sizeof v);
        copy_id(v.instance_id, g_parent);
        v.execution_time = INT64_C(1600000000000000) + (k % 3) * 1000000;
        OK(spotdb_experiment_log_create(&l, db, &v,
                                        SPOTDB_EXPERIMENT_LOG_INSTANCE_ID |
                                        SPOTDB_EXPERIMENT_LOG_EXECUTION_TIME));
        copy_id(expect[k].id, l->id);
        expect[k].key = l->execution_time;
        all_expect[k] = expect[k];
        spotdb_experiment_log_free(l);
    }
    for (int k = 0; k < 5; k++) {
        spotdb_experiment_log v, *l = NULL;

        memset(&v, 0, sizeof v);
        copy_id(v.instance_id, g_other);
        v.execution_time = INT64_C(1600000000000000) + k * 1000000;
        OK(spotdb_experiment_log_create(&l, db, &v,
                                        SPOTDB_EXPERIMENT_LOG_INSTANCE_ID |
                                        SPOTDB_EXPERIMENT_LOG_EXECUTION_TIME));
        copy_id(all_expect[30 + k].id, l->id);
        all_expect[30 + k].key = l->execution_time;
        spotdb_experiment_log_free(l);
    }
    ck_assert_int_eq(page_check(page_logs, NULL, 7, all_expect, 35, 1, NULL,
                                NULL), 5);
    f.instance_id = g_parent;
    ck_assert_int_eq(page_check(page_logs, &f, 7, expect, 30, 1, NULL,
                                g_parent), 5);
    ck_assert_int_ge(page_check(page_logs, &f, 7, expect, 30, 1,
                                log_insert_hook, g_parent), 5);

    FAILS_OUT(SPOTDB_EINVAL, NULL, r,
              spotdb_experiment_log_list(&r, db, NULL, NULL, -1));
    FAILS_OUT(SPOTDB_EINVAL, NULL, r,
              spotdb_experiment_log_list(&r, db, NULL, NULL,
                                         SPOTDB_MAX_LIMIT + 1));
    FAILS_OUT(SPOTDB_EINVAL, NULL, r,
              spotdb_experiment_log_list(&r, db, NULL, "@@@", 7));
    (void)qn("WITH x AS (INSERT INTO experiment_logs (instance_id) SELECT "
             "'%s' FROM generate_series(1, 100) RETURNING 1) SELECT count(*) "
             "FROM x", g_other);
    OK(spotdb_experiment_log_list(&r, db, NULL, NULL, 0));
    EQI(r->count, SPOTDB_DEFAULT_LIMIT);
    ck_assert_ptr_nonnull(r->next_cursor);
    spotdb_experiment_log_rows_free(r);
}
END_TEST

/* ======================================================================== */
/* transactions and odds and ends                                           */
/* ======================================================================== */

START_TEST(tx_rollback_discards_everything)
{
    char uid[SPOTDB_UUID_SIZE], acc[SPOTDB_UUID_SIZE];

    make_user(uid, "alice");
    ck_assert_int_eq(spotdb_in_transaction(db), 0);
    OK(spotdb_begin(db));
    ck_assert_int_eq(spotdb_in_transaction(db), 1);
    make_account(acc, uid, "123456789012");
    make_instance(NULL, acc, "i-0123abcd");
    /* not visible outside before commit */
    EQI(rows_in("accounts"), 0);
    OK(spotdb_rollback(db));
    ck_assert_int_eq(spotdb_in_transaction(db), 0);
    EQI(rows_in("accounts"), 0);
    EQI(rows_in("instances"), 0);
    OK(spotdb_rollback(db)); /* none open: a no-op */
    FAILS(SPOTDB_EINVAL, NULL, spotdb_commit(db));
}
END_TEST

START_TEST(tx_commit_stores)
{
    char uid[SPOTDB_UUID_SIZE];

    make_user(uid, "alice");
    OK(spotdb_begin(db));
    make_account(NULL, uid, "123456789012");
    make_model(NULL, "P", "v1");
    EQI(rows_in("accounts"), 0);
    OK(spotdb_commit(db));
    ck_assert_int_eq(spotdb_in_transaction(db), 0);
    EQI(rows_in("accounts"), 1);
    EQI(rows_in("model_registry"), 1);
}
END_TEST

START_TEST(tx_begin_twice_is_einval)
{
    OK(spotdb_begin(db));
    FAILS(SPOTDB_EINVAL, NULL, spotdb_begin(db));
    ck_assert_int_eq(spotdb_in_transaction(db), 1);
    make_model(NULL, "P", "v1");
    OK(spotdb_commit(db));
    EQI(rows_in("model_registry"), 1);
}
END_TEST

START_TEST(tx_failure_inside_fails_the_commit)
{
    char uid[SPOTDB_UUID_SIZE], arn[128];
    spotdb_account in, *a;

    make_user(uid, "alice");
    OK(spotdb_begin(db));
    make_account(NULL, uid, "123456789012");
    make_model(NULL, "P", "v1");
    account_input(&in, arn, sizeof arn, uid, "123456789012");
    FAILS_OUT(SPOTDB_ECONFLICT, "accounts_account_id_key", a,
              spotdb_account_create(&a, db, &in, ACCT_REQ));
    ck_assert_int_eq(spotdb_in_transaction(db), 1);
    FAILS(SPOTDB_ESQL, NULL, spotdb_commit(db));
    ck_assert_int_eq(spotdb_in_transaction(db), 0);
    EQI(rows_in("accounts"), 0);
    EQI(rows_in("model_registry"), 0);
    /* usable afterwards, in and out of a transaction */
    make_account(NULL, uid, "123456789012");
    EQI(rows_in("accounts"), 1);
    OK(spotdb_begin(db));
    make_model(NULL, "P", "v1");
    OK(spotdb_commit(db));
    EQI(rows_in("model_registry"), 1);
}
END_TEST

START_TEST(free_functions_accept_null)
{
    spotdb_account_free(NULL);
    spotdb_account_rows_free(NULL);
    spotdb_instance_free(NULL);
    spotdb_instance_rows_free(NULL);
    spotdb_model_free(NULL);
    spotdb_model_rows_free(NULL);
    spotdb_experiment_log_free(NULL);
    spotdb_experiment_log_rows_free(NULL);
    /* an empty page is a page */
    {
        spotdb_model_rows *r = NULL;

        OK(spotdb_model_list(&r, db, NULL, NULL, 5));
        ck_assert_ptr_nonnull(r);
        EQI(r->count, 0);
        ck_assert_ptr_null(r->next_cursor);
        spotdb_model_rows_free(r);
    }
}
END_TEST

static TCase *pg_case(const char *name)
{
    TCase *tc = tcase_create(name);

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    return tc;
}

static Suite *crud_suite(void)
{
    Suite *s = suite_create("crud");
    TCase *tc;

    tc = pg_case("accounts");
    tcase_add_test(tc, account_create_takes_defaults);
    tcase_add_test(tc, account_round_trip_every_column);
    tcase_add_test(tc, account_lengths_in_characters);
    tcase_add_test(tc, account_validation_names_the_field);
    tcase_add_test(tc, account_server_rejections_are_mapped);
    tcase_add_test(tc, account_nullable_is_active);
    tcase_add_test(tc, account_update_by_mask);
    tcase_add_test(tc, account_delete_cascades);
    tcase_add_test(tc, account_list_and_count_filters);
    tcase_add_test(tc, account_keyset_paging);
    tcase_add_test(tc, account_limits_and_cursor);
    tcase_add_test(tc, account_create_for_username);
    suite_add_tcase(s, tc);

    tc = pg_case("instances");
    tcase_add_test(tc, instance_create_takes_defaults);
    tcase_add_test(tc, instance_round_trip_every_column);
    tcase_add_test(tc, instance_validation_names_the_field);
    tcase_add_test(tc, instance_server_rejections_are_mapped);
    tcase_add_test(tc, instance_nulls_round_trip);
    tcase_add_test(tc, instance_update_by_mask);
    tcase_add_test(tc, instance_delete_cascades_to_logs);
    tcase_add_test(tc, instance_list_and_count_filters);
    tcase_add_test(tc, instance_keyset_paging);
    tcase_add_test(tc, instance_limits_and_cursor);
    tcase_add_test(tc, instance_create_for_aws_account);
    suite_add_tcase(s, tc);

    tc = pg_case("models");
    tcase_add_test(tc, model_create_takes_defaults);
    tcase_add_test(tc, model_round_trip_every_column);
    tcase_add_test(tc, model_validation_names_the_field);
    tcase_add_test(tc, model_server_rejections_are_mapped);
    tcase_add_test(tc, model_nulls_round_trip);
    tcase_add_test(tc, model_update_by_mask);
    tcase_add_test(tc, model_delete_refused_while_logged);
    tcase_add_test(tc, model_list_and_count_filters);
    tcase_add_test(tc, model_keyset_paging);
    suite_add_tcase(s, tc);

    tc = pg_case("experiment_logs");
    tcase_add_test(tc, log_create_takes_defaults);
    tcase_add_test(tc, log_round_trip_every_column);
    tcase_add_test(tc, log_nulls_are_not_zero);
    tcase_add_test(tc, log_validation_names_the_field);
    tcase_add_test(tc, log_server_rejections_are_mapped);
    tcase_add_test(tc, log_update_by_mask);
    tcase_add_test(tc, log_list_and_count_filters);
    tcase_add_test(tc, log_keyset_paging_newest_first);
    suite_add_tcase(s, tc);

    tc = pg_case("transactions");
    tcase_add_test(tc, tx_rollback_discards_everything);
    tcase_add_test(tc, tx_commit_stores);
    tcase_add_test(tc, tx_begin_twice_is_einval);
    tcase_add_test(tc, tx_failure_inside_fails_the_commit);
    tcase_add_test(tc, free_functions_accept_null);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return th_run(crud_suite());
}
