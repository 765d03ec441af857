/**
 * @file spotdb/models.h
 * @brief ML model versions (table `model_registry`).
 *
 * Validation before any round trip: name 1..50 characters; version 1..20;
 * s3_path and local_path up to 255; feature_version up to 20; created_by a
 * UUID.  Unique key: (name, version), constraint `uq_model_version`.
 * created_by must be an existing user (`model_registry_created_by_fkey`,
 * no cascade).  A model still referenced by experiment logs cannot be
 * deleted (SPOTDB_EREFERENCE).
 *
 * Note that instances name their model by version string only
 * (instances.assigned_model_version); see spotdb/views.h.
 *
 * Thread safety: a handle (spotdb_db) is used by one thread at a time;
 * returned rows are immutable and may be read from any thread (freed
 * once, by their owner); there is no global initialisation call.
 */
#ifndef SPOTDB_MODELS_H
#define SPOTDB_MODELS_H

#include "db.h"
#include "rows.h"

SPOTDB_BEGIN_DECLS

/** @name Column bits of spotdb_model
 *  @{ */
/** Bit of the column the macro's name ends with, in the `fields` and
 *  `nulls` masks of spotdb_model (one per column, in table order). */
#define SPOTDB_MODEL_ID              SPOTDB_COLUMN_BIT(0)
#define SPOTDB_MODEL_NAME            SPOTDB_COLUMN_BIT(1)
#define SPOTDB_MODEL_VERSION         SPOTDB_COLUMN_BIT(2)
#define SPOTDB_MODEL_S3_PATH         SPOTDB_COLUMN_BIT(3)
#define SPOTDB_MODEL_LOCAL_PATH      SPOTDB_COLUMN_BIT(4)
#define SPOTDB_MODEL_DESCRIPTION     SPOTDB_COLUMN_BIT(5)
#define SPOTDB_MODEL_IS_EXPERIMENTAL SPOTDB_COLUMN_BIT(6)
#define SPOTDB_MODEL_IS_ACTIVE       SPOTDB_COLUMN_BIT(7)
#define SPOTDB_MODEL_FEATURE_VERSION SPOTDB_COLUMN_BIT(8)
#define SPOTDB_MODEL_CREATED_AT      SPOTDB_COLUMN_BIT(9)
#define SPOTDB_MODEL_CREATED_BY      SPOTDB_COLUMN_BIT(10)
/** @} */

/** A row of `model_registry`. */
typedef struct spotdb_model {
    char id[SPOTDB_UUID_SIZE];         /**< default uuid_generate_v4() */
    const char *name;                  /**< NOT NULL, e.g. "FamilyStressPredictor" */
    const char *version;               /**< NOT NULL, e.g. "v2.1.0" */
    const char *s3_path;               /**< s3://bucket/key */
    const char *local_path;            /**< filesystem path */
    const char *description;           /**< free text */
    bool is_experimental;              /**< default false (true: lab only) */
    bool is_active;                    /**< default true (false: archived) */
    const char *feature_version;       /**< e.g. "v2.0" */
    int64_t created_at;                /**< NOT NULL, default now */
    char created_by[SPOTDB_UUID_SIZE]; /**< users.id, or "" */
    uint64_t nulls;                    /**< SPOTDB_MODEL_* bits of NULLs */
} spotdb_model;

/** A page of models, from spotdb_model_list(); free it with
 *  spotdb_model_rows_free(), which frees the rows and their strings. */
typedef struct spotdb_model_rows {
    spotdb_model *items;               /**< `count` rows */
    size_t count;                      /**< number of rows in `items` */
    const char *next_cursor;           /**< NULL after the last page */
} spotdb_model_rows;

/** Filters of spotdb_model_list(); NULL members do not filter. */
typedef struct spotdb_model_filter {
    unsigned int version;              /**< SPOTDB_MODEL_FILTER_VERSION (the
                                            struct's layout, not a model
                                            version) */
    const char *name;                  /**< only models of this name */
    const bool *is_active;             /**< only rows with this is_active */
} spotdb_model_filter;

/** Version of spotdb_model_filter this header describes. */
#define SPOTDB_MODEL_FILTER_VERSION 1
/** Static initialiser of spotdb_model_filter: no filter. */
#define SPOTDB_MODEL_FILTER_INIT { SPOTDB_MODEL_FILTER_VERSION, NULL, NULL }

/**
 * Register a model version.  `fields` must include NAME and VERSION.
 *
 * @param[out] out the stored row (defaults filled in), or NULL when not
 *             wanted; free with spotdb_model_free().  NULL on failure.
 * @param db open handle.
 * @param in the values; only the columns in `fields` are read.
 * @param fields SPOTDB_MODEL_* bits of the columns to write.
 * @return 0; SPOTDB_EINVAL naming the field and rule; SPOTDB_ECONFLICT
 *         (uq_model_version); SPOTDB_EREFERENCE (created_by); or a code of
 *         every call (@ref spotdb_common_codes "spotdb/errors.h").
 */
SPOTDB_API int spotdb_model_create(spotdb_model **out, spotdb_db *db,
                                   const spotdb_model *in, uint64_t fields);

/**
 * Read a model by id.
 *
 * @param[out] out the row, or NULL on failure; it belongs to the caller,
 *             who frees it with spotdb_model_free().  Must not be NULL.
 * @param db open handle.
 * @param id the UUID.
 * @return 0; SPOTDB_ENOTFOUND; SPOTDB_EINVAL for a malformed UUID; or a
 *         code of every call (@ref spotdb_common_codes "spotdb/errors.h").
 */
SPOTDB_API int spotdb_model_get(spotdb_model **out, spotdb_db *db,
                                const char *id);

/**
 * Read a model by its unique (name, version).
 *
 * @param[out] out the row, or NULL on failure; free it with
 *             spotdb_model_free().
 * @param db open handle.
 * @param name the model's name, e.g. "FamilyStressPredictor".
 * @param version its version string, e.g. "v2.1.0".
 * @return as spotdb_model_get(); SPOTDB_EINVAL also for a name or version
 *         that breaks its column's rules.
 */
SPOTDB_API int spotdb_model_get_by_name_version(spotdb_model **out,
                                                spotdb_db *db,
                                                const char *name,
                                                const char *version);

/**
 * Change the columns in `fields` (at least one; not ID).
 *
 * @param[out] out the row as stored, or NULL if not wanted; free with
 *             spotdb_model_free().
 * @param db open handle.
 * @param id the model to change.
 * @param in the new values; only the columns in `fields` are read.
 * @param fields SPOTDB_MODEL_* bits of the columns to write.
 * @return 0; SPOTDB_EINVAL (also for an empty `fields`);
 *         SPOTDB_ENOTFOUND; SPOTDB_ECONFLICT; SPOTDB_EREFERENCE; or a code
 *         of every call (@ref spotdb_common_codes "spotdb/errors.h").
 */
SPOTDB_API int spotdb_model_update(spotdb_model **out, spotdb_db *db,
                                   const char *id, const spotdb_model *in,
                                   uint64_t fields);

/**
 * Delete a model.
 *
 * @param db open handle.
 * @param id the model's UUID.
 * @return 0; SPOTDB_ENOTFOUND; SPOTDB_EREFERENCE while experiment logs
 *         name it; SPOTDB_EINVAL for a malformed UUID; or a code of every
 *         call (@ref spotdb_common_codes "spotdb/errors.h").
 */
SPOTDB_API int spotdb_model_delete(spotdb_db *db, const char *id);

/**
 * A page of models in creation order (created_at, then id).
 *
 * @param[out] out the page (possibly empty), or NULL on failure; free it
 *             with spotdb_model_rows_free().
 * @param db open handle.
 * @param filter NULL for all models.
 * @param cursor NULL, or a previous page's next_cursor.
 * @param limit 0 for SPOTDB_DEFAULT_LIMIT, at most SPOTDB_MAX_LIMIT.
 * @return 0; SPOTDB_EINVAL for a bad filter, cursor or limit; or a code
 *         of every call (@ref spotdb_common_codes "spotdb/errors.h").
 */
SPOTDB_API int spotdb_model_list(spotdb_model_rows **out, spotdb_db *db,
                                 const spotdb_model_filter *filter,
                                 const char *cursor, int32_t limit);

/**
 * Number of models the filter selects.
 *
 * @param[out] out the count; 0 on failure.
 * @param db open handle.
 * @param filter NULL to count every model.
 * @return 0; SPOTDB_EINVAL for a bad filter; or a code of every call
 *         (@ref spotdb_common_codes "spotdb/errors.h").
 */
SPOTDB_API int spotdb_model_count(int64_t *out, spotdb_db *db,
                                  const spotdb_model_filter *filter);

/**
 * Receives one row of spotdb_model_stream(); see spotdb/rows.h.
 *
 * @param row the row; it and its strings are valid only during the call.
 * @param payload the pointer given to spotdb_model_stream().
 * @return 0 to go on; any other value stops the stream, which returns it.
 */
typedef int (*spotdb_model_cb)(const spotdb_model *row, void *payload);

/**
 * Every model the filter selects, in the order of spotdb_model_list(), one
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
SPOTDB_API int spotdb_model_stream(spotdb_db *db,
                                   const spotdb_model_filter *filter,
                                   spotdb_model_cb cb, void *payload);

/**
 * Free a row returned by the library, with its strings.
 *
 * @param row the row; NULL is a no-op.
 */
SPOTDB_API void spotdb_model_free(spotdb_model *row);
/**
 * Free a page returned by spotdb_model_list(), with its rows, their
 * strings and its cursor.
 *
 * @param rows the page; NULL is a no-op.
 */
SPOTDB_API void spotdb_model_rows_free(spotdb_model_rows *rows);

SPOTDB_END_DECLS

#endif /* SPOTDB_MODELS_H */
