/**
 * @file spotdb/errors.h
 * @brief Error codes and how to read the detail of the last failure.
 *
 * Every call that can fail returns 0 (SPOTDB_OK) or one of the negative
 * codes below.  The values are part of the ABI: they are never renumbered
 * and a retired value is never reused.
 *
 * The human-readable detail lives in two places:
 * - calls on a handle keep it in the handle: spotdb_errmsg(db) and, when
 *   the server rejected a statement, spotdb_sqlstate(db);
 * - calls without a handle (spotdb_open() itself, for instance) keep it in
 *   a thread-local slot: spotdb_last_errmsg().
 * Both are cleared when a call starts, so they never describe an older
 * failure, and they are never NULL.  Messages never contain a password or
 * a password hash.
 *
 * @anchor spotdb_common_codes
 * Codes any call on a handle may return besides those its documentation
 * lists: SPOTDB_EINVAL for a NULL handle or a NULL pointer the call needs;
 * SPOTDB_ECONN when the connection breaks; SPOTDB_ESQL when the server
 * rejects a statement for a reason with no more specific code (a missing
 * privilege, a transaction an earlier failure has doomed, ...);
 * SPOTDB_ENOMEM; and SPOTDB_ESCHEMA when a result does not have the
 * columns and types schema v1 gives it (a database not migrated, or
 * changed by hand).
 *
 * Thread safety: spotdb_strerror() and spotdb_last_errmsg() may be called
 * from any thread (the latter reports the calling thread's last failure).
 * spotdb_errmsg() and spotdb_sqlstate() follow the handle's rule: one
 * thread at a time.
 */
#ifndef SPOTDB_ERRORS_H
#define SPOTDB_ERRORS_H

#include "common.h"

SPOTDB_BEGIN_DECLS

/** Error codes returned by libspotdb functions. */
typedef enum spotdb_error_code {
    SPOTDB_OK = 0,            /**< Success. */
    SPOTDB_ERROR = -1,        /**< Unclassified failure; see the message. */
    SPOTDB_EINVAL = -2,       /**< An argument or input value breaks a rule;
                                   the message names the field and the rule. */
    SPOTDB_ENOMEM = -3,       /**< Out of memory. */
    SPOTDB_ECONN = -4,        /**< Cannot connect, or the connection broke. */
    SPOTDB_ESQL = -5,         /**< The server rejected a statement for a reason
                                   not mapped to a more specific code; see
                                   spotdb_sqlstate(). */
    SPOTDB_ENOTFOUND = -6,    /**< No row matched. */
    SPOTDB_ECONFLICT = -7,    /**< A unique constraint was violated. */
    SPOTDB_EREFERENCE = -8,   /**< A foreign key was violated. */
    SPOTDB_EAUTH = -9,        /**< Wrong login or password. */
    SPOTDB_ESCHEMA = -10,     /**< The database schema version does not match
                                   this library (behind, or newer). */
    SPOTDB_ECHECKSUM = -11,   /**< An applied migration differs from the copy
                                   embedded in this library. */
    SPOTDB_EMIGRATE = -12,    /**< A migration failed and was rolled back. */
    SPOTDB_EADOPT = -13,      /**< An unversioned database holds only part of
                                   schema v1, or a different one. */
    SPOTDB_ELOCKED = -14,     /**< Timed out waiting for the migration lock. */
    SPOTDB_EPOOLER = -15,     /**< Needs a direct connection to PostgreSQL,
                                   and this one goes through a
                                   transaction-mode pooler. */
    SPOTDB_ETIMEOUT = -16,    /**< The call's deadline passed (the handle's
                                   call timeout, a pool's acquire timeout);
                                   the statement was cancelled. */
    SPOTDB_ECANCELED = -17,   /**< spotdb_cancel() cancelled the call. */
    SPOTDB_EUNKNOWN = -18,    /**< The connection broke after a write or a
                                   COMMIT was sent and before its answer:
                                   it may or may not have been committed.
                                   The library never sends it again;
                                   check, then decide. */
    SPOTDB_ESERIALIZATION = -19, /**< A serialization failure or deadlock
                                   (SQLSTATE 40001, 40P01): the
                                   transaction was rolled back and may be
                                   run again (spotdb_run_transaction()). */
    SPOTDB_EDENIED = -20      /**< The database refused the write for the
                                   acting user (row-level security, or a
                                   privilege: SQLSTATE 42501), such as a
                                   lab user creating a PROD account
                                   (scope.h).  Nothing was changed. */
} spotdb_error_code;

/**
 * Short, static description of an error code ("invalid argument", ...).
 *
 * @param code a value returned by a libspotdb function.
 * @return a static string; "unknown error" for values the library does not
 *         know.  Never NULL.
 */
SPOTDB_API const char *spotdb_strerror(int code);

/**
 * Detail of the last failure on the calling thread of a call that has no
 * handle (spotdb_open(), spotdb_migration_embedded(), ...).  May be
 * called from any thread.
 *
 * @return a thread-local string, "" when the last such call succeeded.
 *         Valid until the next libspotdb call on the same thread.
 */
SPOTDB_API const char *spotdb_last_errmsg(void);

SPOTDB_END_DECLS

#endif /* SPOTDB_ERRORS_H */
