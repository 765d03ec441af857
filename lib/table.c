/*
 * Create, read, update, delete, list and count for any relation, driven
 * by its spotdb__column description (table.h).
 *
 * Values travel as parameters, never in the SQL text, which holds only
 * the identifiers of the descriptions.  Fixed-size values are sent and
 * received in binary (codec.c), so a timestamp or a double arrives
 * exactly; a returned row or page keeps the result its strings point
 * into, and its *_free releases both.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "table.h"

#define SQL_MAX 4096

/* ---- SQL text -------------------------------------------------------- */

typedef struct sql_buf {
    char text[SQL_MAX];
    size_t len;
} sql_buf;

/* Only identifiers from the descriptions go in here, so the buffer's size
 * is a property of the code; overflowing it is a bug, caught in tests. */
static void sql_put(sql_buf *b, const char *s, size_t n)
{
    if (n >= sizeof b->text - b->len)
        abort();
    memcpy(b->text + b->len, s, n);
    b->len += n;
    b->text[b->len] = '\0';
}

/* printf for the two conversions SQL text here needs, %s and %d: this runs
 * for every column of every statement, where vsnprintf's generality costs
 * more than the rest of building the statement. */
SPOTDB__PRINTF(2, 3)
static void sql_add(sql_buf *b, const char *fmt, ...)
{
    va_list ap;
    char num[16];
    const char *s;

    va_start(ap, fmt);
    for (const char *f = fmt; *f; f++) {
        size_t run = strcspn(f, "%");

        sql_put(b, f, run);
        f += run;
        if (!*f)
            break;
        if (*++f == 's') {
            s = va_arg(ap, const char *);
            sql_put(b, s, strlen(s));
        } else if (*f == 'd') {
            unsigned v = (unsigned)va_arg(ap, int);   /* $n: positive */
            size_t k = sizeof num;

            do
                num[--k] = (char)('0' + v % 10);
            while ((v /= 10) != 0);
            sql_put(b, num + k, sizeof num - k);
        } else {
            abort();            /* a conversion this code never uses */
        }
    }
    va_end(ap);
}

/* ", name" (or "name" first): the hot loops over columns. */
static void sql_item(sql_buf *b, bool first, const char *name)
{
    if (!first)
        sql_put(b, ", ", 2);
    sql_put(b, name, strlen(name));
}

/* ", $n" (or "$n" first). */
static void sql_param(sql_buf *b, bool first, int n)
{
    char num[16];
    size_t k = sizeof num;

    do
        num[--k] = (char)('0' + n % 10);
    while ((n /= 10) != 0);
    num[--k] = '$';
    if (!first)
        sql_put(b, ", ", 2);
    sql_put(b, num + k, sizeof num - k);
}

static void build_select_list(sql_buf *b, const spotdb__table *t);
static void sql_select_list(sql_buf *b, const spotdb__table *t);

void spotdb__select_list(char *buf, size_t n, const spotdb__table *t)
{
    sql_buf b = { .len = 0 };

    sql_select_list(&b, t);
    snprintf(buf, n, "%s", b.text);
}

/* The select list is built once per table and then copied. */
static void sql_select_list(sql_buf *b, const spotdb__table *t)
{
    spotdb__table_text *x = t->text;
    size_t start = b->len;
    int expected = 0;

    if (atomic_load_explicit(&x->state, memory_order_acquire) == 2) {
        sql_put(b, x->select, x->len);
        return;
    }
    build_select_list(b, t);
    if (b->len - start < sizeof x->select &&
        atomic_compare_exchange_strong(&x->state, &expected, 1)) {
        memcpy(x->select, b->text + start, b->len - start);
        x->len = b->len - start;
        atomic_store_explicit(&x->state, 2, memory_order_release);
    }
}

static void build_select_list(sql_buf *b, const spotdb__table *t)
{
    for (size_t i = 0; i < t->ncolumns; i++)
        sql_item(b, i == 0, t->columns[i].name);
}

/* ---- validation ------------------------------------------------------ */

static const char *type_rule(spotdb__type type)
{
    return type == SPOTDB__UUID ? "is not a UUID (8-4-4-4-12 hexadecimal "
                                  "digits)"
                                : "is out of range";
}

static int invalid(spotdb_db *db, const spotdb__table *t,
                   const spotdb__column *c, const char *rule)
{
    return spotdb__fail(db, SPOTDB_EINVAL, "%s.%s: %s", t->entity, c->name,
                        rule);
}

static int check_text(spotdb_db *db, const spotdb__table *t,
                      const spotdb__column *c, const char *s)
{
    char why[256];
    long chars = spotdb__utf8_chars(s);

    if (chars < 0)
        return invalid(db, t, c, "is not valid UTF-8");
    if ((unsigned long)chars < c->min_chars)
        return invalid(db, t, c, "must not be empty");
    if (c->max_chars && (unsigned long)chars > c->max_chars) {
        snprintf(why, sizeof why, "is longer than %u characters (%ld)",
                 c->max_chars, chars);
        return invalid(db, t, c, why);
    }
    if (c->allowed) {
        size_t len = 0;

        for (const char *const *a = c->allowed; *a; a++)
            if (strcmp(*a, s) == 0)
                return 0;
        len += (size_t)snprintf(why, sizeof why, "must be one of");
        for (const char *const *a = c->allowed; *a && len < sizeof why; a++)
            len += (size_t)snprintf(why + len, sizeof why - len, "%s %s",
                                    a == c->allowed ? "" : ",", *a);
        return invalid(db, t, c, why);
    }
    if (c->text_rule && !c->text_rule(s, why, sizeof why))
        return invalid(db, t, c, why);
    return 0;
}

/* A non-NULL value about to be written or compared: text kinds are the
 * string, the others point to the scalar. */
static int check_value(spotdb_db *db, const spotdb__table *t,
                       const spotdb__column *c, const void *v)
{
    char why[256];
    unsigned char ts[8];

    switch (c->type) {
    case SPOTDB__TEXT:
    case SPOTDB__JSON:
        return check_text(db, t, c, v);
    case SPOTDB__UUID:
        return spotdb__is_uuid(v) ? 0 : invalid(db, t, c, type_rule(c->type));
    case SPOTDB__FLOAT64:
        if (c->number_rule && !c->number_rule(*(const double *)v, why,
                                              sizeof why))
            return invalid(db, t, c, why);
        return 0;
    case SPOTDB__TIMESTAMP:
        if (!spotdb__encode_timestamp(ts, *(const int64_t *)v))
            return invalid(db, t, c, type_rule(c->type));
        return 0;
    case SPOTDB__BOOL:
    case SPOTDB__INT32:
    case SPOTDB__INT64:
        return 0;
    }
    return 0;
}

int spotdb__check_text(spotdb_db *db, const spotdb__table *t, size_t col,
                       const char *value)
{
    if (!value)
        return invalid(db, t, &t->columns[col], "must not be NULL");
    return check_value(db, t, &t->columns[col], value);
}

static uint64_t row_nulls(const spotdb__table *t, const void *row)
{
    uint64_t nulls;

    memcpy(&nulls, (const char *)row + t->nulls_offset, sizeof nulls);
    return nulls;
}

/* The value of column i of a public struct, as spotdb__bind() and
 * check_value() take it, or NULL for SQL NULL. */
const void *spotdb__field_value(const spotdb__table *t, size_t i,
                               const void *row)
{
    const spotdb__column *c = &t->columns[i];
    const char *field = (const char *)row + c->offset;

    if (row_nulls(t, row) & SPOTDB_COLUMN_BIT(i))
        return NULL;
    switch (c->type) {
    case SPOTDB__TEXT:
    case SPOTDB__JSON:
        return *(const char *const *)(const void *)field;
    case SPOTDB__UUID:
        /* The field is a fixed array; a caller may have filled all of it
         * without a terminator, which spotdb__is_uuid then refuses. */
        if (field[0] == '\0')
            return NULL;
        if (memchr(field, '\0', SPOTDB_UUID_SIZE) == NULL)
            return "not terminated";
        return field;
    default:
        return field;
    }
}

static uint64_t all_bits(const spotdb__table *t)
{
    return t->ncolumns >= 64 ? UINT64_MAX
                             : SPOTDB_COLUMN_BIT(t->ncolumns) - 1;
}

/* Everything a write can be refused for without asking the server. */
int spotdb__check_fields(spotdb_db *db, const spotdb__table *t,
                         uint64_t fields, const spotdb__lookup *lookup,
                         bool create)
{
    if (fields & ~all_bits(t))
        return spotdb__fail(db, SPOTDB_EINVAL,
                            "%s: fields has bits that name no column "
                            "(0x%llx)", t->entity,
                            (unsigned long long)(fields & ~all_bits(t)));
    for (size_t i = 0; i < t->ncolumns; i++) {
        const spotdb__column *c = &t->columns[i];
        uint64_t bit = SPOTDB_COLUMN_BIT(i);
        bool in_lookup = lookup && lookup->column == i;

        if (in_lookup && (fields & bit))
            return invalid(db, t, c, "is taken from the lookup; leave it "
                                     "out of fields");
        if (!create && (fields & bit) && (c->flags & SPOTDB__KEY))
            return invalid(db, t, c, "is the primary key and cannot be "
                                     "updated");
        if (!create && (fields & bit) && (c->flags & SPOTDB__TRIGGER))
            return invalid(db, t, c, "is set by a trigger and cannot be "
                                     "written");
        if (create && (c->flags & SPOTDB__REQUIRED) && !(fields & bit) &&
            !in_lookup)
            return invalid(db, t, c, "is required (NOT NULL without a "
                                     "default): add its bit to fields");
    }
    return 0;
}

int spotdb__check_values(spotdb_db *db, const spotdb__table *t,
                         const void *row, uint64_t fields)
{
    int rc;

    for (size_t i = 0; i < t->ncolumns; i++) {
        const spotdb__column *c = &t->columns[i];
        const void *v;

        if (!(fields & SPOTDB_COLUMN_BIT(i)))
            continue;
        v = spotdb__field_value(t, i, row);
        if (!v && (c->flags & SPOTDB__NOT_NULL))
            return invalid(db, t, c, "must not be NULL");
        if (v && (rc = check_value(db, t, c, v)) != 0)
            return rc;
    }
    return t->check_row ? t->check_row(db, row, fields) : 0;
}

int spotdb__check_write(spotdb_db *db, const spotdb__table *t,
                        const spotdb__write *w, bool create)
{
    int rc;

    if (!w->row)
        return spotdb__fail(db, SPOTDB_EINVAL, "%s: the input row is NULL",
                            t->entity);
    if (w->lookup && (rc = spotdb__check_text(db, w->lookup->table,
                                              w->lookup->key,
                                              w->lookup->value)) != 0)
        return rc;
    if ((rc = spotdb__check_fields(db, t, w->fields, w->lookup, create)) != 0)
        return rc;
    return spotdb__check_values(db, t, w->row, w->fields);
}

/* ---- running and decoding -------------------------------------------- */

static PGresult *run(spotdb_db *db, const sql_buf *sql,
                     const spotdb__params *p, const char *what)
{
    return spotdb__execute(db, sql->text, p, what);
}

/* What a statement that found no row was looking for: "no <entity> with
 * <column> "<value>"[ and ...]", formatted only when it happens. */
typedef struct missing {
    const char *entity, *column, *value, *column2, *value2;
} missing;

static int not_found(spotdb_db *db, const missing *m)
{
    if (m->column2)
        return spotdb__fail(db, SPOTDB_ENOTFOUND, "no %s with %s \"%s\" and "
                            "%s \"%s\"", m->entity, m->column, m->value,
                            m->column2, m->value2);
    return spotdb__fail(db, SPOTDB_ENOTFOUND, "no %s with %s \"%s\"",
                        m->entity, m->column, m->value);
}

/* The row of a statement that returns at most one, decoded into `spare`
 * when not NULL (a write's row, allocated before it ran), which is freed
 * when unused. */
static int one_row(void **out, spotdb_db *db, const spotdb__table *t,
                   PGresult *res, const missing *m, void *spare)
{
    int rc = 0;

    if (!res) {
        rc = db->errcode;
    } else if (PQntuples(res) == 0) {
        rc = not_found(db, m);
    } else if (out) {
        rc = spare ? spotdb__decode_row_into(out, spare, db, t, res, 0)
                   : spotdb__decode_row(out, db, t, res, 0);
        if (rc == 0)
            return 0;           /* the row owns res now */
        spare = NULL;           /* freed by decode_row_into */
    }
    spotdb__release(spare);
    PQclear(res);
    return rc;
}

/* A write's row is allocated before the statement runs: running out of
 * memory once the server has stored the write would report a failure
 * for a write that happened. */
static int spare_row(void **spare, spotdb_db *db, const spotdb__table *t,
                     void **out)
{
    *spare = NULL;
    if (out && !(*spare = spotdb__owned_alloc(NULL, t->row_size)))
        return spotdb__fail(db, SPOTDB_ENOMEM, "out of memory");
    return 0;
}

/* "<verb> <noun>", the context of a server's error message, without
 * snprintf: it is built for every call and read only on failure. */
static const char *context(char *buf, size_t n, const char *verb,
                           const char *noun)
{
    size_t a = strlen(verb), b = strlen(noun);

    if (a + b + 2 > n)
        return verb;
    memcpy(buf, verb, a);
    buf[a] = ' ';
    memcpy(buf + a + 1, noun, b + 1);
    return buf;
}

/* Entry of every operation: a fresh error, NULL outputs, a handle. */
static int begin_call(spotdb_db *db, void **out)
{
    if (out)
        *out = NULL;
    if (!db || !db->conn) {
        spotdb__clear_error(db);
        return spotdb__fail(NULL, SPOTDB_EINVAL, "the handle is NULL");
    }
    return spotdb__enter(db, true);
}

static int check_id(spotdb_db *db, const spotdb__table *t, const char *id)
{
    if (!id || !spotdb__is_uuid(id))
        return spotdb__fail(db, SPOTDB_EINVAL, "%s.id: %s", t->entity,
                            id ? type_rule(SPOTDB__UUID) : "must not be NULL");
    return 0;
}

/* ---- the operations -------------------------------------------------- */

static void bind_extras(sql_buf *sql, spotdb__params *p, const spotdb__write *w,
                        bool update)
{
    static const spotdb__column text = { "extra", SPOTDB__TEXT, 0, 0, 0, 0,
                                         NULL, NULL, NULL };

    for (size_t i = 0; i < w->nextras; i++) {
        const spotdb__extra *e = &w->extras[i];

        if (update)
            sql_add(sql, "%s%s = ", p->n || i ? ", " : "", e->column);
        else
            sql_add(sql, ", ");
        if (e->value) {
            spotdb__bind(p, &text, e->value);
            sql_add(sql, "$%d", p->n);
        } else {
            sql_add(sql, "%s", e->sql);
        }
    }
}

/* json-c, even strict, lets some invalid JSON through (single-quoted
 * strings) and jsonb refuses valid JSON that holds \u0000; the server's
 * message then does not say which column.  A table has one JSON column at
 * most, so it can be named here. */
static PGresult *run_write(spotdb_db *db, const spotdb__table *t,
                           const spotdb__write *w, const sql_buf *sql,
                           const spotdb__params *p, const char *what)
{
    PGresult *res = run(db, sql, p, what);
    char msg[SPOTDB__ERRMSG_MAX];

    /* 22P05 is jsonb refusing \u0000; 22P02 can be any input syntax, so
     * it counts only when the message is about JSON. */
    if (res || (strcmp(db->sqlstate, "22P05") != 0 &&
                (strcmp(db->sqlstate, "22P02") != 0 ||
                 !strstr(db->errmsg, "json"))))
        return res;
    for (size_t i = 0; i < t->ncolumns; i++)
        if (t->columns[i].type == SPOTDB__JSON &&
            (w->fields & SPOTDB_COLUMN_BIT(i))) {
            snprintf(msg, sizeof msg, "%s", db->errmsg);
            spotdb__fail(db, SPOTDB_EINVAL, "%s.%s: is not valid JSON for "
                         "jsonb (%s)", t->entity, t->columns[i].name, msg);
            break;
        }
    return NULL;
}

int spotdb__insert(void **out, spotdb_db *db, const spotdb__table *t,
                   const spotdb__write *w)
{
    sql_buf sql = { .len = 0 };
    spotdb__params p = { .n = 0 };
    const spotdb__lookup *lk = w->lookup;
    int rc;
    bool first = true;
    char what[64];
    missing m = { t->entity, "id", "", NULL, NULL };
    void *spare;

    if ((rc = begin_call(db, out)) != 0 ||
        (rc = spotdb__check_write(db, t, w, true)) != 0 ||
        (rc = spare_row(&spare, db, t, out)) != 0)
        return rc;
    sql_add(&sql, "INSERT INTO %s (", t->relation);
    for (size_t i = 0; i < t->ncolumns; i++)
        if ((w->fields & SPOTDB_COLUMN_BIT(i)) || (lk && lk->column == i)) {
            sql_item(&sql, first, t->columns[i].name);
            first = false;
        }
    for (size_t i = 0; i < w->nextras; i++)
        sql_add(&sql, ", %s", w->extras[i].column);
    sql_add(&sql, ") SELECT ");
    first = true;
    for (size_t i = 0; i < t->ncolumns; i++) {
        if (lk && lk->column == i) {
            sql_add(&sql, "%sl.id", first ? "" : ", ");
        } else if (w->fields & SPOTDB_COLUMN_BIT(i)) {
            spotdb__bind(&p, &t->columns[i],
                         spotdb__field_value(t, i, w->row));
            sql_param(&sql, first, p.n);
        } else {
            continue;
        }
        first = false;
    }
    bind_extras(&sql, &p, w, false);
    if (lk) {
        static const spotdb__column key = { "key", SPOTDB__TEXT, 0, 0, 0, 0,
                                            NULL, NULL, NULL };
        spotdb__bind(&p, &key, lk->value);
        sql_add(&sql, " FROM %s l WHERE l.%s = $%d", lk->table->relation,
                lk->table->columns[lk->key].name, p.n);
    }
    sql_add(&sql, " RETURNING ");
    sql_select_list(&sql, t);
    /* Only a lookup can make INSERT ... SELECT return no row. */
    if (lk) {
        m.entity = lk->table->entity;
        m.column = lk->table->columns[lk->key].name;
        m.value = lk->value;
    }
    return one_row(out, db, t,
                   run_write(db, t, w, &sql, &p,
                             context(what, sizeof what, "creating",
                                     t->entity)),
                   &m, spare);
}

int spotdb__update(void **out, spotdb_db *db, const spotdb__table *t,
                   const char *id, const spotdb__write *w)
{
    sql_buf sql = { .len = 0 };
    spotdb__params p = { .n = 0 };
    int rc;
    char what[64];
    missing m = { t->entity, "id", id, NULL, NULL };
    static const spotdb__column key = { "id", SPOTDB__UUID, 0, 0, 0, 0,
                                        NULL, NULL, NULL };
    void *spare;

    if ((rc = begin_call(db, out)) != 0 || (rc = check_id(db, t, id)) != 0)
        return rc;
    if (w->fields == 0 && w->nextras == 0)
        return spotdb__fail(db, SPOTDB_EINVAL, "%s: fields is empty: an "
                            "update must name at least one column",
                            t->entity);
    if ((rc = spotdb__check_write(db, t, w, false)) != 0 ||
        (rc = spare_row(&spare, db, t, out)) != 0)
        return rc;
    sql_add(&sql, "UPDATE %s SET ", t->relation);
    for (size_t i = 0; i < t->ncolumns; i++)
        if (w->fields & SPOTDB_COLUMN_BIT(i)) {
            spotdb__bind(&p, &t->columns[i],
                         spotdb__field_value(t, i, w->row));
            sql_item(&sql, p.n == 1, t->columns[i].name);
            sql_put(&sql, " = ", 3);
            sql_param(&sql, true, p.n);
        }
    bind_extras(&sql, &p, w, true);
    spotdb__bind(&p, &key, id);
    sql_add(&sql, " WHERE id = $%d RETURNING ", p.n);
    sql_select_list(&sql, t);
    return one_row(out, db, t,
                   run_write(db, t, w, &sql, &p,
                             context(what, sizeof what, "updating",
                                     t->entity)),
                   &m, spare);
}

int spotdb__delete(spotdb_db *db, const spotdb__table *t, const char *id)
{
    sql_buf sql = { .len = 0 };
    spotdb__params p = { .n = 0 };
    PGresult *res;
    char what[64];
    int rc;

    if ((rc = begin_call(db, NULL)) != 0 || (rc = check_id(db, t, id)) != 0)
        return rc;
    spotdb__bind(&p, &t->columns[0], id);
    sql_add(&sql, "DELETE FROM %s WHERE id = $1", t->relation);
    context(what, sizeof what, "deleting", t->entity);
    if (!(res = run(db, &sql, &p, what)))
        return db->errcode;
    if (strcmp(PQcmdTuples(res), "0") == 0)
        rc = spotdb__fail(db, SPOTDB_ENOTFOUND, "no %s with id %s",
                          t->entity, id);
    PQclear(res);
    return rc;
}

int spotdb__get(void **out, spotdb_db *db, const spotdb__table *t,
                const size_t *keys, const char *const *values, size_t nkeys)
{
    sql_buf sql = { .len = 0 };
    spotdb__params p = { .n = 0 };
    char what[64];
    missing m = { t->entity, NULL, NULL, NULL, NULL };
    int rc;

    if ((rc = begin_call(db, out)) != 0)
        return rc;
    if (!out)
        return spotdb__fail(db, SPOTDB_EINVAL, "%s: out is NULL", t->entity);
    sql_add(&sql, "SELECT ");
    sql_select_list(&sql, t);
    sql_add(&sql, " FROM %s WHERE ", t->relation);
    for (size_t k = 0; k < nkeys; k++) {
        const spotdb__column *c = &t->columns[keys[k]];

        if (!values[k])
            return invalid(db, t, c, "must not be NULL");
        if ((rc = check_value(db, t, c, values[k])) != 0)
            return rc;
        spotdb__bind(&p, c, values[k]);
        sql_add(&sql, "%s%s = $%d", k ? " AND " : "", c->name, p.n);
    }
    m.column = t->columns[keys[0]].name;
    m.value = values[0];
    if (nkeys > 1) {
        m.column2 = t->columns[keys[1]].name;
        m.value2 = values[1];
    }
    return one_row(out, db, t,
                   run(db, &sql, &p, context(what, sizeof what, "reading",
                                             t->entity)),
                   &m, NULL);
}

/* WHERE clause of a filter struct; returns 0 or a code. */
static int add_filters(spotdb_db *db, const spotdb__table *t,
                       const void *filter, sql_buf *sql, spotdb__params *p,
                       bool *any)
{
    unsigned version;

    *any = false;
    if (!filter)
        return 0;
    memcpy(&version, filter, sizeof version);
    if (version == 0 || version > t->filter_version)
        return spotdb__fail(db, SPOTDB_EINVAL, "%s filter: version is %u, "
                            "expected 1 to %u", t->entity, version,
                            t->filter_version);
    for (size_t i = 0; i < t->nfilters; i++) {
        const spotdb__filter *f = &t->filters[i];
        const spotdb__column *c = &t->columns[f->column];
        const void *v;
        int rc;

        memcpy(&v, (const char *)filter + f->offset, sizeof v);
        if (!v)
            continue;
        if ((rc = check_value(db, t, c, v)) != 0)
            return rc;
        spotdb__bind(p, c, v);
        sql_add(sql, "%s%s %s $%d", *any ? " AND " : " WHERE ", c->name,
                f->op, p->n);
        *any = true;
    }
    return 0;
}

static int check_limit(spotdb_db *db, const spotdb__table *t, int32_t limit,
                       int32_t max)
{
    if (limit < 0 || limit > max)
        return spotdb__fail(db, SPOTDB_EINVAL, "%s: limit must be 0 to %d, "
                            "not %d", t->entity, (int)max, (int)limit);
    return 0;
}

/* Cursor: "k1.<order value>.<id>", the key of the last row of a page. */
#define CURSOR_PREFIX "k1."
#define CURSOR_MAX 64

static int parse_cursor(spotdb_db *db, const spotdb__table *t,
                        const char *cursor, int64_t *key, char *id)
{
    const char *p = cursor + strlen(CURSOR_PREFIX);
    char *end;
    long long v;

    if (strncmp(cursor, CURSOR_PREFIX, strlen(CURSOR_PREFIX)) != 0)
        goto bad;
    v = strtoll(p, &end, 10);
    if (end == p || *end != '.' || strlen(end + 1) != 36 ||
        !spotdb__is_uuid(end + 1))
        goto bad;
    *key = (int64_t)v;
    memcpy(id, end + 1, SPOTDB_UUID_SIZE);
    return 0;
bad:
    return spotdb__fail(db, SPOTDB_EINVAL, "%s: cursor is not one a %s list "
                        "returned", t->entity, t->entity);
}

static void write_cursor(const spotdb__table *t, const char *row, char *out)
{
    int64_t key;
    int n;

    memcpy(&key, row + t->columns[t->order_column].offset, sizeof key);
    n = snprintf(out, CURSOR_MAX, CURSOR_PREFIX "%lld.", (long long)key);
    /* The id is copied apart: out and row are parts of one block. */
    memcpy(out + n, row + t->columns[0].offset, SPOTDB_UUID_SIZE);
}

/* Page header, rows and cursor in one block that owns res, which the
 * rows' strings point into. */
static int page(spotdb__rows **out, spotdb_db *db, const spotdb__table *t,
                PGresult *res, int32_t limit, bool paged)
{
    size_t head = (sizeof(spotdb__rows) + 15) & ~(size_t)15;
    int n = PQntuples(res);
    bool more = paged && n > limit;
    char *rows, *block;
    spotdb__rows *r;
    int rc;

    if (more)
        n = limit;
    if ((rc = spotdb__check_shape(db, t, res)) != 0) {
        PQclear(res);
        return rc;
    }
    block = spotdb__owned_alloc(res, head + (size_t)n * t->row_size +
                                         (more ? CURSOR_MAX : 0));
    if (!block) {
        PQclear(res);
        return spotdb__fail(db, SPOTDB_ENOMEM, "out of memory");
    }
    rows = block + head;
    if ((rc = spotdb__decode_rows(db, t, res, 0, n, rows)) != 0) {
        spotdb__release(block);
        return rc;
    }
    r = (spotdb__rows *)(void *)block;
    r->items = rows;
    r->count = (size_t)n;
    r->next_cursor = NULL;
    if (more) {
        char *cursor = rows + (size_t)n * t->row_size;

        write_cursor(t, rows + (size_t)(n - 1) * t->row_size, cursor);
        r->next_cursor = cursor;
    }
    *out = r;
    return 0;
}

/* SELECT <columns> FROM <relation> WHERE <filters>: the start of a list
 * and of a view query. */
static int select_filtered(spotdb_db *db, const spotdb__table *t,
                           const void *filter, sql_buf *sql, spotdb__params *p,
                           bool *any)
{
    sql_add(sql, "SELECT ");
    sql_select_list(sql, t);
    sql_add(sql, " FROM %s", t->relation);
    return add_filters(db, t, filter, sql, p, any);
}

/* The rows of a query, into a page (out) or one by one to fn, on the
 * read connection when the handle routes reads there. */
static int deliver(spotdb__rows **out, spotdb_db *db, const spotdb__table *t,
                   const char *sql, const spotdb__params *p, int32_t limit,
                   bool paged, spotdb__row_fn fn, void *ctx)
{
    bool routed = spotdb__route_begin(db);
    char what[96];
    PGresult *res;
    int rc;

    context(what, sizeof what, "reading", t->relation);
    do {
        if (fn)
            rc = spotdb__stream_rows(db, t, sql, p, what, fn, ctx);
        else if (!(res = spotdb__execute(db, sql, p, what)))
            rc = db->errcode;
        else
            rc = page(out, db, t, res, limit, paged);
    } while (spotdb__route_retry(db, &routed, rc));
    spotdb__route_end(db);
    return rc;
}

/* Entry of the reading calls: exactly one of out and fn. */
static int begin_read(spotdb__rows **out, spotdb_db *db,
                      const spotdb__table *t, spotdb__row_fn fn)
{
    int rc = begin_call(db, (void **)out);

    if (rc == 0 && !out && !fn)
        rc = spotdb__fail(db, SPOTDB_EINVAL, "%s: out (or the stream's "
                          "callback) is NULL", t->entity);
    return rc;
}

/* A page after `cursor` (limit > 0), or every row (limit 0, streaming). */
static int list_rows(spotdb__rows **out, spotdb_db *db,
                     const spotdb__table *t, const void *filter,
                     const char *cursor, int32_t limit, spotdb__row_fn fn,
                     void *ctx)
{
    sql_buf sql = { .len = 0 };
    spotdb__params p = { .n = 0 };
    const spotdb__column *oc = &t->columns[t->order_column];
    const char *dir = t->descending ? "DESC" : "ASC";
    char id[SPOTDB_UUID_SIZE];
    int64_t key;
    bool any;
    int rc;

    if ((rc = select_filtered(db, t, filter, &sql, &p, &any)) != 0)
        return rc;
    if (cursor) {
        if ((rc = parse_cursor(db, t, cursor, &key, id)) != 0)
            return rc;
        spotdb__bind(&p, oc, &key);
        spotdb__bind(&p, &t->columns[0], id);
        /* The row comparison is exact; the plain bound before it lets an
         * index on the order column alone start the scan at the cursor,
         * so a deep page costs what the first one does. */
        sql_add(&sql, "%s%s %s $%d AND (%s, id) %s ($%d, $%d)",
                any ? " AND " : " WHERE ", oc->name,
                t->descending ? "<=" : ">=", p.n - 1, oc->name,
                t->descending ? "<" : ">", p.n - 1, p.n);
    }
    sql_add(&sql, " ORDER BY %s %s, id %s", oc->name, dir, dir);
    if (limit > 0) {
        /* One row more than asked tells whether there is a next page. */
        spotdb__bind_int64(&p, (int64_t)limit + 1);
        sql_add(&sql, " LIMIT $%d", p.n);
    }
    return deliver(out, db, t, sql.text, &p, limit, true, fn, ctx);
}

int spotdb__list(spotdb__rows **out, spotdb_db *db, const spotdb__table *t,
                 const void *filter, const char *cursor, int32_t limit)
{
    int rc;

    if ((rc = begin_read(out, db, t, NULL)) != 0 ||
        (rc = check_limit(db, t, limit, SPOTDB_MAX_LIMIT)) != 0)
        return rc;
    return list_rows(out, db, t, filter, cursor,
                     limit ? limit : SPOTDB_DEFAULT_LIMIT, NULL, NULL);
}

int spotdb__list_stream(spotdb_db *db, const spotdb__table *t,
                        const void *filter, spotdb__row_fn fn, void *ctx)
{
    int rc;

    if ((rc = begin_read(NULL, db, t, fn)) != 0)
        return rc;
    return list_rows(NULL, db, t, filter, NULL, 0, fn, ctx);
}

int spotdb__view(spotdb__rows **out, spotdb_db *db, const spotdb__table *t,
                 const void *filter, const char *order_by, int32_t limit,
                 spotdb__row_fn fn, void *ctx)
{
    sql_buf sql = { .len = 0 };
    spotdb__params p = { .n = 0 };
    bool any;
    int rc;

    if ((rc = begin_read(out, db, t, fn)) != 0 ||
        (rc = check_limit(db, t, limit, INT32_MAX)) != 0 ||
        (rc = select_filtered(db, t, filter, &sql, &p, &any)) != 0)
        return rc;
    sql_add(&sql, " ORDER BY %s", order_by);
    if (limit > 0) {
        spotdb__bind_int64(&p, limit);
        sql_add(&sql, " LIMIT $%d", p.n);
    }
    return deliver(out, db, t, sql.text, &p, limit, false, fn, ctx);
}

int spotdb__query(spotdb__rows **out, spotdb_db *db, const spotdb__table *t,
                  const char *sql, const spotdb__params *p,
                  spotdb__row_fn fn, void *ctx)
{
    return deliver(out, db, t, sql, p, 0, false, fn, ctx);
}

int spotdb__begin_read(spotdb__rows **out, spotdb_db *db,
                       const spotdb__table *t, spotdb__row_fn fn)
{
    return begin_read(out, db, t, fn);
}

int spotdb__count(int64_t *out, spotdb_db *db, const spotdb__table *t,
                  const void *filter)
{
    sql_buf sql = { .len = 0 };
    spotdb__params p = { .n = 0 };
    char what[64];
    bool any, routed;
    PGresult *res;
    int rc;

    if (out)
        *out = 0;
    if ((rc = begin_call(db, NULL)) != 0)
        return rc;
    if (!out)
        return spotdb__fail(db, SPOTDB_EINVAL, "%s: out is NULL", t->entity);
    sql_add(&sql, "SELECT count(*) FROM %s", t->relation);
    if ((rc = add_filters(db, t, filter, &sql, &p, &any)) != 0)
        return rc;
    context(what, sizeof what, "counting", t->relation);
    routed = spotdb__route_begin(db);
    do
        res = run(db, &sql, &p, what);
    while (!res && spotdb__route_retry(db, &routed, db->errcode));
    spotdb__route_end(db);
    if (!res)
        return db->errcode;
    if (PQftype(res, 0) != SPOTDB__OID_INT8 || PQgetlength(res, 0, 0) != 8)
        rc = spotdb__fail(db, SPOTDB_ERROR, "%s: unexpected count result",
                          what);
    else
        *out = spotdb__get_int64(PQgetvalue(res, 0, 0));
    PQclear(res);
    return rc;
}
