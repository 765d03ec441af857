/**
 * @file spotdb/doctor.h
 * @brief Checking a deployment for what an operator should fix.
 *
 * spotdb_doctor_run() looks at a database and at the handle's connection
 * and returns a list of findings, each with a severity, a stable code and
 * a one-line message.  `spotdb doctor` prints them.  The checks, by code:
 *
 * - `default_admin_password` (error; warning when the account is
 *   inactive): the user named `admin` that migration 0001 seeds still
 *   has the password 0001 gave it.  The stored hash is read and verified
 *   in the library, without logging in (no last_login update, no
 *   re-hash); neither the hash nor the password appears in a message.
 * - `shared_external_id` (warning): accounts that share one STS external
 *   id, which defeats its confused-deputy protection.  The message names
 *   the AWS account ids, never the external id.
 * - `tls_missing` (error): the connection goes to a host that is not
 *   local (see spotdb/db.h) and is not encrypted.
 * - `tls_unverified` (error): encrypted, but the server's certificate is
 *   not verified (`sslmode` require, prefer or allow): anyone on the path
 *   can pose as the server.
 * - `tls_hostname_unchecked` (warning): `sslmode=verify-ca`: the
 *   certificate's chain is verified, but not that it names the host.
 * - `schema_unversioned` (error): no `spotdb_schema_migrations` table.
 * - `migration_changed` (error): an applied migration's recorded
 *   checksum differs from the library's copy.
 * - `migration_unknown` (warning): the database records a migration this
 *   library does not know (it is newer than the library).
 * - `migration_pending` (warning): embedded migrations not applied yet.
 * - `schema_drift` (warning): the tables, columns (type, nullability,
 *   default), constraints, indexes, triggers and functions that the
 *   applied migrations build differ from what the database holds (the
 *   comparison of docs/migrations.md, "Adoption", with every applied
 *   migration built in a scratch schema that is rolled back).
 * - `schema_not_compared` (info): that comparison could not run (the role
 *   may not create a schema, or the database has migrations this library
 *   does not know, or applied them out of order); the message says why.
 * - `check_failed` (warning): a check the server refused (a missing
 *   privilege, say); the message names the check and the reason.
 *
 * Only the handle's main connection is looked at, not the read
 * connection of replica reads.
 *
 * Thread safety: spotdb_doctor_run() uses the handle, which is used by
 * one thread at a time; a returned report is immutable and may be read
 * from any thread.  spotdb_doctor_severity_name() may be called from any
 * thread.
 */
#ifndef SPOTDB_DOCTOR_H
#define SPOTDB_DOCTOR_H

#include "common.h"
#include "db.h"

SPOTDB_BEGIN_DECLS

/** How much a finding matters. */
typedef enum spotdb_doctor_severity {
    /** Worth knowing; nothing to fix. */
    SPOTDB_DOCTOR_INFO = 1,
    /** Should be fixed. */
    SPOTDB_DOCTOR_WARNING = 2,
    /** Must be fixed: a security hole, or a schema the library refuses. */
    SPOTDB_DOCTOR_ERROR = 3
} spotdb_doctor_severity;

/** One finding. */
typedef struct spotdb_doctor_finding {
    /** A spotdb_doctor_severity value. */
    int32_t severity;
    /** Stable identifier of the check and outcome, such as
     *  "default_admin_password" (see the top of this file): for programs
     *  to test.  Static storage. */
    const char *code;
    /** One line of text for people (no newline): what was found and what
     *  to do.  Never holds a password, a password hash or an external
     *  id.  Owned by the report. */
    const char *message;
} spotdb_doctor_finding;

/** The findings of spotdb_doctor_run(); free it with
 *  spotdb_doctor_report_free(), which frees the findings too. */
typedef struct spotdb_doctor_report {
    /** Entries in `findings`; 0 when nothing was found. */
    size_t count;
    /** The findings, in the order of the checks (see the top of this
     *  file); NULL when count is 0. */
    spotdb_doctor_finding *findings;
    /** Highest severity among the findings, 0 when there are none. */
    int32_t worst;
} spotdb_doctor_report;

/**
 * Run every check of this file on the database and the handle's
 * connection.  Changes nothing: the schema comparison builds the
 * migrations in a scratch schema inside a transaction that is rolled
 * back (it needs the right to create a schema, else the finding
 * `schema_not_compared`).  Verifying the admin password costs one bcrypt
 * (about 0.25 s at cost 12).
 *
 * @param[out] out the report, or NULL on failure; it belongs to the
 *             caller, who frees it with spotdb_doctor_report_free().
 * @param db an open handle, outside a transaction.  It may have been
 *           opened with SPOTDB_SCHEMA_CHECK_SKIP, as `spotdb doctor`
 *           does, so that a database behind the library can be examined.
 * @return 0, findings or not; SPOTDB_EINVAL for a NULL `out` or `db`, or
 *         a transaction open on the handle; SPOTDB_ECONN, SPOTDB_ETIMEOUT,
 *         SPOTDB_ECANCELED or SPOTDB_ENOMEM when the checks could not
 *         finish.  A check the server refuses is a finding
 *         (`check_failed`), not a failure.
 */
SPOTDB_API int spotdb_doctor_run(spotdb_doctor_report **out, spotdb_db *db);

/**
 * Free a report returned by spotdb_doctor_run().
 *
 * @param report the report; NULL is a no-op.
 */
SPOTDB_API void spotdb_doctor_report_free(spotdb_doctor_report *report);

/**
 * Name of a severity, for printing.
 *
 * @param severity a spotdb_doctor_severity value.
 * @return "info", "warning" or "error"; "unknown" for any other value.
 *         Static storage.
 */
SPOTDB_API const char *spotdb_doctor_severity_name(int severity);

SPOTDB_END_DECLS

#endif /* SPOTDB_DOCTOR_H */
