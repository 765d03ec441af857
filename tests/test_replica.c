/*
 * Replica-safe reads routed to a streaming standby (issue 6).
 *
 * main() starts a standby of the private server with tools/pg-scaleout
 * (pg_basebackup, its own unix socket folder) and removes it at the end.
 * Handles are opened with a multi-host conninfo naming the primary, then
 * the standby, and SPOTDB_REPLICA_READS_ON.  Where a statement ran is
 * proved twice: by the data (replay paused on the standby, a row written
 * on the primary is missing from a routed read and present in a read on
 * the main connection) and by the trace events' `replica` flag, with the
 * standby's own pg_stat_activity as a third witness.  Then the standby
 * goes away (stopped like a crash): routed reads go on, on the primary;
 * it comes back, and after the documented 10 seconds routed reads go to
 * it again.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "spotdb/spotdb.h"
#include "spotdb/trace.h"

/* spotdb_replica_reads(): the period of the retries after falling back. */
#define RETRY_S 10

/* ---- tools/pg-scaleout --------------------------------------------------- */

static char scaleout_dir[64];

/* tools/pg-scaleout standby CMD DIR [EXTRA]: th_scaleout(). */
static int scaleout(const char *cmd, const char *extra)
{
    char args[512];

    snprintf(args, sizeof args, "standby %s '%s' %s", cmd, scaleout_dir,
             extra ? extra : "");
    return th_scaleout(args);
}

static void standby(const char *cmd)
{
    ck_assert_msg(scaleout(cmd, NULL) == 0,
                  "tools/pg-scaleout standby %s failed", cmd);
}

/* Until the standby has replayed everything the primary wrote so far. */
static void standby_caught_up(void)
{
    ck_assert_msg(scaleout("wait-caught-up", "30") == 0,
                  "the standby did not catch up in 30 s");
}

static const char *primary_port(void)
{
    const char *p = getenv("SPOTDB_PG_PORT");

    return p && *p ? p : "5432";
}

/* Primary first, then the standby (static storage). */
static const char *replica_conninfo(void)
{
    static char buf[640];

    snprintf(buf, sizeof buf, "host=%s,%s port=%s,%s user=postgres "
             "dbname=%s", getenv("SPOTDB_PG_SOCKET"),
             getenv("SPOTDB_STANDBY_SOCKET"), primary_port(),
             getenv("SPOTDB_STANDBY_PORT"), th_db_name());
    return buf;
}

/* A raw connection to the standby alone. */
static PGconn *standby_connect(const char *dbname)
{
    char buf[512];

    snprintf(buf, sizeof buf, "host=%s port=%s user=postgres dbname=%s",
             getenv("SPOTDB_STANDBY_SOCKET"), getenv("SPOTDB_STANDBY_PORT"),
             dbname);
    return th_connect(buf);
}

/* Sessions on the standby in the test database, other than `self`. */
static long standby_sessions(PGconn *self)
{
    return th_qn(self, "SELECT count(*) FROM pg_stat_activity WHERE "
                 "datname = '%s' AND pid <> pg_backend_pid()", th_db_name());
}

/* ---- trace --------------------------------------------------------------- */

typedef struct trail {
    int events, on_replica, on_main, failed;
    char last_name[64];
    int last_replica;
} trail;

static void record(const spotdb_trace_event *e, void *payload)
{
    trail *t = payload;

    t->events++;
    if (e->code != 0)
        t->failed++;
    else if (e->replica)
        t->on_replica++;
    else
        t->on_main++;
    snprintf(t->last_name, sizeof t->last_name, "%s", e->name);
    t->last_replica = e->replica;
}

/* ---- data ---------------------------------------------------------------- */

typedef struct tenant {
    char account[SPOTDB_UUID_SIZE];
    char model[SPOTDB_UUID_SIZE];
    char first_instance[SPOTDB_UUID_SIZE];
} tenant;

static void make_instance(spotdb_db *db, int n, char *id_out)
{
    spotdb_instance in, *inst = NULL;
    char ec2[24];
    int rc;

    snprintf(ec2, sizeof ec2, "i-%08x", 0xb0000000u + (unsigned)n);
    memset(&in, 0, sizeof in);
    in.instance_id = ec2;
    in.instance_type = "c5.large";
    in.availability_zone = "ap-south-1a";
    in.assigned_model_version = "v1.0.0";
    rc = spotdb_instance_create_for_aws_account(&inst, db, "300000000001",
             &in, SPOTDB_INSTANCE_INSTANCE_ID |
                  SPOTDB_INSTANCE_INSTANCE_TYPE |
                  SPOTDB_INSTANCE_AVAILABILITY_ZONE |
                  SPOTDB_INSTANCE_ASSIGNED_MODEL_VERSION);
    ck_assert_msg(rc == 0, "instance: %s", spotdb_errmsg(db));
    if (id_out)
        memcpy(id_out, inst->id, SPOTDB_UUID_SIZE);
    spotdb_instance_free(inst);
}

static void make_log(spotdb_db *db, const tenant *t)
{
    spotdb_experiment_log in;
    int rc;

    memset(&in, 0, sizeof in);
    memcpy(in.instance_id, t->first_instance, SPOTDB_UUID_SIZE);
    memcpy(in.model_id, t->model, SPOTDB_UUID_SIZE);
    in.decision = "SWITCH";
    in.prediction_score = 0.5;
    rc = spotdb_experiment_log_create(NULL, db, &in,
             SPOTDB_EXPERIMENT_LOG_INSTANCE_ID |
             SPOTDB_EXPERIMENT_LOG_MODEL_ID | SPOTDB_EXPERIMENT_LOG_DECISION |
             SPOTDB_EXPERIMENT_LOG_PREDICTION_SCORE);
    ck_assert_msg(rc == 0, "log: %s", spotdb_errmsg(db));
}

/* An owner, an account, a model and one instance with one log. */
static tenant make_tenant(spotdb_db *db)
{
    spotdb_user u;
    spotdb_account a, *acct = NULL;
    spotdb_model m, *model = NULL;
    tenant t;
    int rc;

    memset(&u, 0, sizeof u);
    u.email = "replica@example.com";
    u.username = "replica";
    rc = spotdb_user_create(NULL, db, &u,
                            SPOTDB_USER_EMAIL | SPOTDB_USER_USERNAME, "pw");
    ck_assert_msg(rc == 0, "user: %s", spotdb_errmsg(db));
    memset(&a, 0, sizeof a);
    a.account_id = "300000000001";
    a.account_name = "replica lab";
    a.role_arn = "arn:aws:iam::300000000001:role/spot";
    a.external_id = "ext";
    rc = spotdb_account_create_for_username(&acct, db, "replica", &a,
             SPOTDB_ACCOUNT_ACCOUNT_ID | SPOTDB_ACCOUNT_ACCOUNT_NAME |
             SPOTDB_ACCOUNT_ROLE_ARN | SPOTDB_ACCOUNT_EXTERNAL_ID);
    ck_assert_msg(rc == 0, "account: %s", spotdb_errmsg(db));
    memset(&m, 0, sizeof m);
    m.name = "ReplicaModel";
    m.version = "v1.0.0";
    rc = spotdb_model_create(&model, db, &m,
                             SPOTDB_MODEL_NAME | SPOTDB_MODEL_VERSION);
    ck_assert_msg(rc == 0, "model: %s", spotdb_errmsg(db));
    memcpy(t.account, acct->id, SPOTDB_UUID_SIZE);
    memcpy(t.model, model->id, SPOTDB_UUID_SIZE);
    spotdb_model_free(model);
    spotdb_account_free(acct);
    make_instance(db, 0, t.first_instance);
    make_log(db, &t);
    return t;
}

/* ---- routed reads, as one call each -------------------------------------- */

static int64_t count_instances(spotdb_db *db)
{
    int64_t n = -1;
    int rc = spotdb_instance_count(&n, db, NULL);

    ck_assert_msg(rc == 0, "count -> %d: %s", rc, spotdb_errmsg(db));
    return n;
}

static int64_t list_instances(spotdb_db *db)
{
    spotdb_instance_rows *r = NULL;
    int64_t n;
    int rc;

    rc = spotdb_instance_list(&r, db, NULL, NULL, 0);
    ck_assert_msg(rc == 0, "list -> %d: %s", rc, spotdb_errmsg(db));
    n = (int64_t)r->count;
    spotdb_instance_rows_free(r);
    return n;
}

static int64_t view_instances(spotdb_db *db)
{
    spotdb_active_instance_rows *r = NULL;
    int64_t n;
    int rc;

    rc = spotdb_active_instance_list(&r, db, NULL, 0);
    ck_assert_msg(rc == 0, "view -> %d: %s", rc, spotdb_errmsg(db));
    n = (int64_t)r->count;
    spotdb_active_instance_rows_free(r);
    return n;
}

static int64_t report_runs(spotdb_db *db)
{
    spotdb_model_performance_rows *r = NULL;
    int64_t n;
    int rc;

    rc = spotdb_model_performance_list(&r, db, NULL);
    ck_assert_msg(rc == 0, "report -> %d: %s", rc, spotdb_errmsg(db));
    ck_assert_uint_eq(r->count, 1);
    n = r->items[0].runs;
    spotdb_model_performance_rows_free(r);
    return n;
}

typedef struct stream_count {
    int64_t rows;
} stream_count;

static int count_row(const spotdb_instance *row, void *payload)
{
    (void)row;
    ((stream_count *)payload)->rows++;
    return 0;
}

static int64_t stream_instances(spotdb_db *db)
{
    stream_count c = { 0 };
    int rc;

    rc = spotdb_instance_stream(db, NULL, count_row, &c);
    ck_assert_msg(rc == 0, "stream -> %d: %s", rc, spotdb_errmsg(db));
    return c.rows;
}

static spotdb_db *open_routed(void)
{
    spotdb_open_options o = SPOTDB_OPEN_OPTIONS_INIT;
    spotdb_db *db = NULL;

    o.replica_reads = SPOTDB_REPLICA_READS_ON;
    ck_assert_msg(spotdb_open(&db, replica_conninfo(), &o) == 0, "open: %s",
                  spotdb_last_errmsg());
    return db;
}

/* ---- cases --------------------------------------------------------------- */

START_TEST(routed_reads_go_to_the_standby)
{
    spotdb_db *db = open_routed();
    PGconn *primary = th_connect(th_db_conninfo());
    PGconn *sb = standby_connect(th_db_name());
    trail t = { 0 };
    tenant ten;
    spotdb_instance *got = NULL;
    char second[SPOTDB_UUID_SIZE];

    ck_assert_int_eq(spotdb_set_trace(db, record, &t), 0);
    ten = make_tenant(db);
    /* Writes ran on the main connection, which is the primary's. */
    ck_assert_int_eq(t.on_replica, 0);
    ck_assert_int_eq(t.failed, 0);
    ck_assert_int_eq(th_count(primary, "SELECT count(*) FROM instances"), 1);
    standby_caught_up();
    ck_assert_int_eq(th_count(sb, "SELECT pg_is_in_recovery()::int"), 1);

    /* Replay stops on the standby: what is written now reaches only the
     * primary. */
    th_exec(sb, "SELECT pg_wal_replay_pause()");
    make_instance(db, 1, second);
    make_log(db, &ten);
    ck_assert_int_eq(th_count(primary, "SELECT count(*) FROM instances"), 2);

    /* Routed reads: the standby's older picture, on the read connection. */
    memset(&t, 0, sizeof t);
    ck_assert_int_eq(list_instances(db), 1);
    ck_assert_int_eq(count_instances(db), 1);
    ck_assert_int_eq(stream_instances(db), 1);
    ck_assert_int_eq(view_instances(db), 1);
    ck_assert_int_eq(report_runs(db), 1);
    ck_assert_msg(t.on_replica == t.events && t.events >= 5,
                  "%d of %d routed reads ran on the read connection",
                  t.on_replica, t.events);
    ck_assert_int_ge(standby_sessions(sb), 1);

    /* A get goes to the primary and finds the new row. */
    memset(&t, 0, sizeof t);
    ck_assert_msg(spotdb_instance_get(&got, db, second) == 0, "get: %s",
                  spotdb_errmsg(db));
    spotdb_instance_free(got);
    ck_assert_int_eq(t.on_replica, 0);
    ck_assert_int_ge(t.on_main, 1);

    /* So does a list inside a transaction. */
    ck_assert_int_eq(spotdb_begin(db), 0);
    ck_assert_int_eq(list_instances(db), 2);
    ck_assert_int_eq(spotdb_commit(db), 0);
    ck_assert_int_eq(t.on_replica, 0);

    /* Routing off: read-your-writes on the main connection. */
    ck_assert_int_eq(spotdb_replica_reads(db, 0), 1);
    ck_assert_int_eq(list_instances(db), 2);
    ck_assert_int_eq(view_instances(db), 2);
    ck_assert_int_eq(report_runs(db), 2);
    ck_assert_int_eq(t.on_replica, 0);
    ck_assert_int_eq(spotdb_replica_reads(db, 1), 0);
    ck_assert_int_eq(list_instances(db), 1);
    ck_assert_int_eq(t.last_replica, 1);

    /* Replay resumes: the standby catches up. */
    th_exec(sb, "SELECT pg_wal_replay_resume()");
    standby_caught_up();
    ck_assert_int_eq(list_instances(db), 2);
    ck_assert_int_eq(report_runs(db), 2);
    ck_assert_int_eq(t.last_replica, 1);
    ck_assert_int_eq(t.failed, 0);

    spotdb_close(db);
    PQfinish(sb);
    PQfinish(primary);
}
END_TEST

START_TEST(replica_reads_needs_the_option)
{
    spotdb_db *db = th_open();

    ck_assert_int_eq(spotdb_replica_reads(db, 1), SPOTDB_EINVAL);
    ck_assert_str_ne(spotdb_errmsg(db), "");
    spotdb_close(db);
}
END_TEST

START_TEST(standby_goes_away_and_comes_back)
{
    spotdb_db *db = open_routed();
    PGconn *sb;
    trail t = { 0 };
    double fell_back, back, waited;
    int64_t n;

    ck_assert_int_eq(spotdb_set_trace(db, record, &t), 0);
    make_tenant(db);
    standby_caught_up();
    memset(&t, 0, sizeof t);
    ck_assert_int_eq(list_instances(db), 1);
    ck_assert_int_eq(t.on_replica, 1);

    /* The standby vanishes.  The next routed reads still answer, from the
     * primary: they see a row the standby never had. */
    standby("halt");
    make_instance(db, 1, NULL);
    memset(&t, 0, sizeof t);
    fell_back = th_now_s();
    ck_assert_int_eq(list_instances(db), 2);
    ck_assert_msg(t.failed <= 1, "%d failed statements on falling back",
                  t.failed);
    ck_assert_int_eq(count_instances(db), 2);
    ck_assert_int_eq(view_instances(db), 2);
    ck_assert_int_eq(report_runs(db), 1);
    ck_assert_int_eq(stream_instances(db), 2);
    ck_assert_msg(t.failed <= 1, "%d failed statements after falling back",
                  t.failed);
    printf("standby gone: first routed read answered in %.3f s, %d "
           "statement(s) failed and were re-sent\n", th_now_s() - fell_back,
           t.failed);

    /* It comes back.  Until RETRY_S after the fallback, routed reads stay
     * on the primary; after it, they return to the standby. */
    standby("start");
    standby_caught_up();
    sb = standby_connect(th_db_name());
    th_exec(sb, "SELECT pg_wal_replay_pause()");
    make_instance(db, 2, NULL);
    back = th_now_s() - fell_back;
    if (back < RETRY_S - 2) {
        ck_assert_int_eq(list_instances(db), 3);   /* the primary's */
        ck_assert_int_eq(standby_sessions(sb), 0);
    }
    waited = RETRY_S + 1.0 - (th_now_s() - fell_back);
    if (waited > 0)
        th_sleep_s(waited);
    memset(&t, 0, sizeof t);
    n = list_instances(db);
    ck_assert_msg(n == 2, "a routed read %.1f s after the fallback saw %lld "
                  "instances: it did not return to the standby (paused at 2)",
                  th_now_s() - fell_back, (long long)n);
    ck_assert_int_eq(t.last_replica, 1);
    ck_assert_int_ge(standby_sessions(sb), 1);
    printf("standby back %.1f s after the fallback: routed reads %s, and "
           "on the standby again %.1f s after the fallback\n", back,
           back < RETRY_S - 2 ? "stayed on the primary until then"
                              : "(not checked before the retry)",
           th_now_s() - fell_back);
    th_exec(sb, "SELECT pg_wal_replay_resume()");
    spotdb_close(db);
    PQfinish(sb);
}
END_TEST

/* ---- suite --------------------------------------------------------------- */

/* A migrated database, already replayed on the standby. */
static void setup(void)
{
    th_setup_migrated_db();
    standby_caught_up();
}

static void teardown(void)
{
    char buf[512];
    PGconn *sb;

    /* A failed case may leave the standby halted or its replay paused;
     * the next case needs it up, and the drop must reach it. */
    snprintf(buf, sizeof buf, "host=%s port=%s user=postgres dbname=postgres",
             getenv("SPOTDB_STANDBY_SOCKET"), getenv("SPOTDB_STANDBY_PORT"));
    sb = PQconnectdb(buf);
    if (PQstatus(sb) != CONNECTION_OK)
        scaleout("start", NULL);
    else
        PQclear(PQexec(sb, "SELECT pg_wal_replay_resume()"));
    PQfinish(sb);
    th_teardown_db();
}

static Suite *replica_suite(void)
{
    Suite *s = suite_create("replica");
    TCase *tc = tcase_create("routing");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, routed_reads_go_to_the_standby);
    tcase_add_test(tc, replica_reads_needs_the_option);
    tcase_add_test(tc, standby_goes_away_and_comes_back);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    int rc;

    if (!getenv("SPOTDB_SCALEOUT") || !getenv("SPOTDB_PG_SOCKET")) {
        fprintf(stderr, "test_replica: needs SPOTDB_SCALEOUT (set by meson "
                "test) and the private server of tools/run (SPOTDB_PG_SOCKET): "
                "run it through 'tools/run test'\n");
        return EXIT_FAILURE;
    }
    snprintf(scaleout_dir, sizeof scaleout_dir, "/tmp/spotdb-replt.XXXXXX");
    if (!mkdtemp(scaleout_dir)) {
        perror("mkdtemp");
        return EXIT_FAILURE;
    }
    if (scaleout("start", NULL) != 0 ||
        !getenv("SPOTDB_STANDBY_SOCKET")) {
        fprintf(stderr, "test_replica: tools/pg-scaleout could not start "
                "a standby\n");
        scaleout("stop", NULL);
        rmdir(scaleout_dir);
        return EXIT_FAILURE;
    }
    rc = th_run(replica_suite());
    scaleout("stop", NULL);
    rmdir(scaleout_dir);
    return rc;
}
