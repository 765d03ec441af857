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
 * Thread safety: one thread at a time per handle; rows are immutable.
 */
#ifndef SPOTDB_MODELS_H
#define SPOTDB_MODELS_H

#include "db.h"
#include "rows.h"

SPOTDB_BEGIN_DECLS

/** Column bits of spotdb_model, for `fields` and `nulls`. */
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

/** A row of `model_registry`. */
typedef struct spotdb_model {
    char id[SPOTDB_UUID_SIZE];         /**< default uuid_generate_v4() */
    const char *name;                  /**< NOT NULL, e.g. "FamilyStressPredictor" */
    const char *version;               /**< NOT NULL, e.g. "v2.1.0" */
    const char *s3_path;               /**< s3://bucket/key */
    const char *local_path;
    const char *description;
    bool is_experimental;              /**< default false (true: lab only) */
    bool is_active;                    /**< default true (false: archived) */
    const char *feature_version;       /**< e.g. "v2.0" */
    int64_t created_at;                /**< NOT NULL, default now */
    char created_by[SPOTDB_UUID_SIZE]; /**< users.id, or "" */
    uint64_t nulls;                    /**< SPOTDB_MODEL_* bits of NULLs */
} spotdb_model;

/** A page of models. */
typedef struct spotdb_model_rows {
    spotdb_model *items;
    size_t count;
    const char *next_cursor;           /**< NULL after the last page */
} spotdb_model_rows;

/** Filters of spotdb_model_list(); NULL members do not filter. */
typedef struct spotdb_model_filter {
    unsigned int version;              /**< SPOTDB_MODEL_FILTER_VERSION (the
                                            struct's layout, not a model
                                            version) */
    const char *name;
    const bool *is_active;
} spotdb_model_filter;

/** Version of spotdb_model_filter this header describes. */
#define SPOTDB_MODEL_FILTER_VERSION 1
/** Static initialiser of spotdb_model_filter: no filter. */
#define SPOTDB_MODEL_FILTER_INIT { SPOTDB_MODEL_FILTER_VERSION, NULL, NULL }

/**
 * Register a model version.  `fields` must include NAME and VERSION.
 * @param[out] out the stored row (defaults filled in), or NULL when not
 *             wanted; free with spotdb_model_free().
 * @return 0; SPOTDB_EINVAL; SPOTDB_ECONFLICT (uq_model_version);
 *         SPOTDB_EREFERENCE (created_by).
 */
SPOTDB_API int spotdb_model_create(spotdb_model **out, spotdb_db *db,
                                   const spotdb_model *in, uint64_t fields);

/** Read a model by id.  @return 0, SPOTDB_ENOTFOUND, SPOTDB_EINVAL. */
SPOTDB_API int spotdb_model_get(spotdb_model **out, spotdb_db *db,
                                const char *id);

/** Read a model by its unique (name, version). */
SPOTDB_API int spotdb_model_get_by_name_version(spotdb_model **out,
                                                spotdb_db *db,
                                                const char *name,
                                                const char *version);

/** Change the columns in `fields` (at least one; not ID).
 *  @param[out] out the row as stored, or NULL if not wanted. */
SPOTDB_API int spotdb_model_update(spotdb_model **out, spotdb_db *db,
                                   const char *id, const spotdb_model *in,
                                   uint64_t fields);

/** Delete a model.  @return 0; SPOTDB_ENOTFOUND; SPOTDB_EREFERENCE while
 *  experiment logs name it. */
SPOTDB_API int spotdb_model_delete(spotdb_db *db, const char *id);

/** A page of models in creation order (created_at, then id). */
SPOTDB_API int spotdb_model_list(spotdb_model_rows **out, spotdb_db *db,
                                 const spotdb_model_filter *filter,
                                 const char *cursor, int32_t limit);

/** Number of models the filter selects. */
SPOTDB_API int spotdb_model_count(int64_t *out, spotdb_db *db,
                                  const spotdb_model_filter *filter);

/** Receives one row of spotdb_model_stream(); see spotdb/rows.h. */
typedef int (*spotdb_model_cb)(const spotdb_model *row, void *payload);

/**
 * Every model the filter selects, in the order of spotdb_model_list(), one
 * at a time, in constant memory.
 *
 * @param filter NULL for all.
 * @param cb called once per row; the row is valid during the call only.
 * @param payload passed to cb.
 * @return 0 after the last row; the callback's value when it stopped the
 *         stream; SPOTDB_EINVAL for a bad filter; the server's codes.
 */
SPOTDB_API int spotdb_model_stream(spotdb_db *db,
                                   const spotdb_model_filter *filter,
                                   spotdb_model_cb cb, void *payload);

/** Free a row.  NULL is a no-op. */
SPOTDB_API void spotdb_model_free(spotdb_model *row);
/** Free a page.  NULL is a no-op. */
SPOTDB_API void spotdb_model_rows_free(spotdb_model_rows *rows);

SPOTDB_END_DECLS

#endif /* SPOTDB_MODELS_H */
