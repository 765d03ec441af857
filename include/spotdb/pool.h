/**
 * @file spotdb/pool.h
 * @brief A thread-safe pool of connection handles.
 *
 * A pool opens up to `max_size` handles with the same settings and lends
 * them out: a thread takes one with spotdb_pool_acquire(), uses it alone,
 * and gives it back with spotdb_pool_release().  When every handle is
 * lent, acquire waits until one comes back, or fails with
 * SPOTDB_ETIMEOUT once its timeout passes.
 *
 * Health: before handing out an idle handle the pool checks it without a
 * round trip: libpq's status, and whether the server wrote anything to
 * the idle socket, which it does only when it ends the session
 * (terminated, idle timeout, shutdown).  A handle idle for longer than
 * `idle_check_after_ms` is also pinged with `SELECT 1` (within the
 * handle's call timeout, if it has one), which finds a connection that
 * died without a word.  A handle that fails the check is closed and a
 * new one opened in its place; the caller sees no error unless the new
 * one cannot be opened.
 *
 * Reset at release: a transaction left open is rolled back, the trace
 * hook is removed, the call timeout is set back to the open options' and
 * replica-read routing is turned back on, so the next borrower gets a
 * handle as spotdb_open() made it.  A handle whose connection broke is
 * closed; the next acquire that needs one opens a new one.
 *
 * Thread safety: every function here may be called from any thread at
 * the same time as the others, except spotdb_pool_close(), which must
 * not race with other calls on the same pool.  An acquired spotdb_db
 * follows the handle's rule: one thread at a time, the one that acquired
 * it or one it hands the handle to.  Rows are immutable and may cross
 * threads; there is no global initialisation call.
 *
 * fork(): a child must not use, release or close the parent's pool or
 * any of its handles, nor call spotdb_pool_close() on it (closing a
 * handle sends a Terminate message on the socket the child shares with
 * the parent, which ends the parent's session); it leaves them alone,
 * and opens a pool of its own if it needs one.
 */
#ifndef SPOTDB_POOL_H
#define SPOTDB_POOL_H

#include "common.h"
#include "db.h"

SPOTDB_BEGIN_DECLS

/** A pool of connection handles.  Opaque. */
typedef struct spotdb_pool spotdb_pool;

/** Version of spotdb_pool_options this header describes. */
#define SPOTDB_POOL_OPTIONS_VERSION 1

/** Timeout of spotdb_pool_acquire(): wait as long as the pool's
 *  `acquire_timeout_ms` says. */
#define SPOTDB_POOL_WAIT_DEFAULT (-2)
/** Timeout of spotdb_pool_acquire(): wait without limit. */
#define SPOTDB_POOL_WAIT_FOREVER (-1)

/** Options of spotdb_pool_open().  Initialise with
 *  SPOTDB_POOL_OPTIONS_INIT or spotdb_pool_options_init(); NULL options
 *  mean all defaults. */
typedef struct spotdb_pool_options {
    /** SPOTDB_POOL_OPTIONS_VERSION of the headers the caller was compiled
     *  with; a newer library reads every older version. */
    unsigned int version;
    /** Most handles open at once, lent or idle; 0: 10.  At most 10000. */
    int32_t max_size;
    /** Handles spotdb_pool_open() opens at once, so that wrong settings
     *  fail there rather than at the first acquire; 0: none.  Not kept
     *  up afterwards: a handle closed because it broke is replaced when
     *  an acquire needs it.  At most `max_size`. */
    int32_t initial_size;
    /** Timeout of spotdb_pool_acquire() with SPOTDB_POOL_WAIT_DEFAULT, in
     *  milliseconds; 0: 30000; -1: wait without limit. */
    int32_t acquire_timeout_ms;
    /** An idle handle unused for longer than this many milliseconds is
     *  pinged with `SELECT 1` before it is handed out; 0: 1000; -1: never
     *  ping (the check without a round trip still runs). */
    int32_t idle_check_after_ms;
    /** Options of every spotdb_open() the pool makes, or NULL for the
     *  defaults; only read during spotdb_pool_open(), which copies them
     *  (the application_name string too). */
    const spotdb_open_options *open_options;
} spotdb_pool_options;

/** Static initialiser of spotdb_pool_options with every default. */
#define SPOTDB_POOL_OPTIONS_INIT \
    { SPOTDB_POOL_OPTIONS_VERSION, 0, 0, 0, 0, NULL }

/**
 * Fill `opts` with the defaults (for bindings, which cannot use the macro).
 * May be called from any thread.
 *
 * @param[out] opts the options to initialise; owned by the caller.
 * @param version SPOTDB_POOL_OPTIONS_VERSION.
 * @return 0, or SPOTDB_EINVAL for a NULL `opts` or an unknown version.
 */
SPOTDB_API int spotdb_pool_options_init(spotdb_pool_options *opts,
                                        unsigned int version);

/** Version of spotdb_pool_stats this header describes. */
#define SPOTDB_POOL_STATS_VERSION 1

/** A snapshot of a pool's state and counters, filled by
 *  spotdb_pool_stats_get().  Counters start at 0 when the pool opens. */
typedef struct spotdb_pool_stats {
    /** Set by the caller to SPOTDB_POOL_STATS_VERSION before the call:
     *  the library fills only the members that version has. */
    unsigned int version;
    /** The `max_size` in effect. */
    int32_t max_size;
    /** Handles open or being opened: `idle` plus `in_use`. */
    int32_t size;
    /** Handles waiting in the pool. */
    int32_t idle;
    /** Handles lent out, or being opened, checked or reset for a
     *  borrower. */
    int32_t in_use;
    /** Threads waiting in spotdb_pool_acquire() right now. */
    int32_t waiting;
    /** Successful acquires. */
    int64_t acquires;
    /** Acquires that had to wait for a handle to come back. */
    int64_t waits;
    /** Acquires that failed with SPOTDB_ETIMEOUT. */
    int64_t timeouts;
    /** Handles closed because their connection was found broken, at the
     *  check before reuse or at release; each is replaced by a new one
     *  when an acquire needs it. */
    int64_t reconnects;
    /** `SELECT 1` round trips made by the checks before reuse. */
    int64_t pings;
} spotdb_pool_stats;

/** Static initialiser of spotdb_pool_stats: the version set, the rest 0. */
#define SPOTDB_POOL_STATS_INIT \
    { SPOTDB_POOL_STATS_VERSION, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 }

/**
 * Create a pool.  May be called from any thread.
 *
 * @param[out] out the new pool, or NULL on failure.  It belongs to the
 *             caller, who closes it with spotdb_pool_close().
 * @param conninfo settings as for spotdb_open() (NULL or "" to read the
 *             environment); copied, and wiped from memory at close.
 * @param opts NULL for defaults; only read during the call.
 * @return 0; SPOTDB_EINVAL for bad options; SPOTDB_ENOMEM; or what
 *         spotdb_open() returns when one of the `initial_size` handles
 *         cannot be opened.  The detail is in spotdb_last_errmsg().
 */
SPOTDB_API int spotdb_pool_open(spotdb_pool **out, const char *conninfo,
                                const spotdb_pool_options *opts);

/**
 * Borrow a handle: an idle one that passes the health check, else a new
 * one when fewer than `max_size` are open, else the first one given back
 * within the timeout.  Waiting threads are not served in arrival order.
 *
 * @param[out] out the handle, or NULL on failure.  It stays the pool's:
 *             give it back with spotdb_pool_release(), never
 *             spotdb_close().  Used by one thread at a time.
 * @param p the pool.
 * @param timeout_ms how long to wait for a handle in milliseconds: 0 to
 *             try without waiting, SPOTDB_POOL_WAIT_FOREVER,
 *             SPOTDB_POOL_WAIT_DEFAULT for the pool's acquire_timeout_ms.
 *             Opening a new connection is not bounded by it (its own
 *             limit is the connect timeout).
 * @return 0; SPOTDB_ETIMEOUT when every handle stayed lent for the whole
 *         timeout; what spotdb_open() returns when a new handle cannot be
 *         opened (SPOTDB_ECONN, ...); SPOTDB_EINVAL for a NULL argument or
 *         a timeout below -2.  The detail is in spotdb_last_errmsg().
 */
SPOTDB_API int spotdb_pool_acquire(spotdb_pool *p, spotdb_db **out,
                                   int32_t timeout_ms);

/**
 * Give back a handle spotdb_pool_acquire() lent, and reset it (see the
 * top of this file): an open transaction is rolled back, never
 * committed.  The caller must not use the handle afterwards.
 *
 * @param p the pool the handle came from.
 * @param db the handle; NULL is a no-op.
 * @return 0 (also when the handle was found broken and closed);
 *         SPOTDB_EINVAL for a NULL pool, or a handle this pool did not
 *         lend or that was already given back (nothing is done to it).
 *         The detail is in spotdb_last_errmsg().
 */
SPOTDB_API int spotdb_pool_release(spotdb_pool *p, spotdb_db *db);

/**
 * Read the pool's state and counters.
 *
 * @param[out] out filled with a snapshot; its `version` must be set
 *             first (SPOTDB_POOL_STATS_INIT).  Owned by the caller.
 * @param p the pool.
 * @return 0; SPOTDB_EINVAL for a NULL argument or an unknown version.
 */
SPOTDB_API int spotdb_pool_stats_get(spotdb_pool_stats *out,
                                     spotdb_pool *p);

/**
 * Close every idle handle and free the pool.  It refuses while handles
 * are still lent: give them all back first.  Must not race with other
 * calls on the pool.
 *
 * @param p the pool; NULL is a no-op returning 0.
 * @return 0 when the pool is closed and must not be used again;
 *         SPOTDB_EINVAL when handles are still lent (the message says how
 *         many): then nothing changed and the pool stays usable.
 */
SPOTDB_API int spotdb_pool_close(spotdb_pool *p);

SPOTDB_END_DECLS

#endif /* SPOTDB_POOL_H */
