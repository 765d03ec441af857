/*
 * Masking of secrets in messages.  libpq echoes parts of a connection
 * string in some of its own errors (a malformed URI is quoted whole, a bad
 * percent escape is quoted as the token that holds it), so every message
 * the library keeps or prints passes through here.  Masking too much is
 * harmless; masking too little is a leak, so the rules are generous.
 */
#include <ctype.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "alloc.h"
#include "internal.h"

#define MASK "***"
#define MAX_SPANS 64

typedef struct span {
    size_t start, end;              /* [start, end) */
    bool split;                     /* raw: also mask its pieces */
} span;

typedef struct spans {
    span s[MAX_SPANS];
    size_t n;
    bool overflow;
} spans;

static void add_span_split(spans *sp, size_t start, size_t end, bool split)
{
    if (end <= start)
        return;
    if (sp->n == MAX_SPANS) {
        sp->overflow = true;
        return;
    }
    sp->s[sp->n].start = start;
    sp->s[sp->n].end = end;
    sp->s[sp->n].split = split;
    sp->n++;
}

static void add_span(spans *sp, size_t start, size_t end)
{
    add_span_split(sp, start, end, true);
}

static bool ends_value(char c)
{
    return c == '\0' || isspace((unsigned char)c) || c == '"';
}

/* password=value, keyword case-insensitive, value quoted or bare. */
static void find_keyword_values(const char *t, spans *sp, bool raw)
{
    static const char kw[] = "password";
    size_t len = strlen(t);

    for (size_t i = 0; i + sizeof kw - 1 <= len; i++) {
        size_t j = i + sizeof kw - 1, start;
        bool in_uri = i > 0 && (t[i - 1] == '?' || t[i - 1] == '&');

        if (strncasecmp(t + i, kw, sizeof kw - 1) != 0)
            continue;
        while (t[j] == ' ' || t[j] == '\t')
            j++;
        if (t[j] != '=') {
            /* "?password..." without '=': libpq quotes the parameter. */
            if (raw && j > i + sizeof kw - 1 && t[j] && !isspace((unsigned char)t[j])) {
                /* "password secret" in settings: a missing '=' makes
                 * libpq misread what follows, and it may quote the
                 * secret as a keyword. */
                start = j;
                while (t[j] && !isspace((unsigned char)t[j]))
                    j++;
                add_span(sp, start, j);
            } else if (in_uri) {
                start = i + sizeof kw - 1;
                for (j = start; !ends_value(t[j]) && t[j] != '&' &&
                                t[j] != '#'; j++)
                    ;
                add_span(sp, start, j);
            }
            continue;
        }
        j++;
        while (t[j] == ' ' || t[j] == '\t')
            j++;
        start = j;
        if (t[j] == '\'' || t[j] == '"') {
            char q = t[j];

            for (;;) {
                for (j++; t[j] && t[j] != q; j++)
                    if (t[j] == '\\' && t[j + 1])
                        j++;
                if (t[j] == q && t[j + 1] == q) {   /* SQL-style '' */
                    j++;
                    continue;
                }
                break;
            }
            add_span(sp, start + 1, j);
            if (t[j] == q) {
                /* Text glued to the closing quote is value too. */
                size_t g = ++j;

                while (!ends_value(t[j]) && t[j] != q &&
                       !(in_uri && (t[j] == '&' || t[j] == '#')))
                    j++;
                add_span(sp, g, j);
                /* Scan that text again: it may hold the next
                 * "password=''secret" (libpq ends the value at the
                 * quote). */
                j = g;
            }
        } else {
            while (!ends_value(t[j]) && !(in_uri && (t[j] == '&' || t[j] == '#')))
                j++;
            add_span(sp, start, j);
        }
        i = j > i ? j - 1 : i;
    }
}

static bool all_digits(const char *t, size_t start, size_t end)
{
    for (size_t i = start; i < end; i++)
        if (!isdigit((unsigned char)t[i]))
            return false;
    return end > start;
}

/* libpq's own rule: the user info runs to the first '@' unless a '/'
 * comes first, blanks, '?', '#' and quotes included; the password is what
 * follows its first ':'.  In a message (not raw) a line ends the search:
 * an '@' on another line belongs to something else. */
static void find_libpq_userinfo(const char *t, size_t base, spans *sp,
                                bool raw)
{
    size_t k = base, colon = 0;
    bool has_colon = false;

    for (; t[k] && t[k] != '@' && t[k] != '/' && (raw || t[k] != '\n');
         k++)
        if (t[k] == ':' && !has_colon) {
            colon = k;
            has_colon = true;
        }
    if (t[k] == '@' && has_colon)
        add_span(sp, colon + 1, k);
}

/* scheme://user:secret@host...: the user info ends at the last '@' before
 * the query, so a password holding a raw '/' is still caught.  Without an
 * '@' (a truncated or malformed URI) whatever follows the first ':' is
 * masked unless it is a port number. */
static void find_uri_userinfo(const char *t, spans *sp, bool raw)
{
    for (const char *p = strstr(t, "://"); p; p = strstr(p + 3, "://")) {
        size_t base = (size_t)(p + 3 - t), end = base, at = 0, colon = 0;
        bool has_at = false, has_colon = false;

        find_libpq_userinfo(t, base, sp, raw);
        while (!ends_value(t[end]) && t[end] != '?' && t[end] != '#') {
            if (t[end] == '@') {
                at = end;
                has_at = true;
            }
            end++;
        }
        for (size_t i = base; i < (has_at ? at : end); i++)
            if (t[i] == ':') {
                colon = i;
                has_colon = true;
                break;
            }
        if (!has_colon)
            continue;
        if (has_at) {
            add_span(sp, colon + 1, at);
        } else {
            size_t stop = colon + 1;
            while (stop < end && t[stop] != '/')
                stop++;
            if (!all_digits(t, colon + 1, stop)) {
                /* libpq reads "u:secret/db" as host u, port secret;
                 * a ',' in it starts another host, and libpq quotes the
                 * list of ports, so the pieces are masked too. */
                add_span_split(sp, colon + 1, stop, false);
                add_span(sp, colon + 1, end);
            }
        }
    }
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Percent-decode; invalid escapes are kept as they are. */
static void percent_decode(char *out, const char *in, size_t len)
{
    size_t o = 0;

    for (size_t i = 0; i < len; i++) {
        int hi = i + 2 < len ? hexval(in[i + 1]) : -1;
        int lo = i + 2 < len ? hexval(in[i + 2]) : -1;

        if (in[i] == '%' && hi >= 0 && lo >= 0) {
            out[o++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            out[o++] = in[i];
        }
    }
    out[o] = '\0';
}

static bool blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* A blank of the secret matches any blank of the message: messages are
 * made one line (newlines and tabs become spaces) before they are
 * redacted, so a secret with a newline would otherwise slip through. */
static void mask_literal(spans *sp, const char *t, const char *secret,
                         size_t slen)
{
    if (slen == 0)
        return;
    for (size_t i = 0; t[i]; i++) {
        size_t k = 0;

        while (k < slen && t[i + k] &&
               (t[i + k] == secret[k] ||
                (blank(t[i + k]) && blank(secret[k]))))
            k++;
        if (k == slen) {
            add_span(sp, i, i + slen);
            i += slen - 1;
        }
    }
}

static int cmp_span(const void *a, const void *b)
{
    const span *x = a, *y = b;

    return x->start < y->start ? -1 : x->start > y->start;
}

/* Sort and merge overlapping or touching spans in place. */
static void merge(spans *sp)
{
    size_t w = 0;

    qsort(sp->s, sp->n, sizeof sp->s[0], cmp_span);
    for (size_t r = 0; r < sp->n; r++) {
        if (w > 0 && sp->s[r].start <= sp->s[w - 1].end) {
            if (sp->s[r].end > sp->s[w - 1].end)
                sp->s[w - 1].end = sp->s[r].end;
        } else {
            sp->s[w++] = sp->s[r];
        }
    }
    sp->n = w;
}

/* Write t into out with each span replaced by MASK.  When there were more
 * spans than fit, nothing of t is trusted. */
static void emit(char *out, size_t outsz, const char *t, spans *sp)
{
    size_t o = 0, i = 0, len = strlen(t);

    if (sp->overflow) {
        snprintf(out, outsz, "%s", "(message withheld: it may hold a secret)");
        return;
    }
    merge(sp);
    for (size_t k = 0; k <= sp->n; k++) {
        size_t stop = k < sp->n ? sp->s[k].start : len;

        while (i < stop && o + 1 < outsz)
            out[o++] = t[i++];
        if (k == sp->n)
            break;
        for (const char *m = MASK; *m && o + 1 < outsz; m++)
            out[o++] = *m;
        i = sp->s[k].end;
    }
    out[o] = '\0';
}

/* libpq's tokenizers may cut a value where these rules do not (a raw '@'
 * or '/' in a URI password, SQL-style quotes, a keyword that swallows the
 * next one) and then quote just a piece: mask each piece of at least
 * MIN_PIECE bytes, raw and decoded, wherever it appears. */
#define MIN_PIECE 4
static void mask_pieces(spans *sp, const char *t, const char *v, size_t n)
{
    /* libpq's blanks are isspace()'s: \f and \v end a token too. */
    static const char seps[] = " \t\r\n\f\v'\"\\@/:?&#=[],";
    char buf[1024];

    for (size_t i = 0; i < n;) {
        size_t k = i;

        while (k < n && !strchr(seps, v[k]))
            k++;
        if (k - i >= MIN_PIECE && k - i < n && k - i < sizeof buf) {
            memcpy(buf, v + i, k - i);
            buf[k - i] = '\0';
            mask_literal(sp, t, buf, k - i);
            percent_decode(buf, v + i, k - i);
            mask_literal(sp, t, buf, strlen(buf));
        }
        i = k + 1;
    }
}

/* Secrets hidden in a raw connection string that libpq could not parse:
 * the same rules find them, and they are then masked wherever they appear
 * in the message, also when quoted alone. */
static void collect_raw(spans *sp, const char *t, const char *raw)
{
    spans rs = { .n = 0, .overflow = false };
    char buf[1024];

    find_keyword_values(raw, &rs, true);
    find_uri_userinfo(raw, &rs, true);
    if (rs.overflow)
        sp->overflow = true;
    for (size_t k = 0; k < rs.n; k++) {
        size_t n = rs.s[k].end - rs.s[k].start;

        if (n >= sizeof buf) {
            sp->overflow = true;
            continue;
        }
        memcpy(buf, raw + rs.s[k].start, n);
        buf[n] = '\0';
        mask_literal(sp, t, buf, n);
        percent_decode(buf, raw + rs.s[k].start, n);
        mask_literal(sp, t, buf, strlen(buf));
        if (rs.s[k].split)
            mask_pieces(sp, t, raw + rs.s[k].start, n);
    }
}

static void collect_secret(spans *sp, const char *t, const char *secret)
{
    size_t slen = strlen(secret);
    char *dec = spotdb__malloc(slen + 1);

    mask_literal(sp, t, secret, slen);
    if (dec) {
        percent_decode(dec, secret, slen);
        mask_literal(sp, t, dec, strlen(dec));
        free(dec);
    } else {
        sp->overflow = true;
    }
}

static bool crypt_b64(char c)
{
    return isalnum((unsigned char)c) || c == '.' || c == '/';
}

/* Anything shaped like a bcrypt hash ("$2b$12$" and its salt and digest),
 * whoever wrote it into the message: a trigger, a CHECK's failing row, a
 * log line of the application's own. */
static void find_bcrypt(const char *t, spans *sp)
{
    for (const char *p = strstr(t, "$2"); p; p = strstr(p + 1, "$2")) {
        const char *q = p + 7;

        if (!strchr("aby", p[2]) || p[2] == '\0' || p[3] != '$' ||
            !isdigit((unsigned char)p[4]) || !isdigit((unsigned char)p[5]) ||
            p[6] != '$')
            continue;
        while (crypt_b64(*q))
            q++;
        add_span_split(sp, (size_t)(p - t), (size_t)(q - t), false);
    }
}

/* PGPASSWORD is libpq's own secret, whatever the caller passes: every
 * message is checked for it here rather than by each caller. */
static void collect(spans *sp, const char *t, const char *const *secrets)
{
    const char *env = getenv("PGPASSWORD");

    find_keyword_values(t, sp, false);
    find_uri_userinfo(t, sp, false);
    find_bcrypt(t, sp);
    for (size_t k = 0; secrets && secrets[k]; k++)
        collect_secret(sp, t, secrets[k]);
    if (env && *env)
        collect_secret(sp, t, env);
}

void spotdb__redact(char *out, size_t outsz, const char *msg,
                    const char *raw, const char *const *secrets)
{
    spans sp = { .n = 0, .overflow = false };

    if (outsz == 0)
        return;
    collect(&sp, msg ? msg : "", secrets);
    if (raw)
        collect_raw(&sp, msg ? msg : "", raw);
    emit(out, outsz, msg ? msg : "", &sp);
}
