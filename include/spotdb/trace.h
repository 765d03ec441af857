/**
 * @file spotdb/trace.h
 * @brief A hook that sees every statement the library runs.
 *
 * The hook receives, for each statement sent to the server, what the
 * library was doing, the SQL text (with `$1` placeholders: the library
 * never puts values in SQL), how long it took, how many rows it returned
 * or changed, and its outcome.  It never receives parameter values, so no
 * password, hash or tenant data reaches it.  docs/observability.md shows
 * how to feed it into metrics and tracing systems.
 *
 * Thread safety: the hook runs on the thread that made the call, inside
 * the call, once per statement.  It must not call libspotdb on the same
 * handle.  A hook shared by handles used from several threads must be
 * thread-safe itself.
 */
#ifndef SPOTDB_TRACE_H
#define SPOTDB_TRACE_H

#include "db.h"

SPOTDB_BEGIN_DECLS

/** Version of spotdb_trace_event this header describes. */
#define SPOTDB_TRACE_EVENT_VERSION 1

/** One statement, as the trace hook sees it.  Every pointer is valid only
 *  during the hook's call; copy what you keep. */
typedef struct spotdb_trace_event {
    /** SPOTDB_TRACE_EVENT_VERSION of the library that made the event;
     *  members are only ever added at the end. */
    unsigned int version;
    /** The operation, a short stable name such as "reading users",
     *  "creating instance", "begin", "migration 0002": a good metric
     *  label.  Never NULL. */
    const char *name;
    /** The SQL text sent, with placeholders, never values.  Never NULL. */
    const char *sql;
    /** The prepared statement's name ("spotdb_7"), or "" when the
     *  statement ran unnamed. */
    const char *statement;
    /** Wall time from sending the statement to its complete result, in
     *  microseconds (monotonic clock). */
    int64_t duration_us;
    /** Rows returned (queries) or changed (INSERT, UPDATE, DELETE, COPY);
     *  -1 when the statement failed or reports none. */
    int64_t rows;
    /** 0, or the spotdb_error_code of the failure. */
    int code;
    /** The SQLSTATE of a failure the server reported ("40001", ...), else
     *  "".  Never NULL. */
    const char *sqlstate;
    /** 1 when the statement ran on the read connection (see
     *  spotdb_replica_reads()), else 0. */
    int replica;
} spotdb_trace_event;

/**
 * A trace hook.
 *
 * @param event the statement; valid only during the call.
 * @param payload the pointer given to spotdb_set_trace().
 */
typedef void (*spotdb_trace_fn)(const spotdb_trace_event *event,
                                void *payload);

/**
 * Set or remove the handle's trace hook.  Without one, tracing costs a
 * branch per statement; with one, two clock readings as well.
 *
 * @param db an open handle.
 * @param fn the hook, or NULL to remove it.
 * @param payload handed to every call of `fn`; owned by the caller.
 * @return 0; SPOTDB_EINVAL for a NULL handle.
 */
SPOTDB_API int spotdb_set_trace(spotdb_db *db, spotdb_trace_fn fn,
                                void *payload);

SPOTDB_END_DECLS

#endif /* SPOTDB_TRACE_H */
