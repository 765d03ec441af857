/**
 * @file spotdb/instances.h
 * @brief EC2 instances under Lab Mode (table `instances`).
 *
 * Validation before any round trip: account_id a UUID (the accounts row's
 * id, not the AWS number); instance_id an EC2 id, `i-` and 8 or 17
 * lower-case hex digits; instance_type 1..20 characters;
 * availability_zone 1..20; assigned_model_version up to 50;
 * pipeline_mode "CLUSTER" or "LINEAR"; metadata valid JSON (checked with json-c
 * before sending; what jsonb still refuses, such as `\u0000` or the
 * single-quoted strings json-c lets through, comes back from the server
 * as SPOTDB_EINVAL naming the column).  Unique key:
 * instance_id (`instances_instance_id_key`).  Deleting an instance
 * deletes its experiment logs.
 *
 * Thread safety: a handle (spotdb_db) is used by one thread at a time;
 * returned rows are immutable and may be read from any thread (freed
 * once, by their owner); there is no global initialisation call.
 */
#ifndef SPOTDB_INSTANCES_H
#define SPOTDB_INSTANCES_H

#include "db.h"
#include "rows.h"

SPOTDB_BEGIN_DECLS

/** @name Column bits of spotdb_instance
 *  @{ */
/** Bit of the column the macro's name ends with, in the `fields` and
 *  `nulls` masks of spotdb_instance (one per column, in table order). */
#define SPOTDB_INSTANCE_ID                     SPOTDB_COLUMN_BIT(0)
#define SPOTDB_INSTANCE_ACCOUNT_ID             SPOTDB_COLUMN_BIT(1)
#define SPOTDB_INSTANCE_INSTANCE_ID            SPOTDB_COLUMN_BIT(2)
#define SPOTDB_INSTANCE_INSTANCE_TYPE          SPOTDB_COLUMN_BIT(3)
#define SPOTDB_INSTANCE_AVAILABILITY_ZONE      SPOTDB_COLUMN_BIT(4)
#define SPOTDB_INSTANCE_ASSIGNED_MODEL_VERSION SPOTDB_COLUMN_BIT(5)
#define SPOTDB_INSTANCE_PIPELINE_MODE          SPOTDB_COLUMN_BIT(6)
#define SPOTDB_INSTANCE_IS_SHADOW_MODE         SPOTDB_COLUMN_BIT(7)
#define SPOTDB_INSTANCE_IS_ACTIVE              SPOTDB_COLUMN_BIT(8)
#define SPOTDB_INSTANCE_LAST_EVALUATION        SPOTDB_COLUMN_BIT(9)
#define SPOTDB_INSTANCE_METADATA               SPOTDB_COLUMN_BIT(10)
#define SPOTDB_INSTANCE_CREATED_AT             SPOTDB_COLUMN_BIT(11)
#define SPOTDB_INSTANCE_UPDATED_AT             SPOTDB_COLUMN_BIT(12)
/** @} */

/** A row of `instances`. */
typedef struct spotdb_instance {
    char id[SPOTDB_UUID_SIZE];         /**< default uuid_generate_v4() */
    char account_id[SPOTDB_UUID_SIZE]; /**< NOT NULL, accounts.id */
    const char *instance_id;           /**< NOT NULL, unique EC2 id */
    const char *instance_type;         /**< NOT NULL, e.g. "c5.large" */
    const char *availability_zone;     /**< NOT NULL, e.g. "ap-south-1a" */
    const char *assigned_model_version;/**< NULL: the default model */
    const char *pipeline_mode;         /**< NOT NULL, "CLUSTER" (default) or "LINEAR" */
    bool is_shadow_mode;               /**< default false */
    bool is_active;                    /**< default true */
    int64_t last_evaluation;           /**< last optimizer run */
    const char *metadata;              /**< JSON text */
    int64_t created_at;                /**< NOT NULL, default now */
    int64_t updated_at;                /**< set by trigger on every update */
    uint64_t nulls;                    /**< SPOTDB_INSTANCE_* bits of NULLs */
} spotdb_instance;

/** A page of instances, from spotdb_instance_list(); free it with
 *  spotdb_instance_rows_free(), which frees the rows and their strings. */
typedef struct spotdb_instance_rows {
    spotdb_instance *items;            /**< `count` rows */
    size_t count;                      /**< number of rows in `items` */
    const char *next_cursor;           /**< NULL after the last page */
} spotdb_instance_rows;

/** Filters of spotdb_instance_list(); NULL members do not filter. */
typedef struct spotdb_instance_filter {
    unsigned int version;              /**< SPOTDB_INSTANCE_FILTER_VERSION */
    const char *account_id;            /**< accounts.id */
    const char *pipeline_mode;         /**< "CLUSTER" or "LINEAR" */
    const bool *is_active;             /**< only rows with this is_active */
} spotdb_instance_filter;

/** Version of spotdb_instance_filter this header describes. */
#define SPOTDB_INSTANCE_FILTER_VERSION 1
/** Static initialiser of spotdb_instance_filter: no filter. */
#define SPOTDB_INSTANCE_FILTER_INIT \
    { SPOTDB_INSTANCE_FILTER_VERSION, NULL, NULL, NULL }

/**
 * Create an instance.  `fields` must include ACCOUNT_ID, INSTANCE_ID,
 * INSTANCE_TYPE and AVAILABILITY_ZONE.
 *
 * @param[out] out the stored row (defaults filled in), or NULL when not
 *             wanted; free with spotdb_instance_free().  NULL on failure.
 * @param db open handle.
 * @param in the values; only the columns in `fields` are read.
 * @param fields SPOTDB_INSTANCE_* bits of the columns to write.
 * @return 0; SPOTDB_EINVAL naming the field and rule (metadata that jsonb
 *         refuses included); SPOTDB_ECONFLICT (instance_id taken);
 *         SPOTDB_EREFERENCE (no such account); or a code of every call
 *         (@ref spotdb_common_codes "spotdb/errors.h").
 */
SPOTDB_API int spotdb_instance_create(spotdb_instance **out, spotdb_db *db,
                                      const spotdb_instance *in,
                                      uint64_t fields);

/**
 * Register an instance for the account with this 12-digit AWS number (the
 * documented workflow), in one statement.  ACCOUNT_ID must not be in
 * `fields`.
 *
 * @param[out] out the stored row, or NULL when not wanted; free with
 *             spotdb_instance_free().  NULL on failure.
 * @param db open handle.
 * @param aws_account_id the account's 12-digit AWS number
 *             (accounts.account_id).
 * @param in the values; only the columns in `fields` are read.
 * @param fields SPOTDB_INSTANCE_* bits of the columns to write, without
 *             SPOTDB_INSTANCE_ACCOUNT_ID.
 * @return as spotdb_instance_create(); SPOTDB_ENOTFOUND when no account
 *         has that number.
 */
SPOTDB_API int spotdb_instance_create_for_aws_account(
    spotdb_instance **out, spotdb_db *db, const char *aws_account_id,
    const spotdb_instance *in, uint64_t fields);

/**
 * Read an instance by id.
 *
 * @param[out] out the row, or NULL on failure; it belongs to the caller,
 *             who frees it with spotdb_instance_free().  Must not be NULL.
 * @param db open handle.
 * @param id the UUID (instances.id, not the EC2 id).
 * @return 0; SPOTDB_ENOTFOUND; SPOTDB_EINVAL for a malformed UUID; or a
 *         code of every call (@ref spotdb_common_codes "spotdb/errors.h").
 */
SPOTDB_API int spotdb_instance_get(spotdb_instance **out, spotdb_db *db,
                                   const char *id);

/**
 * Read an instance by its EC2 id.
 *
 * @param[out] out the row, or NULL on failure; free it with
 *             spotdb_instance_free().
 * @param db open handle.
 * @param instance_id the EC2 id ("i-..."); one of another form is
 *             SPOTDB_EINVAL, not SPOTDB_ENOTFOUND.
 * @return as spotdb_instance_get().
 */
SPOTDB_API int spotdb_instance_get_by_instance_id(spotdb_instance **out,
                                                  spotdb_db *db,
                                                  const char *instance_id);

/**
 * Change the columns in `fields` (at least one; not ID or UPDATED_AT).
 *
 * @param[out] out the row as stored, or NULL if not wanted; free with
 *             spotdb_instance_free().
 * @param db open handle.
 * @param id the instance to change.
 * @param in the new values; only the columns in `fields` are read.
 * @param fields SPOTDB_INSTANCE_* bits of the columns to write.
 * @return 0; SPOTDB_EINVAL (also for an empty `fields`);
 *         SPOTDB_ENOTFOUND; SPOTDB_ECONFLICT; SPOTDB_EREFERENCE; or a code
 *         of every call (@ref spotdb_common_codes "spotdb/errors.h").
 */
SPOTDB_API int spotdb_instance_update(spotdb_instance **out, spotdb_db *db,
                                      const char *id,
                                      const spotdb_instance *in,
                                      uint64_t fields);

/**
 * Delete an instance and its logs.
 *
 * @param db open handle.
 * @param id the instance's UUID.
 * @return 0; SPOTDB_ENOTFOUND; SPOTDB_EINVAL for a malformed UUID; or a
 *         code of every call (@ref spotdb_common_codes "spotdb/errors.h").
 */
SPOTDB_API int spotdb_instance_delete(spotdb_db *db, const char *id);

/**
 * A page of instances in creation order (created_at, then id).
 *
 * @param[out] out the page (possibly empty), or NULL on failure; free it
 *             with spotdb_instance_rows_free().
 * @param db open handle.
 * @param filter NULL for all instances.
 * @param cursor NULL, or a previous page's next_cursor.
 * @param limit 0 for SPOTDB_DEFAULT_LIMIT, at most SPOTDB_MAX_LIMIT.
 * @return 0; SPOTDB_EINVAL for a bad filter, cursor or limit; or a code
 *         of every call (@ref spotdb_common_codes "spotdb/errors.h").
 */
SPOTDB_API int spotdb_instance_list(spotdb_instance_rows **out,
                                    spotdb_db *db,
                                    const spotdb_instance_filter *filter,
                                    const char *cursor, int32_t limit);

/**
 * Number of instances the filter selects.
 *
 * @param[out] out the count; 0 on failure.
 * @param db open handle.
 * @param filter NULL to count every instance.
 * @return 0; SPOTDB_EINVAL for a bad filter; or a code of every call
 *         (@ref spotdb_common_codes "spotdb/errors.h").
 */
SPOTDB_API int spotdb_instance_count(int64_t *out, spotdb_db *db,
                                     const spotdb_instance_filter *filter);

/**
 * Store `n` rows in one statement (COPY in binary format): all of them,
 * or none when any is refused.  Every row is validated first, so a bad
 * value costs no round trip; JSON alone is left to the server, whose
 * refusal names the row and the column as well.  The columns in `fields` are written from
 * each row and the others take their defaults, as for create; `fields`
 * must include SPOTDB_INSTANCE_ACCOUNT_ID, ..._INSTANCE_ID, ..._INSTANCE_TYPE and ..._AVAILABILITY_ZONE.  Inside a transaction the rows commit with it;
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
SPOTDB_API int spotdb_instance_insert_many(spotdb_db *db,
                                        const spotdb_instance *rows,
                                        size_t n, uint64_t fields,
                                        char (*ids)[SPOTDB_UUID_SIZE],
                                        int64_t *bad_row);

/**
 * Receives one row of spotdb_instance_stream(); see spotdb/rows.h.
 *
 * @param row the row; it and its strings are valid only during the call.
 * @param payload the pointer given to spotdb_instance_stream().
 * @return 0 to go on; any other value stops the stream, which returns it.
 */
typedef int (*spotdb_instance_cb)(const spotdb_instance *row, void *payload);

/**
 * Every instance the filter selects, in the order of spotdb_instance_list(), one
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
SPOTDB_API int spotdb_instance_stream(spotdb_db *db,
                                   const spotdb_instance_filter *filter,
                                   spotdb_instance_cb cb, void *payload);

/**
 * Free a row returned by the library, with its strings.
 *
 * @param row the row; NULL is a no-op.
 */
SPOTDB_API void spotdb_instance_free(spotdb_instance *row);
/**
 * Free a page returned by spotdb_instance_list(), with its rows, their
 * strings and its cursor.
 *
 * @param rows the page; NULL is a no-op.
 */
SPOTDB_API void spotdb_instance_rows_free(spotdb_instance_rows *rows);

SPOTDB_END_DECLS

#endif /* SPOTDB_INSTANCES_H */
