/*
 * Allocation failure (issue 5): every allocation of lib/ goes through
 * lib/alloc.c, which a test can make fail once, at the Nth allocation from
 * now.  For each call below, N = 1, 2, ... until a run of the call makes
 * no failing allocation:
 *
 * - the call returns what it returns when nothing fails (0; SPOTDB_EAUTH
 *   for a wrong password, SPOTDB_ECONFLICT for a taken username) or
 *   SPOTDB_ENOMEM, nothing else; SPOTDB_ENOMEM only when a failure was
 *   injected, and then with a message saying "out of memory";
 * - its outputs are NULL on failure; whatever it returned is freed, so
 *   that valgrind and ASan (CI runs this suite under both) find a leak on
 *   any path;
 * - the database holds what the code says: a failed create left no row, a
 *   successful one exactly one; a failed update or delete changed nothing;
 *   a failed migrate left whole migrations recorded;
 * - the handle is still usable: the next plain call succeeds, outside a
 *   transaction (or the handle says it broke, SPOTDB_ECONN, and a fresh
 *   open works: counted as "broken").
 *
 * Beyond the 64th allocation of a call (the doctor's and adoption's
 * catalog comparisons make about a thousand, one loop's), one in every
 * 1/16th of the way is failed; SPOTDB_ALLOC_ALL=1 fails every one (2,244
 * runs, under 3 minutes with ASan).  SPOTDB_ALLOC_VERBOSE=1 names each
 * failure that a call absorbed (a statement then runs unprepared, a read
 * stays on the primary, a login keeps its old hash).
 *
 * Allocations made inside libpq, json-c and libxcrypt do not go through
 * the hook and are not covered here.  The figures (failures injected,
 * calls covered) go to stderr, one line per call and a summary.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "alloc.h"
#include "harness.h"
#include "internal.h"

/* ---- shared state ------------------------------------------------------ */

static spotdb_db *db;       /* the handle under test */
static PGconn *pg;          /* raw connection for independent checks */

#include "checks.h"

#define S(p) ((p) ? (p) : "(null)")

/* Totals across test cases: Check forks one child per test, so they live
 * in memory shared with the parent, which prints the summary. */
typedef struct totals {
    long calls;             /* calls (scenarios) driven */
    long injected;          /* failures injected */
    long enomem;            /* of which the call returned SPOTDB_ENOMEM */
    long absorbed;          /* of which the call still succeeded */
    long broken;            /* handles that said they broke afterwards */
} totals;
static totals *tot;

/* Row fixtures, made before the loops. */
static char user_id[SPOTDB_UUID_SIZE], account_id[SPOTDB_UUID_SIZE],
    instance_id[SPOTDB_UUID_SIZE], model_id[SPOTDB_UUID_SIZE],
    log_id[SPOTDB_UUID_SIZE];
#define LOGIN "alloc_user"
#define AWS_NUMBER "100000000000"
static char password[128] = "password";   /* LOGIN's current password */
static long serial;                      /* makes keys unique */

/* What a prepare step hands to its run and check steps. */
static char key[128], old[256], victim[SPOTDB_UUID_SIZE];
static long expected;
static void *out;           /* the call's row or page, freed by check */

static void copy_id(char *dst, const char *src)
{
    snprintf(dst, SPOTDB_UUID_SIZE, "%s", src);
}

/* ---- the loop ---------------------------------------------------------- */

enum {
    NO_HANDLE = 1,          /* the message is spotdb_last_errmsg()'s */
    NO_MESSAGE = 2          /* the call has no message (describe) */
};

typedef struct scenario {
    const char *name;
    void (*prepare)(void);  /* unarmed, before each run; may be NULL */
    int (*run)(void);       /* the call under test, armed */
    void (*check)(int rc);  /* unarmed: outputs and rows; frees them */
    int expect;             /* what the call returns when nothing fails */
    int flags;
} scenario;

/* The plain call that shows the handle still works; the migration tests
 * swap it for one that needs no table. */
static int probe_count(void)
{
    int64_t n;

    return spotdb_user_count(&n, db, NULL);
}

static int probe_status(void)
{
    spotdb_status *st = NULL;
    int rc = spotdb_status_get(&st, db);

    spotdb_status_free(st);
    return rc;
}

static int (*probe)(void) = probe_count;

static void still_usable(const scenario *sc, long n)
{
    int rc;

    ck_assert_msg(!spotdb_in_transaction(db), "%s, allocation %ld failed: "
                  "the handle is left in a transaction", sc->name, n);
    if ((rc = probe()) == 0)
        return;
    /* Cleanly reported broken: a connection failure, and a fresh handle
     * works. */
    ck_assert_msg(rc == SPOTDB_ECONN, "%s, allocation %ld failed: the next "
                  "call gives %d (%s): %s", sc->name, n, rc,
                  spotdb_strerror(rc), spotdb_errmsg(db));
    tot->broken++;
    spotdb_close(db);
    db = th_open();
    ck_assert_int_eq(probe(), 0);
}

/* Past this many, a call's allocations are mostly one loop's (catalog
 * rows, findings, settings): every one up to here is failed, then one in
 * about every 1/16th of the way, unless SPOTDB_ALLOC_ALL is set. */
#define EVERY_UP_TO 64

static long step_after(long n)
{
    static int all = -1;

    if (all < 0)
        all = getenv("SPOTDB_ALLOC_ALL") != NULL;
    return all || n < EVERY_UP_TO ? 1 : n / 16;
}

static void inject(const scenario *sc)
{
    long n, injected = 0, enomem = 0, allocations = 0;

    for (n = 1; n < 100000; n += step_after(n)) {
        long before, made;
        const char *msg;
        bool hit;
        int rc;

        out = NULL;
        if (sc->prepare)
            sc->prepare();
        before = spotdb__alloc_failed();
        made = spotdb__alloc_count();
        spotdb__alloc_fail_at(n);
        rc = sc->run();
        spotdb__alloc_fail_at(0);
        hit = spotdb__alloc_failed() != before;
        made = spotdb__alloc_count() - made;
        msg = sc->flags & NO_HANDLE ? spotdb_last_errmsg()
                                    : spotdb_errmsg(db);
        ck_assert_msg(rc == sc->expect || (hit && rc == SPOTDB_ENOMEM),
                      "%s, allocation %ld %s: %d (%s): %s", sc->name, n,
                      hit ? "failed" : "(none failed)", rc,
                      spotdb_strerror(rc), msg);
        if (rc == SPOTDB_ENOMEM && !(sc->flags & NO_MESSAGE))
            ck_assert_msg(strstr(msg, "out of memory") != NULL,
                          "%s, allocation %ld failed: message \"%s\"",
                          sc->name, n, msg);
        sc->check(rc);
        if (!(sc->flags & NO_HANDLE))
            still_usable(sc, n);
        if (hit && rc == 0 && getenv("SPOTDB_ALLOC_VERBOSE"))
            fprintf(stderr, "alloc: %s: allocation %ld failed, the call "
                    "succeeded anyway\n", sc->name, n);
        if (made > allocations)
            allocations = made;     /* the most one run made */
        if (!hit)
            break;
        injected++;
        enomem += rc == SPOTDB_ENOMEM;
    }
    ck_assert_msg(n < 100000, "%s: no end to its allocations", sc->name);
    fprintf(stderr, "alloc: %-42s %4ld allocations, %4ld failed: %4ld "
            "ENOMEM, %3ld absorbed\n", sc->name, allocations, injected,
            enomem, injected - enomem);
    tot->calls++;
    tot->injected += injected;
    tot->enomem += enomem;
    tot->absorbed += injected - enomem;
}

/* A row or page comes back exactly when the call succeeded. */
static void out_iff(int rc, const char *what)
{
    if (rc == 0)
        ck_assert_msg(out != NULL, "%s: success without its output", what);
    else
        ck_assert_msg(out == NULL, "%s: failure with an output", what);
}

/* ---- fixtures ---------------------------------------------------------- */

static void new_user(char *id, const char *username)
{
    spotdb_user in = { .email = NULL }, *u = NULL;
    char email[128];

    snprintf(email, sizeof email, "%s@example.com", username);
    in.email = email;
    in.username = username;
    OK(spotdb_user_create(&u, db, &in,
                          SPOTDB_USER_EMAIL | SPOTDB_USER_USERNAME,
                          password));
    if (id)
        copy_id(id, u->id);
    spotdb_user_free(u);
}

#define ACCOUNT_FIELDS                                                       \
    (SPOTDB_ACCOUNT_USER_ID | SPOTDB_ACCOUNT_ACCOUNT_ID |                    \
     SPOTDB_ACCOUNT_ACCOUNT_NAME | SPOTDB_ACCOUNT_ROLE_ARN |                 \
     SPOTDB_ACCOUNT_EXTERNAL_ID)

/* An account input for AWS number `num` (arn: room for the ARN). */
static void account_input(spotdb_account *in, const char *num, char *arn)
{
    memset(in, 0, sizeof *in);
    copy_id(in->user_id, user_id);
    snprintf(arn, 192, "arn:aws:iam::%s:role/SpotOptimizer", num);
    in->account_id = num;
    in->account_name = "Alloc account";
    in->role_arn = arn;
    in->external_id = "ext-id-42";
}

static void new_account(char *id, const char *num)
{
    spotdb_account in, *a = NULL;
    char arn[192];

    account_input(&in, num, arn);
    OK(spotdb_account_create(&a, db, &in, ACCOUNT_FIELDS));
    copy_id(id, a->id);
    spotdb_account_free(a);
}

#define INSTANCE_FIELDS                                                      \
    (SPOTDB_INSTANCE_ACCOUNT_ID | SPOTDB_INSTANCE_INSTANCE_ID |              \
     SPOTDB_INSTANCE_INSTANCE_TYPE | SPOTDB_INSTANCE_AVAILABILITY_ZONE)

static void instance_input(spotdb_instance *in, const char *ec2)
{
    memset(in, 0, sizeof *in);
    copy_id(in->account_id, account_id);
    in->instance_id = ec2;
    in->instance_type = "c5.large";
    in->availability_zone = "ap-south-1a";
}

static void new_instance(char *id, const char *ec2)
{
    spotdb_instance in, *i = NULL;

    instance_input(&in, ec2);
    OK(spotdb_instance_create(&i, db, &in, INSTANCE_FIELDS));
    copy_id(id, i->id);
    spotdb_instance_free(i);
}

static void new_model(char *id, const char *name)
{
    spotdb_model in, *m = NULL;

    memset(&in, 0, sizeof in);
    in.name = name;
    in.version = "v1.0.0";
    OK(spotdb_model_create(&m, db, &in,
                           SPOTDB_MODEL_NAME | SPOTDB_MODEL_VERSION));
    copy_id(id, m->id);
    spotdb_model_free(m);
}

#define LOG_FIELDS                                                           \
    (SPOTDB_EXPERIMENT_LOG_INSTANCE_ID | SPOTDB_EXPERIMENT_LOG_MODEL_ID |    \
     SPOTDB_EXPERIMENT_LOG_DECISION | SPOTDB_EXPERIMENT_LOG_DECISION_REASON)

static void log_input(spotdb_experiment_log *in, const char *reason)
{
    memset(in, 0, sizeof *in);
    copy_id(in->instance_id, instance_id);
    copy_id(in->model_id, model_id);
    in->decision = "SWITCH";
    in->decision_reason = reason;
}

static void new_log(char *id, const char *reason)
{
    spotdb_experiment_log in, *l = NULL;

    log_input(&in, reason);
    OK(spotdb_experiment_log_create(&l, db, &in, LOG_FIELDS));
    copy_id(id, l->id);
    spotdb_experiment_log_free(l);
}

static void setup_rows(void)
{
    th_setup_migrated_db();
    db = th_open();
    pg = th_connect(th_db_conninfo());
    strcpy(password, "password");
    new_user(user_id, LOGIN);
    new_account(account_id, AWS_NUMBER);
    new_instance(instance_id, "i-0000000000000a110");
    new_model(model_id, "AllocModel");
    new_log(log_id, "fixture");
}

static void teardown(void)
{
    spotdb__alloc_fail_at(0);
    spotdb__bcrypt_cost = 4;
    spotdb_close(db);
    db = NULL;
    if (pg)
        PQfinish(pg);
    pg = NULL;
    th_teardown_db();
}

/* Next unique number, and `key`: `prefix` and that number. */
static void next_key(const char *prefix)
{
    serial++;
    snprintf(key, sizeof key, "%s%ld", prefix, serial);
}

/* `column` (an expression) of the row `id` of `relation` as text. */
static char *value_of(const char *column, const char *relation,
                      const char *id)
{
    return th_qf(pg, "SELECT %s FROM %s WHERE id = '%s'", column, relation,
                 id);
}

/* Remember it in `old` ("(null)" for NULL). */
static void remember(const char *column, const char *relation,
                     const char *id)
{
    char *v = value_of(column, relation, id);

    snprintf(old, sizeof old, "%s", S(v));
    free(v);
}

/* It is `key` when rc is 0, still `old` when not. */
static void changed_iff(int rc, const char *column, const char *relation,
                        const char *id)
{
    char *v = value_of(column, relation, id);
    const char *want = rc == 0 ? key : old;

    ck_assert_msg(strcmp(S(v), want) == 0, "%s.%s: \"%s\" after rc %d, "
                  "expected \"%s\"", relation, column, S(v), rc, want);
    free(v);
}

/* Rows of `relation` whose `column` is `key`: one after success, none
 * after failure. */
static void created_iff(int rc, const char *relation, const char *column)
{
    long n = th_qn(pg, "SELECT count(*) FROM %s WHERE %s = '%s'", relation,
                   column, key);

    ck_assert_msg(n == (rc == 0 ? 1 : 0), "%s with %s %s: %ld rows after "
                  "rc %d", relation, column, key, n, rc);
}

/* ---- calls shared by every table -------------------------------------- */

/* Stream callbacks: count the rows. */
static long streamed;
#define COUNTER(type)                                                        \
    static int count_##type(const spotdb_##type *row, void *payload)        \
    {                                                                        \
        (void)row;                                                           \
        (*(long *)payload)++;                                                \
        return 0;                                                            \
    }
COUNTER(user)
COUNTER(account)
COUNTER(instance)
COUNTER(model)
COUNTER(experiment_log)
COUNTER(active_instance)
COUNTER(recent_experiment)
COUNTER(model_performance)

static void stream_checked(int rc)
{
    if (rc == 0)
        ck_assert_msg(streamed == expected, "stream: %ld rows, expected %ld",
                      streamed, expected);
}

/* get, list, count and stream of one table: the same code for all five,
 * named after its type (T) and relation (R). */
#define TABLE_READS(T, R, ID)                                                \
    static int get_##T(void)                                                 \
    {                                                                        \
        return spotdb_##T##_get((spotdb_##T **)&out, db, ID);                \
    }                                                                        \
    static void got_##T(int rc)                                              \
    {                                                                        \
        out_iff(rc, #T "_get");                                              \
        if (out)                                                             \
            ck_assert_str_eq(((spotdb_##T *)out)->id, ID);                   \
        spotdb_##T##_free(out);                                              \
    }                                                                        \
    static void count_rows_##T(void)                                         \
    {                                                                        \
        expected = th_qn(pg, "SELECT count(*) FROM %s", R);                  \
        streamed = 0;                                                        \
    }                                                                        \
    static int list_##T(void)                                                \
    {                                                                        \
        return spotdb_##T##_list((spotdb_##T##_rows **)&out, db, NULL,       \
                                 NULL, SPOTDB_MAX_LIMIT);                    \
    }                                                                        \
    static void listed_##T(int rc)                                           \
    {                                                                        \
        out_iff(rc, #T "_list");                                             \
        if (out)                                                             \
            ck_assert_int_eq(((spotdb_##T##_rows *)out)->count, expected);   \
        spotdb_##T##_rows_free(out);                                         \
    }                                                                        \
    static int64_t n_##T;                                                    \
    static int count_##T##s(void)                                            \
    {                                                                        \
        n_##T = -1;                                                          \
        return spotdb_##T##_count(&n_##T, db, NULL);                        \
    }                                                                        \
    static void counted_##T(int rc)                                          \
    {                                                                        \
        if (rc == 0)                                                         \
            ck_assert_int_eq(n_##T, expected);                               \
    }                                                                        \
    static int stream_##T(void)                                              \
    {                                                                        \
        return spotdb_##T##_stream(db, NULL, count_##T, &streamed);          \
    }                                                                        \
    static const scenario T##_reads[] = {                                    \
        { #T "_get", NULL, get_##T, got_##T, 0, 0 },                         \
        { #T "_list", count_rows_##T, list_##T, listed_##T, 0, 0 },          \
        { #T "_count", count_rows_##T, count_##T##s, counted_##T, 0, 0 },    \
        { #T "_stream", count_rows_##T, stream_##T, stream_checked, 0, 0 },  \
    };

TABLE_READS(user, "users", user_id)
TABLE_READS(account, "accounts", account_id)
TABLE_READS(instance, "instances", instance_id)
TABLE_READS(model, "model_registry", model_id)
TABLE_READS(experiment_log, "experiment_logs", log_id)

static void inject_all(const scenario *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        inject(&s[i]);
}
#define INJECT_ALL(a) inject_all(a, sizeof a / sizeof a[0])

/* ---- users ------------------------------------------------------------- */

static void user_key(void)
{
    next_key("alloc");
}

static int user_create(void)
{
    spotdb_user in = { .email = NULL };
    char email[160];

    snprintf(email, sizeof email, "%s@example.com", key);
    in.email = email;
    in.username = key;
    return spotdb_user_create((spotdb_user **)&out, db, &in,
                              SPOTDB_USER_EMAIL | SPOTDB_USER_USERNAME,
                              "secret");
}

static void user_created(int rc)
{
    out_iff(rc, "user_create");
    created_iff(rc, "users", "username");
    if (out)
        ck_assert_str_eq(((spotdb_user *)out)->username, key);
    spotdb_user_free(out);
}

/* A refused create: the server's message passes the redactor, which
 * masks the call's hash and allocates to do so; when it cannot, it
 * withholds the message rather than risk showing a secret. */
static void user_taken(void)
{
    snprintf(key, sizeof key, "%s", LOGIN);
}

static void user_refused(int rc)
{
    const char *msg = spotdb_errmsg(db);

    ck_assert_ptr_null(out);
    if (rc == SPOTDB_ECONFLICT)
        ck_assert_msg(strstr(msg, "users_") || strstr(msg, "withheld"),
                      "message: %s", msg);
    ck_assert_ptr_null(strstr(msg, "$2b$"));
}

static int user_by_email(void)
{
    return spotdb_user_get_by_email((spotdb_user **)&out, db,
                                    LOGIN "@example.com");
}

static int user_by_username(void)
{
    return spotdb_user_get_by_username((spotdb_user **)&out, db, LOGIN);
}

static void user_update_prepare(void)
{
    next_key("Full Name ");
    remember("full_name", "users", user_id);
}

static int user_update(void)
{
    spotdb_user in = { .full_name = key };

    return spotdb_user_update((spotdb_user **)&out, db, user_id, &in,
                              SPOTDB_USER_FULL_NAME);
}

static void user_updated(int rc)
{
    out_iff(rc, "user_update");
    changed_iff(rc, "full_name", "users", user_id);
    if (out)
        ck_assert_str_eq(((spotdb_user *)out)->full_name, key);
    spotdb_user_free(out);
}

static void deleted_iff(int rc, const char *relation)
{
    long n = th_qn(pg, "SELECT count(*) FROM %s WHERE id = '%s'", relation,
                   victim);

    ck_assert_msg(n == (rc == 0 ? 0 : 1), "delete from %s: %ld rows left "
                  "after rc %d", relation, n, rc);
}

static void user_victim(void)
{
    next_key("victim");
    new_user(victim, key);
}

static int user_delete(void)
{
    return spotdb_user_delete(db, victim);
}

static void user_deleted(int rc)
{
    deleted_iff(rc, "users");
}

/* Login: the right password (success or ENOMEM), a wrong one (EAUTH or
 * ENOMEM: a failed allocation must never read as a wrong password, nor
 * the other way round). */
static void login_prepare(void)
{
    remember("last_login", "users", user_id);
}

static int login_right(void)
{
    return spotdb_user_authenticate((spotdb_user **)&out, db, LOGIN,
                                    password);
}

static void logged_in(int rc)
{
    char *now;

    out_iff(rc, "user_authenticate");
    if (out)
        ck_assert_str_eq(((spotdb_user *)out)->username, LOGIN);
    spotdb_user_free(out);
    /* last_login moves exactly when the login succeeded. */
    now = value_of("last_login", "users", user_id);
    ck_assert_msg((strcmp(now ? now : "(null)", old) != 0) == (rc == 0),
                  "last_login %s -> %s after rc %d", old, S(now), rc);
    free(now);
}

static int login_wrong(void)
{
    return spotdb_user_authenticate((spotdb_user **)&out, db, LOGIN,
                                    "not the password");
}

static void login_refused(int rc)
{
    ck_assert_ptr_null(out);
    (void)rc;
}

/* A login on a hash of a lower cost re-hashes it: the stored hash is
 * made again at cost 4 before each run, which runs at cost 5. */
static void rehash_prepare(void)
{
    spotdb__bcrypt_cost = 4;
    OK(spotdb_user_set_password(db, user_id, password));
    spotdb__bcrypt_cost = 5;
    login_prepare();
}

static void rehashed(int rc)
{
    char *cost;

    spotdb__bcrypt_cost = 4;
    logged_in(rc);
    cost = value_of("substr(hashed_password, 1, 7)", "users", user_id);
    /* A failed re-hash keeps the old hash: the login still succeeds. */
    ck_assert_msg(strcmp(cost, "$2b$05$") == 0 ||
                  strcmp(cost, "$2b$04$") == 0, "hash prefix %s", cost);
    if (rc != 0)
        ck_assert_str_eq(cost, "$2b$04$");
    free(cost);
}

static void password_prepare(void)
{
    next_key("pw-");
}

static int set_password(void)
{
    return spotdb_user_set_password(db, user_id, key);
}

/* The new password works after success, the old one after failure. */
static void password_set(int rc)
{
    spotdb_user *u = NULL;

    if (rc == 0)
        snprintf(password, sizeof password, "%s", key);
    OK(spotdb_user_authenticate(&u, db, LOGIN, password));
    spotdb_user_free(u);
}

START_TEST(t_users)
{
    static const scenario calls[] = {
        { "user_create", user_key, user_create, user_created, 0, 0 },
        { "user_create (taken)", user_taken, user_create, user_refused,
          SPOTDB_ECONFLICT, 0 },
        { "user_get_by_email", NULL, user_by_email, got_user, 0, 0 },
        { "user_get_by_username", NULL, user_by_username, got_user, 0, 0 },
        { "user_update", user_update_prepare, user_update, user_updated,
          0, 0 },
        { "user_delete", user_victim, user_delete, user_deleted, 0, 0 },
        { "user_authenticate", login_prepare, login_right, logged_in, 0, 0 },
        { "user_authenticate (wrong)", NULL, login_wrong, login_refused,
          SPOTDB_EAUTH, 0 },
        { "user_authenticate (rehash)", rehash_prepare, login_right,
          rehashed, 0, 0 },
        { "user_set_password", password_prepare, set_password,
          password_set, 0, 0 },
    };

    INJECT_ALL(calls);
    INJECT_ALL(user_reads);
}
END_TEST

/* ---- accounts ---------------------------------------------------------- */

static char arn[192];

static void account_key(void)
{
    serial++;
    snprintf(key, sizeof key, "2%011ld", serial);
}

static int account_create(void)
{
    spotdb_account in;

    account_input(&in, key, arn);
    return spotdb_account_create((spotdb_account **)&out, db, &in,
                                 ACCOUNT_FIELDS);
}

static int account_create_for_username(void)
{
    spotdb_account in;

    account_input(&in, key, arn);
    return spotdb_account_create_for_username(
        (spotdb_account **)&out, db, LOGIN, &in,
        ACCOUNT_FIELDS & ~SPOTDB_ACCOUNT_USER_ID);
}

static void account_created(int rc)
{
    out_iff(rc, "account_create");
    created_iff(rc, "accounts", "account_id");
    if (out)
        ck_assert_str_eq(((spotdb_account *)out)->account_id, key);
    spotdb_account_free(out);
}

static int account_by_number(void)
{
    return spotdb_account_get_by_account_id((spotdb_account **)&out, db,
                                            AWS_NUMBER);
}

static void account_update_prepare(void)
{
    next_key("Account ");
    remember("account_name", "accounts", account_id);
}

static int account_update(void)
{
    spotdb_account in = { .account_name = key };

    return spotdb_account_update((spotdb_account **)&out, db, account_id,
                                 &in, SPOTDB_ACCOUNT_ACCOUNT_NAME);
}

static void account_updated(int rc)
{
    out_iff(rc, "account_update");
    changed_iff(rc, "account_name", "accounts", account_id);
    spotdb_account_free(out);
}

static void account_victim(void)
{
    account_key();
    new_account(victim, key);
}

static int account_delete(void)
{
    return spotdb_account_delete(db, victim);
}

static void account_deleted(int rc)
{
    deleted_iff(rc, "accounts");
}

/* A transaction: begin, create, commit, all armed; after a failure the
 * caller rolls back (in the check, unarmed), and nothing is stored. */
static int transaction(void)
{
    int rc;

    if ((rc = spotdb_begin(db)) == 0 && (rc = account_create()) == 0)
        rc = spotdb_commit(db);
    return rc;
}

static void transaction_ended(int rc)
{
    if (rc != 0 && spotdb_in_transaction(db))
        OK(spotdb_rollback(db));
    account_created(rc);
}

START_TEST(t_accounts)
{
    static const scenario calls[] = {
        { "account_create", account_key, account_create, account_created,
          0, 0 },
        { "account_create_for_username", account_key,
          account_create_for_username, account_created, 0, 0 },
        { "account_get_by_account_id", NULL, account_by_number, got_account,
          0, 0 },
        { "account_update", account_update_prepare, account_update,
          account_updated, 0, 0 },
        { "account_delete", account_victim, account_delete, account_deleted,
          0, 0 },
        { "begin, account_create, commit", account_key, transaction,
          transaction_ended, 0, 0 },
    };

    INJECT_ALL(calls);
    INJECT_ALL(account_reads);
}
END_TEST

/* ---- instances --------------------------------------------------------- */

static void instance_key(void)
{
    serial++;
    snprintf(key, sizeof key, "i-%017lx", serial);
}

static int instance_create(void)
{
    spotdb_instance in;

    instance_input(&in, key);
    return spotdb_instance_create((spotdb_instance **)&out, db, &in,
                                  INSTANCE_FIELDS);
}

static int instance_create_for_aws_account(void)
{
    spotdb_instance in;

    instance_input(&in, key);
    return spotdb_instance_create_for_aws_account(
        (spotdb_instance **)&out, db, AWS_NUMBER, &in,
        INSTANCE_FIELDS & ~SPOTDB_INSTANCE_ACCOUNT_ID);
}

static void instance_created(int rc)
{
    out_iff(rc, "instance_create");
    created_iff(rc, "instances", "instance_id");
    spotdb_instance_free(out);
}

static int instance_by_ec2_id(void)
{
    return spotdb_instance_get_by_instance_id((spotdb_instance **)&out, db,
                                              "i-0000000000000a110");
}

static void instance_update_prepare(void)
{
    next_key("");
    remember("metadata->>'n'", "instances", instance_id);
}

static int instance_update(void)
{
    char json[160];
    spotdb_instance in = { .metadata = json };

    snprintf(json, sizeof json, "{\"n\": %s}", key);
    return spotdb_instance_update((spotdb_instance **)&out, db, instance_id,
                                  &in, SPOTDB_INSTANCE_METADATA);
}

static void instance_updated(int rc)
{
    out_iff(rc, "instance_update");
    changed_iff(rc, "metadata->>'n'", "instances", instance_id);
    spotdb_instance_free(out);
}

static void instance_victim(void)
{
    instance_key();
    new_instance(victim, key);
}

static int instance_delete(void)
{
    return spotdb_instance_delete(db, victim);
}

static void instance_deleted(int rc)
{
    deleted_iff(rc, "instances");
}

/* insert_many: rows tagged with `key` in their metadata, all or none. */
#define BATCH 20
static char batch_ids[300][SPOTDB_UUID_SIZE];

static void batch_prepare(void)
{
    next_key("");
    memset(batch_ids, 0, sizeof batch_ids);
}

static int instance_insert_many(void)
{
    static spotdb_instance rows[BATCH];
    static char ec2[BATCH][24], json[192];
    int64_t bad = 0;

    snprintf(json, sizeof json, "{\"batch\": %s}", key);
    for (int i = 0; i < BATCH; i++) {
        snprintf(ec2[i], sizeof ec2[i], "i-%08lx%09x", serial, i);
        instance_input(&rows[i], ec2[i]);
        rows[i].metadata = json;
    }
    return spotdb_instance_insert_many(db, rows, BATCH,
                                       INSTANCE_FIELDS |
                                       SPOTDB_INSTANCE_METADATA,
                                       batch_ids, &bad);
}

static void instances_inserted(int rc)
{
    long n = th_qn(pg, "SELECT count(*) FROM instances WHERE "
                   "metadata->>'batch' = '%s'", key);

    ck_assert_msg(n == (rc == 0 ? BATCH : 0), "insert_many: %ld rows after "
                  "rc %d", n, rc);
    if (rc == 0)
        ck_assert_int_eq(th_qn(pg, "SELECT count(*) FROM instances WHERE "
                               "id = '%s'", batch_ids[BATCH - 1]), 1);
}

START_TEST(t_instances)
{
    static const scenario calls[] = {
        { "instance_create", instance_key, instance_create,
          instance_created, 0, 0 },
        { "instance_create_for_aws_account", instance_key,
          instance_create_for_aws_account, instance_created, 0, 0 },
        { "instance_get_by_instance_id", NULL, instance_by_ec2_id,
          got_instance, 0, 0 },
        { "instance_update", instance_update_prepare, instance_update,
          instance_updated, 0, 0 },
        { "instance_delete", instance_victim, instance_delete,
          instance_deleted, 0, 0 },
        { "instance_insert_many", batch_prepare, instance_insert_many,
          instances_inserted, 0, 0 },
    };

    INJECT_ALL(calls);
    INJECT_ALL(instance_reads);
}
END_TEST

/* ---- models ------------------------------------------------------------ */

static void model_key(void)
{
    next_key("Model");
}

static int model_create(void)
{
    spotdb_model in = { .name = key, .version = "v2.0.0" };

    return spotdb_model_create((spotdb_model **)&out, db, &in,
                               SPOTDB_MODEL_NAME | SPOTDB_MODEL_VERSION);
}

static void model_created(int rc)
{
    out_iff(rc, "model_create");
    created_iff(rc, "model_registry", "name");
    spotdb_model_free(out);
}

static int model_by_name_version(void)
{
    return spotdb_model_get_by_name_version((spotdb_model **)&out, db,
                                            "AllocModel", "v1.0.0");
}

static void model_update_prepare(void)
{
    next_key("description ");
    remember("description", "model_registry", model_id);
}

static int model_update(void)
{
    spotdb_model in = { .description = key };

    return spotdb_model_update((spotdb_model **)&out, db, model_id, &in,
                               SPOTDB_MODEL_DESCRIPTION);
}

static void model_updated(int rc)
{
    out_iff(rc, "model_update");
    changed_iff(rc, "description", "model_registry", model_id);
    spotdb_model_free(out);
}

static void model_victim(void)
{
    model_key();
    new_model(victim, key);
}

static int model_delete(void)
{
    return spotdb_model_delete(db, victim);
}

static void model_deleted(int rc)
{
    deleted_iff(rc, "model_registry");
}

START_TEST(t_models)
{
    static const scenario calls[] = {
        { "model_create", model_key, model_create, model_created, 0, 0 },
        { "model_get_by_name_version", NULL, model_by_name_version,
          got_model, 0, 0 },
        { "model_update", model_update_prepare, model_update, model_updated,
          0, 0 },
        { "model_delete", model_victim, model_delete, model_deleted, 0, 0 },
    };

    INJECT_ALL(calls);
    INJECT_ALL(model_reads);
}
END_TEST

/* ---- experiment logs, views and the report ----------------------------- */

static void log_key(void)
{
    next_key("reason ");
}

static int log_create(void)
{
    spotdb_experiment_log in;

    log_input(&in, key);
    return spotdb_experiment_log_create((spotdb_experiment_log **)&out, db,
                                        &in, LOG_FIELDS);
}

static void log_created(int rc)
{
    out_iff(rc, "experiment_log_create");
    created_iff(rc, "experiment_logs", "decision_reason");
    spotdb_experiment_log_free(out);
}

static void log_update_prepare(void)
{
    next_key("updated ");
    remember("decision_reason", "experiment_logs", log_id);
}

static int log_update(void)
{
    spotdb_experiment_log in = { .decision_reason = key };

    return spotdb_experiment_log_update((spotdb_experiment_log **)&out, db,
                                        log_id, &in,
                                        SPOTDB_EXPERIMENT_LOG_DECISION_REASON);
}

static void log_updated(int rc)
{
    out_iff(rc, "experiment_log_update");
    changed_iff(rc, "decision_reason", "experiment_logs", log_id);
    spotdb_experiment_log_free(out);
}

static void log_victim(void)
{
    log_key();
    new_log(victim, key);
}

static int log_delete(void)
{
    return spotdb_experiment_log_delete(db, victim);
}

static void log_deleted(int rc)
{
    deleted_iff(rc, "experiment_logs");
}

/* 300 logs: the COPY buffer grows (and reallocates) several times. */
static int log_insert_many(void)
{
    static spotdb_experiment_log rows[300];
    int64_t bad = 0;

    for (int i = 0; i < 300; i++)
        log_input(&rows[i], key);
    return spotdb_experiment_log_insert_many(db, rows, 300, LOG_FIELDS,
                                             batch_ids, &bad);
}

static void logs_inserted(int rc)
{
    long n = th_qn(pg, "SELECT count(*) FROM experiment_logs WHERE "
                   "decision_reason = '%s'", key);

    ck_assert_msg(n == (rc == 0 ? 300 : 0), "insert_many: %ld rows after "
                  "rc %d", n, rc);
}

static void count_view(const char *relation)
{
    expected = th_qn(pg, "SELECT count(*) FROM %s", relation);
    streamed = 0;
}

static void count_active(void)
{
    count_view("v_active_instances");
}

static void count_recent(void)
{
    count_view("v_recent_experiments");
}

static void count_report(void)
{
    expected = th_qn(pg, "SELECT count(DISTINCT e.model_id) FROM "
                     "experiment_logs e JOIN model_registry m "
                     "ON m.id = e.model_id");
    streamed = 0;
}

static int active_list(void)
{
    return spotdb_active_instance_list(
        (spotdb_active_instance_rows **)&out, db, NULL, 0);
}

static void active_listed(int rc)
{
    out_iff(rc, "active_instance_list");
    if (out)
        ck_assert_int_eq(((spotdb_active_instance_rows *)out)->count,
                         expected);
    spotdb_active_instance_rows_free(out);
}

static int active_stream(void)
{
    return spotdb_active_instance_stream(db, NULL, 0, count_active_instance,
                                         &streamed);
}

static int recent_list(void)
{
    return spotdb_recent_experiment_list(
        (spotdb_recent_experiment_rows **)&out, db, NULL, 0);
}

static void recent_listed(int rc)
{
    out_iff(rc, "recent_experiment_list");
    if (out)
        ck_assert_int_eq(((spotdb_recent_experiment_rows *)out)->count,
                         expected);
    spotdb_recent_experiment_rows_free(out);
}

static int recent_stream(void)
{
    return spotdb_recent_experiment_stream(db, NULL, 0,
                                           count_recent_experiment,
                                           &streamed);
}

static int report_list(void)
{
    return spotdb_model_performance_list(
        (spotdb_model_performance_rows **)&out, db, NULL);
}

static void report_listed(int rc)
{
    out_iff(rc, "model_performance_list");
    if (out)
        ck_assert_int_eq(((spotdb_model_performance_rows *)out)->count,
                         expected);
    spotdb_model_performance_rows_free(out);
}

static int report_stream(void)
{
    return spotdb_model_performance_stream(db, NULL,
                                           count_model_performance,
                                           &streamed);
}

START_TEST(t_experiment_logs)
{
    static const scenario calls[] = {
        { "experiment_log_create", log_key, log_create, log_created, 0, 0 },
        { "experiment_log_update", log_update_prepare, log_update,
          log_updated, 0, 0 },
        { "experiment_log_delete", log_victim, log_delete, log_deleted,
          0, 0 },
        { "experiment_log_insert_many", log_key, log_insert_many,
          logs_inserted, 0, 0 },
        { "active_instance_list", count_active, active_list, active_listed,
          0, 0 },
        { "active_instance_stream", count_active, active_stream,
          stream_checked, 0, 0 },
        { "recent_experiment_list", count_recent, recent_list,
          recent_listed, 0, 0 },
        { "recent_experiment_stream", count_recent, recent_stream,
          stream_checked, 0, 0 },
        { "model_performance_list", count_report, report_list,
          report_listed, 0, 0 },
        { "model_performance_stream", count_report, report_stream,
          stream_checked, 0, 0 },
    };

    INJECT_ALL(calls);
    INJECT_ALL(experiment_log_reads);
}
END_TEST

/* ---- opening, the schema, migrations ----------------------------------- */

static spotdb_db *other;

static void opened(int rc)
{
    int64_t n;

    if (rc == 0) {
        ck_assert_ptr_nonnull(other);
        ck_assert_int_eq(spotdb_user_count(&n, other, NULL), 0);
    } else {
        ck_assert_ptr_null(other);
    }
    spotdb_close(other);
    other = NULL;
}

static int open_plain(void)
{
    return spotdb_open(&other, th_db_conninfo(), NULL);
}

/* Every option that makes open copy something: the application name,
 * replica reads (the read connection's settings, opened at the first
 * list), and a password (kept for redaction; the server trusts the
 * socket and ignores it). */
static void with_password(void)
{
    setenv("PGPASSWORD", "alloc-secret", 1);
}

static void opened_with_password(int rc)
{
    unsetenv("PGPASSWORD");
    opened(rc);
}

static int open_options(void)
{
    spotdb_open_options o = SPOTDB_OPEN_OPTIONS_INIT;

    o.application_name = "alloc-test";
    o.replica_reads = SPOTDB_REPLICA_READS_ON;
    return spotdb_open(&other, th_db_conninfo(), &o);
}

static spotdb_db *routed;

static void open_routed(void)
{
    spotdb_open_options o = SPOTDB_OPEN_OPTIONS_INIT;

    o.replica_reads = SPOTDB_REPLICA_READS_ON;
    if (!routed)
        ck_assert_int_eq(spotdb_open(&routed, th_db_conninfo(), &o), 0);
    count_rows_user();
}

/* A read routed to the read connection, which it opens the first time
 * (and again after a failure closed it). */
static int routed_list(void)
{
    return spotdb_user_list((spotdb_user_rows **)&out, routed, NULL, NULL,
                            0);
}

static void routed_listed(int rc)
{
    out_iff(rc, "user_list (replica reads)");
    if (out)
        ck_assert_int_eq(((spotdb_user_rows *)out)->count, expected);
    spotdb_user_rows_free(out);
    if (rc != 0) {
        ck_assert_msg(strstr(spotdb_errmsg(routed), "out of memory"),
                      "routed: %s", spotdb_errmsg(routed));
        spotdb_close(routed);
        routed = NULL;
    }
}

static spotdb_pool *pool;

/* Open, acquire, use, release, close: a pool's whole life. */
static int pool_life(void)
{
    spotdb_pool_options o = SPOTDB_POOL_OPTIONS_INIT;
    spotdb_db *h = NULL;
    int64_t n;
    int rc;

    o.max_size = 2;
    o.initial_size = 1;
    if ((rc = spotdb_pool_open(&pool, th_db_conninfo(), &o)) != 0)
        return rc;
    if ((rc = spotdb_pool_acquire(pool, &h, 5000)) == 0) {
        rc = spotdb_user_count(&n, h, NULL);
        spotdb_pool_release(pool, h);
    }
    return rc;
}

static void pool_lived(int rc)
{
    (void)rc;
    spotdb_pool_close(pool);
    pool = NULL;
}

/* The seeded admin's hash is made again at cost 4: the doctor verifies
 * it on every run, and at cost 12 that is a quarter of a second. */
static void cheap_admin_hash(void)
{
    th_exec(pg, "UPDATE users SET hashed_password = (SELECT hashed_password "
            "FROM users WHERE username = '" LOGIN "') WHERE username = "
            "'admin'");
}

static int doctor(void)
{
    return spotdb_doctor_run((spotdb_doctor_report **)&out, db);
}

static void doctored(int rc)
{
    out_iff(rc, "doctor_run");
    spotdb_doctor_report_free(out);
}

static int status_get(void)
{
    return spotdb_status_get((spotdb_status **)&out, db);
}

static void status_got(int rc)
{
    out_iff(rc, "status_get");
    if (out)
        ck_assert_int_eq(((spotdb_status *)out)->current_version,
                         ((spotdb_status *)out)->latest_version);
    spotdb_status_free(out);
}

static int migrate_again(void)
{
    return spotdb_migrate(db, NULL);
}

static void nothing_to_check(int rc)
{
    (void)rc;
}

/* The document is built once per process: only its first build
 * allocates, and a failed one is retried by the next call. */
static int describe(void)
{
    return spotdb_schema_describe() ? 0 : SPOTDB_ENOMEM;
}

START_TEST(t_open_and_more)
{
    static const scenario calls[] = {
        { "open", NULL, open_plain, opened, 0, NO_HANDLE },
        { "open (options, replica reads, password)", with_password,
          open_options, opened_with_password, 0, NO_HANDLE },
        { "user_list (replica reads)", open_routed, routed_list,
          routed_listed, 0, 0 },
        { "pool_open, acquire, release", NULL, pool_life, pool_lived, 0,
          NO_HANDLE },
        { "doctor_run", NULL, doctor, doctored, 0, 0 },
        { "status_get", NULL, status_get, status_got, 0, 0 },
        { "migrate (up to date)", NULL, migrate_again, nothing_to_check, 0,
          0 },
        { "schema_describe", NULL, describe, nothing_to_check, 0,
          NO_HANDLE | NO_MESSAGE },
    };

    cheap_admin_hash();
    INJECT_ALL(calls);
    spotdb_close(routed);
    routed = NULL;
}
END_TEST

/* Migrations from an empty database, each run from scratch: a failed run
 * leaves whole migrations recorded (each is one transaction), which the
 * check compares with the tables that exist. */
static void setup_empty(void)
{
    th_setup_db();
    ck_assert_int_eq(th_open_unchecked(&db, th_db_conninfo()), 0);
    pg = th_connect(th_db_conninfo());
    probe = probe_status;
}

static void teardown_empty(void)
{
    probe = probe_count;
    teardown();
}

static void empty_schema(void)
{
    th_exec(pg, "DROP SCHEMA public CASCADE; CREATE SCHEMA public");
}

static void migrated(int rc)
{
    long applied = th_qn(pg, "SELECT count(*) FROM pg_tables WHERE "
                         "tablename = 'spotdb_schema_migrations'");
    long users = th_qn(pg, "SELECT count(*) FROM pg_tables WHERE "
                       "schemaname = 'public' AND tablename = 'users'");

    if (applied)
        applied = th_qn(pg, "SELECT count(*) FROM spotdb_schema_migrations");

    if (rc == 0)
        ck_assert_int_eq(applied, (long)spotdb_migration_embedded_count());
    ck_assert_msg(users == (applied > 0), "%ld migrations recorded, users "
                  "table %s", applied, users ? "present" : "absent");
}

static int migrate(void)
{
    return spotdb_migrate(db, NULL);
}

static void migrated_then_empty(int rc)
{
    migrated(rc);
    empty_schema();
}

/* The database held the first migration's objects, built by hand: they
 * are still there, and whole migrations are recorded. */
static void adopted_then_empty(int rc)
{
    long applied = th_qn(pg, "SELECT count(*) FROM pg_tables WHERE "
                         "tablename = 'spotdb_schema_migrations'");

    if (applied)
        applied = th_qn(pg, "SELECT count(*) FROM spotdb_schema_migrations");
    if (rc == 0)
        ck_assert_int_eq(applied, (long)spotdb_migration_embedded_count());
    ck_assert_int_eq(th_qn(pg, "SELECT count(*) FROM pg_tables WHERE "
                           "schemaname = 'public' AND tablename = 'users'"),
                     1);
    empty_schema();
}

/* Status of an empty database probes for a schema built by hand. */
static int status_empty(void)
{
    return spotdb_status_get((spotdb_status **)&out, db);
}

static void status_empty_got(int rc)
{
    out_iff(rc, "status_get");
    if (out)
        ck_assert_int_eq(((spotdb_status *)out)->unversioned_schema, 0);
    spotdb_status_free(out);
}

/* A database built by hand with the first migration's file: migrate
 * compares its catalog with the file's and adopts it. */
static void hand_built(void)
{
    char *sql = th_read_file(th_source_path("../sql/0001_initial.sql"));

    empty_schema();
    th_exec(pg, sql);
    free(sql);
}

START_TEST(t_migrations)
{
    static const scenario calls[] = {
        { "status_get (empty database)", NULL, status_empty,
          status_empty_got, 0, 0 },
        { "migrate", NULL, migrate, migrated_then_empty, 0, 0 },
        { "migrate (adoption)", hand_built, migrate, adopted_then_empty,
          0, 0 },
    };

    INJECT_ALL(calls);
}
END_TEST

/* ---- the suite --------------------------------------------------------- */

static Suite *alloc_suite(void)
{
    Suite *s = suite_create("alloc");
    TCase *tc;

#define ADD(name, set_up, tear_down)                                         \
    do {                                                                     \
        tc = tcase_create(#name);                                            \
        tcase_add_checked_fixture(tc, set_up, tear_down);                    \
        tcase_set_timeout(tc, 600);                                          \
        tcase_add_test(tc, name);                                            \
        suite_add_tcase(s, tc);                                              \
    } while (0)
    ADD(t_users, setup_rows, teardown);
    ADD(t_accounts, setup_rows, teardown);
    ADD(t_instances, setup_rows, teardown);
    ADD(t_models, setup_rows, teardown);
    ADD(t_experiment_logs, setup_rows, teardown);
    ADD(t_open_and_more, setup_rows, teardown);
    ADD(t_migrations, setup_empty, teardown_empty);
#undef ADD
    return s;
}

int main(void)
{
    SRunner *sr;
    int failed;

    FILE *f = tmpfile();

    /* A shared mapping of a temporary file (zero-filled by ftruncate):
     * POSIX, unlike MAP_ANONYMOUS. */
    if (!f || ftruncate(fileno(f), (off_t)sizeof *tot) != 0 ||
        (tot = mmap(NULL, sizeof *tot, PROT_READ | PROT_WRITE, MAP_SHARED,
                    fileno(f), 0)) == MAP_FAILED)
        return EXIT_FAILURE;
    sr = srunner_create(alloc_suite());
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    fprintf(stderr, "alloc: %ld failures injected over %ld calls "
            "(%ld ENOMEM, %ld absorbed), %ld handles broken, %d failed "
            "tests\n", tot->injected, tot->calls, tot->enomem,
            tot->absorbed, tot->broken, failed);
    munmap(tot, sizeof *tot);
    fclose(f);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
