/**
 * @file spotdb/migrate.h
 * @brief Versioned schema migrations embedded in the library.
 *
 * The library carries the SQL of `sql/NNNN_name.sql` (version = NNNN),
 * embedded at build time, and records what it applied in the table
 * `spotdb_schema_migrations` (version, name, checksum = SHA-256 hex of the
 * file, applied_at, execution_ms, and compatible: the file's header says
 * `-- spotdb: compatible`, so libraries that know only older versions may
 * still open the database, see spotdb/db.h).  docs/migrations.md tells the
 * whole story; in short:
 *
 * - each migration runs in its own transaction together with its tracking
 *   row, so a failure leaves the database at the previous version;
 * - migrators are serialised by a session-level advisory lock, so any
 *   number may start at once and each version is applied once;
 * - an applied migration whose checksum differs from the embedded file
 *   (SPOTDB_ECHECKSUM), and a database that records a version this library
 *   does not know (SPOTDB_ESCHEMA), are refused before anything changes;
 * - a database built by hand from the original schema file (v1 objects
 *   present, no tracking table) is compared with the catalog that
 *   0001_initial.sql builds and, when equal, recorded as version 1 without
 *   running it; a partial or different one is refused (SPOTDB_EADOPT) with
 *   the list of differences.
 *
 * Thread safety: these functions use the handle, which is used by one
 * thread at a time; a returned spotdb_status is immutable and may be read
 * from any thread.  spotdb_migration_embedded() and
 * spotdb_migration_embedded_count() may be called from any thread.  There
 * is no global initialisation call.
 */
#ifndef SPOTDB_MIGRATE_H
#define SPOTDB_MIGRATE_H

#include "common.h"
#include "db.h"

SPOTDB_BEGIN_DECLS

/** State of one migration as seen by spotdb_status_get() and the
 *  callbacks. */
typedef enum spotdb_migration_state {
    SPOTDB_MIGRATION_APPLIED = 1, /**< recorded, checksum matches */
    SPOTDB_MIGRATION_PENDING = 2, /**< embedded, not yet applied */
    SPOTDB_MIGRATION_CHANGED = 3, /**< recorded, but the checksum differs
                                       from the embedded file */
    SPOTDB_MIGRATION_UNKNOWN = 4, /**< recorded by the database, unknown to
                                       this library (database is newer) */
    SPOTDB_MIGRATION_ADOPTED = 5  /**< an existing hand-built schema was
                                       recorded as this version */
} spotdb_migration_state;

/** One migration: embedded, applied, or both. */
typedef struct spotdb_migration_info {
    int64_t version;        /**< NNNN of the file name */
    const char *name;       /**< "initial" for 0001_initial.sql */
    const char *checksum;   /**< SHA-256 hex of the file: the embedded one
                                 for embedded or pending entries, the
                                 recorded one for applied entries */
    int64_t applied_at_us;  /**< when applied, microseconds since the Unix
                                 epoch, UTC; 0 when not applied */
    int32_t execution_ms;   /**< how long it ran; -1 when not applied */
    int32_t state;          /**< a spotdb_migration_state */
} spotdb_migration_info;

/** The migration state of a database, from spotdb_status_get(); free it
 *  with spotdb_status_free(), which frees the arrays and strings too. */
typedef struct spotdb_status {
    int64_t current_version;  /**< highest applied version, 0 for none */
    int64_t latest_version;   /**< highest version embedded in the library */
    int32_t tracked;          /**< 1 when the tracking table exists */
    int32_t unversioned_schema; /**< without a tracking table: 0 when no
                                     object of schema v1 exists, 1 when all
                                     do exactly (the next migrate adopts
                                     them), 2 when some do or differ (the
                                     next migrate refuses), -1 when the
                                     role may not run the probe (it needs
                                     CREATE on the database); always 0
                                     with a tracking table */
    size_t applied_count;     /**< entries in `applied` */
    spotdb_migration_info *applied; /**< recorded migrations, oldest first;
                                         state APPLIED, CHANGED or UNKNOWN */
    size_t pending_count;     /**< entries in `pending` */
    spotdb_migration_info *pending; /**< embedded, not applied, oldest
                                         first */
} spotdb_status;

/**
 * Called by spotdb_migrate(): after each migration commits (`sql` NULL),
 * after an adoption (state SPOTDB_MIGRATION_ADOPTED), and in a dry run for
 * each migration that would run, with the SQL that would run.
 *
 * @param m the migration; valid only during the call.
 * @param sql the file's SQL in a dry run, else NULL.
 * @param payload the options' payload.
 */
typedef void (*spotdb_migrate_cb)(const spotdb_migration_info *m,
                                  const char *sql, void *payload);

/** Version of spotdb_migrate_options this header describes. */
#define SPOTDB_MIGRATE_OPTIONS_VERSION 1

/** Options of spotdb_migrate().  NULL options mean the defaults. */
typedef struct spotdb_migrate_options {
    /** SPOTDB_MIGRATE_OPTIONS_VERSION of the headers the caller was
     *  compiled with; a newer library reads every older version. */
    unsigned int version;
    /** Stop after this version; 0 means the newest embedded one. */
    int64_t target_version;
    /** Non-zero: change nothing, report through `callback` what would
     *  run. */
    int32_t dry_run;
    /** How long to wait for another migrator's lock, in milliseconds;
     *  0 means the default of 60000; -1 waits without limit. */
    int32_t lock_timeout_ms;
    /** Progress callback, or NULL. */
    spotdb_migrate_cb callback;
    /** Passed to `callback` unchanged. */
    void *payload;
} spotdb_migrate_options;

/** Static initialiser of spotdb_migrate_options with every default. */
#define SPOTDB_MIGRATE_OPTIONS_INIT \
    { SPOTDB_MIGRATE_OPTIONS_VERSION, 0, 0, 0, NULL, NULL }

/**
 * Fill `opts` with the defaults (for bindings, which cannot use the macro).
 * May be called from any thread.
 *
 * @param[out] opts the options to initialise; owned by the caller.
 * @param version SPOTDB_MIGRATE_OPTIONS_VERSION.
 * @return 0, or SPOTDB_EINVAL for a NULL `opts` or an unknown version.
 */
SPOTDB_API int spotdb_migrate_options_init(spotdb_migrate_options *opts,
                                           unsigned int version);

/**
 * Bring the database to the target version (default: the newest).
 *
 * Must not be called inside a transaction on the handle.  Down migrations
 * do not exist: a target below the current version is refused.
 *
 * @param db an open handle.
 * @param opts NULL for defaults.
 * @return 0 (also when nothing was pending); SPOTDB_EINVAL (bad options,
 *         unknown target, or a transaction is open); SPOTDB_ESCHEMA (the
 *         database records a version this library does not know, or
 *         versions are out of order); SPOTDB_ECHECKSUM; SPOTDB_EADOPT;
 *         SPOTDB_ELOCKED; SPOTDB_EMIGRATE (a migration failed and was
 *         rolled back: the message names the file, the statement and its
 *         line, and the server's message); SPOTDB_EPOOLER when the handle
 *         runs through a transaction-mode pooler (spotdb_pooled()), whose
 *         connections cannot hold the migration lock; SPOTDB_ECONN;
 *         SPOTDB_ENOMEM.
 */
SPOTDB_API int spotdb_migrate(spotdb_db *db,
                              const spotdb_migrate_options *opts);

/**
 * Read the migration state of the database.  Takes no lock and changes
 * nothing.
 *
 * @param[out] out the state, or NULL on failure; it belongs to the caller,
 *             who frees it with spotdb_status_free().
 * @param db an open handle.
 * @return 0; SPOTDB_EINVAL for a NULL `out` or `db`; SPOTDB_ECONN,
 *         SPOTDB_ESQL or SPOTDB_ENOMEM.
 */
SPOTDB_API int spotdb_status_get(spotdb_status **out, spotdb_db *db);

/**
 * Free a status returned by spotdb_status_get().
 *
 * @param status the status; NULL is a no-op.
 */
SPOTDB_API void spotdb_status_free(spotdb_status *status);

/**
 * Number of migrations embedded in the library.  May be called from any
 * thread.
 *
 * @return the count (at least 1).
 */
SPOTDB_API size_t spotdb_migration_embedded_count(void);

/**
 * Describe the i-th embedded migration, oldest first.
 *
 * @param[out] out filled with static strings that live as long as the
 *             library; state is SPOTDB_MIGRATION_PENDING, applied_at_us 0
 *             and execution_ms -1.
 * @param index 0 to spotdb_migration_embedded_count() - 1.
 * @return 0, or SPOTDB_EINVAL for an index out of range.
 */
SPOTDB_API int spotdb_migration_embedded(spotdb_migration_info *out,
                                         size_t index);

SPOTDB_END_DECLS

#endif /* SPOTDB_MIGRATE_H */
