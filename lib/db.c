/*
 * The connection handle: open, session set-up, close, and the small
 * helpers every module uses to run a statement and record its failure.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "internal.h"

/* Every option struct starts with its unsigned version, and zero is the
 * default of every other member. */
int spotdb__options_init(void *opts, size_t size, unsigned int version,
                         unsigned int expected, const char *fn)
{
    spotdb__clear_last_error();
    if (!opts || version != expected)
        return spotdb__fail(NULL, SPOTDB_EINVAL,
                            "%s: opts must not be NULL and version must be %u",
                            fn, expected);
    memset(opts, 0, size);
    memcpy(opts, &version, sizeof version);
    return 0;
}

/* A caller built against version 1 has the shorter struct: only its
 * members may be written. */
int spotdb_open_options_init(spotdb_open_options *opts, unsigned int version)
{
    static const size_t sizes[] = {
        0, offsetof(spotdb_open_options, schema_check),
        offsetof(spotdb_open_options, statements),
        offsetof(spotdb_open_options, pooler),
        offsetof(spotdb_open_options, call_timeout_ms), sizeof *opts,
    };

    if (version >= 1 && version <= SPOTDB_OPEN_OPTIONS_VERSION)
        return spotdb__options_init(opts, sizes[version], version, version,
                                    "spotdb_open_options_init");
    return spotdb__options_init(opts, sizeof *opts, version,
                                SPOTDB_OPEN_OPTIONS_VERSION,
                                "spotdb_open_options_init");
}

static char *dup_or_null(const char *s, bool *oom)
{
    char *d;

    if (!s)
        return NULL;
    d = spotdb__strdup(s);
    if (!d)
        *oom = true;
    return d;
}

/* libpq's connection errors span lines (one per host tried); one line
 * reads better in a log. */
static void one_line(char *s)
{
    size_t n = strlen(s);

    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' '))
        s[--n] = '\0';
    for (char *p = s; *p; p++)
        if (*p == '\n' || *p == '\t')
            *p = ' ';
}

/* Recorded on the handle, which redacts with the password and settings it
 * knows; spotdb_open hands the message on to the thread-local slot. */
int spotdb__connect_failed(spotdb_db *db)
{
    char reason[SPOTDB__ERRMSG_MAX];
    const char *host = PQhost(db->conn), *port = PQport(db->conn);

    snprintf(reason, sizeof reason, "%s", PQerrorMessage(db->conn));
    one_line(reason);
    return spotdb__fail(db, SPOTDB_ECONN,
                        "cannot connect to PostgreSQL at host \"%s\" port %s "
                        "(settings from %s): %s",
                        host && *host ? host : "(default)",
                        port && *port ? port : "(default)",
                        spotdb__conn_source_name(db->source), reason);
}

/* The server's notices (CREATE ... IF NOT EXISTS skipping, RAISE NOTICE
 * in migrations) are not errors, and a library must not write to the
 * application's stderr.  One matters: libpq hands a FATAL that arrives
 * while no statement runs (a terminated backend, a server shutting down)
 * to the notice receiver; found while a call probes its connection, it
 * means the connection is gone even before its EOF arrives. */
static void on_notice(void *arg, const PGresult *res)
{
    spotdb_db *db = arg;
    const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);

    if (db->probing && sev &&
        (strcmp(sev, "FATAL") == 0 || strcmp(sev, "PANIC") == 0))
        db->doomed = true;
}

static bool is_utc(const char *tz)
{
    return tz && (strcmp(tz, "UTC") == 0 || strcmp(tz, "Etc/UTC") == 0);
}

/* Pin the session to UTC.  Done with SET only when the server's default
 * differs, rather than with a startup "options" packet, because poolers
 * such as PgBouncer refuse that packet but track TimeZone themselves. */
int spotdb__setup_session(spotdb_db *db)
{
    int rc;

    PQsetNoticeReceiver(db->conn, on_notice, db);
    if (is_utc(PQparameterStatus(db->conn, "TimeZone")))
        return 0;
    rc = spotdb__command(db, "SET TimeZone TO 'UTC'", "setting TimeZone");
    if (rc != 0)
        return rc;
    if (!is_utc(PQparameterStatus(db->conn, "TimeZone")))
        return spotdb__fail(db, SPOTDB_ECONN,
                            "the server did not accept TimeZone UTC");
    return 0;
}

/* The options, defaults filled in, every value checked. */
typedef struct open_settings {
    int check, statements, pooler, replica_reads;
    int32_t call_timeout_ms;
} open_settings;

static int read_options(open_settings *o, const spotdb_open_options *opts)
{
    memset(o, 0, sizeof *o);
    if (!opts)
        return 0;
    /* Any version up to ours is one this library knows how to read. */
    if (opts->version == 0 || opts->version > SPOTDB_OPEN_OPTIONS_VERSION)
        return spotdb__fail(NULL, SPOTDB_EINVAL,
                            "spotdb_open: opts->version is %u, expected 1 to %d",
                            opts->version, SPOTDB_OPEN_OPTIONS_VERSION);
    if (opts->connect_timeout_s < 0)
        return spotdb__fail(NULL, SPOTDB_EINVAL,
                            "spotdb_open: opts->connect_timeout_s must be >= 0");
    if (opts->version >= 2)
        o->check = opts->schema_check;
    if (opts->version >= 3)
        o->statements = opts->statements;
    if (opts->version >= 4) {
        o->pooler = opts->pooler;
        o->replica_reads = opts->replica_reads;
    }
    if (opts->version >= 5)
        o->call_timeout_ms = opts->call_timeout_ms;
    if (o->call_timeout_ms < 0)
        return spotdb__fail(NULL, SPOTDB_EINVAL,
                            "spotdb_open: opts->call_timeout_ms must be >= 0");
    if (o->statements != SPOTDB_STATEMENTS_PREPARED &&
        o->statements != SPOTDB_STATEMENTS_UNNAMED)
        return spotdb__fail(NULL, SPOTDB_EINVAL,
                            "spotdb_open: opts->statements must be "
                            "SPOTDB_STATEMENTS_PREPARED or _UNNAMED");
    if (o->check != SPOTDB_SCHEMA_CHECK_REQUIRE &&
        o->check != SPOTDB_SCHEMA_CHECK_SKIP)
        return spotdb__fail(NULL, SPOTDB_EINVAL,
                            "spotdb_open: opts->schema_check must be "
                            "SPOTDB_SCHEMA_CHECK_REQUIRE or _SKIP");
    if (o->pooler < SPOTDB_POOLER_AUTO || o->pooler > SPOTDB_POOLER_TRANSACTION)
        return spotdb__fail(NULL, SPOTDB_EINVAL,
                            "spotdb_open: opts->pooler must be "
                            "SPOTDB_POOLER_AUTO, _NONE or _TRANSACTION");
    if (o->replica_reads != SPOTDB_REPLICA_READS_OFF &&
        o->replica_reads != SPOTDB_REPLICA_READS_ON)
        return spotdb__fail(NULL, SPOTDB_EINVAL,
                            "spotdb_open: opts->replica_reads must be "
                            "SPOTDB_REPLICA_READS_OFF or _ON");
    return 0;
}

/* PgBouncer and its kind answer the startup with a backend key of their
 * own, since they route cancel requests themselves: the pid the client
 * was given is not the pid of the server process running its queries. */
static int detect_pooler(spotdb_db *db, int pooler)
{
    PGresult *res;

    if (pooler != SPOTDB_POOLER_AUTO) {
        db->pooled = pooler == SPOTDB_POOLER_TRANSACTION;
        return 0;
    }
    res = spotdb__exec(db, "SELECT pg_backend_pid()", "detecting a pooler");
    if (!res)
        return db->errcode;
    db->pooled = PQntuples(res) == 1 &&
                 strtol(PQgetvalue(res, 0, 0), NULL, 10) != PQbackendPID(db->conn);
    PQclear(res);
    return 0;
}

/* The handle with the settings it keeps: the password and raw string for
 * redaction, and for replica reads a copy to open the read connection
 * from.  The main connection then insists on a primary. */
static spotdb_db *new_handle(spotdb__conninfo *ci, const open_settings *o)
{
    spotdb_db *db = spotdb__calloc(1, sizeof *db);
    bool oom = !db;

    if (!db)
        return NULL;
    pthread_mutex_init(&db->cancel_lock, NULL);
    atomic_init(&db->cancel_requested, false);
    db->call_timeout_ms = o->call_timeout_ms;
    db->source = ci->source;
    db->unnamed = o->statements == SPOTDB_STATEMENTS_UNNAMED ||
                  o->pooler == SPOTDB_POOLER_TRANSACTION;
    db->password = dup_or_null(ci->password, &oom);
    db->raw = dup_or_null(ci->raw, &oom);
    if (o->replica_reads == SPOTDB_REPLICA_READS_ON) {
        db->read_settings = spotdb__settings_copy(ci->keywords, ci->values,
                                                  "prefer-standby");
        oom = oom || !db->read_settings;
        spotdb__conninfo_set(ci, "target_session_attrs", "read-write");
        db->route_reads = true;
    }
    if (oom) {
        spotdb_close(db);
        return NULL;
    }
    return db;
}

int spotdb_open(spotdb_db **out, const char *conninfo,
                const spotdb_open_options *opts)
{
    spotdb__conninfo ci;
    open_settings o;
    spotdb_db *db;
    int rc;

    spotdb__clear_last_error();
    if (!out)
        return spotdb__fail(NULL, SPOTDB_EINVAL,
                            "spotdb_open: out must not be NULL");
    *out = NULL;
    if ((rc = read_options(&o, opts)) != 0 ||
        (rc = spotdb__conninfo_resolve(&ci, conninfo, opts)) != 0)
        return rc;
    if (!(db = new_handle(&ci, &o))) {
        spotdb__conninfo_free(&ci);
        return spotdb__fail(NULL, SPOTDB_ENOMEM, "out of memory");
    }
    db->conn = PQconnectdbParams(ci.keywords, ci.values, 0);
    spotdb__conninfo_free(&ci);
    if (!db->conn)
        rc = spotdb__fail(db, SPOTDB_ENOMEM, "out of memory");
    else if (PQstatus(db->conn) != CONNECTION_OK)
        rc = spotdb__connect_failed(db);
    else if ((rc = spotdb__setup_session(db)) == 0)
        rc = detect_pooler(db, o.pooler);
    /* Nothing was prepared yet: all that ran was simple queries. */
    db->unnamed = db->unnamed || db->pooled;
    if (rc == 0)
        spotdb__cancel_refresh(db);
    if (rc == 0 && o.check == SPOTDB_SCHEMA_CHECK_REQUIRE)
        rc = spotdb__schema_handshake(db, &spotdb__builtin_migrations);
    if (rc != 0) {
        spotdb__fail(NULL, rc, "%s", db->errmsg);   /* no handle survives */
        spotdb_close(db);
        return rc;
    }
    *out = db;
    return 0;
}

void spotdb__wipe_free(char *s)
{
    if (!s)
        return;
    /* volatile keeps the compiler from dropping the wipe of memory that
     * is freed right after. */
    for (volatile char *p = s; *p; p++)
        *p = '\0';
    free(s);
}

void spotdb_close(spotdb_db *db)
{
    if (!db)
        return;
    spotdb__replica_close(db);
    if (db->conn)
        PQfinish(db->conn);
    PQfreeCancel(db->cancel);
    pthread_mutex_destroy(&db->cancel_lock);
    spotdb__statements_forget(db);
    spotdb__wipe_free(db->password);
    spotdb__wipe_free(db->raw);
    free(db);
}

int spotdb_pooled(const spotdb_db *db)
{
    return db && db->pooled;
}

int spotdb_conn_source_of(const spotdb_db *db)
{
    return db ? db->source : 0;
}

const char *spotdb_errmsg(const spotdb_db *db)
{
    return db ? db->errmsg : spotdb_last_errmsg();
}

const char *spotdb_sqlstate(const spotdb_db *db)
{
    return db ? db->sqlstate : "";
}

PGresult *spotdb__check_result(spotdb_db *db, PGresult *res,
                               const char *what)
{
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;

    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
        return res;
    if (res)
        spotdb__fail_result(db, res, "%s", what);
    else
        spotdb__fail_none(db, what);
    PQclear(res);
    return NULL;
}

int spotdb__fail_none(spotdb_db *db, const char *what)
{
    if (db->errcode)
        return db->errcode;     /* said already (a reconnect that failed) */
    if (db->timed_out || db->broken)
        return spotdb__fail(db, spotdb__code_of(db, NULL), "%s: no answer "
                            "within the call's deadline of %d ms, nor to its "
                            "cancel: the connection was abandoned", what,
                            (int)db->call_timeout_ms);
    if (PQstatus(db->conn) == CONNECTION_OK && db->sent)
        return spotdb__fail(db, SPOTDB_ENOMEM, "%s: out of memory", what);
    return spotdb__fail_result(db, NULL, "%s", what);
}

PGresult *spotdb__exec(spotdb_db *db, const char *sql, const char *what)
{
    return spotdb__check_result(db, spotdb__pq_exec(db, sql, what), what);
}

PGresult *spotdb__exec_params(spotdb_db *db, const char *sql, int nparams,
                              const char *const *params, const char *what)
{
    int64_t start = spotdb__trace_start(db);
    PGresult *res = spotdb__run_text(db, sql, nparams, params);

    spotdb__trace(db, start, what, sql, NULL, res);
    return spotdb__check_result(db, res, what);
}

int spotdb__command(spotdb_db *db, const char *sql, const char *what)
{
    PGresult *res = spotdb__exec(db, sql, what);

    if (!res)
        return db->errcode;
    PQclear(res);
    return 0;
}
