/**
 * @file spotdb/schema.h
 * @brief A machine-readable description of the library's tables, views,
 *        report, structs and functions, for binding generators.
 *
 * spotdb_schema_describe() returns one JSON document generated from the
 * same column descriptions that drive the library's SQL, parameter
 * binding and decoding, with every offset and size taken from the C
 * compiler (offsetof, sizeof) and every function prototype checked
 * against its declaration when the library is built.  A binding that
 * builds its types from the document (bindings/python does) therefore
 * cannot drift from the C structs.
 *
 * The document, format 1 (members may be added; none is removed or
 * changes meaning while `format` stays 1):
 *
 * - `format`, `library` (`name`, `version`: spotdb_version()),
 *   `schema_version` (the newest migration embedded);
 * - `platform`: sizes of `void *`, `size_t`, `bool`, `int`, `long`, and
 *   `byte_order` ("little" or "big");
 * - `constants`: every integer macro and enum value of the headers by
 *   its name (SPOTDB_UUID_SIZE, the option versions, SPOTDB_POOLER_NONE,
 *   SPOTDB_DOCTOR_ERROR, ...), but for the error codes (`errors`), the
 *   column bits (each column's `bit`) and the filter versions (each
 *   relation's `filter`);
 * - `errors`: every code as `code`, `name` ("SPOTDB_EINVAL") and
 *   `message` (spotdb_strerror());
 * - `structs`: the option, status, pool, trace, doctor and page structs
 *   as `name`, `sizeof`, `version` (versioned structs; else null) and
 *   `members`;
 * - `opaque`: the handle types whose layout is private ("spotdb_db",
 *   "spotdb_pool"), only ever used through pointers;
 * - `functions`: the calls that are not about one relation (open, close,
 *   errors, transactions, scope, migrations, pool, trace, cancel,
 *   doctor, this one);
 * - `relations`: one object per table (`kind` "table"), view ("view") and
 *   report ("report"), with `name` (the SQL relation; the report's
 *   name), `entity` ("user"), `c_struct`, `sizeof`, `nulls_offset`, `key`
 *   (the primary-key column, null for views and reports), `order` (the
 *   keyset order of table lists: `column`, `descending`; null otherwise),
 *   `columns`, `filter`, `rows` (the page struct) and `functions`, an
 *   object from operation ("create", "get", "get_by_email", "update",
 *   "delete", "list", "count", "stream", "insert_many", "free",
 *   "rows_free", "authenticate", ...) to function.
 *
 * A column: `name`, `index`, `bit` (its bit in `fields` and `nulls`,
 * 1 << index), `sql_type` ("uuid", "varchar(255)", "text", "jsonb",
 * "boolean", "integer", "bigint", "double precision", "timestamp"; a
 * view's text columns are "text"), `c_type` ("char[37]", "const char *",
 * "bool", "int32_t", "int64_t", "double"), `timestamp` (true for int64_t
 * microseconds since 1970 UTC), `json`, `offset`, `size`, `nullable`,
 * `has_default` (create may leave it out: the server fills in its
 * default or NULL), `required` (create must write it), `key`, `insertable`,
 * `updatable` (false for the key and trigger-maintained columns),
 * `min_chars`, `max_chars` (0: no limit), `allowed` (array of strings or
 * null) and `rule` (the name of an extra check such as "email", or null).
 *
 * A struct member (filters, pages, options, status): `name`, `c_type`,
 * `offset`, `size`, `meaning` and `timestamp` (an int64_t, or what a
 * pointer points to, is microseconds since 1970 UTC); a filter member
 * also has `column` and `op` ("=", ">=", "<": it keeps rows whose column
 * compares so with the pointed-to value) when it filters one column.
 * `structs` also holds "spotdb_rows", the layout every page struct
 * shares.
 *
 * A function: `name`, `returns` (C type), `params` (array of `name` and
 * `c_type`; "char (*)[37]" is a pointer to an array of 37 char) and
 * `prototype` (the C declaration, without SPOTDB_API).
 *
 * Struct names in `c_type` strings ("spotdb_user **", "const
 * spotdb_user_filter *") are the `c_struct` of a relation, its filter or
 * rows, or a member of `structs`, or one of `opaque`; names ending in
 * `_cb` or `_fn` are callback types (a binding that passes no callback
 * can treat them as a null function pointer).
 *
 * The test `describe-headers` (tests/describe-check.py) reads the public
 * headers and fails when a declared function, struct member or constant
 * is missing from the document or differs from it.
 *
 * Thread safety: may be called from any thread, at any time, without an
 * open handle.
 */
#ifndef SPOTDB_SCHEMA_H
#define SPOTDB_SCHEMA_H

#include "common.h"

SPOTDB_BEGIN_DECLS

/** Version of the document's format (its `format` member). */
#define SPOTDB_SCHEMA_FORMAT 1

/**
 * Describe the library's relations, structs and functions as JSON.
 *
 * The document is built on the first call and then shared by every
 * caller; concurrent first calls are safe.
 *
 * @return a NUL-terminated UTF-8 JSON document (see the top of this
 *         file) owned by the library and valid, unchanged, until the
 *         process ends: never free or modify it.  NULL only when memory
 *         ran out building it (a later call tries again).
 */
SPOTDB_API const char *spotdb_schema_describe(void);

SPOTDB_END_DECLS

#endif /* SPOTDB_SCHEMA_H */
