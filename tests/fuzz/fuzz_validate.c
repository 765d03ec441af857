/*
 * Fuzz target: the checks every value passes before it is sent (the
 * column descriptions of lib/users.c, accounts.c, instances.c, models.c,
 * experiment_logs.c driven by spotdb__check_values in lib/table.c, and the
 * rules of lib/validate.c).
 *
 * The input is one value.  It goes, as text, into each text column of
 * each table (a zeroed row with that one field set); its first bytes, as
 * a UUID field, a double and a timestamp, into the columns of those
 * types; and straight into each rule.  Invariants:
 * - the verdict equals that of a reference written here independently
 *   (strict UTF-8 by the table of RFC 3629, character limits, allowed
 *   values, each AWS rule restated), so an accepted value is valid UTF-8,
 *   without NUL, within the column's limits;
 * - a refusal is SPOTDB_EINVAL with the message "<entity>.<column>: " and
 *   the rule, exactly the one expected, and a rule's phrase never depends
 *   on the value (it may be a secret: an external id);
 * - account_id and role_arn written together must agree;
 * - spotdb__check_write on an update, and spotdb__check_text (lookup keys,
 *   login names), agree with spotdb__check_values.
 */
#include <math.h>
#include <string.h>

#include "fuzz.h"
#include "table.h"

#define PG_EPOCH_US INT64_C(946684800000000)
#define ROW_MAX 1024

static const spotdb__table *const tables[] = {
    &spotdb__user_table, &spotdb__account_table, &spotdb__instance_table,
    &spotdb__model_table, &spotdb__experiment_log_table,
};
#define N_TABLES (sizeof tables / sizeof tables[0])

/* ---- references --------------------------------------------------------- */

/* RFC 3629's table of well-formed sequences (Unicode table 3-7). */
static long ref_utf8_chars(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    long chars = 0;

    while (*p) {
        unsigned char lo = 0x80, hi = 0xbf;
        int n;

        if (p[0] <= 0x7f)
            n = 0;
        else if (p[0] >= 0xc2 && p[0] <= 0xdf)
            n = 1;
        else if (p[0] >= 0xe0 && p[0] <= 0xef)
            n = 2;
        else if (p[0] >= 0xf0 && p[0] <= 0xf4)
            n = 3;
        else
            return -1;
        if (p[0] == 0xe0)
            lo = 0xa0;
        else if (p[0] == 0xed)
            hi = 0x9f;
        else if (p[0] == 0xf0)
            lo = 0x90;
        else if (p[0] == 0xf4)
            hi = 0x8f;
        for (int k = 1; k <= n; k++) {
            unsigned char a = k == 1 ? lo : 0x80, b = k == 1 ? hi : 0xbf;

            if (p[k] < a || p[k] > b)
                return -1;
        }
        p += n + 1;
        chars++;
    }
    return chars;
}

static bool ascii_digit(char c) { return c >= '0' && c <= '9'; }
static bool ascii_alnum(char c)
{
    return ascii_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
static bool one_of(char c, const char *set)
{
    return c != '\0' && strchr(set, c) != NULL;
}

static bool ref_aws_account(const char *s)
{
    for (int i = 0; i < 12; i++)
        if (!ascii_digit(s[i]))
            return false;
    return s[12] == '\0';
}

static bool ref_role_arn(const char *s)
{
    const char *name;
    size_t n;

    if (strncmp(s, "arn:aws:iam::", 13) != 0)
        return false;
    for (int i = 13; i < 25; i++)
        if (!ascii_digit(s[i]))
            return false;
    if (strncmp(s + 25, ":role/", 6) != 0)
        return false;
    name = s + 31;
    n = strlen(name);
    if (n == 0 || name[n - 1] == '/')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!ascii_alnum(name[i]) && !one_of(name[i], "_+=,.@-/"))
            return false;
    return true;
}

static bool ref_external_id(const char *s)
{
    size_t n = strlen(s);

    if (n < 2 || n > 1224)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!ascii_alnum(s[i]) && !one_of(s[i], "_+=,.@:/-"))
            return false;
    return true;
}

static bool ref_ec2_id(const char *s)
{
    size_t n = strlen(s);

    if ((n != 10 && n != 19) || s[0] != 'i' || s[1] != '-')
        return false;
    for (size_t i = 2; i < n; i++)
        if (!ascii_digit(s[i]) && !(s[i] >= 'a' && s[i] <= 'f'))
            return false;
    return true;
}

/* Blanks and controls of the C locale. */
static bool space_or_control(char c)
{
    unsigned char u = (unsigned char)c;

    return u < 0x20 || u == 0x7f || u == ' ';
}

static bool ref_email(const char *s)
{
    const char *at = strchr(s, '@');

    if (!at || at == s || at[1] == '\0' || strchr(at + 1, '@'))
        return false;
    for (; *s; s++)
        if (space_or_control(*s))
            return false;
    return true;
}

static bool ref_username(const char *s)
{
    for (; *s; s++)
        if (*s == '@' || space_or_control(*s))
            return false;
    return true;
}

static bool ref_uuid(const char *s)
{
    for (int i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        char c = s[i];

        if (dash ? c != '-'
                 : !(ascii_digit(c) || (c >= 'a' && c <= 'f') ||
                     (c >= 'A' && c <= 'F')))
            return false;
    }
    return s[36] == '\0';
}

/* ---- rules: reference and phrases --------------------------------------- */

typedef struct rule_ref {
    spotdb__text_rule rule;
    bool (*ref)(const char *s);     /* NULL: only self-consistency (JSON) */
    const char *bad[3];             /* values it refuses, for its phrases */
    char phrases[3][256];
} rule_ref;

static rule_ref rules[] = {
    { spotdb__rule_aws_account, ref_aws_account, { "x", NULL, NULL }, { "" } },
    { spotdb__rule_role_arn, ref_role_arn, { "x", NULL, NULL }, { "" } },
    { spotdb__rule_external_id, ref_external_id, { "x", "ab#", NULL },
      { "" } },
    { spotdb__rule_ec2_id, ref_ec2_id, { "x", NULL, NULL }, { "" } },
    { spotdb__rule_email, ref_email, { "x", NULL, NULL }, { "" } },
    { spotdb__rule_username, ref_username, { "@", NULL, NULL }, { "" } },
    { spotdb__rule_json, NULL, { "x", NULL, NULL }, { "" } },
};
#define N_RULES (sizeof rules / sizeof rules[0])

static rule_ref *find_rule(spotdb__text_rule rule)
{
    for (size_t k = 0; k < N_RULES; k++)
        if (rules[k].rule == rule)
            return &rules[k];
    FUZZ_CHECK(false, "a text rule without a reference here: add one");
    return NULL;
}

/* The rule on s, checked against its reference; the phrase in why. */
static bool run_rule(rule_ref *r, const char *s, char *why, size_t n)
{
    bool ok, ok2;
    char small[8];

    memset(why, 'Z', n);
    ok = r->rule(s, why, n);
    if (r->ref)
        FUZZ_CHECK(ok == r->ref(s), "a rule and its reference disagree "
                   "(%d) on [%.200s]", ok, s);
    if (ok)
        return true;
    FUZZ_CHECK(memchr(why, '\0', n) != NULL, "why is not NUL-terminated");
    {
        bool known = false;

        for (size_t k = 0; k < 3 && r->phrases[k][0]; k++)
            known = known || strcmp(why, r->phrases[k]) == 0;
        FUZZ_CHECK(known, "a phrase that depends on the value: [%s]", why);
    }
    /* A short buffer is still terminated, and nothing is written past. */
    memset(small, 'Z', sizeof small);
    ok2 = r->rule(s, small, 5);
    FUZZ_CHECK(!ok2 && memchr(small, '\0', 5) != NULL && small[5] == 'Z',
               "the rule overran a 5-byte why");
    return false;
}

/* ---- columns ------------------------------------------------------------ */

/* What check_text in lib/table.c must say about s: "" when accepted. */
static void expected_text(char *want, size_t n, const spotdb__table *t,
                          const spotdb__column *c, const char *s)
{
    long chars = ref_utf8_chars(s);
    int k = snprintf(want, n, "%s.%s: ", t->entity, c->name);
    char *rule = want + k;
    size_t left = n - (size_t)k;

    if (chars < 0) {
        snprintf(rule, left, "is not valid UTF-8");
    } else if ((unsigned long)chars < c->min_chars) {
        snprintf(rule, left, "must not be empty");
    } else if (c->max_chars && (unsigned long)chars > c->max_chars) {
        snprintf(rule, left, "is longer than %u characters (%ld)",
                 c->max_chars, chars);
    } else if (c->allowed) {
        size_t len = (size_t)snprintf(rule, left, "must be one of");

        for (const char *const *a = c->allowed; *a; a++) {
            if (strcmp(*a, s) == 0) {
                want[0] = '\0';
                return;
            }
            len += (size_t)snprintf(rule + len, left - len, "%s %s",
                                    a == c->allowed ? "" : ",", *a);
        }
    } else if (c->text_rule) {
        if (run_rule(find_rule(c->text_rule), s, rule, left))
            want[0] = '\0';
    } else {
        want[0] = '\0';
    }
}

static void check_outcome(int rc, const char *want, const char *what)
{
    const char *msg = spotdb_last_errmsg();

    if (!want[0]) {
        FUZZ_CHECK(rc == 0, "%s: refused (%d, %s), want accepted", what, rc,
                   msg);
        return;
    }
    FUZZ_CHECK(rc == SPOTDB_EINVAL, "%s: rc %d, want EINVAL (%s)", what, rc,
               want);
    FUZZ_CHECK(strcmp(msg, want) == 0, "%s: message [%s], want [%s]", what,
               msg, want);
}

/* A zeroed row of t, aligned for any member. */
typedef union row {
    max_align_t align;
    unsigned char bytes[ROW_MAX];
} row;

static void set_text(row *r, const spotdb__column *c, const char *v)
{
    memcpy(r->bytes + c->offset, &v, sizeof v);
}

static void set_nulls(row *r, const spotdb__table *t, uint64_t nulls)
{
    memcpy(r->bytes + t->nulls_offset, &nulls, sizeof nulls);
}

static void check_text_column(const spotdb__table *t, size_t i,
                              const char *s)
{
    const spotdb__column *c = &t->columns[i];
    uint64_t bit = SPOTDB_COLUMN_BIT(i);
    char want[512], null_want[256];
    row r;
    int rc;

    memset(&r, 0, sizeof r);
    set_text(&r, c, s);
    expected_text(want, sizeof want, t, c, s);
    rc = spotdb__check_values(NULL, t, r.bytes, bit);
    check_outcome(rc, want, "text column");
    /* The same check for a lookup key or login name. */
    check_outcome(spotdb__check_text(NULL, t, i, s), want, "check_text");
    if (!(c->flags & (SPOTDB__KEY | SPOTDB__TRIGGER))) {
        spotdb__write w = { r.bytes, bit, NULL, 0, NULL };

        check_outcome(spotdb__check_write(NULL, t, &w, false), want,
                      "update");
    }
    /* The same row with the null bit set: the value is ignored. */
    if (c->flags & SPOTDB__NOT_NULL)
        snprintf(null_want, sizeof null_want, "%s.%s: must not be NULL",
                 t->entity, c->name);
    else
        null_want[0] = '\0';
    set_nulls(&r, t, bit);
    check_outcome(spotdb__check_values(NULL, t, r.bytes, bit), null_want,
                  "null bit");
}

static void check_uuid_column(const spotdb__table *t, size_t i,
                              const uint8_t *data, size_t size)
{
    const spotdb__column *c = &t->columns[i];
    char want[256];
    char field[SPOTDB_UUID_SIZE];
    row r;

    memset(&r, 0, sizeof r);
    memcpy(r.bytes + c->offset, data,
           size < SPOTDB_UUID_SIZE ? size : SPOTDB_UUID_SIZE);
    memcpy(field, r.bytes + c->offset, sizeof field);
    want[0] = '\0';
    if (field[0] == '\0') {
        if (c->flags & SPOTDB__NOT_NULL)
            snprintf(want, sizeof want, "%s.%s: must not be NULL",
                     t->entity, c->name);
    } else if (!memchr(field, '\0', sizeof field) || !ref_uuid(field)) {
        snprintf(want, sizeof want, "%s.%s: is not a UUID (8-4-4-4-12 "
                 "hexadecimal digits)", t->entity, c->name);
    }
    check_outcome(spotdb__check_values(NULL, t, r.bytes,
                                       SPOTDB_COLUMN_BIT(i)),
                  want, "uuid column");
}

static void check_scalar_column(const spotdb__table *t, size_t i,
                                const uint8_t *data, size_t size)
{
    const spotdb__column *c = &t->columns[i];
    unsigned char v[8] = { 0 };
    char want[256];
    row r;

    memcpy(v, data, size < 8 ? size : 8);
    memset(&r, 0, sizeof r);
    memcpy(r.bytes + c->offset, v, c->type == SPOTDB__BOOL ? sizeof(bool)
                                   : c->type == SPOTDB__INT32 ? 4 : 8);
    want[0] = '\0';
    if (c->type == SPOTDB__FLOAT64 && c->number_rule) {
        bool probability = c->number_rule == spotdb__rule_probability;
        double d;

        FUZZ_CHECK(probability || c->number_rule == spotdb__rule_finite,
                   "a number rule without a reference here: add one");
        memcpy(&d, v, sizeof d);
        if (probability ? !(d >= 0.0 && d <= 1.0) : !isfinite(d)) {
            char why[200];
            int k = snprintf(want, sizeof want, "%s.%s: ", t->entity,
                             c->name);

            FUZZ_CHECK(!c->number_rule(d, why, sizeof why),
                       "a number rule accepts what its reference refuses");
            snprintf(want + k, sizeof want - (size_t)k, "%s", why);
        }
    } else if (c->type == SPOTDB__TIMESTAMP) {
        int64_t us;

        memcpy(&us, v, sizeof us);
        if (!(us == INT64_MIN || us > INT64_MIN + PG_EPOCH_US))
            snprintf(want, sizeof want, "%s.%s: is out of range", t->entity,
                     c->name);
    } else if (c->type == SPOTDB__BOOL) {
        /* One byte, 0 or 1, as a C bool holds. */
        r.bytes[c->offset] = v[0] & 1;
    }
    check_outcome(spotdb__check_values(NULL, t, r.bytes, SPOTDB_COLUMN_BIT(i)),
                  want, "scalar column");
}

/* account_id and role_arn together: each valid, and the same number. */
static void check_account_pair(const char *id, const char *arn)
{
    const spotdb__table *t = &spotdb__account_table;
    size_t ci = SPOTDB__ACCOUNT_ACCOUNT_ID_COLUMN, ai = 0;
    char want[512];
    row r;

    for (size_t i = 0; i < t->ncolumns; i++)
        if (strcmp(t->columns[i].name, "role_arn") == 0)
            ai = i;
    FUZZ_CHECK(ai > 0, "accounts has no role_arn column");
    memset(&r, 0, sizeof r);
    set_text(&r, &t->columns[ci], id);
    set_text(&r, &t->columns[ai], arn);
    expected_text(want, sizeof want, t, &t->columns[ci], id);
    if (!want[0])
        expected_text(want, sizeof want, t, &t->columns[ai], arn);
    if (!want[0] && memcmp(arn + 13, id, 12) != 0)
        snprintf(want, sizeof want, "account.role_arn: its account number "
                 "must equal account_id");
    check_outcome(spotdb__check_values(NULL, t, r.bytes,
                                       SPOTDB_COLUMN_BIT(ci) |
                                       SPOTDB_COLUMN_BIT(ai)),
                  want, "account pair");
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    /* The messages pass the redactor, which also masks PGPASSWORD. */
    unsetenv("PGPASSWORD");
    for (size_t k = 0; k < N_RULES; k++)
        for (size_t b = 0; b < 3 && rules[k].bad[b]; b++) {
            FUZZ_CHECK(!rules[k].rule(rules[k].bad[b], rules[k].phrases[b],
                                      sizeof rules[k].phrases[b]),
                       "rule %zu accepts its sample of a bad value", k);
        }
    for (size_t t = 0; t < N_TABLES; t++)
        FUZZ_CHECK(tables[t]->row_size <= ROW_MAX, "ROW_MAX is too small");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s, why[256];
    const char *nul;

    if (size > 4096)
        return 0;
    s = fuzz_strndup(data, size);
    FUZZ_CHECK(spotdb__utf8_chars(s) == ref_utf8_chars(s),
               "spotdb__utf8_chars %ld, reference %ld", spotdb__utf8_chars(s),
               ref_utf8_chars(s));
    FUZZ_CHECK(spotdb__is_uuid(s) == ref_uuid(s), "spotdb__is_uuid disagrees");
    for (size_t k = 0; k < N_RULES; k++)
        run_rule(&rules[k], s, why, sizeof why);

    for (size_t t = 0; t < N_TABLES; t++)
        for (size_t i = 0; i < tables[t]->ncolumns; i++) {
            switch (tables[t]->columns[i].type) {
            case SPOTDB__TEXT:
            case SPOTDB__JSON:
                check_text_column(tables[t], i, s);
                break;
            case SPOTDB__UUID:
                check_uuid_column(tables[t], i, data, size);
                break;
            default:
                check_scalar_column(tables[t], i, data, size);
                break;
            }
        }

    /* The pair: the input's two NUL-separated parts, or the input and an
     * ARN made from it. */
    nul = memchr(data, '\0', size);
    if (nul) {
        check_account_pair(s, s + (nul - (const char *)data) + 1);
    } else {
        char arn[128];

        snprintf(arn, sizeof arn, "arn:aws:iam::%.20s:role/r", s);
        check_account_pair(s, arn);
    }
    free(s);
    return 0;
}
