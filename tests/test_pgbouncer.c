/*
 * The library behind PgBouncer in transaction pooling mode (issue 6).
 *
 * main() starts a PgBouncer of its own with tools/pg-scaleout (pool of 2
 * server connections per database, in front of the private server that
 * tools/run starts) and stops it at the end.  The cases:
 * - ten threads, each with its own handle through PgBouncer and default
 *   options (pooler detected at open), run 1,000 mixed CRUD, view and
 *   report operations each: no error, every read checked against what
 *   the thread wrote, the rows checked again from a direct connection,
 *   and never more than 2 server sessions;
 * - spotdb_pooled() through PgBouncer and directly, and the trace showing
 *   that a pooled handle only ever runs unnamed statements;
 * - migrations refused through the pooler, by the call and by the CLI,
 *   the database left untouched;
 * - no session state left behind: the database's own TimeZone is not
 *   UTC, the library's rows still mean UTC, and other clients of the
 *   same server sessions still see the database's TimeZone, no prepared
 *   statement and no advisory lock;
 * - controls proving the danger is real: the same workload with named
 *   prepared statements and the pooler ignored fails, and a plain
 *   session SET and session advisory lock leak to other clients.
 *
 * SPOTDB_SCALEOUT_OPS (default 1000) sets the operations per thread.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "spotdb/spotdb.h"
#include "spotdb/trace.h"

#define WORKERS 10
#define POOL_SIZE 2
#define RECENT 20

/* ---- tools/pg-scaleout --------------------------------------------------- */

static char scaleout_dir[64];

/* Conninfo of database `dbname` through PgBouncer (static storage). */
static const char *pgb_conninfo(const char *dbname)
{
    static char buf[512];

    snprintf(buf, sizeof buf, "host=%s port=%s user=postgres dbname=%s",
             getenv("SPOTDB_PGB_SOCKET"), getenv("SPOTDB_PGB_PORT"), dbname);
    return buf;
}

static int ops_per_worker(void)
{
    const char *v = getenv("SPOTDB_SCALEOUT_OPS");
    int n = v ? atoi(v) : 0;

    return n > 0 ? n : 1000;
}

/* ---- the workload -------------------------------------------------------- */

typedef struct worker {
    int index;
    int ops;
    const spotdb_open_options *opts;  /* NULL: defaults (detection) */
    char conninfo[512];
    char instance[SPOTDB_UUID_SIZE];  /* instances.id */
    char model[SPOTDB_UUID_SIZE];
    char model_name[32];
    /* outcome */
    int errors;          /* calls that failed */
    int prepared_errors; /* ... naming a prepared statement */
    int mismatches;      /* reads that disagree with the thread's writes */
    int pooled;
    char first[320];
    char first_mismatch[160];
    int64_t logs;        /* logs of this thread's instance */
    int64_t last_eval;   /* its last_evaluation as last written */
    char (*ids)[SPOTDB_UUID_SIZE]; /* ids of live logs, oldest first */
    size_t head;
} worker;

static void note_error(worker *w, spotdb_db *db, const char *what, int rc)
{
    const char *msg = spotdb_errmsg(db);

    w->errors++;
    if (strstr(msg, "prepared statement"))
        w->prepared_errors++;
    if (!w->first[0])
        snprintf(w->first, sizeof w->first, "worker %d, %s: %s: %s",
                 w->index, what, spotdb_strerror(rc), msg);
}

static void mismatch(worker *w, const char *what)
{
    w->mismatches++;
    if (!w->first_mismatch[0])
        snprintf(w->first_mismatch, sizeof w->first_mismatch, "%s", what);
    if (!w->first[0])
        snprintf(w->first, sizeof w->first, "worker %d: %s", w->index, what);
}

#define CALL(what, call)                                                     \
    do {                                                                     \
        int rc_ = (call);                                                    \
        if (rc_ != 0) {                                                      \
            note_error(w, db, what, rc_);                                    \
            goto out;                                                        \
        }                                                                    \
    } while (0)

static void op_create_log(worker *w, spotdb_db *db, int i, bool in_tx)
{
    spotdb_experiment_log in, *e = NULL;

    memset(&in, 0, sizeof in);
    memcpy(in.instance_id, w->instance, SPOTDB_UUID_SIZE);
    memcpy(in.model_id, w->model, SPOTDB_UUID_SIZE);
    in.decision = i % 3 ? "STAY" : "SWITCH";
    in.prediction_score = (i % 100) / 100.0;
    in.execution_time = spotdb_now_us();
    in.projected_hourly_savings = 0.001 * (i % 7);
    CALL("creating a log",
         spotdb_experiment_log_create(&e, db, &in,
             SPOTDB_EXPERIMENT_LOG_INSTANCE_ID |
             SPOTDB_EXPERIMENT_LOG_MODEL_ID | SPOTDB_EXPERIMENT_LOG_DECISION |
             SPOTDB_EXPERIMENT_LOG_PREDICTION_SCORE |
             SPOTDB_EXPERIMENT_LOG_EXECUTION_TIME |
             SPOTDB_EXPERIMENT_LOG_PROJECTED_HOURLY_SAVINGS));
    if (strcmp(e->instance_id, w->instance) != 0)
        mismatch(w, "a created log names another instance");
    memcpy(w->ids[w->logs + (int64_t)w->head], e->id, SPOTDB_UUID_SIZE);
    if (!in_tx)
        w->logs++;
out:
    spotdb_experiment_log_free(e);
}

static void op_get_instance(worker *w, spotdb_db *db)
{
    spotdb_instance *inst = NULL;

    CALL("reading the instance", spotdb_instance_get(&inst, db, w->instance));
    if (strcmp(inst->id, w->instance) != 0 ||
        (w->last_eval == 0
             ? !(inst->nulls & SPOTDB_INSTANCE_LAST_EVALUATION)
             : inst->last_evaluation != w->last_eval))
        mismatch(w, "the instance read back differs from the last write");
out:
    spotdb_instance_free(inst);
}

static int update_eval(worker *w, spotdb_db *db, int64_t *eval)
{
    spotdb_instance ch;

    memset(&ch, 0, sizeof ch);
    ch.last_evaluation = *eval = spotdb_now_us();
    return spotdb_instance_update(NULL, db, w->instance, &ch,
                                  SPOTDB_INSTANCE_LAST_EVALUATION);
}

static void op_update_instance(worker *w, spotdb_db *db)
{
    int64_t eval;

    CALL("updating the instance", update_eval(w, db, &eval));
    w->last_eval = eval;
out:
    return;
}

static void op_list_logs(worker *w, spotdb_db *db)
{
    spotdb_experiment_log_filter f = SPOTDB_EXPERIMENT_LOG_FILTER_INIT;
    spotdb_experiment_log_rows *r = NULL;
    int64_t want = w->logs < RECENT ? w->logs : RECENT;

    f.instance_id = w->instance;
    CALL("listing logs", spotdb_experiment_log_list(&r, db, &f, NULL, RECENT));
    if ((int64_t)r->count != want)
        mismatch(w, "a list of the thread's logs has the wrong length");
    for (size_t k = 0; k < r->count; k++)
        if (strcmp(r->items[k].instance_id, w->instance) != 0)
            mismatch(w, "a list of the thread's logs holds another's");
out:
    spotdb_experiment_log_rows_free(r);
}

static void op_count_logs(worker *w, spotdb_db *db)
{
    spotdb_experiment_log_filter f = SPOTDB_EXPERIMENT_LOG_FILTER_INIT;
    int64_t n = -1;

    f.instance_id = w->instance;
    CALL("counting logs", spotdb_experiment_log_count(&n, db, &f));
    if (n != w->logs)
        mismatch(w, "the count of the thread's logs is wrong");
out:
    return;
}

static void op_active_view(worker *w, spotdb_db *db)
{
    spotdb_active_instance_rows *r = NULL;
    int seen = 0;

    CALL("listing active instances",
         spotdb_active_instance_list(&r, db, NULL, 0));
    for (size_t k = 0; k < r->count; k++)
        if (strcmp(r->items[k].id, w->instance) == 0)
            seen += r->items[k].model_name &&
                    strcmp(r->items[k].model_name, w->model_name) == 0;
    if (seen != 1)
        mismatch(w, "the thread's instance is not once in v_active_instances");
out:
    spotdb_active_instance_rows_free(r);
}

static void op_recent_view(worker *w, spotdb_db *db)
{
    spotdb_recent_experiment_rows *r = NULL;

    CALL("listing recent experiments",
         spotdb_recent_experiment_list(&r, db, NULL, RECENT));
    if (r->count > RECENT)
        mismatch(w, "v_recent_experiments returned more than the limit");
out:
    spotdb_recent_experiment_rows_free(r);
}

static void op_report(worker *w, spotdb_db *db)
{
    spotdb_model_performance_rows *r = NULL;
    int64_t runs = 0;

    CALL("reading the model report",
         spotdb_model_performance_list(&r, db, NULL));
    for (size_t k = 0; k < r->count; k++)
        if (strcmp(r->items[k].model_name, w->model_name) == 0)
            runs = r->items[k].runs;
    if (runs != w->logs)
        mismatch(w, "the report counts another number of the thread's runs");
out:
    spotdb_model_performance_rows_free(r);
}

/* A transaction: a log and an instance update commit together (through a
 * pooler, both run on the one server session the transaction holds). */
static void op_transaction(worker *w, spotdb_db *db, int i)
{
    int64_t eval;
    int64_t before = w->errors;

    CALL("begin", spotdb_begin(db));
    op_create_log(w, db, i, true);
    if (w->errors != before) {
        spotdb_rollback(db);
        return;
    }
    CALL("updating in a transaction", update_eval(w, db, &eval));
    CALL("commit", spotdb_commit(db));
    w->logs++;
    w->last_eval = eval;
    return;
out:
    spotdb_rollback(db);
}

static void op_delete_oldest_log(worker *w, spotdb_db *db)
{
    if (w->logs == 0)
        return;
    CALL("deleting a log", spotdb_experiment_log_delete(db, w->ids[w->head]));
    w->head++;
    w->logs--;
out:
    return;
}

/* Another tenant comes and goes: a user, its account, the cascade. */
static void op_tenant_round_trip(worker *w, spotdb_db *db, int i)
{
    spotdb_user in, *u = NULL;
    spotdb_account a, *acct = NULL, *again = NULL;
    char name[40], email[64], aws[32], arn[64];

    snprintf(name, sizeof name, "tenant_%d_%d", w->index, i);
    snprintf(email, sizeof email, "%s@example.com", name);
    snprintf(aws, sizeof aws, "5%02d%09d", w->index, i);
    snprintf(arn, sizeof arn, "arn:aws:iam::%s:role/spot", aws);
    memset(&in, 0, sizeof in);
    in.email = email;
    in.username = name;
    CALL("creating a user",
         spotdb_user_create(&u, db, &in,
                            SPOTDB_USER_EMAIL | SPOTDB_USER_USERNAME,
                            "pooled password"));
    memset(&a, 0, sizeof a);
    a.account_id = aws;
    a.account_name = name;
    a.role_arn = arn;
    a.external_id = "ext";
    CALL("creating an account",
         spotdb_account_create_for_username(&acct, db, name, &a,
             SPOTDB_ACCOUNT_ACCOUNT_ID | SPOTDB_ACCOUNT_ACCOUNT_NAME |
             SPOTDB_ACCOUNT_ROLE_ARN | SPOTDB_ACCOUNT_EXTERNAL_ID));
    CALL("reading the account",
         spotdb_account_get_by_account_id(&again, db, aws));
    if (strcmp(again->user_id, u->id) != 0)
        mismatch(w, "an account read back names another owner");
    CALL("deleting the user", spotdb_user_delete(db, u->id));
out:
    spotdb_account_free(again);
    spotdb_account_free(acct);
    spotdb_user_free(u);
}

static void run_op(worker *w, spotdb_db *db, int i)
{
    switch (i % 10) {
    case 0: case 5: op_create_log(w, db, i, false); break;
    case 1: op_get_instance(w, db); break;
    case 2: op_update_instance(w, db); break;
    case 3: op_list_logs(w, db); break;
    case 4: op_count_logs(w, db); break;
    case 6: op_active_view(w, db); break;
    case 7: op_transaction(w, db, i); break;
    case 8:
        if (i % 20 == 8)
            op_recent_view(w, db);
        else
            op_report(w, db);
        break;
    default:
        if (i % 100 == 99)
            op_tenant_round_trip(w, db, i);
        else
            op_delete_oldest_log(w, db);
        break;
    }
}

/* Client sessions on the test database other than the asking one (not
 * autovacuum, which visits it under this load). */
#define SESSIONS                                                             \
    "SELECT count(*) FROM pg_stat_activity WHERE datname = "                 \
    "current_database() AND pid <> pg_backend_pid() AND backend_type = "     \
    "'client backend'"

/* The same, with each session's pid, state and start. */
#define SESSIONS_SEEN                                                        \
    "SELECT count(*) || ': ' || coalesce(string_agg(pid || ' ' || "          \
    "coalesce(state, '?') || ' since ' || backend_start::time, ', '), '') "  \
    "FROM pg_stat_activity WHERE datname = current_database() "              \
    "AND pid <> pg_backend_pid() AND backend_type = 'client backend'"

static atomic_int workers_done;

static void *work(void *arg)
{
    worker *w = arg;
    spotdb_db *db = NULL;
    int rc = spotdb_open(&db, w->conninfo, w->opts);

    if (rc != 0) {
        w->errors++;
        snprintf(w->first, sizeof w->first, "worker %d, open: %s", w->index,
                 spotdb_last_errmsg());
    } else {
        w->pooled = spotdb_pooled(db);
        for (int i = 0; i < w->ops; i++)
            run_op(w, db, i);
        spotdb_close(db);
    }
    atomic_fetch_add(&workers_done, 1);
    return NULL;
}

/* Each worker's model, instance (assigned that model) and owner, made
 * directly, so that the control's workers start from the same place. */
static void prepare_worker(worker *w, spotdb_db *db, int index, int ops)
{
    spotdb_user u, *user = NULL;
    spotdb_account a, *acct = NULL;
    spotdb_model m, *model = NULL;
    spotdb_instance in, *inst = NULL;
    char name[32], email[64], aws[32], arn[64], version[24], ec2[24];
    int rc;

    memset(w, 0, sizeof *w);
    w->index = index;
    w->ops = ops;
    w->ids = calloc((size_t)ops + 1, SPOTDB_UUID_SIZE);
    ck_assert_ptr_nonnull(w->ids);
    snprintf(name, sizeof name, "worker%d", index);
    snprintf(email, sizeof email, "%s@example.com", name);
    snprintf(aws, sizeof aws, "4000000000%02d", index);
    snprintf(arn, sizeof arn, "arn:aws:iam::%s:role/spot", aws);
    snprintf(version, sizeof version, "v%d.0.0", index);
    snprintf(ec2, sizeof ec2, "i-%08x", 0xa0000000u + (unsigned)index);
    snprintf(w->model_name, sizeof w->model_name, "PooledModel%d", index);

    memset(&u, 0, sizeof u);
    u.email = email;
    u.username = name;
    rc = spotdb_user_create(&user, db, &u,
                            SPOTDB_USER_EMAIL | SPOTDB_USER_USERNAME, "pw");
    ck_assert_msg(rc == 0, "user: %s", spotdb_errmsg(db));
    memset(&a, 0, sizeof a);
    a.account_id = aws;
    a.account_name = name;
    a.role_arn = arn;
    a.external_id = "ext";
    rc = spotdb_account_create_for_username(&acct, db, name, &a,
             SPOTDB_ACCOUNT_ACCOUNT_ID | SPOTDB_ACCOUNT_ACCOUNT_NAME |
             SPOTDB_ACCOUNT_ROLE_ARN | SPOTDB_ACCOUNT_EXTERNAL_ID);
    ck_assert_msg(rc == 0, "account: %s", spotdb_errmsg(db));
    memset(&m, 0, sizeof m);
    m.name = w->model_name;
    m.version = version;
    rc = spotdb_model_create(&model, db, &m,
                             SPOTDB_MODEL_NAME | SPOTDB_MODEL_VERSION);
    ck_assert_msg(rc == 0, "model: %s", spotdb_errmsg(db));
    memset(&in, 0, sizeof in);
    in.instance_id = ec2;
    in.instance_type = "c5.large";
    in.availability_zone = "ap-south-1a";
    in.assigned_model_version = version;
    rc = spotdb_instance_create_for_aws_account(&inst, db, aws, &in,
             SPOTDB_INSTANCE_INSTANCE_ID | SPOTDB_INSTANCE_INSTANCE_TYPE |
             SPOTDB_INSTANCE_AVAILABILITY_ZONE |
             SPOTDB_INSTANCE_ASSIGNED_MODEL_VERSION);
    ck_assert_msg(rc == 0, "instance: %s", spotdb_errmsg(db));
    memcpy(w->instance, inst->id, SPOTDB_UUID_SIZE);
    memcpy(w->model, model->id, SPOTDB_UUID_SIZE);
    w->last_eval = 0;
    spotdb_instance_free(inst);
    spotdb_model_free(model);
    spotdb_account_free(acct);
    spotdb_user_free(user);
    snprintf(w->conninfo, sizeof w->conninfo, "%s",
             pgb_conninfo(th_db_name()));
}

typedef struct totals {
    int errors, prepared_errors, mismatches, pooled;
    long ops;
    double seconds;
    long max_sessions;   /* server sessions seen on the test database */
    char sessions_seen[512]; /* which, when there were most */
    char first[320];
    char first_mismatch[160];
} totals;

/* Run WORKERS threads; meanwhile count the server sessions PgBouncer
 * holds on the test database. */
static totals run_workers(worker *w, PGconn *direct)
{
    pthread_t t[WORKERS];
    totals r = { 0 };
    double t0;

    PGconn *prime;

    /* A handle closed just before may still be leaving the server. */
    for (int k = 0; k < 250 && th_count(direct, SESSIONS) != 0; k++)
        th_sleep_s(0.02);
    /* Until its first server login completes, PgBouncer 1.18 opens a
     * server connection for every client that waits, past the pool
     * size; one client first, as in any running deployment. */
    prime = th_connect(w[0].conninfo);
    th_exec(prime, "SELECT 1");
    PQfinish(prime);
    t0 = th_now_s();
    atomic_store(&workers_done, 0);
    for (int i = 0; i < WORKERS; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, work, &w[i]), 0);
    while (atomic_load(&workers_done) < WORKERS) {
        char *v = th_scalar(direct, SESSIONS_SEEN);
        long n = strtol(v, NULL, 10);

        if (n > r.max_sessions) {
            r.max_sessions = n;
            snprintf(r.sessions_seen, sizeof r.sessions_seen, "%s", v);
        }
        free(v);
        th_sleep_s(0.02);
    }
    for (int i = 0; i < WORKERS; i++)
        pthread_join(t[i], NULL);
    r.seconds = th_now_s() - t0;
    for (int i = 0; i < WORKERS; i++) {
        r.errors += w[i].errors;
        r.prepared_errors += w[i].prepared_errors;
        r.mismatches += w[i].mismatches;
        r.pooled += w[i].pooled;
        r.ops += w[i].ops;
        if (!r.first[0] && w[i].first[0])
            snprintf(r.first, sizeof r.first, "%s", w[i].first);
        if (!r.first_mismatch[0] && w[i].first_mismatch[0])
            snprintf(r.first_mismatch, sizeof r.first_mismatch, "%s",
                     w[i].first_mismatch);
    }
    return r;
}

static void free_workers(worker *w)
{
    for (int i = 0; i < WORKERS; i++)
        free(w[i].ids);
}

/* ---- cases --------------------------------------------------------------- */

START_TEST(ten_workers_through_a_pool_of_two)
{
    worker w[WORKERS];
    spotdb_db *db = th_open();
    PGconn *direct = th_connect(th_db_conninfo());
    int ops = ops_per_worker();
    totals r;

    for (int i = 0; i < WORKERS; i++)
        prepare_worker(&w[i], db, i, ops);
    spotdb_close(db);
    r = run_workers(w, direct);
    printf("pgbouncer (transaction mode, pool_size=%d): %d workers x %d "
           "operations: %d errors, %d mismatches, %.1f s, %.0f ops/s, "
           "at most %ld server sessions\n", POOL_SIZE, WORKERS, ops,
           r.errors, r.mismatches, r.seconds, (double)r.ops / r.seconds,
           r.max_sessions);
    ck_assert_msg(r.errors == 0 && r.mismatches == 0, "%d errors, %d "
                  "mismatches; first: %s", r.errors, r.mismatches, r.first);
    ck_assert_int_eq(r.pooled, WORKERS);
    ck_assert_int_ge(r.max_sessions, 1);
    ck_assert_msg(r.max_sessions <= POOL_SIZE, "more server sessions than "
                  "the pool holds: %s", r.sessions_seen);
    /* What each thread believes it wrote is what a direct reader sees. */
    for (int i = 0; i < WORKERS; i++) {
        th_qeq(direct, NULL, "SELECT NULLIF(count(*), %lld) FROM "
               "experiment_logs WHERE instance_id = '%s'",
               (long long)w[i].logs, w[i].instance);
        th_qeq(direct, "t", "SELECT coalesce((extract(epoch FROM "
               "last_evaluation) * 1000000)::bigint, 0) = %lld FROM "
               "instances WHERE id = '%s'",
               (long long)w[i].last_eval, w[i].instance);
    }
    /* The tenants that came and went left nothing. */
    ck_assert_int_eq(th_count(direct, "SELECT count(*) FROM users WHERE "
                                      "username LIKE 'tenant\\_%'"), 0);
    ck_assert_int_eq(th_count(direct, "SELECT count(*) FROM accounts"),
                     WORKERS);
    PQfinish(direct);
    free_workers(w);
}
END_TEST

/* The same workload on direct connections, for comparison (each handle
 * then has a server session of its own, and prepares its statements). */
START_TEST(ten_workers_direct_for_comparison)
{
    worker w[WORKERS];
    spotdb_db *db = th_open();
    PGconn *direct = th_connect(th_db_conninfo());
    int ops = ops_per_worker();
    totals r;

    for (int i = 0; i < WORKERS; i++) {
        prepare_worker(&w[i], db, i, ops);
        snprintf(w[i].conninfo, sizeof w[i].conninfo, "%s",
                 th_db_conninfo());
    }
    spotdb_close(db);
    r = run_workers(w, direct);
    printf("direct (no pooler): %d workers x %d operations: %d errors, "
           "%d mismatches, %.1f s, %.0f ops/s, at most %ld server "
           "sessions\n", WORKERS, ops, r.errors, r.mismatches, r.seconds,
           (double)r.ops / r.seconds, r.max_sessions);
    ck_assert_msg(r.errors == 0 && r.mismatches == 0, "%d errors, %d "
                  "mismatches; first: %s", r.errors, r.mismatches, r.first);
    ck_assert_int_eq(r.pooled, 0);
    PQfinish(direct);
    free_workers(w);
}
END_TEST

typedef struct seen {
    int events, named;
    char example[128];
} seen;

static void count_named(const spotdb_trace_event *e, void *payload)
{
    seen *s = payload;

    s->events++;
    if (e->statement[0]) {
        s->named++;
        snprintf(s->example, sizeof s->example, "%s: %s", e->statement,
                 e->name);
    }
}

/* The same reads twice: a direct handle prepares them and reuses the
 * statements; a pooled one sends them unnamed every time. */
static seen trace_reads(spotdb_db *db)
{
    seen s = { 0 };
    int64_t n;

    ck_assert_int_eq(spotdb_set_trace(db, count_named, &s), 0);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(spotdb_user_count(&n, db, NULL), 0);
        ck_assert_int_eq(n, 1);   /* admin */
    }
    ck_assert_int_eq(spotdb_set_trace(db, NULL, NULL), 0);
    return s;
}

START_TEST(pooled_is_detected_and_unnamed)
{
    spotdb_open_options o = SPOTDB_OPEN_OPTIONS_INIT;
    spotdb_db *db = NULL;
    seen s;

    /* Detected through PgBouncer, with default options. */
    ck_assert_msg(spotdb_open(&db, pgb_conninfo(th_db_name()), NULL) == 0,
                  "%s", spotdb_last_errmsg());
    ck_assert_int_eq(spotdb_pooled(db), 1);
    s = trace_reads(db);
    ck_assert_int_ge(s.events, 3);
    ck_assert_msg(s.named == 0, "a pooled handle ran a named statement (%s)",
                  s.example);
    spotdb_close(db);

    /* Not on a direct connection, where statements are prepared. */
    db = th_open();
    ck_assert_int_eq(spotdb_pooled(db), 0);
    s = trace_reads(db);
    ck_assert_int_ge(s.named, 2);
    spotdb_close(db);

    /* The option wins over detection, both ways. */
    o.pooler = SPOTDB_POOLER_NONE;
    ck_assert_int_eq(spotdb_open(&db, pgb_conninfo(th_db_name()), &o), 0);
    ck_assert_int_eq(spotdb_pooled(db), 0);
    spotdb_close(db);
    o.pooler = SPOTDB_POOLER_TRANSACTION;
    ck_assert_int_eq(spotdb_open(&db, th_db_conninfo(), &o), 0);
    ck_assert_int_eq(spotdb_pooled(db), 1);
    s = trace_reads(db);
    ck_assert_int_eq(s.named, 0);
    spotdb_close(db);

    /* An unknown value is refused. */
    o.pooler = 7;
    ck_assert_int_eq(spotdb_open(&db, th_db_conninfo(), &o), SPOTDB_EINVAL);
    ck_assert_ptr_null(db);
}
END_TEST

/* Advisory locks in the current database (pg_locks shows the cluster's,
 * and other suites' migrations take theirs). */
#define ADVISORY_LOCKS_HERE                                                  \
    "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = "         \
    "l.database WHERE l.locktype = 'advisory' AND d.datname = "              \
    "current_database()"

static void assert_untouched(PGconn *direct)
{
    ck_assert_int_eq(th_count(direct, "SELECT count(*) FROM pg_class c JOIN "
                                      "pg_namespace n ON n.oid = "
                                      "c.relnamespace WHERE n.nspname NOT IN "
                                      "('pg_catalog', 'information_schema', "
                                      "'pg_toast')"), 0);
    ck_assert_int_eq(th_count(direct, ADVISORY_LOCKS_HERE), 0);
}

START_TEST(migrations_refused_through_the_pooler)
{
    spotdb_open_options o = SPOTDB_OPEN_OPTIONS_INIT;
    spotdb_db *db = NULL;
    PGconn *direct = th_connect(th_db_conninfo());
    const char *msg;
    char cmd[1024];
    FILE *p;
    char out[4096];
    size_t n;
    int st;

    o.schema_check = SPOTDB_SCHEMA_CHECK_SKIP;
    ck_assert_int_eq(spotdb_open(&db, pgb_conninfo(th_db_name()), &o), 0);
    ck_assert_int_eq(spotdb_migrate(db, NULL), SPOTDB_EPOOLER);
    msg = spotdb_errmsg(db);
    ck_assert_msg(strstr(msg, "pooler") && strstr(msg, "direct"),
                  "the message does not say why: %s", msg);
    spotdb_close(db);
    assert_untouched(direct);

    /* The same when the option says so on a direct connection. */
    o.pooler = SPOTDB_POOLER_TRANSACTION;
    ck_assert_int_eq(spotdb_open(&db, th_db_conninfo(), &o), 0);
    ck_assert_int_eq(spotdb_migrate(db, NULL), SPOTDB_EPOOLER);
    spotdb_close(db);
    assert_untouched(direct);

    /* The CLI: non-zero, one line naming the reason. */
    ck_assert_ptr_nonnull(getenv("SPOTDB_CLI"));
    snprintf(cmd, sizeof cmd, "DATABASE_URL='%s' '%s' migrate 2>&1 "
             "</dev/null", pgb_conninfo(th_db_name()), getenv("SPOTDB_CLI"));
    p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    st = pclose(p);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) != 0,
                  "spotdb migrate through PgBouncer succeeded: %s", out);
    ck_assert_msg(strstr(out, "pooler") != NULL, "CLI said: %s", out);
    assert_untouched(direct);
    PQfinish(direct);
}
END_TEST

/* The database's own TimeZone is not UTC: through the pooler the library
 * still stores UTC, and leaves nothing on the server sessions it shares
 * with other clients. */
START_TEST(no_session_state_left_on_shared_sessions)
{
    PGconn *direct = th_connect(th_db_conninfo());
    PGconn *other[4];
    spotdb_db *db = NULL;
    spotdb_instance_rows *page = NULL;
    char sql[256], leak[160] = "";
    int leaks = 0;

    snprintf(sql, sizeof sql, "ALTER DATABASE %s SET TimeZone = "
             "'Asia/Kolkata'", th_db_name());
    th_exec(direct, sql);
    ck_assert_msg(spotdb_open(&db, pgb_conninfo(th_db_name()), NULL) == 0,
                  "%s", spotdb_last_errmsg());
    ck_assert_int_eq(spotdb_pooled(db), 1);
    for (int k = 0; k < 4; k++)
        other[k] = th_connect(pgb_conninfo(th_db_name()));
    for (int i = 0; i < 100; i++) {
        spotdb_user in, *u = NULL;
        char name[32], email[64];
        int64_t now = spotdb_now_us();
        char *tz, *prepared, *locks;

        snprintf(name, sizeof name, "tz%d", i);
        snprintf(email, sizeof email, "tz%d@example.com", i);
        memset(&in, 0, sizeof in);
        in.email = email;
        in.username = name;
        ck_assert_msg(spotdb_user_create(&u, db, &in, SPOTDB_USER_EMAIL |
                                         SPOTDB_USER_USERNAME, "pw") == 0,
                      "%s", spotdb_errmsg(db));
        /* created_at is the server's CURRENT_TIMESTAMP: UTC only if the
         * library's transaction ran in UTC (else 5h30 ahead). */
        ck_assert_msg(u->created_at > now - 60000000 &&
                      u->created_at < now + 60000000,
                      "created_at is %lld s away from now",
                      (long long)((u->created_at - now) / 1000000));
        spotdb_user_free(u);
        ck_assert_int_eq(spotdb_instance_list(&page, db, NULL, NULL, 5), 0);
        spotdb_instance_rows_free(page);
        page = NULL;
        tz = th_scalar(other[i % 4], "SHOW TimeZone");
        prepared = th_scalar(other[i % 4], "SELECT count(*) FROM "
                                           "pg_prepared_statements");
        locks = th_scalar(other[i % 4], ADVISORY_LOCKS_HERE);
        if (strcmp(tz, "Asia/Kolkata") != 0 || strcmp(prepared, "0") != 0 ||
            strcmp(locks, "0") != 0) {
            if (!leaks++)
                snprintf(leak, sizeof leak, "TimeZone %s, %s prepared "
                         "statements, %s advisory locks", tz, prepared,
                         locks);
        }
        free(tz);
        free(prepared);
        free(locks);
    }
    ck_assert_msg(leaks == 0, "%d of 100 reads by other clients saw "
                  "session state, first: %s", leaks, leak);
    for (int k = 0; k < 4; k++)
        PQfinish(other[k]);
    spotdb_close(db);
    PQfinish(direct);
}
END_TEST

/* Control: the workload that passes above, with named prepared
 * statements and the pooler ignored, breaks.  If this ever passes, the
 * pooled test above proves nothing. */
START_TEST(control_prepared_statements_break)
{
    spotdb_open_options o = SPOTDB_OPEN_OPTIONS_INIT;
    worker w[WORKERS];
    spotdb_db *db = th_open();
    PGconn *direct = th_connect(th_db_conninfo());
    int ops = ops_per_worker() / 5 > 0 ? ops_per_worker() / 5 : 1;
    totals r;

    o.pooler = SPOTDB_POOLER_NONE;
    o.statements = SPOTDB_STATEMENTS_PREPARED;
    for (int i = 0; i < WORKERS; i++) {
        prepare_worker(&w[i], db, i, ops);
        w[i].opts = &o;
    }
    spotdb_close(db);
    r = run_workers(w, direct);
    printf("control, prepared statements through pgbouncer: %d workers x "
           "%d operations: %d errors (%.1f%%), %d naming a prepared "
           "statement, %d wrong reads (%s); first: %s\n", WORKERS, ops,
           r.errors, 100.0 * r.errors / (double)r.ops, r.prepared_errors,
           r.mismatches, r.first_mismatch, r.first);
    ck_assert_int_eq(r.pooled, 0);
    ck_assert_int_gt(r.errors, 0);
    ck_assert_int_gt(r.prepared_errors, 0);
    PQfinish(direct);
    free_workers(w);
}
END_TEST

/* Control: what the library avoids is really unsafe here.  A session SET
 * and a session advisory lock of one client reach later clients. */
START_TEST(control_session_state_leaks)
{
    PGconn *a = th_connect(pgb_conninfo(th_db_name()));
    int set_leaks = 0, lock_leaks = 0, reads = 0;

    th_exec(a, "SET statement_timeout = '4321s'");
    th_exec(a, "SELECT pg_advisory_lock(4242)");
    for (int k = 0; k < 10; k++) {
        PGconn *b = th_connect(pgb_conninfo(th_db_name()));

        for (int i = 0; i < 10; i++, reads++) {
            char *v = th_scalar(b, "SHOW statement_timeout");

            set_leaks += strcmp(v, "4321s") == 0;
            free(v);
        }
        /* Another client "gets" the lock that client a holds. */
        lock_leaks += th_count(b, "SELECT pg_try_advisory_xact_lock(4242)"
                                  "::int") == 1;
        PQfinish(b);
    }
    printf("control, session state through pgbouncer: a session SET seen "
           "by other clients in %d of %d reads; a session advisory lock "
           "granted again to %d of 10 other clients\n", set_leaks, reads,
           lock_leaks);
    ck_assert_int_gt(set_leaks, 0);
    ck_assert_int_gt(lock_leaks, 0);
    PQfinish(a);
}
END_TEST

/* ---- acting users behind the pooler -------------------------------------- */

/* Login role of these cases, a member of migration 0003's spotdb_app;
 * PgBouncer knows it (main() starts it with --user). */
#define APP_ROLE "spotdb_pgb_app"
#define TENANTS 4
#define SCOPED_WORKERS 8

static char tenant_id[TENANTS][SPOTDB_UUID_SIZE];

static void setup_tenants(void)
{
    PGconn *c;

    th_setup_migrated_db();
    c = th_connect(th_db_conninfo());
    th_login_role(APP_ROLE, "spotdb_app");
    for (int t = 0; t < TENANTS; t++) {
        char *id = th_qf(c, "INSERT INTO users (email, username, "
                         "hashed_password) VALUES ('t%d@pgb.example', "
                         "'t%d', 'x') RETURNING id", t, t);

        memcpy(tenant_id[t], id, SPOTDB_UUID_SIZE);
        /* tenant t has t + 1 accounts */
        for (int a = 0; a <= t; a++)
            th_qeq(c, "1", "WITH n AS (SELECT '4%02d%09d' AS num) "
                   "INSERT INTO accounts (user_id, account_id, account_name,"
                   " role_arn, external_id) SELECT '%s', num, 'a', "
                   "'arn:aws:iam::' || num || ':role/x', 'e' || num FROM n "
                   "RETURNING 1", t, a, id);
        free(id);
    }
    PQfinish(c);
}

typedef struct scoped_worker {
    pthread_t thread;
    const char *conninfo;           /* pgb_conninfo's buffer is shared */
    unsigned seed;
    int ops, errors, foreign_rows, wrong_counts;
} scoped_worker;

/* Random tenants, one call each, some inside a transaction: every row
 * must be the acting tenant's, every count theirs. */
static void *scoped_work(void *arg)
{
    scoped_worker *w = arg;
    spotdb_db *db = NULL;

    if (spotdb_open(&db, w->conninfo, NULL) != 0) {
        w->errors++;
        return NULL;
    }
    for (int i = 0; i < w->ops; i++) {
        int t = (int)(rand_r(&w->seed) % TENANTS);
        bool tx = rand_r(&w->seed) % 4 == 0;
        spotdb_account_rows *page = NULL;
        int64_t n = -1;

        if (spotdb_set_scope(db, tenant_id[t]) != 0 ||
            (tx && spotdb_begin(db) != 0) ||
            spotdb_account_count(&n, db, NULL) != 0 ||
            spotdb_account_list(&page, db, NULL, NULL, 0) != 0 ||
            (tx && spotdb_commit(db) != 0)) {
            w->errors++;
            if (spotdb_in_transaction(db))
                spotdb_rollback(db);
            spotdb_account_rows_free(page);
            continue;
        }
        w->wrong_counts += n != t + 1 || page->count != (size_t)t + 1;
        for (size_t r = 0; r < page->count; r++)
            w->foreign_rows += strcmp(page->items[r].user_id,
                                      tenant_id[t]) != 0;
        spotdb_account_rows_free(page);
    }
    spotdb_close(db);
    return NULL;
}

START_TEST(acting_users_through_a_pool_of_two)
{
    scoped_worker w[SCOPED_WORKERS];
    int ops = 0, errors = 0, foreign = 0, wrong = 0;
    char ci[600];

    snprintf(ci, sizeof ci, "%s user=" APP_ROLE, pgb_conninfo(th_db_name()));
    for (int i = 0; i < SCOPED_WORKERS; i++) {
        w[i] = (scoped_worker){ .conninfo = ci, .seed = 4242u + (unsigned)i,
                                .ops = ops_per_worker() * 2 / 5 };
        ck_assert_int_eq(pthread_create(&w[i].thread, NULL, scoped_work,
                                        &w[i]), 0);
    }
    for (int i = 0; i < SCOPED_WORKERS; i++) {
        pthread_join(w[i].thread, NULL);
        ops += w[i].ops;
        errors += w[i].errors;
        foreign += w[i].foreign_rows;
        wrong += w[i].wrong_counts;
    }
    printf("acting users through pgbouncer (pool of %d): %d workers x %d "
           "scoped calls over %d tenants: %d errors, %d rows of another "
           "tenant, %d wrong counts\n", POOL_SIZE, SCOPED_WORKERS,
           ops / SCOPED_WORKERS, TENANTS, errors, foreign, wrong);
    ck_assert_int_eq(errors, 0);
    ck_assert_int_eq(foreign, 0);
    ck_assert_int_eq(wrong, 0);
}
END_TEST

/* Why the setting must be transaction-local: one set for the session
 * stays on the server session, and the pooler hands that to others. */
START_TEST(control_session_scope_leaks)
{
    char ci[600];
    PGconn *a, *b;
    int leaks = 0, reads = 0;

    snprintf(ci, sizeof ci, "%s user=" APP_ROLE, pgb_conninfo(th_db_name()));
    a = th_connect(ci);
    b = th_connect(ci);
    th_exec(a, "SELECT set_config('spotdb.user_id', (SELECT id::text FROM "
               "spotdb_login('t3')), false)");
    for (; reads < 100; reads++)
        leaks += th_count(b, "SELECT count(*) FROM accounts") > 0;
    printf("control, a session-level acting user through pgbouncer: another "
           "client, acting for nobody, saw tenant rows in %d of %d reads\n",
           leaks, reads);
    ck_assert_int_gt(leaks, 0);
    PQfinish(a);
    PQfinish(b);
}
END_TEST

/* ---- suite --------------------------------------------------------------- */

static void setup_migrated(void)
{
    th_setup_migrated_db();
}

static TCase *pg_case(const char *name, void (*setup)(void))
{
    TCase *tc = tcase_create(name);

    tcase_add_checked_fixture(tc, setup, th_teardown_db);
    tcase_set_timeout(tc, 600);
    return tc;
}

static Suite *pgbouncer_suite(void)
{
    Suite *s = suite_create("pgbouncer");
    TCase *tc;

    tc = pg_case("workload", setup_migrated);
    tcase_add_test(tc, ten_workers_through_a_pool_of_two);
    tcase_add_test(tc, ten_workers_direct_for_comparison);
    tcase_add_test(tc, pooled_is_detected_and_unnamed);
    tcase_add_test(tc, no_session_state_left_on_shared_sessions);
    suite_add_tcase(s, tc);

    tc = pg_case("migrations", th_setup_db);
    tcase_add_test(tc, migrations_refused_through_the_pooler);
    suite_add_tcase(s, tc);

    tc = pg_case("tenants", setup_tenants);
    tcase_add_test(tc, acting_users_through_a_pool_of_two);
    tcase_add_test(tc, control_session_scope_leaks);
    suite_add_tcase(s, tc);

    tc = pg_case("controls", setup_migrated);
    tcase_add_test(tc, control_prepared_statements_break);
    tcase_add_test(tc, control_session_state_leaks);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    char args[256];
    int rc;

    if (!getenv("SPOTDB_SCALEOUT") || !getenv("SPOTDB_PG_SOCKET")) {
        fprintf(stderr, "test_pgbouncer: needs SPOTDB_SCALEOUT (set by meson "
                "test) and the private server of tools/run (SPOTDB_PG_SOCKET): "
                "run it through 'tools/run test'\n");
        return EXIT_FAILURE;
    }
    snprintf(scaleout_dir, sizeof scaleout_dir, "/tmp/spotdb-pgbt.XXXXXX");
    if (!mkdtemp(scaleout_dir)) {
        perror("mkdtemp");
        return EXIT_FAILURE;
    }
    snprintf(args, sizeof args, "pgbouncer start '%s' --pool-size %d "
             "--user " APP_ROLE, scaleout_dir, POOL_SIZE);
    if (th_scaleout(args) != 0 || !getenv("SPOTDB_PGB_SOCKET")) {
        fprintf(stderr, "test_pgbouncer: tools/pg-scaleout could not start "
                "pgbouncer\n");
        rmdir(scaleout_dir);
        return EXIT_FAILURE;
    }
    rc = th_run(pgbouncer_suite());
    snprintf(args, sizeof args, "pgbouncer stop '%s'", scaleout_dir);
    th_scaleout(args);
    rmdir(scaleout_dir);
    return rc;
}
