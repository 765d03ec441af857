/**
 * @file spotdb/accounts.h
 * @brief AWS accounts (table `accounts`), reached through STS AssumeRole.
 *
 * Validation before any round trip: user_id a UUID; account_id exactly 12
 * digits; account_name 1..100 characters; environment_type "PROD" or
 * "LAB"; role_arn `arn:aws:iam::<12 digits>:role/<name>` (<= 255
 * characters) whose number equals account_id when both are written in the
 * same call; external_id 2..255 characters of `[A-Za-z0-9_+=,.@:/-]`
 * (the AWS rule allows 1224, the column holds 255); region 1..20
 * characters.
 * Unique key: account_id (`accounts_account_id_key`).  The owner must
 * exist (`accounts_user_id_fkey`, SPOTDB_EREFERENCE).  Deleting an account
 * deletes its instances and their logs.
 *
 * Thread safety: a handle (spotdb_db) is used by one thread at a time;
 * returned rows are immutable and may be read from any thread (freed
 * once, by their owner); there is no global initialisation call.
 */
#ifndef SPOTDB_ACCOUNTS_H
#define SPOTDB_ACCOUNTS_H

#include "db.h"
#include "rows.h"

SPOTDB_BEGIN_DECLS

/** @name Column bits of spotdb_account
 *  @{ */
/** Bit of the column the macro's name ends with, in the `fields` and
 *  `nulls` masks of spotdb_account (one per column, in table order). */
#define SPOTDB_ACCOUNT_ID               SPOTDB_COLUMN_BIT(0)
#define SPOTDB_ACCOUNT_USER_ID          SPOTDB_COLUMN_BIT(1)
#define SPOTDB_ACCOUNT_ACCOUNT_ID       SPOTDB_COLUMN_BIT(2)
#define SPOTDB_ACCOUNT_ACCOUNT_NAME     SPOTDB_COLUMN_BIT(3)
#define SPOTDB_ACCOUNT_ENVIRONMENT_TYPE SPOTDB_COLUMN_BIT(4)
#define SPOTDB_ACCOUNT_ROLE_ARN         SPOTDB_COLUMN_BIT(5)
#define SPOTDB_ACCOUNT_EXTERNAL_ID      SPOTDB_COLUMN_BIT(6)
#define SPOTDB_ACCOUNT_REGION           SPOTDB_COLUMN_BIT(7)
#define SPOTDB_ACCOUNT_IS_ACTIVE        SPOTDB_COLUMN_BIT(8)
#define SPOTDB_ACCOUNT_CREATED_AT       SPOTDB_COLUMN_BIT(9)
#define SPOTDB_ACCOUNT_UPDATED_AT       SPOTDB_COLUMN_BIT(10)
/** @} */

/** A row of `accounts`. */
typedef struct spotdb_account {
    char id[SPOTDB_UUID_SIZE];      /**< default uuid_generate_v4() */
    char user_id[SPOTDB_UUID_SIZE]; /**< NOT NULL, the owner (users.id) */
    const char *account_id;         /**< NOT NULL, unique, 12 digits */
    const char *account_name;       /**< NOT NULL, <= 100 chars */
    const char *environment_type;   /**< NOT NULL, "LAB" (default) or "PROD" */
    const char *role_arn;           /**< NOT NULL, arn:aws:iam::N:role/x */
    const char *external_id;        /**< NOT NULL, STS external id */
    const char *region;             /**< NOT NULL, default "ap-south-1" */
    bool is_active;                 /**< default true (nullable) */
    int64_t created_at;             /**< NOT NULL, default now */
    int64_t updated_at;             /**< set by trigger on every update */
    uint64_t nulls;                 /**< SPOTDB_ACCOUNT_* bits of NULLs */
} spotdb_account;

/** A page of accounts, from spotdb_account_list(); free it with
 *  spotdb_account_rows_free(), which frees the rows and their strings. */
typedef struct spotdb_account_rows {
    spotdb_account *items;          /**< `count` rows */
    size_t count;                   /**< number of rows in `items` */
    const char *next_cursor;        /**< NULL after the last page */
} spotdb_account_rows;

/** Filters of spotdb_account_list(); NULL members do not filter. */
typedef struct spotdb_account_filter {
    unsigned int version;           /**< SPOTDB_ACCOUNT_FILTER_VERSION */
    const char *user_id;            /**< owner (users.id) */
    const char *environment_type;   /**< "PROD" or "LAB" */
    const bool *is_active;          /**< only rows with this is_active */
} spotdb_account_filter;

/** Version of spotdb_account_filter this header describes. */
#define SPOTDB_ACCOUNT_FILTER_VERSION 1
/** Static initialiser of spotdb_account_filter: no filter. */
#define SPOTDB_ACCOUNT_FILTER_INIT \
    { SPOTDB_ACCOUNT_FILTER_VERSION, NULL, NULL, NULL }

/**
 * Create an account.  `fields` must include USER_ID, ACCOUNT_ID,
 * ACCOUNT_NAME, ROLE_ARN and EXTERNAL_ID; the others take their defaults.
 *
 * @param[out] out the stored row (defaults filled in), or NULL when not
 *             wanted; free with spotdb_account_free().  NULL on failure.
 * @param db open handle.
 * @param in the values; only the columns in `fields` are read.
 * @param fields SPOTDB_ACCOUNT_* bits of the columns to write.
 * @return 0; SPOTDB_EINVAL naming the field and rule; SPOTDB_ECONFLICT
 *         (account_id taken); SPOTDB_EREFERENCE (no such user); or a code
 *         of every call (@ref spotdb_common_codes "spotdb/errors.h").
 */
SPOTDB_API int spotdb_account_create(spotdb_account **out, spotdb_db *db,
                                     const spotdb_account *in,
                                     uint64_t fields);

/**
 * Create an account for the user with this username (the documented
 * workflow): as spotdb_account_create(), with `user_id` taken from the
 * lookup, in one statement.  USER_ID must not be in `fields`.
 *
 * @param[out] out the stored row, or NULL when not wanted; free with
 *             spotdb_account_free().  NULL on failure.
 * @param db open handle.
 * @param username the owner's username, checked by the rules of
 *             users.username.
 * @param in the values; only the columns in `fields` are read.
 * @param fields SPOTDB_ACCOUNT_* bits of the columns to write, without
 *             SPOTDB_ACCOUNT_USER_ID.
 * @return as spotdb_account_create(); SPOTDB_ENOTFOUND when no user has
 *         that username.
 */
SPOTDB_API int spotdb_account_create_for_username(spotdb_account **out,
                                                  spotdb_db *db,
                                                  const char *username,
                                                  const spotdb_account *in,
                                                  uint64_t fields);

/**
 * Read an account by id.
 *
 * @param[out] out the row, or NULL on failure; it belongs to the caller,
 *             who frees it with spotdb_account_free().  Must not be NULL.
 * @param db open handle.
 * @param id the UUID.
 * @return 0; SPOTDB_ENOTFOUND; SPOTDB_EINVAL for a malformed UUID; or a
 *         code of every call (@ref spotdb_common_codes "spotdb/errors.h").
 */
SPOTDB_API int spotdb_account_get(spotdb_account **out, spotdb_db *db,
                                  const char *id);

/**
 * Read an account by its 12-digit AWS account number.
 *
 * @param[out] out the row, or NULL on failure; free it with
 *             spotdb_account_free().
 * @param db open handle.
 * @param account_id the AWS number; one that is not 12 digits is
 *             SPOTDB_EINVAL, not SPOTDB_ENOTFOUND.
 * @return as spotdb_account_get().
 */
SPOTDB_API int spotdb_account_get_by_account_id(spotdb_account **out,
                                                spotdb_db *db,
                                                const char *account_id);

/**
 * Change the columns in `fields` (at least one; not ID or UPDATED_AT).
 *
 * @param[out] out the row as stored, or NULL if not wanted; free with
 *             spotdb_account_free().
 * @param db open handle.
 * @param id the account to change.
 * @param in the new values; only the columns in `fields` are read.
 * @param fields SPOTDB_ACCOUNT_* bits of the columns to write.
 * @return 0; SPOTDB_EINVAL; SPOTDB_ENOTFOUND; SPOTDB_ECONFLICT;
 *         SPOTDB_EREFERENCE; or a code of every call
 *         (@ref spotdb_common_codes "spotdb/errors.h").
 */
SPOTDB_API int spotdb_account_update(spotdb_account **out, spotdb_db *db,
                                     const char *id,
                                     const spotdb_account *in,
                                     uint64_t fields);

/**
 * Delete an account, its instances and their logs.
 *
 * @param db open handle.
 * @param id the account's UUID.
 * @return 0; SPOTDB_ENOTFOUND; SPOTDB_EINVAL for a malformed UUID; or a
 *         code of every call (@ref spotdb_common_codes "spotdb/errors.h").
 */
SPOTDB_API int spotdb_account_delete(spotdb_db *db, const char *id);

/**
 * A page of accounts in creation order (created_at, then id).
 *
 * @param[out] out the page (possibly empty), or NULL on failure; free it
 *             with spotdb_account_rows_free().
 * @param db open handle.
 * @param filter NULL for all accounts.
 * @param cursor NULL, or a previous page's next_cursor.
 * @param limit 0 for SPOTDB_DEFAULT_LIMIT, at most SPOTDB_MAX_LIMIT.
 * @return 0; SPOTDB_EINVAL for a bad filter, cursor or limit; or a code
 *         of every call (@ref spotdb_common_codes "spotdb/errors.h").
 */
SPOTDB_API int spotdb_account_list(spotdb_account_rows **out, spotdb_db *db,
                                   const spotdb_account_filter *filter,
                                   const char *cursor, int32_t limit);

/**
 * Number of accounts the filter selects.
 *
 * @param[out] out the count; 0 on failure.
 * @param db open handle.
 * @param filter NULL to count every account.
 * @return 0; SPOTDB_EINVAL for a bad filter; or a code of every call
 *         (@ref spotdb_common_codes "spotdb/errors.h").
 */
SPOTDB_API int spotdb_account_count(int64_t *out, spotdb_db *db,
                                    const spotdb_account_filter *filter);

/**
 * Receives one row of spotdb_account_stream(); see spotdb/rows.h.
 *
 * @param row the row; it and its strings are valid only during the call.
 * @param payload the pointer given to spotdb_account_stream().
 * @return 0 to go on; any other value stops the stream, which returns it.
 */
typedef int (*spotdb_account_cb)(const spotdb_account *row, void *payload);

/**
 * Every account the filter selects, in the order of spotdb_account_list(), one
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
SPOTDB_API int spotdb_account_stream(spotdb_db *db,
                                   const spotdb_account_filter *filter,
                                   spotdb_account_cb cb, void *payload);

/**
 * Free a row returned by the library, with its strings.
 *
 * @param row the row; NULL is a no-op.
 */
SPOTDB_API void spotdb_account_free(spotdb_account *row);
/**
 * Free a page returned by spotdb_account_list(), with its rows, their
 * strings and its cursor.
 *
 * @param rows the page; NULL is a no-op.
 */
SPOTDB_API void spotdb_account_rows_free(spotdb_account_rows *rows);

SPOTDB_END_DECLS

#endif /* SPOTDB_ACCOUNTS_H */
