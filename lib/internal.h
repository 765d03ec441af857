/*
 * Private declarations shared by the files of lib/.  Nothing here is part
 * of the ABI; internal functions shared across files are named spotdb__*.
 */
#ifndef SPOTDB_INTERNAL_H
#define SPOTDB_INTERNAL_H

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <libpq-fe.h>

#include "spotdb/spotdb.h"

#define SPOTDB__ERRMSG_MAX 2048

#if defined(__GNUC__)
#  define SPOTDB__PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#  define SPOTDB__PRINTF(f, a)
#endif

/* Connection settings kept for opening the read connection again: deep
 * copies, NULL-terminated, wiped at close (they may hold a password). */
typedef struct spotdb__settings {
    char **keywords;
    char **values;
} spotdb__settings;

/* What belongs to one server connection; the handle swaps its main one
 * with the read one for the duration of a routed read. */
typedef struct spotdb__link {
    PGconn *conn;
    struct spotdb__statement *statements;   /* statements.c's cache */
    size_t nstatements;
    PGcancel *cancel;               /* for spotdb_cancel(), under lock */
} spotdb__link;

struct spotdb_db {
    PGconn *conn;
    PGcancel *cancel;               /* conn's, read by spotdb_cancel() from
                                       other threads: under cancel_lock */
    pthread_mutex_t cancel_lock;
    atomic_bool cancel_requested;   /* spotdb_cancel() during this call */
    int source;                     /* spotdb_conn_source */
    char *password;                 /* known secret, for redaction only */
    char *raw;                      /* settings as given, for redaction */
    const char *secret;             /* a value of the current call that
                                       messages must mask (a hash) */
    bool unnamed;                   /* SPOTDB_STATEMENTS_UNNAMED */
    struct spotdb__statement *statements;   /* statements.c's cache */
    size_t nstatements;
    unsigned long statement_serial;         /* next statement's number */
    bool pooled;                    /* through a transaction-mode pooler */
    /* Replica reads (replica.c): the settings of the read connection, the
     * link not in use, whether routing is on, whether a routed read is
     * running (then conn is the read connection), when the read
     * connection last landed on a primary (monotonic us, 0 if on a
     * standby), and the rows a stream handed over in this call. */
    spotdb__settings *read_settings;
    spotdb__link other;
    bool route_reads;
    bool on_replica;
    int64_t read_on_primary_since;
    uint64_t rows_handed;
    /* The running call (io.c): its deadline (monotonic us, 0 for none),
     * whether it passed, whether the statement sent, if its answer is
     * lost, leaves the outcome unknown (a write outside a transaction, a
     * COMMIT), and whether it was sent at all. */
    int32_t call_timeout_ms;
    int64_t deadline_us;
    bool timed_out;
    bool unsure;
    bool sent;
    bool completed;                 /* a success result came for it */
    bool broken;                    /* abandoned: reconnect at the next call */
    bool probe_pending;             /* the call has not checked its
                                       connection yet */
    bool probing, doomed;           /* io.c's probe, and a FATAL it found */
    bool tx_open;                   /* between spotdb_begin and its end */
    /* The acting user (scope.c): a UUID, "" for none.  What migration
     * 0003's row-level security makes of the connection's role, once
     * known (spotdb__rls_check): whether the role bypasses it, whether
     * the policies' functions exist, whether the tables have it on. */
    char scope[SPOTDB_UUID_SIZE];
    bool rls_known, rls_bypassed, rls_policies, rls_on;
    unsigned long reconnects;
    /* The trace hook (trace.c). */
    spotdb_trace_fn trace_fn;
    void *trace_payload;
    char errmsg[SPOTDB__ERRMSG_MAX];
    char sqlstate[6];
    int errcode;                    /* code of the last failure, 0 if none */
};

/* ---- errors.c ---------------------------------------------------------- */

/* Start of every public call on a handle: forget the previous failure. */
void spotdb__clear_error(spotdb_db *db);
/* Record a failure on the handle (or thread-local when db is NULL) and
 * return `code`, so callers can write `return spotdb__fail(db, ...)`. */
int spotdb__fail(spotdb_db *db, int code, const char *fmt, ...)
    SPOTDB__PRINTF(3, 4);
/* Record a failed libpq result: the code comes from the SQLSTATE or the
 * connection status, the message is `context: server message`. */
int spotdb__fail_result(spotdb_db *db, const PGresult *res,
                        const char *fmt, ...) SPOTDB__PRINTF(3, 4);
/* Whether the connection is usable after a failure with this SQLSTATE
 * (NULL or "" for one libpq reported itself). */
bool spotdb__conn_ok(PGconn *conn, const char *sqlstate);
/* Map a SQLSTATE (may be NULL) and connection status to a spotdb code. */
int spotdb__code_for_sqlstate(const char *sqlstate, bool conn_ok);
/* Thread-local message slot used when there is no handle. */
void spotdb__clear_last_error(void);

/* ---- redact.c ---------------------------------------------------------- */

/* Copy `msg` into `out` (size `outsz`, always NUL-terminated) with every
 * password-looking part masked: values of password=..., the password of
 * URI user info, each of the `secrets` (NULL-terminated list, may be
 * NULL), PGPASSWORD, and whatever those rules find in `raw` (a connection
 * string that may not parse, or NULL), each raw and percent-decoded. */
void spotdb__redact(char *out, size_t outsz, const char *msg,
                    const char *raw, const char *const *secrets);

/* ---- trace.c ----------------------------------------------------------- */

/* Monotonic microseconds when the handle has a trace hook, else 0: the
 * start of a traced statement. */
int64_t spotdb__trace_start(const spotdb_db *db);
/* Report a statement to the hook, if any: `res` is its final result
 * (NULL when none came), `statement` the prepared name or NULL. */
void spotdb__trace(spotdb_db *db, int64_t start, const char *name,
                   const char *sql, const char *statement,
                   const PGresult *res);
/* PQexec with tracing: the raw result, unchecked. */
PGresult *spotdb__pq_exec(spotdb_db *db, const char *sql, const char *name);
/* Run a statement whose outcome does not matter (cleanup after a
 * failure: ROLLBACK, CLOSE), traced. */
void spotdb__quiet(spotdb_db *db, const char *sql, const char *name);
int64_t spotdb__monotonic_us(void);

/* ---- scope.c ----------------------------------------------------------- */

/* The statement naming the acting user for the current transaction; its
 * one parameter is the user's id, or "" for none. */
extern const char spotdb__scope_sql[];
/* Act as user `id` ("" for none) from now on, without the checks of
 * spotdb_set_scope(); inside a transaction the setting is sent at once. */
int spotdb__scope_switch(spotdb_db *db, const char *id);
/* Fill db->rls_* once per handle (`what` names the round trip in
 * messages and traces); 0 or a failure code. */
int spotdb__rls_check(spotdb_db *db, const char *what);

/* ---- io.c -------------------------------------------------------------- */

struct spotdb__params;              /* table.h */

/* Start of a public call on a handle: forget the last failure, set the
 * call's deadline (when `timed`); before its first statement the call
 * then reconnects a connection that broke since the last call.  Returns
 * 0 (a code, should it ever need to fail). */
int spotdb__enter(spotdb_db *db, bool timed);
/* Before the first statement of a call (so that a call refused by the
 * library's own checks never touches the network): reconnect a lost
 * connection, unless a transaction was open on it.  Anything that points
 * into the statement cache must be looked up after it, since a reconnect
 * empties the cache.  False with the failure recorded. */
bool spotdb__ready(spotdb_db *db);
/* Whether the handle's connection is still there, without a round trip:
 * a poll, and when the socket has something to read, reading it to see
 * whether it is the server ending the session (a FATAL, EOF). */
bool spotdb__alive(spotdb_db *db);
/* Send `sql` (simple protocol when p is NULL; prepared statement `name`
 * when not NULL; else unnamed with parameters) and collect its results
 * as PQexec does, within the call's deadline.  NULL when nothing came
 * (then the handle knows why: out of memory, a send that failed, an
 * abandoned connection); the caller checks the result.  On a scoped
 * handle outside a transaction the statement runs behind the acting
 * user's set_config (scope.c), in the same implicit transaction. */
PGresult *spotdb__run(spotdb_db *db, const char *sql, const char *name,
                      const struct spotdb__params *p);
/* The same with text parameters and text results. */
PGresult *spotdb__run_text(spotdb_db *db, const char *sql, int n,
                           const char *const *values);
/* PREPARE `name` as `sql`, the same way. */
PGresult *spotdb__prepare(spotdb_db *db, const char *name, const char *sql,
                          const struct spotdb__params *p);
/* Wait, within the deadline, until PQgetResult will not block; false when
 * the connection had to be abandoned (the handle is then broken). */
bool spotdb__await(spotdb_db *db);
/* Create or refresh the cancel object of the current connection. */
void spotdb__cancel_refresh(spotdb_db *db);
/* The code of a failed result (NULL: none came) on this handle: the
 * SQLSTATE's, refined by what the call knows (its deadline, a cancel,
 * an answer lost after a write was sent). */
int spotdb__code_of(spotdb_db *db, const PGresult *res);

/* ---- replica.c --------------------------------------------------------- */

/* Around a replica-safe read: route_begin switches the handle to the read
 * connection when routing applies (opening it if needed; staying on the
 * main one when it cannot), and returns whether it did.  After the read,
 * route_retry says whether to send it again (the read connection broke
 * before the read handed over anything; a new one is then in place), and
 * route_end switches back. */
bool spotdb__route_begin(spotdb_db *db);
bool spotdb__route_retry(spotdb_db *db, bool *routed, int rc);
void spotdb__route_end(spotdb_db *db);
/* Deep-copy resolved settings, with target_session_attrs set to
 * `attrs`; NULL when out of memory. */
spotdb__settings *spotdb__settings_copy(const char *const *keywords,
                                        const char *const *values,
                                        const char *attrs);
void spotdb__settings_free(spotdb__settings *s);
/* Note where the current read connection landed, after it was opened or
 * reopened: on a primary, it is replaced after a while. */
void spotdb__replica_landed(spotdb_db *db);
/* Close the read connection, if any (spotdb_close). */
void spotdb__replica_close(spotdb_db *db);

/* ---- conninfo.c -------------------------------------------------------- */

/* Resolved connection settings, ready for PQconnectdbParams. */
typedef struct spotdb__conninfo {
    int source;                     /* spotdb_conn_source */
    const char **keywords;          /* NULL-terminated */
    const char **values;
    size_t count;
    PQconninfoOption *parsed;       /* owns the parsed values, or NULL */
    const char *password;           /* into parsed or the environment */
    const char *raw;                /* the string parsed, or NULL */
    char timeout[16];
} spotdb__conninfo;

/* Resolve settings by the documented precedence.  On failure records a
 * redacted message in the thread-local slot and returns a spotdb code. */
int spotdb__conninfo_resolve(spotdb__conninfo *ci, const char *conninfo,
                             const spotdb_open_options *opts);
void spotdb__conninfo_free(spotdb__conninfo *ci);
/* Set `kw` to `val`, replacing a value the settings gave. */
void spotdb__conninfo_set(spotdb__conninfo *ci, const char *kw,
                          const char *val);
const char *spotdb__conn_source_name(int source);
/* Whether every entry of a comma-separated host or hostaddr list (NULL:
 * libpq's default) is local: a unix-socket path, localhost, 127.0.0.1 or
 * ::1.  The rule of the sslmode=verify-full default (db.h). */
bool spotdb__hosts_local(const char *list);

/* ---- db.c -------------------------------------------------------------- */

/* Check a result: NULL (after recording the error, with `what` as
 * context, and clearing it) unless the command or query succeeded. */
PGresult *spotdb__check_result(spotdb_db *db, PGresult *res,
                               const char *what);
/* Record the failure of a statement that gave no result at all (out of
 * memory, not sent, abandoned at its deadline); returns the code. */
int spotdb__fail_none(spotdb_db *db, const char *what);
/* Run a statement without parameters; on failure records the error with
 * `what` as context and returns NULL (the result is cleared). */
PGresult *spotdb__exec(spotdb_db *db, const char *sql, const char *what);
/* Same with text parameters. */
PGresult *spotdb__exec_params(spotdb_db *db, const char *sql, int nparams,
                              const char *const *params, const char *what);
/* Zero a secret string, then free it (NULL is a no-op). */
void spotdb__wipe_free(char *s);
/* Record why the handle's connection could not be opened (host, port,
 * where the settings came from, libpq's reason on one line): ECONN. */
int spotdb__connect_failed(spotdb_db *db);
/* Session set-up of a new connection (notices, TimeZone UTC). */
int spotdb__setup_session(spotdb_db *db);
/* Run a command whose result is not needed; returns 0 or a spotdb code. */
int spotdb__command(spotdb_db *db, const char *sql, const char *what);
/* Body of the public *_options_init functions. */
int spotdb__options_init(void *opts, size_t size, unsigned int version,
                         unsigned int expected, const char *fn);

/* ---- sqlsplit.c -------------------------------------------------------- */

typedef struct spotdb__stmt {
    size_t offset;                  /* byte offset of the first token */
    size_t length;                  /* bytes, without the ';' */
    unsigned line;                  /* 1-based line of the first token */
} spotdb__stmt;

/* Split a SQL script into statements at top-level semicolons, aware of
 * quotes, dollar quotes, E'' strings, and both comment styles.  Empty
 * statements (only blanks and comments) are dropped.  With stmts NULL it
 * only counts.  Returns the number of statements, or -1 when `max` is too
 * small or the script ends inside a quote or comment (then *err_offset is
 * where that began). */
long spotdb__sql_split(const char *sql, size_t len, spotdb__stmt *stmts,
                       size_t max, size_t *err_offset);
/* Line and column (both 1-based) of byte `offset` in `text`. */
void spotdb__line_col(const char *text, size_t offset, unsigned *line,
                      unsigned *col);

/* ---- migrations -------------------------------------------------------- */

typedef struct spotdb__migration {
    int64_t version;
    const char *name;               /* "initial" */
    const char *filename;           /* "0001_initial.sql" */
    const char *checksum;           /* SHA-256 hex of the file */
    const char *sql;                /* NUL-terminated file contents */
    size_t sql_len;
    /* The file's header says "-- spotdb: compatible": libraries that know
     * only older versions may still open a database that has it. */
    bool compatible;
} spotdb__migration;

typedef struct spotdb__migration_set {
    const spotdb__migration *items; /* ascending versions */
    size_t count;
    /* Version whose catalog an unversioned database may be adopted as; 0
     * disables adoption (test sets). */
    int64_t adoptable_version;
} spotdb__migration_set;

/* ---- script.c ---------------------------------------------------------- */

/* Run the statements of m one by one in the caller's transaction.  A
 * failure is recorded as "<prefix><file> failed at statement N (line L,
 * column C)<suffix>: <server message>", with the code the SQLSTATE maps
 * to (SPOTDB_ERROR for a file that cannot be split). */
int spotdb__run_script(spotdb_db *db, const spotdb__migration *m,
                       const char *prefix, const char *suffix);

/* The set embedded from sql/ (generated file). */
extern const spotdb__migration_set spotdb__builtin_migrations;

int spotdb__migrate_set(spotdb_db *db, const spotdb__migration_set *set,
                        const spotdb_migrate_options *opts);
int spotdb__status_set(spotdb_status **out, spotdb_db *db,
                       const spotdb__migration_set *set);

/* ---- handshake.c ------------------------------------------------------- */

/* The open-time check of the database's version against `set`: 0, or
 * SPOTDB_ESCHEMA saying what to do. */
int spotdb__schema_handshake(spotdb_db *db, const spotdb__migration_set *set);

/* ---- catalog.c --------------------------------------------------------- */

/* Outcome of comparing an unversioned database with a migration's
 * catalog. */
enum spotdb__catalog_match {
    SPOTDB__CATALOG_ABSENT = 0,     /* none of its objects exist */
    SPOTDB__CATALOG_EQUAL = 1,      /* all exist, exactly as built */
    SPOTDB__CATALOG_DIFFERENT = 2   /* some exist, or differ */
};

/* Inside an open transaction: build `m` in a scratch schema, compare with
 * the current schema, roll the scratch back.  *match gets the outcome and
 * on DIFFERENT the handle's error holds the list of differences.  Returns
 * 0 or a spotdb code. */
int spotdb__catalog_compare(spotdb_db *db, const spotdb__migration *m,
                            int *match);
/* The same with the catalog that the `n` migrations from `m` on build,
 * run in order (spotdb_doctor_run: the applied ones); the differences
 * are worded as drift, not as a refused adoption. */
int spotdb__catalog_compare_many(spotdb_db *db, const spotdb__migration *m,
                                 size_t n, int *match);

/* ---- statements.c ---------------------------------------------------- */

/* Drop the cache of prepared statements (the connection's are gone, or
 * the schema changed under them). */
void spotdb__statements_forget(spotdb_db *db);
/* The same, deallocating them on the server first (after a migration:
 * a statement whose result type changed would fail). */
void spotdb__statements_reset(spotdb_db *db);

/* ---- password.c -------------------------------------------------------- */

/* bcrypt cost of new hashes and the floor below which a login re-hashes.
 * 12 in the library; only tests lower it, to keep user creation fast. */
extern int spotdb__bcrypt_cost;

#endif /* SPOTDB_INTERNAL_H */
