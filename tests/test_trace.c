/*
 * The trace hook (spotdb/trace.h), the pooler option and the routing of
 * replica-safe reads (spotdb/db.h), against the private server directly.
 * Through PgBouncer and a real standby: test_pgbouncer.c, test_replica.c.
 *
 * Every event is copied into a log the tests read afterwards; the checks
 * look for what must be there (names, SQL, rows, codes) and for what must
 * never be there (values, passwords, hashes).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "internal.h"

static spotdb_db *db;
static PGconn *pg;

#include "checks.h"

#define PASSWORD "pw-MARKER-7xq"
#define EMAIL "trace-marker-4471@example.com"

typedef struct event {
    char *name, *sql, *statement, *sqlstate;
    int64_t duration_us, rows;
    int code, replica;
} event;

static struct {
    event items[4096];
    size_t n;
} trace_log;

static char *dup(const char *s)
{
    char *d = strdup(s);

    ck_assert_ptr_nonnull(d);
    return d;
}

static void record(const spotdb_trace_event *ev, void *payload)
{
    event *e;

    ck_assert_ptr_eq(payload, &trace_log);
    ck_assert_uint_eq(ev->version, SPOTDB_TRACE_EVENT_VERSION);
    ck_assert_uint_lt(trace_log.n, 4096);
    e = &trace_log.items[trace_log.n++];
    e->name = dup(ev->name);
    e->sql = dup(ev->sql);
    e->statement = dup(ev->statement);
    e->sqlstate = dup(ev->sqlstate);
    e->duration_us = ev->duration_us;
    e->rows = ev->rows;
    e->code = ev->code;
    e->replica = ev->replica;
}

static void log_clear(void)
{
    for (size_t i = 0; i < trace_log.n; i++) {
        free(trace_log.items[i].name);
        free(trace_log.items[i].sql);
        free(trace_log.items[i].statement);
        free(trace_log.items[i].sqlstate);
    }
    trace_log.n = 0;
}

/* The last event, which must exist. */
static const event *last(void)
{
    ck_assert_uint_gt(trace_log.n, 0);
    return &trace_log.items[trace_log.n - 1];
}

/* No event's text holds `needle`. */
static void nowhere(const char *needle)
{
    for (size_t i = 0; i < trace_log.n; i++) {
        const event *e = &trace_log.items[i];

        ck_assert_msg(!strstr(e->name, needle) && !strstr(e->sql, needle) &&
                      !strstr(e->statement, needle),
                      "event %zu (%s: %s) holds \"%s\"", i, e->name, e->sql,
                      needle);
    }
}

static void setup(void)
{
    th_setup_migrated_db();
    pg = th_connect(th_db_conninfo());
    db = th_open();
    log_clear();
}

static void teardown(void)
{
    spotdb_close(db);
    db = NULL;
    PQfinish(pg);
    pg = NULL;
    log_clear();
    th_db_drop();
}

static spotdb_db *open_with(const spotdb_open_options *o)
{
    spotdb_db *h = NULL;

    OK_ON(h, spotdb_open(&h, th_db_conninfo(), o));
    ck_assert_ptr_nonnull(h);
    return h;
}

/* users rows by raw SQL (the hash is a placeholder: nobody logs in). */
static void add_users(int n)
{
    th_qn(pg, "WITH i AS (INSERT INTO users (email, username, "
              "hashed_password) SELECT 'bulk' || g || '@example.com', "
              "'bulk' || g, 'x' FROM generate_series(1, %d) g RETURNING 1) "
              "SELECT count(*) FROM i", n);
}

/* ---- the hook ------------------------------------------------------------ */

START_TEST(each_call_is_one_event_without_values)
{
    spotdb_user in = { .email = EMAIL, .username = "tracer" }, *u = NULL;
    spotdb_user_rows *page = NULL;
    char id[SPOTDB_UUID_SIZE];
    size_t before;
    int64_t n;

    OK(spotdb_set_trace(db, record, &trace_log));
    OK(spotdb_user_create(&u, db, &in, SPOTDB_USER_EMAIL |
                          SPOTDB_USER_USERNAME, PASSWORD));
    memcpy(id, u->id, sizeof id);
    spotdb_user_free(u);
    u = NULL;
    ck_assert_uint_eq(trace_log.n, 1);
    ck_assert(strncmp(last()->sql, "INSERT INTO users", 17) == 0);
    ck_assert(strstr(last()->sql, "$1") != NULL);
    ck_assert(strstr(last()->name, "creating") != NULL);
    ck_assert(strncmp(last()->statement, "spotdb_", 7) == 0);
    EQI(last()->rows, 1);
    EQI(last()->code, 0);
    EQS(last()->sqlstate, "");
    ck_assert(last()->duration_us >= 0 && last()->duration_us < 10000000);
    EQI(last()->replica, 0);

    OK(spotdb_user_get(&u, db, id));
    spotdb_user_free(u);
    u = NULL;
    EQI(last()->rows, 1);
    ck_assert(strstr(last()->name, "reading") != NULL);
    add_users(5);
    OK(spotdb_user_list(&page, db, NULL, NULL, 3));
    spotdb_user_rows_free(page);
    EQI(last()->rows, 4);               /* the page and one to look ahead */
    OK(spotdb_user_count(&n, db, NULL));
    EQI(n, rows_in("users"));
    EQI(last()->rows, 1);
    ck_assert(strstr(last()->name, "counting") != NULL);
    in.full_name = "Trace Marker Name";
    OK(spotdb_user_update(NULL, db, id, &in, SPOTDB_USER_FULL_NAME));
    EQI(last()->rows, 1);
    ck_assert(strncmp(last()->sql, "UPDATE users", 12) == 0);
    OK(spotdb_user_authenticate(&u, db, "tracer", PASSWORD));
    spotdb_user_free(u);
    u = NULL;
    OK(spotdb_user_set_password(db, id, PASSWORD "2"));

    /* a refusal: the code, the SQLSTATE, no rows */
    FAILS(SPOTDB_ECONFLICT, "users_email_key",
          spotdb_user_create(NULL, db, &in, SPOTDB_USER_EMAIL |
                             SPOTDB_USER_USERNAME, PASSWORD));
    EQI(last()->code, SPOTDB_ECONFLICT);
    EQS(last()->sqlstate, "23505");
    EQI(last()->rows, -1);
    OK(spotdb_user_delete(db, id));
    EQI(last()->rows, 1);

    nowhere(EMAIL);
    nowhere(PASSWORD);
    nowhere("$2b$");
    nowhere("Trace Marker Name");
    nowhere(id);

    /* removed: nothing more arrives */
    before = trace_log.n;
    OK(spotdb_set_trace(db, NULL, NULL));
    OK(spotdb_user_count(&n, db, NULL));
    EQI(trace_log.n, before);
    ck_assert_int_eq(spotdb_set_trace(NULL, record, NULL), SPOTDB_EINVAL);
}
END_TEST

static int count_rows(const spotdb_user *row, void *payload)
{
    (void)row;
    ++*(int64_t *)payload;
    return 0;
}

START_TEST(streams_and_bulk_inserts)
{
    int64_t streamed = 0, fetched = 0, total;
    size_t fetches = 0;
    char *user, *account, *instance;

    add_users(2500);
    total = rows_in("users");           /* and the seeded admin */
    OK(spotdb_set_trace(db, record, &trace_log));
    OK(spotdb_user_stream(db, NULL, count_rows, &streamed));
    EQI(streamed, total);
    ck_assert(strncmp(trace_log.items[0].sql, "BEGIN", 5) == 0);
    ck_assert(strncmp(trace_log.items[1].sql, "DECLARE", 7) == 0);
    for (size_t i = 0; i < trace_log.n; i++)
        if (strncmp(trace_log.items[i].sql, "FETCH", 5) == 0) {
            fetches++;
            fetched += trace_log.items[i].rows;
            EQI(trace_log.items[i].code, 0);
        }
    EQI(fetched, total);
    ck_assert_uint_ge(fetches, 3);
    EQS(last()->sql, "COMMIT");

    /* insert_many is one COPY; its event counts the rows */
    user = qf("SELECT id FROM users LIMIT 1");
    account = qf("INSERT INTO accounts (user_id, account_id, account_name, "
                 "role_arn, external_id) VALUES ('%s', '123456789012', 'a', "
                 "'arn:aws:iam::123456789012:role/x', 'ext-1') RETURNING id",
                 user);
    instance = qf("INSERT INTO instances (account_id, instance_id, "
                  "instance_type, availability_zone) VALUES ('%s', "
                  "'i-0123456789abcdef0', 't3.micro', 'ap-south-1a') "
                  "RETURNING id", account);
    {
        spotdb_experiment_log rows[7];

        memset(rows, 0, sizeof rows);
        for (int i = 0; i < 7; i++)
            memcpy(rows[i].instance_id, instance, SPOTDB_UUID_SIZE);
        log_clear();
        OK(spotdb_experiment_log_insert_many(db, rows, 7,
                                             SPOTDB_EXPERIMENT_LOG_INSTANCE_ID,
                                             NULL, NULL));
        /* the handle's first insert_many asks once whether row-level
         * security refuses it COPY (copy.c) */
        ck_assert_uint_eq(trace_log.n, 2);
        EQS(trace_log.items[0].name,
            "insert_many: checking for row-level security");
        ck_assert(strncmp(last()->sql, "COPY experiment_logs", 20) == 0);
        EQI(last()->rows, 7);
        EQS(last()->name, "inserting many");
    }
    nowhere(instance);
    free(user);
    free(account);
    free(instance);
}
END_TEST

START_TEST(migrations_are_traced_statement_by_statement)
{
    size_t initial = 0;
    int64_t missing;

    th_db_create();
    ck_assert_int_eq(th_open_unchecked(&db, th_db_conninfo()), 0);
    OK(spotdb_set_trace(db, record, &trace_log));
    /* before migrating, the table is missing: the refused PREPARE is the
     * event, with the server's code */
    FAILS(SPOTDB_ESQL, "users", spotdb_user_count(&missing, db, NULL));
    EQI(last()->code, SPOTDB_ESQL);
    EQS(last()->sqlstate, "42P01");
    log_clear();
    OK(spotdb_migrate(db, NULL));
    for (size_t i = 0; i < trace_log.n; i++) {
        EQI(trace_log.items[i].code, 0);
        initial += strcmp(trace_log.items[i].name, "0001_initial.sql") == 0;
    }
    /* one event per statement of the file, tables to views */
    ck_assert_uint_ge(initial, 20);
    spotdb_close(db);
    db = NULL;
    th_db_drop();
}
END_TEST

/* ---- the pooler option ----------------------------------------------------- */

START_TEST(direct_connections_are_not_pooled)
{
    spotdb_open_options o = SPOTDB_OPEN_OPTIONS_INIT;
    spotdb_db *h;
    spotdb_user *u = NULL;

    EQI(spotdb_pooled(db), 0);
    EQI(spotdb_pooled(NULL), 0);
    /* declared: unnamed statements, and no migrations */
    o.pooler = SPOTDB_POOLER_TRANSACTION;
    h = open_with(&o);
    EQI(spotdb_pooled(h), 1);
    OK_ON(h, spotdb_set_trace(h, record, &trace_log));
    add_users(1);
    ck_assert_int_eq(spotdb_user_get_by_username(&u, h, "bulk1"), 0);
    spotdb_user_free(u);
    EQS(last()->statement, "");
    ck_assert_int_eq(spotdb_migrate(h, NULL), SPOTDB_EPOOLER);
    ck_assert(strstr(spotdb_errmsg(h), "pooler") != NULL);
    ck_assert(strstr(spotdb_errmsg(h), "direct connection") != NULL);
    /* refused before anything ran: no lock was taken */
    EQI(last()->code, 0);
    /* only this database: other suites migrate in parallel */
    EQI(qn("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND "
           "database = (SELECT oid FROM pg_database "
           "WHERE datname = current_database())"), 0);
    spotdb_close(h);

    /* NONE trusts the caller: prepared statements */
    o.pooler = SPOTDB_POOLER_NONE;
    h = open_with(&o);
    EQI(spotdb_pooled(h), 0);
    spotdb_close(h);
}
END_TEST

START_TEST(pooler_and_replica_options_are_checked)
{
    spotdb_open_options o = SPOTDB_OPEN_OPTIONS_INIT;
    spotdb_db *h = NULL;

    o.pooler = 3;
    ck_assert_int_eq(spotdb_open(&h, th_db_conninfo(), &o), SPOTDB_EINVAL);
    ck_assert(strstr(spotdb_last_errmsg(), "opts->pooler") != NULL);
    o.pooler = -1;
    ck_assert_int_eq(spotdb_open(&h, th_db_conninfo(), &o), SPOTDB_EINVAL);
    o.pooler = 0;
    o.replica_reads = 2;
    ck_assert_int_eq(spotdb_open(&h, th_db_conninfo(), &o), SPOTDB_EINVAL);
    ck_assert(strstr(spotdb_last_errmsg(), "opts->replica_reads") != NULL);
    ck_assert_ptr_null(h);
    /* a version 3 caller's struct ends before them: never read */
    o.version = 3;
    h = open_with(&o);
    spotdb_close(h);
    FAILS(SPOTDB_EINVAL, "replica_reads", spotdb_replica_reads(db, 1));
    ck_assert_int_eq(spotdb_replica_reads(NULL, 1), SPOTDB_EINVAL);
}
END_TEST

/* ---- replica reads on a single server ------------------------------------- */

/* With no standby, prefer-standby lands on the primary: routed reads run
 * there, on the second connection, and give the same rows. */
START_TEST(routed_reads_use_the_read_connection)
{
    spotdb_open_options o = SPOTDB_OPEN_OPTIONS_INIT;
    spotdb_user_rows *page = NULL;
    spotdb_user *u = NULL;
    spotdb_db *h;
    int64_t n = 0;

    o.replica_reads = SPOTDB_REPLICA_READS_ON;
    h = open_with(&o);
    add_users(3);
    OK_ON(h, spotdb_set_trace(h, record, &trace_log));
    OK_ON(h, spotdb_user_list(&page, h, NULL, NULL, 10));
    EQI(page->count, rows_in("users"));
    spotdb_user_rows_free(page);
    EQI(last()->replica, 1);
    OK_ON(h, spotdb_user_count(&n, h, NULL));
    EQI(n, rows_in("users"));
    EQI(last()->replica, 1);
    /* a session besides the suite's and the main one: the read one */
    n = qn("SELECT count(*) FROM pg_stat_activity WHERE datname = "
           "current_database() AND pid NOT IN (pg_backend_pid(), %d, %d)",
           PQbackendPID(h->conn), PQbackendPID(db->conn));
    EQI(n, 1);
    /* gets and writes stay on the main connection */
    OK_ON(h, spotdb_user_get_by_username(&u, h, "bulk1"));
    spotdb_user_free(u);
    u = NULL;
    EQI(last()->replica, 0);
    /* inside a transaction everything does: it must see its own writes */
    OK_ON(h, spotdb_begin(h));
    OK_ON(h, spotdb_user_count(&n, h, NULL));
    EQI(last()->replica, 0);
    OK_ON(h, spotdb_commit(h));
    /* turned off, and on again */
    EQI(spotdb_replica_reads(h, 0), 1);
    OK_ON(h, spotdb_user_count(&n, h, NULL));
    EQI(last()->replica, 0);
    EQI(spotdb_replica_reads(h, 1), 0);
    OK_ON(h, spotdb_user_count(&n, h, NULL));
    EQI(last()->replica, 1);
    spotdb_close(h);
}
END_TEST

/* Terminate the handle's read connection: the session of the test
 * database that is neither this suite's raw one nor a main connection. */
static void kill_read_connection(spotdb_db *h)
{
    long killed = qn("SELECT count(pg_terminate_backend(pid)) FROM "
                     "pg_stat_activity WHERE datname = current_database() "
                     "AND pid NOT IN (pg_backend_pid(), %d, %d)",
                     PQbackendPID(h->conn), PQbackendPID(db->conn));

    EQI(killed, 1);
}

/* A broken read connection costs no call: it is replaced before the read
 * is sent, or the read is sent again on a new one, once. */
START_TEST(a_broken_read_connection_is_replaced)
{
    spotdb_open_options o = SPOTDB_OPEN_OPTIONS_INIT;
    spotdb_user_rows *page = NULL;
    int64_t streamed = 0;
    size_t failed = 0;
    spotdb_db *h;

    o.replica_reads = SPOTDB_REPLICA_READS_ON;
    h = open_with(&o);
    add_users(1500);
    OK_ON(h, spotdb_user_list(&page, h, NULL, NULL, 1));
    spotdb_user_rows_free(page);
    page = NULL;
    OK_ON(h, spotdb_set_trace(h, record, &trace_log));
    /* the read connection is the one that is not the main's */
    kill_read_connection(h);
    OK_ON(h, spotdb_user_list(&page, h, NULL, NULL, 2));
    EQI(page->count, 2);
    spotdb_user_rows_free(page);
    for (size_t i = 0; i < trace_log.n; i++)
        failed += trace_log.items[i].code == SPOTDB_ECONN &&
                  trace_log.items[i].replica;
    /* the kill is found before sending (the call probes its connection)
     * or by the read itself, which is then sent again: one failure at
     * most, and the read answered from a new read connection */
    ck_assert_uint_le(failed, 1);
    EQI(last()->code, 0);
    EQI(last()->replica, 1);
    EQI(qn("SELECT count(*) FROM pg_stat_activity WHERE datname = "
           "current_database() AND pid NOT IN (pg_backend_pid(), %d, %d)",
           PQbackendPID(h->conn), PQbackendPID(db->conn)), 1);

    /* a stream that broke before its first row is sent again too */
    kill_read_connection(h);
    OK_ON(h, spotdb_user_stream(h, NULL, count_rows, &streamed));
    EQI(streamed, rows_in("users"));
    spotdb_close(h);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("trace");
    TCase *hook = tcase_create("hook");
    TCase *pooler = tcase_create("pooler");
    TCase *replica = tcase_create("replica");
    TCase *migrate = tcase_create("migrate");

    tcase_add_checked_fixture(hook, setup, teardown);
    tcase_add_test(hook, each_call_is_one_event_without_values);
    tcase_add_test(hook, streams_and_bulk_inserts);
    tcase_set_timeout(hook, 120);
    suite_add_tcase(s, hook);

    /* its own database, not migrated */
    tcase_add_test(migrate, migrations_are_traced_statement_by_statement);
    suite_add_tcase(s, migrate);

    tcase_add_checked_fixture(pooler, setup, teardown);
    tcase_add_test(pooler, direct_connections_are_not_pooled);
    tcase_add_test(pooler, pooler_and_replica_options_are_checked);
    suite_add_tcase(s, pooler);

    tcase_add_checked_fixture(replica, setup, teardown);
    tcase_add_test(replica, routed_reads_use_the_read_connection);
    tcase_add_test(replica, a_broken_read_connection_is_replaced);
    tcase_set_timeout(replica, 120);
    suite_add_tcase(s, replica);
    return th_run(s);
}
