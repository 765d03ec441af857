/*
 * Dead-peer detection over a real network path that goes dead in silence
 * (docs/reliability.md, "Deadlines and cancellation").  Run by
 * tools/deadpeer-check, which puts a private server behind a router
 * namespace and hands over the commands that blackhole and restore the
 * path (see that script for the environment).
 *
 * With the library's defaults (keepalives 5 s / 1 s x 3, tcp_user_timeout
 * 9000 ms, connect_timeout 10 s) every call that meets the dead path must
 * fail within LIMIT_S:
 *   - a read and a write in flight (blocked on a lock the unix socket
 *     holds) when the path dies: SPOTDB_ECONN, and SPOTDB_EUNKNOWN (or
 *     ECONN) for the write, counted from the moment the path died;
 *   - an idle handle called at once (its query unacknowledged), and one
 *     called after IDLE_WAIT_S (the kernel has dropped the connection by
 *     then, so the call reconnects into the dead path): SPOTDB_ECONN,
 *     counted from the start of the call.
 * The controls, with keepalives=0 tcp_user_timeout=0 in the settings and
 * a deadline of CONTROL_S, must still be waiting at that deadline
 * (SPOTDB_ETIMEOUT): the path really drops packets without a word, so the
 * test would fail if the defaults did nothing.  After the path is back,
 * every handle's next call must reconnect and succeed.
 *
 * Plain program (no Check: one fault, shared by every scenario, run in
 * threads); exit 0 when every check holds.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include <spotdb/spotdb.h>

#define LIMIT_S 10.0            /* the documented bound */
#define CONTROL_S 15.0          /* how long the controls must wait */
#define IDLE_WAIT_S 11.0        /* after the kernel gave the socket up */
#define WATCHDOG_S 45.0         /* after the path died: a call hangs */

enum kind { IN_FLIGHT, IDLE };

typedef struct scenario {
    const char *name;
    enum kind kind;
    bool write;
    bool control;               /* keepalives and tcp_user_timeout off */
    double delay_s;             /* IDLE: call this long after the death */
    spotdb_db *db;
    pthread_t thread;
    double started, ended;      /* monotonic seconds */
    int rc;
    char msg[300];
    bool done;
} scenario;

static scenario scenarios[] = {
    { .name = "in-flight read", .kind = IN_FLIGHT },
    { .name = "in-flight write", .kind = IN_FLIGHT, .write = true },
    { .name = "idle, called at once", .kind = IDLE },
    { .name = "idle, called after 11 s", .kind = IDLE,
      .delay_s = IDLE_WAIT_S },
    { .name = "control: in-flight read", .kind = IN_FLIGHT, .control = true },
    { .name = "control: idle, called at once", .kind = IDLE,
      .control = true },
};
#define N_SCENARIOS (sizeof scenarios / sizeof scenarios[0])

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
static double path_died;        /* monotonic seconds, before the command */
static char model_id[SPOTDB_UUID_SIZE];
static int failures, passes;

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_s(double s)
{
    struct timespec ts;

    if (s <= 0)
        return;
    ts.tv_sec = (time_t)s;
    ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fputs("deadpeer: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static void verdict(bool ok, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void verdict(bool ok, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fputs(ok ? "deadpeer: ok: " : "deadpeer: FAILED: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    if (ok)
        passes++;
    else
        failures++;
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void die(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fputs("deadpeer: FAILED: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static const char *need_env(const char *name)
{
    const char *v = getenv(name);

    if (!v || !*v)
        die("%s is not set: run this through tools/deadpeer-check", name);
    return v;
}

static const char *code_name(int rc)
{
    switch (rc) {
    case SPOTDB_OK: return "OK";
    case SPOTDB_ECONN: return "SPOTDB_ECONN";
    case SPOTDB_EUNKNOWN: return "SPOTDB_EUNKNOWN";
    case SPOTDB_ETIMEOUT: return "SPOTDB_ETIMEOUT";
    default: return spotdb_strerror(rc);
    }
}

static void run_command(const char *what, const char *cmd)
{
    int st = system(cmd);

    if (st != 0)
        die("%s: '%s' exited with %d", what, cmd, st);
}

/* ---- the server, over the unix socket ----------------------------------- */

static PGconn *local_connect(const char *conninfo)
{
    PGconn *c = PQconnectdb(conninfo);

    if (PQstatus(c) != CONNECTION_OK)
        die("cannot connect over the unix socket: %s", PQerrorMessage(c));
    return c;
}

static long local_count(PGconn *c, const char *sql, const char *arg)
{
    PGresult *r = PQexecParams(c, sql, arg ? 1 : 0, NULL, &arg, NULL, NULL,
                               0);
    long n;

    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        die("%s: %s", sql, PQerrorMessage(c));
    n = strtol(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return n;
}

static void local_exec(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);

    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        die("%s: %s", sql, PQerrorMessage(c));
    PQclear(r);
}

static void migrate(const char *local)
{
    spotdb_open_options o = SPOTDB_OPEN_OPTIONS_INIT;
    spotdb_db *db;

    o.schema_check = SPOTDB_SCHEMA_CHECK_SKIP;
    if (spotdb_open(&db, local, &o) != 0)
        die("open over the unix socket: %s", spotdb_last_errmsg());
    if (spotdb_migrate(db, NULL) != 0)
        die("migrate: %s", spotdb_errmsg(db));
    spotdb_close(db);
}

/* ---- the calls --------------------------------------------------------- */

static int call(scenario *s, const char *name)
{
    spotdb_model in = { 0 }, *m = NULL;
    int rc;

    if (!s->write) {
        rc = spotdb_model_get(&m, s->db, model_id);
        spotdb_model_free(m);
        return rc;
    }
    in.name = name;
    in.version = "v1";
    return spotdb_model_create(NULL, s->db, &in,
                               SPOTDB_MODEL_NAME | SPOTDB_MODEL_VERSION);
}

static void *scenario_main(void *arg)
{
    scenario *s = arg;
    char name[64];

    if (s->kind == IDLE)
        sleep_s(path_died + s->delay_s - now_s());
    snprintf(name, sizeof name, "deadpeer %s", s->name);
    s->started = now_s();
    s->rc = call(s, name);
    s->ended = now_s();
    snprintf(s->msg, sizeof s->msg, "%s", spotdb_errmsg(s->db));
    pthread_mutex_lock(&lock);
    s->done = true;
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&lock);
    return NULL;
}

static void start(scenario *s)
{
    if (pthread_create(&s->thread, NULL, scenario_main, s) != 0)
        die("pthread_create failed");
}

/* Open every handle and prepare its statements while the path is up,
 * so that what meets the dead path is the call itself. */
static void open_handles(const char *tcp)
{
    char control[1024];
    spotdb_model in = { 0 }, *m = NULL;

    snprintf(control, sizeof control,
             "%s keepalives=0 tcp_user_timeout=0", tcp);
    for (size_t i = 0; i < N_SCENARIOS; i++) {
        scenario *s = &scenarios[i];
        char name[64];

        if (spotdb_open(&s->db, s->control ? control : tcp, NULL) != 0)
            die("open over the path: %s", spotdb_last_errmsg());
        if (s->control)
            spotdb_set_call_timeout(s->db, (int32_t)(CONTROL_S * 1000));
        snprintf(name, sizeof name, "deadpeer warm-up %zu", i);
        in.name = name;
        in.version = "v1";
        if (spotdb_model_create(&m, s->db, &in,
                                SPOTDB_MODEL_NAME | SPOTDB_MODEL_VERSION) != 0)
            die("warm-up create: %s", spotdb_errmsg(s->db));
        if (!model_id[0])
            memcpy(model_id, m->id, sizeof model_id);
        spotdb_model_free(m);
        m = NULL;
        if (spotdb_model_get(&m, s->db, model_id) != 0)
            die("warm-up get: %s", spotdb_errmsg(s->db));
        spotdb_model_free(m);
        m = NULL;
    }
}

/* Wait until every scenario returned, or die naming the ones that hang:
 * a call that never returns is the failure this test exists for. */
static void wait_all(void)
{
    double limit = path_died + WATCHDOG_S;
    struct timespec ts;
    bool all;

    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += (time_t)(limit - now_s()) + 1;
    pthread_mutex_lock(&lock);
    for (;;) {
        all = true;
        for (size_t i = 0; i < N_SCENARIOS; i++)
            all = all && scenarios[i].done;
        if (all || now_s() > limit)
            break;
        if (pthread_cond_timedwait(&changed, &lock, &ts) == ETIMEDOUT)
            break;
    }
    pthread_mutex_unlock(&lock);
    if (all)
        return;
    for (size_t i = 0; i < N_SCENARIOS; i++)
        if (!scenarios[i].done)
            say("FAILED: %s: no answer %.0f s after the path died",
                scenarios[i].name, WATCHDOG_S);
    exit(1);                    /* the hung threads cannot be joined */
}

/* ---- what the calls must have said ------------------------------------ */

static void judge(const scenario *s)
{
    double from = s->kind == IN_FLIGHT ? path_died : s->started;
    double dt = s->ended - from;
    const char *since = s->kind == IN_FLIGHT ? "after the path died"
                                             : "after the call started";

    /* The deadline runs from the start of the call, and only the
     * deadline may have ended it. */
    if (s->control) {
        say("%s: no error for %.2f s %s (control)", s->name, dt, since);
        verdict(s->rc == SPOTDB_ETIMEOUT &&
                s->ended - s->started >= CONTROL_S - 0.01,
                "%s: %s at the call's %.0f s deadline, nothing detected "
                "before it (%s)", s->name, code_name(s->rc), CONTROL_S,
                s->msg);
        return;
    }
    say("%s detected in %.2f s (limit %.0f s)", s->name, dt, LIMIT_S);
    verdict((s->rc == SPOTDB_ECONN ||
             (s->write && s->rc == SPOTDB_EUNKNOWN)) && dt <= LIMIT_S,
            "%s: %s %.2f s %s (%s)", s->name, code_name(s->rc), dt, since,
            s->msg);
}

static void check_back(void)
{
    double worst = 0;
    int ok = 0;

    for (size_t i = 0; i < N_SCENARIOS; i++) {
        scenario *s = &scenarios[i];
        spotdb_model *m = NULL;
        double t = now_s();
        int rc = spotdb_model_get(&m, s->db, model_id);

        t = now_s() - t;
        worst = t > worst ? t : worst;
        if (rc == 0)
            ok++;
        else
            say("%s: after the path came back: %s (%s)", s->name,
                code_name(rc), spotdb_errmsg(s->db));
        spotdb_model_free(m);
    }
    verdict(ok == (int)N_SCENARIOS, "path restored: %d of %zu handles "
            "reconnected and answered, slowest call %.0f ms", ok,
            N_SCENARIOS, worst * 1000);
}

int main(void)
{
    const char *tcp = need_env("SPOTDB_DEADPEER_TCP");
    const char *local = need_env("SPOTDB_DEADPEER_LOCAL");
    const char *down = need_env("SPOTDB_DEADPEER_DOWN");
    const char *up = need_env("SPOTDB_DEADPEER_UP");
    PGconn *holder;
    double t;
    long stored;

    migrate(local);
    open_handles(tcp);

    /* The in-flight calls wait for this lock; the holder is on the unix
     * socket, away from the path. */
    holder = local_connect(local);
    local_exec(holder, "BEGIN");
    local_exec(holder, "LOCK TABLE model_registry IN ACCESS EXCLUSIVE MODE");
    for (size_t i = 0; i < N_SCENARIOS; i++)
        if (scenarios[i].kind == IN_FLIGHT)
            start(&scenarios[i]);
    t = now_s();
    while (local_count(holder, "SELECT count(*) FROM pg_locks "
                       "WHERE NOT granted", NULL) < 3) {
        if (now_s() - t > 10)
            die("the in-flight calls did not reach the server");
        sleep_s(0.02);
    }
    sleep_s(0.3);               /* their packets all acknowledged */

    path_died = now_s();
    run_command("blackhole the path", down);
    t = now_s() - path_died;
    say("path blackholed (the command took %.0f ms)", t * 1000);
    for (size_t i = 0; i < N_SCENARIOS; i++)
        if (scenarios[i].kind == IDLE)
            start(&scenarios[i]);
    wait_all();
    for (size_t i = 0; i < N_SCENARIOS; i++)
        pthread_join(scenarios[i].thread, NULL);
    for (size_t i = 0; i < N_SCENARIOS; i++)
        judge(&scenarios[i]);

    run_command("restore the path", up);
    local_exec(holder, "ROLLBACK");
    check_back();

    /* The write reported unknown may have been committed after all (its
     * backend ran it once the lock was free): it is stored at most once. */
    stored = local_count(holder, "SELECT count(*) FROM model_registry "
                         "WHERE name = $1", "deadpeer in-flight write");
    say("the in-flight write (%s) is stored %ld time(s)",
        code_name(scenarios[1].rc), stored);
    verdict(stored <= 1, "the in-flight write stored at most once");

    PQfinish(holder);
    for (size_t i = 0; i < N_SCENARIOS; i++)
        spotdb_close(scenarios[i].db);
    fprintf(stderr, "deadpeer: %d passed, %d failed\n", passes, failures);
    return failures ? 1 : 0;
}
