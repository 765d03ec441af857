/**
 * @file spotdb/reports.h
 * @brief The model-performance comparison of the schema's documentation.
 *
 * Over the experiment logs whose execution_time lies in a window, one row
 * per model (name and version, joined through experiment_logs.model_id;
 * logs without a model are not counted): the number of runs, the average
 * prediction_score, the number of SWITCH decisions and the average
 * projected_hourly_savings, ordered by that average descending (models
 * with no savings figure last), then by name and version.  Averages ignore
 * NULLs, as SQL's avg() does, and are NULL when every value is NULL.
 * Models without logs in the window do not appear; a window whose since
 * is not before its until is empty.
 *
 * Thread safety: a handle (spotdb_db) is used by one thread at a time;
 * returned rows are immutable and may be read from any thread (freed
 * once, by their owner); there is no global initialisation call.
 */
#ifndef SPOTDB_REPORTS_H
#define SPOTDB_REPORTS_H

#include "db.h"
#include "rows.h"

SPOTDB_BEGIN_DECLS

/** @name Column bits of spotdb_model_performance
 *  @{ */
/** Bit of the column the macro's name ends with, in the `nulls` mask of
 *  spotdb_model_performance (one per column, in the report's order). */
#define SPOTDB_MODEL_PERFORMANCE_MODEL_NAME            SPOTDB_COLUMN_BIT(0)
#define SPOTDB_MODEL_PERFORMANCE_MODEL_VERSION         SPOTDB_COLUMN_BIT(1)
#define SPOTDB_MODEL_PERFORMANCE_RUNS                  SPOTDB_COLUMN_BIT(2)
#define SPOTDB_MODEL_PERFORMANCE_AVG_PREDICTION_SCORE  SPOTDB_COLUMN_BIT(3)
#define SPOTDB_MODEL_PERFORMANCE_SWITCH_COUNT          SPOTDB_COLUMN_BIT(4)
#define SPOTDB_MODEL_PERFORMANCE_AVG_PROJECTED_SAVINGS SPOTDB_COLUMN_BIT(5)
/** @} */

/** One model's figures.  The averages are the server's float8 avg():
 *  its sum depends on the order in which rows reach it, so two calls over
 *  the same rows may differ in the last bits when the plan changed
 *  (statistics, a parallel plan) between them. */
typedef struct spotdb_model_performance {
    const char *model_name;         /**< model_registry.name */
    const char *model_version;      /**< model_registry.version */
    int64_t runs;                   /**< logs in the window */
    double avg_prediction_score;    /**< NULL if no log has a score */
    int64_t switch_count;           /**< logs with decision "SWITCH" */
    double avg_projected_savings;   /**< $/hour; NULL if none has one */
    uint64_t nulls;                 /**< SPOTDB_MODEL_PERFORMANCE_* bits */
} spotdb_model_performance;

/** Rows of spotdb_model_performance_list() (next_cursor always NULL);
 *  free them with spotdb_model_performance_rows_free(). */
typedef struct spotdb_model_performance_rows {
    spotdb_model_performance *items; /**< `count` rows */
    size_t count;                   /**< number of rows in `items` */
    const char *next_cursor;        /**< always NULL */
} spotdb_model_performance_rows;

/** The window of spotdb_model_performance_list(). */
typedef struct spotdb_model_performance_filter {
    unsigned int version;    /**< SPOTDB_MODEL_PERFORMANCE_FILTER_VERSION */
    const int64_t *since;    /**< execution_time >= this; NULL: 7 days ago */
    const int64_t *until;    /**< execution_time < this; NULL: no bound */
} spotdb_model_performance_filter;

/** Version of spotdb_model_performance_filter this header describes. */
#define SPOTDB_MODEL_PERFORMANCE_FILTER_VERSION 1
/** Static initialiser of spotdb_model_performance_filter: no filter. */
#define SPOTDB_MODEL_PERFORMANCE_FILTER_INIT \
    { SPOTDB_MODEL_PERFORMANCE_FILTER_VERSION, NULL, NULL }

/**
 * Compare models over a window (default: the last 7 days).
 *
 * @param[out] out the rows (possibly none), or NULL on failure; free them
 *             with spotdb_model_performance_rows_free().
 * @param db open handle.
 * @param filter NULL for the default window.
 * @return 0; SPOTDB_EINVAL for an unknown filter version or a bound out
 *         of the range of timestamps; or a code of every call
 *         (@ref spotdb_common_codes "spotdb/errors.h").
 */
SPOTDB_API int spotdb_model_performance_list(
    spotdb_model_performance_rows **out, spotdb_db *db,
    const spotdb_model_performance_filter *filter);

/**
 * Receives one row of spotdb_model_performance_stream(); see
 * spotdb/rows.h.
 *
 * @param row the row; it and its strings are valid only during the call.
 * @param payload the pointer given to spotdb_model_performance_stream().
 * @return 0 to go on; any other value stops the stream, which returns it.
 */
typedef int (*spotdb_model_performance_cb)(
    const spotdb_model_performance *row, void *payload);

/**
 * The rows of spotdb_model_performance_list(), one at a time (see
 * spotdb/rows.h for the callback's rules).
 *
 * @param db open handle; not to be used from inside `cb`.
 * @param filter NULL for the default window.
 * @param cb called once per row; the row is valid during the call only.
 * @param payload passed to cb.
 * @return 0 after the last row; the callback's value when it stopped;
 *         SPOTDB_EINVAL as for spotdb_model_performance_list(), or for a
 *         NULL `cb`; or a code of every call
 *         (@ref spotdb_common_codes "spotdb/errors.h").
 */
SPOTDB_API int spotdb_model_performance_stream(
    spotdb_db *db, const spotdb_model_performance_filter *filter,
    spotdb_model_performance_cb cb, void *payload);

/**
 * Free rows returned by spotdb_model_performance_list(), with their
 * strings.
 *
 * @param rows the rows; NULL is a no-op.
 */
SPOTDB_API void spotdb_model_performance_rows_free(
    spotdb_model_performance_rows *rows);

SPOTDB_END_DECLS

#endif /* SPOTDB_REPORTS_H */
