/*
 * Test harness shared by the Check suites that talk to PostgreSQL.
 *
 * The server is the private one that tools/run starts (or the one
 * DATABASE_URL names): SPOTDB_TEST_DATABASE_URL, else DATABASE_URL, is an
 * administrative connection that may CREATE DATABASE.  Each test case gets
 * a fresh database of its own, dropped at the end.  Without a server the
 * suites fail loudly: a database test never skips silently.
 */
#ifndef SPOTDB_TEST_HARNESS_H
#define SPOTDB_TEST_HARNESS_H

#include <check.h>
#include <libpq-fe.h>
#include <stdbool.h>

/* The administrative URL; aborts the test when none is configured. */
const char *th_admin_url(void);

/* Create an empty database; returns its conninfo (static storage, valid
 * until the next th_db_create) and records its name for th_db_drop. */
const char *th_db_create(void);
/* Drop the database th_db_create made (FORCE: closes its sessions). */
void th_db_drop(void);
/* Name of the current test database. */
const char *th_db_name(void);
/* A conninfo like `base` with dbname replaced (malloc'd). */
char *th_conninfo_with_db(const char *base, const char *dbname);

/* A raw libpq connection for checking outcomes independently of the
 * library; fails the test when it cannot connect. */
PGconn *th_connect(const char *conninfo);
/* Run SQL that must succeed (fails the test otherwise). */
void th_exec(PGconn *c, const char *sql);
/* First column of the first row as a malloc'd string, NULL for SQL NULL
 * or no row. */
char *th_scalar(PGconn *c, const char *sql);
/* First column of the first row as a number (-1 for NULL or no row). */
long th_count(PGconn *c, const char *sql);
/* Formatted versions: the first column of the first row (malloc'd, NULL
 * for SQL NULL or no row), as a number (-1 for NULL), and an assertion
 * that it equals `expected` (NULL: SQL NULL). */
char *th_qf(PGconn *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
long th_qn(PGconn *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void th_qeq(PGconn *c, const char *expected, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Run every statement of a SQL file, ignoring failures, as psql does by
 * default; returns the number of statements that failed. */
int th_exec_file_like_psql(PGconn *c, const char *path);
/* Read a whole file (malloc'd, NUL-terminated). */
char *th_read_file(const char *path);

/* Path of a file under tests/ in the source tree. */
const char *th_source_path(const char *relative);

/* Fixture pair for tcase_add_checked_fixture: one database per test. */
void th_setup_db(void);
void th_teardown_db(void);

/* Conninfo of the current test database (valid until th_db_drop). */
const char *th_db_conninfo(void);
/* The same as login role `role` (malloc'd). */
char *th_conninfo_as(const char *role);
/* Make login role `name` a member of `group`.  Roles are the cluster's,
 * shared by tests running in parallel in other databases: made once, a
 * concurrent creation is no error, never dropped. */
void th_login_role(const char *name, const char *group);

/* Open a handle without the schema handshake (migration tests, empty
 * databases); returns spotdb_open's code. */
struct spotdb_db;
int th_open_unchecked(struct spotdb_db **out, const char *conninfo);

/* Fixture pair: a fresh database migrated to the newest embedded version,
 * and bcrypt lowered to cost 4 so that tests creating users stay fast
 * (tests of the cost itself set spotdb__bcrypt_cost back to 12). */
void th_setup_migrated_db(void);
/* Open a checked handle on the current test database; fails the test on
 * error. */
struct spotdb_db *th_open(void);

/* Run tools/pg-scaleout (path in SPOTDB_SCALEOUT) with `args`, words
 * for the shell; its `export NAME='value'` lines go into this process's
 * environment.  Returns its exit status, -1 when it cannot run. */
int th_scaleout(const char *args);

/* Seconds on the monotonic clock, and a sleep of fractional seconds. */
double th_now_s(void);
void th_sleep_s(double s);
/* 1 when the process runs under valgrind (its client request, so a copy
 * of the test binary run directly says 0): suites shrink their loads and
 * loosen timing bounds there. */
int th_under_valgrind(void);

/* Run the suites, print Check's summary, return the exit status. */
int th_run(Suite *s);

#endif
