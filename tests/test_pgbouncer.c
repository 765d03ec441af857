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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "spotdb/spotdb.h"
#include "spotdb/trace.h"
#include "workload.h"

#define WORKERS 10
#define POOL_SIZE 2

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

/* ---- the workload (workload.h) ------------------------------------------- */

/* Another tenant comes and goes: a user, its account, the cascade. */
static void op_tenant_round_trip(wl_worker *w, spotdb_db *db, int i)
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
    WL_CALL("creating a user",
            spotdb_user_create(&u, db, &in,
                               SPOTDB_USER_EMAIL | SPOTDB_USER_USERNAME,
                               "pooled password"));
    memset(&a, 0, sizeof a);
    a.account_id = aws;
    a.account_name = name;
    a.role_arn = arn;
    a.external_id = "ext";
    WL_CALL("creating an account",
            spotdb_account_create_for_username(&acct, db, name, &a,
                SPOTDB_ACCOUNT_ACCOUNT_ID | SPOTDB_ACCOUNT_ACCOUNT_NAME |
                SPOTDB_ACCOUNT_ROLE_ARN | SPOTDB_ACCOUNT_EXTERNAL_ID));
    WL_CALL("reading the account",
            spotdb_account_get_by_account_id(&again, db, aws));
    if (strcmp(again->user_id, u->id) != 0)
        wl_mismatch(w, "an account read back names another owner");
    WL_CALL("deleting the user", spotdb_user_delete(db, u->id));
out:
    spotdb_account_free(again);
    spotdb_account_free(acct);
    spotdb_user_free(u);
}

static void run_op(wl_worker *w, spotdb_db *db, int i)
{
    switch (i % 10) {
    case 0: case 5: wl_op_create_log(w, db, i); break;
    case 1: wl_op_get_instance(w, db); break;
    case 2: wl_op_update_instance(w, db); break;
    case 3: wl_op_list_logs(w, db); break;
    case 4: wl_op_count_logs(w, db); break;
    case 6: wl_op_active_view(w, db); break;
    case 7: wl_op_transaction(w, db, i); break;
    case 8:
        if (i % 20 == 8)
            wl_op_recent_view(w, db);
        else
            wl_op_report(w, db);
        break;
    default:
        if (i % 100 == 99)
            op_tenant_round_trip(w, db, i);
        else
            wl_op_delete_oldest_log(w, db);
        break;
    }
}

/* Where a worker's handle goes (its w->ctx), and what the handle said. */
typedef struct route {
    const char *conninfo;
    const spotdb_open_options *opts;  /* NULL: defaults (detection) */
    int pooled;
} route;

/* A handle of its own for all of the thread's operations. */
static void work(wl_worker *w)
{
    route *to = w->ctx;
    spotdb_db *db = NULL;
    int rc = spotdb_open(&db, to->conninfo, to->opts);

    if (rc != 0) {
        wl_note_error(w, NULL, "open", rc);
        return;
    }
    to->pooled = spotdb_pooled(db);
    for (int i = 0; i < w->ops; i++)
        run_op(w, db, i);
    spotdb_close(db);
}

/* Each worker's model, instance (assigned that model) and owner, made
 * directly, so that the control's workers start from the same place. */
static void prepare_workers(wl_worker *w, int ops)
{
    spotdb_db *db = th_open();

    for (int i = 0; i < WORKERS; i++)
        wl_prepare(&w[i], db, i, ops);
    spotdb_close(db);
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

typedef struct totals {
    wl_totals sum;
    int pooled;          /* handles that said they were behind a pooler */
    double seconds;
    long max_sessions;   /* server sessions seen on the test database */
    char sessions_seen[512]; /* which, when there were most */
} totals;

typedef struct watch {
    PGconn *direct;
    totals *r;
} watch;

static void count_sessions(void *payload)
{
    watch *m = payload;
    char *v = th_scalar(m->direct, SESSIONS_SEEN);
    long n = strtol(v, NULL, 10);

    if (n > m->r->max_sessions) {
        m->r->max_sessions = n;
        snprintf(m->r->sessions_seen, sizeof m->r->sessions_seen, "%s", v);
    }
    free(v);
}

/* Run WORKERS threads, each with a handle on `conninfo` opened with
 * `opts`; meanwhile count the server sessions PgBouncer holds on the
 * test database. */
static totals run_workers(wl_worker *w, const char *conninfo,
                          const spotdb_open_options *opts, PGconn *direct)
{
    route to[WORKERS];
    totals r = { 0 };
    watch m = { direct, &r };
    char ci[512];                   /* pgb_conninfo's buffer is shared */
    PGconn *prime;

    snprintf(ci, sizeof ci, "%s", conninfo);
    /* A handle closed just before may still be leaving the server. */
    for (int k = 0; k < 250 && th_count(direct, SESSIONS) != 0; k++)
        th_sleep_s(0.02);
    /* Until its first server login completes, PgBouncer 1.18 opens a
     * server connection for every client that waits, past the pool
     * size; one client first, as in any running deployment. */
    prime = th_connect(ci);
    th_exec(prime, "SELECT 1");
    PQfinish(prime);
    for (int i = 0; i < WORKERS; i++) {
        to[i] = (route){ .conninfo = ci, .opts = opts };
        w[i].ctx = &to[i];
    }
    r.seconds = wl_run(w, WORKERS, work, count_sessions, &m, 0.02);
    r.sum = wl_sum(w, WORKERS);
    for (int i = 0; i < WORKERS; i++) {
        r.pooled += to[i].pooled;
        w[i].ctx = NULL;
    }
    return r;
}

/* ---- cases --------------------------------------------------------------- */

START_TEST(ten_workers_through_a_pool_of_two)
{
    wl_worker w[WORKERS];
    PGconn *direct = th_connect(th_db_conninfo());
    int ops = ops_per_worker();
    totals r;

    prepare_workers(w, ops);
    r = run_workers(w, pgb_conninfo(th_db_name()), NULL, direct);
    printf("pgbouncer (transaction mode, pool_size=%d): %d workers x %d "
           "operations: %d errors, %d mismatches, %.1f s, %.0f ops/s, "
           "at most %ld server sessions\n", POOL_SIZE, WORKERS, ops,
           r.sum.errors, r.sum.mismatches, r.seconds,
           (double)r.sum.ops / r.seconds, r.max_sessions);
    ck_assert_msg(r.sum.errors == 0 && r.sum.mismatches == 0, "%d errors, "
                  "%d mismatches; first: %s", r.sum.errors, r.sum.mismatches,
                  r.sum.first);
    ck_assert_int_eq(r.pooled, WORKERS);
    ck_assert_int_ge(r.max_sessions, 1);
    ck_assert_msg(r.max_sessions <= POOL_SIZE, "more server sessions than "
                  "the pool holds: %s", r.sessions_seen);
    /* What each thread believes it wrote is what a direct reader sees. */
    wl_check_written(direct, w, WORKERS);
    /* The tenants that came and went left nothing. */
    ck_assert_int_eq(th_count(direct, "SELECT count(*) FROM users WHERE "
                                      "username LIKE 'tenant\\_%'"), 0);
    ck_assert_int_eq(th_count(direct, "SELECT count(*) FROM accounts"),
                     WORKERS);
    PQfinish(direct);
    wl_free(w, WORKERS);
}
END_TEST

/* The same workload on direct connections, for comparison (each handle
 * then has a server session of its own, and prepares its statements). */
START_TEST(ten_workers_direct_for_comparison)
{
    wl_worker w[WORKERS];
    PGconn *direct = th_connect(th_db_conninfo());
    int ops = ops_per_worker();
    totals r;

    prepare_workers(w, ops);
    r = run_workers(w, th_db_conninfo(), NULL, direct);
    printf("direct (no pooler): %d workers x %d operations: %d errors, "
           "%d mismatches, %.1f s, %.0f ops/s, at most %ld server "
           "sessions\n", WORKERS, ops, r.sum.errors, r.sum.mismatches,
           r.seconds, (double)r.sum.ops / r.seconds, r.max_sessions);
    ck_assert_msg(r.sum.errors == 0 && r.sum.mismatches == 0, "%d errors, "
                  "%d mismatches; first: %s", r.sum.errors, r.sum.mismatches,
                  r.sum.first);
    ck_assert_int_eq(r.pooled, 0);
    PQfinish(direct);
    wl_free(w, WORKERS);
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
    wl_worker w[WORKERS];
    PGconn *direct = th_connect(th_db_conninfo());
    int ops = ops_per_worker() / 5 > 0 ? ops_per_worker() / 5 : 1;
    totals r;

    o.pooler = SPOTDB_POOLER_NONE;
    o.statements = SPOTDB_STATEMENTS_PREPARED;
    prepare_workers(w, ops);
    r = run_workers(w, pgb_conninfo(th_db_name()), &o, direct);
    printf("control, prepared statements through pgbouncer: %d workers x "
           "%d operations: %d errors (%.1f%%), %d naming a prepared "
           "statement, %d wrong reads (%s); first: %s\n", WORKERS, ops,
           r.sum.errors, 100.0 * r.sum.errors / (double)r.sum.ops,
           r.sum.prepared_errors, r.sum.mismatches, r.sum.first_mismatch,
           r.sum.first);
    ck_assert_int_eq(r.pooled, 0);
    ck_assert_int_gt(r.sum.errors, 0);
    ck_assert_int_gt(r.sum.prepared_errors, 0);
    PQfinish(direct);
    wl_free(w, WORKERS);
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
