/*
 * Fuzz target: the JSON check of jsonb columns (spotdb__rule_json in
 * lib/validate.c: json-c, strict, one reused tokener per thread).
 *
 * The input is the column's text.  Invariants:
 * - accepted => a fresh json-c tokener parses it whole, with nothing but
 *   JSON whitespace after the value (the reference parse), unless it
 *   nests deeper than the check follows (then the server decides, as
 *   documented);
 * - rejected => that reference parse fails too;
 * - valid JSON (RFC 8259, checked by an independent grammar below) is
 *   accepted: the check may let through what json-c tolerates (NaN,
 *   leading zeros, raw control characters in strings: jsonb refuses them
 *   with a clear error, see instances.h), never refuse what the server
 *   takes;
 * - the verdict does not depend on what the thread's tokener parsed
 *   before (an unfinished prefix is checked first);
 * - a refusal says why, in a NUL-terminated phrase that does not depend
 *   on the value.
 */
#include <string.h>

#include <json-c/json_object.h>
#include <json-c/json_tokener.h>

#include "fuzz.h"
#include "table.h"

/* The check's json-c depth; near it the two may disagree by design. */
#define JSON_DEPTH 64
#define NEAR_DEPTH (JSON_DEPTH - 4)

/* ---- RFC 8259, independently of json-c ---------------------------------- */

enum { RFC_VALID, RFC_INVALID, RFC_DEEP };

typedef struct rfc {
    const char *s;
    size_t len, i;
    int depth;
    bool deep;
} rfc;

static bool rfc_value(rfc *p);

static void rfc_ws(rfc *p)
{
    while (p->i < p->len && (p->s[p->i] == ' ' || p->s[p->i] == '\t' ||
                             p->s[p->i] == '\n' || p->s[p->i] == '\r'))
        p->i++;
}

static bool rfc_eat(rfc *p, char c)
{
    if (p->i < p->len && p->s[p->i] == c) {
        p->i++;
        return true;
    }
    return false;
}

static bool rfc_digits(rfc *p)
{
    size_t from = p->i;

    while (p->i < p->len && p->s[p->i] >= '0' && p->s[p->i] <= '9')
        p->i++;
    return p->i > from;
}

static bool rfc_number(rfc *p)
{
    rfc_eat(p, '-');
    if (!rfc_eat(p, '0') && !(p->i < p->len && p->s[p->i] >= '1' &&
                              p->s[p->i] <= '9' && rfc_digits(p)))
        return false;
    if (rfc_eat(p, '.') && !rfc_digits(p))
        return false;
    if (rfc_eat(p, 'e') || rfc_eat(p, 'E')) {
        if (!rfc_eat(p, '+'))
            rfc_eat(p, '-');
        if (!rfc_digits(p))
            return false;
    }
    return true;
}

static bool rfc_string(rfc *p)
{
    if (!rfc_eat(p, '"'))
        return false;
    while (p->i < p->len) {
        unsigned char c = (unsigned char)p->s[p->i++];

        if (c == '"')
            return true;
        if (c < 0x20)
            return false;
        if (c != '\\')
            continue;
        if (p->i >= p->len)
            return false;
        c = (unsigned char)p->s[p->i++];
        if (c == 'u') {
            for (int k = 0; k < 4; k++, p->i++)
                if (p->i >= p->len ||
                    !strchr("0123456789abcdefABCDEF", p->s[p->i]) ||
                    p->s[p->i] == '\0')
                    return false;
        } else if (!strchr("\"\\/bfnrt", c) || c == '\0') {
            return false;
        }
    }
    return false;
}

static bool rfc_literal(rfc *p, const char *word)
{
    size_t n = strlen(word);

    if (p->len - p->i < n || memcmp(p->s + p->i, word, n) != 0)
        return false;
    p->i += n;
    return true;
}

/* [ ... ] or { ... }: members are values, or "name": value pairs. */
static bool rfc_container(rfc *p, char close, bool pairs)
{
    bool ok = false;

    if (++p->depth >= NEAR_DEPTH) {
        p->deep = true;
        return false;
    }
    rfc_ws(p);
    if (rfc_eat(p, close)) {
        p->depth--;
        return true;
    }
    for (;;) {
        if (pairs) {
            if (!rfc_string(p))
                break;
            rfc_ws(p);
            if (!rfc_eat(p, ':'))
                break;
            rfc_ws(p);
        }
        if (!rfc_value(p))
            break;
        rfc_ws(p);
        if (rfc_eat(p, close)) {
            ok = true;
            break;
        }
        if (!rfc_eat(p, ','))
            break;
        rfc_ws(p);
    }
    p->depth--;
    return ok;
}

static bool rfc_value(rfc *p)
{
    char c = p->i < p->len ? p->s[p->i] : '\0';

    switch (c) {
    case '{': p->i++; return rfc_container(p, '}', true);
    case '[': p->i++; return rfc_container(p, ']', false);
    case '"': return rfc_string(p);
    case 't': return rfc_literal(p, "true");
    case 'f': return rfc_literal(p, "false");
    case 'n': return rfc_literal(p, "null");
    default: return rfc_number(p);
    }
}

static int rfc_check(const char *s, size_t len)
{
    rfc p = { s, len, 0, 0, false };
    bool ok;

    rfc_ws(&p);
    ok = rfc_value(&p);
    rfc_ws(&p);
    if (p.deep)
        return RFC_DEEP;
    return ok && p.i == len ? RFC_VALID : RFC_INVALID;
}

/* ---- json-c, fresh tokener ---------------------------------------------- */

enum { REF_OK, REF_BAD, REF_DEPTH };

static int reference_parse(const char *s, size_t len)
{
    struct json_tokener *tok = json_tokener_new_ex(JSON_DEPTH);
    struct json_object *obj;
    enum json_tokener_error err;
    size_t end;

    if (!tok)
        abort();
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    /* The terminating NUL too: it ends a number or word at the end. */
    obj = json_tokener_parse_ex(tok, s, (int)len + 1);
    err = json_tokener_get_error(tok);
    end = json_tokener_get_parse_end(tok);
    json_object_put(obj);
    json_tokener_free(tok);
    if (err == json_tokener_error_depth)
        return REF_DEPTH;
    if (err != json_tokener_success)
        return REF_BAD;
    while (end < len && strchr(" \t\n\r", s[end]))
        end++;
    return end == len ? REF_OK : REF_BAD;
}

/* ---- the target --------------------------------------------------------- */

/* The phrase of a refusal, the same for every value (which it must not
 * repeat: it may be sensitive). */
static char refusal[256];

static void check_why(const char *why, size_t n)
{
    FUZZ_CHECK(memchr(why, '\0', n) != NULL, "why is not NUL-terminated");
    FUZZ_CHECK(strcmp(why, refusal) == 0, "the reason [%s] is not [%s]",
               why, refusal);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    FUZZ_CHECK(!spotdb__rule_json("x", refusal, sizeof refusal) &&
               refusal[0], "\"x\" is accepted, or refused without a reason");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s, *prefix, why[256];
    size_t len;
    bool ok, again;
    int ref, grammar;

    if (size > 65536)
        return 0;
    s = fuzz_strndup(data, size);
    len = strlen(s);
    memset(why, 'Z', sizeof why);
    ok = spotdb__rule_json(s, why, sizeof why);
    if (!ok)
        check_why(why, sizeof why);
    ref = reference_parse(s, len);
    grammar = rfc_check(s, len);

    FUZZ_CHECK(!ok || ref != REF_BAD,
               "accepted, but json-c does not parse it whole: [%.200s]", s);
    if (ref != REF_DEPTH && grammar != RFC_DEEP) {
        FUZZ_CHECK(ok == (ref == REF_OK),
                   "refused, but json-c parses it whole: [%.200s]", s);
        FUZZ_CHECK(ok || grammar != RFC_VALID,
                   "valid JSON refused: [%.200s]", s);
    }

    /* The thread's tokener, left in the middle of something else, is
     * reset: the verdict stays. */
    prefix = fuzz_strndup(data, len / 2);
    spotdb__rule_json(prefix, why, sizeof why);
    again = spotdb__rule_json(s, why, sizeof why);
    FUZZ_CHECK(again == ok, "the verdict changed after another value");
    free(prefix);
    free(s);
    return 0;
}
