/*
 * The connection pool (spotdb/pool.h) against the private server: lending
 * and giving back, the size limit and the acquire timeout, the health
 * check that replaces a connection whose session was terminated while
 * idle, the reset of a handle given back inside a transaction, the
 * refusal to close while handles are lent, and a stress run: 16 threads
 * of 2,000 mixed operations each on a pool of 4, every read checked, and
 * file descriptors and memory back to where they were once the pool is
 * closed.
 *
 * SPOTDB_POOL_STRESS_OPS sets the operations per thread of the stress run
 * (default 2000, under valgrind too).
 */
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include "harness.h"
#include "internal.h"
#include "workload.h"

/* The call succeeds; otherwise the test fails with the thread-local
 * message (calls on a pool have no handle) or the handle's. */
#define POOL_OK(call)                                                        \
    do {                                                                     \
        int rc_ = (call);                                                    \
        ck_assert_msg(rc_ == 0, "%s -> %d (%s): %s", #call, rc_,             \
                      spotdb_strerror(rc_), spotdb_last_errmsg());           \
    } while (0)
#define DB_OK(db, call)                                                      \
    do {                                                                     \
        int rc_ = (call);                                                    \
        ck_assert_msg(rc_ == 0, "%s -> %d (%s): %s", #call, rc_,             \
                      spotdb_strerror(rc_), spotdb_errmsg(db));              \
    } while (0)

/* Client sessions on the test database other than the asking one. */
#define SESSIONS                                                             \
    "SELECT count(*) FROM pg_stat_activity WHERE datname = "                 \
    "current_database() AND pid <> pg_backend_pid() AND backend_type = "     \
    "'client backend'"

/* ---- helpers ------------------------------------------------------------- */

static spotdb_pool *open_pool(int32_t max_size, int32_t initial,
                              int32_t idle_check_ms)
{
    spotdb_pool_options o = SPOTDB_POOL_OPTIONS_INIT;
    spotdb_pool *p = NULL;

    o.max_size = max_size;
    o.initial_size = initial;
    o.idle_check_after_ms = idle_check_ms;
    POOL_OK(spotdb_pool_open(&p, th_db_conninfo(), &o));
    ck_assert_ptr_nonnull(p);
    return p;
}

static spotdb_pool_stats stats(spotdb_pool *p)
{
    spotdb_pool_stats s = SPOTDB_POOL_STATS_INIT;

    POOL_OK(spotdb_pool_stats_get(&s, p));
    return s;
}

/* The server's pid of the handle's session, asked of the server. */
static long server_pid(spotdb_db *db)
{
    PGresult *r = spotdb__exec(db, "SELECT pg_backend_pid()", "pid");
    long pid;

    ck_assert_msg(r != NULL, "pg_backend_pid(): %s", spotdb_errmsg(db));
    pid = strtol(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return pid;
}

/* A call that needs the server and the schema. */
static int64_t count_models(spotdb_db *db)
{
    int64_t n = -1;

    DB_OK(db, spotdb_model_count(&n, db, NULL));
    return n;
}

/* Terminate a session and wait until the server has let it go. */
static void terminate(PGconn *admin, long pid)
{
    th_qeq(admin, "t", "SELECT pg_terminate_backend(%ld)", pid);
    for (int k = 0; k < 500; k++) {
        if (th_qn(admin, "SELECT count(*) FROM pg_stat_activity WHERE "
                         "pid = %ld", pid) == 0)
            return;
        th_sleep_s(0.01);
    }
    ck_abort_msg("session %ld still there 5 s after termination", pid);
}

/* Wait until the test database has `n` client sessions (a closed one
 * leaves the server shortly after the client has let it go). */
static long sessions_settle(PGconn *c, long n)
{
    long have = -1;

    for (int k = 0; k < 500 && (have = th_count(c, SESSIONS)) != n; k++)
        th_sleep_s(0.01);
    return have;
}

/* ---- arguments and options ----------------------------------------------- */

START_TEST(options_and_arguments)
{
    spotdb_pool_options o;
    spotdb_open_options oo = SPOTDB_OPEN_OPTIONS_INIT;
    spotdb_pool_stats s = SPOTDB_POOL_STATS_INIT;
    spotdb_pool *p = (spotdb_pool *)&o, *other;
    spotdb_db *db = (spotdb_db *)&o, *mine;

    memset(&o, 0xff, sizeof o);
    POOL_OK(spotdb_pool_options_init(&o, SPOTDB_POOL_OPTIONS_VERSION));
    ck_assert_uint_eq(o.version, SPOTDB_POOL_OPTIONS_VERSION);
    ck_assert(o.max_size == 0 && o.initial_size == 0 &&
              o.acquire_timeout_ms == 0 && o.idle_check_after_ms == 0 &&
              o.open_options == NULL);
    ck_assert_int_eq(spotdb_pool_options_init(&o, 99), SPOTDB_EINVAL);
    ck_assert_int_eq(spotdb_pool_options_init(NULL, 1), SPOTDB_EINVAL);

    /* Bad options: EINVAL naming the member, and *out NULL. */
    spotdb_pool_options_init(&o, SPOTDB_POOL_OPTIONS_VERSION);
    o.max_size = -1;
    ck_assert_int_eq(spotdb_pool_open(&p, "", &o), SPOTDB_EINVAL);
    ck_assert_ptr_null(p);
    ck_assert_ptr_nonnull(strstr(spotdb_last_errmsg(), "max_size"));
    o.max_size = 2;
    o.initial_size = 3;
    ck_assert_int_eq(spotdb_pool_open(&p, "", &o), SPOTDB_EINVAL);
    ck_assert_ptr_nonnull(strstr(spotdb_last_errmsg(), "initial_size"));
    o.initial_size = 0;
    o.acquire_timeout_ms = -2;
    ck_assert_int_eq(spotdb_pool_open(&p, "", &o), SPOTDB_EINVAL);
    ck_assert_ptr_nonnull(strstr(spotdb_last_errmsg(), "acquire_timeout_ms"));
    o.acquire_timeout_ms = 0;
    o.version = 0;
    ck_assert_int_eq(spotdb_pool_open(&p, "", &o), SPOTDB_EINVAL);
    o.version = SPOTDB_POOL_OPTIONS_VERSION;
    oo.version = 99;
    o.open_options = &oo;
    ck_assert_int_eq(spotdb_pool_open(&p, "", &o), SPOTDB_EINVAL);
    ck_assert_ptr_nonnull(strstr(spotdb_last_errmsg(), "open_options"));
    ck_assert_int_eq(spotdb_pool_open(NULL, "", NULL), SPOTDB_EINVAL);

    /* A server that is not there fails at open when initial_size asks
     * for a connection, and only at acquire otherwise. */
    o.open_options = NULL;
    o.initial_size = 1;
    ck_assert_int_eq(spotdb_pool_open(&p, "host=/nonexistent-pool", &o),
                     SPOTDB_ECONN);
    ck_assert_ptr_null(p);
    ck_assert_ptr_nonnull(strstr(spotdb_last_errmsg(), "nonexistent-pool"));
    o.initial_size = 0;
    POOL_OK(spotdb_pool_open(&p, "host=/nonexistent-pool", &o));
    ck_assert_int_eq(spotdb_pool_acquire(p, &db, 0), SPOTDB_ECONN);
    ck_assert_ptr_null(db);
    ck_assert_int_eq(stats(p).size, 0);   /* the slot came free again */

    /* NULLs and a handle the pool never lent. */
    ck_assert_int_eq(spotdb_pool_acquire(NULL, &db, 0), SPOTDB_EINVAL);
    ck_assert_int_eq(spotdb_pool_acquire(p, NULL, 0), SPOTDB_EINVAL);
    ck_assert_int_eq(spotdb_pool_acquire(p, &db, -3), SPOTDB_EINVAL);
    ck_assert_int_eq(spotdb_pool_release(p, NULL), 0);
    ck_assert_int_eq(spotdb_pool_release(NULL, NULL), SPOTDB_EINVAL);
    mine = th_open();
    ck_assert_int_eq(spotdb_pool_release(p, mine), SPOTDB_EINVAL);
    ck_assert_ptr_nonnull(strstr(spotdb_last_errmsg(), "not lent"));
    ck_assert_int_eq(count_models(mine), 0);  /* untouched */
    spotdb_close(mine);
    ck_assert_int_eq(spotdb_pool_stats_get(NULL, p), SPOTDB_EINVAL);
    ck_assert_int_eq(spotdb_pool_stats_get(&s, NULL), SPOTDB_EINVAL);
    s.version = 0;
    ck_assert_int_eq(spotdb_pool_stats_get(&s, p), SPOTDB_EINVAL);
    POOL_OK(spotdb_pool_close(p));
    ck_assert_int_eq(spotdb_pool_close(NULL), 0);

    /* A handle of one pool is refused by another. */
    p = open_pool(1, 0, 0);
    other = open_pool(1, 0, 0);
    POOL_OK(spotdb_pool_acquire(p, &db, 0));
    ck_assert_int_eq(spotdb_pool_release(other, db), SPOTDB_EINVAL);
    POOL_OK(spotdb_pool_release(p, db));
    ck_assert_int_eq(spotdb_pool_release(p, db), SPOTDB_EINVAL); /* twice */
    POOL_OK(spotdb_pool_close(other));
    POOL_OK(spotdb_pool_close(p));
}
END_TEST

/* The open options are copied: the caller's struct and strings may go
 * away; and a struct of an older version is read as such. */
START_TEST(open_options_are_copied)
{
    spotdb_pool_options o = SPOTDB_POOL_OPTIONS_INIT;
    spotdb_open_options *oo = malloc(sizeof *oo);
    char *name = strdup("pool-test-app");
    PGconn *admin = th_connect(th_db_conninfo());
    spotdb_pool *p;
    spotdb_db *db;

    ck_assert(oo && name);
    spotdb_open_options_init(oo, 4);
    oo->application_name = name;
    o.open_options = oo;
    POOL_OK(spotdb_pool_open(&p, th_db_conninfo(), &o));
    memset(name, 'x', strlen(name));
    free(name);
    free(oo);
    POOL_OK(spotdb_pool_acquire(p, &db, 0));
    th_qeq(admin, "pool-test-app", "SELECT application_name FROM "
           "pg_stat_activity WHERE pid = %ld", server_pid(db));
    POOL_OK(spotdb_pool_release(p, db));
    POOL_OK(spotdb_pool_close(p));
    PQfinish(admin);
}
END_TEST

/* ---- lending ------------------------------------------------------------- */

START_TEST(acquire_and_release)
{
    spotdb_pool *p = open_pool(2, 1, 0);
    PGconn *admin = th_connect(th_db_conninfo());
    spotdb_pool_stats s = stats(p);
    spotdb_db *a, *b, *again;
    long pid_a;

    ck_assert(s.max_size == 2 && s.size == 1 && s.idle == 1 &&
              s.in_use == 0 && s.acquires == 0);
    ck_assert_int_eq(sessions_settle(admin, 1), 1);
    POOL_OK(spotdb_pool_acquire(p, &a, SPOTDB_POOL_WAIT_DEFAULT));
    pid_a = server_pid(a);
    ck_assert_int_eq(count_models(a), 0);
    s = stats(p);
    ck_assert(s.size == 1 && s.idle == 0 && s.in_use == 1 &&
              s.acquires == 1 && s.waits == 0);
    /* A second one is opened on demand. */
    POOL_OK(spotdb_pool_acquire(p, &b, 0));
    ck_assert_ptr_ne(a, b);
    ck_assert_int_ne(server_pid(b), pid_a);
    ck_assert_int_eq(stats(p).size, 2);
    ck_assert_int_eq(sessions_settle(admin, 2), 2);
    POOL_OK(spotdb_pool_release(p, b));
    POOL_OK(spotdb_pool_release(p, a));
    s = stats(p);
    ck_assert(s.size == 2 && s.idle == 2 && s.in_use == 0);
    /* The most recently given back comes first, same session. */
    POOL_OK(spotdb_pool_acquire(p, &again, 0));
    ck_assert_ptr_eq(again, a);
    ck_assert_int_eq(server_pid(again), pid_a);
    POOL_OK(spotdb_pool_release(p, again));
    ck_assert_int_eq(stats(p).acquires, 3);
    ck_assert_int_eq(stats(p).reconnects, 0);
    POOL_OK(spotdb_pool_close(p));
    /* Closing the pool closed its sessions. */
    ck_assert_int_eq(sessions_settle(admin, 0), 0);
    PQfinish(admin);
}
END_TEST

typedef struct waiter {
    spotdb_pool *p;
    int32_t timeout_ms;
    int rc;
    spotdb_db *db;
    double waited_s;
} waiter;

static void *acquire_in_thread(void *arg)
{
    waiter *w = arg;
    double t0 = th_now_s();

    w->rc = spotdb_pool_acquire(w->p, &w->db, w->timeout_ms);
    w->waited_s = th_now_s() - t0;
    return NULL;
}

START_TEST(max_size_is_respected)
{
    spotdb_pool *p = open_pool(2, 0, 0);
    PGconn *admin = th_connect(th_db_conninfo());
    spotdb_db *a, *b, *c = (spotdb_db *)p;
    waiter w = { 0 };
    pthread_t t;
    double t0, took;

    POOL_OK(spotdb_pool_acquire(p, &a, 0));
    POOL_OK(spotdb_pool_acquire(p, &b, 0));
    /* The third waits its timeout out, then ETIMEOUT. */
    t0 = th_now_s();
    ck_assert_int_eq(spotdb_pool_acquire(p, &c, 300), SPOTDB_ETIMEOUT);
    took = th_now_s() - t0;
    printf("pool: acquire(300 ms) on a full pool timed out after %.0f ms\n",
           took * 1000);
    ck_assert_msg(took >= 0.29 && took < 3.0, "took %.3f s", took);
    ck_assert_ptr_null(c);
    ck_assert_ptr_nonnull(strstr(spotdb_last_errmsg(), "300 ms"));
    /* A try does not wait. */
    t0 = th_now_s();
    ck_assert_int_eq(spotdb_pool_acquire(p, &c, 0), SPOTDB_ETIMEOUT);
    ck_assert_msg(th_now_s() - t0 < 0.25, "a try waited %.3f s",
                  th_now_s() - t0);
    ck_assert_int_eq(stats(p).timeouts, 2);
    ck_assert_int_eq(stats(p).waits, 1);
    ck_assert_int_eq(th_count(admin, SESSIONS), 2);

    /* One waiting without limit gets the first handle given back. */
    w.p = p;
    w.timeout_ms = SPOTDB_POOL_WAIT_FOREVER;
    ck_assert_int_eq(pthread_create(&t, NULL, acquire_in_thread, &w), 0);
    for (int k = 0; k < 500 && stats(p).waiting != 1; k++)
        th_sleep_s(0.01);
    ck_assert_int_eq(stats(p).waiting, 1);
    th_sleep_s(0.2);
    ck_assert_int_eq(stats(p).waiting, 1);  /* still waiting */
    POOL_OK(spotdb_pool_release(p, b));
    pthread_join(t, NULL);
    ck_assert_msg(w.rc == 0, "waiter: %s", spotdb_strerror(w.rc));
    ck_assert_ptr_eq(w.db, b);
    ck_assert_msg(w.waited_s >= 0.2, "waited %.3f s", w.waited_s);
    ck_assert_int_eq(stats(p).waiting, 0);
    ck_assert_int_eq(stats(p).size, 2);
    ck_assert_int_eq(count_models(w.db), 0);
    POOL_OK(spotdb_pool_release(p, a));
    POOL_OK(spotdb_pool_release(p, w.db));
    POOL_OK(spotdb_pool_close(p));
    ck_assert_int_eq(sessions_settle(admin, 0), 0);
    PQfinish(admin);
}
END_TEST

START_TEST(default_acquire_timeout)
{
    spotdb_pool_options o = SPOTDB_POOL_OPTIONS_INIT;
    spotdb_pool *p;
    spotdb_db *a, *b;
    double t0, took;

    o.max_size = 1;
    o.acquire_timeout_ms = 200;
    POOL_OK(spotdb_pool_open(&p, th_db_conninfo(), &o));
    POOL_OK(spotdb_pool_acquire(p, &a, SPOTDB_POOL_WAIT_DEFAULT));
    t0 = th_now_s();
    ck_assert_int_eq(spotdb_pool_acquire(p, &b, SPOTDB_POOL_WAIT_DEFAULT),
                     SPOTDB_ETIMEOUT);
    took = th_now_s() - t0;
    ck_assert_msg(took >= 0.19 && took < 3.0, "took %.3f s", took);
    POOL_OK(spotdb_pool_release(p, a));
    POOL_OK(spotdb_pool_close(p));
}
END_TEST

/* ---- health and reset ---------------------------------------------------- */

/* A session terminated while its handle sat idle is noticed before the
 * handle is lent, without a ping (idle_check_after_ms -1), and replaced:
 * the caller gets a working handle and no error. */
START_TEST(terminated_idle_connection_is_replaced)
{
    spotdb_pool *p = open_pool(1, 1, -1);
    PGconn *admin = th_connect(th_db_conninfo());
    spotdb_db *db;
    long pid, pid2;

    POOL_OK(spotdb_pool_acquire(p, &db, 0));
    pid = server_pid(db);
    POOL_OK(spotdb_pool_release(p, db));
    terminate(admin, pid);
    ck_assert_int_eq(stats(p).idle, 1);        /* not noticed yet */
    POOL_OK(spotdb_pool_acquire(p, &db, 0));
    ck_assert_str_eq(spotdb_last_errmsg(), "");
    ck_assert_int_eq(count_models(db), 0);
    pid2 = server_pid(db);
    ck_assert_int_ne(pid2, pid);
    POOL_OK(spotdb_pool_release(p, db));
    ck_assert_int_eq(stats(p).reconnects, 1);
    ck_assert_int_eq(stats(p).size, 1);
    ck_assert_int_eq(stats(p).acquires, 2);
    POOL_OK(spotdb_pool_close(p));
    PQfinish(admin);
}
END_TEST

/* A handle idle longer than idle_check_after_ms is pinged, one used a
 * moment ago is not. */
START_TEST(long_idle_connection_is_pinged)
{
    spotdb_pool *p = open_pool(1, 1, 50);
    spotdb_db *db;
    long pid;

    POOL_OK(spotdb_pool_acquire(p, &db, 0));     /* fresh: idle < 50 ms */
    pid = server_pid(db);
    POOL_OK(spotdb_pool_release(p, db));
    POOL_OK(spotdb_pool_acquire(p, &db, 0));     /* again at once */
    POOL_OK(spotdb_pool_release(p, db));
    ck_assert_int_eq(stats(p).pings, 0);
    th_sleep_s(0.12);
    POOL_OK(spotdb_pool_acquire(p, &db, 0));
    ck_assert_int_eq(stats(p).pings, 1);
    ck_assert_int_eq(server_pid(db), pid);       /* alive: kept */
    POOL_OK(spotdb_pool_release(p, db));
    ck_assert_int_eq(stats(p).reconnects, 0);
    POOL_OK(spotdb_pool_close(p));
}
END_TEST

/* A handle whose session dies inside a transaction fails its call (the
 * library does not reconnect under a transaction); given back, it is
 * closed, and the next acquire opens a new one. */
START_TEST(broken_handle_given_back_is_replaced)
{
    spotdb_pool *p = open_pool(1, 0, 0);
    PGconn *admin = th_connect(th_db_conninfo());
    spotdb_db *db, *db2;
    int64_t n;
    long pid;

    POOL_OK(spotdb_pool_acquire(p, &db, 0));
    pid = server_pid(db);
    DB_OK(db, spotdb_begin(db));
    terminate(admin, pid);
    ck_assert_int_eq(spotdb_model_count(&n, db, NULL), SPOTDB_ECONN);
    ck_assert_int_eq(stats(p).size, 1);
    POOL_OK(spotdb_pool_release(p, db));
    ck_assert_int_eq(stats(p).size, 0);
    ck_assert_int_eq(stats(p).reconnects, 1);
    POOL_OK(spotdb_pool_acquire(p, &db2, 0));
    ck_assert_int_eq(count_models(db2), 0);
    ck_assert_int_ne(server_pid(db2), pid);
    POOL_OK(spotdb_pool_release(p, db2));
    POOL_OK(spotdb_pool_close(p));
    PQfinish(admin);
}
END_TEST

static int traced;

static void count_trace(const spotdb_trace_event *e, void *payload)
{
    (void)e;
    (void)payload;
    traced++;
}

/* Given back inside a transaction: rolled back at once (the session is
 * idle, not idle in transaction, and the row is gone), and the next
 * borrower gets no transaction, no trace hook and no call timeout. */
START_TEST(released_in_transaction_is_rolled_back)
{
    spotdb_pool *p = open_pool(1, 0, 0);
    PGconn *admin = th_connect(th_db_conninfo());
    spotdb_model in, *m = NULL;
    spotdb_db *db;
    long pid;

    POOL_OK(spotdb_pool_acquire(p, &db, 0));
    pid = server_pid(db);
    DB_OK(db, spotdb_set_trace(db, count_trace, NULL));
    DB_OK(db, spotdb_set_call_timeout(db, 5000));
    DB_OK(db, spotdb_begin(db));
    memset(&in, 0, sizeof in);
    in.name = "UncommittedModel";
    in.version = "v1";
    DB_OK(db, spotdb_model_create(&m, db, &in,
                                  SPOTDB_MODEL_NAME | SPOTDB_MODEL_VERSION));
    spotdb_model_free(m);
    th_qeq(admin, "idle in transaction", "SELECT state FROM "
           "pg_stat_activity WHERE pid = %ld", pid);
    POOL_OK(spotdb_pool_release(p, db));
    th_qeq(admin, "idle", "SELECT state FROM pg_stat_activity WHERE "
           "pid = %ld", pid);
    ck_assert_int_eq(th_count(admin, "SELECT count(*) FROM model_registry"),
                     0);
    POOL_OK(spotdb_pool_acquire(p, &db, 0));
    ck_assert_int_eq(server_pid(db), pid);       /* the same session */
    ck_assert_int_eq(spotdb_in_transaction(db), 0);
    ck_assert_int_eq(db->call_timeout_ms, 0);    /* the open options' */
    traced = 0;
    ck_assert_int_eq(count_models(db), 0);
    ck_assert_int_eq(traced, 0);
    POOL_OK(spotdb_pool_release(p, db));
    ck_assert_int_eq(stats(p).reconnects, 0);
    POOL_OK(spotdb_pool_close(p));
    PQfinish(admin);
}
END_TEST

START_TEST(close_refuses_while_lent)
{
    spotdb_pool *p = open_pool(2, 2, 0);
    PGconn *admin = th_connect(th_db_conninfo());
    spotdb_db *db;

    POOL_OK(spotdb_pool_acquire(p, &db, 0));
    ck_assert_int_eq(spotdb_pool_close(p), SPOTDB_EINVAL);
    ck_assert_ptr_nonnull(strstr(spotdb_last_errmsg(), "1 handle(s) still "
                                 "lent"));
    /* Nothing changed: the pool and the lent handle still work. */
    ck_assert_int_eq(count_models(db), 0);
    ck_assert_int_eq(stats(p).size, 2);
    POOL_OK(spotdb_pool_release(p, db));
    POOL_OK(spotdb_pool_close(p));
    ck_assert_int_eq(sessions_settle(admin, 0), 0);
    PQfinish(admin);
}
END_TEST

/* ---- stress -------------------------------------------------------------- */

#define THREADS 16
#define STRESS_POOL 4

/* A transaction given back unfinished: the pool rolls it back, so the
 * log must not count (wl_op_count_logs and the final check see to it). */
static void op_abandoned_transaction(wl_worker *w, spotdb_db *db, int i)
{
    WL_CALL("begin", spotdb_begin(db));
    WL_CALL("creating a log to abandon", wl_create_log(w, db, i));
out:
    return;
}

static void run_op(wl_worker *w, spotdb_db *db, int i)
{
    switch (i % 10) {
    case 0: wl_op_create_log(w, db, i); break;
    case 1: wl_op_get_instance(w, db); break;
    case 2: wl_op_update_instance(w, db); break;
    case 3: wl_op_list_logs(w, db); break;
    case 4: wl_op_count_logs(w, db); break;
    case 5: wl_op_transaction(w, db, i); break;
    case 6:
        if (i % 20 < 10)
            wl_op_active_view(w, db);
        else
            wl_op_recent_view(w, db);
        break;
    case 7:
        if (i % 50 == 7)
            op_abandoned_transaction(w, db, i);
        else
            wl_op_report(w, db);
        break;
    default: wl_op_delete_oldest_log(w, db); break;
    }
}

/* Every operation borrows a handle of the pool in w->ctx, so consecutive
 * ones of a thread run on different connections and still see the
 * thread's own writes. */
static void work(wl_worker *w)
{
    spotdb_pool *pool = w->ctx;

    for (int i = 0; i < w->ops; i++) {
        spotdb_db *db = NULL;
        int rc = spotdb_pool_acquire(pool, &db, SPOTDB_POOL_WAIT_DEFAULT);

        if (rc != 0) {
            wl_note_error(w, NULL, "acquire", rc);
            continue;
        }
        run_op(w, db, i);
        rc = spotdb_pool_release(pool, db);
        if (rc != 0)
            wl_note_error(w, NULL, "release", rc);
    }
}

typedef struct watch {
    PGconn *admin;
    long max_sessions;
} watch;

/* While the threads run: the server never sees more sessions than the
 * pool's. */
static void count_sessions(void *payload)
{
    watch *m = payload;
    long n = th_count(m->admin, SESSIONS);

    if (n > m->max_sessions)
        m->max_sessions = n;
}

/* Run every worker `ops` operations on a new pool of STRESS_POOL, close
 * it; returns the seconds taken, the pool's last stats in *s. */
static double run_pool(wl_worker *w, int ops, spotdb_pool_stats *s,
                       PGconn *admin, long *max_sessions)
{
    spotdb_pool *p = open_pool(STRESS_POOL, 0, 0);
    watch m = { admin, 0 };
    double secs;

    for (int i = 0; i < THREADS; i++) {
        w[i].ctx = p;
        w[i].ops = ops;
    }
    secs = wl_run(w, THREADS, work, count_sessions, &m, 0.05);
    *max_sessions = m.max_sessions;
    *s = stats(p);
    POOL_OK(spotdb_pool_close(p));
    return secs;
}

static int stress_ops(void)
{
    const char *v = getenv("SPOTDB_POOL_STRESS_OPS");
    int n = v ? atoi(v) : 0;

    return n > 0 ? n : 2000;
}

static long open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    long n = 0;

    ck_assert_ptr_nonnull(d);
    while ((e = readdir(d)))
        n += e->d_name[0] != '.';
    closedir(d);
    return n - 1;                   /* opendir's own */
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;

    ck_assert_ptr_nonnull(f);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kib = strtol(line + 6, NULL, 10);
    fclose(f);
    return kib;
}

/* Bytes malloc has handed out and not got back (glibc's allocator; 0
 * where a sanitizer or valgrind replaces it). */
static long heap_in_use(void)
{
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 33)
    struct mallinfo2 mi = mallinfo2();

    return (long)mi.uordblks;
#else
    return 0;
#endif
}

/* RSS says little under a sanitizer (shadow memory) or valgrind. */
static bool rss_meaningful(void)
{
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    return false;
#else
    return !th_under_valgrind();
#endif
}

START_TEST(stress_sixteen_threads_pool_of_four)
{
    wl_worker w[THREADS];
    spotdb_db *db = th_open();
    PGconn *admin = th_connect(th_db_conninfo());
    int ops = stress_ops();
    long fds0, fds1, rss0, rss1, heap0, heap1, max_sessions;
    spotdb_pool_stats s;
    wl_totals r;
    double secs;

    for (int i = 0; i < THREADS; i++)
        wl_prepare(&w[i], db, i, ops + 20);
    spotdb_close(db);
    /* A short warm-up round first, so that the baseline includes what a
     * process sets up once (thread stacks glibc caches, malloc arenas of
     * 16 threads, libpq's first-use state). */
    run_pool(w, 20, &s, admin, &max_sessions);
    ck_assert_int_eq(sessions_settle(admin, 0), 0);
    fds0 = open_fds();
    rss0 = rss_kib();
    heap0 = heap_in_use();

    secs = run_pool(w, ops, &s, admin, &max_sessions);
    ck_assert_int_eq(sessions_settle(admin, 0), 0);
    fds1 = open_fds();
    rss1 = rss_kib();
    heap1 = heap_in_use();
    r = wl_sum(w, THREADS);
    printf("pool stress: %d threads x %d operations on a pool of %d: "
           "%d errors, %d mismatches, %.1f s, %.0f ops/s; acquires %lld, "
           "waits %lld, timeouts %lld, reconnects %lld, pings %lld, at most "
           "%ld server sessions\n", THREADS, ops, STRESS_POOL, r.errors,
           r.mismatches, secs, THREADS * ops / secs, (long long)s.acquires,
           (long long)s.waits, (long long)s.timeouts,
           (long long)s.reconnects, (long long)s.pings, max_sessions);
    printf("pool stress: after the pool closed: fds %ld -> %ld, RSS %ld -> "
           "%ld KiB, heap in use %ld -> %ld bytes\n", fds0, fds1, rss0, rss1,
           heap0, heap1);
    ck_assert_msg(r.errors == 0 && r.mismatches == 0, "%d errors, %d "
                  "mismatches; first: %s", r.errors, r.mismatches, r.first);
    ck_assert_int_eq(s.acquires, (int64_t)THREADS * ops);
    ck_assert_int_eq(s.timeouts, 0);
    ck_assert_int_eq(s.reconnects, 0);
    ck_assert_int_le(s.size, STRESS_POOL);
    ck_assert_int_ge(max_sessions, 1);
    ck_assert_int_le(max_sessions, STRESS_POOL);
    ck_assert_int_eq(fds1, fds0);
    ck_assert_msg(heap1 <= heap0 + 64 * 1024, "heap grew from %ld to %ld "
                  "bytes", heap0, heap1);
    if (rss_meaningful())
        ck_assert_msg(rss1 <= rss0 + 4096, "RSS grew from %ld to %ld KiB",
                      rss0, rss1);
    /* What each thread believes it wrote is what a direct reader sees;
     * the abandoned transactions left nothing. */
    wl_check_written(admin, w, THREADS);
    wl_free(w, THREADS);
    PQfinish(admin);
}
END_TEST

static Suite *pool_suite(void)
{
    Suite *s = suite_create("pool");
    TCase *tc = tcase_create("pool");

    tcase_add_checked_fixture(tc, th_setup_migrated_db, th_teardown_db);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, options_and_arguments);
    tcase_add_test(tc, open_options_are_copied);
    tcase_add_test(tc, acquire_and_release);
    tcase_add_test(tc, max_size_is_respected);
    tcase_add_test(tc, default_acquire_timeout);
    tcase_add_test(tc, terminated_idle_connection_is_replaced);
    tcase_add_test(tc, long_idle_connection_is_pinged);
    tcase_add_test(tc, broken_handle_given_back_is_replaced);
    tcase_add_test(tc, released_in_transaction_is_rolled_back);
    tcase_add_test(tc, close_refuses_while_lent);
    suite_add_tcase(s, tc);

    tc = tcase_create("stress");
    tcase_add_checked_fixture(tc, th_setup_migrated_db, th_teardown_db);
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, stress_sixteen_threads_pool_of_four);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return th_run(pool_suite());
}
