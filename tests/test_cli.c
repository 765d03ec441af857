/*
 * The spotdb command-line tool, run as a separate process the way an
 * operator runs it: eight concurrent migrators, exit codes, one-line
 * failures, help texts.  Also the example agent, which README's first
 * command runs after `spotdb migrate`.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "spotdb/spotdb.h"

#define MARKER "Cl1Secret77"

typedef struct proc {
    pid_t pid;
    int out, err;
    char *stdout_text, *stderr_text;
    int status;
} proc;

static const char *cli(void)
{
    const char *p = getenv("SPOTDB_CLI");

    ck_assert_msg(p != NULL, "SPOTDB_CLI is not set (run through meson test)");
    return p;
}

static const char *lab_agent(void)
{
    const char *p = getenv("SPOTDB_LAB_AGENT");

    ck_assert_msg(p != NULL, "SPOTDB_LAB_AGENT is not set (run through "
                  "meson test)");
    return p;
}

/* Start `program` with no stdin, after unsetting the `clear` variables
 * and then setting `env` (NAME=value strings); both NULL-terminated. */
static proc spawn(const char *program, const char *const *clear,
                  const char *const *env, const char *const *args)
{
    int o[2], e[2];
    proc p = { 0 };

    ck_assert_int_eq(pipe(o), 0);
    ck_assert_int_eq(pipe(e), 0);
    p.pid = fork();
    ck_assert_int_ge(p.pid, 0);
    if (p.pid == 0) {
        const char *argv[16] = { "spotdb" };
        int n = 1, devnull = open("/dev/null", O_RDONLY);

        for (; args[n - 1] && n < 15; n++)
            argv[n] = args[n - 1];
        dup2(devnull, 0);
        dup2(o[1], 1);
        dup2(e[1], 2);
        close(o[0]);
        close(e[0]);
        for (int i = 0; clear[i]; i++)
            unsetenv(clear[i]);
        for (int i = 0; env[i]; i++) {
            char *kv = strdup(env[i]), *eq = strchr(kv, '=');

            *eq = '\0';
            setenv(kv, eq + 1, 1);
        }
        execv(program, (char *const *)argv);
        _exit(127);
    }
    close(o[1]);
    close(e[1]);
    p.out = o[0];
    p.err = e[0];
    return p;
}

/* Start `program` with DATABASE_URL = url (NULL: unset). */
static proc start_program(const char *program, const char *url,
                          const char *const *args)
{
    static const char *const clear[] = { "DATABASE_URL", NULL };
    char *kv = NULL;
    proc p;

    if (url) {
        kv = malloc(strlen(url) + sizeof "DATABASE_URL=");
        ck_assert_ptr_nonnull(kv);
        strcpy(kv, "DATABASE_URL=");
        strcat(kv, url);
    }
    p = spawn(program, clear, (const char *const[]){ kv, NULL }, args);
    free(kv);
    return p;
}

/* The CLI. */
static proc start(const char *url, const char *const *args)
{
    return start_program(cli(), url, args);
}

static char *slurp(int fd)
{
    size_t len = 0, cap = 4096;
    char *buf = malloc(cap);
    ssize_t n;

    while ((n = read(fd, buf + len, cap - len - 1)) > 0) {
        len += (size_t)n;
        if (cap - len < 1024)
            buf = realloc(buf, cap *= 2);
    }
    buf[len] = '\0';
    close(fd);
    return buf;
}

static void finish(proc *p)
{
    p->stdout_text = slurp(p->out);
    p->stderr_text = slurp(p->err);
    ck_assert_int_eq(waitpid(p->pid, &p->status, 0), p->pid);
}

static int exit_code(const proc *p)
{
    return WIFEXITED(p->status) ? WEXITSTATUS(p->status) : 128;
}

static void release(proc *p)
{
    free(p->stdout_text);
    free(p->stderr_text);
}

static proc run(const char *url, const char *const *args)
{
    proc p = start(url, args);

    finish(&p);
    return p;
}

static char *this_db(void)
{
    return th_conninfo_with_db(th_admin_url(), th_db_name());
}

static int lines(const char *s)
{
    int n = 0;

    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* What `tools/run demo` does: migrate, then the agent, twice (each run
 * makes its own user, account, model and instance). */
START_TEST(lab_agent_runs_after_migrate)
{
    static const char *const migrate[] = { "migrate", NULL };
    static const char *const none[] = { NULL };
    char *url = this_db();
    PGconn *raw;
    proc p = run(url, migrate);

    ck_assert_int_eq(exit_code(&p), 0);
    release(&p);
    for (int i = 0; i < 2; i++) {
        p = start_program(lab_agent(), url, none);
        finish(&p);
        ck_assert_msg(exit_code(&p) == 0, "lab_agent exited %d: %s",
                      exit_code(&p), p.stderr_text);
        ck_assert_ptr_nonnull(strstr(p.stdout_text, "Active LAB instances"));
        ck_assert_ptr_nonnull(strstr(p.stdout_text, "most recent real switches"));
        ck_assert_ptr_nonnull(strstr(p.stdout_text, "Model performance"));
        ck_assert_ptr_nonnull(strstr(p.stdout_text, "FamilyStressPredictor"));
        release(&p);
    }
    raw = th_connect(url);
    ck_assert_int_eq(th_count(raw, "SELECT count(*) FROM experiment_logs"), 600);
    ck_assert_int_eq(th_count(raw, "SELECT count(*) FROM instances WHERE "
                                   "last_evaluation IS NOT NULL"), 2);
    PQfinish(raw);
    free(url);
}
END_TEST

START_TEST(eight_concurrent_migrators)
{
    static const char *const args[] = { "migrate", NULL };
    char *url = this_db();
    proc p[8];
    int applied = 0, up_to_date = 0;
    PGconn *raw;

    for (int i = 0; i < 8; i++)
        p[i] = start(url, args);
    for (int i = 0; i < 8; i++) {
        finish(&p[i]);
        ck_assert_msg(exit_code(&p[i]) == 0, "migrator %d exited %d: %s", i,
                      exit_code(&p[i]), p[i].stderr_text);
        applied += strstr(p[i].stdout_text, "applied 0001_initial in ") != NULL &&
                   strstr(p[i].stdout_text, "applied 0002_experiment_log_paging in ") != NULL &&
                   strstr(p[i].stdout_text, "applied 0003_tenant_isolation in ") != NULL;
        up_to_date += strstr(p[i].stdout_text, "up to date at version 3") != NULL;
        ck_assert_str_eq(p[i].stderr_text, "");
        release(&p[i]);
    }
    ck_assert_int_eq(applied, 1);
    ck_assert_int_eq(up_to_date, 7);
    raw = th_connect(url);
    ck_assert_int_eq(th_count(raw, "SELECT count(*) FROM spotdb_schema_migrations"), 3);
    ck_assert_int_eq(th_count(raw, "SELECT count(*) FROM users"), 1);
    PQfinish(raw);
    free(url);
}
END_TEST

START_TEST(status_before_and_after)
{
    static const char *const status[] = { "status", NULL };
    static const char *const migrate[] = { "migrate", NULL };
    char *url = this_db();
    proc p;

    p = run(url, status);
    ck_assert_int_eq(exit_code(&p), 0);
    ck_assert_msg(strstr(p.stdout_text, "schema version: 0 (library embeds up to 3)"), "%s", p.stdout_text);
    ck_assert(strstr(p.stdout_text, "applied: none"));
    ck_assert(strstr(p.stdout_text, "pending:\n  0001_initial\n  0002_experiment_log_paging\n"
                      "  0003_tenant_isolation\n"));
    release(&p);

    p = run(url, migrate);
    ck_assert_int_eq(exit_code(&p), 0);
    ck_assert(strstr(p.stdout_text, "applied 0001_initial in "));
    ck_assert(strstr(p.stdout_text, "now at version 3"));
    release(&p);

    p = run(url, status);
    ck_assert_int_eq(exit_code(&p), 0);
    ck_assert(strstr(p.stdout_text, "schema version: 3"));
    ck_assert(strstr(p.stdout_text, "  0001_initial  20"));
    ck_assert(strstr(p.stdout_text, " UTC "));
    ck_assert(strstr(p.stdout_text, "pending: none"));
    release(&p);
    free(url);
}
END_TEST

/* --trace: a line per statement on stderr, the output unchanged, and the
 * password of the settings nowhere (the private server trusts, so any
 * password logs in). */
START_TEST(trace_prints_statements_never_secrets)
{
    static const char *const migrate[] = { "--trace", "migrate", NULL };
    char *url = this_db(), *secret;
    size_t len = strlen(url) + 64;
    proc p;

    secret = malloc(len);
    snprintf(secret, len, "%s%spassword=TrAcEsEcReT", url,
             !strstr(url, "://") ? " " : strchr(url, '?') ? "&" : "?");
    p = run(secret, migrate);
    ck_assert_msg(exit_code(&p) == 0, "%s", p.stderr_text);
    ck_assert(strstr(p.stdout_text, "now at version 3"));
    ck_assert_int_ge(lines(p.stderr_text), 20);
    ck_assert(strstr(p.stderr_text, "spotdb: trace: "));
    ck_assert(strstr(p.stderr_text, "ok: 0001_initial.sql: CREATE TABLE"));
    ck_assert(strstr(p.stderr_text, "taking the migration lock"));
    ck_assert(!strstr(p.stderr_text, "TrAcEsEcReT"));
    ck_assert(!strstr(p.stdout_text, "TrAcEsEcReT"));
    ck_assert(!strstr(p.stdout_text, "trace"));
    release(&p);
    free(secret);
    free(url);
}
END_TEST

START_TEST(dry_run_prints_sql_and_changes_nothing)
{
    static const char *const args[] = { "migrate", "--dry-run", NULL };
    char *url = this_db();
    proc p = run(url, args);
    PGconn *raw;

    ck_assert_int_eq(exit_code(&p), 0);
    ck_assert(strstr(p.stdout_text, "-- 0001_initial.sql (version 1)"));
    ck_assert(strstr(p.stdout_text, "CREATE TABLE users ("));
    release(&p);
    raw = th_connect(url);
    ck_assert_int_eq(th_count(raw, "SELECT count(*) FROM pg_class "
                                   "WHERE relname = 'spotdb_schema_migrations'"), 0);
    PQfinish(raw);
    free(url);
}
END_TEST

START_TEST(failures_are_one_line_and_non_zero)
{
    static const char *const to_missing[] = { "migrate", "--to", "5", NULL };
    static const char *const migrate[] = { "migrate", NULL };
    char *url = this_db();
    proc p;

    p = run(url, to_missing);
    ck_assert_int_eq(exit_code(&p), 1);
    ck_assert_int_eq(lines(p.stderr_text), 1);
    ck_assert(strstr(p.stderr_text, "spotdb: spotdb_migrate: target_version 5"));
    release(&p);

    p = run("postgresql://agent:" MARKER "@/db?host=/nonexistent-dir", migrate);
    ck_assert_int_eq(exit_code(&p), 1);
    ck_assert_int_eq(lines(p.stderr_text), 1);
    ck_assert(strstr(p.stderr_text, "cannot connect to PostgreSQL at host \"/nonexistent-dir\""));
    ck_assert_msg(!strstr(p.stderr_text, MARKER), "leak: %s", p.stderr_text);
    ck_assert_msg(!strstr(p.stdout_text, MARKER), "leak: %s", p.stdout_text);
    release(&p);

    p = run("postgresql://agent:" MARKER "@[::1/db", migrate);
    ck_assert_int_eq(exit_code(&p), 1);
    ck_assert(strstr(p.stderr_text, "invalid connection settings (from DATABASE_URL)"));
    ck_assert_msg(!strstr(p.stderr_text, MARKER), "leak: %s", p.stderr_text);
    release(&p);
    free(url);
}
END_TEST

START_TEST(usage_errors_exit_two)
{
    static const char *const cases[][4] = {
        { NULL },
        { "frobnicate", NULL },
        { "migrate", "--to", "abc", NULL },
        { "migrate", "--to", "0", NULL },
        { "migrate", "--lock-timeout", "0", NULL },
        { "migrate", "--sideways", NULL },
        { "status", "extra", NULL },
        { "--bogus", NULL },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        proc p = run(NULL, cases[i]);
        ck_assert_msg(exit_code(&p) == 2, "case %zu exited %d", i, exit_code(&p));
        ck_assert(strstr(p.stderr_text, "usage: spotdb"));
        release(&p);
    }
}
END_TEST

START_TEST(help_and_version_need_no_database)
{
    static const char *const cases[][3] = {
        { "--help", NULL }, { "help", NULL }, { "migrate", "--help", NULL },
        { "status", "--help", NULL }, { "version", "--help", NULL },
    };
    static const char *const version[] = { "version", NULL };
    proc p;

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        p = run("host=/nonexistent-dir", cases[i]);
        ck_assert_int_eq(exit_code(&p), 0);
        ck_assert(strstr(p.stdout_text, "usage: spotdb"));
        ck_assert_str_eq(p.stderr_text, "");
        release(&p);
    }
    p = run("host=/nonexistent-dir", version);
    ck_assert_int_eq(exit_code(&p), 0);
    ck_assert(strstr(p.stdout_text, "libspotdb " SPOTDB_VERSION));
    ck_assert(strstr(p.stdout_text, "0001_initial  sha256 "));
    release(&p);
}
END_TEST

/* ---- thirty migrators ------------------------------------------------ */

static int occurrences(const char *hay, const char *needle)
{
    int n = 0;

    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
        n++;
    return n;
}

START_TEST(thirty_concurrent_migrators)
{
    enum { N = 30 };
    static const char *const args[] = { "migrate", NULL };
    char *url = this_db(), line[128];
    size_t nm = spotdb_migration_embedded_count();
    int applied[16] = { 0 }, up_to_date = 0, now_at = 0;
    spotdb_migration_info m;
    proc p[N];
    PGconn *raw;

    ck_assert_uint_lt(nm, 16);
    for (int i = 0; i < N; i++)
        p[i] = start(url, args);
    for (int i = 0; i < N; i++) {
        finish(&p[i]);
        ck_assert_msg(exit_code(&p[i]) == 0, "migrator %d exited %d: %s", i,
                      exit_code(&p[i]), p[i].stderr_text);
        ck_assert_str_eq(p[i].stderr_text, "");
        for (size_t k = 0; k < nm; k++) {
            ck_assert_int_eq(spotdb_migration_embedded(&m, k), 0);
            snprintf(line, sizeof line, "applied %04lld_%s in ",
                     (long long)m.version, m.name);
            applied[k] += occurrences(p[i].stdout_text, line);
        }
        snprintf(line, sizeof line, "up to date at version %lld\n",
                 (long long)m.version);
        up_to_date += occurrences(p[i].stdout_text, line);
        snprintf(line, sizeof line, "now at version %lld\n",
                 (long long)m.version);
        now_at += occurrences(p[i].stdout_text, line);
        release(&p[i]);
    }
    for (size_t k = 0; k < nm; k++)
        ck_assert_msg(applied[k] == 1, "migration %zu applied by %d "
                      "processes", k, applied[k]);
    ck_assert_int_eq(now_at, 1);
    ck_assert_int_eq(up_to_date, N - 1);
    raw = th_connect(url);
    ck_assert_int_eq(th_count(raw, "SELECT count(*) FROM (SELECT version "
                                   "FROM spotdb_schema_migrations GROUP BY "
                                   "version HAVING count(*) = 1) d"),
                     (long)nm);
    ck_assert_int_eq(th_count(raw, "SELECT count(*) FROM "
                                   "spotdb_schema_migrations"), (long)nm);
    /* the seed row once, the last migration's index once */
    ck_assert_int_eq(th_count(raw, "SELECT count(*) FROM users"), 1);
    ck_assert_int_eq(th_count(raw, "SELECT count(*) FROM pg_indexes WHERE "
                                   "indexname = "
                                   "'idx_experiment_logs_instance_time'"), 1);
    ck_assert_int_eq(th_count(raw, "SELECT count(*) FROM pg_locks WHERE "
                                   "locktype = 'advisory' AND database = "
                                   "(SELECT oid FROM pg_database WHERE "
                                   "datname = current_database())"), 0);
    fprintf(stderr, "30 CLI migrators: each of %zu migrations applied by one "
            "process, %d found the database up to date\n", nm, up_to_date);
    PQfinish(raw);
    free(url);
}
END_TEST

/* ---- real connection failures never show the password ---------------- */

#define RMARK "Re4lM4rkerPw"

/* Start the CLI with `env` (NAME=value strings, NULL-terminated) after
 * clearing DATABASE_URL and the POSTGRES_* variables. */
static proc start_env(const char *const *env, const char *const *args)
{
    static const char *const clear[] = {
        "DATABASE_URL", "POSTGRES_HOST", "POSTGRES_PORT", "POSTGRES_USER",
        "POSTGRES_PASSWORD", "POSTGRES_DB", NULL,
    };

    return spawn(cli(), clear, env ? env : (const char *const[]){ NULL },
                 args);
}

/* Percent-encode for a URI component. */
static void pct(char *out, size_t n, const char *s)
{
    size_t k = 0;

    for (; *s && k + 4 < n; s++) {
        unsigned char c = (unsigned char)*s;

        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
            (c >= '0' && c <= '9') || strchr("-._~", c))
            out[k++] = (char)c;
        else
            k += (size_t)snprintf(out + k, n - k, "%%%02X", c);
    }
    out[k] = '\0';
}

/* One server setting a failure is made of. */
typedef struct target {
    const char *what, *reason;      /* reason: words of libpq's message */
    char host[256], port[16], user[64], dbname[64];
} target;

typedef struct leak_count {
    int runs, leaks;
} leak_count;

static void no_marker(leak_count *lc, const char *where, const char *text)
{
    lc->runs++;
    if (strstr(text, RMARK)) {
        lc->leaks++;
        fprintf(stderr, "LEAK %s: %s\n", where, text);
    }
}

/* The settings of the test server, to point each failure at it. */
static void server_settings(char *host, size_t hn, char *port, size_t pn)
{
    char *err = NULL;
    PQconninfoOption *opts = PQconninfoParse(th_admin_url(), &err);

    ck_assert_ptr_nonnull(opts);
    snprintf(host, hn, "%s", "/tmp");
    snprintf(port, pn, "5432");
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (o->val && strcmp(o->keyword, "host") == 0)
            snprintf(host, hn, "%s", o->val);
        if (o->val && *o->val && strcmp(o->keyword, "port") == 0)
            snprintf(port, pn, "%s", o->val);
    }
    PQconninfoFree(opts);
}

/* The password in each form a conninfo or URI may carry it. */
static int settings_for(const target *t, int form, char *out, size_t n)
{
    char h[512], u[128], d[128];

    pct(h, sizeof h, t->host);
    pct(u, sizeof u, t->user);
    pct(d, sizeof d, t->dbname);
    switch (form) {
    case 0:
        return snprintf(out, n, "host='%s' port=%s user='%s' dbname='%s' "
                        "password=" RMARK " connect_timeout=3", t->host,
                        t->port, t->user, t->dbname);
    case 1:
        return snprintf(out, n, "password='it\\'s " RMARK " x' host='%s' "
                        "port=%s user='%s' dbname='%s' connect_timeout=3",
                        t->host, t->port, t->user, t->dbname);
    case 2:
        return snprintf(out, n, "postgresql://%s:" RMARK "@/%s?host=%s&"
                        "port=%s&connect_timeout=3", u, d, h, t->port);
    case 3:
        return snprintf(out, n, "postgres://%s@/%s?password=" RMARK
                        "&host=%s&port=%s&connect_timeout=3", u, d, h,
                        t->port);
    default:
        return 0;
    }
}
#define N_FORMS 4

/* Failures from the real server (a role or database that does not
 * exist, a name that equals the password) and from the network (a closed
 * TCP port, a socket that is not there), each with the marker password,
 * through spotdb_open (argument, DATABASE_URL, POSTGRES_*) and the CLI
 * (-d, DATABASE_URL, POSTGRES_*; migrate and status; with and without
 * --trace). */
START_TEST(real_connection_failures_never_show_the_password)
{
    char host[256], port[16], settings[1024];
    target t[6];
    leak_count lc = { 0, 0 };
    int lib_runs = 0, cli_runs = 0;
    char *saved_url = strdup(th_admin_url());

    server_settings(host, sizeof host, port, sizeof port);
    for (int i = 0; i < 6; i++) {
        t[i] = (target){ .what = "", .reason = "" };
        snprintf(t[i].host, sizeof t[i].host, "%s", host);
        snprintf(t[i].port, sizeof t[i].port, "%s", port);
        snprintf(t[i].user, sizeof t[i].user, "postgres");
        snprintf(t[i].dbname, sizeof t[i].dbname, "%s", th_db_name());
    }
    t[0].what = "no such role";
    t[0].reason = "does not exist";
    snprintf(t[0].user, sizeof t[0].user, "spotdb_no_such_role");
    t[1].what = "no such database";
    t[1].reason = "does not exist";
    snprintf(t[1].dbname, sizeof t[1].dbname, "spotdb_no_such_db");
    t[2].what = "role named like the password";
    t[2].reason = "does not exist";
    snprintf(t[2].user, sizeof t[2].user, RMARK);
    t[3].what = "database named like the password";
    t[3].reason = "does not exist";
    snprintf(t[3].dbname, sizeof t[3].dbname, RMARK);
    t[4].what = "closed TCP port";
    t[4].reason = "refused";
    snprintf(t[4].host, sizeof t[4].host, "127.0.0.1");
    snprintf(t[4].port, sizeof t[4].port, "1");
    t[5].what = "no socket on this port";
    t[5].reason = "No such file";
    snprintf(t[5].port, sizeof t[5].port, "1");

    for (int i = 0; i < 6; i++) {
        for (int form = 0; form < N_FORMS; form++) {
            spotdb_db *h = NULL;
            int rc;

            settings_for(&t[i], form, settings, sizeof settings);
            /* the library: argument, then DATABASE_URL */
            for (int src = 0; src < 2; src++) {
                if (src)
                    setenv("DATABASE_URL", settings, 1);
                rc = spotdb_open(&h, src ? NULL : settings, NULL);
                ck_assert_msg(rc == SPOTDB_ECONN, "%s: %d %s", t[i].what, rc,
                              spotdb_last_errmsg());
                ck_assert_ptr_null(h);
                ck_assert_msg(strstr(spotdb_last_errmsg(), t[i].reason),
                              "%s: reason lost: %s", t[i].what,
                              spotdb_last_errmsg());
                no_marker(&lc, t[i].what, spotdb_last_errmsg());
                lib_runs++;
            }
            setenv("DATABASE_URL", saved_url, 1);
            /* the CLI: -d and DATABASE_URL, both commands, traced or not */
            for (int k = 0; k < 4; k++) {
                char url_env[1100];
                const char *env[] = { url_env, NULL };
                const char *cmd = k & 1 ? "status" : "migrate";
                const char *with_d[] = { "--trace", "-d", settings, cmd,
                                         NULL };
                const char *plain[] = { cmd, NULL };
                const char *traced[] = { "--trace", cmd, NULL };
                proc p;

                snprintf(url_env, sizeof url_env, "DATABASE_URL=%s",
                         settings);
                p = k < 2 ? start_env(NULL, k == 0 ? with_d + 1 : with_d)
                          : start_env(env, k == 2 ? plain : traced);
                finish(&p);
                ck_assert_msg(exit_code(&p) == 1, "%s: exit %d: %s",
                              t[i].what, exit_code(&p), p.stderr_text);
                ck_assert_int_eq(lines(p.stderr_text), 1);
                ck_assert_msg(strstr(p.stderr_text, t[i].reason),
                              "%s: %s", t[i].what, p.stderr_text);
                no_marker(&lc, t[i].what, p.stderr_text);
                no_marker(&lc, t[i].what, p.stdout_text);
                release(&p);
                cli_runs++;
            }
        }
        /* POSTGRES_* variables, in the library and the CLI */
        {
            char vh[300], vp[40], vu[100], vd[100];
            const char *env[] = { vh, vp, vu, vd,
                                  "POSTGRES_PASSWORD=" RMARK, NULL };
            const char *args[][3] = { { "migrate", NULL },
                                      { "--trace", "status", NULL } };
            spotdb_db *h = NULL;

            snprintf(vh, sizeof vh, "POSTGRES_HOST=%s", t[i].host);
            snprintf(vp, sizeof vp, "POSTGRES_PORT=%s", t[i].port);
            snprintf(vu, sizeof vu, "POSTGRES_USER=%s", t[i].user);
            snprintf(vd, sizeof vd, "POSTGRES_DB=%s", t[i].dbname);
            unsetenv("DATABASE_URL");
            setenv("POSTGRES_HOST", t[i].host, 1);
            setenv("POSTGRES_PORT", t[i].port, 1);
            setenv("POSTGRES_USER", t[i].user, 1);
            setenv("POSTGRES_DB", t[i].dbname, 1);
            setenv("POSTGRES_PASSWORD", RMARK, 1);
            ck_assert_int_eq(spotdb_open(&h, NULL, NULL), SPOTDB_ECONN);
            ck_assert(strstr(spotdb_last_errmsg(), "POSTGRES_* variables"));
            ck_assert(strstr(spotdb_last_errmsg(), t[i].reason));
            no_marker(&lc, t[i].what, spotdb_last_errmsg());
            lib_runs++;
            unsetenv("POSTGRES_HOST");
            unsetenv("POSTGRES_PORT");
            unsetenv("POSTGRES_USER");
            unsetenv("POSTGRES_DB");
            unsetenv("POSTGRES_PASSWORD");
            setenv("DATABASE_URL", saved_url, 1);
            for (int k = 0; k < 2; k++) {
                proc p = start_env(env, args[k]);

                finish(&p);
                ck_assert_msg(exit_code(&p) == 1, "%s: exit %d: %s",
                              t[i].what, exit_code(&p), p.stderr_text);
                ck_assert(strstr(p.stderr_text, "POSTGRES_* variables"));
                no_marker(&lc, t[i].what, p.stderr_text);
                no_marker(&lc, t[i].what, p.stdout_text);
                release(&p);
                cli_runs++;
            }
        }
    }
    fprintf(stderr, "real failures: %d library opens, %d CLI runs, %d "
            "outputs checked, %d leaks\n", lib_runs, cli_runs, lc.runs,
            lc.leaks);
    ck_assert_int_eq(lc.leaks, 0);
    free(saved_url);
}
END_TEST

/* The trusting test server lets any password in: every statement of a
 * whole migrate and status, traced, through -d and POSTGRES_*, never
 * shows it. */
START_TEST(trace_of_successful_runs_never_shows_the_password)
{
    char host[256], port[16], settings[1024];
    target t;
    leak_count lc = { 0, 0 };

    server_settings(host, sizeof host, port, sizeof port);
    t = (target){ .what = "ok", .reason = "" };
    snprintf(t.host, sizeof t.host, "%s", host);
    snprintf(t.port, sizeof t.port, "%s", port);
    snprintf(t.user, sizeof t.user, "postgres");
    snprintf(t.dbname, sizeof t.dbname, "%s", th_db_name());
    for (int form = 0; form < N_FORMS; form++) {
        for (int k = 0; k < 2; k++) {
            const char *args[] = { "--trace", "-d", settings,
                                   k ? "status" : "migrate", NULL };
            proc p;

            settings_for(&t, form, settings, sizeof settings);
            p = start_env(NULL, args);
            finish(&p);
            ck_assert_msg(exit_code(&p) == 0, "%s", p.stderr_text);
            ck_assert_int_ge(lines(p.stderr_text), 1);
            ck_assert(strstr(p.stderr_text, "spotdb: trace: "));
            no_marker(&lc, "trace", p.stderr_text);
            no_marker(&lc, "output", p.stdout_text);
            release(&p);
        }
    }
    {
        char vh[300], vp[40], vd[100];
        const char *env[] = { vh, vp, vd, "POSTGRES_USER=postgres",
                              "POSTGRES_PASSWORD=" RMARK, NULL };
        const char *args[] = { "--trace", "status", NULL };
        proc p;

        snprintf(vh, sizeof vh, "POSTGRES_HOST=%s", host);
        snprintf(vp, sizeof vp, "POSTGRES_PORT=%s", port);
        snprintf(vd, sizeof vd, "POSTGRES_DB=%s", th_db_name());
        p = start_env(env, args);
        finish(&p);
        ck_assert_msg(exit_code(&p) == 0, "%s", p.stderr_text);
        ck_assert(strstr(p.stdout_text, "schema version: 3"));
        no_marker(&lc, "trace", p.stderr_text);
        no_marker(&lc, "output", p.stdout_text);
        release(&p);
    }
    fprintf(stderr, "successful traced runs: %d outputs checked, %d leaks\n",
            lc.runs, lc.leaks);
    ck_assert_int_eq(lc.leaks, 0);
}
END_TEST

/* ---- spotdb doctor ------------------------------------------------------ */

/* Lines of `text` holding `needle` that do not also hold `allowed`. */
static int lines_with(const char *text, const char *needle,
                      const char *allowed)
{
    int n = 0;

    while (*text) {
        const char *end = strchr(text, '\n');
        size_t len = end ? (size_t)(end - text) : strlen(text);
        char *line = strndup(text, len);

        n += strstr(line, needle) && !strstr(line, allowed);
        free(line);
        text += len + (end != NULL);
    }
    return n;
}

/* One line per finding, "SEVERITY CODE: message"; exit 1 while a warning
 * or an error stands, 0 once fixed; 2 for a usage error. */
START_TEST(doctor_lines_and_exit_status)
{
    const char *doctor[] = { "doctor", NULL }, *migrate[] = { "migrate", NULL };
    const char *traced[] = { "--trace", "doctor", NULL };
    const char *extra[] = { "doctor", "extra", NULL };
    const char *help[] = { "doctor", "--help", NULL };
    char *url = this_db(), *seed;
    PGconn *raw;
    proc p;

    p = run(url, doctor);
    ck_assert_msg(exit_code(&p) == 1, "%s", p.stderr_text);
    ck_assert_int_eq(lines(p.stdout_text), 1);
    ck_assert(strncmp(p.stdout_text, "error schema_unversioned: ", 26) == 0);
    ck_assert_str_eq(p.stderr_text, "");
    release(&p);
    p = run(url, migrate);
    ck_assert_int_eq(exit_code(&p), 0);
    release(&p);
    raw = th_connect(url);
    seed = th_scalar(raw, "SELECT hashed_password FROM users WHERE "
                          "username = 'admin'");
    /* the seeded admin password, verified without logging in; the only
     * hash in the trace is the seed in the text of 0001_initial.sql,
     * which the schema comparison runs in its scratch schema */
    p = run(url, traced);
    ck_assert_msg(exit_code(&p) == 1, "%s", p.stderr_text);
    ck_assert_int_eq(lines(p.stdout_text), 1);
    ck_assert(strncmp(p.stdout_text, "error default_admin_password: user "
                      "\"admin\" ", 35) == 0);
    ck_assert(strstr(p.stderr_text, "spotdb: trace: ") != NULL);
    ck_assert(strstr(p.stdout_text, "$2b$") == NULL);
    ck_assert_int_eq(lines_with(p.stderr_text, seed,
                                "0001_initial.sql: INSERT INTO users"), 0);
    release(&p);
    free(seed);
    th_qeq(raw, NULL, "SELECT last_login FROM users WHERE username = 'admin'");
    /* a hash of some other password: never printed, traced or not */
    th_exec(raw, "UPDATE users SET hashed_password = '$2b$04$abcdefghijklmno"
                 "pqrstuu1234567890123456789012345678901' WHERE username = "
                 "'admin'");
    p = run(url, doctor);
    ck_assert_msg(exit_code(&p) == 0, "%s%s", p.stdout_text, p.stderr_text);
    ck_assert_str_eq(p.stdout_text, "no findings\n");
    ck_assert_str_eq(p.stderr_text, "");
    release(&p);
    p = run(url, traced);
    ck_assert_int_eq(exit_code(&p), 0);
    ck_assert(strstr(p.stderr_text, "abcdefghijklmnopqrstuu") == NULL);
    ck_assert(strstr(p.stdout_text, "abcdefghijklmnopqrstuu") == NULL);
    release(&p);
    th_exec(raw, "CREATE INDEX hand_made_idx ON users (full_name)");
    th_exec(raw, "UPDATE spotdb_schema_migrations SET checksum = "
                 "repeat('0', 64) WHERE version = 2");
    p = run(url, doctor);
    ck_assert_int_eq(exit_code(&p), 1);
    ck_assert_int_eq(lines(p.stdout_text), 2);
    ck_assert(strstr(p.stdout_text, "error migration_changed: ") ==
              p.stdout_text);
    ck_assert(strstr(p.stdout_text, "\nwarning schema_drift: ") != NULL);
    ck_assert(strstr(p.stdout_text, "CREATE INDEX hand_made_idx") != NULL);
    release(&p);
    p = run(url, extra);
    ck_assert_int_eq(exit_code(&p), 2);
    ck_assert(strstr(p.stderr_text, "usage: spotdb doctor") != NULL);
    release(&p);
    p = run(NULL, help);
    ck_assert_int_eq(exit_code(&p), 0);
    ck_assert(strstr(p.stdout_text, "usage: spotdb doctor") != NULL);
    ck_assert(strstr(p.stdout_text, "Exit status") != NULL);
    release(&p);
    PQfinish(raw);
    free(url);
}
END_TEST

static Suite *cli_suite(void)
{
    Suite *s = suite_create("cli");
    TCase *tc = tcase_create("pg");

    tcase_add_checked_fixture(tc, th_setup_db, th_teardown_db);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, eight_concurrent_migrators);
    tcase_add_test(tc, lab_agent_runs_after_migrate);
    tcase_add_test(tc, status_before_and_after);
    tcase_add_test(tc, dry_run_prints_sql_and_changes_nothing);
    tcase_add_test(tc, trace_prints_statements_never_secrets);
    tcase_add_test(tc, failures_are_one_line_and_non_zero);
    tcase_add_test(tc, usage_errors_exit_two);
    tcase_add_test(tc, help_and_version_need_no_database);
    tcase_add_test(tc, thirty_concurrent_migrators);
    tcase_add_test(tc, real_connection_failures_never_show_the_password);
    tcase_add_test(tc, trace_of_successful_runs_never_shows_the_password);
    tcase_add_test(tc, doctor_lines_and_exit_status);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return th_run(cli_suite());
}
