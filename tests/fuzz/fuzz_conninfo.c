/*
 * Fuzz target: connection settings (spotdb__conninfo_resolve in
 * lib/conninfo.c, over libpq's PQconninfoParse) and the redactor that
 * every message passes (spotdb__redact in lib/redact.c).  Nothing
 * connects; the environment is emptied of DATABASE_URL, POSTGRES_* and
 * PG* first, so the settings are the input's alone.
 *
 * Input: a flags byte, then up to four parts separated by NUL bytes:
 * a connection string A, a marker source B, a suffix C, a message text D.
 *
 * 1. A alone is resolved.  Parsed by libpq => resolved to exactly what
 *    libpq parsed, plus, for what it leaves out, the library's defaults
 *    (what "" resolves to, documented ones included: connect_timeout 10,
 *    client_encoding UTF8, fallback_application_name libspotdb; and
 *    sslmode=verify-full exactly when db.h says), from the argument,
 *    nothing from the environment.  Refused by libpq => EINVAL
 *    with "invalid connection settings (from the conninfo argument): ".
 * 2. When libpq finds a password P (without '*', the mask's own
 *    character), messages holding it are redacted as a handle does it
 *    (the raw string and P as the secret): D with P inside, the raw
 *    string quoted whole, D alone.  P, and the password as written in a
 *    URI's user info, never appear in the result, at any buffer size;
 *    the result is NUL-terminated inside the buffer, nothing is written
 *    past it, and a short buffer holds a prefix of the full result.
 * 3. A marker of at least MIN_MARKER letters and digits made from B is
 *    put where a password goes (flags & 7 picks the form: password=...,
 *    quoted, spaced, after '', URI user info with user u or A, URI
 *    query), between A and C, optionally percent-encoded in URIs
 *    (flags & 8).  When libpq refuses that string, the message the
 *    library keeps (libpq's error, redacted with the raw string only: no
 *    password was parsed) holds the marker neither plain nor encoded,
 *    whatever libpq made of the rest.  (Unless the marker also appears
 *    elsewhere in the string: then it is not known to be a password.)
 */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "fuzz.h"
#include "internal.h"

#define MIN_MARKER 8
#define MAX_MARKER 64
#define WITHHELD "(message withheld: it may hold a secret)"
#define PREFIX "invalid connection settings (from the conninfo argument): "

extern char **environ;

/* What goes before the marker; form 5 is "postgres://" A ":", A being
 * the user name (see user_then_password). */
static const char *const intros[8] = {
    "password=", "password='", " password = ", "password=''",
    "postgresql://u:", ":", "?password=", "&password=",
};

/* ---- a growable string -------------------------------------------------- */

typedef struct buf {
    char *s;
    size_t len, cap;
} buf;

static void put(buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        if (!(b->s = realloc(b->s, b->cap)))
            abort();
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void puts_(buf *b, const char *s)
{
    put(b, s, strlen(s));
}

/* ---- 1. resolution ------------------------------------------------------ */

static const char *ref_value(const PQconninfoOption *ref, const char *kw)
{
    for (const PQconninfoOption *o = ref; o->keyword; o++)
        if (strcmp(o->keyword, kw) == 0)
            return o->val;
    return NULL;
}

/* The value libpq takes for kw: the last one given. */
static const char *effective(const spotdb__conninfo *ci, const char *kw)
{
    const char *v = NULL;

    for (size_t i = 0; i < ci->count; i++)
        if (strcmp(ci->keywords[i], kw) == 0)
            v = ci->values[i];
    return v;
}

static void expect_setting(const spotdb__conninfo *ci, const char *kw,
                           const char *want)
{
    const char *v = effective(ci, kw);

    FUZZ_CHECK(v && strcmp(v, want) == 0, "%s resolves to [%s], want [%s]",
               kw, v ? v : "(none)", want);
}

/* What an empty string resolves to: the library's defaults, each kept
 * unless the string gives that keyword. */
static spotdb__conninfo defaults;

static const char *nonempty(const PQconninfoOption *ref, const char *kw)
{
    const char *v = ref_value(ref, kw);

    return v && *v ? v : NULL;
}

/* db.h: local is a unix-socket path, localhost, 127.0.0.1 or ::1 (or
 * nothing: libpq's default socket). */
static bool all_local(const char *list)
{
    static const char *const names[] = { "localhost", "127.0.0.1", "::1" };

    for (const char *h = list; h; h = strchr(h, ',') ? strchr(h, ',') + 1
                                                     : NULL) {
        size_t n = strcspn(h, ",");
        bool local = n == 0 || h[0] == '/' || h[0] == '@';

        for (size_t k = 0; k < 3 && !local; k++)
            local = strlen(names[k]) == n && strncasecmp(names[k], h, n) == 0;
        if (!local)
            return false;
    }
    return true;
}

/* db.h: without an sslmode (or requiressl, or a service), a host that is
 * not local gets sslmode=verify-full. */
static bool wants_verify_full(const PQconninfoOption *ref)
{
    return !nonempty(ref, "sslmode") && !nonempty(ref, "requiressl") &&
           !nonempty(ref, "service") &&
           (!all_local(nonempty(ref, "host")) ||
            !all_local(nonempty(ref, "hostaddr")));
}

static void check_settings(const spotdb__conninfo *ci,
                           const PQconninfoOption *ref, const char *s)
{
    const char *pw = ref_value(ref, "password");
    bool secure = wants_verify_full(ref);

    FUZZ_CHECK(ci->source == (*s ? SPOTDB_CONN_ARGUMENT
                                 : SPOTDB_CONN_LIBPQ_DEFAULTS),
               "source %d", ci->source);
    FUZZ_CHECK(ci->raw == (*s ? s : NULL), "raw is not the argument");
    FUZZ_CHECK(ci->keywords[ci->count] == NULL &&
               ci->values[ci->count] == NULL, "not NULL-terminated");
    for (size_t i = 0; i < ci->count; i++) {
        const char *kw = ci->keywords[i];

        FUZZ_CHECK(kw && ci->values[i], "setting %zu is NULL", i);
        FUZZ_CHECK(ref_value(ref, kw) || effective(&defaults, kw) ||
                   (secure && strcmp(kw, "sslmode") == 0),
                   "%s comes from neither the string nor the defaults", kw);
    }
    for (const PQconninfoOption *o = ref; o->keyword; o++) {
        if (!o->val)
            continue;
        expect_setting(ci, o->keyword,
                       secure && strcmp(o->keyword, "sslmode") == 0
                           ? "verify-full" : o->val);
    }
    for (size_t i = 0; i < defaults.count; i++)
        if (!ref_value(ref, defaults.keywords[i]))
            expect_setting(ci, defaults.keywords[i],
                           effective(&defaults, defaults.keywords[i]));
    if (secure)
        expect_setting(ci, "sslmode", "verify-full");
    else
        FUZZ_CHECK(effective(ci, "sslmode") == ref_value(ref, "sslmode") ||
                   (effective(ci, "sslmode") && ref_value(ref, "sslmode") &&
                    strcmp(effective(ci, "sslmode"),
                           ref_value(ref, "sslmode")) == 0),
                   "sslmode %s for local hosts or with an sslmode given",
                   effective(ci, "sslmode"));
    FUZZ_CHECK(pw ? ci->password && strcmp(ci->password, pw) == 0
                  : ci->password == NULL, "the password is not libpq's");
}

/* ---- 2. redaction with a known password --------------------------------- */

/* The password as written in a URI's user info (libpq's rule: the user
 * info ends at the first '@' unless a '/' comes first), or NULL. */
static char *uri_raw_password(const char *s)
{
    const char *p, *colon;

    if (strncmp(s, "postgresql://", 13) == 0)
        p = s + 13;
    else if (strncmp(s, "postgres://", 11) == 0)
        p = s + 11;
    else
        return NULL;
    colon = NULL;
    for (; *p && *p != '@' && *p != '/'; p++)
        if (*p == ':' && !colon)
            colon = p;
    if (*p != '@' || !colon || p == colon + 1)
        return NULL;
    return strndup(colon + 1, (size_t)(p - colon - 1));
}

/* Redact msg as a handle does; check the result at two buffer sizes. */
static void redact_check(const char *msg, const char *raw,
                         const char *const *secrets,
                         const char *const *forbidden, size_t small)
{
    char full[SPOTDB__ERRMSG_MAX + 16], part[SPOTDB__ERRMSG_MAX + 16];
    size_t flen;

    memset(full, 'Z', sizeof full);
    spotdb__redact(full, SPOTDB__ERRMSG_MAX, msg, raw, secrets);
    FUZZ_CHECK(memchr(full, '\0', SPOTDB__ERRMSG_MAX) != NULL,
               "not NUL-terminated");
    for (size_t i = SPOTDB__ERRMSG_MAX; i < sizeof full; i++)
        FUZZ_CHECK(full[i] == 'Z', "written past the buffer");
    flen = strlen(full);
    if (strcmp(full, WITHHELD) != 0)
        for (size_t k = 0; forbidden[k]; k++)
            FUZZ_CHECK(strstr(full, forbidden[k]) == NULL,
                       "LEAK of [%s]: [%s] -> [%s] (raw [%s])", forbidden[k],
                       msg, full, raw);

    memset(part, 'Z', sizeof part);
    spotdb__redact(part, small, msg, raw, secrets);
    FUZZ_CHECK(memchr(part, '\0', small) != NULL,
               "not NUL-terminated in %zu bytes", small);
    for (size_t i = small; i < sizeof part; i++)
        FUZZ_CHECK(part[i] == 'Z', "written past %zu bytes", small);
    FUZZ_CHECK(strlen(part) == (flen < small - 1 ? flen : small - 1) &&
               strncmp(part, full, strlen(part)) == 0,
               "%zu bytes: [%s] is no prefix of [%s]", small, part, full);
}

static void check_messages(const char *s, const char *pw, const char *text,
                           uint8_t flags)
{
    const char *const secrets[] = { pw, NULL };
    const char *forbidden[3] = { pw, NULL, NULL };
    char *raw_pw = uri_raw_password(s);
    size_t tlen = strlen(text), k = (size_t)(flags >> 5) * tlen / 7;
    size_t small = tlen % 61 + 1;
    buf m = { NULL, 0, 0 };

    if (raw_pw && !strchr(raw_pw, '*'))
        forbidden[1] = raw_pw;
    put(&m, text, k);
    puts_(&m, pw);
    puts_(&m, text + k);
    redact_check(m.s, s, secrets, forbidden, small);
    m.len = 0;
    puts_(&m, "invalid URI query parameter: \"");
    puts_(&m, s);
    puts_(&m, "\"");
    redact_check(m.s, s, secrets, forbidden, small);
    redact_check(text, s, secrets, forbidden, small);
    free(m.s);
    free(raw_pw);
}

static void check_resolve(const char *s, const char *const *marker,
                          const char *text, uint8_t flags)
{
    char *err = NULL;
    PQconninfoOption *ref = PQconninfoParse(s, &err);
    spotdb__conninfo ci;
    int rc;

    spotdb__clear_last_error();
    rc = spotdb__conninfo_resolve(&ci, s, NULL);
    if (ref) {
        const char *pw = ref_value(ref, "password");

        FUZZ_CHECK(rc == 0, "libpq parses [%s], resolve says %d: %s", s, rc,
                   spotdb_last_errmsg());
        check_settings(&ci, ref, s);
        if (pw && *pw && !strchr(pw, '*'))
            check_messages(s, pw, text, flags);
        PQconninfoFree(ref);
    } else {
        const char *msg = spotdb_last_errmsg();

        FUZZ_CHECK(rc == SPOTDB_EINVAL || (rc == SPOTDB_ENOMEM && !err),
                   "libpq refuses [%s], resolve says %d", s, rc);
        /* Over-masking is accepted (a one-letter value glued to a quote
         * masks that letter everywhere): the prefix is checked only where
         * nothing was masked. */
        FUZZ_CHECK(strncmp(msg, PREFIX, strlen(PREFIX)) == 0 ||
                   strcmp(msg, WITHHELD) == 0 || strstr(msg, "***"),
                   "message [%s]", msg);
        for (size_t k = 0; marker && marker[k]; k++)
            FUZZ_CHECK(strstr(msg, marker[k]) == NULL,
                       "LEAK of the marker [%s]: [%s] -> [%s]", marker[k],
                       s, msg);
        PQfreemem(err);
    }
    spotdb__conninfo_free(&ci);
}

/* ---- 3. a marker where a password goes ---------------------------------- */

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

/* Whether s[from, to), percent-decoded, holds needle. */
static bool decoded_holds(const char *s, size_t from, size_t to,
                          const char *needle)
{
    buf dec = { NULL, 0, 0 };
    bool found;

    put(&dec, "", 0);
    for (size_t i = from; i < to; i++) {
        if (s[i] == '%' && i + 2 < to && hexval(s[i + 1]) >= 0 &&
            hexval(s[i + 2]) >= 0) {
            char c = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));

            put(&dec, &c, 1);
            i += 2;
        } else {
            put(&dec, s + i, 1);
        }
    }
    found = strstr(dec.s, needle) != NULL;
    free(dec.s);
    return found;
}

/* Whether a form of the marker appears in s other than as the text
 * inserted at s + at, as written or percent-decoded. */
static bool elsewhere(const char *s, size_t at, const char *inserted,
                      const char *const *marker)
{
    size_t end = at + strlen(inserted);

    for (size_t k = 0; marker[k]; k++) {
        for (const char *p = strstr(s, marker[k]); p;
             p = strstr(p + 1, marker[k]))
            if ((size_t)(p - s) != at || strcmp(marker[k], inserted) != 0)
                return true;
        if (decoded_holds(s, 0, at, marker[k]) ||
            decoded_holds(s, end, strlen(s), marker[k]))
            return true;
    }
    return false;
}

/* Form 5, "postgres://" a ":" marker c: whether the marker is the
 * password.  With an '@' before any '/' in c, libpq reads user info, and
 * the marker is its password while a holds no '@', '/' or ':'.  Without,
 * the URI is truncated (libpq reads a host and a port), which counts when
 * a is a plain user name. */
static bool user_then_password(const char *a, const char *c)
{
    size_t k = strcspn(c, "@/");

    if (c[k] == '@')
        return !strpbrk(a, "@/:");
    for (; *a; a++)
        if (!isalnum((unsigned char)*a) && !strchr("._-%", *a))
            return false;
    return true;
}

static void check_marker(const char *a, const uint8_t *b, size_t blen,
                         const char *c, const char *text, uint8_t flags)
{
    static const char alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                "abcdefghijklmnopqrstuvwxyz0123456789";
    static const char pad[] = "Mark3rPw";
    unsigned form = flags & 7u;
    bool uri = form >= 4, encode = uri && (flags & 8u);
    char plain[MAX_MARKER + 1];
    buf enc = { NULL, 0, 0 }, s = { NULL, 0, 0 };
    const char *marker[3];
    size_t n = 0, at;
    bool placed;

    for (; n < blen && n < MAX_MARKER; n++)
        plain[n] = alnum[b[n] % (sizeof alnum - 1)];
    for (size_t k = 0; n < MIN_MARKER; k++)
        plain[n++] = pad[k];
    plain[n] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (encode && i < blen && (b[i] & 0x80)) {
            char e[4];

            snprintf(e, sizeof e, (b[i] & 0x40) ? "%%%02X" : "%%%02x",
                     (unsigned char)plain[i]);
            puts_(&enc, e);
        } else {
            put(&enc, plain + i, 1);
        }
    }
    if (form == 5)
        puts_(&s, "postgres://");
    if (form != 4)
        puts_(&s, a);
    puts_(&s, intros[form]);
    at = s.len;
    puts_(&s, enc.s);
    puts_(&s, c);
    marker[0] = plain;
    marker[1] = strcmp(enc.s, plain) != 0 ? enc.s : NULL;
    marker[2] = NULL;
    /* Only a marker that is nowhere else, plain or encoded, is known to
     * be (what was meant as) the password. */
    placed = (form != 5 || user_then_password(a, c)) &&
             !elsewhere(s.s, at, enc.s, marker);
    check_resolve(s.s, placed ? marker : NULL, text, flags);
    free(enc.s);
    free(s.s);
}

/* ---- the target --------------------------------------------------------- */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char *names[256];
    size_t n = 0;

    (void)argc;
    (void)argv;
    for (char **e = environ; *e && n < 256; e++)
        if (strncmp(*e, "PG", 2) == 0 || strncmp(*e, "POSTGRES_", 9) == 0 ||
            strncmp(*e, "DATABASE_URL=", 13) == 0)
            names[n++] = strndup(*e, strcspn(*e, "="));
    for (size_t i = 0; i < n; i++) {
        unsetenv(names[i]);
        free(names[i]);
    }
    /* The documented defaults (db.h), whatever else the library adds. */
    FUZZ_CHECK(spotdb__conninfo_resolve(&defaults, "", NULL) == 0 &&
               defaults.source == SPOTDB_CONN_LIBPQ_DEFAULTS,
               "the empty string does not resolve to libpq's defaults");
    expect_setting(&defaults, "connect_timeout", "10");
    expect_setting(&defaults, "client_encoding", "UTF8");
    expect_setting(&defaults, "fallback_application_name", "libspotdb");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *part[4] = { NULL, NULL, NULL, NULL };
    size_t plen[4] = { 0, 0, 0, 0 };
    char *str[4];
    uint8_t flags;
    size_t k = 0, start = 1;

    if (size == 0 || size > 8192)
        return 0;
    flags = data[0];
    for (size_t i = 1; i <= size && k < 4; i++)
        if (i == size || (data[i] == '\0' && k < 3)) {
            part[k] = data + start;
            plen[k++] = i - start;
            start = i + 1;
        }
    for (k = 0; k < 4; k++)
        str[k] = fuzz_strndup(part[k] ? part[k] : data, plen[k]);

    check_resolve(str[0], NULL, str[3], flags);
    if (part[1])
        check_marker(str[0], part[1], plen[1], str[2], str[3], flags);
    for (k = 0; k < 4; k++)
        free(str[k]);
    return 0;
}
