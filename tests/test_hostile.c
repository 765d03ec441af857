/*
 * Hostile text through every text column of every table: quotes,
 * backslashes, placeholders, SQL and comment tokens, control characters,
 * 4-byte UTF-8, maximum lengths.  The columns come from the library's own
 * descriptions (lib/table.h), so a column added to a table is tested
 * without touching this file; each column's rules (length in characters,
 * an enumeration, an AWS format, e-mail, username, JSON) decide whether a
 * value must be stored byte for byte or refused, through an oracle written
 * here from the documented rules, not from the library's code.
 *
 * Accepted values go through create, get, the lookups and filters that
 * use the column, update (to another hostile value) and, for the tables
 * that have it, insert_many; each read is compared byte for byte, and the
 * stored bytes are checked through a raw libpq connection (octet_length,
 * the bytes, md5).  Refused values (invalid UTF-8, one character too many,
 * a broken rule, jsonb's \u0000) must give SPOTDB_EINVAL naming the field
 * and the rule, through create, update, lookups and filters, and leave
 * every table as it was (counts and an md5 of every row).
 *
 * A C string cannot hold NUL: the API stops at the first one, which is
 * what embedded_nul_ends_a_c_string shows; JSON's "\u0000" is the NUL the
 * API can express, and jsonb refuses it.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "internal.h"
#include "table.h"

static spotdb_db *db;
static PGconn *pg;
#include "checks.h"

#define PASSWORD "Hostile-pw-1"

/* ---- the values ------------------------------------------------------- */

/* Valid UTF-8, every one; the empty string too (NOT NULL, min 1 columns
 * refuse it). */
static const char *const hostile[] = {
    "'",
    "''",
    "\"",
    "\\",
    "\\'",
    "'\\''",
    "O'Brien \"the\" \\ Admin",
    "'; DROP TABLE users; --",
    "\"; DROP TABLE accounts CASCADE; --",
    "1' OR '1'='1",
    "x'); DELETE FROM experiment_logs; --",
    "$1",
    "$1::text || $2",
    "$$",
    "$q$ dollar $q$",
    "?",
    ":name",
    "%s%s%n%x",
    "%_*",
    "/* comment */",
    "-- comment",
    "*/ /*",
    "#",
    "\\N",
    "\\.",
    "\\x00",
    "\\u0000",
    "E'\\\\'",
    "NULL",
    "null",
    "",
    " ",
    "  lead and trail  ",
    "tab\there",
    "line\nbreak\r\n",
    "\x01\x02\x1f\x7f",
    "\xf0\x9f\x98\x80",
    "\xf0\x9d\x84\x9e\xf0\x9f\x92\xa9 mixed \xe6\x97\xa5\xc3\xa9",
    "\xf4\x8f\xbf\xbf",
    "\xef\xbb\xbf" "BOM",
    "\xe2\x80\xae" "RTL override",
    "zero\xe2\x80\x8bwidth",
    "e\xcc\x81 combining",
    "\xef\xbf\xbf",
    "<script>alert(1)</script>",
    "{\"json\": [1, 2]}",
    "h0st1le_=,.@:/-+",
};
#define N_HOSTILE (sizeof hostile / sizeof hostile[0])

/* Not UTF-8: the server would refuse them too, but with a message that
 * names no field; the library must refuse them first. */
static const char *const bad_utf8[] = {
    "\xff",
    "ab\xfe",
    "\x80",
    "a\xbf" "b",
    "\xc0\xaf",
    "\xc1\xbf",
    "\xe0\x80\xaf",
    "\xf0\x80\x80\xaf",
    "\xed\xa0\x80",
    "\xed\xbf\xbf",
    "\xf4\x90\x80\x80",
    "\xf5\x80\x80\x80",
    "\xf8\x88\x80\x80\x80",
    "x\xc3",
    "\xe2\x82",
    "\xf0\x9f\x98",
    "\xc3(",
    "\xe2\x28\xa1",
    "'; DROP TABLE users; --\xff",
};
#define N_BAD_UTF8 (sizeof bad_utf8 / sizeof bad_utf8[0])

#define EMOJI "\xf0\x9f\x98\x80"    /* U+1F600, 4 bytes, 1 character */

/* ---- figures ---------------------------------------------------------- */

static struct figures {
    long creates, updates, gets, raw_checks, lookups, bulk_rows;
    long refusals, refused_calls, columns, values;
} fig;

static void print_figures(const char *test)
{
    fprintf(stderr, "hostile %s: %ld values x %ld columns; accepted: %ld "
            "creates, %ld updates, %ld bulk rows, each read back (%ld gets, "
            "%ld lookups/filters, %ld raw byte checks); refused: %ld values "
            "through %ld calls, tables unchanged after each\n", test,
            fig.values, fig.columns, fig.creates, fig.updates, fig.bulk_rows,
            fig.gets, fig.lookups, fig.raw_checks, fig.refusals,
            fig.refused_calls);
}

/* ---- the trace hook sees SQL, never a value -------------------------- */

static long trace_events;

static void trace(const spotdb_trace_event *ev, void *payload)
{
    (void)payload;
    trace_events++;
    ck_assert_msg(!strstr(ev->sql, "DROP") && !strstr(ev->sql, "h0st1le") &&
                  !strstr(ev->sql, "\xf0") && !strstr(ev->sql, "O'Brien"),
                  "a value reached the SQL text: %s", ev->sql);
}

/* ---- fixture ---------------------------------------------------------- */

#define PARENT_AWS "100000000001"
static struct {
    char user[SPOTDB_UUID_SIZE], account[SPOTDB_UUID_SIZE];
    char instance[SPOTDB_UUID_SIZE], model[SPOTDB_UUID_SIZE];
    char log[SPOTDB_UUID_SIZE];
} parent;

static void make_parents(void)
{
    spotdb_user u = { .email = "parent@example.com", .username = "parent" };
    spotdb_account a = { .account_id = PARENT_AWS, .account_name = "parent",
                         .role_arn = "arn:aws:iam::" PARENT_AWS ":role/p",
                         .external_id = "ext-parent" };
    spotdb_instance i = { .instance_id = "i-0000000a",
                          .instance_type = "c5.large",
                          .availability_zone = "ap-south-1a" };
    spotdb_model m = { .name = "parent-model", .version = "v0" };
    spotdb_experiment_log l = { .decision = "STAY" };
    spotdb_user *uo;
    spotdb_account *ao;
    spotdb_instance *io;
    spotdb_model *mo;
    spotdb_experiment_log *lo;

    OK(spotdb_user_create(&uo, db, &u, SPOTDB_USER_EMAIL |
                          SPOTDB_USER_USERNAME, PASSWORD));
    memcpy(parent.user, uo->id, SPOTDB_UUID_SIZE);
    memcpy(a.user_id, uo->id, SPOTDB_UUID_SIZE);
    OK(spotdb_account_create(&ao, db, &a, SPOTDB_ACCOUNT_USER_ID |
                             SPOTDB_ACCOUNT_ACCOUNT_ID |
                             SPOTDB_ACCOUNT_ACCOUNT_NAME |
                             SPOTDB_ACCOUNT_ROLE_ARN |
                             SPOTDB_ACCOUNT_EXTERNAL_ID));
    memcpy(parent.account, ao->id, SPOTDB_UUID_SIZE);
    memcpy(i.account_id, ao->id, SPOTDB_UUID_SIZE);
    OK(spotdb_instance_create(&io, db, &i, SPOTDB_INSTANCE_ACCOUNT_ID |
                              SPOTDB_INSTANCE_INSTANCE_ID |
                              SPOTDB_INSTANCE_INSTANCE_TYPE |
                              SPOTDB_INSTANCE_AVAILABILITY_ZONE));
    memcpy(parent.instance, io->id, SPOTDB_UUID_SIZE);
    memcpy(l.instance_id, io->id, SPOTDB_UUID_SIZE);
    OK(spotdb_model_create(&mo, db, &m, SPOTDB_MODEL_NAME |
                           SPOTDB_MODEL_VERSION));
    memcpy(parent.model, mo->id, SPOTDB_UUID_SIZE);
    OK(spotdb_experiment_log_create(&lo, db, &l,
                                    SPOTDB_EXPERIMENT_LOG_INSTANCE_ID |
                                    SPOTDB_EXPERIMENT_LOG_DECISION));
    memcpy(parent.log, lo->id, SPOTDB_UUID_SIZE);
    spotdb_user_free(uo);
    spotdb_account_free(ao);
    spotdb_instance_free(io);
    spotdb_model_free(mo);
    spotdb_experiment_log_free(lo);
}

static void setup(void)
{
    th_setup_migrated_db();
    db = th_open();
    pg = th_connect(th_db_conninfo());
    memset(&fig, 0, sizeof fig);
    trace_events = 0;
    make_parents();
    ck_assert_int_eq(spotdb_set_trace(db, trace, NULL), 0);
}

static void teardown(void)
{
    spotdb_close(db);
    db = NULL;
    PQfinish(pg);
    pg = NULL;
    th_teardown_db();
}

/* ---- the entities, as the generic driver sees them ------------------ */

typedef union any_row {
    spotdb_user user;
    spotdb_account account;
    spotdb_instance instance;
    spotdb_model model;
    spotdb_experiment_log log;
} any_row;

typedef struct entity {
    const spotdb__table *t;
    /* A valid row with fresh unique keys; returns its fields mask. */
    uint64_t (*base)(any_row *row);
    int (*create)(void **out, const any_row *row, uint64_t fields);
    int (*update)(void **out, const char *id, const any_row *row,
                  uint64_t fields);
    int (*get)(void **out, const char *id);
    int (*del)(const char *id);
    int (*count)(int64_t *out, const void *filter);
    void (*free_row)(void *row);
    const char *victim;             /* a row updates are tried on */
} entity;

static unsigned serial;
static char keybuf[4][96];

static uint64_t user_base(any_row *r)
{
    serial++;
    snprintf(keybuf[0], sizeof keybuf[0], "base%u@example.com", serial);
    snprintf(keybuf[1], sizeof keybuf[1], "base%u", serial);
    memset(r, 0, sizeof *r);
    r->user.email = keybuf[0];
    r->user.username = keybuf[1];
    return SPOTDB_USER_EMAIL | SPOTDB_USER_USERNAME;
}

static uint64_t account_base(any_row *r)
{
    serial++;
    snprintf(keybuf[0], sizeof keybuf[0], "2%011u", serial);
    snprintf(keybuf[1], sizeof keybuf[1], "arn:aws:iam::2%011u:role/base",
             serial);
    memset(r, 0, sizeof *r);
    memcpy(r->account.user_id, parent.user, SPOTDB_UUID_SIZE);
    r->account.account_id = keybuf[0];
    r->account.role_arn = keybuf[1];
    r->account.account_name = "base";
    r->account.external_id = "ext-base";
    return SPOTDB_ACCOUNT_USER_ID | SPOTDB_ACCOUNT_ACCOUNT_ID |
           SPOTDB_ACCOUNT_ACCOUNT_NAME | SPOTDB_ACCOUNT_ROLE_ARN |
           SPOTDB_ACCOUNT_EXTERNAL_ID;
}

static uint64_t instance_base(any_row *r)
{
    serial++;
    snprintf(keybuf[0], sizeof keybuf[0], "i-%08x", 0x10000000u + serial);
    memset(r, 0, sizeof *r);
    memcpy(r->instance.account_id, parent.account, SPOTDB_UUID_SIZE);
    r->instance.instance_id = keybuf[0];
    r->instance.instance_type = "c5.large";
    r->instance.availability_zone = "ap-south-1a";
    return SPOTDB_INSTANCE_ACCOUNT_ID | SPOTDB_INSTANCE_INSTANCE_ID |
           SPOTDB_INSTANCE_INSTANCE_TYPE | SPOTDB_INSTANCE_AVAILABILITY_ZONE;
}

static uint64_t model_base(any_row *r)
{
    serial++;
    snprintf(keybuf[0], sizeof keybuf[0], "v%u", serial);
    memset(r, 0, sizeof *r);
    r->model.name = "base-model";
    r->model.version = keybuf[0];
    return SPOTDB_MODEL_NAME | SPOTDB_MODEL_VERSION;
}

static uint64_t log_base(any_row *r)
{
    memset(r, 0, sizeof *r);
    memcpy(r->log.instance_id, parent.instance, SPOTDB_UUID_SIZE);
    return SPOTDB_EXPERIMENT_LOG_INSTANCE_ID;
}

/* Thin typed wrappers: the driver holds rows as void *. */
#define WRAP(ENT, FIELD)                                                     \
    static int ENT##_update_(void **out, const char *id, const any_row *r,   \
                             uint64_t f)                                     \
    {                                                                        \
        return spotdb_##ENT##_update((spotdb_##ENT **)out, db, id,           \
                                     &r->FIELD, f);                          \
    }                                                                        \
    static int ENT##_get_(void **out, const char *id)                        \
    {                                                                        \
        return spotdb_##ENT##_get((spotdb_##ENT **)out, db, id);             \
    }                                                                        \
    static int ENT##_del_(const char *id)                                    \
    {                                                                        \
        return spotdb_##ENT##_delete(db, id);                                \
    }                                                                        \
    static int ENT##_count_(int64_t *out, const void *filter)                \
    {                                                                        \
        return spotdb_##ENT##_count(out, db, filter);                        \
    }                                                                        \
    static void ENT##_free_(void *row)                                       \
    {                                                                        \
        spotdb_##ENT##_free(row);                                            \
    }

WRAP(user, user)
WRAP(account, account)
WRAP(instance, instance)
WRAP(model, model)
WRAP(experiment_log, log)

static int user_create_(void **out, const any_row *r, uint64_t f)
{
    return spotdb_user_create((spotdb_user **)out, db, &r->user, f,
                              PASSWORD);
}

static int account_create_(void **out, const any_row *r, uint64_t f)
{
    return spotdb_account_create((spotdb_account **)out, db, &r->account, f);
}

static int instance_create_(void **out, const any_row *r, uint64_t f)
{
    return spotdb_instance_create((spotdb_instance **)out, db, &r->instance,
                                  f);
}

static int model_create_(void **out, const any_row *r, uint64_t f)
{
    return spotdb_model_create((spotdb_model **)out, db, &r->model, f);
}

static int experiment_log_create_(void **out, const any_row *r, uint64_t f)
{
    return spotdb_experiment_log_create((spotdb_experiment_log **)out, db,
                                        &r->log, f);
}

#define ENTITY(ENT, TBL, BASE, VICTIM)                                       \
    { &TBL, BASE, ENT##_create_, ENT##_update_, ENT##_get_, ENT##_del_,      \
      ENT##_count_, ENT##_free_, VICTIM }

static const entity *entity_at(int i)
{
    static entity e[5];

    e[0] = (entity)ENTITY(user, spotdb__user_table, user_base, parent.user);
    e[1] = (entity)ENTITY(account, spotdb__account_table, account_base,
                          parent.account);
    e[2] = (entity)ENTITY(instance, spotdb__instance_table, instance_base,
                          parent.instance);
    e[3] = (entity)ENTITY(model, spotdb__model_table, model_base,
                          parent.model);
    e[4] = (entity)ENTITY(experiment_log, spotdb__experiment_log_table,
                          log_base, parent.log);
    ck_assert_int_lt(i, 5);
    return &e[i];
}
#define N_ENTITIES 5

/* ---- field access ---------------------------------------------------- */

static const char **text_field(const spotdb__column *c, any_row *row)
{
    return (const char **)(void *)((char *)row + c->offset);
}

static const char *text_of(const spotdb__column *c, const void *row)
{
    const char *const *p =
        (const char *const *)(const void *)((const char *)row + c->offset);

    return *p;
}

static const char *id_of(const void *row)
{
    return row;                     /* column 0, a char[37], of every row */
}

static uint64_t nulls_of(const spotdb__table *t, const void *row)
{
    uint64_t n;

    memcpy(&n, (const char *)row + t->nulls_offset, sizeof n);
    return n;
}

static bool is_text(const spotdb__column *c)
{
    return c->type == SPOTDB__TEXT || c->type == SPOTDB__JSON;
}

/* ---- the oracle: the documented rules, written independently --------- */

/* Characters of valid UTF-8 (the values here are known to be valid). */
static unsigned long chars_of(const char *s)
{
    unsigned long n = 0;

    for (; *s; s++)
        n += ((unsigned char)*s & 0xc0) != 0x80;
    return n;
}

static bool ascii_blank_or_control(unsigned char c)
{
    return c <= 0x20 || c == 0x7f;
}

static bool all_in(const char *s, const char *extra)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || (c && strchr(extra, c))))
            return false;
    }
    return true;
}

static bool n_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

/* spotdb/accounts.h, instances.h, users.h. */
static bool rule_accepts(const spotdb__column *c, const char *v)
{
    if (c->text_rule == spotdb__rule_aws_account)
        return strlen(v) == 12 && n_digits(v, 12);
    if (c->text_rule == spotdb__rule_role_arn) {
        const char *name = v + 13 + 12 + 6;

        return strlen(v) > 31 && strncmp(v, "arn:aws:iam::", 13) == 0 &&
               n_digits(v + 13, 12) && strncmp(v + 25, ":role/", 6) == 0 &&
               *name && name[strlen(name) - 1] != '/' &&
               all_in(name, "_+=,.@-/");
    }
    if (c->text_rule == spotdb__rule_external_id)
        return strlen(v) >= 2 && all_in(v, "_+=,.@:/-");
    if (c->text_rule == spotdb__rule_ec2_id) {
        size_t n = strlen(v);

        if (strncmp(v, "i-", 2) != 0 || (n != 10 && n != 19))
            return false;
        for (const char *p = v + 2; *p; p++)
            if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
                return false;
        return true;
    }
    if (c->text_rule == spotdb__rule_email) {
        const char *at = strchr(v, '@');

        if (!at || at == v || !at[1] || strchr(at + 1, '@'))
            return false;
        for (const char *p = v; *p; p++)
            if (ascii_blank_or_control((unsigned char)*p))
                return false;
        return true;
    }
    if (c->text_rule == spotdb__rule_username) {
        for (const char *p = v; *p; p++)
            if (*p == '@' || ascii_blank_or_control((unsigned char)*p))
                return false;
        return true;
    }
    ck_abort_msg("column %s has a rule this test has no oracle for: add one",
                 c->name);
    return false;
}

static bool accepts(const spotdb__column *c, const char *v)
{
    unsigned long n = chars_of(v);

    if (n < c->min_chars || (c->max_chars && n > c->max_chars))
        return false;
    if (c->allowed) {
        for (const char *const *a = c->allowed; *a; a++)
            if (strcmp(*a, v) == 0)
                return true;
        return false;
    }
    return c->text_rule ? rule_accepts(c, v) : true;
}

/* The rule a refusal's message must state. */
static const char *expected_rule(const spotdb__column *c, const char *v)
{
    unsigned long n = chars_of(v);

    if (n < c->min_chars)
        return n == 0 ? "must not be empty" : NULL;
    if (c->max_chars && n > c->max_chars)
        return "is longer than";
    if (c->allowed)
        return "must be one of";
    return c->text_rule == spotdb__rule_external_id ? "(the AWS rule)"
           : c->text_rule == spotdb__rule_aws_account ? "12 digits"
           : c->text_rule == spotdb__rule_role_arn ? "arn:aws:iam::"
           : c->text_rule == spotdb__rule_ec2_id ? "EC2 instance id"
           : c->text_rule == spotdb__rule_email ? "one @"
           : c->text_rule == spotdb__rule_username ? "must not contain @"
           : NULL;
}

/* ---- fitting a value to a column ------------------------------------- */

/* At most `max` whole characters of v (0: all). */
static void cut(char *out, size_t n, const char *v, unsigned long max)
{
    unsigned long chars = 0;
    size_t len = 0;

    while (v[len]) {
        size_t step = 1;

        while (((unsigned char)v[len + step] & 0xc0) == 0x80)
            step++;
        if ((max && chars == max) || len + step >= n)
            break;
        len += step;
        chars++;
    }
    memcpy(out, v, len);
    out[len] = '\0';
}

/* v with what the rule forbids taken out (e-mail, username), cut to the
 * column's length; NULL for columns whose format leaves no room for
 * free text (AWS identifiers, enumerations, JSON). */
static const char *fit(char *out, size_t n, const spotdb__column *c,
                       const char *v)
{
    char kept[2048];
    size_t k = 0;
    bool email = c->text_rule == spotdb__rule_email;

    if (c->allowed || c->type == SPOTDB__JSON ||
        (c->text_rule && !email && c->text_rule != spotdb__rule_username))
        return NULL;
    if (!c->text_rule) {
        cut(out, n, v, c->max_chars);
        if (chars_of(out) < c->min_chars)
            snprintf(out, n, "x");
        return out;
    }
    for (const char *p = v; *p && k + 1 < sizeof kept; p++)
        if (*p != '@' && !ascii_blank_or_control((unsigned char)*p))
            kept[k++] = *p;
    kept[k] = '\0';
    if (!k)
        snprintf(kept, sizeof kept, "x");
    if (!email) {
        cut(out, n, kept, c->max_chars);
        return out;
    }
    cut(out, n - 8, kept, c->max_chars - 5);
    strcat(out, "@h.io");
    return out;
}

/* {"v": v} as JSON text. */
static void json_wrap(char *out, size_t n, const char *v)
{
    size_t k = (size_t)snprintf(out, n, "{\"v\": \"");

    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
        ck_assert_uint_lt(k + 8, n);
        if (*p == '"' || *p == '\\')
            k += (size_t)snprintf(out + k, n - k, "\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f)
            k += (size_t)snprintf(out + k, n - k, "\\u%04x", *p);
        else
            out[k++] = (char)*p;
    }
    snprintf(out + k, n - k, "\"}");
}

/* ---- checks ---------------------------------------------------------- */

static void expect_bytes(const char *what, const char *got, const char *want)
{
    ck_assert_msg(got != NULL, "%s: NULL, expected %zu bytes [%s]", what,
                  strlen(want), want);
    ck_assert_msg(strlen(got) == strlen(want) &&
                  memcmp(got, want, strlen(want)) == 0,
                  "%s: read %zu bytes [%s], wrote %zu bytes [%s]", what,
                  strlen(got), got, strlen(want), want);
}

/* Every table's row count and an md5 of every row, as one string. */
static char *tables_digest(void)
{
    return th_scalar(pg,
        "SELECT (SELECT count(*) FROM users) || '/' ||"
        " (SELECT count(*) FROM accounts) || '/' ||"
        " (SELECT count(*) FROM instances) || '/' ||"
        " (SELECT count(*) FROM model_registry) || '/' ||"
        " (SELECT count(*) FROM experiment_logs) || ' ' ||"
        " md5(string_agg(t, ',' ORDER BY t)) FROM ("
        " SELECT u::text t FROM users u"
        " UNION ALL SELECT a::text FROM accounts a"
        " UNION ALL SELECT i::text FROM instances i"
        " UNION ALL SELECT m::text FROM model_registry m"
        " UNION ALL SELECT e::text FROM experiment_logs e) s");
}

/* The stored bytes of column c of row id, through libpq alone. */
static void raw_expect(const spotdb__table *t, const spotdb__column *c,
                       const char *id, const char *want, const char *json_v)
{
    char sql[512];
    const char *params[3] = { id, want, json_v };
    PGresult *r;

    if (json_v)
        snprintf(sql, sizeof sql, "SELECT octet_length(%s->>'v'), %s->>'v', "
                 "%s = $2::jsonb, md5(%s->>'v') = md5($3) FROM %s "
                 "WHERE id = $1", c->name, c->name, c->name, c->name,
                 t->relation);
    else
        snprintf(sql, sizeof sql, "SELECT octet_length(%s), %s, true, "
                 "md5(%s) = md5($2) FROM %s WHERE id = $1", c->name,
                 c->name, c->name, t->relation);
    r = PQexecParams(pg, sql, json_v ? 3 : 2, NULL, params, NULL, NULL, 0);
    ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1,
                  "%s: %s", sql, PQerrorMessage(pg));
    {
        const char *v = json_v ? json_v : want;
        long len = strtol(PQgetvalue(r, 0, 0), NULL, 10);

        ck_assert_msg(len == (long)strlen(v) &&
                      PQgetlength(r, 0, 1) == (int)strlen(v) &&
                      memcmp(PQgetvalue(r, 0, 1), v, strlen(v)) == 0 &&
                      strcmp(PQgetvalue(r, 0, 2), "t") == 0 &&
                      strcmp(PQgetvalue(r, 0, 3), "t") == 0,
                      "%s.%s: the server holds %ld bytes [%s], sent %zu "
                      "bytes [%s]", t->relation, c->name, len,
                      PQgetvalue(r, 0, 1), strlen(v), v);
    }
    PQclear(r);
    fig.raw_checks++;
}

/* JSON text the library returned means the JSON that was sent. */
static void expect_same_json(const char *what, const char *got,
                             const char *want)
{
    const char *params[2] = { got, want };
    PGresult *r;

    ck_assert_msg(got != NULL, "%s: NULL JSON", what);
    r = PQexecParams(pg, "SELECT $1::jsonb = $2::jsonb", 2, NULL, params,
                     NULL, NULL, 0);
    ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK &&
                  strcmp(PQgetvalue(r, 0, 0), "t") == 0,
                  "%s: read %s, wrote %s", what, got, want);
    PQclear(r);
}

/* The text column of a row read through the library equals want. */
static void expect_column(const char *what, const spotdb__table *t,
                          size_t ci, const void *row, const char *want)
{
    const spotdb__column *c = &t->columns[ci];

    ck_assert_msg(!(nulls_of(t, row) & SPOTDB_COLUMN_BIT(ci)),
                  "%s: %s.%s read back as NULL", what, t->entity, c->name);
    if (c->type == SPOTDB__JSON)
        expect_same_json(what, text_of(c, row), want);
    else
        expect_bytes(what, text_of(c, row), want);
}

static char poison;
#define POISON ((void *)&poison)

#define CTX_MAX 160
static char ctx[CTX_MAX];

static void set_ctx(const spotdb__table *t, const spotdb__column *c,
                    const char *how, const char *v)
{
    snprintf(ctx, sizeof ctx, "%s.%s %s [%.60s]", t->entity, c->name, how, v);
}

/* A refused call: EINVAL, a message naming "<entity>.<column>: " and the
 * rule, never the value itself, and *out NULL. */
static void expect_refused(int rc, void *out, const spotdb__table *t,
                           const spotdb__column *c, const char *rule,
                           const char *v)
{
    char field[96];
    const char *m = spotdb_errmsg(db);

    snprintf(field, sizeof field, "%s.%s: ", t->entity, c->name);
    ck_assert_msg(rc == SPOTDB_EINVAL, "%s: returned %d (%s), expected "
                  "EINVAL: %s", ctx, rc, spotdb_strerror(rc), m);
    ck_assert_msg(out == NULL, "%s: *out is not NULL after a failure", ctx);
    ck_assert_msg(strstr(m, field) != NULL, "%s: message does not name %s: "
                  "%s", ctx, field, m);
    ck_assert_msg(!rule || strstr(m, rule), "%s: message does not say "
                  "\"%s\": %s", ctx, rule, m);
    ck_assert_msg(strlen(v) < 6 || !strstr(m, v), "%s: message repeats the "
                  "value: %s", ctx, m);
    fig.refused_calls++;
}

/* ---- lookups and filters that use a column --------------------------- */

static bool is_col(const spotdb__table *t, const spotdb__column *c,
                   const spotdb__table *want_t, const char *name)
{
    return t == want_t && strcmp(c->name, name) == 0;
}

/* Every call that finds rows by column c with value v.  id: the row that
 * holds v (each call must find it, and read v back), or NULL when v breaks
 * the column's rules (each call must refuse it).  `row` is the created
 * row, for the other half of two-column keys. */
static void lookups(const entity *e, size_t ci, const char *v,
                    const char *id, const void *row, const char *rule)
{
    const spotdb__table *t = e->t;
    const spotdb__column *c = &t->columns[ci];
    void *out = NULL;
    int rc;

    /* The filters the description declares on this column. */
    for (size_t f = 0; f < t->nfilters; f++) {
        unsigned char filter[128];
        int64_t n = -1;

        if (t->filters[f].column != ci)
            continue;
        memset(filter, 0, sizeof filter);
        memcpy(filter, &t->filter_version, sizeof(unsigned));
        memcpy(filter + t->filters[f].offset, &v, sizeof v);
        set_ctx(t, c, "filter", v);
        rc = e->count(&n, filter);
        if (id) {
            ck_assert_msg(rc == 0 && n == 1, "%s: count %lld, rc %d: %s", ctx,
                          (long long)n, rc, spotdb_errmsg(db));
        } else {
            expect_refused(rc, NULL, t, c, rule, v);
        }
        fig.lookups++;
    }
    /* Keyed reads and the creators that look a row up by a key. */
    if (is_col(t, c, &spotdb__user_table, "email") ||
        is_col(t, c, &spotdb__user_table, "username")) {
        bool email = c->text_rule == spotdb__rule_email;

        set_ctx(t, c, "get_by", v);
        out = id ? NULL : POISON;
        rc = email ? spotdb_user_get_by_email((spotdb_user **)&out, db, v)
                   : spotdb_user_get_by_username((spotdb_user **)&out, db, v);
        if (id) {
            ck_assert_msg(rc == 0, "%s: %s", ctx, spotdb_errmsg(db));
            ck_assert_str_eq(id_of(out), id);
            expect_column(ctx, t, ci, out, v);
            spotdb_user_free(out);
            out = NULL;
            set_ctx(t, c, "authenticate", v);
            OK(spotdb_user_authenticate((spotdb_user **)&out, db, v,
                                        PASSWORD));
            ck_assert_str_eq(id_of(out), id);
            spotdb_user_free(out);
            out = NULL;
            fig.lookups++;
        } else {
            expect_refused(rc, out, t, c, rule, v);
        }
        fig.lookups++;
        if (!email) {
            any_row in;
            uint64_t f;
            spotdb_account *a = NULL;

            f = account_base(&in) & ~SPOTDB_ACCOUNT_USER_ID;
            set_ctx(t, c, "account_create_for_username", v);
            a = id ? NULL : POISON;
            rc = spotdb_account_create_for_username(&a, db, v, &in.account,
                                                    f);
            if (id) {
                ck_assert_msg(rc == 0, "%s: %s", ctx, spotdb_errmsg(db));
                ck_assert_str_eq(a->user_id, id);
                OK(spotdb_account_delete(db, a->id));
                spotdb_account_free(a);
            } else {
                expect_refused(rc, a, t, c, rule, v);
            }
            fig.lookups++;
        }
    } else if (is_col(t, c, &spotdb__account_table, "account_id")) {
        any_row in;
        spotdb_instance *i = NULL;
        uint64_t f;

        set_ctx(t, c, "get_by_account_id", v);
        out = id ? NULL : POISON;
        rc = spotdb_account_get_by_account_id((spotdb_account **)&out, db, v);
        if (id) {
            ck_assert_msg(rc == 0, "%s: %s", ctx, spotdb_errmsg(db));
            ck_assert_str_eq(id_of(out), id);
            spotdb_account_free(out);
        } else {
            expect_refused(rc, out, t, c, rule, v);
        }
        f = instance_base(&in) & ~SPOTDB_INSTANCE_ACCOUNT_ID;
        set_ctx(t, c, "instance_create_for_aws_account", v);
        i = id ? NULL : POISON;
        rc = spotdb_instance_create_for_aws_account(&i, db, v, &in.instance,
                                                    f);
        if (id) {
            ck_assert_msg(rc == 0, "%s: %s", ctx, spotdb_errmsg(db));
            ck_assert_str_eq(i->account_id, id);
            OK(spotdb_instance_delete(db, i->id));
            spotdb_instance_free(i);
        } else {
            expect_refused(rc, i, t, c, rule, v);
        }
        fig.lookups += 2;
    } else if (is_col(t, c, &spotdb__instance_table, "instance_id")) {
        set_ctx(t, c, "get_by_instance_id", v);
        out = id ? NULL : POISON;
        rc = spotdb_instance_get_by_instance_id((spotdb_instance **)&out, db,
                                                v);
        if (id) {
            ck_assert_msg(rc == 0, "%s: %s", ctx, spotdb_errmsg(db));
            ck_assert_str_eq(id_of(out), id);
            spotdb_instance_free(out);
        } else {
            expect_refused(rc, out, t, c, rule, v);
        }
        fig.lookups++;
    } else if (is_col(t, c, &spotdb__model_table, "name") ||
               is_col(t, c, &spotdb__model_table, "version")) {
        bool name = strcmp(c->name, "name") == 0;
        const spotdb_model *m = row;
        const char *other = m ? (name ? m->version : m->name) : "v0";

        set_ctx(t, c, "get_by_name_version", v);
        out = id ? NULL : POISON;
        rc = spotdb_model_get_by_name_version((spotdb_model **)&out, db,
                                              name ? v : other,
                                              name ? other : v);
        if (id) {
            ck_assert_msg(rc == 0, "%s: %s", ctx, spotdb_errmsg(db));
            ck_assert_str_eq(id_of(out), id);
            expect_column(ctx, t, ci, out, v);
            spotdb_model_free(out);
        } else {
            expect_refused(rc, out, t, c, rule, v);
        }
        fig.lookups++;
    }
}

/* The view filters that name a column of this name (enumerations). */
static const char *view_rule(const spotdb__table *view, size_t ci,
                             const char *rule, const char *v)
{
    return rule && strcmp(rule, "is not valid UTF-8") == 0
               ? rule : expected_rule(&view->columns[ci], v);
}

static void view_filters_refuse(const spotdb__column *c, const char *v,
                                const char *rule)
{
    int rc;

    if (strcmp(c->name, "environment_type") == 0) {
        spotdb_active_instance_filter f = SPOTDB_ACTIVE_INSTANCE_FILTER_INIT;
        spotdb_active_instance_rows *rows = NULL;

        f.environment_type = v;
        set_ctx(&spotdb__active_instance_table, c, "view filter", v);
        rows = POISON;
        rc = spotdb_active_instance_list(&rows, db, &f, 0);
        expect_refused(rc, rows,
                       &spotdb__active_instance_table,
                       &spotdb__active_instance_table.columns[10],
                       view_rule(&spotdb__active_instance_table, 10, rule, v),
                       v);
    } else if (strcmp(c->name, "decision") == 0) {
        spotdb_recent_experiment_filter f =
            SPOTDB_RECENT_EXPERIMENT_FILTER_INIT;
        spotdb_recent_experiment_rows *rows = NULL;

        f.decision = v;
        set_ctx(&spotdb__recent_experiment_table, c, "view filter", v);
        rows = POISON;
        rc = spotdb_recent_experiment_list(&rows, db, &f, 0);
        expect_refused(rc, rows,
                       &spotdb__recent_experiment_table,
                       &spotdb__recent_experiment_table.columns[2],
                       view_rule(&spotdb__recent_experiment_table, 2, rule, v),
                       v);
    }
}

/* ---- the two paths ----------------------------------------------------- */

/* Where a value goes in a column with a format: as it is, or after or
 * before the valid value of the fresh base row (so that the rules across
 * columns, role_arn's number = account_id, still hold). */
enum around { AS_IS, AFTER_VALID, BEFORE_VALID };
static char around_buf[1024];

static const char *place(const spotdb__column *c, any_row *in, const char *v,
                         enum around where)
{
    const char *valid = text_of(c, in);

    if (where == AS_IS)
        return v;
    ck_assert_ptr_nonnull(valid);
    snprintf(around_buf, sizeof around_buf, "%s%s",
             where == AFTER_VALID ? valid : v,
             where == AFTER_VALID ? v : valid);
    return around_buf;
}


/* v (accepted by column ci's rules) is stored and read back byte for
 * byte, found by every lookup, then replaced by v2 through update. */
static void round_trip_at(const entity *e, size_t ci, const char *v,
                          const char *v2, enum around where)
{
    const spotdb__table *t = e->t;
    const spotdb__column *c = &t->columns[ci];
    bool json = c->type == SPOTDB__JSON;
    char wrapped[4096], wrapped2[4096];
    const char *sv = v, *sv2 = v2;
    any_row in;
    uint64_t fields = e->base(&in) | SPOTDB_COLUMN_BIT(ci);
    void *out = NULL, *got = NULL;
    char id[SPOTDB_UUID_SIZE];

    v = sv = place(c, &in, v, where);
    if (json) {
        json_wrap(wrapped, sizeof wrapped, v);
        json_wrap(wrapped2, sizeof wrapped2, v2);
        sv = wrapped;
        sv2 = wrapped2;
    }
    *text_field(c, &in) = sv;
    set_ctx(t, c, "create", v);
    ck_assert_msg(e->create(&out, &in, fields) == 0, "%s: %s", ctx,
                  spotdb_errmsg(db));
    fig.creates++;
    memcpy(id, id_of(out), sizeof id);
    expect_column(ctx, t, ci, out, sv);
    set_ctx(t, c, "get", v);
    OK(e->get(&got, id));
    expect_column(ctx, t, ci, got, sv);
    fig.gets++;
    raw_expect(t, c, id, sv, json ? v : NULL);
    if (!json)
        lookups(e, ci, v, id, got, NULL);
    e->free_row(got);
    got = NULL;
    e->free_row(out);
    out = NULL;

    if (v2) {
        memset(&in, 0, sizeof in);
        *text_field(c, &in) = sv2;
        set_ctx(t, c, "update", v2);
        ck_assert_msg(e->update(&out, id, &in, SPOTDB_COLUMN_BIT(ci)) == 0,
                      "%s: %s", ctx, spotdb_errmsg(db));
        fig.updates++;
        expect_column(ctx, t, ci, out, sv2);
        OK(e->get(&got, id));
        expect_column(ctx, t, ci, got, sv2);
        fig.gets++;
        raw_expect(t, c, id, sv2, json ? v2 : NULL);
        e->free_row(got);
        e->free_row(out);
    }
    OK(e->del(id));
}

static void round_trip(const entity *e, size_t ci, const char *v,
                       const char *v2)
{
    round_trip_at(e, ci, v, v2, AS_IS);
}

/* v breaks column ci's rules: create, update of an existing row, and every
 * lookup and filter on the column refuse it, and nothing changes. */
static void refused_at(const entity *e, size_t ci, const char *v,
                       const char *rule, enum around where)
{
    const spotdb__table *t = e->t;
    const spotdb__column *c = &t->columns[ci];
    char *before = tables_digest(), *after;
    any_row in;
    uint64_t fields = e->base(&in) | SPOTDB_COLUMN_BIT(ci);
    void *out = POISON;
    int rc;

    v = place(c, &in, v, where);
    *text_field(c, &in) = v;
    set_ctx(t, c, "create", v);
    rc = e->create(&out, &in, fields);
    expect_refused(rc, out, t, c, rule, v);
    memset(&in, 0, sizeof in);
    *text_field(c, &in) = v;
    set_ctx(t, c, "update", v);
    out = POISON;
    rc = e->update(&out, e->victim, &in, SPOTDB_COLUMN_BIT(ci));
    expect_refused(rc, out, t, c, rule, v);
    if (c->type != SPOTDB__JSON)
        lookups(e, ci, v, NULL, NULL, rule);
    view_filters_refuse(c, v, rule);
    after = tables_digest();
    ck_assert_msg(strcmp(before, after) == 0, "%s: tables changed: %s -> %s",
                  ctx, before, after);
    free(before);
    free(after);
    fig.refusals++;
}

static void refused(const entity *e, size_t ci, const char *v,
                    const char *rule)
{
    refused_at(e, ci, v, rule, AS_IS);
}

/* ---- tests ----------------------------------------------------------- */

/* Every hostile value, as is and fitted to the column's rules, through
 * every text column of one table (loop index: the entity). */
START_TEST(hostile_text_every_column)
{
    const entity *e = entity_at(_i);
    const spotdb__table *t = e->t;
    char fitted[1024], fitted2[1024];

    fig.values = N_HOSTILE;
    for (size_t ci = 0; ci < t->ncolumns; ci++) {
        const spotdb__column *c = &t->columns[ci];

        if (!is_text(c))
            continue;
        fig.columns++;
        for (size_t k = 0; k < N_HOSTILE; k++) {
            const char *v = hostile[k], *next = hostile[(k + 1) % N_HOSTILE];
            const char *f = fit(fitted, sizeof fitted, c, v);

            if (c->type == SPOTDB__JSON) {
                round_trip(e, ci, v, next);
                continue;
            }
            /* The value as it is: stored exactly, or refused. */
            if (accepts(c, v))
                round_trip(e, ci, v, f ? fit(fitted2, sizeof fitted2, c, next)
                                       : NULL);
            else
                refused(e, ci, v, expected_rule(c, v));
            /* Fitted to the column: always stored exactly. */
            if (f && strcmp(f, v) != 0) {
                ck_assert_msg(accepts(c, f), "fit() broke %s's rules: [%s]",
                              c->name, f);
                round_trip(e, ci, f, fit(fitted2, sizeof fitted2, c, next));
            }
            /* Columns with a format: the value inside a valid one. */
            if (c->text_rule && !f) {
                for (int w = AFTER_VALID; w <= BEFORE_VALID; w++) {
                    any_row probe;
                    const char *p;

                    e->base(&probe);
                    p = place(c, &probe, v, (enum around)w);

                    if (accepts(c, p))
                        round_trip_at(e, ci, v, NULL, (enum around)w);
                    else
                        refused_at(e, ci, v, expected_rule(c, p),
                                   (enum around)w);
                }
            }
        }
    }
    ck_assert_int_gt(fig.columns, 3);
    ck_assert_int_gt(trace_events, 0);
    print_figures(t->relation);
}
END_TEST

/* Not UTF-8: refused by every text column, lookup and filter. */
START_TEST(invalid_utf8_refused_everywhere)
{
    const entity *e = entity_at(_i);
    const spotdb__table *t = e->t;

    fig.values = N_BAD_UTF8;
    for (size_t ci = 0; ci < t->ncolumns; ci++) {
        const spotdb__column *c = &t->columns[ci];

        if (!is_text(c))
            continue;
        fig.columns++;
        for (size_t k = 0; k < N_BAD_UTF8; k++) {
            char json[256];

            refused(e, ci, bad_utf8[k], "is not valid UTF-8");
            if (c->type == SPOTDB__JSON) {
                snprintf(json, sizeof json, "{\"v\": \"%s\"}", bad_utf8[k]);
                refused(e, ci, json, "is not valid UTF-8");
            }
        }
    }
    print_figures(t->relation);
}
END_TEST

/* n copies of unit, malloc'd. */
static char *repeat(const char *unit, unsigned long n, const char *tail)
{
    size_t ul = strlen(unit), tl = tail ? strlen(tail) : 0;
    char *s = malloc(ul * n + tl + 1), *p = s;

    ck_assert_ptr_nonnull(s);
    for (unsigned long i = 0; i < n; i++, p += ul)
        memcpy(p, unit, ul);
    memcpy(p, tail ? tail : "", tl + 1);
    return s;
}

/* Limits count characters: the maximum in 4-byte characters is stored,
 * one more is refused naming the limit; text without a limit takes 128 KiB
 * of them. */
START_TEST(lengths_in_characters_of_four_bytes)
{
    const entity *e = entity_at(_i);
    const spotdb__table *t = e->t;

    fig.values = 4;
    for (size_t ci = 0; ci < t->ncolumns; ci++) {
        const spotdb__column *c = &t->columns[ci];
        bool email = c->text_rule == spotdb__rule_email;
        bool free_text = !c->allowed && (!c->text_rule || email ||
                                         c->text_rule == spotdb__rule_username);
        char *max, *over, *over_ascii;

        if (c->type != SPOTDB__TEXT)
            continue;
        fig.columns++;
        if (!c->max_chars) {
            char *big = repeat(EMOJI "'\\$1", 16384, NULL);

            ck_assert_msg(free_text, "%s: no limit and a rule", c->name);
            round_trip(e, ci, big, hostile[7]);
            free(big);
            continue;
        }
        max = email ? repeat(EMOJI, c->max_chars - 5, "@h.io")
                    : repeat(EMOJI, c->max_chars, NULL);
        over = email ? repeat(EMOJI, c->max_chars - 4, "@h.io")
                     : repeat(EMOJI, c->max_chars + 1, NULL);
        over_ascii = repeat("x", c->max_chars + 1, NULL);
        ck_assert_uint_eq(chars_of(max), c->max_chars);
        ck_assert_uint_eq(strlen(max), email ? 4 * (c->max_chars - 5) + 5
                                             : 4 * c->max_chars);
        if (free_text) {
            round_trip(e, ci, max, max);
            refused(e, ci, over, "is longer than");
        }
        refused(e, ci, over_ascii, "is longer than");
        free(max);
        free(over);
        free(over_ascii);
    }
    print_figures(t->relation);
}
END_TEST

/* The API takes C strings: a NUL ends the value, so what follows it is
 * never seen (nor stored).  Shown on every free-text column of every
 * table. */
START_TEST(embedded_nul_ends_a_c_string)
{
    static const char with_nul[] = "before\0'; DROP TABLE users; --";

    for (int k = 0; k < N_ENTITIES; k++) {
        const entity *e = entity_at(k);
        const spotdb__table *t = e->t;

        for (size_t ci = 0; ci < t->ncolumns; ci++) {
            const spotdb__column *c = &t->columns[ci];

            if (c->type != SPOTDB__TEXT || c->allowed || c->text_rule)
                continue;
            ck_assert_uint_eq(sizeof with_nul, 31);
            round_trip(e, ci, with_nul, NULL);
            fig.columns++;
        }
    }
    ck_assert_int_ge(fig.columns, 15);
    print_figures("NUL");
}
END_TEST

/* JSON can name NUL (\u0000) and jsonb refuses it, as it refuses what
 * json-c lets through; the message names the column, nothing changes. */
START_TEST(jsonb_refusals_name_the_column)
{
    static const char *const bad_json[] = {
        "{\"v\": \"\\u0000\"}",
        "\"a\\u0000b\"",
        "[\"\\u0000\", 1]",
        "{'v': 1}",
        "{\"v\": 1",
        "{\"v\": 1} x",
        "'; DROP TABLE users; --",
        "NULL",
        "",
    };

    for (int k = 0; k < N_ENTITIES; k++) {
        const entity *e = entity_at(k);
        const spotdb__table *t = e->t;

        for (size_t ci = 0; ci < t->ncolumns; ci++) {
            if (t->columns[ci].type != SPOTDB__JSON)
                continue;
            fig.columns++;
            for (size_t j = 0; j < sizeof bad_json / sizeof *bad_json; j++)
                refused(e, ci, bad_json[j], "JSON");
        }
    }
    ck_assert_int_eq(fig.columns, 2);
    print_figures("jsonb");
}
END_TEST

/* insert_many (binary COPY) stores the same bytes: one row per hostile
 * value, every free-text column set to it; then a batch with one bad
 * row stores nothing and names that row. */
START_TEST(insert_many_hostile_rows)
{
    enum { N = N_HOSTILE };
    static spotdb_instance inst[N];
    static spotdb_experiment_log logs[N];
    static char ids[N][SPOTDB_UUID_SIZE], ec2[N][24], fitted[N][4][64];
    static char json[N][512];
    uint64_t ifields = SPOTDB_INSTANCE_ACCOUNT_ID |
        SPOTDB_INSTANCE_INSTANCE_ID | SPOTDB_INSTANCE_INSTANCE_TYPE |
        SPOTDB_INSTANCE_AVAILABILITY_ZONE |
        SPOTDB_INSTANCE_ASSIGNED_MODEL_VERSION | SPOTDB_INSTANCE_METADATA;
    uint64_t lfields = SPOTDB_EXPERIMENT_LOG_INSTANCE_ID |
        SPOTDB_EXPERIMENT_LOG_DECISION_REASON |
        SPOTDB_EXPERIMENT_LOG_SELECTED_INSTANCE_TYPE |
        SPOTDB_EXPERIMENT_LOG_SELECTED_AVAILABILITY_ZONE |
        SPOTDB_EXPERIMENT_LOG_FEATURES_USED |
        SPOTDB_EXPERIMENT_LOG_ERROR_MESSAGE;
    const spotdb__column *ic = spotdb__instance_table.columns;
    const spotdb__column *lc = spotdb__experiment_log_table.columns;
    int64_t bad = 0;
    char *before, *after;

    for (size_t k = 0; k < N; k++) {
        const char *v = hostile[k];

        snprintf(ec2[k], sizeof ec2[k], "i-%08zx", 0x20000000u + k);
        inst[k] = (spotdb_instance){ .instance_id = ec2[k] };
        memcpy(inst[k].account_id, parent.account, SPOTDB_UUID_SIZE);
        inst[k].instance_type = fit(fitted[k][0], 64, &ic[3], v);
        inst[k].availability_zone = fit(fitted[k][1], 64, &ic[4], v);
        inst[k].assigned_model_version = fit(fitted[k][2], 64, &ic[5], v);
        json_wrap(json[k], sizeof json[k], v);
        inst[k].metadata = json[k];
        logs[k] = (spotdb_experiment_log){ .decision_reason = v,
                                           .error_message = v,
                                           .features_used = json[k] };
        memcpy(logs[k].instance_id, parent.instance, SPOTDB_UUID_SIZE);
        logs[k].selected_instance_type = fit(fitted[k][3], 64, &lc[11], v);
        logs[k].selected_availability_zone = inst[k].availability_zone;
    }
    OK(spotdb_instance_insert_many(db, inst, N, ifields, ids, &bad));
    ck_assert_int_eq(bad, -1);
    for (size_t k = 0; k < N; k++) {
        spotdb_instance *got = NULL;

        OK(spotdb_instance_get(&got, db, ids[k]));
        for (size_t ci = 3; ci <= 5; ci++) {
            snprintf(ctx, sizeof ctx, "instance insert_many row %zu", k);
            expect_column(ctx, &spotdb__instance_table, ci, got,
                          text_of(&ic[ci], &inst[k]));
            raw_expect(&spotdb__instance_table, &ic[ci], ids[k],
                       text_of(&ic[ci], &inst[k]), NULL);
        }
        raw_expect(&spotdb__instance_table, &ic[10], ids[k], json[k],
                   hostile[k]);
        spotdb_instance_free(got);
        fig.gets++;
    }
    OK(spotdb_experiment_log_insert_many(db, logs, N, lfields, ids, &bad));
    ck_assert_int_eq(bad, -1);
    for (size_t k = 0; k < N; k++) {
        spotdb_experiment_log *got = NULL;
        static const size_t cols[] = { 7, 11, 12, 17 };

        OK(spotdb_experiment_log_get(&got, db, ids[k]));
        for (size_t j = 0; j < 4; j++) {
            snprintf(ctx, sizeof ctx, "log insert_many row %zu", k);
            expect_column(ctx, &spotdb__experiment_log_table, cols[j], got,
                          text_of(&lc[cols[j]], &logs[k]));
            raw_expect(&spotdb__experiment_log_table, &lc[cols[j]], ids[k],
                       text_of(&lc[cols[j]], &logs[k]), NULL);
        }
        raw_expect(&spotdb__experiment_log_table, &lc[16], ids[k], json[k],
                   hostile[k]);
        spotdb_experiment_log_free(got);
        fig.gets++;
    }
    fig.bulk_rows = 2 * N;

    /* One bad row anywhere: nothing stored, that row named. */
    before = tables_digest();
    for (size_t k = 0; k < N; k++)
        snprintf(ec2[k], sizeof ec2[k], "i-%08zx", 0x30000000u + k);
    for (size_t b = 0; b < N_BAD_UTF8; b++) {
        size_t at = (b * 7) % N;
        const char *keep = logs[at].error_message;

        logs[at].error_message = bad_utf8[b];
        bad = 0;
        FAILS(SPOTDB_EINVAL, "experiment_log.error_message: is not valid "
              "UTF-8", spotdb_experiment_log_insert_many(db, logs, N, lfields,
                                                         NULL, &bad));
        ck_assert_int_eq(bad, (int64_t)at);
        logs[at].error_message = keep;
        keep = inst[at].instance_type;
        inst[at].instance_type = bad_utf8[b];
        bad = 0;
        FAILS(SPOTDB_EINVAL, "instance.instance_type: is not valid UTF-8",
              spotdb_instance_insert_many(db, inst, N, ifields, NULL, &bad));
        ck_assert_int_eq(bad, (int64_t)at);
        inst[at].instance_type = keep;
        fig.refused_calls += 2;
        fig.refusals++;
    }
    {
        /* jsonb's refusal comes from the server, during the COPY. */
        size_t at = N / 2;
        const char *keep = logs[at].features_used;

        logs[at].features_used = "{\"v\": \"\\u0000\"}";
        FAILS(SPOTDB_EINVAL, "features_used",
              spotdb_experiment_log_insert_many(db, logs, N, lfields, NULL,
                                                &bad));
        ck_assert_int_eq(bad, (int64_t)at);
        logs[at].features_used = keep;
        keep = inst[at].instance_type;
        inst[at].instance_type = "123456789012345678901";
        FAILS(SPOTDB_EINVAL, "instance.instance_type: is longer than 20",
              spotdb_instance_insert_many(db, inst, N, ifields, NULL, &bad));
        ck_assert_int_eq(bad, (int64_t)at);
        inst[at].instance_type = keep;
        fig.refused_calls += 2;
    }
    after = tables_digest();
    ck_assert_str_eq(before, after);
    free(before);
    free(after);
    fig.values = N;
    fig.columns = 10;
    print_figures("insert_many");
}
END_TEST

/* Logins of every shape: a hostile one that names nobody is a plain
 * EAUTH like any unknown login, and never an error from the server. */
START_TEST(hostile_logins_are_unknown_logins)
{
    spotdb_user *u = NULL;
    char *before = tables_digest(), *after;

    for (size_t k = 0; k < N_HOSTILE; k++) {
        if (!*hostile[k])
            continue;
        FAILS(SPOTDB_EAUTH, "authentication failed",
              spotdb_user_authenticate(&u, db, hostile[k], PASSWORD));
        ck_assert_ptr_null(u);
        fig.refused_calls++;
    }
    for (size_t k = 0; k < N_BAD_UTF8; k++) {
        int rc = spotdb_user_authenticate(&u, db, bad_utf8[k], PASSWORD);

        ck_assert_msg(rc == SPOTDB_EAUTH || rc == SPOTDB_EINVAL,
                      "login [%s]: %d (%s): %s", bad_utf8[k], rc,
                      spotdb_strerror(rc), spotdb_errmsg(db));
        ck_assert_ptr_null(u);
        fig.refused_calls++;
    }
    after = tables_digest();
    ck_assert_str_eq(before, after);
    free(before);
    free(after);
    fig.values = N_HOSTILE + N_BAD_UTF8;
    fig.columns = 1;
    print_figures("logins");
}
END_TEST

/* A row whose every free-text column holds hostile text reads back the
 * same through the views, which join four tables. */
START_TEST(hostile_text_through_the_views)
{
    const char *v = "O'Brien \"the\" \\ $1 '; DROP TABLE users; -- "
                    EMOJI "\xe2\x80\xae";
    spotdb_user uin = { .email = "o'brien\"$1" EMOJI "@h.io",
                        .username = "o'brien\\$1;--" EMOJI };
    spotdb_account ain = { .account_id = "300000000003",
                           .role_arn = "arn:aws:iam::300000000003:role/r",
                           .external_id = "ext_x", .region = "'$1\\"
                           EMOJI };
    spotdb_instance iin = { .instance_id = "i-0000000b",
                            .instance_type = "c5'\\$1" EMOJI,
                            .availability_zone = "az'--" EMOJI,
                            .assigned_model_version = "m'$1\\" EMOJI };
    spotdb_model min = { .name = "n'$1\\" EMOJI, .version = "m'$1\\" EMOJI };
    spotdb_experiment_log lin = { .decision = "SWITCH",
                                  .selected_instance_type = "s'$1\\" EMOJI };
    spotdb_user *u;
    spotdb_account *a;
    spotdb_instance *i;
    spotdb_model *m;
    spotdb_experiment_log *l;
    spotdb_active_instance_rows *ar = NULL;
    spotdb_recent_experiment_rows *rr = NULL;
    size_t k;

    ain.account_name = v;
    OK(spotdb_user_create(&u, db, &uin, SPOTDB_USER_EMAIL |
                          SPOTDB_USER_USERNAME, PASSWORD));
    memcpy(ain.user_id, u->id, SPOTDB_UUID_SIZE);
    OK(spotdb_account_create(&a, db, &ain, SPOTDB_ACCOUNT_USER_ID |
                             SPOTDB_ACCOUNT_ACCOUNT_ID |
                             SPOTDB_ACCOUNT_ACCOUNT_NAME |
                             SPOTDB_ACCOUNT_ROLE_ARN |
                             SPOTDB_ACCOUNT_EXTERNAL_ID |
                             SPOTDB_ACCOUNT_REGION));
    memcpy(iin.account_id, a->id, SPOTDB_UUID_SIZE);
    OK(spotdb_instance_create(&i, db, &iin, SPOTDB_INSTANCE_ACCOUNT_ID |
                              SPOTDB_INSTANCE_INSTANCE_ID |
                              SPOTDB_INSTANCE_INSTANCE_TYPE |
                              SPOTDB_INSTANCE_AVAILABILITY_ZONE |
                              SPOTDB_INSTANCE_ASSIGNED_MODEL_VERSION));
    OK(spotdb_model_create(&m, db, &min, SPOTDB_MODEL_NAME |
                           SPOTDB_MODEL_VERSION));
    memcpy(lin.instance_id, i->id, SPOTDB_UUID_SIZE);
    memcpy(lin.model_id, m->id, SPOTDB_UUID_SIZE);
    OK(spotdb_experiment_log_create(
        &l, db, &lin, SPOTDB_EXPERIMENT_LOG_INSTANCE_ID |
        SPOTDB_EXPERIMENT_LOG_MODEL_ID | SPOTDB_EXPERIMENT_LOG_DECISION |
        SPOTDB_EXPERIMENT_LOG_SELECTED_INSTANCE_TYPE));

    OK(spotdb_active_instance_list(&ar, db, NULL, 0));
    for (k = 0; k < ar->count && strcmp(ar->items[k].id, i->id) != 0; k++)
        ;
    ck_assert_uint_lt(k, ar->count);
    expect_bytes("view instance_type", ar->items[k].instance_type,
                 iin.instance_type);
    expect_bytes("view availability_zone", ar->items[k].availability_zone,
                 iin.availability_zone);
    expect_bytes("view assigned_model_version",
                 ar->items[k].assigned_model_version,
                 iin.assigned_model_version);
    expect_bytes("view account_name", ar->items[k].account_name, v);
    expect_bytes("view region", ar->items[k].region, ain.region);
    expect_bytes("view user_email", ar->items[k].user_email, uin.email);
    expect_bytes("view username", ar->items[k].username, uin.username);
    expect_bytes("view model_name", ar->items[k].model_name, min.name);
    expect_bytes("view model_version", ar->items[k].model_version,
                 min.version);

    OK(spotdb_recent_experiment_list(&rr, db, NULL, 0));
    for (k = 0; k < rr->count && strcmp(rr->items[k].id, l->id) != 0; k++)
        ;
    ck_assert_uint_lt(k, rr->count);
    expect_bytes("view instance_type", rr->items[k].instance_type,
                 iin.instance_type);
    expect_bytes("view account_name", rr->items[k].account_name, v);
    expect_bytes("view model_name", rr->items[k].model_name, min.name);
    expect_bytes("view selected_instance_type",
                 rr->items[k].selected_instance_type,
                 lin.selected_instance_type);
    spotdb_active_instance_rows_free(ar);
    spotdb_recent_experiment_rows_free(rr);
    spotdb_user_free(u);
    spotdb_account_free(a);
    spotdb_instance_free(i);
    spotdb_model_free(m);
    spotdb_experiment_log_free(l);
}
END_TEST

static Suite *hostile_suite(void)
{
    Suite *s = suite_create("hostile");
    TCase *tc = tcase_create("pg");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, hostile_text_every_column, 0, N_ENTITIES);
    tcase_add_loop_test(tc, invalid_utf8_refused_everywhere, 0, N_ENTITIES);
    tcase_add_loop_test(tc, lengths_in_characters_of_four_bytes, 0,
                        N_ENTITIES);
    tcase_add_test(tc, embedded_nul_ends_a_c_string);
    tcase_add_test(tc, jsonb_refusals_name_the_column);
    tcase_add_test(tc, insert_many_hostile_rows);
    tcase_add_test(tc, hostile_logins_are_unknown_logins);
    tcase_add_test(tc, hostile_text_through_the_views);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return th_run(hostile_suite());
}
