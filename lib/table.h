/*
 * The column descriptions that drive every table, view and report: one
 * array of spotdb__column per relation says each column's name, type,
 * nullability, place in the public struct and rules.  From it table.c
 * builds the SQL text, binds the parameters, validates input and decodes
 * results, so the entity files hold only what is really theirs.
 */
#ifndef SPOTDB_TABLE_H
#define SPOTDB_TABLE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "internal.h"

typedef enum spotdb__type {
    SPOTDB__UUID,       /* char[SPOTDB_UUID_SIZE] */
    SPOTDB__TEXT,       /* const char *, varchar or text */
    SPOTDB__JSON,       /* const char *, jsonb */
    SPOTDB__BOOL,       /* bool */
    SPOTDB__INT32,      /* int32_t */
    SPOTDB__INT64,      /* int64_t (counts in reports) */
    SPOTDB__FLOAT64,    /* double */
    SPOTDB__TIMESTAMP   /* int64_t microseconds since 1970, UTC */
} spotdb__type;

/* Column flags. */
#define SPOTDB__NOT_NULL 0x01u  /* NOT NULL in the schema */
#define SPOTDB__REQUIRED 0x02u  /* NOT NULL and no default: create needs it */
#define SPOTDB__KEY      0x04u  /* the primary key: never updated */
#define SPOTDB__TRIGGER  0x08u  /* maintained by a trigger: never updated */

/* An extra rule for a text value (an AWS format, JSON) or a number; on a
 * violation returns false and puts the rule, phrased to follow the field
 * name, in `why`.  Never echo the value: it may be sensitive. */
typedef bool (*spotdb__text_rule)(const char *value, char *why, size_t n);
typedef bool (*spotdb__number_rule)(double value, char *why, size_t n);

typedef struct spotdb__column {
    const char *name;               /* column name in SQL */
    spotdb__type type;
    unsigned flags;
    unsigned min_chars;             /* text: 0 or 1 */
    unsigned max_chars;             /* VARCHAR(n); 0 unlimited */
    size_t offset;                  /* of the field in the public struct */
    const char *const *allowed;     /* NULL-terminated values, or NULL */
    spotdb__text_rule text_rule;
    spotdb__number_rule number_rule;
} spotdb__column;

/* A member of a public filter struct: a pointer (const char *, const
 * bool *, const int64_t *) whose NULL means "no filter". */
typedef struct spotdb__filter {
    size_t column;                  /* index into the table's columns */
    const char *op;                 /* "=", ">=", "<" */
    size_t offset;                  /* of the pointer in the filter struct */
} spotdb__filter;

/* Text derived from a table's description once, on first use, and shared
 * by every handle and thread: state 0 (not built), 1 (being built by one
 * thread; the others build their own copy meanwhile), 2 (ready). */
typedef struct spotdb__table_text {
    atomic_int state;
    size_t len;
    char select[1024];              /* "id, email, ..." */
} spotdb__table_text;

typedef struct spotdb__table {
    const char *entity;             /* "account": for messages */
    const char *relation;           /* "accounts" */
    const spotdb__column *columns;
    size_t ncolumns;
    size_t row_size;                /* sizeof the public struct */
    size_t nulls_offset;            /* of its uint64_t nulls */
    const spotdb__filter *filters;
    size_t nfilters;
    unsigned filter_version;        /* newest version of the filter struct */
    /* Keyset order: this NOT NULL timestamp column, then id. */
    size_t order_column;
    bool descending;
    /* Rules that span columns, or NULL. */
    int (*check_row)(spotdb_db *db, const void *row, uint64_t fields);
    spotdb__table_text *text;       /* the derived SQL text */
} spotdb__table;

/* A column written from something else than the struct: a secret text
 * value (the password hash), or a constant SQL expression. */
typedef struct spotdb__extra {
    const char *column;
    const char *value;              /* bound as text, or NULL */
    const char *sql;                /* used when value is NULL */
} spotdb__extra;

/* Create's column taken from a row found by a key, in the same statement:
 * INSERT ... SELECT ..., l.id FROM <relation> l WHERE l.<key> = $n.  The
 * key value is checked by the rules of its column in the other table. */
typedef struct spotdb__lookup {
    size_t column;                  /* the column it fills */
    const struct spotdb__table *table;  /* where the row is found */
    size_t key;                     /* column of `table` to match */
    const char *value;
} spotdb__lookup;

/* Layout every public *_rows struct shares. */
typedef struct spotdb__rows {
    void *items;
    size_t count;
    const char *next_cursor;
} spotdb__rows;

/* Input of spotdb__insert and spotdb__update. */
typedef struct spotdb__write {
    const void *row;
    uint64_t fields;
    const spotdb__extra *extras;
    size_t nextras;
    const spotdb__lookup *lookup;   /* insert only */
} spotdb__write;

/* ---- codec.c ----------------------------------------------------------- */

#define SPOTDB__MAX_PARAMS 48
#define SPOTDB__OID_INT8 20

/* Parameters of one statement, fixed-size values in binary. */
typedef struct spotdb__params {
    int n;
    const char *values[SPOTDB__MAX_PARAMS];
    int lengths[SPOTDB__MAX_PARAMS];
    int formats[SPOTDB__MAX_PARAMS];
    Oid types[SPOTDB__MAX_PARAMS];
    unsigned char bin[SPOTDB__MAX_PARAMS][16];
} spotdb__params;

/* Bind one value of column c's type: text kinds take the string, the
 * others a pointer to the scalar; NULL binds SQL NULL.  The value has
 * passed validation. */
void spotdb__bind(spotdb__params *p, const spotdb__column *c, const void *v);
void spotdb__bind_int64(spotdb__params *p, int64_t v);
/* A timestamp in the server's binary form; false when out of range. */
bool spotdb__encode_timestamp(unsigned char out[8], int64_t unix_us);
/* 16 UUID bytes as 36 lower-case characters and a NUL. */
void spotdb__uuid_format(char out[SPOTDB_UUID_SIZE],
                         const unsigned char *b);
/* A big-endian int8 of a binary result. */
int64_t spotdb__get_int64(const char *v);
/* Decode rows [first, first + n) of res, whose first columns are t's,
 * into `rows` (n structs).  Strings point into res, which must outlive
 * the rows.  ESCHEMA for a value of an impossible size. */
int spotdb__decode_rows(spotdb_db *db, const spotdb__table *t,
                        const PGresult *res, int first, int n, char *rows);
/* ESCHEMA unless res has t's columns and types. */
int spotdb__check_shape(spotdb_db *db, const spotdb__table *t,
                        const PGresult *res);
/* `size` bytes handed to the caller, preceded by a hidden header that
 * owns res (the result the strings point into); NULL when out of memory.
 * spotdb__release frees both, and is what every public *_free calls. */
void *spotdb__owned_alloc(PGresult *res, size_t size);
void spotdb__release(void *p);
/* Row r of res as one owned row: on success res belongs to the row. */
int spotdb__decode_row(void **out, spotdb_db *db, const spotdb__table *t,
                       PGresult *res, int r);
/* The same into `row`, a block of spotdb__owned_alloc(NULL, row_size)
 * made before a write (so that out of memory cannot follow a stored
 * write); the block is freed on failure. */
int spotdb__decode_row_into(void **out, void *row, spotdb_db *db,
                            const spotdb__table *t, PGresult *res, int r);

/* ---- statements.c ------------------------------------------------------ */

/* Run `sql` with binary results: prepared and reused per connection, or
 * unnamed; NULL with the error recorded (`what` as context). */
PGresult *spotdb__execute(spotdb_db *db, const char *sql,
                          const spotdb__params *p, const char *what);


/* ---- table.c ----------------------------------------------------------- */

int spotdb__insert(void **out, spotdb_db *db, const spotdb__table *t,
                   const spotdb__write *w);
int spotdb__update(void **out, spotdb_db *db, const spotdb__table *t,
                   const char *id, const spotdb__write *w);
int spotdb__delete(spotdb_db *db, const spotdb__table *t, const char *id);
/* Get by the columns `keys` (indexes, nkeys <= 2) equal to `values`. */
int spotdb__get(void **out, spotdb_db *db, const spotdb__table *t,
                const size_t *keys, const char *const *values, size_t nkeys);
int spotdb__list(spotdb__rows **out, spotdb_db *db, const spotdb__table *t,
                 const void *filter, const char *cursor, int32_t limit);
int spotdb__count(int64_t *out, spotdb_db *db, const spotdb__table *t,
                  const void *filter);

/* Receives one row of a stream; returns 0 to go on. */
typedef int (*spotdb__row_fn)(const void *row, void *ctx);

/* Every row the filter selects, in list order, to fn. */
int spotdb__list_stream(spotdb_db *db, const spotdb__table *t,
                        const void *filter, spotdb__row_fn fn, void *ctx);
/* A view: filters of the table, a fixed ORDER BY, a limit (0: none); into
 * a page (out) or to fn (out NULL). */
int spotdb__view(spotdb__rows **out, spotdb_db *db, const spotdb__table *t,
                 const void *filter, const char *order_by, int32_t limit,
                 spotdb__row_fn fn, void *ctx);
/* Entry checks of a hand-written read (clears errors, out or fn). */
int spotdb__begin_read(spotdb__rows **out, spotdb_db *db,
                       const spotdb__table *t, spotdb__row_fn fn);
/* Rows of a hand-written query whose result columns are t's, into a page
 * or to fn. */
int spotdb__query(spotdb__rows **out, spotdb_db *db, const spotdb__table *t,
                  const char *sql, const spotdb__params *p,
                  spotdb__row_fn fn, void *ctx);
/* The two halves of spotdb__check_write: what the fields mask alone
 * breaks (unknown bits, a required column left out, ...), then the values
 * of one row. */
int spotdb__check_fields(spotdb_db *db, const spotdb__table *t,
                         uint64_t fields, const spotdb__lookup *lookup,
                         bool create);
int spotdb__check_values(spotdb_db *db, const spotdb__table *t,
                         const void *row, uint64_t fields);
/* What spotdb__insert (create) and spotdb__update check before any round
 * trip, for callers with expensive work to do in between (bcrypt). */
int spotdb__check_write(spotdb_db *db, const spotdb__table *t,
                        const spotdb__write *w, bool create);
/* The value of column i of a public struct as spotdb__bind takes it, or
 * NULL for SQL NULL (see spotdb/rows.h for what counts as NULL). */
const void *spotdb__field_value(const spotdb__table *t, size_t i,
                                const void *row);
/* Check one text value against column `col` of t (validators of lookup
 * keys and login names). */
int spotdb__check_text(spotdb_db *db, const spotdb__table *t, size_t col,
                       const char *value);

/* The select list of t ("id, email, ...") into buf. */
void spotdb__select_list(char *buf, size_t n, const spotdb__table *t);

/* ---- copy.c ------------------------------------------------------------ */

/* n rows of t's struct in one binary COPY; see spotdb/rows.h. */
int spotdb__insert_many(spotdb_db *db, const spotdb__table *t,
                        const void *rows, size_t n, uint64_t fields,
                        char (*ids)[SPOTDB_UUID_SIZE], int64_t *bad_row);

#define SPOTDB__INSERT_MANY_FUNCTION(ENT, TBL)                              \
    int spotdb_##ENT##_insert_many(spotdb_db *db,                           \
                                   const spotdb_##ENT *rows, size_t n,      \
                                   uint64_t fields,                         \
                                   char (*ids)[SPOTDB_UUID_SIZE],           \
                                   int64_t *bad_row)                        \
    {                                                                       \
        return spotdb__insert_many(db, &TBL, rows, n, fields, ids,          \
                                   bad_row);                                \
    }

/* ---- stream.c ---------------------------------------------------------- */

/* Run sql in single-row mode, decoding each row into one reused buffer
 * and handing it to fn; returns 0, fn's non-zero value, or a code. */
int spotdb__stream_rows(spotdb_db *db, const spotdb__table *t,
                        const char *sql, const spotdb__params *p,
                        const char *what, spotdb__row_fn fn, void *ctx);

/* ---- validate.c -------------------------------------------------------- */

bool spotdb__is_uuid(const char *s);
/* Number of characters of valid UTF-8 `s`, or -1 when it is not UTF-8. */
long spotdb__utf8_chars(const char *s);
bool spotdb__rule_aws_account(const char *s, char *why, size_t n);
bool spotdb__rule_role_arn(const char *s, char *why, size_t n);
bool spotdb__rule_external_id(const char *s, char *why, size_t n);
bool spotdb__rule_ec2_id(const char *s, char *why, size_t n);
bool spotdb__rule_email(const char *s, char *why, size_t n);
bool spotdb__rule_username(const char *s, char *why, size_t n);
bool spotdb__rule_json(const char *s, char *why, size_t n);
bool spotdb__rule_probability(double v, char *why, size_t n);
bool spotdb__rule_finite(double v, char *why, size_t n);

/* Values of the enumerated text columns. */
extern const char *const spotdb__pipeline_modes[];
extern const char *const spotdb__decisions[];
extern const char *const spotdb__environment_types[];

/* Every entity's description (in its own file). */
extern const spotdb__table spotdb__user_table;
extern const spotdb__table spotdb__account_table;
extern const spotdb__table spotdb__instance_table;
extern const spotdb__table spotdb__model_table;
extern const spotdb__table spotdb__experiment_log_table;
extern const spotdb__table spotdb__active_instance_table;
extern const spotdb__table spotdb__recent_experiment_table;
extern const spotdb__table spotdb__model_performance_table;

/* The description of entity ENT (public struct spotdb_ENT), from its
 * column and filter arrays: what every entity file declares once.  NAME
 * is the relation in SQL; ORDER the keyset column (lists only), DESC its
 * direction; CHECK the rule across columns, or NULL. */
#define SPOTDB__NELEMS(a) (sizeof (a) / sizeof *(a))
#define SPOTDB__TABLE(ENT, NAME, COLUMNS, FILTERS, NFILTERS, FILTER_VERSION, \
                      ORDER, DESC, CHECK)                                   \
    static spotdb__table_text ENT##_text;                                   \
    const spotdb__table spotdb__##ENT##_table = {                           \
        #ENT, NAME, COLUMNS, SPOTDB__NELEMS(COLUMNS), sizeof(spotdb_##ENT),  \
        offsetof(spotdb_##ENT, nulls), FILTERS, NFILTERS, FILTER_VERSION,   \
        ORDER, DESC, CHECK, &ENT##_text,                                    \
    }

/* Columns other entities look rows up by. */
#define SPOTDB__USER_USERNAME_COLUMN 2
#define SPOTDB__ACCOUNT_ACCOUNT_ID_COLUMN 2

/* Column descriptions are written with these, so each line of a table
 * reads as "name, type, flags, limits, rules". */
#define SPOTDB__COL(st, field, ty, fl, minc, maxc, allow, trule, nrule) \
    { #field, ty, fl, minc, maxc, offsetof(st, field), allow, trule, nrule }

/*
 * The public functions every table has, as thin wrappers over table.c.
 * ENT is the entity (user), TBL its description; the *_rows struct must
 * have spotdb__rows' layout, which the static assertions check.
 */
#define SPOTDB__ROWS_FUNCTIONS(ENT)                                         \
    _Static_assert(offsetof(spotdb_##ENT##_rows, items) ==                  \
                   offsetof(spotdb__rows, items), "rows layout");          \
    _Static_assert(offsetof(spotdb_##ENT##_rows, count) ==                  \
                   offsetof(spotdb__rows, count), "rows layout");          \
    _Static_assert(offsetof(spotdb_##ENT##_rows, next_cursor) ==            \
                   offsetof(spotdb__rows, next_cursor), "rows layout");    \
    void spotdb_##ENT##_rows_free(spotdb_##ENT##_rows *rows)                \
    {                                                                       \
        spotdb__release(rows);                                              \
    }

#define SPOTDB__TABLE_FUNCTIONS(ENT, TBL)                                   \
    SPOTDB__ROWS_FUNCTIONS(ENT)                                             \
    int spotdb_##ENT##_get(spotdb_##ENT **out, spotdb_db *db,               \
                           const char *id)                                  \
    {                                                                       \
        static const size_t key = 0;                                        \
        return spotdb__get((void **)out, db, &TBL, &key, &id, 1);           \
    }                                                                       \
    int spotdb_##ENT##_update(spotdb_##ENT **out, spotdb_db *db,            \
                              const char *id, const spotdb_##ENT *in,       \
                              uint64_t fields)                              \
    {                                                                       \
        spotdb__write w = { in, fields, NULL, 0, NULL };                    \
        return spotdb__update((void **)out, db, &TBL, id, &w);              \
    }                                                                       \
    int spotdb_##ENT##_delete(spotdb_db *db, const char *id)                \
    {                                                                       \
        return spotdb__delete(db, &TBL, id);                                \
    }                                                                       \
    int spotdb_##ENT##_list(spotdb_##ENT##_rows **out, spotdb_db *db,       \
                            const spotdb_##ENT##_filter *filter,            \
                            const char *cursor, int32_t limit)              \
    {                                                                       \
        return spotdb__list((spotdb__rows **)out, db, &TBL, filter,         \
                            cursor, limit);                                 \
    }                                                                       \
    int spotdb_##ENT##_count(int64_t *out, spotdb_db *db,                   \
                             const spotdb_##ENT##_filter *filter)           \
    {                                                                       \
        return spotdb__count(out, db, &TBL, filter);                        \
    }                                                                       \
    void spotdb_##ENT##_free(spotdb_##ENT *row)                             \
    {                                                                       \
        spotdb__release(row);                                               \
    }                                                                       \
    SPOTDB__LIST_STREAM_FUNCTION(ENT, TBL)

/* The typed callback of a public *_stream function behind the untyped
 * one of table.c (calling through a cast function pointer would be
 * undefined behaviour). */
#define SPOTDB__STREAM_TRAMPOLINE(ENT)                                      \
    struct ENT##_stream { spotdb_##ENT##_cb cb; void *payload; };          \
    static int ENT##_each(const void *row, void *ctx)                      \
    {                                                                       \
        const struct ENT##_stream *s = ctx;                                 \
        return s->cb(row, s->payload);                                      \
    }

#define SPOTDB__LIST_STREAM_FUNCTION(ENT, TBL)                              \
    SPOTDB__STREAM_TRAMPOLINE(ENT)                                          \
    int spotdb_##ENT##_stream(spotdb_db *db,                                \
                              const spotdb_##ENT##_filter *filter,          \
                              spotdb_##ENT##_cb cb, void *payload)          \
    {                                                                       \
        struct ENT##_stream s = { cb, payload };                            \
        return spotdb__list_stream(db, &TBL, filter, cb ? ENT##_each : NULL, \
                                   &s);                                     \
    }

/* create for tables without specifics. */
#define SPOTDB__CREATE_FUNCTION(ENT, TBL)                                   \
    int spotdb_##ENT##_create(spotdb_##ENT **out, spotdb_db *db,            \
                              const spotdb_##ENT *in, uint64_t fields)      \
    {                                                                       \
        spotdb__write w = { in, fields, NULL, 0, NULL };                    \
        return spotdb__insert((void **)out, db, &TBL, &w);                  \
    }

#endif /* SPOTDB_TABLE_H */
