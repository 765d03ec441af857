/*
 * A server restart under load: 8 threads, each with its own handle, run a
 * create/get/update/delete loop while the private server is restarted with
 * `pg_ctl restart -m fast -w`.  Every thread goes on with the same handle
 * and succeeds again within a second of the server accepting connections
 * again; every row's outcome is checked afterwards.
 *
 * The restart stops every session of the server, so this suite runs alone
 * (is_parallel false in tests/meson.build).  It needs the server that
 * tools/pg-private started: SPOTDB_PG_DATA names its data folder (and
 * SPOTDB_PG_SOCKET its log's folder); without it the test fails.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "internal.h"

enum { THREADS = 8 };

static void setup(void)
{
    th_setup_migrated_db();
}

static void teardown(void)
{
    th_teardown_db();
}

/* Outcome of one iteration's row. */
enum { ROW_ABSENT = 0, ROW_PRESENT = 1, ROW_UNKNOWN = 2 };

typedef struct worker {
    int n;                      /* thread number */
    spotdb_db *db;
    pthread_t thread;
    long ok_before;             /* successes before the restart began */
    long failed;                /* ECONN / EUNKNOWN */
    long unknown;               /* of which EUNKNOWN */
    long ok_after;              /* successes after the restart returned */
    double first_ok_after;      /* time of the first of those, 0 if none */
    double last_ok_before;      /* last success before the first failure */
    double first_fail;
    double back_rt;             /* wall clock of the first success after
                                   the first failure, 0 if none */
    int bad_rc;                 /* first code that is not allowed */
    char bad_msg[256];
    signed char *rows;          /* per iteration, ROW_* */
    long iterations, cap;
    int start_pid;
    atomic_int settled;         /* 20 successes after, or a bad code */
} worker;

static atomic_int phase;        /* 0 running, 1 restarting, 2 restarted */
static atomic_int stop;
static double restarted_at;     /* written before phase becomes 2 */

static double wall_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A call's code: 0 counts, ECONN (and EUNKNOWN for writes) are the
 * restart's, anything else is recorded as a failure of the test. */
static int note(worker *w, int rc, int write, const char *what)
{
    double now = th_now_s();

    if (rc == 0) {
        if (atomic_load(&phase) == 2) {
            if (w->ok_after++ == 0)
                w->first_ok_after = now;
        } else if (w->failed == 0) {
            w->ok_before++;
            w->last_ok_before = now;
        }
        if (w->failed > 0 && w->back_rt == 0)
            w->back_rt = wall_s();
        return 0;
    }
    if (rc == SPOTDB_ECONN || (write && rc == SPOTDB_EUNKNOWN)) {
        if (w->failed++ == 0)
            w->first_fail = now;
        w->unknown += rc == SPOTDB_EUNKNOWN;
        return rc;
    }
    if (w->bad_rc == 0) {
        w->bad_rc = rc;
        snprintf(w->bad_msg, sizeof w->bad_msg, "%s: %d (%s): %s", what, rc,
                 spotdb_strerror(rc), spotdb_errmsg(w->db));
    }
    return rc;
}

static void record(worker *w, long i, int state)
{
    if (i >= w->cap) {
        long cap = w->cap ? 2 * w->cap : 4096;
        signed char *r = realloc(w->rows, (size_t)cap);

        if (!r)
            abort();
        memset(r + w->cap, ROW_ABSENT, (size_t)(cap - w->cap));
        w->rows = r;
        w->cap = cap;
    }
    w->rows[i] = (signed char)state;
}

static void one_iteration(worker *w, long i)
{
    spotdb_model in, *m = NULL;
    char name[32], version[32], id[SPOTDB_UUID_SIZE];
    int rc;

    snprintf(name, sizeof name, "restart-%d", w->n);
    snprintf(version, sizeof version, "v%ld", i);
    memset(&in, 0, sizeof in);
    in.name = name;
    in.version = version;
    rc = note(w, spotdb_model_create(&m, w->db, &in,
                                     SPOTDB_MODEL_NAME |
                                     SPOTDB_MODEL_VERSION), 1, "create");
    if (rc != 0) {
        record(w, i, rc == SPOTDB_EUNKNOWN ? ROW_UNKNOWN : ROW_ABSENT);
        return;
    }
    snprintf(id, sizeof id, "%s", m->id);
    spotdb_model_free(m);
    m = NULL;
    record(w, i, ROW_PRESENT);
    note(w, spotdb_model_get(&m, w->db, id), 0, "get");
    spotdb_model_free(m);
    in.description = "updated";
    note(w, spotdb_model_update(NULL, w->db, id, &in,
                                SPOTDB_MODEL_DESCRIPTION), 1, "update");
    rc = note(w, spotdb_model_delete(w->db, id), 1, "delete");
    if (rc == 0)
        record(w, i, ROW_ABSENT);
    else if (rc == SPOTDB_EUNKNOWN)
        record(w, i, ROW_UNKNOWN);
}

static void *worker_main(void *p)
{
    worker *w = p;

    for (long i = 0; !atomic_load(&stop) && w->bad_rc == 0; i++) {
        long failed = w->failed;

        one_iteration(w, i);
        w->iterations = i + 1;
        if (w->ok_after >= 20 || w->bad_rc != 0)
            atomic_store(&w->settled, 1);
        /* a server that is down refuses at once: do not spin */
        if (w->failed != failed)
            th_sleep_s(0.005);
    }
    return NULL;
}

/* pg_ctl restart of the private server, as its owner; its postmaster.opts
 * keeps the options it was started with (socket folder, ...).  In a
 * session of its own: Check kills the test's process group when the test
 * ends, and a pg_ctl killed between stop and start would leave the server
 * down for every suite after this one. */
static int restart_server(void)
{
    const char *data = getenv("SPOTDB_PG_DATA");
    const char *bindir = getenv("SPOTDB_PG_BINDIR");
    const char *sock = getenv("SPOTDB_PG_SOCKET");
    char cmd[2048];
    int st;

    ck_assert_msg(data && *data, "SPOTDB_PG_DATA is not set: this test "
                  "restarts the private server of tools/pg-private, run it "
                  "through 'tools/run test'");
    snprintf(cmd, sizeof cmd, "setsid -w %s'%s%spg_ctl' restart -m fast "
             "-w -t 60 "
             "-D '%s' %s%s%s >/dev/null",
             geteuid() == 0 ? "runuser -u postgres -- " : "",
             bindir && *bindir ? bindir : "", bindir && *bindir ? "/" : "",
             data, sock && *sock ? "-l '" : "", sock && *sock ? sock : "",
             sock && *sock ? "/postgres.log'" : "");
    st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

START_TEST(restart_under_eight_threads)
{
    worker w[THREADS];
    double limit = th_under_valgrind() ? 20.0 : 1.0;
    double rec[THREADS], outage_max = 0, t_cmd, t0, pm_start;
    double from_start = 0;
    long failed = 0, unknown = 0, checked = 0, unknown_rows = 0, ops = 0;
    int rc;

    memset(w, 0, sizeof w);
    atomic_store(&phase, 0);
    atomic_store(&stop, 0);
    for (int i = 0; i < THREADS; i++) {
        w[i].n = i;
        atomic_init(&w[i].settled, 0);
        w[i].db = th_open();
        w[i].start_pid = PQbackendPID(w[i].db->conn);
    }
    for (int i = 0; i < THREADS; i++)
        ck_assert_int_eq(pthread_create(&w[i].thread, NULL, worker_main,
                                        &w[i]), 0);
    th_sleep_s(th_under_valgrind() ? 3.0 : 0.5);

    atomic_store(&phase, 1);
    t0 = th_now_s();
    rc = restart_server();
    restarted_at = th_now_s();
    t_cmd = restarted_at - t0;
    atomic_store(&phase, 2);

    /* every thread succeeds again, then a little more */
    for (double t = th_now_s(); th_now_s() - t < limit + 10;) {
        int all = 1;

        for (int i = 0; i < THREADS; i++)
            all &= atomic_load(&w[i].settled);
        if (all)
            break;
        th_sleep_s(0.01);
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < THREADS; i++)
        pthread_join(w[i].thread, NULL);

    ck_assert_msg(rc == 0, "pg_ctl restart exited with %d", rc);
    for (int i = 0; i < THREADS; i++) {
        ck_assert_msg(w[i].bad_rc == 0, "thread %d: %s", i, w[i].bad_msg);
        ck_assert_msg(w[i].ok_before > 0, "thread %d: no success before "
                      "the restart", i);
        ck_assert_msg(w[i].first_ok_after > 0, "thread %d: no success after"
                      " the restart (%ld failed calls)", i, w[i].failed);
        ck_assert_msg(PQbackendPID(w[i].db->conn) != w[i].start_pid,
                      "thread %d: same backend after a restart", i);
        rec[i] = w[i].first_ok_after - restarted_at;
        ck_assert_msg(rec[i] < limit, "thread %d: first success %.3f s after"
                      " the server was back", i, rec[i]);
        if (w[i].failed && w[i].first_ok_after - w[i].last_ok_before >
            outage_max)
            outage_max = w[i].first_ok_after - w[i].last_ok_before;
        failed += w[i].failed;
        unknown += w[i].unknown;
        ops += w[i].ok_before + w[i].ok_after;
    }

    /* every row whose outcome the thread knows is as it said */
    {
        PGconn *pg = th_connect(th_db_conninfo());
        char *st = th_scalar(pg, "SELECT extract(epoch FROM "
                             "pg_postmaster_start_time())");

        /* and each thread was back within the limit of the new server's
         * start, not only of pg_ctl's noticing it (it polls every 100 ms) */
        ck_assert_ptr_nonnull(st);
        pm_start = strtod(st, NULL);
        free(st);
        for (int i = 0; i < THREADS; i++) {
            double d;

            if (w[i].back_rt == 0)
                continue;
            d = w[i].back_rt - pm_start;
            ck_assert_msg(d < limit, "thread %d: first success %.3f s after "
                          "the server started", i, d);
            from_start = d > from_start ? d : from_start;
        }

        for (int i = 0; i < THREADS; i++) {
            char sql[128];
            signed char *seen = calloc((size_t)w[i].iterations + 1, 1);
            PGresult *r;

            ck_assert_ptr_nonnull(seen);
            snprintf(sql, sizeof sql, "SELECT version FROM model_registry "
                     "WHERE name = 'restart-%d'", i);
            r = PQexec(pg, sql);
            ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK, "%s",
                          PQerrorMessage(pg));
            for (int k = 0; k < PQntuples(r); k++) {
                long v = atol(PQgetvalue(r, k, 0) + 1);

                ck_assert_msg(v >= 0 && v < w[i].iterations, "stray row");
                seen[v] = 1;
            }
            PQclear(r);
            for (long v = 0; v < w[i].iterations; v++) {
                if (w[i].rows[v] == ROW_UNKNOWN) {
                    unknown_rows++;
                    continue;
                }
                ck_assert_msg(seen[v] == w[i].rows[v], "thread %d, row v%ld:"
                              " stored %d, expected %d", i, v, seen[v],
                              w[i].rows[v]);
                checked++;
            }
            free(seen);
        }
        PQfinish(pg);
    }
    qsort(rec, THREADS, sizeof *rec, cmp_double);
    fprintf(stderr, "test_restart: pg_ctl restart -m fast took %.3f s under "
            "8 threads; %ld successful calls, %ld failed during the restart "
            "(%ld EUNKNOWN); recovery after the server was back: median "
            "%.0f ms, max %.0f ms (%.0f ms from the new postmaster's start)"
            "; longest outage per thread %.3f s; %ld rows checked, %ld of "
            "unknown outcome\n", t_cmd, ops, failed, unknown,
            (rec[THREADS / 2 - 1] + rec[THREADS / 2]) * 500.0,
            rec[THREADS - 1] * 1000.0, from_start * 1000.0, outage_max,
            checked, unknown_rows);
    for (int i = 0; i < THREADS; i++) {
        fprintf(stderr, "test_restart: thread %d: %ld ok before, %ld failed,"
                " %ld ok after, recovered in %.0f ms\n", i, w[i].ok_before,
                w[i].failed, w[i].ok_after,
                (w[i].first_ok_after - restarted_at) * 1000.0);
        spotdb_close(w[i].db);
        free(w[i].rows);
    }
}
END_TEST

static Suite *restart_suite(void)
{
    Suite *s = suite_create("restart");
    TCase *tc = tcase_create("restart");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, restart_under_eight_threads);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return th_run(restart_suite());
}
