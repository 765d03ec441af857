/*
 * Values between the public structs and the server's binary format:
 * parameters to bind, and result rows decoded straight into the structs.
 * Fixed-size values (UUID, boolean, integers, doubles, timestamps) never
 * go through text, so a double or a microsecond arrives exactly; a row's
 * text lives in the same allocation as the row.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "table.h"
/* Type OIDs of the server's catalog (pg_type.dat); stable across
 * releases. */
#define OID_BOOL 16
#define OID_INT4 23
#define OID_TEXT 25
#define OID_FLOAT8 701
#define OID_VARCHAR 1043
#define OID_TIMESTAMP 1114
#define OID_UUID 2950
#define OID_JSONB 3802

/* Microseconds from 1970-01-01 to 2000-01-01, the server's epoch. */
#define PG_EPOCH_US INT64_C(946684800000000)


static Oid type_oid(spotdb__type type)
{
    switch (type) {
    case SPOTDB__UUID: return OID_UUID;
    case SPOTDB__TEXT: return OID_TEXT;
    case SPOTDB__JSON: return OID_JSONB;
    case SPOTDB__BOOL: return OID_BOOL;
    case SPOTDB__INT32: return OID_INT4;
    case SPOTDB__INT64: return SPOTDB__OID_INT8;
    case SPOTDB__FLOAT64: return OID_FLOAT8;
    case SPOTDB__TIMESTAMP: return OID_TIMESTAMP;
    }
    return 0;
}

static void put_be(unsigned char *p, uint64_t v, int bytes)
{
    for (int i = bytes - 1; i >= 0; i--) {
        p[i] = (unsigned char)(v & 0xff);
        v >>= 8;
    }
}

static uint64_t get_be(const unsigned char *p, int bytes)
{
    uint64_t v = 0;

    for (int i = 0; i < bytes; i++)
        v = (v << 8) | p[i];
    return v;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* `s` has passed spotdb__is_uuid. */
static void uuid_to_bytes(unsigned char out[16], const char *s)
{
    for (int i = 0; i < 16; s++) {
        if (*s == '-')
            continue;
        out[i++] = (unsigned char)(hexval(s[0]) << 4 | hexval(s[1]));
        s++;
    }
}

static void uuid_from_bytes(char out[SPOTDB_UUID_SIZE], const unsigned char *b)
{
    static const char hex[] = "0123456789abcdef";
    char *p = out;

    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *p++ = '-';
        *p++ = hex[b[i] >> 4];
        *p++ = hex[b[i] & 0xf];
    }
    *p = '\0';
}

/* Timestamps outside what int64 microseconds since 2000 can hold; the
 * server rejects the rest of its own range with a clear error. */
static bool timestamp_to_pg(int64_t unix_us, int64_t *pg)
{
    if (unix_us == INT64_MAX || unix_us == INT64_MIN) {
        *pg = unix_us;          /* 'infinity' and '-infinity' */
        return true;
    }
    if (unix_us < INT64_MIN + PG_EPOCH_US + 1)
        return false;
    *pg = unix_us - PG_EPOCH_US;
    return true;
}

static int64_t timestamp_from_pg(int64_t pg)
{
    if (pg == INT64_MAX || pg == INT64_MIN)
        return pg;
    return pg + PG_EPOCH_US;    /* the server's range cannot overflow */
}

int64_t spotdb__get_int64(const char *v)
{
    return (int64_t)get_be((const unsigned char *)v, 8);
}

bool spotdb__encode_timestamp(unsigned char out[8], int64_t unix_us)
{
    int64_t pg;

    if (!timestamp_to_pg(unix_us, &pg))
        return false;
    put_be(out, (uint64_t)pg, 8);
    return true;
}

/* Bind one value: text kinds get the string, the others a pointer to the
 * scalar; NULL binds SQL NULL of the column's type. */
void spotdb__bind(spotdb__params *p, const spotdb__column *c, const void *v)
{
    int i = p->n++;
    unsigned char *b = p->bin[i];
    uint64_t bits;

    p->types[i] = type_oid(c->type);
    p->formats[i] = 0;
    p->lengths[i] = 0;
    p->values[i] = NULL;
    if (!v)
        return;
    switch (c->type) {
    case SPOTDB__TEXT:
    case SPOTDB__JSON:
        p->values[i] = v;
        return;
    case SPOTDB__UUID:
        uuid_to_bytes(b, v);
        p->lengths[i] = 16;
        break;
    case SPOTDB__BOOL:
        b[0] = *(const bool *)v ? 1 : 0;
        p->lengths[i] = 1;
        break;
    case SPOTDB__INT32:
        put_be(b, (uint32_t)*(const int32_t *)v, 4);
        p->lengths[i] = 4;
        break;
    case SPOTDB__INT64:
        put_be(b, (uint64_t)*(const int64_t *)v, 8);
        p->lengths[i] = 8;
        break;
    case SPOTDB__FLOAT64:
        memcpy(&bits, v, 8);
        put_be(b, bits, 8);
        p->lengths[i] = 8;
        break;
    case SPOTDB__TIMESTAMP:
        spotdb__encode_timestamp(b, *(const int64_t *)v);  /* checked */
        p->lengths[i] = 8;
        break;
    }
    p->values[i] = (const char *)b;
    p->formats[i] = 1;
}

void spotdb__bind_int64(spotdb__params *p, int64_t v)
{
    static const spotdb__column count = { "limit", SPOTDB__INT64, 0, 0, 0,
                                          0, NULL, NULL, NULL };
    spotdb__bind(p, &count, &v);
}

static bool type_matches(const spotdb__column *c, Oid oid)
{
    if (c->type == SPOTDB__TEXT)
        return oid == OID_TEXT || oid == OID_VARCHAR;
    return oid == type_oid(c->type);
}

/* The result must have the described columns and types: a database whose
 * schema drifted is reported instead of being decoded as garbage. */
static int check_shape(spotdb_db *db, const spotdb__table *t,
                       const PGresult *res)
{
    if ((size_t)PQnfields(res) < t->ncolumns)
        return spotdb__fail(db, SPOTDB_ESCHEMA,
                            "%s: the server returned %d columns, expected %zu",
                            t->relation, PQnfields(res), t->ncolumns);
    for (size_t i = 0; i < t->ncolumns; i++)
        if (!type_matches(&t->columns[i], PQftype(res, (int)i)))
            return spotdb__fail(db, SPOTDB_ESCHEMA,
                                "%s.%s has type OID %u in the database, not "
                                "the one schema v1 gives it: is the schema "
                                "migrated?", t->relation, t->columns[i].name,
                                (unsigned)PQftype(res, (int)i));
    return 0;
}

static size_t fixed_size(spotdb__type type)
{
    switch (type) {
    case SPOTDB__UUID: return 16;
    case SPOTDB__BOOL: return 1;
    case SPOTDB__INT32: return 4;
    case SPOTDB__INT64:
    case SPOTDB__FLOAT64:
    case SPOTDB__TIMESTAMP: return 8;
    default: return 0;
    }
}

/* Bytes of text the rows [first, first + n) need, terminators included;
 * -1 when a value has a length its type cannot have. */
static long long text_bytes(const spotdb__table *t, const PGresult *res,
                            int first, int n)
{
    long long total = 0;

    for (int r = first; r < first + n; r++)
        for (size_t i = 0; i < t->ncolumns; i++) {
            spotdb__type type = t->columns[i].type;
            int len = PQgetlength(res, r, (int)i);

            if (PQgetisnull(res, r, (int)i))
                continue;
            if (type == SPOTDB__TEXT)
                total += len + 1;
            else if (type == SPOTDB__JSON && len >= 1)
                total += len;     /* version byte out, NUL in */
            else if ((size_t)len != fixed_size(type))
                return -1;
        }
    return total;
}

static void decode_value(const spotdb__column *c, char *field,
                         const unsigned char *v, int len, char **arena)
{
    uint64_t bits;
    int64_t i64;

    switch (c->type) {
    case SPOTDB__TEXT:
    case SPOTDB__JSON:
        if (c->type == SPOTDB__JSON) {   /* jsonb's binary form: version 1 */
            v++;
            len--;
        }
        memcpy(*arena, v, (size_t)len);
        (*arena)[len] = '\0';
        *(const char **)(void *)field = *arena;
        *arena += len + 1;
        break;
    case SPOTDB__UUID:
        uuid_from_bytes(field, v);
        break;
    case SPOTDB__BOOL:
        *(bool *)(void *)field = v[0] != 0;
        break;
    case SPOTDB__INT32:
        *(int32_t *)(void *)field = (int32_t)(uint32_t)get_be(v, 4);
        break;
    case SPOTDB__INT64:
        *(int64_t *)(void *)field = (int64_t)get_be(v, 8);
        break;
    case SPOTDB__FLOAT64:
        bits = get_be(v, 8);
        memcpy(field, &bits, 8);
        break;
    case SPOTDB__TIMESTAMP:
        i64 = (int64_t)get_be(v, 8);
        *(int64_t *)(void *)field = timestamp_from_pg(i64);
        break;
    }
}

static void decode_one(const spotdb__table *t, const PGresult *res, int r,
                       char *row, char **arena)
{
    uint64_t nulls = 0;

    memset(row, 0, t->row_size);
    for (size_t i = 0; i < t->ncolumns; i++) {
        if (PQgetisnull(res, r, (int)i)) {
            nulls |= SPOTDB_COLUMN_BIT(i);
            continue;
        }
        decode_value(&t->columns[i], row + t->columns[i].offset,
                     (const unsigned char *)PQgetvalue(res, r, (int)i),
                     PQgetlength(res, r, (int)i), arena);
    }
    memcpy(row + t->nulls_offset, &nulls, sizeof nulls);
}

/* One allocation: `head` bytes, then n rows, then their text, then
 * `tail` bytes.  *rows and *tail_at point into it. */
char *spotdb__decode_block(spotdb_db *db, const spotdb__table *t,
                          const PGresult *res, int n, size_t head,
                          size_t tail, char **rows, char **tail_at)
{
    long long text = text_bytes(t, res, 0, n);
    char *block, *arena;

    if (check_shape(db, t, res) != 0)
        return NULL;
    if (text < 0) {
        spotdb__fail(db, SPOTDB_ESCHEMA, "%s: a value has a size its type "
                     "cannot have", t->relation);
        return NULL;
    }
    block = malloc(head + (size_t)n * t->row_size + (size_t)text + tail);
    if (!block) {
        spotdb__fail(db, SPOTDB_ENOMEM, "out of memory");
        return NULL;
    }
    *rows = block + head;
    arena = *rows + (size_t)n * t->row_size;
    for (int r = 0; r < n; r++)
        decode_one(t, res, r, *rows + (size_t)r * t->row_size, &arena);
    if (tail_at)
        *tail_at = arena;
    return block;
}

int spotdb__decode_reuse(spotdb_db *db, const spotdb__table *t,
                         const PGresult *res, int r, char **buf, size_t *cap)
{
    long long text = text_bytes(t, res, r, 1);
    size_t need;
    char *arena;

    if (text < 0)
        return spotdb__fail(db, SPOTDB_ESCHEMA, "%s: a value has a size "
                            "its type cannot have", t->relation);
    need = t->row_size + (size_t)text;
    if (need > *cap) {
        char *bigger = realloc(*buf, need * 2);

        if (!bigger)
            return spotdb__fail(db, SPOTDB_ENOMEM, "out of memory");
        *buf = bigger;
        *cap = need * 2;
    }
    arena = *buf + t->row_size;
    decode_one(t, res, r, *buf, &arena);
    return 0;
}

int spotdb__check_shape(spotdb_db *db, const spotdb__table *t,
                        const PGresult *res)
{
    return check_shape(db, t, res);
}

int spotdb__decode_row(void **out, spotdb_db *db, const spotdb__table *t,
                       const PGresult *res, int r)
{
    long long text;
    char *block, *arena;

    if (check_shape(db, t, res) != 0)
        return db->errcode;
    text = text_bytes(t, res, r, 1);
    if (text < 0)
        return spotdb__fail(db, SPOTDB_ESCHEMA, "%s: a value has a size "
                            "its type cannot have", t->relation);
    block = malloc(t->row_size + (size_t)text);
    if (!block)
        return spotdb__fail(db, SPOTDB_ENOMEM, "out of memory");
    arena = block + t->row_size;
    decode_one(t, res, r, block, &arena);
    *out = block;
    return 0;
}

