/*
 * Migrations against the real server: fresh build, re-runs, failures and
 * their messages, guards, targets, dry runs, the lock, adoption.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "internal.h"

extern const spotdb__migration_set th_steps_set;
extern const spotdb__migration_set th_failing_set;
extern const spotdb__migration_set th_compat_set;

/* Migrations embedded from sql/: every applied set is versions 1..N. */
#define N_BUILTIN ((int)spotdb_migration_embedded_count())

#define LOCK_KEY "8318271057444339713"
/* pg_locks is cluster-wide; other suites run at the same time */
#define THIS_DB "database = (SELECT oid FROM pg_database " \
                "WHERE datname = current_database())"

/* A set of one migration, version 1, written inline; its checksum is
 * never compared since these sets are only applied to new databases. */
#define ONE_MIGRATION_SET(var, name, text)                                   \
    static const char var##_sql[] = text;                                    \
    static const spotdb__migration var##_items[] = {                         \
        { 1, name, "0001_" name ".sql",                                      \
          "0000000000000000000000000000000000000000000000000000000000000000", \
          var##_sql, sizeof var##_sql - 1, false },                               \
    };                                                                       \
    static const spotdb__migration_set var##_set = { var##_items, 1, 0 }

static spotdb_db *db;
static PGconn *raw;

static char *conninfo(void)
{
    return th_conninfo_with_db(th_admin_url(), th_db_name());
}

static void setup(void)
{
    char *ci;

    th_setup_db();
    ci = conninfo();
    ck_assert_msg(th_open_unchecked(&db, ci) == 0, "%s", spotdb_last_errmsg());
    raw = th_connect(ci);
    free(ci);
}

static void teardown(void)
{
    spotdb_close(db);
    db = NULL;
    PQfinish(raw);
    raw = NULL;
    th_teardown_db();
}

static long tracked_rows(void)
{
    return th_count(raw, "SELECT count(*) FROM spotdb_schema_migrations");
}

static bool relation_exists(const char *name)
{
    char sql[256];
    char *v;
    bool exists;

    snprintf(sql, sizeof sql, "SELECT to_regclass('%s') IS NOT NULL", name);
    v = th_scalar(raw, sql);
    exists = v && strcmp(v, "t") == 0;
    free(v);
    return exists;
}

#define assert_msg_has(needle)                                                \
    ck_assert_msg(strstr(spotdb_errmsg(db), needle) != NULL,                  \
                  "message lacks \"%s\": %s", needle, spotdb_errmsg(db))

/* Collects what the migrate callback reports. */
typedef struct seen {
    int calls, adopted, applied, dry;
    int64_t versions[16];
    bool sql_has_create;
} seen;

static void record_cb(const spotdb_migration_info *m, const char *sql,
                      void *payload)
{
    seen *s = payload;

    if (s->calls < 16)
        s->versions[s->calls] = m->version;
    s->calls++;
    if (m->state == SPOTDB_MIGRATION_ADOPTED)
        s->adopted++;
    else if (sql)
        s->dry++;
    else
        s->applied++;
    if (sql && strstr(sql, "CREATE TABLE"))
        s->sql_has_create = true;
    ck_assert_int_eq(m->version > 0, 1);
    ck_assert_ptr_nonnull(m->name);
    ck_assert_uint_eq(strlen(m->checksum), 64);
}

/* ---- fresh database --------------------------------------------------- */

START_TEST(fresh_database_reaches_latest)
{
    spotdb_migrate_options o = SPOTDB_MIGRATE_OPTIONS_INIT;
    spotdb_status *st = NULL;
    spotdb_migration_info emb;
    seen s = { 0 };

    o.callback = record_cb;
    o.payload = &s;
    ck_assert_int_eq(spotdb_migrate(db, &o), 0);
    ck_assert_str_eq(spotdb_errmsg(db), "");
    ck_assert_int_eq(s.applied, N_BUILTIN);
    ck_assert_int_eq(s.versions[0], 1);
    ck_assert_int_eq(tracked_rows(), N_BUILTIN);
    ck_assert_int_eq(spotdb_migration_embedded(&emb, 0), 0);
    {
        char *sum = th_scalar(raw, "SELECT checksum FROM spotdb_schema_migrations");
        ck_assert_str_eq(sum, emb.checksum);
        free(sum);
    }
    ck_assert_int_ge(th_count(raw, "SELECT execution_ms FROM spotdb_schema_migrations"), 0);
    ck_assert_int_eq(th_count(raw, "SELECT count(*) FROM users WHERE username = 'admin'"), 1);

    ck_assert_int_eq(spotdb_status_get(&st, db), 0);
    ck_assert_int_eq(st->current_version, N_BUILTIN);
    ck_assert_int_eq(st->latest_version, N_BUILTIN);
    ck_assert_int_eq(st->tracked, 1);
    ck_assert_uint_eq(st->applied_count, N_BUILTIN);
    ck_assert_uint_eq(st->pending_count, 0);
    ck_assert_int_eq(st->applied[0].state, SPOTDB_MIGRATION_APPLIED);
    ck_assert_str_eq(st->applied[0].name, "initial");
    /* applied_at is a UTC instant: within a minute of the client's clock */
    ck_assert_int_lt(llabs(st->applied[0].applied_at_us / 1000000 - (long long)time(NULL)), 60);
    spotdb_status_free(st);

    /* the advisory lock was released */
    ck_assert_int_eq(th_count(raw, "SELECT count(*) FROM pg_locks "
                                   "WHERE locktype = 'advisory' AND " THIS_DB), 0);
}
END_TEST

START_TEST(rerun_is_a_no_op)
{
    spotdb_migrate_options o = SPOTDB_MIGRATE_OPTIONS_INIT;
    seen s = { 0 };
    char *before, *after;

    ck_assert_int_eq(spotdb_migrate(db, NULL), 0);
    before = th_scalar(raw, "SELECT applied_at::text || checksum FROM spotdb_schema_migrations");
    o.callback = record_cb;
    o.payload = &s;
    ck_assert_int_eq(spotdb_migrate(db, &o), 0);
    ck_assert_int_eq(spotdb_migrate(db, &o), 0);
    after = th_scalar(raw, "SELECT applied_at::text || checksum FROM spotdb_schema_migrations");
    ck_assert_int_eq(s.calls, 0);
    ck_assert_str_eq(before, after);
    ck_assert_int_eq(tracked_rows(), N_BUILTIN);
    ck_assert_int_eq(th_count(raw, "SELECT count(*) FROM users"), 1);
    free(before);
    free(after);
}
END_TEST

START_TEST(status_of_empty_database)
{
    spotdb_status *st = NULL;

    ck_assert_int_eq(spotdb_status_get(&st, db), 0);
    ck_assert_int_eq(st->tracked, 0);
    ck_assert_int_eq(st->unversioned_schema, 0);
    ck_assert_int_eq(st->current_version, 0);
    ck_assert_uint_eq(st->applied_count, 0);
    ck_assert_uint_eq(st->pending_count, N_BUILTIN);
    ck_assert_int_eq(st->pending[0].state, SPOTDB_MIGRATION_PENDING);
    ck_assert_int_eq(st->pending[0].execution_ms, -1);
    spotdb_status_free(st);
    /* status changed nothing */
    ck_assert(!relation_exists("spotdb_schema_migrations"));
    ck_assert(!relation_exists("users"));
    ck_assert_int_eq(th_count(raw, "SELECT count(*) FROM pg_namespace "
                                   "WHERE nspname = 'spotdb_catalog_probe'"), 0);
}
END_TEST

START_TEST(status_for_a_role_that_cannot_probe)
{
    spotdb_db *h = NULL;
    spotdb_status *st = NULL;
    char sql[256], *ci, *role_ci;
    size_t n;

    /* a table, so the probe is needed; a role that may not create schemas */
    th_exec(raw, "CREATE TABLE inventory (sku text); GRANT USAGE ON SCHEMA public TO PUBLIC");
    snprintf(sql, sizeof sql, "CREATE ROLE %s_ro LOGIN", th_db_name());
    th_exec(raw, sql);
    ci = conninfo();
    n = strlen(ci) + 128;
    role_ci = malloc(n);
    snprintf(role_ci, n, "%s user=%s_ro", ci, th_db_name());
    ck_assert_msg(th_open_unchecked(&h, role_ci) == 0, "%s", spotdb_last_errmsg());
    ck_assert_int_eq(spotdb_status_get(&st, h), 0);
    ck_assert_int_eq(st->tracked, 0);
    ck_assert_int_eq(st->unversioned_schema, -1);
    ck_assert_str_eq(spotdb_errmsg(h), "");
    spotdb_status_free(st);
    /* migrate says why it cannot go on */
    ck_assert_int_ne(spotdb_migrate(h, NULL), 0);
    ck_assert_msg(strstr(spotdb_errmsg(h), "permission denied") != NULL, "%s", spotdb_errmsg(h));
    spotdb_close(h);
    snprintf(sql, sizeof sql, "DROP OWNED BY %s_ro; DROP ROLE %s_ro", th_db_name(), th_db_name());
    PQfinish(raw);
    th_db_drop();
    raw = th_connect(th_admin_url());
    th_exec(raw, sql);
    free(ci);
    free(role_ci);
}
END_TEST

/* ---- failures --------------------------------------------------------- */

START_TEST(failing_migration_rolls_back)
{
    spotdb_status *st = NULL;

    ck_assert_int_eq(spotdb__migrate_set(db, &th_failing_set, NULL), SPOTDB_EMIGRATE);
    assert_msg_has("0002_broken.sql");
    assert_msg_has("statement 3");
    assert_msg_has("line 5");
    assert_msg_has("division by zero");
    assert_msg_has("stays at version 1");
    ck_assert_str_eq(spotdb_sqlstate(db), "22012");
    /* 0001 committed on its own; nothing of 0002 remains; 0003 never ran */
    ck_assert_int_eq(tracked_rows(), 1);
    ck_assert(relation_exists("step_a"));
    ck_assert(!relation_exists("broken_b"));
    ck_assert(!relation_exists("never_d"));
    ck_assert_int_eq(th_count(raw, "SELECT count(*) FROM pg_locks "
                                   "WHERE locktype = 'advisory' AND " THIS_DB), 0);
    /* the handle is still usable */
    ck_assert_int_eq(spotdb__status_set(&st, db, &th_failing_set), 0);
    ck_assert_int_eq(st->current_version, 1);
    ck_assert_uint_eq(st->pending_count, 2);
    spotdb_status_free(st);
}
END_TEST

ONE_MIGRATION_SET(syntax, "syntax",
    "CREATE TABLE fine (id int);\n"
    "\n"
    "CREATE TABLE bad (\n"
    "    id int,\n"
    "  \xc3\xb1" "ame text nope\n"
    ");\n");

START_TEST(syntax_error_names_line_and_column)
{
    ck_assert_int_eq(spotdb__migrate_set(db, &syntax_set, NULL), SPOTDB_EMIGRATE);
    assert_msg_has("0001_syntax.sql");
    assert_msg_has("statement 2");
    /* 'nope' is the 13th character of line 5; the n-tilde is 2 bytes */
    assert_msg_has("line 5, column 13");
    assert_msg_has("syntax error at or near \"nope\"");
    assert_msg_has("stays at version 0");
    ck_assert_str_eq(spotdb_sqlstate(db), "42601");
    /* the first migration failed: nothing is recorded, not even the table */
    ck_assert(!relation_exists("spotdb_schema_migrations"));
    ck_assert(!relation_exists("fine"));
}
END_TEST

ONE_MIGRATION_SET(unterminated, "open_quote", "CREATE TABLE x (id int);\nSELECT 'abc;\n");

START_TEST(unterminated_quote_is_refused_before_running)
{
    ck_assert_int_eq(spotdb__migrate_set(db, &unterminated_set, NULL), SPOTDB_EMIGRATE);
    assert_msg_has("0001_open_quote.sql");
    assert_msg_has("line 2, column 8");
    ck_assert(!relation_exists("x"));
    ck_assert(!relation_exists("spotdb_schema_migrations"));
}
END_TEST

/* ---- guards ----------------------------------------------------------- */

START_TEST(checksum_drift_is_refused)
{
    ck_assert_int_eq(spotdb__migrate_set(db, &th_steps_set, NULL), 0);
    th_exec(raw, "UPDATE spotdb_schema_migrations SET checksum = 'feedface' "
                 "WHERE version = 2");
    th_exec(raw, "DROP TABLE step_c");
    th_exec(raw, "DELETE FROM spotdb_schema_migrations WHERE version = 3");
    ck_assert_int_eq(spotdb__migrate_set(db, &th_steps_set, NULL), SPOTDB_ECHECKSUM);
    assert_msg_has("checksum");
    assert_msg_has("0002_create_b.sql");
    assert_msg_has("feedface");
    assert_msg_has(th_steps_set.items[1].checksum);
    /* untouched: version 3 was pending and stays so */
    ck_assert_int_eq(tracked_rows(), 2);
    ck_assert(!relation_exists("step_c"));
}
END_TEST

START_TEST(newer_database_is_refused)
{
    spotdb_status *st = NULL;

    ck_assert_int_eq(spotdb_migrate(db, NULL), 0);
    th_exec(raw, "INSERT INTO spotdb_schema_migrations (version, name, checksum, "
                 "execution_ms) VALUES (9999, 'from_the_future', 'abc', 1)");
    ck_assert_int_eq(spotdb_migrate(db, NULL), SPOTDB_ESCHEMA);
    assert_msg_has("9999");
    assert_msg_has("newer");
    ck_assert_int_eq(tracked_rows(), N_BUILTIN + 1);
    ck_assert_int_eq(spotdb_status_get(&st, db), 0);
    ck_assert_int_eq(st->current_version, 9999);
    ck_assert_uint_eq(st->applied_count, N_BUILTIN + 1);
    ck_assert_int_eq(st->applied[N_BUILTIN].state, SPOTDB_MIGRATION_UNKNOWN);
    spotdb_status_free(st);
}
END_TEST

START_TEST(out_of_order_history_is_refused)
{
    spotdb_migrate_options o = SPOTDB_MIGRATE_OPTIONS_INIT;
    char sql[512];

    o.target_version = 1;
    ck_assert_int_eq(spotdb__migrate_set(db, &th_steps_set, &o), 0);
    snprintf(sql, sizeof sql,
             "INSERT INTO spotdb_schema_migrations (version, name, checksum, "
             "execution_ms) VALUES (3, 'create_c', '%s', 1)",
             th_steps_set.items[2].checksum);
    th_exec(raw, sql);
    ck_assert_int_eq(spotdb__migrate_set(db, &th_steps_set, NULL), SPOTDB_ESCHEMA);
    assert_msg_has("0002_create_b.sql is not applied");
    ck_assert(!relation_exists("step_b"));
}
END_TEST

START_TEST(targets_and_status)
{
    spotdb_migrate_options o = SPOTDB_MIGRATE_OPTIONS_INIT;
    spotdb_status *st = NULL;

    o.target_version = 2;
    ck_assert_int_eq(spotdb__migrate_set(db, &th_steps_set, &o), 0);
    ck_assert(relation_exists("step_b"));
    ck_assert(!relation_exists("step_c"));
    ck_assert_int_eq(spotdb__status_set(&st, db, &th_steps_set), 0);
    ck_assert_int_eq(st->current_version, 2);
    ck_assert_int_eq(st->latest_version, 3);
    ck_assert_uint_eq(st->applied_count, 2);
    ck_assert_uint_eq(st->pending_count, 1);
    ck_assert_int_eq(st->pending[0].version, 3);
    spotdb_status_free(st);

    o.target_version = 1;
    ck_assert_int_eq(spotdb__migrate_set(db, &th_steps_set, &o), SPOTDB_EINVAL);
    assert_msg_has("below the current version 2");
    o.target_version = 7;
    ck_assert_int_eq(spotdb__migrate_set(db, &th_steps_set, &o), SPOTDB_EINVAL);
    assert_msg_has("target_version 7");
    ck_assert_int_eq(spotdb__migrate_set(db, &th_steps_set, NULL), 0);
    ck_assert(relation_exists("step_c"));
    ck_assert_int_eq(tracked_rows(), 3);
}
END_TEST

START_TEST(dry_run_changes_nothing)
{
    spotdb_migrate_options o = SPOTDB_MIGRATE_OPTIONS_INIT;
    seen s = { 0 };

    o.dry_run = 1;
    o.callback = record_cb;
    o.payload = &s;
    ck_assert_int_eq(spotdb_migrate(db, &o), 0);
    ck_assert_int_eq(s.dry, N_BUILTIN);
    ck_assert(s.sql_has_create);
    ck_assert(!relation_exists("spotdb_schema_migrations"));
    ck_assert(!relation_exists("users"));

    memset(&s, 0, sizeof s);
    ck_assert_int_eq(spotdb__migrate_set(db, &th_steps_set, &o), 0);
    ck_assert_int_eq(s.dry, 3);
    ck_assert_int_eq(s.versions[2], 3);
    ck_assert(!relation_exists("step_a"));
}
END_TEST

START_TEST(bad_options_are_refused)
{
    spotdb_migrate_options o = SPOTDB_MIGRATE_OPTIONS_INIT;

    ck_assert_int_eq(spotdb_migrate(NULL, NULL), SPOTDB_EINVAL);
    o.version = 99;
    ck_assert_int_eq(spotdb_migrate(db, &o), SPOTDB_EINVAL);
    assert_msg_has("version");
    ck_assert_int_eq(spotdb_migrate_options_init(&o, SPOTDB_MIGRATE_OPTIONS_VERSION), 0);
    ck_assert_int_eq(o.lock_timeout_ms, 0);
    ck_assert(o.callback == NULL);
    ck_assert_int_eq(spotdb_migrate_options_init(&o, 42), SPOTDB_EINVAL);
    ck_assert_int_eq(spotdb_migrate_options_init(NULL, SPOTDB_MIGRATE_OPTIONS_VERSION),
                     SPOTDB_EINVAL);
    o.target_version = -1;
    ck_assert_int_eq(spotdb_migrate(db, &o), SPOTDB_EINVAL);
    o.target_version = 0;
    o.lock_timeout_ms = -2;
    ck_assert_int_eq(spotdb_migrate(db, &o), SPOTDB_EINVAL);
    assert_msg_has("lock_timeout_ms");
    ck_assert_int_eq(spotdb_status_get(NULL, db), SPOTDB_EINVAL);

    /* not inside the caller's transaction */
    PQclear(PQexec(db->conn, "BEGIN"));
    ck_assert_int_eq(spotdb_migrate(db, NULL), SPOTDB_EINVAL);
    assert_msg_has("transaction");
    PQclear(PQexec(db->conn, "ROLLBACK"));
    ck_assert(!relation_exists("users"));
}
END_TEST

/* The embedder reads the "-- spotdb: compatible" mark from the header
 * comment only. */
START_TEST(compatible_mark_is_embedded)
{
    ck_assert(!th_compat_set.items[0].compatible);
    ck_assert(th_compat_set.items[1].compatible);
    ck_assert(!th_compat_set.items[2].compatible);
    ck_assert(!spotdb__builtin_migrations.items[0].compatible);
}
END_TEST

/* An older library (a prefix of the set) may open a database that is
 * ahead only by migrations recorded as compatible. */
START_TEST(handshake_behind_equal_ahead)
{
    spotdb__migration_set v1 = { th_compat_set.items, 1, 0 };
    spotdb__migration_set v2 = { th_compat_set.items, 2, 0 };
    spotdb_migrate_options o = SPOTDB_MIGRATE_OPTIONS_INIT;

    ck_assert_int_eq(spotdb__schema_handshake(db, &v1), SPOTDB_ESCHEMA);
    ck_assert_ptr_nonnull(strstr(spotdb_errmsg(db), "spotdb migrate"));
    o.target_version = 1;
    ck_assert_int_eq(spotdb__migrate_set(db, &th_compat_set, &o), 0);
    ck_assert_int_eq(spotdb__schema_handshake(db, &v1), 0);
    ck_assert_int_eq(spotdb__schema_handshake(db, &v2), SPOTDB_ESCHEMA);
    ck_assert_ptr_nonnull(strstr(spotdb_errmsg(db), "version 1"));
    o.target_version = 2;
    ck_assert_int_eq(spotdb__migrate_set(db, &th_compat_set, &o), 0);
    ck_assert_int_eq(th_count(raw, "SELECT count(*) FROM spotdb_schema_migrations"
                                   " WHERE compatible"), 1);
    ck_assert_int_eq(spotdb__schema_handshake(db, &v1), 0);
    ck_assert_int_eq(spotdb__schema_handshake(db, &v2), 0);
    ck_assert_int_eq(spotdb__migrate_set(db, &th_compat_set, NULL), 0);
    ck_assert_int_eq(spotdb__schema_handshake(db, &v1), SPOTDB_ESCHEMA);
    ck_assert_ptr_nonnull(strstr(spotdb_errmsg(db), "not marked compatible"));
    ck_assert_ptr_nonnull(strstr(spotdb_errmsg(db), "rename"));
    ck_assert_int_eq(spotdb__schema_handshake(db, &v2), SPOTDB_ESCHEMA);
    ck_assert_int_eq(spotdb__schema_handshake(db, &th_compat_set), 0);
}
END_TEST

START_TEST(embedded_list)
{
    spotdb_migration_info m;

    ck_assert_uint_eq(spotdb_migration_embedded_count(), N_BUILTIN);
    ck_assert_int_eq(N_BUILTIN, 3);
    ck_assert_int_eq(spotdb_migration_embedded(&m, 0), 0);
    ck_assert_int_eq(m.version, 1);
    ck_assert_str_eq(m.name, "initial");
    ck_assert_uint_eq(strlen(m.checksum), 64);
    ck_assert_int_eq(m.state, SPOTDB_MIGRATION_PENDING);
    ck_assert_int_eq(spotdb_migration_embedded(&m, 1), 0);
    ck_assert_str_eq(m.name, "experiment_log_paging");
    ck_assert_int_eq(spotdb_migration_embedded(&m, 2), 0);
    ck_assert_str_eq(m.name, "tenant_isolation");
    ck_assert_int_eq(spotdb_migration_embedded(&m, 3), SPOTDB_EINVAL);
    ck_assert(strstr(spotdb_last_errmsg(), "out of range") != NULL);
    ck_assert_int_eq(spotdb_migration_embedded(NULL, 0), SPOTDB_EINVAL);
}
END_TEST

/* ---- the lock --------------------------------------------------------- */

static double elapsed_ms(const struct timespec *a)
{
    struct timespec b;

    clock_gettime(CLOCK_MONOTONIC, &b);
    return (double)(b.tv_sec - a->tv_sec) * 1e3 + (double)(b.tv_nsec - a->tv_nsec) / 1e6;
}

START_TEST(lock_timeout_gives_elocked)
{
    spotdb_migrate_options o = SPOTDB_MIGRATE_OPTIONS_INIT;
    struct timespec t0;
    double ms;

    th_exec(raw, "SELECT pg_advisory_lock(" LOCK_KEY ")");
    /* the key reads "spotdb" in pg_locks, as migrate.c says */
    ck_assert_int_eq(th_count(raw, "SELECT count(*) FROM pg_locks WHERE locktype = "
                                   "'advisory' AND " THIS_DB " AND classid = x'73706f74'::int::oid "
                                   "AND objid = x'64620001'::int::oid"), 1);
    o.lock_timeout_ms = 300;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    ck_assert_int_eq(spotdb_migrate(db, &o), SPOTDB_ELOCKED);
    ms = elapsed_ms(&t0);
    ck_assert_msg(ms >= 250 && ms < 5000, "waited %.0f ms", ms);
    assert_msg_has("lock");
    ck_assert(!relation_exists("users"));
    /* lock_timeout was a setting of the wait only */
    {
        char *v = th_scalar(db->conn, "SHOW lock_timeout");
        ck_assert_str_eq(v, "0");
        free(v);
    }
    th_exec(raw, "SELECT pg_advisory_unlock(" LOCK_KEY ")");
    ck_assert_int_eq(spotdb_migrate(db, &o), 0);
    ck_assert_int_eq(tracked_rows(), N_BUILTIN);
}
END_TEST

typedef struct worker {
    char *conninfo;
    int rc;
    char msg[512];
} worker;

static void *migrate_worker(void *arg)
{
    worker *w = arg;
    spotdb_db *h = NULL;

    w->rc = th_open_unchecked(&h, w->conninfo);
    if (w->rc == 0)
        w->rc = spotdb_migrate(h, NULL);
    snprintf(w->msg, sizeof w->msg, "%s", h ? spotdb_errmsg(h) : spotdb_last_errmsg());
    spotdb_close(h);
    return NULL;
}

START_TEST(eight_threads_migrate_once)
{
    pthread_t t[8];
    worker w[8];

    for (int i = 0; i < 8; i++) {
        w[i].conninfo = conninfo();
        ck_assert_int_eq(pthread_create(&t[i], NULL, migrate_worker, &w[i]), 0);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(t[i], NULL);
        ck_assert_msg(w[i].rc == 0, "worker %d: %d %s", i, w[i].rc, w[i].msg);
        free(w[i].conninfo);
    }
    ck_assert_int_eq(tracked_rows(), N_BUILTIN);
    ck_assert_int_eq(th_count(raw, "SELECT count(*) FROM users"), 1);
}
END_TEST

ONE_MIGRATION_SET(sleepy, "sleepy", "CREATE TABLE sleepy (id int);\nSELECT pg_sleep(60);\n");

static long advisory_locks(void)
{
    return th_count(raw, "SELECT count(*) FROM pg_locks WHERE locktype = "
                         "'advisory' AND granted AND " THIS_DB);
}

START_TEST(killed_migrator_releases_the_lock)
{
    struct timespec t0;
    pid_t pid;
    double ms;

    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        spotdb_db *h = NULL;
        char *ci = conninfo();
        if (th_open_unchecked(&h, ci) == 0)
            spotdb__migrate_set(h, &sleepy_set, NULL);
        _exit(0);
    }
    /* wait until the child sleeps inside its migration, lock held */
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (th_count(raw, "SELECT count(*) FROM pg_stat_activity WHERE "
                         "query LIKE 'SELECT pg_sleep(60)%'") == 0)
        ck_assert_msg(elapsed_ms(&t0) < 10000, "the migrator never started");
    ck_assert_int_eq(advisory_locks(), 1);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (advisory_locks() > 0)
        ck_assert_msg(elapsed_ms(&t0) < 5000, "lock still held after 5 s");
    ms = elapsed_ms(&t0);
    ck_assert_msg(ms < 3000, "lock released after %.0f ms", ms);
    /* the interrupted migration left nothing; the next run succeeds */
    ck_assert(!relation_exists("sleepy"));
    ck_assert(!relation_exists("spotdb_schema_migrations"));
    ck_assert_int_eq(spotdb_migrate(db, NULL), 0);
    ck_assert_int_eq(tracked_rows(), N_BUILTIN);
}
END_TEST

/* ---- adoption --------------------------------------------------------- */

static void build_by_hand(void)
{
    /* exactly one statement fails: the invalid COMMENT ON DATABASE */
    ck_assert_int_eq(th_exec_file_like_psql(raw, th_source_path("fixtures/v1_by_hand.sql")), 1);
}

static void add_rows(void)
{
    th_exec(raw,
        "INSERT INTO users (id, email, username, hashed_password) VALUES "
        " ('11111111-1111-1111-1111-111111111111', 'ops@example.com', 'ops', 'x');"
        "INSERT INTO accounts (id, user_id, account_id, account_name, role_arn, external_id) VALUES "
        " ('22222222-2222-2222-2222-222222222222', '11111111-1111-1111-1111-111111111111',"
        "  '123456789012', 'lab', 'arn:aws:iam::123456789012:role/x', 'ext-1');"
        "INSERT INTO instances (id, account_id, instance_id, instance_type, availability_zone) VALUES "
        " ('33333333-3333-3333-3333-333333333333', '22222222-2222-2222-2222-222222222222',"
        "  'i-0123456789abcdef0', 'c5.large', 'ap-south-1a');"
        "INSERT INTO model_registry (name, version) VALUES ('FamilyStressPredictor', 'v2.1.0');"
        "INSERT INTO experiment_logs (instance_id, decision, prediction_score) "
        " SELECT '33333333-3333-3333-3333-333333333333', 'STAY', g / 100.0 "
        " FROM generate_series(1, 50) g");
}

static const char row_digest_sql[] =
    "SELECT md5(string_agg(t, ',' ORDER BY t)) FROM ("
    " SELECT u::text t FROM users u UNION ALL SELECT a::text FROM accounts a"
    " UNION ALL SELECT i::text FROM instances i"
    " UNION ALL SELECT m::text FROM model_registry m"
    " UNION ALL SELECT e::text FROM experiment_logs e) s";

START_TEST(hand_built_database_is_adopted)
{
    spotdb_migrate_options o = SPOTDB_MIGRATE_OPTIONS_INIT;
    spotdb_status *st = NULL;
    seen s = { 0 };
    char *before, *after;

    build_by_hand();
    add_rows();
    before = th_scalar(raw, row_digest_sql);

    ck_assert_int_eq(spotdb_status_get(&st, db), 0);
    ck_assert_int_eq(st->tracked, 0);
    ck_assert_int_eq(st->unversioned_schema, 1);
    ck_assert_str_eq(spotdb_errmsg(db), "");
    spotdb_status_free(st);

    o.callback = record_cb;
    o.payload = &s;
    ck_assert_msg(spotdb_migrate(db, &o) == 0, "%s", spotdb_errmsg(db));
    ck_assert_int_eq(s.adopted, 1);
    /* adopted as version 1, then the later migrations applied */
    ck_assert_int_eq(s.applied, N_BUILTIN - 1);
    ck_assert_int_eq(tracked_rows(), N_BUILTIN);
    ck_assert_int_eq(th_count(raw, "SELECT execution_ms FROM spotdb_schema_migrations "
                                   "WHERE version = 1"), 0);
    after = th_scalar(raw, row_digest_sql);
    ck_assert_str_eq(before, after);
    /* 0001 did not run: the hand-built admin hash is still there */
    ck_assert_int_eq(th_count(raw, "SELECT count(*) FROM users WHERE username = 'admin' "
                                   "AND hashed_password LIKE '$2b$12$notarealhash%'"), 1);
    ck_assert_int_eq(th_count(raw, "SELECT count(*) FROM pg_namespace "
                                   "WHERE nspname = 'spotdb_catalog_probe'"), 0);
    /* and from now on it is an ordinary versioned database: the second
     * run has nothing to do */
    ck_assert_int_eq(spotdb_migrate(db, &o), 0);
    ck_assert_int_eq(s.calls, N_BUILTIN);
    free(before);
    free(after);
}
END_TEST

/* docs/migrations.md's hand-over from Alembic: its version table is not
 * part of v1, so it neither blocks adoption nor is touched by it. */
START_TEST(alembic_managed_database_is_adopted)
{
    build_by_hand();
    add_rows();
    th_exec(raw, "CREATE TABLE alembic_version (version_num varchar(32) NOT "
                 "NULL, CONSTRAINT alembic_version_pkc PRIMARY KEY "
                 "(version_num)); INSERT INTO alembic_version VALUES "
                 "('3f2a1b9c0d4e')");
    ck_assert_msg(spotdb_migrate(db, NULL) == 0, "%s", spotdb_errmsg(db));
    ck_assert_int_eq(tracked_rows(), N_BUILTIN);
    ck_assert_int_eq(th_count(raw, "SELECT execution_ms FROM spotdb_schema_migrations "
                                   "WHERE version = 1"), 0);
    ck_assert_int_eq(th_count(raw, "SELECT count(*) FROM alembic_version "
                                   "WHERE version_num = '3f2a1b9c0d4e'"), 1);
}
END_TEST

START_TEST(adoption_dry_run_changes_nothing)
{
    spotdb_migrate_options o = SPOTDB_MIGRATE_OPTIONS_INIT;
    seen s = { 0 };

    build_by_hand();
    o.dry_run = 1;
    o.callback = record_cb;
    o.payload = &s;
    ck_assert_int_eq(spotdb_migrate(db, &o), 0);
    ck_assert_int_eq(s.adopted, 1);
    ck_assert_int_eq(s.dry, N_BUILTIN - 1);
    ck_assert(!relation_exists("spotdb_schema_migrations"));
}
END_TEST

START_TEST(partial_database_is_refused_with_differences)
{
    spotdb_status *st = NULL;

    build_by_hand();
    add_rows();
    th_exec(raw, "DROP INDEX idx_users_role");
    th_exec(raw, "ALTER TABLE users DROP COLUMN last_login");
    th_exec(raw, "ALTER TABLE accounts ADD COLUMN nickname text");
    ck_assert_int_eq(spotdb_migrate(db, NULL), SPOTDB_EADOPT);
    assert_msg_has("3 differences");
    assert_msg_has("idx_users_role");
    assert_msg_has("last_login");
    assert_msg_has("unexpected: column accounts: #012 nickname text");
    ck_assert(!relation_exists("spotdb_schema_migrations"));
    ck_assert_int_eq(th_count(raw, "SELECT count(*) FROM experiment_logs"), 50);
    ck_assert_int_eq(spotdb_status_get(&st, db), 0);
    ck_assert_int_eq(st->unversioned_schema, 2);
    spotdb_status_free(st);
}
END_TEST

START_TEST(single_table_is_refused)
{
    th_exec(raw, "CREATE TABLE users (id uuid PRIMARY KEY, email text)");
    ck_assert_int_eq(spotdb_migrate(db, NULL), SPOTDB_EADOPT);
    assert_msg_has("missing: relation accounts: table");
    assert_msg_has("missing: function update_updated_at_column");
    assert_msg_has("unexpected: column users: #002 email text");
    ck_assert(!relation_exists("accounts"));
    ck_assert(!relation_exists("spotdb_schema_migrations"));
}
END_TEST

START_TEST(unrelated_tables_do_not_count)
{
    th_exec(raw, "CREATE TABLE inventory (sku text PRIMARY KEY); "
                 "INSERT INTO inventory VALUES ('a')");
    ck_assert_msg(spotdb_migrate(db, NULL) == 0, "%s", spotdb_errmsg(db));
    ck_assert_int_eq(tracked_rows(), N_BUILTIN);
    ck_assert_int_eq(th_count(raw, "SELECT count(*) FROM inventory"), 1);
}
END_TEST

/* ---- thirty migrators, and a migrator killed at version 2 ------------ */

/* Catalog objects of the public schema and the rows migrations seed: two
 * databases migrated the same way have the same fingerprint. */
static char *fingerprint(PGconn *c)
{
    return th_scalar(c,
        "SELECT (SELECT count(*) FROM users) || ' users, ' ||"
        " (SELECT count(*) FROM spotdb_schema_migrations) || ' tracked, ' ||"
        " (SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal) ||"
        " ' triggers, ' || count(*) || ' objects ' ||"
        " md5(string_agg(o, ',' ORDER BY o)) FROM ("
        "  SELECT c.relkind::text || ':' || c.relname AS o FROM pg_class c"
        "  JOIN pg_namespace n ON n.oid = c.relnamespace"
        "  WHERE n.nspname = 'public'"
        "  UNION ALL SELECT 'f:' || p.proname FROM pg_proc p"
        "  JOIN pg_namespace n ON n.oid = p.pronamespace"
        "  WHERE n.nspname = 'public'"
        "  UNION ALL SELECT 'c:' || conname FROM pg_constraint"
        "  WHERE connamespace = 'public'::regnamespace) s");
}

/* The fingerprint of a database one migrator brought to the newest
 * version, next to the test's own. */
static char *reference_fingerprint(void)
{
    char name[96], sql[160], *ci, *fp;
    PGconn *admin = th_connect(th_admin_url()), *c;
    spotdb_db *h = NULL;

    snprintf(name, sizeof name, "%s_ref", th_db_name());
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s", name);
    th_exec(admin, sql);
    snprintf(sql, sizeof sql, "CREATE DATABASE %s TEMPLATE template0", name);
    th_exec(admin, sql);
    ci = th_conninfo_with_db(th_admin_url(), name);
    ck_assert_int_eq(th_open_unchecked(&h, ci), 0);
    ck_assert_msg(spotdb_migrate(h, NULL) == 0, "%s", spotdb_errmsg(h));
    spotdb_close(h);
    c = th_connect(ci);
    fp = fingerprint(c);
    PQfinish(c);
    snprintf(sql, sizeof sql, "DROP DATABASE %s WITH (FORCE)", name);
    th_exec(admin, sql);
    PQfinish(admin);
    free(ci);
    return fp;
}

/* Each version recorded once. */
static void each_version_tracked_once(int versions)
{
    ck_assert_int_eq(th_count(raw, "SELECT count(*) FROM (SELECT version "
                                   "FROM spotdb_schema_migrations GROUP BY "
                                   "version HAVING count(*) <> 1) d"), 0);
    ck_assert_int_eq(tracked_rows(), versions);
    ck_assert_int_eq(th_count(raw, "SELECT count(DISTINCT version) FROM "
                                   "spotdb_schema_migrations"), versions);
}

/* Applied-callbacks per version, summed over every thread. */
static pthread_mutex_t applied_lock = PTHREAD_MUTEX_INITIALIZER;
static int applied_by_version[16];

static void count_applied(const spotdb_migration_info *m, const char *sql,
                          void *payload)
{
    (void)payload;
    ck_assert_ptr_null(sql);
    pthread_mutex_lock(&applied_lock);
    if (m->version >= 0 && m->version < 16)
        applied_by_version[m->version]++;
    pthread_mutex_unlock(&applied_lock);
}

typedef struct migrator {
    char *conninfo;
    const spotdb__migration_set *set;   /* NULL: the embedded one */
    int rc;
    char msg[512];
} migrator;

static void *migrator_thread(void *arg)
{
    migrator *w = arg;
    spotdb_migrate_options o = SPOTDB_MIGRATE_OPTIONS_INIT;
    spotdb_db *h = NULL;

    o.callback = count_applied;
    o.lock_timeout_ms = -1;
    w->rc = th_open_unchecked(&h, w->conninfo);
    if (w->rc == 0)
        w->rc = w->set ? spotdb__migrate_set(h, w->set, &o)
                       : spotdb_migrate(h, &o);
    snprintf(w->msg, sizeof w->msg, "%s",
             h ? spotdb_errmsg(h) : spotdb_last_errmsg());
    spotdb_close(h);
    return NULL;
}

/* 30 threads, each with its own handle, start at once. */
static void run_thirty(const spotdb__migration_set *set)
{
    enum { N = 30 };
    pthread_t t[N];
    migrator w[N];

    memset(applied_by_version, 0, sizeof applied_by_version);
    for (int i = 0; i < N; i++) {
        w[i] = (migrator){ conninfo(), set, -1, "" };
        ck_assert_int_eq(pthread_create(&t[i], NULL, migrator_thread, &w[i]),
                         0);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        ck_assert_msg(w[i].rc == 0, "migrator %d: %d %s", i, w[i].rc,
                      w[i].msg);
        free(w[i].conninfo);
    }
}

START_TEST(thirty_threads_apply_each_version_once)
{
    char *want = reference_fingerprint(), *got;

    run_thirty(NULL);
    for (int v = 1; v <= N_BUILTIN; v++)
        ck_assert_msg(applied_by_version[v] == 1, "version %d applied %d "
                      "times", v, applied_by_version[v]);
    each_version_tracked_once(N_BUILTIN);
    /* the seed row and every object exist once, as after one migrator */
    ck_assert_int_eq(th_count(raw, "SELECT count(*) FROM users WHERE "
                                   "username = 'admin'"), 1);
    got = fingerprint(raw);
    ck_assert_str_eq(got, want);
    fprintf(stderr, "30 threads: each of %d versions applied once; %s\n",
            N_BUILTIN, got);
    free(got);
    free(want);
    ck_assert_int_eq(th_count(raw, "SELECT count(*) FROM pg_locks WHERE "
                                   "locktype = 'advisory' AND " THIS_DB), 0);
}
END_TEST

/* Migrations that would show a second run: rows without a key. */
static const char counting_1[] =
    "CREATE TABLE applied_once (version int NOT NULL);\n"
    "INSERT INTO applied_once VALUES (1);\nSELECT pg_sleep(0.02);\n";
static const char counting_2[] =
    "INSERT INTO applied_once VALUES (2);\nSELECT pg_sleep(0.02);\n";
static const char counting_3[] = "INSERT INTO applied_once VALUES (3);\n";
#define NO_SUM "00000000000000000000000000000000" \
               "00000000000000000000000000000000"
static const spotdb__migration counting_items[] = {
    { 1, "one", "0001_one.sql", NO_SUM, counting_1, sizeof counting_1 - 1,
      false },
    { 2, "two", "0002_two.sql", NO_SUM, counting_2, sizeof counting_2 - 1,
      false },
    { 3, "three", "0003_three.sql", NO_SUM, counting_3,
      sizeof counting_3 - 1, false },
};
static const spotdb__migration_set counting_set = { counting_items, 3, 0 };

START_TEST(thirty_threads_never_run_a_migration_twice)
{
    run_thirty(&counting_set);
    for (int v = 1; v <= 3; v++)
        ck_assert_int_eq(applied_by_version[v], 1);
    each_version_tracked_once(3);
    ck_assert_int_eq(th_count(raw, "SELECT count(*) FROM applied_once"), 3);
    ck_assert_int_eq(th_count(raw, "SELECT count(DISTINCT version) FROM "
                                   "applied_once"), 3);
}
END_TEST

/* Version 2 sleeps only for the migrator named "killed", so the next run
 * of the very same set goes through. */
static const char two_step_1[] =
    "CREATE TABLE step_one (id int PRIMARY KEY);\n"
    "INSERT INTO step_one VALUES (1);\n";
static const char two_step_2[] =
    "CREATE TABLE step_two (id int);\n"
    "INSERT INTO step_one VALUES (2);\n"
    "SELECT pg_sleep(CASE current_setting('application_name')"
    " WHEN 'killed' THEN 60 ELSE 0 END);\n";
static const spotdb__migration two_step_items[] = {
    { 1, "one", "0001_one.sql", NO_SUM, two_step_1, sizeof two_step_1 - 1,
      false },
    { 2, "two", "0002_two.sql", NO_SUM, two_step_2, sizeof two_step_2 - 1,
      false },
};
static const spotdb__migration_set two_step_set = { two_step_items, 2, 0 };

START_TEST(killed_migrator_leaves_the_previous_version)
{
    spotdb_migrate_options to1 = SPOTDB_MIGRATE_OPTIONS_INIT;
    spotdb_status *st = NULL;
    struct timespec t0;
    pid_t pid;

    to1.target_version = 1;
    ck_assert_msg(spotdb__migrate_set(db, &two_step_set, &to1) == 0, "%s",
                  spotdb_errmsg(db));
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        spotdb_db *h = NULL;
        char *ci = conninfo(), *named = malloc(strlen(ci) + 32);

        sprintf(named, "%s application_name=killed", ci);
        if (th_open_unchecked(&h, named) == 0)
            spotdb__migrate_set(h, &two_step_set, NULL);
        _exit(0);
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (th_count(raw, "SELECT count(*) FROM pg_stat_activity WHERE "
                         "application_name = 'killed' AND query LIKE "
                         "'SELECT pg_sleep(%'") == 0) {
        ck_assert_msg(elapsed_ms(&t0) < 10000, "the migrator never started");
        th_sleep_s(0.01);
    }
    ck_assert_int_eq(advisory_locks(), 1);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (advisory_locks() > 0) {
        ck_assert_msg(elapsed_ms(&t0) < 5000, "lock still held after 5 s");
        th_sleep_s(0.01);
    }
    /* version 1 as it was, nothing of version 2 */
    each_version_tracked_once(1);
    ck_assert_int_eq(th_count(raw, "SELECT max(version) FROM "
                                   "spotdb_schema_migrations"), 1);
    ck_assert(relation_exists("step_one"));
    ck_assert(!relation_exists("step_two"));
    ck_assert_int_eq(th_count(raw, "SELECT count(*) FROM step_one"), 1);
    ck_assert_int_eq(spotdb__status_set(&st, db, &two_step_set), 0);
    ck_assert_int_eq(st->current_version, 1);
    ck_assert_uint_eq(st->pending_count, 1);
    spotdb_status_free(st);
    ck_assert_int_eq(th_count(raw, "SELECT count(*) FROM pg_stat_activity "
                                   "WHERE application_name = 'killed'"), 0);
    /* the next run applies version 2, once */
    ck_assert_msg(spotdb__migrate_set(db, &two_step_set, NULL) == 0, "%s",
                  spotdb_errmsg(db));
    each_version_tracked_once(2);
    ck_assert(relation_exists("step_two"));
    ck_assert_int_eq(th_count(raw, "SELECT count(*) FROM step_one"), 2);
    ck_assert_int_eq(advisory_locks(), 0);
}
END_TEST

static Suite *migrate_suite(void)
{
    Suite *s = suite_create("migrate");
    TCase *tc = tcase_create("pg");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, fresh_database_reaches_latest);
    tcase_add_test(tc, rerun_is_a_no_op);
    tcase_add_test(tc, status_of_empty_database);
    tcase_add_test(tc, status_for_a_role_that_cannot_probe);
    tcase_add_test(tc, failing_migration_rolls_back);
    tcase_add_test(tc, syntax_error_names_line_and_column);
    tcase_add_test(tc, unterminated_quote_is_refused_before_running);
    tcase_add_test(tc, checksum_drift_is_refused);
    tcase_add_test(tc, newer_database_is_refused);
    tcase_add_test(tc, out_of_order_history_is_refused);
    tcase_add_test(tc, targets_and_status);
    tcase_add_test(tc, dry_run_changes_nothing);
    tcase_add_test(tc, bad_options_are_refused);
    tcase_add_test(tc, embedded_list);
    tcase_add_test(tc, compatible_mark_is_embedded);
    tcase_add_test(tc, handshake_behind_equal_ahead);
    tcase_add_test(tc, lock_timeout_gives_elocked);
    tcase_add_test(tc, eight_threads_migrate_once);
    tcase_add_test(tc, killed_migrator_releases_the_lock);
    tcase_add_test(tc, hand_built_database_is_adopted);
    tcase_add_test(tc, alembic_managed_database_is_adopted);
    tcase_add_test(tc, adoption_dry_run_changes_nothing);
    tcase_add_test(tc, partial_database_is_refused_with_differences);
    tcase_add_test(tc, single_table_is_refused);
    tcase_add_test(tc, unrelated_tables_do_not_count);
    tcase_add_test(tc, thirty_threads_apply_each_version_once);
    tcase_add_test(tc, thirty_threads_never_run_a_migration_twice);
    tcase_add_test(tc, killed_migrator_leaves_the_previous_version);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return th_run(migrate_suite());
}
