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

/* Start `program` with DATABASE_URL = url (NULL: unset), no stdin. */
static proc start_program(const char *program, const char *url,
                          const char *const *args)
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
        if (url)
            setenv("DATABASE_URL", url, 1);
        else
            unsetenv("DATABASE_URL");
        execv(program, (char *const *)argv);
        _exit(127);
    }
    close(o[1]);
    close(e[1]);
    p.out = o[0];
    p.err = e[0];
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
                   strstr(p[i].stdout_text, "applied 0002_experiment_log_paging in ") != NULL;
        up_to_date += strstr(p[i].stdout_text, "up to date at version 2") != NULL;
        ck_assert_str_eq(p[i].stderr_text, "");
        release(&p[i]);
    }
    ck_assert_int_eq(applied, 1);
    ck_assert_int_eq(up_to_date, 7);
    raw = th_connect(url);
    ck_assert_int_eq(th_count(raw, "SELECT count(*) FROM spotdb_schema_migrations"), 2);
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
    ck_assert_msg(strstr(p.stdout_text, "schema version: 0 (library embeds up to 2)"), "%s", p.stdout_text);
    ck_assert(strstr(p.stdout_text, "applied: none"));
    ck_assert(strstr(p.stdout_text, "pending:\n  0001_initial\n  0002_experiment_log_paging\n"));
    release(&p);

    p = run(url, migrate);
    ck_assert_int_eq(exit_code(&p), 0);
    ck_assert(strstr(p.stdout_text, "applied 0001_initial in "));
    ck_assert(strstr(p.stdout_text, "now at version 2"));
    release(&p);

    p = run(url, status);
    ck_assert_int_eq(exit_code(&p), 0);
    ck_assert(strstr(p.stdout_text, "schema version: 2"));
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
    ck_assert(strstr(p.stdout_text, "now at version 2"));
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
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return th_run(cli_suite());
}
