/**
 * @file spotdb/transaction.h
 * @brief Running a transaction again after a serialization failure or a
 *        deadlock.
 *
 * Under concurrency PostgreSQL may abort a transaction it cannot order
 * (SQLSTATE 40001 under SERIALIZABLE or REPEATABLE READ) or one caught in
 * a deadlock (40P01); the library reports both as SPOTDB_ESERIALIZATION.
 * Such a transaction changed nothing and may simply be run again, which
 * spotdb_run_transaction() does, a bounded number of times, after a
 * jittered, growing delay.
 *
 * Thread safety: a handle (spotdb_db) is used by one thread at a time,
 * the body included, which runs on the calling thread; the options are
 * read during the call only.  No global initialisation.
 */
#ifndef SPOTDB_TRANSACTION_H
#define SPOTDB_TRANSACTION_H

#include "db.h"

SPOTDB_BEGIN_DECLS

/**
 * The body of a transaction.
 *
 * @param db the handle, inside the transaction.
 * @param payload the pointer given to spotdb_run_transaction().
 * @return 0 to commit; any other value rolls back and is returned by
 *         spotdb_run_transaction() (SPOTDB_ESERIALIZATION from a call
 *         inside makes it run the body again).
 */
typedef int (*spotdb_transaction_fn)(spotdb_db *db, void *payload);

/** Version of spotdb_retry_options this header describes. */
#define SPOTDB_RETRY_OPTIONS_VERSION 1

/** How spotdb_run_transaction() retries.  Zero members take the
 *  defaults. */
typedef struct spotdb_retry_options {
    /** SPOTDB_RETRY_OPTIONS_VERSION. */
    unsigned int version;
    /** Runs of the body at most, the first included; 0: 5. */
    int32_t max_attempts;
    /** Delay before the second run, in milliseconds; each later delay
     *  doubles, up to max_delay_ms; the actual delay is drawn uniformly
     *  between half and all of it, so that competing clients spread out;
     *  0: 10. */
    int32_t base_delay_ms;
    /** Upper bound of one delay, in milliseconds; 0: 1000. */
    int32_t max_delay_ms;
    /** Isolation level of the transaction: NULL for the server's default,
     *  else "serializable", "repeatable read" or "read committed". */
    const char *isolation;
} spotdb_retry_options;

/** Static initialiser of spotdb_retry_options with every default. */
#define SPOTDB_RETRY_OPTIONS_INIT { SPOTDB_RETRY_OPTIONS_VERSION, 0, 0, 0, NULL }

/**
 * Fill `opts` with the defaults (for bindings, which cannot use the macro).
 *
 * @param opts the options to initialise.
 * @param version SPOTDB_RETRY_OPTIONS_VERSION.
 * @return 0, or SPOTDB_EINVAL for a NULL `opts` or an unknown version.
 */
SPOTDB_API int spotdb_retry_options_init(spotdb_retry_options *opts,
                                         unsigned int version);

/**
 * Run `fn` inside a transaction and commit it; when the server aborts it
 * as a serialization failure or deadlock (in the body or at COMMIT), roll
 * back, wait, and run it again, up to `max_attempts` runs.
 *
 * The body must not keep effects outside the database that a second run
 * would repeat, and must not begin, commit or roll back itself.  Nothing
 * else is retried: a broken connection before COMMIT is SPOTDB_ECONN
 * (nothing was committed), during COMMIT SPOTDB_EUNKNOWN (check before
 * running it again).
 *
 * @param db an open handle with no transaction open.
 * @param fn the body.
 * @param payload handed to `fn`.
 * @param opts NULL for the defaults.
 * @param[out] attempts NULL, or the number of runs of the body.
 * @return 0 when committed; the body's own non-zero value (rolled back);
 *         SPOTDB_ESERIALIZATION when every run failed so; SPOTDB_EINVAL
 *         for a NULL handle or body, bad options, or a transaction already
 *         open; the codes of spotdb_begin() and spotdb_commit().
 */
SPOTDB_API int spotdb_run_transaction(spotdb_db *db, spotdb_transaction_fn fn,
                                      void *payload,
                                      const spotdb_retry_options *opts,
                                      int32_t *attempts);

SPOTDB_END_DECLS

#endif /* SPOTDB_TRANSACTION_H */
