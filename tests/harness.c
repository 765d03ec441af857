#include "harness.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#if defined(__has_include)
#  if __has_include(<valgrind/valgrind.h>)
#    include <valgrind/valgrind.h>
#  endif
#endif
#ifndef RUNNING_ON_VALGRIND
#  define RUNNING_ON_VALGRIND 0
#endif

static char db_name[64];
static char *db_conninfo;

const char *th_admin_url(void)
{
    const char *u = getenv("SPOTDB_TEST_DATABASE_URL");

    if (!u || !*u)
        u = getenv("DATABASE_URL");
    ck_assert_msg(u && *u, "no database: run the tests through 'tools/run "
                  "test', or set DATABASE_URL to a server where this user "
                  "may CREATE DATABASE");
    return u;
}

/* Keyword/value quoting: single quotes, backslash before ' and \. */
static void append_kv(char **buf, size_t *len, const char *kw, const char *v)
{
    size_t need = *len + strlen(kw) + 2 * strlen(v) + 6;
    char *p;

    *buf = realloc(*buf, need);
    ck_assert_ptr_nonnull(*buf);
    p = *buf + *len;
    p += sprintf(p, "%s%s='", *len ? " " : "", kw);
    for (; *v; v++) {
        if (*v == '\'' || *v == '\\')
            *p++ = '\\';
        *p++ = *v;
    }
    *p++ = '\'';
    *p = '\0';
    *len = (size_t)(p - *buf);
}

char *th_conninfo_with_db(const char *base, const char *dbname)
{
    char *err = NULL, *out = NULL;
    size_t len = 0;
    PQconninfoOption *opts = PQconninfoParse(base, &err);

    ck_assert_msg(opts != NULL, "bad base conninfo: %s", err ? err : "oom");
    for (PQconninfoOption *o = opts; o->keyword; o++)
        if (o->val && strcmp(o->keyword, "dbname") != 0)
            append_kv(&out, &len, o->keyword, o->val);
    append_kv(&out, &len, "dbname", dbname);
    PQconninfoFree(opts);
    return out;
}

static void quiet(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

PGconn *th_connect(const char *conninfo)
{
    PGconn *c = PQconnectdb(conninfo);

    ck_assert_msg(PQstatus(c) == CONNECTION_OK, "cannot connect: %s",
                  PQerrorMessage(c));
    PQsetNoticeProcessor(c, quiet, NULL);
    return c;
}

void th_exec(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);

    ck_assert_msg(st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK,
                  "%s: %s", sql, PQerrorMessage(c));
    PQclear(r);
}

char *th_scalar(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    char *v = NULL;

    ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK, "%s: %s", sql,
                  PQerrorMessage(c));
    if (PQntuples(r) > 0 && !PQgetisnull(r, 0, 0))
        v = strdup(PQgetvalue(r, 0, 0));
    PQclear(r);
    return v;
}

long th_count(PGconn *c, const char *sql)
{
    char *v = th_scalar(c, sql);
    long n = v ? strtol(v, NULL, 10) : -1;

    free(v);
    return n;
}

static char *vquery(PGconn *c, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
static char *vquery(PGconn *c, const char *fmt, va_list ap)
{
    char sql[8192];

    vsnprintf(sql, sizeof sql, fmt, ap);
    return th_scalar(c, sql);
}

char *th_qf(PGconn *c, const char *fmt, ...)
{
    va_list ap;
    char *v;

    va_start(ap, fmt);
    v = vquery(c, fmt, ap);
    va_end(ap);
    return v;
}

long th_qn(PGconn *c, const char *fmt, ...)
{
    va_list ap;
    char *v;
    long n;

    va_start(ap, fmt);
    v = vquery(c, fmt, ap);
    va_end(ap);
    n = v ? strtol(v, NULL, 10) : -1;
    free(v);
    return n;
}

void th_qeq(PGconn *c, const char *expected, const char *fmt, ...)
{
    char sql[8192];
    va_list ap;
    char *v;

    va_start(ap, fmt);
    vsnprintf(sql, sizeof sql, fmt, ap);
    va_end(ap);
    v = th_scalar(c, sql);
    ck_assert_msg((v == NULL && expected == NULL) ||
                  (v && expected && strcmp(v, expected) == 0),
                  "%s: got %s, expected %s", sql, v ? v : "NULL",
                  expected ? expected : "NULL");
    free(v);
}

const char *th_db_create(void)
{
    static unsigned counter;
    char sql[128];
    PGconn *admin = th_connect(th_admin_url());

    snprintf(db_name, sizeof db_name, "spotdb_t_%ld_%u", (long)getpid(),
             counter++);
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s", db_name);
    th_exec(admin, sql);
    snprintf(sql, sizeof sql, "CREATE DATABASE %s TEMPLATE template0", db_name);
    th_exec(admin, sql);
    PQfinish(admin);
    free(db_conninfo);
    db_conninfo = th_conninfo_with_db(th_admin_url(), db_name);
    return db_conninfo;
}

const char *th_db_name(void)
{
    return db_name;
}

void th_db_drop(void)
{
    char sql[128];
    PGconn *admin;

    if (!db_name[0])
        return;
    admin = th_connect(th_admin_url());
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)",
             db_name);
    th_exec(admin, sql);
    PQfinish(admin);
    db_name[0] = '\0';
    free(db_conninfo);
    db_conninfo = NULL;
}

void th_setup_db(void)
{
    th_db_create();
}

void th_teardown_db(void)
{
    th_db_drop();
}

char *th_read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    long n;
    char *buf;

    ck_assert_msg(f != NULL, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert_uint_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

int th_exec_file_like_psql(PGconn *c, const char *path)
{
    char *sql = th_read_file(path);
    size_t len = strlen(sql);
    long n = spotdb__sql_split(sql, len, NULL, 0, NULL);
    spotdb__stmt *st;
    int failed = 0;

    ck_assert_int_ge(n, 0);
    st = calloc((size_t)n + 1, sizeof *st);
    spotdb__sql_split(sql, len, st, (size_t)n, NULL);
    for (long k = 0; k < n; k++) {
        PGresult *r;

        sql[st[k].offset + st[k].length] = '\0';
        r = PQexec(c, sql + st[k].offset);
        if (PQresultStatus(r) != PGRES_COMMAND_OK &&
            PQresultStatus(r) != PGRES_TUPLES_OK)
            failed++;
        PQclear(r);
    }
    free(st);
    free(sql);
    return failed;
}

const char *th_source_path(const char *relative)
{
    static char path[4096];
    const char *dir = getenv("SPOTDB_TEST_SOURCE_DIR");

    snprintf(path, sizeof path, "%s/%s", dir ? dir : ".", relative);
    return path;
}

int th_run(Suite *s)
{
    SRunner *sr = srunner_create(s);
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

const char *th_db_conninfo(void)
{
    ck_assert_msg(db_conninfo != NULL, "no test database");
    return db_conninfo;
}

int th_open_unchecked(spotdb_db **out, const char *conninfo)
{
    spotdb_open_options o = SPOTDB_OPEN_OPTIONS_INIT;

    o.schema_check = SPOTDB_SCHEMA_CHECK_SKIP;
    return spotdb_open(out, conninfo, &o);
}

void th_setup_migrated_db(void)
{
    spotdb_db *db = NULL;
    int rc;

    spotdb__bcrypt_cost = 4;
    th_db_create();
    rc = th_open_unchecked(&db, db_conninfo);
    ck_assert_msg(rc == 0, "open: %s", spotdb_last_errmsg());
    rc = spotdb_migrate(db, NULL);
    ck_assert_msg(rc == 0, "migrate: %s", spotdb_errmsg(db));
    spotdb_close(db);
}

spotdb_db *th_open(void)
{
    spotdb_db *db = NULL;
    int rc = spotdb_open(&db, th_db_conninfo(), NULL);

    ck_assert_msg(rc == 0, "open: %s", spotdb_last_errmsg());
    return db;
}

int th_scaleout(const char *args)
{
    const char *tool = getenv("SPOTDB_SCALEOUT");
    char line[1024];
    FILE *p;
    int st;

    if (!tool)
        return -1;
    snprintf(line, sizeof line, "'%s' %s", tool, args);
    if (!(p = popen(line, "r")))
        return -1;
    while (fgets(line, sizeof line, p)) {
        char *eq, *end;

        if (strncmp(line, "export ", 7) != 0 || !(eq = strchr(line, '=')))
            continue;
        *eq = '\0';
        end = strrchr(eq + 2, '\'');
        if (eq[1] != '\'' || !end)
            continue;
        *end = '\0';
        setenv(line + 7, eq + 2, 1);
    }
    st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

double th_now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void th_sleep_s(double s)
{
    struct timespec ts;

    ts.tv_sec = (time_t)s;
    ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
    nanosleep(&ts, NULL);
}

char *th_conninfo_as(const char *role)
{
    const char *base = th_db_conninfo();
    char *out = malloc(strlen(base) + strlen(role) + sizeof " user=");

    ck_assert_ptr_nonnull(out);
    sprintf(out, "%s user=%s", base, role);
    return out;
}

void th_login_role(const char *name, const char *group)
{
    PGconn *c = th_connect(th_db_conninfo());

    th_qeq(c, "t", "DO $$ BEGIN "
           "IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '%s') THEN "
           "BEGIN CREATE ROLE %s LOGIN; "
           "EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; "
           "END; END IF; "
           "IF NOT pg_has_role('%s', '%s', 'MEMBER') THEN "
           "BEGIN GRANT %s TO %s; "
           "EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; "
           "END; END IF; END $$; "
           "SELECT pg_has_role('%s', '%s', 'MEMBER')",
           name, name, name, group, group, name, name, group);
    PQfinish(c);
}

int th_under_valgrind(void)
{
    return RUNNING_ON_VALGRIND ? 1 : 0;
}
