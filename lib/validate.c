/*
 * Rules a value must follow before it is sent: UUIDs, UTF-8, and the
 * formats AWS gives its identifiers.  Each rule writes, on failure, a
 * phrase that follows the field name ("must be 12 digits"); none repeats
 * the value, which may be sensitive (an external id is a shared secret of
 * sorts).
 */
#include <ctype.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json_tokener.h>
#include <json-c/json_object.h>

#include "table.h"

const char *const spotdb__pipeline_modes[] = { "CLUSTER", "LINEAR", NULL };
const char *const spotdb__decisions[] = { "SWITCH", "STAY",
                                          "FALLBACK_ONDEMAND", NULL };
const char *const spotdb__environment_types[] = { "PROD", "LAB", NULL };

static bool fail(char *why, size_t n, const char *rule)
{
    snprintf(why, n, "%s", rule);
    return false;
}

bool spotdb__is_uuid(const char *s)
{
    for (int i = 0; i < 36; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;

        if (dash ? s[i] != '-' : !isxdigit((unsigned char)s[i]))
            return false;
    }
    return s[36] == '\0';
}

/* Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing
 * above U+10FFFF, as the server's own check. */
long spotdb__utf8_chars(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    long chars = 0;

    while (*p) {
        unsigned c = *p;
        int extra;
        unsigned cp;

        if (c < 0x80) {
            p++;
            chars++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            extra = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            extra = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            extra = 3;
            cp = c & 0x07;
        } else {
            return -1;
        }
        for (int i = 1; i <= extra; i++) {
            if ((p[i] & 0xc0) != 0x80)
                return -1;
            cp = cp << 6 | (p[i] & 0x3f);
        }
        if ((extra == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
            (extra == 3 && (cp < 0x10000 || cp > 0x10ffff)))
            return -1;
        p += extra + 1;
        chars++;
    }
    return chars;
}

static bool digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i]))
            return false;
    return true;
}

bool spotdb__rule_aws_account(const char *s, char *why, size_t n)
{
    if (strlen(s) != 12 || !digits(s, 12))
        return fail(why, n, "must be exactly 12 digits (an AWS account "
                            "number)");
    return true;
}

/* IAM names and paths: letters, digits and _+=,.@- (and / in paths). */
static bool iam_char(char c)
{
    return isalnum((unsigned char)c) || strchr("_+=,.@-/", c) != NULL;
}

bool spotdb__rule_role_arn(const char *s, char *why, size_t n)
{
    static const char prefix[] = "arn:aws:iam::";
    static const char role[] = ":role/";
    const char *name;

    if (strncmp(s, prefix, strlen(prefix)) != 0)
        goto bad;
    s += strlen(prefix);
    if (!digits(s, 12) || strncmp(s + 12, role, strlen(role)) != 0)
        goto bad;
    name = s + 12 + strlen(role);
    if (!*name || name[strlen(name) - 1] == '/')
        goto bad;
    for (const char *p = name; *p; p++)
        if (!iam_char(*p))
            goto bad;
    return true;
bad:
    return fail(why, n, "must have the form arn:aws:iam::<12 digits>:role/"
                        "<name>, the name of letters, digits and _+=,.@-/");
}

bool spotdb__rule_external_id(const char *s, char *why, size_t n)
{
    size_t len = strlen(s);

    if (len < 2 || len > 1224)
        return fail(why, n, "must be 2 to 1224 characters (the AWS rule)");
    for (const char *p = s; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("_+=,.@:/-", *p))
            return fail(why, n, "may hold only letters, digits and "
                                "_+=,.@:/- (the AWS rule)");
    return true;
}

bool spotdb__rule_ec2_id(const char *s, char *why, size_t n)
{
    size_t len = strlen(s);

    if (strncmp(s, "i-", 2) != 0 || (len != 10 && len != 19))
        goto bad;
    for (const char *p = s + 2; *p; p++)
        if (!isdigit((unsigned char)*p) && !(*p >= 'a' && *p <= 'f'))
            goto bad;
    return true;
bad:
    return fail(why, n, "must be an EC2 instance id: i- and 8 or 17 "
                        "lower-case hexadecimal digits");
}

bool spotdb__rule_email(const char *s, char *why, size_t n)
{
    const char *at = strchr(s, '@');

    if (!at || at == s || !at[1] || strchr(at + 1, '@'))
        goto bad;
    for (const char *p = s; *p; p++)
        if (isspace((unsigned char)*p) || iscntrl((unsigned char)*p))
            goto bad;
    return true;
bad:
    return fail(why, n, "must be an address with one @ between a local "
                        "part and a domain, without spaces");
}

/* Logins are a username or an email: a username without @ keeps the two
 * apart. */
bool spotdb__rule_username(const char *s, char *why, size_t n)
{
    for (const char *p = s; *p; p++)
        if (*p == '@' || isspace((unsigned char)*p) ||
            iscntrl((unsigned char)*p))
            return fail(why, n, "must not contain @, spaces or control "
                                "characters");
    return true;
}

/* json-c in strict mode, with one tokener per thread, reset between
 * values: making one allocates its parse stack, which would cost more
 * than parsing a typical feature vector.  JSON nested deeper than the
 * stack allows is left to the server, which has the last word anyway
 * (\u0000, for one, is valid JSON that jsonb refuses). */
#define JSON_DEPTH 64

static pthread_once_t json_once = PTHREAD_ONCE_INIT;
static pthread_key_t json_key;
static bool json_key_ok;

static void json_tokener_release(void *tok)
{
    json_tokener_free(tok);
}

static void json_init(void)
{
    json_key_ok = pthread_key_create(&json_key, json_tokener_release) == 0;
}

/* The thread's tokener, ready for a new value; *own when the caller must
 * free it (no thread-specific storage). */
static struct json_tokener *tokener(bool *own)
{
    struct json_tokener *tok;

    pthread_once(&json_once, json_init);
    *own = !json_key_ok;
    tok = json_key_ok ? pthread_getspecific(json_key) : NULL;
    if (tok) {
        json_tokener_reset(tok);
        return tok;
    }
    if (!(tok = json_tokener_new_ex(JSON_DEPTH)))
        return NULL;
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    if (!*own && pthread_setspecific(json_key, tok) != 0)
        *own = true;
    return tok;
}

bool spotdb__rule_json(const char *s, char *why, size_t n)
{
    bool own;
    struct json_tokener *tok = tokener(&own);
    struct json_object *obj;
    enum json_tokener_error err;
    size_t len = strlen(s), end;
    bool ok;

    if (!tok)
        return fail(why, n, "could not be checked (out of memory)");
    if (len >= INT32_MAX) {
        if (own)
            json_tokener_free(tok);
        return fail(why, n, "is too long to check");
    }
    /* With the terminating NUL: it ends a number or word at the very end
     * ("1", "true"), which json-c would otherwise wait to see continue.
     * JSON null parses to a NULL object. */
    obj = json_tokener_parse_ex(tok, s, (int)len + 1);
    err = json_tokener_get_error(tok);
    ok = err == json_tokener_success;
    end = ok ? json_tokener_get_parse_end(tok) : 0;
    while (ok && end < len && isspace((unsigned char)s[end]))
        end++;
    ok = (ok && end == len) || err == json_tokener_error_depth;
    json_object_put(obj);
    if (own)
        json_tokener_free(tok);
    return ok ? true : fail(why, n, "is not valid JSON");
}

bool spotdb__rule_probability(double v, char *why, size_t n)
{
    if (!(v >= 0.0 && v <= 1.0))
        return fail(why, n, "must be within [0, 1]");
    return true;
}

bool spotdb__rule_finite(double v, char *why, size_t n)
{
    if (!isfinite(v))
        return fail(why, n, "must be a finite number");
    return true;
}
