/*
 * Fault injection against the real server: what a caller sees when the
 * backend dies, stops or blocks, and what ends up stored.
 *
 * 1. a backend terminated between calls, once it is gone or while the
 *    kill is on its way: the next call reconnects (at most one failed call
 *    per kill, SPOTDB_ECONN), no write is sent twice;
 * 2. backends terminated at random moments around COMMIT of 1,000
 *    transactions (and 1,000 autocommit creates): every call is committed,
 *    rolled back or SPOTDB_EUNKNOWN, and the stored rows match exactly;
 * 3. all or nothing: a COPY of 200,000 rows or a transaction of 50 creates
 *    killed midway stores nothing, seen from a second connection;
 * 4. deadlines: a call blocked on a lock, or on a backend stopped with
 *    SIGSTOP, returns within its deadline plus 100 ms; keepalive and
 *    timeout defaults of the live connection;
 * 5. spotdb_cancel() from another thread: SPOTDB_ECANCELED, the handle
 *    and its backend stay; 200 cancels at random moments;
 * 6. spotdb_run_transaction(): write skew (40001) and deadlocks (40P01)
 *    provoked for real, its delays, the body's own codes, nesting.
 *
 * The server restart under 8 threads is in test_restart.c (it must not run
 * beside other suites).  Each test prints its figures on stderr.  Timing
 * bounds are the in a plain or sanitizer build, and looser under
 * valgrind, which slows everything down twenty-fold.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "internal.h"

/* ---- shared state and helpers ------------------------------------------ */

static spotdb_db *db;       /* the handle under test, named VICTIM */
static PGconn *pg;          /* raw connection for independent checks */
static pid_t stopped_pid;   /* a backend under SIGSTOP, for the teardown */

/* application_name of the handles under test: the killer threads find
 * their backends by it (a handle's PGconn changes when it reconnects, and
 * must not be read from another thread). */
#define VICTIM "faults-victim"

#define KILL_VICTIMS_SQL                                                     \
    "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) "              \
    "FROM pg_stat_activity WHERE datname = current_database() "              \
    "AND application_name = '" VICTIM "'"

/* A timing bound: the figure, or a loose one under valgrind. */
static double bound_ms(double plain, double valgrind)
{
    return th_under_valgrind() ? valgrind : plain;
}

static double ms_since(double t0)
{
    return (th_now_s() - t0) * 1000.0;
}

static void sleep_us(long us)
{
    th_sleep_s((double)us / 1e6);
}

/* Seed of the random schedules: SPOTDB_TEST_SEED, else the clock; printed
 * so that a failing schedule can be replayed. */
static unsigned test_seed(const char *test)
{
    const char *s = getenv("SPOTDB_TEST_SEED");
    unsigned seed = s && *s ? (unsigned)strtoul(s, NULL, 10)
                            : (unsigned)time(NULL) ^ (unsigned)getpid();

    fprintf(stderr, "test_faults: %s: seed %u\n", test, seed);
    return seed;
}

static spotdb_db *open_victim(const char *conninfo,
                              const spotdb_open_options *base)
{
    spotdb_open_options o = SPOTDB_OPEN_OPTIONS_INIT;
    spotdb_db *h = NULL;
    int rc;

    if (base)
        o = *base;
    o.application_name = VICTIM;
    rc = spotdb_open(&h, conninfo ? conninfo : th_db_conninfo(), &o);
    ck_assert_msg(rc == 0, "open: %s", spotdb_last_errmsg());
    return h;
}

/* Allocations of the tests, freed by the teardown too: under valgrind
 * (CK_FORK=no) a failed assertion leaves the test by longjmp, and must not
 * show up as a leak. */
static void *g_owned[8];

static void *tcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);

    ck_assert_ptr_nonnull(p);
    for (size_t i = 0; i < sizeof g_owned / sizeof *g_owned; i++)
        if (!g_owned[i]) {
            g_owned[i] = p;
            return p;
        }
    ck_abort_msg("too many tracked allocations");
    return NULL;
}

static void tfree(void *p)
{
    for (size_t i = 0; p && i < sizeof g_owned / sizeof *g_owned; i++)
        if (g_owned[i] == p)
            g_owned[i] = NULL;
    free(p);
}

static void setup(void)
{
    th_setup_migrated_db();
    pg = th_connect(th_db_conninfo());
    db = open_victim(NULL, NULL);
}

static void teardown(void)
{
    if (stopped_pid > 0)
        kill(stopped_pid, SIGCONT);
    stopped_pid = 0;
    for (size_t i = 0; i < sizeof g_owned / sizeof *g_owned; i++) {
        free(g_owned[i]);
        g_owned[i] = NULL;
    }
    spotdb_close(db);
    db = NULL;
    if (pg)
        PQfinish(pg);
    pg = NULL;
    th_teardown_db();
}

#include "checks.h"

static void copy_id(char *dst, const char *src)
{
    snprintf(dst, SPOTDB_UUID_SIZE, "%s", src);
}

static int backend_pid(spotdb_db *h)
{
    return PQbackendPID(h->conn);
}

/* Terminate backend `pid` and wait until the server no longer lists it. */
static void kill_backend(PGconn *c, int pid)
{
    double t0 = th_now_s();

    th_qn(c, "SELECT pg_terminate_backend(%d)", pid);
    while (th_qn(c, "SELECT count(*) FROM pg_stat_activity WHERE pid = %d",
                 pid) != 0) {
        ck_assert_msg(ms_since(t0) < 10000, "backend %d still there", pid);
        sleep_us(500);
    }
}

/* Rows the logs hang on: a user, an AWS account, an instance. */
static char g_inst[SPOTDB_UUID_SIZE];

static void base_rows(void)
{
    spotdb_user u_in, *u = NULL;
    spotdb_account a_in, *a = NULL;
    spotdb_instance i_in, *i = NULL;

    memset(&u_in, 0, sizeof u_in);
    u_in.email = "faults@example.com";
    u_in.username = "faults";
    OK(spotdb_user_create(&u, db, &u_in,
                          SPOTDB_USER_EMAIL | SPOTDB_USER_USERNAME, "pw"));
    memset(&a_in, 0, sizeof a_in);
    copy_id(a_in.user_id, u->id);
    a_in.account_id = "123456789012";
    a_in.account_name = "Fault lab";
    a_in.role_arn = "arn:aws:iam::123456789012:role/SpotOptimizer";
    a_in.external_id = "ext-faults";
    OK(spotdb_account_create(&a, db, &a_in,
                             SPOTDB_ACCOUNT_USER_ID |
                             SPOTDB_ACCOUNT_ACCOUNT_ID |
                             SPOTDB_ACCOUNT_ACCOUNT_NAME |
                             SPOTDB_ACCOUNT_ROLE_ARN |
                             SPOTDB_ACCOUNT_EXTERNAL_ID));
    memset(&i_in, 0, sizeof i_in);
    copy_id(i_in.account_id, a->id);
    i_in.instance_id = "i-0fa0170000000000a";
    i_in.instance_type = "c5.large";
    i_in.availability_zone = "ap-south-1a";
    OK(spotdb_instance_create(&i, db, &i_in,
                              SPOTDB_INSTANCE_ACCOUNT_ID |
                              SPOTDB_INSTANCE_INSTANCE_ID |
                              SPOTDB_INSTANCE_INSTANCE_TYPE |
                              SPOTDB_INSTANCE_AVAILABILITY_ZONE));
    copy_id(g_inst, i->id);
    spotdb_user_free(u);
    spotdb_account_free(a);
    spotdb_instance_free(i);
}

/* A log whose decision_reason is `key`: the column has no unique
 * constraint, so a write sent twice would show as two rows. */
static int log_create(spotdb_db *h, const char *key)
{
    spotdb_experiment_log in;

    memset(&in, 0, sizeof in);
    copy_id(in.instance_id, g_inst);
    in.decision = "STAY";
    in.decision_reason = key;
    return spotdb_experiment_log_create(NULL, h, &in,
                                        SPOTDB_EXPERIMENT_LOG_INSTANCE_ID |
                                        SPOTDB_EXPERIMENT_LOG_DECISION |
                                        SPOTDB_EXPERIMENT_LOG_DECISION_REASON);
}

static long key_rows(const char *key)
{
    return qn("SELECT count(*) FROM experiment_logs "
              "WHERE decision_reason = '%s'", key);
}

static int model_create(spotdb_db *h, char *id_out, const char *name,
                        const char *version)
{
    spotdb_model in, *m = NULL;
    int rc;

    memset(&in, 0, sizeof in);
    in.name = name;
    in.version = version;
    in.is_active = true;
    rc = spotdb_model_create(id_out ? &m : NULL, h, &in,
                             SPOTDB_MODEL_NAME | SPOTDB_MODEL_VERSION |
                             SPOTDB_MODEL_IS_ACTIVE);
    if (rc == 0 && id_out)
        copy_id(id_out, m->id);
    spotdb_model_free(m);
    return rc;
}

static int model_describe(spotdb_db *h, const char *id, const char *text)
{
    spotdb_model in;

    memset(&in, 0, sizeof in);
    in.description = text;
    return spotdb_model_update(NULL, h, id, &in, SPOTDB_MODEL_DESCRIPTION);
}

static int model_touch(spotdb_db *h, const char *id)
{
    spotdb_model *m = NULL;
    int rc = spotdb_model_get(&m, h, id);

    spotdb_model_free(m);
    return rc;
}

/* A killer thread: terminates every VICTIM backend after a random pause
 * of min_us..max_us, until told to stop. */
typedef struct killer {
    PGconn *c;
    atomic_int stop;
    unsigned seed;
    long min_us, max_us;
    long kills, errors;
    pthread_t thread;
} killer;

static void *killer_main(void *p)
{
    killer *k = p;

    while (!atomic_load(&k->stop)) {
        PGresult *r;

        sleep_us(k->min_us +
                 (long)(rand_r(&k->seed) % (unsigned)(k->max_us - k->min_us
                                                       + 1)));
        if (atomic_load(&k->stop))
            break;
        r = PQexec(k->c, KILL_VICTIMS_SQL);
        if (PQresultStatus(r) == PGRES_TUPLES_OK)
            k->kills += atol(PQgetvalue(r, 0, 0));
        else
            k->errors++;
        PQclear(r);
    }
    return NULL;
}

static void killer_start(killer *k, unsigned seed, long min_us, long max_us)
{
    memset(k, 0, sizeof *k);
    k->c = th_connect(th_db_conninfo());
    k->seed = seed;
    k->min_us = min_us;
    k->max_us = max_us;
    atomic_init(&k->stop, 0);
    ck_assert_int_eq(pthread_create(&k->thread, NULL, killer_main, k), 0);
}

static void killer_stop(killer *k)
{
    atomic_store(&k->stop, 1);
    pthread_join(k->thread, NULL);
    PQfinish(k->c);
    k->c = NULL;
}

/* ======================================================================== */
/* 1. killed between calls                                                  */
/* ======================================================================== */

typedef struct stream_count {
    long n;
} stream_count;

static int count_cb(const spotdb_experiment_log *row, void *payload)
{
    (void)row;
    ((stream_count *)payload)->n++;
    return 0;
}

/* One call of kind `op` (0..2 reads, 3..4 writes) for step i; sets
 * *rows_seen for reads. */
static int between_call(int op, int i, long *rows_seen, char *key,
                        size_t keysz)
{
    spotdb_experiment_log_rows *page = NULL;
    stream_count sc = { 0 };
    int64_t n = -1;
    int rc;

    switch (op) {
    case 0:
        rc = spotdb_experiment_log_count(&n, db, NULL);
        *rows_seen = (long)n;
        return rc;
    case 1:
        rc = spotdb_experiment_log_list(&page, db, NULL, NULL,
                                        SPOTDB_MAX_LIMIT);
        *rows_seen = rc == 0 ? (long)page->count : -1;
        spotdb_experiment_log_rows_free(page);
        return rc;
    case 2:
        rc = spotdb_experiment_log_stream(db, NULL, count_cb, &sc);
        *rows_seen = sc.n;
        return rc;
    case 3:
        snprintf(key, keysz, "between-%d", i);
        return log_create(db, key);
    default:
        snprintf(key, keysz, "v%d", i);
        return model_create(db, NULL, "BetweenModel", key);
    }
}

/* Kill the handle's backend before each of n calls, then make the call:
 * after waiting until the server no longer lists the backend (`wait`),
 * or at once, while the kill is still on its way. */
static void run_between(int wait)
{
    int n = th_under_valgrind() ? 40 : 150;
    unsigned seed = test_seed(wait ? "killed_between_calls"
                                   : "killed_just_before_calls");
    long logs = 0, models = 0, reads = 0, writes = 0;
    long econn = 0;
    double t0;

    base_rows();
    t0 = th_now_s();
    for (int i = 0; i < n; i++) {
        int pid = backend_pid(db);
        int op = (int)(rand_r(&seed) % 5);
        char key[32] = "";
        long seen = -1;
        int rc, tries = 0;

        if (wait)
            kill_backend(pg, pid);
        else
            th_qn(pg, "SELECT pg_terminate_backend(%d)", pid);
        while ((rc = between_call(op, i, &seen, key, sizeof key)) != 0) {
            /* the issue allows one failed call per kill, with
             * SPOTDB_ECONN; a write whose answer was the server's FATAL
             * error was not committed, so is not SPOTDB_EUNKNOWN either
             * (db.h: that is for a write that got no answer) */
            ck_assert_msg(tries == 0 && rc == SPOTDB_ECONN,
                          "kill %d, op %d (%s), call %d: %d (%s), expected "
                          "at most one SPOTDB_ECONN: %s", i, op,
                          op < 3 ? "read" : "write", tries + 1, rc,
                          spotdb_strerror(rc), spotdb_errmsg(db));
            if (op == 3)
                EQI(key_rows(key), 0);
            if (op == 4)
                EQI(qn("SELECT count(*) FROM model_registry WHERE version"
                       " = '%s'", key), 0);
            econn++;
            tries++;
        }
        if (wait)
            ck_assert_msg(backend_pid(db) != pid, "kill %d: same backend",
                          i);
        if (op < 3) {
            EQI(seen, logs);
            reads++;
        } else {
            if (op == 3) {
                EQI(key_rows(key), 1);
                logs++;
            } else {
                models++;
            }
            writes++;
        }
    }
    EQI(rows_in("experiment_logs"), logs);
    EQI(qn("SELECT count(DISTINCT decision_reason) FROM experiment_logs"),
        logs);
    EQI(qn("SELECT count(*) FROM model_registry WHERE name = "
           "'BetweenModel'"), models);
    fprintf(stderr, "test_faults: killed %s calls: %d kills, %ld reads, "
            "%ld writes, %ld failed calls (ECONN, at most one per kill); "
            "%ld rows checked, 0 duplicates, %.2f s\n",
            wait ? "between" : "just before", n, reads, writes, econn,
            logs + models, ms_since(t0) / 1000.0);
}

START_TEST(killed_between_calls)
{
    run_between(1);
}
END_TEST

START_TEST(killed_just_before_calls)
{
    run_between(0);
}
END_TEST

/* ======================================================================== */
/* 2. killed around COMMIT                                                  */
/* ======================================================================== */

enum outcome { O_NONE, O_COMMITTED, O_ROLLED_BACK, O_UNKNOWN };
enum stage { S_BEGIN, S_CREATE, S_COMMIT };

typedef struct tally {
    long committed, rolled_back, unknown;
    long rb_stage[3];
    long unknown_present, unknown_absent;
    int bad_i, bad_rc, bad_stage;
    char bad_msg[256];
    char unknown_msg[256];      /* the first SPOTDB_EUNKNOWN's message */
} tally;

static const char *const stage_name[] = { "begin", "create", "commit" };

/* Classify the outcome of attempt i; records the first unexpected code. */
static enum outcome classify(tally *t, int i, enum stage st, int rc,
                             int autocommit)
{
    if (rc == 0)
        return O_COMMITTED;
    /* a write sent without an answer: outside a transaction the create,
     * inside one the COMMIT */
    if (rc == SPOTDB_EUNKNOWN && (autocommit || st == S_COMMIT)) {
        if (!t->unknown_msg[0])
            snprintf(t->unknown_msg, sizeof t->unknown_msg, "%s",
                     spotdb_errmsg(db));
        return O_UNKNOWN;
    }
    if (rc == SPOTDB_ECONN || (rc == SPOTDB_ESQL && st == S_COMMIT)) {
        t->rb_stage[st]++;
        return O_ROLLED_BACK;
    }
    if (t->bad_rc == 0) {
        t->bad_i = i;
        t->bad_rc = rc;
        t->bad_stage = (int)st;
        snprintf(t->bad_msg, sizeof t->bad_msg, "%s", spotdb_errmsg(db));
    }
    return O_NONE;
}

/* The stored keys "<prefix>-<i>" against the outcomes. */
static void check_outcomes(tally *t, const char *prefix,
                           const enum outcome *out, int n)
{
    char *present = tcalloc((size_t)n, 1);
    PGresult *r;
    char sql[256];
    size_t plen = strlen(prefix);

    snprintf(sql, sizeof sql, "SELECT decision_reason FROM experiment_logs "
             "WHERE decision_reason LIKE '%s-%%'", prefix);
    r = PQexec(pg, sql);
    ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK, "%s",
                  PQerrorMessage(pg));
    for (int k = 0; k < PQntuples(r); k++) {
        int i = atoi(PQgetvalue(r, k, 0) + plen + 1);

        ck_assert_msg(i >= 0 && i < n, "stray key %s", PQgetvalue(r, k, 0));
        ck_assert_msg(!present[i], "key %s stored twice",
                      PQgetvalue(r, k, 0));
        present[i] = 1;
    }
    PQclear(r);
    t->committed = t->rolled_back = t->unknown = 0;
    t->unknown_present = t->unknown_absent = 0;
    for (int i = 0; i < n; i++) {
        switch (out[i]) {
        case O_COMMITTED:
            t->committed++;
            ck_assert_msg(present[i], "%s-%d reported committed, absent",
                          prefix, i);
            break;
        case O_ROLLED_BACK:
            t->rolled_back++;
            ck_assert_msg(!present[i], "%s-%d reported rolled back, stored",
                          prefix, i);
            break;
        case O_UNKNOWN:
            t->unknown++;
            if (present[i])
                t->unknown_present++;
            else
                t->unknown_absent++;
            break;
        default:
            ck_abort_msg("%s-%d: no outcome", prefix, i);
        }
    }
    tfree(present);
    EQI(qn("SELECT count(*) FROM experiment_logs WHERE decision_reason "
           "LIKE '%s-%%'", prefix), t->committed + t->unknown_present);
}

/* `n` attempts while a killer terminates the handle's backend every
 * 0..max_us; transactions (begin, create, commit) or autocommit creates. */
static void run_commit_storm(int autocommit, int n, long max_us)
{
    const char *prefix = autocommit ? "auto" : "txn";
    unsigned seed = test_seed(autocommit ? "autocommit_creates_killed"
                                         : "killed_around_commit");
    enum outcome *out = tcalloc((size_t)n, sizeof *out);
    tally t;
    killer k;
    double t0;

    memset(&t, 0, sizeof t);
    base_rows();
    t0 = th_now_s();
    killer_start(&k, seed, 0, max_us);
    for (int i = 0; i < n && t.bad_rc == 0; i++) {
        enum stage st = S_CREATE;
        char key[32];
        int rc = 0;

        snprintf(key, sizeof key, "%s-%d", prefix, i);
        if (!autocommit) {
            st = S_BEGIN;
            rc = spotdb_begin(db);
            if (rc == 0) {
                st = S_CREATE;
                rc = log_create(db, key);
            }
            if (rc == 0) {
                st = S_COMMIT;
                rc = spotdb_commit(db);
            }
        } else {
            rc = log_create(db, key);
        }
        out[i] = classify(&t, i, st, rc, autocommit);
        if (rc != 0) {
            spotdb_rollback(db);
            if (spotdb_in_transaction(db) && t.bad_rc == 0) {
                t.bad_i = i;
                t.bad_rc = 1;
                snprintf(t.bad_msg, sizeof t.bad_msg,
                         "still in a transaction after rollback");
            }
        }
    }
    killer_stop(&k);
    ck_assert_msg(t.bad_rc == 0, "attempt %d, %s: unexpected %d (%s): %s",
                  t.bad_i, stage_name[t.bad_stage], t.bad_rc,
                  spotdb_strerror(t.bad_rc), t.bad_msg);
    ck_assert_msg(k.errors == 0, "killer: %ld failed queries", k.errors);
    check_outcomes(&t, prefix, out, n);
    /* the faults hit calls, or the test proved nothing */
    ck_assert_msg(k.kills > 0 && t.rolled_back + t.unknown > 0,
                  "%ld kills, %ld failed calls", k.kills,
                  t.rolled_back + t.unknown);
    /* and the handle goes on */
    OK(log_create(db, autocommit ? "auto-after" : "txn-after"));
    fprintf(stderr, "test_faults: %s: %d attempts, %ld backends killed: "
            "%ld committed, %ld rolled back (begin %ld, create %ld, "
            "commit %ld), %ld unknown (%ld stored, %ld not); %ld rows "
            "stored, 0 duplicates, %.2f s; first unknown: \"%s\"\n",
            autocommit ? "autocommit creates" : "transactions", n, k.kills,
            t.committed, t.rolled_back, t.rb_stage[S_BEGIN],
            t.rb_stage[S_CREATE], t.rb_stage[S_COMMIT], t.unknown,
            t.unknown_present, t.unknown_absent,
            t.committed + t.unknown_present, ms_since(t0) / 1000.0,
            t.unknown_msg);
    tfree(out);
}

/* Under valgrind a reconnection takes about 15 ms: kills further apart,
 * so that calls still get through, and fewer attempts. */
START_TEST(killed_around_commit)
{
    if (th_under_valgrind())
        run_commit_storm(0, 300, 40000);
    else
        run_commit_storm(0, 1000, 20000);
}
END_TEST

START_TEST(autocommit_creates_killed)
{
    if (th_under_valgrind())
        run_commit_storm(1, 300, 40000);
    else
        run_commit_storm(1, 1000, 20000);
}
END_TEST

/* ======================================================================== */
/* 3. all or nothing                                                        */
/* ======================================================================== */

/* Waits for the VICTIM backend to run a COPY, lets it run `after_us`,
 * then terminates it. */
typedef struct copy_killer {
    PGconn *c;
    long after_us;
    int killed;
    int copy_pid;
    pthread_t thread;
} copy_killer;

static void *copy_killer_main(void *p)
{
    copy_killer *k = p;
    double t0 = th_now_s();

    while (ms_since(t0) < 60000) {
        PGresult *r = PQexec(k->c,
            "SELECT pid FROM pg_stat_activity WHERE application_name = '"
            VICTIM "' AND state = 'active' AND query ILIKE 'COPY%'");

        if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0)
            k->copy_pid = atoi(PQgetvalue(r, 0, 0));
        PQclear(r);
        if (k->copy_pid)
            break;
        sleep_us(500);
    }
    if (k->copy_pid) {
        char sql[64];
        PGresult *r;

        sleep_us(k->after_us);
        snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(%d)",
                 k->copy_pid);
        r = PQexec(k->c, sql);
        k->killed = PQresultStatus(r) == PGRES_TUPLES_OK &&
                    strcmp(PQgetvalue(r, 0, 0), "t") == 0;
        PQclear(r);
    }
    return NULL;
}

START_TEST(copy_killed_midway_stores_nothing)
{
    size_t n = th_under_valgrind() ? 50000 : 200000;
    spotdb_experiment_log *rows = tcalloc(n, sizeof *rows);
    int attempts = 0, killed_mid = 0;
    double t_call = 0;

    base_rows();
    for (size_t i = 0; i < n; i++) {
        copy_id(rows[i].instance_id, g_inst);
        rows[i].decision = "SWITCH";
        rows[i].decision_reason = "bulk, killed midway";
        rows[i].prediction_score = (double)(i % 1000) / 1000.0;
    }
    /* a COPY that finished before the kill proves nothing: try again */
    while (!killed_mid && attempts < 3) {
        copy_killer k = { th_connect(th_db_conninfo()),
                          th_under_valgrind() ? 200000 : 30000, 0, 0, 0 };
        long stored;
        double t0;
        int rc;

        attempts++;
        ck_assert_int_eq(pthread_create(&k.thread, NULL, copy_killer_main,
                                        &k), 0);
        t0 = th_now_s();
        rc = spotdb_experiment_log_insert_many(
            db, rows, n, SPOTDB_EXPERIMENT_LOG_INSTANCE_ID |
            SPOTDB_EXPERIMENT_LOG_DECISION |
            SPOTDB_EXPERIMENT_LOG_DECISION_REASON |
            SPOTDB_EXPERIMENT_LOG_PREDICTION_SCORE, NULL, NULL);
        t_call = ms_since(t0);
        pthread_join(k.thread, NULL);
        PQfinish(k.c);
        stored = rows_in("experiment_logs");
        /* all or nothing, whatever the code */
        ck_assert_msg(stored == 0 || stored == (long)n,
                      "%ld of %zu rows stored", stored, n);
        if (rc == 0) {
            EQI(stored, (long)n);
            th_exec(pg, "DELETE FROM experiment_logs");
            continue;
        }
        ck_assert_msg(rc == SPOTDB_ECONN || rc == SPOTDB_EUNKNOWN,
                      "insert_many -> %d (%s): %s", rc, spotdb_strerror(rc),
                      spotdb_errmsg(db));
        ck_assert_msg(k.killed, "insert_many failed without a kill: %s",
                      spotdb_errmsg(db));
        if (rc == SPOTDB_ECONN)
            EQI(stored, 0);
        if (stored == 0)
            killed_mid = 1;
        else
            th_exec(pg, "DELETE FROM experiment_logs");
    }
    ck_assert_msg(killed_mid, "no COPY killed midway in %d attempts",
                  attempts);
    /* the handle goes on, on a new backend */
    OK(log_create(db, "after-copy"));
    EQI(rows_in("experiment_logs"), 1);
    fprintf(stderr, "test_faults: COPY of %zu rows killed after %.0f ms "
            "(attempt %d): 0 rows stored, checked from a second "
            "connection\n", n, t_call, attempts);
    tfree(rows);
}
END_TEST

START_TEST(transaction_killed_before_commit_stores_nothing)
{
    char key[32];
    int pid;

    base_rows();
    /* killed after 50 creates, before COMMIT */
    OK(spotdb_begin(db));
    for (int i = 0; i < 50; i++) {
        snprintf(key, sizeof key, "t50-%d", i);
        OK(log_create(db, key));
    }
    EQI(qn("SELECT count(*) FROM experiment_logs"), 0);
    kill_backend(pg, backend_pid(db));
    FAILS(SPOTDB_ECONN, NULL, spotdb_commit(db));
    spotdb_rollback(db);
    EQI(spotdb_in_transaction(db), 0);
    EQI(qn("SELECT count(*) FROM experiment_logs"), 0);

    /* killed midway: the following calls fail too, none runs outside the
     * transaction on a new connection, until rollback */
    OK(spotdb_begin(db));
    for (int i = 0; i < 25; i++) {
        snprintf(key, sizeof key, "t25-%d", i);
        OK(log_create(db, key));
    }
    pid = backend_pid(db);
    kill_backend(pg, pid);
    FAILS(SPOTDB_ECONN, NULL, log_create(db, "t25-25"));
    FAILS(SPOTDB_ECONN, NULL, log_create(db, "t25-26"));
    EQI(spotdb_in_transaction(db), 1);
    {
        int rc = spotdb_commit(db);

        ck_assert_msg(rc == SPOTDB_ECONN || rc == SPOTDB_ESQL,
                      "commit of a broken transaction -> %d (%s)", rc,
                      spotdb_strerror(rc));
    }
    spotdb_rollback(db);
    EQI(spotdb_in_transaction(db), 0);
    EQI(qn("SELECT count(*) FROM experiment_logs"), 0);

    /* then the handle works again, on a new backend */
    OK(log_create(db, "after"));
    ck_assert_int_ne(backend_pid(db), pid);
    EQI(qn("SELECT count(*) FROM experiment_logs"), 1);
    fprintf(stderr, "test_faults: transactions of 50 and 25+2 creates "
            "killed before COMMIT: 0 of 77 rows stored\n");
}
END_TEST

/* ======================================================================== */
/* 4. deadlines                                                             */
/* ======================================================================== */

static void lock_row(PGconn *c, const char *model_id)
{
    char sql[160];

    th_exec(c, "BEGIN");
    snprintf(sql, sizeof sql, "SELECT 1 FROM model_registry WHERE id = '%s'"
             " FOR UPDATE", model_id);
    th_exec(c, sql);
}

START_TEST(deadline_on_a_lock)
{
    char m[SPOTDB_UUID_SIZE], x[SPOTDB_UUID_SIZE];
    spotdb_open_options o = SPOTDB_OPEN_OPTIONS_INIT;
    spotdb_db *h;
    double t0, dt, worst = 0;
    int pid;

    OK(model_create(db, m, "Locked", "v1"));
    OK(spotdb_set_call_timeout(db, 300));
    pid = backend_pid(db);
    lock_row(pg, m);

    /* outside a transaction */
    t0 = th_now_s();
    FAILS(SPOTDB_ETIMEOUT, NULL, model_describe(db, m, "never"));
    dt = ms_since(t0);
    worst = dt;
    ck_assert_msg(dt >= 295 && dt < 300 + bound_ms(100, 2000),
                  "timed out after %.1f ms", dt);
    EQI(backend_pid(db), pid);          /* cancelled, not reconnected */
    OK(model_touch(db, m));

    /* inside one: the transaction is rolled back */
    OK(spotdb_begin(db));
    OK(model_create(db, x, "InTxn", "v1"));
    t0 = th_now_s();
    FAILS(SPOTDB_ETIMEOUT, NULL, model_describe(db, m, "never"));
    dt = ms_since(t0);
    worst = dt > worst ? dt : worst;
    ck_assert_msg(dt >= 295 && dt < 300 + bound_ms(100, 2000),
                  "timed out after %.1f ms", dt);
    spotdb_rollback(db);
    EQI(spotdb_in_transaction(db), 0);
    th_exec(pg, "ROLLBACK");
    EQI(qn("SELECT count(*) FROM model_registry WHERE name = 'InTxn'"), 0);
    qeq(NULL, "SELECT description FROM model_registry WHERE id = '%s'", m);
    EQI(backend_pid(db), pid);

    /* lock gone: the same call succeeds within the deadline */
    OK(model_describe(db, m, "now"));
    qeq("now", "SELECT description FROM model_registry WHERE id = '%s'", m);
    /* 0 turns the deadline off */
    OK(spotdb_set_call_timeout(db, 0));
    FAILS(SPOTDB_EINVAL, NULL, spotdb_set_call_timeout(db, -1));
    EQI(spotdb_set_call_timeout(NULL, 10), SPOTDB_EINVAL);
    lock_row(pg, m);
    {
        /* the open option sets the same deadline */
        o.call_timeout_ms = 200;
        h = open_victim(NULL, &o);
        t0 = th_now_s();
        EQI(model_describe(h, m, "never"), SPOTDB_ETIMEOUT);
        dt = ms_since(t0);
        ck_assert_msg(dt >= 195 && dt < 200 + bound_ms(100, 2000),
                      "option: timed out after %.1f ms", dt);
        spotdb_close(h);
    }
    th_exec(pg, "ROLLBACK");
    fprintf(stderr, "test_faults: deadline 300 ms on a row lock: returned "
            "after at most %.1f ms, same backend after\n", worst);
}
END_TEST

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

/* A setting of a live connection, from PQconninfo ("(unset)" if none). */
static void conn_setting(PGconn *c, const char *kw, char *out, size_t size)
{
    PQconninfoOption *opts = PQconninfo(c);

    ck_assert_ptr_nonnull(opts);
    snprintf(out, size, "(unset)");
    for (PQconninfoOption *o = opts; o->keyword; o++)
        if (strcmp(o->keyword, kw) == 0 && o->val)
            snprintf(out, size, "%s", o->val);
    PQconninfoFree(opts);
}

static void check_setting(PGconn *c, const char *kw, const char *expected)
{
    char v[64];

    conn_setting(c, kw, v, sizeof v);
    ck_assert_msg(strcmp(v, expected) == 0, "%s = %s, expected %s", kw, v,
                  expected);
}

static void check_defaults(PGconn *c)
{
    check_setting(c, "keepalives_idle", "5");
    check_setting(c, "keepalives_interval", "1");
    check_setting(c, "keepalives_count", "3");
    check_setting(c, "tcp_user_timeout", "8000");
    check_setting(c, "connect_timeout", "10");
}

START_TEST(deadline_on_a_stopped_backend)
{
    enum { TRIES = 20 };
    double over[TRIES], t0, dt;
    char m[SPOTDB_UUID_SIZE], ver[32];
    int reads = 0, writes = 0, unknown_stored = 0;

    OK(model_create(db, m, "Stopped", "v0"));
    OK(spotdb_set_call_timeout(db, 300));
    for (int i = 0; i < TRIES; i++) {
        int write = i % 4 == 3;
        int pid, rc;

        snprintf(ver, sizeof ver, "v%d", i + 1);
        /* the statement is prepared on this connection first, so the
         * timed call is the one round trip */
        if (write)
            OK(model_create(db, NULL, "Warm", ver));
        else
            OK(model_touch(db, m));
        pid = backend_pid(db);
        ck_assert_int_eq(kill(pid, SIGSTOP), 0);
        stopped_pid = pid;
        t0 = th_now_s();
        rc = write ? model_create(db, NULL, "Stopped", ver)
                   : model_touch(db, m);
        dt = ms_since(t0);
        kill(pid, SIGCONT);
        stopped_pid = 0;
        over[i] = dt - 300;
        ck_assert_msg(rc == (write ? SPOTDB_EUNKNOWN : SPOTDB_ETIMEOUT),
                      "try %d (%s) -> %d (%s): %s", i,
                      write ? "write" : "read", rc, spotdb_strerror(rc),
                      spotdb_errmsg(db));
        ck_assert_msg(dt >= 295, "try %d: returned after %.1f ms", i, dt);
        ck_assert_msg(over[i] < bound_ms(100, 3000),
                      "try %d: returned after %.1f ms (overshoot %.1f)", i,
                      dt, over[i]);
        /* the next call works, on a new connection with the same
         * settings */
        OK(model_touch(db, m));
        ck_assert_int_ne(backend_pid(db), pid);
        check_defaults(db->conn);
        if (write) {
            /* the abandoned write may still commit once the backend
             * runs again: wait until it has gone */
            double w = th_now_s();

            while (qn("SELECT count(*) FROM pg_stat_activity WHERE pid = "
                      "%d", pid) != 0 && ms_since(w) < 10000)
                sleep_us(1000);
            unknown_stored += (int)qn("SELECT count(*) FROM model_registry"
                                      " WHERE name = 'Stopped' AND version"
                                      " = '%s'", ver);
            writes++;
        } else {
            reads++;
        }
    }
    qsort(over, TRIES, sizeof *over, cmp_double);
    fprintf(stderr, "test_faults: deadline 300 ms on a SIGSTOPped backend, "
            "%d tries (%d reads -> ETIMEOUT, %d writes -> EUNKNOWN, %d of "
            "them stored after SIGCONT): overshoot median %.1f ms, max %.1f "
            "ms\n", TRIES, reads, writes, unknown_stored,
            (over[TRIES / 2 - 1] + over[TRIES / 2]) / 2, over[TRIES - 1]);
}
END_TEST

START_TEST(keepalive_and_timeout_defaults)
{
    spotdb_open_options o = SPOTDB_OPEN_OPTIONS_INIT;
    char ci[4096];
    spotdb_db *h;

    check_defaults(db->conn);
    /* what the settings say wins */
    ck_assert_int_lt(snprintf(ci, sizeof ci, "%s keepalives_idle=7 "
                              "tcp_user_timeout=4000", th_db_conninfo()),
                     (int)sizeof ci);
    h = open_victim(ci, NULL);
    check_setting(h->conn, "keepalives_idle", "7");
    check_setting(h->conn, "tcp_user_timeout", "4000");
    check_setting(h->conn, "keepalives_interval", "1");
    check_setting(h->conn, "keepalives_count", "3");
    spotdb_close(h);
    /* and the connect_timeout option */
    o.connect_timeout_s = 4;
    h = open_victim(NULL, &o);
    check_setting(h->conn, "connect_timeout", "4");
    check_setting(h->conn, "keepalives_idle", "5");
    spotdb_close(h);
    /* a reconnection keeps them */
    kill_backend(pg, backend_pid(db));
    OK(model_create(db, NULL, "Reconnected", "v1"));
    check_defaults(db->conn);
}
END_TEST

/* ======================================================================== */
/* 5. cancel                                                                */
/* ======================================================================== */

typedef struct canceller {
    spotdb_db *h;
    long delay_us;
    int rc;
    double at;
    pthread_t thread;
} canceller;

static void *canceller_main(void *p)
{
    canceller *c = p;

    sleep_us(c->delay_us);
    c->at = th_now_s();
    c->rc = spotdb_cancel(c->h);
    return NULL;
}

START_TEST(cancel_a_blocked_call)
{
    char m[SPOTDB_UUID_SIZE];
    canceller c = { NULL, 200000, 99, 0, 0 };
    double t0, dt, lag;
    int pid, rc;

    OK(model_create(db, m, "Cancelled", "v1"));
    pid = backend_pid(db);
    lock_row(pg, m);
    c.h = db;
    t0 = th_now_s();
    ck_assert_int_eq(pthread_create(&c.thread, NULL, canceller_main, &c), 0);
    rc = model_describe(db, m, "never");
    dt = ms_since(t0);
    pthread_join(c.thread, NULL);
    lag = dt - (c.at - t0) * 1000.0;
    th_exec(pg, "ROLLBACK");
    EQI(c.rc, 0);
    ck_assert_msg(rc == SPOTDB_ECANCELED, "-> %d (%s): %s", rc,
                  spotdb_strerror(rc), spotdb_errmsg(db));
    ck_assert_msg(dt >= 195 && lag < bound_ms(100, 2000),
                  "returned after %.1f ms, %.1f ms after the cancel", dt,
                  lag);
    EQI(backend_pid(db), pid);
    qeq(NULL, "SELECT description FROM model_registry WHERE id = '%s'", m);
    OK(model_describe(db, m, "later"));
    EQI(backend_pid(db), pid);

    /* nothing running: delivered, ignored, the handle goes on */
    OK(spotdb_cancel(db));
    sleep_us(20000);
    OK(model_touch(db, m));
    OK(model_describe(db, m, "again"));
    EQI(backend_pid(db), pid);
    EQI(spotdb_cancel(NULL), SPOTDB_EINVAL);

    /* inside a transaction: rolled back */
    lock_row(pg, m);
    OK(spotdb_begin(db));
    OK(model_create(db, NULL, "CancelledTxn", "v1"));
    c.rc = 99;
    ck_assert_int_eq(pthread_create(&c.thread, NULL, canceller_main, &c), 0);
    rc = model_describe(db, m, "never");
    pthread_join(c.thread, NULL);
    th_exec(pg, "ROLLBACK");
    EQI(c.rc, 0);
    EQI(rc, SPOTDB_ECANCELED);
    spotdb_rollback(db);
    EQI(spotdb_in_transaction(db), 0);
    EQI(qn("SELECT count(*) FROM model_registry WHERE name = "
           "'CancelledTxn'"), 0);
    OK(model_touch(db, m));
    EQI(backend_pid(db), pid);
    fprintf(stderr, "test_faults: cancel after 200 ms of a blocked call: "
            "SPOTDB_ECANCELED after %.1f ms (%.1f ms after the cancel), same"
            " backend\n", dt, lag);
}
END_TEST

typedef struct storm {
    spotdb_db *h;
    int n;
    unsigned seed;
    atomic_int done;
    int delivered, failed, bad_rc;
    pthread_t thread;
} storm;

static void *storm_main(void *p)
{
    storm *s = p;

    for (int i = 0; i < s->n; i++) {
        int rc;

        sleep_us((long)(rand_r(&s->seed) % 3000));
        rc = spotdb_cancel(s->h);
        if (rc == 0) {
            s->delivered++;
        } else {
            s->failed++;
            s->bad_rc = rc;
        }
    }
    atomic_store(&s->done, 1);
    return NULL;
}

START_TEST(cancel_storm)
{
    size_t nlogs = th_under_valgrind() ? 2000 : 20000;
    spotdb_experiment_log *rows = tcalloc(nlogs, sizeof *rows);
    char m[SPOTDB_UUID_SIZE], ver[32];
    enum { MAXC = 100000 };
    signed char *created = tcalloc(MAXC, 1);    /* 1 ok, -1 cancelled */
    long calls = 0, cancelled = 0, creates = 0, bad = 0, bad_rc = 0;
    storm s;
    int pid;

    base_rows();
    /* a read that takes a few milliseconds, for cancels to land in */
    for (size_t i = 0; i < nlogs; i++) {
        copy_id(rows[i].instance_id, g_inst);
        rows[i].decision = i % 2 ? "SWITCH" : "STAY";
    }
    OK(spotdb_experiment_log_insert_many(db, rows, nlogs,
                                         SPOTDB_EXPERIMENT_LOG_INSTANCE_ID |
                                         SPOTDB_EXPERIMENT_LOG_DECISION,
                                         NULL, NULL));
    tfree(rows);
    OK(model_create(db, m, "Storm", "v-base"));
    pid = backend_pid(db);
    memset(&s, 0, sizeof s);
    s.h = db;
    s.n = 200;
    s.seed = test_seed("cancel_storm");
    atomic_init(&s.done, 0);
    ck_assert_int_eq(pthread_create(&s.thread, NULL, storm_main, &s), 0);
    while (!atomic_load(&s.done) && calls < MAXC) {
        int op = (int)(calls % 4), rc;
        int64_t n;

        switch (op) {
        case 0:
            rc = model_touch(db, m);
            break;
        case 1:
            rc = spotdb_experiment_log_count(&n, db, NULL);
            break;
        case 2:
            snprintf(ver, sizeof ver, "v%ld", calls);
            rc = model_create(db, NULL, "Storm", ver);
            created[calls] = rc == 0 ? 1 : -1;
            creates++;
            break;
        default:
            rc = model_describe(db, m, "storm");
            break;
        }
        if (rc == SPOTDB_ECANCELED) {
            cancelled++;
        } else if (rc != 0 && bad++ == 0) {
            bad_rc = rc;
            fprintf(stderr, "test_faults: cancel storm: call %ld -> %d (%s):"
                    " %s\n", calls, rc, spotdb_strerror(rc),
                    spotdb_errmsg(db));
        }
        calls++;
    }
    pthread_join(s.thread, NULL);
    ck_assert_msg(bad == 0, "%ld calls returned neither 0 nor "
                  "SPOTDB_ECANCELED (first: %ld)", bad, bad_rc);
    ck_assert_msg(s.failed == 0, "%d cancels not delivered (%d)", s.failed,
                  s.bad_rc);
    ck_assert_msg(cancelled > 0, "no call cancelled in %ld calls", calls);
    /* a cancelled create stored nothing; a successful one, its row */
    for (long i = 0; i < calls; i++) {
        if (!created[i])
            continue;
        EQI(qn("SELECT count(*) FROM model_registry WHERE name = 'Storm' "
               "AND version = 'v%ld'", i), created[i] > 0 ? 1 : 0);
    }
    OK(model_touch(db, m));
    EQI(backend_pid(db), pid);
    fprintf(stderr, "test_faults: cancel storm: %d cancels delivered during "
            "%ld calls: %ld cancelled, %ld succeeded, %ld creates checked, "
            "same backend\n", s.delivered, calls, cancelled,
            calls - cancelled, creates);
    tfree(created);
}
END_TEST

/* ======================================================================== */
/* 6. the transaction runner                                                */
/* ======================================================================== */

typedef struct runner_arg {
    spotdb_db *h;
    const char *mine;           /* write skew: the row this one retires */
    const char *first, *second; /* deadlock: the rows in this one's order */
    const char *tag;
    pthread_barrier_t *barrier;
    spotdb_retry_options opts;
    int runs, in_txn;
    int rc;
    int32_t attempts;
    pthread_t thread;
} runner_arg;

/* Write skew: two models on duty; each one reads how many are, and retires
 * its own when both are.  Serially, one stays on duty. */
static int skew_body(spotdb_db *h, void *payload)
{
    runner_arg *a = payload;
    bool active = true;
    spotdb_model_filter f = SPOTDB_MODEL_FILTER_INIT;
    spotdb_model in;
    int64_t n = 0;
    int rc;

    a->runs++;
    a->in_txn &= spotdb_in_transaction(h);
    f.is_active = &active;
    if ((rc = spotdb_model_count(&n, h, &f)) != 0)
        return rc;
    if (a->runs == 1)
        pthread_barrier_wait(a->barrier);
    if (n < 2)
        return 0;
    memset(&in, 0, sizeof in);
    in.is_active = false;
    return spotdb_model_update(NULL, h, a->mine, &in,
                               SPOTDB_MODEL_IS_ACTIVE);
}

/* Deadlock: update both rows, in opposite orders in the two threads. */
static int deadlock_body(spotdb_db *h, void *payload)
{
    runner_arg *a = payload;
    int rc;

    a->runs++;
    a->in_txn &= spotdb_in_transaction(h);
    if ((rc = model_describe(h, a->first, a->tag)) != 0)
        return rc;
    if (a->runs == 1)
        pthread_barrier_wait(a->barrier);
    return model_describe(h, a->second, a->tag);
}

typedef struct runner_job {
    runner_arg *arg;
    spotdb_transaction_fn fn;
} runner_job;

static void *runner_main(void *p)
{
    runner_job *j = p;

    j->arg->rc = spotdb_run_transaction(j->arg->h, j->fn, j->arg,
                                        &j->arg->opts, &j->arg->attempts);
    return NULL;
}

/* Run fn in two threads on two handles; a[0] and a[1] are filled by the
 * caller (h, rows, tag, opts). */
static void run_pair(runner_arg a[2], spotdb_transaction_fn fn)
{
    pthread_barrier_t barrier;
    runner_job j[2] = { { &a[0], fn }, { &a[1], fn } };

    pthread_barrier_init(&barrier, NULL, 2);
    for (int i = 0; i < 2; i++) {
        a[i].barrier = &barrier;
        a[i].runs = 0;
        a[i].in_txn = 1;
        a[i].rc = 99;
        a[i].attempts = -1;
        ck_assert_int_eq(pthread_create(&a[i].thread, NULL, runner_main,
                                        &j[i]), 0);
    }
    for (int i = 0; i < 2; i++)
        pthread_join(a[i].thread, NULL);
    pthread_barrier_destroy(&barrier);
    for (int i = 0; i < 2; i++)
        ck_assert_msg(a[i].in_txn, "thread %d: body ran outside a "
                      "transaction", i);
}

START_TEST(retry_runner_write_skew)
{
    char ma[SPOTDB_UUID_SIZE], mb[SPOTDB_UUID_SIZE];
    spotdb_db *h2 = open_victim(NULL, NULL);
    runner_arg a[2];

    OK(model_create(db, ma, "OnDuty", "a"));
    OK(model_create(db, mb, "OnDuty", "b"));
    memset(a, 0, sizeof a);
    a[0].h = db;
    a[0].mine = ma;
    a[1].h = h2;
    a[1].mine = mb;
    for (int i = 0; i < 2; i++) {
        OK(spotdb_retry_options_init(&a[i].opts,
                                     SPOTDB_RETRY_OPTIONS_VERSION));
        a[i].opts.isolation = "serializable";
    }
    run_pair(a, skew_body);
    for (int i = 0; i < 2; i++)
        ck_assert_msg(a[i].rc == 0, "thread %d -> %d (%s)", i, a[i].rc,
                      spotdb_strerror(a[i].rc));
    ck_assert_msg(a[0].attempts + a[1].attempts >= 3,
                  "attempts %d and %d: no serialization failure",
                  a[0].attempts, a[1].attempts);
    EQI(a[0].attempts, a[0].runs);
    EQI(a[1].attempts, a[1].runs);
    /* serially one retires, the other stays */
    EQI(qn("SELECT count(*) FROM model_registry WHERE name = 'OnDuty' AND "
           "is_active"), 1);
    fprintf(stderr, "test_faults: write skew under serializable: both "
            "committed after %d and %d attempts, 1 of 2 still on duty\n",
            a[0].attempts, a[1].attempts);

    /* one attempt only: the conflict surfaces */
    th_exec(pg, "UPDATE model_registry SET is_active = true");
    a[0].opts.max_attempts = a[1].opts.max_attempts = 1;
    run_pair(a, skew_body);
    ck_assert_msg((a[0].rc == 0 && a[1].rc == SPOTDB_ESERIALIZATION) ||
                  (a[1].rc == 0 && a[0].rc == SPOTDB_ESERIALIZATION) ||
                  (a[0].rc == SPOTDB_ESERIALIZATION &&
                   a[1].rc == SPOTDB_ESERIALIZATION),
                  "max_attempts 1: %d and %d", a[0].rc, a[1].rc);
    EQI(a[0].attempts, 1);
    EQI(a[1].attempts, 1);
    ck_assert_int_ge(qn("SELECT count(*) FROM model_registry WHERE name = "
                        "'OnDuty' AND is_active"), 1);
    EQI(spotdb_in_transaction(db), 0);
    EQI(spotdb_in_transaction(h2), 0);
    OK(model_touch(db, ma));
    OK_ON(h2, model_touch(h2, mb));
    spotdb_close(h2);
}
END_TEST

START_TEST(retry_runner_deadlock)
{
    char ma[SPOTDB_UUID_SIZE], mb[SPOTDB_UUID_SIZE];
    spotdb_db *h2;
    runner_arg a[2];
    double t0;

    /* deadlock detection after 100 ms instead of 1 s (the test user is a
     * superuser, as the harness's databases need) */
    {
        char sql[160];

        snprintf(sql, sizeof sql, "ALTER DATABASE %s SET deadlock_timeout "
                 "= '100ms'", th_db_name());
        th_exec(pg, sql);
    }
    spotdb_close(db);
    db = open_victim(NULL, NULL);
    h2 = open_victim(NULL, NULL);
    OK(model_create(db, ma, "Deadlock", "a"));
    OK(model_create(db, mb, "Deadlock", "b"));
    memset(a, 0, sizeof a);
    a[0].h = db;
    a[0].first = ma;
    a[0].second = mb;
    a[0].tag = "first";
    a[1].h = h2;
    a[1].first = mb;
    a[1].second = ma;
    a[1].tag = "second";
    a[0].opts = (spotdb_retry_options)SPOTDB_RETRY_OPTIONS_INIT;
    a[1].opts = a[0].opts;
    t0 = th_now_s();
    run_pair(a, deadlock_body);
    for (int i = 0; i < 2; i++)
        ck_assert_msg(a[i].rc == 0, "thread %d -> %d (%s)", i, a[i].rc,
                      spotdb_strerror(a[i].rc));
    ck_assert_msg(a[0].attempts + a[1].attempts >= 3,
                  "attempts %d and %d: no deadlock", a[0].attempts,
                  a[1].attempts);
    /* the one that ran last wrote both rows */
    EQI(qn("SELECT count(DISTINCT description) FROM model_registry WHERE "
           "name = 'Deadlock'"), 1);
    qeq(a[0].attempts > 1 ? "first" : "second",
        "SELECT description FROM model_registry WHERE id = '%s'", ma);
    fprintf(stderr, "test_faults: deadlock: both committed after %d and %d "
            "attempts in %.0f ms, rows consistent\n", a[0].attempts,
            a[1].attempts, ms_since(t0));

    a[0].opts.max_attempts = a[1].opts.max_attempts = 1;
    run_pair(a, deadlock_body);
    ck_assert_msg((a[0].rc == 0 && a[1].rc == SPOTDB_ESERIALIZATION) ||
                  (a[1].rc == 0 && a[0].rc == SPOTDB_ESERIALIZATION),
                  "max_attempts 1: %d and %d", a[0].rc, a[1].rc);
    EQI(qn("SELECT count(DISTINCT description) FROM model_registry WHERE "
           "name = 'Deadlock'"), 1);
    EQI(spotdb_in_transaction(db), 0);
    EQI(spotdb_in_transaction(h2), 0);
    spotdb_close(h2);
}
END_TEST

typedef struct timed_body {
    double at[8];
    int runs;
    int rc;
    const char *name;
} timed_body;

static int timed(spotdb_db *h, void *payload)
{
    timed_body *t = payload;
    int rc;

    if (t->runs < 8)
        t->at[t->runs] = th_now_s();
    t->runs++;
    if (t->name && (rc = model_create(h, NULL, t->name, "v1")) != 0)
        return rc;
    return t->rc;
}

START_TEST(retry_runner_rules)
{
    spotdb_retry_options o = SPOTDB_RETRY_OPTIONS_INIT;
    timed_body t;
    int32_t attempts = -1;
    double spread_lo = 1, spread_hi = 0;

    /* the body's own code: rolled back, returned unchanged, not retried */
    memset(&t, 0, sizeof t);
    t.name = "Body";
    t.rc = 42;
    EQI(spotdb_run_transaction(db, timed, &t, NULL, &attempts), 42);
    EQI(attempts, 1);
    EQI(t.runs, 1);
    EQI(qn("SELECT count(*) FROM model_registry"), 0);
    EQI(spotdb_in_transaction(db), 0);
    t.runs = 0;
    t.rc = SPOTDB_ENOTFOUND;
    EQI(spotdb_run_transaction(db, timed, &t, NULL, NULL), SPOTDB_ENOTFOUND);
    EQI(t.runs, 1);
    /* a call's failure inside, too: a conflict is not retried */
    OK(model_create(db, NULL, "Taken", "v1"));
    t.runs = 0;
    t.name = "Taken";
    t.rc = 0;
    EQI(spotdb_run_transaction(db, timed, &t, NULL, &attempts),
        SPOTDB_ECONFLICT);
    EQI(attempts, 1);
    /* success commits */
    t.runs = 0;
    t.name = "Committed";
    OK(spotdb_run_transaction(db, timed, &t, NULL, &attempts));
    EQI(attempts, 1);
    EQI(qn("SELECT count(*) FROM model_registry WHERE name = 'Committed'"),
        1);

    /* nesting */
    OK(spotdb_begin(db));
    t.runs = 0;
    FAILS(SPOTDB_EINVAL, NULL,
          spotdb_run_transaction(db, timed, &t, NULL, NULL));
    EQI(t.runs, 0);
    EQI(spotdb_in_transaction(db), 1);
    OK(spotdb_rollback(db));
    /* arguments */
    EQI(spotdb_run_transaction(NULL, timed, &t, NULL, NULL), SPOTDB_EINVAL);
    FAILS(SPOTDB_EINVAL, NULL,
          spotdb_run_transaction(db, NULL, &t, NULL, NULL));
    o.isolation = "chaos";
    FAILS(SPOTDB_EINVAL, NULL, spotdb_run_transaction(db, timed, &t, &o,
                                                      NULL));
    o = (spotdb_retry_options)SPOTDB_RETRY_OPTIONS_INIT;
    o.max_attempts = -1;
    FAILS(SPOTDB_EINVAL, NULL, spotdb_run_transaction(db, timed, &t, &o,
                                                      NULL));
    EQI(spotdb_retry_options_init(NULL, SPOTDB_RETRY_OPTIONS_VERSION),
        SPOTDB_EINVAL);
    EQI(spotdb_retry_options_init(&o, 999), SPOTDB_EINVAL);

    /* delays: 20, 40, then capped at 40 ms, each drawn in [half, all] */
    for (int run = 0; run < 3; run++) {
        static const double expect[] = { 20, 40, 40 };

        o = (spotdb_retry_options)SPOTDB_RETRY_OPTIONS_INIT;
        o.max_attempts = 4;
        o.base_delay_ms = 20;
        o.max_delay_ms = 40;
        memset(&t, 0, sizeof t);
        t.rc = SPOTDB_ESERIALIZATION;
        EQI(spotdb_run_transaction(db, timed, &t, &o, &attempts),
            SPOTDB_ESERIALIZATION);
        EQI(attempts, 4);
        EQI(t.runs, 4);
        for (int k = 0; k < 3; k++) {
            double d = (t.at[k + 1] - t.at[k]) * 1000.0;
            double f = d / expect[k];

            ck_assert_msg(d >= expect[k] / 2 - 1 &&
                          d < expect[k] + bound_ms(25, 500),
                          "run %d, delay %d: %.1f ms, expected %.0f..%.0f",
                          run, k + 1, d, expect[k] / 2, expect[k]);
            spread_lo = f < spread_lo ? f : spread_lo;
            spread_hi = f > spread_hi ? f : spread_hi;
        }
    }
    /* jittered: nine draws are not all the same fraction */
    ck_assert_msg(spread_hi - spread_lo > 0.05, "delays not jittered: "
                  "%.3f..%.3f of the nominal delay", spread_lo, spread_hi);
    EQI(spotdb_in_transaction(db), 0);
    fprintf(stderr, "test_faults: retry delays 20/40/40 ms drawn at %.2f.."
            "%.2f of nominal over 9 delays\n", spread_lo, spread_hi);
}
END_TEST

/* ======================================================================== */

static Suite *faults_suite(void)
{
    Suite *s = suite_create("faults");
    TCase *tc;

#define ADD(name)                                                            \
    do {                                                                     \
        tc = tcase_create(#name);                                            \
        tcase_add_checked_fixture(tc, setup, teardown);                      \
        tcase_set_timeout(tc, 120);                                          \
        tcase_add_test(tc, name);                                            \
        suite_add_tcase(s, tc);                                              \
    } while (0)
    ADD(killed_between_calls);
    ADD(killed_just_before_calls);
    ADD(killed_around_commit);
    ADD(autocommit_creates_killed);
    ADD(copy_killed_midway_stores_nothing);
    ADD(transaction_killed_before_commit_stores_nothing);
    ADD(deadline_on_a_lock);
    ADD(deadline_on_a_stopped_backend);
    ADD(keepalive_and_timeout_defaults);
    ADD(cancel_a_blocked_call);
    ADD(cancel_storm);
    ADD(retry_runner_write_skew);
    ADD(retry_runner_deadlock);
    ADD(retry_runner_rules);
#undef ADD
    return s;
}

int main(void)
{
    return th_run(faults_suite());
}
