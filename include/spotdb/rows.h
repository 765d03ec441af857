/**
 * @file spotdb/rows.h
 * @brief Conventions shared by every row type: UUIDs, timestamps, NULL,
 *        column masks, filters and pages.
 *
 * Every table and view has a struct with one field per column, in column
 * order, followed by `uint64_t nulls`.  Field types:
 *
 * | SQL type              | C field                                        |
 * |-----------------------|------------------------------------------------|
 * | UUID                  | `char x[SPOTDB_UUID_SIZE]`: 36 lower-case hex  |
 * |                       | characters with hyphens and a NUL; "" is NULL   |
 * | VARCHAR, TEXT         | `const char *` UTF-8, NULL is SQL NULL          |
 * | JSONB                 | `const char *` JSON text, NULL is SQL NULL      |
 * | BOOLEAN               | `bool` (C11 _Bool, one byte)                   |
 * | INTEGER               | `int32_t`                                      |
 * | bigint (counts)       | `int64_t`                                      |
 * | FLOAT                 | `double`                                       |
 * | TIMESTAMP             | `int64_t` microseconds since 1970-01-01 00:00  |
 * |                       | UTC (sessions are pinned to UTC, so the stored |
 * |                       | value means UTC); 'infinity' and '-infinity'   |
 * |                       | are INT64_MAX and INT64_MIN                    |
 *
 * NULL: bit `SPOTDB_<ENTITY>_<COLUMN>` of `nulls` is set when the column
 * is SQL NULL.  Rows the library returns always set it (and leave text
 * pointers NULL, UUIDs "" and numbers 0 for NULL columns), so a NULL
 * boolean is never mistaken for false, nor a NULL double for 0.0.
 *
 * Ids and keys: every call taking an id or a filter UUID returns
 * SPOTDB_EINVAL for a string that is not a UUID, and a key value that
 * breaks its column's rules (an email without @, an over-long name, an AWS
 * number that is not 12 digits) is SPOTDB_EINVAL rather than
 * SPOTDB_ENOTFOUND, in lookups, filters and the create_for_* calls.
 *
 * Writing (create and update) takes a `fields` mask of the same bits: only
 * the columns in `fields` are written, the others keep their value (update)
 * or take the server's default (create).  A column in `fields` is written
 * as NULL when its bit is set in `nulls`, when it is text with a NULL
 * pointer, or when it is a UUID holding "".  A zero-initialised struct
 * therefore has every scalar at 0/false and not NULL: name the columns you
 * mean in `fields`.  Create may write any column, `id` and `created_at`
 * included (an id chosen by the caller makes a retried create detectable);
 * update refuses `id` and trigger-maintained `updated_at`.  NULL for a NOT
 * NULL column, like every other rule, is SPOTDB_EINVAL naming the field,
 * before any round trip.
 *
 * Ownership: a row returned through `T **out` is released with
 * `spotdb_<entity>_free()`, a page of rows (`spotdb_<entity>_rows`) with
 * `spotdb_<entity>_rows_free()`; never with free().  Their strings point
 * into the server's result, which the row or page keeps (nothing is
 * copied), and stay valid until that call.  Input structs
 * belong to the caller; the library only reads them during the call.
 *
 * Paging: lists are in a stable order and paged by key (no OFFSET).  A
 * page's `next_cursor` is an opaque string to pass back for the following
 * page, NULL after the last page; it lives inside the page, so keep the
 * page until the next list call returns, or copy the cursor.  Rows
 * inserted while paging never make a row that existed at the start
 * appear twice or vanish.  A limit of 0 means SPOTDB_DEFAULT_LIMIT for
 * table lists, and no limit for views.
 *
 * Filters: every filter struct starts with `unsigned int version` (its
 * layout version, as for options), then pointers; a NULL pointer does not
 * filter, a pointer to a value keeps the rows equal to it (never NULL
 * ones).
 *
 * Streaming: every list, view and report also has a `_stream` function
 * that hands the rows one at a time to a callback, in the same order,
 * without a limit and without holding the result in memory (libpq's
 * single-row mode): memory stays flat whatever the row count.  The row
 * passed to the callback, and its strings, are valid only during the
 * call; copy what you keep.  The callback returns 0 to go on; any other
 * value stops the stream, which then returns that value (use positive
 * values, so they cannot be mistaken for SPOTDB_E* codes).  The handle
 * must not be used from inside the callback.
 *
 * Bulk: tables whose rows come in bulk have `_insert_many`, which stores
 * n rows with one COPY in binary format: all of them or, on any failure,
 * none, with the index of the offending row when it can be known.
 *
 * Thread safety: rows are immutable once returned and may be read from
 * any thread; the call that produced them follows the handle's rule (one
 * thread at a time per spotdb_db).
 */
#ifndef SPOTDB_ROWS_H
#define SPOTDB_ROWS_H

#include <stdbool.h>

#include "common.h"

SPOTDB_BEGIN_DECLS

/** Size of a UUID field: 36 characters and the terminating NUL. */
#define SPOTDB_UUID_SIZE 37

/** Rows per page when a list call is given a limit of 0. */
#define SPOTDB_DEFAULT_LIMIT 100
/** Largest page a list call returns. */
#define SPOTDB_MAX_LIMIT 10000

/** Bit of column number `n` (0-based, in table order) in a column mask. */
#define SPOTDB_COLUMN_BIT(n) (UINT64_C(1) << (n))

SPOTDB_END_DECLS

#endif /* SPOTDB_ROWS_H */
