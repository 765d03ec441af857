/**
 * @file spotdb/views.h
 * @brief The two views of schema v1, read as typed rows.
 *
 * `v_active_instances` (spotdb_active_instance): instances whose
 * is_active and whose account's is_active are both TRUE, with account and
 * owner.  Quirk kept from schema v1: the model columns come from a LEFT
 * JOIN on `model_registry.version = instances.assigned_model_version`,
 * version only, so when two models share that version string the instance
 * appears twice, once per model; an instance whose version matches no
 * model appears once with model_name and model_version NULL.
 *
 * `v_recent_experiments` (spotdb_recent_experiment): the newest 1000
 * experiment logs by execution_time.  Quirk kept from schema v1: the
 * 1000-row window is inside the view, so a filter sees only those rows:
 * asking for SWITCH decisions returns the SWITCHes among the newest 1000
 * logs, not the newest SWITCHes overall (use spotdb_experiment_log_list()
 * for that).
 *
 * Thread safety: a handle (spotdb_db) is used by one thread at a time;
 * returned rows are immutable and may be read from any thread (freed
 * once, by their owner); there is no global initialisation call.
 */
#ifndef SPOTDB_VIEWS_H
#define SPOTDB_VIEWS_H

#include "db.h"
#include "rows.h"

SPOTDB_BEGIN_DECLS

/** @name Column bits of spotdb_active_instance
 *  @{ */
/** Bit of the column the macro's name ends with, in the `nulls` mask of
 *  spotdb_active_instance (one per column, in the view's order). */
#define SPOTDB_ACTIVE_INSTANCE_ID                     SPOTDB_COLUMN_BIT(0)
#define SPOTDB_ACTIVE_INSTANCE_INSTANCE_ID            SPOTDB_COLUMN_BIT(1)
#define SPOTDB_ACTIVE_INSTANCE_INSTANCE_TYPE          SPOTDB_COLUMN_BIT(2)
#define SPOTDB_ACTIVE_INSTANCE_AVAILABILITY_ZONE      SPOTDB_COLUMN_BIT(3)
#define SPOTDB_ACTIVE_INSTANCE_PIPELINE_MODE          SPOTDB_COLUMN_BIT(4)
#define SPOTDB_ACTIVE_INSTANCE_IS_SHADOW_MODE         SPOTDB_COLUMN_BIT(5)
#define SPOTDB_ACTIVE_INSTANCE_ASSIGNED_MODEL_VERSION SPOTDB_COLUMN_BIT(6)
#define SPOTDB_ACTIVE_INSTANCE_LAST_EVALUATION        SPOTDB_COLUMN_BIT(7)
#define SPOTDB_ACTIVE_INSTANCE_AWS_ACCOUNT_ID         SPOTDB_COLUMN_BIT(8)
#define SPOTDB_ACTIVE_INSTANCE_ACCOUNT_NAME           SPOTDB_COLUMN_BIT(9)
#define SPOTDB_ACTIVE_INSTANCE_ENVIRONMENT_TYPE       SPOTDB_COLUMN_BIT(10)
#define SPOTDB_ACTIVE_INSTANCE_REGION                 SPOTDB_COLUMN_BIT(11)
#define SPOTDB_ACTIVE_INSTANCE_USER_EMAIL             SPOTDB_COLUMN_BIT(12)
#define SPOTDB_ACTIVE_INSTANCE_USERNAME               SPOTDB_COLUMN_BIT(13)
#define SPOTDB_ACTIVE_INSTANCE_MODEL_NAME             SPOTDB_COLUMN_BIT(14)
#define SPOTDB_ACTIVE_INSTANCE_MODEL_VERSION          SPOTDB_COLUMN_BIT(15)
/** @} */

/** A row of `v_active_instances`. */
typedef struct spotdb_active_instance {
    char id[SPOTDB_UUID_SIZE];         /**< instances.id */
    const char *instance_id;           /**< the EC2 id */
    const char *instance_type;         /**< instances.instance_type */
    const char *availability_zone;     /**< instances.availability_zone */
    const char *pipeline_mode;         /**< "CLUSTER" or "LINEAR" */
    bool is_shadow_mode;               /**< instances.is_shadow_mode */
    const char *assigned_model_version;/**< NULL: the default model */
    int64_t last_evaluation;           /**< last optimizer run */
    const char *aws_account_id;        /**< accounts.account_id */
    const char *account_name;          /**< accounts.account_name */
    const char *environment_type;      /**< "PROD" or "LAB" */
    const char *region;                /**< accounts.region */
    const char *user_email;            /**< users.email of the owner */
    const char *username;              /**< users.username of the owner */
    const char *model_name;            /**< NULL when no model matched */
    const char *model_version;         /**< NULL when no model matched */
    uint64_t nulls;                    /**< SPOTDB_ACTIVE_INSTANCE_* bits */
} spotdb_active_instance;

/** Rows of spotdb_active_instance_list() (never paged: next_cursor is
 *  always NULL); free them with spotdb_active_instance_rows_free(). */
typedef struct spotdb_active_instance_rows {
    spotdb_active_instance *items;     /**< `count` rows */
    size_t count;                      /**< number of rows in `items` */
    const char *next_cursor;           /**< always NULL */
} spotdb_active_instance_rows;

/** Filters of spotdb_active_instance_list(); NULL members do not filter. */
typedef struct spotdb_active_instance_filter {
    unsigned int version;         /**< SPOTDB_ACTIVE_INSTANCE_FILTER_VERSION */
    const char *environment_type; /**< "PROD" or "LAB" */
} spotdb_active_instance_filter;

/** Version of spotdb_active_instance_filter this header describes. */
#define SPOTDB_ACTIVE_INSTANCE_FILTER_VERSION 1
/** Static initialiser of spotdb_active_instance_filter: no filter. */
#define SPOTDB_ACTIVE_INSTANCE_FILTER_INIT \
    { SPOTDB_ACTIVE_INSTANCE_FILTER_VERSION, NULL }

/**
 * Active instances, newest evaluation first (last_evaluation descending,
 * never-evaluated instances last, then by id ascending, then the rows of
 * one instance by model_name).  A filter on a boolean matches only rows
 * that hold that value, never NULL ones.
 *
 * @param[out] out the rows (possibly none), or NULL on failure; free them
 *             with spotdb_active_instance_rows_free().
 * @param db open handle.
 * @param filter NULL for every environment.
 * @param limit at most this many rows; 0 for all.
 * @return 0; SPOTDB_EINVAL for a bad filter value or a negative limit; or
 *         a code of every call (@ref spotdb_common_codes "spotdb/errors.h").
 */
SPOTDB_API int spotdb_active_instance_list(
    spotdb_active_instance_rows **out, spotdb_db *db,
    const spotdb_active_instance_filter *filter, int32_t limit);

/**
 * Receives one row of spotdb_active_instance_stream(); see spotdb/rows.h.
 *
 * @param row the row; it and its strings are valid only during the call.
 * @param payload the pointer given to spotdb_active_instance_stream().
 * @return 0 to go on; any other value stops the stream, which returns it.
 */
typedef int (*spotdb_active_instance_cb)(const spotdb_active_instance *row,
                                         void *payload);

/**
 * The rows of spotdb_active_instance_list(), one at a time, in constant
 * memory (see spotdb/rows.h for the callback's rules).
 *
 * @param db open handle; not to be used from inside `cb`.
 * @param filter NULL for every environment.
 * @param limit at most this many rows; 0 for all.
 * @param cb called once per row; the row is valid during the call only.
 * @param payload passed to cb.
 * @return 0 after the last row; the callback's value when it stopped;
 *         SPOTDB_EINVAL for a bad filter value, a negative limit or a
 *         NULL `cb`; or a code of every call
 *         (@ref spotdb_common_codes "spotdb/errors.h").
 */
SPOTDB_API int spotdb_active_instance_stream(
    spotdb_db *db, const spotdb_active_instance_filter *filter,
    int32_t limit, spotdb_active_instance_cb cb, void *payload);

/**
 * Free rows returned by spotdb_active_instance_list(), with their strings.
 *
 * @param rows the rows; NULL is a no-op.
 */
SPOTDB_API void spotdb_active_instance_rows_free(
    spotdb_active_instance_rows *rows);

/** @name Column bits of spotdb_recent_experiment
 *  @{ */
/** Bit of the column the macro's name ends with, in the `nulls` mask of
 *  spotdb_recent_experiment (one per column, in the view's order). */
#define SPOTDB_RECENT_EXPERIMENT_ID                       SPOTDB_COLUMN_BIT(0)
#define SPOTDB_RECENT_EXPERIMENT_EXECUTION_TIME           SPOTDB_COLUMN_BIT(1)
#define SPOTDB_RECENT_EXPERIMENT_DECISION                 SPOTDB_COLUMN_BIT(2)
#define SPOTDB_RECENT_EXPERIMENT_PREDICTION_SCORE         SPOTDB_COLUMN_BIT(3)
#define SPOTDB_RECENT_EXPERIMENT_IS_SHADOW_RUN            SPOTDB_COLUMN_BIT(4)
#define SPOTDB_RECENT_EXPERIMENT_EXECUTION_DURATION_MS    SPOTDB_COLUMN_BIT(5)
#define SPOTDB_RECENT_EXPERIMENT_INSTANCE_ID              SPOTDB_COLUMN_BIT(6)
#define SPOTDB_RECENT_EXPERIMENT_INSTANCE_TYPE            SPOTDB_COLUMN_BIT(7)
#define SPOTDB_RECENT_EXPERIMENT_PIPELINE_MODE            SPOTDB_COLUMN_BIT(8)
#define SPOTDB_RECENT_EXPERIMENT_AWS_ACCOUNT_ID           SPOTDB_COLUMN_BIT(9)
#define SPOTDB_RECENT_EXPERIMENT_ACCOUNT_NAME             SPOTDB_COLUMN_BIT(10)
#define SPOTDB_RECENT_EXPERIMENT_MODEL_NAME               SPOTDB_COLUMN_BIT(11)
#define SPOTDB_RECENT_EXPERIMENT_MODEL_VERSION            SPOTDB_COLUMN_BIT(12)
#define SPOTDB_RECENT_EXPERIMENT_SELECTED_INSTANCE_TYPE   SPOTDB_COLUMN_BIT(13)
#define SPOTDB_RECENT_EXPERIMENT_PROJECTED_HOURLY_SAVINGS SPOTDB_COLUMN_BIT(14)
/** @} */

/** A row of `v_recent_experiments`. */
typedef struct spotdb_recent_experiment {
    char id[SPOTDB_UUID_SIZE];         /**< experiment_logs.id */
    int64_t execution_time;            /**< when the decision was made */
    const char *decision;              /**< "SWITCH", "STAY", ... */
    double prediction_score;           /**< crash probability, 0 to 1 */
    bool is_shadow_run;                /**< a shadow (read-only) run */
    int32_t execution_duration_ms;     /**< how long the run took, ms */
    const char *instance_id;           /**< the EC2 id (instances.instance_id) */
    const char *instance_type;         /**< instances.instance_type */
    const char *pipeline_mode;         /**< instances.pipeline_mode */
    const char *aws_account_id;        /**< accounts.account_id */
    const char *account_name;          /**< accounts.account_name */
    const char *model_name;            /**< NULL when the log has no model */
    const char *model_version;         /**< NULL when the log has no model */
    const char *selected_instance_type;/**< target of a SWITCH */
    double projected_hourly_savings;   /**< $/hour */
    uint64_t nulls;                    /**< SPOTDB_RECENT_EXPERIMENT_* bits */
} spotdb_recent_experiment;

/** Rows of spotdb_recent_experiment_list() (next_cursor always NULL);
 *  free them with spotdb_recent_experiment_rows_free(). */
typedef struct spotdb_recent_experiment_rows {
    spotdb_recent_experiment *items;   /**< `count` rows */
    size_t count;                      /**< number of rows in `items` */
    const char *next_cursor;           /**< always NULL */
} spotdb_recent_experiment_rows;

/** Filters of spotdb_recent_experiment_list(); NULL members do not filter. */
typedef struct spotdb_recent_experiment_filter {
    unsigned int version;      /**< SPOTDB_RECENT_EXPERIMENT_FILTER_VERSION */
    const char *decision;      /**< "SWITCH", "STAY", "FALLBACK_ONDEMAND" */
    const bool *is_shadow_run; /**< only rows with this is_shadow_run */
} spotdb_recent_experiment_filter;

/** Version of spotdb_recent_experiment_filter this header describes. */
#define SPOTDB_RECENT_EXPERIMENT_FILTER_VERSION 1
/** Static initialiser of spotdb_recent_experiment_filter: no filter. */
#define SPOTDB_RECENT_EXPERIMENT_FILTER_INIT \
    { SPOTDB_RECENT_EXPERIMENT_FILTER_VERSION, NULL, NULL }

/**
 * Recent experiments, newest first (execution_time, then id, descending),
 * from the view's 1000-row window.  The documented "recent real switches"
 * query is decision "SWITCH", is_shadow_run false, limit 10.
 *
 * @param[out] out the rows (possibly none), or NULL on failure; free them
 *             with spotdb_recent_experiment_rows_free().
 * @param db open handle.
 * @param filter NULL for all.
 * @param limit at most this many rows; 0 for all (at most 1000).
 * @return 0; SPOTDB_EINVAL for a bad filter value or a negative limit; or
 *         a code of every call (@ref spotdb_common_codes "spotdb/errors.h").
 */
SPOTDB_API int spotdb_recent_experiment_list(
    spotdb_recent_experiment_rows **out, spotdb_db *db,
    const spotdb_recent_experiment_filter *filter, int32_t limit);

/**
 * Receives one row of spotdb_recent_experiment_stream(); see
 * spotdb/rows.h.
 *
 * @param row the row; it and its strings are valid only during the call.
 * @param payload the pointer given to spotdb_recent_experiment_stream().
 * @return 0 to go on; any other value stops the stream, which returns it.
 */
typedef int (*spotdb_recent_experiment_cb)(
    const spotdb_recent_experiment *row, void *payload);

/**
 * The rows of spotdb_recent_experiment_list(), one at a time, in constant
 * memory (see spotdb/rows.h for the callback's rules).
 *
 * @param db open handle; not to be used from inside `cb`.
 * @param filter NULL for all.
 * @param limit at most this many rows; 0 for all (at most 1000).
 * @param cb called once per row; the row is valid during the call only.
 * @param payload passed to cb.
 * @return 0 after the last row; the callback's value when it stopped;
 *         SPOTDB_EINVAL for a bad filter value, a negative limit or a
 *         NULL `cb`; or a code of every call
 *         (@ref spotdb_common_codes "spotdb/errors.h").
 */
SPOTDB_API int spotdb_recent_experiment_stream(
    spotdb_db *db, const spotdb_recent_experiment_filter *filter,
    int32_t limit, spotdb_recent_experiment_cb cb, void *payload);

/**
 * Free rows returned by spotdb_recent_experiment_list(), with their
 * strings.
 *
 * @param rows the rows; NULL is a no-op.
 */
SPOTDB_API void spotdb_recent_experiment_rows_free(
    spotdb_recent_experiment_rows *rows);

SPOTDB_END_DECLS

#endif /* SPOTDB_VIEWS_H */
