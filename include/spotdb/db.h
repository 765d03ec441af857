/**
 * @file spotdb/db.h
 * @brief Opening and closing a connection handle.
 *
 * Where the connection settings come from, first match wins:
 * 1. the `conninfo` argument of spotdb_open(), when not NULL or empty: a
 *    libpq keyword/value string ("host=... dbname=...") or a URI
 *    ("postgresql://user@host:5432/db");
 * 2. the environment variable `DATABASE_URL`, when set and not empty;
 * 3. `POSTGRES_HOST`, `POSTGRES_PORT`, `POSTGRES_USER`,
 *    `POSTGRES_PASSWORD`, `POSTGRES_DB`, when at least one is set (the
 *    variables of the original deployment); settings none of them give
 *    fall through to step 4;
 * 4. libpq's own defaults: `PGHOST`, `PGPORT`, `PGUSER`, `PGPASSWORD`,
 *    `PGDATABASE`, ~/.pgpass, the service file, then built-in defaults.
 *
 * Whatever the source, every session is pinned to `TimeZone=UTC` (so that
 * the schema's `TIMESTAMP` columns mean UTC) and gets an
 * `application_name`: the one the settings name, else the one in the
 * options, else "libspotdb".  A `connect_timeout` the settings do not
 * give defaults to 10 seconds.  Over TCP, unless the settings say
 * otherwise, keepalives probe an idle connection after 5 seconds, every
 * second, 3 times (`keepalives_idle=5 keepalives_interval=1
 * keepalives_count=3`), and `tcp_user_timeout=8000` gives up on data the
 * peer has not acknowledged for 8 seconds: a dead server or network is
 * noticed within 10 seconds even in the middle of a call.
 *
 * TLS: an `sslmode` in the settings (or `PGSSLMODE`) is passed to libpq
 * as it is.  Without one, when a host is not local (anything but a
 * unix-socket path, `localhost`, `127.0.0.1` or `::1`; with several
 * hosts, when any is not), the library sets `sslmode=verify-full`: the
 * server must present a certificate for that host name, signed by the
 * CA in `sslrootcert` (default `~/.postgresql/root.crt`), or the
 * connection is refused with SPOTDB_ECONN naming the certificate
 * problem.  Settings that name a `service` are left to libpq.  Local
 * connections keep libpq's default (`prefer`).
 *
 * Lost connections: a call that finds the connection broken before it
 * sends anything opens it again (same settings) and goes on, so a server
 * restart or a killed backend between calls costs no failed call.  A
 * call whose connection breaks while it runs fails: SPOTDB_ECONN for a
 * read, or for a write inside a transaction (which the server then rolled
 * back: the following calls fail with SPOTDB_ECONN until spotdb_rollback()
 * ends it); SPOTDB_EUNKNOWN for a write outside a transaction, or a
 * COMMIT, that was sent and whose outcome was lost with the connection.
 * (A server that ends the session with an error before the statement
 * completed, as a terminated backend does, committed nothing: that is
 * SPOTDB_ECONN.)  The library never sends a statement twice on its own
 * (replica reads aside, see spotdb_replica_reads()).
 *
 * Schema handshake: unless the options say otherwise, spotdb_open() then
 * compares, once, the database's recorded migration version with the
 * newest migration embedded in the library: behind (or an unversioned
 * database) is SPOTDB_ESCHEMA with a message saying to run
 * `spotdb migrate`; equal goes on; ahead is accepted only when every newer
 * migration was recorded as compatible (the migration file's header says
 * `-- spotdb: compatible`), else SPOTDB_ESCHEMA.
 *
 * Thread safety: a spotdb_db is used by one thread at a time (spotdb_cancel()
 * is the one exception).  Different handles are independent and may be
 * used at the same time from different threads; rows they returned are
 * immutable and may be read from any thread.  There is no global
 * initialisation call.  To share connections between threads, use a pool
 * (spotdb/pool.h).
 *
 * fork(): a child process must neither use nor close a handle its parent
 * opened.  spotdb_close() would send libpq's Terminate message on the
 * socket the child shares with the parent, which ends the parent's
 * session.  The child leaves such handles alone (exec, _exit, or just
 * never touch them) and opens its own; the parent's keep working.
 */
#ifndef SPOTDB_DB_H
#define SPOTDB_DB_H

#include "common.h"

SPOTDB_BEGIN_DECLS

/** An open connection to a Spot Optimizer database.  Opaque. */
typedef struct spotdb_db spotdb_db;

/** Where spotdb_open() took its connection settings from. */
typedef enum spotdb_conn_source {
    SPOTDB_CONN_ARGUMENT = 1,     /**< the conninfo argument */
    SPOTDB_CONN_DATABASE_URL = 2, /**< the DATABASE_URL variable */
    SPOTDB_CONN_POSTGRES_ENV = 3, /**< the POSTGRES_* variables */
    SPOTDB_CONN_LIBPQ_DEFAULTS = 4 /**< libpq's PG* variables and defaults */
} spotdb_conn_source;

/** What spotdb_open() does about the database's schema version. */
typedef enum spotdb_schema_check {
    /** Refuse a database that is behind, or ahead by an incompatible
     *  migration (the default). */
    SPOTDB_SCHEMA_CHECK_REQUIRE = 0,
    /** Do not check: for migration tools, which open a handle on a
     *  database that is not migrated yet. */
    SPOTDB_SCHEMA_CHECK_SKIP = 1
} spotdb_schema_check;

/** How the library runs its statements. */
typedef enum spotdb_statements {
    /** Each distinct statement is prepared once per connection (the first
     *  call pays one extra round trip) and reused (the default). */
    SPOTDB_STATEMENTS_PREPARED = 0,
    /** Unnamed statements only, parsed on every call in the same round
     *  trip: for transaction-mode poolers such as PgBouncer, where a
     *  prepared statement may not be found on the next transaction's
     *  server connection. */
    SPOTDB_STATEMENTS_UNNAMED = 1
} spotdb_statements;

/** Whether a connection pooler stands between the library and
 *  PostgreSQL, and how the library behaves because of it. */
typedef enum spotdb_pooler {
    /** Find out at open: PgBouncer and similar poolers give the client a
     *  backend process id of their own, which differs from the server's
     *  pg_backend_pid().  A pooler found this way is treated as a
     *  transaction-mode pooler (the default). */
    SPOTDB_POOLER_AUTO = 0,
    /** A direct connection, or a session-mode pooler (one server
     *  connection per client for its whole life): nothing is avoided and
     *  nothing is probed. */
    SPOTDB_POOLER_NONE = 1,
    /** A transaction-mode pooler such as PgBouncer with
     *  pool_mode=transaction: consecutive transactions may run on
     *  different server connections.  The library then keeps no session
     *  state on the server: statements are unnamed (as with
     *  SPOTDB_STATEMENTS_UNNAMED), and migrations are refused with
     *  SPOTDB_EPOOLER, since their lock needs one server session.  (The
     *  one session setting the library makes, TimeZone, is a parameter
     *  PgBouncer tracks and restores for each client.) */
    SPOTDB_POOLER_TRANSACTION = 2
} spotdb_pooler;

/** Where reads go when the settings name a primary and standbys. */
typedef enum spotdb_replica_reads_mode {
    /** Every call uses one connection (the default). */
    SPOTDB_REPLICA_READS_OFF = 0,
    /** Two connections from the same settings: the main one with
     *  `target_session_attrs=read-write` (whatever the settings say), for
     *  writes, gets, transactions and everything not listed here; and a
     *  read connection with `target_session_attrs=prefer-standby`, for the
     *  replica-safe reads: the list, count and stream calls of tables,
     *  views and reports, made outside a transaction while
     *  spotdb_replica_reads() is on (it starts on).  See spotdb_replica_reads()
     *  for what happens when the standby goes away. */
    SPOTDB_REPLICA_READS_ON = 1
} spotdb_replica_reads_mode;

/** Version of spotdb_open_options this header describes (1: up to
 *  connect_timeout_s; 2: schema_check; 3: statements; 4: pooler and
 *  replica_reads; 5: call_timeout_ms). */
#define SPOTDB_OPEN_OPTIONS_VERSION 5

/** Options of spotdb_open().  Initialise with SPOTDB_OPEN_OPTIONS_INIT or
 *  spotdb_open_options_init(); NULL options mean all defaults. */
typedef struct spotdb_open_options {
    /** SPOTDB_OPEN_OPTIONS_VERSION of the headers the caller was compiled
     *  with; a newer library reads every older version. */
    unsigned int version;
    /** application_name when the settings give none; NULL: "libspotdb". */
    const char *application_name;
    /** Seconds to wait for the connection when the settings name no
     *  connect_timeout; 0: 10 seconds. */
    int32_t connect_timeout_s;
    /** A spotdb_schema_check value; 0: SPOTDB_SCHEMA_CHECK_REQUIRE.  Read
     *  from version 2 on. */
    int32_t schema_check;
    /** A spotdb_statements value; 0: SPOTDB_STATEMENTS_PREPARED.  Read
     *  from version 3 on. */
    int32_t statements;
    /** A spotdb_pooler value; 0: SPOTDB_POOLER_AUTO.  Read from version 4
     *  on (older callers get SPOTDB_POOLER_AUTO). */
    int32_t pooler;
    /** A spotdb_replica_reads_mode value; 0: SPOTDB_REPLICA_READS_OFF.  Read
     *  from version 4 on. */
    int32_t replica_reads;
    /** Deadline of every call, in milliseconds, as spotdb_set_call_timeout()
     *  sets it; 0: none.  Read from version 5 on. */
    int32_t call_timeout_ms;
} spotdb_open_options;

/** Static initialiser of spotdb_open_options with every default. */
#define SPOTDB_OPEN_OPTIONS_INIT \
    { SPOTDB_OPEN_OPTIONS_VERSION, NULL, 0, 0, 0, 0, 0, 0 }

/**
 * Fill `opts` with the defaults (for bindings, which cannot use the macro).
 * May be called from any thread.
 *
 * @param[out] opts the options to initialise; owned by the caller.
 * @param version SPOTDB_OPEN_OPTIONS_VERSION.
 * @return 0, or SPOTDB_EINVAL for a NULL `opts` or an unknown version.
 */
SPOTDB_API int spotdb_open_options_init(spotdb_open_options *opts,
                                        unsigned int version);

/**
 * Connect to PostgreSQL.  May be called from any thread; the new handle
 * is then used by one thread at a time.
 *
 * @param[out] out the new handle, or NULL on failure.  It belongs to the
 *             caller, who closes it with spotdb_close().
 * @param conninfo libpq settings or URI; NULL or "" to read the
 *             environment (see the top of this file for the order).
 *             Only read during the call.
 * @param opts NULL for defaults; only read during the call.
 * @return 0; SPOTDB_EINVAL for settings libpq cannot parse or bad
 *         options; SPOTDB_ECONN when the server cannot be reached or
 *         refuses the login; SPOTDB_ESCHEMA when the schema handshake
 *         fails (see the top of this file); SPOTDB_ENOMEM.  The detail, from
 *         spotdb_last_errmsg(), names the host, the port and the server's
 *         reason, and never contains the password.
 */
SPOTDB_API int spotdb_open(spotdb_db **out, const char *conninfo,
                           const spotdb_open_options *opts);

/**
 * Close the connection and free the handle.  An open transaction is
 * rolled back by the server.  Rows the handle returned stay valid: they
 * own their memory.  Never call it in a child process on a handle of the
 * parent: that would end the parent's session (see fork() at the top of
 * this file).  Never on a handle lent by a pool: give that back with
 * spotdb_pool_release().
 *
 * @param db the handle, not used again afterwards; NULL is a no-op.
 */
SPOTDB_API void spotdb_close(spotdb_db *db);

/**
 * Where the handle's settings came from.
 *
 * @param db an open handle.
 * @return a spotdb_conn_source value; 0 for a NULL handle.
 */
SPOTDB_API int spotdb_conn_source_of(const spotdb_db *db);

/**
 * Detail of the last failure of a call on this handle.
 *
 * @param db the handle (NULL gives spotdb_last_errmsg()).
 * @return "" after a successful call; owned by the handle, valid until
 *         the next call on it.  Never NULL.
 */
SPOTDB_API const char *spotdb_errmsg(const spotdb_db *db);

/**
 * SQLSTATE of the last failure on this handle when the server reported
 * one ("23505", ...), else "".
 *
 * @param db the handle.
 * @return a five-character code or ""; owned by the handle.  Never NULL.
 */
SPOTDB_API const char *spotdb_sqlstate(const spotdb_db *db);

/**
 * Start a transaction: the following calls on the handle commit or roll
 * back together.  Without one, each call is its own transaction.
 *
 * @param db an open handle.
 * @return 0; SPOTDB_EINVAL when a transaction is already open (there is no
 *         nesting) or `db` is NULL; SPOTDB_ECONN.
 */
SPOTDB_API int spotdb_begin(spotdb_db *db);

/**
 * Commit the transaction spotdb_begin() started.
 *
 * A call the server rejected inside the transaction (a constraint, a
 * lost connection) dooms it, as PostgreSQL does: commit then stores
 * nothing.  A call refused by the library's own checks before any round
 * trip (SPOTDB_EINVAL naming a field) sent nothing and leaves the
 * transaction usable; so does a lookup that found nothing
 * (SPOTDB_ENOTFOUND).  For all-or-nothing, roll back on any failure.
 *
 * @param db an open handle.
 * @return 0; SPOTDB_EINVAL when none is open; SPOTDB_ESQL when the server
 *         had rejected a call inside it: then nothing was committed, the
 *         transaction was rolled back, and the handle is ready for the
 *         next one; SPOTDB_ECONN when the connection was lost before
 *         COMMIT reached the server, or the server refused it while
 *         ending the session (nothing was committed); SPOTDB_EUNKNOWN
 *         when COMMIT was sent and its answer lost (it may have been
 *         committed: check before doing it again); SPOTDB_ESERIALIZATION
 *         when the server could not serialize it (nothing committed; see
 *         spotdb_run_transaction()).  The transaction is over in every
 *         case.
 */
SPOTDB_API int spotdb_commit(spotdb_db *db);

/**
 * Roll back the open transaction.  Rolling back when none is open is a
 * no-op, so error paths may call it unconditionally.
 *
 * @param db an open handle.
 * @return 0; SPOTDB_EINVAL for a NULL handle; SPOTDB_ECONN.
 */
SPOTDB_API int spotdb_rollback(spotdb_db *db);

/**
 * Whether a transaction started by spotdb_begin() is open.
 *
 * @param db an open handle.
 * @return 1 if open (also after a failed call inside it), else 0 (also
 *         for a NULL handle).
 */
SPOTDB_API int spotdb_in_transaction(const spotdb_db *db);

/**
 * Whether the handle runs through a transaction-mode pooler: the
 * `pooler` option said so, or SPOTDB_POOLER_AUTO found one at open.
 *
 * @param db an open handle.
 * @return 1 or 0.
 */
SPOTDB_API int spotdb_pooled(const spotdb_db *db);

/**
 * Turn the routing of replica-safe reads to the standby on or off for the
 * following calls on a handle opened with SPOTDB_REPLICA_READS_ON (it
 * starts on).  Turn it off around reads that must see the handle's own
 * recent writes: a standby may lag behind the primary.
 *
 * The read connection is opened at the first routed read.  When no
 * standby answers, it lands on the primary (libpq's prefer-standby), and
 * every 10 seconds after that a routed read first tries again to reach a
 * standby.  When it breaks, the read that found it broken is sent again
 * once on a new read connection (reads change nothing, so sending one
 * twice is safe; a stream that has already handed rows to its callback
 * is not sent again and fails with SPOTDB_ECONN).
 *
 * @param db an open handle.
 * @param on 1 to route, 0 to send every call to the main connection.
 * @return the previous setting (0 or 1); SPOTDB_EINVAL when the handle
 *         was not opened with SPOTDB_REPLICA_READS_ON.
 */
SPOTDB_API int spotdb_replica_reads(spotdb_db *db, int on);

/**
 * Give every following call on the handle a deadline: a call still
 * waiting for the server after `ms` milliseconds cancels its statement
 * and fails with SPOTDB_ETIMEOUT (a transaction it was in is then rolled
 * back).  When the server does not answer the cancel either (a stopped
 * or unreachable backend), the call abandons the connection 50 ms later
 * and still returns within its deadline plus that grace; the next call
 * reconnects.  A write outside a transaction abandoned so may have been
 * committed: that is SPOTDB_EUNKNOWN instead.
 *
 * @param db an open handle.
 * @param ms the deadline in milliseconds, 0 for none (the default, or
 *        the open option call_timeout_ms).
 * @return 0; SPOTDB_EINVAL for a NULL handle or a negative `ms`.
 */
SPOTDB_API int spotdb_set_call_timeout(spotdb_db *db, int32_t ms);

/**
 * Cancel the call running on the handle, from another thread (or a
 * signal handler's thread of control).  The running call then fails with
 * SPOTDB_ECANCELED and the handle stays usable; a transaction the call
 * was in is rolled back by the server.  With no call running, the cancel
 * may reach the server anyway and is then ignored.
 *
 * Thread safety: unlike every other function on a handle, this one may
 * be called from any thread while another uses the handle (it uses
 * libpq's PQcancel, not PQrequestCancel).  It must not race with
 * spotdb_close() of the same handle.
 *
 * @param db an open handle.
 * @return 0 when the cancel request was delivered to the server;
 *         SPOTDB_ECONN when it could not be (the server is unreachable);
 *         SPOTDB_EINVAL for a NULL handle.
 */
SPOTDB_API int spotdb_cancel(spotdb_db *db);

/**
 * The current time as libspotdb stores timestamps: microseconds since
 * 1970-01-01 00:00 UTC, from the local clock.  A convenience for filters
 * and for setting timestamp columns.  Column defaults (created_at,
 * execution_time, ...) use the server's clock instead, and inside a
 * transaction its start time, so rows created in one transaction share
 * one default timestamp.  May be called from any thread.
 *
 * @return microseconds since the Unix epoch, UTC (CLOCK_REALTIME).
 */
SPOTDB_API int64_t spotdb_now_us(void);

SPOTDB_END_DECLS

#endif /* SPOTDB_DB_H */
