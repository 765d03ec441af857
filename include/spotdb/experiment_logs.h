/**
 * @file spotdb/experiment_logs.h
 * @brief One row per optimizer decision (table `experiment_logs`).
 *
 * Validation before any round trip: instance_id and model_id UUIDs;
 * pipeline_mode "CLUSTER" or "LINEAR"; decision "SWITCH", "STAY" or
 * "FALLBACK_ONDEMAND" (schema v1 has no CHECK for either, the library
 * enforces them); prediction_score within [0, 1] and finite; prices and
 * savings finite; selected_instance_type and selected_availability_zone
 * up to 20 characters; features_used valid JSON (checked with json-c
 * before sending; what jsonb still refuses, such as `\u0000` or the
 * single-quoted strings json-c lets through, comes back from the server
 * as SPOTDB_EINVAL naming the column).  instance_id must exist
 * (`experiment_logs_instance_id_fkey`), model_id too
 * (`experiment_logs_model_id_fkey`).
 *
 * Thread safety: a handle (spotdb_db) is used by one thread at a time;
 * returned rows are immutable and may be read from any thread (freed
 * once, by their owner); there is no global initialisation call.
 */
#ifndef SPOTDB_EXPERIMENT_LOGS_H
#define SPOTDB_EXPERIMENT_LOGS_H

#include "db.h"
#include "rows.h"

SPOTDB_BEGIN_DECLS

/** @name Column bits of spotdb_experiment_log
 *  @{ */
/** Bit of the column the macro's name ends with, in the `fields` and
 *  `nulls` masks of spotdb_experiment_log (one per column, in table
 *  order). */
#define SPOTDB_EXPERIMENT_LOG_ID                         SPOTDB_COLUMN_BIT(0)
#define SPOTDB_EXPERIMENT_LOG_INSTANCE_ID                SPOTDB_COLUMN_BIT(1)
#define SPOTDB_EXPERIMENT_LOG_MODEL_ID                   SPOTDB_COLUMN_BIT(2)
#define SPOTDB_EXPERIMENT_LOG_PIPELINE_MODE              SPOTDB_COLUMN_BIT(3)
#define SPOTDB_EXPERIMENT_LOG_IS_SHADOW_RUN              SPOTDB_COLUMN_BIT(4)
#define SPOTDB_EXPERIMENT_LOG_PREDICTION_SCORE           SPOTDB_COLUMN_BIT(5)
#define SPOTDB_EXPERIMENT_LOG_DECISION                   SPOTDB_COLUMN_BIT(6)
#define SPOTDB_EXPERIMENT_LOG_DECISION_REASON            SPOTDB_COLUMN_BIT(7)
#define SPOTDB_EXPERIMENT_LOG_EXECUTION_TIME             SPOTDB_COLUMN_BIT(8)
#define SPOTDB_EXPERIMENT_LOG_EXECUTION_DURATION_MS      SPOTDB_COLUMN_BIT(9)
#define SPOTDB_EXPERIMENT_LOG_CANDIDATES_EVALUATED       SPOTDB_COLUMN_BIT(10)
#define SPOTDB_EXPERIMENT_LOG_SELECTED_INSTANCE_TYPE     SPOTDB_COLUMN_BIT(11)
#define SPOTDB_EXPERIMENT_LOG_SELECTED_AVAILABILITY_ZONE SPOTDB_COLUMN_BIT(12)
#define SPOTDB_EXPERIMENT_LOG_OLD_SPOT_PRICE             SPOTDB_COLUMN_BIT(13)
#define SPOTDB_EXPERIMENT_LOG_NEW_SPOT_PRICE             SPOTDB_COLUMN_BIT(14)
#define SPOTDB_EXPERIMENT_LOG_PROJECTED_HOURLY_SAVINGS   SPOTDB_COLUMN_BIT(15)
#define SPOTDB_EXPERIMENT_LOG_FEATURES_USED              SPOTDB_COLUMN_BIT(16)
#define SPOTDB_EXPERIMENT_LOG_ERROR_MESSAGE              SPOTDB_COLUMN_BIT(17)
/** @} */

/** A row of `experiment_logs`. */
typedef struct spotdb_experiment_log {
    char id[SPOTDB_UUID_SIZE];          /**< default uuid_generate_v4() */
    char instance_id[SPOTDB_UUID_SIZE]; /**< NOT NULL, instances.id */
    char model_id[SPOTDB_UUID_SIZE];    /**< model_registry.id, or "" */
    const char *pipeline_mode;          /**< "CLUSTER" or "LINEAR" */
    bool is_shadow_run;                 /**< default false */
    double prediction_score;            /**< crash probability, 0 to 1 */
    const char *decision;               /**< "SWITCH", "STAY", "FALLBACK_ONDEMAND" */
    const char *decision_reason;        /**< free text */
    int64_t execution_time;             /**< NOT NULL, default now */
    int32_t execution_duration_ms;      /**< how long the run took, ms */
    int32_t candidates_evaluated;       /**< spot pools evaluated */
    const char *selected_instance_type; /**< target of a SWITCH */
    const char *selected_availability_zone; /**< zone of that target */
    double old_spot_price;              /**< $/hour */
    double new_spot_price;              /**< $/hour */
    double projected_hourly_savings;    /**< $/hour */
    const char *features_used;          /**< JSON text */
    const char *error_message;          /**< set when the pipeline failed */
    uint64_t nulls;                     /**< SPOTDB_EXPERIMENT_LOG_* bits */
} spotdb_experiment_log;

/** A page of experiment logs, from spotdb_experiment_log_list(); free it
 *  with spotdb_experiment_log_rows_free(), which frees the rows and their
 *  strings. */
typedef struct spotdb_experiment_log_rows {
    spotdb_experiment_log *items;       /**< `count` rows */
    size_t count;                       /**< number of rows in `items` */
    const char *next_cursor;            /**< NULL after the last page */
} spotdb_experiment_log_rows;

/** Filters of spotdb_experiment_log_list(); NULL members do not filter. */
typedef struct spotdb_experiment_log_filter {
    unsigned int version;          /**< SPOTDB_EXPERIMENT_LOG_FILTER_VERSION */
    const char *instance_id;       /**< instances.id */
    const char *model_id;          /**< model_registry.id */
    const char *decision;          /**< "SWITCH", "STAY", "FALLBACK_ONDEMAND" */
    const bool *is_shadow_run;     /**< only rows with this is_shadow_run */
    const int64_t *executed_from;  /**< execution_time >= this */
    const int64_t *executed_before;/**< execution_time < this */
} spotdb_experiment_log_filter;

/** Version of spotdb_experiment_log_filter this header describes. */
#define SPOTDB_EXPERIMENT_LOG_FILTER_VERSION 1
/** Static initialiser of spotdb_experiment_log_filter: no filter. */
#define SPOTDB_EXPERIMENT_LOG_FILTER_INIT \
    { SPOTDB_EXPERIMENT_LOG_FILTER_VERSION, NULL, NULL, NULL, NULL, NULL, NULL }

/**
 * Log a decision.  `fields` must include INSTANCE_ID.
 *
 * @param[out] out the stored row (defaults filled in), or NULL when not
 *             wanted; free with spotdb_experiment_log_free().  NULL on
 *             failure.
 * @param db open handle.
 * @param in the values; only the columns in `fields` are read.
 * @param fields SPOTDB_EXPERIMENT_LOG_* bits of the columns to write.
 * @return 0; SPOTDB_EINVAL naming the field and rule (features_used that
 *         jsonb refuses included); SPOTDB_EREFERENCE (instance or model);
 *         or a code of every call
 *         (@ref spotdb_common_codes "spotdb/errors.h").
 */
SPOTDB_API int spotdb_experiment_log_create(spotdb_experiment_log **out,
                                            spotdb_db *db,
                                            const spotdb_experiment_log *in,
                                            uint64_t fields);

/**
 * Read a log by id.
 *
 * @param[out] out the row, or NULL on failure; it belongs to the caller,
 *             who frees it with spotdb_experiment_log_free().  Must not be
 *             NULL.
 * @param db open handle.
 * @param id the UUID.
 * @return 0; SPOTDB_ENOTFOUND; SPOTDB_EINVAL for a malformed UUID; or a
 *         code of every call (@ref spotdb_common_codes "spotdb/errors.h").
 */
SPOTDB_API int spotdb_experiment_log_get(spotdb_experiment_log **out,
                                         spotdb_db *db, const char *id);

/**
 * Change the columns in `fields` (at least one; not ID).
 *
 * @param[out] out the row as stored, or NULL if not wanted; free with
 *             spotdb_experiment_log_free().
 * @param db open handle.
 * @param id the log to change.
 * @param in the new values; only the columns in `fields` are read.
 * @param fields SPOTDB_EXPERIMENT_LOG_* bits of the columns to write.
 * @return 0; SPOTDB_EINVAL (also for an empty `fields`);
 *         SPOTDB_ENOTFOUND; SPOTDB_EREFERENCE; or a code of every call
 *         (@ref spotdb_common_codes "spotdb/errors.h").
 */
SPOTDB_API int spotdb_experiment_log_update(spotdb_experiment_log **out,
                                            spotdb_db *db, const char *id,
                                            const spotdb_experiment_log *in,
                                            uint64_t fields);

/**
 * Delete a log.
 *
 * @param db open handle.
 * @param id the log's UUID.
 * @return 0; SPOTDB_ENOTFOUND; SPOTDB_EINVAL for a malformed UUID; or a
 *         code of every call (@ref spotdb_common_codes "spotdb/errors.h").
 */
SPOTDB_API int spotdb_experiment_log_delete(spotdb_db *db, const char *id);

/**
 * A page of logs, newest first (execution_time, then id, descending).
 *
 * @param[out] out the page (possibly empty), or NULL on failure; free it
 *             with spotdb_experiment_log_rows_free().
 * @param db open handle.
 * @param filter NULL for all logs.
 * @param cursor NULL, or a previous page's next_cursor.
 * @param limit 0 for SPOTDB_DEFAULT_LIMIT, at most SPOTDB_MAX_LIMIT.
 * @return 0; SPOTDB_EINVAL for a bad filter, cursor or limit; or a code
 *         of every call (@ref spotdb_common_codes "spotdb/errors.h").
 */
SPOTDB_API int spotdb_experiment_log_list(
    spotdb_experiment_log_rows **out, spotdb_db *db,
    const spotdb_experiment_log_filter *filter, const char *cursor,
    int32_t limit);

/**
 * Number of logs the filter selects.
 *
 * @param[out] out the count; 0 on failure.
 * @param db open handle.
 * @param filter NULL to count every log.
 * @return 0; SPOTDB_EINVAL for a bad filter; or a code of every call
 *         (@ref spotdb_common_codes "spotdb/errors.h").
 */
SPOTDB_API int spotdb_experiment_log_count(
    int64_t *out, spotdb_db *db, const spotdb_experiment_log_filter *filter);

/**
 * Store `n` rows in one statement (COPY in binary format): all of them,
 * or none when any is refused.  Every row is validated first, so a bad
 * value costs no round trip; JSON alone is left to the server, whose
 * refusal names the row and the column as well.  The columns in `fields` are written from
 * each row and the others take their defaults, as for create; `fields`
 * must include SPOTDB_EXPERIMENT_LOG_INSTANCE_ID.  Inside a transaction the rows commit with it;
 * otherwise the COPY is its own transaction.
 *
 * @param db open handle.
 * @param rows `n` rows.
 * @param n number of rows (0 is a no-op).
 * @param fields column bits written from each row.
 * @param[out] ids NULL, or room for `n` ids, which receive each stored
 *             row's id (generated here, as version 4 UUIDs, when ID is
 *             not in `fields`).
 * @param[out] bad_row NULL, or the index of the row that was refused, -1
 *             when the failure is not one row's (or on success).
 * @return 0 when all `n` rows are stored (the count is always n or 0);
 *         SPOTDB_EINVAL naming the row, field and rule;
 *         SPOTDB_EREFERENCE, SPOTDB_ECONFLICT naming the row when the
 *         server's detail identifies it; SPOTDB_ERROR when no random
 *         bytes can be had for the ids; or a code of every call
 *         (@ref spotdb_common_codes "spotdb/errors.h").
 */
SPOTDB_API int spotdb_experiment_log_insert_many(spotdb_db *db,
                                        const spotdb_experiment_log *rows,
                                        size_t n, uint64_t fields,
                                        char (*ids)[SPOTDB_UUID_SIZE],
                                        int64_t *bad_row);

/**
 * Receives one row of spotdb_experiment_log_stream(); see spotdb/rows.h.
 *
 * @param row the row; it and its strings are valid only during the call.
 * @param payload the pointer given to spotdb_experiment_log_stream().
 * @return 0 to go on; any other value stops the stream, which returns it.
 */
typedef int (*spotdb_experiment_log_cb)(const spotdb_experiment_log *row, void *payload);

/**
 * Every experiment_log the filter selects, in the order of spotdb_experiment_log_list(), one
 * at a time, in constant memory.
 *
 * @param db open handle; not to be used from inside `cb`.
 * @param filter NULL for all.
 * @param cb called once per row; the row is valid during the call only.
 * @param payload passed to cb.
 * @return 0 after the last row; the callback's value when it stopped the
 *         stream; SPOTDB_EINVAL for a bad filter or a NULL `cb`; or a code
 *         of every call (@ref spotdb_common_codes "spotdb/errors.h").
 */
SPOTDB_API int spotdb_experiment_log_stream(spotdb_db *db,
                                   const spotdb_experiment_log_filter *filter,
                                   spotdb_experiment_log_cb cb, void *payload);

/**
 * Free a row returned by the library, with its strings.
 *
 * @param row the row; NULL is a no-op.
 */
SPOTDB_API void spotdb_experiment_log_free(spotdb_experiment_log *row);
/**
 * Free a page returned by spotdb_experiment_log_list(), with its rows,
 * their strings and its cursor.
 *
 * @param rows the page; NULL is a no-op.
 */
SPOTDB_API void spotdb_experiment_log_rows_free(
    spotdb_experiment_log_rows *rows);

SPOTDB_END_DECLS

#endif /* SPOTDB_EXPERIMENT_LOGS_H */
