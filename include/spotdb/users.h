/**
 * @file spotdb/users.h
 * @brief Users (table `users`): people with a role, and their passwords.
 *
 * Passwords are stored only as bcrypt hashes (`$2b$`, cost 12, made with
 * libxcrypt).  The hash never leaves the library: spotdb_user has no field
 * for the `hashed_password` column, and no error message contains a
 * password or a hash.  A password must be 1 to 72 bytes (bcrypt ignores
 * anything after 72 bytes, so longer ones are refused rather than silently
 * cut); being a C string it cannot contain NUL.
 *
 * Validation before any round trip: email 1..255 characters with exactly
 * one @ between a local part and a domain and no spaces; username 1..50
 * characters without @, spaces or control characters (so that a login is
 * unambiguously an email or a username); full_name up to 100; role one of
 * "admin", "user", "lab"; every string valid UTF-8.  Lookups and logins
 * match email and username exactly, case included.  Unique keys: email (`users_email_key`) and username
 * (`users_username_key`); a duplicate is SPOTDB_ECONFLICT naming the
 * constraint.
 *
 * Deleting a user deletes its accounts, their instances and their
 * experiment logs (ON DELETE CASCADE); a user still named as `created_by`
 * of a model cannot be deleted (SPOTDB_EREFERENCE).
 *
 * Thread safety: a handle (spotdb_db) is used by one thread at a time;
 * returned rows are immutable and may be read from any thread (freed
 * once, by their owner); there is no global initialisation call.
 */
#ifndef SPOTDB_USERS_H
#define SPOTDB_USERS_H

#include "db.h"
#include "rows.h"

SPOTDB_BEGIN_DECLS

/** @name Column bits of spotdb_user
 *  @{ */
/** Bit of the column the macro's name ends with, in the `fields` and
 *  `nulls` masks of spotdb_user (one per column, in table order). */
#define SPOTDB_USER_ID          SPOTDB_COLUMN_BIT(0)
#define SPOTDB_USER_EMAIL       SPOTDB_COLUMN_BIT(1)
#define SPOTDB_USER_USERNAME    SPOTDB_COLUMN_BIT(2)
#define SPOTDB_USER_FULL_NAME   SPOTDB_COLUMN_BIT(3)
#define SPOTDB_USER_ROLE        SPOTDB_COLUMN_BIT(4)
#define SPOTDB_USER_IS_ACTIVE   SPOTDB_COLUMN_BIT(5)
#define SPOTDB_USER_CREATED_AT  SPOTDB_COLUMN_BIT(6)
#define SPOTDB_USER_UPDATED_AT  SPOTDB_COLUMN_BIT(7)
#define SPOTDB_USER_LAST_LOGIN  SPOTDB_COLUMN_BIT(8)
/** @} */

/** A row of `users` (every column but `hashed_password`). */
typedef struct spotdb_user {
    char id[SPOTDB_UUID_SIZE];  /**< default uuid_generate_v4() */
    const char *email;          /**< NOT NULL, unique, <= 255 chars */
    const char *username;       /**< NOT NULL, unique, <= 50 chars */
    const char *full_name;      /**< <= 100 chars */
    const char *role;           /**< NOT NULL, "admin", "user" (default), "lab" */
    bool is_active;             /**< NOT NULL, default true */
    int64_t created_at;         /**< NOT NULL, default now */
    int64_t updated_at;         /**< set by trigger on every update */
    int64_t last_login;         /**< set by spotdb_user_authenticate() */
    uint64_t nulls;             /**< SPOTDB_USER_* bits of NULL columns */
} spotdb_user;

/** A page of users, from spotdb_user_list(); free it with
 *  spotdb_user_rows_free(), which frees the rows and their strings. */
typedef struct spotdb_user_rows {
    spotdb_user *items;         /**< `count` rows */
    size_t count;               /**< number of rows in `items` */
    const char *next_cursor;    /**< cursor of the next page, NULL if none */
} spotdb_user_rows;

/** Filters of spotdb_user_list(); NULL members do not filter. */
typedef struct spotdb_user_filter {
    unsigned int version;       /**< SPOTDB_USER_FILTER_VERSION */
    const char *role;           /**< only this role */
    const bool *is_active;      /**< only rows with this is_active */
} spotdb_user_filter;

/** Version of spotdb_user_filter this header describes. */
#define SPOTDB_USER_FILTER_VERSION 1
/** Static initialiser of spotdb_user_filter: no filter. */
#define SPOTDB_USER_FILTER_INIT { SPOTDB_USER_FILTER_VERSION, NULL, NULL }

/**
 * Create a user with a password.
 *
 * @param[out] out the stored row (defaults filled in), or NULL when
 *             not wanted; free with spotdb_user_free().  NULL on failure.
 * @param db open handle.
 * @param in the values; only the columns in `fields` are read.
 * @param fields SPOTDB_USER_* bits to write; must include EMAIL and
 *             USERNAME.  Others take the server default.
 * @param password the plain password (1 to 72 bytes); hashed here with
 *             bcrypt cost 12, never sent or kept.
 * @return 0; SPOTDB_EINVAL naming the field and rule (the password's
 *         included); SPOTDB_ECONFLICT for a taken email or username;
 *         SPOTDB_ERROR when libxcrypt cannot hash; or a code of every
 *         call (@ref spotdb_common_codes "spotdb/errors.h").
 */
SPOTDB_API int spotdb_user_create(spotdb_user **out, spotdb_db *db,
                                  const spotdb_user *in, uint64_t fields,
                                  const char *password);

/**
 * Read a user by id.
 *
 * @param[out] out the row, or NULL on failure; it belongs to the caller,
 *             who frees it with spotdb_user_free().  Must not be NULL.
 * @param db open handle.
 * @param id the UUID.
 * @return 0; SPOTDB_ENOTFOUND; SPOTDB_EINVAL for a malformed UUID; or a
 *         code of every call (@ref spotdb_common_codes "spotdb/errors.h").
 */
SPOTDB_API int spotdb_user_get(spotdb_user **out, spotdb_db *db,
                               const char *id);

/**
 * Read a user by email (exact match, case included).
 *
 * @param[out] out the row, or NULL on failure; free it with
 *             spotdb_user_free().
 * @param db open handle.
 * @param email the email; one that breaks the column's rules is
 *             SPOTDB_EINVAL, not SPOTDB_ENOTFOUND.
 * @return as spotdb_user_get().
 */
SPOTDB_API int spotdb_user_get_by_email(spotdb_user **out, spotdb_db *db,
                                        const char *email);

/**
 * Read a user by username (exact match, case included).
 *
 * @param[out] out the row, or NULL on failure; free it with
 *             spotdb_user_free().
 * @param db open handle.
 * @param username the username; one that breaks the column's rules is
 *             SPOTDB_EINVAL, not SPOTDB_ENOTFOUND.
 * @return as spotdb_user_get().
 */
SPOTDB_API int spotdb_user_get_by_username(spotdb_user **out, spotdb_db *db,
                                           const char *username);

/**
 * Change the columns in `fields` of the user `id`.
 *
 * @param[out] out the row as stored (updated_at set by the trigger); free
 *             it with spotdb_user_free().  May be NULL when the caller
 *             does not want it.
 * @param db open handle.
 * @param id the user to change.
 * @param in the new values; only the columns in `fields` are read.
 * @param fields SPOTDB_USER_* bits, at least one; ID and UPDATED_AT
 *             cannot be written.
 * @return 0; SPOTDB_EINVAL (also for an empty `fields`); SPOTDB_ENOTFOUND;
 *         SPOTDB_ECONFLICT; or a code of every call
 *         (@ref spotdb_common_codes "spotdb/errors.h").
 */
SPOTDB_API int spotdb_user_update(spotdb_user **out, spotdb_db *db,
                                  const char *id, const spotdb_user *in,
                                  uint64_t fields);

/**
 * Delete a user, with its accounts, instances and logs (cascade).
 *
 * @param db open handle.
 * @param id the user's UUID.
 * @return 0; SPOTDB_ENOTFOUND when no such user; SPOTDB_EREFERENCE while a
 *         model names it as created_by; SPOTDB_EINVAL for a malformed
 *         UUID; or a code of every call
 *         (@ref spotdb_common_codes "spotdb/errors.h").
 */
SPOTDB_API int spotdb_user_delete(spotdb_db *db, const char *id);

/**
 * A page of users in creation order (created_at, then id).
 *
 * @param[out] out the page (possibly empty), or NULL on failure; free it
 *             with spotdb_user_rows_free().
 * @param db open handle.
 * @param filter NULL for all users.
 * @param cursor NULL for the first page, else a previous `next_cursor`.
 * @param limit rows per page, 0 for SPOTDB_DEFAULT_LIMIT, at most
 *             SPOTDB_MAX_LIMIT.
 * @return 0; SPOTDB_EINVAL for a bad filter, cursor or limit; or a code
 *         of every call (@ref spotdb_common_codes "spotdb/errors.h").
 */
SPOTDB_API int spotdb_user_list(spotdb_user_rows **out, spotdb_db *db,
                                const spotdb_user_filter *filter,
                                const char *cursor, int32_t limit);

/**
 * Number of users the same filter selects.
 *
 * @param[out] out the count; 0 on failure.
 * @param db open handle.
 * @param filter NULL to count every user.
 * @return 0; SPOTDB_EINVAL for a bad filter; or a code of every call
 *         (@ref spotdb_common_codes "spotdb/errors.h").
 */
SPOTDB_API int spotdb_user_count(int64_t *out, spotdb_db *db,
                                 const spotdb_user_filter *filter);

/**
 * Check a login (username, or else email) and password.
 *
 * A login with @ is an email, otherwise a username.  On success sets
 * `last_login` to the server's now and, when the stored hash is not
 * `$2b$` of cost 12 or more (a lower cost, or a `$2a$`/`$2y$` hash),
 * replaces it with a `$2b$` hash of cost 12.  A wrong password,
 * an unknown login and an inactive user all give SPOTDB_EAUTH with the
 * same message, after the same bcrypt work (an unknown login is checked
 * against a dummy hash), so neither the code nor the time tells them
 * apart.  The user is found through the database's spotdb_login()
 * (migration 0003), so this works on a handle acting for nobody; the
 * login is recorded acting as the user who logged in, and the handle's
 * own scope (spotdb/scope.h) is then put back.
 *
 * @param[out] out the user, last_login included, or NULL on failure; free
 *             it with spotdb_user_free().  Must not be NULL.
 * @param db open handle.
 * @param login a username, or an email (a login holding @).
 * @param password the plain password; never sent or kept.
 * @return 0; SPOTDB_EAUTH; SPOTDB_EINVAL for a password that breaks the
 *         rules above (empty, over 72 bytes) or a NULL login or out;
 *         SPOTDB_ENOMEM (never taken for a wrong password);
 *         SPOTDB_ECONN and the server's codes when reading the user or
 *         writing last_login fails.
 */
SPOTDB_API int spotdb_user_authenticate(spotdb_user **out, spotdb_db *db,
                                        const char *login,
                                        const char *password);

/**
 * Replace a user's password (hashed with bcrypt cost 12).
 *
 * @param db open handle.
 * @param id the user's UUID.
 * @param password the new plain password (1 to 72 bytes); never sent or
 *             kept.
 * @return 0; SPOTDB_EINVAL for a malformed id or a password that breaks
 *         the rules; SPOTDB_ENOTFOUND; SPOTDB_ERROR when libxcrypt cannot
 *         hash; or a code of every call
 *         (@ref spotdb_common_codes "spotdb/errors.h").
 */
SPOTDB_API int spotdb_user_set_password(spotdb_db *db, const char *id,
                                        const char *password);

/**
 * Receives one row of spotdb_user_stream(); see spotdb/rows.h.
 *
 * @param row the row; it and its strings are valid only during the call.
 * @param payload the pointer given to spotdb_user_stream().
 * @return 0 to go on; any other value stops the stream, which returns it.
 */
typedef int (*spotdb_user_cb)(const spotdb_user *row, void *payload);

/**
 * Every user the filter selects, in the order of spotdb_user_list(), one
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
SPOTDB_API int spotdb_user_stream(spotdb_db *db,
                                   const spotdb_user_filter *filter,
                                   spotdb_user_cb cb, void *payload);

/**
 * Free a row returned by the library, with its strings.
 *
 * @param row the row; NULL is a no-op.
 */
SPOTDB_API void spotdb_user_free(spotdb_user *row);
/**
 * Free a page returned by spotdb_user_list(), with its rows, their
 * strings and its cursor.
 *
 * @param rows the page; NULL is a no-op.
 */
SPOTDB_API void spotdb_user_rows_free(spotdb_user_rows *rows);

SPOTDB_END_DECLS

#endif /* SPOTDB_USERS_H */
