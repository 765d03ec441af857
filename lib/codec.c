/*
 * Values between the public structs and the server's binary format:
 * parameters to bind, and result rows decoded straight into the structs.
 * Fixed-size values (UUID, boolean, integers, doubles, timestamps) never
 * go through text, so a double or a microsecond arrives exactly; a row's
 * text lives in the same allocation as the row.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
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
#if defined(__GNUC__) && defined(__BYTE_ORDER__) && \
    __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    /* One load and a byte swap instead of a loop: decoding is per value. */
    if (bytes == 8) {
        uint64_t v;

        memcpy(&v, p, 8);
        return __builtin_bswap64(v);
    }
    if (bytes == 4) {
        uint32_t v;

        memcpy(&v, p, 4);
        return __builtin_bswap32(v);
    }
#endif
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

void spotdb__uuid_format(char out[SPOTDB_UUID_SIZE],
                         const unsigned char *b)
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

    /* Text goes untyped, so the server takes the column's own type
     * (varchar): a text parameter would make it compare text, and can
     * steer the planner away from the plan a hand-written query gets. */
    p->types[i] = c->type == SPOTDB__TEXT ? 0 : type_oid(c->type);
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

/* Text points into the result, which libpq keeps NUL-terminated in binary
 * format too: no copy.  Fixed-size values are converted in place. */
static void decode_fixed(const spotdb__column *c, char *field,
                         const unsigned char *v)
{
    uint64_t bits;

    switch (c->type) {
    case SPOTDB__UUID:
        spotdb__uuid_format(field, v);
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
        *(int64_t *)(void *)field = timestamp_from_pg((int64_t)get_be(v, 8));
        break;
    default:
        break;
    }
}

/* false when a value has a size its type cannot have. */
static bool decode_one(const spotdb__table *t, const PGresult *res, int r,
                       char *row)
{
    uint64_t nulls = 0;

    memset(row, 0, t->row_size);
    for (size_t i = 0; i < t->ncolumns; i++) {
        const spotdb__column *c = &t->columns[i];
        char *field = row + c->offset;
        const char *v;
        int len;

        if (PQgetisnull(res, r, (int)i)) {
            nulls |= SPOTDB_COLUMN_BIT(i);
            continue;
        }
        v = PQgetvalue(res, r, (int)i);
        if (c->type == SPOTDB__TEXT) {     /* no length: NUL-terminated */
            *(const char **)(void *)field = v;
            continue;
        }
        len = PQgetlength(res, r, (int)i);
        if (c->type == SPOTDB__JSON) {
            if (len < 1)        /* jsonb's binary form: a version byte */
                return false;
            *(const char **)(void *)field = v + 1;
        } else {
            if ((size_t)len != fixed_size(c->type))
                return false;
            decode_fixed(c, field, (const unsigned char *)v);
        }
    }
    memcpy(row + t->nulls_offset, &nulls, sizeof nulls);
    return true;
}

int spotdb__check_shape(spotdb_db *db, const spotdb__table *t,
                        const PGresult *res)
{
    return check_shape(db, t, res);
}

int spotdb__decode_rows(spotdb_db *db, const spotdb__table *t,
                        const PGresult *res, int first, int n, char *rows)
{
    for (int r = 0; r < n; r++)
        if (!decode_one(t, res, first + r, rows + (size_t)r * t->row_size))
            return spotdb__fail(db, SPOTDB_ESCHEMA, "%s: a value has a size "
                                "its type cannot have", t->relation);
    return 0;
}

/* What the caller gets is preceded by a hidden header holding the result
 * its strings point into; spotdb__release frees both. */
typedef union owner {
    PGresult *res;
    max_align_t align;
} owner;

void *spotdb__owned_alloc(PGresult *res, size_t size)
{
    owner *o = spotdb__malloc(sizeof *o + size);

    if (!o)
        return NULL;
    o->res = res;
    return o + 1;
}

void spotdb__release(void *p)
{
    owner *o;

    if (!p)
        return;
    o = (owner *)p - 1;
    PQclear(o->res);
    free(o);
}

int spotdb__decode_row_into(void **out, void *row, spotdb_db *db,
                            const spotdb__table *t, PGresult *res, int r)
{
    int rc = check_shape(db, t, res);

    if (rc == 0 && (rc = spotdb__decode_rows(db, t, res, r, 1, row)) == 0) {
        ((owner *)row - 1)->res = res;
        *out = row;
        return 0;
    }
    free((owner *)row - 1);
    return rc;
}

int spotdb__decode_row(void **out, spotdb_db *db, const spotdb__table *t,
                       PGresult *res, int r)
{
    void *row;

    if (check_shape(db, t, res) != 0)
        return db->errcode;
    if (!(row = spotdb__owned_alloc(NULL, t->row_size)))
        return spotdb__fail(db, SPOTDB_ENOMEM, "out of memory");
    return spotdb__decode_row_into(out, row, db, t, res, r);
}
