/*
 * Many rows in one statement: COPY ... FROM STDIN in binary format, which
 * is atomic (every row or none) and as fast as the server can store rows.
 *
 * Rows are validated before the COPY starts, so a bad value is reported
 * with its row index and costs no round trip (JSON excepted: see
 * check_rows).  What only the server can
 * refuse (a foreign key, a duplicate id) comes back for the whole COPY;
 * the row is then found from the server's context line or from the key
 * its detail quotes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "alloc.h"
#include "table.h"

#define CHUNK (64 * 1024)

typedef struct copybuf {
    unsigned char *data;
    size_t len, cap;
    bool oom;
} copybuf;

static void put(copybuf *b, const void *src, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n > b->cap) {
        size_t cap = (b->len + n) * 2;
        unsigned char *bigger = spotdb__realloc(b->data, cap);

        if (!bigger) {
            b->oom = true;
            return;
        }
        b->data = bigger;
        b->cap = cap;
    }
    memcpy(b->data + b->len, src, n);
    b->len += n;
}

static void put_be(copybuf *b, uint32_t v, int bytes)
{
    unsigned char x[4];

    for (int i = bytes - 1; i >= 0; i--, v >>= 8)
        x[i] = (unsigned char)(v & 0xff);
    put(b, x, (size_t)bytes);
}

/* One field: its length (-1 for NULL) and its binary form, which for
 * every type but jsonb is what a binary parameter carries. */
static void put_field(copybuf *b, spotdb__params *scratch,
                      const spotdb__column *c, const void *v)
{
    size_t len;

    if (!v) {
        put_be(b, UINT32_MAX, 4);
        return;
    }
    if (c->type == SPOTDB__TEXT || c->type == SPOTDB__JSON) {
        len = strlen(v);
        put_be(b, (uint32_t)(len + (c->type == SPOTDB__JSON)), 4);
        if (c->type == SPOTDB__JSON)
            put(b, "\1", 1);            /* jsonb's binary version */
        put(b, v, len);
        return;
    }
    scratch->n = 0;
    spotdb__bind(scratch, c, v);
    put_be(b, (uint32_t)scratch->lengths[0], 4);
    put(b, scratch->values[0], (size_t)scratch->lengths[0]);
}

/* Version 4 UUIDs for rows whose id the caller did not set. */
static int make_ids(spotdb_db *db, char (*ids)[SPOTDB_UUID_SIZE], size_t n)
{
    unsigned char r[16];

    for (size_t i = 0; i < n; i++) {
        if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r)
            return spotdb__fail(db, SPOTDB_ERROR, "insert_many: no random "
                                "bytes for the ids");
        r[6] = (unsigned char)((r[6] & 0x0f) | 0x40);   /* version 4 */
        r[8] = (unsigned char)((r[8] & 0x3f) | 0x80);   /* RFC 4122 variant */
        spotdb__uuid_format(ids[i], r);
    }
    return 0;
}

/* Every row is checked as a create would check it; what the mask alone
 * breaks is no row's fault. */
static int check_rows(spotdb_db *db, const spotdb__table *t,
                      const char *rows, size_t n, uint64_t fields,
                      int64_t *bad_row)
{
    char msg[SPOTDB__ERRMSG_MAX];
    int rc = spotdb__check_fields(db, t, fields, NULL, true);
    uint64_t checked = fields;

    if (rc != 0)
        return rc;
    /* JSON is left to the server here: parsing every value twice would
     * cost more than storing it, and a refusal still names the row (from
     * COPY's line) and the column. */
    for (size_t i = 0; i < t->ncolumns; i++)
        if (t->columns[i].type == SPOTDB__JSON)
            checked &= ~SPOTDB_COLUMN_BIT(i);
    for (size_t i = 0; i < n; i++) {
        if ((rc = spotdb__check_values(db, t, rows + i * t->row_size,
                                       checked)) != 0) {
            snprintf(msg, sizeof msg, "%s", db->errmsg);
            *bad_row = (int64_t)i;
            return spotdb__fail(db, rc, "insert_many: rows[%zu]: %s", i, msg);
        }
    }
    return 0;
}

static void sql_columns(char *sql, size_t n, const spotdb__table *t,
                        uint64_t fields)
{
    size_t len = (size_t)snprintf(sql, n, "COPY %s (", t->relation);
    bool first = true;

    for (size_t i = 0; i < t->ncolumns && len < n; i++)
        if (fields & SPOTDB_COLUMN_BIT(i)) {
            len += (size_t)snprintf(sql + len, n - len, "%s%s",
                                    first ? "" : ", ", t->columns[i].name);
            first = false;
        }
    snprintf(sql + len, n - len, ") FROM STDIN (FORMAT binary)");
}

/* Header, then the rows, sent in chunks as the buffer fills. */
static int send_rows(spotdb_db *db, const spotdb__table *t, const char *rows,
                     size_t n, uint64_t fields, char (*ids)[SPOTDB_UUID_SIZE])
{
    static const unsigned char header[19] = "PGCOPY\n\377\r\n\0\0\0\0\0\0\0\0";
    copybuf b = { NULL, 0, 0, false };
    spotdb__params scratch;
    uint16_t ncols = 0;
    int rc = 0;

    for (size_t i = 0; i < t->ncolumns; i++)
        ncols += (fields & SPOTDB_COLUMN_BIT(i)) != 0;
    put(&b, header, sizeof header);
    for (size_t r = 0; r < n && rc == 0; r++) {
        const char *row = rows + r * t->row_size;

        put_be(&b, ncols, 2);
        for (size_t i = 0; i < t->ncolumns; i++) {
            if (!(fields & SPOTDB_COLUMN_BIT(i)))
                continue;
            put_field(&b, &scratch, &t->columns[i],
                      i == 0 && ids ? ids[r]
                                    : spotdb__field_value(t, i, row));
        }
        if (r + 1 == n)
            put_be(&b, UINT16_MAX, 2);          /* the trailer: -1 */
        if (b.oom)
            rc = spotdb__fail(db, SPOTDB_ENOMEM, "out of memory");
        else if (b.len >= CHUNK || r + 1 == n) {
            if (PQputCopyData(db->conn, (const char *)b.data,
                              (int)b.len) != 1) {
                db->unsure = false;     /* no COPY commits before its end */
                rc = spotdb__fail_result(db, NULL, "insert_many: sending");
            }
            b.len = 0;
        }
    }
    free(b.data);
    return rc;
}

/* The row an error is about: the context's "COPY <table>, line N" (the
 * row the COPY was reading; other context lines, such as the JSON
 * parser's own "line 1", come first), else the row holding the key the
 * detail quotes. */
static int64_t find_bad_row(const spotdb__table *t, const PGresult *res,
                            const char *rows, size_t n, uint64_t fields,
                            char (*ids)[SPOTDB_UUID_SIZE])
{
    const char *ctx = PQresultErrorField(res, PG_DIAG_CONTEXT);
    const char *detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
    char col[64], val[128], copy[96];
    const char *line;

    snprintf(copy, sizeof copy, "COPY %s, line ", t->relation);
    line = ctx ? strstr(ctx, copy) : NULL;
    if (line)
        return strtoll(line + strlen(copy), NULL, 10) - 1;
    if (!detail || sscanf(detail, "Key (%63[^)])=(%127[^)])", col, val) != 2)
        return -1;
    for (size_t i = 0; i < t->ncolumns; i++) {
        if (strcmp(t->columns[i].name, col) != 0 ||
            !(fields & SPOTDB_COLUMN_BIT(i)) ||
            (t->columns[i].type != SPOTDB__UUID &&
             t->columns[i].type != SPOTDB__TEXT))
            continue;
        for (size_t r = 0; r < n; r++) {
            const char *v = i == 0 && ids ? ids[r]
                : spotdb__field_value(t, i, rows + r * t->row_size);

            if (v && strcmp(v, val) == 0)
                return (int64_t)r;
        }
    }
    return -1;
}

/* Name the JSON column when jsonb refused a value json-c let through
 * (the server's message does not say which column). */
static const char *json_column(const spotdb__table *t, const PGresult *res,
                               uint64_t fields)
{
    static _Thread_local char name[96];
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    const char *ctx = PQresultErrorField(res, PG_DIAG_CONTEXT);

    if (!state || (strcmp(state, "22P02") && strcmp(state, "22P05")) ||
        !ctx || !strstr(ctx, "JSON"))
        return "";
    for (size_t i = 0; i < t->ncolumns; i++)
        if (t->columns[i].type == SPOTDB__JSON &&
            (fields & SPOTDB_COLUMN_BIT(i))) {
            snprintf(name, sizeof name, ": %s.%s is not valid JSON for "
                     "jsonb", t->entity, t->columns[i].name);
            return name;
        }
    return "";
}

static int finish(spotdb_db *db, const spotdb__table *t, const char *rows,
                  size_t n, uint64_t fields, char (*ids)[SPOTDB_UUID_SIZE],
                  int64_t *bad_row, int rc, const char *sql, int64_t start)
{
    PGresult *res;

    if (PQputCopyEnd(db->conn, rc ? "libspotdb: insert_many aborted"
                                  : NULL) != 1 && rc == 0) {
        db->unsure = false;
        rc = spotdb__fail_result(db, NULL, "insert_many: ending the COPY");
    }
    while (spotdb__await(db) && (res = PQgetResult(db->conn)) != NULL) {
        spotdb__trace(db, start, "inserting many", sql, NULL, res);
        if (PQresultStatus(res) != PGRES_COMMAND_OK && rc == 0) {
            *bad_row = find_bad_row(t, res, rows, n, fields, ids);
            if (*bad_row >= 0)
                rc = spotdb__fail_result(db, res,
                                         "insert_many: rows[%lld]%s",
                                         (long long)*bad_row,
                                         json_column(t, res, fields));
            else
                rc = spotdb__fail_result(db, res, "insert_many");
        }
        PQclear(res);
    }
    if (db->broken && rc == 0)
        rc = spotdb__fail_none(db, "insert_many");
    return rc;
}

/* PostgreSQL refuses COPY FROM into a table whose row-level security
 * holds the role (SQLSTATE 0A000): a role of migration 0003's spotdb_app
 * or spotdb_service.  1 when refused, 0 when not, or a failure code. */
static int copy_refused(spotdb_db *db)
{
    int rc = spotdb__rls_check(db, "insert_many: checking for row-level "
                                   "security");

    return rc != 0 ? rc : db->rls_on && !db->rls_bypassed;
}

/* Instead of a COPY: each row as a create would insert it, with the id
 * made for it, in the caller's transaction or insert_many's own. */
static int insert_rows(spotdb_db *db, const spotdb__table *t,
                       const char *rows, size_t n, uint64_t fields,
                       char (*ids)[SPOTDB_UUID_SIZE], int64_t *bad_row)
{
    char *row = spotdb__malloc(t->row_size);
    char msg[SPOTDB__ERRMSG_MAX];
    spotdb__write w = { row, fields, NULL, 0, NULL };
    int rc = 0;

    if (!row)
        return spotdb__fail(db, SPOTDB_ENOMEM, "insert_many: out of memory");
    for (size_t r = 0; r < n && rc == 0; r++) {
        memcpy(row, rows + r * t->row_size, t->row_size);
        if (ids)
            memcpy(row + t->columns[0].offset, ids[r], SPOTDB_UUID_SIZE);
        if ((rc = spotdb__insert(NULL, db, t, &w)) != 0) {
            *bad_row = (int64_t)r;
            snprintf(msg, sizeof msg, "%s", db->errmsg);
            spotdb__fail(db, rc, "insert_many: rows[%zu]: %s", r, msg);
        }
    }
    free(row);
    return rc;
}

int spotdb__insert_many(spotdb_db *db, const spotdb__table *t,
                        const void *rows, size_t n, uint64_t fields,
                        char (*ids)[SPOTDB_UUID_SIZE], int64_t *bad_row)
{
    int64_t ignored, start;
    char sql[1024];
    PGresult *res;
    bool refused, own;
    int rc;

    if (!bad_row)
        bad_row = &ignored;
    *bad_row = -1;
    if (!db || !db->conn) {
        spotdb__clear_error(db);
        return spotdb__fail(NULL, SPOTDB_EINVAL, "the handle is NULL");
    }
    if ((rc = spotdb__enter(db, true)) != 0)
        return rc;
    if (n == 0)
        return 0;
    if (!rows)
        return spotdb__fail(db, SPOTDB_EINVAL, "insert_many: rows is NULL");
    if ((rc = check_rows(db, t, rows, n, fields, bad_row)) != 0)
        return rc;
    if (ids && !(fields & SPOTDB_COLUMN_BIT(0))) {
        if ((rc = make_ids(db, ids, n)) != 0)
            return rc;
        fields |= SPOTDB_COLUMN_BIT(0);
    } else if (ids) {
        for (size_t r = 0; r < n; r++)
            memcpy(ids[r], (const char *)rows + r * t->row_size,
                   SPOTDB_UUID_SIZE);
        ids = NULL;             /* the rows' own ids are sent */
    }
    sql_columns(sql, sizeof sql, t, fields);
    if ((rc = copy_refused(db)) < 0)
        return rc;
    refused = rc == 1;
    /* Row by row is all or nothing only inside a transaction, which must
     * count as open (tx_open): each row's insert checks the connection,
     * and one lost midway must fail the call, not reconnect and go on in
     * autocommit. */
    own = refused && !spotdb_in_transaction(db);
    if (own && (rc = spotdb__command(db, "BEGIN", "insert_many")) != 0)
        return rc;
    db->tx_open = db->tx_open || own;
    start = spotdb__trace_start(db);
    res = refused ? NULL : spotdb__run(db, sql, NULL, NULL);
    if (refused) {
        rc = insert_rows(db, t, rows, n, fields, ids, bad_row);
    } else if (PQresultStatus(res) != PGRES_COPY_IN) {
        spotdb__trace(db, start, "inserting many", sql, NULL, res);
        rc = res ? spotdb__fail_result(db, res, "insert_many")
                 : spotdb__fail_none(db, "insert_many");
        PQclear(res);
    } else {
        PQclear(res);
        rc = send_rows(db, t, rows, n, fields, ids);
        rc = finish(db, t, rows, n, fields, ids, bad_row, rc, sql, start);
    }
    if (own && rc == 0)
        rc = spotdb__command(db, "COMMIT", "insert_many");
    else if (own)
        spotdb__quiet(db, "ROLLBACK", "insert_many");
    db->tx_open = db->tx_open && !own;
    return rc;
}
