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
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(__GLIBC__)
#include <malloc.h>
#endif
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

#include "harness.h"
#include "internal.h"

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
#define RECENT 20

typedef struct worker {
    spotdb_pool *pool;
    int index;
    int ops;
    char instance[SPOTDB_UUID_SIZE];
    char model[SPOTDB_UUID_SIZE];
    char model_name[32];
    /* outcome */
    int errors;
    int mismatches;
    char first[320];
    int64_t logs;                   /* live logs of this thread's instance */
    int64_t last_eval;
    char (*ids)[SPOTDB_UUID_SIZE];  /* ids of live logs, oldest first */
    size_t head;
    size_t total;                   /* ids written */
} worker;

static void note(worker *w, const char *what, const char *detail)
{
    if (!w->first[0])
        snprintf(w->first, sizeof w->first, "thread %d, %s: %s", w->index,
                 what, detail);
}

static void note_error(worker *w, spotdb_db *db, const char *what, int rc)
{
    char detail[280];

    w->errors++;
    snprintf(detail, sizeof detail, "%s: %s", spotdb_strerror(rc),
             db ? spotdb_errmsg(db) : spotdb_last_errmsg());
    note(w, what, detail);
}

static void mismatch(worker *w, const char *what)
{
    w->mismatches++;
    note(w, what, "mismatch");
}

#define CALL(what, call)                                                     \
    do {                                                                     \
        int rc_ = (call);                                                    \
        if (rc_ != 0) {                                                      \
            note_error(w, db, what, rc_);                                    \
            goto out;                                                        \
        }                                                                    \
    } while (0)

static int create_log(worker *w, spotdb_db *db, int i)
{
    spotdb_experiment_log in, *e = NULL;
    int rc;

    memset(&in, 0, sizeof in);
    memcpy(in.instance_id, w->instance, SPOTDB_UUID_SIZE);
    memcpy(in.model_id, w->model, SPOTDB_UUID_SIZE);
    in.decision = i % 3 ? "STAY" : "SWITCH";
    in.prediction_score = (i % 100) / 100.0;
    in.execution_time = spotdb_now_us();
    rc = spotdb_experiment_log_create(&e, db, &in,
             SPOTDB_EXPERIMENT_LOG_INSTANCE_ID |
             SPOTDB_EXPERIMENT_LOG_MODEL_ID | SPOTDB_EXPERIMENT_LOG_DECISION |
             SPOTDB_EXPERIMENT_LOG_PREDICTION_SCORE |
             SPOTDB_EXPERIMENT_LOG_EXECUTION_TIME);
    if (rc == 0) {
        if (strcmp(e->instance_id, w->instance) != 0)
            mismatch(w, "a created log names another instance");
        memcpy(w->ids[w->total], e->id, SPOTDB_UUID_SIZE);
    }
    spotdb_experiment_log_free(e);
    return rc;
}

static void op_create_log(worker *w, spotdb_db *db, int i)
{
    CALL("creating a log", create_log(w, db, i));
    w->total++;
    w->logs++;
out:
    return;
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

static int update_eval(spotdb_db *db, const char *id, int64_t *eval)
{
    spotdb_instance ch;

    memset(&ch, 0, sizeof ch);
    ch.last_evaluation = *eval = spotdb_now_us();
    return spotdb_instance_update(NULL, db, id, &ch,
                                  SPOTDB_INSTANCE_LAST_EVALUATION);
}

static void op_update_instance(worker *w, spotdb_db *db)
{
    int64_t eval;

    CALL("updating the instance", update_eval(db, w->instance, &eval));
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

static void op_views(worker *w, spotdb_db *db, int i)
{
    spotdb_active_instance_rows *a = NULL;
    spotdb_recent_experiment_rows *r = NULL;
    int seen = 0;

    if (i % 20 < 10) {
        CALL("listing active instances",
             spotdb_active_instance_list(&a, db, NULL, 0));
        for (size_t k = 0; k < a->count; k++)
            if (strcmp(a->items[k].id, w->instance) == 0)
                seen += a->items[k].model_name &&
                        strcmp(a->items[k].model_name, w->model_name) == 0;
        if (seen != 1)
            mismatch(w, "the instance is not once in v_active_instances");
    } else {
        CALL("listing recent experiments",
             spotdb_recent_experiment_list(&r, db, NULL, RECENT));
        if (r->count > RECENT)
            mismatch(w, "v_recent_experiments returned more than asked");
    }
out:
    spotdb_active_instance_rows_free(a);
    spotdb_recent_experiment_rows_free(r);
}

/* A log and an instance update commit together. */
static void op_transaction(worker *w, spotdb_db *db, int i)
{
    int64_t eval;

    CALL("begin", spotdb_begin(db));
    CALL("creating a log in a transaction", create_log(w, db, i));
    CALL("updating in a transaction", update_eval(db, w->instance, &eval));
    CALL("commit", spotdb_commit(db));
    w->total++;
    w->logs++;
    w->last_eval = eval;
    return;
out:
    spotdb_rollback(db);
}

/* A transaction given back unfinished: the pool rolls it back, so the
 * log must not count (op_count_logs and the final check see to it). */
static void op_abandoned_transaction(worker *w, spotdb_db *db, int i)
{
    CALL("begin", spotdb_begin(db));
    CALL("creating a log to abandon", create_log(w, db, i));
out:
    return;
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

static void run_op(worker *w, spotdb_db *db, int i)
{
    switch (i % 10) {
    case 0: op_create_log(w, db, i); break;
    case 1: op_get_instance(w, db); break;
    case 2: op_update_instance(w, db); break;
    case 3: op_list_logs(w, db); break;
    case 4: op_count_logs(w, db); break;
    case 5: op_transaction(w, db, i); break;
    case 6: op_views(w, db, i); break;
    case 7:
        if (i % 50 == 7)
            op_abandoned_transaction(w, db, i);
        else
            op_report(w, db);
        break;
    default: op_delete_oldest_log(w, db); break;
    }
}

static atomic_int workers_done;

/* Every operation borrows a handle, so consecutive ones of a thread run
 * on different connections and still see the thread's own writes. */
static void *work(void *arg)
{
    worker *w = arg;

    for (int i = 0; i < w->ops; i++) {
        spotdb_db *db = NULL;
        int rc = spotdb_pool_acquire(w->pool, &db, SPOTDB_POOL_WAIT_DEFAULT);

        if (rc != 0) {
            note_error(w, NULL, "acquire", rc);
            continue;
        }
        run_op(w, db, i);
        rc = spotdb_pool_release(w->pool, db);
        if (rc != 0)
            note_error(w, NULL, "release", rc);
    }
    atomic_fetch_add(&workers_done, 1);
    return NULL;
}

/* Each thread's model, instance (assigned that model) and owner. */
static void prepare_worker(worker *w, spotdb_db *db, int index, int ops)
{
    spotdb_user u, *user = NULL;
    spotdb_account a, *acct = NULL;
    spotdb_model m, *model = NULL;
    spotdb_instance in, *inst = NULL;
    char name[32], email[64], aws[32], arn[64], version[24], ec2[24];

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
    snprintf(w->model_name, sizeof w->model_name, "PoolModel%d", index);

    memset(&u, 0, sizeof u);
    u.email = email;
    u.username = name;
    DB_OK(db, spotdb_user_create(&user, db, &u,
                                 SPOTDB_USER_EMAIL | SPOTDB_USER_USERNAME,
                                 "pw"));
    memset(&a, 0, sizeof a);
    a.account_id = aws;
    a.account_name = name;
    a.role_arn = arn;
    a.external_id = "ext";
    DB_OK(db, spotdb_account_create_for_username(&acct, db, name, &a,
              SPOTDB_ACCOUNT_ACCOUNT_ID | SPOTDB_ACCOUNT_ACCOUNT_NAME |
              SPOTDB_ACCOUNT_ROLE_ARN | SPOTDB_ACCOUNT_EXTERNAL_ID));
    memset(&m, 0, sizeof m);
    m.name = w->model_name;
    m.version = version;
    DB_OK(db, spotdb_model_create(&model, db, &m,
                                  SPOTDB_MODEL_NAME | SPOTDB_MODEL_VERSION));
    memset(&in, 0, sizeof in);
    in.instance_id = ec2;
    in.instance_type = "c5.large";
    in.availability_zone = "ap-south-1a";
    in.assigned_model_version = version;
    DB_OK(db, spotdb_instance_create_for_aws_account(&inst, db, aws, &in,
              SPOTDB_INSTANCE_INSTANCE_ID | SPOTDB_INSTANCE_INSTANCE_TYPE |
              SPOTDB_INSTANCE_AVAILABILITY_ZONE |
              SPOTDB_INSTANCE_ASSIGNED_MODEL_VERSION));
    memcpy(w->instance, inst->id, SPOTDB_UUID_SIZE);
    memcpy(w->model, model->id, SPOTDB_UUID_SIZE);
    spotdb_instance_free(inst);
    spotdb_model_free(model);
    spotdb_account_free(acct);
    spotdb_user_free(user);
}

/* Run every worker `ops` operations on a new pool of STRESS_POOL, close
 * it; returns the seconds taken, the pool's last stats in *s. */
static double run_pool(worker *w, int ops, spotdb_pool_stats *s,
                       PGconn *admin, long *max_sessions)
{
    spotdb_pool *p = open_pool(STRESS_POOL, 0, 0);
    pthread_t t[THREADS];
    double t0 = th_now_s();

    atomic_store(&workers_done, 0);
    for (int i = 0; i < THREADS; i++) {
        w[i].pool = p;
        w[i].ops = ops;
        ck_assert_int_eq(pthread_create(&t[i], NULL, work, &w[i]), 0);
    }
    /* Meanwhile, the server never sees more sessions than the pool's. */
    *max_sessions = 0;
    while (atomic_load(&workers_done) < THREADS) {
        long n = th_count(admin, SESSIONS);

        if (n > *max_sessions)
            *max_sessions = n;
        th_sleep_s(0.05);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    t0 = th_now_s() - t0;
    *s = stats(p);
    POOL_OK(spotdb_pool_close(p));
    return t0;
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
    return !RUNNING_ON_VALGRIND;
#endif
}

START_TEST(stress_sixteen_threads_pool_of_four)
{
    worker w[THREADS];
    spotdb_db *db = th_open();
    PGconn *admin = th_connect(th_db_conninfo());
    int ops = stress_ops(), errors = 0, mismatches = 0;
    long fds0, fds1, rss0, rss1, heap0, heap1, max_sessions;
    spotdb_pool_stats s;
    const char *first = "";
    double secs;

    for (int i = 0; i < THREADS; i++)
        prepare_worker(&w[i], db, i, ops + 20);
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
    for (int i = 0; i < THREADS; i++) {
        errors += w[i].errors;
        mismatches += w[i].mismatches;
        if (!*first && w[i].first[0])
            first = w[i].first;
    }
    printf("pool stress: %d threads x %d operations on a pool of %d: "
           "%d errors, %d mismatches, %.1f s, %.0f ops/s; acquires %lld, "
           "waits %lld, timeouts %lld, reconnects %lld, pings %lld, at most "
           "%ld server sessions\n", THREADS, ops, STRESS_POOL, errors,
           mismatches, secs, THREADS * ops / secs, (long long)s.acquires,
           (long long)s.waits, (long long)s.timeouts,
           (long long)s.reconnects, (long long)s.pings, max_sessions);
    printf("pool stress: after the pool closed: fds %ld -> %ld, RSS %ld -> "
           "%ld KiB, heap in use %ld -> %ld bytes\n", fds0, fds1, rss0, rss1,
           heap0, heap1);
    ck_assert_msg(errors == 0 && mismatches == 0, "%d errors, %d "
                  "mismatches; first: %s", errors, mismatches, first);
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
    for (int i = 0; i < THREADS; i++) {
        th_qeq(admin, NULL, "SELECT NULLIF(count(*), %lld) FROM "
               "experiment_logs WHERE instance_id = '%s'",
               (long long)w[i].logs, w[i].instance);
        th_qeq(admin, "t", "SELECT coalesce((extract(epoch FROM "
               "last_evaluation) * 1000000)::bigint, 0) = %lld FROM "
               "instances WHERE id = '%s'",
               (long long)w[i].last_eval, w[i].instance);
        free(w[i].ids);
    }
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
